/*
 * Start-up of libconc_mpi: which mode the program runs in (static under
 * mpirun, spawned workers, or local), the ranks' agreement on the task
 * table and build, and the pools' entry point.
 * Locking: conc_mpi_main_ runs once, in main, before other threads; the
 * mode is read-only afterwards. Pools take the engine's lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "mpi-int.h"

enum mode { NOT_STARTED, LOCAL, STATIC, SPAWNED };
static enum mode mode = NOT_STARTED;

static bool under_mpirun(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") ||
         getenv("PMI_SIZE");
}

/* Every rank compares its identity with rank 0's; a worker that differs
 * stops the job with a message saying what differs. */
static void agree(MPI_Comm comm, int rank) {
  conc__mpi_ident_t mine, root;
  conc__mpi_ident(&mine);
  root = mine;
  MPI_Bcast(&root, sizeof root, MPI_BYTE, 0, comm);
  if (rank == 0 || memcmp(&mine, &root, sizeof mine) == 0)
    return;
  fprintf(stderr,
          "libconc_mpi: rank %d runs another program than rank 0 (build id "
          "%s with %u tasks, rank 0: build id %s with %u tasks); run the "
          "same executable on every rank\n",
          rank, mine.build_id, mine.ntasks, root.build_id, root.ntasks);
  MPI_Abort(MPI_COMM_WORLD, 3);
}

static void stop_workers(void) {
  conc__mpi_master_stop();
  MPI_Finalize();
}

static int start_static(int *argc, char ***argv) {
  int provided, size, rank;
  MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (size < 2) {
    fprintf(stderr, "libconc_mpi: one MPI rank: pools run on local "
                    "processes\n");
    MPI_Finalize();
    mode = LOCAL;
    return 0;
  }
  agree(MPI_COMM_WORLD, rank);
  if (rank > 0)
    conc__mpi_serve();
  int rc = conc__mpi_master_init(MPI_COMM_WORLD, 1, size - 1, 2);
  if (rc != 0)
    MPI_Abort(MPI_COMM_WORLD, 2);
  mode = STATIC;
  atexit(stop_workers);
  return 0;
}

int conc_mpi_main_(int *argc, char ***argv, const conc_task_entry_t *start,
                   const conc_task_entry_t *stop) {
  if (mode != NOT_STARTED)
    return CONC_ESTATE;
  int rc = conc__mpi_registry_load(start, stop);
  if (rc != 0) {
    if (under_mpirun()) {
      fprintf(stderr, "libconc_mpi: %s\n", conc_raised_message(rc));
      exit(3);
    }
    return rc;
  }
  if (!under_mpirun()) {
    fprintf(stderr, "libconc_mpi: not started by mpirun: pools run on local "
                    "processes\n");
    mode = LOCAL;
    return 0;
  }
  return start_static(argc, argv);
}

bool conc_mpi_active(void) { return mode == STATIC || mode == SPAWNED; }

int conc_mpi_workers(void) {
  return conc_mpi_active() ? conc__mpi_workers_() : 0;
}
