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

#endif
