/*
 * Small internal lock and condition for the queue and futures modules,
 * built directly on the platform wait so that every timed wait ends in
 * conc__wait on CLOCK_MONOTONIC.
 *
 * conc__mu_t: a three-state futex mutex (0 free, 1 held, 2 held with
 * sleepers), spinning briefly before it parks: the critical sections it
 * guards are a few dozen instructions, so a short spin usually wins.
 *
 * conc__cv_t: a sequence-word condition. A waiter notes the sequence under
 * the mutex, counts itself in `waiters`, releases the mutex and parks while
 * the sequence is unchanged. A signaller (holding the mutex) bumps the
 * sequence only when someone waits and wakes after releasing the mutex, so
 * the woken thread does not run straight into a held lock. A waiter that
 * has not parked yet sees the new sequence and returns at once, so no wake
 * is lost; callers always re-check their predicate in a loop.
 *
 * Race detectors see conc__mu_t as a mutex (annotate-int.h): the thread
 * that locks it always unlocks it. conc__mu_reinit is called in a fork
 * child only on locks the forking thread took in its prepare handler, so
 * they are told it unlocks them.
 */
#ifndef CONC_QSYNC_INT_H
#define CONC_QSYNC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annotate-int.h"
#include "conc/error.h"
#include "platform-int.h"

#define CONC__MU_INIT                                                          \
  { 0, 0 }
#define CONC__CV_INIT                                                          \
  { 0, 0 }
#ifndef CONC__SPIN
#define CONC__SPIN 100
#endif

typedef struct conc__mu {
  uint32_t word;
  /* Park at once when contended, without the spin. For a lock that many
   * threads contend at once: their spinning looks keep pulling the line
   * from the holder (a bounded Queue with 2 producers and 2 consumers on a
   * 16-core machine moved 2.3x more items without the spin, and no fewer
   * on 2 cores). */
  uint32_t nospin;
} conc__mu_t;

typedef struct conc__cv {
  uint32_t seq;
  uint32_t waiters;
} conc__cv_t;

static inline bool conc__mu_cas(conc__mu_t *m) {
  uint32_t z = 0;
  return conc__cas(&m->word, &z, 1);
}

static inline bool conc__mu_trylock(conc__mu_t *m) {
  conc__ann_mutex_pre_lock(m, 1);
  bool ok = conc__mu_cas(m);
  conc__ann_mutex_post_lock(m, 1, ok);
  return ok;
}

static inline void conc__mu_lock_slow(conc__mu_t *m) {
  for (int i = 0; !m->nospin && i < CONC__SPIN; i++) {
    if (conc__load_relaxed(&m->word) == 0 && conc__mu_cas(m))
      return;
    conc__cpu_relax();
  }
  while (conc__xchg(&m->word, 2) != 0)
    conc__wait(&m->word, 2, CONC_DEADLINE_NEVER, false);
}

static inline void conc__mu_lock(conc__mu_t *m) {
  conc__ann_mutex_pre_lock(m, 0);
  if (!conc__mu_cas(m))
    conc__mu_lock_slow(m);
  conc__ann_mutex_post_lock(m, 0, 1);
}

static inline void conc__mu_unlock(conc__mu_t *m) {
  conc__ann_mutex_pre_unlock(m);
  if (conc__xchg(&m->word, 0) == 2)
    conc__wake(&m->word, 1, false);
  conc__ann_mutex_post_unlock(m);
}

/* After fork only the forking thread exists: a lock some other thread held
 * is simply free again in the child. An exchange, not a store: Helgrind
 * takes a plain store for a race with the vanished threads' atomics. */
static inline void conc__mu_reinit(conc__mu_t *m) {
  conc__ann_mutex_pre_unlock(m);
  (void)conc__xchg(&m->word, 0);
  conc__ann_mutex_post_unlock(m);
}

static inline void conc__cv_reinit(conc__cv_t *c) {
  conc__store_relaxed(&c->waiters, 0);
}

/* Called with m held; returns with m held. 0 when signalled (or spuriously
 * woken), CONC_ETIMEDOUT once the deadline has passed. `waiters` counts
 * only waiters no signal has been spent on: a signaller takes one off, and
 * a waiter that leaves without the sequence having moved takes itself off,
 * so signals never go to threads that are already on their way out. */
static inline int conc__cv_wait_ex(conc__cv_t *c, conc__mu_t *m,
                                   conc_deadline_t deadline, bool intr) {
  uint32_t seq = conc__load_relaxed(&c->seq);
  c->waiters++;
  conc__mu_unlock(m);
  int rc = intr ? conc__wait_intr(&c->seq, seq, deadline, false)
                : conc__wait(&c->seq, seq, deadline, false);
  conc__mu_lock(m);
  if (conc__load_relaxed(&c->seq) == seq) {
    if (c->waiters > 0)
      c->waiters--;
  } else if (rc == CONC_EINTR) {
    /* A signal may have been spent on us: take it as woken (the caller
     * looks again) and keep the interrupt for the next wait. */
    conc__intr_keep();
    rc = 0;
  }
  return rc;
}

static inline int conc__cv_wait(conc__cv_t *c, conc__mu_t *m,
                                conc_deadline_t deadline) {
  return conc__cv_wait_ex(c, m, deadline, false);
}

/* As conc__cv_wait, for a wait the user asked for: also CONC_EINTR
 * (conc_interrupt), with no signal spent on this waiter. */
static inline int conc__cv_wait_intr(conc__cv_t *c, conc__mu_t *m,
                                     conc_deadline_t deadline) {
  return conc__cv_wait_ex(c, m, deadline, true);
}

/* With m held: record a signal to up to n waiters (CONC__WAKE_ALL for
 * all); returns how many to wake after unlocking (0 when nobody waits). */
static inline int conc__cv_signal(conc__cv_t *c, int n) {
  if (c->waiters == 0)
    return 0;
  if (n == CONC__WAKE_ALL || (uint32_t)n >= c->waiters) {
    n = n == CONC__WAKE_ALL ? CONC__WAKE_ALL : (int)c->waiters;
    c->waiters = 0;
  } else {
    c->waiters -= (uint32_t)n;
  }
  conc__store_release(&c->seq, c->seq + 1);
  return n;
}

/* Without m: deliver what conc__cv_signal recorded. */
static inline void conc__cv_wake(conc__cv_t *c, int n) {
  if (n > 0)
    conc__wake(&c->seq, n, false);
}

/*
 * The FIFO Queue's lock-free ring (qring.c; its protocol is in that file).
 * new: maxsize <= 0 is unbounded; cap is the first capacity (rounded up to
 * a power of two, at least 16). put/get: 0, CONC_EFULL / CONC_EEMPTY (not
 * blocking, or the deadline passed), CONC_EINTR, or CONC__QR_CLOSED: the
 * ring is closed and the caller takes its mutex path. put also answers
 * CONC__QR_GROW when every cell is taken and maxsize allows more: the
 * caller closes the ring and replaces it with conc__qring_grow's (NULL:
 * no memory), which takes over its items and indices and frees it with
 * itself. task_done: 0, CONC_ETASKDONE or
 * CONC__QR_CLOSED; join: 0, CONC_ETIMEDOUT, CONC_EINTR or CONC__QR_CLOSED;
 * qsize and unfinished: -1 when closed. close: from then on every call is
 * CONC__QR_CLOSED, no operation is half done and every sleeper is woken;
 * take_all (closed only) hands the items to fn oldest first and returns
 * the unfinished-task count; reopen undoes close (fork).
 */
#define CONC__QR_CLOSED 2
#define CONC__QR_GROW 3
typedef struct conc__qring conc__qring_t;
conc__qring_t *conc__qring_new(long maxsize, size_t cap);
conc__qring_t *conc__qring_grow(conc__qring_t *closed);
size_t conc__qring_capacity(const conc__qring_t *r);
void conc__qring_free(conc__qring_t *r);
int conc__qring_put(conc__qring_t *r, void *item, bool block,
                    conc_deadline_t dl);
int conc__qring_get(conc__qring_t *r, void **out, bool block,
                    conc_deadline_t dl);
long conc__qring_qsize(conc__qring_t *r);
long conc__qring_unfinished(conc__qring_t *r);
long conc__qring_maxsize(const conc__qring_t *r);
int conc__qring_task_done(conc__qring_t *r);
int conc__qring_join(conc__qring_t *r, conc_deadline_t dl);
void conc__qring_close(conc__qring_t *r);
void conc__qring_reopen(conc__qring_t *r);
void conc__qring_forget_sleepers(conc__qring_t *r);
long conc__qring_take_all(conc__qring_t *r, void (*fn)(void *item, void *arg),
                          void *arg);

#endif
