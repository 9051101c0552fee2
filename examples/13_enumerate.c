// clang-format off
/*
 * Lesson 13: threading.enumerate() and active_count().
 * Seed 000 ("threading.enumerate()" listing MainThread and IPython's threads).
 *
 * Python:                                C:
 *   threading.enumerate()                  conc_thread_t *list[16];
 *                                          size_t n = conc_enumerate(list, 16);
 *   threading.active_count()               conc_active_count()
 *   t.daemon                               conc_thread_daemon(t)
 *
 * enumerate() lists the main thread and every thread that has started and
 * not yet ended: a thread that was created but not started, or that has
 * finished, is not there. Three workers wait on an Event so that they are
 * surely alive while we look. (The notebook's list showed IPython's own
 * helper threads; a C program has only the threads it starts. Its repr
 * shows idents, which change each run, so we print names and flags.)
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_event_t go = CONC_EVENT_INIT;

static int wait_for_go(void *arg, void **result) {
  (void)arg;
  conc_event_wait(&go, CONC_FOREVER);
  return 0;
}

static void show(const char *when) {
  conc_thread_t *list[16];
  size_t n = conc_enumerate(list, 16);
  printf("%s: %zu thread(s), active_count() = %zu\n", when, n,
         conc_active_count());
  for (size_t i = 0; i < n && i < 16; i++)
    printf("  %s%s\n", conc_thread_name(list[i]),
           conc_thread_daemon(list[i]) ? " (daemon)" : "");
}

int main(void) {
  conc_thread_t workers[3], unstarted;
  conc_thread_init(&workers[0], wait_for_go, NULL,
                   &(conc_thread_opts_t){.name = "Heartbeat", .daemon = true});
  conc_thread_init(&workers[1], wait_for_go, NULL,
                   &(conc_thread_opts_t){.name = "HistorySaver"});
  conc_thread_init(&workers[2], wait_for_go, NULL, NULL); /* Thread-1 */
  conc_thread_init(&unstarted, NULL, NULL, NULL);         /* Thread-2 */

  show("before start");
  for (int i = 0; i < 3; i++)
    conc_thread_start(&workers[i]);
  show("three started, one never started");

  conc_event_set(&go);
  for (int i = 0; i < 3; i++)
    conc_thread_join(&workers[i], CONC_FOREVER);
  show("after join");

  for (int i = 0; i < 3; i++)
    conc_thread_destroy(&workers[i]);
  conc_thread_destroy(&unstarted);
  return 0;
}
