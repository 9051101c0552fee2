/*
 * Queues, 2 producers and 2 consumers moving n items:
 *   - bounded Queue(1024) with full blocking semantics: libconc, a
 *     hand-written pthread ring (one mutex, two condition variables), and
 *     CPython's queue.Queue;
 *   - unbounded SimpleQueue: libconc, GLib's GAsyncQueue and CPython's
 *     queue.SimpleQueue.
 * Items are non-NULL pointers (GAsyncQueue refuses NULL). Every variant
 * checks that the consumers received exactly the sum of what was put.
 *
 * Locking: each variant's queue is its own synchronisation; the harness
 * releases the four threads together (bench_threads).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "conc/queue.h"

#ifdef BENCH_HAVE_GLIB
#include <glib.h>
#endif

#define CAP 1024

struct ctx {
  long per_thread; /* items per producer (= per consumer) */
  long sum[2];     /* per consumer */
  conc_queue_t q;
  conc_simple_queue_t sq;
  /* the hand-written ring */
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  void *ring[CAP];
  size_t head, count;
#ifdef BENCH_HAVE_GLIB
  GAsyncQueue *gq;
#endif
};

static double run4(struct ctx *c, long n, bench_worker_fn fn) {
  c->per_thread = n / 2 > 0 ? n / 2 : 1;
  c->sum[0] = c->sum[1] = 0;
  double t0 = bench_now();
  bench_threads(4, fn, c);
  double secs = bench_now() - t0;
  long want = c->per_thread * (c->per_thread + 1); /* two producers */
  if (c->sum[0] + c->sum[1] != want) {
    fprintf(stderr, "queue bench: lost items (%ld of %ld)\n",
            c->sum[0] + c->sum[1], want);
    return -1;
  }
  return secs;
}

/* ---- bounded: libconc Queue ------------------------------------------- */

static void conc_q_worker(void *arg, int idx) {
  struct ctx *c = arg;
  if (idx < 2) {
    for (long i = 1; i <= c->per_thread; i++)
      conc_queue_put(&c->q, (void *)(intptr_t)i, true, -1);
  } else {
    long s = 0;
    for (long i = 0; i < c->per_thread; i++) {
      void *p;
      conc_queue_get(&c->q, &p, true, -1);
      s += (intptr_t)p;
    }
    c->sum[idx - 2] = s;
  }
}

static double run_conc_queue(void *arg, long n) {
  return run4(arg, n, conc_q_worker);
}

/* ---- bounded: pthread mutex + two condition variables ------------------- */

static void ring_put(struct ctx *c, void *item) {
  pthread_mutex_lock(&c->mu);
  while (c->count == CAP)
    pthread_cond_wait(&c->not_full, &c->mu);
  c->ring[(c->head + c->count++) % CAP] = item;
  pthread_cond_signal(&c->not_empty);
  pthread_mutex_unlock(&c->mu);
}

static void *ring_get(struct ctx *c) {
  pthread_mutex_lock(&c->mu);
  while (c->count == 0)
    pthread_cond_wait(&c->not_empty, &c->mu);
  void *item = c->ring[c->head];
  c->head = (c->head + 1) % CAP;
  c->count--;
  pthread_cond_signal(&c->not_full);
  pthread_mutex_unlock(&c->mu);
  return item;
}

static void ring_worker(void *arg, int idx) {
  struct ctx *c = arg;
  if (idx < 2) {
    for (long i = 1; i <= c->per_thread; i++)
      ring_put(c, (void *)(intptr_t)i);
  } else {
    long s = 0;
    for (long i = 0; i < c->per_thread; i++)
      s += (intptr_t)ring_get(c);
    c->sum[idx - 2] = s;
  }
}

static double run_ring(void *arg, long n) { return run4(arg, n, ring_worker); }

static const char py_queue[] =
    "import sys, threading, time, queue\n"
    "n = int(sys.argv[1]) // 2\n"
    "q = queue.Queue(1024)\n"
    "def prod():\n"
    "    for i in range(1, n + 1): q.put(i)\n"
    "def cons():\n"
    "    for _ in range(n): q.get()\n"
    "ts = [threading.Thread(target=f) for f in (prod, prod, cons, cons)]\n"
    "t0 = time.perf_counter()\n"
    "for t in ts: t.start()\n"
    "for t in ts: t.join()\n"
    "print(time.perf_counter() - t0)\n";

/* ---- unbounded: libconc SimpleQueue ------------------------------------- */

static void conc_sq_worker(void *arg, int idx) {
  struct ctx *c = arg;
  if (idx < 2) {
    for (long i = 1; i <= c->per_thread; i++)
      conc_simple_queue_put(&c->sq, (void *)(intptr_t)i);
  } else {
    long s = 0;
    for (long i = 0; i < c->per_thread; i++) {
      void *p;
      conc_simple_queue_get(&c->sq, &p, true, -1);
      s += (intptr_t)p;
    }
    c->sum[idx - 2] = s;
  }
}

static double run_conc_sq(void *arg, long n) {
  return run4(arg, n, conc_sq_worker);
}

#ifdef BENCH_HAVE_GLIB
static void glib_worker(void *arg, int idx) {
  struct ctx *c = arg;
  if (idx < 2) {
    for (long i = 1; i <= c->per_thread; i++)
      g_async_queue_push(c->gq, (void *)(intptr_t)i);
  } else {
    long s = 0;
    for (long i = 0; i < c->per_thread; i++)
      s += (intptr_t)g_async_queue_pop(c->gq);
    c->sum[idx - 2] = s;
  }
}

static double run_glib(void *arg, long n) { return run4(arg, n, glib_worker); }
#endif

static const char py_simple[] =
    "import sys, threading, time, queue\n"
    "n = int(sys.argv[1]) // 2\n"
    "q = queue.SimpleQueue()\n"
    "def prod():\n"
    "    for i in range(1, n + 1): q.put(i)\n"
    "def cons():\n"
    "    for _ in range(n): q.get()\n"
    "ts = [threading.Thread(target=f) for f in (prod, prod, cons, cons)]\n"
    "t0 = time.perf_counter()\n"
    "for t in ts: t.start()\n"
    "for t in ts: t.join()\n"
    "print(time.perf_counter() - t0)\n";

int main(int argc, char **argv) {
  bench_init(argc, argv);
  static struct ctx c;
  if (conc_queue_init(&c.q, &(conc_queue_opts_t){.maxsize = CAP}) != 0 ||
      conc_simple_queue_init(&c.sq, NULL) != 0)
    return 1;
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.not_empty, NULL);
  pthread_cond_init(&c.not_full, NULL);
#ifdef BENCH_HAVE_GLIB
  c.gq = g_async_queue_new();
#endif
  bench_variant_t v[4];
  int nv = 0;
  v[nv++] = (bench_variant_t){"libconc Queue(1024)", run_conc_queue, &c, 0};
  v[nv++] = (bench_variant_t){"pthread mutex+2 cond ring", run_ring, &c, 0};
  v[nv++] = (bench_variant_t){"CPython queue.Queue(1024)", bench_python_fn,
                              (void *)py_queue, 100000};
  bench_compare("bounded Queue 2P/2C", "items", 2000000, v, nv);

  nv = 0;
  v[nv++] = (bench_variant_t){"libconc SimpleQueue", run_conc_sq, &c, 0};
#ifdef BENCH_HAVE_GLIB
  v[nv++] = (bench_variant_t){"GLib GAsyncQueue", run_glib, &c, 0};
#endif
  v[nv++] = (bench_variant_t){"CPython queue.SimpleQueue", bench_python_fn,
                              (void *)py_simple, 200000};
  bench_compare("SimpleQueue 2P/2C", "items", 2000000, v, nv);

  conc_queue_destroy(&c.q);
  conc_simple_queue_destroy(&c.sq);
  return bench_finish();
}
