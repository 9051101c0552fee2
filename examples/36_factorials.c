// clang-format off
/*
 * Lesson 36: two threads compute 5! and 100!.
 * Seed 003 ("Создание потоков": foo(n, thread_num) multiplies 1..n and
 * prints 'Thread {}: {}'; threads for foo(5, 1) and foo(100, 2), both
 * joined).
 *
 * Python:                                    C:
 *   def foo(n, thread_num):                    static int foo(void *arg, void **result) {
 *       res = 1                                    bignum_t res = {1, {1}};
 *       for i in range(1, n + 1):                  for (int i = 1; i <= job->n; i++)
 *           res *= i                                   big_mul(&res, i);
 *       print('Thread {}: {}\n'.format(...))       big_format(&res, job->text);
 *                                                  return 0; }
 *   thread1 = threading.Thread(target=foo,     job_t jobs[2] = {{5, 1}, {100, 2}};
 *                              args=(5, 1))    conc_thread_init(&t1, foo, &jobs[0], NULL);
 *   thread1.start(); thread2.start()           conc_thread_start(&t1); ...
 *   thread1.join(); thread2.join()             conc_thread_join(&t1, CONC_FOREVER); ...
 *
 * Python's int grows without limit; C's largest integer holds 20! at most,
 * so 100! (158 digits) needs a small big-number multiply: base 10^9
 * "digits", each multiplied by i with a carry. Two values go into the
 * thread through one struct. Each thread stores its text and main prints
 * after the joins, so the lines always come in the same order. Without a
 * GIL the two computations really run at the same time on two cores
 * (lesson 37 measures that).
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

#define BASE 1000000000u /* each limb holds 9 decimal digits */
#define LIMBS 64         /* 576 digits: plenty for 100! */

typedef struct {
  int len; /* limbs in use, least significant first */
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

static void big_format(const bignum_t *b, char *out, size_t size) {
  int n = snprintf(out, size, "%u", b->limb[b->len - 1]);
  for (int i = b->len - 2; i >= 0 && n > 0 && (size_t)n < size; i--)
    n += snprintf(out + n, size - (size_t)n, "%09u", b->limb[i]);
}

typedef struct {
  int n, thread_num; /* args=(n, thread_num) */
  char text[640];    /* what the thread would print */
} job_t;

static int foo(void *arg, void **result) {
  job_t *job = arg;
  bignum_t res = {1, {1}};
  for (int i = 1; i <= job->n; i++)
    big_mul(&res, (uint32_t)i);
  char digits[600];
  big_format(&res, digits, sizeof digits);
  snprintf(job->text, sizeof job->text, "Thread %d: %s\n", job->thread_num,
           digits);
  return 0;
}

int main(void) {
  job_t jobs[2] = {{.n = 5, .thread_num = 1}, {.n = 100, .thread_num = 2}};
  conc_thread_t thread1, thread2;
  conc_thread_init(&thread1, foo, &jobs[0], NULL);
  conc_thread_init(&thread2, foo, &jobs[1], NULL);
  conc_thread_start(&thread1);
  conc_thread_start(&thread2);
  conc_thread_join(&thread1, CONC_FOREVER);
  conc_thread_join(&thread2, CONC_FOREVER);
  printf("%s\n%s\n", jobs[0].text, jobs[1].text);
  conc_thread_destroy(&thread1);
  conc_thread_destroy(&thread2);
  return 0;
}
