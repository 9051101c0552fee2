#!/usr/bin/env bash
# Coroutine stage (issue 5), run by .ci/run after the generic stages (which
# already run test_coro on the default asm backend under gcc, clang, ASan
# and TSan). Here:
#   1. the ucontext backend, and the asm backend with CONC_CORO_SAVE_FPU;
#   2. both under valgrind memcheck;
#   3. libconc.so is not marked CET shadow-stack / IBT compatible (the asm
#      switch does not switch shadow stacks, see docs/coroutines.md);
#   4. aarch64: cross-built with aarch64-linux-gnu-gcc (asm, asm saving
#      FPCR, ucontext)
#      and test_coro run under qemu-aarch64. cmocka is not available for
#      aarch64, so test_coro.c is compiled with -DCONC_TEST_MINI against
#      tests/coro_minitest.h, a stand-in for the cmocka calls it uses;
#   5. a million switches, and a million create + switch + finish + destroy
#      cycles on a warm stack pool, make no system call (strace -c -f,
#      compared with a run doing none).
set -euo pipefail
cd "$(dirname "$0")/../.."
step() { printf '\n-- coro: %s\n' "$*"; }
common=(-G Ninja -DCMAKE_BUILD_TYPE=Debug -DCONC_BUILD_BENCH=OFF
        -DCONC_BUILD_EXAMPLES=OFF -DCONC_BUILD_TESTS=ON)

step "ucontext backend"
cmake -S . -B build-ci-coro-uc "${common[@]}" -DCONC_CORO_BACKEND=ucontext >/dev/null
cmake --build build-ci-coro-uc --target test_coro
./build-ci-coro-uc/tests/test_coro

step "asm backend saving FP control words"
cmake -S . -B build-ci-coro-fpu "${common[@]}" -DCONC_CORO_BACKEND=asm \
  -DCONC_CORO_SAVE_FPU=ON >/dev/null
cmake --build build-ci-coro-fpu --target test_coro conc
./build-ci-coro-fpu/tests/test_coro

step "valgrind memcheck"
for b in build-ci-coro-fpu build-ci-coro-uc; do
  valgrind -q --error-exitcode=9 --child-silent-after-fork=yes \
    "./$b/tests/test_coro"
done

step "CET: no shadow-stack / IBT marking"
so=$(ls build-ci-coro-fpu/src/libconc.so.* | head -n1)
if readelf -n "$so" | grep -Eq 'SHSTK|IBT'; then
  echo "libconc.so claims CET compatibility, but the asm switch does not" \
       "switch shadow stacks" >&2
  exit 1
fi

step "aarch64 under qemu-user"
for config in asm asm-fpu ucontext; do
  backend=${config%-fpu}
  fpu=OFF
  defs=(-DCONC_TEST_BACKEND_$backend=1)
  if [ "$config" = asm-fpu ]; then
    fpu=ON
    defs+=(-DCONC_CORO_SAVE_FPU=1)
  fi
  dir=build-ci-coro-a64-$config
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
    -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc \
    -DCMAKE_ASM_COMPILER=aarch64-linux-gnu-gcc \
    -DCONC_CORO_BACKEND=$backend -DCONC_CORO_SAVE_FPU=$fpu \
    -DCONC_BUILD_TESTS=OFF -DCONC_BUILD_EXAMPLES=OFF \
    -DCONC_BUILD_BENCH=OFF >/dev/null
  cmake --build "$dir" --target conc_static
  aarch64-linux-gnu-gcc -std=c11 -g -O1 -Wall -Wextra -Werror \
    -Wno-unused-parameter -D_GNU_SOURCE -DCONC_TEST_MINI "${defs[@]}" \
    -Iinclude -Isrc -Itests tests/test_coro.c "$dir/src/libconc.a" \
    -lpthread -lm -o "$dir/test_coro"
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$dir/test_coro"
done

step "no system call per switch"
cmake -S . -B build-ci-coro-rel -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCONC_BUILD_TESTS=OFF -DCONC_BUILD_EXAMPLES=OFF -DCONC_BUILD_BENCH=ON >/dev/null
cmake --build build-ci-coro-rel --target bench_coro
calls() {
  strace -f -c -o build-ci-coro-rel/strace.txt \
    ./build-ci-coro-rel/bench/bench_coro "$1" "$2" >/dev/null
  awk '$NF == "total" { print $4 }' build-ci-coro-rel/strace.txt
}
for what in --switches --creates; do
  base=$(calls $what 0)
  million=$(calls $what 1000000)
  echo "system calls: $base for $what 0, $million for $what 1000000"
  [ "$base" = "$million" ]
done
