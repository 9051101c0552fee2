// clang-format off
/*
 * Lesson 20: threads that know their names: the doubler, and ten named
 * threads.
 * Seeds 002 (doubler printing threading.currentThread().getName() and
 * number * 2) and 004 (ten threads named "t.%d" printing their number).
 *
 * Python:                                      C:
 *   def doubler(number):                         static int doubler(void *arg, void **result) {
 *       print(threading.currentThread()              conc_thread_name(conc_current_thread())
 *             .getName())                            ... number * 2 ...
 *       print(number * 2)                            return 0; }
 *   threading.Thread(target=doubler,             conc_thread_init(&t, doubler, &numbers[i],
 *                    args=(i,))                      &(conc_thread_opts_t){.target_name = "doubler"});
 *   threading.Thread(target=worker,              conc_thread_init(&t, worker, &numbers[i],
 *                    args=(i,), name="t.%d" % i)     &(conc_thread_opts_t){.name = name});
 *
 * The threads run at the same time, so lines they printed themselves would
 * come out in a different order each run. Here each thread writes its line
 * into its own slot, and main prints the slots after joining: the join
 * makes the slot's contents visible to main, and the output is fixed.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

typedef struct {
  int number;
  char line[64];
} job_t;

static int doubler(void *arg, void **result) {
  job_t *job = arg;
  snprintf(job->line, sizeof job->line, "%s\n%d\n",
           conc_thread_name(conc_current_thread()), job->number * 2);
  return 0;
}

static int worker(void *arg, void **result) {
  job_t *job = arg;
  conc_sleep(0.05); /* time.sleep(1), shortened */
  snprintf(job->line, sizeof job->line, "%d (from %s)\n", job->number,
           conc_thread_name(conc_current_thread()));
  return 0;
}

int main(void) {
  /* for i in range(5): Thread(target=doubler, args=(i,)).start() */
  job_t jobs[10];
  conc_thread_t threads[10];
  for (int i = 0; i < 5; i++) {
    jobs[i].number = i;
    conc_thread_init(&threads[i], doubler, &jobs[i],
                     &(conc_thread_opts_t){.target_name = "doubler"});
    conc_thread_start(&threads[i]);
  }
  for (int i = 0; i < 5; i++) {
    conc_thread_join(&threads[i], CONC_FOREVER);
    printf("%s\n", jobs[i].line); /* the lesson's print() adds a blank line */
    conc_thread_destroy(&threads[i]);
  }

  /* for i in range(10): Thread(target=worker, args=(i,), name="t.%d" % i) */
  for (int i = 0; i < 10; i++) {
    char name[16];
    snprintf(name, sizeof name, "t.%d", i);
    jobs[i].number = i;
    conc_thread_init(&threads[i], worker, &jobs[i],
                     &(conc_thread_opts_t){.name = name}); /* name is copied */
    conc_thread_start(&threads[i]);
  }
  for (int i = 0; i < 10; i++) {
    conc_thread_join(&threads[i], CONC_FOREVER);
    fputs(jobs[i].line, stdout);
    conc_thread_destroy(&threads[i]);
  }
  return 0;
}
