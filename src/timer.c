/*
 * Timer: threading.Timer, a thread that waits `interval` on its `finished`
 * word (Python's finished Event) and then calls fn unless cancelled.
 *
 * Locking: none beyond the word. cancel stores 1 and wakes; the timer
 * thread parks on the word with one deadline computed at its start, so
 * spurious wake-ups never lengthen the interval.
 */
#include "conc/timer.h"

#include "conc/error.h"
#include "platform-int.h"
#include "thread-int.h"

static conc_deadline_t deadline_of(double interval) {
  if (interval <= 0) /* Python's Event.wait polls for these */
    return conc__now_ns();
  conc_deadline_t d;
  conc_deadline_after(interval, &d);
  return d;
}

static void set_finished(conc_timer_t *tm) {
  if (conc__xchg(&tm->priv.finished, 1) == 0)
    conc__wake(&tm->priv.finished, CONC__WAKE_ALL, false);
}

/* The timer thread's target: fn's code and *result become the thread's,
 * so a failing fn reaches the excepthook as a thread's target would. */
static int timer_run(void *arg, void **result) {
  conc_timer_t *tm = arg;
  conc_deadline_t deadline = deadline_of(tm->priv.interval);
  while (conc__load_acquire(&tm->priv.finished) == 0)
    if (conc__wait(&tm->priv.finished, 0, deadline, false) == CONC_ETIMEDOUT)
      break;
  int rc = 0;
  if (conc__load_acquire(&tm->priv.finished) == 0)
    rc = tm->priv.fn(tm->priv.arg, result);
  set_finished(tm);
  return rc;
}

int conc_timer_init(conc_timer_t *tm, double interval, conc_fn_t fn, void *arg,
                    const conc_timer_opts_t *opts) {
  if (!tm || !fn || interval != interval)
    return CONC_EINVAL;
  int rc = conc_thread_init(&tm->thread, timer_run, tm, opts);
  if (rc)
    return rc;
  conc__thread_set_kind(&tm->thread, "Timer");
  tm->priv.interval = interval;
  tm->priv.fn = fn;
  tm->priv.arg = arg;
  tm->priv.finished = 0;
  return 0;
}

int conc_timer_start(conc_timer_t *tm) {
  return tm ? conc_thread_start(&tm->thread) : CONC_EINVAL;
}

int conc_timer_cancel(conc_timer_t *tm) {
  if (!tm)
    return CONC_EINVAL;
  set_finished(tm);
  return 0;
}

int conc_timer_join(conc_timer_t *tm, double timeout) {
  return tm ? conc_thread_join(&tm->thread, timeout) : CONC_EINVAL;
}

bool conc_timer_is_alive(const conc_timer_t *tm) {
  return tm && conc_thread_is_alive(&tm->thread);
}

conc_thread_t *conc_timer_thread(conc_timer_t *tm) {
  return tm ? &tm->thread : NULL;
}

int conc_timer_destroy(conc_timer_t *tm) {
  return tm ? conc_thread_destroy(&tm->thread) : CONC_EINVAL;
}
