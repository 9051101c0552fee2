// clang-format off
/*
 * Lesson 21: Lock with acquire()/release() and with the scoped `with` form.
 * Seeds 002 ("Блокировки, Lock-объект") and 003 (lock.acquire(); try:
 * ... finally: lock.release(), "or the same: with lock:").
 *
 * Python:                            C:
 *   lock = threading.Lock()            static conc_lock_t lock = CONC_LOCK_INIT;
 *   lock.acquire()                     conc_lock_acquire(&lock);
 *   try:                               ... work ...
 *       ... work ...                   conc_lock_release(&lock);
 *   finally:
 *       lock.release()
 *   with lock:                         CONC_WITH_LOCK(&lock) {
 *       ... work ...                     ... work ...
 *                                      }
 *   lock.locked()                      conc_lock_locked(&lock)
 *   lock.acquire(blocking=False)       conc_lock_acquire_ex(&lock, false, CONC_FOREVER)
 *   lock.release()  # not locked       conc_lock_release(&lock) == CONC_ESTATE
 *     -> RuntimeError
 *
 * CONC_WITH_LOCK releases the lock on every way out of its block: the end,
 * break, return or goto (it uses the compiler's cleanup attribute), which
 * is what `finally` gives in Python. As the lecture says, a Lock is not
 * owned: any thread may release it, not only the one that acquired it.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_lock_t lock = CONC_LOCK_INIT;
static int shared_total;

static const char *tf(bool b) { return b ? "True" : "False"; }

/* Returns from inside the `with` block: the lock is released anyway. */
static int add_checked(int x) {
  CONC_WITH_LOCK(&lock) {
    if (x < 0)
      return -1; /* early exit: released here */
    shared_total += x;
  }
  return 0;
}

static int release_it(void *arg, void **result) {
  (void)arg;
  conc_lock_release(&lock); /* a thread that did not acquire it */
  return 0;
}

int main(void) {
  /* acquire / try / finally release */
  conc_lock_acquire(&lock);
  shared_total += 1;
  printf("after acquire(): locked() = %s\n", tf(conc_lock_locked(&lock)));
  int rc =
      conc_lock_acquire_ex(&lock, false, CONC_FOREVER); /* blocking=False */
  printf("acquire(blocking=False) while held: %s\n",
         rc == 0 ? "True" : "False");
  conc_lock_release(&lock);
  printf("after release(): locked() = %s\n", tf(conc_lock_locked(&lock)));

  /* with lock: */
  CONC_WITH_LOCK(&lock) {
    shared_total += 1;
    printf("inside with: locked() = %s\n", tf(conc_lock_locked(&lock)));
  }
  printf("after with: locked() = %s\n", tf(conc_lock_locked(&lock)));

  add_checked(5);
  add_checked(-1);
  printf("after a return from inside with: locked() = %s\n",
         tf(conc_lock_locked(&lock)));
  printf("shared_total = %d\n", shared_total);

  /* Releasing an unlocked lock is Python's RuntimeError. */
  rc = conc_lock_release(&lock);
  printf("release() of an unlocked lock: %s (%s)\n", conc_err_name(rc),
         conc_err_python(rc));

  /* Any thread may release a Lock. */
  conc_lock_acquire(&lock);
  conc_thread_t t;
  conc_thread_init(&t, release_it, NULL, NULL);
  conc_thread_start(&t);
  conc_thread_join(&t, CONC_FOREVER);
  conc_thread_destroy(&t);
  printf("released by another thread: locked() = %s\n",
         tf(conc_lock_locked(&lock)));
  return 0;
}
