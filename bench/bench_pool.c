/*
 * Pool and ProcessPoolExecutor (issue 14) against CPython's
 * multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor (fork
 * context), 2 workers each, in the same run:
 *
 *   - map of x*2 over 100,000 ints: the typed path (conc_pool_map_typed)
 *     and the byte path (conc_pool_map) against Pool(2).map;
 *   - the apply_async round trip of a no-op (submit, run, get), and the
 *     synchronous apply, against Pool.apply_async(f).get() / Pool.apply;
 *   - ProcessPoolExecutor submit + result of a no-op against
 *     ex.submit(f).result();
 *   - a worker killed mid-task: until its task reports the death, and until
 *     the replacement worker is up (libconc only: CPython's Pool hangs and
 *     its executor breaks).
 *
 * Pool start-up and shutdown are outside the timed part everywhere.
 * Locking: each variant runs in the calling thread only.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "conc.h"

#define ITEMS 100000
#define WORKERS 2

static int doubler(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc, (void)rl;
  *(int *)r = *(const int *)a * 2;
  return 0;
}

static int noop(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)a, (void)al, (void)r, (void)rc, (void)rl;
  return 0;
}

static int suicide(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)a, (void)al, (void)r, (void)rc, (void)rl;
  raise(SIGKILL);
  return 0;
}

static int in[ITEMS], out[ITEMS];

/* n items, in maps of ITEMS (a smaller last one); arg: the typed path? */
static double run_map(void *arg, long n) {
  bool typed = arg != NULL;
  for (int i = 0; i < ITEMS; i++)
    in[i] = i;
  conc_pool_t p;
  if (conc_pool_init(&p, &(conc_pool_opts_t){.processes = WORKERS}))
    return -1;
  /* start-up, untimed: one map touches the transfer area's pages (CPython's
   * script maps 10 items before its clock starts) */
  if (conc_pool_map_typed(&p, doubler, in, ITEMS, sizeof(int), sizeof(int),
                          NULL, out, NULL))
    return -1;
  double t0 = bench_now();
  for (long done = 0; done < n;) {
    size_t k = (size_t)(n - done < ITEMS ? n - done : ITEMS);
    int rc = typed ? conc_pool_map_typed(&p, doubler, in, k, sizeof(int),
                                         sizeof(int), NULL, out, NULL)
                   : conc_pool_map(&p, doubler, in, k, sizeof(int), sizeof(int),
                                   NULL, out, NULL);
    if (rc || out[k - 1] != 2 * (int)(k - 1))
      return -1;
    done += (long)k;
  }
  double t = bench_now() - t0;
  conc_pool_destroy(&p);
  return t;
}

static double run_apply_async(void *arg, long n) {
  (void)arg;
  conc_pool_t p;
  if (conc_pool_init(&p, &(conc_pool_opts_t){.processes = WORKERS}) ||
      conc_pool_apply(&p, noop, NULL, 0, NULL, 0, NULL, NULL)) /* as CPython */
    return -1;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    conc_async_result_t *r;
    if (conc_pool_apply_async(&p, noop, NULL, 0, 0, NULL, &r) ||
        conc_async_result_get(r, CONC_FOREVER, NULL, 0))
      return -1;
    conc_async_result_release(r);
  }
  double t = bench_now() - t0;
  conc_pool_destroy(&p);
  return t;
}

static double run_apply(void *arg, long n) {
  (void)arg;
  conc_pool_t p;
  if (conc_pool_init(&p, &(conc_pool_opts_t){.processes = WORKERS}) ||
      conc_pool_apply(&p, noop, NULL, 0, NULL, 0, NULL, NULL)) /* as CPython */
    return -1;
  double t0 = bench_now();
  for (long i = 0; i < n; i++)
    if (conc_pool_apply(&p, noop, NULL, 0, NULL, 0, NULL, NULL))
      return -1;
  double t = bench_now() - t0;
  conc_pool_destroy(&p);
  return t;
}

static double run_submit(void *arg, long n) {
  (void)arg;
  conc_process_executor_t ex;
  conc_future_t *f;
  if (conc_process_executor_init(
          &ex, &(conc_process_executor_opts_t){.max_workers = WORKERS}))
    return -1;
  if (conc_process_executor_submit(&ex, noop, NULL, 0, 0, &f) ||
      conc_process_future_result(f, CONC_FOREVER, NULL, 0, NULL))
    return -1; /* as CPython's script, one call before the clock */
  conc_future_release(f);
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    if (conc_process_executor_submit(&ex, noop, NULL, 0, 0, &f) ||
        conc_process_future_result(f, CONC_FOREVER, NULL, 0, NULL))
      return -1;
    conc_future_release(f);
  }
  double t = bench_now() - t0;
  conc_process_executor_destroy(&ex);
  return t;
}

/* n kills: a task that SIGKILLs its worker, until get() reports it (arg
 * NULL) or until the replacement is up as well (arg non-NULL). */
static double run_kill(void *arg, long n) {
  conc_pool_t p;
  if (conc_pool_init(&p, &(conc_pool_opts_t){.processes = WORKERS}))
    return -1;
  double total = 0;
  for (long i = 0; i < n; i++) {
    while (conc_pool_pids(&p, NULL, 0) != WORKERS) /* previous replacement */
      sched_yield();
    double t0 = bench_now();
    conc_async_result_t *r;
    if (conc_pool_apply_async(&p, suicide, NULL, 0, 0, NULL, &r) ||
        conc_async_result_get(r, CONC_FOREVER, NULL, 0) != CONC_EWORKERDIED)
      return -1;
    while (arg && conc_pool_pids(&p, NULL, 0) != WORKERS)
      sched_yield();
    total += bench_now() - t0;
    conc_async_result_release(r);
  }
  conc_pool_destroy(&p);
  return total;
}

static const char py_map[] = "import sys, time, multiprocessing as mp\n"
                             "def f(x): return x * 2\n"
                             "if __name__ == '__main__':\n"
                             "    n = int(sys.argv[1])\n"
                             "    with mp.get_context('fork').Pool(2) as p:\n"
                             "        p.map(f, range(10))\n"
                             "        t0 = time.perf_counter()\n"
                             "        done = 0\n"
                             "        while done < n:\n"
                             "            k = min(n - done, 100000)\n"
                             "            r = p.map(f, range(k))\n"
                             "            done += k\n"
                             "        t = time.perf_counter() - t0\n"
                             "    print(t)\n";

static const char py_apply_async[] =
    "import sys, time, multiprocessing as mp\n"
    "def f(): return None\n"
    "if __name__ == '__main__':\n"
    "    n = int(sys.argv[1])\n"
    "    with mp.get_context('fork').Pool(2) as p:\n"
    "        p.apply_async(f).get()\n"
    "        t0 = time.perf_counter()\n"
    "        for _ in range(n):\n"
    "            p.apply_async(f).get()\n"
    "        t = time.perf_counter() - t0\n"
    "    print(t)\n";

static const char py_apply[] = "import sys, time, multiprocessing as mp\n"
                               "def f(): return None\n"
                               "if __name__ == '__main__':\n"
                               "    n = int(sys.argv[1])\n"
                               "    with mp.get_context('fork').Pool(2) as p:\n"
                               "        p.apply(f)\n"
                               "        t0 = time.perf_counter()\n"
                               "        for _ in range(n):\n"
                               "            p.apply(f)\n"
                               "        t = time.perf_counter() - t0\n"
                               "    print(t)\n";

static const char py_submit[] =
    "import sys, time, multiprocessing as mp\n"
    "from concurrent.futures import ProcessPoolExecutor\n"
    "def f(): return None\n"
    "if __name__ == '__main__':\n"
    "    n = int(sys.argv[1])\n"
    "    with ProcessPoolExecutor(2, mp_context=mp.get_context('fork')) as "
    "ex:\n"
    "        ex.submit(f).result()\n"
    "        t0 = time.perf_counter()\n"
    "        for _ in range(n):\n"
    "            ex.submit(f).result()\n"
    "        t = time.perf_counter() - t0\n"
    "    print(t)\n";

int main(int argc, char **argv) {
  bench_init(argc, argv);
  bench_variant_t map[] = {
      {"libconc Pool.map, typed path", run_map, (void *)1, 0},
      {"libconc Pool.map, byte path", run_map, NULL, 0},
      {"CPython multiprocessing.Pool.map", bench_python_fn, (void *)py_map,
       200000},
  };
  bench_compare("Pool.map of x*2 over 100,000 ints (2 workers)", "items",
                2000000, map, 3);
  bench_variant_t byte_map[] = {
      {"libconc Pool.map, byte path", run_map, NULL, 0},
      {"CPython multiprocessing.Pool.map", bench_python_fn, (void *)py_map,
       200000},
  };
  bench_compare("Pool.map byte path of x*2 over 100,000 ints (2 workers)",
                "items", 2000000, byte_map, 2);
  bench_variant_t apply_async[] = {
      {"libconc Pool.apply_async + get", run_apply_async, NULL, 0},
      {"CPython Pool.apply_async(f).get()", bench_python_fn,
       (void *)py_apply_async, 2000},
  };
  bench_compare("apply_async round trip of a no-op (2 workers)", "calls", 20000,
                apply_async, 2);
  bench_variant_t apply[] = {
      {"libconc Pool.apply", run_apply, NULL, 0},
      {"CPython multiprocessing.Pool.apply", bench_python_fn, (void *)py_apply,
       2000},
  };
  bench_compare("Pool.apply round trip of a no-op (2 workers)", "calls", 20000,
                apply, 2);
  bench_variant_t submit[] = {
      {"libconc ProcessPoolExecutor", run_submit, NULL, 0},
      {"CPython ProcessPoolExecutor", bench_python_fn, (void *)py_submit, 2000},
  };
  bench_compare("ProcessPoolExecutor submit + result of a no-op (2 workers)",
                "calls", 20000, submit, 2);
  bench_variant_t kill_report[] = {
      {"libconc killed worker: task reported", run_kill, NULL, 0},
  };
  bench_compare("worker killed mid-task: until its task reports the death",
                "kills", 300, kill_report, 1);
  bench_variant_t kill_replace[] = {
      {"libconc killed worker: reported + replaced", run_kill, (void *)1, 0},
  };
  bench_compare("worker killed mid-task: until reported and replaced", "kills",
                300, kill_replace, 1);
  return bench_finish();
}
