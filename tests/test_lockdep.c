/*
 * The lock-order checker (conc/lockdep.h): every report kind, no false
 * positives on consistent orders, trylock, timed acquire and RLock
 * recursion adding no edges, the query API, the exit report, and class
 * names. The checker is switched on once for the whole program; each test
 * uses locks of its own names, since the order graph lives as long as the
 * process. Reports go to a sink that keeps the last one.
 */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "conc/aiosync.h"
#include "conc/lockdep.h"
#include "conc/loop.h"
#include "conc/sync.h"
#include "harness.h"

static struct {
  pthread_mutex_t mu;
  int kind;
  char lock[128], other[128], thread[64];
} last = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void sink(const conc_lockdep_report_t *r, void *user) {
  (void)user;
  pthread_mutex_lock(&last.mu);
  last.kind = r->kind;
  snprintf(last.lock, sizeof last.lock, "%s", r->lock);
  snprintf(last.other, sizeof last.other, "%s", r->other ? r->other : "");
  snprintf(last.thread, sizeof last.thread, "%s", r->thread);
  pthread_mutex_unlock(&last.mu);
}

static int setup(void **state) {
  (void)state;
  assert_int_equal(conc_lockdep_enable(CONC_LOCKDEP_ON), 0);
  conc_lockdep_set_sink(sink, NULL);
  return 0;
}

static void named(conc_lock_t *l, const char *name) {
  assert_int_equal(conc_lock_init(l, &(conc_lock_opts_t){.name = name}), 0);
}

static bool has_edge(unsigned from, unsigned to) {
  conc_lockdep_edge_t e[4096];
  size_t n;
  assert_int_equal(conc_lockdep_edges(e, 4096, &n), 0);
  for (size_t i = 0; i < n && i < 4096; i++)
    if (e[i].from == from && e[i].to == to)
      return true;
  return false;
}

static const conc_lockdep_class_t *class_named(const char *name) {
  static conc_lockdep_class_t c[4096];
  size_t n;
  assert_int_equal(conc_lockdep_classes(c, 4096, &n), 0);
  for (size_t i = 0; i < n && i < 4096; i++)
    if (strcmp(c[i].name, name) == 0)
      return &c[i];
  return NULL;
}

static void take2(conc_lock_t *first, conc_lock_t *second) {
  assert_int_equal(conc_lock_acquire(first), 0);
  assert_int_equal(conc_lock_acquire(second), 0);
  assert_int_equal(conc_lock_release(second), 0);
  assert_int_equal(conc_lock_release(first), 0);
}

/* ----------------------------------------------------------- cycles */

/* An inversion made deep in the stack: the report's backtrace keeps its
 * first frames only (under ASan, a longer copy is a stack overflow). */
__attribute__((noinline)) static int deep_take(int n, conc_lock_t *first,
                                               conc_lock_t *second) {
  if (n == 0) {
    take2(first, second);
    return 0;
  }
  return deep_take(n - 1, first, second) + 1; /* no tail call */
}

static void test_inversion_deep_in_the_stack_is_reported(void **state) {
  (void)state;
  conc_lock_t a, b;
  named(&a, "deep.a");
  named(&b, "deep.b");
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_CYCLE);
  assert_int_equal(deep_take(40, &a, &b), 40);
  assert_int_equal(deep_take(40, &b, &a), 40);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before + 1);
}

static void test_opposite_orders_report_an_inversion(void **state) {
  (void)state;
  conc_lock_t a, b;
  named(&a, "inv.a");
  named(&b, "inv.b");
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_CYCLE);
  take2(&a, &b);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before);
  take2(&b, &a); /* never deadlocks here: one thread */
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before + 1);
  assert_int_equal(last.kind, CONC_LOCKDEP_CYCLE);
  assert_string_equal(last.lock, "inv.a");
  assert_string_equal(last.other, "inv.b");
  take2(&b, &a); /* reported once */
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before + 1);
  assert_false(has_edge(conc_lockdep_class_of(&b), conc_lockdep_class_of(&a)));
  conc_lock_destroy(&a);
  conc_lock_destroy(&b);
}

static void test_three_lock_cycle_is_reported(void **state) {
  (void)state;
  conc_lock_t a, b, c;
  named(&a, "tri.a");
  named(&b, "tri.b");
  named(&c, "tri.c");
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_CYCLE);
  take2(&a, &b);
  take2(&b, &c);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before);
  take2(&c, &a);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before + 1);
  assert_string_equal(last.lock, "tri.a");
  assert_string_equal(last.other, "tri.c");
}

/* Two threads, one order each, run one after the other: the deadlock is
 * possible but does not happen; the report says so all the same. */
struct pair {
  conc_lock_t *first, *second;
};

static void *take_pair(void *arg) {
  struct pair *p = arg;
  take2(p->first, p->second);
  return NULL;
}

static void test_inversion_across_threads_is_reported(void **state) {
  (void)state;
  conc_lock_t a, b;
  named(&a, "thr.a");
  named(&b, "thr.b");
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_CYCLE);
  struct pair p1 = {&a, &b}, p2 = {&b, &a};
  conc_test_join(conc_test_spawn(take_pair, &p1));
  conc_test_join(conc_test_spawn(take_pair, &p2));
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before + 1);
}

/* ------------------------------------------------- no false positives */

static void test_consistent_order_million_acquisitions_no_report(void **s) {
  (void)s;
  conc_lock_t a, b;
  conc_rlock_t r;
  named(&a, "ok.a");
  named(&b, "ok.b");
  conc_rlock_init(&r, &(conc_rlock_opts_t){.name = "ok.r"});
  unsigned long before = conc_lockdep_reports(0);
  for (int i = 0; i < 1000000 / 3; i++) {
    conc_rlock_acquire(&r);
    take2(&a, &b);
    conc_rlock_release(&r);
  }
  assert_int_equal(conc_lockdep_reports(0), before);
  const conc_lockdep_class_t *c = class_named("ok.a");
  assert_non_null(c);
  assert_true(c->acquisitions >= 1000000 / 3);
  assert_int_equal(c->contended, 0);
}

static void test_trylock_adds_no_edge(void **state) {
  (void)state;
  conc_lock_t a, b;
  named(&a, "try.a");
  named(&b, "try.b");
  unsigned long before = conc_lockdep_reports(0);
  assert_int_equal(conc_lock_acquire(&b), 0);
  assert_int_equal(conc_lock_acquire_ex(&a, false, CONC_FOREVER), 0);
  conc_lock_release(&a);
  conc_lock_release(&b);
  assert_false(has_edge(conc_lockdep_class_of(&b), conc_lockdep_class_of(&a)));
  take2(&a, &b);
  assert_int_equal(conc_lockdep_reports(0), before);
  assert_true(has_edge(conc_lockdep_class_of(&a), conc_lockdep_class_of(&b)));
}

static void test_timed_acquire_adds_no_edge(void **state) {
  (void)state;
  conc_lock_t a, b;
  named(&a, "timed.a");
  named(&b, "timed.b");
  unsigned long before = conc_lockdep_reports(0);
  assert_int_equal(conc_lock_acquire(&b), 0);
  assert_int_equal(conc_lock_acquire_timeout(&a, 1.0), 0);
  conc_lock_release(&a);
  conc_lock_release(&b);
  take2(&a, &b);
  assert_int_equal(conc_lockdep_reports(0), before);
}

static void test_lock_taken_after_a_trylock_orders_after_it(void **s) {
  (void)s;
  conc_lock_t a, b;
  named(&a, "tryheld.a");
  named(&b, "tryheld.b");
  assert_int_equal(conc_lock_acquire_ex(&a, false, CONC_FOREVER), 0);
  assert_int_equal(conc_lock_acquire(&b), 0);
  conc_lock_release(&b);
  conc_lock_release(&a);
  assert_true(has_edge(conc_lockdep_class_of(&a), conc_lockdep_class_of(&b)));
}

static void test_rlock_recursion_adds_no_edge(void **state) {
  (void)state;
  conc_rlock_t r;
  conc_lock_t a;
  conc_rlock_init(&r, &(conc_rlock_opts_t){.name = "rec.r"});
  named(&a, "rec.a");
  unsigned long before = conc_lockdep_reports(0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_rlock_acquire(&r), 0);
  assert_int_equal(conc_lock_acquire(&a), 0);
  assert_int_equal(conc_rlock_acquire(&r), 0); /* recursion: no a -> r */
  conc_rlock_release(&r);
  conc_lock_release(&a);
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_rlock_release(&r), 0);
  assert_int_equal(conc_lockdep_reports(0), before);
  unsigned cr = conc_lockdep_class_of(&r), ca = conc_lockdep_class_of(&a);
  assert_true(has_edge(cr, ca));
  assert_false(has_edge(ca, cr));
  assert_false(has_edge(cr, cr));
  conc_rlock_destroy(&r);
}

/* A Lock used as a signal: taken by one thread, released by another. The
 * taker's held stack must forget it, or a later order would be false. */
struct signal_ctx {
  conc_lock_t *sig, *a, *b;
  conc_semaphore_t taken, released;
};

static void *signal_taker(void *arg) {
  struct signal_ctx *c = arg;
  assert_int_equal(conc_lock_acquire(c->sig), 0);
  conc_semaphore_release(&c->taken, 1);
  conc_semaphore_acquire(&c->released);
  take2(c->a, c->b);
  return NULL;
}

static void test_release_by_another_thread_forgets_the_hold(void **state) {
  (void)state;
  conc_lock_t sig, a, b;
  named(&sig, "sig.s");
  named(&a, "sig.a");
  named(&b, "sig.b");
  struct signal_ctx c = {.sig = &sig, .a = &a, .b = &b};
  conc_semaphore_init(&c.taken, 0, NULL);
  conc_semaphore_init(&c.released, 0, NULL);
  pthread_t t = conc_test_spawn(signal_taker, &c);
  conc_semaphore_acquire(&c.taken);
  assert_int_equal(conc_lock_release(&sig), 0);
  conc_semaphore_release(&c.released, 1);
  conc_test_join(t);
  unsigned cs = conc_lockdep_class_of(&sig);
  assert_false(has_edge(cs, conc_lockdep_class_of(&a)));
  assert_true(has_edge(conc_lockdep_class_of(&a), conc_lockdep_class_of(&b)));
}

/* --------------------------------------------------- the other reports */

static void *release_after_report(void *arg) {
  conc_lock_t *l = arg;
  while (conc_lockdep_reports(CONC_LOCKDEP_SELF_DEADLOCK) == 0)
    conc_sleep(0.001);
  conc_lock_release(l);
  return NULL;
}

static void test_reacquiring_a_held_lock_is_reported(void **state) {
  (void)state;
  conc_lock_t l;
  named(&l, "self.l");
  assert_int_equal(conc_lock_acquire(&l), 0);
  /* Another thread lets it go once the report is out: the acquire below
   * would otherwise wait for ever. */
  pthread_t t = conc_test_spawn(release_after_report, &l);
  assert_int_equal(conc_lock_acquire(&l), 0);
  conc_test_join(t);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_SELF_DEADLOCK), 1);
  assert_string_equal(last.lock, "self.l");
  conc_lock_release(&l);
  /* A try of a held lock is no self-deadlock. */
  assert_int_equal(conc_lock_acquire(&l), 0);
  assert_int_equal(conc_lock_acquire_ex(&l, false, CONC_FOREVER),
                   CONC_ETIMEDOUT);
  conc_lock_release(&l);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_SELF_DEADLOCK), 1);
}

static void *hold_rlock(void *arg) {
  void **a = arg;
  conc_rlock_t *r = a[0];
  conc_semaphore_t *held = a[1], *done = a[2];
  conc_rlock_acquire(r);
  conc_semaphore_release(held, 1);
  conc_semaphore_acquire(done);
  conc_rlock_release(r);
  return NULL;
}

static void test_releasing_another_threads_rlock_is_reported(void **state) {
  (void)state;
  conc_rlock_t r;
  conc_semaphore_t held, done;
  conc_rlock_init(&r, &(conc_rlock_opts_t){.name = "bad.r"});
  conc_semaphore_init(&held, 0, NULL);
  conc_semaphore_init(&done, 0, NULL);
  void *args[] = {&r, &held, &done};
  pthread_t t = conc_test_spawn(hold_rlock, args);
  conc_semaphore_acquire(&held);
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_BAD_RELEASE);
  assert_int_equal(conc_rlock_release(&r), CONC_EPERM);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_BAD_RELEASE), before + 1);
  assert_string_equal(last.lock, "bad.r");
  conc_semaphore_release(&done, 1);
  conc_test_join(t);
  conc_rlock_destroy(&r);
}

static void test_destroying_a_held_lock_is_reported(void **state) {
  (void)state;
  conc_lock_t l, after;
  named(&l, "destroy.l");
  named(&after, "destroy.after");
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_DESTROY_HELD);
  unsigned cl = conc_lockdep_class_of(&l);
  assert_int_equal(conc_lock_acquire(&l), 0);
  assert_int_equal(conc_lock_destroy(&l), 0);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_DESTROY_HELD), before + 1);
  assert_string_equal(last.lock, "destroy.l");
  /* The destroyed lock is no longer held: nothing is ordered after it. */
  assert_int_equal(conc_lock_acquire(&after), 0);
  conc_lock_release(&after);
  assert_false(has_edge(cl, conc_lockdep_class_of(&after)));
}

static void test_reinitialising_a_held_lock_ends_the_hold(void **state) {
  (void)state;
  conc_lock_t l, after;
  named(&l, "reinit.l");
  named(&after, "reinit.after");
  assert_int_equal(conc_lock_acquire(&l), 0);
  named(&l, "reinit.l"); /* as after CONC_ENOTRECOVERABLE */
  assert_int_equal(conc_lock_acquire(&after), 0);
  conc_lock_release(&after);
  assert_false(
      has_edge(conc_lockdep_class_of(&l), conc_lockdep_class_of(&after)));
}

static void test_condition_wait_holding_another_lock_is_reported(void **s) {
  (void)s;
  conc_lock_t other;
  conc_condition_t c;
  named(&other, "wait.other");
  conc_condition_init(&c, &(conc_condition_opts_t){.name = "wait.cond"});
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_WAIT_HOLDING);
  conc_condition_acquire(&c);
  assert_int_equal(conc_condition_wait(&c, 0.001), CONC_ETIMEDOUT);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_WAIT_HOLDING), before);
  conc_lock_acquire(&other);
  assert_int_equal(conc_condition_wait(&c, 0.001), CONC_ETIMEDOUT);
  conc_lock_release(&other);
  conc_condition_release(&c);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_WAIT_HOLDING), before + 1);
  assert_string_equal(last.lock, "wait.cond");
  assert_string_equal(last.other, "wait.other");
  conc_condition_destroy(&c);
}

static conc_lock_t loop_lock;

static void blocking_callback(void *arg) {
  int *rc = arg;
  *rc = conc_lock_acquire_timeout(&loop_lock, 0.01);
  conc_loop_stop(conc_loop_running());
}

static void test_loop_callback_blocking_on_a_lock_is_reported(void **s) {
  (void)s;
  named(&loop_lock, "loop.l");
  conc_loop_t *loop;
  assert_int_equal(conc_loop_create(NULL, &loop), 0);
  int rc = -1;
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_LOOP_BLOCK);
  conc_lock_acquire(&loop_lock); /* held: the callback's acquire blocks */
  assert_int_equal(conc_loop_call_soon(loop, blocking_callback, &rc, NULL), 0);
  assert_int_equal(conc_loop_run_forever(loop), 0);
  conc_lock_release(&loop_lock);
  assert_int_equal(rc, CONC_ETIMEDOUT);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_LOOP_BLOCK), before + 1);
  assert_string_equal(last.lock, "loop.l");
  conc_loop_destroy(loop);
}

static conc_aio_lock_t aio_a = CONC_AIO_LOCK_INIT, aio_b = CONC_AIO_LOCK_INIT;

static int aio_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_aio_lock_acquire(&aio_a);
  conc_aio_lock_acquire(&aio_b);
  conc_aio_lock_release(&aio_b);
  conc_aio_lock_release(&aio_a);
  conc_aio_lock_acquire(&aio_b);
  conc_aio_lock_acquire(&aio_a);
  conc_aio_lock_release(&aio_a);
  conc_aio_lock_release(&aio_b);
  return 0;
}

static void test_async_lock_inversion_is_reported(void **state) {
  (void)state;
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_CYCLE);
  assert_int_equal(conc_aio_run(aio_main, NULL, NULL, NULL), 0);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before + 1);
  assert_string_equal(last.lock, "aio_a"); /* named by their symbols */
  assert_string_equal(last.other, "aio_b");
}

/* Three tasks queue for one async Lock; each acquisition in progress keeps
 * its own held-stack entry, so the lock is on the stack of the task that
 * got it, and what that task takes next is ordered after it. */
static conc_aio_lock_t q_l = CONC_AIO_LOCK_INIT, q_m = CONC_AIO_LOCK_INIT;

static int q_holder(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_aio_lock_acquire(&q_l);
  for (int i = 0; i < 3; i++) /* the others queue up meanwhile */
    conc_aio_sleep(0);
  conc_aio_lock_release(&q_l);
  return 0;
}

static int q_twice(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_aio_lock_acquire(&q_l);
  conc_aio_lock_release(&q_l);
  conc_aio_lock_acquire(&q_l); /* queues behind q_nested */
  conc_aio_lock_release(&q_l);
  return 0;
}

static int q_nested(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_aio_lock_acquire(&q_l);
  conc_aio_lock_acquire(&q_m);
  conc_aio_lock_release(&q_m);
  conc_aio_lock_release(&q_l);
  return 0;
}

static int q_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_fn_t fn[] = {q_holder, q_twice, q_nested};
  conc_aio_future_t *t[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_aio_create_task(NULL, fn[i], NULL, NULL, &t[i]), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(conc_aio_await(t[i], NULL), 0);
    conc_aio_future_release(t[i]);
  }
  return 0;
}

static void test_async_lock_waiters_keep_their_own_entries(void **state) {
  (void)state;
  unsigned long before = conc_lockdep_reports(0);
  assert_int_equal(conc_aio_run(q_main, NULL, NULL, NULL), 0);
  assert_int_equal(conc_lockdep_reports(0), before);
  assert_true(
      has_edge(conc_lockdep_class_of(&q_l), conc_lockdep_class_of(&q_m)));
}

static void test_bounded_semaphore_is_ordered_like_a_lock(void **state) {
  (void)state;
  conc_semaphore_t s;
  conc_lock_t a;
  conc_bounded_semaphore_init(&s, 1,
                              &(conc_semaphore_opts_t){.name = "bsem.s"});
  named(&a, "bsem.a");
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_CYCLE);
  conc_semaphore_acquire(&s);
  conc_lock_acquire(&a);
  conc_lock_release(&a);
  conc_semaphore_release(&s, 1);
  conc_lock_acquire(&a);
  conc_semaphore_acquire(&s);
  conc_semaphore_release(&s, 1);
  conc_lock_release(&a);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before + 1);
  conc_semaphore_destroy(&s);
}

/* Process-shared locks are followed by each process for its own threads,
 * through the address table (their flags live in shared memory). */
static void test_pshared_lock_inversion_is_reported(void **state) {
  (void)state;
  conc_lock_t *l = mmap(NULL, 2 * sizeof *l, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(l != MAP_FAILED);
  conc_lock_opts_t o = {.pshared = true, .name = "shared.a"};
  assert_int_equal(conc_lock_init(&l[0], &o), 0);
  o.name = "shared.b";
  assert_int_equal(conc_lock_init(&l[1], &o), 0);
  unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_CYCLE);
  take2(&l[0], &l[1]);
  take2(&l[1], &l[0]);
  assert_int_equal(conc_lockdep_reports(CONC_LOCKDEP_CYCLE), before + 1);
  assert_string_equal(last.lock, "shared.a");
  assert_string_equal(last.other, "shared.b");
  conc_lock_destroy(&l[0]);
  conc_lock_destroy(&l[1]);
  munmap(l, 2 * sizeof *l);
}

/* A forked child's thread does not hold the process-shared locks its
 * parent's thread held at fork(): taking one there is no self-deadlock. */
static void test_forked_child_does_not_hold_the_parents_pshared_lock(void **s) {
  (void)s;
  conc_lock_t *l = mmap(NULL, sizeof *l, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(l != MAP_FAILED);
  conc_lock_opts_t o = {.pshared = true, .name = "fork.shared"};
  assert_int_equal(conc_lock_init(l, &o), 0);
  assert_int_equal(conc_lock_acquire(l), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    unsigned long before = conc_lockdep_reports(CONC_LOCKDEP_SELF_DEADLOCK);
    int rc = conc_lock_acquire(l); /* waits for the parent's release */
    _exit(rc == 0 && conc_lockdep_reports(CONC_LOCKDEP_SELF_DEADLOCK) == before
              ? 0
              : 1);
  }
  conc_lock_release(l); /* before or after the child's acquire starts */
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  conc_lock_destroy(l);
  munmap(l, sizeof *l);
}

/* ------------------------------------------------ queries and names */

static void *hold_then_release(void *arg) {
  conc_lock_t *l = arg;
  while (__atomic_load_n(&l->priv.nwait, __ATOMIC_ACQUIRE) == 0)
    conc_sleep(0.001);
  conc_sleep(0.002);
  conc_lock_release(l);
  return NULL;
}

static void test_contention_is_counted_with_its_wait(void **state) {
  (void)state;
  conc_lock_t l;
  named(&l, "hot.l");
  conc_lock_acquire(&l);
  pthread_t t = conc_test_spawn(hold_then_release, &l);
  assert_int_equal(conc_lock_acquire(&l), 0); /* released by t */
  conc_test_join(t);
  conc_lock_release(&l);
  const conc_lockdep_class_t *c = class_named("hot.l");
  assert_non_null(c);
  assert_int_equal(c->acquisitions, 2);
  assert_int_equal(c->contended, 1);
  assert_true(c->wait_ns >= 2000000);
  assert_string_equal(c->type, "Lock");
}

/* Every lock made here comes from one init site: one class. */
__attribute__((noinline)) static conc_lock_t *new_lock(void) {
  conc_lock_t *l = malloc(sizeof *l);
  assert_non_null(l);
  assert_int_equal(conc_lock_init(l, NULL), 0);
  return l;
}

static conc_lock_t ld_static_lock = CONC_LOCK_INIT;
static conc_rlock_t ld_static_rlock = CONC_RLOCK_INIT;

static void test_unnamed_locks_take_their_symbol_or_site(void **state) {
  (void)state;
  conc_lock_acquire(&ld_static_lock);
  conc_lock_release(&ld_static_lock);
  conc_rlock_acquire(&ld_static_rlock);
  conc_rlock_release(&ld_static_rlock);
  assert_non_null(class_named("ld_static_lock"));
  assert_non_null(class_named("ld_static_rlock"));
  conc_lock_t *heap[2] = {new_lock(), new_lock()};
  unsigned c0 = conc_lockdep_class_of(heap[0]);
  assert_true(c0 != 0);
  assert_int_equal(conc_lockdep_class_of(heap[1]), c0);
  conc_lockdep_class_t cs[4096];
  size_t n;
  conc_lockdep_classes(cs, 4096, &n);
  assert_true(n >= c0);
  assert_memory_equal(cs[c0 - 1].name, "Lock@", 5);
  for (int i = 0; i < 2; i++) {
    conc_lock_destroy(heap[i]);
    free(heap[i]);
  }
  assert_int_equal(conc_lockdep_classes(NULL, 1, &n), CONC_EINVAL);
  assert_int_equal(conc_lockdep_enable(0x100), CONC_EINVAL);
}

/* Run `fn` in a child whose stderr comes back in buf. */
static int child_stderr(void (*fn)(void), char *buf, size_t n) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(p[1], 2);
    close(p[0]);
    fn();
    exit(0);
  }
  close(p[1]);
  size_t len = 0;
  ssize_t r;
  while (len + 1 < n && (r = read(p[0], buf + len, n - 1 - len)) > 0)
    len += (size_t)r;
  buf[len] = '\0';
  close(p[0]);
  int status;
  waitpid(pid, &status, 0);
  return status;
}

static void exit_report_child(void) {
  conc_lockdep_set_sink(NULL, NULL);
  conc_lockdep_enable(CONC_LOCKDEP_EXIT_REPORT);
  conc_lock_t a, b;
  named(&a, "exit.a");
  named(&b, "exit.b");
  take2(&a, &b);
}

static void test_exit_report_lists_classes_and_edges(void **state) {
  (void)state;
  static char buf[1 << 16];
  int status = child_stderr(exit_report_child, buf, sizeof buf);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_non_null(strstr(buf, "libconc lockdep:"));
  assert_non_null(strstr(buf, "exit.a"));
  assert_non_null(strstr(buf, "\"exit.a\" -> \"exit.b\""));
}

static void abort_child(void) {
  conc_lockdep_set_sink(NULL, NULL);
  conc_lockdep_enable(CONC_LOCKDEP_ABORT);
  conc_lock_t a, b;
  named(&a, "abort.a");
  named(&b, "abort.b");
  take2(&a, &b);
  take2(&b, &a);
}

static void test_abort_option_aborts_on_the_report(void **state) {
  (void)state;
  static char buf[1 << 16];
  int status = child_stderr(abort_child, buf, sizeof buf);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  assert_non_null(strstr(buf, "lock-order inversion"));
  assert_non_null(strstr(buf, "\"abort.b\""));
}

/* Run alone, by test_environment_switches_the_checker_on, in a child whose
 * environment has CONC_LOCKDEP=abort (read when the library is loaded); in
 * a normal run, without that variable, it has nothing to check. */
static void env_child(void **state) {
  (void)state;
  if (!getenv("CONC_LOCKDEP"))
    return;
  assert_int_equal(conc_lockdep_flags(), CONC_LOCKDEP_ON | CONC_LOCKDEP_ABORT |
                                             CONC_LOCKDEP_EXIT_REPORT);
  conc_lock_t a, b;
  named(&a, "env.a");
  named(&b, "env.b");
  take2(&a, &b);
  take2(&b, &a);
}

static void exec_env_child(void) {
  char *argv[] = {"test_lockdep", "env_child", NULL};
  char *envp[] = {"CONC_LOCKDEP=abort", NULL};
  execve("/proc/self/exe", argv, envp);
  _exit(127);
}

static void test_environment_switches_the_checker_on(void **state) {
  (void)state;
  static char buf[1 << 16];
  int status = child_stderr(exec_env_child, buf, sizeof buf);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  assert_non_null(strstr(buf, "lock-order inversion"));
  assert_non_null(strstr(buf, "\"env.a\""));
}

CONC_TEST_MAIN(
    cmocka_unit_test_setup(test_opposite_orders_report_an_inversion, setup),
    cmocka_unit_test_setup(test_three_lock_cycle_is_reported, setup),
    cmocka_unit_test_setup(test_inversion_across_threads_is_reported, setup),
    cmocka_unit_test_setup(test_inversion_deep_in_the_stack_is_reported, setup),
    cmocka_unit_test_setup(test_consistent_order_million_acquisitions_no_report,
                           setup),
    cmocka_unit_test_setup(test_trylock_adds_no_edge, setup),
    cmocka_unit_test_setup(test_timed_acquire_adds_no_edge, setup),
    cmocka_unit_test_setup(test_lock_taken_after_a_trylock_orders_after_it,
                           setup),
    cmocka_unit_test_setup(test_rlock_recursion_adds_no_edge, setup),
    cmocka_unit_test_setup(test_release_by_another_thread_forgets_the_hold,
                           setup),
    cmocka_unit_test_setup(test_reacquiring_a_held_lock_is_reported, setup),
    cmocka_unit_test_setup(test_releasing_another_threads_rlock_is_reported,
                           setup),
    cmocka_unit_test_setup(test_destroying_a_held_lock_is_reported, setup),
    cmocka_unit_test_setup(test_reinitialising_a_held_lock_ends_the_hold,
                           setup),
    cmocka_unit_test_setup(test_condition_wait_holding_another_lock_is_reported,
                           setup),
    cmocka_unit_test_setup(test_loop_callback_blocking_on_a_lock_is_reported,
                           setup),
    cmocka_unit_test_setup(test_async_lock_inversion_is_reported, setup),
    cmocka_unit_test_setup(test_async_lock_waiters_keep_their_own_entries,
                           setup),
    cmocka_unit_test_setup(test_bounded_semaphore_is_ordered_like_a_lock,
                           setup),
    cmocka_unit_test_setup(test_pshared_lock_inversion_is_reported, setup),
    cmocka_unit_test_setup(
        test_forked_child_does_not_hold_the_parents_pshared_lock, setup),
    cmocka_unit_test_setup(test_contention_is_counted_with_its_wait, setup),
    cmocka_unit_test_setup(test_unnamed_locks_take_their_symbol_or_site, setup),
    cmocka_unit_test_setup(test_exit_report_lists_classes_and_edges, setup),
    cmocka_unit_test_setup(test_abort_option_aborts_on_the_report, setup),
    cmocka_unit_test_setup(test_environment_switches_the_checker_on, setup),
    cmocka_unit_test(env_child))
