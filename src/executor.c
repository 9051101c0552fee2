/*
 * executor: ThreadPoolExecutor (submit, shutdown, initializer, broken pool,
 * process exit) and map.
 *
 * Locking protocol. Each executor has a heap "core". Pending futures (the
 * task lives in the future record) wait in an intrusive multi-producer
 * queue (Vyukov's MPSC list with a permanent dummy node): submit links a
 * record with one exchange and takes no lock, so the submitting thread never
 * contends with the workers. Workers pop under the consumer mutex `cmu`, which
 * only they (and the drains of shutdown and a broken pool) take.
 *
 * Idle workers. A worker that runs dry first spins for a few microseconds
 * (yield or pause mode, futures-int.h): every worker for a grace time, then
 * those admitted to `spinning` (all of them in yield mode, at most
 * `spin_limit`, half the CPUs, in pause mode) for longer. Then it lists
 * itself on the sleeper stack (`sleepers`, under `idle_mu`, counted in
 * `nidle`), looks at the queue once more and parks on its own word. A
 * submitter wakes one only when no worker spins (a spinner will take the
 * task) and no claimed worker is still on its way (`waking`): it unlists
 * the sleeper under idle_mu, hands it the `waking` token and wakes it. A
 * worker that pops a task and sees more queued does the same, so wake-ups
 * spread from the workers rather than costing the submitter one syscall
 * per task. Both sides store (push; nidle, spinning, waking) before they
 * load (nidle, spinning, waking; the queue) with sequentially consistent
 * atomics, so one of them sees the other and no task is left with every
 * worker asleep.
 *
 * The control mutex `mu` guards thread creation and the list of worker
 * records. Lock order: mu, cmu, idle_mu (only the fork handlers nest
 * them).
 *
 * A task is a conc_fn_t: its negative return fails its future, with the
 * message it attached with conc_raise (taken on the worker right after it
 * returns). An initializer's failure records why the pool broke
 * (`broken_msg`, set once with a CAS before the `broken` flag is raised,
 * read only after the flag is seen) and every broken future says so.
 *
 * Shutdown, a broken pool and process exit set a flag; `active` counts
 * submits in flight, and a worker ends only when the queue is empty, a
 * flag is set and no submit is in flight, so a task that passed the checks
 * of submit always runs. Futures are completed, cancelled and released
 * with no core lock held, so the core locks and the future stripes are
 * never held together.
 *
 * The live cores are listed in a registry (a pthread mutex). At process
 * exit (conc_threading_register_atexit) every core is told to finish its
 * queued work and stop, and the thread module joins the workers, which are
 * not daemons. Fork: the prepare handler closes a gate that submit checks,
 * waits until no submit is in flight (so no queue link is half made), and
 * takes the registry lock and every core lock; in the child the cores
 * forget their workers and sleepers (they do not exist there) and start
 * new ones on demand.
 */
#include "futures-int.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/thread.h"
#include "conc/time.h"
#include "error-int.h"
#include "annotate-int.h"
#include "init-int.h"

#define EXMAGIC 0x45584543u /* "EXEC" */
#define BROKEN_MSG                                                             \
  "A thread initializer failed, the thread pool is not usable anymore"

/* Fields are grouped by who writes them, one cache line per group, so the
 * submitting thread and the workers do not invalidate each other's lines
 * on every task. */
struct core {
  /* producers (submit) */
  _Alignas(64) conc_future_t *tail; /* atomic */
  uint32_t active;                  /* submits in flight, atomic */
  /* consumers (workers) */
  _Alignas(64) conc__mu_t cmu;
  conc_future_t *head; /* written under cmu, atomic */
  /* idle workers: read by every submit, written when a worker goes idle */
  _Alignas(64) uint32_t spinning; /* workers spinning for work, atomic */
  uint32_t nidle;                 /* listed sleepers; atomic, under idle_mu */
  bool waking; /* a claimed sleeper has not run yet; atomic, under idle_mu */
  uint32_t spin_limit;  /* most workers that may spin at once */
  uint32_t spin_misses; /* worker spins that found nothing, in a row */
  struct conc__progress progress; /* &head, &waking for result() */
  conc__mu_t idle_mu;             /* the sleeper stack */
  struct worker *sleepers;        /* under idle_mu */
  /* control, read-mostly */
  _Alignas(64) conc__mu_t mu;
  uint32_t idle; /* Python's _idle_semaphore, atomic */
  int nthreads;  /* live workers; written under mu, read atomically */
  int max_workers;
  bool shutdown, broken; /* atomic */
  char *broken_msg;      /* why the pool broke; atomic, set once */
  /* Every worker ever started, in start order (in a forked child, the
   * parent's records come first, stopped); under mu. Records stay until
   * destroy. */
  struct worker *workers, **workers_end;
  char *prefix;
  int (*initializer)(void *);
  void *initarg;
  struct core *prev, *next; /* registry */
  conc_future_t anchor;
};

/* A worker thread's record: heap, so that adding a worker never moves the
 * record of one that runs. */
struct worker {
  conc_thread_t thread;
  struct core *core;
  struct worker *next;      /* every worker; under mu */
  struct worker *idle_next; /* the sleeper stack; under idle_mu */
  uint32_t wake;            /* parked on; 1: look again; atomic */
  bool listed;              /* on the sleeper stack; under idle_mu */
  bool token; /* claimed by a waker: clears `waking`; under idle_mu */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct core reg_head = {.prev = &reg_head, .next = &reg_head};
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static unsigned executor_counter;
static bool exiting;   /* process exit has begun; atomic */
static bool fork_gate; /* a fork is being prepared; atomic */

/* ---- the pending queue ------------------------------------------------- */

static conc_future_t *next_of(conc_future_t *f) {
  return __atomic_load_n(&f->next, __ATOMIC_ACQUIRE);
}

static void push_work(struct core *c, conc_future_t *f) {
  /* Race detectors (annotate-int.h): the submitter's writes happen before
   * the worker that pops f (try_pop); the links are atomics. */
  conc__ann_happens_before(f);
  conc__ann_benign_race(&f->next, sizeof f->next);
  conc__ann_benign_race(&c->tail, sizeof c->tail);
  __atomic_store_n(&f->next, NULL, __ATOMIC_RELAXED);
  conc_future_t *prev = __atomic_exchange_n(&c->tail, f, __ATOMIC_SEQ_CST);
  conc__ann_benign_race(&prev->next, sizeof prev->next);
  __atomic_store_n(&prev->next, f, __ATOMIC_RELEASE);
}

/* With cmu held. NULL and *busy false: empty; NULL and *busy true: a push
 * is half done (its link is about to appear). */
/* result() spinners read the head without cmu (struct conc__progress). */
static void set_head(struct core *c, conc_future_t *f) {
  __atomic_store_n(&c->head, f, __ATOMIC_RELAXED);
}

static conc_future_t *pop_work(struct core *c, bool *busy) {
  conc_future_t *head = c->head, *next = next_of(head);
  *busy = false;
  if (head == &c->anchor) {
    if (!next) {
      *busy = __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE) != &c->anchor;
      return NULL;
    }
    set_head(c, head = next);
    next = next_of(next);
  }
  if (next) {
    set_head(c, next);
    return head;
  }
  if (__atomic_load_n(&c->tail, __ATOMIC_ACQUIRE) != head) {
    *busy = true;
    return NULL;
  }
  push_work(c, &c->anchor);
  next = next_of(head);
  if (next) {
    set_head(c, next);
    return head;
  }
  *busy = true;
  return NULL;
}

static bool queue_empty(struct core *c) {
  return __atomic_load_n(&c->tail, __ATOMIC_SEQ_CST) == &c->anchor;
}

/* Pop everything (shutdown(cancel_futures), a broken pool): a list linked
 * through `next`. */
static conc_future_t *take_all_work(struct core *c) {
  conc_future_t *list = NULL, **end = &list, *f;
  conc__mu_lock(&c->cmu);
  for (;;) {
    bool busy;
    f = pop_work(c, &busy);
    if (f) {
      *end = f;
      end = &f->next;
    } else if (busy) {
      sched_yield();
    } else {
      break;
    }
  }
  conc__mu_unlock(&c->cmu);
  *end = NULL;
  return list;
}

/* ---- idle workers ---------------------------------------------------- */

/* With idle_mu held: take w off the sleeper stack. */
static void unlist(struct core *c, struct worker *w) {
  struct worker **p = &c->sleepers;
  while (*p != w)
    p = &(*p)->idle_next;
  *p = w->idle_next;
  w->listed = false;
  __atomic_store_n(&c->nidle, c->nidle - 1, __ATOMIC_SEQ_CST);
}

static void poke(struct worker *w) {
  __atomic_store_n(&w->wake, 1, __ATOMIC_RELEASE);
  conc__wake(&w->wake, 1, false);
}

/* A task is queued: wake one sleeper, unless a spinning worker or one
 * already woken will take it. The loads are seq_cst after the push's
 * exchange (see the protocol at the top). */
static void wake_idle(struct core *c) {
  if (__atomic_load_n(&c->spinning, __ATOMIC_SEQ_CST) != 0 ||
      __atomic_load_n(&c->nidle, __ATOMIC_SEQ_CST) == 0 ||
      __atomic_load_n(&c->waking, __ATOMIC_SEQ_CST))
    return;
  conc__mu_lock(&c->idle_mu);
  struct worker *w = c->waking ? NULL : c->sleepers;
  if (w) {
    unlist(c, w);
    w->token = true;
    __atomic_store_n(&c->waking, true, __ATOMIC_SEQ_CST);
  }
  conc__mu_unlock(&c->idle_mu);
  /* the record outlives the worker's thread: touching it unlocked is safe */
  if (w)
    poke(w);
}

/* Let every worker re-check (a flag was raised). The wake-ups are sent
 * under idle_mu: a woken worker may list itself again at once. */
static void wake_workers(struct core *c) {
  conc__mu_lock(&c->idle_mu);
  while (c->sleepers) {
    struct worker *w = c->sleepers;
    unlist(c, w);
    poke(w);
  }
  conc__mu_unlock(&c->idle_mu);
}

static bool stop_flag(struct core *c) {
  return conc__load_acquire(&c->shutdown) || conc__load_acquire(&c->broken) ||
         conc__load_acquire(&exiting);
}

/* Set a stop flag, then let every worker re-check. */
static void raise_flag(struct core *c, bool *flag) {
  __atomic_store_n(flag, true, __ATOMIC_SEQ_CST);
  wake_workers(c);
}

/* ---- registry: fork and process exit ---------------------------------- */

static void fork_prepare(void) {
  __atomic_store_n(&fork_gate, true, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&reg_mu);
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    while (__atomic_load_n(&c->active, __ATOMIC_SEQ_CST) != 0)
      sched_yield();
    conc__mu_lock(&c->mu);
    conc__mu_lock(&c->cmu);
    conc__mu_lock(&c->idle_mu);
  }
}

static void fork_parent(void) {
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    conc__mu_unlock(&c->idle_mu);
    conc__mu_unlock(&c->cmu);
    conc__mu_unlock(&c->mu);
  }
  pthread_mutex_unlock(&reg_mu);
  __atomic_store_n(&fork_gate, false, __ATOMIC_SEQ_CST);
}

static void fork_child(void) {
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next) {
    conc__mu_reinit(&c->mu);
    conc__mu_reinit(&c->cmu);
    conc__mu_reinit(&c->idle_mu);
    c->sleepers = NULL; /* parked in the parent: they do not exist here */
    c->nidle = 0;
    c->spinning = 0;
    c->waking = false;
    c->nthreads = 0; /* the records stay listed, stopped, until destroy */
    c->idle = 0;
  }
  /* unlocked, not re-initialised held: TSan would see a held mutex and
   * report an inversion with the process registry in every child */
  pthread_mutex_unlock(&reg_mu);
  __atomic_store_n(&fork_gate, false, __ATOMIC_SEQ_CST);
}

/* threading._register_atexit(_python_exit): queued work finishes, then the
 * workers stop; the thread module joins them as non-daemon threads. */
static void python_exit(void *unused) {
  (void)unused;
  __atomic_store_n(&exiting, true, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&reg_mu);
  for (struct core *c = reg_head.next; c != &reg_head; c = c->next)
    wake_workers(c);
  pthread_mutex_unlock(&reg_mu);
}

static void reg_init(void) {
  conc__atfork_register(fork_prepare, fork_parent, fork_child);
  conc_threading_register_atexit(python_exit, NULL);
}

/* ---- workers ------------------------------------------------------------- */

/* The worker may end: nothing queued, a stop flag, no submit in flight. */
static bool may_end(struct core *c) {
  return stop_flag(c) && __atomic_load_n(&c->active, __ATOMIC_SEQ_CST) == 0 &&
         queue_empty(c);
}

static conc_future_t *try_pop(struct core *c, bool *busy) {
  conc__mu_lock(&c->cmu);
  conc_future_t *f = pop_work(c, busy);
  conc__mu_unlock(&c->cmu);
  if (f)
    conc__ann_happens_after(f); /* the edge from push_work */
  return f;
}

/* Would wake_idle wake anybody now? seq_cst, after our stores to
 * `spinning` and `waking` (the protocol at the top). */
static bool may_wake(struct core *c) {
  return __atomic_load_n(&c->spinning, __ATOMIC_SEQ_CST) == 0 &&
         __atomic_load_n(&c->nidle, __ATOMIC_SEQ_CST) != 0 &&
         !__atomic_load_n(&c->waking, __ATOMIC_SEQ_CST);
}

/* After popping f: is another task queued behind it? The tail is the last
 * node pushed, which is never popped while it is the tail. Read only when a
 * sleeper could be woken: the tail's line is the submitters', and reading
 * it on every pop would pull it away from them. */
static bool more_queued(struct core *c, conc_future_t *f) {
  conc_future_t *t = __atomic_load_n(&c->tail, __ATOMIC_SEQ_CST);
  return t != f && t != &c->anchor;
}

/* Spin (conc__spin_step) while the queue is empty and no flag is up, at
 * most ns; true if that changed. */
static bool spin_while_empty(struct core *c, int64_t ns, bool ym) {
  int64_t end = conc__now_ns() + ns;
  bool slow = false;
  for (unsigned i = 1;; i++) {
    if (__atomic_load_n(&c->tail, __ATOMIC_RELAXED) != &c->anchor ||
        stop_flag(c))
      return true;
    if (slow) { /* a slow yield that brought nothing */
      conc__yield_ban();
      return false;
    }
    if ((ym || (i & 31) == 0) && conc__now_ns() >= end)
      return false;
    slow = !conc__spin_step(ym);
  }
}

/* Look for work without sleeping; true if a task (or a stop flag) turned
 * up. Every worker looks for CONC__WORKER_GRACE_NS, which bridges the gaps
 * inside a burst of submissions (a worker that slept there would cost the
 * submitter a wake-up call soon after); then, if fewer than the limit spin
 * already (and, in pause mode, spinning has been paying off), it looks on for
 * CONC__WORKER_SPIN_NS, counted in `spinning`, so that submitters leave
 * the task to it. In yield mode (futures-int.h) every worker may spin; in
 * pause mode at most spin_limit (half the CPUs, none on one CPU), so that
 * spinners do not take the cores the submitters and busy workers need. */
static bool spin_for_work(struct core *c) {
  bool ym = conc__yield_mode(conc__now_ns());
  uint32_t limit = ym ? (uint32_t)c->max_workers : c->spin_limit;
  if (limit == 0)
    return false;
  if (spin_while_empty(c, CONC__WORKER_GRACE_NS, ym))
    return true;
  uint32_t n = conc__load_relaxed(&c->spinning);
  if (n >= limit || (!ym && !conc__spin_allowed(&c->spin_misses)))
    return false;
  do {
    if (n >= limit)
      return false;
  } while (!__atomic_compare_exchange_n(&c->spinning, &n, n + 1, true,
                                        __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
  bool found = spin_while_empty(c, CONC__WORKER_SPIN_NS, ym);
  /* seq_cst: after this a submitter no longer counts on us, and the
   * sleeper's look at the queue comes after it */
  __atomic_sub_fetch(&c->spinning, 1, __ATOMIC_SEQ_CST);
  conc__spin_result(&c->spin_misses, found);
  return found;
}

/* With idle_mu held, after w left the stack: if a waker claimed it, the
 * `waking` token is w's to give back. */
static void drop_token(struct core *c, struct worker *w) {
  if (w->token) {
    w->token = false;
    __atomic_store_n(&c->waking, false, __ATOMIC_SEQ_CST);
  }
}

/* List w as a sleeper, look at the queue once more and park on w's word
 * until a submitter (or a flag) takes w off the stack. A stale poke from an
 * earlier claim only makes the loop look again. */
static void sleep_for_work(struct worker *w) {
  struct core *c = w->core;
  conc__mu_lock(&c->idle_mu);
  __atomic_store_n(&w->wake, 0, __ATOMIC_RELAXED);
  w->listed = true;
  w->idle_next = c->sleepers;
  c->sleepers = w;
  __atomic_store_n(&c->nidle, c->nidle + 1, __ATOMIC_SEQ_CST);
  conc__mu_unlock(&c->idle_mu);
  bool nap = queue_empty(c) && !may_end(c);
  for (;;) {
    conc__mu_lock(&c->idle_mu);
    bool listed = w->listed;
    if (listed && !nap)
      unlist(c, w);
    else if (!listed)
      drop_token(c, w);
    else
      __atomic_store_n(&w->wake, 0, __ATOMIC_RELAXED);
    conc__mu_unlock(&c->idle_mu);
    if (!listed || !nap)
      return;
    conc__wait(&w->wake, 0, CONC_DEADLINE_NEVER, false);
  }
}

/* A submitter is between its exchange and its link: it is running (or was
 * preempted there, rarely); pause, and yield only when that lasts. */
static void wait_for_link(unsigned *tries) {
  if (++*tries % 64 == 0)
    sched_yield();
  else
    conc__cpu_relax();
}

/* Wait for the next task; NULL when the worker should end. */
static conc_future_t *take_work(struct worker *w) {
  struct core *c = w->core;
  bool spun = false;
  unsigned tries = 0;
  for (;;) {
    bool busy;
    conc_future_t *f = try_pop(c, &busy);
    if (f) {
      if (may_wake(c) && more_queued(c, f)) /* a backlog: bring one in */
        wake_idle(c);
      return f;
    }
    if (busy) {
      wait_for_link(&tries);
      continue;
    }
    if (may_end(c))
      return NULL;
    if (!spun && !stop_flag(c)) {
      /* A batch of submissions usually brings the next task within a few
       * microseconds: look for it before going to sleep. (Once a flag is
       * up, the worker waits for the submits in flight asleep.) */
      spun = !spin_for_work(c);
      continue;
    }
    spun = false;
    sleep_for_work(w);
  }
}

/* Python's _idle_semaphore.release(), skipped once the pool is full:
 * only a pool that may still grow asks for the tokens. */
static void worker_idle(struct core *c) {
  /* Race detectors: counters read without a lock by design. */
  conc__ann_benign_race(&c->nthreads, sizeof c->nthreads);
  conc__ann_benign_race(&c->idle, sizeof c->idle);
  if (__atomic_load_n(&c->nthreads, __ATOMIC_RELAXED) < c->max_workers)
    conc__fetch_add(&c->idle, 1);
}

/* Run f's task: its negative return (and the message it raised) is the
 * future's exception, a positive one CONC_EFAILED. */
static void run_task(struct core *c, conc_future_t *f) {
  void *value = NULL;
  conc__raise_clear();
  int rc = f->fn(f->arg, &value);
  char *message = rc < 0 ? conc__raise_take(rc) : NULL;
  /* Count this worker idle before the result is visible, so a caller that
   * submits again right after result() reuses it (X6). */
  worker_idle(c);
  if (rc == 0)
    conc__future_finish(f, value, 0, NULL);
  else
    conc__future_finish(f, NULL, rc < 0 ? rc : CONC_EFAILED, message);
}

static void fail_broken(struct core *c, conc_future_t *f) {
  const char *why = __atomic_load_n(&c->broken_msg, __ATOMIC_ACQUIRE);
  conc__ann_happens_after(&c->broken_msg); /* race detectors: the message */
  conc__future_finish(f, NULL, CONC_EBROKENPOOL,
                      strdup(why ? why : BROKEN_MSG));
}

/* Fail every queued future of a broken pool. */
static void fail_queued(struct core *c) {
  conc_future_t *f = take_all_work(c);
  while (f) {
    conc_future_t *next = f->next;
    fail_broken(c, f);
    conc_future_release(f);
    f = next;
  }
}

/* Python's _initializer_failed: the initializer's exception is reported,
 * every queued future fails, and so does every later submit. The broken
 * futures' message names the initializer's code and message too, which
 * Python keeps only in the log (a C caller has no log to read it from). */
static void initializer_failed(struct core *c, int code, const char *msg) {
  fprintf(stderr, "Exception in initializer: %s (%s): %s\n",
          conc_err_python(code), conc_err_name(code), msg ? msg : "");
  char *why = malloc(sizeof BROKEN_MSG + 64 + (msg ? strlen(msg) : 0));
  if (why)
    sprintf(why, "%s (initializer: %s%s%s)", BROKEN_MSG, conc_err_name(code),
            msg && *msg ? ": " : "", msg ? msg : "");
  char *none = NULL;
  conc__ann_happens_before(&c->broken_msg); /* the edge to fail_broken */
  if (why && !__atomic_compare_exchange_n(&c->broken_msg, &none, why, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    free(why); /* another worker's initializer failed first */
  raise_flag(c, &c->broken);
  fail_queued(c);
}

static bool run_initializer(struct core *c) {
  if (!c->initializer)
    return true;
  conc__raise_clear();
  int rc = c->initializer(c->initarg);
  if (rc == 0)
    return true;
  int code = rc < 0 ? rc : CONC_EFAILED;
  char *message = conc__raise_take(code);
  initializer_failed(c, code, message);
  free(message);
  return false;
}

static int worker_main(void *arg, void **result) {
  (void)result;
  struct worker *w = arg;
  struct core *c = w->core;
  if (run_initializer(c)) {
    conc_future_t *f;
    while ((f = take_work(w)) != NULL) {
      if (conc__load_acquire(&c->broken)) /* queued while the pool broke */
        fail_broken(c, f);
      else if (conc_future_set_running_or_notify_cancel(f) == 1)
        run_task(c, f);
      else
        worker_idle(c);
      conc_future_release(f);
    }
  }
  return 0;
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
  size_t size = (sizeof(struct core) + 63) / 64 * 64;
  struct core *c = aligned_alloc(64, size);
  if (!c)
    return CONC_ENOMEM;
  memset(c, 0, size);
  c->max_workers = opts->max_workers ? opts->max_workers : default_workers();
  /* Half the CPUs may spin (none on one CPU, where the task can only come
   * from a thread the spinner keeps off the core). */
  int ncpu = conc__cpu_count();
  c->spin_limit = ncpu < 2 ? 0 : (uint32_t)(ncpu / 2);
  c->workers_end = &c->workers;
  unsigned k = conc__fetch_add(&executor_counter, 1);
  char buf[48];
  snprintf(buf, sizeof buf, "ThreadPoolExecutor-%u", k);
  /* Python: thread_name_prefix or the default, so "" is the default too */
  const char *prefix = opts->thread_name_prefix;
  c->prefix = strdup(prefix && *prefix ? prefix : buf);
  if (!c->prefix) {
    free(c);
    return CONC_ENOMEM;
  }
  c->head = c->tail = &c->anchor;
  c->progress = (struct conc__progress){&c->head, &c->waking};
  /* Race detectors: counters and the broken message are atomics read
   * without a lock. */
  conc__ann_benign_race(&c->nthreads, sizeof c->nthreads);
  conc__ann_benign_race(&c->idle, sizeof c->idle);
  conc__ann_benign_race(&c->broken_msg, sizeof c->broken_msg);
  /* ... and so are the words spinners look at without a lock: the queue
   * head (result()'s sign of progress), the spin and sleeper counts, the
   * process-wide yield ban. */
  conc__ann_benign_race(&c->head, sizeof c->head);
  conc__ann_benign_race(&c->spinning, sizeof c->spinning);
  conc__ann_benign_race(&c->nidle, sizeof c->nidle);
  conc__ann_benign_race(&c->waking, sizeof c->waking);
  conc__ann_benign_race(&c->spin_misses, sizeof c->spin_misses);
  conc__ann_benign_race(&conc__yield_banned_until,
                        sizeof conc__yield_banned_until);
  c->initializer = opts->initializer;
  c->initarg = opts->initarg;
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

/* With mu held: start one more worker, named after the live count as
 * Python names it after len(_threads). Returns 0 or the start error. */
static int start_worker(struct core *c) {
  struct worker *w = calloc(1, sizeof *w);
  if (!w)
    return CONC_ENOMEM;
  w->core = c;
  char name[128];
  snprintf(name, sizeof name, "%s_%d", c->prefix, c->nthreads);
  int rc = conc_thread_init(
      &w->thread, worker_main, w,
      &(conc_thread_opts_t){.name = name, .daemon = CONC_DAEMON_NO});
  if (rc == 0) {
    rc = conc_thread_start(&w->thread);
    if (rc != 0)
      conc_thread_destroy(&w->thread);
  }
  if (rc != 0) {
    free(w);
    return rc;
  }
  *c->workers_end = w;
  c->workers_end = &w->next;
  __atomic_store_n(&c->nthreads, c->nthreads + 1, __ATOMIC_RELEASE);
  return 0;
}

/* Python's _adjust_thread_count, with mu held: an idle worker (a token)
 * takes the task, else a new worker starts while below max_workers.
 * Returns 0 or the thread start error. */
static int adjust_thread_count(struct core *c) {
  if (c->nthreads >= c->max_workers)
    return 0;
  uint32_t idle = conc__load_relaxed(&c->idle);
  while (idle > 0)
    if (conc__cas_weak(&c->idle, &idle, idle - 1))
      return 0;
  return start_worker(c);
}

/* Enter submit: counted in `active` so that no worker ends under us; waits
 * while a fork is being prepared. */
static void submit_enter(struct core *c) {
  for (;;) {
    __atomic_fetch_add(&c->active, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&fork_gate, __ATOMIC_SEQ_CST))
      return;
    __atomic_fetch_sub(&c->active, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&fork_gate, __ATOMIC_SEQ_CST))
      sched_yield();
  }
}

static void submit_leave(struct core *c) {
  __atomic_fetch_sub(&c->active, 1, __ATOMIC_SEQ_CST);
  if (stop_flag(c)) /* a worker may be waiting for us to end */
    wake_workers(c);
}

static int submit_checks(struct core *c) {
  if (conc__load_acquire(&c->broken))
    return CONC_EBROKENPOOL;
  if (conc__load_acquire(&c->shutdown) || conc__load_acquire(&exiting))
    return CONC_ESTATE;
  /* seq_cst: pairs with worker_gone (see there) */
  if (__atomic_load_n(&c->nthreads, __ATOMIC_SEQ_CST) >= c->max_workers)
    return 0;
  conc__mu_lock(&c->mu);
  int rc;
  if (stop_flag(c)) /* shut down meanwhile: start nobody shutdown won't join */
    rc = c->nthreads > 0 ? 0 : CONC_ESTATE;
  else if ((rc = adjust_thread_count(c)) != 0 && c->nthreads > 0)
    rc = 0; /* the running workers will take it */
  conc__mu_unlock(&c->mu);
  return rc;
}

int conc_executor_submit(conc_executor_t *ex, conc_fn_t fn, void *arg,
                         conc_future_t **out) {
  struct core *c = CORE(ex);
  if (!c || !fn)
    return CONC_EINVAL;
  conc_future_t *f = conc__future_alloc(out ? 2 : 1);
  if (!f)
    return CONC_ENOMEM;
  f->fn = fn;
  f->arg = arg;
  submit_enter(c);
  int rc = submit_checks(c);
  bool broke = false;
  if (rc == 0) {
    /* read by result() only after the push publishes it */
    f->progress = &c->progress;
    push_work(c, f);
    wake_idle(c);
    broke = __atomic_load_n(&c->broken, __ATOMIC_SEQ_CST);
  }
  submit_leave(c);
  /* The pool broke after our checks and its drain may have missed our push
   * (its workers may be gone): fail what is queued ourselves. Done outside
   * the in-flight count, which a fork waits on, because failing a future
   * takes a future lock that the fork handlers may hold. */
  if (broke)
    fail_queued(c);
  if (rc != 0) {
    f->refs = 1;
    conc_future_release(f);
    return rc;
  }
  if (out)
    *out = f;
  return 0;
}

/* Join every worker. None is added once a stop flag was raised under mu
 * (submit starts workers under mu and checks the flags there), so the list
 * is final; its links are still read under mu, where they are written. */
static void join_workers(struct core *c) {
  conc_thread_t *self = conc_current_thread();
  conc__mu_lock(&c->mu);
  struct worker *w = c->workers;
  conc__mu_unlock(&c->mu);
  while (w) {
    if (&w->thread != self)
      conc_thread_join(&w->thread, CONC_FOREVER);
    conc__mu_lock(&c->mu);
    w = w->next;
    conc__mu_unlock(&c->mu);
  }
}

int conc_executor_shutdown(conc_executor_t *ex, bool wait,
                           bool cancel_futures) {
  struct core *c = CORE(ex);
  if (!c)
    return CONC_EINVAL;
  /* Taking mu orders this against a submit that is starting a worker. */
  conc__mu_lock(&c->mu);
  raise_flag(c, &c->shutdown);
  conc__mu_unlock(&c->mu);
  conc_future_t *f = cancel_futures ? take_all_work(c) : NULL;
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
  for (struct worker *w = c->workers, *next; w; w = next) {
    next = w->next;
    conc_thread_destroy(&w->thread);
    free(w);
  }
  ex->priv.magic = 0;
  ex->priv.core = NULL;
  free(c->prefix);
  free(c->broken_msg);
  free(c);
}

int conc_executor_max_workers(conc_executor_t *ex) {
  struct core *c = CORE(ex);
  return c ? c->max_workers : CONC_EINVAL;
}

int conc_executor_num_threads(conc_executor_t *ex) {
  struct core *c = CORE(ex);
  return c ? __atomic_load_n(&c->nthreads, __ATOMIC_ACQUIRE) : CONC_EINVAL;
}

const char *conc_executor_thread_name_prefix(conc_executor_t *ex) {
  struct core *c = CORE(ex);
  return c ? c->prefix : NULL;
}

/* ---- map ------------------------------------------------------------------
 */

int conc_executor_map(conc_executor_t *ex, conc_fn_t fn, void *const *inputs,
                      size_t n, double timeout, conc_map_t *m) {
  conc_deadline_t dl;
  if (!m || !fn || (!inputs && n) || isnan(timeout) || !CORE(ex))
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
    return CONC_EEOF;
  conc_future_t *f = m->priv.fs[m->priv.next];
  double left = conc_deadline_remaining(m->priv.deadline);
  int rc = conc_future_result(f, left, out);
  if (rc == 0) {
    conc_future_release(f);
    m->priv.fs[m->priv.next++] = NULL;
    return 0;
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
