// clang-format off
/*
 * Lesson 31: a Condition with a queue of orders: three order processors
 * and stop messages.
 * Seed 002 ("Условные переменные": order_processor threads wait while the
 * queue is empty, take an order, print it, and stop at "stop"; main puts
 * ten orders and three stops, then calls notify_all()).
 *
 * Python:                                   C:
 *   cv = Condition()                          static conc_condition_t cv = CONC_CONDITION_INIT;
 *   q = Queue()                               a small array FIFO guarded by cv's lock
 *   with cv:                                  CONC_WITH_CONDITION(&cv) {
 *       while q.empty():                          while (q_empty())
 *           cv.wait()                                 conc_condition_wait(&cv, CONC_FOREVER);
 *       order = q.get_nowait()                    const char *order = q_get();
 *       print(f"{name}: {order}")                 printf("%s: %s\n", name, order);
 *       if order == "stop": break                 stop = strcmp(order, "stop") == 0;
 *       sleep(0.1)                                if (!stop) conc_sleep(0.01); }
 *   for i in range(10):                       CONC_WITH_CONDITION(&cv) {
 *       q.put(f"order {i}")                       q_put(order); ...
 *   with cv:
 *       cv.notify_all()                           conc_condition_notify_all(&cv); }
 *
 * The lesson uses queue.Queue only as a container: the Condition does all
 * the waiting. So the queue here is a plain array that is touched only
 * with cv's lock held (lessons 40+ show libconc's real Queue, which needs
 * no Condition at all). Since each processor prints while holding the
 * lock, orders come out in order 0..9 and then the three stops; which
 * processor takes which order varies. Each processor takes exactly one
 * "stop", because it leaves after it.
 *
 * The lesson's `break` inside `with cv:` leaves the block and releases the
 * lock; CONC_WITH_CONDITION's body is a one-shot loop, so `break` there
 * would only leave that block: a flag ends the outer loop instead.
 */
// clang-format on
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <conc.h>

static conc_condition_t cv = CONC_CONDITION_INIT;
static char queue[16][16]; /* guarded by cv's lock */
static int head, tail;

static bool q_empty(void) { return head == tail; }
static void q_put(const char *s) { snprintf(queue[tail++ % 16], 16, "%s", s); }
static const char *q_get(void) { return queue[head++ % 16]; }

static int order_processor(void *arg, void **result) {
  const char *name = arg;
  bool stop = false;
  while (!stop) {
    CONC_WITH_CONDITION(&cv) {
      while (q_empty())
        conc_condition_wait(&cv, CONC_FOREVER);
      const char *order = q_get();
      printf("%s: %s\n", name, order);
      stop = strcmp(order, "stop") == 0;
      if (!stop)
        conc_sleep(0.01); /* sleep(0.1), shortened */
    }
  }
  return 0;
}

int main(void) {
  static const char *names[3] = {"thread 1", "thread 2", "thread 3"};
  conc_thread_t processors[3];
  for (int i = 0; i < 3; i++) {
    conc_thread_init(&processors[i], order_processor, (void *)names[i], NULL);
    conc_thread_start(&processors[i]);
  }
  CONC_WITH_CONDITION(&cv) {
    for (int i = 0; i < 10; i++) {
      char order[16];
      snprintf(order, sizeof order, "order %d", i);
      q_put(order);
    }
    for (int i = 0; i < 3; i++)
      q_put("stop");
    conc_condition_notify_all(&cv);
  }
  for (int i = 0; i < 3; i++) {
    conc_thread_join(&processors[i], CONC_FOREVER);
    conc_thread_destroy(&processors[i]);
  }
  return 0;
}
