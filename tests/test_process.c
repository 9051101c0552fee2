/*
 * Process: lifecycle, names, daemons, exit codes, parent death (spec P, F7,
 * F10). Every test arms a watchdog (alarm) so a hang fails the program, and
 * reaps every child it makes; children that loop forever are daemonic or die
 * with their parent, so a failing test leaves nothing behind.
 */
#include "harness.h"

#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/process.h"
#include "conc/thread.h"
#include "process-int.h"

/* A page shared with the children, for them to report back. */
struct report {
  pid_t pid, ppid, other;
  int value, value2, rc, rc2, rc3;
  char name[CONC_PROCESS_NAME_MAX];
  char name2[CONC_PROCESS_NAME_MAX];
};
static struct report *rep;

static int setup(void **state) {
  (void)state;
  alarm(30);
  rep = mmap(NULL, sizeof *rep, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(rep != MAP_FAILED);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  munmap(rep, sizeof *rep);
  conc__process_use_pidfd(true);
  alarm(0);
  return 0;
}

static int noop(void *arg, void **result) {
  *result = arg;
  return 0;
}

static int sleeper(void *arg, void **result) {
  conc_sleep(*(double *)arg);
  return 0;
}

static int loop_forever(void *arg, void **result) {
  (void)arg;
  for (;;)
    pause();
  return 0;
}

static int exitcode(conc_process_t *p) {
  int code = 12345;
  assert_int_equal(conc_process_exitcode(p, &code), 0);
  return code;
}

/* P1 */
static void new_process_is_unstarted(void **state) {
  (void)state;
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, noop, NULL, NULL), 0);
  assert_int_equal(conc_process_pid(&p), 0);
  assert_int_equal(exitcode(&p), CONC_EXITCODE_NONE);
  assert_int_equal(conc_process_is_alive(&p), 0);
  assert_int_equal(conc_active_children(NULL, 0), 0);
  conc_process_destroy(&p);
}

/* P2 P4 P16, in both watching modes */
static void lifecycle(bool pidfd) {
  conc__process_use_pidfd(pidfd);
  double t = 0.2;
  conc_process_t p, *list[4];
  assert_int_equal(conc_process_init(&p, sleeper, &t, NULL), 0);
  assert_int_equal(conc_process_sentinel(&p), CONC_ENOTSTARTED);
  assert_int_equal(conc_process_start(&p), 0);
  assert_true(conc_process_pid(&p) > 0);
  assert_int_equal(conc_process_is_alive(&p), 1);
  assert_int_equal(exitcode(&p), CONC_EXITCODE_NONE);
  assert_int_equal(conc_active_children(list, 4), 1);
  assert_ptr_equal(list[0], &p);
  int fd = conc_process_sentinel(&p);
  assert_true(fd >= 0);
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&pf, 1, 0), 0);
  assert_int_equal(poll(&pf, 1, 5000), 1); /* readable once it ends */
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  assert_int_equal(exitcode(&p), 0);
  assert_int_equal(conc_process_is_alive(&p), 0);
  assert_int_equal(conc_active_children(list, 4), 0);
  conc_process_destroy(&p);
}

static void start_join_with_pidfd(void **state) {
  (void)state;
  lifecycle(true);
}

static void start_join_with_sentinel_pipe(void **state) {
  (void)state;
  lifecycle(false);
}

/* P3 P19 */
static int report_self(void *arg, void **result) {
  conc_process_t *me = conc_current_process();
  rep->pid = conc_process_pid(me);
  snprintf(rep->name, sizeof rep->name, "%s", conc_process_name(me));
  conc_process_t *parent = conc_parent_process();
  rep->ppid = parent ? conc_process_pid(parent) : -1;
  snprintf(rep->name2, sizeof rep->name2, "%s",
           parent ? conc_process_name(parent) : "none");
  rep->value = *(int *)arg;
  rep->rc = parent ? conc_process_is_alive(parent) : -1;
  rep->rc2 = conc_process_is_alive(me);
  return 0;
}

static void child_sees_name_pid_args_and_parent(void **state) {
  (void)state;
  int arg = 42;
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, report_self, &arg,
                                     &(conc_process_opts_t){.name = "worker"}),
                   0);
  assert_int_equal(conc_process_start(&p), 0);
  arg = 7; /* arguments crossed by value at fork */
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  assert_int_equal(rep->pid, conc_process_pid(&p));
  assert_string_equal(rep->name, "worker");
  assert_int_equal(rep->ppid, getpid());
  assert_string_equal(rep->name2, "MainProcess");
  assert_int_equal(rep->value, 42);
  assert_int_equal(rep->rc, 1);
  assert_int_equal(rep->rc2, 1);
  conc_process_destroy(&p);
}

/* P5: Python's args may be a list or a tuple with the same result; in C
 * the argument block may be an array or a struct: the child reads the same
 * values either way, from its own copy made at fork. */
struct triple {
  int a, b, c;
};

static int report_triple(void *arg, void **result) {
  const int *v = arg; /* an int[3] and a struct of three ints alike */
  rep->value = v[0] * 100 + v[1] * 10 + v[2];
  return 0;
}

static int run_with_block(void *block) {
  rep->value = -1;
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, report_triple, block, NULL), 0);
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  conc_process_destroy(&p);
  return rep->value;
}

static void args_as_array_or_struct_give_the_same_result(void **state) {
  (void)state;
  int array[3] = {1, 2, 3};
  struct triple tuple = {1, 2, 3};
  _Static_assert(sizeof tuple == sizeof array, "same layout");
  int from_array = run_with_block(array);
  assert_int_equal(from_array, 123);
  assert_int_equal(run_with_block(&tuple), from_array);
}

/* P18 P19 */
static void main_process_attributes(void **state) {
  (void)state;
  conc_process_t *me = conc_current_process();
  assert_string_equal(conc_process_name(me), "MainProcess");
  assert_int_equal(conc_process_pid(me), getpid());
  assert_false(conc_process_daemon(me));
  assert_int_equal(conc_process_is_alive(me), 1);
  assert_int_equal(exitcode(me), CONC_EXITCODE_NONE);
  assert_null(conc_parent_process());
  assert_int_equal(conc_process_join(me, 0), CONC_ECHILD);
}

/* P6 */
static int report_inherited_daemon(void *arg, void **result) {
  (void)arg;
  conc_process_t q;
  rep->rc = conc_process_init(&q, noop, NULL, NULL);
  rep->value = conc_process_daemon(&q);
  rep->rc2 = conc_process_start(&q); /* P21: daemons have no children */
  rep->value2 = conc_process_daemon(conc_current_process());
  return 0;
}

/* Threads and processes read `daemon` one way (conc_daemon_t): `true` and
 * CONC_DAEMON_YES make a daemon, CONC_DAEMON_NO does not, 0 inherits (the
 * main thread and process are not daemons), any other value is EINVAL. */
static void
daemon_option_is_one_convention_for_threads_and_processes(void **state) {
  (void)state;
  const conc_daemon_t values[] = {true, CONC_DAEMON_YES, CONC_DAEMON_NO,
                                  CONC_DAEMON_INHERIT};
  const bool want[] = {true, true, false, false};
  for (int i = 0; i < 4; i++) {
    conc_thread_t t;
    assert_int_equal(
        conc_thread_init(&t, NULL, NULL,
                         &(conc_thread_opts_t){.daemon = values[i]}),
        0);
    assert_int_equal(conc_thread_daemon(&t), want[i]);
    conc_thread_destroy(&t);
    conc_process_t p;
    assert_int_equal(
        conc_process_init(&p, noop, NULL,
                          &(conc_process_opts_t){.daemon = values[i]}),
        0);
    assert_int_equal(conc_process_daemon(&p), want[i]);
    conc_process_destroy(&p);
  }
  conc_thread_t t;
  assert_int_equal(
      conc_thread_init(&t, NULL, NULL,
                       &(conc_thread_opts_t){.daemon = (conc_daemon_t)2}),
      CONC_EINVAL);
  conc_process_t p;
  assert_int_equal(
      conc_process_init(&p, noop, NULL,
                        &(conc_process_opts_t){.daemon = (conc_daemon_t)2}),
      CONC_EINVAL);
}

static void daemon_flag_inherits_and_freezes_at_start(void **state) {
  (void)state;
  conc_process_t p, q;
  assert_int_equal(
      conc_process_init(&p, report_inherited_daemon, NULL,
                        &(conc_process_opts_t){.daemon = CONC_DAEMON_YES}),
      0);
  assert_true(conc_process_daemon(&p));
  assert_int_equal(conc_process_init(&q, noop, NULL, NULL), 0);
  assert_false(conc_process_daemon(&q)); /* inherited from MainProcess */
  assert_int_equal(conc_process_set_daemon(&q, true), 0);
  assert_true(conc_process_daemon(&q));
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(conc_process_set_daemon(&p, false), CONC_ESTATE);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  assert_int_equal(exitcode(&p), 0);
  assert_int_equal(rep->rc, 0);
  assert_int_equal(rep->value, 1);
  assert_int_equal(rep->rc2, CONC_ESTATE);
  assert_int_equal(rep->value2, 1);
  conc_process_destroy(&p);
  conc_process_destroy(&q);
}

/* P7 P8 */
static conc_process_t sibling;

static int misuse_from_child(void *arg, void **result) {
  (void)arg;
  rep->rc = conc_process_join(&sibling, 0);
  rep->rc2 = conc_process_is_alive(&sibling);
  rep->rc3 = conc_process_join(conc_current_process(), 0);
  return 0;
}

static void start_twice_and_foreign_join_are_errors(void **state) {
  (void)state;
  conc_process_t p;
  assert_int_equal(
      conc_process_init(&sibling, loop_forever, NULL,
                        &(conc_process_opts_t){.daemon = CONC_DAEMON_YES}),
      0);
  assert_int_equal(conc_process_join(&sibling, 0), CONC_ENOTSTARTED);
  assert_int_equal(conc_process_terminate(&sibling), CONC_ENOTSTARTED);
  assert_int_equal(conc_process_start(&sibling), 0);
  assert_int_equal(conc_process_start(&sibling), CONC_ESTATE);
  assert_int_equal(conc_process_init(&p, misuse_from_child, NULL, NULL), 0);
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  assert_int_equal(rep->rc, CONC_ECHILD);
  assert_int_equal(rep->rc2, CONC_ECHILD);
  assert_int_equal(rep->rc3, CONC_ECHILD);
  assert_int_equal(conc_process_kill(&sibling), 0);
  assert_int_equal(conc_process_join(&sibling, CONC_FOREVER), 0);
  assert_int_equal(exitcode(&sibling), -SIGKILL);
  conc_process_destroy(&p);
  conc_process_destroy(&sibling);
}

/* P9 P10 */
static void join_timeouts_leave_child_running(void **state) {
  (void)state;
  conc_process_t p;
  assert_int_equal(
      conc_process_init(&p, loop_forever, NULL,
                        &(conc_process_opts_t){.die_with_parent = true}),
      0);
  assert_int_equal(conc_process_start(&p), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_process_join(&p, 0), CONC_ETIMEDOUT);
  assert_int_equal(conc_process_join(&p, -0.5), CONC_ETIMEDOUT);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(conc_process_join(&p, NAN), CONC_EINVAL);
  t0 = conc_monotonic();
  assert_int_equal(conc_process_join(&p, 0.3), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.3);
  assert_int_equal(conc_process_is_alive(&p), 1);
  assert_int_equal(exitcode(&p), CONC_EXITCODE_NONE);
  assert_int_equal(conc_process_terminate(&p), 0);
  t0 = conc_monotonic();
  assert_int_equal(conc_process_join(&p, 5), 0);
  assert_quick(conc_monotonic() - t0);
  conc_process_destroy(&p);
}

/* P11 P12 F10 */
static void terminate_and_kill_give_negative_signal(void **state) {
  (void)state;
  int sigs[] = {SIGTERM, SIGKILL};
  for (int i = 0; i < 2; i++) {
    conc_process_t p;
    assert_int_equal(
        conc_process_init(&p, loop_forever, NULL,
                          &(conc_process_opts_t){.die_with_parent = true}),
        0);
    assert_int_equal(conc_process_start(&p), 0);
    assert_int_equal(i ? conc_process_kill(&p) : conc_process_terminate(&p), 0);
    double t0 = conc_monotonic();
    assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
    assert_quick(conc_monotonic() - t0);
    assert_int_equal(exitcode(&p), -sigs[i]);
    assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0); /* P12 */
    assert_int_equal(conc_process_terminate(&p), 0);
    assert_int_equal(conc_process_kill(&p), 0);
    assert_int_equal(exitcode(&p), -sigs[i]);
    conc_process_destroy(&p);
  }
}

/* P13 P14 F10 */
static int exit_with(void *arg, void **result) {
  conc_process_exit(*(int *)arg);
}
/* cmocka catches fatal signals; a child must die of them for real. */
static int die_by(void *arg, void **result) {
  signal(*(int *)arg, SIG_DFL);
  raise(*(int *)arg);
  return 0;
}
static int crash_abort(void *arg, void **result) {
  (void)arg;
  signal(SIGABRT, SIG_DFL);
  abort();
}

static int run_for_code(conc_fn_t fn, int arg) {
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, fn, &arg, NULL), 0);
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  int code = exitcode(&p);
  conc_process_destroy(&p);
  return code;
}

static void exit_codes_match_python(void **state) {
  (void)state;
  assert_int_equal(run_for_code(exit_with, 0), 0);
  assert_int_equal(run_for_code(exit_with, 1), 1);
  assert_int_equal(run_for_code(exit_with, 7), 7);
  assert_int_equal(run_for_code(exit_with, 255), 255);
  assert_int_equal(run_for_code(die_by, SIGUSR1), -SIGUSR1);
  assert_int_equal(run_for_code(die_by, SIGSEGV), -SIGSEGV);
  assert_int_equal(run_for_code(crash_abort, 0), -SIGABRT);
  assert_int_equal(run_for_code(noop, 0), 0);
}

static int err_pipe[2];

static int fail_to_pipe(void *arg, void **result) {
  (void)arg;
  dup2(err_pipe[1], 2);
  fprintf(stderr, "partial "); /* buffered output must come out in order */
  return conc_raise(CONC_EINVAL, "boom %d", 3);
}

static int fail_with_bare_code(void *arg, void **result) {
  dup2(err_pipe[1], 2);
  return *(int *)arg;
}

/* Run fn(arg) in a child named "Bad"; returns its exit code and stores
 * what it wrote to stderr in buf. */
static int run_for_stderr(conc_fn_t fn, void *arg, char *buf, size_t cap) {
  assert_int_equal(pipe(err_pipe), 0);
  conc_process_t p;
  assert_int_equal(
      conc_process_init(&p, fn, arg, &(conc_process_opts_t){.name = "Bad"}), 0);
  assert_int_equal(conc_process_start(&p), 0);
  close(err_pipe[1]);
  memset(buf, 0, cap);
  size_t got = 0;
  ssize_t r;
  while ((r = read(err_pipe[0], buf + got, cap - 1 - got)) > 0)
    got += (size_t)r;
  close(err_pipe[0]);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  int code = exitcode(&p);
  conc_process_destroy(&p);
  return code;
}

/* A target's negative return is Python's uncaught exception: exit code 1
 * and "Process NAME:" with the error's class, code and conc_raise message
 * on stderr; a bare code prints no message, a positive return counts as
 * CONC_EFAILED. */
static void target_returning_a_code_exits_one_with_a_report(void **state) {
  (void)state;
  char buf[256];
  assert_int_equal(run_for_stderr(fail_to_pipe, NULL, buf, sizeof buf), 1);
  assert_string_equal(buf, "partial Process Bad:\n"
                           "ValueError (CONC_EINVAL): boom 3\n");
  int code = CONC_ETIMEDOUT;
  assert_int_equal(run_for_stderr(fail_with_bare_code, &code, buf, sizeof buf),
                   1);
  assert_string_equal(buf, "Process Bad:\nTimeoutError (CONC_ETIMEDOUT)\n");
  code = 3;
  assert_int_equal(run_for_stderr(fail_with_bare_code, &code, buf, sizeof buf),
                   1);
  assert_string_equal(buf, "Process Bad:\nException (CONC_EFAILED)\n");
}

/* P15 */
static int read_stdin(void *arg, void **result) {
  (void)arg;
  char c;
  struct stat a, b;
  rep->rc = (int)read(0, &c, 1);
  rep->value =
      fstat(0, &a) == 0 && stat("/dev/null", &b) == 0 && a.st_rdev == b.st_rdev;
  printf("y");
  return 0;
}

static void child_stdin_is_devnull_and_stdout_flushed(void **state) {
  (void)state;
  int out[2];
  assert_int_equal(pipe(out), 0);
  fflush(stdout);
  int saved = dup(1);
  dup2(out[1], 1);
  close(out[1]);
  printf("x"); /* pending in the parent's buffer at fork */
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, read_stdin, NULL, NULL), 0);
  int rc = conc_process_start(&p);
  int jrc = conc_process_join(&p, CONC_FOREVER);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  char buf[16] = {0};
  ssize_t n = read(out[0], buf, sizeof buf - 1);
  close(out[0]);
  assert_int_equal(rc, 0);
  assert_int_equal(jrc, 0);
  assert_int_equal(n, 2);
  assert_string_equal(buf, "xy");
  assert_int_equal(rep->rc, 0);
  assert_int_equal(rep->value, 1);
  conc_process_destroy(&p);
}

/* P17 */
static void close_rules(void **state) {
  (void)state;
  double t = 0.1;
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, sleeper, &t, NULL), 0);
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(conc_process_close(&p), CONC_ESTATE);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  assert_int_equal(conc_process_close(&p), 0);
  assert_int_equal(conc_process_is_alive(&p), CONC_ECLOSED);
  assert_int_equal(conc_process_join(&p, 0), CONC_ECLOSED);
  assert_int_equal(conc_process_terminate(&p), CONC_ECLOSED);
  assert_int_equal(conc_process_sentinel(&p), CONC_ECLOSED);
  assert_int_equal(conc_process_start(&p), CONC_ECLOSED);
  int code;
  assert_int_equal(conc_process_exitcode(&p, &code), CONC_ECLOSED);
  assert_int_equal(conc_process_close(&p), 0);
}

/* P21 P23 */
static int nest(void *arg, void **result) {
  int depth = *(int *)arg;
  if (depth == 0) {
    snprintf(rep->name, sizeof rep->name, "%s",
             conc_process_name(conc_current_process()));
    snprintf(rep->name2, sizeof rep->name2, "%s",
             conc_process_name(conc_parent_process()));
    return 0;
  }
  depth--;
  conc_process_t a, b;
  conc_process_init(&a, noop, NULL, NULL); /* takes number 1 */
  conc_process_init(&b, nest, &depth, NULL);
  if (conc_process_start(&b) != 0 || conc_process_join(&b, CONC_FOREVER) != 0)
    conc_process_exit(3);
  int code;
  conc_process_exitcode(&b, &code);
  conc_process_exit(code);
}

static void nested_children_get_joined_names(void **state) {
  (void)state;
  conc_process_t p, q;
  int depth = 2;
  assert_int_equal(conc_process_init(&q, noop, NULL, NULL), 0);
  assert_int_equal(conc_process_init(&p, nest, &depth, NULL), 0);
  const char *a = conc_process_name(&q), *b = conc_process_name(&p);
  int n = atoi(b + strlen("Process-"));
  assert_int_equal(strncmp(a, "Process-", 8), 0);
  assert_int_equal(atoi(a + 8) + 1, n);
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  assert_int_equal(exitcode(&p), 0);
  char want[64], want2[64];
  snprintf(want, sizeof want, "Process-%d:2:2", n);
  snprintf(want2, sizeof want2, "Process-%d:2", n);
  assert_string_equal(rep->name, want);
  assert_string_equal(rep->name2, want2);
  conc_process_destroy(&p);
  conc_process_destroy(&q);
}

/* P22 */
static int exit_with_children(void *arg, void **result) {
  (void)arg;
  /* A started process object must outlive the child: static here. */
  static double t = 0.2;
  static conc_process_t d, n;
  conc_process_init(&d, loop_forever, NULL,
                    &(conc_process_opts_t){.daemon = CONC_DAEMON_YES});
  conc_process_init(&n, sleeper, &t, NULL);
  conc_process_start(&d);
  conc_process_start(&n);
  rep->pid = conc_process_pid(&d);
  rep->other = conc_process_pid(&n);
  return 0; /* exit: terminate d, join n */
}

static void exit_terminates_daemons_and_joins_others(void **state) {
  (void)state;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  conc_process_t p;
  assert_int_equal(
      conc_process_init(&p, exit_with_children, NULL,
                        &(conc_process_opts_t){.die_with_parent = true}),
      0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  assert_true(conc_monotonic() - t0 >= 0.2); /* n was joined */
  assert_int_equal(exitcode(&p), 0);
  /* Both grandchildren were reaped by p before it exited: they are gone. */
  assert_int_equal(kill(rep->pid, 0), -1);
  assert_int_equal(kill(rep->other, 0), -1);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  conc_process_destroy(&p);
}

/* F7: daemonic children of a killed parent exit promptly */
/* arg: 1 daemonic, 0 non-daemonic, 2 non-daemonic with die_with_parent */
static int spawn_then_hang(void *arg, void **result) {
  int daemon = *(int *)arg;
  conc_process_t d;
  conc_process_init(&d, loop_forever, NULL,
                    &(conc_process_opts_t){.daemon = daemon == 1
                                                         ? CONC_DAEMON_YES
                                                         : CONC_DAEMON_NO,
                                           .die_with_parent = daemon == 2});
  conc_process_start(&d);
  __atomic_store_n(&rep->pid, conc_process_pid(&d), __ATOMIC_RELEASE);
  for (;;)
    pause();
  return 0;
}

static pid_t spawn_grandchild_and_kill_parent(int daemon) {
  rep->pid = 0;
  conc_process_t p;
  assert_int_equal(
      conc_process_init(&p, spawn_then_hang, &daemon,
                        &(conc_process_opts_t){.die_with_parent = true}),
      0);
  assert_int_equal(conc_process_start(&p), 0);
  while (__atomic_load_n(&rep->pid, __ATOMIC_ACQUIRE) == 0)
    conc_sleep(0.001);
  assert_int_equal(conc_process_kill(&p), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  conc_process_destroy(&p);
  return rep->pid;
}

static bool reap_within(pid_t pid, double t, int *status) {
  double end = conc_monotonic() + t;
  while (conc_monotonic() < end) {
    if (waitpid(pid, status, WNOHANG) == pid)
      return true;
    conc_sleep(0.002);
  }
  return false;
}

static void daemon_dies_with_killed_parent(void **state) {
  (void)state;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  pid_t d = spawn_grandchild_and_kill_parent(1);
  int st;
  assert_true(reap_within(d, 2.0, &st));
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  /* A non-daemonic one keeps running, as in Python. */
  pid_t n = spawn_grandchild_and_kill_parent(0);
  assert_false(reap_within(n, 0.2, &st));
  kill(n, SIGKILL);
  assert_int_equal(waitpid(n, &st, 0), n);
  /* ... unless it asked to die with its parent. */
  pid_t w = spawn_grandchild_and_kill_parent(2);
  assert_true(reap_within(w, 2.0, &st));
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* parent_process().join(): a grandchild joins the child that started it;
 * the join times out while that parent lives and returns once it is
 * killed. With pidfd it watches a pidfd of the parent; without, the read
 * end of the parent's life pipe. */
static int join_parent_twice(void *arg, void **result) {
  (void)arg;
  conc_process_t *parent = conc_parent_process();
  rep->rc = conc_process_join(parent, 0.05);
  __atomic_store_n(&rep->value, 1, __ATOMIC_RELEASE); /* ready */
  rep->rc2 = conc_process_join(parent, 10.0);
  return 0;
}

static int start_joiner_then_hang(void *arg, void **result) {
  (void)arg;
  conc_process_t g;
  conc_process_init(&g, join_parent_twice, NULL, NULL);
  conc_process_start(&g);
  __atomic_store_n(&rep->pid, conc_process_pid(&g), __ATOMIC_RELEASE);
  for (;;)
    pause();
  return 0;
}

static void joining_the_parent(bool pidfd) {
  conc__process_use_pidfd(pidfd);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  rep->pid = 0;
  rep->value = 0;
  rep->rc = rep->rc2 = 12345;
  conc_process_t p;
  assert_int_equal(
      conc_process_init(&p, start_joiner_then_hang, NULL,
                        &(conc_process_opts_t){.die_with_parent = true}),
      0);
  assert_int_equal(conc_process_start(&p), 0);
  while (__atomic_load_n(&rep->value, __ATOMIC_ACQUIRE) == 0)
    conc_sleep(0.001);
  assert_int_equal(rep->rc, CONC_ETIMEDOUT); /* the parent still runs */
  double t0 = conc_monotonic();
  assert_int_equal(conc_process_kill(&p), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  conc_process_destroy(&p);
  int st;
  assert_int_equal(waitpid(rep->pid, &st, 0), rep->pid); /* reparented */
  assert_true(conc_monotonic() - t0 < 5.0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(rep->rc2, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void child_joins_its_parent_with_pidfd(void **state) {
  (void)state;
  joining_the_parent(true);
}

static void child_joins_its_parent_with_life_pipe(void **state) {
  (void)state;
  joining_the_parent(false);
}

/* F7: the parent dies right after fork, before prctl could take effect */
static int start_daemon_and_vanish(void *arg, void **result) {
  (void)arg;
  conc_process_t d;
  conc_process_init(&d, loop_forever, NULL,
                    &(conc_process_opts_t){.daemon = CONC_DAEMON_YES});
  conc_process_start(&d);
  rep->pid = conc_process_pid(&d);
  _exit(0); /* no exit handlers: only the death signal can end d */
}

static void daemon_dies_when_parent_exits_right_after_fork(void **state) {
  (void)state;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  for (int i = 0; i < 20; i++) {
    conc_process_t p;
    assert_int_equal(conc_process_init(&p, start_daemon_and_vanish, NULL, NULL),
                     0);
    assert_int_equal(conc_process_start(&p), 0);
    assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
    int st;
    assert_true(reap_within(rep->pid, 2.0, &st));
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    conc_process_destroy(&p);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* P26 */
static void cpu_counts_are_positive(void **state) {
  (void)state;
  assert_true(conc_cpu_count() >= 1);
  assert_true(conc_process_cpu_count() >= 1);
  assert_true(conc_process_cpu_count() <= conc_cpu_count() ||
              conc_cpu_count() == 1);
}

/* P27 */
typedef struct counter_process {
  conc_process_t base;
  int start, step;
} counter_process_t;

static int counter_run(void *arg, void **result) {
  counter_process_t *self = arg;
  assert_ptr_equal(conc_current_process(), &self->base);
  rep->value = self->start + self->step;
  return 0;
}

static void subclass_by_embedding(void **state) {
  (void)state;
  counter_process_t c = {.start = 40, .step = 2};
  assert_int_equal(conc_process_init(&c.base, counter_run, &c, NULL), 0);
  assert_int_equal(conc_process_start(&c.base), 0);
  assert_null(c.base.priv.target); /* the reference is dropped after start */
  assert_int_equal(conc_process_join(&c.base, CONC_FOREVER), 0);
  assert_int_equal(exitcode(&c.base), 0);
  assert_int_equal(rep->value, 42);
  conc_process_destroy(&c.base);
}

/* Joins from several threads at once all return, and agree. */
static void *join_thread(void *arg) {
  return (void *)(intptr_t)conc_process_join(arg, CONC_FOREVER);
}

static void concurrent_joins_all_return(void **state) {
  (void)state;
  double t = 0.1;
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, sleeper, &t, NULL), 0);
  assert_int_equal(conc_process_start(&p), 0);
  pthread_t th[3];
  for (int i = 0; i < 3; i++)
    th[i] = conc_test_spawn(join_thread, &p);
  for (int i = 0; i < 3; i++) {
    void *r;
    assert_int_equal(pthread_join(th[i], &r), 0);
    assert_int_equal((intptr_t)r, 0);
  }
  assert_int_equal(exitcode(&p), 0);
  conc_process_destroy(&p);
}

/* A destroyed running child is still reaped by active_children. */
static void destroyed_running_child_is_reaped(void **state) {
  (void)state;
  double t = 0.05;
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, sleeper, &t, NULL), 0);
  assert_int_equal(conc_process_start(&p), 0);
  pid_t pid = conc_process_pid(&p);
  conc_process_destroy(&p);
  assert_int_equal(conc_active_children(NULL, 0), 0); /* detached: not listed */
  conc_sleep(0.3);
  conc_active_children(NULL, 0);
  assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* already reaped */
  assert_int_equal(errno, ECHILD);
}

/* P25 */
static int slow_thread(void *arg, void **result) {
  (void)arg;
  conc_sleep(0.2);
  rep->value = 1;
  return 0;
}

static int start_thread_and_return(void *arg, void **result) {
  (void)arg;
  static conc_thread_t t;
  conc_thread_init(&t, slow_thread, NULL, NULL);
  conc_thread_start(&t);
  return 0; /* exit waits for the non-daemon thread */
}

static void child_waits_for_its_threads(void **state) {
  (void)state;
  rep->value = 0;
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, start_thread_and_return, NULL, NULL),
                   0);
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  assert_int_equal(exitcode(&p), 0);
  assert_int_equal(rep->value, 1);
  conc_process_destroy(&p);
}

/* Fork safety: forking while another thread works the registry. */
static volatile int hammer_stop;

static void *hammer_registry(void *arg) {
  conc_process_t *p = arg;
  while (!__atomic_load_n(&hammer_stop, __ATOMIC_RELAXED)) {
    conc_active_children(NULL, 0);
    conc_process_is_alive(p);
  }
  return NULL;
}

static int use_registry_in_child(void *arg, void **result) {
  (void)arg;
  conc_process_t q;
  conc_process_init(&q, noop, NULL, NULL);
  if (conc_process_start(&q) || conc_process_join(&q, CONC_FOREVER))
    conc_process_exit(2);
  return 0;
}

static void fork_while_threads_use_the_registry(void **state) {
  (void)state;
  double t = 0.5;
  conc_process_t bg;
  assert_int_equal(conc_process_init(&bg, sleeper, &t, NULL), 0);
  assert_int_equal(conc_process_start(&bg), 0);
  hammer_stop = 0;
  pthread_t th = conc_test_spawn(hammer_registry, &bg);
  for (int i = 0; i < 20; i++) {
    conc_process_t p;
    assert_int_equal(conc_process_init(&p, use_registry_in_child, NULL, NULL),
                     0);
    assert_int_equal(conc_process_start(&p), 0);
    assert_int_equal(conc_process_join(&p, 10), 0);
    assert_int_equal(exitcode(&p), 0);
    conc_process_destroy(&p);
  }
  __atomic_store_n(&hammer_stop, 1, __ATOMIC_RELAXED);
  conc_test_join(th);
  assert_int_equal(conc_process_join(&bg, CONC_FOREVER), 0);
  conc_process_destroy(&bg);
}

static void bad_arguments_get_codes(void **state) {
  (void)state;
  char long_name[CONC_PROCESS_NAME_MAX + 1];
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = 0;
  conc_process_t p;
  assert_int_equal(conc_process_init(NULL, noop, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_process_init(&p, noop, NULL,
                                     &(conc_process_opts_t){.name = long_name}),
                   CONC_EINVAL);
  assert_int_equal(
      conc_process_init(&p, noop, NULL, &(conc_process_opts_t){.daemon = 5}),
      CONC_EINVAL);
  assert_int_equal(conc_process_start(NULL), CONC_EINVAL);
  assert_int_equal(conc_process_join(NULL, 0), CONC_EINVAL);
  assert_int_equal(conc_process_is_alive(NULL), CONC_EINVAL);
  assert_int_equal(conc_process_kill(NULL), CONC_EINVAL);
  assert_int_equal(conc_process_close(NULL), CONC_EINVAL);
  assert_int_equal(conc_process_set_name(NULL, "x"), CONC_EINVAL);
  assert_int_equal(conc_process_exitcode(NULL, NULL), CONC_EINVAL);
}

static void *ask_current_process(void *arg) {
  (void)arg;
  for (int i = 0; i < 1000; i++)
    assert_int_equal(conc_process_pid(conc_current_process()), getpid());
  return NULL;
}

/* Threads that ask for the current process at once do not race (TSan
 * reported the main object's pid written by every call). */
static void current_process_from_many_threads_is_race_free(void **state) {
  (void)state;
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    t[i] = conc_test_spawn(ask_current_process, NULL);
  for (int i = 0; i < 4; i++)
    conc_test_join(t[i]);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
CONC_TEST_MAIN(
    T(new_process_is_unstarted), T(start_join_with_pidfd),
    T(start_join_with_sentinel_pipe), T(child_sees_name_pid_args_and_parent),
    T(args_as_array_or_struct_give_the_same_result), T(main_process_attributes),
    T(daemon_flag_inherits_and_freezes_at_start),
    T(daemon_option_is_one_convention_for_threads_and_processes),
    T(start_twice_and_foreign_join_are_errors),
    T(join_timeouts_leave_child_running),
    T(terminate_and_kill_give_negative_signal), T(exit_codes_match_python),
    T(target_returning_a_code_exits_one_with_a_report),
    T(child_stdin_is_devnull_and_stdout_flushed), T(close_rules),
    T(nested_children_get_joined_names),
    T(exit_terminates_daemons_and_joins_others),
    T(daemon_dies_with_killed_parent), T(child_joins_its_parent_with_pidfd),
    T(child_joins_its_parent_with_life_pipe),
    T(daemon_dies_when_parent_exits_right_after_fork),
    T(cpu_counts_are_positive), T(subclass_by_embedding),
    T(concurrent_joins_all_return), T(destroyed_running_child_is_reaped),
    T(child_waits_for_its_threads), T(fork_while_threads_use_the_registry),
    T(bad_arguments_get_codes),
    T(current_process_from_many_threads_is_race_free))
