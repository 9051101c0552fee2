// clang-format off
/*
 * Lesson 17: join(timeout) and a daemon supervisor thread.
 * Seed 001 ("2.1 Join & Daemon": main() starts run(i) threads and waits for
 * each with t.join(1); the supervisor m is a daemon joined with timeout=2).
 *
 * Python:                                   C:
 *   def main():                               static int supervisor(void *arg, void **result) {
 *       for i in range(5):                        for (int i = 0; i < 5; i++) {
 *           t = threading.Thread(target=run,          conc_thread_init(&t[i], run, ...);
 *                                args=[i,])
 *           t.start()                                 conc_thread_start(&t[i]);
 *           t.join(1)                                 conc_thread_join(&t[i], 0.2);
 *           print('starting thread',                  printf("starting thread %s\n",
 *                 t.getName())                               conc_thread_name(&t[i])); }
 *                                                 return 0; }
 *   m = threading.Thread(target=main)         conc_thread_init(&m, supervisor, NULL,
 *   m.setDaemon(True)                             &(conc_thread_opts_t){.daemon = true});
 *   m.start()                                 conc_thread_start(&m);
 *   m.join(timeout=2)                         conc_thread_join(&m, 0.5);
 *   print("---main thread done----")          printf("---main thread done----\n");
 *
 * join(timeout) gives up after the timeout; the thread keeps running. The
 * threads m starts inherit its daemon flag (Python's rule, also libconc's:
 * daemon 0 means "as the creating thread"), so when main returns nothing
 * waits for them: every run() that has not printed "--done--" by then
 * never does. Timing (a fifth of the lesson's): run() works 0.6 s, m waits
 * 0.2 s for each, main waits 0.5 s for m, so main gives up after the
 * second "starting thread" and before any "--done--". (ThreadSanitizer
 * lingers a second at exit, so under it a few more daemon lines appear
 * after main's last one; the test allows for that.)
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

/* Objects of threads that are abandoned at exit must outlive main. */
static conc_thread_t m;
static conc_thread_t workers[5];

static int run(void *arg, void **result) {
  printf("[%d]------running----\n\n", (int)(intptr_t)arg);
  conc_sleep(0.6);
  printf("--done--\n");
  return 0;
}

static int supervisor(void *arg, void **result) {
  (void)arg;
  for (int i = 0; i < 5; i++) {
    conc_thread_init(&workers[i], run, (void *)(intptr_t)i,
                     &(conc_thread_opts_t){.target_name = "run"});
    if (i == 0)
      printf("t.daemon = %s (inherited from m)\n",
             conc_thread_daemon(&workers[i]) ? "True" : "False");
    conc_thread_start(&workers[i]);
    conc_thread_join(&workers[i], 0.2);
    printf("starting thread %s\n", conc_thread_name(&workers[i]));
  }
  return 0;
}

int main(void) {
  conc_thread_init(
      &m, supervisor, NULL,
      &(conc_thread_opts_t){.target_name = "main", .daemon = true});
  conc_thread_start(&m);
  int rc = conc_thread_join(&m, 0.5);
  printf("m.join(timeout=0.5): %s, m.is_alive(): %s\n", conc_err_name(rc),
         conc_thread_is_alive(&m) ? "True" : "False");
  printf("---main thread done----\n");
  fflush(stdout);
  return 0; /* m and its run() threads are daemons: abandoned here */
}
