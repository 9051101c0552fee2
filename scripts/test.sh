#!/usr/bin/env bash
# Builds libconc with its tests, examples and benchmarks and runs the whole
# suite with ctest. Extra arguments go to ctest (e.g. -L unit, -R sync).
# BUILD_DIR and CMAKE_ARGS (space-separated) choose another configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
dir=${BUILD_DIR:-build-test}
read -r -a extra <<<"${CMAKE_ARGS:-}"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${extra[@]}" >/dev/null
cmake --build "$dir"
ctest --test-dir "$dir" --output-on-failure -j2 "$@"
