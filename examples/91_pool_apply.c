// clang-format off
/*
 * Lesson 91: Pool with apply, apply_async with a callback, close and join.
 * Seed 001 ("Pool(5); print(pool.apply(Foo,(1,))); print(pool.apply_async(
 * func=Foo, args=(1,)).get()); for i in range(10): pool.apply_async(
 * func=Foo, args=(i,), callback=Bar); print('end'); pool.close();
 * pool.join()", where Foo sleeps 2 s and returns i + 100 and Bar prints).
 *
 * Python:                                    C:
 *   pool = Pool(5)                             conc_pool_init(&pool, &(conc_pool_opts_t){.processes = 5});
 *   print(pool.apply(Foo, (1,)))               conc_pool_apply(&pool, Foo, &one, sizeof one, &r, sizeof r, NULL, NULL);
 *   print(pool.apply_async(func=Foo,           conc_pool_apply_async(&pool, Foo, &one, sizeof one, sizeof r, NULL, &res);
 *             args=(1,)).get())                conc_async_result_get(res, CONC_FOREVER, &r, sizeof r);
 *   pool.apply_async(func=Foo, args=(i,),      conc_pool_apply_async(&pool, Foo, &i, sizeof i, sizeof(int),
 *                    callback=Bar)               &(conc_pool_async_opts_t){.callback = Bar}, NULL);
 *   pool.close(); pool.join()                  conc_pool_close(&pool); conc_pool_join(&pool);
 *
 * apply blocks for the result; apply_async returns at once with a result
 * handle (or with none: NULL, when only the callback matters). The callback
 * runs in the parent, in the pool's result thread, as in Python, so the ten
 * lines come in the order the tasks finish. Foo sleeps 0.2 s instead of 2 s.
 * Without join, Python's program would end before the callbacks; here close
 * + join wait for all of them, and the last line sums what they saw.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int total, calls; /* touched by the callbacks, read after join */

static int Foo(const void *arg, size_t arg_len, void *result, size_t cap,
               size_t *len) {
  (void)arg_len, (void)cap, (void)len;
  conc_sleep(0.2);
  *(int *)result = *(const int *)arg + 100;
  return 0;
}

static void Bar(conc_async_result_t *res, void *arg) {
  (void)arg;
  const int *value = conc_async_result_value(res, NULL);
  printf("%d\n", *value);
  total += *value;
  calls++;
}

int main(void) {
  conc_pool_t pool;
  conc_pool_init(&pool, &(conc_pool_opts_t){.processes = 5});
  int one = 1, r = 0;
  conc_pool_apply(&pool, Foo, &one, sizeof one, &r, sizeof r, NULL, NULL);
  printf("%d\n", r);

  conc_async_result_t *res;
  conc_pool_apply_async(&pool, Foo, &one, sizeof one, sizeof r, NULL, &res);
  conc_async_result_get(res, CONC_FOREVER, &r, sizeof r);
  printf("%d\n", r);
  conc_async_result_release(res);

  for (int i = 0; i < 10; i++)
    conc_pool_apply_async(&pool, Foo, &i, sizeof i, sizeof(int),
                          &(conc_pool_async_opts_t){.callback = Bar}, NULL);
  printf("end\n");
  fflush(stdout); /* the callbacks print from another thread */
  conc_pool_close(&pool);
  conc_pool_join(&pool);
  printf("callbacks: %d, sum of their values: %d\n", calls, total);
  conc_pool_destroy(&pool);
  return 0;
}
