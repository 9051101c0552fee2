/*
 * Coroutine tests: spec lines K1-K8, generators, the stack pool, guard pages
 * and canary stacks, threads. The same file runs on every backend (the CI
 * stage builds ucontext, asm, asm+fpu, and aarch64 under qemu, where it is
 * compiled with -DCONC_TEST_MINI against tests/coro_minitest.h instead of
 * cmocka).
 */
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CONC_TEST_MINI
#include "coro_minitest.h"
#else
#include "harness.h"
#endif

#include "conc/coro.h"
#include "conc/error.h"
#include "coro-int.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(CONC_SANITIZER_address) || defined(CONC_SANITIZER_thread) ||       \
    defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif
/* TSan gives every fiber a thread slot, and has 8128 of them. */
#if defined(CONC_SANITIZER_thread) || defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#else
#define UNDER_TSAN 0
#endif

static bool under_tool(void) { return UNDER_SANITIZER || RUNNING_ON_VALGRIND; }

#define SW(co, v, out) assert_int_equal(conc_coro_switch((co), (v), (out)), 0)

/* ---- K1 ---------------------------------------------------------------- */

static int k1_calls;
static void *k1_value;

static int k1_fn(void *v, void **result) {
  (void)result;
  k1_calls++;
  k1_value = v;
  return 0;
}

/* K1 */
static void create_runs_nothing_until_first_switch(void **state) {
  (void)state;
  conc_coro_t co;
  k1_calls = 0;
  assert_int_equal(conc_coro_init(&co, k1_fn, NULL, NULL), 0);
  assert_int_equal(k1_calls, 0);
  assert_false(conc_coro_is_active(&co));
  assert_false(conc_coro_is_dead(&co));
  SW(&co, (void *)0x1234, NULL);
  assert_int_equal(k1_calls, 1);
  assert_ptr_equal(k1_value, (void *)0x1234);
  assert_true(conc_coro_is_dead(&co));
  assert_int_equal(conc_coro_destroy(&co), 0);
}

/* K1: the create-time argument stands in when the first switch passes NULL */
static void first_switch_without_value_passes_create_arg(void **state) {
  (void)state;
  conc_coro_t *co;
  assert_int_equal(conc_coro_create(&co, k1_fn, (void *)0x77, NULL), 0);
  SW(co, NULL, NULL);
  assert_ptr_equal(k1_value, (void *)0x77);
  assert_int_equal(conc_coro_destroy(co), 0);
}

/* ---- K2 ---------------------------------------------------------------- */

static char pp_out[64];
static conc_coro_t pp1, pp2;

static void pp_print(const char *s) { strcat(pp_out, s); }

static int pp_test1(void *v, void **result) {
  (void)result;
  (void)v;
  pp_print("12 ");
  SW(&pp2, NULL, NULL);
  pp_print("34 ");
  return 0;
}

static int pp_test2(void *v, void **result) {
  (void)result;
  (void)v;
  pp_print("56 ");
  if (conc_coro_switch(&pp1, NULL, NULL) == CONC_ECANCELED)
    return CONC_ECANCELED; /* killed while suspended: GreenletExit */
  pp_print("78 ");
  return 0;
}

/* K2: the greenlet seed program (test2 never resumes, as in greenlet) */
static void seed_ping_pong_prints_12_56_34_78(void **state) {
  (void)state;
  pp_out[0] = 0;
  assert_int_equal(conc_coro_init(&pp1, pp_test1, NULL, NULL), 0);
  assert_int_equal(conc_coro_init(&pp2, pp_test2, NULL, NULL), 0);
  SW(&pp1, NULL, NULL);
  assert_string_equal(pp_out, "12 56 34 ");
  assert_true(conc_coro_is_dead(&pp1));
  assert_true(conc_coro_is_active(&pp2));
  /* greenlet's gr2 is collected suspended: destroy kills it, and its
   * pending switch returns CONC_ECANCELED, so "78" is never printed. */
  assert_int_equal(conc_coro_destroy(&pp1), 0);
  assert_int_equal(conc_coro_destroy(&pp2), 0);
  assert_string_equal(pp_out, "12 56 34 ");
}

static int ping_pong_fn(void *v, void **result) {
  (void)result;
  uintptr_t x = (uintptr_t)v;
  conc_coro_t *main = conc_coro_parent(conc_coro_current());
  for (;;) {
    void *in;
    if (conc_coro_switch(main, (void *)(x + 1), &in) != 0)
      return 0;
    x = (uintptr_t)in;
  }
}

/* K2 */
static void switch_returns_the_value_switched_back(void **state) {
  (void)state;
  conc_coro_t co;
  assert_int_equal(conc_coro_init(&co, ping_pong_fn, NULL, NULL), 0);
  for (uintptr_t i = 1; i < 1000; i += 7) {
    void *out;
    SW(&co, (void *)i, &out);
    assert_ptr_equal(out, (void *)(i + 1));
  }
  assert_int_equal(conc_coro_destroy(&co), 0);
}

/* K2: switching to the running coroutine hands the value straight back */
static void switch_to_self_returns_value(void **state) {
  (void)state;
  void *out = NULL;
  SW(conc_coro_current(), (void *)5, &out);
  assert_ptr_equal(out, (void *)5);
}

/* ---- K3 ---------------------------------------------------------------- */

static int ret_plus_one(void *v, void **result) {
  *result = (void *)((uintptr_t)v + 1);
  return 0;
}

/* K3 */
static void return_value_goes_to_parent(void **state) {
  (void)state;
  conc_coro_t co;
  void *out;
  assert_int_equal(conc_coro_init(&co, ret_plus_one, NULL, NULL), 0);
  assert_ptr_equal(conc_coro_parent(&co), conc_coro_current());
  SW(&co, (void *)41, &out);
  assert_ptr_equal(out, (void *)42);
  assert_int_equal(conc_coro_destroy(&co), 0);
}

static conc_coro_t k3_child;
static int k3_parent_fn(void *v, void **result) {
  /* waits here until the child (whose parent we are) returns */
  void *out;
  SW(&k3_child, v, &out);
  *result = (void *)((uintptr_t)out * 10);
  return 0;
}

/* K3: an explicit parent receives the result, then its own parent */
static void explicit_parent_receives_result(void **state) {
  (void)state;
  conc_coro_t par;
  void *out;
  assert_int_equal(conc_coro_init(&par, k3_parent_fn, NULL, NULL), 0);
  assert_int_equal(conc_coro_init(&k3_child, ret_plus_one, NULL,
                                  &(conc_coro_opts_t){.parent = &par}),
                   0);
  SW(&par, (void *)4, &out);
  assert_ptr_equal(out, (void *)50);
  assert_int_equal(conc_coro_destroy(&k3_child), 0);
  assert_int_equal(conc_coro_destroy(&par), 0);
}

/* K3: a dead parent is skipped; its parent gets the value */
static void dead_parent_is_skipped(void **state) {
  (void)state;
  conc_coro_t par, child;
  void *out;
  assert_int_equal(conc_coro_init(&par, ret_plus_one, NULL, NULL), 0);
  assert_int_equal(conc_coro_init(&child, ret_plus_one, NULL,
                                  &(conc_coro_opts_t){.parent = &par}),
                   0);
  SW(&par, (void *)1, &out);
  assert_true(conc_coro_is_dead(&par));
  SW(&child, (void *)7, &out);
  assert_ptr_equal(out, (void *)8);
  assert_int_equal(conc_coro_destroy(&child), 0);
  assert_int_equal(conc_coro_destroy(&par), 0);
}

/* K3: set_parent refuses cycles and keeps the old parent */
static void set_parent_rejects_cycles(void **state) {
  (void)state;
  conc_coro_t a, b;
  assert_int_equal(conc_coro_init(&a, ret_plus_one, NULL, NULL), 0);
  assert_int_equal(
      conc_coro_init(&b, ret_plus_one, NULL, &(conc_coro_opts_t){.parent = &a}),
      0);
  assert_int_equal(conc_coro_set_parent(&a, &b), CONC_EINVAL);
  assert_int_equal(conc_coro_set_parent(&a, &a), CONC_EINVAL);
  assert_int_equal(conc_coro_set_parent(conc_coro_main(), &a), CONC_EINVAL);
  assert_ptr_equal(conc_coro_parent(&a), conc_coro_main());
  assert_int_equal(conc_coro_set_parent(&b, conc_coro_main()), 0);
  assert_int_equal(conc_coro_set_parent(&a, &b), 0);
  assert_ptr_equal(conc_coro_parent(&a), &b);
  assert_int_equal(conc_coro_destroy(&a), 0);
  assert_int_equal(conc_coro_destroy(&b), 0);
}

/* ---- K4 ---------------------------------------------------------------- */

/* K4 */
static void switch_into_dead_is_EDEAD_and_changes_nothing(void **state) {
  (void)state;
  conc_coro_t co;
  void *out = (void *)0x99;
  assert_int_equal(conc_coro_init(&co, ret_plus_one, NULL, NULL), 0);
  SW(&co, (void *)1, NULL);
  conc_coro_t *before = conc_coro_current();
  assert_int_equal(conc_coro_switch(&co, (void *)2, &out), CONC_EDEAD);
  assert_ptr_equal(out, (void *)0x99);
  assert_ptr_equal(conc_coro_current(), before);
  assert_true(conc_coro_is_dead(&co));
  assert_int_equal(conc_coro_switch(NULL, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_coro_destroy(&co), 0);
}

static int report_current(void *v, void **result) {
  (void)v;
  *result = conc_coro_current();
  return 0;
}

/* K4 */
static void current_names_the_running_coroutine(void **state) {
  (void)state;
  conc_coro_t co;
  void *out;
  assert_ptr_equal(conc_coro_current(), conc_coro_main());
  assert_string_equal(conc_coro_name(conc_coro_main()), "main");
  assert_null(conc_coro_parent(conc_coro_main()));
  assert_true(conc_coro_is_active(conc_coro_main()));
  assert_int_equal(conc_coro_init(&co, report_current, NULL,
                                  &(conc_coro_opts_t){.name = "worker"}),
                   0);
  assert_string_equal(conc_coro_name(&co), "worker");
  SW(&co, NULL, &out);
  assert_ptr_equal(out, &co);
  assert_ptr_equal(conc_coro_current(), conc_coro_main());
  assert_int_equal(conc_coro_destroy(&co), 0);
}

static void *thread_main_probe(void *arg) {
  conc_coro_t **mains = arg;
  mains[1] = conc_coro_main();
  conc_coro_t co;
  void *out = NULL;
  if (conc_coro_init(&co, report_current, NULL, NULL) != 0 ||
      conc_coro_switch(&co, NULL, &out) != 0 || out != &co ||
      conc_coro_current() != mains[1] || conc_coro_destroy(&co) != 0)
    mains[1] = NULL;
  return NULL;
}

/* K4: each thread has its own main coroutine */
static void each_thread_has_its_own_main(void **state) {
  (void)state;
  conc_coro_t *mains[2] = {conc_coro_main(), NULL};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, thread_main_probe, mains), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_non_null(mains[1]);
  assert_ptr_not_equal(mains[0], mains[1]);
}

/* ---- K5 ---------------------------------------------------------------- */

struct foreign {
  conc_coro_t *co;
  int sw, kill, destroy, setp, init;
};

static void *foreign_thread(void *arg) {
  struct foreign *f = arg;
  conc_coro_t mine;
  f->init =
      conc_coro_init(&mine, k1_fn, NULL, &(conc_coro_opts_t){.parent = f->co});
  f->sw = conc_coro_switch(f->co, NULL, NULL);
  f->kill = conc_coro_kill(f->co);
  f->destroy = conc_coro_destroy(f->co);
  f->setp = conc_coro_set_parent(f->co, conc_coro_main());
  return NULL;
}

/* K5 */
static void other_threads_coroutine_is_EWRONGTHREAD(void **state) {
  (void)state;
  conc_coro_t co;
  void *out;
  assert_int_equal(conc_coro_init(&co, ping_pong_fn, NULL, NULL), 0);
  SW(&co, (void *)1, &out); /* now suspended */
  struct foreign f = {.co = &co};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, foreign_thread, &f), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(f.sw, CONC_EWRONGTHREAD);
  assert_int_equal(f.kill, CONC_EWRONGTHREAD);
  assert_int_equal(f.destroy, CONC_EWRONGTHREAD);
  assert_int_equal(f.setp, CONC_EWRONGTHREAD);
  assert_int_equal(f.init, CONC_EWRONGTHREAD); /* a parent of another thread */
  SW(&co, (void *)9, &out);                    /* unchanged and still ours */
  assert_ptr_equal(out, (void *)10);
  assert_int_equal(conc_coro_destroy(&co), 0);
}

/* K5: an unstarted coroutine may be released from another thread */
static void unstarted_coroutine_destroyed_from_other_thread(void **state) {
  (void)state;
  conc_coro_t co;
  k1_calls = 0;
  assert_int_equal(conc_coro_init(&co, k1_fn, NULL, NULL), 0);
  struct foreign f = {.co = &co};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, foreign_thread, &f), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(f.sw, CONC_EWRONGTHREAD);
  assert_int_equal(f.destroy, 0);
  assert_int_equal(k1_calls, 0);
  assert_true(conc_coro_is_dead(&co));
}

/* ---- K6 ---------------------------------------------------------------- */

static int cleanup_ran;
static int pending_code;

static int waits_then_cleans_up(void *v, void **result) {
  (void)v;
  conc_coro_t *main = conc_coro_main();
  pending_code = conc_coro_switch(main, (void *)1, NULL);
  cleanup_ran++;
  *result = (void *)0xdead;
  return 0;
}

/* K6 */
static void kill_makes_pending_switch_return_ECANCELED(void **state) {
  (void)state;
  conc_coro_t co;
  cleanup_ran = 0;
  pending_code = 0;
  assert_int_equal(conc_coro_init(&co, waits_then_cleans_up, NULL, NULL), 0);
  SW(&co, NULL, NULL);
  assert_int_equal(conc_coro_kill(&co), 0);
  assert_int_equal(pending_code, CONC_ECANCELED);
  assert_int_equal(cleanup_ran, 1);
  assert_true(conc_coro_is_dead(&co));
  assert_ptr_equal(conc_coro_current(), conc_coro_main());
  assert_int_equal(conc_coro_kill(&co), 0); /* dead: nothing happens */
  assert_int_equal(conc_coro_destroy(&co), 0);
}

/* K6 */
static void kill_of_unstarted_never_runs_it(void **state) {
  (void)state;
  conc_coro_t co;
  k1_calls = 0;
  assert_int_equal(conc_coro_init(&co, k1_fn, NULL, NULL), 0);
  assert_int_equal(conc_coro_kill(&co), 0);
  assert_true(conc_coro_is_dead(&co));
  assert_int_equal(conc_coro_switch(&co, NULL, NULL), CONC_EDEAD);
  assert_int_equal(k1_calls, 0);
  assert_int_equal(conc_coro_destroy(&co), 0);
}

/* K6: the stack of a never-run coroutine goes back to the pool */
static void destroy_of_unstarted_releases_stack_without_running(void **state) {
  (void)state;
  conc_coro_t co;
  conc__stack_stats_t before, after;
  k1_calls = 0;
  assert_int_equal(conc_coro_init(&co, k1_fn, NULL, NULL), 0);
  conc__stack_stats(&before);
  assert_int_equal(conc_coro_destroy(&co), 0);
  conc__stack_stats(&after);
  assert_int_equal(k1_calls, 0);
  assert_int_equal(after.cached, before.cached + 1);
}

static int refuses_to_die(void *v, void **result) {
  (void)v;
  conc_coro_t *main = conc_coro_main();
  int rc = conc_coro_switch(main, NULL, NULL);
  /* declines the kill: goes back to the killer without finishing */
  rc = conc_coro_switch(main, (void *)(intptr_t)rc, NULL);
  *result = (void *)(intptr_t)rc;
  return 0;
}

/* K6: a victim that switches back without finishing stays alive */
static void kill_declined_returns_EBUSY(void **state) {
  (void)state;
  conc_coro_t co;
  assert_int_equal(conc_coro_init(&co, refuses_to_die, NULL, NULL), 0);
  SW(&co, NULL, NULL);
  assert_int_equal(conc_coro_kill(&co), CONC_EBUSY);
  assert_true(conc_coro_is_active(&co));
  assert_ptr_equal(conc_coro_parent(&co), conc_coro_main());
  assert_int_equal(conc_coro_destroy(&co), 0); /* second kill: it returns */
  assert_int_equal(conc_coro_kill(conc_coro_main()), CONC_ESTATE);
  assert_int_equal(conc_coro_destroy(conc_coro_main()), CONC_ESTATE);
  assert_int_equal(conc_coro_kill(NULL), CONC_EINVAL);
}

static int kills_itself(void *v, void **result) {
  (void)v;
  *result = (void *)(intptr_t)conc_coro_kill(conc_coro_current());
  return 0;
}

/* K6: killing the running coroutine is refused */
static void kill_of_running_coroutine_is_ESTATE(void **state) {
  (void)state;
  conc_coro_t co;
  void *out;
  assert_int_equal(conc_coro_init(&co, kills_itself, NULL, NULL), 0);
  SW(&co, NULL, &out);
  assert_int_equal((intptr_t)out, CONC_ESTATE);
  assert_int_equal(conc_coro_destroy(&co), 0);
}

/* ---- K7 ---------------------------------------------------------------- */

static unsigned long recurse(unsigned depth, volatile char *prev) {
  volatile char pad[256];
  pad[0] = (char)depth;
  pad[255] = prev ? prev[0] : 0;
  if (depth == 0)
    return pad[0];
  return recurse(depth - 1, pad) + pad[255];
}

static int deep_and_printf(void *v, void **result) {
  char buf[256];
  unsigned depth = (unsigned)(uintptr_t)v;
  snprintf(buf, sizeof buf, "%s %d %.3f %p", "printf", 42, 3.14159, v);
  recurse(depth, NULL);
  *result = strcmp(buf, "") ? (void *)1 : NULL;
  return 0;
}

/* K7: the default stack holds printf and deep recursion (~150 KiB) */
static void default_stack_holds_printf_and_deep_calls(void **state) {
  (void)state;
  conc_coro_t co;
  void *out;
  assert_int_equal(conc_coro_init(&co, deep_and_printf, (void *)400, NULL), 0);
  SW(&co, NULL, &out);
  assert_ptr_equal(out, (void *)1);
  assert_int_equal(conc_coro_destroy(&co), 0);
}

/* K7: a larger stack_size is honoured (~1.5 MiB of frames) */
static void stack_size_option_is_honoured(void **state) {
  (void)state;
  conc_coro_t co;
  void *out;
  assert_int_equal(conc_coro_init(&co, deep_and_printf, (void *)4000,
                                  &(conc_coro_opts_t){.stack_size = 4 << 20}),
                   0);
  SW(&co, NULL, &out);
  assert_ptr_equal(out, (void *)1);
  assert_int_equal(conc_coro_destroy(&co), 0);
  assert_int_equal(conc_coro_init(NULL, k1_fn, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_coro_init(&co, NULL, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_coro_init(&co, k1_fn, NULL,
                                  &(conc_coro_opts_t){.stack_size = SIZE_MAX}),
                   CONC_EINVAL);
}

static int overflow_forever(void *v, void **result) {
  (void)result;
  (void)v;
  recurse(1u << 30, NULL);
  return 0;
}

/* Runs fn in a forked child; returns its wait status, its stderr in err. */
static int run_child(void (*fn)(void), char *err, size_t cap) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  size_t got = 0;
  ssize_t r;
  while ((r = read(fds[0], err + got, cap - 1 - got)) > 0)
    got += (size_t)r;
  err[got] = 0;
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

static void child_overflows(void) {
  conc_coro_t co;
  /* cmocka swaps its own SIGSEGV handler in and out around every test,
   * removing ours: put the process back as it is at first use. */
  signal(SIGSEGV, SIG_DFL);
  conc__coro_segv_install();
  /* the name sits in a buffer the caller reuses: the report keeps the copy
   * taken at init */
  char name[32];
  strcpy(name, "deep-diver");
  if (conc_coro_init(
          &co, overflow_forever, NULL,
          &(conc_coro_opts_t){.name = name, .stack_size = 64 * 1024}) != 0)
    _exit(3);
  strcpy(name, "overwritten");
  conc_coro_switch(&co, NULL, NULL);
  _exit(4); /* not reached: the guard page stops it */
}

/* K7: an overflow hits the guard page; the report names the coroutine */
static void guard_page_overflow_aborts_naming_coroutine(void **state) {
  (void)state;
  char err[4096];
  int st = run_child(child_overflows, err, sizeof err);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGABRT);
  assert_non_null(strstr(err, "coroutine \"deep-diver\""));
  assert_non_null(strstr(err, "guard page hit"));
}

static void chained_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  _exit(42);
}

static void segv_elsewhere(void) {
  conc_coro_t co;
  if (conc_coro_init(&co, k1_fn, NULL, NULL) != 0)
    _exit(3);
  volatile uintptr_t bad = 16; /* opaque to the compiler's bounds checks */
  *(volatile int *)bad = 1;
  _exit(4);
}

static void child_segv_chained(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = chained_handler;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, NULL);
  conc__coro_segv_install(); /* ours in front of it, as at first use */
  segv_elsewhere();
}

static void child_segv_default(void) {
  signal(SIGSEGV, SIG_DFL);
  conc__coro_segv_install();
  segv_elsewhere();
}

/* K7: a fault that is not a guard-page hit goes to the previous handler, or
 * gets the default action */
static void other_segfaults_are_passed_on(void **state) {
  (void)state;
  char err[4096];
  int st = run_child(child_segv_chained, err, sizeof err);
  assert_true(WIFEXITED(st));
  /* memcheck reports the deliberate bad write first (--error-exitcode) */
  if (!RUNNING_ON_VALGRIND)
    assert_int_equal(WEXITSTATUS(st), 42);
  st = run_child(child_segv_default, err, sizeof err);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGSEGV);
  assert_null(strstr(err, "overflowed its stack"));
}

static uintptr_t fill_limit;

/* Fills frames with nonzero bytes down to fill_limit. */
static unsigned long fill_down(void) {
  volatile char pad[512];
  memset((char *)pad, 0xab, sizeof pad);
  if ((uintptr_t)pad > fill_limit)
    return fill_down() + (unsigned char)pad[7];
  return (unsigned char)pad[3];
}

static int overflow_a_little(void *v, void **result) {
  (void)result;
  (void)v;
  /* Runs 2 KiB past the bottom of the 20 KiB stack (whatever the frame
   * sizes of this build): the writes land in the 16 KiB zone below the
   * stack, where a canary stack keeps its check. */
  char here;
  fill_limit = (uintptr_t)&here - 20 * 1024 - 2048;
  fill_down();
  return 0;
}

static void child_canary_overflow(void) {
  signal(SIGSEGV, SIG_DFL);
  conc__coro_segv_install();
  conc__stack_force_method(CONC__STACK_GUARD_MPROT);
  conc__stack_stats_t st;
  conc__stack_stats(&st);
  conc_coro_set_guard_limit(st.guarded_mprot); /* no more guarded ones */
  conc_coro_t co;
  /* a size class of its own, so no cached guarded slot is reused */
  if (conc_coro_init(&co, overflow_a_little, NULL,
                     &(conc_coro_opts_t){.name = "canary-bird",
                                         .stack_size = 16 * 1024 + 4096}) != 0)
    _exit(3);
  conc_coro_switch(&co, NULL, NULL);
  _exit(4);
}

/* K7: past the guarded-stack limit, canary stacks still report overflow */
static void canary_stack_overflow_is_reported(void **state) {
  (void)state;
  char err[4096];
  int st = run_child(child_canary_overflow, err, sizeof err);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGABRT);
  assert_non_null(strstr(err, "coroutine \"canary-bird\""));
  assert_non_null(strstr(err, "canary"));
}

static void child_guard_limit(void) {
  conc__stack_force_method(CONC__STACK_GUARD_MPROT);
  conc__stack_stats_t a, b;
  conc__stack_stats(&a);
  conc_coro_set_guard_limit(a.guarded_mprot + 3);
  conc_coro_t co[6];
  for (int i = 0; i < 6; i++)
    if (conc_coro_init(&co[i], ret_plus_one, NULL,
                       &(conc_coro_opts_t){.stack_size = 20 * 1024}) != 0)
      _exit(3);
  conc__stack_stats(&b);
  if (b.guarded_mprot != a.guarded_mprot + 3)
    _exit(5);
  for (int i = 0; i < 6; i++) { /* canary ones run fine */
    void *out;
    if (conc_coro_switch(&co[i], (void *)1, &out) != 0 || out != (void *)2)
      _exit(6);
    conc_coro_destroy(&co[i]);
  }
  _exit(0);
}

/* K7: mprotect guards stop at the configured limit, then canary stacks */
static void guard_limit_switches_to_canary_stacks(void **state) {
  (void)state;
  char err[4096];
  int st = run_child(child_guard_limit, err, sizeof err);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- K8 ---------------------------------------------------------------- */

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
      res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int suspend_once(void *v, void **result) {
  (void)v;
  conc_coro_t *main = conc_coro_main();
  int rc = conc_coro_switch(main, (void *)1, NULL);
  *result = (void *)(intptr_t)rc;
  return 0;
}

/* K8: 100,000 suspended coroutines on one thread, a few pages each */
static void many_suspended_coroutines_cost_a_few_pages(void **state) {
  (void)state;
  size_t n = RUNNING_ON_VALGRIND ? 300
             : UNDER_TSAN        ? 2000
             : UNDER_SANITIZER   ? 20000
                                 : 100000;
  conc_coro_t *cos = calloc(n, sizeof *cos);
  assert_non_null(cos);
  long before = rss_kib();
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(conc_coro_init(&cos[i], suspend_once, NULL, NULL), 0);
    void *out;
    SW(&cos[i], NULL, &out);
    assert_ptr_equal(out, (void *)1);
  }
  long per = (rss_kib() - before) * 1024 / (long)n;
  print_message("    %zu suspended coroutines: %ld bytes RSS each\n", n, per);
  /* The ucontext backend keeps its context at the top of each stack (4.5 KiB
   * on aarch64, with the FP/SIMD save area): one page more there. */
  long pages = strcmp(conc_coro_backend(), "ucontext") == 0 ? 4 : 3;
  if (!under_tool())
    assert_in_range(per, 1, pages * 4096);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(conc_coro_destroy(&cos[i]), 0);
  free(cos);
}

/* ---- stack pool -------------------------------------------------------- */

/* A warm pool serves create/destroy from the thread's cache */
static void warm_pool_reuses_stacks(void **state) {
  (void)state;
  conc__stack_stats_t a, b;
  conc_coro_t co;
  void *out;
  assert_int_equal(conc_coro_init(&co, ret_plus_one, NULL, NULL), 0);
  assert_int_equal(conc_coro_destroy(&co), 0);
  conc__stack_stats(&a);
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(conc_coro_init(&co, ret_plus_one, NULL, NULL), 0);
    SW(&co, (void *)1, &out);
    assert_ptr_equal(out, (void *)2);
    assert_int_equal(conc_coro_destroy(&co), 0);
  }
  conc__stack_stats(&b);
  assert_int_equal(a.slabs, b.slabs);
  assert_int_equal(a.cached, b.cached);
  assert_int_equal(a.guarded_mprot, b.guarded_mprot);
}

/* ---- generators -------------------------------------------------------- */

static int count_to(void *arg, void **result) {
  conc_gen_t *g = arg;
  for (uintptr_t i = 0; i < 3; i++)
    if (conc_gen_yield(g, (void *)i, NULL) != 0)
      return 0;
  *result = (void *)0x5;
  return 0;
}

/* Generator: yields, then CONC_EEOF carrying the return value once */
static void generator_yields_then_reports_exhaustion(void **state) {
  (void)state;
  conc_gen_t g;
  void *v;
  assert_int_equal(conc_gen_init(&g, count_to, NULL, NULL), 0);
  for (uintptr_t i = 0; i < 3; i++) {
    assert_int_equal(conc_gen_next(&g, &v), 0);
    assert_ptr_equal(v, (void *)i);
  }
  assert_int_equal(conc_gen_next(&g, &v), CONC_EEOF);
  assert_ptr_equal(v, (void *)0x5);
  assert_int_equal(conc_gen_next(&g, &v), CONC_EEOF);
  assert_null(v);
  assert_int_equal(conc_gen_destroy(&g), 0);
}

static int accumulate(void *arg, void **result) {
  (void)result;
  conc_gen_t *g = arg;
  uintptr_t total = 0;
  void *in;
  while (conc_gen_yield(g, (void *)total, &in) == 0)
    total += (uintptr_t)in;
  cleanup_ran++;
  return 0;
}

/* Generator: send() delivers values; close() ends it (GeneratorExit) */
static void generator_send_and_close(void **state) {
  (void)state;
  conc_gen_t g;
  void *v;
  cleanup_ran = 0;
  assert_int_equal(conc_gen_init(&g, accumulate, NULL, NULL), 0);
  assert_int_equal(conc_gen_send(&g, (void *)3, &v), CONC_EINVAL);
  assert_int_equal(conc_gen_next(&g, &v), 0);
  assert_ptr_equal(v, (void *)0);
  assert_int_equal(conc_gen_send(&g, (void *)3, &v), 0);
  assert_int_equal(conc_gen_send(&g, (void *)4, &v), 0);
  assert_ptr_equal(v, (void *)7);
  assert_int_equal(conc_gen_yield(&g, NULL, NULL), CONC_ESTATE);
  assert_int_equal(conc_gen_close(&g), 0);
  assert_int_equal(cleanup_ran, 1);
  assert_int_equal(conc_gen_next(&g, &v), CONC_EEOF);
  assert_int_equal(conc_gen_destroy(&g), 0);
}

struct ticker {
  conc_gen_t g;
  const char *name;
  int n;
};

static int tick(void *arg, void **result) {
  (void)result;
  struct ticker *t = arg;
  for (int i = 0; i < t->n; i++)
    if (conc_gen_yield(&t->g, (void *)t->name, NULL) != 0)
      break;
  return 0;
}

/* Generator: several driven round-robin (the seed's generator lesson) */
static void generators_round_robin(void **state) {
  (void)state;
  struct ticker t[3] = {
      {.name = "a", .n = 2}, {.name = "b", .n = 3}, {.name = "c", .n = 1}};
  char out[32] = "";
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_gen_init(&t[i].g, tick, &t[i], NULL), 0);
  int live = 3;
  bool done[3] = {false, false, false};
  while (live) {
    for (int i = 0; i < 3; i++) {
      void *v;
      if (done[i])
        continue;
      int rc = conc_gen_next(&t[i].g, &v);
      if (rc == CONC_EEOF) {
        done[i] = true;
        live--;
      } else {
        assert_int_equal(rc, 0);
        strcat(out, v);
      }
    }
  }
  assert_string_equal(out, "abcabb");
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_gen_destroy(&t[i].g), 0);
}

/* ---- nesting, threads, backends ---------------------------------------- */

static int nested_inner(void *v, void **result) {
  /* switches straight to main, skipping its parent */
  void *in;
  conc_coro_switch(conc_coro_main(), (void *)((uintptr_t)v * 2), &in);
  *result = in;
  return 0;
}

static int nested_outer(void *v, void **result) {
  conc_coro_t inner;
  void *out = NULL;
  if (conc_coro_init(&inner, nested_inner, NULL, NULL) != 0)
    return 0;
  conc_coro_switch(&inner, v, &out); /* resumes when inner returns */
  conc_coro_destroy(&inner);
  *result = (void *)((uintptr_t)out + 1);
  return 0;
}

/* K3: a grandchild hands control to main and back; its result reaches
 * its creator, whose result reaches main */
static void nested_coroutines_follow_the_parent_chain(void **state) {
  (void)state;
  conc_coro_t outer;
  void *out;
  assert_int_equal(conc_coro_init(&outer, nested_outer, NULL, NULL), 0);
  SW(&outer, (void *)5, &out);
  assert_ptr_equal(out, (void *)10); /* from inner, directly */
  assert_ptr_equal(conc_coro_current(), conc_coro_main());
  assert_true(conc_coro_is_active(&outer));
  /* outer is suspended in its switch to inner: resuming it hands it 20; it
   * destroys inner (killing it; inner's death returns to outer) and returns
   * 21, which comes to main, its parent. */
  SW(&outer, (void *)20, &out);
  assert_ptr_equal(out, (void *)21);
  assert_true(conc_coro_is_dead(&outer));
  assert_int_equal(conc_coro_destroy(&outer), 0);
}

struct spin {
  long n;
  long sum;
};

static int spin_fn(void *v, void **result) {
  (void)result;
  struct spin *s = v;
  conc_coro_t *main = conc_coro_main();
  for (long i = 0; i < s->n; i++) {
    s->sum += i;
    if (conc_coro_switch(main, NULL, NULL) != 0)
      break;
  }
  return 0;
}

static void *spin_thread(void *arg) {
  struct spin *s = arg;
  conc_coro_t co[4];
  for (int i = 0; i < 4; i++)
    if (conc_coro_init(&co[i], spin_fn, s, NULL) != 0)
      return NULL;
  for (long r = 0; r < s->n; r++)
    for (int i = 0; i < 4; i++)
      conc_coro_switch(&co[i], NULL, NULL);
  for (int i = 0; i < 4; i++)
    conc_coro_destroy(&co[i]);
  return NULL;
}

/* K4/K5: threads switch their own coroutines concurrently */
static void threads_switch_concurrently(void **state) {
  (void)state;
  struct spin s[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    s[i] = (struct spin){.n = under_tool() ? 500 : 20000};
    assert_int_equal(pthread_create(&th[i], NULL, spin_thread, &s[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(s[i].sum, 4 * (s[i].n * (s[i].n - 1) / 2));
  }
}

static int fp_fn(void *v, void **result) {
  (void)v;
  fesetround(FE_UPWARD);
  conc_coro_switch(conc_coro_main(), NULL, NULL);
  int mode = fegetround();
  fesetround(FE_TONEAREST);
  *result = (void *)(uintptr_t)(mode == FE_UPWARD);
  return 0;
}

/* Backend: callee-saved FP state and rounding modes survive switches */
static void floating_point_state_survives_switches(void **state) {
  (void)state;
  conc_coro_t co;
  void *out;
  volatile double keep = 2.5;
  assert_int_equal(conc_coro_init(&co, fp_fn, NULL, NULL), 0);
  SW(&co, NULL, NULL);
#if defined(CONC_CORO_SAVE_FPU) || defined(CONC_TEST_BACKEND_ucontext)
  /* the coroutine's rounding mode is its own (swapcontext always saves the
   * FP environment; the asm switch does with CONC_CORO_SAVE_FPU) */
  assert_int_equal(fegetround(), FE_TONEAREST);
  fesetround(FE_DOWNWARD);
#else
  /* without the option the mode belongs to the thread, as in greenlet */
  assert_int_equal(fegetround(), FE_UPWARD);
  fesetround(FE_UPWARD);
#endif
  SW(&co, NULL, &out);
#if defined(CONC_CORO_SAVE_FPU) || defined(CONC_TEST_BACKEND_ucontext)
  assert_int_equal(fegetround(), FE_DOWNWARD);
#endif
  fesetround(FE_TONEAREST);
  assert_ptr_equal(out, (void *)1);
  assert_true(keep == 2.5);
  assert_int_equal(conc_coro_destroy(&co), 0);
}

/* Backend: the name matches the build */
static void backend_is_reported(void **state) {
  (void)state;
  const char *b = conc_coro_backend();
  assert_non_null(b);
#if defined(CONC_TEST_BACKEND_ucontext)
  assert_string_equal(b, "ucontext");
#elif defined(CONC_TEST_BACKEND_asm) && defined(__x86_64__)
  assert_string_equal(b, "asm-x86_64");
#elif defined(CONC_TEST_BACKEND_asm) && defined(__aarch64__)
  assert_string_equal(b, "asm-aarch64");
#else
  assert_true(strcmp(b, "ucontext") == 0 || strncmp(b, "asm-", 4) == 0);
#endif
}

CONC_TEST_MAIN(
    cmocka_unit_test(create_runs_nothing_until_first_switch),
    cmocka_unit_test(first_switch_without_value_passes_create_arg),
    cmocka_unit_test(seed_ping_pong_prints_12_56_34_78),
    cmocka_unit_test(switch_returns_the_value_switched_back),
    cmocka_unit_test(switch_to_self_returns_value),
    cmocka_unit_test(return_value_goes_to_parent),
    cmocka_unit_test(explicit_parent_receives_result),
    cmocka_unit_test(dead_parent_is_skipped),
    cmocka_unit_test(set_parent_rejects_cycles),
    cmocka_unit_test(switch_into_dead_is_EDEAD_and_changes_nothing),
    cmocka_unit_test(current_names_the_running_coroutine),
    cmocka_unit_test(each_thread_has_its_own_main),
    cmocka_unit_test(other_threads_coroutine_is_EWRONGTHREAD),
    cmocka_unit_test(unstarted_coroutine_destroyed_from_other_thread),
    cmocka_unit_test(kill_makes_pending_switch_return_ECANCELED),
    cmocka_unit_test(kill_of_unstarted_never_runs_it),
    cmocka_unit_test(destroy_of_unstarted_releases_stack_without_running),
    cmocka_unit_test(kill_declined_returns_EBUSY),
    cmocka_unit_test(kill_of_running_coroutine_is_ESTATE),
    cmocka_unit_test(default_stack_holds_printf_and_deep_calls),
    cmocka_unit_test(stack_size_option_is_honoured),
    cmocka_unit_test(guard_page_overflow_aborts_naming_coroutine),
    cmocka_unit_test(other_segfaults_are_passed_on),
    cmocka_unit_test(canary_stack_overflow_is_reported),
    cmocka_unit_test(guard_limit_switches_to_canary_stacks),
    cmocka_unit_test(many_suspended_coroutines_cost_a_few_pages),
    cmocka_unit_test(warm_pool_reuses_stacks),
    cmocka_unit_test(generator_yields_then_reports_exhaustion),
    cmocka_unit_test(generator_send_and_close),
    cmocka_unit_test(generators_round_robin),
    cmocka_unit_test(nested_coroutines_follow_the_parent_chain),
    cmocka_unit_test(threads_switch_concurrently),
    cmocka_unit_test(floating_point_state_survives_switches),
    cmocka_unit_test(backend_is_reported))
