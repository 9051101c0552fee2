/*
 * Internals shared by the sync family (lock.c, lock_deathwatch.c,
 * condition.c, semaphore.c, barrier.c): thread and process identity, and
 * the "lock word" algorithm every lock of the family is built on.
 *
 * A lock word is 0 when free; otherwise bits 0-29 hold the holder's stamp
 * and bit 30 says that somebody may sleep on the word (release must wake).
 * The stamp identifies the holder:
 *   CONC__LW_PRIVATE   stamp 1: a private Lock/RLock; holders never "die".
 *   CONC__LW_SHARED    stamp = holder's kernel thread id: a pshared lock; a
 *                      holder thread that is gone (it exited, or its
 *                      process died) is dead. CONC__LW_DIED in the stamp
 *                      bits: the death watch saw the holder die.
 *   CONC__LW_FORKSTAMP stamp = 1 + fork generation: an internal lock; a
 *                      stamp from an older generation belongs to a thread
 *                      of the parent that does not exist in this child.
 * A dead holder's word is taken over by the next acquirer, who gets
 * CONC_EOWNERDEAD. CONC__LW_NOTREC marks a pshared lock given up for good.
 */
#ifndef CONC_SYNC_INT_H
#define CONC_SYNC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "conc/sync.h"
#include "platform-int.h"

#define CONC__LW_OWNER 0x3fffffffu
#define CONC__LW_WAITERS 0x40000000u
#define CONC__LW_NOTREC 0x80000000u
/* Stamp of a word whose holder died (no thread id is this large). */
#define CONC__LW_DIED CONC__LW_OWNER

enum conc__lw_kind { CONC__LW_PRIVATE, CONC__LW_SHARED, CONC__LW_FORKSTAMP };

/* A deadline that has always passed: a poll. */
#define CONC__DEADLINE_POLL ((conc_deadline_t)0)

/*
 * A pshared lock waiter checks the holder before it first sleeps, sleeps
 * CONC__SHARED_FIRST_SLICE_NS, then asks the death watch
 * (lock_deathwatch.c) to mark the word CONC__LW_DIED and wake it when the
 * holder thread ends, and sleeps on in CONC__SHARED_WATCHED_SLICE_NS
 * slices (a safety net); where the watch cannot follow the holder, in
 * CONC__SHARED_SLICE_NS slices, checking the holder after each. The
 * Barrier's sleepers use CONC__SHARED_SLICE_NS to look for dead parties.
 */
#define CONC__SHARED_SLICE_NS 20000000
#define CONC__SHARED_FIRST_SLICE_NS 500000
#define CONC__SHARED_WATCHED_SLICE_NS 1000000000

/* The caller's libconc thread id: nonzero, unique within the process,
 * kept across fork by the forking thread (as pthread_self is). */
uint32_t conc__sync_self(void);
/* getpid(), cached and refreshed in the child after fork. */
int32_t conc__sync_pid(void);
/* The caller's kernel thread id, cached and refreshed after fork. */
int32_t conc__sync_tid(void);
/* True when no process (or thread) `pid` exists any more, or it is a
 * zombie (pid reuse can hide a death; see docs/sync.md). */
bool conc__pid_dead(int32_t pid);
/* The caller's stamp for a lock word of this kind. */
uint32_t conc__lw_stamp(enum conc__lw_kind kind);

/*
 * Acquire a lock word until `deadline`. `nwait` (may be NULL) counts the
 * threads sleeping in here on a word of a private kind (pshared sleepers
 * are counted by the kernel: conc__sync_sleepers). Returns 0, CONC_EOWNERDEAD (taken over from a
 * dead holder), CONC_ETIMEDOUT or CONC_ENOTRECOVERABLE.
 */
int conc__lw_acquire(uint32_t *word, uint32_t *nwait, enum conc__lw_kind kind,
                     conc_deadline_t deadline);
/* As conc__lw_acquire; a `sleeper` (a thread that may have been moved onto
 * the word's sleepers by conc__requeue, or woken from there) takes the word
 * with the waiters bit set, since others may still sleep on it. */
int conc__lw_acquire_ex(uint32_t *word, uint32_t *nwait,
                        enum conc__lw_kind kind, conc_deadline_t deadline,
                        bool sleeper);
/* Free a held word and wake one sleeper if any may sleep. */
void conc__lw_release(uint32_t *word, bool shared);

/*
 * Pshared waiter accounting. A waiter killed while asleep leaves no trace
 * in the kernel's futex queue, so the pshared objects count their sleepers
 * there instead of in a field that a dead waiter would leave raised.
 * conc__sync_sleepers: the threads (of any process) asleep on `word` now,
 * or -1 where the platform cannot tell. conc__sync_wake: wake up to `n`
 * sleepers of a pshared word and return how many woke (n where the
 * platform cannot tell). conc__sync_wakes: how many such wake calls the
 * pshared Lock, Semaphore, Event and Barrier have made (a statistic for
 * tests).
 */
int conc__sync_sleepers(const uint32_t *word);
int conc__sync_wake(const uint32_t *word, int n);
unsigned long conc__sync_wakes(void);

/*
 * The death watch (lock_deathwatch.c). conc__dw_watch: have the word
 * marked CONC__LW_DIED and its sleepers woken once holder thread `tid`
 * ends; returns a handle for conc__dw_unwatch, or -1: this holder cannot
 * be watched. conc__dw_unwatch: the waiter no longer relies on handle `h`.
 * conc__dw_fallback_slice: the slice of a sleeper that the watch cannot
 * serve. conc__dw_before_fork, conc__dw_after_fork: fork handlers, run
 * with lock.c's (the helper does not exist in a child).
 */
int conc__dw_watch(uint32_t *word, int32_t tid);
void conc__dw_unwatch(int h);
int64_t conc__dw_fallback_slice(void);
void conc__dw_before_fork(void);
void conc__dw_after_fork(void);

/* Lock timeout rules of Python's Lock (spec L7). */
int conc__lock_deadline(bool blocking, double timeout, conc_deadline_t *out);

/* A Lock's release without the lock-order checker's hook (a Condition's
 * wait keeps the lock on the waiter's held stack). */
int conc__lock_release_raw(conc_lock_t *l);
/* conc_rlock_init with the init site that names its checker class. */
int conc__rlock_init_site(conc_rlock_t *r, const conc_rlock_opts_t *opts,
                          const void *site);

/* Condition support: give up every level of an RLock and get it back. */
int conc__rlock_release_save(conc_rlock_t *r, uint32_t *saved);
int conc__rlock_acquire_restore(conc_rlock_t *r, uint32_t saved, bool sleeper);
/* Acquire with an absolute deadline (the lock and rlock acquire core);
 * `sleeper` as in conc__lw_acquire_ex. */
int conc__lock_acquire_until(conc_lock_t *l, conc_deadline_t deadline,
                             bool sleeper);
int conc__rlock_acquire_until(conc_rlock_t *r, conc_deadline_t deadline,
                              bool sleeper);

/*
 * Adaptive spinning before a sleep. A thread about to sleep until a word
 * changes first watches the word for up to CONC__SPIN_NS: when the threads
 * involved have a core each, the change then usually comes within that
 * time and nobody enters the kernel. When a spin fails (threads share a
 * core, or the other side is slow), the next 2, 4, ... 256 waits on that
 * object do not spin, so a spin that does not pay costs at most
 * CONC__SPIN_NS per 256 waits. The hint words (skip, fails) live in the
 * object and are read and written racily with relaxed atomics.
 */
#define CONC__SPIN_NS 20000
#define CONC__SPIN_MAX_BACKOFF 8
#define CONC__SPIN_YIELD_NS 1000

/* True if this wait should spin now (more than one CPU, not backing off,
 * and the deadline leaves room for a whole spin). */
bool conc__spin_begin(uint32_t *skip, conc_deadline_t deadline);
/* Spin while *word == value, at most CONC__SPIN_NS; true once it differs.
 * `yield`: after CONC__SPIN_YIELD_NS, sched_yield() between looks, so that
 * a thread we wait for that shares our core gets to run (the Barrier's
 * parties: 1.4-1.6x faster cycles measured on a loaded 2-core machine; the
 * Condition's ping-pong got slower with it, so it does not yield). */
bool conc__spin_while(const uint32_t *word, uint32_t value, bool yield);
/* Spin while *word != 0 (a lock word is held), at most CONC__SPIN_NS;
 * true once it is 0. */
bool conc__spin_until_free(const uint32_t *word);
/* Record whether the spin paid; a failure starts or lengthens a back-off. */
void conc__spin_end(uint32_t *skip, uint32_t *fails, bool paid);

static inline bool conc__deadline_passed(conc_deadline_t d) {
  return d != CONC_DEADLINE_NEVER &&
         (d == CONC__DEADLINE_POLL || conc__now_ns() >= d);
}

#endif
