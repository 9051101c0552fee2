/* Public time helpers over the platform clock. Locking: none. */
#include "conc/time.h"

#include <errno.h>
#include <math.h>
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
  struct timespec ts = {.tv_sec = deadline / 1000000000,
                        .tv_nsec = deadline % 1000000000};
  int rc;
  /* Absolute sleep: an interrupted sleep resumes without drifting. */
  while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) ==
         EINTR)
    ;
  return rc ? -rc : 0;
}
