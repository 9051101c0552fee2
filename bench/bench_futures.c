/*
 * Thread-pool executors with futures, 2 workers:
 *   - throughput: submit no-op tasks in batches of 256, then wait for each
 *     result: libconc's Executor, a hand-written pthread pool (mutex +
 *     condition queue, a malloc'd future per task with its own mutex and
 *     condition), GLib's GThreadPool with the same futures, CPython's
 *     ThreadPoolExecutor;
 *   - latency: one submit -> result at a time on an idle pool (the workers
 *     have gone to sleep: 300 us pass untimed between tasks);
 *   - map over 100k items against CPython's executor.map;
 *   - scaling: S submitter threads x W workers, S and W the powers of two
 *     up to the machine's cores and the core count itself (--max N to go
 *     further), each submitter running its own batches of 256: the
 *     Executor against the pthread pool with the same number of workers.
 *
 * Options (before the harness's own): --max N (submitters and workers up
 * to N; default: the online CPUs).
 *
 * Locking: each pool is its own synchronisation; the benchmark thread is
 * the only submitter except in the scaling rows.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "conc/futures.h"

#ifdef BENCH_HAVE_GLIB
#include <glib.h>
#endif

#define BATCH 256
#define GAP_NS 300000

static int noop(void *arg, void **result) {
  *result = arg;
  return 0;
}

static void gap(void) {
  struct timespec ts = {0, GAP_NS};
  nanosleep(&ts, NULL);
}

/* ---- libconc ------------------------------------------------------------ */

static conc_executor_t ex;

/* n tasks in batches of BATCH on e; the sum of the results, or -1. */
static long conc_batches(conc_executor_t *e, long n) {
  conc_future_t *fs[BATCH];
  long check = 0;
  for (long done = 0; done < n;) {
    int b = n - done < BATCH ? (int)(n - done) : BATCH;
    for (int i = 0; i < b; i++)
      if (conc_executor_submit(e, noop, (void *)(intptr_t)(i + 1), &fs[i]))
        return -1;
    for (int i = 0; i < b; i++) {
      void *v;
      if (conc_future_result(fs[i], -1, &v))
        return -1;
      check += (intptr_t)v;
      conc_future_release(fs[i]);
    }
    done += b;
  }
  return check;
}

static double conc_batch(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  long check = conc_batches(&ex, n);
  double secs = bench_now() - t0;
  bench_keep(check);
  return check < 0 ? -1 : secs;
}

static double conc_latency(void *arg, long n) {
  (void)arg;
  double total = 0;
  for (long i = 0; i < n; i++) {
    gap();
    conc_future_t *f;
    double t0 = bench_now();
    if (conc_executor_submit(&ex, noop, NULL, &f) ||
        conc_future_result(f, -1, NULL))
      return -1;
    total += bench_now() - t0;
    conc_future_release(f);
  }
  return total;
}

static double conc_map(void *arg, long n) {
  (void)arg;
  void **in = malloc((size_t)n * sizeof(*in));
  if (!in)
    return -1;
  for (long i = 0; i < n; i++)
    in[i] = (void *)(intptr_t)i;
  conc_map_t m;
  long count = 0;
  double t0 = bench_now();
  if (conc_executor_map(&ex, noop, in, (size_t)n, -1, &m))
    return -1;
  void *v;
  while (conc_map_next(&m, &v) == 0)
    count++;
  conc_map_close(&m);
  double secs = bench_now() - t0;
  free(in);
  return count == n ? secs : -1;
}

/* ---- a hand-written pthread pool with per-task futures ------------------ */

struct hfuture {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  conc_fn_t fn;
  void *arg, *result;
  struct hfuture *next;
};

struct hpool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct hfuture *head, *tail;
  int stop, nthreads;
  pthread_t threads[64];
};

static struct hpool hp = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, {0}};

static void *hworker(void *arg) {
  struct hpool *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->head && !p->stop)
      pthread_cond_wait(&p->cv, &p->mu);
    struct hfuture *f = p->head;
    if (!f) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    p->head = f->next;
    if (!p->head)
      p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    void *r = NULL;
    f->fn(f->arg, &r);
    pthread_mutex_lock(&f->mu);
    f->result = r;
    f->done = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
  }
}

static void hpool_start(struct hpool *p, int nthreads) {
  p->nthreads = nthreads;
  for (int i = 0; i < nthreads; i++)
    p->threads[i] = bench_spawn(hworker, p);
}

static void hpool_stop(struct hpool *p) {
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nthreads; i++)
    bench_join(p->threads[i]);
}

static struct hfuture *hsubmit(struct hpool *p, conc_fn_t fn, void *arg) {
  struct hfuture *f = malloc(sizeof(*f));
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  f->done = 0;
  f->fn = fn;
  f->arg = arg;
  f->next = NULL;
  pthread_mutex_lock(&p->mu);
  if (p->tail)
    p->tail->next = f;
  else
    p->head = f;
  p->tail = f;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return f;
}

static void *hresult(struct hfuture *f) {
  pthread_mutex_lock(&f->mu);
  while (!f->done)
    pthread_cond_wait(&f->cv, &f->mu);
  void *r = f->result;
  pthread_mutex_unlock(&f->mu);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  free(f);
  return r;
}

static long hand_batches(struct hpool *p, long n) {
  struct hfuture *fs[BATCH];
  long check = 0;
  for (long done = 0; done < n;) {
    int b = n - done < BATCH ? (int)(n - done) : BATCH;
    for (int i = 0; i < b; i++)
      fs[i] = hsubmit(p, noop, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < b; i++)
      check += (intptr_t)hresult(fs[i]);
    done += b;
  }
  return check;
}

static double hand_batch(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  long check = hand_batches(&hp, n);
  double secs = bench_now() - t0;
  bench_keep(check);
  return secs;
}

static double hand_latency(void *arg, long n) {
  (void)arg;
  double total = 0;
  for (long i = 0; i < n; i++) {
    gap();
    double t0 = bench_now();
    hresult(hsubmit(&hp, noop, NULL));
    total += bench_now() - t0;
  }
  return total;
}

/* ---- scaling: S submitters x W workers ---------------------------------- */

struct scale {
  int submitters;
  long per;   /* tasks per submitter in this run */
  bool error; /* a libconc submit or result failed */
  conc_executor_t ex;
  struct hpool pool;
};

static void conc_scale_one(void *arg, int index) {
  (void)index;
  struct scale *sc = arg;
  long check = conc_batches(&sc->ex, sc->per);
  if (check < 0)
    sc->error = true;
  bench_keep(check);
}

static double conc_scale(void *arg, long n) {
  struct scale *sc = arg;
  sc->per = n / sc->submitters > 0 ? n / sc->submitters : 1;
  double secs = bench_threads(sc->submitters, conc_scale_one, sc);
  return sc->error ? -1 : secs * (double)n / (double)(sc->per * sc->submitters);
}

static void hand_scale_one(void *arg, int index) {
  (void)index;
  struct scale *sc = arg;
  bench_keep(hand_batches(&sc->pool, sc->per));
}

static double hand_scale(void *arg, long n) {
  struct scale *sc = arg;
  sc->per = n / sc->submitters > 0 ? n / sc->submitters : 1;
  double secs = bench_threads(sc->submitters, hand_scale_one, sc);
  return secs * (double)n / (double)(sc->per * sc->submitters);
}

static void scale_row(int submitters, int workers) {
  struct scale *sc = calloc(1, sizeof *sc);
  if (!sc || conc_executor_init(
                 &sc->ex, &(conc_executor_opts_t){.max_workers = workers})) {
    free(sc);
    return;
  }
  sc->submitters = submitters;
  sc->pool = (struct hpool){.mu = PTHREAD_MUTEX_INITIALIZER,
                            .cv = PTHREAD_COND_INITIALIZER};
  hpool_start(&sc->pool, workers);
  bench_variant_t v[] = {
      {"libconc Executor", conc_scale, sc, 0},
      {"pthread pool + futures", hand_scale, sc, 0},
  };
  char title[96];
  snprintf(title, sizeof title,
           "executor scaling: %d submitter%s x %d worker%s, batches of 256",
           submitters, submitters > 1 ? "s" : "", workers,
           workers > 1 ? "s" : "");
  bench_compare(title, "tasks", 400000, v, 2);
  conc_executor_destroy(&sc->ex);
  hpool_stop(&sc->pool);
  free(sc);
}

/* ---- GLib GThreadPool with the same futures ---------------------------- */

#ifdef BENCH_HAVE_GLIB
struct gfuture {
  GMutex mu;
  GCond cv;
  int done;
  void *arg, *result;
};

static GThreadPool *gpool;

static void gtask(gpointer data, gpointer user) {
  (void)user;
  struct gfuture *f = data;
  void *r = NULL;
  noop(f->arg, &r);
  g_mutex_lock(&f->mu);
  f->result = r;
  f->done = 1;
  g_cond_signal(&f->cv);
  g_mutex_unlock(&f->mu);
}

static struct gfuture *gsubmit(void *arg) {
  struct gfuture *f = g_new(struct gfuture, 1);
  g_mutex_init(&f->mu);
  g_cond_init(&f->cv);
  f->done = 0;
  f->arg = arg;
  g_thread_pool_push(gpool, f, NULL);
  return f;
}

static void *gresult(struct gfuture *f) {
  g_mutex_lock(&f->mu);
  while (!f->done)
    g_cond_wait(&f->cv, &f->mu);
  void *r = f->result;
  g_mutex_unlock(&f->mu);
  g_mutex_clear(&f->mu);
  g_cond_clear(&f->cv);
  g_free(f);
  return r;
}

static double glib_batch(void *arg, long n) {
  (void)arg;
  struct gfuture *fs[BATCH];
  long check = 0;
  double t0 = bench_now();
  for (long done = 0; done < n;) {
    int b = n - done < BATCH ? (int)(n - done) : BATCH;
    for (int i = 0; i < b; i++)
      fs[i] = gsubmit((void *)(intptr_t)(i + 1));
    for (int i = 0; i < b; i++)
      check += (intptr_t)gresult(fs[i]);
    done += b;
  }
  double secs = bench_now() - t0;
  bench_keep(check);
  return secs;
}

static double glib_latency(void *arg, long n) {
  (void)arg;
  double total = 0;
  for (long i = 0; i < n; i++) {
    gap();
    double t0 = bench_now();
    gresult(gsubmit(NULL));
    total += bench_now() - t0;
  }
  return total;
}
#endif

/* ---- CPython ------------------------------------------------------------- */

static const char py_batch[] =
    "import sys, time\n"
    "from concurrent.futures import ThreadPoolExecutor\n"
    "n = int(sys.argv[1])\n"
    "def noop(x): return x\n"
    "ex = ThreadPoolExecutor(2)\n"
    "ex.submit(noop, 0).result()\n"
    "t0 = time.perf_counter()\n"
    "done = 0\n"
    "while done < n:\n"
    "    b = min(256, n - done)\n"
    "    fs = [ex.submit(noop, i) for i in range(b)]\n"
    "    for f in fs: f.result()\n"
    "    done += b\n"
    "print(time.perf_counter() - t0)\n"
    "ex.shutdown()\n";

static const char py_map[] =
    "import sys, time\n"
    "from concurrent.futures import ThreadPoolExecutor\n"
    "n = int(sys.argv[1])\n"
    "def noop(x): return x\n"
    "ex = ThreadPoolExecutor(2)\n"
    "ex.submit(noop, 0).result()\n"
    "t0 = time.perf_counter()\n"
    "for r in ex.map(noop, range(n)): pass\n"
    "print(time.perf_counter() - t0)\n"
    "ex.shutdown()\n";

/* The thread counts the scaling rows try: powers of two, then max. */
static int next_count(int k, int max) {
  return k == max ? max + 1 : (k * 2 < max ? k * 2 : max);
}

/* Take this program's options out of argv; the harness parses the rest. */
static int own_options(int argc, char **argv, int *max) {
  int out = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--max") == 0 && i + 1 < argc)
      *max = atoi(argv[++i]);
    else
      argv[out++] = argv[i];
  }
  argv[out] = NULL;
  return out;
}

int main(int argc, char **argv) {
  int max = 0;
  argc = own_options(argc, argv, &max);
  bench_init(argc, argv);
  if (max <= 0)
    max = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (max < 1)
    max = 1;
  if (max > 64)
    max = 64;
  if (conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 2}))
    return 1;
  hpool_start(&hp, 2);
#ifdef BENCH_HAVE_GLIB
  gpool = g_thread_pool_new(gtask, NULL, 2, TRUE, NULL);
#endif
  bench_variant_t v[4];
  int nv = 0;
  v[nv++] = (bench_variant_t){"libconc Executor", conc_batch, NULL, 0};
  v[nv++] = (bench_variant_t){"pthread pool + futures", hand_batch, NULL, 0};
#ifdef BENCH_HAVE_GLIB
  v[nv++] =
      (bench_variant_t){"GLib GThreadPool + futures", glib_batch, NULL, 0};
#endif
  v[nv++] = (bench_variant_t){"CPython ThreadPoolExecutor", bench_python_fn,
                              (void *)py_batch, 20000};
  bench_compare("executor submit+result, batches of 256, 2 workers", "tasks",
                500000, v, nv);

  nv = 0;
  v[nv++] = (bench_variant_t){"libconc Executor", conc_latency, NULL, 0};
  v[nv++] = (bench_variant_t){"pthread pool + futures", hand_latency, NULL, 0};
#ifdef BENCH_HAVE_GLIB
  v[nv++] =
      (bench_variant_t){"GLib GThreadPool + futures", glib_latency, NULL, 0};
#endif
  bench_compare("submit->result latency, idle pool", "round trips", 2000, v,
                nv);

  nv = 0;
  v[nv++] = (bench_variant_t){"libconc map", conc_map, NULL, 0};
  v[nv++] = (bench_variant_t){"CPython executor.map", bench_python_fn,
                              (void *)py_map, 20000};
  bench_compare("map over 100k items, 2 workers", "items", 100000, v, nv);

  conc_executor_destroy(&ex);
  hpool_stop(&hp);

  for (int s = 1; s <= max; s = next_count(s, max))
    for (int w = 1; w <= max; w = next_count(w, max))
      scale_row(s, w);
#ifdef BENCH_HAVE_GLIB
  g_thread_pool_free(gpool, FALSE, TRUE);
#endif
  return bench_finish();
}
