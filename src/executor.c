/*
 * executor: ThreadPoolExecutor (submit, shutdown, initializer, broken pool,
 * process exit) and map.
 *
 * Locking protocol. Each executor has a heap "core" whose mutex (a
 * conc__mu_t) guards the work list (an intrusive FIFO of future records,
 * the task lives in the record), the thread count and the shutdown and
 * broken flags; idle workers park on the core's work condition. Futures are
 * completed, cancelled and released only after the core mutex is dropped,
 * so the core mutex and the future stripes are never held together. Worker
 * threads are started under the core mutex, so shutdown(wait) always sees
 * every worker it must join.
 *
 * The live cores are listed in a registry (a pthread mutex). At process
 * exit (conc_threading_register_atexit) every core is told to finish its
 * queued work and stop, and the thread module joins the workers, which are
 * not daemons. The fork handlers take the registry lock and every core
 * mutex; in the child the cores forget their workers (they do not exist
 * there) and start new ones on demand.
 */
#include "futures-int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/thread.h"
#include "conc/time.h"
#include "init-int.h"

#define EXMAGIC 0x45584543u /* "EXEC" */
#define BROKEN_MSG                                                             \
  "A thread initializer failed, the thread pool is not usable anymore"

struct core {
  conc__mu_t mu;
  conc__cv_t work_cv;
  conc_future_t *head, *tail; /* head is also read (atomically) by spinners */
  uint32_t idle;              /* Python's _idle_semaphore, atomic */
  int max_workers, nthreads;
  bool shutdown, broken;
  conc_thread_t *threads;
  char *prefix;
  int (*initializer)(void *);
  void *initargs;
  struct core *prev, *next; /* registry */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct core reg_head = {.prev = &reg_head, .next = &reg_head};
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static unsigned executor_counter;
static bool exiting; /* process exit has begun; atomic */

/* ---- registry: fork and process exit ---------------------------------- */

static void fork_prepare(void) {
  pthread_mutex_lock(&reg_mu);
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next)
    conc__mu_lock(&c->mu);
}

static void fork_parent(void) {
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next)
    conc__mu_unlock(&c->mu);
  pthread_mutex_unlock(&reg_mu);
}

static void fork_child(void) {
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    conc__mu_reinit(&c->mu);
    conc__cv_reinit(&c->work_cv);
    c->nthreads = 0;
    c->idle = 0;
  }
  pthread_mutex_init(&reg_mu, NULL);
}

static void wake_all_workers(struct core *c) {
  conc__mu_lock(&c->mu);
  int n = conc__cv_signal(&c->work_cv, CONC__WAKE_ALL);
  conc__mu_unlock(&c->mu);
  conc__cv_wake(&c->work_cv, n);
}

/* threading._register_atexit(_python_exit): queued work finishes, then the
 * workers stop; the thread module joins them as non-daemon threads. */
static void python_exit(void *unused) {
  (void)unused;
  conc__store_release(&exiting, true);
  pthread_mutex_lock(&reg_mu);
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next)
    wake_all_workers(c);
  pthread_mutex_unlock(&reg_mu);
}

static void reg_init(void) {
  conc__atfork_register(fork_prepare, fork_parent, fork_child);
  conc_threading_register_atexit(python_exit, NULL);
}

/* ---- work list (core mutex held) --------------------------------------- */

static void push_work(struct core *c, conc_future_t *f) {
  f->next = NULL;
  if (c->tail)
    c->tail->next = f;
  else
    __atomic_store_n(&c->head, f, __ATOMIC_RELAXED);
  c->tail = f;
}

static conc_future_t *pop_work(struct core *c) {
  conc_future_t *f = c->head;
  if (f) {
    __atomic_store_n(&c->head, f->next, __ATOMIC_RELAXED);
    if (!f->next)
      c->tail = NULL;
  }
  return f;
}

static conc_future_t *take_all_work(struct core *c) {
  conc_future_t *f = c->head;
  __atomic_store_n(&c->head, NULL, __ATOMIC_RELAXED);
  c->tail = NULL;
  return f;
}

/* ---- workers ------------------------------------------------------------- */

static bool must_stop(struct core *c) {
  return c->shutdown || c->broken || conc__load_acquire(&exiting);
}

/* Wait for the next task; NULL when the worker should end (nothing queued
 * and the executor is shut down, broken, or the process exits). */
static conc_future_t *take_work(struct core *c) {
  bool spun = false;
  conc__mu_lock(&c->mu);
  for (;;) {
    conc_future_t *f = pop_work(c);
    if (f || must_stop(c)) {
      conc__mu_unlock(&c->mu);
      return f;
    }
    if (!spun) {
      /* A batch of submissions usually brings the next task within a few
       * microseconds: look for it before going to sleep. */
      spun = true;
      conc__mu_unlock(&c->mu);
      conc__spin_while_eq_ptr((void *const *)&c->head, NULL,
                              CONC__WORKER_SPIN_NS);
      conc__mu_lock(&c->mu);
      continue;
    }
    conc__cv_wait(&c->work_cv, &c->mu, CONC_DEADLINE_NEVER);
  }
}

/* Python's _idle_semaphore.release(), skipped once the pool is full:
 * only a pool that may still grow asks for the tokens. */
static void worker_idle(struct core *c) {
  if (conc__load_relaxed(&c->nthreads) < c->max_workers)
    conc__fetch_add(&c->idle, 1);
}

static void run_task(struct core *c, conc_future_t *f) {
  struct conc__task_ctx ctx = {0, NULL};
  conc__task_ctx_set(&ctx);
  void *value = f->fn(f->arg);
  conc__task_ctx_set(NULL);
  /* Count this worker idle before the result is visible, so a caller that
   * submits again right after result() reuses it (X6). */
  worker_idle(c);
  conc__future_finish(f, value, ctx.code, ctx.message);
}

/* Python's _initializer_failed: every queued future fails, and so does
 * every later submit. */
static void initializer_failed(struct core *c, int code, const char *msg) {
  fprintf(stderr, "Exception in initializer: %s (%s): %s\n",
          conc_err_python(code), conc_err_name(code), msg ? msg : "");
  conc__mu_lock(&c->mu);
  c->broken = true;
  conc_future_t *f = take_all_work(c);
  int n = conc__cv_signal(&c->work_cv, CONC__WAKE_ALL);
  conc__mu_unlock(&c->mu);
  conc__cv_wake(&c->work_cv, n);
  while (f) {
    conc_future_t *next = f->next;
    conc__future_finish(f, NULL, CONC_EBROKENPOOL, strdup(BROKEN_MSG));
    conc_future_release(f);
    f = next;
  }
}

static bool run_initializer(struct core *c) {
  if (!c->initializer)
    return true;
  struct conc__task_ctx ctx = {0, NULL};
  conc__task_ctx_set(&ctx);
  int rc = c->initializer(c->initargs);
  conc__task_ctx_set(NULL);
  if (rc == 0 && ctx.code == 0)
    return true;
  initializer_failed(c, ctx.code ? ctx.code : (rc < 0 ? rc : CONC_EFAILED),
                     ctx.message);
  free(ctx.message);
  return false;
}

static void *worker_main(void *arg) {
  struct core *c = arg;
  if (!run_initializer(c))
    return NULL;
  conc_future_t *f;
  while ((f = take_work(c)) != NULL) {
    if (conc_future_set_running_or_notify_cancel(f) == 1)
      run_task(c, f);
    else
      worker_idle(c);
    conc_future_release(f);
  }
  return NULL;
}

/* ---- Executor ---------------------------------------------------------- */

static struct core *CORE(conc_executor_t *ex) {
  return ex && ex->priv.magic == EXMAGIC ? ex->priv.core : NULL;
}

static int default_workers(void) {
  int n = conc__cpu_count() + 4;
  return n < 32 ? n : 32;
}

int conc_executor_init(conc_executor_t *ex, const conc_executor_opts_t *opts) {
  static const conc_executor_opts_t defaults;
  if (!ex)
    return CONC_EINVAL;
  if (!opts)
    opts = &defaults;
  if (opts->max_workers < 0)
    return CONC_EINVAL;
  pthread_once(&reg_once, reg_init);
  struct core *c = calloc(1, sizeof(*c));
  if (!c)
    return CONC_ENOMEM;
  c->max_workers = opts->max_workers ? opts->max_workers : default_workers();
  c->threads = calloc((size_t)c->max_workers, sizeof(conc_thread_t));
  unsigned k = conc__fetch_add(&executor_counter, 1);
  char buf[48];
  snprintf(buf, sizeof buf, "ThreadPoolExecutor-%u", k);
  c->prefix = strdup(opts->thread_name_prefix ? opts->thread_name_prefix : buf);
  if (!c->threads || !c->prefix) {
    free(c->threads);
    free(c->prefix);
    free(c);
    return CONC_ENOMEM;
  }
  c->initializer = opts->initializer;
  c->initargs = opts->initargs;
  pthread_mutex_lock(&reg_mu);
  c->next = reg_head.next;
  c->prev = &reg_head;
  reg_head.next->prev = c;
  reg_head.next = c;
  pthread_mutex_unlock(&reg_mu);
  ex->priv.core = c;
  ex->priv.magic = EXMAGIC;
  return 0;
}

/* Python's _adjust_thread_count, with the core mutex held: an idle worker
 * (a token) takes the task, else a new worker starts while below
 * max_workers. Returns 0 or the thread start error. */
static int adjust_thread_count(struct core *c) {
  if (c->nthreads >= c->max_workers)
    return 0; /* a full pool has no use for the tokens */
  uint32_t idle = conc__load_relaxed(&c->idle);
  while (idle > 0)
    if (conc__cas_weak(&c->idle, &idle, idle - 1))
      return 0;
  conc_thread_t *t = &c->threads[c->nthreads];
  char name[128];
  snprintf(name, sizeof name, "%s_%d", c->prefix, c->nthreads);
  int rc = conc_thread_init(t, worker_main, c,
                            &(conc_thread_opts_t){.name = name,
                                                  .daemon = CONC_DAEMON_NO});
  if (rc != 0)
    return rc;
  rc = conc_thread_start(t);
  if (rc != 0) {
    conc_thread_destroy(t);
    return rc;
  }
  conc__store_relaxed(&c->nthreads, c->nthreads + 1);
  return 0;
}

static int submit_check(struct core *c) {
  if (c->broken)
    return CONC_EBROKENPOOL;
  if (c->shutdown || conc__load_acquire(&exiting))
    return CONC_ESTATE;
  return 0;
}

int conc_executor_submit(conc_executor_t *ex, void *(*fn)(void *), void *arg,
                         conc_future_t **out) {
  if (out)
    *out = NULL;
  struct core *c = CORE(ex);
  if (!c || !fn)
    return CONC_EINVAL;
  conc_future_t *f = conc__future_alloc(out ? 2 : 1);
  if (!f)
    return CONC_ENOMEM;
  f->fn = fn;
  f->arg = arg;
  conc__mu_lock(&c->mu);
  int rc = submit_check(c);
  if (rc == 0) {
    rc = adjust_thread_count(c);
    if (rc != 0 && c->nthreads > 0)
      rc = 0; /* the running workers will take it */
  }
  int wake = 0;
  if (rc == 0) {
    push_work(c, f);
    wake = conc__cv_signal(&c->work_cv, 1);
  }
  conc__mu_unlock(&c->mu);
  conc__cv_wake(&c->work_cv, wake);
  if (rc != 0) {
    f->refs = 1;
    conc_future_release(f);
    return rc;
  }
  if (out)
    *out = f;
  return 0;
}

static void join_workers(struct core *c) {
  conc__mu_lock(&c->mu);
  int n = c->nthreads;
  conc__mu_unlock(&c->mu);
  conc_thread_t *self = conc_current_thread();
  for (int i = 0; i < n; i++)
    if (&c->threads[i] != self)
      conc_thread_join(&c->threads[i], CONC_FOREVER);
}

int conc_executor_shutdown(conc_executor_t *ex, bool wait,
                           bool cancel_futures) {
  struct core *c = CORE(ex);
  if (!c)
    return CONC_EINVAL;
  conc__mu_lock(&c->mu);
  c->shutdown = true;
  conc_future_t *f = cancel_futures ? take_all_work(c) : NULL;
  int n = conc__cv_signal(&c->work_cv, CONC__WAKE_ALL);
  conc__mu_unlock(&c->mu);
  conc__cv_wake(&c->work_cv, n);
  while (f) {
    conc_future_t *next = f->next;
    conc__future_cancel_notify(f);
    conc_future_release(f);
    f = next;
  }
  if (wait)
    join_workers(c);
  return 0;
}

void conc_executor_destroy(conc_executor_t *ex) {
  struct core *c = CORE(ex);
  if (!c)
    return;
  conc_executor_shutdown(ex, true, false);
  pthread_mutex_lock(&reg_mu);
  c->prev->next = c->next;
  c->next->prev = c->prev;
  pthread_mutex_unlock(&reg_mu);
  for (int i = 0; i < c->nthreads; i++)
    conc_thread_destroy(&c->threads[i]);
  ex->priv.magic = 0;
  ex->priv.core = NULL;
  free(c->threads);
  free(c->prefix);
  free(c);
}

int conc_executor_max_workers(conc_executor_t *ex) {
  struct core *c = CORE(ex);
  return c ? c->max_workers : CONC_EINVAL;
}

int conc_executor_num_threads(conc_executor_t *ex) {
  struct core *c = CORE(ex);
  if (!c)
    return CONC_EINVAL;
  conc__mu_lock(&c->mu);
  int n = c->nthreads;
  conc__mu_unlock(&c->mu);
  return n;
}

const char *conc_executor_thread_name_prefix(conc_executor_t *ex) {
  struct core *c = CORE(ex);
  return c ? c->prefix : NULL;
}

/* ---- map ------------------------------------------------------------------ */

int conc_executor_map(conc_executor_t *ex, conc_map_t *m, void *(*fn)(void *),
                      void *const *inputs, size_t n, double timeout) {
  conc_deadline_t dl;
  if (!m || !fn || (!inputs && n) || isnan(timeout))
    return CONC_EINVAL;
  if (!CORE(ex))
    return CONC_EINVAL;
  if (timeout < 0 && timeout != CONC_FOREVER)
    timeout = 0;
  conc_deadline_after(timeout, &dl);
  conc_future_t **fs = malloc((n ? n : 1) * sizeof(*fs));
  if (!fs)
    return CONC_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int rc = conc_executor_submit(ex, fn, inputs[i], &fs[i]);
    if (rc != 0) {
      while (i-- > 0) {
        conc_future_cancel(fs[i]);
        conc_future_release(fs[i]);
      }
      free(fs);
      return rc;
    }
  }
  m->priv.fs = fs;
  m->priv.n = n;
  m->priv.next = 0;
  m->priv.deadline = dl;
  m->priv.message = NULL;
  return 0;
}

/* result_iterator's finally: cancel what has not started. */
static void map_cancel_rest(conc_map_t *m) {
  for (size_t i = m->priv.n; i-- > m->priv.next;)
    conc_future_cancel(m->priv.fs[i]);
  m->priv.next = m->priv.n;
}

int conc_map_next(conc_map_t *m, void **out) {
  if (!m || !m->priv.fs)
    return CONC_EINVAL;
  if (m->priv.next >= m->priv.n)
    return 0;
  conc_future_t *f = m->priv.fs[m->priv.next];
  double left = conc_deadline_remaining(m->priv.deadline);
  int rc = conc_future_result(f, left, out);
  if (rc == 0) {
    conc_future_release(f);
    m->priv.fs[m->priv.next++] = NULL;
    return 1;
  }
  if (rc != CONC_ETIMEDOUT) {
    conc_future_error_t err;
    if (conc_future_exception(f, 0, &err) == 0)
      m->priv.message = err.message;
    m->priv.next++; /* the failing element stays held for its message */
  }
  map_cancel_rest(m);
  return rc;
}

size_t conc_map_index(const conc_map_t *m) { return m ? m->priv.next : 0; }

const char *conc_map_message(const conc_map_t *m) {
  return m && m->priv.message ? m->priv.message : "";
}

void conc_map_close(conc_map_t *m) {
  if (!m || !m->priv.fs)
    return;
  map_cancel_rest(m);
  for (size_t i = 0; i < m->priv.n; i++)
    conc_future_release(m->priv.fs[i]);
  free(m->priv.fs);
  m->priv.fs = NULL;
}
