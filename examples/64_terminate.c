// clang-format off
/*
 * Lesson 64: terminate() a process, then join() it.
 * Seed 000 (slow_worker; BEFORE / DURING / TERMINATED / JOINED).
 *
 * Python:                                        C:
 *   print('BEFORE:', p, p.is_alive())              conc_process_repr(&p, buf, sizeof buf);
 *                                                  conc_process_is_alive(&p)
 *   p.terminate()                                  conc_process_terminate(&p);   (SIGTERM)
 *   p.join()                                       conc_process_join(&p, CONC_FOREVER);
 *   p.exitcode  # -15                              conc_process_exitcode(&p, &code);
 *
 * Right after terminate() the child may still be alive: the signal is on its
 * way (the TERMINATED line may even say "started" and then False, when it
 * dies between the two looks, as in Python). join() reaps it; only then is
 * it surely stopped, with exit code -SIGTERM. The worker never prints "Finished worker": it is killed during
 * its sleep. Its "Starting worker" may come before or after the DURING line:
 * the child runs as soon as it is forked, in parallel with the parent.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int slow_worker(void *arg, void **result) {
  (void)arg;
  printf("Starting worker\n");
  fflush(stdout);
  conc_sleep(10);
  printf("Finished worker\n");
  return 0;
}

static void show(const char *when, conc_process_t *p) {
  char buf[160];
  conc_process_repr(p, buf, sizeof buf);
  printf("%s %s %s\n", when, buf, conc_process_is_alive(p) ? "True" : "False");
  fflush(stdout);
}

int main(void) {
  conc_process_t p;
  conc_process_init(&p, slow_worker, NULL, NULL);
  show("BEFORE:", &p);
  conc_process_start(&p);
  show("DURING:", &p);
  conc_sleep(0.1); /* let it print "Starting worker" */
  conc_process_terminate(&p);
  show("TERMINATED:", &p);
  conc_process_join(&p, CONC_FOREVER);
  show("JOINED:", &p);
  int code;
  conc_process_exitcode(&p, &code);
  printf("exitcode: %d\n", code);
  conc_process_destroy(&p);
  return 0;
}
