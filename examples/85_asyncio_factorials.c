// clang-format off
/*
 * Lesson 85: two factorial tasks, with a blocking sleep and with a
 * suspending one (seed 000, asyncio basics).
 *
 * Python:                                    C:
 *   async def custom_sleep():                  static void custom_sleep(void) {
 *       time.sleep(1)       # blocks             conc_sleep(0.1);        (blocks the thread)
 *       await asyncio.sleep(1)  # suspends       conc_aio_sleep(0.1);    (suspends the task)
 *   async def factorial(name, number): ...     static int factorial(void *arg, void **res)
 *   tasks = [ensure_future(factorial("A", 3)),  conc_aio_create_task(NULL, factorial, &a, NULL, &t[0]);
 *            ensure_future(factorial("B", 4))]  conc_aio_create_task(NULL, factorial, &b, NULL, &t[1]);
 *   loop.run_until_complete(asyncio.wait(tasks))  conc_aio_wait(t, 2, CONC_FOREVER, CONC_ALL_COMPLETED, ...)
 *
 * A task is a C function on its own stack, so the sleep can live in a
 * helper function (custom_sleep) and still suspend the task: in C nothing
 * needs to be marked async. What decides the behaviour is the call: a
 * blocking sleep holds the whole thread, so task A runs to its end before
 * B starts and the times add up (5 sleeps); a suspending sleep hands the
 * loop to the other task, so the sleeps overlap (3 sleeps' time). The
 * lesson sleeps 0.1 s where the seed sleeps 1 s.
 */
// clang-format on
#include <stdbool.h>
#include <stdio.h>

#include <conc.h>

typedef struct job {
  const char *name;
  int number;
} job_t;

static bool blocking;

static void custom_sleep(void) {
  puts("SLEEP");
  if (blocking)
    conc_sleep(0.1); /* time.sleep: every task waits */
  else
    conc_aio_sleep(0.1); /* await asyncio.sleep: only this one */
}

static int factorial(void *arg, void **res) {
  const job_t *j = arg;
  long f = 1;
  for (int i = 2; i <= j->number; i++) {
    printf("Task %s: Compute factorial(%d)\n", j->name, i);
    custom_sleep(); /* an ordinary function call, any depth */
    f *= i;
  }
  printf("Task %s: factorial(%d) is %ld\n\n", j->name, j->number, f);
  *res = (void *)f;
  return 0;
}

static int main_task(void *arg, void **res) {
  (void)arg;
  (void)res;
  static job_t a = {"A", 3}, b = {"B", 4};
  conc_aio_future_t *t[2];
  conc_aio_create_task(NULL, factorial, &a, NULL, &t[0]);
  conc_aio_create_task(NULL, factorial, &b, NULL, &t[1]);
  int rc = conc_aio_wait(t, 2, CONC_FOREVER, CONC_ALL_COMPLETED, NULL, NULL,
                         NULL, NULL);
  conc_aio_future_release(t[0]);
  conc_aio_future_release(t[1]);
  return rc;
}

static int run(bool block) {
  blocking = block;
  double start = conc_monotonic();
  int rc = conc_aio_run(main_task, NULL, NULL, NULL);
  printf("Total time: %.1f s\n\n", conc_monotonic() - start);
  return rc;
}

int main(void) {
  puts("== time.sleep: a blocking call holds the loop ==");
  if (run(true))
    return 1;
  puts("== asyncio.sleep: a suspending call lets the other task run ==");
  return run(false) != 0;
}
