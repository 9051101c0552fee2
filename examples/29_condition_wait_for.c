// clang-format off
/*
 * Lesson 29: Condition.wait_for(predicate).
 * Seed 001 ("When working with conditions": ten threads call
 * con.wait_for(condition_func); the predicate is true when the user
 * typed '1').
 *
 * Python:                                 C:
 *   def condition_func():                   static int condition_func(void *arg) {
 *       ret = False                             return answer == 1;  // read under the lock
 *       inp = input('>>>')                  }
 *       if inp == '1': ret = True
 *       return ret
 *   con.acquire()                           conc_condition_acquire(&con);
 *   con.wait_for(condition_func)            conc_condition_wait_for(&con, condition_func, NULL, 1.0);
 *   print("run the thread: %s" % n)         printf("run the thread: %d\n", n);
 *   con.release()                           conc_condition_release(&con);
 *
 * wait_for(pred) checks pred first and waits only while it is false; each
 * notify makes it check again, always with the lock held. A C predicate
 * returns an int: 0 is false, a positive value true, and wait_for returns
 * that value, as Python returns the predicate's result. One deadline
 * covers the whole call: with a timeout it returns 0 (Python: the
 * predicate's false value) once the time is up, however many notifies
 * came in between. (A negative value would be the predicate's error
 * code; wait_for would return it at once.)
 *
 * The lesson's predicate calls input() itself, from ten threads at once.
 * Here main holds the answer (the first argument, "1" by default), stores
 * it under the lock and notifies everyone. With another answer the
 * predicate stays false and the threads give up after their 1 s timeout
 * instead of waiting forever.
 */
// clang-format on
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

static conc_condition_t con = CONC_CONDITION_INIT;
static int answer; /* guarded by con's lock */

static int condition_func(void *arg) {
  (void)arg;
  return answer == 1;
}

static int run(void *arg, void **result) {
  conc_condition_acquire(&con);
  int rc = conc_condition_wait_for(&con, condition_func, NULL, 1.0);
  if (rc > 0)
    printf("run the thread: %d\n", (int)(intptr_t)arg);
  else
    printf("thread %d: gave up (wait_for returned %d)\n", (int)(intptr_t)arg,
           rc);
  conc_condition_release(&con);
  return 0;
}

int main(int argc, char **argv) {
  const char *inp = argc > 1 ? argv[1] : "1";

  /* With the predicate false, a short wait_for times out. */
  conc_condition_acquire(&con);
  double t0 = conc_monotonic();
  int rc = conc_condition_wait_for(&con, condition_func, NULL, 0.1);
  printf("wait_for(pred, 0.1) while pred is false: %d (False) after %s0.1 s\n",
         rc, conc_monotonic() - t0 >= 0.1 ? ">= " : "< ");
  conc_condition_release(&con);

  conc_thread_t threads[10];
  for (int i = 0; i < 10; i++) {
    conc_thread_init(&threads[i], run, (void *)(intptr_t)i, NULL);
    conc_thread_start(&threads[i]);
  }
  conc_sleep(0.05); /* let them start waiting (not needed for correctness) */

  printf(">>>%s\n", inp);
  conc_condition_acquire(&con);
  answer = atoi(inp);
  conc_condition_notify_all(&con);
  conc_condition_release(&con);

  for (int i = 0; i < 10; i++) {
    conc_thread_join(&threads[i], CONC_FOREVER);
    conc_thread_destroy(&threads[i]);
  }

  /* A thread that arrives now checks the predicate before any wait:
   * even a zero timeout returns true. */
  conc_condition_acquire(&con);
  rc = conc_condition_wait_for(&con, condition_func, NULL, 0);
  printf("wait_for(pred, 0) after the answer: %d (%s)\n", rc,
         rc > 0 ? "True" : "False");
  conc_condition_release(&con);
  return 0;
}
