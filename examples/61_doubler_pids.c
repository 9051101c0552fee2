// clang-format off
/*
 * Lesson 61: a doubler in five processes, each printing its pid.
 * Seed 000 (doubler(number) with os.getpid()).
 *
 * Python:                                        C:
 *   proc = os.getpid()                             getpid()
 *                                                    (or conc_process_pid(conc_current_process()))
 *   proc = Process(target=doubler,                 conc_process_init(&procs[i], doubler, &numbers[i], NULL);
 *                  args=(number,))
 *   proc.start()                                   conc_process_start(&procs[i]);
 *   proc.join()                                    conc_process_join(&procs[i], CONC_FOREVER);
 *
 * Every line comes from a different process, so the pids differ and the
 * order is up to the scheduler.
 */
// clang-format on
#include <stdio.h>
#include <unistd.h>

#include <conc.h>

static int doubler(void *arg, void **result) {
  int number = *(int *)arg;
  int doubled = number * 2;
  printf("%d doubled to %d by process id: %d\n", number, doubled,
         (int)getpid());
  return 0;
}

int main(void) {
  int numbers[] = {5, 10, 15, 20, 25};
  conc_process_t procs[5];
  for (int i = 0; i < 5; i++) {
    conc_process_init(&procs[i], doubler, &numbers[i], NULL);
    conc_process_start(&procs[i]);
  }
  for (int i = 0; i < 5; i++) {
    conc_process_join(&procs[i], CONC_FOREVER);
    conc_process_destroy(&procs[i]);
  }
  return 0;
}
