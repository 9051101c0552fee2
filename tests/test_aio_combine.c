/*
 * Tests of the loop's combinators and thread bridges: gather (F7), wait
 * (F8), wait_for and timeout scopes (F9), shield (F10), as_completed (F12),
 * TaskGroup, and run_in_executor / to_thread / wrap_future /
 * run_coroutine_threadsafe (F13). Each test runs its body as the main task
 * of conc_aio_run; a body asserts only between awaits.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/loop.h"
#include "conc/time.h"

#include "harness.h"
#include "loop-int.h"

static int whoami(void *arg, void **result);

/* Checks inside a task: a failed one records the first failure and ends
 * the task (an assertion would jump out of the task's coroutine and leave
 * the loop running); run_main reports it. */
static int fail_line;
static char fail_msg[256];

#define T_FAIL(...)                                                            \
  do {                                                                         \
    if (!fail_line) {                                                          \
      fail_line = __LINE__;                                                    \
      snprintf(fail_msg, sizeof fail_msg, __VA_ARGS__);                        \
    }                                                                          \
    return CONC_EFAILED;                                                       \
  } while (0)
#define T_INT(a, b)                                                            \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ != b_)                                                              \
      T_FAIL("%s is %lld, not %lld", #a, a_, b_);                              \
  } while (0)
#define T_TRUE(c)                                                              \
  do {                                                                         \
    if (!(c))                                                                  \
      T_FAIL("%s is false", #c);                                               \
  } while (0)
#define T_FALSE(c) T_TRUE(!(c))
#define T_PTR(a, b) T_TRUE((const void *)(a) == (const void *)(b))
#define T_PTR_NE(a, b) T_TRUE((const void *)(a) != (const void *)(b))
#define T_NULL(a) T_TRUE((a) == NULL)
#define T_STR(a, b) T_TRUE(strcmp((a), (b)) == 0)
#define T_ELAPSED(e, t)                                                        \
  do {                                                                         \
    double e_ = (e), t_ = (t);                                                 \
    if (e_ < t_ - 1e-4 || e_ > t_ + conc_test_slack(t_))                       \
      T_FAIL("elapsed %.4f s outside [%.3f, %.3f]", e_, t_,                    \
             t_ + conc_test_slack(t_));                                        \
  } while (0)
#define T_QUICK(e) T_ELAPSED((e) + 0.0, 0.0)

/* ---- helpers ------------------------------------------------------------ */

/* A child task: sleeps, then returns value or code. Cancelled while
 * sleeping it records it, sleeps `cleanup` more, and either ends cancelled
 * or (swallow) returns value, or (cancel_code) returns that code. */
typedef struct job {
  double delay, cleanup;
  intptr_t value;
  int code, cancel_code;
  bool swallow;
  bool done, saw_cancel;
  double ended_at;
} job_t;

static int job_fn(void *arg, void **res) {
  job_t *j = arg;
  int rc = conc_aio_sleep(j->delay);
  j->ended_at = conc_monotonic();
  if (rc == CONC_ECANCELED) {
    j->saw_cancel = true;
    if (j->cleanup > 0)
      conc_aio_sleep(j->cleanup);
    j->ended_at = conc_monotonic();
    if (j->swallow) {
      *res = (void *)j->value;
      return 0;
    }
    return j->cancel_code ? j->cancel_code : rc;
  }
  j->done = true;
  if (j->code)
    return j->code;
  *res = (void *)j->value;
  return 0;
}

static conc_aio_future_t *spawn(job_t *j) {
  conc_aio_future_t *t = NULL;
  assert_int_equal(conc_aio_create_task(NULL, job_fn, j, NULL, &t), 0);
  return t;
}

static void run_main(conc_aio_fn_t body, void *arg) {
  void *r = NULL;
  fail_line = 0;
  int rc = conc_aio_run(body, arg, NULL, &r);
  if (fail_line) {
    print_error("line %d: %s\n", fail_line, fail_msg);
    fail();
  }
  assert_int_equal(rc, 0);
}

static void release_all(conc_aio_future_t **f, size_t n) {
  for (size_t i = 0; i < n; i++)
    conc_aio_future_release(f[i]);
}

/* ---- gather (F7) ------------------------------------------------------- */

static int gather_order_body(void *arg, void **res) {
  job_t j[3] = {{.delay = 0.03, .value = 1},
                {.delay = 0.01, .value = 2},
                {.delay = 0.02, .value = 3}};
  conc_aio_future_t *t[3] = {spawn(&j[0]), spawn(&j[1]), spawn(&j[2])}, *g;
  void *results[3];
  int codes[3];
  conc_aio_gather_opts_t o = {.results = results, .codes = codes};
  T_INT(conc_aio_gather(t, 3, &o, &g), 0);
  void *v = NULL;
  T_INT(conc_aio_await(g, &v), 0);
  T_PTR(v, results);
  for (int i = 0; i < 3; i++) {
    T_INT((intptr_t)results[i], i + 1);
    T_INT(codes[i], 0);
  }
  conc_aio_future_release(g);
  release_all(t, 3);
  return 0;
}

static void test_gather_keeps_input_order(void **state) {
  run_main(gather_order_body, NULL);
}

static int gather_first_error_body(void *arg, void **res) {
  job_t j[2] = {{.delay = 0.02, .code = CONC_EPIPE},
                {.delay = 0.2, .value = 7}};
  conc_aio_future_t *t[2] = {spawn(&j[0]), spawn(&j[1])}, *g;
  int codes[2];
  T_INT(conc_aio_gather(t, 2, &(conc_aio_gather_opts_t){.codes = codes}, &g),
        0);
  double t0 = conc_monotonic();
  T_INT(conc_aio_await(g, NULL), CONC_EPIPE);
  T_ELAPSED(conc_monotonic() - t0, 0.02);
  T_INT(codes[0], CONC_EPIPE);
  T_INT(codes[1], CONC_EINVALSTATE);   /* not done yet */
  T_FALSE(conc_aio_future_done(t[1])); /* the other keeps running */
  void *v = NULL;
  T_INT(conc_aio_await(t[1], &v), 0);
  T_INT((intptr_t)v, 7);
  T_INT(codes[1], CONC_EINVALSTATE); /* gather was over */
  conc_aio_future_release(g);
  release_all(t, 2);
  return 0;
}

static void
test_gather_first_error_completes_it_at_once_others_keep_running(void **state) {
  run_main(gather_first_error_body, NULL);
}

static int gather_return_exceptions_body(void *arg, void **res) {
  job_t j[3] = {{.delay = 0.01, .value = 1},
                {.delay = 0.01, .code = CONC_EIO},
                {.delay = 1}};
  conc_aio_future_t *t[3] = {spawn(&j[0]), spawn(&j[1]), spawn(&j[2])}, *g;
  void *results[3];
  int codes[3];
  conc_aio_gather_opts_t o = {
      .return_exceptions = true, .results = results, .codes = codes};
  T_INT(conc_aio_gather(t, 3, &o, &g), 0);
  T_INT(conc_aio_sleep(0.02), 0);
  T_TRUE(conc_aio_cancel(t[2], NULL)); /* a cancelled child is a slot */
  T_INT(conc_aio_await(g, NULL), 0);
  T_INT((intptr_t)results[0], 1);
  T_INT(codes[0], 0);
  T_NULL(results[1]);
  T_INT(codes[1], CONC_EIO);
  T_INT(codes[2], CONC_ECANCELED);
  conc_aio_future_release(g);
  release_all(t, 3);
  return 0;
}

static void test_gather_return_exceptions_fills_every_slot(void **state) {
  run_main(gather_return_exceptions_body, NULL);
}

static int gather_cancelled_child_body(void *arg, void **res) {
  job_t j[2] = {{.delay = 1}, {.delay = 0.2, .value = 2}};
  conc_aio_future_t *t[2] = {spawn(&j[0]), spawn(&j[1])}, *g;
  T_INT(conc_aio_gather(t, 2, NULL, &g), 0);
  T_INT(conc_aio_sleep(0.01), 0);
  conc_aio_cancel(t[0], "stop");
  T_INT(conc_aio_await(g, NULL), CONC_ECANCELED);
  T_FALSE(conc_aio_future_done(t[1]));
  T_INT(conc_aio_await(t[1], NULL), 0); /* was not cancelled */
  T_TRUE(j[1].done);
  conc_aio_future_release(g);
  release_all(t, 2);
  return 0;
}

static void test_gather_cancelled_child_is_an_error_without_return_exceptions(
    void **state) {
  run_main(gather_cancelled_child_body, NULL);
}

static int gather_cancel_body(void *arg, void **res) {
  job_t j[2] = {{.delay = 1}, {.delay = 1}};
  conc_aio_future_t *t[2] = {spawn(&j[0]), spawn(&j[1])}, *g;
  T_INT(conc_aio_gather(t, 2, NULL, &g), 0);
  T_INT(conc_aio_sleep(0.01), 0);
  double t0 = conc_monotonic();
  T_TRUE(conc_aio_cancel(g, "bye"));
  T_INT(conc_aio_await(g, NULL), CONC_ECANCELED);
  for (int i = 0; i < 2; i++) {
    T_INT(conc_aio_await(t[i], NULL), CONC_ECANCELED);
    T_TRUE(j[i].saw_cancel);
    T_STR(conc_aio_cancel_message(t[i]), "bye");
  }
  T_QUICK(conc_monotonic() - t0);
  conc_aio_future_release(g);
  release_all(t, 2);
  return 0;
}

static void test_gather_cancel_cancels_every_child(void **state) {
  run_main(gather_cancel_body, NULL);
}

typedef struct awaiter {
  conc_aio_future_t *f;
  int rc;
} awaiter_t;

static int await_fn(void *arg, void **res) {
  awaiter_t *a = arg;
  a->rc = conc_aio_await(a->f, NULL);
  return a->rc;
}

static int gather_awaiter_cancel_body(void *arg, void **res) {
  job_t j[2] = {{.delay = 1}, {.delay = 1}};
  conc_aio_future_t *t[2] = {spawn(&j[0]), spawn(&j[1])}, *w;
  awaiter_t a = {0};
  T_INT(conc_aio_gather(t, 2, NULL, &a.f), 0);
  T_INT(conc_aio_create_task(NULL, await_fn, &a, NULL, &w), 0);
  T_INT(conc_aio_sleep(0.01), 0);
  conc_aio_cancel(w, NULL);
  T_INT(conc_aio_await(w, NULL), CONC_ECANCELED);
  T_INT(a.rc, CONC_ECANCELED);
  for (int i = 0; i < 2; i++)
    T_INT(conc_aio_await(t[i], NULL), CONC_ECANCELED);
  conc_aio_future_release(w);
  conc_aio_future_release(a.f);
  release_all(t, 2);
  return 0;
}

static void
test_gather_cancel_of_the_awaiting_task_cancels_children(void **state) {
  run_main(gather_awaiter_cancel_body, NULL);
}

static int gather_empty_body(void *arg, void **res) {
  conc_aio_future_t *g;
  T_INT(conc_aio_gather(NULL, 0, NULL, &g), 0);
  T_TRUE(conc_aio_future_done(g));
  void *v = (void *)1;
  T_INT(conc_aio_await(g, &v), 0);
  T_NULL(v);
  conc_aio_future_release(g);
  return 0;
}

static void test_gather_of_nothing_is_done_with_null(void **state) {
  run_main(gather_empty_body, NULL);
}

static int gather_duplicate_body(void *arg, void **res) {
  job_t j = {.delay = 0.01, .value = 9};
  conc_aio_future_t *t = spawn(&j), *g;
  conc_aio_future_t *twice[2] = {t, t};
  void *results[2];
  T_INT(conc_aio_gather(twice, 2, &(conc_aio_gather_opts_t){.results = results},
                        &g),
        0);
  T_INT(conc_aio_await(g, NULL), 0);
  T_INT((intptr_t)results[0], 9);
  T_INT((intptr_t)results[1], 9);
  conc_aio_future_release(g);
  conc_aio_future_release(t);
  return 0;
}

static void test_gather_same_future_twice_fills_both_slots(void **state) {
  run_main(gather_duplicate_body, NULL);
}

static int value_fn(void *arg, void **res) {
  int rc = conc_aio_sleep(0);
  *res = arg;
  return rc;
}

enum { MANY = 2000 };

static int gather_many_body(void *arg, void **res) {
  static conc_aio_future_t *t[MANY];
  static void *results[MANY];
  for (intptr_t i = 0; i < MANY; i++)
    T_INT(conc_aio_create_task(NULL, value_fn, (void *)i, NULL, &t[i]), 0);
  conc_aio_future_t *g;
  T_INT(conc_aio_gather(t, MANY, &(conc_aio_gather_opts_t){.results = results},
                        &g),
        0);
  T_INT(conc_aio_await(g, NULL), 0);
  for (intptr_t i = 0; i < MANY; i++)
    T_INT((intptr_t)results[i], i);
  conc_aio_future_release(g);
  release_all(t, MANY);
  return 0;
}

static void test_gather_of_many_tasks_keeps_input_order(void **state) {
  run_main(gather_many_body, NULL);
}

static int gather_misuse_body(void *arg, void **res) {
  conc_aio_future_t *f, *g = NULL, *other, *pair[2];
  T_INT(conc_aio_future_create(NULL, &f), 0);
  pair[0] = f;
  pair[1] = NULL;
  T_INT(conc_aio_gather(&f, 1, NULL, NULL), CONC_EINVAL);
  T_INT(conc_aio_gather(NULL, 1, NULL, &g), CONC_EINVAL);
  T_INT(conc_aio_gather(pair, 2, NULL, &g), CONC_EINVAL);
  conc_loop_t *loop2;
  T_INT(conc_loop_create(NULL, &loop2), 0);
  T_INT(conc_aio_future_create(loop2, &other), 0);
  pair[1] = other;
  T_INT(conc_aio_gather(pair, 2, NULL, &g), CONC_EINVAL);
  T_NULL(g);
  conc_aio_future_release(other);
  T_INT(conc_loop_destroy(loop2), 0);
  conc_aio_future_release(f);
  return 0;
}

static void test_gather_misuse_is_einval(void **state) {
  run_main(gather_misuse_body, NULL);
}

/* ---- wait (F8) --------------------------------------------------------- */

static int wait_first_completed_body(void *arg, void **res) {
  job_t j[3] = {{.delay = 0.3}, {.delay = 0.02}, {.delay = 0.3}};
  conc_aio_future_t *t[3] = {spawn(&j[0]), spawn(&j[1]), spawn(&j[2])};
  conc_aio_future_t *done[3], *pending[3];
  size_t nd = 99, np = 99;
  double t0 = conc_monotonic();
  T_INT(conc_aio_wait(t, 3, CONC_FOREVER, CONC_FIRST_COMPLETED, done, &nd,
                      pending, &np),
        0);
  T_ELAPSED(conc_monotonic() - t0, 0.02);
  T_INT(nd, 1);
  T_PTR(done[0], t[1]);
  T_INT(np, 2);
  T_PTR(pending[0], t[0]);
  T_PTR(pending[1], t[2]);
  for (int i = 0; i < 3; i++) /* nothing was cancelled */
    T_INT(conc_aio_await(t[i], NULL), 0);
  release_all(t, 3);
  return 0;
}

static void test_wait_first_completed_returns_after_the_first(void **state) {
  run_main(wait_first_completed_body, NULL);
}

static int wait_first_exception_body(void *arg, void **res) {
  job_t j[3] = {
      {.delay = 0.01}, {.delay = 0.06, .code = CONC_EIO}, {.delay = 0.5}};
  conc_aio_future_t *t[3] = {spawn(&j[0]), spawn(&j[1]), spawn(&j[2])};
  conc_aio_future_t *done[3];
  size_t nd = 0, np = 0;
  double t0 = conc_monotonic();
  T_INT(conc_aio_wait(t, 3, CONC_FOREVER, CONC_FIRST_EXCEPTION, done, &nd, NULL,
                      &np),
        0);
  T_ELAPSED(conc_monotonic() - t0, 0.06);
  T_INT(nd, 2);
  T_INT(np, 1);
  T_FALSE(conc_aio_future_done(t[2]));
  conc_aio_cancel(t[2], NULL);
  T_INT(conc_aio_await(t[2], NULL), CONC_ECANCELED);
  release_all(t, 3);
  return 0;
}

static void test_wait_first_exception_returns_at_the_first_error(void **state) {
  run_main(wait_first_exception_body, NULL);
}

static int wait_cancel_not_exception_body(void *arg, void **res) {
  job_t j[2] = {{.delay = 1}, {.delay = 0.1}};
  conc_aio_future_t *t[2] = {spawn(&j[0]), spawn(&j[1])};
  size_t nd = 0, np = 9;
  T_INT(conc_aio_sleep(0.01), 0);
  conc_aio_cancel(t[0], NULL); /* a cancel is not an exception */
  double t0 = conc_monotonic();
  T_INT(conc_aio_wait(t, 2, CONC_FOREVER, CONC_FIRST_EXCEPTION, NULL, &nd, NULL,
                      &np),
        0);
  T_ELAPSED(conc_monotonic() - t0, 0.05); /* waited for the other */
  T_INT(nd, 2);
  T_INT(np, 0);
  release_all(t, 2);
  return 0;
}

static void test_wait_first_exception_does_not_count_a_cancel(void **state) {
  run_main(wait_cancel_not_exception_body, NULL);
}

static int wait_all_body(void *arg, void **res) {
  job_t j[3] = {
      {.delay = 0.01}, {.delay = 0.04, .code = CONC_EIO}, {.delay = 0.02}};
  conc_aio_future_t *t[3] = {spawn(&j[0]), spawn(&j[1]), spawn(&j[2])};
  conc_aio_future_t *done[3];
  size_t nd = 0, np = 9;
  double t0 = conc_monotonic();
  T_INT(conc_aio_wait(t, 3, CONC_FOREVER, CONC_ALL_COMPLETED, done, &nd, NULL,
                      &np),
        0);
  T_ELAPSED(conc_monotonic() - t0, 0.04);
  T_INT(nd, 3);
  T_INT(np, 0);
  for (int i = 0; i < 3; i++)
    T_PTR(done[i], t[i]); /* input order */
  T_INT(conc_aio_future_exception(t[1]), CONC_EIO);
  release_all(t, 3);
  return 0;
}

static void test_wait_all_completed_waits_for_every_future(void **state) {
  run_main(wait_all_body, NULL);
}

static int wait_timeout_body(void *arg, void **res) {
  job_t j[2] = {{.delay = 0.01}, {.delay = 0.5}};
  conc_aio_future_t *t[2] = {spawn(&j[0]), spawn(&j[1])};
  conc_aio_future_t *done[2], *pending[2];
  size_t nd = 0, np = 0;
  double t0 = conc_monotonic();
  T_INT(conc_aio_wait(t, 2, 0.1, CONC_ALL_COMPLETED, done, &nd, pending, &np),
        0);
  T_ELAPSED(conc_monotonic() - t0, 0.1);
  T_INT(nd, 1);
  T_PTR(done[0], t[0]);
  T_INT(np, 1);
  T_PTR(pending[0], t[1]);
  T_FALSE(conc_aio_future_cancelled(t[1])); /* cancels nothing */
  conc_aio_cancel(t[1], NULL);
  T_INT(conc_aio_await(t[1], NULL), CONC_ECANCELED);
  release_all(t, 2);
  return 0;
}

static void
test_wait_timeout_returns_the_split_and_cancels_nothing(void **state) {
  run_main(wait_timeout_body, NULL);
}

static int wait_duplicates_body(void *arg, void **res) {
  job_t j = {.delay = 0.01};
  conc_aio_future_t *t = spawn(&j);
  conc_aio_future_t *three[3] = {t, t, t}, *done[3];
  size_t nd = 0, np = 9;
  T_INT(conc_aio_wait(three, 3, CONC_FOREVER, CONC_ALL_COMPLETED, done, &nd,
                      NULL, &np),
        0);
  T_INT(nd, 1);
  T_INT(np, 0);
  conc_aio_future_release(t);
  return 0;
}

static void test_wait_counts_a_repeated_future_once(void **state) {
  run_main(wait_duplicates_body, NULL);
}

typedef struct waitctx {
  conc_aio_future_t *f;
  int rc;
  size_t nd;
} waitctx_t;

static int wait_in_task(void *arg, void **res) {
  waitctx_t *w = arg;
  w->nd = 77;
  w->rc = conc_aio_wait(&w->f, 1, CONC_FOREVER, CONC_ALL_COMPLETED, NULL,
                        &w->nd, NULL, NULL);
  return 0;
}

static int wait_cancelled_body(void *arg, void **res) {
  job_t j = {.delay = 0.05};
  waitctx_t w = {.f = spawn(&j)};
  conc_aio_future_t *waiter;
  T_INT(conc_aio_create_task(NULL, wait_in_task, &w, NULL, &waiter), 0);
  T_INT(conc_aio_sleep(0.01), 0);
  conc_aio_cancel(waiter, NULL);
  T_INT(conc_aio_await(waiter, NULL), 0);
  T_INT(w.rc, CONC_ECANCELED);
  T_INT(w.nd, 77); /* outputs untouched */
  T_INT(conc_aio_await(w.f, NULL), 0);
  T_TRUE(j.done);
  conc_aio_future_release(waiter);
  conc_aio_future_release(w.f);
  return 0;
}

static void
test_wait_cancelled_returns_ecanceled_and_leaves_the_futures(void **state) {
  run_main(wait_cancelled_body, NULL);
}

static int wait_misuse_body(void *arg, void **res) {
  conc_aio_future_t *f;
  T_INT(conc_aio_future_create(NULL, &f), 0);
  T_INT(conc_aio_wait(NULL, 1, 1, CONC_ALL_COMPLETED, NULL, NULL, NULL, NULL),
        CONC_EINVAL);
  T_INT(conc_aio_wait(&f, 0, 1, CONC_ALL_COMPLETED, NULL, NULL, NULL, NULL),
        CONC_EINVAL);
  T_INT(conc_aio_wait(&f, 1, 1, (conc_return_when_t)7, NULL, NULL, NULL, NULL),
        CONC_EINVAL);
  T_INT(conc_aio_wait(&f, 1, NAN, CONC_ALL_COMPLETED, NULL, NULL, NULL, NULL),
        CONC_EINVAL);
  conc_aio_future_t *nul = NULL;
  T_INT(conc_aio_wait(&nul, 1, 1, CONC_ALL_COMPLETED, NULL, NULL, NULL, NULL),
        CONC_EINVAL);
  conc_aio_future_release(f);
  return 0;
}

static void test_wait_misuse_is_einval(void **state) {
  run_main(wait_misuse_body, NULL);
}

/* Calls that need a task, made from plain thread code with a loop. */
static void test_combinators_outside_a_task_are_estate(void **state) {
  conc_loop_t *loop;
  assert_int_equal(conc_loop_create(NULL, &loop), 0);
  conc_aio_future_t *f;
  assert_int_equal(conc_aio_future_create(loop, &f), 0);
  assert_int_equal(
      conc_aio_wait(&f, 1, 1, CONC_ALL_COMPLETED, NULL, NULL, NULL, NULL),
      CONC_ESTATE);
  assert_int_equal(conc_aio_wait_for(f, 1, NULL), CONC_ESTATE);
  conc_aio_timeout_t to;
  assert_int_equal(conc_aio_timeout_enter(&to, 1), CONC_ESTATE);
  conc_aio_taskgroup_t *g;
  assert_int_equal(conc_aio_taskgroup_enter(&g), CONC_ESTATE);
  assert_int_equal(conc_aio_to_thread(NULL, NULL, NULL), CONC_EINVAL);
  void *v = (void *)1;
  pthread_t th;
  assert_int_equal(conc_aio_to_thread(whoami, &th, &v), CONC_ESTATE);
  assert_ptr_equal(v, (void *)1);
  conc_aio_as_completed_t *it;
  assert_int_equal(conc_aio_as_completed(&f, 1, CONC_FOREVER, &it), 0);
  conc_aio_future_t *out;
  assert_int_equal(conc_aio_as_completed_next(it, &out), CONC_ESTATE);
  conc_aio_as_completed_destroy(it);
  conc_aio_future_release(f);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

/* ---- wait_for (F9) ------------------------------------------------------ */

static int wait_for_result_body(void *arg, void **res) {
  job_t j = {.delay = 0.01, .value = 5};
  conc_aio_future_t *t = spawn(&j);
  void *v = NULL;
  T_INT(conc_aio_wait_for(t, 1, &v), 0);
  T_INT((intptr_t)v, 5);
  T_INT(conc_aio_task_cancelling(conc_aio_current_task()), 0);
  conc_aio_future_release(t);
  return 0;
}

static void test_wait_for_returns_the_result_before_the_timeout(void **state) {
  run_main(wait_for_result_body, NULL);
}

static int wait_for_error_body(void *arg, void **res) {
  job_t j = {.delay = 0.01, .code = CONC_EPIPE};
  conc_aio_future_t *t = spawn(&j);
  void *v = (void *)3;
  T_INT(conc_aio_wait_for(t, 1, &v), CONC_EPIPE);
  T_PTR(v, (void *)3);
  conc_aio_future_release(t);
  return 0;
}

static void test_wait_for_returns_the_inner_error(void **state) {
  run_main(wait_for_error_body, NULL);
}

static int wait_for_timeout_body(void *arg, void **res) {
  job_t j = {.delay = 1, .cleanup = 0.03};
  conc_aio_future_t *t = spawn(&j);
  double t0 = conc_monotonic();
  T_INT(conc_aio_wait_for(t, 0.02, NULL), CONC_ETIMEDOUT);
  T_ELAPSED(conc_monotonic() - t0, 0.05);
  T_TRUE(j.saw_cancel);
  T_TRUE(conc_aio_future_done(t)); /* waited for its end */
  T_TRUE(conc_aio_future_cancelled(t));
  T_INT(conc_aio_task_cancelling(conc_aio_current_task()), 0);
  T_INT(conc_aio_sleep(0.001), 0); /* not left cancelled */
  conc_aio_future_release(t);
  return 0;
}

static void test_wait_for_timeout_cancels_the_inner_task_and_waits_for_its_end(
    void **state) {
  run_main(wait_for_timeout_body, NULL);
}

static int wait_for_swallow_body(void *arg, void **res) {
  job_t j = {.delay = 1, .swallow = true, .value = 11};
  conc_aio_future_t *t = spawn(&j);
  void *v = NULL;
  T_INT(conc_aio_wait_for(t, 0.02, &v), 0);
  T_INT((intptr_t)v, 11);
  T_TRUE(j.saw_cancel);
  conc_aio_future_release(t);
  return 0;
}

static void test_wait_for_inner_result_after_the_timeout_wins(void **state) {
  run_main(wait_for_swallow_body, NULL);
}

static int wait_for_inner_error_on_cancel_body(void *arg, void **res) {
  job_t j = {.delay = 1, .cancel_code = CONC_EIO};
  conc_aio_future_t *t = spawn(&j);
  T_INT(conc_aio_wait_for(t, 0.02, NULL), CONC_EIO);
  conc_aio_future_release(t);
  return 0;
}

static void
test_wait_for_inner_error_during_its_cancel_is_returned(void **state) {
  run_main(wait_for_inner_error_on_cancel_body, NULL);
}

static int wait_for_zero_body(void *arg, void **res) {
  conc_aio_future_t *f;
  T_INT(conc_aio_future_create(NULL, &f), 0);
  conc_aio_future_set_result(f, (void *)4);
  void *v = NULL;
  T_INT(conc_aio_wait_for(f, 0, &v), 0); /* done: its result */
  T_INT((intptr_t)v, 4);
  job_t j = {.delay = 1};
  conc_aio_future_t *t = spawn(&j);
  T_INT(conc_aio_sleep(0), 0); /* t is sleeping */
  double t0 = conc_monotonic();
  T_INT(conc_aio_wait_for(t, 0, NULL), CONC_ETIMEDOUT);
  T_QUICK(conc_monotonic() - t0);
  T_TRUE(conc_aio_future_cancelled(t));
  T_TRUE(j.saw_cancel);
  conc_aio_future_release(t);
  conc_aio_future_release(f);
  return 0;
}

static void
test_wait_for_zero_timeout_returns_a_done_result_or_times_out(void **state) {
  run_main(wait_for_zero_body, NULL);
}

static int wait_for_forever_body(void *arg, void **res) {
  job_t j = {.delay = 0.05, .value = 8};
  conc_aio_future_t *t = spawn(&j);
  void *v = NULL;
  double t0 = conc_monotonic();
  T_INT(conc_aio_wait_for(t, CONC_FOREVER, &v), 0);
  T_ELAPSED(conc_monotonic() - t0, 0.05);
  T_INT((intptr_t)v, 8);
  conc_aio_future_release(t);
  return 0;
}

static void test_wait_for_forever_waits_without_limit(void **state) {
  run_main(wait_for_forever_body, NULL);
}

typedef struct wfctx {
  conc_aio_future_t *inner;
  int rc;
} wfctx_t;

static int wait_for_in_task(void *arg, void **res) {
  wfctx_t *c = arg;
  c->rc = conc_aio_wait_for(c->inner, 1, NULL);
  return c->rc;
}

static int wait_for_outer_cancel_body(void *arg, void **res) {
  job_t j = {.delay = 1};
  wfctx_t c = {.inner = spawn(&j)};
  conc_aio_future_t *w;
  T_INT(conc_aio_create_task(NULL, wait_for_in_task, &c, NULL, &w), 0);
  T_INT(conc_aio_sleep(0.01), 0);
  conc_aio_cancel(w, NULL);
  T_INT(conc_aio_await(w, NULL), CONC_ECANCELED);
  T_INT(c.rc, CONC_ECANCELED); /* not a timeout */
  T_TRUE(conc_aio_future_cancelled(c.inner));
  conc_aio_future_release(w);
  conc_aio_future_release(c.inner);
  return 0;
}

static void test_wait_for_cancelled_from_outside_is_ecanceled(void **state) {
  run_main(wait_for_outer_cancel_body, NULL);
}

static int wait_for_plain_future_body(void *arg, void **res) {
  conc_aio_future_t *f;
  T_INT(conc_aio_future_create(NULL, &f), 0);
  double t0 = conc_monotonic();
  T_INT(conc_aio_wait_for(f, 0.02, NULL), CONC_ETIMEDOUT);
  T_ELAPSED(conc_monotonic() - t0, 0.02);
  T_TRUE(conc_aio_future_cancelled(f));
  conc_aio_future_release(f);
  return 0;
}

static void test_wait_for_timeout_cancels_a_plain_future(void **state) {
  run_main(wait_for_plain_future_body, NULL);
}

static int wait_for_misuse_body(void *arg, void **res) {
  conc_aio_future_t *f;
  T_INT(conc_aio_future_create(NULL, &f), 0);
  T_INT(conc_aio_wait_for(NULL, 1, NULL), CONC_EINVAL);
  T_INT(conc_aio_wait_for(f, NAN, NULL), CONC_EINVAL);
  T_FALSE(conc_aio_future_done(f));
  conc_aio_future_release(f);
  return 0;
}

static void test_wait_for_misuse_is_einval(void **state) {
  run_main(wait_for_misuse_body, NULL);
}

/* ---- timeout scopes (F9) ---------------------------------------------- */

static int timeout_expiry_body(void *arg, void **res) {
  conc_aio_timeout_t to;
  double t0 = conc_monotonic();
  T_INT(conc_aio_timeout_enter(&to, 0.03), 0);
  T_TRUE(fabs(conc_aio_timeout_when(&to) -
              (conc_loop_time(conc_loop_running()) + 0.03)) < 0.01);
  int rc = conc_aio_sleep(1);
  T_INT(rc, CONC_ECANCELED);
  T_TRUE(conc_aio_timeout_expired(&to));
  T_INT(conc_aio_timeout_exit(&to, rc), CONC_ETIMEDOUT);
  T_ELAPSED(conc_monotonic() - t0, 0.03);
  T_INT(conc_aio_task_cancelling(conc_aio_current_task()), 0);
  T_INT(conc_aio_sleep(0.001), 0);
  return 0;
}

static void
test_timeout_scope_expiry_turns_the_cancel_into_etimedout(void **state) {
  run_main(timeout_expiry_body, NULL);
}

static int timeout_pass_body(void *arg, void **res) {
  conc_aio_timeout_t to;
  T_INT(conc_aio_timeout_enter(&to, 1), 0);
  T_INT(conc_aio_sleep(0.01), 0);
  T_FALSE(conc_aio_timeout_expired(&to));
  T_INT(conc_aio_timeout_exit(&to, CONC_EPIPE), CONC_EPIPE);
  T_INT(conc_aio_timeout_enter(&to, 1), 0);
  T_INT(conc_aio_timeout_exit(&to, 0), 0);
  return 0;
}

static void test_timeout_scope_not_expired_returns_rc_unchanged(void **state) {
  run_main(timeout_pass_body, NULL);
}

static int timeout_reschedule_body(void *arg, void **res) {
  conc_loop_t *loop = conc_loop_running();
  conc_aio_timeout_t to;
  T_INT(conc_aio_timeout_enter(&to, CONC_FOREVER), 0);
  T_TRUE(conc_aio_timeout_when(&to) == CONC_FOREVER);
  T_INT(conc_aio_sleep(0.01), 0);
  double t0 = conc_monotonic();
  T_INT(conc_aio_timeout_reschedule(&to, conc_loop_time(loop) + 0.03), 0);
  int rc = conc_aio_sleep(1);
  T_INT(conc_aio_timeout_exit(&to, rc), CONC_ETIMEDOUT);
  T_ELAPSED(conc_monotonic() - t0, 0.03);
  T_INT(conc_aio_timeout_reschedule(&to, CONC_FOREVER), CONC_ESTATE);
  /* moved later, then removed */
  T_INT(conc_aio_timeout_enter(&to, 0.01), 0);
  T_INT(conc_aio_timeout_reschedule(&to, conc_loop_time(loop) + 10), 0);
  T_INT(conc_aio_sleep(0.03), 0);
  T_INT(conc_aio_timeout_reschedule(&to, CONC_FOREVER), 0);
  T_TRUE(conc_aio_timeout_when(&to) == CONC_FOREVER);
  T_INT(conc_aio_sleep(0.01), 0);
  T_INT(conc_aio_timeout_exit(&to, 0), 0);
  T_INT(conc_aio_timeout_reschedule(&to, 1), CONC_ESTATE);
  T_INT(conc_aio_timeout_reschedule(&to, NAN), CONC_EINVAL);
  return 0;
}

static void test_timeout_scope_can_be_rescheduled(void **state) {
  run_main(timeout_reschedule_body, NULL);
}

static int timeout_past_body(void *arg, void **res) {
  conc_aio_timeout_t to;
  T_INT(conc_aio_timeout_enter(&to, 0), 0);
  int rc = conc_aio_sleep(1);
  T_INT(rc, CONC_ECANCELED);
  T_INT(conc_aio_timeout_exit(&to, rc), CONC_ETIMEDOUT);
  /* expiring (not yet exited) refuses a reschedule */
  T_INT(conc_aio_timeout_enter(&to, 0.01), 0);
  rc = conc_aio_sleep(1);
  T_INT(conc_aio_timeout_reschedule(&to, CONC_FOREVER), CONC_ESTATE);
  T_INT(conc_aio_timeout_exit(&to, rc), CONC_ETIMEDOUT);
  T_INT(conc_aio_timeout_exit(&to, rc), CONC_ESTATE);
  return 0;
}

static void test_timeout_scope_with_a_past_deadline_expires_at_the_next_await(
    void **state) {
  run_main(timeout_past_body, NULL);
}

static int timeout_nested_body(void *arg, void **res) {
  conc_aio_timeout_t outer, inner;
  /* the inner one expires: only it reports the timeout */
  T_INT(conc_aio_timeout_enter(&outer, 1), 0);
  T_INT(conc_aio_timeout_enter(&inner, 0.02), 0);
  int rc = conc_aio_sleep(1);
  rc = conc_aio_timeout_exit(&inner, rc);
  T_INT(rc, CONC_ETIMEDOUT);
  T_FALSE(conc_aio_timeout_expired(&outer));
  T_INT(conc_aio_timeout_exit(&outer, rc), CONC_ETIMEDOUT);
  /* the outer one expires: the inner passes the cancel through */
  T_INT(conc_aio_timeout_enter(&outer, 0.02), 0);
  T_INT(conc_aio_timeout_enter(&inner, 1), 0);
  rc = conc_aio_sleep(1);
  rc = conc_aio_timeout_exit(&inner, rc);
  T_INT(rc, CONC_ECANCELED);
  T_INT(conc_aio_timeout_exit(&outer, rc), CONC_ETIMEDOUT);
  T_INT(conc_aio_task_cancelling(conc_aio_current_task()), 0);
  return 0;
}

static void test_timeout_scopes_nest(void **state) {
  run_main(timeout_nested_body, NULL);
}

static int timeout_with_outer_cancel_body(void *arg, void **res) {
  conc_aio_future_t *self = conc_aio_current_task();
  conc_aio_timeout_t to;
  T_INT(conc_aio_timeout_enter(&to, 0), 0);
  conc_aio_cancel(self, NULL); /* a cancel of its own, besides the timeout */
  int rc = conc_aio_sleep(1);
  T_INT(rc, CONC_ECANCELED);
  T_TRUE(conc_aio_timeout_expired(&to));
  T_INT(conc_aio_timeout_exit(&to, rc), CONC_ECANCELED);
  T_INT(conc_aio_task_cancelling(self), 1);
  conc_aio_task_uncancel(self);
  return 0;
}

static void test_timeout_scope_keeps_a_cancel_from_outside(void **state) {
  run_main(timeout_with_outer_cancel_body, NULL);
}

static int timeout_misuse_body(void *arg, void **res) {
  conc_aio_timeout_t to;
  memset(&to, 0, sizeof to);
  T_INT(conc_aio_timeout_enter(NULL, 1), CONC_EINVAL);
  T_INT(conc_aio_timeout_enter(&to, NAN), CONC_EINVAL);
  T_INT(conc_aio_timeout_exit(&to, 0), CONC_EINVAL); /* not entered */
  T_INT(conc_aio_timeout_reschedule(&to, 1), CONC_EINVAL);
  T_FALSE(conc_aio_timeout_expired(&to));
  return 0;
}

static void test_timeout_scope_misuse(void **state) {
  run_main(timeout_misuse_body, NULL);
}

/* ---- shield (F10) ------------------------------------------------------ */

static int shield_cancel_body(void *arg, void **res) {
  job_t j = {.delay = 0.03, .value = 5};
  conc_aio_future_t *t = spawn(&j), *s;
  T_INT(conc_aio_shield(t, &s), 0);
  T_PTR_NE(s, t);
  T_TRUE(conc_aio_cancel(s, NULL));
  T_INT(conc_aio_await(s, NULL), CONC_ECANCELED);
  void *v = NULL;
  T_INT(conc_aio_await(t, &v), 0);
  T_INT((intptr_t)v, 5);
  T_FALSE(j.saw_cancel);
  conc_aio_future_release(s);
  conc_aio_future_release(t);
  return 0;
}

static void test_shield_cancel_leaves_the_inner_task_running(void **state) {
  run_main(shield_cancel_body, NULL);
}

static int shield_awaiter_body(void *arg, void **res) {
  job_t j = {.delay = 0.2, .value = 6};
  conc_aio_future_t *t = spawn(&j), *w;
  awaiter_t a = {0};
  T_INT(conc_aio_shield(t, &a.f), 0);
  T_INT(conc_aio_create_task(NULL, await_fn, &a, NULL, &w), 0);
  T_INT(conc_aio_sleep(0.01), 0);
  conc_aio_cancel(w, NULL);
  T_INT(conc_aio_await(w, NULL), CONC_ECANCELED);
  T_FALSE(conc_aio_future_done(t));
  void *v = NULL;
  T_INT(conc_aio_await(t, &v), 0);
  T_INT((intptr_t)v, 6);
  conc_aio_future_release(w);
  conc_aio_future_release(a.f);
  conc_aio_future_release(t);
  return 0;
}

static void
test_shield_cancel_of_the_awaiting_task_leaves_the_inner_running(void **state) {
  run_main(shield_awaiter_body, NULL);
}

static int shield_follow_body(void *arg, void **res) {
  job_t j[3] = {{.delay = 0.01, .value = 3},
                {.delay = 0.01, .code = CONC_EPIPE},
                {.delay = 1}};
  conc_aio_future_t *t[3] = {spawn(&j[0]), spawn(&j[1]), spawn(&j[2])}, *s[3];
  for (int i = 0; i < 3; i++)
    T_INT(conc_aio_shield(t[i], &s[i]), 0);
  void *v = NULL;
  T_INT(conc_aio_await(s[0], &v), 0);
  T_INT((intptr_t)v, 3);
  T_INT(conc_aio_await(s[1], NULL), CONC_EPIPE);
  conc_aio_cancel(t[2], NULL); /* the inner cancelled: so is the shield */
  T_INT(conc_aio_await(s[2], NULL), CONC_ECANCELED);
  release_all(s, 3);
  release_all(t, 3);
  return 0;
}

static void test_shield_follows_the_inner_outcome(void **state) {
  run_main(shield_follow_body, NULL);
}

static int shield_done_body(void *arg, void **res) {
  conc_aio_future_t *f, *s;
  T_INT(conc_aio_future_create(NULL, &f), 0);
  conc_aio_future_set_result(f, NULL);
  T_INT(conc_aio_shield(f, &s), 0);
  T_PTR(s, f);
  conc_aio_future_release(s);
  T_INT(conc_aio_shield(NULL, &s), CONC_EINVAL);
  T_INT(conc_aio_shield(f, NULL), CONC_EINVAL);
  conc_aio_future_release(f);
  return 0;
}

static void test_shield_of_a_done_future_is_the_future(void **state) {
  run_main(shield_done_body, NULL);
}

/* ---- as_completed (F12) ---------------------------------------------- */

static int as_completed_order_body(void *arg, void **res) {
  job_t j[3] = {{.delay = 0.05}, {.delay = 0.01}, {.delay = 0.03}};
  conc_aio_future_t *t[4];
  for (int i = 0; i < 3; i++)
    t[i] = spawn(&j[i]);
  t[3] = t[1]; /* a repeat comes out once */
  conc_aio_as_completed_t *it;
  T_INT(conc_aio_as_completed(t, 4, CONC_FOREVER, &it), 0);
  T_INT(conc_aio_as_completed_left(it), 3);
  conc_aio_future_t *f;
  double last = 0;
  bool seen[3] = {false, false, false};
  for (int i = 0; i < 3; i++) {
    T_INT(conc_aio_as_completed_next(it, &f), 0);
    int k = f == t[0] ? 0 : f == t[1] ? 1 : 2;
    T_PTR(f, t[k]);
    T_FALSE(seen[k]);
    seen[k] = true;
    T_TRUE(j[k].ended_at >= last); /* the order the tasks ended in */
    last = j[k].ended_at;
    T_TRUE(conc_aio_as_completed_left(it) <= (size_t)(2 - i));
  }
  T_INT(conc_aio_as_completed_next(it, &f), CONC_EEOF);
  conc_aio_as_completed_destroy(it);
  release_all(t, 3);
  return 0;
}

static void test_as_completed_yields_in_completion_order(void **state) {
  run_main(as_completed_order_body, NULL);
}

static int as_completed_timeout_body(void *arg, void **res) {
  job_t j[3] = {{.delay = 0.01}, {.delay = 1}, {.delay = 1}};
  conc_aio_future_t *t[3] = {spawn(&j[0]), spawn(&j[1]), spawn(&j[2])}, *f;
  conc_aio_as_completed_t *it;
  double t0 = conc_monotonic();
  T_INT(conc_aio_as_completed(t, 3, 0.1, &it), 0);
  T_INT(conc_aio_as_completed_next(it, &f), 0);
  T_PTR(f, t[0]);
  T_INT(conc_aio_as_completed_next(it, &f), CONC_ETIMEDOUT);
  T_ELAPSED(conc_monotonic() - t0, 0.1);
  T_INT(conc_aio_as_completed_left(it), 2);
  T_INT(conc_aio_as_completed_next(it, &f), CONC_ETIMEDOUT);
  T_FALSE(conc_aio_future_done(t[1])); /* cancels nothing */
  conc_aio_as_completed_destroy(it);
  for (int i = 1; i < 3; i++) {
    conc_aio_cancel(t[i], NULL);
    T_INT(conc_aio_await(t[i], NULL), CONC_ECANCELED);
  }
  release_all(t, 3);
  return 0;
}

static void test_as_completed_timeout_reports_the_unfinished(void **state) {
  run_main(as_completed_timeout_body, NULL);
}

static int as_completed_empty_body(void *arg, void **res) {
  conc_aio_as_completed_t *it;
  conc_aio_future_t *f;
  T_INT(conc_aio_as_completed(NULL, 0, 1, &it), 0);
  T_INT(conc_aio_as_completed_next(it, &f), CONC_EEOF);
  T_INT(conc_aio_as_completed_left(it), 0);
  conc_aio_as_completed_destroy(it);
  return 0;
}

static void test_as_completed_of_nothing_ends_at_once(void **state) {
  run_main(as_completed_empty_body, NULL);
}

static int as_completed_destroy_early_body(void *arg, void **res) {
  job_t j[2] = {{.delay = 0.01}, {.delay = 0.02}};
  conc_aio_future_t *t[2] = {spawn(&j[0]), spawn(&j[1])}, *f;
  conc_aio_as_completed_t *it;
  T_INT(conc_aio_as_completed(t, 2, 1, &it), 0);
  T_INT(conc_aio_as_completed_next(it, &f), 0);
  conc_aio_as_completed_destroy(it); /* t[1] still pending, timer armed */
  T_INT(conc_aio_await(t[1], NULL), 0);
  T_INT(conc_aio_sleep(0.001), 0);
  release_all(t, 2);
  return 0;
}

static void test_as_completed_destroyed_early_leaves_the_futures(void **state) {
  run_main(as_completed_destroy_early_body, NULL);
}

static int as_completed_misuse_body(void *arg, void **res) {
  conc_aio_as_completed_t *it = NULL;
  conc_aio_future_t *f = NULL, *nul = NULL;
  T_INT(conc_aio_as_completed(NULL, 1, 1, &it), CONC_EINVAL);
  T_INT(conc_aio_as_completed(&nul, 1, 1, &it), CONC_EINVAL);
  T_INT(conc_aio_as_completed(NULL, 0, NAN, &it), CONC_EINVAL);
  T_INT(conc_aio_as_completed(NULL, 0, 1, NULL), CONC_EINVAL);
  T_NULL(it);
  T_INT(conc_aio_as_completed_next(NULL, &f), CONC_EINVAL);
  return 0;
}

static void test_as_completed_misuse_is_einval(void **state) {
  run_main(as_completed_misuse_body, NULL);
}

/* ---- TaskGroup ---------------------------------------------------------- */

static int tg_all_body(void *arg, void **res) {
  job_t j[3] = {{.delay = 0.01}, {.delay = 0.04}, {.delay = 0.02}};
  conc_aio_taskgroup_t *g;
  double t0 = conc_monotonic();
  T_INT(conc_aio_taskgroup_enter(&g), 0);
  conc_aio_future_t *t1;
  T_INT(conc_aio_taskgroup_create_task(g, job_fn, &j[0], NULL, &t1), 0);
  for (int i = 1; i < 3; i++)
    T_INT(conc_aio_taskgroup_create_task(g, job_fn, &j[i], NULL, NULL), 0);
  size_t ne = 9;
  T_INT(conc_aio_taskgroup_exit(g, 0, NULL, 0, &ne), 0);
  T_ELAPSED(conc_monotonic() - t0, 0.04);
  T_INT(ne, 0);
  for (int i = 0; i < 3; i++)
    T_TRUE(j[i].done);
  T_TRUE(conc_aio_future_done(t1));
  conc_aio_future_release(t1);
  return 0;
}

static void test_taskgroup_exit_waits_for_every_child(void **state) {
  run_main(tg_all_body, NULL);
}

static int tg_fail_body(void *arg, void **res) {
  job_t j[2] = {{.delay = 0.02, .code = CONC_EPIPE}, {.delay = 1}};
  conc_aio_taskgroup_t *g;
  double t0 = conc_monotonic();
  T_INT(conc_aio_taskgroup_enter(&g), 0);
  for (int i = 0; i < 2; i++)
    T_INT(conc_aio_taskgroup_create_task(g, job_fn, &j[i], NULL, NULL), 0);
  int rc = conc_aio_sleep(1); /* the body is cancelled too */
  T_INT(rc, CONC_ECANCELED);
  int errs[4];
  size_t ne = 0;
  T_INT(conc_aio_taskgroup_exit(g, rc, errs, 4, &ne), CONC_EPIPE);
  T_ELAPSED(conc_monotonic() - t0, 0.02);
  T_INT(ne, 1);
  T_INT(errs[0], CONC_EPIPE);
  T_TRUE(j[1].saw_cancel);
  conc_aio_future_t *self = conc_aio_current_task();
  T_INT(conc_aio_task_cancelling(self), 0);
  T_INT(conc_aio_sleep(0.001), 0); /* the body's task goes on */
  return 0;
}

static void
test_taskgroup_failing_child_cancels_its_siblings_and_the_body(void **state) {
  run_main(tg_fail_body, NULL);
}

static int tg_every_error_body(void *arg, void **res) {
  job_t j[3] = {{.delay = 0.02, .code = CONC_EPIPE},
                {.delay = 1, .cancel_code = CONC_EIO},
                {.delay = 1}};
  conc_aio_taskgroup_t *g;
  T_INT(conc_aio_taskgroup_enter(&g), 0);
  for (int i = 0; i < 3; i++)
    T_INT(conc_aio_taskgroup_create_task(g, job_fn, &j[i], NULL, NULL), 0);
  int errs[1];
  size_t ne = 0;
  T_INT(conc_aio_taskgroup_exit(g, 0, errs, 1, &ne), CONC_EPIPE);
  T_INT(ne, 2); /* EPIPE, then EIO while being cancelled */
  T_INT(errs[0], CONC_EPIPE);
  T_TRUE(j[2].saw_cancel);
  /* the failure came while exit waited: the group's cancel is undone */
  T_INT(conc_aio_task_cancelling(conc_aio_current_task()), 0);
  T_INT(conc_aio_sleep(0.001), 0);
  return 0;
}

static void test_taskgroup_reports_every_error(void **state) {
  run_main(tg_every_error_body, NULL);
}

static int tg_body_error_body(void *arg, void **res) {
  job_t j = {.delay = 1};
  conc_aio_taskgroup_t *g;
  T_INT(conc_aio_taskgroup_enter(&g), 0);
  T_INT(conc_aio_taskgroup_create_task(g, job_fn, &j, NULL, NULL), 0);
  T_INT(conc_aio_sleep(0.01), 0);
  int errs[2];
  size_t ne = 0;
  double t0 = conc_monotonic();
  T_INT(conc_aio_taskgroup_exit(g, CONC_EINVAL, errs, 2, &ne), CONC_EINVAL);
  T_QUICK(conc_monotonic() - t0);
  T_INT(ne, 1);
  T_INT(errs[0], CONC_EINVAL);
  T_TRUE(j.saw_cancel);
  return 0;
}

static void
test_taskgroup_body_error_cancels_the_children_and_is_reported(void **state) {
  run_main(tg_body_error_body, NULL);
}

typedef struct tgouter {
  job_t child;
  int exit_rc, body_rc;
} tgouter_t;

static int tg_in_task(void *arg, void **res) {
  tgouter_t *c = arg;
  conc_aio_taskgroup_t *g;
  T_INT(conc_aio_taskgroup_enter(&g), 0);
  T_INT(conc_aio_taskgroup_create_task(g, job_fn, &c->child, NULL, NULL), 0);
  c->body_rc = conc_aio_sleep(1);
  c->exit_rc = conc_aio_taskgroup_exit(g, c->body_rc, NULL, 0, NULL);
  return c->exit_rc;
}

static int tg_outside_cancel_body(void *arg, void **res) {
  tgouter_t c = {.child = {.delay = 1}};
  conc_aio_future_t *w;
  T_INT(conc_aio_create_task(NULL, tg_in_task, &c, NULL, &w), 0);
  T_INT(conc_aio_sleep(0.01), 0);
  conc_aio_cancel(w, NULL);
  T_INT(conc_aio_await(w, NULL), CONC_ECANCELED);
  T_INT(c.body_rc, CONC_ECANCELED);
  T_INT(c.exit_rc, CONC_ECANCELED);
  T_TRUE(c.child.saw_cancel);
  conc_aio_future_release(w);
  return 0;
}

static void
test_taskgroup_cancelled_from_outside_returns_ecanceled(void **state) {
  run_main(tg_outside_cancel_body, NULL);
}

static int tg_aborting_body(void *arg, void **res) {
  job_t j = {.delay = 0.01, .code = CONC_EPIPE}, k = {.delay = 0.01};
  conc_aio_taskgroup_t *g;
  T_INT(conc_aio_taskgroup_enter(&g), 0);
  T_INT(conc_aio_taskgroup_create_task(g, job_fn, &j, NULL, NULL), 0);
  int rc = conc_aio_sleep(1);
  T_INT(rc, CONC_ECANCELED);
  T_INT(conc_aio_taskgroup_create_task(g, job_fn, &k, NULL, NULL), CONC_ESTATE);
  T_INT(conc_aio_taskgroup_create_task(g, NULL, &k, NULL, NULL), CONC_EINVAL);
  T_INT(conc_aio_taskgroup_exit(g, rc, NULL, 0, NULL), CONC_EPIPE);
  return 0;
}

static void
test_taskgroup_create_task_while_shutting_down_is_estate(void **state) {
  run_main(tg_aborting_body, NULL);
}

typedef struct tgother {
  conc_aio_taskgroup_t *g;
  int rc;
} tgother_t;

static int tg_exit_elsewhere(void *arg, void **res) {
  tgother_t *o = arg;
  o->rc = conc_aio_taskgroup_exit(o->g, 0, NULL, 0, NULL);
  return 0;
}

static int tg_wrong_task_body(void *arg, void **res) {
  tgother_t o = {0};
  T_INT(conc_aio_taskgroup_enter(&o.g), 0);
  conc_aio_future_t *t;
  T_INT(conc_aio_create_task(NULL, tg_exit_elsewhere, &o, NULL, &t), 0);
  T_INT(conc_aio_await(t, NULL), 0);
  T_INT(o.rc, CONC_ESTATE); /* and the group is still usable */
  job_t j = {.delay = 0.01};
  T_INT(conc_aio_taskgroup_create_task(o.g, job_fn, &j, NULL, NULL), 0);
  T_INT(conc_aio_taskgroup_exit(o.g, 0, NULL, 0, NULL), 0);
  T_TRUE(j.done);
  conc_aio_future_release(t);
  return 0;
}

static void test_taskgroup_exit_from_another_task_is_estate(void **state) {
  run_main(tg_wrong_task_body, NULL);
}

static int tg_misuse_body(void *arg, void **res) {
  T_INT(conc_aio_taskgroup_enter(NULL), CONC_EINVAL);
  T_INT(conc_aio_taskgroup_exit(NULL, 0, NULL, 0, NULL), CONC_EINVAL);
  T_INT(conc_aio_taskgroup_create_task(NULL, job_fn, NULL, NULL, NULL),
        CONC_EINVAL);
  return 0;
}

static void test_taskgroup_misuse_is_einval(void **state) {
  run_main(tg_misuse_body, NULL);
}

/* ---- bridges (F13) ------------------------------------------------------- */

static int whoami(void *arg, void **result) {
  *(pthread_t *)arg = pthread_self();
  *result = (void *)21;
  return 0;
}

static int to_thread_body(void *arg, void **res) {
  pthread_t worker = pthread_self(), me = pthread_self();
  void *v = NULL;
  T_INT(conc_aio_to_thread(whoami, &worker, &v), 0);
  T_INT((intptr_t)v, 21);
  T_FALSE(pthread_equal(worker, me));
  T_TRUE(pthread_equal(pthread_self(), me));
  conc_loop_t *loop = conc_loop_running();
  T_INT(conc__aio_default_executor_shutdown(loop), 0);
  T_INT(conc__aio_default_executor_shutdown(loop), CONC_ENOENT);
  T_INT(conc_aio_to_thread(whoami, &worker, &v), 0); /* a new one */
  T_INT(conc__aio_default_executor_shutdown(loop), 0);
  return 0;
}

static void
test_to_thread_runs_on_a_worker_and_resumes_on_the_loop(void **state) {
  run_main(to_thread_body, NULL);
}

typedef struct closectx {
  conc_loop_t *loop;
  pthread_t worker;
} closectx_t;

static int close_body(void *arg, void **res) {
  closectx_t *c = arg;
  c->loop = conc_loop_running();
  T_INT(conc_aio_to_thread(whoami, &c->worker, NULL), 0);
  return 0;
}

static void
test_closing_the_loop_shuts_down_its_default_executor(void **state) {
  closectx_t c = {0};
  run_main(close_body, &c);
  /* the loop's close already removed (and joined) it */
  assert_int_equal(conc__aio_default_executor_shutdown(c.loop), CONC_ENOENT);
}

static int failing(void *arg, void **result) {
  return conc_raise(CONC_EPIPE, "broken %d", 1);
}

static int add_one(void *arg, void **result) {
  *result = (void *)((intptr_t)arg + 1);
  return 0;
}

static int run_in_executor_body(void *arg, void **res) {
  conc_executor_t ex;
  T_INT(conc_executor_init(&ex, NULL), 0);
  void *v = NULL;
  T_INT(conc_aio_run_in_executor(&ex, add_one, (void *)41, &v), 0);
  T_INT((intptr_t)v, 42);
  v = (void *)5;
  T_INT(conc_aio_run_in_executor(&ex, failing, NULL, &v), CONC_EPIPE);
  T_PTR(v, (void *)5);
  T_INT(conc_aio_run_in_executor(&ex, NULL, NULL, &v), CONC_EINVAL);
  conc_executor_destroy(&ex);
  return 0;
}

static void
test_run_in_executor_returns_the_result_or_the_failure_code(void **state) {
  run_main(run_in_executor_body, NULL);
}

typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
} gate_t;

static int wait_gate(void *arg, void **result) {
  gate_t *g = arg;
  pthread_mutex_lock(&g->mu);
  while (!g->open)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
  return 0;
}

static void open_gate(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  g->open = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static int mark(void *arg, void **result) {
  __atomic_store_n((int *)arg, 1, __ATOMIC_SEQ_CST);
  return 0;
}

typedef struct rie {
  conc_executor_t *ex;
  int *ran;
  int rc;
} rie_t;

static int rie_task(void *arg, void **res) {
  rie_t *r = arg;
  r->rc = conc_aio_run_in_executor(r->ex, mark, r->ran, NULL);
  return 0;
}

static int rie_cancel_body(void *arg, void **res) {
  conc_executor_t ex;
  T_INT(conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 1}), 0);
  gate_t gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
  conc_future_t *blocker;
  T_INT(conc_executor_submit(&ex, wait_gate, &gate, &blocker), 0);
  int ran = 0;
  rie_t r = {&ex, &ran, 1};
  conc_aio_future_t *t;
  T_INT(conc_aio_create_task(NULL, rie_task, &r, NULL, &t), 0);
  T_INT(conc_aio_sleep(0), 0); /* t submitted and waits */
  conc_aio_cancel(t, NULL);
  T_INT(conc_aio_await(t, NULL), 0);
  T_INT(r.rc, CONC_ECANCELED);
  T_INT(conc_aio_sleep(0), 0); /* the cancel reaches the work */
  open_gate(&gate);
  conc_executor_destroy(&ex);
  T_INT(__atomic_load_n(&ran, __ATOMIC_SEQ_CST), 0);
  conc_future_release(blocker);
  conc_aio_future_release(t);
  return 0;
}

static void test_run_in_executor_cancel_cancels_work_not_started(void **state) {
  run_main(rie_cancel_body, NULL);
}

typedef struct wfut {
  conc_future_t *cf;
  int how; /* 0 result, 1 error, 2 cancel */
} wfut_t;

static void *complete_cf(void *arg) {
  wfut_t *w = arg;
  if (w->how == 0)
    conc_future_set_result(w->cf, (void *)17);
  else if (w->how == 1)
    conc_future_set_exception(w->cf, CONC_EPIPE, "pipe");
  else
    conc_future_cancel(w->cf);
  return NULL;
}

static int wrap_follow_body(void *arg, void **res) {
  int expect[3] = {0, CONC_EPIPE, CONC_ECANCELED};
  for (int how = 0; how < 3; how++) {
    wfut_t w = {.how = how};
    T_INT(conc_future_new(&w.cf), 0);
    conc_aio_future_t *af;
    T_INT(conc_aio_wrap_future(NULL, w.cf, &af), 0);
    pthread_t th = conc_test_spawn(complete_cf, &w);
    void *v = NULL;
    T_INT(conc_aio_await(af, &v), expect[how]);
    if (how == 0)
      T_INT((intptr_t)v, 17);
    conc_test_join(th);
    conc_aio_future_release(af);
    conc_future_release(w.cf);
  }
  return 0;
}

static void test_wrap_future_follows_the_thread_future(void **state) {
  run_main(wrap_follow_body, NULL);
}

static int wrap_cancel_body(void *arg, void **res) {
  conc_future_t *cf;
  T_INT(conc_future_new(&cf), 0);
  conc_aio_future_t *af;
  T_INT(conc_aio_wrap_future(conc_loop_running(), cf, &af), 0);
  T_TRUE(conc_aio_cancel(af, NULL));
  T_INT(conc_aio_sleep(0), 0); /* af's callbacks run */
  T_TRUE(conc_future_cancelled(cf));
  T_INT(conc_aio_wrap_future(NULL, NULL, &af), CONC_EINVAL);
  T_INT(conc_aio_wrap_future(NULL, cf, NULL), CONC_EINVAL);
  conc_aio_future_release(af);
  conc_future_release(cf);
  return 0;
}

static void test_wrap_future_cancel_cancels_the_thread_future(void **state) {
  run_main(wrap_cancel_body, NULL);
}

typedef struct rct {
  conc_loop_t *loop;
  pthread_t loop_thread;
  int how; /* 0 result, 1 error, 2 cancel from the thread */
  int rc, task_rc;
  intptr_t v;
  bool on_loop;
  int started; /* atomic */
  conc_aio_future_t *ended;
} rct_t;

static int rct_coro(void *arg, void **res) {
  rct_t *c = arg;
  c->on_loop = pthread_equal(pthread_self(), c->loop_thread);
  __atomic_store_n(&c->started, 1, __ATOMIC_SEQ_CST);
  int rc = conc_aio_sleep(c->how == 2 ? 10 : 0.01);
  c->task_rc = rc;
  conc_aio_future_set_result(c->ended, NULL);
  if (rc)
    return rc;
  if (c->how == 1)
    return CONC_EIO;
  *res = (void *)99;
  return 0;
}

static void *rct_thread(void *arg) {
  rct_t *c = arg;
  conc_future_t *cf;
  c->rc = conc_aio_run_coroutine_threadsafe(c->loop, rct_coro, c, &cf);
  if (c->rc)
    return NULL;
  if (c->how == 2) {
    while (!__atomic_load_n(&c->started, __ATOMIC_SEQ_CST))
      conc_sleep(0.001);
    conc_future_cancel(cf);
  }
  void *v = NULL;
  c->rc = conc_future_result(cf, 5, &v);
  c->v = (intptr_t)v;
  conc_future_release(cf);
  return NULL;
}

static int join_thread(void *arg, void **result) {
  conc_test_join(*(pthread_t *)arg);
  return 0;
}

static int rct_body(void *arg, void **res) {
  rct_t *c = arg;
  c->loop = conc_loop_running();
  c->loop_thread = pthread_self();
  T_INT(conc_aio_future_create(NULL, &c->ended), 0);
  pthread_t th = conc_test_spawn(rct_thread, c);
  T_INT(conc_aio_to_thread(join_thread, &th, NULL), 0);
  T_INT(conc_aio_await(c->ended, NULL), 0);
  conc_aio_future_release(c->ended);
  return 0;
}

static void test_run_coroutine_threadsafe_gives_the_task_result_to_the_thread(
    void **state) {
  rct_t c = {.how = 0};
  run_main(rct_body, &c);
  assert_int_equal(c.rc, 0);
  assert_int_equal(c.v, 99);
  assert_true(c.on_loop);
}

static void
test_run_coroutine_threadsafe_gives_the_task_error_to_the_thread(void **state) {
  rct_t c = {.how = 1};
  run_main(rct_body, &c);
  assert_int_equal(c.rc, CONC_EIO);
}

static void
test_run_coroutine_threadsafe_cancel_cancels_the_task(void **state) {
  rct_t c = {.how = 2};
  run_main(rct_body, &c);
  assert_int_equal(c.rc, CONC_ECANCELED);
  assert_int_equal(c.task_rc, CONC_ECANCELED);
}

enum { RCT_THREADS = 4, RCT_CALLS = 50 };

static int echo_fn(void *arg, void **res) {
  int rc = conc_aio_sleep(0);
  *res = arg;
  return rc;
}

typedef struct rctmany {
  conc_loop_t *loop;
  int bad; /* atomic */
} rctmany_t;

static void *rct_many_thread(void *arg) {
  rctmany_t *c = arg;
  for (intptr_t i = 0; i < RCT_CALLS; i++) {
    conc_future_t *cf;
    void *v = NULL;
    if (conc_aio_run_coroutine_threadsafe(c->loop, echo_fn, (void *)i, &cf) ||
        conc_future_result(cf, 10, &v) || (intptr_t)v != i)
      __atomic_add_fetch(&c->bad, 1, __ATOMIC_SEQ_CST);
    conc_future_release(cf);
  }
  return NULL;
}

static int join_all(void *arg, void **result) {
  pthread_t *th = arg;
  for (int i = 0; i < RCT_THREADS; i++)
    conc_test_join(th[i]);
  return 0;
}

static int rct_many_body(void *arg, void **res) {
  rctmany_t *c = arg;
  c->loop = conc_loop_running();
  pthread_t th[RCT_THREADS];
  for (int i = 0; i < RCT_THREADS; i++)
    th[i] = conc_test_spawn(rct_many_thread, c);
  T_INT(conc_aio_to_thread(join_all, th, NULL), 0);
  return 0;
}

static void
test_run_coroutine_threadsafe_from_several_threads_at_once(void **state) {
  rctmany_t c = {0};
  run_main(rct_many_body, &c);
  assert_int_equal(c.bad, 0);
}

static void test_run_coroutine_threadsafe_misuse_is_einval(void **state) {
  conc_future_t *cf = NULL;
  conc_loop_t *loop;
  assert_int_equal(conc_loop_create(NULL, &loop), 0);
  assert_int_equal(conc_aio_run_coroutine_threadsafe(NULL, job_fn, NULL, &cf),
                   CONC_EINVAL);
  assert_int_equal(conc_aio_run_coroutine_threadsafe(loop, NULL, NULL, &cf),
                   CONC_EINVAL);
  assert_int_equal(conc_aio_run_coroutine_threadsafe(loop, job_fn, NULL, NULL),
                   CONC_EINVAL);
  assert_null(cf);
  assert_int_equal(conc_loop_close(loop), 0);
  assert_int_equal(conc_aio_run_coroutine_threadsafe(loop, job_fn, NULL, &cf),
                   CONC_ECLOSED);
  assert_null(cf);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

CONC_TEST_MAIN(
    cmocka_unit_test(test_gather_keeps_input_order),
    cmocka_unit_test(
        test_gather_first_error_completes_it_at_once_others_keep_running),
    cmocka_unit_test(test_gather_return_exceptions_fills_every_slot),
    cmocka_unit_test(
        test_gather_cancelled_child_is_an_error_without_return_exceptions),
    cmocka_unit_test(test_gather_cancel_cancels_every_child),
    cmocka_unit_test(test_gather_cancel_of_the_awaiting_task_cancels_children),
    cmocka_unit_test(test_gather_of_nothing_is_done_with_null),
    cmocka_unit_test(test_gather_same_future_twice_fills_both_slots),
    cmocka_unit_test(test_gather_of_many_tasks_keeps_input_order),
    cmocka_unit_test(test_gather_misuse_is_einval),
    cmocka_unit_test(test_wait_first_completed_returns_after_the_first),
    cmocka_unit_test(test_wait_first_exception_returns_at_the_first_error),
    cmocka_unit_test(test_wait_first_exception_does_not_count_a_cancel),
    cmocka_unit_test(test_wait_all_completed_waits_for_every_future),
    cmocka_unit_test(test_wait_timeout_returns_the_split_and_cancels_nothing),
    cmocka_unit_test(test_wait_counts_a_repeated_future_once),
    cmocka_unit_test(
        test_wait_cancelled_returns_ecanceled_and_leaves_the_futures),
    cmocka_unit_test(test_wait_misuse_is_einval),
    cmocka_unit_test(test_combinators_outside_a_task_are_estate),
    cmocka_unit_test(test_wait_for_returns_the_result_before_the_timeout),
    cmocka_unit_test(test_wait_for_returns_the_inner_error),
    cmocka_unit_test(
        test_wait_for_timeout_cancels_the_inner_task_and_waits_for_its_end),
    cmocka_unit_test(test_wait_for_inner_result_after_the_timeout_wins),
    cmocka_unit_test(test_wait_for_inner_error_during_its_cancel_is_returned),
    cmocka_unit_test(
        test_wait_for_zero_timeout_returns_a_done_result_or_times_out),
    cmocka_unit_test(test_wait_for_forever_waits_without_limit),
    cmocka_unit_test(test_wait_for_cancelled_from_outside_is_ecanceled),
    cmocka_unit_test(test_wait_for_timeout_cancels_a_plain_future),
    cmocka_unit_test(test_wait_for_misuse_is_einval),
    cmocka_unit_test(test_timeout_scope_expiry_turns_the_cancel_into_etimedout),
    cmocka_unit_test(test_timeout_scope_not_expired_returns_rc_unchanged),
    cmocka_unit_test(test_timeout_scope_can_be_rescheduled),
    cmocka_unit_test(
        test_timeout_scope_with_a_past_deadline_expires_at_the_next_await),
    cmocka_unit_test(test_timeout_scopes_nest),
    cmocka_unit_test(test_timeout_scope_keeps_a_cancel_from_outside),
    cmocka_unit_test(test_timeout_scope_misuse),
    cmocka_unit_test(test_shield_cancel_leaves_the_inner_task_running),
    cmocka_unit_test(
        test_shield_cancel_of_the_awaiting_task_leaves_the_inner_running),
    cmocka_unit_test(test_shield_follows_the_inner_outcome),
    cmocka_unit_test(test_shield_of_a_done_future_is_the_future),
    cmocka_unit_test(test_as_completed_yields_in_completion_order),
    cmocka_unit_test(test_as_completed_timeout_reports_the_unfinished),
    cmocka_unit_test(test_as_completed_of_nothing_ends_at_once),
    cmocka_unit_test(test_as_completed_destroyed_early_leaves_the_futures),
    cmocka_unit_test(test_as_completed_misuse_is_einval),
    cmocka_unit_test(test_taskgroup_exit_waits_for_every_child),
    cmocka_unit_test(
        test_taskgroup_failing_child_cancels_its_siblings_and_the_body),
    cmocka_unit_test(test_taskgroup_reports_every_error),
    cmocka_unit_test(
        test_taskgroup_body_error_cancels_the_children_and_is_reported),
    cmocka_unit_test(test_taskgroup_cancelled_from_outside_returns_ecanceled),
    cmocka_unit_test(test_taskgroup_create_task_while_shutting_down_is_estate),
    cmocka_unit_test(test_taskgroup_exit_from_another_task_is_estate),
    cmocka_unit_test(test_taskgroup_misuse_is_einval),
    cmocka_unit_test(test_to_thread_runs_on_a_worker_and_resumes_on_the_loop),
    cmocka_unit_test(test_closing_the_loop_shuts_down_its_default_executor),
    cmocka_unit_test(
        test_run_in_executor_returns_the_result_or_the_failure_code),
    cmocka_unit_test(test_run_in_executor_cancel_cancels_work_not_started),
    cmocka_unit_test(test_wrap_future_follows_the_thread_future),
    cmocka_unit_test(test_wrap_future_cancel_cancels_the_thread_future),
    cmocka_unit_test(
        test_run_coroutine_threadsafe_gives_the_task_result_to_the_thread),
    cmocka_unit_test(
        test_run_coroutine_threadsafe_gives_the_task_error_to_the_thread),
    cmocka_unit_test(test_run_coroutine_threadsafe_cancel_cancels_the_task),
    cmocka_unit_test(
        test_run_coroutine_threadsafe_from_several_threads_at_once),
    cmocka_unit_test(test_run_coroutine_threadsafe_misuse_is_einval))
