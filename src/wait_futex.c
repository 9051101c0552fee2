/*
 * Platform wait on Linux futexes. FUTEX_WAIT_BITSET takes an absolute
 * CLOCK_MONOTONIC deadline, so retries after EINTR never lengthen the wait.
 * Locking: none; the kernel orders a wait against wakes on the same word.
 *
 * Interruptible waits (conc__wait_intr) sleep with futex_waitv on two words:
 * the object's and the thread's interrupt request. The kernel compares both
 * before it sleeps, so a request raised by a signal handler in the instant
 * before the sleep is not lost (the call fails with EAGAIN), and one raised
 * during the sleep ends it (the signal interrupts it; a request raised from
 * another thread wakes the request word). Kernels before 5.16 lack
 * futex_waitv: there the wait sleeps in slices of INTR_SLICE_NS and looks at
 * the request between them.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "annotate-int.h"
#include "conc/error.h"
#include "annotate-int.h"
#include "platform-int.h"

static long futex(const uint32_t *word, int op, uint32_t val,
                  const struct timespec *ts, uint32_t bitset) {
  return syscall(SYS_futex, word, op, val, ts, NULL, bitset);
}

int conc__wait(const uint32_t *word, uint32_t expected,
               conc_deadline_t deadline, bool shared) {
  int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  struct timespec ts, *tsp = NULL;
  if (deadline != CONC_DEADLINE_NEVER) {
    ts.tv_sec = deadline / 1000000000;
    ts.tv_nsec = deadline % 1000000000;
    tsp = &ts;
  }
  /* Race detectors (annotate-int.h): a wait word is only ever accessed
   * atomically; what it hands over is annotated by its owner. */
  conc__ann_benign_race(word, sizeof *word);
  while (conc__load_acquire(word) == expected) {
    if (deadline != CONC_DEADLINE_NEVER && conc__now_ns() >= deadline)
      return CONC_ETIMEDOUT;
    if (futex(word, op, expected, tsp, FUTEX_BITSET_MATCH_ANY) == -1 &&
        errno == ETIMEDOUT)
      return conc__load_acquire(word) == expected ? CONC_ETIMEDOUT : 0;
  }
  return 0;
}

#define INTR_SLICE_NS 10000000 /* 10 ms: how late an old kernel may see it */

/* ThreadSanitizer in the process: the library built with it, or a user's
 * program built with it (annotate.c finds its runtime). */
#if defined(__SANITIZE_THREAD__)
#define TSAN_PRESENT true
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_PRESENT true
#endif
#endif
#ifndef TSAN_PRESENT
#define TSAN_PRESENT ((conc__ann_tools & CONC__ANN_TSAN) != 0)
#endif

#if defined(SYS_futex_waitv) && defined(FUTEX_32)
#define HAVE_WAITV 1
static int waitv_missing; /* ENOSYS seen once: use slices from then on */
#endif

/* The end of one sleep: the deadline, or a slice's end where a request
 * cannot end the sleep itself: without futex_waitv, and under
 * ThreadSanitizer, which holds a handler back until the thread calls into
 * libc (a restarted futex_waitv never returns to let it run); the clock
 * read between slices is such a call. */
static conc_deadline_t sleep_end(conc_deadline_t deadline, bool sliced) {
  if (!sliced)
    return deadline;
  int64_t now = conc__now_ns();
  return deadline - now > INTR_SLICE_NS ? now + INTR_SLICE_NS : deadline;
}

static void to_timespec(conc_deadline_t t, struct timespec *ts) {
  ts->tv_sec = t / 1000000000;
  ts->tv_nsec = t % 1000000000;
}

/* One sleep of an interruptible wait: returns false once the deadline has
 * passed, true to look at the words again. */
static bool sleep_intr(const uint32_t *word, uint32_t expected,
                       conc_deadline_t deadline, bool shared) {
  struct timespec ts;
#ifdef HAVE_WAITV
  conc__ann_benign_race(&waitv_missing, sizeof waitv_missing); /* a hint */
  if (!__atomic_load_n(&waitv_missing, __ATOMIC_RELAXED)) {
    struct futex_waitv wv[2] = {
        {.val = expected,
         .uaddr = (uintptr_t)word,
         .flags = FUTEX_32 | (shared ? 0 : FUTEX_PRIVATE_FLAG)},
        {.val = 0,
         .uaddr = (uintptr_t)&conc__intr_pending,
         .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG},
    };
    conc_deadline_t end = sleep_end(deadline, TSAN_PRESENT);
    to_timespec(end, &ts);
    if (syscall(SYS_futex_waitv, wv, 2, 0,
                end == CONC_DEADLINE_NEVER ? NULL : &ts, CLOCK_MONOTONIC) >= 0)
      return true;
    if (errno != ENOSYS) /* EAGAIN, EINTR, a slice's end: look again */
      return errno != ETIMEDOUT || end != deadline;
    __atomic_store_n(&waitv_missing, 1, __ATOMIC_RELAXED);
  }
#endif
  to_timespec(sleep_end(deadline, true), &ts);
  int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  futex(word, op, expected, &ts, FUTEX_BITSET_MATCH_ANY);
  return true; /* the caller's clock check ends it at the deadline */
}

int conc__wait_intr(const uint32_t *word, uint32_t expected,
                    conc_deadline_t deadline, bool shared) {
  conc__ann_benign_race(word, sizeof *word); /* as in conc__wait */
  for (;;) {
    if (conc__load_acquire(word) != expected)
      return 0;
    if (conc__intr_take())
      return CONC_EINTR;
    if (deadline != CONC_DEADLINE_NEVER && conc__now_ns() >= deadline)
      return CONC_ETIMEDOUT;
    if (!sleep_intr(word, expected, deadline, shared))
      return conc__load_acquire(word) == expected ? CONC_ETIMEDOUT : 0;
  }
}

/* A store and a wake are both async-signal-safe; the wake reaches a waiter
 * of another thread sleeping in futex_waitv on the request word. */
void conc__intr_raise(uint32_t *pending) {
  __atomic_store_n(pending, 1u, __ATOMIC_RELEASE);
  futex(pending, FUTEX_WAKE_PRIVATE, 1, NULL, 0);
}

void conc__wake(const uint32_t *word, int n, bool shared) {
  int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  futex(word, op, (uint32_t)n, NULL, 0);
}

/* FUTEX_CMP_REQUEUE waking none: the kernel compares *from with `expected`
 * and moves its waiters to `to` atomically, so none is lost in between. */
void conc__requeue(const uint32_t *from, uint32_t expected, const uint32_t *to,
                   bool shared) {
  int op = FUTEX_CMP_REQUEUE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  if (syscall(SYS_futex, from, op, 0, (long)INT_MAX, to, expected) == -1)
    conc__wake(from, CONC__WAKE_ALL, shared);
}

const char *conc__wait_backend(void) { return "futex"; }
