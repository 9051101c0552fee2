/*
 * ProcessPoolExecutor: concurrent.futures' process executor on the pool
 * core. A submit is a one-item pool job whose hooks drive a thread future
 * (futures-int.h): on_start marks it running when its chunk is about to be
 * sent (or drops the job if the future was cancelled while queued), and
 * on_done completes it with the result bytes or the failure and its
 * detail, kept in a block the future owns (conc__future_set_ext), so the
 * future outlives the executor. map is an imap job with the iteration's
 * own deadline.
 *
 * Locking protocol. The executor adds no lock of its own: its state is the
 * pool core's (core->mu), and futures are completed from the handler
 * thread (or a caller collecting its own chunk) with no core lock held;
 * on_start runs under core->mu and only takes the future's stripe lock,
 * which never calls back into the pool.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/time.h"
#include "futures-int.h"
#include "platform-int.h"
#include "pool-int.h"
#include "sync-int.h"

#define PEXEC_MAGIC 0x70657865u
#define EXT_MAGIC 0x70667574u

/* The block a process future owns: its detail and its result bytes. */
struct pfut {
  uint32_t magic;
  conc_async_result_t *job; /* a reference: result() collects it itself */
  conc_pool_error_t err;
  size_t len, cap;
  _Alignas(16) unsigned char data[];
};

static conc__pool_core_t *core_of(conc_process_executor_t *ex, int *err) {
  if (!ex || ex->priv.magic != PEXEC_MAGIC || !ex->priv.core) {
    *err = CONC_EINVAL;
    return NULL;
  }
  conc__pool_core_t *c = ex->priv.core;
  if (c->creator != (pid_t)conc__sync_pid()) {
    *err = CONC_EPERM;
    return NULL;
  }
  *err = 0;
  return c;
}

int conc__process_executor_init_with(conc_process_executor_t *ex,
                                     const conc_process_executor_opts_t *opts,
                                     const conc__pool_transport_t *tp) {
  static const conc_process_executor_opts_t defaults;
  if (!ex)
    return CONC_EINVAL;
  if (!opts)
    opts = &defaults;
  if (opts->max_workers < 0 || opts->max_tasks_per_child < 0 ||
      (opts->on_worker_death != CONC_WORKER_DEATH_FAILS_TASK &&
       opts->on_worker_death != CONC_WORKER_DEATH_BREAKS_POOL))
    return CONC_EINVAL;
  conc__pool_cfg_t cfg = {
      .processes = opts->max_workers,
      .maxtasks = opts->max_tasks_per_child,
      .initializer = opts->initializer,
      .initarg = opts->initarg,
      .buffer_size = opts->buffer_size,
      .break_on_death = opts->on_worker_death == CONC_WORKER_DEATH_BREAKS_POOL,
      .worker_prefix = "ForkProcess",
      .transport = tp,
  };
  conc__pool_core_t *c;
  int rc = conc__pool_core_new(&cfg, &c);
  if (rc)
    return rc;
  ex->priv.core = c;
  ex->priv.magic = PEXEC_MAGIC;
  return 0;
}

int conc_process_executor_init(conc_process_executor_t *ex,
                               const conc_process_executor_opts_t *opts) {
  return conc__process_executor_init_with(ex, opts, NULL);
}

/* ---- a submit's hooks ------------------------------------------------------ */

static void pfut_free(void *ext) {
  struct pfut *p = ext;
  conc__pool_job_release(p->job);
  free(p);
}

static bool fut_start(conc_async_result_t *j, void *arg) {
  (void)j;
  return conc_future_set_running_or_notify_cancel(arg) == 1;
}

static void fut_done(conc_async_result_t *j, void *arg) {
  conc_future_t *f = arg;
  struct pfut *p = conc__future_ext(f);
  if (j->err == 0) {
    p->len = j->lens[0];
    if (p->len)
      memcpy(p->data, j->out, p->len);
    conc__future_finish(f, p->data, 0, NULL);
  } else {
    conc_async_result_error(j, 0, &p->err);
    char *msg = p->err.message[0] ? strdup(p->err.message) : NULL;
    conc__future_finish(f, NULL, j->err, msg);
  }
  conc_future_release(f); /* the job's reference */
}

int conc_process_executor_submit(conc_process_executor_t *ex,
                                 conc_pool_func_t fn, const void *arg,
                                 size_t arg_len, size_t result_cap,
                                 conc_future_t **out) {
  int err;
  conc__pool_core_t *c = core_of(ex, &err);
  if (!c)
    return err;
  if (!fn || (!arg && arg_len) || result_cap > SIZE_MAX / 2)
    return CONC_EINVAL;
  struct pfut *p = malloc(sizeof *p + result_cap);
  conc_future_t *f = conc__future_alloc(2);
  conc_async_result_t *j = NULL;
  int rc = p && f ? conc__pool_job_new(CONC__K_APPLY, fn, arg, 1, arg_len,
                                       result_cap, true, NULL, &j)
                  : CONC_ENOMEM;
  if (rc) {
    free(p);
    if (f) {
      conc_future_release(f);
      conc_future_release(f);
    }
    return rc;
  }
  memset(p, 0, sizeof *p);
  p->magic = EXT_MAGIC;
  p->cap = result_cap;
  p->err.index = -1;
  p->job = j;
  conc__fetch_add(&j->refs, 1u);
  conc__future_set_ext(f, p, pfut_free);
  j->on_start = fut_start;
  j->on_done = fut_done;
  j->hook_arg = f;
  rc = conc__pool_submit(c, j, 1);
  conc__pool_job_release(j); /* the pool holds its own while it runs */
  if (rc) {
    conc_future_release(f);
    conc_future_release(f);
    return rc;
  }
  if (out)
    *out = f;
  else
    conc_future_release(f);
  return 0;
}

/* ---- map ------------------------------------------------------------------ */

static void map_cancel(conc_async_result_t *j, void *arg) {
  if (!conc__load_acquire(&j->complete))
    conc__pool_cancel_rest(arg, j);
}

int conc_process_executor_map(conc_process_executor_t *ex, conc_pool_func_t fn,
                              const void *in, size_t n, size_t arg_size,
                              size_t result_size,
                              const conc_process_map_opts_t *opts,
                              conc_imap_t **out) {
  int err;
  conc__pool_core_t *c = core_of(ex, &err);
  if (!c)
    return err;
  double timeout = opts ? opts->timeout : 0;
  if (!fn || !out || (n && !in && arg_size) || isnan(timeout) ||
      (timeout < 0 && timeout != CONC_FOREVER))
    return CONC_EINVAL;
  conc_deadline_t dl = 0;
  if (timeout > 0 && conc_deadline_after(timeout, &dl))
    return CONC_EINVAL;
  conc_async_result_t *j = NULL;
  int rc = conc__pool_job_new(CONC__K_IMAP, fn, in, n, arg_size, result_size,
                              true, NULL, &j);
  if (rc)
    return rc;
  size_t chunksize = opts && opts->chunksize ? opts->chunksize : 1;
  rc = conc__pool_submit(c, j, chunksize);
  if (rc == 0)
    rc = conc__pool_imap_new(j, out);
  if (rc) {
    conc__pool_job_release(j);
    return rc;
  }
  conc__pool_imap_set_deadline(*out, dl, map_cancel, c);
  return 0;
}

/* ---- shutdown ------------------------------------------------------------- */

/* cancel_futures: every queued submit not started is cancelled. */
static void cancel_queued(conc__pool_core_t *c) {
  conc_async_result_t *list = NULL;
  pthread_mutex_lock(&c->mu);
  for (conc_async_result_t *j = c->qhead; j; j = j->qnext) {
    if (j->started || j->on_start != fut_start)
      continue;
    j->started = true;
    conc__future_cancel_notify(j->hook_arg);
    conc__pool_job_fail_all(j, CONC_ECANCELED, "cancelled", &list);
  }
  conc__pool_next_job(c); /* drops the cancelled ones from the queue head */
  pthread_mutex_unlock(&c->mu);
  conc__pool_finish_jobs(list);
}

int conc_process_executor_shutdown(conc_process_executor_t *ex, bool wait,
                                   bool cancel_futures) {
  int err;
  conc__pool_core_t *c = core_of(ex, &err);
  if (!c)
    return err;
  if (cancel_futures)
    cancel_queued(c);
  conc__pool_core_close(c);
  if (wait) {
    if (pthread_equal(c->thread, pthread_self()))
      return CONC_EDEADLK;
    conc__pool_core_wait_finished(c);
  }
  return 0;
}

void conc_process_executor_destroy(conc_process_executor_t *ex) {
  int err;
  conc__pool_core_t *c = core_of(ex, &err);
  if (!c)
    return;
  if (pthread_equal(c->thread, pthread_self()))
    return;
  conc__pool_core_close(c);
  conc__pool_core_wait_finished(c);
  conc__pool_core_destroy(c);
  ex->priv.core = NULL;
  ex->priv.magic = 0;
}

int conc_process_executor_pids(conc_process_executor_t *ex, pid_t *pids,
                               size_t cap) {
  int err;
  conc__pool_core_t *c = core_of(ex, &err);
  if (!c)
    return err;
  if (!pids && cap)
    return CONC_EINVAL;
  return conc__pool_core_pids(c, pids, cap);
}

/* ---- process futures --------------------------------------------------- */

static struct pfut *pfut_of(conc_future_t *f) {
  struct pfut *p = f ? conc__future_ext(f) : NULL;
  return p && p->magic == EXT_MAGIC ? p : NULL;
}

int conc_process_future_result(conc_future_t *f, double timeout, void *out,
                               size_t out_size, size_t *len) {
  struct pfut *p = pfut_of(f);
  if (!p || (!out && out_size))
    return CONC_EINVAL;
  if (isnan(timeout))
    return CONC_EINVAL;
  conc_deadline_t dl;
  if (!conc_future_done(f) && conc_deadline_after(timeout, &dl) == 0)
    conc__pool_help(p->job, dl); /* one hop less than the result thread */
  void *v;
  int rc = conc_future_result(f, timeout, &v);
  if (rc)
    return rc;
  if (out && out_size < p->len)
    return CONC_ETOOSHORT;
  if (out && p->len)
    memcpy(out, p->data, p->len);
  if (len)
    *len = p->len;
  return 0;
}

int conc_process_future_error(conc_future_t *f, conc_pool_error_t *e) {
  struct pfut *p = pfut_of(f);
  if (!p || !e)
    return CONC_EINVAL;
  if (!conc_future_done(f) || conc_future_cancelled(f))
    return conc_future_cancelled(f) ? CONC_ECANCELED : CONC_ESTATE;
  *e = p->err;
  if (e->code == 0)
    e->index = -1;
  return 0;
}
