/*
 * The lock-order checker ("lockdep"): reports a deadlock before it happens.
 * Off by default; switched on by CONC_LOCKDEP=1 (report) or CONC_LOCKDEP=abort
 * (report, then abort) in the environment, read once when the library is
 * loaded, or by conc_lockdep_enable() at start-up. See docs/lockdep.md.
 *
 * Every Lock, RLock, Condition, Semaphore, async Lock and process-shared
 * lock then records, per thread, the order in which locks are taken, in a
 * graph of lock classes (a class is a lock's name, else its symbol when it
 * is a global or static, else the site that initialised it). Reported:
 *   CONC_LOCKDEP_CYCLE         an acquisition that closes a cycle of classes
 *   CONC_LOCKDEP_SELF_DEADLOCK a blocking acquire of a Lock the thread holds
 *   CONC_LOCKDEP_BAD_RELEASE   a release of an RLock another thread holds
 *   CONC_LOCKDEP_DESTROY_HELD  destroying a lock that is held
 *   CONC_LOCKDEP_WAIT_HOLDING  waiting on a Condition while holding another
 *   CONC_LOCKDEP_LOOP_BLOCK    a loop callback or task blocking its thread
 *                              on a threading lock another thread holds
 */
#ifndef CONC_LOCKDEP_H
#define CONC_LOCKDEP_H

#include <stddef.h>
#include <stdint.h>

#include "conc/defs.h"

/* conc_lockdep_enable flags. 0 switches the checker off. */
#define CONC_LOCKDEP_ON 1u          /* check and report */
#define CONC_LOCKDEP_ABORT 2u       /* abort() after the first report */
#define CONC_LOCKDEP_EXIT_REPORT 4u /* print the class table at exit */

enum conc_lockdep_kind {
  CONC_LOCKDEP_CYCLE = 1,
  CONC_LOCKDEP_SELF_DEADLOCK,
  CONC_LOCKDEP_BAD_RELEASE,
  CONC_LOCKDEP_DESTROY_HELD,
  CONC_LOCKDEP_WAIT_HOLDING,
  CONC_LOCKDEP_LOOP_BLOCK,
  CONC_LOCKDEP_KINDS /* one past the last kind */
};

/* One report, as passed to a sink. Strings live until the sink returns. */
typedef struct conc_lockdep_report {
  int kind;           /* enum conc_lockdep_kind */
  const char *title;  /* "lock-order inversion (possible deadlock)", ... */
  const char *lock;   /* class of the lock taken, released or destroyed */
  const char *other;  /* the other class involved (held lock), or NULL */
  const char *thread; /* name of the reporting thread */
  const char *text;   /* the whole report as printed to stderr */
} conc_lockdep_report_t;

/* A sink gets every report instead of stderr; it must not take locks that
 * the checker follows. */
typedef void (*conc_lockdep_sink_t)(const conc_lockdep_report_t *report,
                                    void *user);

/* A lock class, for the query API. */
typedef struct conc_lockdep_class {
  unsigned id;      /* 1.. */
  const char *name; /* lives as long as the process */
  const char *type; /* "Lock", "RLock", "Semaphore", "aio.Lock", ... */
  uint64_t acquisitions;
  uint64_t contended; /* acquisitions that had to wait */
  int64_t wait_ns;    /* total time spent waiting */
} conc_lockdep_class_t;

/* An order edge: `from` was held while `to` was taken (blocking). */
typedef struct conc_lockdep_edge {
  unsigned from, to;
} conc_lockdep_edge_t;

CONC_BEGIN_DECLS

/* Switch the checker on (flags as above) or off (0). Call it at start-up,
 * before the locks it should follow are created: a lock created earlier is
 * classed by its symbol or first acquisition site. Overrides CONC_LOCKDEP.
 * 0, or CONC_EINVAL for unknown flags. */
CONC_EXTERN int conc_lockdep_enable(unsigned flags);
/* The flags in force (after reading CONC_LOCKDEP if not read yet). */
CONC_EXTERN unsigned conc_lockdep_flags(void);
/* Send reports to `sink` (NULL: back to stderr). */
CONC_EXTERN void conc_lockdep_set_sink(conc_lockdep_sink_t sink, void *user);
/* How many reports of `kind` were made (0: of every kind). */
CONC_EXTERN unsigned long conc_lockdep_reports(int kind);
/* Copy up to `max` classes (edges) into `out`; *count gets how many exist
 * (may exceed max). 0 or CONC_EINVAL. */
CONC_EXTERN int conc_lockdep_classes(conc_lockdep_class_t *out, size_t max,
                                     size_t *count);
CONC_EXTERN int conc_lockdep_edges(conc_lockdep_edge_t *out, size_t max,
                                   size_t *count);
/* The class id of a lock object (any of the followed kinds), or 0 when the
 * checker does not know it. */
CONC_EXTERN unsigned conc_lockdep_class_of(const void *lock);
/* Write the exit report (classes, edges, contention) to file descriptor fd
 * now. 0, or CONC_EINVAL. */
CONC_EXTERN int conc_lockdep_dump(int fd);

CONC_END_DECLS

#endif
