/*
 * Thread-pool executors with futures, 2 workers:
 *   - throughput: submit no-op tasks in batches of 256, then wait for each
 *     result: libconc's Executor, a hand-written pthread pool (mutex +
 *     condition queue, a malloc'd future per task with its own mutex and
 *     condition), GLib's GThreadPool with the same futures, CPython's
 *     ThreadPoolExecutor;
 *   - latency: one submit -> result at a time on an idle pool (the workers
 *     have gone to sleep: 300 us pass untimed between tasks);
 *   - map over 100k items against CPython's executor.map.
 *
 * Locking: each pool is its own synchronisation; the benchmark thread is
 * the only submitter.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

static double conc_batch(void *arg, long n) {
  (void)arg;
  conc_future_t *fs[BATCH];
  long check = 0;
  double t0 = bench_now();
  for (long done = 0; done < n;) {
    int b = n - done < BATCH ? (int)(n - done) : BATCH;
    for (int i = 0; i < b; i++)
      if (conc_executor_submit(&ex, noop, (void *)(intptr_t)(i + 1), &fs[i]))
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
  double secs = bench_now() - t0;
  bench_keep(check);
  return secs;
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

static struct hpool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct hfuture *head, *tail;
  int stop;
  pthread_t threads[2];
} hp = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, {0}};

static void *hworker(void *unused) {
  (void)unused;
  for (;;) {
    pthread_mutex_lock(&hp.mu);
    while (!hp.head && !hp.stop)
      pthread_cond_wait(&hp.cv, &hp.mu);
    struct hfuture *f = hp.head;
    if (!f) {
      pthread_mutex_unlock(&hp.mu);
      return NULL;
    }
    hp.head = f->next;
    if (!hp.head)
      hp.tail = NULL;
    pthread_mutex_unlock(&hp.mu);
    void *r = NULL;
    f->fn(f->arg, &r);
    pthread_mutex_lock(&f->mu);
    f->result = r;
    f->done = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
  }
}

static struct hfuture *hsubmit(conc_fn_t fn, void *arg) {
  struct hfuture *f = malloc(sizeof(*f));
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  f->done = 0;
  f->fn = fn;
  f->arg = arg;
  f->next = NULL;
  pthread_mutex_lock(&hp.mu);
  if (hp.tail)
    hp.tail->next = f;
  else
    hp.head = f;
  hp.tail = f;
  pthread_cond_signal(&hp.cv);
  pthread_mutex_unlock(&hp.mu);
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

static double hand_batch(void *arg, long n) {
  (void)arg;
  struct hfuture *fs[BATCH];
  long check = 0;
  double t0 = bench_now();
  for (long done = 0; done < n;) {
    int b = n - done < BATCH ? (int)(n - done) : BATCH;
    for (int i = 0; i < b; i++)
      fs[i] = hsubmit(noop, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < b; i++)
      check += (intptr_t)hresult(fs[i]);
    done += b;
  }
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
    hresult(hsubmit(noop, NULL));
    total += bench_now() - t0;
  }
  return total;
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

int main(int argc, char **argv) {
  bench_init(argc, argv);
  if (conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 2}))
    return 1;
  for (int i = 0; i < 2; i++)
    hp.threads[i] = bench_spawn(hworker, NULL);
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
  pthread_mutex_lock(&hp.mu);
  hp.stop = 1;
  pthread_cond_broadcast(&hp.cv);
  pthread_mutex_unlock(&hp.mu);
  for (int i = 0; i < 2; i++)
    bench_join(hp.threads[i]);
#ifdef BENCH_HAVE_GLIB
  g_thread_pool_free(gpool, FALSE, TRUE);
#endif
  return bench_finish();
}
