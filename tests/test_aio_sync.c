/*
 * asyncio's Lock, Event, Condition, Semaphore, BoundedSemaphore and Barrier
 * for tasks (spec S1-S6), after CPython's Lib/test/test_asyncio/
 * test_locks.py. Every test runs a main task under conc_aio_run; tasks are
 * stepped by yielding (sleep(0)), so the order of events is fixed, never a
 * matter of timing.
 */
#include "harness.h"

#include <stdbool.h>
#include <string.h>

#include "conc/aiosync.h"
#include "conc/loop.h"

/* ------------------------------------------------------------- helpers */

/* Let every task that can run do so until all of them wait: one sleep(0)
 * gives each ready task a step, and a wake-up reaches its task within the
 * next iteration. */
static void settle(void) {
  for (int i = 0; i < 6; i++)
    assert_int_equal(conc_aio_sleep(0), 0);
}

static void run_main(conc_aio_fn_t fn, void *arg) {
  void *r = NULL;
  assert_int_equal(conc_aio_run(fn, arg, NULL, &r), 0);
}

/* The order in which tasks got through their waiting call. */
static int order[64];
static int norder;

/* A task that makes one waiting call on obj and records how it ended. */
typedef struct op {
  int (*call)(void *obj);
  int (*after)(void *obj); /* run when the call succeeded (may be NULL) */
  void *obj;
  int id;
  int rc;
  bool done;
  conc_aio_future_t *task;
} op_t;

static int op_task(void *arg, void **res) {
  (void)res;
  op_t *o = arg;
  o->rc = o->call(o->obj);
  if (o->rc >= 0) {
    order[norder++] = o->id;
    if (o->after)
      o->after(o->obj);
  }
  o->done = true;
  return 0;
}

static void start(op_t *o, int (*call)(void *), int (*after)(void *), void *obj,
                  int id) {
  memset(o, 0, sizeof *o);
  o->call = call;
  o->after = after;
  o->obj = obj;
  o->id = id;
  o->rc = 1;
  assert_int_equal(conc_aio_create_task(NULL, op_task, o, NULL, &o->task), 0);
}

static void finish(op_t *o) {
  if (!o->task)
    return;
  if (!conc_aio_future_done(o->task)) {
    conc_aio_cancel(o->task, NULL);
    settle();
  }
  assert_true(conc_aio_future_done(o->task));
  conc_aio_future_release(o->task);
  o->task = NULL;
}

static void reset_order(void) {
  norder = 0;
  memset(order, 0, sizeof order);
}

static void assert_order(const int *want, int n) {
  assert_int_equal(norder, n);
  for (int i = 0; i < n; i++)
    assert_int_equal(order[i], want[i]);
}

static int lock_acquire(void *o) { return conc_aio_lock_acquire(o); }
static int lock_release(void *o) { return conc_aio_lock_release(o); }
static int event_wait(void *o) { return conc_aio_event_wait(o); }
static int sem_acquire(void *o) { return conc_aio_semaphore_acquire(o); }
static int sem_release(void *o) { return conc_aio_semaphore_release(o); }
static int barrier_wait(void *o) { return conc_aio_barrier_wait(o); }

/* A condition waiter: acquire, wait, release. */
static int cond_cycle(void *o) {
  int rc = conc_aio_condition_acquire(o);
  if (rc)
    return rc;
  rc = conc_aio_condition_wait(o);
  /* wait returns with the lock held whatever its outcome */
  assert_true(conc_aio_condition_locked(o));
  conc_aio_condition_release(o);
  return rc;
}

/* --------------------------------------------------------------- S1 */

static int ticker_stop;
static int ticks;
static int ticker(void *arg, void **res) {
  (void)arg;
  (void)res;
  while (!ticker_stop) {
    ticks++;
    if (conc_aio_sleep(0))
      break;
  }
  return 0;
}

static int s1_blocks_only_task_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_lock_t l = CONC_AIO_LOCK_INIT;
  conc_aio_future_t *tk;
  ticker_stop = ticks = 0;
  assert_int_equal(conc_aio_create_task(NULL, ticker, NULL, NULL, &tk), 0);
  assert_int_equal(conc_aio_lock_acquire(&l), 0);
  op_t o;
  start(&o, lock_acquire, lock_release, &l, 1);
  settle();
  int before = ticks;
  settle();
  assert_false(o.done);        /* the waiter is suspended ... */
  assert_true(ticks > before); /* ... and the thread runs other tasks */
  assert_int_equal(conc_aio_lock_release(&l), 0);
  settle();
  assert_true(o.done);
  assert_int_equal(o.rc, 0);
  ticker_stop = 1;
  assert_int_equal(conc_aio_await(tk, NULL), 0);
  conc_aio_future_release(tk);
  finish(&o);
  return 0;
}

static void test_s1_a_waiting_task_blocks_only_itself(void **state) {
  (void)state;
  run_main(s1_blocks_only_task_main, NULL);
}

static int s1_lock_fifo_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_lock_t l;
  assert_int_equal(conc_aio_lock_init(&l), 0);
  reset_order();
  assert_int_equal(conc_aio_lock_acquire(&l), 0);
  op_t o[3];
  start(&o[0], lock_acquire, NULL, &l, 1);
  start(&o[1], lock_acquire, NULL, &l, 2);
  settle();
  assert_order(NULL, 0);
  assert_int_equal(conc_aio_lock_release(&l), 0);
  settle();
  assert_order((int[]){1}, 1);
  start(&o[2], lock_acquire, NULL, &l, 3);
  settle();
  assert_int_equal(conc_aio_lock_release(&l), 0);
  settle();
  assert_order((int[]){1, 2}, 2);
  assert_int_equal(conc_aio_lock_release(&l), 0);
  settle();
  assert_order((int[]){1, 2, 3}, 3);
  assert_int_equal(conc_aio_lock_release(&l), 0);
  for (int i = 0; i < 3; i++)
    finish(&o[i]);
  assert_int_equal(conc_aio_lock_destroy(&l), 0);
  return 0;
}

static void test_s1_lock_waiters_are_served_fifo(void **state) {
  (void)state;
  run_main(s1_lock_fifo_main, NULL);
}

/* A newcomer that finds the lock free but a woken waiter not yet running
 * queues behind it (fairness), and gets the lock after it. */
static int s1_newcomer_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_lock_t l = CONC_AIO_LOCK_INIT;
  reset_order();
  assert_int_equal(conc_aio_lock_acquire(&l), 0);
  op_t o;
  start(&o, lock_acquire, lock_release, &l, 1);
  settle();
  assert_int_equal(conc_aio_lock_release(&l), 0);
  assert_false(conc_aio_lock_locked(&l));
  assert_int_equal(conc_aio_lock_acquire(&l), 0); /* suspends: 1 goes first */
  order[norder++] = 2;
  assert_order((int[]){1, 2}, 2);
  assert_int_equal(conc_aio_lock_release(&l), 0);
  finish(&o);
  return 0;
}

static void
test_s1_lock_newcomer_does_not_overtake_a_woken_waiter(void **state) {
  (void)state;
  run_main(s1_newcomer_main, NULL);
}

static int s1_sem_fifo_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_semaphore_t s;
  assert_int_equal(conc_aio_semaphore_init(&s, 0, NULL), 0);
  reset_order();
  op_t o[4];
  for (int i = 0; i < 4; i++)
    start(&o[i], sem_acquire, NULL, &s, i + 1);
  settle();
  assert_order(NULL, 0);
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  /* the units are promised to the two oldest waiters: not to a newcomer */
  assert_true(conc_aio_semaphore_locked(&s));
  settle();
  assert_order((int[]){1, 2}, 2);
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  settle();
  assert_order((int[]){1, 2, 3, 4}, 4);
  for (int i = 0; i < 4; i++)
    finish(&o[i]);
  assert_int_equal(conc_aio_semaphore_value(&s), 0);
  assert_int_equal(conc_aio_semaphore_destroy(&s), 0);
  return 0;
}

static void test_s1_semaphore_waiters_are_served_fifo(void **state) {
  (void)state;
  run_main(s1_sem_fifo_main, NULL);
}

/* While a task of one loop waits on an object, a task of another loop may
 * not wait on it (asyncio's "bound to a different event loop"); once no
 * task waits, any loop may use it. Both loops run on this thread, one
 * after the other. */
static conc_aio_event_t bound_ev = CONC_AIO_EVENT_INIT;

static int bound_other_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  assert_int_equal(conc_aio_event_wait(&bound_ev), CONC_ESTATE);
  assert_int_equal(bound_ev.priv.waiters.n, 1);
  assert_int_equal(conc_aio_event_set(&bound_ev), 0);
  return 0;
}

static int bound_reuse_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  assert_int_equal(conc_aio_event_wait(&bound_ev), 0);
  conc_aio_event_clear(&bound_ev);
  op_t o;
  start(&o, event_wait, NULL, &bound_ev, 1);
  settle();
  conc_aio_event_set(&bound_ev);
  settle();
  assert_int_equal(o.rc, 0);
  finish(&o);
  return 0;
}

static void test_s1_object_is_bound_to_the_loop_of_its_waiters(void **state) {
  (void)state;
  conc_loop_t *l1;
  op_t o;
  memset(&o, 0, sizeof o);
  o.call = event_wait;
  o.obj = &bound_ev;
  o.rc = 1;
  assert_int_equal(conc_loop_create(NULL, &l1), 0);
  assert_int_equal(conc_aio_create_task(l1, op_task, &o, NULL, &o.task), 0);
  conc_loop_stop(l1);
  assert_int_equal(conc_loop_run_forever(l1), 0); /* one iteration */
  assert_false(o.done);
  assert_int_equal(bound_ev.priv.waiters.n, 1);
  run_main(bound_other_main, NULL);
  assert_int_equal(conc_loop_run_until_complete(l1, o.task, NULL), 0);
  assert_int_equal(o.rc, 0);
  conc_aio_future_release(o.task);
  assert_int_equal(conc_loop_destroy(l1), 0);
  run_main(bound_reuse_main, NULL);
}

/* --------------------------------------------------------------- S2 */

static int s2_basic_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_lock_t l = CONC_AIO_LOCK_INIT;
  assert_false(conc_aio_lock_locked(&l));
  assert_int_equal(conc_aio_lock_acquire(&l), 0);
  assert_true(conc_aio_lock_locked(&l));
  assert_int_equal(conc_aio_lock_release(&l), 0);
  assert_false(conc_aio_lock_locked(&l));
  /* RuntimeError('Lock is not acquired.'), nothing changed */
  assert_int_equal(conc_aio_lock_release(&l), CONC_ESTATE);
  assert_false(conc_aio_lock_locked(&l));
  assert_int_equal(conc_aio_lock_destroy(&l), 0);
  return 0;
}

static void test_s2_lock_release_when_unlocked_is_estate(void **state) {
  (void)state;
  run_main(s2_basic_main, NULL);
}

static void test_s2_lock_misuse_codes(void **state) {
  (void)state;
  conc_aio_lock_t l = CONC_AIO_LOCK_INIT;
  /* outside a task: no waiting call, nothing changes */
  assert_int_equal(conc_aio_lock_acquire(&l), CONC_ESTATE);
  assert_false(conc_aio_lock_locked(&l));
  assert_int_equal(conc_aio_lock_acquire(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_lock_release(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_lock_init(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_lock_destroy(NULL), CONC_EINVAL);
  assert_false(conc_aio_lock_locked(NULL));
}

static int s2_cancel_waiting_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_lock_t l = CONC_AIO_LOCK_INIT;
  assert_int_equal(conc_aio_lock_acquire(&l), 0);
  op_t o;
  start(&o, lock_acquire, NULL, &l, 1);
  settle();
  assert_int_equal(conc_aio_lock_destroy(&l), CONC_EBUSY);
  assert_true(conc_aio_cancel(o.task, NULL));
  settle();
  assert_true(o.done);
  assert_int_equal(o.rc, CONC_ECANCELED);
  assert_true(conc_aio_lock_locked(&l)); /* still ours */
  assert_int_equal(l.priv.waiters.n, 0);
  assert_int_equal(conc_aio_lock_release(&l), 0);
  assert_int_equal(conc_aio_lock_destroy(&l), 0);
  finish(&o);
  return 0;
}

static void test_s2_lock_cancelled_waiter_leaves_the_queue(void **state) {
  (void)state;
  run_main(s2_cancel_waiting_main, NULL);
}

/* release() wakes B, and B is cancelled before it runs: B must not own the
 * lock, and C, queued behind it, gets it (asyncio's test_cancel_race and
 * test_cancel_release_race). */
static int s2_cancel_at_wakeup_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_lock_t l = CONC_AIO_LOCK_INIT;
  reset_order();
  assert_int_equal(conc_aio_lock_acquire(&l), 0);
  op_t b, c;
  start(&b, lock_acquire, lock_release, &l, 2);
  start(&c, lock_acquire, NULL, &l, 3);
  settle();
  assert_int_equal(conc_aio_lock_release(&l), 0); /* B is chosen */
  assert_true(conc_aio_cancel(b.task, NULL));     /* ... and cancelled */
  settle();
  assert_int_equal(b.rc, CONC_ECANCELED);
  assert_true(c.done);
  assert_int_equal(c.rc, 0);
  assert_order((int[]){3}, 1); /* C owns it, B never did */
  assert_true(conc_aio_lock_locked(&l));
  assert_int_equal(conc_aio_lock_release(&l), 0);
  finish(&b);
  finish(&c);
  return 0;
}

static void
test_s2_lock_waiter_cancelled_as_it_is_woken_never_owns_it(void **state) {
  (void)state;
  run_main(s2_cancel_at_wakeup_main, NULL);
}

/* The only waiter is cancelled (its task has not run yet) and the lock is
 * released: the lock is free, and a newcomer takes it at once. */
static int s2_all_cancelled_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_lock_t l = CONC_AIO_LOCK_INIT;
  assert_int_equal(conc_aio_lock_acquire(&l), 0);
  op_t b;
  start(&b, lock_acquire, NULL, &l, 2);
  settle();
  assert_true(conc_aio_cancel(b.task, NULL));
  assert_int_equal(conc_aio_lock_release(&l), 0);
  uint64_t it = conc_loop_iterations(conc_loop_running());
  assert_int_equal(conc_aio_lock_acquire(&l), 0);
  assert_true(conc_loop_iterations(conc_loop_running()) == it);
  settle();
  assert_int_equal(b.rc, CONC_ECANCELED);
  assert_true(conc_aio_lock_locked(&l));
  assert_int_equal(conc_aio_lock_release(&l), 0);
  finish(&b);
  return 0;
}

static void
test_s2_lock_cancelled_waiters_do_not_hold_up_a_newcomer(void **state) {
  (void)state;
  run_main(s2_all_cancelled_main, NULL);
}

/* Twelve tasks take the lock in turns while the main task cancels them at
 * random moments (waiting, just woken, inside the critical section). A
 * fixed seed makes the run the same every time. The lock never has two
 * owners, and no waiter is left stuck: every task ends. */
enum { RC_TASKS = 12 };
static conc_aio_lock_t rc_lock = CONC_AIO_LOCK_INIT;
static int rc_owner, rc_stop, rc_taken, rc_cancelled;

static int rc_worker(void *arg, void **res) {
  (void)res;
  int id = (int)(intptr_t)arg;
  while (!rc_stop) {
    int rc = conc_aio_lock_acquire(&rc_lock);
    if (rc == CONC_ECANCELED) {
      rc_cancelled++;
      continue;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(rc_owner, 0);
    rc_owner = id;
    rc_taken++;
    for (int i = 0; i < id % 3; i++)
      conc_aio_sleep(0); /* a cancel here is ignored: we still release */
    assert_int_equal(rc_owner, id);
    rc_owner = 0;
    assert_int_equal(conc_aio_lock_release(&rc_lock), 0);
    conc_aio_sleep(0);
  }
  return 0;
}

static int rc_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_future_t *t[RC_TASKS];
  rc_owner = rc_stop = rc_taken = rc_cancelled = 0;
  for (int i = 0; i < RC_TASKS; i++)
    assert_int_equal(conc_aio_create_task(NULL, rc_worker,
                                          (void *)(intptr_t)(i + 1), NULL,
                                          &t[i]),
                     0);
  for (int i = 0; i < 3; i++) /* every task has started */
    assert_int_equal(conc_aio_sleep(0), 0);
  uint32_t seed = 12345;
  for (int round = 0; round < 3000; round++) {
    seed = seed * 1103515245u + 12345u;
    conc_aio_cancel(t[(seed >> 16) % RC_TASKS], NULL);
    for (uint32_t k = (seed >> 8) % 3; k > 0; k--)
      assert_int_equal(conc_aio_sleep(0), 0);
  }
  rc_stop = 1;
  for (int i = 0; i < 40; i++)
    assert_int_equal(conc_aio_sleep(0), 0);
  for (int i = 0; i < RC_TASKS; i++) {
    assert_true(conc_aio_future_done(t[i]));
    conc_aio_future_release(t[i]);
  }
  assert_false(conc_aio_lock_locked(&rc_lock));
  assert_int_equal(rc_lock.priv.waiters.n, 0);
  assert_true(rc_taken > 100);
  assert_true(rc_cancelled > 100);
  return 0;
}

static void test_s2_lock_random_cancels_never_make_two_owners_or_a_stuck_waiter(
    void **state) {
  (void)state;
  run_main(rc_main, NULL);
}

/* --------------------------------------------------------------- S3 */

static int s3_set_wakes_all_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_event_t e;
  assert_int_equal(conc_aio_event_init(&e), 0);
  reset_order();
  assert_false(conc_aio_event_is_set(&e));
  op_t o[3];
  start(&o[0], event_wait, NULL, &e, 1);
  start(&o[1], event_wait, NULL, &e, 2);
  settle();
  assert_order(NULL, 0);
  assert_int_equal(conc_aio_event_destroy(&e), CONC_EBUSY);
  start(&o[2], event_wait, NULL, &e, 3);
  assert_int_equal(conc_aio_event_set(&e), 0);
  assert_true(conc_aio_event_is_set(&e));
  settle();
  /* asyncio's test_wait: the late starter finds it set and goes first */
  assert_order((int[]){3, 1, 2}, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(o[i].rc, 0);
    finish(&o[i]);
  }
  /* a wait on a set event returns without suspending */
  uint64_t it = conc_loop_iterations(conc_loop_running());
  assert_int_equal(conc_aio_event_wait(&e), 0);
  assert_true(conc_loop_iterations(conc_loop_running()) == it);
  assert_int_equal(conc_aio_event_destroy(&e), 0);
  return 0;
}

static void test_s3_event_set_wakes_every_waiter(void **state) {
  (void)state;
  run_main(s3_set_wakes_all_main, NULL);
}

static int s3_clear_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_event_t e = CONC_AIO_EVENT_INIT;
  reset_order();
  op_t a, b;
  start(&a, event_wait, NULL, &e, 1);
  settle();
  assert_int_equal(conc_aio_event_set(&e), 0);
  assert_int_equal(conc_aio_event_clear(&e), 0);
  assert_false(conc_aio_event_is_set(&e));
  assert_int_equal(conc_aio_event_set(&e), 0);
  assert_int_equal(conc_aio_event_set(&e), 0);
  assert_int_equal(conc_aio_event_clear(&e), 0);
  /* a later wait blocks ... */
  start(&b, event_wait, NULL, &e, 2);
  settle();
  /* ... while the waiter from before the clear was woken */
  assert_true(a.done);
  assert_int_equal(a.rc, 0);
  assert_false(b.done);
  assert_int_equal(e.priv.waiters.n, 1);
  assert_int_equal(conc_aio_event_set(&e), 0);
  settle();
  assert_true(b.done);
  assert_order((int[]){1, 2}, 2);
  finish(&a);
  finish(&b);
  return 0;
}

static void test_s3_event_clear_affects_only_later_waits(void **state) {
  (void)state;
  run_main(s3_clear_main, NULL);
}

static int s3_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_event_t e = CONC_AIO_EVENT_INIT;
  op_t a;
  start(&a, event_wait, NULL, &e, 1);
  settle();
  assert_true(conc_aio_cancel(a.task, NULL));
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_int_equal(e.priv.waiters.n, 0);
  assert_int_equal(conc_aio_event_destroy(&e), 0);
  finish(&a);
  return 0;
}

static void test_s3_event_wait_cancelled_leaves_no_waiter(void **state) {
  (void)state;
  run_main(s3_cancel_main, NULL);
}

static void test_s3_event_misuse_codes(void **state) {
  (void)state;
  conc_aio_event_t e = CONC_AIO_EVENT_INIT;
  assert_int_equal(conc_aio_event_wait(&e), CONC_ESTATE);
  conc_aio_event_set(&e);
  /* outside a task even a set event is no place to wait */
  assert_int_equal(conc_aio_event_wait(&e), CONC_ESTATE);
  assert_int_equal(conc_aio_event_wait(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_event_set(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_event_clear(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_event_init(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_event_destroy(NULL), CONC_EINVAL);
  assert_false(conc_aio_event_is_set(NULL));
}

/* --------------------------------------------------------------- S4 */

/* asyncio's test_wait: notify wakes the oldest; a woken waiter returns
 * only once it has the lock back. */
static int s4_wait_notify_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_condition_t c = CONC_AIO_CONDITION_INIT;
  reset_order();
  op_t o[3];
  for (int i = 0; i < 3; i++)
    start(&o[i], cond_cycle, NULL, &c, i + 1);
  settle();
  assert_order(NULL, 0);
  assert_false(conc_aio_condition_locked(&c));
  assert_int_equal(conc_aio_condition_destroy(&c), CONC_EBUSY);
  assert_int_equal(conc_aio_condition_acquire(&c), 0);
  assert_int_equal(conc_aio_condition_notify(&c, 1), 0);
  settle();
  assert_order(NULL, 0); /* woken, but the lock is ours */
  assert_int_equal(conc_aio_condition_release(&c), 0);
  settle();
  assert_order((int[]){1}, 1);
  assert_int_equal(conc_aio_condition_acquire(&c), 0);
  assert_int_equal(conc_aio_condition_notify(&c, 2), 0);
  assert_int_equal(conc_aio_condition_release(&c), 0);
  settle();
  assert_order((int[]){1, 2, 3}, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(o[i].rc, 0);
    finish(&o[i]);
  }
  assert_int_equal(conc_aio_condition_destroy(&c), 0);
  return 0;
}

static void test_s4_condition_notify_wakes_oldest_with_lock_back(void **state) {
  (void)state;
  run_main(s4_wait_notify_main, NULL);
}

static int s4_notify_all_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_condition_t c;
  assert_int_equal(conc_aio_condition_init(&c, NULL), 0);
  reset_order();
  op_t o[4];
  for (int i = 0; i < 4; i++)
    start(&o[i], cond_cycle, NULL, &c, i + 1);
  settle();
  assert_int_equal(conc_aio_condition_acquire(&c), 0);
  assert_int_equal(conc_aio_condition_notify(&c, 0), 0);  /* none */
  assert_int_equal(conc_aio_condition_notify(&c, -3), 0); /* none */
  assert_int_equal(conc_aio_condition_notify_all(&c), 0);
  assert_int_equal(conc_aio_condition_release(&c), 0);
  settle();
  assert_order((int[]){1, 2, 3, 4}, 4);
  for (int i = 0; i < 4; i++)
    finish(&o[i]);
  /* notify with nobody waiting is a no-op */
  assert_int_equal(conc_aio_condition_acquire(&c), 0);
  assert_int_equal(conc_aio_condition_notify(&c, 5), 0);
  assert_int_equal(conc_aio_condition_release(&c), 0);
  return 0;
}

static void
test_s4_condition_notify_all_wakes_every_waiter_in_order(void **state) {
  (void)state;
  run_main(s4_notify_all_main, NULL);
}

static int s4_unacquired_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_condition_t c = CONC_AIO_CONDITION_INIT;
  assert_int_equal(conc_aio_condition_wait(&c), CONC_ESTATE);
  assert_int_equal(conc_aio_condition_notify(&c, 1), CONC_ESTATE);
  assert_int_equal(conc_aio_condition_notify_all(&c), CONC_ESTATE);
  assert_int_equal(c.priv.waiters.n, 0);
  return 0;
}

static void
test_s4_condition_wait_or_notify_without_the_lock_is_estate(void **state) {
  (void)state;
  run_main(s4_unacquired_main, NULL);
  conc_aio_condition_t c = CONC_AIO_CONDITION_INIT;
  assert_int_equal(conc_aio_condition_wait(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_condition_wait_for(&c, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_condition_init(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_condition_destroy(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_condition_notify(NULL, 1), CONC_EINVAL);
  assert_int_equal(conc_aio_condition_acquire(&c), CONC_ESTATE);
  assert_false(conc_aio_condition_locked(&c));
}

static int presult;
static int pcalls;
static int predicate(void *arg) {
  (void)arg;
  pcalls++;
  return presult;
}

static int waitfor_call(void *o) {
  int rc = conc_aio_condition_acquire(o);
  if (rc)
    return rc;
  rc = conc_aio_condition_wait_for(o, predicate, NULL);
  conc_aio_condition_release(o);
  return rc;
}

static int s4_wait_for_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_condition_t c = CONC_AIO_CONDITION_INIT;
  presult = 0;
  pcalls = 0;
  op_t o;
  start(&o, waitfor_call, NULL, &c, 1);
  settle();
  assert_int_equal(pcalls, 1);
  assert_int_equal(conc_aio_condition_acquire(&c), 0);
  assert_int_equal(conc_aio_condition_notify(&c, 1), 0);
  assert_int_equal(conc_aio_condition_release(&c), 0);
  settle();
  assert_false(o.done); /* checked again, still false: waits again */
  assert_int_equal(pcalls, 2);
  presult = 42;
  assert_int_equal(conc_aio_condition_acquire(&c), 0);
  assert_int_equal(conc_aio_condition_notify(&c, 1), 0);
  assert_int_equal(conc_aio_condition_release(&c), 0);
  settle();
  assert_true(o.done);
  assert_int_equal(o.rc, 42); /* the predicate's value */
  finish(&o);
  /* true at once: no lock needed (test_wait_for_unacquired) */
  presult = 7;
  assert_int_equal(conc_aio_condition_wait_for(&c, predicate, NULL), 7);
  presult = 0;
  assert_int_equal(conc_aio_condition_wait_for(&c, predicate, NULL),
                   CONC_ESTATE);
  /* a negative value ends the wait with that code */
  presult = CONC_EIO;
  assert_int_equal(conc_aio_condition_wait_for(&c, predicate, NULL), CONC_EIO);
  return 0;
}

static void
test_s4_condition_wait_for_returns_the_predicate_value(void **state) {
  (void)state;
  run_main(s4_wait_for_main, NULL);
}

static int s4_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_condition_t c = CONC_AIO_CONDITION_INIT;
  op_t o;
  start(&o, cond_cycle, NULL, &c, 1);
  settle();
  assert_true(conc_aio_cancel(o.task, NULL));
  settle();
  /* cond_cycle checked that the lock was held when wait returned */
  assert_int_equal(o.rc, CONC_ECANCELED);
  assert_int_equal(c.priv.waiters.n, 0);
  assert_false(conc_aio_condition_locked(&c));
  finish(&o);
  return 0;
}

static void
test_s4_condition_cancelled_wait_returns_with_the_lock(void **state) {
  (void)state;
  run_main(s4_cancel_main, NULL);
}

/* Notified, then cancelled while it waits to take the lock back (we hold
 * it): the cancel is absorbed until the lock is back, then reported
 * (asyncio's test_cancelled_error_re_aquire). */
static int s4_cancel_reacquire_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_condition_t c = CONC_AIO_CONDITION_INIT;
  op_t o;
  start(&o, cond_cycle, NULL, &c, 1);
  settle();
  assert_int_equal(conc_aio_condition_acquire(&c), 0);
  assert_int_equal(conc_aio_condition_notify(&c, 1), 0);
  settle(); /* o now waits for the lock */
  assert_false(o.done);
  assert_true(conc_aio_cancel(o.task, NULL));
  settle();
  assert_false(o.done); /* still waits for the lock */
  assert_int_equal(conc_aio_condition_release(&c), 0);
  settle();
  assert_true(o.done);
  assert_int_equal(o.rc, CONC_ECANCELED);
  assert_false(conc_aio_condition_locked(&c));
  finish(&o);
  return 0;
}

static void
test_s4_condition_cancel_while_retaking_the_lock_keeps_trying(void **state) {
  (void)state;
  run_main(s4_cancel_reacquire_main, NULL);
}

/* notify(1) picks A; A is cancelled before it runs: B gets the
 * notification instead, so none is lost (asyncio 3.13's
 * test_cancelled_wakeup). */
static int s4_cancel_notified_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_condition_t c = CONC_AIO_CONDITION_INIT;
  reset_order();
  op_t a, b;
  start(&a, cond_cycle, NULL, &c, 1);
  start(&b, cond_cycle, NULL, &c, 2);
  settle();
  assert_int_equal(conc_aio_condition_acquire(&c), 0);
  assert_int_equal(conc_aio_condition_notify(&c, 1), 0);
  assert_true(conc_aio_cancel(a.task, NULL));
  assert_int_equal(conc_aio_condition_release(&c), 0);
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_true(b.done);
  assert_int_equal(b.rc, 0);
  assert_order((int[]){2}, 1);
  finish(&a);
  finish(&b);
  return 0;
}

static void
test_s4_condition_notification_of_a_cancelled_waiter_passes_on(void **state) {
  (void)state;
  run_main(s4_cancel_notified_main, NULL);
}

/* A loop destroyed with tasks still waiting unwinds them: a Condition
 * waiter stuck re-taking a lock that another task holds gives up (the loop
 * can never hand it over), and both objects end with no waiter. */
static conc_aio_condition_t close_c = CONC_AIO_CONDITION_INIT;
static conc_aio_event_t close_ev = CONC_AIO_EVENT_INIT;
static int close_wait_rc = 1, close_hold_rc = 1;

static int close_waiter(void *arg, void **res) {
  (void)arg;
  (void)res;
  if (conc_aio_condition_acquire(&close_c) == 0)
    close_wait_rc = conc_aio_condition_wait(&close_c);
  return 0;
}

static int close_holder(void *arg, void **res) {
  (void)arg;
  (void)res;
  if (conc_aio_condition_acquire(&close_c) == 0 &&
      conc_aio_condition_notify(&close_c, 1) == 0)
    close_hold_rc = conc_aio_event_wait(&close_ev); /* holding the lock */
  return 0;
}

static void run_iterations(conc_loop_t *l, int n) {
  for (int i = 0; i < n; i++) {
    conc_loop_stop(l);
    assert_int_equal(conc_loop_run_forever(l), 0);
  }
}

static void
test_s4_condition_wait_ends_when_its_loop_is_destroyed(void **state) {
  (void)state;
  conc_loop_t *l;
  assert_int_equal(conc_loop_create(NULL, &l), 0);
  assert_int_equal(conc_aio_create_task(l, close_waiter, NULL, NULL, NULL), 0);
  run_iterations(l, 3);
  assert_int_equal(close_c.priv.waiters.n, 1);
  assert_int_equal(conc_aio_create_task(l, close_holder, NULL, NULL, NULL), 0);
  run_iterations(l, 4);
  /* the waiter was notified and now waits for the lock the holder keeps */
  assert_int_equal(close_c.priv.waiters.n, 0);
  assert_int_equal(close_c.priv.own.priv.waiters.n, 1);
  assert_int_equal(close_ev.priv.waiters.n, 1);
  assert_int_equal(conc_loop_destroy(l), 0);
  assert_int_equal(close_wait_rc, CONC_ECANCELED);
  assert_int_equal(close_hold_rc, CONC_ECANCELED);
  assert_int_equal(conc_aio_condition_destroy(&close_c), 0);
  assert_int_equal(conc_aio_event_destroy(&close_ev), 0);
}

static int s4_explicit_lock_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_lock_t l = CONC_AIO_LOCK_INIT;
  conc_aio_condition_t c1, c2;
  conc_aio_condition_opts_t o = {.lock = &l};
  assert_int_equal(conc_aio_condition_init(&c1, &o), 0);
  assert_int_equal(conc_aio_condition_init(&c2, &o), 0);
  assert_int_equal(conc_aio_lock_acquire(&l), 0);
  assert_true(conc_aio_condition_locked(&c1));
  assert_true(conc_aio_condition_locked(&c2));
  assert_int_equal(conc_aio_condition_notify(&c2, 1), 0);
  assert_int_equal(conc_aio_condition_release(&c1), 0);
  assert_false(conc_aio_lock_locked(&l));
  assert_int_equal(conc_aio_condition_destroy(&c1), 0);
  assert_int_equal(conc_aio_condition_destroy(&c2), 0);
  return 0;
}

static void test_s4_condition_over_a_given_lock_shares_it(void **state) {
  (void)state;
  run_main(s4_explicit_lock_main, NULL);
}

/* --------------------------------------------------------------- S5 */

static int s5_counts_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_semaphore_t s = CONC_AIO_SEMAPHORE_INIT(2);
  reset_order();
  assert_false(conc_aio_semaphore_locked(&s));
  assert_int_equal(conc_aio_semaphore_acquire(&s), 0);
  assert_int_equal(conc_aio_semaphore_acquire(&s), 0);
  assert_true(conc_aio_semaphore_locked(&s));
  assert_int_equal(conc_aio_semaphore_value(&s), 0);
  op_t o;
  start(&o, sem_acquire, sem_release, &s, 1);
  settle();
  assert_false(o.done);
  assert_int_equal(conc_aio_semaphore_destroy(&s), CONC_EBUSY);
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  settle();
  assert_true(o.done);
  assert_int_equal(o.rc, 0);
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  assert_int_equal(conc_aio_semaphore_value(&s), 2);
  /* a plain semaphore may go past its start value */
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  assert_int_equal(conc_aio_semaphore_value(&s), 3);
  finish(&o);
  assert_int_equal(conc_aio_semaphore_destroy(&s), 0);
  return 0;
}

static void test_s5_semaphore_counts_units_and_waits_at_zero(void **state) {
  (void)state;
  run_main(s5_counts_main, NULL);
}

static int s5_bounded_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_semaphore_t s;
  conc_aio_semaphore_opts_t o = {.bounded = true};
  assert_int_equal(conc_aio_semaphore_init(&s, 1, &o), 0);
  assert_int_equal(conc_aio_semaphore_release(&s), CONC_EINVAL);
  assert_int_equal(conc_aio_semaphore_value(&s), 1);
  assert_int_equal(conc_aio_semaphore_acquire(&s), 0);
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  assert_int_equal(conc_aio_semaphore_release(&s), CONC_EINVAL);
  assert_int_equal(conc_aio_semaphore_value(&s), 1);
  conc_aio_semaphore_t st = CONC_AIO_BOUNDED_SEMAPHORE_INIT(2);
  assert_int_equal(conc_aio_semaphore_release(&st), CONC_EINVAL);
  assert_int_equal(conc_aio_semaphore_value(&st), 2);
  return 0;
}

static void test_s5_bounded_semaphore_over_release_is_einval(void **state) {
  (void)state;
  run_main(s5_bounded_main, NULL);
}

/* A unit handed to a woken waiter that has not run yet is still a unit:
 * one more release would make two of a BoundedSemaphore(1). */
static int s5_bounded_transit_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_semaphore_t s = CONC_AIO_BOUNDED_SEMAPHORE_INIT(1);
  assert_int_equal(conc_aio_semaphore_acquire(&s), 0);
  op_t o;
  start(&o, sem_acquire, sem_release, &s, 1);
  settle();
  assert_int_equal(conc_aio_semaphore_release(&s), 0); /* to o */
  assert_int_equal(conc_aio_semaphore_release(&s), CONC_EINVAL);
  settle();
  assert_int_equal(o.rc, 0);
  assert_int_equal(conc_aio_semaphore_value(&s), 1);
  assert_int_equal(conc_aio_semaphore_release(&s), CONC_EINVAL);
  finish(&o);
  return 0;
}

static void
test_s5_bounded_semaphore_counts_units_given_to_woken_waiters(void **state) {
  (void)state;
  run_main(s5_bounded_transit_main, NULL);
}

static void test_s5_semaphore_misuse_codes(void **state) {
  (void)state;
  conc_aio_semaphore_t s;
  assert_int_equal(conc_aio_semaphore_init(&s, -1, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_semaphore_init(NULL, 1, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_semaphore_init(&s, 0, NULL), 0);
  assert_int_equal(conc_aio_semaphore_acquire(&s), CONC_ESTATE);
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  /* outside a task even a free unit is not taken */
  assert_int_equal(conc_aio_semaphore_acquire(&s), CONC_ESTATE);
  assert_int_equal(conc_aio_semaphore_value(&s), 1);
  assert_int_equal(conc_aio_semaphore_acquire(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_semaphore_release(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_semaphore_destroy(NULL), CONC_EINVAL);
  conc_aio_semaphore_t big = CONC_AIO_SEMAPHORE_INIT(INT32_MAX);
  assert_int_equal(conc_aio_semaphore_release(&big), CONC_EOVERFLOW);
}

static int s5_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_semaphore_t s = CONC_AIO_SEMAPHORE_INIT(0);
  reset_order();
  op_t a, b, c;
  start(&a, sem_acquire, NULL, &s, 1);
  start(&b, sem_acquire, NULL, &s, 2);
  start(&c, sem_acquire, NULL, &s, 3);
  settle();
  /* a waiter cancelled while it waits takes nothing */
  assert_true(conc_aio_cancel(b.task, NULL));
  settle();
  assert_int_equal(b.rc, CONC_ECANCELED);
  /* A is given the unit and cancelled before it runs: C gets it */
  assert_int_equal(conc_aio_semaphore_release(&s), 0);
  assert_true(conc_aio_cancel(a.task, NULL));
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_true(c.done);
  assert_int_equal(c.rc, 0);
  assert_order((int[]){3}, 1);
  assert_int_equal(conc_aio_semaphore_value(&s), 0);
  assert_int_equal(s.priv.waiters.n, 0);
  assert_int_equal(s.priv.wakeups, 0);
  finish(&a);
  finish(&b);
  finish(&c);
  assert_int_equal(conc_aio_semaphore_destroy(&s), 0);
  return 0;
}

static void
test_s5_semaphore_cancelled_waiter_never_keeps_a_unit(void **state) {
  (void)state;
  run_main(s5_cancel_main, NULL);
}

/* --------------------------------------------------------------- S6 */

static int s6_indices_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_barrier_t b;
  assert_int_equal(conc_aio_barrier_init(&b, 3), 0);
  assert_int_equal(conc_aio_barrier_parties(&b), 3);
  for (int cycle = 0; cycle < 2; cycle++) {
    reset_order();
    op_t o[2];
    start(&o[0], barrier_wait, NULL, &b, 1);
    start(&o[1], barrier_wait, NULL, &b, 2);
    settle();
    assert_int_equal(conc_aio_barrier_n_waiting(&b), 2);
    assert_false(o[0].done);
    assert_int_equal(conc_aio_barrier_destroy(&b), CONC_EBUSY);
    assert_int_equal(conc_aio_barrier_wait(&b), 2); /* last arriver */
    assert_int_equal(conc_aio_barrier_n_waiting(&b), 0);
    settle();
    /* distinct indices, by arrival */
    assert_int_equal(o[0].rc, 0);
    assert_int_equal(o[1].rc, 1);
    finish(&o[0]);
    finish(&o[1]);
    assert_false(conc_aio_barrier_broken(&b));
  }
  assert_int_equal(conc_aio_barrier_destroy(&b), 0);
  return 0;
}

static void test_s6_barrier_wait_returns_distinct_indices(void **state) {
  (void)state;
  run_main(s6_indices_main, NULL);
}

/* Parties that arrive while the released ones have not all left wait for
 * the next cycle. */
static int s6_draining_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_barrier_t b = CONC_AIO_BARRIER_INIT(2);
  op_t a, c, d;
  start(&a, barrier_wait, NULL, &b, 1);
  settle();
  start(&c, barrier_wait, NULL, &b, 3);
  start(&d, barrier_wait, NULL, &b, 4);
  /* we trip it: a is released but has not run; c and d come next */
  assert_int_equal(conc_aio_barrier_wait(&b), 1);
  settle();
  assert_int_equal(a.rc, 0);
  assert_int_equal(c.rc, 0);
  assert_int_equal(d.rc, 1);
  finish(&a);
  finish(&c);
  finish(&d);
  return 0;
}

static void
test_s6_barrier_arrivals_while_draining_wait_for_next_cycle(void **state) {
  (void)state;
  run_main(s6_draining_main, NULL);
}

static int s6_abort_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_barrier_t b = CONC_AIO_BARRIER_INIT(3);
  op_t a, c;
  start(&a, barrier_wait, NULL, &b, 1);
  start(&c, barrier_wait, NULL, &b, 2);
  settle();
  assert_int_equal(conc_aio_barrier_abort(&b), 0);
  assert_true(conc_aio_barrier_broken(&b));
  settle();
  assert_int_equal(a.rc, CONC_EBROKEN);
  assert_int_equal(c.rc, CONC_EBROKEN);
  assert_int_equal(conc_aio_barrier_wait(&b), CONC_EBROKEN);
  assert_int_equal(conc_aio_barrier_n_waiting(&b), 0);
  finish(&a);
  finish(&c);
  /* reset() repairs it */
  assert_int_equal(conc_aio_barrier_reset(&b), 0);
  assert_false(conc_aio_barrier_broken(&b));
  start(&a, barrier_wait, NULL, &b, 1);
  start(&c, barrier_wait, NULL, &b, 2);
  settle();
  assert_int_equal(conc_aio_barrier_wait(&b), 2);
  settle();
  assert_int_equal(a.rc, 0);
  assert_int_equal(c.rc, 1);
  finish(&a);
  finish(&c);
  return 0;
}

static void test_s6_barrier_abort_breaks_it_until_reset(void **state) {
  (void)state;
  run_main(s6_abort_main, NULL);
}

static int s6_reset_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_barrier_t b = CONC_AIO_BARRIER_INIT(3);
  op_t a, c, d;
  start(&a, barrier_wait, NULL, &b, 1);
  settle();
  /* c runs before a has left: it waits for the reset to finish */
  start(&c, barrier_wait, NULL, &b, 2);
  assert_int_equal(conc_aio_barrier_reset(&b), 0);
  settle();
  assert_int_equal(a.rc, CONC_EBROKEN);
  assert_false(c.done);
  assert_false(conc_aio_barrier_broken(&b));
  assert_int_equal(conc_aio_barrier_n_waiting(&b), 1);
  start(&d, barrier_wait, NULL, &b, 3);
  settle();
  assert_int_equal(conc_aio_barrier_wait(&b), 2);
  settle();
  assert_int_equal(c.rc, 0);
  assert_int_equal(d.rc, 1);
  finish(&a);
  finish(&c);
  finish(&d);
  return 0;
}

static void
test_s6_barrier_reset_breaks_waiters_then_is_reusable(void **state) {
  (void)state;
  run_main(s6_reset_main, NULL);
}

/* A cancelled party leaves without breaking the barrier; the indices of
 * the cycle stay distinct. */
static int s6_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_barrier_t b = CONC_AIO_BARRIER_INIT(3);
  op_t a, c, d, e;
  start(&a, barrier_wait, NULL, &b, 1);
  start(&c, barrier_wait, NULL, &b, 2);
  settle();
  assert_true(conc_aio_cancel(a.task, NULL));
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_false(conc_aio_barrier_broken(&b));
  assert_int_equal(conc_aio_barrier_n_waiting(&b), 1);
  start(&d, barrier_wait, NULL, &b, 3);
  settle();
  assert_int_equal(conc_aio_barrier_wait(&b), 2);
  settle();
  assert_int_equal(c.rc, 0);
  assert_int_equal(d.rc, 1);
  finish(&a);
  finish(&c);
  finish(&d);
  /* cancelled but not gone yet when the next party comes (d runs before
   * a's wake-up): a is not counted, so d waits and e trips it */
  start(&a, barrier_wait, NULL, &b, 1);
  start(&c, barrier_wait, NULL, &b, 2);
  settle();
  start(&d, barrier_wait, NULL, &b, 3);
  assert_true(conc_aio_cancel(a.task, NULL));
  start(&e, barrier_wait, NULL, &b, 4);
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_int_equal(c.rc, 0);
  assert_int_equal(d.rc, 1);
  assert_int_equal(e.rc, 2);
  finish(&a);
  finish(&c);
  finish(&d);
  finish(&e);
  assert_int_equal(conc_aio_barrier_destroy(&b), 0);
  return 0;
}

static void
test_s6_barrier_cancelled_party_leaves_without_breaking_it(void **state) {
  (void)state;
  run_main(s6_cancel_main, NULL);
}

static void test_s6_barrier_misuse_codes(void **state) {
  (void)state;
  conc_aio_barrier_t b;
  assert_int_equal(conc_aio_barrier_init(&b, 0), CONC_EINVAL);
  assert_int_equal(conc_aio_barrier_init(&b, -2), CONC_EINVAL);
  assert_int_equal(conc_aio_barrier_init(NULL, 1), CONC_EINVAL);
  assert_int_equal(conc_aio_barrier_init(&b, 1), 0);
  assert_int_equal(conc_aio_barrier_wait(&b), CONC_ESTATE);
  assert_int_equal(conc_aio_barrier_n_waiting(&b), 0);
  assert_int_equal(conc_aio_barrier_wait(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_barrier_reset(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_barrier_abort(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_barrier_destroy(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_barrier_destroy(&b), 0);
}

static int s6_one_party_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_barrier_t b = CONC_AIO_BARRIER_INIT(1);
  assert_int_equal(conc_aio_barrier_wait(&b), 0);
  assert_int_equal(conc_aio_barrier_wait(&b), 0);
  return 0;
}

static void test_s6_barrier_of_one_party_never_waits(void **state) {
  (void)state;
  run_main(s6_one_party_main, NULL);
}

CONC_TEST_MAIN(
    cmocka_unit_test(test_s1_a_waiting_task_blocks_only_itself),
    cmocka_unit_test(test_s1_lock_waiters_are_served_fifo),
    cmocka_unit_test(test_s1_lock_newcomer_does_not_overtake_a_woken_waiter),
    cmocka_unit_test(test_s1_semaphore_waiters_are_served_fifo),
    cmocka_unit_test(test_s1_object_is_bound_to_the_loop_of_its_waiters),
    cmocka_unit_test(test_s2_lock_release_when_unlocked_is_estate),
    cmocka_unit_test(test_s2_lock_misuse_codes),
    cmocka_unit_test(test_s2_lock_cancelled_waiter_leaves_the_queue),
    cmocka_unit_test(
        test_s2_lock_waiter_cancelled_as_it_is_woken_never_owns_it),
    cmocka_unit_test(test_s2_lock_cancelled_waiters_do_not_hold_up_a_newcomer),
    cmocka_unit_test(
        test_s2_lock_random_cancels_never_make_two_owners_or_a_stuck_waiter),
    cmocka_unit_test(test_s3_event_set_wakes_every_waiter),
    cmocka_unit_test(test_s3_event_clear_affects_only_later_waits),
    cmocka_unit_test(test_s3_event_wait_cancelled_leaves_no_waiter),
    cmocka_unit_test(test_s3_event_misuse_codes),
    cmocka_unit_test(test_s4_condition_notify_wakes_oldest_with_lock_back),
    cmocka_unit_test(test_s4_condition_notify_all_wakes_every_waiter_in_order),
    cmocka_unit_test(
        test_s4_condition_wait_or_notify_without_the_lock_is_estate),
    cmocka_unit_test(test_s4_condition_wait_for_returns_the_predicate_value),
    cmocka_unit_test(test_s4_condition_cancelled_wait_returns_with_the_lock),
    cmocka_unit_test(
        test_s4_condition_cancel_while_retaking_the_lock_keeps_trying),
    cmocka_unit_test(
        test_s4_condition_notification_of_a_cancelled_waiter_passes_on),
    cmocka_unit_test(test_s4_condition_over_a_given_lock_shares_it),
    cmocka_unit_test(test_s4_condition_wait_ends_when_its_loop_is_destroyed),
    cmocka_unit_test(test_s5_semaphore_counts_units_and_waits_at_zero),
    cmocka_unit_test(test_s5_bounded_semaphore_over_release_is_einval),
    cmocka_unit_test(
        test_s5_bounded_semaphore_counts_units_given_to_woken_waiters),
    cmocka_unit_test(test_s5_semaphore_misuse_codes),
    cmocka_unit_test(test_s5_semaphore_cancelled_waiter_never_keeps_a_unit),
    cmocka_unit_test(test_s6_barrier_wait_returns_distinct_indices),
    cmocka_unit_test(
        test_s6_barrier_arrivals_while_draining_wait_for_next_cycle),
    cmocka_unit_test(test_s6_barrier_abort_breaks_it_until_reset),
    cmocka_unit_test(test_s6_barrier_reset_breaks_waiters_then_is_reusable),
    cmocka_unit_test(
        test_s6_barrier_cancelled_party_leaves_without_breaking_it),
    cmocka_unit_test(test_s6_barrier_misuse_codes),
    cmocka_unit_test(test_s6_barrier_of_one_party_never_waits))
