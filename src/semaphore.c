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
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "conc/sync.h"
#include "sync-int.h"

#define SEQ __ATOMIC_SEQ_CST

/* ---------------------------------------------------------- Semaphore */

static bool sem_shared(const conc_semaphore_t *s) {
  return s->priv.flags & CONC__SYNC_PSHARED;
}

int conc_semaphore_init(conc_semaphore_t *s, int value,
                        const conc_semaphore_opts_t *opts) {
  if (!s || value < 0)
    return CONC_EINVAL;
  memset(s, 0, sizeof *s);
  s->priv.value = (uint32_t)value;
  s->priv.initial = (uint32_t)value;
  if (opts && opts->bounded)
    s->priv.flags |= CONC__SYNC_BOUNDED;
  if (opts && opts->pshared)
    s->priv.flags |= CONC__SYNC_PSHARED;
  return 0;
}

int conc_bounded_semaphore_init(conc_bounded_semaphore_t *s, int value,
                                const conc_semaphore_opts_t *opts) {
  conc_semaphore_opts_t o = opts ? *opts : (conc_semaphore_opts_t){0};
  o.bounded = true;
  return conc_semaphore_init(s, value, &o);
}

int conc_semaphore_destroy(conc_semaphore_t *s) {
  if (!s)
    return CONC_EINVAL;
  if (__atomic_load_n(&s->priv.nwait, SEQ) != 0)
    return CONC_EBUSY;
  memset(s, 0, sizeof *s);
  return 0;
}

static bool sem_try(conc_semaphore_t *s) {
  uint32_t v = __atomic_load_n(&s->priv.value, SEQ);
  while (v > 0)
    if (__atomic_compare_exchange_n(&s->priv.value, &v, v - 1u, true, SEQ, SEQ))
      return true;
  return false;
}

static int sem_acquire_until(conc_semaphore_t *s, conc_deadline_t deadline) {
  for (;;) {
    if (sem_try(s))
      return 0;
    if (conc__deadline_passed(deadline))
      return CONC_ETIMEDOUT;
    __atomic_fetch_add(&s->priv.nwait, 1u, SEQ);
    conc__wait(&s->priv.value, 0u, deadline, sem_shared(s));
    __atomic_fetch_sub(&s->priv.nwait, 1u, SEQ);
  }
}

int conc_semaphore_acquire(conc_semaphore_t *s) {
  if (!s)
    return CONC_EINVAL;
  return sem_acquire_until(s, CONC_DEADLINE_NEVER);
}

int conc_semaphore_acquire_timeout(conc_semaphore_t *s, double timeout) {
  return conc_semaphore_acquire_ex(s, true, timeout);
}

int conc_semaphore_acquire_ex(conc_semaphore_t *s, bool blocking,
                              double timeout) {
  if (!s)
    return CONC_EINVAL;
  if (!blocking && timeout != CONC_FOREVER)
    return CONC_EINVAL;
  conc_deadline_t d = CONC__DEADLINE_POLL;
  if (blocking && conc_deadline_after(timeout, &d) != 0)
    return CONC_EINVAL;
  return sem_acquire_until(s, d);
}

int conc_semaphore_release(conc_semaphore_t *s, int n) {
  if (!s || n < 1)
    return CONC_EINVAL;
  uint32_t v = __atomic_load_n(&s->priv.value, SEQ), next;
  do {
    if ((s->priv.flags & CONC__SYNC_BOUNDED) &&
        (uint64_t)v + (uint64_t)n > s->priv.initial)
      return CONC_EINVAL;
    if ((uint64_t)v + (uint64_t)n > INT_MAX)
      return CONC_EOVERFLOW;
    next = v + (uint32_t)n;
  } while (
      !__atomic_compare_exchange_n(&s->priv.value, &v, next, true, SEQ, SEQ));
  uint32_t sleepers = __atomic_load_n(&s->priv.nwait, SEQ);
  if (sleepers)
    conc__wake(&s->priv.value, sleepers < (uint32_t)n ? (int)sleepers : n,
               sem_shared(s));
  return 0;
}

int conc_semaphore_get_value(const conc_semaphore_t *s) {
  if (!s)
    return CONC_EINVAL;
  return (int)__atomic_load_n(&s->priv.value, SEQ);
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
  if (__atomic_load_n(&e->priv.nwait, SEQ) != 0)
    return CONC_EBUSY;
  memset(e, 0, sizeof *e);
  return 0;
}

int conc_event_set(conc_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  uint32_t w = __atomic_load_n(&e->priv.word, SEQ);
  do {
    if (w & 1u)
      return 0;
  } while (!__atomic_compare_exchange_n(&e->priv.word, &w, (w + 2u) | 1u, true,
                                        SEQ, SEQ));
  if (__atomic_load_n(&e->priv.nwait, SEQ))
    conc__wake(&e->priv.word, CONC__WAKE_ALL, ev_shared(e));
  return 0;
}

int conc_event_clear(conc_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  __atomic_fetch_and(&e->priv.word, ~1u, SEQ);
  return 0;
}

bool conc_event_is_set(const conc_event_t *e) {
  return e && (__atomic_load_n(&e->priv.word, SEQ) & 1u);
}

int conc_event_wait(conc_event_t *e, double timeout) {
  if (!e)
    return CONC_EINVAL;
  conc_deadline_t d;
  if (conc_deadline_after(timeout, &d) != 0)
    return CONC_EINVAL;
  uint32_t w = __atomic_load_n(&e->priv.word, SEQ);
  if (w & 1u)
    return 0;
  __atomic_fetch_add(&e->priv.nwait, 1u, SEQ);
  int r = conc__wait(&e->priv.word, w, d, ev_shared(e));
  __atomic_fetch_sub(&e->priv.nwait, 1u, SEQ);
  return r;
}

int conc_event_repr(const conc_event_t *e, char *buf, size_t n) {
  if (!e || (!buf && n))
    return CONC_EINVAL;
  return snprintf(buf, n, "<conc.Event at %p: %s>", (void *)e,
                  conc_event_is_set(e) ? "set" : "unset");
}
