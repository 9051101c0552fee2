/*
 * Fork storm (issue 10): the main thread forks again and again while 8
 * threads hammer a Lock, an RLock, a Condition, a Semaphore, an Event, an
 * Executor and a Queue. Each child uses every one of them once and exits;
 * a child that does not finish within a generous limit has deadlocked and
 * fails the program. Half the children are raw fork()s, a quarter are
 * conc_process starts, and half leave with exit() (at-exit handlers run,
 * the executor's new workers are joined), half with _exit().
 *
 * CONC_STRESS_FORKS sets the forks (default 300, 40 under a sanitizer);
 * the long mode of docs/reliability.md is 10,000.
 *
 * Locking: the hammer threads share the objects under test and a stop flag
 * read with atomics; children only touch their own copies.
 */
#include "proc_harness.h"

#include <signal.h>
#include <sys/wait.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/process.h"
#include "conc/queue.h"
#include "conc/sync.h"

#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifndef TSAN
#define TSAN 0
#endif
#if TSAN || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

enum { HAMMERS = 8, SEM_UNITS = 16 };

static int forks(void) {
  const char *e = getenv("CONC_STRESS_FORKS");
  int n = e ? atoi(e) : 0;
  return n > 0 ? n : SANITIZED ? 40 : 300;
}

static conc_lock_t lock, cond_lock;
static conc_rlock_t rlock;
static conc_condition_t cond;
static conc_semaphore_t sem;
static conc_event_t ev;
static conc_executor_t ex;
static conc_queue_t queue;
static int stop;

/* LeakSanitizer's hook, asked at exit: a child of a fork made while other
 * threads held futures ends with that memory unreachable (those threads do
 * not exist in it). The child leaked nothing of its own: no check there. */
int __lsan_is_turned_off(void);
static volatile int in_child;
int __lsan_is_turned_off(void) { return in_child; }

static int plus_one(void *arg, void **result) {
  *result = (void *)((uintptr_t)arg + 1);
  return 0;
}

/* One round of every primitive; each hammer holds at most one semaphore
 * unit, so a child always finds SEM_UNITS - HAMMERS units free. */
static void hammer_round(uintptr_t i) {
  assert_int_equal(conc_lock_acquire(&lock), 0);
  assert_int_equal(conc_lock_release(&lock), 0);
  assert_int_equal(conc_rlock_acquire(&rlock), 0);
  assert_int_equal(conc_rlock_acquire(&rlock), 0);
  assert_int_equal(conc_rlock_release(&rlock), 0);
  assert_int_equal(conc_rlock_release(&rlock), 0);
  assert_int_equal(conc_condition_acquire(&cond), 0);
  if (i % 4 == 0) {
    int rc = conc_condition_wait(&cond, 0.0005);
    assert_true(rc == 0 || rc == CONC_ETIMEDOUT);
  }
  assert_true(conc_condition_notify(&cond, 1) >= 0);
  assert_int_equal(conc_condition_release(&cond), 0);
  assert_int_equal(conc_semaphore_acquire(&sem), 0);
  assert_int_equal(conc_semaphore_release(&sem, 1), 0);
  assert_int_equal(i % 2 ? conc_event_set(&ev) : conc_event_clear(&ev), 0);
  int rc = conc_event_wait(&ev, 0);
  assert_true(rc == 0 || rc == CONC_ETIMEDOUT);
  if (i % 8 == 0) {
    conc_future_t *f;
    void *out;
    assert_int_equal(conc_executor_submit(&ex, plus_one, (void *)i, &f), 0);
    assert_int_equal(conc_future_result(f, CONC_FOREVER, &out), 0);
    assert_true((uintptr_t)out == i + 1);
    conc_future_release(f);
  }
  assert_int_equal(conc_queue_put(&queue, (void *)(i + 1), true, CONC_FOREVER),
                   0);
  void *p;
  rc = conc_queue_get(&queue, &p, false, 0);
  assert_true(rc == 0 || rc == CONC_EEMPTY);
}

static void *hammer(void *arg) {
  (void)arg;
  for (uintptr_t i = 0; !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); i++)
    hammer_round(i);
  return NULL;
}

/* In the child: every primitive once. Locks another thread held at the
 * fork stay held (Python's rule), so the child re-initialises them first,
 * as Python's _at_fork_reinit. Returns 0 or the step that failed. */
static int child_uses_everything(void) {
  if (conc_lock_at_fork_reinit(&lock) || conc_lock_acquire(&lock) ||
      conc_lock_release(&lock))
    return 1;
  if (conc_rlock_at_fork_reinit(&rlock) || conc_rlock_acquire(&rlock) ||
      conc_rlock_acquire(&rlock) || conc_rlock_release(&rlock) ||
      conc_rlock_release(&rlock))
    return 2;
  if (conc_lock_at_fork_reinit(&cond_lock) || conc_condition_acquire(&cond) ||
      conc_condition_notify_all(&cond) < 0 ||
      conc_condition_wait(&cond, 0.001) != CONC_ETIMEDOUT ||
      conc_condition_release(&cond))
    return 3;
  if (conc_semaphore_acquire_timeout(&sem, 0) ||
      conc_semaphore_release(&sem, 1))
    return 4;
  if (conc_event_set(&ev) || conc_event_wait(&ev, 0) || conc_event_clear(&ev))
    return 5;
  if (!TSAN) { /* TSan kills a multi-threaded fork's child that starts one */
    conc_future_t *f;
    void *out;
    if (conc_executor_submit(&ex, plus_one, (void *)41, &f) ||
        conc_future_result(f, CONC_FOREVER, &out) || (uintptr_t)out != 42)
      return 6;
    conc_future_release(f);
  }
  void *p;
  if (conc_queue_put(&queue, (void *)7, true, CONC_FOREVER) ||
      conc_queue_get(&queue, &p, false, 0))
    return 7;
  return 0;
}

static int child_target(void *arg, void **result) {
  (void)arg;
  in_child = 1;
  int rc = child_uses_everything();
  if (rc)
    conc_process_exit(rc);
  return 0;
}

/* A child still running after `limit` seconds has deadlocked: kill it,
 * reap it, fail. */
static void reap_within(pid_t pid, double limit, int k) {
  double end = conc_monotonic() + limit;
  int st;
  pid_t r;
  while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
    if (conc_monotonic() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      fail_msg("fork %d: the child deadlocked (still running after %.0f s)", k,
               limit);
    }
    conc_sleep(0.0002);
  }
  assert_int_equal(r, pid);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fail_msg("fork %d: child status %#x", k, st);
}

static void watchdog(int sig) {
  (void)sig;
  static const char m[] = "stress_fork: WATCHDOG: the storm hangs\n";
  if (write(2, m, sizeof m - 1) < 0)
    _exit(98);
  _exit(99);
}

static void forked_children_never_deadlock_under_load(void **state) {
  (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(CONC_SANITIZER_address)
  /* GCC 12's libasan takes no lock of its allocator around fork: a child
   * forked while another thread is inside malloc inherits the allocator
   * locked and hangs in its first malloc (seen once in CI), whatever the
   * library does. The storm runs in the normal, clang and TSan builds. */
  printf("# skipped under ASan: its allocator is not fork-safe\n");
  skip();
#endif
  signal(SIGALRM, watchdog);
  alarm(120 + (unsigned)forks() / 10);
  assert_int_equal(conc_lock_init(&lock, NULL), 0);
  assert_int_equal(conc_lock_init(&cond_lock, NULL), 0);
  assert_int_equal(conc_rlock_init(&rlock, NULL), 0);
  assert_int_equal(
      conc_condition_init(&cond, &(conc_condition_opts_t){.lock = &cond_lock}),
      0);
  assert_int_equal(conc_semaphore_init(&sem, SEM_UNITS, NULL), 0);
  assert_int_equal(conc_event_init(&ev, NULL), 0);
  assert_int_equal(
      conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 2}), 0);
  assert_int_equal(conc_queue_init(&queue, NULL), 0);
  pthread_t t[HAMMERS];
  for (int i = 0; i < HAMMERS; i++)
    t[i] = conc_test_spawn(hammer, NULL);
  int n = forks();
  for (int k = 0; k < n; k++) {
    if (k % 4 == 3) {
      conc_process_t p;
      start(&p, child_target, NULL);
      if (conc_process_join(&p, 30.0) == CONC_ETIMEDOUT) {
        conc_process_kill(&p);
        finish(&p);
        fail_msg("process %d deadlocked", k);
      }
      assert_int_equal(finish(&p), 0);
      continue;
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      in_child = 1;
      int rc = child_uses_everything();
      if (k % 2)
        exit(rc);
      _exit(rc);
    }
    reap_within(pid, 30.0, k);
  }
  __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < HAMMERS; i++)
    conc_test_join(t[i]);
  print_message("%d forks under %d hammering threads, none deadlocked\n", n,
                HAMMERS);
  conc_executor_destroy(&ex);
  conc_queue_destroy(&queue);
  assert_int_equal(conc_condition_destroy(&cond), 0);
  assert_int_equal(conc_semaphore_destroy(&sem), 0);
  assert_int_equal(conc_event_destroy(&ev), 0);
  assert_int_equal(conc_lock_destroy(&cond_lock), 0);
  assert_int_equal(conc_lock_destroy(&lock), 0);
  alarm(0);
}

CONC_TEST_MAIN(cmocka_unit_test(forked_children_never_deadlock_under_load))
