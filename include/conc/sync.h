/*
 * Synchronisation primitives of Python's `threading` module: Lock, RLock,
 * Condition, Semaphore, BoundedSemaphore, Event and Barrier. Every object
 * works between threads (including threads libconc did not create) and,
 * with the `pshared` option, between processes when placed in MAP_SHARED
 * memory. See docs/sync.md for the Python-to-C mapping.
 *
 * Return convention of every acquire/wait:
 *   0                    acquired / notified / flag set
 *   CONC_ETIMEDOUT       not acquired within the timeout (also a failed try)
 *   CONC_EOWNERDEAD      acquired, but the previous holder thread ended or
 *                        its process died (pshared only; see
 *                        conc_lock_mark_consistent)
 *   other negatives      errors (CONC_EINVAL bad argument, CONC_ESTATE
 *                        RuntimeError misuse, ...)
 *
 * The struct contents are private: allocate the object, never touch `priv`.
 */
#ifndef CONC_SYNC_H
#define CONC_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/defs.h"
#include "conc/error.h"
#include "conc/time.h"

/* glibc tells whether the process has ever had a second thread; while it
 * has not, the private Lock fast path needs no atomic read-modify-write
 * (glibc's own mutexes take the same shortcut). */
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define CONC__SINGLE_THREADED() (__libc_single_threaded != 0)
#endif
#endif
#ifndef CONC__SINGLE_THREADED
#define CONC__SINGLE_THREADED() 0
#endif

/* Private flag bits shared by every sync object (priv.flags). */
#define CONC__SYNC_PSHARED 1u
#define CONC__SYNC_BOUNDED 2u

/* At most this many processes/threads may wait at once on one pshared
 * Condition; one more gets CONC_EAGAIN (private conditions: no limit). */
#define CONC_CONDITION_PSHARED_MAX_WAITERS 32
/* A pshared Barrier watches the liveness of this many waiting parties
 * (the first arrivals of a cycle); more parties are allowed. */
#define CONC_BARRIER_PSHARED_TRACKED 32

/* ------------------------------------------------------------------ Lock */

/* threading.Lock: not reentrant, not owner-bound (any thread, and for a
 * pshared lock any process, may release it). */
typedef struct conc_lock {
  struct {
    uint32_t word;  /* 0 free; else owner stamp | waiters bit */
    uint32_t flags; /* CONC__SYNC_PSHARED */
    uint32_t nwait; /* private: threads blocked in acquire */
    uint32_t state; /* pshared: 1 = inconsistent (owner died) */
  } priv;
} conc_lock_t;

/* A private, unlocked lock: static conc_lock_t mu = CONC_LOCK_INIT; */
#define CONC_LOCK_INIT                                                         \
  {                                                                            \
    { 0u, 0u, 0u, 0u }                                                         \
  }

typedef struct conc_lock_opts {
  bool pshared; /* usable across processes (object in MAP_SHARED memory) */
  /* The lock's class for the lock-order checker (conc/lockdep.h): locks of
   * one name are one class. NULL: its symbol if it is a global or static,
   * else its init site. The checker copies the string. */
  const char *name;
} conc_lock_opts_t;

CONC_BEGIN_DECLS

/* Initialise an unlocked lock. NULL opts = private. 0 or CONC_EINVAL. */
CONC_EXTERN int conc_lock_init(conc_lock_t *l, const conc_lock_opts_t *opts);
/* CONC_EBUSY (nothing changed) while a thread is blocked in acquire; a
 * lock that is merely held may be destroyed, as Python drops it. */
CONC_EXTERN int conc_lock_destroy(conc_lock_t *l);

/* Slow paths of the inline fast paths below; not part of the API. */
CONC_EXTERN int conc__lock_acquire_slow(conc_lock_t *l, double timeout);
CONC_EXTERN int conc__lock_release_slow(conc_lock_t *l);
/* The private release after the swap found `old` instead of plain 1. */
CONC_EXTERN int conc__lock_release_after(conc_lock_t *l, uint32_t old);
/* Nonzero while the inline Lock fast paths must call the library instead:
 * set once at load time when a race detector (ThreadSanitizer, Helgrind,
 * DRD) is present, so that the library can tell it about every hand-off
 * (docs/debugging.md). Other debugging modes may set other bits. */
CONC_EXTERN extern unsigned char conc__sync_divert;

/* acquire(): block until acquired. 0, CONC_EOWNERDEAD (pshared),
 * CONC_ENOTRECOVERABLE (pshared lock given up), CONC_EINVAL (NULL). */
static inline int conc_lock_acquire(conc_lock_t *l) {
  if (__builtin_expect(l != NULL && (l->priv.flags | conc__sync_divert) == 0,
                       1)) {
    if (CONC__SINGLE_THREADED()) {
      if (__atomic_load_n(&l->priv.word, __ATOMIC_RELAXED) == 0) {
        __atomic_store_n(&l->priv.word, 1u, __ATOMIC_RELAXED);
        return 0;
      }
    } else {
      uint32_t z = 0;
      if (__atomic_compare_exchange_n(&l->priv.word, &z, 1u, false,
                                      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 0;
    }
  }
  return conc__lock_acquire_slow(l, CONC_FOREVER);
}

/* acquire(timeout=t): 0 tries once, CONC_FOREVER blocks. Timeout rules of
 * Python's Lock (L7): t < 0 other than -1 or NaN is CONC_EINVAL, t above
 * CONC_TIMEOUT_MAX is CONC_EOVERFLOW. CONC_ETIMEDOUT when not acquired. */
CONC_EXTERN int conc_lock_acquire_timeout(conc_lock_t *l, double timeout);
/* acquire(blocking, timeout) with Python's exact rules: blocking=false with
 * a timeout other than CONC_FOREVER is CONC_EINVAL. */
CONC_EXTERN int conc_lock_acquire_ex(conc_lock_t *l, bool blocking,
                                     double timeout);

/* release(): 0; CONC_ESTATE if the lock is not locked (RuntimeError). */
static inline int conc_lock_release(conc_lock_t *l) {
  if (__builtin_expect(l == NULL || (l->priv.flags | conc__sync_divert) != 0,
                       0))
    return conc__lock_release_slow(l);
  if (CONC__SINGLE_THREADED() &&
      __atomic_load_n(&l->priv.word, __ATOMIC_RELAXED) == 1u) {
    __atomic_store_n(&l->priv.word, 0u, __ATOMIC_RELEASE);
    return 0;
  }
  uint32_t old = __atomic_exchange_n(&l->priv.word, 0u, __ATOMIC_RELEASE);
  if (__builtin_expect(old == 1u, 1))
    return 0;
  return conc__lock_release_after(l, old);
}

/* locked(): true while any thread (or process) holds the lock. */
CONC_EXTERN bool conc_lock_locked(const conc_lock_t *l);
/* Debug string "<locked conc.Lock object at 0x...>" or "<unlocked ...>".
 * Returns the length snprintf would write, or CONC_EINVAL. */
CONC_EXTERN int conc_lock_repr(const conc_lock_t *l, char *buf, size_t n);
/* _at_fork_reinit(): make the lock unlocked and usable again (in a child
 * after fork, when the lock was held by a thread that does not exist
 * there). On a pshared lock this re-initialises the shared object for
 * every process. */
CONC_EXTERN int conc_lock_at_fork_reinit(conc_lock_t *l);
/* After an acquire returned CONC_EOWNERDEAD, declare the protected state
 * repaired. If the lock is released without this, it becomes unusable and
 * every later acquire returns CONC_ENOTRECOVERABLE (like a POSIX robust
 * mutex). CONC_EINVAL if the lock is not in the owner-died state. */
CONC_EXTERN int conc_lock_mark_consistent(conc_lock_t *l);

CONC_END_DECLS

/* ----------------------------------------------------------------- RLock */

/* threading.RLock: reentrant, owned by the acquiring thread. */
typedef struct conc_rlock {
  struct {
    conc_lock_t base; /* the underlying lock word (pshared: owner pid) */
    uint32_t owner;   /* owning thread's libconc id, 0 when free */
    uint32_t count;   /* recursion level */
  } priv;
} conc_rlock_t;

#define CONC_RLOCK_INIT                                                        \
  {                                                                            \
    { CONC_LOCK_INIT, 0u, 0u }                                                 \
  }

typedef struct conc_rlock_opts {
  bool pshared;
  const char *name; /* as conc_lock_opts_t's */
} conc_rlock_opts_t;

CONC_BEGIN_DECLS

CONC_EXTERN int conc_rlock_init(conc_rlock_t *r, const conc_rlock_opts_t *opts);
/* CONC_EBUSY while a thread is blocked in acquire. */
CONC_EXTERN int conc_rlock_destroy(conc_rlock_t *r);
/* Same results and timeout rules as the conc_lock_* acquires. A recursive
 * acquire past UINT32_MAX levels is CONC_EOVERFLOW. */
CONC_EXTERN int conc_rlock_acquire(conc_rlock_t *r);
CONC_EXTERN int conc_rlock_acquire_timeout(conc_rlock_t *r, double timeout);
CONC_EXTERN int conc_rlock_acquire_ex(conc_rlock_t *r, bool blocking,
                                      double timeout);
/* 0; CONC_ESTATE when not locked at all; CONC_EPERM when held by another
 * thread (both RuntimeError in Python). */
CONC_EXTERN int conc_rlock_release(conc_rlock_t *r);
/* locked(): true while any thread holds it. */
CONC_EXTERN bool conc_rlock_locked(const conc_rlock_t *r);
/* _is_owned(): true only in the owning thread. */
CONC_EXTERN bool conc_rlock_is_owned(const conc_rlock_t *r);
/* _recursion_count(): the level if the caller owns it, else 0. */
CONC_EXTERN unsigned conc_rlock_count(const conc_rlock_t *r);
/* "<locked conc.RLock object owner=ID count=N at 0x...>". */
CONC_EXTERN int conc_rlock_repr(const conc_rlock_t *r, char *buf, size_t n);
CONC_EXTERN int conc_rlock_at_fork_reinit(conc_rlock_t *r);
/* As conc_lock_mark_consistent; only the owner may call it (CONC_EPERM). */
CONC_EXTERN int conc_rlock_mark_consistent(conc_rlock_t *r);

CONC_END_DECLS

/* ------------------------------------------------------------- Condition */

/* threading.Condition over a Lock, an RLock, or (default) its own RLock. */
typedef struct conc_condition {
  struct {
    conc_rlock_t own;    /* used when neither lock nor rlock was given */
    conc_lock_t *lock;   /* the caller's Lock, or NULL */
    conc_rlock_t *rlock; /* the caller's RLock, or NULL */
    void *head, *tail;   /* private: FIFO of waiter records */
    uint32_t flags;
    uint32_t ticket; /* pshared: next FIFO ticket; private: records */
    struct {
      uint32_t word; /* 0 free; ticket << 2 | state */
      int32_t pid;   /* waiting process */
    } slot[CONC_CONDITION_PSHARED_MAX_WAITERS];
    uint32_t spin_skip, spin_fails; /* private: adaptive spin hint */
  } priv;
} conc_condition_t;

/* A private condition over its own RLock. */
#define CONC_CONDITION_INIT                                                    \
  {                                                                            \
    { CONC_RLOCK_INIT, NULL, NULL, NULL, NULL, 0u, 0u, {{0u, 0}}, 0u, 0u }     \
  }

typedef struct conc_condition_opts {
  conc_lock_t *lock;   /* Condition(lock): at most one of lock/rlock */
  conc_rlock_t *rlock; /* Condition(rlock) */
  /* usable across processes; a given lock must be pshared too and live at
   * the same address in every process (true for memory mapped before
   * fork). */
  bool pshared;
  /* Names the Condition's own RLock for the lock-order checker (a given
   * lock keeps its own name). */
  const char *name;
} conc_condition_opts_t;

CONC_BEGIN_DECLS

/* CONC_EINVAL when both locks are given, or pshared with a private lock. */
CONC_EXTERN int conc_condition_init(conc_condition_t *c,
                                    const conc_condition_opts_t *opts);
/* CONC_EBUSY while threads wait on it. */
CONC_EXTERN int conc_condition_destroy(conc_condition_t *c);
/* The underlying lock's acquire/release (C1). */
CONC_EXTERN int conc_condition_acquire(conc_condition_t *c);
CONC_EXTERN int conc_condition_acquire_timeout(conc_condition_t *c,
                                               double timeout);
CONC_EXTERN int conc_condition_acquire_ex(conc_condition_t *c, bool blocking,
                                          double timeout);
CONC_EXTERN int conc_condition_release(conc_condition_t *c);
/*
 * wait(timeout): release the lock (every level of an RLock), block until
 * notified or the timeout, reacquire and restore. CONC_FOREVER waits
 * forever; other negatives and 0 poll. 0 = notified, CONC_ETIMEDOUT = not.
 * CONC_ESTATE if the caller does not hold the lock. A timed-out waiter
 * never absorbs a later notify; no spurious wake-up ever returns.
 * pshared: CONC_EAGAIN when CONC_CONDITION_PSHARED_MAX_WAITERS already
 * wait (nothing changed); CONC_EOWNERDEAD when the reacquire found the
 * lock's holder dead (the lock is held; the notification is lost), or
 * CONC_ENOTRECOVERABLE when that lock was given up.
 */
CONC_EXTERN int conc_condition_wait(conc_condition_t *c, double timeout);
/*
 * wait_for(predicate, timeout): one deadline for the whole call; pred is
 * checked first, always with the lock held. pred returns 0 for "not yet",
 * a positive value for "done" (Python's truthy result) or a negative
 * CONC_E* code (its exception). Returns what Python returns: pred's value
 * (> 0) once it holds, or 0 when the timeout passed with pred still 0; a
 * negative return is pred's code, ending the wait at once, or the wait's
 * own error (CONC_EINVAL, CONC_ESTATE, CONC_EOWNERDEAD, ...).
 */
CONC_EXTERN int conc_condition_wait_for(conc_condition_t *c,
                                        int (*pred)(void *arg), void *arg,
                                        double timeout);
/* notify(n): wake exactly min(n, waiters), oldest first; n <= 0 is a
 * no-op. CONC_ESTATE if the caller does not hold the lock. */
CONC_EXTERN int conc_condition_notify(conc_condition_t *c, int n);
CONC_EXTERN int conc_condition_notify_all(conc_condition_t *c);
/* "<Condition(<lock repr>, N)>" with N waiters. */
CONC_EXTERN int conc_condition_repr(const conc_condition_t *c, char *buf,
                                    size_t n);

CONC_END_DECLS

/* ----------------------------------------------- Semaphore / Bounded... */

typedef struct conc_semaphore {
  struct {
    uint32_t value;   /* the counter, also the wait word (pshared: bit 31
                         says a thread may sleep on it) */
    uint32_t nwait;   /* private: threads blocked in acquire */
    uint32_t initial; /* bound of a BoundedSemaphore */
    uint32_t flags;   /* CONC__SYNC_PSHARED | CONC__SYNC_BOUNDED */
  } priv;
} conc_semaphore_t;

/* BoundedSemaphore is the same object with the bounded flag; every
 * conc_semaphore_* function applies. */
typedef conc_semaphore_t conc_bounded_semaphore_t;

#define CONC_SEMAPHORE_INIT(v)                                                 \
  {                                                                            \
    { (uint32_t)(v), 0u, (uint32_t)(v), 0u }                                   \
  }
#define CONC_BOUNDED_SEMAPHORE_INIT(v)                                         \
  {                                                                            \
    { (uint32_t)(v), 0u, (uint32_t)(v), CONC__SYNC_BOUNDED }                   \
  }

typedef struct conc_semaphore_opts {
  bool bounded; /* BoundedSemaphore: release past the initial value fails */
  bool pshared;
  const char *name; /* as conc_lock_opts_t's */
} conc_semaphore_opts_t;

CONC_BEGIN_DECLS

/* Semaphore(value): value < 0 is CONC_EINVAL (S1). */
CONC_EXTERN int conc_semaphore_init(conc_semaphore_t *s, int value,
                                    const conc_semaphore_opts_t *opts);
/* BoundedSemaphore(value): as conc_semaphore_init with bounded set. */
CONC_EXTERN int conc_bounded_semaphore_init(conc_bounded_semaphore_t *s,
                                            int value,
                                            const conc_semaphore_opts_t *opts);
/* CONC_EBUSY while threads wait. */
CONC_EXTERN int conc_semaphore_destroy(conc_semaphore_t *s);
/* acquire(): block. acquire_timeout: CONC_FOREVER blocks, other negatives
 * and 0 poll, NaN is CONC_EINVAL. acquire_ex(blocking=false, timeout other
 * than CONC_FOREVER) is CONC_EINVAL (S5). */
CONC_EXTERN int conc_semaphore_acquire(conc_semaphore_t *s);
CONC_EXTERN int conc_semaphore_acquire_timeout(conc_semaphore_t *s,
                                               double timeout);
CONC_EXTERN int conc_semaphore_acquire_ex(conc_semaphore_t *s, bool blocking,
                                          double timeout);
/* release(n): add n (n < 1 is CONC_EINVAL) and admit up to n waiters.
 * Bounded: past the initial value is CONC_EINVAL, value unchanged. Past
 * INT_MAX is CONC_EOVERFLOW. */
CONC_EXTERN int conc_semaphore_release(conc_semaphore_t *s, int n);
/* The current value (multiprocessing's get_value()). */
CONC_EXTERN int conc_semaphore_get_value(const conc_semaphore_t *s);
/* "<conc.Semaphore at 0x...: value=N>" or BoundedSemaphore "value=N/M". */
CONC_EXTERN int conc_semaphore_repr(const conc_semaphore_t *s, char *buf,
                                    size_t n);

CONC_END_DECLS

/* ----------------------------------------------------------------- Event */

typedef struct conc_event {
  struct {
    uint32_t word;  /* generation << 1 | flag (pshared: bit 31 as above) */
    uint32_t nwait; /* private: threads blocked in wait; bit 31: tasks
                       may wait (CONC__EVENT_TASKS) */
    uint32_t flags;
  } priv;
} conc_event_t;

#define CONC__EVENT_TASKS 0x80000000u

#define CONC_EVENT_INIT                                                        \
  {                                                                            \
    { 0u, 0u, 0u }                                                             \
  }

typedef struct conc_event_opts {
  bool pshared;
} conc_event_opts_t;

CONC_BEGIN_DECLS

CONC_EXTERN int conc_event_init(conc_event_t *e, const conc_event_opts_t *opts);
/* CONC_EBUSY while threads wait. */
CONC_EXTERN int conc_event_destroy(conc_event_t *e);
/* set(): wake every waiter. Idempotent. */
CONC_EXTERN int conc_event_set(conc_event_t *e);
CONC_EXTERN int conc_event_clear(conc_event_t *e);
CONC_EXTERN bool conc_event_is_set(const conc_event_t *e);
/* wait(timeout): 0 if the flag was set (also when it was set and cleared
 * again while waiting, as Python), CONC_ETIMEDOUT otherwise. CONC_FOREVER
 * waits forever, other negatives poll, NaN is CONC_EINVAL. */
CONC_EXTERN int conc_event_wait(conc_event_t *e, double timeout);
/* "<conc.Event at 0x...: set>" or "unset". */
CONC_EXTERN int conc_event_repr(const conc_event_t *e, char *buf, size_t n);
/*
 * wait(timeout) from a loop task (janus; docs/sync.md): suspends only the
 * task; a set() from any thread wakes it through its loop. 0 once set (also
 * when cleared again before the task runs), CONC_ETIMEDOUT, CONC_ECANCELED
 * (no waiter is left behind), CONC_ESTATE outside a task, CONC_EINVAL (NULL,
 * NaN, or a process-shared event: a set in another process cannot reach a
 * loop), CONC_ENOMEM. Timeouts as conc_event_wait. A task waiting counts as
 * a waiter for conc_event_destroy (CONC_EBUSY).
 */
CONC_EXTERN int conc_event_wait_async(conc_event_t *e, double timeout);

CONC_END_DECLS

/* --------------------------------------------------------------- Barrier */

typedef struct conc_barrier {
  struct {
    uint32_t ilock;  /* internal lock word (pshared: holder pid) */
    uint32_t seq;    /* wait word: changes on every state change */
    uint32_t nsleep; /* parties asleep on seq (a wake is needed) */
    uint32_t spin_skip, spin_fails; /* adaptive spin before sleeping */
    int32_t parties;
    int32_t count;  /* parties waiting in the current cycle */
    int32_t state;  /* filling, resetting, broken */
    uint32_t epoch; /* cycle number */
    uint32_t flags;
    int32_t has_timeout;
    double timeout;
    conc_fn_t action;
    void *action_arg;
    int32_t pid[CONC_BARRIER_PSHARED_TRACKED]; /* pshared: waiting pids */
  } priv;
} conc_barrier_t;

/* wait(CONC_BARRIER_DEFAULT): Python's wait(timeout=None), the barrier's
 * default timeout, or forever when it has none. CONC_FOREVER always waits
 * without limit, whatever the default. */
#define CONC_BARRIER_DEFAULT (-2.0)

typedef struct conc_barrier_opts {
  /* Run once per cycle by the last arriver, under the barrier's lock,
   * before anyone is released. A negative return (its exception) breaks
   * the barrier: that party's wait returns the code (with its conc_raise
   * message), the others get CONC_EBROKEN. *result is ignored, as Python
   * ignores the action's return value. */
  conc_fn_t action;
  void *action_arg;
  bool has_timeout; /* false: no default timeout (Python's None) */
  double timeout;   /* used by wait(CONC_BARRIER_DEFAULT) if has_timeout */
  bool pshared;
} conc_barrier_opts_t;

CONC_BEGIN_DECLS

/* Barrier(parties, action, timeout): parties < 1 is CONC_EINVAL, a NaN or
 * negative default timeout is CONC_EINVAL. */
CONC_EXTERN int conc_barrier_init(conc_barrier_t *b, int parties,
                                  const conc_barrier_opts_t *opts);
/* CONC_EBUSY while parties wait. */
CONC_EXTERN int conc_barrier_destroy(conc_barrier_t *b);
/*
 * wait(timeout): an index in [0, parties) distinct per party of a cycle
 * (the last arriver gets parties-1 and runs the action), or CONC_EBROKEN
 * (BrokenBarrierError: abort, reset, a timeout, a failed action, or,
 * pshared, a dead party), or the action's negative code for the party
 * that ran it. CONC_FOREVER waits without limit; CONC_BARRIER_DEFAULT
 * takes the barrier's default (Python's None), which is forever when it
 * has none; other negatives poll. A timeout breaks the barrier for every
 * party.
 */
CONC_EXTERN int conc_barrier_wait(conc_barrier_t *b, double timeout);
/* reset(): waiting parties get CONC_EBROKEN; the barrier is reusable. */
CONC_EXTERN int conc_barrier_reset(conc_barrier_t *b);
/* abort(): break the barrier for current and future waiters. */
CONC_EXTERN int conc_barrier_abort(conc_barrier_t *b);
CONC_EXTERN int conc_barrier_parties(const conc_barrier_t *b);
CONC_EXTERN int conc_barrier_n_waiting(const conc_barrier_t *b);
CONC_EXTERN bool conc_barrier_broken(const conc_barrier_t *b);
/* "<conc.Barrier at 0x...: waiters=k/N>" or ": broken>". */
CONC_EXTERN int conc_barrier_repr(const conc_barrier_t *b, char *buf, size_t n);

CONC_END_DECLS

/* ------------------------------------------------------- scoped `with` */

/*
 * with lock: ...  becomes  CONC_WITH_LOCK(&lock) { ... }
 * The body runs once with the object acquired (blocking acquire; an
 * owner-died acquire counts as acquired) and the object is released on
 * every exit from the block: normal end, break, continue, return, goto.
 * If the acquire fails (NULL, a not-recoverable pshared lock, CONC_EINTR
 * from conc_interrupt) the body is skipped. Do not release the object yourself inside the block.
 * `break`/`continue` inside the body leave the body (it is a one-shot
 * loop), not an enclosing loop.
 */
#if defined(__GNUC__) || defined(__clang__)

static inline void conc__with_lock_end(conc_lock_t **p) {
  if (*p)
    conc_lock_release(*p);
}
static inline void conc__with_rlock_end(conc_rlock_t **p) {
  if (*p)
    conc_rlock_release(*p);
}
static inline void conc__with_condition_end(conc_condition_t **p) {
  if (*p)
    conc_condition_release(*p);
}
static inline void conc__with_semaphore_end(conc_semaphore_t **p) {
  if (*p)
    conc_semaphore_release(*p, 1);
}
static inline conc_lock_t *conc__with_lock_begin(conc_lock_t *l) {
  int rc = conc_lock_acquire(l);
  return rc == 0 || rc == CONC_EOWNERDEAD ? l : NULL;
}
static inline conc_rlock_t *conc__with_rlock_begin(conc_rlock_t *r) {
  int rc = conc_rlock_acquire(r);
  return rc == 0 || rc == CONC_EOWNERDEAD ? r : NULL;
}
static inline conc_condition_t *
conc__with_condition_begin(conc_condition_t *c) {
  int rc = conc_condition_acquire(c);
  return rc == 0 || rc == CONC_EOWNERDEAD ? c : NULL;
}
static inline conc_semaphore_t *
conc__with_semaphore_begin(conc_semaphore_t *s) {
  return conc_semaphore_acquire(s) == 0 ? s : NULL;
}

#define CONC__SYNC_CAT2(a, b) a##b
#define CONC__SYNC_CAT(a, b) CONC__SYNC_CAT2(a, b)
#define CONC__WITH(type, kind, obj, id)                                        \
  for (type * id __attribute__((cleanup(conc__with_##kind##_end))) =           \
           conc__with_##kind##_begin(obj),                                     \
                 *CONC__SYNC_CAT(id, _once) = id;                              \
       CONC__SYNC_CAT(id, _once); CONC__SYNC_CAT(id, _once) = NULL)

#define CONC_WITH_LOCK(l)                                                      \
  CONC__WITH(conc_lock_t, lock, (l), CONC__SYNC_CAT(conc__with_, __COUNTER__))
#define CONC_WITH_RLOCK(r)                                                     \
  CONC__WITH(conc_rlock_t, rlock, (r), CONC__SYNC_CAT(conc__with_, __COUNTER__))
#define CONC_WITH_CONDITION(c)                                                 \
  CONC__WITH(conc_condition_t, condition, (c),                                 \
             CONC__SYNC_CAT(conc__with_, __COUNTER__))
#define CONC_WITH_SEMAPHORE(s)                                                 \
  CONC__WITH(conc_semaphore_t, semaphore, (s),                                 \
             CONC__SYNC_CAT(conc__with_, __COUNTER__))

#endif

#endif
