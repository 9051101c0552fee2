/*
 * Bad input, table-driven (issue 10, campaign "Bad input"): every row calls
 * one public function of the threading, sync, queue, futures, timer, time
 * and thread-local modules with a NULL, an out-of-range value, NaN, an
 * infinite timeout or an object in the wrong state, and checks the exact
 * code its header promises and that no object changed (queue sizes, lock
 * states, semaphore values, future states, out parameters, ...).
 *
 * Each row runs on a fresh fixture: an optional preparation (which may put
 * an object into the wrong state) runs first, then a snapshot of every
 * observable value is taken, the call is made, and a second snapshot must
 * equal the first. No row blocks: a wait that would block is only given a
 * timeout that polls, or an object on which it returns at once.
 */
#include "harness.h"

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/queue.h"
#include "conc/sync.h"
#include "conc/thread.h"
#include "conc/time.h"
#include "conc/timer.h"

#define X1 ((void *)&fixture_token) /* an item / value that is not NULL */
static int fixture_token;

static int square(void *arg, void **result) {
  *result = arg;
  return 0;
}
static int nothing(void *arg, void **result) {
  *result = arg;
  return 0;
}
static void quiet_cb(conc_future_t *f, void *arg) {
  (void)f;
  (void)arg;
}
static int never(void *arg) {
  (void)arg;
  return 0;
}

/* One of every object, in a known state. */
struct fx {
  conc_deadline_t dl;
  size_t old_stack;
  void *out;
  char buf[8];
  /* threading */
  conc_thread_t th;  /* initialised, not started (target returns at once) */
  conc_thread_t zth; /* all zero: never initialised */
  conc_timer_t tm;   /* initialised, not started */
  conc_timer_t ztm;
  conc_local_t loc;  /* this thread's value is X1 */
  conc_local_t uloc; /* nothing set here */
  conc_local_t zloc; /* never initialised */
  /* queues */
  conc_queue_t q;          /* maxsize 2, one item */
  conc_queue_t fq;         /* maxsize 1, full */
  conc_queue_t eq;         /* maxsize 2, empty */
  conc_queue_t uq;         /* unbounded, one item */
  conc_queue_t zq;         /* never initialised */
  conc_simple_queue_t sq;  /* one item */
  conc_simple_queue_t esq; /* empty */
  conc_simple_queue_t zsq; /* never initialised */
  /* sync */
  conc_lock_t lock;   /* unlocked */
  conc_lock_t plock;  /* pshared-capable test lock: private, unlocked */
  conc_rlock_t rlock; /* unlocked */
  conc_condition_t cond;
  conc_condition_t zcond;        /* target of failing inits */
  bool cond_held;                /* a preparation acquired cond */
  conc_semaphore_t sem;          /* value 1 */
  conc_semaphore_t sem0;         /* value 0 */
  conc_semaphore_t zsem;         /* target of failing inits */
  conc_bounded_semaphore_t bsem; /* value 1 of 1 */
  conc_event_t ev;               /* clear */
  conc_barrier_t bar;            /* 2 parties */
  conc_barrier_t zbar;           /* target of failing inits */
  /* futures */
  conc_future_t *pend, *run, *done, *failed, *canc;
  conc_future_t *fs_null[2]; /* {pend, NULL} */
  conc_future_t *fo;         /* out parameter of submit */
  conc_future_error_t err;
  conc_wait_result_t res;
  conc_as_completed_t ac, zac;
  conc_map_t m, zm;
  conc_executor_t ex;  /* no worker started yet */
  conc_executor_t zex; /* never initialised */
  void *inputs[2];
};

static struct fx *fx_new(void) {
  struct fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  f->dl = 12345;
  f->old_stack = 777;
  f->out = X1;
  memcpy(f->buf, "abcdefg", 8);
  assert_int_equal(conc_thread_init(&f->th, NULL, NULL, NULL), 0);
  assert_int_equal(conc_timer_init(&f->tm, 0, nothing, NULL, NULL), 0);
  assert_int_equal(conc_local_init(&f->loc, NULL), 0);
  assert_int_equal(conc_local_set(&f->loc, X1), 0);
  assert_int_equal(conc_local_init(&f->uloc, NULL), 0);
  conc_queue_opts_t two = {.maxsize = 2}, one = {.maxsize = 1};
  assert_int_equal(conc_queue_init(&f->q, &two), 0);
  assert_int_equal(conc_queue_put_nowait(&f->q, X1), 0);
  assert_int_equal(conc_queue_init(&f->fq, &one), 0);
  assert_int_equal(conc_queue_put_nowait(&f->fq, X1), 0);
  assert_int_equal(conc_queue_init(&f->eq, &two), 0);
  assert_int_equal(conc_queue_init(&f->uq, NULL), 0);
  assert_int_equal(conc_queue_put_nowait(&f->uq, X1), 0);
  assert_int_equal(conc_simple_queue_init(&f->sq, NULL), 0);
  assert_int_equal(conc_simple_queue_put(&f->sq, X1), 0);
  assert_int_equal(conc_simple_queue_init(&f->esq, NULL), 0);
  assert_int_equal(conc_lock_init(&f->lock, NULL), 0);
  assert_int_equal(conc_lock_init(&f->plock, NULL), 0);
  assert_int_equal(conc_rlock_init(&f->rlock, NULL), 0);
  assert_int_equal(conc_condition_init(&f->cond, NULL), 0);
  assert_int_equal(conc_semaphore_init(&f->sem, 1, NULL), 0);
  assert_int_equal(conc_semaphore_init(&f->sem0, 0, NULL), 0);
  assert_int_equal(conc_bounded_semaphore_init(&f->bsem, 1, NULL), 0);
  assert_int_equal(conc_event_init(&f->ev, NULL), 0);
  assert_int_equal(conc_barrier_init(&f->bar, 2, NULL), 0);
  assert_int_equal(conc_future_new(&f->pend), 0);
  assert_int_equal(conc_future_new(&f->run), 0);
  assert_int_equal(conc_future_set_running_or_notify_cancel(f->run), 1);
  assert_int_equal(conc_future_new(&f->done), 0);
  assert_int_equal(conc_future_set_result(f->done, X1), 0);
  assert_int_equal(conc_future_new(&f->failed), 0);
  assert_int_equal(conc_future_set_exception(f->failed, CONC_EIO, "io"), 0);
  assert_int_equal(conc_future_new(&f->canc), 0);
  assert_true(conc_future_cancel(f->canc));
  f->fs_null[0] = f->pend;
  f->err = (conc_future_error_t){42, "unchanged"};
  f->res.ndone = f->res.nnot_done = 99;
  assert_int_equal(conc_executor_init(&f->ex, NULL), 0);
  f->inputs[0] = f->inputs[1] = X1;
  return f;
}

static void fx_free(struct fx *f) {
  if (f->cond_held)
    while (conc_condition_release(&f->cond) == 0)
      ;
  conc_thread_join(&f->th, CONC_FOREVER);
  conc_thread_destroy(&f->th);
  conc_timer_cancel(&f->tm);
  conc_timer_join(&f->tm, CONC_FOREVER);
  conc_timer_destroy(&f->tm);
  conc_local_destroy(&f->loc);
  conc_local_destroy(&f->uloc);
  conc_queue_destroy(&f->q);
  conc_queue_destroy(&f->fq);
  conc_queue_destroy(&f->eq);
  conc_queue_destroy(&f->uq);
  conc_simple_queue_destroy(&f->sq);
  conc_simple_queue_destroy(&f->esq);
  conc_lock_destroy(&f->lock);
  conc_lock_destroy(&f->plock);
  conc_rlock_destroy(&f->rlock);
  conc_condition_destroy(&f->cond);
  conc_semaphore_destroy(&f->sem);
  conc_semaphore_destroy(&f->sem0);
  conc_semaphore_destroy(&f->bsem);
  conc_event_destroy(&f->ev);
  conc_barrier_destroy(&f->bar);
  conc_as_completed_destroy(&f->ac);
  conc_map_close(&f->m);
  conc_executor_destroy(&f->ex);
  conc_future_release(f->pend);
  conc_future_release(f->run);
  conc_future_release(f->done);
  conc_future_release(f->failed);
  conc_future_release(f->canc);
  free(f);
}

/* Everything a bad call could have changed. */
struct snap {
  conc_deadline_t dl;
  size_t old_stack, stack, active;
  void *out;
  char buf[8];
  bool th_alive, th_daemon, tm_alive, zth_alive;
  unsigned long th_ident;
  char th_name[24];
  int loc_rc, uloc_rc;
  void *loc_val;
  long qsize[5], unfinished[5], maxsize[5];
  bool shut[5];
  long sqsize[3];
  bool lock, plock, rlock;
  unsigned rcount;
  char repr[15][160]; /* sync objects, futures, threads */
  int sem, sem0, bsem;
  bool ev, bar_broken;
  int bar_waiting;
  int fstate[5], fcode[5];
  void *fval[5];
  conc_future_t *fo;
  conc_future_error_t err;
  size_t ndone, nnot_done;
  int ex_threads, zex_threads;
  int64_t zero_bytes; /* nonzero bytes in the never-initialised objects */
};

static int fut_state(conc_future_t *f) {
  return conc_future_running(f) | conc_future_done(f) << 1 |
         conc_future_cancelled(f) << 2;
}

static int64_t nonzero_bytes(const void *p, size_t n) {
  int64_t k = 0;
  for (size_t i = 0; i < n; i++)
    k += ((const unsigned char *)p)[i] != 0;
  return k;
}

static void take_snap(struct fx *f, struct snap *s) {
  memset(s, 0, sizeof *s);
  s->dl = f->dl;
  s->old_stack = f->old_stack;
  s->stack = conc_threading_stack_size();
  s->active = conc_active_count();
  s->out = f->out;
  memcpy(s->buf, f->buf, sizeof s->buf);
  s->th_alive = conc_thread_is_alive(&f->th);
  s->th_daemon = conc_thread_daemon(&f->th);
  s->tm_alive = conc_timer_is_alive(&f->tm);
  s->zth_alive = conc_thread_is_alive(&f->zth);
  s->th_ident = conc_thread_ident(&f->th);
  const char *name = conc_thread_name(&f->th);
  snprintf(s->th_name, sizeof s->th_name, "%s", name ? name : "(null)");
  s->loc_rc = conc_local_get(&f->loc, &s->loc_val);
  void *v;
  s->uloc_rc = conc_local_get(&f->uloc, &v);
  conc_queue_t *qs[5] = {&f->q, &f->fq, &f->eq, &f->uq, &f->zq};
  for (int i = 0; i < 5; i++) {
    s->qsize[i] = conc_queue_qsize(qs[i]);
    s->unfinished[i] = conc_queue_unfinished_tasks(qs[i]);
    s->maxsize[i] = conc_queue_maxsize(qs[i]);
    s->shut[i] = conc_queue_is_shutdown(qs[i]);
  }
  s->sqsize[0] = conc_simple_queue_qsize(&f->sq);
  s->sqsize[1] = conc_simple_queue_qsize(&f->esq);
  s->sqsize[2] = conc_simple_queue_qsize(&f->zsq);
  s->lock = conc_lock_locked(&f->lock);
  s->plock = conc_lock_locked(&f->plock);
  s->rlock = conc_rlock_locked(&f->rlock);
  s->rcount = conc_rlock_count(&f->rlock);
  int k = 0;
  conc_lock_repr(&f->lock, s->repr[k++], sizeof s->repr[0]);
  conc_lock_repr(&f->plock, s->repr[k++], sizeof s->repr[0]);
  conc_rlock_repr(&f->rlock, s->repr[k++], sizeof s->repr[0]);
  conc_condition_repr(&f->cond, s->repr[k++], sizeof s->repr[0]);
  conc_semaphore_repr(&f->sem, s->repr[k++], sizeof s->repr[0]);
  conc_semaphore_repr(&f->sem0, s->repr[k++], sizeof s->repr[0]);
  conc_semaphore_repr(&f->bsem, s->repr[k++], sizeof s->repr[0]);
  conc_event_repr(&f->ev, s->repr[k++], sizeof s->repr[0]);
  conc_barrier_repr(&f->bar, s->repr[k++], sizeof s->repr[0]);
  conc_thread_repr(&f->th, s->repr[k++], sizeof s->repr[0]);
  conc_thread_repr(conc_timer_thread(&f->tm), s->repr[k++], sizeof s->repr[0]);
  conc_future_repr(f->pend, s->repr[k++], sizeof s->repr[0]);
  conc_future_repr(f->run, s->repr[k++], sizeof s->repr[0]);
  conc_future_repr(f->done, s->repr[k++], sizeof s->repr[0]);
  conc_future_repr(f->failed, s->repr[k++], sizeof s->repr[0]);
  s->sem = conc_semaphore_get_value(&f->sem);
  s->sem0 = conc_semaphore_get_value(&f->sem0);
  s->bsem = conc_semaphore_get_value(&f->bsem);
  s->ev = conc_event_is_set(&f->ev);
  s->bar_broken = conc_barrier_broken(&f->bar);
  s->bar_waiting = conc_barrier_n_waiting(&f->bar);
  conc_future_t *fs[5] = {f->pend, f->run, f->done, f->failed, f->canc};
  for (int i = 0; i < 5; i++) {
    s->fstate[i] = fut_state(fs[i]);
    s->fcode[i] = conc_future_result(fs[i], 0, &s->fval[i]);
  }
  s->fo = f->fo;
  s->err = f->err;
  s->ndone = f->res.ndone;
  s->nnot_done = f->res.nnot_done;
  s->ex_threads = conc_executor_num_threads(&f->ex);
  s->zex_threads = conc_executor_num_threads(&f->zex);
  s->zero_bytes = nonzero_bytes(&f->zth, sizeof f->zth) +
                  nonzero_bytes(&f->ztm, sizeof f->ztm) +
                  nonzero_bytes(&f->zloc, sizeof f->zloc) +
                  nonzero_bytes(&f->zq, sizeof f->zq) +
                  nonzero_bytes(&f->zsq, sizeof f->zsq) +
                  nonzero_bytes(&f->zcond, sizeof f->zcond) +
                  nonzero_bytes(&f->zsem, sizeof f->zsem) +
                  nonzero_bytes(&f->zbar, sizeof f->zbar) +
                  nonzero_bytes(&f->zac, sizeof f->zac) +
                  nonzero_bytes(&f->zm, sizeof f->zm) +
                  nonzero_bytes(&f->zex, sizeof f->zex);
}

/* Setting NULL (with a stray user pointer) restores the default hook. */
static bool default_hook_in_force(void) {
  conc_thread_set_excepthook(NULL, &fixture_token);
  conc_excepthook_t hook;
  void *arg = &fixture_token;
  conc_thread_get_excepthook(&hook, &arg);
  return hook == conc_thread_default_excepthook && arg == NULL;
}

/* The default excepthook with a NULL message, its output thrown away. */
static long hook_with_null_message(void) {
  fflush(stderr);
  int saved = dup(2), null = open("/dev/null", O_WRONLY);
  dup2(null, 2);
  close(null);
  conc_thread_default_excepthook(
      &(conc_excepthook_args_t){CONC_EINVAL, NULL, NULL}, NULL);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  return 0;
}

/* Preparations that put an object into the wrong state. */
static void start_and_join(conc_thread_t *t) {
  assert_int_equal(conc_thread_start(t), 0);
  assert_int_equal(conc_thread_join(t, CONC_FOREVER), 0);
}

static void run_timer_out(conc_timer_t *tm) {
  assert_int_equal(conc_timer_start(tm), 0);
  assert_int_equal(conc_timer_join(tm, CONC_FOREVER), 0);
}

static void hold_cond(struct fx *f) {
  assert_int_equal(conc_condition_acquire(&f->cond), 0);
  f->cond_held = true;
}

/* Row i of the table on fixture f: runs the preparation, takes *before,
 * makes the call and returns true with its result in *rc; false past the
 * last row. */
static bool bad_call(int i, struct fx *f, const char **what, long *want,
                     struct snap *before, long *rc) {
  int n = 0;
#define PREP(w, prep, expr)                                                    \
  if (i == n++) {                                                              \
    prep;                                                                      \
    *what = #prep " ; " #expr;                                                 \
    *want = (w);                                                               \
    take_snap(f, before);                                                      \
    *rc = (long)(expr);                                                        \
    return true;                                                               \
  }
#define ROW(w, expr) PREP(w, (void)0, expr)
#define VOIDROW(expr) PREP(0, (void)0, ((expr), 0))
  const double nan_ = NAN, inf = INFINITY;
  conc_future_t *fs1[1] = {f->done};
  conc_thread_opts_t tiny = {.stack_size = 1};
  conc_thread_opts_t below = {.stack_size = CONC_THREAD_STACK_MIN - 1};
  conc_thread_opts_t huge = {.stack_size = SIZE_MAX};
  conc_thread_opts_t huge2 = {.stack_size = SIZE_MAX - 1};

  /* ---- time.h ---- */
  ROW(CONC_EINVAL, conc_deadline_after(0, NULL))
  ROW(CONC_EINVAL, conc_deadline_after(1.0, NULL))
  ROW(CONC_EINVAL, conc_deadline_after(CONC_FOREVER, NULL))
  ROW(CONC_EINVAL, conc_deadline_after(inf, NULL))
  ROW(CONC_EINVAL, conc_deadline_after(-inf, NULL))
  ROW(CONC_EINVAL, conc_deadline_after(nan_, NULL))
  ROW(CONC_EINVAL, conc_deadline_after(nan_, &f->dl))
  ROW(CONC_EINVAL, conc_deadline_after(-nan_, &f->dl))
  ROW(CONC_EINVAL, conc_sleep(nan_))
  ROW(CONC_EINVAL, conc_sleep(-nan_))
  ROW(CONC_EINVAL, conc_sleep(-1.0))
  ROW(CONC_EINVAL, conc_sleep(-1e-9))
  ROW(CONC_EINVAL, conc_sleep(-inf))
  ROW(CONC_EOVERFLOW, conc_sleep(inf))
  ROW(CONC_EOVERFLOW, conc_sleep(1e300))
  ROW(CONC_EOVERFLOW, conc_sleep(CONC_TIMEOUT_MAX * 2))
  ROW(1, conc_deadline_remaining(CONC_DEADLINE_NEVER) == CONC_FOREVER)
  ROW(1, conc_deadline_remaining(INT64_MIN) == 0.0)
  ROW(1, conc_deadline_remaining(-1) == 0.0)

  /* ---- thread.h: Thread ---- */
  ROW(CONC_EINVAL, conc_thread_init(NULL, NULL, NULL, NULL))
  ROW(CONC_EINVAL, conc_thread_init(&f->th, nothing, NULL, &tiny))
  ROW(CONC_EINVAL, conc_thread_init(&f->th, nothing, NULL, &below))
  ROW(CONC_EINVAL, conc_thread_init(&f->th, nothing, NULL, &huge))
  ROW(CONC_EINVAL, conc_thread_init(&f->th, nothing, NULL, &huge2))
  ROW(CONC_EINVAL, conc_thread_start(NULL))
  ROW(CONC_EINVAL, conc_thread_start(&f->zth))
  ROW(CONC_ESTATE, conc_thread_start(conc_main_thread()))
  ROW(CONC_ESTATE, conc_thread_start(conc_current_thread()))
  PREP(CONC_ESTATE, start_and_join(&f->th), conc_thread_start(&f->th))
  ROW(CONC_EINVAL, conc_thread_join(NULL, 0))
  ROW(CONC_EINVAL, conc_thread_join(NULL, CONC_FOREVER))
  ROW(CONC_EINVAL, conc_thread_join(&f->th, nan_))
  ROW(CONC_EINVAL, conc_thread_join(conc_main_thread(), nan_))
  ROW(CONC_ENOTSTARTED, conc_thread_join(&f->th, 0))
  ROW(CONC_ENOTSTARTED, conc_thread_join(&f->th, inf))
  ROW(CONC_ENOTSTARTED, conc_thread_join(&f->th, -inf))
  ROW(CONC_ENOTSTARTED, conc_thread_join(&f->th, CONC_FOREVER))
  ROW(CONC_ENOTSTARTED, conc_thread_join(&f->zth, 1.0))
  ROW(CONC_EDEADLK, conc_thread_join(conc_current_thread(), CONC_FOREVER))
  ROW(CONC_EDEADLK, conc_thread_join(conc_main_thread(), inf))
  ROW(CONC_EDEADLK, conc_thread_join(conc_main_thread(), -inf))
  PREP(0, start_and_join(&f->th), conc_thread_join(&f->th, inf))
  ROW(0, conc_thread_is_alive(NULL))
  ROW(0, conc_thread_is_alive(&f->zth))
  ROW(1, conc_thread_name(NULL) == NULL)
  ROW(CONC_EINVAL, conc_thread_set_name(NULL, "x"))
  ROW(CONC_EINVAL, conc_thread_set_name(&f->th, NULL))
  ROW(0, conc_thread_ident(NULL))
  ROW(0, conc_thread_ident(&f->th))
  ROW(0, conc_thread_native_id(NULL))
  ROW(0, conc_thread_native_id(&f->th))
  ROW(0, conc_thread_daemon(NULL))
  ROW(CONC_EINVAL, conc_thread_set_daemon(NULL, true))
  ROW(CONC_ESTATE, conc_thread_set_daemon(conc_main_thread(), true))
  PREP(CONC_ESTATE, start_and_join(&f->th), conc_thread_set_daemon(&f->th, 1))
  ROW(CONC_EINVAL, conc_thread_result(NULL, &f->out))
  ROW(CONC_ENOTSTARTED, conc_thread_result(&f->th, &f->out))
  ROW(CONC_ENOTSTARTED, conc_thread_result(&f->zth, &f->out))
  ROW(CONC_EBUSY, conc_thread_result(conc_main_thread(), &f->out))
  ROW(CONC_EINVAL, conc_thread_repr(NULL, f->buf, sizeof f->buf))
  ROW(CONC_EINVAL, conc_thread_repr(&f->th, NULL, 8))
  ROW(CONC_EINVAL, conc_thread_repr(&f->zth, f->buf, sizeof f->buf))
  ROW(CONC_EINVAL, conc_thread_destroy(NULL))
  ROW(CONC_EPERM, conc_thread_destroy(conc_main_thread()))
  VOIDROW(conc_thread_default_excepthook(NULL, NULL))
  ROW(0, hook_with_null_message())
  ROW(CONC_EINVAL, conc_threading_set_stack_size(1, &f->old_stack))
  ROW(CONC_EINVAL,
      conc_threading_set_stack_size(CONC_THREAD_STACK_MIN - 1, &f->old_stack))
  ROW(CONC_EINVAL, conc_threading_set_stack_size(SIZE_MAX, &f->old_stack))
  ROW(CONC_EINVAL, conc_threading_set_stack_size(SIZE_MAX - 100, NULL))
  ROW(CONC_EINVAL, conc_threading_register_atexit(NULL, NULL))
  ROW(1, default_hook_in_force())
  ROW(1, conc_enumerate(NULL, 4) == conc_active_count())

  /* ---- thread.h: threading.local ---- */
  ROW(CONC_EINVAL, conc_local_init(NULL, NULL))
  ROW(CONC_EINVAL, conc_local_get(NULL, &f->out))
  ROW(CONC_EINVAL, conc_local_get(&f->loc, NULL))
  ROW(CONC_EINVAL, conc_local_get(&f->zloc, &f->out))
  ROW(CONC_EUNSET, conc_local_get(&f->uloc, &f->out))
  ROW(CONC_EINVAL, conc_local_set(NULL, X1))
  ROW(CONC_EINVAL, conc_local_set(&f->zloc, X1))
  ROW(CONC_EINVAL, conc_local_delete(NULL))
  ROW(CONC_EINVAL, conc_local_delete(&f->zloc))
  ROW(CONC_EUNSET, conc_local_delete(&f->uloc))
  PREP(CONC_EUNSET, conc_local_delete(&f->loc), conc_local_delete(&f->loc))
  PREP(CONC_EUNSET, conc_local_delete(&f->loc),
       conc_local_get(&f->loc, &f->out))
  PREP(CONC_EINVAL, conc_local_destroy(&f->uloc), conc_local_set(&f->uloc, X1))
  PREP(CONC_EINVAL, conc_local_destroy(&f->uloc),
       conc_local_get(&f->uloc, &f->out))
  PREP(CONC_EINVAL, conc_local_destroy(&f->uloc), conc_local_delete(&f->uloc))
  VOIDROW(conc_local_destroy(NULL))
  VOIDROW(conc_local_destroy(&f->zloc))

  /* ---- timer.h ---- */
  ROW(CONC_EINVAL, conc_timer_init(NULL, 1.0, nothing, NULL, NULL))
  ROW(CONC_EINVAL, conc_timer_init(&f->tm, 1.0, NULL, NULL, NULL))
  ROW(CONC_EINVAL, conc_timer_init(&f->tm, nan_, nothing, NULL, NULL))
  ROW(CONC_EINVAL, conc_timer_init(&f->tm, -nan_, nothing, NULL, NULL))
  ROW(CONC_EINVAL, conc_timer_init(&f->tm, 1.0, nothing, NULL, &tiny))
  ROW(CONC_EINVAL, conc_timer_init(&f->tm, 1.0, nothing, NULL, &huge))
  ROW(CONC_EINVAL, conc_timer_init(&f->ztm, nan_, nothing, NULL, NULL))
  ROW(CONC_EINVAL, conc_timer_start(NULL))
  ROW(CONC_EINVAL, conc_timer_start(&f->ztm))
  PREP(CONC_ESTATE, run_timer_out(&f->tm), conc_timer_start(&f->tm))
  ROW(CONC_EINVAL, conc_timer_cancel(NULL))
  ROW(CONC_EINVAL, conc_timer_join(NULL, 0))
  ROW(CONC_EINVAL, conc_timer_join(&f->tm, nan_))
  ROW(CONC_ENOTSTARTED, conc_timer_join(&f->tm, inf))
  ROW(CONC_ENOTSTARTED, conc_timer_join(&f->tm, -inf))
  ROW(CONC_ENOTSTARTED, conc_timer_join(&f->ztm, 0))
  PREP(0, run_timer_out(&f->tm), conc_timer_join(&f->tm, inf))
  ROW(0, conc_timer_is_alive(NULL))
  ROW(1, conc_timer_thread(NULL) == NULL)
  ROW(CONC_EINVAL, conc_timer_destroy(NULL))

  /* ---- queue.h: Queue ---- */
  conc_queue_opts_t kind3 = {.kind = (conc_queue_kind_t)3};
  conc_queue_opts_t kindneg = {.kind = (conc_queue_kind_t)-1};
  conc_queue_opts_t kindbig = {.kind = (conc_queue_kind_t)INT_MAX};
  conc_queue_opts_t prio = {.kind = CONC_QUEUE_PRIORITY};
  ROW(CONC_EINVAL, conc_queue_init(NULL, NULL))
  ROW(CONC_EINVAL, conc_queue_init(&f->zq, &kind3))
  ROW(CONC_EINVAL, conc_queue_init(&f->zq, &kindneg))
  ROW(CONC_EINVAL, conc_queue_init(&f->zq, &kindbig))
  ROW(CONC_EINVAL, conc_queue_init(&f->zq, &prio))
  ROW(CONC_EINVAL, conc_queue_put(NULL, X1, true, 0))
  ROW(CONC_EINVAL, conc_queue_put(NULL, X1, false, 0))
  ROW(CONC_EINVAL, conc_queue_put(&f->zq, X1, false, 0))
  ROW(CONC_EINVAL, conc_queue_put(&f->q, X1, true, nan_))
  ROW(CONC_EINVAL, conc_queue_put(&f->q, X1, true, -nan_))
  ROW(CONC_EINVAL, conc_queue_put(&f->q, X1, true, -0.5))
  ROW(CONC_EINVAL, conc_queue_put(&f->q, X1, true, -inf))
  ROW(CONC_EINVAL, conc_queue_put(&f->eq, X1, true, -2.0))
  ROW(CONC_EINVAL, conc_queue_put(&f->fq, X1, true, nan_))
  ROW(CONC_EINVAL, conc_queue_put(&f->fq, X1, true, -inf))
  ROW(CONC_EFULL, conc_queue_put(&f->fq, X1, false, nan_))
  ROW(CONC_EFULL, conc_queue_put(&f->fq, X1, false, inf))
  ROW(CONC_EFULL, conc_queue_put(&f->fq, X1, false, -inf))
  ROW(CONC_EFULL, conc_queue_put(&f->fq, X1, true, 0))
  ROW(CONC_EFULL, conc_queue_put_nowait(&f->fq, X1))
  ROW(CONC_EINVAL, conc_queue_put_nowait(NULL, X1))
  ROW(CONC_EINVAL, conc_queue_put_nowait(&f->zq, X1))
  ROW(CONC_EINVAL, conc_queue_get(NULL, &f->out, true, 0))
  ROW(CONC_EINVAL, conc_queue_get(NULL, &f->out, false, 0))
  ROW(CONC_EINVAL, conc_queue_get(&f->q, NULL, false, 0))
  ROW(CONC_EINVAL, conc_queue_get(&f->q, NULL, true, CONC_FOREVER))
  ROW(CONC_EINVAL, conc_queue_get(&f->zq, &f->out, false, 0))
  ROW(CONC_EINVAL, conc_queue_get(&f->q, &f->out, true, nan_))
  ROW(CONC_EINVAL, conc_queue_get(&f->q, &f->out, true, -inf))
  ROW(CONC_EINVAL, conc_queue_get(&f->q, &f->out, true, -2.0))
  ROW(CONC_EINVAL, conc_queue_get(&f->uq, &f->out, true, nan_))
  ROW(CONC_EINVAL, conc_queue_get(&f->uq, &f->out, true, -0.001))
  ROW(CONC_EINVAL, conc_queue_get(&f->eq, &f->out, true, -inf))
  ROW(CONC_EEMPTY, conc_queue_get(&f->eq, &f->out, false, nan_))
  ROW(CONC_EEMPTY, conc_queue_get(&f->eq, &f->out, false, inf))
  ROW(CONC_EEMPTY, conc_queue_get(&f->eq, &f->out, false, -inf))
  ROW(CONC_EEMPTY, conc_queue_get(&f->eq, &f->out, true, 0))
  ROW(CONC_EEMPTY, conc_queue_get_nowait(&f->eq, &f->out))
  ROW(CONC_EINVAL, conc_queue_get_nowait(&f->q, NULL))
  ROW(CONC_EINVAL, conc_queue_get_nowait(NULL, &f->out))
  ROW(-1, conc_queue_qsize(NULL))
  ROW(-1, conc_queue_qsize(&f->zq))
  ROW(0, conc_queue_empty(NULL))
  ROW(0, conc_queue_full(NULL))
  ROW(-1, conc_queue_maxsize(NULL))
  ROW(CONC_EINVAL, conc_queue_set_maxsize(NULL, 3))
  ROW(CONC_EINVAL, conc_queue_set_maxsize(&f->zq, 3))
  ROW(CONC_EINVAL, conc_queue_task_done(NULL))
  ROW(CONC_EINVAL, conc_queue_task_done(&f->zq))
  ROW(CONC_ETASKDONE, conc_queue_task_done(&f->eq))
  PREP(CONC_ETASKDONE, conc_queue_task_done(&f->q), conc_queue_task_done(&f->q))
  ROW(CONC_EINVAL, conc_queue_join(NULL, 0))
  ROW(CONC_EINVAL, conc_queue_join(&f->zq, 0))
  ROW(CONC_EINVAL, conc_queue_join(&f->q, nan_))
  ROW(CONC_EINVAL, conc_queue_join(&f->q, -inf))
  ROW(CONC_EINVAL, conc_queue_join(&f->q, -0.001))
  ROW(CONC_EINVAL, conc_queue_join(&f->eq, -inf))
  ROW(CONC_ETIMEDOUT, conc_queue_join(&f->q, 0))
  ROW(0, conc_queue_join(&f->eq, inf))
  ROW(-1, conc_queue_unfinished_tasks(NULL))
  ROW(CONC_EINVAL, conc_queue_shutdown(NULL, true))
  ROW(CONC_EINVAL, conc_queue_shutdown(&f->zq, false))
  ROW(0, conc_queue_is_shutdown(NULL))
  VOIDROW(conc_queue_destroy(NULL))
  VOIDROW(conc_queue_destroy(&f->zq))
  PREP(CONC_ESHUTDOWN, conc_queue_shutdown(&f->q, false),
       conc_queue_put(&f->q, X1, true, 0))
  PREP(CONC_ESHUTDOWN, conc_queue_shutdown(&f->q, false),
       conc_queue_put(&f->q, X1, true, nan_))
  PREP(CONC_ESHUTDOWN, conc_queue_shutdown(&f->uq, false),
       conc_queue_put_nowait(&f->uq, X1))
  PREP(CONC_ESHUTDOWN, conc_queue_shutdown(&f->eq, false),
       conc_queue_get(&f->eq, &f->out, true, inf))
  PREP(CONC_ESHUTDOWN, conc_queue_shutdown(&f->eq, false),
       conc_queue_get(&f->eq, &f->out, true, nan_))
  PREP(CONC_ESHUTDOWN, conc_queue_shutdown(&f->q, true),
       conc_queue_get(&f->q, &f->out, false, 0))
  PREP(CONC_EINVAL, conc_queue_destroy(&f->q),
       conc_queue_put(&f->q, X1, false, 0))
  PREP(CONC_EINVAL, conc_queue_destroy(&f->q),
       conc_queue_get(&f->q, &f->out, false, 0))
  PREP(CONC_EINVAL, conc_queue_destroy(&f->q), conc_queue_shutdown(&f->q, 1))

  /* ---- queue.h: SimpleQueue ---- */
  ROW(CONC_EINVAL, conc_simple_queue_init(NULL, NULL))
  ROW(CONC_EINVAL, conc_simple_queue_put(NULL, X1))
  ROW(CONC_EINVAL, conc_simple_queue_put(&f->zsq, X1))
  ROW(CONC_EINVAL, conc_simple_queue_put_nowait(NULL, X1))
  ROW(CONC_EINVAL, conc_simple_queue_get(NULL, &f->out, false, 0))
  ROW(CONC_EINVAL, conc_simple_queue_get(&f->zsq, &f->out, false, 0))
  ROW(CONC_EINVAL, conc_simple_queue_get(&f->sq, NULL, false, 0))
  ROW(CONC_EINVAL, conc_simple_queue_get(&f->sq, &f->out, true, nan_))
  ROW(CONC_EINVAL, conc_simple_queue_get(&f->sq, &f->out, true, -inf))
  ROW(CONC_EINVAL, conc_simple_queue_get(&f->sq, &f->out, true, -0.5))
  ROW(CONC_EINVAL, conc_simple_queue_get(&f->esq, &f->out, true, -inf))
  ROW(CONC_EEMPTY, conc_simple_queue_get(&f->esq, &f->out, false, nan_))
  ROW(CONC_EEMPTY, conc_simple_queue_get(&f->esq, &f->out, false, inf))
  ROW(CONC_EEMPTY, conc_simple_queue_get(&f->esq, &f->out, true, 0))
  ROW(CONC_EEMPTY, conc_simple_queue_get_nowait(&f->esq, &f->out))
  ROW(CONC_EINVAL, conc_simple_queue_get_nowait(&f->sq, NULL))
  ROW(CONC_EINVAL, conc_simple_queue_get_nowait(NULL, &f->out))
  ROW(-1, conc_simple_queue_qsize(NULL))
  ROW(-1, conc_simple_queue_qsize(&f->zsq))
  ROW(0, conc_simple_queue_empty(NULL))
  VOIDROW(conc_simple_queue_destroy(NULL))
  VOIDROW(conc_simple_queue_destroy(&f->zsq))
  PREP(CONC_EINVAL, conc_simple_queue_destroy(&f->esq),
       conc_simple_queue_put(&f->esq, X1))
  PREP(CONC_EINVAL, conc_simple_queue_destroy(&f->esq),
       conc_simple_queue_get(&f->esq, &f->out, true, inf))

  /* ---- sync.h: Lock ---- */
  ROW(CONC_EINVAL, conc_lock_init(NULL, NULL))
  ROW(CONC_EINVAL, conc_lock_acquire(NULL))
  ROW(CONC_EINVAL, conc_lock_acquire_timeout(NULL, 0))
  ROW(CONC_EINVAL, conc_lock_acquire_timeout(&f->lock, nan_))
  ROW(CONC_EINVAL, conc_lock_acquire_timeout(&f->lock, -0.5))
  ROW(CONC_EINVAL, conc_lock_acquire_timeout(&f->lock, -inf))
  ROW(CONC_EOVERFLOW, conc_lock_acquire_timeout(&f->lock, inf))
  ROW(CONC_EOVERFLOW, conc_lock_acquire_timeout(&f->lock, 1e300))
  ROW(CONC_EINVAL, conc_lock_acquire_ex(NULL, true, CONC_FOREVER))
  ROW(CONC_EINVAL, conc_lock_acquire_ex(&f->lock, false, 1.0))
  ROW(CONC_EINVAL, conc_lock_acquire_ex(&f->lock, false, 0))
  ROW(CONC_EINVAL, conc_lock_acquire_ex(&f->lock, false, nan_))
  ROW(CONC_EINVAL, conc_lock_acquire_ex(&f->lock, false, inf))
  ROW(CONC_EINVAL, conc_lock_acquire_ex(&f->lock, true, nan_))
  ROW(CONC_EINVAL, conc_lock_acquire_ex(&f->lock, true, -inf))
  ROW(CONC_EOVERFLOW, conc_lock_acquire_ex(&f->lock, true, inf))
  ROW(CONC_ESTATE, conc_lock_release(&f->lock))
  ROW(CONC_EINVAL, conc_lock_release(NULL))
  PREP(CONC_ETIMEDOUT, conc_lock_acquire(&f->lock),
       conc_lock_acquire_timeout(&f->lock, 0))
  PREP(CONC_ETIMEDOUT, conc_lock_acquire(&f->lock),
       conc_lock_acquire_ex(&f->lock, false, CONC_FOREVER))
  PREP(CONC_EINVAL, conc_lock_acquire(&f->lock),
       conc_lock_acquire_timeout(&f->lock, nan_))
  ROW(0, conc_lock_locked(NULL))
  ROW(CONC_EINVAL, conc_lock_repr(NULL, f->buf, sizeof f->buf))
  ROW(CONC_EINVAL, conc_lock_destroy(NULL))
  ROW(CONC_EINVAL, conc_lock_mark_consistent(NULL))
  ROW(CONC_EINVAL, conc_lock_mark_consistent(&f->lock))
  ROW(CONC_EINVAL, conc_lock_at_fork_reinit(NULL))

  /* ---- sync.h: RLock ---- */
  ROW(CONC_EINVAL, conc_rlock_init(NULL, NULL))
  ROW(CONC_EINVAL, conc_rlock_acquire(NULL))
  ROW(CONC_EINVAL, conc_rlock_acquire_timeout(NULL, 0))
  ROW(CONC_EINVAL, conc_rlock_acquire_timeout(&f->rlock, nan_))
  ROW(CONC_EINVAL, conc_rlock_acquire_timeout(&f->rlock, -inf))
  ROW(CONC_EINVAL, conc_rlock_acquire_timeout(&f->rlock, -0.5))
  ROW(CONC_EOVERFLOW, conc_rlock_acquire_timeout(&f->rlock, inf))
  ROW(CONC_EINVAL, conc_rlock_acquire_ex(&f->rlock, false, 1.0))
  ROW(CONC_EINVAL, conc_rlock_acquire_ex(&f->rlock, false, nan_))
  ROW(CONC_EINVAL, conc_rlock_acquire_ex(&f->rlock, true, nan_))
  ROW(CONC_ESTATE, conc_rlock_release(&f->rlock))
  ROW(CONC_EINVAL, conc_rlock_release(NULL))
  PREP(CONC_EINVAL, conc_rlock_acquire(&f->rlock),
       conc_rlock_mark_consistent(&f->rlock))
  ROW(CONC_EINVAL, conc_rlock_mark_consistent(NULL))
  ROW(0, conc_rlock_locked(NULL))
  ROW(0, conc_rlock_is_owned(NULL))
  ROW(0, conc_rlock_count(NULL))
  ROW(CONC_EINVAL, conc_rlock_repr(NULL, f->buf, sizeof f->buf))
  ROW(CONC_EINVAL, conc_rlock_destroy(NULL))
  ROW(CONC_EINVAL, conc_rlock_at_fork_reinit(NULL))

  /* ---- sync.h: Condition ---- */
  conc_condition_opts_t both = {.lock = &f->plock, .rlock = &f->rlock};
  conc_condition_opts_t pshared_private = {.lock = &f->plock, .pshared = true};
  ROW(CONC_EINVAL, conc_condition_init(NULL, NULL))
  ROW(CONC_EINVAL, conc_condition_init(&f->zcond, &both))
  ROW(CONC_EINVAL, conc_condition_init(&f->zcond, &pshared_private))
  ROW(CONC_EINVAL, conc_condition_acquire(NULL))
  ROW(CONC_EINVAL, conc_condition_acquire_timeout(NULL, 0))
  ROW(CONC_EINVAL, conc_condition_acquire_timeout(&f->cond, nan_))
  ROW(CONC_EINVAL, conc_condition_acquire_timeout(&f->cond, -inf))
  ROW(CONC_EOVERFLOW, conc_condition_acquire_timeout(&f->cond, inf))
  ROW(CONC_EINVAL, conc_condition_acquire_ex(&f->cond, false, 1.0))
  ROW(CONC_EINVAL, conc_condition_release(NULL))
  ROW(CONC_ESTATE, conc_condition_release(&f->cond))
  ROW(CONC_EINVAL, conc_condition_wait(NULL, 0))
  ROW(CONC_ESTATE, conc_condition_wait(&f->cond, 0))
  ROW(CONC_ESTATE, conc_condition_wait(&f->cond, inf))
  ROW(CONC_ESTATE, conc_condition_wait(&f->cond, CONC_FOREVER))
  PREP(CONC_EINVAL, hold_cond(f), conc_condition_wait(&f->cond, nan_))
  PREP(CONC_ETIMEDOUT, hold_cond(f), conc_condition_wait(&f->cond, -inf))
  PREP(CONC_ETIMEDOUT, hold_cond(f), conc_condition_wait(&f->cond, -0.5))
  ROW(CONC_EINVAL, conc_condition_wait_for(NULL, never, NULL, 0))
  ROW(CONC_ESTATE, conc_condition_wait_for(&f->cond, never, NULL, 0))
  PREP(CONC_EINVAL, hold_cond(f),
       conc_condition_wait_for(&f->cond, NULL, NULL, 0))
  PREP(CONC_EINVAL, hold_cond(f),
       conc_condition_wait_for(&f->cond, never, NULL, nan_))
  PREP(0, hold_cond(f), conc_condition_wait_for(&f->cond, never, NULL, -inf))
  ROW(CONC_EINVAL, conc_condition_notify(NULL, 1))
  ROW(CONC_ESTATE, conc_condition_notify(&f->cond, 1))
  ROW(CONC_ESTATE, conc_condition_notify(&f->cond, -1))
  ROW(CONC_ESTATE, conc_condition_notify_all(&f->cond))
  ROW(CONC_EINVAL, conc_condition_notify_all(NULL))
  ROW(CONC_EINVAL, conc_condition_repr(NULL, f->buf, sizeof f->buf))
  ROW(CONC_EINVAL, conc_condition_destroy(NULL))

  /* ---- sync.h: Semaphore, BoundedSemaphore ---- */
  ROW(CONC_EINVAL, conc_semaphore_init(NULL, 1, NULL))
  ROW(CONC_EINVAL, conc_semaphore_init(&f->zsem, -1, NULL))
  ROW(CONC_EINVAL, conc_semaphore_init(&f->zsem, INT_MIN, NULL))
  ROW(CONC_EINVAL, conc_bounded_semaphore_init(&f->zsem, -1, NULL))
  ROW(CONC_EINVAL, conc_bounded_semaphore_init(NULL, 1, NULL))
  ROW(CONC_EINVAL, conc_semaphore_acquire(NULL))
  ROW(CONC_EINVAL, conc_semaphore_acquire_timeout(NULL, 0))
  ROW(CONC_EINVAL, conc_semaphore_acquire_timeout(&f->sem, nan_))
  ROW(CONC_EINVAL, conc_semaphore_acquire_timeout(&f->sem0, nan_))
  ROW(CONC_ETIMEDOUT, conc_semaphore_acquire_timeout(&f->sem0, -inf))
  ROW(CONC_ETIMEDOUT, conc_semaphore_acquire_timeout(&f->sem0, -0.5))
  ROW(CONC_ETIMEDOUT, conc_semaphore_acquire_timeout(&f->sem0, 0))
  ROW(CONC_EINVAL, conc_semaphore_acquire_ex(&f->sem, false, 1.0))
  ROW(CONC_EINVAL, conc_semaphore_acquire_ex(&f->sem, false, nan_))
  ROW(CONC_EINVAL, conc_semaphore_acquire_ex(&f->sem, false, inf))
  ROW(CONC_EINVAL, conc_semaphore_acquire_ex(&f->sem, true, nan_))
  ROW(CONC_ETIMEDOUT, conc_semaphore_acquire_ex(&f->sem0, false, CONC_FOREVER))
  ROW(CONC_EINVAL, conc_semaphore_release(NULL, 1))
  ROW(CONC_EINVAL, conc_semaphore_release(&f->sem, 0))
  ROW(CONC_EINVAL, conc_semaphore_release(&f->sem, -1))
  ROW(CONC_EINVAL, conc_semaphore_release(&f->sem, INT_MIN))
  ROW(CONC_EINVAL, conc_semaphore_release(&f->bsem, 1))
  ROW(CONC_EINVAL, conc_semaphore_release(&f->bsem, INT_MAX))
  ROW(CONC_EOVERFLOW, conc_semaphore_release(&f->sem, INT_MAX))
  ROW(CONC_EINVAL, conc_semaphore_repr(NULL, f->buf, sizeof f->buf))
  ROW(CONC_EINVAL, conc_semaphore_destroy(NULL))

  /* ---- sync.h: Event ---- */
  ROW(CONC_EINVAL, conc_event_init(NULL, NULL))
  ROW(CONC_EINVAL, conc_event_set(NULL))
  ROW(CONC_EINVAL, conc_event_clear(NULL))
  ROW(0, conc_event_is_set(NULL))
  ROW(CONC_EINVAL, conc_event_wait(NULL, 0))
  ROW(CONC_EINVAL, conc_event_wait(&f->ev, nan_))
  ROW(CONC_EINVAL, conc_event_wait(&f->ev, -nan_))
  ROW(CONC_ETIMEDOUT, conc_event_wait(&f->ev, -inf))
  ROW(CONC_ETIMEDOUT, conc_event_wait(&f->ev, -0.5))
  ROW(CONC_ETIMEDOUT, conc_event_wait(&f->ev, 0))
  PREP(0, conc_event_set(&f->ev), conc_event_wait(&f->ev, inf))
  PREP(CONC_EINVAL, conc_event_set(&f->ev), conc_event_wait(&f->ev, nan_))
  ROW(CONC_EINVAL, conc_event_repr(NULL, f->buf, sizeof f->buf))
  ROW(CONC_EINVAL, conc_event_destroy(NULL))

  /* ---- sync.h: Barrier ---- */
  conc_barrier_opts_t bt_nan = {.has_timeout = true, .timeout = NAN};
  conc_barrier_opts_t bt_neg = {.has_timeout = true, .timeout = -1.0};
  conc_barrier_opts_t bt_ninf = {.has_timeout = true, .timeout = -INFINITY};
  ROW(CONC_EINVAL, conc_barrier_init(NULL, 2, NULL))
  ROW(CONC_EINVAL, conc_barrier_init(&f->zbar, 0, NULL))
  ROW(CONC_EINVAL, conc_barrier_init(&f->zbar, -1, NULL))
  ROW(CONC_EINVAL, conc_barrier_init(&f->zbar, INT_MIN, NULL))
  ROW(CONC_EINVAL, conc_barrier_init(&f->zbar, 2, &bt_nan))
  ROW(CONC_EINVAL, conc_barrier_init(&f->zbar, 2, &bt_neg))
  ROW(CONC_EINVAL, conc_barrier_init(&f->zbar, 2, &bt_ninf))
  ROW(CONC_EINVAL, conc_barrier_wait(NULL, 0))
  ROW(CONC_EINVAL, conc_barrier_wait(&f->bar, nan_))
  PREP(CONC_EBROKEN, conc_barrier_abort(&f->bar), conc_barrier_wait(&f->bar, 0))
  PREP(CONC_EBROKEN, conc_barrier_abort(&f->bar),
       conc_barrier_wait(&f->bar, inf))
  PREP(CONC_EBROKEN, conc_barrier_abort(&f->bar),
       conc_barrier_wait(&f->bar, CONC_FOREVER))
  ROW(CONC_EINVAL, conc_barrier_reset(NULL))
  ROW(CONC_EINVAL, conc_barrier_abort(NULL))
  ROW(CONC_EINVAL, conc_barrier_parties(NULL))
  ROW(CONC_EINVAL, conc_barrier_n_waiting(NULL))
  ROW(0, conc_barrier_broken(NULL))
  ROW(CONC_EINVAL, conc_barrier_repr(NULL, f->buf, sizeof f->buf))
  ROW(CONC_EINVAL, conc_barrier_destroy(NULL))

  /* ---- futures.h: Future ---- */
  ROW(CONC_EINVAL, conc_future_new(NULL))
  ROW(1, conc_future_retain(NULL) == NULL)
  VOIDROW(conc_future_release(NULL))
  ROW(0, conc_future_cancel(NULL))
  ROW(0, conc_future_cancel(f->run))
  ROW(0, conc_future_cancel(f->done))
  ROW(0, conc_future_cancel(f->failed))
  ROW(0, conc_future_cancelled(NULL))
  ROW(0, conc_future_running(NULL))
  ROW(0, conc_future_done(NULL))
  ROW(CONC_EINVAL, conc_future_result(NULL, 0, &f->out))
  ROW(CONC_EINVAL, conc_future_result(f->pend, nan_, &f->out))
  ROW(CONC_EINVAL, conc_future_result(f->pend, -nan_, &f->out))
  ROW(CONC_EINVAL, conc_future_result(f->done, nan_, &f->out))
  ROW(CONC_EINVAL, conc_future_result(f->canc, nan_, &f->out))
  ROW(CONC_ETIMEDOUT, conc_future_result(f->pend, -inf, &f->out))
  ROW(CONC_ETIMEDOUT, conc_future_result(f->pend, -2.0, &f->out))
  ROW(CONC_ETIMEDOUT, conc_future_result(f->run, 0, &f->out))
  ROW(CONC_EIO, conc_future_result(f->failed, inf, &f->out))
  ROW(CONC_ECANCELED, conc_future_result(f->canc, inf, &f->out))
  ROW(0, conc_future_result(f->done, inf, NULL))
  ROW(CONC_EINVAL, conc_future_exception(NULL, 0, &f->err))
  ROW(CONC_EINVAL, conc_future_exception(f->done, 0, NULL))
  ROW(CONC_EINVAL, conc_future_exception(f->pend, nan_, &f->err))
  ROW(CONC_ETIMEDOUT, conc_future_exception(f->pend, -inf, &f->err))
  ROW(CONC_ECANCELED, conc_future_exception(f->canc, inf, &f->err))
  ROW(CONC_EINVAL, conc_future_add_done_callback(NULL, quiet_cb, NULL))
  ROW(CONC_EINVAL, conc_future_add_done_callback(f->pend, NULL, NULL))
  ROW(CONC_EINVAL, conc_future_add_done_callback(f->done, NULL, NULL))
  ROW(CONC_EINVAL, conc_future_set_running_or_notify_cancel(NULL))
  ROW(CONC_ESTATE, conc_future_set_running_or_notify_cancel(f->run))
  ROW(CONC_ESTATE, conc_future_set_running_or_notify_cancel(f->done))
  ROW(CONC_ESTATE, conc_future_set_running_or_notify_cancel(f->failed))
  ROW(CONC_EINVAL, conc_future_set_result(NULL, X1))
  ROW(CONC_EINVALSTATE, conc_future_set_result(f->done, NULL))
  ROW(CONC_EINVALSTATE, conc_future_set_result(f->failed, X1))
  ROW(CONC_EINVALSTATE, conc_future_set_result(f->canc, X1))
  ROW(CONC_EINVAL, conc_future_set_exception(NULL, CONC_EIO, "x"))
  ROW(CONC_EINVALSTATE, conc_future_set_exception(f->done, CONC_EIO, NULL))
  ROW(CONC_EINVALSTATE, conc_future_set_exception(f->failed, 0, "x"))
  ROW(CONC_EINVALSTATE, conc_future_set_exception(f->canc, INT_MIN, "x"))
  ROW(CONC_EINVAL, conc_future_repr(NULL, f->buf, sizeof f->buf))
  ROW(CONC_EINVAL, conc_future_repr(f->pend, NULL, 8))

  /* ---- futures.h: wait, as_completed ---- */
  ROW(CONC_EINVAL, conc_futures_wait(NULL, 1, 0, CONC_ALL_COMPLETED, &f->res))
  ROW(CONC_EINVAL, conc_futures_wait(fs1, 1, 0, CONC_ALL_COMPLETED, NULL))
  ROW(CONC_EINVAL, conc_futures_wait(fs1, 1, 0, (conc_return_when_t)0, &f->res))
  ROW(CONC_EINVAL, conc_futures_wait(fs1, 1, 0, (conc_return_when_t)4, &f->res))
  ROW(CONC_EINVAL,
      conc_futures_wait(fs1, 1, 0, (conc_return_when_t)-1, &f->res))
  ROW(CONC_EINVAL,
      conc_futures_wait(fs1, 1, nan_, CONC_FIRST_COMPLETED, &f->res))
  ROW(CONC_EINVAL,
      conc_futures_wait(f->fs_null, 2, 0, CONC_FIRST_COMPLETED, &f->res))
  ROW(CONC_EINVAL,
      conc_futures_wait(f->fs_null, 2, inf, CONC_FIRST_EXCEPTION, &f->res))
  ROW(CONC_EINVAL, conc_as_completed_init(NULL, fs1, 1, 0))
  ROW(CONC_EINVAL, conc_as_completed_init(&f->zac, NULL, 1, 0))
  ROW(CONC_EINVAL, conc_as_completed_init(&f->zac, fs1, 1, nan_))
  ROW(CONC_EINVAL, conc_as_completed_init(&f->zac, f->fs_null, 2, inf))
  ROW(CONC_EINVAL, conc_as_completed_next(NULL, &f->fo))
  ROW(CONC_EINVAL, conc_as_completed_next(&f->zac, &f->fo))
  PREP(CONC_EINVAL, conc_as_completed_init(&f->ac, fs1, 1, CONC_FOREVER),
       conc_as_completed_next(&f->ac, NULL))
  PREP(CONC_EINVAL,
       (conc_as_completed_init(&f->ac, fs1, 1, 0),
        conc_as_completed_destroy(&f->ac)),
       conc_as_completed_next(&f->ac, &f->fo))
  ROW(0, conc_as_completed_unfinished(NULL))
  ROW(1, strcmp(conc_as_completed_message(NULL), "") == 0)
  VOIDROW(conc_as_completed_destroy(NULL))
  VOIDROW(conc_as_completed_destroy(&f->zac))

  /* ---- futures.h: Executor, map ---- */
  conc_executor_opts_t neg = {.max_workers = -1};
  conc_executor_opts_t intmin = {.max_workers = INT_MIN};
  ROW(CONC_EINVAL, conc_executor_init(NULL, NULL))
  ROW(CONC_EINVAL, conc_executor_init(&f->zex, &neg))
  ROW(CONC_EINVAL, conc_executor_init(&f->zex, &intmin))
  ROW(CONC_EINVAL, conc_executor_submit(NULL, square, X1, &f->fo))
  ROW(CONC_EINVAL, conc_executor_submit(&f->ex, NULL, X1, &f->fo))
  ROW(CONC_EINVAL, conc_executor_submit(&f->zex, square, X1, &f->fo))
  ROW(CONC_EINVAL, conc_executor_submit(&f->zex, square, X1, NULL))
  PREP(CONC_ESTATE, conc_executor_shutdown(&f->ex, true, false),
       conc_executor_submit(&f->ex, square, X1, &f->fo))
  PREP(CONC_ESTATE, conc_executor_shutdown(&f->ex, false, true),
       conc_executor_submit(&f->ex, square, X1, NULL))
  PREP(CONC_EINVAL, conc_executor_destroy(&f->ex),
       conc_executor_submit(&f->ex, square, X1, &f->fo))
  PREP(CONC_EINVAL, conc_executor_destroy(&f->ex),
       conc_executor_shutdown(&f->ex, true, true))
  ROW(CONC_EINVAL, conc_executor_shutdown(NULL, true, false))
  ROW(CONC_EINVAL, conc_executor_shutdown(&f->zex, true, false))
  VOIDROW(conc_executor_destroy(NULL))
  VOIDROW(conc_executor_destroy(&f->zex))
  ROW(CONC_EINVAL, conc_executor_max_workers(NULL))
  ROW(CONC_EINVAL, conc_executor_max_workers(&f->zex))
  ROW(CONC_EINVAL, conc_executor_num_threads(NULL))
  ROW(1, conc_executor_thread_name_prefix(NULL) == NULL)
  ROW(1, conc_executor_thread_name_prefix(&f->zex) == NULL)
  ROW(CONC_EINVAL, conc_executor_map(NULL, square, f->inputs, 2, 0, &f->m))
  ROW(CONC_EINVAL, conc_executor_map(&f->zex, square, f->inputs, 2, 0, &f->m))
  ROW(CONC_EINVAL, conc_executor_map(&f->ex, square, f->inputs, 2, 0, NULL))
  ROW(CONC_EINVAL, conc_executor_map(&f->ex, NULL, f->inputs, 2, 0, &f->m))
  ROW(CONC_EINVAL, conc_executor_map(&f->ex, square, NULL, 2, 0, &f->m))
  ROW(CONC_EINVAL, conc_executor_map(&f->ex, square, f->inputs, 2, nan_, &f->m))
  PREP(CONC_ESTATE, conc_executor_shutdown(&f->ex, true, false),
       conc_executor_map(&f->ex, square, f->inputs, 2, inf, &f->m))
  PREP(CONC_EINVAL,
       conc_executor_map(&f->ex, square, f->inputs, 2, nan_, &f->m),
       conc_map_next(&f->m, &f->out))
  ROW(CONC_EINVAL, conc_map_next(NULL, &f->out))
  ROW(CONC_EINVAL, conc_map_next(&f->zm, &f->out))
  ROW(0, conc_map_index(NULL))
  ROW(1, strcmp(conc_map_message(NULL), "") == 0)
  VOIDROW(conc_map_close(NULL))
  VOIDROW(conc_map_close(&f->zm))
#undef ROW
#undef PREP
#undef VOIDROW
  return false;
}

/* Issue 10, campaign "Bad input": every row's code is the promised one and
 * nothing changed. The number of rows tried is printed (docs cite it). */
static void bad_inputs_get_the_promised_code_and_change_nothing(void **state) {
  (void)state;
  int tried = 0, wrong = 0;
  for (int i = 0;; i++) {
    struct fx *f = fx_new();
    struct snap before, after;
    const char *what = NULL;
    long want = 0, rc = 0;
    if (!bad_call(i, f, &what, &want, &before, &rc)) {
      fx_free(f);
      break;
    }
    take_snap(f, &after);
    tried++;
    if (rc != want) {
      print_error("row %d: %s\n  returned %ld (%s), promised %ld (%s)\n", i,
                  what, rc, conc_err_name((int)rc), want,
                  conc_err_name((int)want));
      wrong++;
    } else if (memcmp(&before, &after, sizeof before) != 0) {
      print_error("row %d: %s\n  changed an object\n", i, what);
      wrong++;
    }
    fx_free(f);
  }
  printf("bad inputs tried: %d, wrong: %d\n", tried, wrong);
  assert_int_equal(wrong, 0);
  assert_true(tried >= 300);
}

static conc_excepthook_args_t hook_seen;
static char hook_message[32];

static void recording_hook(const conc_excepthook_args_t *a, void *user) {
  hook_seen = *a;
  snprintf(hook_message, sizeof hook_message, "%s",
           a->message ? a->message : "(null)");
}

static int fail_without_format(void *arg, void **result) {
  const char *volatile fmt = arg; /* NULL, hidden from format checks */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-security"
  return conc_raise(CONC_EIO, fmt);
#pragma GCC diagnostic pop
}

/* A target returning conc_raise(code, NULL): the hook gets the code and
 * an empty message. */
static void thread_raise_with_null_format(void **state) {
  (void)state;
  conc_excepthook_t old;
  void *old_arg;
  conc_thread_get_excepthook(&old, &old_arg);
  conc_thread_set_excepthook(recording_hook, NULL);
  conc_thread_t t;
  assert_int_equal(conc_thread_init(&t, fail_without_format, NULL, NULL), 0);
  assert_int_equal(conc_thread_start(&t), 0);
  assert_int_equal(conc_thread_join(&t, CONC_FOREVER), 0);
  assert_int_equal(conc_thread_result(&t, NULL), CONC_EIO);
  assert_int_equal(hook_seen.code, CONC_EIO);
  assert_string_equal(hook_message, "");
  assert_int_equal(conc_thread_destroy(&t), 0);
  conc_thread_set_excepthook(old, old_arg);
}

/* A Timer with an infinite interval waits until it is cancelled. */
static void timer_with_infinite_interval_waits_for_cancel(void **state) {
  (void)state;
  conc_timer_t tm;
  assert_int_equal(conc_timer_init(&tm, INFINITY, nothing, X1, NULL), 0);
  assert_int_equal(conc_timer_start(&tm), 0);
  assert_int_equal(conc_timer_join(&tm, 0.05), CONC_ETIMEDOUT);
  assert_int_equal(conc_timer_cancel(&tm), 0);
  assert_int_equal(conc_timer_join(&tm, CONC_FOREVER), 0);
  void *out = X1;
  assert_int_equal(conc_thread_result(conc_timer_thread(&tm), &out), 0);
  assert_null(out); /* cancelled: fn never ran */
  assert_int_equal(conc_timer_destroy(&tm), 0);
}

CONC_TEST_MAIN(
    cmocka_unit_test(bad_inputs_get_the_promised_code_and_change_nothing),
    cmocka_unit_test(timer_with_infinite_interval_waits_for_cancel),
    cmocka_unit_test(thread_raise_with_null_format))
