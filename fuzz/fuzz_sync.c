/*
 * libFuzzer target: a random sequence of calls on a Lock, an RLock, a
 * Condition, a BoundedSemaphore, an Event, a Barrier and a bounded Queue,
 * each checked against a small model of its Python semantics. Every call
 * that could block polls (timeout 0), so one thread drives everything and
 * every outcome is determined. Any difference from the model aborts.
 *
 * Input: one byte per call (op = byte % N_OPS); the first byte sets the
 * semaphore's bound and the queue's maxsize.
 *
 * Locking: single-threaded.
 */
#include <stdint.h>
#include <stdlib.h>

#include "conc/error.h"
#include "conc/queue.h"
#include "conc/sync.h"

#define EXPECT(x)                                                              \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

struct model {
  bool locked;
  unsigned rlevel;
  bool cond_held; /* the condition's own lock (an RLock by default) */
  unsigned cond_level;
  int sem, bound;
  bool ev;
  bool broken; /* the 2-party barrier */
  long q_head, q_tail, maxsize, unfinished;
  bool shut;
};

struct objs {
  conc_lock_t lock;
  conc_rlock_t rlock;
  conc_condition_t cond;
  conc_semaphore_t sem;
  conc_event_t ev;
  conc_barrier_t bar;
  conc_queue_t q;
};

#define ITEM(n) ((void *)(intptr_t)((n) + 1))

static void lock_ops(struct objs *o, struct model *m, int op) {
  switch (op) {
  case 0:
    EXPECT(conc_lock_acquire_timeout(&o->lock, 0) ==
           (m->locked ? CONC_ETIMEDOUT : 0));
    m->locked = true;
    break;
  case 1:
    EXPECT(conc_lock_release(&o->lock) == (m->locked ? 0 : CONC_ESTATE));
    m->locked = false;
    break;
  case 2:
    EXPECT(conc_rlock_acquire_timeout(&o->rlock, 0) == 0);
    m->rlevel++;
    break;
  default:
    EXPECT(conc_rlock_release(&o->rlock) == (m->rlevel ? 0 : CONC_ESTATE));
    m->rlevel -= m->rlevel > 0;
    EXPECT(conc_rlock_count(&o->rlock) == m->rlevel);
    EXPECT(conc_rlock_locked(&o->rlock) == (m->rlevel > 0));
  }
  EXPECT(conc_lock_locked(&o->lock) == m->locked);
}

static void cond_ops(struct objs *o, struct model *m, int op) {
  switch (op) {
  case 0:
    EXPECT(conc_condition_acquire(&o->cond) == 0);
    m->cond_level++;
    break;
  case 1:
    EXPECT(conc_condition_release(&o->cond) ==
           (m->cond_level ? 0 : CONC_ESTATE));
    m->cond_level -= m->cond_level > 0;
    break;
  case 2:
    EXPECT(conc_condition_notify(&o->cond, 1) ==
           (m->cond_level ? 0 : CONC_ESTATE));
    break;
  default: /* nobody notifies: a poll times out, holding the lock again */
    EXPECT(conc_condition_wait(&o->cond, 0) ==
           (m->cond_level ? CONC_ETIMEDOUT : CONC_ESTATE));
  }
}

static void sem_ev_ops(struct objs *o, struct model *m, int op) {
  switch (op) {
  case 0:
    EXPECT(conc_semaphore_acquire_timeout(&o->sem, 0) ==
           (m->sem ? 0 : CONC_ETIMEDOUT));
    m->sem -= m->sem > 0;
    break;
  case 1: {
    int n = 1 + (m->sem & 1);
    EXPECT(conc_semaphore_release(&o->sem, n) ==
           (m->sem + n > m->bound ? CONC_EINVAL : 0));
    if (m->sem + n <= m->bound)
      m->sem += n;
    break;
  }
  case 2:
    EXPECT((m->ev ? conc_event_clear(&o->ev) : conc_event_set(&o->ev)) == 0);
    m->ev = !m->ev;
    break;
  default:
    EXPECT(conc_event_wait(&o->ev, 0) == (m->ev ? 0 : CONC_ETIMEDOUT));
    EXPECT(conc_event_is_set(&o->ev) == m->ev);
  }
  EXPECT(conc_semaphore_get_value(&o->sem) == m->sem);
}

static void barrier_ops(struct objs *o, struct model *m, int op) {
  if (op % 2) {
    EXPECT(conc_barrier_reset(&o->bar) == 0);
    m->broken = false;
  } else { /* the other party never comes: a poll breaks the barrier */
    EXPECT(conc_barrier_wait(&o->bar, 0) == CONC_EBROKEN);
    m->broken = true;
  }
  EXPECT(conc_barrier_n_waiting(&o->bar) == 0);
}

static void queue_ops(struct objs *o, struct model *m, int op) {
  long size = m->q_tail - m->q_head;
  void *out = NULL;
  switch (op) {
  case 0: {
    int want = m->shut                                ? CONC_ESHUTDOWN
               : m->maxsize > 0 && size >= m->maxsize ? CONC_EFULL
                                                      : 0;
    EXPECT(conc_queue_put_nowait(&o->q, ITEM(m->q_tail)) == want);
    if (!want)
      m->q_tail++, m->unfinished++;
    break;
  }
  case 1: {
    int want = size ? 0 : m->shut ? CONC_ESHUTDOWN : CONC_EEMPTY;
    EXPECT(conc_queue_get_nowait(&o->q, &out) == want);
    if (!want) {
      EXPECT(out == ITEM(m->q_head));
      m->q_head++;
    }
    break;
  }
  case 2:
    EXPECT(conc_queue_task_done(&o->q) == (m->unfinished ? 0 : CONC_ETASKDONE));
    m->unfinished -= m->unfinished > 0;
    break;
  case 3:
    EXPECT(conc_queue_join(&o->q, 0) == (m->unfinished ? CONC_ETIMEDOUT : 0));
    break;
  default: {
    bool immediate = op == 5;
    EXPECT(conc_queue_shutdown(&o->q, immediate) == 0);
    m->shut = true;
    if (immediate) {
      m->unfinished -= size < m->unfinished ? size : m->unfinished;
      m->q_head = m->q_tail;
    }
  }
  }
  EXPECT(conc_queue_qsize(&o->q) == m->q_tail - m->q_head);
  EXPECT(conc_queue_unfinished_tasks(&o->q) == m->unfinished);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  struct model m = {.bound = 1 + data[0] % 4, .maxsize = data[0] / 4 % 5};
  m.sem = m.bound;
  struct objs o;
  EXPECT(conc_lock_init(&o.lock, NULL) == 0);
  EXPECT(conc_rlock_init(&o.rlock, NULL) == 0);
  EXPECT(conc_condition_init(&o.cond, NULL) == 0);
  EXPECT(conc_bounded_semaphore_init(&o.sem, m.bound, NULL) == 0);
  EXPECT(conc_event_init(&o.ev, NULL) == 0);
  EXPECT(conc_barrier_init(&o.bar, 2, NULL) == 0);
  EXPECT(conc_queue_init(&o.q, &(conc_queue_opts_t){.maxsize = m.maxsize}) ==
         0);
  for (size_t i = 1; i < size; i++) {
    int op = data[i] % 22;
    if (op < 4)
      lock_ops(&o, &m, op);
    else if (op < 8)
      cond_ops(&o, &m, op - 4);
    else if (op < 12)
      sem_ev_ops(&o, &m, op - 8);
    else if (op < 14)
      barrier_ops(&o, &m, op - 12);
    else if (op < 20)
      queue_ops(&o, &m, op - 14);
    else /* dead ops: keep the lengths varied */
      continue;
  }
  /* unwind so that destroy finds everything idle */
  while (m.rlevel--)
    EXPECT(conc_rlock_release(&o.rlock) == 0);
  while (m.cond_level--)
    EXPECT(conc_condition_release(&o.cond) == 0);
  if (m.locked)
    EXPECT(conc_lock_release(&o.lock) == 0);
  EXPECT(conc_lock_destroy(&o.lock) == 0);
  EXPECT(conc_rlock_destroy(&o.rlock) == 0);
  EXPECT(conc_condition_destroy(&o.cond) == 0);
  EXPECT(conc_semaphore_destroy(&o.sem) == 0);
  EXPECT(conc_event_destroy(&o.ev) == 0);
  EXPECT(conc_barrier_destroy(&o.bar) == 0);
  conc_queue_destroy(&o.q);
  return 0;
}
