/*
 * The thread Queue, SimpleQueue and Event awaited from loop tasks (issue 11, F13:
 * what Python users take the janus package for). Threads use the blocking
 * calls, tasks the *_async ones, on the same queue. Orderings that matter
 * are made on the loop's thread (a put from a task serves a waiting task
 * at once), so no test depends on timing; the thread tests check that
 * nothing is lost or duplicated (counts and checksums) whatever the
 * interleaving.
 */
#include "harness.h"

#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "conc/error.h"
#include "conc/loop.h"
#include "conc/queue.h"
#include "conc/sync.h"
#include "conc/time.h"

#define I(n) ((void *)(uintptr_t)(n))
#define N(p) ((long)(uintptr_t)(p))
#define STOP I(-1L)

static void settle(void) {
  for (int i = 0; i < 10; i++)
    assert_int_equal(conc_aio_sleep(0), 0);
}

static void run_main(conc_aio_fn_t fn, void *arg) {
  void *r = NULL;
  assert_int_equal(conc_aio_run(fn, arg, NULL, &r), 0);
}

static int qint_cmp(const void *a, const void *b, void *arg) {
  (void)arg;
  return (N(a) > N(b)) - (N(a) < N(b));
}

/* ---- one task doing one call -------------------------------------------- */

typedef struct op {
  enum { QGET, QPUT, SQGET } what;
  void *q;
  void *item; /* QPUT: the item; gets: what came */
  double timeout;
  int rc;
  int next_rc; /* a sleep(0) after the call: a cancel delivered late */
  bool done;
  conc_aio_future_t *task;
} op_t;

static int op_task(void *arg, void **res) {
  (void)res;
  op_t *o = arg;
  switch (o->what) {
  case QGET:
    o->rc = conc_queue_get_async(o->q, o->timeout, &o->item);
    break;
  case QPUT:
    o->rc = conc_queue_put_async(o->q, o->item, o->timeout);
    break;
  default:
    o->rc = conc_simple_queue_get_async(o->q, o->timeout, &o->item);
    break;
  }
  o->next_rc = conc_aio_sleep(0);
  o->done = true;
  return 0;
}

static void start(op_t *o, int what, void *q, void *item, double timeout) {
  memset(o, 0, sizeof *o);
  o->what = what;
  o->q = q;
  o->item = item;
  o->timeout = timeout;
  o->rc = 1;
  assert_int_equal(conc_aio_create_task(NULL, op_task, o, NULL, &o->task), 0);
}

static void finish(op_t *o) {
  assert_int_equal(conc_aio_await(o->task, NULL), 0);
  conc_aio_future_release(o->task);
}

/* ---- a thread pipeline feeding a task ----------------------------------- */

enum { PIPE_N = 20000 };

struct pipe {
  conc_queue_t q1, q2;
};

static void *pipe_source(void *arg) {
  struct pipe *p = arg;
  for (long i = 1; i <= PIPE_N; i++)
    assert_int_equal(conc_queue_put(&p->q1, I(i), true, CONC_FOREVER), 0);
  assert_int_equal(conc_queue_put(&p->q1, STOP, true, CONC_FOREVER), 0);
  return NULL;
}

static void *pipe_stage(void *arg) {
  struct pipe *p = arg;
  for (;;) {
    void *x;
    assert_int_equal(conc_queue_get(&p->q1, &x, true, CONC_FOREVER), 0);
    assert_int_equal(conc_queue_put(&p->q2, x, true, CONC_FOREVER), 0);
    if (x == STOP)
      return NULL;
  }
}

static int pipeline_main(void *arg, void **res) {
  (void)res;
  struct pipe *p = arg;
  pthread_t a = conc_test_spawn(pipe_source, p);
  pthread_t b = conc_test_spawn(pipe_stage, p);
  long want = 1;
  for (;;) {
    void *x = NULL;
    assert_int_equal(conc_queue_get_async(&p->q2, CONC_FOREVER, &x), 0);
    if (x == STOP)
      break;
    assert_int_equal(N(x), want); /* in order, none lost or doubled */
    want++;
  }
  assert_int_equal(want, PIPE_N + 1);
  conc_test_join(a);
  conc_test_join(b);
  return 0;
}

static void test_janus_thread_pipeline_feeds_a_task_in_order(void **state) {
  (void)state;
  struct pipe p;
  assert_int_equal(conc_queue_init(&p.q1, &(conc_queue_opts_t){.maxsize = 8}),
                   0);
  assert_int_equal(conc_queue_init(&p.q2, &(conc_queue_opts_t){.maxsize = 4}),
                   0);
  run_main(pipeline_main, &p);
  assert_int_equal(conc_queue_qsize(&p.q2), 0);
  conc_queue_destroy(&p.q1);
  conc_queue_destroy(&p.q2);
}

/* ---- a task feeding threads --------------------------------------------- */

enum { FEED_N = 20000, FEED_THREADS = 3 };

struct feed {
  conc_queue_t q;
  long sum[FEED_THREADS], count[FEED_THREADS];
  int idx;
};

static void *feed_sink(void *arg) {
  struct feed *f = arg;
  int me = __atomic_fetch_add(&f->idx, 1, __ATOMIC_RELAXED);
  for (;;) {
    void *x;
    assert_int_equal(conc_queue_get(&f->q, &x, true, CONC_FOREVER), 0);
    if (x == STOP)
      return NULL;
    f->sum[me] += N(x);
    f->count[me]++;
    assert_int_equal(conc_queue_task_done(&f->q), 0);
  }
}

static int feed_main(void *arg, void **res) {
  (void)res;
  struct feed *f = arg;
  pthread_t t[FEED_THREADS];
  for (int i = 0; i < FEED_THREADS; i++)
    t[i] = conc_test_spawn(feed_sink, f);
  for (long i = 1; i <= FEED_N; i++)
    assert_int_equal(conc_queue_put_async(&f->q, I(i), CONC_FOREVER), 0);
  for (int i = 0; i < FEED_THREADS; i++)
    assert_int_equal(conc_queue_put_async(&f->q, STOP, CONC_FOREVER), 0);
  for (int i = 0; i < FEED_THREADS; i++)
    conc_test_join(t[i]);
  return 0;
}

static void
test_janus_task_feeds_threads_through_a_bounded_queue(void **state) {
  (void)state;
  static struct feed f;
  memset(&f, 0, sizeof f);
  assert_int_equal(conc_queue_init(&f.q, &(conc_queue_opts_t){.maxsize = 2}),
                   0);
  run_main(feed_main, &f);
  long sum = 0, count = 0;
  for (int i = 0; i < FEED_THREADS; i++) {
    sum += f.sum[i];
    count += f.count[i];
  }
  assert_int_equal(count, FEED_N);
  assert_int_equal(sum, (long)FEED_N * (FEED_N + 1) / 2);
  assert_int_equal(conc_queue_qsize(&f.q), 0);
  assert_int_equal(conc_queue_unfinished_tasks(&f.q), FEED_THREADS);
  conc_queue_destroy(&f.q);
}

/* ---- waiting for room and for items, on the loop's thread -------------- */

static int room_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg;
  assert_int_equal(conc_queue_put_async(q, I(1), CONC_FOREVER), 0);
  op_t p;
  start(&p, QPUT, q, I(2), CONC_FOREVER);
  settle();
  assert_false(p.done); /* suspended: the queue is full */
  assert_int_equal(conc_queue_qsize(q), 1);
  void *x;
  assert_int_equal(conc_queue_get_nowait(q, &x), 0); /* makes room */
  assert_int_equal(N(x), 1);
  assert_int_equal(conc_queue_qsize(q), 1); /* the waiting put went in */
  settle();
  assert_true(p.done);
  assert_int_equal(p.rc, 0);
  assert_int_equal(conc_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 2);
  assert_int_equal(conc_queue_unfinished_tasks(q), 2);
  finish(&p);
  /* A larger maxsize also lets a waiting put in. */
  assert_int_equal(conc_queue_put_async(q, I(3), 0), 0);
  start(&p, QPUT, q, I(4), CONC_FOREVER);
  settle();
  assert_false(p.done);
  assert_int_equal(conc_queue_set_maxsize(q, 2), 0);
  settle();
  assert_int_equal(p.rc, 0);
  assert_int_equal(conc_queue_qsize(q), 2);
  finish(&p);
  return 0;
}

static void test_janus_bounded_put_waits_for_room(void **state) {
  (void)state;
  conc_queue_opts_t kinds[] = {
      {.maxsize = 1, .kind = CONC_QUEUE_FIFO},
      {.maxsize = 1, .kind = CONC_QUEUE_LIFO},
      {.maxsize = 1, .kind = CONC_QUEUE_PRIORITY, .compare = qint_cmp},
  };
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    conc_queue_t q;
    assert_int_equal(conc_queue_init(&q, &kinds[i]), 0);
    run_main(room_main, &q);
    conc_queue_destroy(&q);
  }
}

static int fifo_getters_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg;
  op_t g[3];
  for (int i = 0; i < 3; i++)
    start(&g[i], QGET, q, NULL, CONC_FOREVER);
  settle();
  for (int i = 0; i < 3; i++)
    assert_false(g[i].done);
  for (long i = 1; i <= 3; i++)
    assert_int_equal(conc_queue_put(q, I(i), true, CONC_FOREVER), 0);
  assert_int_equal(conc_queue_qsize(q), 0); /* handed over at the put */
  settle();
  for (int i = 0; i < 3; i++) {
    assert_int_equal(g[i].rc, 0);
    assert_int_equal(N(g[i].item), i + 1); /* oldest waiter first */
    finish(&g[i]);
  }
  return 0;
}

static void test_janus_waiting_tasks_are_served_oldest_first(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(conc_queue_init(&q, NULL), 0);
  run_main(fifo_getters_main, &q);
  conc_queue_destroy(&q);
}

/* ---- timeouts ------------------------------------------------------------ */

static int timeout_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg; /* maxsize 1, empty */
  void *x = I(77);
  double t0 = conc_monotonic();
  assert_int_equal(conc_queue_get_async(q, 0.05, &x), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  assert_int_equal(N(x), 77); /* untouched on failure */
  t0 = conc_monotonic();
  assert_int_equal(conc_queue_get_async(q, 0, &x), CONC_ETIMEDOUT);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(conc_queue_put_async(q, I(1), 0), 0);
  t0 = conc_monotonic();
  assert_int_equal(conc_queue_put_async(q, I(2), 0.05), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  assert_int_equal(conc_queue_put_async(q, I(2), 0), CONC_ETIMEDOUT);
  assert_int_equal(conc_queue_get_async(q, 0, &x), 0); /* present: taken */
  assert_int_equal(N(x), 1);
  /* No stale waiter: a later put stays in the queue for anyone. */
  assert_int_equal(conc_queue_put(q, I(3), true, CONC_FOREVER), 0);
  assert_int_equal(conc_queue_qsize(q), 1);
  assert_int_equal(conc_queue_get(q, &x, true, 1.0), 0);
  assert_int_equal(N(x), 3);
  return 0;
}

static void
test_janus_timeouts_return_etimedout_and_leave_no_waiter(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 1}), 0);
  run_main(timeout_main, &q);
  conc_queue_destroy(&q);
}

/* ---- cancellation -------------------------------------------------------- */

struct getter_thread {
  conc_queue_t *q;
  void *item;
  int rc;
};

static void *thread_get(void *arg) {
  struct getter_thread *g = arg;
  g->rc = conc_queue_get(g->q, &g->item, true, 10.0);
  return NULL;
}

static int cancel_waiting_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg;
  op_t g;
  start(&g, QGET, q, NULL, CONC_FOREVER);
  settle();
  assert_true(conc_aio_cancel(g.task, NULL));
  settle();
  assert_int_equal(g.rc, CONC_ECANCELED);
  finish(&g);
  /* A thread now blocks in get; the next put must reach it, not the
   * cancelled task. */
  struct getter_thread gt = {q, NULL, 1};
  pthread_t t = conc_test_spawn(thread_get, &gt);
  assert_int_equal(conc_queue_put(q, I(5), true, CONC_FOREVER), 0);
  conc_test_join(t);
  assert_int_equal(gt.rc, 0);
  assert_int_equal(N(gt.item), 5);
  assert_int_equal(conc_queue_qsize(q), 0);
  return 0;
}

static void test_janus_cancelled_getter_leaves_no_stale_waiter(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(conc_queue_init(&q, NULL), 0);
  run_main(cancel_waiting_main, &q);
  conc_queue_destroy(&q);
}

/* The put hands item 1 to the waiting task on this thread; the task is
 * cancelled before it runs again: item 1 must come back to the front. */
static int handed_back_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg;
  op_t g;
  start(&g, QGET, q, NULL, CONC_FOREVER);
  settle();
  assert_int_equal(conc_queue_put_nowait(q, I(1)), 0);
  assert_int_equal(conc_queue_qsize(q), 0); /* handed to g */
  assert_int_equal(conc_queue_put_nowait(q, I(2)), 0);
  assert_true(conc_aio_cancel(g.task, NULL));
  settle();
  assert_int_equal(g.rc, CONC_ECANCELED);
  assert_int_equal(conc_queue_qsize(q), 2);
  void *x;
  assert_int_equal(conc_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 1); /* back at the front */
  assert_int_equal(conc_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 2);
  finish(&g);
  return 0;
}

static void
test_janus_cancel_after_hand_over_puts_item_back_in_front(void **state) {
  (void)state;
  conc_queue_opts_t kinds[] = {
      {.kind = CONC_QUEUE_FIFO},
      {.kind = CONC_QUEUE_FIFO, .maxsize = 2},
      {.kind = CONC_QUEUE_PRIORITY, .compare = qint_cmp},
  };
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    conc_queue_t q;
    assert_int_equal(conc_queue_init(&q, &kinds[i]), 0);
    run_main(handed_back_main, &q);
    conc_queue_destroy(&q);
  }
}

/* LIFO: the item handed over was the newest, so it goes back on top. */
static int lifo_back_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg;
  op_t g;
  start(&g, QGET, q, NULL, CONC_FOREVER);
  settle();
  assert_int_equal(conc_queue_put_nowait(q, I(1)), 0); /* to g */
  assert_true(conc_aio_cancel(g.task, NULL));
  settle();
  assert_int_equal(g.rc, CONC_ECANCELED);
  assert_int_equal(conc_queue_put_nowait(q, I(2)), 0);
  void *x;
  assert_int_equal(conc_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 2);
  assert_int_equal(conc_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 1);
  finish(&g);
  return 0;
}

static void
test_janus_lifo_cancel_after_hand_over_puts_item_back_on_top(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(
      conc_queue_init(&q, &(conc_queue_opts_t){.kind = CONC_QUEUE_LIFO}), 0);
  run_main(lifo_back_main, &q);
  conc_queue_destroy(&q);
}

/* Equal priorities keep insertion order, also for an item given back. */
static int cmp_tens(const void *a, const void *b, void *arg) {
  (void)arg;
  return (N(a) / 10 > N(b) / 10) - (N(a) / 10 < N(b) / 10);
}

static int prio_back_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg;
  op_t g;
  start(&g, QGET, q, NULL, CONC_FOREVER);
  settle();
  assert_int_equal(conc_queue_put_nowait(q, I(11)), 0); /* to g */
  assert_int_equal(conc_queue_put_nowait(q, I(12)), 0);
  assert_int_equal(conc_queue_put_nowait(q, I(13)), 0);
  assert_true(conc_aio_cancel(g.task, NULL));
  settle();
  long want[] = {11, 12, 13};
  for (int i = 0; i < 3; i++) {
    void *x;
    assert_int_equal(conc_queue_get_nowait(q, &x), 0);
    assert_int_equal(N(x), want[i]);
  }
  finish(&g);
  return 0;
}

static void test_janus_priority_item_given_back_leads_its_equals(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(
      conc_queue_init(&q, &(conc_queue_opts_t){.kind = CONC_QUEUE_PRIORITY,
                                               .compare = cmp_tens}),
      0);
  run_main(prio_back_main, &q);
  conc_queue_destroy(&q);
}

static int next_waiter_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg;
  op_t a, b;
  start(&a, QGET, q, NULL, CONC_FOREVER);
  start(&b, QGET, q, NULL, CONC_FOREVER);
  settle();
  assert_int_equal(conc_queue_put_nowait(q, I(7)), 0); /* to a */
  assert_true(conc_aio_cancel(a.task, NULL));
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_int_equal(b.rc, 0);
  assert_int_equal(N(b.item), 7); /* passed on to the next waiter */
  assert_int_equal(conc_queue_qsize(q), 0);
  finish(&a);
  finish(&b);
  return 0;
}

static void
test_janus_cancel_after_hand_over_passes_item_to_next_task(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(conc_queue_init(&q, NULL), 0);
  run_main(next_waiter_main, &q);
  conc_queue_destroy(&q);
}

/* A put already done when the cancel comes: 0, and the cancel is not lost
 * (the task's next await gets it). */
static int put_then_cancel_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg; /* maxsize 1 */
  assert_int_equal(conc_queue_put_nowait(q, I(1)), 0);
  op_t p;
  start(&p, QPUT, q, I(2), CONC_FOREVER);
  settle();
  void *x;
  assert_int_equal(conc_queue_get_nowait(q, &x), 0); /* room: 2 goes in */
  assert_true(conc_aio_cancel(p.task, NULL));
  settle();
  assert_int_equal(p.rc, 0);
  assert_int_equal(p.next_rc, CONC_ECANCELED);
  assert_int_equal(conc_aio_task_cancelling(p.task), 1);
  assert_int_equal(conc_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 2);
  finish(&p);
  /* A putter cancelled while still waiting puts nothing. */
  assert_int_equal(conc_queue_put_nowait(q, I(3)), 0);
  start(&p, QPUT, q, I(4), CONC_FOREVER);
  settle();
  assert_true(conc_aio_cancel(p.task, NULL));
  settle();
  assert_int_equal(p.rc, CONC_ECANCELED);
  assert_int_equal(conc_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 3);
  assert_int_equal(conc_queue_get_nowait(q, &x), CONC_EEMPTY);
  finish(&p);
  return 0;
}

static void
test_janus_put_done_before_cancel_keeps_item_and_cancel(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 1}), 0);
  run_main(put_then_cancel_main, &q);
  conc_queue_destroy(&q);
}

/* A timeout that fires after the hand-over keeps the item. */
static int handed_then_timeout_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg;
  op_t g;
  start(&g, QGET, q, NULL, 0.02);
  settle();
  assert_int_equal(conc_queue_put_nowait(q, I(9)), 0); /* to g */
  /* Hold the loop past g's deadline, so its timer and the hand-over are
   * both due when it runs next. */
  struct timespec ts = {0, 40 * 1000 * 1000};
  nanosleep(&ts, NULL);
  settle();
  assert_int_equal(g.rc, 0);
  assert_int_equal(N(g.item), 9);
  assert_int_equal(conc_queue_qsize(q), 0);
  finish(&g);
  return 0;
}

static void test_janus_timeout_racing_hand_over_keeps_the_item(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(conc_queue_init(&q, NULL), 0);
  run_main(handed_then_timeout_main, &q);
  conc_queue_destroy(&q);
}

/* ---- shutdown ------------------------------------------------------------ */

static void *thread_shutdown(void *arg) {
  assert_int_equal(conc_queue_shutdown(arg, false), 0);
  return NULL;
}

static int shutdown_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg; /* maxsize 1 */
  conc_queue_t full;
  assert_int_equal(conc_queue_init(&full, &(conc_queue_opts_t){.maxsize = 1}),
                   0);
  assert_int_equal(conc_queue_put_nowait(&full, I(1)), 0);
  op_t g, p;
  start(&g, QGET, q, NULL, CONC_FOREVER);
  start(&p, QPUT, &full, I(2), CONC_FOREVER);
  settle();
  pthread_t t1 = conc_test_spawn(thread_shutdown, q);
  pthread_t t2 = conc_test_spawn(thread_shutdown, &full);
  conc_test_join(t1);
  conc_test_join(t2);
  finish(&g);
  finish(&p);
  assert_int_equal(g.rc, CONC_ESHUTDOWN);
  assert_int_equal(p.rc, CONC_ESHUTDOWN);
  void *x;
  assert_int_equal(conc_queue_get_async(q, CONC_FOREVER, &x), CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_put_async(q, I(3), 0), CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_get_async(&full, 0, &x), 0); /* drains */
  assert_int_equal(N(x), 1);
  conc_queue_destroy(&full);
  return 0;
}

static void
test_janus_shutdown_from_a_thread_wakes_waiting_tasks(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 1}), 0);
  run_main(shutdown_main, &q);
  conc_queue_destroy(&q);
}

/* ---- threads and tasks on one queue, many items -------------------------- */

enum { MIX_PRODUCERS = 3, MIX_PER = 20000, MIX_TASKS = 3, MIX_THREADS = 2 };

struct mix {
  conc_queue_t q;
  long put_sum;
  long sum, count;   /* tasks: the loop's thread only */
  long tsum, tcount; /* threads: atomic */
  int base;          /* producers: atomic */
  double timeout;    /* the tasks' get timeout (a retry on ETIMEDOUT) */
  int timeouts;
};

static void *mix_producer(void *arg) {
  struct mix *m = arg;
  long base = __atomic_fetch_add(&m->base, 1, __ATOMIC_RELAXED);
  for (long i = 1; i <= MIX_PER; i++) {
    long v = base * MIX_PER + i;
    assert_int_equal(conc_queue_put(&m->q, I(v), true, CONC_FOREVER), 0);
  }
  return NULL;
}

static void *mix_thread_consumer(void *arg) {
  struct mix *m = arg;
  for (;;) {
    void *x;
    assert_int_equal(conc_queue_get(&m->q, &x, true, CONC_FOREVER), 0);
    if (x == STOP)
      return NULL;
    __atomic_add_fetch(&m->tsum, N(x), __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->tcount, 1, __ATOMIC_RELAXED);
  }
}

static int mix_task(void *arg, void **res) {
  (void)res;
  struct mix *m = arg;
  for (;;) {
    void *x = NULL;
    int rc = conc_queue_get_async(&m->q, m->timeout, &x);
    if (rc == CONC_ETIMEDOUT) {
      m->timeouts++;
      continue;
    }
    assert_int_equal(rc, 0);
    if (x == STOP)
      return 0;
    m->sum += N(x);
    m->count++;
  }
}

static int mix_main(void *arg, void **res) {
  (void)res;
  struct mix *m = arg;
  conc_aio_future_t *tasks[MIX_TASKS];
  for (int i = 0; i < MIX_TASKS; i++)
    assert_int_equal(conc_aio_create_task(NULL, mix_task, m, NULL, &tasks[i]),
                     0);
  pthread_t th[MIX_THREADS], pr[MIX_PRODUCERS];
  for (int i = 0; i < MIX_THREADS; i++)
    th[i] = conc_test_spawn(mix_thread_consumer, m);
  for (int i = 0; i < MIX_PRODUCERS; i++)
    pr[i] = conc_test_spawn(mix_producer, m);
  /* Stop everyone once the producers are through: from a worker, so the
   * loop keeps running meanwhile. */
  for (int i = 0; i < MIX_PRODUCERS; i++)
    pthread_join(pr[i], NULL); /* producers never wait for the loop: the
                                  threads keep consuming */
  for (int i = 0; i < MIX_TASKS + MIX_THREADS; i++)
    assert_int_equal(conc_queue_put_async(&m->q, STOP, CONC_FOREVER), 0);
  for (int i = 0; i < MIX_TASKS; i++) {
    assert_int_equal(conc_aio_await(tasks[i], NULL), 0);
    conc_aio_future_release(tasks[i]);
  }
  for (int i = 0; i < MIX_THREADS; i++)
    conc_test_join(th[i]);
  return 0;
}

static void run_mix(long maxsize, double timeout) {
  static struct mix m;
  memset(&m, 0, sizeof m);
  m.timeout = timeout;
  assert_int_equal(
      conc_queue_init(&m.q, &(conc_queue_opts_t){.maxsize = maxsize}), 0);
  run_main(mix_main, &m);
  long n = (long)MIX_PRODUCERS * MIX_PER;
  assert_int_equal(m.count + m.tcount, n);
  assert_int_equal(m.sum + m.tsum, n * (n + 1) / 2);
  assert_int_equal(conc_queue_qsize(&m.q), 0);
  conc_queue_destroy(&m.q);
}

static void test_janus_thread_and_task_getters_share_a_queue(void **state) {
  (void)state;
  run_mix(16, CONC_FOREVER);
  run_mix(0, CONC_FOREVER);
}

static void test_janus_many_items_with_short_timeouts_none_lost(void **state) {
  (void)state;
  run_mix(16, 0.0005);
}

/* Cancels at random points (fixed seed) against a producing thread: every
 * item is got exactly once, by a task or by the final drain. */
enum { CANCEL_N = 3000 };

struct cancel_mix {
  conc_queue_t q;
  conc_simple_queue_t sq;
  bool simple;
  long sum, count;
};

static void *cancel_producer(void *arg) {
  struct cancel_mix *c = arg;
  for (long i = 1; i <= CANCEL_N; i++) {
    if (c->simple)
      assert_int_equal(conc_simple_queue_put(&c->sq, I(i)), 0);
    else
      assert_int_equal(conc_queue_put(&c->q, I(i), true, CONC_FOREVER), 0);
    if (i % 64 == 0)
      sched_yield();
  }
  return NULL;
}

static int cancel_mix_main(void *arg, void **res) {
  (void)res;
  struct cancel_mix *c = arg;
  pthread_t t = conc_test_spawn(cancel_producer, c);
  unsigned seed = 12345;
  int cancelled = 0;
  while (c->count < CANCEL_N) {
    op_t g;
    start(&g, c->simple ? SQGET : QGET, c->simple ? (void *)&c->sq : &c->q,
          NULL, CONC_FOREVER);
    seed = seed * 1103515245u + 12345u;
    int spins = (seed >> 16) % 4;
    for (int i = 0; i < spins; i++)
      conc_aio_sleep(0);
    if (!g.done && (seed >> 20) % 2 && conc_aio_cancel(g.task, NULL))
      cancelled++;
    int r = conc_aio_await(g.task, NULL);
    conc_aio_future_release(g.task);
    if (g.rc == 0) {
      c->sum += N(g.item);
      c->count++;
    } else if (g.rc == 1) { /* cancelled before it started */
      assert_int_equal(r, CONC_ECANCELED);
    } else {
      assert_int_equal(g.rc, CONC_ECANCELED);
    }
  }
  conc_test_join(t);
  void *x;
  assert_int_equal(c->simple ? conc_simple_queue_get_nowait(&c->sq, &x)
                             : conc_queue_get_nowait(&c->q, &x),
                   CONC_EEMPTY);
  assert_true(cancelled > 0);
  return 0;
}

static void test_janus_random_cancels_lose_and_double_nothing(void **state) {
  (void)state;
  for (int simple = 0; simple < 2; simple++) {
    static struct cancel_mix c;
    memset(&c, 0, sizeof c);
    c.simple = simple;
    assert_int_equal(conc_queue_init(&c.q, &(conc_queue_opts_t){.maxsize = 4}),
                     0);
    assert_int_equal(conc_simple_queue_init(&c.sq, NULL), 0);
    run_main(cancel_mix_main, &c);
    assert_int_equal(c.count, CANCEL_N);
    assert_int_equal(c.sum, (long)CANCEL_N * (CANCEL_N + 1) / 2);
    conc_queue_destroy(&c.q);
    conc_simple_queue_destroy(&c.sq);
  }
}

/* ---- SimpleQueue --------------------------------------------------------- */

struct sq_pipe {
  conc_simple_queue_t q;
  int producers;
};

static void *sq_producer(void *arg) {
  struct sq_pipe *p = arg;
  long base = __atomic_fetch_add(&p->producers, 1, __ATOMIC_RELAXED);
  for (long i = 1; i <= MIX_PER; i++)
    assert_int_equal(conc_simple_queue_put(&p->q, I(base * MIX_PER + i)), 0);
  return NULL;
}

static int sq_pipe_main(void *arg, void **res) {
  (void)res;
  struct sq_pipe *p = arg;
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    t[i] = conc_test_spawn(sq_producer, p);
  long sum = 0, last[2] = {0, 0};
  for (long n = 0; n < 2L * MIX_PER; n++) {
    void *x = NULL;
    assert_int_equal(conc_simple_queue_get_async(&p->q, CONC_FOREVER, &x), 0);
    long v = N(x), src = (v - 1) / MIX_PER;
    assert_true(v > last[src]); /* each producer's items in order */
    last[src] = v;
    sum += v;
  }
  long n = 2L * MIX_PER;
  assert_int_equal(sum, n * (n + 1) / 2);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  return 0;
}

static void test_janus_simple_queue_threads_feed_a_task(void **state) {
  (void)state;
  static struct sq_pipe p;
  memset(&p, 0, sizeof p);
  assert_int_equal(conc_simple_queue_init(&p.q, NULL), 0);
  run_main(sq_pipe_main, &p);
  assert_int_equal(conc_simple_queue_qsize(&p.q), 0);
  conc_simple_queue_destroy(&p.q);
}

static int sq_cancel_main(void *arg, void **res) {
  (void)res;
  conc_simple_queue_t *q = arg;
  void *x = I(5);
  assert_int_equal(conc_simple_queue_get_async(q, 0.03, &x), CONC_ETIMEDOUT);
  assert_int_equal(N(x), 5);
  op_t a, b;
  start(&a, SQGET, q, NULL, CONC_FOREVER);
  settle();
  assert_int_equal(conc_simple_queue_put(q, I(1)), 0); /* to a */
  assert_int_equal(conc_simple_queue_put(q, I(2)), 0);
  assert_true(conc_aio_cancel(a.task, NULL));
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_int_equal(conc_simple_queue_qsize(q), 2);
  assert_int_equal(conc_simple_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 1); /* back at the head */
  assert_int_equal(conc_simple_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 2);
  finish(&a);
  /* Given back at a chunk's first slot (a fresh chunk in front), and to a
   * second waiting task. */
  start(&a, SQGET, q, NULL, CONC_FOREVER);
  start(&b, SQGET, q, NULL, CONC_FOREVER);
  settle();
  assert_int_equal(conc_simple_queue_put(q, I(3)), 0); /* to a */
  assert_true(conc_aio_cancel(a.task, NULL));
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_int_equal(b.rc, 0);
  assert_int_equal(N(b.item), 3);
  finish(&a);
  finish(&b);
  /* No stale waiter: the next put stays in the queue. */
  assert_int_equal(conc_simple_queue_put(q, I(4)), 0);
  assert_int_equal(conc_simple_queue_qsize(q), 1);
  return 0;
}

static void
test_janus_simple_queue_timeout_and_cancel_keep_items(void **state) {
  (void)state;
  conc_simple_queue_t q;
  assert_int_equal(conc_simple_queue_init(&q, NULL), 0);
  run_main(sq_cancel_main, &q);
  conc_simple_queue_destroy(&q);
}

/* Items given back across a chunk boundary: a took the last slot of the
 * first chunk, b the first slot of the second; both are cancelled, and the
 * second give-back finds the head at a chunk's first slot (a fresh chunk
 * goes in front). */
static int sq_chunk_front_main(void *arg, void **res) {
  (void)res;
  conc_simple_queue_t *q = arg;
  void *x;
  for (long i = 0; i < 1021; i++) /* a chunk holds 1022 */
    assert_int_equal(conc_simple_queue_put(q, I(i + 100)), 0);
  for (long i = 0; i < 1021; i++)
    assert_int_equal(conc_simple_queue_get_nowait(q, &x), 0);
  op_t a, b;
  start(&a, SQGET, q, NULL, CONC_FOREVER);
  start(&b, SQGET, q, NULL, CONC_FOREVER);
  settle();
  assert_int_equal(conc_simple_queue_put(q, I(1)), 0); /* to a */
  assert_int_equal(conc_simple_queue_put(q, I(2)), 0); /* to b */
  assert_int_equal(conc_simple_queue_qsize(q), 0);
  assert_true(conc_aio_cancel(b.task, NULL));
  assert_true(conc_aio_cancel(a.task, NULL));
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_int_equal(b.rc, CONC_ECANCELED);
  assert_int_equal(conc_simple_queue_qsize(q), 2);
  long got = 0;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(conc_simple_queue_get_nowait(q, &x), 0);
    got += N(x) * (i ? 10 : 1);
  }
  assert_true(got == 21 || got == 12); /* both back, at the head */
  assert_int_equal(conc_simple_queue_get_nowait(q, &x), CONC_EEMPTY);
  assert_int_equal(conc_simple_queue_put(q, I(3)), 0); /* still a queue */
  assert_int_equal(conc_simple_queue_get_nowait(q, &x), 0);
  assert_int_equal(N(x), 3);
  finish(&a);
  finish(&b);
  return 0;
}

static void test_janus_simple_queue_gives_back_across_a_chunk(void **state) {
  (void)state;
  conc_simple_queue_t q;
  assert_int_equal(conc_simple_queue_init(&q, NULL), 0);
  run_main(sq_chunk_front_main, &q);
  conc_simple_queue_destroy(&q);
}

/* ---- Event ------------------------------------------------------------- */

typedef struct ev_op {
  conc_event_t *e;
  double timeout;
  int rc;
  bool done;
  conc_aio_future_t *task;
} ev_op_t;

static int ev_task(void *arg, void **res) {
  (void)res;
  ev_op_t *o = arg;
  o->rc = conc_event_wait_async(o->e, o->timeout);
  o->done = true;
  return 0;
}

static void ev_start(ev_op_t *o, conc_event_t *e, double timeout) {
  memset(o, 0, sizeof *o);
  o->e = e;
  o->timeout = timeout;
  o->rc = 1;
  assert_int_equal(conc_aio_create_task(NULL, ev_task, o, NULL, &o->task), 0);
}

static void ev_finish(ev_op_t *o) {
  assert_int_equal(conc_aio_await(o->task, NULL), 0);
  conc_aio_future_release(o->task);
}

static void *thread_set(void *arg) {
  assert_int_equal(conc_event_set(arg), 0);
  return NULL;
}

static int event_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_event_t e1 = CONC_EVENT_INIT, e2 = CONC_EVENT_INIT;
  ev_op_t a[3], b;
  for (int i = 0; i < 3; i++)
    ev_start(&a[i], &e1, CONC_FOREVER);
  ev_start(&b, &e2, CONC_FOREVER);
  settle();
  assert_false(a[0].done);
  assert_int_equal(conc_event_destroy(&e1), CONC_EBUSY); /* tasks wait */
  pthread_t t = conc_test_spawn(thread_set, &e1);
  conc_test_join(t);
  for (int i = 0; i < 3; i++) {
    ev_finish(&a[i]);
    assert_int_equal(a[i].rc, 0);
  }
  settle();
  assert_false(b.done); /* another event's waiter is not served */
  /* set then clear at once still releases a waiting task. */
  assert_int_equal(conc_event_set(&e2), 0);
  assert_int_equal(conc_event_clear(&e2), 0);
  ev_finish(&b);
  assert_int_equal(b.rc, 0);
  /* Already set: no wait. */
  assert_int_equal(conc_event_set(&e1), 0);
  assert_int_equal(conc_event_wait_async(&e1, 0), 0);
  assert_int_equal(conc_event_wait_async(&e1, CONC_FOREVER), 0);
  assert_int_equal(conc_event_destroy(&e1), 0);
  assert_int_equal(conc_event_destroy(&e2), 0);
  return 0;
}

static void
test_janus_event_set_from_a_thread_wakes_waiting_tasks(void **state) {
  (void)state;
  run_main(event_main, NULL);
}

static int event_timeout_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_event_t e = CONC_EVENT_INIT;
  double t0 = conc_monotonic();
  assert_int_equal(conc_event_wait_async(&e, 0.05), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  t0 = conc_monotonic();
  assert_int_equal(conc_event_wait_async(&e, 0), CONC_ETIMEDOUT);
  assert_int_equal(conc_event_wait_async(&e, -3), CONC_ETIMEDOUT); /* polls */
  assert_quick(conc_monotonic() - t0);
  ev_op_t o;
  ev_start(&o, &e, CONC_FOREVER);
  settle();
  assert_true(conc_aio_cancel(o.task, NULL));
  settle();
  assert_int_equal(o.rc, CONC_ECANCELED);
  ev_finish(&o);
  /* No stale waiter: nothing counts as waiting any more. */
  assert_int_equal(e.priv.nwait, 0);
  assert_int_equal(conc_event_destroy(&e), 0);
  return 0;
}

static void test_janus_event_timeout_and_cancel_leave_no_waiter(void **state) {
  (void)state;
  run_main(event_timeout_cancel_main, NULL);
}

/* A thread and a task hand a turn back and forth through two Events. */
enum { PING_N = 2000 };

struct ping {
  conc_event_t to_task, to_thread;
};

static void *ping_thread(void *arg) {
  struct ping *p = arg;
  for (int i = 0; i < PING_N; i++) {
    assert_int_equal(conc_event_set(&p->to_task), 0);
    assert_int_equal(conc_event_wait(&p->to_thread, 10.0), 0);
    assert_int_equal(conc_event_clear(&p->to_thread), 0);
  }
  return NULL;
}

static int ping_main(void *arg, void **res) {
  (void)res;
  struct ping *p = arg;
  pthread_t t = conc_test_spawn(ping_thread, p);
  for (int i = 0; i < PING_N; i++) {
    assert_int_equal(conc_event_wait_async(&p->to_task, CONC_FOREVER), 0);
    assert_int_equal(conc_event_clear(&p->to_task), 0);
    assert_int_equal(conc_event_set(&p->to_thread), 0);
  }
  conc_test_join(t);
  return 0;
}

static void
test_janus_event_ping_pong_between_a_thread_and_a_task(void **state) {
  (void)state;
  struct ping p = {CONC_EVENT_INIT, CONC_EVENT_INIT};
  run_main(ping_main, &p);
  assert_int_equal(conc_event_destroy(&p.to_task), 0);
  assert_int_equal(conc_event_destroy(&p.to_thread), 0);
}

static int event_misuse_main(void *arg, void **res) {
  (void)res;
  conc_event_t *shared = arg;
  conc_event_t e = CONC_EVENT_INIT;
  assert_int_equal(conc_event_wait_async(NULL, 0), CONC_EINVAL);
  assert_int_equal(conc_event_wait_async(&e, NAN), CONC_EINVAL);
  assert_int_equal(conc_event_wait_async(shared, 1), CONC_EINVAL);
  return 0;
}

static void test_janus_event_misuse_gets_its_code(void **state) {
  (void)state;
  conc_event_t e = CONC_EVENT_INIT, shared;
  assert_int_equal(
      conc_event_init(&shared, &(conc_event_opts_t){.pshared = true}), 0);
  assert_int_equal(conc_event_set(&e), 0);
  assert_int_equal(conc_event_wait_async(&e, 0), CONC_ESTATE);
  run_main(event_misuse_main, &shared);
  assert_int_equal(conc_event_destroy(&shared), 0);
}

/* ---- misuse -------------------------------------------------------------- */

static int misuse_main(void *arg, void **res) {
  (void)res;
  conc_queue_t *q = arg;
  void *x = I(1);
  assert_int_equal(conc_queue_get_async(NULL, 0, &x), CONC_EINVAL);
  assert_int_equal(conc_queue_get_async(q, 0, NULL), CONC_EINVAL);
  assert_int_equal(conc_queue_get_async(q, NAN, &x), CONC_EINVAL);
  assert_int_equal(conc_queue_get_async(q, -2, &x), CONC_EINVAL);
  assert_int_equal(conc_queue_put_async(NULL, x, 0), CONC_EINVAL);
  assert_int_equal(conc_queue_put_async(q, x, NAN), CONC_EINVAL);
  assert_int_equal(conc_queue_put_async(q, x, -0.5), CONC_EINVAL);
  assert_int_equal(conc_simple_queue_get_async(NULL, 0, &x), CONC_EINVAL);
  conc_queue_t dead;
  memset(&dead, 0, sizeof dead); /* never initialised */
  assert_int_equal(conc_queue_get_async(&dead, 0, &x), CONC_EINVAL);
  assert_int_equal(conc_queue_put_async(&dead, x, 0), CONC_EINVAL);
  conc_simple_queue_t sdead;
  memset(&sdead, 0, sizeof sdead);
  assert_int_equal(conc_simple_queue_get_async(&sdead, 0, &x), CONC_EINVAL);
  assert_int_equal(N(x), 1);
  assert_int_equal(conc_queue_qsize(q), 1); /* nothing changed */
  return 0;
}

static void test_janus_misuse_gets_its_code_and_changes_nothing(void **state) {
  (void)state;
  conc_queue_t q;
  conc_simple_queue_t sq;
  assert_int_equal(conc_queue_init(&q, NULL), 0);
  assert_int_equal(conc_simple_queue_init(&sq, NULL), 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_simple_queue_put(&sq, I(1)), 0);
  void *x = I(9);
  /* Outside a task: CONC_ESTATE, and the item stays. */
  assert_int_equal(conc_queue_get_async(&q, 0, &x), CONC_ESTATE);
  assert_int_equal(conc_queue_put_async(&q, I(2), 0), CONC_ESTATE);
  assert_int_equal(conc_simple_queue_get_async(&sq, CONC_FOREVER, &x),
                   CONC_ESTATE);
  assert_int_equal(N(x), 9);
  assert_int_equal(conc_queue_qsize(&q), 1);
  assert_int_equal(conc_simple_queue_qsize(&sq), 1);
  run_main(misuse_main, &q);
  conc_simple_queue_destroy(&sq);
  conc_queue_destroy(&q);
}

CONC_TEST_MAIN(
    cmocka_unit_test(test_janus_thread_pipeline_feeds_a_task_in_order),
    cmocka_unit_test(test_janus_task_feeds_threads_through_a_bounded_queue),
    cmocka_unit_test(test_janus_bounded_put_waits_for_room),
    cmocka_unit_test(test_janus_waiting_tasks_are_served_oldest_first),
    cmocka_unit_test(test_janus_timeouts_return_etimedout_and_leave_no_waiter),
    cmocka_unit_test(test_janus_cancelled_getter_leaves_no_stale_waiter),
    cmocka_unit_test(test_janus_cancel_after_hand_over_puts_item_back_in_front),
    cmocka_unit_test(
        test_janus_lifo_cancel_after_hand_over_puts_item_back_on_top),
    cmocka_unit_test(test_janus_priority_item_given_back_leads_its_equals),
    cmocka_unit_test(
        test_janus_cancel_after_hand_over_passes_item_to_next_task),
    cmocka_unit_test(test_janus_put_done_before_cancel_keeps_item_and_cancel),
    cmocka_unit_test(test_janus_timeout_racing_hand_over_keeps_the_item),
    cmocka_unit_test(test_janus_shutdown_from_a_thread_wakes_waiting_tasks),
    cmocka_unit_test(test_janus_thread_and_task_getters_share_a_queue),
    cmocka_unit_test(test_janus_many_items_with_short_timeouts_none_lost),
    cmocka_unit_test(test_janus_random_cancels_lose_and_double_nothing),
    cmocka_unit_test(test_janus_simple_queue_threads_feed_a_task),
    cmocka_unit_test(test_janus_simple_queue_timeout_and_cancel_keep_items),
    cmocka_unit_test(test_janus_simple_queue_gives_back_across_a_chunk),
    cmocka_unit_test(test_janus_event_set_from_a_thread_wakes_waiting_tasks),
    cmocka_unit_test(test_janus_event_timeout_and_cancel_leave_no_waiter),
    cmocka_unit_test(test_janus_event_ping_pong_between_a_thread_and_a_task),
    cmocka_unit_test(test_janus_event_misuse_gets_its_code),
    cmocka_unit_test(test_janus_misuse_gets_its_code_and_changes_nothing))
