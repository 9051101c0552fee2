/*
 * conc_mpi_pool_init and conc_mpi_process_executor_init: the Pool and the
 * ProcessPoolExecutor of the pool core, on the MPI transport
 * (mpi_transport.c) with one worker per worker rank; in local mode the
 * ordinary ones.
 * Locking: none here (the pool core's; see pool-int.h).
 */
#include "conc/error.h"
#include "mpi-int.h"
#include "pool-int.h"

int conc_mpi_pool_init(conc_pool_t *pool, const conc_pool_opts_t *opts) {
  static const conc_pool_opts_t defaults;
  if (!pool)
    return CONC_EINVAL;
  if (!conc_mpi_active())
    return conc_pool_init(pool, opts);
  if (!opts)
    opts = &defaults;
  if (opts->processes < 0 || opts->maxtasksperchild < 0)
    return CONC_EINVAL;
  conc__pool_cfg_t cfg = {
      .transport = &conc__mpi_transport,
      .processes = conc__mpi_workers_(),
      .maxtasks = opts->maxtasksperchild,
      .initializer = opts->initializer,
      .initarg = opts->initarg,
      .buffer_size = opts->buffer_size,
      .worker_prefix = "MPIPoolWorker",
  };
  return conc__pool_init_with(pool, &cfg);
}

int conc_mpi_process_executor_init(conc_process_executor_t *ex,
                                   const conc_process_executor_opts_t *opts) {
  if (!conc_mpi_active())
    return conc_process_executor_init(ex, opts);
  conc_process_executor_opts_t o = {0};
  if (opts)
    o = *opts;
  if (o.max_workers < 0)
    return CONC_EINVAL;
  o.max_workers = conc__mpi_workers_();
  return conc__process_executor_init_with(ex, &o, &conc__mpi_transport);
}
