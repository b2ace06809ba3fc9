#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) in build/fuzz and run each
# for a bounded time (make fuzz).
#   FUZZ_SECONDS=60   time per target
#   FUZZ_BUILD=dir    build folder (default build/fuzz)
#   extra arguments: only the targets named (e.g. fuzz_age_header)
# A crash leaves its input in build/fuzz/crashes/ and fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$root/build/fuzz}
seconds=${FUZZ_SECONDS:-60}

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" "$root" -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false
fi
# Only the fuzz targets: the rest of the tree need not build under clang.
mapfile -t built < <(sed -n 's|^build \(tests/fuzz/fuzz_[A-Za-z0-9_]*\): .*|\1|p' "$build/build.ninja")
[ ${#built[@]} -gt 0 ] || { echo "fuzz: no fuzz targets in $build" >&2; exit 1; }
ninja -C "$build" "${built[@]}"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for t in "$build"/tests/fuzz/fuzz_*; do
    [ -x "$t" ] && [ -f "$t" ] && targets+=("$(basename "$t")")
  done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets built" >&2; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/crashes"
rc=0
for t in "${targets[@]}"; do
  seeds="$root/tests/fuzz/corpus/${t#fuzz_}"
  work="$build/corpus/${t#fuzz_}"   # grows here; the repo's seeds stay as they are
  mkdir -p "$work"
  echo "== $t (${seconds}s)"
  dirs=("$work")
  [ -d "$seeds" ] && dirs+=("$seeds")
  if ! "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
      -artifact_prefix="$build/crashes/$t-" "${dirs[@]}" 2>"$build/$t.log"; then
    echo "== $t FAILED; see $build/$t.log and $build/crashes/" >&2
    tail -40 "$build/$t.log" >&2
    rc=1
  else
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$build/$t.log" || true
  fi
done
exit $rc
