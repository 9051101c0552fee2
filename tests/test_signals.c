/*
 * Signals and blocking waits (docs/design.md "Signals"): a handler that
 * calls conc_interrupt() ends the blocking call of the thread it runs on with
 * CONC_EINTR; a handler that does not leaves the call to its own end (PEP
 * 475); the object stays usable and no wake-up is lost.
 *
 * Each blocking call is a `struct op`: a runner thread makes the call while
 * the test signals it with pthread_kill. The interrupt request is kept until
 * a wait takes it, so the outcome does not depend on whether the signal came
 * before or during the sleep; the test still waits until the runner sleeps
 * in the kernel, so that the usual path (a sleeping wait) is the one taken.
 */
#include "proc_harness.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/pool.h"
#include "conc/pqueue.h"
#include "conc/process.h"
#include "conc/queue.h"
#include "conc/sync.h"
#include "conc/thread.h"
#include "conc/time.h"

#define SIG_INTR SIGUSR1  /* its handler calls conc_interrupt() */
#define SIG_PLAIN SIGUSR2 /* its handler only counts */

static atomic_int plain_seen;

static void on_intr(int signo) {
  (void)signo;
  conc_interrupt();
}

static void on_plain(int signo) {
  (void)signo;
  atomic_fetch_add(&plain_seen, 1);
}

static void install(int signo, void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = flags;
  assert_int_equal(sigaction(signo, &sa, NULL), 0);
}

/* ------------------------------------------------------------ a runner */

struct runner {
  int (*call)(void *ctx, double timeout);
  void *ctx;
  double timeout;
  pthread_t th;
  atomic_int tid;
  atomic_int done;
  int rc;
  double elapsed;
};

static void *run(void *arg) {
  struct runner *r = arg;
  atomic_store(&r->tid, (int)syscall(SYS_gettid));
  double t0 = conc_monotonic();
  r->rc = r->call(r->ctx, r->timeout);
  r->elapsed = conc_monotonic() - t0;
  atomic_store(&r->done, 1);
  return NULL;
}

/* True once thread `tid` sleeps ('S') in the kernel. */
static bool asleep(int tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  return p && p[1] == ' ' && p[2] == 'S';
}

/* Start the call and let it reach its sleep (5 s at most: the outcome does
 * not depend on it, see the top). */
static void start_runner(struct runner *r) {
  r->th = conc_test_spawn(run, r);
  for (int i = 0; i < 5000 && !atomic_load(&r->done); i++) {
    int tid = atomic_load(&r->tid);
    if (tid && asleep(tid))
      return;
    conc_sleep(0.001);
  }
}

static bool done_within(struct runner *r, double seconds) {
  double end = conc_monotonic() + seconds;
  while (!atomic_load(&r->done) && conc_monotonic() < end)
    conc_sleep(0.002);
  return atomic_load(&r->done);
}

/* ---------------------------------------------- the blocking calls */

struct op {
  void (*setup)(void *ctx);
  int (*call)(void *ctx, double timeout);
  void (*unblock)(void *ctx); /* makes the call end normally */
  void (*check)(void *ctx);   /* after an interrupt: still usable? */
  void (*teardown)(void *ctx);
  int timeout_rc;     /* what the call returns when its timeout passes */
  double max_timeout; /* 0: CONC_FOREVER is accepted */
};

union objs {
  conc_event_t event;
  conc_lock_t lock;
  conc_rlock_t rlock;
  conc_semaphore_t sem;
  conc_barrier_t barrier;
  conc_queue_t queue;
  conc_simple_queue_t squeue;
  conc_pqueue_t pqueue;
  struct {
    conc_condition_t cond;
    atomic_int held_after; /* the lock was held when wait returned */
  } c;
  conc_future_t *future;
  struct {
    conc_thread_t thread;
    conc_event_t go;
  } t;
  conc_process_t process;
  struct {
    conc_pool_t pool;
    conc_async_result_t *res;
    conc_imap_t *it;
  } p;
};

static union objs obj;

/* sleep */
static void nothing(void *ctx) { (void)ctx; }
static int call_sleep(void *ctx, double t) {
  (void)ctx;
  return conc_sleep(t);
}

/* Event.wait */
static void event_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_event_init(&obj.event, NULL), 0);
}
static int event_call(void *ctx, double t) {
  (void)ctx;
  return conc_event_wait(&obj.event, t);
}
static void event_unblock(void *ctx) {
  (void)ctx;
  conc_event_set(&obj.event);
}
static void event_check(void *ctx) {
  (void)ctx;
  conc_event_set(&obj.event);
  assert_int_equal(conc_event_wait(&obj.event, 1), 0);
}

/* Lock.acquire (held by the test) */
static void lock_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_lock_init(&obj.lock, NULL), 0);
  assert_int_equal(conc_lock_acquire(&obj.lock), 0);
}
static int lock_call(void *ctx, double t) {
  (void)ctx;
  int rc = conc_lock_acquire_timeout(&obj.lock, t);
  if (rc == 0)
    conc_lock_release(&obj.lock);
  return rc;
}
static void lock_unblock(void *ctx) {
  (void)ctx;
  conc_lock_release(&obj.lock);
}
static void lock_check(void *ctx) {
  (void)ctx;
  assert_true(conc_lock_locked(&obj.lock));
  assert_int_equal(conc_lock_release(&obj.lock), 0);
  assert_int_equal(conc_lock_acquire_timeout(&obj.lock, 1), 0);
  assert_int_equal(conc_lock_release(&obj.lock), 0);
}

/* RLock.acquire (held by the test) */
static void rlock_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_rlock_init(&obj.rlock, NULL), 0);
  assert_int_equal(conc_rlock_acquire(&obj.rlock), 0);
}
static int rlock_call(void *ctx, double t) {
  (void)ctx;
  int rc = conc_rlock_acquire_timeout(&obj.rlock, t);
  if (rc == 0)
    conc_rlock_release(&obj.rlock);
  return rc;
}
static void rlock_unblock(void *ctx) {
  (void)ctx;
  conc_rlock_release(&obj.rlock);
}
static void rlock_check(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_rlock_release(&obj.rlock), 0);
  assert_int_equal(conc_rlock_acquire_timeout(&obj.rlock, 1), 0);
  assert_int_equal(conc_rlock_release(&obj.rlock), 0);
}

/* Semaphore.acquire (value 0) */
static void sem_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_semaphore_init(&obj.sem, 0, NULL), 0);
}
static int sem_call(void *ctx, double t) {
  (void)ctx;
  return conc_semaphore_acquire_timeout(&obj.sem, t);
}
static void sem_unblock(void *ctx) {
  (void)ctx;
  conc_semaphore_release(&obj.sem, 1);
}
static void sem_check(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_semaphore_get_value(&obj.sem), 0);
  assert_int_equal(conc_semaphore_release(&obj.sem, 1), 0);
  assert_int_equal(conc_semaphore_get_value(&obj.sem), 1);
}

/* Condition.wait: returns holding the lock, whatever ended it */
static void cond_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_condition_init(&obj.c.cond, NULL), 0);
  atomic_store(&obj.c.held_after, 0);
}
static int cond_call(void *ctx, double t) {
  (void)ctx;
  assert_int_equal(conc_condition_acquire(&obj.c.cond), 0);
  int rc = conc_condition_wait(&obj.c.cond, t);
  atomic_store(&obj.c.held_after, conc_condition_release(&obj.c.cond) == 0);
  return rc;
}
static void cond_unblock(void *ctx) {
  (void)ctx;
  conc_condition_acquire(&obj.c.cond);
  conc_condition_notify_all(&obj.c.cond);
  conc_condition_release(&obj.c.cond);
}
static void cond_check(void *ctx) {
  (void)ctx;
  assert_true(atomic_load(&obj.c.held_after));
  char buf[128];
  conc_condition_repr(&obj.c.cond, buf, sizeof buf);
  assert_non_null(strstr(buf, ", 0)>")); /* no waiter left behind */
}

/* Barrier.wait (2 parties, one comes) */
static void barrier_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_barrier_init(&obj.barrier, 2, NULL), 0);
}
static int barrier_call(void *ctx, double t) {
  (void)ctx;
  return conc_barrier_wait(&obj.barrier, t);
}
static void barrier_unblock(void *ctx) {
  (void)ctx;
  conc_barrier_abort(&obj.barrier);
}
static void barrier_check(void *ctx) {
  (void)ctx;
  assert_true(conc_barrier_broken(&obj.barrier)); /* Python breaks it */
  assert_int_equal(conc_barrier_reset(&obj.barrier), 0);
  assert_int_equal(conc_barrier_n_waiting(&obj.barrier), 0);
}

/* Queue.get (empty) */
static void queue_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(
      conc_queue_init(&obj.queue, &(conc_queue_opts_t){.maxsize = 1}), 0);
}
static int qget_call(void *ctx, double t) {
  (void)ctx;
  void *item;
  return conc_queue_get(&obj.queue, &item, true, t);
}
static void qget_unblock(void *ctx) {
  (void)ctx;
  conc_queue_put_nowait(&obj.queue, &obj);
}
static void qget_check(void *ctx) {
  (void)ctx;
  void *item = NULL;
  assert_int_equal(conc_queue_put_nowait(&obj.queue, &obj), 0);
  assert_int_equal(conc_queue_get(&obj.queue, &item, true, 1), 0);
  assert_ptr_equal(item, &obj);
}
static void queue_teardown(void *ctx) {
  (void)ctx;
  conc_queue_destroy(&obj.queue);
}

/* Queue.put (full) */
static void qfull_setup(void *ctx) {
  queue_setup(ctx);
  assert_int_equal(conc_queue_put_nowait(&obj.queue, &obj), 0);
}
static int qput_call(void *ctx, double t) {
  (void)ctx;
  return conc_queue_put(&obj.queue, &obj, true, t);
}
static void qput_unblock(void *ctx) {
  (void)ctx;
  void *item;
  conc_queue_get_nowait(&obj.queue, &item);
}
static void qput_check(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_queue_qsize(&obj.queue), 1);
}

/* Queue.join (one task unfinished) */
static int qjoin_call(void *ctx, double t) {
  (void)ctx;
  return conc_queue_join(&obj.queue, t);
}
static void qjoin_unblock(void *ctx) {
  (void)ctx;
  conc_queue_task_done(&obj.queue);
}

/* SimpleQueue.get (empty) */
static void squeue_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_simple_queue_init(&obj.squeue, NULL), 0);
}
static int squeue_call(void *ctx, double t) {
  (void)ctx;
  void *item;
  return conc_simple_queue_get(&obj.squeue, &item, true, t);
}
static void squeue_unblock(void *ctx) {
  (void)ctx;
  conc_simple_queue_put(&obj.squeue, &obj);
}
static void squeue_check(void *ctx) {
  (void)ctx;
  void *item = NULL;
  assert_int_equal(conc_simple_queue_put(&obj.squeue, &obj), 0);
  assert_int_equal(conc_simple_queue_get(&obj.squeue, &item, true, 1), 0);
  assert_ptr_equal(item, &obj);
}
static void squeue_teardown(void *ctx) {
  (void)ctx;
  conc_simple_queue_destroy(&obj.squeue);
}

/* Future.result / exception / wait / as_completed (a pending future) */
static void future_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_future_new(&obj.future), 0);
}
static int fresult_call(void *ctx, double t) {
  (void)ctx;
  void *v;
  return conc_future_result(obj.future, t, &v);
}
static int fexception_call(void *ctx, double t) {
  (void)ctx;
  conc_future_error_t err;
  return conc_future_exception(obj.future, t, &err);
}
static int fwait_call(void *ctx, double t) {
  (void)ctx;
  conc_future_t *done[1], *not_done[1];
  conc_wait_result_t res = {done, 0, not_done, 0};
  return conc_futures_wait(&obj.future, 1, t, CONC_FIRST_COMPLETED, &res);
}
static int fcompleted_call(void *ctx, double t) {
  (void)ctx;
  conc_as_completed_t it;
  assert_int_equal(conc_as_completed_init(&it, &obj.future, 1, t), 0);
  conc_future_t *f;
  int rc = conc_as_completed_next(&it, &f);
  conc_as_completed_destroy(&it);
  return rc;
}
static void future_unblock(void *ctx) {
  (void)ctx;
  conc_future_set_result(obj.future, &obj);
}
static void future_check(void *ctx) {
  (void)ctx;
  void *v = NULL;
  assert_false(conc_future_done(obj.future));
  assert_int_equal(conc_future_set_result(obj.future, &obj), 0);
  assert_int_equal(conc_future_result(obj.future, 1, &v), 0);
  assert_ptr_equal(v, &obj);
}
static void future_teardown(void *ctx) {
  (void)ctx;
  conc_future_release(obj.future);
}

/* Thread.join (a thread that waits for `go`) */
static int thread_body(void *arg, void **result) {
  (void)result;
  return conc_event_wait(arg, CONC_FOREVER);
}
static void thread_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_event_init(&obj.t.go, NULL), 0);
  assert_int_equal(
      conc_thread_init(&obj.t.thread, thread_body, &obj.t.go, NULL), 0);
  assert_int_equal(conc_thread_start(&obj.t.thread), 0);
}
static int thread_call(void *ctx, double t) {
  (void)ctx;
  return conc_thread_join(&obj.t.thread, t);
}
static void thread_unblock(void *ctx) {
  (void)ctx;
  conc_event_set(&obj.t.go);
}
static void thread_check(void *ctx) {
  (void)ctx;
  assert_true(conc_thread_is_alive(&obj.t.thread));
}
static void thread_teardown(void *ctx) {
  (void)ctx;
  conc_event_set(&obj.t.go);
  assert_int_equal(conc_thread_join(&obj.t.thread, CONC_FOREVER), 0);
  conc_thread_destroy(&obj.t.thread);
}

/* Process.join (a child that sleeps until terminated) */
static int child_body(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_sleep(60);
  return 0;
}
static void process_setup(void *ctx) {
  (void)ctx;
  start(&obj.process, child_body, NULL);
}
static int process_call(void *ctx, double t) {
  (void)ctx;
  return conc_process_join(&obj.process, t);
}
static void process_unblock(void *ctx) {
  (void)ctx;
  conc_process_terminate(&obj.process);
}
static void process_check(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_process_is_alive(&obj.process), 1);
}
static void process_teardown(void *ctx) {
  (void)ctx;
  conc_process_terminate(&obj.process);
  finish(&obj.process);
}

/* multiprocessing Queue get (empty) / put (full) */
static void pqueue_setup(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_pqueue_init(&obj.pqueue, 1, NULL), 0);
}
static void pqueue_full_setup(void *ctx) {
  pqueue_setup(ctx);
  assert_int_equal(conc_pqueue_put_nowait(&obj.pqueue, "x", 1), 0);
}
static int pget_call(void *ctx, double t) {
  (void)ctx;
  void *item = NULL;
  size_t len;
  int rc = conc_pqueue_get(&obj.pqueue, &item, &len, true, t);
  free(item);
  return rc;
}
static int pput_call(void *ctx, double t) {
  (void)ctx;
  return conc_pqueue_put(&obj.pqueue, "y", 1, true, t);
}
static void pget_unblock(void *ctx) {
  (void)ctx;
  conc_pqueue_put_nowait(&obj.pqueue, "x", 1);
}
static void pput_unblock(void *ctx) {
  (void)ctx;
  void *item = NULL;
  size_t len;
  if (conc_pqueue_get_nowait(&obj.pqueue, &item, &len) == 0)
    free(item);
}
static void pget_check(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_pqueue_qsize(&obj.pqueue), 0);
  assert_int_equal(conc_pqueue_put_nowait(&obj.pqueue, "z", 1), 0);
  assert_int_equal(pget_call(ctx, 1), 0);
}
static void pput_check(void *ctx) {
  (void)ctx;
  assert_int_equal(conc_pqueue_qsize(&obj.pqueue), 1);
}
static void pqueue_teardown(void *ctx) {
  (void)ctx;
  conc_pqueue_destroy(&obj.pqueue);
}

/* Pool AsyncResult.get and IMapIterator.next: the task takes 1.5 s, longer
 * than the plain-signal test's timeout, and then ends by itself. */
static int slow_square(const void *arg, size_t len, void *res, size_t cap,
                       size_t *rlen) {
  (void)len;
  (void)cap;
  conc_sleep(1.5);
  int x = *(const int *)arg * *(const int *)arg;
  memcpy(res, &x, sizeof x);
  *rlen = sizeof x;
  return 0;
}
static void pool_setup(void *ctx) {
  (void)ctx;
  static const int seven = 7;
  assert_int_equal(
      conc_pool_init(&obj.p.pool, &(conc_pool_opts_t){.processes = 1}), 0);
  assert_int_equal(conc_pool_apply_async(&obj.p.pool, slow_square, &seven,
                                         sizeof seven, sizeof(int), NULL,
                                         &obj.p.res),
                   0);
}
static int pget_pool_call(void *ctx, double t) {
  (void)ctx;
  int v;
  return conc_async_result_get(obj.p.res, t, &v, sizeof v);
}
static void pool_check(void *ctx) {
  (void)ctx;
  int v = 0;
  assert_int_equal(conc_async_result_get(obj.p.res, CONC_FOREVER, &v, sizeof v),
                   0);
  assert_int_equal(v, 49);
}
static void pool_teardown(void *ctx) {
  (void)ctx;
  conc_async_result_release(obj.p.res);
  conc_pool_destroy(&obj.p.pool);
}
static void imap_setup(void *ctx) {
  (void)ctx;
  static const int in[1] = {7};
  assert_int_equal(
      conc_pool_init(&obj.p.pool, &(conc_pool_opts_t){.processes = 1}), 0);
  assert_int_equal(conc_pool_imap(&obj.p.pool, slow_square, in, 1, sizeof *in,
                                  sizeof(int), 1, &obj.p.it),
                   0);
}
static int imap_call(void *ctx, double t) {
  (void)ctx;
  int v;
  return conc_imap_next(obj.p.it, t, &v, NULL);
}
static void imap_check(void *ctx) {
  (void)ctx;
  int v = 0;
  assert_int_equal(conc_imap_next(obj.p.it, CONC_FOREVER, &v, NULL), 0);
  assert_int_equal(v, 49);
  assert_int_equal(conc_imap_next(obj.p.it, CONC_FOREVER, &v, NULL), CONC_EEOF);
}
static void imap_teardown(void *ctx) {
  (void)ctx;
  conc_imap_release(obj.p.it);
  conc_pool_destroy(&obj.p.pool);
}

/* clang-format off */
static const struct op op_sleep = {nothing, call_sleep, nothing, nothing, nothing, 0, 20};
static const struct op op_event = {event_setup, event_call, event_unblock, event_check, nothing, CONC_ETIMEDOUT, 0};
static const struct op op_lock = {lock_setup, lock_call, lock_unblock, lock_check, nothing, CONC_ETIMEDOUT, 0};
static const struct op op_rlock = {rlock_setup, rlock_call, rlock_unblock, rlock_check, nothing, CONC_ETIMEDOUT, 0};
static const struct op op_sem = {sem_setup, sem_call, sem_unblock, sem_check, nothing, CONC_ETIMEDOUT, 0};
static const struct op op_cond = {cond_setup, cond_call, cond_unblock, cond_check, nothing, CONC_ETIMEDOUT, 0};
static const struct op op_barrier = {barrier_setup, barrier_call, barrier_unblock, barrier_check, nothing, CONC_EBROKEN, 0};
static const struct op op_qget = {queue_setup, qget_call, qget_unblock, qget_check, queue_teardown, CONC_EEMPTY, 0};
static const struct op op_qput = {qfull_setup, qput_call, qput_unblock, qput_check, queue_teardown, CONC_EFULL, 0};
static const struct op op_qjoin = {qfull_setup, qjoin_call, qjoin_unblock, qput_check, queue_teardown, CONC_ETIMEDOUT, 0};
static const struct op op_squeue = {squeue_setup, squeue_call, squeue_unblock, squeue_check, squeue_teardown, CONC_EEMPTY, 0};
static const struct op op_fresult = {future_setup, fresult_call, future_unblock, future_check, future_teardown, CONC_ETIMEDOUT, 0};
static const struct op op_fexception = {future_setup, fexception_call, future_unblock, future_check, future_teardown, CONC_ETIMEDOUT, 0};
static const struct op op_fwait = {future_setup, fwait_call, future_unblock, future_check, future_teardown, 0, 0};
static const struct op op_fcompleted = {future_setup, fcompleted_call, future_unblock, future_check, future_teardown, CONC_ETIMEDOUT, 0};
static const struct op op_thread = {thread_setup, thread_call, thread_unblock, thread_check, thread_teardown, CONC_ETIMEDOUT, 0};
static const struct op op_process = {process_setup, process_call, process_unblock, process_check, process_teardown, CONC_ETIMEDOUT, 0};
static const struct op op_pget = {pqueue_setup, pget_call, pget_unblock, pget_check, pqueue_teardown, CONC_EEMPTY, 0};
static const struct op op_pput = {pqueue_full_setup, pput_call, pput_unblock, pput_check, pqueue_teardown, CONC_EFULL, 0};
static const struct op op_pool_get = {pool_setup, pget_pool_call, nothing, pool_check, pool_teardown, CONC_ETIMEDOUT, 0};
static const struct op op_imap_next = {imap_setup, imap_call, nothing, imap_check, imap_teardown, CONC_ETIMEDOUT, 0};
/* clang-format on */

/* ------------------------------------------------------- the two tests */

/* A handler that calls conc_interrupt() ends the call with CONC_EINTR at
 * once, and the object can still be used. */
static void interrupt_ends_the_call(void **state) {
  const struct op *op = *state;
  op->setup(NULL);
  struct runner r = {.call = op->call,
                     .timeout =
                         op->max_timeout ? op->max_timeout : CONC_FOREVER};
  start_runner(&r);
  assert_int_equal(pthread_kill(r.th, SIG_INTR), 0);
  bool ended = done_within(&r, 10);
  if (!ended)
    op->unblock(NULL); /* let the runner go so that the test can fail */
  conc_test_join(r.th);
  assert_true(ended);
  assert_int_equal(r.rc, CONC_EINTR);
  assert_true(r.elapsed < 5);
  assert_int_equal(conc_interrupt_clear(), 0); /* the test thread's own */
  op->check(NULL);
  op->teardown(NULL);
}

/* A handler that does not call conc_interrupt() leaves the call to run to
 * its timeout (PEP 475: the wait resumes with the time left). */
static void plain_signal_leaves_the_call_to_its_timeout(void **state) {
  const struct op *op = *state;
  /* On a loaded machine (or under TSan, which runs a handler late) no
   * signal may have reached the runner before its timeout, or the runner
   * may have lost its core for longer than the slack: such a round proves
   * nothing, so it is run again with a longer timeout. Every round must
   * end with the timeout's code and no sooner than its timeout; one round
   * must be reached by a signal and end within the slack. */
  bool reached = false, in_time = false;
  for (double t = 0.3; !(reached && in_time) && t < 10; t *= 2) {
    op->setup(NULL);
    int seen = atomic_load(&plain_seen);
    struct runner r = {.call = op->call, .timeout = t};
    start_runner(&r);
    for (int i = 0; i < 3 && !atomic_load(&r.done); i++) {
      pthread_kill(r.th, SIG_PLAIN);
      conc_sleep(0.05);
    }
    conc_test_join(r.th);
    assert_int_equal(r.rc, op->timeout_rc);
    assert_true(r.elapsed >= t - 1e-4);
    in_time = r.elapsed <= t + conc_test_slack(t);
    reached = atomic_load(&plain_seen) > seen;
    op->teardown(NULL);
  }
  assert_true(reached);
  assert_true(in_time);
}

/* -------------------------------------------------- the finer points */

/* Two threads wait on an empty semaphore; one is interrupted. The unit
 * released afterwards goes to the other: nothing was lost or counted twice. */
static void
interrupted_semaphore_waiter_leaves_the_unit_to_the_next(void **state) {
  (void)state;
  sem_setup(NULL);
  struct runner a = {.call = sem_call, .timeout = CONC_FOREVER};
  struct runner b = {.call = sem_call, .timeout = CONC_FOREVER};
  start_runner(&a);
  start_runner(&b);
  pthread_kill(a.th, SIG_INTR);
  assert_true(done_within(&a, 10));
  conc_test_join(a.th);
  assert_int_equal(a.rc, CONC_EINTR);
  assert_int_equal(conc_semaphore_release(&obj.sem, 1), 0);
  bool ended = done_within(&b, 10);
  if (!ended)
    conc_semaphore_release(&obj.sem, 1);
  conc_test_join(b.th);
  assert_true(ended);
  assert_int_equal(b.rc, 0);
  assert_int_equal(conc_semaphore_get_value(&obj.sem), 0);
}

/* Two threads wait for a held lock; one is interrupted; the release then
 * hands the lock to the other. */
static void interrupted_lock_waiter_leaves_the_lock_to_the_next(void **state) {
  (void)state;
  lock_setup(NULL);
  struct runner a = {.call = lock_call, .timeout = CONC_FOREVER};
  struct runner b = {.call = lock_call, .timeout = CONC_FOREVER};
  start_runner(&a);
  start_runner(&b);
  pthread_kill(a.th, SIG_INTR);
  assert_true(done_within(&a, 10));
  conc_test_join(a.th);
  assert_int_equal(a.rc, CONC_EINTR);
  assert_int_equal(conc_lock_release(&obj.lock), 0);
  assert_true(done_within(&b, 10));
  conc_test_join(b.th);
  assert_int_equal(b.rc, 0);
  assert_false(conc_lock_locked(&obj.lock));
}

/* Two threads wait on a Condition; one is interrupted (it returns holding
 * the lock); notify(1) then wakes the other, not the one that left. */
static void notify_after_an_interrupt_wakes_the_remaining_waiter(void **state) {
  (void)state;
  cond_setup(NULL);
  struct runner a = {.call = cond_call, .timeout = CONC_FOREVER};
  struct runner b = {.call = cond_call, .timeout = 30};
  start_runner(&a);
  start_runner(&b);
  pthread_kill(a.th, SIG_INTR);
  assert_true(done_within(&a, 10));
  conc_test_join(a.th);
  assert_int_equal(a.rc, CONC_EINTR);
  assert_true(atomic_load(&obj.c.held_after));
  assert_int_equal(conc_condition_acquire(&obj.c.cond), 0);
  assert_int_equal(conc_condition_notify(&obj.c.cond, 1), 0);
  assert_int_equal(conc_condition_release(&obj.c.cond), 0);
  assert_true(done_within(&b, 10));
  conc_test_join(b.th);
  assert_int_equal(b.rc, 0);
  assert_true(b.elapsed < 10);
}

/* Two threads wait on an empty Queue; one is interrupted; the item put
 * afterwards reaches the other. */
static void interrupted_getter_leaves_the_item_to_the_next(void **state) {
  (void)state;
  queue_setup(NULL);
  struct runner a = {.call = qget_call, .timeout = CONC_FOREVER};
  struct runner b = {.call = qget_call, .timeout = 30};
  start_runner(&a);
  start_runner(&b);
  pthread_kill(a.th, SIG_INTR);
  assert_true(done_within(&a, 10));
  conc_test_join(a.th);
  assert_int_equal(a.rc, CONC_EINTR);
  assert_int_equal(conc_queue_put_nowait(&obj.queue, &obj), 0);
  assert_true(done_within(&b, 10));
  conc_test_join(b.th);
  assert_int_equal(b.rc, 0);
  assert_int_equal(conc_queue_qsize(&obj.queue), 0);
  queue_teardown(NULL);
}

/* Python: an exception in Barrier.wait breaks the barrier; the other
 * parties get BrokenBarrierError. */
static void interrupted_barrier_wait_breaks_it_for_the_others(void **state) {
  (void)state;
  assert_int_equal(conc_barrier_init(&obj.barrier, 3, NULL), 0);
  struct runner a = {.call = barrier_call, .timeout = CONC_FOREVER};
  struct runner b = {.call = barrier_call, .timeout = 30};
  start_runner(&a);
  start_runner(&b);
  pthread_kill(a.th, SIG_INTR);
  assert_true(done_within(&a, 10));
  assert_true(done_within(&b, 10));
  conc_test_join(a.th);
  conc_test_join(b.th);
  assert_int_equal(a.rc, CONC_EINTR);
  assert_int_equal(b.rc, CONC_EBROKEN);
  assert_true(conc_barrier_broken(&obj.barrier));
}

/* Pool.join (no timeout, so outside the op table): a closed pool whose
 * worker still runs a 1.5 s task; the interrupted join returns CONC_EINTR
 * before the task ends, and a second join waits for the pool's end. */
static int pool_join_call(void *ctx, double t) {
  (void)ctx;
  (void)t;
  return conc_pool_join(&obj.p.pool);
}
static void pool_join_returns_eintr_on_conc_interrupt(void **state) {
  (void)state;
  pool_setup(NULL);
  assert_int_equal(conc_pool_close(&obj.p.pool), 0);
  struct runner r = {.call = pool_join_call, .timeout = CONC_FOREVER};
  start_runner(&r);
  assert_int_equal(pthread_kill(r.th, SIG_INTR), 0);
  bool ended = done_within(&r, 10);
  conc_test_join(r.th);
  assert_true(ended);
  assert_int_equal(r.rc, CONC_EINTR);
  assert_false(conc_async_result_ready(obj.p.res)); /* before the task ended */
  assert_int_equal(conc_interrupt_clear(), 0);
  assert_int_equal(conc_pool_join(&obj.p.pool), 0);
  pool_check(NULL);
  pool_teardown(NULL);
}

/* A request made outside any wait ends the next one at once, then is spent;
 * a ready object wins over it; conc_interrupt_clear drops it. */
static void a_pending_request_ends_the_next_wait_once(void **state) {
  (void)state;
  event_setup(NULL);
  conc_interrupt();
  double t0 = conc_monotonic();
  assert_int_equal(conc_event_wait(&obj.event, 5), CONC_EINTR);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(conc_event_wait(&obj.event, 0.01), CONC_ETIMEDOUT);
  assert_int_equal(conc_sleep(0.01), 0);

  conc_event_set(&obj.event);
  conc_interrupt();
  assert_int_equal(conc_event_wait(&obj.event, 5), 0); /* ready: wins */
  assert_int_equal(conc_interrupt_clear(), 1);
  assert_int_equal(conc_interrupt_clear(), 0);
  assert_int_equal(conc_sleep(0.01), 0);
}

/* conc_signal_interrupts: the handler interrupts the thread that installed
 * it, whichever thread the signal is delivered to. */
static int install_and_wait(void *ctx, double t) {
  (void)ctx;
  assert_int_equal(conc_signal_interrupts(SIG_INTR), 0);
  atomic_store(&obj.c.held_after, 1); /* installed */
  return conc_event_wait(&obj.event, t);
}

static void
signal_interrupts_reach_the_thread_that_installed_them(void **state) {
  (void)state;
  event_setup(NULL);
  atomic_store(&obj.c.held_after, 0);
  struct runner r = {.call = install_and_wait, .timeout = CONC_FOREVER};
  start_runner(&r);
  while (!atomic_load(&obj.c.held_after))
    conc_sleep(0.001);
  /* delivered to this thread, which is not waiting: passed on */
  assert_int_equal(pthread_kill(pthread_self(), SIG_INTR), 0);
  bool ended = done_within(&r, 10);
  if (!ended)
    conc_event_set(&obj.event);
  conc_test_join(r.th);
  install(SIG_INTR, on_intr, 0);
  assert_true(ended);
  assert_int_equal(r.rc, CONC_EINTR);
  assert_int_equal(conc_interrupt_clear(), 0); /* not this thread's */
  assert_int_equal(conc_signal_interrupts(0), CONC_EINVAL);
  assert_int_equal(conc_signal_interrupts(SIGKILL), CONC_EINVAL);
}

/* A handler installed with SA_RESTART is no different: a plain one still
 * leaves the wait to its timeout, an interrupting one still ends it. */
static void restarting_handlers_behave_the_same(void **state) {
  (void)state;
  install(SIG_PLAIN, on_plain, SA_RESTART);
  install(SIG_INTR, on_intr, SA_RESTART);
  void *st = (void *)&op_event;
  plain_signal_leaves_the_call_to_its_timeout(&st);
  interrupt_ends_the_call(&st);
  st = (void *)&op_sleep;
  plain_signal_leaves_the_call_to_its_timeout(&st);
  interrupt_ends_the_call(&st);
  install(SIG_PLAIN, on_plain, 0);
  install(SIG_INTR, on_intr, 0);
}

static int group_setup(void **state) {
  (void)state;
  install(SIG_INTR, on_intr, 0);
  install(SIG_PLAIN, on_plain, 0);
  conc_interrupt_clear(); /* the program uses interrupts (see time.h) */
  return 0;
}

#define OP_TESTS(name, op)                                                     \
  {#name "_returns_eintr_on_conc_interrupt", interrupt_ends_the_call, NULL,    \
   NULL, (void *)&(op)},                                                       \
  {                                                                            \
#name "_runs_to_its_timeout_through_a_plain_signal",                       \
        plain_signal_leaves_the_call_to_its_timeout, NULL, NULL, (void *)&(op) \
  }

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      OP_TESTS(sleep, op_sleep),
      OP_TESTS(event_wait, op_event),
      OP_TESTS(lock_acquire, op_lock),
      OP_TESTS(rlock_acquire, op_rlock),
      OP_TESTS(semaphore_acquire, op_sem),
      OP_TESTS(condition_wait, op_cond),
      OP_TESTS(barrier_wait, op_barrier),
      OP_TESTS(queue_get, op_qget),
      OP_TESTS(queue_put, op_qput),
      OP_TESTS(queue_join, op_qjoin),
      OP_TESTS(simple_queue_get, op_squeue),
      OP_TESTS(future_result, op_fresult),
      OP_TESTS(future_exception, op_fexception),
      OP_TESTS(futures_wait, op_fwait),
      OP_TESTS(as_completed_next, op_fcompleted),
      OP_TESTS(thread_join, op_thread),
      OP_TESTS(process_join, op_process),
      OP_TESTS(pqueue_get, op_pget),
      OP_TESTS(pqueue_put, op_pput),
      OP_TESTS(pool_async_result_get, op_pool_get),
      OP_TESTS(pool_imap_next, op_imap_next),
      cmocka_unit_test(pool_join_returns_eintr_on_conc_interrupt),
      cmocka_unit_test(
          interrupted_semaphore_waiter_leaves_the_unit_to_the_next),
      cmocka_unit_test(interrupted_lock_waiter_leaves_the_lock_to_the_next),
      cmocka_unit_test(notify_after_an_interrupt_wakes_the_remaining_waiter),
      cmocka_unit_test(interrupted_getter_leaves_the_item_to_the_next),
      cmocka_unit_test(interrupted_barrier_wait_breaks_it_for_the_others),
      cmocka_unit_test(a_pending_request_ends_the_next_wait_once),
      cmocka_unit_test(signal_interrupts_reach_the_thread_that_installed_them),
      cmocka_unit_test(restarting_handlers_behave_the_same),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  int failed = cmocka_run_group_tests(tests, group_setup, NULL);
  if (failed) {
    fflush(NULL);
    _exit(1);
  }
  return 0;
}
