/*
 * The platform layer: the only place that knows the OS. Everything in the
 * library that blocks ends in conc__wait(); everything that wakes calls
 * conc__wake(). Both follow one protocol: a waker changes the word, then
 * wakes; a waiter sleeps only while the word still holds `expected`.
 */
#ifndef CONC_PLATFORM_INT_H
#define CONC_PLATFORM_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "conc/defs.h"
#include "conc/time.h"

#define CONC__WAKE_ALL INT_MAX

/*
 * Block while *word == expected, until the deadline (CONC_DEADLINE_NEVER for
 * none). Returns 0 once the word differs from `expected` (the caller then
 * re-examines its state) or CONC_ETIMEDOUT once the deadline has passed with
 * the word unchanged. EINTR and spurious kernel returns never reach the
 * caller. `shared` selects process-shared waiting (the word may live in
 * MAP_SHARED memory and waiters may be in other processes).
 */
int conc__wait(const uint32_t *word, uint32_t expected,
               conc_deadline_t deadline, bool shared);

/*
 * conc__wait for the waits a user asked for (acquire, get, result, join,
 * sleep...): it also returns CONC_EINTR, consuming the request, when
 * conc_interrupt() was called on this thread before or during the wait while
 * the word still held `expected` (a word that already differs wins: 0). The
 * library's short internal waits use conc__wait and are never interrupted; a
 * request then waits for the next interruptible wait. A handled signal
 * without conc_interrupt() never ends a wait early (PEP 475).
 */
int conc__wait_intr(const uint32_t *word, uint32_t expected,
                    conc_deadline_t deadline, bool shared);

/*
 * The calling thread's interrupt request: 0, or 1 once conc_interrupt() (or
 * a conc_signal_interrupts handler) asked for one. Initial-exec TLS so that a
 * signal handler reaches it without the dynamic linker (async-signal-safe).
 */
extern __thread uint32_t conc__intr_pending
    __attribute__((tls_model("initial-exec")));

/* Take the calling thread's request: true if one was pending (now cleared). */
static inline bool conc__intr_take(void) {
  return __atomic_exchange_n(&conc__intr_pending, 0u, __ATOMIC_ACQ_REL) != 0;
}

/* Set once the program has used the interrupt calls (conc_interrupt,
 * conc_interrupt_clear, conc_signal_interrupts): waits that have a faster
 * uninterruptible form (an untimed thread join's pthread_join) then take
 * the interruptible one. */
extern int conc__intr_armed;
static inline bool conc__intr_in_use(void) {
  return __atomic_load_n(&conc__intr_armed, __ATOMIC_RELAXED) != 0;
}

/* Put a taken request back: the wait it ended turned out to have succeeded
 * (a notify won the race), so the next interruptible wait reports it. */
static inline void conc__intr_keep(void) {
  __atomic_store_n(&conc__intr_pending, 1u, __ATOMIC_RELEASE);
}

/* Raise a request in the thread that owns `pending` and end its wait now if
 * the backend can (async-signal-safe; any thread may call it). */
void conc__intr_raise(uint32_t *pending);

/* Wake up to `n` waiters blocked on word (CONC__WAKE_ALL for all). */
void conc__wake(const uint32_t *word, int n, bool shared);

/*
 * Move the waiters blocked on `from` over to `to` without waking them, if
 * *from still holds `expected` (the value the caller has just stored there
 * to release them); otherwise wake them. A moved waiter wakes with a later
 * conc__wake(to, ...), finds `from` changed and returns 0 from conc__wait.
 * The caller must make sure that such a wake of `to` will come, and every
 * moved thread must, once woken, act as a sleeper of `to` would (a wake of
 * `to` meant for another may pick it). Both words must be of the same
 * kind (`shared`). Backends that cannot move waiters wake them.
 */
void conc__requeue(const uint32_t *from, uint32_t expected, const uint32_t *to,
                   bool shared);

/* Name of the wait backend compiled in: "futex" or "condvar". */
const char *conc__wait_backend(void);

/* Monotonic clock in nanoseconds (inlined on hot paths). */
int64_t conc__now_ns(void);

/* The kernel thread id of the caller (gettid()). */
int32_t conc__gettid(void);

/* Online CPU count, at least 1. */
int conc__cpu_count(void);

/* Spin-wait hint for busy loops. */
static inline void conc__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#else
  __asm__ __volatile__("" ::: "memory");
#endif
}

/* Relaxed/acquire/release helpers on 32-bit words (GCC/Clang builtins work
 * on plain integers, which lets the same word live in shared memory). */
#define conc__load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define conc__load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define conc__store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define conc__store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define conc__cas(p, expp, des)                                                \
  __atomic_compare_exchange_n((p), (expp), (des), false, __ATOMIC_ACQ_REL,     \
                              __ATOMIC_ACQUIRE)
#define conc__cas_weak(p, expp, des)                                           \
  __atomic_compare_exchange_n((p), (expp), (des), true, __ATOMIC_ACQ_REL,      \
                              __ATOMIC_ACQUIRE)
#define conc__xchg(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define conc__fetch_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define conc__fetch_sub(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_ACQ_REL)
#define conc__fetch_or(p, v) __atomic_fetch_or((p), (v), __ATOMIC_ACQ_REL)
#define conc__fetch_and(p, v) __atomic_fetch_and((p), (v), __ATOMIC_ACQ_REL)

#endif
