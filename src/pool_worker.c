/*
 * The pool's fork + shared-memory transport (conc__pool_shm): forked
 * worker processes, one anonymous MAP_SHARED mapping holding two slots per
 * worker, an eventfd for "a chunk is done" and every worker's pidfd.
 *
 * A slot is a state word (IDLE, TASK, RUNNING, DONE), the chunk's function,
 * sizes and progress index, a packed list of the chunk's failures (index,
 * code, message), then the chunk's result lengths (byte path only),
 * arguments and results. A worker sleeps on its doorbell (lane 0's `bell`)
 * after a short spin; it writes `progress` before each item, so a death is
 * attributed to the item it was running, then sets DONE and writes to the
 * eventfd (or wakes the one caller sleeping on the state word: apply's
 * direct path).
 *
 * Locking protocol. The parent side is called with core->mu held (the
 * transport interface's rule); the worker side runs in the child, which
 * shares nothing but the mapping. Words both sides touch are accessed with
 * atomics: the parent publishes a chunk by storing TASK with release order
 * after the data, the worker publishes DONE the same way after its results;
 * `watched`/`state` and `bell`/`asleep` form Dekker pairs with sequentially
 * consistent order, so that a side that is still spinning is never sent a
 * futex wake-up (a system call per task otherwise).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/time.h"
#include "error-int.h"
#include "platform-int.h"
#include "pool-int.h"

enum { S_IDLE, S_TASK, S_RUNNING, S_DONE };
/* Who learns that a chunk is done: the result thread (through the
 * eventfd), a caller that spins on the state word, or one asleep on it. */
enum { WATCH_NONE, WATCH_SPIN, WATCH_SLEEP };

/* Bytes of failure records per chunk; a chunk stops early (the rest runs
 * again in a later chunk) rather than drop a message. */
#define FAIL_BYTES 4096
/* How long an idle worker and a waiting caller look before they sleep: a
 * wake-up costs several microseconds, a burst of apply calls much less. */
#ifndef CONC__POOL_SPIN_NS
#define CONC__POOL_SPIN_NS 50000
#endif
#define SPIN_NS CONC__POOL_SPIN_NS

struct slot {
  uint32_t state;
  uint32_t progress;
  uint32_t count;
  uint32_t seq;      /* dispatch order among the worker's lanes */
  uint32_t bell;     /* lane 0 only: bumped on every dispatch and on quit */
  uint32_t quit;     /* lane 0 only: exit once idle */
  uint32_t watched;  /* WATCH_*: a caller waits on `state` (direct path) */
  uint32_t asleep;   /* lane 0 only: the worker sleeps on `bell` */
  uint32_t initfail; /* lane 0 only: the initializer failed (message: fails) */
  uint32_t typed;
  uint32_t nfail, fail_used;
  conc_pool_func_t fn;
  uint64_t arg_size, result_size;
  unsigned char fails[FAIL_BYTES];
} __attribute__((aligned(64)));

/* One failure record in slot->fails; the message follows (len bytes). */
struct fail_rec {
  uint32_t index;
  int32_t code;
  uint32_t len;
};

struct shm {
  size_t stride, len;
  unsigned char *base;
  int efd;
  struct pollfd *pfd;
  struct conc__pool_worker **pfd_worker;
};

static struct shm *shm_of(conc__pool_core_t *c) { return c->tp_state; }

/* ---- slot layout -------------------------------------------------------- */

struct layout {
  size_t lens, args, results, total;
};

static size_t align16(size_t x) { return (x + 15) & ~(size_t)15; }

static struct layout layout_of(size_t count, size_t as, size_t rs, bool typed) {
  struct layout l;
  l.lens = 0;
  l.args = align16(typed ? 0 : count * sizeof(uint64_t));
  l.results = align16(l.args + count * as);
  l.total = l.results + count * rs;
  return l;
}

static struct slot *slot_at(struct shm *m, int i) {
  return (struct slot *)(void *)(m->base + (size_t)i * m->stride);
}

static struct slot *lane_slot(conc__pool_core_t *c,
                              const struct conc__pool_worker *w, int k) {
  return slot_at(shm_of(c), w->index * CONC__POOL_LANES + k);
}

static unsigned char *slot_data(struct slot *s) {
  return (unsigned char *)(s + 1);
}

static size_t shm_capacity(conc__pool_core_t *c, const conc_async_result_t *j) {
  bool typed = j->kind == CONC__K_TYPED;
  size_t as = j->arg_size, rs = j->result_size;
  size_t per = (typed ? 0 : sizeof(uint64_t)) + as + rs;
  if (as > c->buf_size || rs > c->buf_size)
    return 0;
  size_t k = per ? c->buf_size / per : c->buf_size;
  while (k > 0 && layout_of(k, as, rs, typed).total > c->buf_size)
    k--;
  return k > UINT32_MAX ? UINT32_MAX : k;
}

/* ---- the worker (runs in the child) ------------------------------------- */

/* Append a failure record; false once the chunk should stop (no room left
 * for another full message). */
static bool add_failure(struct slot *s, uint32_t i, int code, const char *msg) {
  size_t len = msg ? strnlen(msg, CONC_POOL_MESSAGE_MAX - 1) : 0;
  struct fail_rec r = {i, code, (uint32_t)len};
  unsigned char *p = s->fails + s->fail_used;
  memcpy(p, &r, sizeof r);
  if (len)
    memcpy(p + sizeof r, msg, len);
  s->fail_used += (uint32_t)((sizeof r + len + 3) & ~(size_t)3);
  s->nfail++;
  return FAIL_BYTES - s->fail_used >= sizeof r + CONC_POOL_MESSAGE_MAX;
}

/* Run one item; its code, with the message the task raised (or ours). */
static int run_item(struct slot *s, const unsigned char *arg,
                    unsigned char *res, size_t *len, char **msg) {
  size_t as = (size_t)s->arg_size, rs = (size_t)s->result_size;
  conc__raise_clear();
  *len = rs;
  int rc = s->fn(arg, as, res, rs, len);
  char buf[CONC_POOL_MESSAGE_MAX];
  *msg = NULL;
  if (rc < 0) {
    *msg = conc__raise_take(rc);
    return rc;
  }
  if (rc > 0)
    snprintf(buf, sizeof buf, "task returned %d", rc);
  else if (*len > rs)
    snprintf(buf, sizeof buf,
             "result of %zu bytes exceeds the declared capacity of %zu bytes",
             *len, rs);
  else
    return 0;
  *msg = strdup(buf);
  return rc > 0 ? CONC_EFAILED : CONC_EMSGSIZE;
}

static void run_chunk(struct slot *s) {
  uint32_t count = s->count;
  size_t as = (size_t)s->arg_size, rs = (size_t)s->result_size;
  bool typed = s->typed;
  struct layout l = layout_of(count, as, rs, typed);
  unsigned char *d = slot_data(s);
  uint64_t *lens = (uint64_t *)(void *)(d + l.lens);
  s->nfail = s->fail_used = 0;
  for (uint32_t i = 0; i < count; i++) {
    conc__store_release(&s->progress, i);
    size_t len;
    char *msg;
    int rc =
        run_item(s, d + l.args + i * as, d + l.results + i * rs, &len, &msg);
    if (!typed)
      lens[i] = rc == 0 ? len : 0;
    if (rc == 0)
      continue;
    bool more = add_failure(s, i, rc, msg);
    free(msg);
    if (!more && i + 1 < count) { /* the rest runs in a later chunk */
      conc__store_release(&s->progress, i + 1);
      return;
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

/* The next chunk staged for this worker (oldest first), or NULL. */
static struct slot *next_chunk(conc__pool_core_t *c,
                               const struct conc__pool_worker *w) {
  struct slot *next = NULL;
  for (int k = 0; k < CONC__POOL_LANES; k++) {
    struct slot *s = lane_slot(c, w, k);
    if (conc__load_acquire(&s->state) == S_TASK &&
        (!next || (int32_t)(s->seq - next->seq) < 0))
      next = s;
  }
  return next;
}

/* Look for the doorbell to change for a while, then sleep on it (saying
 * so first: a sender wakes only a worker that sleeps). */
static void await_bell(struct slot *ctl, uint32_t bell) {
  int64_t end = conc__now_ns() + SPIN_NS;
  for (unsigned i = 1; conc__load_acquire(&ctl->bell) == bell; i++) {
    if ((i & 15) == 0 && conc__now_ns() >= end) {
      __atomic_store_n(&ctl->asleep, 1u, __ATOMIC_SEQ_CST);
      if (__atomic_load_n(&ctl->bell, __ATOMIC_SEQ_CST) == bell)
        conc__wait(&ctl->bell, bell, CONC_DEADLINE_NEVER, true);
      __atomic_store_n(&ctl->asleep, 0u, __ATOMIC_RELAXED);
      return;
    }
    sched_yield();
  }
}

/* Ring a worker's doorbell; the system call only if it sleeps. */
static void ring_bell(struct slot *ctl) {
  __atomic_fetch_add(&ctl->bell, 1u, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&ctl->asleep, __ATOMIC_SEQ_CST))
    conc__wake(&ctl->bell, 1, true);
}

static void run_initializer(conc__pool_core_t *c, struct slot *ctl) {
  conc__raise_clear();
  int rc = c->initializer(c->initarg);
  if (rc >= 0)
    return;
  char *msg = conc__raise_take(rc);
  ctl->nfail = ctl->fail_used = 0;
  add_failure(ctl, 0, rc, msg ? msg : conc_strerror(rc));
  free(msg);
  conc__store_release(&ctl->initfail, 1u);
  conc_process_exit(1);
}

static int worker_main(void *arg, void **result) {
  (void)result;
  struct conc__pool_worker *w = arg;
  conc__pool_core_t *c = w->core;
  struct slot *ctl = lane_slot(c, w, 0);
  /* The handler thread that forked us blocks every signal; terminate()
   * relies on SIGTERM's default action, whatever the parent installed. */
  signal(SIGTERM, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  if (c->initializer)
    run_initializer(c, ctl);
  for (;;) {
    uint32_t bell = conc__load_acquire(&ctl->bell);
    if (conc__load_acquire(&ctl->quit))
      conc_process_exit(0);
    struct slot *next = next_chunk(c, w);
    if (!next) {
      await_bell(ctl, bell);
      continue;
    }
    conc__store_release(&next->state, (uint32_t)S_RUNNING);
    run_chunk(next);
    /* Dekker with apply's direct path: it sets `watched`, then reads
     * `state`; we store `state`, then read `watched`. A watched chunk is
     * collected by its caller, so the result thread is left asleep. */
    __atomic_store_n(&next->state, (uint32_t)S_DONE, __ATOMIC_SEQ_CST);
    uint32_t watch = __atomic_load_n(&next->watched, __ATOMIC_SEQ_CST);
    if (watch == WATCH_SLEEP)
      conc__wake(&next->state, CONC__WAKE_ALL, true);
    else if (watch == WATCH_NONE)
      ring(shm_of(c)->efd);
  }
}

/* ---- the parent side ------------------------------------------------------ */

static int shm_open_(conc__pool_core_t *c) {
  struct shm *m = calloc(1, sizeof *m);
  if (!m)
    return CONC_ENOMEM;
  m->efd = -1;
  c->tp_state = m;
  m->stride = (sizeof(struct slot) + c->buf_size + 4095) & ~(size_t)4095;
  m->len = m->stride * (size_t)c->nworkers * CONC__POOL_LANES;
  void *p = mmap(NULL, m->len, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  m->base = p == MAP_FAILED ? NULL : p;
  m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  m->pfd = calloc((size_t)c->nworkers + 1, sizeof *m->pfd);
  m->pfd_worker = calloc((size_t)c->nworkers + 1, sizeof *m->pfd_worker);
  if (!m->base || m->efd < 0 || !m->pfd || !m->pfd_worker)
    return m->efd < 0 ? -errno : CONC_ENOMEM;
  return 0;
}

static void shm_close(conc__pool_core_t *c) {
  struct shm *m = shm_of(c);
  if (!m)
    return;
  if (m->base)
    munmap(m->base, m->len);
  if (m->efd >= 0)
    close(m->efd);
  free(m->pfd);
  free(m->pfd_worker);
  free(m);
  c->tp_state = NULL;
}

static int shm_spawn(conc__pool_core_t *c, struct conc__pool_worker *w) {
  for (int k = 0; k < CONC__POOL_LANES; k++) {
    struct slot *s = lane_slot(c, w, k);
    conc__store_release(&s->state, (uint32_t)S_IDLE); /* apply reads it */
    s->progress = s->count = s->quit = s->initfail = 0;
  }
  char name[64];
  snprintf(name, sizeof name, "%s-%u", c->worker_prefix, ++c->name_counter);
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
  w->pid = conc_process_pid(&w->proc);
  snprintf(w->name, sizeof w->name, "%s", name);
  return 0;
}

static int shm_reap(conc__pool_core_t *c, struct conc__pool_worker *w) {
  (void)c;
  conc_process_join(&w->proc, CONC_FOREVER);
  int code = CONC_EXITCODE_NONE;
  conc_process_exitcode(&w->proc, &code);
  conc_process_close(&w->proc);
  conc_process_destroy(&w->proc);
  return code;
}

static void shm_stop(conc__pool_core_t *c, struct conc__pool_worker *w,
                     bool force) {
  (void)c;
  if (force)
    conc_process_kill(&w->proc);
  else
    conc_process_terminate(&w->proc);
}

static int shm_join(conc__pool_core_t *c, struct conc__pool_worker *w,
                    double timeout) {
  (void)c;
  return conc_process_join(&w->proc, timeout) == CONC_ETIMEDOUT ? CONC_ETIMEDOUT
                                                                : 0;
}

static void shm_send(conc__pool_core_t *c, struct conc__pool_worker *w, int k,
                     conc_async_result_t *j, size_t start, size_t count) {
  struct slot *s = lane_slot(c, w, k);
  bool typed = j->kind == CONC__K_TYPED;
  struct layout l = layout_of(count, j->arg_size, j->result_size, typed);
  if (count && j->arg_size)
    memcpy(slot_data(s) + l.args, j->in + start * j->arg_size,
           count * j->arg_size);
  s->fn = j->fn;
  s->arg_size = j->arg_size;
  s->result_size = j->result_size;
  s->typed = typed;
  s->count = (uint32_t)count;
  s->progress = 0;
  s->nfail = s->fail_used = 0;
  __atomic_store_n(&s->watched, (uint32_t)WATCH_NONE, __ATOMIC_RELAXED);
  __atomic_store_n(&s->seq, ++w->seq, __ATOMIC_RELEASE);
  conc__store_release(&s->state, (uint32_t)S_TASK);
  ring_bell(lane_slot(c, w, 0));
}

static int shm_lane_state(conc__pool_core_t *c, struct conc__pool_worker *w,
                          int k, uint32_t *progress) {
  struct slot *s = lane_slot(c, w, k);
  /* seq_cst: the other half of the watched/state Dekker pair */
  uint32_t st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
  uint32_t p = conc__load_acquire(&s->progress);
  *progress = p > s->count ? s->count : p;
  return st == S_DONE   ? CONC__LANE_DONE
         : st == S_TASK ? CONC__LANE_QUEUED
                        : CONC__LANE_RUNNING;
}

/* The failure records of items below `upto`, into the job. */
static void take_failures(struct conc__pool_worker *w, struct slot *s,
                          conc_async_result_t *j, size_t first, uint32_t upto) {
  const unsigned char *p = s->fails;
  char msg[CONC_POOL_MESSAGE_MAX];
  for (uint32_t f = 0; f < s->nfail; f++) {
    struct fail_rec r;
    memcpy(&r, p, sizeof r);
    memcpy(msg, p + sizeof r, r.len);
    msg[r.len] = '\0';
    p += (sizeof r + r.len + 3) & ~(size_t)3;
    if (r.index >= upto)
      continue;
    conc__pool_job_fail_item(j, first + r.index, r.code, 0, 0, w->pid, msg);
  }
}

static void shm_harvest(conc__pool_core_t *c, struct conc__pool_worker *w,
                        int k, uint32_t upto) {
  conc_async_result_t *j = w->lane[k].job;
  size_t first = w->lane[k].start, rs = j->result_size;
  struct slot *s = lane_slot(c, w, k);
  bool typed = j->kind == CONC__K_TYPED;
  struct layout l = layout_of(s->count, j->arg_size, rs, typed);
  unsigned char *d = slot_data(s);
  if (rs)
    memcpy(j->out + first * rs, d + l.results, upto * rs);
  memset(j->codes + first, 0, upto * sizeof(int)); /* failures follow */
  if (!typed) {
    const uint64_t *lens = (const uint64_t *)(const void *)(d + l.lens);
    for (uint32_t i = 0; i < upto; i++)
      j->lens[first + i] = (size_t)lens[i];
  }
  take_failures(w, s, j, first, upto);
}

static void shm_reset_lane(conc__pool_core_t *c, struct conc__pool_worker *w,
                           int k) {
  struct slot *s = lane_slot(c, w, k);
  conc__store_release(&s->state, (uint32_t)S_IDLE);
  conc__wake(&s->state, CONC__WAKE_ALL, true);
}

static bool shm_init_failed(conc__pool_core_t *c, struct conc__pool_worker *w,
                            char *msg, size_t len) {
  struct slot *ctl = lane_slot(c, w, 0);
  if (!conc__load_acquire(&ctl->initfail))
    return false;
  struct fail_rec r;
  memcpy(&r, ctl->fails, sizeof r);
  size_t n = r.len < len ? r.len : len - 1;
  memcpy(msg, ctl->fails + sizeof r, n);
  msg[n] = '\0';
  return true;
}

static void shm_retire(conc__pool_core_t *c, struct conc__pool_worker *w) {
  struct slot *ctl = lane_slot(c, w, 0);
  conc__store_release(&ctl->quit, 1u);
  ring_bell(ctl);
}

static void drain(int efd) {
  uint64_t v;
  while (read(efd, &v, sizeof v) > 0)
    ;
}

static void shm_wait(conc__pool_core_t *c, int timeout_ms) {
  struct shm *m = shm_of(c);
  int nfd = 1;
  pthread_mutex_lock(&c->mu);
  m->pfd[0] = (struct pollfd){.fd = m->efd, .events = POLLIN};
  for (int i = 0; i < c->nworkers; i++)
    if (c->workers[i].fd >= 0) {
      m->pfd_worker[nfd] = &c->workers[i];
      m->pfd[nfd++] = (struct pollfd){.fd = c->workers[i].fd, .events = POLLIN};
    }
  pthread_mutex_unlock(&c->mu);
  if (poll(m->pfd, (nfds_t)nfd, timeout_ms) <= 0)
    return;
  if (m->pfd[0].revents)
    drain(m->efd);
  pthread_mutex_lock(&c->mu);
  for (int k = 1; k < nfd; k++)
    if (m->pfd[k].revents && m->pfd_worker[k]->fd == m->pfd[k].fd)
      m->pfd_worker[k]->exited = true;
  pthread_mutex_unlock(&c->mu);
}

static void shm_wake(conc__pool_core_t *c) { ring(shm_of(c)->efd); }

static bool lane_busy(struct slot *s, uint32_t seq, uint32_t *st) {
  *st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
  return (*st == S_TASK || *st == S_RUNNING) &&
         __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == seq;
}

/* Spin while the lane runs the chunk, then sleep on its state word, saying
 * so first (WATCH_SLEEP): the worker makes the system call only then. */
static void shm_await_lane(conc__pool_core_t *c, struct conc__pool_worker *w,
                           int k, uint32_t seq, int64_t deadline) {
  struct slot *s = lane_slot(c, w, k);
  uint32_t st;
  __atomic_store_n(&s->watched, (uint32_t)WATCH_SPIN, __ATOMIC_SEQ_CST);
  int64_t end = conc__now_ns() + SPIN_NS;
  if (end > deadline)
    end = deadline;
  for (unsigned i = 1; lane_busy(s, seq, &st); i++) {
    if ((i & 15) == 0 && conc__now_ns() >= end)
      break;
    sched_yield();
  }
  __atomic_store_n(&s->watched, (uint32_t)WATCH_SLEEP, __ATOMIC_SEQ_CST);
  while (lane_busy(s, seq, &st)) {
    int rc = conc__wait_intr(&s->state, st, deadline, true);
    if (rc == CONC_EINTR) /* kept for the caller's own wait, which ends */
      __atomic_store_n(&conc__intr_pending, 1u, __ATOMIC_RELEASE);
    if ((rc == CONC_ETIMEDOUT || rc == CONC_EINTR) && lane_busy(s, seq, &st)) {
      /* Leaving before the end: the result thread collects the chunk. If
       * the worker read WATCH_SLEEP and skipped the eventfd, the state is
       * DONE by now and the caller (await_direct) collects it itself. */
      if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == seq)
        __atomic_store_n(&s->watched, (uint32_t)WATCH_NONE, __ATOMIC_SEQ_CST);
      return;
    }
  }
}

static void shm_watch(conc__pool_core_t *c, struct conc__pool_worker *w, int k,
                      uint32_t seq, bool on) {
  struct slot *s = lane_slot(c, w, k);
  if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != seq)
    return;
  if (!on) {
    __atomic_store_n(&s->watched, (uint32_t)WATCH_NONE, __ATOMIC_SEQ_CST);
    return;
  }
  uint32_t none = WATCH_NONE; /* a sleeping watcher stays one */
  __atomic_compare_exchange_n(&s->watched, &none, (uint32_t)WATCH_SPIN, false,
                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

const conc__pool_transport_t conc__pool_shm = {
    .name = "fork+shm",
    .open = shm_open_,
    .close = shm_close,
    .capacity = shm_capacity,
    .spawn = shm_spawn,
    .reap = shm_reap,
    .stop = shm_stop,
    .join = shm_join,
    .send = shm_send,
    .lane_state = shm_lane_state,
    .harvest = shm_harvest,
    .reset_lane = shm_reset_lane,
    .init_failed = shm_init_failed,
    .retire = shm_retire,
    .wait = shm_wait,
    .wake = shm_wake,
    .await_lane = shm_await_lane,
    .watch = shm_watch,
};
