#!/usr/bin/env bash
# Header hygiene: every public header compiles alone, as strict C11 and as C++.
set -u
src=${DIMPLE_TEST_SRCDIR:?}
cc=${CC:-cc}
cxx=${CXX:-c++}
inc=(-I"$src/core/include" -I"$src/sdk/include")
headers=(dimple.h dimple/common.h dimple/plugin.h dimple/history.h dimple/map.h dimple/sync.h dimple/live.h)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0; fail=0
check() { # description, command...
  local d=$1; shift
  n=$((n + 1))
  if "$@" >"$tmp/out" 2>&1; then echo "ok $n - $d"
  else echo "not ok $n - $d"; sed 's/^/#   /' "$tmp/out"; fail=$((fail + 1)); fi
}
for h in "${headers[@]}"; do
  printf '#include <%s>\n#include <%s>\nint dimple_header_test_%s;\n' "$h" "$h" "$n" >"$tmp/t.c"
  check "$h alone, C11 -pedantic, twice" $cc -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only "${inc[@]}" "$tmp/t.c"
  cp "$tmp/t.c" "$tmp/t.cpp"
  check "$h from C++" $cxx -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only "${inc[@]}" "$tmp/t.cpp"
done
echo "1..$n"
[ "$fail" -eq 0 ]
