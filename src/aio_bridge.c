/*
 * aio_bridge: the loop's bridges to the thread world (F13):
 * run_in_executor, to_thread, wrap_future and run_coroutine_threadsafe,
 * on the public loop API and futures.h.
 *
 * Locking protocol. Loop futures and tasks are touched only on their
 * loop's thread. A thread future (conc_future_t) completes on whatever
 * thread finishes it; its done callback does nothing there but post the
 * work to the loop with conc_loop_call_soon_threadsafe. The records shared
 * between a loop and other threads (struct wrap, struct rcts) have an
 * atomic reference count and otherwise only fields fixed before they are
 * published, except `task` in struct rcts, which only the loop's thread
 * reads or writes. The table of default executors is guarded by `dex_mu`.
 */
#include <pthread.h>
#include <stdlib.h>

#include "conc/error.h"
#include "conc/futures.h"
#include "conc/loop.h"
#include "conc/thread.h"
#include "loop-int.h"

/* ---- the default executor of each loop ----------------------------------
 *
 * asyncio keeps it in the loop. The core has no slot for it, so a table
 * keyed by the loop's address holds it; the loop's close
 * (conc__aio_default_executor_shutdown) and process exit shut it down.
 */

struct dex {
  conc_loop_t *loop;
  conc_executor_t ex;
  struct dex *next;
};

static pthread_mutex_t dex_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dex *dex_head;
static bool dex_atexit_armed;

static void dex_free(struct dex *d) {
  conc_executor_destroy(&d->ex); /* shutdown(wait=True) */
  free(d);
}

/* At process exit, before the worker threads are joined. */
static void dex_atexit(void *unused) {
  (void)unused;
  pthread_mutex_lock(&dex_mu);
  struct dex *d = dex_head;
  dex_head = NULL;
  pthread_mutex_unlock(&dex_mu);
  while (d) {
    struct dex *next = d->next;
    dex_free(d);
    d = next;
  }
}

static int dex_get(conc_loop_t *loop, conc_executor_t **out) {
  int rc = 0;
  pthread_mutex_lock(&dex_mu);
  struct dex *d = dex_head;
  while (d && d->loop != loop)
    d = d->next;
  if (!d) {
    if (!dex_atexit_armed &&
        (rc = conc_threading_register_atexit(dex_atexit, NULL)) == 0)
      dex_atexit_armed = true;
    if (rc == 0 && !(d = calloc(1, sizeof *d)))
      rc = CONC_ENOMEM;
    if (rc == 0 && (rc = conc_executor_init(
                        &d->ex, &(conc_executor_opts_t){.thread_name_prefix =
                                                            "asyncio"}))) {
      free(d);
      d = NULL;
    }
    if (d) {
      d->loop = loop;
      d->next = dex_head;
      dex_head = d;
    }
  }
  pthread_mutex_unlock(&dex_mu);
  if (d)
    *out = &d->ex;
  return rc;
}

/* loop.shutdown_default_executor(), called by conc_loop_close; the next
 * to_thread on a loop at that address makes a new one. Returns 0, or
 * CONC_ENOENT when the loop has none. */
int conc__aio_default_executor_shutdown(conc_loop_t *loop) {
  pthread_mutex_lock(&dex_mu);
  struct dex **p = &dex_head;
  while (*p && (*p)->loop != loop)
    p = &(*p)->next;
  struct dex *d = *p;
  if (d)
    *p = d->next;
  pthread_mutex_unlock(&dex_mu);
  if (!d)
    return CONC_ENOENT;
  dex_free(d);
  return 0;
}

/* ---- wrap_future ---------------------------------------------------------- */

struct wrap {
  conc_loop_t *loop;
  conc_future_t *cf;
  conc_aio_future_t *af;
  int refs; /* atomic */
};

/* Only on the loop's thread: the last count releases the loop future. */
static void wrap_unref(struct wrap *w) {
  if (__atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL))
    return;
  conc_aio_future_release(w->af);
  conc_future_release(w->cf);
  free(w);
}

/* _copy_future_state, on the loop's thread. */
static void wrap_on_loop(void *arg) {
  struct wrap *w = arg;
  if (!conc_aio_future_done(w->af)) {
    void *v = NULL;
    int rc = conc_future_result(w->cf, 0, &v);
    if (rc == 0)
      conc_aio_future_set_result(w->af, v);
    else if (rc == CONC_ECANCELED)
      conc_aio_cancel(w->af, NULL);
    else
      conc_aio_future_set_error(w->af, rc);
  }
  wrap_unref(w);
}

/* In the thread that completed cf. A closed loop can take nothing more:
 * its future stays pending, and this count is dropped only if it is not
 * the last (the loop future may not be released off its thread). */
static void wrap_cf_done(conc_future_t *cf, void *arg) {
  struct wrap *w = arg;
  (void)cf;
  if (conc_loop_call_soon_threadsafe(w->loop, wrap_on_loop, w) != 0)
    __atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL);
}

/* _call_check_cancel: cancelling the loop future cancels cf. */
static void wrap_af_done(conc_aio_future_t *af, void *arg) {
  struct wrap *w = arg;
  if (conc_aio_future_cancelled(af))
    conc_future_cancel(w->cf);
  wrap_unref(w);
}

int conc_aio_wrap_future(conc_loop_t *loop, conc_future_t *cf,
                         conc_aio_future_t **out) {
  if (!cf || !out)
    return CONC_EINVAL;
  if (!loop && !(loop = conc_loop_get()))
    return CONC_EINVAL;
  struct wrap *w = calloc(1, sizeof *w);
  if (!w)
    return CONC_ENOMEM;
  int rc = conc_aio_future_create(loop, &w->af);
  if (rc) {
    free(w);
    return rc;
  }
  w->loop = loop;
  w->cf = conc_future_retain(cf);
  w->refs = 3; /* af's callback, cf's callback, this call */
  if ((rc = conc_aio_future_add_done_callback(w->af, wrap_af_done, w)))
    w->refs--;
  else if ((rc = conc_future_add_done_callback(cf, wrap_cf_done, w)) &&
           conc_aio_future_remove_done_callback(w->af, wrap_af_done, w) > 0)
    w->refs--;
  if (rc)
    w->refs--; /* the cf callback never registered */
  if (rc == 0)
    *out = conc_aio_future_retain(w->af);
  wrap_unref(w);
  return rc;
}

/* ---- run_in_executor / to_thread ------------------------------------------ */

int conc_aio_run_in_executor(conc_executor_t *ex, conc_fn_t fn, void *arg,
                             void **out) {
  if (!fn)
    return CONC_EINVAL;
  conc_aio_future_t *task = conc_aio_current_task();
  if (!task)
    return CONC_ESTATE;
  conc_loop_t *loop = conc_aio_future_loop(task);
  int rc = ex ? 0 : dex_get(loop, &ex);
  conc_future_t *cf = NULL;
  if (rc || (rc = conc_executor_submit(ex, fn, arg, &cf)))
    return rc;
  conc_aio_future_t *af;
  rc = conc_aio_wrap_future(loop, cf, &af);
  if (rc) {
    conc_future_cancel(cf);
    conc_future_release(cf);
    return rc;
  }
  conc_future_release(cf);
  void *v = NULL;
  rc = conc_aio_await(af, &v); /* a cancel here cancels af, then cf */
  conc_aio_future_release(af);
  if (rc == 0 && out)
    *out = v;
  return rc;
}

int conc_aio_to_thread(conc_fn_t fn, void *arg, void **out) {
  return conc_aio_run_in_executor(NULL, fn, arg, out);
}

/* ---- run_coroutine_threadsafe --------------------------------------------- */

struct rcts {
  conc_loop_t *loop;
  conc_aio_fn_t fn;
  void *arg;
  conc_future_t *cf;
  conc_aio_future_t *task; /* the loop's thread only */
  int refs;                /* atomic */
};

static void rcts_unref(struct rcts *r) {
  if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL))
    return;
  conc_future_release(r->cf);
  free(r);
}

/* _set_concurrent_future_state: the task's outcome goes to cf. */
static void rcts_task_done(conc_aio_future_t *t, void *arg) {
  struct rcts *r = arg;
  void *v = NULL;
  int rc = conc_aio_future_result(t, &v);
  if (rc == CONC_ECANCELED)
    conc_future_cancel(r->cf);
  if (conc_future_set_running_or_notify_cancel(r->cf) == 1) {
    if (rc == 0)
      conc_future_set_result(r->cf, v);
    else
      conc_future_set_exception(r->cf, rc, conc_strerror(rc));
  }
  conc_aio_future_release(t);
  r->task = NULL;
  rcts_unref(r);
}

/* On the loop: start the task unless cf was cancelled first. */
static void rcts_start(void *arg) {
  struct rcts *r = arg;
  if (!conc_future_cancelled(r->cf)) {
    int rc = conc_aio_create_task(r->loop, r->fn, r->arg, NULL, &r->task);
    if (rc == 0) {
      __atomic_add_fetch(&r->refs, 1, __ATOMIC_ACQ_REL);
      if ((rc =
               conc_aio_future_add_done_callback(r->task, rcts_task_done, r))) {
        __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL);
        conc_aio_cancel(r->task, NULL);
        conc_aio_future_release(r->task);
        r->task = NULL;
      }
    }
    if (rc && conc_future_set_running_or_notify_cancel(r->cf) == 1)
      conc_future_set_exception(r->cf, rc, conc_strerror(rc));
  }
  rcts_unref(r);
}

/* On the loop: cf was cancelled, so is the task. */
static void rcts_cancel(void *arg) {
  struct rcts *r = arg;
  if (r->task)
    conc_aio_cancel(r->task, NULL);
  rcts_unref(r);
}

/* In whichever thread completed or cancelled cf. */
static void rcts_cf_done(conc_future_t *cf, void *arg) {
  struct rcts *r = arg;
  if (conc_future_cancelled(cf)) {
    __atomic_add_fetch(&r->refs, 1, __ATOMIC_ACQ_REL);
    if (conc_loop_call_soon_threadsafe(r->loop, rcts_cancel, r) != 0)
      rcts_unref(r);
  }
  rcts_unref(r);
}

int conc_aio_run_coroutine_threadsafe(conc_loop_t *loop, conc_aio_fn_t fn,
                                      void *arg, conc_future_t **out) {
  if (!loop || !fn || !out)
    return CONC_EINVAL;
  struct rcts *r = calloc(1, sizeof *r);
  if (!r)
    return CONC_ENOMEM;
  conc_future_t *cf;
  int rc = conc_future_new(&cf);
  if (rc) {
    free(r);
    return rc;
  }
  *r = (struct rcts){loop, fn, arg, conc_future_retain(cf), NULL, 2};
  if ((rc = conc_future_add_done_callback(cf, rcts_cf_done, r))) {
    r->refs = 1;
  } else if ((rc = conc_loop_call_soon_threadsafe(loop, rcts_start, r))) {
    conc_future_cancel(cf); /* its callback drops its count */
  }
  if (rc) {
    rcts_unref(r);
    conc_future_release(cf);
    return rc;
  }
  *out = cf;
  return 0;
}
