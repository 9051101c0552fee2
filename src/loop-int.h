/*
 * Internal interface of the loop layer: the poller backends (loop_epoll.c,
 * loop_poll.c) behind one table of operations, and the pieces of the loop
 * (loop.c) that the task layer (aio_task.c) and the layers above use.
 *
 * Everything here is confined to the loop's thread except the threadsafe
 * queue, which loop.c guards itself.
 */
#ifndef CONC_LOOP_INT_H
#define CONC_LOOP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>

#include "conc/loop.h"

/* Seconds to nanoseconds, rounded up (a timer never fires early), for
 * 0 < s < CONC_TIMEOUT_MAX; without libm, which libconc does not link. */
static inline int64_t conc__ns_ceil(double s) {
  double v = s * 1e9;
  int64_t i = (int64_t)v;
  return (double)i < v ? i + 1 : i;
}

/* ---- poller backends ----------------------------------------------------- */

enum { CONC__EV_READ = 1, CONC__EV_WRITE = 2, CONC__EV_ERR = 4 };

typedef struct conc__poll_ev {
  int fd;
  uint32_t events; /* CONC__EV_*; ERR/HUP also set READ and WRITE */
} conc__poll_ev_t;

typedef struct conc__poll_ops {
  const char *name;
  /* A new poller in *state: 0, or a negative CONC_E* code. */
  int (*open)(void **state);
  void (*close)(void *state);
  /* Watch fd for `events` (0: stop watching); `old` is what was watched. */
  int (*ctl)(void *state, int fd, uint32_t old, uint32_t events);
  /* Wait up to timeout_ns (-1: forever, 0: poll) and fill at most max
   * events; returns how many, or a negative code (EINTR is 0 events). */
  int (*wait)(void *state, int64_t timeout_ns, conc__poll_ev_t *out, int max);
} conc__poll_ops_t;

extern const conc__poll_ops_t conc__poll_epoll_ops; /* NULL-free on Linux */
extern const conc__poll_ops_t conc__poll_poll_ops;
#ifdef CONC_HAVE_IO_URING
extern const conc__poll_ops_t conc__poll_uring_ops;
#endif

/* ---- handles: everything the loop runs ----------------------------------- */

enum {
  CONC__H_USER = 0, /* cb(arg) */
  CONC__H_DONE,     /* a future's done callback: done(ctx, arg) */
  CONC__H_TASK,     /* a task's step (embedded in the task) */
  CONC__H_IO,       /* an fd watcher's callback (embedded in the watcher) */
};

enum {
  CONC__HS_FREE = 0,
  CONC__HS_READY,     /* in the ready queue */
  CONC__HS_TIMER,     /* in the timer heap */
  CONC__HS_CANCELLED, /* still queued or in the heap, never runs */
};

typedef struct conc__handle {
  union {
    void (*cb)(void *);
    void (*done)(void *future, void *arg); /* H_DONE */
  };
  void *arg;
  struct conc__handle *next; /* ready queue, free list */
  union {                    /* a timer is never a done callback or a step */
    void *ctx;               /* H_DONE: the future; H_TASK: the task */
    int64_t when;            /* timers: deadline, ns on CLOCK_MONOTONIC */
  };
  uint64_t seq; /* scheduling order; also the handle's gen */
  uint8_t kind;
  uint8_t state;
  uint8_t embedded; /* part of a task or watcher: never freed to the pool */
} conc__handle_t;

/* Queue an embedded handle (a task step, a watcher callback). */
void conc__loop_push(conc_loop_t *loop, conc__handle_t *h);

/* A pooled handle for a done callback (kind H_DONE), queued now. */
int conc__loop_push_done(conc_loop_t *loop, void (*done)(void *, void *),
                         void *future, void *arg);

/* Arm a timer running cb(arg) at `when` (ns); *out gets its handle. */
int conc__loop_timer(conc_loop_t *loop, int64_t when, void (*cb)(void *),
                     void *arg, conc_handle_t *out);

/*
 * Task waits on a descriptor (the cooperative socket calls stand on these).
 * arm: queue `waiter` (a task's step handle) once, the next time fd is
 * ready for `bit` (CONC__EV_READ or CONC__EV_WRITE). The registration with
 * the poller stays after the wait ends (a socket waited on again costs no
 * system call); an event that finds nobody interested drops it.
 * CONC_EBUSY when another task waits, or a callback watches, the same fd
 * and direction; the poller's code for a bad fd. disarm: withdraw waiter
 * (timeout, cancel). forget: the fd is about to be closed: drop it from
 * the poller and queue any waiter (its next call sees the closed fd).
 */
/* In a task: suspend until fd is ready for bit, or the timeout (seconds;
 * CONC_FOREVER: none) passes. 0, CONC_ETIMEDOUT, CONC_ECANCELED, CONC_EBUSY,
 * CONC_ESTATE outside a task, the poller's code for a bad fd. aio_task.c. */
int conc__aio_wait_io(int fd, uint32_t bit, double timeout);

int conc__loop_io_arm(conc_loop_t *loop, int fd, uint32_t bit,
                      conc__handle_t *waiter);
void conc__loop_io_disarm(conc_loop_t *loop, int fd, uint32_t bit,
                          conc__handle_t *waiter);
void conc__loop_io_forget(conc_loop_t *loop, int fd);

/* The cooperative recv's hint for fd (see conc__watch_t.rd_drained): a
 * wrong hint costs at most one loop iteration, never a lost byte, because
 * the poller is level-triggered. forget clears it. */
bool conc__loop_io_drained(conc_loop_t *loop, int fd);
void conc__loop_io_set_drained(conc_loop_t *loop, int fd, bool drained);

/* ---- the loop -------------------------------------------------------------
 */

/* Slots for layers above the core (one pointer each), with a function run
 * when the loop is closed, after its tasks are gone (the default executor
 * of run_in_executor lives in one). */
enum { CONC__LOOP_SLOT_EXECUTOR, CONC__LOOP_SLOT_SIGNALS, CONC__LOOP_SLOTS };
void **conc__loop_slot(conc_loop_t *loop, int which);
void conc__loop_set_closer(conc_loop_t *loop, int which,
                           void (*fn)(conc_loop_t *loop));

typedef struct conc__watch {
  conc__handle_t rd, wr;             /* embedded callbacks (cb NULL: none) */
  conc__handle_t *rd_wait, *wr_wait; /* a suspended task's step, queued
                                        once when the fd is ready */
  uint32_t events;                   /* what the poller watches */
  uint8_t rd_drained; /* the last stream recv came back short: likely
                         nothing left, so wait before the next one */
} conc__watch_t;

typedef struct conc__tsq_node {
  struct conc__tsq_node *next;
  conc_loop_cb_t cb;
  void *arg;
} conc__tsq_node_t;

struct conc_loop {
  uint64_t thread; /* the owner's coroutine-thread serial */
  const conc__poll_ops_t *ops;
  void *poller;
  conc__handle_t *ready_head, *ready_tail;
  conc__handle_t *free_handles;
  void **slabs; /* handle slabs, freed with the loop */
  size_t nslabs, slabs_cap;
  conc__handle_t **heap; /* timers: a binary heap on (when, seq) */
  size_t heap_len, heap_cap, heap_cancelled;
  uint64_t seq;
  conc__watch_t **watch; /* chunks of WCHUNK records, indexed by fd */
  size_t watch_cap;
  size_t nwatch; /* descriptors the poller watches, beside the wake-up */
  conc__poll_ev_t *evs;
  int evs_cap;
  /* threadsafe calls: a mutex-guarded list and one eventfd */
  pthread_mutex_t tsq_mu;
  conc__tsq_node_t *tsq_head, *tsq_tail;
  int wake_fd;           /* eventfd, or the read end of a pipe */
  int wake_wfd;          /* where to write (== wake_fd for an eventfd) */
  uint32_t sleeping;     /* the loop may block in the poller */
  uint32_t wake_pending; /* a wake-up is written and not yet read */
  uint32_t stop_ts;      /* stop_threadsafe asked */
  struct conc_coro *runner;
  bool running, stopping, closed, debug;
  int64_t slow_ns;
  uint64_t iterations;
  conc_loop_exception_handler_t exc_fn;
  void *exc_arg;
  /* task layer (aio_task.c) */
  void *tasks_head; /* not-done tasks, a doubly linked list */
  size_t ntasks;
  uint64_t task_counter; /* for "Task-N" names */
  void *future_pool;     /* recycled future records */
  void *task_pool;       /* recycled task records */
  /* streams' idle read buffers (aio_stream.c), freed at close */
#define CONC__RBUF_CACHE 16
  void *rbuf_cache[CONC__RBUF_CACHE];
  int nrbuf;
  /* layers above: one pointer each and a closer */
  void *slot[CONC__LOOP_SLOTS];
  void (*closer[CONC__LOOP_SLOTS])(conc_loop_t *loop);
};

/* Checks shared by every loop entry point: 0, CONC_EINVAL (NULL),
 * CONC_ECLOSED, CONC_EWRONGTHREAD. */
int conc__loop_check(const conc_loop_t *loop);

/* Report through the loop's exception handler (or stderr). */
void conc__loop_report(conc_loop_t *loop, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* loop_io.c: queue what a poller event makes ready (not the wake-up fd),
 * and free the watch table when the loop closes. */
void conc__loop_dispatch(conc_loop_t *loop, const conc__poll_ev_t *ev);
void conc__loop_watch_free(conc_loop_t *loop);

/* The bridges' hook (aio_bridge.c), called by loop.c when a loop closes,
 * after its tasks: shut down and join the loop's default executor (0, or
 * CONC_ENOENT when it never made one). */
int conc__aio_default_executor_shutdown(conc_loop_t *loop);

/* The coroutine running the loop (the one run_forever was called on). */
struct conc_coro *conc__loop_runner(conc_loop_t *loop);

/* The task layer's hook, called by loop.c when a loop closes (before the
 * poller goes): unwind tasks still pending, free recycled records. */
void conc__aio_loop_closing(conc_loop_t *loop);

#endif
