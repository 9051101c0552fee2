// clang-format off
/*
 * Lesson 62: processes have names.
 * Seed 000 (worker / my_service with current_process().name).
 *
 * Python:                                        C:
 *   name = multiprocessing.current_process().name  conc_process_name(conc_current_process())
 *   Process(name="my_service",                     conc_process_init(&service, my_service, NULL,
 *           target=my_service)                       &(conc_process_opts_t){.name = "my_service"});
 *   Process(target=worker)   # "Process-3"         conc_process_init(&worker_2, worker, NULL, NULL);
 *
 * A process without a name gets "Process-N", N counting every Process
 * created so far in this process (the third one here). The sleeps are
 * tenths of the lesson's seconds.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int worker(void *arg, void **result) {
  (void)arg;
  const char *name = conc_process_name(conc_current_process());
  printf("%s Starting\n", name);
  fflush(stdout);
  conc_sleep(0.2);
  printf("%s Exiting\n", name);
  return 0;
}

static int my_service(void *arg, void **result) {
  (void)arg;
  const char *name = conc_process_name(conc_current_process());
  printf("%s Starting\n", name);
  fflush(stdout);
  conc_sleep(0.4);
  printf("%s Exiting\n", name);
  return 0;
}

int main(void) {
  static conc_process_t service, worker_1, worker_2;
  conc_process_init(&service, my_service, NULL,
                    &(conc_process_opts_t){.name = "my_service"});
  conc_process_init(&worker_1, worker, NULL,
                    &(conc_process_opts_t){.name = "worker 1"});
  conc_process_init(&worker_2, worker, NULL, NULL);
  conc_process_start(&worker_1);
  conc_process_start(&worker_2);
  conc_process_start(&service);
  return 0; /* exit joins the three */
}
