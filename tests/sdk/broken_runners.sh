#!/usr/bin/env bash
# The contract runners on plugins broken on purpose (tests/sdk/broken): each
# run must fail with exit code 1, name what broke, show the plugin's own
# message when create() fails, and print no `ok` for a check that never ran.
set -uo pipefail
build=${DIMPLE_TEST_BUILDDIR:?}
dir=$build/tests/sdk
storage=$dir/dimple-storage-contract
resolver=$dir/dimple-resolver-contract
tmp=$(mktemp -d /tmp/dimple-broken.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; failed=$((failed + 1)); fi
}
hasre() { grep -qE -- "$2" "$1" || { echo "#   /$2/ not in:"; sed 's/^/#     /' "$1" | head -40; return 1; }; }
has() { grep -qF -- "$2" "$1" || { echo "#   '$2' not in:"; sed 's/^/#     /' "$1" | head -40; return 1; }; }
hasnt() { ! grep -qE -- "$2" "$1" || { echo "#   /$2/ found in:"; grep -E -- "$2" "$1" | sed 's/^/#     /'; return 1; }; }
run() { # run LOG RUNNER ARGS...: the exit code lands in $tmp/LOG.rc
  local log=$1; shift
  "$@" >"$tmp/$log" 2>&1; echo $? >"$tmp/$log.rc"
}
rc() { [ "$(cat "$tmp/$1.rc")" = "$2" ] || { echo "#   exit code $(cat "$tmp/$1.rc"), want $2"; return 1; }; }

# Usage: no mention of meson, exit 2.
run usage env -u DIMPLE_PLUGIN_PATH "$storage"
check "storage runner without arguments: usage, exit 2" rc usage 2
check "its usage explains PLUGIN as a file or a name" has "$tmp/usage" "dimple-NAME.so"
run usage2 env -u DIMPLE_PLUGIN_PATH "$resolver"
check "resolver runner without arguments: usage, exit 2" rc usage2 2
run nopath env -u DIMPLE_PLUGIN_PATH "$storage" notes path=/tmp/x
check "a bare name without DIMPLE_PLUGIN_PATH fails" rc nopath 1
check "... saying how to point at the plugin" has "$tmp/nopath" "give the plugin's file (./dimple-notes.so) or set DIMPLE_PLUGIN_PATH"
cat "$tmp/usage" "$tmp/usage2" "$tmp/nopath" >"$tmp/all"
check "no runner message says 'meson test' " hasnt "$tmp/all" "meson test"

# Storage: create() fails -> the plugin's message, every later check not run.
run sfail "$storage" "$dir/dimple-broken-storage.so" mode=fail
check "storage: failing create exits 1" rc sfail 1
check "storage: the plugin's own message is shown" has "$tmp/sfail" "broken-storage: the folder /no/such/place does not exist"
check "storage: the code is named" has "$tmp/sfail" "DIMPLE_ECONFIG"
check "storage: the checks after create are reported not run" has "$tmp/sfail" "put/get round trip: not run (no instance: create failed)"
check "storage: no ok after the failed create" bash -c "sed -n '/create an instance/,\$p' '$tmp/sfail' | grep -q '^ok' && exit 1 || exit 0"

# Storage: a put_if_absent that is not atomic loses the race check.
run racy "$storage" "$dir/dimple-broken-storage.so" mode=racy
check "storage: a racy put_if_absent exits 1" rc racy 1
check "storage: the concurrency check fails" has "$tmp/racy" "not ok"
check "storage: ... and it is the one-winner check" bash -c "grep '^not ok' '$tmp/racy' | grep -q 'exactly one wins'"
check "storage: the rest of the racy store passes" bash -c "[ \$(grep -c '^not ok' '$tmp/racy') -eq 1 ]"

# Resolver: create() fails.
run rfail "$resolver" "$dir/dimple-broken-resolver.so" mode=fail
check "resolver: failing create exits 1" rc rfail 1
check "resolver: the plugin's own message is shown" has "$tmp/rfail" "broken-resolver: mode 'fail' asks create() to fail"
check "resolver: properties reported not run" has "$tmp/rfail" "commutative: not run (no instance)"
check "resolver: no ok for a property that never ran" hasnt "$tmp/rfail" "^ok .*(deterministic|idempotent|commutative|associative)"

# Resolver: not commutative -> the property is named, with a counterexample.
run keep "$resolver" "$dir/dimple-broken-resolver.so" mode=keep
check "resolver: keep-current exits 1" rc keep 1
check "resolver: the failure names 'commutative'" hasre "$tmp/keep" "^not ok [0-9]+ - broken-resolver: commutative: merge\\(a, b\\) == merge\\(b, a\\)"
check "resolver: a counterexample is printed" has "$tmp/keep" "commutative broke in"
check "resolver: no bad[] index in the output" hasnt "$tmp/keep" "bad\\["
check "resolver: keep-current is still idempotent" hasre "$tmp/keep" "^ok [0-9]+ - broken-resolver: idempotent"

# Resolver: DIMPLE_MERGED is refused like the core refuses it.
run merged "$resolver" "$dir/dimple-broken-resolver.so" mode=merged
check "resolver: DIMPLE_MERGED exits 1" rc merged 1
check "resolver: the DIMPLE_MERGED check fails" hasre "$tmp/merged" "^not ok [0-9]+ - broken-resolver: answers only DIMPLE_KEEP_CURRENT or DIMPLE_TAKE_INCOMING"

# Resolver: a rule that is a join in table "t" only is caught because the
# contract varies table names.
run bytable "$resolver" "$dir/dimple-broken-resolver.so" mode=by-table
check "resolver: a rule right only in table 't' exits 1" rc bytable 1
check "resolver: ... named commutative" bash -c "grep '^not ok' '$tmp/bytable' | grep -q commutative"

echo "1..$n"
[ $failed -eq 0 ]
