#!/usr/bin/env bash
# Checks that the shared library exports only conc_* symbols (the library is
# built with hidden visibility; CONC_EXTERN marks the public API).
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
# Defined dynamic symbols; ignore the linker's version nodes.
syms=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -v '^LIBCONC' | sort -u)
bad=$(printf '%s\n' "$syms" | grep -v '^conc_[a-z0-9_]*$' | grep -v '^$' || true)
internal=$(printf '%s\n' "$syms" | grep '^conc__' || true)
count=$(printf '%s\n' "$syms" | grep -c '^conc_' || true)
if [ -n "$bad" ] || [ -n "$internal" ]; then
  echo "check-symbols: $lib exports symbols outside the public conc_ API:" >&2
  printf '  %s\n' $bad $internal >&2
  exit 1
fi
if [ "$count" -eq 0 ]; then
  echo "check-symbols: $lib exports no conc_ symbol at all" >&2
  exit 1
fi
echo "check-symbols: $lib exports $count symbols, all conc_*"
