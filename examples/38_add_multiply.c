// clang-format off
/*
 * Lesson 38: the exercise: two threads, one adds two numbers and the other
 * multiplies them.
 * Seed 000 ("Задание": with the threading module create two threads; one
 * runs a function adding two numbers, the other multiplies two numbers).
 *
 * Python (one solution):                    C:
 *   def add(a, b): results["sum"] = a + b     static int add(void *arg, void **result) {
 *                                                 pair_t *p = arg; p->sum = p->a + p->b; ... }
 *   def mul(a, b): results["product"] = a * b static int mul(void *arg, void **result) { ... }
 *   t1 = Thread(target=add, args=(a, b))      conc_thread_init(&t1, add, &p, NULL);
 *   t2 = Thread(target=mul, args=(a, b))      conc_thread_init(&t2, mul, &p, NULL);
 *   t1.start(); t2.start()                    conc_thread_start(&t1); conc_thread_start(&t2);
 *   t1.join(); t2.join()                      conc_thread_join(&t1, CONC_FOREVER); ...
 *
 * The two numbers come from the command line (default 6 and 7). Both
 * threads read a and b and each writes its own field, so they need no lock;
 * main reads the results after the joins, which make the writes visible.
 */
// clang-format on
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

typedef struct {
  long a, b;         /* args=(a, b) */
  long sum, product; /* one result per thread */
} pair_t;

static int add(void *arg, void **result) {
  pair_t *p = arg;
  p->sum = p->a + p->b;
  return 0;
}

static int mul(void *arg, void **result) {
  pair_t *p = arg;
  p->product = p->a * p->b;
  return 0;
}

int main(int argc, char **argv) {
  pair_t p = {.a = argc > 1 ? atol(argv[1]) : 6,
              .b = argc > 2 ? atol(argv[2]) : 7};
  conc_thread_t t1, t2;
  conc_thread_init(&t1, add, &p, &(conc_thread_opts_t){.target_name = "add"});
  conc_thread_init(&t2, mul, &p, &(conc_thread_opts_t){.target_name = "mul"});
  conc_thread_start(&t1);
  conc_thread_start(&t2);
  conc_thread_join(&t1, CONC_FOREVER);
  conc_thread_join(&t2, CONC_FOREVER);
  printf("%s: %ld + %ld = %ld\n", conc_thread_name(&t1), p.a, p.b, p.sum);
  printf("%s: %ld * %ld = %ld\n", conc_thread_name(&t2), p.a, p.b, p.product);
  conc_thread_destroy(&t1);
  conc_thread_destroy(&t2);
  return 0;
}
