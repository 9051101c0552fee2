/*
 * Loop futures and tasks (asyncio.Future, asyncio.Task), await, sleep,
 * run_until_complete and asyncio.run.
 *
 * Locking protocol: none. Futures and tasks are confined to their loop's
 * thread (as asyncio's are); the thread bridges reach them only through
 * call_soon_threadsafe. Reference counts are therefore plain integers.
 *
 * A task is a future plus a coroutine, created at the task's first step
 * (so a task that never starts costs no stack) with the loop's runner as
 * its parent: a step switches from the runner into the task, and the task
 * suspends by switching back. An await registers the task itself as the
 * future's first-class waiter: when the future completes, the task's
 * embedded step handle is queued directly (asyncio queues __wakeup, which
 * then queues __step: one hop instead of two, same order). A cancel
 * follows asyncio's protocol: cancel the future the task waits on; if that
 * is not possible, set must_cancel, delivered as CONC_ECANCELED at the
 * task's next resumption (or, for a task that never started, instead of
 * running it).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/coro.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "loop-int.h"
#include "platform-int.h"

enum { F_PENDING, F_CANCELLED, F_FINISHED };

typedef struct cbent {
  conc_aio_done_cb_t cb;
  void *arg;
} cbent_t;

enum { INLINE_CBS = 2 };

struct conc_aio_future {
  conc_loop_t *loop;
  void *result;
  char *cancel_msg;
  cbent_t *cbs; /* cbs_inline, or a heap array past INLINE_CBS */
  cbent_t cbs_inline[INLINE_CBS];
  uint32_t ncb, cbcap;
  uint32_t refs;
  int code;
  uint8_t state;
  uint8_t is_task;
  uint8_t retrieved;
  struct conc_aio_future *next_free;
};

typedef struct task {
  conc_aio_future_t fut; /* first: a task is a future */
  conc__handle_t step;
  conc_coro_t coro;
  conc_aio_fn_t fn;
  void *arg;
  void *res;
  conc_aio_future_t *waiting; /* asyncio's _fut_waiter */
  struct task *prev, *next;   /* the loop's not-done tasks */
  size_t stack_size;
  char *name; /* name_buf, or a heap copy */
  char name_buf[24];
  int rc;
  int ncancel;
  int wake; /* CONC_ECANCELED when resumed by a kill at close */
  bool must_cancel, started, returned;
  /* a wait on a descriptor (conc__aio_wait_io) */
  bool io_waiting;
  uint32_t io_bit;
  int io_fd;
  int io_rc;
  conc_handle_t io_timer;
} task_t;

#define T(f) ((task_t *)(void *)(f))

static __thread task_t *t_cur;

/* The waiter entry of a task awaiting a future. */
static void task_wakeup(conc_aio_future_t *f, void *task) {
  (void)f;
  (void)task; /* never called: recognised by address in schedule_cbs */
}

/* ---- records ------------------------------------------------------------- */

static conc_aio_future_t *record_new(conc_loop_t *loop, bool task) {
  void **pool = task ? &loop->task_pool : &loop->future_pool;
  conc_aio_future_t *f = *pool;
  if (f) {
    *pool = f->next_free;
  } else {
    f = malloc(task ? sizeof(task_t) : sizeof(conc_aio_future_t));
    if (!f)
      return NULL;
  }
  memset(f, 0, sizeof *f);
  f->loop = loop;
  f->cbs = f->cbs_inline;
  f->cbcap = INLINE_CBS;
  f->refs = 1;
  f->is_task = task;
  f->retrieved = 1;
  return f;
}

static void record_free(conc_aio_future_t *f) {
  conc_loop_t *loop = f->loop;
  if (f->cbs != f->cbs_inline)
    free(f->cbs);
  free(f->cancel_msg);
  if (f->is_task) {
    task_t *t = T(f);
    if (t->name != t->name_buf)
      free(t->name);
  }
  void **pool = f->is_task ? &loop->task_pool : &loop->future_pool;
  f->next_free = *pool;
  *pool = f;
}

static void pool_drain(void **pool) {
  conc_aio_future_t *f = *pool;
  while (f) {
    conc_aio_future_t *n = f->next_free;
    free(f);
    f = n;
  }
  *pool = NULL;
}

static const char *fut_kind(const conc_aio_future_t *f) {
  return f->is_task ? "Task" : "Future";
}

static const char *fut_name(const conc_aio_future_t *f) {
  return f->is_task ? T(f)->name : "";
}

conc_aio_future_t *conc_aio_future_retain(conc_aio_future_t *f) {
  if (f)
    f->refs++;
  return f;
}

void conc_aio_future_release(conc_aio_future_t *f) {
  if (!f || --f->refs > 0)
    return;
  if (f->state == F_FINISHED && !f->retrieved)
    conc__loop_report(f->loop, "%s exception was never retrieved: %s%s%s %s",
                      fut_kind(f), f->is_task ? "'" : "", fut_name(f),
                      f->is_task ? "'" : "", conc_err_name(f->code));
  record_free(f);
}

int conc_aio_future_create(conc_loop_t *loop, conc_aio_future_t **out) {
  if (!loop)
    loop = conc_loop_get();
  int rc = conc__loop_check(loop);
  if (rc)
    return rc;
  if (!out)
    return CONC_EINVAL;
  conc_aio_future_t *f = record_new(loop, false);
  if (!f)
    return CONC_ENOMEM;
  *out = f;
  return 0;
}

conc_loop_t *conc_aio_future_loop(const conc_aio_future_t *f) {
  return f ? f->loop : NULL;
}

bool conc_aio_future_done(const conc_aio_future_t *f) {
  return f && f->state != F_PENDING;
}

bool conc_aio_future_cancelled(const conc_aio_future_t *f) {
  return f && f->state == F_CANCELLED;
}

bool conc_aio_is_task(const conc_aio_future_t *f) { return f && f->is_task; }

const char *conc_aio_cancel_message(const conc_aio_future_t *f) {
  return f && f->cancel_msg ? f->cancel_msg : "";
}

/* ---- callbacks ------------------------------------------------------------
 */

static int cb_add(conc_aio_future_t *f, conc_aio_done_cb_t cb, void *arg) {
  if (f->ncb == f->cbcap) {
    uint32_t cap = f->cbcap * 2;
    cbent_t *n = f->cbs == f->cbs_inline ? malloc(cap * sizeof *n)
                                         : realloc(f->cbs, cap * sizeof *n);
    if (!n)
      return CONC_ENOMEM;
    if (f->cbs == f->cbs_inline)
      memcpy(n, f->cbs_inline, sizeof f->cbs_inline);
    f->cbs = n;
    f->cbcap = cap;
  }
  f->cbs[f->ncb++] = (cbent_t){cb, arg};
  return 0;
}

static int cb_remove(conc_aio_future_t *f, conc_aio_done_cb_t cb, void *arg,
                     bool match_arg) {
  uint32_t k = 0;
  int removed = 0;
  for (uint32_t i = 0; i < f->ncb; i++) {
    if (f->cbs[i].cb == cb && (!match_arg || f->cbs[i].arg == arg))
      removed++;
    else
      f->cbs[k++] = f->cbs[i];
  }
  f->ncb = k;
  return removed;
}

void conc__aio_run_done(void *future, void (*fn)(void *, void *), void *arg);

void conc__aio_run_done(void *future, void (*fn)(void *, void *), void *arg) {
  conc_aio_future_t *f = future;
  ((conc_aio_done_cb_t)fn)(f, arg);
  conc_aio_future_release(f);
}

static void schedule_one(conc_aio_future_t *f, cbent_t e) {
  if (e.cb == task_wakeup) {
    conc__loop_push(f->loop, &T(e.arg)->step);
    return;
  }
  if (conc__loop_push_done(f->loop, (void (*)(void *, void *))e.cb, f, e.arg) ==
      0)
    f->refs++;
  else
    conc__loop_report(f->loop, "no memory to schedule a done callback");
}

/* F3: every callback goes through the ready queue, in order. */
static void schedule_cbs(conc_aio_future_t *f) {
  if (f->loop->closed) {
    f->ncb = 0;
    return;
  }
  for (uint32_t i = 0; i < f->ncb; i++)
    schedule_one(f, f->cbs[i]);
  f->ncb = 0;
}

int conc_aio_future_add_done_callback(conc_aio_future_t *f,
                                      conc_aio_done_cb_t cb, void *arg) {
  if (!f || !cb)
    return CONC_EINVAL;
  int rc = conc__loop_check(f->loop);
  if (rc)
    return rc;
  if (f->state != F_PENDING) {
    schedule_one(f, (cbent_t){cb, arg});
    return 0;
  }
  return cb_add(f, cb, arg);
}

int conc_aio_future_remove_done_callback(conc_aio_future_t *f,
                                         conc_aio_done_cb_t cb, void *arg) {
  if (!f || !cb)
    return CONC_EINVAL;
  return cb_remove(f, cb, arg, true);
}

/* ---- outcomes -------------------------------------------------------------
 */

static int outcome(conc_aio_future_t *f, void **out) {
  switch (f->state) {
  case F_PENDING:
    return CONC_EINVALSTATE;
  case F_CANCELLED:
    return CONC_ECANCELED;
  default:
    f->retrieved = 1;
    if (f->code)
      return f->code;
    if (out)
      *out = f->result;
    return 0;
  }
}

int conc_aio_future_result(conc_aio_future_t *f, void **out) {
  return f ? outcome(f, out) : CONC_EINVAL;
}

int conc_aio_future_exception(conc_aio_future_t *f) {
  if (!f)
    return CONC_EINVAL;
  int rc = outcome(f, NULL);
  return rc;
}

static void complete(conc_aio_future_t *f, uint8_t state, int code,
                     void *value) {
  f->state = state;
  f->code = code;
  f->result = value;
  f->retrieved = state != F_FINISHED || code == 0;
  schedule_cbs(f);
}

int conc_aio_future_set_result(conc_aio_future_t *f, void *value) {
  if (!f)
    return CONC_EINVAL;
  if (f->is_task)
    return CONC_ESTATE;
  if (f->state != F_PENDING)
    return CONC_EINVALSTATE;
  complete(f, F_FINISHED, 0, value);
  return 0;
}

int conc_aio_future_set_error(conc_aio_future_t *f, int code) {
  if (!f || code >= 0 || code == CONC_ECANCELED)
    return CONC_EINVAL;
  if (f->is_task)
    return CONC_ESTATE;
  if (f->state != F_PENDING)
    return CONC_EINVALSTATE;
  complete(f, F_FINISHED, code, NULL);
  return 0;
}

static void set_msg(conc_aio_future_t *f, const char *msg) {
  if (!msg)
    return;
  char *m = strdup(msg);
  if (!m)
    return; /* the message is a courtesy; the cancel itself stands */
  free(f->cancel_msg);
  f->cancel_msg = m;
}

static bool future_cancel(conc_aio_future_t *f, const char *msg) {
  if (f->state != F_PENDING)
    return false;
  set_msg(f, msg);
  complete(f, F_CANCELLED, 0, NULL);
  return true;
}

static bool io_wait_end(task_t *t, int rc);
static bool task_cancel(task_t *t, const char *msg);

/* fut_waiter.cancel(): a task awaited by another is asked to cancel (it
 * ends when its function has unwound), a plain future is cancelled now. */
static bool cancel_awaited(conc_aio_future_t *f, const char *msg) {
  return f->is_task ? task_cancel(T(f), msg) : future_cancel(f, msg);
}

static bool task_cancel(task_t *t, const char *msg) {
  if (t->fut.state != F_PENDING)
    return false;
  t->ncancel++;
  set_msg(&t->fut, msg);
  if (t->waiting && cancel_awaited(t->waiting, msg))
    return true;
  if (io_wait_end(t, CONC_ECANCELED))
    return true;
  t->must_cancel = true;
  return true;
}

bool conc_aio_cancel(conc_aio_future_t *f, const char *msg) {
  if (!f || conc__loop_check(f->loop) != 0)
    return false;
  return f->is_task ? task_cancel(T(f), msg) : future_cancel(f, msg);
}

/* ---- tasks -----------------------------------------------------------------
 */

static void tasks_link(conc_loop_t *loop, task_t *t) {
  t->prev = NULL;
  t->next = loop->tasks_head;
  if (t->next)
    t->next->prev = t;
  loop->tasks_head = t;
  loop->ntasks++;
}

static void tasks_unlink(conc_loop_t *loop, task_t *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    loop->tasks_head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  loop->ntasks--;
}

/* "Task-N" without snprintf, which cost as much as the rest of a task's
 * creation, run and end together. */
static void default_name(char buf[24], uint64_t n) {
  char digits[21];
  int k = 0;
  do
    digits[k++] = (char)('0' + n % 10);
  while ((n /= 10) != 0);
  memcpy(buf, "Task-", 5);
  for (int i = 0; i < k; i++)
    buf[5 + i] = digits[k - 1 - i];
  buf[5 + k] = '\0';
}

int conc_aio_create_task(conc_loop_t *loop, conc_aio_fn_t fn, void *arg,
                         const conc_aio_task_opts_t *opts,
                         conc_aio_future_t **out) {
  if (!loop)
    loop = conc_loop_get();
  int rc = conc__loop_check(loop);
  if (rc)
    return rc;
  if (!fn)
    return CONC_EINVAL;
  task_t *t = T(record_new(loop, true));
  if (!t)
    return CONC_ENOMEM;
  memset((char *)t + sizeof t->fut, 0, sizeof *t - sizeof t->fut);
  t->name = t->name_buf;
  if (opts && opts->name) {
    t->name = strdup(opts->name);
    if (!t->name) {
      t->name = t->name_buf;
      record_free(&t->fut);
      return CONC_ENOMEM;
    }
  } else {
    default_name(t->name_buf, ++loop->task_counter);
  }
  t->fn = fn;
  t->arg = arg;
  t->stack_size = opts ? opts->stack_size : 0;
  t->step.kind = CONC__H_TASK;
  t->step.embedded = 1;
  t->step.ctx = t;
  tasks_link(loop, t);
  conc__loop_push(loop, &t->step);
  if (out) {
    t->fut.refs = 2; /* the loop's and the caller's */
    *out = &t->fut;
  }
  return 0;
}

const char *conc_aio_task_name(const conc_aio_future_t *t) {
  return t && t->is_task ? T(t)->name : "";
}

int conc_aio_task_set_name(conc_aio_future_t *f, const char *name) {
  if (!f || !name || !f->is_task)
    return CONC_EINVAL;
  char *n = strdup(name);
  if (!n)
    return CONC_ENOMEM;
  task_t *t = T(f);
  if (t->name != t->name_buf)
    free(t->name);
  t->name = n;
  return 0;
}

int conc_aio_task_cancelling(const conc_aio_future_t *f) {
  if (!f || !f->is_task)
    return CONC_EINVAL;
  return T(f)->ncancel;
}

int conc_aio_task_uncancel(conc_aio_future_t *f) {
  if (!f || !f->is_task)
    return CONC_EINVAL;
  task_t *t = T(f);
  if (t->ncancel > 0 && --t->ncancel == 0)
    t->must_cancel = false;
  return t->ncancel;
}

conc_aio_future_t *conc_aio_current_task(void) {
  return t_cur ? &t_cur->fut : NULL;
}

size_t conc_aio_all_tasks(conc_loop_t *loop, conc_aio_future_t **out,
                          size_t cap) {
  if (!loop)
    loop = conc_loop_running();
  if (!loop)
    return 0;
  size_t i = 0;
  for (task_t *t = loop->tasks_head; t; t = t->next, i++)
    if (out && i < cap)
      out[i] = &t->fut;
  return i;
}

/* The task's end: its outcome, its callbacks, the loop's reference. */
static void task_finish(task_t *t, int rc, void *res) {
  conc_loop_t *loop = t->fut.loop;
  tasks_unlink(loop, t);
  if (rc == 0 && !t->must_cancel)
    complete(&t->fut, F_FINISHED, 0, res);
  else if (rc == 0 || rc == CONC_ECANCELED)
    complete(&t->fut, F_CANCELLED, 0, NULL);
  else
    complete(&t->fut, F_FINISHED, rc < 0 ? rc : CONC_EFAILED, NULL);
  t->must_cancel = false;
  conc_aio_future_release(&t->fut);
}

/* The task's outcome stays in the task (the runner reads it after the
 * switch), so the coroutine itself always finishes with 0. */
static int task_entry(void *p, void **result) {
  task_t *t = p;
  (void)result;
  t->res = NULL;
  t->rc = t->fn(t->arg, &t->res);
  t->returned = true;
  return 0;
}

static int task_start(task_t *t) {
  conc_coro_opts_t o = {.stack_size = t->stack_size,
                        .parent = conc__loop_runner(t->fut.loop),
                        .name = t->name};
  int rc = conc_coro_init(&t->coro, task_entry, t, &o);
  if (rc)
    return rc;
  t->started = true;
  conc_coro_switch(&t->coro, t, NULL);
  return 0;
}

/* One step of a task, run by the loop from the runner coroutine. */
void conc__aio_step(void *p);

void conc__aio_step(void *p) {
  task_t *t = p, *prev = t_cur;
  t_cur = t;
  if (!t->started) {
    int rc = t->must_cancel ? CONC_ECANCELED : task_start(t);
    if (rc) {
      t_cur = prev;
      task_finish(t, rc, NULL);
      return;
    }
  } else {
    conc_coro_switch(&t->coro, NULL, NULL);
  }
  t_cur = prev;
  if (t->returned) {
    conc_coro_destroy(&t->coro);
    task_finish(t, t->rc, t->res);
  }
}

/* Give the loop back; returns when the task is stepped again, with
 * CONC_ECANCELED when the loop is closing and unwinds the task. */
static int suspend(task_t *t) {
  if (t->fut.loop->closed)
    return CONC_ECANCELED;
  int rc = conc_coro_switch(conc__loop_runner(t->fut.loop), NULL, NULL);
  return rc ? rc : t->wake;
}

static int take_must_cancel(task_t *t) {
  if (!t->must_cancel)
    return 0;
  t->must_cancel = false;
  return CONC_ECANCELED;
}

int conc_aio_await(conc_aio_future_t *f, void **out) {
  task_t *t = t_cur;
  if (!f)
    return CONC_EINVAL;
  if (!t || f->loop != t->fut.loop)
    return CONC_ESTATE;
  if (f == &t->fut)
    return CONC_EDEADLK;
  if (f->state == F_PENDING) {
    if (t->fut.loop->closed)
      return CONC_ECANCELED;
    int rc = cb_add(f, task_wakeup, t);
    if (rc)
      return rc;
    f->refs++;
    t->waiting = f;
    if (t->must_cancel && cancel_awaited(f, t->fut.cancel_msg))
      t->must_cancel = false;
    rc = suspend(t);
    t->waiting = NULL;
    if (rc) { /* unwound at close: f is still pending */
      cb_remove(f, task_wakeup, t, true);
      conc_aio_future_release(f);
      return rc;
    }
    conc_aio_future_release(f);
    rc = take_must_cancel(t);
    if (rc)
      return rc;
  }
  return outcome(f, out);
}

static void sleep_fire(void *f) {
  if (((conc_aio_future_t *)f)->state == F_PENDING)
    complete(f, F_FINISHED, 0, NULL);
}

int conc_aio_sleep(double delay) {
  task_t *t = t_cur;
  if (!t)
    return CONC_ESTATE;
  if (isnan(delay))
    return CONC_EINVAL;
  conc_loop_t *loop = t->fut.loop;
  if (delay <= 0) { /* asyncio's bare yield */
    conc__loop_push(loop, &t->step);
    int rc = suspend(t);
    return rc ? rc : take_must_cancel(t);
  }
  conc_aio_future_t *f = record_new(loop, false);
  if (!f)
    return CONC_ENOMEM;
  int64_t ns = delay >= CONC_TIMEOUT_MAX ? INT64_MAX / 2 : conc__ns_ceil(delay);
  conc_handle_t h;
  int rc = conc__loop_timer(loop, conc__now_ns() + ns, sleep_fire, f, &h);
  if (rc == 0) {
    rc = conc_aio_await(f, NULL);
    conc_loop_cancel(loop, h);
  }
  conc_aio_future_release(f);
  return rc;
}

/* ---- descriptors ---------------------------------------------------------- */

/* End a descriptor wait that the poller has not ended yet (its step is not
 * queued): the task resumes with rc. False when there is nothing to end. */
static bool io_wait_end(task_t *t, int rc) {
  if (!t->io_waiting || t->step.state == CONC__HS_READY)
    return false;
  conc_loop_t *loop = t->fut.loop;
  conc__loop_io_disarm(loop, t->io_fd, t->io_bit, &t->step);
  conc_loop_cancel(loop, t->io_timer);
  t->io_waiting = false;
  t->io_rc = rc;
  conc__loop_push(loop, &t->step);
  return true;
}

static void io_timeout(void *p) { io_wait_end(p, CONC_ETIMEDOUT); }

static int64_t timeout_ns(double timeout) {
  if (timeout <= 0)
    return 0;
  if (timeout >= CONC_TIMEOUT_MAX)
    return INT64_MAX / 2;
  return conc__ns_ceil(timeout);
}

int conc__aio_wait_io(int fd, uint32_t bit, double timeout) {
  task_t *t = t_cur;
  if (!t)
    return CONC_ESTATE;
  if (isnan(timeout))
    return CONC_EINVAL;
  int rc = take_must_cancel(t);
  if (rc)
    return rc;
  conc_loop_t *loop = t->fut.loop;
  rc = conc__loop_io_arm(loop, fd, bit, &t->step);
  if (rc)
    return rc;
  t->io_fd = fd;
  t->io_bit = bit;
  t->io_rc = 0;
  t->io_waiting = true;
  t->io_timer = (conc_handle_t){0};
  if (timeout != CONC_FOREVER) {
    rc = conc__loop_timer(loop, conc__now_ns() + timeout_ns(timeout),
                          io_timeout, t, &t->io_timer);
    if (rc) {
      conc__loop_io_disarm(loop, fd, bit, &t->step);
      t->io_waiting = false;
      return rc;
    }
  }
  rc = suspend(t);
  if (rc) { /* unwound at close */
    conc__loop_io_disarm(loop, fd, bit, &t->step);
    t->io_waiting = false;
    return rc;
  }
  if (t->io_waiting) { /* the poller ended it */
    t->io_waiting = false;
    conc_loop_cancel(loop, t->io_timer);
  }
  rc = t->io_rc;
  return rc ? rc : take_must_cancel(t);
}

/* ---- running
 * ----------------------------------------------------------------- */

static void stop_loop_cb(conc_aio_future_t *f, void *loop) {
  (void)f;
  conc_loop_stop(loop);
}

int conc_loop_run_until_complete(conc_loop_t *loop, conc_aio_future_t *f,
                                 void **result) {
  int rc = conc__loop_check(loop);
  if (rc)
    return rc;
  if (!f)
    return CONC_EINVAL;
  if (f->loop != loop)
    return CONC_EINVAL;
  if (loop->running || conc_loop_running())
    return CONC_ESTATE;
  if (f->state == F_PENDING) {
    rc = cb_add(f, stop_loop_cb, loop);
    if (rc)
      return rc;
    rc = conc_loop_run_forever(loop);
    cb_remove(f, stop_loop_cb, loop, true);
    if (rc)
      return rc;
    if (f->state == F_PENDING)
      return CONC_ESTATE; /* stopped before the future completed */
  }
  return outcome(f, result);
}

typedef struct countdown {
  size_t left;
  conc_loop_t *loop;
} countdown_t;

static void countdown_cb(conc_aio_future_t *f, void *arg) {
  countdown_t *c = arg;
  if (conc_aio_future_exception(f) != 0 && !conc_aio_future_cancelled(f))
    conc__loop_report(c->loop, "unhandled error %s in task '%s' at shutdown",
                      conc_err_name(f->code), fut_name(f));
  if (--c->left == 0)
    conc_loop_stop(c->loop);
}

/* asyncio.run's _cancel_all_tasks: cancel what is left and let it end. */
static void cancel_all(conc_loop_t *loop) {
  countdown_t c = {.left = 0, .loop = loop};
  for (task_t *t = loop->tasks_head; t; t = t->next) {
    task_cancel(t, NULL);
    if (cb_add(&t->fut, countdown_cb, &c) == 0)
      c.left++;
  }
  while (c.left > 0 && conc_loop_run_forever(loop) == 0)
    ;
}

int conc_aio_run(conc_aio_fn_t main, void *arg, const conc_loop_opts_t *opts,
                 void **result) {
  if (!main)
    return CONC_EINVAL;
  if (conc_loop_running())
    return CONC_ESTATE;
  conc_loop_t *loop;
  int rc = conc_loop_create(opts, &loop);
  if (rc)
    return rc;
  conc_aio_future_t *t;
  rc = conc_aio_create_task(loop, main, arg, &(conc_aio_task_opts_t){0}, &t);
  if (rc == 0) {
    void *res = NULL;
    rc = conc_loop_run_until_complete(loop, t, &res);
    if (rc == 0 && result)
      *result = res;
    cancel_all(loop);
    conc_aio_future_release(t);
  }
  conc_loop_destroy(loop);
  return rc;
}

/* ---- close
 * ------------------------------------------------------------------- */

/* At close nothing is scheduled any more, but done callbacks often own
 * what a task was given (a server's connection, say): run them now, so a
 * task that never ran still gives its resources back. A task awaiting this
 * one is being unwound itself: its wake-up entry is skipped. */
static void run_cbs_now(conc_aio_future_t *f) {
  uint32_t n = f->ncb;
  f->ncb = 0;
  for (uint32_t i = 0; i < n; i++)
    if (f->cbs[i].cb != task_wakeup)
      f->cbs[i].cb(f, f->cbs[i].arg);
}

void conc__aio_loop_closing(conc_loop_t *loop) {
  /* A closed loop refuses to suspend (suspend() sees it), so a killed
   * task's awaits return CONC_ECANCELED at once and it unwinds. */
  loop->closed = true;
  while (loop->tasks_head) {
    task_t *t = loop->tasks_head;
    if (loop->debug)
      conc__loop_report(loop, "Task was destroyed but it is pending: '%s'",
                        t->name);
    if (t->started) {
      task_t *prev = t_cur;
      t_cur = t;
      conc_coro_destroy(&t->coro); /* a suspended one unwinds first */
      t_cur = prev;
    }
    tasks_unlink(loop, t);
    t->fut.state = F_CANCELLED;
    run_cbs_now(&t->fut);
    conc_aio_future_release(&t->fut);
  }
  /* Done callbacks still queued run now, for the same reason as above (a
   * server's accepting task gives the server back in one); what they try
   * to schedule is refused, the loop being closed. */
  conc__handle_t *h = loop->ready_head;
  loop->ready_head = loop->ready_tail = NULL;
  while (h) {
    conc__handle_t *next = h->next;
    if (h->kind == CONC__H_DONE && h->state == CONC__HS_READY) {
      h->state = CONC__HS_CANCELLED;
      conc__aio_run_done(h->ctx, h->done, h->arg);
    }
    h = next;
  }
  loop->closed = false;
  pool_drain(&loop->future_pool);
  pool_drain(&loop->task_pool);
}
