// clang-format off
/*
 * Lesson 16: a daemon thread, with timestamped logging.
 * Seed 000 (logging.info with "%(asctime)s: %(message)s"; daemon=True; the
 * thread sleeps 2 s and its "finishing" line never appears).
 *
 * Python:                                       C:
 *   logging.basicConfig(format="%(asctime)s:      log_info("Main    : ...")   (below)
 *       %(message)s", datefmt="%H:%M:%S")
 *   x = threading.Thread(target=thread_function,  conc_thread_init(&x, thread_function, (void *)&one,
 *           args=(1,), daemon=True)                 &(conc_thread_opts_t){.daemon = true});
 *   x.start()                                     conc_thread_start(&x);
 *   x.daemon                                      conc_thread_daemon(&x)
 *
 * At a normal exit libconc, like Python, waits for every non-daemon thread
 * and abandons daemon threads wherever they are: main returns while the
 * daemon sleeps, so "Thread 1: finishing" is never printed (and the 2 s
 * sleep costs nothing). The thread object must stay valid while its thread
 * runs, hence `static`.
 *
 * One addition: main waits for a "started" Event before its third line.
 * The lesson's output shows the thread's "starting" line there; without
 * the Event, on a busy machine main could even exit before the thread ran
 * at all. (Python's logging writes to stderr; we print to stdout.)
 */
// clang-format on
#define _POSIX_C_SOURCE 200809L /* localtime_r */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <conc.h>

static conc_event_t started = CONC_EVENT_INIT;
static conc_thread_t x; /* must outlive the daemon thread */

/* logging.info with format "%(asctime)s: %(message)s", datefmt "%H:%M:%S" */
static void log_info(const char *fmt, ...) {
  char stamp[16];
  time_t now = time(NULL);
  struct tm tm;
  strftime(stamp, sizeof stamp, "%H:%M:%S", localtime_r(&now, &tm));
  char msg[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  printf("%s: %s\n", stamp, msg);
  fflush(stdout); /* one log line at a time, as logging's handler does */
}

static int thread_function(void *arg, void **result) {
  int name = *(const int *)arg;
  log_info("Thread %d: starting", name);
  conc_event_set(&started);
  conc_sleep(2);
  log_info("Thread %d: finishing", name); /* never reached: see above */
  return 0;
}

int main(void) {
  static const int one = 1;
  log_info("Main    : before creating thread");
  conc_thread_init(&x, thread_function, (void *)&one,
                   &(conc_thread_opts_t){.daemon = true});
  log_info("Main    : before running thread");
  conc_thread_start(&x);
  conc_event_wait(&started, CONC_FOREVER);
  log_info("Main    : wait for the thread to finish");
  log_info("Main    : x.daemon = %s",
           conc_thread_daemon(&x) ? "True" : "False");
  log_info("Main    : all done");
  return 0; /* the daemon is abandoned here, mid-sleep */
}
