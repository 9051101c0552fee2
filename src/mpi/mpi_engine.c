/*
 * The MPI engine: rank 0 deals chunks of a call's items to the worker ranks,
 * keeping `inflight` chunks queued at each so that a worker never waits for
 * the next one; the workers run them and send the results back.
 *
 * Dispatch never sleeps or polls with a back-off: rank 0 blocks in
 * MPI_Mprobe for the next result from any worker and answers it at once
 * with that worker's next chunk. Chunks go out with MPI_Isend from per-slot
 * buffers, so rank 0 never blocks on a send while a worker blocks sending
 * it a result. Workers serve chunks in arrival order, so a result always
 * belongs to the oldest chunk outstanding at its worker.
 *
 * Locking: one call runs at a time (eng.mu); MPI is called only under it on
 * rank 0 (MPI_THREAD_SERIALIZED), and by the one serving thread on a worker.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "mpi-int.h"

struct slot {
  char *buf;
  size_t cap;
  MPI_Request req;
  uint64_t seq;
  size_t first; /* index of its first item in the call */
  uint32_t nitems;
};

static struct {
  pthread_mutex_t mu;
  MPI_Comm comm;
  int rank_base; /* rank of worker 0 in comm */
  int workers;
  int inflight;
  struct slot *slots;    /* workers x inflight */
  uint64_t *head, *tail; /* per worker: oldest outstanding, next free */
  uint64_t seq;
  char *rbuf;
  size_t rcap;
} eng = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap)
    return 0;
  size_t c = *cap ? *cap : 4096;
  while (c < need)
    c *= 2;
  char *b = realloc(*buf, c);
  if (!b)
    return CONC_ENOMEM;
  *buf = b;
  *cap = c;
  return 0;
}

/* ---- worker ranks ---------------------------------------------------------- */

/* Run one chunk from `in` and build its result message in *out. */
static int run_chunk(const char *in, char **out, size_t *ocap, size_t *olen) {
  conc__mpi_task_hdr_t h;
  memcpy(&h, in, sizeof h);
  conc_pool_func_t fn = conc__mpi_task_fn(h.task);
  size_t items_off = sizeof(conc__mpi_result_hdr_t);
  size_t res_off = items_off + h.nitems * sizeof(conc__mpi_item_t);
  size_t len = res_off + (size_t)h.nitems * h.result_cap;
  if (grow(out, ocap, len) != 0)
    return CONC_ENOMEM;
  conc__mpi_result_hdr_t rh = {h.seq, h.nitems, h.result_cap};
  memcpy(*out, &rh, sizeof rh);
  const char *args = in + sizeof h;
  for (uint32_t i = 0; i < h.nitems; i++) {
    char *res = *out + res_off + (size_t)i * h.result_cap;
    size_t rlen = h.result_cap;
    int rc = fn ? fn(args + (size_t)i * h.arg_size, h.arg_size, res,
                     h.result_cap, &rlen)
                : conc_raise(CONC_EINVAL, "task id %u unknown", h.task);
    int code = rc < 0 ? rc : rc > 0 ? CONC_EFAILED : 0;
    if (code == 0 && rlen > h.result_cap)
      code = conc_raise(CONC_EMSGSIZE, "result of %zu bytes over %u", rlen,
                        h.result_cap);
    conc__mpi_item_t it = {code, code ? 0 : (uint32_t)rlen};
    if (code) {
      const char *m = conc_raised_message(code);
      size_t ml = m ? strlen(m) : 0;
      if (grow(out, ocap, len + ml) != 0)
        return CONC_ENOMEM;
      memcpy(*out + len, m ? m : "", ml);
      len += ml;
      it.len = (uint32_t)ml;
    }
    memcpy(*out + items_off + i * sizeof it, &it, sizeof it);
  }
  *olen = len;
  return 0;
}

void conc__mpi_serve(void) {
  MPI_Comm parent;
  MPI_Comm_get_parent(&parent);
  MPI_Comm comm = parent != MPI_COMM_NULL ? parent : MPI_COMM_WORLD;
  char *in = NULL, *out = NULL;
  size_t icap = 0, ocap = 0;
  for (;;) {
    MPI_Message msg;
    MPI_Status st;
    int n;
    MPI_Mprobe(0, MPI_ANY_TAG, comm, &msg, &st);
    MPI_Get_count(&st, MPI_BYTE, &n);
    if (grow(&in, &icap, (size_t)n + 1) != 0)
      MPI_Abort(MPI_COMM_WORLD, 2);
    MPI_Mrecv(in, n, MPI_BYTE, &msg, &st);
    if (st.MPI_TAG == CONC__MPI_TAG_STOP)
      break;
    size_t len = 0;
    if (run_chunk(in, &out, &ocap, &len) != 0) {
      fprintf(stderr, "libconc_mpi: worker out of memory\n");
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    MPI_Send(out, (int)len, MPI_BYTE, 0, CONC__MPI_TAG_RESULT, comm);
  }
  free(in);
  free(out);
  if (parent != MPI_COMM_NULL)
    MPI_Comm_disconnect(&parent);
  MPI_Finalize();
  exit(0);
}

/* ---- rank 0 ------------------------------------------------------------------ */

int conc__mpi_master_init(MPI_Comm comm, int rank_base, int workers,
                          int inflight) {
  eng.comm = comm;
  eng.rank_base = rank_base;
  eng.workers = workers;
  eng.inflight = inflight < 2 ? 2 : inflight;
  size_t ns = (size_t)workers * (size_t)eng.inflight;
  eng.slots = calloc(ns, sizeof *eng.slots);
  eng.head = calloc((size_t)workers, sizeof *eng.head);
  eng.tail = calloc((size_t)workers, sizeof *eng.tail);
  if (!eng.slots || !eng.head || !eng.tail)
    return CONC_ENOMEM;
  for (size_t i = 0; i < ns; i++)
    eng.slots[i].req = MPI_REQUEST_NULL;
  return 0;
}

void conc__mpi_master_stop(void) {
  pthread_mutex_lock(&eng.mu);
  size_t ns = (size_t)eng.workers * (size_t)eng.inflight;
  for (size_t i = 0; i < ns; i++) {
    MPI_Wait(&eng.slots[i].req, MPI_STATUS_IGNORE);
    free(eng.slots[i].buf);
  }
  for (int w = 0; w < eng.workers; w++)
    MPI_Send(NULL, 0, MPI_BYTE, eng.rank_base + w, CONC__MPI_TAG_STOP,
             eng.comm);
  if (eng.comm != MPI_COMM_WORLD) /* a spawn's intercommunicator */
    MPI_Comm_disconnect(&eng.comm);
  free(eng.slots);
  free(eng.head);
  free(eng.tail);
  free(eng.rbuf);
  eng.slots = NULL;
  eng.workers = 0;
  pthread_mutex_unlock(&eng.mu);
}

int conc__mpi_workers_(void) { return eng.workers; }

/* One call's progress. */
struct call {
  uint32_t task;
  const char *args;
  size_t n, arg_size, result_size, chunk;
  size_t next; /* first item not dealt yet */
  char *results;
  int *errors;
  size_t *result_lens;
  conc_pool_error_t *item_errors;
  conc_pool_error_t first; /* the lowest failed item's detail */
};

static int deal(struct call *c, int w) {
  struct slot *s =
      &eng.slots[(size_t)w * eng.inflight + eng.tail[w] % eng.inflight];
  MPI_Wait(&s->req, MPI_STATUS_IGNORE);
  size_t k = c->n - c->next < c->chunk ? c->n - c->next : c->chunk;
  size_t len = sizeof(conc__mpi_task_hdr_t) + k * c->arg_size;
  if (grow(&s->buf, &s->cap, len) != 0)
    return CONC_ENOMEM;
  conc__mpi_task_hdr_t h = {++eng.seq, c->task, (uint32_t)k,
                            (uint32_t)c->arg_size, (uint32_t)c->result_size};
  memcpy(s->buf, &h, sizeof h);
  memcpy(s->buf + sizeof h, c->args + c->next * c->arg_size, k * c->arg_size);
  s->seq = h.seq;
  s->first = c->next;
  s->nitems = (uint32_t)k;
  c->next += k;
  eng.tail[w]++;
  MPI_Isend(s->buf, (int)len, MPI_BYTE, eng.rank_base + w, CONC__MPI_TAG_TASK,
            eng.comm, &s->req);
  return 0;
}

/* Copy one result message's items into the call; returns the worker. */
static int collect(struct call *c) {
  MPI_Message msg;
  MPI_Status st;
  int n;
  MPI_Mprobe(MPI_ANY_SOURCE, CONC__MPI_TAG_RESULT, eng.comm, &msg, &st);
  MPI_Get_count(&st, MPI_BYTE, &n);
  if (grow(&eng.rbuf, &eng.rcap, (size_t)n) != 0)
    MPI_Abort(MPI_COMM_WORLD, 2); /* the message must be taken */
  MPI_Mrecv(eng.rbuf, n, MPI_BYTE, &msg, &st);
  int w = st.MPI_SOURCE - eng.rank_base;
  struct slot *s =
      &eng.slots[(size_t)w * eng.inflight + eng.head[w]++ % eng.inflight];
  conc__mpi_result_hdr_t h;
  memcpy(&h, eng.rbuf, sizeof h);
  const char *items = eng.rbuf + sizeof h;
  const char *res = items + h.nitems * sizeof(conc__mpi_item_t);
  const char *msgs = res + (size_t)h.nitems * h.result_cap;
  for (uint32_t i = 0; i < h.nitems; i++) {
    conc__mpi_item_t it;
    memcpy(&it, items + i * sizeof it, sizeof it);
    size_t gi = s->first + i;
    if (c->errors)
      c->errors[gi] = it.code;
    if (it.code == 0 && c->item_errors)
      c->item_errors[gi] = (conc_pool_error_t){.index = (long)gi};
    if (it.code == 0) {
      memcpy(c->results + gi * c->result_size, res + (size_t)i * h.result_cap,
             it.len);
      if (c->result_lens)
        c->result_lens[gi] = it.len;
      continue;
    }
    memset(c->results + gi * c->result_size, 0, c->result_size);
    conc_pool_error_t e = {.code = it.code, .index = (long)gi};
    size_t ml = it.len < sizeof e.message - 1 ? it.len : sizeof e.message - 1;
    memcpy(e.message, msgs, ml);
    e.message[ml] = '\0';
    if (c->item_errors)
      c->item_errors[gi] = e;
    if (c->first.index < 0 || (long)gi < c->first.index)
      c->first = e;
    msgs += it.len;
  }
  return w;
}

int conc__mpi_run(conc_pool_func_t fn, const void *args, size_t n,
                  size_t arg_size, size_t result_size, size_t chunksize,
                  void *results, int *errors, size_t *result_lens,
                  conc_pool_error_t *item_errors, conc_pool_error_t *error) {
  int64_t id = conc__mpi_task_id(fn);
  if (id < 0)
    return conc_raise(CONC_EINVAL, "the task function is not registered "
                                   "with CONC_TASK");
  if (arg_size > UINT32_MAX / 2 || result_size > UINT32_MAX / 2)
    return CONC_EOVERFLOW;
  if (n == 0)
    return 0;
  struct call c = {.task = (uint32_t)id,
                   .args = args,
                   .n = n,
                   .arg_size = arg_size,
                   .result_size = result_size,
                   .chunk = chunksize ? chunksize : 1,
                   .results = results,
                   .errors = errors,
                   .result_lens = result_lens,
                   .item_errors = item_errors,
                   .first = {.index = -1}};
  pthread_mutex_lock(&eng.mu);
  size_t chunks = (n + c.chunk - 1) / c.chunk, done = 0;
  int rc = 0;
  for (int k = 0; k < eng.inflight && rc == 0; k++)
    for (int w = 0; w < eng.workers && c.next < n && rc == 0; w++)
      rc = deal(&c, w);
  while (rc == 0 && done < chunks) {
    int w = collect(&c);
    done++;
    if (c.next < n)
      rc = deal(&c, w);
  }
  pthread_mutex_unlock(&eng.mu);
  if (rc != 0) /* out of memory mid-call: the dealt chunks are lost */
    MPI_Abort(MPI_COMM_WORLD, 2);
  if (c.first.index < 0)
    return 0;
  if (error)
    *error = c.first;
  return conc_raise(c.first.code, "%s", c.first.message);
}
