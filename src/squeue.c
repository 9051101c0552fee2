/*
 * SimpleQueue: an unbounded FIFO whose put never blocks.
 *
 * Locking protocol. Items live in a list of fixed-size chunks. Producers
 * append under the tail lock, consumers take under the head lock, so a
 * producer never waits for a consumer or the other way round (the two-lock
 * queue of Michael and Scott, with chunks instead of nodes). A producer
 * publishes each slot with a release store of the chunk's `published`
 * count; a consumer reads only slots below it. A consumer that empties a
 * chunk which has a successor moves on and puts the chunk on a small free
 * list (its own lock) for producers to reuse, so a queue in steady state
 * never allocates. No producer can still be touching that chunk: producers
 * only write the tail chunk, and the chunk has a successor.
 *
 * Blocking gets sleep on an event count (`sleep_word`: announced sleepers
 * in the high half, a sequence in the low half). A consumer announces
 * itself, re-checks the counts and parks; a producer that finds an
 * announced sleeper after publishing claims it and bumps the sequence in
 * one CAS, then wakes one thread. The announcement and the re-check (and
 * the publish and the look) are sequentially consistent, so either the
 * producer sees the sleeper or the sleeper sees the item.
 *
 * Task waiters (janus-int.h) are records on `aget` under their own lock,
 * aw_mu, counted in `nawait`. A getter takes aw_mu, raises nawait, looks
 * again for an item and only then links itself; a producer, after
 * publishing, reads nawait and, when it is not zero, takes aw_mu and hands
 * items to the oldest waiters while try_pop finds any. The raise and the
 * publish are sequentially consistent, and so are the look (looks_empty)
 * and the read of nawait: either the producer sees the waiter or the
 * waiter sees the item. A put with no task waiting pays one load of a
 * word on the line it already touches (sleep_word's). An item a cancelled
 * task had been handed goes back to the head (unpop, under head_mu, into
 * the slot it came from or a chunk put in front of the head).
 *
 * Fork: every live SimpleQueue is registered; the fork handlers take its
 * four locks before fork and release (parent) or reset (child) them.
 */
#include "conc/queue.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/time.h"
#include "init-int.h"
#include "janus-int.h"
#include "qsync-int.h"

#define SQMAGIC 0x53515545u /* "SQUE" */
#define CHUNK 1022          /* slots: a chunk is 8 KiB */
#ifndef SQ_SPIN
#define SQ_SPIN 200 /* see spin_for_item */
#endif
#define SPARE_MAX 4 /* free chunks kept per queue */
#define SLEEPER (1u << 16)
#define SEQ_MASK 0xffffu

struct chunk {
  struct chunk *next; /* atomic: set by the producer that fills this one */
  uint32_t published; /* slots filled, atomic */
  void *slots[CHUNK];
};

struct core {
  _Alignas(64) conc__mu_t tail_mu;
  struct chunk *tail;
  uint64_t enq; /* items ever put; written under tail_mu, read atomically */
  _Alignas(64) conc__mu_t head_mu;
  struct chunk *head;
  uint32_t head_idx;
  uint64_t deq; /* items ever taken; written under head_mu */
  _Alignas(64) uint32_t sleep_word;
  uint32_t nawait; /* task waiters on aget, atomic; changed under aw_mu */
  conc__mu_t aw_mu;
  conc__awaiter_t *aget; /* task getters, oldest first */
  _Alignas(64) conc__mu_t spare_mu;
  struct chunk *spare;
  int nspare;
  void (*free_item)(void *item, void *arg);
  void *arg;
  struct core *prev, *next; /* registry */
};

struct squeue {
  struct core *core;
  uint32_t magic;
};

_Static_assert(sizeof(struct squeue) <= sizeof(conc_simple_queue_t),
               "conc_simple_queue_t");

/* ---- registry and fork ----------------------------------------------- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct core reg_head = {.prev = &reg_head, .next = &reg_head};
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void) {
  pthread_mutex_lock(&reg_mu);
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    conc__mu_lock(&c->tail_mu);
    conc__mu_lock(&c->head_mu);
    conc__mu_lock(&c->spare_mu);
    conc__mu_lock(&c->aw_mu);
  }
}

static void fork_parent(void) {
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    conc__mu_unlock(&c->aw_mu);
    conc__mu_unlock(&c->spare_mu);
    conc__mu_unlock(&c->head_mu);
    conc__mu_unlock(&c->tail_mu);
  }
  pthread_mutex_unlock(&reg_mu);
}

static void fork_child(void) {
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    conc__mu_reinit(&c->tail_mu);
    conc__mu_reinit(&c->head_mu);
    conc__mu_reinit(&c->spare_mu);
    conc__mu_reinit(&c->aw_mu);
    c->sleep_word = 0; /* the sleepers are gone */
  }
  pthread_mutex_init(&reg_mu, NULL);
}

static void reg_init(void) {
  conc__atfork_register(fork_prepare, fork_parent, fork_child);
}

/* ---- chunks ----------------------------------------------------------------
 */

/* Race detectors (annotate-int.h): a chunk's link and count are atomics
 * that the other side reads without its lock; the items they publish are
 * annotated in push and try_pop. */
static void chunk_atomics(struct chunk *k) {
  conc__ann_benign_race(k, offsetof(struct chunk, slots));
}

static struct chunk *chunk_get(struct core *c) {
  conc__mu_lock(&c->spare_mu);
  struct chunk *k = c->spare;
  if (k) {
    c->spare = k->next;
    c->nspare--;
  }
  conc__mu_unlock(&c->spare_mu);
  if (!k && !(k = malloc(sizeof(*k))))
    return NULL;
  chunk_atomics(k);
  k->next = NULL;
  k->published = 0;
  return k;
}

static void chunk_put(struct core *c, struct chunk *k) {
  conc__mu_lock(&c->spare_mu);
  if (c->nspare < SPARE_MAX) {
    k->next = c->spare;
    c->spare = k;
    c->nspare++;
    k = NULL;
  }
  conc__mu_unlock(&c->spare_mu);
  free(k);
}

/* ---- the event count ----------------------------------------------------- */

/* After a publish: wake one announced sleeper, if any. */
static void wake_one(struct core *c) {
  uint32_t w = __atomic_load_n(&c->sleep_word, __ATOMIC_SEQ_CST);
  while (w >= SLEEPER) {
    uint32_t nw = (w / SLEEPER - 1) * SLEEPER | ((w + 1) & SEQ_MASK);
    if (conc__cas(&c->sleep_word, &w, nw)) {
      conc__wake(&c->sleep_word, 1, false);
      return;
    }
  }
}

static bool looks_empty(struct core *c) {
  return __atomic_load_n(&c->enq, __ATOMIC_SEQ_CST) ==
         __atomic_load_n(&c->deq, __ATOMIC_SEQ_CST);
}

/* Announce, re-check, park until woken or the deadline; take the
 * announcement back unless a producer claimed it. CONC_EINTR only when
 * taken back: a claimed wake-up was ours, so the caller looks again and
 * the interrupt is kept for the next wait. */
static int sleep_for_item(struct core *c, conc_deadline_t deadline) {
  uint32_t w = __atomic_add_fetch(&c->sleep_word, SLEEPER, __ATOMIC_SEQ_CST);
  int r = 0;
  if (looks_empty(c))
    r = conc__wait_intr(&c->sleep_word, w, deadline, false);
  uint32_t cur = conc__load_relaxed(&c->sleep_word);
  while ((cur & SEQ_MASK) == (w & SEQ_MASK) && cur >= SLEEPER)
    if (conc__cas(&c->sleep_word, &cur, cur - SLEEPER))
      return r;
  if (r == CONC_EINTR)
    conc__intr_keep();
  return 0;
}

/* ---- put and get ------------------------------------------------------------
 */

static int push(struct core *c, void *item) {
  conc__mu_lock(&c->tail_mu);
  struct chunk *t = c->tail;
  uint32_t n = t->published;
  if (n == CHUNK) {
    struct chunk *k = chunk_get(c);
    if (!k) {
      conc__mu_unlock(&c->tail_mu);
      return CONC_ENOMEM;
    }
    k->slots[0] = item;
    k->published = 1;
    /* Race detectors: what the producer wrote, the slot included, happens
     * before the try_pop that takes the item (one edge per queue). */
    conc__ann_happens_before(&c->enq);
    __atomic_store_n(&t->next, k, __ATOMIC_RELEASE);
    c->tail = k;
  } else {
    t->slots[n] = item;
    conc__ann_happens_before(&c->enq); /* as above */
    __atomic_store_n(&t->published, n + 1, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&c->enq, c->enq + 1, __ATOMIC_SEQ_CST);
  conc__mu_unlock(&c->tail_mu);
  return 0;
}

/* Take the oldest item, if any: 0 or CONC_EEMPTY. */
static int try_pop(struct core *c, void **out) {
  struct chunk *done = NULL;
  int rc = CONC_EEMPTY;
  conc__mu_lock(&c->head_mu);
  struct chunk *h = c->head;
  if (c->head_idx == CHUNK) {
    struct chunk *next = __atomic_load_n(&h->next, __ATOMIC_ACQUIRE);
    if (next) {
      done = h;
      c->head = h = next;
      c->head_idx = 0;
    }
  }
  if (c->head_idx < __atomic_load_n(&h->published, __ATOMIC_ACQUIRE)) {
    conc__ann_happens_after(&c->enq); /* the edge from push */
    *out = h->slots[c->head_idx++];
    __atomic_store_n(&c->deq, c->deq + 1, __ATOMIC_SEQ_CST);
    rc = 0;
  }
  conc__mu_unlock(&c->head_mu);
  if (done)
    chunk_put(c, done);
  return rc;
}

/* Put an item back at the head, into the slot it came from or at the end
 * of a fresh chunk linked in front of the head (spare_mu is a leaf lock,
 * so taking it under head_mu is safe). 0 or CONC_ENOMEM. */
static int unpop(struct core *c, void *item) {
  conc__mu_lock(&c->head_mu);
  struct chunk *h = c->head;
  if (c->head_idx == 0) {
    struct chunk *k = chunk_get(c);
    if (!k) {
      conc__mu_unlock(&c->head_mu);
      return CONC_ENOMEM;
    }
    __atomic_store_n(&k->next, h, __ATOMIC_RELEASE);
    __atomic_store_n(&k->published, CHUNK, __ATOMIC_RELEASE);
    c->head = h = k;
    c->head_idx = CHUNK;
  }
  h->slots[--c->head_idx] = item;
  __atomic_store_n(&c->deq, c->deq - 1, __ATOMIC_SEQ_CST);
  conc__mu_unlock(&c->head_mu);
  return 0;
}

/* ---- task waiters -------------------------------------------------------- */

/* After a publish that found nawait raised: hand items to the oldest task
 * waiters while there are any. */
static void serve_tasks(struct core *c) {
  conc__awaiter_t *chain = NULL;
  conc__mu_lock(&c->aw_mu);
  while (c->aget && try_pop(c, &c->aget->item) == 0) {
    conc__awl_serve(&c->aget, &chain, 0);
    __atomic_sub_fetch(&c->nawait, 1, __ATOMIC_SEQ_CST);
  }
  conc__mu_unlock(&c->aw_mu);
  conc__awl_wake_chain(chain);
}

static void published(struct core *c) {
  wake_one(c);
  if (__builtin_expect(__atomic_load_n(&c->nawait, __ATOMIC_SEQ_CST) != 0, 0))
    serve_tasks(c);
}

static struct core *CORE(conc_simple_queue_t *q);

int conc__simple_queue_get_or_wait(conc_simple_queue_t *q, conc__awaiter_t *w,
                                   void **out) {
  struct core *c = CORE(q);
  if (!c || !out || !w)
    return CONC_EINVAL;
  if (try_pop(c, out) == 0)
    return 0;
  conc__mu_lock(&c->aw_mu);
  __atomic_add_fetch(&c->nawait, 1, __ATOMIC_SEQ_CST);
  /* Raised before this look: a producer that missed it is seen here. */
  while (!looks_empty(c)) {
    if (try_pop(c, out) == 0) {
      __atomic_sub_fetch(&c->nawait, 1, __ATOMIC_SEQ_CST);
      conc__mu_unlock(&c->aw_mu);
      return 0;
    }
  }
  conc__awl_push(&c->aget, w);
  conc__mu_unlock(&c->aw_mu);
  return CONC__AW_QUEUED;
}

bool conc__simple_queue_leave(conc_simple_queue_t *q, conc__awaiter_t *w,
                              bool give_back) {
  struct core *c = CORE(q);
  if (!c)
    return true; /* destroyed under a waiting task: nothing is left */
  conc__mu_lock(&c->aw_mu);
  bool waiting = w->linked;
  if (waiting) {
    conc__awl_unlink(&c->aget, w);
    __atomic_sub_fetch(&c->nawait, 1, __ATOMIC_SEQ_CST);
  }
  conc__mu_unlock(&c->aw_mu);
  if (!waiting && give_back && w->rc == 0 && unpop(c, w->item) == 0) {
    w->rc = CONC_ECANCELED; /* back at the head (no memory: kept) */
    published(c);
  }
  return waiting;
}

/* ---- API -------------------------------------------------------------------
 */

static struct core *CORE(conc_simple_queue_t *q) {
  struct squeue *s = (struct squeue *)(void *)q;
  return s && s->magic == SQMAGIC ? s->core : NULL;
}

int conc_simple_queue_init(conc_simple_queue_t *q,
                           const conc_simple_queue_opts_t *opts) {
  if (!q)
    return CONC_EINVAL;
  size_t size = (sizeof(struct core) + 63) / 64 * 64;
  struct core *c = aligned_alloc(64, size);
  struct chunk *k = malloc(sizeof(*k));
  if (!c || !k) {
    free(c);
    free(k);
    return CONC_ENOMEM;
  }
  memset(c, 0, size);
  chunk_atomics(k);
  /* enq and deq are read without the other side's lock (looks_empty) */
  conc__ann_benign_race(&c->enq, sizeof c->enq);
  conc__ann_benign_race(&c->deq, sizeof c->deq);
  k->next = NULL;
  k->published = 0;
  c->head = c->tail = k;
  c->free_item = opts ? opts->free_item : NULL;
  c->arg = opts ? opts->arg : NULL;
  pthread_once(&reg_once, reg_init);
  pthread_mutex_lock(&reg_mu);
  c->next = reg_head.next;
  c->prev = &reg_head;
  reg_head.next->prev = c;
  reg_head.next = c;
  pthread_mutex_unlock(&reg_mu);
  struct squeue *s = (struct squeue *)(void *)q;
  s->core = c;
  s->magic = SQMAGIC;
  return 0;
}

void conc_simple_queue_destroy(conc_simple_queue_t *q) {
  struct core *c = CORE(q);
  if (!c)
    return;
  ((struct squeue *)(void *)q)->magic = 0;
  pthread_mutex_lock(&reg_mu);
  c->prev->next = c->next;
  c->next->prev = c->prev;
  pthread_mutex_unlock(&reg_mu);
  void *item;
  while (try_pop(c, &item) == 0)
    if (c->free_item)
      c->free_item(item, c->arg);
  free(c->head);
  while (c->spare) {
    struct chunk *k = c->spare;
    c->spare = k->next;
    free(k);
  }
  free(c);
}

int conc_simple_queue_put(conc_simple_queue_t *q, void *item) {
  struct core *c = CORE(q);
  if (!c)
    return CONC_EINVAL;
  int rc = push(c, item);
  if (rc == 0)
    published(c);
  return rc;
}

int conc_simple_queue_put_nowait(conc_simple_queue_t *q, void *item) {
  return conc_simple_queue_put(q, item);
}

/* Queue's rule (SQ1): with block, a negative timeout is a ValueError;
 * CONC_FOREVER stands for Python's None. */
static bool bad_timeout(double timeout) {
  return isnan(timeout) || (timeout < 0 && timeout != CONC_FOREVER);
}

/* Before sleeping, watch the counts for a moment: with producers running on
 * other cores an item usually arrives within that window. */
static void spin_for_item(struct core *c) {
  for (int i = 0; i < SQ_SPIN && looks_empty(c); i++)
    conc__cpu_relax();
}

int conc_simple_queue_get(conc_simple_queue_t *q, void **out, bool block,
                          double timeout) {
  struct core *c = CORE(q);
  if (!c || !out)
    return CONC_EINVAL;
  if (block && bad_timeout(timeout))
    return CONC_EINVAL;
  if (try_pop(c, out) == 0)
    return 0;
  if (!block)
    return CONC_EEMPTY;
  /* The deadline is taken once, when waiting starts. */
  conc_deadline_t dl;
  conc_deadline_after(timeout, &dl);
  spin_for_item(c);
  for (;;) {
    if (try_pop(c, out) == 0)
      return 0;
    if (dl != CONC_DEADLINE_NEVER && conc__now_ns() >= dl)
      return CONC_EEMPTY;
    if (sleep_for_item(c, dl) == CONC_EINTR)
      return CONC_EINTR;
  }
}

int conc_simple_queue_get_nowait(conc_simple_queue_t *q, void **out) {
  return conc_simple_queue_get(q, out, false, 0);
}

long conc_simple_queue_qsize(conc_simple_queue_t *q) {
  struct core *c = CORE(q);
  if (!c)
    return -1;
  uint64_t deq = __atomic_load_n(&c->deq, __ATOMIC_SEQ_CST);
  uint64_t enq = __atomic_load_n(&c->enq, __ATOMIC_SEQ_CST);
  return enq > deq ? (long)(enq - deq) : 0;
}

bool conc_simple_queue_empty(conc_simple_queue_t *q) {
  return conc_simple_queue_qsize(q) == 0;
}
