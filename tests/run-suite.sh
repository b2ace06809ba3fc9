#!/usr/bin/env bash
# Build the suite (ASan+UBSan by default), start the real test servers on
# loopback (tests/servers/*.sh), run `meson test`, stop the servers.
# A server that cannot start fails the run: nothing is skipped.
#   BUILD=dir     build folder (default build/asan)
#   VALGRIND=1    plain build, every test under valgrind
#   extra arguments go to `meson test` (e.g. a suite name)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build/asan}
case "$build" in /*) ;; *) build="$root/$build" ;; esac

if [ ! -f "$build/build.ninja" ]; then
  if [ -n "${VALGRIND:-}" ]; then
    meson setup "$build" "$root" -Dbuildtype=debug
  else
    meson setup "$build" "$root" -Db_sanitize=address,undefined -Db_lundef=false
  fi
fi
ninja -C "$build"

state=$(mktemp -d /tmp/dimple-servers.XXXXXX)
servers=("$root"/tests/servers/*.sh)
cleanup() {
  for s in "${servers[@]}"; do [ -e "$s" ] && bash "$s" stop "$state" >/dev/null 2>&1 || true; done
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start every server in parallel; each writes $state/<name>.env.
pids=()
for s in "${servers[@]}"; do
  [ -e "$s" ] || continue
  bash "$s" start "$state" >"$state/$(basename "$s" .sh).log" 2>&1 &
  pids+=("$!:$(basename "$s" .sh)")
done
for p in "${pids[@]}"; do
  if ! wait "${p%%:*}"; then
    echo "run-suite: the ${p#*:} test server did not start; its log:" >&2
    cat "$state/${p#*:}.log" >&2 || true
    exit 1
  fi
done
for e in "$state"/*.env; do [ -e "$e" ] && . "$e"; done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
wrap=()
[ -n "${VALGRIND:-}" ] && wrap=(--wrapper "valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite -q")

set +e
meson test -C "$build" --print-errorlogs --num-processes 2 "${wrap[@]}" "$@" 2>&1 | tee "$state/meson-test.out"
rc=${PIPESTATUS[0]}
set -e
ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$state/meson-test.out" | tail -1)
fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$state/meson-test.out" | tail -1)
to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$state/meson-test.out" | tail -1)
echo "${ok:-0} passed, $(( ${fail:-0} + ${to:-0} )) failed"
exit "$rc"
