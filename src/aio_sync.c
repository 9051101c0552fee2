/*
 * asyncio's Lock, Event, Condition, Semaphore/BoundedSemaphore and Barrier
 * for the tasks of an event loop.
 *
 * Locking protocol: none. Every object is confined to the thread of the
 * loop whose tasks use it, and a task runs only while the loop runs it, so
 * no two pieces of code ever touch an object at once: a task can lose the
 * thread only inside conc_aio_await, and every state change here is made
 * before or after that call, never across it. Waiters are loop futures, as
 * in asyncio: a waker completes the future and the task resumes on a later
 * iteration, so the rules for a wake-up that races a cancellation are the
 * future rules. A waiter's record lives on its task's stack, which stays
 * put while the task is suspended; the waiter unlinks it before returning.
 */
#include <stdint.h>
#include <stdlib.h>

#include "aio_wq-int.h"
#include "conc/aiosync.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "lockdep-int.h"

/* ------------------------------------------------------ waiter records */

typedef conc__aio_waiter_t waiter_t;

static waiter_t *wq_pop(conc__aio_wq_t *q) {
  waiter_t *w = q->head;
  if (w)
    conc__aio_wq_unlink(q, w);
  return w;
}

/* A waiter was woken: its future holds a result (it may still have been
 * cancelled at that same moment, in which case its await said so). */
static bool woken(const waiter_t *w) {
  return conc_aio_future_done(w->fut) && !conc_aio_future_cancelled(w->fut);
}

/* Wake w unless it is woken or cancelled already. */
static bool wake(waiter_t *w) {
  if (conc_aio_future_done(w->fut))
    return false;
  conc_aio_future_set_result(w->fut, NULL);
  return true;
}

/* The running task's loop, or NULL outside a task. */
static conc_loop_t *task_loop(void) {
  conc_aio_future_t *t = conc_aio_current_task();
  return t ? conc_aio_future_loop(t) : NULL;
}

/*
 * Queue w on q and suspend the task until w's future is done or the task is
 * cancelled; returns conc_aio_await's code with w off the list (w->fut is
 * NULL when it failed before queueing w). `busy` is
 * how many waiters the object has in all its lists: while it has any, they
 * bind it to their loop. The caller releases w->fut.
 */
static int park(conc__aio_wq_t *q, void **bound, uint32_t busy,
                conc_loop_t *loop, waiter_t *w) {
  w->fut = NULL;
  w->outcome = 0;
  w->queued = false;
  if (busy && *bound != loop)
    return CONC_ESTATE;
  int rc = conc_aio_future_create(loop, &w->fut);
  if (rc)
    return rc;
  *bound = loop;
  conc__aio_wq_push(q, w);
  rc = conc_aio_await(w->fut, NULL);
  conc__aio_wq_unlink(q, w);
  return rc;
}

/* ----------------------------------------------------------------- Lock */

int conc_aio_lock_init(conc_aio_lock_t *l) {
  if (!l)
    return CONC_EINVAL;
  *l = (conc_aio_lock_t)CONC_AIO_LOCK_INIT;
  return 0;
}

int conc_aio_lock_destroy(conc_aio_lock_t *l) {
  if (!l)
    return CONC_EINVAL;
  if (l->priv.waiters.n)
    return CONC_EBUSY;
  if (conc__ld_on()) /* the lock-order checker (lockdep.c) */
    conc__ld_destroy(l, 0, CONC__LD_AIO_LOCK, l->priv.locked);
  return 0;
}

bool conc_aio_lock_locked(const conc_aio_lock_t *l) {
  return l && l->priv.locked;
}

/* Jumping the queue is allowed only when every queued waiter is cancelled
 * (it will leave without taking the lock). */
static bool all_cancelled(const conc__aio_wq_t *q) {
  for (const waiter_t *w = q->head; w; w = w->next)
    if (!conc_aio_future_cancelled(w->fut))
      return false;
  return true;
}

/* Make sure the head waiter runs, unless it is already woken. */
static void lock_wake_first(conc_aio_lock_t *l) {
  waiter_t *w = l->priv.waiters.head;
  if (w)
    wake(w);
}

static int lock_acquire(conc_aio_lock_t *l, conc_loop_t *loop);

/* The lock-order checker (lockdep.c) follows each task's async Locks. */
int conc_aio_lock_acquire(conc_aio_lock_t *l) {
  if (!l)
    return CONC_EINVAL;
  conc_loop_t *loop = task_loop();
  if (!loop)
    return CONC_ESTATE;
  if (!conc__ld_on())
    return lock_acquire(l, loop);
  conc__ld_acq_t a;
  conc__ld_acquire_begin(&a, l, 0, CONC__LD_AIO_LOCK, CONC__LD_BLOCK,
                         CONC__LD_SITE());
  if (l->priv.locked)
    conc__ld_acquire_wait(&a);
  int rc = lock_acquire(l, loop);
  conc__ld_acquire_end(&a, rc == 0);
  return rc;
}

static int lock_acquire(conc_aio_lock_t *l, conc_loop_t *loop) {
  if (!l->priv.locked && all_cancelled(&l->priv.waiters)) {
    l->priv.locked = 1;
    return 0;
  }
  waiter_t w;
  int rc = park(&l->priv.waiters, &l->priv.loop, l->priv.waiters.n, loop, &w);
  if (!w.fut)
    return rc;
  if (rc == 0) {
    l->priv.locked = 1;
  } else if (!l->priv.locked) {
    /* Cancelled, perhaps just after release() chose us: the lock is free
     * and must not stay so while others wait. */
    lock_wake_first(l);
  }
  conc_aio_future_release(w.fut);
  return rc;
}

int conc_aio_lock_release(conc_aio_lock_t *l) {
  if (!l)
    return CONC_EINVAL;
  if (!l->priv.locked)
    return CONC_ESTATE;
  if (conc__ld_on())
    conc__ld_release(l, CONC__LD_AIO_LOCK);
  l->priv.locked = 0;
  lock_wake_first(l);
  return 0;
}

/* ---------------------------------------------------------------- Event */

int conc_aio_event_init(conc_aio_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  *e = (conc_aio_event_t)CONC_AIO_EVENT_INIT;
  return 0;
}

int conc_aio_event_destroy(conc_aio_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  return e->priv.waiters.n ? CONC_EBUSY : 0;
}

int conc_aio_event_set(conc_aio_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  if (e->priv.value)
    return 0;
  e->priv.value = 1;
  /* The waiters unlink themselves when they resume: a clear() before then
   * does not take back a wake-up already given. */
  for (waiter_t *w = e->priv.waiters.head; w; w = w->next)
    wake(w);
  return 0;
}

int conc_aio_event_clear(conc_aio_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  e->priv.value = 0;
  return 0;
}

bool conc_aio_event_is_set(const conc_aio_event_t *e) {
  return e && e->priv.value;
}

int conc_aio_event_wait(conc_aio_event_t *e) {
  if (!e)
    return CONC_EINVAL;
  conc_loop_t *loop = task_loop();
  if (!loop)
    return CONC_ESTATE;
  if (e->priv.value)
    return 0;
  waiter_t w;
  int rc = park(&e->priv.waiters, &e->priv.loop, e->priv.waiters.n, loop, &w);
  conc_aio_future_release(w.fut);
  return rc;
}

/* ------------------------------------------------------------ Condition */

static conc_aio_lock_t *cond_lock(conc_aio_condition_t *c) {
  return c->priv.lock ? c->priv.lock : &c->priv.own;
}

int conc_aio_condition_init(conc_aio_condition_t *c,
                            const conc_aio_condition_opts_t *opts) {
  if (!c)
    return CONC_EINVAL;
  *c = (conc_aio_condition_t)CONC_AIO_CONDITION_INIT;
  if (opts && opts->lock)
    c->priv.lock = opts->lock;
  return 0;
}

int conc_aio_condition_destroy(conc_aio_condition_t *c) {
  if (!c)
    return CONC_EINVAL;
  return c->priv.waiters.n || c->priv.own.priv.waiters.n ? CONC_EBUSY : 0;
}

int conc_aio_condition_acquire(conc_aio_condition_t *c) {
  return c ? conc_aio_lock_acquire(cond_lock(c)) : CONC_EINVAL;
}

int conc_aio_condition_release(conc_aio_condition_t *c) {
  return c ? conc_aio_lock_release(cond_lock(c)) : CONC_EINVAL;
}

bool conc_aio_condition_locked(const conc_aio_condition_t *c) {
  if (!c)
    return false;
  return conc_aio_lock_locked(c->priv.lock ? c->priv.lock : &c->priv.own);
}

/* Wake the n oldest waiters that are not woken yet. */
static void cond_notify(conc_aio_condition_t *c, int n) {
  for (waiter_t *w = c->priv.waiters.head; w && n > 0; w = w->next)
    if (wake(w))
      n--;
}

/* Take the lock back whatever happens, as asyncio does: a cancel that
 * arrives meanwhile is remembered and reported, not obeyed. A closed loop
 * unwinds its tasks and can never hand the lock over: give up then. */
static int cond_reacquire(conc_aio_lock_t *l, conc_loop_t *loop) {
  int err = 0;
  for (;;) {
    int rc = conc_aio_lock_acquire(l);
    if (rc == 0)
      return err;
    if (rc != CONC_ECANCELED || conc_loop_is_closed(loop))
      return rc;
    err = rc;
  }
}

int conc_aio_condition_wait(conc_aio_condition_t *c) {
  if (!c)
    return CONC_EINVAL;
  conc_loop_t *loop = task_loop();
  conc_aio_lock_t *l = cond_lock(c);
  if (!loop || !l->priv.locked)
    return CONC_ESTATE;
  if (c->priv.waiters.n && c->priv.loop != loop)
    return CONC_ESTATE;
  conc_aio_lock_release(l);
  waiter_t w;
  int rc = park(&c->priv.waiters, &c->priv.loop, c->priv.waiters.n, loop, &w);
  int rc2 = cond_reacquire(l, loop);
  if (rc == 0 && rc2 != 0)
    rc = rc2;
  /* A notification this task received but cannot act on goes to the next
   * waiter, so none is lost. */
  if (rc != 0 && w.fut && woken(&w))
    cond_notify(c, 1);
  conc_aio_future_release(w.fut);
  return rc;
}

int conc_aio_condition_wait_for(conc_aio_condition_t *c, int (*pred)(void *arg),
                                void *arg) {
  if (!c || !pred)
    return CONC_EINVAL;
  int v = pred(arg);
  while (v == 0) {
    int rc = conc_aio_condition_wait(c);
    if (rc)
      return rc;
    v = pred(arg);
  }
  return v;
}

int conc_aio_condition_notify(conc_aio_condition_t *c, int n) {
  if (!c)
    return CONC_EINVAL;
  if (!cond_lock(c)->priv.locked)
    return CONC_ESTATE;
  cond_notify(c, n);
  return 0;
}

int conc_aio_condition_notify_all(conc_aio_condition_t *c) {
  if (!c)
    return CONC_EINVAL;
  return conc_aio_condition_notify(c, (int)c->priv.waiters.n);
}

/* ------------------------------------------------------------ Semaphore */

int conc_aio_semaphore_init(conc_aio_semaphore_t *s, int value,
                            const conc_aio_semaphore_opts_t *opts) {
  if (!s || value < 0)
    return CONC_EINVAL;
  *s = (conc_aio_semaphore_t)CONC_AIO_SEMAPHORE_INIT(value);
  if (opts && opts->bounded)
    s->priv.bound = value;
  return 0;
}

int conc_aio_semaphore_destroy(conc_aio_semaphore_t *s) {
  if (!s)
    return CONC_EINVAL;
  return s->priv.waiters.n || s->priv.wakeups ? CONC_EBUSY : 0;
}

bool conc_aio_semaphore_locked(const conc_aio_semaphore_t *s) {
  if (!s)
    return false;
  if (s->priv.value == 0 || s->priv.wakeups > 0)
    return true;
  /* FIFO: a unit is not free for a newcomer while live waiters queue. */
  return !all_cancelled(&s->priv.waiters);
}

int conc_aio_semaphore_value(const conc_aio_semaphore_t *s) {
  return s ? s->priv.value : CONC_EINVAL;
}

/* Hand a unit to the oldest live waiter (asyncio 3.12's rule: the unit is
 * taken at wake-up time, so no newcomer can take it first). */
static bool sem_wake_next(conc_aio_semaphore_t *s) {
  waiter_t *w;
  while ((w = wq_pop(&s->priv.waiters)) != NULL) {
    if (wake(w)) {
      s->priv.value--;
      s->priv.wakeups++;
      return true;
    }
  }
  return false;
}

int conc_aio_semaphore_acquire(conc_aio_semaphore_t *s) {
  if (!s)
    return CONC_EINVAL;
  conc_loop_t *loop = task_loop();
  if (!loop)
    return CONC_ESTATE;
  if (!conc_aio_semaphore_locked(s)) {
    s->priv.value--;
    return 0;
  }
  waiter_t w;
  int busy = s->priv.waiters.n + s->priv.wakeups;
  int rc = park(&s->priv.waiters, &s->priv.loop, busy, loop, &w);
  if (!w.fut)
    return rc;
  if (woken(&w)) {
    s->priv.wakeups--;
    if (rc != 0) /* cancelled as it was woken: give the unit back */
      s->priv.value++;
  }
  /* Units freed while waiters were still queued behind us go to them. */
  while (s->priv.value > 0 && sem_wake_next(s))
    ;
  conc_aio_future_release(w.fut);
  return rc;
}

int conc_aio_semaphore_release(conc_aio_semaphore_t *s) {
  if (!s)
    return CONC_EINVAL;
  /* Units promised to woken waiters are free units in transit: count
   * them, or a release while one is in transit would pass the bound. */
  if (s->priv.bound >= 0 && s->priv.value + s->priv.wakeups >= s->priv.bound)
    return CONC_EINVAL;
  if (s->priv.value == INT32_MAX)
    return CONC_EOVERFLOW;
  s->priv.value++;
  sem_wake_next(s);
  return 0;
}

/* -------------------------------------------------------------- Barrier */

enum { B_FILLING = 0, B_DRAINING, B_RESETTING, B_BROKEN };

int conc_aio_barrier_init(conc_aio_barrier_t *b, int parties) {
  if (!b || parties < 1)
    return CONC_EINVAL;
  *b = (conc_aio_barrier_t)CONC_AIO_BARRIER_INIT(parties);
  return 0;
}

int conc_aio_barrier_destroy(conc_aio_barrier_t *b) {
  if (!b)
    return CONC_EINVAL;
  return b->priv.count || b->priv.held.n ? CONC_EBUSY : 0;
}

/* End every queued wait of the cycle: with indices in arrival order when
 * it trips, else with CONC_EBROKEN. The outcome is fixed here, so a reset or
 * abort that comes before a released party resumes does not take back its
 * index. */
static void barrier_end_cycle(conc_aio_barrier_t *b, bool trip) {
  waiter_t *w;
  int i = 0;
  while ((w = wq_pop(&b->priv.cycle)) != NULL) {
    if (!wake(w))
      continue; /* cancelled: its task leaves on its own */
    w->outcome = trip ? i++ : CONC_EBROKEN;
  }
}

static void barrier_wake_held(conc_aio_barrier_t *b) {
  for (waiter_t *w = b->priv.held.head; w; w = w->next)
    wake(w);
}

/* A party leaves wait(): the last one out of a drained or reset cycle opens
 * the barrier for the next. */
static void barrier_leave(conc_aio_barrier_t *b) {
  if (--b->priv.count > 0)
    return;
  if (b->priv.state == B_DRAINING || b->priv.state == B_RESETTING)
    b->priv.state = B_FILLING;
  barrier_wake_held(b);
}

static int barrier_busy(const conc_aio_barrier_t *b) {
  return (int)(b->priv.cycle.n + b->priv.held.n);
}

/* Wait while the previous cycle drains or resets. */
static int barrier_block(conc_aio_barrier_t *b, conc_loop_t *loop) {
  while (b->priv.state == B_DRAINING || b->priv.state == B_RESETTING) {
    waiter_t w;
    int rc = park(&b->priv.held, &b->priv.loop, barrier_busy(b), loop, &w);
    conc_aio_future_release(w.fut);
    if (rc)
      return rc;
  }
  return b->priv.state == B_BROKEN ? CONC_EBROKEN : 0;
}

/* Parties of the filling cycle that still count: a cancelled one is on its
 * way out and will not pass. */
static int barrier_live(const conc_aio_barrier_t *b) {
  int live = b->priv.count;
  for (const waiter_t *w = b->priv.cycle.head; w; w = w->next)
    if (conc_aio_future_cancelled(w->fut))
      live--;
  return live;
}

int conc_aio_barrier_wait(conc_aio_barrier_t *b) {
  if (!b)
    return CONC_EINVAL;
  conc_loop_t *loop = task_loop();
  if (!loop)
    return CONC_ESTATE;
  int rc = barrier_block(b, loop);
  if (rc)
    return rc;
  if (barrier_live(b) + 1 == b->priv.parties) {
    /* The last arrival trips it. Indices go by arrival among the live
     * parties, so one that left by cancellation leaves no gap and no
     * duplicate. */
    b->priv.count++;
    b->priv.state = B_DRAINING;
    barrier_end_cycle(b, true);
    barrier_leave(b);
    return b->priv.parties - 1;
  }
  waiter_t w;
  b->priv.count++;
  rc = park(&b->priv.cycle, &b->priv.loop, barrier_busy(b), loop, &w);
  if (!w.fut) {
    b->priv.count--;
    return rc;
  }
  if (rc == 0)
    rc = w.outcome;
  barrier_leave(b);
  conc_aio_future_release(w.fut);
  return rc;
}

int conc_aio_barrier_reset(conc_aio_barrier_t *b) {
  if (!b)
    return CONC_EINVAL;
  barrier_end_cycle(b, false);
  b->priv.state = b->priv.count > 0 ? B_RESETTING : B_FILLING;
  barrier_wake_held(b);
  return 0;
}

int conc_aio_barrier_abort(conc_aio_barrier_t *b) {
  if (!b)
    return CONC_EINVAL;
  b->priv.state = B_BROKEN;
  barrier_end_cycle(b, false);
  barrier_wake_held(b);
  return 0;
}

int conc_aio_barrier_parties(const conc_aio_barrier_t *b) {
  return b ? b->priv.parties : CONC_EINVAL;
}

int conc_aio_barrier_n_waiting(const conc_aio_barrier_t *b) {
  if (!b)
    return CONC_EINVAL;
  return b->priv.state == B_FILLING ? b->priv.count : 0;
}

bool conc_aio_barrier_broken(const conc_aio_barrier_t *b) {
  return b && b->priv.state == B_BROKEN;
}
