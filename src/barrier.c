/*
 * Barrier: Python's state machine (filling, resetting, broken) without the
 * "draining" phase, on an internal lock word and one wait word.
 *
 * Locking protocol: every field except `seq` is read and written under the
 * internal lock `ilock` (a lock word of kind FORKSTAMP, or SHARED for a
 * pshared barrier, so a holder lost to fork or to a dead process is taken
 * over instead of hanging everyone). Waiters sleep on `seq`, which is bumped
 * (then woken) on every change a waiter must see: a trip, a break, the end
 * of a reset. Sleepers count themselves in `nsleep` (pshared: raise a bit
 * of `seq`, see seq_bump), so a bump with nobody asleep makes no system
 * call, and a waiter first spins on `seq` for a
 * moment (adaptively, see sync-int.h), so parties with a core each meet
 * without the kernel.
 *
 * Each cycle has an epoch number. A trip ends the epoch at once (count
 * back to 0), so a fast thread may start the next cycle before the others
 * have left; a waiter knows it was released by a trip because the epoch it
 * joined has ended. Breaks keep the epoch: a broken or resetting barrier
 * lets no one start a new epoch until every waiter of the broken one has
 * left (Python's "resetting" wait), so a waiter never confuses a break with
 * a trip.
 *
 * Pshared: waiting parties record their pid; sleepers wake every
 * CONC__SHARED_SLICE_NS to look for a dead party, which breaks the barrier
 * and is struck from the count.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "annotate-int.h"
#include "conc/sync.h"
#include "error-int.h"
#include "init-int.h"
#include "sync-int.h"

enum { FILLING = 0, RESETTING = -1, BROKEN = -2 };

static bool bshared(const conc_barrier_t *b) {
  return b->priv.flags & CONC__SYNC_PSHARED;
}

int conc_barrier_init(conc_barrier_t *b, int parties,
                      const conc_barrier_opts_t *opts) {
  if (!b || parties < 1)
    return CONC_EINVAL;
  conc_barrier_opts_t o = opts ? *opts : (conc_barrier_opts_t){0};
  if (o.has_timeout && (isnan(o.timeout) || o.timeout < 0))
    return CONC_EINVAL;
  conc__init(); /* fork generations stamp the internal lock */
  memset(b, 0, sizeof *b);
  b->priv.parties = parties;
  b->priv.action = o.action;
  b->priv.action_arg = o.action_arg;
  b->priv.has_timeout = o.has_timeout;
  b->priv.timeout = o.timeout;
  b->priv.flags = o.pshared ? CONC__SYNC_PSHARED : 0u;
  /* Race detectors (annotate-int.h): the words from ilock to epoch are
   * atomics, some read without ilock (seq, epoch, count); the hand-offs
   * are annotated where they happen. */
  conc__ann_benign_race(&b->priv.ilock, (size_t)((char *)(&b->priv.epoch + 1) -
                                                 (char *)&b->priv.ilock));
  return 0;
}

/*
 * Sleepers announce themselves in nsleep before their last look at seq; a
 * waker bumps seq before it reads nsleep. Both are sequentially consistent,
 * so either the waker sees the sleeper or the sleeper sees the new seq: the
 * futex wake is skipped only when nobody can be asleep.
 *
 * Pshared: a party killed asleep would leave nsleep raised for good, and
 * every later bump would pay a wake-up for it. Sleepers raise SLEEPERS in
 * seq instead (by CAS, then sleep on seq with it); a bump clears the bit
 * in the increment and wakes everyone if it was set.
 */
#define SLEEPERS 0x80000000u

/* Returns whether a wake is due (seq_wake). */
static bool seq_bump(conc_barrier_t *b) {
  if (!bshared(b)) {
    __atomic_fetch_add(&b->priv.seq, 1u, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&b->priv.nsleep, __ATOMIC_SEQ_CST) != 0;
  }
  uint32_t v = __atomic_load_n(&b->priv.seq, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(&b->priv.seq, &v,
                                      ((v & ~SLEEPERS) + 1u) & ~SLEEPERS, true,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    ;
  return v & SLEEPERS;
}

static void seq_wake(conc_barrier_t *b, bool due) {
  if (!due)
    return;
  if (bshared(b))
    conc__sync_wake(&b->priv.seq, CONC__WAKE_ALL);
  else
    conc__wake(&b->priv.seq, CONC__WAKE_ALL, false);
}

static void bump(conc_barrier_t *b) { seq_wake(b, seq_bump(b)); }

static void break_locked(conc_barrier_t *b) {
  conc__store_relaxed(&b->priv.state, BROKEN);
  bump(b);
}

static void end_reset_if_empty(conc_barrier_t *b) {
  if (b->priv.count == 0 && b->priv.state == RESETTING) {
    conc__store_relaxed(&b->priv.state, FILLING);
    conc__store_release(&b->priv.epoch, b->priv.epoch + 1u);
    bump(b);
  }
}

/* Strike parties whose process died from the count; true if any was. */
static bool purge_dead(conc_barrier_t *b) {
  bool any = false;
  int n = b->priv.count < CONC_BARRIER_PSHARED_TRACKED
              ? b->priv.count
              : CONC_BARRIER_PSHARED_TRACKED;
  for (int i = 0; i < n; i++) {
    int32_t pid = b->priv.pid[i];
    if (pid != 0 && pid != conc__sync_pid() && conc__pid_dead(pid)) {
      b->priv.pid[i] = 0;
      conc__store_relaxed(&b->priv.count, b->priv.count - 1);
      any = true;
    }
  }
  return any;
}

static void ilock(conc_barrier_t *b) {
  enum conc__lw_kind kind = bshared(b) ? CONC__LW_SHARED : CONC__LW_FORKSTAMP;
  int rc = conc__lw_acquire(&b->priv.ilock, NULL, kind, CONC_DEADLINE_NEVER);
  /* Race detectors (annotate-int.h): ilock orders the parties' arrivals,
   * so the last arriver has seen every party's writes. */
  conc__ann_happens_after(&b->priv.ilock);
  if (rc == CONC_EOWNERDEAD) {
    /* The holder vanished mid-update: nothing it did can be trusted. */
    if (bshared(b))
      purge_dead(b);
    if (b->priv.state == FILLING && b->priv.count > 0)
      break_locked(b);
  }
}

static void iunlock(conc_barrier_t *b) {
  conc__ann_happens_before(&b->priv.ilock);
  conc__lw_release(&b->priv.ilock, bshared(b));
}

int conc_barrier_destroy(conc_barrier_t *b) {
  if (!b)
    return CONC_EINVAL;
  ilock(b);
  int busy = b->priv.count > 0;
  iunlock(b);
  if (busy)
    return CONC_EBUSY;
  memset(b, 0, sizeof *b);
  return 0;
}

#define TRIPPED 1

static int seq_wait(conc_barrier_t *b, uint32_t s, conc_deadline_t d) {
  if (conc__spin_begin(&b->priv.spin_skip, d)) {
    bool paid = conc__spin_while(&b->priv.seq, s, true);
    conc__spin_end(&b->priv.spin_skip, &b->priv.spin_fails, paid);
    if (paid)
      return 0;
  }
  if (bshared(b)) {
    uint32_t v = __atomic_load_n(&b->priv.seq, __ATOMIC_SEQ_CST);
    while (v == (s & ~SLEEPERS))
      if (__atomic_compare_exchange_n(&b->priv.seq, &v, v | SLEEPERS, true,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        v |= SLEEPERS;
    if ((v & ~SLEEPERS) != (s & ~SLEEPERS))
      return 0;
    return conc__wait_intr(&b->priv.seq, v, d, true);
  }
  __atomic_fetch_add(&b->priv.nsleep, 1u, __ATOMIC_SEQ_CST);
  int r = 0;
  if (__atomic_load_n(&b->priv.seq, __ATOMIC_SEQ_CST) == s)
    r = conc__wait_intr(&b->priv.seq, s, d, false);
  conc__fetch_sub(&b->priv.nsleep, 1u);
  return r;
}

/* Sleep on seq with the lock dropped; returns with the lock held, except
 * TRIPPED: the cycle `epoch` (when given) ended by a trip, and a released
 * party needs nothing more from the barrier, so it leaves without it. */
static int sleep_unlocked(conc_barrier_t *b, conc_deadline_t deadline,
                          bool *slice_out, const uint32_t *epoch) {
  uint32_t s = conc__load_relaxed(&b->priv.seq);
  conc_deadline_t d = deadline;
  if (bshared(b)) {
    conc_deadline_t slice = conc__now_ns() + CONC__SHARED_SLICE_NS;
    d = slice < d ? slice : d;
  }
  iunlock(b);
  int r = seq_wait(b, s, d);
  if (epoch && conc__load_acquire(&b->priv.epoch) != *epoch) {
    if (r == CONC_EINTR) /* released anyway: the next wait reports it */
      conc__intr_keep();
    return TRIPPED;
  }
  ilock(b);
  *slice_out = r == CONC_ETIMEDOUT && d != deadline;
  return r;
}

/* Python's _enter: wait while a reset drains the old waiters. */
static int enter(conc_barrier_t *b) {
  bool slice;
  while (b->priv.state == RESETTING) {
    if (sleep_unlocked(b, CONC_DEADLINE_NEVER, &slice, NULL) == CONC_EINTR)
      return CONC_EINTR; /* not a party yet: nothing to break */
    if (slice && purge_dead(b))
      end_reset_if_empty(b);
  }
  return b->priv.state == BROKEN ? CONC_EBROKEN : 0;
}

/* A waiter of a broken (or resetting) epoch leaves. */
static int leave_broken(conc_barrier_t *b, int index) {
  if (bshared(b) && index < CONC_BARRIER_PSHARED_TRACKED)
    b->priv.pid[index] = 0;
  conc__store_relaxed(&b->priv.count, b->priv.count - 1);
  end_reset_if_empty(b);
  iunlock(b);
  return CONC_EBROKEN;
}

/* Python's _release: the action's exception breaks the barrier; the
 * party that ran it gets the code, the others CONC_EBROKEN. */
static int trip(conc_barrier_t *b, int index) {
  if (b->priv.action) {
    void *unused = NULL;
    conc__raise_clear(); /* a stale message is never the action's */
    int rc = b->priv.action(b->priv.action_arg, &unused);
    if (rc != 0) {
      break_locked(b);
      leave_broken(b, index);
      return rc < 0 ? rc : CONC_EFAILED;
    }
  }
  /* Race detectors: the trip happens before every released party goes
   * on (the TRIPPED return in conc_barrier_wait). */
  conc__ann_happens_before(&b->priv.epoch);
  conc__store_release(&b->priv.epoch, b->priv.epoch + 1u);
  conc__store_relaxed(&b->priv.count, 0);
  bool due = seq_bump(b);
  iunlock(b);
  /* Woken after the unlock, so the released parties find it free. */
  seq_wake(b, due);
  return index;
}

int conc_barrier_wait(conc_barrier_t *b, double timeout) {
  if (!b)
    return CONC_EINVAL;
  if (timeout == CONC_BARRIER_DEFAULT)
    timeout = b->priv.has_timeout ? b->priv.timeout : CONC_FOREVER;
  conc_deadline_t deadline;
  if (conc_deadline_after(timeout, &deadline) != 0)
    return CONC_EINVAL;
  ilock(b);
  int rc = enter(b);
  if (rc != 0) {
    iunlock(b);
    return rc;
  }
  int index = b->priv.count;
  uint32_t epoch = b->priv.epoch;
  if (bshared(b) && index < CONC_BARRIER_PSHARED_TRACKED)
    b->priv.pid[index] = conc__sync_pid();
  conc__store_relaxed(&b->priv.count, index + 1);
  if (index + 1 == b->priv.parties)
    return trip(b, index);
  for (;;) {
    bool slice;
    int r = sleep_unlocked(b, deadline, &slice, &epoch);
    if (r == TRIPPED) {
      conc__ann_happens_after(&b->priv.epoch);
      return index;
    }
    if (b->priv.epoch != epoch || b->priv.state != FILLING) {
      if (r == CONC_EINTR)
        conc__intr_keep();
      if (b->priv.epoch != epoch) {
        iunlock(b);
        return index;
      }
      return leave_broken(b, index);
    }
    if (r == CONC_EINTR) { /* Python: an exception in wait breaks it */
      break_locked(b);
      leave_broken(b, index);
      return CONC_EINTR;
    }
    if ((r == CONC_ETIMEDOUT && !slice) || (slice && purge_dead(b))) {
      break_locked(b);
      return leave_broken(b, index);
    }
  }
}

int conc_barrier_reset(conc_barrier_t *b) {
  if (!b)
    return CONC_EINVAL;
  ilock(b);
  if (bshared(b))
    purge_dead(b);
  if (b->priv.count > 0) {
    if (b->priv.state == FILLING || b->priv.state == BROKEN)
      conc__store_relaxed(&b->priv.state, RESETTING);
    bump(b);
  } else {
    if (b->priv.state != FILLING)
      conc__store_release(&b->priv.epoch, b->priv.epoch + 1u);
    conc__store_relaxed(&b->priv.state, FILLING);
    bump(b);
  }
  iunlock(b);
  return 0;
}

int conc_barrier_abort(conc_barrier_t *b) {
  if (!b)
    return CONC_EINVAL;
  ilock(b);
  break_locked(b);
  iunlock(b);
  return 0;
}

int conc_barrier_parties(const conc_barrier_t *b) {
  return b ? b->priv.parties : CONC_EINVAL;
}

int conc_barrier_n_waiting(const conc_barrier_t *b) {
  if (!b)
    return CONC_EINVAL;
  if (conc__load_relaxed(&b->priv.state) != FILLING)
    return 0;
  return conc__load_relaxed(&b->priv.count);
}

bool conc_barrier_broken(const conc_barrier_t *b) {
  return b && conc__load_relaxed(&b->priv.state) == BROKEN;
}

int conc_barrier_repr(const conc_barrier_t *b, char *buf, size_t n) {
  if (!b || (!buf && n))
    return CONC_EINVAL;
  if (conc_barrier_broken(b))
    return snprintf(buf, n, "<conc.Barrier at %p: broken>", (void *)b);
  return snprintf(buf, n, "<conc.Barrier at %p: waiters=%d/%d>", (void *)b,
                  conc_barrier_n_waiting(b), b->priv.parties);
}
