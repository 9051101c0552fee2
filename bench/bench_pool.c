/*
 * Pool: map of 10,000 small items (an int squared) and the apply round trip
 * (submit, run in a worker, result back in the caller), libconc's Pool
 * against CPython's multiprocessing.Pool (fork) with the same number of
 * workers. Pool start-up and shutdown are outside the timed part in both.
 * Locking: each variant runs in the calling thread only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "conc.h"

#define ITEMS 10000
#define WORKERS 2

static int square(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc, (void)rl;
  int x = *(const int *)a;
  *(int *)r = x * x;
  return 0;
}

/* n items, in maps of ITEMS (a smaller last one). */
static double run_map(void *arg, long n) {
  (void)arg;
  static int in[ITEMS], out[ITEMS];
  for (int i = 0; i < ITEMS; i++)
    in[i] = i;
  conc_pool_t p;
  if (conc_pool_init(&p, &(conc_pool_opts_t){.processes = WORKERS}))
    return -1;
  double t0 = bench_now();
  for (long done = 0; done < n;) {
    long k = n - done < ITEMS ? n - done : ITEMS;
    if (conc_pool_map(&p, square, in, (size_t)k, sizeof(int), out, sizeof(int),
                      NULL))
      return -1;
    done += k;
  }
  double t = bench_now() - t0;
  bench_keep(out[ITEMS - 1]);
  conc_pool_destroy(&p);
  return t;
}

static double run_apply(void *arg, long n) {
  (void)arg;
  conc_pool_t p;
  if (conc_pool_init(&p, &(conc_pool_opts_t){.processes = WORKERS}))
    return -1;
  int x = 7, y = 0;
  double t0 = bench_now();
  for (long i = 0; i < n; i++)
    if (conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, NULL))
      return -1;
  double t = bench_now() - t0;
  bench_keep(y);
  conc_pool_destroy(&p);
  return t;
}

static const char py_map[] = "import sys, time, multiprocessing as mp\n"
                             "def f(x): return x * x\n"
                             "if __name__ == '__main__':\n"
                             "    n = int(sys.argv[1])\n"
                             "    with mp.get_context('fork').Pool(2) as p:\n"
                             "        p.map(f, range(10))\n"
                             "        t0 = time.perf_counter()\n"
                             "        done = 0\n"
                             "        while done < n:\n"
                             "            k = min(n - done, 10000)\n"
                             "            p.map(f, range(k))\n"
                             "            done += k\n"
                             "        t = time.perf_counter() - t0\n"
                             "    print(t)\n";

static const char py_apply[] = "import sys, time, multiprocessing as mp\n"
                               "def f(x): return x * x\n"
                               "if __name__ == '__main__':\n"
                               "    n = int(sys.argv[1])\n"
                               "    with mp.get_context('fork').Pool(2) as p:\n"
                               "        p.apply(f, (7,))\n"
                               "        t0 = time.perf_counter()\n"
                               "        for _ in range(n):\n"
                               "            p.apply(f, (7,))\n"
                               "        t = time.perf_counter() - t0\n"
                               "    print(t)\n";

int main(int argc, char **argv) {
  bench_init(argc, argv);
  bench_variant_t map[] = {
      {"libconc Pool.map", run_map, NULL, 0},
      {"CPython multiprocessing.Pool.map", bench_python_fn, (void *)py_map, 0},
  };
  bench_compare("Pool.map of 10,000 ints (2 workers)", "items", 100000, map, 2);
  bench_variant_t apply[] = {
      {"libconc Pool.apply", run_apply, NULL, 0},
      {"CPython multiprocessing.Pool.apply", bench_python_fn, (void *)py_apply,
       2000},
  };
  bench_compare("Pool.apply round trip (2 workers)", "calls", 20000, apply, 2);
  return bench_finish();
}
