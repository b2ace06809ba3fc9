#!/usr/bin/env bash
# cli.sh — the `dimple` command-line tool (TAP): exit codes 0/1/2, one-line
# errors on stderr, --help for each command, and every command of the
# foundation against the file storage plugin. Runs $DIMPLE_CLI in a temp dir.
set -u
cli=${DIMPLE_CLI:?DIMPLE_CLI is not set}
T=$(mktemp -d /tmp/dimple-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0 failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else notok "$what"; fi; }

# run ARGS...: runs the CLI; sets rc, out, err (files in $T).
run() {
  "$cli" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  out=$(cat "$T/out")
  err=$(cat "$T/err")
}
# expect RC WHAT ARGS...: rc must be RC; for RC 1 stderr is ONE line
# starting "dimple: ".
expect() {
  local want=$1 what=$2; shift 2
  run "$@"
  if [ "$rc" != "$want" ]; then
    notok "$what (exit $rc, want $want; stderr: $err)"; return
  fi
  if [ "$want" = 1 ]; then
    if [ "$(wc -l <"$T/err")" != 1 ] || [[ "$err" != "dimple: "* ]]; then
      notok "$what (stderr is not one 'dimple: ' line: $err)"; return
    fi
  fi
  ok "$what"
}
has() { [[ "$1" == *"$2"* ]]; }

cd "$T"
mkdir mig mig2 badmig
cat >mig/001_todo.sql <<'EOF'
CREATE TABLE todo(id TEXT PRIMARY KEY, title TEXT, done INTEGER);
EOF
cat >mig/002_tag.sql <<'EOF'
CREATE TABLE tag(id TEXT PRIMARY KEY, name TEXT);
EOF
cp mig/* mig2/
echo "ALTER TABLE todo ADD COLUMN due TEXT;" >mig2/003_due.sql
cp mig/* badmig/
printf 'CREATE TABLE ok_table(x);\nINSERT INTO nosuch VALUES (1);\n' >badmig/003_broken.sql
cat >dimple.conf <<EOF
[dimple]
database = todo.db      ; relative to this file
migrations = mig
busy_timeout_ms = 200
[storage]
plugin = file
path = $T/store
EOF

# --- usage and help ---------------------------------------------------
expect 0 "--help" --help
check "--help lists commands" has "$out" "Commands:"
check "--help lists remote" has "$out" "remote"
expect 2 "no command is a usage error" 
expect 2 "unknown command" bogus
check "unknown command names it" has "$err" "unknown command 'bogus'"
expect 0 "-v is accepted" -v config check
expect 2 "-c without FILE" -c
expect 2 "unknown option" --frobnicate
for c in init migrate sql info plugins config remote; do
  expect 0 "$c --help" "$c" --help
  check "$c --help shows usage" has "$out" "usage: dimple $c"
done
expect 2 "sql without SQL" sql
expect 2 "init with arguments" init extra
expect 2 "config without check" config
expect 2 "remote without subcommand" remote
expect 2 "remote cat without key" remote cat
expect 2 "remote frob" remote frob

# --- init / migrate ---------------------------------------------------
expect 0 "init" init
check "init created the database" test -f todo.db
check "init applied the migrations" has "$out" "schema version 0 -> 2"
expect 0 "init again is a no-op" init
check "init again says up to date" has "$out" "up to date"
expect 1 "a failing migration" migrate badmig
check "failing migration names the file" has "$err" "badmig/003_broken.sql"
check "failing migration quotes SQLite" has "$err" "no such table: nosuch"
check "failing migration rolled back" has "$err" "rolled back"
expect 0 "schema unchanged after failure" sql "PRAGMA user_version"
check "user_version still 2" [ "$out" = '{"user_version":2}' ]
expect 0 "table of the failed migration absent" sql "SELECT count(*) AS n FROM sqlite_master WHERE name = 'ok_table'"
check "ok_table absent" [ "$out" = '{"n":0}' ]
expect 0 "migrate DIR" migrate mig2
check "migrate DIR applied 3" has "$out" "schema version 2 -> 3"
expect 1 "migrate missing folder" migrate nosuchdir

# --- sql ----------------------------------------------------------------
expect 0 "sql insert with params" sql "INSERT INTO todo(id, title, done) VALUES (?1, ?2, ?3)" a "Buy milk" 0
expect 0 "sql insert 2" sql "INSERT INTO todo(id, title, done) VALUES ('b', 'Café \"quoted\"', 1)"
expect 0 "sql select" sql "SELECT id, title, done FROM todo ORDER BY id"
check "rows as JSON lines, keys in column order" [ "$out" = '{"id":"a","title":"Buy milk","done":0}
{"id":"b","title":"Café \"quoted\"","done":1}' ]
expect 0 "sql value typing" sql "SELECT ?1 AS i, ?2 AS r, ?3 AS n, ?4 AS t, ?5 AS big, ?6 AS neg, 1.0 AS one, x'00ff' AS b" 42 2.5 null hello 9007199254740993 -7
check "typed values" [ "$out" = '{"i":42,"r":2.5,"n":null,"t":"hello","big":"9007199254740993","neg":-7,"one":1.0,"b":{"$blob":"AP8="}}' ]
expect 0 "sql number-like text stays text with CAST" sql "SELECT typeof(CAST(?1 AS TEXT)) AS t" 12
check "CAST gives text" [ "$out" = '{"t":"text"}' ]
expect 0 "sql multi-statement" sql "CREATE TABLE x(a TEXT PRIMARY KEY); INSERT INTO x VALUES ('k'); SELECT a FROM x"
check "multi-statement rows" [ "$out" = '{"a":"k"}' ]
expect 1 "sql syntax error" sql "SELEC 1"
check "sql error quotes SQLite" has "$err" 'near "SELEC": syntax error'
expect 1 "sql params with two statements" sql "SELECT ?1; SELECT 2" 1
expect 1 "sql wrong param count" sql "SELECT ?1, ?2" 1
check "param count message" has "$err" "2 parameters, 1 given"
expect 1 "sql constraint" sql "INSERT INTO todo(id) VALUES ('a')"
check "constraint message" has "$err" "UNIQUE constraint failed"

# --- info, plugins, config check -----------------------------------------
expect 0 "info" info
check "info database" has "$out" "database: ./todo.db"
check "info schema" has "$out" "schema version: 3"
check "info tables" has "$out" "tables: *"
check "info storage" has "$out" "storage: file"
expect 0 "plugins" plugins
check "plugins lists file" grep -Eq '^file +storage +[^ ]+ +/.*/dimple-file\.so$' "$T/out"
expect 0 "config check" config check
check "config check ok" has "$out" "./dimple.conf: ok"
check "config check did not need the db" true

# --- remote ---------------------------------------------------------------
printf 'hello store' >obj.txt
expect 0 "remote put from file" remote put notes/hello.txt obj.txt
echo -n "second" | "$cli" remote put notes/b.txt >/dev/null 2>&1
check "remote put from stdin" [ "$?" = 0 ]
expect 0 "remote put other" remote put zz/last obj.txt
expect 0 "remote ls" remote ls
check "remote ls lists in byte order" [ "$out" = 'notes/b.txt
notes/hello.txt
zz/last' ]
expect 0 "remote ls PREFIX" remote ls notes/h
check "remote ls prefix" [ "$out" = 'notes/hello.txt' ]
expect 0 "remote cat" remote cat notes/hello.txt
check "remote cat content" [ "$out" = 'hello store' ]
expect 0 "remote cat --raw" remote cat --raw notes/b.txt
check "remote cat raw content" [ "$out" = 'second' ]
expect 1 "remote cat missing" remote cat notes/nope
check "missing names the key" has "$err" "notes/nope"
expect 1 "remote cat hostile key" remote cat ../etc/passwd
check "hostile key refused" has "$err" "invalid key"
expect 1 "remote put hostile key" remote put /abs obj.txt

# --- the shipped conf/dimple.conf is valid as it is -------------------------
if [ -n "${DIMPLE_TEST_SRCDIR:-}" ]; then
  cp "$DIMPLE_TEST_SRCDIR/conf/dimple.conf" shipped.conf
  expect 0 "conf/dimple.conf passes config check" -c shipped.conf config check
else
  notok "DIMPLE_TEST_SRCDIR is not set"
fi

# --- configuration sources and errors --------------------------------------
mkdir other
cat >other/my.conf <<EOF
[dimple]
database = other.db
EOF
(cd other && DIMPLE_CONF=my.conf "$cli" init >/dev/null 2>&1)
check "DIMPLE_CONF is used" test -f other/other.db
"$cli" -c other/my.conf sql "SELECT 1 AS one" >"$T/out" 2>&1
check "-c FILE is used" [ "$(cat "$T/out")" = '{"one":1}' ]
(cd other && "$cli" info >/dev/null 2>"$T/err"); rc=$?
check "no ./dimple.conf: error" [ "$rc" = 1 ]
check "no ./dimple.conf: names it" grep -q "cannot read ./dimple.conf" "$T/err"
expect 1 "remote without storage" -c other/my.conf remote ls
check "no storage message" has "$err" "no [storage] configured"

printf '[dimple]\ndatabase = x.db\ncolour = blue\n' >bad1.conf
expect 1 "unknown key" -c bad1.conf config check
check "unknown key file:line" has "$err" "bad1.conf:3: unknown key 'colour' in [dimple]"
printf '[dimple]\ndatabase = x.db\n[storage]\nplugin = nosuch\n' >bad2.conf
expect 1 "unknown plugin" -c bad2.conf info
check "unknown plugin lists folders" has "$err" "searched:"
check "unknown plugin: no database created" test ! -e x.db
printf '[dimple]\ndatabase = x.db\n[storage]\nplugin = file\npath = ${DIMPLE_CLI_TEST_UNSET}\n' >bad3.conf
expect 1 "unset variable" -c bad3.conf config check
check "unset variable named" has "$err" "bad3.conf:5: environment variable 'DIMPLE_CLI_TEST_UNSET' is not set"
printf '[dimple\ndatabase = x.db\n' >bad4.conf
expect 1 "malformed conf" -c bad4.conf sql "SELECT 1"
check "malformed conf line" has "$err" "bad4.conf:1: syntax error"
printf '[dimple]\ndatabase = x.db\n[storage]\nplugin = file\npath = %s/s2\nbogus = 1\n' "$T" >bad5.conf
expect 1 "plugin rejects a key" -c bad5.conf config check
check "plugin key error has file:line" has "$err" "bad5.conf:6: unknown key 'bogus' in [storage]"

# --- unreadable and locked databases ------------------------------------------
printf 'this is not a database, this is text that is long enough to look like a header....................\n' >junk.db
printf '[dimple]\ndatabase = junk.db\n' >junk.conf
expect 1 "unreadable database" -c junk.conf info
check "unreadable database message" has "$err" "file is not a database"
check "junk file untouched" grep -q "this is not a database" junk.db

if command -v sqlite3 >/dev/null; then
  (echo "BEGIN IMMEDIATE; INSERT INTO tag VALUES ('l', 'lock');"; sleep 4) | sqlite3 todo.db &
  holder=$!
  sleep 1
  expect 1 "locked database" sql "INSERT INTO tag VALUES ('m', 'me')"
  check "locked message" has "$err" "database is locked"
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
  expect 0 "nothing half-written" sql "SELECT count(*) AS n FROM tag"
  check "tag empty" [ "$out" = '{"n":0}' ]
else
  notok "sqlite3 tool needed for the locked-database test (make deps)"
fi

echo "1..$n"
[ "$failed" = 0 ]
