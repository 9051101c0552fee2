/*
 * Semaphore, BoundedSemaphore and Event: one futex word each, no lock.
 *
 * Locking protocol: the semaphore's value is its wait word. acquire takes a
 * unit with a CAS while the value is positive; otherwise it counts itself
 * in `nwait` and sleeps while the value is 0. release adds n with a CAS and
 * wakes min(n, sleepers); a woken thread that loses the CAS race for the
 * unit goes back to sleep, so exactly the released units get through.
 * `nwait` and the value are updated and read with sequentially consistent
 * atomics (a Dekker pair): a releaser that sees no sleeper was ordered
 * before the sleeper's check of the value, which then sees the new units.
 *
 * The event word is generation << 1 | flag. set bumps the generation and
 * raises the flag; a waiter sleeps on the exact word it saw with the flag
 * down, so any change it wakes to is a set, even if a clear followed.
 * Loop tasks waiting on a private Event (aio_janus.c) raise bit 31 of
 * nwait; set, after its CAS, serves them when it sees the bit.
 *
 * Pshared objects keep no count that a waiter killed in its sleep would
 * leave raised: bit 31 of the word (SLEEPERS) says that somebody may sleep
 * on it, set by a waiter (CAS) before it sleeps on the word with the bit.
 * An Event's set clears the bit in the CAS that raises the flag and wakes
 * everyone if it was set. A Semaphore's release keeps the bit and wakes n;
 * when fewer than n woke, the kernel's queue was empty: it clears the bit
 * and wakes all once more, for a waiter that fell asleep in between
 * (clearing changes the word, so a waiter not yet asleep does not sleep).
 * A dead waiter thus costs at most one release or set a wake-up. destroy
 * asks the kernel how many sleep there (conc__sync_sleepers).
 *
 * The lock-order checker (lockdep.c): a BoundedSemaphore is held like a
 * lock by the thread that acquired it; a plain Semaphore (usually released
 * by another thread) only has order edges into it.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "annotate-int.h"
#include "conc/sync.h"
#include "janus-int.h"
#include "lockdep-int.h"
#include "sync-int.h"

#define SEQ __ATOMIC_SEQ_CST
#define SLEEPERS 0x80000000u

/* ---------------------------------------------------------- Semaphore */

static bool sem_shared(const conc_semaphore_t *s) {
  return s->priv.flags & CONC__SYNC_PSHARED;
}

static enum conc__ld_type sem_ld_type(const conc_semaphore_t *s) {
  return (s->priv.flags & CONC__SYNC_BOUNDED) ? CONC__LD_BSEM : CONC__LD_SEM;
}

static int sem_init(conc_semaphore_t *s, int value,
                    const conc_semaphore_opts_t *opts, const void *site) {
  if (!s || value < 0)
    return CONC_EINVAL;
  memset(s, 0, sizeof *s);
  s->priv.value = (uint32_t)value;
  s->priv.initial = (uint32_t)value;
  if (opts && opts->bounded)
    s->priv.flags |= CONC__SYNC_BOUNDED;
  if (opts && opts->pshared)
    s->priv.flags |= CONC__SYNC_PSHARED;
  if (conc__ld_on())
    conc__ld_init(s, &s->priv.flags, sem_ld_type(s), opts ? opts->name : NULL,
                  site);
  return 0;
}

int conc_semaphore_init(conc_semaphore_t *s, int value,
                        const conc_semaphore_opts_t *opts) {
  return sem_init(s, value, opts, CONC__LD_SITE());
}

int conc_bounded_semaphore_init(conc_bounded_semaphore_t *s, int value,
                                const conc_semaphore_opts_t *opts) {
  conc_semaphore_opts_t o = opts ? *opts : (conc_semaphore_opts_t){0};
  o.bounded = true;
  return sem_init(s, value, &o, CONC__LD_SITE());
}

int conc_semaphore_destroy(conc_semaphore_t *s) {
  if (!s)
    return CONC_EINVAL;
  if (sem_shared(s) ? conc__sync_sleepers(&s->priv.value) > 0
                    : __atomic_load_n(&s->priv.nwait, SEQ) != 0)
    return CONC_EBUSY;
  if (conc__ld_on())
    conc__ld_destroy(s, s->priv.flags, sem_ld_type(s), false);
  memset(s, 0, sizeof *s);
  return 0;
}

static bool sem_try(conc_semaphore_t *s) {
  uint32_t v = __atomic_load_n(&s->priv.value, SEQ);
  while (v & ~SLEEPERS)
    if (__atomic_compare_exchange_n(&s->priv.value, &v, v - 1u, true, SEQ,
                                    SEQ)) {
      /* Race detectors (annotate-int.h): the releaser's writes happen
       * before the acquirer's reads. */
      conc__ann_happens_after(&s->priv.value);
      return true;
    }
  return false;
}

/* Pshared: raise SLEEPERS, then sleep on the word with it. */
static int sem_sleep_shared(conc_semaphore_t *s, conc_deadline_t deadline) {
  uint32_t v = __atomic_load_n(&s->priv.value, SEQ);
  if (v & ~SLEEPERS)
    return 0;
  if (!(v & SLEEPERS) && !__atomic_compare_exchange_n(
                             &s->priv.value, &v, v | SLEEPERS, false, SEQ, SEQ))
    return 0;
  return conc__wait_intr(&s->priv.value, v | SLEEPERS, deadline, true);
}

static int sem_acquire_until(conc_semaphore_t *s, conc_deadline_t deadline) {
  for (;;) {
    if (sem_try(s))
      return 0;
    if (conc__deadline_passed(deadline))
      return CONC_ETIMEDOUT;
    /* CONC_EINTR comes only with the word unchanged: no unit was left
     * for this waiter, so leaving loses no wake-up. */
    if (sem_shared(s)) {
      if (sem_sleep_shared(s, deadline) == CONC_EINTR)
        return CONC_EINTR;
      continue;
    }
    __atomic_fetch_add(&s->priv.nwait, 1u, SEQ);
    int r = conc__wait_intr(&s->priv.value, 0u, deadline, false);
    __atomic_fetch_sub(&s->priv.nwait, 1u, SEQ);
    if (r == CONC_EINTR)
      return r;
  }
}

/* The lock-order checker's view of an acquisition (see lock.c's
 * lock_acquire_checked). */
static int sem_acquire_checked(conc_semaphore_t *s, conc_deadline_t d,
                               const void *site) {
  conc__ld_acq_t a;
  conc__ld_acquire_begin(&a, s, s->priv.flags, sem_ld_type(s),
                         conc__ld_how_of(d), site);
  int rc = sem_acquire_until(s, CONC__DEADLINE_POLL);
  if (rc == CONC_ETIMEDOUT && d != CONC__DEADLINE_POLL) {
    conc__ld_acquire_wait(&a);
    rc = sem_acquire_until(s, d);
  }
  conc__ld_acquire_end(&a, rc == 0);
  return rc;
}

static int sem_acquire(conc_semaphore_t *s, conc_deadline_t d,
                       const void *site) {
  if (conc__ld_on())
    return sem_acquire_checked(s, d, site);
  return sem_acquire_until(s, d);
}

int conc_semaphore_acquire(conc_semaphore_t *s) {
  if (!s)
    return CONC_EINVAL;
  return sem_acquire(s, CONC_DEADLINE_NEVER, CONC__LD_SITE());
}

static int sem_acquire_api(conc_semaphore_t *s, bool blocking, double timeout,
                           const void *site) {
  if (!s)
    return CONC_EINVAL;
  if (!blocking && timeout != CONC_FOREVER)
    return CONC_EINVAL;
  conc_deadline_t d = CONC__DEADLINE_POLL;
  if (blocking && conc_deadline_after(timeout, &d) != 0)
    return CONC_EINVAL;
  return sem_acquire(s, d, site);
}

int conc_semaphore_acquire_timeout(conc_semaphore_t *s, double timeout) {
  return sem_acquire_api(s, true, timeout, CONC__LD_SITE());
}

int conc_semaphore_acquire_ex(conc_semaphore_t *s, bool blocking,
                              double timeout) {
  return sem_acquire_api(s, blocking, timeout, CONC__LD_SITE());
}

/* See the protocol at the top: fewer woke than asked, so nobody else
 * sleeps but perhaps a thread that fell asleep since; clear the bit, then
 * wake that thread too (it sets the bit again if it must sleep on). */
static void sem_wake_shared(conc_semaphore_t *s, int n) {
  if (conc__sync_wake(&s->priv.value, n) >= n)
    return;
  uint32_t v = __atomic_load_n(&s->priv.value, SEQ);
  while (v & SLEEPERS)
    if (__atomic_compare_exchange_n(&s->priv.value, &v, v & ~SLEEPERS, true,
                                    SEQ, SEQ)) {
      conc__sync_wake(&s->priv.value, CONC__WAKE_ALL);
      return;
    }
}

int conc_semaphore_release(conc_semaphore_t *s, int n) {
  if (!s || n < 1)
    return CONC_EINVAL;
  if (conc__ld_on() && (s->priv.flags & CONC__SYNC_BOUNDED))
    conc__ld_release(s, CONC__LD_BSEM);
  conc__ann_happens_before(&s->priv.value); /* the edge to sem_try */
  uint32_t v = __atomic_load_n(&s->priv.value, SEQ), next;
  do {
    uint64_t units = v & ~SLEEPERS;
    if ((s->priv.flags & CONC__SYNC_BOUNDED) &&
        units + (uint64_t)n > s->priv.initial)
      return CONC_EINVAL;
    if (units + (uint64_t)n > INT_MAX)
      return CONC_EOVERFLOW;
    next = v + (uint32_t)n;
  } while (
      !__atomic_compare_exchange_n(&s->priv.value, &v, next, true, SEQ, SEQ));
  if (sem_shared(s)) {
    if (v & SLEEPERS)
      sem_wake_shared(s, n);
    return 0;
  }
  uint32_t sleepers = __atomic_load_n(&s->priv.nwait, SEQ);
  if (sleepers)
    conc__wake(&s->priv.value, sleepers < (uint32_t)n ? (int)sleepers : n,
               false);
  return 0;
}

int conc_semaphore_get_value(const conc_semaphore_t *s) {
  if (!s)
    return CONC_EINVAL;
  return (int)(__atomic_load_n(&s->priv.value, SEQ) & ~SLEEPERS);
}

int conc_semaphore_repr(const conc_semaphore_t *s, char *buf, size_t n) {
  if (!s || (!buf && n))
    return CONC_EINVAL;
  unsigned v = (unsigned)conc_semaphore_get_value(s);
  if (s->priv.flags & CONC__SYNC_BOUNDED)
    return snprintf(buf, n, "<conc.BoundedSemaphore at %p: value=%u/%u>",
                    (void *)s, v, (unsigned)s->priv.initial);
  return snprintf(buf, n, "<conc.Semaphore at %p: value=%u>", (void *)s, v);
}

/* -------------------------------------------------------------- Event */

static bool ev_shared(const conc_event_t *e) {
  return e->priv.flags & CONC__SYNC_PSHARED;
}

int conc_event_init(conc_event_t *e, const conc_event_opts_t *opts) {
  if (!e)
    return CONC_EINVAL;
  memset(e, 0, sizeof *e);
  if (opts && opts->pshared)
    e->priv.flags = CONC__SYNC_PSHARED;
  return 0;
}

int conc_event_destroy(conc_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  if (ev_shared(e) ? conc__sync_sleepers(&e->priv.word) > 0
                   : __atomic_load_n(&e->priv.nwait, SEQ) != 0)
    return CONC_EBUSY;
  memset(e, 0, sizeof *e);
  return 0;
}

int conc_event_set(conc_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  /* Race detectors: the edge to a wait or is_set that sees the flag. */
  conc__ann_happens_before(&e->priv.word);
  uint32_t w = __atomic_load_n(&e->priv.word, SEQ), n;
  do {
    if (w & 1u)
      return 0;
  } while (!__atomic_compare_exchange_n(
      &e->priv.word, &w, (((w & ~SLEEPERS) + 2u) | 1u) & ~SLEEPERS, true, SEQ,
      SEQ));
  if (ev_shared(e)) {
    if (w & SLEEPERS)
      conc__sync_wake(&e->priv.word, CONC__WAKE_ALL);
  } else if ((n = __atomic_load_n(&e->priv.nwait, SEQ)) != 0) {
    if (n & ~CONC__EVENT_TASKS)
      conc__wake(&e->priv.word, CONC__WAKE_ALL, false);
    if (n & CONC__EVENT_TASKS) /* loop tasks wait (aio_janus.c) */
      conc__event_serve_tasks(e);
  }
  return 0;
}

int conc_event_clear(conc_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  __atomic_fetch_and(&e->priv.word, ~1u, SEQ);
  return 0;
}

bool conc_event_is_set(const conc_event_t *e) {
  bool set = e && (__atomic_load_n(&e->priv.word, SEQ) & 1u);
  if (set)
    conc__ann_happens_after(&e->priv.word);
  return set;
}

static int event_wait(conc_event_t *e, double timeout) {
  if (!e)
    return CONC_EINVAL;
  conc_deadline_t d;
  if (conc_deadline_after(timeout, &d) != 0)
    return CONC_EINVAL;
  uint32_t w = __atomic_load_n(&e->priv.word, SEQ);
  if (ev_shared(e)) {
    /* the only change to a word with SLEEPERS up is a set */
    while (!(w & (1u | SLEEPERS)))
      if (__atomic_compare_exchange_n(&e->priv.word, &w, w | SLEEPERS, true,
                                      SEQ, SEQ))
        w |= SLEEPERS;
    return (w & 1u) ? 0 : conc__wait_intr(&e->priv.word, w, d, true);
  }
  if (w & 1u)
    return 0;
  __atomic_fetch_add(&e->priv.nwait, 1u, SEQ);
  int r = conc__wait_intr(&e->priv.word, w, d, false);
  __atomic_fetch_sub(&e->priv.nwait, 1u, SEQ);
  return r;
}

int conc_event_wait(conc_event_t *e, double timeout) {
  int rc = event_wait(e, timeout);
  if (rc == 0) /* race detectors: the edge from conc_event_set */
    conc__ann_happens_after(&e->priv.word);
  return rc;
}

int conc_event_repr(const conc_event_t *e, char *buf, size_t n) {
  if (!e || (!buf && n))
    return CONC_EINVAL;
  return snprintf(buf, n, "<conc.Event at %p: %s>", (void *)e,
                  conc_event_is_set(e) ? "set" : "unset");
}
