/*
 * asyncio's Queue, LifoQueue and PriorityQueue for tasks (spec S7, with S1's
 * fairness), after CPython's Lib/test/test_asyncio/test_queues.py. Each test
 * runs a main task under conc_aio_run and steps the other tasks by yielding,
 * so the order of events is fixed, never a matter of timing.
 */
#include "harness.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "conc/aiosync.h"
#include "conc/loop.h"

#define I(n) ((void *)(uintptr_t)(n))
#define N(p) ((int)(uintptr_t)(p))

static void settle(void) {
  for (int i = 0; i < 6; i++)
    assert_int_equal(conc_aio_sleep(0), 0);
}

static void run_main(conc_aio_fn_t fn, void *arg) {
  void *r = NULL;
  assert_int_equal(conc_aio_run(fn, arg, NULL, &r), 0);
}

/* The order in which tasks got through their call, and what they got. */
static int order[64];
static int norder;

static void reset_order(void) {
  norder = 0;
  memset(order, 0, sizeof order);
}

static void assert_order(const int *want, int n) {
  assert_int_equal(norder, n);
  for (int i = 0; i < n; i++)
    assert_int_equal(order[i], want[i]);
}

/* A getter, putter or joiner task. */
typedef struct op {
  conc_aio_queue_t *q;
  enum { GET, PUT, JOIN } what;
  void *item; /* PUT: the item; GET: what it got */
  int id;
  int rc;
  bool done;
  conc_aio_future_t *task;
} op_t;

static int op_task(void *arg, void **res) {
  (void)res;
  op_t *o = arg;
  switch (o->what) {
  case GET:
    o->rc = conc_aio_queue_get(o->q, &o->item);
    break;
  case PUT:
    o->rc = conc_aio_queue_put(o->q, o->item);
    break;
  default:
    o->rc = conc_aio_queue_join(o->q);
    break;
  }
  if (o->rc == 0)
    order[norder++] = o->id;
  o->done = true;
  return 0;
}

static void start(op_t *o, conc_aio_queue_t *q, int what, void *item, int id) {
  memset(o, 0, sizeof *o);
  o->q = q;
  o->what = what;
  o->item = item;
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

static void drain_expect(conc_aio_queue_t *q, const int *want, int n) {
  for (int i = 0; i < n; i++) {
    void *x;
    assert_int_equal(conc_aio_queue_get(q, &x), 0);
    assert_int_equal(N(x), want[i]);
  }
  assert_true(conc_aio_queue_empty(q));
}

/* ------------------------------------------------------------ kinds */

static int kinds_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q;
  assert_int_equal(conc_aio_queue_init(&q, NULL), 0);
  for (int i = 1; i <= 4; i++)
    assert_int_equal(conc_aio_queue_put(&q, I(i)), 0);
  drain_expect(&q, (int[]){1, 2, 3, 4}, 4);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);

  conc_aio_queue_opts_t lo = {.kind = CONC_AIO_QUEUE_LIFO};
  assert_int_equal(conc_aio_queue_init(&q, &lo), 0);
  for (int i = 1; i <= 4; i++)
    assert_int_equal(conc_aio_queue_put_nowait(&q, I(i)), 0);
  drain_expect(&q, (int[]){4, 3, 2, 1}, 4);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s7_fifo_and_lifo_orders(void **state) {
  (void)state;
  run_main(kinds_main, NULL);
}

/* Priority by the tens digit only: 21, 22, 23 tie, and leave in the order
 * they were put. */
static int by_tens(const void *a, const void *b, void *arg) {
  int *calls = arg;
  (*calls)++;
  return N(a) / 10 - N(b) / 10;
}

static int priority_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  int calls = 0;
  conc_aio_queue_t q;
  conc_aio_queue_opts_t o = {
      .kind = CONC_AIO_QUEUE_PRIORITY, .compare = by_tens, .arg = &calls};
  assert_int_equal(conc_aio_queue_init(&q, &o), 0);
  const int in[] = {31, 21, 51, 22, 11, 41, 23, 12, 52, 24};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
    assert_int_equal(conc_aio_queue_put(&q, I(in[i])), 0);
  assert_true(calls > 0);
  drain_expect(&q, (int[]){11, 12, 21, 22, 23, 24, 31, 41, 51, 52}, 10);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void
test_s7_priority_queue_orders_by_compare_with_stable_ties(void **state) {
  (void)state;
  run_main(priority_main, NULL);
}

/* Many items through a ring that wraps and grows keep their order. */
static int wrap_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q = CONC_AIO_QUEUE_INIT;
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < round % 7 + 1; i++)
      assert_int_equal(conc_aio_queue_put_nowait(&q, I(next_in++)), 0);
    for (int i = 0; i < round % 5 + 1 && !conc_aio_queue_empty(&q); i++) {
      void *x;
      assert_int_equal(conc_aio_queue_get_nowait(&q, &x), 0);
      assert_int_equal(N(x), next_out++);
    }
  }
  assert_int_equal(conc_aio_queue_qsize(&q), next_in - next_out);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s7_fifo_order_survives_wrap_and_growth(void **state) {
  (void)state;
  run_main(wrap_main, NULL);
}

/* ---------------------------------------------------------- maxsize */

static void test_s7_queue_init_misuse_codes(void **state) {
  (void)state;
  conc_aio_queue_t q;
  conc_aio_queue_opts_t o = {.maxsize = -1};
  assert_int_equal(conc_aio_queue_init(&q, &o), CONC_EINVAL);
  o = (conc_aio_queue_opts_t){.kind = CONC_AIO_QUEUE_PRIORITY};
  assert_int_equal(conc_aio_queue_init(&q, &o), CONC_EINVAL);
  o = (conc_aio_queue_opts_t){.kind = (conc_aio_queue_kind_t)7};
  assert_int_equal(conc_aio_queue_init(&q, &o), CONC_EINVAL);
  assert_int_equal(conc_aio_queue_init(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_queue_destroy(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_queue_put_nowait(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_queue_get_nowait(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_queue_task_done(NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_queue_shutdown(NULL, false), CONC_EINVAL);
  assert_int_equal(conc_aio_queue_qsize(NULL), -1);
  assert_false(conc_aio_queue_empty(NULL));
  assert_false(conc_aio_queue_full(NULL));
}

static void test_s7_sizes_and_nowait_codes(void **state) {
  (void)state;
  /* none of these suspends: any code of the loop's thread may call them */
  conc_aio_queue_t q;
  conc_aio_queue_opts_t o = {.maxsize = 2};
  assert_int_equal(conc_aio_queue_init(&q, &o), 0);
  assert_int_equal(conc_aio_queue_maxsize(&q), 2);
  assert_true(conc_aio_queue_empty(&q));
  assert_false(conc_aio_queue_full(&q));
  void *x = I(99);
  assert_int_equal(conc_aio_queue_get_nowait(&q, &x), CONC_EEMPTY);
  assert_int_equal(N(x), 99); /* output untouched on failure */
  assert_int_equal(conc_aio_queue_get_nowait(&q, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(2)), 0);
  assert_true(conc_aio_queue_full(&q));
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(3)), CONC_EFULL);
  assert_int_equal(conc_aio_queue_qsize(&q), 2);
  assert_int_equal(conc_aio_queue_unfinished_tasks(&q), 2);
  assert_int_equal(conc_aio_queue_get_nowait(&q, &x), 0);
  assert_int_equal(N(x), 1);
  assert_false(conc_aio_queue_full(&q));
  assert_int_equal(conc_aio_queue_destroy(&q), 0);

  /* unbounded (maxsize 0): never full */
  assert_int_equal(conc_aio_queue_init(&q, NULL), 0);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(conc_aio_queue_put_nowait(&q, I(i)), 0);
  assert_false(conc_aio_queue_full(&q));
  assert_int_equal(conc_aio_queue_maxsize(&q), 0);
  assert_int_equal(conc_aio_queue_qsize(&q), 1000);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
}

static void test_s7_waiting_calls_outside_a_task_are_estate(void **state) {
  (void)state;
  conc_aio_queue_t q = CONC_AIO_QUEUE_INIT;
  void *x;
  assert_int_equal(conc_aio_queue_put(&q, I(1)), CONC_ESTATE);
  assert_int_equal(conc_aio_queue_qsize(&q), 0);
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_aio_queue_get(&q, &x), CONC_ESTATE);
  assert_int_equal(conc_aio_queue_qsize(&q), 1);
  assert_int_equal(conc_aio_queue_join(&q), CONC_ESTATE);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
}

static int put_waits_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q;
  conc_aio_queue_opts_t o = {.maxsize = 1};
  assert_int_equal(conc_aio_queue_init(&q, &o), 0);
  reset_order();
  assert_int_equal(conc_aio_queue_put(&q, I(1)), 0);
  op_t p;
  start(&p, &q, PUT, I(2), 2);
  settle();
  assert_false(p.done); /* full: the putter waits */
  assert_int_equal(conc_aio_queue_destroy(&q), CONC_EBUSY);
  assert_int_equal(conc_aio_queue_qsize(&q), 1);
  void *x;
  assert_int_equal(conc_aio_queue_get(&q, &x), 0);
  assert_int_equal(N(x), 1);
  settle();
  assert_true(p.done);
  assert_int_equal(p.rc, 0);
  assert_int_equal(conc_aio_queue_get(&q, &x), 0);
  assert_int_equal(N(x), 2);
  finish(&p);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s7_put_suspends_the_task_while_full(void **state) {
  (void)state;
  run_main(put_waits_main, NULL);
}

static int get_waits_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q = CONC_AIO_QUEUE_INIT;
  op_t g;
  start(&g, &q, GET, NULL, 1);
  settle();
  assert_false(g.done);
  assert_int_equal(conc_aio_queue_destroy(&q), CONC_EBUSY);
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(5)), 0);
  settle();
  assert_true(g.done);
  assert_int_equal(N(g.item), 5);
  finish(&g);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s7_get_suspends_the_task_while_empty(void **state) {
  (void)state;
  run_main(get_waits_main, NULL);
}

/* ------------------------------------------------------- S1 fairness */

static int getters_fifo_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q = CONC_AIO_QUEUE_INIT;
  reset_order();
  op_t g[4];
  for (int i = 0; i < 4; i++)
    start(&g[i], &q, GET, NULL, i + 1);
  settle();
  for (int i = 0; i < 4; i++)
    assert_int_equal(conc_aio_queue_put_nowait(&q, I(10 + i)), 0);
  settle();
  assert_order((int[]){1, 2, 3, 4}, 4);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(N(g[i].item), 10 + i);
    finish(&g[i]);
  }
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s1_queue_getters_are_served_fifo(void **state) {
  (void)state;
  run_main(getters_fifo_main, NULL);
}

static int putters_fifo_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q;
  conc_aio_queue_opts_t o = {.maxsize = 1};
  assert_int_equal(conc_aio_queue_init(&q, &o), 0);
  reset_order();
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(0)), 0);
  op_t p[3];
  for (int i = 0; i < 3; i++)
    start(&p[i], &q, PUT, I(i + 1), i + 1);
  settle();
  drain_expect(&q, (int[]){0, 1, 2, 3}, 4);
  assert_order((int[]){1, 2, 3}, 3);
  for (int i = 0; i < 3; i++)
    finish(&p[i]);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s1_queue_putters_are_served_fifo(void **state) {
  (void)state;
  run_main(putters_fifo_main, NULL);
}

/* A getter is woken, but before it runs get_nowait takes the item: the
 * getter waits again in its old place, ahead of later getters. */
static int stolen_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q = CONC_AIO_QUEUE_INIT;
  reset_order();
  op_t a, b;
  start(&a, &q, GET, NULL, 1);
  start(&b, &q, GET, NULL, 2);
  settle();
  void *x;
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(7)), 0); /* wakes a */
  assert_int_equal(conc_aio_queue_get_nowait(&q, &x), 0);   /* stolen */
  settle();
  assert_false(a.done);
  assert_false(b.done);
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(8)), 0);
  settle();
  assert_order((int[]){1}, 1);
  assert_int_equal(N(a.item), 8);
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(9)), 0);
  settle();
  assert_order((int[]){1, 2}, 2);
  finish(&a);
  finish(&b);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s1_queue_woken_getter_keeps_its_place(void **state) {
  (void)state;
  run_main(stolen_main, NULL);
}

/* ----------------------------------------------------- cancellation */

static int cancel_getter_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q = CONC_AIO_QUEUE_INIT;
  op_t g;
  start(&g, &q, GET, NULL, 1);
  settle();
  assert_true(conc_aio_cancel(g.task, NULL));
  settle();
  assert_int_equal(g.rc, CONC_ECANCELED);
  assert_int_equal(q.priv.getters.n, 0);
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_aio_queue_qsize(&q), 1); /* nobody took it */
  finish(&g);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s7_cancelled_getter_takes_nothing(void **state) {
  (void)state;
  run_main(cancel_getter_main, NULL);
}

/* put_nowait wakes getter A; A is cancelled before it runs: the item is not
 * lost but handed to B, the next getter (asyncio's
 * test_cancelled_getters_not_being_held_in_self_getters and
 * test_get_cancelled_race). */
static int cancel_woken_getter_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q = CONC_AIO_QUEUE_INIT;
  reset_order();
  op_t a, b;
  start(&a, &q, GET, NULL, 1);
  start(&b, &q, GET, NULL, 2);
  settle();
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(42)), 0);
  assert_true(conc_aio_cancel(a.task, NULL));
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_null(a.item);
  assert_true(b.done);
  assert_int_equal(b.rc, 0);
  assert_int_equal(N(b.item), 42);
  assert_order((int[]){2}, 1);
  assert_true(conc_aio_queue_empty(&q));
  finish(&a);
  finish(&b);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void
test_s7_getter_cancelled_as_it_is_woken_hands_item_to_next(void **state) {
  (void)state;
  run_main(cancel_woken_getter_main, NULL);
}

/* get wakes putter A; A is cancelled before it runs: the free slot goes to
 * B (asyncio's test_cancelled_puts_not_being_held_in_self_putters and
 * test_put_cancelled_race). */
static int cancel_woken_putter_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q;
  conc_aio_queue_opts_t o = {.maxsize = 1};
  assert_int_equal(conc_aio_queue_init(&q, &o), 0);
  reset_order();
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(0)), 0);
  op_t a, b, c;
  start(&a, &q, PUT, I(1), 1);
  start(&b, &q, PUT, I(2), 2);
  start(&c, &q, PUT, I(3), 3);
  settle();
  /* one cancelled while waiting puts nothing */
  assert_true(conc_aio_cancel(c.task, NULL));
  settle();
  assert_int_equal(c.rc, CONC_ECANCELED);
  void *x;
  assert_int_equal(conc_aio_queue_get_nowait(&q, &x), 0); /* wakes a */
  assert_true(conc_aio_cancel(a.task, NULL));
  settle();
  assert_int_equal(a.rc, CONC_ECANCELED);
  assert_true(b.done);
  assert_int_equal(b.rc, 0);
  drain_expect(&q, (int[]){2}, 1);
  assert_order((int[]){2}, 1);
  assert_int_equal(q.priv.putters.n, 0);
  finish(&a);
  finish(&b);
  finish(&c);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void
test_s7_putter_cancelled_as_it_is_woken_passes_slot_on(void **state) {
  (void)state;
  run_main(cancel_woken_putter_main, NULL);
}

/* Three producers put 1..600 each through a queue of three slots while
 * four consumers take them, and the main task cancels producers and
 * consumers at random moments (waiting, or just woken). A cancelled put has
 * put nothing and is retried; a cancelled get has taken nothing. A fixed
 * seed makes the run the same every time. Every item arrives exactly once
 * and nobody is left waiting. */
enum { RQ_PRODUCERS = 3, RQ_CONSUMERS = 4, RQ_ITEMS = 600 };
static conc_aio_queue_t rq;
static unsigned char rq_seen[RQ_PRODUCERS * RQ_ITEMS + 1];
static int rq_got, rq_cancels;

static int rq_producer(void *arg, void **res) {
  (void)res;
  int base = (int)(intptr_t)arg * RQ_ITEMS;
  for (int i = 1; i <= RQ_ITEMS;) {
    int rc = conc_aio_queue_put(&rq, I(base + i));
    if (rc == CONC_ECANCELED) {
      rq_cancels++;
      continue; /* nothing was put: put it again */
    }
    assert_int_equal(rc, 0);
    i++;
  }
  return 0;
}

static int rq_consumer(void *arg, void **res) {
  (void)arg;
  (void)res;
  for (;;) {
    void *x = NULL;
    int rc = conc_aio_queue_get(&rq, &x);
    if (rc == CONC_ECANCELED) {
      rq_cancels++;
      assert_null(x);
      continue;
    }
    if (rc == CONC_ESHUTDOWN)
      return 0;
    assert_int_equal(rc, 0);
    assert_int_equal(rq_seen[N(x)], 0);
    rq_seen[N(x)] = 1;
    rq_got++;
  }
}

static int rq_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_opts_t o = {.maxsize = 3};
  assert_int_equal(conc_aio_queue_init(&rq, &o), 0);
  memset(rq_seen, 0, sizeof rq_seen);
  rq_got = rq_cancels = 0;
  enum { NT = RQ_PRODUCERS + RQ_CONSUMERS };
  conc_aio_future_t *t[NT];
  for (int i = 0; i < NT; i++) {
    conc_aio_fn_t fn = i < RQ_PRODUCERS ? rq_producer : rq_consumer;
    assert_int_equal(
        conc_aio_create_task(NULL, fn, (void *)(intptr_t)i, NULL, &t[i]), 0);
  }
  settle(); /* every task has started: a cancel never stops one unstarted */
  uint32_t seed = 777;
  /* a lost item or a stuck waiter shows as no progress: stop then */
  for (int round = 0; rq_got < RQ_PRODUCERS * RQ_ITEMS && round < 100000;
       round++) {
    seed = seed * 1103515245u + 12345u;
    conc_aio_cancel(t[(seed >> 16) % NT], NULL);
    for (uint32_t k = (seed >> 8) % 4; k > 0; k--)
      assert_int_equal(conc_aio_sleep(0), 0);
    assert_int_equal(conc_aio_sleep(0), 0);
  }
  assert_int_equal(rq_got, RQ_PRODUCERS * RQ_ITEMS);
  assert_true(rq_cancels > 100);
  for (int i = 1; i <= RQ_PRODUCERS * RQ_ITEMS; i++)
    assert_int_equal(rq_seen[i], 1);
  assert_int_equal(conc_aio_queue_shutdown(&rq, false), 0);
  settle();
  for (int i = 0; i < NT; i++) {
    assert_true(conc_aio_future_done(t[i]));
    conc_aio_future_release(t[i]);
  }
  assert_int_equal(conc_aio_queue_qsize(&rq), 0);
  assert_int_equal(conc_aio_queue_destroy(&rq), 0);
  return 0;
}

static void
test_s7_random_cancels_never_lose_or_duplicate_an_item(void **state) {
  (void)state;
  run_main(rq_main, NULL);
}

/* ---------------------------------------------------- task_done/join */

static int join_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q = CONC_AIO_QUEUE_INIT;
  reset_order();
  assert_int_equal(conc_aio_queue_task_done(&q), CONC_ETASKDONE);
  assert_int_equal(conc_aio_queue_join(&q), 0); /* nothing unfinished */
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_aio_queue_put(&q, I(i)), 0);
  op_t j;
  start(&j, &q, JOIN, NULL, 1);
  settle();
  assert_int_equal(conc_aio_queue_destroy(&q), CONC_EBUSY);
  void *x;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(conc_aio_queue_get(&q, &x), 0);
    assert_false(j.done);
    assert_int_equal(conc_aio_queue_task_done(&q), 0);
    settle();
  }
  assert_true(j.done);
  assert_int_equal(j.rc, 0);
  assert_int_equal(conc_aio_queue_unfinished_tasks(&q), 0);
  /* ValueError('task_done() called too many times'), nothing changed */
  assert_int_equal(conc_aio_queue_task_done(&q), CONC_ETASKDONE);
  assert_int_equal(conc_aio_queue_unfinished_tasks(&q), 0);
  finish(&j);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s7_join_waits_for_every_task_done(void **state) {
  (void)state;
  run_main(join_main, NULL);
}

/* --------------------------------------------------------- shutdown */

static int shutdown_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q = CONC_AIO_QUEUE_INIT;
  assert_int_equal(conc_aio_queue_put(&q, I(1)), 0);
  assert_int_equal(conc_aio_queue_put(&q, I(2)), 0);
  assert_false(conc_aio_queue_is_shutdown(&q));
  assert_int_equal(conc_aio_queue_shutdown(&q, false), 0);
  assert_true(conc_aio_queue_is_shutdown(&q));
  assert_int_equal(conc_aio_queue_put(&q, I(3)), CONC_ESHUTDOWN);
  assert_int_equal(conc_aio_queue_put_nowait(&q, I(3)), CONC_ESHUTDOWN);
  /* gets drain what is left, then fail */
  drain_expect(&q, (int[]){1, 2}, 2);
  void *x;
  assert_int_equal(conc_aio_queue_get(&q, &x), CONC_ESHUTDOWN);
  assert_int_equal(conc_aio_queue_get_nowait(&q, &x), CONC_ESHUTDOWN);
  assert_int_equal(conc_aio_queue_unfinished_tasks(&q), 2);
  assert_int_equal(conc_aio_queue_task_done(&q), 0);
  assert_int_equal(conc_aio_queue_task_done(&q), 0);
  assert_int_equal(conc_aio_queue_join(&q), 0);
  assert_int_equal(conc_aio_queue_shutdown(&q, false), 0); /* again */
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  return 0;
}

static void test_s7_shutdown_fails_puts_and_lets_gets_drain(void **state) {
  (void)state;
  run_main(shutdown_main, NULL);
}

static int shutdown_wakes_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t empty = CONC_AIO_QUEUE_INIT, full;
  conc_aio_queue_opts_t o = {.maxsize = 1};
  assert_int_equal(conc_aio_queue_init(&full, &o), 0);
  assert_int_equal(conc_aio_queue_put_nowait(&full, I(1)), 0);
  op_t g[2], p[2];
  for (int i = 0; i < 2; i++) {
    start(&g[i], &empty, GET, NULL, i);
    start(&p[i], &full, PUT, I(2), i);
  }
  settle();
  assert_int_equal(conc_aio_queue_shutdown(&empty, false), 0);
  assert_int_equal(conc_aio_queue_shutdown(&full, false), 0);
  settle();
  for (int i = 0; i < 2; i++) {
    assert_int_equal(g[i].rc, CONC_ESHUTDOWN);
    assert_int_equal(p[i].rc, CONC_ESHUTDOWN);
    finish(&g[i]);
    finish(&p[i]);
  }
  assert_int_equal(conc_aio_queue_qsize(&full), 1);
  assert_int_equal(conc_aio_queue_destroy(&empty), 0);
  assert_int_equal(conc_aio_queue_destroy(&full), 0);
  return 0;
}

static void test_s7_shutdown_wakes_waiting_getters_and_putters(void **state) {
  (void)state;
  run_main(shutdown_wakes_main, NULL);
}

static int freed[16];
static int nfreed;
static void free_item(void *item, void *arg) {
  (void)arg;
  freed[nfreed++] = N(item);
}

static int shutdown_immediate_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_queue_t q;
  conc_aio_queue_opts_t o = {.free_item = free_item};
  assert_int_equal(conc_aio_queue_init(&q, &o), 0);
  nfreed = 0;
  reset_order();
  for (int i = 1; i <= 3; i++)
    assert_int_equal(conc_aio_queue_put(&q, I(i)), 0);
  void *x;
  assert_int_equal(conc_aio_queue_get(&q, &x), 0); /* 1 out, not done */
  op_t j;
  start(&j, &q, JOIN, NULL, 1);
  settle();
  assert_false(j.done);
  assert_int_equal(conc_aio_queue_shutdown(&q, true), 0);
  assert_int_equal(nfreed, 2); /* 2 and 3 discarded ... */
  assert_int_equal(freed[0], 2);
  assert_int_equal(freed[1], 3);
  assert_int_equal(conc_aio_queue_unfinished_tasks(&q), 1); /* ... as done */
  assert_int_equal(conc_aio_queue_get_nowait(&q, &x), CONC_ESHUTDOWN);
  settle();
  assert_false(j.done); /* item 1 still has no task_done */
  assert_int_equal(conc_aio_queue_task_done(&q), 0);
  settle();
  assert_true(j.done);
  assert_int_equal(j.rc, 0);
  finish(&j);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  assert_int_equal(nfreed, 2);
  return 0;
}

static void
test_s7_shutdown_immediate_discards_items_and_releases_join(void **state) {
  (void)state;
  run_main(shutdown_immediate_main, NULL);
}

static void test_s7_destroy_hands_queued_items_to_free_item(void **state) {
  (void)state;
  conc_aio_queue_t q;
  conc_aio_queue_opts_t o = {.kind = CONC_AIO_QUEUE_LIFO,
                             .free_item = free_item};
  nfreed = 0;
  assert_int_equal(conc_aio_queue_init(&q, &o), 0);
  for (int i = 1; i <= 3; i++)
    assert_int_equal(conc_aio_queue_put_nowait(&q, I(i)), 0);
  assert_int_equal(conc_aio_queue_destroy(&q), 0);
  assert_int_equal(nfreed, 3);
}

CONC_TEST_MAIN(
    cmocka_unit_test(test_s7_fifo_and_lifo_orders),
    cmocka_unit_test(test_s7_priority_queue_orders_by_compare_with_stable_ties),
    cmocka_unit_test(test_s7_fifo_order_survives_wrap_and_growth),
    cmocka_unit_test(test_s7_queue_init_misuse_codes),
    cmocka_unit_test(test_s7_sizes_and_nowait_codes),
    cmocka_unit_test(test_s7_waiting_calls_outside_a_task_are_estate),
    cmocka_unit_test(test_s7_put_suspends_the_task_while_full),
    cmocka_unit_test(test_s7_get_suspends_the_task_while_empty),
    cmocka_unit_test(test_s1_queue_getters_are_served_fifo),
    cmocka_unit_test(test_s1_queue_putters_are_served_fifo),
    cmocka_unit_test(test_s1_queue_woken_getter_keeps_its_place),
    cmocka_unit_test(test_s7_cancelled_getter_takes_nothing),
    cmocka_unit_test(
        test_s7_getter_cancelled_as_it_is_woken_hands_item_to_next),
    cmocka_unit_test(test_s7_putter_cancelled_as_it_is_woken_passes_slot_on),
    cmocka_unit_test(test_s7_random_cancels_never_lose_or_duplicate_an_item),
    cmocka_unit_test(test_s7_join_waits_for_every_task_done),
    cmocka_unit_test(test_s7_shutdown_fails_puts_and_lets_gets_drain),
    cmocka_unit_test(test_s7_shutdown_wakes_waiting_getters_and_putters),
    cmocka_unit_test(
        test_s7_shutdown_immediate_discards_items_and_releases_join),
    cmocka_unit_test(test_s7_destroy_hands_queued_items_to_free_item))
