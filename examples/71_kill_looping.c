// clang-format off
/*
 * Lesson 71: stopping a process that loops forever: terminate() and kill().
 * Seed 002 (loopy(name) honks every second; the main program says hi five
 * times, then terminates it).
 *
 * Python:                                        C:
 *   process.terminate()   # SIGTERM                conc_process_terminate(&p);
 *   process.kill()        # SIGKILL                conc_process_kill(&p);
 *   process.join()                                 conc_process_join(&p, CONC_FOREVER);
 *   process.exitcode      # -15 / -9               conc_process_exitcode(&p, &code);
 *
 * A thread cannot be stopped from outside; a process can. SIGTERM may be
 * caught by the child to clean up, SIGKILL cannot. The child flushes each
 * line, because a process killed by a signal loses whatever is still in its
 * stdio buffer. Times are tenths of the lesson's seconds.
 */
// clang-format on
#include <stdio.h>
#include <unistd.h>

#include <conc.h>

static void who_am_i(const char *name) {
  printf("I'm %s, in process %d\n", name, (int)getpid());
  fflush(stdout);
}

static int loopy(void *arg, void **result) {
  who_am_i(arg);
  for (int num = 1; num < 1000000; num++) {
    printf("\tNumber of %d of 1000000. Honk!\n", num);
    fflush(stdout);
    conc_sleep(0.1);
  }
  return 0;
}

static void run_and_stop(bool hard) {
  conc_process_t p;
  conc_process_init(&p, loopy, "loopy", NULL);
  conc_process_start(&p);
  for (int i = 0; i < 5; i++) {
    printf("hi\n");
    fflush(stdout);
    conc_sleep(0.1);
  }
  if (hard)
    conc_process_kill(&p);
  else
    conc_process_terminate(&p);
  conc_process_join(&p, CONC_FOREVER);
  int code;
  conc_process_exitcode(&p, &code);
  printf("%s: exitcode %d\n", hard ? "killed" : "terminated", code);
  conc_process_destroy(&p);
}

int main(void) {
  who_am_i("I'm the main program");
  run_and_stop(false);
  run_and_stop(true);
  return 0;
}
