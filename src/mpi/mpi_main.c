/*
 * Start-up of libconc_mpi: which mode the program runs in (static under
 * mpirun, spawned workers, or local), the ranks' agreement on the task
 * table and build, and the pools' entry point.
 * Locking: conc_mpi_main_ runs once, in main, before other threads; the
 * mode is read-only afterwards; the pools' MPI calls follow
 * mpi_engine.c's rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "mpi-int.h"

enum mode { NOT_STARTED, LOCAL, STATIC, SPAWNED };
static enum mode mode = NOT_STARTED;

static bool under_mpirun(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") ||
         getenv("PMI_SIZE");
}

/* Every worker compares its identity with rank 0's (across the
 * intercommunicator of a spawn: `root` is MPI_ROOT on the parent, 0 on the
 * children); a worker that differs stops the job saying what differs. */
static void agree(MPI_Comm comm, int root, bool is_master) {
  conc__mpi_ident_t mine, master;
  conc__mpi_ident(&mine);
  master = mine;
  MPI_Bcast(&master, sizeof master, MPI_BYTE, root, comm);
  if (is_master || memcmp(&mine, &master, sizeof mine) == 0)
    return;
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  fprintf(stderr,
          "libconc_mpi: worker rank %d runs another program than rank 0 "
          "(build id %s with %u tasks; rank 0: build id %s with %u tasks); "
          "run the same executable on every rank\n",
          rank, mine.build_id, mine.ntasks, master.build_id, master.ntasks);
  MPI_Abort(MPI_COMM_WORLD, 3);
}

static void stop_workers(void) {
  conc__mpi_master_stop();
  MPI_Finalize();
}

/* The pools call MPI from several threads (mpi_transport.c): ask for
 * MPI_THREAD_MULTIPLE (CONC_MPI_THREAD=serialized asks for less, to test
 * the fallback, which serialises every call). */
static bool init_mpi(int *argc, char ***argv) {
  const char *lvl = getenv("CONC_MPI_THREAD");
  int want = lvl && strcmp(lvl, "serialized") == 0 ? MPI_THREAD_SERIALIZED
                                                   : MPI_THREAD_MULTIPLE;
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(argc, argv, want, &provided);
  MPI_Query_thread(&provided);
  if (provided < MPI_THREAD_SERIALIZED) {
    fprintf(stderr, "libconc_mpi: this MPI library serves one thread only "
                    "(MPI_THREAD_SERIALIZED needed)\n");
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  return provided >= MPI_THREAD_MULTIPLE;
}

/* A worker started by a spawn: agree with the parent, then serve on the
 * merged communicator (the parent is rank 0 there). */
static void serve_parent(MPI_Comm parent) {
  agree(parent, 0, false);
  MPI_Comm merged;
  MPI_Intercomm_merge(parent, 1, &merged);
  conc__mpi_serve(merged);
}

static int start_static(int *argc, char ***argv) {
  int size, rank;
  bool multiple = init_mpi(argc, argv);
  MPI_Comm parent;
  MPI_Comm_get_parent(&parent);
  if (parent != MPI_COMM_NULL)
    serve_parent(parent);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (size < 2) {
    fprintf(stderr, "libconc_mpi: one MPI rank: pools run on local "
                    "processes\n");
    MPI_Finalize();
    mode = LOCAL;
    return 0;
  }
  agree(MPI_COMM_WORLD, 0, rank == 0);
  if (rank > 0)
    conc__mpi_serve(MPI_COMM_WORLD);
  conc__mpi_master_init(MPI_COMM_WORLD, size - 1, multiple);
  mode = STATIC;
  atexit(stop_workers);
  return 0;
}

static MPI_Comm spawn_inter = MPI_COMM_NULL;

static void stop_spawned(void) {
  conc__mpi_master_stop();
  MPI_Comm_disconnect(&spawn_inter);
  MPI_Finalize();
}

/* Spawn mode (CONC_MPI_SPAWN=N, no mpirun): this process starts N copies
 * of itself as workers through MPI_Comm_spawn and merges them and itself
 * into one communicator, where it is rank 0 as under mpirun. Where the MPI
 * build cannot spawn (no runtime for a singleton), the pools run locally,
 * with a notice. */
static int start_spawn(int *argc, char ***argv, int n) {
  bool multiple = init_mpi(argc, argv);
  MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
  char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) {
    mode = LOCAL;
    return 0;
  }
  exe[len] = '\0';
  char **args = argc && *argc > 1 ? &(*argv)[1] : MPI_ARGV_NULL;
  int *codes = calloc((size_t)n, sizeof *codes);
  int rc = MPI_Comm_spawn(exe, args, n, MPI_INFO_NULL, 0, MPI_COMM_SELF,
                          &spawn_inter, codes);
  free(codes);
  if (rc != MPI_SUCCESS) {
    fprintf(stderr, "libconc_mpi: MPI_Comm_spawn failed: pools run on "
                    "local processes\n");
    mode = LOCAL;
    return 0;
  }
  agree(spawn_inter, MPI_ROOT, true);
  MPI_Comm merged;
  MPI_Intercomm_merge(spawn_inter, 0, &merged);
  conc__mpi_master_init(merged, n, multiple);
  mode = SPAWNED;
  atexit(stop_spawned);
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
  const char *spawn = getenv("CONC_MPI_SPAWN");
  if (!under_mpirun() && spawn && atoi(spawn) > 0)
    return start_spawn(argc, argv, atoi(spawn));
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
