// clang-format off
/*
 * Lesson 14: join() and is_alive().
 * Seed 000 (arf: sleep then print 10, joined; is_alive before and after).
 *
 * Python:                                    C:
 *   t = threading.Thread(target=arf,           conc_thread_init(&t, arf, &delay, NULL);
 *                        args=(5,))
 *   t.start()                                  conc_thread_start(&t);
 *   t.join()                                   conc_thread_join(&t, CONC_FOREVER);
 *   t.is_alive()                               conc_thread_is_alive(&t)
 *   t.join(0.01)  # returns, t still alive     conc_thread_join(&t, 0.01) == CONC_ETIMEDOUT
 *
 * join() waits for the thread to end, so "10" is printed before "joined".
 * is_alive() is false before start, true while the target runs, and false
 * once it has returned. A join with a timeout returns when the time is up
 * even if the thread still runs (Python returns None and you must ask
 * is_alive(); libconc also says so in the result: CONC_ETIMEDOUT).
 * Joining a thread that was never started is Python's RuntimeError.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int arf(void *arg, void **result) {
  conc_sleep(*(const double *)arg);
  printf("10\n");
  return 0;
}

static int sleeper(void *arg, void **result) {
  conc_sleep(*(const double *)arg); /* target=time.sleep, args=(5,) */
  return 0;
}

static const char *yes_no(bool b) { return b ? "True" : "False"; }

int main(void) {
  /* t = Thread(target=arf, args=(5,)); t.start(); t.join() */
  double delay = 0.1;
  conc_thread_t t;
  conc_thread_init(&t, arf, &delay, NULL);
  conc_thread_start(&t);
  conc_thread_join(&t, CONC_FOREVER);
  printf("joined\n");
  conc_thread_destroy(&t);

  /* is_alive() before start, while running, after join */
  double nap = 0.2;
  conc_thread_t s;
  conc_thread_init(&s, sleeper, &nap, NULL);
  printf("before start: %s\n", yes_no(conc_thread_is_alive(&s)));
  int rc = conc_thread_join(&s, CONC_FOREVER);
  printf("join before start: %s (Python's %s)\n", conc_err_name(rc),
         conc_err_python(rc));
  conc_thread_start(&s);
  printf("after start: %s\n", yes_no(conc_thread_is_alive(&s)));
  rc = conc_thread_join(&s, 0.01);
  printf("join(0.01): %s, still alive: %s\n", conc_err_name(rc),
         yes_no(conc_thread_is_alive(&s)));
  conc_thread_join(&s, CONC_FOREVER);
  printf("after join: %s\n", yes_no(conc_thread_is_alive(&s)));
  conc_thread_destroy(&s);
  return 0;
}
