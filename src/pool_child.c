/*
 * The worker process's side of the pool's fork + shared-memory transport
 * (pool_worker.c has the parent's and the protocol): a worker waits to be
 * taken on (a spare), runs its initializer, then runs the chunks staged in
 * its slots and the grains it claims of a typed map's batch, spinning
 * briefly between them before it sleeps on its doorbell.
 *
 * Locking protocol: none of the parent's locks exist here; the process
 * shares only the mapping with its parent and touches its words with the
 * atomics and orders pool_worker.c describes.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/time.h"
#include "error-int.h"
#include "pool_shm-int.h"

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

void conc__pool_shm_ring(int efd) {
  uint64_t one = 1;
  ssize_t r;
  do
    r = write(efd, &one, sizeof one);
  while (r < 0 && errno == EINTR);
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
    conc__pool_shm_ring(shm_of(c)->efd);
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
    conc__pool_shm_ring(shm_of(c)->efd);
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

int conc__pool_shm_worker_main(void *arg, void **result) {
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
