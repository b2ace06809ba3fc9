#!/usr/bin/env bash
# demo.sh BUILD — DimpleDb end to end, step by step. `make demo` runs it
# against build/release; the suite runs it against its build (test
# example-demo). Part 1 (here): the `dimple` CLI — configuration,
# migrations, SQL, errors, objects in the store. Part 2
# (examples/demo-sync.sh): two replicas of examples/todo.c syncing through
# an age-encrypted file store. It exits non-zero when a step goes wrong.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build/release}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
dimple_bin="$build/cli/dimple"
[ -x "$dimple_bin" ] || { echo "demo: build first: $dimple_bin is missing" >&2; exit 1; }
dimple() { "$dimple_bin" "$@"; }
todo() { "$build/examples/todo" "$@"; }

# Plugins come from the build tree (an installed dimple finds its own).
DIMPLE_PLUGIN_PATH=$(find "$build/plugins" -name 'dimple-*.so' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
export DIMPLE_PLUGIN_PATH
export DIMPLE_DEMO_DIR="$build/demo"
export DIMPLE_CONF="$root/examples/demo.conf"
rm -rf "$DIMPLE_DEMO_DIR"
mkdir -p "$DIMPLE_DEMO_DIR"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# show CMD...: print the command as one would type it, then run it.
show() {
  local a line='$'
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then line+=" $a"
    elif [[ "$a" != *[\"\$\`\\]* ]]; then line+=" \"$a\""
    else line+=" $(printf '%q' "$a")"; fi
  done
  printf '%s\n' "${line/#\$ $build\/examples\/todo/\$ todo}"
  "$@"
}

step "The configuration ($DIMPLE_CONF, paths from \${DIMPLE_DEMO_DIR})"
show dimple config check

step "Create the database and apply examples/migrations/"
show dimple init
show dimple init    # again: nothing to do

step "Write rows with bound parameters (typed: integers, reals, null, text)"
show dimple sql "INSERT INTO todo(id, title, done) VALUES (?1, ?2, ?3)" t-1 "Buy milk" 0
show dimple sql "INSERT INTO todo(id, title, done) VALUES (?1, ?2, ?3)" t-2 "Write the report" 1
show dimple sql "INSERT INTO tag(todo_id, name) VALUES ('t-1', 'home'), ('t-2', 'work')"

step "Read them back: one JSON object per row, keys in column order"
show dimple sql "SELECT t.id, t.title, t.done, group_concat(g.name) AS tags FROM todo t LEFT JOIN tag g ON g.todo_id = t.id GROUP BY t.id ORDER BY t.id"
show dimple sql "SELECT 9007199254740993 AS big, 1.0 AS real, x'cafe' AS blob, NULL AS nil"

step "Errors are one line, with what and where"
show dimple sql "INSERT INTO todo(id, title) VALUES ('t-1', 'again')" 2>&1 || echo "(exit $?)"
show dimple sql "SELEC 1" 2>&1 || echo "(exit $?)"

step "An app embedding the core (examples/todo.c): structs, a live query, the same database"
show todo "$DIMPLE_CONF" add "Water the plants"
show todo "$DIMPLE_CONF" list

step "Objects in the file store, through the configured storage"
printf 'hello from the demo\n' >"$DIMPLE_DEMO_DIR/note.txt"
show dimple remote put notes/hello.txt "$DIMPLE_DEMO_DIR/note.txt"
dimple sql "SELECT id, title, done FROM todo ORDER BY id" >"$DIMPLE_DEMO_DIR/export.jsonl"
show dimple remote put exports/todo.jsonl "$DIMPLE_DEMO_DIR/export.jsonl"
show dimple remote ls
show dimple remote cat notes/hello.txt
show find "$DIMPLE_DEMO_DIR/store" -type f

step "What this handle uses, and the plugins found"
show dimple info
show dimple plugins

step "Part 2: two devices syncing through an encrypted store (examples/demo-sync.sh)"
"$root/examples/demo-sync.sh" "$build"

step "Done. Everything is in $DIMPLE_DEMO_DIR and $build/demo-sync"
