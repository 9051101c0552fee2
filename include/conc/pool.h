/*
 * Pool: Python's multiprocessing.Pool for C (fork-based worker processes).
 *
 *   Python                                  C
 *   pool = Pool(processes=3)                conc_pool_t pool;
 *                                           conc_pool_init(&pool, &(conc_pool_opts_t){.processes = 3});
 *   pool.apply(f, (x,))                     conc_pool_apply(&pool, f, &x, sizeof x, &r, sizeof r, NULL);
 *   res = pool.apply_async(f, (x,))         conc_async_result_t *res;
 *                                           conc_pool_apply_async(&pool, f, &x, sizeof x, sizeof r, NULL, &res);
 *   res.get(timeout=1)                      conc_async_result_get(res, 1.0, &r, sizeof r);
 *   pool.map(f, xs)                         conc_pool_map(&pool, f, xs, n, sizeof *xs, out, sizeof *out, NULL);
 *   for r in pool.imap(f, xs): ...          conc_imap_t *it;
 *                                           conc_pool_imap(&pool, f, xs, n, sizeof *xs, sizeof r, 0, &it);
 *                                           while (conc_imap_next(it, CONC_FOREVER, &r, NULL) == 1) ...
 *   pool.close(); pool.join()               conc_pool_close(&pool); conc_pool_join(&pool);
 *   with Pool() as pool: ...                CONC_WITH_POOL(&pool) { ... }  (terminate() on exit)
 *   raise ValueError("bad") (in f)          return conc_pool_fail(CONC_EINVAL, "bad");
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
 * optionally with a message attached by conc_pool_fail(); a positive return
 * is reported as CONC_EFAILED. Storing a *result_len above result_cap (a
 * result that does not fit: Python's MaybeEncodingError) fails that task
 * with CONC_EMSGSIZE; the worker carries on.
 *
 * Results (AsyncResult, IMapIterator) are heap objects with a reference
 * count: the caller owns one and gives it back with _release; they stay
 * valid after their pool is destroyed.
 *
 * Reliability (where Python hangs): a worker that dies mid-task fails only
 * the item it was running (CONC_EWORKERDIED, with the signal number and a
 * message); the items of its chunk that finished keep their results, the
 * rest are run again, the worker is replaced and every other task completes.
 * terminate() fails every pending task (CONC_ECANCELED) and returns once the
 * workers are gone, however many tasks were queued. Workers die with the
 * process that created the pool (PR_SET_PDEATHSIG).
 *
 * A pool belongs to the process that created it: calls from a forked child
 * return CONC_EPERM. Its results and iterators, likewise, are for the
 * creating process (a child forked while the pool runs gets copies that
 * never complete).
 */
#ifndef CONC_POOL_H
#define CONC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conc/defs.h"

/* Longest remote error message kept, including the terminating NUL. */
#define CONC_POOL_MESSAGE_MAX 256

typedef int (*conc_pool_func_t)(const void *arg, size_t arg_len, void *result,
                                size_t result_cap, size_t *result_len);

typedef struct conc_pool_opts {
  /* Number of worker processes. 0: conc_process_cpu_count() (Python 3.13's
   * default); negative: CONC_EINVAL. Python's Pool(0) error has no C
   * spelling because zero means "default" throughout libconc. */
  int processes;
  /* Runs once in every worker before its first task (initializer(*initargs)).
   */
  void *(*initializer)(void *);
  void *initarg;
  /* Tasks (chunks) a worker runs before it is replaced. 0: no limit
   * (Python's None); negative: CONC_EINVAL. */
  int maxtasksperchild;
  /* Bytes of shared transfer area per worker (arguments and results of one
   * chunk). 0: 1 MiB (committed lazily). An item that cannot fit fails its
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
 * conc_async_result_value / _message / _item_error (get() would wait for
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
  size_t chunksize;    /* 0: ceil(n / (4 * processes)) */
  int *errors;         /* optional, n entries: each item's code (0 = success) */
  size_t *result_lens; /* optional, n entries: each item's result length */
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
 * running"), CONC_EMSGSIZE (one item does not fit the transfer area),
 * CONC_EOVERFLOW, CONC_ENOMEM, CONC_EPERM (not the creating process). */

/* apply(f, args): the task's code (0 on success). result_len may be NULL. */
CONC_EXTERN int conc_pool_apply(conc_pool_t *pool, conc_pool_func_t fn,
                                const void *arg, size_t arg_len, void *result,
                                size_t result_cap, size_t *result_len);

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
 * item with the lowest index is returned (0 if none); opts->errors gets
 * every item's code. n == 0 returns 0 at once.
 */
CONC_EXTERN int conc_pool_map(conc_pool_t *pool, conc_pool_func_t fn,
                              const void *in, size_t n, size_t arg_size,
                              void *out, size_t result_size,
                              const conc_pool_map_opts_t *opts);

/* starmap: in C the argument tuple is a struct, so starmap is map over an
 * array of structs (kept for the Python name). */
CONC_EXTERN int conc_pool_starmap(conc_pool_t *pool, conc_pool_func_t fn,
                                  const void *in, size_t n, size_t arg_size,
                                  void *out, size_t result_size,
                                  const conc_pool_map_opts_t *opts);

/* map_async / starmap_async: the input is copied; get() copies the n
 * results (n * result_size bytes) out. The callback runs once for the
 * whole map, error_callback once with the first (lowest index) failure. */
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

/* In a task: attach a message (Python: the remote traceback) to the failure
 * and return `code` (CONC_EFAILED when code >= 0), so a task can end with
 * `return conc_pool_fail(CONC_EINVAL, "bad item %d", x);`. */
CONC_EXTERN int conc_pool_fail(int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- AsyncResult ------------------------------------------------------- */

/* get(timeout): wait, then 0 with the result copied to out (apply: its
 * result_len bytes; map: n * result_size bytes; out may be NULL), or the
 * task's code (map: the first failing item's). CONC_ETIMEDOUT while not
 * ready at the timeout (CONC_FOREVER: no limit; 0 or negative: check once);
 * CONC_ETOOSHORT when out_size is too small (nothing copied); CONC_EINVAL
 * for NaN. */
CONC_EXTERN int conc_async_result_get(conc_async_result_t *r, double timeout,
                                      void *out, size_t out_size);
/* wait(timeout): 0 once ready, CONC_ETIMEDOUT, CONC_EINVAL. */
CONC_EXTERN int conc_async_result_wait(conc_async_result_t *r, double timeout);
CONC_EXTERN bool conc_async_result_ready(conc_async_result_t *r);
/* successful(): 1 or 0; CONC_ESTATE before ready (Python's ValueError). */
CONC_EXTERN int conc_async_result_successful(conc_async_result_t *r);
/* The result bytes once complete (in callbacks too), else NULL. *len (may
 * be NULL) gets their length. Valid until release. */
CONC_EXTERN const void *conc_async_result_value(conc_async_result_t *r,
                                                size_t *len);
/* The failure's message ("" if none): what the task passed to
 * conc_pool_fail, or how its worker died. */
CONC_EXTERN const char *conc_async_result_message(conc_async_result_t *r);
/* The signal that killed the worker running the failed item, else 0. */
CONC_EXTERN int conc_async_result_signal(conc_async_result_t *r);
/* Index of the failing item reported by get() (-1 if none). */
CONC_EXTERN long conc_async_result_error_index(conc_async_result_t *r);
/* Item i's code once complete; CONC_EINVAL for i out of range,
 * CONC_ESTATE before completion. */
CONC_EXTERN int conc_async_result_item_error(conc_async_result_t *r, size_t i);
CONC_EXTERN void conc_async_result_release(conc_async_result_t *r);

/* ---- IMapIterator ------------------------------------------------------- */

/* next(timeout): 1 with the result copied to out (result_size bytes; out may
 * be NULL) and its input index in *index (may be NULL); 0 at the end
 * (StopIteration); an item's failure code (the iteration moves past it;
 * *index set); CONC_ETIMEDOUT (nothing consumed); CONC_EINVAL. */
CONC_EXTERN int conc_imap_next(conc_imap_t *it, double timeout, void *out,
                               size_t *index);
/* The underlying result, for its messages (borrowed; do not release). */
CONC_EXTERN conc_async_result_t *conc_imap_result(conc_imap_t *it);
/* Drop the iterator; tasks not yet run still run. */
CONC_EXTERN void conc_imap_release(conc_imap_t *it);

/* ---- scoped use: with Pool() as pool ------------------------------------ */

#if defined(__GNUC__) || defined(__clang__)
static inline conc_pool_t *conc__with_pool_begin(conc_pool_t *p) {
  return conc_pool_enter(p) == 0 ? p : NULL;
}
static inline void conc__with_pool_end(conc_pool_t **p) {
  if (*p)
    conc_pool_terminate(*p);
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
#endif

CONC_END_DECLS

#endif
