// clang-format off
/*
 * Timer: threading.Timer, a thread that calls a function once after an
 * interval unless cancelled first.
 *
 *   Python                                C
 *   def hello(x): ...                     static int hello(void *x, void **result) { ...; return 0; }
 *   t = Timer(2.0, hello, args=(x,))      conc_timer_t t;
 *                                         conc_timer_init(&t, 2.0, hello, x, NULL);
 *   t.start()                             conc_timer_start(&t);
 *   t.cancel()                            conc_timer_cancel(&t);
 *   t.join()                              conc_timer_join(&t, CONC_FOREVER);
 *
 * A Timer is a Thread: conc_timer_thread() gives the embedded conc_thread_t
 * for every conc_thread_* call (name, daemon, ident, repr shows "Timer").
 * The default name is "Thread-N", as in Python. fn is a conc_fn_t
 * (conc/defs.h) and runs as the thread's target: its *result is the
 * thread's result (conc_thread_result), a negative return goes to the
 * excepthook with its conc_raise message. A cancelled timer's result is
 * NULL.
 */
// clang-format on
#ifndef CONC_TIMER_H
#define CONC_TIMER_H

#include "conc/defs.h"
#include "conc/thread.h"

CONC_BEGIN_DECLS

/* The thread options apply (name, daemon, stack_size). */
typedef conc_thread_opts_t conc_timer_opts_t;

typedef struct conc_timer {
  conc_thread_t thread; /* first: a Timer is a Thread */
  struct {
    double interval;
    conc_fn_t fn;
    void *arg;
    uint32_t finished; /* the "finished" Event: set by cancel or after fn */
  } priv;
} conc_timer_t;

/* Timer(interval, function, args). A negative interval fires at once (as
 * Python's Event.wait does); NaN and a NULL fn are CONC_EINVAL. */
CONC_EXTERN int conc_timer_init(conc_timer_t *tm, double interval, conc_fn_t fn,
                                void *arg, const conc_timer_opts_t *opts);

/* start(): conc_thread_start on the timer's thread (same codes). */
CONC_EXTERN int conc_timer_start(conc_timer_t *tm);

/* cancel(): stop the timer if it is still waiting: fn will then never run
 * and the thread ends promptly. After fn has run it does nothing. Allowed
 * before start (the timer then ends at once when started). Returns 0 or
 * CONC_EINVAL. */
CONC_EXTERN int conc_timer_cancel(conc_timer_t *tm);

/* join(timeout) and is_alive(): as conc_thread_join / conc_thread_is_alive. */
CONC_EXTERN int conc_timer_join(conc_timer_t *tm, double timeout);
CONC_EXTERN bool conc_timer_is_alive(const conc_timer_t *tm);

/* The embedded thread (for names, idents, result, repr). */
CONC_EXTERN conc_thread_t *conc_timer_thread(conc_timer_t *tm);

/* conc_thread_destroy on the embedded thread (same codes). */
CONC_EXTERN int conc_timer_destroy(conc_timer_t *tm);

CONC_END_DECLS

#endif
