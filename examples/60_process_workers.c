// clang-format off
/*
 * Lesson 60: five worker processes.
 * Seed 000 (multiprocessing: worker(num) started five times).
 *
 * Python:                                        C:
 *   def worker(num):                               static int worker(void *arg, void **result) {
 *       print('Worker:', num)                          printf("Worker: %d\n", *(int *)arg);
 *                                                      return 0; }
 *   p = multiprocessing.Process(target=worker,     conc_process_init(&jobs[i], worker, &nums[i], NULL);
 *                               args=(i,))
 *   p.start()                                      conc_process_start(&jobs[i]);
 *   (interpreter exit joins the children)          (so does libconc's exit handler)
 *
 * Each worker is a forked copy of this program: `arg` points into the
 * child's own copy of nums[], so the argument crossed by value. The children
 * run in parallel, so the lines come in any order. As in Python, the main
 * program does not join: at exit libconc joins every non-daemonic child.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int worker(void *arg, void **result) {
  printf("Worker: %d\n", *(int *)arg);
  return 0;
}

int main(void) {
  static int nums[5];
  static conc_process_t jobs[5]; /* must outlive the children: static */
  for (int i = 0; i < 5; i++) {
    nums[i] = i;
    conc_process_init(&jobs[i], worker, &nums[i], NULL);
    conc_process_start(&jobs[i]);
  }
  return 0;
}
