// clang-format off
/*
 * Lesson 89: testing coroutines (seed 002: pytest-asyncio and an event-loop
 * fixture).
 *
 * Python (pytest-asyncio):                   C (cmocka, as tests/test_loop.c does):
 *   @pytest.mark.asyncio                       static int body(void *arg, void **res) {
 *   async def test_factorial():                  ... the test awaits freely ... }
 *       assert await factorial(4) == 24        static void test_factorial(void **state) {
 *                                                assert_int_equal(conc_aio_run(body, NULL, NULL, &r), 0); }
 *   @pytest.fixture                            conc_aio_run makes a fresh loop for the
 *   def event_loop(): ...                      test, runs the body as a task and closes it
 *
 * A coroutine test is an ordinary test whose body runs as a task: run it
 * with conc_aio_run, which gives each test its own loop (pytest-asyncio's
 * event_loop fixture) and returns the body's outcome. Inside the body,
 * assertions are plain C checks; a failing check returns an error code
 * from the task, so the loop still closes cleanly. The project's own suite
 * does exactly this with cmocka (tests/test_loop.c); this lesson carries a
 * ten-line runner of its own so that it builds without cmocka.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

/* The code under test. */
static int factorial(void *arg, void **res) {
  intptr_t n = (intptr_t)arg, f = 1;
  for (intptr_t i = 2; i <= n; i++) {
    int rc = conc_aio_sleep(0.001); /* it awaits: only a task can run it */
    if (rc)
      return rc; /* cancelled: let CancelledError propagate */
    f *= i;
  }
  *res = (void *)f;
  return 0;
}

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      printf("    check failed: %s\n", #cond);                                 \
      return CONC_EFAILED;                                                     \
    }                                                                          \
  } while (0)

/* test: await factorial(4) == 24 */
static int test_factorial(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_future_t *t;
  void *v;
  CHECK(conc_aio_create_task(NULL, factorial, (void *)4, NULL, &t) == 0);
  int rc = conc_aio_await(t, &v);
  conc_aio_future_release(t);
  CHECK(rc == 0 && (intptr_t)v == 24);
  return 0;
}

/* test: wait_for gives up on a slow coroutine with TimeoutError */
static int test_wait_for_times_out(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_future_t *t;
  CHECK(conc_aio_create_task(NULL, factorial, (void *)1000000, NULL, &t) == 0);
  int rc = conc_aio_wait_for(t, 0.02, NULL);
  bool cancelled = conc_aio_future_cancelled(t);
  conc_aio_future_release(t);
  CHECK(rc == CONC_ETIMEDOUT);
  CHECK(cancelled); /* wait_for cancelled it and waited for it */
  return 0;
}

/* test: a deliberately wrong expectation, to show a failure report */
static int test_shows_a_failure(void *arg, void **res) {
  (void)arg;
  (void)res;
  void *v;
  conc_aio_future_t *t;
  CHECK(conc_aio_create_task(NULL, factorial, (void *)3, NULL, &t) == 0);
  conc_aio_await(t, &v);
  conc_aio_future_release(t);
  CHECK((intptr_t)v == 7);
  return 0;
}

static int run_test(const char *name, conc_aio_fn_t body) {
  int rc = conc_aio_run(body, NULL, NULL, NULL); /* a fresh loop per test */
  printf("[ %s ] %s\n", rc == 0 ? "OK" : "FAILED", name);
  return rc != 0;
}

int main(void) {
  int failed = 0;
  failed += run_test("test_factorial", test_factorial);
  failed += run_test("test_wait_for_times_out", test_wait_for_times_out);
  failed += run_test("test_shows_a_failure", test_shows_a_failure);
  printf("%d failed (the last one on purpose)\n", failed);
  return failed != 1;
}
