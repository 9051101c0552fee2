/*
 * The loop's epoll backend (the default on Linux): level-triggered, one
 * registration per descriptor carrying both directions.
 *
 * Locking protocol: none; a poller belongs to one loop and so to one thread.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "conc/error.h"
#include "loop-int.h"

typedef struct ep {
  int fd;
  int cap;
  struct epoll_event evs[];
} ep_t;

enum { EP_BATCH = 256 };

static int ep_open(void **state) {
  ep_t *e = malloc(sizeof *e + EP_BATCH * sizeof(struct epoll_event));
  if (!e)
    return CONC_ENOMEM;
  e->fd = epoll_create1(EPOLL_CLOEXEC);
  if (e->fd < 0) {
    int err = errno;
    free(e);
    return err == EMFILE || err == ENFILE ? CONC_EMFILE : CONC_ENOMEM;
  }
  e->cap = EP_BATCH;
  *state = e;
  return 0;
}

static void ep_close(void *state) {
  ep_t *e = state;
  close(e->fd);
  free(e);
}

static uint32_t to_epoll(uint32_t ev) {
  return ((ev & CONC__EV_READ) ? (uint32_t)EPOLLIN : 0u) |
         ((ev & CONC__EV_WRITE) ? (uint32_t)EPOLLOUT : 0u);
}

static int ep_ctl(void *state, int fd, uint32_t old, uint32_t events) {
  ep_t *e = state;
  struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};
  int op = !old ? EPOLL_CTL_ADD : !events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  if (epoll_ctl(e->fd, op, fd, &ev) == 0)
    return 0;
  switch (errno) {
  case EPERM:
    return CONC_EPERM; /* a regular file or a directory */
  case ENOMEM:
  case ENOSPC:
    return CONC_ENOMEM;
  default:
    return CONC_EBADF;
  }
}

static int ep_wait(void *state, int64_t timeout_ns, conc__poll_ev_t *out,
                   int max) {
  ep_t *e = state;
  int ms;
  if (timeout_ns < 0)
    ms = -1;
  else if (timeout_ns >= (int64_t)INT_MAX * 1000000)
    ms = INT_MAX;
  else
    ms = (int)((timeout_ns + 999999) / 1000000); /* never wake early */
  if (max > e->cap)
    max = e->cap;
  int n = epoll_wait(e->fd, e->evs, max, ms);
  if (n < 0)
    return errno == EINTR ? 0 : CONC_EBADF;
  for (int i = 0; i < n; i++) {
    uint32_t r = e->evs[i].events;
    uint32_t ev = 0;
    if (r & (EPOLLIN | EPOLLPRI | EPOLLRDHUP))
      ev |= CONC__EV_READ;
    if (r & EPOLLOUT)
      ev |= CONC__EV_WRITE;
    if (r & (EPOLLERR | EPOLLHUP))
      ev |= CONC__EV_ERR | CONC__EV_READ | CONC__EV_WRITE;
    out[i].fd = e->evs[i].data.fd;
    out[i].events = ev;
  }
  return n;
}

const conc__poll_ops_t conc__poll_epoll_ops = {
    .name = "epoll",
    .open = ep_open,
    .close = ep_close,
    .ctl = ep_ctl,
    .wait = ep_wait,
};
