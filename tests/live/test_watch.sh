#!/usr/bin/env bash
# `dimple watch`: one JSON array per line at start and on each change made
# by another process (`dimple sql`), by `dimple sync` (a second replica's
# change pulled through a file store), nothing for unrelated or no-op
# writes, exit 0 on SIGINT and SIGTERM, 2 on wrong usage, 1 on bad SQL.
set -u
cli=${DIMPLE_CLI:?DIMPLE_CLI is not set}
tmp=$(mktemp -d /tmp/dimple-watch.XXXXXX)
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

mkdir -p "$tmp/store"
for r in a b; do
  cat >"$tmp/$r.conf" <<CONF
[dimple]
database = $tmp/$r.db
tables = todo
[storage]
plugin = file
path = $tmp/store
fsync = off
CONF
done
A=(-c "$tmp/a.conf") B=(-c "$tmp/b.conf")
schema='CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT); CREATE TABLE other(x)'
mkdir -p "$tmp/mig"
echo "$schema" >"$tmp/mig/001_init.sql"
"$cli" "${A[@]}" migrate "$tmp/mig" >/dev/null || fail "migrate a"
"$cli" "${B[@]}" migrate "$tmp/mig" >/dev/null || fail "migrate b"

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
# wait until file $1 has at least $2 lines (up to 5 s)
wait_lines() {
  for _ in $(seq 100); do [ "$(lines "$1")" -ge "$2" ] && return 0; sleep 0.05; done
  return 1
}
line() { sed -n "${2}p" "$1"; }

out="$tmp/watch.out"
"$cli" "${A[@]}" watch "SELECT id, title FROM todo WHERE title LIKE ?1 ORDER BY id" "%milk%" \
  >"$out" 2>"$tmp/watch.err" &
wpid=$!
pids+=("$wpid")
check "initial result" wait_lines "$out" 1
check "initial result is an empty array" [ "$(line "$out" 1)" = "[]" ]

"$cli" "${A[@]}" sql "INSERT INTO todo VALUES('t1', 'buy milk')" >/dev/null
check "a write by another process shows" wait_lines "$out" 2
check "as one JSON array" [ "$(line "$out" 2)" = '[{"id":"t1","title":"buy milk"}]' ]

"$cli" "${A[@]}" sql "INSERT INTO other VALUES(1)" >/dev/null
"$cli" "${A[@]}" sql "INSERT INTO todo VALUES('t2', 'bread')" >/dev/null
"$cli" "${A[@]}" sql "UPDATE todo SET title = title" >/dev/null
sleep 0.4
check "unrelated and no-op writes print nothing" [ "$(lines "$out")" -eq 2 ]

# a change made on replica b, pushed, then pulled by `dimple sync` on a
"$cli" "${B[@]}" sql "INSERT INTO todo VALUES('t3', 'oat milk')" >/dev/null
quiet() { "$@" >/dev/null 2>&1; }
check "b pushes" quiet "$cli" "${B[@]}" sync
check "a pulls" quiet "$cli" "${A[@]}" sync
check "a synced change shows" wait_lines "$out" 3
check "with the synced row" [ "$(line "$out" 3)" = '[{"id":"t1","title":"buy milk"},{"id":"t3","title":"oat milk"}]' ]

kill -INT "$wpid"
wait "$wpid"
check "SIGINT ends it with status 0" [ $? -eq 0 ]
check "nothing on stderr" [ ! -s "$tmp/watch.err" ]

"$cli" "${A[@]}" watch "SELECT count(*) AS n FROM todo" >"$tmp/w2.out" 2>/dev/null &
w2=$!
pids+=("$w2")
check "second watch starts" wait_lines "$tmp/w2.out" 1
check "count is 3" [ "$(line "$tmp/w2.out" 1)" = '[{"n":3}]' ]
kill -TERM "$w2"
wait "$w2"
check "SIGTERM ends it with status 0" [ $? -eq 0 ]

"$cli" "${A[@]}" watch >/dev/null 2>"$tmp/e1"
check "no SQL: usage error (2)" [ $? -eq 2 ]
"$cli" "${A[@]}" watch "SELEC nonsense" >/dev/null 2>"$tmp/e2"
check "bad SQL: error (1)" [ $? -eq 1 ]
check "one line naming the problem" [ "$(wc -l <"$tmp/e2")" -eq 1 ] 
check "with SQLite's message" grep -q "syntax error" "$tmp/e2"
"$cli" "${A[@]}" watch "DELETE FROM todo" >/dev/null 2>"$tmp/e3"
check "a write statement is refused (1)" [ $? -eq 1 ]
check "rows are still there" [ "$("$cli" "${A[@]}" sql "SELECT count(*) AS n FROM todo")" = '{"n":3}' ]

echo "1..$n"
[ "$failed" -eq 0 ]
