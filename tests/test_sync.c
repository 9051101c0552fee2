/*
 * Thread-level behaviour of Lock, RLock, Condition, Semaphore,
 * BoundedSemaphore, Event and Barrier (spec/threading.md G, L, R, C, S, E,
 * B lines). Every helper thread is a raw pthread, so every test also checks
 * G5 (threads libconc did not create). Timeouts are scaled down from the
 * spec's 0.5 s to keep the program fast; the bounds are the same rule.
 */
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#include "conc/sync.h"
#include "sync-int.h"

#define T_SHORT 0.1

static void settle(void) { conc_sleep(0.05); }

/* Spin (sleeping) until *p reaches v or 5 s pass. */
static void await_int(int *p, int v) {
  double end = conc_monotonic() + 5;
  while (__atomic_load_n(p, __ATOMIC_ACQUIRE) < v && conc_monotonic() < end)
    conc_sleep(0.001);
  assert_true(__atomic_load_n(p, __ATOMIC_ACQUIRE) >= v);
}

static int load(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void inc(int *p) { __atomic_fetch_add(p, 1, __ATOMIC_ACQ_REL); }

/* ================================================================ Lock */

/* L1 */
static void lock_acquire_release_and_try_on_free_lock(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  assert_int_equal(conc_lock_acquire(&l), 0);
  assert_true(conc_lock_locked(&l));
  assert_int_equal(conc_lock_release(&l), 0);
  assert_false(conc_lock_locked(&l));
  assert_int_equal(conc_lock_acquire_ex(&l, false, CONC_FOREVER), 0);
  assert_int_equal(conc_lock_release(&l), 0);
  assert_int_equal(conc_lock_init(&l, NULL), 0);
  assert_int_equal(conc_lock_acquire_timeout(&l, 0), 0);
  assert_int_equal(conc_lock_release(&l), 0);
  assert_int_equal(conc_lock_destroy(&l), 0);
}

static void *try_lock_thread(void *arg) {
  return (void *)(intptr_t)conc_lock_acquire_ex(arg, false, CONC_FOREVER);
}

/* L2 */
static void lock_try_fails_at_once_while_held_elsewhere(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  conc_lock_acquire(&l);
  double t0 = conc_monotonic();
  void *rc;
  pthread_join(conc_test_spawn(try_lock_thread, &l), &rc);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal((intptr_t)rc, CONC_ETIMEDOUT);
  conc_lock_release(&l);
}

struct chain {
  conc_lock_t lock;
  int started, done;
};

static void *chain_thread(void *arg) {
  struct chain *c = arg;
  inc(&c->started);
  assert_int_equal(conc_lock_acquire(&c->lock), 0);
  conc_lock_release(&c->lock);
  inc(&c->done);
  return NULL;
}

/* L3 */
static void lock_release_lets_five_blocked_acquirers_chain(void **state) {
  (void)state;
  struct chain c = {.lock = CONC_LOCK_INIT};
  pthread_t t[5];
  conc_lock_acquire(&c.lock);
  for (int i = 0; i < 5; i++)
    t[i] = conc_test_spawn(chain_thread, &c);
  await_int(&c.started, 5);
  settle();
  assert_int_equal(load(&c.done), 0);
  conc_lock_release(&c.lock);
  for (int i = 0; i < 5; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.done, 5);
  assert_false(conc_lock_locked(&c.lock));
}

static void *release_later_thread(void *arg) {
  conc_sleep(T_SHORT);
  assert_int_equal(conc_lock_release(arg), 0);
  return NULL;
}

/* L4, L5 */
static void lock_is_not_reentrant_and_any_thread_may_release(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  conc_lock_acquire(&l);
  assert_int_equal(conc_lock_acquire_timeout(&l, 0.02), CONC_ETIMEDOUT);
  pthread_t t = conc_test_spawn(release_later_thread, &l);
  double t0 = conc_monotonic();
  assert_int_equal(conc_lock_acquire(&l), 0);
  assert_true(conc_monotonic() - t0 >= T_SHORT * 0.9);
  conc_test_join(t);
  assert_int_equal(conc_lock_release(&l), 0);
}

/* L6 */
static void lock_release_unlocked_is_runtime_error(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  assert_int_equal(conc_lock_release(&l), CONC_ESTATE);
  conc_lock_acquire(&l);
  conc_lock_release(&l);
  assert_int_equal(conc_lock_release(&l), CONC_ESTATE);
  assert_false(conc_lock_locked(&l));
}

/* L7 (and R8 for RLock below) */
static void lock_timeout_argument_rules(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  assert_int_equal(conc_lock_acquire_ex(&l, false, 1), CONC_EINVAL);
  assert_int_equal(conc_lock_acquire_ex(&l, false, 0), CONC_EINVAL);
  assert_int_equal(conc_lock_acquire_timeout(&l, -2), CONC_EINVAL);
  assert_int_equal(conc_lock_acquire_timeout(&l, -0.5), CONC_EINVAL);
  assert_int_equal(conc_lock_acquire_timeout(&l, NAN), CONC_EINVAL);
  assert_int_equal(conc_lock_acquire_timeout(&l, CONC_TIMEOUT_MAX * 2),
                   CONC_EOVERFLOW);
  assert_false(conc_lock_locked(&l)); /* errors change nothing */
  assert_int_equal(conc_lock_acquire_timeout(&l, CONC_TIMEOUT_MAX), 0);
  conc_lock_release(&l);
  assert_int_equal(conc_lock_acquire_timeout(&l, CONC_FOREVER), 0);
  conc_lock_release(&l);
}

/* L8, L9 */
static void lock_timed_acquire_times_out_and_keeps_state(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  double t0 = conc_monotonic();
  assert_int_equal(conc_lock_acquire_timeout(&l, 5), 0);
  assert_quick(conc_monotonic() - t0);
  t0 = conc_monotonic();
  assert_int_equal(conc_lock_acquire_timeout(&l, T_SHORT), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, T_SHORT);
  assert_true(conc_lock_locked(&l));
  assert_int_equal(conc_lock_release(&l), 0);
  assert_false(conc_lock_locked(&l));
  assert_int_equal(conc_lock_acquire_ex(&l, false, CONC_FOREVER), 0);
  conc_lock_release(&l);
}

static int with_return(conc_lock_t *l) {
  CONC_WITH_LOCK(l) {
    if (conc_lock_locked(l))
      return 7;
  }
  return 0;
}

/* L10 */
static void lock_with_block_releases_on_every_exit(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  int ran = 0;
  CONC_WITH_LOCK(&l) {
    assert_true(conc_lock_locked(&l));
    ran++;
  }
  assert_int_equal(ran, 1);
  assert_false(conc_lock_locked(&l));
  for (int i = 0; i < 3; i++) {
    CONC_WITH_LOCK(&l) {
      if (i >= 0)
        break; /* leaves the with-block only */
      ran = 100;
    }
    assert_false(conc_lock_locked(&l));
    ran++;
  }
  assert_int_equal(ran, 4);
  assert_int_equal(with_return(&l), 7);
  assert_false(conc_lock_locked(&l));
  CONC_WITH_LOCK(&l) { goto out; }
out:
  assert_false(conc_lock_locked(&l));
}

static void *hold_lock_thread(void *arg) {
  conc_lock_acquire(arg);
  return NULL;
}

/* L11: the lock was taken by a thread that does not exist in the child. */
static void lock_at_fork_reinit_gives_child_a_working_lock(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  conc_test_join(conc_test_spawn(hold_lock_thread, &l));
  assert_true(conc_lock_locked(&l));
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int ok = conc_lock_at_fork_reinit(&l) == 0 && !conc_lock_locked(&l) &&
             conc_lock_acquire_ex(&l, false, CONC_FOREVER) == 0 &&
             conc_lock_release(&l) == 0;
    _exit(ok ? 0 : 1);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_true(conc_lock_locked(&l));
  assert_int_equal(conc_lock_at_fork_reinit(&l), 0);
  assert_false(conc_lock_locked(&l));
}

/* L12 */
static void lock_repr_shows_state(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  char buf[96];
  assert_true(conc_lock_repr(&l, buf, sizeof buf) > 0);
  assert_non_null(strstr(buf, "<unlocked conc.Lock object at 0x"));
  conc_lock_acquire(&l);
  conc_lock_repr(&l, buf, sizeof buf);
  assert_non_null(strstr(buf, "<locked conc.Lock object at 0x"));
  conc_lock_release(&l);
}

struct busy {
  conc_lock_t lock;
  int started;
};

static void *blocked_acquirer(void *arg) {
  struct busy *b = arg;
  inc(&b->started);
  assert_int_equal(conc_lock_acquire(&b->lock), 0);
  conc_lock_release(&b->lock);
  return NULL;
}

/* Bad input: NULL, and destroy with a waiter, change nothing. */
static void lock_bad_input_and_busy_destroy(void **state) {
  (void)state;
  assert_int_equal(conc_lock_init(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_lock_acquire(NULL), CONC_EINVAL);
  assert_int_equal(conc_lock_release(NULL), CONC_EINVAL);
  assert_int_equal(conc_lock_acquire_timeout(NULL, 1), CONC_EINVAL);
  assert_int_equal(conc_lock_destroy(NULL), CONC_EINVAL);
  assert_int_equal(conc_lock_repr(NULL, NULL, 0), CONC_EINVAL);
  assert_false(conc_lock_locked(NULL));
  struct busy b = {.lock = CONC_LOCK_INIT};
  conc_lock_acquire(&b.lock);
  pthread_t t = conc_test_spawn(blocked_acquirer, &b);
  await_int(&b.started, 1);
  double end = conc_monotonic() + 5;
  while (conc__load_acquire(&b.lock.priv.nwait) == 0 && conc_monotonic() < end)
    conc_sleep(0.001);
  assert_int_equal(conc_lock_destroy(&b.lock), CONC_EBUSY);
  assert_true(conc_lock_locked(&b.lock));
  conc_lock_release(&b.lock);
  conc_test_join(t);
  assert_int_equal(conc_lock_destroy(&b.lock), 0);
  /* A held lock without waiters may be dropped, as in Python. */
  conc_lock_acquire(&b.lock);
  assert_int_equal(conc_lock_destroy(&b.lock), 0);
}

struct counter {
  conc_lock_t lock;
  conc_rlock_t rlock;
  long value;
  int iters;
};

static void *count_lock_thread(void *arg) {
  struct counter *c = arg;
  for (int i = 0; i < c->iters; i++) {
    conc_lock_acquire(&c->lock);
    c->value++;
    conc_lock_release(&c->lock);
  }
  return NULL;
}

static void *count_rlock_thread(void *arg) {
  struct counter *c = arg;
  for (int i = 0; i < c->iters; i++) {
    conc_rlock_acquire(&c->rlock);
    conc_rlock_acquire(&c->rlock);
    c->value++;
    conc_rlock_release(&c->rlock);
    conc_rlock_release(&c->rlock);
  }
  return NULL;
}

/* Mutual exclusion under contention (the 100-threads lesson, smaller). */
static void lock_and_rlock_keep_contended_counter_exact(void **state) {
  (void)state;
  struct counter c = {
      .lock = CONC_LOCK_INIT, .rlock = CONC_RLOCK_INIT, .iters = 20000};
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    t[i] = conc_test_spawn(count_lock_thread, &c);
  for (int i = 0; i < 4; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.value, 80000);
  c.value = 0;
  for (int i = 0; i < 4; i++)
    t[i] = conc_test_spawn(count_rlock_thread, &c);
  for (int i = 0; i < 4; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.value, 80000);
  assert_false(conc_rlock_locked(&c.rlock));
}

/* =============================================================== RLock */

/* R1 */
static void rlock_reacquire_needs_as_many_releases(void **state) {
  (void)state;
  conc_rlock_t r;
  assert_int_equal(conc_rlock_init(&r, NULL), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_rlock_acquire(&r), 0);
  for (int i = 0; i < 3; i++) {
    assert_true(conc_rlock_locked(&r));
    assert_int_equal(conc_rlock_release(&r), 0);
  }
  assert_false(conc_rlock_locked(&r));
  assert_int_equal(conc_rlock_destroy(&r), 0);
}

/* R2 */
static void rlock_release_unacquired_is_runtime_error(void **state) {
  (void)state;
  conc_rlock_t r = CONC_RLOCK_INIT;
  assert_int_equal(conc_rlock_release(&r), CONC_ESTATE);
  conc_rlock_acquire(&r);
  conc_rlock_acquire(&r);
  conc_rlock_release(&r);
  conc_rlock_release(&r);
  assert_int_equal(conc_rlock_release(&r), CONC_ESTATE);
}

struct rl {
  conc_rlock_t r;
  int phase;
  int seen_count, seen_owned, seen_locked, release_rc;
  char repr[128];
};

static void *rlock_other_thread(void *arg) {
  struct rl *s = arg;
  s->release_rc = conc_rlock_release(&s->r);
  s->seen_count = (int)conc_rlock_count(&s->r);
  s->seen_owned = conc_rlock_is_owned(&s->r);
  s->seen_locked = conc_rlock_locked(&s->r);
  conc_rlock_repr(&s->r, s->repr, sizeof s->repr);
  return NULL;
}

/* R3, R5, R6, R7 */
static void rlock_is_owned_by_one_thread_only(void **state) {
  (void)state;
  struct rl s = {.r = CONC_RLOCK_INIT};
  conc_rlock_acquire(&s.r);
  conc_rlock_acquire(&s.r);
  assert_true(conc_rlock_is_owned(&s.r));
  conc_test_join(conc_test_spawn(rlock_other_thread, &s));
  assert_int_equal(s.release_rc, CONC_EPERM);
  assert_int_equal(s.seen_count, 0);
  assert_false(s.seen_owned);
  assert_true(s.seen_locked);
  assert_non_null(strstr(s.repr, "<locked conc.RLock object owner="));
  assert_non_null(strstr(s.repr, "count=2"));
  assert_int_equal(conc_rlock_count(&s.r), 2);
  conc_rlock_release(&s.r);
  conc_rlock_release(&s.r);
  assert_false(conc_rlock_is_owned(&s.r));
  conc_rlock_repr(&s.r, s.repr, sizeof s.repr);
  assert_non_null(
      strstr(s.repr, "<unlocked conc.RLock object owner=0 count=0"));
}

static void *rlock_blocked_counter(void *arg) {
  struct rl *s = arg;
  s->seen_count = (int)conc_rlock_count(&s->r);
  inc(&s->phase);
  conc_rlock_acquire(&s->r);
  s->seen_owned = (int)conc_rlock_count(&s->r);
  conc_rlock_release(&s->r);
  return NULL;
}

/* R4 */
static void rlock_recursion_count_and_other_thread_sees_zero(void **state) {
  (void)state;
  struct rl s = {.r = CONC_RLOCK_INIT};
  assert_int_equal(conc_rlock_count(&s.r), 0);
  conc_rlock_acquire(&s.r);
  assert_int_equal(conc_rlock_count(&s.r), 1);
  conc_rlock_acquire(&s.r);
  conc_rlock_acquire(&s.r);
  assert_int_equal(conc_rlock_count(&s.r), 3);
  pthread_t t = conc_test_spawn(rlock_blocked_counter, &s);
  await_int(&s.phase, 1);
  settle();
  conc_rlock_release(&s.r);
  assert_int_equal(conc_rlock_count(&s.r), 2);
  conc_rlock_release(&s.r);
  conc_rlock_release(&s.r);
  assert_int_equal(conc_rlock_count(&s.r), 0);
  conc_test_join(t);
  assert_int_equal(s.seen_count, 0);
  assert_int_equal(s.seen_owned, 1);
}

/* R8 */
static void rlock_timeout_rules_and_release_save_unowned(void **state) {
  (void)state;
  conc_rlock_t r = CONC_RLOCK_INIT;
  assert_int_equal(conc_rlock_acquire_ex(&r, false, 1), CONC_EINVAL);
  assert_int_equal(conc_rlock_acquire_timeout(&r, -2), CONC_EINVAL);
  assert_int_equal(conc_rlock_acquire_timeout(&r, CONC_TIMEOUT_MAX * 2),
                   CONC_EOVERFLOW);
  assert_false(conc_rlock_locked(&r));
  uint32_t saved;
  assert_int_equal(conc__rlock_release_save(&r, &saved), CONC_ESTATE);
  assert_int_equal(conc_rlock_acquire_timeout(&r, CONC_TIMEOUT_MAX), 0);
  conc_rlock_release(&r);
  assert_int_equal(conc_rlock_init(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_rlock_acquire(NULL), CONC_EINVAL);
  assert_int_equal(conc_rlock_release(NULL), CONC_EINVAL);
}

static void *rlock_timed_try(void *arg) {
  double t0 = conc_monotonic();
  int rc = conc_rlock_acquire_timeout(arg, T_SHORT);
  assert_elapsed(conc_monotonic() - t0, T_SHORT);
  return (void *)(intptr_t)rc;
}

/* R8 with L8: a timed acquire of an RLock held elsewhere. */
static void rlock_timed_acquire_times_out_when_held_elsewhere(void **state) {
  (void)state;
  conc_rlock_t r = CONC_RLOCK_INIT;
  conc_rlock_acquire(&r);
  void *rc;
  pthread_join(conc_test_spawn(rlock_timed_try, &r), &rc);
  assert_int_equal((intptr_t)rc, CONC_ETIMEDOUT);
  assert_int_equal(conc_rlock_count(&r), 1);
  conc_rlock_release(&r);
  CONC_WITH_RLOCK(&r) {
    CONC_WITH_RLOCK(&r) { assert_int_equal(conc_rlock_count(&r), 2); }
    assert_int_equal(conc_rlock_count(&r), 1);
  }
  assert_false(conc_rlock_locked(&r));
}

/* =========================================================== Condition */

/* C1 */
static void
condition_default_lock_is_reentrant_explicit_lock_passes(void **state) {
  (void)state;
  conc_condition_t c;
  assert_int_equal(conc_condition_init(&c, NULL), 0);
  assert_int_equal(conc_condition_acquire(&c), 0);
  assert_int_equal(conc_condition_acquire(&c), 0);
  assert_int_equal(conc_condition_release(&c), 0);
  assert_int_equal(conc_condition_release(&c), 0);
  assert_int_equal(conc_condition_destroy(&c), 0);
  conc_lock_t l = CONC_LOCK_INIT;
  assert_int_equal(
      conc_condition_init(&c, &(conc_condition_opts_t){.lock = &l}), 0);
  assert_int_equal(conc_condition_acquire(&c), 0);
  assert_true(conc_lock_locked(&l));
  assert_int_equal(conc_condition_acquire_ex(&c, false, CONC_FOREVER),
                   CONC_ETIMEDOUT);
  assert_int_equal(conc_condition_release(&c), 0);
  assert_false(conc_lock_locked(&l));
  conc_rlock_t r = CONC_RLOCK_INIT;
  assert_int_equal(conc_condition_init(
                       &c, &(conc_condition_opts_t){.lock = &l, .rlock = &r}),
                   CONC_EINVAL);
  assert_int_equal(
      conc_condition_init(
          &c, &(conc_condition_opts_t){.lock = &l, .pshared = true}),
      CONC_EINVAL);
  assert_int_equal(conc_condition_init(NULL, NULL), CONC_EINVAL);
}

/* C2 */
static void condition_wait_and_notify_need_the_lock(void **state) {
  (void)state;
  conc_condition_t c = CONC_CONDITION_INIT;
  assert_int_equal(conc_condition_wait(&c, 0), CONC_ESTATE);
  assert_int_equal(conc_condition_wait(&c, CONC_FOREVER), CONC_ESTATE);
  assert_int_equal(conc_condition_notify(&c, 1), CONC_ESTATE);
  assert_int_equal(conc_condition_notify_all(&c), CONC_ESTATE);
  assert_int_equal(conc_condition_wait_for(&c, NULL, NULL, 0), CONC_EINVAL);
  conc_condition_acquire(&c);
  assert_int_equal(conc_condition_wait(&c, NAN), CONC_EINVAL);
  assert_int_equal(conc_condition_notify(&c, 1), 0); /* no waiters: no-op */
  conc_condition_release(&c);
}

struct notify_ctx {
  conc_condition_t c;
  conc_lock_t lock;
  int ready, woken, timed_out, phase, bad_phase;
  double timeout;
};

static void *notify_waiter(void *arg) {
  struct notify_ctx *n = arg;
  conc_condition_acquire(&n->c);
  n->ready++;
  int rc = conc_condition_wait(&n->c, n->timeout);
  /* C4: the lock is ours again, so the notifier's phase write is seen. */
  if (rc == 0) {
    n->woken++;
    if (n->phase == 0)
      n->bad_phase++;
  } else {
    assert_int_equal(rc, CONC_ETIMEDOUT);
    n->timed_out++;
  }
  conc_condition_release(&n->c);
  return NULL;
}

static int locked_read(struct notify_ctx *n, int *p) {
  conc_condition_acquire(&n->c);
  int v = *p;
  conc_condition_release(&n->c);
  return v;
}

static void await_locked(struct notify_ctx *n, int *p, int v) {
  double end = conc_monotonic() + 5;
  while (locked_read(n, p) < v && conc_monotonic() < end)
    conc_sleep(0.001);
  assert_int_equal(locked_read(n, p), v);
}

static void notify_round(struct notify_ctx *n) {
  pthread_t t[5];
  n->ready = n->woken = n->phase = 0;
  for (int i = 0; i < 5; i++)
    t[i] = conc_test_spawn(notify_waiter, n);
  await_locked(n, &n->ready, 5); /* all five are queued on the condition */
  conc_condition_acquire(&n->c);
  assert_int_equal(conc_condition_notify(&n->c, 3), 0);
  conc_sleep(0.02);
  n->phase = 1;
  conc_condition_release(&n->c);
  await_locked(n, &n->woken, 3);
  settle();
  assert_int_equal(locked_read(n, &n->woken), 3); /* exactly min(n, 5) */
  conc_condition_acquire(&n->c);
  assert_int_equal(conc_condition_notify(&n->c, 5), 0);
  conc_condition_release(&n->c);
  await_locked(n, &n->woken, 5);
  for (int i = 0; i < 5; i++)
    conc_test_join(t[i]);
  /* notify_all wakes everyone */
  n->ready = 0;
  for (int i = 0; i < 5; i++)
    t[i] = conc_test_spawn(notify_waiter, n);
  await_locked(n, &n->ready, 5);
  conc_condition_acquire(&n->c);
  conc_condition_notify_all(&n->c);
  conc_condition_release(&n->c);
  for (int i = 0; i < 5; i++)
    conc_test_join(t[i]);
  assert_int_equal(n->woken, 10);
  assert_int_equal(n->bad_phase, 0);
  assert_int_equal(n->timed_out, 0);
}

/* C3, C4, G6: exact wake counts, twice, over an RLock and over a Lock. */
static void condition_notify_n_wakes_exactly_n_waiters(void **state) {
  (void)state;
  struct notify_ctx n = {.timeout = CONC_FOREVER};
  conc_condition_init(&n.c, NULL);
  notify_round(&n);
  notify_round(&n);
  assert_int_equal(conc_condition_destroy(&n.c), 0);
  n.lock = (conc_lock_t)CONC_LOCK_INIT;
  conc_condition_init(&n.c, &(conc_condition_opts_t){.lock = &n.lock});
  notify_round(&n);
  assert_int_equal(conc_condition_destroy(&n.c), 0);
}

/* C3 with a private condition over a pshared Lock and over a given RLock:
 * notified waiters go through the lock's own wait (no waiter is moved onto a
 * process-shared word). */
static void
condition_over_pshared_lock_or_given_rlock_wakes_exactly(void **state) {
  (void)state;
  struct notify_ctx n = {.timeout = CONC_FOREVER};
  conc_lock_init(&n.lock, &(conc_lock_opts_t){.pshared = true});
  assert_int_equal(
      conc_condition_init(&n.c, &(conc_condition_opts_t){.lock = &n.lock}), 0);
  notify_round(&n);
  assert_int_equal(conc_condition_destroy(&n.c), 0);
  conc_rlock_t r = CONC_RLOCK_INIT;
  n.woken = 0;
  conc_condition_init(&n.c, &(conc_condition_opts_t){.rlock = &r});
  notify_round(&n);
  assert_int_equal(conc_condition_destroy(&n.c), 0);
}

static void *foreign_notifier(void *arg) {
  struct notify_ctx *n = arg;
  inc(&n->ready); /* the main thread releases the lock right now */
  int rc = conc_condition_notify(&n->c, 1);
  if (rc == CONC_ESTATE) { /* the holder released first: notify properly */
    CONC_WITH_CONDITION(&n->c) { rc = conc_condition_notify(&n->c, 1); }
  }
  assert_int_equal(rc, 0);
  return NULL;
}

/* C2 for a Lock: Python's _is_owned only asks whether a Lock is held, so a
 * thread that does not hold it may notify while the holder releases it at
 * the same moment; the waiter must wake all the same. */
static void condition_notify_racing_the_lock_release_still_wakes(void **state) {
  (void)state;
  for (int round = 0; round < 30; round++) {
    struct notify_ctx n = {.lock = CONC_LOCK_INIT, .timeout = CONC_FOREVER};
    conc_condition_init(&n.c, &(conc_condition_opts_t){.lock = &n.lock});
    pthread_t w = conc_test_spawn(notify_waiter, &n);
    await_locked(&n, &n.ready, 1);
    conc_condition_acquire(&n.c);
    n.phase = 1;
    pthread_t f = conc_test_spawn(foreign_notifier, &n);
    while (load(&n.ready) < 2)
      ;
    for (volatile int spin = 0; spin < round * 40; spin++)
      ;
    conc_condition_release(&n.c);
    conc_test_join(f);
    await_locked(&n, &n.woken, 1);
    conc_test_join(w);
    assert_int_equal(n.bad_phase, 0);
    assert_int_equal(conc_condition_destroy(&n.c), 0);
  }
}

#define PP_TURNS 20000

struct pingpong_ctx {
  conc_condition_t c;
  long turn;
  int bad;
};

struct player {
  struct pingpong_ctx *p;
  long idx;
};

static void *player_main(void *arg) {
  struct player *pl = arg;
  struct pingpong_ctx *p = pl->p;
  for (int i = 0; i < PP_TURNS; i++) {
    conc_condition_acquire(&p->c);
    while ((p->turn & 1) != pl->idx)
      if (conc_condition_wait(&p->c, CONC_FOREVER) != 0)
        p->bad++;
    p->turn++;
    conc_condition_notify(&p->c, 1);
    conc_condition_release(&p->c);
  }
  return NULL;
}

/* C3, C4 in a tight ping-pong, where the waiter is mostly notified while
 * it spins (no system call) and sometimes while it sleeps: every turn is
 * handed over, none is lost (a lost one hangs both players). */
static void condition_ping_pong_hands_every_turn_over(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  for (int variant = 0; variant < 2; variant++) {
    struct pingpong_ctx p = {.turn = 0};
    conc_condition_init(&p.c,
                        variant ? &(conc_condition_opts_t){.lock = &l} : NULL);
    struct player pl[2] = {{&p, 0}, {&p, 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
      t[i] = conc_test_spawn(player_main, &pl[i]);
    for (int i = 0; i < 2; i++)
      conc_test_join(t[i]);
    assert_int_equal(p.turn, 2 * PP_TURNS);
    assert_int_equal(p.bad, 0);
    assert_int_equal(conc_condition_destroy(&p.c), 0);
  }
}

/* C5 */
static void condition_wait_timeout_returns_false_after_timeout(void **state) {
  (void)state;
  struct notify_ctx n = {.timeout = T_SHORT};
  conc_condition_init(&n.c, NULL);
  pthread_t t[5];
  double t0 = conc_monotonic();
  for (int i = 0; i < 5; i++)
    t[i] = conc_test_spawn(notify_waiter, &n);
  for (int i = 0; i < 5; i++)
    conc_test_join(t[i]);
  assert_true(conc_monotonic() - t0 >= T_SHORT);
  assert_int_equal(n.timed_out, 5);
  assert_int_equal(n.woken, 0);
  conc_condition_acquire(&n.c);
  t0 = conc_monotonic();
  assert_int_equal(conc_condition_wait(&n.c, T_SHORT), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, T_SHORT);
  conc_condition_release(&n.c);
}

/* C6 */
static void condition_wait_nonpositive_timeout_never_blocks(void **state) {
  (void)state;
  conc_condition_t c = CONC_CONDITION_INIT;
  conc_condition_acquire(&c);
  double t0 = conc_monotonic();
  assert_int_equal(conc_condition_wait(&c, 0), CONC_ETIMEDOUT);
  assert_int_equal(conc_condition_wait(&c, -0.5), CONC_ETIMEDOUT);
  assert_int_equal(conc_condition_wait(&c, -1e9), CONC_ETIMEDOUT);
  assert_quick(conc_monotonic() - t0);
  assert_true(conc_rlock_is_owned(&c.priv.own));
  conc_condition_release(&c);
}

static void *rlock_grab_and_release(void *arg) {
  int rc = conc_rlock_acquire_timeout(arg, 5);
  if (rc == 0)
    conc_rlock_release(arg);
  return (void *)(intptr_t)rc;
}

/* C7 */
static void
condition_wait_releases_every_rlock_level_and_restores(void **state) {
  (void)state;
  conc_rlock_t r = CONC_RLOCK_INIT;
  conc_condition_t c;
  conc_condition_init(&c, &(conc_condition_opts_t){.rlock = &r});
  for (int i = 0; i < 3; i++)
    conc_condition_acquire(&c);
  pthread_t t = conc_test_spawn(rlock_grab_and_release, &r);
  void *rc;
  assert_int_equal(conc_condition_wait(&c, 2 * T_SHORT), CONC_ETIMEDOUT);
  pthread_join(t, &rc);
  /* the other thread got the lock while we waited, so every level went */
  assert_int_equal((intptr_t)rc, 0);
  assert_int_equal(conc_rlock_count(&r), 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_condition_release(&c), 0);
  assert_int_equal(conc_condition_release(&c), CONC_ESTATE);
}

struct pred_ctx {
  conc_condition_t c;
  int value, calls, unlocked_calls;
};

/* Python's `lambda: p.value >= 3 and p.value`: 0 until ready, then the
 * value. */
static int value_ready(void *arg) {
  struct pred_ctx *p = arg;
  p->calls++;
  if (!conc_rlock_is_owned(&p->c.priv.own))
    p->unlocked_calls++;
  return p->value >= 3 ? p->value : 0;
}

static void *bump_value_thread(void *arg) {
  struct pred_ctx *p = arg;
  for (int i = 0; i < 3; i++) {
    conc_sleep(0.02);
    conc_condition_acquire(&p->c);
    p->value++;
    conc_condition_notify_all(&p->c);
    conc_condition_release(&p->c);
  }
  return NULL;
}

/* C8 */
static void condition_wait_for_checks_predicate_first(void **state) {
  (void)state;
  struct pred_ctx p = {.c = CONC_CONDITION_INIT, .value = 3};
  conc_condition_acquire(&p.c);
  double t0 = conc_monotonic();
  assert_int_equal(conc_condition_wait_for(&p.c, value_ready, &p, 0), 3);
  assert_int_equal(p.calls, 1);
  p.value = 0;
  p.calls = 0;
  pthread_t t = conc_test_spawn(bump_value_thread, &p);
  assert_int_equal(conc_condition_wait_for(&p.c, value_ready, &p, CONC_FOREVER),
                   3);
  assert_int_equal(p.value, 3);
  assert_true(p.calls >= 2 && p.calls <= 4);
  assert_int_equal(p.unlocked_calls, 0);
  conc_condition_release(&p.c);
  conc_test_join(t);
  assert_true(conc_monotonic() - t0 < 5);
}

static int value_or_code(void *arg) { return *(int *)arg; }

/* C8: wait_for returns the predicate's value, as Python returns the
 * predicate's result; a negative value is the predicate's error and ends
 * the wait at once, even without a timeout. */
static void condition_wait_for_returns_the_predicates_value(void **state) {
  (void)state;
  conc_condition_t c = CONC_CONDITION_INIT;
  conc_condition_acquire(&c);
  int v = 42;
  assert_int_equal(conc_condition_wait_for(&c, value_or_code, &v, 0), 42);
  v = CONC_EIO;
  double t0 = conc_monotonic();
  assert_int_equal(conc_condition_wait_for(&c, value_or_code, &v, CONC_FOREVER),
                   CONC_EIO);
  assert_quick(conc_monotonic() - t0);
  v = 0;
  assert_int_equal(conc_condition_wait_for(&c, value_or_code, &v, 0), 0);
  assert_int_equal(conc_condition_release(&c), 0);
}

/* C9, G1: three notifies inside the window never extend the deadline. */
static void condition_wait_for_has_one_deadline(void **state) {
  (void)state;
  struct pred_ctx p = {.c = CONC_CONDITION_INIT, .value = -100};
  pthread_t t = conc_test_spawn(bump_value_thread, &p);
  conc_condition_acquire(&p.c);
  double t0 = conc_monotonic();
  assert_int_equal(conc_condition_wait_for(&p.c, value_ready, &p, 0.15), 0);
  assert_elapsed(conc_monotonic() - t0, 0.15);
  conc_condition_release(&p.c);
  conc_test_join(t);
  assert_int_equal(p.value, -97);
}

struct absorb_ctx {
  conc_condition_t c;
  int ready, rc_short, rc_long;
};

static void *short_waiter(void *arg) {
  struct absorb_ctx *a = arg;
  conc_condition_acquire(&a->c);
  a->ready++;
  a->rc_short = conc_condition_wait(&a->c, 0.03);
  conc_condition_release(&a->c);
  return NULL;
}

static void *long_waiter(void *arg) {
  struct absorb_ctx *a = arg;
  conc_condition_acquire(&a->c);
  a->ready++;
  a->rc_long = conc_condition_wait(&a->c, 5);
  conc_condition_release(&a->c);
  return NULL;
}

/* G6 / spec S9 for threads: the first waiter times out while the notifier
 * holds the lock (so it cannot leave yet); notify(1) must reach the second
 * waiter. CPython's Condition fails this one. */
static void condition_timed_out_waiter_never_absorbs_a_notify(void **state) {
  (void)state;
  struct absorb_ctx a = {.c = CONC_CONDITION_INIT};
  pthread_t t1 = conc_test_spawn(short_waiter, &a);
  double end = conc_monotonic() + 5;
  while (conc_monotonic() < end) {
    conc_condition_acquire(&a.c);
    int r = a.ready;
    conc_condition_release(&a.c);
    if (r == 1)
      break;
  }
  pthread_t t2 = conc_test_spawn(long_waiter, &a);
  conc_condition_acquire(&a.c);
  while (a.ready < 2) {
    conc_condition_release(&a.c);
    conc_sleep(0.001);
    conc_condition_acquire(&a.c);
  }
  conc_sleep(0.1); /* the short waiter's deadline passes meanwhile */
  double t0 = conc_monotonic();
  assert_int_equal(conc_condition_notify(&a.c, 1), 0);
  conc_condition_release(&a.c);
  conc_test_join(t1);
  conc_test_join(t2);
  assert_int_equal(a.rc_short, CONC_ETIMEDOUT);
  assert_int_equal(a.rc_long, 0);
  assert_true(conc_monotonic() - t0 < 2);
}

static void *lingering_waiter(void *arg) {
  struct notify_ctx *n = arg;
  conc_condition_acquire(&n->c);
  n->ready++;
  conc_condition_wait(&n->c, CONC_FOREVER);
  conc_condition_release(&n->c);
  return NULL;
}

/* Destroying a condition that has waiters is refused; repr counts them. */
static void condition_destroy_with_waiters_is_busy(void **state) {
  (void)state;
  struct notify_ctx n = {.c = CONC_CONDITION_INIT};
  pthread_t t = conc_test_spawn(lingering_waiter, &n);
  await_locked(&n, &n.ready, 1);
  char buf[200];
  conc_condition_repr(&n.c, buf, sizeof buf);
  assert_non_null(strstr(buf, "<Condition(<unlocked conc.RLock"));
  assert_non_null(strstr(buf, ", 1)>"));
  assert_int_equal(conc_condition_destroy(&n.c), CONC_EBUSY);
  CONC_WITH_CONDITION(&n.c) { conc_condition_notify(&n.c, 1); }
  conc_test_join(t);
  assert_int_equal(conc_condition_destroy(&n.c), 0);
}

/* =========================================================== Semaphore */

/* S1 */
static void semaphore_negative_value_rejected_default_one(void **state) {
  (void)state;
  conc_semaphore_t s;
  assert_int_equal(conc_semaphore_init(&s, -1, NULL), CONC_EINVAL);
  assert_int_equal(conc_bounded_semaphore_init(&s, -1, NULL), CONC_EINVAL);
  assert_int_equal(conc_semaphore_init(NULL, 1, NULL), CONC_EINVAL);
  assert_int_equal(conc_semaphore_init(&s, 1, NULL), 0);
  assert_int_equal(conc_semaphore_acquire(&s), 0);
  assert_int_equal(conc_semaphore_acquire_timeout(&s, 0.02), CONC_ETIMEDOUT);
  conc_semaphore_release(&s, 1);
  assert_int_equal(conc_semaphore_destroy(&s), 0);
}

/* S2 */
static void semaphore_try_acquire_admits_value(void **state) {
  (void)state;
  conc_semaphore_t s = CONC_SEMAPHORE_INIT(2);
  assert_int_equal(conc_semaphore_acquire_ex(&s, false, CONC_FOREVER), 0);
  assert_int_equal(conc_semaphore_acquire_ex(&s, false, CONC_FOREVER), 0);
  assert_int_equal(conc_semaphore_acquire_ex(&s, false, CONC_FOREVER),
                   CONC_ETIMEDOUT);
  conc_semaphore_release(&s, 2);
  assert_int_equal(conc_semaphore_get_value(&s), 2);
}

struct sem_ctx {
  conc_semaphore_t s;
  int passed, ok, fail, inside, max_inside;
};

static void *sem_acquirer(void *arg) {
  struct sem_ctx *c = arg;
  assert_int_equal(conc_semaphore_acquire(&c->s), 0);
  inc(&c->passed);
  return NULL;
}

/* S3, S4 */
static void semaphore_release_n_admits_exactly_n(void **state) {
  (void)state;
  struct sem_ctx c = {.s = CONC_SEMAPHORE_INIT(0)};
  pthread_t t[6];
  for (int i = 0; i < 6; i++)
    t[i] = conc_test_spawn(sem_acquirer, &c);
  double end = conc_monotonic() + 5;
  while (conc__load_acquire(&c.s.priv.nwait) < 6 && conc_monotonic() < end)
    conc_sleep(0.001);
  assert_int_equal(conc_semaphore_release(&c.s, 0), CONC_EINVAL);
  assert_int_equal(conc_semaphore_release(&c.s, -3), CONC_EINVAL);
  assert_int_equal(conc_semaphore_release(&c.s, 1), 0);
  await_int(&c.passed, 1);
  settle();
  assert_int_equal(load(&c.passed), 1);
  assert_int_equal(conc_semaphore_release(&c.s, 3), 0);
  await_int(&c.passed, 4);
  settle();
  assert_int_equal(load(&c.passed), 4);
  assert_int_equal(conc_semaphore_get_value(&c.s), 0);
  assert_int_equal(conc_semaphore_destroy(&c.s), CONC_EBUSY);
  assert_int_equal(conc_semaphore_release(&c.s, 5), 0);
  for (int i = 0; i < 6; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.passed, 6);
  assert_int_equal(conc_semaphore_get_value(&c.s), 3);
}

/* S5 */
static void semaphore_timeout_rules(void **state) {
  (void)state;
  conc_semaphore_t s = CONC_SEMAPHORE_INIT(0);
  assert_int_equal(conc_semaphore_acquire_ex(&s, false, 1.0), CONC_EINVAL);
  assert_int_equal(conc_semaphore_acquire_timeout(&s, NAN), CONC_EINVAL);
  double t0 = conc_monotonic();
  assert_int_equal(conc_semaphore_acquire_timeout(&s, -3), CONC_ETIMEDOUT);
  assert_int_equal(conc_semaphore_acquire_timeout(&s, 0), CONC_ETIMEDOUT);
  assert_quick(conc_monotonic() - t0);
  t0 = conc_monotonic();
  assert_int_equal(conc_semaphore_acquire_timeout(&s, T_SHORT), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, T_SHORT);
  assert_int_equal(conc_semaphore_get_value(&s), 0);
}

static void *sem_try_twice(void *arg) {
  struct sem_ctx *c = arg;
  for (int i = 0; i < 2; i++) {
    if (conc_semaphore_acquire_ex(&c->s, false, CONC_FOREVER) == 0)
      inc(&c->ok);
    else
      inc(&c->fail);
  }
  return NULL;
}

/* S6 */
static void semaphore_try_acquire_contended(void **state) {
  (void)state;
  struct sem_ctx c = {.s = CONC_SEMAPHORE_INIT(4)};
  conc_semaphore_acquire(&c.s);
  pthread_t t[5];
  for (int i = 0; i < 5; i++)
    t[i] = conc_test_spawn(sem_try_twice, &c);
  for (int i = 0; i < 5; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.ok, 3);
  assert_int_equal(c.fail, 7);
}

/* S7 */
static void semaphore_with_block_and_release_past_initial(void **state) {
  (void)state;
  conc_semaphore_t s = CONC_SEMAPHORE_INIT(1);
  for (int i = 0; i < 2; i++) {
    CONC_WITH_SEMAPHORE(&s) {
      assert_int_equal(conc_semaphore_get_value(&s), 0);
      if (i == 1)
        break;
    }
  }
  assert_int_equal(conc_semaphore_get_value(&s), 1);
  assert_int_equal(conc_semaphore_release(&s, 1), 0);
  assert_int_equal(conc_semaphore_get_value(&s), 2);
  assert_int_equal(conc_semaphore_release(&s, 0x7fffffff), CONC_EOVERFLOW);
  assert_int_equal(conc_semaphore_get_value(&s), 2);
}

static void *bounded_over_release(void *arg) {
  return (void *)(intptr_t)conc_semaphore_release(arg, 1);
}

/* S8 */
static void bounded_semaphore_over_release_is_value_error(void **state) {
  (void)state;
  conc_bounded_semaphore_t s;
  assert_int_equal(conc_bounded_semaphore_init(&s, 2, NULL), 0);
  assert_int_equal(conc_semaphore_release(&s, 1), CONC_EINVAL);
  assert_int_equal(conc_semaphore_get_value(&s), 2);
  conc_semaphore_acquire(&s);
  void *rc;
  pthread_join(conc_test_spawn(bounded_over_release, &s), &rc);
  assert_int_equal((intptr_t)rc, 0);
  pthread_join(conc_test_spawn(bounded_over_release, &s), &rc);
  assert_int_equal((intptr_t)rc, CONC_EINVAL);
  assert_int_equal(conc_semaphore_get_value(&s), 2);
  conc_semaphore_acquire(&s);
  assert_int_equal(conc_semaphore_release(&s, 2), CONC_EINVAL);
  assert_int_equal(conc_semaphore_get_value(&s), 1);
}

static void *bounded_worker(void *arg) {
  struct sem_ctx *c = arg;
  for (int i = 0; i < 20; i++) {
    CONC_WITH_SEMAPHORE(&c->s) {
      int now = __atomic_add_fetch(&c->inside, 1, __ATOMIC_ACQ_REL);
      int m = load(&c->max_inside);
      while (now > m &&
             !__atomic_compare_exchange_n(&c->max_inside, &m, now, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        ;
      conc_sleep(0.0005);
      __atomic_sub_fetch(&c->inside, 1, __ATOMIC_ACQ_REL);
    }
  }
  return NULL;
}

/* S9 */
static void bounded_semaphore_caps_concurrency_and_repr(void **state) {
  (void)state;
  struct sem_ctx c = {.s = CONC_BOUNDED_SEMAPHORE_INIT(3)};
  pthread_t t[10];
  for (int i = 0; i < 10; i++)
    t[i] = conc_test_spawn(bounded_worker, &c);
  for (int i = 0; i < 10; i++)
    conc_test_join(t[i]);
  assert_true(c.max_inside >= 1 && c.max_inside <= 3);
  char buf[96];
  conc_semaphore_repr(&c.s, buf, sizeof buf);
  assert_non_null(strstr(buf, "<conc.BoundedSemaphore at 0x"));
  assert_non_null(strstr(buf, ": value=3/3>"));
  conc_semaphore_t s = CONC_SEMAPHORE_INIT(5);
  conc_semaphore_repr(&s, buf, sizeof buf);
  assert_non_null(strstr(buf, ": value=5>"));
}

/* =============================================================== Event */

/* E1 */
static void event_starts_unset_set_and_clear_idempotent(void **state) {
  (void)state;
  conc_event_t e;
  assert_int_equal(conc_event_init(&e, NULL), 0);
  assert_false(conc_event_is_set(&e));
  conc_event_set(&e);
  conc_event_set(&e);
  assert_true(conc_event_is_set(&e));
  conc_event_clear(&e);
  conc_event_clear(&e);
  assert_false(conc_event_is_set(&e));
  char buf[80];
  conc_event_repr(&e, buf, sizeof buf);
  assert_non_null(strstr(buf, ": unset>"));
  assert_int_equal(conc_event_destroy(&e), 0);
  assert_int_equal(conc_event_set(NULL), CONC_EINVAL);
  assert_int_equal(conc_event_wait(NULL, 0), CONC_EINVAL);
}

struct ev_ctx {
  conc_event_t e;
  int started, ok;
};

static void *event_waiter(void *arg) {
  struct ev_ctx *c = arg;
  inc(&c->started);
  if (conc_event_wait(&c->e, 5) == 0)
    inc(&c->ok);
  return NULL;
}

static void event_round(struct ev_ctx *c) {
  pthread_t t[5];
  c->started = c->ok = 0;
  for (int i = 0; i < 5; i++)
    t[i] = conc_test_spawn(event_waiter, c);
  await_int(&c->started, 5);
  settle();
  assert_int_equal(load(&c->ok), 0);
  conc_event_set(&c->e);
  for (int i = 0; i < 5; i++)
    conc_test_join(t[i]);
  assert_int_equal(c->ok, 5);
  double t0 = conc_monotonic();
  assert_int_equal(conc_event_wait(&c->e, 5), 0);
  assert_int_equal(conc_event_wait(&c->e, CONC_FOREVER), 0);
  assert_quick(conc_monotonic() - t0);
}

/* E2 */
static void event_set_wakes_every_waiter_also_after_clear(void **state) {
  (void)state;
  struct ev_ctx c = {.e = CONC_EVENT_INIT};
  event_round(&c);
  conc_event_clear(&c.e);
  event_round(&c);
  /* destroy with a waiter is refused */
  conc_event_clear(&c.e);
  c.started = 0;
  pthread_t t = conc_test_spawn(event_waiter, &c);
  double end = conc_monotonic() + 5;
  while (conc__load_acquire(&c.e.priv.nwait) == 0 && conc_monotonic() < end)
    conc_sleep(0.001);
  assert_int_equal(conc_event_destroy(&c.e), CONC_EBUSY);
  conc_event_set(&c.e);
  conc_test_join(t);
  assert_int_equal(conc_event_destroy(&c.e), 0);
}

/* A set followed at once by a clear still releases the waiters (Python's
 * wait returns what the condition saw, True). */
static void event_set_then_clear_still_releases_waiters(void **state) {
  (void)state;
  struct ev_ctx c = {.e = CONC_EVENT_INIT};
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    t[i] = conc_test_spawn(event_waiter, &c);
  await_int(&c.started, 3);
  settle();
  conc_event_set(&c.e);
  conc_event_clear(&c.e);
  for (int i = 0; i < 3; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.ok, 3);
  assert_false(conc_event_is_set(&c.e));
}

/* E3 */
static void event_wait_timeouts(void **state) {
  (void)state;
  conc_event_t e = CONC_EVENT_INIT;
  double t0 = conc_monotonic();
  assert_int_equal(conc_event_wait(&e, 0), CONC_ETIMEDOUT);
  assert_int_equal(conc_event_wait(&e, -2), CONC_ETIMEDOUT);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(conc_event_wait(&e, NAN), CONC_EINVAL);
  t0 = conc_monotonic();
  assert_int_equal(conc_event_wait(&e, T_SHORT), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, T_SHORT);
  conc_event_set(&e);
  t0 = conc_monotonic();
  assert_int_equal(conc_event_wait(&e, T_SHORT), 0);
  assert_quick(conc_monotonic() - t0);
}

/* ============================================================= Barrier */

/* B1 */
static void barrier_needs_at_least_one_party(void **state) {
  (void)state;
  conc_barrier_t b;
  assert_int_equal(conc_barrier_init(&b, 0, NULL), CONC_EINVAL);
  assert_int_equal(conc_barrier_init(&b, -3, NULL), CONC_EINVAL);
  assert_int_equal(conc_barrier_init(NULL, 2, NULL), CONC_EINVAL);
  assert_int_equal(
      conc_barrier_init(
          &b, 2, &(conc_barrier_opts_t){.has_timeout = true, .timeout = NAN}),
      CONC_EINVAL);
  assert_int_equal(conc_barrier_wait(NULL, 0), CONC_EINVAL);
}

#define NPARTY 5

struct bar_ctx {
  conc_barrier_t b;
  int cycles;
  int arrived[NPARTY];
  int index_sum[16];
  int actions, action_before_release_bad;
  pthread_t action_thread;
  int released;
  int rc_broken, rc_other;
  double timeout;
};

static int count_action(void *arg, void **result) {
  struct bar_ctx *c = arg;
  /* B4: nobody of this cycle has been released yet */
  if (load(&c->released) % NPARTY != 0)
    c->action_before_release_bad++;
  c->actions++;
  c->action_thread = pthread_self();
  return 0;
}

struct party {
  struct bar_ctx *c;
  int me;
};

static void *lockstep_party(void *arg) {
  struct party *p = arg;
  struct bar_ctx *c = p->c;
  for (int k = 0; k < c->cycles; k++) {
    __atomic_store_n(&c->arrived[p->me], k + 1, __ATOMIC_RELEASE);
    int idx = conc_barrier_wait(&c->b, CONC_FOREVER);
    assert_true(idx >= 0 && idx < NPARTY);
    /* B2: everybody has arrived at cycle k before anyone passes */
    for (int j = 0; j < NPARTY; j++)
      assert_true(load(&c->arrived[j]) >= k + 1);
    __atomic_fetch_add(&c->index_sum[k % 16], idx, __ATOMIC_ACQ_REL);
    inc(&c->released);
    conc_barrier_wait(&c->b, CONC_FOREVER); /* keep cycles apart */
  }
  return NULL;
}

static void run_parties(struct bar_ctx *c, void *(*fn)(void *)) {
  pthread_t t[NPARTY];
  struct party p[NPARTY];
  for (int i = 0; i < NPARTY; i++) {
    p[i] = (struct party){c, i};
    t[i] = conc_test_spawn(fn, &p[i]);
  }
  for (int i = 0; i < NPARTY; i++)
    conc_test_join(t[i]);
}

/* B2, B3 */
static void
barrier_parties_pass_in_lockstep_with_distinct_indices(void **state) {
  (void)state;
  for (int cycles = 1; cycles <= 10; cycles += 9) {
    struct bar_ctx c = {.cycles = cycles};
    assert_int_equal(conc_barrier_init(&c.b, NPARTY, NULL), 0);
    run_parties(&c, lockstep_party);
    for (int k = 0; k < cycles; k++)
      assert_int_equal(c.index_sum[k], NPARTY * (NPARTY - 1) / 2);
    assert_int_equal(conc_barrier_n_waiting(&c.b), 0);
    assert_false(conc_barrier_broken(&c.b));
    assert_int_equal(conc_barrier_destroy(&c.b), 0);
  }
}

#define TIGHT_CYCLES 3000

struct tight_ctx {
  conc_barrier_t b;
  int mask[TIGHT_CYCLES];
};

static void *tight_party(void *arg) {
  struct tight_ctx *c = arg;
  for (int k = 0; k < TIGHT_CYCLES; k++) {
    int idx = conc_barrier_wait(&c->b, CONC_FOREVER);
    assert_true(idx >= 0 && idx < NPARTY);
    __atomic_fetch_or(&c->mask[k], 1 << idx, __ATOMIC_ACQ_REL);
  }
  return NULL;
}

/* B2, B3 in tight loops, where parties meet while spinning and the tripping
 * party skips the wake: no cycle loses a party or repeats an index. */
static void barrier_tight_loops_never_lose_a_party(void **state) {
  (void)state;
  static struct tight_ctx c;
  memset(&c, 0, sizeof c);
  assert_int_equal(conc_barrier_init(&c.b, NPARTY, NULL), 0);
  pthread_t t[NPARTY];
  for (int i = 0; i < NPARTY; i++)
    t[i] = conc_test_spawn(tight_party, &c);
  for (int i = 0; i < NPARTY; i++)
    conc_test_join(t[i]);
  for (int k = 0; k < TIGHT_CYCLES; k++)
    assert_int_equal(c.mask[k], (1 << NPARTY) - 1);
  assert_int_equal(conc_barrier_n_waiting(&c.b), 0);
  assert_int_equal(conc_barrier_destroy(&c.b), 0);
}

static void *action_party(void *arg) {
  struct party *p = arg;
  struct bar_ctx *c = p->c;
  for (int k = 0; k < c->cycles; k++) {
    int idx = conc_barrier_wait(&c->b, CONC_FOREVER);
    if (idx == NPARTY - 1) { /* the action ran in the last arriver */
      assert_int_equal(load(&c->actions), 2 * k + 1);
      assert_true(pthread_equal(c->action_thread, pthread_self()));
    }
    inc(&c->released);
    /* a second barrier keeps the release count of cycles apart */
    conc_barrier_wait(&c->b, CONC_FOREVER);
  }
  return NULL;
}

/* B4: once per cycle, before any waiter is released, by the last one */
static void barrier_action_runs_once_per_cycle_before_release(void **state) {
  (void)state;
  struct bar_ctx c = {.cycles = 4};
  /* the two waits per cycle alternate; count only the first kind */
  conc_barrier_init(
      &c.b, NPARTY,
      &(conc_barrier_opts_t){.action = count_action, .action_arg = &c});
  run_parties(&c, action_party);
  assert_int_equal(c.actions, 2 * c.cycles);
  assert_int_equal(c.action_before_release_bad, 0);
}

static void *breakable_party(void *arg) {
  struct party *p = arg;
  struct bar_ctx *c = p->c;
  int rc = conc_barrier_wait(&c->b, c->timeout);
  if (rc == CONC_EBROKEN)
    inc(&c->rc_broken);
  else
    inc(&c->rc_other);
  return NULL;
}

static void spawn_breakable(struct bar_ctx *c, pthread_t *t, struct party *p,
                            int n) {
  for (int i = 0; i < n; i++) {
    p[i] = (struct party){c, i};
    t[i] = conc_test_spawn(breakable_party, &p[i]);
  }
  double end = conc_monotonic() + 5;
  while (conc_barrier_n_waiting(&c->b) < n && conc_monotonic() < end)
    conc_sleep(0.001);
  assert_int_equal(conc_barrier_n_waiting(&c->b), n);
}

/* B6 */
static void barrier_abort_breaks_current_and_future_waits(void **state) {
  (void)state;
  struct bar_ctx c = {.timeout = CONC_FOREVER};
  conc_barrier_init(&c.b, 3, NULL);
  pthread_t t[2];
  struct party p[2];
  spawn_breakable(&c, t, p, 2);
  assert_int_equal(conc_barrier_abort(&c.b), 0);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.rc_broken, 2);
  assert_true(conc_barrier_broken(&c.b));
  assert_int_equal(conc_barrier_wait(&c.b, CONC_FOREVER), CONC_EBROKEN);
  char buf[80];
  conc_barrier_repr(&c.b, buf, sizeof buf);
  assert_non_null(strstr(buf, ": broken>"));
  /* B7: a reset after an abort repairs it */
  assert_int_equal(conc_barrier_reset(&c.b), 0);
  assert_false(conc_barrier_broken(&c.b));
  c.rc_broken = 0;
  spawn_breakable(&c, t, p, 2);
  assert_int_equal(conc_barrier_wait(&c.b, CONC_FOREVER), 2);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.rc_other, 2);
  assert_int_equal(c.rc_broken, 0);
}

/* B7 */
static void barrier_reset_breaks_waiters_and_is_reusable(void **state) {
  (void)state;
  struct bar_ctx c = {.timeout = CONC_FOREVER};
  conc_barrier_init(&c.b, 3, NULL);
  pthread_t t[2];
  struct party p[2];
  spawn_breakable(&c, t, p, 2);
  assert_int_equal(conc_barrier_reset(&c.b), 0);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.rc_broken, 2);
  assert_false(conc_barrier_broken(&c.b));
  assert_int_equal(conc_barrier_n_waiting(&c.b), 0);
  spawn_breakable(&c, t, p, 2);
  assert_int_equal(conc_barrier_wait(&c.b, CONC_FOREVER), 2);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  assert_int_equal(c.rc_other, 2);
}

/* B8 */
static void barrier_timeout_breaks_it_for_every_party(void **state) {
  (void)state;
  struct bar_ctx c = {.timeout = CONC_FOREVER};
  conc_barrier_init(&c.b, 3, NULL);
  pthread_t t[1];
  struct party p[1];
  spawn_breakable(&c, t, p, 1);
  double t0 = conc_monotonic();
  assert_int_equal(conc_barrier_wait(&c.b, T_SHORT), CONC_EBROKEN);
  assert_elapsed(conc_monotonic() - t0, T_SHORT);
  conc_test_join(t[0]);
  assert_int_equal(c.rc_broken, 1);
  assert_true(conc_barrier_broken(&c.b));
  /* the constructor's timeout applies when wait() is given none */
  conc_barrier_t d;
  conc_barrier_init(
      &d, 2, &(conc_barrier_opts_t){.has_timeout = true, .timeout = T_SHORT});
  t0 = conc_monotonic();
  assert_int_equal(conc_barrier_wait(&d, CONC_BARRIER_DEFAULT), CONC_EBROKEN);
  assert_elapsed(conc_monotonic() - t0, T_SHORT);
  assert_true(conc_barrier_broken(&d));
  /* a negative timeout polls and breaks at once */
  conc_barrier_reset(&d);
  t0 = conc_monotonic();
  assert_int_equal(conc_barrier_wait(&d, -5), CONC_EBROKEN);
  assert_quick(conc_monotonic() - t0);
}

static void *arrive_late(void *arg) {
  conc_sleep(3 * T_SHORT);
  return (void *)(intptr_t)conc_barrier_wait(arg, CONC_FOREVER);
}

/* B8: CONC_FOREVER waits without limit even when the barrier has a
 * default timeout (CONC_BARRIER_DEFAULT asks for that one); without a
 * default, CONC_BARRIER_DEFAULT waits forever too. */
static void barrier_forever_outlasts_a_default_timeout(void **state) {
  (void)state;
  for (int has_default = 1; has_default >= 0; has_default--) {
    conc_barrier_t b;
    conc_barrier_init(
        &b, 2,
        &(conc_barrier_opts_t){.has_timeout = has_default, .timeout = T_SHORT});
    double t0 = conc_monotonic();
    pthread_t t = conc_test_spawn(arrive_late, &b);
    int idx = conc_barrier_wait(&b, has_default ? CONC_FOREVER
                                                : CONC_BARRIER_DEFAULT);
    double waited = conc_monotonic() - t0;
    void *other;
    assert_int_equal(pthread_join(t, &other), 0);
    assert_int_equal(idx, 0);
    assert_int_equal((int)(intptr_t)other, 1);
    assert_elapsed(waited, 3 * T_SHORT);
    assert_false(conc_barrier_broken(&b));
    assert_int_equal(conc_barrier_destroy(&b), 0);
  }
}

struct action_fail {
  conc_barrier_t b;
  pthread_t ran_in;
  int rc[3];
  pthread_t who[3];
  char msg[3][32];
};

struct action_fail_party {
  struct action_fail *f;
  int me;
};

static int failing_action(void *arg, void **result) {
  struct action_fail *f = arg;
  f->ran_in = pthread_self();
  *result = (void *)1; /* ignored, as Python ignores the action's value */
  return conc_raise(CONC_EINVAL, "action failed");
}

static void *party_of_failing_action(void *arg) {
  struct action_fail_party *p = arg;
  int rc = conc_barrier_wait(&p->f->b, CONC_FOREVER);
  const char *m = conc_raised_message(rc);
  p->f->rc[p->me] = rc;
  p->f->who[p->me] = pthread_self();
  snprintf(p->f->msg[p->me], sizeof p->f->msg[p->me], "%s", m ? m : "");
  return NULL;
}

/* B4: an action that returns a code breaks the barrier: the party that ran
 * it gets the code (and the action's conc_raise message), every other
 * party CONC_EBROKEN (Python: the action's exception, BrokenBarrierError). */
static void
barrier_action_failure_goes_to_its_party_others_broken(void **state) {
  (void)state;
  struct action_fail f;
  memset(&f, 0, sizeof f);
  assert_int_equal(
      conc_barrier_init(
          &f.b, 3,
          &(conc_barrier_opts_t){.action = failing_action, .action_arg = &f}),
      0);
  pthread_t t[3];
  struct action_fail_party p[3];
  for (int i = 0; i < 3; i++) {
    p[i] = (struct action_fail_party){&f, i};
    t[i] = conc_test_spawn(party_of_failing_action, &p[i]);
  }
  for (int i = 0; i < 3; i++)
    conc_test_join(t[i]);
  int failed = 0, broken = 0;
  for (int i = 0; i < 3; i++) {
    if (f.rc[i] == CONC_EINVAL) {
      failed++;
      assert_true(pthread_equal(f.who[i], f.ran_in));
      assert_string_equal(f.msg[i], "action failed");
    } else {
      assert_int_equal(f.rc[i], CONC_EBROKEN);
      broken++;
    }
  }
  assert_int_equal(failed, 1);
  assert_int_equal(broken, 2);
  assert_true(conc_barrier_broken(&f.b));
  assert_int_equal(conc_barrier_n_waiting(&f.b), 0);
  assert_int_equal(conc_barrier_wait(&f.b, 0), CONC_EBROKEN);
  assert_int_equal(conc_barrier_destroy(&f.b), 0);
}

/* B9 */
static void barrier_of_one_never_blocks(void **state) {
  (void)state;
  conc_barrier_t b;
  conc_barrier_init(&b, 1, NULL);
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_barrier_wait(&b, CONC_FOREVER), 0);
  assert_int_equal(conc_barrier_parties(&b), 1);
}

/* B10 */
static void barrier_n_waiting_and_repr(void **state) {
  (void)state;
  struct bar_ctx c = {.timeout = CONC_FOREVER};
  conc_barrier_init(&c.b, 3, NULL);
  char buf[80];
  conc_barrier_repr(&c.b, buf, sizeof buf);
  assert_non_null(strstr(buf, ": waiters=0/3>"));
  pthread_t t[2];
  struct party p[2];
  spawn_breakable(&c, t, p, 2);
  conc_barrier_repr(&c.b, buf, sizeof buf);
  assert_non_null(strstr(buf, ": waiters=2/3>"));
  assert_int_equal(conc_barrier_destroy(&c.b), CONC_EBUSY);
  assert_int_equal(conc_barrier_wait(&c.b, CONC_FOREVER), 2);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
  assert_int_equal(conc_barrier_n_waiting(&c.b), 0);
  assert_int_equal(c.rc_other, 2);
}

/* ============================================================== fork */

struct hammer {
  conc_lock_t lock;
  conc_rlock_t rlock;
  conc_semaphore_t sem;
  conc_event_t ev;
  conc_barrier_t bar;
  int stop;
};

static void *hammer_thread(void *arg) {
  struct hammer *h = arg;
  while (!load(&h->stop)) {
    conc_lock_acquire(&h->lock);
    conc_lock_release(&h->lock);
    conc_rlock_acquire(&h->rlock);
    conc_rlock_release(&h->rlock);
    conc_semaphore_acquire(&h->sem);
    conc_semaphore_release(&h->sem, 1);
    conc_event_set(&h->ev);
    conc_event_clear(&h->ev);
    conc_barrier_n_waiting(&h->bar);
    conc_barrier_abort(&h->bar);
    conc_barrier_reset(&h->bar);
  }
  return NULL;
}

/* F8 (thread side): fork while threads hammer every primitive; the child,
 * after _at_fork_reinit of the user-held locks, never hangs in libconc:
 * the barrier's internal lock, possibly held by a hammering thread at the
 * fork, is taken over in the child. */
static void fork_while_threads_hammer_never_hangs_the_child(void **state) {
  (void)state;
  struct hammer h = {.lock = CONC_LOCK_INIT,
                     .rlock = CONC_RLOCK_INIT,
                     .sem = CONC_SEMAPHORE_INIT(1),
                     .ev = CONC_EVENT_INIT};
  conc_barrier_init(&h.bar, 1, NULL);
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    t[i] = conc_test_spawn(hammer_thread, &h);
  for (int round = 0; round < 20; round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      alarm(10);
      conc_lock_at_fork_reinit(&h.lock);
      conc_rlock_at_fork_reinit(&h.rlock);
      int ok = conc_lock_acquire(&h.lock) == 0 &&
               conc_lock_release(&h.lock) == 0 &&
               conc_rlock_acquire(&h.rlock) == 0 &&
               conc_rlock_release(&h.rlock) == 0 &&
               conc_barrier_reset(&h.bar) == 0 &&
               conc_barrier_wait(&h.bar, 1) == 0 &&
               conc_event_set(&h.ev) == 0 && conc_event_wait(&h.ev, 1) == 0;
      _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
  }
  __atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; i++)
    conc_test_join(t[i]);
}

CONC_TEST_MAIN(
    cmocka_unit_test(lock_acquire_release_and_try_on_free_lock),
    cmocka_unit_test(lock_try_fails_at_once_while_held_elsewhere),
    cmocka_unit_test(lock_release_lets_five_blocked_acquirers_chain),
    cmocka_unit_test(lock_is_not_reentrant_and_any_thread_may_release),
    cmocka_unit_test(lock_release_unlocked_is_runtime_error),
    cmocka_unit_test(lock_timeout_argument_rules),
    cmocka_unit_test(lock_timed_acquire_times_out_and_keeps_state),
    cmocka_unit_test(lock_with_block_releases_on_every_exit),
    cmocka_unit_test(lock_at_fork_reinit_gives_child_a_working_lock),
    cmocka_unit_test(lock_repr_shows_state),
    cmocka_unit_test(lock_bad_input_and_busy_destroy),
    cmocka_unit_test(lock_and_rlock_keep_contended_counter_exact),
    cmocka_unit_test(rlock_reacquire_needs_as_many_releases),
    cmocka_unit_test(rlock_release_unacquired_is_runtime_error),
    cmocka_unit_test(rlock_is_owned_by_one_thread_only),
    cmocka_unit_test(rlock_recursion_count_and_other_thread_sees_zero),
    cmocka_unit_test(rlock_timeout_rules_and_release_save_unowned),
    cmocka_unit_test(rlock_timed_acquire_times_out_when_held_elsewhere),
    cmocka_unit_test(condition_default_lock_is_reentrant_explicit_lock_passes),
    cmocka_unit_test(condition_wait_and_notify_need_the_lock),
    cmocka_unit_test(condition_notify_n_wakes_exactly_n_waiters),
    cmocka_unit_test(condition_over_pshared_lock_or_given_rlock_wakes_exactly),
    cmocka_unit_test(condition_notify_racing_the_lock_release_still_wakes),
    cmocka_unit_test(condition_ping_pong_hands_every_turn_over),
    cmocka_unit_test(condition_wait_timeout_returns_false_after_timeout),
    cmocka_unit_test(condition_wait_nonpositive_timeout_never_blocks),
    cmocka_unit_test(condition_wait_releases_every_rlock_level_and_restores),
    cmocka_unit_test(condition_wait_for_checks_predicate_first),
    cmocka_unit_test(condition_wait_for_has_one_deadline),
    cmocka_unit_test(condition_wait_for_returns_the_predicates_value),
    cmocka_unit_test(condition_timed_out_waiter_never_absorbs_a_notify),
    cmocka_unit_test(condition_destroy_with_waiters_is_busy),
    cmocka_unit_test(semaphore_negative_value_rejected_default_one),
    cmocka_unit_test(semaphore_try_acquire_admits_value),
    cmocka_unit_test(semaphore_release_n_admits_exactly_n),
    cmocka_unit_test(semaphore_timeout_rules),
    cmocka_unit_test(semaphore_try_acquire_contended),
    cmocka_unit_test(semaphore_with_block_and_release_past_initial),
    cmocka_unit_test(bounded_semaphore_over_release_is_value_error),
    cmocka_unit_test(bounded_semaphore_caps_concurrency_and_repr),
    cmocka_unit_test(event_starts_unset_set_and_clear_idempotent),
    cmocka_unit_test(event_set_wakes_every_waiter_also_after_clear),
    cmocka_unit_test(event_set_then_clear_still_releases_waiters),
    cmocka_unit_test(event_wait_timeouts),
    cmocka_unit_test(barrier_needs_at_least_one_party),
    cmocka_unit_test(barrier_parties_pass_in_lockstep_with_distinct_indices),
    cmocka_unit_test(barrier_tight_loops_never_lose_a_party),
    cmocka_unit_test(barrier_action_runs_once_per_cycle_before_release),
    cmocka_unit_test(barrier_action_failure_goes_to_its_party_others_broken),
    cmocka_unit_test(barrier_forever_outlasts_a_default_timeout),
    cmocka_unit_test(barrier_abort_breaks_current_and_future_waits),
    cmocka_unit_test(barrier_reset_breaks_waiters_and_is_reusable),
    cmocka_unit_test(barrier_timeout_breaks_it_for_every_party),
    cmocka_unit_test(barrier_of_one_never_blocks),
    cmocka_unit_test(barrier_n_waiting_and_repr),
    cmocka_unit_test(fork_while_threads_hammer_never_hangs_the_child))
