/*
 * SimpleQueue: an unbounded FIFO whose put never blocks.
 *
 * Locking protocol. Items live in a linked list of blocks of BCAP slots, as
 * in crossbeam's SegQueue. Producers claim a slot with one CAS on
 * `tail_index`, consumers with one CAS on `head_index`; the two indices sit
 * on separate cache lines, so the common put and get take no lock and a
 * producer never writes a line a consumer must own (or the other way
 * round) except the slot itself. An index counts positions: bit 0 of the
 * head index is HAS_NEXT (the head block has a successor, so the consumer
 * need not look at the tail), the rest is lap * LAP + offset. Offset BCAP
 * (the last position of a lap) has no slot: it marks "moving to the next
 * block", and whoever meets it waits for the mover.
 *
 * A slot has a state word: WRITE (the producer stored the item, release),
 * READ (the consumer has taken it), DESTROY (the block is being recycled
 * and this slot's consumer must finish that). A consumer that claimed a
 * slot whose producer has not written yet waits for WRITE (spinning, then
 * yielding). The consumer of a block's last slot recycles the block once
 * every earlier slot is READ; a slower consumer that finds DESTROY on its
 * slot carries the recycling on. Recycled blocks go to a small spare list
 * (spare_mu, once per block) that producers reuse, so a queue in steady
 * state never allocates. A block pointer is only dereferenced after a
 * successful CAS on the index that names it, so a stale thread never reads
 * a recycled block.
 *
 * The producer that claims a block's last slot installs the next block
 * (link, then tail_block, then tail_index) under tail_mu, and the consumer
 * that claims it moves the head under head_mu: once per BCAP items each,
 * so that fork (which takes both) never catches a block half installed.
 *
 * Blocking gets sleep on an event count (`sleep_word`: announced sleepers
 * in the high half, a sequence in the low half). A consumer announces
 * itself, re-checks the indices and parks; a producer that finds an
 * announced sleeper after publishing claims it and bumps the sequence in
 * one CAS, then wakes one thread. The claim CAS on tail_index, the
 * announcement, the re-check and the producer's look at sleep_word are
 * sequentially consistent, so either the producer sees the sleeper or the
 * sleeper sees the claimed slot.
 *
 * Items given back to the head (a cancelled task's, unpop) go to a small
 * stack under front_mu, counted in `nfront` on the consumers' line; a get
 * looks there first only when nfront is not zero.
 *
 * Task waiters (janus-int.h) are records on `aget` under their own lock,
 * aw_mu, counted in `nawait`. A getter takes aw_mu, raises nawait, looks
 * again for an item and only then links itself; a producer, after
 * publishing, reads nawait and, when it is not zero, takes aw_mu and hands
 * items to the oldest waiters while try_pop finds any. The raise and the
 * claim are sequentially consistent, and so are the look (looks_empty) and
 * the read of nawait: either the producer sees the waiter or the waiter
 * sees the item. A put with no task waiting pays one load of a word on
 * the line of sleep_word, which it reads anyway.
 *
 * Fork: every live SimpleQueue is registered; the fork handlers take its
 * locks before fork and release (parent) or reset (child) them. In the
 * child, a slot a vanished producer had claimed but not written becomes a
 * skip mark that gets pass over, and slots vanished consumers had claimed
 * count as read. A block whose recycling a vanished consumer owed is not
 * recycled (16 KiB, at most one per fork in flight).
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
#define LAP 1024u           /* index positions per block */
#define BCAP (LAP - 1)      /* slots per block: 16 KiB */
#define SHIFT 1
#define HAS_NEXT 1u
#define STEP ((uint64_t)1 << SHIFT)
#define WRITE 1u
#define READ 2u
#define DESTROY 4u
#ifndef SQ_SPIN
#define SQ_SPIN 200 /* see spin_for_item */
#endif
#define SPARE_MAX 4 /* free blocks kept per queue */
#define SLEEPER (1u << 16)
#define SEQ_MASK 0xffffu

struct slot {
  void *item;
  uint32_t state;
};

struct block {
  /* aligned: aligned_alloc wants a size that is a multiple of 64 */
  _Alignas(64) struct block *next; /* atomic: set by the producer that
                                      fills this one */
  struct slot slots[BCAP];
};

struct core {
  _Alignas(64) uint64_t tail_index; /* producers' line */
  struct block *tail_block;
  conc__mu_t tail_mu;               /* installing the next block */
  _Alignas(64) uint64_t head_index; /* consumers' line */
  struct block *head_block;
  uint32_t nfront;    /* items on `front`, atomic */
  conc__mu_t head_mu; /* moving to the next block */
  _Alignas(64) uint32_t sleep_word;
  uint32_t nawait; /* task waiters on aget, atomic; changed under aw_mu */
  conc__mu_t aw_mu;
  conc__awaiter_t *aget; /* task getters, oldest first */
  _Alignas(64) conc__mu_t spare_mu;
  struct block *spare;
  int nspare;
  conc__mu_t front_mu;
  void **front; /* items given back, the next to take last */
  size_t front_cap;
  uint64_t skipped; /* skip marks left by a fork; see fork_child */
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

/* What a fork child stores in a slot whose producer vanished. */
static char skip_mark;

/* ---- waiting for another thread's next step ------------------------------ */

/* Spin a little, then yield: the thread we wait for may have no core. */
static void backoff(unsigned *n) {
  if (++*n < 64)
    conc__cpu_relax();
  else
    sched_yield();
}

static void wait_state(struct slot *s, uint32_t bit) {
  unsigned n = 0;
  while (!(conc__load_acquire(&s->state) & bit))
    backoff(&n);
}

static struct block *wait_next(struct block *b) {
  unsigned n = 0;
  struct block *next;
  while (!(next = conc__load_acquire(&b->next)))
    backoff(&n);
  return next;
}

/* ---- blocks -------------------------------------------------------------- */

/* Race detectors that do not see atomics (valgrind's): the link and the
 * slot states are atomics; the items are ordered by the happens-before
 * annotations in push, pop_seg and block_release. */
static void block_atomics(struct block *b) {
  conc__ann_benign_race(b, sizeof(*b));
}

static struct block *block_get(struct core *c) {
  conc__mu_lock(&c->spare_mu);
  struct block *b = c->spare;
  if (b) {
    c->spare = b->next;
    c->nspare--;
  }
  conc__mu_unlock(&c->spare_mu);
  if (!b && !(b = aligned_alloc(64, sizeof(struct block))))
    return NULL;
  memset(b, 0, sizeof(*b));
  block_atomics(b);
  return b;
}

static void block_put(struct core *c, struct block *b) {
  conc__mu_lock(&c->spare_mu);
  if (c->nspare < SPARE_MAX) {
    b->next = c->spare;
    c->spare = b;
    c->nspare++;
    b = NULL;
  }
  conc__mu_unlock(&c->spare_mu);
  free(b);
}

/* Recycle b once the consumers of its slots from `start` on are done; a
 * consumer still reading gets DESTROY and carries on from its slot. The
 * last slot is the caller's own. */
static void block_release(struct core *c, struct block *b, uint32_t start) {
  for (uint32_t i = start; i < BCAP - 1; i++) {
    uint32_t *st = &b->slots[i].state;
    if (!(conc__load_acquire(st) & READ) &&
        !(conc__fetch_or(st, DESTROY) & READ))
      return;
  }
  conc__ann_happens_after(&c->head_index); /* race detectors: the READs */
  block_put(c, b);
}

/* ---- indices --------------------------------------------------------------- */

/* Slots before position p (an index without HAS_NEXT). */
static uint64_t slots_before(uint64_t index) {
  uint64_t p = index >> SHIFT;
  uint64_t off = p % LAP;
  return p / LAP * BCAP + (off < BCAP ? off : BCAP);
}

/* Items in the blocks (claimed slots not yet claimed by a consumer), from
 * one consistent look at both indices. */
static uint64_t seg_count(struct core *c) {
  for (;;) {
    uint64_t t = __atomic_load_n(&c->tail_index, __ATOMIC_SEQ_CST);
    uint64_t h = __atomic_load_n(&c->head_index, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->tail_index, __ATOMIC_SEQ_CST) == t)
      return slots_before(t) - slots_before(h);
  }
}

/* Tail first: a put that this look misses finds the sleeper announced
 * (sleep_for_item) or the task waiter counted (get_or_wait). */
static bool looks_empty(struct core *c) {
  uint64_t t = __atomic_load_n(&c->tail_index, __ATOMIC_SEQ_CST);
  uint64_t h = __atomic_load_n(&c->head_index, __ATOMIC_SEQ_CST);
  return slots_before(t) == slots_before(h) &&
         __atomic_load_n(&c->nfront, __ATOMIC_SEQ_CST) == 0;
}

/* ---- put ----------------------------------------------------------------- */

/* The claim of a block's last slot, under tail_mu: link the next block,
 * then publish it as the tail. */
static bool claim_last(struct core *c, uint64_t *t, struct block *b,
                       struct block *next) {
  conc__mu_lock(&c->tail_mu);
  bool ok = __atomic_compare_exchange_n(&c->tail_index, t, *t + STEP, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE);
  if (ok) {
    conc__store_release(&b->next, next);
    conc__store_release(&c->tail_block, next);
    __atomic_store_n(&c->tail_index, *t + 2 * STEP, __ATOMIC_SEQ_CST);
  }
  conc__mu_unlock(&c->tail_mu);
  return ok;
}

static int push(struct core *c, void *item) {
  struct block *next = NULL;
  unsigned n = 0;
  uint64_t t = conc__load_acquire(&c->tail_index);
  struct block *b = conc__load_acquire(&c->tail_block);
  for (;;) {
    uint32_t off = (uint32_t)((t >> SHIFT) % LAP);
    bool ok;
    if (off == BCAP) { /* another producer is installing the next block */
      backoff(&n);
      t = conc__load_acquire(&c->tail_index);
      b = conc__load_acquire(&c->tail_block);
      continue;
    }
    if (off + 1 == BCAP) {
      if (!next && !(next = block_get(c)))
        return CONC_ENOMEM; /* nothing claimed: nothing changed */
      ok = claim_last(c, &t, b, next);
      if (ok)
        next = NULL;
    } else {
      ok = __atomic_compare_exchange_n(&c->tail_index, &t, t + STEP, true,
                                       __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE);
    }
    if (!ok) {
      backoff(&n); /* another producer won: let the line settle */
      b = conc__load_acquire(&c->tail_block);
      continue;
    }
    struct slot *s = &b->slots[off];
    s->item = item;
    /* Race detectors: the item happens before the get that takes it. */
    conc__ann_happens_before(&c->tail_index);
    __atomic_fetch_or(&s->state, WRITE, __ATOMIC_RELEASE);
    if (next)
      block_put(c, next); /* another producer installed the block */
    return 0;
  }
}

/* ---- get ----------------------------------------------------------------- */

/* The claim of a block's last slot, under head_mu: move the head to the
 * next block (which the slot's producer linked before it gave up the
 * position). */
static bool claim_last_read(struct core *c, uint64_t *h, uint64_t nh,
                            struct block *b) {
  conc__mu_lock(&c->head_mu);
  bool ok = __atomic_compare_exchange_n(&c->head_index, h, nh, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE);
  if (ok) {
    struct block *next = wait_next(b);
    uint64_t ni = (nh & ~(uint64_t)HAS_NEXT) + STEP;
    if (conc__load_acquire(&next->next))
      ni |= HAS_NEXT;
    conc__store_release(&c->head_block, next);
    __atomic_store_n(&c->head_index, ni, __ATOMIC_SEQ_CST);
  }
  conc__mu_unlock(&c->head_mu);
  return ok;
}

/* Take the oldest item from the blocks, if any: 0 or CONC_EEMPTY. */
static int pop_seg(struct core *c, void **out) {
  unsigned n = 0;
  uint64_t h = conc__load_acquire(&c->head_index);
  struct block *b = conc__load_acquire(&c->head_block);
  for (;;) {
    uint32_t off = (uint32_t)((h >> SHIFT) % LAP);
    if (off == BCAP) { /* another consumer is moving to the next block */
      backoff(&n);
      h = conc__load_acquire(&c->head_index);
      b = conc__load_acquire(&c->head_block);
      continue;
    }
    uint64_t nh = h + STEP;
    if (!(nh & HAS_NEXT)) {
      uint64_t t = __atomic_load_n(&c->tail_index, __ATOMIC_SEQ_CST);
      if (h >> SHIFT == t >> SHIFT)
        return CONC_EEMPTY;
      if ((h >> SHIFT) / LAP != (t >> SHIFT) / LAP)
        nh |= HAS_NEXT;
    }
    bool ok =
        off + 1 == BCAP
            ? claim_last_read(c, &h, nh, b)
            : __atomic_compare_exchange_n(&c->head_index, &h, nh, true,
                                          __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE);
    if (!ok) {
      backoff(&n); /* another consumer won: let the line settle */
      b = conc__load_acquire(&c->head_block);
      continue;
    }
    struct slot *s = &b->slots[off];
    wait_state(s, WRITE);
    conc__ann_happens_after(&c->tail_index); /* the edge from push */
    *out = s->item;
    conc__ann_happens_before(&c->head_index); /* to block_release */
    if (off + 1 == BCAP)
      block_release(c, b, 0);
    else if (conc__fetch_or(&s->state, READ) & DESTROY)
      block_release(c, b, off + 1);
    return 0;
  }
}

static int pop_front(struct core *c, void **out) {
  int rc = CONC_EEMPTY;
  conc__mu_lock(&c->front_mu);
  uint32_t n = conc__load_relaxed(&c->nfront);
  if (n > 0) {
    *out = c->front[n - 1];
    __atomic_store_n(&c->nfront, n - 1, __ATOMIC_SEQ_CST);
    rc = 0;
  }
  conc__mu_unlock(&c->front_mu);
  return rc;
}

/* Take the oldest item, if any: 0 or CONC_EEMPTY. */
static int try_pop(struct core *c, void **out) {
  for (;;) {
    if (__builtin_expect(conc__load_acquire(&c->nfront) != 0, 0) &&
        pop_front(c, out) == 0)
      return 0;
    int rc = pop_seg(c, out);
    if (__builtin_expect(rc != 0 || *out != &skip_mark, 1))
      return rc;
    __atomic_sub_fetch(&c->skipped, 1, __ATOMIC_RELAXED);
  }
}

/* Put an item back at the head: 0 or CONC_ENOMEM. */
static int unpop(struct core *c, void *item) {
  int rc = 0;
  conc__mu_lock(&c->front_mu);
  uint32_t n = conc__load_relaxed(&c->nfront);
  if (n == c->front_cap) {
    size_t cap = c->front_cap ? 2 * c->front_cap : 4;
    void **f = realloc(c->front, cap * sizeof(void *));
    if (f) {
      c->front = f;
      c->front_cap = cap;
    } else {
      rc = CONC_ENOMEM;
    }
  }
  if (rc == 0) {
    c->front[n] = item;
    __atomic_store_n(&c->nfront, n + 1, __ATOMIC_SEQ_CST);
  }
  conc__mu_unlock(&c->front_mu);
  return rc;
}

/* ---- registry and fork ----------------------------------------------- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct core reg_head = {.prev = &reg_head, .next = &reg_head};
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void) {
  pthread_mutex_lock(&reg_mu);
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    conc__mu_lock(&c->tail_mu); /* before head_mu: see claim_last_read */
    conc__mu_lock(&c->head_mu);
    conc__mu_lock(&c->aw_mu);
    conc__mu_lock(&c->front_mu);
    conc__mu_lock(&c->spare_mu);
  }
}

static void fork_parent(void) {
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    conc__mu_unlock(&c->spare_mu);
    conc__mu_unlock(&c->front_mu);
    conc__mu_unlock(&c->aw_mu);
    conc__mu_unlock(&c->head_mu);
    conc__mu_unlock(&c->tail_mu);
  }
  pthread_mutex_unlock(&reg_mu);
}

/* In the child, the only thread: mark the slots vanished consumers had
 * claimed in the head block as read, and turn the slots vanished producers
 * had claimed but not written into skip marks. */
static void repair(struct core *c) {
  struct block *b = c->head_block;
  uint64_t h = c->head_index & ~(uint64_t)HAS_NEXT;
  uint32_t off = (uint32_t)((h >> SHIFT) % LAP);
  for (uint32_t i = 0; i < off; i++)
    b->slots[i].state |= READ;
  for (uint64_t p = h >> SHIFT; p < c->tail_index >> SHIFT; p++) {
    if (p % LAP == BCAP) {
      b = b->next;
      continue;
    }
    struct slot *s = &b->slots[p % LAP];
    if (!(s->state & WRITE)) {
      s->item = &skip_mark;
      s->state |= WRITE;
      c->skipped++;
    }
  }
}

static void fork_child(void) {
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    conc__mu_reinit(&c->tail_mu);
    conc__mu_reinit(&c->head_mu);
    conc__mu_reinit(&c->aw_mu);
    conc__mu_reinit(&c->front_mu);
    conc__mu_reinit(&c->spare_mu);
    (void)conc__xchg(&c->sleep_word, 0); /* the sleepers are gone */
    repair(c);
  }
  /* The forking thread took reg_mu in prepare and is the child's only
   * thread: it unlocks it (re-initialising a held mutex leaves race
   * detectors thinking it is still held). */
  pthread_mutex_unlock(&reg_mu);
}

static void reg_init(void) {
  conc__atfork_register(fork_prepare, fork_parent, fork_child);
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
  struct block *b = aligned_alloc(64, sizeof(struct block));
  if (!c || !b) {
    free(c);
    free(b);
    return CONC_ENOMEM;
  }
  memset(c, 0, size);
  memset(b, 0, sizeof(*b));
  block_atomics(b);
  /* read without the other side's lock (seg_count, try_pop) */
  conc__ann_benign_race(&c->tail_index, 2 * sizeof(void *));
  conc__ann_benign_race(&c->head_index, 3 * sizeof(void *));
  c->head_block = c->tail_block = b;
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
  for (struct block *b = c->head_block, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  while (c->spare) {
    struct block *b = c->spare;
    c->spare = b->next;
    free(b);
  }
  free(c->front);
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

/* Before sleeping, watch the tail for a moment: with producers running on
 * other cores an item usually arrives within that window. One load of
 * the producers' line a round (race detectors make each atomic costly). */
static void spin_for_item(struct core *c) {
  uint64_t t = conc__load_relaxed(&c->tail_index);
  for (int i = 0; i < SQ_SPIN && conc__load_relaxed(&c->tail_index) == t; i++)
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
  uint64_t n = seg_count(c) + __atomic_load_n(&c->nfront, __ATOMIC_SEQ_CST);
  uint64_t skipped = __atomic_load_n(&c->skipped, __ATOMIC_RELAXED);
  return n > skipped ? (long)(n - skipped) : 0;
}

bool conc_simple_queue_empty(conc_simple_queue_t *q) {
  return conc_simple_queue_qsize(q) == 0;
}
