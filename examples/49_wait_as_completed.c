// clang-format off
/*
 * Lesson 49: waiting for several futures: wait() and as_completed().
 * (Not in the seed lessons; the concurrent.futures tools lessons 40-48
 * lead up to.)
 *
 *   Python:                                  C:
 *   fs = [ex.submit(nap, t) for t in ms]     conc_executor_submit(&ex, nap, (void *)ms[i], &fs[i]);
 *   done, not_done = wait(fs,                conc_wait_result_t r = {done, 0, not_done, 0};
 *       return_when=FIRST_COMPLETED)         conc_futures_wait(fs, 3, CONC_FOREVER, CONC_FIRST_COMPLETED, &r);
 *   for f in as_completed(fs):               conc_as_completed_init(&it, fs, 3, CONC_FOREVER);
 *       print(f.result())                    while (conc_as_completed_next(&it, &f) == 0) ...
 *   as_completed(fs, timeout=0.18)           conc_as_completed_init(&it, fs, 3, 0.18);
 *   -> TimeoutError: 2 (of 3) futures        ... == CONC_ETIMEDOUT;
 *      unfinished                            conc_as_completed_message(&it)
 *
 * as_completed_next returns 0 with a future, CONC_EEOF after the last one
 * and CONC_ETIMEDOUT at the timeout, so `while (next(...) == 0)` stops at
 * either. The naps (480, 80 and 280 ms) are far enough apart (and from the
 * 0.18 s timeout) that the completion order is the same on every run, even
 * on a busy machine.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

static int nap(void *arg, void **result) {
  conc_sleep((intptr_t)arg / 1000.0);
  *result = arg;
  return 0;
}

static void submit_all(conc_executor_t *ex, conc_future_t **fs) {
  static const intptr_t ms[] = {480, 80, 280};
  for (int i = 0; i < 3; i++)
    conc_executor_submit(ex, nap, (void *)ms[i], &fs[i]);
}

static long ms_of(conc_future_t *f) {
  void *v = NULL;
  conc_future_result(f, CONC_FOREVER, &v);
  return (long)(intptr_t)v;
}

static void release_all(conc_future_t **fs) {
  for (int i = 0; i < 3; i++)
    conc_future_release(fs[i]);
}

int main(void) {
  conc_executor_t ex;
  conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 3});
  conc_future_t *fs[3];

  submit_all(&ex, fs);
  conc_future_t *done[3], *not_done[3];
  conc_wait_result_t r = {done, 0, not_done, 0};
  conc_futures_wait(fs, 3, CONC_FOREVER, CONC_FIRST_COMPLETED, &r);
  printf("FIRST_COMPLETED: %zu done (the %ld ms nap), %zu not done\n", r.ndone,
         ms_of(done[0]), r.nnot_done);
  conc_futures_wait(fs, 3, CONC_FOREVER, CONC_ALL_COMPLETED, &r);
  printf("ALL_COMPLETED: %zu done, %zu not done\n", r.ndone, r.nnot_done);
  release_all(fs);

  submit_all(&ex, fs);
  conc_as_completed_t it;
  conc_future_t *f;
  conc_as_completed_init(&it, fs, 3, CONC_FOREVER);
  printf("as_completed:");
  while (conc_as_completed_next(&it, &f) == 0)
    printf(" %ld", ms_of(f));
  printf("\n");
  conc_as_completed_destroy(&it);
  release_all(fs);

  submit_all(&ex, fs);
  conc_as_completed_init(&it, fs, 3, 0.18);
  while (conc_as_completed_next(&it, &f) == 0)
    printf("in time: %ld\n", ms_of(f));
  printf("TimeoutError: %s\n", conc_as_completed_message(&it));
  conc_as_completed_destroy(&it);
  release_all(fs);

  conc_executor_destroy(&ex);
  return 0;
}
