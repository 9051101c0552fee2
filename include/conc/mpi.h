// clang-format off
/*
 * libconc_mpi: the Pool across machines on Open MPI (optional component,
 * CMake option CONC_WITH_MPI; link conc::mpi or `pkg-config conc-mpi`).
 * Python's mpi4py.futures for C.
 *
 *   Python (mpi4py)                          C
 *   @task registration: none (pickled)       CONC_TASK(double_it, fn);   (file scope)
 *   python -m mpi4py.futures prog.py         int main(int argc, char **argv) {
 *     (ranks > 0 serve, rank 0 runs main)      CONC_MPI_MAIN(&argc, &argv);   (ranks > 0 never return)
 *   with MPIPoolExecutor() as ex:             conc_pool_t pool;
 *                                             conc_mpi_pool_init(&pool, NULL);   (was conc_pool_init)
 *   ex.map(f, xs)                             conc_pool_map(&pool, fn, xs, n, sizeof *xs, sizeof *out, NULL, out, NULL);
 *   ex.submit(f, x).result()                  conc_pool_apply(&pool, fn, &x, sizeof x, &r, sizeof r, NULL, NULL);
 *   ex.shutdown()                             conc_pool_destroy(&pool);
 *   ex.submit(f, x) (MPIPoolExecutor)         conc_mpi_process_executor_init(&ex, NULL); conc_process_executor_submit(...)
 *   Pool(initializer=g, initargs=(cfg,))      CONC_INIT(g, g, sizeof cfg);   (file scope) + opts.initializer
 *
 * Tasks are the local Pool's (conc_pool_func_t, pool.h): arguments and
 * results cross as bytes. Function addresses differ between ranks (ASLR),
 * so every task a pool may run is registered by name at file scope with
 * CONC_TASK; the registry is an ELF section of the program. At start-up the
 * ranks agree on the task table (sorted by name) and on the executable's
 * build id; ranks that run another build stop at once with a message naming
 * the mismatch, never jumping into foreign code.
 *
 * Modes:
 *   static  `mpirun -np N prog`: CONC_MPI_MAIN in main; rank 0 returns and
 *           runs the program, ranks 1..N-1 serve tasks and exit when rank 0
 *           exits.
 *   spawn   `CONC_MPI_SPAWN=N prog` (no mpirun): the program starts N copies
 *           of itself as workers (MPI_Comm_spawn); where the MPI build
 *           cannot, it runs locally with a notice.
 *   local   no mpirun, or one rank: CONC_MPI_MAIN prints a notice and the
 *           pools run on local processes (the ordinary Pool), so the same
 *           program gives the same results on a laptop.
 *
 * Faults: Open MPI is fail-stop. A rank that dies (or a task that crashes
 * its rank) aborts the whole job; mpirun then reports the rank and exit
 * status. Rerun the job; tasks that must survive worker deaths belong on the
 * local Pool, which attributes a death to its task and replaces the worker.
 */
// clang-format on
#ifndef CONC_MPI_H
#define CONC_MPI_H

#include <stdbool.h>
#include <stddef.h>

#include "conc/defs.h"
#include "conc/pool.h"

CONC_BEGIN_DECLS

/* One registered task (CONC_TASK) or initializer (CONC_INIT); the
 * section holds them. */
typedef struct conc_task_entry {
  const char *name;
  conc_pool_func_t fn;    /* a task, or NULL */
  int (*init)(void *arg); /* an initializer, or NULL */
  size_t init_arg_size;   /* bytes at the initializer's argument */
} conc_task_entry_t;

#define CONC__TASK_SECTION conc_tasks

/* Register `fn` under `name` (an identifier, unique in the program). */
#define CONC_TASK(name, fn)                                                    \
  static const conc_task_entry_t conc__task_##name                             \
      __attribute__((used, section("conc_tasks"),                              \
                     aligned(sizeof(void *)))) = {#name, (fn), NULL, 0}

/* Register an initializer (conc_pool_opts_t.initializer, the executor's
 * too) under `name`: on a worker rank it receives a copy of the
 * `arg_size` bytes that initarg points to on rank 0 (NULL when arg_size is
 * 0), since a pointer means nothing on another rank. Tasks and
 * initializers share one namespace. */
#define CONC_INIT(name, fn, arg_size)                                          \
  static const conc_task_entry_t conc__task_##name __attribute__((             \
      used, section("conc_tasks"), aligned(sizeof(void *)))) = {               \
      #name, NULL, (fn), (arg_size)}

/* The section's bounds as the linker gives them to the program that expands
 * the macro (weak: a program with no task has none). */
extern const conc_task_entry_t __start_conc_tasks[] __attribute__((weak));
extern const conc_task_entry_t __stop_conc_tasks[] __attribute__((weak));

/* Call first in main. Static mode: ranks > 0 serve and never return; rank 0
 * returns 0. Local mode: prints a notice to stderr, returns 0. Errors
 * (returned on rank 0; worker ranks abort the job with a message):
 * CONC_EINVAL (two tasks share a name), CONC_ESTATE (called twice). */
#define CONC_MPI_MAIN(argcp, argvp)                                            \
  conc_mpi_main_((argcp), (argvp), __start_conc_tasks, __stop_conc_tasks)
CONC_EXTERN int conc_mpi_main_(int *argc, char ***argv,
                               const conc_task_entry_t *start,
                               const conc_task_entry_t *stop);

/* True when pools run over MPI ranks (static mode with 2 ranks or more). */
CONC_EXTERN bool conc_mpi_active(void);
/* The number of worker ranks (0 in local mode). */
CONC_EXTERN int conc_mpi_workers(void);
/* The registered name of fn, or NULL. */
CONC_EXTERN const char *conc_mpi_task_name(conc_pool_func_t fn);

/* Pool(...) over the MPI ranks: the one line that changes. The pool is an
 * ordinary conc_pool_t and every Pool call works on it unchanged: apply,
 * apply_async (with callbacks), map / map_async / map_typed / starmap /
 * imap / imap_unordered (with chunksize), close / terminate / join /
 * enter / processes and destroy, with the same error detail
 * (conc_pool_error_t; pid is 0: a rank has no local pid). Calls from
 * several threads overlap as on a local Pool. In static and spawn mode
 * opts->processes is ignored (the worker ranks are the processes); an
 * initializer must be registered with CONC_INIT (CONC_EINVAL otherwise)
 * and runs on every worker rank before the pool's first task there. A task
 * already running on a rank cannot be stopped (MPI cannot kill one rank):
 * terminate fails the pool's unfinished work at once, and destroy waits
 * for the chunks the ranks still run. In local mode this is
 * conc_pool_init. Every function the pool runs must be registered with
 * CONC_TASK (an unregistered one fails its items with CONC_EINVAL, never
 * sent). CONC_EINVAL, CONC_ENOMEM, CONC_EAGAIN (too many pools at once). */
CONC_EXTERN int conc_mpi_pool_init(conc_pool_t *pool,
                                   const conc_pool_opts_t *opts);

/* ProcessPoolExecutor(...) over the MPI ranks (mpi4py's MPIPoolExecutor):
 * the one line that changes from conc_process_executor_init. submit,
 * map, shutdown, destroy and the futures (conc_process_future_result,
 * conc_futures_wait, conc_as_completed_*) work unchanged. As
 * conc_mpi_pool_init: max_workers is ignored over MPI, the initializer
 * must be registered with CONC_INIT; on_worker_death does not apply (Open
 * MPI is fail-stop). In local mode this is conc_process_executor_init. */
CONC_EXTERN int
conc_mpi_process_executor_init(conc_process_executor_t *ex,
                               const conc_process_executor_opts_t *opts);

CONC_END_DECLS

#endif
