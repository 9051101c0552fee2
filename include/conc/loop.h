// clang-format off
/*
 * The event loop: asyncio's loop, futures and tasks on libconc's stackful
 * coroutines. A task is a C function running on its own coroutine, so it
 * may await from any call depth: no function has to be "async".
 *
 *
 *   Python (asyncio)                      C
 *   asyncio.run(main())                   conc_aio_run(main, arg, NULL, &res)
 *   loop = asyncio.new_event_loop()       conc_loop_create(NULL, &loop)
 *   loop.run_until_complete(t)            conc_loop_run_until_complete(loop, t, &res)
 *   loop.run_forever() / loop.stop()      conc_loop_run_forever(loop) / conc_loop_stop(loop)
 *   loop.close()                          conc_loop_close(loop); conc_loop_destroy(loop)
 *   asyncio.get_running_loop()            conc_loop_running()
 *   loop.time()                           conc_loop_time(loop)
 *   h = loop.call_soon(cb, arg)           conc_loop_call_soon(loop, cb, arg, &h)
 *   loop.call_later(d, cb, arg)           conc_loop_call_later(loop, d, cb, arg, &h)
 *   loop.call_at(when, cb, arg)           conc_loop_call_at(loop, when, cb, arg, &h)
 *   h.cancel()                            conc_loop_cancel(loop, h)
 *   loop.call_soon_threadsafe(cb, arg)    conc_loop_call_soon_threadsafe(loop, cb, arg)
 *   loop.add_reader(fd, cb, arg)          conc_loop_add_reader(loop, fd, cb, arg)
 *   loop.add_signal_handler(SIGINT, cb)   conc_loop_add_signal_handler(loop, SIGINT, cb, arg)
 *   fut = loop.create_future()            conc_aio_future_create(loop, &fut)
 *   fut.set_result(v)                     conc_aio_future_set_result(fut, v)
 *   fut.set_exception(ValueError())       conc_aio_future_set_error(fut, CONC_EINVAL)
 *   fut.add_done_callback(cb)             conc_aio_future_add_done_callback(fut, cb, arg)
 *   t = asyncio.create_task(f(x), name=n) conc_aio_create_task(NULL, f, x, &opts, &t)
 *   v = await t                           rc = conc_aio_await(t, &v)
 *   t.cancel(msg)                         conc_aio_cancel(t, msg)
 *   except CancelledError                 if (rc == CONC_ECANCELED)
 *   await asyncio.sleep(d)                conc_aio_sleep(d)
 *   asyncio.current_task()                conc_aio_current_task()
 *   await asyncio.gather(*ts)             conc_aio_gather(ts, n, &opts, &g); conc_aio_await(g, NULL)
 *   await asyncio.wait_for(t, 2)          conc_aio_wait_for(t, 2, &v)
 *   async with asyncio.timeout(2): ...    conc_aio_timeout_enter(&to, 2); ...; rc = conc_aio_timeout_exit(&to, rc)
 *   await asyncio.shield(t)               conc_aio_shield(t, &s); conc_aio_await(s, &v)
 *   await loop.run_in_executor(ex, f, a)  conc_aio_run_in_executor(ex, f, a, &v)
 *   await asyncio.to_thread(f, a)         conc_aio_to_thread(f, a, &v)
 *
 *
 * Call shape (docs/design.md): the object comes first, options after the
 * inputs, and output parameters last; an output is written only on
 * success. A function that runs user code as a task has the shape
 * `int fn(void *arg, void **result)`: it returns 0 with *result set (a
 * result pre-set to NULL), or a negative CONC_E* code, which is its
 * "exception" (CONC_ECANCELED ends the task cancelled). Every callback
 * takes a user pointer.
 *
 * Threads: a loop belongs to the thread that created it and all of these
 * calls are made on that thread, except conc_loop_call_soon_threadsafe,
 * conc_loop_stop_threadsafe and conc_aio_run_coroutine_threadsafe, which
 * any thread may call. A thread runs at most one loop at a time.
 */
// clang-format on
#ifndef CONC_LOOP_H
#define CONC_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/defs.h"
#include "conc/futures.h"

CONC_BEGIN_DECLS

/* ---- the loop ---------------------------------------------------------- */

typedef struct conc_loop conc_loop_t;

/* The readiness backend. */
typedef enum conc_loop_backend {
  CONC_LOOP_BACKEND_DEFAULT = 0, /* the CMake choice (CONC_LOOP_POLLER),
                                    or CONC_LOOP_BACKEND=epoll|poll|io_uring */
  CONC_LOOP_BACKEND_EPOLL = 1,
  CONC_LOOP_BACKEND_POLL = 2,
  CONC_LOOP_BACKEND_IO_URING = 3, /* built with CONC_WITH_IO_URING=ON only
                                     (else CONC_ENOSYS); where the kernel
                                     refuses a ring, the loop uses epoll */
} conc_loop_backend_t;

/* Zero means the default for every field. */
typedef struct conc_loop_opts {
  conc_loop_backend_t backend;
  /* Debug mode (asyncio's debug=True; also CONC_LOOP_DEBUG=1 in the
   * environment): report callbacks and task steps that hold the loop longer
   * than slow_callback_duration, tasks destroyed while pending, and errors
   * nobody retrieved. */
  bool debug;
  double slow_callback_duration; /* seconds; 0: 0.1 */
} conc_loop_opts_t;

/*
 * new_event_loop(): a loop for the calling thread. It becomes the thread's
 * loop (conc_loop_get) unless the thread has one already.
 * CONC_EINVAL (out NULL, bad backend), CONC_ENOSYS (backend not built),
 * CONC_ENOMEM, CONC_EMFILE.
 */
CONC_EXTERN int conc_loop_create(const conc_loop_opts_t *opts,
                                 conc_loop_t **out);

/* close(): drop pending callbacks and timers, release the poller. A closed
 * loop rejects new callbacks (CONC_ECLOSED). CONC_ESTATE while running;
 * closing twice is a no-op (0). */
CONC_EXTERN int conc_loop_close(conc_loop_t *loop);

/* Close (when not yet closed) and free the loop. CONC_ESTATE while running
 * (nothing changes). NULL is ignored. */
CONC_EXTERN int conc_loop_destroy(conc_loop_t *loop);

/* get_running_loop(): the loop running on this thread, or NULL. */
CONC_EXTERN conc_loop_t *conc_loop_running(void);

/* The thread's loop: the running one, else the last one this thread
 * created and has not destroyed, else NULL. */
CONC_EXTERN conc_loop_t *conc_loop_get(void);

/* run_forever(): run until conc_loop_stop. 0; CONC_ESTATE if this or another
 * loop already runs on this thread, CONC_ECLOSED, CONC_EWRONGTHREAD. */
CONC_EXTERN int conc_loop_run_forever(conc_loop_t *loop);

/* stop(): the current iteration finishes (callbacks already ready run),
 * then run_forever returns. Called while not running, the next
 * run_forever runs one iteration and returns. */
CONC_EXTERN void conc_loop_stop(conc_loop_t *loop);

/* stop() from any thread. */
CONC_EXTERN int conc_loop_stop_threadsafe(conc_loop_t *loop);

CONC_EXTERN bool conc_loop_is_running(const conc_loop_t *loop);
CONC_EXTERN bool conc_loop_is_closed(const conc_loop_t *loop);
CONC_EXTERN bool conc_loop_get_debug(const conc_loop_t *loop);
CONC_EXTERN void conc_loop_set_debug(conc_loop_t *loop, bool on);

/* The loop's clock (seconds on CLOCK_MONOTONIC), as loop.time(). */
CONC_EXTERN double conc_loop_time(const conc_loop_t *loop);

/* Iterations run so far (diagnostics and tests). */
CONC_EXTERN uint64_t conc_loop_iterations(const conc_loop_t *loop);

/*
 * set_exception_handler(): where the loop reports what it cannot return to
 * anyone (an error no one retrieved, a task destroyed while pending, a slow
 * callback in debug mode): fn(loop, message, arg). NULL restores the
 * default, which prints "libconc: <message>" to stderr.
 */
typedef void (*conc_loop_exception_handler_t)(conc_loop_t *loop,
                                              const char *message, void *arg);
CONC_EXTERN void
conc_loop_set_exception_handler(conc_loop_t *loop,
                                conc_loop_exception_handler_t fn, void *arg);

/* "epoll", "poll" or "io_uring". */
CONC_EXTERN const char *conc_loop_backend_name(const conc_loop_t *loop);

/* ---- callbacks and timers ------------------------------------------------ */

typedef void (*conc_loop_cb_t)(void *arg);

/* A handle to a scheduled callback: a value, valid for as long as the caller
 * keeps it (cancelling a callback that already ran or was cancelled does
 * nothing). A zeroed handle refers to nothing. */
typedef struct conc_handle {
  void *rec;
  uint64_t gen;
} conc_handle_t;

/*
 * call_soon(cb, arg): cb runs on a later iteration, callbacks in FIFO
 * order (A2). out may be NULL. CONC_EINVAL (NULL loop or cb), CONC_ECLOSED,
 * CONC_EWRONGTHREAD, CONC_ENOMEM.
 */
CONC_EXTERN int conc_loop_call_soon(conc_loop_t *loop, conc_loop_cb_t cb,
                                    void *arg, conc_handle_t *out);

/* call_later(delay, cb, arg): run at or after loop.time() + delay; timers
 * fire in deadline order, ties in scheduling order. A negative delay is 0;
 * NaN is CONC_EINVAL. */
CONC_EXTERN int conc_loop_call_later(conc_loop_t *loop, double delay,
                                     conc_loop_cb_t cb, void *arg,
                                     conc_handle_t *out);

/* call_at(when, cb, arg): when on the loop's clock (conc_loop_time). */
CONC_EXTERN int conc_loop_call_at(conc_loop_t *loop, double when,
                                  conc_loop_cb_t cb, void *arg,
                                  conc_handle_t *out);

/* Handle.cancel(): true when the callback was pending and now never runs;
 * false when it ran, was cancelled already, or h refers to nothing. */
CONC_EXTERN bool conc_loop_cancel(conc_loop_t *loop, conc_handle_t h);

/* TimerHandle.when(): the deadline on the loop's clock, or NaN once the
 * timer ran or was cancelled (and for call_soon handles). */
CONC_EXTERN double conc_loop_handle_when(conc_loop_t *loop, conc_handle_t h);

/*
 * call_soon_threadsafe(cb, arg) from any thread (A3): cb runs on the loop's
 * thread, calls from one thread in order. Wake-ups are batched: a loop
 * asleep in the poller is woken by one eventfd write however many calls
 * arrive before it runs. CONC_ECLOSED once the loop is closed.
 */
CONC_EXTERN int conc_loop_call_soon_threadsafe(conc_loop_t *loop,
                                               conc_loop_cb_t cb, void *arg);

/* ---- I/O readiness ------------------------------------------------------- */

/*
 * add_reader / add_writer(fd, cb, arg): cb(arg) runs on every iteration on
 * which fd is readable / writable, until removed. Replaces an earlier reader
 * (writer) of the same fd. CONC_EBADF for a descriptor the poller refuses,
 * CONC_EINVAL for a negative fd; CONC_EPERM for a regular file under epoll
 * (as asyncio). remove_*: true when a callback was registered.
 */
CONC_EXTERN int conc_loop_add_reader(conc_loop_t *loop, int fd,
                                     conc_loop_cb_t cb, void *arg);
CONC_EXTERN int conc_loop_add_writer(conc_loop_t *loop, int fd,
                                     conc_loop_cb_t cb, void *arg);
CONC_EXTERN bool conc_loop_remove_reader(conc_loop_t *loop, int fd);
CONC_EXTERN bool conc_loop_remove_writer(conc_loop_t *loop, int fd);

/* ---- signals ------------------------------------------------------------ */

/*
 * add_signal_handler(sig, cb, arg): when sig arrives (whichever thread the
 * kernel picks), cb(arg) runs on the loop's thread as a loop callback, so
 * it may do anything a callback may: cancel the main task, stop the loop.
 * This is the documented way for a loop program to stop cleanly on Ctrl-C
 * (SIGINT) or SIGTERM. The handler is installed with sigaction and without
 * SA_RESTART; it only writes the signal number to a pipe the loop watches.
 * One loop per process owns a signal: CONC_EBUSY when another loop has it.
 * CONC_EINVAL for a signal number out of range, SIGKILL, SIGSTOP or a
 * signal the libc reserves. Registering again replaces the callback.
 * remove_signal_handler: true when a handler was registered; the signal's
 * earlier disposition is restored. Closing the loop removes them all.
 */
CONC_EXTERN int conc_loop_add_signal_handler(conc_loop_t *loop, int sig,
                                             conc_loop_cb_t cb, void *arg);
CONC_EXTERN bool conc_loop_remove_signal_handler(conc_loop_t *loop, int sig);

/* ---- futures (asyncio.Future) ------------------------------------------ */

/*
 * A loop future, or a task (asyncio.Task is a Future that runs a function;
 * in C both share this handle type). Heap objects with a reference count
 * confined to the loop's thread: create gives the caller one reference,
 * conc_aio_future_release gives it back. The loop keeps its own reference
 * while a task runs or a callback is pending.
 */
typedef struct conc_aio_future conc_aio_future_t;

/* create_future(). loop NULL: the thread's loop. */
CONC_EXTERN int conc_aio_future_create(conc_loop_t *loop,
                                       conc_aio_future_t **out);
CONC_EXTERN conc_aio_future_t *conc_aio_future_retain(conc_aio_future_t *f);
/* The last release frees; a future whose error was never retrieved reports
 * it then (asyncio's "exception was never retrieved"), as does a task
 * destroyed while pending in debug mode. NULL is ignored. */
CONC_EXTERN void conc_aio_future_release(conc_aio_future_t *f);

CONC_EXTERN conc_loop_t *conc_aio_future_loop(const conc_aio_future_t *f);
CONC_EXTERN bool conc_aio_future_done(const conc_aio_future_t *f);
CONC_EXTERN bool conc_aio_future_cancelled(const conc_aio_future_t *f);

/*
 * result() (F1): 0 and *out (may be NULL) for a result; the error code of a
 * failed future; CONC_ECANCELED when cancelled; CONC_EINVALSTATE while
 * pending. Reading marks an error as retrieved.
 */
CONC_EXTERN int conc_aio_future_result(conc_aio_future_t *f, void **out);

/* exception(): the error code (0 for a result); CONC_ECANCELED when
 * cancelled; CONC_EINVALSTATE while pending. Marks it retrieved. */
CONC_EXTERN int conc_aio_future_exception(conc_aio_future_t *f);

/* set_result / set_exception (F2): 0, or CONC_EINVALSTATE when done or
 * cancelled (the first outcome is kept). set_error: code must be negative
 * (CONC_EINVAL otherwise) and not CONC_ECANCELED (use cancel). Not for
 * tasks (CONC_ESTATE): a task's outcome is its function's. */
CONC_EXTERN int conc_aio_future_set_result(conc_aio_future_t *f, void *value);
CONC_EXTERN int conc_aio_future_set_error(conc_aio_future_t *f, int code);

/*
 * cancel(msg): a pending future becomes cancelled and its callbacks are
 * scheduled: true. A done one: false. For a task see F6: the request is
 * delivered as CONC_ECANCELED at its current (or next) await. msg may be
 * NULL; it is copied.
 */
CONC_EXTERN bool conc_aio_cancel(conc_aio_future_t *f, const char *msg);

/* The message of the cancel that cancelled f ("" when none or none given;
 * valid while f is). */
CONC_EXTERN const char *conc_aio_cancel_message(const conc_aio_future_t *f);

/*
 * add_done_callback(cb, arg) (F3): when f completes, cb(f, arg) is
 * scheduled with call_soon (never called inside set_result), in
 * registration order; added to a done future it is scheduled at once.
 * remove_done_callback: the number removed.
 */
typedef void (*conc_aio_done_cb_t)(conc_aio_future_t *f, void *arg);
CONC_EXTERN int conc_aio_future_add_done_callback(conc_aio_future_t *f,
                                                  conc_aio_done_cb_t cb,
                                                  void *arg);
CONC_EXTERN int conc_aio_future_remove_done_callback(conc_aio_future_t *f,
                                                     conc_aio_done_cb_t cb,
                                                     void *arg);

/* ---- tasks --------------------------------------------------------------- */

/* A task's function is the library's one callable shape (conc_fn_t,
 * defs.h): 0 with *result, or a negative code (its exception;
 * CONC_ECANCELED ends it cancelled). *result starts NULL. */
typedef conc_fn_t conc_aio_fn_t;

typedef struct conc_aio_task_opts {
  const char *name;  /* copied; NULL: "Task-N" */
  size_t stack_size; /* 0: CONC_CORO_STACK_DEFAULT */
} conc_aio_task_opts_t;

/*
 * create_task(fn(arg), name=...) (F4): the task starts on the loop's next
 * iteration. loop NULL: the running loop, else the thread's loop. out may
 * be NULL: the loop then keeps the only reference and frees the task when
 * it ends (an error nobody retrieved is reported). CONC_EINVAL (NULL fn,
 * no loop), CONC_ECLOSED, CONC_EWRONGTHREAD, CONC_ENOMEM.
 */
CONC_EXTERN int conc_aio_create_task(conc_loop_t *loop, conc_aio_fn_t fn,
                                     void *arg,
                                     const conc_aio_task_opts_t *opts,
                                     conc_aio_future_t **out);

/* True when f is a task. */
CONC_EXTERN bool conc_aio_is_task(const conc_aio_future_t *f);

/* The task's name ("" for a plain future). set_name copies. */
CONC_EXTERN const char *conc_aio_task_name(const conc_aio_future_t *t);
CONC_EXTERN int conc_aio_task_set_name(conc_aio_future_t *t, const char *name);

/* cancelling(): pending cancel requests; uncancel(): one fewer, returning
 * the count left (F6). CONC_EINVAL for a plain future. */
CONC_EXTERN int conc_aio_task_cancelling(const conc_aio_future_t *t);
CONC_EXTERN int conc_aio_task_uncancel(conc_aio_future_t *t);

/* current_task(): the task running on this thread, or NULL. */
CONC_EXTERN conc_aio_future_t *conc_aio_current_task(void);

/* all_tasks(): up to cap not-done tasks of the loop (NULL: the running
 * one) into out; returns how many exist (may exceed cap). */
CONC_EXTERN size_t conc_aio_all_tasks(conc_loop_t *loop,
                                      conc_aio_future_t **out, size_t cap);

/*
 * await f (F5), from a task, at any call depth: suspends the task until f
 * is done and returns f's outcome: 0 and *out (may be NULL), f's error
 * code, or CONC_ECANCELED (f cancelled, or this task cancelled while
 * waiting: then f is cancelled too, as asyncio does). A done f returns at
 * once without suspending. CONC_ESTATE outside a task (or on another loop's
 * future); CONC_EDEADLK awaiting the running task itself.
 */
CONC_EXTERN int conc_aio_await(conc_aio_future_t *f, void **out);

/*
 * sleep(delay) (F11): suspend the task for at least delay seconds.
 * sleep(0) yields once: every task ready now runs before this one resumes
 * (H2). 0, CONC_ECANCELED, CONC_EINVAL (NaN), CONC_ESTATE outside a task.
 */
CONC_EXTERN int conc_aio_sleep(double delay);

/* ---- running ------------------------------------------------------------- */

/*
 * asyncio.run(main(arg)) (A1): a new loop on this thread, main as its first
 * task, run to completion; then the remaining tasks are cancelled and
 * awaited, and the loop closed and destroyed. Returns main's outcome
 * (0 and *result, or its code). CONC_ESTATE when a loop already runs on
 * this thread. opts may be NULL.
 */
CONC_EXTERN int conc_aio_run(conc_aio_fn_t main, void *arg,
                             const conc_loop_opts_t *opts, void **result);

/* run_until_complete(f): run the loop until f is done; f's outcome as
 * conc_aio_await gives it. CONC_ESTATE when running, CONC_EINVAL for a
 * future of another loop. */
CONC_EXTERN int conc_loop_run_until_complete(conc_loop_t *loop,
                                             conc_aio_future_t *f,
                                             void **result);

/* ---- combinators ----------------------------------------------------------
 */

typedef struct conc_aio_gather_opts {
  bool return_exceptions; /* every slot its own result or code */
  void **results;         /* n slots (may be NULL): results in input order */
  int *codes;             /* n slots (may be NULL): 0 or each child's code */
} conc_aio_gather_opts_t;

/*
 * gather(*futs) (F7): a future that completes when every child is done;
 * results[i]/codes[i] are filled in input order (the arrays must outlive
 * the gather). Without return_exceptions the first error completes it at
 * once with that code and the other children keep running; a cancelled
 * child then counts as an error (CONC_ECANCELED). Cancelling the gather
 * cancels every child. With n == 0 it is done with result NULL.
 */
CONC_EXTERN int conc_aio_gather(conc_aio_future_t *const *futs, size_t n,
                                const conc_aio_gather_opts_t *opts,
                                conc_aio_future_t **out);

/* wait(futs, timeout, return_when) (F8), in a task: 0 once the condition
 * holds or the timeout passes (nothing is cancelled); done and pending
 * (capacity n each, either NULL) receive the sets, and the counts go to
 * *ndone / *npending (may be NULL). conc_return_when_t is futures.h's. */
CONC_EXTERN int conc_aio_wait(conc_aio_future_t *const *futs, size_t n,
                              double timeout, conc_return_when_t when,
                              conc_aio_future_t **done, size_t *ndone,
                              conc_aio_future_t **pending, size_t *npending);

/* wait_for(f, timeout) (F9), in a task: f's outcome, or, when the timeout
 * passes first, f is cancelled, awaited to its end, and CONC_ETIMEDOUT is
 * returned. CONC_FOREVER waits without limit. */
CONC_EXTERN int conc_aio_wait_for(conc_aio_future_t *f, double timeout,
                                  void **out);

/*
 * asyncio.timeout(delay) scope (F9): enter arms it for the current task;
 * when it expires the task is cancelled, so the pending await returns
 * CONC_ECANCELED; exit(rc) returns CONC_ETIMEDOUT in place of that
 * CONC_ECANCELED (and uncancels), or rc unchanged. Scopes nest.
 */
typedef struct conc_aio_timeout {
  void *priv[8];
} conc_aio_timeout_t;

/* enter: 0, CONC_ESTATE outside a task, CONC_EINVAL (NaN). CONC_FOREVER:
 * no deadline until rescheduled. */
CONC_EXTERN int conc_aio_timeout_enter(conc_aio_timeout_t *to, double delay);
/* reschedule(when) on the loop's clock; CONC_FOREVER removes the deadline.
 * CONC_ESTATE once expired or exited. */
CONC_EXTERN int conc_aio_timeout_reschedule(conc_aio_timeout_t *to,
                                            double when);
/* when(): the deadline, or CONC_FOREVER. */
CONC_EXTERN double conc_aio_timeout_when(const conc_aio_timeout_t *to);
CONC_EXTERN bool conc_aio_timeout_expired(const conc_aio_timeout_t *to);
CONC_EXTERN int conc_aio_timeout_exit(conc_aio_timeout_t *to, int rc);

/* shield(f) (F10): a future that follows f's outcome; cancelling it (or the
 * task awaiting it) leaves f running. */
CONC_EXTERN int conc_aio_shield(conc_aio_future_t *f, conc_aio_future_t **out);

/*
 * as_completed(futs, timeout) (F12): next() hands out the futures in
 * completion order: 0 and *out for each, CONC_EEOF after the last,
 * CONC_ETIMEDOUT when the timeout (for the whole iteration) passes first,
 * with conc_aio_as_completed_left() telling how many are unfinished.
 */
typedef struct conc_aio_as_completed conc_aio_as_completed_t;
CONC_EXTERN int conc_aio_as_completed(conc_aio_future_t *const *futs, size_t n,
                                      double timeout,
                                      conc_aio_as_completed_t **out);
CONC_EXTERN int conc_aio_as_completed_next(conc_aio_as_completed_t *it,
                                           conc_aio_future_t **out);
CONC_EXTERN size_t
conc_aio_as_completed_left(const conc_aio_as_completed_t *it);
CONC_EXTERN void conc_aio_as_completed_destroy(conc_aio_as_completed_t *it);

/*
 * TaskGroup: create_task through the group; exit waits for every child. The
 * first child that fails cancels the others and the task inside the group;
 * exit then returns the first error and errors[] (if given) every child's
 * code, as ExceptionGroup. A group whose body was cancelled from outside
 * returns CONC_ECANCELED.
 */
typedef struct conc_aio_taskgroup conc_aio_taskgroup_t;
CONC_EXTERN int conc_aio_taskgroup_enter(conc_aio_taskgroup_t **out);
CONC_EXTERN int conc_aio_taskgroup_create_task(conc_aio_taskgroup_t *g,
                                               conc_aio_fn_t fn, void *arg,
                                               const conc_aio_task_opts_t *opts,
                                               conc_aio_future_t **out);
/* exit(rc): rc is the body's own outcome (0, or its code). Returns 0 when
 * the body and every child succeeded. errors (may be NULL) receives up to
 * cap child codes of failed children, *nerrors their count. Frees g. */
CONC_EXTERN int conc_aio_taskgroup_exit(conc_aio_taskgroup_t *g, int rc,
                                        int *errors, size_t cap,
                                        size_t *nerrors);

/* ---- bridges to threads (F13) ------------------------------------------ */

/* run_in_executor(ex, fn, arg) from a task: fn (a conc_fn_t, as for
 * conc_executor_submit) runs on the executor's worker and the task resumes
 * on the loop's thread with its result (or its negative return code).
 * ex NULL: the loop's default executor (made on first use, shut down when
 * the loop is destroyed). Cancelling the task cancels the work if it has
 * not started. */
CONC_EXTERN int conc_aio_run_in_executor(conc_executor_t *ex, conc_fn_t fn,
                                         void *arg, void **out);

/* to_thread(fn, arg): run_in_executor on the default executor. */
CONC_EXTERN int conc_aio_to_thread(conc_fn_t fn, void *arg, void **out);

/* wrap_future(cf): a loop future that follows the thread future cf (its
 * result, code or cancel). Cancelling the loop future cancels cf. */
CONC_EXTERN int conc_aio_wrap_future(conc_loop_t *loop, conc_future_t *cf,
                                     conc_aio_future_t **out);

/* run_coroutine_threadsafe(fn(arg), loop) from another thread: a task is
 * created on loop and *out is a thread future of its outcome; cancelling
 * that future cancels the task. */
CONC_EXTERN int conc_aio_run_coroutine_threadsafe(conc_loop_t *loop,
                                                  conc_aio_fn_t fn, void *arg,
                                                  conc_future_t **out);

CONC_END_DECLS

#endif
