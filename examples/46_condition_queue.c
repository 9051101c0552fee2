// clang-format off
/*
 * Lesson 46: a Condition with a Queue: three order processors and stop
 * messages, this time with libconc's real Queue.
 * Seed 002 ("Условные переменные": order_processor threads wait on cv
 * while q is empty, take an order with q.get_nowait(), print it and stop
 * at "stop"; main puts ten orders and three stops, then notify_all()).
 *
 * Python:                                   C:
 *   cv = Condition(); q = Queue()             static conc_condition_t cv = CONC_CONDITION_INIT;
 *                                             conc_queue_init(&q, NULL);
 *   with cv:                                  CONC_WITH_CONDITION(&cv) {
 *       while q.empty(): cv.wait()                while (conc_queue_empty(&q))
 *                                                     conc_condition_wait(&cv, CONC_FOREVER);
 *       order = q.get_nowait()                    conc_queue_get_nowait(&q, &order);
 *       print(f"{name}: {order}")                 printf("%s: %s\n", name, (char *)order);
 *       if order == "stop": break                 stop = strcmp(order, "stop") == 0;
 *       sleep(0.1)                                if (!stop) conc_sleep(0.01); }
 *   q.put(f"order {i}")                       conc_queue_put(&q, orders[i], true, CONC_FOREVER);
 *   with cv: cv.notify_all()                  CONC_WITH_CONDITION(&cv) { conc_condition_notify_all(&cv); }
 *
 * Lesson 31 ran the same program with a plain array. With a Queue, the
 * Condition is only the lesson's "wake me when there is work": the Queue
 * is thread-safe by itself, and a blocking conc_queue_get would do that
 * waiting alone (lesson 43). Orders are taken and printed under cv's lock,
 * so they come out in order; which processor takes which varies.
 * `break` inside CONC_WITH_CONDITION only leaves that block, so a flag
 * ends the loop.
 */
// clang-format on
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <conc.h>

static conc_condition_t cv = CONC_CONDITION_INIT;
static conc_queue_t q;

static int order_processor(void *arg, void **result) {
  const char *name = arg;
  bool stop = false;
  while (!stop) {
    CONC_WITH_CONDITION(&cv) {
      while (conc_queue_empty(&q))
        conc_condition_wait(&cv, CONC_FOREVER);
      void *order;
      if (conc_queue_get_nowait(&q, &order) == 0) {
        printf("%s: %s\n", name, (char *)order);
        fflush(stdout);
        stop = strcmp(order, "stop") == 0;
      }
      if (!stop)
        conc_sleep(0.01);
    }
  }
  return 0;
}

int main(void) {
  static const char *names[] = {"thread 1", "thread 2", "thread 3"};
  static char orders[10][16];
  conc_queue_init(&q, NULL);
  conc_thread_t t[3];
  for (int i = 0; i < 3; i++) {
    conc_thread_init(&t[i], order_processor, (void *)names[i], NULL);
    conc_thread_start(&t[i]);
  }
  for (int i = 0; i < 10; i++) {
    snprintf(orders[i], sizeof orders[i], "order %d", i);
    conc_queue_put(&q, orders[i], true, CONC_FOREVER);
  }
  for (int i = 0; i < 3; i++)
    conc_queue_put(&q, "stop", true, CONC_FOREVER);
  CONC_WITH_CONDITION(&cv) { conc_condition_notify_all(&cv); }
  for (int i = 0; i < 3; i++) {
    conc_thread_join(&t[i], CONC_FOREVER);
    conc_thread_destroy(&t[i]);
  }
  conc_queue_destroy(&q);
  return 0;
}
