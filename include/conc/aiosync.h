// clang-format off
/*
 * asyncio's synchronisation primitives for tasks of the event loop
 * (include/conc/loop.h): Lock, Event, Condition, Semaphore,
 * BoundedSemaphore, Barrier, and Queue with its LIFO and priority kinds.
 * A waiting call suspends only the calling task, never the thread, and
 * waiters are served first come, first served.
 *
 *
 *   Python (asyncio)                       C
 *   lock = asyncio.Lock()                  conc_aio_lock_t lock = CONC_AIO_LOCK_INIT;
 *   await lock.acquire()                   rc = conc_aio_lock_acquire(&lock)
 *   lock.release()                         conc_aio_lock_release(&lock)   -> CONC_ESTATE unlocked
 *   lock.locked()                          conc_aio_lock_locked(&lock)
 *   ev = asyncio.Event()                   conc_aio_event_t ev = CONC_AIO_EVENT_INIT;
 *   ev.set(); ev.clear(); ev.is_set()      conc_aio_event_set(&ev) / _clear / _is_set
 *   await ev.wait()                        rc = conc_aio_event_wait(&ev)
 *   cond = asyncio.Condition(lock)         conc_aio_condition_init(&c, &(conc_aio_condition_opts_t){.lock = &lock})
 *   async with cond: await cond.wait()     conc_aio_condition_acquire(&c); conc_aio_condition_wait(&c); conc_aio_condition_release(&c)
 *   v = await cond.wait_for(pred)          v = conc_aio_condition_wait_for(&c, pred, arg)
 *   cond.notify(n); cond.notify_all()      conc_aio_condition_notify(&c, n); conc_aio_condition_notify_all(&c)
 *   sem = asyncio.Semaphore(3)             conc_aio_semaphore_init(&s, 3, NULL)
 *   sem = asyncio.BoundedSemaphore(3)      conc_aio_semaphore_init(&s, 3, &(conc_aio_semaphore_opts_t){.bounded = true})
 *   await sem.acquire(); sem.release()     conc_aio_semaphore_acquire(&s); conc_aio_semaphore_release(&s)
 *   b = asyncio.Barrier(3)                 conc_aio_barrier_init(&b, 3)
 *   i = await b.wait()                     i = conc_aio_barrier_wait(&b)   -> CONC_EBROKEN
 *   await b.reset(); await b.abort()       conc_aio_barrier_reset(&b); conc_aio_barrier_abort(&b)
 *   q = asyncio.Queue(maxsize=2)           conc_aio_queue_init(&q, &(conc_aio_queue_opts_t){.maxsize = 2})
 *   q = asyncio.LifoQueue()                conc_aio_queue_init(&q, &(conc_aio_queue_opts_t){.kind = CONC_AIO_QUEUE_LIFO})
 *   q = asyncio.PriorityQueue()            .kind = CONC_AIO_QUEUE_PRIORITY, .compare = cmp, .arg = a
 *   await q.put(x); x = await q.get()      conc_aio_queue_put(&q, x); conc_aio_queue_get(&q, &x)
 *   q.put_nowait(x); q.get_nowait()        conc_aio_queue_put_nowait(&q, x); conc_aio_queue_get_nowait(&q, &x)
 *   except QueueFull / QueueEmpty          CONC_EFULL / CONC_EEMPTY
 *   q.task_done(); await q.join()          conc_aio_queue_task_done(&q); conc_aio_queue_join(&q)
 *   q.shutdown(immediate=True)             conc_aio_queue_shutdown(&q, true)   -> CONC_ESHUTDOWN
 *   except CancelledError                  rc == CONC_ECANCELED
 *
 *
 * Rules shared by every object here (docs/aiosync.md):
 * - Every call is made on the thread of the loop whose tasks use the object;
 *   nothing here takes a lock. A waiting call (acquire, wait, put, get,
 *   join) must run in a task: outside one it returns CONC_ESTATE. While
 *   tasks of one loop wait on an object, a task of another loop that would
 *   wait on it gets CONC_ESTATE (asyncio's "bound to a different event
 *   loop").
 * - A waiting call returns CONC_ECANCELED when its task is cancelled while
 *   it waits (asyncio's CancelledError), having undone its effect: a
 *   cancelled acquire never owns the lock or a semaphore unit, a cancelled
 *   get never takes an item, and the wake-up it may have received at the
 *   same moment is passed to the next waiter.
 * - The objects are caller-allocated; the contents of priv are private.
 *   _destroy returns CONC_EBUSY, changing nothing, while a task waits.
 *   A loop destroyed while its tasks wait unwinds them: their waits return
 *   CONC_ECANCELED and leave no waiter behind.
 */
// clang-format on
#ifndef CONC_AIOSYNC_H
#define CONC_AIOSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/defs.h"
#include "conc/error.h"

CONC_BEGIN_DECLS

/* Private: a FIFO of waiter records (they live on the waiting tasks'
 * stacks) and their count. */
typedef struct conc__aio_wq {
  void *head, *tail;
  uint32_t n;
} conc__aio_wq_t;

#define CONC__AIO_WQ_INIT                                                      \
  { NULL, NULL, 0u }

/* ------------------------------------------------------------------ Lock */

/* asyncio.Lock: not owned by a task; any code on the loop's thread may
 * release it. */
typedef struct conc_aio_lock {
  struct {
    conc__aio_wq_t waiters;
    void *loop; /* the loop of the queued waiters */
    uint32_t locked;
  } priv;
} conc_aio_lock_t;

#define CONC_AIO_LOCK_INIT                                                     \
  {                                                                            \
    { CONC__AIO_WQ_INIT, NULL, 0u }                                            \
  }

/* Lock(): an unlocked lock. 0, CONC_EINVAL (NULL). */
CONC_EXTERN int conc_aio_lock_init(conc_aio_lock_t *l);
/* CONC_EBUSY while tasks wait; a held lock may be destroyed. NULL is
 * CONC_EINVAL. */
CONC_EXTERN int conc_aio_lock_destroy(conc_aio_lock_t *l);
/*
 * await acquire(): 0 once the lock is the caller's. Fair: while tasks wait,
 * a newcomer queues behind them even if the lock is free at that moment.
 * CONC_ECANCELED (not acquired), CONC_ESTATE outside a task, CONC_ENOMEM.
 */
CONC_EXTERN int conc_aio_lock_acquire(conc_aio_lock_t *l);
/* release(): 0, or CONC_ESTATE when not locked (RuntimeError). The first
 * waiter is woken and owns the lock when it resumes. */
CONC_EXTERN int conc_aio_lock_release(conc_aio_lock_t *l);
CONC_EXTERN bool conc_aio_lock_locked(const conc_aio_lock_t *l);

/* ----------------------------------------------------------------- Event */

typedef struct conc_aio_event {
  struct {
    conc__aio_wq_t waiters;
    void *loop;
    uint32_t value;
  } priv;
} conc_aio_event_t;

#define CONC_AIO_EVENT_INIT                                                    \
  {                                                                            \
    { CONC__AIO_WQ_INIT, NULL, 0u }                                            \
  }

/* Event(): the flag starts clear. */
CONC_EXTERN int conc_aio_event_init(conc_aio_event_t *e);
CONC_EXTERN int conc_aio_event_destroy(conc_aio_event_t *e);
/* set(): every task waiting now will return 0, even if the flag is cleared
 * again before it runs. */
CONC_EXTERN int conc_aio_event_set(conc_aio_event_t *e);
/* clear(): only later waits block. */
CONC_EXTERN int conc_aio_event_clear(conc_aio_event_t *e);
CONC_EXTERN bool conc_aio_event_is_set(const conc_aio_event_t *e);
/* await wait(): 0 at once when set, else when set() runs. CONC_ECANCELED,
 * CONC_ESTATE outside a task, CONC_ENOMEM. */
CONC_EXTERN int conc_aio_event_wait(conc_aio_event_t *e);

/* ------------------------------------------------------------- Condition */

typedef struct conc_aio_condition {
  struct {
    conc_aio_lock_t own;   /* used when opts.lock is NULL */
    conc_aio_lock_t *lock; /* the caller's lock, or NULL */
    conc__aio_wq_t waiters;
    void *loop;
  } priv;
} conc_aio_condition_t;

/* A condition over its own lock. */
#define CONC_AIO_CONDITION_INIT                                                \
  {                                                                            \
    { CONC_AIO_LOCK_INIT, NULL, CONC__AIO_WQ_INIT, NULL }                      \
  }

typedef struct conc_aio_condition_opts {
  conc_aio_lock_t *lock; /* Condition(lock); NULL: a lock of its own */
} conc_aio_condition_opts_t;

/* Condition(lock=None). opts may be NULL. */
CONC_EXTERN int conc_aio_condition_init(conc_aio_condition_t *c,
                                        const conc_aio_condition_opts_t *opts);
/* CONC_EBUSY while tasks wait on it or on its own lock. */
CONC_EXTERN int conc_aio_condition_destroy(conc_aio_condition_t *c);
/* The lock's acquire / release / locked. */
CONC_EXTERN int conc_aio_condition_acquire(conc_aio_condition_t *c);
CONC_EXTERN int conc_aio_condition_release(conc_aio_condition_t *c);
CONC_EXTERN bool conc_aio_condition_locked(const conc_aio_condition_t *c);
/*
 * await wait(): release the lock, wait for a notify, take the lock back.
 * 0 when notified. CONC_ECANCELED when cancelled; the lock is held again
 * then too (asyncio re-acquires it even on cancellation, absorbing further
 * cancels while it does; only a loop that is closed and unwinding its
 * tasks ends the wait without it), and a notification this waiter had
 * already received goes to the next waiter. CONC_ESTATE when the lock is
 * not held or outside a task.
 */
CONC_EXTERN int conc_aio_condition_wait(conc_aio_condition_t *c);
/*
 * await wait_for(pred): pred(arg) is checked first and after every wake-up,
 * always with the lock held; returns pred's value once it is nonzero (Python
 * returns the predicate's value). pred returns 0 (not yet) or a positive
 * value; a negative value ends the wait with that value as its code. Codes
 * of wait() as for wait(); a predicate true at once needs no lock.
 */
CONC_EXTERN int conc_aio_condition_wait_for(conc_aio_condition_t *c,
                                            int (*pred)(void *arg), void *arg);
/* notify(n): wake the n oldest waiters not yet woken (n <= 0: none).
 * CONC_ESTATE when the lock is not held. */
CONC_EXTERN int conc_aio_condition_notify(conc_aio_condition_t *c, int n);
CONC_EXTERN int conc_aio_condition_notify_all(conc_aio_condition_t *c);

/* ----------------------------------------------- Semaphore / Bounded... */

typedef struct conc_aio_semaphore {
  struct {
    conc__aio_wq_t waiters;
    void *loop;
    int32_t value;
    int32_t bound;   /* BoundedSemaphore's initial value, else -1 */
    int32_t wakeups; /* waiters woken that have not resumed yet */
  } priv;
} conc_aio_semaphore_t;

#define CONC_AIO_SEMAPHORE_INIT(v)                                             \
  {                                                                            \
    { CONC__AIO_WQ_INIT, NULL, (int32_t)(v), -1, 0 }                           \
  }
#define CONC_AIO_BOUNDED_SEMAPHORE_INIT(v)                                     \
  {                                                                            \
    { CONC__AIO_WQ_INIT, NULL, (int32_t)(v), (int32_t)(v), 0 }                 \
  }

typedef struct conc_aio_semaphore_opts {
  bool bounded; /* BoundedSemaphore: release past the initial value fails */
} conc_aio_semaphore_opts_t;

/* Semaphore(value): value < 0 is CONC_EINVAL. opts may be NULL. */
CONC_EXTERN int conc_aio_semaphore_init(conc_aio_semaphore_t *s, int value,
                                        const conc_aio_semaphore_opts_t *opts);
CONC_EXTERN int conc_aio_semaphore_destroy(conc_aio_semaphore_t *s);
/* await acquire(): FIFO as the lock. CONC_ECANCELED (no unit taken),
 * CONC_ESTATE outside a task, CONC_ENOMEM. */
CONC_EXTERN int conc_aio_semaphore_acquire(conc_aio_semaphore_t *s);
/* release(): one unit back, the oldest waiter woken. Bounded: past the
 * initial value is CONC_EINVAL (ValueError), nothing changed. Past INT32_MAX
 * is CONC_EOVERFLOW. */
CONC_EXTERN int conc_aio_semaphore_release(conc_aio_semaphore_t *s);
/* locked(): true when an acquire would wait (no unit, or tasks queued). */
CONC_EXTERN bool conc_aio_semaphore_locked(const conc_aio_semaphore_t *s);
/* The counter (Python's _value). */
CONC_EXTERN int conc_aio_semaphore_value(const conc_aio_semaphore_t *s);

/* --------------------------------------------------------------- Barrier */

typedef struct conc_aio_barrier {
  struct {
    conc__aio_wq_t cycle; /* parties waiting in the current cycle */
    conc__aio_wq_t held;  /* arrivals held back while it drains or resets */
    void *loop;
    int32_t parties;
    int32_t count; /* parties of the cycle that have not left wait() */
    int32_t state; /* filling, draining, resetting, broken */
  } priv;
} conc_aio_barrier_t;

#define CONC_AIO_BARRIER_INIT(parties)                                         \
  {                                                                            \
    { CONC__AIO_WQ_INIT, CONC__AIO_WQ_INIT, NULL, (int32_t)(parties), 0, 0 }   \
  }

/* Barrier(parties): parties < 1 is CONC_EINVAL. */
CONC_EXTERN int conc_aio_barrier_init(conc_aio_barrier_t *b, int parties);
/* CONC_EBUSY while parties wait or leave. */
CONC_EXTERN int conc_aio_barrier_destroy(conc_aio_barrier_t *b);
/*
 * await wait(): when the parties-th task arrives, every waiting party
 * returns; each gets a distinct index in [0, parties), in order of arrival
 * (the last arriver gets parties-1). CONC_EBROKEN when the barrier is
 * broken, or is reset or aborted while the caller waits. A task cancelled
 * while it waits returns CONC_ECANCELED and leaves: the barrier stays
 * intact and the party must be made up by another arrival. Arrivals while
 * the released parties are still leaving wait for the next cycle.
 * CONC_ESTATE outside a task.
 */
CONC_EXTERN int conc_aio_barrier_wait(conc_aio_barrier_t *b);
/* reset(): waiting parties return CONC_EBROKEN; the barrier is usable again
 * once they have left. Never suspends. */
CONC_EXTERN int conc_aio_barrier_reset(conc_aio_barrier_t *b);
/* abort(): break the barrier: waiting and later wait() calls return
 * CONC_EBROKEN until reset(). */
CONC_EXTERN int conc_aio_barrier_abort(conc_aio_barrier_t *b);
CONC_EXTERN int conc_aio_barrier_parties(const conc_aio_barrier_t *b);
/* n_waiting: parties waiting in the filling cycle (0 while it drains). */
CONC_EXTERN int conc_aio_barrier_n_waiting(const conc_aio_barrier_t *b);
CONC_EXTERN bool conc_aio_barrier_broken(const conc_aio_barrier_t *b);

/* ----------------------------------------------------------------- Queue */

typedef enum conc_aio_queue_kind {
  CONC_AIO_QUEUE_FIFO = 0, /* asyncio.Queue */
  CONC_AIO_QUEUE_LIFO,     /* asyncio.LifoQueue */
  CONC_AIO_QUEUE_PRIORITY  /* asyncio.PriorityQueue (needs compare) */
} conc_aio_queue_kind_t;

typedef struct conc_aio_queue_opts {
  /* Python's maxsize: 0 is unbounded; negative is CONC_EINVAL. */
  long maxsize;
  conc_aio_queue_kind_t kind;
  /* PRIORITY: <0, 0, >0 as item a leaves before, with, after item b (the
   * items themselves are passed). Equal items leave in insertion order. */
  int (*compare)(const void *a, const void *b, void *arg);
  /* Called for each item shutdown(immediate) discards or destroy finds
   * queued; NULL: such items are dropped. */
  void (*free_item)(void *item, void *arg);
  void *arg; /* passed to compare and free_item */
} conc_aio_queue_opts_t;

typedef struct conc_aio_queue {
  struct {
    void *buf;             /* ring (FIFO), stack (LIFO) or heap (PRIORITY) */
    size_t cap, head, len; /* entries allocated, first, in use */
    uint64_t seq;          /* insertion counter: stable priority ties */
    long maxsize;
    long unfinished;
    int32_t kind;
    uint32_t shutdown;
    int (*compare)(const void *, const void *, void *);
    void (*free_item)(void *, void *);
    void *arg;
    conc__aio_wq_t getters, putters;
    void *loop;
    conc_aio_event_t finished; /* set while unfinished == 0 */
  } priv;
} conc_aio_queue_t;

/* An unbounded FIFO queue (its buffer is allocated by the first put). */
#define CONC_AIO_QUEUE_INIT                                                    \
  {                                                                            \
    {                                                                          \
      NULL, 0u, 0u, 0u, 0u, 0L, 0L, 0, 0u, NULL, NULL, NULL,                   \
          CONC__AIO_WQ_INIT, CONC__AIO_WQ_INIT, NULL, {                        \
        { CONC__AIO_WQ_INIT, NULL, 1u }                                        \
      }                                                                        \
    }                                                                          \
  }

/* Queue(maxsize). opts may be NULL. CONC_EINVAL (NULL queue, negative
 * maxsize, bad kind, PRIORITY without compare). */
CONC_EXTERN int conc_aio_queue_init(conc_aio_queue_t *q,
                                    const conc_aio_queue_opts_t *opts);
/* CONC_EBUSY while a task waits in put, get or join (nothing changed);
 * else the items left go to free_item and the buffer is freed. */
CONC_EXTERN int conc_aio_queue_destroy(conc_aio_queue_t *q);
/*
 * await put(item): waits while the queue is full. 0, CONC_ESHUTDOWN (shut
 * down, also while waiting), CONC_ECANCELED (nothing put), CONC_ESTATE
 * outside a task, CONC_ENOMEM.
 */
CONC_EXTERN int conc_aio_queue_put(conc_aio_queue_t *q, void *item);
/* put_nowait(item): 0, CONC_EFULL, CONC_ESHUTDOWN, CONC_ENOMEM. Any code
 * of the loop's thread may call it. */
CONC_EXTERN int conc_aio_queue_put_nowait(conc_aio_queue_t *q, void *item);
/*
 * await get(&item): waits while the queue is empty. 0 and *out,
 * CONC_ESHUTDOWN (shut down and empty, also while waiting), CONC_ECANCELED
 * (no item taken: an item whose wake-up reached a cancelled getter stays
 * queued for the next one), CONC_EINVAL (out NULL), CONC_ESTATE outside a
 * task.
 */
CONC_EXTERN int conc_aio_queue_get(conc_aio_queue_t *q, void **out);
/* get_nowait(&item): 0, CONC_EEMPTY, CONC_ESHUTDOWN (shut down and
 * empty). */
CONC_EXTERN int conc_aio_queue_get_nowait(conc_aio_queue_t *q, void **out);
/* qsize(), empty(), full() (never full when unbounded); -1 / false for
 * NULL. */
CONC_EXTERN long conc_aio_queue_qsize(const conc_aio_queue_t *q);
CONC_EXTERN bool conc_aio_queue_empty(const conc_aio_queue_t *q);
CONC_EXTERN bool conc_aio_queue_full(const conc_aio_queue_t *q);
CONC_EXTERN long conc_aio_queue_maxsize(const conc_aio_queue_t *q);
/* task_done(): CONC_ETASKDONE (ValueError) when called more times than items
 * were put. */
CONC_EXTERN int conc_aio_queue_task_done(conc_aio_queue_t *q);
/* await join(): until every item put has had its task_done. 0,
 * CONC_ECANCELED, CONC_ESTATE outside a task. */
CONC_EXTERN int conc_aio_queue_join(conc_aio_queue_t *q);
/* The puts still waiting for task_done. */
CONC_EXTERN long conc_aio_queue_unfinished_tasks(const conc_aio_queue_t *q);
/*
 * shutdown(immediate) (Python 3.13): later puts return CONC_ESHUTDOWN, gets
 * drain what is left and then return CONC_ESHUTDOWN; waiting putters and
 * getters wake and re-check. immediate also discards every item (to
 * free_item), counting a task_done for each, which may release join().
 * May be called again, either way.
 */
CONC_EXTERN int conc_aio_queue_shutdown(conc_aio_queue_t *q, bool immediate);
CONC_EXTERN bool conc_aio_queue_is_shutdown(const conc_aio_queue_t *q);

CONC_END_DECLS

#endif
