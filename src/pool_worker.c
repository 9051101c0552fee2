/*
 * The pool's fork + shared-memory transport (conc__pool_shm), parent side
 * (pool_child.c runs in the workers; pool_shm-int.h has the layout): forked
 * worker processes, one anonymous MAP_SHARED mapping (a header page, then
 * two slots per worker process), a second one for the typed map's batches
 * (the arena), an eventfd for "a chunk is done" and every worker's pidfd.
 * There is one more process slot than workers: from the first replacement
 * on, a thread of the transport's own keeps a spare worker forked there,
 * waiting (`held`) until a replacement takes it on.
 *
 * A slot is a state word (IDLE, TASK, RUNNING, DONE), the chunk's function,
 * sizes and progress index, a packed list of the chunk's failures (index,
 * code, message), then the chunk's result lengths (byte path only),
 * arguments and results. It writes `progress` before each item, so a death
 * is attributed to the item it was running, then sets DONE and writes to
 * the eventfd, unless a caller collects the chunk itself (`watched`).
 *
 * No system call on a round trip between a caller and a worker that both
 * run: an idle worker spins (one at a time, the header's `spinner`; the
 * others sleep on their doorbell, lane 0's `bell`, at once) and dispatch
 * prefers it; a spinner pauses while its peer last ran on another CPU and
 * yields its CPU when the peer last ran on the same one. A worker that
 * finished an apply nobody watched yet holds its eventfd write back for
 * LAZY_NS, so that the caller arriving in get() collects it without a hop
 * through the result thread. Futex wakes happen only for counted sleepers.
 *
 * Locking protocol. The parent side is called with core->mu held (the
 * transport interface's rule; quiesce and the spare thread without it);
 * spare_mu guards the spare, the slots' use and the worker names' counter,
 * and is taken after core->mu. The worker side runs in the child, which
 * shares nothing but the mappings. Words both sides touch are accessed with atomics: the parent
 * publishes a chunk by storing TASK with release order after the data, the
 * worker publishes DONE the same way after its results;
 * `watched`/`state`, `sleepers`/`state` and `bell`/`asleep` form Dekker
 * pairs with sequentially consistent order, so that a side that is still
 * spinning is never sent a futex wake-up, and a held-back ring is dropped
 * only once the worker has seen a watcher (who then collects the chunk).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/time.h"
#include "pool_shm-int.h"

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

/* ---- the parent side ------------------------------------------------------ */

/* Ring a worker's doorbell; the system call only if it sleeps. */
static void ring_bell(struct slot *ctl) {
  __atomic_fetch_add(&ctl->bell, 1u, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&ctl->asleep, __ATOMIC_SEQ_CST))
    conc__wake(&ctl->bell, 1, true);
}

static int shm_open_(conc__pool_core_t *c) {
  struct shm *m = calloc(1, sizeof *m);
  if (!m)
    return CONC_ENOMEM;
  m->efd = -1;
  c->tp_state = m;
  m->stride = (sizeof(struct slot) + c->buf_size + 4095) & ~(size_t)4095;
  m->nslots = c->nworkers + 1;
  m->spare = -1;
  pthread_mutex_init(&m->spare_mu, NULL);
  pthread_cond_init(&m->spare_cv, NULL);
  m->len = HDR_BYTES + m->stride * (size_t)m->nslots * CONC__POOL_LANES;
  void *p = mmap(NULL, m->len, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  m->map = p == MAP_FAILED ? NULL : p;
  m->hdr = (struct shm_hdr *)(void *)m->map;
  m->base = m->map ? m->map + HDR_BYTES : NULL;
  /* as large as all transfer areas together, committed as it is used */
  m->arena_len = c->buf_size * (size_t)c->nworkers * CONC__POOL_LANES;
  p = mmap(NULL, m->arena_len, PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  m->arena = p == MAP_FAILED ? NULL : p;
  m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  m->pfd = calloc((size_t)c->nworkers + 1, sizeof *m->pfd);
  m->pfd_worker = calloc((size_t)c->nworkers + 1, sizeof *m->pfd_worker);
  size_t n = (size_t)m->nslots;
  m->slot_of = malloc((size_t)c->nworkers * sizeof *m->slot_of);
  m->wk = calloc(n, sizeof *m->wk);
  m->procs = calloc(n, sizeof *m->procs);
  m->names = calloc(n, sizeof *m->names);
  m->slot_used = calloc(n, sizeof *m->slot_used);
  if (!m->base || !m->arena || m->efd < 0 || !m->pfd || !m->pfd_worker ||
      !m->slot_of || !m->wk || !m->procs || !m->names || !m->slot_used)
    return m->efd < 0 ? -errno : CONC_ENOMEM;
  for (int i = 0; i < c->nworkers; i++)
    m->slot_of[i] = -1;
  return 0;
}

static void stop_spares(conc__pool_core_t *c);

static void shm_close(conc__pool_core_t *c) {
  struct shm *m = shm_of(c);
  if (!m)
    return;
  stop_spares(c);
  pthread_mutex_destroy(&m->spare_mu);
  pthread_cond_destroy(&m->spare_cv);
  free(m->slot_of);
  free(m->wk);
  free(m->procs);
  free(m->names);
  free(m->slot_used);
  if (m->map)
    munmap(m->map, m->len);
  if (m->arena)
    munmap(m->arena, m->arena_len);
  if (m->efd >= 0)
    close(m->efd);
  free(m->pfd);
  free(m->pfd_worker);
  free(m);
  c->tp_state = NULL;
}

/* Fork a worker process into `slot` (a spare: held until taken on). Any
 * thread of the pool's handler family; the slot is the caller's. */
static int fork_into(conc__pool_core_t *c, int slot, bool held,
                     unsigned number) {
  struct shm *m = shm_of(c);
  for (int k = 0; k < CONC__POOL_LANES; k++) {
    struct slot *s = slot_lane(m, slot, k);
    conc__store_release(&s->state, (uint32_t)S_IDLE); /* apply reads it */
    s->run.progress = s->count = s->quit = s->initfail = 0;
    __atomic_store_n(&s->held, (uint32_t)(held && k == 0), __ATOMIC_RELEASE);
    /* read without core->mu by callers spinning on a lane */
    __atomic_store_n(&s->asleep, 0u, __ATOMIC_RELAXED);
    __atomic_store_n(&s->cpu, -1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->sender_cpu, -1, __ATOMIC_RELAXED);
  }
  snprintf(m->names[slot], sizeof m->names[slot], "%s-%u", c->worker_prefix,
           number);
  m->wk[slot] = (struct wk){c, slot};
  conc_process_t *p = &m->procs[slot];
  int rc = conc_process_init(p, conc__pool_shm_worker_main, &m->wk[slot],
                             &(conc_process_opts_t){.name = m->names[slot],
                                                    .daemon = CONC_DAEMON_YES,
                                                    .die_with_parent = true});
  if (rc == 0) {
    rc = conc_process_start(p);
    if (rc)
      conc_process_destroy(p);
  }
  return rc;
}

static void bury_slot(struct shm *m, int slot, int *code) {
  conc_process_t *p = &m->procs[slot];
  conc_process_join(p, CONC_FOREVER);
  if (code)
    conc_process_exitcode(p, code);
  conc_process_close(p);
  conc_process_destroy(p);
  pthread_mutex_lock(&m->spare_mu);
  m->slot_used[slot] = false;
  pthread_mutex_unlock(&m->spare_mu);
}

static int free_slot(struct shm *m) { /* spare_mu held */
  for (int i = 0; i < m->nslots; i++)
    if (!m->slot_used[i])
      return i;
  return -1;
}

/* The spare thread: keep one spare forked while the pool runs. */
static void *forker_main(void *arg) {
  conc__pool_core_t *c = arg;
  struct shm *m = shm_of(c);
  pthread_mutex_lock(&m->spare_mu);
  while (!m->quit) {
    int slot = m->spare < 0 ? free_slot(m) : -1;
    if (slot < 0) {
      pthread_cond_wait(&m->spare_cv, &m->spare_mu);
      continue;
    }
    m->slot_used[slot] = true;
    unsigned number = ++c->name_counter;
    pthread_mutex_unlock(&m->spare_mu);
    int rc = fork_into(c, slot, true, number);
    pthread_mutex_lock(&m->spare_mu);
    if (rc == 0)
      m->spare = slot;
    else /* EAGAIN, ENOMEM: a replacement forks as before */
      m->slot_used[slot] = false;
    if (rc)
      pthread_cond_wait(&m->spare_cv, &m->spare_mu);
  }
  int slot = m->spare;
  m->spare = -1;
  pthread_mutex_unlock(&m->spare_mu);
  if (slot >= 0) { /* never hired: it dies with this thread anyway */
    conc_process_kill(&m->procs[slot]);
    bury_slot(m, slot, NULL);
  }
  return NULL;
}

static void start_forker(conc__pool_core_t *c) { /* spare_mu held */
  struct shm *m = shm_of(c);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* as the handler thread */
  m->forker_started = pthread_create(&m->forker, NULL, forker_main, c) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void stop_spares(conc__pool_core_t *c) {
  struct shm *m = shm_of(c);
  pthread_mutex_lock(&m->spare_mu);
  bool started = m->forker_started;
  m->quit = true;
  m->forker_started = false;
  pthread_cond_signal(&m->spare_cv);
  pthread_mutex_unlock(&m->spare_mu);
  if (started)
    pthread_join(m->forker, NULL);
}

/* Take the spare on, if one is ready and alive: a hand-over, no fork. */
static bool hire_spare(conc__pool_core_t *c, struct conc__pool_worker *w) {
  struct shm *m = shm_of(c);
  pthread_mutex_lock(&m->spare_mu);
  int slot = m->spare;
  m->spare = -1;
  pthread_cond_signal(&m->spare_cv); /* the thread forks the next one */
  pthread_mutex_unlock(&m->spare_mu);
  if (slot < 0)
    return false;
  conc_process_t *p = &m->procs[slot];
  struct pollfd pf = {.fd = conc_process_sentinel(p), .events = POLLIN};
  if (poll(&pf, 1, 0) != 0) { /* it died waiting (killed from outside) */
    bury_slot(m, slot, NULL);
    return false;
  }
  __atomic_store_n(&m->slot_of[w->index], slot, __ATOMIC_RELAXED);
  w->fd = pf.fd;
  w->pid = conc_process_pid(p);
  snprintf(w->name, sizeof w->name, "%s", m->names[slot]);
  struct slot *ctl = slot_lane(m, slot, 0);
  __atomic_store_n(&ctl->held, 0u, __ATOMIC_SEQ_CST);
  ring_bell(ctl);
  return true;
}

static int shm_spawn(conc__pool_core_t *c, struct conc__pool_worker *w) {
  struct shm *m = shm_of(c);
  bool replacement = slot_of(m, w) >= 0;
  if (replacement && hire_spare(c, w))
    return 0;
  pthread_mutex_lock(&m->spare_mu);
  int slot = free_slot(m);
  if (slot >= 0)
    m->slot_used[slot] = true;
  unsigned number = ++c->name_counter;
  if (replacement && !m->forker_started && !m->quit)
    start_forker(c); /* from the first replacement on */
  pthread_mutex_unlock(&m->spare_mu);
  if (slot < 0)
    return CONC_EAGAIN;
  int rc = fork_into(c, slot, false, number);
  if (rc) {
    pthread_mutex_lock(&m->spare_mu);
    m->slot_used[slot] = false;
    pthread_mutex_unlock(&m->spare_mu);
    return rc;
  }
  __atomic_store_n(&m->slot_of[w->index], slot, __ATOMIC_RELAXED);
  conc_process_t *p = &m->procs[slot];
  w->fd = conc_process_sentinel(p);
  w->pid = conc_process_pid(p);
  snprintf(w->name, sizeof w->name, "%s", m->names[slot]);
  return 0;
}

static int shm_reap(conc__pool_core_t *c, struct conc__pool_worker *w) {
  struct shm *m = shm_of(c);
  int slot = slot_of(m, w), code = CONC_EXITCODE_NONE;
  drop_spin(m->hdr, (uint32_t)slot + 1); /* died spinning */
  bury_slot(m, slot, &code);
  return code;
}

static void shm_stop(conc__pool_core_t *c, struct conc__pool_worker *w,
                     bool force) {
  struct shm *m = shm_of(c);
  conc_process_t *p = &m->procs[slot_of(m, w)];
  if (force)
    conc_process_kill(p);
  else
    conc_process_terminate(p);
}

static int shm_join(conc__pool_core_t *c, struct conc__pool_worker *w,
                    double timeout) {
  struct shm *m = shm_of(c);
  conc_process_t *p = &m->procs[slot_of(m, w)];
  return conc_process_join(p, timeout) == CONC_ETIMEDOUT ? CONC_ETIMEDOUT : 0;
}

/* Hand the filled slot to the worker. */
static void publish_task(conc__pool_core_t *c, struct conc__pool_worker *w,
                         struct slot *s) {
  s->run.progress = s->run.gcount = 0;
  s->nfail = s->fail_used = 0;
  __atomic_store_n(&lane_slot(c, w, 0)->sender_cpu, my_cpu(), __ATOMIC_RELAXED);
  __atomic_store_n(&s->watched, (uint32_t)WATCH_NONE, __ATOMIC_RELAXED);
  __atomic_store_n(&s->seq, ++w->seq, __ATOMIC_RELEASE);
  conc__store_release(&s->state, (uint32_t)S_TASK);
  ring_bell(lane_slot(c, w, 0));
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
  s->batch = 0;
  /* an apply nobody waits on through a callback is likely collected by
   * its caller: the worker may hold back the result thread's wake-up */
  s->lazy = j->kind == CONC__K_APPLY && !j->callback && !j->error_callback;
  publish_task(c, w, s);
}

static int shm_lane_state(conc__pool_core_t *c, struct conc__pool_worker *w,
                          int k, uint32_t *progress) {
  struct slot *s = lane_slot(c, w, k);
  /* seq_cst: the other half of the watched/state Dekker pair */
  uint32_t st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
  uint32_t p = conc__load_acquire(&s->run.progress);
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
  if (s->batch) { /* the results stay in the arena until the batch ends */
    take_failures(w, s, j, first, upto);
    return;
  }
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
  __atomic_store_n(&s->state, (uint32_t)S_IDLE, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&s->sleepers, __ATOMIC_SEQ_CST))
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

static void shm_wake(conc__pool_core_t *c) {
  conc__pool_shm_ring(shm_of(c)->efd);
}

static bool lane_busy(struct slot *s, uint32_t seq, uint32_t *st) {
  *st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
  return (*st == S_TASK || *st == S_RUNNING) &&
         __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == seq;
}

/* Spin while the lane runs the chunk (a pause while the worker runs on
 * another CPU), then sleep on its state word, counted in `sleepers`: the
 * worker makes the system call only then. */
static void shm_await_lane(conc__pool_core_t *c, struct conc__pool_worker *w,
                           int k, uint32_t seq, int64_t deadline) {
  struct slot *s = lane_slot(c, w, k), *ctl = lane_slot(c, w, 0);
  uint32_t st;
  __atomic_store_n(&s->watched, (uint32_t)WATCH_SPIN, __ATOMIC_SEQ_CST);
  int64_t end = conc__now_ns() + SPIN_NS;
  if (end > deadline)
    end = deadline;
  int32_t cpu = my_cpu();
  for (unsigned i = 1; lane_busy(s, seq, &st); i++) {
    if ((i & 31) == 0) {
      if (conc__now_ns() >= end)
        break;
      cpu = my_cpu();
    }
    spin_step(&ctl->cpu, cpu);
  }
  __atomic_store_n(&s->watched, (uint32_t)WATCH_SLEEP, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&s->sleepers, 1u, __ATOMIC_SEQ_CST);
  while (lane_busy(s, seq, &st)) {
    int rc = conc__wait_intr(&s->state, st, deadline, true);
    if (rc == CONC_EINTR) /* kept for the caller's own wait, which ends */
      __atomic_store_n(&conc__intr_pending, 1u, __ATOMIC_RELEASE);
    if ((rc == CONC_ETIMEDOUT || rc == CONC_EINTR) && lane_busy(s, seq, &st)) {
      /* Leaving before the end: the result thread collects the chunk. If
       * the worker read WATCH_SLEEP and skipped the eventfd, the state is
       * DONE by now and the caller (unwatch_job) collects it itself. */
      if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == seq)
        __atomic_store_n(&s->watched, (uint32_t)WATCH_NONE, __ATOMIC_SEQ_CST);
      break;
    }
  }
  __atomic_fetch_sub(&s->sleepers, 1u, __ATOMIC_SEQ_CST);
}

static bool shm_awake(conc__pool_core_t *c, struct conc__pool_worker *w) {
  return !__atomic_load_n(&lane_slot(c, w, 0)->asleep, __ATOMIC_RELAXED);
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

/* ---- the typed map's shared batch (parent side) ------------------------ */

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

static size_t shm_batch_capacity(conc__pool_core_t *c,
                                 const conc_async_result_t *j) {
  struct shm *m = shm_of(c);
  if (j->kind != CONC__K_TYPED || m->arena_len < 256)
    return 0;
  size_t per = j->arg_size + j->result_size + 1; /* + a grain flag */
  size_t k = (m->arena_len - 192) / per;
  return k > UINT32_MAX ? UINT32_MAX : k;
}

static void shm_batch_open(conc__pool_core_t *c, conc_async_result_t *j,
                           size_t start, size_t count, size_t grain) {
  struct shm *m = shm_of(c);
  struct shm_hdr *h = m->hdr;
  size_t as = j->arg_size, rs = j->result_size;
  if (count && as)
    memcpy(m->arena, j->in + start * as, count * as);
  h->fn = j->fn;
  h->arg_size = as;
  h->result_size = rs;
  h->count = count;
  h->grain = grain ? grain : 1;
  h->results = align64(count * as);
  h->flags = align64(h->results + count * rs);
  memset(m->arena + h->flags, 0, count / h->grain + 1);
  /* published to the members by their slot's TASK (release) */
  __atomic_store_n(&h->next, (uint64_t)0, __ATOMIC_RELAXED);
}

static void shm_batch_join(conc__pool_core_t *c, struct conc__pool_worker *w,
                           int k) {
  struct slot *s = lane_slot(c, w, k);
  s->batch = 1;
  s->lazy = 0;
  s->count = 0;
  publish_task(c, w, s);
}

static size_t shm_batch_claimed(conc__pool_core_t *c) {
  struct shm_hdr *h = shm_of(c)->hdr;
  uint64_t next = __atomic_load_n(&h->next, __ATOMIC_ACQUIRE);
  return (size_t)(next < h->count ? next : h->count);
}

static void shm_batch_member(conc__pool_core_t *c, struct conc__pool_worker *w,
                             int k, size_t *gstart, size_t *gcount,
                             uint32_t *progress) {
  struct slot *s = lane_slot(c, w, k);
  uint32_t n = conc__load_acquire(&s->run.gcount);
  uint32_t p = conc__load_acquire(&s->run.progress);
  *gstart = (size_t)s->run.gstart;
  *gcount = n;
  *progress = p < n ? p : n;
}

static bool shm_batch_grain_done(conc__pool_core_t *c, size_t i, bool mark) {
  struct shm *m = shm_of(c);
  uint8_t *f = m->arena + m->hdr->flags + i / m->hdr->grain;
  if (mark)
    __atomic_store_n(f, (uint8_t)1, __ATOMIC_RELAXED);
  return __atomic_load_n(f, __ATOMIC_ACQUIRE) != 0;
}

static void shm_batch_copy_out(conc__pool_core_t *c, conc_async_result_t *j,
                               size_t batch_start, size_t from, size_t count) {
  struct shm *m = shm_of(c);
  size_t rs = j->result_size;
  if (count && rs)
    memcpy(j->out + (batch_start + from) * rs,
           m->arena + m->hdr->results + from * rs, count * rs);
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
    .awake = shm_awake,
    .quiesce = stop_spares,
    .batch_capacity = shm_batch_capacity,
    .batch_open = shm_batch_open,
    .batch_join = shm_batch_join,
    .batch_claimed = shm_batch_claimed,
    .batch_member = shm_batch_member,
    .batch_grain_done = shm_batch_grain_done,
    .batch_copy_out = shm_batch_copy_out,
};
