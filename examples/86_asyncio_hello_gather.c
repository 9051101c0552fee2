// clang-format off
/*
 * Lesson 86: hello/world, two tasks run with gather, and gather of three
 * factorial tasks (seed 002, asyncio).
 *
 * Python:                                    C:
 *   async def main():                          static int hello(void *arg, void **res) {
 *       print('Hello ...')                       puts("Hello ...");
 *       await asyncio.sleep(1)                   conc_aio_sleep(0.1);
 *       print('... World!')                      puts("... World!"); return 0; }
 *   asyncio.run(main())                        conc_aio_run(hello, NULL, NULL, NULL);
 *
 *   t1 = asyncio.create_task(print_time())     conc_aio_create_task(NULL, print_time, .., &t[0]);
 *   t2 = asyncio.create_task(counter())        conc_aio_create_task(NULL, counter, .., &t[1]);
 *   await asyncio.gather(t1, t2)               conc_aio_gather(t, 2, NULL, &g); conc_aio_await(g, NULL);
 *
 *   await asyncio.gather(factorial("A", 2),    (three tasks, then gather, as above;
 *       factorial("B", 3), factorial("C", 4))   results come back in the order given)
 *
 * The seed's counter and print_time run forever; here each stops after a
 * few ticks so that the lesson ends. Each task sleeps until an absolute
 * tick of the loop's clock (loop.time() + ...), so the interleaving of the
 * two tasks is fixed by their deadlines, not by how busy the machine is.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

static int hello(void *arg, void **res) {
  (void)arg;
  (void)res;
  puts("Hello ...");
  conc_aio_sleep(0.1);
  puts("... World!");
  return 0;
}

/* Sleep until `when` on the loop's clock. */
static int sleep_until(double when) {
  return conc_aio_sleep(when - conc_loop_time(conc_loop_running()));
}

static double t0;

static int counter(void *arg, void **res) {
  (void)arg;
  (void)res;
  for (int count = 0; count < 6; count++) {
    printf("%d\n", count);
    sleep_until(t0 + 0.05 * (count + 1));
  }
  return 0;
}

static int print_time(void *arg, void **res) {
  (void)arg;
  (void)res;
  for (int count = 0; count < 6; count += 3) { /* every third tick */
    printf("%d ticks passed\n", count);
    sleep_until(t0 + 0.05 * (count + 3) + 0.01);
  }
  return 0;
}

static int factorial(void *arg, void **res) {
  const char *name = arg;
  int number = name[0] - 'A' + 2; /* A: 2, B: 3, C: 4 */
  long f = 1;
  for (int i = 2; i <= number; i++) {
    printf("Task %s: Compute factorial(%d)...\n", name, i);
    conc_aio_sleep(0.05);
    f *= i;
  }
  printf("Task %s: factorial(%d) = %ld\n", name, number, f);
  *res = (void *)(intptr_t)f;
  return 0;
}

/* gather(*tasks): await all of them; results in the order given. */
static int gather(conc_aio_future_t **t, size_t n, void **results) {
  conc_aio_future_t *g;
  int rc =
      conc_aio_gather(t, n, &(conc_aio_gather_opts_t){.results = results}, &g);
  if (rc == 0) {
    rc = conc_aio_await(g, NULL);
    conc_aio_future_release(g);
  }
  for (size_t i = 0; i < n; i++)
    conc_aio_future_release(t[i]);
  return rc;
}

static int two_tasks(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_future_t *t[2];
  t0 = conc_loop_time(conc_loop_running());
  conc_aio_create_task(NULL, print_time, NULL, NULL, &t[0]);
  conc_aio_create_task(NULL, counter, NULL, NULL, &t[1]);
  return gather(t, 2, NULL);
}

static int factorials(void *arg, void **res) {
  (void)arg;
  (void)res;
  static char *names[] = {"A", "B", "C"};
  conc_aio_future_t *t[3];
  void *results[3];
  for (int i = 0; i < 3; i++) /* schedule three calls concurrently */
    conc_aio_create_task(NULL, factorial, names[i], NULL, &t[i]);
  int rc = gather(t, 3, results);
  printf("gather's results, in order: %ld %ld %ld\n",
         (long)(intptr_t)results[0], (long)(intptr_t)results[1],
         (long)(intptr_t)results[2]);
  return rc;
}

int main(void) {
  if (conc_aio_run(hello, NULL, NULL, NULL))
    return 1;
  puts("-- counter and print_time --");
  if (conc_aio_run(two_tasks, NULL, NULL, NULL))
    return 1;
  puts("-- gather of factorials --");
  return conc_aio_run(factorials, NULL, NULL, NULL) != 0;
}
