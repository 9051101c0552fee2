// clang-format off
/*
 * Lesson 93: the multiprocessing.Pool tour from Python's documentation.
 * Seed 004 ("with Pool(processes=4) as pool: print(pool.map(f, range(10)));
 * for i in pool.imap_unordered(f, range(10)): print(i); res =
 * pool.apply_async(f, (20,)); print(res.get(timeout=1)); res =
 * pool.apply_async(os.getpid, ()); multiple_results = [pool.apply_async(
 * os.getpid, ()) for i in range(4)]; res = pool.apply_async(time.sleep,
 * (10,)); try: print(res.get(timeout=1)) except TimeoutError: ...;
 * print("Now the pool is closed and no longer available")").
 *
 * Python:                                    C:
 *   with Pool(processes=4) as pool:            conc_pool_init(&pool, &(conc_pool_opts_t){.processes = 4});
 *                                              CONC_WITH_POOL(&pool) {
 *       pool.map(f, range(10))                   conc_pool_map(&pool, f, xs, 10, sizeof(int), sizeof(int), NULL, out, NULL);
 *       for i in pool.imap_unordered(f, ...):    conc_pool_imap_unordered(&pool, f, xs, 10, sizeof(int), sizeof(int), 0, &it);
 *           print(i)                             while (conc_imap_next(it, CONC_FOREVER, &v, NULL) == 0) ...
 *       res = pool.apply_async(f, (20,))         conc_pool_apply_async(&pool, f, &twenty, sizeof twenty, sizeof v, NULL, &res);
 *       res.get(timeout=1)                       conc_async_result_get(res, 1.0, &v, sizeof v)
 *       except TimeoutError                        == CONC_ETIMEDOUT
 *   (after the with block)                     }  (terminate() ran; submissions give CONC_ESTATE)
 *
 * Leaving the block terminates the pool as Python's `with` does: the
 * worker still sleeping its 10 s is stopped at once, not waited for.
 * Submitting afterwards fails with CONC_ESTATE, Python's ValueError "Pool
 * not running". The pids differ from run to run, and imap_unordered's
 * order depends on the workers, so the test checks the shape of the output.
 */
// clang-format on
#include <stdio.h>
#include <unistd.h>

#include <conc.h>

static int f(const void *arg, size_t arg_len, void *result, size_t cap,
             size_t *len) {
  (void)arg_len, (void)cap, (void)len;
  int x = *(const int *)arg;
  *(int *)result = x * x;
  return 0;
}

static int getpid_task(const void *arg, size_t arg_len, void *result,
                       size_t cap, size_t *len) {
  (void)arg, (void)arg_len, (void)cap, (void)len;
  *(int *)result = (int)getpid();
  return 0;
}

static int sleep_task(const void *arg, size_t arg_len, void *result, size_t cap,
                      size_t *len) {
  (void)arg_len, (void)result, (void)cap, (void)len;
  conc_sleep(*(const double *)arg);
  return 0;
}

int main(void) {
  conc_pool_t pool;
  conc_pool_init(&pool, &(conc_pool_opts_t){.processes = 4});
  int xs[10], out[10], v;
  for (int i = 0; i < 10; i++)
    xs[i] = i;

  CONC_WITH_POOL(&pool) {
    /* print "[0, 1, 4,..., 81]" */
    conc_pool_map(&pool, f, xs, 10, sizeof(int), sizeof(int), NULL, out, NULL);
    printf("[");
    for (int i = 0; i < 10; i++)
      printf(i ? ", %d" : "%d", out[i]);
    printf("]\n");

    /* print the same numbers in arbitrary order */
    conc_imap_t *it;
    conc_pool_imap_unordered(&pool, f, xs, 10, sizeof(int), sizeof(int), 0,
                             &it);
    while (conc_imap_next(it, CONC_FOREVER, &v, NULL) == 0)
      printf("%d\n", v);
    conc_imap_release(it);

    /* evaluate "f(20)" asynchronously; runs in *only* one process */
    conc_async_result_t *res;
    int twenty = 20;
    conc_pool_apply_async(&pool, f, &twenty, sizeof twenty, sizeof v, NULL,
                          &res);
    conc_async_result_get(res, 1.0, &v, sizeof v);
    printf("%d\n", v); /* prints "400" */
    conc_async_result_release(res);

    /* evaluate "os.getpid()" asynchronously */
    conc_pool_apply_async(&pool, getpid_task, NULL, 0, sizeof v, NULL, &res);
    conc_async_result_get(res, 1.0, &v, sizeof v);
    printf("%d\n", v); /* prints the PID of that process */
    conc_async_result_release(res);

    /* launching multiple evaluations asynchronously *may* use more
     * processes */
    conc_async_result_t *multiple[4];
    for (int i = 0; i < 4; i++)
      conc_pool_apply_async(&pool, getpid_task, NULL, 0, sizeof v, NULL,
                            &multiple[i]);
    printf("[");
    for (int i = 0; i < 4; i++) {
      conc_async_result_get(multiple[i], 1.0, &v, sizeof v);
      printf(i ? ", %d" : "%d", v);
      conc_async_result_release(multiple[i]);
    }
    printf("]\n");

    /* make a single worker sleep for 10 seconds */
    double ten = 10.0;
    conc_pool_apply_async(&pool, sleep_task, &ten, sizeof ten, 0, NULL, &res);
    if (conc_async_result_get(res, 1.0, NULL, 0) == CONC_ETIMEDOUT)
      printf("We lacked patience and got a multiprocessing.TimeoutError\n");
    conc_async_result_release(res);

    printf("For the moment, the pool remains available for more work\n");
  }
  /* exiting the block has stopped the pool */
  printf("Now the pool is closed and no longer available\n");
  int rc =
      conc_pool_apply(&pool, f, &xs[2], sizeof(int), &v, sizeof v, NULL, NULL);
  printf("apply after the with block: %s (Python: ValueError: Pool not "
         "running)\n",
         conc_err_name(rc));
  conc_pool_destroy(&pool);
  return 0;
}
