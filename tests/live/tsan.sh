#!/usr/bin/env bash
# ThreadSanitizer check of the live-query thread rules (and of the webhook
# plugin's sender thread): builds the core, the notifier plugins and the
# threaded tests with -fsanitize=thread in their own build folder
# (build/tsan, or $TSAN_BUILD) and runs them. Exit status: theirs.
#   tests/live/tsan.sh            from the source root, or from meson test
set -euo pipefail
root=${DIMPLE_TEST_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${TSAN_BUILD:-$root/build/tsan}

# One build at a time in that folder (meson test may run us in parallel
# with another checkout's run).
exec 9>"$build.lock"
flock -w 600 9

# werror off here: -Werror is enforced by the ASan build of the suite; this
# build only hunts data races, and gcc's warnings differ with TSan's flags.
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" -Db_sanitize=thread -Db_lundef=false \
    -Dbuildtype=debugoptimized -Dwerror=false >"$build.setup.log" 2>&1 ||
    { cat "$build.setup.log" >&2; exit 1; }
fi
ninja -C "$build" tests/live/test_live_threads tests/live/test_live \
  tests/notifiers/test_notifiers plugins/jsonl/dimple-jsonl.so \
  plugins/webhook/dimple-webhook.so plugins/memory/dimple-memory.so \
  plugins/lww/dimple-lww.so >"$build.ninja.log" 2>&1 ||
  { tail -40 "$build.ninja.log" >&2; exit 1; }

export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export DIMPLE_TEST_SRCDIR="$root"
export DIMPLE_PLUGIN_PATH="$build/plugins/jsonl:$build/plugins/webhook:$build/plugins/memory:$build/plugins/lww"
# setarch -R: TSan of gcc 12 cannot map its shadow memory with the high
# mmap randomisation of newer kernels; without ASLR it always can.
run() { if setarch "$(uname -m)" -R true 2>/dev/null; then setarch "$(uname -m)" -R "$@"; else "$@"; fi; }
rc=0
for t in tests/live/test_live_threads tests/live/test_live tests/notifiers/test_notifiers; do
  echo "# tsan: $t"
  run "$build/$t" || rc=1
done
exit $rc
