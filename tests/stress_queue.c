/* Stress tests for the queue and executor hot paths: many threads, many
 * chunk transitions of SimpleQueue, many producers on the executor's
 * lock-free pending list, all with exact accounting. */
#include "harness.h"

#include <stdbool.h>
#include <string.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/queue.h"
#include "conc/time.h"

#define I(x) ((void *)(intptr_t)(x))
#define V(p) ((long)(intptr_t)(p))

enum { THREADS = 8, PER_THREAD = 50000 };

struct sq_ctx {
  conc_simple_queue_t q;
  long sums[THREADS];
  long counts[THREADS];
};

struct sq_arg {
  struct sq_ctx *c;
  int idx;
};

static void *sq_producer(void *arg) {
  struct sq_arg *a = arg;
  for (long i = 1; i <= PER_THREAD; i++)
    assert_int_equal(conc_simple_queue_put(&a->c->q, I(i)), 0);
  return NULL;
}

static void *sq_consumer(void *arg) {
  struct sq_arg *a = arg;
  long sum = 0, n = 0;
  for (;;) {
    void *p;
    int rc = a->idx % 2 ? conc_simple_queue_get(&a->c->q, &p, true, 0.001)
                        : conc_simple_queue_get(&a->c->q, &p, true, -1);
    if (rc == CONC_EEMPTY)
      continue;
    assert_int_equal(rc, 0);
    if (p == NULL)
      break;
    sum += V(p);
    n++;
  }
  a->c->sums[a->idx] = sum;
  a->c->counts[a->idx] = n;
  return NULL;
}

/* SQ2 at scale: 8 producers, 8 consumers (half with timed gets), 400k
 * items through ~400 chunk transitions; nothing lost or duplicated. */
static void simple_queue_many_producers_and_consumers(void **state) {
  (void)state;
  static struct sq_ctx c;
  memset(&c, 0, sizeof c);
  assert_int_equal(conc_simple_queue_init(&c.q, NULL), 0);
  struct sq_arg args[THREADS];
  pthread_t prod[THREADS], cons[THREADS];
  for (int i = 0; i < THREADS; i++) {
    args[i] = (struct sq_arg){&c, i};
    cons[i] = conc_test_spawn(sq_consumer, &args[i]);
  }
  for (int i = 0; i < THREADS; i++)
    prod[i] = conc_test_spawn(sq_producer, &args[i]);
  for (int i = 0; i < THREADS; i++)
    conc_test_join(prod[i]);
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(conc_simple_queue_put(&c.q, NULL), 0);
  long sum = 0, n = 0;
  for (int i = 0; i < THREADS; i++) {
    conc_test_join(cons[i]);
    sum += c.sums[i];
    n += c.counts[i];
  }
  assert_int_equal(n, (long)THREADS * PER_THREAD);
  assert_int_equal(sum, (long)THREADS * PER_THREAD * (PER_THREAD + 1) / 2);
  assert_true(conc_simple_queue_empty(&c.q));
  conc_simple_queue_destroy(&c.q);
}

struct bq_arg {
  conc_queue_t *q;
  long sum;
};

static void *bq_producer(void *arg) {
  struct bq_arg *a = arg;
  for (long i = 1; i <= PER_THREAD / 5; i++)
    assert_int_equal(conc_queue_put(a->q, I(i), true, -1), 0);
  return NULL;
}

static void *bq_consumer(void *arg) {
  struct bq_arg *a = arg;
  for (;;) {
    void *p;
    int rc = conc_queue_get(a->q, &p, true, -1);
    if (rc == CONC_ESHUTDOWN)
      return NULL;
    assert_int_equal(rc, 0);
    a->sum += V(p);
    assert_int_equal(conc_queue_task_done(a->q), 0);
  }
}

/* Q4/Q8/Q11 at scale: a small bounded queue under 8 producers and 8
 * consumers; join, then shutdown releases the consumers. */
static void bounded_queue_many_threads_then_shutdown(void **state) {
  (void)state;
  conc_queue_t q;
  assert_int_equal(conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 8}), 0);
  struct bq_arg prod[THREADS], cons[THREADS];
  pthread_t tp[THREADS], tc[THREADS];
  for (int i = 0; i < THREADS; i++) {
    cons[i] = (struct bq_arg){&q, 0};
    prod[i] = (struct bq_arg){&q, 0};
    tc[i] = conc_test_spawn(bq_consumer, &cons[i]);
    tp[i] = conc_test_spawn(bq_producer, &prod[i]);
  }
  for (int i = 0; i < THREADS; i++)
    conc_test_join(tp[i]);
  assert_int_equal(conc_queue_join(&q, 60), 0);
  assert_int_equal(conc_queue_shutdown(&q, false), 0);
  long sum = 0, per = PER_THREAD / 5;
  for (int i = 0; i < THREADS; i++) {
    conc_test_join(tc[i]);
    sum += cons[i].sum;
  }
  assert_int_equal(sum, (long)THREADS * per * (per + 1) / 2);
  conc_queue_destroy(&q);
}

static int twice(void *arg, void **result) {
  *result = I(V(arg) * 2);
  return 0;
}

struct ex_arg {
  conc_executor_t *ex;
  long sum;
};

static void *ex_submitter(void *arg) {
  struct ex_arg *a = arg;
  conc_future_t *fs[128];
  for (long base = 0; base < PER_THREAD / 5; base += 128) {
    for (int i = 0; i < 128; i++)
      assert_int_equal(conc_executor_submit(a->ex, twice, I(base + i), &fs[i]),
                       0);
    for (int i = 0; i < 128; i++) {
      void *v;
      assert_int_equal(conc_future_result(fs[i], 60, &v), 0);
      a->sum += V(v);
      conc_future_release(fs[i]);
    }
  }
  return NULL;
}

/* X1 at scale: 8 threads submit to one pool of 3 workers at once. */
static void executor_many_submitters(void **state) {
  (void)state;
  conc_executor_t ex;
  assert_int_equal(
      conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 3}), 0);
  struct ex_arg a[THREADS];
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    a[i] = (struct ex_arg){&ex, 0};
    t[i] = conc_test_spawn(ex_submitter, &a[i]);
  }
  long n = (PER_THREAD / 5 + 127) / 128 * 128;
  for (int i = 0; i < THREADS; i++) {
    conc_test_join(t[i]);
    assert_int_equal(a[i].sum, n * (n - 1));
  }
  conc_executor_destroy(&ex);
}

CONC_TEST_MAIN(cmocka_unit_test(simple_queue_many_producers_and_consumers),
               cmocka_unit_test(bounded_queue_many_threads_then_shutdown),
               cmocka_unit_test(executor_many_submitters))
