// clang-format off
/*
 * Lesson 90: Pool.map doubles [5, 10, 20] in three worker processes.
 * Seed 000 (the multiprocessing part: "numbers = [5, 10, 20];
 * pool = Pool(processes=3); print(pool.map(doubler, numbers))").
 *
 * Python:                                    C:
 *   def doubler(number):                       static int doubler(const void *arg, size_t arg_len, void *result,
 *       return number * 2                                         size_t result_cap, size_t *result_len) {
 *                                                *(int *)result = *(const int *)arg * 2; return 0; }
 *   numbers = [5, 10, 20]                      int numbers[] = {5, 10, 20}, out[3];
 *   pool = Pool(processes=3)                   conc_pool_init(&pool, &(conc_pool_opts_t){.processes = 3});
 *   print(pool.map(doubler, numbers))          conc_pool_map(&pool, doubler, numbers, 3, sizeof(int), sizeof(int),
 *                                                            NULL, out, NULL);
 *
 * The workers are forks of this program, so doubler is an ordinary function
 * pointer. Python pickles each number to the worker and the result back; in
 * C each argument and each result is a fixed number of bytes copied through
 * memory shared with the workers. map hands the results back in input order
 * whichever worker finished first.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int doubler(const void *arg, size_t arg_len, void *result,
                   size_t result_cap, size_t *result_len) {
  (void)arg_len, (void)result_cap, (void)result_len; /* fixed sizes here */
  *(int *)result = *(const int *)arg * 2;
  return 0; /* success; a negative CONC_E* code would be the task's error */
}

int main(void) {
  int numbers[] = {5, 10, 20}, out[3];
  conc_pool_t pool;
  if (conc_pool_init(&pool, &(conc_pool_opts_t){.processes = 3}) != 0)
    return 1;
  int rc = conc_pool_map(&pool, doubler, numbers, 3, sizeof(int), sizeof(int),
                         NULL, out, NULL);
  if (rc != 0)
    return 1;
  printf("[%d, %d, %d]\n", out[0], out[1], out[2]);
  /* Python leaves the pool to the garbage collector; C closes it. */
  conc_pool_close(&pool);
  conc_pool_join(&pool);
  conc_pool_destroy(&pool);
  return 0;
}
