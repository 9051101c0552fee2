/*
 * Race-detector annotations: tell ThreadSanitizer, Helgrind and DRD about
 * the synchronisation libconc builds from atomics and futexes, which none
 * of them can see on their own (the library is built normally; only the
 * user's program is instrumented, or the whole process runs under
 * valgrind). Without them a correct program's accesses look like races.
 *
 * Cost when no tool is present: one load of a hidden byte and one
 * predictable branch per annotation point. The byte is set once, when the
 * library is loaded (annotate.c): bit CONC__ANN_TSAN when the process holds
 * the TSan runtime (the __tsan_* interface, declared weak, resolved),
 * bit CONC__ANN_DRD under valgrind's DRD, CONC__ANN_HG under any other
 * valgrind tool (only where the build machine had the valgrind headers). All the work is in
 * out-of-line functions in annotate.c.
 *
 * The interface (all no-ops when no tool is present):
 *   conc__ann_mutex_create(addr, is_rw)   a lock object now exists at addr;
 *                                         is_rw nonzero: re-entrant (RLock)
 *   conc__ann_mutex_destroy(addr)         it is gone (memory may be reused)
 *   conc__ann_mutex_pre_lock(addr, is_try)   before an acquire attempt
 *   conc__ann_mutex_post_lock(addr, is_try, ok)  after it; ok: it took it
 *   conc__ann_mutex_pre_unlock(addr)      before the release
 *   conc__ann_mutex_post_unlock(addr)     after it
 *   conc__ann_happens_before(addr)        everything before this point...
 *   conc__ann_happens_after(addr)         ...happens before everything after
 *                                         a later call here on the same addr
 *   conc__ann_benign_race(addr, size)     accesses to [addr, addr+size) race
 *                                         on purpose (hint words, counters
 *                                         read racily): not reported
 * Mutex annotations are for locks that the thread which took them gives
 * back: the tools report an unlock by another thread. A re-entrant lock
 * reports only its outermost acquire and its last release. A lock that any
 * thread may release (Python's Lock, a Semaphore) is described with
 * happens_before at release and happens_after at acquire instead.
 */
#ifndef CONC_ANNOTATE_INT_H
#define CONC_ANNOTATE_INT_H

#include <stddef.h>

#define CONC__ANN_TSAN 1u
#define CONC__ANN_HG 2u /* Helgrind (or another valgrind tool) */
#define CONC__ANN_DRD 4u

/* Which tools are present; written once at load time, read everywhere. */
extern unsigned char conc__ann_tools;

void conc__ann_mutex_create_slow(void *addr, int is_rw);
void conc__ann_mutex_destroy_slow(void *addr);
void conc__ann_mutex_pre_lock_slow(void *addr, int is_try);
void conc__ann_mutex_post_lock_slow(void *addr, int is_try, int ok);
void conc__ann_mutex_pre_unlock_slow(void *addr);
void conc__ann_mutex_post_unlock_slow(void *addr);
void conc__ann_happens_before_slow(void *addr);
void conc__ann_happens_after_slow(void *addr);
void conc__ann_benign_race_slow(void *addr, size_t size);

#define CONC__ANN_CALL(call)                                                   \
  do {                                                                         \
    if (__builtin_expect(conc__ann_tools != 0, 0))                             \
      call;                                                                    \
  } while (0)

#define conc__ann_mutex_create(addr, is_rw)                                    \
  CONC__ANN_CALL(conc__ann_mutex_create_slow((void *)(addr), (is_rw)))
#define conc__ann_mutex_destroy(addr)                                          \
  CONC__ANN_CALL(conc__ann_mutex_destroy_slow((void *)(addr)))
#define conc__ann_mutex_pre_lock(addr, is_try)                                 \
  CONC__ANN_CALL(conc__ann_mutex_pre_lock_slow((void *)(addr), (is_try)))
#define conc__ann_mutex_post_lock(addr, is_try, ok)                            \
  CONC__ANN_CALL(conc__ann_mutex_post_lock_slow((void *)(addr), (is_try), (ok)))
#define conc__ann_mutex_pre_unlock(addr)                                       \
  CONC__ANN_CALL(conc__ann_mutex_pre_unlock_slow((void *)(addr)))
#define conc__ann_mutex_post_unlock(addr)                                      \
  CONC__ANN_CALL(conc__ann_mutex_post_unlock_slow((void *)(addr)))
#define conc__ann_happens_before(addr)                                         \
  CONC__ANN_CALL(conc__ann_happens_before_slow((void *)(addr)))
#define conc__ann_happens_after(addr)                                          \
  CONC__ANN_CALL(conc__ann_happens_after_slow((void *)(addr)))
#define conc__ann_benign_race(addr, size)                                      \
  CONC__ANN_CALL(conc__ann_benign_race_slow((void *)(addr), (size)))

#endif
