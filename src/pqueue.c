/*
 * Process queues: a ring of byte messages in MAP_SHARED memory.
 *
 * Locking protocol: one process-shared Lock (sh->lock) guards the ring and
 * every counter. Blocking waits drop the lock and sleep on a sequence word
 * with the platform wait (shared): put_seq (bumped by every put, waited on
 * by getters), get_seq (bumped by every get, waited on by putters) and
 * done_seq (bumped when the last task is done, waited on by join). A waiter
 * reads the word under the lock, so no change after it let go is missed.
 * The *_waiters counts only save wake-up system calls; one left too high by
 * a killed waiter costs a spare wake, nothing else.
 *
 * Crash safety: each mutation is bracketed by begin()/commit(): begin saves
 * head, tail, count, puts and dones to an undo record and raises
 * in_progress; commit lowers it. A process killed in between leaves the
 * lock owner-dead; the next locker sees in_progress, restores the saved
 * fields (the bytes it may have written lie in free space) and marks the
 * lock consistent, so the queue is exactly as before the interrupted call.
 *
 * Ring: positions are monotonic byte counters (pos % cap in the ring). A
 * message is an 8-byte header (its length) and the payload, padded to 8. A
 * message that does not fit before the end of the ring is preceded by a
 * WRAP header filling the rest.
 */
#include "conc/pqueue.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
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
#define YIELD_NS 50000 /* how long a waiter yields before it sleeps */

int conc__pqueue_crash_point;

struct undo {
  uint64_t head, tail, count, puts, dones;
};

struct conc__pq {
  conc_lock_t lock;
  uint32_t put_seq, get_seq, done_seq;
  uint32_t get_waiters, put_waiters, join_waiters;
  int32_t maxsize;
  uint32_t joinable;
  uint32_t in_progress;
  uint64_t cap;
  struct undo cur, saved;
  _Alignas(64) unsigned char ring[];
};

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* ---- locking and journal ---------------------------------------------- */

static void wake_all(struct conc__pq *s) {
  conc__fetch_add(&s->put_seq, 1);
  conc__fetch_add(&s->get_seq, 1);
  conc__fetch_add(&s->done_seq, 1);
  conc__wake(&s->put_seq, CONC__WAKE_ALL, true);
  conc__wake(&s->get_seq, CONC__WAKE_ALL, true);
  conc__wake(&s->done_seq, CONC__WAKE_ALL, true);
}

static int qlock(struct conc__pq *s) {
  int rc = conc_lock_acquire(&s->lock);
  if (rc == CONC_EOWNERDEAD) {
    if (__atomic_load_n(&s->in_progress, __ATOMIC_ACQUIRE)) {
      s->cur = s->saved;
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
  s->saved = s->cur;
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

/* Sleep on *seq with the lock dropped; returns with it held (or an error
 * without it). */
static int wait_on(struct conc__pq *s, uint32_t *seq, uint32_t *waiters,
                   conc_deadline_t dl) {
  uint32_t v = conc__load_acquire(seq);
  qunlock(s);
  /* A peer on another CPU usually answers within a few microseconds:
   * spin briefly before paying for a sleep and a wake-up. Only a sleeper
   * counts as a waiter, so a spinning one costs the peer no wake call; the
   * count is raised before the sleep compares *seq, and the peer bumps *seq
   * before it reads the count, so one of the two always sees the other. */
  for (int spin = 0; spin < SPIN && conc__load_acquire(seq) == v; spin++)
    conc__cpu_relax();
  yield_while(seq, v, dl);
  int rc = 0;
  if (conc__load_acquire(seq) == v) {
    __atomic_fetch_add(waiters, 1, __ATOMIC_SEQ_CST);
    rc = conc__wait(seq, v, dl, true);
    conc__fetch_sub(waiters, 1);
  }
  int lrc = qlock(s);
  return lrc ? lrc : rc;
}

static void signal_seq(uint32_t *seq, uint32_t *waiters, int n) {
  __atomic_fetch_add(seq, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(waiters, __ATOMIC_SEQ_CST))
    conc__wake(seq, n, true);
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
  if (conc__pqueue_crash_point == 1)
    raise(SIGKILL);
  s->cur.tail += need;
  s->cur.count++;
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
  while (!has_room(s, 8 + pad8(len))) {
    rc = conc__now_ns() >= dl ? CONC_ETIMEDOUT
                              : wait_on(s, &s->get_seq, &s->put_waiters, dl);
    if (rc && rc != CONC_ETIMEDOUT)
      return rc;
    if (rc == CONC_ETIMEDOUT && !has_room(s, 8 + pad8(len))) {
      qunlock(s);
      return CONC_EFULL;
    }
  }
  begin(s);
  write_msg(s, item, len);
  commit(s);
  qunlock(s);
  signal_seq(&s->put_seq, &s->get_waiters, 1);
  return 0;
}

int conc_pqueue_put_nowait(conc_pqueue_t *q, const void *item, size_t len) {
  return conc_pqueue_put(q, item, len, false, 0);
}

/* ---- get --------------------------------------------------------------- */

/* Wait until an item is there; returns with the lock held on success. */
static int wait_item(struct conc__pq *s, conc_deadline_t dl) {
  int rc = qlock(s);
  if (rc)
    return rc;
  while (s->cur.count == 0) {
    rc = conc__now_ns() >= dl ? CONC_ETIMEDOUT
                              : wait_on(s, &s->put_seq, &s->get_waiters, dl);
    if (rc && rc != CONC_ETIMEDOUT)
      return rc;
    if (rc == CONC_ETIMEDOUT && s->cur.count == 0) {
      qunlock(s);
      return CONC_EEMPTY;
    }
  }
  return 0;
}

/* The head message: skips a WRAP marker (inside a journalled step). */
static unsigned char *head_msg(struct conc__pq *s, size_t *len) {
  uint64_t pos = s->cur.head % s->cap, hdr;
  memcpy(&hdr, s->ring + pos, 8);
  if (hdr == WRAP) {
    s->cur.head += s->cap - pos;
    pos = 0;
    memcpy(&hdr, s->ring, 8);
  }
  *len = (size_t)hdr;
  return s->ring + pos + 8;
}

static void pop_msg(struct conc__pq *s, size_t len) {
  if (conc__pqueue_crash_point == 2)
    raise(SIGKILL);
  s->cur.head += 8 + pad8(len);
  s->cur.count--;
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
  if ((rc = wait_item(s, dl)))
    return rc;
  begin(s);
  size_t n;
  unsigned char *at = head_msg(s, &n);
  *len = n;
  if (item) {
    void *out = malloc(n ? n : 1);
    if (!out)
      rc = CONC_ENOMEM;
    else
      memcpy(out, at, n);
    *item = out;
  } else if (n > cap) {
    rc = CONC_ETOOSHORT;
  } else {
    memcpy(buf, at, n);
  }
  if (rc == 0)
    pop_msg(s, n);
  commit(s);
  qunlock(s);
  if (rc == 0)
    signal_seq(&s->get_seq, &s->put_waiters, 1);
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

int conc_pqueue_qsize(const conc_pqueue_t *q) {
  if (!q || !q->priv.sh)
    return CONC_EINVAL;
  return (int)__atomic_load_n(&q->priv.sh->cur.count, __ATOMIC_ACQUIRE);
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
    return CONC_EINVAL;
  if ((rc = qlock(s)))
    return rc;
  if (s->cur.dones >= s->cur.puts) {
    qunlock(s);
    return CONC_EINVAL; /* task_done() called too many times */
  }
  begin(s);
  s->cur.dones++;
  commit(s);
  bool all = s->cur.dones == s->cur.puts;
  qunlock(s);
  if (all)
    signal_seq(&s->done_seq, &s->join_waiters, CONC__WAKE_ALL);
  return 0;
}

int conc_pqueue_join(conc_pqueue_t *q, double timeout) {
  int rc = check(q);
  if (rc)
    return rc;
  struct conc__pq *s = q->priv.sh;
  if (!s->joinable)
    return CONC_EINVAL;
  conc_deadline_t dl;
  if ((rc = deadline_of(true, timeout, &dl)))
    return rc;
  if ((rc = qlock(s)))
    return rc;
  while (s->cur.dones != s->cur.puts) {
    rc = conc__now_ns() >= dl ? CONC_ETIMEDOUT
                              : wait_on(s, &s->done_seq, &s->join_waiters, dl);
    if (rc && rc != CONC_ETIMEDOUT)
      return rc;
    if (rc == CONC_ETIMEDOUT && s->cur.dones != s->cur.puts) {
      qunlock(s);
      return CONC_ETIMEDOUT;
    }
  }
  qunlock(s);
  return 0;
}

int conc_simplequeue_init(conc_simplequeue_t *q) {
  return conc_pqueue_init(q, 0, NULL);
}
int conc_simplequeue_put(conc_simplequeue_t *q, const void *item, size_t len) {
  return conc_pqueue_put(q, item, len, true, CONC_FOREVER);
}
int conc_simplequeue_get(conc_simplequeue_t *q, void **item, size_t *len) {
  return conc_pqueue_get(q, item, len, true, CONC_FOREVER);
}
bool conc_simplequeue_empty(const conc_simplequeue_t *q) {
  return conc_pqueue_empty(q);
}
int conc_simplequeue_close(conc_simplequeue_t *q) {
  return conc_pqueue_close(q);
}
void conc_simplequeue_destroy(conc_simplequeue_t *q) { conc_pqueue_destroy(q); }
