/*
 * aio_combine: asyncio's combinators on the public loop API: gather (F7),
 * wait (F8), wait_for and the timeout scope (F9), shield (F10) and
 * as_completed (F12). TaskGroup lives in aio_taskgroup.c.
 *
 * Locking protocol: none. Everything here runs on the loop's thread, as
 * the futures it touches do; no state is shared with another thread.
 *
 * Lifetimes. Each combinator keeps a small heap record that its done
 * callbacks and timers point at. A callback that was already scheduled can
 * no longer be removed, so the record counts its users: one per registered
 * callback or armed timer, plus the caller's while it runs. A user that
 * unregisters successfully (remove returned 1, cancel returned true) drops
 * its count; otherwise the callback drops it when it runs. The record is
 * freed, and the futures it retains released, when the count reaches zero.
 * A waiting task keeps nothing that a callback reads on its stack.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/loop.h"
#include "conc/time.h"

/* ---- shared helpers --------------------------------------------------- */

/* A relative timeout as a call_later delay: <0 when there is no limit. */
static int aio_delay(double timeout, double *delay) {
  if (isnan(timeout))
    return CONC_EINVAL;
  if (timeout == CONC_FOREVER || timeout > CONC_TIMEOUT_MAX)
    *delay = -1;
  else
    *delay = timeout > 0 ? timeout : 0;
  return 0;
}

/* The futures of futs without repeats, in first-seen order (Python passes
 * them through set()). All must be non-NULL and of one loop. */
static int aio_unique(conc_aio_future_t *const *futs, size_t n,
                      conc_aio_future_t ***out, size_t *m) {
  if (n > 0 && !futs)
    return CONC_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!futs[i] ||
        conc_aio_future_loop(futs[i]) != conc_aio_future_loop(futs[0]))
      return CONC_EINVAL;
  size_t cap = 8;
  while (cap < 2 * n)
    cap *= 2;
  conc_aio_future_t **set = calloc(cap, sizeof *set);
  conc_aio_future_t **u = malloc((n ? n : 1) * sizeof *u);
  if (!set || !u) {
    free(set);
    free(u);
    return CONC_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t h = (size_t)(((uintptr_t)futs[i] >> 4) * 0x9E3779B97F4A7C15u);
    for (h &= cap - 1; set[h] && set[h] != futs[i]; h = (h + 1) & (cap - 1))
      ;
    if (!set[h]) {
      set[h] = futs[i];
      u[k++] = futs[i];
    }
  }
  free(set);
  *out = u;
  *m = k;
  return 0;
}

/* ---- gather (F7) -------------------------------------------------------- */

struct gather;
struct gather_slot {
  struct gather *g;
  conc_aio_future_t *kid;
  size_t i;
};

struct gather {
  conc_aio_future_t *outer;
  size_t n, nfinished, refs;
  bool return_exceptions;
  bool completing; /* we end outer ourselves: its cancel is not the user's */
  bool abandoned;  /* creation failed: callbacks only release */
  void **results;
  int *codes;
  struct gather_slot slots[];
};

static void gather_unref(struct gather *g) {
  if (--g->refs)
    return;
  conc_aio_future_release(g->outer);
  free(g);
}

/* Python's _done_callback: a child's outcome goes to its slot while the
 * gather is pending; the first error (or cancel) ends the gather unless
 * return_exceptions; the last child ends it with the results. */
static void gather_kid_done(conc_aio_future_t *kid, void *arg) {
  struct gather_slot *s = arg;
  struct gather *g = s->g;
  void *v = NULL;
  int code = conc_aio_future_result(kid, &v); /* marks an error retrieved */
  g->nfinished++;
  if (!g->abandoned && !conc_aio_future_done(g->outer)) {
    if (g->results)
      g->results[s->i] = code == 0 ? v : NULL;
    if (g->codes)
      g->codes[s->i] = code;
    if (code != 0 && !g->return_exceptions) {
      g->completing = true;
      if (code == CONC_ECANCELED)
        conc_aio_cancel(g->outer, conc_aio_cancel_message(kid));
      else
        conc_aio_future_set_error(g->outer, code);
    } else if (g->nfinished == g->n) {
      conc_aio_future_set_result(g->outer, (void *)g->results);
    }
  }
  conc_aio_future_release(kid);
  gather_unref(g);
}

/* _GatheringFuture.cancel(): cancelling the gather cancels the children. */
static void gather_outer_done(conc_aio_future_t *outer, void *arg) {
  struct gather *g = arg;
  if (conc_aio_future_cancelled(outer) && !g->completing && !g->abandoned) {
    const char *msg = conc_aio_cancel_message(outer);
    for (size_t i = 0; i < g->n; i++)
      if (!conc_aio_future_done(g->slots[i].kid))
        conc_aio_cancel(g->slots[i].kid, msg);
  }
  gather_unref(g);
}

static int gather_check(conc_aio_future_t *const *futs, size_t n,
                        conc_aio_future_t **out) {
  if (!out || (n > 0 && !futs))
    return CONC_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!futs[i] ||
        conc_aio_future_loop(futs[i]) != conc_aio_future_loop(futs[0]))
      return CONC_EINVAL;
  return 0;
}

static int gather_empty(conc_aio_future_t **out) {
  conc_aio_future_t *f;
  int rc = conc_aio_future_create(NULL, &f);
  if (rc)
    return rc;
  conc_aio_future_set_result(f, NULL);
  *out = f;
  return 0;
}

/* Undo a half-made gather: the children registered so far drop out. */
static void gather_abandon(struct gather *g, size_t registered) {
  g->abandoned = true;
  for (size_t i = 0; i < registered; i++)
    if (conc_aio_future_remove_done_callback(g->slots[i].kid, gather_kid_done,
                                             &g->slots[i]) > 0) {
      conc_aio_future_release(g->slots[i].kid);
      gather_unref(g);
    }
  for (size_t i = registered; i < g->n; i++) {
    conc_aio_future_release(g->slots[i].kid);
    g->refs--;
  }
  conc_aio_cancel(g->outer, NULL); /* its callback drops the last count */
}

int conc_aio_gather(conc_aio_future_t *const *futs, size_t n,
                    const conc_aio_gather_opts_t *opts,
                    conc_aio_future_t **out) {
  int rc = gather_check(futs, n, out);
  if (rc)
    return rc;
  if (n == 0)
    return gather_empty(out);
  struct gather *g = calloc(1, sizeof *g + n * sizeof g->slots[0]);
  if (!g)
    return CONC_ENOMEM;
  rc = conc_aio_future_create(conc_aio_future_loop(futs[0]), &g->outer);
  if (rc == 0)
    rc = conc_aio_future_add_done_callback(g->outer, gather_outer_done, g);
  if (rc) {
    conc_aio_future_release(g->outer);
    free(g);
    return rc;
  }
  g->n = n;
  g->refs = n + 1;
  if (opts) {
    g->return_exceptions = opts->return_exceptions;
    g->results = opts->results;
    g->codes = opts->codes;
  }
  for (size_t i = 0; i < n; i++) {
    g->slots[i] = (struct gather_slot){g, conc_aio_future_retain(futs[i]), i};
    if (g->results)
      g->results[i] = NULL;
    if (g->codes)
      g->codes[i] = CONC_EINVALSTATE;
  }
  for (size_t i = 0; i < n; i++) {
    rc = conc_aio_future_add_done_callback(futs[i], gather_kid_done,
                                           &g->slots[i]);
    if (rc) {
      gather_abandon(g, i);
      return rc;
    }
  }
  *out = conc_aio_future_retain(g->outer);
  return 0;
}

/* ---- wait (F8) ------------------------------------------------------------ */

struct waiter {
  conc_loop_t *loop;
  conc_aio_future_t *fut; /* completed (result NULL) to wake the task */
  conc_handle_t timer;
  bool armed;
  size_t refs, counter;
  conc_return_when_t when;
};

static void waiter_unref(struct waiter *w) {
  if (--w->refs)
    return;
  conc_aio_future_release(w->fut);
  free(w);
}

static void waiter_wake(struct waiter *w) {
  if (!conc_aio_future_done(w->fut))
    conc_aio_future_set_result(w->fut, NULL);
}

static void waiter_disarm(struct waiter *w) {
  if (w->armed && conc_loop_cancel(w->loop, w->timer)) {
    w->armed = false;
    waiter_unref(w);
  }
}

static void waiter_timeout(void *arg) {
  struct waiter *w = arg;
  w->armed = false;
  waiter_wake(w);
  waiter_unref(w);
}

/* _wait's _on_completion: a cancelled future is not an exception. */
static void wait_on_completion(conc_aio_future_t *f, void *arg) {
  struct waiter *w = arg;
  w->counter--;
  if (w->counter == 0 || w->when == CONC_FIRST_COMPLETED ||
      (w->when == CONC_FIRST_EXCEPTION && !conc_aio_future_cancelled(f) &&
       conc_aio_future_exception(f) != 0)) {
    waiter_disarm(w);
    waiter_wake(w);
  }
  waiter_unref(w);
}

static int wait_check(conc_aio_future_t *const *futs, size_t n, double timeout,
                      conc_return_when_t when) {
  if (!futs || n == 0 || isnan(timeout))
    return CONC_EINVAL;
  if (when != CONC_FIRST_COMPLETED && when != CONC_FIRST_EXCEPTION &&
      when != CONC_ALL_COMPLETED)
    return CONC_EINVAL;
  conc_aio_future_t *task = conc_aio_current_task();
  if (!task)
    return CONC_ESTATE;
  for (size_t i = 0; i < n; i++)
    if (futs[i] && conc_aio_future_loop(futs[i]) != conc_aio_future_loop(task))
      return CONC_EINVAL;
  return 0;
}

/* A waiter record with the caller's count and, for a finite delay, an
 * armed timer. */
static int waiter_new(conc_loop_t *loop, double delay, struct waiter **out) {
  struct waiter *w = calloc(1, sizeof *w);
  if (!w)
    return CONC_ENOMEM;
  w->loop = loop;
  w->refs = 1;
  int rc = conc_aio_future_create(loop, &w->fut);
  if (rc) {
    free(w);
    return rc;
  }
  if (delay >= 0) {
    rc = conc_loop_call_later(loop, delay, waiter_timeout, w, &w->timer);
    if (rc) {
      waiter_unref(w);
      return rc;
    }
    w->armed = true;
    w->refs++;
  }
  *out = w;
  return 0;
}

static void wait_unregister(struct waiter *w, conc_aio_future_t **u, size_t m) {
  waiter_disarm(w);
  for (size_t i = 0; i < m; i++)
    if (conc_aio_future_remove_done_callback(u[i], wait_on_completion, w) > 0)
      waiter_unref(w);
}

static void wait_split(conc_aio_future_t **u, size_t m,
                       conc_aio_future_t **done, size_t *ndone,
                       conc_aio_future_t **pending, size_t *npending) {
  size_t d = 0, p = 0;
  for (size_t i = 0; i < m; i++) {
    if (conc_aio_future_done(u[i])) {
      if (done)
        done[d] = u[i];
      d++;
    } else {
      if (pending)
        pending[p] = u[i];
      p++;
    }
  }
  if (ndone)
    *ndone = d;
  if (npending)
    *npending = p;
}

int conc_aio_wait(conc_aio_future_t *const *futs, size_t n, double timeout,
                  conc_return_when_t when, conc_aio_future_t **done,
                  size_t *ndone, conc_aio_future_t **pending,
                  size_t *npending) {
  double delay;
  int rc = wait_check(futs, n, timeout, when);
  if (rc || (rc = aio_delay(timeout, &delay)))
    return rc;
  conc_aio_future_t **u;
  size_t m;
  if ((rc = aio_unique(futs, n, &u, &m)))
    return rc;
  struct waiter *w;
  rc = waiter_new(conc_aio_future_loop(u[0]), delay, &w);
  if (rc) {
    free(u);
    return rc;
  }
  w->when = when;
  size_t reg = 0;
  for (; reg < m; reg++, w->refs++)
    if ((rc = conc_aio_future_add_done_callback(u[reg], wait_on_completion, w)))
      break;
  w->counter = m;
  if (rc == 0)
    rc = conc_aio_await(w->fut, NULL);
  wait_unregister(w, u, reg);
  if (rc == 0)
    wait_split(u, m, done, ndone, pending, npending);
  waiter_unref(w);
  free(u);
  return rc;
}

/* ---- wait_for (F9) ---------------------------------------------------------
 */

/* f's done callback completes the proxy that the task awaits. */
static void proxy_done(conc_aio_future_t *f, void *arg) {
  conc_aio_future_t *proxy = arg;
  (void)f;
  if (!conc_aio_future_done(proxy))
    conc_aio_future_set_result(proxy, NULL);
  conc_aio_future_release(proxy);
}

/* Suspend until f is done, awaiting a plain proxy future rather than f:
 * a cancel of this task then cancels only the proxy, and the caller
 * passes it on to f with conc_aio_cancel, as a task's cancel() would.
 * 0 once f is done; CONC_ECANCELED when this task was cancelled first. */
static int await_done(conc_aio_future_t *f) {
  if (conc_aio_future_done(f))
    return 0;
  conc_aio_future_t *proxy;
  int rc = conc_aio_future_create(conc_aio_future_loop(f), &proxy);
  if (rc)
    return rc;
  rc = conc_aio_future_add_done_callback(f, proxy_done, proxy);
  if (rc == 0) {
    conc_aio_future_retain(proxy);
    rc = conc_aio_await(proxy, NULL);
    if (conc_aio_future_remove_done_callback(f, proxy_done, proxy) > 0)
      conc_aio_future_release(proxy);
  }
  conc_aio_future_release(proxy);
  return rc;
}

/* Python's _cancel_and_wait: cancel f and wait for its end; a cancel of
 * this task meanwhile is passed on to f and the wait goes on (a task
 * wakes only when the future it awaits is done). */
static int cancel_and_wait(conc_aio_future_t *f) {
  conc_aio_cancel(f, NULL);
  int rc;
  while ((rc = await_done(f)) == CONC_ECANCELED)
    conc_aio_cancel(f, NULL);
  return rc;
}

/* timeout <= 0: cancel and wait, then the outcome, a cancel being
 * reported as the timeout. */
static int wait_for_now(conc_aio_future_t *f, void **out) {
  int rc = conc_aio_future_done(f) ? 0 : cancel_and_wait(f);
  void *v = NULL;
  if (rc == 0)
    rc = conc_aio_future_result(f, &v);
  if (rc == CONC_ECANCELED)
    return CONC_ETIMEDOUT;
  if (rc == 0 && out)
    *out = v;
  return rc;
}

/* Python 3.12: `async with timeout(t): return await f`. The scope's
 * expiry (or any cancel of this task) cancels f, and f's own outcome is
 * the await's once f has ended: cancelled becomes CONC_ETIMEDOUT at the
 * scope's exit, while a result or an error f produced while being
 * cancelled is returned as it is. */
int conc_aio_wait_for(conc_aio_future_t *f, double timeout, void **out) {
  if (!f || isnan(timeout))
    return CONC_EINVAL;
  conc_aio_future_t *task = conc_aio_current_task();
  if (!task)
    return CONC_ESTATE;
  if (conc_aio_future_loop(f) != conc_aio_future_loop(task))
    return CONC_ESTATE;
  if (f == task)
    return CONC_EDEADLK;
  if (timeout != CONC_FOREVER && timeout <= 0)
    return wait_for_now(f, out);
  conc_aio_timeout_t to;
  int rc = conc_aio_timeout_enter(&to, timeout);
  if (rc)
    return rc;
  rc = await_done(f);
  if (rc == CONC_ECANCELED)
    rc = cancel_and_wait(f);
  void *v = NULL;
  if (rc == 0)
    rc = conc_aio_future_result(f, &v);
  rc = conc_aio_timeout_exit(&to, rc);
  if (rc == 0 && out)
    *out = v;
  return rc;
}

/* ---- timeout scope (F9) --------------------------------------------------- */

enum { TMO_MAGIC = 0x746d6f21u };
enum tmo_state { TMO_ENTERED = 1, TMO_EXPIRING, TMO_EXPIRED, TMO_EXITED };

/* The scope as kept in conc_aio_timeout_t's storage. */
struct tmo {
  uint32_t magic;
  int state;
  int cancelling; /* the task's cancelling() at enter */
  conc_aio_future_t *task;
  conc_loop_t *loop;
  double when; /* CONC_FOREVER: none */
  conc_handle_t handle;
};
_Static_assert(sizeof(struct tmo) <= sizeof(conc_aio_timeout_t),
               "conc_aio_timeout_t is too small");

static bool tmo_load(const conc_aio_timeout_t *to, struct tmo *t) {
  if (!to)
    return false;
  memcpy(t, to->priv, sizeof *t);
  return t->magic == TMO_MAGIC;
}

static void tmo_store(conc_aio_timeout_t *to, const struct tmo *t) {
  memcpy(to->priv, t, sizeof *t);
}

/* Timeout._on_timeout: cancel the task; exit turns that into a timeout. */
static void tmo_fire(void *arg) {
  conc_aio_timeout_t *to = arg;
  struct tmo t;
  if (!tmo_load(to, &t) || t.state != TMO_ENTERED)
    return;
  conc_aio_cancel(t.task, NULL);
  t.state = TMO_EXPIRING;
  t.handle = (conc_handle_t){0};
  tmo_store(to, &t);
}

static int tmo_arm(conc_aio_timeout_t *to, struct tmo *t, double when) {
  conc_handle_t h = {0};
  int rc = 0;
  if (when != CONC_FOREVER) {
    if (when <= conc_loop_time(t->loop))
      rc = conc_loop_call_soon(t->loop, tmo_fire, to, &h);
    else
      rc = conc_loop_call_at(t->loop, when, tmo_fire, to, &h);
    if (rc)
      return rc;
  }
  conc_loop_cancel(t->loop, t->handle);
  t->handle = h;
  t->when = when;
  return 0;
}

int conc_aio_timeout_enter(conc_aio_timeout_t *to, double delay) {
  if (!to || isnan(delay))
    return CONC_EINVAL;
  conc_aio_future_t *task = conc_aio_current_task();
  if (!task)
    return CONC_ESTATE;
  struct tmo t = {.magic = TMO_MAGIC,
                  .state = TMO_ENTERED,
                  .cancelling = conc_aio_task_cancelling(task),
                  .task = task,
                  .loop = conc_aio_future_loop(task)};
  double when = CONC_FOREVER;
  if (delay != CONC_FOREVER && delay <= CONC_TIMEOUT_MAX)
    when = conc_loop_time(t.loop) + delay;
  int rc = tmo_arm(to, &t, when);
  if (rc)
    return rc;
  tmo_store(to, &t);
  return 0;
}

int conc_aio_timeout_reschedule(conc_aio_timeout_t *to, double when) {
  struct tmo t;
  if (!tmo_load(to, &t) || isnan(when))
    return CONC_EINVAL;
  if (t.state != TMO_ENTERED)
    return CONC_ESTATE;
  int rc = tmo_arm(to, &t, when);
  if (rc == 0)
    tmo_store(to, &t);
  return rc;
}

double conc_aio_timeout_when(const conc_aio_timeout_t *to) {
  struct tmo t;
  return tmo_load(to, &t) ? t.when : CONC_FOREVER;
}

bool conc_aio_timeout_expired(const conc_aio_timeout_t *to) {
  struct tmo t;
  return tmo_load(to, &t) &&
         (t.state == TMO_EXPIRING || t.state == TMO_EXPIRED);
}

/* Timeout.__aexit__: only a cancel that the scope itself caused, with no
 * newer cancel request pending, becomes CONC_ETIMEDOUT. */
int conc_aio_timeout_exit(conc_aio_timeout_t *to, int rc) {
  struct tmo t;
  if (!tmo_load(to, &t))
    return CONC_EINVAL;
  if ((t.state != TMO_ENTERED && t.state != TMO_EXPIRING) ||
      conc_aio_current_task() != t.task)
    return CONC_ESTATE;
  conc_loop_cancel(t.loop, t.handle);
  t.handle = (conc_handle_t){0};
  if (t.state == TMO_EXPIRING) {
    t.state = TMO_EXPIRED;
    if (conc_aio_task_uncancel(t.task) <= t.cancelling && rc == CONC_ECANCELED)
      rc = CONC_ETIMEDOUT;
  } else {
    t.state = TMO_EXITED;
  }
  tmo_store(to, &t);
  return rc;
}

/* ---- shield (F10) ----------------------------------------------------------
 */

struct shield {
  conc_aio_future_t *inner, *outer;
  int refs;
};

static void shield_unref(struct shield *s) {
  if (--s->refs)
    return;
  conc_aio_future_release(s->inner);
  conc_aio_future_release(s->outer);
  free(s);
}

/* _inner_done_callback: outer follows inner unless outer was cancelled. */
static void shield_inner_done(conc_aio_future_t *inner, void *arg) {
  struct shield *s = arg;
  void *v = NULL;
  int rc = conc_aio_future_result(inner, &v); /* marks an error retrieved */
  if (!conc_aio_future_done(s->outer)) {
    if (rc == 0)
      conc_aio_future_set_result(s->outer, v);
    else if (rc == CONC_ECANCELED)
      conc_aio_cancel(s->outer, conc_aio_cancel_message(inner));
    else
      conc_aio_future_set_error(s->outer, rc);
  }
  shield_unref(s);
}

/* _outer_done_callback: a cancelled outer stops following inner. */
static void shield_outer_done(conc_aio_future_t *outer, void *arg) {
  struct shield *s = arg;
  (void)outer;
  if (!conc_aio_future_done(s->inner) &&
      conc_aio_future_remove_done_callback(s->inner, shield_inner_done, s) > 0)
    s->refs--; /* inner's count; this callback's keeps s alive */
  shield_unref(s);
}

int conc_aio_shield(conc_aio_future_t *f, conc_aio_future_t **out) {
  if (!f || !out)
    return CONC_EINVAL;
  if (conc_aio_future_done(f)) {
    *out = conc_aio_future_retain(f);
    return 0;
  }
  struct shield *s = calloc(1, sizeof *s);
  if (!s)
    return CONC_ENOMEM;
  int rc = conc_aio_future_create(conc_aio_future_loop(f), &s->outer);
  if (rc) {
    free(s);
    return rc;
  }
  s->inner = conc_aio_future_retain(f);
  s->refs = 1;
  rc = conc_aio_future_add_done_callback(s->outer, shield_outer_done, s);
  if (rc == 0) {
    s->refs++;
    rc = conc_aio_future_add_done_callback(f, shield_inner_done, s);
    if (rc) /* outer's callback, once outer is cancelled, frees s */
      conc_aio_cancel(s->outer, NULL);
  }
  if (rc) {
    shield_unref(s);
    return rc;
  }
  *out = conc_aio_future_retain(s->outer);
  return 0;
}

/* ---- as_completed (F12) ----------------------------------------------------
 */

struct conc_aio_as_completed {
  conc_loop_t *loop;
  conc_aio_future_t **distinct; /* m distinct futures, retained */
  size_t m;
  conc_aio_future_t **done; /* completed, not yet handed out: a FIFO */
  size_t head, tail;
  size_t left; /* not completed (frozen at the timeout) */
  size_t refs;
  bool timed_out, destroyed;
  conc_aio_future_t *waiter; /* the task in next(), if any */
  conc_handle_t timer;
  bool armed;
};

static void ac_unref(conc_aio_as_completed_t *it) {
  if (--it->refs)
    return;
  free(it->distinct);
  free(it->done);
  free(it);
}

static void ac_wake(conc_aio_as_completed_t *it) {
  if (it->waiter && !conc_aio_future_done(it->waiter))
    conc_aio_future_set_result(it->waiter, NULL);
}

/* _on_completion: once the timeout passed, late completions are ignored. */
static void ac_on_completion(conc_aio_future_t *f, void *arg) {
  conc_aio_as_completed_t *it = arg;
  if (!it->destroyed && !it->timed_out) {
    it->done[it->tail++] = f;
    if (--it->left == 0 && it->armed && conc_loop_cancel(it->loop, it->timer)) {
      it->armed = false;
      it->refs--; /* the timer's count; ours keeps it alive */
    }
    ac_wake(it);
  }
  ac_unref(it);
}

/* _on_timeout: every unfinished future stops being watched. */
static void ac_on_timeout(void *arg) {
  conc_aio_as_completed_t *it = arg;
  it->armed = false;
  if (!it->destroyed) {
    it->timed_out = true;
    for (size_t i = 0; i < it->m; i++)
      if (conc_aio_future_remove_done_callback(it->distinct[i],
                                               ac_on_completion, it) > 0)
        it->refs--;
    ac_wake(it);
  }
  ac_unref(it);
}

static int ac_new(conc_aio_future_t *const *futs, size_t n,
                  conc_aio_as_completed_t **out) {
  conc_aio_as_completed_t *it = calloc(1, sizeof *it);
  if (!it)
    return CONC_ENOMEM;
  int rc = aio_unique(futs, n, &it->distinct, &it->m);
  if (rc == 0 && !(it->done = malloc((it->m ? it->m : 1) * sizeof *it->done)))
    rc = CONC_ENOMEM;
  if (rc) {
    free(it->distinct);
    free(it);
    return rc;
  }
  it->refs = 1;
  it->left = it->m;
  it->loop = it->m ? conc_aio_future_loop(it->distinct[0]) : NULL;
  *out = it;
  return 0;
}

int conc_aio_as_completed(conc_aio_future_t *const *futs, size_t n,
                          double timeout, conc_aio_as_completed_t **out) {
  double delay;
  if (!out)
    return CONC_EINVAL;
  int rc = aio_delay(timeout, &delay);
  conc_aio_as_completed_t *it;
  if (rc || (rc = ac_new(futs, n, &it)))
    return rc;
  size_t reg = 0;
  for (; reg < it->m; reg++, it->refs++)
    if ((rc = conc_aio_future_add_done_callback(it->distinct[reg],
                                                ac_on_completion, it)))
      break;
  if (rc == 0 && it->m && delay >= 0 &&
      (rc = conc_loop_call_later(it->loop, delay, ac_on_timeout, it,
                                 &it->timer)) == 0) {
    it->armed = true;
    it->refs++;
  }
  for (size_t i = 0; i < reg; i++)
    conc_aio_future_retain(it->distinct[i]);
  if (rc) {
    it->m = reg; /* destroy releases and unregisters what was done */
    conc_aio_as_completed_destroy(it);
    return rc;
  }
  *out = it;
  return 0;
}

int conc_aio_as_completed_next(conc_aio_as_completed_t *it,
                               conc_aio_future_t **out) {
  if (!it || !out)
    return CONC_EINVAL;
  conc_aio_future_t *task = conc_aio_current_task();
  if (!task)
    return CONC_ESTATE;
  if (it->waiter || (it->loop && it->loop != conc_aio_future_loop(task)))
    return CONC_ESTATE; /* another task is in next() */
  for (;;) {
    if (it->head < it->tail) {
      *out = it->done[it->head++];
      return 0;
    }
    if (it->timed_out)
      return CONC_ETIMEDOUT;
    if (it->left == 0)
      return CONC_EEOF;
    int rc = conc_aio_future_create(it->loop, &it->waiter);
    if (rc)
      return rc;
    rc = conc_aio_await(it->waiter, NULL);
    conc_aio_future_release(it->waiter);
    it->waiter = NULL;
    if (rc)
      return rc;
  }
}

size_t conc_aio_as_completed_left(const conc_aio_as_completed_t *it) {
  return it ? it->left : 0;
}

void conc_aio_as_completed_destroy(conc_aio_as_completed_t *it) {
  if (!it)
    return;
  it->destroyed = true;
  if (it->armed && conc_loop_cancel(it->loop, it->timer)) {
    it->armed = false;
    it->refs--;
  }
  for (size_t i = 0; i < it->m; i++) {
    if (!it->timed_out && conc_aio_future_remove_done_callback(
                              it->distinct[i], ac_on_completion, it) > 0)
      it->refs--;
    conc_aio_future_release(it->distinct[i]);
  }
  ac_unref(it);
}
