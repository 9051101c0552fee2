// clang-format off
/*
 * Lesson 39: two locks: the same order everywhere is safe; opposite orders
 * deadlock (shown safely, with timeouts), and the lock-order checker finds
 * the wrong order on a run that does not deadlock.
 * Seed 003 ("Блокировки": func_a and func_b both take lock_a, then lock_b).
 *
 * Python:                          C:
 *   lock_a = threading.Lock()        conc_lock_init(&lock_a, &(conc_lock_opts_t){.name = "lock_a"});
 *   def func_a():                    static int func_a(void *arg, void **result) {
 *       with lock_a:                     CONC_WITH_LOCK(&lock_a) {
 *           with lock_b:                     CONC_WITH_LOCK(&lock_b) {
 *               a = 5; b = 1                     a = 5; b = 1; } }
 *                                        return 0; }
 *   # the wrong way round:
 *   with lock_b:                     CONC_WITH_LOCK(&lock_b) {
 *       lock_a.acquire(timeout=0.2)      rc = conc_lock_acquire_timeout(&lock_a, 0.2);
 *
 * When every thread takes lock_a before lock_b, whoever holds lock_a can
 * always get lock_b: no thread ever waits for one that waits for it. If
 * one thread takes a-then-b and another b-then-a, each can hold its first
 * lock and wait forever for the other's: a deadlock. To show it without
 * hanging, the second acquire gets a timeout, and a Barrier makes sure
 * both threads hold their first lock before either tries its second (and
 * that neither lets go before both have given up). Both time out every
 * time; the cure is to release and retry in the agreed order.
 *
 * A deadlock needs bad timing, so a test run rarely shows it. The lock
 * order shows it every time: the checker (conc/lockdep.h; switched on here
 * by conc_lockdep_enable, for any program by CONC_LOCKDEP=1) remembers that
 * lock_b was taken while lock_a was held, and when a thread later takes
 * lock_a while holding lock_b it reports the inversion, although that
 * thread ran alone and nothing could deadlock. Its full report (threads,
 * backtraces) goes to stderr; this lesson passes it to a sink that prints a
 * one-line summary, which does not change from run to run. The locks are
 * given names, which reports print (unnamed globals would show their
 * symbols).
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_lock_t lock_a, lock_b; /* named in main */
static int a, b;                   /* guarded by lock_a and lock_b together */
static conc_barrier_t both_hold, both_tried;

static int func_a(void *arg, void **result) {
  (void)arg;
  for (int i = 0; i < 10000; i++)
    CONC_WITH_LOCK(&lock_a) {
      CONC_WITH_LOCK(&lock_b) {
        a = 5;
        b = 1;
      }
    }
  return 0;
}

static int func_b(void *arg, void **result) {
  (void)arg;
  for (int i = 0; i < 10000; i++)
    CONC_WITH_LOCK(&lock_a) {
      CONC_WITH_LOCK(&lock_b) {
        b = 2;
        a = 1;
      }
    }
  return 0;
}

typedef struct {
  conc_lock_t *first, *second;
  int rc; /* result of the timed acquire of `second` */
} order_t;

static int take_in_order(void *arg, void **result) {
  order_t *o = arg;
  CONC_WITH_LOCK(o->first) {
    conc_barrier_wait(&both_hold, CONC_FOREVER);
    o->rc = conc_lock_acquire_timeout(o->second, 0.2);
    if (o->rc == 0)
      conc_lock_release(o->second);
    conc_barrier_wait(&both_tried, CONC_FOREVER);
  }
  return 0;
}

/* The wrong order, run by one thread alone: no deadlock can happen. */
static int b_then_a(void *arg, void **result) {
  (void)arg;
  (void)result;
  CONC_WITH_LOCK(&lock_b) {
    CONC_WITH_LOCK(&lock_a) {
      b = 2;
      a = 1;
    }
  }
  return 0;
}

static void summary(const conc_lockdep_report_t *r, void *user) {
  (void)user;
  fputs(r->text, stderr);
  printf("  lockdep: %s: thread \"%s\" takes \"%s\" while it holds \"%s\"\n",
         r->title, r->thread, r->lock, r->other ? r->other : "");
}

static void run_pair(conc_fn_t f1, void *a1, conc_fn_t f2, void *a2) {
  conc_thread_t t1, t2;
  conc_thread_init(&t1, f1, a1, NULL);
  conc_thread_init(&t2, f2, a2, NULL);
  conc_thread_start(&t1);
  conc_thread_start(&t2);
  conc_thread_join(&t1, CONC_FOREVER);
  conc_thread_join(&t2, CONC_FOREVER);
  conc_thread_destroy(&t1);
  conc_thread_destroy(&t2);
}

int main(void) {
  conc_lockdep_enable(CONC_LOCKDEP_ON);
  conc_lockdep_set_sink(summary, NULL);
  conc_lock_init(&lock_a, &(conc_lock_opts_t){.name = "lock_a"});
  conc_lock_init(&lock_b, &(conc_lock_opts_t){.name = "lock_b"});

  run_pair(func_a, NULL, func_b, NULL);
  printf("same order (a then b), 10000 times each: both threads finished, "
         "(a, b) is (5, 1) or (1, 2): %s\n",
         (a == 5 && b == 1) || (a == 1 && b == 2) ? "yes" : "no");

  conc_barrier_init(&both_hold, 2, NULL);
  conc_barrier_init(&both_tried, 2, NULL);
  order_t x = {&lock_a, &lock_b, 0}, y = {&lock_b, &lock_a, 0};
  run_pair(take_in_order, &x, take_in_order, &y);
  printf("opposite orders:\n");
  printf("  thread 1 holds lock_a, acquire(lock_b, timeout=0.2): %s\n",
         conc_err_name(x.rc));
  printf("  thread 2 holds lock_b, acquire(lock_a, timeout=0.2): %s\n",
         conc_err_name(y.rc));
  printf("  without the timeouts both would wait forever: a deadlock\n");

  /* The cure: both take a before b. */
  y.first = &lock_a;
  y.second = &lock_b;
  conc_barrier_destroy(&both_hold);
  conc_barrier_init(&both_hold, 1, NULL); /* now one holds a, the other waits */
  conc_barrier_destroy(&both_tried);
  conc_barrier_init(&both_tried, 1, NULL);
  run_pair(take_in_order, &x, take_in_order, &y);
  printf("same order again: %s, %s\n", x.rc == 0 ? "ok" : conc_err_name(x.rc),
         y.rc == 0 ? "ok" : conc_err_name(y.rc));
  conc_barrier_destroy(&both_hold);
  conc_barrier_destroy(&both_tried);

  /* Timed acquisitions (above) cannot wait for ever, so the checker
   * learnt no order from them; func_a and func_b taught it a-then-b. */
  printf("the lock-order checker, one thread taking b then a, alone:\n");
  conc_thread_t t;
  conc_thread_init(&t, b_then_a, NULL, &(conc_thread_opts_t){.name = "b-a"});
  conc_thread_start(&t);
  conc_thread_join(&t, CONC_FOREVER);
  conc_thread_destroy(&t);
  printf("  %lu report, and this run did not deadlock: the next one could\n",
         conc_lockdep_reports(CONC_LOCKDEP_CYCLE));
  conc_lock_destroy(&lock_a);
  conc_lock_destroy(&lock_b);
  return 0;
}
