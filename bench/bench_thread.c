/*
 * Thread start + join: create a thread running an empty target and wait for
 * it, n times in a row. libconc's Thread (default name "Thread-N" from the
 * counter, ident, native id, registry entry, OS name, join parked on the
 * platform wait) against raw pthread_create + pthread_join, GLib's
 * g_thread_new + g_thread_join and CPython's threading.Thread start + join.
 * Locking: each variant runs in the calling thread only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef BENCH_HAVE_GLIB
#include <glib.h>
#endif

#include "bench.h"
#include "conc.h"

static int empty(void *arg, void **result) {
  *result = arg;
  return 0;
}

static void *empty_pthread(void *arg) { return arg; }

/* ---- libconc Thread ----------------------------------------------------- */

static double run_conc(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    conc_thread_t t;
    if (conc_thread_init(&t, empty, NULL, NULL) || conc_thread_start(&t) ||
        conc_thread_join(&t, CONC_FOREVER))
      return -1;
    conc_thread_destroy(&t);
  }
  return bench_now() - t0;
}

/* ---- libconc Thread with an explicit name -------------------------------- */

static double run_conc_named(void *arg, long n) {
  (void)arg;
  const conc_thread_opts_t opts = {.name = "worker"};
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    conc_thread_t t;
    if (conc_thread_init(&t, empty, NULL, &opts) || conc_thread_start(&t) ||
        conc_thread_join(&t, CONC_FOREVER))
      return -1;
    conc_thread_destroy(&t);
  }
  return bench_now() - t0;
}

/* ---- raw pthreads -----------------------------------------------------------
 */

static double run_pthread(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, empty_pthread, NULL) || pthread_join(t, NULL))
      return -1;
  }
  return bench_now() - t0;
}

/* ---- GLib
 * ----------------------------------------------------------------------- */

#ifdef BENCH_HAVE_GLIB
static gpointer g_empty(gpointer arg) { return arg; }

static double run_glib(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++)
    g_thread_join(g_thread_new("worker", g_empty, NULL));
  return bench_now() - t0;
}
#endif

/* ---- CPython
 * ----------------------------------------------------------------------- */

static const char py_threads[] = "import sys, threading, time\n"
                                 "n = int(sys.argv[1])\n"
                                 "def f(): pass\n"
                                 "t0 = time.perf_counter()\n"
                                 "for _ in range(n):\n"
                                 "    t = threading.Thread(target=f)\n"
                                 "    t.start()\n"
                                 "    t.join()\n"
                                 "print(time.perf_counter() - t0)\n";

int main(int argc, char **argv) {
  bench_init(argc, argv);
  bench_variant_t v[] = {
      {"libconc Thread (default name)", run_conc, NULL, 0},
      {"libconc Thread (named)", run_conc_named, NULL, 0},
      {"pthread_create + join", run_pthread, NULL, 0},
#ifdef BENCH_HAVE_GLIB
      {"GLib g_thread_new + join", run_glib, NULL, 0},
#endif
      {"CPython threading.Thread", bench_python_fn, (void *)py_threads, 2000},
  };
  bench_compare("thread start + join", "threads", 10000, v,
                (int)(sizeof v / sizeof v[0]));
  return bench_finish();
}
