/*
 * The event loop core: the ready queue, callbacks and timers, threadsafe
 * calls, and one iteration as asyncio's _run_once does it (the descriptor
 * watches are in loop_io.c).
 *
 * Locking protocol: a loop is confined to the thread that created it; every
 * entry point but the threadsafe ones checks the caller's thread and touches
 * the loop without locks. The threadsafe queue is a list under tsq_mu. A
 * producer appends (a first node is stored to the head with a sequentially
 * consistent store), then, if the loop may be asleep in the poller
 * (`sleeping`, a sequentially consistent load) and no wake-up is in flight
 * (`wake_pending`), writes the eventfd once; the loop stores `sleeping`
 * before it loads the head for the last time and sleeps. All four are
 * sequentially consistent, so each side sees the other's store: a call is
 * never left waiting for a poll that nothing ends, and a batch of calls
 * costs one write.
 *
 * Handles come from a per-loop free list, so steady-state scheduling
 * allocates nothing. A handle's seq is both its place in scheduling order
 * (timer ties) and its generation: a conc_handle_t names a record and the
 * seq it had, so cancelling a handle whose record was recycled does nothing.
 * Timers live in a binary heap on (when, seq); a cancelled timer stays in
 * the heap, marked, until it reaches the top or until cancelled ones make up
 * half of a large heap, which is then rebuilt in O(n) (asyncio's rule): a
 * cancel is O(1).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "conc/coro.h"
#include "conc/error.h"
#include "conc/time.h"
#include "loop-int.h"
#include "platform-int.h"

static __thread conc_loop_t *t_running;
static __thread conc_loop_t *t_loop;
static __thread uint64_t t_serial;
static uint64_t g_serial;

static uint64_t thread_serial(void) {
  if (__builtin_expect(t_serial == 0, 0))
    t_serial = __atomic_add_fetch(&g_serial, 1, __ATOMIC_RELAXED);
  return t_serial;
}

int conc__loop_check(const conc_loop_t *loop) {
  if (!loop)
    return CONC_EINVAL;
  if (loop->thread != thread_serial())
    return CONC_EWRONGTHREAD;
  if (loop->closed)
    return CONC_ECLOSED;
  return 0;
}

conc_loop_t *conc_loop_running(void) { return t_running; }

conc_loop_t *conc_loop_get(void) { return t_running ? t_running : t_loop; }

struct conc_coro *conc__loop_runner(conc_loop_t *loop) {
  return loop->runner;
}

void **conc__loop_slot(conc_loop_t *loop, int which) {
  return &loop->slot[which];
}

void conc__loop_set_closer(conc_loop_t *loop, int which,
                           void (*fn)(conc_loop_t *loop)) {
  loop->closer[which] = fn;
}

/* ---- reports ---------------------------------------------------------------
 */

void conc_loop_set_exception_handler(conc_loop_t *loop,
                                     conc_loop_exception_handler_t fn,
                                     void *arg) {
  if (!loop)
    return;
  loop->exc_fn = fn;
  loop->exc_arg = arg;
}

void conc__loop_report(conc_loop_t *loop, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (loop && loop->exc_fn)
    loop->exc_fn(loop, buf, loop->exc_arg);
  else
    fprintf(stderr, "libconc: %s\n", buf);
}

/* ---- handles and the ready queue ----------------------------------------- */

_Static_assert(sizeof(conc__handle_t) <= 48, "a timer must stay small");

static conc__handle_t *handle_new(conc_loop_t *loop) {
  conc__handle_t *h = loop->free_handles;
  if (__builtin_expect(h == NULL, 0)) {
    /* A slab at a time: a handle costs its 48 bytes and no malloc header
     * (1,000,000 armed timers: 56 bytes each with the heap's pointer). */
    enum { SLAB = 256 };
    if (loop->nslabs == loop->slabs_cap) {
      size_t cap = loop->slabs_cap ? loop->slabs_cap * 2 : 16;
      void **n = realloc(loop->slabs, cap * sizeof *n);
      if (!n)
        return NULL;
      loop->slabs = n;
      loop->slabs_cap = cap;
    }
    conc__handle_t *s = malloc(SLAB * sizeof *s);
    if (!s)
      return NULL;
    loop->slabs[loop->nslabs++] = s;
    for (int i = 0; i < SLAB - 1; i++)
      s[i].next = &s[i + 1];
    s[SLAB - 1].next = NULL;
    h = s;
  }
  loop->free_handles = h->next;
  h->embedded = 0;
  return h;
}

static void handle_free(conc_loop_t *loop, conc__handle_t *h) {
  h->state = CONC__HS_FREE;
  h->seq = 0;
  if (h->embedded)
    return;
  h->next = loop->free_handles;
  loop->free_handles = h;
}

static inline void ready_push(conc_loop_t *loop, conc__handle_t *h) {
  h->next = NULL;
  h->state = CONC__HS_READY;
  if (loop->ready_tail)
    loop->ready_tail->next = h;
  else
    loop->ready_head = h;
  loop->ready_tail = h;
}

void conc__loop_push(conc_loop_t *loop, conc__handle_t *h) {
  h->seq = ++loop->seq;
  ready_push(loop, h);
}

int conc__loop_push_done(conc_loop_t *loop, void (*done)(void *, void *),
                         void *future, void *arg) {
  conc__handle_t *h = handle_new(loop);
  if (!h)
    return CONC_ENOMEM;
  h->kind = CONC__H_DONE;
  h->done = done;
  h->ctx = future;
  h->arg = arg;
  conc__loop_push(loop, h);
  return 0;
}

/* A pooled handle that runs cb(arg): call_soon, timers, threadsafe calls. */
static conc__handle_t *handle_user(conc_loop_t *loop, void (*cb)(void *),
                                   void *arg) {
  conc__handle_t *h = handle_new(loop);
  if (h) {
    h->kind = CONC__H_USER;
    h->cb = cb;
    h->arg = arg;
  }
  return h;
}

static void set_out(conc_handle_t *out, conc__handle_t *h) {
  if (out) {
    out->rec = h;
    out->gen = h->seq;
  }
}

int conc_loop_call_soon(conc_loop_t *loop, conc_loop_cb_t cb, void *arg,
                        conc_handle_t *out) {
  int rc = conc__loop_check(loop);
  if (rc)
    return rc;
  if (!cb)
    return CONC_EINVAL;
  conc__handle_t *h = handle_user(loop, cb, arg);
  if (!h)
    return CONC_ENOMEM;
  conc__loop_push(loop, h);
  set_out(out, h);
  return 0;
}

/* ---- timers -----------------------------------------------------------------
 */

static inline bool before(const conc__handle_t *a, const conc__handle_t *b) {
  return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void sift_up(conc__handle_t **hp, size_t i) {
  conc__handle_t *x = hp[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!before(x, hp[p]))
      break;
    hp[i] = hp[p];
    i = p;
  }
  hp[i] = x;
}

static void sift_down(conc__handle_t **hp, size_t n, size_t i) {
  conc__handle_t *x = hp[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && before(hp[c + 1], hp[c]))
      c++;
    if (!before(hp[c], x))
      break;
    hp[i] = hp[c];
    i = c;
  }
  hp[i] = x;
}

static int heap_push(conc_loop_t *loop, conc__handle_t *h) {
  if (loop->heap_len == loop->heap_cap) {
    size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
    conc__handle_t **n = realloc(loop->heap, cap * sizeof *n);
    if (!n)
      return CONC_ENOMEM;
    loop->heap = n;
    loop->heap_cap = cap;
  }
  loop->heap[loop->heap_len] = h;
  sift_up(loop->heap, loop->heap_len++);
  return 0;
}

static conc__handle_t *heap_pop(conc_loop_t *loop) {
  conc__handle_t *top = loop->heap[0];
  if (--loop->heap_len > 0) {
    loop->heap[0] = loop->heap[loop->heap_len];
    sift_down(loop->heap, loop->heap_len, 0);
  }
  return top;
}

/* Drop the cancelled timers and rebuild the heap (Floyd, O(n)). */
static void heap_compact(conc_loop_t *loop) {
  size_t n = 0;
  for (size_t i = 0; i < loop->heap_len; i++) {
    conc__handle_t *h = loop->heap[i];
    if (h->state == CONC__HS_CANCELLED)
      handle_free(loop, h);
    else
      loop->heap[n++] = h;
  }
  loop->heap_len = n;
  loop->heap_cancelled = 0;
  for (size_t i = n / 2; i-- > 0;)
    sift_down(loop->heap, n, i);
}

int conc__loop_timer(conc_loop_t *loop, int64_t when, void (*cb)(void *),
                     void *arg, conc_handle_t *out) {
  conc__handle_t *h = handle_user(loop, cb, arg);
  if (!h)
    return CONC_ENOMEM;
  h->when = when;
  h->seq = ++loop->seq;
  h->state = CONC__HS_TIMER;
  if (heap_push(loop, h) != 0) {
    handle_free(loop, h);
    return CONC_ENOMEM;
  }
  set_out(out, h);
  return 0;
}

static int64_t seconds_to_ns(double s) {
  if (s <= 0)
    return 0;
  if (s >= CONC_TIMEOUT_MAX)
    return INT64_MAX / 2;
  return conc__ns_ceil(s);
}

int conc_loop_call_later(conc_loop_t *loop, double delay, conc_loop_cb_t cb,
                         void *arg, conc_handle_t *out) {
  int rc = conc__loop_check(loop);
  if (rc)
    return rc;
  if (!cb || isnan(delay))
    return CONC_EINVAL;
  return conc__loop_timer(loop, conc__now_ns() + seconds_to_ns(delay), cb, arg,
                          out);
}

int conc_loop_call_at(conc_loop_t *loop, double when, conc_loop_cb_t cb,
                      void *arg, conc_handle_t *out) {
  int rc = conc__loop_check(loop);
  if (rc)
    return rc;
  if (!cb || isnan(when))
    return CONC_EINVAL;
  int64_t ns;
  if (when <= 0)
    ns = 0;
  else if (when >= CONC_TIMEOUT_MAX)
    ns = INT64_MAX / 2;
  else
    ns = conc__ns_ceil(when);
  return conc__loop_timer(loop, ns, cb, arg, out);
}

static conc__handle_t *handle_live(conc_handle_t h) {
  conc__handle_t *r = h.rec;
  if (!r || r->seq != h.gen || h.gen == 0)
    return NULL;
  if (r->state != CONC__HS_READY && r->state != CONC__HS_TIMER)
    return NULL;
  return r;
}

bool conc_loop_cancel(conc_loop_t *loop, conc_handle_t h) {
  if (!loop || loop->closed || loop->thread != thread_serial())
    return false;
  conc__handle_t *r = handle_live(h);
  if (!r)
    return false;
  if (r->state == CONC__HS_TIMER)
    loop->heap_cancelled++;
  r->state = CONC__HS_CANCELLED;
  if (loop->heap_cancelled > 256 && loop->heap_cancelled * 2 > loop->heap_len)
    heap_compact(loop);
  return true;
}

double conc_loop_handle_when(conc_loop_t *loop, conc_handle_t h) {
  if (!loop || loop->closed || loop->thread != thread_serial())
    return NAN;
  conc__handle_t *r = handle_live(h);
  if (!r || r->state != CONC__HS_TIMER)
    return NAN;
  return (double)r->when / 1e9;
}

double conc_loop_time(const conc_loop_t *loop) {
  (void)loop;
  return (double)conc__now_ns() / 1e9;
}

uint64_t conc_loop_iterations(const conc_loop_t *loop) {
  return loop ? loop->iterations : 0;
}

/* ---- threadsafe calls -------------------------------------------------------
 */

static void wake(conc_loop_t *loop) {
  if (__atomic_load_n(&loop->sleeping, __ATOMIC_SEQ_CST) &&
      !__atomic_exchange_n(&loop->wake_pending, 1, __ATOMIC_SEQ_CST)) {
    uint64_t one = 1;
    ssize_t w = write(loop->wake_wfd, &one, sizeof one);
    (void)w; /* EAGAIN: a wake-up is already counted */
  }
}

int conc_loop_call_soon_threadsafe(conc_loop_t *loop, conc_loop_cb_t cb,
                                   void *arg) {
  if (!loop || !cb)
    return CONC_EINVAL;
  conc__tsq_node_t *n = malloc(sizeof *n);
  if (!n)
    return CONC_ENOMEM;
  n->next = NULL;
  n->cb = cb;
  n->arg = arg;
  pthread_mutex_lock(&loop->tsq_mu);
  if (loop->closed) {
    pthread_mutex_unlock(&loop->tsq_mu);
    free(n);
    return CONC_ECLOSED;
  }
  if (loop->tsq_tail)
    loop->tsq_tail->next = n;
  else
    __atomic_store_n(&loop->tsq_head, n, __ATOMIC_SEQ_CST);
  loop->tsq_tail = n;
  pthread_mutex_unlock(&loop->tsq_mu);
  wake(loop);
  return 0;
}

int conc_loop_stop_threadsafe(conc_loop_t *loop) {
  if (!loop)
    return CONC_EINVAL;
  __atomic_store_n(&loop->stop_ts, 1, __ATOMIC_SEQ_CST);
  wake(loop);
  return 0;
}

static bool tsq_nonempty(conc_loop_t *loop) {
  return __atomic_load_n(&loop->tsq_head, __ATOMIC_SEQ_CST) != NULL ||
         __atomic_load_n(&loop->stop_ts, __ATOMIC_SEQ_CST);
}

/* Move the threadsafe calls into the ready queue, in arrival order. */
static void tsq_drain(conc_loop_t *loop) {
  if (__atomic_load_n(&loop->stop_ts, __ATOMIC_SEQ_CST)) {
    __atomic_store_n(&loop->stop_ts, 0, __ATOMIC_SEQ_CST);
    loop->stopping = true;
  }
  if (!__atomic_load_n(&loop->tsq_head, __ATOMIC_SEQ_CST))
    return;
  pthread_mutex_lock(&loop->tsq_mu);
  conc__tsq_node_t *n = loop->tsq_head;
  __atomic_store_n(&loop->tsq_head, NULL, __ATOMIC_RELAXED);
  loop->tsq_tail = NULL;
  pthread_mutex_unlock(&loop->tsq_mu);
  while (n) {
    conc__tsq_node_t *next = n->next;
    conc__handle_t *h = handle_user(loop, n->cb, n->arg);
    if (h) {
      conc__loop_push(loop, h);
    } else {
      n->cb(n->arg); /* no memory for a handle: run it now, not never */
    }
    free(n);
    n = next;
  }
}

static void wake_consume(conc_loop_t *loop) {
  uint64_t v;
  ssize_t r = read(loop->wake_fd, &v, sizeof v);
  (void)r;
  __atomic_store_n(&loop->wake_pending, 0, __ATOMIC_SEQ_CST);
}

/* ---- one iteration
 * ------------------------------------------------------------ */

/* aio_task.c */
void conc__aio_step(void *task);
void conc__aio_run_done(void *future, void (*fn)(void *, void *), void *arg);

static int64_t poll_timeout(conc_loop_t *loop) {
  if (loop->ready_head || loop->stopping)
    return 0;
  while (loop->heap_len && loop->heap[0]->state == CONC__HS_CANCELLED) {
    handle_free(loop, heap_pop(loop));
    loop->heap_cancelled--;
  }
  if (!loop->heap_len)
    return -1;
  int64_t d = loop->heap[0]->when - conc__now_ns();
  return d > 0 ? d : 0;
}

static void expire_timers(conc_loop_t *loop) {
  if (!loop->heap_len)
    return;
  int64_t now = conc__now_ns();
  while (loop->heap_len && loop->heap[0]->when <= now) {
    conc__handle_t *h = heap_pop(loop);
    if (h->state == CONC__HS_CANCELLED) {
      loop->heap_cancelled--;
      handle_free(loop, h);
    } else {
      ready_push(loop, h);
    }
  }
}

static void run_handle(conc_loop_t *loop, conc__handle_t *h) {
  switch (h->kind) {
  case CONC__H_TASK:
    h->state = CONC__HS_FREE;
    conc__aio_step(h->ctx);
    break;
  case CONC__H_DONE: {
    void (*done)(void *, void *) = h->done;
    void *f = h->ctx, *arg = h->arg;
    handle_free(loop, h);
    conc__aio_run_done(f, done, arg);
    break;
  }
  default: {
    void (*cb)(void *) = h->cb;
    void *arg = h->arg;
    handle_free(loop, h);
    cb(arg);
    break;
  }
  }
}

static void run_timed(conc_loop_t *loop, conc__handle_t *h) {
  int64_t t0 = conc__now_ns();
  void *what = h->kind == CONC__H_TASK ? h->ctx : (void *)h->cb;
  const char *kind = h->kind == CONC__H_TASK ? "task step" : "callback";
  run_handle(loop, h);
  int64_t dt = conc__now_ns() - t0;
  if (dt >= loop->slow_ns)
    conc__loop_report(loop, "Executing %s %p took %.3f seconds", kind, what,
                      (double)dt / 1e9);
}

static void run_ready(conc_loop_t *loop) {
  /* Only what is ready now: callbacks scheduled while these run wait for
   * the next iteration (asyncio's _run_once counts them first). */
  conc__handle_t *last = loop->ready_tail;
  while (last) {
    conc__handle_t *h = loop->ready_head;
    loop->ready_head = h->next;
    if (!loop->ready_head)
      loop->ready_tail = NULL;
    bool end = h == last;
    if (h->state == CONC__HS_CANCELLED)
      handle_free(loop, h);
    else if (__builtin_expect(loop->debug, 0))
      run_timed(loop, h);
    else
      run_handle(loop, h);
    if (end)
      break;
  }
}

static int run_once(conc_loop_t *loop) {
  int64_t timeout = poll_timeout(loop);
  if (timeout != 0) {
    __atomic_store_n(&loop->sleeping, 1, __ATOMIC_SEQ_CST);
    if (tsq_nonempty(loop))
      timeout = 0;
  }
  /* Work is ready and no descriptor is watched: nothing the poller could
   * say matters now (threadsafe calls are checked below without it). */
  int n =
      timeout == 0 && loop->nwatch == 0
          ? 0
          : loop->ops->wait(loop->poller, timeout, loop->evs, loop->evs_cap);
  __atomic_store_n(&loop->sleeping, 0, __ATOMIC_RELAXED);
  if (n < 0)
    return n;
  for (int i = 0; i < n; i++) {
    if (loop->evs[i].fd == loop->wake_fd)
      wake_consume(loop);
    else
      conc__loop_dispatch(loop, &loop->evs[i]);
  }
  tsq_drain(loop);
  expire_timers(loop);
  run_ready(loop);
  loop->iterations++;
  return 0;
}

int conc_loop_run_forever(conc_loop_t *loop) {
  int rc = conc__loop_check(loop);
  if (rc)
    return rc;
  if (t_running || loop->running)
    return CONC_ESTATE;
  loop->running = true;
  t_running = loop;
  loop->runner = conc_coro_current();
  for (;;) {
    rc = run_once(loop);
    if (rc || loop->stopping)
      break;
  }
  loop->stopping = false;
  loop->running = false;
  t_running = NULL;
  return rc;
}

void conc_loop_stop(conc_loop_t *loop) {
  if (loop && loop->thread == thread_serial())
    loop->stopping = true;
}

bool conc_loop_is_running(const conc_loop_t *loop) {
  return loop && loop->running;
}

bool conc_loop_is_closed(const conc_loop_t *loop) {
  return loop && loop->closed;
}

bool conc_loop_get_debug(const conc_loop_t *loop) {
  return loop && loop->debug;
}

void conc_loop_set_debug(conc_loop_t *loop, bool on) {
  if (loop)
    loop->debug = on;
}

const char *conc_loop_backend_name(const conc_loop_t *loop) {
  return loop ? loop->ops->name : "";
}

/* ---- life
 * ------------------------------------------------------------------------ */

static conc_loop_backend_t env_backend(void) {
  const char *e = getenv("CONC_LOOP_BACKEND");
  if (e && strcmp(e, "poll") == 0)
    return CONC_LOOP_BACKEND_POLL;
  if (e && strcmp(e, "epoll") == 0)
    return CONC_LOOP_BACKEND_EPOLL;
  if (e && strcmp(e, "io_uring") == 0)
    return CONC_LOOP_BACKEND_IO_URING;
#ifdef CONC_LOOP_DEFAULT_POLL
  return CONC_LOOP_BACKEND_POLL;
#else
  return CONC_LOOP_BACKEND_EPOLL;
#endif
}

/* The backend's operations; NULL for a bad value, and *missing when it is
 * a known backend this build lacks. */
static const conc__poll_ops_t *pick_backend(conc_loop_backend_t b,
                                            bool *missing) {
  *missing = false;
  if (b == CONC_LOOP_BACKEND_DEFAULT)
    b = env_backend();
  switch (b) {
  case CONC_LOOP_BACKEND_POLL:
    return &conc__poll_poll_ops;
  case CONC_LOOP_BACKEND_EPOLL:
    return &conc__poll_epoll_ops;
  case CONC_LOOP_BACKEND_IO_URING:
#ifdef CONC_HAVE_IO_URING
    return &conc__poll_uring_ops;
#else
    *missing = true;
    return NULL;
#endif
  default:
    return NULL;
  }
}

static bool env_debug(void) {
  const char *e = getenv("CONC_LOOP_DEBUG");
  return e && *e && strcmp(e, "0") != 0;
}

static int loop_open(conc_loop_t *loop) {
  int rc = loop->ops->open(&loop->poller);
  if (rc)
    return rc;
  loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->wake_fd < 0) {
    rc = errno == EMFILE || errno == ENFILE ? CONC_EMFILE : CONC_ENOMEM;
    loop->ops->close(loop->poller);
    return rc;
  }
  loop->wake_wfd = loop->wake_fd;
  rc = loop->ops->ctl(loop->poller, loop->wake_fd, 0, CONC__EV_READ);
  if (rc) {
    close(loop->wake_fd);
    loop->ops->close(loop->poller);
  }
  return rc;
}

int conc_loop_create(const conc_loop_opts_t *opts, conc_loop_t **out) {
  conc_loop_opts_t o = opts ? *opts : (conc_loop_opts_t){0};
  if (!out || isnan(o.slow_callback_duration) || o.slow_callback_duration < 0)
    return CONC_EINVAL;
  bool missing;
  const conc__poll_ops_t *ops = pick_backend(o.backend, &missing);
  if (!ops)
    return missing ? CONC_ENOSYS : CONC_EINVAL;
  conc_loop_t *loop = calloc(1, sizeof *loop);
  if (!loop)
    return CONC_ENOMEM;
  loop->evs_cap = 256;
  loop->evs = malloc((size_t)loop->evs_cap * sizeof *loop->evs);
  loop->ops = ops;
  int rc = loop->evs ? loop_open(loop) : CONC_ENOMEM;
  if (rc == CONC_ENOSYS && ops != &conc__poll_epoll_ops) {
    loop->ops = &conc__poll_epoll_ops; /* the kernel refused an io_uring */
    rc = loop_open(loop);
  }
  if (rc) {
    free(loop->evs);
    free(loop);
    return rc;
  }
  pthread_mutex_init(&loop->tsq_mu, NULL);
  loop->thread = thread_serial();
  loop->debug = o.debug || env_debug();
  loop->slow_ns =
      (int64_t)((o.slow_callback_duration > 0 ? o.slow_callback_duration
                                              : 0.1) *
                1e9);
  if (!t_loop)
    t_loop = loop;
  *out = loop;
  return 0;
}

int conc_loop_close(conc_loop_t *loop) {
  if (!loop)
    return CONC_EINVAL;
  if (loop->thread != thread_serial())
    return CONC_EWRONGTHREAD;
  if (loop->running)
    return CONC_ESTATE;
  if (loop->closed)
    return 0;
  conc__aio_loop_closing(loop);
  conc__aio_default_executor_shutdown(loop);
  for (int i = 0; i < CONC__LOOP_SLOTS; i++)
    if (loop->closer[i])
      loop->closer[i](loop);
  pthread_mutex_lock(&loop->tsq_mu);
  loop->closed = true;
  conc__tsq_node_t *n = loop->tsq_head;
  loop->tsq_head = loop->tsq_tail = NULL;
  pthread_mutex_unlock(&loop->tsq_mu);
  while (n) {
    conc__tsq_node_t *next = n->next;
    free(n);
    n = next;
  }
  loop->ready_head = loop->ready_tail = NULL;
  for (size_t i = 0; i < loop->nslabs; i++)
    free(loop->slabs[i]);
  free(loop->slabs);
  loop->slabs = NULL;
  loop->nslabs = 0;
  loop->free_handles = NULL;
  free(loop->heap);
  loop->heap = NULL;
  loop->heap_len = loop->heap_cap = loop->heap_cancelled = 0;
  conc__loop_watch_free(loop);
  while (loop->nrbuf > 0)
    free(loop->rbuf_cache[--loop->nrbuf]);
  loop->ops->close(loop->poller);
  close(loop->wake_fd);
  free(loop->evs);
  loop->evs = NULL;
  return 0;
}

int conc_loop_destroy(conc_loop_t *loop) {
  if (!loop)
    return 0;
  int rc = conc_loop_close(loop);
  if (rc)
    return rc;
  if (t_loop == loop)
    t_loop = NULL;
  pthread_mutex_destroy(&loop->tsq_mu);
  free(loop);
  return 0;
}
