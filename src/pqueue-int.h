/* Internal hooks of the process queue (tests only). */
#ifndef CONC_PQUEUE_INT_H
#define CONC_PQUEUE_INT_H

/* When set in a process, that process kills itself with SIGKILL at a point
 * where a naive queue would be corrupt: 1 in put after the item bytes are
 * written but before they are published, 2 in get after the item was read
 * but before it is removed. The crash-recovery tests use it. */
extern int conc__pqueue_crash_point;

#endif
