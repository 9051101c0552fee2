// clang-format off
/*
 * Lesson 32: Timer: call a function after an interval, unless cancelled.
 * Seeds 001 ("2.6 Timer": Timer(1, hello) prints "hello, world" after 1 s)
 * and 002 ("Таймеры": Timer(interval=3, function=lambda: print("Message
 * from Timer!")); cancel() stops it).
 *
 * Python:                               C:
 *   def hello():                          static int hello(void *arg, void **result) {
 *       print("hello, world")                 printf("hello, world\n");
 *                                             return 0; }
 *   t = Timer(1, hello)                   conc_timer_t t;
 *                                         conc_timer_init(&t, 0.2, hello, NULL, NULL);
 *   t.start()                             conc_timer_start(&t);
 *   t.cancel()                            conc_timer_cancel(&t);
 *   t.join(); t.is_alive()                conc_timer_join(&t, CONC_FOREVER); conc_timer_is_alive(&t)
 *
 * A Timer is a Thread that waits for the interval and then calls the
 * function; cancel() during the wait means the function never runs.
 * Intervals are 0.2 s and 0.3 s instead of 1 s and 3 s.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int hello(void *arg, void **result) {
  (void)arg;
  printf("hello, world\n");
  return 0;
}

static int message(void *arg, void **result) {
  (void)arg;
  printf("Message from Timer!\n");
  return 0;
}

int main(void) {
  conc_timer_t t;
  conc_timer_init(&t, 0.2, hello, NULL, NULL);
  double t0 = conc_monotonic();
  conc_timer_start(&t); /* after 0.2 seconds, "hello, world" is printed */
  printf("timer started, alive: %s\n",
         conc_timer_is_alive(&t) ? "True" : "False");
  conc_timer_join(&t, CONC_FOREVER);
  printf("fired after at least 0.2 s: %s\n",
         conc_monotonic() - t0 >= 0.2 ? "yes" : "no");
  printf("a Timer is a Thread named %s\n",
         conc_thread_name(conc_timer_thread(&t)));
  conc_timer_destroy(&t);

  conc_timer_t timer;
  conc_timer_init(&timer, 0.3, message, NULL, NULL);
  conc_timer_start(&timer);
  conc_sleep(0.05);
  conc_timer_cancel(&timer); /* before it fires: message() never runs */
  conc_timer_join(&timer, CONC_FOREVER);
  printf("cancelled after 0.05 s: the message was never printed\n");
  conc_timer_destroy(&timer);
  return 0;
}
