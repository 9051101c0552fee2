/*
 * Coroutine and generator functions have the one callable shape (conc_fn_t):
 * the value they finish with, their "exception" (a negative code with the
 * conc_raise message) and where each goes; a coroutine's name is its own
 * copy; a destroyed coroutine answers as a dead one.
 */
#include <stdint.h>
#include <string.h>

#include "harness.h"

#include "conc/coro.h"
#include "conc/error.h"

static int raises_value_error(void *arg, void **result) {
  (void)result;
  return conc_raise(CONC_EINVAL, "bad value %d", (int)(intptr_t)arg);
}

/* raise ValueError in a greenlet: the switch that ran it raises */
static void coroutine_exception_is_returned_by_the_switch(void **state) {
  (void)state;
  conc_coro_t co;
  void *out = (void *)1;
  assert_int_equal(conc_coro_init(&co, raises_value_error, (void *)7, NULL), 0);
  assert_int_equal(conc_coro_switch(&co, NULL, &out), CONC_EINVAL);
  assert_null(out);
  assert_string_equal(conc_raised_message(CONC_EINVAL), "bad value 7");
  assert_true(conc_coro_is_dead(&co));
  assert_int_equal(conc_coro_switch(&co, NULL, &out), CONC_EDEAD);
  assert_int_equal(conc_coro_destroy(&co), 0);
}

static int positive_return(void *arg, void **result) {
  (void)arg;
  (void)result;
  return 3;
}

/* a positive return is not a code: it fails as CONC_EFAILED */
static void positive_return_is_EFAILED(void **state) {
  (void)state;
  conc_coro_t co;
  assert_int_equal(conc_coro_init(&co, positive_return, NULL, NULL), 0);
  assert_int_equal(conc_coro_switch(&co, NULL, NULL), CONC_EFAILED);
  assert_int_equal(conc_coro_destroy(&co), 0);
}

static conc_coro_t child;

static int parent_fn(void *arg, void **result) {
  /* waits in this switch for its child's outcome */
  int rc = conc_coro_switch(&child, arg, result);
  return rc == CONC_EBROKEN ? conc_raise(CONC_ESTATE, "child broke") : rc;
}

static int child_fn(void *arg, void **result) {
  (void)arg;
  (void)result;
  return conc_raise(CONC_EBROKEN, "barrier");
}

/* the exception goes to the parent, as greenlet's does, and on up */
static void exception_goes_to_the_parent(void **state) {
  (void)state;
  conc_coro_t par;
  assert_int_equal(conc_coro_init(&par, parent_fn, NULL, NULL), 0);
  assert_int_equal(conc_coro_init(&child, child_fn, NULL,
                                  &(conc_coro_opts_t){.parent = &par}),
                   0);
  assert_int_equal(conc_coro_switch(&par, NULL, NULL), CONC_ESTATE);
  assert_string_equal(conc_raised_message(CONC_ESTATE), "child broke");
  assert_true(conc_coro_is_dead(&child));
  assert_true(conc_coro_is_dead(&par));
  assert_int_equal(conc_coro_destroy(&child), 0);
  assert_int_equal(conc_coro_destroy(&par), 0);
}

static int cleans_up_then_raises(void *arg, void **result) {
  (void)arg;
  (void)result;
  int rc = conc_coro_switch(conc_coro_main(), NULL, NULL);
  if (rc == CONC_ECANCELED) /* GreenletExit: the cleanup itself fails */
    return conc_raise(CONC_EIO, "flush failed");
  return 0;
}

static int swallows_nothing(void *arg, void **result) {
  (void)arg;
  (void)result;
  return conc_coro_switch(conc_coro_main(), NULL, NULL);
}

/* g.throw(): GreenletExit is swallowed, another exception propagates */
static void kill_returns_an_exception_other_than_GreenletExit(void **state) {
  (void)state;
  conc_coro_t a, b;
  assert_int_equal(conc_coro_init(&a, cleans_up_then_raises, NULL, NULL), 0);
  assert_int_equal(conc_coro_init(&b, swallows_nothing, NULL, NULL), 0);
  assert_int_equal(conc_coro_switch(&a, NULL, NULL), 0);
  assert_int_equal(conc_coro_switch(&b, NULL, NULL), 0);
  assert_int_equal(conc_coro_kill(&a), CONC_EIO);
  assert_string_equal(conc_raised_message(CONC_EIO), "flush failed");
  assert_int_equal(conc_coro_kill(&b), 0); /* it returned CONC_ECANCELED */
  assert_true(conc_coro_is_dead(&a) && conc_coro_is_dead(&b));
  assert_int_equal(conc_coro_destroy(&a), 0);
  assert_int_equal(conc_coro_destroy(&b), 0);
}

static int idle(void *arg, void **result) {
  *result = arg;
  return 0;
}

/* greenlet.error, not "another thread", for a destroyed coroutine */
static void switch_to_destroyed_coroutine_is_EDEAD(void **state) {
  (void)state;
  conc_coro_t co;
  assert_int_equal(conc_coro_init(&co, idle, NULL, NULL), 0);
  assert_int_equal(conc_coro_destroy(&co), 0);
  assert_int_equal(conc_coro_switch(&co, NULL, NULL), CONC_EDEAD);
  assert_int_equal(conc_coro_kill(&co), 0);
  assert_true(conc_coro_is_dead(&co));
}

/* opts.name is copied: the caller's buffer may change or go away */
static void name_is_copied_at_init(void **state) {
  (void)state;
  char name[CONC_CORO_NAME_MAX + 16];
  conc_coro_t co, longer;
  strcpy(name, "worker-1");
  assert_int_equal(
      conc_coro_init(&co, idle, NULL, &(conc_coro_opts_t){.name = name}), 0);
  memset(name, 'x', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  assert_string_equal(conc_coro_name(&co), "worker-1");
  /* a longer name is cut to CONC_CORO_NAME_MAX - 1 bytes */
  assert_int_equal(
      conc_coro_init(&longer, idle, NULL, &(conc_coro_opts_t){.name = name}),
      0);
  assert_int_equal(strlen(conc_coro_name(&longer)), CONC_CORO_NAME_MAX - 1);
  assert_int_equal(conc_coro_switch(&co, (void *)1, NULL), 0);
  assert_string_equal(conc_coro_name(&co), "worker-1"); /* dead: still */
  assert_int_equal(conc_coro_destroy(&co), 0);
  assert_int_equal(conc_coro_destroy(&longer), 0);
}

static int yields_then_raises(void *arg, void **result) {
  (void)result;
  conc_gen_t *g = arg;
  int rc = conc_gen_yield(g, (void *)1, NULL);
  if (rc)
    return rc;
  return conc_raise(CONC_EINDEX, "no more");
}

/* a generator's exception comes out of next(); then StopIteration */
static void generator_exception_comes_out_of_next(void **state) {
  (void)state;
  conc_gen_t g;
  void *v;
  assert_int_equal(conc_gen_init(&g, yields_then_raises, NULL, NULL), 0);
  assert_int_equal(conc_gen_next(&g, &v), 0);
  assert_ptr_equal(v, (void *)1);
  assert_int_equal(conc_gen_next(&g, &v), CONC_EINDEX);
  assert_string_equal(conc_raised_message(CONC_EINDEX), "no more");
  assert_int_equal(conc_gen_next(&g, &v), CONC_EEOF);
  assert_int_equal(conc_gen_destroy(&g), 0);
}

CONC_TEST_MAIN(
    cmocka_unit_test(coroutine_exception_is_returned_by_the_switch),
    cmocka_unit_test(positive_return_is_EFAILED),
    cmocka_unit_test(exception_goes_to_the_parent),
    cmocka_unit_test(kill_returns_an_exception_other_than_GreenletExit),
    cmocka_unit_test(switch_to_destroyed_coroutine_is_EDEAD),
    cmocka_unit_test(name_is_copied_at_init),
    cmocka_unit_test(generator_exception_comes_out_of_next))
