#!/usr/bin/env bash
# End to end, through the `dimple` CLI: two replicas with age encryption
# sync through one real store (file, s3 = radosgw, sftp = OpenSSH sshd).
#   remote_sync.sh file|s3|sftp
# Checks: both replicas converge (rows, a concurrent edit of one cell
# resolved last-write-wins), nothing is stored in plaintext, a sync that
# finds nothing new costs one listing plus one per author, and history shows
# both authors.
set -uo pipefail
backend=${1:?backend}
cli=${DIMPLE_CLI:?}
tmp=$(mktemp -d /tmp/dimple-e2e.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0; failed=0
check() { # description, then a command that must succeed
  local d=$1; shift
  n=$((n + 1))
  if "$@" >"$tmp/check.out" 2>&1; then echo "ok $n - $backend: $d"
  else echo "not ok $n - $backend: $d"; sed 's/^/#   /' "$tmp/check.out"; failed=$((failed + 1)); fi
}
same() { test -s "$1" && cmp "$1" "$2"; }
bail() { echo "Bail out! $backend: $*"; exit 1; }

run_id="e2e-$(date +%s)-$$-$RANDOM"
case $backend in
file)
  storage="plugin = file
path = $tmp/store" ;;
s3)
  for v in ENDPOINT ACCESS_KEY SECRET_KEY REGION BUCKET; do
    eval "[ -n \"\${DIMPLE_TEST_S3_$v:-}\" ]" || bail "DIMPLE_TEST_S3_$v is not set: start tests/servers/s3.sh (tests/run-suite.sh does)"
  done
  storage="plugin = s3
endpoint = $DIMPLE_TEST_S3_ENDPOINT
bucket = $DIMPLE_TEST_S3_BUCKET
region = $DIMPLE_TEST_S3_REGION
prefix = $run_id/
access_key = \${DIMPLE_TEST_S3_ACCESS_KEY}
secret_key = \${DIMPLE_TEST_S3_SECRET_KEY}" ;;
sftp)
  for v in HOST PORT USER KEY KNOWN_HOSTS ROOT; do
    eval "[ -n \"\${DIMPLE_TEST_SFTP_$v:-}\" ]" || bail "DIMPLE_TEST_SFTP_$v is not set: start tests/servers/sftp.sh (tests/run-suite.sh does)"
  done
  storage="plugin = sftp
host = $DIMPLE_TEST_SFTP_HOST
port = $DIMPLE_TEST_SFTP_PORT
user = $DIMPLE_TEST_SFTP_USER
key_file = $DIMPLE_TEST_SFTP_KEY
known_hosts = $DIMPLE_TEST_SFTP_KNOWN_HOSTS
path = $DIMPLE_TEST_SFTP_ROOT/$run_id" ;;
*) bail "unknown backend $backend" ;;
esac

mkdir -p "$tmp/mig"
echo "CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT, done INTEGER NOT NULL DEFAULT 0);" >"$tmp/mig/001_todo.sql"
for r in a b; do
  cat >"$tmp/$r.conf" <<CONF
[dimple]
database = $tmp/$r.db
migrations = $tmp/mig
[storage]
$storage
[cipher]
plugin = age
passphrase = \${DIMPLE_E2E_PASSPHRASE}
CONF
done
export DIMPLE_E2E_PASSPHRASE="e2e-$RANDOM-passphrase"
A=("$cli" -c "$tmp/a.conf")
B=("$cli" -c "$tmp/b.conf")

check "replica a init" "${A[@]}" init
check "replica b init" "${B[@]}" init
check "a writes" "${A[@]}" sql "INSERT INTO todo(id, title) VALUES ('t1', 'PLAINTEXT-MARKER-a1'), ('t2', 'shared')"
check "b writes" "${B[@]}" sql "INSERT INTO todo(id, title) VALUES ('t3', 'PLAINTEXT-MARKER-b1')"
check "a syncs" "${A[@]}" sync
check "b syncs" "${B[@]}" sync
# A concurrent edit of one cell: b's edit is made later, so it wins.
check "a edits t2" "${A[@]}" sql "UPDATE todo SET title = 'from a' WHERE id = 't2'"
sleep 0.01
check "b edits t2 later" "${B[@]}" sql "UPDATE todo SET title = 'from b' WHERE id = 't2'"
check "b deletes t1" "${B[@]}" sql "DELETE FROM todo WHERE id = 't1'"
check "a syncs again" "${A[@]}" sync
check "b syncs again" "${B[@]}" sync
check "a pulls b's last batch" "${A[@]}" sync

q="SELECT id, title, done FROM todo ORDER BY id"
"${A[@]}" sql "$q" >"$tmp/a.rows" 2>&1
"${B[@]}" sql "$q" >"$tmp/b.rows" 2>&1
check "replicas hold identical rows" same "$tmp/a.rows" "$tmp/b.rows"
check "the later edit won, the delete applied" grep -qx '{"id":"t2","title":"from b","done":0}' "$tmp/a.rows"
check "two rows remain" test "$(wc -l <"$tmp/a.rows")" -eq 2

"${A[@]}" sync >"$tmp/idle.out" 2>&1
check "an idle sync costs 1 listing + 1 per author (2 requests)" grep -q " 2 storage requests" "$tmp/idle.out"

"${A[@]}" remote ls >"$tmp/keys" 2>&1
check "batches are stored as .age files under log/<author>/" grep -q '^log/.*/.*\.json\.age$' "$tmp/keys"
check "a passphrase-protected identity under keys/" grep -q '^keys/.*\.age$' "$tmp/keys"
leaks=0
while read -r key; do
  "${A[@]}" remote cat --raw "$key" >"$tmp/raw" 2>/dev/null || leaks=$((leaks + 100))
  grep -qa 'PLAINTEXT-MARKER' "$tmp/raw" && leaks=$((leaks + 1))
  grep -qa "$DIMPLE_E2E_PASSPHRASE" "$tmp/raw" && leaks=$((leaks + 1))
done <"$tmp/keys"
check "no stored object holds the plaintext or the passphrase" test "$leaks" -eq 0
first=$(grep '^log/' "$tmp/keys" | head -1)
"${B[@]}" remote cat "$first" >"$tmp/plain" 2>&1
check "remote cat decrypts a batch" grep -q '"changes"' "$tmp/plain"

check "b writes while offline" "${B[@]}" sql "INSERT INTO todo(id, title) VALUES ('t4', 'after')"
DIMPLE_E2E_PASSPHRASE=wrong "${B[@]}" sync >"$tmp/wrong.out" 2>&1
rc=$?
check "a wrong passphrase fails the sync (exit 1)" test "$rc" -eq 1
check "... naming the key file" grep -q 'keys/' "$tmp/wrong.out"
check "... and never printing a passphrase" bash -c "! grep -q -e '$DIMPLE_E2E_PASSPHRASE' -e wrong-pass '$tmp/wrong.out'"

check "with the right passphrase b pushes what failed" "${B[@]}" sync
check "and a receives it" "${A[@]}" sync
"${A[@]}" sql "$q" >"$tmp/a.rows" 2>&1
check "nothing was lost by the failed sync" grep -q '"t4"' "$tmp/a.rows"

"${B[@]}" history >"$tmp/history" 2>&1
authors=$(python3 -c 'import json,sys; print(len({json.loads(l)["author"] for l in open(sys.argv[1]) if l.strip()}))' "$tmp/history" 2>/dev/null)
check "history lists both authors" test "${authors:-0}" -eq 2
"${A[@]}" history >"$tmp/history.a" 2>&1
check "both replicas hold the same history" same "$tmp/history" "$tmp/history.a"
uuid=01a21845-0000-7000-8000-00000000abcd
check "a writes a row keyed by a UUIDv7" "${A[@]}" sql "INSERT INTO todo(id, title) VALUES ('$uuid', 'uuid key')"
"${A[@]}" history todo "$uuid" >"$tmp/history.uuid" 2>&1
check "history TABLE KEY finds a key that starts with digits" test "$(grep -c "\"key\":\"$uuid\"" "$tmp/history.uuid")" -eq 1

echo "1..$n"
[ "$failed" -eq 0 ]
