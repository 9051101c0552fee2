/*
 * Coroutine switch and creation: libconc's conc_coro_switch (whichever
 * backend this build uses) against Boost.Context's jump_fcontext (the C++
 * shim bench/coro_boost.cpp, when Boost.Context is installed), POSIX
 * swapcontext and Python's greenlet, in one run; then memory per suspended
 * coroutine and a million coroutines.
 *
 *   bench_coro [harness options]   the comparisons (bench/bench.h)
 *   bench_coro --switches N        only N one-way switches after setup: run
 *                                  it under `strace -c -f` with N = 0 and
 *                                  N = 1000000 to see that a switch makes no
 *                                  system call (scripts/ci.d/50-coro.sh)
 *   bench_coro --creates N         one warm-up coroutine, then N times
 *                                  create + switch + finish + destroy: the
 *                                  same strace check for the warm pool
 *
 * Locking: single-threaded; every variant runs on the main thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "bench.h"
#include "conc/coro.h"

/* Under ThreadSanitizer every coroutine is also a TSan fiber, whose
 * creation and destruction map and unmap TSan's per-thread state (about
 * 0.5 ms of CPU each): the creation benchmark runs 20 times fewer, so the
 * smoke run stays within its ctest timeout on a loaded machine. */
#if defined(__SANITIZE_THREAD__)
#define CREATE_N 50000
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CREATE_N 50000
#endif
#endif
#ifndef CREATE_N
#define CREATE_N 0 /* the comparison's n */
#endif

#ifdef BENCH_HAVE_BOOST_CONTEXT
double bench_boost_switch(long n);
double bench_boost_create(long n);
#endif

/* ---- libconc ----------------------------------------------------------- */

static int ping_fn(void *v, void **result) {
  (void)result;
  conc_coro_t *main = conc_coro_main();
  for (;;) {
    int rc = conc_coro_switch(main, v, NULL);
    if (rc != 0)
      return rc;
  }
}

static int switch_loop(long n, double *secs) {
  conc_coro_t co;
  if (conc_coro_init(&co, ping_fn, NULL, NULL) != 0 ||
      conc_coro_switch(&co, NULL, NULL) != 0)
    return -1;
  double t0 = bench_now();
  for (long i = 0; i < n / 2; i++)
    conc_coro_switch(&co, NULL, NULL);
  *secs = bench_now() - t0;
  return conc_coro_destroy(&co);
}

static double run_conc_switch(void *arg, long n) {
  (void)arg;
  double t;
  return switch_loop(n, &t) == 0 ? t : -1;
}

static int noop_fn(void *v, void **result) {
  *result = v;
  return 0;
}

static double run_conc_create(void *arg, long n) {
  (void)arg;
  conc_coro_t co;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    if (conc_coro_init(&co, noop_fn, NULL, NULL) != 0)
      return -1;
    conc_coro_switch(&co, NULL, NULL);
    conc_coro_destroy(&co);
  }
  return bench_now() - t0;
}

/* ---- Boost.Context ----------------------------------------------------- */

static double run_boost_switch(void *arg, long n) {
  (void)arg;
#ifdef BENCH_HAVE_BOOST_CONTEXT
  return bench_boost_switch(n);
#else
  (void)n;
  return -1;
#endif
}

static double run_boost_create(void *arg, long n) {
  (void)arg;
#ifdef BENCH_HAVE_BOOST_CONTEXT
  return bench_boost_create(n);
#else
  (void)n;
  return -1;
#endif
}

/* ---- POSIX ucontext ---------------------------------------------------- */

#define UC_STACK (64 * 1024)
static ucontext_t uc_main, uc_co;
static char *uc_stack;

static void uc_ping(void) {
  for (;;)
    swapcontext(&uc_co, &uc_main);
}

static double run_uc_switch(void *arg, long n) {
  (void)arg;
  if (!uc_stack && !(uc_stack = malloc(UC_STACK)))
    return -1;
  getcontext(&uc_co);
  uc_co.uc_stack.ss_sp = uc_stack;
  uc_co.uc_stack.ss_size = UC_STACK;
  uc_co.uc_link = NULL;
  makecontext(&uc_co, uc_ping, 0);
  swapcontext(&uc_main, &uc_co);
  double t0 = bench_now();
  for (long i = 0; i < n / 2; i++)
    swapcontext(&uc_main, &uc_co);
  return bench_now() - t0;
}

static double run_uc_create(void *arg, long n) {
  (void)arg;
  if (!uc_stack && !(uc_stack = malloc(UC_STACK)))
    return -1;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    getcontext(&uc_co);
    uc_co.uc_stack.ss_sp = uc_stack;
    uc_co.uc_stack.ss_size = UC_STACK;
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_ping, 0);
    swapcontext(&uc_main, &uc_co);
  }
  return bench_now() - t0;
}

/* ---- CPython greenlet (Debian's python3-greenlet) ---------------------- */

#define PY_PRELUDE                                                             \
  "import sys, time\n"                                                         \
  "sys.path.append('/usr/lib/python3/dist-packages')\n"                        \
  "from greenlet import greenlet, getcurrent\n"                                \
  "n = int(sys.argv[1])\n"                                                     \
  "main = getcurrent()\n"

static const char py_switch[] = PY_PRELUDE "def run():\n"
                                           "    while True:\n"
                                           "        main.switch()\n"
                                           "g = greenlet(run)\n"
                                           "g.switch()\n"
                                           "sw = g.switch\n"
                                           "t = time.perf_counter()\n"
                                           "for _ in range(n // 2):\n"
                                           "    sw()\n"
                                           "print(time.perf_counter() - t)\n";

static const char py_create[] = PY_PRELUDE "def run():\n"
                                           "    return None\n"
                                           "t = time.perf_counter()\n"
                                           "for _ in range(n):\n"
                                           "    greenlet(run).switch()\n"
                                           "print(time.perf_counter() - t)\n";

/* ---- memory ------------------------------------------------------------ */

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
      res = 0;
    fclose(f);
  }
  return res * sysconf(_SC_PAGESIZE);
}

static int suspend_fn(void *v, void **result) {
  (void)result;
  return conc_coro_switch(conc_coro_main(), v, NULL);
}

/* n coroutines with default options, each started and suspended; prints
 * the resident memory per coroutine and the time to make them all. */
static int many(long n) {
  conc_coro_t *cos = calloc((size_t)n, sizeof *cos);
  if (!cos)
    return -1;
  long before = rss_bytes();
  double t0 = bench_now();
  for (long i = 0; i < n; i++)
    if (conc_coro_init(&cos[i], suspend_fn, NULL, NULL) != 0 ||
        conc_coro_switch(&cos[i], NULL, NULL) != 0) {
      fprintf(stderr, "coroutine %ld of %ld failed\n", i, n);
      return -1;
    }
  double made = bench_now() - t0;
  long per = (rss_bytes() - before) / n;
  t0 = bench_now();
  for (long i = 0; i < n; i++)
    conc_coro_destroy(&cos[i]);
  double gone = bench_now() - t0;
  free(cos);
  printf("%ld suspended coroutines (default %zu KiB stacks, %s): "
         "%ld bytes RSS each (%.2f KiB); create+resume %.0f ns each, "
         "kill+destroy %.0f ns each\n",
         n, CONC_CORO_STACK_DEFAULT / 1024, conc_coro_backend(), per,
         per / 1024.0, made / n * 1e9, gone / n * 1e9);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--switches") == 0) {
    double t;
    return switch_loop(atol(argv[2]), &t) == 0 ? 0 : 1;
  }
  if (argc == 3 && strcmp(argv[1], "--creates") == 0)
    return run_conc_create(NULL, 1) >= 0 &&
                   run_conc_create(NULL, atol(argv[2])) >= 0
               ? 0
               : 1;
  bench_init(argc, argv);
  printf("backend: %s\n", conc_coro_backend());
  bench_variant_t sw[] = {
      {"libconc conc_coro_switch", run_conc_switch, NULL, 0},
      {"Boost.Context jump_fcontext", run_boost_switch, NULL, 0},
      {"POSIX swapcontext", run_uc_switch, NULL, 400000},
      {"CPython greenlet.switch", bench_python_fn, (void *)py_switch, 400000},
  };
  bench_compare("coroutine switch", "one-way switch", 4000000, sw, 4);
  bench_variant_t cr[] = {
      {"libconc init+switch+finish+destroy", run_conc_create, NULL, CREATE_N},
      {"Boost.Context make_fcontext+jump", run_boost_create, NULL, 0},
      {"POSIX makecontext+swapcontext", run_uc_create, NULL, 200000},
      {"CPython greenlet(run).switch()", bench_python_fn, (void *)py_create,
       200000},
  };
  bench_compare("coroutine create + first switch + finish (warm pool)",
                "coroutine", 1000000, cr, 4);
  if (many(bench_smoke() ? 1000 : 100000) != 0 ||
      (!bench_smoke() && many(1000000) != 0))
    return 1;
  return bench_finish();
}
