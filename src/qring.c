/*
 * qring: the lock-free storage of a FIFO Queue (queue.c), bounded or
 * not, a Vyukov MPMC ring with a sequence number per cell.
 *
 * Locking protocol. No lock. Producers claim position t with one CAS on
 * `tail`, consumers position h with one CAS on `head`; the two indices and
 * the task_done count `done` sit on separate cache lines, so a put never
 * writes a line a get must own except the cell itself. A cell for
 * position p holds seq == p while free for p, p + 1 once its item is
 * written (release) and p + cap once its consumer has read it. A put is
 * admitted while tail - head < maxsize (head read after tail, so a stale
 * head can only make the queue look fuller, never overfill it). When the
 * ring has cap >= maxsize cells an admitted put waits only for a consumer
 * still reading the cell's previous item; a ring with fewer cells grows
 * (below).
 *
 * Waiting. Getters park on the event count `ne` only when the ring is
 * empty, putters on `nf` only when it is full, joiners on `jn` while tasks
 * are unfinished. A sleeper announces itself (high half of the word),
 * re-checks its condition and parks; whoever changes the condition claims
 * one announced sleeper (all, for joiners) and bumps the sequence in one
 * CAS, then wakes. The claim CASes on the indices, the announcements, the
 * re-checks and the wakers' looks at the words are sequentially
 * consistent, so either the waker sees the sleeper or the sleeper sees
 * the change. Before parking a thread watches for the change for up to
 * 20 us, yielding its core.
 *
 * Growing. An unbounded queue's ring (maxsize LONG_MAX), or one whose
 * maxsize is larger than the cells it has so far, answers a put that
 * finds every cell taken with CONC__QR_GROW. The caller closes the ring
 * (under its mutex, so only one thread grows it) and conc__qring_grow
 * copies the items into a ring of twice the cells, where every index
 * keeps its value: positions, qsize and the unfinished count carry on.
 * The old ring stays allocated, linked from the new one, until the queue
 * is freed: a thread that read the old pointer before the switch still
 * finds CLOSED there and takes the caller's path, which sends it to the
 * new ring. Rings grow by doubling, so the old ones together take less
 * memory than the live one.
 *
 * Closing. CLOSED (bit 63) in tail, head and done sends every operation
 * to the caller's mutex path (QR_CLOSED). conc__qring_close sets it, waits
 * for the operations that had claimed a position to finish with their
 * cell, and wakes every sleeper; then the caller owns the ring alone
 * (to move the items out, or to fork) until conc__qring_reopen. The cells
 * are freed only with the ring, so a thread holding a stale position may
 * still read a cell's seq.
 *
 * unfinished tasks = tail - done: every claimed position is a put, and
 * task_done counts itself in `done` by CAS while done < tail.
 */
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "qsync-int.h"

#define CLOSED (UINT64_C(1) << 63)
#define SLEEPER (1u << 16)
#define SEQ_MASK 0xffffu
#ifndef QSPIN_NS
#define QSPIN_NS 20000 /* see watch */
#endif

struct cell {
  uint64_t seq;
  void *item;
};

struct conc__qring {
  _Alignas(64) struct cell *cells; /* read-only after init */
  uint64_t mask;
  int64_t maxsize;             /* LONG_MAX: unbounded */
  struct conc__qring *retired; /* the ring this one grew from */
  _Alignas(64) uint64_t tail;
  _Alignas(64) uint64_t head;
  _Alignas(64) uint64_t done;
  _Alignas(64) uint32_t ne; /* getters: not empty */
  _Alignas(64) uint32_t nf; /* putters: not full */
  _Alignas(64) uint32_t jn; /* joiners: all done */
};

#define SC __ATOMIC_SEQ_CST
#define LOAD(p) __atomic_load_n((p), SC)
#define POS(x) ((x) & ~CLOSED)

/* A ring of cap cells (a power of two) for positions head .. head + cap
 * - 1: those below tail hold the items of `from` (closed), the others are
 * free. Without `from`, head and tail are 0. */
static conc__qring_t *ring_alloc(long maxsize, size_t cap,
                                 const conc__qring_t *from) {
  conc__qring_t *r = aligned_alloc(64, sizeof(*r));
  struct cell *cells = malloc(cap * sizeof(*cells));
  if (!r || !cells) {
    free(r);
    free(cells);
    return NULL;
  }
  memset(r, 0, sizeof(*r));
  /* Atomic looks: a stale thread's failing CAS may still touch them. */
  uint64_t h = from ? POS(LOAD(&from->head)) : 0;
  uint64_t t = from ? POS(LOAD(&from->tail)) : 0;
  for (uint64_t p = h; p < h + cap; p++) {
    bool full = p < t;
    cells[p & (cap - 1)] = (struct cell){
        full ? p + 1 : p, full ? from->cells[p & from->mask].item : NULL};
  }
  /* Race detectors that do not see atomics (valgrind's): the indices,
   * sequence numbers and event counts are atomics; the items and what
   * they point to are ordered by the happens-before annotations below. */
  conc__ann_benign_race(r, sizeof(*r));
  conc__ann_benign_race(cells, cap * sizeof(*cells));
  r->cells = cells;
  r->mask = cap - 1;
  r->maxsize = maxsize > 0 ? maxsize : LONG_MAX;
  return r;
}

conc__qring_t *conc__qring_new(long maxsize, size_t cap) {
  size_t c = 16;
  while (c < cap)
    c <<= 1;
  return ring_alloc(maxsize, c, NULL);
}

/* The indices keep their values, open: the new ring carries on where the
 * closed one stopped. The items were ordered before the close (every
 * claimed cell was finished), and the caller publishes the new ring with
 * a release. */
conc__qring_t *conc__qring_grow(conc__qring_t *old) {
  size_t cap = (old->mask + 1) * 2;
  if (cap < old->mask + 1)
    return NULL;
  conc__ann_happens_after(&old->tail);
  conc__qring_t *r = ring_alloc(old->maxsize, cap, old);
  if (!r)
    return NULL;
  r->tail = POS(LOAD(&old->tail));
  r->head = POS(LOAD(&old->head));
  r->done = POS(LOAD(&old->done));
  r->retired = old;
  conc__ann_happens_before(&r->tail); /* the items, to the new ring's gets */
  return r;
}

size_t conc__qring_capacity(const conc__qring_t *r) { return r->mask + 1; }

void conc__qring_free(conc__qring_t *r) {
  while (r) {
    conc__qring_t *older = r->retired;
    free(r->cells);
    free(r);
    r = older;
  }
}

/* ---- event counts -------------------------------------------------------- */

static void ec_wake(uint32_t *w, bool all) {
  uint32_t v = LOAD(w);
  while (v >= SLEEPER) {
    uint32_t left = all ? 0 : v / SLEEPER - 1;
    if (conc__cas(w, &v, left * SLEEPER | ((v + 1) & SEQ_MASK))) {
      conc__wake(w, all ? CONC__WAKE_ALL : 1, false);
      return;
    }
  }
}

enum cond { EMPTY, FULL, UNFINISHED };

/* The condition a sleeper waits out, read sequentially consistently;
 * false once the ring is closed. */
static bool holds(conc__qring_t *r, enum cond c) {
  uint64_t t = LOAD(&r->tail);
  uint64_t o = LOAD(c == UNFINISHED ? &r->done : &r->head);
  if ((t | o) & CLOSED)
    return false;
  if (c == EMPTY)
    return t == o;
  if (c == FULL)
    return (int64_t)(t - o) >= r->maxsize;
  return (int64_t)(t - o) > 0;
}

/* Announce, re-check, park until woken or the deadline; take the
 * announcement back unless a waker claimed it. CONC_EINTR only when taken
 * back (a claimed wake-up was ours: the caller looks again and the
 * interrupt is kept for the next wait). */
static int ec_sleep(conc__qring_t *r, uint32_t *w, enum cond c,
                    conc_deadline_t dl) {
  uint32_t v = __atomic_add_fetch(w, SLEEPER, SC);
  int rc = 0;
  if (holds(r, c))
    rc = conc__wait_intr(w, v, dl, false);
  uint32_t cur = conc__load_relaxed(w);
  while ((cur & SEQ_MASK) == (v & SEQ_MASK) && cur >= SLEEPER)
    if (conc__cas(w, &cur, cur - SLEEPER))
      return rc == CONC_EINTR ? rc : 0; /* the caller sees the deadline */
  if (rc == CONC_EINTR)
    conc__intr_keep();
  return 0;
}

/* Before parking: watch the condition for up to QSPIN_NS, yielding the
 * core; on a busy queue the other side usually changes it within that
 * window, which saves the sleep and the other side's wake-up call. Not
 * for deadlines closer than that. */
static void watch(conc__qring_t *r, enum cond c, conc_deadline_t dl) {
  int64_t end = conc__now_ns() + QSPIN_NS;
  if (dl != CONC_DEADLINE_NEVER && dl < end)
    return;
  for (unsigned i = 1; holds(r, c); i++) {
    if ((i & 7) == 0 && conc__now_ns() >= end)
      return;
    sched_yield();
  }
}

/* One step of a blocking wait for c to stop holding: 0 to look again,
 * `fail` once the deadline has passed, CONC_EINTR. */
static int wait_step(conc__qring_t *r, uint32_t *w, enum cond c, bool *watched,
                     conc_deadline_t dl, int fail) {
  if (dl != CONC_DEADLINE_NEVER && conc__now_ns() >= dl)
    return fail;
  if (!*watched) {
    *watched = true;
    watch(r, c, dl);
    return 0;
  }
  return ec_sleep(r, w, c, dl);
}

static void backoff(unsigned *n) {
  if (++*n < 64)
    conc__cpu_relax();
  else
    sched_yield();
}

/* ---- put and get --------------------------------------------------------- */

int conc__qring_put(conc__qring_t *r, void *item, bool block,
                    conc_deadline_t dl) {
  unsigned n = 0;
  bool watched = false;
  for (;;) {
    uint64_t t = conc__load_acquire(&r->tail);
    uint64_t h = conc__load_acquire(&r->head);
    if ((t | h) & CLOSED)
      return CONC__QR_CLOSED;
    if ((int64_t)(t - h) >= r->maxsize) {
      if (!block)
        return CONC_EFULL;
      int rc = wait_step(r, &r->nf, FULL, &watched, dl, CONC_EFULL);
      if (rc)
        return rc;
      continue;
    }
    struct cell *c = &r->cells[t & r->mask];
    uint64_t seq = conc__load_acquire(&c->seq);
    if (seq == t) {
      if (__atomic_compare_exchange_n(&r->tail, &t, t + 1, true, SC,
                                      __ATOMIC_RELAXED)) {
        conc__ann_happens_after(&r->head); /* the get that made room */
        c->item = item;
        conc__ann_happens_before(&r->tail); /* to the get that takes it */
        conc__store_release(&c->seq, t + 1);
        ec_wake(&r->ne, false);
        return 0;
      }
      backoff(&n); /* another producer won: let the line settle */
    } else if ((int64_t)(seq - t) < 0) {
      /* Every cell holds an item: a ring smaller than its maxsize grows
       * (h may be stale, which can only grow it early). Otherwise a
       * consumer is still reading the cell's last item. */
      if (t - h > r->mask)
        return CONC__QR_GROW;
      backoff(&n);
    }
  }
}

int conc__qring_get(conc__qring_t *r, void **out, bool block,
                    conc_deadline_t dl) {
  unsigned n = 0;
  bool watched = false;
  for (;;) {
    uint64_t h = conc__load_acquire(&r->head);
    if (h & CLOSED)
      return CONC__QR_CLOSED;
    struct cell *c = &r->cells[h & r->mask];
    uint64_t seq = conc__load_acquire(&c->seq);
    if (seq == h + 1) {
      if (__atomic_compare_exchange_n(&r->head, &h, h + 1, true, SC,
                                      __ATOMIC_RELAXED)) {
        conc__ann_happens_after(&r->tail);
        *out = c->item;
        conc__ann_happens_before(&r->head);
        conc__store_release(&c->seq, h + r->mask + 1);
        ec_wake(&r->nf, false);
        return 0;
      }
      backoff(&n); /* another consumer won: let the line settle */
    } else if ((int64_t)(seq - (h + 1)) < 0) {
      uint64_t t = conc__load_acquire(&r->tail);
      if (t & CLOSED)
        return CONC__QR_CLOSED;
      if (t != h) {
        backoff(&n); /* a producer is writing the cell (or h is stale) */
        continue;
      }
      if (!block)
        return CONC_EEMPTY;
      int rc = wait_step(r, &r->ne, EMPTY, &watched, dl, CONC_EEMPTY);
      if (rc)
        return rc;
    }
  }
}

/* ---- counts, task_done, join --------------------------------------------- */

/* tail - other from one consistent look; -1 when closed. */
static long span(conc__qring_t *r, uint64_t *other) {
  for (;;) {
    uint64_t t = LOAD(&r->tail);
    uint64_t o = LOAD(other);
    if (LOAD(&r->tail) != t)
      continue;
    if ((t | o) & CLOSED)
      return -1;
    return (int64_t)(t - o) > 0 ? (long)(t - o) : 0;
  }
}

long conc__qring_qsize(conc__qring_t *r) { return span(r, &r->head); }

long conc__qring_unfinished(conc__qring_t *r) { return span(r, &r->done); }

long conc__qring_maxsize(const conc__qring_t *r) { return (long)r->maxsize; }

int conc__qring_task_done(conc__qring_t *r) {
  uint64_t d = LOAD(&r->done);
  for (;;) {
    uint64_t t = LOAD(&r->tail);
    if ((t | d) & CLOSED)
      return CONC__QR_CLOSED;
    if ((int64_t)(t - d) <= 0)
      return CONC_ETASKDONE;
    conc__ann_happens_before(&r->done); /* to join */
    if (__atomic_compare_exchange_n(&r->done, &d, d + 1, false, SC, SC)) {
      if (t == d + 1) /* the tail only grows: maybe none left */
        ec_wake(&r->jn, true);
      return 0;
    }
  }
}

int conc__qring_join(conc__qring_t *r, conc_deadline_t dl) {
  for (;;) {
    long left = conc__qring_unfinished(r);
    if (left < 0)
      return CONC__QR_CLOSED;
    if (left == 0) {
      conc__ann_happens_after(&r->done);
      return 0;
    }
    if (dl != CONC_DEADLINE_NEVER && conc__now_ns() >= dl)
      return CONC_ETIMEDOUT;
    int rc = ec_sleep(r, &r->jn, UNFINISHED, dl);
    if (rc)
      return rc;
  }
}

/* ---- closing ------------------------------------------------------------- */

void conc__qring_close(conc__qring_t *r) {
  uint64_t t = POS(__atomic_fetch_or(&r->tail, CLOSED, SC));
  uint64_t h = POS(__atomic_fetch_or(&r->head, CLOSED, SC));
  __atomic_fetch_or(&r->done, CLOSED, SC);
  uint64_t cap = r->mask + 1;
  unsigned n = 0;
  /* Consumers that claimed a position before h give the cell back... */
  for (uint64_t p = h > cap ? h - cap : 0; p < h; p++)
    while ((int64_t)(conc__load_acquire(&r->cells[p & r->mask].seq) -
                     (p + cap)) < 0)
      backoff(&n);
  /* ...and producers that claimed one before t write their item. */
  for (uint64_t p = h; p < t; p++)
    while ((int64_t)(conc__load_acquire(&r->cells[p & r->mask].seq) - (p + 1)) <
           0)
      backoff(&n);
  ec_wake(&r->ne, true);
  ec_wake(&r->nf, true);
  ec_wake(&r->jn, true);
}

void conc__qring_reopen(conc__qring_t *r) {
  __atomic_fetch_and(&r->tail, ~CLOSED, SC);
  __atomic_fetch_and(&r->head, ~CLOSED, SC);
  __atomic_fetch_and(&r->done, ~CLOSED, SC);
}

void conc__qring_forget_sleepers(conc__qring_t *r) {
  conc__store_relaxed(&r->ne, 0);
  conc__store_relaxed(&r->nf, 0);
  conc__store_relaxed(&r->jn, 0);
}

long conc__qring_take_all(conc__qring_t *r, void (*fn)(void *item, void *arg),
                          void *arg) {
  uint64_t t = POS(LOAD(&r->tail)), h = POS(LOAD(&r->head));
  conc__ann_happens_after(&r->tail);
  for (uint64_t p = h; p < t; p++)
    fn(r->cells[p & r->mask].item, arg);
  __atomic_store_n(&r->head, t | CLOSED, SC);
  return (long)(t - POS(LOAD(&r->done)));
}
