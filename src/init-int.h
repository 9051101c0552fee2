/*
 * One-time library initialisation and the fork-handler registry. Modules
 * register their handlers once (from their own pthread_once); prepare
 * handlers run in reverse registration order, parent and child handlers in
 * registration order, as pthread_atfork does.
 */
#ifndef CONC_INIT_INT_H
#define CONC_INIT_INT_H

/* Runs the library's one-time initialisation; cheap after the first call. */
void conc__init(void);

/*
 * Register fork handlers (any may be NULL). Returns 0, or CONC_ENOMEM when
 * the fixed registry is full (a programming error inside the library).
 */
int conc__atfork_register(void (*prepare)(void), void (*parent)(void),
                          void (*child)(void));

/* Incremented in the child after every fork; lets caches notice a fork. */
unsigned conc__fork_generation(void);

#endif
