// clang-format off
/*
 * futures: the thread side of Python's concurrent.futures. Future, the
 * thread-pool Executor (ThreadPoolExecutor), wait, as_completed and map.
 *
 *   Python                                   C
 *   ex = ThreadPoolExecutor(max_workers=4)   conc_executor_t ex;
 *                                            conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 4});
 *   f = ex.submit(fn, arg)                   conc_future_t *f; conc_executor_submit(&ex, fn, arg, &f);
 *   v = f.result(timeout=2)                  void *v; int rc = conc_future_result(f, 2, &v);
 *   (f is garbage collected)                 conc_future_release(f);
 *   return x (in fn)                         *result = x; return 0;
 *   raise ValueError("bad") (in fn)          return conc_raise(CONC_EINVAL, "bad");
 *   f.add_done_callback(cb)                  conc_future_add_done_callback(f, cb, arg);  (void cb(f, arg))
 *   with ex: ...                             CONC_WITH_EXECUTOR(&ex) { ... }
 *   ex.shutdown(wait=True)                   conc_executor_shutdown(&ex, true, false);
 *   wait(fs, return_when=FIRST_COMPLETED)    conc_futures_wait(fs, n, CONC_FOREVER, CONC_FIRST_COMPLETED, &res);
 *   for f in as_completed(fs): ...           conc_as_completed_t it; conc_as_completed_init(&it, fs, n, CONC_FOREVER);
 *                                            while (conc_as_completed_next(&it, &f) == 0) ...
 *   for r in ex.map(fn, xs): ...             conc_map_t m; conc_executor_map(&ex, fn, xs, n, CONC_FOREVER, &m);
 *                                            while ((rc = conc_map_next(&m, &r)) == 0) ...
 *
 * Tasks have the library's one callable shape, conc_fn_t (defs.h):
 * int fn(void *arg, void **result). Return 0 with *result (pre-set to
 * NULL): that is the future's result. Return a negative CONC_E* code (a
 * task raises): the future fails with that code, and the message of
 * `return conc_raise(code, fmt, ...)` is its exception's message. A
 * positive return becomes CONC_EFAILED. A task ends by returning; it must
 * not end its worker thread.
 *
 * Futures are heap objects with a reference count: the creator (submit or
 * conc_future_new) gets one reference and gives it back with
 * conc_future_release. They stay valid after their executor is destroyed.
 * Their records are recycled, so steady-state submission allocates nothing.
 *
 * Outputs come last and are written only on success.
 */
// clang-format on
#ifndef CONC_FUTURES_H
#define CONC_FUTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/defs.h"

CONC_BEGIN_DECLS

typedef struct conc_future conc_future_t;

/* ---- Future ------------------------------------------------------------- */

/* Future(): a pending future that the caller completes (set_result /
 * set_exception). Returns 0, CONC_EINVAL (out NULL) or CONC_ENOMEM (*out
 * untouched). */
CONC_EXTERN int conc_future_new(conc_future_t **out);
/* Take one more reference; returns f. */
CONC_EXTERN conc_future_t *conc_future_retain(conc_future_t *f);
/* Give a reference back; the last one frees (recycles) the future. */
CONC_EXTERN void conc_future_release(conc_future_t *f);

/* cancel(): true if the future is (now) cancelled; false once running or
 * finished. Cancelling runs the done callbacks and wakes result() waiters. */
CONC_EXTERN bool conc_future_cancel(conc_future_t *f);
CONC_EXTERN bool conc_future_cancelled(const conc_future_t *f);
CONC_EXTERN bool conc_future_running(const conc_future_t *f);
CONC_EXTERN bool conc_future_done(const conc_future_t *f);

/*
 * result(timeout): 0 and *out = the value (out may be NULL) once finished;
 * the task's failure code if it failed (message: conc_future_exception);
 * CONC_ECANCELED if cancelled (also while waiting); CONC_ETIMEDOUT.
 * A negative timeout other than CONC_FOREVER polls; NaN is CONC_EINVAL.
 */
CONC_EXTERN int conc_future_result(conc_future_t *f, double timeout,
                                   void **out);

/* exception(timeout): the failure as an error object. */
typedef struct conc_future_error {
  int code;            /* 0: the future succeeded (Python's None) */
  const char *message; /* "" if none; valid while the future is */
} conc_future_error_t;

/* 0 with *err filled once finished (code 0 for a success), CONC_ECANCELED,
 * CONC_ETIMEDOUT, CONC_EINVAL as for result. */
CONC_EXTERN int conc_future_exception(conc_future_t *f, double timeout,
                                      conc_future_error_t *err);

/*
 * add_done_callback(fn): fn(f, arg) runs once the future is finished or
 * cancelled, in the completing thread, callbacks in registration order; at
 * once in the caller if already done. A callback runs for its effect and
 * returns nothing (design.md: callbacks return void, user pointer last).
 * Returns 0, CONC_EINVAL, or CONC_ENOMEM (nothing registered).
 */
typedef void (*conc_future_callback_t)(conc_future_t *f, void *arg);
CONC_EXTERN int conc_future_add_done_callback(conc_future_t *f,
                                              conc_future_callback_t fn,
                                              void *arg);

/* For executors and users completing futures themselves. */
/* set_running_or_notify_cancel(): 1 (was pending, now running), 0 (was
 * cancelled, now cancelled-and-notified, waiters woken), CONC_ESTATE
 * (any other state, Python's RuntimeError). */
CONC_EXTERN int conc_future_set_running_or_notify_cancel(conc_future_t *f);
/* set_result / set_exception: 0, or CONC_EINVALSTATE once done or
 * cancelled (the first outcome is kept). code 0 or positive becomes
 * CONC_EFAILED, so a failure always reads as one. message may be NULL. */
CONC_EXTERN int conc_future_set_result(conc_future_t *f, void *value);
CONC_EXTERN int conc_future_set_exception(conc_future_t *f, int code,
                                          const char *message);

/* repr(f) into buf (snprintf rules): "<Future at 0xADDR state=pending>",
 * "state=running", "state=cancelled", "state=finished returned 0xVALUE",
 * "state=finished raised ValueError". Returns the length needed, or
 * CONC_EINVAL for a NULL f, or a NULL buf with len > 0. */
CONC_EXTERN int conc_future_repr(const conc_future_t *f, char *buf, size_t len);

/* ---- wait / as_completed ---------------------------------------------------
 */

typedef enum conc_return_when {
  CONC_FIRST_COMPLETED = 1,
  CONC_FIRST_EXCEPTION = 2,
  CONC_ALL_COMPLETED = 3
} conc_return_when_t;

/* wait()'s (done, not_done): caller-provided arrays of capacity n (either
 * may be NULL); duplicates in the input appear once, in first-seen order. */
typedef struct conc_wait_result {
  conc_future_t **done;
  size_t ndone;
  conc_future_t **not_done;
  size_t nnot_done;
} conc_wait_result_t;

/*
 * wait(fs, timeout, return_when). Returns 0, also when the timeout passed
 * (the split is then partial, as in Python); CONC_EINVAL for a bad
 * return_when, NULL fs with n > 0, a NULL future or a NaN timeout;
 * CONC_ENOMEM. A negative timeout other than CONC_FOREVER polls. A future
 * cancelled but not yet notified by its executor counts as not done.
 */
CONC_EXTERN int conc_futures_wait(conc_future_t *const *fs, size_t n,
                                  double timeout,
                                  conc_return_when_t return_when,
                                  conc_wait_result_t *res);

/* as_completed(fs, timeout): caller-allocated iterator, contents private. */
typedef struct conc_as_completed {
  struct {
    void *state;
    char message[64];
  } priv;
} conc_as_completed_t;

/* The timeout runs from this call. Returns 0, CONC_EINVAL, CONC_ENOMEM. */
CONC_EXTERN int conc_as_completed_init(conc_as_completed_t *it,
                                       conc_future_t *const *fs, size_t n,
                                       double timeout);
/* 0 and *out = the next future (already-done ones first, then in
 * completion order; each distinct future once); CONC_EEOF once all were
 * given; CONC_ETIMEDOUT at the timeout (then conc_as_completed_message
 * says "k (of n) futures unfinished", and the iteration is over: CONC_EEOF
 * after it). *out is written only with 0. */
CONC_EXTERN int conc_as_completed_next(conc_as_completed_t *it,
                                       conc_future_t **out);
/* Futures not yet given out, and the TimeoutError text after a timeout. */
CONC_EXTERN size_t conc_as_completed_unfinished(const conc_as_completed_t *it);
CONC_EXTERN const char *
conc_as_completed_message(const conc_as_completed_t *it);
CONC_EXTERN void conc_as_completed_destroy(conc_as_completed_t *it);

/* ---- Executor ------------------------------------------------------------ */

typedef struct conc_executor_opts {
  /* 0: Python's default min(32, cpu count + 4); negative: CONC_EINVAL. */
  int max_workers;
  /* Worker names are "<prefix>_<i>"; NULL or "": "ThreadPoolExecutor-<k>"
   * (Python: thread_name_prefix or the default). */
  const char *thread_name_prefix;
  /* initializer(initarg) runs once in each worker before any task. A
   * nonzero return (with a message: return conc_raise(code, ...)) breaks
   * the pool: it is reported on stderr with its code and message, and
   * queued and later futures fail with CONC_EBROKENPOOL. Python's
   * initargs tuple is one pointer here, hence the name initarg. */
  int (*initializer)(void *initarg);
  void *initarg;
} conc_executor_opts_t;

typedef struct conc_executor {
  struct {
    void *core;
    uint32_t magic;
  } priv;
} conc_executor_t;

/* ThreadPoolExecutor(...): no thread starts until the first submit. */
CONC_EXTERN int conc_executor_init(conc_executor_t *ex,
                                   const conc_executor_opts_t *opts);

/*
 * submit(fn, arg): *out (if out is not NULL) gets a future with one
 * reference for the caller. Returns 0, CONC_EINVAL (NULL ex or fn),
 * CONC_ESTATE after shutdown or during process exit (RuntimeError "cannot
 * schedule new futures after shutdown"), CONC_EBROKENPOOL once an
 * initializer failed, CONC_ENOMEM / CONC_EAGAIN. On failure nothing is
 * queued and *out is left as it was. A task may submit to its own
 * executor.
 */
CONC_EXTERN int conc_executor_submit(conc_executor_t *ex, conc_fn_t fn,
                                     void *arg, conc_future_t **out);

/*
 * shutdown(wait, cancel_futures): no new submissions; queued work still
 * runs unless cancel_futures, which cancels (and notifies) every future
 * not yet started. wait: return once all workers have ended. Idempotent.
 * Called from one of the executor's own tasks, it never waits for itself.
 */
CONC_EXTERN int conc_executor_shutdown(conc_executor_t *ex, bool wait,
                                       bool cancel_futures);

/* shutdown(wait=True) and release everything; outstanding futures stay
 * valid (their outcome is final by then). */
CONC_EXTERN void conc_executor_destroy(conc_executor_t *ex);

/* The executor's max_workers and the number of live worker threads;
 * CONC_EINVAL for an executor not initialised or destroyed. */
CONC_EXTERN int conc_executor_max_workers(conc_executor_t *ex);
CONC_EXTERN int conc_executor_num_threads(conc_executor_t *ex);
/* The prefix of the worker names ("ThreadPoolExecutor-<k>" by default);
 * NULL for an executor not initialised or destroyed. */
CONC_EXTERN const char *conc_executor_thread_name_prefix(conc_executor_t *ex);

/* ---- map ----------------------------------------------------------------- */

typedef struct conc_map {
  struct {
    conc_future_t **fs;
    size_t n, next;
    int64_t deadline;
    const char *message;
  } priv;
} conc_map_t;

/*
 * executor.map(fn, inputs, timeout): submits fn(inputs[i], &result) for
 * every i at once (even if nothing is read). The timeout runs from this
 * call. Returns 0 with *m ready, CONC_EINVAL (NULL ex, m or fn, NULL
 * inputs with n > 0, a NaN timeout), or the submit errors (nothing is left
 * queued then). On failure *m is left as it was (there is nothing to
 * close).
 */
CONC_EXTERN int conc_executor_map(conc_executor_t *ex, conc_fn_t fn,
                                  void *const *inputs, size_t n, double timeout,
                                  conc_map_t *m);
/*
 * The next result in input order: 0 and *out; CONC_EEOF after the last; a
 * failure code of element k when the iteration reaches k (message:
 * conc_map_message), or CONC_ETIMEDOUT. After a failure or a timeout the
 * futures not yet started are cancelled and the iteration is over (then
 * CONC_EEOF). *out is written only with 0.
 */
CONC_EXTERN int conc_map_next(conc_map_t *m, void **out);
/* Index of the element the next conc_map_next will return. */
CONC_EXTERN size_t conc_map_index(const conc_map_t *m);
CONC_EXTERN const char *conc_map_message(const conc_map_t *m);
/* Closing the iterator cancels what has not started and frees it. */
CONC_EXTERN void conc_map_close(conc_map_t *m);

/* ---- scoped use: with ThreadPoolExecutor() as ex ----------------------- */

#if defined(__GNUC__) || defined(__clang__)
static inline void conc__with_executor_end(conc_executor_t **p) {
  if (*p)
    conc_executor_shutdown(*p, true, false);
}
#define CONC__FUT_CAT2(a, b) a##b
#define CONC__FUT_CAT(a, b) CONC__FUT_CAT2(a, b)
#define CONC__WITH_EXECUTOR(ex, id)                                            \
  for (conc_executor_t * id                                                    \
           __attribute__((cleanup(conc__with_executor_end))) = (ex),           \
           *CONC__FUT_CAT(id, _once) = id;                                     \
       CONC__FUT_CAT(id, _once); CONC__FUT_CAT(id, _once) = NULL)
/* The body runs once; leaving it in any way calls shutdown(wait=True). */
#define CONC_WITH_EXECUTOR(ex)                                                 \
  CONC__WITH_EXECUTOR((ex), CONC__FUT_CAT(conc__with_ex_, __LINE__))
#endif

CONC_END_DECLS

#endif
