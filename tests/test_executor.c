/* Tests for the thread-pool executor and map (spec X*). */
#include "harness.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/thread.h"
#include "conc/time.h"

#define I(x) ((void *)(intptr_t)(x))
#define V(p) ((int)(intptr_t)(p))

static int square(void *arg, void **result) {
  *result = I(V(arg) * V(arg));
  return 0;
}

struct pow_args {
  int base, exp;
};

static int power(void *arg, void **result) {
  struct pow_args *a = arg;
  int r = 1;
  for (int i = 0; i < a->exp; i++)
    r *= a->base;
  *result = I(r);
  return 0;
}

static int sleep_then_echo(void *arg, void **result) {
  conc_sleep(V(arg) / 1000.0);
  *result = arg;
  return 0;
}

static int fail_on_5(void *arg, void **result) {
  if (V(arg) == 5)
    return conc_raise(CONC_EINVAL, "bad input %d", V(arg));
  *result = arg;
  return 0;
}

static void init_ex(conc_executor_t *ex, int workers) {
  assert_int_equal(
      conc_executor_init(ex, &(conc_executor_opts_t){.max_workers = workers}),
      0);
}

static int result_int(conc_future_t *f) {
  void *v = NULL;
  assert_int_equal(conc_future_result(f, 10, &v), 0);
  conc_future_release(f);
  return V(v);
}

/* X1 */
static void submit_returns_future_with_result(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 2);
  conc_future_t *f;
  struct pow_args a = {.base = 2, .exp = 8}; /* keyword args: a struct */
  assert_int_equal(conc_executor_submit(&ex, power, &a, &f), 0);
  assert_int_equal(result_int(f), 256);
  assert_int_equal(conc_executor_submit(&ex, square, I(7), &f), 0);
  assert_int_equal(result_int(f), 49);
  conc_executor_destroy(&ex);
}

/* X1 (a task's failure reaches the future) */
static void task_failure_carries_code_and_message(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 1);
  conc_future_t *f;
  assert_int_equal(conc_executor_submit(&ex, fail_on_5, I(5), &f), 0);
  assert_int_equal(conc_future_result(f, 10, NULL), CONC_EINVAL);
  conc_future_error_t e;
  assert_int_equal(conc_future_exception(f, 0, &e), 0);
  assert_int_equal(e.code, CONC_EINVAL);
  assert_string_equal(e.message, "bad input 5");
  conc_future_release(f);
  /* the next task on the same worker starts clean */
  assert_int_equal(conc_executor_submit(&ex, fail_on_5, I(4), &f), 0);
  assert_int_equal(result_int(f), 4);
  conc_executor_destroy(&ex);
}

/* X2 */
static void map_yields_results_in_input_order(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 4);
  void *in[10];
  for (int i = 0; i < 10; i++)
    in[i] = I((10 - i) * 3); /* later inputs finish first */
  conc_map_t m;
  assert_int_equal(
      conc_executor_map(&ex, sleep_then_echo, in, 10, CONC_FOREVER, &m), 0);
  void *v;
  for (int i = 0; i < 10; i++) {
    assert_int_equal(conc_map_next(&m, &v), 0);
    assert_ptr_equal(v, in[i]);
  }
  assert_int_equal(conc_map_next(&m, &v), CONC_EEOF);
  conc_map_close(&m);
  conc_executor_destroy(&ex);
}

/* X2 */
static void map_failure_at_k_comes_after_earlier_results(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 2);
  void *in[8];
  for (int i = 0; i < 8; i++)
    in[i] = I(i);
  conc_map_t m;
  assert_int_equal(conc_executor_map(&ex, fail_on_5, in, 8, CONC_FOREVER, &m),
                   0);
  void *v;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(conc_map_next(&m, &v), 0);
    assert_int_equal(V(v), i);
  }
  assert_int_equal(conc_map_index(&m), 5);
  assert_int_equal(conc_map_next(&m, &v), CONC_EINVAL);
  assert_string_equal(conc_map_message(&m), "bad input 5");
  assert_int_equal(conc_map_next(&m, &v), CONC_EEOF); /* it is over */
  conc_map_close(&m);
  conc_executor_destroy(&ex);
}

struct gate {
  uint32_t open;
  uint32_t started;
  uint32_t ran;
};

static void gate_wait(struct gate *g) {
  while (!__atomic_load_n(&g->open, __ATOMIC_ACQUIRE))
    conc_sleep(0.001);
}

static struct gate g_gate;

static int gated(void *arg, void **result) {
  __atomic_fetch_add(&g_gate.started, 1, __ATOMIC_ACQ_REL);
  gate_wait(&g_gate);
  __atomic_fetch_add(&g_gate.ran, 1, __ATOMIC_ACQ_REL);
  *result = arg;
  return 0;
}

static void gate_reset(void) { memset(&g_gate, 0, sizeof g_gate); }
static void gate_open(void) {
  __atomic_store_n(&g_gate.open, 1, __ATOMIC_RELEASE);
}
static uint32_t gate_started(void) {
  return __atomic_load_n(&g_gate.started, __ATOMIC_ACQUIRE);
}
static uint32_t gate_ran(void) {
  return __atomic_load_n(&g_gate.ran, __ATOMIC_ACQUIRE);
}

/* X3 */
static void map_timeout_from_call_cancels_pending_not_running(void **state) {
  (void)state;
  gate_reset();
  conc_executor_t ex;
  init_ex(&ex, 1);
  void *in[] = {I(1), I(2), I(3)};
  conc_map_t m;
  double t0 = conc_monotonic();
  assert_int_equal(conc_executor_map(&ex, gated, in, 3, 0.1, &m), 0);
  /* the first item must be running when the timeout strikes: a loaded
   * machine may start the worker late */
  while (gate_started() < 1)
    conc_sleep(0.001);
  void *v;
  assert_int_equal(conc_map_next(&m, &v), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.1);
  assert_int_equal(conc_map_next(&m, &v), CONC_EEOF);
  gate_open();
  conc_executor_shutdown(&ex, true, false);
  /* the running one finished; the two pending ones were cancelled */
  assert_int_equal(gate_ran(), 1);
  conc_map_close(&m);
  conc_executor_destroy(&ex);
}

/* X3 */
static void map_close_cancels_what_has_not_started(void **state) {
  (void)state;
  gate_reset();
  conc_executor_t ex;
  init_ex(&ex, 1);
  void *in[] = {I(1), I(2), I(3), I(4)};
  conc_map_t m;
  assert_int_equal(conc_executor_map(&ex, gated, in, 4, CONC_FOREVER, &m), 0);
  while (gate_started() < 1)
    conc_sleep(0.001);
  conc_map_close(&m);
  gate_open();
  conc_executor_destroy(&ex);
  assert_int_equal(gate_ran(), 1);
}

static uint32_t map_count;
static int count_task(void *arg, void **result) {
  __atomic_fetch_add(&map_count, 1, __ATOMIC_ACQ_REL);
  *result = arg;
  return 0;
}

/* X4 */
static void map_submits_everything_without_iteration(void **state) {
  (void)state;
  map_count = 0;
  conc_executor_t ex;
  init_ex(&ex, 2);
  void *in[50] = {0};
  conc_map_t m;
  assert_int_equal(conc_executor_map(&ex, count_task, in, 50, 5, &m), 0);
  conc_executor_shutdown(&ex, true, false);
  assert_int_equal(__atomic_load_n(&map_count, __ATOMIC_ACQUIRE), 50);
  conc_map_close(&m);
  conc_executor_destroy(&ex);
}

/* X5 */
static void max_workers_rules(void **state) {
  (void)state;
  conc_executor_t ex;
  assert_int_equal(
      conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = -1}),
      CONC_EINVAL);
  assert_int_equal(conc_executor_init(&ex, NULL), 0);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int want = cpus + 4 < 32 ? (int)cpus + 4 : 32;
  assert_int_equal(conc_executor_max_workers(&ex), want);
  conc_executor_destroy(&ex);
}

/* X6 */
static void workers_start_lazily_up_to_max(void **state) {
  (void)state;
  gate_reset();
  conc_executor_t ex;
  init_ex(&ex, 4);
  assert_int_equal(conc_executor_num_threads(&ex), 0);
  conc_future_t *fs[15];
  for (int i = 0; i < 15; i++)
    assert_int_equal(conc_executor_submit(&ex, gated, I(i), &fs[i]), 0);
  assert_int_equal(conc_executor_num_threads(&ex), 4);
  gate_open();
  for (int i = 0; i < 15; i++)
    assert_int_equal(result_int(fs[i]), i);
  assert_int_equal(conc_executor_num_threads(&ex), 4);
  conc_executor_destroy(&ex);
}

/* X6 */
static void idle_worker_is_reused(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 8);
  for (int i = 0; i < 3; i++) {
    conc_future_t *f;
    assert_int_equal(conc_executor_submit(&ex, square, I(i), &f), 0);
    assert_int_equal(result_int(f), i * i);
  }
  assert_int_equal(conc_executor_num_threads(&ex), 1);
  conc_executor_destroy(&ex);
}

/* Each task holds its worker at the gate, which opens once all five run:
 * then no worker was idle when a submit looked for one, and each worker
 * has a task (a fixed sleep was too short for a loaded machine: a worker
 * that started late found its task taken by an earlier one). */
static int my_name(void *arg, void **result) {
  gated(arg, result);
  *result = (void *)conc_thread_name(conc_current_thread());
  return 0;
}

/* X7 */
static void worker_names_use_prefix(void **state) {
  (void)state;
  conc_executor_t ex;
  assert_int_equal(
      conc_executor_init(
          &ex, &(conc_executor_opts_t){.max_workers = 5,
                                       .thread_name_prefix = "SpecialPool"}),
      0);
  conc_future_t *fs[5];
  gate_reset();
  for (int i = 0; i < 5; i++)
    assert_int_equal(conc_executor_submit(&ex, my_name, NULL, &fs[i]), 0);
  double end = conc_monotonic() + 10;
  while (gate_started() < 5 && conc_monotonic() < end)
    conc_sleep(0.001);
  gate_open();
  bool seen[5] = {false};
  for (int i = 0; i < 5; i++) {
    void *v;
    assert_int_equal(conc_future_result(fs[i], 10, &v), 0);
    const char *name = v;
    assert_int_equal(strncmp(name, "SpecialPool_", 12), 0);
    int k = atoi(name + 12);
    assert_true(k >= 0 && k < 5);
    seen[k] = true;
    conc_future_release(fs[i]);
  }
  for (int i = 0; i < 5; i++)
    assert_true(seen[i]);
  conc_executor_destroy(&ex);
}

/* X7 */
static void worker_names_default(void **state) {
  (void)state;
  conc_executor_t a, b;
  init_ex(&a, 1);
  init_ex(&b, 1);
  const char *pa = conc_executor_thread_name_prefix(&a);
  const char *pb = conc_executor_thread_name_prefix(&b);
  assert_int_equal(strncmp(pa, "ThreadPoolExecutor-", 19), 0);
  assert_int_equal(atoi(pb + 19), atoi(pa + 19) + 1);
  conc_future_t *f;
  gate_open();
  assert_int_equal(conc_executor_submit(&a, my_name, NULL, &f), 0);
  void *v;
  assert_int_equal(conc_future_result(f, 10, &v), 0);
  char want[64];
  snprintf(want, sizeof want, "%s_0", pa);
  assert_string_equal(v, want);
  conc_future_release(f);
  conc_executor_destroy(&a);
  conc_executor_destroy(&b);
}

/* X8 */
static void submit_after_shutdown_is_estate(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 1);
  assert_int_equal(conc_executor_shutdown(&ex, true, false), 0);
  conc_future_t *f = I(1);
  assert_int_equal(conc_executor_submit(&ex, square, I(2), &f), CONC_ESTATE);
  assert_ptr_equal(f, I(1)); /* left as it was */
  conc_executor_destroy(&ex);
}

/* X9 */
static void shutdown_wait_runs_queued_work_and_is_idempotent(void **state) {
  (void)state;
  map_count = 0;
  conc_executor_t ex;
  init_ex(&ex, 2);
  for (int i = 0; i < 20; i++)
    assert_int_equal(conc_executor_submit(&ex, count_task, NULL, NULL), 0);
  assert_int_equal(conc_executor_shutdown(&ex, true, false), 0);
  assert_int_equal(__atomic_load_n(&map_count, __ATOMIC_ACQUIRE), 20);
  assert_int_equal(conc_executor_shutdown(&ex, true, false), 0);
  assert_int_equal(conc_executor_shutdown(&ex, false, true), 0);
  conc_executor_destroy(&ex);
}

/* X9 */
static void scoped_block_shuts_down_on_exit(void **state) {
  (void)state;
  map_count = 0;
  conc_executor_t ex;
  init_ex(&ex, 2);
  CONC_WITH_EXECUTOR(&ex) {
    for (int i = 0; i < 10; i++)
      assert_int_equal(conc_executor_submit(&ex, sleep_then_echo, I(5), NULL),
                       0);
    assert_int_equal(conc_executor_submit(&ex, count_task, NULL, NULL), 0);
  }
  /* left the block: shutdown(wait=True) has run */
  assert_int_equal(__atomic_load_n(&map_count, __ATOMIC_ACQUIRE), 1);
  assert_int_equal(conc_executor_submit(&ex, square, I(1), NULL), CONC_ESTATE);
  conc_executor_destroy(&ex);
}

/* X10 */
static void shutdown_nowait_returns_at_once_work_completes(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 2);
  conc_future_t *fs[6];
  for (int i = 0; i < 6; i++)
    assert_int_equal(conc_executor_submit(&ex, sleep_then_echo, I(30), &fs[i]),
                     0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_executor_shutdown(&ex, false, false), 0);
  assert_quick(conc_monotonic() - t0);
  for (int i = 0; i < 6; i++)
    assert_int_equal(result_int(fs[i]), 30);
  conc_executor_destroy(&ex);
}

/* X11 */
static void cancel_futures_cancels_pending_running_finish(void **state) {
  (void)state;
  gate_reset();
  conc_executor_t ex;
  init_ex(&ex, 1);
  conc_future_t *fs[5];
  for (int i = 0; i < 5; i++)
    assert_int_equal(conc_executor_submit(&ex, gated, I(i), &fs[i]), 0);
  while (gate_started() < 1)
    conc_sleep(0.001);
  assert_int_equal(conc_executor_shutdown(&ex, false, true), 0);
  gate_open();
  assert_int_equal(result_int(fs[0]), 0); /* ran, no error */
  for (int i = 1; i < 5; i++) {
    assert_true(conc_future_cancelled(fs[i]));
    assert_int_equal(conc_future_result(fs[i], 0, NULL), CONC_ECANCELED);
  }
  /* cancelled futures were notified: wait() does not hang on them */
  conc_wait_result_t r = {NULL, 0, NULL, 0};
  assert_int_equal(conc_futures_wait(fs + 1, 4, 1, CONC_ALL_COMPLETED, &r), 0);
  assert_int_equal(r.ndone, 4);
  for (int i = 1; i < 5; i++)
    conc_future_release(fs[i]);
  conc_executor_destroy(&ex);
}

static uint32_t init_calls;
static int counting_init(void *arg) {
  assert_ptr_equal(arg, I(77));
  __atomic_fetch_add(&init_calls, 1, __ATOMIC_ACQ_REL);
  return 0;
}

static int init_seen(void *arg, void **result) {
  (void)arg;
  gate_wait(&g_gate); /* busy until all are submitted: 3 workers start */
  *result = I(__atomic_load_n(&init_calls, __ATOMIC_ACQUIRE));
  return 0;
}

/* X13 */
static void initializer_runs_once_per_worker_before_tasks(void **state) {
  (void)state;
  init_calls = 0;
  conc_executor_t ex;
  assert_int_equal(
      conc_executor_init(&ex,
                         &(conc_executor_opts_t){.max_workers = 3,
                                                 .initializer = counting_init,
                                                 .initarg = I(77)}),
      0);
  conc_future_t *fs[6];
  gate_reset();
  for (int i = 0; i < 6; i++)
    assert_int_equal(conc_executor_submit(&ex, init_seen, NULL, &fs[i]), 0);
  gate_open();
  for (int i = 0; i < 6; i++)
    assert_true(result_int(fs[i]) >= 1);
  conc_executor_destroy(&ex);
  assert_int_equal(init_calls, 3);
}

static int failing_init(void *arg) {
  (void)arg;
  return conc_raise(CONC_EIO, "no database");
}

static void submit_to_broken_pool(void *arg) {
  conc_executor_t *ex = arg;
  conc_future_t *fs[5];
  int queued = 0;
  for (int i = 0; i < 5; i++) {
    int rc = conc_executor_submit(ex, square, I(i), &fs[queued]);
    if (rc == 0)
      queued++;
    else
      assert_int_equal(rc, CONC_EBROKENPOOL);
  }
  for (int i = 0; i < queued; i++) {
    assert_int_equal(conc_future_result(fs[i], 10, NULL), CONC_EBROKENPOOL);
    conc_future_release(fs[i]);
  }
  assert_true(queued >= 1); /* the first submit queues before the break */
  assert_int_equal(conc_executor_submit(ex, square, I(1), NULL),
                   CONC_EBROKENPOOL);
}

/* X13 */
static void failing_initializer_breaks_the_pool(void **state) {
  (void)state;
  conc_executor_t ex;
  assert_int_equal(
      conc_executor_init(&ex,
                         &(conc_executor_opts_t){.max_workers = 1,
                                                 .initializer = failing_init}),
      0);
  fflush(stderr);
  FILE *tmp = tmpfile();
  int saved = dup(2);
  dup2(fileno(tmp), 2);
  submit_to_broken_pool(&ex);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  char buf[512];
  buf[fread(buf, 1, sizeof buf - 1, tmp)] = '\0';
  fclose(tmp);
  assert_non_null(strstr(buf, "Exception in initializer"));
  assert_non_null(strstr(buf, "no database"));
  conc_executor_destroy(&ex);
}

static conc_executor_t self_ex;
static int submit_inner(void *arg, void **result) {
  conc_future_t *f;
  int rc = conc_executor_submit(&self_ex, square, arg, &f);
  if (rc != 0)
    return rc;
  *result = I(result_int(f));
  return 0;
}

/* A task may submit to its own executor. */
static void task_submits_to_its_own_pool(void **state) {
  (void)state;
  init_ex(&self_ex, 2);
  conc_future_t *f;
  assert_int_equal(conc_executor_submit(&self_ex, submit_inner, I(9), &f), 0);
  assert_int_equal(result_int(f), 81);
  conc_executor_destroy(&self_ex);
}

struct submitter {
  conc_executor_t *ex;
  int n, base;
  long sum;     /* of results */
  int accepted; /* submits that returned 0 */
  int refused;  /* submits refused with CONC_ESTATE */
  bool until_refused;
  atomic_int *started; /* counts submitters past their first accepted submit */
};

static void *submit_many(void *arg) {
  struct submitter *s = arg;
  conc_future_t *fs[64];
  for (int done = 0; s->until_refused || done < s->n;) {
    int b = 0;
    for (; b < 64 && (s->until_refused || done + b < s->n); b++) {
      /* the shutdown race submits as many as it can: keep the square of
       * the argument within int */
      int rc = conc_executor_submit(s->ex, square,
                                    I((s->base + done + b) % 40000), &fs[b]);
      if (rc == CONC_ESTATE) {
        s->refused++;
        break;
      }
      assert_int_equal(rc, 0);
      if (s->accepted++ == 0 && s->started)
        atomic_fetch_add(s->started, 1);
    }
    for (int i = 0; i < b; i++) {
      void *v;
      assert_int_equal(conc_future_result(fs[i], 30, &v), 0);
      s->sum += V(v);
      conc_future_release(fs[i]);
    }
    done += b;
    if (s->refused)
      return NULL;
  }
  return NULL;
}

/* X1 under load: several threads submit at once (the pending list has many
 * producers); every task runs once and every result arrives. */
static void concurrent_submitters_lose_nothing(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 3);
  struct submitter s[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    s[i] = (struct submitter){.ex = &ex, .n = 3000, .base = i % 7};
    t[i] = conc_test_spawn(submit_many, &s[i]);
  }
  for (int i = 0; i < 4; i++) {
    conc_test_join(t[i]);
    long want = 0;
    for (int k = 0; k < 3000; k++)
      want += (long)((s[i].base + k) * (s[i].base + k));
    assert_int_equal(s[i].sum, want);
  }
  conc_executor_destroy(&ex);
}

/* X8/X9: shutdown while other threads submit: each submit either is
 * refused (CONC_ESTATE) or its task runs; shutdown(wait) returns after
 * all accepted work. */
static void shutdown_races_submitters_without_losing_tasks(void **state) {
  (void)state;
  for (int round = 0; round < 5; round++) {
    conc_executor_t ex;
    init_ex(&ex, 2);
    struct submitter s[3];
    pthread_t t[3];
    atomic_int started = 0;
    for (int i = 0; i < 3; i++) {
      s[i] = (struct submitter){
          .ex = &ex, .base = 1, .until_refused = true, .started = &started};
      t[i] = conc_test_spawn(submit_many, &s[i]);
    }
    /* shut down only once every submitter is in its loop (a loaded machine
     * may start a thread late), then while they keep submitting */
    while (atomic_load(&started) < 3)
      conc_sleep(0.001);
    conc_sleep(0.01);
    assert_int_equal(conc_executor_shutdown(&ex, true, false), 0);
    for (int i = 0; i < 3; i++) {
      conc_test_join(t[i]);
      assert_int_equal(s[i].refused, 1);
      assert_true(s[i].accepted > 0);
    }
    conc_executor_destroy(&ex);
  }
}

/* Tasks that return only once `want` of them run at the same time (or
 * after 10 s, with CONC_ETIMEDOUT): each needs its own worker. */
static atomic_int together_running;
static int together_want;

static int run_together(void *arg, void **result) {
  (void)arg;
  atomic_fetch_add(&together_running, 1);
  double t0 = conc_monotonic();
  while (atomic_load(&together_running) < together_want)
    if (conc_monotonic() - t0 > 10 || conc_sleep(0.0005) != 0)
      return CONC_ETIMEDOUT;
  *result = I(1);
  return 0;
}

static void run_batch_together(conc_executor_t *ex, int n) {
  conc_future_t *fs[8];
  atomic_store(&together_running, 0);
  together_want = n;
  for (int i = 0; i < n; i++)
    assert_int_equal(conc_executor_submit(ex, run_together, NULL, &fs[i]), 0);
  for (int i = 0; i < n; i++)
    assert_int_equal(result_int(fs[i]), 1);
}

/* Idle workers sleep; a burst of submissions must bring in every sleeper it
 * needs even though a submitter wakes only one when nobody spins (the woken
 * worker brings in the next): four tasks that wait for each other finish
 * only if four workers run them. */
static void burst_wakes_every_sleeping_worker_it_needs(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 4);
  run_batch_together(&ex, 4); /* start the four workers */
  for (int round = 0; round < 20; round++) {
    conc_sleep(round % 2 ? 0.0001 : 0.005); /* spinning, or all asleep */
    run_batch_together(&ex, 4);
  }
  assert_int_equal(conc_executor_num_threads(&ex), 4);
  conc_executor_destroy(&ex);
}

struct trickle {
  conc_executor_t *ex;
  int n, seed;
  long sum;
};

/* Submit one task at a time with gaps around the workers' spin time, so
 * that submits meet workers spinning, going to sleep and asleep. */
static void *submit_trickle(void *arg) {
  struct trickle *t = arg;
  unsigned x = (unsigned)t->seed * 2654435761u + 1;
  for (int i = 0; i < t->n; i++) {
    x = x * 1103515245u + 12345u;
    struct timespec gap = {0, (long)(x >> 8) % 60000};
    nanosleep(&gap, NULL);
    conc_future_t *f;
    assert_int_equal(conc_executor_submit(t->ex, square, I(i % 100), &f), 0);
    t->sum += result_int(f);
  }
  return NULL;
}

/* No wake-up is lost: several threads submit single tasks while workers go
 * from spinning to sleeping; every result arrives (within result_int's
 * 10 s). */
static void spaced_submits_from_many_threads_all_complete(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 4);
  struct trickle t[3];
  pthread_t th[3];
  for (int i = 0; i < 3; i++) {
    t[i] = (struct trickle){.ex = &ex, .n = 300, .seed = i};
    th[i] = conc_test_spawn(submit_trickle, &t[i]);
  }
  long want = 0;
  for (int k = 0; k < 300; k++)
    want += (long)(k % 100) * (k % 100);
  for (int i = 0; i < 3; i++) {
    conc_test_join(th[i]);
    assert_int_equal(t[i].sum, want);
  }
  conc_executor_destroy(&ex);
}

struct canceller_sub {
  conc_executor_t *ex;
  atomic_int *started;
  int accepted, finished, cancelled;
};

/* Submit until refused, keeping every future; then each must be done:
 * finished with its result or cancelled by shutdown(cancel_futures). */
static void *submit_keep(void *arg) {
  struct canceller_sub *s = arg;
  enum { MAX = 20000 };
  conc_future_t **fs = malloc(MAX * sizeof *fs);
  assert_non_null(fs);
  int n = 0;
  while (n < MAX) {
    int rc = conc_executor_submit(s->ex, square, I(n % 1000), &fs[n]);
    if (rc == CONC_ESTATE)
      break;
    assert_int_equal(rc, 0);
    if (n++ == 0)
      atomic_fetch_add(s->started, 1);
  }
  s->accepted = n;
  for (int i = 0; i < n; i++) {
    void *v;
    int rc = conc_future_result(fs[i], 10, &v);
    if (rc == 0 && V(v) == (i % 1000) * (i % 1000))
      s->finished++;
    else if (rc == CONC_ECANCELED && conc_future_cancelled(fs[i]))
      s->cancelled++;
    conc_future_release(fs[i]);
  }
  free(fs);
  return NULL;
}

/* shutdown(cancel_futures=True) while several threads submit: every
 * accepted future ends finished or cancelled (none hangs and none is
 * lost between a submit's push and the drain). */
static void cancel_futures_while_many_threads_submit(void **state) {
  (void)state;
  for (int round = 0; round < 3; round++) {
    conc_executor_t ex;
    init_ex(&ex, 2);
    struct canceller_sub s[3];
    pthread_t t[3];
    atomic_int started = 0;
    for (int i = 0; i < 3; i++) {
      s[i] = (struct canceller_sub){.ex = &ex, .started = &started};
      t[i] = conc_test_spawn(submit_keep, &s[i]);
    }
    while (atomic_load(&started) < 3)
      conc_sleep(0.001);
    assert_int_equal(conc_executor_shutdown(&ex, true, true), 0);
    for (int i = 0; i < 3; i++) {
      conc_test_join(t[i]);
      assert_int_equal(s[i].finished + s[i].cancelled, s[i].accepted);
    }
    conc_executor_destroy(&ex);
  }
}

static int fork_in_task(void *arg, void **result) {
  (void)arg;
  pid_t pid = fork();
  if (pid == 0) {
    conc_executor_t ex;
    conc_future_t *f;
    void *v = NULL;
    int ok = conc_executor_init(
                 &ex, &(conc_executor_opts_t){.max_workers = 2}) == 0 &&
             conc_executor_submit(&ex, square, I(6), &f) == 0 &&
             conc_future_result(f, 10, &v) == 0 && V(v) == 36;
    conc_executor_destroy(&ex);
    _exit(ok ? 0 : 3);
  }
  int status = -1;
  if (pid < 0 || waitpid(pid, &status, 0) != pid)
    return CONC_ECHILD;
  *result = I(WIFEXITED(status) ? WEXITSTATUS(status) : 100);
  return 0;
}

/* Fork from a pool thread: the child can use libconc (a new pool). */
static void fork_from_pool_thread_works(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 2);
  conc_future_t *busy, *f;
  assert_int_equal(conc_executor_submit(&ex, sleep_then_echo, I(20), &busy), 0);
  assert_int_equal(conc_executor_submit(&ex, fork_in_task, NULL, &f), 0);
  assert_int_equal(result_int(f), 0);
  assert_int_equal(result_int(busy), 20);
  conc_executor_destroy(&ex);
}

/* Bad input gets clear codes and changes nothing; futures outlive their
 * executor. */
static void bad_input_and_futures_after_destroy(void **state) {
  (void)state;
  conc_executor_t ex;
  conc_future_t *f = I(1);
  assert_int_equal(conc_executor_init(NULL, NULL), CONC_EINVAL);
  init_ex(&ex, 1);
  assert_int_equal(conc_executor_submit(&ex, NULL, NULL, &f), CONC_EINVAL);
  assert_ptr_equal(f, I(1));
  assert_int_equal(conc_executor_submit(NULL, square, NULL, &f), CONC_EINVAL);
  conc_map_t m;
  assert_int_equal(conc_executor_map(&ex, NULL, NULL, 0, 1, &m), CONC_EINVAL);
  gate_reset();
  conc_future_t *run, *queued, *cancelled;
  assert_int_equal(conc_executor_submit(&ex, gated, I(1), &run), 0);
  assert_int_equal(conc_executor_submit(&ex, square, I(3), &queued), 0);
  assert_int_equal(conc_executor_submit(&ex, square, I(4), &cancelled), 0);
  assert_true(conc_future_cancel(cancelled));
  gate_open();
  conc_executor_destroy(&ex);
  assert_int_equal(conc_executor_submit(&ex, square, I(1), &f), CONC_EINVAL);
  assert_int_equal(conc_executor_shutdown(&ex, true, false), CONC_EINVAL);
  assert_int_equal(result_int(run), 1);
  assert_int_equal(result_int(queued), 9);
  assert_int_equal(conc_future_result(cancelled, CONC_FOREVER, NULL),
                   CONC_ECANCELED);
  conc_future_release(cancelled);
}

/* Steady state recycles future records instead of allocating. */
static void future_records_are_recycled(void **state) {
  (void)state;
  conc_executor_t ex;
  init_ex(&ex, 2);
  enum { N = 3000 };
  static uintptr_t seen[N];
  for (int i = 0; i < N; i++) {
    conc_future_t *f;
    assert_int_equal(conc_executor_submit(&ex, square, I(2), &f), 0);
    seen[i] = (uintptr_t)f;
    assert_int_equal(result_int(f), 4);
  }
  size_t distinct = 0;
  for (int i = 0; i < N; i++) {
    bool dup = false;
    for (int j = 0; j < i && !dup; j++)
      dup = seen[j] == seen[i];
    distinct += !dup;
  }
  assert_true(distinct < 700);
  conc_executor_destroy(&ex);
}

/* X16: at process exit queued work finishes; submit during exit fails. */
static conc_executor_t exit_ex;
static int exit_pipe;

static int exit_task(void *arg, void **result) {
  conc_sleep(0.01);
  char c = 'x';
  return write(exit_pipe, &c, 1) == 1 ? 0 : CONC_EIO;
}

/* Runs first; by the time it submits, the main thread is in exit(). */
static int submit_during_exit(void *arg, void **result) {
  conc_sleep(0.1);
  char c = conc_executor_submit(&exit_ex, exit_task, NULL, NULL) == CONC_ESTATE
               ? 'E'
               : '?';
  return write(exit_pipe, &c, 1) == 1 ? 0 : CONC_EIO;
}

static void process_exit_finishes_queued_work(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    exit_pipe = fds[1];
    conc_executor_init(&exit_ex, &(conc_executor_opts_t){.max_workers = 1});
    conc_executor_submit(&exit_ex, submit_during_exit, NULL, NULL);
    for (int i = 0; i < 8; i++)
      conc_executor_submit(&exit_ex, exit_task, NULL, NULL);
    exit(0);
  }
  close(fds[1]);
  char buf[32];
  size_t n = 0;
  ssize_t r;
  while ((r = read(fds[0], buf + n, sizeof buf - n)) > 0)
    n += (size_t)r;
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(n, 9);
  assert_memory_equal(buf, "Exxxxxxxx", 9);
}

/* ---- issue 13: one call shape ------------------------------------------ */

static int fail_with(void *arg, void **result) {
  *result = I(99); /* ignored: the task failed */
  int code = V(arg);
  return code < 0 ? conc_raise(code, "failed with %d", code) : code;
}

/* raises one code, then returns another: the message is not its own */
static int raise_then_return_other(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_raise(CONC_EIO, "stale");
  return CONC_EPIPE;
}

static int check_failure(conc_executor_t *ex, conc_fn_t fn, int arg,
                         const char *message) {
  conc_future_t *f;
  assert_int_equal(conc_executor_submit(ex, fn, I(arg), &f), 0);
  void *v = I(7);
  int rc = conc_future_result(f, 10, &v);
  assert_ptr_equal(v, I(7)); /* untouched on failure */
  conc_future_error_t e;
  assert_int_equal(conc_future_exception(f, 0, &e), 0);
  assert_int_equal(e.code, rc);
  assert_string_equal(e.message, message);
  conc_future_release(f);
  return rc;
}

/* A task's negative return is the future's exception, with the message of
 * its conc_raise; a positive return is a failure too; a message raised
 * with another code is not attributed. (Before: tasks returned void *
 * and failed through conc_task_fail.) */
static void task_negative_return_and_raise_message_reach_the_future(void **s) {
  (void)s;
  conc_executor_t ex;
  init_ex(&ex, 1);
  assert_int_equal(
      check_failure(&ex, fail_with, CONC_EACCES, "failed with -13"),
      CONC_EACCES);
  assert_int_equal(check_failure(&ex, fail_with, 3, ""), CONC_EFAILED);
  /* CancelledError raised by the task: finished with it, not cancelled */
  conc_future_t *f;
  assert_int_equal(conc_executor_submit(&ex, fail_with, I(CONC_ECANCELED), &f),
                   0);
  assert_int_equal(conc_future_result(f, 10, NULL), CONC_ECANCELED);
  assert_false(conc_future_cancelled(f));
  conc_future_release(f);
  assert_int_equal(check_failure(&ex, raise_then_return_other, 0, ""),
                   CONC_EPIPE);
  conc_executor_destroy(&ex);
}

/* A submit that fails leaves *out as it was (Python leaves the variable
 * alone when submit raises). */
static void failed_submit_leaves_out_untouched(void **s) {
  (void)s;
  conc_executor_t ex;
  init_ex(&ex, 1);
  conc_future_t *f = I(1);
  assert_int_equal(conc_executor_submit(&ex, NULL, NULL, &f), CONC_EINVAL);
  assert_ptr_equal(f, I(1));
  assert_int_equal(conc_executor_shutdown(&ex, true, false), 0);
  assert_int_equal(conc_executor_submit(&ex, square, I(2), &f), CONC_ESTATE);
  assert_ptr_equal(f, I(1));
  conc_map_t m, before;
  memset(&m, 0x5a, sizeof m);
  before = m;
  void *in[] = {I(1)};
  assert_int_equal(conc_executor_map(&ex, square, in, 1, CONC_FOREVER, &m),
                   CONC_ESTATE);
  assert_memory_equal(&m, &before, sizeof m);
  conc_executor_destroy(&ex);
}

/* map's iterator: 0 with each item, then CONC_EEOF, also for no items. */
static void map_next_returns_eeof_after_the_last(void **s) {
  (void)s;
  conc_executor_t ex;
  init_ex(&ex, 2);
  conc_map_t m;
  void *v = I(5);
  assert_int_equal(conc_executor_map(&ex, square, NULL, 0, 1, &m), 0);
  assert_int_equal(conc_map_next(&m, &v), CONC_EEOF);
  assert_ptr_equal(v, I(5));
  conc_map_close(&m);
  void *in[] = {I(2), I(3)};
  assert_int_equal(conc_executor_map(&ex, square, in, 2, 10, &m), 0);
  int sum = 0, rc;
  while ((rc = conc_map_next(&m, &v)) == 0)
    sum += V(v);
  assert_int_equal(rc, CONC_EEOF);
  assert_int_equal(sum, 13);
  conc_map_close(&m);
  conc_executor_destroy(&ex);
}

/* thread_name_prefix "" means the default (Python: prefix or the
 * default); before, the workers were named "_0". */
static void empty_thread_name_prefix_gives_default_names(void **s) {
  (void)s;
  conc_executor_t ex;
  assert_int_equal(conc_executor_init(
                       &ex, &(conc_executor_opts_t){.max_workers = 1,
                                                    .thread_name_prefix = ""}),
                   0);
  const char *prefix = conc_executor_thread_name_prefix(&ex);
  assert_int_equal(strncmp(prefix, "ThreadPoolExecutor-", 19), 0);
  gate_open();
  conc_future_t *f;
  assert_int_equal(conc_executor_submit(&ex, my_name, NULL, &f), 0);
  void *v;
  assert_int_equal(conc_future_result(f, 10, &v), 0);
  char want[64];
  snprintf(want, sizeof want, "%s_0", prefix);
  assert_string_equal(v, want);
  conc_future_release(f);
  conc_executor_destroy(&ex);
}

static int init_fails_with(void *arg) {
  int code = V(arg);
  return code < 0 ? conc_raise(code, "no device %d", 7) : code;
}

/* Runs a pool whose initializer fails with `code`; returns the broken
 * future's message in msg and what was printed on stderr in err. */
static void broken_pool_report(int code, char *msg, size_t mlen, char *err,
                               size_t elen) {
  conc_executor_t ex;
  assert_int_equal(
      conc_executor_init(&ex,
                         &(conc_executor_opts_t){.max_workers = 1,
                                                 .initializer = init_fails_with,
                                                 .initarg = I(code)}),
      0);
  fflush(stderr);
  FILE *tmp = tmpfile();
  int saved = dup(2);
  dup2(fileno(tmp), 2);
  conc_future_t *f;
  /* no worker exists before the first submit: this one is queued */
  assert_int_equal(conc_executor_submit(&ex, square, I(1), &f), 0);
  assert_int_equal(conc_future_result(f, 10, NULL), CONC_EBROKENPOOL);
  conc_future_error_t e;
  assert_int_equal(conc_future_exception(f, 0, &e), 0);
  snprintf(msg, mlen, "%s", e.message);
  conc_future_release(f);
  conc_executor_shutdown(&ex, true, false);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  err[fread(err, 1, elen - 1, tmp)] = '\0';
  fclose(tmp);
  conc_executor_destroy(&ex);
}

/* An initializer's failure breaks the pool and is reported with its own
 * code and conc_raise message, in the log and in the broken futures'
 * message (before: a -1 return read "RuntimeError (CONC_EPERM)" and the
 * futures said nothing of the cause). */
static void initializer_failure_reports_its_code_and_message(void **s) {
  (void)s;
  char msg[256], err[512];
  broken_pool_report(CONC_EACCES, msg, sizeof msg, err, sizeof err);
  assert_non_null(
      strstr(err, "Exception in initializer: PermissionError (CONC_EACCES): "
                  "no device 7"));
  assert_non_null(strstr(msg, "A thread initializer failed"));
  assert_non_null(strstr(msg, "CONC_EACCES: no device 7"));
  /* a positive return is a failure without a message */
  broken_pool_report(1, msg, sizeof msg, err, sizeof err);
  assert_non_null(
      strstr(err, "Exception in initializer: Exception (CONC_EFAILED)"));
  assert_non_null(strstr(msg, "(initializer: CONC_EFAILED)"));
}

CONC_TEST_MAIN(
    cmocka_unit_test(submit_returns_future_with_result),
    cmocka_unit_test(task_failure_carries_code_and_message),
    cmocka_unit_test(map_yields_results_in_input_order),
    cmocka_unit_test(map_failure_at_k_comes_after_earlier_results),
    cmocka_unit_test(map_timeout_from_call_cancels_pending_not_running),
    cmocka_unit_test(map_close_cancels_what_has_not_started),
    cmocka_unit_test(map_submits_everything_without_iteration),
    cmocka_unit_test(max_workers_rules),
    cmocka_unit_test(workers_start_lazily_up_to_max),
    cmocka_unit_test(idle_worker_is_reused),
    cmocka_unit_test(worker_names_use_prefix),
    cmocka_unit_test(worker_names_default),
    cmocka_unit_test(submit_after_shutdown_is_estate),
    cmocka_unit_test(shutdown_wait_runs_queued_work_and_is_idempotent),
    cmocka_unit_test(scoped_block_shuts_down_on_exit),
    cmocka_unit_test(shutdown_nowait_returns_at_once_work_completes),
    cmocka_unit_test(cancel_futures_cancels_pending_running_finish),
    cmocka_unit_test(initializer_runs_once_per_worker_before_tasks),
    cmocka_unit_test(failing_initializer_breaks_the_pool),
    cmocka_unit_test(task_submits_to_its_own_pool),
    cmocka_unit_test(concurrent_submitters_lose_nothing),
    cmocka_unit_test(shutdown_races_submitters_without_losing_tasks),
    cmocka_unit_test(burst_wakes_every_sleeping_worker_it_needs),
    cmocka_unit_test(spaced_submits_from_many_threads_all_complete),
    cmocka_unit_test(cancel_futures_while_many_threads_submit),
    cmocka_unit_test(fork_from_pool_thread_works),
    cmocka_unit_test(bad_input_and_futures_after_destroy),
    cmocka_unit_test(future_records_are_recycled),
    cmocka_unit_test(process_exit_finishes_queued_work),
    cmocka_unit_test(task_negative_return_and_raise_message_reach_the_future),
    cmocka_unit_test(failed_submit_leaves_out_untouched),
    cmocka_unit_test(map_next_returns_eeof_after_the_last),
    cmocka_unit_test(empty_thread_name_prefix_gives_default_names),
    cmocka_unit_test(initializer_failure_reports_its_code_and_message))
