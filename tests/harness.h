/*
 * Shared helpers for the cmocka test programs: a main() that accepts a test
 * filter, timing assertions with the slack rule of spec G2, and small thread
 * helpers.
 */
#ifndef CONC_TEST_HARNESS_H
#define CONC_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "conc/time.h"

/* main() for a test program: CONC_TEST_MAIN(cmocka_unit_test(a), ...).
 * argv[1], when given, is a cmocka filter (a test name or a glob). After a
 * failure the program leaves with _exit: a failed assertion can leave a
 * started child (or thread) that the exit handlers would join forever, and
 * children started with die_with_parent then die with it. */
#define CONC_TEST_MAIN(...)                                                    \
  int main(int argc, char **argv) {                                            \
    const struct CMUnitTest tests_[] = {__VA_ARGS__};                          \
    if (argc > 1)                                                              \
      cmocka_set_test_filter(argv[1]);                                         \
    int failed_ = cmocka_run_group_tests(tests_, NULL, NULL);                  \
    if (failed_) {                                                             \
      fflush(NULL);                                                            \
      _exit(1);                                                                \
    }                                                                          \
    return 0;                                                                  \
  }

/* Slack for an upper bound on a timed wait: max(50 ms, t/2), plus a margin
 * for a loaded 2-core CI machine running sanitizers (CONC_TEST_SLACK, s). */
static inline double conc_test_slack(double t) {
  const char *env = getenv("CONC_TEST_SLACK");
  double extra = env ? atof(env) : 0.5;
  double s = t / 2 > 0.05 ? t / 2 : 0.05;
  return s + extra;
}

/* elapsed >= t and elapsed <= t + slack. */
#define assert_elapsed(elapsed, t)                                             \
  do {                                                                         \
    double e_ = (elapsed), t_ = (t);                                           \
    if (e_ < t_ - 1e-4 || e_ > t_ + conc_test_slack(t_)) {                     \
      print_error("elapsed %.4f s outside [%.3f, %.3f]\n", e_, t_,             \
                  t_ + conc_test_slack(t_));                                   \
      fail();                                                                  \
    }                                                                          \
  } while (0)

/* elapsed is "at once": below the slack of a zero wait. */
#define assert_quick(elapsed) assert_elapsed((elapsed) + 0.0, 0.0)

static inline pthread_t conc_test_spawn(void *(*fn)(void *), void *arg) {
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
  return t;
}

static inline void conc_test_join(pthread_t t) {
  assert_int_equal(pthread_join(t, NULL), 0);
}

#endif
