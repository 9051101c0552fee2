#!/usr/bin/env bash
# Builds every benchmark and runs it with full rounds, one after the other,
# writing the Markdown tables to docs/benchmarks-results.md (overwritten).
# Usage: bash bench/run_all.sh [--rounds N] [bench_name ...]
#   BUILD_DIR  build directory (default build-bench, a Release build)
#   OUT        output file (default docs/benchmarks-results.md)
# Run it on a machine that is otherwise idle: the figures are ratios of
# variants measured in the same rounds, but a busy machine still widens the
# quartiles. See docs/benchmarks.md for the method.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build-bench}
out=${OUT:-docs/benchmarks-results.md}
rounds=()
if [ "${1:-}" = "--rounds" ]; then
  rounds=(--rounds "$2")
  shift 2
fi
bash scripts/deps.sh test
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCONC_BUILD_TESTS=OFF -DCONC_BUILD_EXAMPLES=OFF -DCONC_BUILD_BENCH=ON >/dev/null
cmake --build "$dir" --target bench
if [ $# -gt 0 ]; then
  benches=()
  for b in "$@"; do benches+=("$dir/bench/$b"); done
else
  mapfile -t benches < <(find "$dir/bench" -maxdepth 1 -type f -name 'bench_*' -perm -u+x | sort)
fi
mkdir -p "$(dirname "$out")"
{
  echo "# Benchmark results"
  echo
  echo "Written by \`bench/run_all.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC');"
  echo "$(nproc) CPUs ($(uname -m), $(uname -r)); $(cc --version | head -1), Release build."
  echo "Method and reading guide: [benchmarks.md](benchmarks.md)."
} >"$out"
status=0
for b in "${benches[@]}"; do
  name=$(basename "$b")
  echo "== $name"
  printf '\n## %s\n' "$name" >>"$out"
  if ! "$b" "${rounds[@]}" --markdown "$out"; then
    echo "run_all: $name failed" >&2
    status=1
  fi
done
echo "wrote $out"
exit $status
