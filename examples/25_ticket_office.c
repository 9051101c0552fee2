// clang-format off
/*
 * Lesson 25: the ticket office: 3 desks, 5 clients.
 * Seed 002 ("Семафоры": ticket_office = BoundedSemaphore(value=3); each
 * client is served for 1 s inside `with ticket_office:` and prints its
 * service time).
 *
 * Python:                                      C:
 *   ticket_office = BoundedSemaphore(value=3)    static conc_bounded_semaphore_t office =
 *                                                  CONC_BOUNDED_SEMAPHORE_INIT(3);
 *   start_service = time()                       double start_service = conc_monotonic();
 *   with ticket_office:                          CONC_WITH_SEMAPHORE(&office) {
 *       sleep(1)                                     conc_sleep(0.2);
 *       print(f"client {number}, service             printf("client %d, service time: %.1f\n",
 *             time: {time() - start_service}")              number, conc_monotonic() - start_service);
 *                                                }
 *
 * Three clients are served at once; the other two wait for a free desk,
 * so their "service time" (waiting included) is about twice as long. Which
 * clients wait depends on who comes first, so the test checks the shape.
 * (One service takes 0.2 s here instead of 1 s.)
 */
// clang-format on
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

static conc_bounded_semaphore_t office = CONC_BOUNDED_SEMAPHORE_INIT(3);
static atomic_int busy, most_busy;

static int ticket_buyer(void *arg, void **result) {
  int number = (int)(intptr_t)arg;
  double start_service = conc_monotonic();
  CONC_WITH_SEMAPHORE(&office) {
    int now = atomic_fetch_add(&busy, 1) + 1;
    int seen = atomic_load(&most_busy);
    while (now > seen && !atomic_compare_exchange_weak(&most_busy, &seen, now))
      ;
    conc_sleep(0.2);
    atomic_fetch_sub(&busy, 1);
    printf("client %d, service time: %.1f\n", number,
           conc_monotonic() - start_service);
  }
  return 0;
}

int main(void) {
  conc_thread_t buyer[5];
  for (int i = 0; i < 5; i++)
    conc_thread_init(&buyer[i], ticket_buyer, (void *)(intptr_t)i, NULL);
  for (int i = 0; i < 5; i++)
    conc_thread_start(&buyer[i]);
  for (int i = 0; i < 5; i++) {
    conc_thread_join(&buyer[i], CONC_FOREVER);
    conc_thread_destroy(&buyer[i]);
  }
  printf("desks busy at once: at most %d\n", atomic_load(&most_busy));
  return 0;
}
