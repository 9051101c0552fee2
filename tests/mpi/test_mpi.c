/*
 * libconc_mpi: the task registry, the start-up agreement, and every Pool
 * and ProcessPoolExecutor call on the MPI transport. ctest runs this
 * program under `mpirun -np 3` (rank 0 runs the tests, ranks 1-2 serve;
 * also with MPI_THREAD_SERIALIZED, the fallback), alone (local mode) and in
 * spawn mode, and every run must give the same results.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/mpi.h"
#include "conc/pool.h"
#include "conc/time.h"
#include "mpi-int.h"
#include "pool-int.h"

static int twice(const void *arg, size_t len, void *res, size_t cap,
                 size_t *rlen) {
  (void)len;
  (void)cap;
  int64_t x;
  memcpy(&x, arg, sizeof x);
  x *= 2;
  memcpy(res, &x, sizeof x);
  *rlen = sizeof x;
  return 0;
}

/* Fails every item divisible by 7 with a message naming it. */
static int picky(const void *arg, size_t len, void *res, size_t cap,
                 size_t *rlen) {
  int64_t x;
  memcpy(&x, arg, sizeof x);
  if (x % 7 == 0)
    return conc_raise(CONC_EINVAL, "%lld is a multiple of 7", (long long)x);
  return twice(arg, len, res, cap, rlen);
}

/* Claims a result larger than its buffer. */
static int too_big(const void *arg, size_t len, void *res, size_t cap,
                   size_t *rlen) {
  (void)arg;
  (void)len;
  (void)res;
  *rlen = cap + 1;
  return 0;
}

static int unregistered(const void *arg, size_t len, void *res, size_t cap,
                        size_t *rlen) {
  return twice(arg, len, res, cap, rlen);
}

/* Waits (up to 30 s) for the file named by its argument to exist: a task
 * that runs until the test lets it go, on whichever rank or process. */
static int gate(const void *arg, size_t len, void *res, size_t cap,
                size_t *rlen) {
  (void)len, (void)res, (void)cap;
  *rlen = 0;
  for (int i = 0; i < 30000; i++) {
    if (access(arg, F_OK) == 0)
      return 0;
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  return conc_raise(CONC_ETIMEDOUT, "gate %s never opened", (const char *)arg);
}

/* The initializer's argument, kept on the worker (CONC_INIT copies it). */
static int64_t base;

static int set_base(void *arg) {
  memcpy(&base, arg, sizeof base);
  return 0;
}

static int refuse_setup(void *arg) {
  (void)arg;
  return conc_raise(CONC_EACCES, "no configuration file");
}

static int add_base(const void *arg, size_t len, void *res, size_t cap,
                    size_t *rlen) {
  (void)len, (void)cap;
  int64_t x;
  memcpy(&x, arg, sizeof x);
  x += base;
  memcpy(res, &x, sizeof x);
  *rlen = sizeof x;
  return 0;
}

CONC_TASK(twice, twice);
CONC_TASK(picky, picky);
CONC_TASK(too_big, too_big);
CONC_TASK(gate, gate);
CONC_TASK(add_base, add_base);
CONC_INIT(set_base, set_base, sizeof(int64_t));
CONC_INIT(refuse_setup, refuse_setup, 0);

/* The same call on MPI ranks or, in local mode, on a local Pool: the
 * program does not know which. */
static int run_map(conc_pool_func_t fn, const int64_t *in, size_t n,
                   int64_t *out, size_t chunk, int *errors,
                   conc_pool_error_t *error) {
  conc_pool_t pool;
  int rc = conc_mpi_pool_init(&pool, &(conc_pool_opts_t){.processes = 2});
  if (rc != 0)
    return rc;
  rc = conc_pool_map(
      &pool, fn, in, n, sizeof *in, sizeof *out,
      &(conc_pool_map_opts_t){.chunksize = chunk, .errors = errors}, out,
      error);
  conc_pool_close(&pool);
  conc_pool_join(&pool);
  conc_pool_destroy(&pool);
  return rc;
}

static int64_t *iota(size_t n) {
  int64_t *v = malloc(n * sizeof *v);
  assert_non_null(v);
  for (size_t i = 0; i < n; i++)
    v[i] = (int64_t)i;
  return v;
}

static void test_map_doubles_every_item_at_chunksize_1_and_64(void **st) {
  (void)st;
  size_t n = 20000;
  int64_t *in = iota(n), *out = calloc(n, sizeof *out);
  for (size_t chunk = 1; chunk <= 64; chunk *= 64) {
    memset(out, 0, n * sizeof *out);
    assert_int_equal(run_map(twice, in, n, out, chunk, NULL, NULL), 0);
    for (size_t i = 0; i < n; i++)
      assert_int_equal(out[i], 2 * (int64_t)i);
  }
  free(in);
  free(out);
}

static void test_map_keeps_good_results_when_items_fail(void **st) {
  (void)st;
  size_t n = 1000;
  int64_t *in = iota(n), *out = calloc(n, sizeof *out);
  int *errors = calloc(n, sizeof *errors);
  conc_pool_error_t e;
  int rc = run_map(picky, in, n, out, 10, errors, &e);
  assert_int_equal(rc, CONC_EINVAL);
  assert_int_equal(e.code, CONC_EINVAL);
  assert_int_equal(e.index, 0);
  assert_string_equal(e.message, "0 is a multiple of 7");
  for (size_t i = 0; i < n; i++) {
    if (i % 7 == 0) {
      assert_int_equal(errors[i], CONC_EINVAL);
      assert_int_equal(out[i], 0); /* a failed item's slot is zeroed */
    } else {
      assert_int_equal(errors[i], 0);
      assert_int_equal(out[i], 2 * (int64_t)i);
    }
  }
  free(in);
  free(out);
  free(errors);
}

static void test_result_larger_than_its_buffer_fails_the_item(void **st) {
  (void)st;
  int64_t in[3] = {1, 2, 3}, out[3];
  int errors[3];
  assert_int_equal(run_map(too_big, in, 3, out, 1, errors, NULL),
                   CONC_EMSGSIZE);
  for (int i = 0; i < 3; i++)
    assert_int_equal(errors[i], CONC_EMSGSIZE);
}

static void test_unregistered_function_is_refused(void **st) {
  (void)st;
  if (!conc_mpi_active())
    skip(); /* the local Pool runs any function */
  int64_t in[1] = {1}, out[1];
  assert_int_equal(run_map(unregistered, in, 1, out, 1, NULL, NULL),
                   CONC_EINVAL);
}

static void test_apply_and_the_pool_life_cycle_work_unchanged(void **st) {
  (void)st;
  conc_pool_t pool;
  assert_int_equal(conc_mpi_pool_init(&pool, NULL), 0);
  assert_int_equal(conc_pool_enter(&pool), 0);
  assert_true(conc_pool_processes(&pool) >= 1);
  int64_t x = 21, r = 0;
  size_t len = 0;
  assert_int_equal(
      conc_pool_apply(&pool, twice, &x, sizeof x, &r, sizeof r, &len, NULL), 0);
  assert_int_equal(r, 42);
  assert_int_equal(len, sizeof r);
  conc_pool_error_t e;
  x = 14;
  assert_int_equal(
      conc_pool_apply(&pool, picky, &x, sizeof x, &r, sizeof r, NULL, &e),
      CONC_EINVAL);
  assert_string_equal(e.message, "14 is a multiple of 7");
  int64_t in[4] = {1, 2, 3, 4}, out[4];
  assert_int_equal(conc_pool_starmap(&pool, twice, in, 4, sizeof *in,
                                     sizeof *out, NULL, out, NULL),
                   0);
  assert_int_equal(out[3], 8);
  assert_int_equal(conc_pool_join(&pool), CONC_ESTATE); /* still running */
  assert_int_equal(conc_pool_close(&pool), 0);
  assert_int_equal(conc_pool_enter(&pool), CONC_ESTATE);
  assert_int_equal(
      conc_pool_apply(&pool, twice, &x, sizeof x, &r, sizeof r, NULL, NULL),
      CONC_ESTATE);
  assert_int_equal(conc_pool_join(&pool), 0);
  conc_pool_destroy(&pool);
}

static int init_noop(void *arg) {
  (void)arg;
  return 0;
}

static void test_unregistered_initializer_is_refused(void **st) {
  (void)st;
  if (!conc_mpi_active())
    skip(); /* a forked worker runs any function */
  conc_pool_t pool;
  assert_int_equal(
      conc_mpi_pool_init(&pool, &(conc_pool_opts_t){.initializer = init_noop}),
      CONC_EINVAL);
  assert_string_equal(conc_raised_message(CONC_EINVAL),
                      "the initializer is not registered with CONC_INIT");
}

static void test_registry_names_tasks_and_ids_follow_name_order(void **st) {
  (void)st;
  assert_string_equal(conc_mpi_task_name(twice), "twice");
  assert_string_equal(conc_mpi_task_name(picky), "picky");
  assert_null(conc_mpi_task_name(unregistered));
  assert_int_equal(conc__mpi_task_count(), 8);
  /* sorted by name: add_base, echo, gate, picky, refuse_setup, set_base,
   * too_big, twice; initializers are no tasks */
  assert_ptr_equal(conc__mpi_task_fn(0), add_base);
  assert_ptr_equal(conc__mpi_task_fn(3), picky);
  assert_null(conc__mpi_task_fn(4));
  assert_ptr_equal(conc__mpi_task_fn(7), twice);
  assert_int_equal(conc__mpi_task_id(too_big), 6);
  size_t as = 0;
  assert_int_equal(conc__mpi_init_id(set_base, &as), 5);
  assert_int_equal(as, sizeof(int64_t));
  assert_int_equal(conc__mpi_init_id(init_noop, &as), -1);
}

static void test_identity_carries_the_build_id_and_table(void **st) {
  (void)st;
  conc__mpi_ident_t a, b;
  conc__mpi_ident(&a);
  conc__mpi_ident(&b);
  assert_memory_equal(&a, &b, sizeof a);
  assert_int_equal(a.ntasks, 8);
  assert_true(strlen(a.build_id) >= 16); /* gcc and clang emit one */
}

static void test_mode_matches_how_the_program_was_started(void **st) {
  (void)st;
  bool under = getenv("OMPI_COMM_WORLD_SIZE") != NULL ||
               getenv("CONC_MPI_SPAWN") != NULL;
  assert_int_equal(conc_mpi_active(), under);
  assert_int_equal(conc_mpi_workers(), under ? 2 : 0);
  assert_int_equal(CONC_MPI_MAIN(NULL, NULL), CONC_ESTATE);
}

/* ---- asynchronous calls, overlap, initializers, the executor ------------ */

static conc_pool_t *make_pool(conc_pool_t *pool) {
  assert_int_equal(conc_mpi_pool_init(pool, NULL), 0);
  return pool;
}

static void close_pool(conc_pool_t *pool) {
  assert_int_equal(conc_pool_close(pool), 0);
  assert_int_equal(conc_pool_join(pool), 0);
  conc_pool_destroy(pool);
}

struct seen {
  int calls, errors;
  int64_t value;
  conc_pool_error_t detail;
};

static void on_result(conc_async_result_t *r, void *arg) {
  struct seen *s = arg;
  s->calls++;
  const void *v = conc_async_result_value(r, NULL);
  if (v)
    memcpy(&s->value, v, sizeof s->value);
}

static void on_error(conc_async_result_t *r, void *arg) {
  struct seen *s = arg;
  s->errors++;
  conc_async_result_error(r, 0, &s->detail);
}

static void test_apply_async_runs_its_callback_with_the_result(void **st) {
  (void)st;
  conc_pool_t pool;
  make_pool(&pool);
  struct seen s = {0};
  int64_t x = 21, r = 0;
  conc_async_result_t *res;
  assert_int_equal(conc_pool_apply_async(
                       &pool, twice, &x, sizeof x, sizeof r,
                       &(conc_pool_async_opts_t){.callback = on_result,
                                                 .error_callback = on_error,
                                                 .callback_arg = &s},
                       &res),
                   0);
  assert_int_equal(conc_async_result_get(res, CONC_FOREVER, &r, sizeof r), 0);
  assert_int_equal(r, 42);
  assert_int_equal(s.calls, 1); /* callbacks ran before the result was ready */
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.value, 42);
  assert_int_equal(conc_async_result_successful(res), 1);
  conc_async_result_release(res);
  close_pool(&pool);
}

static void test_apply_async_error_callback_gets_the_detail(void **st) {
  (void)st;
  conc_pool_t pool;
  make_pool(&pool);
  struct seen s = {0};
  int64_t x = 14, r = -1;
  conc_async_result_t *res;
  assert_int_equal(conc_pool_apply_async(
                       &pool, picky, &x, sizeof x, sizeof r,
                       &(conc_pool_async_opts_t){.callback = on_result,
                                                 .error_callback = on_error,
                                                 .callback_arg = &s},
                       &res),
                   0);
  assert_int_equal(conc_async_result_get(res, CONC_FOREVER, &r, sizeof r),
                   CONC_EINVAL);
  assert_int_equal(s.calls, 0);
  assert_int_equal(s.errors, 1);
  assert_int_equal(s.detail.code, CONC_EINVAL);
  assert_string_equal(s.detail.message, "14 is a multiple of 7");
  conc_pool_error_t e;
  assert_int_equal(conc_async_result_error(res, 0, &e), 0);
  assert_string_equal(e.message, "14 is a multiple of 7");
  assert_int_equal(conc_async_result_successful(res), 0);
  conc_async_result_release(res);
  close_pool(&pool);
}

static void test_map_async_with_chunksize_delivers_every_result(void **st) {
  (void)st;
  conc_pool_t pool;
  make_pool(&pool);
  size_t n = 5000;
  int64_t *in = iota(n), *out = calloc(n, sizeof *out);
  struct seen s = {0};
  conc_async_result_t *res;
  assert_int_equal(
      conc_pool_map_async(&pool, twice, in, n, sizeof *in, sizeof *out,
                          &(conc_pool_async_opts_t){.callback = on_result,
                                                    .callback_arg = &s,
                                                    .chunksize = 7},
                          &res),
      0);
  free(in); /* the pool copied the arguments */
  assert_int_equal(
      conc_async_result_get(res, CONC_FOREVER, out, n * sizeof *out), 0);
  assert_int_equal(s.calls, 1);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(out[i], 2 * (int64_t)i);
  assert_int_equal(conc__pool_chunksize(res), 7);
  conc_async_result_release(res);
  free(out);
  close_pool(&pool);
}

static void test_imap_yields_results_in_order_with_failures(void **st) {
  (void)st;
  conc_pool_t pool;
  make_pool(&pool);
  size_t n = 200;
  int64_t *in = iota(n);
  conc_imap_t *it;
  assert_int_equal(
      conc_pool_imap(&pool, picky, in, n, sizeof *in, sizeof(int64_t), 3, &it),
      0);
  for (size_t i = 0; i < n; i++) {
    int64_t v = -1;
    size_t idx = n;
    int rc = conc_imap_next(it, CONC_FOREVER, &v, &idx);
    if (i % 7 == 0) {
      assert_int_equal(rc, CONC_EINVAL);
      conc_pool_error_t e;
      assert_int_equal(conc_imap_error(it, &e), 0);
      assert_int_equal(e.index, i);
      char want[64];
      snprintf(want, sizeof want, "%zu is a multiple of 7", i);
      assert_string_equal(e.message, want);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(idx, i);
      assert_int_equal(v, 2 * (int64_t)i);
    }
  }
  assert_int_equal(conc_imap_next(it, CONC_FOREVER, NULL, NULL), CONC_EEOF);
  conc_imap_release(it);
  free(in);
  close_pool(&pool);
}

static void test_imap_unordered_yields_every_item_once(void **st) {
  (void)st;
  conc_pool_t pool;
  make_pool(&pool);
  size_t n = 1000;
  int64_t *in = iota(n);
  char *seen = calloc(n, 1);
  conc_imap_t *it;
  assert_int_equal(conc_pool_imap_unordered(&pool, twice, in, n, sizeof *in,
                                            sizeof(int64_t), 4, &it),
                   0);
  int64_t v;
  size_t idx, got = 0;
  while (conc_imap_next(it, CONC_FOREVER, &v, &idx) == 0) {
    assert_true(idx < n);
    assert_false(seen[idx]);
    seen[idx] = 1;
    assert_int_equal(v, 2 * (int64_t)idx);
    got++;
  }
  assert_int_equal(got, n);
  conc_imap_release(it);
  free(in);
  free(seen);
  close_pool(&pool);
}

/* A gate file that the test opens: unique per run (mpirun runs and local
 * runs may overlap under ctest -j). */
static void gate_path(char *buf, size_t n, const char *what) {
  snprintf(buf, n, "/tmp/conc_test_mpi_%s_%ld", what, (long)getpid());
  unlink(buf);
}

static void open_gate(const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fclose(f);
}

static void test_calls_on_one_pool_overlap(void **st) {
  (void)st;
  conc_pool_t pool;
  make_pool(&pool);
  char path[64];
  gate_path(path, sizeof path, "overlap");
  conc_async_result_t *held;
  assert_int_equal(conc_pool_apply_async(&pool, gate, path, strlen(path) + 1, 0,
                                         NULL, &held),
                   0);
  /* The gate holds one worker until we open it; a call made meanwhile runs
   * on the other one (one call at a time would wait for the gate). */
  int64_t x = 5, r = 0;
  assert_int_equal(
      conc_pool_apply(&pool, twice, &x, sizeof x, &r, sizeof r, NULL, NULL), 0);
  assert_int_equal(r, 10);
  assert_false(conc_async_result_ready(held));
  open_gate(path);
  assert_int_equal(conc_async_result_get(held, CONC_FOREVER, NULL, 0), 0);
  conc_async_result_release(held);
  unlink(path);
  close_pool(&pool);
}

struct mapper {
  conc_pool_t *pool;
  int64_t mul;
  int rc;
  bool ok;
};

static void *map_thread(void *arg) {
  struct mapper *m = arg;
  size_t n = 3000;
  int64_t *in = iota(n), *out = calloc(n, sizeof *out);
  for (size_t i = 0; i < n; i++)
    in[i] *= m->mul;
  m->rc = conc_pool_map(m->pool, twice, in, n, sizeof *in, sizeof *out,
                        &(conc_pool_map_opts_t){.chunksize = 3}, out, NULL);
  m->ok = true;
  for (size_t i = 0; i < n; i++)
    m->ok = m->ok && out[i] == 2 * m->mul * (int64_t)i;
  free(in);
  free(out);
  return NULL;
}

static void test_maps_from_two_threads_get_their_own_results(void **st) {
  (void)st;
  conc_pool_t pool;
  make_pool(&pool);
  struct mapper a = {&pool, 1, -1, false}, b = {&pool, -3, -1, false};
  pthread_t ta, tb;
  assert_int_equal(pthread_create(&ta, NULL, map_thread, &a), 0);
  assert_int_equal(pthread_create(&tb, NULL, map_thread, &b), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  assert_int_equal(a.rc, 0);
  assert_int_equal(b.rc, 0);
  assert_true(a.ok);
  assert_true(b.ok);
  close_pool(&pool);
}

static void test_each_worker_rank_keeps_two_chunks_in_flight(void **st) {
  (void)st;
  if (!conc_mpi_active())
    skip(); /* the local Pool's lanes are test_pool's */
  int64_t *in = iota(2000), *out = calloc(2000, sizeof *out);
  assert_int_equal(run_map(twice, in, 2000, out, 1, NULL, NULL), 0);
  assert_true(conc__mpi_max_in_flight() >= 2);
  free(in);
  free(out);
}

static void test_initializer_runs_on_every_worker_before_its_tasks(void **st) {
  (void)st;
  int64_t b = 1000;
  conc_pool_t pool;
  assert_int_equal(
      conc_mpi_pool_init(
          &pool, &(conc_pool_opts_t){.initializer = set_base, .initarg = &b}),
      0);
  b = 0; /* the workers have their copy */
  size_t n = 400;
  int64_t *in = iota(n), *out = calloc(n, sizeof *out);
  assert_int_equal(
      conc_pool_map(&pool, add_base, in, n, sizeof *in, sizeof *out,
                    &(conc_pool_map_opts_t){.chunksize = 1}, out, NULL),
      0);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(out[i], (int64_t)i + 1000);
  close_pool(&pool);
  free(in);
  free(out);
}

static void test_failing_initializer_breaks_the_pool(void **st) {
  (void)st;
  conc_pool_t pool;
  assert_int_equal(conc_mpi_pool_init(
                       &pool, &(conc_pool_opts_t){.initializer = refuse_setup}),
                   0);
  int64_t x = 3, r;
  conc_pool_error_t e;
  assert_int_equal(
      conc_pool_apply(&pool, twice, &x, sizeof x, &r, sizeof r, NULL, &e),
      CONC_EBROKENPOOL);
  assert_non_null(strstr(e.message, "initializer failed"));
  assert_non_null(strstr(e.message, "no configuration file"));
  assert_int_equal(
      conc_pool_apply(&pool, twice, &x, sizeof x, &r, sizeof r, NULL, NULL),
      CONC_EBROKENPOOL);
  assert_int_equal(conc_pool_join(&pool), 0);
  conc_pool_destroy(&pool);
}

static void test_terminate_fails_unfinished_work_at_once(void **st) {
  (void)st;
  conc_pool_t pool;
  make_pool(&pool);
  char path[64];
  gate_path(path, sizeof path, "terminate");
  conc_async_result_t *held;
  assert_int_equal(conc_pool_apply_async(&pool, gate, path, strlen(path) + 1, 0,
                                         NULL, &held),
                   0);
  assert_int_equal(conc_pool_terminate(&pool), 0);
  assert_int_equal(conc_async_result_get(held, CONC_FOREVER, NULL, 0),
                   CONC_ECANCELED);
  conc_async_result_release(held);
  open_gate(path); /* a rank cannot be killed: destroy waits for the task */
  assert_int_equal(conc_pool_join(&pool), 0);
  conc_pool_destroy(&pool);
  unlink(path);
}

static int64_t future_value(conc_future_t *f) {
  int64_t v = -1;
  size_t len = 0;
  assert_int_equal(
      conc_process_future_result(f, CONC_FOREVER, &v, sizeof v, &len), 0);
  assert_int_equal(len, sizeof v);
  return v;
}

static void test_executor_submit_wait_as_completed_and_map(void **st) {
  (void)st;
  conc_process_executor_t ex;
  assert_int_equal(conc_mpi_process_executor_init(&ex, NULL), 0);
  enum { N = 12 };
  conc_future_t *fs[N], *done[N], *not_done[N];
  for (int64_t i = 0; i < N; i++)
    assert_int_equal(conc_process_executor_submit(&ex, picky, &i, sizeof i,
                                                  sizeof(int64_t), &fs[i]),
                     0);
  conc_wait_result_t res = {.done = done, .not_done = not_done};
  assert_int_equal(
      conc_futures_wait(fs, N, CONC_FOREVER, CONC_ALL_COMPLETED, &res), 0);
  assert_int_equal(res.ndone, N);
  conc_as_completed_t ac;
  assert_int_equal(conc_as_completed_init(&ac, fs, N, CONC_FOREVER), 0);
  conc_future_t *f;
  int given = 0;
  while (conc_as_completed_next(&ac, &f) == 0)
    given++;
  conc_as_completed_destroy(&ac);
  assert_int_equal(given, N);
  for (int64_t i = 0; i < N; i++) {
    if (i % 7) {
      assert_int_equal(future_value(fs[i]), 2 * i);
    } else {
      assert_int_equal(
          conc_process_future_result(fs[i], CONC_FOREVER, NULL, 0, NULL),
          CONC_EINVAL);
      conc_pool_error_t e;
      assert_int_equal(conc_process_future_error(fs[i], &e), 0);
      char want[64];
      snprintf(want, sizeof want, "%lld is a multiple of 7", (long long)i);
      assert_string_equal(e.message, want);
    }
    conc_future_release(fs[i]);
  }
  int64_t in[50];
  for (int i = 0; i < 50; i++)
    in[i] = i;
  conc_imap_t *it;
  assert_int_equal(conc_process_executor_map(
                       &ex, twice, in, 50, sizeof *in, sizeof(int64_t),
                       &(conc_process_map_opts_t){.chunksize = 4}, &it),
                   0);
  int64_t v;
  size_t idx, k = 0;
  while (conc_imap_next(it, CONC_FOREVER, &v, &idx) == 0) {
    assert_int_equal(idx, k++);
    assert_int_equal(v, 2 * (int64_t)idx);
  }
  assert_int_equal(k, 50);
  conc_imap_release(it);
  assert_int_equal(conc_process_executor_shutdown(&ex, true, false), 0);
  conc_process_executor_destroy(&ex);
}

static void test_executor_runs_its_initializer_over_mpi(void **st) {
  (void)st;
  int64_t b = 7;
  conc_process_executor_t ex;
  assert_int_equal(
      conc_mpi_process_executor_init(
          &ex, &(conc_process_executor_opts_t){.initializer = set_base,
                                               .initarg = &b}),
      0);
  int64_t x = 1;
  conc_future_t *f;
  assert_int_equal(conc_process_executor_submit(&ex, add_base, &x, sizeof x,
                                                sizeof(int64_t), &f),
                   0);
  assert_int_equal(future_value(f), 8);
  conc_future_release(f);
  conc_process_executor_destroy(&ex);
}

/* Echoes its argument, whatever its size. */
static int echo(const void *arg, size_t len, void *res, size_t cap,
                size_t *rlen) {
  if (len > cap)
    return conc_raise(CONC_EMSGSIZE, "%zu bytes do not fit %zu", len, cap);
  memcpy(res, arg, len);
  *rlen = len;
  return 0;
}
CONC_TASK(echo, echo);

static void test_large_arguments_and_results_cross_intact(void **st) {
  (void)st;
  enum { N = 6, SIZE = 200 * 1024 }; /* far over MPI's eager limit */
  unsigned char *in = malloc((size_t)N * SIZE), *out = malloc((size_t)N * SIZE);
  for (size_t i = 0; i < (size_t)N * SIZE; i++)
    in[i] = (unsigned char)(i * 7 + i / SIZE);
  size_t lens[N];
  conc_pool_t pool;
  make_pool(&pool);
  assert_int_equal(conc_pool_map(&pool, echo, in, N, SIZE, SIZE,
                                 &(conc_pool_map_opts_t){.chunksize = 2,
                                                         .result_lens = lens},
                                 out, NULL),
                   0);
  assert_memory_equal(in, out, (size_t)N * SIZE);
  for (int i = 0; i < N; i++)
    assert_int_equal(lens[i], SIZE);
  close_pool(&pool);
  free(in);
  free(out);
}

static void test_two_pools_share_the_worker_ranks(void **st) {
  (void)st;
  int64_t b = 50;
  conc_pool_t p1, p2;
  make_pool(&p1);
  assert_int_equal(
      conc_mpi_pool_init(
          &p2, &(conc_pool_opts_t){.initializer = set_base, .initarg = &b}),
      0);
  size_t n = 500;
  int64_t *in = iota(n), *o1 = calloc(n, sizeof *o1), *o2 = calloc(n, 8);
  conc_async_result_t *r1, *r2;
  assert_int_equal(
      conc_pool_map_async(&p1, twice, in, n, sizeof *in, 8,
                          &(conc_pool_async_opts_t){.chunksize = 1}, &r1),
      0);
  assert_int_equal(
      conc_pool_map_async(&p2, add_base, in, n, sizeof *in, 8,
                          &(conc_pool_async_opts_t){.chunksize = 1}, &r2),
      0);
  assert_int_equal(conc_async_result_get(r2, CONC_FOREVER, o2, n * 8), 0);
  assert_int_equal(conc_async_result_get(r1, CONC_FOREVER, o1, n * 8), 0);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(o1[i], 2 * (int64_t)i);
    assert_int_equal(o2[i], (int64_t)i + 50);
  }
  conc_async_result_release(r1);
  conc_async_result_release(r2);
  close_pool(&p2);
  close_pool(&p1);
  free(in);
  free(o1);
  free(o2);
}

/* maxtasksperchild: the worker is replaced after two chunks; over MPI a
 * new logical worker on the same rank runs the initializer again. */
static void test_replaced_workers_run_the_initializer_again(void **st) {
  (void)st;
  int64_t b = 9;
  conc_pool_t pool;
  assert_int_equal(
      conc_mpi_pool_init(&pool, &(conc_pool_opts_t){.initializer = set_base,
                                                    .initarg = &b,
                                                    .maxtasksperchild = 2}),
      0);
  size_t n = 40;
  int64_t *in = iota(n), *out = calloc(n, sizeof *out);
  assert_int_equal(
      conc_pool_map(&pool, add_base, in, n, sizeof *in, sizeof *out,
                    &(conc_pool_map_opts_t){.chunksize = 1}, out, NULL),
      0);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(out[i], (int64_t)i + 9);
  close_pool(&pool);
  free(in);
  free(out);
}

static void test_typed_map_and_starmap_async_match_the_byte_map(void **st) {
  (void)st;
  conc_pool_t pool;
  make_pool(&pool);
  size_t n = 3000;
  int64_t *in = iota(n), *a = calloc(n, 8), *b = calloc(n, 8);
  int *errors = calloc(n, sizeof *errors);
  assert_int_equal(
      conc_pool_map_typed(&pool, picky, in, n, sizeof *in, 8,
                          &(conc_pool_map_opts_t){.errors = errors}, a, NULL),
      CONC_EINVAL);
  conc_async_result_t *r;
  assert_int_equal(
      conc_pool_starmap_async(&pool, twice, in, n, sizeof *in, 8, NULL, &r), 0);
  assert_int_equal(conc_async_result_get(r, CONC_FOREVER, b, n * 8), 0);
  conc_async_result_release(r);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(errors[i], i % 7 ? 0 : CONC_EINVAL);
    assert_int_equal(a[i], i % 7 ? 2 * (int64_t)i : 0);
    assert_int_equal(b[i], 2 * (int64_t)i);
  }
  close_pool(&pool);
  free(in);
  free(a);
  free(b);
  free(errors);
}

int main(int argc, char **argv) {
  int rc = CONC_MPI_MAIN(&argc, &argv);
  if (rc != 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_map_doubles_every_item_at_chunksize_1_and_64),
      cmocka_unit_test(test_map_keeps_good_results_when_items_fail),
      cmocka_unit_test(test_result_larger_than_its_buffer_fails_the_item),
      cmocka_unit_test(test_unregistered_function_is_refused),
      cmocka_unit_test(test_apply_and_the_pool_life_cycle_work_unchanged),
      cmocka_unit_test(test_unregistered_initializer_is_refused),
      cmocka_unit_test(test_apply_async_runs_its_callback_with_the_result),
      cmocka_unit_test(test_apply_async_error_callback_gets_the_detail),
      cmocka_unit_test(test_map_async_with_chunksize_delivers_every_result),
      cmocka_unit_test(test_imap_yields_results_in_order_with_failures),
      cmocka_unit_test(test_imap_unordered_yields_every_item_once),
      cmocka_unit_test(test_calls_on_one_pool_overlap),
      cmocka_unit_test(test_maps_from_two_threads_get_their_own_results),
      cmocka_unit_test(test_each_worker_rank_keeps_two_chunks_in_flight),
      cmocka_unit_test(test_initializer_runs_on_every_worker_before_its_tasks),
      cmocka_unit_test(test_failing_initializer_breaks_the_pool),
      cmocka_unit_test(test_terminate_fails_unfinished_work_at_once),
      cmocka_unit_test(test_executor_submit_wait_as_completed_and_map),
      cmocka_unit_test(test_executor_runs_its_initializer_over_mpi),
      cmocka_unit_test(test_large_arguments_and_results_cross_intact),
      cmocka_unit_test(test_two_pools_share_the_worker_ranks),
      cmocka_unit_test(test_replaced_workers_run_the_initializer_again),
      cmocka_unit_test(test_typed_map_and_starmap_async_match_the_byte_map),
      cmocka_unit_test(test_registry_names_tasks_and_ids_follow_name_order),
      cmocka_unit_test(test_identity_carries_the_build_id_and_table),
      cmocka_unit_test(test_mode_matches_how_the_program_was_started),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
