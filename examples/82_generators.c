// clang-format off
/*
 * Lesson 82: generators driven round-robin, the idea under every event loop
 * (seed 002, "Вспомним генераторы").
 *
 * Python:                                  C:
 *   def print_counter():                     static int print_counter(void *arg, void **result) {
 *       counter = 0                              conc_gen_t *g = arg; int rc;
 *       while True:                              for (int counter = 0;; counter++) {
 *           print(counter)                           printf("%d\n", counter);
 *           yield                                    if ((rc = conc_gen_yield(g, NULL, NULL)))
 *           counter += 1                                 return rc;  (closed: GeneratorExit)
 *   gen = queue.pop(0)                       conc_gen_t *gen = queue[head];
 *   next(gen)                                conc_gen_next(gen, NULL);
 *   queue.append(gen)                        queue[tail] = gen;
 *
 * A generator is a coroutine whose function hands each value back to the
 * caller of next(). The lesson's main loop runs forever; this one stops
 * after ten turns and closes the generators (gen.close(): their pending
 * yield returns CONC_ECANCELED, Python's GeneratorExit). The lesson's
 * print_hi forgets to yield when it prints nothing; here it yields every
 * turn and prints every third one, as the lesson meant. A generator that
 * returns ends the iteration: next() gives CONC_EEOF (StopIteration).
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int print_counter(void *arg, void **result) {
  (void)result;
  conc_gen_t *g = arg;
  for (int counter = 0;; counter++) {
    printf("%d\n", counter);
    int rc = conc_gen_yield(g, NULL, NULL);
    if (rc != 0)
      return rc;
  }
}

static int print_hi(void *arg, void **result) {
  (void)result;
  conc_gen_t *g = arg;
  for (int counter = 0;; counter++) {
    if (counter % 3 == 0)
      puts("Hi from second generator");
    int rc = conc_gen_yield(g, NULL, NULL);
    if (rc != 0)
      return rc;
  }
}

/* for i in range(n): yield i * i */
static int squares(void *arg, void **result) {
  (void)result;
  conc_gen_t *g = arg;
  for (long i = 0; i < 4; i++) {
    int rc = conc_gen_yield(g, (void *)(i * i), NULL);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int main(void) {
  conc_gen_t gen_1, gen_2;
  if (conc_gen_init(&gen_1, print_counter, NULL, NULL) != 0 ||
      conc_gen_init(&gen_2, print_hi, NULL, NULL) != 0)
    return 1;

  /* gen_queue = [gen_1, gen_2]; main(gen_queue), for ten turns */
  conc_gen_t *queue[2] = {&gen_1, &gen_2};
  for (int turn = 0; turn < 10; turn++) {
    conc_gen_t *gen = queue[0];
    conc_gen_next(gen, NULL);
    queue[0] = queue[1];
    queue[1] = gen;
  }
  conc_gen_destroy(&gen_1); /* closes it first */
  conc_gen_destroy(&gen_2);

  /* for x in squares(): print(x) */
  conc_gen_t sq;
  void *x;
  if (conc_gen_init(&sq, squares, NULL, NULL) != 0)
    return 1;
  printf("squares:");
  while (conc_gen_next(&sq, &x) == 0)
    printf(" %ld", (long)x);
  printf(" (then %s, Python's StopIteration)\n",
         conc_err_name(conc_gen_next(&sq, &x)));
  conc_gen_destroy(&sq);
  return 0;
}
