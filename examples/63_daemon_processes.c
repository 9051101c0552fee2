// clang-format off
/*
 * Lesson 63: daemonic and non-daemonic processes, then join on a daemon.
 * Seed 000 (daemon() sleeps 2 s, non_daemon() returns at once).
 *
 * Python:                                        C:
 *   d = Process(name='daemon', target=daemon)      conc_process_init(&d, daemon_fn, NULL,
 *   d.daemon = True                                  &(conc_process_opts_t){.name = "daemon",
 *                                                                           .daemon = CONC_DAEMON_YES});
 *   n.daemon = False                               ... .daemon = CONC_DAEMON_NO
 *   d.start(); n.start()                           conc_process_start(&d); ... conc_process_start(&n);
 *   d.join(); n.join()                             conc_process_join(&d, CONC_FOREVER); ...
 *
 * Part 1 is the lesson's whole program; it runs here inside a child
 * ("lesson") so that we can watch it exit: at exit a process terminates
 * its daemonic children and joins the others, so "Exiting : daemon" never
 * appears. Part 2 joins the daemon, so its "Exiting" line does. The daemon
 * sleeps 3 s instead of 2 s and the lesson starts the second process 0.2 s
 * after the first, so the daemon prints first, and the other process has
 * come and gone before the daemon wakes, even on a busy machine where a
 * fork can take most of a second.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int daemon_fn(void *arg, void **result) {
  (void)arg;
  conc_process_t *p = conc_current_process();
  printf("Starting: %s %d\n", conc_process_name(p), (int)conc_process_pid(p));
  fflush(stdout);
  conc_sleep(3.0);
  printf("Exiting : %s %d\n", conc_process_name(p), (int)conc_process_pid(p));
  fflush(stdout);
  return 0;
}

static int non_daemon_fn(void *arg, void **result) {
  (void)arg;
  conc_process_t *p = conc_current_process();
  printf("Starting: %s %d\n", conc_process_name(p), (int)conc_process_pid(p));
  fflush(stdout);
  printf("Exiting : %s %d\n", conc_process_name(p), (int)conc_process_pid(p));
  fflush(stdout);
  return 0;
}

/* The lesson's program; `join` selects part 2. */
static int lesson(void *arg, void **result) {
  bool join = *(bool *)arg;
  static conc_process_t d, n;
  conc_process_init(
      &d, daemon_fn, NULL,
      &(conc_process_opts_t){.name = "daemon", .daemon = CONC_DAEMON_YES});
  conc_process_init(
      &n, non_daemon_fn, NULL,
      &(conc_process_opts_t){.name = "non-daemon", .daemon = CONC_DAEMON_NO});
  conc_process_start(&d);
  conc_sleep(0.2);
  conc_process_start(&n);
  if (join) {
    conc_process_join(&d, CONC_FOREVER);
    conc_process_join(&n, CONC_FOREVER);
  }
  return 0; /* exit: d is terminated if still running, n is joined */
}

int main(void) {
  for (int part = 1; part <= 2; part++) {
    bool join = part == 2;
    printf("-- part %d%s\n", part, join ? " (join)" : "");
    conc_process_t p;
    conc_process_init(&p, lesson, &join,
                      &(conc_process_opts_t){.name = "lesson"});
    conc_process_start(&p);
    conc_process_join(&p, CONC_FOREVER);
    conc_process_destroy(&p);
  }
  return 0;
}
