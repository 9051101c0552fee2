/*
 * Pool jobs: the record behind an AsyncResult, an IMapIterator and a sync
 * map. Outcomes (each item's code and length, results) and the error
 * detail (a sparse list of failed items with their messages, signal, exit
 * code and pid) live here; the public AsyncResult and IMapIterator calls
 * read them.
 *
 * Locking protocol: see pool-int.h. A job's outcome fields are guarded by
 * job->mu; `complete` (outcomes final) and `done` (callbacks ran) are
 * published with release order and read without the lock, so every reader
 * of a complete job sees final fields. Waiters sleep on `done` and `seq`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/time.h"
#include "platform-int.h"
#include "pool-int.h"

/* codes[] starts as this byte pattern: one memset marks n items pending. */
#define PENDING_BYTE 0x7f
#define PENDING_CODE 0x7f7f7f7f

struct conc_imap {
  conc_async_result_t *job;
  size_t consumed;
  int64_t deadline_ns; /* executor map: its timeout; 0 for none */
  void (*on_timeout)(conc_async_result_t *j, void *arg);
  void *timeout_arg;
  bool expired;
  long last_failed; /* -1: none */
};

static size_t align16(size_t x) { return (x + 15) & ~(size_t)15; }

static int checked_mul(size_t a, size_t b, size_t *out) {
  if (b && a > SIZE_MAX / b)
    return CONC_EOVERFLOW;
  *out = a * b;
  return 0;
}

int conc__pool_job_new(int kind, conc_pool_func_t fn, const void *in, size_t n,
                       size_t arg_size, size_t result_size, bool copy_in,
                       void *out, conc_async_result_t **jp) {
  bool lens = kind != CONC__K_TYPED, order = kind == CONC__K_IMAP_UNORDERED;
  size_t in_bytes, out_bytes, meta;
  size_t per = sizeof(int) + sizeof(size_t) * ((size_t)lens + (size_t)order);
  if (checked_mul(n, arg_size, &in_bytes) ||
      checked_mul(n, result_size, &out_bytes) || checked_mul(n, per, &meta) ||
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
  size_t *m = (size_t *)(void *)(a + own_in + own_out);
  j->lens = lens ? m : NULL;
  j->order = order ? m + n : NULL;
  j->codes = (int *)(void *)(m + n * ((size_t)lens + (size_t)order));
  memset(j->codes, PENDING_BYTE, n * sizeof(int));
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

static void job_free(conc_async_result_t *j) {
  for (size_t i = 0; i < j->nierrs; i++)
    free(j->ierrs[i].message);
  free(j->ierrs);
  pthread_mutex_destroy(&j->mu);
  free(j->retry);
  free(j->alloc);
  free(j);
}

void conc__pool_job_release(conc_async_result_t *j) {
  if (j && conc__fetch_sub(&j->refs, 1u) == 1u)
    job_free(j);
}

bool conc__pool_job_has_work(const conc_async_result_t *j) {
  return !conc__load_relaxed(&j->complete) && (j->nretry || j->next < j->n);
}

/* ---- outcomes (job->mu held) ------------------------------------------- */

void conc__pool_job_fail_item(conc_async_result_t *j, size_t item, int code,
                              int sig, int exitcode, pid_t pid,
                              const char *msg) {
  j->codes[item] = code;
  if (j->lens)
    j->lens[item] = 0;
  if (j->result_size) /* a failed item has no result: no stale bytes */
    memset(j->out + item * j->result_size, 0, j->result_size);
  if (j->err_index < 0 || (size_t)j->err_index > item) {
    j->err = code;
    j->err_index = (long)item;
  }
  if (j->nierrs == j->capierrs) {
    size_t cap = j->capierrs ? 2 * j->capierrs : 4;
    struct conc__pool_ierr *p = realloc(j->ierrs, cap * sizeof *p);
    if (!p)
      return; /* the code is kept; only the detail is lost */
    j->ierrs = p;
    j->capierrs = cap;
  }
  j->ierrs[j->nierrs++] = (struct conc__pool_ierr){
      .index = item,
      .code = code,
      .signal = sig,
      .exitcode = exitcode,
      .pid = pid,
      .message = msg && *msg ? strdup(msg) : NULL,
  };
}

/* Waiters count themselves before they sleep on `done` or `seq` and the
 * wakers read the count after changing the word (both sequentially
 * consistent), so a completion nobody sleeps on makes no system call. */
static int job_sleep(conc_async_result_t *j, const uint32_t *word,
                     uint32_t expected, int64_t deadline) {
  __atomic_fetch_add(&j->waiters, 1u, __ATOMIC_SEQ_CST);
  int rc = conc__wait_intr(word, expected, deadline, false);
  __atomic_fetch_sub(&j->waiters, 1u, __ATOMIC_SEQ_CST);
  return rc;
}

static void job_wake(conc_async_result_t *j, const uint32_t *word) {
  if (__atomic_load_n(&j->waiters, __ATOMIC_SEQ_CST))
    conc__wake(word, CONC__WAKE_ALL, false);
}

void conc__pool_job_bump(conc_async_result_t *j) {
  __atomic_fetch_add(&j->seq, 1u, __ATOMIC_SEQ_CST);
  job_wake(j, &j->seq);
}

static void job_complete(conc_async_result_t *j, conc_async_result_t **list) {
  conc__store_release(&j->complete, 1u);
  j->cnext = *list;
  *list = j;
}

void conc__pool_job_took(conc_async_result_t *j, size_t first, size_t count,
                         conc_async_result_t **list) {
  if (count == 0)
    return;
  for (size_t i = 0; j->order && i < count; i++)
    j->order[j->ndone + i] = first + i;
  j->ndone += count;
  j->remaining -= count;
  conc__pool_job_bump(j);
  if (j->remaining == 0)
    job_complete(j, list);
}

void conc__pool_job_record(conc_async_result_t *j, size_t item, int code,
                           size_t len, const void *result) {
  if (j->codes[item] != PENDING_CODE)
    return;
  if (code == 0 && result)
    memcpy(j->out + item * j->result_size, result, j->result_size);
  if (code)
    conc__pool_job_fail_item(j, item, code, 0, 0, 0, NULL);
  else
    j->codes[item] = 0;
  if (j->lens)
    j->lens[item] = len;
}

void conc__pool_job_fail_all(conc_async_result_t *j, int code, const char *msg,
                             conc_async_result_t **list) {
  pthread_mutex_lock(&j->mu);
  if (!j->complete) {
    bool first = true;
    for (size_t i = 0; i < j->n; i++) {
      if (j->codes[i] != PENDING_CODE)
        continue;
      /* one detail record for the lot: the first item carries it */
      if (first)
        conc__pool_job_fail_item(j, i, code, 0, 0, 0, msg);
      j->codes[i] = code;
      if (j->lens)
        j->lens[i] = 0;
      if (j->result_size)
        memset(j->out + i * j->result_size, 0, j->result_size);
      first = false;
      if (j->order)
        j->order[j->ndone] = i;
      j->ndone++;
      j->remaining--;
    }
    job_complete(j, list);
    conc__pool_job_bump(j);
  }
  pthread_mutex_unlock(&j->mu);
}

void conc__pool_finish_jobs(conc_async_result_t *list) {
  while (list) {
    conc_async_result_t *j = list;
    list = j->cnext;
    conc_pool_callback_t cb = j->err ? j->error_callback : j->callback;
    if (cb)
      cb(j, j->callback_arg);
    if (j->on_done)
      j->on_done(j, j->hook_arg);
    __atomic_store_n(&j->done, 1u, __ATOMIC_SEQ_CST);
    job_wake(j, &j->done);
    conc__pool_job_bump(j);
    conc__pool_job_release(j); /* the pool's reference */
  }
}

/* ---- error detail -------------------------------------------------------- */

/* Item i's detail; job complete or job->mu held. */
static void detail_of(const conc_async_result_t *j, size_t i,
                      conc_pool_error_t *e) {
  memset(e, 0, sizeof *e);
  e->index = (long)i;
  int code = j->codes[i];
  e->code = code == PENDING_CODE ? 0 : code;
  if (e->code == 0)
    return;
  const struct conc__pool_ierr *found = NULL, *bulk = NULL;
  for (size_t k = 0; k < j->nierrs && !found; k++) {
    const struct conc__pool_ierr *x = &j->ierrs[k];
    if (x->index == i)
      found = x;
    else if (!bulk && x->code == code && x->message && !x->pid && !x->signal)
      bulk = x; /* fail_all's one message for all its items */
  }
  if (found) {
    e->signal = found->signal;
    e->exitcode = found->exitcode;
    e->pid = found->pid;
  }
  const char *msg = found && found->message ? found->message
                    : !found && bulk        ? bulk->message
                                            : NULL;
  snprintf(e->message, sizeof e->message, "%s", msg ? msg : "");
}

int conc_async_result_error(conc_async_result_t *r, size_t i,
                            conc_pool_error_t *e) {
  if (!r || !e || (i != CONC_POOL_FIRST_ERROR && i >= r->n))
    return CONC_EINVAL;
  if (!conc__load_acquire(&r->complete))
    return CONC_ESTATE;
  if (i == CONC_POOL_FIRST_ERROR) {
    if (r->err_index < 0) {
      memset(e, 0, sizeof *e);
      e->index = -1;
      return 0;
    }
    i = (size_t)r->err_index;
  }
  detail_of(r, i, e);
  return 0;
}

/* Sync map's reports (job complete). */
void conc__pool_job_report(conc_async_result_t *j,
                           const conc_pool_map_opts_t *o,
                           conc_pool_error_t *error) {
  if (error && j->err_index >= 0)
    detail_of(j, (size_t)j->err_index, error);
  if (!o)
    return;
  if (o->errors)
    memcpy(o->errors, j->codes, j->n * sizeof(int));
  if (o->result_lens && j->lens)
    memcpy(o->result_lens, j->lens, j->n * sizeof(size_t));
  if (o->item_errors)
    for (size_t i = 0; i < j->n; i++) {
      if (j->codes[i] == 0) {
        memset(&o->item_errors[i], 0, sizeof o->item_errors[i]);
        o->item_errors[i].index = (long)i;
      } else {
        detail_of(j, i, &o->item_errors[i]);
      }
    }
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
  conc__pool_help(r, dl);
  while (!conc__load_acquire(&r->done)) {
    rc = job_sleep(r, &r->done, 0, dl);
    bool done = conc__load_acquire(&r->done);
    if ((rc == CONC_ETIMEDOUT || rc == CONC_EINTR) && !done)
      return rc;          /* CONC_EINTR: a conc_interrupt() (docs/design.md) */
    if (rc == CONC_EINTR) /* done as well: the request ends the next wait */
      __atomic_store_n(&conc__intr_pending, 1u, __ATOMIC_RELEASE);
  }
  return 0;
}

static size_t value_len(const conc_async_result_t *r) {
  return r->kind == CONC__K_APPLY ? r->lens[0] : r->n * r->result_size;
}

int conc_async_result_get(conc_async_result_t *r, double timeout, void *out,
                          size_t out_size) {
  int rc = conc_async_result_wait(r, timeout);
  if (rc)
    return rc;
  if (r->err && r->kind == CONC__K_APPLY)
    return r->err;
  size_t len = value_len(r);
  if (out && out_size < len)
    return CONC_ETOOSHORT;
  if (out && len)
    memcpy(out, r->out, len);
  return r->err;
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
  if (!r || !conc__load_acquire(&r->complete) ||
      (r->err && r->kind == CONC__K_APPLY))
    return NULL;
  if (len)
    *len = value_len(r);
  return r->out;
}

void conc_async_result_release(conc_async_result_t *r) {
  conc__pool_job_release(r);
}

size_t conc__pool_chunksize(const conc_async_result_t *r) {
  return r->chunksize;
}

/* ---- public: IMapIterator ------------------------------------------------ */

int conc__pool_imap_new(conc_async_result_t *j, conc_imap_t **out) {
  conc_imap_t *it = calloc(1, sizeof *it);
  if (!it)
    return CONC_ENOMEM;
  it->job = j;
  it->last_failed = -1;
  *out = it;
  return 0;
}

void conc__pool_imap_set_deadline(conc_imap_t *it, int64_t deadline_ns,
                                  void (*on_timeout)(conc_async_result_t *,
                                                     void *),
                                  void *arg) {
  it->deadline_ns = deadline_ns;
  it->on_timeout = on_timeout;
  it->timeout_arg = arg;
}

/* The next item for the iterator, or -1; job->mu held. */
static long imap_pick(conc_imap_t *it) {
  conc_async_result_t *j = it->job;
  if (j->kind == CONC__K_IMAP_UNORDERED)
    return it->consumed < j->ndone ? (long)j->order[it->consumed] : -1;
  return j->codes[it->consumed] != PENDING_CODE ? (long)it->consumed : -1;
}

/* The iterator's deadline: the earlier of next()'s and the map's. */
static int imap_deadline(conc_imap_t *it, double timeout, conc_deadline_t *dl,
                         bool *map_limited) {
  int rc = conc_deadline_after(timeout, dl);
  *map_limited = false;
  if (rc || !it->deadline_ns)
    return rc;
  if (it->deadline_ns < *dl) {
    *dl = it->deadline_ns;
    *map_limited = true;
  }
  return 0;
}

/* The executor map's timeout passed: cancel the rest, end the iteration. */
static int imap_expire(conc_imap_t *it) {
  it->expired = true;
  if (it->on_timeout)
    it->on_timeout(it->job, it->timeout_arg);
  return CONC_ETIMEDOUT;
}

int conc_imap_next(conc_imap_t *it, double timeout, void *out, size_t *index) {
  if (!it || isnan(timeout))
    return CONC_EINVAL;
  conc_async_result_t *j = it->job;
  if (it->consumed >= j->n || it->expired)
    return it->expired ? CONC_ETIMEDOUT : CONC_EEOF;
  conc_deadline_t dl;
  bool map_limited;
  int rc = imap_deadline(it, timeout, &dl, &map_limited);
  if (rc)
    return rc;
  pthread_mutex_lock(&j->mu);
  long k;
  while ((k = imap_pick(it)) < 0) {
    uint32_t seen = conc__load_acquire(&j->seq);
    pthread_mutex_unlock(&j->mu);
    /* in order: the chunk holding the next item is collected here, as get
     * does; in completion order any chunk may come first (the result
     * thread's) */
    if (j->kind == CONC__K_IMAP)
      conc__pool_help_item(j, it->consumed, dl);
    rc = job_sleep(j, &j->seq, seen, dl);
    pthread_mutex_lock(&j->mu);
    if (rc == CONC_EINTR) {
      if ((k = imap_pick(it)) < 0) {
        pthread_mutex_unlock(&j->mu);
        return CONC_EINTR;
      }
      /* an item arrived as well: it wins, the request ends the next wait */
      __atomic_store_n(&conc__intr_pending, 1u, __ATOMIC_RELEASE);
    }
    if (rc == CONC_ETIMEDOUT && (k = imap_pick(it)) < 0) {
      pthread_mutex_unlock(&j->mu);
      return map_limited ? imap_expire(it) : CONC_ETIMEDOUT;
    }
    if (k >= 0)
      break;
  }
  it->consumed++;
  int code = j->codes[k];
  if (code == 0 && out && j->result_size)
    memcpy(out, j->out + (size_t)k * j->result_size, j->result_size);
  if (code)
    it->last_failed = k;
  pthread_mutex_unlock(&j->mu);
  if (code == 0 && index)
    *index = (size_t)k;
  return code;
}

int conc_imap_error(conc_imap_t *it, conc_pool_error_t *e) {
  if (!it || !e)
    return CONC_EINVAL;
  if (it->last_failed < 0)
    return CONC_ESTATE;
  pthread_mutex_lock(&it->job->mu);
  detail_of(it->job, (size_t)it->last_failed, e);
  pthread_mutex_unlock(&it->job->mu);
  return 0;
}

conc_async_result_t *conc_imap_result(conc_imap_t *it) {
  return it ? it->job : NULL;
}

void conc_imap_release(conc_imap_t *it) {
  if (!it)
    return;
  if (it->on_timeout && it->consumed < it->job->n &&
      !conc__load_acquire(&it->job->complete))
    it->on_timeout(it->job, it->timeout_arg); /* executor map: cancel */
  conc__pool_job_release(it->job);
  free(it);
}
