/* Tests for gevent's hub over the event loop (spec H1, H2; conc/hub.h). */
#include "harness.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "conc/error.h"
#include "conc/hub.h"
#include "conc/time.h"

#define I(x) ((void *)(intptr_t)(x))
#define V(p) ((int)(intptr_t)(p))

/* Every test leaves the thread as it found it: no loop. */
static void hub_end(void) {
  assert_int_equal(conc_hub_destroy(), 0);
  assert_null(conc_loop_get());
}

/* A log of short strings, in the order they happened. */
typedef struct log {
  const char *line[32];
  int n;
} log_t;

static void say(log_t *l, const char *s) {
  if (l->n < 32)
    l->line[l->n++] = s;
}

static void assert_log(const log_t *l, const char *const *want, int n) {
  assert_int_equal(l->n, n);
  for (int i = 0; i < n; i++)
    assert_string_equal(l->line[i], want[i]);
}

static int add_one(void *arg, void **res) {
  *res = I(V(arg) + 1);
  return 0;
}

static int mark_ran(void *arg, void **res) {
  *(bool *)arg = true;
  (void)res;
  return 0;
}

static int sleep_long(void *arg, void **res) {
  int *rc = arg;
  int r = conc_hub_sleep(10);
  if (rc)
    *rc = r;
  (void)res;
  return r;
}

/* ---- H1: spawn, join, joinall, from a plain main ------------------------ */

static void
test_main_spawns_and_joins_without_writing_an_event_loop(void **state) {
  (void)state;
  assert_null(conc_loop_get());
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(add_one, I(41), NULL, &g), 0);
  assert_non_null(conc_loop_get());     /* the hub made the thread's loop */
  assert_false(conc_greenlet_ready(g)); /* spawn schedules, runs nothing */
  assert_int_equal(conc_greenlet_join(g, CONC_FOREVER), 0);
  assert_null(conc_loop_running()); /* the loop ran only inside join */
  assert_true(conc_greenlet_ready(g));
  assert_true(conc_greenlet_successful(g));
  void *v = NULL;
  assert_int_equal(conc_greenlet_value(g, &v), 0);
  assert_int_equal(V(v), 42);
  assert_int_equal(strncmp(conc_greenlet_name(g), "Greenlet-", 9), 0);
  conc_greenlet_release(g);
  hub_end();
}

static void
test_hub_uses_a_loop_the_program_made_and_leaves_it_alone(void **state) {
  (void)state;
  conc_loop_t *mine;
  assert_int_equal(conc_loop_create(NULL, &mine), 0);
  assert_ptr_equal(conc_hub_loop(), mine);
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(add_one, I(1), NULL, &g), 0);
  assert_ptr_equal(conc_aio_future_loop(conc_greenlet_task(g)), mine);
  void *v = NULL;
  assert_int_equal(conc_greenlet_get(g, CONC_FOREVER, &v), 0);
  assert_int_equal(V(v), 2);
  conc_greenlet_release(g);
  assert_int_equal(conc_hub_destroy(), 0);
  assert_ptr_equal(conc_loop_get(), mine); /* not the hub's to destroy */
  assert_false(conc_loop_is_closed(mine));
  assert_int_equal(conc_loop_destroy(mine), 0);
  assert_null(conc_loop_get());
}

typedef struct yielder {
  log_t *log;
  const char *name;
  int rounds;
} yielder_t;

static int yield_rounds(void *arg, void **res) {
  yielder_t *y = arg;
  for (int i = 0; i < y->rounds; i++) {
    say(y->log, y->name);
    int rc = conc_hub_sleep(0);
    if (rc)
      return rc;
  }
  *res = (void *)y->name;
  return 0;
}

static void
test_joinall_waits_for_all_and_lists_them_in_completion_order(void **state) {
  (void)state;
  log_t log = {0};
  yielder_t ys[3] = {{&log, "a", 3}, {&log, "b", 1}, {&log, "c", 2}};
  conc_greenlet_t *gs[3], *done[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_hub_spawn(yield_rounds, &ys[i], NULL, &gs[i]), 0);
  size_t ndone = 99;
  assert_int_equal(conc_hub_joinall(gs, 3, CONC_FOREVER, done, &ndone), 0);
  assert_int_equal(ndone, 3);
  /* b needs one turn, c two, a three: they finish b, c, a */
  assert_ptr_equal(done[0], gs[1]);
  assert_ptr_equal(done[1], gs[2]);
  assert_ptr_equal(done[2], gs[0]);
  for (int i = 0; i < 3; i++)
    conc_greenlet_release(gs[i]);
  hub_end();
}

static void test_joinall_timeout_returns_the_finished_ones(void **state) {
  (void)state;
  int slow_rc = 1;
  conc_greenlet_t *gs[3], *done[3] = {0};
  assert_int_equal(conc_hub_spawn(sleep_long, &slow_rc, NULL, &gs[0]), 0);
  assert_int_equal(conc_hub_spawn(add_one, I(1), NULL, &gs[1]), 0);
  assert_int_equal(conc_hub_spawn(add_one, I(2), NULL, &gs[2]), 0);
  size_t ndone = 0;
  double t0 = conc_monotonic();
  assert_int_equal(conc_hub_joinall(gs, 3, 0.1, done, &ndone), 0);
  assert_elapsed(conc_monotonic() - t0, 0.1);
  assert_int_equal(ndone, 2);
  assert_ptr_equal(done[0], gs[1]);
  assert_ptr_equal(done[1], gs[2]);
  assert_null(done[2]);
  assert_false(conc_greenlet_ready(gs[0]));
  assert_int_equal(conc_greenlet_join(gs[0], 0.05), CONC_ETIMEDOUT);
  assert_int_equal(conc_greenlet_kill(gs[0], true, CONC_FOREVER), 0);
  assert_int_equal(slow_rc, CONC_ECANCELED);
  for (int i = 0; i < 3; i++)
    conc_greenlet_release(gs[i]);
  hub_end();
}

static void test_hub_wait_runs_until_every_greenlet_finished(void **state) {
  (void)state;
  log_t log = {0};
  yielder_t ys[2] = {{&log, "x", 2}, {&log, "y", 3}};
  /* fire and forget: the hub frees them */
  assert_int_equal(conc_hub_spawn(yield_rounds, &ys[0], NULL, NULL), 0);
  assert_int_equal(conc_hub_spawn(yield_rounds, &ys[1], NULL, NULL), 0);
  assert_int_equal(conc_hub_wait(CONC_FOREVER), 0);
  static const char *const want[] = {"x", "y", "x", "y", "y"};
  assert_log(&log, want, 5);
  int rc = 1;
  assert_int_equal(conc_hub_spawn(sleep_long, &rc, NULL, NULL), 0);
  assert_int_equal(conc_hub_wait(0.05), CONC_ETIMEDOUT);
  hub_end(); /* kills it */
  assert_int_equal(rc, CONC_ECANCELED);
}

static int note_time(void *arg, void **res) {
  *(double *)arg = conc_monotonic();
  (void)res;
  return 0;
}

static void
test_spawn_later_starts_after_the_delay_or_never_if_killed(void **state) {
  (void)state;
  double started = 0, t0 = conc_monotonic();
  conc_greenlet_t *g, *never;
  assert_int_equal(conc_hub_spawn_later(0.05, note_time, &started, NULL, &g),
                   0);
  bool ran = false;
  assert_int_equal(conc_hub_spawn_later(10, mark_ran, &ran, NULL, &never), 0);
  assert_int_equal(conc_greenlet_join(g, CONC_FOREVER), 0);
  assert_elapsed(started - t0, 0.05);
  assert_int_equal(conc_greenlet_kill(never, true, CONC_FOREVER), 0);
  assert_false(ran);
  assert_int_equal(conc_greenlet_value(never, NULL), CONC_ECANCELED);
  assert_int_equal(conc_hub_spawn_later(NAN, mark_ran, &ran, NULL, NULL),
                   CONC_EINVAL);
  conc_greenlet_release(g);
  conc_greenlet_release(never);
  hub_end();
}

static int aio_forever(void *arg, void **res) {
  (void)res;
  int rc = conc_aio_sleep(10);
  *(int *)arg = rc;
  return rc;
}

static void
test_destroy_ends_what_is_left_and_handles_outlive_the_loop(void **state) {
  (void)state;
  int g_rc = 1, t_rc = 1;
  conc_greenlet_t *g, *ok;
  assert_int_equal(conc_hub_spawn(sleep_long, &g_rc, NULL, &g), 0);
  assert_int_equal(conc_hub_spawn(add_one, I(1), NULL, &ok), 0);
  assert_int_equal(
      conc_aio_create_task(conc_hub_loop(), aio_forever, &t_rc, NULL, NULL), 0);
  conc_hub_timeout_t to = {0};
  assert_int_equal(conc_hub_timeout_start(&to, 10), 0);
  assert_int_equal(conc_hub_sleep(0), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_hub_destroy(), 0);
  assert_quick(conc_monotonic() - t0);
  assert_null(conc_loop_get());
  assert_int_equal(g_rc, CONC_ECANCELED);
  assert_int_equal(t_rc, CONC_ECANCELED);
  /* the handles still answer, with no loop behind them */
  assert_true(conc_greenlet_ready(g));
  assert_true(conc_greenlet_successful(g));
  assert_int_equal(conc_greenlet_value(g, NULL), CONC_ECANCELED);
  void *v = NULL;
  assert_int_equal(conc_greenlet_get(ok, 1, &v), 0);
  assert_int_equal(V(v), 2);
  assert_int_equal(strncmp(conc_greenlet_name(ok), "Greenlet-", 9), 0);
  assert_null(conc_greenlet_task(ok));
  assert_int_equal(conc_greenlet_kill(g, true, 1), 0);
  conc_greenlet_t *both[2] = {g, ok}, *done[2];
  size_t nd = 0;
  assert_int_equal(conc_hub_joinall(both, 2, 1, done, &nd), 0);
  assert_int_equal(nd, 2);
  assert_null(conc_loop_get()); /* nothing above made a new loop */
  assert_int_equal(conc_hub_timeout_cancel(&to), 0);
  conc_greenlet_release(g);
  conc_greenlet_release(ok);
}

/* ---- H2: sleep(0) ------------------------------------------------------ */

typedef struct foobar {
  log_t log;
} foobar_t;

static int foo(void *arg, void **res) {
  foobar_t *fb = arg;
  (void)res;
  say(&fb->log, "Running in foo");
  assert_int_equal(conc_hub_sleep(0), 0);
  say(&fb->log, "Explicit context switch to foo again");
  return 0;
}

static int bar(void *arg, void **res) {
  foobar_t *fb = arg;
  (void)res;
  say(&fb->log, "Explicit context to bar");
  assert_int_equal(conc_hub_sleep(0), 0);
  say(&fb->log, "Implicit context switch back to bar");
  return 0;
}

static void test_sleep0_foo_bar_prints_in_gevent_order(void **state) {
  (void)state;
  foobar_t fb = {0};
  conc_greenlet_t *gs[2];
  assert_int_equal(conc_hub_spawn(foo, &fb, NULL, &gs[0]), 0);
  assert_int_equal(conc_hub_spawn(bar, &fb, NULL, &gs[1]), 0);
  assert_int_equal(conc_hub_joinall(gs, 2, CONC_FOREVER, NULL, NULL), 0);
  static const char *const want[] = {"Running in foo",
                                     "Explicit context to bar",
                                     "Explicit context switch to foo again",
                                     "Implicit context switch back to bar"};
  assert_log(&fb.log, want, 4);
  conc_greenlet_release(gs[0]);
  conc_greenlet_release(gs[1]);
  hub_end();
}

static void
test_sleep0_yields_to_every_ready_greenlet_exactly_once(void **state) {
  (void)state;
  log_t log = {0};
  yielder_t ys[3] = {{&log, "0", 3}, {&log, "1", 3}, {&log, "2", 3}};
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_hub_spawn(yield_rounds, &ys[i], NULL, NULL), 0);
  assert_int_equal(conc_hub_wait(CONC_FOREVER), 0);
  static const char *const want[] = {"0", "1", "2", "0", "1",
                                     "2", "0", "1", "2"};
  assert_log(&log, want, 9);
  hub_end();
}

static void test_sleep_from_main_runs_the_greenlets_meanwhile(void **state) {
  (void)state;
  log_t log = {0};
  yielder_t y = {&log, "g", 1};
  assert_int_equal(conc_hub_spawn(yield_rounds, &y, NULL, NULL), 0);
  assert_int_equal(log.n, 0);
  assert_int_equal(conc_hub_sleep(0), 0); /* the spawned one runs first */
  assert_int_equal(log.n, 1);
  double t0 = conc_monotonic();
  assert_int_equal(conc_hub_sleep(0.05), 0);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  hub_end();
}

typedef struct thread_hub {
  foobar_t fb;
  int rc;
  bool had_loop, loop_after;
} thread_hub_t;

static void *foo_bar_in_a_thread(void *arg) {
  thread_hub_t *t = arg;
  t->had_loop = conc_loop_get() != NULL;
  conc_greenlet_t *gs[2];
  t->rc = conc_hub_spawn(foo, &t->fb, NULL, &gs[0]);
  if (t->rc == 0)
    t->rc = conc_hub_spawn(bar, &t->fb, NULL, &gs[1]);
  if (t->rc == 0)
    t->rc = conc_hub_joinall(gs, 2, CONC_FOREVER, NULL, NULL);
  conc_greenlet_release(gs[0]);
  conc_greenlet_release(gs[1]);
  if (t->rc == 0)
    t->rc = conc_hub_destroy();
  t->loop_after = conc_loop_get() != NULL;
  return NULL;
}

static void test_each_thread_runs_its_own_hub(void **state) {
  (void)state;
  thread_hub_t ts[2] = {0};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    th[i] = conc_test_spawn(foo_bar_in_a_thread, &ts[i]);
  for (int i = 0; i < 2; i++)
    conc_test_join(th[i]);
  static const char *const want[] = {"Running in foo",
                                     "Explicit context to bar",
                                     "Explicit context switch to foo again",
                                     "Implicit context switch back to bar"};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(ts[i].rc, 0);
    assert_false(ts[i].had_loop);
    assert_false(ts[i].loop_after);
    assert_log(&ts[i].fb.log, want, 4);
  }
  assert_null(conc_loop_get()); /* main's thread got none */
}

/* ---- kill -------------------------------------------------------------- */

static void test_kill_makes_the_pending_call_return_ecanceled(void **state) {
  (void)state;
  int rc = 1;
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(sleep_long, &rc, NULL, &g), 0);
  assert_int_equal(conc_hub_sleep(0), 0); /* g starts and sleeps */
  assert_int_equal(rc, 1);
  double t0 = conc_monotonic();
  assert_int_equal(conc_greenlet_kill(g, true, CONC_FOREVER), 0);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(rc, CONC_ECANCELED);
  assert_true(conc_greenlet_ready(g));
  assert_true(conc_greenlet_successful(g)); /* GreenletExit is success */
  assert_int_equal(conc_greenlet_value(g, NULL), CONC_ECANCELED);
  assert_int_equal(conc_greenlet_kill(g, true, CONC_FOREVER), 0); /* dead */
  conc_greenlet_release(g);
  hub_end();
}

static void test_kill_before_start_means_it_never_runs(void **state) {
  (void)state;
  bool ran = false;
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(mark_ran, &ran, NULL, &g), 0);
  assert_int_equal(conc_greenlet_kill(g, true, CONC_FOREVER), 0);
  assert_false(ran);
  assert_true(conc_greenlet_ready(g));
  assert_int_equal(conc_greenlet_value(g, NULL), CONC_ECANCELED);
  conc_greenlet_release(g);
  hub_end();
}

static int cleans_up(void *arg, void **res) {
  (void)arg;
  int rc = conc_hub_sleep(10);
  if (rc != CONC_ECANCELED)
    return CONC_EINVAL;
  *res = I(7); /* caught GreenletExit, returned normally */
  return 0;
}

static void
test_killed_greenlet_may_clean_up_and_return_a_result(void **state) {
  (void)state;
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(cleans_up, NULL, NULL, &g), 0);
  assert_int_equal(conc_hub_sleep(0), 0);
  assert_int_equal(conc_greenlet_kill(g, false, 0), 0);
  void *v = NULL;
  assert_int_equal(conc_greenlet_get(g, CONC_FOREVER, &v), 0);
  assert_int_equal(V(v), 7);
  conc_greenlet_release(g);
  hub_end();
}

static int declines_for_a_while(void *arg, void **res) {
  (void)arg;
  (void)res;
  if (conc_hub_sleep(10) != CONC_ECANCELED)
    return CONC_EINVAL;
  return conc_hub_sleep(0.2); /* ignores the kill, finishes later */
}

static void test_kill_with_block_and_timeout_reports_a_greenlet_still_running(
    void **state) {
  (void)state;
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(declines_for_a_while, NULL, NULL, &g), 0);
  assert_int_equal(conc_hub_sleep(0), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_greenlet_kill(g, true, 0.05), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  assert_false(conc_greenlet_ready(g));
  assert_int_equal(conc_greenlet_join(g, CONC_FOREVER), 0);
  assert_int_equal(conc_greenlet_value(g, NULL), 0);
  conc_greenlet_release(g);
  hub_end();
}

static int kills_itself(void *arg, void **res) {
  conc_greenlet_t **me = arg;
  (void)res;
  int rc = conc_greenlet_kill(*me, true, CONC_FOREVER);
  return rc == CONC_ECANCELED ? CONC_ECANCELED : CONC_EINVAL;
}

static void test_killing_itself_lands_on_the_kill_call(void **state) {
  (void)state;
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(kills_itself, &g, NULL, &g), 0);
  assert_int_equal(conc_greenlet_join(g, CONC_FOREVER), 0);
  assert_int_equal(conc_greenlet_value(g, NULL), CONC_ECANCELED);
  conc_greenlet_release(g);
  hub_end();
}

static int fails(void *arg, void **res) {
  (void)res;
  return V(arg);
}

static void test_a_failed_greenlet_carries_its_code(void **state) {
  (void)state;
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(fails, I(CONC_EIO), NULL, &g), 0);
  assert_int_equal(conc_greenlet_get(g, CONC_FOREVER, NULL), CONC_EIO);
  assert_false(conc_greenlet_successful(g));
  assert_int_equal(conc_greenlet_value(g, NULL), CONC_EIO);
  conc_greenlet_release(g);
  hub_end();
}

/* ---- Pool and Group ------------------------------------------------------ */

typedef struct crowd {
  int running, max, finished;
  log_t log;
} crowd_t;

static int crowd_member(void *arg, void **res) {
  crowd_t *c = arg;
  (void)res;
  if (++c->running > c->max)
    c->max = c->running;
  int rc = conc_hub_sleep(0.02);
  c->running--;
  c->finished++;
  return rc;
}

static void
test_pool_caps_the_running_greenlets_and_spawn_blocks_main(void **state) {
  (void)state;
  conc_hub_pool_t pool;
  assert_int_equal(conc_hub_pool_init(&pool, 2), 0);
  crowd_t c = {0};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(conc_hub_pool_spawn(&pool, crowd_member, &c, NULL, NULL),
                     0);
    /* the third spawn had to wait for one of the first two to end */
    if (i == 2)
      assert_true(c.finished >= 1);
    assert_true(conc_hub_pool_len(&pool) <= 2);
    assert_int_equal(conc_hub_pool_free_count(&pool) + conc_hub_pool_len(&pool),
                     2);
  }
  assert_int_equal(conc_hub_pool_join(&pool, CONC_FOREVER), 0);
  assert_int_equal(c.finished, 6);
  assert_int_equal(c.max, 2);
  assert_int_equal(conc_hub_pool_len(&pool), 0);
  assert_int_equal(conc_hub_pool_free_count(&pool), 2);
  assert_int_equal(conc_hub_pool_destroy(&pool), 0);
  hub_end();
}

typedef struct feeder {
  conc_hub_pool_t pool;
  crowd_t crowd;
  int ticks;
  bool fed;
  const char *names[4];
} feeder_t;

static int named_member(void *arg, void **res) {
  feeder_t *f = arg;
  (void)res;
  say(&f->crowd.log, f->names[f->crowd.log.n]);
  return conc_hub_sleep(0.01);
}

static int feed_pool(void *arg, void **res) {
  feeder_t *f = arg;
  (void)res;
  for (int i = 0; i < 3; i++) {
    int rc = conc_hub_pool_spawn(&f->pool, named_member, f, NULL, NULL);
    if (rc)
      return rc;
  }
  f->fed = true;
  return 0;
}

static int ticker(void *arg, void **res) {
  feeder_t *f = arg;
  (void)res;
  while (!f->fed) {
    f->ticks++;
    int rc = conc_hub_sleep(0.001);
    if (rc)
      return rc;
  }
  return 0;
}

static void
test_pool_spawn_in_a_greenlet_suspends_only_the_spawner(void **state) {
  (void)state;
  feeder_t f = {.names = {"w0", "w1", "w2"}};
  assert_int_equal(conc_hub_pool_init(&f.pool, 1), 0);
  conc_greenlet_t *gs[2];
  assert_int_equal(conc_hub_spawn(feed_pool, &f, NULL, &gs[0]), 0);
  assert_int_equal(conc_hub_spawn(ticker, &f, NULL, &gs[1]), 0);
  assert_int_equal(conc_hub_joinall(gs, 2, CONC_FOREVER, NULL, NULL), 0);
  assert_int_equal(conc_greenlet_value(gs[0], NULL), 0);
  assert_true(f.ticks > 1); /* the ticker ran while the feeder waited */
  assert_int_equal(conc_hub_pool_join(&f.pool, CONC_FOREVER), 0);
  static const char *const want[] = {"w0", "w1", "w2"};
  assert_log(&f.crowd.log, want, 3);
  assert_int_equal(conc_hub_pool_destroy(&f.pool), 0);
  conc_greenlet_release(gs[0]);
  conc_greenlet_release(gs[1]);
  hub_end();
}

static void test_group_has_no_cap_and_join_waits_for_all(void **state) {
  (void)state;
  conc_hub_pool_t group;
  assert_int_equal(conc_hub_pool_init(&group, 0), 0);
  crowd_t c = {0};
  for (int i = 0; i < 5; i++)
    assert_int_equal(conc_hub_pool_spawn(&group, crowd_member, &c, NULL, NULL),
                     0);
  assert_int_equal(conc_hub_pool_len(&group), 5);
  assert_int_equal(conc_hub_pool_free_count(&group), SIZE_MAX);
  assert_int_equal(conc_hub_pool_join(&group, CONC_FOREVER), 0);
  assert_int_equal(c.max, 5);
  assert_int_equal(conc_hub_pool_len(&group), 0);
  assert_int_equal(conc_hub_pool_destroy(&group), 0);
  hub_end();
}

static void
test_pool_kill_kills_every_member_and_join_can_time_out(void **state) {
  (void)state;
  conc_hub_pool_t pool;
  assert_int_equal(conc_hub_pool_init(&pool, 3), 0);
  int rcs[3] = {1, 1, 1};
  for (int i = 0; i < 3; i++)
    assert_int_equal(
        conc_hub_pool_spawn(&pool, sleep_long, &rcs[i], NULL, NULL), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_hub_pool_join(&pool, 0.05), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  assert_int_equal(conc_hub_pool_destroy(&pool), CONC_EBUSY);
  assert_int_equal(conc_hub_pool_kill(&pool, true, CONC_FOREVER), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(rcs[i], CONC_ECANCELED);
  assert_int_equal(conc_hub_pool_len(&pool), 0);
  assert_int_equal(conc_hub_pool_destroy(&pool), 0);
  hub_end();
}

/* ---- Timeout ------------------------------------------------------------- */

typedef struct timed {
  int rc, after_rc, cancelling;
  double elapsed;
  bool expired;
} timed_t;

static int sleeps_in_a_timeout(void *arg, void **res) {
  timed_t *t = arg;
  (void)res;
  conc_hub_timeout_t to = {0};
  double t0 = conc_monotonic();
  if (conc_hub_timeout_start(&to, 0.05) != 0)
    return CONC_EINVAL;
  t->rc = conc_hub_sleep(10); /* gevent raises Timeout here */
  t->elapsed = conc_monotonic() - t0;
  t->expired = conc_hub_timeout_expired(&to);
  conc_hub_timeout_cancel(&to);
  t->cancelling = conc_aio_task_cancelling(conc_aio_current_task());
  t->after_rc = conc_hub_sleep(0.01); /* the greenlet goes on as normal */
  return 0;
}

static void
test_timeout_scope_makes_the_blocked_call_return_etimedout(void **state) {
  (void)state;
  timed_t t = {1, 1, 1, 0, false};
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(sleeps_in_a_timeout, &t, NULL, &g), 0);
  assert_int_equal(conc_greenlet_join(g, CONC_FOREVER), 0);
  assert_int_equal(conc_greenlet_value(g, NULL), 0);
  assert_int_equal(t.rc, CONC_ETIMEDOUT);
  assert_elapsed(t.elapsed, 0.05);
  assert_true(t.expired);
  assert_int_equal(t.cancelling, 0);
  assert_int_equal(t.after_rc, 0);
  conc_greenlet_release(g);
  hub_end();
}

static void test_timeout_scope_in_main_ends_the_blocked_join(void **state) {
  (void)state;
  int rc = 1;
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(sleep_long, &rc, NULL, &g), 0);
  conc_hub_timeout_t to = {0};
  assert_int_equal(conc_hub_timeout_start(&to, 0.05), 0);
  assert_true(conc_hub_timeout_pending(&to));
  assert_int_equal(conc_hub_timeout_start(&to, 1), CONC_ESTATE);
  double t0 = conc_monotonic();
  assert_int_equal(conc_greenlet_join(g, CONC_FOREVER), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  assert_true(conc_hub_timeout_expired(&to));
  assert_false(conc_hub_timeout_pending(&to));
  assert_int_equal(conc_hub_timeout_cancel(&to), 0);
  assert_int_equal(rc, 1); /* only main's wait ended */
  assert_int_equal(conc_hub_sleep(0.01), 0);
  assert_int_equal(conc_greenlet_kill(g, true, CONC_FOREVER), 0);
  conc_greenlet_release(g);
  hub_end();
}

static int short_sleep_in_long_timeout(void *arg, void **res) {
  timed_t *t = arg;
  (void)res;
  conc_hub_timeout_t to = {0};
  if (conc_hub_timeout_start(&to, 0.05) != 0)
    return CONC_EINVAL;
  t->rc = conc_hub_sleep(0.01);
  conc_hub_timeout_cancel(&to);
  t->after_rc = conc_hub_sleep(0.1); /* past the cancelled deadline */
  t->expired = conc_hub_timeout_expired(&to);
  return 0;
}

static void test_timeout_cancelled_in_time_never_fires(void **state) {
  (void)state;
  timed_t t = {1, 1, 0, 0, true};
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(short_sleep_in_long_timeout, &t, NULL, &g),
                   0);
  assert_int_equal(conc_greenlet_get(g, CONC_FOREVER, NULL), 0);
  assert_int_equal(t.rc, 0);
  assert_int_equal(t.after_rc, 0);
  assert_false(t.expired);
  conc_greenlet_release(g);
  hub_end();
}

static int plain_await_in_timeout(void *arg, void **res) {
  timed_t *t = arg;
  (void)res;
  conc_aio_future_t *f;
  if (conc_aio_future_create(NULL, &f) != 0)
    return CONC_ENOMEM;
  conc_hub_timeout_t to = {0};
  if (conc_hub_timeout_start(&to, 0.03) != 0)
    return CONC_EINVAL;
  t->rc = conc_aio_await(f, NULL); /* a loop await sees the cancel */
  t->expired = conc_hub_timeout_expired(&to);
  conc_hub_timeout_cancel(&to); /* withdraws it */
  conc_aio_future_release(f);
  t->cancelling = conc_aio_task_cancelling(conc_aio_current_task());
  t->after_rc = conc_hub_sleep(0.01);
  return 0;
}

static void test_timeout_seen_by_a_loop_await_is_a_cancel_withdrawn_by_cancel(
    void **state) {
  (void)state;
  timed_t t = {1, 1, 1, 0, false};
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(plain_await_in_timeout, &t, NULL, &g), 0);
  assert_int_equal(conc_greenlet_get(g, CONC_FOREVER, NULL), 0);
  assert_int_equal(t.rc, CONC_ECANCELED);
  assert_true(t.expired);
  assert_int_equal(t.cancelling, 0);
  assert_int_equal(t.after_rc, 0);
  conc_greenlet_release(g);
  hub_end();
}

typedef struct nested {
  int inner_rc, outer_rc, cancelling;
} nested_t;

/* asyncio.timeout(0.05) around gevent.Timeout(10) around a hub sleep */
static int aio_scope_outside(void *arg, void **res) {
  nested_t *n = arg;
  (void)res;
  conc_aio_timeout_t outer;
  conc_hub_timeout_t inner = {0};
  if (conc_aio_timeout_enter(&outer, 0.05) ||
      conc_hub_timeout_start(&inner, 10))
    return CONC_EINVAL;
  n->inner_rc = conc_hub_sleep(10); /* not the hub's timeout: a cancel */
  conc_hub_timeout_cancel(&inner);
  n->outer_rc = conc_aio_timeout_exit(&outer, n->inner_rc);
  n->cancelling = conc_aio_task_cancelling(conc_aio_current_task());
  return 0;
}

/* gevent.Timeout(0.05) around asyncio.timeout(10) around a hub sleep */
static int hub_scope_outside(void *arg, void **res) {
  nested_t *n = arg;
  (void)res;
  conc_hub_timeout_t outer = {0};
  conc_aio_timeout_t inner;
  if (conc_hub_timeout_start(&outer, 0.05) ||
      conc_aio_timeout_enter(&inner, 10))
    return CONC_EINVAL;
  n->inner_rc = conc_hub_sleep(10); /* the hub's timeout, at the call */
  n->outer_rc = conc_aio_timeout_exit(&inner, n->inner_rc);
  conc_hub_timeout_cancel(&outer);
  n->cancelling = conc_aio_task_cancelling(conc_aio_current_task());
  return 0;
}

static void test_hub_timeout_nests_with_asyncio_timeout_scopes(void **state) {
  (void)state;
  nested_t a = {1, 1, 1}, b = {1, 1, 1};
  conc_greenlet_t *gs[2];
  assert_int_equal(conc_hub_spawn(aio_scope_outside, &a, NULL, &gs[0]), 0);
  assert_int_equal(conc_hub_spawn(hub_scope_outside, &b, NULL, &gs[1]), 0);
  assert_int_equal(conc_hub_joinall(gs, 2, CONC_FOREVER, NULL, NULL), 0);
  assert_int_equal(conc_greenlet_value(gs[0], NULL), 0);
  assert_int_equal(conc_greenlet_value(gs[1], NULL), 0);
  assert_int_equal(a.inner_rc, CONC_ECANCELED);
  assert_int_equal(a.outer_rc, CONC_ETIMEDOUT);
  assert_int_equal(a.cancelling, 0);
  assert_int_equal(b.inner_rc, CONC_ETIMEDOUT);
  assert_int_equal(b.outer_rc, CONC_ETIMEDOUT);
  assert_int_equal(b.cancelling, 0);
  conc_greenlet_release(gs[0]);
  conc_greenlet_release(gs[1]);
  hub_end();
}

/* ---- mixing with asyncio-style tasks ------------------------------------ */

static int aio_child(void *arg, void **res) {
  (void)arg;
  int rc = conc_aio_sleep(0.01);
  *res = I(5);
  return rc;
}

static int greenlet_awaits_task(void *arg, void **res) {
  void *v = NULL;
  int rc = conc_aio_await(arg, &v); /* a greenlet awaits a task */
  if (rc)
    return rc;
  *res = I(V(v) * 2);
  return 0;
}

static int aio_main(void *arg, void **res) {
  (void)arg;
  conc_aio_future_t *t;
  int rc = conc_aio_create_task(NULL, aio_child, NULL, NULL, &t);
  if (rc)
    return rc;
  conc_greenlet_t *g;
  if ((rc = conc_hub_spawn(greenlet_awaits_task, t, NULL, &g)) != 0)
    return rc;
  void *v = NULL;
  rc = conc_aio_await(conc_greenlet_task(g), &v); /* a task awaits it */
  if (rc == 0 && V(v) != 10)
    rc = CONC_EINVAL;
  if (rc == 0)
    rc = conc_greenlet_join(g, 1); /* and hub calls work in tasks */
  if (rc == 0)
    rc = conc_hub_sleep(0);
  conc_greenlet_release(g);
  conc_aio_future_release(t);
  *res = I(1);
  return rc;
}

static void test_hub_and_aio_tasks_mix_in_one_program(void **state) {
  (void)state;
  void *r = NULL;
  assert_int_equal(conc_aio_run(aio_main, NULL, NULL, &r), 0);
  assert_int_equal(V(r), 1);
  /* from main: a task on the hub's loop, awaited by a greenlet */
  conc_aio_future_t *t;
  assert_int_equal(
      conc_aio_create_task(conc_hub_loop(), aio_child, NULL, NULL, &t), 0);
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(greenlet_awaits_task, t, NULL, &g), 0);
  void *v = NULL;
  assert_int_equal(conc_greenlet_get(g, CONC_FOREVER, &v), 0);
  assert_int_equal(V(v), 10);
  assert_true(conc_aio_future_done(t));
  conc_greenlet_release(g);
  conc_aio_future_release(t);
  hub_end();
}

/* ---- H4: what the loop reports ------------------------------------------ */

typedef struct reports {
  char text[4][256];
  int n;
} reports_t;

static void collect_report(conc_loop_t *loop, const char *msg, void *arg) {
  reports_t *r = arg;
  (void)loop;
  if (r->n < 4)
    snprintf(r->text[r->n++], sizeof r->text[0], "%s", msg);
}

static int blocks_the_thread(void *arg, void **res) {
  (void)arg;
  (void)res;
  return conc_sleep(0.15); /* time.sleep, not gevent.sleep */
}

static void
test_blocking_call_in_a_greenlet_is_reported_in_debug_mode(void **state) {
  (void)state;
  reports_t r = {0};
  conc_loop_t *loop = conc_hub_loop();
  conc_loop_set_debug(loop, true);
  conc_loop_set_exception_handler(loop, collect_report, &r);
  conc_greenlet_t *g;
  assert_int_equal(conc_hub_spawn(blocks_the_thread, NULL, NULL, &g), 0);
  assert_int_equal(conc_greenlet_get(g, CONC_FOREVER, NULL), 0);
  assert_true(r.n >= 1);
  assert_non_null(strstr(r.text[0], "took"));
  conc_greenlet_release(g);
  conc_loop_set_debug(loop, false);
  conc_loop_set_exception_handler(loop, NULL, NULL);
  hub_end();
}

static void test_an_error_nobody_retrieved_is_reported(void **state) {
  (void)state;
  reports_t r = {0};
  conc_loop_set_exception_handler(conc_hub_loop(), collect_report, &r);
  /* fire and forget: gevent prints the failed greenlet's traceback */
  assert_int_equal(conc_hub_spawn(fails, I(CONC_EIO), NULL, NULL), 0);
  assert_int_equal(conc_hub_wait(CONC_FOREVER), 0);
  assert_int_equal(r.n, 1);
  assert_non_null(strstr(r.text[0], "Greenlet-"));
  conc_loop_set_exception_handler(conc_hub_loop(), NULL, NULL);
  hub_end();
}

/* ---- misuse ------------------------------------------------------------ */

typedef struct in_callback {
  conc_greenlet_t *g;
  conc_hub_pool_t *full;
  int sleep_rc, join_rc, kill_rc, joinall_rc, spawn_rc, wait_rc, to_rc;
} in_callback_t;

static void blocking_calls_in_a_callback(void *arg) {
  in_callback_t *c = arg;
  c->sleep_rc = conc_hub_sleep(0);
  c->join_rc = conc_greenlet_join(c->g, 1);
  c->kill_rc = conc_greenlet_kill(c->g, true, 1);
  c->joinall_rc = conc_hub_joinall(&c->g, 1, 1, NULL, NULL);
  c->spawn_rc = conc_hub_pool_spawn(c->full, add_one, NULL, NULL, NULL);
  c->wait_rc = conc_hub_wait(1);
  conc_hub_timeout_t to = {0};
  c->to_rc = conc_hub_timeout_start(&to, 1);
}

static int joins_itself(void *arg, void **res) {
  conc_greenlet_t **me = arg;
  (void)res;
  int a = conc_greenlet_join(*me, 1);
  int b = conc_hub_joinall(me, 1, 1, NULL, NULL);
  return a == CONC_EDEADLK && b == CONC_EDEADLK ? 0 : CONC_EINVAL;
}

static void *join_from_another_thread(void *arg) {
  return I(conc_greenlet_join(arg, 0));
}

static void test_misuse_gets_its_code_and_changes_nothing(void **state) {
  (void)state;
  conc_greenlet_t *g = NULL, *none = NULL;
  assert_int_equal(conc_hub_spawn(NULL, NULL, NULL, &g), CONC_EINVAL);
  assert_null(g);
  assert_int_equal(conc_greenlet_join(NULL, 1), CONC_EINVAL);
  assert_int_equal(conc_greenlet_kill(NULL, true, 1), CONC_EINVAL);
  assert_int_equal(conc_greenlet_value(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_hub_sleep(NAN), CONC_EINVAL);
  assert_int_equal(conc_hub_joinall(NULL, 1, 1, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_hub_joinall(&none, 1, 1, NULL, NULL), CONC_EINVAL);
  size_t nd = 7;
  assert_int_equal(conc_hub_joinall(NULL, 0, 1, NULL, &nd), 0);
  assert_int_equal(nd, 0);
  assert_int_equal(conc_hub_pool_init(NULL, 1), CONC_EINVAL);
  conc_hub_pool_t unset = {{0}};
  assert_int_equal(conc_hub_pool_spawn(&unset, add_one, NULL, NULL, NULL),
                   CONC_EINVAL);
  assert_int_equal(conc_hub_timeout_start(NULL, 1), CONC_EINVAL);
  conc_hub_timeout_t to = {0};
  assert_int_equal(conc_hub_timeout_start(&to, NAN), CONC_EINVAL);
  assert_int_equal(conc_hub_timeout_cancel(&to), 0); /* never started */

  int rc = 1;
  assert_int_equal(conc_hub_spawn(sleep_long, &rc, NULL, &g), 0);
  assert_int_equal(conc_greenlet_join(g, NAN), CONC_EINVAL);
  assert_int_equal(conc_greenlet_kill(g, true, NAN), CONC_EINVAL);
  assert_int_equal(conc_greenlet_value(g, NULL), CONC_EINVALSTATE);
  assert_false(conc_greenlet_successful(g));

  /* another thread may not touch the greenlet */
  pthread_t th = conc_test_spawn(join_from_another_thread, g);
  void *trc;
  assert_int_equal(pthread_join(th, &trc), 0);
  assert_int_equal(V(trc), CONC_EWRONGTHREAD);

  /* a loop callback may not block the loop it runs on */
  conc_hub_pool_t full;
  assert_int_equal(conc_hub_pool_init(&full, 1), 0);
  assert_int_equal(conc_hub_pool_spawn(&full, sleep_long, NULL, NULL, NULL), 0);
  in_callback_t cb = {.g = g, .full = &full};
  assert_int_equal(conc_loop_call_soon(conc_hub_loop(),
                                       blocking_calls_in_a_callback, &cb, NULL),
                   0);
  assert_int_equal(conc_hub_sleep(0.01), 0);
  assert_int_equal(cb.sleep_rc, CONC_ESTATE);
  assert_int_equal(cb.join_rc, CONC_ESTATE);
  assert_int_equal(cb.kill_rc, CONC_ESTATE);
  assert_int_equal(cb.joinall_rc, CONC_ESTATE);
  assert_int_equal(cb.spawn_rc, CONC_ESTATE);
  assert_int_equal(cb.wait_rc, CONC_ESTATE);
  assert_int_equal(cb.to_rc, CONC_ESTATE);
  assert_false(conc_greenlet_ready(g)); /* the refused kill changed nothing */
  assert_int_equal(conc_hub_pool_len(&full), 1);
  assert_int_equal(conc_hub_pool_destroy(&full), CONC_EBUSY);
  assert_int_equal(conc_hub_pool_kill(&full, true, CONC_FOREVER), 0);
  assert_int_equal(conc_hub_pool_destroy(&full), 0);

  /* joining oneself would wait forever */
  conc_greenlet_t *self;
  assert_int_equal(conc_hub_spawn(joins_itself, &self, NULL, &self), 0);
  assert_int_equal(conc_greenlet_get(self, CONC_FOREVER, NULL), 0);
  conc_greenlet_release(self);

  assert_int_equal(conc_greenlet_kill(g, true, CONC_FOREVER), 0);
  conc_greenlet_release(g);
  hub_end();
}

CONC_TEST_MAIN(
    cmocka_unit_test(test_main_spawns_and_joins_without_writing_an_event_loop),
    cmocka_unit_test(test_hub_uses_a_loop_the_program_made_and_leaves_it_alone),
    cmocka_unit_test(
        test_joinall_waits_for_all_and_lists_them_in_completion_order),
    cmocka_unit_test(test_joinall_timeout_returns_the_finished_ones),
    cmocka_unit_test(test_hub_wait_runs_until_every_greenlet_finished),
    cmocka_unit_test(
        test_spawn_later_starts_after_the_delay_or_never_if_killed),
    cmocka_unit_test(
        test_destroy_ends_what_is_left_and_handles_outlive_the_loop),
    cmocka_unit_test(test_sleep0_foo_bar_prints_in_gevent_order),
    cmocka_unit_test(test_sleep0_yields_to_every_ready_greenlet_exactly_once),
    cmocka_unit_test(test_sleep_from_main_runs_the_greenlets_meanwhile),
    cmocka_unit_test(test_each_thread_runs_its_own_hub),
    cmocka_unit_test(test_kill_makes_the_pending_call_return_ecanceled),
    cmocka_unit_test(test_kill_before_start_means_it_never_runs),
    cmocka_unit_test(test_killed_greenlet_may_clean_up_and_return_a_result),
    cmocka_unit_test(
        test_kill_with_block_and_timeout_reports_a_greenlet_still_running),
    cmocka_unit_test(test_killing_itself_lands_on_the_kill_call),
    cmocka_unit_test(test_a_failed_greenlet_carries_its_code),
    cmocka_unit_test(
        test_pool_caps_the_running_greenlets_and_spawn_blocks_main),
    cmocka_unit_test(test_pool_spawn_in_a_greenlet_suspends_only_the_spawner),
    cmocka_unit_test(test_group_has_no_cap_and_join_waits_for_all),
    cmocka_unit_test(test_pool_kill_kills_every_member_and_join_can_time_out),
    cmocka_unit_test(
        test_timeout_scope_makes_the_blocked_call_return_etimedout),
    cmocka_unit_test(test_timeout_scope_in_main_ends_the_blocked_join),
    cmocka_unit_test(test_timeout_cancelled_in_time_never_fires),
    cmocka_unit_test(
        test_timeout_seen_by_a_loop_await_is_a_cancel_withdrawn_by_cancel),
    cmocka_unit_test(test_hub_timeout_nests_with_asyncio_timeout_scopes),
    cmocka_unit_test(test_hub_and_aio_tasks_mix_in_one_program),
    cmocka_unit_test(
        test_blocking_call_in_a_greenlet_is_reported_in_debug_mode),
    cmocka_unit_test(test_an_error_nobody_retrieved_is_reported),
    cmocka_unit_test(test_misuse_gets_its_code_and_changes_nothing))
