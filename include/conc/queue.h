// clang-format off
/*
 * queue: Python's queue.Queue, LifoQueue, PriorityQueue and SimpleQueue.
 *
 * Items are `void *`; ownership moves with the item (put hands it to the
 * queue, get hands it to the caller). Timeouts are relative seconds,
 * CONC_FOREVER (-1) for Python's None.
 *
 *
 *   q = queue.Queue(maxsize=2)         conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 2})
 *   q.put(x)                           conc_queue_put(&q, x, true, CONC_FOREVER)
 *   x = q.get(timeout=0.5)             conc_queue_get(&q, &x, true, 0.5)
 *   q.get_nowait()                     conc_queue_get_nowait(&q, &x)   -> CONC_EEMPTY
 *   q.task_done(); q.join()            conc_queue_task_done(&q); conc_queue_join(&q, CONC_FOREVER)
 *   q.shutdown(immediate=True)         conc_queue_shutdown(&q, true)   -> CONC_ESHUTDOWN
 *   x = await jq.async_q.get() (janus) conc_queue_get_async(&q, CONC_FOREVER, &x)  (in a task)
 *   await jq.async_q.put(x)            conc_queue_put_async(&q, x, CONC_FOREVER)
 *
 */
// clang-format on
#ifndef CONC_QUEUE_H
#define CONC_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "conc/defs.h"

CONC_BEGIN_DECLS

typedef enum conc_queue_kind {
  CONC_QUEUE_FIFO = 0, /* queue.Queue */
  CONC_QUEUE_LIFO,     /* queue.LifoQueue */
  CONC_QUEUE_PRIORITY  /* queue.PriorityQueue (needs compare) */
} conc_queue_kind_t;

typedef struct conc_queue_opts {
  /* Python's maxsize: 0 or less is unbounded. */
  long maxsize;
  conc_queue_kind_t kind;
  /* PRIORITY only: <0, 0, >0 as a sorts before, with, after b. It gets the
   * items themselves (not pointers to them) and `arg`. Equal items leave in
   * insertion order. */
  int (*compare)(const void *a, const void *b, void *arg);
  /* Optional: called with the item and `arg` (with the queue's internal
   * lock held, so it must not touch the queue) for every item that
   * shutdown(immediate) discards or that is still queued at destroy. NULL:
   * such items are dropped. */
  void (*free_item)(void *item, void *arg);
  void *arg; /* the user pointer compare and free_item receive */
} conc_queue_opts_t;

/* Caller-allocated; the contents are private. */
typedef struct conc_queue {
  union {
    void *align_;
    unsigned char bytes_[200];
  } priv;
} conc_queue_t;

/* Returns 0, CONC_EINVAL (NULL queue, bad kind, PRIORITY without compare)
 * or CONC_ENOMEM. */
CONC_EXTERN int conc_queue_init(conc_queue_t *q, const conc_queue_opts_t *opts);
/* No thread may be blocked on q. Remaining items go to opts.free_item. */
CONC_EXTERN void conc_queue_destroy(conc_queue_t *q);

/*
 * Queue.put(item, block, timeout). 0, or CONC_EFULL (non-blocking on a full
 * queue, or the timeout passed), CONC_ESHUTDOWN (shut down, also while
 * blocked), CONC_EINVAL (NULL queue; a negative timeout other than
 * CONC_FOREVER, or NaN, with block on a bounded queue), CONC_ENOMEM.
 * An unbounded queue never blocks and ignores block and timeout.
 */
CONC_EXTERN int conc_queue_put(conc_queue_t *q, void *item, bool block,
                               double timeout);
CONC_EXTERN int conc_queue_put_nowait(conc_queue_t *q, void *item);

/*
 * Queue.get(block, timeout): stores the item in *out. 0, or CONC_EEMPTY
 * (non-blocking on an empty queue, or the timeout passed), CONC_ESHUTDOWN
 * (shut down and empty), CONC_EINVAL (NULL argument; with block, a negative
 * timeout other than CONC_FOREVER, or NaN). timeout 0 with block still
 * returns an item that is present.
 */
CONC_EXTERN int conc_queue_get(conc_queue_t *q, void **out, bool block,
                               double timeout);
CONC_EXTERN int conc_queue_get_nowait(conc_queue_t *q, void **out);

/* qsize(), empty(), full(); -1 / false for a NULL queue. */
CONC_EXTERN long conc_queue_qsize(conc_queue_t *q);
CONC_EXTERN bool conc_queue_empty(conc_queue_t *q);
CONC_EXTERN bool conc_queue_full(conc_queue_t *q);
/* The current maxsize. */
CONC_EXTERN long conc_queue_maxsize(conc_queue_t *q);
/* q.maxsize = n: checked by the next put. Raising it also wakes putters.
 * 0, or CONC_EINVAL for a NULL queue. */
CONC_EXTERN int conc_queue_set_maxsize(conc_queue_t *q, long maxsize);

/* task_done(): CONC_ETASKDONE (ValueError) when called more times than items
 * were put, CONC_EINVAL for a NULL queue; nothing changes then. */
CONC_EXTERN int conc_queue_task_done(conc_queue_t *q);
/* join(): wait until every put has had its task_done. 0, CONC_ETIMEDOUT,
 * or CONC_EINVAL (a negative timeout other than CONC_FOREVER, or NaN). */
CONC_EXTERN int conc_queue_join(conc_queue_t *q, double timeout);
/* The number of puts still waiting for task_done (unfinished_tasks); -1
 * for a NULL queue. */
CONC_EXTERN long conc_queue_unfinished_tasks(conc_queue_t *q);

/*
 * shutdown(immediate) (Python 3.13): later puts fail with CONC_ESHUTDOWN,
 * gets drain what is left and then fail with CONC_ESHUTDOWN; blocked
 * callers wake. immediate also discards every item (lowering unfinished
 * tasks by as many) and releases join(). May be called again, either way.
 * 0, or CONC_EINVAL for a NULL queue. is_shutdown is false for NULL.
 *
 * Every function here treats a queue that was never initialised (all
 * zero) or was destroyed like NULL: CONC_EINVAL (-1 for the sizes, false
 * for the predicates, nothing for destroy), and changes nothing.
 */
CONC_EXTERN int conc_queue_shutdown(conc_queue_t *q, bool immediate);
CONC_EXTERN bool conc_queue_is_shutdown(conc_queue_t *q);

/*
 * Awaiting a queue from a loop task (the janus package's async side; see
 * docs/queue.md). Called from a task, these take the non-blocking path
 * first and, when they must wait, suspend only the task: threads keep
 * calling the blocking functions above, on the same queue, at the same
 * time. A thread's put (or get, for a waiting putter) hands the item (or
 * the room) to the oldest waiting task and wakes it through its loop's
 * call_soon_threadsafe. Waiting tasks are served before blocked threads.
 *
 * get_async: 0 and *out; CONC_ETIMEDOUT when nothing came within timeout
 * seconds (CONC_FOREVER: no limit; 0: only what is there now);
 * CONC_ESHUTDOWN (shut down and empty, also while waiting); CONC_ECANCELED
 * when the task was cancelled while waiting: an item already handed to it
 * goes back to the front of the queue (to the next waiting task, or for a
 * thread), which may leave a bounded queue one over maxsize for a moment.
 * put_async: 0 once the item is in the queue (a cancel that arrives after
 * that is not lost: the task's next await delivers it); CONC_ETIMEDOUT
 * (no room in time; the item stays the caller's), CONC_ESHUTDOWN,
 * CONC_ECANCELED (not put). Both: CONC_EINVAL (NULL or dead queue, NULL
 * out, NaN or a negative timeout other than CONC_FOREVER), CONC_ESTATE
 * outside a task (nothing happens), CONC_ENOMEM. The queue must outlive
 * the waiting tasks, as it must outlive blocked threads.
 */
CONC_EXTERN int conc_queue_get_async(conc_queue_t *q, double timeout,
                                     void **out);
CONC_EXTERN int conc_queue_put_async(conc_queue_t *q, void *item,
                                     double timeout);

/* ------------------------------------------------------------------ */
/* SimpleQueue: an unbounded FIFO whose put never blocks. */

typedef struct conc_simple_queue_opts {
  /* Called with the item and `arg` for items still queued at destroy
   * (NULL: dropped). */
  void (*free_item)(void *item, void *arg);
  void *arg;
} conc_simple_queue_opts_t;

typedef struct conc_simple_queue {
  union {
    void *align_;
    unsigned char bytes_[160];
  } priv;
} conc_simple_queue_t;

/* 0, CONC_EINVAL (NULL queue) or CONC_ENOMEM. */
CONC_EXTERN int conc_simple_queue_init(conc_simple_queue_t *q,
                                       const conc_simple_queue_opts_t *opts);
CONC_EXTERN void conc_simple_queue_destroy(conc_simple_queue_t *q);
/* put(item): never blocks. 0, CONC_EINVAL (NULL queue) or CONC_ENOMEM. */
CONC_EXTERN int conc_simple_queue_put(conc_simple_queue_t *q, void *item);
CONC_EXTERN int conc_simple_queue_put_nowait(conc_simple_queue_t *q,
                                             void *item);
/* get(block, timeout): as conc_queue_get, without shutdown. */
CONC_EXTERN int conc_simple_queue_get(conc_simple_queue_t *q, void **out,
                                      bool block, double timeout);
CONC_EXTERN int conc_simple_queue_get_nowait(conc_simple_queue_t *q,
                                             void **out);
/* qsize() (-1 for a NULL queue), empty() (false for NULL). A queue never
 * initialised (all zero) or destroyed counts as NULL everywhere. */
CONC_EXTERN long conc_simple_queue_qsize(conc_simple_queue_t *q);
CONC_EXTERN bool conc_simple_queue_empty(conc_simple_queue_t *q);
/* get from a loop task, as conc_queue_get_async (no shutdown): an item a
 * cancelled task had been handed goes back to the head. */
CONC_EXTERN int conc_simple_queue_get_async(conc_simple_queue_t *q,
                                            double timeout, void **out);

CONC_END_DECLS

#endif
