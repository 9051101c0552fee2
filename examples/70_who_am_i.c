// clang-format off
/*
 * Lesson 70: who am I? The main program and four processes print their pids.
 * Seed 002 (who_am_i(what) with os.getpid()).
 *
 * Python:                                        C:
 *   print(f"Process {os.getpid()} says: {what}")   printf("Process %d says: %s\n", (int)getpid(), what);
 *   multiprocessing.Process(target=do_this,        conc_process_init(&p[n], do_this, msg[n], NULL);
 *       args=(f"I'm function {n}",)).start()       conc_process_start(&p[n]);
 *
 * The processes do not share memory: each message was formatted by the
 * parent before the fork and is read from the child's own copy.
 */
// clang-format on
#include <stdio.h>
#include <unistd.h>

#include <conc.h>

static void who_am_i(const char *what) {
  printf("Process %d says: %s\n", (int)getpid(), what);
}

static int do_this(void *arg, void **result) {
  who_am_i(arg);
  return 0;
}

int main(void) {
  who_am_i("I'm the main program");
  static char msg[4][32];
  static conc_process_t p[4];
  for (int n = 0; n < 4; n++) {
    snprintf(msg[n], sizeof msg[n], "I'm function %d", n);
    conc_process_init(&p[n], do_this, msg[n], NULL);
    conc_process_start(&p[n]);
  }
  return 0; /* exit joins them */
}
