/*
 * Pool submission and dispatch: apply, apply_async, map (byte and typed
 * paths), starmap, map_async, imap; the queue of jobs with undispatched
 * items and the hand-over of chunks to workers through the transport.
 *
 * Locking protocol: see pool-int.h. The queue, the lanes and `busy` are
 * guarded by core->mu; a submitter hands work straight to idle workers
 * under it (one hop less than going through the result thread). Outcomes
 * are written under job->mu, taken inside core->mu.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "platform-int.h"
#include "pool-int.h"
#include "sync-int.h"

/* Chunks per worker of a typed map sent as chunks: every chunk is in
 * flight at once. */
#ifndef CONC__POOL_TYPED_CHUNKS
#define CONC__POOL_TYPED_CHUNKS 2
#endif
/* Grains per worker of a typed map run as a shared batch: small enough
 * that a worker slowed down (or descheduled) leaves at most one grain for
 * the others to wait on, large enough that claiming costs nothing. */
#ifndef CONC__POOL_TYPED_GRAINS
#define CONC__POOL_TYPED_GRAINS 8
#endif

/* ---- the queue (core->mu held) ------------------------------------------ */

static void queue_push(conc__pool_core_t *c, conc_async_result_t *j,
                       bool front) {
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

void conc__pool_queue_pop(conc__pool_core_t *c) {
  conc_async_result_t *j = c->qhead;
  c->qhead = j->qnext;
  if (!c->qhead)
    c->qtail = NULL;
  j->queued = false;
  j->qnext = NULL;
}

conc_async_result_t *conc__pool_next_job(conc__pool_core_t *c) {
  while (c->qhead && !conc__pool_job_has_work(c->qhead))
    conc__pool_queue_pop(c);
  return c->qhead;
}

/* Fail [start, start+count) of j, unsent, with `code`; job->mu held. */
static void fail_unsent(conc_async_result_t *j, size_t start, size_t count,
                        int code, const char *msg, conc_async_result_t **list) {
  if (count == 0)
    return;
  /* one detail record for the range: the others share its message */
  conc__pool_job_fail_item(j, start, code, 0, 0, 0, msg);
  for (size_t i = start + 1; i < start + count; i++) {
    j->codes[i] = code;
    if (j->lens)
      j->lens[i] = 0;
  }
  if (j->result_size && count > 1)
    memset(j->out + (start + 1) * j->result_size, 0,
           (count - 1) * j->result_size);
  conc__pool_job_took(j, start, count, list);
}

/* Run items [start, start+count) of `j` again (they were handed to a worker
 * that died or stopped before running them). Without memory to remember
 * them they fail with CONC_ENOMEM rather than being lost. */
void conc__pool_requeue(conc__pool_core_t *c, conc_async_result_t *j,
                        size_t start, size_t count,
                        conc_async_result_t **list) {
  if (j->complete || count == 0)
    return;
  if (j->nretry == j->capretry) {
    size_t cap = j->capretry ? 2 * j->capretry : 4;
    struct conc__pool_range *r = realloc(j->retry, cap * sizeof *r);
    if (!r) {
      pthread_mutex_lock(&j->mu);
      fail_unsent(j, start, count, CONC_ENOMEM, "out of memory re-queueing",
                  list);
      pthread_mutex_unlock(&j->mu);
      return;
    }
    j->retry = r;
    j->capretry = cap;
  }
  j->retry[j->nretry++] = (struct conc__pool_range){start, count};
  queue_push(c, j, true);
}

void conc__pool_cancel_rest(conc__pool_core_t *c, conc_async_result_t *j) {
  conc_async_result_t *list = NULL;
  pthread_mutex_lock(&c->mu);
  pthread_mutex_lock(&j->mu);
  if (!j->complete) {
    for (size_t r = 0; r < j->nretry; r++)
      fail_unsent(j, j->retry[r].start, j->retry[r].count, CONC_ECANCELED,
                  "cancelled", &list);
    if (j->next < j->n)
      fail_unsent(j, j->next, j->n - j->next, CONC_ECANCELED, "cancelled",
                  &list);
    j->nretry = 0;
    j->next = j->n;
  }
  pthread_mutex_unlock(&j->mu);
  conc__pool_next_job(c);
  pthread_mutex_unlock(&c->mu);
  conc__pool_finish_jobs(list);
}

/* ---- dispatch (core->mu held) ---------------------------------------- */

static int in_flight(const struct conc__pool_worker *w) {
  int n = 0;
  for (int k = 0; k < CONC__POOL_LANES; k++)
    n += w->lane[k].job != NULL;
  return n;
}

/* The next range of j: at most `cap` items, and of its new items at most
 * `limit` (retried ranges are split by `cap` only). */
static void take_range(conc_async_result_t *j, size_t cap, size_t limit,
                       size_t *start, size_t *count) {
  if (j->nretry) {
    struct conc__pool_range *r = &j->retry[j->nretry - 1];
    *start = r->start;
    *count = r->count < cap ? r->count : cap;
    r->start += *count;
    r->count -= *count;
    if (r->count == 0)
      j->nretry--;
    return;
  }
  *start = j->next;
  *count = j->n - *start;
  if (*count > limit)
    *count = limit;
  if (*count > cap)
    *count = cap;
  j->next += *count;
}

/* The next range of j for one chunk. */
static void next_range(conc__pool_core_t *c, conc_async_result_t *j,
                       size_t *start, size_t *count) {
  take_range(j, c->tp->capacity(c, j), j->chunksize, start, count);
}

/* ---- the typed map's shared batch (core->mu held) ----------------------- */

/* Items of the open batch no member has claimed yet. */
static bool batch_has_room(conc__pool_core_t *c) {
  return c->batch.job && c->tp->batch_claimed(c) < c->batch.count;
}

static void batch_join(conc__pool_core_t *c, struct conc__pool_worker *w,
                       int k) {
  conc_async_result_t *j = c->batch.job;
  conc__fetch_add(&j->refs, 1u);
  w->lane[k].job = j;
  w->lane[k].start = c->batch.start;
  w->lane[k].count = c->batch.count;
  w->lane[k].batch = true;
  c->busy++;
  c->batch.members++;
  c->tp->batch_join(c, w, k);
  w->lane[k].seq = w->seq;
}

/* Open a batch with j's next items (copied in once; the members claim
 * grains of it); false: they go as chunks. */
static bool batch_open(conc__pool_core_t *c, conc_async_result_t *j) {
  struct conc__pool_batch *b = &c->batch;
  if (!c->tp->batch_open || j->kind != CONC__K_TYPED || b->job)
    return false;
  size_t cap = c->tp->batch_capacity(c, j);
  size_t avail = j->nretry ? j->retry[j->nretry - 1].count : j->n - j->next;
  size_t count = avail < cap ? avail : cap, grain = j->chunksize;
  /* a hole per grain at most (each ends one member's run), and the tail */
  size_t need = count / grain + 2;
  if (count == 0)
    return false;
  if (b->capholes < need) {
    struct conc__pool_range *h = realloc(b->holes, need * sizeof *h);
    if (!h)
      return false;
    b->holes = h;
    b->capholes = need;
  }
  size_t start;
  take_range(j, cap, SIZE_MAX, &start, &count);
  conc__fetch_add(&j->refs, 1u);
  b->job = j;
  b->start = start;
  b->count = count;
  b->grain = grain;
  b->members = 0;
  b->nholes = b->hole_items = 0;
  c->tp->batch_open(c, j, start, count, grain);
  return true;
}

static void batch_hole(conc__pool_core_t *c, size_t start, size_t count) {
  struct conc__pool_batch *b = &c->batch;
  if (count == 0)
    return;
  b->holes[b->nholes++] = (struct conc__pool_range){start, count};
  b->hole_items += count;
}

static void sort_holes(struct conc__pool_batch *b) {
  for (size_t i = 1; i < b->nholes; i++)
    for (size_t k = i; k > 0 && b->holes[k - 1].start > b->holes[k].start;
         k--) {
      struct conc__pool_range t = b->holes[k];
      b->holes[k] = b->holes[k - 1];
      b->holes[k - 1] = t;
    }
}

/* Results of the batch, but for its holes, into the job; every item that
 * failed keeps its code and a zeroed slot. job->mu held. */
static void batch_copy_back(conc__pool_core_t *c, conc_async_result_t *j) {
  struct conc__pool_batch *b = &c->batch;
  size_t end = b->start + b->count, at = b->start;
  sort_holes(b);
  for (size_t h = 0; h <= b->nholes; h++) {
    size_t to = h < b->nholes ? b->holes[h].start : end;
    if (to > at) {
      c->tp->batch_copy_out(c, j, b->start, at - b->start, to - at);
      memset(j->codes + at, 0, (to - at) * sizeof(int));
    }
    if (h < b->nholes && b->holes[h].start + b->holes[h].count > at)
      at = b->holes[h].start + b->holes[h].count;
  }
  for (size_t e = 0; e < j->nierrs; e++) {
    size_t i = j->ierrs[e].index;
    if (i < b->start || i >= end)
      continue;
    j->codes[i] = j->ierrs[e].code;
    if (j->result_size)
      memset(j->out + i * j->result_size, 0, j->result_size);
  }
}

/* The last member left: grains claimed but never started (their member
 * died in between) and the unclaimed rest run again; the rest is done. */
static void batch_finish(conc__pool_core_t *c, conc_async_result_t **list) {
  struct conc__pool_batch *b = &c->batch;
  conc_async_result_t *j = b->job;
  size_t claimed = c->tp->batch_claimed(c);
  for (size_t g = 0; g < claimed; g += b->grain)
    if (!c->tp->batch_grain_done(c, g, false)) {
      size_t n = b->count - g < b->grain ? b->count - g : b->grain;
      batch_hole(c, b->start + g, n);
      conc__pool_requeue(c, j, b->start + g, n, list);
    }
  if (claimed < b->count) {
    batch_hole(c, b->start + claimed, b->count - claimed);
    conc__pool_requeue(c, j, b->start + claimed, b->count - claimed, list);
  }
  pthread_mutex_lock(&j->mu);
  if (!j->complete) {
    batch_copy_back(c, j);
    conc__pool_job_took(j, b->start, b->count - b->hole_items, list);
  }
  pthread_mutex_unlock(&j->mu);
  b->job = NULL;
  conc__pool_job_release(j);
}

void conc__pool_batch_leave(conc__pool_core_t *c, struct conc__pool_worker *w,
                            int k, const struct conc__pool_death *death,
                            conc_async_result_t **list) {
  struct conc__pool_batch *b = &c->batch;
  conc_async_result_t *j = w->lane[k].job;
  size_t gs, gc;
  uint32_t p;
  c->tp->batch_member(c, w, k, &gs, &gc, &p);
  bool open = gc > 0 && !c->tp->batch_grain_done(c, gs, false);
  bool dying = open && death && p < gc; /* it died running item gs + p */
  pthread_mutex_lock(&j->mu);
  if (!j->complete) {
    c->tp->harvest(c, w, k, UINT32_MAX);
    if (dying) {
      conc__pool_job_fail_item(j, b->start + gs + p, death->code, death->signal,
                               death->exitcode, death->pid, death->message);
      conc__pool_job_took(j, b->start + gs + p, 1, list);
    }
  }
  pthread_mutex_unlock(&j->mu);
  if (open) { /* the grain's unrun items: not copied back, run again */
    c->tp->batch_grain_done(c, gs, true);
    batch_hole(c, b->start + gs + p, gc - p);
    conc__pool_requeue(c, j, b->start + gs + p + dying, gc - p - dying, list);
  }
  if (--b->members == 0)
    batch_finish(c, list);
}

/* A job whose first chunk is due: its on_start hook may drop it (a future
 * cancelled before it started). */
static bool job_starts(conc__pool_core_t *c, conc_async_result_t *j,
                       conc_async_result_t **list) {
  if (j->started)
    return true;
  j->started = true;
  if (!j->on_start || j->on_start(j, j->hook_arg))
    return true;
  conc__pool_job_fail_all(j, CONC_ECANCELED, "cancelled", list);
  conc__pool_next_job(c);
  return false;
}

static void dispatch(conc__pool_core_t *c, struct conc__pool_worker *w, int k,
                     conc_async_result_t *j) {
  size_t start, count;
  next_range(c, j, &start, &count);
  conc__fetch_add(&j->refs, 1u);
  w->lane[k].job = j;
  w->lane[k].start = start;
  w->lane[k].count = count;
  c->busy++;
  c->tp->send(c, w, k, j, start, count);
  w->lane[k].seq = w->seq;
  if (!conc__pool_job_has_work(j))
    conc__pool_queue_pop(c);
}

/* Give lane `pass` of worker w the next job's chunk, if it may take one;
 * false once no work is left for this pass. */
static bool offer(conc__pool_core_t *c, struct conc__pool_worker *w, int pass,
                  conc_async_result_t **list) {
  if (w->fd < 0 || w->exited || w->retiring || in_flight(w) != pass)
    return true;
  if (c->maxtasks > 0 && w->tasks + (unsigned)pass >= (unsigned)c->maxtasks)
    return true;
  int k = 0;
  while (w->lane[k].job)
    k++;
  if (pass == 0 && batch_has_room(c)) { /* an idle worker joins at once */
    batch_join(c, w, k);
    return true;
  }
  conc_async_result_t *j;
  for (;;) {
    j = conc__pool_next_job(c);
    if (!j || (pass > 0 && j->kind == CONC__K_APPLY))
      return false;
    if (job_starts(c, j, list))
      break;
  }
  if (j == c->batch.job) /* its other items wait for the batch's end */
    return false;
  if (pass == 0 && batch_open(c, j)) {
    batch_join(c, w, k);
    if (!conc__pool_job_has_work(j))
      conc__pool_queue_pop(c);
    return true;
  }
  dispatch(c, w, k, j);
  return true;
}

/* Give queued work to the workers: idle workers first (awake ones before
 * those that need waking, a system call and a wake-up later), then a
 * second chunk to busy ones (map family only: an apply waiting behind a
 * long task in one worker while another sits idle would be worse than the
 * hop saved). */
void conc__pool_dispatch_all(conc__pool_core_t *c, conc_async_result_t **list) {
  if (c->tp->awake)
    for (int i = 0; i < c->nworkers; i++) {
      struct conc__pool_worker *w = &c->workers[i];
      if (w->fd >= 0 && !w->exited && !in_flight(w) && c->tp->awake(c, w) &&
          !offer(c, w, 0, list))
        return;
    }
  for (int pass = 0; pass < CONC__POOL_LANES; pass++)
    for (int i = 0; i < c->nworkers; i++)
      if (!offer(c, &c->workers[i], pass, list))
        return;
}

void conc__pool_collect(conc__pool_core_t *c, struct conc__pool_worker *w,
                        int k, conc_async_result_t **list) {
  conc_async_result_t *j = w->lane[k].job;
  size_t start = w->lane[k].start, count = w->lane[k].count;
  uint32_t p;
  if (w->lane[k].batch) {
    conc__pool_batch_leave(c, w, k, NULL, list);
  } else {
    c->tp->lane_state(c, w, k, &p);
    pthread_mutex_lock(&j->mu);
    if (!j->complete) {
      c->tp->harvest(c, w, k, p);
      conc__pool_job_took(j, start, p, list);
    }
    pthread_mutex_unlock(&j->mu);
    if (p < count) /* stopped early: the rest runs again */
      conc__pool_requeue(c, j, start + p, count - p, list);
  }
  conc__pool_job_release(j);
  w->lane[k].job = NULL;
  w->lane[k].batch = false;
  c->busy--;
  c->tp->reset_lane(c, w, k);
  w->tasks++;
  if (c->maxtasks > 0 && w->tasks >= (unsigned)c->maxtasks && !in_flight(w)) {
    w->retiring = true;
    c->tp->retire(c, w);
  }
}

/* ---- submission ---------------------------------------------------------- */

static size_t default_chunksize(const conc__pool_core_t *c, size_t n,
                                size_t per_worker) {
  size_t per = (size_t)c->nworkers * per_worker;
  return n / per + (n % per != 0);
}

int conc__pool_submit(conc__pool_core_t *c, conc_async_result_t *j,
                      size_t chunksize) {
  if (j->n && c->tp->capacity(c, j) == 0)
    return CONC_EMSGSIZE;
  int per = j->kind != CONC__K_TYPED ? 4
            : c->tp->batch_open      ? CONC__POOL_TYPED_GRAINS
                                     : CONC__POOL_TYPED_CHUNKS;
  j->chunksize =
      chunksize ? chunksize : default_chunksize(c, j->n, (size_t)per);
  if (j->chunksize == 0)
    j->chunksize = 1;
  conc_async_result_t *list = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->broken || c->state != CONC__P_RUN) {
    int rc = c->broken ? c->broken : CONC_ESTATE;
    pthread_mutex_unlock(&c->mu);
    return rc;
  }
  conc__fetch_add(&j->refs, 1u);
  j->core = c;
  if (j->n == 0) { /* Python completes an empty map in the caller */
    j->started = true;
    pthread_mutex_lock(&j->mu);
    conc__pool_job_took(j, 0, 0, &list);
    conc__store_release(&j->complete, 1u);
    j->cnext = NULL;
    list = j;
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_unlock(&c->mu);
    conc__pool_finish_jobs(list);
    return 0;
  }
  queue_push(c, j, false);
  conc__pool_dispatch_all(c, &list);
  bool wake = conc__pool_next_job(c) && !c->busy;
  pthread_mutex_unlock(&c->mu);
  conc__pool_finish_jobs(list);
  if (wake)
    c->tp->wake(c);
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
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  if (!c)
    return err;
  if (!fn || check_data(arg, arg_len))
    return CONC_EINVAL;
  conc_async_result_t *j = NULL;
  int rc = conc__pool_job_new(CONC__K_APPLY, fn, arg, 1, arg_len, result_cap,
                              true, NULL, &j);
  if (rc)
    return rc;
  set_callbacks(j, opts);
  rc = conc__pool_submit(c, j, 1);
  if (rc || !out)
    conc__pool_job_release(j);
  else
    *out = j;
  return rc;
}

/* A submission refused by a broken pool: Python raises BrokenProcessPool
 * with the reason, so the detail carries it. */
static int refused(conc_pool_t *pool, int rc, conc_pool_error_t *error) {
  if (rc != CONC_EBROKENPOOL || !error)
    return rc;
  conc__pool_core_t *c = pool->priv.core;
  memset(error, 0, sizeof *error);
  error->code = rc;
  error->index = -1;
  pthread_mutex_lock(&c->mu);
  snprintf(error->message, sizeof error->message, "%s", c->broken_msg);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* Collect the finished chunks of j and give queued work to the freed
 * lanes; then mark j's lanes still running as watched (their workers need
 * not wake the result thread) and pick the first one to wait on. core->mu
 * held; false when none of j's chunks is in flight. */
static bool collect_and_watch(conc__pool_core_t *c, conc_async_result_t *j,
                              bool watch, conc_async_result_t **list,
                              struct conc__pool_worker **wp, int *kp,
                              uint32_t *seqp) {
  uint32_t p;
  for (int i = 0; i < c->nworkers; i++) {
    struct conc__pool_worker *w = &c->workers[i];
    for (int k = 0; k < CONC__POOL_LANES; k++)
      if (w->lane[k].job == j && !w->exited &&
          c->tp->lane_state(c, w, k, &p) == CONC__LANE_DONE)
        conc__pool_collect(c, w, k, list);
  }
  conc__pool_dispatch_all(c, list);
  bool found = false;
  for (int i = 0; i < c->nworkers; i++) {
    struct conc__pool_worker *w = &c->workers[i];
    for (int k = 0; k < CONC__POOL_LANES; k++) {
      if (w->lane[k].job != j || w->exited)
        continue;
      if (watch)
        c->tp->watch(c, w, k, w->lane[k].seq, true);
      if (!found) {
        *wp = w;
        *kp = k;
        *seqp = w->lane[k].seq;
        found = true;
      }
    }
  }
  return found;
}

/* Leaving before the end: j's lanes go back to the result thread, and the
 * chunks whose workers skipped the eventfd because we watched are
 * collected here. core->mu held. */
static void unwatch_job(conc__pool_core_t *c, conc_async_result_t *j,
                        conc_async_result_t **list) {
  struct conc__pool_worker *w;
  int k;
  uint32_t seq;
  for (int i = 0; i < c->nworkers; i++)
    for (int q = 0; q < CONC__POOL_LANES; q++)
      if (c->workers[i].lane[q].job == j)
        c->tp->watch(c, &c->workers[i], q, c->workers[i].lane[q].seq, false);
  collect_and_watch(c, j, false, list, &w, &k, &seq);
}

/* Whether the calling thread may collect j's chunks itself. */
static bool may_help(conc_async_result_t *j) {
  conc__pool_core_t *c = j->core;
  if (!c || !c->tp->await_lane || conc__load_acquire(&j->done))
    return false;
  if (c->creator != (pid_t)conc__sync_pid()) /* a forked child's copy */
    return false;
  return !j->callback && !j->error_callback; /* those run in the handler */
}

void conc__pool_help(conc_async_result_t *j, int64_t deadline) {
  conc__pool_core_t *c = j->core;
  if (!may_help(j))
    return;
  for (;;) {
    conc_async_result_t *list = NULL;
    struct conc__pool_worker *w = NULL;
    int k = 0;
    uint32_t seq = 0;
    pthread_mutex_lock(&c->mu);
    bool found = collect_and_watch(c, j, true, &list, &w, &k, &seq);
    /* past the deadline, or interrupted (conc_interrupt: the caller's wait
     * then returns CONC_EINTR): the result thread collects the chunk */
    bool late = found && (conc__now_ns() >= deadline ||
                          conc__load_relaxed(&conc__intr_pending));
    if (late)
      unwatch_job(c, j, &list);
    bool wake = c->state != CONC__P_RUN; /* closing: the result thread
                                            decides about the workers */
    pthread_mutex_unlock(&c->mu);
    conc__pool_finish_jobs(list);
    if (wake)
      c->tp->wake(c);
    if (!found || late || conc__load_acquire(&j->done))
      return;
    c->tp->await_lane(c, w, k, seq, deadline);
  }
}

/* The lane running the chunk that holds item i of j, or false. */
static bool lane_of_item(conc__pool_core_t *c, conc_async_result_t *j, size_t i,
                         struct conc__pool_worker **wp, int *kp) {
  for (int n = 0; n < c->nworkers; n++)
    for (int k = 0; k < CONC__POOL_LANES; k++) {
      struct conc__pool_lane *l = &c->workers[n].lane[k];
      if (l->job == j && !l->batch && !c->workers[n].exited && i >= l->start &&
          i - l->start < l->count) {
        *wp = &c->workers[n];
        *kp = k;
        return true;
      }
    }
  return false;
}

void conc__pool_help_item(conc_async_result_t *j, size_t item,
                          int64_t deadline) {
  conc__pool_core_t *c = j->core;
  if (!may_help(j))
    return;
  conc_async_result_t *list = NULL;
  struct conc__pool_worker *w;
  int k;
  uint32_t seq;
  pthread_mutex_lock(&c->mu);
  bool found = collect_and_watch(c, j, true, &list, &w, &k, &seq) &&
               lane_of_item(c, j, item, &w, &k) && conc__now_ns() < deadline &&
               !conc__load_relaxed(&conc__intr_pending);
  if (found)
    seq = w->lane[k].seq;
  else
    unwatch_job(c, j, &list);
  pthread_mutex_unlock(&c->mu);
  conc__pool_finish_jobs(list);
  if (!found)
    return;
  c->tp->await_lane(c, w, k, seq, deadline);
  /* every lane unwatched before it is read (Dekker with the worker, see
   * pool_worker.c): chunks that ended while watched are collected here,
   * those still running go back to the result thread */
  list = NULL;
  pthread_mutex_lock(&c->mu);
  unwatch_job(c, j, &list);
  bool wake = c->state != CONC__P_RUN;
  pthread_mutex_unlock(&c->mu);
  conc__pool_finish_jobs(list);
  if (wake)
    c->tp->wake(c);
}

int conc_pool_apply(conc_pool_t *pool, conc_pool_func_t fn, const void *arg,
                    size_t arg_len, void *result, size_t result_cap,
                    size_t *result_len, conc_pool_error_t *error) {
  if (check_data(result, result_cap))
    return CONC_EINVAL;
  conc_async_result_t *r;
  int rc = conc_pool_apply_async(pool, fn, arg, arg_len, result_cap, NULL, &r);
  if (rc)
    return refused(pool, rc, error);
  conc__pool_help(r, CONC_DEADLINE_NEVER);
  rc = conc_async_result_get(r, CONC_FOREVER, result, result_cap);
  if (rc == 0 && result_len)
    *result_len = r->lens[0];
  if (rc && error && r->err)
    conc_async_result_error(r, 0, error);
  conc_async_result_release(r);
  return rc;
}

static int map_async(conc_pool_t *pool, int kind, conc_pool_func_t fn,
                     const void *in, size_t n, size_t arg_size,
                     size_t result_size, size_t chunksize,
                     const conc_pool_async_opts_t *opts,
                     conc_async_result_t **out) {
  int err;
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  if (!c)
    return err;
  if (!fn || !out || (n && check_data(in, arg_size)))
    return CONC_EINVAL;
  conc_async_result_t *j = NULL;
  int rc = conc__pool_job_new(kind, fn, in, n, arg_size, result_size, true,
                              NULL, &j);
  if (rc)
    return rc;
  set_callbacks(j, opts);
  rc = conc__pool_submit(c, j, chunksize);
  if (rc)
    conc__pool_job_release(j);
  else
    *out = j;
  return rc;
}

int conc_pool_map_async(conc_pool_t *pool, conc_pool_func_t fn, const void *in,
                        size_t n, size_t arg_size, size_t result_size,
                        const conc_pool_async_opts_t *opts,
                        conc_async_result_t **out) {
  return map_async(pool, CONC__K_MAP, fn, in, n, arg_size, result_size,
                   opts ? opts->chunksize : 0, opts, out);
}

int conc_pool_starmap_async(conc_pool_t *pool, conc_pool_func_t fn,
                            const void *in, size_t n, size_t arg_size,
                            size_t result_size,
                            const conc_pool_async_opts_t *opts,
                            conc_async_result_t **out) {
  return conc_pool_map_async(pool, fn, in, n, arg_size, result_size, opts, out);
}

/* map blocks until the job is complete, so the job reads the caller's
 * input and writes the caller's output in place. */
static int map_sync(conc_pool_t *pool, int kind, conc_pool_func_t fn,
                    const void *in, size_t n, size_t arg_size,
                    size_t result_size, const conc_pool_map_opts_t *opts,
                    void *out, conc_pool_error_t *error) {
  int err;
  conc__pool_core_t *c = conc__pool_core_of(pool, &err);
  if (!c)
    return err;
  size_t out_bytes;
  if (!fn || (result_size && n > SIZE_MAX / result_size))
    return CONC_EINVAL;
  out_bytes = n * result_size;
  if (n && (check_data(in, arg_size) || check_data(out, out_bytes)))
    return CONC_EINVAL;
  conc_async_result_t *j = NULL;
  int rc = conc__pool_job_new(kind, fn, in, n, arg_size, result_size, false,
                              out, &j);
  if (rc)
    return rc;
  rc = conc__pool_submit(c, j, opts ? opts->chunksize : 0);
  if (rc == 0) {
    rc = conc_async_result_wait(j, CONC_FOREVER);
    if (rc == 0)
      rc = j->err;
    conc__pool_job_report(j, opts, rc ? error : NULL);
  } else {
    refused(pool, rc, error);
  }
  conc__pool_job_release(j);
  return rc;
}

int conc_pool_map(conc_pool_t *pool, conc_pool_func_t fn, const void *in,
                  size_t n, size_t arg_size, size_t result_size,
                  const conc_pool_map_opts_t *opts, void *out,
                  conc_pool_error_t *error) {
  return map_sync(pool, CONC__K_MAP, fn, in, n, arg_size, result_size, opts,
                  out, error);
}

int conc_pool_map_typed(conc_pool_t *pool, conc_pool_func_t fn, const void *in,
                        size_t n, size_t arg_size, size_t result_size,
                        const conc_pool_map_opts_t *opts, void *out,
                        conc_pool_error_t *error) {
  return map_sync(pool, CONC__K_TYPED, fn, in, n, arg_size, result_size, opts,
                  out, error);
}

int conc_pool_starmap(conc_pool_t *pool, conc_pool_func_t fn, const void *in,
                      size_t n, size_t arg_size, size_t result_size,
                      const conc_pool_map_opts_t *opts, void *out,
                      conc_pool_error_t *error) {
  return conc_pool_map(pool, fn, in, n, arg_size, result_size, opts, out,
                       error);
}

static int imap_new(conc_pool_t *pool, int kind, conc_pool_func_t fn,
                    const void *in, size_t n, size_t arg_size,
                    size_t result_size, size_t chunksize, conc_imap_t **out) {
  if (!out)
    return CONC_EINVAL;
  conc_async_result_t *j = NULL;
  int rc = map_async(pool, kind, fn, in, n, arg_size, result_size,
                     chunksize ? chunksize : 1, NULL, &j);
  if (rc)
    return rc;
  rc = conc__pool_imap_new(j, out);
  if (rc)
    conc__pool_job_release(j);
  return rc;
}

int conc_pool_imap(conc_pool_t *pool, conc_pool_func_t fn, const void *in,
                   size_t n, size_t arg_size, size_t result_size,
                   size_t chunksize, conc_imap_t **out) {
  return imap_new(pool, CONC__K_IMAP, fn, in, n, arg_size, result_size,
                  chunksize, out);
}

int conc_pool_imap_unordered(conc_pool_t *pool, conc_pool_func_t fn,
                             const void *in, size_t n, size_t arg_size,
                             size_t result_size, size_t chunksize,
                             conc_imap_t **out) {
  return imap_new(pool, CONC__K_IMAP_UNORDERED, fn, in, n, arg_size,
                  result_size, chunksize, out);
}
