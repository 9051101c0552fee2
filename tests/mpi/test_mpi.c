/*
 * libconc_mpi: the task registry, the start-up agreement and the engine
 * that deals chunks to worker ranks. ctest runs this program twice: under
 * `mpirun -np 3` (rank 0 runs the tests, ranks 1-2 serve) and alone (local
 * mode), and both runs must give the same results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conc/error.h"
#include "conc/mpi.h"
#include "conc/pool.h"
#include "mpi-int.h"

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

CONC_TASK(twice, twice);
CONC_TASK(picky, picky);
CONC_TASK(too_big, too_big);

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

static void test_async_calls_answer_enosys_over_mpi(void **st) {
  (void)st;
  if (!conc_mpi_active())
    skip(); /* the local Pool has them */
  conc_pool_t pool;
  assert_int_equal(conc_mpi_pool_init(&pool, NULL), 0);
  int64_t x = 1;
  conc_async_result_t *res = NULL;
  assert_int_equal(
      conc_pool_apply_async(&pool, twice, &x, sizeof x, sizeof x, NULL, &res),
      CONC_ENOSYS);
  assert_null(res);
  conc_pool_destroy(&pool);
}

static int init_noop(void *arg) {
  (void)arg;
  return 0;
}

static void test_initializer_is_refused_over_mpi(void **st) {
  (void)st;
  if (!conc_mpi_active())
    skip();
  conc_pool_t pool;
  assert_int_equal(
      conc_mpi_pool_init(&pool, &(conc_pool_opts_t){.initializer = init_noop}),
      CONC_ENOSYS);
}

static void test_registry_names_tasks_and_ids_follow_name_order(void **st) {
  (void)st;
  assert_string_equal(conc_mpi_task_name(twice), "twice");
  assert_string_equal(conc_mpi_task_name(picky), "picky");
  assert_null(conc_mpi_task_name(unregistered));
  assert_int_equal(conc__mpi_task_count(), 3);
  /* sorted by name: picky, too_big, twice */
  assert_ptr_equal(conc__mpi_task_fn(0), picky);
  assert_ptr_equal(conc__mpi_task_fn(2), twice);
  assert_int_equal(conc__mpi_task_id(too_big), 1);
}

static void test_identity_carries_the_build_id_and_table(void **st) {
  (void)st;
  conc__mpi_ident_t a, b;
  conc__mpi_ident(&a);
  conc__mpi_ident(&b);
  assert_memory_equal(&a, &b, sizeof a);
  assert_int_equal(a.ntasks, 3);
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
      cmocka_unit_test(test_async_calls_answer_enosys_over_mpi),
      cmocka_unit_test(test_initializer_is_refused_over_mpi),
      cmocka_unit_test(test_registry_names_tasks_and_ids_follow_name_order),
      cmocka_unit_test(test_identity_carries_the_build_id_and_table),
      cmocka_unit_test(test_mode_matches_how_the_program_was_started),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
