/*
 * The loop's poll(2) backend: the portable fallback (CMake option
 * CONC_LOOP_POLLER=poll, or CONC_LOOP_BACKEND=poll at run time). A pollfd
 * array kept dense by swapping the last entry into a removed slot, and an
 * fd-to-slot index; ppoll gives nanosecond timeouts.
 *
 * Locking protocol: none; a poller belongs to one loop and so to one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conc/error.h"
#include "loop-int.h"

typedef struct pl {
  struct pollfd *fds;
  int n, cap;
  int *slot; /* fd -> index in fds, or -1 */
  int nslot;
  int cursor; /* where the next wait starts reporting (fairness) */
} pl_t;

static int pl_open(void **state) {
  pl_t *p = calloc(1, sizeof *p);
  if (!p)
    return CONC_ENOMEM;
  *state = p;
  return 0;
}

static void pl_close(void *state) {
  pl_t *p = state;
  free(p->fds);
  free(p->slot);
  free(p);
}

static short to_poll(uint32_t ev) {
  return (short)(((ev & CONC__EV_READ) ? POLLIN : 0) |
                 ((ev & CONC__EV_WRITE) ? POLLOUT : 0));
}

static int grow_slots(pl_t *p, int fd) {
  if (fd < p->nslot)
    return 0;
  int n = p->nslot ? p->nslot : 64;
  while (n <= fd)
    n *= 2;
  int *s = realloc(p->slot, (size_t)n * sizeof *s);
  if (!s)
    return CONC_ENOMEM;
  for (int i = p->nslot; i < n; i++)
    s[i] = -1;
  p->slot = s;
  p->nslot = n;
  return 0;
}

static int pl_add(pl_t *p, int fd, uint32_t events) {
  if (fcntl(fd, F_GETFD) < 0)
    return CONC_EBADF;
  if (grow_slots(p, fd))
    return CONC_ENOMEM;
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 64;
    struct pollfd *f = realloc(p->fds, (size_t)cap * sizeof *f);
    if (!f)
      return CONC_ENOMEM;
    p->fds = f;
    p->cap = cap;
  }
  p->fds[p->n] = (struct pollfd){.fd = fd, .events = to_poll(events)};
  p->slot[fd] = p->n++;
  return 0;
}

static int pl_ctl(void *state, int fd, uint32_t old, uint32_t events) {
  pl_t *p = state;
  if (!old)
    return pl_add(p, fd, events);
  if (fd >= p->nslot || p->slot[fd] < 0)
    return CONC_EBADF;
  int i = p->slot[fd];
  if (events) {
    p->fds[i].events = to_poll(events);
    return 0;
  }
  p->slot[fd] = -1;
  if (i != --p->n) {
    p->fds[i] = p->fds[p->n];
    p->slot[p->fds[i].fd] = i;
  }
  return 0;
}

static uint32_t from_poll(short r) {
  uint32_t ev = 0;
  if (r & (POLLIN | POLLPRI))
    ev |= CONC__EV_READ;
  if (r & POLLOUT)
    ev |= CONC__EV_WRITE;
  if (r & (POLLERR | POLLHUP | POLLNVAL))
    ev |= CONC__EV_ERR | CONC__EV_READ | CONC__EV_WRITE;
  return ev;
}

static int pl_wait(void *state, int64_t timeout_ns, conc__poll_ev_t *out,
                   int max) {
  pl_t *p = state;
  struct timespec ts, *tp = NULL;
  if (timeout_ns >= 0) {
    ts.tv_sec = (time_t)(timeout_ns / 1000000000);
    ts.tv_nsec = (long)(timeout_ns % 1000000000);
    tp = &ts;
  }
  int r = ppoll(p->fds, (nfds_t)p->n, tp, NULL);
  if (r < 0)
    return errno == EINTR ? 0 : CONC_EBADF;
  int k = 0;
  for (int j = 0; j < p->n && k < max && r > 0; j++) {
    int i = (p->cursor + j) % p->n;
    if (!p->fds[i].revents)
      continue;
    r--;
    out[k].fd = p->fds[i].fd;
    out[k].events = from_poll(p->fds[i].revents);
    k++;
  }
  if (p->n)
    p->cursor = (p->cursor + 1) % p->n;
  return k;
}

const conc__poll_ops_t conc__poll_poll_ops = {
    .name = "poll",
    .open = pl_open,
    .close = pl_close,
    .ctl = pl_ctl,
    .wait = pl_wait,
};
