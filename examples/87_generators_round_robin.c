// clang-format off
/*
 * Lesson 87: generators driven round-robin, the idea under the event loop
 * (seed 002, "recall generators").
 *
 * Python:                                    C:
 *   def print_counter():                       static int print_counter(void *arg, void **result) {
 *       counter = 0                              for (int counter = 0;; counter++) {
 *       while True:                                printf("%d\n", counter);
 *           print(counter)                         if ((rc = conc_gen_yield(g, NULL, NULL)))
 *           yield                                    return rc; }   (closed: GeneratorExit)
 *           counter += 1                         }
 *   def main(queue):                           static void step(void *q) {   (a loop callback)
 *       while True:                              gen = pop(q);
 *           gen = queue.pop(0)                   conc_gen_next(gen, NULL);
 *           next(gen)                            push(q, gen);
 *           queue.append(gen)                    conc_loop_call_soon(loop, step, q, NULL); }
 *           sleep(0.5)
 *
 * A generator is a function that stops at each yield and goes on where it
 * stopped at the next next(): a coroutine the caller drives. The seed's
 * main() is a tiny event loop: it takes the first generator from a queue,
 * runs it to its next yield, and puts it at the back. Here the real loop
 * does the driving: each step is a callback that schedules the next step
 * with call_soon, exactly how the loop interleaves tasks (a task's await is
 * its yield). The seed's second generator spins forever between yields
 * when counter % 3 != 0; this one says hi on every third step instead.
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
    if (rc != 0) /* closed: GeneratorExit */
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

typedef struct sched {
  conc_loop_t *loop;
  conc_gen_t *queue[2]; /* a two-slot round-robin queue */
  int steps;
} sched_t;

static void step(void *arg) {
  sched_t *s = arg;
  conc_gen_t *gen = s->queue[0]; /* gen = queue.pop(0) */
  s->queue[0] = s->queue[1];
  conc_gen_next(gen, NULL); /* next(gen) */
  s->queue[1] = gen;        /* queue.append(gen) */
  if (++s->steps < 8)
    conc_loop_call_soon(s->loop, step, s, NULL);
  else
    conc_loop_stop(s->loop);
}

int main(void) {
  conc_gen_t gen_1, gen_2;
  sched_t s = {.steps = 0};
  if (conc_gen_init(&gen_1, print_counter, NULL, NULL) != 0 ||
      conc_gen_init(&gen_2, print_hi, NULL, NULL) != 0 ||
      conc_loop_create(NULL, &s.loop) != 0)
    return 1;
  s.queue[0] = &gen_1;
  s.queue[1] = &gen_2;
  conc_loop_call_soon(s.loop, step, &s, NULL);
  conc_loop_run_forever(s.loop);
  conc_gen_destroy(&gen_1); /* close() each: its yield returns the kill */
  conc_gen_destroy(&gen_2);
  return conc_loop_destroy(s.loop) != 0;
}
