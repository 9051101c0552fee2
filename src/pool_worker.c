/*
 * The pool's fork + shared-memory transport (conc__pool_shm): forked
 * worker processes, one anonymous MAP_SHARED mapping (a header page, then
 * two slots per worker), an eventfd for "a chunk is done" and every
 * worker's pidfd.
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
 * transport interface's rule); the worker side runs in the child, which
 * shares nothing but the mapping. Words both sides touch are accessed with
 * atomics: the parent publishes a chunk by storing TASK with release order
 * after the data, the worker publishes DONE the same way after its results;
 * `watched`/`state`, `sleepers`/`state` and `bell`/`asleep` form Dekker
 * pairs with sequentially consistent order, so that a side that is still
 * spinning is never sent a futex wake-up, and a held-back ring is dropped
 * only once the worker has seen a watcher (who then collects the chunk).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
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
/* How long a worker that finished an apply nobody watched yet waits for
 * its caller to come for it before it wakes the result thread: the caller
 * of apply or get arrives within a microsecond or two, and a hop through
 * the result thread costs several. */
#ifndef CONC__POOL_LAZY_NS
#define CONC__POOL_LAZY_NS 5000
#endif
#define LAZY_NS CONC__POOL_LAZY_NS

struct slot {
  uint32_t state;
  uint32_t batch; /* a member of the shared batch, not a chunk */
  uint32_t count;
  uint32_t seq;      /* dispatch order among the worker's lanes */
  uint32_t bell;     /* lane 0 only: bumped on every dispatch and on quit */
  uint32_t quit;     /* lane 0 only: exit once idle */
  uint32_t watched;  /* WATCH_*: a caller waits on `state` (direct path) */
  uint32_t asleep;   /* lane 0 only: the worker sleeps on `bell` */
  uint32_t initfail; /* lane 0 only: the initializer failed (message: fails) */
  uint32_t held;     /* lane 0 only: a spare, waiting to be taken on */
  uint32_t typed;
  uint32_t sleepers;  /* callers asleep on `state`: DONE and IDLE wake them */
  uint32_t lazy;      /* the worker may wait LAZY_NS before ringing */
  int32_t cpu;        /* lane 0 only: the CPU the worker last ran on */
  int32_t sender_cpu; /* lane 0 only: the CPU of the last dispatch */
  uint32_t nfail, fail_used;
  conc_pool_func_t fn;
  uint64_t arg_size, result_size;
  /* Written per item by the worker, read by the parent only after the
   * chunk ended: a line of its own, away from the words callers poll. */
  struct {
    uint32_t progress;
    uint32_t gcount; /* batch member: its grain's items (0: none) */
    uint64_t gstart; /* ... and the grain's first item */
  } __attribute__((aligned(64))) run;
  unsigned char fails[FAIL_BYTES];
} __attribute__((aligned(64)));

/* One failure record in slot->fails; the message follows (len bytes). */
struct fail_rec {
  uint32_t index;
  int32_t code;
  uint32_t len;
};

/* The mapping's first page: pool-wide words the workers share. */
struct shm_hdr {
  uint32_t spinner; /* 1 + index of the one idle worker that spins, or 0 */
  /* The open batch (written under core->mu before any member joins): */
  conc_pool_func_t fn;
  uint64_t arg_size, result_size, count, grain;
  uint64_t results, flags; /* offsets in the arena: results, grain flags */
  uint64_t next __attribute__((aligned(64))); /* the claim index */
};

struct shm {
  size_t stride, len;
  unsigned char *map; /* the header page, then the slots */
  struct shm_hdr *hdr;
  unsigned char *base;
  unsigned char *arena; /* the typed map's batches (own mapping) */
  size_t arena_len;
  /* Worker processes live in slots (each LANES slot structs); one more
   * slot than workers holds the spare. slot_of is read without core->mu
   * (callers awaiting a lane), hence atomic. */
  int nslots;
  int *slot_of;          /* worker index -> slot (-1: never started) */
  struct wk *wk;         /* per slot: what its process is given */
  conc_process_t *procs; /* per slot */
  char (*names)[64];     /* per slot */
  /* The spare (spare_mu): once the pool has replaced a worker, a thread of
   * its own keeps one more worker forked and waiting, so that the next
   * replacement is a hand-over, not a fork on the result thread. */
  pthread_mutex_t spare_mu;
  pthread_cond_t spare_cv;
  bool *slot_used; /* by a worker or the spare */
  int spare;       /* the ready spare's slot, or -1 */
  bool quit, forker_started;
  pthread_t forker;
  int efd;
  struct pollfd *pfd;
  struct conc__pool_worker **pfd_worker;
};

static struct shm *shm_of(conc__pool_core_t *c) { return c->tp_state; }

/* A worker process as it sees itself: its pool and its slot. */
struct wk {
  conc__pool_core_t *c;
  int slot;
};

#define HDR_BYTES 4096 /* struct shm_hdr, alone on its page */

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

static struct slot *slot_lane(struct shm *m, int slot, int k) {
  return slot_at(m, slot * CONC__POOL_LANES + k);
}

static int slot_of(struct shm *m, const struct conc__pool_worker *w) {
  return __atomic_load_n(&m->slot_of[w->index], __ATOMIC_RELAXED);
}

static struct slot *lane_slot(conc__pool_core_t *c,
                              const struct conc__pool_worker *w, int k) {
  struct shm *m = shm_of(c);
  return slot_lane(m, slot_of(m, w), k);
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

/* What a task needs, read once per chunk out of the shared slot. */
struct task {
  conc_pool_func_t fn;
  size_t as, rs;
};

/* A task that did not return 0 with a result that fits: its code, with
 * the message it raised (or ours). */
static __attribute__((noinline)) int item_failed(int rc, size_t len, size_t rs,
                                                 char **msg) {
  char buf[CONC_POOL_MESSAGE_MAX];
  if (rc < 0) {
    *msg = conc__raise_take(rc);
    return rc;
  }
  if (rc > 0)
    snprintf(buf, sizeof buf, "task returned %d", rc);
  else
    snprintf(buf, sizeof buf,
             "result of %zu bytes exceeds the declared capacity of %zu bytes",
             len, rs);
  *msg = strdup(buf);
  return rc > 0 ? CONC_EFAILED : CONC_EMSGSIZE;
}

/* Run one item; its code, with the message the task raised (or ours). */
static inline int run_item(const struct task *t, const unsigned char *arg,
                           unsigned char *res, size_t *len, char **msg) {
  conc__raise_clear();
  *len = t->rs;
  *msg = NULL;
  int rc = t->fn(arg, t->as, res, t->rs, len);
  if (__builtin_expect(rc == 0 && *len <= t->rs, 1))
    return 0;
  return item_failed(rc, *len, t->rs, msg);
}

static void run_chunk(struct slot *s) {
  uint32_t count = s->count;
  size_t as = (size_t)s->arg_size, rs = (size_t)s->result_size;
  bool typed = s->typed;
  struct layout l = layout_of(count, as, rs, typed);
  unsigned char *d = slot_data(s);
  uint64_t *lens = (uint64_t *)(void *)(d + l.lens);
  struct task t = {s->fn, as, rs};
  s->nfail = s->fail_used = 0;
  for (uint32_t i = 0; i < count; i++) {
    conc__store_release(&s->run.progress, i);
    size_t len;
    char *msg;
    int rc =
        run_item(&t, d + l.args + i * as, d + l.results + i * rs, &len, &msg);
    if (!typed)
      lens[i] = rc == 0 ? len : 0;
    if (rc == 0)
      continue;
    bool more = add_failure(s, i, rc, msg);
    free(msg);
    if (!more && i + 1 < count) { /* the rest runs in a later chunk */
      conc__store_release(&s->run.progress, i + 1);
      return;
    }
  }
  conc__store_release(&s->run.progress, count);
}

/* A batch member: claim grains of the shared batch and run them in place
 * until none is left. Before a grain's first item the worker records it
 * (gstart, gcount) and marks its flag once all its items ran, so a death
 * anywhere is attributed: to the item at `progress`, or (claimed, never
 * recorded) to no item, the parent then running the grain again. */
static void run_batch(conc__pool_core_t *c, struct slot *s) {
  struct shm *m = shm_of(c);
  struct shm_hdr *h = m->hdr;
  size_t as = (size_t)h->arg_size, rs = (size_t)h->result_size;
  uint64_t n = h->count, g = h->grain;
  unsigned char *in = m->arena, *out = m->arena + h->results;
  uint8_t *flags = m->arena + h->flags;
  struct task t = {h->fn, as, rs};
  s->nfail = s->fail_used = 0;
  for (;;) {
    uint64_t first = __atomic_fetch_add(&h->next, g, __ATOMIC_RELAXED);
    if (first >= n)
      break;
    uint32_t cnt = (uint32_t)(n - first < g ? n - first : g);
    s->run.gstart = first;
    conc__store_release(&s->run.progress, 0u);
    conc__store_release(&s->run.gcount, cnt);
    for (uint32_t i = 0; i < cnt; i++) {
      conc__store_release(&s->run.progress, i);
      size_t len;
      char *msg;
      uint64_t x = first + i;
      int rc = run_item(&t, in + x * as, out + x * rs, &len, &msg);
      if (rc == 0)
        continue;
      bool more = add_failure(s, (uint32_t)x, rc, msg);
      free(msg);
      if (!more && i + 1 < cnt) { /* the parent runs the rest again */
        conc__store_release(&s->run.progress, i + 1);
        return;
      }
    }
    conc__store_release(&s->run.progress, cnt);
    __atomic_store_n(&flags[first / g], (uint8_t)1, __ATOMIC_RELEASE);
    conc__store_release(&s->run.gcount, 0u);
    if (FAIL_BYTES - s->fail_used <
        sizeof(struct fail_rec) + CONC_POOL_MESSAGE_MAX)
      break;
  }
  conc__store_release(&s->run.gcount, 0u);
}

static void ring(int efd) {
  uint64_t one = 1;
  ssize_t r;
  do
    r = write(efd, &one, sizeof one);
  while (r < 0 && errno == EINTR);
}

static int32_t my_cpu(void) { return (int32_t)sched_getcpu(); }

/* One step of a wait for another process to store a word: a pause while
 * that process may run on another CPU, or this CPU handed over when it
 * last ran on ours (spinning there would only keep it waiting). */
static void spin_step(const int32_t *peer_cpu, int32_t cpu) {
  if (cpu >= 0 && __atomic_load_n(peer_cpu, __ATOMIC_RELAXED) == cpu)
    sched_yield();
  else
    conc__cpu_relax();
}

/* The next chunk staged for this worker (oldest first), or NULL. */
static struct slot *next_chunk(conc__pool_core_t *c, const struct wk *me) {
  struct slot *next = NULL;
  for (int k = 0; k < CONC__POOL_LANES; k++) {
    struct slot *s = slot_lane(shm_of(c), me->slot, k);
    if (conc__load_acquire(&s->state) == S_TASK &&
        (!next || (int32_t)(s->seq - next->seq) < 0))
      next = s;
  }
  return next;
}

/* A finished apply whose eventfd ring the worker holds back (LAZY_NS). */
struct pending {
  struct slot *s;
  uint32_t seq;
  int64_t at;
};

/* Nobody has come for it: still DONE, same chunk, unwatched. The reads
 * pair with the watcher's (watched, then state), as at DONE. */
static bool unclaimed(const struct pending *p) {
  return __atomic_load_n(&p->s->state, __ATOMIC_SEQ_CST) == S_DONE &&
         __atomic_load_n(&p->s->seq, __ATOMIC_ACQUIRE) == p->seq &&
         __atomic_load_n(&p->s->watched, __ATOMIC_SEQ_CST) == WATCH_NONE;
}

/* Ring for the held-back chunk if nobody came for it. */
static void flush(conc__pool_core_t *c, struct pending *p) {
  if (p->s && unclaimed(p))
    ring(shm_of(c)->efd);
  p->s = NULL;
}

/* The one idle worker allowed to spin: others sleep at once, so that idle
 * spinners never take the CPUs the caller and the busy workers need. */
static bool take_spin(struct shm_hdr *h, uint32_t me) {
  uint32_t none = 0;
  return __atomic_load_n(&h->spinner, __ATOMIC_RELAXED) == me ||
         __atomic_compare_exchange_n(&h->spinner, &none, me, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

static void drop_spin(struct shm_hdr *h, uint32_t me) {
  __atomic_compare_exchange_n(&h->spinner, &me, 0u, false, __ATOMIC_RELEASE,
                              __ATOMIC_RELAXED);
}

/* Wait for the doorbell to change: the spinning worker looks for SPIN_NS
 * first, any worker holding back a ring looks until it is settled; then
 * sleep on the doorbell (saying so first: a sender wakes only a worker
 * that sleeps). */
static void await_bell(conc__pool_core_t *c, const struct wk *self,
                       struct slot *ctl, uint32_t bell, struct pending *pend) {
  struct shm_hdr *h = shm_of(c)->hdr;
  uint32_t me = (uint32_t)self->slot + 1;
  bool spinner = take_spin(h, me);
  int64_t end = conc__now_ns() + (spinner ? SPIN_NS : 0);
  int32_t cpu = -1;
  for (unsigned i = 0; conc__load_acquire(&ctl->bell) == bell; i++) {
    if (pend->s && !unclaimed(pend))
      pend->s = NULL;
    if ((i & 31) == 0) {
      int64_t now = conc__now_ns();
      if (pend->s && now - pend->at >= LAZY_NS)
        flush(c, pend);
      if (!pend->s && now >= end)
        goto sleep;
      cpu = my_cpu();
      __atomic_store_n(&ctl->cpu, cpu, __ATOMIC_RELAXED);
    }
    spin_step(&ctl->sender_cpu, cpu);
  }
  flush(c, pend);
  drop_spin(h, me);
  return;
sleep:
  drop_spin(h, me);
  __atomic_store_n(&ctl->asleep, 1u, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&ctl->bell, __ATOMIC_SEQ_CST) == bell)
    conc__wait(&ctl->bell, bell, CONC_DEADLINE_NEVER, true);
  __atomic_store_n(&ctl->asleep, 0u, __ATOMIC_RELAXED);
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

/* The chunk is DONE: wake its sleeping caller, and tell the result thread
 * unless a caller collects it (watched) or may soon (lazy: held back). */
static void publish_done(conc__pool_core_t *c, struct slot *s,
                         struct pending *pend) {
  /* Dekker pairs: a watcher or sleeper stores its word, then reads
   * `state`; we store `state`, then read theirs. */
  __atomic_store_n(&s->state, (uint32_t)S_DONE, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&s->sleepers, __ATOMIC_SEQ_CST))
    conc__wake(&s->state, CONC__WAKE_ALL, true);
  if (__atomic_load_n(&s->watched, __ATOMIC_SEQ_CST) != WATCH_NONE)
    return;
  if (s->lazy)
    *pend = (struct pending){s, s->seq, conc__now_ns()};
  else
    ring(shm_of(c)->efd);
}

/* A spare sleeps until it is taken on (or killed). */
static void await_hire(struct slot *ctl) {
  while (conc__load_acquire(&ctl->held)) {
    uint32_t bell = conc__load_acquire(&ctl->bell);
    __atomic_store_n(&ctl->asleep, 1u, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&ctl->held, __ATOMIC_SEQ_CST) &&
        __atomic_load_n(&ctl->bell, __ATOMIC_SEQ_CST) == bell)
      conc__wait(&ctl->bell, bell, CONC_DEADLINE_NEVER, true);
    __atomic_store_n(&ctl->asleep, 0u, __ATOMIC_RELAXED);
  }
}

static int worker_main(void *arg, void **result) {
  (void)result;
  const struct wk *me = arg;
  conc__pool_core_t *c = me->c;
  struct slot *ctl = slot_lane(shm_of(c), me->slot, 0);
  /* The thread that forked us blocks every signal; terminate() relies on
   * SIGTERM's default action, whatever the parent installed. */
  signal(SIGTERM, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  await_hire(ctl); /* the initializer runs once it is a worker */
  if (c->initializer)
    run_initializer(c, ctl);
  struct pending pend = {0};
  for (;;) {
    uint32_t bell = conc__load_acquire(&ctl->bell);
    if (conc__load_acquire(&ctl->quit)) {
      flush(c, &pend);
      conc_process_exit(0);
    }
    struct slot *next = next_chunk(c, me);
    if (!next) {
      await_bell(c, me, ctl, bell, &pend);
      continue;
    }
    flush(c, &pend); /* busy from now on: no time to wait for a caller */
    __atomic_store_n(&ctl->cpu, my_cpu(), __ATOMIC_RELAXED);
    conc__store_release(&next->state, (uint32_t)S_RUNNING);
    if (next->batch)
      run_batch(c, next);
    else
      run_chunk(next);
    publish_done(c, next, &pend);
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
  /* one fork at a time among the pools' threads: conc_process_init and
   * _start refresh the process module's record of this process unlocked */
  static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&fork_mu);
  int rc = conc_process_init(p, worker_main, &m->wk[slot],
                             &(conc_process_opts_t){.name = m->names[slot],
                                                    .daemon = CONC_DAEMON_YES,
                                                    .die_with_parent = true});
  if (rc == 0) {
    rc = conc_process_start(p);
    if (rc)
      conc_process_destroy(p);
  }
  pthread_mutex_unlock(&fork_mu);
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

static void shm_wake(conc__pool_core_t *c) { ring(shm_of(c)->efd); }

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
