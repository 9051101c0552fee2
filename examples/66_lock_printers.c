// clang-format off
/*
 * Lesson 66: a Lock shared by processes that print in turn.
 * Seed 000 (printer(item, lock) for 'tango', 'foxtrot', 10).
 *
 * Python:                                        C:
 *   lock = Lock()                                  conc_lock_t *lock = conc_shared_alloc(sizeof *lock);
 *                                                  conc_lock_init(lock, &(conc_lock_opts_t){.pshared = true});
 *   lock.acquire()                                 conc_lock_acquire(lock);
 *   try: print(item)                               printf(...); fflush(stdout);
 *   finally: lock.release()                        conc_lock_release(lock);
 *
 * A lock that several processes use must live in shared memory and be
 * created with pshared: a lock in ordinary memory would be copied into each
 * child at fork, and each child would lock only its own copy. If a process
 * died holding it, the next acquire would return CONC_EOWNERDEAD instead of
 * hanging (Python would hang).
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_lock_t *lock;

static int printer(void *arg, void **result) {
  conc_lock_acquire(lock);
  printf("%s\n", (const char *)arg);
  fflush(stdout); /* the whole line is out before the lock is released */
  conc_lock_release(lock);
  return 0;
}

int main(void) {
  lock = conc_shared_alloc(sizeof *lock);
  conc_lock_init(lock, &(conc_lock_opts_t){.pshared = true});
  const char *items[] = {"tango", "foxtrot", "10"};
  conc_process_t p[3];
  for (int i = 0; i < 3; i++) {
    conc_process_init(&p[i], printer, (void *)items[i], NULL);
    conc_process_start(&p[i]);
  }
  for (int i = 0; i < 3; i++) {
    conc_process_join(&p[i], CONC_FOREVER);
    conc_process_destroy(&p[i]);
  }
  conc_shared_free(lock);
  return 0;
}
