/*
 * Pipe / Connection / wait over packet-mode pipes (pipe2(O_DIRECT)), or
 * AF_UNIX SOCK_SEQPACKET sockets where the kernel lacks them.
 *
 * Transport: a one-way Pipe is one packet-mode pipe; a duplex Pipe is two
 * (one per direction: a pipe round trip costs well under a socket's) plus a
 * SOCK_SEQPACKET pair used only for passed descriptors. A descriptor message
 * is an R_FD record on the pipe naming a sequence number; the descriptor
 * travels on the socket with the same number, sent first, under the same
 * wlock. The receiver, on the R_FD record, takes socket messages up to that
 * number (never blocking), closing older ones: a writer or reader killed
 * between the two halves leaves an orphan that the next one discards.
 *
 * Framing: a message is a run of records, each [header][payload <=
 * CONC_CONN_RECORD]; the first record carries FIRST and the message's total
 * size, the last one LAST (a short message is one FIRST|LAST record). A
 * packet-mode pipe write of at most PIPE_BUF bytes, like a SEQPACKET send,
 * is atomic: a record is queued whole or not at all, even if the sender is
 * killed during the call.
 *
 * Locking protocol: each end has a small MAP_SHARED block with two
 * process-shared Locks, shared by every process holding that end:
 *   wlock  held by a writer for a whole message, so the records of two
 *          messages never interleave;
 *   rlock  held by a reader for a whole message, so two readers never split
 *          one message between them.
 * A writer killed mid-message leaves wlock owner-dead: the next writer gets
 * CONC_EOWNERDEAD and first sends an ABORT record, on which readers drop the
 * partial message. A reader killed mid-message leaves rlock owner-dead: the
 * next reader skips records up to the next FIRST. The pending message and
 * the scratch record buffer are per process (ordinary heap memory) and are
 * only touched under rlock.
 */
#include "conc/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/shared.h"
#include "conc/time.h"
#include "channel-int.h"
#include "platform-int.h"
#include "sync-int.h"

enum { R_FIRST = 1, R_LAST = 2, R_ABORT = 4, R_FD = 8 };

int conc__conn_crash_point;

struct rec {
  uint32_t flags;
  uint32_t len; /* payload bytes in this record */
  uint64_t total;
  uint64_t seq; /* R_FD: the number of the descriptor on the socket */
};

/* Largest payload of one record on this connection: a pipe record must fit
 * PIPE_BUF to be written atomically. */
static size_t record_max(const conc_conn_t *c) {
  return c->priv.packet_pipe ? PIPE_BUF - sizeof(struct rec) : CONC_CONN_RECORD;
}

/* One end's shared state. The record counts are a hint for a reader's spin
 * and never decide what a receive returns: the pipe does. */
struct conc__conn_shared {
  conc_lock_t wlock, rlock;
  uint64_t fd_seq; /* last descriptor number sent from this end (wlock) */
  uint32_t nospin; /* counts out of step (a process died): never spin */
  /* records written toward this end, counted after each write, and records
   * read at this end (rlock); their own line, away from the locks */
  _Alignas(64) uint32_t arrived;
  uint32_t taken;
};

/* Both ends' state in one shared page; each end has its own mapping of it
 * (mremap with old size 0 maps the same pages again), so closing one end
 * leaves the other end's mapping alone. */
struct pair {
  struct conc__conn_shared end[2];
};
#define PAIR_MAP 4096
_Static_assert(sizeof(struct pair) <= PAIR_MAP, "pair fits its page");

/* ---- setup ------------------------------------------------------------- */

static void end_init(conc_conn_t *c, int fd, int wfd, int sockfd, bool r,
                     bool w) {
  memset(c, 0, sizeof *c);
  c->priv.fd = fd;
  c->priv.wfd = wfd;
  c->priv.sockfd = sockfd;
  c->priv.readable = r;
  c->priv.writable = w;
  int sz = 4 * CONC_CONN_RECORD;
  if (sockfd < 0) /* ENOTSOCK on a pipe */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

/* The shared page for a pair: *ma for end a, *mb (the same pages) for b. */
static int map_pair(void **ma, void **mb) {
  void *m = mmap(NULL, PAIR_MAP, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return CONC_ENOMEM;
  void *m2 = mremap(m, 0, PAIR_MAP, MREMAP_MAYMOVE);
  if (m2 == MAP_FAILED) {
    munmap(m, PAIR_MAP);
    return CONC_ENOMEM;
  }
  struct pair *p = m;
  conc_lock_opts_t o = {.pshared = true};
  for (int i = 0; i < 2; i++) {
    conc_lock_init(&p->end[i].wlock, &o);
    conc_lock_init(&p->end[i].rlock, &o);
  }
  *ma = m;
  *mb = m2;
  return 0;
}

static void attach(conc_conn_t *c, void *map, int side) {
  struct pair *p = map;
  c->priv.map = map;
  c->priv.sh = &p->end[side];
  c->priv.peer = &p->end[!side];
}

static void close_all(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
}

/* fds: the transport descriptors: [a read, b write, b read, a write, socket
 * a, socket b] for pipes (-1 where absent), [a, b] for a socket pair. */
static int make_fds(int *fds, bool duplex, bool *packet) {
  for (int i = 0; i < 6; i++)
    fds[i] = -1;
  *packet = pipe2(fds, O_DIRECT | O_CLOEXEC) == 0;
  if (*packet && duplex &&
      (pipe2(fds + 2, O_DIRECT | O_CLOEXEC) < 0 ||
       socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds + 4) < 0)) {
    int err = errno;
    close_all(fds, 6);
    return -err;
  }
  if (!*packet &&
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
    return -errno;
  return 0;
}

int conc_pipe(conc_conn_t *a, conc_conn_t *b, bool duplex) {
  if (!a || !b || a == b)
    return CONC_EINVAL;
  void *ma, *mb;
  int rc = map_pair(&ma, &mb);
  if (rc)
    return rc;
  int f[6];
  bool packet;
  if ((rc = make_fds(f, duplex, &packet))) {
    munmap(ma, PAIR_MAP);
    munmap(mb, PAIR_MAP);
    return rc;
  }
  if (packet) {
    end_init(a, f[0], f[3], f[4], true, duplex);
    end_init(b, duplex ? f[2] : f[1], f[1], f[5], duplex, true);
  } else {
    end_init(a, f[0], f[0], -1, true, duplex);
    end_init(b, f[1], f[1], -1, duplex, true);
  }
  attach(a, ma, 0);
  attach(b, mb, 1);
  a->priv.packet_pipe = b->priv.packet_pipe = packet;
  if (!duplex && !packet) { /* the kernel enforces the direction too */
    shutdown(f[0], SHUT_WR);
    shutdown(f[1], SHUT_RD);
  }
  return 0;
}

static int check(const conc_conn_t *c, bool write) {
  if (!c)
    return CONC_EINVAL;
  if (c->priv.closed)
    return CONC_ECLOSED;
  if (write ? !c->priv.writable : !c->priv.readable)
    return CONC_EBADF; /* connection is read-only / write-only */
  return 0;
}

/* ---- sending ----------------------------------------------------------- */

#ifndef RWF_NOSIGNAL
#define RWF_NOSIGNAL 0x00000100 /* Linux 6.16 uapi/linux/fs.h */
#endif

/* pwritev2(RWF_NOSIGNAL) is used while the kernel takes it. Not under TSan,
 * which does not see a raw system call and would miss the ordering a pipe
 * write gives between threads. */
#if defined(CONC_SANITIZER_thread) || defined(__SANITIZE_THREAD__)
#define CHANNEL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHANNEL_TSAN 1
#endif
#endif
#if defined(SYS_pwritev2) && !defined(CHANNEL_TSAN)
#define HAVE_NOSIGNAL_WRITE 1
static int nosignal_write = 1;
#endif

/* A write to a pipe whose reader is gone raises SIGPIPE; a Connection
 * reports CONC_EPIPE instead, as a socket does with MSG_NOSIGNAL. Where the
 * kernel has RWF_NOSIGNAL, the write says so itself; elsewhere SIGPIPE is
 * blocked in this thread around the write and the one the write raised (a
 * thread-directed signal) is consumed before the mask is restored. */
static int pipe_write(int fd, const struct iovec *iov, int n) {
#ifdef HAVE_NOSIGNAL_WRITE
  if (__atomic_load_n(&nosignal_write, __ATOMIC_RELAXED)) {
    long r; /* offset -1 (both halves): the file position, as writev */
    while ((r = syscall(SYS_pwritev2, fd, iov, n, -1L, -1L, RWF_NOSIGNAL)) <
               0 &&
           errno == EINTR)
      ;
    if (r >= 0)
      return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS)
      return -errno;
    __atomic_store_n(&nosignal_write, 0, __ATOMIC_RELAXED); /* before 6.16 */
  }
#endif
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t r;
  while ((r = writev(fd, iov, n)) < 0 && errno == EINTR)
    ;
  int err = r < 0 ? errno : 0;
  if (err == EPIPE && !sigismember(&old, SIGPIPE)) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return -err;
}

/* sendmsg of iov (with sendfd attached when >= 0) on a socket. */
static int sock_send(int fd, struct iovec *iov, int n, int sendfd) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } cm;
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
  if (sendfd >= 0) {
    memset(&cm, 0, sizeof cm);
    m.msg_control = cm.buf;
    m.msg_controllen = sizeof cm.buf;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&m);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &sendfd, sizeof(int));
  }
  while (sendmsg(fd, &m, MSG_NOSIGNAL) < 0)
    if (errno != EINTR)
      return -errno;
  return 0;
}

/* After a record is queued: count it for the peer's spinning reader. */
static int counted(const conc_conn_t *c, int rc) {
  if (rc == 0 && conc__conn_crash_point == 2)
    raise(SIGKILL);
  if (rc == 0)
    __atomic_fetch_add(&c->priv.peer->arrived, 1u, __ATOMIC_RELEASE);
  return rc;
}

/* On a pipe-built duplex end: the descriptor goes on the socket, numbered,
 * and the pipe gets the R_FD record naming it. Caller holds wlock. */
static int send_fd_record(conc_conn_t *c, int sendfd) {
  uint64_t seq = ++c->priv.sh->fd_seq;
  struct iovec iov = {&seq, sizeof seq};
  int rc = sock_send(c->priv.sockfd, &iov, 1, sendfd);
  if (rc)
    return rc;
  if (conc__conn_crash_point == 1)
    raise(SIGKILL);
  struct rec h = {.flags = R_FIRST | R_LAST | R_FD, .seq = seq};
  struct iovec hv = {&h, sizeof h};
  return counted(c, pipe_write(c->priv.wfd, &hv, 1));
}

static int send_record(const conc_conn_t *c, const struct rec *h, const void *p,
                       int sendfd) {
  struct iovec iov[2] = {{(void *)(uintptr_t)h, sizeof *h},
                         {(void *)(uintptr_t)p, h->len}};
  if (c->priv.packet_pipe)
    return counted(c, pipe_write(c->priv.wfd, iov, h->len ? 2 : 1));
  return counted(c, sock_send(c->priv.fd, iov, h->len ? 2 : 1, sendfd));
}

static int send_message(conc_conn_t *c, const unsigned char *p, size_t len,
                        int sendfd) {
  conc_lock_t *wl = &c->priv.sh->wlock;
  int rc = conc_lock_acquire(wl);
  if (rc == CONC_EOWNERDEAD) { /* a writer died mid-message: cancel it */
    struct rec abort_rec = {.flags = R_ABORT};
    conc_lock_mark_consistent(wl);
    __atomic_store_n(&c->priv.peer->nospin, 1u, __ATOMIC_RELAXED);
    rc = send_record(c, &abort_rec, NULL, -1);
    if (rc)
      conc_lock_release(wl);
  }
  if (rc)
    return rc;
  if (sendfd >= 0 && c->priv.packet_pipe) {
    rc = send_fd_record(c, sendfd);
    conc_lock_release(wl);
    return rc;
  }
  size_t off = 0;
  do {
    size_t max = record_max(c);
    size_t n = len - off < max ? len - off : max;
    struct rec h = {.flags = (off == 0 ? R_FIRST : 0) |
                             (off + n == len ? R_LAST : 0),
                    .len = (uint32_t)n,
                    .total = len};
    rc = send_record(c, &h, p + off, off == 0 ? sendfd : -1);
    off += n;
  } while (rc == 0 && off < len);
  conc_lock_release(wl);
  return rc;
}

int conc_conn_send_bytes_ex(conc_conn_t *c, const void *buf, size_t len,
                            size_t offset, size_t size) {
  int rc = check(c, true);
  if (rc)
    return rc;
  if (!buf && len)
    return CONC_EINVAL;
  if (offset > len)
    return CONC_EINVAL; /* buffer length < offset */
  if (size == CONC_CONN_REST)
    size = len - offset;
  if (size > len - offset)
    return CONC_EINVAL; /* buffer length < offset + size */
  return send_message(c, (const unsigned char *)buf + offset, size, -1);
}

int conc_conn_send_bytes(conc_conn_t *c, const void *buf, size_t len) {
  return conc_conn_send_bytes_ex(c, buf, len, 0, CONC_CONN_REST);
}

int conc_conn_send_fd(conc_conn_t *c, int fd) {
  int rc = check(c, true);
  if (rc)
    return rc;
  if (fd < 0 || (c->priv.packet_pipe && c->priv.sockfd < 0))
    return CONC_EBADF; /* a one-way Pipe has no socket for descriptors */
  return send_message(c, (const unsigned char *)"", 0, fd);
}

/* ---- receiving --------------------------------------------------------- */

/* The first descriptor attached to m (the others closed), or -1. */
static int take_cmsg_fds(struct msghdr *m) {
  int fd = -1;
  for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(m); cmsg;
       cmsg = CMSG_NXTHDR(m, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
      continue;
    size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int got;
      memcpy(&got, CMSG_DATA(cmsg) + i * sizeof(int), sizeof got);
      if (fd < 0)
        fd = got;
      else
        close(got);
    }
  }
  return fd;
}

/* The descriptor numbered seq from the socket of a pipe-built duplex end, or
 * -1 (its sender died before sending it). Older ones are orphans of killed
 * writers or readers: closed. Never blocks: the sender sent it first. */
static int take_passed_fd(conc_conn_t *c, uint64_t seq) {
  for (;;) {
    uint64_t got = 0;
    struct iovec iov = {&got, sizeof got};
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(4 * sizeof(int))];
    } cm;
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = cm.buf,
                       .msg_controllen = sizeof cm.buf};
    ssize_t r;
    while ((r = recvmsg(c->priv.sockfd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) <
               0 &&
           errno == EINTR)
      ;
    if (r <= 0)
      return -1;
    int fd = take_cmsg_fds(&m);
    if (r == sizeof got && got == seq)
      return fd;
    if (fd >= 0)
      close(fd);
    if (r == sizeof got && got > seq)
      return -1;
  }
}

/* Before a blocking read: while no record has arrived, watch the arrival
 * count for a while (adaptive, see sync-int.h). A reader that sleeps in the
 * kernel pays a wake-up, which on a virtual machine whose other CPU went
 * idle costs tens of microseconds; a round trip between two spinning
 * processes costs about two system calls each. Caller holds rlock. */
static void await_record(conc_conn_t *c, conc_deadline_t deadline) {
  struct conc__conn_shared *sh = c->priv.sh;
  uint32_t t = __atomic_load_n(&sh->taken, __ATOMIC_RELAXED);
  if (__atomic_load_n(&sh->arrived, __ATOMIC_ACQUIRE) != t ||
      __atomic_load_n(&sh->nospin, __ATOMIC_RELAXED) ||
      !conc__spin_begin(&c->priv.spin_skip, deadline))
    return;
  bool paid = conc__spin_while(&sh->arrived, t, true);
  conc__spin_end(&c->priv.spin_skip, &c->priv.spin_fails, paid);
}

/* One record into scratch; *fd gets a passed descriptor or -1. 1 record,
 * 0 EOF, or an error. */
static int recv_record(conc_conn_t *c, struct rec *h, int *fd) {
  struct iovec iov[2] = {{h, sizeof *h}, {c->priv.scratch, CONC_CONN_RECORD}};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(4 * sizeof(int))];
  } cm;
  struct msghdr m = {.msg_iov = iov,
                     .msg_iovlen = 2,
                     .msg_control = cm.buf,
                     .msg_controllen = sizeof cm.buf};
  ssize_t r;
  *fd = -1;
  await_record(c, CONC_DEADLINE_NEVER);
  if (c->priv.packet_pipe) {
    /* a packet-mode read returns exactly one record */
    while ((r = readv(c->priv.fd, iov, 2)) < 0)
      if (errno != EINTR)
        return -errno;
    m.msg_controllen = 0;
  } else {
    while ((r = recvmsg(c->priv.fd, &m, MSG_CMSG_CLOEXEC)) < 0)
      if (errno != EINTR)
        return -errno;
  }
  if (!c->priv.packet_pipe)
    *fd = take_cmsg_fds(&m);
  if (r == 0)
    return 0;
  __atomic_store_n(&c->priv.sh->taken, c->priv.sh->taken + 1u,
                   __ATOMIC_RELAXED);
  if ((size_t)r < sizeof *h || h->len != (size_t)r - sizeof *h) {
    h->flags = R_ABORT; /* malformed: treat as a cancelled message */
    h->len = 0;
  }
  if ((h->flags & R_FD) && c->priv.sockfd >= 0)
    *fd = take_passed_fd(c, h->seq);
  return 1;
}

/* Receive the next whole message into c->priv.pending. Caller holds rlock;
 * `skip` drops records up to the next FIRST. A message longer than `max`
 * is not read past its first record: CONC_EMSGSIZE, its size in
 * pending_len (the readers that follow drop the rest of it). */
static int recv_message_locked(conc_conn_t *c, bool skip, size_t max,
                               int *fd_out) {
  if (!c->priv.scratch && !(c->priv.scratch = malloc(CONC_CONN_RECORD)))
    return CONC_ENOMEM;
  unsigned char *msg = NULL;
  size_t have = 0, total = 0;
  int msgfd = -1;
  for (;;) {
    struct rec h;
    int fd = -1, rc = recv_record(c, &h, &fd);
    if (rc <= 0) {
      free(msg);
      if (msgfd >= 0)
        close(msgfd);
      if (fd >= 0 && rc == 0)
        close(fd);
      return rc == 0 ? CONC_EEOF : rc;
    }
    if (h.flags & R_FIRST) {
      free(msg);
      if (msgfd >= 0)
        close(msgfd);
      skip = false;
      total = h.total;
      have = 0;
      msgfd = fd;
      fd = -1;
      if (total > max) {
        if (msgfd >= 0)
          close(msgfd);
        c->priv.pending_len = total;
        return CONC_EMSGSIZE;
      }
      msg = malloc(total ? total : 1);
      if (!msg) { /* drop what cannot be held, keep the stream in step */
        skip = true;
        if (msgfd >= 0)
          close(msgfd);
        msgfd = -1;
        continue;
      }
    }
    if (fd >= 0)
      close(fd);
    if ((h.flags & R_ABORT) || skip || !msg || h.len > total - have) {
      free(msg);
      msg = NULL;
      if (msgfd >= 0)
        close(msgfd);
      msgfd = -1;
      continue;
    }
    memcpy(msg + have, c->priv.scratch, h.len);
    have += h.len;
    if (h.flags & R_LAST) {
      if (have != total) {
        free(msg);
        msg = NULL;
        continue;
      }
      c->priv.pending = msg;
      c->priv.pending_len = total;
      c->priv.has_pending = true;
      if (fd_out)
        *fd_out = msgfd;
      else if (msgfd >= 0)
        close(msgfd);
      return 0;
    }
  }
}

/* Make sure a message is pending (taking rlock for the receive). */
static int fill_pending(conc_conn_t *c, size_t max, int *fd_out) {
  if (fd_out)
    *fd_out = -1;
  if (c->priv.has_pending)
    return 0;
  conc_lock_t *rl = &c->priv.sh->rlock;
  int rc = conc_lock_acquire(rl);
  bool skip = rc == CONC_EOWNERDEAD;
  if (skip) {
    conc_lock_mark_consistent(rl);
    __atomic_store_n(&c->priv.sh->nospin, 1u, __ATOMIC_RELAXED);
  } else if (rc)
    return rc;
  rc = recv_message_locked(c, skip, max, fd_out);
  conc_lock_release(rl);
  return rc;
}

static void take_pending(conc_conn_t *c) {
  c->priv.pending = NULL;
  c->priv.pending_len = 0;
  c->priv.has_pending = false;
}

/* Python's _bad_message_length: a duplex end stops reading, a read-only
 * end is closed. */
static int bad_length(conc_conn_t *c, size_t *len) {
  *len = c->priv.pending_len;
  free(c->priv.pending);
  take_pending(c);
  if (c->priv.writable)
    c->priv.readable = false;
  else
    conc_conn_close(c);
  return CONC_EMSGSIZE;
}

int conc_conn_recv_bytes_max(conc_conn_t *c, size_t maxlength, void **out,
                             size_t *len) {
  int rc = check(c, false);
  if (rc)
    return rc;
  if (!out || !len)
    return CONC_EINVAL;
  if (c->priv.has_pending && c->priv.pending_len > maxlength)
    return bad_length(c, len);
  if ((rc = fill_pending(c, maxlength, NULL)))
    return rc == CONC_EMSGSIZE ? bad_length(c, len) : rc;
  *out = c->priv.pending;
  *len = c->priv.pending_len;
  take_pending(c);
  return 0;
}

int conc_conn_recv_bytes(conc_conn_t *c, void **out, size_t *len) {
  return conc_conn_recv_bytes_max(c, SIZE_MAX, out, len);
}

int conc_conn_recv_bytes_into(conc_conn_t *c, void *buf, size_t cap,
                              size_t offset, size_t *len) {
  int rc = check(c, false);
  if (rc)
    return rc;
  if (!len || (!buf && cap))
    return CONC_EINVAL;
  if (offset > cap)
    return CONC_EINVAL; /* negative offset / offset out of bounds */
  if ((rc = fill_pending(c, SIZE_MAX, NULL)))
    return rc;
  *len = c->priv.pending_len;
  if (c->priv.pending_len > cap - offset)
    return CONC_ETOOSHORT; /* the message stays pending */
  memcpy((unsigned char *)buf + offset, c->priv.pending, c->priv.pending_len);
  free(c->priv.pending);
  take_pending(c);
  return 0;
}

int conc_conn_recv_fd(conc_conn_t *c, int *fd) {
  int rc = check(c, false);
  if (rc)
    return rc;
  if (!fd)
    return CONC_EINVAL;
  int got = -1;
  if (c->priv.has_pending) { /* a data message is next: it carries no fd */
    free(c->priv.pending);
    take_pending(c);
    return CONC_EBADF;
  }
  if ((rc = fill_pending(c, SIZE_MAX, &got)))
    return rc;
  free(c->priv.pending);
  take_pending(c);
  if (got < 0)
    return CONC_EBADF; /* data with no descriptor attached */
  *fd = got;
  return 0;
}

/* ---- poll / wait ------------------------------------------------------- */

static int poll_fds(struct pollfd *pf, int n, conc_deadline_t deadline) {
  for (;;) {
    struct timespec ts, *tsp = NULL;
    if (deadline != CONC_DEADLINE_NEVER) {
      int64_t left = deadline - conc__now_ns();
      if (left < 0)
        left = 0;
      ts.tv_sec = (time_t)(left / 1000000000);
      ts.tv_nsec = (long)(left % 1000000000);
      tsp = &ts;
    }
    int r = ppoll(pf, (nfds_t)n, tsp, NULL);
    if (r >= 0)
      return r;
    if (errno != EINTR)
      return -errno;
  }
}

int conc_conn_poll(conc_conn_t *c, double timeout) {
  int rc = check(c, false);
  if (rc)
    return rc;
  if (c->priv.has_pending)
    return 1;
  conc_deadline_t dl;
  if ((rc = conc_deadline_after(timeout, &dl)))
    return rc;
  await_record(c, dl); /* a poll-then-receive loop spins too */
  struct pollfd pf = {.fd = c->priv.fd, .events = POLLIN};
  rc = poll_fds(&pf, 1, dl);
  return rc < 0 ? rc : rc > 0;
}

int conc_wait(conc_waitable_t *objs, int n, double timeout) {
  if (n < 0 || (n > 0 && !objs))
    return CONC_EINVAL;
  conc_deadline_t dl;
  int rc = conc_deadline_after(timeout, &dl);
  if (rc)
    return rc;
  struct pollfd small[16],
      *pf = n <= 16 ? small : malloc(sizeof *pf * (size_t)n);
  if (!pf)
    return CONC_ENOMEM;
  int ready = 0;
  for (int i = 0; i < n; i++) {
    objs[i].ready = false;
    int fd = objs[i].fd;
    if (objs[i].conn) {
      if (objs[i].conn->priv.closed) {
        rc = CONC_ECLOSED;
        goto out;
      }
      fd = objs[i].conn->priv.fd;
      if (objs[i].conn->priv.has_pending) {
        objs[i].ready = true;
        ready++;
      }
    }
    pf[i] = (struct pollfd){.fd = fd, .events = POLLIN};
  }
  rc = poll_fds(pf, n, ready ? conc__now_ns() : dl);
  if (rc < 0)
    goto out;
  for (int i = 0; i < n; i++)
    if (!objs[i].ready && pf[i].revents) {
      objs[i].ready = true;
      ready++;
    }
  rc = ready;
out:
  if (pf != small)
    free(pf);
  return rc;
}

/* ---- close / attributes ------------------------------------------------ */

int conc_conn_close(conc_conn_t *c) {
  if (!c)
    return CONC_EINVAL;
  if (c->priv.closed)
    return 0;
  close(c->priv.fd);
  if (c->priv.wfd >= 0 && c->priv.wfd != c->priv.fd)
    close(c->priv.wfd);
  if (c->priv.sockfd >= 0)
    close(c->priv.sockfd);
  munmap(c->priv.map, PAIR_MAP);
  free(c->priv.pending);
  free(c->priv.scratch);
  c->priv.fd = c->priv.wfd = c->priv.sockfd = -1;
  c->priv.sh = c->priv.peer = NULL;
  c->priv.map = NULL;
  c->priv.scratch = NULL;
  take_pending(c);
  c->priv.closed = true;
  return 0;
}

int conc_conn_fileno(const conc_conn_t *c) {
  if (!c)
    return CONC_EINVAL;
  return c->priv.closed ? CONC_ECLOSED : c->priv.fd;
}

bool conc_conn_readable(const conc_conn_t *c) { return c && c->priv.readable; }
bool conc_conn_writable(const conc_conn_t *c) { return c && c->priv.writable; }
bool conc_conn_closed(const conc_conn_t *c) { return !c || c->priv.closed; }
