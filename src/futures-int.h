/*
 * Internals shared by futures.c (Future, wait, as_completed, record pool)
 * and executor.c (the thread pool and map).
 */
#ifndef CONC_FUTURES_INT_H
#define CONC_FUTURES_INT_H

#include <stdbool.h>
#include <sched.h>
#include <stdint.h>

#include "conc/futures.h"
#include "qsync-int.h"

/* Spin budgets (nanoseconds) before parking: a result() caller waiting
 * for a task that is about to finish, and an idle worker looking for the
 * next task of a batch. Both are about one sleep plus wake-up on a virtual
 * machine; measured, an idle worker that looks for 30 us instead of 3 us
 * took batch throughput from 100-800 ns to 70-110 ns a task. */
#ifndef CONC__RESULT_SPIN_NS
#define CONC__RESULT_SPIN_NS 50000
#endif
#ifndef CONC__WORKER_SPIN_NS
#define CONC__WORKER_SPIN_NS 30000
#endif

/* Spin while *word == value, at most `ns`, yielding the core between
 * looks (with more runnable threads than cores, the thread we wait for
 * may need this one); true if it changed. */
static inline bool conc__spin_while_eq_ptr(void *const *word, const void *value,
                                           int64_t ns) {
  int64_t end = 0;
  for (unsigned i = 0;; i++) {
    if (__atomic_load_n(word, __ATOMIC_RELAXED) != value)
      return true;
    if ((i & 31) == 0) {
      int64_t now = conc__now_ns();
      if (end == 0)
        end = now + ns;
      else if (now >= end)
        return false;
    }
    sched_yield();
  }
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
  /* Set by submit when an idle worker was woken for this task: it should
   * finish soon, so result() spins before it parks. */
  bool soon;
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
