// clang-format off
/*
 * Lesson 35: daemon threads do not keep the program alive.
 * Seed 002 ("Потоки-демоны": func prints five lines 0.5 s apart; first a
 * normal thread that main joins, then the same as daemon=True, which is
 * cut off when main ends).
 *
 * Python:                                    C:
 *   thread = Thread(target=func)               conc_thread_init(&thread, func, &job, NULL);
 *   thread.start()                             conc_thread_start(&thread);
 *   print("App stop")                          printf("App stop\n");
 *   thread.join()                              conc_thread_join(&thread, CONC_FOREVER);
 *   thread = Thread(target=func, daemon=True)  conc_thread_init(&daemon_thread, func, &daemon_job,
 *                                                &(conc_thread_opts_t){.daemon = true});
 *   thread.start()                             conc_thread_start(&daemon_thread);
 *   print("App stop")                          printf("App stop\n");
 *                                              return 0;   // the daemon is abandoned
 *
 * A program (Python or C with libconc) does not end while a non-daemon
 * thread runs: at exit it waits for them, even without a join. Daemon
 * threads are abandoned at exit wherever they are, so the second run of
 * func prints only its first line. (libconc registers that exit handling
 * when the first thread starts.)
 *
 * In the first part "App stop" lands anywhere among the child's lines:
 * the two threads race, as in the lesson. In the second part main prints
 * "App stop" only after the daemon's first line (an Event), so that the
 * daemon surely printed something before it is cut off. The daemon's
 * thread object is static: it must stay valid while the thread runs, and
 * that thread is never joined. Sleeps are 0.05 s, except the daemon's:
 * 2 s, so that the process surely exits before its second line
 * (ThreadSanitizer, for one, lingers a second at exit).
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

typedef struct {
  conc_event_t first_line;
  double pause;
} job_t;

static int func(void *arg, void **result) {
  job_t *job = arg;
  for (int i = 0; i < 5; i++) {
    printf("from child thread: %d\n", i);
    fflush(stdout);
    if (i == 0)
      conc_event_set(&job->first_line);
    conc_sleep(job->pause);
  }
  return 0;
}

static conc_thread_t daemon_thread; /* abandoned at exit: must outlive main */
static job_t daemon_job = {CONC_EVENT_INIT, 2.0};

int main(void) {
  job_t job = {CONC_EVENT_INIT, 0.05};
  conc_thread_t thread;
  conc_thread_init(&thread, func, &job, NULL);
  conc_thread_start(&thread);
  printf("App stop\n"); /* before, between or after the child's lines */
  conc_thread_join(&thread, CONC_FOREVER);
  conc_thread_destroy(&thread);

  printf("\n\n"); /* print('\n') */
  conc_thread_init(&daemon_thread, func, &daemon_job,
                   &(conc_thread_opts_t){.daemon = true});
  conc_thread_start(&daemon_thread);
  conc_event_wait(&daemon_job.first_line, CONC_FOREVER);
  printf("App stop\n");
  return 0; /* exit: no wait for the daemon, lines 1-4 never appear */
}
