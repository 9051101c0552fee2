// clang-format off
/*
 * Lesson 30: consumers wait, a producer calls notify_all().
 * Seed 004 ("threading.Condition": consumers c1 and c2 wait on the
 * condition; producer p calls cond.notifyAll()).
 *
 * Python:                                    C:
 *   def consumer(cond):                        static int consumer(void *arg, void **result) {
 *       with cond:                                 CONC_WITH_CONDITION(&condition) {
 *           print("consumer before wait")              printf("consumer before wait\n");
 *           cond.wait()                                conc_condition_wait(&condition, CONC_FOREVER);
 *           print("consumer after wait")               printf("consumer after wait\n"); }
 *                                                  return 0; }
 *   def producer(cond):                        static int producer(void *arg, void **result) {
 *       with cond:                                 CONC_WITH_CONDITION(&condition) {
 *           print("producer before notifyAll")         ...
 *           cond.notifyAll()                           conc_condition_notify_all(&condition);
 *           print("producer after notifyAll")          ... }
 *                                                  return 0; }
 *   c1 = threading.Thread(name="c1",           conc_thread_init(&c1, consumer, NULL,
 *       target=consumer, args=(condition,))        &(conc_thread_opts_t){.name = "c1"});
 *   c1.start(); time.sleep(2); c2.start()      ...
 *
 * wait() releases the condition's lock while it waits and takes it back
 * before returning. So the consumers wake only after the producer has left
 * its `with` block: "producer after notifyAll" always comes before both
 * "consumer after wait" lines.
 *
 * The lesson sleeps 2 s between the starts to let each consumer reach
 * wait(). Sleeping is a guess; here each consumer counts itself as
 * waiting while it holds the lock, and main starts the next thread only
 * once it sees that count (taking the lock itself, which it can only get
 * once the consumer is inside wait()).
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_condition_t condition = CONC_CONDITION_INIT;
static int waiting; /* guarded by the condition's lock */

static int consumer(void *arg, void **result) {
  (void)arg;
  CONC_WITH_CONDITION(&condition) {
    printf("consumer before wait\n");
    waiting++;
    conc_condition_wait(&condition, CONC_FOREVER);
    printf("consumer after wait\n");
  }
  return 0;
}

static int producer(void *arg, void **result) {
  (void)arg;
  CONC_WITH_CONDITION(&condition) {
    printf("producer before notifyAll\n");
    conc_condition_notify_all(&condition);
    printf("producer after notifyAll\n");
  }
  return 0;
}

/* Instead of time.sleep(2): wait until `n` consumers are inside wait(). */
static void until_waiting(int n) {
  for (;;) {
    int now = 0;
    CONC_WITH_CONDITION(&condition) { now = waiting; }
    if (now >= n)
      return;
    conc_sleep(0.001);
  }
}

int main(void) {
  conc_thread_t c1, c2, p;
  conc_thread_init(&c1, consumer, NULL, &(conc_thread_opts_t){.name = "c1"});
  conc_thread_init(&c2, consumer, NULL, &(conc_thread_opts_t){.name = "c2"});
  conc_thread_init(&p, producer, NULL, &(conc_thread_opts_t){.name = "p"});
  conc_thread_start(&c1);
  until_waiting(1);
  conc_thread_start(&c2);
  until_waiting(2);
  conc_thread_start(&p);

  conc_thread_join(&c1, CONC_FOREVER);
  conc_thread_join(&c2, CONC_FOREVER);
  conc_thread_join(&p, CONC_FOREVER);
  conc_thread_destroy(&c1);
  conc_thread_destroy(&c2);
  conc_thread_destroy(&p);
  return 0;
}
