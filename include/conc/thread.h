// clang-format off
/*
 * Threads: Python's threading.Thread, the thread registry (current_thread,
 * main_thread, enumerate, active_count, get_ident, get_native_id), process
 * exit handling, the excepthook, and thread-local storage (threading.local).
 *
 *   Python                                   C
 *   t = Thread(target=f, args=(x,),          conc_thread_t t;
 *              name="w", daemon=True)        conc_thread_init(&t, f, x,
 *                                              &(conc_thread_opts_t){
 *                                                .name = "w", .daemon = true});
 *   t.start()                                conc_thread_start(&t);
 *   t.join(2.0)                              conc_thread_join(&t, 2.0);
 *   t.is_alive()                             conc_thread_is_alive(&t)
 *   t.name / t.ident / t.native_id           conc_thread_name(&t) / ..._ident / ..._native_id
 *   threading.current_thread().name          conc_thread_name(conc_current_thread())
 *   def f(x): return value                   static int f(void *x, void **result) {
 *                                              *result = value; return 0; }
 *   raise ValueError("bad") (in f)           return conc_raise(CONC_EINVAL, "bad");
 *   threading.excepthook = hook              conc_thread_set_excepthook(hook, user);
 *
 * The target is a conc_fn_t (conc/defs.h). A negative return is the thread's
 * exception: the excepthook gets the code and the message of conc_raise,
 * and conc_thread_result returns the code (a positive return, not a code,
 * counts as CONC_EFAILED). After a 0 return, *result (pre-set to NULL) is
 * what conc_thread_result hands back.
 *
 * Lifetime: a conc_thread_t is caller-allocated and must stay valid while
 * its thread runs (from conc_thread_start until conc_thread_is_alive() is
 * false or a join returned 0). Joining is optional: a thread that is never
 * joined releases its OS resources itself when it ends, so it leaks
 * nothing. conc_thread_destroy() releases the name.
 *
 * "Subclassing" (overriding run()): embed conc_thread_t in your struct and
 * pass your run function with the struct as its argument:
 *
 *   typedef struct { conc_thread_t thread; int n; } counter_t;
 *   static int run(void *arg, void **result) { counter_t *self = arg; ...; return 0; }
 *   conc_thread_init(&c.thread, run, &c, NULL);
 *
 * (Inside run, CONC_CONTAINER_OF(conc_current_thread(), counter_t, thread)
 * reaches the same struct.)
 */
// clang-format on
#ifndef CONC_THREAD_H
#define CONC_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/defs.h"

CONC_BEGIN_DECLS

/* Smallest explicit stack size accepted (threading.stack_size's 32 KiB). */
#define CONC_THREAD_STACK_MIN 32768

/* Thread(name=..., daemon=..., target=...) keyword arguments; zero means
 * Python's default. */
typedef struct conc_thread_opts {
  /* The thread's name (copied). NULL: "Thread-N", or "Thread-N (target)"
   * when target_name is given, N from one process-wide counter that only
   * unnamed threads consume, as in Python. */
  const char *name;
  /* A C function pointer has no __name__: give it here to get Python's
   * "Thread-N (target)" default name. Ignored when name is set. */
  const char *target_name;
  /* conc_daemon_t (conc/defs.h), as for processes: CONC_DAEMON_INHERIT (0,
   * daemon=None) takes the creating thread's flag (false for the main
   * thread); CONC_DAEMON_YES (1, so `true` works) a daemon; CONC_DAEMON_NO
   * not a daemon. `false` is 0: it inherits, it does not mean "no". */
  conc_daemon_t daemon;
  /* 0: the platform default; else at least CONC_THREAD_STACK_MIN bytes
   * (rounded up to whole pages). */
  size_t stack_size;
} conc_thread_opts_t;

/* Private contents: allocate it, embed it, never touch its fields. */
typedef struct conc_thread {
  struct {
    uint32_t state;     /* initial / started (+ joiners waiting) / stopped */
    uint32_t native_id; /* gettid() once published; see conc_thread_native_id */
    uint32_t flags;     /* daemon, dummy, main, ... */
    uint32_t reap;      /* who releases the pthread: a joiner or itself */
    int fail_code;      /* 0, or the target's negative return */
    unsigned long ident;
    conc_fn_t target;
    void *arg;
    void *result;
    char *name;      /* current name (atomic pointer) */
    void *old_names; /* names replaced by set_name, freed by destroy */
    size_t stack_size;
    const char *kind; /* "Thread", "Timer", "_MainThread", "_DummyThread" */
    struct conc_thread *prev, *next; /* registry links (alive threads) */
    char name_buf[48];
  } priv;
} conc_thread_t;

/*
 * Thread(target=target, args=(arg,), ...). target may be NULL (Python's
 * target=None: run() does nothing). opts may be NULL. Returns 0,
 * CONC_EINVAL (t NULL, daemon not one of the CONC_DAEMON_* values,
 * stack_size below the minimum or too large to round up to pages) or
 * CONC_ENOMEM.
 */
CONC_EXTERN int conc_thread_init(conc_thread_t *t, conc_fn_t target, void *arg,
                                 const conc_thread_opts_t *opts);

/*
 * start(): run target(arg, &result) in a new OS thread. Once this returns, the thread
 * is alive, listed by conc_enumerate and its ident is set. Returns 0,
 * CONC_ESTATE if already started (or t is the main or a dummy thread),
 * CONC_EAGAIN/CONC_ENOMEM when the OS cannot create a thread (the object
 * stays startable), CONC_EINVAL for NULL or a record that was never
 * initialised (all zero).
 */
CONC_EXTERN int conc_thread_start(conc_thread_t *t);

/*
 * join(timeout): wait until the thread ends. timeout in seconds;
 * CONC_FOREVER waits without limit; other negative values count as 0 (as
 * Python clamps). Several threads may join the same thread at once.
 * Returns 0 once the thread has ended (again and again), CONC_ETIMEDOUT if
 * it is still alive at the timeout, CONC_ENOTSTARTED before start,
 * CONC_EDEADLK when t is the calling thread, CONC_ESTATE for a dummy
 * (foreign) thread, CONC_EINVAL for NULL or a NaN timeout.
 */
CONC_EXTERN int conc_thread_join(conc_thread_t *t, double timeout);

/* is_alive(): true from start until the target has returned (and the
 * excepthook has run for a failure) and the thread has left the registry. */
CONC_EXTERN bool conc_thread_is_alive(const conc_thread_t *t);

/* name: valid until conc_thread_destroy (a rename keeps old strings alive,
 * so a pointer read by another thread never dangles). NULL for NULL. */
CONC_EXTERN const char *conc_thread_name(const conc_thread_t *t);

/* name = value: allowed at any time. When the running thread renames
 * itself, the OS thread name follows (truncated to 15 bytes on Linux at a
 * UTF-8 character boundary). Returns 0, CONC_EINVAL or CONC_ENOMEM. */
CONC_EXTERN int conc_thread_set_name(conc_thread_t *t, const char *name);

/* ident: pthread_self() of the thread as unsigned long (threading.get_ident
 * equals it inside the thread); 0 before start; kept after the thread ends. */
CONC_EXTERN unsigned long conc_thread_ident(const conc_thread_t *t);

/* native_id: the kernel thread id (gettid); 0 before start; kept after the
 * end. Right after start it may wait (briefly) until the new thread has
 * published its id. */
CONC_EXTERN unsigned long conc_thread_native_id(conc_thread_t *t);

/* daemon: the flag (false for NULL). */
CONC_EXTERN bool conc_thread_daemon(const conc_thread_t *t);

/* daemon = value: CONC_ESTATE once started (or for main and dummies). */
CONC_EXTERN int conc_thread_set_daemon(conc_thread_t *t, bool daemon);

/*
 * What the target handed back (Python's Thread has none; this is the C
 * convenience that join would return): 0 and *out = the target's *result
 * after a normal end, the target's negative code after a failure (out
 * untouched), CONC_ENOTSTARTED before start, CONC_EBUSY while it still
 * runs. out may be NULL.
 */
CONC_EXTERN int conc_thread_result(const conc_thread_t *t, void **out);

/*
 * repr(t) into buf (snprintf rules; returns the length it needed, or
 * CONC_EINVAL for NULL t, a never initialised t, or NULL buf with len > 0):
 * "<Thread(NAME, initial)>", "<Thread(NAME, started daemon
 * IDENT)>", "<Thread(NAME, stopped IDENT)>"; Timer, _MainThread and
 * _DummyThread show their own class name.
 */
CONC_EXTERN int conc_thread_repr(const conc_thread_t *t, char *buf, size_t len);

/*
 * Release what the object owns (its names). Returns 0, or CONC_EBUSY while
 * the thread still runs (nothing is changed), CONC_EPERM for the main and
 * dummy records (the library owns those), CONC_EINVAL for NULL.
 */
CONC_EXTERN int conc_thread_destroy(conc_thread_t *t);

/* ---- excepthook ---------------------------------------------------------- */

/* threading.ExceptHookArgs: exc_type/exc_value become code/message. */
typedef struct conc_excepthook_args {
  int code;              /* the failure code */
  const char *message;   /* the formatted message ("" if none) */
  conc_thread_t *thread; /* the failing thread */
} conc_excepthook_args_t;

/* A callback: `arg` is the user pointer given to conc_thread_set_excepthook. */
typedef void (*conc_excepthook_t)(const conc_excepthook_args_t *args,
                                  void *arg);

/*
 * threading.excepthook = hook: hook(args, arg) runs in the failing thread
 * after its target returned a negative code, before the thread counts as
 * ended. NULL restores the default (arg is then ignored).
 */
CONC_EXTERN void conc_thread_set_excepthook(conc_excepthook_t hook, void *arg);

/* The hook in force and its user pointer (conc_thread_default_excepthook
 * and NULL when none was set), to restore later. Either output may be
 * NULL. */
CONC_EXTERN void conc_thread_get_excepthook(conc_excepthook_t *hook,
                                            void **arg);

/* threading.__excepthook__: prints to stderr
 *   Exception in thread NAME:
 *   PythonName (CONC_ECODE): message
 * arg is unused. NULL args does nothing; a NULL message prints as "", a
 * NULL thread as the calling thread's ident. */
CONC_EXTERN void
conc_thread_default_excepthook(const conc_excepthook_args_t *args, void *arg);

/* ---- registry ------------------------------------------------------------ */

/* current_thread(): the calling thread's object. In a thread libconc did not
 * create, a daemon "Dummy-N" record (kind _DummyThread) with a valid ident,
 * listed by enumerate; it is freed when that thread exits, so don't keep
 * the pointer past it. Never NULL (except when out of memory). */
CONC_EXTERN conc_thread_t *conc_current_thread(void);

/* main_thread(): "MainThread", the process's initial thread (in a child
 * after fork: the thread that forked). */
CONC_EXTERN conc_thread_t *conc_main_thread(void);

/* enumerate(): fills out[0..cap) with the alive threads (main first, then in
 * start order: started and not yet ended; dummies included) and returns
 * how many there are (possibly more than cap). out may be NULL with cap 0.
 * The pointers are the owners' records: one may end and be destroyed by
 * its owner right after the call (C has no reference counts), so use them
 * only for threads whose lifetime you know (yours, main). */
CONC_EXTERN size_t conc_enumerate(conc_thread_t **out, size_t cap);

/* active_count() == len(enumerate()). */
CONC_EXTERN size_t conc_active_count(void);

/* get_ident(): pthread_self() as unsigned long. */
CONC_EXTERN unsigned long conc_get_ident(void);

/* get_native_id(): gettid(). */
CONC_EXTERN unsigned long conc_get_native_id(void);

/* threading.stack_size(): the stack size of threads started from now on
 * whose stack_size option is 0 (0 = the platform default). */
CONC_EXTERN size_t conc_threading_stack_size(void);

/* threading.stack_size(size): set it (0 restores the platform default;
 * otherwise at least CONC_THREAD_STACK_MIN, rounded up to pages) and store
 * the previous value in *old (may be NULL). Returns 0 or CONC_EINVAL
 * (ValueError: below the minimum, or too large to round up to pages;
 * nothing changed, *old untouched). */
CONC_EXTERN int conc_threading_set_stack_size(size_t size, size_t *old);

/* ---- process exit ----------------------------------------------------------
 */

/*
 * threading._shutdown(): mark the main thread stopped, run the functions of
 * conc_threading_register_atexit (last registered first), then wait for
 * every non-daemon thread, including ones started meanwhile by other
 * threads. Daemon threads are abandoned. Runs automatically at a normal
 * exit (return from main, exit()) once any thread has been started (an
 * atexit handler registered at the first start); may also be called
 * explicitly; later calls only wait again. Called from a non-daemon
 * thread, it does not wait for the caller itself.
 */
CONC_EXTERN void conc_threading_shutdown(void);

/* threading._register_atexit(fn): fn(arg) runs at shutdown before the
 * non-daemon threads are waited for. Returns 0, CONC_ESTATE once shutdown
 * has begun, CONC_ENOMEM, CONC_EINVAL for NULL fn. */
CONC_EXTERN int conc_threading_register_atexit(void (*fn)(void *), void *arg);

/* True once conc_threading_shutdown has begun. */
CONC_EXTERN bool conc_threading_shutting_down(void);

/* ---- thread-local storage (threading.local) -------------------------------
 */

/* Options: a per-thread initialiser (a subclass's __init__), run on a
 * thread's first access, and a destructor (a callback) run for each value
 * when its thread exits, when the value is replaced or deleted, and by
 * conc_local_destroy. Both receive `arg`, the user pointer. */
typedef struct conc_local_opts {
  void *(*init)(void *arg); /* returns the thread's first value */
  void (*destroy)(void *value, void *arg);
  void *arg; /* passed to init and destroy */
} conc_local_opts_t;

typedef struct conc_local {
  struct {
    uint32_t slot; /* index into each thread's value table */
    uint32_t live;
    conc_local_opts_t opts;
    void *entries; /* every thread's value record, for destroy */
  } priv;
} conc_local_t;

/* local = threading.local(). Returns 0, CONC_EINVAL or CONC_ENOMEM. */
CONC_EXTERN int conc_local_init(conc_local_t *l, const conc_local_opts_t *opts);

/* Read the calling thread's value. If this thread has none yet and there
 * is an initialiser, it runs now (once per thread) and its result is the
 * value. Returns 0, CONC_EUNSET (AttributeError: nothing set here, or the
 * value was deleted), CONC_EINVAL (NULL l or out, or l not initialised or
 * destroyed), CONC_ENOMEM. */
CONC_EXTERN int conc_local_get(conc_local_t *l, void **out);

/* Set the calling thread's value (a different previous value goes to the
 * destructor). Returns 0, CONC_EINVAL (as for get) or CONC_ENOMEM. */
CONC_EXTERN int conc_local_set(conc_local_t *l, void *value);

/* del local.x: destroy and forget this thread's value (the initialiser does
 * not run again). Returns 0, CONC_EUNSET, or CONC_EINVAL (NULL, or a local
 * not initialised or destroyed). */
CONC_EXTERN int conc_local_delete(conc_local_t *l);

/* Destroy every thread's value and the local itself. No thread may use it
 * concurrently. NULL, or a local already destroyed, does nothing. */
CONC_EXTERN void conc_local_destroy(conc_local_t *l);

CONC_END_DECLS

#endif
