/* Internal hooks of the process queue (tests only). */
#ifndef CONC_PQUEUE_INT_H
#define CONC_PQUEUE_INT_H

#include <stdint.h>

#include "conc/pqueue.h"

/* The points where a process may die with the queue in a state that a
 * naive queue would get wrong. The crash-recovery tests set
 * conc__pqueue_hook in a child and kill it (SIGKILL) at one of them, or
 * count the points passed. */
enum conc__pq_point {
  CONC__PQ_PUT_WRITTEN = 1, /* put: item bytes in the ring, not published */
  CONC__PQ_PUT_WOKE,        /* put: published, getters woken, not committed */
  CONC__PQ_PUT_RETURNING,   /* put: committed and the lock released */
  CONC__PQ_GET_READ,        /* get: item copied out, not yet removed */
  CONC__PQ_GET_WOKE,        /* get: removed, putters woken, not committed */
  CONC__PQ_GET_RETURNING,   /* get: committed and the lock released */
  CONC__PQ_DONE_RETURNING,  /* task_done: committed and the lock released */
  CONC__PQ_WOKEN,           /* a sleeper woken by a change, before it takes
                               the lock */
  CONC__PQ_WAKING,          /* a wake-up system call is about to be made */
};
extern void (*conc__pqueue_hook)(enum conc__pq_point point);

/* How many processes sleep (or are about to) in get, put or join. */
enum conc__pq_sleep { CONC__PQ_IN_GET, CONC__PQ_IN_PUT, CONC__PQ_IN_JOIN };
unsigned conc__pqueue_sleepers(const conc_pqueue_t *q, enum conc__pq_sleep in);

/* The ring, its size and the committed [head, tail) byte positions (tests
 * only: the fuzzer writes hostile records there, as a peer sharing the
 * queue could). */
unsigned char *conc__pqueue_ring(const conc_pqueue_t *q, uint64_t *cap,
                                 uint64_t *head, uint64_t *tail);

#endif
