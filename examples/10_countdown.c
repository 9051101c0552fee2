// clang-format off
/*
 * Lesson 10: a countdown thread with a target and arguments.
 * Seed 000 ("Thread(target=countdown, args=(3,))").
 *
 * Python:                                   C:
 *   def countdown(n):                         static int countdown(void *arg, void **result) {
 *       for i in range(n):                        int n = *(int *)arg;
 *           print(n - i - 1, "left")              for (int i = 0; i < n; i++) {
 *           time.sleep(1)                             printf("%d left\n", n - i - 1);
 *                                                     conc_sleep(0.1); }
 *                                                 return 0; }
 *   t = threading.Thread(target=countdown,    conc_thread_t t;
 *                        args=(3,))           conc_thread_init(&t, countdown, &n, NULL);
 *   t.start()                                 conc_thread_start(&t);
 *                                             conc_thread_join(&t, CONC_FOREVER);
 *
 * A C target takes one void * argument; where Python passes a tuple, pass a
 * pointer to the value (or to a struct of values). The argument must stay
 * valid while the thread uses it: here it lives in main, which joins.
 *
 * The Python notebook never joined: the interpreter waits for non-daemon
 * threads at exit. libconc does the same at exit, but joining is clearer.
 * (The lesson sleeps 1 s per step; 0.1 s keeps the tour quick.)
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int countdown(void *arg, void **result) {
  int n = *(const int *)arg;
  for (int i = 0; i < n; i++) {
    printf("%d left\n", n - i - 1);
    conc_sleep(0.1);
  }
  return 0;
}

int main(void) {
  int n = 3;
  conc_thread_t t;
  conc_thread_init(&t, countdown, &n, NULL);
  conc_thread_start(&t);
  conc_thread_join(&t, CONC_FOREVER);
  conc_thread_destroy(&t);
  return 0;
}
