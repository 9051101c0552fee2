/* Tests for Future, wait and as_completed (spec F*, W*). */
#include "harness.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/thread.h"
#include "conc/time.h"
#include "futures-int.h"

#define I(x) ((void *)(intptr_t)(x))
#define V(p) ((int)(intptr_t)(p))

static conc_future_t *new_future(void) {
  conc_future_t *f = NULL;
  assert_int_equal(conc_future_new(&f), 0);
  assert_non_null(f);
  return f;
}

static conc_future_t *pending(void) { return new_future(); }

static conc_future_t *running(void) {
  conc_future_t *f = new_future();
  assert_int_equal(conc_future_set_running_or_notify_cancel(f), 1);
  return f;
}

static conc_future_t *cancelled(void) {
  conc_future_t *f = new_future();
  assert_true(conc_future_cancel(f));
  return f;
}

static conc_future_t *cancelled_notified(void) {
  conc_future_t *f = cancelled();
  assert_int_equal(conc_future_set_running_or_notify_cancel(f), 0);
  return f;
}

static conc_future_t *succeeded(int v) {
  conc_future_t *f = new_future();
  assert_int_equal(conc_future_set_result(f, I(v)), 0);
  return f;
}

static conc_future_t *failed(int code) {
  conc_future_t *f = new_future();
  assert_int_equal(conc_future_set_exception(f, code, "boom"), 0);
  return f;
}

static void check_flags(conc_future_t *f, bool run, bool done, bool canc) {
  assert_int_equal(conc_future_running(f), run);
  assert_int_equal(conc_future_done(f), done);
  assert_int_equal(conc_future_cancelled(f), canc);
  conc_future_release(f);
}

/* F1 */
static void state_truth_table(void **state) {
  (void)state;
  check_flags(pending(), false, false, false);
  check_flags(running(), true, false, false);
  check_flags(cancelled(), false, true, true);
  check_flags(cancelled_notified(), false, true, true);
  check_flags(failed(CONC_EIO), false, true, false);
  check_flags(succeeded(42), false, true, false);
}

/* F2 */
static void cancel_only_before_running(void **state) {
  (void)state;
  conc_future_t *f;
  f = pending();
  assert_true(conc_future_cancel(f));
  assert_true(conc_future_cancelled(f));
  assert_true(conc_future_cancel(f)); /* already cancelled: true */
  conc_future_release(f);
  f = cancelled_notified();
  assert_true(conc_future_cancel(f));
  conc_future_release(f);
  f = running();
  assert_false(conc_future_cancel(f));
  assert_true(conc_future_running(f));
  conc_future_release(f);
  f = succeeded(1);
  assert_false(conc_future_cancel(f));
  assert_false(conc_future_cancelled(f));
  conc_future_release(f);
  f = failed(CONC_EIO);
  assert_false(conc_future_cancel(f));
  conc_future_release(f);
}

/* F3 */
static void result_with_zero_timeout(void **state) {
  (void)state;
  conc_future_t *f;
  void *v = I(5);
  f = pending();
  assert_int_equal(conc_future_result(f, 0, &v), CONC_ETIMEDOUT);
  conc_future_release(f);
  f = running();
  assert_int_equal(conc_future_result(f, 0, &v), CONC_ETIMEDOUT);
  conc_future_release(f);
  f = cancelled();
  assert_int_equal(conc_future_result(f, 0, &v), CONC_ECANCELED);
  conc_future_release(f);
  f = cancelled_notified();
  assert_int_equal(conc_future_result(f, 0, &v), CONC_ECANCELED);
  conc_future_release(f);
  f = failed(CONC_EIO);
  assert_int_equal(conc_future_result(f, 0, &v), CONC_EIO);
  conc_future_release(f);
  assert_ptr_equal(v, I(5)); /* nothing stored on failure */
  f = succeeded(42);
  assert_int_equal(conc_future_result(f, 0, &v), 0);
  assert_int_equal(V(v), 42);
  assert_int_equal(conc_future_result(f, 0, NULL), 0);
  conc_future_release(f);
}

/* F4 */
static void exception_with_zero_timeout(void **state) {
  (void)state;
  conc_future_t *f;
  conc_future_error_t e = {99, NULL};
  f = pending();
  assert_int_equal(conc_future_exception(f, 0, &e), CONC_ETIMEDOUT);
  conc_future_release(f);
  f = running();
  assert_int_equal(conc_future_exception(f, 0, &e), CONC_ETIMEDOUT);
  conc_future_release(f);
  f = cancelled();
  assert_int_equal(conc_future_exception(f, 0, &e), CONC_ECANCELED);
  conc_future_release(f);
  f = failed(CONC_EIO);
  assert_int_equal(conc_future_exception(f, 0, &e), 0);
  assert_int_equal(e.code, CONC_EIO);
  assert_string_equal(e.message, "boom");
  conc_future_release(f);
  f = succeeded(42);
  assert_int_equal(conc_future_exception(f, 0, &e), 0);
  assert_int_equal(e.code, 0); /* None */
  conc_future_release(f);
}

struct later {
  conc_future_t *f;
  int what; /* 0 result, 1 exception, 2 cancel */
};

static void *complete_later(void *arg) {
  struct later *l = arg;
  conc_sleep(0.05);
  if (l->what == 0)
    assert_int_equal(conc_future_set_result(l->f, I(42)), 0);
  else if (l->what == 1)
    assert_int_equal(conc_future_set_exception(l->f, CONC_EIO, "late"), 0);
  else
    assert_true(conc_future_cancel(l->f));
  return NULL;
}

/* F5 */
static void result_wakes_when_set_elsewhere(void **state) {
  (void)state;
  conc_future_t *f = pending();
  struct later l = {f, 0};
  double t0 = conc_monotonic();
  pthread_t t = conc_test_spawn(complete_later, &l);
  void *v = NULL;
  assert_int_equal(conc_future_result(f, 5, &v), 0);
  assert_true(conc_monotonic() - t0 >= 0.049);
  assert_int_equal(V(v), 42);
  conc_test_join(t);
  conc_future_release(f);
}

/* F5 */
static void result_raises_cancelled_when_cancelled_while_waiting(void **state) {
  (void)state;
  conc_future_t *f = pending();
  struct later l = {f, 2};
  pthread_t t = conc_test_spawn(complete_later, &l);
  assert_int_equal(conc_future_result(f, CONC_FOREVER, NULL), CONC_ECANCELED);
  conc_test_join(t);
  conc_future_release(f);
}

/* F5 */
static void exception_wakes_when_set_elsewhere(void **state) {
  (void)state;
  conc_future_t *f = running();
  struct later l = {f, 1};
  pthread_t t = conc_test_spawn(complete_later, &l);
  conc_future_error_t e;
  assert_int_equal(conc_future_exception(f, 5, &e), 0);
  assert_int_equal(e.code, CONC_EIO);
  assert_string_equal(e.message, "late");
  conc_test_join(t);
  conc_future_release(f);
}

/* F5: a timed result that nobody completes times out on time. */
static void result_times_out(void **state) {
  (void)state;
  conc_future_t *f = pending();
  double t0 = conc_monotonic();
  assert_int_equal(conc_future_result(f, 0.05, NULL), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  assert_int_equal(conc_future_result(f, -3, NULL), CONC_ETIMEDOUT);
  assert_int_equal(conc_future_result(f, NAN, NULL), CONC_EINVAL);
  conc_future_release(f);
}

/* F6 */
static void second_set_is_invalid_state(void **state) {
  (void)state;
  conc_future_t *f = succeeded(1);
  assert_int_equal(conc_future_set_result(f, I(2)), CONC_EINVALSTATE);
  assert_int_equal(conc_future_set_exception(f, CONC_EIO, "x"),
                   CONC_EINVALSTATE);
  void *v;
  assert_int_equal(conc_future_result(f, 0, &v), 0);
  assert_int_equal(V(v), 1);
  conc_future_release(f);
  f = failed(CONC_EIO);
  assert_int_equal(conc_future_set_exception(f, CONC_EPIPE, "y"),
                   CONC_EINVALSTATE);
  assert_int_equal(conc_future_set_result(f, I(2)), CONC_EINVALSTATE);
  assert_int_equal(conc_future_result(f, 0, &v), CONC_EIO);
  conc_future_release(f);
  f = cancelled();
  assert_int_equal(conc_future_set_result(f, I(2)), CONC_EINVALSTATE);
  assert_true(conc_future_cancelled(f));
  conc_future_release(f);
}

struct cb_log {
  int calls[8];
  int n;
  pthread_t thread[8];
};

static void log_cb(conc_future_t *f, void *arg) {
  struct cb_log *l = arg;
  assert_true(conc_future_done(f));
  l->thread[l->n] = pthread_self();
  l->calls[l->n++] = 1;
}

static void tagged_cb(conc_future_t *f, void *arg) {
  (void)f;
  int *slot = arg;
  static int order;
  *slot = ++order;
}

/* F7 */
static void callbacks_fire_on_result_exception_and_cancel(void **state) {
  (void)state;
  for (int what = 0; what < 3; what++) {
    conc_future_t *f = pending();
    struct cb_log log = {{0}, 0, {0}};
    assert_int_equal(conc_future_add_done_callback(f, log_cb, &log), 0);
    assert_int_equal(log.n, 0);
    if (what == 0)
      conc_future_set_result(f, I(1));
    else if (what == 1)
      conc_future_set_exception(f, CONC_EIO, NULL);
    else
      conc_future_cancel(f);
    assert_int_equal(log.n, 1);
    conc_future_release(f);
  }
}

/* F7 */
static void callback_on_done_future_runs_now_in_caller(void **state) {
  (void)state;
  conc_future_t *fs[3] = {succeeded(1), failed(CONC_EIO), cancelled()};
  for (int i = 0; i < 3; i++) {
    struct cb_log log = {{0}, 0, {0}};
    assert_int_equal(conc_future_add_done_callback(fs[i], log_cb, &log), 0);
    assert_int_equal(log.n, 1);
    assert_true(pthread_equal(log.thread[0], pthread_self()));
    conc_future_release(fs[i]);
  }
}

/* F7 */
static void callbacks_run_in_registration_order(void **state) {
  (void)state;
  conc_future_t *f = pending();
  int slots[5] = {0};
  for (int i = 0; i < 5; i++)
    assert_int_equal(conc_future_add_done_callback(f, tagged_cb, &slots[i]), 0);
  assert_int_equal(conc_future_set_result(f, NULL), 0);
  for (int i = 1; i < 5; i++)
    assert_int_equal(slots[i], slots[i - 1] + 1);
  conc_future_release(f);
}

/* F9 */
static void set_running_or_notify_cancel_rules(void **state) {
  (void)state;
  conc_future_t *f = pending();
  assert_int_equal(conc_future_set_running_or_notify_cancel(f), 1);
  assert_true(conc_future_running(f));
  assert_int_equal(conc_future_set_running_or_notify_cancel(f), CONC_ESTATE);
  conc_future_release(f);
  f = cancelled();
  assert_int_equal(conc_future_set_running_or_notify_cancel(f), 0);
  assert_true(conc_future_cancelled(f));
  assert_int_equal(conc_future_set_running_or_notify_cancel(f), CONC_ESTATE);
  conc_future_release(f);
  f = succeeded(1);
  assert_int_equal(conc_future_set_running_or_notify_cancel(f), CONC_ESTATE);
  conc_future_release(f);
  assert_int_equal(conc_future_set_running_or_notify_cancel(NULL), CONC_EINVAL);
}

struct nwait {
  conc_future_t *f;
  int rc;
  size_t ndone;
};

static void *wait_one(void *arg) {
  struct nwait *w = arg;
  conc_future_t *d[1];
  conc_wait_result_t r = {d, 0, NULL, 0};
  w->rc = conc_futures_wait(&w->f, 1, 5, CONC_ALL_COMPLETED, &r);
  w->ndone = r.ndone;
  return NULL;
}

/* F9: notifying a cancel wakes wait() waiters. */
static void notify_cancel_wakes_waiters(void **state) {
  (void)state;
  conc_future_t *f = pending();
  struct nwait w = {f, 1, 0};
  pthread_t t = conc_test_spawn(wait_one, &w);
  conc_sleep(0.05);
  assert_true(conc_future_cancel(f));
  conc_sleep(0.02);
  assert_int_equal(w.rc, 1); /* plain cancel does not release wait() */
  double t0 = conc_monotonic();
  assert_int_equal(conc_future_set_running_or_notify_cancel(f), 0);
  conc_test_join(t);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(w.rc, 0);
  assert_int_equal(w.ndone, 1);
  conc_future_release(f);
}

static void assert_repr(conc_future_t *f, const char *state) {
  char buf[160], want[160];
  snprintf(want, sizeof want, "<Future at %p state=%s>", (void *)f, state);
  assert_int_equal(conc_future_repr(f, buf, sizeof buf), (int)strlen(want));
  assert_string_equal(buf, want);
  conc_future_release(f);
}

/* F10 */
static void repr_shows_state(void **state) {
  (void)state;
  assert_repr(pending(), "pending");
  assert_repr(running(), "running");
  assert_repr(cancelled(), "cancelled");
  assert_repr(cancelled_notified(), "cancelled");
  assert_repr(failed(CONC_EIO), "finished raised OSError");
  assert_repr(failed(CONC_EINVAL), "finished raised ValueError");
  conc_future_t *f = succeeded(0x2a);
  char want[64];
  snprintf(want, sizeof want, "finished returned %p", I(0x2a));
  assert_repr(f, want);
}

/* F10: an error "that tests as false" still fails the future. */
static void falsey_error_still_propagates(void **state) {
  (void)state;
  conc_future_t *f = pending();
  assert_int_equal(conc_future_set_exception(f, 0, NULL), 0);
  assert_int_equal(conc_future_result(f, 0, NULL), CONC_EFAILED);
  conc_future_error_t e;
  assert_int_equal(conc_future_exception(f, 0, &e), 0);
  assert_int_equal(e.code, CONC_EFAILED);
  assert_string_equal(e.message, "");
  conc_future_release(f);
  /* a NULL result is a success */
  f = succeeded(0);
  void *v = I(1);
  assert_int_equal(conc_future_result(f, 0, &v), 0);
  assert_null(v);
  conc_future_release(f);
}

/* ---- wait ------------------------------------------------------------- */

/* W1 */
static void wait_collapses_duplicates(void **state) {
  (void)state;
  conc_future_t *f = succeeded(1), *g = pending();
  conc_future_t *fs[] = {f, g, f, g, f};
  conc_future_t *d[5], *nd[5];
  conc_wait_result_t r = {d, 0, nd, 0};
  assert_int_equal(conc_futures_wait(fs, 5, 0, CONC_ALL_COMPLETED, &r), 0);
  assert_int_equal(r.ndone, 1);
  assert_ptr_equal(d[0], f);
  assert_int_equal(r.nnot_done, 1);
  assert_ptr_equal(nd[0], g);
  conc_future_release(f);
  conc_future_release(g);
}

/* W1 */
static void as_completed_yields_duplicate_once(void **state) {
  (void)state;
  conc_future_t *f = succeeded(1);
  conc_future_t *fs[] = {f, f, f};
  conc_as_completed_t it;
  assert_int_equal(conc_as_completed_init(&it, fs, 3, CONC_FOREVER), 0);
  conc_future_t *out;
  assert_int_equal(conc_as_completed_next(&it, &out), 0);
  assert_ptr_equal(out, f);
  assert_int_equal(conc_as_completed_next(&it, &out), CONC_EEOF);
  conc_as_completed_destroy(&it);
  conc_future_release(f);
}

/* W2 */
static void first_completed_returns_at_first_completion(void **state) {
  (void)state;
  conc_future_t *a = pending(), *b = pending(), *c = cancelled();
  struct later l = {b, 0};
  double t0 = conc_monotonic();
  pthread_t t = conc_test_spawn(complete_later, &l);
  conc_future_t *fs[] = {a, b, c}, *d[3], *nd[3];
  conc_wait_result_t r = {d, 0, nd, 0};
  assert_int_equal(conc_futures_wait(fs, 3, 5, CONC_FIRST_COMPLETED, &r), 0);
  assert_true(conc_monotonic() - t0 >= 0.049);
  assert_true(conc_monotonic() - t0 < 2);
  assert_int_equal(r.ndone, 1);
  assert_ptr_equal(d[0], b);
  assert_int_equal(r.nnot_done, 2); /* plain CANCELLED counts as not done */
  conc_test_join(t);
  conc_future_release(a);
  conc_future_release(b);
  conc_future_release(c);
}

/* W2 */
static void first_completed_returns_at_once_if_one_is_done(void **state) {
  (void)state;
  conc_future_t *a = pending(), *b = cancelled_notified(), *c = succeeded(1);
  conc_future_t *fs[] = {a, b, c}, *d[3], *nd[3];
  conc_wait_result_t r = {d, 0, nd, 0};
  double t0 = conc_monotonic();
  assert_int_equal(conc_futures_wait(fs, 3, 5, CONC_FIRST_COMPLETED, &r), 0);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(r.ndone, 2);
  assert_int_equal(r.nnot_done, 1);
  assert_ptr_equal(nd[0], a);
  conc_future_release(a);
  conc_future_release(b);
  conc_future_release(c);
}

/* W3 */
static void first_exception_returns_at_first_failure(void **state) {
  (void)state;
  conc_future_t *ok = succeeded(1), *a = pending(), *b = running();
  struct later l = {b, 1};
  double t0 = conc_monotonic();
  pthread_t t = conc_test_spawn(complete_later, &l);
  conc_future_t *fs[] = {ok, a, b}, *d[3], *nd[3];
  conc_wait_result_t r = {d, 0, nd, 0};
  assert_int_equal(conc_futures_wait(fs, 3, 5, CONC_FIRST_EXCEPTION, &r), 0);
  assert_true(conc_monotonic() - t0 >= 0.049);
  assert_int_equal(r.ndone, 2); /* ok and b */
  assert_int_equal(r.nnot_done, 1);
  assert_ptr_equal(nd[0], a);
  conc_test_join(t);
  /* one already failed: at once */
  t0 = conc_monotonic();
  assert_int_equal(conc_futures_wait(fs, 3, 5, CONC_FIRST_EXCEPTION, &r), 0);
  assert_quick(conc_monotonic() - t0);
  conc_future_release(ok);
  conc_future_release(a);
  conc_future_release(b);
}

/* W3: with no failure FIRST_EXCEPTION waits for all. */
static void first_exception_without_failure_waits_for_all(void **state) {
  (void)state;
  conc_future_t *ok = succeeded(1), *b = pending();
  struct later l = {b, 0};
  pthread_t t = conc_test_spawn(complete_later, &l);
  conc_future_t *fs[] = {ok, b}, *d[2];
  conc_wait_result_t r = {d, 0, NULL, 0};
  assert_int_equal(conc_futures_wait(fs, 2, 5, CONC_FIRST_EXCEPTION, &r), 0);
  assert_int_equal(r.ndone, 2);
  assert_int_equal(r.nnot_done, 0);
  conc_test_join(t);
  conc_future_release(ok);
  conc_future_release(b);
}

/* W4 */
static void all_completed_waits_and_timeout_gives_partial(void **state) {
  (void)state;
  conc_future_t *a = succeeded(1), *b = pending(), *c = pending();
  struct later l = {b, 0};
  double t0 = conc_monotonic();
  pthread_t t = conc_test_spawn(complete_later, &l);
  conc_future_t *fs[] = {a, b, c}, *d[3], *nd[3];
  conc_wait_result_t r = {d, 0, nd, 0};
  assert_int_equal(conc_futures_wait(fs, 3, 0.2, CONC_ALL_COMPLETED, &r), 0);
  assert_elapsed(conc_monotonic() - t0, 0.2);
  assert_int_equal(r.ndone, 2);
  assert_int_equal(r.nnot_done, 1);
  assert_ptr_equal(nd[0], c);
  conc_test_join(t);
  assert_int_equal(conc_future_set_result(c, NULL), 0);
  assert_int_equal(
      conc_futures_wait(fs, 3, CONC_FOREVER, CONC_ALL_COMPLETED, &r), 0);
  assert_int_equal(r.ndone, 3);
  conc_future_release(a);
  conc_future_release(b);
  conc_future_release(c);
}

/* Bad input. */
static void wait_rejects_bad_arguments(void **state) {
  (void)state;
  conc_future_t *f = pending();
  conc_future_t *fs[] = {f, NULL};
  conc_wait_result_t r = {NULL, 0, NULL, 0};
  assert_int_equal(conc_futures_wait(fs, 1, 0, (conc_return_when_t)0, &r),
                   CONC_EINVAL);
  assert_int_equal(conc_futures_wait(fs, 1, 0, (conc_return_when_t)4, &r),
                   CONC_EINVAL);
  assert_int_equal(conc_futures_wait(fs, 2, 0, CONC_ALL_COMPLETED, &r),
                   CONC_EINVAL);
  assert_int_equal(conc_futures_wait(NULL, 1, 0, CONC_ALL_COMPLETED, &r),
                   CONC_EINVAL);
  assert_int_equal(conc_futures_wait(fs, 1, NAN, CONC_ALL_COMPLETED, &r),
                   CONC_EINVAL);
  assert_int_equal(conc_futures_wait(NULL, 0, 0, CONC_ALL_COMPLETED, &r), 0);
  assert_int_equal(r.ndone + r.nnot_done, 0);
  assert_int_equal(conc_future_add_done_callback(f, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_future_new(NULL), CONC_EINVAL);
  conc_future_release(f);
}

/* ---- as_completed -------------------------------------------------------- */

struct seq_completer {
  conc_future_t *fs[2];
};

static void *complete_in_order(void *arg) {
  struct seq_completer *s = arg;
  conc_sleep(0.03);
  conc_future_set_result(s->fs[0], I(1));
  conc_sleep(0.03);
  conc_future_set_result(s->fs[1], I(2));
  return NULL;
}

/* W6 */
static void as_completed_done_first_then_completion_order(void **state) {
  (void)state;
  conc_future_t *p1 = pending(), *p2 = pending(), *d1 = succeeded(0),
                *d2 = cancelled_notified();
  conc_future_t *fs[] = {p1, d1, p2, d2};
  conc_as_completed_t it;
  assert_int_equal(conc_as_completed_init(&it, fs, 4, 5), 0);
  struct seq_completer s = {{p2, p1}}; /* p2 finishes first */
  pthread_t t = conc_test_spawn(complete_in_order, &s);
  conc_future_t *want[] = {d1, d2, p2, p1}, *out;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(conc_as_completed_next(&it, &out), 0);
    assert_ptr_equal(out, want[i]);
  }
  assert_int_equal(conc_as_completed_next(&it, &out), CONC_EEOF);
  conc_as_completed_destroy(&it);
  conc_test_join(t);
  for (int i = 0; i < 4; i++)
    conc_future_release(fs[i]);
}

/* W6 */
static void as_completed_timeout_reports_unfinished(void **state) {
  (void)state;
  double timeouts[] = {0, 0.1};
  for (int k = 0; k < 2; k++) {
    conc_future_t *a = succeeded(1), *b = pending(), *c = running();
    conc_future_t *fs[] = {a, b, c}, *out;
    conc_as_completed_t it;
    double t0 = conc_monotonic();
    assert_int_equal(conc_as_completed_init(&it, fs, 3, timeouts[k]), 0);
    assert_int_equal(conc_as_completed_next(&it, &out), 0);
    assert_ptr_equal(out, a);
    assert_int_equal(conc_as_completed_next(&it, &out), CONC_ETIMEDOUT);
    out = NULL;
    assert_int_equal(conc_as_completed_next(&it, &out), CONC_EEOF);
    assert_null(out); /* untouched */
    assert_elapsed(conc_monotonic() - t0, timeouts[k]);
    assert_string_equal(conc_as_completed_message(&it),
                        "2 (of 3) futures unfinished");
    assert_int_equal(conc_as_completed_unfinished(&it), 2);
    conc_as_completed_destroy(&it);
    /* the iterator held its own references: the futures still work */
    assert_int_equal(conc_future_set_result(b, NULL), 0);
    for (int i = 0; i < 3; i++)
      conc_future_release(fs[i]);
  }
}

/* Issue 13: `while (next(...) == 0)` visits every future and stops at
 * CONC_EEOF, also for an empty set, and *out is left alone at the end.
 * (Before: 1 per item and 0 at the end.) */
static void as_completed_next_returns_eeof_after_the_last(void **state) {
  (void)state;
  conc_future_t *fs[] = {succeeded(1), failed(CONC_EIO), cancelled_notified()};
  conc_as_completed_t it;
  conc_future_t *out = NULL;
  assert_int_equal(conc_as_completed_init(&it, fs, 0, CONC_FOREVER), 0);
  assert_int_equal(conc_as_completed_next(&it, &out), CONC_EEOF);
  assert_null(out);
  conc_as_completed_destroy(&it);
  assert_int_equal(conc_as_completed_init(&it, fs, 3, CONC_FOREVER), 0);
  int n = 0, rc;
  while ((rc = conc_as_completed_next(&it, &out)) == 0)
    assert_ptr_equal(out, fs[n++]);
  assert_int_equal(rc, CONC_EEOF);
  assert_int_equal(n, 3);
  assert_ptr_equal(out, fs[2]);
  assert_int_equal(conc_as_completed_next(&it, &out), CONC_EEOF);
  conc_as_completed_destroy(&it);
  for (int i = 0; i < 3; i++)
    conc_future_release(fs[i]);
}

/* Records not in the global pool: live futures plus per-thread caches. */
static size_t records_outside_pool(void) {
  size_t records, pooled;
  conc__future_stats(&records, &pooled);
  return records - pooled;
}

/* A thread that only creates a future (refilling its cache from the pool)
 * and hands it away. */
static int create_one_future(void *arg, void **result) {
  (void)arg;
  conc_future_t *f = NULL;
  *result = conc_future_new(&f) == 0 ? f : NULL;
  return 0;
}

/* The same body for a foreign (pthread) thread. */
static void *create_one_future_pthread(void *arg) {
  void *f = NULL;
  create_one_future(arg, &f);
  return f;
}

/* Issue 10.6: the thread-exit flush was armed only when a thread released
 * a record, so the rest of a refill (127 records) leaked with the thread. */
static void thread_exit_returns_cached_future_records(void **state) {
  (void)state;
  enum { FILL = 300, ROUNDS = 4 };
  conc_future_t *fs[FILL];
  for (int i = 0; i < FILL; i++)
    fs[i] = new_future();
  for (int i = 0; i < FILL; i++)
    conc_future_release(fs[i]);
  conc__future_cache_flush(); /* the pool now holds at least FILL records */
  size_t before = records_outside_pool();
  for (int round = 0; round < ROUNDS; round++) {
    void *f = NULL;
    if (round % 2 == 0) { /* a foreign thread */
      pthread_t t = conc_test_spawn(create_one_future_pthread, NULL);
      assert_int_equal(pthread_join(t, &f), 0);
    } else { /* a libconc thread */
      conc_thread_t t;
      assert_int_equal(conc_thread_init(&t, create_one_future, NULL, NULL), 0);
      assert_int_equal(conc_thread_start(&t), 0);
      assert_int_equal(conc_thread_join(&t, CONC_FOREVER), 0);
      assert_int_equal(conc_thread_result(&t, &f), 0);
      conc_thread_destroy(&t);
    }
    assert_non_null(f);
    conc_future_release(f);
    conc__future_cache_flush();
    assert_int_equal(records_outside_pool(), before);
  }
}

CONC_TEST_MAIN(
    cmocka_unit_test(state_truth_table),
    cmocka_unit_test(cancel_only_before_running),
    cmocka_unit_test(result_with_zero_timeout),
    cmocka_unit_test(exception_with_zero_timeout),
    cmocka_unit_test(result_wakes_when_set_elsewhere),
    cmocka_unit_test(result_raises_cancelled_when_cancelled_while_waiting),
    cmocka_unit_test(exception_wakes_when_set_elsewhere),
    cmocka_unit_test(result_times_out),
    cmocka_unit_test(second_set_is_invalid_state),
    cmocka_unit_test(callbacks_fire_on_result_exception_and_cancel),
    cmocka_unit_test(callback_on_done_future_runs_now_in_caller),
    cmocka_unit_test(callbacks_run_in_registration_order),
    cmocka_unit_test(set_running_or_notify_cancel_rules),
    cmocka_unit_test(notify_cancel_wakes_waiters),
    cmocka_unit_test(repr_shows_state),
    cmocka_unit_test(falsey_error_still_propagates),
    cmocka_unit_test(wait_collapses_duplicates),
    cmocka_unit_test(as_completed_yields_duplicate_once),
    cmocka_unit_test(first_completed_returns_at_first_completion),
    cmocka_unit_test(first_completed_returns_at_once_if_one_is_done),
    cmocka_unit_test(first_exception_returns_at_first_failure),
    cmocka_unit_test(first_exception_without_failure_waits_for_all),
    cmocka_unit_test(all_completed_waits_and_timeout_gives_partial),
    cmocka_unit_test(wait_rejects_bad_arguments),
    cmocka_unit_test(as_completed_done_first_then_completion_order),
    cmocka_unit_test(as_completed_timeout_reports_unfinished),
    cmocka_unit_test(as_completed_next_returns_eeof_after_the_last),
    cmocka_unit_test(thread_exit_returns_cached_future_records))
