/*
 * Wake-up ping-pong: two threads hand a turn back and forth; one round trip
 * is two wake-ups. libconc's platform wait (conc__wait/conc__wake on two
 * counter words) against a pthread mutex + condition variable, a pair of
 * POSIX semaphores, GLib's GMutex + GCond, libuv's uv_sem_t and CPython's
 * threading.Event. This is the floor under every blocking primitive of the
 * library. Locking: each variant's context is touched only by its two
 * threads, through that variant's own primitive.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>

#ifdef BENCH_HAVE_GLIB
#include <glib.h>
#endif
#ifdef BENCH_HAVE_UV
#include <uv.h>
#endif

#include "bench.h"
#include "platform-int.h"

/* ---- libconc: conc__wait / conc__wake on two words ------------------- */

struct word_pp {
  uint32_t ping, pong;
  long n;
};

static void word_worker(void *arg, int idx) {
  struct word_pp *c = arg;
  for (long i = 0; i < c->n; i++) {
    uint32_t before = (uint32_t)i;
    if (idx == 0) {
      conc__store_release(&c->ping, before + 1);
      conc__wake(&c->ping, 1, false);
      while (conc__load_acquire(&c->pong) == before)
        conc__wait(&c->pong, before, CONC_DEADLINE_NEVER, false);
    } else {
      while (conc__load_acquire(&c->ping) == before)
        conc__wait(&c->ping, before, CONC_DEADLINE_NEVER, false);
      conc__store_release(&c->pong, before + 1);
      conc__wake(&c->pong, 1, false);
    }
  }
}

static double run_word(void *arg, long n) {
  struct word_pp *c = arg;
  *c = (struct word_pp){.n = n};
  return bench_threads(2, word_worker, c);
}

/* ---- pthread mutex + condition variable ------------------------------ */

struct cond_pp {
  pthread_mutex_t mu;
  pthread_cond_t to_pong, to_ping;
  long ping, pong, n;
};

static void cond_worker(void *arg, int idx) {
  struct cond_pp *c = arg;
  for (long i = 0; i < c->n; i++) {
    pthread_mutex_lock(&c->mu);
    if (idx == 0) {
      c->ping = i + 1;
      pthread_cond_signal(&c->to_pong);
      while (c->pong == i)
        pthread_cond_wait(&c->to_ping, &c->mu);
    } else {
      while (c->ping == i)
        pthread_cond_wait(&c->to_pong, &c->mu);
      c->pong = i + 1;
      pthread_cond_signal(&c->to_ping);
    }
    pthread_mutex_unlock(&c->mu);
  }
}

static double run_cond(void *arg, long n) {
  struct cond_pp *c = arg;
  c->ping = c->pong = 0;
  c->n = n;
  return bench_threads(2, cond_worker, c);
}

/* ---- two POSIX semaphores -------------------------------------------- */

struct sem_pp {
  sem_t to_pong, to_ping;
  long n;
};

static void sem_worker(void *arg, int idx) {
  struct sem_pp *c = arg;
  for (long i = 0; i < c->n; i++) {
    if (idx == 0) {
      sem_post(&c->to_pong);
      while (sem_wait(&c->to_ping) != 0)
        ;
    } else {
      while (sem_wait(&c->to_pong) != 0)
        ;
      sem_post(&c->to_ping);
    }
  }
}

static double run_sem(void *arg, long n) {
  struct sem_pp *c = arg;
  c->n = n;
  return bench_threads(2, sem_worker, c);
}

/* ---- GLib GMutex + GCond --------------------------------------------- */

#ifdef BENCH_HAVE_GLIB
struct gcond_pp {
  GMutex mu;
  GCond to_pong, to_ping;
  long ping, pong, n;
};

static void gcond_worker(void *arg, int idx) {
  struct gcond_pp *c = arg;
  for (long i = 0; i < c->n; i++) {
    g_mutex_lock(&c->mu);
    if (idx == 0) {
      c->ping = i + 1;
      g_cond_signal(&c->to_pong);
      while (c->pong == i)
        g_cond_wait(&c->to_ping, &c->mu);
    } else {
      while (c->ping == i)
        g_cond_wait(&c->to_pong, &c->mu);
      c->pong = i + 1;
      g_cond_signal(&c->to_ping);
    }
    g_mutex_unlock(&c->mu);
  }
}

static double run_gcond(void *arg, long n) {
  struct gcond_pp *c = arg;
  c->ping = c->pong = 0;
  c->n = n;
  return bench_threads(2, gcond_worker, c);
}
#endif

/* ---- libuv uv_sem_t pair --------------------------------------------- */

#ifdef BENCH_HAVE_UV
struct uvsem_pp {
  uv_sem_t to_pong, to_ping;
  long n;
};

static void uvsem_worker(void *arg, int idx) {
  struct uvsem_pp *c = arg;
  for (long i = 0; i < c->n; i++) {
    if (idx == 0) {
      uv_sem_post(&c->to_pong);
      uv_sem_wait(&c->to_ping);
    } else {
      uv_sem_wait(&c->to_pong);
      uv_sem_post(&c->to_ping);
    }
  }
}

static double run_uvsem(void *arg, long n) {
  struct uvsem_pp *c = arg;
  c->n = n;
  return bench_threads(2, uvsem_worker, c);
}
#endif

/* ---- CPython threading.Event ----------------------------------------- */

static const char py_event[] =
    "import sys, threading, time\n"
    "n = int(sys.argv[1])\n"
    "ping, pong = threading.Event(), threading.Event()\n"
    "def ponger():\n"
    "    for _ in range(n):\n"
    "        ping.wait(); ping.clear(); pong.set()\n"
    "t = threading.Thread(target=ponger); t.start()\n"
    "t0 = time.perf_counter()\n"
    "for _ in range(n):\n"
    "    ping.set(); pong.wait(); pong.clear()\n"
    "t1 = time.perf_counter()\n"
    "t.join()\n"
    "print(t1 - t0)\n";

int main(int argc, char **argv) {
  bench_init(argc, argv);
  printf("platform wait backend: %s, %d CPUs\n", conc__wait_backend(),
         conc__cpu_count());

  static struct word_pp word;
  static struct cond_pp cond = {.mu = PTHREAD_MUTEX_INITIALIZER,
                                .to_pong = PTHREAD_COND_INITIALIZER,
                                .to_ping = PTHREAD_COND_INITIALIZER};
  static struct sem_pp sem;
  sem_init(&sem.to_pong, 0, 0);
  sem_init(&sem.to_ping, 0, 0);

  bench_variant_t v[6] = {
      {"libconc conc__wait/conc__wake", run_word, &word, 0},
      {"pthread mutex + cond", run_cond, &cond, 0},
      {"POSIX sem_t pair", run_sem, &sem, 0},
  };
  int nv = 3;
#ifdef BENCH_HAVE_GLIB
  static struct gcond_pp gcond;
  g_mutex_init(&gcond.mu);
  g_cond_init(&gcond.to_pong);
  g_cond_init(&gcond.to_ping);
  v[nv++] = (bench_variant_t){"GLib GMutex + GCond", run_gcond, &gcond, 0};
#endif
#ifdef BENCH_HAVE_UV
  static struct uvsem_pp uvsem;
  uv_sem_init(&uvsem.to_pong, 0);
  uv_sem_init(&uvsem.to_ping, 0);
  v[nv++] = (bench_variant_t){"libuv uv_sem_t pair", run_uvsem, &uvsem, 0};
#endif
  v[nv++] = (bench_variant_t){"CPython threading.Event", bench_python_fn,
                              (void *)py_event, 5000};

  bench_compare("wake-up ping-pong (2 threads)", "round trips", 20000, v, nv);

  sem_destroy(&sem.to_pong);
  sem_destroy(&sem.to_ping);
#ifdef BENCH_HAVE_UV
  uv_sem_destroy(&uvsem.to_pong);
  uv_sem_destroy(&uvsem.to_ping);
#endif
#ifdef BENCH_HAVE_GLIB
  g_cond_clear(&gcond.to_pong);
  g_cond_clear(&gcond.to_ping);
  g_mutex_clear(&gcond.mu);
#endif
  return bench_finish();
}
