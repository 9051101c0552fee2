/* Messages attached to a callable's error code by conc_raise (error.c). */
#ifndef CONC_ERROR_INT_H
#define CONC_ERROR_INT_H

/* Forget any message recorded on this thread; call before running a
 * callable so that a stale message is never attributed to it. */
void conc__raise_clear(void);

/* Take the message the last conc_raise on this thread recorded for `code`:
 * a malloc'd string the caller frees, or NULL when there is none (or it was
 * raised with another code). The record is cleared either way. */
char *conc__raise_take(int code);

#endif
