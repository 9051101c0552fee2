/*
 * The event loop core, loop futures and tasks: spec/coro.md A1-A5, F1-F6,
 * F11, H2, H4, and the misuse codes of include/conc/loop.h. The I/O and
 * timer tests run on both poller backends.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/loop.h"
#include "harness.h"

static conc_loop_t *new_loop(conc_loop_backend_t b) {
  conc_loop_t *loop;
  assert_int_equal(conc_loop_create(&(conc_loop_opts_t){.backend = b}, &loop),
                   0);
  return loop;
}

/* ---- A2: callbacks and timers ----------------------------------------------
 */

typedef struct rec {
  int order[64];
  int n;
  conc_loop_t *loop;
} rec_t;

static rec_t g_rec;

static void note(void *arg) { g_rec.order[g_rec.n++] = (int)(intptr_t)arg; }

static void stop_cb(void *loop) { conc_loop_stop(loop); }

static void call_soon_runs_callbacks_in_fifo_order(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  g_rec.n = 0;
  for (intptr_t i = 0; i < 10; i++)
    assert_int_equal(conc_loop_call_soon(loop, note, (void *)i, NULL), 0);
  assert_int_equal(conc_loop_call_soon(loop, stop_cb, loop, NULL), 0);
  assert_int_equal(g_rec.n, 0); /* nothing runs before the loop does */
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(g_rec.n, 10);
  for (int i = 0; i < 10; i++)
    assert_int_equal(g_rec.order[i], i);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static void
timers_fire_in_deadline_order_ties_in_scheduling_order(conc_loop_backend_t b) {
  conc_loop_t *loop = new_loop(b);
  g_rec.n = 0;
  double now = conc_loop_time(loop);
  /* 3 at +30 ms, 1 and 2 tied at +20 ms (scheduled in that order), 0 at
   * +10 ms, then stop at +40 ms */
  assert_int_equal(conc_loop_call_at(loop, now + 0.03, note, (void *)3, NULL),
                   0);
  assert_int_equal(conc_loop_call_at(loop, now + 0.02, note, (void *)1, NULL),
                   0);
  assert_int_equal(conc_loop_call_at(loop, now + 0.02, note, (void *)2, NULL),
                   0);
  assert_int_equal(conc_loop_call_later(loop, 0.01, note, (void *)0, NULL), 0);
  assert_int_equal(conc_loop_call_later(loop, 0.04, stop_cb, loop, NULL), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_elapsed(conc_monotonic() - t0, 0.04);
  assert_int_equal(g_rec.n, 4);
  for (int i = 0; i < 4; i++)
    assert_int_equal(g_rec.order[i], i);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static void timers_in_deadline_order_epoll(void **state) {
  (void)state;
  timers_fire_in_deadline_order_ties_in_scheduling_order(
      CONC_LOOP_BACKEND_EPOLL);
}

static void timers_in_deadline_order_poll(void **state) {
  (void)state;
  timers_fire_in_deadline_order_ties_in_scheduling_order(
      CONC_LOOP_BACKEND_POLL);
}

static void cancelled_handle_never_runs(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  g_rec.n = 0;
  conc_handle_t h1, h2;
  assert_int_equal(conc_loop_call_soon(loop, note, (void *)1, &h1), 0);
  assert_int_equal(conc_loop_call_later(loop, 0.01, note, (void *)2, &h2), 0);
  assert_false(isnan(conc_loop_handle_when(loop, h2)));
  assert_true(conc_loop_cancel(loop, h1));
  assert_true(conc_loop_cancel(loop, h2));
  assert_false(conc_loop_cancel(loop, h2)); /* already cancelled */
  assert_true(isnan(conc_loop_handle_when(loop, h2)));
  assert_int_equal(conc_loop_call_later(loop, 0.02, stop_cb, loop, NULL), 0);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(g_rec.n, 0);
  /* a handle that ran cannot be cancelled, even after its record is reused */
  conc_handle_t h3;
  assert_int_equal(conc_loop_call_soon(loop, note, (void *)3, &h3), 0);
  conc_loop_stop(loop);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(g_rec.n, 1);
  assert_int_equal(conc_loop_call_soon(loop, note, (void *)4, NULL), 0);
  assert_false(conc_loop_cancel(loop, h3));
  conc_loop_stop(loop);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(g_rec.n, 2);
  assert_false(conc_loop_cancel(loop, (conc_handle_t){0}));
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static void
many_cancelled_timers_are_compacted_and_others_still_fire(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  enum { N = 20000 };
  static conc_handle_t hs[N];
  g_rec.n = 0;
  for (int i = 0; i < N; i++)
    assert_int_equal(conc_loop_call_later(loop, 1000.0 + i, note, NULL, &hs[i]),
                     0);
  assert_int_equal(conc_loop_call_later(loop, 0.005, note, (void *)7, NULL), 0);
  for (int i = 0; i < N; i++)
    assert_true(conc_loop_cancel(loop, hs[i]));
  assert_int_equal(conc_loop_call_later(loop, 0.01, stop_cb, loop, NULL), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_elapsed(conc_monotonic() - t0, 0.01);
  assert_int_equal(g_rec.n, 1);
  assert_int_equal(g_rec.order[0], 7);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

/* ---- A3: threadsafe calls
 * ----------------------------------------------------- */

typedef struct ts {
  conc_loop_t *loop;
  double sent;
  double got;
  int seen[4];
  int bad;
} ts_t;

static void ts_mark(void *arg) {
  ts_t *t = arg;
  t->got = conc_monotonic();
  conc_loop_stop(t->loop);
}

static void *ts_thread(void *arg) {
  ts_t *t = arg;
  conc_sleep(0.05); /* the loop is asleep in the poller by now */
  t->sent = conc_monotonic();
  assert_int_equal(conc_loop_call_soon_threadsafe(t->loop, ts_mark, t), 0);
  return NULL;
}

static void threadsafe_call_wakes_a_sleeping_loop(conc_loop_backend_t b) {
  ts_t t = {.loop = new_loop(b)};
  pthread_t th = conc_test_spawn(ts_thread, &t);
  assert_int_equal(conc_loop_run_forever(t.loop), 0); /* nothing else armed */
  conc_test_join(th);
  assert_true(t.got >= t.sent);
  assert_quick(t.got - t.sent);
  assert_int_equal(conc_loop_destroy(t.loop), 0);
}

static void threadsafe_wakes_epoll(void **state) {
  (void)state;
  threadsafe_call_wakes_a_sleeping_loop(CONC_LOOP_BACKEND_EPOLL);
}

static void threadsafe_wakes_poll(void **state) {
  (void)state;
  threadsafe_call_wakes_a_sleeping_loop(CONC_LOOP_BACKEND_POLL);
}

typedef struct tsorder {
  conc_loop_t *loop;
  int id;
  int next[4];
  int bad;
  int done;
} tsorder_t;

typedef struct tsmsg {
  tsorder_t *o;
  int from, seq;
} tsmsg_t;

enum { TS_N = 20000 };
static tsmsg_t ts_msgs[4][TS_N];

static void ts_order_cb(void *arg) {
  tsmsg_t *m = arg;
  if (m->o->next[m->from] != m->seq)
    m->o->bad++;
  m->o->next[m->from] = m->seq + 1;
  if (++m->o->done == 4 * TS_N)
    conc_loop_stop(m->o->loop);
}

typedef struct tsarg {
  tsorder_t *o;
  int from;
} tsarg_t;

static void *ts_producer(void *arg) {
  tsarg_t *a = arg;
  for (int i = 0; i < TS_N; i++) {
    ts_msgs[a->from][i] = (tsmsg_t){a->o, a->from, i};
    if (conc_loop_call_soon_threadsafe(a->o->loop, ts_order_cb,
                                       &ts_msgs[a->from][i]) != 0)
      a->o->bad++;
  }
  return NULL;
}

static void threadsafe_calls_from_each_thread_run_in_order(void **state) {
  (void)state;
  tsorder_t o = {.loop = new_loop(0)};
  tsarg_t a[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (tsarg_t){&o, i};
    th[i] = conc_test_spawn(ts_producer, &a[i]);
  }
  assert_int_equal(conc_loop_run_forever(o.loop), 0);
  for (int i = 0; i < 4; i++)
    conc_test_join(th[i]);
  assert_int_equal(o.bad, 0);
  assert_int_equal(o.done, 4 * TS_N);
  assert_int_equal(conc_loop_destroy(o.loop), 0);
}

/* ---- A4, A5: stop, close, threads
 * ------------------------------------------------ */

static int a4_count;

static void a4_again(void *loop) {
  a4_count++;
  conc_loop_call_soon(loop, a4_again, loop, NULL);
}

static void stop_finishes_the_iteration_and_the_loop_runs_again(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  a4_count = 0;
  g_rec.n = 0;
  /* stop is scheduled first; the callback after it still runs in this
   * iteration, and what that callback schedules waits for the next run */
  assert_int_equal(conc_loop_call_soon(loop, stop_cb, loop, NULL), 0);
  assert_int_equal(conc_loop_call_soon(loop, a4_again, loop, NULL), 0);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(a4_count, 1);
  assert_false(conc_loop_is_running(loop));
  /* stop before run_forever: one iteration, then return */
  conc_loop_stop(loop);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(a4_count, 2);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static void close_running(void *loop) {
  g_rec.order[0] = conc_loop_close(loop);
  g_rec.order[1] = conc_loop_destroy(loop);
  g_rec.order[2] = conc_loop_run_forever(loop);
  conc_loop_stop(loop);
}

static void
close_of_a_running_loop_fails_and_closed_loop_rejects_callbacks(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  assert_int_equal(conc_loop_call_soon(loop, close_running, loop, NULL), 0);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(g_rec.order[0], CONC_ESTATE);
  assert_int_equal(g_rec.order[1], CONC_ESTATE);
  assert_int_equal(g_rec.order[2], CONC_ESTATE);
  assert_int_equal(conc_loop_close(loop), 0);
  assert_true(conc_loop_is_closed(loop));
  assert_int_equal(conc_loop_close(loop), 0); /* twice: no-op */
  assert_int_equal(conc_loop_call_soon(loop, note, NULL, NULL), CONC_ECLOSED);
  assert_int_equal(conc_loop_call_later(loop, 1, note, NULL, NULL),
                   CONC_ECLOSED);
  assert_int_equal(conc_loop_call_soon_threadsafe(loop, note, NULL),
                   CONC_ECLOSED);
  assert_int_equal(conc_loop_run_forever(loop), CONC_ECLOSED);
  conc_aio_future_t *f;
  assert_int_equal(conc_aio_future_create(loop, &f), CONC_ECLOSED);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static void *other_thread_loop(void *arg) {
  conc_loop_t *theirs = arg;
  intptr_t bad = 0;
  bad += conc_loop_call_soon(theirs, note, NULL, NULL) != CONC_EWRONGTHREAD;
  bad += conc_loop_run_forever(theirs) != CONC_EWRONGTHREAD;
  bad += conc_loop_get() != NULL; /* none of this thread's own yet */
  conc_loop_t *mine;
  bad += conc_loop_create(NULL, &mine) != 0;
  bad += conc_loop_get() != mine;
  conc_loop_call_soon(mine, stop_cb, mine, NULL);
  bad += conc_loop_run_forever(mine) != 0;
  bad += conc_loop_destroy(mine) != 0;
  return (void *)bad;
}

static void each_thread_runs_its_own_loop(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  assert_ptr_equal(conc_loop_get(), loop);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, other_thread_loop, loop), 0);
  void *bad;
  pthread_join(th, &bad);
  assert_int_equal((intptr_t)bad, 0);
  assert_int_equal(conc_loop_destroy(loop), 0);
  assert_null(conc_loop_get());
}

/* ---- I/O readiness
 * ------------------------------------------------------------------ */

typedef struct io {
  conc_loop_t *loop;
  int fds[2];
  int reads, writes;
  char buf[8];
} io_t;

static void io_readable(void *arg) {
  io_t *io = arg;
  ssize_t r = read(io->fds[0], io->buf, sizeof io->buf);
  assert_true(r > 0);
  io->reads++;
  conc_loop_remove_reader(io->loop, io->fds[0]);
  conc_loop_stop(io->loop);
}

static void io_writable(void *arg) {
  io_t *io = arg;
  io->writes++;
  ssize_t w = write(io->fds[1], "x", 1);
  assert_int_equal(w, 1);
  conc_loop_remove_writer(io->loop, io->fds[1]);
}

static void
reader_and_writer_callbacks_follow_readiness(conc_loop_backend_t b) {
  io_t io = {.loop = new_loop(b)};
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, io.fds), 0);
  assert_int_equal(conc_loop_add_reader(io.loop, io.fds[0], io_readable, &io),
                   0);
  assert_int_equal(conc_loop_add_writer(io.loop, io.fds[1], io_writable, &io),
                   0);
  assert_int_equal(conc_loop_run_forever(io.loop), 0);
  assert_int_equal(io.writes, 1);
  assert_int_equal(io.reads, 1);
  assert_false(conc_loop_remove_reader(io.loop, io.fds[0]));
  assert_false(conc_loop_remove_writer(io.loop, io.fds[1]));
  assert_int_equal(conc_loop_add_reader(io.loop, -1, io_readable, &io),
                   CONC_EINVAL);
  assert_int_equal(conc_loop_add_reader(io.loop, io.fds[0], NULL, &io),
                   CONC_EINVAL);
  int closed = dup(io.fds[0]);
  close(closed);
  assert_int_equal(conc_loop_add_reader(io.loop, closed, io_readable, &io),
                   CONC_EBADF);
  close(io.fds[0]);
  close(io.fds[1]);
  assert_int_equal(conc_loop_destroy(io.loop), 0);
}

static void io_readiness_epoll(void **state) {
  (void)state;
  reader_and_writer_callbacks_follow_readiness(CONC_LOOP_BACKEND_EPOLL);
}

static void io_readiness_poll(void **state) {
  (void)state;
  reader_and_writer_callbacks_follow_readiness(CONC_LOOP_BACKEND_POLL);
}

/* The io_uring poller where this build has it (CONC_WITH_IO_URING=ON). */
static bool have_uring(void) {
  conc_loop_t *l;
  int rc = conc_loop_create(
      &(conc_loop_opts_t){.backend = CONC_LOOP_BACKEND_IO_URING}, &l);
  if (rc == CONC_ENOSYS) {
    printf("# io_uring backend not built (CONC_WITH_IO_URING=OFF): skipped\n");
    return false;
  }
  assert_int_equal(rc, 0);
  bool real = strcmp(conc_loop_backend_name(l), "io_uring") == 0;
  if (!real)
    printf("# the kernel refused an io_uring: the loop fell back to %s\n",
           conc_loop_backend_name(l));
  conc_loop_destroy(l);
  return real;
}

static void io_readiness_io_uring(void **state) {
  (void)state;
  if (have_uring())
    reader_and_writer_callbacks_follow_readiness(CONC_LOOP_BACKEND_IO_URING);
}

static void timers_in_deadline_order_io_uring(void **state) {
  (void)state;
  if (have_uring())
    timers_fire_in_deadline_order_ties_in_scheduling_order(
        CONC_LOOP_BACKEND_IO_URING);
}

static void threadsafe_wakes_io_uring(void **state) {
  (void)state;
  if (have_uring())
    threadsafe_call_wakes_a_sleeping_loop(CONC_LOOP_BACKEND_IO_URING);
}

static void regular_file_reader_is_EPERM_under_epoll(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(CONC_LOOP_BACKEND_EPOLL);
  assert_string_equal(conc_loop_backend_name(loop), "epoll");
  int fd = open("/proc/self/exe", O_RDONLY);
  assert_true(fd >= 0);
  assert_int_equal(conc_loop_add_reader(loop, fd, note, NULL), CONC_EPERM);
  close(fd);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

/* ---- F1-F3: futures
 * ------------------------------------------------------------------- */

static void future_done_cb(conc_aio_future_t *f, void *arg) {
  (void)f;
  note(arg);
}

static void future_states_and_outcomes(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  conc_aio_future_t *f, *g;
  assert_int_equal(conc_aio_future_create(loop, &f), 0);
  assert_false(conc_aio_future_done(f));
  void *v = (void *)1;
  assert_int_equal(conc_aio_future_result(f, &v), CONC_EINVALSTATE);
  assert_int_equal(conc_aio_future_exception(f), CONC_EINVALSTATE);
  assert_int_equal(conc_aio_future_set_result(f, (void *)42), 0);
  assert_int_equal(conc_aio_future_set_result(f, (void *)43), CONC_EINVALSTATE);
  assert_int_equal(conc_aio_future_set_error(f, CONC_EINVAL), CONC_EINVALSTATE);
  assert_false(conc_aio_cancel(f, NULL));
  assert_int_equal(conc_aio_future_result(f, &v), 0);
  assert_ptr_equal(v, (void *)42);
  assert_int_equal(conc_aio_future_exception(f), 0);
  conc_aio_future_release(f);

  assert_int_equal(conc_aio_future_create(loop, &g), 0);
  assert_int_equal(conc_aio_future_set_error(g, 5), CONC_EINVAL);
  assert_int_equal(conc_aio_future_set_error(g, CONC_ECANCELED), CONC_EINVAL);
  assert_true(conc_aio_cancel(g, "why"));
  assert_true(conc_aio_future_cancelled(g));
  assert_string_equal(conc_aio_cancel_message(g), "why");
  assert_int_equal(conc_aio_future_result(g, &v), CONC_ECANCELED);
  assert_int_equal(conc_aio_future_set_result(g, NULL), CONC_EINVALSTATE);
  assert_false(conc_aio_cancel(g, NULL));
  conc_aio_future_release(g);

  assert_int_equal(conc_aio_future_create(loop, &g), 0);
  assert_int_equal(conc_aio_future_set_error(g, CONC_EINVAL), 0);
  assert_int_equal(conc_aio_future_result(g, &v), CONC_EINVAL);
  assert_int_equal(conc_aio_future_exception(g), CONC_EINVAL);
  conc_aio_future_release(g);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static void
done_callbacks_are_scheduled_in_order_never_called_inside_set(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  conc_aio_future_t *f;
  g_rec.n = 0;
  assert_int_equal(conc_aio_future_create(loop, &f), 0);
  for (intptr_t i = 0; i < 5; i++)
    assert_int_equal(
        conc_aio_future_add_done_callback(f, future_done_cb, (void *)i), 0);
  assert_int_equal(
      conc_aio_future_add_done_callback(f, future_done_cb, (void *)99), 0);
  assert_int_equal(
      conc_aio_future_remove_done_callback(f, future_done_cb, (void *)99), 1);
  assert_int_equal(conc_aio_future_set_result(f, NULL), 0);
  assert_int_equal(g_rec.n, 0); /* F3: not inside set_result */
  /* added to a done future: scheduled at once, after the others */
  assert_int_equal(
      conc_aio_future_add_done_callback(f, future_done_cb, (void *)5), 0);
  assert_int_equal(g_rec.n, 0);
  conc_loop_call_soon(loop, stop_cb, loop, NULL);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(g_rec.n, 6);
  for (int i = 0; i < 6; i++)
    assert_int_equal(g_rec.order[i], i);
  conc_aio_future_release(f);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

/* ---- A1, F4, F5: tasks
 * ---------------------------------------------------------------- */

static int child_fn(void *arg, void **res) {
  *res = (void *)((intptr_t)arg * 2);
  return 0;
}

static int deep_await(conc_aio_future_t *t, int depth, void **res) {
  /* a plain C function, any depth below the task: nothing is "async" */
  if (depth > 0)
    return deep_await(t, depth - 1, res);
  return conc_aio_await(t, res);
}

static int main_fn(void *arg, void **res) {
  conc_aio_future_t *t;
  int rc = conc_aio_create_task(NULL, child_fn, arg, NULL, &t);
  if (rc)
    return rc;
  assert_false(conc_aio_future_done(t)); /* F4: starts on a later iteration */
  rc = deep_await(t, 20, res);
  conc_aio_future_release(t);
  return rc;
}

static void run_returns_the_main_tasks_result(void **state) {
  (void)state;
  void *r = NULL;
  assert_int_equal(conc_aio_run(main_fn, (void *)21, NULL, &r), 0);
  assert_ptr_equal(r, (void *)42);
  assert_null(conc_loop_get()); /* the loop is gone */
}

static int failing_fn(void *arg, void **res) {
  (void)arg;
  (void)res;
  return CONC_EINVAL;
}

static void run_returns_the_main_tasks_error(void **state) {
  (void)state;
  void *r = (void *)7;
  assert_int_equal(conc_aio_run(failing_fn, NULL, NULL, &r), CONC_EINVAL);
  assert_ptr_equal(r, (void *)7); /* untouched on failure */
}

static int nested_run_fn(void *arg, void **res) {
  (void)arg;
  (void)res;
  int a = conc_aio_run(child_fn, NULL, NULL, NULL);
  int b = conc_loop_run_forever(conc_loop_running());
  int c = conc_loop_run_until_complete(conc_loop_running(),
                                       conc_aio_current_task(), NULL);
  int d = conc_aio_await(conc_aio_current_task(), NULL);
  return a == CONC_ESTATE && b == CONC_ESTATE && c == CONC_ESTATE &&
                 d == CONC_EDEADLK
             ? 0
             : CONC_EFAILED;
}

static void running_a_loop_inside_a_running_loop_is_an_error(void **state) {
  (void)state;
  assert_int_equal(conc_aio_run(nested_run_fn, NULL, NULL, NULL), 0);
}

static void awaiting_outside_a_task_is_an_error(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  conc_aio_future_t *f;
  assert_int_equal(conc_aio_future_create(loop, &f), 0);
  assert_int_equal(conc_aio_await(f, NULL), CONC_ESTATE);
  assert_int_equal(conc_aio_await(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_sleep(0), CONC_ESTATE);
  assert_null(conc_aio_current_task());
  assert_int_equal(conc_aio_create_task(loop, NULL, NULL, NULL, NULL),
                   CONC_EINVAL);
  assert_int_equal(conc_aio_run(NULL, NULL, NULL, NULL), CONC_EINVAL);
  conc_aio_future_release(f);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static int leftover_fn(void *arg, void **res) {
  (void)res;
  int *seen = arg;
  *seen = conc_aio_sleep(3600);
  return *seen;
}

static int spawn_leftover_fn(void *arg, void **res) {
  (void)res;
  int rc = conc_aio_create_task(NULL, leftover_fn, arg, NULL, NULL);
  if (rc)
    return rc;
  return conc_aio_sleep(0);
}

static void run_cancels_the_tasks_left_and_lets_them_finish(void **state) {
  (void)state;
  int seen = 1;
  double t0 = conc_monotonic();
  assert_int_equal(conc_aio_run(spawn_leftover_fn, &seen, NULL, NULL), 0);
  assert_int_equal(seen, CONC_ECANCELED);
  assert_quick(conc_monotonic() - t0);
}

static void run_until_complete_runs_a_task_to_its_end(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  conc_aio_future_t *t;
  assert_int_equal(
      conc_aio_create_task(loop, child_fn, (void *)5,
                           &(conc_aio_task_opts_t){.name = "doubler"}, &t),
      0);
  assert_true(conc_aio_is_task(t));
  assert_string_equal(conc_aio_task_name(t), "doubler");
  assert_int_equal(conc_aio_all_tasks(loop, NULL, 0), 1);
  void *r;
  assert_int_equal(conc_loop_run_until_complete(loop, t, &r), 0);
  assert_ptr_equal(r, (void *)10);
  assert_int_equal(conc_aio_all_tasks(loop, NULL, 0), 0);
  assert_int_equal(conc_aio_future_set_result(t, NULL), CONC_ESTATE);
  conc_aio_future_release(t);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

/* ---- F6: cancellation
 * --------------------------------------------------------------- */

typedef struct cx {
  int await_rc;
  int cancelling;
  bool swallow;
  conc_aio_future_t *waiting;
} cx_t;

static int cancellee(void *arg, void **res) {
  cx_t *c = arg;
  c->await_rc = conc_aio_sleep(3600);
  c->cancelling = conc_aio_task_cancelling(conc_aio_current_task());
  if (c->swallow) {
    conc_aio_task_uncancel(conc_aio_current_task());
    *res = (void *)77;
    return 0;
  }
  return c->await_rc;
}

static int cancel_main(void *arg, void **res) {
  (void)res;
  cx_t *c = arg;
  conc_aio_future_t *t;
  int rc = conc_aio_create_task(NULL, cancellee, c, NULL, &t);
  if (rc)
    return rc;
  conc_aio_sleep(0); /* let it reach its await */
  assert_true(conc_aio_cancel(t, "stop it"));
  assert_int_equal(conc_aio_task_cancelling(t), 1);
  void *v = NULL;
  rc = conc_aio_await(t, &v);
  if (c->swallow) {
    assert_int_equal(rc, 0);
    assert_ptr_equal(v, (void *)77);
    assert_false(conc_aio_future_cancelled(t));
  } else {
    assert_int_equal(rc, CONC_ECANCELED);
    assert_true(conc_aio_future_cancelled(t));
    assert_string_equal(conc_aio_cancel_message(t), "stop it");
  }
  assert_false(conc_aio_cancel(t, NULL)); /* done: false */
  conc_aio_future_release(t);
  return 0;
}

static void cancel_delivers_ECANCELED_at_the_current_await(void **state) {
  (void)state;
  cx_t c = {0};
  assert_int_equal(conc_aio_run(cancel_main, &c, NULL, NULL), 0);
  assert_int_equal(c.await_rc, CONC_ECANCELED);
  assert_int_equal(c.cancelling, 1);
}

static void task_that_swallows_the_cancel_ends_with_its_result(void **state) {
  (void)state;
  cx_t c = {.swallow = true};
  assert_int_equal(conc_aio_run(cancel_main, &c, NULL, NULL), 0);
  assert_int_equal(c.await_rc, CONC_ECANCELED);
}

typedef struct chain {
  int inner_rc;
  bool inner_returned;
  bool inner_done_early;
} chain_t;

static int inner_sleeper(void *arg, void **res) {
  (void)res;
  chain_t *c = arg;
  c->inner_rc = conc_aio_sleep(3600);
  c->inner_returned = true;
  return c->inner_rc;
}

static int outer_awaiter(void *arg, void **res) {
  (void)res;
  conc_aio_future_t *inner;
  conc_aio_create_task(NULL, inner_sleeper, arg, NULL, &inner);
  int rc = conc_aio_await(inner, NULL);
  /* woken only once inner's function has unwound and returned */
  ((chain_t *)arg)->inner_done_early = !((chain_t *)arg)->inner_returned;
  conc_aio_future_release(inner);
  return rc;
}

static int chain_main(void *arg, void **res) {
  (void)res;
  conc_aio_future_t *outer;
  conc_aio_create_task(NULL, outer_awaiter, arg, NULL, &outer);
  conc_aio_sleep(0.01); /* outer waits on inner, inner sleeps */
  assert_true(conc_aio_cancel(outer, NULL));
  int rc = conc_aio_await(outer, NULL);
  conc_aio_future_release(outer);
  /* outer ended only after inner had unwound from its own await */
  assert_true(((chain_t *)arg)->inner_returned);
  return rc == CONC_ECANCELED ? 0 : CONC_EFAILED;
}

static void cancel_reaches_the_task_a_task_awaits(void **state) {
  (void)state;
  chain_t c = {.inner_rc = 1};
  assert_int_equal(conc_aio_run(chain_main, &c, NULL, NULL), 0);
  assert_int_equal(c.inner_rc, CONC_ECANCELED); /* inner saw the cancel */
  assert_false(c.inner_done_early); /* outer woke when inner had ended */
}

static int never_runs(void *arg, void **res) {
  (void)res;
  *(int *)arg = 1;
  return 0;
}

static int cancel_before_start_main(void *arg, void **res) {
  (void)res;
  conc_aio_future_t *t;
  assert_int_equal(conc_aio_create_task(NULL, never_runs, arg, NULL, &t), 0);
  assert_true(conc_aio_cancel(t, NULL));
  assert_true(conc_aio_cancel(t, NULL)); /* still pending: true again */
  assert_int_equal(conc_aio_task_cancelling(t), 2);
  int rc = conc_aio_await(t, NULL);
  conc_aio_future_release(t);
  return rc == CONC_ECANCELED ? 0 : CONC_EFAILED;
}

static void task_cancelled_before_it_starts_never_runs(void **state) {
  (void)state;
  int ran = 0;
  assert_int_equal(conc_aio_run(cancel_before_start_main, &ran, NULL, NULL), 0);
  assert_int_equal(ran, 0);
}

static int self_cancel(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_cancel(conc_aio_current_task(), NULL);
  /* the request waits for the next suspension: this sleep(0) */
  return conc_aio_sleep(0) == CONC_ECANCELED ? 0 : CONC_EFAILED;
}

static int self_cancel_returns(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_cancel(conc_aio_current_task(), NULL);
  return 0; /* returns with the cancel still pending: ends cancelled */
}

static int self_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_future_t *a, *b;
  assert_int_equal(conc_aio_create_task(NULL, self_cancel, NULL, NULL, &a), 0);
  assert_int_equal(
      conc_aio_create_task(NULL, self_cancel_returns, NULL, NULL, &b), 0);
  int ra = conc_aio_await(a, NULL);
  int rb = conc_aio_await(b, NULL);
  bool bc = conc_aio_future_cancelled(b);
  conc_aio_future_release(a);
  conc_aio_future_release(b);
  return ra == 0 && rb == CONC_ECANCELED && bc ? 0 : CONC_EFAILED;
}

static void
cancel_of_the_running_task_lands_at_its_next_suspension(void **state) {
  (void)state;
  assert_int_equal(conc_aio_run(self_cancel_main, NULL, NULL, NULL), 0);
}

static int uncancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_future_t *me = conc_aio_current_task();
  conc_aio_cancel(me, NULL);
  assert_int_equal(conc_aio_task_cancelling(me), 1);
  assert_int_equal(conc_aio_task_uncancel(me), 0);
  /* uncancelled to zero: the pending request is withdrawn */
  return conc_aio_sleep(0);
}

static void uncancel_to_zero_withdraws_the_request(void **state) {
  (void)state;
  assert_int_equal(conc_aio_run(uncancel_main, NULL, NULL, NULL), 0);
}

/* ---- F11, H2: sleep
 * ------------------------------------------------------------------ */

enum { ORDER_TASKS = 4, ORDER_ROUNDS = 3 };
static int order_log[ORDER_TASKS * ORDER_ROUNDS];
static int order_n;

static int round_robin(void *arg, void **res) {
  (void)res;
  for (int r = 0; r < ORDER_ROUNDS; r++) {
    order_log[order_n++] = (int)(intptr_t)arg;
    if (conc_aio_sleep(0) != 0)
      return CONC_EFAILED;
  }
  return 0;
}

static int round_robin_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_future_t *t[ORDER_TASKS];
  for (intptr_t i = 0; i < ORDER_TASKS; i++)
    assert_int_equal(
        conc_aio_create_task(NULL, round_robin, (void *)i, NULL, &t[i]), 0);
  for (int i = 0; i < ORDER_TASKS; i++) {
    assert_int_equal(conc_aio_await(t[i], NULL), 0);
    conc_aio_future_release(t[i]);
  }
  return 0;
}

static void sleep0_yields_once_to_every_ready_task(void **state) {
  (void)state;
  order_n = 0;
  assert_int_equal(conc_aio_run(round_robin_main, NULL, NULL, NULL), 0);
  assert_int_equal(order_n, ORDER_TASKS * ORDER_ROUNDS);
  for (int i = 0; i < order_n; i++)
    assert_int_equal(order_log[i], i % ORDER_TASKS);
}

/* TSan gives every coroutine (fiber) one of its 8128 thread slots. */
#if defined(CONC_SANITIZER_thread) || defined(__SANITIZE_THREAD__)
enum { SLEEPERS = 4000 };
#else
enum { SLEEPERS = 10000 };
#endif
static int wake_order[SLEEPERS];
static int wake_n;

static int sleeper(void *arg, void **res) {
  (void)res;
  int i = (int)(intptr_t)arg;
  /* Tasks start in creation order, so each one's deadline (its start plus
   * its delay) is later than the one before: they must wake in that order,
   * all of them, out of one heap of 10,000. */
  int rc = conc_aio_sleep(0.02 + i * 1e-6);
  wake_order[wake_n++] = i;
  return rc;
}

static int sleepers_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  static conc_aio_future_t *t[SLEEPERS];
  for (intptr_t i = 0; i < SLEEPERS; i++)
    assert_int_equal(conc_aio_create_task(
                         NULL, sleeper, (void *)i,
                         &(conc_aio_task_opts_t){.stack_size = 16384}, &t[i]),
                     0);
  int bad = 0;
  for (int i = 0; i < SLEEPERS; i++) {
    bad += conc_aio_await(t[i], NULL) != 0;
    conc_aio_future_release(t[i]);
  }
  return bad ? CONC_EFAILED : 0;
}

static void many_sleeping_tasks_all_wake_in_deadline_order(void **state) {
  (void)state;
  wake_n = 0;
  double t0 = conc_monotonic();
  assert_int_equal(conc_aio_run(sleepers_main, NULL, NULL, NULL), 0);
  assert_true(conc_monotonic() - t0 >= 0.02);
  assert_int_equal(wake_n, SLEEPERS);
  for (int i = 1; i < SLEEPERS; i++)
    assert_true(wake_order[i - 1] < wake_order[i]);
}

enum { SHUFFLED = 10000 };
static int fired[SHUFFLED];
static int nfired;

static void fire_rank(void *arg) { fired[nfired++] = (int)(intptr_t)arg; }

static void timers_armed_out_of_order_fire_in_deadline_order(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  nfired = 0;
  double base = conc_loop_time(loop) + 0.02;
  for (int i = 0; i < SHUFFLED; i++) {
    intptr_t rank = (intptr_t)(((long)i * 7919) % SHUFFLED);
    assert_int_equal(conc_loop_call_at(loop, base + rank * 1e-6, fire_rank,
                                       (void *)rank, NULL),
                     0);
  }
  conc_loop_call_at(loop, base + 0.02, stop_cb, loop, NULL);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(nfired, SHUFFLED);
  for (int i = 0; i < SHUFFLED; i++)
    assert_int_equal(fired[i], i);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static int timed_sleep(void *arg, void **res) {
  (void)res;
  double *el = arg;
  double t0 = conc_monotonic();
  int rc = conc_aio_sleep(0.05);
  *el = conc_monotonic() - t0;
  if (conc_aio_sleep(NAN) != CONC_EINVAL)
    return CONC_EFAILED;
  return rc;
}

static void sleep_suspends_for_at_least_its_delay(void **state) {
  (void)state;
  double el = 0;
  assert_int_equal(conc_aio_run(timed_sleep, &el, NULL, NULL), 0);
  assert_elapsed(el, 0.05);
}

/* ---- H4: debug mode and reports
 * ----------------------------------------------------- */

static char reported[512];
static int nreports;

static void capture(conc_loop_t *loop, const char *msg, void *arg) {
  (void)loop;
  (void)arg;
  snprintf(reported, sizeof reported, "%s", msg);
  nreports++;
}

static void slow(void *arg) {
  (void)arg;
  conc_sleep(0.03); /* a blocking call: holds the whole loop */
}

static void debug_mode_reports_a_callback_that_holds_the_loop(void **state) {
  (void)state;
  conc_loop_t *loop;
  assert_int_equal(
      conc_loop_create(
          &(conc_loop_opts_t){.debug = true, .slow_callback_duration = 0.01},
          &loop),
      0);
  conc_loop_set_exception_handler(loop, capture, NULL);
  nreports = 0;
  conc_loop_call_soon(loop, slow, NULL, NULL);
  conc_loop_call_soon(loop, stop_cb, loop, NULL);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(nreports, 1);
  assert_non_null(strstr(reported, "took"));
  /* off: no report */
  conc_loop_set_debug(loop, false);
  conc_loop_call_soon(loop, slow, NULL, NULL);
  conc_loop_call_soon(loop, stop_cb, loop, NULL);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(nreports, 1);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static void
error_nobody_retrieved_is_reported_when_the_task_goes(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  conc_loop_set_exception_handler(loop, capture, NULL);
  nreports = 0;
  conc_aio_future_t *t;
  assert_int_equal(
      conc_aio_create_task(loop, failing_fn, NULL,
                           &(conc_aio_task_opts_t){.name = "doomed"}, &t),
      0);
  conc_loop_call_later(loop, 0.01, stop_cb, loop, NULL);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_true(conc_aio_future_done(t));
  assert_int_equal(nreports, 0);
  conc_aio_future_release(t);
  assert_int_equal(nreports, 1);
  assert_non_null(strstr(reported, "never retrieved"));
  assert_non_null(strstr(reported, "doomed"));
  /* retrieved: no report */
  assert_int_equal(conc_aio_create_task(loop, failing_fn, NULL, NULL, &t), 0);
  assert_int_equal(conc_loop_run_until_complete(loop, t, NULL), CONC_EINVAL);
  conc_aio_future_release(t);
  assert_int_equal(nreports, 1);
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static int pending_forever(void *arg, void **res) {
  (void)arg;
  (void)res;
  return conc_aio_sleep(3600);
}

static void debug_mode_reports_a_task_destroyed_while_pending(void **state) {
  (void)state;
  conc_loop_t *loop;
  assert_int_equal(conc_loop_create(&(conc_loop_opts_t){.debug = true}, &loop),
                   0);
  conc_loop_set_exception_handler(loop, capture, NULL);
  nreports = 0;
  assert_int_equal(
      conc_aio_create_task(loop, pending_forever, NULL,
                           &(conc_aio_task_opts_t){.name = "sleepy"}, NULL),
      0);
  conc_loop_call_later(loop, 0.01, stop_cb, loop, NULL);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  assert_int_equal(conc_loop_destroy(loop), 0); /* unwinds the task */
  assert_int_equal(nreports, 1);
  assert_non_null(strstr(reported, "pending"));
  assert_non_null(strstr(reported, "sleepy"));
}

/* ---- a task that overflows its stack ------------------------------------ */

void conc__coro_segv_install(void); /* coro-int.h: cmocka removes ours */

static unsigned long dive(unsigned depth, volatile char *prev) {
  volatile char pad[256];
  pad[0] = (char)depth;
  pad[255] = prev ? prev[0] : 0;
  if (depth == 0)
    return pad[0];
  return dive(depth - 1, pad) + pad[255];
}

static int diver(void *arg, void **res) {
  (void)arg;
  *res = (void *)dive(1u << 30, NULL);
  return 0;
}

static int dive_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_future_t *t;
  conc_aio_create_task(
      NULL, diver, NULL,
      &(conc_aio_task_opts_t){.name = "deep-task", .stack_size = 64 * 1024},
      &t);
  return conc_aio_await(t, NULL);
}

static void a_task_that_overflows_its_stack_is_reported_by_name(void **state) {
  (void)state;
#if defined(CONC_SANITIZER_address) || defined(__SANITIZE_ADDRESS__)
  printf("# ASan reports the overflow itself: skipped\n");
  return;
#endif
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    signal(SIGSEGV, SIG_DFL);
    conc__coro_segv_install();
    conc_aio_run(dive_main, NULL, NULL, NULL);
    _exit(4); /* not reached: the guard page stops it */
  }
  close(fds[1]);
  char err[4096];
  size_t got = 0;
  ssize_t r;
  while ((r = read(fds[0], err + got, sizeof err - 1 - got)) > 0)
    got += (size_t)r;
  err[got] = 0;
  close(fds[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGABRT);
  assert_non_null(strstr(err, "\"deep-task\""));
}

/* ---- signals ------------------------------------------------------------------- */

static pthread_t loop_thread;
static int sig_seen;
static bool sig_on_loop_thread;

static void on_usr1(void *arg) {
  sig_seen++;
  sig_on_loop_thread = pthread_equal(pthread_self(), loop_thread);
  conc_loop_stop(arg);
}

static void *send_usr1(void *arg) {
  (void)arg;
  conc_sleep(0.02);
  kill(getpid(), SIGUSR1); /* any thread may take it */
  return NULL;
}

static void signal_handler_runs_on_the_loops_thread(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  loop_thread = pthread_self();
  sig_seen = 0;
  assert_int_equal(conc_loop_add_signal_handler(loop, SIGUSR1, on_usr1, loop),
                   0);
  pthread_t th = conc_test_spawn(send_usr1, NULL);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  conc_test_join(th);
  assert_int_equal(sig_seen, 1);
  assert_true(sig_on_loop_thread);
  assert_int_equal(conc_loop_add_signal_handler(loop, SIGKILL, on_usr1, loop),
                   CONC_EINVAL);
  assert_int_equal(conc_loop_add_signal_handler(loop, 0, on_usr1, loop),
                   CONC_EINVAL);
  assert_int_equal(conc_loop_add_signal_handler(loop, SIGUSR1, NULL, loop),
                   CONC_EINVAL);
  assert_true(conc_loop_remove_signal_handler(loop, SIGUSR1));
  assert_false(conc_loop_remove_signal_handler(loop, SIGUSR1));
  struct sigaction sa;
  sigaction(SIGUSR1, NULL, &sa);
  assert_true(sa.sa_handler == SIG_DFL); /* the old disposition is back */
  assert_int_equal(conc_loop_destroy(loop), 0);
}

static void *other_loop_signal(void *arg) {
  (void)arg;
  conc_loop_t *l;
  if (conc_loop_create(NULL, &l) != 0)
    return (void *)1;
  intptr_t rc = conc_loop_add_signal_handler(l, SIGUSR2, note, NULL);
  conc_loop_destroy(l);
  return (void *)rc;
}

static void one_loop_owns_a_signal(void **state) {
  (void)state;
  conc_loop_t *loop = new_loop(0);
  assert_int_equal(conc_loop_add_signal_handler(loop, SIGUSR2, note, NULL), 0);
  pthread_t th;
  void *rc;
  assert_int_equal(pthread_create(&th, NULL, other_loop_signal, NULL), 0);
  pthread_join(th, &rc);
  assert_int_equal((intptr_t)rc, CONC_EBUSY);
  assert_int_equal(conc_loop_destroy(loop), 0); /* removes it */
  assert_int_equal(pthread_create(&th, NULL, other_loop_signal, NULL), 0);
  pthread_join(th, &rc);
  assert_int_equal((intptr_t)rc, 0);
}

static void *send_sigint(void *arg) {
  (void)arg;
  conc_sleep(0.02);
  kill(getpid(), SIGINT);
  return NULL;
}

static void cancel_main_task(void *task) { conc_aio_cancel(task, "SIGINT"); }

static int ctrl_c_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_loop_add_signal_handler(conc_loop_running(), SIGINT, cancel_main_task,
                               conc_aio_current_task());
  pthread_t th = conc_test_spawn(send_sigint, NULL);
  int rc = conc_aio_sleep(3600); /* a program with work in progress */
  conc_test_join(th);
  return rc; /* CONC_ECANCELED: the task ends cancelled */
}

static void
sigint_handler_cancels_the_main_task_for_a_clean_stop(void **state) {
  (void)state;
  /* What was there before, not SIG_DFL: a shell starts a background job
   * with SIGINT ignored, and the loop gives back what it found. */
  struct sigaction before, sa;
  sigaction(SIGINT, NULL, &before);
  double t0 = conc_monotonic();
  assert_int_equal(conc_aio_run(ctrl_c_main, NULL, NULL, NULL), CONC_ECANCELED);
  assert_quick(conc_monotonic() - t0);
  sigaction(SIGINT, NULL, &sa);
  assert_true(sa.sa_handler ==
              before.sa_handler); /* the loop's close removed it */
}

CONC_TEST_MAIN(
    cmocka_unit_test(call_soon_runs_callbacks_in_fifo_order),
    cmocka_unit_test(timers_in_deadline_order_epoll),
    cmocka_unit_test(timers_in_deadline_order_poll),
    cmocka_unit_test(cancelled_handle_never_runs),
    cmocka_unit_test(many_cancelled_timers_are_compacted_and_others_still_fire),
    cmocka_unit_test(threadsafe_wakes_epoll),
    cmocka_unit_test(threadsafe_wakes_poll),
    cmocka_unit_test(threadsafe_calls_from_each_thread_run_in_order),
    cmocka_unit_test(stop_finishes_the_iteration_and_the_loop_runs_again),
    cmocka_unit_test(
        close_of_a_running_loop_fails_and_closed_loop_rejects_callbacks),
    cmocka_unit_test(each_thread_runs_its_own_loop),
    cmocka_unit_test(io_readiness_epoll), cmocka_unit_test(io_readiness_poll),
    cmocka_unit_test(io_readiness_io_uring),
    cmocka_unit_test(timers_in_deadline_order_io_uring),
    cmocka_unit_test(threadsafe_wakes_io_uring),
    cmocka_unit_test(regular_file_reader_is_EPERM_under_epoll),
    cmocka_unit_test(future_states_and_outcomes),
    cmocka_unit_test(
        done_callbacks_are_scheduled_in_order_never_called_inside_set),
    cmocka_unit_test(run_returns_the_main_tasks_result),
    cmocka_unit_test(run_returns_the_main_tasks_error),
    cmocka_unit_test(running_a_loop_inside_a_running_loop_is_an_error),
    cmocka_unit_test(awaiting_outside_a_task_is_an_error),
    cmocka_unit_test(run_cancels_the_tasks_left_and_lets_them_finish),
    cmocka_unit_test(run_until_complete_runs_a_task_to_its_end),
    cmocka_unit_test(cancel_delivers_ECANCELED_at_the_current_await),
    cmocka_unit_test(task_that_swallows_the_cancel_ends_with_its_result),
    cmocka_unit_test(task_cancelled_before_it_starts_never_runs),
    cmocka_unit_test(cancel_reaches_the_task_a_task_awaits),
    cmocka_unit_test(cancel_of_the_running_task_lands_at_its_next_suspension),
    cmocka_unit_test(uncancel_to_zero_withdraws_the_request),
    cmocka_unit_test(sleep0_yields_once_to_every_ready_task),
    cmocka_unit_test(many_sleeping_tasks_all_wake_in_deadline_order),
    cmocka_unit_test(sleep_suspends_for_at_least_its_delay),
    cmocka_unit_test(timers_armed_out_of_order_fire_in_deadline_order),
    cmocka_unit_test(debug_mode_reports_a_callback_that_holds_the_loop),
    cmocka_unit_test(error_nobody_retrieved_is_reported_when_the_task_goes),
    cmocka_unit_test(debug_mode_reports_a_task_destroyed_while_pending),
    cmocka_unit_test(a_task_that_overflows_its_stack_is_reported_by_name),
    cmocka_unit_test(signal_handler_runs_on_the_loops_thread),
    cmocka_unit_test(one_loop_owns_a_signal),
    cmocka_unit_test(sigint_handler_cancels_the_main_task_for_a_clean_stop))
