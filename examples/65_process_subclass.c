// clang-format off
/*
 * Lesson 65: a Process "subclass" that overrides run().
 * Seed 000 (class Worker(multiprocessing.Process): def run(self): ...).
 *
 * Python:                                        C:
 *   class Worker(multiprocessing.Process):         typedef struct worker {
 *                                                    conc_process_t base;   // first
 *                                                    int number;
 *                                                  } worker_t;
 *       def run(self):                             static int worker_run(void *arg, void **result) {
 *           print('In {}'.format(self.name))           worker_t *self = arg;
 *                                                      printf("In %s ...", conc_process_name(&self->base), ...);
 *                                                      return 0; }
 *   p = Worker()                                   conc_process_init(&jobs[i].base, worker_run, &jobs[i],
 *                                                    &(conc_process_opts_t){.name = name});
 *   p.start()                                      conc_process_start(&jobs[i].base);
 *
 * Subclassing is embedding: the struct starts with a conc_process_t, the run
 * function receives the whole struct. Python names a subclass instance after
 * its class ("Worker-1"); in C the class name is ours to give.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

typedef struct worker {
  conc_process_t base;
  int number;
} worker_t;

static int worker_run(void *arg, void **result) {
  worker_t *self = arg;
  printf("In %s (worker number %d)\n", conc_process_name(&self->base),
         self->number);
  return 0;
}

int main(void) {
  worker_t jobs[5];
  for (int i = 0; i < 5; i++) {
    char name[32];
    snprintf(name, sizeof name, "Worker-%d", i + 1);
    jobs[i].number = i + 1;
    conc_process_init(&jobs[i].base, worker_run, &jobs[i],
                      &(conc_process_opts_t){.name = name});
    conc_process_start(&jobs[i].base);
  }
  for (int i = 0; i < 5; i++) {
    conc_process_join(&jobs[i].base, CONC_FOREVER);
    conc_process_destroy(&jobs[i].base);
  }
  return 0;
}
