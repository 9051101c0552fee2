// clang-format off
/*
 * Lesson 40: ThreadPoolExecutor.submit: fact(5), fact(10) and add(5, 3).
 * Seed 003 ("ThreadPoolExecutor": creating a thread is expensive; a pool
 * hands each submitted job to a free thread or queues it; a Future is the
 * handle that tracks the job and gives its result).
 *
 *   Python:                                  C:
 *   executor = ThreadPoolExecutor(           conc_executor_t ex;
 *       max_workers=3)                       conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 3});
 *   future1 = executor.submit(fact, 5)       conc_executor_submit(&ex, fact, (void *)5, &future1);
 *   future3 = executor.submit(add, 5, 3)     struct pair p = {5, 3};
 *                                            conc_executor_submit(&ex, add, &p, &future3);
 *   future3.result()                         conc_future_result(future3, CONC_FOREVER, &v);
 *
 * A task is int fn(void *arg, void **result) (conc_fn_t): one argument
 * in, one pointer-sized value out through *result, and 0 returned (a
 * negative CONC_E* code would be its exception). Small integers travel
 * inside the pointer (intptr_t casts); several arguments travel in a
 * struct (Python's *args). The results are read in the lesson's order
 * (3, 1, 2) whatever order the tasks finished in. Futures are reference
 * counted: give yours back with conc_future_release.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

static int fact(void *arg, void **result) {
  intptr_t n = (intptr_t)arg, res = 1;
  for (intptr_t i = 1; i <= n; i++)
    res *= i;
  *result = (void *)res;
  return 0;
}

struct pair {
  intptr_t a, b;
};

static int add(void *arg, void **result) {
  struct pair *p = arg;
  *result = (void *)(p->a + p->b);
  return 0;
}

static intptr_t result_of(conc_future_t *f) {
  void *v = NULL;
  int rc = conc_future_result(f, CONC_FOREVER, &v);
  conc_future_release(f);
  return rc == 0 ? (intptr_t)v : -1;
}

int main(void) {
  conc_executor_t ex;
  conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 3});

  conc_future_t *future1, *future2, *future3;
  struct pair p = {5, 3}; /* lives until the result is read */
  conc_executor_submit(&ex, fact, (void *)(intptr_t)5, &future1);
  conc_executor_submit(&ex, fact, (void *)(intptr_t)10, &future2);
  conc_executor_submit(&ex, add, &p, &future3);

  /* future3.result(), future1.result(), future2.result() */
  intptr_t r3 = result_of(future3);
  intptr_t r1 = result_of(future1);
  intptr_t r2 = result_of(future2);
  printf("(%ld, %ld, %ld)\n", (long)r3, (long)r1, (long)r2);

  conc_executor_destroy(&ex); /* shutdown(wait=True), then free */
  return 0;
}
