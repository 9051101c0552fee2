/*
 * The loop's io_uring backend (CMake CONC_WITH_IO_URING=ON, liburing; a
 * loop picks it with CONC_LOOP_BACKEND_IO_URING or CONC_LOOP_BACKEND=io_uring
 * and falls back to epoll when the kernel refuses a ring). Readiness only:
 * one single-shot IORING_OP_POLL_ADD is armed per watched descriptor and
 * re-armed, in the same io_uring_enter as the next wait, after it fires.
 * A single-shot poll completes at once when the descriptor is already
 * ready, so the loop sees level-triggered readiness, as from epoll.
 *
 * Locking protocol: none; a poller belongs to one loop and so to one thread.
 *
 * A poll's user_data is (generation << 32) | fd. Changing or dropping what
 * a descriptor watches bumps its generation and cancels the armed poll, so
 * a completion of the old poll (or the -ECANCELED it ends with) is ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "loop-int.h"

typedef struct ufd {
  uint32_t want;  /* CONC__EV_* the loop watches */
  uint32_t armed; /* what the armed poll waits for (0: none armed) */
  uint32_t gen;
  uint8_t queued; /* in the to-arm list */
} ufd_t;

typedef struct ur {
  struct io_uring ring;
  ufd_t *fds;
  int nfds;
  int *arm;
  int narm, arm_cap;
} ur_t;

enum { RING_ENTRIES = 1024 };
#define IGNORED_UD UINT64_MAX

static int ur_open(void **state) {
  ur_t *u = calloc(1, sizeof *u);
  if (!u)
    return CONC_ENOMEM;
  int rc = io_uring_queue_init(RING_ENTRIES, &u->ring, 0);
  if (rc < 0) {
    free(u);
    return rc == -ENOMEM ? CONC_ENOMEM : CONC_ENOSYS;
  }
  *state = u;
  return 0;
}

static void ur_close(void *state) {
  ur_t *u = state;
  io_uring_queue_exit(&u->ring);
  free(u->fds);
  free(u->arm);
  free(u);
}

static struct io_uring_sqe *sqe_get(ur_t *u) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
  if (!sqe) { /* full: hand what is queued to the kernel first */
    io_uring_submit(&u->ring);
    sqe = io_uring_get_sqe(&u->ring);
  }
  return sqe;
}

static uint64_t ud_of(int fd, const ufd_t *f) {
  return ((uint64_t)f->gen << 32) | (uint32_t)fd;
}

static int grow(ur_t *u, int fd) {
  if (fd < u->nfds)
    return 0;
  int n = u->nfds ? u->nfds : 64;
  while (n <= fd)
    n *= 2;
  ufd_t *f = realloc(u->fds, (size_t)n * sizeof *f);
  if (!f)
    return CONC_ENOMEM;
  memset(f + u->nfds, 0, (size_t)(n - u->nfds) * sizeof *f);
  u->fds = f;
  u->nfds = n;
  return 0;
}

static int queue_arm(ur_t *u, int fd) {
  ufd_t *f = &u->fds[fd];
  if (f->queued)
    return 0;
  if (u->narm == u->arm_cap) {
    int cap = u->arm_cap ? u->arm_cap * 2 : 64;
    int *a = realloc(u->arm, (size_t)cap * sizeof *a);
    if (!a)
      return CONC_ENOMEM;
    u->arm = a;
    u->arm_cap = cap;
  }
  u->arm[u->narm++] = fd;
  f->queued = 1;
  return 0;
}

static int ur_ctl(void *state, int fd, uint32_t old, uint32_t events) {
  ur_t *u = state;
  (void)old;
  if (fd < 0 || (!old && events && fcntl(fd, F_GETFD) < 0))
    return CONC_EBADF; /* as epoll says at once; a poll would say later */
  if (grow(u, fd))
    return CONC_ENOMEM;
  ufd_t *f = &u->fds[fd];
  if (f->armed && f->armed != events) {
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
      return CONC_ENOMEM;
    io_uring_prep_poll_remove(sqe, ud_of(fd, f));
    io_uring_sqe_set_data64(sqe, IGNORED_UD);
    f->armed = 0;
    f->gen++;
    if (!events) /* the descriptor may be closed next: let go of it now */
      io_uring_submit(&u->ring);
  }
  f->want = events;
  return events && !f->armed ? queue_arm(u, fd) : 0;
}

static unsigned to_poll(uint32_t ev) {
  return ((ev & CONC__EV_READ) ? (unsigned)(POLLIN | POLLRDHUP) : 0u) |
         ((ev & CONC__EV_WRITE) ? (unsigned)POLLOUT : 0u);
}

static uint32_t from_poll(int res) {
  uint32_t ev = 0;
  if (res & (POLLIN | POLLPRI | POLLRDHUP))
    ev |= CONC__EV_READ;
  if (res & POLLOUT)
    ev |= CONC__EV_WRITE;
  if (res & (POLLERR | POLLHUP | POLLNVAL))
    ev |= CONC__EV_ERR | CONC__EV_READ | CONC__EV_WRITE;
  return ev;
}

static void arm_pending(ur_t *u) {
  for (int i = 0; i < u->narm; i++) {
    int fd = u->arm[i];
    ufd_t *f = &u->fds[fd];
    f->queued = 0;
    if (!f->want || f->armed)
      continue;
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe) { /* keep the rest for the next wait */
      memmove(u->arm, u->arm + i, (size_t)(u->narm - i) * sizeof *u->arm);
      u->narm -= i;
      for (int j = 0; j < u->narm; j++)
        u->fds[u->arm[j]].queued = 1;
      return;
    }
    io_uring_prep_poll_add(sqe, fd, to_poll(f->want));
    io_uring_sqe_set_data64(sqe, ud_of(fd, f));
    f->armed = f->want;
  }
  u->narm = 0;
}

/* One completion: an event for out, or nothing (stale or ignored). */
static bool reap(ur_t *u, const struct io_uring_cqe *cqe, conc__poll_ev_t *ev) {
  uint64_t ud = io_uring_cqe_get_data64(cqe);
  if (ud == IGNORED_UD)
    return false;
  int fd = (int)(uint32_t)ud;
  if (fd >= u->nfds)
    return false;
  ufd_t *f = &u->fds[fd];
  if ((uint32_t)(ud >> 32) != f->gen || !f->armed)
    return false;
  f->armed = 0;
  if (f->want)
    queue_arm(u, fd); /* re-armed with the next wait */
  ev->fd = fd;
  ev->events = cqe->res < 0 ? CONC__EV_ERR | CONC__EV_READ | CONC__EV_WRITE
                            : from_poll(cqe->res);
  return true;
}

static int ur_wait(void *state, int64_t timeout_ns, conc__poll_ev_t *out,
                   int max) {
  ur_t *u = state;
  arm_pending(u);
  struct io_uring_cqe *cqe;
  int rc;
  if (timeout_ns == 0) {
    rc = io_uring_submit(&u->ring);
  } else {
    struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000,
                                   .tv_nsec = timeout_ns % 1000000000};
    rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1,
                                          timeout_ns < 0 ? NULL : &ts, NULL);
  }
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
    return CONC_EBADF;
  int n = 0;
  unsigned head, seen = 0;
  io_uring_for_each_cqe(&u->ring, head, cqe) {
    if (n == max)
      break;
    seen++;
    if (reap(u, cqe, &out[n]))
      n++;
  }
  io_uring_cq_advance(&u->ring, seen);
  return n;
}

const conc__poll_ops_t conc__poll_uring_ops = {
    .name = "io_uring",
    .open = ur_open,
    .close = ur_close,
    .ctl = ur_ctl,
    .wait = ur_wait,
};
