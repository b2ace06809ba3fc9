#!/usr/bin/env bash
# A private OpenSSH sshd on loopback for the SFTP tests. The system sshd and
# its configuration are not touched.
#
#   sftp.sh start STATEDIR   start it on 127.0.0.1 at a free port, write
#                            STATEDIR/sftp.env (export DIMPLE_TEST_SFTP_*)
#   sftp.sh stop STATEDIR    kill the sshd it started (and its sessions),
#                            remove its files
#
# Why it looks like this:
# - A dedicated Unix user (dimpletest), created once with useradd, so the
#   tests never log in as root and password login can be tested (root may
#   only use keys). Its password is fixed, not random: several suites may
#   run at once on one machine, and a per-run password would break the
#   others' password tests. The tests search their output for it.
# - Everything sshd reads as that user (authorized keys, the test folder)
#   lives in its own world-traversable folder under /tmp: STATEDIR itself
#   is usually mode 0700 root, and sshd reads authorized_keys with the
#   user's uid.
# - Host keys are ed25519 and ECDSA only: libssh2 1.10 signs RSA with
#   SHA-1 ssh-rsa only, which OpenSSH 9.2 refuses (rsa-sha2 arrives in
#   libssh2 1.11). known_hosts holds both, as [127.0.0.1]:PORT.
# - `UsePAM no`: sshd checks /etc/shadow itself (needs root, which CI is).
set -euo pipefail

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
  echo "usage: $0 start|stop STATEDIR" >&2
  exit 2
fi
mkdir -p "$state"
state=$(cd "$state" && pwd)
TUSER=dimpletest
TPASS='dimple-Test-pw-5c81e2'
KEYPASS='dimple-key-pp-93b0d4'

# Kill pid and every process below it (sshd forks one monitor per session,
# which forks the session itself); children first are found before the
# parent dies, so nothing is orphaned.
kill_tree() {
  local p=$1 c
  for c in $(pgrep -P "$p" 2>/dev/null || true); do kill_tree "$c"; done
  kill -9 "$p" 2>/dev/null || true
}

stop_all() {
  local d p
  [ -f "$state/sftp.dir" ] || return 0
  d=$(cat "$state/sftp.dir")
  if [ -f "$d/sshd.pid" ]; then
    p=$(cat "$d/sshd.pid" 2>/dev/null || true)
    [ -n "$p" ] && kill_tree "$p"
  fi
  case "$d" in /tmp/dimple-sftp.*) rm -rf "$d" ;; esac
  rm -f "$state/sftp.dir" "$state/sftp.env"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$cmd" in
stop)
  stop_all
  exit 0
  ;;
start) ;;
*)
  echo "usage: $0 start|stop STATEDIR" >&2
  exit 2
  ;;
esac

for t in /usr/sbin/sshd ssh-keygen sftp sshpass useradd chpasswd python3 pgrep; do
  command -v "$t" >/dev/null || { echo "sftp.sh: '$t' not found (run scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "sftp.sh: must run as root (sshd checks passwords itself)" >&2; exit 1; }

stop_all
S=$(mktemp -d /tmp/dimple-sftp.XXXXXX)
echo "$S" > "$state/sftp.dir"
chmod 0755 "$S"
trap 'echo "sftp.sh: start failed; stopping what started" >&2; [ -f "$S/sshd.log" ] && cat "$S/sshd.log" >&2; stop_all' ERR

mkdir -p "$S/authkeys" /run/sshd
chmod 0755 "$S/authkeys"
if ! id "$TUSER" >/dev/null 2>&1; then
  # Two suites starting at once may race here; the loser finds the user.
  useradd -m -s /bin/bash "$TUSER" 2>/dev/null || id "$TUSER" >/dev/null
fi
echo "$TUSER:$TPASS" | chpasswd
U_UID=$(id -u "$TUSER")
U_GID=$(id -g "$TUSER")

ssh-keygen -q -t ed25519 -N '' -C dimple-test-host -f "$S/host_ed25519"
ssh-keygen -q -t ecdsa -b 256 -N '' -C dimple-test-host -f "$S/host_ecdsa"
ssh-keygen -q -t ed25519 -N '' -C dimple-test-client -f "$S/client_ed25519"
ssh-keygen -q -t ecdsa -b 256 -N '' -C dimple-test-client-ecdsa -f "$S/client_ecdsa"
ssh-keygen -q -t ed25519 -N "$KEYPASS" -C dimple-test-client-pp -f "$S/client_pp"
cat "$S/client_ed25519.pub" "$S/client_ecdsa.pub" "$S/client_pp.pub" > "$S/authkeys/$TUSER"
chmod 0644 "$S/authkeys/$TUSER"

# The folder tests write into: owned by the test user.
mkdir -p "$S/root"
chown "$U_UID:$U_GID" "$S/root"
chmod 0755 "$S/root"

cat > "$S/sshd_config" <<EOF
ListenAddress 127.0.0.1
HostKey $S/host_ed25519
HostKey $S/host_ecdsa
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authkeys/%u
StrictModes no
UsePAM no
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
AllowUsers $TUSER
MaxStartups 100:30:200
MaxSessions 50
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
/usr/sbin/sshd -t -f "$S/sshd_config"

# A port can be taken between free_port and sshd's bind: try a few.
started=
for attempt in 1 2 3 4 5; do
  PORT=$(free_port)
  rm -f "$S/sshd.pid"
  if /usr/sbin/sshd -f "$S/sshd_config" -p "$PORT" -E "$S/sshd.log"; then
    # sshd daemonises after binding; wait for the pid file and a banner.
    for i in $(seq 1 50); do
      if [ -s "$S/sshd.pid" ] && kill -0 "$(cat "$S/sshd.pid")" 2>/dev/null &&
         timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT && head -c 4 <&3" 2>/dev/null | grep -q SSH-; then
        started=1
        break
      fi
      sleep 0.1
    done
  fi
  [ -n "$started" ] && break
  [ -s "$S/sshd.pid" ] && kill_tree "$(cat "$S/sshd.pid")"
done
[ -n "$started" ] || { echo "sftp.sh: sshd did not start" >&2; false; }

# known_hosts from the host keys themselves (no keyscan over the network).
{
  printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$S/host_ed25519.pub")"
  printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$S/host_ecdsa.pub")"
} > "$S/known_hosts"
FP_ED=$(ssh-keygen -l -E sha256 -f "$S/host_ed25519.pub" | cut -d' ' -f2)
FP_EC=$(ssh-keygen -l -E sha256 -f "$S/host_ecdsa.pub" | cut -d' ' -f2)

# Check the whole path a test takes: key login and an SFTP round trip.
printf 'ls\n' > "$S/batch"
sftp -q -b "$S/batch" -P "$PORT" -i "$S/client_ed25519" -o BatchMode=yes \
  -o UserKnownHostsFile="$S/known_hosts" -o StrictHostKeyChecking=yes \
  -o GlobalKnownHostsFile=/dev/null "$TUSER@127.0.0.1:$S/root" >/dev/null

cat > "$state/sftp.env" <<EOF
export DIMPLE_TEST_SFTP_HOST=127.0.0.1
export DIMPLE_TEST_SFTP_PORT=$PORT
export DIMPLE_TEST_SFTP_USER=$TUSER
export DIMPLE_TEST_SFTP_KEY=$S/client_ed25519
export DIMPLE_TEST_SFTP_KEY_ECDSA=$S/client_ecdsa
export DIMPLE_TEST_SFTP_KEY_PASSPHRASE_KEY=$S/client_pp
export DIMPLE_TEST_SFTP_KEY_PASSPHRASE='$KEYPASS'
export DIMPLE_TEST_SFTP_PASSWORD='$TPASS'
export DIMPLE_TEST_SFTP_KNOWN_HOSTS=$S/known_hosts
export DIMPLE_TEST_SFTP_ROOT=$S/root
export DIMPLE_TEST_SFTP_PID=$(cat "$S/sshd.pid")
export DIMPLE_TEST_SFTP_FP_ED25519=$FP_ED
export DIMPLE_TEST_SFTP_FP_ECDSA=$FP_EC
export DIMPLE_TEST_SFTP_HOST_PUB_ED25519=$S/host_ed25519.pub
export DIMPLE_TEST_SFTP_HOST_PUB_ECDSA=$S/host_ecdsa.pub
export DIMPLE_TEST_SFTP_SSHD_CONFIG=$S/sshd_config
EOF
trap - ERR
echo "sftp.sh: sshd on 127.0.0.1:$PORT (pid $(cat "$S/sshd.pid")), user $TUSER, folder $S/root"
