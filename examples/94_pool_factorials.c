// clang-format off
/*
 * Lesson 94: Pool.apply_async computing two big factorials.
 * Seed 003 ("def fact(n): res = 1; for i in range(1, n): res *= i;
 * return res; with Pool() as pool: fut1 = pool.apply_async(fact,
 * args=(100,)); fut2 = pool.apply_async(fact, args=(200,));
 * print(fut1.get(), fut2.get())").
 *
 * Python:                                    C:
 *   with Pool() as pool:                       conc_pool_init(&pool, NULL); CONC_WITH_POOL(&pool) {
 *       fut1 = pool.apply_async(fact,            conc_pool_apply_async(&pool, fact, &n1, sizeof n1, sizeof text1,
 *                               args=(100,))                           NULL, &fut1);
 *       print(fut1.get(), fut2.get())            conc_async_result_get(fut1, CONC_FOREVER, text1, sizeof text1); ...
 *
 * Note that range(1, n) stops before n, so the lesson prints 99! and 199!.
 * Python's int is unbounded and pickles to the parent; in C the worker
 * multiplies a small big number (base 10^9 limbs) and sends back its
 * decimal text. A result crosses as bytes of a declared capacity (here 512):
 * the task writes the text and stores its length in *result_len; a result
 * that needed more room would fail that task alone with CONC_EMSGSIZE.
 * Pool() with no options starts one worker per CPU.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <conc.h>

#define BASE 1000000000u /* each limb holds 9 decimal digits */
#define LIMBS 64         /* 576 digits: plenty for 199! (373 digits) */

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

int main(void) {
  conc_pool_t pool;
  if (conc_pool_init(&pool, NULL) != 0)
    return 1;
  char text1[512], text2[512];
  CONC_WITH_POOL(&pool) {
    int n1 = 100, n2 = 200;
    conc_async_result_t *fut1, *fut2;
    conc_pool_apply_async(&pool, fact, &n1, sizeof n1, sizeof text1, NULL,
                          &fut1);
    conc_pool_apply_async(&pool, fact, &n2, sizeof n2, sizeof text2, NULL,
                          &fut2);
    conc_async_result_get(fut1, CONC_FOREVER, text1, sizeof text1);
    conc_async_result_get(fut2, CONC_FOREVER, text2, sizeof text2);
    printf("%s %s\n", text1, text2);
    conc_async_result_release(fut1);
    conc_async_result_release(fut2);
  }
  conc_pool_destroy(&pool);
  return 0;
}
