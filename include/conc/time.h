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
 * Sleep for `seconds` (time.sleep). A handled signal resumes the sleep with
 * the time left (PEP 475); only conc_interrupt() ends it early, with
 * CONC_EINTR. Negative (-inf too) or NaN is CONC_EINVAL, as in Python; above
 * CONC_TIMEOUT_MAX (+inf too) is CONC_EOVERFLOW (Python's OverflowError).
 * Nothing is slept on an error.
 */
CONC_EXTERN int conc_sleep(double seconds);

/*
 * Interrupts: how a signal handler ends a blocking wait, as raising
 * KeyboardInterrupt from a Python handler does (docs/design.md "Signals").
 *
 * conc_interrupt() asks the calling thread's blocking libconc call to return
 * CONC_EINTR: the one it is blocked in (a handler runs on the thread the
 * signal was delivered to), or, if it is in none, its next one. A request
 * ends one call and is then spent. Async-signal-safe; errno is kept.
 * Interruptible: lock, rlock, semaphore acquire; condition wait and
 * wait_for (the lock is held again on return); event wait; barrier wait
 * (which breaks the barrier, as in Python); queue get, put and join; simple
 * queue get; future result, exception, wait, as_completed_next (the
 * iterator stays usable), executor map_next (which ends the map, as the
 * exception ends Python's iterator); thread and process join; process queue
 * get and put; pool AsyncResult get and wait, imap next, apply and the
 * synchronous maps (the task still runs; a later get has its result);
 * conc_sleep. A call whose object is ready returns its result
 * and leaves the request pending. An untimed thread or process join is
 * interruptible once the program has called one of these three functions
 * (before, it waits in pthread_join or waitid): a program whose own handler
 * calls conc_interrupt() calls conc_interrupt_clear() once at start.
 */
CONC_EXTERN void conc_interrupt(void);

/* Drop the calling thread's pending request: 1 if there was one, else 0.
 * Async-signal-safe. */
CONC_EXTERN int conc_interrupt_clear(void);

/*
 * Install a handler for `signo` (sigaction, no SA_RESTART, replacing the
 * previous one) that interrupts the thread that called this function,
 * whichever thread the signal is delivered to: Python's rule that handlers
 * act in the main thread, so call it from main. That thread must outlive the
 * handler. Returns 0, or CONC_EINVAL for a signal that cannot be caught.
 */
CONC_EXTERN int conc_signal_interrupts(int signo);

CONC_END_DECLS

#endif
