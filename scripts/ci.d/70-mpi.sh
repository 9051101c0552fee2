#!/usr/bin/env bash
# Distributed Pool stage (issue 15): builds libconc_mpi (CONC_WITH_MPI=ON,
# Debian's Open MPI, installed here when missing) and runs its tests under
# `mpirun --oversubscribe -np 3` (also with MPI_THREAD_SERIALIZED), alone
# (local fallback) and in spawn mode, again under ASan+UBSan, plus the
# benchmark's smoke run (libconc_mpi, a hand-written MPI
# master/worker, mpi4py.futures). Then installs to a scratch prefix and
# builds a program against `pkg-config conc-mpi`.
set -euo pipefail
cd "$(dirname "$0")/../.."
step() { printf '\n-- mpi: %s\n' "$*"; }
need=()
for p in libopenmpi-dev openmpi-bin python3-mpi4py; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${need[@]}"
fi
dir=build-ci-mpi
step "configure and build (CONC_WITH_MPI=ON)"
cmake -S . -B $dir -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONC_WITH_MPI=ON \
  -DCONC_BUILD_EXAMPLES=ON -DCONC_BUILD_TESTS=ON -DCONC_BUILD_BENCH=ON >/dev/null
cmake --build $dir >/dev/null
step "tests and bench smoke under mpirun"
(cd $dir && ctest -L mpi --output-on-failure)
step "test_mpi under ASan+UBSan (Open MPI's own leaks suppressed)"
asan=build-ci-mpi-asan
cmake -S . -B $asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONC_WITH_MPI=ON \
  -DCONC_SANITIZER=address -DCONC_BUILD_TESTS=ON >/dev/null
cmake --build $asan --target test_mpi >/dev/null
(cd $asan &&
  LSAN_OPTIONS="fast_unwind_on_malloc=0:suppressions=$PWD/../tests/mpi/lsan.supp:print_suppressions=0" \
  ASAN_OPTIONS=fast_unwind_on_malloc=0 ctest -R '^test_mpi' --output-on-failure)
step "install and build a program against pkg-config conc-mpi"
prefix=$(mktemp -d)
cmake --install $dir --prefix "$prefix" >/dev/null
cat >"$prefix/use_mpi.c" <<'C'
#include <conc/mpi.h>
#include <string.h>
static int twice(const void *a, size_t n, void *r, size_t cap, size_t *len) {
  (void)n; (void)cap;
  long x; memcpy(&x, a, sizeof x); x *= 2; memcpy(r, &x, sizeof x);
  *len = sizeof x; return 0;
}
CONC_TASK(twice, twice);
int main(int argc, char **argv) {
  if (CONC_MPI_MAIN(&argc, &argv) != 0) return 1;
  conc_pool_t pool;
  if (conc_mpi_pool_init(&pool, NULL) != 0) return 1;
  long in[100], out[100];
  for (int i = 0; i < 100; i++) in[i] = i;
  int rc = conc_pool_map(&pool, twice, in, 100, sizeof *in, sizeof *out, NULL, out, NULL);
  conc_pool_destroy(&pool);
  for (int i = 0; i < 100 && rc == 0; i++) rc = out[i] != 2 * i;
  return rc != 0;
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
cc -Wall -Werror -o "$prefix/use_mpi" "$prefix/use_mpi.c" $(pkg-config --cflags --libs conc-mpi) \
  -Wl,-rpath,"$prefix/lib" -Wl,-rpath,"$prefix/lib/x86_64-linux-gnu"
root=""
[ "$(id -u)" -eq 0 ] && root="--allow-run-as-root"
mpirun --oversubscribe $root -np 3 "$prefix/use_mpi"
"$prefix/use_mpi"
rm -rf "$prefix"
echo "   mpi stage OK"
