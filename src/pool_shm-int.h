/*
 * The fork + shared-memory transport's layout, shared by its two sides:
 * pool_worker.c (the parent: slots, spawning, the spare, batches) and
 * pool_child.c (the worker process). See pool_worker.c for the protocol.
 *
 * Locking protocol: as pool_worker.c states; this header only describes
 * the shared mapping and the parent's bookkeeping.
 */
#ifndef CONC_POOL_SHM_INT_H
#define CONC_POOL_SHM_INT_H

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "conc/process.h"
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

static inline struct shm *shm_of(conc__pool_core_t *c) { return c->tp_state; }

/* A worker process as it sees itself: its pool and its slot. */
struct wk {
  conc__pool_core_t *c;
  int slot;
};

#define HDR_BYTES 4096 /* struct shm_hdr, alone on its page */

struct layout {
  size_t lens, args, results, total;
};

static inline size_t align16(size_t x) { return (x + 15) & ~(size_t)15; }

static inline struct layout layout_of(size_t count, size_t as, size_t rs,
                                      bool typed) {
  struct layout l;
  l.lens = 0;
  l.args = align16(typed ? 0 : count * sizeof(uint64_t));
  l.results = align16(l.args + count * as);
  l.total = l.results + count * rs;
  return l;
}

static inline struct slot *slot_at(struct shm *m, int i) {
  return (struct slot *)(void *)(m->base + (size_t)i * m->stride);
}

static inline struct slot *slot_lane(struct shm *m, int slot, int k) {
  return slot_at(m, slot * CONC__POOL_LANES + k);
}

static inline int slot_of(struct shm *m, const struct conc__pool_worker *w) {
  return __atomic_load_n(&m->slot_of[w->index], __ATOMIC_RELAXED);
}

static inline struct slot *lane_slot(conc__pool_core_t *c,
                                     const struct conc__pool_worker *w, int k) {
  struct shm *m = shm_of(c);
  return slot_lane(m, slot_of(m, w), k);
}

static inline unsigned char *slot_data(struct slot *s) {
  return (unsigned char *)(s + 1);
}

static inline int32_t my_cpu(void) { return (int32_t)sched_getcpu(); }

static inline void drop_spin(struct shm_hdr *h, uint32_t me) {
  __atomic_compare_exchange_n(&h->spinner, &me, 0u, false, __ATOMIC_RELEASE,
                              __ATOMIC_RELAXED);
}

/* One step of a wait for another process to store a word: a pause while
 * that process may run on another CPU, or this CPU handed over when it
 * last ran on ours (spinning there would only keep it waiting). */
static inline void spin_step(const int32_t *peer_cpu, int32_t cpu) {
  if (cpu >= 0 && __atomic_load_n(peer_cpu, __ATOMIC_RELAXED) == cpu)
    sched_yield();
  else
    conc__cpu_relax();
}

/* pool_child.c: the worker process's main, and the eventfd ring. */
int conc__pool_shm_worker_main(void *arg, void **result);
void conc__pool_shm_ring(int efd);

#endif
