/*
 * queue: Queue / LifoQueue / PriorityQueue (with Python 3.13 shutdown).
 * SimpleQueue is in squeue.c.
 *
 * Two paths. A FIFO queue, bounded or not, starts on its lock-free ring
 * (qring.c, where its protocol is): put, get, qsize, full, task_done,
 * join and unfinished_tasks take no lock there. Everything else (LIFO,
 * PRIORITY), and a ring queue from the first call that needs the mutex
 * path (a task waiter, set_maxsize, shutdown, destroy), is the mutex
 * path: leave_ring closes the ring under the mutex, moves its items (in
 * order) and its unfinished-task count into the store, and the queue
 * stays on the mutex path for good; a thread the ring turns away
 * (CONC__QR_CLOSED) takes the mutex and carries on there, with the
 * deadline it started with. `ring_live` and `ring` change only under the
 * mutex; `ring` is read without it (acquire), since a ring that grows is
 * replaced (grow_ring): a thread still on the old one finds it closed,
 * takes the mutex and tries again on the new one.
 *
 * Locking protocol of the mutex path: one internal mutex (conc__mu_t)
 * guarding the storage, counters and flags, and up to three sequence
 * conditions on that mutex, as CPython's queue.py has: not_empty
 * (getters), not_full (putters) and all_tasks_done (join). Every wait ends
 * in conc__wait on a monotonic deadline computed once, at the first wait.
 * Signals are recorded under the mutex and delivered after it is
 * released. No user code runs under the mutex except opts.free_item
 * (documented).
 *
 * Storage never shrinks, so a queue in steady state does not allocate: FIFO
 * and LIFO use a power-of-two ring of item pointers, PRIORITY a binary heap
 * of (item, insertion number) so that equal items keep insertion order. A
 * ring queue's store always has room for every cell of its ring (init and
 * grow_ring reserve it), so leaving the ring never allocates.
 *
 * Task waiters (janus-int.h): a task awaiting get or put is a record on
 * `aget` / `aput` under the same mutex (a ring queue leaves its ring
 * first). Whatever brings an item (put, a give-back) or room (get, a larger
 * maxsize) serves them there, handing the item over (getters) or storing
 * the waiting item (putters), and wakes them after unlocking, through the
 * record's own wake function: this file knows nothing of loops. Invariant
 * after every operation: no task getter waits while items are queued, no
 * task putter while there is room. A path with no task waiting pays one
 * test of one pointer.
 *
 * Fork: every live queue is on a registry list. The prepare handler takes
 * the registry lock and then each queue's mutex, and closes each live ring
 * (which waits for puts and gets that hold a position to finish their
 * cell), so no queue is caught mid-update by fork; the parent reopens the
 * rings, the child reopens them, forgets their sleepers and reinitialises
 * the mutexes and conditions (its waiters are gone).
 */
#include "conc/queue.h"

#include <limits.h>
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

#define QMAGIC 0x51554555u /* "QUEU" */
/* PRIORITY: insertion numbers start here, so that an item given back to
 * the front can take a smaller one than every item queued. */
#define FRONT_SEQ (UINT64_C(1) << 63)
#ifndef QSPIN_NS
#define QSPIN_NS 20000 /* see spin_for_change */
#endif

struct pent {
  void *item;
  uint64_t seq;
};

/* The storage shared by both queue types. */
struct store {
  void *buf;    /* void *[cap] ring, or struct pent[cap] heap */
  size_t cap;   /* a power of two for rings */
  size_t head;  /* ring: index of the oldest item */
  size_t count; /* items held */
  uint64_t next_seq;
  int kind;
  uint32_t front_n; /* PRIORITY: items given back to the front so far */
  int (*compare)(const void *a, const void *b, void *arg);
  void *arg; /* the options' user pointer, for compare and free_item */
};

struct fork_link {
  struct fork_link *prev, *next;
};

struct queue {
  conc__mu_t mu;
  uint32_t magic;
  conc__cv_t not_empty, not_full, all_done;
  struct store st;
  long maxsize;
  long unfinished;
  bool shutdown;
  void (*free_item)(void *item, void *arg);
  struct fork_link link;
  conc__awaiter_t *aget, *aput; /* task waiters, oldest first */
  conc__qring_t *ring;          /* FIFO: the lock-free ring */
  bool ring_live;               /* the ring holds the items (under mu) */
};

_Static_assert(sizeof(struct queue) <= sizeof(conc_queue_t), "conc_queue_t");

/* ---- fork registry ---------------------------------------------------- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fork_link reg_head = {&reg_head, &reg_head};
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static struct queue *of_link(struct fork_link *l) {
  return (struct queue *)(void *)((char *)l - offsetof(struct queue, link));
}

/* A live ring is closed too, so that no put or get is half done. */
static void fork_prepare(void) {
  pthread_mutex_lock(&reg_mu);
  for (struct fork_link *l = reg_head.next; l != &reg_head; l = l->next) {
    struct queue *s = of_link(l);
    conc__mu_lock(&s->mu);
    if (s->ring_live)
      conc__qring_close(s->ring);
  }
}

static void fork_parent(void) {
  for (struct fork_link *l = reg_head.next; l != &reg_head; l = l->next) {
    struct queue *s = of_link(l);
    if (s->ring_live)
      conc__qring_reopen(s->ring);
    conc__mu_unlock(&s->mu);
  }
  pthread_mutex_unlock(&reg_mu);
}

static void fork_child(void) {
  for (struct fork_link *l = reg_head.next; l != &reg_head; l = l->next) {
    struct queue *s = of_link(l);
    if (s->ring_live) {
      conc__qring_forget_sleepers(s->ring);
      conc__qring_reopen(s->ring);
    }
    conc__mu_reinit(&s->mu);
    conc__cv_reinit(&s->not_empty);
    conc__cv_reinit(&s->not_full);
    conc__cv_reinit(&s->all_done);
  }
  /* The forking thread took reg_mu in prepare and is the child's only
   * thread: it unlocks it (re-initialising a held mutex is what TSan
   * reports as a lock-order inversion in every child that exits). */
  pthread_mutex_unlock(&reg_mu);
}

static void reg_init(void) {
  conc__atfork_register(fork_prepare, fork_parent, fork_child);
}

static void reg_add(struct fork_link *l) {
  pthread_once(&reg_once, reg_init);
  pthread_mutex_lock(&reg_mu);
  l->next = reg_head.next;
  l->prev = &reg_head;
  reg_head.next->prev = l;
  reg_head.next = l;
  pthread_mutex_unlock(&reg_mu);
}

static void reg_remove(struct fork_link *l) {
  pthread_mutex_lock(&reg_mu);
  l->prev->next = l->next;
  l->next->prev = l->prev;
  pthread_mutex_unlock(&reg_mu);
}

/* ---- storage ---------------------------------------------------------- */

/* Stored atomically so that a look at the count without the mutex is
 * well defined. */
static void count_set(struct store *s, size_t n) {
  conc__ann_benign_race(&s->count, sizeof s->count); /* race detectors */
  conc__store_relaxed(&s->count, n);
}

static size_t entry_size(const struct store *s) {
  return s->kind == CONC_QUEUE_PRIORITY ? sizeof(struct pent) : sizeof(void *);
}

static int store_init(struct store *s, int kind,
                      int (*compare)(const void *, const void *, void *),
                      void *arg, size_t initial) {
  size_t cap = 16;
  while (cap < initial)
    cap <<= 1;
  memset(s, 0, sizeof(*s));
  s->kind = kind;
  s->compare = compare;
  s->arg = arg;
  s->next_seq = FRONT_SEQ;
  s->buf = malloc(cap * entry_size(s));
  if (!s->buf)
    return CONC_ENOMEM;
  s->cap = cap;
  return 0;
}

/* Double the storage, keeping the ring's order; CONC_ENOMEM leaves it as
 * it was. */
static int store_grow(struct store *s) {
  size_t esz = entry_size(s), ncap = s->cap * 2;
  if (ncap < s->cap)
    return CONC_ENOMEM;
  char *nb = malloc(ncap * esz);
  if (!nb)
    return CONC_ENOMEM;
  if (s->kind == CONC_QUEUE_PRIORITY) {
    memcpy(nb, s->buf, s->count * esz);
  } else {
    void **old = s->buf, **nw = (void **)nb;
    for (size_t i = 0; i < s->count; i++)
      nw[i] = old[(s->head + i) & (s->cap - 1)];
    s->head = 0;
  }
  free(s->buf);
  s->buf = nb;
  s->cap = ncap;
  return 0;
}

static bool pent_before(const struct store *s, const struct pent *a,
                        const struct pent *b) {
  int c = s->compare(a->item, b->item, s->arg);
  return c < 0 || (c == 0 && a->seq < b->seq);
}

static void heap_push(struct store *s, void *item, uint64_t seq) {
  struct pent *h = s->buf;
  struct pent e = {item, seq};
  size_t i = s->count;
  count_set(s, i + 1);
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!pent_before(s, &e, &h[p]))
      break;
    h[i] = h[p];
    i = p;
  }
  h[i] = e;
}

static void *heap_pop(struct store *s) {
  struct pent *h = s->buf;
  void *top = h[0].item;
  count_set(s, s->count - 1);
  struct pent last = h[s->count];
  size_t i = 0, n = s->count;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && pent_before(s, &h[c + 1], &h[c]))
      c++;
    if (!pent_before(s, &h[c], &last))
      break;
    h[i] = h[c];
    i = c;
  }
  if (n > 0)
    h[i] = last;
  return top;
}

static int store_push(struct store *s, void *item) {
  if (s->count == s->cap) {
    int rc = store_grow(s);
    if (rc)
      return rc;
  }
  if (s->kind == CONC_QUEUE_PRIORITY) {
    heap_push(s, item, s->next_seq++);
  } else {
    ((void **)s->buf)[(s->head + s->count) & (s->cap - 1)] = item;
    count_set(s, s->count + 1);
  }
  return 0;
}

/* Put an item back where the next get takes it from: the ring's head
 * (FIFO), the top (LIFO), or ahead of its equals (PRIORITY). */
static int store_push_front(struct store *s, void *item) {
  if (s->kind == CONC_QUEUE_LIFO)
    return store_push(s, item);
  if (s->count == s->cap) {
    int rc = store_grow(s);
    if (rc)
      return rc;
  }
  if (s->kind == CONC_QUEUE_PRIORITY) {
    heap_push(s, item, FRONT_SEQ - 1 - s->front_n++);
  } else {
    s->head = (s->head - 1) & (s->cap - 1);
    ((void **)s->buf)[s->head] = item;
    count_set(s, s->count + 1);
  }
  return 0;
}

static void *store_pop(struct store *s) {
  void **ring = s->buf;
  switch (s->kind) {
  case CONC_QUEUE_PRIORITY:
    return heap_pop(s);
  case CONC_QUEUE_LIFO:
    count_set(s, s->count - 1);
    return ring[(s->head + s->count) & (s->cap - 1)];
  default: {
    void *item = ring[s->head];
    s->head = (s->head + 1) & (s->cap - 1);
    count_set(s, s->count - 1);
    return item;
  }
  }
}

static void store_drop_all(struct store *s, void (*free_item)(void *, void *)) {
  while (s->count > 0) {
    void *item = store_pop(s);
    if (free_item)
      free_item(item, s->arg);
  }
}

/* ---- timeouts --------------------------------------------------------- */

/* Queue's rule (Q6): with block, a negative timeout is a ValueError; C's
 * CONC_FOREVER stands for Python's None. */
static bool bad_timeout(double timeout) {
  return isnan(timeout) || (timeout < 0 && timeout != CONC_FOREVER);
}

static int blocking_deadline(double timeout, conc_deadline_t *dl) {
  if (bad_timeout(timeout))
    return CONC_EINVAL;
  return conc_deadline_after(timeout, dl);
}

/* ---- Queue ------------------------------------------------------------ */

/* FIFO queues keep their items in a lock-free ring (qring.c) until
 * something only the mutex path does (task waiters, set_maxsize,
 * shutdown) moves them to the mutex-guarded store for good. A bounded
 * ring up to RING_MAX gets all its cells at init; an unbounded one starts
 * with RING_FIRST and a larger one with RING_MAX, and they grow by
 * doubling. */
#define RING_MAX 16384
#define RING_FIRST 64

static struct queue *Q(conc_queue_t *q) {
  struct queue *s = (struct queue *)(void *)q;
  return s && s->magic == QMAGIC ? s : NULL;
}

int conc_queue_init(conc_queue_t *q, const conc_queue_opts_t *opts) {
  static const conc_queue_opts_t defaults;
  if (!q)
    return CONC_EINVAL;
  if (!opts)
    opts = &defaults;
  if (opts->kind < CONC_QUEUE_FIFO || opts->kind > CONC_QUEUE_PRIORITY ||
      (opts->kind == CONC_QUEUE_PRIORITY && !opts->compare))
    return CONC_EINVAL;
  struct queue *s = (struct queue *)(void *)q;
  memset(s, 0, sizeof(*s));
  bool ring = opts->kind == CONC_QUEUE_FIFO;
  size_t initial = opts->maxsize <= 0     ? 16
                   : opts->maxsize < 1024 ? (size_t)opts->maxsize
                                          : 1024;
  if (ring) {
    size_t cells = opts->maxsize <= 0         ? RING_FIRST
                   : opts->maxsize > RING_MAX ? RING_MAX
                                              : (size_t)opts->maxsize;
    if (!(s->ring = conc__qring_new(opts->maxsize, cells)))
      return CONC_ENOMEM;
    initial = conc__qring_capacity(s->ring); /* the store takes it all */
  }
  int rc = store_init(&s->st, opts->kind, opts->compare, opts->arg, initial);
  if (rc) {
    conc__qring_free(s->ring);
    return rc;
  }
  s->ring_live = ring;
  /* Race detectors that do not see atomics: `ring` is read without the
   * mutex (ring_of); what it points to is ordered by qring's own
   * annotations. */
  conc__ann_benign_race(&s->ring, sizeof s->ring);
  s->maxsize = opts->maxsize;
  s->free_item = opts->free_item;
  s->mu.nospin = 1; /* 2 or more producers and consumers: see qsync-int.h */
  conc__ann_mutex_create(&s->mu, 0); /* race detectors: see destroy */
  s->magic = QMAGIC;
  reg_add(&s->link);
  return 0;
}

static void store_take(void *item, void *arg) {
  struct queue *s = arg;
  (void)store_push(&s->st, item); /* never grows: see grow_ring */
}

static conc__qring_t *ring_of(struct queue *s) {
  return conc__load_acquire(&s->ring);
}

/* After `seen` answered CONC__QR_GROW: unless another thread has already
 * replaced it (or the queue left its ring), close it and put a ring of
 * twice the cells in its place, after making the store as large, so that
 * leaving the ring still never allocates. 0: try again; CONC_ENOMEM with
 * the old ring open and unchanged. */
static int grow_ring(struct queue *s, conc__qring_t *seen) {
  int rc = 0;
  conc__mu_lock(&s->mu);
  if (s->ring_live && s->ring == seen) {
    while (rc == 0 && s->st.cap < 2 * conc__qring_capacity(seen))
      rc = store_grow(&s->st);
    conc__qring_t *next = NULL;
    if (rc == 0) {
      conc__qring_close(seen);
      if (!(next = conc__qring_grow(seen))) {
        conc__qring_reopen(seen);
        rc = CONC_ENOMEM;
      }
    }
    if (next)
      conc__store_release(&s->ring, next);
  }
  conc__mu_unlock(&s->mu);
  return rc;
}

/* With the mutex held: move the ring's items and task count to the store
 * for good; from then on every call takes the mutex path. */
static void leave_ring(struct queue *s) {
  if (!s->ring_live)
    return;
  conc__qring_close(s->ring);
  s->unfinished = conc__qring_take_all(s->ring, store_take, s);
  s->ring_live = false;
}

/* After the ring answered CONC__QR_CLOSED: take the mutex, true. False
 * (not held) when the ring is live again (it was closed for a fork): the
 * caller tries the ring again. */
static bool lock_mutex_path(struct queue *s) {
  conc__mu_lock(&s->mu);
  if (!s->ring_live)
    return true;
  conc__mu_unlock(&s->mu);
  sched_yield();
  return false;
}

void conc_queue_destroy(conc_queue_t *q) {
  struct queue *s = Q(q);
  if (!s)
    return;
  reg_remove(&s->link);
  conc__mu_lock(&s->mu);
  leave_ring(s);
  conc__mu_unlock(&s->mu);
  /* Race detectors: the mutex is gone (DRD keeps a lock it was told about
   * in stack memory until told otherwise). */
  conc__ann_mutex_destroy(&s->mu);
  s->magic = 0;
  store_drop_all(&s->st, s->free_item);
  free(s->st.buf);
  s->st.buf = NULL;
  conc__qring_free(s->ring);
  s->ring = NULL;
}

static bool q_is_full(const struct queue *s) {
  return s->maxsize > 0 && (long)s->st.count >= s->maxsize;
}

/* ---- task waiters ------------------------------------------------------ */

/* With the mutex held: serve task waiters while items (getters) and room
 * (putters) allow, chaining the served ones on *chain. */
static void serve(struct queue *s, conc__awaiter_t **chain) {
  for (;;) {
    if (s->aget && s->st.count > 0) {
      conc__awl_serve(&s->aget, chain, 0)->item = store_pop(&s->st);
    } else if (s->aput && !q_is_full(s)) {
      int rc = store_push(&s->st, s->aput->item);
      if (rc == 0)
        s->unfinished++;
      conc__awl_serve(&s->aput, chain, rc);
    } else {
      return;
    }
  }
}

/* The end of an operation that found task waiters (or may have made some
 * servable): serve them, signal a thread on cv (not_empty or not_full)
 * when what it waits for is still there, unlock, wake. Returns 0. */
static int unlock_serving(struct queue *s, conc__cv_t *cv) {
  conc__awaiter_t *chain = NULL;
  serve(s, &chain);
  bool left = cv == &s->not_empty ? s->st.count > 0 : !q_is_full(s);
  int wake = left ? conc__cv_signal(cv, 1) : 0;
  conc__mu_unlock(&s->mu);
  conc__cv_wake(cv, wake);
  conc__awl_wake_chain(chain);
  return 0;
}

/* Task waiters live on the mutex path: a ring queue leaves its ring at
 * the first one. */
int conc__queue_get_or_wait(conc_queue_t *q, conc__awaiter_t *w, void **out) {
  struct queue *s = Q(q);
  if (!s || !out || !w)
    return CONC_EINVAL;
  conc__mu_lock(&s->mu);
  leave_ring(s);
  if (s->st.count > 0) { /* then no task getter waits: none is passed */
    *out = store_pop(&s->st);
    return unlock_serving(s, &s->not_full);
  }
  int rc = CONC_ESHUTDOWN;
  if (!s->shutdown) {
    conc__awl_push(&s->aget, w);
    rc = CONC__AW_QUEUED;
  }
  conc__mu_unlock(&s->mu);
  return rc;
}

int conc__queue_put_or_wait(conc_queue_t *q, conc__awaiter_t *w, void *item) {
  struct queue *s = Q(q);
  if (!s || !w)
    return CONC_EINVAL;
  conc__mu_lock(&s->mu);
  leave_ring(s);
  int rc;
  if (s->shutdown) {
    rc = CONC_ESHUTDOWN;
  } else if (q_is_full(s)) { /* task putters only wait on a full queue */
    w->item = item;
    conc__awl_push(&s->aput, w);
    rc = CONC__AW_QUEUED;
  } else if ((rc = store_push(&s->st, item)) == 0) {
    s->unfinished++;
    return unlock_serving(s, &s->not_empty);
  }
  conc__mu_unlock(&s->mu);
  return rc;
}

bool conc__queue_leave(conc_queue_t *q, conc__awaiter_t *w, bool is_put,
                       bool give_back) {
  struct queue *s = Q(q);
  if (!s)
    return true; /* destroyed under a waiting task: nothing is left */
  conc__mu_lock(&s->mu);
  if (w->linked) {
    conc__awl_unlink(is_put ? &s->aput : &s->aget, w);
    conc__mu_unlock(&s->mu);
    return true;
  }
  /* Served. A getter's item goes back unless there is no memory to hold
   * it (then w->rc stays 0 and the task keeps the item). */
  if (give_back && !is_put && w->rc == 0 &&
      store_push_front(&s->st, w->item) == 0) {
    w->rc = CONC_ECANCELED;
    unlock_serving(s, &s->not_empty);
    return false;
  }
  conc__mu_unlock(&s->mu);
  return false;
}

/* ---- the mutex path ---------------------------------------------------- */

/* The deadline of a blocking call, taken once: at its first wait. */
#define DL_UNSET INT64_MIN

static conc_deadline_t deadline_of(double timeout, conc_deadline_t *dl) {
  if (*dl == DL_UNSET)
    conc_deadline_after(timeout, dl);
  return *dl;
}

/* Before parking, a blocked putter or getter watches the count for a
 * moment without the mutex, yielding its core: on a busy queue the other
 * side usually makes room (or brings an item) within that window, which
 * saves both the sleep and the other side's wake-up call. Returns with the
 * mutex held again; the caller re-checks everything. */
static void spin_for_change(struct queue *s, size_t count, conc_deadline_t dl) {
  int64_t now = conc__now_ns();
  int64_t end = now + QSPIN_NS;
  if (dl != CONC_DEADLINE_NEVER && dl < end)
    return; /* a short timeout: just wait */
  conc__mu_unlock(&s->mu);
  for (unsigned i = 1; conc__load_relaxed(&s->st.count) == count; i++) {
    if ((i & 7) == 0 && conc__now_ns() >= end)
      break;
    sched_yield();
  }
  conc__mu_lock(&s->mu);
}

/* With the mutex held: wait until there is room (Python's put loop). */
static int put_wait_room(struct queue *s, bool block, double timeout,
                         conc_deadline_t *dlp) {
  if (!block)
    return CONC_EFULL;
  conc_deadline_t dl = deadline_of(timeout, dlp);
  spin_for_change(s, s->st.count, dl);
  if (s->shutdown) /* shut down while we looked */
    return CONC_ESHUTDOWN;
  bool timed_out = false;
  while (q_is_full(s)) {
    if (timed_out)
      return CONC_EFULL;
    int r = conc__cv_wait_intr(&s->not_full, &s->mu, dl);
    if (r == CONC_EINTR)
      return r;
    timed_out = r == CONC_ETIMEDOUT;
    if (s->shutdown)
      return CONC_ESHUTDOWN;
  }
  return 0;
}

/* With the mutex held; unlocks it. */
static int put_locked(struct queue *s, void *item, bool block, double timeout,
                      conc_deadline_t *dl) {
  int rc = 0;
  if (s->shutdown)
    rc = CONC_ESHUTDOWN;
  else if (s->maxsize > 0 && block && bad_timeout(timeout))
    rc = CONC_EINVAL; /* Q6: raised even when there is room */
  else if (q_is_full(s))
    rc = put_wait_room(s, block, timeout, dl);
  if (rc == 0)
    rc = store_push(&s->st, item);
  int wake = 0;
  if (rc == 0) {
    s->unfinished++;
    if (__builtin_expect(s->aget != NULL, 0))
      return unlock_serving(s, &s->not_empty);
    wake = conc__cv_signal(&s->not_empty, 1);
  }
  conc__mu_unlock(&s->mu);
  conc__cv_wake(&s->not_empty, wake);
  return rc;
}

/* With the mutex held: wait for an item (Python's get loop). */
static int get_wait_item(struct queue *s, bool block, double timeout,
                         conc_deadline_t *dlp) {
  if (!block)
    return CONC_EEMPTY;
  conc_deadline_t dl = deadline_of(timeout, dlp);
  spin_for_change(s, 0, dl);
  if (s->shutdown && s->st.count == 0) /* shut down while we looked */
    return CONC_ESHUTDOWN;
  bool timed_out = false;
  while (s->st.count == 0) {
    if (timed_out)
      return CONC_EEMPTY;
    int r = conc__cv_wait_intr(&s->not_empty, &s->mu, dl);
    if (r == CONC_EINTR)
      return r;
    timed_out = r == CONC_ETIMEDOUT;
    if (s->shutdown && s->st.count == 0)
      return CONC_ESHUTDOWN;
  }
  return 0;
}

/* With the mutex held; unlocks it. */
static int get_locked(struct queue *s, void **out, bool block, double timeout,
                      conc_deadline_t *dl) {
  int rc = 0;
  if (s->shutdown && s->st.count == 0)
    rc = CONC_ESHUTDOWN;
  else if (block && bad_timeout(timeout))
    rc = CONC_EINVAL; /* Q6: raised even when an item is present */
  else if (s->st.count == 0)
    rc = get_wait_item(s, block, timeout, dl);
  int wake = 0;
  if (rc == 0) {
    *out = store_pop(&s->st);
    if (__builtin_expect(s->aput != NULL, 0))
      return unlock_serving(s, &s->not_full);
    wake = conc__cv_signal(&s->not_full, 1);
  }
  conc__mu_unlock(&s->mu);
  conc__cv_wake(&s->not_full, wake);
  return rc;
}

/* ---- API -------------------------------------------------------------- */

/* The ring's deadline is taken at its first wait, as the mutex path's. */
static conc_deadline_t ring_deadline(bool block, double timeout,
                                     conc_deadline_t *dl) {
  return block ? deadline_of(timeout, dl) : CONC_DEADLINE_NEVER;
}

int conc_queue_put(conc_queue_t *q, void *item, bool block, double timeout) {
  struct queue *s = Q(q);
  if (!s)
    return CONC_EINVAL;
  conc_deadline_t dl = DL_UNSET;
  /* Q6: a bad timeout is refused on a bounded queue only (the mutex path
   * says so); an unbounded ring never waits. A ring's maxsize never
   * changes (set_maxsize leaves the ring first). */
  conc__qring_t *r0 = ring_of(s);
  if (r0 &&
      !(block && bad_timeout(timeout) && conc__qring_maxsize(r0) < LONG_MAX)) {
    for (;;) {
      conc__qring_t *r = ring_of(s);
      /* Not full: no clock is read. */
      int rc = conc__qring_put(r, item, false, 0);
      if (rc == CONC_EFULL && block)
        rc = conc__qring_put(r, item, true, ring_deadline(block, timeout, &dl));
      if (rc == CONC__QR_GROW && (rc = grow_ring(s, r)) == 0)
        continue;
      if (rc != CONC__QR_CLOSED)
        return rc;
      if (lock_mutex_path(s))
        break;
    }
  } else {
    conc__mu_lock(&s->mu);
  }
  return put_locked(s, item, block, timeout, &dl);
}

int conc_queue_put_nowait(conc_queue_t *q, void *item) {
  return conc_queue_put(q, item, false, 0);
}

int conc_queue_get(conc_queue_t *q, void **out, bool block, double timeout) {
  struct queue *s = Q(q);
  if (!s || !out)
    return CONC_EINVAL;
  conc_deadline_t dl = DL_UNSET;
  if (ring_of(s) && !(block && bad_timeout(timeout))) {
    for (;;) {
      conc__qring_t *r = ring_of(s);
      int rc = conc__qring_get(r, out, false, 0);
      if (rc == CONC_EEMPTY && block)
        rc = conc__qring_get(r, out, true, ring_deadline(block, timeout, &dl));
      if (rc != CONC__QR_CLOSED)
        return rc;
      if (lock_mutex_path(s))
        break;
    }
  } else {
    conc__mu_lock(&s->mu);
  }
  return get_locked(s, out, block, timeout, &dl);
}

int conc_queue_get_nowait(conc_queue_t *q, void **out) {
  return conc_queue_get(q, out, false, 0);
}

long conc_queue_qsize(conc_queue_t *q) {
  struct queue *s = Q(q);
  if (!s)
    return -1;
  long n;
  if (ring_of(s)) {
    while ((n = conc__qring_qsize(ring_of(s))) < 0 && !lock_mutex_path(s))
      ;
    if (n >= 0)
      return n;
  } else {
    conc__mu_lock(&s->mu);
  }
  n = (long)s->st.count;
  conc__mu_unlock(&s->mu);
  return n;
}

bool conc_queue_empty(conc_queue_t *q) { return conc_queue_qsize(q) == 0; }

bool conc_queue_full(conc_queue_t *q) {
  struct queue *s = Q(q);
  if (!s)
    return false;
  if (ring_of(s)) {
    long n;
    conc__qring_t *r;
    while ((n = conc__qring_qsize(r = ring_of(s))) < 0 && !lock_mutex_path(s))
      ;
    if (n >= 0)
      return n >= conc__qring_maxsize(r);
  } else {
    conc__mu_lock(&s->mu);
  }
  bool full = q_is_full(s);
  conc__mu_unlock(&s->mu);
  return full;
}

long conc_queue_maxsize(conc_queue_t *q) {
  struct queue *s = Q(q);
  if (!s)
    return -1;
  conc__mu_lock(&s->mu);
  long m = s->maxsize;
  conc__mu_unlock(&s->mu);
  return m;
}

int conc_queue_set_maxsize(conc_queue_t *q, long maxsize) {
  struct queue *s = Q(q);
  if (!s)
    return CONC_EINVAL;
  conc__mu_lock(&s->mu);
  leave_ring(s);
  bool grew = maxsize <= 0 || (s->maxsize > 0 && maxsize > s->maxsize);
  s->maxsize = maxsize;
  conc__awaiter_t *chain = NULL;
  if (grew)
    serve(s, &chain);
  int wake = grew ? conc__cv_signal(&s->not_full, CONC__WAKE_ALL) : 0;
  conc__mu_unlock(&s->mu);
  conc__cv_wake(&s->not_full, wake);
  conc__awl_wake_chain(chain);
  return 0;
}

int conc_queue_task_done(conc_queue_t *q) {
  struct queue *s = Q(q);
  if (!s)
    return CONC_EINVAL;
  if (ring_of(s)) {
    int r;
    while ((r = conc__qring_task_done(ring_of(s))) == CONC__QR_CLOSED &&
           !lock_mutex_path(s))
      ;
    if (r != CONC__QR_CLOSED)
      return r;
  } else {
    conc__mu_lock(&s->mu);
  }
  int rc = 0, wake = 0;
  if (s->unfinished <= 0) {
    rc = CONC_ETASKDONE;
  } else if (--s->unfinished == 0) {
    wake = conc__cv_signal(&s->all_done, CONC__WAKE_ALL);
  }
  conc__mu_unlock(&s->mu);
  conc__cv_wake(&s->all_done, wake);
  return rc;
}

int conc_queue_join(conc_queue_t *q, double timeout) {
  struct queue *s = Q(q);
  if (!s)
    return CONC_EINVAL;
  conc_deadline_t dl;
  int rc = blocking_deadline(timeout, &dl);
  if (rc)
    return rc;
  if (ring_of(s)) {
    while ((rc = conc__qring_join(ring_of(s), dl)) == CONC__QR_CLOSED &&
           !lock_mutex_path(s))
      ;
    if (rc != CONC__QR_CLOSED)
      return rc;
    rc = 0;
  } else {
    conc__mu_lock(&s->mu);
  }
  bool timed_out = false;
  while (s->unfinished > 0) {
    if (timed_out) {
      rc = CONC_ETIMEDOUT;
      break;
    }
    int r = conc__cv_wait_intr(&s->all_done, &s->mu, dl);
    if (r == CONC_EINTR) {
      rc = r;
      break;
    }
    timed_out = r == CONC_ETIMEDOUT;
  }
  conc__mu_unlock(&s->mu);
  return rc;
}

long conc_queue_unfinished_tasks(conc_queue_t *q) {
  struct queue *s = Q(q);
  if (!s)
    return -1;
  long n;
  if (ring_of(s)) {
    while ((n = conc__qring_unfinished(ring_of(s))) < 0 && !lock_mutex_path(s))
      ;
    if (n >= 0)
      return n;
  } else {
    conc__mu_lock(&s->mu);
  }
  n = s->unfinished;
  conc__mu_unlock(&s->mu);
  return n;
}

int conc_queue_shutdown(conc_queue_t *q, bool immediate) {
  struct queue *s = Q(q);
  if (!s)
    return CONC_EINVAL;
  conc__mu_lock(&s->mu);
  leave_ring(s);
  s->shutdown = true;
  int wake_done = 0;
  if (immediate) {
    while (s->st.count > 0) {
      void *item = store_pop(&s->st);
      if (s->free_item)
        s->free_item(item, s->st.arg);
      if (s->unfinished > 0)
        s->unfinished--;
    }
    wake_done = conc__cv_signal(&s->all_done, CONC__WAKE_ALL);
  }
  int wake_get = conc__cv_signal(&s->not_empty, CONC__WAKE_ALL);
  int wake_put = conc__cv_signal(&s->not_full, CONC__WAKE_ALL);
  conc__awaiter_t *chain = NULL; /* task getters wait only when empty */
  while (s->aget)
    conc__awl_serve(&s->aget, &chain, CONC_ESHUTDOWN);
  while (s->aput)
    conc__awl_serve(&s->aput, &chain, CONC_ESHUTDOWN);
  conc__mu_unlock(&s->mu);
  conc__cv_wake(&s->all_done, wake_done);
  conc__cv_wake(&s->not_empty, wake_get);
  conc__cv_wake(&s->not_full, wake_put);
  conc__awl_wake_chain(chain);
  return 0;
}

bool conc_queue_is_shutdown(conc_queue_t *q) {
  struct queue *s = Q(q);
  if (!s)
    return false;
  conc__mu_lock(&s->mu);
  bool down = s->shutdown;
  conc__mu_unlock(&s->mu);
  return down;
}
