/*
 * Internals shared by futures.c (Future, wait, as_completed, record pool)
 * and executor.c (the thread pool and map).
 */
#ifndef CONC_FUTURES_INT_H
#define CONC_FUTURES_INT_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "conc/futures.h"
#include "qsync-int.h"

/* Spin budgets (nanoseconds) before parking: a result() caller waiting
 * for a thread-pool task, and an idle worker looking for the next task of
 * a batch (every worker for the grace time, some for the spin time). */
#ifndef CONC__RESULT_SPIN_NS
#define CONC__RESULT_SPIN_NS 50000
#endif
#ifndef CONC__WORKER_GRACE_NS
#define CONC__WORKER_GRACE_NS 3000
#endif
#ifndef CONC__WORKER_SPIN_NS
#define CONC__WORKER_SPIN_NS 20000
#endif
/* In pause mode, result() stops spinning when the pool shows no progress
 * for this long (struct conc__progress). */
#ifndef CONC__STALL_NS
#define CONC__STALL_NS 5000
#endif
#ifndef CONC__SLOW_YIELD_NS
#define CONC__SLOW_YIELD_NS 300000
#endif
#ifndef CONC__YIELD_BAN_NS
#define CONC__YIELD_BAN_NS 100000000
#endif

/* In pause mode, after this many spins in a row that ended without their
 * event, a thread (or an executor's workers) spins only every 16th time, as
 * a probe: on a machine where the spins keep failing (more runnable threads
 * than cores) a pausing spin only takes the core from the thread it waits
 * for. A yielding spin gives the core away whenever another thread wants
 * it, so yield mode spins every time. */
#define CONC__SPIN_MISSES 4

/* Whether to spin now, given the count of misses in a row (updated). */
static inline bool conc__spin_allowed(uint32_t *misses) {
  uint32_t m = __atomic_load_n(misses, __ATOMIC_RELAXED);
  if (m < CONC__SPIN_MISSES)
    return true;
  __atomic_store_n(misses, m + 1, __ATOMIC_RELAXED);
  return (m & 15) == 0;
}

/* Record how a spin ended. */
static inline void conc__spin_result(uint32_t *misses, bool hit) {
  uint32_t m = __atomic_load_n(misses, __ATOMIC_RELAXED);
  __atomic_store_n(misses, hit ? 0 : m + 1, __ATOMIC_RELAXED);
}

/* Yield mode, process-wide. A spinning thread yields its core between
 * looks while yields come back fast: the threads that share its core are
 * then the pool's own, and the yield hands the core to the one it waits
 * for (a pool's submitter and workers outnumber the cores). A yield that
 * takes over CONC__SLOW_YIELD_NS means other processes want the core: on
 * Linux 6.6+ (EEVDF) a yield moves the caller back a whole slice, 0.75-3
 * ms; under two CPU hogs nearly nine in ten of the yields over 50 us took
 * over 700 us. A yield to the pool's own thread comes back once that
 * thread has run out of work or submitted its batch: on a quiet 2-core
 * machine 2-3% of the yields took 50-100 us and almost none over 300 us,
 * so a 50 us threshold banned yielding there too, most of the time. Spinners
 * then pause instead (pause mode) for CONC__YIELD_BAN_NS, and try yielding
 * again after it. A slow yield bans only when what the spinner waits for
 * has not come meanwhile: one that brought it went to the very thread the
 * spinner waits for (a map's submitter runs for milliseconds while two
 * workers share the other core). */
extern int64_t conc__yield_banned_until; /* atomic */

static inline bool conc__yield_mode(int64_t now) {
  return now >= __atomic_load_n(&conc__yield_banned_until, __ATOMIC_RELAXED);
}

/* One wait between the looks of a spin: a timed yield in yield mode, else
 * a pause. False when the yield took long: the spin ends, and the caller
 * calls conc__yield_ban unless its event came meanwhile. */
static inline bool conc__spin_step(bool yield_mode) {
  if (!yield_mode) {
    conc__cpu_relax();
    return true;
  }
  int64_t t0 = conc__now_ns();
  sched_yield();
  return conc__now_ns() - t0 < CONC__SLOW_YIELD_NS;
}

/* After a slow yield that brought nothing: other processes want the
 * core. */
static inline void conc__yield_ban(void) {
  __atomic_store_n(&conc__yield_banned_until,
                   conc__now_ns() + CONC__YIELD_BAN_NS, __ATOMIC_RELAXED);
}

/* Future states (Python's names); the WAITERS bit says a result() caller
 * may be parked on the state word. */
enum {
  FS_PENDING = 0,
  FS_RUNNING = 1,
  FS_CANCELLED = 2,
  FS_CANCELLED_AND_NOTIFIED = 3,
  FS_FINISHED = 4,
  FS_MASK = 7,
  FS_WAITERS = 8
};

/* A thread pool's signs of progress, which a result() caller watches while
 * it spins: it keeps spinning only while the pool's queue head moves (the
 * workers are on cores, taking tasks) or a worker was woken and has not
 * run yet. When neither happens for CONC__STALL_NS, the workers are not
 * running (on an oversubscribed machine they may wait for the very core
 * the caller spins on, or the tasks are long): it parks instead. */
struct conc__progress {
  conc_future_t *const *head; /* the pool's queue head, atomic */
  const bool *waking;         /* a woken worker is on its way, atomic */
};

struct conc__cb_node {
  conc_future_callback_t fn;
  void *arg;
  struct conc__cb_node *next;
};

struct conc__watcher;

/* One wait()/as_completed() registration on one future. */
struct conc__wnode {
  struct conc__watcher *w;
  struct conc__wnode *prev, *next;
  bool linked;
};

struct conc_future {
  uint32_t state; /* FS_* | FS_WAITERS, atomic */
  uint32_t refs;  /* atomic */
  int code;       /* failure code; 0 for a result */
  char *message;  /* owned; NULL for none */
  void *value;
  struct conc__cb_node cb0; /* the first callback needs no allocation */
  struct conc__cb_node *cb_head, *cb_tail;
  struct conc__wnode *watchers;
  /* The task an executor runs for this future. */
  conc_fn_t fn;
  void *arg;
  conc_future_t *next; /* work queue or free-list link */
  /* Set by the thread executor's submit: what result() watches while it
   * spins (NULL: it spins only while the task runs). */
  const struct conc__progress *progress;
  /* A block the future owns, freed with ext_free by the last release
   * (conc__future_set_ext: the process executor's result bytes and error
   * detail). */
  void *ext;
  void (*ext_free)(void *ext);
};

/* A recycled (or new) pending record with `refs` references. */
conc_future_t *conc__future_alloc(uint32_t refs);

/* Give the calling thread's cached records to the shared pool. A pool
 * worker calls it before it ends: the cache's key destructor runs only
 * after a join has returned, and a fork in that window would strand the
 * records in the child. */
void conc__future_cache_flush(void);

/* Leak accounting for tests: *records = future records allocated and not
 * freed (live, cached by some thread, or pooled), *pooled = those in the
 * global pool. A thread's cache is empty once it has ended. */
void conc__future_stats(size_t *records, size_t *pooled);

/* Complete f: a failure when code != 0 (the message's ownership moves to
 * the future), else the value. CONC_EINVALSTATE when already done. */
int conc__future_finish(conc_future_t *f, void *value, int code, char *message);

/* Give f a block it owns (see `ext`); call before completing f. */
void conc__future_set_ext(conc_future_t *f, void *ext,
                          void (*ext_free)(void *ext));
void *conc__future_ext(const conc_future_t *f);

/* cancel() that also notifies (shutdown(cancel_futures)): the future ends
 * CANCELLED_AND_NOTIFIED if it was pending. */
void conc__future_cancel_notify(conc_future_t *f);

#endif
