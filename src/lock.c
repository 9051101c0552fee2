/*
 * Lock and RLock, and the lock-word algorithm the whole sync family uses
 * (see sync-int.h for the word layout).
 *
 * Locking protocol: a lock word is taken by a CAS from 0 to the caller's
 * stamp; a contender sets the waiters bit before it sleeps on the word, and
 * once it has slept it takes the word with the waiters bit set (others may
 * still sleep), as in Drepper's "Futexes are tricky" mutex 2. Release swaps
 * in 0 (or the not-recoverable mark) and wakes one sleeper when the bit was
 * set. A private Lock uses stamp 1, which the inline fast path in sync.h
 * takes and frees with one CAS. A pshared word is stamped with the
 * holder's kernel thread id; a pshared contender checks that the holder
 * lives before it sleeps, and the death watch (lock_deathwatch.c) marks
 * the word and wakes the sleepers when a watched holder ends; private
 * sleepers never poll. A private Lock's contenders never spin
 * before sleeping: measured on the 2-core machines this library targets, a
 * fixed spin steals the core the holder needs (contended handoffs were 2-4x
 * slower with a 100-iteration spin). The adaptive spin defined here serves
 * Condition and Barrier waits and pshared lock contenders (whose holder is
 * another process, on another core when there is one), and backs off as
 * soon as it does not pay. A pshared release makes its CAS the first
 * access to the word, which usually sits in another process's cache.
 *
 * RLock adds an owner id and a count, written only by the thread that holds
 * the word and read by others with relaxed atomics (locked(), repr()).
 *
 * The lock-order checker (lockdep.c) sees the public acquires and releases
 * only: its hooks run around the lock-word calls when conc__ld_on(), with
 * no lock of their own held here. A Condition's release and re-acquire
 * inside its wait (conc__lock_release_raw, conc__lock_acquire_until, the
 * rlock save/restore) are not seen: the waiter keeps the lock on its held
 * stack.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conc/sync.h"
#include "annotate-int.h"
#include "init-int.h"
#include "lockdep-int.h"
#include "sync-int.h"

/* ---------------------------------------------------------- identity */

static __thread uint32_t self_id __attribute__((tls_model("initial-exec")));
static __thread int32_t self_tid __attribute__((tls_model("initial-exec")));
static uint32_t next_self;
static int32_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

uint32_t conc__sync_self(void) {
  uint32_t id = self_id;
  if (__builtin_expect(id == 0, 0)) {
    do
      id = conc__fetch_add(&next_self, 1u) + 1u;
    while (id == 0);
    self_id = id;
  }
  return id;
}

/* Runs in the forking thread of the child, the only thread there. */
static void pid_after_fork(void) {
  conc__store_relaxed(&cached_pid, (int32_t)getpid());
  self_tid = 0;
  conc__dw_after_fork();
}

static void pid_register(void) {
  conc__atfork_register(conc__dw_before_fork, NULL, pid_after_fork);
}

int32_t conc__sync_pid(void) {
  int32_t p = conc__load_relaxed(&cached_pid);
  if (__builtin_expect(p == 0, 0)) {
    pthread_once(&pid_once, pid_register);
    p = (int32_t)getpid();
    conc__store_relaxed(&cached_pid, p);
  }
  return p;
}

int32_t conc__sync_tid(void) {
  int32_t t = self_tid;
  if (__builtin_expect(t == 0, 0)) {
    conc__sync_pid(); /* registers the fork handler that resets it */
    t = conc__gettid();
    self_tid = t;
  }
  return t;
}

/* A zombie still answers kill(pid, 0), but it will never release
 * anything: read its state from /proc when that is mounted. */
static bool pid_is_zombie(int32_t pid) {
  char path[40], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  char *rp = strrchr(buf, ')');
  return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

bool conc__pid_dead(int32_t pid) {
  if (pid <= 0)
    return false;
  if (kill(pid, 0) == -1)
    return errno == ESRCH;
  return pid_is_zombie(pid);
}

uint32_t conc__lw_stamp(enum conc__lw_kind kind) {
  switch (kind) {
  case CONC__LW_SHARED:
    return (uint32_t)conc__sync_tid() & CONC__LW_OWNER;
  case CONC__LW_FORKSTAMP:
    return (conc__fork_generation() & (CONC__LW_OWNER >> 1)) + 1u;
  default:
    return 1u;
  }
}

/* ---------------------------------------------------- adaptive spin */

bool conc__spin_begin(uint32_t *skip, conc_deadline_t deadline) {
  static int ncpu;
  /* Race detectors (helper annotate): hint words, racy by design. */
  conc__ann_benign_race(&ncpu, sizeof ncpu);
  conc__ann_benign_race(skip, sizeof *skip);
  int n = conc__load_relaxed(&ncpu);
  if (n == 0) {
    n = conc__cpu_count();
    conc__store_relaxed(&ncpu, n);
  }
  if (n < 2)
    return false;
  uint32_t k = conc__load_relaxed(skip);
  if (k > 0) {
    conc__store_relaxed(skip, k - 1u);
    return false;
  }
  return deadline == CONC_DEADLINE_NEVER ||
         deadline > conc__now_ns() + CONC__SPIN_NS;
}

/* Looks at the word between pauses and at the clock every 8 looks; true
 * once *word != value (want_change) or *word == value (!want_change).
 * `yield`: past CONC__SPIN_YIELD_NS, give the core away between looks. */
static bool spin(const uint32_t *word, uint32_t value, bool want_change,
                 bool yield) {
  int64_t start = conc__now_ns(), end = start + CONC__SPIN_NS;
  /* Race detectors (helper annotate): a wait word, only looked at here. */
  conc__ann_benign_race(word, sizeof *word);
  for (;;) {
    for (int i = 0; i < 8; i++) {
      if ((conc__load_acquire(word) != value) == want_change)
        return true;
      conc__cpu_relax();
    }
    int64_t now = conc__now_ns();
    if (now >= end)
      return false;
    if (yield && now - start >= CONC__SPIN_YIELD_NS)
      sched_yield();
  }
}

bool conc__spin_while(const uint32_t *word, uint32_t value, bool yield) {
  return spin(word, value, true, yield);
}

bool conc__spin_until_free(const uint32_t *word) {
  return spin(word, 0, false, false);
}

void conc__spin_end(uint32_t *skip, uint32_t *fails, bool paid) {
  conc__ann_benign_race(skip, sizeof *skip); /* helper annotate: hints */
  conc__ann_benign_race(fails, sizeof *fails);
  if (paid) {
    if (conc__load_relaxed(fails) != 0)
      conc__store_relaxed(fails, 0u);
    return;
  }
  uint32_t f = conc__load_relaxed(fails);
  f = f < CONC__SPIN_MAX_BACKOFF ? f + 1u : f;
  conc__store_relaxed(fails, f);
  conc__store_relaxed(skip, 1u << f);
}

/* ------------------------------------------------------ the lock word */

static bool holder_dead(enum conc__lw_kind kind, uint32_t holder,
                        uint32_t stamp) {
  if (kind == CONC__LW_FORKSTAMP)
    return holder != stamp;
  return holder != stamp &&
         (holder == CONC__LW_DIED || conc__pid_dead((int32_t)holder));
}

/* The pshared spin's back-off hint is per thread: the lock object has no
 * room for it (its layout is public and lives in shared memory). */
static __thread uint32_t pspin_skip __attribute__((tls_model("initial-exec")));
static __thread uint32_t pspin_fails __attribute__((tls_model("initial-exec")));

/* spin() looks at the word every pause; this looks once, then after 64
 * pauses, then after a delay that doubles up to SHARED_BACKOFF_MAX pauses.
 * Each look pulls the line from the holder, whose next access then waits
 * for it back, and a look that lands in the few nanoseconds between the
 * holder's release and its next acquire takes the lock away: a hand-off
 * between cores, the expensive part of a contended increment. Looking
 * rarely lets a holder that re-acquires at once keep the lock for dozens
 * of critical sections (the waiter still gets it within microseconds).
 * Value += 1 from 2 processes on the 2-core VM, medians of interleaved
 * runs: 35-45 ns an increment looking every pause (3 increments per
 * hand-off), 30-45 ns with a back-off from 1 pause, 17-20 ns with this one
 * (30 increments per hand-off); on a 16-core Xeon 71 ns before, 31 ns
 * with this (a first delay of 16 pauses: 38 ns; of 256: 30-31 ns, but a
 * waiter then misses an early release for longer). */
#ifndef SHARED_BACKOFF_FIRST
#define SHARED_BACKOFF_FIRST 64u
#endif
#ifndef SHARED_BACKOFF_MAX
#define SHARED_BACKOFF_MAX 1024u
#endif

static bool backoff_until_free(const uint32_t *word) {
  int64_t start = conc__now_ns(), end = start + CONC__SPIN_NS;
  for (unsigned delay = SHARED_BACKOFF_FIRST;;) {
    if (conc__load_relaxed(word) == 0)
      return true;
    for (unsigned k = 0; k < delay; k++)
      conc__cpu_relax();
    if (delay < SHARED_BACKOFF_MAX)
      delay *= 2;
    /* the clock at every look: a read costs about 1% of the shortest delay,
     * and the spin then ends near CONC__SPIN_NS whatever a pause costs */
    int64_t now = conc__now_ns();
    if (now >= end)
      return false;
    if (now - start >= CONC__SPIN_YIELD_NS)
      sched_yield();
  }
}

/* Before a pshared contender marks the word and sleeps: watch it for up to
 * CONC__SPIN_NS and take it as soon as it is free. The other process's
 * critical section is usually a few ns, and without this the contender's
 * futex wait returned at once (the word had changed) and the holder paid
 * a futex wake for nobody: 0.19 futex calls per contended Value
 * increment. A lost race for the free word keeps spinning. The spin
 * yields its core after CONC__SPIN_YIELD_NS, as the Barrier's does: on a
 * loaded machine the holder is often waiting for a core (without the
 * yield the spin made contended increments slower, not faster). */
static bool shared_spin_take(uint32_t *word, uint32_t mine,
                             conc_deadline_t deadline) {
  if (!conc__spin_begin(&pspin_skip, deadline))
    return false;
  int64_t end = conc__now_ns() + CONC__SPIN_NS;
  bool paid = false;
  while (!paid && backoff_until_free(word)) {
    uint32_t z = 0;
    paid = conc__cas(word, &z, mine);
    if (!paid && conc__now_ns() >= end)
      break;
  }
  conc__spin_end(&pspin_skip, &pspin_fails, paid);
  return paid;
}

int conc__lw_acquire(uint32_t *word, uint32_t *nwait, enum conc__lw_kind kind,
                     conc_deadline_t deadline) {
  return conc__lw_acquire_ex(word, nwait, kind, deadline, false);
}

/* A pshared sleeper's progress through its slices (see sync-int.h). */
struct shared_sleep {
  int64_t first_end; /* end of the first slice; 0 before it */
  int watch;         /* death-watch handle, or -1 */
  uint32_t watched;  /* the holder registered (or that could not be) */
};

/* Sleep on a pshared word that holds `w`. Returns CONC_ETIMEDOUT when the
 * holder must be checked again: a slice ended, or the death watch was
 * just asked to follow it (it may have died before the watch began). */
static int shared_sleep(uint32_t *word, uint32_t w, conc_deadline_t deadline,
                        struct shared_sleep *ss, bool intr) {
  uint32_t holder = w & CONC__LW_OWNER;
  int64_t now = conc__now_ns();
  if (ss->first_end == 0)
    ss->first_end = now + CONC__SHARED_FIRST_SLICE_NS;
  conc_deadline_t slice = ss->first_end;
  if (now >= ss->first_end) {
    if (ss->watched != holder) {
      if (ss->watch >= 0)
        conc__dw_unwatch(ss->watch);
      ss->watch = conc__dw_watch(word, (int32_t)holder);
      ss->watched = holder;
      return CONC_ETIMEDOUT;
    }
    slice = now + (ss->watch >= 0 ? CONC__SHARED_WATCHED_SLICE_NS
                                  : conc__dw_fallback_slice());
  }
  conc_deadline_t end = slice < deadline ? slice : deadline;
  return intr ? conc__wait_intr(word, w, end, true)
              : conc__wait(word, w, end, true);
}

/* Take a word whose holder is dead, keeping its waiters bit. */
static bool take_over(uint32_t *word, uint32_t *w, uint32_t stamp) {
  return conc__cas(word, w, stamp | (*w & CONC__LW_WAITERS));
}

/* A pshared contender checks the holder only once it is about to sleep
 * (never in the spin, which is the hot contended path), again for every
 * new holder and after every slice; a try-once checks at once, and a word
 * the death watch marked CONC__LW_DIED is taken without a system call. */
static int lw_acquire(uint32_t *word, uint32_t *nwait, enum conc__lw_kind kind,
                      conc_deadline_t deadline, bool sleeper,
                      struct shared_sleep *ss, bool intr) {
  const bool shared = kind == CONC__LW_SHARED;
  const uint32_t stamp = conc__lw_stamp(kind);
  /* Race detectors (helper annotate): the word and the sleeper count are
   * atomics, looked at without holding anything; what a lock hands over
   * is annotated by its owner (lock_acquire, iunlock, ...). */
  conc__ann_benign_race(word, sizeof *word);
  if (nwait)
    conc__ann_benign_race(nwait, sizeof *nwait);
  uint32_t extra = sleeper ? CONC__LW_WAITERS : 0u;
  uint32_t alive = 0; /* pshared: the holder last found alive */
  bool spun = sleeper;
  for (;;) {
    uint32_t w = conc__load_relaxed(word);
    if (w == 0) {
      if (conc__cas_weak(word, &w, stamp | extra))
        return 0;
      continue;
    }
    if (w == CONC__LW_NOTREC)
      return CONC_ENOTRECOVERABLE;
    uint32_t holder = w & CONC__LW_OWNER;
    bool check = kind == CONC__LW_FORKSTAMP || (shared && holder != alive) ||
                 deadline == CONC__DEADLINE_POLL;
    if (kind != CONC__LW_PRIVATE && check &&
        (deadline == CONC__DEADLINE_POLL || !shared || spun ||
         holder == CONC__LW_DIED)) {
      if (holder_dead(kind, holder, stamp)) {
        if (take_over(word, &w, stamp))
          return CONC_EOWNERDEAD;
        continue;
      }
      alive = holder;
    }
    if (conc__deadline_passed(deadline))
      return CONC_ETIMEDOUT;
    if (shared && !spun) {
      spun = true;
      if (shared_spin_take(word, stamp | extra, deadline))
        return 0;
      continue;
    }
    if (!(w & CONC__LW_WAITERS)) {
      if (!conc__cas(word, &w, w | CONC__LW_WAITERS))
        continue;
      w |= CONC__LW_WAITERS;
    }
    extra = CONC__LW_WAITERS;
    /* CONC_EINTR comes only with the word unchanged (still held, the
     * waiters bit up): the holder's release wakes another sleeper. */
    if (shared) {
      int r = shared_sleep(word, w, deadline, ss, intr);
      if (r == CONC_EINTR)
        return r;
      if (r == CONC_ETIMEDOUT)
        alive = 0;
      continue;
    }
    if (nwait)
      conc__fetch_add(nwait, 1u);
    int r = intr ? conc__wait_intr(word, w, deadline, false)
                 : conc__wait(word, w, deadline, false);
    if (nwait)
      conc__fetch_sub(nwait, 1u);
    if (r == CONC_EINTR)
      return r;
  }
}

/* `intr`: a Lock or RLock acquire the user asked for, which conc_interrupt
 * ends; the library's own acquires (a Condition's re-acquire) are not. */
static int lw_acquire_top(uint32_t *word, uint32_t *nwait,
                          enum conc__lw_kind kind, conc_deadline_t deadline,
                          bool sleeper, bool intr) {
  struct shared_sleep ss = {.watch = -1};
  int rc = lw_acquire(word, nwait, kind, deadline, sleeper, &ss, intr);
  if (ss.watch >= 0)
    conc__dw_unwatch(ss.watch);
  return rc;
}

int conc__lw_acquire_ex(uint32_t *word, uint32_t *nwait,
                        enum conc__lw_kind kind, conc_deadline_t deadline,
                        bool sleeper) {
  return lw_acquire_top(word, nwait, kind, deadline, sleeper, false);
}

void conc__lw_release(uint32_t *word, bool shared) {
  uint32_t old = conc__xchg(word, 0u);
  if (!(old & CONC__LW_WAITERS))
    return;
  if (shared)
    conc__sync_wake(word, 1);
  else
    conc__wake(word, 1, false);
}

int conc__lock_deadline(bool blocking, double timeout, conc_deadline_t *out) {
  if (isnan(timeout))
    return CONC_EINVAL;
  if (!blocking) {
    if (timeout != CONC_FOREVER)
      return CONC_EINVAL;
    *out = CONC__DEADLINE_POLL;
    return 0;
  }
  if (timeout < 0 && timeout != CONC_FOREVER)
    return CONC_EINVAL;
  if (timeout > CONC_TIMEOUT_MAX)
    return CONC_EOVERFLOW;
  if (timeout == 0) {
    *out = CONC__DEADLINE_POLL;
    return 0;
  }
  return conc_deadline_after(timeout, out);
}

/* --------------------------------------------------------------- Lock */

static enum conc__lw_kind lock_kind(const conc_lock_t *l) {
  return (l->priv.flags & CONC__SYNC_PSHARED) ? CONC__LW_SHARED
                                              : CONC__LW_PRIVATE;
}

static void lock_init(conc_lock_t *l, bool pshared) {
  memset(l, 0, sizeof *l);
  if (pshared) {
    l->priv.flags = CONC__SYNC_PSHARED;
    conc__sync_pid();
  }
}

int conc_lock_init(conc_lock_t *l, const conc_lock_opts_t *opts) {
  if (!l)
    return CONC_EINVAL;
  lock_init(l, opts && opts->pshared);
  if (conc__ld_on())
    conc__ld_init(l, &l->priv.flags, CONC__LD_LOCK, opts ? opts->name : NULL,
                  CONC__LD_SITE());
  return 0;
}

static int lock_destroy(conc_lock_t *l, enum conc__ld_type type) {
  if ((l->priv.flags & CONC__SYNC_PSHARED)
          ? conc__sync_sleepers(&l->priv.word) > 0
          : conc__load_acquire(&l->priv.nwait) != 0)
    return CONC_EBUSY;
  if (conc__ld_on())
    conc__ld_destroy(l, l->priv.flags, type,
                     conc__load_relaxed(&l->priv.word) != 0);
  memset(l, 0, sizeof *l);
  return 0;
}

int conc_lock_destroy(conc_lock_t *l) {
  if (!l)
    return CONC_EINVAL;
  return lock_destroy(l, CONC__LD_LOCK);
}

static int lock_acquire(conc_lock_t *l, conc_deadline_t deadline, bool sleeper,
                        bool intr) {
  int rc = lw_acquire_top(&l->priv.word, &l->priv.nwait, lock_kind(l), deadline,
                          sleeper, intr);
  if (rc == CONC_EOWNERDEAD)
    conc__store_relaxed(&l->priv.state, 1u);
  /* Race detectors (helper annotate; see annotate-int.h): any thread may
   * release a Lock, so it is a happens-before edge from release to acquire
   * on the word, not a mutex (a mutex annotation would report a release by
   * another thread). RLock and Condition come through here and
   * conc__lock_release_slow too. Do not add conc__ann_mutex_* for Lock. */
  if (rc == 0 || rc == CONC_EOWNERDEAD)
    conc__ann_happens_after(&l->priv.word);
  return rc;
}

int conc__lock_acquire_until(conc_lock_t *l, conc_deadline_t deadline,
                             bool sleeper) {
  return lock_acquire(l, deadline, sleeper, false);
}

/* With the lock-order checker on: a first try tells a contended
 * acquisition (counted, timed, checked for a loop thread) from one that
 * is not. */
static int lock_acquire_checked(conc_lock_t *l, conc_deadline_t d,
                                const void *site) {
  conc__ld_acq_t a;
  conc__ld_acquire_begin(&a, l, l->priv.flags, CONC__LD_LOCK,
                         conc__ld_how_of(d), site);
  int rc = lock_acquire(l, CONC__DEADLINE_POLL, false, true);
  if (rc == CONC_ETIMEDOUT && d != CONC__DEADLINE_POLL) {
    conc__ld_acquire_wait(&a);
    rc = lock_acquire(l, d, false, true);
  }
  conc__ld_acquire_end(&a, rc == 0 || rc == CONC_EOWNERDEAD);
  return rc;
}

static int lock_acquire_api(conc_lock_t *l, bool blocking, double timeout,
                            const void *site) {
  if (!l)
    return CONC_EINVAL;
  conc_deadline_t d;
  int rc = conc__lock_deadline(blocking, timeout, &d);
  if (rc != 0)
    return rc;
  if (conc__ld_on())
    return lock_acquire_checked(l, d, site);
  return lock_acquire(l, d, false, true);
}

int conc__lock_acquire_slow(conc_lock_t *l, double timeout) {
  return lock_acquire_api(l, true, timeout, CONC__LD_SITE());
}

int conc_lock_acquire_timeout(conc_lock_t *l, double timeout) {
  return lock_acquire_api(l, true, timeout, CONC__LD_SITE());
}

int conc_lock_acquire_ex(conc_lock_t *l, bool blocking, double timeout) {
  return lock_acquire_api(l, blocking, timeout, CONC__LD_SITE());
}

int conc__lock_release_slow(conc_lock_t *l) {
  if (l && conc__ld_on())
    conc__ld_release(l, CONC__LD_LOCK);
  return conc__lock_release_raw(l);
}

/* Release: an owner-died lock released without mark_consistent becomes
 * not recoverable and every sleeper learns it at once. */
int conc__lock_release_raw(conc_lock_t *l) {
  if (!l)
    return CONC_EINVAL;
  enum conc__lw_kind kind = lock_kind(l);
  bool shared = kind == CONC__LW_SHARED;
  /* Race detectors (helper annotate): the release half of the edge in
   * lock_acquire; the inline fast paths come here while conc__sync_divert
   * is set. */
  conc__ann_happens_before(&l->priv.word);
  /* Guess that the releaser holds the word without waiters: then the CAS
   * is the only access (a pshared word is usually in the other process's
   * cache); a wrong guess costs a retry with the value the CAS read. */
  uint32_t w = conc__lw_stamp(kind);
  uint32_t next;
  do {
    if (w == 0)
      return CONC_ESTATE;
    if (w == CONC__LW_NOTREC)
      return CONC_ENOTRECOVERABLE;
    next = conc__load_relaxed(&l->priv.state) ? CONC__LW_NOTREC : 0u;
  } while (!conc__cas_weak(&l->priv.word, &w, next));
  if (next == CONC__LW_NOTREC) {
    conc__store_relaxed(&l->priv.state, 0u);
    conc__wake(&l->priv.word, CONC__WAKE_ALL, shared);
  } else if (w & CONC__LW_WAITERS) {
    if (shared)
      conc__sync_wake(&l->priv.word, 1);
    else
      conc__wake(&l->priv.word, 1, false);
  }
  return 0;
}

int conc__lock_release_after(conc_lock_t *l, uint32_t old) {
  if (old == 0)
    return CONC_ESTATE; /* it was not locked; the swap changed nothing */
  if (old & CONC__LW_WAITERS)
    conc__wake(&l->priv.word, 1, false);
  return 0;
}

bool conc_lock_locked(const conc_lock_t *l) {
  return l && conc__load_relaxed(&l->priv.word) != 0;
}

int conc_lock_repr(const conc_lock_t *l, char *buf, size_t n) {
  if (!l || (!buf && n))
    return CONC_EINVAL;
  return snprintf(buf, n, "<%s conc.Lock object at %p>",
                  conc_lock_locked(l) ? "locked" : "unlocked", (void *)l);
}

int conc_lock_at_fork_reinit(conc_lock_t *l) {
  if (!l)
    return CONC_EINVAL;
  conc__store_relaxed(&l->priv.word, 0u);
  conc__store_relaxed(&l->priv.nwait, 0u);
  conc__store_relaxed(&l->priv.state, 0u);
  return 0;
}

int conc_lock_mark_consistent(conc_lock_t *l) {
  if (!l)
    return CONC_EINVAL;
  uint32_t w = conc__load_relaxed(&l->priv.word);
  if (w == 0 || w == CONC__LW_NOTREC ||
      conc__load_relaxed(&l->priv.state) != 1u)
    return CONC_EINVAL;
  conc__store_relaxed(&l->priv.state, 0u);
  return 0;
}

/* -------------------------------------------------------------- RLock */

static bool rlock_owned(const conc_rlock_t *r, uint32_t me) {
  if (conc__load_relaxed(&r->priv.owner) != me)
    return false;
  if (!(r->priv.base.priv.flags & CONC__SYNC_PSHARED))
    return true;
  uint32_t w = conc__load_relaxed(&r->priv.base.priv.word);
  return w != CONC__LW_NOTREC &&
         (w & CONC__LW_OWNER) == conc__lw_stamp(CONC__LW_SHARED);
}

int conc__rlock_init_site(conc_rlock_t *r, const conc_rlock_opts_t *opts,
                          const void *site) {
  if (!r)
    return CONC_EINVAL;
  memset(r, 0, sizeof *r);
  lock_init(&r->priv.base, opts && opts->pshared);
  if (conc__ld_on())
    conc__ld_init(r, &r->priv.base.priv.flags, CONC__LD_RLOCK,
                  opts ? opts->name : NULL, site);
  return 0;
}

int conc_rlock_init(conc_rlock_t *r, const conc_rlock_opts_t *opts) {
  return conc__rlock_init_site(r, opts, CONC__LD_SITE());
}

int conc_rlock_destroy(conc_rlock_t *r) {
  if (!r)
    return CONC_EINVAL;
  int rc = lock_destroy(&r->priv.base, CONC__LD_RLOCK);
  if (rc == 0)
    memset(r, 0, sizeof *r);
  return rc;
}

static int rlock_acquire(conc_rlock_t *r, conc_deadline_t deadline,
                         bool sleeper, bool intr) {
  uint32_t me = conc__sync_self();
  bool took = false;
  if ((r->priv.base.priv.flags & CONC__SYNC_PSHARED) && !sleeper) {
    /* A free word can't be ours: take it without reading the owner or
     * going through the slow path (faster uncontended). A held word is
     * only read, so as not to pull the line from a holder in another
     * process (a CAS here slowed contended increments down). */
    uint32_t z = conc__load_relaxed(&r->priv.base.priv.word);
    took = z == 0 && conc__cas(&r->priv.base.priv.word, &z,
                               conc__lw_stamp(CONC__LW_SHARED));
    if (took) /* race detectors (helper annotate), as in lock_acquire */
      conc__ann_happens_after(&r->priv.base.priv.word);
  }
  if (!took && rlock_owned(r, me)) {
    uint32_t c = r->priv.count;
    if (c == UINT32_MAX)
      return CONC_EOVERFLOW;
    conc__store_relaxed(&r->priv.count, c + 1u);
    return 0;
  }
  int rc = took ? 0 : lock_acquire(&r->priv.base, deadline, sleeper, intr);
  if (rc == 0 || rc == CONC_EOWNERDEAD) {
    /* Race detectors (helper annotate): owner and count are read racily
     * by design (rlock_owned, repr). */
    conc__ann_benign_race(&r->priv.owner,
                          sizeof r->priv.owner + sizeof r->priv.count);
    conc__store_relaxed(&r->priv.owner, me);
    conc__store_relaxed(&r->priv.count, 1u);
  }
  return rc;
}

int conc__rlock_acquire_until(conc_rlock_t *r, conc_deadline_t deadline,
                              bool sleeper) {
  return rlock_acquire(r, deadline, sleeper, false);
}

/* As lock_acquire_checked. A recursive acquire is no new acquisition: it
 * adds no order edge and no held-stack entry. */
static int rlock_acquire_checked(conc_rlock_t *r, conc_deadline_t d,
                                 const void *site) {
  if (rlock_owned(r, conc__sync_self()))
    return rlock_acquire(r, d, false, true);
  conc__ld_acq_t a;
  conc__ld_acquire_begin(&a, r, r->priv.base.priv.flags, CONC__LD_RLOCK,
                         conc__ld_how_of(d), site);
  int rc = rlock_acquire(r, CONC__DEADLINE_POLL, false, true);
  if (rc == CONC_ETIMEDOUT && d != CONC__DEADLINE_POLL) {
    conc__ld_acquire_wait(&a);
    rc = rlock_acquire(r, d, false, true);
  }
  conc__ld_acquire_end(&a, rc == 0 || rc == CONC_EOWNERDEAD);
  return rc;
}

static int rlock_acquire_api(conc_rlock_t *r, bool blocking, double timeout,
                             const void *site) {
  if (!r)
    return CONC_EINVAL;
  conc_deadline_t d;
  int rc = conc__lock_deadline(blocking, timeout, &d);
  if (rc != 0)
    return rc;
  if (conc__ld_on())
    return rlock_acquire_checked(r, d, site);
  return rlock_acquire(r, d, false, true);
}

/*
 * The uncontended RLock, inline here as Lock's is in sync.h: a recursive
 * acquire is a load and a store of the caller's own fields; a first one
 * is one CAS (a plain load and store while the process has never had a
 * second thread, as glibc's mutexes do), then owner and count. `self_id`
 * is read directly: 0 means this thread has no id yet, and then it holds
 * nothing and takes the slow path. Anything unusual (pshared, a class
 * for the lock-order checker, a race detector, contention) goes the slow
 * way.
 */
int conc_rlock_acquire(conc_rlock_t *r) {
  if (__builtin_expect(
          r != NULL && (r->priv.base.priv.flags | conc__sync_divert) == 0, 1)) {
    uint32_t me = self_id, *word = &r->priv.base.priv.word;
    if (__builtin_expect(me != 0, 1)) {
      if (conc__load_relaxed(&r->priv.owner) == me) {
        uint32_t c = r->priv.count;
        if (c == UINT32_MAX)
          return CONC_EOVERFLOW;
        conc__store_relaxed(&r->priv.count, c + 1u);
        return 0;
      }
      bool took = false;
      if (CONC__SINGLE_THREADED()) {
        if (conc__load_relaxed(word) == 0) {
          conc__store_relaxed(word, 1u);
          took = true;
        }
      } else {
        uint32_t z = 0;
        took = __atomic_compare_exchange_n(word, &z, 1u, false,
                                           __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
      }
      if (took) {
        conc__store_relaxed(&r->priv.owner, me);
        conc__store_relaxed(&r->priv.count, 1u);
        return 0;
      }
    }
  }
  return rlock_acquire_api(r, true, CONC_FOREVER, CONC__LD_SITE());
}

int conc_rlock_acquire_timeout(conc_rlock_t *r, double timeout) {
  return rlock_acquire_api(r, true, timeout, CONC__LD_SITE());
}

int conc_rlock_acquire_ex(conc_rlock_t *r, bool blocking, double timeout) {
  return rlock_acquire_api(r, blocking, timeout, CONC__LD_SITE());
}

static int rlock_not_owned(const conc_rlock_t *r) {
  uint32_t w = conc__load_relaxed(&r->priv.base.priv.word);
  if (w == CONC__LW_NOTREC)
    return CONC_ENOTRECOVERABLE;
  return w == 0 ? CONC_ESTATE : CONC_EPERM;
}

static int rlock_release_all(conc_rlock_t *r) {
  conc__store_relaxed(&r->priv.count, 0u);
  conc__store_relaxed(&r->priv.owner, 0u);
  return conc__lock_release_raw(&r->priv.base);
}

static int rlock_release_slow(conc_rlock_t *r) {
  if (!r)
    return CONC_EINVAL;
  if (!rlock_owned(r, conc__sync_self())) {
    int rc = rlock_not_owned(r);
    if (rc == CONC_EPERM && conc__ld_on())
      conc__ld_bad_release(r, r->priv.base.priv.flags, CONC__LD_RLOCK);
    return rc;
  }
  uint32_t c = r->priv.count;
  if (c > 1) {
    conc__store_relaxed(&r->priv.count, c - 1u);
    return 0;
  }
  if (conc__ld_on())
    conc__ld_release(r, CONC__LD_RLOCK);
  return rlock_release_all(r);
}

/* The fast path of conc_rlock_acquire's release. */
int conc_rlock_release(conc_rlock_t *r) {
  if (__builtin_expect(
          r != NULL && (r->priv.base.priv.flags | conc__sync_divert) == 0, 1)) {
    uint32_t me = self_id, *word = &r->priv.base.priv.word;
    if (me != 0 && conc__load_relaxed(&r->priv.owner) == me) {
      uint32_t c = r->priv.count;
      if (c > 1) {
        conc__store_relaxed(&r->priv.count, c - 1u);
        return 0;
      }
      conc__store_relaxed(&r->priv.count, 0u);
      conc__store_relaxed(&r->priv.owner, 0u);
      if (CONC__SINGLE_THREADED() && conc__load_relaxed(word) == 1u) {
        __atomic_store_n(word, 0u, __ATOMIC_RELEASE);
        return 0;
      }
      uint32_t old = __atomic_exchange_n(word, 0u, __ATOMIC_RELEASE);
      if (__builtin_expect(old == 1u, 1))
        return 0;
      return conc__lock_release_after(&r->priv.base, old);
    }
  }
  return rlock_release_slow(r);
}

int conc__rlock_release_save(conc_rlock_t *r, uint32_t *saved) {
  if (!rlock_owned(r, conc__sync_self()))
    return rlock_not_owned(r);
  *saved = r->priv.count;
  return rlock_release_all(r);
}

int conc__rlock_acquire_restore(conc_rlock_t *r, uint32_t saved, bool sleeper) {
  int rc = conc__rlock_acquire_until(r, CONC_DEADLINE_NEVER, sleeper);
  if (rc == 0 || rc == CONC_EOWNERDEAD)
    conc__store_relaxed(&r->priv.count, saved);
  return rc;
}

bool conc_rlock_locked(const conc_rlock_t *r) {
  return r && conc_lock_locked(&r->priv.base);
}

bool conc_rlock_is_owned(const conc_rlock_t *r) {
  return r && rlock_owned(r, conc__sync_self());
}

unsigned conc_rlock_count(const conc_rlock_t *r) {
  if (!r || !rlock_owned(r, conc__sync_self()))
    return 0;
  return r->priv.count;
}

int conc_rlock_repr(const conc_rlock_t *r, char *buf, size_t n) {
  if (!r || (!buf && n))
    return CONC_EINVAL;
  bool locked = conc_rlock_locked(r);
  unsigned owner = locked ? conc__load_relaxed(&r->priv.owner) : 0;
  unsigned count = locked ? conc__load_relaxed(&r->priv.count) : 0;
  return snprintf(buf, n, "<%s conc.RLock object owner=%u count=%u at %p>",
                  locked ? "locked" : "unlocked", owner, count, (void *)r);
}

int conc_rlock_at_fork_reinit(conc_rlock_t *r) {
  if (!r)
    return CONC_EINVAL;
  conc__store_relaxed(&r->priv.owner, 0u);
  conc__store_relaxed(&r->priv.count, 0u);
  return conc_lock_at_fork_reinit(&r->priv.base);
}

int conc_rlock_mark_consistent(conc_rlock_t *r) {
  if (!r)
    return CONC_EINVAL;
  if (!rlock_owned(r, conc__sync_self())) {
    int rc = rlock_not_owned(r);
    return rc == CONC_EPERM ? CONC_EPERM : CONC_EINVAL;
  }
  return conc_lock_mark_consistent(&r->priv.base);
}
