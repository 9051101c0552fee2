// clang-format off
/*
 * Coroutines in the style of Python's greenlet: a function running on its own
 * stack, entered and left only by explicit switches, with a parent that gets
 * control (and the return value, or the exception) when the function returns.
 *
 *   Python (greenlet)                     C
 *   g = greenlet(run)                     conc_coro_create(&g, run, NULL, NULL)
 *   def run(x): return x + 1              int run(void *x, void **result) {
 *                                           *result = x + 1; return 0; }
 *   raise ValueError("bad")               return conc_raise(CONC_EINVAL, "bad");
 *   y = g.switch(x)                       conc_coro_switch(g, x, &y)
 *   getcurrent()                          conc_coro_current()
 *   g.parent / g.dead / bool(g)           conc_coro_parent(g) / conc_coro_is_dead(g)
 *                                         / conc_coro_is_active(g)
 *   g.throw() (GreenletExit)              conc_coro_kill(g)
 *
 * Every coroutine belongs to the thread that created it; each thread has its
 * own main coroutine (the thread's own stack). See docs/coroutines.md.
 */
// clang-format on
#ifndef CONC_CORO_H
#define CONC_CORO_H

#include <stdbool.h>
#include <stddef.h>

#include "conc/defs.h"

CONC_BEGIN_DECLS

/* A coroutine. Caller-allocated (conc_coro_init) or heap-allocated
 * (conc_coro_create); the contents are private. */
typedef struct conc_coro {
  void *priv[20];
} conc_coro_t;

/* Zero means the default for every field. */
typedef struct conc_coro_opts {
  size_t stack_size;   /* usable stack bytes; 0: CONC_CORO_STACK_DEFAULT */
  conc_coro_t *parent; /* who gets control when fn returns; NULL: the creator */
  const char *name;    /* for diagnostics (guard-page crash); copied, cut
                          to CONC_CORO_NAME_MAX - 1 bytes */
} conc_coro_opts_t;

#define CONC_CORO_NAME_MAX 64

#define CONC_CORO_STACK_DEFAULT ((size_t)256 * 1024)
#define CONC_CORO_STACK_MIN ((size_t)16 * 1024)

/*
 * Prepare `co` to run fn, the one callable shape (conc_fn_t). Nothing runs
 * yet (K1): the first switch into it calls fn(value, &result), where value is
 * what that switch passes, or `arg` when the switch passes NULL (greenlet's
 * run(*args) with gevent's Greenlet(run, arg) default). fn returns 0 with
 * *result (pre-set to NULL), the value the coroutine finishes with, or a
 * negative code, its exception (attach a message with conc_raise). Either
 * goes to the parent: its pending switch returns 0 with the value, or the
 * code (conc_raised_message(code) then gives the message). A positive return
 * is CONC_EFAILED. The stack is reserved now and committed page by page.
 * CONC_EINVAL: NULL co or fn, or a stack size above 16 GiB;
 * CONC_EWRONGTHREAD: opts->parent belongs to another thread;
 * CONC_ENOMEM: no stack could be mapped.
 */
CONC_EXTERN int conc_coro_init(conc_coro_t *co, conc_fn_t fn, void *arg,
                               const conc_coro_opts_t *opts);

/* The same on the heap: *out receives the new coroutine (untouched on
 * failure); conc_coro_destroy frees it. */
CONC_EXTERN int conc_coro_create(conc_coro_t **out, conc_fn_t fn, void *arg,
                                 const conc_coro_opts_t *opts);

/*
 * Suspend the caller and run `target`; `value` becomes the result of the
 * target's pending switch (or its function's argument on the first switch).
 * Returns when some coroutine switches back to the caller (or a coroutine
 * whose parent is the caller returns): *out (may be NULL) receives the value
 * passed. Returns 0, or:
 *   CONC_EINVAL       target is NULL
 *   CONC_EDEAD        target has finished or was destroyed; nothing changes
 *                     (K4; greenlet.error)
 *   CONC_EWRONGTHREAD target belongs to another thread (K5)
 *   CONC_ECANCELED    the caller was killed while suspended (K6): clean up
 *                     and return from the coroutine's function
 *   any code          a coroutine whose parent is the caller returned it (its
 *                     exception); *out receives NULL
 * Switching to the running coroutine returns value at once.
 */
CONC_EXTERN int conc_coro_switch(conc_coro_t *target, void *value, void **out);

/* The running coroutine of this thread (its main coroutine when none of
 * its own runs); never NULL except when memory for the thread's state could
 * not be allocated. */
CONC_EXTERN conc_coro_t *conc_coro_current(void);

/* This thread's main coroutine. */
CONC_EXTERN conc_coro_t *conc_coro_main(void);

/* The parent (NULL for a main coroutine or a NULL co). */
CONC_EXTERN conc_coro_t *conc_coro_parent(const conc_coro_t *co);

/* Change the parent (greenlet's g.parent = p). CONC_EINVAL for a cycle, a
 * NULL argument or a main coroutine; CONC_EWRONGTHREAD across threads. */
CONC_EXTERN int conc_coro_set_parent(conc_coro_t *co, conc_coro_t *parent);

/* True once the function has returned (or the coroutine was killed before
 * it started). */
CONC_EXTERN bool conc_coro_is_dead(const conc_coro_t *co);

/* True when started and not dead (greenlet's bool(g)). */
CONC_EXTERN bool conc_coro_is_active(const conc_coro_t *co);

/* The name given in the options (the coroutine's own copy), or "main" /
 * "coroutine". */
CONC_EXTERN const char *conc_coro_name(const conc_coro_t *co);

/*
 * Kill `co` (K6). Not started: it becomes dead without running and its stack
 * is released. Suspended: it is resumed with its pending switch returning
 * CONC_ECANCELED; when its function returns, control comes back here and
 * kill returns 0 (the function returned 0 or CONC_ECANCELED: GreenletExit is
 * swallowed) or the other code it returned (its exception propagates to the
 * killer). If it switches back to the caller without finishing, kill returns
 * CONC_EBUSY and the coroutine stays alive. Dead or destroyed: 0, nothing
 * happens.
 * CONC_ESTATE for the running coroutine or a main coroutine; CONC_EINVAL for
 * NULL; CONC_EWRONGTHREAD across threads.
 */
CONC_EXTERN int conc_coro_kill(conc_coro_t *co);

/*
 * Release a coroutine (and free it when it came from conc_coro_create). A
 * suspended coroutine is killed first, as greenlet does when one is
 * collected (an exception it returns then is dropped); if it declines to
 * finish, CONC_EBUSY and nothing is released. Switching to a destroyed
 * caller-allocated coroutine is CONC_EDEAD.
 * CONC_ESTATE for the running or a main coroutine; CONC_EWRONGTHREAD for a
 * suspended coroutine of another thread (a dead or unstarted one may be
 * destroyed from any thread). NULL is ignored (returns 0).
 */
CONC_EXTERN int conc_coro_destroy(conc_coro_t *co);

/*
 * Stacks past this many guarded ones are canary-checked instead, when guard
 * pages cost memory maps (kernels without MADV_GUARD_INSTALL, where every
 * guard page splits a mapping and vm.max_map_count caps the total). The
 * default is a quarter of vm.max_map_count (or the CONC_CORO_GUARD_LIMIT
 * environment variable). Returns the previous limit.
 */
CONC_EXTERN size_t conc_coro_set_guard_limit(size_t limit);

/* The name of the switch backend compiled in: "asm-x86_64", "asm-aarch64"
 * or "ucontext". */
CONC_EXTERN const char *conc_coro_backend(void);

// clang-format off
/*
 * Generators: a coroutine that yields values to whoever asks for the next
 * one, and reports exhaustion with CONC_EEOF (Python's StopIteration).
 *
 *   def gen(n):                 int gen(void *arg, void **result) {
 *       for i in range(n):        conc_gen_t *g = arg; ...
 *           yield i                 if ((rc = conc_gen_yield(g, (void *)i, NULL)))
 *                                     return rc;   (closed: GeneratorExit)
 *       return "done"             *result = "done"; return 0; }
 *   for x in gen(3): ...        while (conc_gen_next(&g, &x) == 0) ...
 */
// clang-format on
typedef struct conc_gen {
  conc_coro_t coro;
  void *priv[2];
} conc_gen_t;

/* fn(arg, &result) runs at the first next (arg is the generator itself when
 * NULL): return 0 with the value the generator returns (StopIteration's
 * value), or a negative code, its exception. */
CONC_EXTERN int conc_gen_init(conc_gen_t *g, conc_fn_t fn, void *arg,
                              const conc_coro_opts_t *opts);

/*
 * gen.send(value): resume the generator; *out receives the yielded value.
 * Returns 0 for a yield, CONC_EEOF when the function returned 0 (*out then
 * holds its *result the first time and NULL afterwards), the function's code
 * when it returned one (its exception; CONC_EEOF afterwards), CONC_ESTATE
 * when called from inside the generator itself ("generator already
 * executing"), CONC_EINVAL for NULL g.
 */
CONC_EXTERN int conc_gen_send(conc_gen_t *g, void *value, void **out);

/* next(gen): conc_gen_send(g, NULL, out). */
CONC_EXTERN int conc_gen_next(conc_gen_t *g, void **out);

/* Inside the generator's function: hand `value` to the consumer and wait
 * for the next send (*sent receives its value). Returns 0, or CONC_ECANCELED
 * when the generator is closed (GeneratorExit): return from fn then.
 * CONC_ESTATE when not called from inside g. */
CONC_EXTERN int conc_gen_yield(conc_gen_t *g, void *value, void **sent);

/* gen.close(): kill the suspended generator (see conc_coro_kill). */
CONC_EXTERN int conc_gen_close(conc_gen_t *g);

/* Close and release. */
CONC_EXTERN int conc_gen_destroy(conc_gen_t *g);

CONC_END_DECLS

#endif
