/* Timer tests (spec TM1, TM2). */
#include "harness.h"

#include <string.h>

#include "conc.h"
#include "platform-int.h"

struct fire {
  uint32_t calls;
  double at;
  unsigned long ident;
  int tag;
};

static int fire(void *arg, void **result) {
  struct fire *f = arg;
  f->at = conc_monotonic();
  f->ident = conc_get_ident();
  conc__fetch_add(&f->calls, 1);
  *result = f;
  return 0;
}

/* TM1 */
static void
timer_calls_fn_once_after_the_interval_in_its_own_thread(void **state) {
  (void)state;
  struct fire f = {0};
  conc_timer_t tm;
  assert_int_equal(conc_timer_init(&tm, 0.2, fire, &f, NULL), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_timer_start(&tm), 0);
  assert_int_equal(conc_timer_join(&tm, CONC_FOREVER), 0);
  assert_int_equal(f.calls, 1);
  assert_elapsed(f.at - t0, 0.2);
  assert_int_equal(f.ident, conc_thread_ident(conc_timer_thread(&tm)));
  assert_int_not_equal(f.ident, conc_get_ident());
  void *res = NULL;
  assert_int_equal(conc_thread_result(conc_timer_thread(&tm), &res), 0);
  assert_ptr_equal(res, &f);
  assert_int_equal(conc_timer_destroy(&tm), 0);
}

/* TM1: each timer has its own function argument. */
static void each_timer_keeps_its_own_argument(void **state) {
  (void)state;
  struct fire a = {.tag = 1}, b = {.tag = 2};
  conc_timer_t ta, tb;
  conc_timer_init(&ta, 0.01, fire, &a, NULL);
  conc_timer_init(&tb, 0.01, fire, &b, NULL);
  conc_timer_start(&ta);
  conc_timer_start(&tb);
  conc_timer_join(&ta, CONC_FOREVER);
  conc_timer_join(&tb, CONC_FOREVER);
  assert_int_equal(a.calls, 1);
  assert_int_equal(b.calls, 1);
  assert_int_not_equal(a.ident, b.ident);
  conc_timer_destroy(&ta);
  conc_timer_destroy(&tb);
}

/* TM2: cancel before expiry: fn never runs and the thread ends promptly. */
static void cancel_before_expiry_means_never_and_ends_promptly(void **state) {
  (void)state;
  struct fire f = {0};
  conc_timer_t tm;
  conc_timer_init(&tm, 10.0, fire, &f, NULL);
  conc_timer_start(&tm);
  assert_true(conc_timer_is_alive(&tm));
  assert_int_equal(conc_timer_join(&tm, 0.05), CONC_ETIMEDOUT);
  double t0 = conc_monotonic();
  assert_int_equal(conc_timer_cancel(&tm), 0);
  assert_int_equal(conc_timer_join(&tm, 5.0), 0);
  assert_quick(conc_monotonic() - t0);
  assert_false(conc_timer_is_alive(&tm));
  assert_int_equal(f.calls, 0);
  void *res = (void *)1;
  assert_int_equal(conc_thread_result(conc_timer_thread(&tm), &res), 0);
  assert_null(res);
  conc_timer_destroy(&tm);
}

/* TM2: a cancel after fn ran changes nothing. */
static void cancel_after_firing_does_nothing(void **state) {
  (void)state;
  struct fire f = {0};
  conc_timer_t tm;
  conc_timer_init(&tm, 0.0, fire, &f, NULL);
  conc_timer_start(&tm);
  conc_timer_join(&tm, CONC_FOREVER);
  assert_int_equal(conc_timer_cancel(&tm), 0);
  assert_int_equal(conc_timer_cancel(&tm), 0);
  assert_int_equal(f.calls, 1);
  void *res = NULL;
  conc_thread_result(conc_timer_thread(&tm), &res);
  assert_ptr_equal(res, &f);
  conc_timer_destroy(&tm);
}

/* TM2: cancelled before start: started, it ends at once without calling. */
static void cancel_before_start_never_fires(void **state) {
  (void)state;
  struct fire f = {0};
  conc_timer_t tm;
  conc_timer_init(&tm, 0.0, fire, &f, NULL);
  conc_timer_cancel(&tm);
  conc_timer_start(&tm);
  assert_int_equal(conc_timer_join(&tm, 5.0), 0);
  assert_int_equal(f.calls, 0);
  conc_timer_destroy(&tm);
}

/* TM1: a negative interval fires at once (Event.wait polls). */
static void negative_interval_fires_at_once(void **state) {
  (void)state;
  struct fire f = {0};
  conc_timer_t tm;
  assert_int_equal(conc_timer_init(&tm, -1.0, fire, &f, NULL), 0);
  double t0 = conc_monotonic();
  conc_timer_start(&tm);
  conc_timer_join(&tm, CONC_FOREVER);
  assert_int_equal(f.calls, 1);
  assert_quick(f.at - t0);
  conc_timer_destroy(&tm);
}

/* TM2: a Timer is a Thread: name, repr, start twice, options. */
static void timer_is_a_thread(void **state) {
  (void)state;
  struct fire f = {0};
  conc_timer_t tm, named;
  conc_timer_init(&tm, 10.0, fire, &f, NULL);
  unsigned n = 0;
  assert_int_equal(
      sscanf(conc_thread_name(conc_timer_thread(&tm)), "Thread-%u", &n), 1);
  char buf[128], want[128];
  conc_thread_repr(conc_timer_thread(&tm), buf, sizeof buf);
  snprintf(want, sizeof want, "<Timer(Thread-%u, initial)>", n);
  assert_string_equal(buf, want);
  assert_int_equal(conc_timer_join(&tm, 1.0), CONC_ENOTSTARTED);
  assert_int_equal(conc_timer_start(&tm), 0);
  assert_int_equal(conc_timer_start(&tm), CONC_ESTATE);
  assert_int_equal(conc_timer_destroy(&tm), CONC_EBUSY);
  conc_timer_cancel(&tm);
  conc_timer_join(&tm, CONC_FOREVER);
  conc_timer_destroy(&tm);
  conc_timer_init(&named, 0.0, fire, &f,
                  &(conc_timer_opts_t){.name = "tick", .daemon = true});
  assert_string_equal(conc_thread_name(conc_timer_thread(&named)), "tick");
  assert_true(conc_thread_daemon(conc_timer_thread(&named)));
  conc_timer_destroy(&named);
}

static void bad_arguments_are_rejected(void **state) {
  (void)state;
  conc_timer_t tm;
  assert_int_equal(conc_timer_init(NULL, 1.0, fire, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_timer_init(&tm, 1.0, NULL, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_timer_init(&tm, 0.0 / 0.0, fire, NULL, NULL),
                   CONC_EINVAL);
  assert_int_equal(conc_timer_start(NULL), CONC_EINVAL);
  assert_int_equal(conc_timer_cancel(NULL), CONC_EINVAL);
  assert_int_equal(conc_timer_join(NULL, 1.0), CONC_EINVAL);
  assert_false(conc_timer_is_alive(NULL));
  assert_null(conc_timer_thread(NULL));
  assert_int_equal(conc_timer_destroy(NULL), CONC_EINVAL);
}

static int fail_in_timer(void *arg, void **result) {
  (void)arg;
  return conc_raise(CONC_ETIMEDOUT, "late by %d s", 2);
}

static conc_excepthook_args_t hook_seen;
static char hook_message[64];
static void *hook_user;

static void remember_failure(const conc_excepthook_args_t *a, void *user) {
  hook_seen = *a;
  hook_user = user;
  snprintf(hook_message, sizeof hook_message, "%s", a->message);
}

/* A timer's function is its thread's target: a negative return reaches the
 * excepthook with the code, the conc_raise message and the timer's thread,
 * and becomes the thread's result. */
static void failing_function_reaches_the_excepthook(void **state) {
  (void)state;
  int user;
  conc_excepthook_t old;
  void *old_arg;
  conc_thread_get_excepthook(&old, &old_arg);
  conc_thread_set_excepthook(remember_failure, &user);
  conc_timer_t tm;
  assert_int_equal(conc_timer_init(&tm, 0.0, fail_in_timer, NULL, NULL), 0);
  assert_int_equal(conc_timer_start(&tm), 0);
  assert_int_equal(conc_timer_join(&tm, CONC_FOREVER), 0);
  conc_thread_set_excepthook(old, old_arg);
  assert_int_equal(hook_seen.code, CONC_ETIMEDOUT);
  assert_string_equal(hook_message, "late by 2 s");
  assert_ptr_equal(hook_seen.thread, conc_timer_thread(&tm));
  assert_ptr_equal(hook_user, &user);
  void *res = NULL;
  assert_int_equal(conc_thread_result(conc_timer_thread(&tm), &res),
                   CONC_ETIMEDOUT);
  assert_int_equal(conc_timer_destroy(&tm), 0);
}

CONC_TEST_MAIN(
    cmocka_unit_test(failing_function_reaches_the_excepthook),
    cmocka_unit_test(timer_calls_fn_once_after_the_interval_in_its_own_thread),
    cmocka_unit_test(each_timer_keeps_its_own_argument),
    cmocka_unit_test(cancel_before_expiry_means_never_and_ends_promptly),
    cmocka_unit_test(cancel_after_firing_does_nothing),
    cmocka_unit_test(cancel_before_start_never_fires),
    cmocka_unit_test(negative_interval_fires_at_once),
    cmocka_unit_test(timer_is_a_thread),
    cmocka_unit_test(bad_arguments_are_rejected))
