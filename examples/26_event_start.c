// clang-format off
/*
 * Lesson 26: an Event as a start signal.
 * Seed 002 ("События": five workers wait on event; main prints "Main
 * thread" and sets it; the workers then print "Worker: wrk i").
 *
 * Python:                               C:
 *   event = Event()                       static conc_event_t event = CONC_EVENT_INIT;
 *   event.wait()                          conc_event_wait(&event, CONC_FOREVER);
 *   event.clear()                         conc_event_clear(&event);
 *   event.set()                           conc_event_set(&event);
 *   event.is_set()                        conc_event_is_set(&event)
 *   event.wait(timeout=0.05) -> False     conc_event_wait(&event, 0.05) == CONC_ETIMEDOUT
 *
 * Every worker blocks in wait() until main calls set(), so "Main thread"
 * always comes first; the workers then run together and print in any order.
 * After set(), waits return at once until clear(); after clear(), a wait
 * with a timeout returns false when the time is up.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_event_t event = CONC_EVENT_INIT;

static int worker(void *arg, void **result) {
  conc_event_wait(&event, CONC_FOREVER);
  printf("Worker: %s\n", (const char *)arg);
  return 0;
}

int main(void) {
  static const char *names[5] = {"wrk 0", "wrk 1", "wrk 2", "wrk 3", "wrk 4"};
  conc_event_clear(&event);
  conc_thread_t workers[5];
  for (int i = 0; i < 5; i++) {
    conc_thread_init(&workers[i], worker, (void *)names[i], NULL);
    conc_thread_start(&workers[i]);
  }
  printf("Main thread\n");
  conc_event_set(&event);
  for (int i = 0; i < 5; i++) {
    conc_thread_join(&workers[i], CONC_FOREVER);
    conc_thread_destroy(&workers[i]);
  }

  printf("is_set() = %s; wait() now returns at once: %s\n",
         conc_event_is_set(&event) ? "True" : "False",
         conc_event_wait(&event, 0) == 0 ? "True" : "False");
  conc_event_clear(&event);
  int rc = conc_event_wait(&event, 0.05);
  printf("after clear(), wait(timeout=0.05): %s\n",
         rc == 0 ? "True" : "False (CONC_ETIMEDOUT)");
  return 0;
}
