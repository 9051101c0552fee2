// clang-format off
/*
 * Lesson 34: stopping a thread with a flag guarded by a Lock.
 * Seed 002 ("Как можно завершить thread": Python has no way to kill a
 * thread; infinite_worker checks stop_thread under a Lock; main sets it).
 *
 * Python:                                C:
 *   lock = Lock()                          static conc_lock_t lock = CONC_LOCK_INIT;
 *   stop_thread = False                    static bool stop_thread = false;
 *   while True:                            for (;;) {
 *       print("--> thread work")               printf("--> thread work\n");
 *       lock.acquire()                         bool stop = false;
 *       if stop_thread is True:                CONC_WITH_LOCK(&lock) { stop = stop_thread; }
 *           break                              if (stop) break;
 *       lock.release()                         conc_sleep(0.05);
 *       sleep(0.1)                         }
 *   lock.acquire()                         CONC_WITH_LOCK(&lock) {
 *   stop_thread = True                         stop_thread = true;
 *   lock.release()                         }
 *
 * Like Python, libconc cannot kill a thread from outside: the thread must
 * look at a flag and leave by itself. The lecture's code breaks out of the
 * loop while still holding the lock (so it is never released) and prints
 * "Stop infinite_worker()" inside the loop; the scoped form avoids the
 * first slip, and the message is printed once, after the loop. How many
 * "thread work" lines appear depends on timing (about 0.3 s / 0.05 s).
 */
// clang-format on
#include <stdbool.h>
#include <stdio.h>

#include <conc.h>

static conc_lock_t lock = CONC_LOCK_INIT;
static bool stop_thread; /* guarded by lock */

static int infinite_worker(void *arg, void **result) {
  (void)arg;
  printf("Start infinite_worker()\n");
  for (;;) {
    printf("--> thread work\n");
    bool stop = false;
    CONC_WITH_LOCK(&lock) { stop = stop_thread; }
    if (stop)
      break;
    conc_sleep(0.05);
  }
  printf("Stop infinite_worker()\n");
  return 0;
}

int main(void) {
  conc_thread_t thread;
  conc_thread_init(&thread, infinite_worker, NULL, NULL);
  conc_thread_start(&thread);
  conc_sleep(0.3);

  /* Stop thread */
  CONC_WITH_LOCK(&lock) { stop_thread = true; }
  conc_thread_join(&thread, CONC_FOREVER);
  conc_thread_destroy(&thread);
  return 0;
}
