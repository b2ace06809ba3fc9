#!/usr/bin/env bash
# A throwaway Ceph RADOS Gateway (radosgw) on loopback for the S3 tests:
# 1 monitor + 1 in-memory (memstore) OSD + radosgw, no mgr, no cephx.
# It verifies SigV4 signatures including the payload hash, like AWS.
#
#   s3.sh start STATEDIR   start it, create a user and the bucket, write
#                          STATEDIR/s3.env exporting DIMPLE_TEST_S3_ENDPOINT
#                          (http://127.0.0.1:PORT), _ACCESS_KEY, _SECRET_KEY,
#                          _REGION (us-east-1) and _BUCKET (dimple-test, empty
#                          at start: tests use a unique prefix each)
#   s3.sh stop STATEDIR    stop every daemon it started, remove its data
#
# Ports are chosen free at start, so several runs can coexist. The secret is
# random per start, so tests can search their output for it.
# A real S3 server rather than a mock, so signing and listing bugs show as
# they would against AWS.
set -euo pipefail

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
  echo "usage: $0 start|stop STATEDIR" >&2
  exit 2
fi
mkdir -p "$state"
state=$(cd "$state" && pwd)
D="$state/s3"

# Stop in the order rgw, osd, mon; each daemon forks and writes a pid file.
# The OSD needs about 5 s to exit; after 20 s it is killed.
stop_all() {
  local n p i
  for n in client.rgw.test osd.0 mon.a; do
    [ -f "$D/run/$n.pid" ] || continue
    p=$(cat "$D/run/$n.pid" 2>/dev/null || true)
    [ -n "$p" ] || continue
    kill "$p" 2>/dev/null || continue
    for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$p" 2>/dev/null || true
  done
}

free_port() {
  # Bind port 0 and report what the kernel chose; the window until the
  # daemon binds it is tiny and the ephemeral range rotates.
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$cmd" in
stop)
  stop_all
  rm -rf "$D" "$state/s3.env"
  exit 0
  ;;
start) ;;
*)
  echo "usage: $0 start|stop STATEDIR" >&2
  exit 2
  ;;
esac

for t in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph curl python3; do
  command -v "$t" >/dev/null || { echo "s3.sh: '$t' not found (run scripts/install-deps.sh)" >&2; exit 1; }
done

stop_all
rm -rf "$D"
mkdir -p "$D"/{mon,osd0,run,log,rgw}
trap 'echo "s3.sh: start failed; stopping what started" >&2; stop_all' ERR

MON_PORT=$(free_port)
RGW_PORT=$(free_port)
while [ "$RGW_PORT" = "$MON_PORT" ]; do RGW_PORT=$(free_port); done
FSID=$(cat /proc/sys/kernel/random/uuid)
ACCESS="DIMPLE$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
SECRET="sk$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
BUCKET=dimple-test

cat > "$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
public addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
mon data = $D/mon
osd data = $D/osd0
osd objectstore = memstore
memstore device bytes = 1073741824
[client.rgw.test]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
ms mon client mode = crc
auth client required = none
rgw init timeout = 60
rgw dns name = s3.localhost
rgw data = $D/rgw
CONF
C=(-c "$D/ceph.conf")
# Every ceph command gets a bound: a misconfigured client otherwise waits
# for the monitor for minutes.
T="timeout 60"

$T monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$D/monmap" >/dev/null
$T ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
$T ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring"
$T ceph-mon "${C[@]}" -i a
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
$T ceph "${C[@]}" osd new "$OSD_UUID" >/dev/null
$T ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>/dev/null
$T ceph "${C[@]}" osd crush add-bucket localhost host >/dev/null 2>&1
$T ceph "${C[@]}" osd crush move localhost root=default >/dev/null 2>&1
$T ceph "${C[@]}" osd crush add osd.0 1.0 host=localhost >/dev/null 2>&1
$T ceph-osd "${C[@]}" -i 0 2>/dev/null
$T radosgw "${C[@]}" -n client.rgw.test

ENDPOINT="http://127.0.0.1:$RGW_PORT"
up=0
for i in $(seq 1 120); do
  if curl -s -o /dev/null --max-time 2 "$ENDPOINT/"; then up=1; break; fi
  sleep 0.5
done
if [ "$up" != 1 ]; then
  echo "s3.sh: radosgw did not answer on $ENDPOINT within 60 s; log tail:" >&2
  tail -n 30 "$D/log/client.rgw.test.log" >&2 || true
  false
fi

$T radosgw-admin "${C[@]}" user create --uid=dimple --display-name=dimple \
  --access-key="$ACCESS" --secret-key="$SECRET" >/dev/null 2>&1

# Create the bucket with curl's own signer (fine for a path without special
# characters; the notes list its 7.88 bugs). The user can take a moment to
# become visible to rgw, so retry briefly.
EMPTY=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
made=0
for i in $(seq 1 20); do
  code=$(curl -s -o "$D/mb.out" -w '%{http_code}' --max-time 10 -X PUT \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS:$SECRET" \
    -H "x-amz-content-sha256: $EMPTY" "$ENDPOINT/$BUCKET" || true)
  if [ "$code" = 200 ]; then made=1; break; fi
  sleep 0.5
done
if [ "$made" != 1 ]; then
  echo "s3.sh: could not create bucket $BUCKET (HTTP $code)" >&2
  false
fi

cat > "$state/s3.env.tmp" <<ENV
export DIMPLE_TEST_S3_ENDPOINT=$ENDPOINT
export DIMPLE_TEST_S3_ACCESS_KEY=$ACCESS
export DIMPLE_TEST_S3_SECRET_KEY=$SECRET
export DIMPLE_TEST_S3_REGION=us-east-1
export DIMPLE_TEST_S3_BUCKET=$BUCKET
ENV
mv "$state/s3.env.tmp" "$state/s3.env"
trap - ERR
echo "s3.sh: radosgw up at $ENDPOINT, bucket $BUCKET"
