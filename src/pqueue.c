/*
 * Process queues: a ring of byte messages in MAP_SHARED memory.
 *
 * Locking protocol: one process-shared Lock (sh->lock) guards the ring and
 * every counter. Blocking waits drop the lock and sleep on the sequence
 * word of a wait queue with the platform wait (shared): items (bumped by
 * every put, waited on by getters), room (bumped by every get, waited on by
 * putters) and done (bumped when the last task is done, waited on by join).
 * A waiter reads the word under the lock, so no change after it let go is
 * missed. A queue's sleepers count and `until` (the latest end of a sleep
 * on it) only save wake-up system calls: a waker calls the kernel only
 * while someone may sleep, and a sleeper killed asleep leaves the count
 * high but `until` runs out within one slice, so it costs no wake-ups
 * after that.
 *
 * Crash safety: each mutation is bracketed by begin()/commit(): begin saves
 * head, tail, count, puts and dones to an undo record and raises
 * in_progress; commit lowers it. A process killed in between leaves the
 * lock owner-dead; the next locker sees in_progress, restores the saved
 * fields (the bytes it may have written lie in free space) and marks the
 * lock consistent, so the queue is exactly as before the interrupted call.
 * qsize() reads the saved count while in_progress is up: it only ever
 * reports committed states.
 *
 * No sleeper is stranded by a death, whoever dies where:
 * - a mutation wakes its sleepers before it commits, with the lock held: a
 *   process killed before the wake dies uncommitted (its change is rolled
 *   back, so nobody was owed a wake), one killed after it has woken them;
 * - a woken sleeper killed before it took the lock swallows a wake-up meant
 *   for a live one; and a process killed inside the lock leaves the rollback
 *   to the next locker. So a sleeper never sleeps longer than PEER_SLICE_NS
 *   at a time: it then takes the lock (recovering it from a dead holder, the
 *   way pshared locks notice theirs) and looks at the queue again.
 * A get is thus undone up to its commit, the instant before it releases the
 * lock: a consumer killed earlier leaves its item first in the queue.
 *
 * Ring: positions are monotonic byte counters (pos % cap in the ring). A
 * message is an 8-byte header (its length) and the payload, padded to 8. A
 * message that does not fit before the end of the ring is preceded by a
 * WRAP header filling the rest.
 */
#include "conc/pqueue.h"

#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "conc/error.h"
#include "conc/sync.h"
#include "conc/time.h"
#include "platform-int.h"
#include "pqueue-int.h"

#define WRAP UINT32_MAX
#define SPIN 200
#define YIELD_NS 50000         /* how long a waiter yields before it sleeps */
#define PEER_SLICE_NS 20000000 /* longest sleep between looks at the queue */

void (*conc__pqueue_hook)(enum conc__pq_point point);

#define HOOK(point)                                                            \
  do {                                                                         \
    if (__builtin_expect(conc__pqueue_hook != NULL, 0))                        \
      conc__pqueue_hook(point);                                                \
  } while (0)

/* count is read without the lock (qsize): its stores are atomic. */
struct undo {
  uint64_t head, tail, count, puts, dones;
};

struct waitq {
  uint32_t seq, sleepers;
  int64_t until; /* monotonic ns: no sleep on seq lasts beyond it */
};

struct conc__pq {
  conc_lock_t lock;
  struct waitq items, room, done;
  int32_t maxsize;
  uint32_t joinable;
  uint32_t in_progress;
  uint64_t cap;
  struct undo cur, saved;
  _Alignas(64) unsigned char ring[];
};

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static void set_count(struct undo *u, uint64_t v) {
  __atomic_store_n(&u->count, v, __ATOMIC_RELEASE);
}

static void copy_undo(struct undo *to, const struct undo *from) {
  to->head = from->head;
  to->tail = from->tail;
  to->puts = from->puts;
  to->dones = from->dones;
  set_count(to, from->count);
}

/* ---- locking and journal ---------------------------------------------- */

static void wake_all(struct conc__pq *s) {
  struct waitq *all[] = {&s->items, &s->room, &s->done};
  for (int k = 0; k < 3; k++) {
    conc__fetch_add(&all[k]->seq, 1);
    conc__wake(&all[k]->seq, CONC__WAKE_ALL, true);
  }
}

/* Recovery is idempotent: a recoverer killed half-way leaves in_progress
 * up and the saved record intact for the next one. */
static int qlock(struct conc__pq *s) {
  int rc = conc_lock_acquire(&s->lock);
  if (rc == CONC_EOWNERDEAD) {
    if (__atomic_load_n(&s->in_progress, __ATOMIC_ACQUIRE)) {
      copy_undo(&s->cur, &s->saved);
      __atomic_store_n(&s->in_progress, 0, __ATOMIC_RELEASE);
    }
    conc_lock_mark_consistent(&s->lock);
    wake_all(s); /* the dead may have been due to wake someone */
    rc = 0;
  }
  return rc;
}

static void qunlock(struct conc__pq *s) { conc_lock_release(&s->lock); }

/* Only store order matters here (the undo record before the flag, the flag
 * before any change, every change before the flag is lowered): a process
 * that dies has its earlier stores visible to the one that recovers. The
 * raise is an exchange, whose acquire half keeps the changes after it; the
 * lowering is a release store. */
static void begin(struct conc__pq *s) {
  copy_undo(&s->saved, &s->cur);
  __atomic_exchange_n(&s->in_progress, 1, __ATOMIC_ACQ_REL);
}

static void commit(struct conc__pq *s) {
  __atomic_store_n(&s->in_progress, 0, __ATOMIC_RELEASE);
}

/* Then, for up to YIELD_NS, watch *seq yielding the core between looks: a
 * peer sharing this CPU, or one that is busy putting or getting, answers
 * within that window far more often than not, which saves this side a
 * sleep and the peer a wake-up system call for every item. */
static void yield_while(const uint32_t *seq, uint32_t v, conc_deadline_t dl) {
  int64_t end = conc__now_ns() + YIELD_NS;
  if (dl != CONC_DEADLINE_NEVER && dl < end)
    return; /* a short timeout: just wait */
  for (unsigned i = 1; conc__load_acquire(seq) == v; i++) {
    if ((i & 7) == 0 && conc__now_ns() >= end)
      break;
    sched_yield();
  }
}

/* Announce a sleep on wq that ends by `end`: the count first, then
 * `until` raised to `end` if that is later (both sequentially consistent,
 * as the waker's bump of seq and its reads of them are). */
static void sleeping(struct waitq *wq, int64_t end) {
  __atomic_fetch_add(&wq->sleepers, 1, __ATOMIC_SEQ_CST);
  int64_t u = __atomic_load_n(&wq->until, __ATOMIC_SEQ_CST);
  while (u < end &&
         !__atomic_compare_exchange_n(&wq->until, &u, end, false,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    ;
}

/* Sleep on wq->seq with the lock dropped, for one slice at most; returns
 * with the lock held (or a lock error or CONC_EINTR without it).
 * `*polled`: the slice ended with seq unchanged, so the next wait need not
 * spin again first. */
static int wait_on(struct conc__pq *s, struct waitq *wq, conc_deadline_t dl,
                   bool *polled) {
  uint32_t v = conc__load_acquire(&wq->seq);
  qunlock(s);
  /* A peer on another CPU usually answers within a few microseconds:
   * spin briefly before paying for a sleep and a wake-up. Only a sleeper
   * is announced, so a spinning one costs the peer no wake call; the
   * announcement comes before the sleep compares seq, and the peer bumps
   * seq before it reads the announcement, so one of the two always sees
   * the other. */
  if (!*polled) {
    for (int k = 0; k < SPIN && conc__load_acquire(&wq->seq) == v; k++)
      conc__cpu_relax();
    yield_while(&wq->seq, v, dl);
  }
  *polled = false;
  if (conc__load_acquire(&wq->seq) == v) {
    conc_deadline_t end = conc__now_ns() + PEER_SLICE_NS;
    end = dl < end ? dl : end;
    sleeping(wq, end);
    int rc = conc__wait_intr(&wq->seq, v, end, true);
    conc__fetch_sub(&wq->sleepers, 1);
    if (rc == CONC_EINTR) {
      /* no wake was spent on us: leave, the lock stays dropped */
      if (conc__load_acquire(&wq->seq) == v)
        return rc;
      conc__intr_keep(); /* woken too: look again, report it next time */
      rc = 0;
    }
    if (rc == 0)
      HOOK(CONC__PQ_WOKEN);
    *polled = rc != 0;
  }
  return qlock(s);
}

/* Wait with the lock held until ready(s, arg). 0 with the lock held;
 * `expired` without it once the deadline has passed; a lock error. */
static int wait_until(struct conc__pq *s,
                      bool (*ready)(const struct conc__pq *, size_t),
                      size_t arg, struct waitq *wq, conc_deadline_t dl,
                      int expired) {
  bool polled = false;
  while (!ready(s, arg)) {
    if (conc__now_ns() >= dl) {
      qunlock(s);
      return expired;
    }
    int rc = wait_on(s, wq, dl, &polled);
    if (rc)
      return rc;
  }
  return 0;
}

/* Called with the lock held, before the commit (see the top). A sleep
 * that ended by `until` needs no wake: its sleeper is up, or its own timer
 * is about to get it up, and it looks at the queue then. */
static void signal_wq(struct waitq *wq, int n) {
  __atomic_fetch_add(&wq->seq, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&wq->sleepers, __ATOMIC_SEQ_CST) &&
      __atomic_load_n(&wq->until, __ATOMIC_SEQ_CST) > conc__now_ns()) {
    HOOK(CONC__PQ_WAKING);
    conc__wake(&wq->seq, n, true);
  }
}

/* ---- setup ------------------------------------------------------------- */

int conc_pqueue_init(conc_pqueue_t *q, int maxsize,
                     const conc_pqueue_opts_t *opts) {
  static const conc_pqueue_opts_t defaults;
  if (!q)
    return CONC_EINVAL;
  if (!opts)
    opts = &defaults;
  size_t cap =
      opts->capacity ? pad8(opts->capacity) : CONC_PQUEUE_DEFAULT_CAPACITY;
  if (cap < 16 || cap > ((size_t)1 << 40))
    return CONC_EINVAL;
  size_t len = sizeof(struct conc__pq) + cap;
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return CONC_ENOMEM;
  struct conc__pq *s = m;
  conc_lock_init(&s->lock, &(conc_lock_opts_t){.pshared = true});
  s->maxsize = maxsize > 0 ? maxsize : 0;
  s->joinable = opts->joinable;
  s->cap = cap;
  q->priv.sh = s;
  q->priv.maplen = len;
  q->priv.closed = false;
  return 0;
}

void conc_pqueue_destroy(conc_pqueue_t *q) {
  if (!q || !q->priv.sh)
    return;
  munmap(q->priv.sh, q->priv.maplen);
  q->priv.sh = NULL;
  q->priv.closed = true;
}

static int check(const conc_pqueue_t *q) {
  if (!q || !q->priv.sh)
    return CONC_EINVAL;
  return q->priv.closed ? CONC_ECLOSED : 0;
}

static int deadline_of(bool block, double timeout, conc_deadline_t *dl) {
  if (isnan(timeout))
    return CONC_EINVAL;
  return conc_deadline_after(block ? timeout : 0.0, dl);
}

/* ---- put --------------------------------------------------------------- */

static bool has_room(const struct conc__pq *s, size_t need) {
  if (s->maxsize > 0 && s->cur.count >= (uint64_t)s->maxsize)
    return false;
  uint64_t to_end = s->cap - s->cur.tail % s->cap;
  uint64_t want = need <= to_end ? need : to_end + need;
  return s->cap - (s->cur.tail - s->cur.head) >= want;
}

static void write_msg(struct conc__pq *s, const void *item, size_t len) {
  uint64_t pos = s->cur.tail % s->cap, need = 8 + pad8(len);
  if (need > s->cap - pos) {
    uint64_t wrap = WRAP;
    memcpy(s->ring + pos, &wrap, 8);
    s->cur.tail += s->cap - pos;
    pos = 0;
  }
  uint64_t hdr = len;
  memcpy(s->ring + pos, &hdr, 8);
  if (len)
    memcpy(s->ring + pos + 8, item, len);
  HOOK(CONC__PQ_PUT_WRITTEN);
  s->cur.tail += need;
  set_count(&s->cur, s->cur.count + 1);
  s->cur.puts++;
}

int conc_pqueue_put(conc_pqueue_t *q, const void *item, size_t len, bool block,
                    double timeout) {
  int rc = check(q);
  if (rc)
    return rc;
  if (!item && len)
    return CONC_EINVAL;
  struct conc__pq *s = q->priv.sh;
  if (len > s->cap - 8 || 8 + pad8(len) > s->cap)
    return CONC_EMSGSIZE;
  conc_deadline_t dl;
  if ((rc = deadline_of(block, timeout, &dl)))
    return rc;
  if ((rc = qlock(s)))
    return rc;
  rc = wait_until(s, has_room, 8 + pad8(len), &s->room, dl, CONC_EFULL);
  if (rc)
    return rc;
  begin(s);
  write_msg(s, item, len);
  signal_wq(&s->items, 1);
  HOOK(CONC__PQ_PUT_WOKE);
  commit(s);
  qunlock(s);
  HOOK(CONC__PQ_PUT_RETURNING);
  return 0;
}

int conc_pqueue_put_nowait(conc_pqueue_t *q, const void *item, size_t len) {
  return conc_pqueue_put(q, item, len, false, 0);
}

/* ---- get --------------------------------------------------------------- */

static bool has_item(const struct conc__pq *s, size_t unused) {
  (void)unused;
  return s->cur.count > 0;
}

/* The head message: skips a WRAP marker (inside a journalled step). NULL,
 * with nothing changed, when the header cannot be one that put wrote: a
 * WRAP where the committed bytes do not wrap, or a length past them or
 * past the ring's end. Only a peer that scribbled on the shared ring
 * leaves such a header; following it would read outside the ring. */
static unsigned char *head_msg(struct conc__pq *s, size_t *len) {
  uint64_t head = s->cur.head, used = s->cur.tail - head;
  uint64_t pos = head % s->cap, hdr;
  memcpy(&hdr, s->ring + pos, 8);
  if (hdr == WRAP) {
    if (used <= s->cap - pos)
      return NULL;
    used -= s->cap - pos;
    head += s->cap - pos;
    pos = 0;
    memcpy(&hdr, s->ring, 8);
  }
  if (used < 8 || hdr > used - 8 || 8 + pad8(hdr) > used ||
      8 + pad8(hdr) > s->cap - pos)
    return NULL;
  s->cur.head = head;
  *len = (size_t)hdr;
  return s->ring + pos + 8;
}

static void pop_msg(struct conc__pq *s, size_t len) {
  HOOK(CONC__PQ_GET_READ);
  s->cur.head += 8 + pad8(len);
  set_count(&s->cur, s->cur.count - 1);
  signal_wq(&s->room, 1);
  HOOK(CONC__PQ_GET_WOKE);
}

/* Copy the head item out (malloc'd into *item, or into buf). */
static int copy_out(const unsigned char *at, size_t n, void **item, void *buf,
                    size_t cap) {
  if (item) {
    void *out = malloc(n ? n : 1);
    *item = out;
    if (!out)
      return CONC_ENOMEM;
    memcpy(out, at, n);
    return 0;
  }
  if (n > cap)
    return CONC_ETOOSHORT;
  memcpy(buf, at, n);
  return 0;
}

static int get_common(conc_pqueue_t *q, void **item, void *buf, size_t cap,
                      size_t *len, bool block, double timeout) {
  int rc = check(q);
  if (rc)
    return rc;
  if (!len || (!item && !buf && cap))
    return CONC_EINVAL;
  struct conc__pq *s = q->priv.sh;
  conc_deadline_t dl;
  if ((rc = deadline_of(block, timeout, &dl)))
    return rc;
  if ((rc = qlock(s)))
    return rc;
  rc = wait_until(s, has_item, 0, &s->items, dl, CONC_EEMPTY);
  if (rc)
    return rc;
  begin(s);
  size_t n = 0;
  unsigned char *at = head_msg(s, &n);
  if (!at) {
    rc = CONC_ENOTRECOVERABLE; /* a corrupt ring: refuse, change nothing */
  } else {
    *len = n;
    rc = copy_out(at, n, item, buf, cap);
    if (rc == 0)
      pop_msg(s, n);
  }
  commit(s);
  qunlock(s);
  if (rc == 0)
    HOOK(CONC__PQ_GET_RETURNING);
  return rc;
}

int conc_pqueue_get(conc_pqueue_t *q, void **item, size_t *len, bool block,
                    double timeout) {
  if (!item)
    return CONC_EINVAL;
  return get_common(q, item, NULL, 0, len, block, timeout);
}

int conc_pqueue_get_nowait(conc_pqueue_t *q, void **item, size_t *len) {
  return conc_pqueue_get(q, item, len, false, 0);
}

int conc_pqueue_get_into(conc_pqueue_t *q, void *buf, size_t cap, size_t *len,
                         bool block, double timeout) {
  return get_common(q, NULL, buf, cap, len, block, timeout);
}

/* ---- sizes, close, tasks ---------------------------------------------- */

/* The committed count: the saved one while a change is in progress (or
 * was cut short by a death and awaits its rollback). The second look at
 * the flag rejects a count read just after a change began. */
static uint64_t committed_count(const struct conc__pq *s) {
  for (;;) {
    if (__atomic_load_n(&s->in_progress, __ATOMIC_ACQUIRE))
      return __atomic_load_n(&s->saved.count, __ATOMIC_ACQUIRE);
    uint64_t c = __atomic_load_n(&s->cur.count, __ATOMIC_ACQUIRE);
    if (!__atomic_load_n(&s->in_progress, __ATOMIC_ACQUIRE))
      return c;
  }
}

int conc_pqueue_qsize(const conc_pqueue_t *q) {
  if (!q || !q->priv.sh)
    return CONC_EINVAL;
  return (int)committed_count(q->priv.sh);
}

bool conc_pqueue_empty(const conc_pqueue_t *q) {
  return conc_pqueue_qsize(q) <= 0;
}

bool conc_pqueue_full(const conc_pqueue_t *q) {
  if (!q || !q->priv.sh || q->priv.sh->maxsize <= 0)
    return false;
  return conc_pqueue_qsize(q) >= q->priv.sh->maxsize;
}

int conc_pqueue_close(conc_pqueue_t *q) {
  if (!q || !q->priv.sh)
    return CONC_EINVAL;
  q->priv.closed = true;
  return 0;
}

int conc_pqueue_task_done(conc_pqueue_t *q) {
  int rc = check(q);
  if (rc)
    return rc;
  struct conc__pq *s = q->priv.sh;
  if (!s->joinable)
    return CONC_ENOTJOINABLE;
  if ((rc = qlock(s)))
    return rc;
  if (s->cur.dones >= s->cur.puts) {
    qunlock(s);
    return CONC_ETASKDONE;
  }
  begin(s);
  s->cur.dones++;
  if (s->cur.dones == s->cur.puts)
    signal_wq(&s->done, CONC__WAKE_ALL);
  commit(s);
  qunlock(s);
  HOOK(CONC__PQ_DONE_RETURNING);
  return 0;
}

static bool all_done(const struct conc__pq *s, size_t unused) {
  (void)unused;
  return s->cur.dones == s->cur.puts;
}

int conc_pqueue_join(conc_pqueue_t *q, double timeout) {
  int rc = check(q);
  if (rc)
    return rc;
  struct conc__pq *s = q->priv.sh;
  if (!s->joinable)
    return CONC_ENOTJOINABLE;
  conc_deadline_t dl;
  if ((rc = deadline_of(true, timeout, &dl)))
    return rc;
  if ((rc = qlock(s)))
    return rc;
  rc = wait_until(s, all_done, 0, &s->done, dl, CONC_ETIMEDOUT);
  if (rc)
    return rc;
  qunlock(s);
  return 0;
}

unsigned conc__pqueue_sleepers(const conc_pqueue_t *q, enum conc__pq_sleep in) {
  const struct conc__pq *s = q->priv.sh;
  const struct waitq *wq = in == CONC__PQ_IN_GET   ? &s->items
                           : in == CONC__PQ_IN_PUT ? &s->room
                                                   : &s->done;
  return __atomic_load_n(&wq->sleepers, __ATOMIC_ACQUIRE);
}

unsigned char *conc__pqueue_ring(const conc_pqueue_t *q, uint64_t *cap,
                                 uint64_t *head, uint64_t *tail) {
  struct conc__pq *s = q->priv.sh;
  *cap = s->cap;
  *head = s->cur.head;
  *tail = s->cur.tail;
  return s->ring;
}

int conc_psimple_queue_init(conc_psimple_queue_t *q) {
  return conc_pqueue_init(q, 0, NULL);
}
int conc_psimple_queue_put(conc_psimple_queue_t *q, const void *item,
                           size_t len) {
  return conc_pqueue_put(q, item, len, true, CONC_FOREVER);
}
int conc_psimple_queue_get(conc_psimple_queue_t *q, void **item, size_t *len) {
  return conc_pqueue_get(q, item, len, true, CONC_FOREVER);
}
bool conc_psimple_queue_empty(const conc_psimple_queue_t *q) {
  return conc_pqueue_empty(q);
}
int conc_psimple_queue_close(conc_psimple_queue_t *q) {
  return conc_pqueue_close(q);
}
void conc_psimple_queue_destroy(conc_psimple_queue_t *q) {
  conc_pqueue_destroy(q);
}
