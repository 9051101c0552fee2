// clang-format off
/*
 * Lesson 23: Lock vs RLock when the same thread acquires twice.
 * Seed 004 ("threading.RLock 和 threading.Lock 的区别": lock.acquire() twice
 * deadlocks; rlock.acquire() twice does not; print("end.")).
 *
 * Python:                              C:
 *   lock = threading.Lock()              conc_lock_t lock = CONC_LOCK_INIT;
 *   lock.acquire()                       conc_lock_acquire(&lock);
 *   lock.acquire()   # deadlock          conc_lock_acquire_timeout(&lock, 0.2)
 *                                          -> CONC_ETIMEDOUT (instead of hanging)
 *   rlock = threading.RLock()            conc_rlock_t rlock = CONC_RLOCK_INIT;
 *   rlock.acquire()                      conc_rlock_acquire(&rlock);
 *   rlock.acquire()  # fine              conc_rlock_acquire(&rlock);
 *   rlock.release()                      conc_rlock_release(&rlock);
 *   rlock.release()                      conc_rlock_release(&rlock);
 *   print("end.")                        printf("end.\n");
 *
 * A Lock does not know who holds it, so a second acquire by the holder
 * waits for a release that will never come: a deadlock. To show that
 * without hanging the tour, the second acquire gets a timeout. An RLock
 * remembers its owner and counts levels; it is free again only after as
 * many releases as acquires.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

int main(void) {
  conc_lock_t lock = CONC_LOCK_INIT;
  conc_lock_acquire(&lock);
  double t0 = conc_monotonic();
  int rc = conc_lock_acquire_timeout(&lock, 0.2);
  double waited = conc_monotonic() - t0;
  printf("Lock, second acquire by the same thread: %s after %s0.2 s\n",
         conc_err_name(rc), waited >= 0.2 ? ">= " : "< ");
  printf("  (with no timeout it would wait forever: a deadlock)\n");
  conc_lock_release(&lock);

  conc_rlock_t rlock = CONC_RLOCK_INIT;
  conc_rlock_acquire(&rlock);
  rc = conc_rlock_acquire(&rlock); /* does not block in the same thread */
  printf("RLock, second acquire: %s, recursion count %u\n",
         rc == 0 ? "ok" : conc_err_name(rc), conc_rlock_count(&rlock));
  conc_rlock_release(&rlock);
  printf("after one release: locked() = %s, count %u\n",
         conc_rlock_locked(&rlock) ? "True" : "False",
         conc_rlock_count(&rlock));
  conc_rlock_release(&rlock);
  printf("after two releases: locked() = %s\n",
         conc_rlock_locked(&rlock) ? "True" : "False");
  rc = conc_rlock_release(&rlock);
  printf("a third release: %s (%s)\n", conc_err_name(rc), conc_err_python(rc));
  printf("end.\n");
  return 0;
}
