/*
 * Portable platform wait: a hashed table of mutex + condition variable
 * buckets on CLOCK_MONOTONIC. Locking: a waiter re-checks the word under its
 * bucket's mutex before sleeping, and a waker (who changed the word first)
 * broadcasts under the same mutex, so no wake-up is lost. Every waiter on a
 * bucket wakes and re-checks its own word: exact but not herd-free.
 *
 * Process-shared waits cannot use a process-local table; they poll the word
 * with a bounded exponential back-off (20 us to 1 ms). Documented in
 * docs/building.md; Linux builds use futexes unless the fallback is forced.
 *
 * Interrupts: a signal handler may not touch a mutex or a condition
 * variable, so conc__intr_raise only stores the request, and an
 * interruptible wait sleeps in slices of INTR_SLICE_NS, looking at it
 * between them (an interrupt is seen within that time).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "conc/error.h"
#include "annotate-int.h"
#include "platform-int.h"

#define NBUCKETS 64

struct bucket {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int waiters;
};

static struct bucket buckets[NBUCKETS];

static void buckets_create(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  for (int i = 0; i < NBUCKETS; i++) {
    pthread_mutex_init(&buckets[i].mu, NULL);
    pthread_cond_init(&buckets[i].cv, &attr);
  }
  pthread_condattr_destroy(&attr);
}

/* A bucket mutex held by another thread at fork would stay held forever in
 * the child; the child is single-threaded, so fresh buckets are safe. */
static void buckets_after_fork(void) {
  for (int i = 0; i < NBUCKETS; i++)
    buckets[i].waiters = 0;
  buckets_create();
}

/* Made when the library loads, while the process has one thread: a lazy
 * pthread_once could be caught mid-way by another thread's fork, and the
 * child would then wait for that once forever (lesson 91 hung so under
 * musl when a pool forked a worker while its first waits began). */
__attribute__((constructor)) static void buckets_init(void) {
  buckets_create();
  pthread_atfork(NULL, NULL, buckets_after_fork);
}

static struct bucket *bucket_of(const uint32_t *word) {
  uintptr_t h = (uintptr_t)word;
  h ^= h >> 17;
  h *= 0x9e3779b1u;
  return &buckets[(h >> 4) % NBUCKETS];
}

#define INTR_SLICE_NS 10000000 /* 10 ms */

static int wait_shared(const uint32_t *word, uint32_t expected,
                       conc_deadline_t deadline, bool intr) {
  int64_t pause_ns = 20000;
  while (conc__load_acquire(word) == expected) {
    if (intr && conc__intr_take())
      return CONC_EINTR;
    int64_t now = conc__now_ns();
    if (now >= deadline)
      return CONC_ETIMEDOUT;
    int64_t nap = deadline - now < pause_ns ? deadline - now : pause_ns;
    struct timespec ts = {.tv_sec = nap / 1000000000,
                          .tv_nsec = nap % 1000000000};
    nanosleep(&ts, NULL);
    if (pause_ns < 1000000)
      pause_ns *= 2;
  }
  return 0;
}

/* An interruptible wait's sleep ends at the next slice boundary at most. */
static conc_deadline_t slice_end(conc_deadline_t deadline, bool intr) {
  if (!intr)
    return deadline;
  int64_t now = conc__now_ns();
  return deadline - now > INTR_SLICE_NS ? now + INTR_SLICE_NS : deadline;
}

static int wait_local(const uint32_t *word, uint32_t expected,
                      conc_deadline_t deadline, bool intr) {
  struct bucket *b = bucket_of(word);
  int rc = 0;
  pthread_mutex_lock(&b->mu);
  b->waiters++;
  while (conc__load_acquire(word) == expected) {
    if (intr && conc__intr_take()) {
      rc = CONC_EINTR;
      break;
    }
    conc_deadline_t end = slice_end(deadline, intr);
    struct timespec ts = {.tv_sec = end / 1000000000,
                          .tv_nsec = end % 1000000000};
    if (end == CONC_DEADLINE_NEVER) {
      pthread_cond_wait(&b->cv, &b->mu);
    } else if (conc__now_ns() >= deadline ||
               (pthread_cond_timedwait(&b->cv, &b->mu, &ts) == ETIMEDOUT &&
                end == deadline)) {
      if (conc__load_acquire(word) == expected)
        rc = CONC_ETIMEDOUT;
      break;
    }
  }
  b->waiters--;
  pthread_mutex_unlock(&b->mu);
  return rc;
}

int conc__wait(const uint32_t *word, uint32_t expected,
               conc_deadline_t deadline, bool shared) {
  /* Race detectors (annotate-int.h): a wait word is only ever accessed
   * atomically; what it hands over is annotated by its owner. */
  conc__ann_benign_race(word, sizeof *word);
  return shared ? wait_shared(word, expected, deadline, false)
                : wait_local(word, expected, deadline, false);
}

int conc__wait_intr(const uint32_t *word, uint32_t expected,
                    conc_deadline_t deadline, bool shared) {
  conc__ann_benign_race(word, sizeof *word); /* as in conc__wait */
  return shared ? wait_shared(word, expected, deadline, true)
                : wait_local(word, expected, deadline, true);
}

void conc__intr_raise(uint32_t *pending) {
  __atomic_store_n(pending, 1u, __ATOMIC_RELEASE);
}

void conc__wake(const uint32_t *word, int n, bool shared) {
  (void)n;
  if (shared)
    return; /* shared waiters poll */
  struct bucket *b = bucket_of(word);
  pthread_mutex_lock(&b->mu);
  if (b->waiters > 0)
    pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

/* Buckets cannot move a waiter between words: wake it; it sees `from`
 * changed and returns, which is all a moved waiter would do later. */
void conc__requeue(const uint32_t *from, uint32_t expected, const uint32_t *to,
                   bool shared) {
  (void)expected;
  (void)to;
  conc__wake(from, CONC__WAKE_ALL, shared);
}

const char *conc__wait_backend(void) { return "condvar"; }
