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

/* The repr class name of a thread record; timer.c sets "Timer". */
void conc__thread_set_kind(conc_thread_t *t, const char *kind);

#endif
