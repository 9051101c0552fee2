/*
 * Pool internals shared by the pool's files:
 *
 *   pool.c         lifecycle (init, close, terminate, join, destroy), the
 *                  exit-time registry and the result ("handler") thread
 *   pool_job.c     jobs (the AsyncResult record): outcomes, error detail,
 *                  completion, the public AsyncResult calls
 *   pool_map.c     submission (apply, map, starmap, imap, the typed map) and
 *                  the dispatch of queued chunks to workers
 *   pool_worker.c  the fork + shared-memory transport (conc__pool_shm):
 *                  the parent's side; pool_child.c the worker processes'
 *                  side; pool_shm-int.h the mapping they share
 *   procexec.c     ProcessPoolExecutor, on top of the pool core
 *
 * The core never touches a worker's memory or process directly: it hands
 * chunks to workers and learns their outcome through a transport
 * (conc__pool_transport_t), so another transport (MPI ranks, say) plugs in
 * without changing the scheduling, the error detail or the death handling.
 *
 * Locking protocol (for all of the files above). core->mu guards the pool
 * state, the queue of jobs with undispatched items, the worker table and
 * the transport's per-lane bookkeeping and the typed map's shared batch;
 * workers are spawned and reaped by the handler thread only (so
 * PR_SET_PDEATHSIG follows the pool's life; the fork transport's spare is
 * forked by a thread of its own that lives as long), but submitters
 * dispatch to idle workers under core->mu. Each job has its own mutex
 * guarding its outcome fields, so results outlive the pool; the lock order
 * is core->mu, then job->mu, then the fork transport's spare_mu. Nothing
 * blocks while holding either, except the fork of a replacement worker
 * (when no spare is ready). Waiters count themselves and sleep on job
 * words with conc__wait; callbacks run with no lock held.
 */
#ifndef CONC_POOL_INT_H
#define CONC_POOL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/pool.h"
#include "conc/process.h"

#define CONC__POOL_LANES 2 /* chunks in flight per worker */

enum { CONC__P_RUN, CONC__P_CLOSE, CONC__P_TERMINATE };
enum {
  CONC__K_APPLY,
  CONC__K_MAP,
  CONC__K_IMAP,
  CONC__K_IMAP_UNORDERED,
  CONC__K_TYPED /* typed map: no per-item lengths, codes kept sparse */
};
/* What a transport reports about a lane's chunk. */
enum { CONC__LANE_QUEUED, CONC__LANE_RUNNING, CONC__LANE_DONE };

struct conc__pool_range {
  size_t start, count;
};

/* One failed item's detail (sparse: failures only). */
struct conc__pool_ierr {
  size_t index;
  int code, signal, exitcode;
  pid_t pid;
  char *message; /* malloc'd, may be NULL */
};

struct conc_async_result {
  pthread_mutex_t mu;
  uint32_t refs;
  uint32_t complete; /* results final (callbacks may read them) */
  uint32_t done;     /* callbacks ran: get/wait/ready see this */
  uint32_t seq;      /* bumped on every item finished (imap waiters) */
  uint32_t waiters;  /* threads asleep on done or seq: wakes only then */
  int kind;
  conc_pool_func_t fn;
  const unsigned char *in;
  unsigned char *out;
  size_t n, arg_size, result_size, chunksize;
  /* dispatch state (core->mu) */
  size_t next;
  struct conc__pool_range *retry;
  size_t nretry, capretry;
  bool queued;
  struct conc_async_result *qnext;
  /* outcomes (job->mu) */
  size_t remaining, ndone;
  int *codes;   /* NULL for K_TYPED */
  size_t *lens; /* NULL for K_TYPED */
  size_t *order;
  int err;        /* the lowest-index failure's code */
  long err_index; /* ... and its index, -1 for none */
  struct conc__pool_ierr *ierrs;
  size_t nierrs, capierrs;
  conc_pool_callback_t callback, error_callback;
  void *callback_arg;
  /* procexec: on_start runs (core->mu held) before the job's first chunk
   * is sent, false drops it as cancelled; on_done runs once complete, with
   * no lock held, after the callbacks. */
  bool (*on_start)(struct conc_async_result *j, void *arg);
  void (*on_done)(struct conc_async_result *j, void *arg);
  void *hook_arg;
  bool started;
  struct conc__pool_core *core;    /* set by submit; see conc__pool_help */
  struct conc_async_result *cnext; /* handler's list of completed jobs */
  void *alloc;                     /* owned copies (input, output) */
};

struct conc__pool_core;

struct conc__pool_worker {
  conc_process_t proc; /* the fork transport's process */
  struct conc__pool_core *core;
  int index;
  int fd;        /* turns readable when the worker ends; -1: no worker */
  pid_t pid;     /* 0 when the slot has no worker */
  char name[64]; /* "ForkPoolWorker-3", for reports */
  bool exited;   /* its sentinel fired */
  bool retiring;
  unsigned tasks, seq;
  struct conc__pool_lane {
    conc_async_result_t *job; /* chunk in flight (holds a reference) */
    size_t start, count;
    uint32_t seq; /* the worker's dispatch number of this chunk */
    bool batch;   /* a member of the shared batch (start, count: its range) */
  } lane[CONC__POOL_LANES];
};

/* How the core reaches its workers. Every call is made with core->mu held
 * (spawn and reap by the handler thread only). */
typedef struct conc__pool_transport {
  const char *name;
  /* Per-pool resources (shared memory, wake-up channel); close frees them. */
  int (*open)(struct conc__pool_core *c);
  void (*close)(struct conc__pool_core *c);
  /* Items of a job that one chunk may carry (0: not even one fits). */
  size_t (*capacity)(struct conc__pool_core *c, const conc_async_result_t *j);
  /* Start worker w: set w->fd (turns readable at its end), w->pid and
   * w->name. */
  int (*spawn)(struct conc__pool_core *c, struct conc__pool_worker *w);
  /* The worker ended (or was stopped): wait for it, free what it held and
   * return its exit code (-N: signal N; CONC_EXITCODE_NONE: unknown). */
  int (*reap)(struct conc__pool_core *c, struct conc__pool_worker *w);
  /* Ask the worker to stop now (SIGTERM), or force it (SIGKILL). */
  void (*stop)(struct conc__pool_core *c, struct conc__pool_worker *w,
               bool force);
  /* Wait up to `timeout` seconds for it to end: 0 or CONC_ETIMEDOUT. */
  int (*join)(struct conc__pool_core *c, struct conc__pool_worker *w,
              double timeout);
  /* Hand items [start, start + count) of j to lane k of w. */
  void (*send)(struct conc__pool_core *c, struct conc__pool_worker *w, int k,
               conc_async_result_t *j, size_t start, size_t count);
  /* The lane's state (CONC__LANE_*) and, in *progress, the items of its
   * chunk that finished (an early stop may leave some unrun). */
  int (*lane_state)(struct conc__pool_core *c, struct conc__pool_worker *w,
                    int k, uint32_t *progress);
  /* Move the outcomes of the first `upto` items of lane k's chunk into its
   * job; job->mu held. */
  void (*harvest)(struct conc__pool_core *c, struct conc__pool_worker *w, int k,
                  uint32_t upto);
  /* The lane is free again (and anyone watching it is released). */
  void (*reset_lane)(struct conc__pool_core *c, struct conc__pool_worker *w,
                     int k);
  /* The worker reported that its initializer failed: copy its message. */
  bool (*init_failed)(struct conc__pool_core *c, struct conc__pool_worker *w,
                      char *msg, size_t len);
  void (*retire)(struct conc__pool_core *c, struct conc__pool_worker *w);
  /* Wait (no lock held) until a chunk may be done, a worker may have died
   * or the handler was woken; at most timeout_ms (-1: no limit). */
  void (*wait)(struct conc__pool_core *c, int timeout_ms);
  void (*wake)(struct conc__pool_core *c);
  /* apply's direct path (may be NULL): sleep until lane k of w no longer
   * runs the chunk it ran at dispatch number `seq`, or the deadline
   * passes. No lock held. */
  void (*await_lane)(struct conc__pool_core *c, struct conc__pool_worker *w,
                     int k, uint32_t seq, int64_t deadline);
  /* A caller collects lane k's chunk (dispatch number seq) itself (on), or
   * leaves it to the result thread again (off); with await_lane. */
  void (*watch)(struct conc__pool_core *c, struct conc__pool_worker *w, int k,
                uint32_t seq, bool on);
  /* Optional (NULL: every idle worker is alike): true when idle worker w
   * would see a chunk at once (it is not asleep), so that dispatch prefers
   * it to one that needs waking. */
  bool (*awake)(struct conc__pool_core *c, struct conc__pool_worker *w);
  /* Optional: the handler is about to end, every worker reaped: stop what
   * the transport keeps besides them (the fork transport's spare). No lock
   * held. */
  void (*quiesce)(struct conc__pool_core *c);
  /* Optional shared batches for the typed map (all NULL: chunks only). A
   * batch's items sit in one area every worker reads; each member (a lane
   * joined to it) claims `grain` items at a time with a fetch-and-add and
   * writes their results in place until none is left, then reports DONE;
   * harvest(UINT32_MAX) then takes its failures. Offsets are relative to
   * the batch's start. batch_capacity: the items of j one batch holds (0:
   * none); batch_open copies items [start, start + count) of j in. */
  size_t (*batch_capacity)(struct conc__pool_core *c,
                           const conc_async_result_t *j);
  void (*batch_open)(struct conc__pool_core *c, conc_async_result_t *j,
                     size_t start, size_t count, size_t grain);
  void (*batch_join)(struct conc__pool_core *c, struct conc__pool_worker *w,
                     int k);
  /* Items claimed so far (at most the batch's count). */
  size_t (*batch_claimed)(struct conc__pool_core *c);
  /* The grain lane k's member is in ([*gstart, + *gcount), *progress of
   * its items finished; *gcount 0: none), once it ended or stopped. */
  void (*batch_member)(struct conc__pool_core *c, struct conc__pool_worker *w,
                       int k, size_t *gstart, size_t *gcount,
                       uint32_t *progress);
  /* Whether the grain holding item i was finished; `mark` marks it so. */
  bool (*batch_grain_done)(struct conc__pool_core *c, size_t i, bool mark);
  /* Copy the results of items [from, from + count) into j->out. */
  void (*batch_copy_out)(struct conc__pool_core *c, conc_async_result_t *j,
                         size_t batch_start, size_t from, size_t count);
} conc__pool_transport_t;

/* The fork + MAP_SHARED transport (pool_worker.c). */
extern const conc__pool_transport_t conc__pool_shm;

struct conc__pool_core {
  pthread_mutex_t mu;
  const conc__pool_transport_t *tp;
  void *tp_state; /* the transport's own */
  int state;
  pid_t creator;
  int nworkers;
  int maxtasks;
  int (*initializer)(void *);
  void *initarg;
  size_t buf_size;
  struct conc__pool_worker *workers;
  conc_async_result_t *qhead, *qtail;
  size_t busy; /* lanes with a chunk in flight */
  /* The typed map's shared batch in progress (job NULL: none). */
  struct conc__pool_batch {
    conc_async_result_t *job; /* a reference */
    size_t start, count, grain;
    int members;                    /* lanes in it not yet collected */
    struct conc__pool_range *holes; /* items not to copy back (requeued,
                                       or failed by a death) */
    size_t nholes, capholes, hole_items;
  } batch;
  unsigned name_counter;
  /* Worker death policy: false fails the dead worker's item only; true
   * breaks the pool (ProcessPoolExecutor's BrokenProcessPool). */
  bool break_on_death;
  int broken; /* 0, else the code every job now fails with */
  char broken_msg[CONC_POOL_MESSAGE_MAX];
  const char *worker_prefix; /* "ForkPoolWorker" */
  pthread_t thread;
  bool joined;
  uint32_t started; /* 0 pending, 1 running, 2 failed */
  int start_err;
  uint32_t finished; /* handler has ended */
  struct conc__pool_core *gnext, *gprev;
};

typedef struct conc__pool_core conc__pool_core_t;

/* How a worker died, for the item it was running. */
struct conc__pool_death {
  int code; /* CONC_EWORKERDIED, or CONC_EBROKENPOOL */
  int signal, exitcode;
  pid_t pid;
  const char *message;
};

/* ---- pool.c --------------------------------------------------------------- */

typedef struct conc__pool_cfg {
  const conc__pool_transport_t *transport; /* NULL: conc__pool_shm */
  int processes, maxtasks;
  int (*initializer)(void *);
  void *initarg;
  size_t buffer_size;
  bool break_on_death;
  const char *worker_prefix;
} conc__pool_cfg_t;

int conc__pool_core_new(const conc__pool_cfg_t *cfg, conc__pool_core_t **out);
void conc__pool_core_terminate(conc__pool_core_t *c);
void conc__pool_core_close(conc__pool_core_t *c);
void conc__pool_core_wait_finished(conc__pool_core_t *c);
void conc__pool_core_free(conc__pool_core_t *c);
/* terminate (a no-op once finished), unregister, free. */
void conc__pool_core_destroy(conc__pool_core_t *c);
/* Fill pids[0..cap) with the live workers' pids; returns their number. */
int conc__pool_core_pids(conc__pool_core_t *c, pid_t *pids, size_t cap);
conc__pool_core_t *conc__pool_core_of(conc_pool_t *pool, int *err);
/* conc_pool_init with a configuration (another transport, say). */
int conc__pool_init_with(conc_pool_t *pool, const conc__pool_cfg_t *cfg);
/* procexec.c: conc_process_executor_init on another transport (NULL: the
 * fork transport); libconc_mpi's executor. */
int conc__process_executor_init_with(conc_process_executor_t *ex,
                                     const conc_process_executor_opts_t *opts,
                                     const conc__pool_transport_t *tp);

/* ---- pool_job.c ------------------------------------------------------------ */

int conc__pool_job_new(int kind, conc_pool_func_t fn, const void *in, size_t n,
                       size_t arg_size, size_t result_size, bool copy_in,
                       void *out, conc_async_result_t **jp);
void conc__pool_job_release(conc_async_result_t *j);
/* job->mu held for these four. */
void conc__pool_job_record(conc_async_result_t *j, size_t item, int code,
                           size_t len, const void *result);
void conc__pool_job_fail_item(conc_async_result_t *j, size_t item, int code,
                              int sig, int exitcode, pid_t pid,
                              const char *msg);
void conc__pool_job_took(conc_async_result_t *j, size_t first, size_t count,
                         conc_async_result_t **list);
void conc__pool_job_bump(conc_async_result_t *j);
/* Fail every unfinished item with `code` (terminate, broken pool). */
void conc__pool_job_fail_all(conc_async_result_t *j, int code, const char *msg,
                             conc_async_result_t **list);
/* A sync map's reports: opts' arrays and the first failure (complete). */
void conc__pool_job_report(conc_async_result_t *j,
                           const conc_pool_map_opts_t *o,
                           conc_pool_error_t *error);
/* An iterator over j (takes over the caller's reference). */
int conc__pool_imap_new(conc_async_result_t *j, conc_imap_t **out);
/* Executor map: the iteration's own deadline; on_timeout cancels the rest
 * (also called when the iterator is released before the end). */
void conc__pool_imap_set_deadline(conc_imap_t *it, int64_t deadline_ns,
                                  void (*on_timeout)(conc_async_result_t *,
                                                     void *),
                                  void *arg);
/* Run callbacks (no lock held) and publish `done`. */
void conc__pool_finish_jobs(conc_async_result_t *list);
bool conc__pool_job_has_work(const conc_async_result_t *j);

/* ---- pool_map.c ----------------------------------------------------------- */

/* core->mu held: */
void conc__pool_dispatch_all(conc__pool_core_t *c, conc_async_result_t **list);
conc_async_result_t *conc__pool_next_job(conc__pool_core_t *c);
void conc__pool_queue_pop(conc__pool_core_t *c);
void conc__pool_requeue(conc__pool_core_t *c, conc_async_result_t *j,
                        size_t start, size_t count, conc_async_result_t **list);
/* Validate and queue j (the pool takes a reference); chunksize 0: default. */
int conc__pool_submit(conc__pool_core_t *c, conc_async_result_t *j,
                      size_t chunksize);
/* Fail the items of j not yet handed to a worker with CONC_ECANCELED
 * (executor map past its timeout). Takes core->mu. */
void conc__pool_cancel_rest(conc__pool_core_t *c, conc_async_result_t *j);
/* Lane k of w leaves the typed map's shared batch (core->mu held): its
 * failures go to the job, what it left unrun runs again (with `death`, the
 * item it was running fails), and the last member to leave copies the
 * batch's results back. The caller then frees the lane. */
void conc__pool_batch_leave(conc__pool_core_t *c, struct conc__pool_worker *w,
                            int k, const struct conc__pool_death *death,
                            conc_async_result_t **list);
/* Collect lane k's finished chunk (core->mu held). */
void conc__pool_collect(conc__pool_core_t *c, struct conc__pool_worker *w,
                        int k, conc_async_result_t **list);
/* Before a caller sleeps on job j until `deadline`: wait on j's chunks
 * one lane at a time (the worker wakes the caller directly) and collect
 * them in the calling thread, one hop less than through the result
 * thread. Returns when j is done, the deadline passed, or none of j's
 * chunks is in flight (queued behind other work). The job's pool must not
 * be destroyed meanwhile (it cannot be once the job is done: then this
 * returns at once). */
void conc__pool_help(conc_async_result_t *j, int64_t deadline);

/* As conc__pool_help for an ordered imap's next: wait on the chunk that
 * holds item `item` only, and collect it here. */
void conc__pool_help_item(conc_async_result_t *j, size_t item,
                          int64_t deadline);

/* The chunksize a map-family result was split with (tests). */
size_t conc__pool_chunksize(const conc_async_result_t *r);

#endif
