/*
 * ProcessPoolExecutor (spec X1, X3-X5, F1 for the executor, issue 14):
 * futures that work with wait, as_completed and done callbacks; map with
 * chunksize and timeout; shutdown(wait, cancel_futures); worker death per
 * task by default and BrokenProcessPool as an option. Every test arms a
 * watchdog and checks at its end that every child was reaped. Task
 * functions run in forked workers: they only compute, sleep or kill
 * themselves.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/pool.h"
#include "conc/time.h"

/* A page shared with the workers. */
struct shared {
  int init_calls;
  pid_t pid;
  int flag;
};
static struct shared *sh;

static int setup(void **state) {
  (void)state;
  alarm(60);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(sh != MAP_FAILED);
  memset(sh, 0, sizeof *sh);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  int st;
  assert_int_equal(waitpid(-1, &st, WNOHANG), -1); /* all reaped */
  assert_int_equal(errno, ECHILD);
  munmap(sh, sizeof *sh);
  alarm(0);
  return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ---- tasks ---------------------------------------------------------------- */

static int square(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc, (void)rl;
  int x = *(const int *)a;
  *(int *)r = x * x;
  return 0;
}

static int report_pid(const void *a, size_t al, void *r, size_t rc,
                      size_t *rl) {
  (void)a, (void)al, (void)rc, (void)rl;
  *(pid_t *)r = getpid();
  return 0;
}

/* Sleeps *a milliseconds, returns *a. */
static int sleep_ms(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc, (void)rl;
  int ms = *(const int *)a;
  conc_sleep(ms / 1000.0);
  *(int *)r = ms;
  return 0;
}

/* As sleep_ms, but for the slow one (300): runs until the test sets the
 * flag, so that it ends last however the machine schedules the others. */
static int sleep_ms_or_flag(const void *a, size_t al, void *r, size_t rc,
                            size_t *rl) {
  if (*(const int *)a != 300)
    return sleep_ms(a, al, r, rc, rl);
  while (!__atomic_load_n(&sh->flag, __ATOMIC_ACQUIRE))
    conc_sleep(0.001);
  *(int *)r = 300;
  return 0;
}

/* A string result shorter than its capacity. */
static int greet(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al;
  int n = snprintf(r, rc, "hello %s", (const char *)a);
  *rl = (size_t)n + 1;
  return 0;
}

static int picky(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc, (void)rl;
  int x = *(const int *)a;
  if (x % 7 == 0)
    return conc_raise(CONC_EINVAL, "bad item %d", x);
  *(int *)r = -x;
  return 0;
}

/* Dies from SIGKILL on 13 (after a pause, so others are in flight). */
static int die_on_13(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  int x = *(const int *)a;
  if (x == 13) {
    conc_sleep(0.05);
    raise(SIGKILL);
  }
  conc_sleep(0.01);
  return square(a, al, r, rc, rl);
}

static int counting_init(void *arg) {
  (void)arg;
  __atomic_fetch_add(&sh->init_calls, 1, __ATOMIC_ACQ_REL);
  return 0;
}

static int failing_init(void *arg) {
  (void)arg;
  return conc_raise(CONC_EACCES, "cannot open the database");
}

static conc_process_executor_t *make_ex(conc_process_executor_t *ex, int n) {
  assert_int_equal(conc_process_executor_init(
                       ex, &(conc_process_executor_opts_t){.max_workers = n}),
                   0);
  return ex;
}

static int result_int(conc_future_t *f) {
  int v = -1;
  size_t len = 0;
  assert_int_equal(
      conc_process_future_result(f, CONC_FOREVER, &v, sizeof v, &len), 0);
  assert_int_equal(len, sizeof v);
  return v;
}

/* ---- submit / result ------------------------------------------------------ */

static void submit_returns_the_result_as_bytes(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 2);
  int x = 12;
  conc_future_t *f;
  assert_int_equal(
      conc_process_executor_submit(&ex, square, &x, sizeof x, sizeof(int), &f),
      0);
  x = 99; /* the argument was copied */
  assert_int_equal(result_int(f), 144);
  void *v = NULL;
  assert_int_equal(conc_future_result(f, 0, &v), 0);
  assert_int_equal(*(int *)v, 144); /* the future's value is the bytes */
  conc_future_release(f);
  /* a variable-length result */
  char name[] = "world", text[32];
  size_t len = 0;
  assert_int_equal(conc_process_executor_submit(&ex, greet, name, sizeof name,
                                                sizeof text, &f),
                   0);
  assert_int_equal(
      conc_process_future_result(f, CONC_FOREVER, text, sizeof text, &len), 0);
  assert_string_equal(text, "hello world");
  assert_int_equal(len, strlen("hello world") + 1);
  char small[4];
  assert_int_equal(
      conc_process_future_result(f, CONC_FOREVER, small, sizeof small, &len),
      CONC_ETOOSHORT);
  conc_future_release(f);
  /* a thread future is not a process future */
  conc_future_t *plain;
  assert_int_equal(conc_future_new(&plain), 0);
  assert_int_equal(conc_process_future_result(plain, 0, NULL, 0, NULL),
                   CONC_EINVAL);
  conc_future_release(plain);
  conc_process_executor_destroy(&ex);
}

static void failure_has_code_message_and_detail(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 1);
  int x = 14, y = 5;
  conc_future_t *f;
  assert_int_equal(
      conc_process_executor_submit(&ex, picky, &x, sizeof x, sizeof y, &f), 0);
  assert_int_equal(
      conc_process_future_result(f, CONC_FOREVER, &y, sizeof y, NULL),
      CONC_EINVAL);
  assert_int_equal(y, 5); /* untouched */
  conc_future_error_t fe;
  assert_int_equal(conc_future_exception(f, 0, &fe), 0);
  assert_int_equal(fe.code, CONC_EINVAL);
  assert_string_equal(fe.message, "bad item 14");
  conc_pool_error_t e;
  assert_int_equal(conc_process_future_error(f, &e), 0);
  assert_int_equal(e.code, CONC_EINVAL);
  assert_string_equal(e.message, "bad item 14");
  assert_true(e.pid > 0);
  assert_int_equal(e.signal, 0);
  conc_future_release(f);
  conc_process_executor_destroy(&ex);
}

/* The futures work with wait, as_completed and done callbacks. */
static void on_done(conc_future_t *f, void *arg) {
  (void)f;
  __atomic_fetch_add((int *)arg, 1, __ATOMIC_ACQ_REL);
}

static void futures_work_with_wait_as_completed_and_callbacks(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 2);
  int ms[4] = {300, 10, 20, 30};
  conc_future_t *fs[4];
  int calls = 0;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(conc_process_executor_submit(&ex, sleep_ms_or_flag, &ms[i],
                                                  sizeof(int), sizeof(int),
                                                  &fs[i]),
                     0);
    assert_int_equal(conc_future_add_done_callback(fs[i], on_done, &calls), 0);
  }
  conc_future_t *done[4], *not_done[4];
  conc_wait_result_t res = {.done = done, .not_done = not_done};
  assert_int_equal(
      conc_futures_wait(fs, 4, CONC_FOREVER, CONC_FIRST_COMPLETED, &res), 0);
  assert_true(res.ndone >= 1);
  assert_false(conc_future_done(fs[0])); /* the slow one is still running */
  conc_as_completed_t it;
  assert_int_equal(conc_as_completed_init(&it, fs, 4, CONC_FOREVER), 0);
  conc_future_t *f, *last = NULL;
  int n = 0;
  while (conc_as_completed_next(&it, &f) == 0) {
    if (++n == 3) /* the three short ones came: let the slow one end */
      __atomic_store_n(&sh->flag, 1, __ATOMIC_RELEASE);
    last = f;
  }
  conc_as_completed_destroy(&it);
  assert_int_equal(n, 4);
  assert_ptr_equal(last, fs[0]);
  assert_int_equal(
      conc_futures_wait(fs, 4, CONC_FOREVER, CONC_ALL_COMPLETED, &res), 0);
  assert_int_equal(res.ndone, 4);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(result_int(fs[i]), ms[i]);
    conc_future_release(fs[i]);
  }
  /* callbacks run right after the state changes, in the completing thread */
  double t0 = conc_monotonic();
  while (__atomic_load_n(&calls, __ATOMIC_ACQUIRE) != 4)
    assert_true(conc_monotonic() - t0 < 5.0);
  conc_process_executor_destroy(&ex);
}

/* ---- worker death ---------------------------------------------------------- */

/* F1 (libconc's default): only the dead worker's task fails. */
static void worker_death_fails_only_its_task(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 2);
  pid_t before[2];
  assert_int_equal(conc_process_executor_pids(&ex, before, 2), 2);
  int in[20];
  conc_future_t *fs[20];
  for (int i = 0; i < 20; i++) {
    in[i] = i + 5;
    assert_int_equal(conc_process_executor_submit(&ex, die_on_13, &in[i],
                                                  sizeof(int), sizeof(int),
                                                  &fs[i]),
                     0);
  }
  for (int i = 0; i < 20; i++) {
    if (in[i] == 13) {
      assert_int_equal(
          conc_process_future_result(fs[i], CONC_FOREVER, NULL, 0, NULL),
          CONC_EWORKERDIED);
      conc_pool_error_t e;
      assert_int_equal(conc_process_future_error(fs[i], &e), 0);
      assert_int_equal(e.signal, SIGKILL);
      assert_int_equal(e.exitcode, -SIGKILL);
      assert_true(e.pid == before[0] || e.pid == before[1]);
      assert_non_null(strstr(e.message, "ForkProcess-"));
      assert_non_null(strstr(e.message, "signal 9"));
    } else {
      assert_int_equal(result_int(fs[i]), in[i] * in[i]);
    }
    conc_future_release(fs[i]);
  }
  pid_t after[2];
  assert_int_equal(conc_process_executor_pids(&ex, after, 2), 2);
  assert_true(after[0] != before[0] || after[1] != before[1]);
  int x = 3;
  conc_future_t *f;
  assert_int_equal(
      conc_process_executor_submit(&ex, square, &x, sizeof x, sizeof x, &f), 0);
  assert_int_equal(result_int(f), 9);
  conc_future_release(f);
  conc_process_executor_destroy(&ex);
}

/* X1 (Python's BrokenProcessPool, as an option). */
static void broken_pool_option_fails_every_pending_future(void **state) {
  (void)state;
  conc_process_executor_t ex;
  assert_int_equal(conc_process_executor_init(
                       &ex,
                       &(conc_process_executor_opts_t){
                           .max_workers = 2,
                           .on_worker_death = CONC_WORKER_DEATH_BREAKS_POOL}),
                   0);
  int in[8] = {13, 1000, 1000, 1000, 1000, 1000, 1000, 1000};
  conc_future_t *fs[8];
  for (int i = 0; i < 8; i++)
    assert_int_equal(conc_process_executor_submit(&ex, i ? sleep_ms : die_on_13,
                                                  &in[i], sizeof(int),
                                                  sizeof(int), &fs[i]),
                     0);
  double t0 = conc_monotonic();
  for (int i = 0; i < 8; i++) {
    assert_int_equal(
        conc_process_future_result(fs[i], CONC_FOREVER, NULL, 0, NULL),
        CONC_EBROKENPOOL);
    conc_future_release(fs[i]);
  }
  assert_true(conc_monotonic() - t0 < 0.9); /* nobody waited for the sleeps */
  int x = 2;
  conc_future_t *f = (void *)&ex;
  assert_int_equal(
      conc_process_executor_submit(&ex, square, &x, sizeof x, sizeof x, &f),
      CONC_EBROKENPOOL);
  assert_ptr_equal(f, (void *)&ex);
  conc_process_executor_destroy(&ex);
}

static void failing_initializer_breaks_the_executor(void **state) {
  (void)state;
  conc_process_executor_t ex;
  assert_int_equal(
      conc_process_executor_init(
          &ex, &(conc_process_executor_opts_t){.max_workers = 2,
                                               .initializer = failing_init}),
      0);
  int x = 2;
  conc_future_t *f;
  int rc =
      conc_process_executor_submit(&ex, square, &x, sizeof x, sizeof x, &f);
  if (rc == 0) {
    assert_int_equal(conc_process_future_result(f, CONC_FOREVER, NULL, 0, NULL),
                     CONC_EBROKENPOOL);
    conc_pool_error_t e;
    assert_int_equal(conc_process_future_error(f, &e), 0);
    assert_non_null(strstr(e.message, "cannot open the database"));
    conc_future_release(f);
  } else {
    assert_int_equal(rc, CONC_EBROKENPOOL);
  }
  conc_process_executor_destroy(&ex);
}

/* ---- X3 X4 X5 ------------------------------------------------------------- */

/* X3: map gives the same results whatever the chunksize. */
static void map_gives_the_same_results_for_any_chunksize(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 2);
  int in[100];
  for (int i = 0; i < 100; i++)
    in[i] = i;
  size_t sizes[] = {0, 6, 40, 50};
  for (int k = 0; k < 4; k++) {
    conc_imap_t *it;
    assert_int_equal(conc_process_executor_map(
                         &ex, square, in, 100, sizeof *in, sizeof(int),
                         &(conc_process_map_opts_t){.chunksize = sizes[k]},
                         &it),
                     0);
    int v, i = 0;
    size_t idx;
    while (conc_imap_next(it, CONC_FOREVER, &v, &idx) == 0) {
      assert_int_equal(idx, i);
      assert_int_equal(v, i * i);
      i++;
    }
    assert_int_equal(i, 100);
    conc_imap_release(it);
  }
  conc_imap_t *it = (void *)&ex;
  assert_int_equal(
      conc_process_executor_map(&ex, square, in, 10, sizeof *in, sizeof(int),
                                &(conc_process_map_opts_t){.timeout = -2}, &it),
      CONC_EINVAL);
  assert_ptr_equal(it, (void *)&ex);
  conc_process_executor_destroy(&ex);
}

/* map's timeout runs from the call; past it the rest is cancelled. */
static void map_timeout_cancels_the_rest(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 1);
  int ms[6] = {10, 400, 400, 400, 400, 400};
  conc_imap_t *it;
  double t0 = conc_monotonic();
  assert_int_equal(conc_process_executor_map(
                       &ex, sleep_ms, ms, 6, sizeof(int), sizeof(int),
                       &(conc_process_map_opts_t){.timeout = 0.2}, &it),
                   0);
  int v;
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, &v, NULL), 0);
  assert_int_equal(v, 10);
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, &v, NULL), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.2);
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, &v, NULL), CONC_ETIMEDOUT);
  conc_async_result_t *r = conc_imap_result(it);
  assert_int_equal(conc_async_result_wait(r, CONC_FOREVER), 0);
  conc_pool_error_t e;
  assert_int_equal(conc_async_result_error(r, 5, &e), 0);
  assert_int_equal(e.code, CONC_ECANCELED);
  conc_imap_release(it);
  /* shutdown does not wait for the cancelled items (one 400 ms one ran) */
  conc_process_executor_destroy(&ex);
  assert_true(conc_monotonic() - t0 < 1.5);
}

/* Releasing a map's iterator before its end cancels what has not started. */
static void releasing_the_map_iterator_cancels_the_rest(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 1);
  int ms[8] = {10, 300, 300, 300, 300, 300, 300, 300};
  conc_imap_t *it;
  assert_int_equal(conc_process_executor_map(&ex, sleep_ms, ms, 8, sizeof(int),
                                             sizeof(int), NULL, &it),
                   0);
  int v;
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, &v, NULL), 0);
  assert_int_equal(v, 10);
  double t0 = conc_monotonic();
  conc_imap_release(it);
  /* at most the items already handed to the worker (two lanes) run */
  assert_int_equal(conc_process_executor_shutdown(&ex, true, false), 0);
  assert_true(conc_monotonic() - t0 < 1.5); /* all eight: 2.1 s */
  conc_process_executor_destroy(&ex);
}

/* X4: max_tasks_per_child=3: one pid for tasks 1-3, another for task 4. */
static void max_tasks_per_child_replaces_the_worker(void **state) {
  (void)state;
  conc_process_executor_t ex;
  assert_int_equal(
      conc_process_executor_init(
          &ex, &(conc_process_executor_opts_t){.max_workers = 1,
                                               .max_tasks_per_child = 3,
                                               .initializer = counting_init}),
      0);
  pid_t pids[7];
  for (int i = 0; i < 7; i++) {
    conc_future_t *f;
    assert_int_equal(conc_process_executor_submit(&ex, report_pid, NULL, 0,
                                                  sizeof(pid_t), &f),
                     0);
    assert_int_equal(conc_process_future_result(f, CONC_FOREVER, &pids[i],
                                                sizeof(pid_t), NULL),
                     0);
    conc_future_release(f);
  }
  assert_int_equal(pids[0], pids[1]);
  assert_int_equal(pids[1], pids[2]);
  assert_int_not_equal(pids[2], pids[3]);
  assert_int_equal(pids[3], pids[5]);
  assert_int_not_equal(pids[5], pids[6]);
  conc_process_executor_destroy(&ex);
  assert_int_equal(__atomic_load_n(&sh->init_calls, __ATOMIC_ACQUIRE), 3);
}

/* X4: shutdown(wait) runs every queued future. */
static void shutdown_runs_every_queued_future(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 2);
  int ms[10];
  conc_future_t *fs[10];
  for (int i = 0; i < 10; i++) {
    ms[i] = 20;
    assert_int_equal(conc_process_executor_submit(&ex, sleep_ms, &ms[i],
                                                  sizeof(int), sizeof(int),
                                                  &fs[i]),
                     0);
  }
  assert_int_equal(conc_process_executor_shutdown(&ex, true, false), 0);
  for (int i = 0; i < 10; i++) {
    assert_true(conc_future_done(fs[i]));
    assert_int_equal(result_int(fs[i]), 20);
    conc_future_release(fs[i]);
  }
  int x = 1;
  conc_future_t *f;
  assert_int_equal(
      conc_process_executor_submit(&ex, square, &x, sizeof x, sizeof x, &f),
      CONC_ESTATE);
  assert_int_equal(conc_process_executor_shutdown(&ex, true, false), 0);
  conc_process_executor_destroy(&ex);
}

/* shutdown(cancel_futures): queued futures are cancelled, running ones end. */
static void shutdown_cancel_futures_cancels_the_queued(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 1);
  int ms = 200;
  conc_future_t *fs[10];
  for (int i = 0; i < 10; i++)
    assert_int_equal(conc_process_executor_submit(
                         &ex, sleep_ms, &ms, sizeof(int), sizeof(int), &fs[i]),
                     0);
  while (!conc_future_running(fs[0]))
    conc_sleep(0.001);
  double t0 = conc_monotonic();
  assert_int_equal(conc_process_executor_shutdown(&ex, true, true), 0);
  assert_true(conc_monotonic() - t0 < 1.0);
  assert_int_equal(result_int(fs[0]), 200);
  for (int i = 1; i < 10; i++) {
    assert_true(conc_future_cancelled(fs[i]));
    assert_int_equal(conc_future_result(fs[i], 0, NULL), CONC_ECANCELED);
    conc_future_release(fs[i]);
  }
  conc_future_release(fs[0]);
  conc_process_executor_destroy(&ex);
}

/* A future cancelled while queued never runs. */
static void cancelled_future_never_runs(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 1);
  int ms = 150, x = 4;
  conc_future_t *slow, *f, *g;
  assert_int_equal(conc_process_executor_submit(&ex, sleep_ms, &ms, sizeof ms,
                                                sizeof ms, &slow),
                   0);
  assert_int_equal(
      conc_process_executor_submit(&ex, square, &x, sizeof x, sizeof x, &f), 0);
  assert_int_equal(
      conc_process_executor_submit(&ex, square, &x, sizeof x, sizeof x, &g), 0);
  assert_true(conc_future_cancel(f));
  assert_int_equal(result_int(g), 16);
  assert_int_equal(conc_future_result(f, 0, NULL), CONC_ECANCELED);
  assert_int_equal(result_int(slow), 150);
  conc_future_release(slow);
  conc_future_release(f);
  conc_future_release(g);
  conc_process_executor_destroy(&ex);
}

/* X5: no more than max_workers processes; bad options; closed executor. */
static void max_workers_bounds_the_processes(void **state) {
  (void)state;
  conc_process_executor_t ex;
  assert_int_equal(conc_process_executor_init(
                       &ex, &(conc_process_executor_opts_t){.max_workers = -1}),
                   CONC_EINVAL);
  assert_int_equal(
      conc_process_executor_init(
          &ex, &(conc_process_executor_opts_t){.max_tasks_per_child = -1}),
      CONC_EINVAL);
  make_ex(&ex, 3);
  pid_t seen[60];
  conc_future_t *fs[60];
  for (int i = 0; i < 60; i++)
    assert_int_equal(conc_process_executor_submit(&ex, report_pid, NULL, 0,
                                                  sizeof(pid_t), &fs[i]),
                     0);
  int distinct = 0;
  for (int i = 0; i < 60; i++) {
    pid_t p;
    assert_int_equal(
        conc_process_future_result(fs[i], CONC_FOREVER, &p, sizeof p, NULL), 0);
    conc_future_release(fs[i]);
    bool known = false;
    for (int k = 0; k < distinct; k++)
      known = known || seen[k] == p;
    if (!known)
      seen[distinct++] = p;
  }
  assert_true(distinct <= 3);
  assert_int_equal(conc_process_executor_pids(&ex, NULL, 0), 3);
  conc_process_executor_destroy(&ex);
  assert_int_equal(conc_process_executor_pids(&ex, NULL, 0), CONC_EINVAL);
}

/* with ProcessPoolExecutor() as ex: ... ; futures outlive the executor. */
static void scoped_use_shuts_down_and_futures_outlive_it(void **state) {
  (void)state;
  conc_process_executor_t ex;
  make_ex(&ex, 2);
  conc_future_t *f = NULL;
  int x = 7;
  CONC_WITH_PROCESS_EXECUTOR(&ex) {
    assert_int_equal(
        conc_process_executor_submit(&ex, square, &x, sizeof x, sizeof x, &f),
        0);
  }
  assert_true(conc_future_done(f));
  assert_int_equal(
      conc_process_executor_submit(&ex, square, &x, sizeof x, sizeof x, NULL),
      CONC_ESTATE);
  conc_process_executor_destroy(&ex);
  assert_int_equal(result_int(f), 49);
  conc_future_release(f);
}

CONC_TEST_MAIN(T(submit_returns_the_result_as_bytes),
               T(failure_has_code_message_and_detail),
               T(futures_work_with_wait_as_completed_and_callbacks),
               T(worker_death_fails_only_its_task),
               T(broken_pool_option_fails_every_pending_future),
               T(failing_initializer_breaks_the_executor),
               T(map_gives_the_same_results_for_any_chunksize),
               T(map_timeout_cancels_the_rest),
               T(releasing_the_map_iterator_cancels_the_rest),
               T(max_tasks_per_child_replaces_the_worker),
               T(shutdown_runs_every_queued_future),
               T(shutdown_cancel_futures_cancels_the_queued),
               T(cancelled_future_never_runs),
               T(max_workers_bounds_the_processes),
               T(scoped_use_shuts_down_and_futures_outlive_it))
