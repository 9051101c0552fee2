// clang-format off
/*
 * Lesson 19: 100 threads decrement a shared number, without and with a Lock.
 * Seed 001 ("2.2 thread lock": num -= 1 in 100 threads; "final num").
 *
 * Python:                          C:
 *   def addNum():                    static int sub_unlocked(void *arg, void **result) {
 *       global num                       long v = load(num);    // read
 *       num -= 1                         store(num, v - 1);     // write back
 *   lock = threading.Lock()          static conc_lock_t lock = CONC_LOCK_INIT;
 *   lock.acquire()                   conc_lock_acquire(&lock);
 *   num -= 1                         num_locked -= 1;
 *   lock.release()                   conc_lock_release(&lock);
 *
 * `num -= 1` is a read, a subtraction and a write. When two threads read
 * the same value, both write value-1 and one decrement is lost. The seed
 * says Python 2.7+ "adds the lock automatically": that is the GIL, which
 * runs one thread at a time and switches rarely, so in CPython the loss is
 * rare (but possible). C threads have no GIL and run truly in parallel on
 * several cores, so here the window is hit far more often -- how often
 * depends on the machine and the moment, so this lesson reports what
 * happened instead of promising a number. With the Lock the result is
 * exact every time.
 *
 * Why an atomic for the unlocked counter: in C, two threads touching a
 * plain variable without synchronisation is a data race, which is
 * undefined behaviour (the compiler may assume it never happens). A
 * relaxed atomic load followed by a separate relaxed atomic store keeps
 * exactly the read-then-write shape of `num -= 1`, so updates are still
 * lost, but every access is defined (and ThreadSanitizer stays quiet).
 * To make the threads overlap, as the lesson's time.sleep(1) does, they
 * all wait for one start Event, and each decrements ROUNDS times.
 */
// clang-format on
#include <stdatomic.h>
#include <stdio.h>

#include <conc.h>

#define THREADS 100
#define ROUNDS 20000

static _Atomic long num_unlocked; /* racy on purpose (see above) */
static long num_locked;           /* only touched under `lock` */
static conc_lock_t lock = CONC_LOCK_INIT;
static conc_event_t go = CONC_EVENT_INIT;

static int sub_unlocked(void *arg, void **result) {
  (void)arg;
  conc_event_wait(&go, CONC_FOREVER);
  for (int i = 0; i < ROUNDS; i++) {
    long v = atomic_load_explicit(&num_unlocked, memory_order_relaxed);
    atomic_store_explicit(&num_unlocked, v - 1, memory_order_relaxed);
  }
  return 0;
}

static int sub_locked(void *arg, void **result) {
  (void)arg;
  conc_event_wait(&go, CONC_FOREVER);
  for (int i = 0; i < ROUNDS; i++) {
    conc_lock_acquire(&lock); /* lock.acquire()  */
    num_locked -= 1;          /* num -= 1        */
    conc_lock_release(&lock); /* lock.release()  */
  }
  return 0;
}

/* Start 100 threads on fn, release them together, wait for all. */
static void run_all(conc_fn_t fn) {
  static conc_thread_t threads[THREADS];
  conc_event_clear(&go);
  for (int i = 0; i < THREADS; i++) {
    conc_thread_init(&threads[i], fn, NULL, NULL);
    conc_thread_start(&threads[i]);
  }
  conc_event_set(&go);
  for (int i = 0; i < THREADS; i++) {
    conc_thread_join(&threads[i], CONC_FOREVER);
    conc_thread_destroy(&threads[i]);
  }
}

int main(void) {
  const long start = (long)THREADS * ROUNDS;
  printf("%d threads each decrement num %d times, starting from %ld\n", THREADS,
         ROUNDS, start);

  atomic_store(&num_unlocked, start);
  run_all(sub_unlocked);
  long left = atomic_load(&num_unlocked);
  printf("without a Lock: final num: %ld\n", left);
  printf("  updates lost this run: %s (%ld of %ld decrements)\n",
         left != 0 ? "yes" : "no", left, start);

  num_locked = start;
  run_all(sub_locked);
  printf("with a Lock: final num: %ld\n", num_locked);
  return 0;
}
