/*
 * Platform wait on Linux futexes. FUTEX_WAIT_BITSET takes an absolute
 * CLOCK_MONOTONIC deadline, so retries after EINTR never lengthen the wait.
 * Locking: none; the kernel orders a wait against wakes on the same word.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "conc/error.h"
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
  while (conc__load_acquire(word) == expected) {
    if (deadline != CONC_DEADLINE_NEVER && conc__now_ns() >= deadline)
      return CONC_ETIMEDOUT;
    if (futex(word, op, expected, tsp, FUTEX_BITSET_MATCH_ANY) == -1 &&
        errno == ETIMEDOUT)
      return conc__load_acquire(word) == expected ? CONC_ETIMEDOUT : 0;
  }
  return 0;
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
