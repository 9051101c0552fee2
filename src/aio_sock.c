/*
 * Cooperative socket calls: try the system call, and when it would block,
 * suspend only the calling task until the loop sees the descriptor ready
 * (conc__aio_wait_io), then try again. Name resolution runs on a detached
 * thread per request (see "name resolution off the loop" below).
 *
 * Locking protocol: none for the socket calls: every one runs in a task on
 * the loop's thread and the waits are the loop's (thread-confined). A
 * resolver thread and its task share only the request record, with an
 * atomic reference count and a release/acquire pair on `done`.
 */
#include "conc/aionet.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/loop.h"
#include "conc/time.h"
#include "loop-int.h"
#include "platform-int.h"

/* What is left of the call's one deadline, as a timeout for the next wait
 * (CONC_FOREVER stays). */
static double left(int64_t deadline) {
  if (deadline == INT64_MAX)
    return CONC_FOREVER;
  int64_t d = deadline - conc__now_ns();
  return d > 0 ? (double)d / 1e9 : 0.0;
}

static int deadline_of(double timeout, int64_t *out) {
  if (isnan(timeout))
    return CONC_EINVAL;
  if (timeout == CONC_FOREVER)
    *out = INT64_MAX;
  else if (timeout <= 0)
    *out = conc__now_ns();
  else if (timeout >= CONC_TIMEOUT_MAX)
    *out = INT64_MAX - 1;
  else
    *out = conc__now_ns() + conc__ns_ceil(timeout);
  return 0;
}

static bool in_task(void) { return conc_aio_current_task() != NULL; }

/* The checks every data call starts with, and its one deadline. */
static int enter(const void *buf, size_t n, double timeout, int64_t *deadline) {
  if (!buf && n)
    return CONC_EINVAL;
  if (!in_task())
    return CONC_ESTATE;
  return deadline_of(timeout, deadline);
}

static int would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

/* Wait for `bit` with what is left of the deadline; a try-once call that
 * would block is a timeout. */
static int wait_left(int fd, uint32_t bit, int64_t deadline) {
  double t = left(deadline);
  if (t == 0.0)
    return CONC_ETIMEDOUT;
  return conc__aio_wait_io(fd, bit, t);
}

int conc_aio_wait_readable(int fd, double timeout) {
  if (!in_task())
    return CONC_ESTATE;
  return conc__aio_wait_io(fd, CONC__EV_READ, timeout);
}

int conc_aio_wait_writable(int fd, double timeout) {
  if (!in_task())
    return CONC_ESTATE;
  return conc__aio_wait_io(fd, CONC__EV_WRITE, timeout);
}

int conc_aio_set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  return 0;
}

int conc_aio_socket(int domain, int type, int protocol, int *out) {
  if (!out)
    return CONC_EINVAL;
  int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0)
    return -errno;
  *out = fd;
  return 0;
}

void conc_aio_sock_forget(int fd) {
  conc_loop_t *loop = conc_loop_running();
  if (!loop)
    loop = conc_loop_get();
  if (loop && conc__loop_check(loop) == 0)
    conc__loop_io_forget(loop, fd);
}

int conc_aio_sock_close(int fd) {
  if (fd < 0)
    return CONC_EBADF;
  conc_aio_sock_forget(fd);
  return close(fd) == 0 ? 0 : -errno;
}

int conc_aio_sock_connect(int fd, const struct sockaddr *addr, socklen_t len,
                          double timeout) {
  int64_t deadline;
  if (!addr)
    return CONC_EINVAL;
  if (!in_task())
    return CONC_ESTATE;
  int rc = deadline_of(timeout, &deadline);
  if (rc)
    return rc;
  if (connect(fd, addr, len) == 0)
    return 0;
  if (errno != EINPROGRESS && errno != EINTR)
    return -errno;
  rc = conc__aio_wait_io(fd, CONC__EV_WRITE, left(deadline));
  if (rc)
    return rc;
  int err = 0;
  socklen_t el = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
    return -errno;
  return err ? -err : 0;
}

int conc_aio_sock_accept(int fd, double timeout, struct sockaddr *addr,
                         socklen_t *len, int *out) {
  int64_t deadline;
  if (!out || (addr && !len))
    return CONC_EINVAL;
  if (!in_task())
    return CONC_ESTATE;
  int rc = deadline_of(timeout, &deadline);
  if (rc)
    return rc;
  for (;;) {
    int c = accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      *out = c;
      return 0;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue; /* the connection went before we took it: take the next */
    if (!would_block(errno))
      return -errno;
    rc = wait_left(fd, CONC__EV_READ, deadline);
    if (rc)
      return rc;
  }
}

static ssize_t recv_common(int fd, void *buf, size_t n, struct sockaddr *from,
                           socklen_t *fromlen, double timeout) {
  int64_t deadline;
  int rc = enter(buf, n, timeout, &deadline);
  if (rc)
    return rc;
  if (n == 0 && !from)
    return 0;
  /* A stream recv that came back short last time most likely drained the
   * socket: wait for readiness first rather than pay a recv that fails
   * with EAGAIN (one per message in an echo loop). Datagrams always try. */
  conc_loop_t *loop = conc_loop_running();
  if (!from && left(deadline) != 0.0 && conc__loop_io_drained(loop, fd)) {
    rc = wait_left(fd, CONC__EV_READ, deadline);
    if (rc)
      return rc;
  }
  for (;;) {
    ssize_t r =
        from ? recvfrom(fd, buf, n, 0, from, fromlen) : recv(fd, buf, n, 0);
    if (r >= 0) {
      if (!from)
        conc__loop_io_set_drained(loop, fd, r > 0 && (size_t)r < n);
      return r;
    }
    if (errno == EINTR)
      continue;
    if (!would_block(errno))
      return -errno;
    rc = wait_left(fd, CONC__EV_READ, deadline);
    if (rc)
      return rc;
  }
}

ssize_t conc_aio_sock_recv(int fd, void *buf, size_t n, double timeout) {
  return recv_common(fd, buf, n, NULL, NULL, timeout);
}

ssize_t conc_aio_sock_recv_into(int fd, void *buf, size_t n, double timeout) {
  return recv_common(fd, buf, n, NULL, NULL, timeout);
}

ssize_t conc_aio_sock_recvfrom(int fd, void *buf, size_t n,
                               struct sockaddr *from, socklen_t *fromlen,
                               double timeout) {
  if (from && !fromlen)
    return CONC_EINVAL;
  if (!from) {
    static __thread struct sockaddr_storage scratch;
    static __thread socklen_t scratch_len;
    scratch_len = sizeof scratch;
    return recv_common(fd, buf, n, (struct sockaddr *)&scratch, &scratch_len,
                       timeout);
  }
  return recv_common(fd, buf, n, from, fromlen, timeout);
}

static ssize_t send_common(int fd, const void *buf, size_t n,
                           const struct sockaddr *to, socklen_t tolen,
                           int64_t deadline) {
  for (;;) {
    ssize_t w = to ? sendto(fd, buf, n, MSG_NOSIGNAL, to, tolen)
                   : send(fd, buf, n, MSG_NOSIGNAL);
    if (w >= 0)
      return w;
    if (errno == EINTR)
      continue;
    if (!would_block(errno))
      return -errno;
    int rc = wait_left(fd, CONC__EV_WRITE, deadline);
    if (rc)
      return rc;
  }
}

ssize_t conc_aio_sock_send(int fd, const void *buf, size_t n, double timeout) {
  int64_t deadline;
  int rc = enter(buf, n, timeout, &deadline);
  if (rc)
    return rc;
  if (n == 0)
    return 0;
  return send_common(fd, buf, n, NULL, 0, deadline);
}

ssize_t conc_aio_sock_sendto(int fd, const void *buf, size_t n,
                             const struct sockaddr *to, socklen_t tolen,
                             double timeout) {
  int64_t deadline;
  int rc = to ? enter(buf, n, timeout, &deadline) : CONC_EINVAL;
  if (rc)
    return rc;
  return send_common(fd, buf, n, to, tolen, deadline);
}

int conc_aio_sock_sendall(int fd, const void *buf, size_t n, double timeout,
                          size_t *sent) {
  int64_t deadline;
  size_t done = 0;
  int rc = enter(buf, n, timeout, &deadline);
  while (rc == 0 && done < n) {
    ssize_t w =
        send_common(fd, (const char *)buf + done, n - done, NULL, 0, deadline);
    if (w < 0)
      rc = (int)w;
    else
      done += (size_t)w;
  }
  if (sent)
    *sent = done;
  return rc;
}

/* ---- name resolution off the loop --------------------------------------- */

/*
 * Each request runs getaddrinfo / getnameinfo on a detached thread of its
 * own (resolution takes milliseconds; a thread costs tens of microseconds)
 * and signals an eventfd that the task waits on. The record is shared by
 * the worker and the task with an atomic count: a task cancelled while the
 * worker runs just drops its reference, and whichever side is last frees
 * the record, the answer and the eventfd. The worker never touches the
 * loop, so a loop destroyed meanwhile is no hazard. Everything the worker
 * reads is copied into the record first.
 */
typedef struct gai_req {
  int refs;
  int done;
  int efd;
  int gai;
  int err;
  bool reverse;
  char *host, *port; /* forward: copies of the caller's strings */
  struct addrinfo hints;
  bool has_hints;
  struct addrinfo *res;
  struct sockaddr_storage addr; /* reverse */
  socklen_t addrlen;
  int flags;
  char rhost[NI_MAXHOST], rserv[NI_MAXSERV];
} gai_req_t;

static void req_release(gai_req_t *r) {
  if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) != 0)
    return;
  if (r->efd >= 0)
    close(r->efd);
  if (r->res)
    freeaddrinfo(r->res);
  free(r->host);
  free(r->port);
  free(r);
}

static void *resolver(void *p) {
  gai_req_t *r = p;
  if (r->reverse)
    r->gai = getnameinfo((struct sockaddr *)&r->addr, r->addrlen, r->rhost,
                         sizeof r->rhost, r->rserv, sizeof r->rserv, r->flags);
  else
    r->gai =
        getaddrinfo(r->host, r->port, r->has_hints ? &r->hints : NULL, &r->res);
  r->err = errno;
  __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  ssize_t w = write(r->efd, &one, sizeof one);
  (void)w;
  req_release(r);
  return NULL;
}

/* Start the worker and wait for it. The caller always releases one
 * reference afterwards (the worker holds the other while it runs). */
static int resolve(gai_req_t *r) {
  r->refs = 1;
  r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (r->efd < 0)
    return -errno;
  pthread_attr_t at;
  pthread_t th;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 256 * 1024);
  r->refs = 2;
  int e = pthread_create(&th, &at, resolver, r);
  pthread_attr_destroy(&at);
  if (e) {
    r->refs = 1;
    return CONC_ENOMEM;
  }
  int rc = conc__aio_wait_io(r->efd, CONC__EV_READ, CONC_FOREVER);
  conc_aio_sock_forget(r->efd);
  /* the eventfd is written after done: this load pairs with that store */
  if (rc == 0 && !__atomic_load_n(&r->done, __ATOMIC_ACQUIRE))
    rc = CONC_EIO;
  return rc;
}

static int gai_code(int gai, int err) {
  switch (gai) {
  case 0:
    return 0;
  case EAI_MEMORY:
    return CONC_ENOMEM;
  case EAI_SYSTEM:
    return err ? -err : CONC_EGAI;
  default:
    return CONC_EGAI;
  }
}

static char *dup_or_null(const char *s, bool *fail) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *fail = true;
  return d;
}

int conc_aio_getaddrinfo(const char *host, const char *port,
                         const struct addrinfo *hints, int *gai_code_out,
                         struct addrinfo **out) {
  if (!out || (!host && !port))
    return CONC_EINVAL;
  if (!in_task())
    return CONC_ESTATE;
  gai_req_t *r = calloc(1, sizeof *r);
  if (!r)
    return CONC_ENOMEM;
  bool fail = false;
  r->host = dup_or_null(host, &fail);
  r->port = dup_or_null(port, &fail);
  if (hints) {
    r->has_hints = true;
    r->hints.ai_flags = hints->ai_flags;
    r->hints.ai_family = hints->ai_family;
    r->hints.ai_socktype = hints->ai_socktype;
    r->hints.ai_protocol = hints->ai_protocol;
  }
  if (fail) {
    free(r->host);
    free(r->port);
    free(r);
    return CONC_ENOMEM;
  }
  int rc = resolve(r);
  if (rc == 0) {
    if (gai_code_out)
      *gai_code_out = r->gai;
    rc = gai_code(r->gai, r->err);
    if (rc == 0) {
      *out = r->res;
      r->res = NULL;
    }
  }
  req_release(r);
  return rc;
}

int conc_aio_getnameinfo(const struct sockaddr *addr, socklen_t len, char *host,
                         size_t hostlen, char *serv, size_t servlen, int flags,
                         int *gai_code_out) {
  if (!addr || (!host && !serv) || len > sizeof(struct sockaddr_storage))
    return CONC_EINVAL;
  if (!in_task())
    return CONC_ESTATE;
  gai_req_t *r = calloc(1, sizeof *r);
  if (!r)
    return CONC_ENOMEM;
  r->reverse = true;
  memcpy(&r->addr, addr, len);
  r->addrlen = len;
  r->flags = flags;
  int rc = resolve(r);
  if (rc == 0) {
    if (gai_code_out)
      *gai_code_out = r->gai;
    rc = gai_code(r->gai, r->err);
    if (rc == 0 && host && hostlen)
      snprintf(host, hostlen, "%s", r->rhost);
    if (rc == 0 && serv && servlen)
      snprintf(serv, servlen, "%s", r->rserv);
  }
  req_release(r);
  return rc;
}
