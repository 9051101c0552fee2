// clang-format off
/*
 * Lesson 28: Condition.notify(n) wakes n waiting threads.
 * Seed 001 ("2.5 Condition": ten threads con.wait(); main reads a number n
 * and calls con.notify(n) until the user types 'q').
 *
 * Python:                              C:
 *   con = threading.Condition()          static conc_condition_t con = CONC_CONDITION_INIT;
 *   con.acquire()                        conc_condition_acquire(&con);
 *   con.wait()                           conc_condition_wait(&con, CONC_FOREVER);
 *   con.release()                        conc_condition_release(&con);
 *   inp = input('>>>')                   the next argument (default: 3 5 q)
 *   con.notify(int(inp))                 conc_condition_notify(&con, n);
 *
 * notify(n) wakes exactly n of the waiting threads (the longest waiting
 * first), never more, and a woken thread returns from wait() only after
 * the notifier has released the lock.
 *
 * Two additions make the output checkable without a human at the keyboard:
 * main asks only once all ten threads are waiting (each counts itself in
 * with a Semaphore while it holds the lock, and wait() releases that lock
 * only once the thread is queued), and after each notify(n) main waits
 * until the n woken threads have printed (another Semaphore). Which ten
 * numbers come out in which order varies. Answers come from the arguments;
 * at 'q' any threads still waiting are released with notify_all() so that
 * the program can end (in the lesson they would wait forever).
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

static conc_condition_t con = CONC_CONDITION_INIT;
static conc_semaphore_t waiting = CONC_SEMAPHORE_INIT(0);
static conc_semaphore_t ran = CONC_SEMAPHORE_INIT(0);

static int run(void *arg, void **result) {
  conc_condition_acquire(&con);
  conc_semaphore_release(&waiting, 1);
  conc_condition_wait(&con, CONC_FOREVER);
  printf("run the thread: %d\n", (int)(intptr_t)arg);
  conc_condition_release(&con);
  conc_semaphore_release(&ran, 1);
  return 0;
}

int main(int argc, char **argv) {
  static char *defaults[] = {"3", "5", "q"};
  char **answers = argc > 1 ? argv + 1 : defaults;
  int nanswers = argc > 1 ? argc - 1 : 3;

  conc_thread_t threads[10];
  for (int i = 0; i < 10; i++) {
    conc_thread_init(&threads[i], run, (void *)(intptr_t)i, NULL);
    conc_thread_start(&threads[i]);
  }
  for (int i = 0; i < 10; i++)
    conc_semaphore_acquire(&waiting);

  int left = 10;
  for (int a = 0; a < nanswers; a++) {
    printf(">>>%s\n", answers[a]);
    if (strcmp(answers[a], "q") == 0)
      break;
    int n = atoi(answers[a]);
    conc_condition_acquire(&con);
    conc_condition_notify(&con, n);
    conc_condition_release(&con);
    int woken = n < left ? (n > 0 ? n : 0) : left;
    for (int i = 0; i < woken; i++)
      conc_semaphore_acquire(&ran);
    left -= woken;
  }
  printf("%d thread(s) still waiting; notify_all() releases them\n", left);
  conc_condition_acquire(&con);
  conc_condition_notify_all(&con);
  conc_condition_release(&con);
  for (int i = 0; i < 10; i++) {
    conc_thread_join(&threads[i], CONC_FOREVER);
    conc_thread_destroy(&threads[i]);
  }
  return 0;
}
