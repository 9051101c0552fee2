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

/* The repr class name of a thread record; timer.c sets "Timer". */
void conc__thread_set_kind(conc_thread_t *t, const char *kind);

#endif
