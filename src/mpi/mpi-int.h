/*
 * libconc_mpi internals: the task registry (mpi_registry.c), the wire
 * between rank 0 and the worker ranks and the workers' serve loop
 * (mpi_engine.c), the Pool transport over the ranks (mpi_transport.c) and
 * the start-up (mpi_main.c).
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
/* Entries (tasks and initializers), sorted by name: an id is the index. */
uint32_t conc__mpi_task_count(void);
/* The task with that id; NULL when there is none (or it is an
 * initializer). */
conc_pool_func_t conc__mpi_task_fn(uint32_t id);
/* The id of fn; -1 when fn is not registered with CONC_TASK. */
int64_t conc__mpi_task_id(conc_pool_func_t fn);
/* Initializers (CONC_INIT): the id of fn (-1: not registered) and the
 * bytes its argument points to; the initializer with that id. */
int64_t conc__mpi_init_id(int (*fn)(void *), size_t *arg_size);
int (*conc__mpi_init_fn(uint32_t id))(void *);

/* What the ranks compare at start-up: the task table and the executable. */
typedef struct conc__mpi_ident {
  uint64_t table_hash; /* FNV-1a over the sorted names */
  uint32_t ntasks;
  char build_id[84]; /* hex GNU build id of the executable, or "none" */
} conc__mpi_ident_t;
void conc__mpi_ident(conc__mpi_ident_t *id);

/* ---- wire --------------------------------------------------------------- */

/* Rank 0 -> worker: STOP ends the worker; every other message carries a
 * conc__mpi_msg_t header and is tagged with its pool's tag, which the
 * worker's reply carries too. Tags from CONC__MPI_TAG_POOL up belong to
 * pools (one each while it lives). */
enum {
  CONC__MPI_TAG_STOP = 1,
  CONC__MPI_TAG_POOL = 16,
};

enum {
  CONC__MPI_CHUNK,   /* run nitems items of task; reply RESULT */
  CONC__MPI_INIT,    /* run initializer `task` on arg_size bytes; reply
                         INIT_OK or INIT_FAILED (message follows) */
  CONC__MPI_FORGET,  /* the pool is gone: drop what the worker kept */
  CONC__MPI_RESULT,  /* nitems records, results, messages (see below) */
  CONC__MPI_SKIPPED, /* a chunk of a pool whose initializer failed */
  CONC__MPI_INIT_OK,
  CONC__MPI_INIT_FAILED,
};

/* Every message's header. A CHUNK's nitems arguments of arg_size bytes
 * follow it; a RESULT is the header, nitems item records, nitems results
 * of result_cap bytes each, then the failed items' messages back to back. */
typedef struct conc__mpi_msg {
  uint64_t seq;  /* the chunk's number in its pool (echoed) */
  uint32_t kind; /* CONC__MPI_* */
  uint32_t lane; /* rank 0's lane of the chunk (echoed) */
  uint32_t task; /* task or initializer id */
  uint32_t nitems;
  uint32_t arg_size;
  uint32_t result_cap;
} conc__mpi_msg_t;

typedef struct conc__mpi_item {
  int32_t code; /* 0 or the task's CONC_E* code */
  uint32_t len; /* result bytes; for a failure, its message's bytes */
} conc__mpi_item_t;

/* ---- engine ------------------------------------------------------------- */

/* The worker ranks' loop: serve until STOP; never returns. */
CONC_NORETURN void conc__mpi_serve(MPI_Comm comm);

/* Rank 0: the communicator the pools use (rank 0 is this process, the
 * workers are ranks 1..workers) and whether MPI may be called from several
 * threads at once (MPI_THREAD_MULTIPLE); without it every MPI call of the
 * pools is made under conc__mpi_lock. stop sends every worker STOP. */
void conc__mpi_master_init(MPI_Comm comm, int workers, bool multiple);
void conc__mpi_master_stop(void);
int conc__mpi_workers_(void);
MPI_Comm conc__mpi_comm(void);
bool conc__mpi_multiple(void);
void conc__mpi_lock(void);
void conc__mpi_unlock(void);
/* A tag no living pool uses (CONC_EAGAIN when all are taken). */
int conc__mpi_tag_new(int *tag);
void conc__mpi_tag_free(int tag);
int conc__mpi_grow(char **buf, size_t *cap, size_t need);

/* ---- transport (mpi_transport.c) ----------------------------------------- */

struct conc__pool_transport;
extern const struct conc__pool_transport conc__mpi_transport;
/* The most chunks any worker rank had in flight at once (tests). */
unsigned conc__mpi_max_in_flight(void);
/* At the end of the job: take every reply still due to a pool whose
 * result thread has ended. */
void conc__mpi_drain_all(void);

#endif
