/*
 * Lesson 82: generators driven round-robin, the idea under every event loop
 * (seed 002, "Вспомним генераторы").
 *
 * Python:                                  C:
 *   def print_counter():                     static void *print_counter(void
 * *arg) { counter = 0                            conc_gen_t *g = arg; while
 * True:                            for (int counter = 0;; counter++) {
 *           print(counter)                       printf("%d\n", counter);
 *           yield                                if (conc_gen_yield(g, NULL,
 * NULL)) counter += 1                           return NULL;  (closed) gen =
 * queue.pop(0)                       conc_gen_t *gen = queue[head]; next(gen)
 * conc_gen_next(gen, NULL); queue.append(gen) queue[tail] = gen;
 *
 * A generator is a coroutine whose function hands each value back to the
 * caller of next(). The lesson's main loop runs forever; this one stops
 * after ten turns and closes the generators (gen.close(): their pending
 * yield returns CONC_ECANCELED, Python's GeneratorExit). The lesson's
 * print_hi forgets to yield when it prints nothing; here it yields every
 * turn and prints every third one, as the lesson meant. A generator that
 * returns ends the iteration: next() gives CONC_EEOF (StopIteration).
 */
#include <stdio.h>

#include <conc.h>

static void *print_counter(void *arg) {
  conc_gen_t *g = arg;
  for (int counter = 0;; counter++) {
    printf("%d\n", counter);
    if (conc_gen_yield(g, NULL, NULL) != 0)
      return NULL;
  }
}

static void *print_hi(void *arg) {
  conc_gen_t *g = arg;
  for (int counter = 0;; counter++) {
    if (counter % 3 == 0)
      puts("Hi from second generator");
    if (conc_gen_yield(g, NULL, NULL) != 0)
      return NULL;
  }
}

/* for i in range(n): yield i * i */
static void *squares(void *arg) {
  conc_gen_t *g = arg;
  for (long i = 0; i < 4; i++)
    conc_gen_yield(g, (void *)(i * i), NULL);
  return NULL;
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
