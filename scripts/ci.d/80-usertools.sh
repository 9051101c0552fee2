#!/usr/bin/env bash
# Race detectors on users' programs (issue 13), run by .ci/run after the
# generic stages. A correct program must report nothing under
# ThreadSanitizer, Helgrind and DRD when it links the ORDINARY installed
# libconc (built without any sanitizer; docs/debugging.md):
#   1. libconc is built normally and installed to a temporary prefix;
#   2. tests/usertools/usertools.c (counters under CONC_WITH_LOCK and
#      CONC_WITH_RLOCK, a bounded queue, an executor, a future, an Event, a
#      Condition, Semaphores, a Barrier, libconc threads) is built against
#      the install with pkg-config, once with -fsanitize=thread (gcc, and
#      clang where present) and once normally;
#   3. the TSan builds run (address-space randomisation off: some kernels
#      map memory where TSan's shadow does not expect it); any report fails;
#   4. the normal build runs under valgrind --tool=helgrind and --tool=drd
#      with --error-exitcode=1;
#   5. the project's own tests/test_queue (built against the same sources)
#      runs under Helgrind; tests/usertools/test_queue.supp suppresses only
#      the test's own stop flag, nothing in libconc.
# Before the annotations (commit 46571ce) the same program gave 13 TSan
# warnings, 10,175 Helgrind errors and 45,090 DRD errors.
set -euo pipefail
cd "$(dirname "$0")/../.."
step() { printf '\n-- usertools: %s\n' "$*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
common=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONC_BUILD_BENCH=OFF
        -DCONC_BUILD_EXAMPLES=OFF)

step "install libconc (no sanitizer) to $prefix"
cmake -S . -B build-ci-usertools "${common[@]}" -DCONC_BUILD_TESTS=OFF \
  -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build build-ci-usertools
cmake --install build-ci-usertools >/dev/null
pc=$(find "$prefix" -name conc.pc | head -1)
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs conc)
src=tests/usertools/usertools.c

build() { # build OUT CC EXTRA...
  local out=$1 cc=$2
  shift 2
  # shellcheck disable=SC2086
  "$cc" -std=c11 -g -O1 -Wall -Wextra -Werror "$@" "$src" $flags \
    -Wl,-rpath,"$libdir" -o "$tmp/$out"
}

run_tsan() { # run_tsan BINARY
  local log=$tmp/$1.log rc=0
  local norand=()
  if setarch "$(uname -m)" -R true 2>/dev/null; then
    norand=(setarch "$(uname -m)" -R)
  fi
  TSAN_OPTIONS="halt_on_error=0 exitcode=66" "${norand[@]}" "$tmp/$1" \
    >"$log" 2>&1 || rc=$?
  local n
  n=$(grep -c 'WARNING: ThreadSanitizer' "$log" || true)
  echo "$1: exit $rc, $n TSan reports"
  if [ "$rc" -ne 0 ] || [ "$n" -ne 0 ]; then
    cat "$log" >&2
    return 1
  fi
}

run_valgrind() { # run_valgrind TOOL BINARY [ARGS...]
  local tool=$1 bin=$2
  shift 2
  local log=$tmp/$tool-$(basename "$bin").log rc=0
  # --fair-sched: valgrind runs one thread at a time, and its default lock
  # lets threads that never block (a test's hammers) starve the others
  # for many minutes.
  valgrind --tool="$tool" --fair-sched=yes --error-exitcode=1 "$@" "$bin" \
    >"$log" 2>&1 ||
    rc=$?
  echo "$tool $(basename "$bin"): exit $rc," \
    "$(grep -m1 -o 'ERROR SUMMARY: [0-9,]* errors' "$log" || echo 'no summary')"
  if [ "$rc" -ne 0 ] || grep 'ERROR SUMMARY' "$log" |
    grep -qv 'ERROR SUMMARY: 0 errors'; then
    tail -200 "$log" >&2
    return 1
  fi
}

step "user program with -fsanitize=thread against the install"
build usertools-tsan-gcc cc -fsanitize=thread
run_tsan usertools-tsan-gcc
if command -v clang >/dev/null; then
  build usertools-tsan-clang clang -fsanitize=thread
  run_tsan usertools-tsan-clang
fi

step "user program under helgrind and drd"
build usertools cc
run_valgrind helgrind "$tmp/usertools"
run_valgrind drd "$tmp/usertools"

step "tests/test_queue under helgrind"
cmake -S . -B build-ci-usertools-tests "${common[@]}" -DCONC_BUILD_TESTS=ON \
  >/dev/null
cmake --build build-ci-usertools-tests --target test_queue
run_valgrind helgrind build-ci-usertools-tests/tests/test_queue \
  --suppressions=tests/usertools/test_queue.supp
