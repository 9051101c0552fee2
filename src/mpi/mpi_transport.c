/*
 * The Pool's transport over MPI ranks (conc__mpi_transport): the pool core
 * (pool.c, pool_map.c, pool_job.c) schedules, keeps results and error
 * detail, runs callbacks and serves the AsyncResult, imap and executor
 * calls exactly as for forked workers; this file moves its chunks to the
 * worker ranks and back. Core worker w is rank w + 1 of the engine's
 * communicator, and the core's two lanes per worker are two chunks in
 * flight at each rank.
 *
 * Each pool has its own MPI tag, so pools (and their result threads) never
 * take each other's replies. The pool's result thread is the only thread
 * that receives for it: while the pool has replies due it blocks in
 * MPI_Mprobe for the next one, takes it and returns to the core, which
 * collects the finished chunk and sends the next one in the same pass (no
 * thread hop per chunk, no sleep, no polling back-off). With nothing due it sleeps on a futex word and makes
 * no MPI call at all (Open MPI's blocking calls spin). Submitters send
 * chunks from their own threads (MPI_Isend); a wake-up that must reach a
 * result thread blocked in MPI is a zero-byte message from rank 0 to
 * itself on the pool's tag. Without MPI_THREAD_MULTIPLE every MPI call
 * goes through conc__mpi_lock and the result thread polls (MPI_Improbe,
 * sched_yield) instead of blocking while replies are due.
 *
 * A rank cannot be stopped or replaced: a "worker" of the core is a
 * logical one. spawn sends the pool's initializer (if any), retire and
 * stop end only the logical worker; replies to chunks the core has given
 * up (terminate, a failed initializer) are taken and dropped, and close
 * waits for every reply still due before the tag is reused.
 *
 * Locking protocol. The core calls the transport with core->mu held,
 * except wait and wake, which take it themselves; the lane records, the
 * counters and the wake-up state are guarded by core->mu. The receive
 * buffer `spare` belongs to the result thread (and to close, after that
 * thread has ended). MPI calls: see mpi_engine.c.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/time.h"
#include "mpi-int.h"
#include "platform-int.h"
#include "pool-int.h"

enum { L_IDLE, L_SENT, L_DONE };

struct lane {
  MPI_Request sreq;
  char *sbuf, *rbuf;
  size_t scap, rcap;
  uint64_t seq;
  int state;
};

struct mstate {
  int tag;
  bool have_tag;
  int64_t init_id; /* -1: no initializer */
  char *initmsg;
  size_t initlen;
  MPI_Request *ireq; /* per worker: its INIT message */
  struct lane *lanes;
  bool *initfail;                         /* per worker */
  char (*initwhy)[CONC_POOL_MESSAGE_MAX]; /* per worker */
  unsigned *inflight;                     /* per worker: replies due */
  size_t due;                             /* replies due, all workers */
  char *spare;
  size_t spare_cap;
  uint64_t seq;
  uint32_t bell;    /* futex word of the idle result thread */
  uint32_t pending; /* the next wait returns at once */
  bool asleep;      /* the result thread sleeps on bell */
  bool in_mpi;      /* the result thread is (about to be) in MPI */
  bool wake_sent;   /* a wake-up message to ourselves is on its way */
};

static unsigned max_in_flight;

/* The live MPI pools, for the end of the job (conc__mpi_drain_all). */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static conc__pool_core_t **live;
static size_t nlive, caplive;

unsigned conc__mpi_max_in_flight(void) {
  return __atomic_load_n(&max_in_flight, __ATOMIC_RELAXED);
}

static struct mstate *ms(conc__pool_core_t *c) { return c->tp_state; }

static struct lane *lane_at(struct mstate *m, int w, int k) {
  return &m->lanes[(size_t)w * CONC__POOL_LANES + (size_t)k];
}

/* ---- wake-ups (core->mu held) ------------------------------------------- */

/* Ring the idle result thread's bell; the system call only if it sleeps
 * (asleep and bell change under core->mu, so none is missed). */
static void ring(struct mstate *m) {
  __atomic_fetch_add(&m->bell, 1u, __ATOMIC_RELEASE);
  if (m->asleep)
    conc__wake(&m->bell, CONC__WAKE_ALL, false);
}

static void kick(struct mstate *m) {
  __atomic_store_n(&m->pending, 1u, __ATOMIC_RELEASE);
  ring(m);
  if (!m->in_mpi || m->wake_sent || !conc__mpi_multiple())
    return; /* the polling fallback sees `pending` */
  m->wake_sent = true;
  MPI_Request r;
  MPI_Isend(NULL, 0, MPI_BYTE, 0, m->tag, conc__mpi_comm(), &r);
  MPI_Request_free(&r);
}

/* A message to worker w that expects a reply. */
static void post(struct mstate *m, int w, const void *buf, size_t len,
                 MPI_Request *req) {
  conc__mpi_lock();
  MPI_Wait(req, MPI_STATUS_IGNORE); /* its previous message (long done) */
  MPI_Isend(buf, (int)len, MPI_BYTE, w + 1, m->tag, conc__mpi_comm(), req);
  conc__mpi_unlock();
  m->due++;
  unsigned n = ++m->inflight[w];
  if (n > conc__mpi_max_in_flight())
    __atomic_store_n(&max_in_flight, n, __ATOMIC_RELAXED);
  if (!m->in_mpi) /* the result thread may sleep: it must start receiving */
    ring(m);
}

/* ---- receiving (the result thread; close) --------------------------------- */

/* Take one matched message: a wake-up, an initializer's outcome or a
 * chunk's reply, which goes to its lane unless the core gave it up. The
 * result thread leaves MPI with it: whatever a wake-up asked for, the
 * core's next pass sees. */
static void take(conc__pool_core_t *c, struct mstate *m, MPI_Message *msg,
                 MPI_Status *st) {
  int n = 0;
  MPI_Get_count(st, MPI_BYTE, &n);
  if (conc__mpi_grow(&m->spare, &m->spare_cap, (size_t)n + 1) != 0) {
    fprintf(stderr, "libconc_mpi: out of memory for a reply\n");
    MPI_Abort(MPI_COMM_WORLD, 2); /* a matched message must be taken */
  }
  conc__mpi_lock();
  MPI_Mrecv(m->spare, n, MPI_BYTE, msg, MPI_STATUS_IGNORE);
  conc__mpi_unlock();
  pthread_mutex_lock(&c->mu);
  m->in_mpi = false;
  __atomic_store_n(&m->pending, 0u, __ATOMIC_RELEASE);
  if (st->MPI_SOURCE == 0) { /* from ourselves: a wake-up */
    m->wake_sent = false;
    pthread_mutex_unlock(&c->mu);
    return;
  }
  int w = st->MPI_SOURCE - 1;
  conc__mpi_msg_t h;
  memcpy(&h, m->spare, sizeof h);
  m->due--;
  m->inflight[w]--;
  if (h.kind == CONC__MPI_INIT_FAILED) {
    size_t ml = (size_t)n - sizeof h;
    if (ml >= CONC_POOL_MESSAGE_MAX)
      ml = CONC_POOL_MESSAGE_MAX - 1;
    memcpy(m->initwhy[w], m->spare + sizeof h, ml);
    m->initwhy[w][ml] = '\0';
    m->initfail[w] = true;
    c->workers[w].exited = true; /* the core buries it: the pool breaks */
  } else if (h.kind == CONC__MPI_RESULT || h.kind == CONC__MPI_SKIPPED) {
    struct lane *l =
        h.lane < CONC__POOL_LANES ? lane_at(m, w, (int)h.lane) : NULL;
    if (l && l->state == L_SENT && l->seq == h.seq) {
      char *b = l->rbuf;
      size_t cap = l->rcap;
      l->rbuf = m->spare;
      l->rcap = m->spare_cap;
      m->spare = b;
      m->spare_cap = cap;
      l->state = L_DONE;
    }
  }
  pthread_mutex_unlock(&c->mu);
}

/* Non-blocking: take one message if one has arrived. */
static bool try_take(conc__pool_core_t *c, struct mstate *m) {
  MPI_Message msg;
  MPI_Status st;
  int got = 0;
  conc__mpi_lock();
  MPI_Improbe(MPI_ANY_SOURCE, m->tag, conc__mpi_comm(), &got, &msg, &st);
  conc__mpi_unlock();
  if (got)
    take(c, m, &msg, &st);
  return got;
}

/* Take the next message (blocking until one arrives, `pending` is set in
 * the polling fallback, or the deadline passes). One at a time: a probe
 * that finds nothing makes Open MPI yield the CPU when ranks outnumber
 * cores, and the next wait finds a message already there at once. */
static bool receive(conc__pool_core_t *c, struct mstate *m,
                    conc_deadline_t deadline) {
  if (conc__mpi_multiple() && deadline == CONC_DEADLINE_NEVER) {
    MPI_Message msg;
    MPI_Status st;
    MPI_Mprobe(MPI_ANY_SOURCE, m->tag, conc__mpi_comm(), &msg, &st);
    take(c, m, &msg, &st);
    return true;
  }
  while (!try_take(c, m)) {
    if (__atomic_load_n(&m->pending, __ATOMIC_ACQUIRE) ||
        (deadline != CONC_DEADLINE_NEVER && conc__now_ns() >= deadline))
      return false;
    sched_yield();
  }
  return true;
}

static void mt_wait(conc__pool_core_t *c, int timeout_ms) {
  struct mstate *m = ms(c);
  conc_deadline_t deadline = CONC_DEADLINE_NEVER;
  if (timeout_ms >= 0)
    conc_deadline_after(timeout_ms / 1000.0, &deadline);
  pthread_mutex_lock(&c->mu);
  if (__atomic_exchange_n(&m->pending, 0u, __ATOMIC_ACQ_REL)) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  bool mpi = m->due > 0 || m->wake_sent;
  m->in_mpi = mpi;
  m->asleep = !mpi && timeout_ms != 0;
  uint32_t bell = __atomic_load_n(&m->bell, __ATOMIC_ACQUIRE);
  pthread_mutex_unlock(&c->mu);
  if (!mpi) {
    if (timeout_ms != 0)
      conc__wait(&m->bell, bell, deadline, false);
    pthread_mutex_lock(&c->mu);
    m->asleep = false;
    pthread_mutex_unlock(&c->mu);
    return;
  }
  if (receive(c, m, deadline))
    return; /* take() left MPI */
  pthread_mutex_lock(&c->mu);
  m->in_mpi = false;
  __atomic_store_n(&m->pending, 0u, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&c->mu);
}

static void mt_wake(conc__pool_core_t *c) {
  pthread_mutex_lock(&c->mu);
  kick(ms(c));
  pthread_mutex_unlock(&c->mu);
}

/* ---- open and close --------------------------------------------------------- */

static int open_init(conc__pool_core_t *c, struct mstate *m) {
  size_t as = 0;
  m->init_id = conc__mpi_init_id(c->initializer, &as);
  if (m->init_id < 0)
    return conc_raise(CONC_EINVAL, "the initializer is not registered with "
                                   "CONC_INIT");
  if (as && !c->initarg)
    return conc_raise(
        CONC_EINVAL, "the initializer takes %zu bytes and initarg is NULL", as);
  if (as > INT32_MAX / 2)
    return CONC_EMSGSIZE;
  conc__mpi_msg_t h = {.kind = CONC__MPI_INIT,
                       .task = (uint32_t)m->init_id,
                       .arg_size = (uint32_t)as};
  m->initlen = sizeof h + as;
  m->initmsg = malloc(m->initlen);
  if (!m->initmsg)
    return CONC_ENOMEM;
  memcpy(m->initmsg, &h, sizeof h);
  if (as)
    memcpy(m->initmsg + sizeof h, c->initarg, as);
  return 0;
}

static int mt_open(conc__pool_core_t *c) {
  struct mstate *m = calloc(1, sizeof *m);
  if (!m)
    return CONC_ENOMEM;
  c->tp_state = m;
  size_t nw = (size_t)c->nworkers;
  m->init_id = -1;
  m->lanes = calloc(nw * CONC__POOL_LANES, sizeof *m->lanes);
  m->ireq = calloc(nw, sizeof *m->ireq);
  m->initfail = calloc(nw, sizeof *m->initfail);
  m->initwhy = calloc(nw, sizeof *m->initwhy);
  m->inflight = calloc(nw, sizeof *m->inflight);
  if (!m->lanes || !m->ireq || !m->initfail || !m->initwhy || !m->inflight)
    return CONC_ENOMEM;
  for (size_t i = 0; i < nw * CONC__POOL_LANES; i++)
    m->lanes[i].sreq = MPI_REQUEST_NULL;
  for (size_t i = 0; i < nw; i++)
    m->ireq[i] = MPI_REQUEST_NULL;
  if (c->nworkers > conc__mpi_workers_())
    return CONC_EINVAL;
  int rc = conc__mpi_tag_new(&m->tag);
  if (rc)
    return rc;
  m->have_tag = true;
  rc = c->initializer ? open_init(c, m) : 0;
  if (rc)
    return rc;
  pthread_mutex_lock(&live_mu);
  if (nlive == caplive) {
    size_t cap = caplive ? 2 * caplive : 8;
    conc__pool_core_t **l = realloc(live, cap * sizeof *l);
    if (l) {
      live = l;
      caplive = cap;
    }
  }
  if (nlive < caplive)
    live[nlive++] = c;
  else
    rc = CONC_ENOMEM;
  pthread_mutex_unlock(&live_mu);
  return rc;
}

/* Wait for every reply still due (chunks the core gave up still run on
 * their ranks), then tell the ranks to drop the pool's initializer state. */
static void drain(conc__pool_core_t *c, struct mstate *m) {
  for (;;) {
    pthread_mutex_lock(&c->mu);
    bool more = m->due > 0 || m->wake_sent;
    m->in_mpi = more;
    pthread_mutex_unlock(&c->mu);
    if (!more)
      break;
    receive(c, m, CONC_DEADLINE_NEVER);
  }
  if (m->init_id < 0)
    return;
  conc__mpi_msg_t h = {.kind = CONC__MPI_FORGET};
  conc__mpi_lock();
  for (int w = 0; w < c->nworkers; w++)
    MPI_Send(&h, sizeof h, MPI_BYTE, w + 1, m->tag, conc__mpi_comm());
  conc__mpi_unlock();
}

/* The job ends (exit, after the pools' exit-time terminate): take the
 * replies still due to pools nobody destroyed, so that no worker rank is
 * left blocked sending one when it should see STOP. */
void conc__mpi_drain_all(void) {
  pthread_mutex_lock(&live_mu);
  for (size_t i = 0; i < nlive; i++)
    if (conc__load_acquire(&live[i]->finished))
      drain(live[i], ms(live[i]));
  free(live);
  live = NULL;
  nlive = caplive = 0;
  pthread_mutex_unlock(&live_mu);
}

static void mt_close(conc__pool_core_t *c) {
  struct mstate *m = ms(c);
  if (!m)
    return;
  pthread_mutex_lock(&live_mu);
  for (size_t i = 0; i < nlive; i++)
    if (live[i] == c)
      live[i] = live[--nlive];
  pthread_mutex_unlock(&live_mu);
  if (m->have_tag && m->lanes) {
    drain(c, m);
    conc__mpi_tag_free(m->tag);
  }
  for (size_t i = 0; m->lanes && i < (size_t)c->nworkers * CONC__POOL_LANES;
       i++) {
    conc__mpi_lock();
    MPI_Wait(&m->lanes[i].sreq, MPI_STATUS_IGNORE);
    conc__mpi_unlock();
    free(m->lanes[i].sbuf);
    free(m->lanes[i].rbuf);
  }
  for (int i = 0; m->ireq && i < c->nworkers; i++) {
    conc__mpi_lock();
    MPI_Wait(&m->ireq[i], MPI_STATUS_IGNORE);
    conc__mpi_unlock();
  }
  free(m->lanes);
  free(m->ireq);
  free(m->initfail);
  free(m->initwhy);
  free(m->inflight);
  free(m->initmsg);
  free(m->spare);
  free(m);
  c->tp_state = NULL;
}

/* ---- the logical workers (core->mu held) --------------------------------- */

/* Items per chunk: as many as buffer_size holds (at least one), within
 * what one MPI message can carry. */
static size_t mt_capacity(conc__pool_core_t *c, const conc_async_result_t *j) {
  size_t as = j->arg_size, rs = j->result_size;
  size_t per = as + rs + sizeof(conc__mpi_item_t);
  size_t room =
      (size_t)INT32_MAX - sizeof(conc__mpi_msg_t) - CONC_POOL_MESSAGE_MAX * 64;
  if (as > UINT32_MAX / 2 || rs > UINT32_MAX / 2 || per > room)
    return 0;
  size_t k = c->buf_size / per, most = room / per;
  if (k < 1)
    k = 1;
  return k < most ? k : most;
}

static int mt_spawn(conc__pool_core_t *c, struct conc__pool_worker *w) {
  struct mstate *m = ms(c);
  w->fd = w->index; /* not a descriptor: the core reads >= 0 as "has one" */
  w->pid = 0;
  snprintf(w->name, sizeof w->name, "MPIPoolWorker-%d", w->index + 1);
  m->initfail[w->index] = false;
  if (m->init_id >= 0)
    post(m, w->index, m->initmsg, m->initlen, &m->ireq[w->index]);
  return 0;
}

static int mt_reap(conc__pool_core_t *c, struct conc__pool_worker *w) {
  return ms(c)->initfail[w->index] ? 1 : 0;
}

static void mt_stop(conc__pool_core_t *c, struct conc__pool_worker *w,
                    bool force) {
  (void)c, (void)w, (void)force; /* a rank is not ours to stop */
}

static int mt_join(conc__pool_core_t *c, struct conc__pool_worker *w,
                   double timeout) {
  (void)c, (void)w, (void)timeout; /* close takes the late replies */
  return 0;
}

static void mt_retire(conc__pool_core_t *c, struct conc__pool_worker *w) {
  w->exited = true; /* the logical worker ends; the rank serves on */
  __atomic_store_n(&ms(c)->pending, 1u, __ATOMIC_RELEASE);
}

static bool mt_init_failed(conc__pool_core_t *c, struct conc__pool_worker *w,
                           char *msg, size_t len) {
  struct mstate *m = ms(c);
  if (!m->initfail[w->index])
    return false;
  snprintf(msg, len, "%s", m->initwhy[w->index]);
  return true;
}

/* ---- chunks (core->mu held) ------------------------------------------------ */

/* A chunk that fails in full without being sent (its task is not
 * registered, or no memory): its reply is made here. */
static void fail_locally(struct mstate *m, struct lane *l,
                         const conc__mpi_msg_t *sent, int code,
                         const char *why) {
  conc__mpi_msg_t h = *sent;
  size_t ml = strlen(why), n = h.nitems;
  size_t len = sizeof h + n * (sizeof(conc__mpi_item_t) + h.result_cap + ml);
  if (conc__mpi_grow(&l->rbuf, &l->rcap, len) != 0) {
    h.kind = CONC__MPI_SKIPPED; /* the core runs the chunk again */
    len = sizeof h;
    if (conc__mpi_grow(&l->rbuf, &l->rcap, len) != 0)
      abort(); /* no memory for 40 bytes */
    memcpy(l->rbuf, &h, sizeof h);
  } else {
    h.kind = CONC__MPI_RESULT;
    memcpy(l->rbuf, &h, sizeof h);
    char *p = l->rbuf + sizeof h;
    conc__mpi_item_t it = {code, (uint32_t)ml};
    for (size_t i = 0; i < n; i++, p += sizeof it)
      memcpy(p, &it, sizeof it);
    memset(p, 0, n * h.result_cap);
    p += n * h.result_cap;
    for (size_t i = 0; i < n; i++, p += ml)
      memcpy(p, why, ml);
  }
  l->state = L_DONE;
  kick(m);
}

static void mt_send(conc__pool_core_t *c, struct conc__pool_worker *w, int k,
                    conc_async_result_t *j, size_t start, size_t count) {
  struct mstate *m = ms(c);
  struct lane *l = lane_at(m, w->index, k);
  int64_t id = conc__mpi_task_id(j->fn);
  conc__mpi_msg_t h = {.seq = ++m->seq,
                       .kind = CONC__MPI_CHUNK,
                       .lane = (uint32_t)k,
                       .task = id < 0 ? UINT32_MAX : (uint32_t)id,
                       .nitems = (uint32_t)count,
                       .arg_size = (uint32_t)j->arg_size,
                       .result_cap = (uint32_t)j->result_size};
  l->seq = h.seq;
  l->state = L_SENT;
  if (id < 0) {
    fail_locally(m, l, &h, CONC_EINVAL,
                 "the task function is not registered with CONC_TASK");
    return;
  }
  size_t len = sizeof h + count * j->arg_size;
  conc__mpi_lock();
  MPI_Wait(&l->sreq, MPI_STATUS_IGNORE); /* the lane's last send: done */
  conc__mpi_unlock();
  if (conc__mpi_grow(&l->sbuf, &l->scap, len) != 0) {
    fail_locally(m, l, &h, CONC_ENOMEM, "out of memory sending a chunk");
    return;
  }
  memcpy(l->sbuf, &h, sizeof h);
  if (count && j->arg_size)
    memcpy(l->sbuf + sizeof h, j->in + start * j->arg_size,
           count * j->arg_size);
  post(m, w->index, l->sbuf, len, &l->sreq);
}

static int mt_lane_state(conc__pool_core_t *c, struct conc__pool_worker *w,
                         int k, uint32_t *progress) {
  struct mstate *m = ms(c);
  struct lane *l = lane_at(m, w->index, k);
  *progress = 0;
  if (l->state == L_DONE) {
    conc__mpi_msg_t h;
    memcpy(&h, l->rbuf, sizeof h);
    if (h.kind == CONC__MPI_RESULT)
      *progress = h.nitems;
    return CONC__LANE_DONE;
  }
  /* a rank never dies under the pool (fail-stop): only a failed
   * initializer ends a worker, and then its chunks never ran */
  return m->initfail[w->index] ? CONC__LANE_QUEUED : CONC__LANE_RUNNING;
}

static void mt_harvest(conc__pool_core_t *c, struct conc__pool_worker *w, int k,
                       uint32_t upto) {
  struct lane *l = lane_at(ms(c), w->index, k);
  conc_async_result_t *j = w->lane[k].job;
  size_t first = w->lane[k].start, rs = j->result_size;
  conc__mpi_msg_t h;
  memcpy(&h, l->rbuf, sizeof h);
  const char *items = l->rbuf + sizeof h;
  const char *res = items + (size_t)h.nitems * sizeof(conc__mpi_item_t);
  const char *msgs = res + (size_t)h.nitems * h.result_cap;
  if (rs && upto)
    memcpy(j->out + first * rs, res, upto * rs);
  memset(j->codes + first, 0, upto * sizeof(int)); /* failures follow */
  char msg[CONC_POOL_MESSAGE_MAX];
  for (uint32_t i = 0; i < upto; i++) {
    conc__mpi_item_t it;
    memcpy(&it, items + i * sizeof it, sizeof it);
    if (it.code == 0) {
      if (j->lens)
        j->lens[first + i] = it.len;
      continue;
    }
    size_t ml = it.len < sizeof msg ? it.len : sizeof msg - 1;
    memcpy(msg, msgs, ml);
    msg[ml] = '\0';
    msgs += it.len;
    conc__pool_job_fail_item(j, first + i, it.code, 0, 0, 0, msg);
  }
}

static void mt_reset_lane(conc__pool_core_t *c, struct conc__pool_worker *w,
                          int k) {
  /* a chunk given up while still SENT: its reply is dropped on arrival */
  lane_at(ms(c), w->index, k)->state = L_IDLE;
}

const conc__pool_transport_t conc__mpi_transport = {
    .name = "mpi",
    .open = mt_open,
    .close = mt_close,
    .capacity = mt_capacity,
    .spawn = mt_spawn,
    .reap = mt_reap,
    .stop = mt_stop,
    .join = mt_join,
    .send = mt_send,
    .lane_state = mt_lane_state,
    .harvest = mt_harvest,
    .reset_lane = mt_reset_lane,
    .init_failed = mt_init_failed,
    .retire = mt_retire,
    .wait = mt_wait,
    .wake = mt_wake,
};
