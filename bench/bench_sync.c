/*
 * threading sync: Lock (uncontended and contended), RLock (uncontended),
 * Condition ping-pong and a 2-party Barrier, libconc against pthreads, GLib
 * and CPython doing the same work; and the lock-order checker's cost (a
 * nested Lock pair with it off and on). Locking: each variant's context is touched only by its own
 * threads, through that variant's own primitive.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#ifdef BENCH_HAVE_GLIB
#include <glib.h>
#endif

#include "bench.h"
#include "conc/lockdep.h"
#include "conc/sync.h"

/* ================================================ uncontended lock ==== */

static conc_lock_t u_conc = CONC_LOCK_INIT;
static pthread_mutex_t u_pthread = PTHREAD_MUTEX_INITIALIZER;

static double u_run_conc(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    conc_lock_acquire(&u_conc);
    conc_lock_release(&u_conc);
  }
  return bench_now() - t0;
}

static double u_run_pthread(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    pthread_mutex_lock(&u_pthread);
    pthread_mutex_unlock(&u_pthread);
  }
  return bench_now() - t0;
}

#ifdef BENCH_HAVE_GLIB
static GMutex u_glib;
static double u_run_glib(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    g_mutex_lock(&u_glib);
    g_mutex_unlock(&u_glib);
  }
  return bench_now() - t0;
}
#endif

/* ============================================== uncontended RLock ==== */

static conc_rlock_t r_conc = CONC_RLOCK_INIT;
static pthread_mutex_t r_pthread;

static void r_pthread_init(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&r_pthread, &a);
  pthread_mutexattr_destroy(&a);
}

static double r_run_conc(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    conc_rlock_acquire(&r_conc);
    conc_rlock_release(&r_conc);
  }
  return bench_now() - t0;
}

static double r_run_pthread(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    pthread_mutex_lock(&r_pthread);
    pthread_mutex_unlock(&r_pthread);
  }
  return bench_now() - t0;
}

static const char py_runcontended[] =
    "import sys, threading, time\n"
    "n = int(sys.argv[1])\n"
    "l = threading.RLock(); a = l.acquire; r = l.release\n"
    "t0 = time.perf_counter()\n"
    "for _ in range(n):\n"
    "    a(); r()\n"
    "print(time.perf_counter() - t0)\n";

/* ===================================== the lock-order checker's cost == */

/* Two Locks always taken in one order (a, then b): with the checker on,
 * each acquisition looks up its class, checks the edge from every held
 * lock and pushes and pops its held-stack entry. The variant switches the
 * checker on for its own rounds only. */
static conc_lock_t ld_a = CONC_LOCK_INIT, ld_b = CONC_LOCK_INIT;

static double ld_pair(long n) {
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    conc_lock_acquire(&ld_a);
    conc_lock_acquire(&ld_b);
    conc_lock_release(&ld_b);
    conc_lock_release(&ld_a);
  }
  return bench_now() - t0;
}

static double ld_run_off(void *arg, long n) {
  (void)arg;
  return ld_pair(n);
}

static double ld_run_on(void *arg, long n) {
  (void)arg;
  conc_lockdep_enable(CONC_LOCKDEP_ON);
  double secs = ld_pair(n);
  conc_lockdep_enable(0);
  if (conc_lockdep_reports(0) != 0) {
    fprintf(stderr, "lockdep reported a consistent order\n");
    return -1;
  }
  return secs;
}

static const char py_uncontended[] =
    "import sys, threading, time\n"
    "n = int(sys.argv[1])\n"
    "l = threading.Lock(); a = l.acquire; r = l.release\n"
    "t0 = time.perf_counter()\n"
    "for _ in range(n):\n"
    "    a(); r()\n"
    "print(time.perf_counter() - t0)\n";

/* The same in a Python process that has a second (idle) thread: like with
 * like for the multi-threaded comparison. */
static const char py_uncontended_threaded[] =
    "import sys, threading, time\n"
    "n = int(sys.argv[1])\n"
    "e = threading.Event(); th = threading.Thread(target=e.wait); th.start()\n"
    "l = threading.Lock(); a = l.acquire; r = l.release\n"
    "t0 = time.perf_counter()\n"
    "for _ in range(n):\n"
    "    a(); r()\n"
    "t = time.perf_counter() - t0\n"
    "e.set(); th.join()\n"
    "print(t)\n";

/* A thread that only sleeps, so that the process is multi-threaded and
 * glibc (and libconc) leave their single-threaded shortcuts. */
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_stop;

static void *idle_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&idle_mu);
  while (!idle_stop)
    pthread_cond_wait(&idle_cv, &idle_mu);
  pthread_mutex_unlock(&idle_mu);
  return NULL;
}

/* ================================================== contended lock ==== */

struct contended {
  conc_lock_t conc;
  pthread_mutex_t pthread;
#ifdef BENCH_HAVE_GLIB
  GMutex glib;
#endif
  long counter;
  long n;
};

static void c_conc_worker(void *arg, int idx) {
  (void)idx;
  struct contended *c = arg;
  for (long i = 0; i < c->n; i++) {
    conc_lock_acquire(&c->conc);
    c->counter++;
    conc_lock_release(&c->conc);
  }
}

static void c_pthread_worker(void *arg, int idx) {
  (void)idx;
  struct contended *c = arg;
  for (long i = 0; i < c->n; i++) {
    pthread_mutex_lock(&c->pthread);
    c->counter++;
    pthread_mutex_unlock(&c->pthread);
  }
}

#ifdef BENCH_HAVE_GLIB
static void c_glib_worker(void *arg, int idx) {
  (void)idx;
  struct contended *c = arg;
  for (long i = 0; i < c->n; i++) {
    g_mutex_lock(&c->glib);
    c->counter++;
    g_mutex_unlock(&c->glib);
  }
}
#endif

/* Threads timed from before their start: a short (smoke) run can end before
 * bench_threads reads its own start time. The start costs every variant
 * the same (tens of microseconds against runs of tenths of a second). */
static double timed_threads(bench_worker_fn fn, void *arg) {
  double t0 = bench_now();
  bench_threads(2, fn, arg);
  return bench_now() - t0;
}

/* n counts increments in all; each of the 2 threads does n / 2. */
static double c_run(struct contended *c, bench_worker_fn fn, long n) {
  c->counter = 0;
  c->n = n / 2;
  double secs = timed_threads(fn, c);
  if (c->counter != 2 * c->n) {
    fprintf(stderr, "contended counter wrong: %ld of %ld\n", c->counter,
            2 * c->n);
    return -1;
  }
  return secs;
}

static double c_run_conc(void *arg, long n) {
  return c_run(arg, c_conc_worker, n);
}
static double c_run_pthread(void *arg, long n) {
  return c_run(arg, c_pthread_worker, n);
}
#ifdef BENCH_HAVE_GLIB
static double c_run_glib(void *arg, long n) {
  return c_run(arg, c_glib_worker, n);
}
#endif

static const char py_contended[] =
    "import sys, threading, time\n"
    "n = int(sys.argv[1]) // 2\n"
    "l = threading.Lock(); box = [0]\n"
    "def work():\n"
    "    for _ in range(n):\n"
    "        with l:\n"
    "            box[0] += 1\n"
    "ts = [threading.Thread(target=work) for _ in range(2)]\n"
    "t0 = time.perf_counter()\n"
    "for t in ts: t.start()\n"
    "for t in ts: t.join()\n"
    "print(time.perf_counter() - t0)\n";

/* ========================================== condition ping-pong ======= */

struct pingpong {
  conc_lock_t mu;
  conc_condition_t cond;
  pthread_mutex_t pmu;
  pthread_cond_t pcond;
#ifdef BENCH_HAVE_GLIB
  GMutex gmu;
  GCond gcond;
#endif
  long turn;
  long n;
};

/* One round trip: each thread takes one turn. */
static void p_conc_worker(void *arg, int idx) {
  struct pingpong *p = arg;
  for (long i = 0; i < p->n; i++) {
    conc_condition_acquire(&p->cond);
    while ((p->turn & 1) != idx)
      conc_condition_wait(&p->cond, CONC_FOREVER);
    p->turn++;
    conc_condition_notify(&p->cond, 1);
    conc_condition_release(&p->cond);
  }
}

static void p_pthread_worker(void *arg, int idx) {
  struct pingpong *p = arg;
  for (long i = 0; i < p->n; i++) {
    pthread_mutex_lock(&p->pmu);
    while ((p->turn & 1) != idx)
      pthread_cond_wait(&p->pcond, &p->pmu);
    p->turn++;
    pthread_cond_signal(&p->pcond);
    pthread_mutex_unlock(&p->pmu);
  }
}

#ifdef BENCH_HAVE_GLIB
static void p_glib_worker(void *arg, int idx) {
  struct pingpong *p = arg;
  for (long i = 0; i < p->n; i++) {
    g_mutex_lock(&p->gmu);
    while ((p->turn & 1) != idx)
      g_cond_wait(&p->gcond, &p->gmu);
    p->turn++;
    g_cond_signal(&p->gcond);
    g_mutex_unlock(&p->gmu);
  }
}
#endif

static double p_run(struct pingpong *p, bench_worker_fn fn, long n) {
  p->turn = 0;
  p->n = n;
  return timed_threads(fn, p);
}

static double p_run_conc(void *arg, long n) {
  return p_run(arg, p_conc_worker, n);
}
static double p_run_pthread(void *arg, long n) {
  return p_run(arg, p_pthread_worker, n);
}
#ifdef BENCH_HAVE_GLIB
static double p_run_glib(void *arg, long n) {
  return p_run(arg, p_glib_worker, n);
}
#endif

static const char py_pingpong[] =
    "import sys, threading, time\n"
    "n = int(sys.argv[1])\n"
    "c = threading.Condition(threading.Lock()); st = [0]\n"
    "def work(idx):\n"
    "    for _ in range(n):\n"
    "        with c:\n"
    "            while st[0] & 1 != idx:\n"
    "                c.wait()\n"
    "            st[0] += 1\n"
    "            c.notify()\n"
    "ts = [threading.Thread(target=work, args=(i,)) for i in range(2)]\n"
    "t0 = time.perf_counter()\n"
    "for t in ts: t.start()\n"
    "for t in ts: t.join()\n"
    "print(time.perf_counter() - t0)\n";

/* ================================================ 2-party barrier ===== */

struct barrier2 {
  conc_barrier_t conc;
  pthread_barrier_t pthread;
  long n;
};

static void b_conc_worker(void *arg, int idx) {
  (void)idx;
  struct barrier2 *b = arg;
  for (long i = 0; i < b->n; i++)
    conc_barrier_wait(&b->conc, CONC_FOREVER);
}

static void b_pthread_worker(void *arg, int idx) {
  (void)idx;
  struct barrier2 *b = arg;
  for (long i = 0; i < b->n; i++)
    pthread_barrier_wait(&b->pthread);
}

static double b_run_conc(void *arg, long n) {
  struct barrier2 *b = arg;
  b->n = n;
  return timed_threads(b_conc_worker, b);
}

static double b_run_pthread(void *arg, long n) {
  struct barrier2 *b = arg;
  b->n = n;
  return timed_threads(b_pthread_worker, b);
}

static const char py_barrier[] =
    "import sys, threading, time\n"
    "n = int(sys.argv[1])\n"
    "b = threading.Barrier(2)\n"
    "def work():\n"
    "    for _ in range(n):\n"
    "        b.wait()\n"
    "ts = [threading.Thread(target=work) for _ in range(2)]\n"
    "t0 = time.perf_counter()\n"
    "for t in ts: t.start()\n"
    "for t in ts: t.join()\n"
    "print(time.perf_counter() - t0)\n";

int main(int argc, char **argv) {
  bench_init(argc, argv);
  bench_variant_t v[4];
  int nv;

  nv = 0;
  v[nv++] = (bench_variant_t){"libconc Lock", u_run_conc, NULL, 0};
  v[nv++] = (bench_variant_t){"pthread_mutex", u_run_pthread, NULL, 0};
#ifdef BENCH_HAVE_GLIB
  v[nv++] = (bench_variant_t){"GLib GMutex", u_run_glib, NULL, 0};
#endif
  v[nv++] = (bench_variant_t){"CPython threading.Lock", bench_python_fn,
                              (void *)py_uncontended, 200000};
  bench_compare("Lock uncontended (single-threaded process)", "acquire+release",
                10000000, v, nv);

  r_pthread_init();
  nv = 0;
  v[nv++] = (bench_variant_t){"libconc RLock", r_run_conc, NULL, 0};
  v[nv++] =
      (bench_variant_t){"pthread recursive mutex", r_run_pthread, NULL, 0};
  v[nv++] = (bench_variant_t){"CPython threading.RLock", bench_python_fn,
                              (void *)py_runcontended, 200000};
  bench_compare("RLock uncontended (single-threaded process)",
                "acquire+release", 10000000, v, nv);

  pthread_t idle = bench_spawn(idle_main, NULL);
  nv = 0;
  v[nv++] = (bench_variant_t){"libconc Lock", u_run_conc, NULL, 0};
  v[nv++] = (bench_variant_t){"pthread_mutex", u_run_pthread, NULL, 0};
#ifdef BENCH_HAVE_GLIB
  v[nv++] = (bench_variant_t){"GLib GMutex", u_run_glib, NULL, 0};
#endif
  v[nv++] =
      (bench_variant_t){"CPython threading.Lock, 2nd thread", bench_python_fn,
                        (void *)py_uncontended_threaded, 200000};
  bench_compare("Lock uncontended (multi-threaded process)", "acquire+release",
                10000000, v, nv);

  nv = 0;
  v[nv++] = (bench_variant_t){"libconc RLock", r_run_conc, NULL, 0};
  v[nv++] =
      (bench_variant_t){"pthread recursive mutex", r_run_pthread, NULL, 0};
  bench_compare("RLock uncontended (multi-threaded process)", "acquire+release",
                10000000, v, nv);

  nv = 0;
  v[nv++] = (bench_variant_t){"libconc Lock, checker off", ld_run_off, NULL, 0};
  v[nv++] = (bench_variant_t){"libconc Lock, checker on", ld_run_on, NULL, 0};
  bench_compare("Lock-order checker (2 nested Locks, one order)",
                "2 acquisitions", 1000000, v, nv);
  pthread_mutex_lock(&idle_mu);
  idle_stop = 1;
  pthread_cond_signal(&idle_cv);
  pthread_mutex_unlock(&idle_mu);
  bench_join(idle);

  static struct contended c = {.conc = CONC_LOCK_INIT,
                               .pthread = PTHREAD_MUTEX_INITIALIZER};
#ifdef BENCH_HAVE_GLIB
  g_mutex_init(&c.glib);
#endif
  nv = 0;
  v[nv++] = (bench_variant_t){"libconc Lock", c_run_conc, &c, 0};
  v[nv++] = (bench_variant_t){"pthread_mutex", c_run_pthread, &c, 0};
#ifdef BENCH_HAVE_GLIB
  v[nv++] = (bench_variant_t){"GLib GMutex", c_run_glib, &c, 0};
#endif
  v[nv++] = (bench_variant_t){"CPython threading.Lock", bench_python_fn,
                              (void *)py_contended, 100000};
  bench_compare("Lock contended (2 threads)", "increments", 2000000, v, nv);

  static struct pingpong p = {.mu = CONC_LOCK_INIT,
                              .pmu = PTHREAD_MUTEX_INITIALIZER,
                              .pcond = PTHREAD_COND_INITIALIZER};
  conc_condition_init(&p.cond, &(conc_condition_opts_t){.lock = &p.mu});
#ifdef BENCH_HAVE_GLIB
  g_mutex_init(&p.gmu);
  g_cond_init(&p.gcond);
#endif
  nv = 0;
  v[nv++] = (bench_variant_t){"libconc Condition", p_run_conc, &p, 0};
  v[nv++] = (bench_variant_t){"pthread_cond", p_run_pthread, &p, 0};
#ifdef BENCH_HAVE_GLIB
  v[nv++] = (bench_variant_t){"GLib GCond", p_run_glib, &p, 0};
#endif
  v[nv++] = (bench_variant_t){"CPython threading.Condition", bench_python_fn,
                              (void *)py_pingpong, 5000};
  bench_compare("Condition ping-pong (2 threads)", "round trips", 50000, v, nv);

  static struct barrier2 b;
  conc_barrier_init(&b.conc, 2, NULL);
  pthread_barrier_init(&b.pthread, NULL, 2);
  nv = 0;
  v[nv++] = (bench_variant_t){"libconc Barrier", b_run_conc, &b, 0};
  v[nv++] = (bench_variant_t){"pthread_barrier", b_run_pthread, &b, 0};
  v[nv++] = (bench_variant_t){"CPython threading.Barrier", bench_python_fn,
                              (void *)py_barrier, 5000};
  bench_compare("Barrier (2 threads)", "cycles", 100000, v, nv);

  pthread_mutex_destroy(&r_pthread);
  pthread_barrier_destroy(&b.pthread);
  conc_barrier_destroy(&b.conc);
  conc_condition_destroy(&p.cond);
#ifdef BENCH_HAVE_GLIB
  g_cond_clear(&p.gcond);
  g_mutex_clear(&p.gmu);
  g_mutex_clear(&c.glib);
#endif
  return bench_finish();
}
