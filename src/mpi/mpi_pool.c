/*
 * conc_mpi_pool_init: a conc_pool_t whose items run on the worker ranks
 * (through the Pool's remote-engine hook, src/pool_remote.c), or, in local
 * mode, an ordinary Pool.
 * Locking: none here; the engine serialises calls (mpi_engine.c).
 */
#include "conc/error.h"
#include "mpi-int.h"
#include "pool-int.h"

static int run(void *ctx, conc_pool_func_t fn, const void *in, size_t n,
               size_t arg_size, size_t result_size, size_t chunksize, void *out,
               int *errors, size_t *result_lens, conc_pool_error_t *item_errors,
               conc_pool_error_t *error) {
  (void)ctx;
  return conc__mpi_run(fn, in, n, arg_size, result_size, chunksize, out, errors,
                       result_lens, item_errors, error);
}

static int workers(void *ctx) {
  (void)ctx;
  return conc__mpi_workers_();
}

int conc_mpi_pool_init(conc_pool_t *pool, const conc_pool_opts_t *opts) {
  if (!pool)
    return CONC_EINVAL;
  if (!conc_mpi_active())
    return conc_pool_init(pool, opts);
  if (opts && (opts->processes < 0 || opts->maxtasksperchild < 0))
    return CONC_EINVAL;
  if (opts && opts->initializer) /* a pointer means nothing on another rank */
    return conc_raise(CONC_ENOSYS, "initializers do not run on MPI ranks");
  static const conc__pool_engine_t eng = {.run = run, .workers = workers};
  return conc__pool_init_remote(pool, &eng);
}
