#!/usr/bin/env bash
# Run every benchmark built in BUILD_DIR/bench (make bench does this).
#   bench/run.sh BUILD_DIR
# Each benchmark prints its own rates and ratios against a baseline run in
# the same process. To add yours: build it in bench/meson.build and add one
# line "name [args...]" to the list below.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: bench/run.sh BUILD_DIR}
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
[ -d "$build/bench" ] || { echo "run.sh: no $build/bench (build first)" >&2; exit 1; }

# Plugins are loaded from the build tree, as in the tests.
DIMPLE_PLUGIN_PATH=$(find "$build/plugins" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | tr '\n' ':')
export DIMPLE_PLUGIN_PATH
# Scratch data goes to the build folder (a real disk: fsync costs what it
# costs in use), not to a tmpfs.
export DIMPLE_BENCH_DIR=${DIMPLE_BENCH_DIR:-$build/bench}

benches=(
  "track_bench 200000"
  "track_bench 100000 100"
  "sync_bench 100000 1000000"
  "file_bench 1000 4096"
  "sftp_bench 300 1024"
  "s3_bench 400"
  "age_bench 256"
  "live_bench 20000"
)

rc=0
for line in "${benches[@]}"; do
  read -r -a argv <<<"$line"
  exe="$build/bench/${argv[0]}"
  if [ ! -x "$exe" ]; then
    echo "== ${argv[0]}: not built, skipped" >&2
    continue
  fi
  echo "== $line"
  (cd "$root" && "$exe" "${argv[@]:1}") || { echo "== ${argv[0]} failed" >&2; rc=1; }
done
exit $rc
