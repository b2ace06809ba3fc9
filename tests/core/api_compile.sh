#!/usr/bin/env bash
# The app API as a user compiles it:
#  - README.md's "Twenty lines of C" builds warning-free under
#    -Wall -Wextra against this build's libdimple and runs (file storage);
#  - every DIMPLE_*_INIT macro initialises its struct without a warning in
#    C11 and C++11 (-pedantic -Wall -Wextra).
set -u
src=${DIMPLE_TEST_SRCDIR:?}
build=${DIMPLE_TEST_BUILDDIR:?}
cc=${CC:-cc}
cxx=${CXX:-c++}
inc=(-I"$src/core/include" -I"$src/sdk/include")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0; fail=0
check() { # description, command...
  local d=$1; shift
  n=$((n + 1))
  if "$@" >"$tmp/out" 2>&1; then echo "ok $n - $d"
  else echo "not ok $n - $d"; sed 's/^/#   /' "$tmp/out"; fail=$((fail + 1)); fi
}

# Sanitizer flags of this build, so the program links against it.
san=$(meson introspect --buildoptions "$build" 2>/dev/null | python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="b_sanitize"))' 2>/dev/null || echo none)
cflags=(); [ "$san" != none ] && [ -n "$san" ] && cflags=(-fsanitize="$san")

awk '/^## Twenty lines of C/ {s = 1} s && /^```c$/ {c = 1; next} c && /^```$/ {exit} c' \
  "$src/README.md" >"$tmp/app.c"
check "README's example is in README.md" test -s "$tmp/app.c"
check "README's example compiles with -Wall -Wextra -Werror" \
  "$cc" -std=c11 -Wall -Wextra -Werror "${cflags[@]}" "${inc[@]}" "$tmp/app.c" \
  -o "$tmp/app" -L"$build/core" -ldimple -Wl,-rpath,"$build/core"
cat >"$tmp/dimple.conf" <<CONF
[dimple]
database = todo.db
[storage]
plugin   = file
path     = sync-store
CONF
run_app() { (cd "$tmp" && ./app) >"$tmp/app.out" 2>&1 &&
  grep -qx 'open todos: \[{"n":0}\]' "$tmp/app.out" &&
  grep -qx 'open todos: \[{"n":1}\]' "$tmp/app.out"; }
check "README's example runs and prints what README says" run_app

cat >"$tmp/init.c" <<'C'
#include <dimple.h>
int main(void)
{
    dimple_options o = DIMPLE_OPTIONS_INIT;
    dimple_sync_options so = DIMPLE_SYNC_OPTIONS_INIT;
    dimple_sync_stats st = DIMPLE_SYNC_STATS_INIT;
    dimple_live_options lo = DIMPLE_LIVE_OPTIONS_INIT;
    dimple_history_query hq = DIMPLE_HISTORY_QUERY_INIT;
    return !(o.size == sizeof o && so.size == sizeof so &&
             st.size == sizeof st && lo.size == sizeof lo &&
             hq.size == sizeof hq && !o.tables && !so.flags && !st.errors &&
             !lo.delivery && !hq.table);
}
C
cp "$tmp/init.c" "$tmp/init.cpp"
check "the _INIT macros in C11, -pedantic -Wall -Wextra" \
  "$cc" -std=c11 -pedantic -Wall -Wextra -Werror "${inc[@]}" "$tmp/init.c" -o "$tmp/init_c"
check "the _INIT macros set size and zero the rest (C)" "$tmp/init_c"
check "the _INIT macros in C++11, -pedantic -Wall -Wextra" \
  "$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror "${inc[@]}" "$tmp/init.cpp" -o "$tmp/init_cpp"
check "the _INIT macros set size and zero the rest (C++)" "$tmp/init_cpp"
echo "1..$n"
[ "$fail" -eq 0 ]
