/*
 * The lock-order checker's hooks (lockdep.c), called by the sync family
 * (lock.c, condition.c, semaphore.c) and the async Lock (aio_sync.c).
 *
 * Cost when the checker is off: conc__ld_on() is one relaxed load of a
 * global and a predictable branch. The inline Lock paths in sync.h and the
 * RLock fast paths test conc__sync_divert instead, in which the checker
 * owns bit 0x80 (annotate.c owns the others). Every hook below is only
 * called after conc__ld_on() said yes.
 *
 * A private Lock, RLock or Semaphore initialised while the checker is on
 * keeps its class id in bits 16-31 of priv.flags (which also sends it off
 * the inline fast paths); every other object (process-shared ones, those
 * made by a static initialiser or before the checker was on, async Locks)
 * is found in an address-keyed table.
 */
#ifndef CONC_LOCKDEP_INT_H
#define CONC_LOCKDEP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/lockdep.h"
#include "conc/sync.h"

#define CONC__LD_CLASS_SHIFT 16
enum conc__ld_type {
  CONC__LD_LOCK,
  CONC__LD_RLOCK,
  CONC__LD_SEM,  /* a Semaphore: edges into it, never held */
  CONC__LD_BSEM, /* a BoundedSemaphore: held like a lock */
  CONC__LD_AIO_LOCK,
  CONC__LD_TYPES
};

/* How an acquisition waits: only a blocking one adds order edges. */
enum conc__ld_how { CONC__LD_BLOCK, CONC__LD_TIMED, CONC__LD_TRY };

/* The kind of an acquisition that waits until `d` (0 polls). */
static inline enum conc__ld_how conc__ld_how_of(conc_deadline_t d) {
  return d == CONC_DEADLINE_NEVER ? CONC__LD_BLOCK
         : d == 0                 ? CONC__LD_TRY
                                  : CONC__LD_TIMED;
}

/* CONC_LOCKDEP_* flags in force; 0 when the checker is off. */
extern uint32_t conc__ld_flags;

static inline bool conc__ld_on(void) {
  return __builtin_expect(
      __atomic_load_n(&conc__ld_flags, __ATOMIC_RELAXED) != 0, 0);
}

/* The caller of the public function that calls this macro. */
#define CONC__LD_SITE() __builtin_return_address(0)

/* Give a new object its class: its name, else the init site. `flags`:
 * the object's priv.flags (private objects keep the class there), or NULL
 * (async Lock: the address table). */
void conc__ld_init(const void *obj, uint32_t *flags, enum conc__ld_type type,
                   const char *name, const void *site);
/* The object is being destroyed; `held`: it is still locked. */
void conc__ld_destroy(const void *obj, uint32_t flags, enum conc__ld_type type,
                      bool held);

/* One acquisition in progress (on the caller's stack). */
typedef struct conc__ld_acq {
  void *thr; /* NULL: not followed */
  const void *obj;
  const void *ctx; /* the task, for an async Lock */
  int64_t t0;      /* start of the wait when contended, else 0 */
  uint16_t cls;
  uint8_t type;
} conc__ld_acq_t;

/* Before the first attempt: the checks and the held-stack entry. */
void conc__ld_acquire_begin(conc__ld_acq_t *a, const void *obj, uint32_t flags,
                            enum conc__ld_type type, enum conc__ld_how how,
                            const void *site);
/* The first attempt failed and the caller is about to wait. */
void conc__ld_acquire_wait(conc__ld_acq_t *a);
/* The acquisition ended; `ok`: the caller holds the object now. */
void conc__ld_acquire_end(conc__ld_acq_t *a, bool ok);
/* Before a release by the caller (it may not be the holder). */
void conc__ld_release(const void *obj, enum conc__ld_type type);
/* A release of an owner-bound lock by a thread that does not own it. */
void conc__ld_bad_release(const void *obj, uint32_t flags,
                          enum conc__ld_type type);
/* Names (lockdep_sym.c). The symbol of a global or static object, or of
 * the function holding a code address, as "name" or "name+0x1c"; false
 * (object) or "file+0x1c" (site) when none is known. */
bool conc__ld_object_symbol(const void *obj, char *out, size_t n);
void conc__ld_site_name(const void *site, char *out, size_t n);

/* Before a Condition wait over the lock `lock_obj` of that type. */
void conc__ld_cond_wait(const void *lock_obj, uint32_t flags,
                        enum conc__ld_type type);

/* ------------------------------------------------------------------------
 * Shared by the checker's own two files only: lockdep.c (classes, held
 * stacks, the order graph, the hooks) and lockdep_report.c (reports, the
 * sink, queries). Tables, counts and locks are defined in lockdep.c.
 */
#define CONC__LOCKDEP_DEPTH 64
#define CONC__LOCKDEP_MBOX 16
#define CONC__LOCKDEP_BT 16

struct conc__lockdep_entry {
  const void *obj; /* atomic: read by scanners */
  uint32_t state;  /* atomic: E_* (lockdep.c) */
  uint16_t cls;
  uint8_t type;
  bool pshared;    /* held by this process's thread, not a forked child's */
  const void *ctx; /* the task that holds an async Lock, else NULL */
  const void *site;
};

struct conc__lockdep_thread {
  struct conc__lockdep_entry e[CONC__LOCKDEP_DEPTH];
  int depth; /* atomic */
  bool busy, used;
  uint32_t mail; /* atomic: the mailbox is not empty */
  pthread_mutex_t mbox_mu;
  int nmbox;
  const void *mbox[CONC__LOCKDEP_MBOX];
  struct conc__lockdep_thread *next;
};

struct conc__lockdep_class {
  char *name;
  const void *site; /* the key of a site class */
  uint8_t type, by_site;
  uint64_t acq, contended; /* atomic */
  int64_t wait_ns;         /* atomic */
  uint16_t *out;           /* order edges, under conc__lockdep_graph_mu */
  uint32_t nout, capout;
};

struct conc__lockdep_edge {
  uint16_t from, to;
  const void *held_site;
  char thread[48];
  int nbt;
  void *bt[CONC__LOCKDEP_BT];
};

extern const char *const conc__lockdep_type_name[CONC__LD_TYPES];
extern pthread_mutex_t conc__lockdep_graph_mu;
extern struct conc__lockdep_class conc__lockdep_classes[]; /* ids 1..n */
extern uint32_t conc__lockdep_nclasses;                    /* atomic: n */
extern struct conc__lockdep_edge *conc__lockdep_edges[];
extern uint32_t conc__lockdep_nedges; /* atomic */

/* The user's call site of the blocking acquisition being checked, else
 * NULL (set by lockdep.c, read by conc__lockdep_grab_frames). */
extern __thread const void *conc__lockdep_from;

static inline uint32_t conc__lockdep_hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return (uint32_t)x;
}

/* Under conc__lockdep_graph_mu: the edge index of key, or -1 (lockdep.c). */
int64_t conc__lockdep_edge_index(uint32_t key);

/* lockdep_report.c. A class's name and type name ("?" for none). */
const char *conc__lockdep_cname(uint16_t id);
const char *conc__lockdep_ctype(uint16_t id);
/* Up to CONC__LOCKDEP_BT frames of the caller's stack. */
int conc__lockdep_grab_frames(void **bt, int skip);
/* The caller's thread name; the caller has set busy. */
void conc__lockdep_thread_label(char *out, size_t n);
/* A report other than a cycle, once per (kind, class, other class). */
void conc__lockdep_report(struct conc__lockdep_thread *t, int kind,
                          const char *title, uint16_t cls, uint16_t other,
                          const void *other_site, const char *what);
/* A lock-order inversion: taking cls while `held` is held closes `path`. */
void conc__lockdep_report_cycle(struct conc__lockdep_thread *t,
                                const struct conc__lockdep_entry *held,
                                uint16_t cls, const uint16_t *path, int len,
                                const char *thread, void *const *bt, int nbt);

#endif
