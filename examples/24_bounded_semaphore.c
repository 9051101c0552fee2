// clang-format off
/*
 * Lesson 24: a BoundedSemaphore lets 5 of 20 threads run at a time.
 * Seed 001 ("2.3 Semaphore": semaphore = threading.BoundedSemaphore(5);
 * run(n) acquires, sleeps 1 s, prints "run the thread: n", releases).
 *
 * Python:                                     C:
 *   semaphore = threading.BoundedSemaphore(5)   conc_bounded_semaphore_init(&semaphore, 5, NULL);
 *   semaphore.acquire()                         conc_semaphore_acquire(&semaphore);
 *   semaphore.release()                         conc_semaphore_release(&semaphore, 1);
 *   semaphore.release()  # one too many         conc_semaphore_release(&semaphore, 1)
 *     -> ValueError                               == CONC_EINVAL
 *
 * Like a toilet with 5 stalls, says the seed: the sixth thread waits until
 * one comes out. The threads print in whatever order they get in, so the
 * test checks the count of lines, not their order. To show the limit, each
 * thread counts itself in and out, and main reports the most that were
 * ever inside at once: never more than 5. 20 threads in groups of 5 take
 * at least 4 rounds of the 0.1 s sleep (the lesson's 1 s, shortened).
 */
// clang-format on
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

static conc_bounded_semaphore_t semaphore;
static atomic_int inside, most_inside;

static int run(void *arg, void **result) {
  conc_semaphore_acquire(&semaphore);
  int now = atomic_fetch_add(&inside, 1) + 1;
  int seen = atomic_load(&most_inside);
  while (now > seen && !atomic_compare_exchange_weak(&most_inside, &seen, now))
    ;
  conc_sleep(0.1);
  printf("run the thread: %d\n", (int)(intptr_t)arg);
  atomic_fetch_sub(&inside, 1);
  conc_semaphore_release(&semaphore, 1);
  return 0;
}

int main(void) {
  conc_bounded_semaphore_init(&semaphore, 5, NULL);
  conc_thread_t threads[20];
  double t0 = conc_monotonic();
  for (int i = 0; i < 20; i++) {
    conc_thread_init(&threads[i], run, (void *)(intptr_t)i, NULL);
    conc_thread_start(&threads[i]);
  }
  for (int i = 0; i < 20; i++) {
    conc_thread_join(&threads[i], CONC_FOREVER);
    conc_thread_destroy(&threads[i]);
  }
  double took = conc_monotonic() - t0;
  printf("never more than 5 inside at once: %s\n",
         atomic_load(&most_inside) <= 5 ? "yes" : "no");
  printf("took at least 4 rounds of 0.1 s: %s\n", took >= 0.4 ? "yes" : "no");

  /* A BoundedSemaphore refuses to go above its initial value. */
  int rc = conc_semaphore_release(&semaphore, 1);
  printf("one release too many: %s (%s), value still %d\n", conc_err_name(rc),
         conc_err_python(rc), conc_semaphore_get_value(&semaphore));
  conc_semaphore_destroy(&semaphore);
  return 0;
}
