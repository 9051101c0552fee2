/*
 * Pool core: multiprocessing.Pool's lifecycle (init, close, terminate,
 * join, destroy), the exit-time registry, and the result thread (the
 * "handler") that watches the workers through the transport: it collects
 * finished chunks, sees a worker's death as it happens (the items it
 * finished keep their results, the item it was running fails with
 * CONC_EWORKERDIED and the signal, the rest of its chunk runs again, and
 * the worker is replaced; or, under the break-on-death policy, the pool
 * breaks), stages the next chunks and runs callbacks.
 *
 * Locking protocol: see pool-int.h. The handler takes core->mu for each
 * pass and drops it to wait in the transport and to run callbacks. The
 * registry of live pools has its own mutex, never held with core->mu.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/time.h"
#include "init-int.h"
#include "platform-int.h"
#include "pool-int.h"
#include "sync-int.h"

#define POOL_MAGIC 0x706f6f6cu
#define DEFAULT_BUFFER (1u << 20)
#define MAX_PROCESSES 4096
#define BROKEN_INIT                                                            \
  "A process initializer failed, the process pool is not usable anymore"
#define BROKEN_DEATH                                                           \
  "A process in the process pool was terminated abruptly while the future "    \
  "was running or pending"

/* ---- process-wide registry (for the exit-time terminate) ---------------- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static conc__pool_core_t *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_prepare(void) { pthread_mutex_lock(&reg_mu); }
static void reg_parent(void) { pthread_mutex_unlock(&reg_mu); }
static void reg_child(void) {
  reg_head = NULL;               /* the parent's pools are not ours */
  pthread_mutex_unlock(&reg_mu); /* taken by reg_prepare in this thread */
}

/* Python's pool finalizer: a pool still running at exit is terminated, before
 * the process module joins its children (registered after it, so run first). */
static void pool_atexit(void) {
  for (;;) {
    pthread_mutex_lock(&reg_mu);
    conc__pool_core_t *c = reg_head;
    while (c && (c->creator != (pid_t)conc__sync_pid() ||
                 conc__load_acquire(&c->finished) ||
                 pthread_equal(c->thread, pthread_self())))
      c = c->gnext;
    pthread_mutex_unlock(&reg_mu);
    if (!c)
      return;
    conc__pool_core_terminate(c);
  }
}

static void reg_init(void) {
  conc__atfork_register(reg_prepare, reg_parent, reg_child);
  atexit(pool_atexit);
}

static void reg_add(conc__pool_core_t *c) {
  pthread_mutex_lock(&reg_mu);
  c->gprev = NULL;
  c->gnext = reg_head;
  if (reg_head)
    reg_head->gprev = c;
  reg_head = c;
  pthread_mutex_unlock(&reg_mu);
}

static void reg_del(conc__pool_core_t *c) {
  pthread_mutex_lock(&reg_mu);
  if (c->gprev)
    c->gprev->gnext = c->gnext;
  else if (reg_head == c)
    reg_head = c->gnext;
  if (c->gnext)
    c->gnext->gprev = c->gprev;
  pthread_mutex_unlock(&reg_mu);
}

/* ---- worker deaths (core->mu held) ---------------------------------- */

static void describe_death(struct conc__pool_worker *w, int code, char *buf,
                           size_t n, int *sig) {
  const char *name = w->name;
  long pid = (long)w->pid;
  *sig = 0;
  if (code == CONC_EXITCODE_NONE) /* reaped behind our back */
    snprintf(buf, n, "worker %s (pid %ld) died (status unknown)", name, pid);
  else if (code < 0) {
    *sig = -code;
    snprintf(buf, n, "worker %s (pid %ld) died from signal %d (%s)", name, pid,
             -code, strsignal(-code));
  } else
    snprintf(buf, n, "worker %s (pid %ld) exited with code %d", name, pid,
             code);
}

static void break_pool(conc__pool_core_t *c, const char *why,
                       const char *detail) {
  if (c->broken)
    return;
  c->broken = CONC_EBROKENPOOL;
  /* a long detail is cut: the message is a fixed buffer */
  if (snprintf(c->broken_msg, sizeof c->broken_msg, "%s%s%s", why,
               detail && *detail ? ": " : "", detail ? detail : "") < 0)
    c->broken_msg[0] = '\0';
  c->state = CONC__P_TERMINATE;
}

/* The worker died while running lane k's chunk: items before `progress`
 * keep their results, the one it was running fails, the rest run again. */
static void settle_running(conc__pool_core_t *c, struct conc__pool_worker *w,
                           int k, int code, conc_async_result_t **list) {
  conc_async_result_t *j = w->lane[k].job;
  size_t start = w->lane[k].start, count = w->lane[k].count;
  uint32_t p;
  char msg[CONC_POOL_MESSAGE_MAX];
  struct conc__pool_death d = {
      .code = c->break_on_death ? CONC_EBROKENPOOL : CONC_EWORKERDIED,
      .exitcode = code == CONC_EXITCODE_NONE ? 0 : code,
      .pid = w->pid,
      .message = msg,
  };
  describe_death(w, code, msg, sizeof msg, &d.signal);
  if (w->lane[k].batch) {
    conc__pool_batch_leave(c, w, k, &d, list);
    return;
  }
  c->tp->lane_state(c, w, k, &p);
  pthread_mutex_lock(&j->mu);
  if (!j->complete) {
    c->tp->harvest(c, w, k, p);
    conc__pool_job_took(j, start, p, list);
    if (p < count) {
      conc__pool_job_fail_item(j, start + p, d.code, d.signal, d.exitcode,
                               d.pid, msg);
      conc__pool_job_took(j, start + p, 1, list);
    }
  }
  pthread_mutex_unlock(&j->mu);
  if (p + 1 < count)
    conc__pool_requeue(c, j, start + p + 1, count - p - 1, list);
}

static void lane_drop(conc__pool_core_t *c, struct conc__pool_worker *w,
                      int k) {
  conc__pool_job_release(w->lane[k].job);
  w->lane[k].job = NULL;
  w->lane[k].batch = false;
  c->busy--;
  c->tp->reset_lane(c, w, k);
}

/* The worker's sentinel fired: reap it and settle its chunks. */
static void bury(conc__pool_core_t *c, struct conc__pool_worker *w,
                 conc_async_result_t **list) {
  int code = c->tp->reap(c, w);
  char msg[CONC_POOL_MESSAGE_MAX];
  if (c->tp->init_failed(c, w, msg, sizeof msg))
    break_pool(c, BROKEN_INIT, msg);
  for (int k = 0; k < CONC__POOL_LANES; k++) {
    if (!w->lane[k].job)
      continue;
    uint32_t p;
    int st = c->tp->lane_state(c, w, k, &p);
    if (st == CONC__LANE_DONE) {
      conc__pool_collect(c, w, k, list);
      continue;
    }
    if (st == CONC__LANE_QUEUED && w->lane[k].batch)
      conc__pool_batch_leave(c, w, k, NULL, list); /* it claimed nothing */
    else if (st == CONC__LANE_QUEUED) /* never picked up: nothing of it ran */
      conc__pool_requeue(c, w->lane[k].job, w->lane[k].start, w->lane[k].count,
                         list);
    else
      settle_running(c, w, k, code, list);
    lane_drop(c, w, k);
  }
  if (c->break_on_death && !w->retiring && code != 0) {
    char why[CONC_POOL_MESSAGE_MAX];
    int sig;
    describe_death(w, code, why, sizeof why, &sig);
    break_pool(c, BROKEN_DEATH, why);
  }
  w->fd = -1;
  w->pid = 0;
  w->exited = false;
}

static int spawn(conc__pool_core_t *c, struct conc__pool_worker *w) {
  int rc = c->tp->spawn(c, w);
  if (rc)
    return rc;
  w->exited = false;
  w->retiring = false;
  w->tasks = 0;
  return 0;
}

static void stop_worker(conc__pool_core_t *c, struct conc__pool_worker *w) {
  c->tp->stop(c, w, true);
  c->tp->reap(c, w);
  w->fd = -1;
  w->pid = 0;
}

static int spawn_all(conc__pool_core_t *c) {
  for (int i = 0; i < c->nworkers; i++) {
    int rc = spawn(c, &c->workers[i]);
    if (rc) {
      for (int k = 0; k < i; k++)
        stop_worker(c, &c->workers[k]);
      return rc;
    }
  }
  return 0;
}

/* ---- the handler thread ------------------------------------------------- */

/* terminate() or a broken pool: fail everything, stop the workers, reap. */
static void handler_terminate(conc__pool_core_t *c) {
  conc_async_result_t *list = NULL;
  pthread_mutex_lock(&c->mu);
  int code = c->broken ? c->broken : CONC_ECANCELED;
  const char *msg = c->broken ? c->broken_msg : "pool terminated";
  while (c->qhead) {
    conc_async_result_t *j = c->qhead;
    conc__pool_queue_pop(c);
    conc__pool_job_fail_all(j, code, msg, &list);
  }
  for (int i = 0; i < c->nworkers; i++) {
    struct conc__pool_worker *w = &c->workers[i];
    for (int k = 0; k < CONC__POOL_LANES; k++)
      if (w->lane[k].job)
        conc__pool_job_fail_all(w->lane[k].job, code, msg, &list);
    if (w->fd >= 0)
      c->tp->stop(c, w, false);
  }
  /* One grace period for all of them, then SIGKILL for any that caught or
   * blocked SIGTERM in a task. */
  conc_deadline_t grace;
  conc_deadline_after(2.0, &grace);
  for (int i = 0; i < c->nworkers; i++) {
    struct conc__pool_worker *w = &c->workers[i];
    if (w->fd < 0)
      continue;
    double left = conc_deadline_remaining(grace);
    if (c->tp->join(c, w, left > 0 ? left : 0) == CONC_ETIMEDOUT)
      c->tp->stop(c, w, true);
    c->tp->reap(c, w);
    for (int k = 0; k < CONC__POOL_LANES; k++) {
      if (w->lane[k].job && w->lane[k].batch)
        conc__pool_batch_leave(c, w, k, NULL, &list);
      if (w->lane[k].job)
        lane_drop(c, w, k);
    }
    w->fd = -1;
    w->pid = 0;
  }
  pthread_mutex_unlock(&c->mu);
  conc__pool_finish_jobs(list);
}

/* One pass over the workers under core->mu; returns false once the pool
 * has nothing left to do. */
static bool handler_step(conc__pool_core_t *c, conc_async_result_t **list,
                         bool *respawn) {
  uint32_t p;
  for (int i = 0; i < c->nworkers; i++) {
    struct conc__pool_worker *w = &c->workers[i];
    for (int k = 0; k < CONC__POOL_LANES && w->fd >= 0; k++)
      if (w->lane[k].job && c->tp->lane_state(c, w, k, &p) == CONC__LANE_DONE)
        conc__pool_collect(c, w, k, list);
  }
  for (int i = 0; i < c->nworkers; i++)
    if (c->workers[i].fd >= 0 && c->workers[i].exited)
      bury(c, &c->workers[i], list);
  if (c->state == CONC__P_TERMINATE)
    return false;
  bool keep = c->state == CONC__P_RUN || conc__pool_next_job(c) || c->busy;
  /* A death is reported before its replacement is forked: the fork takes
   * longer than the report. */
  *respawn = false;
  for (int i = 0; i < c->nworkers; i++)
    if (c->workers[i].fd < 0 && keep) {
      if (*list)
        *respawn = true;
      else if (spawn(c, &c->workers[i]) != 0)
        c->workers[i].fd = -1; /* fork failed: retried on the next pass */
    }
  conc__pool_dispatch_all(c, list);
  bool alive = false;
  for (int i = 0; i < c->nworkers; i++) {
    struct conc__pool_worker *w = &c->workers[i];
    if (w->fd < 0)
      continue;
    alive = true;
    if (!keep && !w->retiring && !w->lane[0].job && !w->lane[1].job) {
      w->retiring = true;
      c->tp->retire(c, w);
    }
  }
  return alive || keep;
}

static void *handler_main(void *arg) {
  conc__pool_core_t *c = arg;
  pthread_mutex_lock(&c->mu);
  int rc = spawn_all(c);
  pthread_mutex_unlock(&c->mu);
  c->start_err = rc;
  conc__store_release(&c->started, rc ? 2u : 1u);
  conc__wake(&c->started, CONC__WAKE_ALL, false);
  if (rc)
    return NULL;
  for (;;) {
    conc_async_result_t *list = NULL;
    pthread_mutex_lock(&c->mu);
    bool respawn = false;
    bool more =
        c->state != CONC__P_TERMINATE && handler_step(c, &list, &respawn);
    int live = 0;
    for (int i = 0; i < c->nworkers; i++)
      live += c->workers[i].fd >= 0;
    /* a fork that failed (EAGAIN, ENOMEM) is retried shortly */
    bool want = c->state == CONC__P_RUN || c->busy || c->qhead;
    int timeout = respawn ? 0 : live < c->nworkers && want ? 50 : -1;
    pthread_mutex_unlock(&c->mu);
    conc__pool_finish_jobs(list);
    if (!more)
      break;
    c->tp->wait(c, timeout);
  }
  handler_terminate(c);
  if (c->tp->quiesce)
    c->tp->quiesce(c);
  conc__store_release(&c->finished, 1u);
  conc__wake(&c->finished, CONC__WAKE_ALL, false);
  return NULL;
}

/* ---- the core ------------------------------------------------------------ */

conc__pool_core_t *conc__pool_core_of(conc_pool_t *pool, int *err) {
  if (!pool || pool->priv.magic != POOL_MAGIC || !pool->priv.core) {
    *err = CONC_EINVAL;
    return NULL;
  }
  conc__pool_core_t *c = pool->priv.core;
  if (c->creator != (pid_t)conc__sync_pid()) {
    *err = CONC_EPERM;
    return NULL;
  }
  *err = 0;
  return c;
}

void conc__pool_core_free(conc__pool_core_t *c) {
  if (c->tp)
    c->tp->close(c);
  pthread_mutex_destroy(&c->mu);
  free(c->batch.holes);
  free(c->workers);
  free(c);
}

static int start_handler(conc__pool_core_t *c) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&c->thread, NULL, handler_main, c);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc)
    return -rc;
  while (!conc__load_acquire(&c->started))
    conc__wait(&c->started, 0, CONC_DEADLINE_NEVER, false);
  if (c->started == 2u) {
    pthread_join(c->thread, NULL);
    return c->start_err;
  }
  return 0;
}

int conc__pool_core_new(const conc__pool_cfg_t *cfg, conc__pool_core_t **out) {
  if (cfg->processes < 0 || cfg->processes > MAX_PROCESSES ||
      cfg->maxtasks < 0 || cfg->buffer_size > ((size_t)1 << 40))
    return CONC_EINVAL;
  conc__init();
  conc__pool_core_t *c = calloc(1, sizeof *c);
  if (!c)
    return CONC_ENOMEM;
  pthread_mutex_init(&c->mu, NULL);
  c->creator = (pid_t)conc__sync_pid();
  c->nworkers = cfg->processes ? cfg->processes : conc_process_cpu_count();
  c->maxtasks = cfg->maxtasks;
  c->initializer = cfg->initializer;
  c->initarg = cfg->initarg;
  c->break_on_death = cfg->break_on_death;
  c->worker_prefix = cfg->worker_prefix;
  c->buf_size = cfg->buffer_size ? cfg->buffer_size : DEFAULT_BUFFER;
  c->workers = calloc((size_t)c->nworkers, sizeof *c->workers);
  if (!c->workers) {
    conc__pool_core_free(c);
    return CONC_ENOMEM;
  }
  for (int i = 0; i < c->nworkers; i++)
    c->workers[i] = (struct conc__pool_worker){.core = c, .index = i, .fd = -1};
  c->tp = cfg->transport ? cfg->transport : &conc__pool_shm;
  int rc = c->tp->open(c);
  if (rc == 0)
    rc = start_handler(c);
  if (rc) {
    conc__pool_core_free(c);
    return rc;
  }
  pthread_once(&reg_once, reg_init); /* after the process module's atexit */
  reg_add(c);
  *out = c;
  return 0;
}

void conc__pool_core_wait_finished(conc__pool_core_t *c) {
  while (!conc__load_acquire(&c->finished))
    conc__wait(&c->finished, 0, CONC_DEADLINE_NEVER, false);
  bool do_join = false;
  pthread_mutex_lock(&c->mu);
  if (!c->joined)
    do_join = c->joined = true;
  pthread_mutex_unlock(&c->mu);
  if (do_join)
    pthread_join(c->thread, NULL);
}

void conc__pool_core_terminate(conc__pool_core_t *c) {
  pthread_mutex_lock(&c->mu);
  c->state = CONC__P_TERMINATE;
  pthread_mutex_unlock(&c->mu);
  c->tp->wake(c);
  if (!pthread_equal(c->thread, pthread_self()))
    conc__pool_core_wait_finished(c);
}

void conc__pool_core_close(conc__pool_core_t *c) {
  pthread_mutex_lock(&c->mu);
  if (c->state == CONC__P_RUN)
    c->state = CONC__P_CLOSE;
  pthread_mutex_unlock(&c->mu);
  c->tp->wake(c);
}

void conc__pool_core_destroy(conc__pool_core_t *c) {
  conc__pool_core_terminate(c);
  reg_del(c);
  conc__pool_core_free(c);
}

int conc__pool_core_pids(conc__pool_core_t *c, pid_t *pids, size_t cap) {
  int n = 0;
  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < c->nworkers; i++) {
    pid_t pid = c->workers[i].pid;
    if (!pid || c->workers[i].exited)
      continue;
    if (pids && (size_t)n < cap)
      pids[n] = pid;
    n++;
  }
  pthread_mutex_unlock(&c->mu);
  return n;
}

static int core_state(conc__pool_core_t *c) {
  pthread_mutex_lock(&c->mu);
  int st = c->state;
  pthread_mutex_unlock(&c->mu);
  return st;
}

/* ---- public: lifecycle ------------------------------------------------- */

int conc__pool_init_with(conc_pool_t *pool, const conc__pool_cfg_t *cfg) {
  if (!pool)
    return CONC_EINVAL;
  conc__pool_core_t *c;
  int rc = conc__pool_core_new(cfg, &c);
  if (rc)
    return rc;
  pool->priv.core = c;
  pool->priv.magic = POOL_MAGIC;
  return 0;
}

int conc_pool_init(conc_pool_t *pool, const conc_pool_opts_t *opts) {
  static const conc_pool_opts_t defaults;
  if (!opts)
    opts = &defaults;
  conc__pool_cfg_t cfg = {
      .processes = opts->processes,
      .maxtasks = opts->maxtasksperchild,
      .initializer = opts->initializer,
      .initarg = opts->initarg,
      .buffer_size = opts->buffer_size,
      .worker_prefix = "ForkPoolWorker",
  };
  return conc__pool_init_with(pool, &cfg);
}

int conc_pool_terminate(conc_pool_t *pool) {
  int err;
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  if (!c)
    return err;
  if (pthread_equal(c->thread, pthread_self()))
    return CONC_EDEADLK; /* from a callback: the handler cannot wait for itself
                          */
  conc__pool_core_terminate(c);
  return 0;
}

int conc_pool_close(conc_pool_t *pool) {
  int err;
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  if (!c)
    return err;
  conc__pool_core_close(c);
  return 0;
}

int conc_pool_join(conc_pool_t *pool) {
  int err;
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  if (!c)
    return err;
  if (core_state(c) == CONC__P_RUN)
    return CONC_ESTATE;
  if (pthread_equal(c->thread, pthread_self()))
    return CONC_EDEADLK;
  /* interruptible (docs/design.md "Signals"); the pool winds down anyway
   * and a later join finishes the job */
  while (!conc__load_acquire(&c->finished)) {
    int rc = conc__wait_intr(&c->finished, 0, CONC_DEADLINE_NEVER, false);
    if (rc == CONC_EINTR && !conc__load_acquire(&c->finished))
      return CONC_EINTR;
    if (rc == CONC_EINTR) /* finished as well: the next wait reports it */
      conc__intr_keep();
  }
  conc__pool_core_wait_finished(c);
  return 0;
}

int conc_pool_enter(conc_pool_t *pool) {
  int err;
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  if (!c)
    return err;
  return core_state(c) == CONC__P_RUN ? 0 : CONC_ESTATE;
}

int conc_pool_processes(conc_pool_t *pool) {
  int err;
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  return c ? c->nworkers : err;
}

int conc_pool_pids(conc_pool_t *pool, pid_t *pids, size_t cap) {
  int err;
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  if (!c)
    return err;
  if (!pids && cap)
    return CONC_EINVAL;
  return conc__pool_core_pids(c, pids, cap);
}

void conc_pool_destroy(conc_pool_t *pool) {
  int err;
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  if (!c)
    return;
  if (!pthread_equal(c->thread, pthread_self()))
    conc__pool_core_destroy(c);
  pool->priv.core = NULL;
  pool->priv.magic = 0;
}
