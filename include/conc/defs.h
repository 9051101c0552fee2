/* Common macros for every public header: symbol export, C++ linkage, helpers.
 */
#ifndef CONC_DEFS_H
#define CONC_DEFS_H

#include <stddef.h>

#if defined(CONC_STATIC_DEFINE)
#define CONC_EXTERN
#elif defined(__GNUC__) || defined(__clang__)
#define CONC_EXTERN __attribute__((visibility("default")))
#else
#define CONC_EXTERN
#endif

#ifdef __cplusplus
#define CONC_BEGIN_DECLS extern "C" {
#define CONC_END_DECLS }
#else
#define CONC_BEGIN_DECLS
#define CONC_END_DECLS
#endif

/* Reach the struct that embeds `member` at `ptr` ("subclassing" by embedding).
 */
#define CONC_CONTAINER_OF(ptr, type, member)                                   \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* A function that never returns; unlike C11 _Noreturn it also compiles as
 * C++, so public headers use it: CONC_EXTERN CONC_NORETURN void f(void); */
#if defined(__GNUC__) || defined(__clang__)
#define CONC_NORETURN __attribute__((__noreturn__))
#elif !defined(__cplusplus) && __STDC_VERSION__ >= 201112L
#define CONC_NORETURN _Noreturn
#else
#define CONC_NORETURN
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CONC__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CONC__PRINTF(f, a)
#endif

/*
 * The one shape of every callable the library runs as a unit of work (a
 * thread's target, a timer's function, a process's target, an executor or
 * loop task, a barrier action): return 0 and set *result (pre-set to NULL),
 * or return a negative CONC_E* code, which is the callable's "exception" and
 * goes where Python sends the exception (the excepthook, the future, the
 * exit code...). Attach a message with `return conc_raise(code, fmt, ...)`.
 */
typedef int (*conc_fn_t)(void *arg, void **result);

/*
 * The `daemon` option of threads and processes (Python's daemon=None, True,
 * False). Zero-initialised options inherit the creator's flag, as None
 * does; CONC_DAEMON_YES is 1, so `.daemon = true` makes a daemon. `false`
 * is 0 and inherits: write CONC_DAEMON_NO for "not a daemon".
 */
typedef enum conc_daemon {
  CONC_DAEMON_INHERIT = 0,
  CONC_DAEMON_YES = 1,
  CONC_DAEMON_NO = -1
} conc_daemon_t;

#endif
