/*
 * Time: timeouts are relative seconds as double, as in Python. Blocking calls
 * turn them into one absolute deadline on CLOCK_MONOTONIC at entry.
 */
#ifndef CONC_TIME_H
#define CONC_TIME_H

#include <stdint.h>

#include "conc/defs.h"

/* Wait without limit (Python's None). */
#define CONC_FOREVER (-1.0)
/* The largest finite timeout accepted (Python's threading.TIMEOUT_MAX). */
#define CONC_TIMEOUT_MAX 9223372036.0

/* An absolute point on the monotonic clock, in nanoseconds. */
typedef int64_t conc_deadline_t;
#define CONC_DEADLINE_NEVER INT64_MAX

CONC_BEGIN_DECLS

/* Monotonic time in seconds (time.monotonic()). */
CONC_EXTERN double conc_monotonic(void);
/* Monotonic time in nanoseconds (time.monotonic_ns()). */
CONC_EXTERN int64_t conc_monotonic_ns(void);

/*
 * Turn a relative timeout into an absolute deadline: CONC_FOREVER (or any
 * value above CONC_TIMEOUT_MAX) gives CONC_DEADLINE_NEVER, other negative
 * values give "now" (a poll). Returns 0, or CONC_EINVAL for NaN or a NULL
 * out (*out is then unchanged).
 */
CONC_EXTERN int conc_deadline_after(double timeout, conc_deadline_t *out);
/* Seconds left until the deadline (0 if passed, CONC_FOREVER if never).
 * Never fails: any deadline (a negative one too) is a point in time. */
CONC_EXTERN double conc_deadline_remaining(conc_deadline_t deadline);

/*
 * Sleep for `seconds` (time.sleep); the whole interval is slept even if
 * signals interrupt it. Negative (-inf too) or NaN is CONC_EINVAL, as in
 * Python; above CONC_TIMEOUT_MAX (+inf too) is CONC_EOVERFLOW (Python's
 * OverflowError). Nothing is slept on an error.
 */
CONC_EXTERN int conc_sleep(double seconds);

CONC_END_DECLS

#endif
