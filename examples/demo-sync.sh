#!/usr/bin/env bash
# demo-sync.sh BUILD — two replicas of examples/todo.c ("laptop" and
# "phone"), each its own database and author, syncing through one file
# store with age end-to-end encryption: edits on both, the live query
# firing when a sync brings changes, a concurrent edit of one cell resolved
# last-write-wins, the history of that row listing both authors, and what
# the store holds (only age files, opened with the reference `age` tool).
# examples/demo.sh calls it (make demo); it also runs alone:
#   examples/demo-sync.sh build/release
# It exits non-zero when the story goes wrong (e.g. the devices disagree),
# so the test suite runs it (suite 'examples').
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build/release}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
dimple_bin="$build/cli/dimple"
todo_bin="$build/examples/todo"
for b in "$dimple_bin" "$todo_bin"; do
  [ -x "$b" ] || { echo "demo-sync: build first: $b is missing" >&2; exit 1; }
done

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
database   = $dev.db
migrations = $root/examples/migrations
[storage]
plugin = file
path   = store
; end-to-end encrypted: the store only ever holds standard age files
[cipher]
plugin     = age
passphrase = \${DIMPLE_DEMO_PASSPHRASE}
EOF
done
# The passphrase comes from the environment, never from a file or a log.
export DIMPLE_DEMO_PASSPHRASE=${DIMPLE_DEMO_PASSPHRASE:-correct horse battery staple}

fail() { echo "demo-sync: $*" >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# on DEVICE todo|dimple ARGS...: run the app or the CLI as that device,
# printing the command as one would type it first (on stdout, so a captured
# output reads in order; the checks below skip that first line).
on() {
  local dev=$1 prog=$2 a line; shift 2
  if [ "$prog" = todo ]; then line="todo $dev.conf"; else line="dimple -c $dev.conf"; fi
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then line+=" $a"; else line+=" '$a'"; fi
  done
  printf '[%s] $ %s\n' "$dev" "$line"
  if [ "$prog" = todo ]; then "$todo_bin" "$demo/$dev.conf" "$@"
  else (cd "$demo" && "$dimple_bin" -c "$dev.conf" "$@"); fi
}
# added ID-of-TITLE OUTPUT: the id `todo add` printed for TITLE.
added_id() { sed -n "s/^added \([0-9a-f-]*\) $1\$/\1/p" <<<"$2"; }

step "Two replicas of examples/todo.c, one encrypted store: each database is its own author"
echo "(todo opens $demo/<device>.conf, applies examples/migrations/, and keeps a"
echo " live query, SELECT count(*) FROM todo WHERE NOT done, that prints the count"
echo " whenever it changes, whoever changed it)"
on laptop todo list
on phone todo list
on laptop dimple author
on phone dimple author

step "Edits on both devices"
out=$(on laptop todo add "Buy milk" "Call the plumber"); echo "$out"
milk=$(added_id "Buy milk" "$out"); plumber=$(added_id "Call the plumber" "$out")
[ -n "$milk" ] && [ -n "$plumber" ] || fail "todo add printed no ids"
on phone todo add "Water the plants"

step "Sync: push mine, pull theirs (the live query fires when a sync brings changes)"
out=$(on laptop todo sync); echo "$out"
out=$(on phone todo sync); echo "$out"
grep -q 'open todos 1 -> 3' <<<"$out" || fail "the phone's live query did not see the laptop's todos"
out=$(on laptop todo sync); echo "$out"
grep -q 'open todos 2 -> 3' <<<"$out" || fail "the laptop's live query did not see the phone's todo"
on laptop todo list
on phone todo list

step "What the store holds: dimple.json (the format), the key file and one log per author, all age-encrypted"
(cd "$demo" && find store -type f | sort)
(cd "$demo" && cat store/dimple.json && echo)
n=0
while IFS= read -r f; do
  [ "$(head -c 21 "$f")" = "age-encryption.org/v1" ] || fail "$f is not an age file"
  n=$((n + 1))
done < <(find "$demo/store" -type f ! -name dimple.json)
echo "$n objects, every one begins with: $(head -1 "$(find "$demo/store/log" -type f | head -1)")"
batch=$(cd "$demo" && find store/log -type f | sort | head -1)
echo "The reference age tool opens any of them with the unlocked identity:"
echo '[laptop] $ dimple -c laptop.conf identity > identity.txt'
(cd "$demo" && umask 077 && "$dimple_bin" -c laptop.conf identity >identity.txt)
echo "  (written to identity.txt: a secret, so not printed here)"
if command -v age >/dev/null; then
  printf '$ age -d -i identity.txt %s\n' "$batch"
  plain=$(cd "$demo" && age -d -i identity.txt "$batch") || fail "age could not decrypt $batch"
  printf '%s\n' "$plain" | head -c 600; echo
  grep -q '"todo"' <<<"$plain" || fail "the decrypted batch holds no todo change"
else
  echo "(the age tool is not installed: apt-get install age)"
fi
rm -f "$demo/identity.txt"

step "A concurrent edit of one cell, offline on both (the phone edits last)"
on laptop todo rename "$milk" "Buy oat milk"
sleep 0.01
on phone todo rename "$milk" "Buy almond milk"
on phone todo done "$plumber"
out=$(on laptop todo sync); echo "$out"
out=$(on phone todo sync); echo "$out"
out=$(on laptop todo sync); echo "$out"
grep -q 'open todos 3 -> 2' <<<"$out" || fail "the laptop's live query did not see the phone's 'done'"

step "Last write wins, per cell: both devices agree"
laptop_rows=$(on laptop todo list); echo "$laptop_rows"
phone_rows=$(on phone todo list); echo "$phone_rows"
[ "${laptop_rows#*$'\n'}" = "${phone_rows#*$'\n'}" ] || fail "the devices disagree"
grep -q "Buy almond milk .*$milk" <<<"$phone_rows" || fail "the later edit did not win"
grep -q "^\[x\] Call the plumber .*$plumber" <<<"$phone_rows" || fail "the 'done' did not sync"

step "The history of that todo lists both authors"
# (KEY is JSON when it parses as JSON, so a text key goes in quotes)
hist=$(on laptop dimple history todo "\"$milk\""); echo "$hist"
[ "$(grep -c '"op":' <<<"$hist")" -eq 3 ] || fail "history of $milk: want 3 changes"
authors=$( (grep -o '"author":"[^"]*"' || true) <<<"$hist" | sort -u | wc -l)
[ "$authors" -ge 2 ] || fail "history shows $authors author(s), want 2"

step "A sync that finds nothing new reads nothing: one listing plus one per author"
on laptop dimple sync
