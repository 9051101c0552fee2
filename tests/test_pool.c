/*
 * Pool (spec L1-L20, F1, F7, F9). Every test arms a watchdog (alarm) so a
 * hang fails the program, and checks at its end that every child was
 * reaped. Task functions run in forked workers: they only compute, sleep or
 * kill themselves, which keeps them safe in the children of a (TSan)
 * multi-threaded parent.
 */
#include "harness.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/pool.h"
#include "conc/process.h"
#include "pool-int.h"

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
  /* every worker was reaped by the pool */
  assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
  munmap(sh, sizeof *sh);
  alarm(0);
  return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ---- tasks ----------------------------------------------------------------
 */

static int square(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc, (void)rl;
  int x = *(const int *)a;
  *(int *)r = x * x;
  return 0;
}

struct pair {
  int a, b;
};

static int add_pair(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc, (void)rl;
  const struct pair *p = a;
  *(int *)r = p->a + p->b;
  return 0;
}

static int sleep_ms(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)r, (void)rc, (void)rl;
  conc_sleep(*(const int *)a / 1000.0);
  return 0;
}

static int report_pid(const void *a, size_t al, void *r, size_t rc,
                      size_t *rl) {
  (void)a, (void)al, (void)rc, (void)rl;
  *(pid_t *)r = getpid();
  return 0;
}

/* Fails on multiples of 7 with a message (Python: raises ValueError). */
static int picky(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc, (void)rl;
  int x = *(const int *)a;
  if (x % 7 == 0)
    return conc_raise(CONC_EINVAL, "bad item %d", x);
  *(int *)r = -x;
  return 0;
}

/* Dies from SIGKILL on item 13, as a worker killed mid-task would. */
static int die_on_13(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  int x = *(const int *)a;
  if (x == 13)
    raise(SIGKILL);
  return square(a, al, r, rc, rl);
}

/* Publishes its pid, then sleeps until killed from outside. */
static int wait_to_be_killed(const void *a, size_t al, void *r, size_t rc,
                             size_t *rl) {
  (void)a, (void)al, (void)r, (void)rc, (void)rl;
  __atomic_store_n(&sh->pid, getpid(), __ATOMIC_RELEASE);
  while (!__atomic_load_n(&sh->flag, __ATOMIC_ACQUIRE))
    pause();
  return 0;
}

/* Asks for more room than it was given on odd input. */
static int too_big(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al;
  int x = *(const int *)a;
  if (x % 2) {
    *rl = rc + 1;
    return 0;
  }
  *(int *)r = x;
  *rl = sizeof(int);
  return 0;
}

static int count_init(void *arg) {
  __atomic_fetch_add(&sh->init_calls, 1, __ATOMIC_ACQ_REL);
  __atomic_store_n(&sh->flag, *(int *)arg, __ATOMIC_RELEASE);
  return 0;
}

static conc_pool_t *make_pool(conc_pool_t *p, int n) {
  assert_int_equal(conc_pool_init(p, &(conc_pool_opts_t){.processes = n}), 0);
  return p;
}

static void close_join_destroy(conc_pool_t *p) {
  assert_int_equal(conc_pool_close(p), 0);
  assert_int_equal(conc_pool_join(p), 0);
  conc_pool_destroy(p);
}

/* ---- L1 L2 --------------------------------------------------------------- */

/* L1 */
static void apply_returns_the_value(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  int x = 12, y = 0;
  size_t len = 0;
  assert_int_equal(
      conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, &len, NULL), 0);
  assert_int_equal(y, 144);
  assert_int_equal(len, sizeof y);
  close_join_destroy(&p);
}

/* L1 */
static void map_keeps_input_order_default_and_chunksize_20(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 3);
  int in[100], out[100];
  for (int i = 0; i < 100; i++)
    in[i] = i;
  assert_int_equal(conc_pool_map(&p, square, in, 100, sizeof *in, sizeof *out,
                                 NULL, out, NULL),
                   0);
  for (int i = 0; i < 100; i++)
    assert_int_equal(out[i], i * i);
  memset(out, 0, sizeof out);
  assert_int_equal(conc_pool_map(&p, square, in, 100, sizeof *in, sizeof *out,
                                 &(conc_pool_map_opts_t){.chunksize = 20}, out,
                                 NULL),
                   0);
  for (int i = 0; i < 100; i++)
    assert_int_equal(out[i], i * i);
  close_join_destroy(&p);
}

/* L2 */
static void starmap_and_starmap_async_unpack_structs(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  struct pair in[10];
  int out[10];
  for (int i = 0; i < 10; i++)
    in[i] = (struct pair){i, 10 * i};
  assert_int_equal(conc_pool_starmap(&p, add_pair, in, 10, sizeof *in,
                                     sizeof *out, NULL, out, NULL),
                   0);
  for (int i = 0; i < 10; i++)
    assert_int_equal(out[i], 11 * i);
  conc_async_result_t *r;
  assert_int_equal(conc_pool_starmap_async(&p, add_pair, in, 10, sizeof *in,
                                           sizeof *out, NULL, &r),
                   0);
  memset(out, 0, sizeof out);
  assert_int_equal(conc_async_result_get(r, CONC_FOREVER, out, sizeof out), 0);
  for (int i = 0; i < 10; i++)
    assert_int_equal(out[i], 11 * i);
  conc_async_result_release(r);
  close_join_destroy(&p);
}

/* ---- L3 ------------------------------------------------------------------ */

struct cb_log {
  int ok, fail, code;
  long index;
  int first;
  char message[CONC_POOL_MESSAGE_MAX];
};

static void on_ok(conc_async_result_t *r, void *arg) {
  struct cb_log *l = arg;
  size_t len;
  const int *v = conc_async_result_value(r, &len);
  l->first = v && len ? v[0] : -1;
  __atomic_fetch_add(&l->ok, 1, __ATOMIC_ACQ_REL);
}

static void on_err(conc_async_result_t *r, void *arg) {
  struct cb_log *l = arg;
  conc_pool_error_t e;
  assert_int_equal(conc_async_result_error(r, CONC_POOL_FIRST_ERROR, &e), 0);
  l->index = e.index;
  l->code = e.code;
  snprintf(l->message, sizeof l->message, "%s", e.message);
  __atomic_fetch_add(&l->fail, 1, __ATOMIC_ACQ_REL);
}

/* L3 */
static void map_async_calls_callback_once_or_error_callback_once(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  int in[20];
  for (int i = 0; i < 20; i++)
    in[i] = i + 1;
  struct cb_log good = {0}, bad = {0};
  conc_async_result_t *r1, *r2;
  assert_int_equal(
      conc_pool_map_async(&p, square, in, 20, sizeof *in, sizeof(int),
                          &(conc_pool_async_opts_t){.callback = on_ok,
                                                    .error_callback = on_err,
                                                    .callback_arg = &good},
                          &r1),
      0);
  assert_int_equal(
      conc_pool_map_async(&p, picky, in, 20, sizeof *in, sizeof(int),
                          &(conc_pool_async_opts_t){.callback = on_ok,
                                                    .error_callback = on_err,
                                                    .callback_arg = &bad},
                          &r2),
      0);
  assert_int_equal(conc_async_result_wait(r1, CONC_FOREVER), 0);
  assert_int_equal(conc_async_result_get(r2, CONC_FOREVER, NULL, 0),
                   CONC_EINVAL);
  /* the callbacks ran before get() returned */
  assert_int_equal(good.ok, 1);
  assert_int_equal(good.fail, 0);
  assert_int_equal(good.first, 1);
  assert_int_equal(bad.ok, 0);
  assert_int_equal(bad.fail, 1);
  assert_int_equal(bad.index, 6); /* item 7 is the first failure */
  assert_int_equal(bad.code, CONC_EINVAL);
  assert_string_equal(bad.message, "bad item 7");
  conc_async_result_release(r1);
  conc_async_result_release(r2);
  close_join_destroy(&p);
}

/* L3: apply_async with callbacks, and fire-and-forget (out NULL). */
static void apply_async_callback_runs_without_a_handle(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  struct cb_log log = {0};
  int x = 9;
  assert_int_equal(
      conc_pool_apply_async(
          &p, square, &x, sizeof x, sizeof(int),
          &(conc_pool_async_opts_t){.callback = on_ok, .callback_arg = &log},
          NULL),
      0);
  close_join_destroy(&p);
  assert_int_equal(log.ok, 1);
  assert_int_equal(log.first, 81);
}

/* ---- L4 (analogue) L5 ---------------------------------------------------- */

/* L4: an argument that cannot cross (bigger than the transfer area) fails
 * the submission at once instead of hanging. */
static void argument_too_big_for_transfer_fails_submission(void **state) {
  (void)state;
  conc_pool_t p;
  assert_int_equal(conc_pool_init(&p, &(conc_pool_opts_t){.processes = 1,
                                                          .buffer_size = 4096}),
                   0);
  static char big[8192];
  char out[4];
  assert_int_equal(
      conc_pool_apply(&p, square, big, sizeof big, out, sizeof out, NULL, NULL),
      CONC_EMSGSIZE);
  int x = 3, y = 0;
  assert_int_equal(
      conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, NULL, NULL), 0);
  assert_int_equal(y, 9);
  close_join_destroy(&p);
}

/* L5 */
static void empty_inputs_complete_at_once(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  double t0 = conc_monotonic();
  assert_int_equal(conc_pool_map(&p, square, NULL, 0, sizeof(int), sizeof(int),
                                 NULL, NULL, NULL),
                   0);
  assert_int_equal(conc_pool_map(&p, square, NULL, 0, sizeof(int), sizeof(int),
                                 &(conc_pool_map_opts_t){.chunksize = 1}, NULL,
                                 NULL),
                   0);
  struct cb_log log = {0};
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_map_async(
          &p, square, NULL, 0, sizeof(int), sizeof(int),
          &(conc_pool_async_opts_t){.callback = on_ok, .callback_arg = &log},
          &r),
      0);
  assert_true(conc_async_result_ready(r));
  assert_int_equal(conc_async_result_get(r, 0, NULL, 0), 0);
  assert_int_equal(log.ok, 1);
  conc_async_result_release(r);
  conc_imap_t *it;
  assert_int_equal(
      conc_pool_imap(&p, square, NULL, 0, sizeof(int), sizeof(int), 0, &it), 0);
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, NULL, NULL), CONC_EEOF);
  conc_imap_release(it);
  assert_int_equal(conc_pool_imap_unordered(&p, square, NULL, 0, sizeof(int),
                                            sizeof(int), 1, &it),
                   0);
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, NULL, NULL), CONC_EEOF);
  conc_imap_release(it);
  assert_quick(conc_monotonic() - t0);
  close_join_destroy(&p);
}

/* ---- L7 L8 --------------------------------------------------------------- */

/* L7 */
static void get_times_out_and_successful_needs_ready(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  int ms = 600;
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_apply_async(&p, sleep_ms, &ms, sizeof ms, 0, NULL, &r), 0);
  assert_int_equal(conc_async_result_successful(r), CONC_ESTATE);
  double t0 = conc_monotonic();
  assert_int_equal(conc_async_result_get(r, 0.2, NULL, 0), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.2);
  assert_false(conc_async_result_ready(r));
  assert_int_equal(conc_async_result_get(r, 0.0 / 0.0, NULL, 0), CONC_EINVAL);
  assert_int_equal(conc_async_result_get(r, CONC_FOREVER, NULL, 0), 0);
  assert_true(conc_async_result_ready(r));
  assert_int_equal(conc_async_result_successful(r), 1);
  conc_async_result_release(r);
  close_join_destroy(&p);
}

/* L8 */
static void imap_yields_in_order_then_ends(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 3);
  int in[50];
  for (int i = 0; i < 50; i++)
    in[i] = 49 - i;
  for (size_t cs = 1; cs <= 7; cs += 6) {
    conc_imap_t *it;
    assert_int_equal(
        conc_pool_imap(&p, square, in, 50, sizeof *in, sizeof(int), cs, &it),
        0);
    for (int i = 0; i < 50; i++) {
      int v = -1;
      size_t idx = 99;
      assert_int_equal(conc_imap_next(it, CONC_FOREVER, &v, &idx), 0);
      assert_int_equal(idx, i);
      assert_int_equal(v, in[i] * in[i]);
    }
    assert_int_equal(conc_imap_next(it, CONC_FOREVER, NULL, NULL), CONC_EEOF);
    assert_int_equal(conc_imap_next(it, 0, NULL, NULL), CONC_EEOF);
    conc_imap_release(it);
  }
  close_join_destroy(&p);
}

/* L8 */
static void imap_unordered_yields_each_result_once(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 3);
  int in[300];
  for (int i = 0; i < 300; i++)
    in[i] = i;
  size_t sizes[] = {1, 100};
  for (int k = 0; k < 2; k++) {
    conc_imap_t *it;
    assert_int_equal(conc_pool_imap_unordered(&p, square, in, 300, sizeof *in,
                                              sizeof(int), sizes[k], &it),
                     0);
    char seen[300] = {0};
    int v;
    size_t idx;
    for (int i = 0; i < 300; i++) {
      assert_int_equal(conc_imap_next(it, CONC_FOREVER, &v, &idx), 0);
      assert_true(idx < 300);
      assert_false(seen[idx]);
      seen[idx] = 1;
      assert_int_equal(v, (int)(idx * idx));
    }
    assert_int_equal(conc_imap_next(it, CONC_FOREVER, &v, &idx), CONC_EEOF);
    conc_imap_release(it);
  }
  close_join_destroy(&p);
}

/* L8: next(timeout) times out without consuming. */
static void imap_next_times_out_without_consuming(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  int ms = 400;
  conc_imap_t *it;
  assert_int_equal(conc_pool_imap(&p, sleep_ms, &ms, 1, sizeof ms, 0, 0, &it),
                   0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_imap_next(it, 0.1, NULL, NULL), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.1);
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, NULL, NULL), 0);
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, NULL, NULL), CONC_EEOF);
  conc_imap_release(it);
  close_join_destroy(&p);
}

/* ---- L9 L18 -------------------------------------------------------------- */

/* L9 L18 */
static void bad_options_are_einval(void **state) {
  (void)state;
  conc_pool_t p;
  assert_int_equal(conc_pool_init(&p, &(conc_pool_opts_t){.processes = -1}),
                   CONC_EINVAL);
  assert_int_equal(
      conc_pool_init(&p, &(conc_pool_opts_t){.maxtasksperchild = -1}),
      CONC_EINVAL);
  assert_int_equal(conc_pool_init(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_pool_close(NULL), CONC_EINVAL);
  assert_int_equal(conc_pool_apply(NULL, square, NULL, 0, NULL, 0, NULL, NULL),
                   CONC_EINVAL);
}

/* L9 */
static void pool_has_the_requested_or_cpu_count_workers(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 3);
  assert_int_equal(conc_pool_processes(&p), 3);
  /* three tasks that overlap in time run in three distinct workers */
  int ms[3] = {300, 300, 300};
  pid_t pids[3];
  conc_async_result_t *r[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_pool_apply_async(&p, sleep_ms, &ms[i], sizeof(int), 0,
                                           NULL, &r[i]),
                     0);
  double t0 = conc_monotonic();
  for (int i = 0; i < 3; i++) {
    assert_int_equal(conc_async_result_get(r[i], CONC_FOREVER, NULL, 0), 0);
    conc_async_result_release(r[i]);
  }
  assert_true(conc_monotonic() - t0 < 0.3 + conc_test_slack(0.3));
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_pool_apply(&p, report_pid, NULL, 0, &pids[i],
                                     sizeof(pid_t), NULL, NULL),
                     0);
  conc_pool_terminate(&p);
  conc_pool_destroy(&p);
  assert_int_equal(conc_pool_init(&p, NULL), 0);
  assert_int_equal(conc_pool_processes(&p), conc_process_cpu_count());
  conc_pool_destroy(&p);
}

/* L18 */
static void initializer_runs_once_per_worker(void **state) {
  (void)state;
  conc_pool_t p;
  int token = 42;
  assert_int_equal(
      conc_pool_init(&p, &(conc_pool_opts_t){.processes = 3,
                                             .initializer = count_init,
                                             .initarg = &token}),
      0);
  int in[30], out[30];
  for (int i = 0; i < 30; i++)
    in[i] = i;
  assert_int_equal(conc_pool_map(&p, square, in, 30, sizeof *in, sizeof *out,
                                 NULL, out, NULL),
                   0);
  close_join_destroy(&p);
  assert_int_equal(sh->init_calls, 3);
  assert_int_equal(sh->flag, 42);
}

/* ---- L10 L11 L12 F9 ------------------------------------------------------ */

/* L10 F9 */
static void terminate_with_10000_pending_returns_promptly(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  static int ms[10000];
  for (int i = 0; i < 10000; i++)
    ms[i] = 1000;
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_map_async(&p, sleep_ms, ms, 10000, sizeof(int), 0,
                          &(conc_pool_async_opts_t){.chunksize = 1}, &r),
      0);
  conc_async_result_t *singles[50];
  for (int i = 0; i < 50; i++)
    assert_int_equal(conc_pool_apply_async(&p, sleep_ms, &ms[0], sizeof(int), 0,
                                           NULL, &singles[i]),
                     0);
  conc_sleep(0.05);
  double t0 = conc_monotonic();
  assert_int_equal(conc_pool_terminate(&p), 0);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(conc_pool_join(&p), 0);
  assert_int_equal(conc_async_result_get(r, 0, NULL, 0), CONC_ECANCELED);
  for (int i = 0; i < 50; i++) {
    assert_int_equal(conc_async_result_get(singles[i], 0, NULL, 0),
                     CONC_ECANCELED);
    conc_async_result_release(singles[i]);
  }
  conc_pool_error_t e;
  assert_int_equal(conc_async_result_error(r, 9999, &e), 0);
  assert_int_equal(e.code, CONC_ECANCELED);
  assert_string_equal(e.message, "pool terminated");
  conc_async_result_release(r);
  conc_pool_destroy(&p);
}

/* A task that blocks SIGTERM and never ends. */
static int ignore_sigterm(const void *a, size_t al, void *r, size_t rc,
                          size_t *rl) {
  (void)a, (void)al, (void)r, (void)rc, (void)rl;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  __atomic_store_n(&sh->pid, getpid(), __ATOMIC_RELEASE);
  while (!__atomic_load_n(&sh->flag, __ATOMIC_ACQUIRE))
    pause();
  return 0;
}

/* L10 F9: terminate finishes even when a task blocks SIGTERM (SIGKILL after
 * a 2 s grace period). */
static void terminate_kills_a_worker_that_blocks_sigterm(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_apply_async(&p, ignore_sigterm, NULL, 0, 0, NULL, &r), 0);
  while (__atomic_load_n(&sh->pid, __ATOMIC_ACQUIRE) == 0)
    conc_sleep(0.001);
  double t0 = conc_monotonic();
  assert_int_equal(conc_pool_terminate(&p), 0);
  assert_elapsed(conc_monotonic() - t0, 2.0);
  assert_int_equal(conc_async_result_get(r, 0, NULL, 0), CONC_ECANCELED);
  conc_async_result_release(r);
  conc_pool_destroy(&p);
}

/* F9: close+join with large results never deadlocks. */
static void close_join_with_large_results_completes(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  enum { N = 64, SZ = 256 * 1024 };
  int in[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_map_async(&p, square, in, N, sizeof *in, SZ, NULL, &r), 0);
  assert_int_equal(conc_pool_close(&p), 0);
  assert_int_equal(conc_pool_join(&p), 0);
  size_t len;
  const unsigned char *v = conc_async_result_value(r, &len);
  assert_non_null(v);
  assert_int_equal(len, (size_t)N * SZ);
  for (int i = 0; i < N; i++)
    assert_int_equal(*(const int *)(const void *)(v + (size_t)i * SZ), i * i);
  conc_async_result_release(r);
  conc_pool_destroy(&p);
}

/* L11 */
static void scoped_use_terminates_and_later_submissions_fail(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  int entered = 0, x = 5, y = 0;
  CONC_WITH_POOL(&p) {
    entered = 1;
    assert_int_equal(
        conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, NULL, NULL), 0);
  }
  assert_int_equal(entered, 1);
  assert_int_equal(y, 25);
  assert_int_equal(conc_pool_enter(&p), CONC_ESTATE);
  conc_async_result_t *r = (void *)&p;
  conc_imap_t *it = (void *)&p;
  assert_int_equal(
      conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, NULL, NULL),
      CONC_ESTATE);
  assert_int_equal(
      conc_pool_apply_async(&p, square, &x, sizeof x, sizeof y, NULL, &r),
      CONC_ESTATE);
  assert_ptr_equal(r, (void *)&p); /* outputs are untouched on failure */
  assert_int_equal(
      conc_pool_map(&p, square, &x, 1, sizeof x, sizeof y, NULL, &y, NULL),
      CONC_ESTATE);
  assert_int_equal(
      conc_pool_imap(&p, square, &x, 1, sizeof x, sizeof y, 0, &it),
      CONC_ESTATE);
  assert_ptr_equal(it, (void *)&p);
  entered = 0;
  CONC_WITH_POOL(&p) { entered = 1; }
  assert_int_equal(entered, 0);
  conc_pool_destroy(&p);
  /* after close, too */
  make_pool(&p, 1);
  assert_int_equal(conc_pool_close(&p), 0);
  assert_int_equal(
      conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, NULL, NULL),
      CONC_ESTATE);
  assert_int_equal(conc_pool_enter(&p), CONC_ESTATE);
  assert_int_equal(conc_pool_join(&p), 0);
  conc_pool_destroy(&p);
}

/* L12 */
static void join_while_running_is_an_error(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  assert_int_equal(conc_pool_join(&p), CONC_ESTATE);
  close_join_destroy(&p);
}

/* ---- L13 L14 L15 L16 L20 --------------------------------------------------
 */

/* L13 */
static void worker_error_carries_code_and_message(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  int x = 14, y = 0;
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_apply_async(&p, picky, &x, sizeof x, sizeof y, NULL, &r), 0);
  assert_int_equal(conc_async_result_get(r, CONC_FOREVER, &y, sizeof y),
                   CONC_EINVAL);
  conc_pool_error_t ea, es;
  assert_int_equal(conc_async_result_error(r, CONC_POOL_FIRST_ERROR, &ea), 0);
  assert_string_equal(ea.message, "bad item 14");
  assert_int_equal(ea.code, CONC_EINVAL);
  assert_int_equal(ea.index, 0);
  assert_int_equal(ea.signal, 0);
  assert_true(ea.pid > 0);
  assert_int_equal(conc_async_result_successful(r), 0);
  conc_async_result_release(r);
  /* the synchronous call gives the same detail; the result is untouched */
  y = 77;
  assert_int_equal(
      conc_pool_apply(&p, picky, &x, sizeof x, &y, sizeof y, NULL, &es),
      CONC_EINVAL);
  assert_int_equal(y, 77);
  assert_int_equal(es.code, CONC_EINVAL);
  assert_string_equal(es.message, "bad item 14");
  assert_int_equal(es.pid, ea.pid);
  close_join_destroy(&p);
}

/* L14 */
static void map_does_not_fail_fast(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  int in[100], out[100], errs[100];
  for (int i = 0; i < 100; i++)
    in[i] = i + 1;
  memset(out, 0, sizeof out);
  assert_int_equal(
      conc_pool_map(&p, picky, in, 100, sizeof *in, sizeof *out,
                    &(conc_pool_map_opts_t){.chunksize = 3, .errors = errs},
                    out, NULL),
      CONC_EINVAL);
  for (int i = 0; i < 100; i++) {
    if (in[i] % 7 == 0) {
      assert_int_equal(errs[i], CONC_EINVAL);
    } else {
      assert_int_equal(errs[i], 0); /* every other item ran */
      assert_int_equal(out[i], -in[i]);
    }
  }
  close_join_destroy(&p);
}

/* L15 (analogue of an unpicklable result): a result larger than its declared
 * capacity fails that task only; the worker survives (20 rounds). */
static void oversized_result_fails_only_that_task(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  pid_t first = 0, pid = 0;
  assert_int_equal(conc_pool_apply(&p, report_pid, NULL, 0, &first,
                                   sizeof first, NULL, NULL),
                   0);
  for (int i = 0; i < 20; i++) {
    int x = 2 * i + 1, y = 0;
    struct cb_log log = {0};
    conc_async_result_t *r;
    assert_int_equal(conc_pool_apply_async(
                         &p, too_big, &x, sizeof x, sizeof y,
                         &(conc_pool_async_opts_t){.error_callback = on_err,
                                                   .callback_arg = &log},
                         &r),
                     0);
    assert_int_equal(conc_async_result_get(r, CONC_FOREVER, &y, sizeof y),
                     CONC_EMSGSIZE);
    assert_int_equal(log.fail, 1);
    assert_non_null(strstr(log.message, "exceeds"));
    conc_async_result_release(r);
    x = 2 * i;
    size_t len = 0;
    assert_int_equal(
        conc_pool_apply(&p, too_big, &x, sizeof x, &y, sizeof y, &len, NULL),
        0);
    assert_int_equal(y, x);
    assert_int_equal(len, sizeof y);
  }
  assert_int_equal(
      conc_pool_apply(&p, report_pid, NULL, 0, &pid, sizeof pid, NULL, NULL),
      0);
  assert_int_equal(pid, first);
  close_join_destroy(&p);
}

static int count_distinct(const pid_t *v, int n) {
  int d = 0;
  for (int i = 0; i < n; i++) {
    int j = 0;
    while (j < i && v[j] != v[i])
      j++;
    d += j == i;
  }
  return d;
}

/* L16 */
static void maxtasksperchild_replaces_workers(void **state) {
  (void)state;
  conc_pool_t p;
  assert_int_equal(
      conc_pool_init(
          &p, &(conc_pool_opts_t){.processes = 3, .maxtasksperchild = 10}),
      0);
  pid_t pids[100];
  conc_async_result_t *r[100];
  for (int i = 0; i < 100; i++)
    assert_int_equal(conc_pool_apply_async(&p, report_pid, NULL, 0,
                                           sizeof(pid_t), NULL, &r[i]),
                     0);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(
        conc_async_result_get(r[i], CONC_FOREVER, &pids[i], sizeof(pid_t)), 0);
    conc_async_result_release(r[i]);
  }
  /* 100 tasks at 10 per worker: at least 10 different processes */
  assert_true(count_distinct(pids, 100) >= 10);
  int in[40], out[40];
  for (int i = 0; i < 40; i++)
    in[i] = i;
  assert_int_equal(conc_pool_map(&p, square, in, 40, sizeof *in, sizeof *out,
                                 &(conc_pool_map_opts_t){.chunksize = 1}, out,
                                 NULL),
                   0);
  for (int i = 0; i < 40; i++)
    assert_int_equal(out[i], i * i);
  close_join_destroy(&p);
}

/* L20 */
static void default_chunksize_is_ceil_len_over_4_workers(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 3);
  static int in[1000];
  size_t ns[] = {1, 12, 13, 100, 1000};
  for (int k = 0; k < 5; k++) {
    conc_async_result_t *r;
    assert_int_equal(conc_pool_map_async(&p, square, in, ns[k], sizeof(int),
                                         sizeof(int), NULL, &r),
                     0);
    assert_int_equal(conc__pool_chunksize(r), (ns[k] + 11) / 12);
    assert_int_equal(conc_async_result_wait(r, CONC_FOREVER), 0);
    conc_async_result_release(r);
  }
  close_join_destroy(&p);
}

/* ---- F1 F7 -------------------------------------------------------------- */

/* F1 */
static void killed_worker_fails_only_its_item_in_map(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  int in[40], out[40], errs[40];
  for (int i = 0; i < 40; i++)
    in[i] = i;
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_map_async(&p, die_on_13, in, 40, sizeof *in, sizeof *out,
                          &(conc_pool_async_opts_t){.chunksize = 10}, &r),
      0);
  memset(out, 0xff, sizeof out);
  assert_int_equal(conc_async_result_get(r, CONC_FOREVER, out, sizeof out),
                   CONC_EWORKERDIED);
  conc_pool_error_t ea, es;
  assert_int_equal(conc_async_result_error(r, CONC_POOL_FIRST_ERROR, &ea), 0);
  assert_int_equal(ea.index, 13);
  assert_int_equal(ea.code, CONC_EWORKERDIED);
  assert_int_equal(ea.signal, SIGKILL);
  assert_int_equal(ea.exitcode, -SIGKILL);
  assert_true(ea.pid > 0);
  assert_non_null(strstr(ea.message, "signal 9"));
  assert_non_null(strstr(ea.message, "ForkPoolWorker-"));
  /* the good results are kept: get() copied them, value() shows them */
  for (int i = 0; i < 40; i++)
    assert_int_equal(out[i], i == 13 ? 0 : i * i);
  size_t len;
  const int *v = conc_async_result_value(r, &len);
  assert_non_null(v);
  assert_int_equal(len, sizeof out);
  assert_int_equal(v[39], 39 * 39);
  for (int i = 0; i < 40; i++) {
    assert_int_equal(conc_async_result_error(r, (size_t)i, &es), 0);
    assert_int_equal(es.code, i == 13 ? CONC_EWORKERDIED : 0);
  }
  conc_async_result_release(r);
  /* the synchronous map reports the same per item, with the results */
  static conc_pool_error_t items[40];
  memset(out, 0, sizeof out);
  assert_int_equal(conc_pool_map(&p, die_on_13, in, 40, sizeof *in, sizeof *out,
                                 &(conc_pool_map_opts_t){.chunksize = 40,
                                                         .errors = errs,
                                                         .item_errors = items},
                                 out, &es),
                   CONC_EWORKERDIED);
  assert_int_equal(es.index, 13);
  assert_int_equal(es.signal, SIGKILL);
  assert_non_null(strstr(es.message, "signal 9"));
  for (int i = 0; i < 40; i++) {
    assert_int_equal(errs[i], i == 13 ? CONC_EWORKERDIED : 0);
    assert_int_equal(items[i].code, errs[i]);
    assert_int_equal(items[i].index, i);
    if (i != 13)
      assert_int_equal(out[i], i * i);
  }
  assert_int_equal(items[13].signal, SIGKILL);
  /* the pool was refilled and works */
  assert_int_equal(conc_pool_map(&p, square, in, 40, sizeof *in, sizeof *out,
                                 NULL, out, NULL),
                   0);
  close_join_destroy(&p);
}

/* F1: apply (which sleeps on the worker's slot) sees its worker die. */
static void apply_reports_its_worker_death(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  int x = 13, y = 0;
  assert_int_equal(
      conc_pool_apply(&p, die_on_13, &x, sizeof x, &y, sizeof y, NULL, NULL),
      CONC_EWORKERDIED);
  x = 12;
  assert_int_equal(
      conc_pool_apply(&p, die_on_13, &x, sizeof x, &y, sizeof y, NULL, NULL),
      0);
  assert_int_equal(y, 144);
  close_join_destroy(&p);
}

static void *apply_forever(void *arg) {
  conc_pool_t *p = arg;
  static int rc;
  rc = conc_pool_apply(p, wait_to_be_killed, NULL, 0, NULL, 0, NULL, NULL);
  return &rc;
}

/* L10: terminate releases a thread blocked in apply. */
static void terminate_releases_a_blocked_apply(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  pthread_t t = conc_test_spawn(apply_forever, &p);
  while (__atomic_load_n(&sh->pid, __ATOMIC_ACQUIRE) == 0)
    conc_sleep(0.001);
  double t0 = conc_monotonic();
  assert_int_equal(conc_pool_terminate(&p), 0);
  void *res;
  assert_int_equal(pthread_join(t, &res), 0);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(*(int *)res, CONC_ECANCELED);
  conc_pool_destroy(&p);
}

/* F1: a worker killed from outside: its apply_async reports the death to
 * error_callback; the other tasks complete. */
static void externally_killed_worker_is_replaced(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  struct cb_log log = {0};
  conc_async_result_t *victim;
  assert_int_equal(
      conc_pool_apply_async(&p, wait_to_be_killed, NULL, 0, 0,
                            &(conc_pool_async_opts_t){.error_callback = on_err,
                                                      .callback_arg = &log},
                            &victim),
      0);
  int in[20], out[20];
  for (int i = 0; i < 20; i++)
    in[i] = i;
  conc_async_result_t *others;
  assert_int_equal(conc_pool_map_async(&p, square, in, 20, sizeof *in,
                                       sizeof *out, NULL, &others),
                   0);
  pid_t pid;
  while ((pid = __atomic_load_n(&sh->pid, __ATOMIC_ACQUIRE)) == 0)
    conc_sleep(0.001);
  assert_int_equal(kill(pid, SIGKILL), 0);
  assert_int_equal(conc_async_result_get(victim, CONC_FOREVER, NULL, 0),
                   CONC_EWORKERDIED);
  assert_int_equal(log.fail, 1);
  assert_int_equal(log.code, CONC_EWORKERDIED);
  conc_pool_error_t e;
  assert_int_equal(conc_async_result_error(victim, 0, &e), 0);
  assert_int_equal(e.signal, SIGKILL);
  assert_int_equal(e.pid, pid);
  assert_int_equal(conc_async_result_get(others, CONC_FOREVER, out, sizeof out),
                   0);
  for (int i = 0; i < 20; i++)
    assert_int_equal(out[i], i * i);
  conc_async_result_release(victim);
  conc_async_result_release(others);
  pid_t after = 0;
  assert_int_equal(conc_pool_apply(&p, report_pid, NULL, 0, &after,
                                   sizeof after, NULL, NULL),
                   0);
  assert_int_not_equal(after, pid);
  close_join_destroy(&p);
}

/* An apply nobody waits on in get() still completes: the worker that held
 * its result thread's wake-up back for the caller gives it soon, so a
 * poller of ready() sees it, one after another, without calling get(). */
static void apply_async_completes_for_a_poller_without_get(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  for (int i = 0; i < 50; i++) {
    int x = i, y = -1;
    conc_async_result_t *r;
    assert_int_equal(
        conc_pool_apply_async(&p, square, &x, sizeof x, sizeof y, NULL, &r), 0);
    double t0 = conc_monotonic();
    while (!conc_async_result_ready(r) && conc_monotonic() - t0 < 10)
      sched_yield();
    assert_true(conc_async_result_ready(r));
    assert_int_equal(conc_async_result_get(r, 0, &y, sizeof y), 0);
    assert_int_equal(y, i * i);
    conc_async_result_release(r);
  }
  close_join_destroy(&p);
}

/* The live child processes that are not pool workers (the spare). */
static int spares_of(conc_pool_t *p, pid_t *spare) {
  conc_process_t *kids[8];
  pid_t pids[8];
  int nk = conc_active_children(kids, 8), np = conc_pool_pids(p, pids, 8);
  int n = 0;
  for (int i = 0; i < nk; i++) {
    bool worker = false;
    for (int k = 0; k < np; k++)
      worker |= conc_process_pid(kids[i]) == pids[k];
    if (!worker) {
      *spare = conc_process_pid(kids[i]);
      n++;
    }
  }
  return n;
}

/* From its first replacement on, the pool keeps one spare worker forked
 * and waiting: the next replacement takes it on (its pid), and it runs
 * the initializer only then. */
static void later_replacements_take_on_a_waiting_spare(void **state) {
  (void)state;
  conc_pool_t p;
  int one = 1, x = 13, y;
  assert_int_equal(
      conc_pool_init(&p, &(conc_pool_opts_t){.processes = 1,
                                             .initializer = count_init,
                                             .initarg = &one}),
      0);
  pid_t spare = 0;
  assert_int_equal(spares_of(&p, &spare), 0); /* none before a replacement */
  assert_int_equal(
      conc_pool_apply(&p, die_on_13, &x, sizeof x, &y, sizeof y, NULL, NULL),
      CONC_EWORKERDIED);
  double t0 = conc_monotonic();
  while ((conc_pool_pids(&p, NULL, 0) != 1 || spares_of(&p, &spare) != 1) &&
         conc_monotonic() - t0 < 10)
    conc_sleep(0.001);
  assert_int_equal(spares_of(&p, &spare), 1);
  t0 = conc_monotonic();
  while (__atomic_load_n(&sh->init_calls, __ATOMIC_ACQUIRE) < 2 &&
         conc_monotonic() - t0 < 10)
    conc_sleep(0.001);
  conc_sleep(0.05); /* a spare that ran it early would show by now */
  assert_int_equal(__atomic_load_n(&sh->init_calls, __ATOMIC_ACQUIRE), 2);
  assert_int_equal(
      conc_pool_apply(&p, die_on_13, &x, sizeof x, &y, sizeof y, NULL, NULL),
      CONC_EWORKERDIED);
  pid_t now = 0;
  t0 = conc_monotonic();
  while (conc_pool_pids(&p, &now, 1) != 1 && conc_monotonic() - t0 < 10)
    conc_sleep(0.001);
  assert_int_equal(now, spare);
  pid_t ran = 0;
  assert_int_equal(
      conc_pool_apply(&p, report_pid, NULL, 0, &ran, sizeof ran, NULL, NULL),
      0);
  assert_int_equal(ran, spare);
  assert_int_equal(__atomic_load_n(&sh->init_calls, __ATOMIC_ACQUIRE), 3);
  close_join_destroy(&p);
}

/* F7: the workers of a pool whose parent is killed exit promptly. This
 * process becomes a subreaper for the test, so the orphaned workers come
 * back to it and it can reap them (and see how fast they died). */
static void workers_exit_when_the_parent_is_killed(void **state) {
  (void)state;
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t mid = fork();
  assert_true(mid >= 0);
  if (mid == 0) {
    conc_pool_t p;
    if (conc_pool_init(&p, &(conc_pool_opts_t){.processes = 3}))
      _exit(11);
    /* the workers are the process's children, as in Python */
    conc_process_t *kids[8];
    pid_t w[3];
    if (conc_active_children(kids, 8) != 3)
      _exit(12);
    for (int i = 0; i < 3; i++)
      w[i] = conc_process_pid(kids[i]);
    (void)!write(fds[1], w, sizeof w);
    for (;;)
      pause();
  }
  close(fds[1]);
  pid_t w[3];
  assert_int_equal(read(fds[0], w, sizeof w), (ssize_t)sizeof w);
  close(fds[0]);
  assert_int_equal(kill(mid, SIGKILL), 0);
  int st;
  assert_int_equal(waitpid(mid, &st, 0), mid);
  double t0 = conc_monotonic();
  int reaped = 0;
  while (reaped < 3 && conc_monotonic() - t0 < 5.0) {
    pid_t q = waitpid(-1, &st, WNOHANG);
    if (q > 0) {
      reaped++;
      assert_true(q == w[0] || q == w[1] || q == w[2]);
      assert_true(WIFSIGNALED(st));
      assert_int_equal(WTERMSIG(st), SIGKILL); /* PR_SET_PDEATHSIG */
    } else {
      conc_sleep(0.002);
    }
  }
  assert_int_equal(reaped, 3);
  assert_true(conc_monotonic() - t0 < 1.0);
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

/* F1 under load: threads submit while workers are killed at random. Every
 * task completes with its right value or with CONC_EWORKERDIED, and each
 * kill costs at most the one item its worker was running. */
struct storm {
  conc_pool_t *pool;
  int died, wrong;
};

static int slow_square(const void *a, size_t al, void *r, size_t rc,
                       size_t *rl) {
  __atomic_store_n(&sh->pid, getpid(), __ATOMIC_RELEASE); /* kill me */
  conc_sleep(0.0005);
  return square(a, al, r, rc, rl);
}

static void *storm_submitter(void *arg) {
  struct storm *st = arg;
  int in[40], out[40], errs[40];
  for (int i = 0; i < 40; i++)
    in[i] = i;
  for (int round = 0; round < 10; round++) {
    /* the typed map's shared batch in odd rounds (as chunks when another
     * submitter's batch runs), the byte map in even ones */
    (round % 2 ? conc_pool_map_typed : conc_pool_map)(
        st->pool, slow_square, in, 40, sizeof *in, sizeof *out,
        &(conc_pool_map_opts_t){.chunksize = 4, .errors = errs}, out, NULL);
    for (int i = 0; i < 40; i++) {
      if (errs[i] == CONC_EWORKERDIED)
        __atomic_fetch_add(&st->died, 1, __ATOMIC_RELAXED);
      else if (errs[i] != 0 || out[i] != i * i)
        __atomic_fetch_add(&st->wrong, 1, __ATOMIC_RELAXED);
    }
    int x = round, y = -1;
    int rc = conc_pool_apply(st->pool, slow_square, &x, sizeof x, &y, sizeof y,
                             NULL, NULL);
    if (rc == CONC_EWORKERDIED)
      __atomic_fetch_add(&st->died, 1, __ATOMIC_RELAXED);
    else if (rc != 0 || y != x * x)
      __atomic_fetch_add(&st->wrong, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void workers_killed_under_load_lose_one_item_each(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 3);
  struct storm st = {.pool = &p};
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    t[i] = conc_test_spawn(storm_submitter, &st);
  int kills = 0;
  for (int k = 0; k < 8; k++) {
    conc_sleep(0.02);
    pid_t victim = __atomic_exchange_n(&sh->pid, 0, __ATOMIC_ACQ_REL);
    if (victim > 0 && kill(victim, SIGKILL) == 0)
      kills++;
  }
  for (int i = 0; i < 3; i++)
    conc_test_join(t[i]);
  print_message("%d kills, %d items lost\n", kills, st.died);
  assert_int_equal(st.wrong, 0);
  assert_true(st.died <= kills);
  /* the pool is whole again */
  int in[30], out[30];
  for (int i = 0; i < 30; i++)
    in[i] = i;
  assert_int_equal(conc_pool_map(&p, square, in, 30, sizeof *in, sizeof *out,
                                 NULL, out, NULL),
                   0);
  close_join_destroy(&p);
}

/* A pool belongs to its creating process. */
static void forked_child_cannot_use_the_parent_pool(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  pid_t c = fork();
  if (c == 0) {
    int x = 2, y;
    int rc =
        conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, NULL, NULL);
    _exit(rc == CONC_EPERM ? 0 : 1);
  }
  int st;
  assert_int_equal(waitpid(c, &st, 0), c);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  close_join_destroy(&p);
}

/* A forked child waiting on its copy of a parent's result times out and
 * leaves the parent's workers alone (it must not collect their chunks). */
static void
forked_child_waiting_on_a_copy_leaves_the_slots_alone(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  int ms = 200, y = 0;
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_apply_async(&p, sleep_ms, &ms, sizeof ms, 0, NULL, &r), 0);
  pid_t c = fork();
  if (c == 0) {
    alarm(20);
    int rc = conc_async_result_get(r, 1.0, NULL, 0);
    _exit(rc == CONC_ETIMEDOUT ? 0 : 1);
  }
  conc_sleep(0.6); /* the task ends while only the child waits */
  assert_int_equal(conc_async_result_get(r, 5.0, NULL, 0), 0);
  int st;
  assert_int_equal(waitpid(c, &st, 0), c);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  conc_async_result_release(r);
  int x = 3;
  assert_int_equal(
      conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, NULL, NULL), 0);
  assert_int_equal(y, 9);
  close_join_destroy(&p);
}

static pthread_t callback_thread;

static void note_thread(conc_async_result_t *r, void *arg) {
  (void)r, (void)arg;
  callback_thread = pthread_self();
}

/* Callbacks run in the pool's result thread, also when the caller waits in
 * get() (which otherwise collects its own result). */
static void callbacks_run_in_the_result_thread(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  for (int i = 0; i < 20; i++) {
    int x = i;
    conc_async_result_t *r;
    callback_thread = pthread_self();
    assert_int_equal(conc_pool_apply_async(
                         &p, square, &x, sizeof x, sizeof x,
                         &(conc_pool_async_opts_t){.callback = note_thread},
                         &r),
                     0);
    assert_int_equal(conc_async_result_get(r, CONC_FOREVER, NULL, 0), 0);
    assert_false(pthread_equal(callback_thread, pthread_self()));
    conc_async_result_release(r);
  }
  close_join_destroy(&p);
}

/* ---- issue 14: error detail, pids, typed map, initializer ---------------- */

static int doubler(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc, (void)rl;
  *(int *)r = *(const int *)a * 2;
  return 0;
}

/* Every item fails with a long message, so a chunk's failure records run
 * out of room and the chunk stops early (the rest runs again). */
static int always_fails(const void *a, size_t al, void *r, size_t rc,
                        size_t *rl) {
  (void)al, (void)r, (void)rc, (void)rl;
  return conc_raise(CONC_EINVAL,
                    "item %d failed: this message is long on purpose, to fill "
                    "the failure records of its chunk",
                    *(const int *)a);
}

static int refusing_init(void *arg) {
  (void)arg;
  return conc_raise(CONC_ENOENT, "no configuration file");
}

static bool in_set(const pid_t *set, int n, pid_t pid) {
  for (int i = 0; i < n; i++)
    if (set[i] == pid)
      return true;
  return false;
}

/* pool._pool: the live workers' pids, replaced ones included. */
static void pids_list_the_live_workers(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 3);
  pid_t pids[8] = {0}, two[2];
  assert_int_equal(conc_pool_pids(&p, pids, 8), 3);
  assert_int_equal(count_distinct(pids, 3), 3);
  assert_int_equal(conc_pool_pids(&p, two, 2), 3); /* count beyond cap */
  assert_int_equal(conc_pool_pids(&p, NULL, 0), 3);
  assert_int_equal(conc_pool_pids(&p, NULL, 1), CONC_EINVAL);
  for (int i = 0; i < 6; i++) {
    pid_t got;
    assert_int_equal(
        conc_pool_apply(&p, report_pid, NULL, 0, &got, sizeof got, NULL, NULL),
        0);
    assert_true(in_set(pids, 3, got));
  }
  /* a killed worker leaves the list and its replacement joins it */
  assert_int_equal(kill(pids[0], SIGKILL), 0);
  pid_t now[8];
  double t0 = conc_monotonic();
  while (conc_pool_pids(&p, now, 8) != 3 || in_set(now, 3, pids[0])) {
    assert_true(conc_monotonic() - t0 < 5.0);
    conc_sleep(0.001);
  }
  assert_true(in_set(now, 3, pids[1]) && in_set(now, 3, pids[2]));
  close_join_destroy(&p);
  assert_int_equal(conc_pool_pids(&p, now, 8), CONC_EINVAL);
}

/* A sync apply whose worker dies reports the signal, exit code and pid. */
static void apply_error_detail_reports_the_death(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 1);
  pid_t pid;
  assert_int_equal(conc_pool_pids(&p, &pid, 1), 1);
  int x = 13, y = -1;
  conc_pool_error_t e;
  memset(&e, 0, sizeof e);
  assert_int_equal(
      conc_pool_apply(&p, die_on_13, &x, sizeof x, &y, sizeof y, NULL, &e),
      CONC_EWORKERDIED);
  assert_int_equal(y, -1);
  assert_int_equal(e.code, CONC_EWORKERDIED);
  assert_int_equal(e.index, 0);
  assert_int_equal(e.signal, SIGKILL);
  assert_int_equal(e.exitcode, -SIGKILL);
  assert_int_equal(e.pid, pid);
  char want[96];
  snprintf(want, sizeof want,
           "worker ForkPoolWorker-1 (pid %ld) died from signal 9", (long)pid);
  assert_non_null(strstr(e.message, want));
  close_join_destroy(&p);
}

/* Every failing item keeps its own message, also past a chunk's room. */
static void every_failed_item_keeps_its_message(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  enum { N = 500 };
  static int in[N], out[N], errs[N];
  static conc_pool_error_t items[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  conc_pool_error_t first;
  assert_int_equal(conc_pool_map(&p, always_fails, in, N, sizeof *in,
                                 sizeof *out,
                                 &(conc_pool_map_opts_t){.errors = errs,
                                                         .item_errors = items},
                                 out, &first),
                   CONC_EINVAL);
  assert_int_equal(first.index, 0);
  for (int i = 0; i < N; i++) {
    char want[32];
    snprintf(want, sizeof want, "item %d failed:", i);
    assert_int_equal(errs[i], CONC_EINVAL);
    assert_int_equal(items[i].index, i);
    assert_true(strncmp(items[i].message, want, strlen(want)) == 0);
  }
  close_join_destroy(&p);
}

/* map_async with failing items: get() returns the first failure's code and
 * still copies every good result; each item has its detail. */
static void map_async_keeps_good_results_with_detail(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  enum { N = 2000 };
  static int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i + 1;
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_map_async(&p, picky, in, N, sizeof *in, sizeof *out, NULL, &r),
      0);
  assert_int_equal(conc_async_result_get(r, CONC_FOREVER, out, sizeof out),
                   CONC_EINVAL);
  assert_int_equal(conc_async_result_successful(r), 0);
  conc_pool_error_t e;
  for (int i = 0; i < N; i++) {
    assert_int_equal(conc_async_result_error(r, (size_t)i, &e), 0);
    if (in[i] % 7) {
      assert_int_equal(out[i], -in[i]);
      assert_int_equal(e.code, 0);
    } else {
      char want[32];
      snprintf(want, sizeof want, "bad item %d", in[i]);
      assert_int_equal(out[i], 0);
      assert_int_equal(e.code, CONC_EINVAL);
      assert_string_equal(e.message, want);
    }
  }
  assert_int_equal(conc_async_result_error(r, CONC_POOL_FIRST_ERROR, &e), 0);
  assert_int_equal(e.index, 6);
  assert_int_equal(conc_async_result_error(r, N, &e), CONC_EINVAL);
  conc_async_result_release(r);
  close_join_destroy(&p);
}

/* imap: a failing item's code from next(), its detail from imap_error. */
static void imap_failure_has_its_detail(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  int in[10];
  for (int i = 0; i < 10; i++)
    in[i] = i + 1;
  conc_imap_t *it;
  assert_int_equal(
      conc_pool_imap(&p, picky, in, 10, sizeof *in, sizeof(int), 2, &it), 0);
  conc_pool_error_t e;
  assert_int_equal(conc_imap_error(it, &e), CONC_ESTATE);
  int v;
  size_t idx = 77;
  for (int i = 0; i < 10; i++) {
    int rc = conc_imap_next(it, CONC_FOREVER, &v, &idx);
    if (i == 6) {
      assert_int_equal(rc, CONC_EINVAL);
      assert_int_equal(idx, 5); /* untouched on failure */
      assert_int_equal(conc_imap_error(it, &e), 0);
      assert_int_equal(e.index, 6);
      assert_string_equal(e.message, "bad item 7");
      assert_true(e.pid > 0);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(idx, i);
      assert_int_equal(v, -in[i]);
    }
  }
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, &v, &idx), CONC_EEOF);
  conc_imap_release(it);
  close_join_destroy(&p);
}

/* The typed path: same results as the byte path, same error detail. */
static void typed_map_matches_the_byte_path(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  enum { N = 100000 };
  int *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
  assert_non_null(in);
  assert_non_null(out);
  for (int i = 0; i < N; i++)
    in[i] = i;
  assert_int_equal(conc_pool_map_typed(&p, doubler, in, N, sizeof *in,
                                       sizeof *out, NULL, out, NULL),
                   0);
  for (int i = 0; i < N; i++)
    assert_int_equal(out[i], 2 * i);
  /* failures: codes and messages per item, good results kept */
  static int errs[1000];
  static conc_pool_error_t items[1000];
  for (int i = 0; i < 1000; i++)
    in[i] = i + 1;
  conc_pool_error_t first;
  assert_int_equal(
      conc_pool_map_typed(&p, picky, in, 1000, sizeof *in, sizeof *out,
                          &(conc_pool_map_opts_t){.chunksize = 64,
                                                  .errors = errs,
                                                  .item_errors = items},
                          out, &first),
      CONC_EINVAL);
  assert_int_equal(first.index, 6);
  assert_string_equal(first.message, "bad item 7");
  for (int i = 0; i < 1000; i++) {
    bool bad = in[i] % 7 == 0;
    assert_int_equal(errs[i], bad ? CONC_EINVAL : 0);
    assert_int_equal(out[i], bad ? 0 : -in[i]);
    if (bad) {
      char want[32];
      snprintf(want, sizeof want, "bad item %d", in[i]);
      assert_string_equal(items[i].message, want);
    }
  }
  /* a death in a typed chunk: only that item fails */
  for (int i = 0; i < 40; i++)
    in[i] = i;
  assert_int_equal(
      conc_pool_map_typed(&p, die_on_13, in, 40, sizeof *in, sizeof *out,
                          &(conc_pool_map_opts_t){.errors = errs}, out, &first),
      CONC_EWORKERDIED);
  assert_int_equal(first.index, 13);
  assert_int_equal(first.signal, SIGKILL);
  for (int i = 0; i < 40; i++)
    assert_int_equal(errs[i], i == 13 ? CONC_EWORKERDIED : 0);
  free(in);
  free(out);
  close_join_destroy(&p);
}

/* Odd items fail with always_fails' long message, even ones are doubled. */
static int odd_fails(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  if (*(const int *)a % 2)
    return always_fails(a, al, r, rc, rl);
  *(int *)r = 2 * *(const int *)a;
  return 0;
}

/* The typed path runs a map as shared batches the workers claim grains of;
 * a map larger than one batch (a small transfer area: about 1,800 items a
 * batch here) runs as several, every result in place. */
static void typed_map_larger_than_one_batch_runs_in_several(void **state) {
  (void)state;
  conc_pool_t p;
  assert_int_equal(conc_pool_init(&p, &(conc_pool_opts_t){.processes = 2,
                                                          .buffer_size = 4096}),
                   0);
  enum { N = 20000 };
  static int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  for (size_t chunk = 0; chunk <= 1000; chunk += 1000) {
    memset(out, 0xff, sizeof out);
    assert_int_equal(
        conc_pool_map_typed(&p, doubler, in, N, sizeof *in, sizeof *out,
                            &(conc_pool_map_opts_t){.chunksize = chunk}, out,
                            NULL),
        0);
    for (int i = 0; i < N; i++)
      assert_int_equal(out[i], 2 * i);
  }
  close_join_destroy(&p);
}

/* A batch member whose failure records fill up stops mid-grain; the rest
 * of its grain runs again, so every failed item keeps its own message and
 * every good result is copied back. */
static void typed_map_keeps_every_message_and_result(void **state) {
  (void)state;
  conc_pool_t p;
  make_pool(&p, 2);
  enum { N = 600 };
  static int in[N], out[N], errs[N];
  static conc_pool_error_t items[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  memset(out, 0xff, sizeof out);
  conc_pool_error_t first;
  assert_int_equal(
      conc_pool_map_typed(&p, odd_fails, in, N, sizeof *in, sizeof *out,
                          &(conc_pool_map_opts_t){.chunksize = 100,
                                                  .errors = errs,
                                                  .item_errors = items},
                          out, &first),
      CONC_EINVAL);
  assert_int_equal(first.index, 1);
  for (int i = 0; i < N; i++) {
    char want[32];
    snprintf(want, sizeof want, "item %d failed:", i);
    assert_int_equal(errs[i], i % 2 ? CONC_EINVAL : 0);
    assert_int_equal(out[i], i % 2 ? 0 : 2 * i);
    if (i % 2)
      assert_true(strncmp(items[i].message, want, strlen(want)) == 0);
  }
  close_join_destroy(&p);
}

/* A failing initializer breaks the pool; its message is reported. */
static void failing_initializer_breaks_the_pool(void **state) {
  (void)state;
  conc_pool_t p;
  assert_int_equal(
      conc_pool_init(&p, &(conc_pool_opts_t){.processes = 2,
                                             .initializer = refusing_init}),
      0);
  int x = 3, y = 0;
  conc_pool_error_t e;
  assert_int_equal(
      conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, NULL, &e),
      CONC_EBROKENPOOL);
  assert_non_null(strstr(e.message, "initializer failed"));
  assert_non_null(strstr(e.message, "no configuration file"));
  assert_int_equal(
      conc_pool_apply(&p, square, &x, sizeof x, &y, sizeof y, NULL, NULL),
      CONC_EBROKENPOOL);
  assert_int_equal(conc_pool_join(&p), 0);
  conc_pool_destroy(&p);
}

CONC_TEST_MAIN(
    T(apply_returns_the_value),
    T(map_keeps_input_order_default_and_chunksize_20),
    T(starmap_and_starmap_async_unpack_structs),
    T(map_async_calls_callback_once_or_error_callback_once),
    T(apply_async_callback_runs_without_a_handle),
    T(argument_too_big_for_transfer_fails_submission),
    T(empty_inputs_complete_at_once),
    T(get_times_out_and_successful_needs_ready),
    T(imap_yields_in_order_then_ends),
    T(imap_unordered_yields_each_result_once),
    T(imap_next_times_out_without_consuming), T(bad_options_are_einval),
    T(pool_has_the_requested_or_cpu_count_workers),
    T(initializer_runs_once_per_worker),
    T(terminate_with_10000_pending_returns_promptly),
    T(terminate_kills_a_worker_that_blocks_sigterm),
    T(close_join_with_large_results_completes),
    T(scoped_use_terminates_and_later_submissions_fail),
    T(join_while_running_is_an_error), T(worker_error_carries_code_and_message),
    T(map_does_not_fail_fast), T(oversized_result_fails_only_that_task),
    T(maxtasksperchild_replaces_workers),
    T(default_chunksize_is_ceil_len_over_4_workers),
    T(killed_worker_fails_only_its_item_in_map),
    T(externally_killed_worker_is_replaced), T(apply_reports_its_worker_death),
    T(terminate_releases_a_blocked_apply),
    T(workers_exit_when_the_parent_is_killed),
    T(workers_killed_under_load_lose_one_item_each),
    T(forked_child_cannot_use_the_parent_pool), T(pids_list_the_live_workers),
    T(apply_error_detail_reports_the_death),
    T(every_failed_item_keeps_its_message),
    T(map_async_keeps_good_results_with_detail), T(imap_failure_has_its_detail),
    T(typed_map_matches_the_byte_path),
    T(typed_map_larger_than_one_batch_runs_in_several),
    T(typed_map_keeps_every_message_and_result),
    T(later_replacements_take_on_a_waiting_spare),
    T(apply_async_completes_for_a_poller_without_get),
    T(failing_initializer_breaks_the_pool),
    T(forked_child_waiting_on_a_copy_leaves_the_slots_alone),
    T(callbacks_run_in_the_result_thread))
