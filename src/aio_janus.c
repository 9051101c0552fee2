/*
 * aio_janus: the thread Queue, SimpleQueue and Event awaited from a loop task
 * (issue 11, F13, beyond asyncio: what Python users take the janus package
 * for). The task is suspended, never its thread; threads keep using the
 * blocking calls. The thread side is janus-int.h's waiter interface.
 *
 * Locking protocol. A waiting task is a heap record (struct jw) around the
 * thread layer's waiter. The queue serves it under the queue's own lock,
 * then, after unlocking, calls jw_wake on the serving thread, which posts
 * jw_on_loop to the task's loop with call_soon_threadsafe and touches
 * nothing else. jw_on_loop completes the loop future the task awaits. The
 * record's `refs` is atomic: the task, the serving thread's wake and the
 * posted callback hold one each, and the last frees it; the loop future,
 * `task_gone` and `cb_ran` are touched only on the loop's thread. A task
 * that leaves after it was served (a cancel or a timeout racing the
 * hand-over) first lets the loop run (sleep(0)) until the posted callback
 * has run or the post failed, so that no callback of a gone task stays
 * queued on a loop that may close next. Only a loop that is being closed
 * with the task still in it runs no more callbacks: the record (a few
 * dozen bytes) then stays with the dropped callback, as the bridges'
 * records do.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "conc/error.h"
#include "conc/loop.h"
#include "conc/queue.h"
#include "conc/sync.h"
#include "init-int.h"
#include "janus-int.h"
#include "qsync-int.h"

struct jw {
  conc__awaiter_t aw; /* first: the thread layer sees only this */
  int refs;           /* atomic */
  int post_failed;    /* atomic: the wake could not reach the loop */
  conc_loop_t *loop;
  conc_aio_future_t *fut; /* the loop's thread only, as below */
  bool task_gone, cb_ran;
};

/* How to wait on one kind of object. try_wait: 0 (done now), a code, or
 * CONC__AW_QUEUED; leave: true when the waiter was still linked. */
struct jops {
  int (*try_wait)(void *obj, conc__awaiter_t *w, void *item, void **out);
  bool (*leave)(void *obj, conc__awaiter_t *w, bool give_back);
};

static void jw_unref(struct jw *j) {
  if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) == 0)
    free(j);
}

static void jw_on_loop(void *arg) {
  struct jw *j = arg;
  j->cb_ran = true;
  if (!j->task_gone && !conc_aio_future_done(j->fut))
    conc_aio_future_set_result(j->fut, NULL);
  jw_unref(j);
}

/* On the serving thread, after the object's lock is released. */
static void jw_wake(conc__awaiter_t *w) {
  struct jw *j = (struct jw *)w;
  if (conc_loop_call_soon_threadsafe(j->loop, jw_on_loop, j) != 0) {
    __atomic_store_n(&j->post_failed, 1, __ATOMIC_RELEASE);
    jw_unref(j); /* the callback's: it never runs */
  }
  jw_unref(j);
}

static void jw_on_timeout(void *arg) {
  struct jw *j = arg;
  if (!conc_aio_future_done(j->fut))
    conc_aio_future_set_error(j->fut, CONC_ETIMEDOUT);
}

/* The operation completed although the await was cancelled: the cancel is
 * not lost, it is delivered at the task's next await (the count of cancel
 * requests stays as it was). */
static void cancel_again(void) {
  conc_aio_future_t *t = conc_aio_current_task();
  conc_aio_task_uncancel(t);
  conc_aio_cancel(t, NULL); /* NULL keeps the message */
}

/* A served task that leaves: let the loop run the posted callback. */
static bool drain_post(struct jw *j) {
  bool cancelled = false;
  while (!j->cb_ran && !__atomic_load_n(&j->post_failed, __ATOMIC_ACQUIRE) &&
         !conc_loop_is_closed(j->loop))
    if (conc_aio_sleep(0) == CONC_ECANCELED)
      cancelled = true;
  return cancelled;
}

/* The outcome of a served wait; rc is what the await returned. */
static int served_outcome(struct jw *j, int rc, void **out) {
  bool cancelled = drain_post(j) || rc == CONC_ECANCELED;
  if (j->aw.rc == 0) {
    if (out)
      *out = j->aw.item;
    if (cancelled)
      cancel_again();
    return 0;
  }
  return cancelled ? CONC_ECANCELED : j->aw.rc;
}

/* The slow path: the task waits, suspended, until served, the timeout
 * (CONC_FOREVER: none) or a cancel. */
static int jwait(void *obj, const struct jops *ops, double timeout, void *item,
                 void **out) {
  conc_loop_t *loop = conc_loop_running();
  struct jw *j = calloc(1, sizeof *j);
  if (!j)
    return CONC_ENOMEM;
  int rc = conc_aio_future_create(loop, &j->fut);
  if (rc) {
    free(j);
    return rc;
  }
  j->aw.wake = jw_wake;
  j->loop = loop;
  j->refs = 3; /* the task, the wake, the posted callback */
  conc_handle_t timer = {0};
  if (timeout != CONC_FOREVER)
    rc = conc_loop_call_later(loop, timeout, jw_on_timeout, j, &timer);
  if (rc == 0)
    rc = ops->try_wait(obj, &j->aw, item, out);
  if (rc != CONC__AW_QUEUED) { /* done at once, or failed: nobody saw j */
    conc_loop_cancel(loop, timer);
    conc_aio_future_release(j->fut);
    free(j);
    return rc;
  }
  rc = conc_aio_await(j->fut, NULL);
  conc_loop_cancel(loop, timer);
  if (ops->leave(obj, &j->aw, rc == CONC_ECANCELED)) {
    conc_aio_future_release(j->fut);
    free(j);
    return rc;
  }
  rc = served_outcome(j, rc, out);
  j->task_gone = true;
  conc_aio_future_release(j->fut);
  jw_unref(j);
  return rc;
}

/* Checks every call makes first: CONC_EINVAL for bad values, then
 * CONC_ESTATE outside a task. */
static int precheck(const void *obj, double timeout) {
  if (!obj || isnan(timeout) || (timeout < 0 && timeout != CONC_FOREVER))
    return CONC_EINVAL;
  return conc_aio_current_task() ? 0 : CONC_ESTATE;
}

/* ---- Queue ---------------------------------------------------------------- */

static int q_try_get(void *obj, conc__awaiter_t *w, void *item, void **out) {
  (void)item;
  return conc__queue_get_or_wait(obj, w, out);
}

static bool q_leave_get(void *obj, conc__awaiter_t *w, bool give_back) {
  return conc__queue_leave(obj, w, false, give_back);
}

static int q_try_put(void *obj, conc__awaiter_t *w, void *item, void **out) {
  (void)out;
  return conc__queue_put_or_wait(obj, w, item);
}

static bool q_leave_put(void *obj, conc__awaiter_t *w, bool give_back) {
  return conc__queue_leave(obj, w, true, give_back);
}

static const struct jops q_get_ops = {q_try_get, q_leave_get};
static const struct jops q_put_ops = {q_try_put, q_leave_put};

int conc_queue_get_async(conc_queue_t *q, double timeout, void **out) {
  int rc = out ? precheck(q, timeout) : CONC_EINVAL;
  if (rc)
    return rc;
  rc = conc_queue_get_nowait(q, out);
  if (rc != CONC_EEMPTY)
    return rc;
  if (timeout == 0)
    return CONC_ETIMEDOUT;
  return jwait(q, &q_get_ops, timeout, NULL, out);
}

int conc_queue_put_async(conc_queue_t *q, void *item, double timeout) {
  int rc = precheck(q, timeout);
  if (rc)
    return rc;
  rc = conc_queue_put_nowait(q, item);
  if (rc != CONC_EFULL)
    return rc;
  if (timeout == 0)
    return CONC_ETIMEDOUT;
  return jwait(q, &q_put_ops, timeout, item, NULL);
}

/* ---- SimpleQueue ----------------------------------------------------------- */

static int sq_try_get(void *obj, conc__awaiter_t *w, void *item, void **out) {
  (void)item;
  return conc__simple_queue_get_or_wait(obj, w, out);
}

static bool sq_leave_get(void *obj, conc__awaiter_t *w, bool give_back) {
  return conc__simple_queue_leave(obj, w, give_back);
}

static const struct jops sq_get_ops = {sq_try_get, sq_leave_get};

int conc_simple_queue_get_async(conc_simple_queue_t *q, double timeout,
                                void **out) {
  int rc = out ? precheck(q, timeout) : CONC_EINVAL;
  if (rc)
    return rc;
  rc = conc_simple_queue_get_nowait(q, out);
  if (rc != CONC_EEMPTY)
    return rc;
  if (timeout == 0)
    return CONC_ETIMEDOUT;
  return jwait(q, &sq_get_ops, timeout, NULL, out);
}

/* ---- Event ------------------------------------------------------------------
 *
 * conc_event_t is a public struct with no room for a list, so task waiters
 * live in a table of buckets keyed by the event's address, each under its
 * own lock. Bit 31 of the event's nwait (CONC__EVENT_TASKS) says that the
 * table may hold waiters for it: a task raises it (under the bucket lock)
 * before it looks at the flag, and set() looks at nwait after raising the
 * flag, both sequentially consistent, so either set() sees the bit or the
 * task sees the flag. The bit is lowered under the bucket lock when the
 * event's last task waiter is served or leaves. A set() with no waiter at
 * all still pays nothing more than its one load of nwait.
 */

#define EV_BUCKETS 64

static struct ev_bucket {
  conc__mu_t mu;
  conc__awaiter_t *head;
} ev_table[EV_BUCKETS];

static pthread_once_t ev_once = PTHREAD_ONCE_INIT;

static void ev_fork_prepare(void) {
  for (int i = 0; i < EV_BUCKETS; i++)
    conc__mu_lock(&ev_table[i].mu);
}

static void ev_fork_parent(void) {
  for (int i = EV_BUCKETS - 1; i >= 0; i--)
    conc__mu_unlock(&ev_table[i].mu);
}

static void ev_fork_child(void) {
  for (int i = 0; i < EV_BUCKETS; i++)
    conc__mu_reinit(&ev_table[i].mu);
}

static void ev_init(void) {
  conc__atfork_register(ev_fork_prepare, ev_fork_parent, ev_fork_child);
}

static struct ev_bucket *ev_bucket(const conc_event_t *e) {
  uintptr_t h = (uintptr_t)e;
  h ^= h >> 7 ^ h >> 13;
  return &ev_table[h % EV_BUCKETS];
}

/* With the bucket locked: lower the bit when no waiter for e is left. */
static void ev_lower_if_none(struct ev_bucket *b, conc_event_t *e) {
  conc__awaiter_t *w = b->head;
  if (w)
    do {
      if (w->key == e)
        return;
      w = w->next;
    } while (w != b->head);
  __atomic_fetch_and(&e->priv.nwait, ~CONC__EVENT_TASKS, __ATOMIC_SEQ_CST);
}

void conc__event_serve_tasks(conc_event_t *e) {
  struct ev_bucket *b = ev_bucket(e);
  conc__awaiter_t *chain = NULL;
  conc__mu_lock(&b->mu);
  conc__awaiter_t *w = b->head;
  while (w) {
    conc__awaiter_t *next = w->next == b->head ? NULL : w->next;
    if (w->key == e) {
      conc__awl_unlink(&b->head, w);
      w->rc = 0;
      w->next = chain;
      chain = w;
    }
    w = next;
  }
  ev_lower_if_none(b, e);
  conc__mu_unlock(&b->mu);
  conc__awl_wake_chain(chain);
}

/* 0 when the flag is up now, or CONC__AW_QUEUED with w linked. */
static int ev_try_wait(void *obj, conc__awaiter_t *w, void *item, void **out) {
  (void)item;
  (void)out;
  conc_event_t *e = obj;
  struct ev_bucket *b = ev_bucket(e);
  int rc = 0;
  conc__mu_lock(&b->mu);
  __atomic_fetch_or(&e->priv.nwait, CONC__EVENT_TASKS, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&e->priv.word, __ATOMIC_SEQ_CST) & 1u) {
    ev_lower_if_none(b, e);
  } else {
    w->key = e;
    conc__awl_push(&b->head, w);
    rc = CONC__AW_QUEUED;
  }
  conc__mu_unlock(&b->mu);
  return rc;
}

static bool ev_leave(void *obj, conc__awaiter_t *w, bool give_back) {
  (void)give_back;
  conc_event_t *e = obj;
  struct ev_bucket *b = ev_bucket(e);
  conc__mu_lock(&b->mu);
  bool waiting = w->linked;
  if (waiting) {
    conc__awl_unlink(&b->head, w);
    ev_lower_if_none(b, e);
  }
  conc__mu_unlock(&b->mu);
  return waiting;
}

static const struct jops ev_ops = {ev_try_wait, ev_leave};

int conc_event_wait_async(conc_event_t *e, double timeout) {
  if (!e || isnan(timeout))
    return CONC_EINVAL;
  if (e->priv.flags & CONC__SYNC_PSHARED)
    return CONC_EINVAL; /* a set in another process cannot reach a loop */
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  if (timeout < 0 && timeout != CONC_FOREVER)
    timeout = 0; /* as conc_event_wait: other negatives poll */
  if (conc_event_is_set(e))
    return 0;
  if (timeout == 0)
    return CONC_ETIMEDOUT;
  pthread_once(&ev_once, ev_init);
  return jwait(e, &ev_ops, timeout, NULL, NULL);
}
