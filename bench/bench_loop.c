/*
 * The event loop (issue 11): libconc's loop, tasks and timers against
 * CPython asyncio, uvloop and gevent (Python children: Debian's python3 with
 * python3-uvloop and python3-gevent) and libuv (BENCH_HAVE_UV), in one run.
 *
 *   1. 100,000 tasks each doing 10 sleep(0), gathered: warm stack pool
 *      (in this process, after the harness's warm-up pass) and cold (a
 *      fresh process), against asyncio, uvloop and gevent greenlets.
 *   2. One sleep(0) round trip through the ready queue (1,000 tasks
 *      yielding in turn), and create_task + run + finish on a warm pool.
 *   3. 100,000 tasks each sleeping 10 ms, gathered: first arm to last wake
 *      and peak RSS (VmHWM of a child process per variant); libuv's raw
 *      uv_timer beside it.
 *   4. 1,000,000 call_later timers armed then all cancelled: time against
 *      uv_timer_start/uv_timer_stop, and bytes per armed timer (RSS growth
 *      in a fresh child process).
 *   5. call_soon_threadsafe from another thread into a busy loop (calls/s),
 *      and the wake-up latency of a loop blocked in epoll, against a raw
 *      eventfd + epoll_wait pair and libuv's uv_async_send.
 * After each comparison the target is printed beside the measured
 * figure; with --markdown the target table is appended too.
 *
 *   bench_loop [harness options]   the comparisons (bench/bench.h)
 *   bench_loop --yields N          N sleep(0) round trips (1,000 tasks), for
 *   bench_loop --creates N         `strace -c -f` / `perf stat`: compare the
 *   bench_loop --gather N          system calls of N = 0 and N = 1000000
 *   bench_loop --timers N          (--gather: 100,000 tasks x 10 sleep(0)
 *                                  after a warm-up of as many; --timers:
 *                                  N call_later, then N cancels)
 *   bench_loop --child WHAT N      a child run (cold gather, 10 ms sleeps,
 *                                  bytes per timer); prints "secs kib"
 *
 * gather: conc_aio_gather (src/aio_combine.c) where bench/loop.cmake found
 * it (BENCH_HAVE_GATHER); without it every task is awaited in order, the
 * same work.
 *
 * Locking: the harness is single-threaded; the threadsafe rows share a
 * context between the loop's thread and one producer through atomics.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench.h"
#include "conc/loop.h"
#include "loop_py.h"
#ifdef BENCH_HAVE_UV
#include <uv.h>
#endif

static conc_loop_t *g_loop; /* the warm loop of the in-process variants */

/* ---- small helpers ------------------------------------------------------ */

/* A /proc/self/status field in KiB ("VmHWM:", "VmRSS:"), or -1. */
static long status_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t len = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, len) == 0) {
      v = atol(line + len);
      break;
    }
  if (f)
    fclose(f);
  return v;
}

static int run_main(conc_aio_fn_t fn, void *arg) {
  conc_aio_future_t *t;
  int rc = conc_aio_create_task(g_loop, fn, arg, NULL, &t);
  if (rc)
    return rc;
  rc = conc_loop_run_until_complete(g_loop, t, NULL);
  conc_aio_future_release(t);
  return rc;
}

/* Await every task of ts: one gather when it is linked, else in order. */
static int await_all(conc_aio_future_t **ts, long n) {
#ifdef BENCH_HAVE_GATHER
  conc_aio_future_t *g;
  int rc = conc_aio_gather(ts, (size_t)n, NULL, &g);
  if (rc)
    return rc;
  rc = conc_aio_await(g, NULL);
  conc_aio_future_release(g);
  return rc;
#else
  for (long i = 0; i < n; i++) {
    int rc = conc_aio_await(ts[i], NULL);
    if (rc)
      return rc;
  }
  return 0;
#endif
}

/* Create n tasks fn(arg), await them all, release them; *secs gets the
 * time of create + await (as the Python scripts time theirs). */
static int spawn_gather(long n, conc_aio_fn_t fn, void *arg, double *secs) {
  conc_aio_future_t **ts = malloc((size_t)n * sizeof *ts);
  if (!ts)
    return -1;
  memset(ts, 0, (size_t)n * sizeof *ts);
  int rc = 0;
  long made = 0;
  double t0 = bench_now();
  for (; made < n && rc == 0; made++)
    rc = conc_aio_create_task(NULL, fn, arg, NULL, &ts[made]);
  if (rc == 0)
    rc = await_all(ts, n);
  *secs = bench_now() - t0;
  for (long i = 0; i < made; i++)
    conc_aio_future_release(ts[i]);
  free(ts);
  return rc;
}

/* ---- children ------------------------------------------------------------ */

static double run_self(const char *what, long n) {
  char nbuf[32];
  snprintf(nbuf, sizeof nbuf, "%ld", n);
  char *argv[] = {"/proc/self/exe", "--child", (char *)what, nbuf, NULL};
  return bench_loop_child(argv);
}

/* ---- recorded variants and targets -------------------------------------- */

enum { MAXR = 256 };

/* A variant whose per-round figures are kept (the harness's first call is
 * its warm-up pass and is not kept), so targets can be checked here. */
typedef struct var {
  const char *name;
  bench_fn fn;
  const void *arg;
  long n;
  int calls, k;
  long nrun[MAXR];
  double secs[MAXR], kib[MAXR];
} var_t;

/* A var_t initialiser (the kept figures start zeroed). */
#define V(nm, f, a, cnt)                                                       \
  { .name = (nm), .fn = (f), .arg = (a), .n = (cnt) }

static double var_run(void *p, long n) {
  var_t *v = p;
  bench_loop_child_kib = -1;
  double t = v->fn((void *)v->arg, n);
  if (v->calls++ > 0 && v->k < MAXR) {
    v->nrun[v->k] = n;
    v->secs[v->k] = t;
    v->kib[v->k++] = bench_loop_child_kib;
  }
  return t;
}

static void compare(const char *title, const char *unit, long n, var_t *v,
                    int nv) {
  bench_variant_t bv[8];
  for (int i = 0; i < nv; i++)
    bv[i] = (bench_variant_t){v[i].name, var_run, &v[i], v[i].n};
  bench_compare(title, unit, n, bv, nv);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *x, int k) {
  if (k == 0)
    return NAN;
  qsort(x, (size_t)k, sizeof *x, cmp_d);
  return k % 2 ? x[k / 2] : (x[k / 2 - 1] + x[k / 2]) / 2;
}

/* Median over rounds of the variant's seconds (per op when per_op). */
static double med_secs(const var_t *v, bool per_op) {
  double x[MAXR];
  int k = 0;
  for (int r = 0; r < v->k; r++)
    if (v->secs[r] >= 0)
      x[k++] = per_op ? v->secs[r] / (double)v->nrun[r] : v->secs[r];
  return median(x, k);
}

static double med_kib(const var_t *v) {
  double x[MAXR];
  int k = 0;
  for (int r = 0; r < v->k; r++)
    if (v->kib[r] > 0)
      x[k++] = v->kib[r];
  return median(x, k);
}

/* libconc's speed-up over b: the median of per-round ratios, as the
 * harness prints it. */
static double med_ratio(const var_t *mine, const var_t *b) {
  double x[MAXR];
  int k = 0;
  for (int r = 0; r < mine->k && r < b->k; r++)
    if (mine->secs[r] > 0 && b->secs[r] > 0)
      x[k++] = (b->secs[r] / (double)b->nrun[r]) /
               (mine->secs[r] / (double)mine->nrun[r]);
  return median(x, k);
}

static char g_targets[8192];
static size_t g_tlen;

/* Print a target beside its figure and keep it for the summary. */
static void target(const char *what, const char *goal, double got,
                   const char *unit, bool met, const char *note) {
  if (isnan(got)) {
    printf("  target %-52s %-12s: unavailable\n", what, goal);
    return;
  }
  char fig[64];
  snprintf(fig, sizeof fig, "%.4g%s", got, unit);
  printf("  target %-52s %-12s: %-12s %s%s%s\n", what, goal, fig,
         met ? "met" : "MISSED", note ? "  " : "", note ? note : "");
  if (g_tlen < sizeof g_targets)
    g_tlen += (size_t)snprintf(g_targets + g_tlen, sizeof g_targets - g_tlen,
                               "| %s | %s | %s | %s%s%s |\n", what, goal, fig,
                               met ? "met" : "**missed**", note ? " " : "",
                               note ? note : "");
}

static void target_ratio(const char *what, double goal, const var_t *mine,
                         const var_t *b) {
  if (b->k == 0 || mine->k == 0)
    return;
  char g[32], note[64];
  double r = med_ratio(mine, b);
  snprintf(g, sizeof g, ">= %gx", goal);
  snprintf(note, sizeof note, "(%.2fx short)", goal / r);
  target(what, g, r, "x", r >= goal, r >= goal ? NULL : note);
}

static void target_max(const char *what, double goal, double got,
                       const char *unit) {
  char g[32], note[64];
  snprintf(g, sizeof g, "<= %g%s", goal, unit);
  if (got / goal < 1.1) /* a near miss reads better in percent */
    snprintf(note, sizeof note, "(%.1f%% over)", (got / goal - 1) * 100);
  else
    snprintf(note, sizeof note, "(%.2fx over)", got / goal);
  target(what, g, got, unit, got <= goal, got <= goal ? NULL : note);
}

/* ---- row 1: 100,000 tasks x 10 sleep(0) ---------------------------------- */

static int sleeper10(void *arg, void **res) {
  (void)arg;
  (void)res;
  for (int i = 0; i < 10; i++) {
    int rc = conc_aio_sleep(0);
    if (rc)
      return rc;
  }
  return 0;
}

typedef struct gctx {
  long n;
  double secs;
} gctx_t;

static int gather10_main(void *arg, void **res) {
  (void)res;
  gctx_t *c = arg;
  return spawn_gather(c->n, sleeper10, NULL, &c->secs);
}

static double run_gather10_warm(void *arg, long n) {
  (void)arg;
  gctx_t c = {.n = n};
  return run_main(gather10_main, &c) == 0 ? c.secs : -1;
}

static double run_gather10_cold(void *arg, long n) {
  (void)arg;
  return run_self("gather10", n);
}

static int child_gather10(long n) {
  gctx_t c = {.n = n};
  if (conc_aio_run(gather10_main, &c, NULL, NULL) != 0)
    return 1;
  printf("%.9f %ld\n", c.secs, status_kib("VmHWM:"));
  return 0;
}

/* ---- row 2: sleep(0) round trip; create + run + finish ------------------- */

typedef struct yctx {
  long m;
  double t_end;
} yctx_t;

static int yielder(void *arg, void **res) {
  (void)res;
  yctx_t *c = arg;
  int rc = conc_aio_sleep(0); /* started: now wait for the clock */
  for (long i = 0; i < c->m && rc == 0; i++)
    rc = conc_aio_sleep(0);
  c->t_end = bench_now();
  return rc;
}

static long g_ytasks = 100; /* tasks yielding in turn (--yields) */

typedef struct ymain {
  long n, tasks;
  double secs;
} ymain_t;

/* k = min(tasks, n) tasks start and park on a sleep(0); the clock runs
 * from then until the last has done its n / k more. */
static int yields_main(void *arg, void **res) {
  (void)res;
  ymain_t *c = arg;
  long k = c->n < c->tasks ? c->n : c->tasks;
  yctx_t y = {.m = c->n / k};
  conc_aio_future_t *ts[1000]; /* g_ytasks <= 1000 */
  int rc = 0;
  long made = 0;
  for (; made < k && rc == 0; made++)
    rc = conc_aio_create_task(NULL, yielder, &y, NULL, &ts[made]);
  if (rc == 0)
    rc = conc_aio_sleep(0);
  double t0 = bench_now();
  if (rc == 0)
    rc = await_all(ts, k);
  c->secs = (y.t_end - t0) * (double)c->n / (double)(k * y.m);
  for (long i = 0; i < made; i++)
    conc_aio_future_release(ts[i]);
  return rc;
}

/* arg: the number of tasks (at most 1000), NULL: g_ytasks. */
static double run_yields(void *arg, long n) {
  ymain_t c = {.n = n, .tasks = arg ? *(const long *)arg : g_ytasks};
  return run_main(yields_main, &c) == 0 ? c.secs : -1;
}

static int noop_task(void *arg, void **res) {
  (void)arg;
  (void)res;
  return 0;
}

/* Batches of 256 fire-and-forget tasks, each batch run to its end by one
 * sleep(0) of this task (the batch is queued ahead of it). */
static int creates_main(void *arg, void **res) {
  (void)res;
  ymain_t *c = arg;
  long batches = c->n / 256 > 0 ? c->n / 256 : 1;
  long per = c->n < 256 ? c->n : 256;
  double t0 = bench_now();
  for (long b = 0; b < batches; b++) {
    for (long i = 0; i < per; i++)
      if (conc_aio_create_task(NULL, noop_task, NULL, NULL, NULL) != 0)
        return -1;
    if (conc_aio_sleep(0) != 0)
      return -1;
  }
  c->secs = (bench_now() - t0) * (double)c->n / (double)(batches * per);
  return 0;
}

static double run_creates(void *arg, long n) {
  (void)arg;
  ymain_t c = {.n = n};
  return run_main(creates_main, &c) == 0 ? c.secs : -1;
}

/* ---- row 3: 100,000 tasks sleeping 10 ms --------------------------------- */

static double s10_first, s10_last, s10_armed;

static int sleeper_10ms(void *arg, void **res) {
  (void)arg;
  (void)res;
  s10_armed = bench_now();
  if (s10_first == 0)
    s10_first = s10_armed;
  int rc = conc_aio_sleep(0.010);
  s10_last = bench_now();
  return rc;
}

static int sleep10_main(void *arg, void **res) {
  (void)res;
  double secs;
  return spawn_gather(*(long *)arg, sleeper_10ms, NULL, &secs);
}

static int child_sleep10(long n) {
  if (conc_aio_run(sleep10_main, &n, NULL, NULL) != 0)
    return 1;
  /* a third figure for a reader: first arm to last arm */
  printf("%.9f %ld %.9f\n", s10_last - s10_first, status_kib("VmHWM:"),
         s10_armed - s10_first);
  return 0;
}

static double run_sleep10(void *arg, long n) {
  (void)arg;
  return run_self("sleep10", n);
}

#ifdef BENCH_HAVE_UV
static double uv_last;

static void uv_fired(uv_timer_t *t) {
  (void)t;
  uv_last = bench_now();
}

static void uv_free_timer(uv_handle_t *h) { (void)h; }

/* Close every handle of loop (the timers of ts, n of them) and the loop. */
static void uv_teardown(uv_loop_t *loop, uv_timer_t *ts, long n) {
  for (long i = 0; i < n; i++)
    uv_close((uv_handle_t *)&ts[i], uv_free_timer);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  free(ts);
}

static int child_uv_sleep10(long n) {
  uv_loop_t loop;
  uv_timer_t *ts = malloc((size_t)n * sizeof *ts);
  if (!ts || uv_loop_init(&loop) != 0)
    return 1;
  for (long i = 0; i < n; i++)
    uv_timer_init(&loop, &ts[i]);
  uv_update_time(&loop);
  double first = bench_now();
  for (long i = 0; i < n; i++)
    uv_timer_start(&ts[i], uv_fired, 10, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("%.9f %ld\n", uv_last - first, status_kib("VmHWM:"));
  uv_teardown(&loop, ts, n);
  return 0;
}
#endif

static double run_uv_sleep10(void *arg, long n) {
  (void)arg;
#ifdef BENCH_HAVE_UV
  return run_self("uv-sleep10", n);
#else
  (void)n;
  return -1;
#endif
}

/* ---- row 4: 1,000,000 timers armed then cancelled ------------------------ */

static double timer_delay(long i) {
  return 1.0 + (double)(i * 7919 % 60000) / 1000.0;
}

static void never(void *arg) { (void)arg; }

static conc_handle_t *g_handles;
static long g_handles_n;

static int handles_for(long n) {
  if (n <= g_handles_n)
    return 0;
  free(g_handles);
  g_handles = calloc((size_t)n, sizeof *g_handles);
  g_handles_n = g_handles ? n : 0;
  return g_handles ? 0 : -1;
}

static double run_timers(void *arg, long n) {
  (void)arg;
  if (handles_for(n) != 0)
    return -1;
  double t0 = bench_now();
  for (long i = 0; i < n; i++)
    if (conc_loop_call_later(g_loop, timer_delay(i), never, NULL,
                             &g_handles[i]) != 0)
      return -1;
  for (long i = 0; i < n; i++)
    if (!conc_loop_cancel(g_loop, g_handles[i]))
      return -1;
  return bench_now() - t0;
}

/* Fresh process: RSS growth of n armed timers (the caller's n handles are
 * allocated and touched before the first reading). */
static int child_timer_bytes(long n) {
  conc_loop_t *loop;
  if (conc_loop_create(NULL, &loop) != 0 || handles_for(n) != 0)
    return 1;
  memset(g_handles, 0, (size_t)n * sizeof *g_handles);
  long before = status_kib("VmRSS:");
  for (long i = 0; i < n; i++)
    if (conc_loop_call_later(loop, timer_delay(i), never, NULL,
                             &g_handles[i]) != 0)
      return 1;
  long after = status_kib("VmRSS:");
  printf("%.3f %ld\n", (double)(after - before) * 1024.0 / (double)n, after);
  free(g_handles);
  return conc_loop_destroy(loop) == 0 ? 0 : 1;
}

#ifdef BENCH_HAVE_UV
static uv_loop_t g_uv;
static uv_timer_t *g_uvt;
static long g_uvt_n;

static void uv_never(uv_timer_t *t) { (void)t; }

/* All n timers are initialised once, before any round: an initialised
 * handle is linked into the loop's handle queue and must never move. */
static int uv_timers_setup(long n) {
  if (uv_loop_init(&g_uv) != 0 || !(g_uvt = malloc((size_t)n * sizeof *g_uvt)))
    return -1;
  for (long i = 0; i < n; i++)
    uv_timer_init(&g_uv, &g_uvt[i]);
  g_uvt_n = n;
  return 0;
}
#endif

static double run_uv_timers(void *arg, long n) {
  (void)arg;
#ifdef BENCH_HAVE_UV
  if (n > g_uvt_n)
    return -1;
  double t0 = bench_now();
  for (long i = 0; i < n; i++)
    uv_timer_start(&g_uvt[i], uv_never,
                   (uint64_t)(timer_delay(i) * 1000.0 + 0.5), 0);
  for (long i = 0; i < n; i++)
    uv_timer_stop(&g_uvt[i]);
  return bench_now() - t0;
#else
  (void)n;
  return -1;
#endif
}

/* ---- row 5: threadsafe calls ---------------------------------------------- */

typedef struct tsctx {
  conc_loop_t *loop;
  long n, got;
  bool done;
  /* latency: the producer stamps t0, then wakes; the loop adds the delay */
  _Atomic double t0;
  atomic_long seen;
  double sum;
  void (*wake)(struct tsctx *c);
  void (*finish)(struct tsctx *c);
  int efd;
#ifdef BENCH_HAVE_UV
  uv_loop_t uv;
  uv_async_t as;
  uv_idle_t idle;
  pthread_mutex_t mu;
  struct qnode *head, *tail;
#endif
} tsctx_t;

static void ts_count(void *p) {
  tsctx_t *c = p;
  if (++c->got == c->n) {
    c->done = true;
    conc_loop_stop(c->loop);
  }
}

/* Keeps the loop from ever blocking: a busy loop. */
static void ts_busy(void *p) {
  tsctx_t *c = p;
  if (!c->done)
    conc_loop_call_soon(c->loop, ts_busy, c, NULL);
}

static void *ts_producer(void *p) {
  tsctx_t *c = p;
  for (long i = 0; i < c->n; i++)
    while (conc_loop_call_soon_threadsafe(c->loop, ts_count, c) != 0)
      sched_yield(); /* out of memory: retry */
  return NULL;
}

static double run_ts_calls(void *arg, long n) {
  (void)arg;
  tsctx_t c = {.n = n};
  if (conc_loop_create(NULL, &c.loop) != 0)
    return -1;
  conc_loop_call_soon(c.loop, ts_busy, &c, NULL);
  double t0 = bench_now();
  pthread_t th = bench_spawn(ts_producer, &c);
  int rc = conc_loop_run_forever(c.loop);
  double secs = bench_now() - t0;
  bench_join(th);
  conc_loop_destroy(c.loop);
  return rc == 0 && c.got == n ? secs : -1;
}

/* The latency protocol, the same for every variant: wait until the loop
 * handled the previous wake-up, give it 50 us to block again in its
 * poller, stamp, wake it. */
static void *lat_producer(void *p) {
  tsctx_t *c = p;
  for (long i = 0; i < c->n; i++) {
    while (atomic_load(&c->seen) < i)
      sched_yield();
    double until = bench_now() + 50e-6;
    while (bench_now() < until)
      ;
    atomic_store_explicit(&c->t0, bench_now(), memory_order_relaxed);
    c->wake(c);
  }
  while (atomic_load(&c->seen) < c->n)
    sched_yield();
  if (c->finish)
    c->finish(c);
  return NULL;
}

static void lat_seen(tsctx_t *c) {
  c->sum += bench_now() - atomic_load_explicit(&c->t0, memory_order_relaxed);
  atomic_store(&c->seen, atomic_load(&c->seen) + 1);
}

static void lat_cb(void *p) { lat_seen(p); }

static void lat_conc_wake(tsctx_t *c) {
  conc_loop_call_soon_threadsafe(c->loop, lat_cb, c);
}

static void lat_conc_finish(tsctx_t *c) { conc_loop_stop_threadsafe(c->loop); }

static double run_lat_conc(void *arg, long n) {
  (void)arg;
  tsctx_t c = {.n = n, .wake = lat_conc_wake, .finish = lat_conc_finish};
  if (conc_loop_create(NULL, &c.loop) != 0)
    return -1;
  pthread_t th = bench_spawn(lat_producer, &c);
  int rc = conc_loop_run_forever(c.loop);
  bench_join(th);
  conc_loop_destroy(c.loop);
  return rc == 0 && atomic_load(&c.seen) == n ? c.sum : -1;
}

static void lat_efd_wake(tsctx_t *c) {
  uint64_t one = 1;
  if (write(c->efd, &one, sizeof one) != sizeof one)
    abort();
}

static double run_lat_epoll(void *arg, long n) {
  (void)arg;
  tsctx_t c = {.n = n, .wake = lat_efd_wake};
  int ep = epoll_create1(EPOLL_CLOEXEC);
  c.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN};
  if (ep < 0 || c.efd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c.efd, &ev) != 0)
    return -1;
  pthread_t th = bench_spawn(lat_producer, &c);
  while (atomic_load(&c.seen) < n) {
    uint64_t v;
    if (epoll_wait(ep, &ev, 1, -1) == 1 && read(c.efd, &v, sizeof v) > 0)
      lat_seen(&c);
  }
  bench_join(th);
  close(c.efd);
  close(ep);
  return c.sum;
}

#ifdef BENCH_HAVE_UV
struct qnode {
  struct qnode *next;
};

static void uvq_async(uv_async_t *as) {
  tsctx_t *c = as->data;
  pthread_mutex_lock(&c->mu);
  struct qnode *q = c->head;
  c->head = c->tail = NULL;
  pthread_mutex_unlock(&c->mu);
  while (q) {
    struct qnode *next = q->next;
    free(q);
    q = next;
    if (++c->got == c->n)
      uv_stop(&c->uv);
  }
}

static void uvq_idle(uv_idle_t *h) { (void)h; }

/* What a libuv program writes for cross-thread calls: a locked list of
 * nodes and uv_async_send (which coalesces) to get the loop to drain it. */
static void *uvq_producer(void *p) {
  tsctx_t *c = p;
  for (long i = 0; i < c->n; i++) {
    struct qnode *q = malloc(sizeof *q);
    if (!q)
      abort();
    q->next = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->tail)
      c->tail->next = q;
    else
      c->head = q;
    c->tail = q;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->as);
  }
  return NULL;
}

static void uv_close_all(tsctx_t *c) {
  uv_close((uv_handle_t *)&c->as, NULL);
  if (uv_is_active((uv_handle_t *)&c->idle) || c->idle.data)
    uv_close((uv_handle_t *)&c->idle, NULL);
  uv_run(&c->uv, UV_RUN_DEFAULT);
  uv_loop_close(&c->uv);
}

static void lat_uv_cb(uv_async_t *as) { lat_seen(as->data); }

static void lat_uv_wake(tsctx_t *c) { uv_async_send(&c->as); }
#endif

static double run_uv_calls(void *arg, long n) {
  (void)arg;
#ifdef BENCH_HAVE_UV
  tsctx_t *c = calloc(1, sizeof *c);
  if (!c || uv_loop_init(&c->uv) != 0)
    return -1;
  c->n = n;
  pthread_mutex_init(&c->mu, NULL);
  uv_async_init(&c->uv, &c->as, uvq_async);
  c->as.data = c;
  uv_idle_init(&c->uv, &c->idle);
  c->idle.data = c;
  uv_idle_start(&c->idle, uvq_idle);
  double t0 = bench_now();
  pthread_t th = bench_spawn(uvq_producer, c);
  uv_run(&c->uv, UV_RUN_DEFAULT);
  double secs = bench_now() - t0;
  bench_join(th);
  bool ok = c->got == n;
  uv_close_all(c);
  pthread_mutex_destroy(&c->mu);
  free(c);
  return ok ? secs : -1;
#else
  (void)n;
  return -1;
#endif
}

static double run_lat_uv(void *arg, long n) {
  (void)arg;
#ifdef BENCH_HAVE_UV
  tsctx_t *c = calloc(1, sizeof *c);
  if (!c || uv_loop_init(&c->uv) != 0)
    return -1;
  c->n = n;
  c->wake = lat_uv_wake;
  uv_async_init(&c->uv, &c->as, lat_uv_cb);
  c->as.data = c;
  pthread_t th = bench_spawn(lat_producer, c);
  while (atomic_load(&c->seen) < n)
    uv_run(&c->uv, UV_RUN_ONCE);
  bench_join(th);
  double sum = c->sum;
  uv_close_all(c);
  free(c);
  return sum;
#else
  (void)n;
  return -1;
#endif
}

/* ---- the program ---------------------------------------------------------- */

/* ThreadSanitizer makes every coroutine a fiber costing about 0.5 ms to
 * create: its smoke run does 20 times fewer task operations. */
#if defined(__SANITIZE_THREAD__)
#define SAN_DIV 20
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SAN_DIV 20
#endif
#endif
#ifndef SAN_DIV
#define SAN_DIV 1
#endif

/* Under --smoke the task rows do a tenth more than the harness's cut, so
 * the whole smoke run stays well under a second on an idle machine. */
static long few(long n) { return bench_smoke() ? n / 10 : n; }

static int child(const char *what, long n) {
  if (strcmp(what, "gather10") == 0)
    return child_gather10(n);
  if (strcmp(what, "sleep10") == 0)
    return child_sleep10(n);
  if (strcmp(what, "timer-bytes") == 0)
    return child_timer_bytes(n);
#ifdef BENCH_HAVE_UV
  if (strcmp(what, "uv-sleep10") == 0)
    return child_uv_sleep10(n);
#endif
  fprintf(stderr, "bench_loop: unknown child %s\n", what);
  return 2;
}

/* --yields N / --creates N: one warm-up run, then N operations, so that
 * `strace -c -f` of N = 0 and N = 1000000 shows what N adds. */
static int syscall_probe(const char *mode, long n) {
  if (conc_loop_create(NULL, &g_loop) != 0)
    return 1;
  if (getenv("BENCH_LOOP_TASKS")) /* --yields with another task count */
    g_ytasks = atol(getenv("BENCH_LOOP_TASKS"));
  if (g_ytasks < 1 || g_ytasks > 1000)
    return 2;
  bool yields = strcmp(mode, "--yields") == 0;
  bool gather = strcmp(mode, "--gather") == 0;
  if (strcmp(mode, "--timers") == 0) /* arm n, cancel n */
    return run_timers(NULL, n) >= 0 && conc_loop_destroy(g_loop) == 0 ? 0 : 1;
  double (*fn)(void *, long) = yields   ? run_yields
                               : gather ? run_gather10_warm
                                        : run_creates;
  /* --gather warms the stack pool with n tasks, as the harness does */
  if (fn(NULL, gather   ? (n > 1000 ? n : 1000)
               : yields ? g_ytasks
                        : 256) < 0 ||
      (n > 0 && fn(NULL, n) < 0))
    return 1;
  return conc_loop_destroy(g_loop) == 0 ? 0 : 1;
}

static const char *markdown_path(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--markdown") == 0)
      return argv[i + 1];
  return NULL;
}

static void write_targets(const char *path) {
  FILE *f = path && g_tlen ? fopen(path, "a") : NULL;
  if (!f)
    return;
  fprintf(f,
          "\n### targets of issue 11 (medians of this run)\n\n"
          "| target | goal | measured | met? |\n| --- | --- | ---: | --- "
          "|\n%s",
          g_targets);
  fclose(f);
}

static void info_kib(const char *what, const var_t *v) {
  double kib = med_kib(v);
  if (!isnan(kib))
    printf("  peak RSS (VmHWM) %-36s %8.1f MiB\n", what, kib / 1024.0);
}

static void row_gather10(void) {
  var_t v[] = {
      V("libconc, warm stack pool", run_gather10_warm, NULL,
        few(100000 / SAN_DIV)),
      V("libconc, cold (fresh process)", run_gather10_cold, NULL,
        few(100000 / SAN_DIV)),
      V("CPython asyncio", bench_loop_py, &bench_loop_py_gather10[0], 0),
      V("uvloop", bench_loop_py, &bench_loop_py_gather10[1], 0),
      V("gevent greenlets", bench_loop_py, &bench_loop_py_gather10[2], 0),
  };
  compare("100,000 tasks x 10 sleep(0), gathered", "task", 100000, v, 5);
  if (v[0].k == 0)
    return;
  printf("  libconc total: warm %.1f ms, cold %.1f ms\n",
         med_secs(&v[0], false) * 1e3, med_secs(&v[1], false) * 1e3);
  target_ratio("100k x 10 sleep(0), warm: speed-up over asyncio", 100, &v[0],
               &v[2]);
  target_ratio("100k x 10 sleep(0), warm: speed-up over uvloop", 75, &v[0],
               &v[3]);
  target_max("100k x 10 sleep(0), cold: total", 250,
             med_secs(&v[1], false) * 1e3, " ms");
  info_kib("libconc, cold", &v[1]);
  for (int i = 2; i < 5; i++)
    info_kib(v[i].name, &v[i]);
}

static void row_yields_creates(void) {
  /* the smoke run starts 10 tasks where the full run starts 100 or 1,000
   * (a task's first step costs 0.5 ms under ThreadSanitizer) */
  static const long one = 1;
  long hundred = bench_smoke() ? 10 : 100, thousand = bench_smoke() ? 10 : 1000;
  var_t y[] = {
      V("libconc conc_aio_sleep(0), 100 tasks", run_yields, &hundred,
        few(10000000 / SAN_DIV)),
      V("libconc, 1 task", run_yields, &one, few(200000 / SAN_DIV)),
      V("libconc, 1,000 tasks", run_yields, &thousand, few(10000000 / SAN_DIV)),
      V("CPython asyncio.sleep(0)", bench_loop_py, &bench_loop_py_yields[0],
        200000),
      V("uvloop asyncio.sleep(0)", bench_loop_py, &bench_loop_py_yields[1],
        200000),
      V("gevent.sleep(0)", bench_loop_py, &bench_loop_py_yields[2], 200000),
  };
  compare("sleep(0) round trip through the ready queue (100 tasks)", "sleep(0)",
          10000000, y, 6);
  if (y[0].k)
    target_max("sleep(0) round trip, 100 tasks", 10,
               med_secs(&y[0], true) * 1e9, " ns");
  var_t c[] = {
      V("libconc create_task+run+finish", run_creates, NULL,
        few(1000000 / SAN_DIV)),
      V("CPython asyncio create_task", bench_loop_py, &bench_loop_py_creates[0],
        100000),
      V("uvloop create_task", bench_loop_py, &bench_loop_py_creates[1], 100000),
      V("gevent.spawn", bench_loop_py, &bench_loop_py_creates[2], 100000),
  };
  compare("create_task + run + finish (warm pool, batches of 256)", "task",
          1000000, c, 4);
  if (c[0].k)
    target_max("create_task + run + finish, warm pool", 40,
               med_secs(&c[0], true) * 1e9, " ns");
}

static void row_sleep10(void) {
  var_t v[] = {
      V("libconc (child process)", run_sleep10, NULL, few(100000 / SAN_DIV)),
      V("libuv raw uv_timer (child process)", run_uv_sleep10, NULL, 0),
      V("CPython asyncio", bench_loop_py, &bench_loop_py_sleep10[0], 0),
      V("uvloop", bench_loop_py, &bench_loop_py_sleep10[1], 0),
      V("gevent greenlets", bench_loop_py, &bench_loop_py_sleep10[2], 0),
  };
  compare("100,000 tasks sleeping 10 ms, gathered: first arm to last wake",
          "task", 100000, v, 5);
  if (v[0].k == 0)
    return;
  for (int i = 0; i < 5; i++)
    if (v[i].k)
      printf("  %-40s first arm to last wake %8.1f ms\n", v[i].name,
             med_secs(&v[i], false) * 1e3);
  target_max("100k x sleep(10 ms): first arm to last wake", 45,
             med_secs(&v[0], false) * 1e3, " ms");
  for (int i = 0; i < 5; i++)
    info_kib(v[i].name, &v[i]);
  target_max("100k x sleep(10 ms): peak RSS", 500, med_kib(&v[0]) / 1024.0,
             " MiB");
}

static void row_timers(long n) {
  var_t v[] = {
      V("libconc call_later + cancel", run_timers, NULL, 0),
      V("libuv uv_timer_start + uv_timer_stop", run_uv_timers, NULL, 0),
      V("CPython asyncio call_later + cancel", bench_loop_py,
        &bench_loop_py_timers[0], 200000),
      V("uvloop call_later + cancel", bench_loop_py, &bench_loop_py_timers[1],
        200000),
  };
  compare("1,000,000 timers armed, then all cancelled", "timer", n, v, 4);
  if (v[0].k == 0)
    return;
  target_ratio("1M timers arm + cancel: speed-up over libuv", 2, &v[0], &v[1]);
  long m = bench_smoke() ? n / 100 : n;
  double b[3];
  int k = 0;
  for (int i = 0; i < 3; i++)
    if ((b[k] = run_self("timer-bytes", m)) >= 0)
      k++;
  if (k == 0) {
    printf("  bytes per timer: the child failed\n");
    return;
  }
#ifdef BENCH_HAVE_UV
  printf("  libuv: sizeof(uv_timer_t) = %zu bytes, allocated by the caller\n",
         sizeof(uv_timer_t));
#endif
  target_max("1M armed timers: RSS growth per timer", 64, median(b, k), " B");
}

static void row_threadsafe(void) {
  var_t v[] = {
      V("libconc call_soon_threadsafe", run_ts_calls, NULL, 0),
      V("libuv locked list + uv_async_send", run_uv_calls, NULL, 0),
      V("CPython asyncio call_soon_threadsafe", bench_loop_py,
        &bench_loop_py_threadsafe[0], 100000),
      V("uvloop call_soon_threadsafe", bench_loop_py,
        &bench_loop_py_threadsafe[1], 100000),
  };
  compare("call_soon_threadsafe from another thread into a busy loop", "call",
          1000000, v, 4);
  if (v[0].k)
    target("call_soon_threadsafe into a busy loop", ">= 2 M/s",
           1e-6 / med_secs(&v[0], true), " M/s",
           1.0 / med_secs(&v[0], true) >= 2e6, NULL);
  var_t l[] = {
      V("libconc call_soon_threadsafe", run_lat_conc, NULL, 0),
      V("raw eventfd write + epoll_wait", run_lat_epoll, NULL, 0),
      V("libuv uv_async_send", run_lat_uv, NULL, 0),
  };
  compare("wake-up of a loop blocked in epoll by another thread", "wake-up",
          2000, l, 3);
  if (l[0].k)
    target_max("wake-up of a loop blocked in epoll", 50,
               med_secs(&l[0], true) * 1e6, " us");
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child") == 0)
    return child(argv[2], atol(argv[3]));
  if (argc == 3 &&
      (strcmp(argv[1], "--yields") == 0 || strcmp(argv[1], "--creates") == 0 ||
       strcmp(argv[1], "--gather") == 0 || strcmp(argv[1], "--timers") == 0))
    return syscall_probe(argv[1], atol(argv[2]));
  bench_init(argc, argv);
  if (conc_loop_create(NULL, &g_loop) != 0)
    return 1;
  long timers_n = 1000000;
#ifdef BENCH_HAVE_UV
  if (uv_timers_setup(bench_smoke() ? timers_n / 100 : timers_n) != 0)
    return 1;
#endif
  bench_loop_py_probe();
  printf("gather: %s; loop backend %s\n",
#ifdef BENCH_HAVE_GATHER
         "conc_aio_gather",
#else
         "src/aio_combine.c absent, each task awaited in order",
#endif
         conc_loop_backend_name(g_loop));
  row_gather10();
  row_yields_creates();
  row_sleep10();
  row_timers(timers_n);
  row_threadsafe();
  write_targets(markdown_path(argc, argv));
  conc_loop_destroy(g_loop);
  free(g_handles);
#ifdef BENCH_HAVE_UV
  uv_teardown(&g_uv, g_uvt, g_uvt_n);
#endif
  return bench_finish();
}
