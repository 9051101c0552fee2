#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, CONC_FUZZ=ON) in
# build-fuzz and runs each for SECONDS (default 10) from its corpus in
# fuzz/corpus/<target> (a scratch copy; new finds are not kept). Prints the
# executions of each run; a crash, a leak or a model mismatch fails it and
# leaves the reproducer in build-fuzz/artifacts/.
#   bash fuzz/run.sh            CI's short run: 3 x 10 s
#   bash fuzz/run.sh 600        the long run of docs/reliability.md
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
dir=${FUZZ_BUILD_DIR:-build-fuzz}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCONC_SANITIZER=address -DCONC_FUZZ=ON \
  -DCONC_BUILD_TESTS=OFF -DCONC_BUILD_EXAMPLES=OFF -DCONC_BUILD_BENCH=OFF \
  >/dev/null
cmake --build "$dir" --target fuzz_conn fuzz_pqueue fuzz_sync
mkdir -p "$dir/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in fuzz_conn fuzz_pqueue fuzz_sync; do
  work="$dir/corpus-$t"
  rm -rf "$work"
  mkdir -p "$work"
  if [ -d "fuzz/corpus/$t" ]; then
    cp fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  fi
  "$dir/fuzz/$t" -max_total_time="$secs" -max_len=1024 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$t-" "$work" 2>"$dir/$t.log" || {
    tail -60 "$dir/$t.log" >&2
    echo "$t FAILED (reproducer in $dir/artifacts/)" >&2
    exit 1
  }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/$t.log")
  echo "$t: $runs executions in ${secs} s, no failure"
done
