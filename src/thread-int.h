/*
 * Internals shared by the thread module's files (thread.c, local.c,
 * timer.c). local.c is the lowest layer: thread.c calls into it, never the
 * other way round.
 */
#ifndef CONC_THREAD_INT_H
#define CONC_THREAD_INT_H

#include "conc/thread.h"

/* Destroy the calling thread's thread-local values (every conc_local_t)
 * and free its value table. Called by a libconc thread just before it
 * ends; foreign threads get the same from a pthread key destructor. */
void conc__local_thread_exit(void);

/* Run fn in every libconc thread as it ends, after its thread-local
 * values are destroyed and before a joiner can return: the place for a
 * higher layer to empty a per-thread cache, whose pthread key destructor
 * would run only after the join (a fork or a leak check in that window
 * would miss it). At most CONC__THREAD_EXIT_MAX functions, each registered
 * once; returns 0 or CONC_ENOMEM when full. */
#define CONC__THREAD_EXIT_MAX 4
int conc__thread_on_exit(void (*fn)(void));

/* What the calling libconc thread does when conc_thread_fail or
 * conc_thread_exit abandons its target (after the excepthook, before the
 * thread-local values are destroyed): fn(arg, code, message, result) with
 * the failure code and message, or code 0 and conc_thread_exit's result.
 * It runs once, on the thread's own stack below the abandoned frames; NULL
 * removes it. An executor worker fails its running task's future with it
 * and starts its replacement. */
typedef void (*conc__unwind_fn)(void *arg, int code, const char *message,
                                void *result);
void conc__thread_set_unwind(conc__unwind_fn fn, void *arg);

/* The repr class name of a thread record; timer.c sets "Timer". */
void conc__thread_set_kind(conc_thread_t *t, const char *kind);

#endif
