/*
 * Subprocesses on the loop (asyncio.create_subprocess_exec): pipes as
 * streams, wait without blocking the loop, return codes, communicate, and
 * the misuse codes of include/conc/aioproc.h.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc/aioproc.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "harness.h"

static int run_main(conc_aio_fn_t fn, void *arg) {
  return conc_aio_run(fn, arg, NULL, NULL);
}

static int ticks;

static int ticker(void *arg, void **res) {
  (void)res;
  bool *stop = arg;
  while (!*stop) {
    ticks++;
    if (conc_aio_sleep(0.005))
      return 0;
  }
  return 0;
}

static int stdout_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  bool stop = false;
  conc_aio_future_t *tk;
  assert_int_equal(conc_aio_create_task(NULL, ticker, &stop, NULL, &tk), 0);
  char *argv[] = {"sh", "-c", "sleep 0.1; printf 'one\\ntwo\\n'; exit 3", NULL};
  conc_aio_process_t *p;
  assert_int_equal(conc_aio_create_subprocess_exec(
                       "sh", argv,
                       &(conc_aio_process_opts_t){.stdout_mode = CONC_AIO_PIPE},
                       &p),
                   0);
  assert_true(conc_aio_process_pid(p) > 0);
  assert_null(conc_aio_process_stdin(p));
  int rc = 1234;
  assert_false(conc_aio_process_returncode(p, &rc));
  assert_int_equal(rc, 1234);
  char line[16];
  conc_aio_stream_t *out = conc_aio_process_stdout(p);
  assert_int_equal(conc_aio_stream_readline(out, line, sizeof line), 4);
  assert_memory_equal(line, "one\n", 4);
  assert_int_equal(conc_aio_stream_readline(out, line, sizeof line), 4);
  assert_int_equal(conc_aio_stream_readline(out, line, sizeof line), 0);
  assert_int_equal(conc_aio_process_wait(p, &rc), 0);
  assert_int_equal(rc, 3);
  assert_true(conc_aio_process_returncode(p, &rc));
  assert_int_equal(rc, 3);
  assert_int_equal(conc_aio_process_kill(p), CONC_ESRCH);
  conc_aio_process_release(p);
  stop = true;
  conc_aio_await(tk, NULL);
  conc_aio_future_release(tk);
  return 0;
}

static void
stdout_pipe_reads_lines_and_wait_gives_the_exit_status(void **state) {
  (void)state;
  ticks = 0;
  assert_int_equal(run_main(stdout_main, NULL), 0);
  assert_true(ticks >= 3); /* the loop ran while the child slept */
}

static int killed_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  char *argv[] = {"sleep", "30", NULL};
  conc_aio_process_t *p;
  assert_int_equal(conc_aio_create_subprocess_exec("sleep", argv, NULL, &p), 0);
  /* a cancelled wait leaves the child running and waitable */
  conc_aio_timeout_t to;
  assert_int_equal(conc_aio_timeout_enter(&to, 0.05), 0);
  int rc = conc_aio_process_wait(p, NULL);
  assert_int_equal(conc_aio_timeout_exit(&to, rc), CONC_ETIMEDOUT);
  assert_false(conc_aio_process_returncode(p, NULL));
  assert_int_equal(conc_aio_process_kill(p), 0);
  assert_int_equal(conc_aio_process_wait(p, &rc), 0);
  assert_int_equal(rc, -SIGKILL);
  conc_aio_process_release(p);
  return 0;
}

static void a_killed_child_returns_minus_the_signal(void **state) {
  (void)state;
  assert_int_equal(run_main(killed_main, NULL), 0);
}

enum { BIG = 1 << 20 };

static int communicate_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  char *in = malloc(BIG);
  for (size_t i = 0; i < BIG; i++)
    in[i] = (char)('a' + i % 26);
  char *argv[] = {"sh", "-c", "cat; echo oops >&2", NULL};
  conc_aio_process_t *p;
  assert_int_equal(conc_aio_create_subprocess_exec(
                       "sh", argv,
                       &(conc_aio_process_opts_t){.stdin_mode = CONC_AIO_PIPE,
                                                  .stdout_mode = CONC_AIO_PIPE,
                                                  .stderr_mode = CONC_AIO_PIPE},
                       &p),
                   0);
  char *out, *err;
  size_t olen, elen;
  int rc;
  /* a megabyte each way: without reading while writing, both would stall */
  assert_int_equal(
      conc_aio_process_communicate(p, in, BIG, &out, &olen, &err, &elen, &rc),
      0);
  assert_int_equal(rc, 0);
  assert_int_equal(olen, BIG);
  assert_memory_equal(out, in, BIG);
  assert_string_equal(err, "oops\n");
  free(out);
  free(err);
  free(in);
  conc_aio_process_release(p);
  return 0;
}

static void communicate_writes_and_reads_at_the_same_time(void **state) {
  (void)state;
  assert_int_equal(run_main(communicate_main, NULL), 0);
}

static int merged_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  char *argv[] = {"sh", "-c", "echo out; echo err >&2", NULL};
  conc_aio_process_t *p;
  assert_int_equal(
      conc_aio_create_subprocess_exec(
          "sh", argv,
          &(conc_aio_process_opts_t){.stdin_mode = CONC_AIO_DEVNULL,
                                     .stdout_mode = CONC_AIO_PIPE,
                                     .stderr_mode = CONC_AIO_STDOUT},
          &p),
      0);
  assert_null(conc_aio_process_stderr(p));
  char *out;
  size_t olen;
  assert_int_equal(
      conc_aio_process_communicate(p, NULL, 0, &out, &olen, NULL, NULL, NULL),
      0);
  assert_string_equal(out, "out\nerr\n");
  free(out);
  conc_aio_process_release(p);
  return 0;
}

/* How many descriptors a child started with this stderr mode has: the
 * shell counts its own with a glob (no pipeline, whose pipe would race). */
static int child_fd_count(int stderr_mode) {
  char *argv[] = {"sh", "-c", "set -- /proc/$$/fd/*; echo $#", NULL};
  conc_aio_process_t *p;
  assert_int_equal(
      conc_aio_create_subprocess_exec(
          "sh", argv,
          &(conc_aio_process_opts_t){.stdin_mode = CONC_AIO_DEVNULL,
                                     .stdout_mode = CONC_AIO_PIPE,
                                     .stderr_mode = stderr_mode},
          &p),
      0);
  char *out = NULL, *err = NULL;
  assert_int_equal(
      conc_aio_process_communicate(p, NULL, 0, &out, NULL, &err, NULL, NULL),
      0);
  int n = atoi(out);
  free(out);
  free(err);
  conc_aio_process_release(p);
  return n;
}

static int fds_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  /* stderr sharing stdout's pipe must cost the child no extra descriptor */
  int separate = child_fd_count(CONC_AIO_PIPE);
  int shared = child_fd_count(CONC_AIO_STDOUT);
  assert_int_equal(shared, separate);
  return 0;
}

static void stderr_on_stdout_adds_no_descriptor_to_the_child(void **state) {
  (void)state;
  assert_int_equal(run_main(fds_main, NULL), 0);
}

static void stderr_can_share_the_stdout_pipe(void **state) {
  (void)state;
  assert_int_equal(run_main(merged_main, NULL), 0);
}

static int missing_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  char *argv[] = {"no-such-program-here", NULL};
  conc_aio_process_t *p = NULL;
  assert_int_equal(
      conc_aio_create_subprocess_exec("no-such-program-here", argv, NULL, &p),
      CONC_ENOENT);
  assert_null(p);
  assert_int_equal(conc_aio_create_subprocess_exec(NULL, argv, NULL, &p),
                   CONC_EINVAL);
  assert_int_equal(
      conc_aio_create_subprocess_exec(
          "sh", argv, &(conc_aio_process_opts_t){.stdin_mode = 99}, &p),
      CONC_EINVAL);
  assert_int_equal(
      conc_aio_create_subprocess_exec(
          "sh", argv, &(conc_aio_process_opts_t){.stdin_mode = CONC_AIO_STDOUT},
          &p),
      CONC_EINVAL);
  assert_int_equal(conc_aio_process_wait(NULL, NULL), CONC_EINVAL);
  return 0;
}

static void a_missing_program_is_ENOENT_and_bad_modes_EINVAL(void **state) {
  (void)state;
  assert_int_equal(run_main(missing_main, NULL), 0);
}

CONC_TEST_MAIN(
    cmocka_unit_test(stdout_pipe_reads_lines_and_wait_gives_the_exit_status),
    cmocka_unit_test(a_killed_child_returns_minus_the_signal),
    cmocka_unit_test(communicate_writes_and_reads_at_the_same_time),
    cmocka_unit_test(stderr_can_share_the_stdout_pipe),
    cmocka_unit_test(stderr_on_stdout_adds_no_descriptor_to_the_child),
    cmocka_unit_test(a_missing_program_is_ENOENT_and_bad_modes_EINVAL))
