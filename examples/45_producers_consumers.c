// clang-format off
/*
 * Lesson 45: producer/consumer with 12 producers and 10 consumers.
 * Seed 004 ("queue 队列": que = queue.Queue(10); twelve threads run s(i),
 * which puts i; ten threads run x(i), which gets one item and prints
 * "get: N"; finally print("size:", que.qsize()) shows 2).
 *
 * Python:                                   C:
 *   que = queue.Queue(10)                     conc_queue_init(&que, &(conc_queue_opts_t){.maxsize = 10});
 *   def s(i): que.put(i)                      conc_queue_put(&que, arg, true, CONC_FOREVER);
 *   def x(i): g = que.get(i)                  conc_queue_get(&que, &g, arg != NULL, CONC_FOREVER);
 *       print("get:", g)                      printf("get: %ld\n", (long)(intptr_t)g);
 *   print("size:", que.qsize())               printf("size: %ld\n", conc_queue_qsize(&que));
 *
 * (In the lesson, que.get(i) passes i as `block`: any non-zero i means
 * True.) Twelve items go into a queue of ten: two producers block until
 * consumers make room. Ten items leave, two stay. The lesson prints the
 * size right away, which races with the threads; here main joins all
 * threads first, so the size is always 2. Which numbers the consumers get,
 * and in which order they print, varies from run to run.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

static conc_queue_t que;
static conc_lock_t print_lock = CONC_LOCK_INIT;

static int s(void *arg, void **result) {
  conc_queue_put(&que, arg, true, CONC_FOREVER);
  return 0;
}

static int x(void *arg, void **result) {
  void *g;
  conc_queue_get(&que, &g, arg != NULL, CONC_FOREVER);
  CONC_WITH_LOCK(&print_lock) { printf("get: %ld\n", (long)(intptr_t)g); }
  return 0;
}

int main(void) {
  conc_queue_init(&que, &(conc_queue_opts_t){.maxsize = 10});
  conc_thread_t producers[12], consumers[10];
  for (intptr_t i = 1; i <= 12; i++) {
    conc_thread_init(&producers[i - 1], s, (void *)i, NULL);
    conc_thread_start(&producers[i - 1]);
  }
  for (intptr_t i = 1; i <= 10; i++) {
    conc_thread_init(&consumers[i - 1], x, (void *)i, NULL);
    conc_thread_start(&consumers[i - 1]);
  }
  for (int i = 0; i < 12; i++) {
    conc_thread_join(&producers[i], CONC_FOREVER);
    conc_thread_destroy(&producers[i]);
  }
  for (int i = 0; i < 10; i++) {
    conc_thread_join(&consumers[i], CONC_FOREVER);
    conc_thread_destroy(&consumers[i]);
  }
  printf("size: %ld\n", conc_queue_qsize(&que));
  conc_queue_destroy(&que);
  return 0;
}
