#!/usr/bin/env bash
# Checks the shared library's exported symbols (it is built with hidden
# visibility; CONC_EXTERN marks what is exported):
#   - every exported symbol starts with conc_;
#   - every exported symbol is declared in a public header under include/
#     (an internal conc__ helper may be exported only when a public inline
#     function calls it, and then its declaration is in the public header).
# Usage: bash scripts/check-symbols.sh [path/to/libconc.so]
#        (default: build-test/src/libconc.so, or the first one found)
set -euo pipefail
cd "$(dirname "$0")/.."
lib=${1:-}
if [ -z "$lib" ]; then
  for cand in build-test/src/libconc.so build*/src/libconc.so build/*/src/libconc.so; do
    if [ -e "$cand" ]; then lib=$cand; break; fi
  done
fi
if [ -z "$lib" ] || [ ! -e "$lib" ]; then
  echo "check-symbols: no libconc.so found (build first or pass its path)" >&2
  exit 1
fi
mapfile -t syms < <(nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u)
if [ ${#syms[@]} -eq 0 ]; then
  echo "check-symbols: $lib exports nothing" >&2
  exit 1
fi
bad=()
undeclared=()
internal=0
for s in "${syms[@]}"; do
  if [[ ! $s =~ ^conc_[A-Za-z0-9_]+$ ]]; then
    bad+=("$s")
  elif ! grep -rqw -- "$s" include/; then
    undeclared+=("$s")
  elif [[ $s == conc__* ]]; then
    internal=$((internal + 1))
  fi
done
status=0
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-symbols: $lib exports symbols outside the conc_ namespace:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  status=1
fi
if [ ${#undeclared[@]} -gt 0 ]; then
  echo "check-symbols: $lib exports symbols no public header declares:" >&2
  printf '  %s\n' "${undeclared[@]}" >&2
  status=1
fi
[ $status -eq 0 ] || exit $status
echo "check-symbols: $lib exports ${#syms[@]} symbols, all conc_* and declared" \
  "in include/ ($internal of them conc__ helpers of public inline functions)"
