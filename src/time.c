/*
 * Public time helpers over the platform clock, and interrupts: a signal
 * handler's way to end a blocking wait (docs/design.md "Signals").
 * Locking: none. The request word is per thread; the only word another
 * thread writes is the target's of conc_signal_interrupts, published before
 * the handler is installed and never freed while the program runs.
 */
#include "conc/time.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "conc/error.h"
#include "platform-int.h"

double conc_monotonic(void) { return (double)conc__now_ns() / 1e9; }

int64_t conc_monotonic_ns(void) { return conc__now_ns(); }

int conc_deadline_after(double timeout, conc_deadline_t *out) {
  if (isnan(timeout) || !out)
    return CONC_EINVAL;
  /* No clock read for waits without a limit: clock reads are slow on VMs. */
  if (timeout == CONC_FOREVER || timeout > CONC_TIMEOUT_MAX) {
    *out = CONC_DEADLINE_NEVER;
    return 0;
  }
  int64_t now = conc__now_ns();
  if (timeout <= 0) {
    *out = now;
  } else {
    double ns = timeout * 1e9;
    /* Saturate instead of overflowing: far deadlines mean "never". */
    *out = ns >= (double)(INT64_MAX - now) ? CONC_DEADLINE_NEVER
                                           : now + (int64_t)ns;
  }
  return 0;
}

double conc_deadline_remaining(conc_deadline_t deadline) {
  if (deadline == CONC_DEADLINE_NEVER)
    return CONC_FOREVER;
  int64_t now = conc__now_ns();
  /* compare first: deadline - now could overflow for a far-past deadline */
  return deadline > now ? (double)(deadline - now) / 1e9 : 0.0;
}

int conc_sleep(double seconds) {
  if (isnan(seconds) || seconds < 0)
    return CONC_EINVAL;
  conc_deadline_t deadline;
  conc_deadline_after(seconds, &deadline);
  if (deadline == CONC_DEADLINE_NEVER)
    return CONC_EOVERFLOW;
  /* A word nobody changes: the wait ends at the deadline or on an interrupt,
   * and a handled signal alone resumes it with the time left. */
  uint32_t never = 0;
  int rc = conc__wait_intr(&never, 0, deadline, false);
  return rc == CONC_ETIMEDOUT ? 0 : rc;
}

__thread uint32_t conc__intr_pending
    __attribute__((tls_model("initial-exec"))) = 0;

int conc__intr_armed;

void conc_interrupt(void) {
  int saved = errno; /* the interrupted code may be reading errno */
  __atomic_store_n(&conc__intr_armed, 1, __ATOMIC_RELAXED);
  conc__intr_raise(&conc__intr_pending);
  errno = saved;
}

int conc_interrupt_clear(void) {
  __atomic_store_n(&conc__intr_armed, 1, __ATOMIC_RELAXED);
  return conc__intr_take();
}

/* The thread conc_signal_interrupts names: its request word and id. */
static uint32_t *target_pending;
static pthread_t target_thread;

/* On another thread than the target, the signal is passed on to it too, so
 * that a wait outside the futexes (a process join's ppoll) sees EINTR; the
 * target's handler then raises its own request again, harmlessly. */
static void interrupt_handler(int signo) {
  int saved = errno;
  uint32_t *p = __atomic_load_n(&target_pending, __ATOMIC_ACQUIRE);
  if (p && p != &conc__intr_pending) {
    conc__intr_raise(p);
    pthread_kill(target_thread, signo);
  } else {
    conc__intr_raise(&conc__intr_pending);
  }
  errno = saved;
}

int conc_signal_interrupts(int signo) {
  if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
    return CONC_EINVAL;
  __atomic_store_n(&conc__intr_armed, 1, __ATOMIC_RELAXED);
  target_thread = pthread_self();
  __atomic_store_n(&target_pending, &conc__intr_pending, __ATOMIC_RELEASE);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = interrupt_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: other blocking calls see EINTR too */
  return sigaction(signo, &sa, NULL) == 0 ? 0 : CONC_EINVAL;
}
