/* Foundation: error model, time model, platform wait, fork registry. */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc.h"
#include "init-int.h"
#include "platform-int.h"

static void errno_backed_codes_equal_negative_errno(void **state) {
  (void)state;
  assert_int_equal(CONC_ETIMEDOUT, -ETIMEDOUT);
  assert_int_equal(CONC_EINVAL, -EINVAL);
  assert_int_equal(CONC_EOWNERDEAD, -EOWNERDEAD);
  assert_int_equal(CONC_ECANCELED, -ECANCELED);
  assert_true(CONC_EFULL < -1000 && CONC_EBROKEN < -1000);
}

static void every_code_has_a_distinct_name_and_message(void **state) {
  (void)state;
  static const int codes[] = {
#define ROW(n, v, py, msg) CONC_##n,
      CONC_ERROR_LIST(ROW)
#undef ROW
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    assert_string_not_equal(conc_err_name(codes[i]), "CONC_E?");
    assert_string_not_equal(conc_strerror(codes[i]), "unknown error");
    for (size_t j = i + 1; j < n; j++)
      assert_int_not_equal(codes[i], codes[j]);
  }
  assert_string_equal(conc_err_name(CONC_ETIMEDOUT), "CONC_ETIMEDOUT");
  assert_string_equal(conc_err_python(CONC_EFULL), "queue.Full");
  assert_string_equal(conc_err_python(CONC_EBROKEN), "BrokenBarrierError");
  assert_string_equal(conc_err_name(0), "CONC_OK");
}

/* G4: each Python exception the spec names has its own code, and the
 * exceptions that are not plain RuntimeError/ValueError never share one. */
static void each_python_exception_has_its_own_code(void **state) {
  (void)state;
  static const struct {
    int code;
    const char *python;
  } map[] = {
      {CONC_EPERM, "RuntimeError"},
      {CONC_EINVAL, "ValueError"},
      {CONC_EOVERFLOW, "OverflowError"},
      {CONC_EEMPTY, "queue.Empty"},
      {CONC_EFULL, "queue.Full"},
      {CONC_ESHUTDOWN, "queue.ShutDown"},
      {CONC_EBROKEN, "BrokenBarrierError"},
      {CONC_ECANCELED, "CancelledError"},
      {CONC_ETIMEDOUT, "TimeoutError"},
      {CONC_EINVALSTATE, "InvalidStateError"},
      {CONC_EBROKENPOOL, "BrokenExecutor"},
  };
  size_t n = sizeof map / sizeof map[0];
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(conc_err_python(map[i].code), map[i].python);
    for (size_t j = i + 1; j < n; j++)
      assert_int_not_equal(map[i].code, map[j].code);
  }
}

static void unknown_code_gets_generic_text(void **state) {
  (void)state;
  assert_string_equal(conc_err_name(-99999), "CONC_E?");
  assert_string_equal(conc_strerror(-99999), "unknown error");
}

static void version_string_matches_header(void **state) {
  (void)state;
  assert_string_equal(conc_version_string(), CONC_VERSION_STRING);
  assert_int_equal(conc_version_number(), CONC_VERSION_MAJOR * 10000 +
                                              CONC_VERSION_MINOR * 100 +
                                              CONC_VERSION_PATCH);
}

static void monotonic_clock_never_goes_back(void **state) {
  (void)state;
  int64_t prev = conc_monotonic_ns();
  for (int i = 0; i < 100000; i++) {
    int64_t now = conc_monotonic_ns();
    assert_true(now >= prev);
    prev = now;
  }
  assert_true(fabs(conc_monotonic() - (double)prev / 1e9) < 1.0);
}

static void deadline_rejects_nan_and_saturates(void **state) {
  (void)state;
  conc_deadline_t d = 0;
  assert_int_equal(conc_deadline_after(NAN, &d), CONC_EINVAL);
  assert_int_equal(conc_deadline_after(CONC_FOREVER, &d), 0);
  assert_true(d == CONC_DEADLINE_NEVER);
  assert_int_equal(conc_deadline_after(1e300, &d), 0);
  assert_true(d == CONC_DEADLINE_NEVER);
  assert_int_equal(conc_deadline_after(CONC_TIMEOUT_MAX, &d), 0);
  assert_true(d > conc_monotonic_ns());
  int64_t before = conc_monotonic_ns();
  assert_int_equal(conc_deadline_after(-5.0, &d), 0);
  assert_true(d >= before && d <= conc_monotonic_ns());
  assert_int_equal(conc_deadline_after(2.0, &d), 0);
  double left = conc_deadline_remaining(d);
  assert_true(left > 1.9 && left <= 2.0);
  assert_true(conc_deadline_remaining(CONC_DEADLINE_NEVER) == CONC_FOREVER);
}

static void sleep_sleeps_at_least_the_interval(void **state) {
  (void)state;
  assert_int_equal(conc_sleep(-1), CONC_EINVAL);
  assert_int_equal(conc_sleep(NAN), CONC_EINVAL);
  double t0 = conc_monotonic();
  assert_int_equal(conc_sleep(0.1), 0);
  assert_elapsed(conc_monotonic() - t0, 0.1);
  t0 = conc_monotonic();
  assert_int_equal(conc_sleep(0), 0);
  assert_quick(conc_monotonic() - t0);
}

static void wait_returns_at_once_when_word_differs(void **state) {
  (void)state;
  uint32_t word = 1;
  double t0 = conc_monotonic();
  assert_int_equal(conc__wait(&word, 0, CONC_DEADLINE_NEVER, false), 0);
  assert_quick(conc_monotonic() - t0);
}

static void wait_times_out_at_the_deadline(void **state) {
  (void)state;
  uint32_t word = 7;
  conc_deadline_t d;
  conc_deadline_after(0.2, &d);
  double t0 = conc_monotonic();
  assert_int_equal(conc__wait(&word, 7, d, false), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.2);
  conc_deadline_after(0, &d);
  t0 = conc_monotonic();
  assert_int_equal(conc__wait(&word, 7, d, false), CONC_ETIMEDOUT);
  assert_quick(conc_monotonic() - t0);
}

struct waker {
  uint32_t word;
  uint32_t woken;
  bool shared;
  uint32_t nstarted;
  int32_t tids[4];
};

static void *wait_thread(void *arg) {
  struct waker *w = arg;
  uint32_t i = conc__fetch_add(&w->nstarted, 1);
  if (i < 4)
    conc__store_release(&w->tids[i], conc__gettid());
  int rc = conc__wait(&w->word, 0, CONC_DEADLINE_NEVER, w->shared);
  assert_int_equal(rc, 0);
  conc__fetch_add(&w->woken, 1);
  return NULL;
}

static void wake_all_releases_every_waiter(void **state) {
  (void)state;
  struct waker w = {0};
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    t[i] = conc_test_spawn(wait_thread, &w);
  conc_sleep(0.05);
  assert_int_equal(conc__load_acquire(&w.woken), 0);
  conc__store_release(&w.word, 1);
  conc__wake(&w.word, CONC__WAKE_ALL, false);
  for (int i = 0; i < 4; i++)
    conc_test_join(t[i]);
  assert_int_equal(w.woken, 4);
}

static void wake_without_change_is_absorbed(void **state) {
  (void)state;
  struct waker w = {0};
  pthread_t t = conc_test_spawn(wait_thread, &w);
  for (int i = 0; i < 20; i++) {
    conc__wake(&w.word, CONC__WAKE_ALL, false);
    conc_sleep(0.002);
  }
  assert_int_equal(conc__load_acquire(&w.woken), 0);
  conc__store_release(&w.word, 1);
  conc__wake(&w.word, 1, false);
  conc_test_join(t);
  assert_int_equal(w.woken, 1);
}

/* The kernel's view of a thread: 'S' once it sleeps (here: in the wait). */
static char thread_state(int32_t tid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
  FILE *f = fopen(path, "r");
  if (!f)
    return '?';
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *close_paren = strrchr(buf, ')');
  return close_paren && close_paren[1] == ' ' ? close_paren[2] : '?';
}

/* Wait (up to 10 s) until n waiter threads are asleep in the kernel, so a
 * test never races a waiter that has not reached its wait yet. */
static void wait_until_asleep(struct waker *w, uint32_t n) {
  double end = conc_monotonic() + 10;
  for (uint32_t i = 0; i < n; i++) {
    int32_t tid;
    while ((tid = conc__load_acquire(&w->tids[i])) == 0 ||
           thread_state(tid) != 'S') {
      assert_true(conc_monotonic() < end);
      conc_sleep(0.001);
    }
  }
}

/* A moved waiter stays asleep until its new word is woken (futex), or is
 * woken at once (condvar fallback); either way it returns 0, since its own
 * word changed. */
static void requeue_moves_waiters_to_the_other_word(void **state) {
  (void)state;
  struct waker w = {0};
  uint32_t to = 5;
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    t[i] = conc_test_spawn(wait_thread, &w);
  wait_until_asleep(&w, 2);
  conc__store_release(&w.word, 1);
  conc__requeue(&w.word, 1, &to, false);
  conc_sleep(0.05);
  bool futex = strcmp(conc__wait_backend(), "futex") == 0;
  assert_int_equal(conc__load_acquire(&w.woken), futex ? 0 : 2);
  conc__wake(&w.word, CONC__WAKE_ALL, false); /* moved: not woken here */
  conc_sleep(0.05);
  assert_int_equal(conc__load_acquire(&w.woken), futex ? 0 : 2);
  conc__wake(&to, 1, false);
  double end = conc_monotonic() + 5;
  while (conc__load_acquire(&w.woken) < 1 && conc_monotonic() < end)
    conc_sleep(0.001);
  conc_sleep(0.02);
  assert_int_equal(conc__load_acquire(&w.woken), futex ? 1 : 2);
  conc__wake(&to, CONC__WAKE_ALL, false);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  assert_int_equal(w.woken, 2);
}

/* The word no longer holds `expected`: the waiters are woken, not moved. */
static void requeue_of_a_changed_word_wakes_instead(void **state) {
  (void)state;
  struct waker w = {0};
  uint32_t to = 5;
  pthread_t t = conc_test_spawn(wait_thread, &w);
  wait_until_asleep(&w, 1);
  conc__store_release(&w.word, 2);
  conc__requeue(&w.word, 1, &to, false);
  conc_test_join(t);
  assert_int_equal(w.woken, 1);
}

static void shared_wait_wakes_across_fork(void **state) {
  (void)state;
  struct waker *w = mmap(NULL, sizeof *w, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(w != MAP_FAILED);
  memset(w, 0, sizeof *w);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    conc_deadline_t d;
    conc_deadline_after(10, &d);
    _exit(conc__wait(&w->word, 0, d, true) == 0 && w->word == 5 ? 0 : 1);
  }
  conc_sleep(0.05);
  conc__store_release(&w->word, 5);
  conc__wake(&w->word, 1, true);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  munmap(w, sizeof *w);
}

static int order[8];
static int norder;
static void prep_a(void) { order[norder++] = 1; }
static void prep_b(void) { order[norder++] = 2; }
static void parent_a(void) { order[norder++] = 3; }
static void parent_b(void) { order[norder++] = 4; }
static void child_a(void) { order[norder++] = 5; }
static void child_b(void) { order[norder++] = 6; }

static void fork_handlers_run_in_pthread_atfork_order(void **state) {
  (void)state;
  assert_int_equal(conc__atfork_register(prep_a, parent_a, child_a), 0);
  assert_int_equal(conc__atfork_register(prep_b, parent_b, child_b), 0);
  unsigned gen = conc__fork_generation();
  norder = 0;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int ok = norder == 4 && order[0] == 2 && order[1] == 1 && order[2] == 5 &&
             order[3] == 6 && conc__fork_generation() == gen + 1;
    _exit(ok ? 0 : 1);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(norder, 4);
  assert_int_equal(order[0], 2);
  assert_int_equal(order[1], 1);
  assert_int_equal(order[2], 3);
  assert_int_equal(order[3], 4);
}

static void cpu_count_is_positive(void **state) {
  (void)state;
  assert_true(conc__cpu_count() >= 1);
  assert_true(conc__gettid() > 0);
}

CONC_TEST_MAIN(cmocka_unit_test(errno_backed_codes_equal_negative_errno),
               cmocka_unit_test(every_code_has_a_distinct_name_and_message),
               cmocka_unit_test(each_python_exception_has_its_own_code),
               cmocka_unit_test(unknown_code_gets_generic_text),
               cmocka_unit_test(version_string_matches_header),
               cmocka_unit_test(monotonic_clock_never_goes_back),
               cmocka_unit_test(deadline_rejects_nan_and_saturates),
               cmocka_unit_test(sleep_sleeps_at_least_the_interval),
               cmocka_unit_test(wait_returns_at_once_when_word_differs),
               cmocka_unit_test(wait_times_out_at_the_deadline),
               cmocka_unit_test(wake_all_releases_every_waiter),
               cmocka_unit_test(wake_without_change_is_absorbed),
               cmocka_unit_test(requeue_moves_waiters_to_the_other_word),
               cmocka_unit_test(requeue_of_a_changed_word_wakes_instead),
               cmocka_unit_test(shared_wait_wakes_across_fork),
               cmocka_unit_test(fork_handlers_run_in_pthread_atfork_order),
               cmocka_unit_test(cpu_count_is_positive))
