// clang-format off
/*
 * Lesson 80: greenlet's switch ping-pong (seeds 001 and 004).
 *
 * Python:                                C:
 *   from greenlet import greenlet          #include <conc.h>
 *   def test1():                           static int test1(void *arg, void **result) {
 *       print(12)                            puts("12");
 *       gr2.switch()                         conc_coro_switch(gr2, NULL, NULL);
 *       print(34)                            puts("34");
 *       gr2.switch()                         conc_coro_switch(gr2, NULL, NULL);
 *                                            return 0; }
 *   gr1 = greenlet(test1)                  conc_coro_create(&gr1, test1, NULL, NULL);
 *   gr1.switch()                           conc_coro_switch(gr1, NULL, NULL);
 *
 * A coroutine runs only when something switches to it, and runs until it
 * switches away itself: the order of the output is decided by the switches
 * alone, so it is the same on every run. When test2 returns, control goes
 * to its parent, the main coroutine that created it; test1 is left
 * suspended forever (Python collects it: here conc_coro_destroy kills it,
 * which makes its pending switch return CONC_ECANCELED so it can clean up).
 * Every coroutine function has the library's one callable shape: it returns
 * 0 (with the value it finishes with in *result) or a negative code, its
 * exception.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_coro_t *gr1, *gr2;
static const char *seed_numbers[4];

static int test1(void *arg, void **result) {
  (void)arg;
  (void)result;
  puts(seed_numbers[0]);
  conc_coro_switch(gr2, NULL, NULL);
  puts(seed_numbers[2]);
  int rc = conc_coro_switch(gr2, NULL, NULL);
  if (rc == CONC_ECANCELED)
    puts("  (test1 was killed while suspended, as greenlet's GC does)");
  return rc; /* GreenletExit goes on up, as in Python */
}

static int test2(void *arg, void **result) {
  (void)arg;
  (void)result;
  puts(seed_numbers[1]);
  conc_coro_switch(gr1, NULL, NULL);
  puts(seed_numbers[3]);
  return 0; /* back to the parent: main */
}

static int run(const char *a, const char *b, const char *c, const char *d) {
  seed_numbers[0] = a;
  seed_numbers[1] = b;
  seed_numbers[2] = c;
  seed_numbers[3] = d;
  if (conc_coro_create(&gr1, test1, NULL, NULL) != 0 ||
      conc_coro_create(&gr2, test2, NULL, NULL) != 0)
    return 1;
  conc_coro_switch(gr1, NULL, NULL); /* returns when test2 finishes */
  printf("gr2 dead: %s, gr1 dead: %s\n", conc_coro_is_dead(gr2) ? "yes" : "no",
         conc_coro_is_dead(gr1) ? "yes" : "no");
  conc_coro_destroy(gr2);
  conc_coro_destroy(gr1); /* kills the suspended test1 */
  return 0;
}

int main(void) {
  puts("seed 001:");
  if (run("12", "56", "34", "78"))
    return 1;
  puts("seed 004:");
  return run("11", "33", "22", "44");
}
