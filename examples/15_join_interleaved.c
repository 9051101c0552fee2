// clang-format off
/*
 * Lesson 15: the main thread and a child thread run side by side; join()
 * waits for children.
 * Seed 002 ("Ждем пока thread завершит работу": func printing every 0.5 s
 * while main prints every 1 s; then th1 and th2 joined before "--> stop").
 *
 * Python:                                      C:
 *   th = Thread(target=func); th.start()         conc_thread_init(&th, func, NULL, NULL);
 *                                                conc_thread_start(&th);
 *   for i in range(5):                           for (int i = 0; i < 5; i++) {
 *       print(f"from main thread: {i}")              printf("from main thread: %d\n", i);
 *       sleep(1)                                     conc_sleep(0.1); }
 *   th1.start(); th2.start()                     conc_thread_start(&th1); conc_thread_start(&th2);
 *   th1.join(); th2.join()                       conc_thread_join(&th1, CONC_FOREVER); ...
 *   print("--> stop")                            printf("--> stop\n");
 *
 * The lines of the two threads interleave in an order that depends on the
 * scheduler, so it differs from run to run (the test checks only the
 * shape). What join guarantees: "--> stop" comes after every line of th1
 * and th2. Times are a tenth of the lesson's.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int func(void *arg, void **result) {
  (void)arg;
  for (int i = 0; i < 5; i++) {
    printf("from child thread: %d\n", i);
    conc_sleep(0.05);
  }
  return 0;
}

int main(void) {
  conc_thread_t th;
  conc_thread_init(&th, func, NULL, NULL);
  conc_thread_start(&th);
  for (int i = 0; i < 5; i++) {
    printf("from main thread: %d\n", i);
    conc_sleep(0.1);
  }
  /* th ended long ago (0.25 s of work, 0.5 s waited); join reclaims it. */
  conc_thread_join(&th, CONC_FOREVER);

  conc_thread_t th1, th2;
  conc_thread_init(&th1, func, NULL, NULL);
  conc_thread_init(&th2, func, NULL, NULL);
  conc_thread_start(&th1);
  conc_thread_start(&th2);
  conc_thread_join(&th1, CONC_FOREVER);
  conc_thread_join(&th2, CONC_FOREVER);
  printf("--> stop\n");

  conc_thread_destroy(&th);
  conc_thread_destroy(&th1);
  conc_thread_destroy(&th2);
  return 0;
}
