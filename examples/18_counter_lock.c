// clang-format off
/*
 * Lesson 18: a Counter guarded by a Lock; two workers with random pauses,
 * logging with thread names.
 * Seed 000 (class Counter with lock.acquire()/try/finally release; worker
 * sleeping random() s twice; logging format "(%(threadName)-10s) %(message)s").
 *
 * Python:                                  C:
 *   class Counter:                           typedef struct {
 *       def __init__(self, start=0):           conc_lock_t lock;
 *           self.lock = threading.Lock()       long value;
 *           self.value = start               } counter_t;
 *       def increment(self):                 static void increment(counter_t *c) {
 *           self.lock.acquire()                conc_lock_acquire(&c->lock);
 *           try:                               c->value = c->value + 1;
 *               self.value = self.value + 1    conc_lock_release(&c->lock);
 *           finally:                         }
 *               self.lock.release()
 *   logging.debug('Sleeping %0.02f', p)      log_debug("Sleeping %0.02f", p);
 *   main_thread = threading.main_thread()    conc_thread_t *main_thread = conc_main_thread();
 *   for t in threading.enumerate():          size_t n = conc_enumerate(list, 8);
 *       if t is not main_thread:             for (...) if (list[i] != main_thread)
 *           t.join()                             conc_thread_join(list[i], CONC_FOREVER);
 *
 * Without the lock two threads could read the same value and both store
 * value+1, losing one increment (lesson 19 shows that happening). With it the
 * final count is always 4. C has no exceptions, so there is no `finally`:
 * the release simply follows (lesson 21 shows the scoped form that
 * releases on every exit). Pauses are random() * 0.1 s instead of up to 1 s.
 */
// clang-format on
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

typedef struct {
  conc_lock_t lock;
  long value;
} counter_t;

/* logging.debug with format "(%(threadName)-10s) %(message)s" */
static void log_debug(const char *fmt, ...) {
  char msg[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  printf("(%-10s) %s\n", conc_thread_name(conc_current_thread()), msg);
}

static void increment(counter_t *c) {
  log_debug("Waiting for lock");
  conc_lock_acquire(&c->lock);
  log_debug("Acquired lock");
  c->value = c->value + 1;
  conc_lock_release(&c->lock);
}

/* random.random() for one thread: a small xorshift generator. */
static double random01(uint32_t *state) {
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return (*state >> 8) / 16777216.0;
}

static int worker(void *arg, void **result) {
  counter_t *c = arg;
  uint32_t seed = (uint32_t)conc_get_native_id() * 2654435761u | 1u;
  for (int i = 0; i < 2; i++) {
    double pause = random01(&seed) * 0.1;
    log_debug("Sleeping %0.02f", pause);
    conc_sleep(pause);
    increment(c);
  }
  log_debug("Done");
  return 0;
}

int main(void) {
  counter_t counter = {.lock = CONC_LOCK_INIT, .value = 0};
  conc_thread_t threads[2];
  for (int i = 0; i < 2; i++) {
    conc_thread_init(&threads[i], worker, &counter, NULL);
    conc_thread_start(&threads[i]);
  }

  log_debug("Waiting for worker threads");
  conc_thread_t *main_thread = conc_main_thread();
  conc_thread_t *list[8];
  size_t n = conc_enumerate(list, 8);
  for (size_t i = 0; i < n && i < 8; i++)
    if (list[i] != main_thread)
      conc_thread_join(list[i], CONC_FOREVER);
  log_debug("Counter: %ld", counter.value);

  for (int i = 0; i < 2; i++)
    conc_thread_destroy(&threads[i]);
  return 0;
}
