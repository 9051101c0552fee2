// clang-format off
/*
 * Process queues: multiprocessing.Queue, JoinableQueue and SimpleQueue.
 *
 *   q = multiprocessing.Queue(3)    conc_pqueue_t q; conc_pqueue_init(&q, 3, NULL);
 *   q.put(b"job")                   conc_pqueue_put(&q, "job", 3, true, CONC_FOREVER);
 *   item = q.get(timeout=1)         conc_pqueue_get(&q, &item, &len, true, 1.0);
 *                                   free(item);
 *
 * Items are byte strings. The queue is a ring of messages in anonymous
 * shared memory, guarded by a process-shared Lock and waited on with the
 * platform wait. There is no feeder thread and no pipe: put copies the item
 * into the ring before it returns, so a process that exits never leaves
 * items unflushed and joining it before draining never deadlocks (Python's
 * Q8 pitfall is gone). The ring has a fixed capacity in bytes (opts; 4 MiB
 * by default): an "unbounded" queue (maxsize <= 0) is bounded by it, and a
 * put that does not fit waits (or gives CONC_EFULL) as a full queue does.
 *
 * A producer or consumer killed in the middle of put/get never corrupts the
 * queue: every change is journalled, and the next process to take the lock
 * (CONC_EOWNERDEAD inside) rolls the half-done change back. A get commits
 * just before it releases the lock: a consumer killed earlier leaves its
 * item in the queue. No sleeper is stranded by a killed peer: wake-ups go
 * out before the commit, and a sleeper looks at the queue again at least
 * every 20 ms.
 *
 * Create the queue before forking the processes that use it.
 *
 * End of life, with Python's names:
 *   q.close()                 conc_pqueue_close(&q)    this handle refuses put/get
 *   q.join_thread()           (nothing to do: put has copied the item already)
 *   q.cancel_join_thread()    (nothing to do: no feeder thread to wait for)
 *   del q (garbage)           conc_pqueue_destroy(&q)  unmap in this process
 *
 * The process SimpleQueue is conc_psimple_queue_* ("p" as in pqueue, like
 * every multiprocessing object here); the thread one, queue.SimpleQueue, is
 * conc_simple_queue_* in conc/queue.h.
 */
// clang-format on
#ifndef CONC_PQUEUE_H
#define CONC_PQUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "conc/defs.h"

#define CONC_PQUEUE_DEFAULT_CAPACITY ((size_t)4 << 20)

typedef struct conc_pqueue_opts {
  size_t capacity; /* ring bytes (each item costs 8 + its size rounded up
                      to 8); 0: CONC_PQUEUE_DEFAULT_CAPACITY */
  bool joinable;   /* JoinableQueue: task_done and join */
} conc_pqueue_opts_t;

typedef struct conc_pqueue {
  struct {
    struct conc__pq *sh;
    size_t maplen;
    bool closed;
  } priv;
} conc_pqueue_t;

CONC_BEGIN_DECLS

/* Queue(maxsize): maxsize <= 0 counts no items (bytes still bound it).
 * CONC_EINVAL, CONC_ENOMEM. */
CONC_EXTERN int conc_pqueue_init(conc_pqueue_t *q, int maxsize,
                                 const conc_pqueue_opts_t *opts);
/* Python's garbage collection of the queue object: unmap it in this process
 * (closing first if needed); the ring lives on while another process maps
 * it. */
CONC_EXTERN void conc_pqueue_destroy(conc_pqueue_t *q);

/* put(item, block, timeout): CONC_EFULL at once (block false or timeout
 * <= 0) or after the timeout; CONC_EMSGSIZE for an item larger than the
 * ring; CONC_ECLOSED after close; CONC_EINVAL (NULL, NaN timeout). */
CONC_EXTERN int conc_pqueue_put(conc_pqueue_t *q, const void *item, size_t len,
                                bool block, double timeout);
CONC_EXTERN int conc_pqueue_put_nowait(conc_pqueue_t *q, const void *item,
                                       size_t len);
/* get(block, timeout): the item in a malloc'd buffer (free() it).
 * CONC_EEMPTY at once or after the timeout; CONC_ECLOSED;
 * CONC_ENOTRECOVERABLE, nothing taken, when the head item's header in the
 * shared ring is not one a put wrote (a peer wrote over the ring). */
CONC_EXTERN int conc_pqueue_get(conc_pqueue_t *q, void **item, size_t *len,
                                bool block, double timeout);
CONC_EXTERN int conc_pqueue_get_nowait(conc_pqueue_t *q, void **item,
                                       size_t *len);
/* get into a caller buffer: CONC_ETOOSHORT (the item stays first in the
 * queue) with *len the size needed. */
CONC_EXTERN int conc_pqueue_get_into(conc_pqueue_t *q, void *buf, size_t cap,
                                     size_t *len, bool block, double timeout);

/* qsize(), empty(), full(): exact across processes at the instant read;
 * a change in progress (or cut short by a death) is not counted. */
CONC_EXTERN int conc_pqueue_qsize(const conc_pqueue_t *q);
CONC_EXTERN bool conc_pqueue_empty(const conc_pqueue_t *q);
CONC_EXTERN bool conc_pqueue_full(const conc_pqueue_t *q);

/* close(): this handle refuses put/get from now on (CONC_ECLOSED). Other
 * processes' handles are unaffected. Closing twice is fine. Python's
 * join_thread() and cancel_join_thread() have no counterpart: there is no
 * feeder thread, put has copied the item into shared memory on return. */
CONC_EXTERN int conc_pqueue_close(conc_pqueue_t *q);

/* JoinableQueue: CONC_ETASKDONE (ValueError) when called more times than
 * items were put; CONC_ENOTJOINABLE on a queue made without .joinable (Python's
 * Queue has no task_done: AttributeError). */
CONC_EXTERN int conc_pqueue_task_done(conc_pqueue_t *q);
/* Wait until every item put has had its task_done. 0, CONC_ETIMEDOUT,
 * CONC_ENOTJOINABLE. */
CONC_EXTERN int conc_pqueue_join(conc_pqueue_t *q, double timeout);

/* multiprocessing.SimpleQueue: an unbounded process Queue with blocking get
 * and put (not queue.SimpleQueue: that is conc_simple_queue_t). close and
 * destroy as for conc_pqueue_t. */
typedef conc_pqueue_t conc_psimple_queue_t;
CONC_EXTERN int conc_psimple_queue_init(conc_psimple_queue_t *q);
CONC_EXTERN int conc_psimple_queue_put(conc_psimple_queue_t *q,
                                       const void *item, size_t len);
CONC_EXTERN int conc_psimple_queue_get(conc_psimple_queue_t *q, void **item,
                                       size_t *len);
CONC_EXTERN bool conc_psimple_queue_empty(const conc_psimple_queue_t *q);
CONC_EXTERN int conc_psimple_queue_close(conc_psimple_queue_t *q);
CONC_EXTERN void conc_psimple_queue_destroy(conc_psimple_queue_t *q);

CONC_END_DECLS

#endif
