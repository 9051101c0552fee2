#!/usr/bin/env bash
# Event-loop stage (issues 11, 12), run by .ci/run after the generic stages
# (which run every loop test on epoll and, where a test names it, poll).
# Here:
#   1. the poll backend as the configured default (CONC_LOOP_POLLER=poll):
#      every loop, socket, stream, subprocess, hub and async-primitive test;
#   2. the optional io_uring backend (CONC_WITH_IO_URING=ON, liburing), the
#      same tests with CONC_LOOP_BACKEND=io_uring. Where the kernel refuses a
#      ring the loop falls back to epoll and the tests print that they did.
set -euo pipefail
cd "$(dirname "$0")/../.."
step() { printf '\n-- loop: %s\n' "$*"; }
common=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONC_BUILD_BENCH=OFF
        -DCONC_BUILD_EXAMPLES=OFF -DCONC_BUILD_TESTS=ON)
tests=(test_loop test_aio_sock test_aio_stream test_aio_proc test_aio_http
       test_aio_sync test_aio_queue test_aio_combine test_hub)

run_all() {
  local dir=$1
  for t in "${tests[@]}"; do
    [ -x "$dir/tests/$t" ] || continue
    echo "   $t"
    "$dir/tests/$t" >"$dir/$t.log" 2>&1 || { cat "$dir/$t.log"; return 1; }
    grep '^# ' "$dir/$t.log" || true
  done
}

step "poll as the default backend"
cmake -S . -B build-ci-loop-poll "${common[@]}" -DCONC_LOOP_POLLER=poll >/dev/null
cmake --build build-ci-loop-poll --target "${tests[@]}" >/dev/null
run_all build-ci-loop-poll

step "io_uring backend"
cmake -S . -B build-ci-loop-uring "${common[@]}" -DCONC_WITH_IO_URING=ON >/dev/null
cmake --build build-ci-loop-uring --target "${tests[@]}" >/dev/null
CONC_LOOP_BACKEND=io_uring run_all build-ci-loop-uring
