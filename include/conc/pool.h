// clang-format off
/*
 * Pool: Python's multiprocessing.Pool and concurrent.futures'
 * ProcessPoolExecutor for C (fork-based worker processes).
 *
 *   Python                                  C
 *   pool = Pool(processes=3)                conc_pool_t pool;
 *                                           conc_pool_init(&pool, &(conc_pool_opts_t){.processes = 3});
 *   pool.apply(f, (x,))                     conc_pool_apply(&pool, f, &x, sizeof x, &r, sizeof r, NULL, NULL);
 *   res = pool.apply_async(f, (x,))         conc_async_result_t *res;
 *                                           conc_pool_apply_async(&pool, f, &x, sizeof x, sizeof r, NULL, &res);
 *   res.get(timeout=1)                      conc_async_result_get(res, 1.0, &r, sizeof r);
 *   pool.map(f, xs)                         conc_pool_map(&pool, f, xs, n, sizeof *xs, sizeof *out, NULL, out, NULL);
 *   for r in pool.imap(f, xs): ...          conc_imap_t *it;
 *                                           conc_pool_imap(&pool, f, xs, n, sizeof *xs, sizeof r, 0, &it);
 *                                           while (conc_imap_next(it, CONC_FOREVER, &r, NULL) == 0) ...
 *   pool.close(); pool.join()               conc_pool_close(&pool); conc_pool_join(&pool);
 *   with Pool() as pool: ...                CONC_WITH_POOL(&pool) { ... }  (terminate() on exit)
 *   raise ValueError("bad") (in f)          return conc_raise(CONC_EINVAL, "bad");
 *   except Exception as e: e.args, cause    conc_pool_error_t e: code, index, signal, exitcode, pid, message
 *   [p.pid for p in pool._pool]             conc_pool_pids(&pool, pids, cap);
 *
 *   ex = ProcessPoolExecutor(4)             conc_process_executor_t ex;
 *                                           conc_process_executor_init(&ex, &(conc_process_executor_opts_t){.max_workers = 4});
 *   fut = ex.submit(f, x)                   conc_future_t *fut;
 *                                           conc_process_executor_submit(&ex, f, &x, sizeof x, sizeof r, &fut);
 *   fut.result()                            conc_process_future_result(fut, CONC_FOREVER, &r, sizeof r, NULL);
 *   ex.map(f, xs, timeout=t, chunksize=c)   conc_process_executor_map(&ex, f, xs, n, sizeof *xs, sizeof r,
 *                                             &(conc_process_map_opts_t){.timeout = t, .chunksize = c}, &it);
 *   ex.shutdown(wait, cancel_futures)       conc_process_executor_shutdown(&ex, wait, cancel_futures);
 *   with ex: ...                            CONC_WITH_PROCESS_EXECUTOR(&ex) { ... }
 *
 * Tasks. Workers are forks of the caller, so a task is a plain function
 * pointer. Arguments cross BY VALUE as bytes: each argument (arg_size bytes;
 * a struct stands for Python's tuple of arguments) is copied into memory
 * shared with the worker, and the result comes back as bytes into a buffer
 * of a declared capacity:
 *
 *   int f(const void *arg, size_t arg_len,
 *         void *result, size_t result_cap, size_t *result_len);
 *
 * `arg` is aligned for any type; *result_len starts at result_cap and a task
 * that produces fewer bytes stores how many. Returning 0 is success; a
 * negative CONC_E* code is the task's failure (Python: the task raised),
 * with the message of `return conc_raise(code, fmt, ...)`; a positive
 * return is reported as CONC_EFAILED. Storing a *result_len above
 * result_cap (Python's MaybeEncodingError) fails that task with
 * CONC_EMSGSIZE; the worker carries on.
 *
 * Error detail is never lost: every failed item has a conc_pool_error_t
 * (its code, index, message, and for a worker that died the signal, exit
 * code and pid). Synchronous calls fill one for their first failure;
 * asynchronous results, imap iterators and the executor's futures give it
 * through conc_async_result_error / conc_imap_error /
 * conc_process_future_error. A map with failing items still delivers every
 * good result (a failed item's slot is zeroed).
 *
 * Results (AsyncResult, IMapIterator) are heap objects with a reference
 * count: the caller owns one and gives it back with _release; they stay
 * valid after their pool is destroyed.
 *
 * Reliability (where Python hangs): a worker that dies mid-task fails only
 * the item it was running (CONC_EWORKERDIED, with the signal number and a
 * message); the items of its chunk that finished keep their results, the
 * rest are run again, the worker is replaced and every other task completes.
 * The executor does the same by default; .on_worker_death =
 * CONC_WORKER_DEATH_BREAKS_POOL gives Python's BrokenProcessPool instead.
 * terminate() fails every pending task (CONC_ECANCELED) and returns once the
 * workers are gone, however many tasks were queued. Workers die with the
 * process that created the pool (PR_SET_PDEATHSIG).
 *
 * A pool belongs to the process that created it: calls from a forked child
 * return CONC_EPERM. Its results and iterators, likewise, are for the
 * creating process (a child forked while the pool runs gets copies that
 * never complete).
 */
// clang-format on
#ifndef CONC_POOL_H
#define CONC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conc/defs.h"
#include "conc/futures.h"

/* Longest error message kept, including the terminating NUL. */
#define CONC_POOL_MESSAGE_MAX 256

typedef int (*conc_pool_func_t)(const void *arg, size_t arg_len, void *result,
                                size_t result_cap, size_t *result_len);

/* One failed item, as Python's exception object keeps it. */
typedef struct conc_pool_error {
  int code;   /* the item's code; 0: it succeeded */
  long index; /* the item's input index (0 for apply/submit); -1: none */
  int signal; /* the signal that killed the worker running it, else 0 */
  /* The exit code of the worker that died running it (-N: signal N, as
   * Python's exitcode), or 0 when its worker did not die. */
  int exitcode;
  pid_t pid; /* the worker that ran it, 0 if it never ran */
  char message[CONC_POOL_MESSAGE_MAX]; /* conc_raise's, or how it died */
} conc_pool_error_t;

typedef struct conc_pool_opts {
  /* Number of worker processes. 0: conc_process_cpu_count() (Python 3.13's
   * default); negative: CONC_EINVAL. Python's Pool(0) error has no C
   * spelling because zero means "default" throughout libconc. */
  int processes;
  /* Runs once in every worker before its first task (initializer(*initargs)).
   * A negative return (with conc_raise's message) breaks the pool: every
   * pending and later task fails with CONC_EBROKENPOOL and that message. */
  int (*initializer)(void *arg);
  void *initarg;
  /* Tasks (chunks) a worker runs before it is replaced. 0: no limit
   * (Python's None); negative: CONC_EINVAL. */
  int maxtasksperchild;
  /* Bytes of shared transfer area per chunk in flight (two per worker).
   * 0: 1 MiB (committed lazily). An item that cannot fit fails its
   * submission with CONC_EMSGSIZE. */
  size_t buffer_size;
} conc_pool_opts_t;

/* Contents are private. */
typedef struct conc_pool {
  struct {
    void *core;
    uint32_t magic;
  } priv;
} conc_pool_t;

typedef struct conc_async_result conc_async_result_t;
typedef struct conc_imap conc_imap_t;

/* callback / error_callback: run once, in the pool's result thread, before
 * get() returns; exactly one of them runs. Inside, read the outcome with
 * conc_async_result_value / conc_async_result_error (get() would wait for
 * the callback itself). Keep them short: they hold up other results. */
typedef void (*conc_pool_callback_t)(conc_async_result_t *r, void *arg);

typedef struct conc_pool_async_opts {
  conc_pool_callback_t callback;
  conc_pool_callback_t error_callback;
  void *callback_arg;
  /* map family: items per task; 0: ceil(n / (4 * processes)). */
  size_t chunksize;
} conc_pool_async_opts_t;

typedef struct conc_pool_map_opts {
  size_t chunksize; /* 0: ceil(n / (4 * processes)) */
  /* Optional reports, n entries each, filled whether or not items fail:
   * every item's code (0 = success), its result length, its detail. */
  int *errors;
  size_t *result_lens;
  conc_pool_error_t *item_errors;
} conc_pool_map_opts_t;

CONC_BEGIN_DECLS

/* Pool(processes, initializer, initargs, maxtasksperchild): starts the
 * workers. CONC_EINVAL (bad options), CONC_ESTATE (called in a daemonic
 * process, e.g. a pool worker), CONC_ENOMEM, fork errors. */
CONC_EXTERN int conc_pool_init(conc_pool_t *pool, const conc_pool_opts_t *opts);

/* terminate() (Python's finalizer: close and join first to let queued work
 * finish), then free. Outstanding results stay valid (final by then). */
CONC_EXTERN void conc_pool_destroy(conc_pool_t *pool);

/* Submission functions return CONC_EINVAL (NULL pool/fn/out, NULL data with
 * a nonzero size), CONC_ESTATE once closed or terminated ("Pool not
 * running"), CONC_EBROKENPOOL once broken, CONC_EMSGSIZE (one item does not
 * fit the transfer area), CONC_EOVERFLOW, CONC_ENOMEM, CONC_EPERM (not the
 * creating process). */

/* apply(f, args): the task's code (0 on success). On success the result is
 * in result[0..*result_len) (result_len may be NULL); when the task fails,
 * result is untouched and *error (may be NULL) gets its detail. */
CONC_EXTERN int conc_pool_apply(conc_pool_t *pool, conc_pool_func_t fn,
                                const void *arg, size_t arg_len, void *result,
                                size_t result_cap, size_t *result_len,
                                conc_pool_error_t *error);

/* apply_async(f, args, callback, error_callback): the argument is copied;
 * *out gets a result with one reference (out may be NULL: fire and forget,
 * callbacks still run). */
CONC_EXTERN int conc_pool_apply_async(conc_pool_t *pool, conc_pool_func_t fn,
                                      const void *arg, size_t arg_len,
                                      size_t result_cap,
                                      const conc_pool_async_opts_t *opts,
                                      conc_async_result_t **out);

/*
 * map(f, in[0..n)): out[i] (result_size bytes each) = f(in[i]), in input
 * order. Does not fail fast: every item runs, then the code of the failing
 * item with the lowest index is returned (0 if none) and *error (may be
 * NULL) gets that item's detail. The good results are in `out` either way
 * (a failed item's slot is zeroed). n == 0 returns 0 at once.
 */
CONC_EXTERN int conc_pool_map(conc_pool_t *pool, conc_pool_func_t fn,
                              const void *in, size_t n, size_t arg_size,
                              size_t result_size,
                              const conc_pool_map_opts_t *opts, void *out,
                              conc_pool_error_t *error);

/* The typed path of map: every result is exactly result_size bytes (a
 * task's *result_len is only checked against the capacity), so no lengths
 * travel: workers run chunks of the input in shared memory and results are
 * copied back in one block per chunk. Default chunksize ceil(n / (2 *
 * processes)): every chunk is in flight at once. opts->result_lens is not
 * filled. Otherwise as conc_pool_map. */
CONC_EXTERN int conc_pool_map_typed(conc_pool_t *pool, conc_pool_func_t fn,
                                    const void *in, size_t n, size_t arg_size,
                                    size_t result_size,
                                    const conc_pool_map_opts_t *opts, void *out,
                                    conc_pool_error_t *error);

/* starmap: in C the argument tuple is a struct, so starmap is map over an
 * array of structs (kept for the Python name). */
CONC_EXTERN int conc_pool_starmap(conc_pool_t *pool, conc_pool_func_t fn,
                                  const void *in, size_t n, size_t arg_size,
                                  size_t result_size,
                                  const conc_pool_map_opts_t *opts, void *out,
                                  conc_pool_error_t *error);

/* map_async / starmap_async: the input is copied; get() copies the n
 * results (n * result_size bytes) out, the good ones also when an item
 * failed. The callback runs once for the whole map, error_callback once
 * with the first (lowest index) failure. */
CONC_EXTERN int conc_pool_map_async(conc_pool_t *pool, conc_pool_func_t fn,
                                    const void *in, size_t n, size_t arg_size,
                                    size_t result_size,
                                    const conc_pool_async_opts_t *opts,
                                    conc_async_result_t **out);
CONC_EXTERN int conc_pool_starmap_async(conc_pool_t *pool, conc_pool_func_t fn,
                                        const void *in, size_t n,
                                        size_t arg_size, size_t result_size,
                                        const conc_pool_async_opts_t *opts,
                                        conc_async_result_t **out);

/* imap / imap_unordered(f, in, chunksize): chunksize 0 means 1 (Python's
 * default). The input is copied. */
CONC_EXTERN int conc_pool_imap(conc_pool_t *pool, conc_pool_func_t fn,
                               const void *in, size_t n, size_t arg_size,
                               size_t result_size, size_t chunksize,
                               conc_imap_t **out);
CONC_EXTERN int conc_pool_imap_unordered(conc_pool_t *pool, conc_pool_func_t fn,
                                         const void *in, size_t n,
                                         size_t arg_size, size_t result_size,
                                         size_t chunksize, conc_imap_t **out);

/* close(): no more submissions; workers exit once the queued work is done. */
CONC_EXTERN int conc_pool_close(conc_pool_t *pool);
/* terminate(): fail every unfinished task with CONC_ECANCELED, stop the
 * workers (SIGTERM; SIGKILL for any still alive after 2 s) and return once
 * they are reaped. CONC_EDEADLK from a callback (the result thread). */
CONC_EXTERN int conc_pool_terminate(conc_pool_t *pool);
/* join(): wait for the workers to exit. CONC_ESTATE while the pool is
 * running (call close or terminate first). */
CONC_EXTERN int conc_pool_join(conc_pool_t *pool);
/* __enter__: 0 while running, CONC_ESTATE ("Pool not running") after
 * close/terminate. */
CONC_EXTERN int conc_pool_enter(conc_pool_t *pool);
/* Number of worker processes (Python's pool._processes). */
CONC_EXTERN int conc_pool_processes(conc_pool_t *pool);
/* The live workers' pids (Python's [p.pid for p in pool._pool]): fills
 * pids[0..min(count, cap)) and returns count (a worker being replaced is
 * not counted). */
CONC_EXTERN int conc_pool_pids(conc_pool_t *pool, pid_t *pids, size_t cap);

/* ---- AsyncResult ------------------------------------------------------- */

/* get(timeout): wait, then 0 with the result copied to out (apply: its
 * result_len bytes; map: n * result_size bytes; out may be NULL), or the
 * task's code (map: the first failing item's, and the good results are
 * copied all the same; apply: nothing copied). CONC_ETIMEDOUT while not
 * ready at the timeout (CONC_FOREVER: no limit; 0 or negative: check
 * once); CONC_ETOOSHORT when out_size is too small (nothing copied);
 * CONC_EINVAL for NaN. */
CONC_EXTERN int conc_async_result_get(conc_async_result_t *r, double timeout,
                                      void *out, size_t out_size);
/* wait(timeout): 0 once ready, CONC_ETIMEDOUT, CONC_EINVAL. */
CONC_EXTERN int conc_async_result_wait(conc_async_result_t *r, double timeout);
CONC_EXTERN bool conc_async_result_ready(conc_async_result_t *r);
/* successful(): 1 or 0; CONC_ESTATE before ready (Python's ValueError). */
CONC_EXTERN int conc_async_result_successful(conc_async_result_t *r);
/* The result bytes once complete (in callbacks too; for a map with failed
 * items too), else NULL. *len (may be NULL) gets their length. Valid until
 * release. */
CONC_EXTERN const void *conc_async_result_value(conc_async_result_t *r,
                                                size_t *len);

/* Which failure conc_async_result_error describes: the one get() reports. */
#define CONC_POOL_FIRST_ERROR ((size_t)-1)
/* Item i's detail (e->code 0: it succeeded), or with CONC_POOL_FIRST_ERROR
 * the failure get() reports (e->code 0, index -1: none). 0, CONC_EINVAL
 * (i out of range, NULL), CONC_ESTATE before completion; *e untouched on
 * failure. */
CONC_EXTERN int conc_async_result_error(conc_async_result_t *r, size_t i,
                                        conc_pool_error_t *e);
CONC_EXTERN void conc_async_result_release(conc_async_result_t *r);

/* ---- IMapIterator ------------------------------------------------------- */

/* next(timeout): 0 with the result copied to out (result_size bytes; out may
 * be NULL) and its input index in *index (may be NULL); CONC_EEOF at the
 * end (StopIteration); an item's failure code (the iteration moves past it;
 * its detail: conc_imap_error); CONC_ETIMEDOUT (nothing consumed; for an
 * executor map past its timeout the rest is cancelled and the iteration is
 * over); CONC_EINVAL. */
CONC_EXTERN int conc_imap_next(conc_imap_t *it, double timeout, void *out,
                               size_t *index);
/* The detail of the last failure next() returned: 0, or CONC_ESTATE when
 * next() has returned none. */
CONC_EXTERN int conc_imap_error(conc_imap_t *it, conc_pool_error_t *e);
/* The underlying result (borrowed; do not release). */
CONC_EXTERN conc_async_result_t *conc_imap_result(conc_imap_t *it);
/* Drop the iterator; tasks not yet run still run (executor map: cancelled). */
CONC_EXTERN void conc_imap_release(conc_imap_t *it);

/* ---- ProcessPoolExecutor ------------------------------------------------- */

typedef enum conc_worker_death {
  /* libconc's default: only the task the dead worker was running fails
   * (CONC_EWORKERDIED, signal/exit code and pid in its detail); the worker
   * is replaced and everything else runs. */
  CONC_WORKER_DEATH_FAILS_TASK = 0,
  /* Python's: the pool breaks; every pending future and every later
   * submit fails with CONC_EBROKENPOOL (BrokenProcessPool). */
  CONC_WORKER_DEATH_BREAKS_POOL = 1
} conc_worker_death_t;

typedef struct conc_process_executor_opts {
  /* 0: conc_process_cpu_count(); negative: CONC_EINVAL. */
  int max_workers;
  /* As the pool's: a negative return breaks the executor. */
  int (*initializer)(void *arg);
  void *initarg;
  /* Tasks a worker runs before it is replaced; 0: no limit. */
  int max_tasks_per_child;
  conc_worker_death_t on_worker_death;
  size_t buffer_size; /* as conc_pool_opts_t.buffer_size */
} conc_process_executor_opts_t;

typedef struct conc_process_executor {
  struct {
    void *core;
    uint32_t magic;
  } priv;
} conc_process_executor_t;

typedef struct conc_process_map_opts {
  size_t chunksize; /* 0: 1 (Python's default); items per task */
  /* Seconds from the map call for the whole iteration; 0: no limit
   * (Python's None; CONC_FOREVER too). NaN or other negatives: EINVAL. */
  double timeout;
} conc_process_map_opts_t;

/* ProcessPoolExecutor(max_workers, initializer, initargs,
 * max_tasks_per_child): starts the workers. Errors as conc_pool_init. */
CONC_EXTERN int
conc_process_executor_init(conc_process_executor_t *ex,
                           const conc_process_executor_opts_t *opts);

/*
 * submit(fn, arg): the argument is copied (arg_len bytes), the result comes
 * back as up to result_cap bytes. *out gets a future (one reference) that
 * works with conc_futures_wait, conc_as_completed and add_done_callback;
 * its result (conc_future_result) points to the result bytes, valid while
 * the future is; conc_process_future_result copies them. Errors as the
 * pool's submissions; CONC_ESTATE after shutdown, CONC_EBROKENPOOL once
 * broken.
 */
CONC_EXTERN int conc_process_executor_submit(conc_process_executor_t *ex,
                                             conc_pool_func_t fn,
                                             const void *arg, size_t arg_len,
                                             size_t result_cap,
                                             conc_future_t **out);

/* map(fn, in, timeout, chunksize): results in input order through
 * conc_imap_next (its timeout and the map's, whichever ends first). */
CONC_EXTERN int conc_process_executor_map(conc_process_executor_t *ex,
                                          conc_pool_func_t fn, const void *in,
                                          size_t n, size_t arg_size,
                                          size_t result_size,
                                          const conc_process_map_opts_t *opts,
                                          conc_imap_t **out);

/* shutdown(wait, cancel_futures): no new submissions; queued futures still
 * run unless cancel_futures, which cancels the ones not started. wait:
 * return once every worker has exited. Idempotent. */
CONC_EXTERN int conc_process_executor_shutdown(conc_process_executor_t *ex,
                                               bool wait, bool cancel_futures);
/* shutdown(wait=True), then free; futures stay valid. */
CONC_EXTERN void conc_process_executor_destroy(conc_process_executor_t *ex);
/* Python's executor._processes: as conc_pool_pids. */
CONC_EXTERN int conc_process_executor_pids(conc_process_executor_t *ex,
                                           pid_t *pids, size_t cap);

/* result(timeout) as bytes: 0 with the result copied to out (*len, may be
 * NULL, gets its length), the task's code (detail:
 * conc_process_future_error), CONC_ECANCELED, CONC_ETIMEDOUT,
 * CONC_ETOOSHORT (out_size too small; nothing copied), CONC_EINVAL (not a
 * process executor's future). */
CONC_EXTERN int conc_process_future_result(conc_future_t *f, double timeout,
                                           void *out, size_t out_size,
                                           size_t *len);
/* The failed future's detail (signal, exit code, pid...): 0, CONC_ESTATE
 * while not finished, CONC_EINVAL. */
CONC_EXTERN int conc_process_future_error(conc_future_t *f,
                                          conc_pool_error_t *e);

/* ---- scoped use ----------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
static inline conc_pool_t *conc__with_pool_begin(conc_pool_t *p) {
  return conc_pool_enter(p) == 0 ? p : NULL;
}
static inline void conc__with_pool_end(conc_pool_t **p) {
  if (*p)
    conc_pool_terminate(*p);
}
static inline void conc__with_pexec_end(conc_process_executor_t **p) {
  if (*p)
    conc_process_executor_shutdown(*p, true, false);
}
#define CONC__POOL_CAT2(a, b) a##b
#define CONC__POOL_CAT(a, b) CONC__POOL_CAT2(a, b)
#define CONC__WITH_POOL(pool, id)                                              \
  for (conc_pool_t * id __attribute__((cleanup(conc__with_pool_end))) =        \
           conc__with_pool_begin(pool),                                        \
                        *CONC__POOL_CAT(id, _once) = id;                       \
       CONC__POOL_CAT(id, _once); CONC__POOL_CAT(id, _once) = NULL)
/* The body runs once if the pool is running (conc_pool_enter); leaving it
 * in any way calls terminate(), as Python's __exit__ does. */
#define CONC_WITH_POOL(pool)                                                   \
  CONC__WITH_POOL((pool), CONC__POOL_CAT(conc__with_pool_, __LINE__))
#define CONC__WITH_PEXEC(ex, id)                                               \
  for (conc_process_executor_t * id                                            \
           __attribute__((cleanup(conc__with_pexec_end))) = (ex),              \
           *CONC__POOL_CAT(id, _once) = id;                                    \
       CONC__POOL_CAT(id, _once); CONC__POOL_CAT(id, _once) = NULL)
/* The body runs once; leaving it in any way calls shutdown(wait=True). */
#define CONC_WITH_PROCESS_EXECUTOR(ex)                                         \
  CONC__WITH_PEXEC((ex), CONC__POOL_CAT(conc__with_pexec_, __LINE__))
#endif

CONC_END_DECLS

#endif
