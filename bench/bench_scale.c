/*
 * Queue scaling: P producers x C consumers moving n items through one queue,
 * for P and C from 1 up to the machine's cores (or --max N), each
 * configuration one interleaved comparison of the same work:
 *   - bounded (maxsize 1024): libconc Queue(1024), a hand-written pthread
 *     ring (one mutex, two condition variables), CPython queue.Queue(1024);
 *   - unbounded: libconc SimpleQueue, libconc Queue(), a pthread mutex+cond
 *     linked list, GLib's GAsyncQueue, CPython queue.SimpleQueue and
 *     queue.Queue();
 *   - process queue (bytes, shared memory) used by threads of one process:
 *     libconc process Queue against CPython multiprocessing.Queue, also used
 *     by threads (both copy the item; like with like).
 * After the grid it prints, per variant, items/s against the number of
 * producer/consumer pairs (the scaling plot; --markdown appends it too).
 *
 * Options (before the harness's own): --max N (threads per side, default
 * the online CPU count, at least 2), --pin (pin thread i to CPU i mod
 * cores; default unpinned), --grid (every P x C; default only P == C and
 * the 1P/NC, NP/1C corners).
 *
 * Every variant checks that the consumers received exactly the sum of what
 * was put. Locking: each variant's queue is its own synchronisation.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "conc/pqueue.h"
#include "conc/queue.h"

#ifdef BENCH_HAVE_GLIB
#include <glib.h>
#endif

#define CAP 1024
#define MAXT 64

static int g_max = 0;
static bool g_pin = false;
static bool g_grid = false;

struct node {
  struct node *next;
  void *item;
};

struct ctx {
  int np, nc;      /* producers, consumers */
  long per_prod;   /* items each producer puts */
  long per_cons;   /* items each consumer takes */
  long sum[MAXT];  /* per consumer */
  conc_queue_t qb; /* Queue(1024) */
  conc_queue_t qu; /* Queue() */
  conc_simple_queue_t sq;
  conc_pqueue_t pq;
  pthread_mutex_t mu; /* ring and list */
  pthread_cond_t not_empty, not_full;
  void *ring[CAP];
  size_t head, count;
  struct node *lhead, *ltail;
#ifdef BENCH_HAVE_GLIB
  GAsyncQueue *gq;
#endif
};

static void pin(int idx) {
  if (!g_pin)
    return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(idx % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
  sched_setaffinity(0, sizeof set, &set);
}

/* Run one variant: P producers put 1..per_prod each; the consumers' sums
 * must add up to P * per_prod * (per_prod + 1) / 2. */
static double run_pc(struct ctx *c, long n, bench_worker_fn fn) {
  long unit = (long)c->np * c->nc;
  long total = n / unit > 0 ? n / unit * unit : unit;
  c->per_prod = total / c->np;
  c->per_cons = total / c->nc;
  memset(c->sum, 0, sizeof c->sum);
  double secs = bench_threads(c->np + c->nc, fn, c);
  long got = 0;
  for (int i = 0; i < c->nc; i++)
    got += c->sum[i];
  long want = (long)c->np * (c->per_prod * (c->per_prod + 1) / 2);
  if (got != want) {
    fprintf(stderr, "scale bench: lost items (%ld of %ld)\n", got, want);
    return -1;
  }
  return secs * (double)n / (double)total; /* per n items */
}

/* ---- libconc ---------------------------------------------------------- */

#define WORKER(name, put_stmt, get_stmt)                                       \
  static void name(void *arg, int idx) {                                       \
    struct ctx *c = arg;                                                       \
    pin(idx);                                                                  \
    if (idx < c->np) {                                                         \
      for (long i = 1; i <= c->per_prod; i++) {                                \
        void *item = (void *)(intptr_t)i;                                      \
        put_stmt;                                                              \
      }                                                                        \
    } else {                                                                   \
      long s = 0;                                                              \
      for (long i = 0; i < c->per_cons; i++) {                                 \
        void *p = NULL;                                                        \
        get_stmt;                                                              \
        s += (intptr_t)p;                                                      \
      }                                                                        \
      c->sum[idx - c->np] = s;                                                 \
    }                                                                          \
  }

WORKER(w_qb, conc_queue_put(&c->qb, item, true, -1),
       conc_queue_get(&c->qb, &p, true, -1))
WORKER(w_qu, conc_queue_put(&c->qu, item, true, -1),
       conc_queue_get(&c->qu, &p, true, -1))
WORKER(w_sq, conc_simple_queue_put(&c->sq, item),
       conc_simple_queue_get(&c->sq, &p, true, -1))
WORKER(w_pq, conc_pqueue_put(&c->pq, &item, sizeof item, true, -1), size_t len;
       conc_pqueue_get_into(&c->pq, &p, sizeof p, &len, true, -1))

/* ---- pthread ring and list --------------------------------------------- */

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

static void list_put(struct ctx *c, void *item) {
  struct node *nd = malloc(sizeof *nd);
  if (!nd)
    abort();
  nd->next = NULL;
  nd->item = item;
  pthread_mutex_lock(&c->mu);
  if (c->ltail)
    c->ltail->next = nd;
  else
    c->lhead = nd;
  c->ltail = nd;
  pthread_cond_signal(&c->not_empty);
  pthread_mutex_unlock(&c->mu);
}

static void *list_get(struct ctx *c) {
  pthread_mutex_lock(&c->mu);
  while (!c->lhead)
    pthread_cond_wait(&c->not_empty, &c->mu);
  struct node *nd = c->lhead;
  c->lhead = nd->next;
  if (!c->lhead)
    c->ltail = NULL;
  pthread_mutex_unlock(&c->mu);
  void *item = nd->item;
  free(nd);
  return item;
}

WORKER(w_ring, ring_put(c, item), p = ring_get(c))
WORKER(w_list, list_put(c, item), p = list_get(c))
#ifdef BENCH_HAVE_GLIB
WORKER(w_glib, g_async_queue_push(c->gq, item), p = g_async_queue_pop(c->gq))
#endif

static double run_qb(void *a, long n) { return run_pc(a, n, w_qb); }
static double run_qu(void *a, long n) { return run_pc(a, n, w_qu); }
static double run_sq(void *a, long n) { return run_pc(a, n, w_sq); }
static double run_pq(void *a, long n) { return run_pc(a, n, w_pq); }
static double run_ring(void *a, long n) { return run_pc(a, n, w_ring); }
static double run_list(void *a, long n) { return run_pc(a, n, w_list); }
#ifdef BENCH_HAVE_GLIB
static double run_glib(void *a, long n) { return run_pc(a, n, w_glib); }
#endif

/* ---- CPython ------------------------------------------------------------ */

/* The script for `make` (a queue constructor) with np producers and nc
 * consumers; n arrives as argv[1]. */
static void py_script(char *buf, size_t cap, const char *imports,
                      const char *make, int np, int nc) {
  snprintf(buf, cap,
           "import sys, threading, time, queue%s\n"
           "np, nc = %d, %d\n"
           "total = max(int(sys.argv[1]) // (np * nc), 1) * np * nc\n"
           "q = %s\n"
           "def prod():\n"
           "    for i in range(1, total // np + 1): q.put(i)\n"
           "def cons():\n"
           "    for _ in range(total // nc): q.get()\n"
           "ts = [threading.Thread(target=prod) for _ in range(np)]\n"
           "ts += [threading.Thread(target=cons) for _ in range(nc)]\n"
           "t0 = time.perf_counter()\n"
           "for t in ts: t.start()\n"
           "for t in ts: t.join()\n"
           "print((time.perf_counter() - t0) * int(sys.argv[1]) / total)\n",
           imports, np, nc, make);
}

/* ---- the grid ------------------------------------------------------------ */

enum { K_BOUNDED, K_UNBOUNDED, K_PROCESS, K_COUNT };
static const char *kind_name[K_COUNT] = {"bounded Queue(1024)",
                                         "unbounded queues", "process queues"};

#define MAXV 6
#define MAXCFG 32
struct series {
  const char *name[MAXV];
  int nv;
  int ncfg;
  int np[MAXCFG], nc[MAXCFG];
  double rate[MAXCFG][MAXV];
};
static struct series g_series[K_COUNT];

#define PYCAP 2048
static int variants(int kind, struct ctx *c, bench_variant_t *v,
                    char py[][PYCAP], long *n) {
  const size_t pycap = PYCAP;
  int nv = 0;
  switch (kind) {
  case K_BOUNDED:
    *n = 400000;
    v[nv++] = (bench_variant_t){"libconc Queue(1024)", run_qb, c, 0};
    v[nv++] = (bench_variant_t){"pthread mutex+2 cond ring", run_ring, c, 0};
    py_script(py[0], pycap, "", "queue.Queue(1024)", c->np, c->nc);
    v[nv++] = (bench_variant_t){"CPython queue.Queue(1024)", bench_python_fn,
                                py[0], 40000};
    break;
  case K_UNBOUNDED:
    *n = 400000;
    v[nv++] = (bench_variant_t){"libconc SimpleQueue", run_sq, c, 0};
    v[nv++] = (bench_variant_t){"libconc Queue()", run_qu, c, 0};
    v[nv++] = (bench_variant_t){"pthread mutex+cond list", run_list, c, 0};
#ifdef BENCH_HAVE_GLIB
    v[nv++] = (bench_variant_t){"GLib GAsyncQueue", run_glib, c, 0};
#endif
    py_script(py[0], pycap, "", "queue.SimpleQueue()", c->np, c->nc);
    v[nv++] = (bench_variant_t){"CPython queue.SimpleQueue", bench_python_fn,
                                py[0], 100000};
    /* like with like for Queue(): Python's, with task counts and a lock */
    py_script(py[1], pycap, "", "queue.Queue()", c->np, c->nc);
    v[nv++] = (bench_variant_t){"CPython queue.Queue()", bench_python_fn, py[1],
                                40000};
    break;
  default:
    *n = 100000;
    v[nv++] = (bench_variant_t){"libconc process Queue", run_pq, c, 0};
    py_script(py[0], pycap, ", multiprocessing", "multiprocessing.Queue()",
              c->np, c->nc);
    v[nv++] = (bench_variant_t){"CPython multiprocessing.Queue",
                                bench_python_fn, py[0], 20000};
    break;
  }
  return nv;
}

static void run_config(struct ctx *c, int kind) {
  static char py[2][PYCAP];
  bench_variant_t v[MAXV];
  long n;
  int nv = variants(kind, c, v, py, &n);
  char title[96];
  snprintf(title, sizeof title, "%s %dP/%dC%s", kind_name[kind], c->np, c->nc,
           g_pin ? " pinned" : "");
  bench_compare(title, "items", n, v, nv);
  struct series *s = &g_series[kind];
  if (s->ncfg >= MAXCFG)
    return;
  s->nv = nv;
  for (int i = 0; i < nv; i++) {
    s->name[i] = v[i].name;
    s->rate[s->ncfg][i] = bench_last_rate(i);
  }
  s->np[s->ncfg] = c->np;
  s->nc[s->ncfg] = c->nc;
  s->ncfg++;
}

/* The scaling plot: one row per configuration, one bar per variant. */
static void plot(FILE *f, const struct series *s, const char *kind) {
  double top = 0;
  for (int k = 0; k < s->ncfg; k++)
    for (int i = 0; i < s->nv; i++)
      top = s->rate[k][i] > top ? s->rate[k][i] : top;
  if (top <= 0)
    return;
  fprintf(f, "\n#### Scaling: %s%s (items/s, M)\n\n```\n", kind,
          g_pin ? ", pinned" : "");
  for (int k = 0; k < s->ncfg; k++) {
    for (int i = 0; i < s->nv; i++) {
      int w = (int)(s->rate[k][i] / top * 40 + 0.5);
      char cfg[16];
      snprintf(cfg, sizeof cfg, "%dP/%dC", s->np[k], s->nc[k]);
      fprintf(f, "%-8s %-30s %8.2f |", cfg, s->name[i], s->rate[k][i] / 1e6);
      for (int j = 0; j < w; j++)
        fputc('#', f);
      fputc('\n', f);
    }
  }
  fprintf(f, "```\n");
}

/* Take this program's options out of argv; the harness parses the rest. */
static int own_options(int argc, char **argv) {
  int out = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--pin") == 0)
      g_pin = true;
    else if (strcmp(argv[i], "--grid") == 0)
      g_grid = true;
    else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc)
      g_max = atoi(argv[++i]);
    else
      argv[out++] = argv[i];
  }
  argv[out] = NULL;
  return out;
}

static bool wanted(int p, int q, int max) {
  return g_grid || p == q || (p == 1 && q == max) || (p == max && q == 1);
}

int main(int argc, char **argv) {
  argc = own_options(argc, argv);
  bench_init(argc, argv);
  const char *md = NULL;
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--markdown") == 0)
      md = argv[i + 1];
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int max = g_max > 0 ? g_max : (cores > 2 ? (int)cores : 2);
  if (max > MAXT / 2)
    max = MAXT / 2;
  if (bench_smoke())
    max = 2;
  static struct ctx c;
  if (conc_queue_init(&c.qb, &(conc_queue_opts_t){.maxsize = CAP}) != 0 ||
      conc_queue_init(&c.qu, NULL) != 0 ||
      conc_simple_queue_init(&c.sq, NULL) != 0 ||
      conc_pqueue_init(&c.pq, CAP, NULL) != 0)
    return 1;
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.not_empty, NULL);
  pthread_cond_init(&c.not_full, NULL);
#ifdef BENCH_HAVE_GLIB
  c.gq = g_async_queue_new();
#endif
  printf("scaling grid up to %d threads per side on %ld online CPUs, %s\n", max,
         cores, g_pin ? "pinned" : "unpinned");
  for (int kind = 0; kind < K_COUNT; kind++)
    for (int p = 1; p <= max; p *= 2)
      for (int q = 1; q <= max; q *= 2)
        if (wanted(p, q, max)) {
          c.np = p;
          c.nc = q;
          run_config(&c, kind);
        }
  for (int kind = 0; kind < K_COUNT; kind++) {
    plot(stdout, &g_series[kind], kind_name[kind]);
    FILE *f = md ? fopen(md, "a") : NULL;
    if (f) {
      plot(f, &g_series[kind], kind_name[kind]);
      fclose(f);
    }
  }
  conc_queue_destroy(&c.qb);
  conc_queue_destroy(&c.qu);
  conc_simple_queue_destroy(&c.sq);
  conc_pqueue_destroy(&c.pq);
  return bench_finish();
}
