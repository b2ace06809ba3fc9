#!/usr/bin/env bash
# demo-sync.sh BUILD — two devices sync through a file store: edits on
# both, a concurrent edit of one cell resolved last-write-wins, and the
# history of that row listing both authors. examples/demo.sh calls it
# (make demo); it also runs alone: examples/demo-sync.sh build/release
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build/release}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
dimple_bin="$build/cli/dimple"
[ -x "$dimple_bin" ] || { echo "demo-sync: build first: $dimple_bin is missing" >&2; exit 1; }

if [ -z "${DIMPLE_PLUGIN_PATH:-}" ]; then
  DIMPLE_PLUGIN_PATH=$(find "$build/plugins" -name 'dimple-*.so' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
  export DIMPLE_PLUGIN_PATH
fi
demo="$build/demo-sync"
rm -rf "$demo"
mkdir -p "$demo"

# Two devices: each its own database (and so its own author), one store.
for dev in laptop phone; do
  cat >"$demo/$dev.conf" <<EOF
; $dev: its own database, the shared store (a folder here; S3 or SFTP alike)
[dimple]
database   = $demo/$dev.db
migrations = $root/examples/migrations
[storage]
plugin = file
path   = $demo/store
; end-to-end encrypted: the store only ever holds standard age files
[cipher]
plugin     = age
passphrase = \${DIMPLE_DEMO_PASSPHRASE}
EOF
done
# The passphrase comes from the environment, never from a file or a log.
export DIMPLE_DEMO_PASSPHRASE=${DIMPLE_DEMO_PASSPHRASE:-correct horse battery staple}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
on() { # on DEVICE dimple-args...: run the CLI as that device, showing it
  local dev=$1; shift
  printf '%s$ dimple %s\n' "[$dev] " "$*"
  "$dimple_bin" -c "$demo/$dev.conf" "$@"
}

step "Two devices, one store: each database gets its own author id"
on laptop init
on phone init
on laptop info | grep -i author || true
on phone info | grep -i author || true

step "Edits on both devices, then sync (push mine, pull theirs)"
on laptop sql "INSERT INTO todo(id, title) VALUES ('t-1', 'Buy milk')"
on phone sql "INSERT INTO todo(id, title) VALUES ('t-2', 'Call the plumber')"
on laptop sync
on phone sync
on laptop sync
on laptop sql "SELECT id, title, done FROM todo ORDER BY id"
on phone sql "SELECT id, title, done FROM todo ORDER BY id"

step "What the store holds: one folder per author, batches named by their first change id, all age-encrypted"
(cd "$demo" && find store -type f | sort)
first=$(cd "$demo/store" && find log -type f | sort | head -1)
head -c 120 "$demo/store/$first" | head -2; echo "  ..."
echo "(the reference age tool opens any of them with the unlocked identity:"
echo "   dimple identity > id.txt && age -d -i id.txt store/$first)"

step "A concurrent edit of one cell, offline on both (the phone edits last)"
on laptop sql "UPDATE todo SET title = 'Buy oat milk' WHERE id = 't-1'"
sleep 0.01
on phone sql "UPDATE todo SET title = 'Buy almond milk' WHERE id = 't-1'"
on phone sql "UPDATE todo SET done = 1 WHERE id = 't-2'"
on laptop sync
on phone sync
on laptop sync
echo "Last write wins, per cell: both devices now agree"
q="SELECT id, title, done FROM todo ORDER BY id"
laptop_rows=$(on laptop sql "$q"); echo "$laptop_rows"
phone_rows=$(on phone sql "$q"); echo "$phone_rows"
# (the demo doubles as a test: it fails if the devices disagree)
[ "${laptop_rows#*$'\n'}" = "${phone_rows#*$'\n'}" ] || { echo "demo-sync: the devices disagree" >&2; exit 1; }
grep -q '"title":"Buy almond milk","done":0' <<<"$phone_rows" || { echo "demo-sync: the later edit did not win" >&2; exit 1; }

step "The history of t-1 lists both authors"
if "$dimple_bin" -c "$demo/laptop.conf" history --help >/dev/null 2>&1; then
  hist=$(on laptop history todo t-1); echo "$hist"
  n=$(grep -o '"author":"[^"]*"' <<<"$hist" | sort -u | wc -l)
  [ "$n" -ge 2 ] || { echo "demo-sync: history shows $n author(s), want 2" >&2; exit 1; }
else
  echo "(dimple history is not built yet)"
fi

step "A sync that finds nothing new reads nothing: one listing plus one per author"
on laptop sync
