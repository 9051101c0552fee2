/*
 * asyncio's Queue, LifoQueue and PriorityQueue for the tasks of an event
 * loop, with Python 3.13's shutdown.
 *
 * Locking protocol: none. A queue is confined to the thread of the loop
 * whose tasks use it, and a task gives up the thread only inside
 * conc_aio_await, so no two pieces of code touch a queue at once; every
 * state change is made before or after that call, never across it. A
 * waiting getter or putter is a loop future, as in asyncio: put_nowait
 * wakes the oldest getter and leaves the item in the queue, and the getter
 * takes it when it resumes. A getter cancelled at the moment it was woken
 * therefore takes nothing and passes the wake-up on, so no item is lost.
 * Waiter records live on the waiting tasks' stacks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aio_wq-int.h"
#include "conc/aiosync.h"
#include "conc/error.h"
#include "conc/loop.h"

/* ------------------------------------------------------ waiter records */

typedef conc__aio_waiter_t waiter_t;

/* Insert in ticket order: a new waiter goes last; one that was woken but
 * found its slot or item taken goes back to its place, not to the end. */
static void wq_insert(conc__aio_wq_t *q, waiter_t *w) {
  waiter_t *after = q->tail;
  while (after && after->ticket > w->ticket)
    after = after->prev;
  w->prev = after;
  w->next = after ? after->next : q->head;
  if (w->next)
    w->next->prev = w;
  else
    q->tail = w;
  if (after)
    after->next = w;
  else
    q->head = w;
  q->n++;
  w->queued = true;
}

/* Wake the oldest waiter not woken or cancelled yet, dropping the others
 * from the list (they unlink nothing when they resume). */
static void wake_next(conc__aio_wq_t *q) {
  waiter_t *w;
  while ((w = q->head) != NULL) {
    conc__aio_wq_unlink(q, w);
    if (!conc_aio_future_done(w->fut)) {
      conc_aio_future_set_result(w->fut, NULL);
      return;
    }
  }
}

static void wake_all(conc__aio_wq_t *q) {
  waiter_t *w;
  while ((w = q->head) != NULL) {
    conc__aio_wq_unlink(q, w);
    if (!conc_aio_future_done(w->fut))
      conc_aio_future_set_result(w->fut, NULL);
  }
}

static bool woken(const waiter_t *w) {
  return conc_aio_future_done(w->fut) && !conc_aio_future_cancelled(w->fut);
}

static conc_loop_t *task_loop(void) {
  conc_aio_future_t *t = conc_aio_current_task();
  return t ? conc_aio_future_loop(t) : NULL;
}

/* Queue w and suspend until woken or cancelled; conc_aio_await's code with
 * w off the list (w->fut NULL when it failed before queueing). Waiters of
 * one loop bind the queue to it while they wait. */
static int park(conc_aio_queue_t *q, conc__aio_wq_t *wq, conc_loop_t *loop,
                waiter_t *w) {
  w->fut = NULL;
  w->queued = false;
  if (q->priv.getters.n + q->priv.putters.n && q->priv.loop != loop)
    return CONC_ESTATE;
  int rc = conc_aio_future_create(loop, &w->fut);
  if (rc)
    return rc;
  q->priv.loop = loop;
  wq_insert(wq, w);
  rc = conc_aio_await(w->fut, NULL);
  conc__aio_wq_unlink(wq, w);
  return rc;
}

/* -------------------------------------------------------------- storage */

typedef struct entry {
  void *item;
  uint64_t seq; /* insertion order: equal priorities leave FIFO (the
                   counter also numbers waiters; it only has to grow) */
} entry_t;

static entry_t *ents(const conc_aio_queue_t *q) { return q->priv.buf; }

static bool before(const conc_aio_queue_t *q, const entry_t *a,
                   const entry_t *b) {
  int c = q->priv.compare(a->item, b->item, q->priv.arg);
  return c < 0 || (c == 0 && a->seq < b->seq);
}

static void heap_up(conc_aio_queue_t *q, size_t i) {
  entry_t *e = ents(q), x = e[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!before(q, &x, &e[p]))
      break;
    e[i] = e[p];
    i = p;
  }
  e[i] = x;
}

static void heap_down(conc_aio_queue_t *q, size_t i) {
  entry_t *e = ents(q), x = e[i];
  size_t n = q->priv.len;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && before(q, &e[c + 1], &e[c]))
      c++;
    if (!before(q, &e[c], &x))
      break;
    e[i] = e[c];
    i = c;
  }
  e[i] = x;
}

/* Room for one more entry; a FIFO ring is laid out from 0 again. The
 * capacity is a power of two, so ring positions wrap with a mask. */
static int grow(conc_aio_queue_t *q) {
  if (q->priv.len < q->priv.cap)
    return 0;
  size_t cap = q->priv.cap ? q->priv.cap * 2 : 8;
  if (cap > SIZE_MAX / sizeof(entry_t))
    return CONC_ENOMEM;
  entry_t *n = malloc(cap * sizeof *n);
  if (!n)
    return CONC_ENOMEM;
  for (size_t i = 0; i < q->priv.len; i++)
    n[i] = ents(q)[(q->priv.head + i) & (q->priv.cap - 1)];
  free(q->priv.buf);
  q->priv.buf = n;
  q->priv.cap = cap;
  q->priv.head = 0;
  return 0;
}

static int store(conc_aio_queue_t *q, void *item) {
  int rc = grow(q);
  if (rc)
    return rc;
  entry_t e = {item, q->priv.seq++};
  size_t i = q->priv.kind == CONC_AIO_QUEUE_FIFO
                 ? (q->priv.head + q->priv.len) & (q->priv.cap - 1)
                 : q->priv.len;
  ents(q)[i] = e;
  q->priv.len++;
  if (q->priv.kind == CONC_AIO_QUEUE_PRIORITY)
    heap_up(q, i);
  return 0;
}

static void *take(conc_aio_queue_t *q) {
  entry_t *e = ents(q);
  void *item;
  q->priv.len--;
  switch (q->priv.kind) {
  case CONC_AIO_QUEUE_FIFO:
    item = e[q->priv.head].item;
    q->priv.head = (q->priv.head + 1) & (q->priv.cap - 1);
    break;
  case CONC_AIO_QUEUE_LIFO:
    item = e[q->priv.len].item;
    break;
  default:
    item = e[0].item;
    e[0] = e[q->priv.len];
    if (q->priv.len > 0)
      heap_down(q, 0);
    break;
  }
  return item;
}

/* ----------------------------------------------------------------- API */

int conc_aio_queue_init(conc_aio_queue_t *q,
                        const conc_aio_queue_opts_t *opts) {
  conc_aio_queue_opts_t o = {0};
  if (opts)
    o = *opts;
  if (!q || o.maxsize < 0 || (int)o.kind < (int)CONC_AIO_QUEUE_FIFO ||
      (int)o.kind > (int)CONC_AIO_QUEUE_PRIORITY)
    return CONC_EINVAL;
  if (o.kind == CONC_AIO_QUEUE_PRIORITY && !o.compare)
    return CONC_EINVAL;
  *q = (conc_aio_queue_t)CONC_AIO_QUEUE_INIT;
  q->priv.maxsize = o.maxsize;
  q->priv.kind = (int32_t)o.kind;
  q->priv.compare = o.compare;
  q->priv.free_item = o.free_item;
  q->priv.arg = o.arg;
  return 0;
}

int conc_aio_queue_destroy(conc_aio_queue_t *q) {
  if (!q)
    return CONC_EINVAL;
  if (q->priv.getters.n || q->priv.putters.n || q->priv.finished.priv.waiters.n)
    return CONC_EBUSY;
  while (q->priv.len) {
    void *item = take(q);
    if (q->priv.free_item)
      q->priv.free_item(item, q->priv.arg);
  }
  free(q->priv.buf);
  q->priv.buf = NULL;
  q->priv.cap = q->priv.head = 0;
  return 0;
}

long conc_aio_queue_qsize(const conc_aio_queue_t *q) {
  return q ? (long)q->priv.len : -1;
}

bool conc_aio_queue_empty(const conc_aio_queue_t *q) {
  return q && q->priv.len == 0;
}

bool conc_aio_queue_full(const conc_aio_queue_t *q) {
  return q && q->priv.maxsize > 0 && (long)q->priv.len >= q->priv.maxsize;
}

long conc_aio_queue_maxsize(const conc_aio_queue_t *q) {
  return q ? q->priv.maxsize : -1;
}

long conc_aio_queue_unfinished_tasks(const conc_aio_queue_t *q) {
  return q ? q->priv.unfinished : -1;
}

bool conc_aio_queue_is_shutdown(const conc_aio_queue_t *q) {
  return q && q->priv.shutdown;
}

int conc_aio_queue_put_nowait(conc_aio_queue_t *q, void *item) {
  if (!q)
    return CONC_EINVAL;
  if (q->priv.shutdown)
    return CONC_ESHUTDOWN;
  if (conc_aio_queue_full(q))
    return CONC_EFULL;
  int rc = store(q, item);
  if (rc)
    return rc;
  q->priv.unfinished++;
  conc_aio_event_clear(&q->priv.finished);
  wake_next(&q->priv.getters);
  return 0;
}

int conc_aio_queue_get_nowait(conc_aio_queue_t *q, void **out) {
  if (!q || !out)
    return CONC_EINVAL;
  if (q->priv.len == 0)
    return q->priv.shutdown ? CONC_ESHUTDOWN : CONC_EEMPTY;
  *out = take(q);
  wake_next(&q->priv.putters);
  return 0;
}

int conc_aio_queue_put(conc_aio_queue_t *q, void *item) {
  if (!q)
    return CONC_EINVAL;
  conc_loop_t *loop = task_loop();
  if (!loop)
    return CONC_ESTATE;
  uint64_t ticket = q->priv.seq++;
  while (conc_aio_queue_full(q)) {
    if (q->priv.shutdown)
      return CONC_ESHUTDOWN;
    waiter_t w;
    w.ticket = ticket;
    int rc = park(q, &q->priv.putters, loop, &w);
    if (rc && w.fut && woken(&w) && !conc_aio_queue_full(q))
      wake_next(&q->priv.putters); /* the free slot goes to the next one */
    conc_aio_future_release(w.fut);
    if (rc)
      return rc;
  }
  return conc_aio_queue_put_nowait(q, item);
}

int conc_aio_queue_get(conc_aio_queue_t *q, void **out) {
  if (!q || !out)
    return CONC_EINVAL;
  conc_loop_t *loop = task_loop();
  if (!loop)
    return CONC_ESTATE;
  uint64_t ticket = q->priv.seq++;
  while (q->priv.len == 0) {
    if (q->priv.shutdown)
      return CONC_ESHUTDOWN;
    waiter_t w;
    w.ticket = ticket;
    int rc = park(q, &q->priv.getters, loop, &w);
    if (rc && w.fut && woken(&w) && q->priv.len > 0)
      wake_next(&q->priv.getters); /* the item goes to the next getter */
    conc_aio_future_release(w.fut);
    if (rc)
      return rc;
  }
  return conc_aio_queue_get_nowait(q, out);
}

int conc_aio_queue_task_done(conc_aio_queue_t *q) {
  if (!q)
    return CONC_EINVAL;
  if (q->priv.unfinished <= 0)
    return CONC_ETASKDONE;
  if (--q->priv.unfinished == 0)
    conc_aio_event_set(&q->priv.finished);
  return 0;
}

int conc_aio_queue_join(conc_aio_queue_t *q) {
  if (!q)
    return CONC_EINVAL;
  if (!task_loop())
    return CONC_ESTATE;
  if (q->priv.unfinished == 0)
    return 0;
  return conc_aio_event_wait(&q->priv.finished);
}

int conc_aio_queue_shutdown(conc_aio_queue_t *q, bool immediate) {
  if (!q)
    return CONC_EINVAL;
  q->priv.shutdown = 1;
  if (immediate) {
    while (q->priv.len) {
      void *item = take(q);
      if (q->priv.free_item)
        q->priv.free_item(item, q->priv.arg);
      if (q->priv.unfinished > 0)
        q->priv.unfinished--;
    }
    if (q->priv.unfinished == 0)
      conc_aio_event_set(&q->priv.finished);
  }
  /* Everyone re-checks: putters fail, getters drain or fail. */
  wake_all(&q->priv.getters);
  wake_all(&q->priv.putters);
  return 0;
}
