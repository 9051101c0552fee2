/*
 * Pool: multiprocessing.Pool on forked workers.
 *
 * Transport. Each worker owns one slot in a MAP_SHARED anonymous mapping: a
 * state word (IDLE, TASK, DONE, EXIT), the chunk's function, sizes and a
 * progress index, then the chunk's arguments, results, lengths and codes.
 * A worker sleeps in conc__wait(shared) on its state word; it runs the
 * chunk, writing `progress` before each item, sets DONE and writes to the
 * pool's eventfd. One result thread per pool (the "handler") polls that
 * eventfd and every worker's sentinel (pidfd), so a worker's death is seen
 * as it happens: the items it finished keep their results, the item at
 * `progress` fails with CONC_EWORKERDIED, the rest of its chunk is queued
 * again and the slot gets a fresh worker.
 *
 * Locking protocol. core->mu guards the pool state, the queue of jobs with
 * undispatched items and the handler's bookkeeping read by submitters;
 * the worker table and the slots are touched by the handler thread only
 * (workers are forked by it, so PR_SET_PDEATHSIG follows the pool's life).
 * Each job (async result) has its own mutex guarding its result fields, so
 * results outlive the pool; lock order is core->mu, then job->mu. Nothing
 * blocks while holding either, except the fork of a replacement worker.
 * Waiters sleep on job words with conc__wait; the handler's poll on the
 * eventfd and sentinels is the one blocking call that is not a futex, as
 * process join is. Callbacks run in the handler with no lock held.
 */
#include "conc/pool.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/process.h"
#include "conc/time.h"
#include "init-int.h"
#include "platform-int.h"
#include "pool-int.h"

#define POOL_MAGIC 0x706f6f6cu
#define DEFAULT_BUFFER (1u << 20)
#define MAX_PROCESSES 4096
#define PENDING 1 /* item code: not finished */
/* Chunks in flight per worker: the next one is staged while one runs. */
#define LANES 2

enum { P_RUN, P_CLOSE, P_TERMINATE };
enum { S_IDLE, S_TASK, S_RUNNING, S_DONE, S_EXIT };
enum { K_APPLY, K_MAP, K_IMAP, K_IMAP_UNORDERED };

/* One worker's shared slot; its data area follows, 16-byte aligned. */
struct slot {
  uint32_t state;
  uint32_t progress;
  uint32_t count;
  int32_t msg_index;
  uint32_t seq;     /* dispatch order among the worker's lanes */
  uint32_t bell;    /* lane 0 only: bumped on every dispatch and on quit */
  uint32_t quit;    /* lane 0 only: exit once idle */
  uint32_t watched; /* a caller sleeps on `state` (apply's direct path) */
  conc_pool_func_t fn;
  uint64_t arg_size, result_size;
  char message[CONC_POOL_MESSAGE_MAX];
} __attribute__((aligned(64)));

struct range {
  size_t start, count;
};

struct conc_async_result {
  pthread_mutex_t mu;
  uint32_t refs;
  uint32_t complete; /* results final (callbacks may read them) */
  uint32_t done;     /* callbacks ran: get/wait/ready see this */
  uint32_t seq;      /* bumped on every item finished (imap waiters) */
  int kind;
  conc_pool_func_t fn;
  const unsigned char *in;
  unsigned char *out;
  size_t n, arg_size, result_size, chunksize;
  /* dispatch state (core->mu) */
  size_t next;
  struct range *retry;
  size_t nretry, capretry;
  bool queued;
  struct conc_async_result *qnext;
  /* results (job->mu) */
  size_t remaining, ndone;
  int *codes;
  size_t *lens;
  size_t *order;
  int err, signal;
  long err_index;
  char message[CONC_POOL_MESSAGE_MAX];
  conc_pool_callback_t callback, error_callback;
  void *callback_arg;
  struct conc_async_result *cnext; /* handler's list of completed jobs */
  void *alloc;                     /* owned copies (input, output) */
};

struct conc_imap {
  conc_async_result_t *job;
  size_t consumed;
};

struct worker {
  conc_process_t proc;
  struct core *core;
  int index;
  int fd;      /* sentinel, -1 when the slot has no worker */
  bool exited; /* sentinel became readable */
  bool retiring;
  unsigned tasks, seq;
  struct lane {
    conc_async_result_t *job; /* chunk in flight (holds a reference) */
    size_t start;
  } lane[LANES];
};

struct core {
  pthread_mutex_t mu;
  int state;
  pid_t creator;
  int nworkers;
  int maxtasks;
  void *(*initializer)(void *);
  void *initarg;
  size_t buf_size, stride, shm_len;
  unsigned char *shm;
  int efd;
  struct worker *workers;
  conc_async_result_t *qhead, *qtail;
  size_t busy; /* lanes with a chunk in flight */
  unsigned name_counter;
  pthread_t thread;
  bool joined;
  uint32_t started; /* 0 pending, 1 running, 2 failed */
  int start_err;
  uint32_t finished; /* handler has ended */
  struct core *gnext, *gprev;
};

/* ---- process-wide registry (for the exit-time terminate) ---------------- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct core *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_prepare(void) { pthread_mutex_lock(&reg_mu); }
static void reg_parent(void) { pthread_mutex_unlock(&reg_mu); }
static void reg_child(void) {
  reg_head = NULL;               /* the parent's pools are not ours */
  pthread_mutex_unlock(&reg_mu); /* taken by reg_prepare in this thread */
}

static void terminate_core(struct core *c);

/* Python's pool finalizer: a pool still running at exit is terminated, before
 * the process module joins its children (registered after it, so run first). */
static void pool_atexit(void) {
  for (;;) {
    pthread_mutex_lock(&reg_mu);
    struct core *c = reg_head;
    while (c && (c->creator != getpid() || conc__load_acquire(&c->finished) ||
                 pthread_equal(c->thread, pthread_self())))
      c = c->gnext;
    pthread_mutex_unlock(&reg_mu);
    if (!c)
      return;
    terminate_core(c);
  }
}

static void reg_init(void) {
  conc__atfork_register(reg_prepare, reg_parent, reg_child);
  atexit(pool_atexit);
}

static void reg_add(struct core *c) {
  pthread_mutex_lock(&reg_mu);
  c->gprev = NULL;
  c->gnext = reg_head;
  if (reg_head)
    reg_head->gprev = c;
  reg_head = c;
  pthread_mutex_unlock(&reg_mu);
}

static void reg_del(struct core *c) {
  pthread_mutex_lock(&reg_mu);
  if (c->gprev)
    c->gprev->gnext = c->gnext;
  else if (reg_head == c)
    reg_head = c->gnext;
  if (c->gnext)
    c->gnext->gprev = c->gprev;
  pthread_mutex_unlock(&reg_mu);
}

/* ---- slot layout -------------------------------------------------------- */

struct layout {
  size_t lens, codes, args, results, total;
};

static size_t align16(size_t x) { return (x + 15) & ~(size_t)15; }

static struct layout layout_of(size_t count, size_t arg_size,
                               size_t result_size) {
  struct layout l;
  l.lens = 0;
  l.codes = count * sizeof(uint64_t);
  l.args = align16(l.codes + count * sizeof(int32_t));
  l.results = align16(l.args + count * arg_size);
  l.total = l.results + count * result_size;
  return l;
}

static struct slot *slot_of(struct core *c, int i) {
  return (struct slot *)(void *)(c->shm + (size_t)i * c->stride);
}

static struct slot *lane_slot(struct core *c, const struct worker *w, int k) {
  return slot_of(c, w->index * LANES + k);
}

static unsigned char *slot_data(struct slot *s) {
  return (unsigned char *)(s + 1);
}

/* Items of these sizes that fit one slot (0: not even one). */
static size_t slot_capacity(const struct core *c, size_t arg_size,
                            size_t result_size) {
  size_t per = sizeof(uint64_t) + sizeof(int32_t) + arg_size + result_size;
  if (arg_size > c->buf_size || result_size > c->buf_size)
    return 0;
  size_t k = c->buf_size / per;
  while (k > 0 && layout_of(k, arg_size, result_size).total > c->buf_size)
    k--;
  return k > UINT32_MAX ? UINT32_MAX : k;
}

/* ---- the worker (runs in the child) ------------------------------------- */

static bool in_worker;
static char worker_msg[CONC_POOL_MESSAGE_MAX];

int conc_pool_fail(int code, const char *fmt, ...) {
  if (code >= 0)
    code = CONC_EFAILED;
  if (in_worker && fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(worker_msg, sizeof worker_msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

static void run_chunk(struct slot *s) {
  uint32_t count = s->count;
  size_t as = (size_t)s->arg_size, rs = (size_t)s->result_size;
  struct layout l = layout_of(count, as, rs);
  unsigned char *d = slot_data(s);
  uint64_t *lens = (uint64_t *)(void *)(d + l.lens);
  int32_t *codes = (int32_t *)(void *)(d + l.codes);
  s->msg_index = -1;
  for (uint32_t i = 0; i < count; i++) {
    conc__store_release(&s->progress, i);
    worker_msg[0] = '\0';
    size_t len = rs;
    int rc = s->fn(d + l.args + i * as, as, d + l.results + i * rs, rs, &len);
    if (rc > 0)
      rc = conc_pool_fail(CONC_EFAILED, "task returned %d", rc);
    else if (rc == 0 && len > rs)
      rc = conc_pool_fail(CONC_EMSGSIZE,
                          "result of %zu bytes exceeds the declared capacity "
                          "of %zu bytes",
                          len, rs);
    codes[i] = rc;
    lens[i] = rc == 0 ? len : 0;
    if (rc != 0 && s->msg_index < 0) {
      memcpy(s->message, worker_msg, sizeof worker_msg);
      s->msg_index = (int32_t)i;
    }
  }
  conc__store_release(&s->progress, count);
}

static void ring(int efd) {
  uint64_t one = 1;
  ssize_t r;
  do
    r = write(efd, &one, sizeof one);
  while (r < 0 && errno == EINTR);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct core *c = w->core;
  struct slot *ctl = lane_slot(c, w, 0);
  /* The handler thread that forked us blocks every signal; terminate()
   * relies on SIGTERM's default action, whatever the parent installed. */
  signal(SIGTERM, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  in_worker = true;
  if (c->initializer)
    c->initializer(c->initarg);
  for (;;) {
    uint32_t bell = conc__load_acquire(&ctl->bell);
    if (conc__load_acquire(&ctl->quit))
      conc_process_exit(0);
    struct slot *next = NULL;
    for (int k = 0; k < LANES; k++) {
      struct slot *s = lane_slot(c, w, k);
      if (conc__load_acquire(&s->state) == S_TASK &&
          (!next || (int32_t)(s->seq - next->seq) < 0))
        next = s;
    }
    if (!next) {
      conc__wait(&ctl->bell, bell, CONC_DEADLINE_NEVER, true);
      continue;
    }
    conc__store_release(&next->state, (uint32_t)S_RUNNING);
    run_chunk(next);
    /* Dekker with the caller of conc_pool_apply: it sets `watched`, then
     * reads `state`; we store `state`, then read `watched`. A watched chunk
     * is collected by its caller, so the result thread is left asleep. */
    __atomic_store_n(&next->state, (uint32_t)S_DONE, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&next->watched, __ATOMIC_SEQ_CST))
      conc__wake(&next->state, CONC__WAKE_ALL, true);
    else
      ring(c->efd);
  }
}

/* ---- jobs ------------------------------------------------------------- */

static void job_free(conc_async_result_t *j) {
  pthread_mutex_destroy(&j->mu);
  free(j->retry);
  free(j->alloc);
  free(j);
}

static void job_release(conc_async_result_t *j) {
  if (j && conc__fetch_sub(&j->refs, 1u) == 1u)
    job_free(j);
}

static int checked_mul(size_t a, size_t b, size_t *out) {
  if (b && a > SIZE_MAX / b)
    return CONC_EOVERFLOW;
  *out = a * b;
  return 0;
}

/* A job with its arrays; `copy_in` copies the input, `out` NULL gives it an
 * output buffer of its own. */
static int job_new(int kind, conc_pool_func_t fn, const void *in, size_t n,
                   size_t arg_size, size_t result_size, bool copy_in, void *out,
                   conc_async_result_t **jp) {
  size_t in_bytes, out_bytes, meta;
  if (checked_mul(n, arg_size, &in_bytes) ||
      checked_mul(n, result_size, &out_bytes) ||
      checked_mul(
          n, sizeof(int) + sizeof(size_t) * (kind == K_IMAP_UNORDERED ? 2 : 1),
          &meta) ||
      in_bytes > SIZE_MAX / 2 || out_bytes > SIZE_MAX / 4 ||
      meta > SIZE_MAX / 4)
    return CONC_EOVERFLOW;
  conc_async_result_t *j = calloc(1, sizeof *j);
  if (!j)
    return CONC_ENOMEM;
  size_t own_in = copy_in ? align16(in_bytes) : 0;
  size_t own_out = out ? 0 : align16(out_bytes);
  unsigned char *a = malloc(own_in + own_out + meta + 16);
  if (!a) {
    free(j);
    return CONC_ENOMEM;
  }
  j->alloc = a;
  if (copy_in && in_bytes)
    memcpy(a, in, in_bytes);
  j->in = copy_in ? a : in;
  j->out = out ? out : a + own_in;
  unsigned char *m = a + own_in + own_out;
  j->lens = (size_t *)(void *)m;
  j->order = kind == K_IMAP_UNORDERED ? j->lens + n : NULL;
  j->codes = (int *)(void *)(j->lens + (j->order ? 2 * n : n));
  for (size_t i = 0; i < n; i++)
    j->codes[i] = PENDING;
  pthread_mutex_init(&j->mu, NULL);
  j->refs = 1;
  j->kind = kind;
  j->fn = fn;
  j->n = n;
  j->arg_size = arg_size;
  j->result_size = result_size;
  j->remaining = n;
  j->err_index = -1;
  *jp = j;
  return 0;
}

/* Record one item's outcome; job->mu held. */
static void job_record(conc_async_result_t *j, size_t item, int code,
                       size_t len, const void *result) {
  if (j->codes[item] != PENDING)
    return;
  if (code == 0 && result)
    memcpy(j->out + item * j->result_size, result, j->result_size);
  j->codes[item] = code;
  j->lens[item] = len;
  if (j->order)
    j->order[j->ndone] = item;
  j->ndone++;
  j->remaining--;
}

static void job_set_error(conc_async_result_t *j, size_t item, int code,
                          int sig, const char *msg) {
  if (j->err_index >= 0 && (size_t)j->err_index <= item)
    return;
  j->err = code;
  j->err_index = (long)item;
  j->signal = sig;
  snprintf(j->message, sizeof j->message, "%s", msg ? msg : "");
}

/* ---- pool core helpers (core->mu held) --------------------------------- */

static void queue_push(struct core *c, conc_async_result_t *j, bool front) {
  if (j->queued)
    return;
  j->queued = true;
  j->qnext = NULL;
  if (!c->qhead) {
    c->qhead = c->qtail = j;
  } else if (front) {
    j->qnext = c->qhead;
    c->qhead = j;
  } else {
    c->qtail->qnext = j;
    c->qtail = j;
  }
}

static void queue_pop(struct core *c) {
  conc_async_result_t *j = c->qhead;
  c->qhead = j->qnext;
  if (!c->qhead)
    c->qtail = NULL;
  j->queued = false;
  j->qnext = NULL;
}

static bool job_has_work(const conc_async_result_t *j) {
  return !conc__load_relaxed(&j->complete) && (j->nretry || j->next < j->n);
}

/* Mark a job complete (results final) and put it on the callback list. */
static void job_complete(conc_async_result_t *j, conc_async_result_t **list) {
  conc__store_release(&j->complete, 1u);
  j->cnext = *list;
  *list = j;
}

static void job_bump(conc_async_result_t *j) {
  conc__fetch_add(&j->seq, 1u);
  conc__wake(&j->seq, CONC__WAKE_ALL, false);
}

/* Run items [start, start+count) of `j` again (they were handed to a worker
 * that died before running them). Without memory to remember them they
 * fail with CONC_ENOMEM rather than being lost. */
static void requeue(struct core *c, conc_async_result_t *j, size_t start,
                    size_t count, conc_async_result_t **list) {
  if (j->complete || count == 0)
    return;
  if (j->nretry == j->capretry) {
    size_t cap = j->capretry ? 2 * j->capretry : 4;
    struct range *r = realloc(j->retry, cap * sizeof *r);
    if (!r) {
      pthread_mutex_lock(&j->mu);
      for (size_t i = start; i < start + count; i++) {
        job_set_error(j, i, CONC_ENOMEM, 0, "out of memory re-queueing");
        job_record(j, i, CONC_ENOMEM, 0, NULL);
      }
      job_bump(j);
      if (j->remaining == 0)
        job_complete(j, list);
      pthread_mutex_unlock(&j->mu);
      return;
    }
    j->retry = r;
    j->capretry = cap;
  }
  j->retry[j->nretry++] = (struct range){start, count};
  queue_push(c, j, true);
}

/* Fail every unfinished item of `j` with `code` (terminate). */
static void job_fail_all(conc_async_result_t *j, int code, const char *msg,
                         conc_async_result_t **list) {
  pthread_mutex_lock(&j->mu);
  if (!j->complete) {
    for (size_t i = 0; i < j->n; i++)
      if (j->codes[i] == PENDING) {
        job_set_error(j, i, code, 0, msg);
        job_record(j, i, code, 0, NULL);
      }
    job_complete(j, list);
    job_bump(j);
  }
  pthread_mutex_unlock(&j->mu);
}

/* Take items [0, upto) of lane k's chunk into the job, in bulk. */
static void harvest(struct core *c, struct worker *w, int k, uint32_t upto,
                    conc_async_result_t **list) {
  conc_async_result_t *j = w->lane[k].job;
  size_t first = w->lane[k].start, rs = j->result_size;
  struct slot *s = lane_slot(c, w, k);
  struct layout l = layout_of(s->count, j->arg_size, rs);
  unsigned char *d = slot_data(s);
  const uint64_t *lens = (const uint64_t *)(const void *)(d + l.lens);
  const int32_t *codes = (const int32_t *)(const void *)(d + l.codes);
  pthread_mutex_lock(&j->mu);
  if (!j->complete && upto) {
    if (rs)
      memcpy(j->out + first * rs, d + l.results, upto * rs);
    for (uint32_t i = 0; i < upto; i++) {
      j->lens[first + i] = (size_t)lens[i];
      j->codes[first + i] = codes[i];
      if (codes[i] == 0)
        continue;
      bool own = s->msg_index >= 0 && (uint32_t)s->msg_index == i;
      job_set_error(j, first + i, codes[i], 0, own ? s->message : "");
      if (rs) /* a failed item has no result: leave no stale bytes */
        memset(j->out + (first + i) * rs, 0, rs);
    }
    for (uint32_t i = 0; j->order && i < upto; i++)
      j->order[j->ndone + i] = first + i;
    j->ndone += upto;
    j->remaining -= upto;
    job_bump(j);
    if (j->remaining == 0)
      job_complete(j, list);
  }
  pthread_mutex_unlock(&j->mu);
}

static int in_flight(const struct worker *w) {
  int n = 0;
  for (int k = 0; k < LANES; k++)
    n += w->lane[k].job != NULL;
  return n;
}

static void lane_release(struct core *c, struct worker *w, int k) {
  job_release(w->lane[k].job);
  w->lane[k].job = NULL;
  c->busy--;
}

/* The lane's chunk was settled without its worker: release a caller
 * sleeping on the state word (apply's direct path). */
static void unwatch(struct slot *s) {
  conc__store_release(&s->state, (uint32_t)S_IDLE);
  conc__wake(&s->state, CONC__WAKE_ALL, true);
}

/* Tell the worker to exit once idle (close, maxtasksperchild). */
static void retire(struct worker *w, struct slot *ctl) {
  w->retiring = true;
  conc__store_release(&ctl->quit, 1u);
  conc__fetch_add(&ctl->bell, 1u);
  conc__wake(&ctl->bell, 1, true);
}

/* Lane k reported DONE: collect the chunk, maybe retire the worker. */
static void collect(struct core *c, struct worker *w, int k,
                    conc_async_result_t **list) {
  struct slot *s = lane_slot(c, w, k);
  harvest(c, w, k, s->count, list);
  lane_release(c, w, k);
  conc__store_release(&s->state, (uint32_t)S_IDLE);
  w->tasks++;
  if (c->maxtasks > 0 && w->tasks >= (unsigned)c->maxtasks && !in_flight(w))
    retire(w, lane_slot(c, w, 0));
}

static void describe_death(struct worker *w, int code, char *buf, size_t n,
                           int *sig) {
  const char *name = conc_process_name(&w->proc);
  pid_t pid = conc_process_pid(&w->proc);
  *sig = 0;
  if (code == CONC_EXITCODE_NONE) { /* reaped behind our back */
    snprintf(buf, n, "worker %s (pid %ld) died (status unknown)", name,
             (long)pid);
  } else if (code < 0) {
    *sig = -code;
    snprintf(buf, n, "worker %s (pid %ld) died from signal %d (%s)", name,
             (long)pid, -code, strsignal(-code));
  } else {
    snprintf(buf, n, "worker %s (pid %ld) exited with code %d", name, (long)pid,
             code);
  }
}

/* The worker died while running lane k's chunk: items before `progress`
 * keep their results, the one it was running fails, the rest run again. */
static void settle_running(struct core *c, struct worker *w, int k, int code,
                           conc_async_result_t **list) {
  struct slot *s = lane_slot(c, w, k);
  conc_async_result_t *j = w->lane[k].job;
  size_t start = w->lane[k].start;
  uint32_t p = conc__load_acquire(&s->progress);
  if (p > s->count)
    p = s->count;
  harvest(c, w, k, p, list);
  if (p < s->count) {
    char msg[CONC_POOL_MESSAGE_MAX];
    int sig;
    describe_death(w, code, msg, sizeof msg, &sig);
    pthread_mutex_lock(&j->mu);
    if (!j->complete) {
      job_set_error(j, start + p, CONC_EWORKERDIED, sig, msg);
      job_record(j, start + p, CONC_EWORKERDIED, 0, NULL);
      job_bump(j);
      if (j->remaining == 0)
        job_complete(j, list);
    }
    pthread_mutex_unlock(&j->mu);
    if (p + 1 < s->count)
      requeue(c, j, start + p + 1, s->count - p - 1, list);
  }
}

/* The worker's sentinel fired: reap it and settle its chunks. */
static void bury(struct core *c, struct worker *w, conc_async_result_t **list) {
  conc_process_join(&w->proc, CONC_FOREVER);
  int code = CONC_EXITCODE_NONE;
  conc_process_exitcode(&w->proc, &code);
  for (int k = 0; k < LANES; k++) {
    if (!w->lane[k].job)
      continue;
    struct slot *s = lane_slot(c, w, k);
    uint32_t st = conc__load_acquire(&s->state);
    if (st == S_DONE) {
      collect(c, w, k, list);
      continue;
    }
    if (st == S_TASK) /* never picked up: nothing of it ran */
      requeue(c, w->lane[k].job, w->lane[k].start, s->count, list);
    else
      settle_running(c, w, k, code, list);
    lane_release(c, w, k);
    unwatch(s);
  }
  conc_process_close(&w->proc);
  conc_process_destroy(&w->proc);
  w->fd = -1;
  w->exited = false;
}

static int spawn(struct core *c, struct worker *w) {
  for (int k = 0; k < LANES; k++) {
    struct slot *s = lane_slot(c, w, k);
    conc__store_release(&s->state, (uint32_t)S_IDLE); /* apply reads it */
    s->progress = s->count = s->quit = 0;
  }
  char name[64];
  snprintf(name, sizeof name, "ForkPoolWorker-%u", ++c->name_counter);
  int rc = conc_process_init(&w->proc, worker_main, w,
                             &(conc_process_opts_t){.name = name,
                                                    .daemon = CONC_DAEMON_YES,
                                                    .die_with_parent = true});
  if (rc)
    return rc;
  rc = conc_process_start(&w->proc);
  if (rc) {
    conc_process_destroy(&w->proc);
    return rc;
  }
  w->fd = conc_process_sentinel(&w->proc);
  w->exited = false;
  w->retiring = false;
  w->tasks = 0;
  return 0;
}

/* The first queued job that still has undispatched items. */
static conc_async_result_t *next_job(struct core *c) {
  while (c->qhead && !job_has_work(c->qhead))
    queue_pop(c);
  return c->qhead;
}

/* Hand the next range of queued work to lane k of worker w. */
static void dispatch(struct core *c, struct worker *w, int k,
                     conc_async_result_t *j) {
  size_t start, count;
  size_t cap = slot_capacity(c, j->arg_size, j->result_size);
  if (j->nretry) {
    struct range *r = &j->retry[j->nretry - 1];
    start = r->start;
    count = r->count < cap ? r->count : cap;
    r->start += count;
    r->count -= count;
    if (r->count == 0)
      j->nretry--;
  } else {
    start = j->next;
    count = j->n - start;
    if (count > j->chunksize)
      count = j->chunksize;
    if (count > cap)
      count = cap;
    j->next += count;
  }
  struct slot *s = lane_slot(c, w, k);
  struct layout l = layout_of(count, j->arg_size, j->result_size);
  if (count && j->arg_size)
    memcpy(slot_data(s) + l.args, j->in + start * j->arg_size,
           count * j->arg_size);
  s->fn = j->fn;
  s->arg_size = j->arg_size;
  s->result_size = j->result_size;
  s->count = (uint32_t)count;
  s->progress = 0;
  s->msg_index = -1;
  __atomic_store_n(&s->watched, 0u, __ATOMIC_RELAXED);
  __atomic_store_n(&s->seq, ++w->seq, __ATOMIC_RELEASE);
  conc__fetch_add(&j->refs, 1u);
  w->lane[k].job = j;
  w->lane[k].start = start;
  c->busy++;
  conc__store_release(&s->state, (uint32_t)S_TASK);
  struct slot *ctl = lane_slot(c, w, 0);
  conc__fetch_add(&ctl->bell, 1u);
  conc__wake(&ctl->bell, 1, true);
  if (!job_has_work(j))
    queue_pop(c);
}

/* Give queued work to the workers: idle workers first, then a second chunk
 * to busy ones (map family only: an apply waiting behind a long task in
 * one worker while another sits idle would be worse than the hop saved). */
static void dispatch_all(struct core *c) {
  for (int pass = 0; pass < LANES; pass++) {
    for (int i = 0; i < c->nworkers; i++) {
      struct worker *w = &c->workers[i];
      if (w->fd < 0 || w->exited || w->retiring || in_flight(w) != pass)
        continue;
      if (c->maxtasks > 0 && w->tasks + (unsigned)pass >= (unsigned)c->maxtasks)
        continue;
      conc_async_result_t *j = next_job(c);
      if (!j || (pass > 0 && j->kind == K_APPLY))
        return;
      for (int k = 0; k < LANES; k++)
        if (!w->lane[k].job) {
          dispatch(c, w, k, j);
          break;
        }
    }
  }
}

/* Run callbacks (no lock held) and publish `done`. */
static void finish_jobs(conc_async_result_t *list) {
  while (list) {
    conc_async_result_t *j = list;
    list = j->cnext;
    conc_pool_callback_t cb = j->err ? j->error_callback : j->callback;
    if (cb)
      cb(j, j->callback_arg);
    conc__store_release(&j->done, 1u);
    conc__wake(&j->done, CONC__WAKE_ALL, false);
    job_bump(j);
    job_release(j); /* the pool's reference */
  }
}

static void drain_efd(int efd) {
  uint64_t v;
  while (read(efd, &v, sizeof v) > 0)
    ;
}

static void wake_handler(struct core *c) { ring(c->efd); }

/* ---- the handler thread ------------------------------------------------- */

static int spawn_all(struct core *c) {
  for (int i = 0; i < c->nworkers; i++) {
    int rc = spawn(c, &c->workers[i]);
    if (rc) {
      for (int k = 0; k < i; k++) {
        conc_process_kill(&c->workers[k].proc);
        conc_process_join(&c->workers[k].proc, CONC_FOREVER);
        conc_process_close(&c->workers[k].proc);
        conc_process_destroy(&c->workers[k].proc);
        c->workers[k].fd = -1;
      }
      return rc;
    }
  }
  return 0;
}

/* terminate(): fail everything, stop the workers, reap them. */
static void handler_terminate(struct core *c) {
  conc_async_result_t *list = NULL;
  pthread_mutex_lock(&c->mu);
  while (c->qhead) {
    conc_async_result_t *j = c->qhead;
    queue_pop(c);
    job_fail_all(j, CONC_ECANCELED, "pool terminated", &list);
  }
  for (int i = 0; i < c->nworkers; i++) {
    struct worker *w = &c->workers[i];
    for (int k = 0; k < LANES; k++)
      if (w->lane[k].job)
        job_fail_all(w->lane[k].job, CONC_ECANCELED, "pool terminated", &list);
    if (w->fd >= 0)
      conc_process_terminate(&w->proc);
  }
  /* One grace period for all of them, then SIGKILL for any that caught or
   * blocked SIGTERM in a task. */
  conc_deadline_t grace;
  conc_deadline_after(2.0, &grace);
  for (int i = 0; i < c->nworkers; i++) {
    struct worker *w = &c->workers[i];
    if (w->fd < 0)
      continue;
    double left = conc_deadline_remaining(grace);
    if (conc_process_join(&w->proc, left > 0 ? left : 0) == CONC_ETIMEDOUT) {
      conc_process_kill(&w->proc);
      conc_process_join(&w->proc, CONC_FOREVER);
    }
    for (int k = 0; k < LANES; k++)
      if (w->lane[k].job) {
        lane_release(c, w, k);
        unwatch(lane_slot(c, w, k));
      }
    conc_process_close(&w->proc);
    conc_process_destroy(&w->proc);
    w->fd = -1;
  }
  pthread_mutex_unlock(&c->mu);
  finish_jobs(list);
}

/* One pass over the workers under core->mu; returns false once the pool
 * has nothing left to do. */
static bool handler_step(struct core *c, conc_async_result_t **list) {
  for (int i = 0; i < c->nworkers; i++) {
    struct worker *w = &c->workers[i];
    for (int k = 0; k < LANES && w->fd >= 0; k++)
      if (w->lane[k].job &&
          conc__load_acquire(&lane_slot(c, w, k)->state) == S_DONE)
        collect(c, w, k, list);
  }
  for (int i = 0; i < c->nworkers; i++)
    if (c->workers[i].fd >= 0 && c->workers[i].exited)
      bury(c, &c->workers[i], list);
  bool keep = c->state == P_RUN || next_job(c) || c->busy;
  for (int i = 0; i < c->nworkers; i++)
    if (c->workers[i].fd < 0 && keep && spawn(c, &c->workers[i]) != 0)
      c->workers[i].fd = -1; /* fork failed: retried on the next pass */
  dispatch_all(c);
  bool alive = false;
  for (int i = 0; i < c->nworkers; i++) {
    struct worker *w = &c->workers[i];
    if (w->fd < 0)
      continue;
    alive = true;
    if (!keep && !w->retiring && !in_flight(w))
      retire(w, lane_slot(c, w, 0));
  }
  return alive || keep;
}

static void *handler_main(void *arg) {
  struct core *c = arg;
  struct pollfd *pfd = calloc((size_t)c->nworkers + 1, sizeof *pfd);
  int rc = pfd ? spawn_all(c) : CONC_ENOMEM;
  c->start_err = rc;
  conc__store_release(&c->started, rc ? 2u : 1u);
  conc__wake(&c->started, CONC__WAKE_ALL, false);
  if (rc) {
    free(pfd);
    return NULL;
  }
  for (;;) {
    conc_async_result_t *list = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->state == P_TERMINATE) {
      pthread_mutex_unlock(&c->mu);
      break;
    }
    bool more = handler_step(c, &list);
    int nfd = 1;
    pfd[0] = (struct pollfd){.fd = c->efd, .events = POLLIN};
    for (int i = 0; i < c->nworkers; i++)
      if (c->workers[i].fd >= 0)
        pfd[nfd++] = (struct pollfd){.fd = c->workers[i].fd, .events = POLLIN};
    /* a fork that failed (EAGAIN, ENOMEM) is retried shortly */
    bool want = c->state == P_RUN || c->busy || c->qhead;
    int timeout = nfd - 1 < c->nworkers && want ? 50 : -1;
    pthread_mutex_unlock(&c->mu);
    finish_jobs(list);
    if (!more)
      break;
    if (poll(pfd, (nfds_t)nfd, timeout) < 0)
      continue;
    if (pfd[0].revents)
      drain_efd(c->efd);
    pthread_mutex_lock(&c->mu);
    for (int k = 1; k < nfd; k++)
      if (pfd[k].revents)
        for (int i = 0; i < c->nworkers; i++)
          if (c->workers[i].fd == pfd[k].fd)
            c->workers[i].exited = true;
    pthread_mutex_unlock(&c->mu);
  }
  free(pfd);
  handler_terminate(c);
  conc__store_release(&c->finished, 1u);
  conc__wake(&c->finished, CONC__WAKE_ALL, false);
  return NULL;
}

/* ---- public: lifecycle ------------------------------------------------- */

static struct core *core_of(conc_pool_t *pool, int *err) {
  if (!pool || pool->priv.magic != POOL_MAGIC || !pool->priv.core) {
    *err = CONC_EINVAL;
    return NULL;
  }
  struct core *c = pool->priv.core;
  if (c->creator != getpid()) {
    *err = CONC_EPERM;
    return NULL;
  }
  *err = 0;
  return c;
}

static void core_free(struct core *c) {
  if (c->shm)
    munmap(c->shm, c->shm_len);
  if (c->efd >= 0)
    close(c->efd);
  pthread_mutex_destroy(&c->mu);
  free(c->workers);
  free(c);
}

static int start_handler(struct core *c) {
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

int conc_pool_init(conc_pool_t *pool, const conc_pool_opts_t *opts) {
  static const conc_pool_opts_t defaults;
  if (!pool)
    return CONC_EINVAL;
  if (!opts)
    opts = &defaults;
  if (opts->processes < 0 || opts->processes > MAX_PROCESSES ||
      opts->maxtasksperchild < 0)
    return CONC_EINVAL;
  conc__init();
  struct core *c = calloc(1, sizeof *c);
  if (!c)
    return CONC_ENOMEM;
  c->efd = -1;
  pthread_mutex_init(&c->mu, NULL);
  c->creator = getpid();
  c->nworkers = opts->processes ? opts->processes : conc_process_cpu_count();
  c->maxtasks = opts->maxtasksperchild;
  c->initializer = opts->initializer;
  c->initarg = opts->initarg;
  c->buf_size = opts->buffer_size ? opts->buffer_size : DEFAULT_BUFFER;
  if (c->buf_size > ((size_t)1 << 40)) {
    core_free(c);
    return CONC_EINVAL;
  }
  c->stride = (sizeof(struct slot) + c->buf_size + 4095) & ~(size_t)4095;
  c->shm_len = c->stride * (size_t)c->nworkers * LANES;
  c->workers = calloc((size_t)c->nworkers, sizeof *c->workers);
  void *m = mmap(NULL, c->shm_len, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  c->shm = m == MAP_FAILED ? NULL : m;
  c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!c->workers || !c->shm || c->efd < 0) {
    int err = c->efd < 0 ? -errno : CONC_ENOMEM;
    core_free(c);
    return err;
  }
  for (int i = 0; i < c->nworkers; i++)
    c->workers[i] = (struct worker){.core = c, .index = i, .fd = -1};
  int rc = start_handler(c);
  if (rc) {
    core_free(c);
    return rc;
  }
  pthread_once(&reg_once, reg_init); /* after the process module's atexit */
  reg_add(c);
  pool->priv.core = c;
  pool->priv.magic = POOL_MAGIC;
  return 0;
}

static void wait_finished(struct core *c) {
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

static void terminate_core(struct core *c) {
  pthread_mutex_lock(&c->mu);
  c->state = P_TERMINATE;
  pthread_mutex_unlock(&c->mu);
  wake_handler(c);
  if (!pthread_equal(c->thread, pthread_self()))
    wait_finished(c);
}

int conc_pool_terminate(conc_pool_t *pool) {
  int err;
  struct core *c = core_of(pool, &err);
  if (!c)
    return err;
  if (pthread_equal(c->thread, pthread_self()))
    return CONC_EDEADLK; /* from a callback: the handler cannot wait for itself
                          */
  terminate_core(c);
  return 0;
}

int conc_pool_close(conc_pool_t *pool) {
  int err;
  struct core *c = core_of(pool, &err);
  if (!c)
    return err;
  pthread_mutex_lock(&c->mu);
  if (c->state == P_RUN)
    c->state = P_CLOSE;
  pthread_mutex_unlock(&c->mu);
  wake_handler(c);
  return 0;
}

static int core_state(struct core *c) {
  pthread_mutex_lock(&c->mu);
  int st = c->state;
  pthread_mutex_unlock(&c->mu);
  return st;
}

int conc_pool_join(conc_pool_t *pool) {
  int err;
  struct core *c = core_of(pool, &err);
  if (!c)
    return err;
  int st = core_state(c);
  if (st == P_RUN)
    return CONC_ESTATE;
  if (pthread_equal(c->thread, pthread_self()))
    return CONC_EDEADLK;
  wait_finished(c);
  return 0;
}

int conc_pool_enter(conc_pool_t *pool) {
  int err;
  struct core *c = core_of(pool, &err);
  if (!c)
    return err;
  int st = core_state(c);
  return st == P_RUN ? 0 : CONC_ESTATE;
}

int conc_pool_processes(conc_pool_t *pool) {
  int err;
  struct core *c = core_of(pool, &err);
  return c ? c->nworkers : err;
}

void conc_pool_destroy(conc_pool_t *pool) {
  int err;
  struct core *c = core_of(pool, &err);
  if (!c)
    return;
  if (!pthread_equal(c->thread, pthread_self())) {
    terminate_core(c);
    reg_del(c);
    core_free(c);
  }
  pool->priv.core = NULL;
  pool->priv.magic = 0;
}

/* ---- public: submission -------------------------------------------------- */

static size_t default_chunksize(const struct core *c, size_t n) {
  size_t per = (size_t)c->nworkers * 4;
  return n / per + (n % per != 0);
}

/* Validate, then queue `j` (the pool takes one reference). */
static int submit(struct core *c, conc_async_result_t *j, size_t chunksize) {
  if (j->n && slot_capacity(c, j->arg_size, j->result_size) == 0)
    return CONC_EMSGSIZE;
  j->chunksize = chunksize ? chunksize : default_chunksize(c, j->n);
  if (j->chunksize == 0)
    j->chunksize = 1;
  pthread_mutex_lock(&c->mu);
  if (c->state != P_RUN) {
    pthread_mutex_unlock(&c->mu);
    return CONC_ESTATE;
  }
  conc__fetch_add(&j->refs, 1u);
  if (j->n == 0) { /* Python completes an empty map in the caller */
    pthread_mutex_unlock(&c->mu);
    conc_async_result_t *list = NULL;
    job_complete(j, &list);
    finish_jobs(list);
    return 0;
  }
  queue_push(c, j, false);
  /* Hand work to idle workers right here: the handler only hears back when
   * they finish, which saves a thread hop per submission. */
  dispatch_all(c);
  bool wake = next_job(c) && !c->busy;
  pthread_mutex_unlock(&c->mu);
  if (wake)
    wake_handler(c);
  return 0;
}

static int check_data(const void *p, size_t len) {
  return !p && len ? CONC_EINVAL : 0;
}

static void set_callbacks(conc_async_result_t *j,
                          const conc_pool_async_opts_t *o) {
  if (o) {
    j->callback = o->callback;
    j->error_callback = o->error_callback;
    j->callback_arg = o->callback_arg;
  }
}

int conc_pool_apply_async(conc_pool_t *pool, conc_pool_func_t fn,
                          const void *arg, size_t arg_len, size_t result_cap,
                          const conc_pool_async_opts_t *opts,
                          conc_async_result_t **out) {
  int err;
  struct core *c = core_of(pool, &err);
  if (out)
    *out = NULL;
  if (!c)
    return err;
  if (!fn || check_data(arg, arg_len))
    return CONC_EINVAL;
  conc_async_result_t *j;
  int rc = job_new(K_APPLY, fn, arg, 1, arg_len, result_cap, true, NULL, &j);
  if (rc)
    return rc;
  set_callbacks(j, opts);
  rc = submit(c, j, 1);
  if (rc || !out)
    job_release(j);
  else
    *out = j;
  return rc;
}

/* apply's direct path: when the task went straight to a worker, sleep on
 * that lane's state word (the worker wakes it) and collect the result here,
 * one hop instead of two through the result thread. */
static void await_direct(struct core *c, conc_async_result_t *j) {
  struct worker *w = NULL;
  struct slot *s = NULL;
  int k = 0;
  uint32_t seq = 0;
  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < c->nworkers && !s; i++)
    for (int q = 0; q < LANES && !s; q++)
      if (c->workers[i].lane[q].job == j) {
        w = &c->workers[i];
        k = q;
        s = lane_slot(c, w, q);
        seq = s->seq;
        __atomic_store_n(&s->watched, 1u, __ATOMIC_SEQ_CST);
      }
  pthread_mutex_unlock(&c->mu);
  if (!s)
    return;
  for (;;) {
    uint32_t st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
    if ((st != S_TASK && st != S_RUNNING) ||
        __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != seq)
      break;
    conc__wait(&s->state, st, CONC_DEADLINE_NEVER, true);
  }
  conc_async_result_t *list = NULL;
  pthread_mutex_lock(&c->mu);
  if (w->lane[k].job == j && conc__load_acquire(&s->state) == S_DONE) {
    collect(c, w, k, &list);
    dispatch_all(c);
  }
  bool wake = c->state != P_RUN; /* closing: the result thread decides */
  pthread_mutex_unlock(&c->mu);
  finish_jobs(list);
  if (wake)
    wake_handler(c);
}

int conc_pool_apply(conc_pool_t *pool, conc_pool_func_t fn, const void *arg,
                    size_t arg_len, void *result, size_t result_cap,
                    size_t *result_len) {
  if (check_data(result, result_cap))
    return CONC_EINVAL;
  conc_async_result_t *r;
  int rc = conc_pool_apply_async(pool, fn, arg, arg_len, result_cap, NULL, &r);
  if (rc)
    return rc;
  await_direct(pool->priv.core, r);
  rc = conc_async_result_get(r, CONC_FOREVER, result, result_cap);
  if (result_len)
    *result_len = rc == 0 ? r->lens[0] : 0;
  conc_async_result_release(r);
  return rc;
}

static int map_async(conc_pool_t *pool, int kind, conc_pool_func_t fn,
                     const void *in, size_t n, size_t arg_size,
                     size_t result_size, size_t chunksize,
                     const conc_pool_async_opts_t *opts,
                     conc_async_result_t **out) {
  int err;
  struct core *c = core_of(pool, &err);
  if (!c)
    return err;
  if (!fn || !out || (n && check_data(in, arg_size)))
    return CONC_EINVAL;
  conc_async_result_t *j;
  int rc = job_new(kind, fn, in, n, arg_size, result_size, true, NULL, &j);
  if (rc)
    return rc;
  set_callbacks(j, opts);
  rc = submit(c, j, chunksize);
  if (rc)
    job_release(j);
  else
    *out = j;
  return rc;
}

int conc_pool_map_async(conc_pool_t *pool, conc_pool_func_t fn, const void *in,
                        size_t n, size_t arg_size, size_t result_size,
                        const conc_pool_async_opts_t *opts,
                        conc_async_result_t **out) {
  if (out)
    *out = NULL;
  return map_async(pool, K_MAP, fn, in, n, arg_size, result_size,
                   opts ? opts->chunksize : 0, opts, out);
}

int conc_pool_starmap_async(conc_pool_t *pool, conc_pool_func_t fn,
                            const void *in, size_t n, size_t arg_size,
                            size_t result_size,
                            const conc_pool_async_opts_t *opts,
                            conc_async_result_t **out) {
  return conc_pool_map_async(pool, fn, in, n, arg_size, result_size, opts, out);
}

int conc_pool_map(conc_pool_t *pool, conc_pool_func_t fn, const void *in,
                  size_t n, size_t arg_size, void *out, size_t result_size,
                  const conc_pool_map_opts_t *opts) {
  int err;
  struct core *c = core_of(pool, &err);
  if (!c)
    return err;
  size_t out_bytes;
  if (!fn || checked_mul(n, result_size, &out_bytes) ||
      (n && (check_data(in, arg_size) || check_data(out, out_bytes))))
    return CONC_EINVAL;
  conc_async_result_t *j;
  /* map blocks until the job is complete, so the job may read the caller's
   * input and write the caller's output in place. */
  int rc = job_new(K_MAP, fn, in, n, arg_size, result_size, false, out, &j);
  if (rc)
    return rc;
  rc = submit(c, j, opts ? opts->chunksize : 0);
  if (rc == 0) {
    rc = conc_async_result_wait(j, CONC_FOREVER);
    if (rc == 0)
      rc = j->err;
    for (size_t i = 0; opts && i < n; i++) {
      if (opts->errors)
        opts->errors[i] = j->codes[i];
      if (opts->result_lens)
        opts->result_lens[i] = j->lens[i];
    }
  }
  job_release(j);
  return rc;
}

int conc_pool_starmap(conc_pool_t *pool, conc_pool_func_t fn, const void *in,
                      size_t n, size_t arg_size, void *out, size_t result_size,
                      const conc_pool_map_opts_t *opts) {
  return conc_pool_map(pool, fn, in, n, arg_size, out, result_size, opts);
}

static int imap_new(conc_pool_t *pool, int kind, conc_pool_func_t fn,
                    const void *in, size_t n, size_t arg_size,
                    size_t result_size, size_t chunksize, conc_imap_t **out) {
  if (out)
    *out = NULL;
  if (!out)
    return CONC_EINVAL;
  conc_imap_t *it = calloc(1, sizeof *it);
  if (!it)
    return CONC_ENOMEM;
  int rc = map_async(pool, kind, fn, in, n, arg_size, result_size,
                     chunksize ? chunksize : 1, NULL, &it->job);
  if (rc) {
    free(it);
    return rc;
  }
  *out = it;
  return 0;
}

int conc_pool_imap(conc_pool_t *pool, conc_pool_func_t fn, const void *in,
                   size_t n, size_t arg_size, size_t result_size,
                   size_t chunksize, conc_imap_t **out) {
  return imap_new(pool, K_IMAP, fn, in, n, arg_size, result_size, chunksize,
                  out);
}

int conc_pool_imap_unordered(conc_pool_t *pool, conc_pool_func_t fn,
                             const void *in, size_t n, size_t arg_size,
                             size_t result_size, size_t chunksize,
                             conc_imap_t **out) {
  return imap_new(pool, K_IMAP_UNORDERED, fn, in, n, arg_size, result_size,
                  chunksize, out);
}

/* ---- public: AsyncResult ------------------------------------------------- */

int conc_async_result_wait(conc_async_result_t *r, double timeout) {
  if (!r || isnan(timeout))
    return CONC_EINVAL;
  if (conc__load_acquire(&r->done))
    return 0;
  conc_deadline_t dl;
  int rc = conc_deadline_after(timeout, &dl);
  if (rc)
    return rc;
  while (!conc__load_acquire(&r->done))
    if (conc__wait(&r->done, 0, dl, false) == CONC_ETIMEDOUT &&
        !conc__load_acquire(&r->done))
      return CONC_ETIMEDOUT;
  return 0;
}

int conc_async_result_get(conc_async_result_t *r, double timeout, void *out,
                          size_t out_size) {
  int rc = conc_async_result_wait(r, timeout);
  if (rc)
    return rc;
  if (r->err)
    return r->err;
  size_t len = r->kind == K_APPLY ? r->lens[0] : r->n * r->result_size;
  if (!out)
    return 0;
  if (out_size < len)
    return CONC_ETOOSHORT;
  if (len)
    memcpy(out, r->out, len);
  return 0;
}

bool conc_async_result_ready(conc_async_result_t *r) {
  return r && conc__load_acquire(&r->done);
}

int conc_async_result_successful(conc_async_result_t *r) {
  if (!r)
    return CONC_EINVAL;
  if (!conc__load_acquire(&r->done))
    return CONC_ESTATE;
  return r->err == 0;
}

const void *conc_async_result_value(conc_async_result_t *r, size_t *len) {
  if (len)
    *len = 0;
  if (!r || !conc__load_acquire(&r->complete) || r->err)
    return NULL;
  if (len)
    *len = r->kind == K_APPLY ? r->lens[0] : r->n * r->result_size;
  return r->out;
}

const char *conc_async_result_message(conc_async_result_t *r) {
  if (!r || !conc__load_acquire(&r->complete))
    return "";
  return r->message;
}

int conc_async_result_signal(conc_async_result_t *r) {
  if (!r || !conc__load_acquire(&r->complete))
    return 0;
  return r->signal;
}

long conc_async_result_error_index(conc_async_result_t *r) {
  if (!r || !conc__load_acquire(&r->complete))
    return -1;
  return r->err_index;
}

int conc_async_result_item_error(conc_async_result_t *r, size_t i) {
  if (!r || i >= r->n)
    return CONC_EINVAL;
  if (!conc__load_acquire(&r->complete))
    return CONC_ESTATE;
  return r->codes[i];
}

void conc_async_result_release(conc_async_result_t *r) { job_release(r); }

size_t conc__pool_chunksize(const conc_async_result_t *r) {
  return r->chunksize;
}

/* ---- public: IMapIterator ------------------------------------------------ */

/* The next item for the iterator, or -1; job->mu held. */
static long imap_pick(conc_imap_t *it) {
  conc_async_result_t *j = it->job;
  if (j->kind == K_IMAP_UNORDERED)
    return it->consumed < j->ndone ? (long)j->order[it->consumed] : -1;
  return j->codes[it->consumed] != PENDING ? (long)it->consumed : -1;
}

int conc_imap_next(conc_imap_t *it, double timeout, void *out, size_t *index) {
  if (!it || isnan(timeout))
    return CONC_EINVAL;
  conc_async_result_t *j = it->job;
  if (it->consumed >= j->n)
    return 0;
  conc_deadline_t dl;
  int rc = conc_deadline_after(timeout, &dl);
  if (rc)
    return rc;
  pthread_mutex_lock(&j->mu);
  long k;
  while ((k = imap_pick(it)) < 0) {
    uint32_t seen = conc__load_acquire(&j->seq);
    pthread_mutex_unlock(&j->mu);
    rc = conc__wait(&j->seq, seen, dl, false);
    pthread_mutex_lock(&j->mu);
    if (rc == CONC_ETIMEDOUT && (k = imap_pick(it)) < 0) {
      pthread_mutex_unlock(&j->mu);
      return CONC_ETIMEDOUT;
    }
    if (k >= 0)
      break;
  }
  it->consumed++;
  int code = j->codes[k];
  if (code == 0 && out && j->result_size)
    memcpy(out, j->out + (size_t)k * j->result_size, j->result_size);
  pthread_mutex_unlock(&j->mu);
  if (index)
    *index = (size_t)k;
  return code == 0 ? 1 : code;
}

conc_async_result_t *conc_imap_result(conc_imap_t *it) {
  return it ? it->job : NULL;
}

void conc_imap_release(conc_imap_t *it) {
  if (!it)
    return;
  job_release(it->job);
  free(it);
}
