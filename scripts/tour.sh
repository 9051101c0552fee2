#!/usr/bin/env bash
# Builds the library and runs the tutorial tour (every lesson, in order).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
cmake -S . -B build-tour -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCONC_BUILD_TESTS=OFF -DCONC_BUILD_BENCH=OFF >/dev/null
cmake --build build-tour
cmake --build build-tour --target tour
