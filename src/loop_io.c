/*
 * The loop's descriptor watches: add_reader/add_writer callbacks and the
 * task waits the cooperative socket calls stand on, over one poller
 * registration per descriptor (split from loop.c, which runs the
 * iterations).
 *
 * Locking protocol: none; a loop and its watches belong to the loop's
 * thread. Watch records live in chunks that never move, because their
 * embedded handles may sit in the ready queue while the table grows.
 */
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "loop-int.h"

/* ---- I/O watchers
 * ------------------------------------------------------------ */

/* Watch records live in chunks that never move: their embedded handles may
 * sit in the ready queue while the table grows. */
/* The poller's ctl, keeping count of the descriptors watched (beside the
 * wake-up eventfd): with none, an iteration that has work ready need not
 * poll at all. */
static int watch_ctl(conc_loop_t *loop, int fd, uint32_t old, uint32_t ev) {
  int rc = loop->ops->ctl(loop->poller, fd, old, ev);
  if (rc == 0 || !ev) {
    if (!old && ev)
      loop->nwatch++;
    else if (old && !ev)
      loop->nwatch--;
  }
  return rc;
}

enum { WCHUNK = 256 };

static conc__watch_t *watch_get(conc_loop_t *loop, int fd, bool create) {
  size_t c = (size_t)fd / WCHUNK;
  if (c >= loop->watch_cap) {
    if (!create)
      return NULL;
    size_t cap = loop->watch_cap ? loop->watch_cap : 4;
    while (cap <= c)
      cap *= 2;
    conc__watch_t **n = realloc(loop->watch, cap * sizeof *n);
    if (!n)
      return NULL;
    memset(n + loop->watch_cap, 0, (cap - loop->watch_cap) * sizeof *n);
    loop->watch = n;
    loop->watch_cap = cap;
  }
  if (!loop->watch[c]) {
    if (!create)
      return NULL;
    loop->watch[c] = calloc(WCHUNK, sizeof(conc__watch_t));
    if (!loop->watch[c])
      return NULL;
  }
  return &loop->watch[c][(size_t)fd % WCHUNK];
}

static int watch_add(conc_loop_t *loop, int fd, uint32_t bit, conc_loop_cb_t cb,
                     void *arg) {
  int rc = conc__loop_check(loop);
  if (rc)
    return rc;
  if (fd < 0 || !cb)
    return CONC_EINVAL;
  conc__watch_t *w = watch_get(loop, fd, true);
  if (!w)
    return CONC_ENOMEM;
  if (bit == CONC__EV_READ ? w->rd_wait : w->wr_wait)
    return CONC_EBUSY; /* a task waits on this fd and direction */
  uint32_t ev = w->events | bit;
  if (ev != w->events) {
    rc = watch_ctl(loop, fd, w->events, ev);
    if (rc)
      return rc;
    w->events = ev;
  }
  conc__handle_t *h = bit == CONC__EV_READ ? &w->rd : &w->wr;
  h->kind = CONC__H_IO;
  h->embedded = 1;
  h->cb = cb;
  h->arg = arg;
  return 0;
}

static bool watch_remove(conc_loop_t *loop, int fd, uint32_t bit) {
  if (conc__loop_check(loop) != 0 || fd < 0)
    return false;
  conc__watch_t *w = watch_get(loop, fd, false);
  if (!w || !(w->events & bit))
    return false;
  conc__handle_t *h = bit == CONC__EV_READ ? &w->rd : &w->wr;
  if (!h->cb)
    return false;
  h->cb = NULL;
  if (h->state == CONC__HS_READY)
    h->state = CONC__HS_CANCELLED;
  if (bit == CONC__EV_READ ? w->rd_wait : w->wr_wait)
    return true; /* a task still waits: keep the registration */
  uint32_t ev = w->events & ~bit;
  /* A descriptor closed behind our back is gone from the poller already. */
  (void)watch_ctl(loop, fd, w->events, ev);
  w->events = ev;
  return true;
}

int conc_loop_add_reader(conc_loop_t *loop, int fd, conc_loop_cb_t cb,
                         void *arg) {
  return watch_add(loop, fd, CONC__EV_READ, cb, arg);
}

int conc_loop_add_writer(conc_loop_t *loop, int fd, conc_loop_cb_t cb,
                         void *arg) {
  return watch_add(loop, fd, CONC__EV_WRITE, cb, arg);
}

bool conc_loop_remove_reader(conc_loop_t *loop, int fd) {
  return watch_remove(loop, fd, CONC__EV_READ);
}

bool conc_loop_remove_writer(conc_loop_t *loop, int fd) {
  return watch_remove(loop, fd, CONC__EV_WRITE);
}

static void watch_fire(conc_loop_t *loop, conc__handle_t *h) {
  if (!h->cb)
    return;
  if (h->state == CONC__HS_CANCELLED)
    h->state = CONC__HS_READY; /* re-added while still queued */
  else if (h->state != CONC__HS_READY)
    conc__loop_push(loop, h);
}

/* Nobody wants this direction any more: stop watching it. */
static void watch_drop(conc_loop_t *loop, int fd, conc__watch_t *w,
                       uint32_t bit) {
  uint32_t ev = w->events & ~bit;
  (void)watch_ctl(loop, fd, w->events, ev);
  w->events = ev;
}

static void ready_dir(conc_loop_t *loop, int fd, conc__watch_t *w,
                      uint32_t bit) {
  conc__handle_t **wait = bit == CONC__EV_READ ? &w->rd_wait : &w->wr_wait;
  conc__handle_t *cbh = bit == CONC__EV_READ ? &w->rd : &w->wr;
  if (*wait) {
    conc__loop_push(loop, *wait);
    *wait = NULL;
  } else if (cbh->cb) {
    watch_fire(loop, cbh);
  } else {
    watch_drop(loop, fd, w, bit);
  }
}

void conc__loop_dispatch(conc_loop_t *loop, const conc__poll_ev_t *ev) {
  conc__watch_t *w = watch_get(loop, ev->fd, false);
  if (!w)
    return;
  if ((ev->events & (CONC__EV_READ | CONC__EV_ERR)) &&
      (w->events & CONC__EV_READ))
    ready_dir(loop, ev->fd, w, CONC__EV_READ);
  if ((ev->events & (CONC__EV_WRITE | CONC__EV_ERR)) &&
      (w->events & CONC__EV_WRITE))
    ready_dir(loop, ev->fd, w, CONC__EV_WRITE);
}

int conc__loop_io_arm(conc_loop_t *loop, int fd, uint32_t bit,
                      conc__handle_t *waiter) {
  if (fd < 0)
    return CONC_EBADF;
  conc__watch_t *w = watch_get(loop, fd, true);
  if (!w)
    return CONC_ENOMEM;
  conc__handle_t **wait = bit == CONC__EV_READ ? &w->rd_wait : &w->wr_wait;
  conc__handle_t *cbh = bit == CONC__EV_READ ? &w->rd : &w->wr;
  if (*wait || cbh->cb)
    return CONC_EBUSY;
  if (!(w->events & bit)) {
    int rc = watch_ctl(loop, fd, w->events, w->events | bit);
    if (rc)
      return rc;
    w->events |= bit;
  }
  *wait = waiter;
  return 0;
}

void conc__loop_io_disarm(conc_loop_t *loop, int fd, uint32_t bit,
                          conc__handle_t *waiter) {
  conc__watch_t *w = watch_get(loop, fd, false);
  if (!w)
    return;
  conc__handle_t **wait = bit == CONC__EV_READ ? &w->rd_wait : &w->wr_wait;
  if (*wait == waiter)
    *wait = NULL;
}

bool conc__loop_io_drained(conc_loop_t *loop, int fd) {
  conc__watch_t *w = fd >= 0 ? watch_get(loop, fd, false) : NULL;
  return w && w->rd_drained;
}

void conc__loop_io_set_drained(conc_loop_t *loop, int fd, bool drained) {
  conc__watch_t *w = fd >= 0 ? watch_get(loop, fd, drained) : NULL;
  if (w)
    w->rd_drained = drained;
}

void conc__loop_io_forget(conc_loop_t *loop, int fd) {
  conc__watch_t *w = fd >= 0 ? watch_get(loop, fd, false) : NULL;
  if (!w)
    return;
  if (w->events)
    (void)watch_ctl(loop, fd, w->events, 0);
  w->events = 0;
  w->rd_drained = 0;
  w->rd.cb = w->wr.cb = NULL;
  if (w->rd.state == CONC__HS_READY)
    w->rd.state = CONC__HS_CANCELLED;
  if (w->wr.state == CONC__HS_READY)
    w->wr.state = CONC__HS_CANCELLED;
  if (w->rd_wait)
    conc__loop_push(loop, w->rd_wait);
  if (w->wr_wait)
    conc__loop_push(loop, w->wr_wait);
  w->rd_wait = w->wr_wait = NULL;
}

void conc__loop_watch_free(conc_loop_t *loop) {
  for (size_t c = 0; c < loop->watch_cap; c++)
    free(loop->watch[c]);
  free(loop->watch);
  loop->watch = NULL;
  loop->watch_cap = 0;
}
