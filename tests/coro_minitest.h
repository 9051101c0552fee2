/*
 * A stand-in for the few cmocka calls tests/test_coro.c makes, so that the
 * coroutine tests also build where cmocka is not installed: the aarch64
 * cross build of scripts/ci.d/coro.sh compiles test_coro.c with
 * -DCONC_TEST_MINI and runs it under qemu-aarch64. Every test runs in order
 * in one process; the first failed assertion prints its place and exits 1.
 */
#ifndef CONC_CORO_MINITEST_H
#define CONC_CORO_MINITEST_H

#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct CMUnitTest {
  const char *name;
  void (*fn)(void **state);
};

#define cmocka_unit_test(f)                                                    \
  { #f, f }

#define mini_fail_(...)                                                        \
  do {                                                                         \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                            \
    fprintf(stderr, __VA_ARGS__);                                              \
    fprintf(stderr, "\n");                                                     \
    exit(1);                                                                   \
  } while (0)

#define assert_true(c)                                                         \
  do {                                                                         \
    if (!(c))                                                                  \
      mini_fail_("assert_true(%s)", #c);                                       \
  } while (0)
#define assert_false(c) assert_true(!(c))
#define assert_null(p) assert_true((p) == NULL)
#define assert_non_null(p) assert_true((p) != NULL)
#define assert_ptr_equal(a, b)                                                 \
  assert_true((const void *)(a) == (const void *)(b))
#define assert_ptr_not_equal(a, b)                                             \
  assert_true((const void *)(a) != (const void *)(b))
#define assert_int_equal(a, b)                                                 \
  do {                                                                         \
    intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);                           \
    if (a_ != b_)                                                              \
      mini_fail_("%jd != %jd (%s, %s)", a_, b_, #a, #b);                       \
  } while (0)
#define assert_int_not_equal(a, b) assert_true((intmax_t)(a) != (intmax_t)(b))
#define assert_in_range(v, lo, hi)                                             \
  assert_true((intmax_t)(v) >= (intmax_t)(lo) &&                               \
              (intmax_t)(v) <= (intmax_t)(hi))
#define assert_string_equal(a, b) assert_true(strcmp((a), (b)) == 0)
#define print_message(...) printf(__VA_ARGS__)
#define print_error(...) fprintf(stderr, __VA_ARGS__)
#define fail() mini_fail_("fail()")
#define fail_msg(...) mini_fail_(__VA_ARGS__)

#define CONC_TEST_MAIN(...)                                                    \
  int main(int argc, char **argv) {                                            \
    const struct CMUnitTest tests_[] = {__VA_ARGS__};                          \
    size_t n_ = sizeof tests_ / sizeof tests_[0], ran_ = 0;                    \
    for (size_t i_ = 0; i_ < n_; i_++) {                                       \
      if (argc > 1 && fnmatch(argv[1], tests_[i_].name, 0) != 0)               \
        continue;                                                              \
      printf("[ RUN      ] %s\n", tests_[i_].name);                            \
      fflush(stdout);                                                          \
      tests_[i_].fn(NULL);                                                     \
      printf("[       OK ] %s\n", tests_[i_].name);                            \
      ran_++;                                                                  \
    }                                                                          \
    printf("[  PASSED  ] %zu test(s).\n", ran_);                               \
    return ran_ ? 0 : 1;                                                       \
  }

#endif
