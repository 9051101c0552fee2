// clang-format off
/*
 * Lesson 97: lesson 95's factorials with Pool.apply_async and with
 * ProcessPoolExecutor, run across machines with MPI (mpi4py.futures'
 * MPIPoolExecutor). Each init is the one changed line; CONC_MPI_MAIN and
 * CONC_TASK do nothing when the program runs alone.
 *
 *   ./97_executor_mpi                 alone: local worker processes (a notice)
 *   mpirun -np 3 ./97_executor_mpi    rank 0 runs main, ranks 1-2 work
 *
 *   Python (mpi4py.futures)                    C
 *   (pickled by name)                          CONC_TASK(fact, fact);
 *   python -m mpi4py.futures lesson.py         CONC_MPI_MAIN(&argc, &argv);   (first in main)
 *   with Pool() as pool: (multiprocessing)     conc_mpi_pool_init(&pool, NULL);   (was conc_pool_init)
 *     fut1 = pool.apply_async(fact, (100,))      conc_pool_apply_async(&pool, fact, &n1, sizeof n1, CAP, NULL, &r1);
 *   with MPIPoolExecutor() as pool:            conc_mpi_process_executor_init(&ex, NULL);   (was conc_process_executor_init)
 *     fut1 = pool.submit(fact, 100)              conc_process_executor_submit(&ex, fact, &n1, sizeof n1, CAP, &f1);
 *     print(fut1.result(), fut2.result())        conc_process_future_result(f1, CONC_FOREVER, text1, CAP, NULL); ...
 *
 * The AsyncResult and the future are the local ones: get, result,
 * conc_futures_wait and conc_as_completed work unchanged, and the output is
 * the same alone and under mpirun.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>
#include <conc/mpi.h>

#define BASE 1000000000u /* each limb holds 9 decimal digits */
#define LIMBS 64         /* 576 digits: plenty for 199! (373 digits) */
#define CAP 512          /* bytes of decimal text a result may carry */

typedef struct {
  int len;
  uint32_t limb[LIMBS];
} bignum_t;

static void big_mul(bignum_t *b, uint32_t m) {
  uint64_t carry = 0;
  for (int i = 0; i < b->len; i++) {
    uint64_t v = (uint64_t)b->limb[i] * m + carry;
    b->limb[i] = (uint32_t)(v % BASE);
    carry = v / BASE;
  }
  while (carry != 0 && b->len < LIMBS) {
    b->limb[b->len++] = (uint32_t)(carry % BASE);
    carry /= BASE;
  }
}

static int fact(const void *arg, size_t arg_len, void *result, size_t cap,
                size_t *result_len) {
  (void)arg_len;
  int n = *(const int *)arg;
  bignum_t res = {1, {1}};
  for (int i = 1; i < n; i++) /* range(1, n) */
    big_mul(&res, (uint32_t)i);
  char *out = result;
  int len = snprintf(out, cap, "%u", res.limb[res.len - 1]);
  for (int i = res.len - 2; i >= 0 && len >= 0 && (size_t)len < cap; i--)
    len += snprintf(out + len, cap - (size_t)len, "%09u", res.limb[i]);
  *result_len = (size_t)len + 1; /* more than cap: the task fails */
  return 0;
}
CONC_TASK(fact, fact); /* added: the name the ranks agree on */

static int with_pool(void) {
  conc_pool_t pool;
  if (conc_mpi_pool_init(&pool, NULL) != 0) /* the changed line */
    return 1;
  char text1[CAP], text2[CAP];
  int n1 = 100, n2 = 200, rc = 1;
  CONC_WITH_POOL(&pool) {
    conc_async_result_t *fut1, *fut2;
    if (conc_pool_apply_async(&pool, fact, &n1, sizeof n1, CAP, NULL, &fut1))
      break;
    if (conc_pool_apply_async(&pool, fact, &n2, sizeof n2, CAP, NULL, &fut2)) {
      conc_async_result_release(fut1);
      break;
    }
    if (conc_async_result_get(fut1, CONC_FOREVER, text1, CAP) == 0 &&
        conc_async_result_get(fut2, CONC_FOREVER, text2, CAP) == 0) {
      printf("%s %s\n", text1, text2);
      rc = 0;
    }
    conc_async_result_release(fut1);
    conc_async_result_release(fut2);
  }
  conc_pool_destroy(&pool);
  return rc;
}

static int with_executor(void) {
  conc_process_executor_t ex;
  if (conc_mpi_process_executor_init(/* the changed line */
                                     &ex, &(conc_process_executor_opts_t){
                                              .max_workers = 4}) != 0)
    return 1;
  char text1[CAP], text2[CAP];
  int n1 = 100, n2 = 200, rc = 1;
  CONC_WITH_PROCESS_EXECUTOR(&ex) {
    conc_future_t *fut1, *fut2;
    if (conc_process_executor_submit(&ex, fact, &n1, sizeof n1, CAP, &fut1))
      break;
    if (conc_process_executor_submit(&ex, fact, &n2, sizeof n2, CAP, &fut2)) {
      conc_future_release(fut1);
      break;
    }
    if (conc_process_future_result(fut1, CONC_FOREVER, text1, CAP, NULL) == 0 &&
        conc_process_future_result(fut2, CONC_FOREVER, text2, CAP, NULL) == 0) {
      printf("%s %s\n", text1, text2);
      rc = 0;
    }
    conc_future_release(fut1);
    conc_future_release(fut2);
  }
  conc_process_executor_destroy(&ex);
  return rc;
}

int main(int argc, char **argv) {
  if (CONC_MPI_MAIN(&argc, &argv) != 0) /* added: ranks > 0 stay inside */
    return 1;
  if (with_pool() != 0 || with_executor() != 0)
    return 1;
  return 0;
}
