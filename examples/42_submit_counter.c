// clang-format off
/*
 * Lesson 42: 100,000 submits incrementing a counter under a Lock; then
 * futures collected and awaited.
 * Seed 003 ("Блокировки": for idx in range(100000): executor.submit(func)
 * where func does `with lock: a += 1`; then futures = [executor.submit(foo,
 * lock) for _ in range(10)] and future.result() for each).
 *
 *   Python:                                  C:
 *   lock = threading.Lock()                  static conc_lock_t lock = CONC_LOCK_INIT;
 *   def func():                              static int func(void *arg, void **result) {
 *       global a                                 CONC_WITH_LOCK(&lock) { a += 1; }
 *       with lock: a += 1                        return 0; }
 *   for idx in range(100000):                for (int i = 0; i < 100000; i++)
 *       executor.submit(func)                    conc_executor_submit(&ex, func, NULL, NULL);
 *   futures = [executor.submit(foo, lock)    conc_future_t *fs[10]; ... submit(&ex, foo, &lock, &fs[i]);
 *              for _ in range(10)]
 *   for future in futures: future.result()   conc_future_result(fs[i], CONC_FOREVER, NULL);
 *
 * Passing NULL for the future says "I won't look at it": nothing to
 * release. The pool recycles its task records, so 100,000 submissions
 * do not mean 100,000 allocations. Three workers really run in parallel
 * here (no GIL): without the lock, `a += 1` would lose updates (lesson 19).
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_lock_t lock = CONC_LOCK_INIT;
static long a = 1;
static long acc = 0;

static int func(void *arg, void **result) {
  (void)arg;
  (void)result;
  CONC_WITH_LOCK(&lock) { a += 1; }
  return 0;
}

static int foo(void *arg, void **result) {
  (void)result;
  conc_lock_t *l = arg;
  CONC_WITH_LOCK(l) { acc += 1; }
  return 0;
}

int main(void) {
  conc_executor_t ex;
  conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 3});

  for (int idx = 0; idx < 100000; idx++)
    conc_executor_submit(&ex, func, NULL, NULL);

  conc_future_t *futures[10];
  for (int i = 0; i < 10; i++)
    conc_executor_submit(&ex, foo, &lock, &futures[i]);
  for (int i = 0; i < 10; i++) {
    conc_future_result(futures[i], CONC_FOREVER, NULL);
    conc_future_release(futures[i]);
  }
  printf("acc = %ld\n", acc);

  /* The 100,000 fire-and-forget tasks: shutdown(wait=True) waits for all. */
  conc_executor_shutdown(&ex, true, false);
  printf("a = %ld\n", a);
  conc_executor_destroy(&ex);
  return 0;
}
