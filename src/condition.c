/*
 * Condition: Python's waiter-list design without its weak spot.
 *
 * Locking protocol: the waiter list is guarded by the condition's own lock
 * (the user's Lock or RLock), which both wait (to enqueue) and notify must
 * hold. Each waiter owns a wait word that moves once, by CAS, from WAITING
 * to NOTIFIED (by a notifier) or to TIMEDOUT (by the waiter when its
 * deadline passes). Whoever wins decides: a notifier counts only the
 * waiters it moved, so a timed-out waiter never absorbs a notify, and a
 * waiter returns 0 only when notified, so no spurious wake-up escapes.
 * A private waiter may first spin (word SPINNING, see sync-int.h); it turns
 * the word to WAITING by CAS before it sleeps, and a notifier that finds it
 * SPINNING just flips it to NOTIFIED. A sleeping waiter is not woken but
 * moved onto the lock word (wait morphing, hand_over), since the notifier
 * holds the lock it would need.
 *
 * Private conditions keep the records on the waiters' stacks in a FIFO
 * list; a notified record is unlinked by the notifier, a timed-out one by
 * its waiter after it has the lock again, so a record is never touched
 * after its waiter returned. Records carry the fork generation: in a child
 * the records of the parent's threads are ghosts and are dropped.
 *
 * Pshared conditions use the fixed slot table in the object: a slot word is
 * 0 when free, else ticket << 2 | state; tickets give FIFO order. A
 * notifier skips (and frees) the slot of a waiter whose process is dead.
 *
 * The lock-order checker (lockdep.c) is told of a wait before it starts
 * (ld_wait); the lock stays on the waiter's held stack throughout.
 */
#include <stdio.h>
#include <string.h>

#include "conc/sync.h"
#include "init-int.h"
#include "lockdep-int.h"
#include "sync-int.h"

/* SPINNING: a private waiter watching its word before it sleeps; it turns
 * the word to WAITING itself (CAS) before sleeping. */
enum { WAITING = 1, NOTIFIED = 2, TIMEDOUT = 3, SPINNING = 4 };

struct waiter {
  uint32_t word;
  unsigned gen;
  struct waiter *next, *prev;
};

static bool shared(const conc_condition_t *c) {
  return c->priv.flags & CONC__SYNC_PSHARED;
}

static conc_rlock_t *rlock_of(conc_condition_t *c) {
  if (c->priv.lock)
    return NULL;
  return c->priv.rlock ? c->priv.rlock : &c->priv.own;
}

int conc_condition_init(conc_condition_t *c,
                        const conc_condition_opts_t *opts) {
  if (!c)
    return CONC_EINVAL;
  conc_condition_opts_t o = opts ? *opts : (conc_condition_opts_t){0};
  if (o.lock && o.rlock)
    return CONC_EINVAL;
  if (o.pshared &&
      ((o.lock && !(o.lock->priv.flags & CONC__SYNC_PSHARED)) ||
       (o.rlock && !(o.rlock->priv.base.priv.flags & CONC__SYNC_PSHARED))))
    return CONC_EINVAL;
  memset(c, 0, sizeof *c);
  c->priv.lock = o.lock;
  c->priv.rlock = o.rlock;
  c->priv.flags = o.pshared ? CONC__SYNC_PSHARED : 0u;
  return conc__rlock_init_site(
      &c->priv.own, &(conc_rlock_opts_t){.pshared = o.pshared, .name = o.name},
      CONC__LD_SITE());
}

static bool has_waiters(conc_condition_t *c) {
  if (!shared(c))
    return __atomic_load_n(&c->priv.head, __ATOMIC_RELAXED) != NULL;
  for (int i = 0; i < CONC_CONDITION_PSHARED_MAX_WAITERS; i++) {
    uint32_t w = conc__load_acquire(&c->priv.slot[i].word);
    if ((w & 3u) == WAITING &&
        !conc__pid_dead(conc__load_relaxed(&c->priv.slot[i].pid)))
      return true;
  }
  return false;
}

int conc_condition_destroy(conc_condition_t *c) {
  if (!c)
    return CONC_EINVAL;
  if (has_waiters(c))
    return CONC_EBUSY;
  int rc = conc_rlock_destroy(&c->priv.own);
  if (rc == 0)
    memset(c, 0, sizeof *c);
  return rc;
}

/* -------------------------------------------------- the lock, passed on */

int conc_condition_acquire(conc_condition_t *c) {
  if (!c)
    return CONC_EINVAL;
  conc_rlock_t *r = rlock_of(c);
  return r ? conc_rlock_acquire(r) : conc_lock_acquire(c->priv.lock);
}

int conc_condition_acquire_timeout(conc_condition_t *c, double timeout) {
  return conc_condition_acquire_ex(c, true, timeout);
}

int conc_condition_acquire_ex(conc_condition_t *c, bool blocking,
                              double timeout) {
  if (!c)
    return CONC_EINVAL;
  conc_rlock_t *r = rlock_of(c);
  return r ? conc_rlock_acquire_ex(r, blocking, timeout)
           : conc_lock_acquire_ex(c->priv.lock, blocking, timeout);
}

int conc_condition_release(conc_condition_t *c) {
  if (!c)
    return CONC_EINVAL;
  conc_rlock_t *r = rlock_of(c);
  return r ? conc_rlock_release(r) : conc_lock_release(c->priv.lock);
}

/* Python's _is_owned: an RLock must be the caller's; a Lock (not owner
 * bound) only has to be held. */
static bool owned(conc_condition_t *c) {
  conc_rlock_t *r = rlock_of(c);
  return r ? conc_rlock_is_owned(r) : conc_lock_locked(c->priv.lock);
}

static int release_save(conc_condition_t *c, uint32_t *saved) {
  conc_rlock_t *r = rlock_of(c);
  *saved = 0;
  return r ? conc__rlock_release_save(r, saved)
           : conc__lock_release_raw(c->priv.lock);
}

static int acquire_restore(conc_condition_t *c, uint32_t saved, bool sleeper) {
  conc_rlock_t *r = rlock_of(c);
  return r ? conc__rlock_acquire_restore(r, saved, sleeper)
           : conc__lock_acquire_until(c->priv.lock, CONC_DEADLINE_NEVER,
                                      sleeper);
}

/* The word of a private lock, which waiters may be moved onto; NULL for a
 * pshared lock (its sleepers use process-shared waits and slices). */
static uint32_t *lock_word(conc_condition_t *c) {
  conc_rlock_t *r = rlock_of(c);
  conc_lock_t *l = r ? &r->priv.base : c->priv.lock;
  return (l->priv.flags & CONC__SYNC_PSHARED) ? NULL : &l->priv.word;
}

/* ------------------------------------------------- private waiter list */

static void list_append(conc_condition_t *c, struct waiter *w) {
  struct waiter *tail = c->priv.tail;
  w->next = NULL;
  w->prev = tail;
  if (tail)
    tail->next = w;
  else
    __atomic_store_n(&c->priv.head, (void *)w, __ATOMIC_RELAXED);
  c->priv.tail = w;
  conc__fetch_add(&c->priv.ticket, 1u); /* private: linked records */
}

/* Unlink the record between prev and next without touching it: a notified
 * record may belong to a waiter that has already returned. */
static void unlink_between(conc_condition_t *c, struct waiter *prev,
                           struct waiter *next) {
  if (prev)
    prev->next = next;
  else
    __atomic_store_n(&c->priv.head, (void *)next, __ATOMIC_RELAXED);
  if (next)
    next->prev = prev;
  else
    c->priv.tail = prev;
  conc__fetch_sub(&c->priv.ticket, 1u);
}

static void list_unlink(conc_condition_t *c, struct waiter *w) {
  unlink_between(c, w->prev, w->next);
}

/* The CAS race with the notifier decides between timeout and notify. */
static int settle_timeout(uint32_t *word, uint32_t waiting,
                          uint32_t timed_out) {
  uint32_t exp = waiting;
  return conc__cas(word, &exp, timed_out) ? CONC_ETIMEDOUT : 0;
}

/* A wait that ended by timeout or interrupt withdraws as a timeout does; a
 * notify that won the race stands (0), and an interrupt it overtook is
 * kept for the next wait. */
static int settle(uint32_t *word, uint32_t waiting, uint32_t gone, int r) {
  if (r != CONC_ETIMEDOUT && r != CONC_EINTR)
    return r;
  if (settle_timeout(word, waiting, gone) == CONC_ETIMEDOUT)
    return r;
  if (r == CONC_EINTR)
    conc__intr_keep();
  return 0;
}

/* A spinning waiter: true if notified while it spun, else the word is
 * WAITING and the waiter goes to sleep. The notifier of a spinning waiter
 * neither wakes nor moves it, so it spins for the lock too: the notifier
 * holds it and lets it go in a moment. */
static bool spin_for_notify(conc_condition_t *c, struct waiter *w) {
  bool notified = conc__spin_while(&w->word, SPINNING, false);
  uint32_t exp = SPINNING;
  if (!notified && !conc__cas(&w->word, &exp, WAITING))
    notified = true; /* just now */
  /* A notifier that keeps the lock long makes the spin a loss too. */
  bool paid = notified && conc__spin_until_free(lock_word(c));
  conc__spin_end(&c->priv.spin_skip, &c->priv.spin_fails, paid);
  return notified;
}

static int wait_private(conc_condition_t *c, conc_deadline_t deadline) {
  conc__init(); /* fork generations tell ghost waiters apart */
  bool spin = lock_word(c) && conc__spin_begin(&c->priv.spin_skip, deadline);
  struct waiter w = {.word = spin ? SPINNING : WAITING,
                     .gen = conc__fork_generation()};
  uint32_t saved;
  list_append(c, &w);
  int rc = release_save(c, &saved);
  if (rc != 0) {
    list_unlink(c, &w);
    return rc;
  }
  int r = 0;
  bool moved = false; /* notified while asleep: perhaps onto the lock */
  if (!spin || !spin_for_notify(c, &w)) {
    r = settle(&w.word, WAITING, TIMEDOUT,
               conc__wait_intr(&w.word, WAITING, deadline, false));
    moved = r == 0;
  }
  rc = acquire_restore(c, saved, moved);
  if (r != 0)
    list_unlink(c, &w);
  return rc == CONC_EOWNERDEAD || rc == CONC_ENOTRECOVERABLE ? rc : r;
}

/* Set the waiters bit of a held lock word; false if the word is free. */
static bool mark_contended(uint32_t *lw) {
  uint32_t w = conc__load_relaxed(lw);
  do {
    if (w == 0)
      return false;
    if (w & CONC__LW_WAITERS)
      return true;
  } while (!conc__cas_weak(lw, &w, w | CONC__LW_WAITERS));
  return true;
}

/*
 * Wait morphing: a waiter woken now would only find the lock held (by the
 * notifier) and sleep again on the lock word. Move it onto the lock word
 * instead: the release wakes it with the lock free. The lock word is
 * marked contended first, so that release wakes somebody; a moved waiter
 * reacquires as a sleeper (the waiters bit kept), so whoever else sleeps
 * there is woken in turn. Should the lock have been released in between
 * (a notifier that does not hold a Lock itself), everyone on the lock word
 * is woken, so no moved waiter is stranded.
 */
static void hand_over(conc_condition_t *c, uint32_t *word) {
  uint32_t *lw = lock_word(c);
  if (!lw || !mark_contended(lw)) {
    conc__wake(word, 1, false);
    return;
  }
  conc__requeue(word, NOTIFIED, lw, false);
  if (!(conc__load_acquire(lw) & CONC__LW_WAITERS))
    conc__wake(lw, CONC__WAKE_ALL, false);
}

static int notify_private(conc_condition_t *c, int n) {
  unsigned gen = conc__fork_generation();
  struct waiter *w = c->priv.head, *next;
  for (; w && n > 0; w = next) {
    next = w->next;
    struct waiter *prev = w->prev;
    if (w->gen != gen) {
      list_unlink(c, w);
      continue;
    }
    uint32_t s = conc__load_acquire(&w->word);
    while ((s == WAITING || s == SPINNING) &&
           !conc__cas(&w->word, &s, NOTIFIED))
      ;
    if (s == WAITING || s == SPINNING) {
      unlink_between(c, prev, next);
      if (s == WAITING) /* asleep, or about to be: never gone yet */
        hand_over(c, &w->word);
      n--;
    }
  }
  return 0;
}

/* ----------------------------------------------------- pshared slots */

static int32_t ticket_diff(uint32_t a, uint32_t b) {
  return (int32_t)((a - b) << 2);
}

static void reclaim_dead(conc_condition_t *c) {
  for (int i = 0; i < CONC_CONDITION_PSHARED_MAX_WAITERS; i++) {
    uint32_t w = conc__load_acquire(&c->priv.slot[i].word);
    if ((w & 3u) == WAITING &&
        conc__pid_dead(conc__load_relaxed(&c->priv.slot[i].pid)))
      conc__cas(&c->priv.slot[i].word, &w, 0u);
  }
}

/* Called with the lock held, so slot claims are serialised. */
static int claim_slot(conc_condition_t *c, uint32_t *mine) {
  uint32_t t = conc__fetch_add(&c->priv.ticket, 1u);
  *mine = (t << 2) | WAITING;
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < CONC_CONDITION_PSHARED_MAX_WAITERS; i++) {
      uint32_t z = 0;
      if (conc__load_relaxed(&c->priv.slot[i].word) != 0)
        continue;
      conc__store_relaxed(&c->priv.slot[i].pid, conc__sync_pid());
      if (conc__cas(&c->priv.slot[i].word, &z, *mine))
        return i;
    }
    reclaim_dead(c);
  }
  return CONC_EAGAIN;
}

static int wait_shared(conc_condition_t *c, conc_deadline_t deadline) {
  uint32_t mine, saved;
  int i = claim_slot(c, &mine);
  if (i < 0)
    return i;
  uint32_t *word = &c->priv.slot[i].word;
  int rc = release_save(c, &saved);
  if (rc != 0) {
    conc__store_release(word, 0u);
    return rc;
  }
  int r = settle(word, mine, 0u, conc__wait_intr(word, mine, deadline, true));
  rc = acquire_restore(c, saved, false);
  if (r == 0)
    conc__store_release(word, 0u);
  return rc == CONC_EOWNERDEAD || rc == CONC_ENOTRECOVERABLE ? rc : r;
}

static int oldest_waiting(conc_condition_t *c, uint32_t *w_out) {
  int best = -1;
  uint32_t bw = 0;
  for (int i = 0; i < CONC_CONDITION_PSHARED_MAX_WAITERS; i++) {
    uint32_t w = conc__load_acquire(&c->priv.slot[i].word);
    if ((w & 3u) == WAITING && (best < 0 || ticket_diff(w, bw) < 0)) {
      best = i;
      bw = w;
    }
  }
  *w_out = bw;
  return best;
}

static int notify_shared(conc_condition_t *c, int n) {
  int32_t me = conc__sync_pid();
  while (n > 0) {
    uint32_t w;
    int i = oldest_waiting(c, &w);
    if (i < 0)
      break;
    uint32_t *word = &c->priv.slot[i].word;
    int32_t pid = conc__load_relaxed(&c->priv.slot[i].pid);
    if (pid != me && conc__pid_dead(pid)) {
      conc__cas(word, &w, 0u);
      continue;
    }
    if (conc__cas(word, &w, (w & ~3u) | NOTIFIED)) {
      conc__wake(word, 1, true);
      n--;
    }
  }
  return 0;
}

/* ------------------------------------------------------------- public */

/* The lock-order checker: the waiter's other held locks, and a loop thread
 * that waits. The lock stays on the waiter's held stack meanwhile (the
 * release and re-acquire inside the wait are not the caller's). */
static void ld_wait(conc_condition_t *c) {
  conc_rlock_t *r = rlock_of(c);
  if (r)
    conc__ld_cond_wait(r, r->priv.base.priv.flags, CONC__LD_RLOCK);
  else
    conc__ld_cond_wait(c->priv.lock, c->priv.lock->priv.flags, CONC__LD_LOCK);
}

static int wait_until(conc_condition_t *c, conc_deadline_t deadline) {
  if (!owned(c))
    return CONC_ESTATE;
  if (conc__ld_on())
    ld_wait(c);
  return shared(c) ? wait_shared(c, deadline) : wait_private(c, deadline);
}

int conc_condition_wait(conc_condition_t *c, double timeout) {
  if (!c)
    return CONC_EINVAL;
  conc_deadline_t d;
  if (conc_deadline_after(timeout, &d) != 0)
    return CONC_EINVAL;
  return wait_until(c, d);
}

/* Python's wait_for returns the predicate's last value: here its positive
 * value, or 0 when time ran out; its negative code (its exception) ends
 * the wait at once. */
int conc_condition_wait_for(conc_condition_t *c, int (*pred)(void *arg),
                            void *arg, double timeout) {
  if (!c || !pred)
    return CONC_EINVAL;
  conc_deadline_t d;
  if (conc_deadline_after(timeout, &d) != 0)
    return CONC_EINVAL;
  if (!owned(c))
    return CONC_ESTATE;
  bool waited = false;
  int v;
  while ((v = pred(arg)) == 0) {
    if (waited && conc__deadline_passed(d))
      return 0;
    int rc = wait_until(c, d);
    if (rc != 0 && rc != CONC_ETIMEDOUT)
      return rc;
    waited = true;
  }
  return v;
}

int conc_condition_notify(conc_condition_t *c, int n) {
  if (!c)
    return CONC_EINVAL;
  if (!owned(c))
    return CONC_ESTATE;
  if (n <= 0)
    return 0;
  return shared(c) ? notify_shared(c, n) : notify_private(c, n);
}

int conc_condition_notify_all(conc_condition_t *c) {
  return conc_condition_notify(c, __INT_MAX__);
}

static int count_waiters(conc_condition_t *c) {
  int k = 0;
  if (!shared(c))
    return (int)conc__load_relaxed(&c->priv.ticket);
  for (int i = 0; i < CONC_CONDITION_PSHARED_MAX_WAITERS; i++)
    k += (conc__load_relaxed(&c->priv.slot[i].word) & 3u) == WAITING;
  return k;
}

int conc_condition_repr(const conc_condition_t *c, char *buf, size_t n) {
  if (!c || (!buf && n))
    return CONC_EINVAL;
  conc_condition_t *m = (conc_condition_t *)c;
  char inner[128];
  conc_rlock_t *r = rlock_of(m);
  if (r)
    conc_rlock_repr(r, inner, sizeof inner);
  else
    conc_lock_repr(m->priv.lock, inner, sizeof inner);
  return snprintf(buf, n, "<Condition(%s, %d)>", inner, count_waiters(m));
}
