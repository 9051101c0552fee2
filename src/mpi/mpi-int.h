/*
 * libconc_mpi internals: the task registry (mpi_registry.c), the wire
 * between rank 0 and the worker ranks, the master's dispatch and the
 * workers' serve loop (mpi_engine.c), and the start-up in mpi_main.c.
 */
#ifndef CONC_MPI_INT_H
#define CONC_MPI_INT_H

#include <stdint.h>

#include <mpi.h>

#include "conc/mpi.h"

/* ---- registry ----------------------------------------------------------- */

/* Build the table from the program's section: sorted by name; CONC_EINVAL
 * when two entries share a name. */
int conc__mpi_registry_load(const conc_task_entry_t *start,
                            const conc_task_entry_t *stop);
/* Entries, sorted by name (the task id is the index). */
uint32_t conc__mpi_task_count(void);
conc_pool_func_t conc__mpi_task_fn(uint32_t id);
/* The id of fn; -1 when fn is not registered. */
int64_t conc__mpi_task_id(conc_pool_func_t fn);

/* What the ranks compare at start-up: the task table and the executable. */
typedef struct conc__mpi_ident {
  uint64_t table_hash; /* FNV-1a over the sorted names */
  uint32_t ntasks;
  char build_id[84]; /* hex GNU build id of the executable, or "none" */
} conc__mpi_ident_t;
void conc__mpi_ident(conc__mpi_ident_t *id);

/* ---- wire --------------------------------------------------------------- */

enum {
  CONC__MPI_TAG_TASK = 0x6c63, /* rank 0 -> worker: one chunk */
  CONC__MPI_TAG_RESULT,        /* worker -> rank 0: the chunk's results */
  CONC__MPI_TAG_STOP,          /* rank 0 -> worker: finalize and exit */
};

/* A chunk: nitems arguments of arg_size bytes each follow the header. */
typedef struct conc__mpi_task_hdr {
  uint64_t seq;
  uint32_t task;
  uint32_t nitems;
  uint32_t arg_size;
  uint32_t result_cap;
} conc__mpi_task_hdr_t;

/* Its results: the header, nitems item records, nitems results of
 * result_cap bytes each, then the failed items' messages back to back. */
typedef struct conc__mpi_result_hdr {
  uint64_t seq;
  uint32_t nitems;
  uint32_t result_cap;
} conc__mpi_result_hdr_t;

typedef struct conc__mpi_item {
  int32_t code; /* 0 or the task's CONC_E* code */
  uint32_t len; /* result bytes; for a failure, its message's bytes */
} conc__mpi_item_t;

/* ---- engine --------------------------------------------------------------- */

/* The worker ranks' loop: serve chunks until STOP; never returns. */
CONC_NORETURN void conc__mpi_serve(void);

/* Rank 0: set up dealing to `workers` ranks of comm, numbered from
 * rank_base (1 in MPI_COMM_WORLD; 0 across a spawn's intercommunicator);
 * stop sends every worker STOP. */
int conc__mpi_master_init(MPI_Comm comm, int rank_base, int workers,
                          int inflight);
void conc__mpi_master_stop(void);
int conc__mpi_workers_(void);

/* Run n items of fn over the workers, chunksize items per message, as
 * conc_pool_map: results of the good items land at results + i *
 * result_size (a failed item's slot is zeroed); errors, result_lens and
 * item_errors (n entries each, may be NULL) get every item's outcome.
 * Returns 0 or the lowest failed item's code, with its detail in *error
 * (may be NULL) and its message also raised (conc_raise) on this thread. */
int conc__mpi_run(conc_pool_func_t fn, const void *args, size_t n,
                  size_t arg_size, size_t result_size, size_t chunksize,
                  void *results, int *errors, size_t *result_lens,
                  conc_pool_error_t *item_errors, conc_pool_error_t *error);

#endif
