/*
 * The MPI engine: the worker ranks' serve loop, and rank 0's share of MPI
 * that every pool uses (the communicator, the thread level, the pools'
 * tags, the end of the job).
 *
 * A worker serves the messages of rank 0 in arrival order (MPI keeps the
 * order of one sender's messages on one communicator), whichever pool sent
 * them: it runs a chunk and replies on the chunk's tag, runs an
 * initializer when a pool starts on it, and answers the chunks of a pool
 * whose initializer failed there with SKIPPED, so that rank 0 always gets
 * one reply per chunk. Replies are blocking sends: rank 0 always has a
 * receive pending for a chunk it sent (mpi_transport.c).
 *
 * Locking protocol. A worker rank has one thread. On rank 0, `eng` is
 * written once by conc__mpi_master_init (before any pool) and read-only
 * until conc__mpi_master_stop (after every pool has ended, at exit); the
 * tag table is guarded by tag_mu. Under MPI_THREAD_MULTIPLE the pools call
 * MPI from any thread; otherwise every MPI call on rank 0 after start-up is
 * made under mpi_mu (conc__mpi_lock), which is never held while blocking.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "error-int.h"
#include "mpi-int.h"

static struct {
  MPI_Comm comm;
  int workers;
  bool multiple;
  int tag_ub;
} eng;

static pthread_mutex_t mpi_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t tag_mu = PTHREAD_MUTEX_INITIALIZER;
static int *tags_used;
static size_t ntags, captags;
static int tag_next = CONC__MPI_TAG_POOL;

int conc__mpi_grow(char **buf, size_t *cap, size_t need) {
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

/* What a worker keeps per pool that has an initializer: whether it failed
 * here, and the copy of its argument (the initializer may keep it). */
struct kept {
  int tag;
  bool failed;
  void *arg;
};
static struct kept *kept;
static size_t nkept, capkept;

static struct kept *kept_of(int tag) {
  for (size_t i = 0; i < nkept; i++)
    if (kept[i].tag == tag)
      return &kept[i];
  return NULL;
}

static void reply(MPI_Comm comm, int tag, const void *buf, size_t len) {
  MPI_Send(buf, (int)len, MPI_BYTE, 0, tag, comm);
}

static void oom(void) {
  fprintf(stderr, "libconc_mpi: worker out of memory\n");
  MPI_Abort(MPI_COMM_WORLD, 2);
}

/* Run one item; its code, with the message the task raised (or ours), as
 * the local Pool's workers report it. */
static int run_item(conc_pool_func_t fn, const conc__mpi_msg_t *h,
                    const char *arg, char *res, size_t *len, char **msg) {
  *msg = NULL;
  *len = h->result_cap;
  if (!fn) {
    *msg = strdup("the task is not registered with CONC_TASK on this rank");
    return CONC_EINVAL;
  }
  conc__raise_clear();
  int rc = fn(arg, h->arg_size, res, h->result_cap, len);
  char buf[CONC_POOL_MESSAGE_MAX];
  if (rc < 0) {
    *msg = conc__raise_take(rc);
    return rc;
  }
  if (rc > 0)
    snprintf(buf, sizeof buf, "task returned %d", rc);
  else if (*len > h->result_cap)
    snprintf(buf, sizeof buf,
             "result of %zu bytes exceeds the declared capacity of %u bytes",
             *len, h->result_cap);
  else
    return 0;
  *msg = strdup(buf);
  return rc > 0 ? CONC_EFAILED : CONC_EMSGSIZE;
}

/* Run one chunk from `in` and build its RESULT in *out. */
static size_t run_chunk(const char *in, char **out, size_t *ocap) {
  conc__mpi_msg_t h;
  memcpy(&h, in, sizeof h);
  conc_pool_func_t fn = conc__mpi_task_fn(h.task);
  size_t items_off = sizeof h;
  size_t res_off = items_off + h.nitems * sizeof(conc__mpi_item_t);
  size_t len = res_off + (size_t)h.nitems * h.result_cap;
  if (conc__mpi_grow(out, ocap, len) != 0)
    oom();
  h.kind = CONC__MPI_RESULT;
  memcpy(*out, &h, sizeof h);
  const char *args = in + sizeof h;
  for (uint32_t i = 0; i < h.nitems; i++) {
    size_t rlen;
    char *msg;
    int code = run_item(fn, &h, args + (size_t)i * h.arg_size,
                        *out + res_off + (size_t)i * h.result_cap, &rlen, &msg);
    conc__mpi_item_t it = {code, code ? 0 : (uint32_t)rlen};
    if (code) {
      size_t ml = msg ? strnlen(msg, CONC_POOL_MESSAGE_MAX - 1) : 0;
      if (conc__mpi_grow(out, ocap, len + ml) != 0)
        oom();
      memcpy(*out + len, msg, ml);
      len += ml;
      it.len = (uint32_t)ml;
      free(msg);
    }
    memcpy(*out + items_off + i * sizeof it, &it, sizeof it);
  }
  return len;
}

/* A pool with an initializer starts on this rank: run it, keep its
 * argument, and tell rank 0 how it went. */
static void run_init(MPI_Comm comm, int tag, const char *in) {
  conc__mpi_msg_t h;
  memcpy(&h, in, sizeof h);
  if (nkept == capkept) {
    size_t cap = capkept ? 2 * capkept : 8;
    struct kept *k = realloc(kept, cap * sizeof *k);
    if (!k)
      oom();
    kept = k;
    capkept = cap;
  }
  struct kept *k = kept_of(tag);
  if (!k) {
    k = &kept[nkept++];
    *k = (struct kept){.tag = tag};
  }
  free(k->arg); /* a replacement worker of the same pool runs it again */
  k->arg = h.arg_size ? malloc(h.arg_size) : NULL;
  if (h.arg_size && !k->arg)
    oom();
  if (h.arg_size)
    memcpy(k->arg, in + sizeof h, h.arg_size);
  int (*fn)(void *) = conc__mpi_init_fn(h.task);
  conc__raise_clear();
  int rc = fn ? fn(k->arg) : CONC_EINVAL;
  k->failed = rc < 0;
  char out[sizeof h + CONC_POOL_MESSAGE_MAX];
  h.kind = k->failed ? CONC__MPI_INIT_FAILED : CONC__MPI_INIT_OK;
  memcpy(out, &h, sizeof h);
  size_t len = sizeof h;
  if (k->failed) {
    char *m = fn ? conc__raise_take(rc) : NULL;
    const char *s = m ? m : fn ? conc_strerror(rc) : "initializer unknown";
    size_t ml = strnlen(s, CONC_POOL_MESSAGE_MAX - 1);
    memcpy(out + len, s, ml);
    len += ml;
    free(m);
  }
  reply(comm, tag, out, len);
}

static void forget(int tag) {
  struct kept *k = kept_of(tag);
  if (!k)
    return;
  free(k->arg);
  *k = kept[--nkept];
}

static void serve_one(MPI_Comm comm, int tag, const char *in, char **out,
                      size_t *ocap) {
  conc__mpi_msg_t h;
  memcpy(&h, in, sizeof h);
  if (h.kind == CONC__MPI_INIT) {
    run_init(comm, tag, in);
  } else if (h.kind == CONC__MPI_FORGET) {
    forget(tag);
  } else if (h.kind == CONC__MPI_CHUNK) {
    struct kept *k = kept_of(tag);
    if (k && k->failed) {
      h.kind = CONC__MPI_SKIPPED;
      reply(comm, tag, &h, sizeof h);
      return;
    }
    size_t len = run_chunk(in, out, ocap);
    reply(comm, tag, *out, len);
  }
}

void conc__mpi_serve(MPI_Comm comm) {
  char *in = NULL, *out = NULL;
  size_t icap = 0, ocap = 0;
  for (;;) {
    MPI_Message msg;
    MPI_Status st;
    int n;
    MPI_Mprobe(0, MPI_ANY_TAG, comm, &msg, &st);
    MPI_Get_count(&st, MPI_BYTE, &n);
    if (conc__mpi_grow(&in, &icap, (size_t)n + sizeof(conc__mpi_msg_t)) != 0)
      oom();
    MPI_Mrecv(in, n, MPI_BYTE, &msg, &st);
    if (st.MPI_TAG == CONC__MPI_TAG_STOP)
      break;
    if ((size_t)n >= sizeof(conc__mpi_msg_t))
      serve_one(comm, st.MPI_TAG, in, &out, &ocap);
  }
  free(in);
  free(out);
  while (nkept)
    forget(kept[0].tag);
  free(kept);
  MPI_Comm parent;
  MPI_Comm_get_parent(&parent);
  if (parent != MPI_COMM_NULL) { /* spawned: comm merged parent and us */
    MPI_Comm_free(&comm);
    MPI_Comm_disconnect(&parent);
  }
  MPI_Finalize();
  exit(0);
}

/* ---- rank 0 ------------------------------------------------------------------ */

void conc__mpi_master_init(MPI_Comm comm, int workers, bool multiple) {
  eng.comm = comm;
  eng.workers = workers;
  eng.multiple = multiple;
  int *ub = NULL, flag = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
  eng.tag_ub = flag && ub ? *ub : 32767;
}

void conc__mpi_master_stop(void) {
  conc__mpi_drain_all();
  for (int w = 1; w <= eng.workers; w++)
    MPI_Send(NULL, 0, MPI_BYTE, w, CONC__MPI_TAG_STOP, eng.comm);
  if (eng.comm != MPI_COMM_WORLD) /* a spawn's merged communicator */
    MPI_Comm_free(&eng.comm);
  eng.workers = 0;
  free(tags_used);
  tags_used = NULL;
}

int conc__mpi_workers_(void) { return eng.workers; }
MPI_Comm conc__mpi_comm(void) { return eng.comm; }
bool conc__mpi_multiple(void) { return eng.multiple; }

void conc__mpi_lock(void) {
  if (!eng.multiple)
    pthread_mutex_lock(&mpi_mu);
}

void conc__mpi_unlock(void) {
  if (!eng.multiple)
    pthread_mutex_unlock(&mpi_mu);
}

static bool tag_in_use(int tag) {
  for (size_t i = 0; i < ntags; i++)
    if (tags_used[i] == tag)
      return true;
  return false;
}

/* Tags go round: a pool's tag is free again only once the pool took every
 * reply it was due (mpi_transport.c drains them), so a reused tag never
 * meets a stale message. */
int conc__mpi_tag_new(int *tag) {
  int rc = 0;
  pthread_mutex_lock(&tag_mu);
  size_t span = (size_t)(eng.tag_ub - CONC__MPI_TAG_POOL) + 1;
  if (ntags >= span) {
    rc = conc_raise(CONC_EAGAIN, "every MPI tag is taken by a live pool");
  } else if (ntags == captags) {
    size_t cap = captags ? 2 * captags : 16;
    int *t = realloc(tags_used, cap * sizeof *t);
    if (!t)
      rc = CONC_ENOMEM;
    else {
      tags_used = t;
      captags = cap;
    }
  }
  if (rc == 0) {
    while (tag_in_use(tag_next))
      tag_next = tag_next >= eng.tag_ub ? CONC__MPI_TAG_POOL : tag_next + 1;
    *tag = tag_next;
    tags_used[ntags++] = tag_next;
    tag_next = tag_next >= eng.tag_ub ? CONC__MPI_TAG_POOL : tag_next + 1;
  }
  pthread_mutex_unlock(&tag_mu);
  return rc;
}

void conc__mpi_tag_free(int tag) {
  pthread_mutex_lock(&tag_mu);
  for (size_t i = 0; i < ntags; i++)
    if (tags_used[i] == tag) {
      tags_used[i] = tags_used[--ntags];
      break;
    }
  pthread_mutex_unlock(&tag_mu);
}
