/* Tests for queue: Queue / LifoQueue / PriorityQueue / SimpleQueue (spec Q*,
 * SQ*). Items are small integers cast to pointers. */
#include "harness.h"

#include <math.h>
#include <stdbool.h>
#include <sched.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/queue.h"
#include "conc/time.h"

#define I(x) ((void *)(intptr_t)(x))
#define V(p) ((int)(intptr_t)(p))

static int cmp_int(const void *a, const void *b, void *arg) {
  (void)arg;
  return (V(a) > V(b)) - (V(a) < V(b));
}

/* Items are pairs key*1000+tag; only the key is compared (ties). */
static int cmp_key(const void *a, const void *b, void *arg) {
  (void)arg;
  int x = V(a) / 1000, y = V(b) / 1000;
  return (x > y) - (x < y);
}

static void init_kind(conc_queue_t *q, conc_queue_kind_t kind, long maxsize) {
  conc_queue_opts_t o = {.maxsize = maxsize, .kind = kind, .compare = cmp_int};
  assert_int_equal(conc_queue_init(q, &o), 0);
}

static int get_int(conc_queue_t *q) {
  void *p = NULL;
  assert_int_equal(conc_queue_get(q, &p, true, CONC_FOREVER), 0);
  return V(p);
}

/* Q1 */
static void order_depends_on_kind(void **state) {
  (void)state;
  static const int expect[3][3] = {
      {111, 333, 222}, {222, 333, 111}, {111, 222, 333}};
  for (int k = 0; k < 3; k++) {
    conc_queue_t q;
    init_kind(&q, (conc_queue_kind_t)k, 0);
    assert_int_equal(conc_queue_put(&q, I(111), true, CONC_FOREVER), 0);
    assert_int_equal(conc_queue_put(&q, I(333), true, CONC_FOREVER), 0);
    assert_int_equal(conc_queue_put(&q, I(222), true, CONC_FOREVER), 0);
    for (int i = 0; i < 3; i++)
      assert_int_equal(get_int(&q), expect[k][i]);
    conc_queue_destroy(&q);
  }
}

/* Q1 (PriorityQueue ties) */
static void priority_ties_keep_insertion_order(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(
      conc_queue_init(&q, &(conc_queue_opts_t){.kind = CONC_QUEUE_PRIORITY,
                                               .compare = cmp_key}),
      0);
  int in[] = {5001, 3001, 5002, 1001, 3002, 5003, 1002, 3003};
  for (int i = 0; i < 8; i++)
    assert_int_equal(conc_queue_put_nowait(&q, I(in[i])), 0);
  int out[] = {1001, 1002, 3001, 3002, 3003, 5001, 5002, 5003};
  for (int i = 0; i < 8; i++)
    assert_int_equal(get_int(&q), out[i]);
  conc_queue_destroy(&q);
}

/* Q1: many items through a growing heap come out sorted. */
static void priority_heap_sorts_many(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_PRIORITY, 0);
  unsigned x = 12345;
  for (int i = 0; i < 1000; i++) {
    x = x * 1103515245u + 12345u;
    assert_int_equal(conc_queue_put_nowait(&q, I((int)(x >> 8) % 5000)), 0);
  }
  int prev = -1;
  for (int i = 0; i < 1000; i++) {
    int v = get_int(&q);
    assert_true(v >= prev);
    prev = v;
  }
  assert_true(conc_queue_empty(&q));
  conc_queue_destroy(&q);
}

/* Q2 */
static void maxsize_zero_or_less_is_unbounded(void **state) {
  (void)state;
  for (long m = -1; m <= 0; m++) {
    conc_queue_t q;
    init_kind(&q, CONC_QUEUE_FIFO, m);
    for (int i = 0; i < 5000; i++)
      assert_int_equal(conc_queue_put(&q, I(i), false, 0), 0);
    assert_false(conc_queue_full(&q));
    assert_int_equal(conc_queue_qsize(&q), 5000);
    for (int i = 0; i < 5000; i++)
      assert_int_equal(get_int(&q), i);
    conc_queue_destroy(&q);
  }
}

/* Q2 */
static void full_empty_and_qsize_agree(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 3);
  assert_true(conc_queue_empty(&q));
  assert_int_equal(conc_queue_qsize(&q), 0);
  for (int i = 1; i <= 3; i++) {
    assert_false(conc_queue_full(&q));
    assert_int_equal(conc_queue_put_nowait(&q, I(i)), 0);
    assert_int_equal(conc_queue_qsize(&q), i);
    assert_false(conc_queue_empty(&q));
  }
  assert_true(conc_queue_full(&q));
  assert_int_equal(conc_queue_maxsize(&q), 3);
  conc_queue_destroy(&q);
}

/* Q3 */
static void full_queue_put_raises_full(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 1);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_queue_put(&q, I(2), false, 0), CONC_EFULL);
  double t0 = conc_monotonic();
  assert_int_equal(conc_queue_put(&q, I(2), true, 0.01), CONC_EFULL);
  assert_elapsed(conc_monotonic() - t0, 0.01);
  assert_int_equal(conc_queue_qsize(&q), 1);
  conc_queue_destroy(&q);
}

/* Q3 */
static void empty_queue_get_raises_empty(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 1);
  void *p = I(7);
  assert_int_equal(conc_queue_get(&q, &p, false, 0), CONC_EEMPTY);
  double t0 = conc_monotonic();
  assert_int_equal(conc_queue_get(&q, &p, true, 0.01), CONC_EEMPTY);
  assert_elapsed(conc_monotonic() - t0, 0.01);
  assert_ptr_equal(p, I(7));
  conc_queue_destroy(&q);
}

struct delayed {
  conc_queue_t *q;
  int op; /* 0: get, 1: put */
  double delay;
};

static void *delayed_op(void *arg) {
  struct delayed *d = arg;
  conc_sleep(d->delay);
  void *p;
  if (d->op)
    assert_int_equal(conc_queue_put(d->q, I(99), true, CONC_FOREVER), 0);
  else
    assert_int_equal(conc_queue_get(d->q, &p, true, CONC_FOREVER), 0);
  return NULL;
}

/* Q4 */
static void blocking_put_waits_for_a_get(void **state) {
  (void)state;
  double timeouts[] = {CONC_FOREVER, 10};
  for (int i = 0; i < 2; i++) {
    conc_queue_t q;
    init_kind(&q, CONC_QUEUE_FIFO, 1);
    assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
    struct delayed d = {&q, 0, 0.1};
    double t0 = conc_monotonic();
    pthread_t t = conc_test_spawn(delayed_op, &d);
    assert_int_equal(conc_queue_put(&q, I(2), true, timeouts[i]), 0);
    assert_true(conc_monotonic() - t0 >= 0.1 - 1e-3);
    conc_test_join(t);
    assert_int_equal(get_int(&q), 2);
    conc_queue_destroy(&q);
  }
}

/* Q4 */
static void blocking_get_waits_for_a_put(void **state) {
  (void)state;
  double timeouts[] = {CONC_FOREVER, 10};
  for (int i = 0; i < 2; i++) {
    conc_queue_t q;
    init_kind(&q, CONC_QUEUE_FIFO, 1);
    struct delayed d = {&q, 1, 0.1};
    double t0 = conc_monotonic();
    pthread_t t = conc_test_spawn(delayed_op, &d);
    void *p = NULL;
    assert_int_equal(conc_queue_get(&q, &p, true, timeouts[i]), 0);
    assert_true(conc_monotonic() - t0 >= 0.1 - 1e-3);
    assert_ptr_equal(p, I(99));
    conc_test_join(t);
    conc_queue_destroy(&q);
  }
}

/* Q5 */
static void nowait_forms_are_non_blocking(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 2);
  void *p;
  assert_int_equal(conc_queue_get_nowait(&q, &p), CONC_EEMPTY);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(2)), 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(3)), CONC_EFULL);
  assert_int_equal(conc_queue_get_nowait(&q, &p), 0);
  assert_ptr_equal(p, I(1));
  assert_int_equal(conc_queue_get_nowait(&q, &p), 0);
  assert_ptr_equal(p, I(2));
  assert_int_equal(conc_queue_get_nowait(&q, &p), CONC_EEMPTY);
  conc_queue_destroy(&q);
}

/* Q6 */
static void negative_timeout_rules(void **state) {
  (void)state;
  conc_queue_t bounded, unbounded;
  init_kind(&bounded, CONC_QUEUE_FIFO, 5);
  init_kind(&unbounded, CONC_QUEUE_FIFO, 0);
  void *p;
  /* put: ValueError only when bounded, even with room. */
  assert_int_equal(conc_queue_put(&bounded, I(1), true, -0.5), CONC_EINVAL);
  assert_int_equal(conc_queue_put(&bounded, I(1), true, NAN), CONC_EINVAL);
  assert_int_equal(conc_queue_qsize(&bounded), 0);
  assert_int_equal(conc_queue_put(&unbounded, I(1), true, -0.5), 0);
  /* with block=False the timeout is ignored */
  assert_int_equal(conc_queue_put(&bounded, I(1), false, -0.5), 0);
  /* get: always ValueError with block, even with an item present */
  assert_int_equal(conc_queue_get(&bounded, &p, true, -0.5), CONC_EINVAL);
  assert_int_equal(conc_queue_get(&unbounded, &p, true, -2), CONC_EINVAL);
  assert_int_equal(conc_queue_qsize(&bounded), 1);
  assert_int_equal(conc_queue_get(&bounded, &p, false, -0.5), 0);
  /* get(timeout=0) returns an item that is present */
  assert_int_equal(conc_queue_get(&unbounded, &p, true, 0), 0);
  assert_ptr_equal(p, I(1));
  assert_int_equal(conc_queue_get(&unbounded, &p, true, 0), CONC_EEMPTY);
  conc_queue_destroy(&bounded);
  conc_queue_destroy(&unbounded);
}

/* Q7 */
static void task_done_too_many_times_is_a_value_error(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 0);
  assert_int_equal(conc_queue_task_done(&q), CONC_ETASKDONE);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(get_int(&q), 1);
  assert_int_equal(conc_queue_task_done(&q), 0);
  assert_int_equal(conc_queue_task_done(&q), CONC_ETASKDONE);
  assert_int_equal(conc_queue_unfinished_tasks(&q), 0);
  conc_queue_destroy(&q);
}

struct summer {
  conc_queue_t *q;
  long sum;
};

static void *sum_worker(void *arg) {
  struct summer *s = arg;
  for (;;) {
    int v = get_int(s->q);
    if (v < 0) {
      assert_int_equal(conc_queue_task_done(s->q), 0);
      return NULL;
    }
    s->sum += v;
    assert_int_equal(conc_queue_task_done(s->q), 0);
  }
}

/* Q8 */
static void join_waits_for_every_task_done(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 0);
  struct summer s[2] = {{&q, 0}, {&q, 0}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    t[i] = conc_test_spawn(sum_worker, &s[i]);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 100; i++)
      assert_int_equal(conc_queue_put_nowait(&q, I(i)), 0);
    assert_int_equal(conc_queue_join(&q, CONC_FOREVER), 0);
    assert_int_equal(s[0].sum + s[1].sum, 4950L * (round + 1));
  }
  assert_int_equal(conc_queue_join(&q, CONC_FOREVER), 0); /* twice is fine */
  for (int i = 0; i < 2; i++)
    assert_int_equal(conc_queue_put_nowait(&q, I(-1)), 0);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  assert_int_equal(conc_queue_join(&q, 0), 0);
  conc_queue_destroy(&q);
}

/* Q8 (C form: join takes a timeout) */
static void join_times_out_while_tasks_unfinished(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_queue_join(&q, 0.05), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  assert_int_equal(conc_queue_join(&q, -3), CONC_EINVAL);
  conc_queue_destroy(&q);
}

/* Q9 */
static void lowering_maxsize_applies_to_next_put(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 3);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(2)), 0);
  assert_int_equal(conc_queue_set_maxsize(&q, 2), 0);
  assert_true(conc_queue_full(&q));
  assert_int_equal(conc_queue_put_nowait(&q, I(3)), CONC_EFULL);
  assert_int_equal(conc_queue_set_maxsize(&q, 1), 0);
  assert_int_equal(get_int(&q), 1);
  assert_int_equal(conc_queue_put_nowait(&q, I(3)), CONC_EFULL);
  assert_int_equal(conc_queue_set_maxsize(&q, 0), 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(3)), 0);
  assert_int_equal(conc_queue_qsize(&q), 2);
  conc_queue_destroy(&q);
}

static void *blocked_put(void *arg) {
  return I(conc_queue_put(arg, I(5), true, CONC_FOREVER));
}

/* Q9: raising maxsize at run time lets a blocked putter in. */
static void raising_maxsize_wakes_blocked_putter(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 1);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  pthread_t t = conc_test_spawn(blocked_put, &q);
  conc_sleep(0.05);
  assert_int_equal(conc_queue_qsize(&q), 1);
  assert_int_equal(conc_queue_set_maxsize(&q, 2), 0);
  void *rc;
  assert_int_equal(pthread_join(t, &rc), 0);
  assert_int_equal(V(rc), 0);
  assert_int_equal(conc_queue_qsize(&q), 2);
  conc_queue_destroy(&q);
}

/* Q11 */
static void shutdown_empty_refuses_everything(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 2);
  assert_int_equal(conc_queue_shutdown(&q, false), 0);
  void *p;
  assert_int_equal(conc_queue_put(&q, I(1), true, CONC_FOREVER),
                   CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_get(&q, &p, true, CONC_FOREVER), CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_get(&q, &p, true, 0.5), CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_get_nowait(&q, &p), CONC_ESHUTDOWN);
  conc_queue_destroy(&q);
}

/* Q11 */
static void shutdown_gets_drain_then_fail(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 0);
  for (int i = 1; i <= 3; i++)
    assert_int_equal(conc_queue_put_nowait(&q, I(i)), 0);
  assert_int_equal(conc_queue_shutdown(&q, false), 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(9)), CONC_ESHUTDOWN);
  void *p;
  assert_int_equal(conc_queue_get(&q, &p, true, CONC_FOREVER), 0);
  assert_ptr_equal(p, I(1));
  assert_int_equal(conc_queue_get_nowait(&q, &p), 0);
  assert_ptr_equal(p, I(2));
  assert_int_equal(conc_queue_get(&q, &p, true, 0.01), 0);
  assert_ptr_equal(p, I(3));
  assert_int_equal(conc_queue_get(&q, &p, true, CONC_FOREVER), CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_get(&q, &p, true, 0.01), CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_get_nowait(&q, &p), CONC_ESHUTDOWN);
  conc_queue_destroy(&q);
}

static int freed;
static void count_free(void *item, void *arg) {
  (void)item;
  *(int *)arg += 1; /* the user pointer arrives */
  freed++;
}

/* Q12 */
static void shutdown_immediate_drains_and_releases_join(void **state) {
  (void)state;
  conc_queue_t q;
  int via_arg = 0; /* free_item gets the options' user pointer */
  assert_int_equal(
      conc_queue_init(
          &q, &(conc_queue_opts_t){.free_item = count_free, .arg = &via_arg}),
      0);
  for (int i = 1; i <= 4; i++)
    assert_int_equal(conc_queue_put_nowait(&q, I(i)), 0);
  assert_int_equal(get_int(&q), 1); /* got, but no task_done yet */
  freed = 0;
  assert_int_equal(conc_queue_shutdown(&q, true), 0);
  assert_int_equal(freed, 3);
  assert_int_equal(via_arg, 3);
  assert_int_equal(conc_queue_qsize(&q), 0);
  assert_int_equal(conc_queue_unfinished_tasks(&q), 1);
  void *p;
  assert_int_equal(conc_queue_get_nowait(&q, &p), CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_task_done(&q), 0);
  assert_int_equal(conc_queue_join(&q, 0), 0);
  assert_int_equal(conc_queue_task_done(&q), CONC_ETASKDONE);
  conc_queue_destroy(&q);
}

static void *joiner(void *arg) { return I(conc_queue_join(arg, 5)); }

/* Q12 */
static void shutdown_immediate_wakes_joiner(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(2)), 0);
  pthread_t t = conc_test_spawn(joiner, &q);
  conc_sleep(0.05);
  double t0 = conc_monotonic();
  assert_int_equal(conc_queue_shutdown(&q, true), 0);
  void *rc;
  assert_int_equal(pthread_join(t, &rc), 0);
  assert_int_equal(V(rc), 0);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(conc_queue_task_done(&q), CONC_ETASKDONE);
  conc_queue_destroy(&q);
}

static void *blocked_get(void *arg) {
  void *p = NULL;
  int rc = conc_queue_get(arg, &p, true, CONC_FOREVER);
  return I(rc == 0 ? V(p) : rc);
}

/* Q13 */
static void shutdown_wakes_blocked_putters_and_getters(void **state) {
  (void)state;
  conc_queue_t full, empty;
  init_kind(&full, CONC_QUEUE_FIFO, 1);
  init_kind(&empty, CONC_QUEUE_FIFO, 1);
  assert_int_equal(conc_queue_put_nowait(&full, I(1)), 0);
  pthread_t tp = conc_test_spawn(blocked_put, &full);
  pthread_t tg = conc_test_spawn(blocked_get, &empty);
  conc_sleep(0.05);
  assert_int_equal(conc_queue_shutdown(&full, false), 0);
  assert_int_equal(conc_queue_shutdown(&empty, false), 0);
  void *rc;
  assert_int_equal(pthread_join(tp, &rc), 0);
  assert_int_equal(V(rc), CONC_ESHUTDOWN);
  assert_int_equal(pthread_join(tg, &rc), 0);
  assert_int_equal(V(rc), CONC_ESHUTDOWN);
  assert_int_equal(conc_queue_qsize(&full), 1); /* the putter added nothing */
  conc_queue_destroy(&full);
  conc_queue_destroy(&empty);
}

struct pending_get {
  conc_queue_t *q;
  conc_queue_t *started;
  int rc;
};

static void *pending_getter(void *arg) {
  struct pending_get *g = arg;
  void *p;
  assert_int_equal(conc_queue_put_nowait(g->started, I(1)), 0);
  g->rc = conc_queue_get(g->q, &p, true, CONC_FOREVER);
  return NULL;
}

/* Q13: 3 getters on 2 items after shutdown: exactly one ShutDown. */
static void shutdown_three_getters_two_items_one_fails(void **state) {
  (void)state;
  conc_queue_t q, started;
  init_kind(&q, CONC_QUEUE_FIFO, 0);
  init_kind(&started, CONC_QUEUE_FIFO, 0);
  struct pending_get g[3];
  pthread_t t[3];
  for (int i = 0; i < 3; i++) {
    g[i] = (struct pending_get){&q, &started, 1};
    t[i] = conc_test_spawn(pending_getter, &g[i]);
  }
  for (int i = 0; i < 3; i++)
    get_int(&started);
  conc_sleep(0.05); /* let all three block */
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(2)), 0);
  assert_int_equal(conc_queue_shutdown(&q, false), 0);
  int ok = 0, down = 0;
  for (int i = 0; i < 3; i++) {
    conc_test_join(t[i]);
    ok += g[i].rc == 0;
    down += g[i].rc == CONC_ESHUTDOWN;
  }
  assert_int_equal(ok, 2);
  assert_int_equal(down, 1);
  conc_queue_destroy(&q);
  conc_queue_destroy(&started);
}

/* Q14 */
static void shutdown_transitions_allowed(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_LIFO, 0);
  assert_false(conc_queue_is_shutdown(&q));
  assert_int_equal(conc_queue_shutdown(&q, false), 0);
  assert_true(conc_queue_is_shutdown(&q));
  assert_int_equal(conc_queue_shutdown(&q, true), 0);
  assert_true(conc_queue_is_shutdown(&q));
  assert_int_equal(conc_queue_shutdown(&q, false), 0);
  assert_true(conc_queue_is_shutdown(&q));
  conc_queue_destroy(&q);
}

/* Q15 */
static void shutdown_does_not_release_join(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), 0);
  assert_int_equal(conc_queue_put_nowait(&q, I(2)), 0);
  assert_int_equal(conc_queue_shutdown(&q, false), 0);
  assert_int_equal(conc_queue_join(&q, 0.02), CONC_ETIMEDOUT);
  pthread_t t = conc_test_spawn(joiner, &q);
  assert_int_equal(get_int(&q), 1);
  assert_int_equal(conc_queue_task_done(&q), 0);
  assert_int_equal(conc_queue_join(&q, 0.02), CONC_ETIMEDOUT);
  assert_int_equal(get_int(&q), 2);
  assert_int_equal(conc_queue_task_done(&q), 0);
  void *rc;
  assert_int_equal(pthread_join(t, &rc), 0);
  assert_int_equal(V(rc), 0);
  conc_queue_destroy(&q);
}

/* Bad input changes nothing. */
static void bad_arguments_are_einval(void **state) {
  (void)state;
  conc_queue_t q;
  void *p;
  assert_int_equal(conc_queue_init(NULL, NULL), CONC_EINVAL);
  assert_int_equal(
      conc_queue_init(&q, &(conc_queue_opts_t){.kind = CONC_QUEUE_PRIORITY}),
      CONC_EINVAL);
  assert_int_equal(
      conc_queue_init(&q, &(conc_queue_opts_t){.kind = (conc_queue_kind_t)7}),
      CONC_EINVAL);
  assert_int_equal(conc_queue_put(NULL, I(1), true, 0), CONC_EINVAL);
  assert_int_equal(conc_queue_get(NULL, &p, true, 0), CONC_EINVAL);
  assert_int_equal(conc_queue_init(&q, NULL), 0);
  assert_int_equal(conc_queue_get(&q, NULL, false, 0), CONC_EINVAL);
  conc_queue_destroy(&q);
  /* a destroyed queue is refused, not used */
  assert_int_equal(conc_queue_put_nowait(&q, I(1)), CONC_EINVAL);
  assert_int_equal(conc_queue_qsize(&q), -1);
  assert_int_equal(conc_queue_task_done(NULL), CONC_EINVAL);
  assert_int_equal(conc_queue_shutdown(NULL, false), CONC_EINVAL);
}

/* DESIGN "Processes": a child forked while other threads use a queue finds
 * it consistent and usable. */
struct hammer {
  conc_queue_t *q;
  volatile int stop;
};

static void *hammer(void *arg) {
  struct hammer *h = arg;
  void *p;
  while (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED)) {
    assert_int_equal(conc_queue_put_nowait(h->q, I(1)), 0);
    assert_int_equal(conc_queue_get_nowait(h->q, &p), 0);
  }
  return NULL;
}

static void fork_while_queue_busy_child_can_use_it(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 0);
  struct hammer h = {&q, 0};
  pthread_t t = conc_test_spawn(hammer, &h);
  for (int i = 0; i < 5; i++) {
    conc_sleep(0.002);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      void *p;
      int ok = conc_queue_put_nowait(&q, I(7)) == 0;
      while (conc_queue_get_nowait(&q, &p) == 0 && p != I(7))
        ;
      _exit(ok && p == I(7) ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  __atomic_store_n(&h.stop, 1, __ATOMIC_RELAXED);
  conc_test_join(t);
  conc_queue_destroy(&q);
}

/* ---- SimpleQueue ------------------------------------------------------ */

/* SQ1 */
static void simple_queue_basic(void **state) {
  (void)state;
  conc_simple_queue_t q;
  assert_int_equal(conc_simple_queue_init(&q, NULL), 0);
  void *p;
  assert_true(conc_simple_queue_empty(&q));
  assert_int_equal(conc_simple_queue_get_nowait(&q, &p), CONC_EEMPTY);
  assert_int_equal(conc_simple_queue_get(&q, &p, false, 0), CONC_EEMPTY);
  double t0 = conc_monotonic();
  assert_int_equal(conc_simple_queue_get(&q, &p, true, 0.02), CONC_EEMPTY);
  assert_elapsed(conc_monotonic() - t0, 0.02);
  assert_int_equal(conc_simple_queue_get(&q, &p, true, -1.5), CONC_EINVAL);
  assert_int_equal(conc_simple_queue_get(&q, &p, true, NAN), CONC_EINVAL);
  for (int i = 0; i < 300; i++) /* put never blocks, grows past 64 */
    assert_int_equal(conc_simple_queue_put(&q, I(i)), 0);
  assert_int_equal(conc_simple_queue_put_nowait(&q, I(300)), 0);
  assert_int_equal(conc_simple_queue_qsize(&q), 301);
  for (int i = 0; i <= 300; i++) {
    assert_int_equal(conc_simple_queue_get(&q, &p, true, 0), 0);
    assert_int_equal(V(p), i);
  }
  assert_true(conc_simple_queue_empty(&q));
  assert_int_equal(conc_simple_queue_put(NULL, I(1)), CONC_EINVAL);
  conc_simple_queue_destroy(&q);
}

/* SQ2: order holds across storage chunks; destroy hands the rest to
 * free_item; steady put/get reuses the chunks. */
static void simple_queue_spans_chunks_and_frees_rest(void **state) {
  (void)state;
  conc_simple_queue_t q;
  int via_arg = 0;
  assert_int_equal(conc_simple_queue_init(
                       &q, &(conc_simple_queue_opts_t){.free_item = count_free,
                                                       .arg = &via_arg}),
                   0);
  void *p;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 5000; i++)
      assert_int_equal(conc_simple_queue_put(&q, I(i + 1)), 0);
    for (int i = 0; i < 5000; i++) {
      assert_int_equal(conc_simple_queue_get_nowait(&q, &p), 0);
      assert_int_equal(V(p), i + 1);
    }
  }
  assert_int_equal(conc_simple_queue_get_nowait(&q, &p), CONC_EEMPTY);
  for (int i = 0; i < 5000; i++)
    assert_int_equal(conc_simple_queue_put(&q, I(i + 1)), 0);
  for (int i = 0; i < 2500; i++)
    assert_int_equal(conc_simple_queue_get_nowait(&q, &p), 0);
  assert_int_equal(conc_simple_queue_qsize(&q), 2500);
  freed = 0;
  conc_simple_queue_destroy(&q);
  assert_int_equal(freed, 2500);
  assert_int_equal(via_arg, 2500);
  assert_int_equal(conc_simple_queue_put(&q, I(1)), CONC_EINVAL);
}

static void *sq_order_producer(void *arg) {
  for (int i = 0; i < 100; i++)
    assert_int_equal(conc_simple_queue_put(arg, I(i)), 0);
  return NULL;
}

/* SQ2 */
static void simple_queue_one_producer_keeps_order(void **state) {
  (void)state;
  conc_simple_queue_t q;
  assert_int_equal(conc_simple_queue_init(&q, NULL), 0);
  pthread_t t = conc_test_spawn(sq_order_producer, &q);
  for (int i = 0; i < 100; i++) {
    void *p;
    assert_int_equal(conc_simple_queue_get(&q, &p, true, CONC_FOREVER), 0);
    assert_int_equal(V(p), i);
  }
  conc_test_join(t);
  conc_simple_queue_destroy(&q);
}

#define FEEDERS 50
#define ITEMS 10000

struct many {
  conc_simple_queue_t *q;
  int mode; /* 0 blocking, 1 non-blocking, 2 1e-5 s timeout */
  int next;
  unsigned char *seen;
  int *taken;
};

static void *feeder(void *arg) {
  struct many *m = arg;
  for (int i = 0; i < ITEMS / FEEDERS; i++)
    assert_int_equal(conc_simple_queue_put(m->q, I(m->next + i + 1)), 0);
  return NULL;
}

static void *consumer(void *arg) {
  struct many *m = arg;
  for (;;) {
    void *p = NULL;
    int rc;
    if (m->mode == 0)
      rc = conc_simple_queue_get(m->q, &p, true, CONC_FOREVER);
    else if (m->mode == 1)
      rc = conc_simple_queue_get_nowait(m->q, &p);
    else
      rc = conc_simple_queue_get(m->q, &p, true, 1e-5);
    if (rc == CONC_EEMPTY) {
      /* polls give the core away: under a serialising tool (Helgrind runs
       * one thread at a time) a spinning poller would starve the feeders */
      if (m->mode == 1)
        sched_yield();
      continue;
    }
    assert_int_equal(rc, 0);
    if (p == NULL)
      return NULL;
    __atomic_fetch_add(&m->seen[V(p) - 1], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(m->taken, 1, __ATOMIC_RELAXED);
  }
}

static void many_threads(int mode) {
  conc_simple_queue_t q;
  assert_int_equal(conc_simple_queue_init(&q, NULL), 0);
  static unsigned char seen[ITEMS];
  memset(seen, 0, sizeof seen);
  int taken = 0;
  struct many m[FEEDERS];
  pthread_t f[FEEDERS], c[FEEDERS];
  for (int i = 0; i < FEEDERS; i++) {
    m[i] = (struct many){&q, mode, i * (ITEMS / FEEDERS), seen, &taken};
    c[i] = conc_test_spawn(consumer, &m[i]);
  }
  for (int i = 0; i < FEEDERS; i++)
    f[i] = conc_test_spawn(feeder, &m[i]);
  for (int i = 0; i < FEEDERS; i++)
    conc_test_join(f[i]);
  for (int i = 0; i < FEEDERS; i++)
    assert_int_equal(conc_simple_queue_put(&q, NULL), 0); /* sentinels */
  for (int i = 0; i < FEEDERS; i++)
    conc_test_join(c[i]);
  assert_int_equal(taken, ITEMS);
  for (int i = 0; i < ITEMS; i++)
    assert_int_equal(seen[i], 1);
  assert_true(conc_simple_queue_empty(&q));
  conc_simple_queue_destroy(&q);
}

/* SQ2 */
static void simple_queue_many_threads_blocking(void **state) {
  (void)state;
  many_threads(0);
}

/* SQ2 */
static void simple_queue_many_threads_nonblocking(void **state) {
  (void)state;
  many_threads(1);
}

/* SQ2 */
static void simple_queue_many_threads_timeout(void **state) {
  (void)state;
  many_threads(2);
}

/* ---- SimpleQueue's lock-free blocks ------------------------------------ */

/* qsize is exact on each side of a block boundary (1023 slots a block),
 * while both indices cross it, and after blocks are recycled. */
static void simple_queue_qsize_exact_across_blocks(void **state) {
  (void)state;
  conc_simple_queue_t q;
  assert_int_equal(conc_simple_queue_init(&q, NULL), 0);
  void *p;
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 2100; i++) {
      assert_int_equal(conc_simple_queue_put(&q, I(++next_in)), 0);
      assert_int_equal(conc_simple_queue_qsize(&q), next_in - next_out);
    }
    for (int i = 0; i < 2100; i++) {
      assert_int_equal(conc_simple_queue_get_nowait(&q, &p), 0);
      assert_int_equal(V(p), ++next_out);
      assert_int_equal(conc_simple_queue_qsize(&q), next_in - next_out);
    }
    assert_true(conc_simple_queue_empty(&q));
    assert_int_equal(conc_simple_queue_get_nowait(&q, &p), CONC_EEMPTY);
  }
  conc_simple_queue_destroy(&q);
}

#define FIFO_PRODUCERS 4
#define FIFO_CONSUMERS 4
#define FIFO_ITEMS 30000 /* per producer: about 120 blocks in all */

struct fifo_ctx {
  conc_simple_queue_t q;
  long taken;
  long sum;
};

struct fifo_arg {
  struct fifo_ctx *c;
  int idx;
};

static void *fifo_producer(void *arg) {
  struct fifo_arg *a = arg;
  for (int i = 1; i <= FIFO_ITEMS; i++)
    assert_int_equal(
        conc_simple_queue_put(&a->c->q, I(i * FIFO_PRODUCERS + a->idx)), 0);
  return NULL;
}

/* Each consumer sees every producer's items in the order they were put;
 * half of them poll without blocking. */
static void *fifo_consumer(void *arg) {
  struct fifo_arg *a = arg;
  int last[FIFO_PRODUCERS] = {0};
  long n = 0, sum = 0;
  for (;;) {
    void *p;
    int rc = a->idx % 2 ? conc_simple_queue_get_nowait(&a->c->q, &p)
                        : conc_simple_queue_get(&a->c->q, &p, true, 1.0);
    if (rc == CONC_EEMPTY) {
      sched_yield();
      continue;
    }
    assert_int_equal(rc, 0);
    if (p == NULL)
      break;
    int v = V(p), prod = v % FIFO_PRODUCERS, seq = v / FIFO_PRODUCERS;
    assert_true(seq > last[prod]);
    last[prod] = seq;
    n++;
    sum += v;
  }
  __atomic_fetch_add(&a->c->taken, n, __ATOMIC_RELAXED);
  __atomic_fetch_add(&a->c->sum, sum, __ATOMIC_RELAXED);
  return NULL;
}

/* SQ2 under the lock-free paths: 4 producers and 4 consumers through
 * about 120 block changes and recycles; per-producer FIFO, nothing lost
 * or duplicated, and qsize 0 at the end. */
static void simple_queue_many_producers_keep_their_order(void **state) {
  (void)state;
  struct fifo_ctx c = {.taken = 0};
  assert_int_equal(conc_simple_queue_init(&c.q, NULL), 0);
  struct fifo_arg pa[FIFO_PRODUCERS], ca[FIFO_CONSUMERS];
  pthread_t pt[FIFO_PRODUCERS], ct[FIFO_CONSUMERS];
  for (int i = 0; i < FIFO_CONSUMERS; i++) {
    ca[i] = (struct fifo_arg){&c, i};
    ct[i] = conc_test_spawn(fifo_consumer, &ca[i]);
  }
  for (int i = 0; i < FIFO_PRODUCERS; i++) {
    pa[i] = (struct fifo_arg){&c, i};
    pt[i] = conc_test_spawn(fifo_producer, &pa[i]);
  }
  for (int i = 0; i < FIFO_PRODUCERS; i++)
    conc_test_join(pt[i]);
  for (int i = 0; i < FIFO_CONSUMERS; i++)
    assert_int_equal(conc_simple_queue_put(&c.q, NULL), 0);
  for (int i = 0; i < FIFO_CONSUMERS; i++)
    conc_test_join(ct[i]);
  long expect = 0;
  for (int i = 1; i <= FIFO_ITEMS; i++)
    for (int k = 0; k < FIFO_PRODUCERS; k++)
      expect += i * FIFO_PRODUCERS + k;
  assert_int_equal(c.taken, (long)FIFO_ITEMS * FIFO_PRODUCERS);
  assert_int_equal(c.sum, expect);
  assert_int_equal(conc_simple_queue_qsize(&c.q), 0);
  conc_simple_queue_destroy(&c.q);
}

/* A stop flag under a mutex: a hand-off every race detector sees. */
struct stop_flag {
  pthread_mutex_t mu;
  bool stop;
};

static bool stop_seen(struct stop_flag *f) {
  pthread_mutex_lock(&f->mu);
  bool stop = f->stop;
  pthread_mutex_unlock(&f->mu);
  return stop;
}

static void stop_set(struct stop_flag *f) {
  pthread_mutex_lock(&f->mu);
  f->stop = true;
  pthread_mutex_unlock(&f->mu);
}

struct sq_hammer {
  conc_simple_queue_t *q;
  struct stop_flag f;
};

static void *sq_hammer(void *arg) {
  struct sq_hammer *h = arg;
  void *p;
  while (!stop_seen(&h->f)) {
    for (int i = 0; i < 300; i++)
      assert_int_equal(conc_simple_queue_put(h->q, I(1)), 0);
    for (int i = 0; i < 300; i++)
      if (conc_simple_queue_get_nowait(h->q, &p) == 0)
        assert_ptr_equal(p, I(1));
  }
  return NULL;
}

/* A child forked while two threads put and get (so a put or a get may be
 * half done, or a block half installed, in the parent) finds a queue whose
 * qsize counts exactly what it can get, and which still works. */
static void simple_queue_fork_while_busy_child_counts_exactly(void **state) {
  (void)state;
  conc_simple_queue_t q;
  assert_int_equal(conc_simple_queue_init(&q, NULL), 0);
  struct sq_hammer h = {&q, {PTHREAD_MUTEX_INITIALIZER, false}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    t[i] = conc_test_spawn(sq_hammer, &h);
  for (int i = 0; i < 8; i++) {
    conc_sleep(0.002);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      long n = conc_simple_queue_qsize(&q), got = 0;
      void *p;
      int ok = conc_simple_queue_put(&q, I(7)) == 0;
      while (conc_simple_queue_get_nowait(&q, &p) == 0 && p != I(7))
        got += p == I(1);
      ok = ok && p == I(7) && got == n && conc_simple_queue_qsize(&q) == 0;
      for (int k = 0; ok && k < 3000; k++) /* across blocks again */
        ok = conc_simple_queue_put(&q, I(k + 1)) == 0;
      for (int k = 0; ok && k < 3000; k++)
        ok = conc_simple_queue_get_nowait(&q, &p) == 0 && p == I(k + 1);
      _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  stop_set(&h.f);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  conc_simple_queue_destroy(&q);
}

/* ---- the bounded FIFO's lock-free ring --------------------------------- */

/* Q3, Q4: qsize, full, empty and unfinished_tasks are exact while the
 * positions wrap round the ring many times (Queue(5) has 16 cells). */
static void bounded_counts_exact_across_wraps(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 5);
  void *p;
  int in = 0, out = 0;
  for (int round = 0; round < 40; round++) {
    while (conc_queue_put_nowait(&q, I(in + 1)) == 0)
      in++;
    assert_int_equal(in - out, 5);
    assert_true(conc_queue_full(&q));
    for (int k = 0; k < 3; k++) {
      assert_int_equal(conc_queue_get_nowait(&q, &p), 0);
      assert_int_equal(V(p), ++out);
      assert_int_equal(conc_queue_qsize(&q), in - out);
      assert_false(conc_queue_full(&q));
    }
    assert_int_equal(conc_queue_unfinished_tasks(&q), in);
  }
  while (conc_queue_get_nowait(&q, &p) == 0)
    assert_int_equal(V(p), ++out);
  assert_int_equal(out, in);
  assert_true(conc_queue_empty(&q));
  for (int i = 0; i < in; i++)
    assert_int_equal(conc_queue_task_done(&q), 0);
  assert_int_equal(conc_queue_task_done(&q), CONC_ETASKDONE);
  assert_int_equal(conc_queue_join(&q, 0), 0);
  conc_queue_destroy(&q);
}

#define BQ_PRODUCERS 4
#define BQ_CONSUMERS 4
#define BQ_ITEMS 20000 /* per producer */

struct bq_ctx {
  conc_queue_t q;
  long taken, sum;
  int set_maxsize_at; /* > 0: consumer 0 calls set_maxsize after that many */
};

struct bq_arg {
  struct bq_ctx *c;
  int idx;
};

static void *bq_producer(void *arg) {
  struct bq_arg *a = arg;
  for (int i = 1; i <= BQ_ITEMS; i++) {
    void *item = I(i * BQ_PRODUCERS + a->idx);
    if (a->idx % 2) {
      int rc;
      while ((rc = conc_queue_put(&a->c->q, item, true, 0.001)) == CONC_EFULL)
        ;
      assert_int_equal(rc, 0);
    } else {
      assert_int_equal(conc_queue_put(&a->c->q, item, true, CONC_FOREVER), 0);
    }
  }
  return NULL;
}

static void *bq_consumer(void *arg) {
  struct bq_arg *a = arg;
  int last[BQ_PRODUCERS] = {0};
  long n = 0, sum = 0;
  for (;;) {
    void *p;
    int rc = a->idx % 2 ? conc_queue_get_nowait(&a->c->q, &p)
                        : conc_queue_get(&a->c->q, &p, true, CONC_FOREVER);
    if (rc == CONC_EEMPTY) {
      sched_yield();
      continue;
    }
    assert_int_equal(rc, 0);
    if (p == NULL) {
      assert_int_equal(conc_queue_task_done(&a->c->q), 0);
      break;
    }
    int v = V(p), prod = v % BQ_PRODUCERS, seq = v / BQ_PRODUCERS;
    assert_true(seq > last[prod]);
    last[prod] = seq;
    n++;
    sum += v;
    assert_int_equal(conc_queue_task_done(&a->c->q), 0);
    if (a->idx == 0 && n == a->c->set_maxsize_at)
      assert_int_equal(conc_queue_set_maxsize(&a->c->q, 3), 0);
  }
  __atomic_fetch_add(&a->c->taken, n, __ATOMIC_RELAXED);
  __atomic_fetch_add(&a->c->sum, sum, __ATOMIC_RELAXED);
  return NULL;
}

/* backlog > 0: the consumers start only once that many items wait, so
 * that an unbounded queue's ring grows while every thread is busy. */
static void fifo_many_threads(long maxsize, int set_maxsize_at, long backlog) {
  struct bq_ctx c = {.set_maxsize_at = set_maxsize_at};
  init_kind(&c.q, CONC_QUEUE_FIFO, maxsize);
  struct bq_arg pa[BQ_PRODUCERS], ca[BQ_CONSUMERS];
  pthread_t pt[BQ_PRODUCERS], ct[BQ_CONSUMERS];
  for (int i = 0; i < BQ_PRODUCERS; i++) {
    pa[i] = (struct bq_arg){&c, i};
    pt[i] = conc_test_spawn(bq_producer, &pa[i]);
  }
  while (conc_queue_qsize(&c.q) < backlog)
    sched_yield();
  for (int i = 0; i < BQ_CONSUMERS; i++) {
    ca[i] = (struct bq_arg){&c, i};
    ct[i] = conc_test_spawn(bq_consumer, &ca[i]);
  }
  for (int i = 0; i < BQ_PRODUCERS; i++)
    conc_test_join(pt[i]);
  for (int i = 0; i < BQ_CONSUMERS; i++)
    assert_int_equal(conc_queue_put(&c.q, NULL, true, CONC_FOREVER), 0);
  assert_int_equal(conc_queue_join(&c.q, 30), 0);
  for (int i = 0; i < BQ_CONSUMERS; i++)
    conc_test_join(ct[i]);
  long expect = 0;
  for (int i = 1; i <= BQ_ITEMS; i++)
    for (int k = 0; k < BQ_PRODUCERS; k++)
      expect += i * BQ_PRODUCERS + k;
  assert_int_equal(c.taken, (long)BQ_ITEMS * BQ_PRODUCERS);
  assert_int_equal(c.sum, expect);
  assert_int_equal(conc_queue_qsize(&c.q), 0);
  assert_int_equal(conc_queue_unfinished_tasks(&c.q), 0);
  assert_int_equal(conc_queue_task_done(&c.q), CONC_ETASKDONE);
  conc_queue_destroy(&c.q);
}

/* Q2, Q4: 4 producers (half with timed puts) and 4 consumers (half
 * polling) through Queue(8): per-producer FIFO, nothing lost or
 * duplicated, task_done/join exact, with puts blocking on a full ring. */
static void bounded_many_producers_keep_their_order(void **state) {
  (void)state;
  fifo_many_threads(8, 0, 0);
}

/* As above, with set_maxsize moving the items from the ring to the mutex
 * path while every thread is busy: no item, order or task is lost. */
static void bounded_leaving_the_ring_under_load_keeps_everything(void **state) {
  (void)state;
  fifo_many_threads(8, BQ_ITEMS / 2, 0);
}

/* Q2, Q4 on Queue(): the ring grows (from 64 cells) while 4 producers
 * put and, once 5000 items wait, 4 consumers get: per-producer FIFO,
 * nothing lost or duplicated, task_done/join exact. */
static void unbounded_ring_grows_under_load_keeping_order(void **state) {
  (void)state;
  fifo_many_threads(0, 0, 5000);
}

/* As above, and set_maxsize moves the items of a grown ring to the mutex
 * path while every thread is busy. */
static void unbounded_leaving_a_grown_ring_keeps_everything(void **state) {
  (void)state;
  fifo_many_threads(0, BQ_ITEMS / 2, 5000);
}

/* Q3, Q4: one thread fills Queue() far past its first ring: qsize,
 * empty, full and unfinished_tasks exact at every step, FIFO order. */
static void unbounded_ring_grows_with_exact_counts(void **state) {
  (void)state;
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, 0);
  enum { N = 100000 };
  for (int i = 1; i <= N; i++) {
    assert_int_equal(conc_queue_put_nowait(&q, I(i)), 0);
    if ((i & (i - 1)) == 0 || i % 9973 == 0) { /* at and between doublings */
      assert_int_equal(conc_queue_qsize(&q), i);
      assert_int_equal(conc_queue_unfinished_tasks(&q), i);
      assert_false(conc_queue_full(&q));
      assert_false(conc_queue_empty(&q));
    }
  }
  void *p;
  for (int i = 1; i <= N; i++) {
    assert_int_equal(conc_queue_get_nowait(&q, &p), 0);
    assert_int_equal(V(p), i);
  }
  assert_int_equal(conc_queue_get_nowait(&q, &p), CONC_EEMPTY);
  assert_true(conc_queue_empty(&q));
  for (int i = 0; i < N; i++)
    assert_int_equal(conc_queue_task_done(&q), 0);
  assert_int_equal(conc_queue_join(&q, 0), 0);
  conc_queue_destroy(&q);
}

/* Q1, Q3: a bounded queue larger than its first ring (16384 cells) grows
 * up to maxsize and no further: full at exactly maxsize, FIFO, and a
 * shutdown(immediate) of the grown ring drops every item. */
static void large_bounded_queue_is_full_at_exactly_maxsize(void **state) {
  (void)state;
  conc_queue_t q;
  enum { M = 40000 };
  init_kind(&q, CONC_QUEUE_FIFO, M);
  for (int i = 1; i <= M; i++)
    assert_int_equal(conc_queue_put_nowait(&q, I(i)), 0);
  assert_true(conc_queue_full(&q));
  assert_int_equal(conc_queue_qsize(&q), M);
  assert_int_equal(conc_queue_put_nowait(&q, I(0)), CONC_EFULL);
  assert_int_equal(conc_queue_put(&q, I(0), true, 0.01), CONC_EFULL);
  void *p;
  for (int i = 1; i <= M / 2; i++) {
    assert_int_equal(conc_queue_get_nowait(&q, &p), 0);
    assert_int_equal(V(p), i);
    assert_int_equal(conc_queue_put_nowait(&q, I(M + i)), 0);
  }
  assert_true(conc_queue_full(&q));
  assert_int_equal(conc_queue_get_nowait(&q, &p), 0);
  assert_int_equal(V(p), M / 2 + 1);
  assert_int_equal(conc_queue_shutdown(&q, true), 0);
  assert_int_equal(conc_queue_qsize(&q), 0);
  /* M + M / 2 puts, less the M - 1 items the shutdown dropped */
  assert_int_equal(conc_queue_unfinished_tasks(&q), M / 2 + 1);
  conc_queue_destroy(&q);
}

struct bq_hammer {
  conc_queue_t *q;
  struct stop_flag f;
};

static void *bq_hammer(void *arg) {
  struct bq_hammer *h = arg;
  void *p;
  while (!stop_seen(&h->f)) {
    for (int i = 0; i < 20; i++)
      if (conc_queue_put_nowait(h->q, I(1)) != 0)
        break;
    while (conc_queue_get_nowait(h->q, &p) == 0)
      assert_ptr_equal(p, I(1));
  }
  return NULL;
}

/* A child forked while two threads put into and get from a ring queue
 * finds every count exact and the ring working. */
static void fork_while_busy(long maxsize) {
  conc_queue_t q;
  init_kind(&q, CONC_QUEUE_FIFO, maxsize);
  struct bq_hammer h = {&q, {PTHREAD_MUTEX_INITIALIZER, false}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    t[i] = conc_test_spawn(bq_hammer, &h);
  for (int i = 0; i < 8; i++) {
    conc_sleep(0.002);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      long n = conc_queue_qsize(&q), got = 0;
      void *p;
      while (conc_queue_get_nowait(&q, &p) == 0)
        got += p == I(1);
      int ok = got == n && conc_queue_qsize(&q) == 0;
      for (int k = 0; ok && k < 100; k++) { /* round the ring again */
        ok = conc_queue_put(&q, I(k + 2), true, 1) == 0 &&
             conc_queue_get(&q, &p, true, 1) == 0 && p == I(k + 2);
      }
      _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  stop_set(&h.f);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  conc_queue_destroy(&q);
}

static void bounded_fork_while_busy_child_counts_exactly(void **state) {
  (void)state;
  fork_while_busy(16);
}

static void unbounded_fork_while_busy_child_counts_exactly(void **state) {
  (void)state;
  fork_while_busy(0);
}

CONC_TEST_MAIN(
    cmocka_unit_test(order_depends_on_kind),
    cmocka_unit_test(priority_ties_keep_insertion_order),
    cmocka_unit_test(priority_heap_sorts_many),
    cmocka_unit_test(maxsize_zero_or_less_is_unbounded),
    cmocka_unit_test(full_empty_and_qsize_agree),
    cmocka_unit_test(full_queue_put_raises_full),
    cmocka_unit_test(empty_queue_get_raises_empty),
    cmocka_unit_test(blocking_put_waits_for_a_get),
    cmocka_unit_test(blocking_get_waits_for_a_put),
    cmocka_unit_test(nowait_forms_are_non_blocking),
    cmocka_unit_test(negative_timeout_rules),
    cmocka_unit_test(task_done_too_many_times_is_a_value_error),
    cmocka_unit_test(join_waits_for_every_task_done),
    cmocka_unit_test(join_times_out_while_tasks_unfinished),
    cmocka_unit_test(lowering_maxsize_applies_to_next_put),
    cmocka_unit_test(raising_maxsize_wakes_blocked_putter),
    cmocka_unit_test(shutdown_empty_refuses_everything),
    cmocka_unit_test(shutdown_gets_drain_then_fail),
    cmocka_unit_test(shutdown_immediate_drains_and_releases_join),
    cmocka_unit_test(shutdown_immediate_wakes_joiner),
    cmocka_unit_test(shutdown_wakes_blocked_putters_and_getters),
    cmocka_unit_test(shutdown_three_getters_two_items_one_fails),
    cmocka_unit_test(shutdown_transitions_allowed),
    cmocka_unit_test(shutdown_does_not_release_join),
    cmocka_unit_test(bad_arguments_are_einval),
    cmocka_unit_test(fork_while_queue_busy_child_can_use_it),
    cmocka_unit_test(simple_queue_basic),
    cmocka_unit_test(simple_queue_spans_chunks_and_frees_rest),
    cmocka_unit_test(simple_queue_one_producer_keeps_order),
    cmocka_unit_test(simple_queue_many_threads_blocking),
    cmocka_unit_test(simple_queue_many_threads_nonblocking),
    cmocka_unit_test(simple_queue_many_threads_timeout),
    cmocka_unit_test(simple_queue_qsize_exact_across_blocks),
    cmocka_unit_test(simple_queue_many_producers_keep_their_order),
    cmocka_unit_test(simple_queue_fork_while_busy_child_counts_exactly),
    cmocka_unit_test(bounded_counts_exact_across_wraps),
    cmocka_unit_test(bounded_many_producers_keep_their_order),
    cmocka_unit_test(bounded_leaving_the_ring_under_load_keeps_everything),
    cmocka_unit_test(unbounded_ring_grows_under_load_keeping_order),
    cmocka_unit_test(unbounded_leaving_a_grown_ring_keeps_everything),
    cmocka_unit_test(unbounded_ring_grows_with_exact_counts),
    cmocka_unit_test(large_bounded_queue_is_full_at_exactly_maxsize),
    cmocka_unit_test(bounded_fork_while_busy_child_counts_exactly),
    cmocka_unit_test(unbounded_fork_while_busy_child_counts_exactly))
