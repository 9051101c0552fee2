/*
 * Connections and servers on streams: open_connection (TCP over IPv4/IPv6,
 * Unix) and start_server, with one accepting task per listening socket and
 * one handler task per connection.
 *
 * Locking protocol: none; a server belongs to its loop's thread. The server
 * record is shared by the user's handle, the accepting tasks and the
 * handler tasks through a plain reference count, so the user may release
 * it while handlers still run.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conc/aionet.h"
#include "conc/aiostream.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "conc/time.h"
#include "loop-int.h"

enum { MAX_LISTEN = 4 };

typedef struct acc {
  struct conc_aio_server *srv;
  int fd;
  int family;
} acc_t;

struct conc_aio_server {
  int refs;
  int fds[MAX_LISTEN];
  int families[MAX_LISTEN];
  int nfd;
  conc_aio_future_t *accepters[MAX_LISTEN];
  acc_t acc[MAX_LISTEN];
  conc_aio_stream_handler_t handler;
  void *arg;
  conc_aio_server_opts_t opts;
  size_t nconn;
  bool closed;
  char *unix_path;
  conc_aio_future_t *closed_f; /* done once closed (serve_forever) */
  conc_aio_future_t *idle_f;   /* done once closed and no handler runs */
};

/* ---- connecting -------------------------------------------------------------- */

static void tcp_nodelay(int fd) {
  int one = 1; /* asyncio's default for TCP: small writes go out at once */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int connect_one(const struct addrinfo *ai, int *out) {
  int fd;
  int rc =
      conc_aio_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol, &fd);
  if (rc)
    return rc;
  rc = conc_aio_sock_connect(fd, ai->ai_addr, ai->ai_addrlen, CONC_FOREVER);
  if (rc) {
    conc_aio_sock_close(fd);
    return rc;
  }
  if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
    tcp_nodelay(fd);
  *out = fd;
  return 0;
}

static int resolve(const char *host, int port, int flags,
                   struct addrinfo **out) {
  char serv[16];
  snprintf(serv, sizeof serv, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = flags | AI_NUMERICHOST | AI_NUMERICSERV};
  /* A numeric host needs no resolver thread. */
  if (getaddrinfo(host, serv, &hints, out) == 0)
    return 0;
  hints.ai_flags &= ~AI_NUMERICHOST;
  return conc_aio_getaddrinfo(host, serv, &hints, NULL, out);
}

int conc_aio_open_connection(const char *host, int port,
                             const conc_aio_stream_opts_t *opts,
                             conc_aio_stream_t **out) {
  if (!host || !out || port < 0 || port > 65535)
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  struct addrinfo *ai;
  int rc = resolve(host, port, 0, &ai);
  if (rc)
    return rc;
  int fd = -1;
  rc = CONC_EGAI;
  for (struct addrinfo *p = ai; p; p = p->ai_next) {
    rc = connect_one(p, &fd);
    if (rc == 0 || rc == CONC_ECANCELED)
      break;
  }
  freeaddrinfo(ai);
  return rc ? rc : conc_aio_stream_from_fd(fd, opts, out);
}

static int unix_addr(const char *path, struct sockaddr_un *sa) {
  if (!path || strlen(path) >= sizeof sa->sun_path)
    return CONC_EINVAL;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  strcpy(sa->sun_path, path);
  return 0;
}

int conc_aio_open_unix_connection(const char *path,
                                  const conc_aio_stream_opts_t *opts,
                                  conc_aio_stream_t **out) {
  struct sockaddr_un sa;
  int rc = unix_addr(path, &sa);
  if (rc || !out)
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  struct addrinfo ai = {.ai_family = AF_UNIX,
                        .ai_socktype = SOCK_STREAM,
                        .ai_addr = (struct sockaddr *)&sa,
                        .ai_addrlen = sizeof sa};
  int fd;
  rc = connect_one(&ai, &fd);
  return rc ? rc : conc_aio_stream_from_fd(fd, opts, out);
}

/* ---- serving ------------------------------------------------------------------- */

static void srv_release(conc_aio_server_t *srv) {
  if (--srv->refs > 0)
    return;
  conc_aio_future_release(srv->closed_f);
  conc_aio_future_release(srv->idle_f);
  free(srv->unix_path);
  free(srv);
}

static void check_idle(conc_aio_server_t *srv) {
  if (srv->closed && srv->nconn == 0 && !conc_aio_future_done(srv->idle_f))
    conc_aio_future_set_result(srv->idle_f, NULL);
}

typedef struct conn {
  conc_aio_server_t *srv;
  conc_aio_stream_t *s;
} conn_t;

static int conn_task(void *arg, void **res) {
  (void)res;
  conn_t *c = arg;
  int rc = c->srv->handler(c->s, c->srv->arg);
  conc_aio_stream_close(c->s);
  if (rc != CONC_ECANCELED)
    conc_aio_stream_wait_closed(c->s); /* the handler's last words go out */
  return rc;
}

/* The connection's end, run as its task's done callback: also for a task
 * cancelled before it ever ran, so nothing it was given leaks. */
static void conn_done(conc_aio_future_t *f, void *arg) {
  conn_t *c = arg;
  int rc = conc_aio_future_exception(f);
  if (rc != CONC_ECONNRESET && rc != CONC_EPIPE && rc != 0 &&
      rc != CONC_ECANCELED && !conc_loop_is_closed(conc_aio_future_loop(f)))
    conc__loop_report(conc_aio_future_loop(f), "connection handler failed: %s",
                      conc_err_name(rc));
  /* A peer that went away is the connection's normal end, not an error. */
  conc_aio_stream_release(c->s);
  c->srv->nconn--;
  check_idle(c->srv);
  srv_release(c->srv);
  free(c);
}

static int start_conn(conc_aio_server_t *srv, int fd) {
  conn_t *c = malloc(sizeof *c);
  if (!c) {
    close(fd);
    return CONC_ENOMEM;
  }
  c->srv = srv;
  conc_aio_future_t *t = NULL;
  int rc = conc_aio_stream_from_fd(fd, &srv->opts.stream, &c->s);
  if (rc == 0)
    rc = conc_aio_create_task(NULL, conn_task, c, NULL, &t);
  else
    c->s = NULL;
  if (rc == 0)
    rc = conc_aio_future_add_done_callback(t, conn_done, c);
  if (rc) {
    if (t) /* a task that will not run: it owns nothing */
      conc_aio_cancel(t, NULL);
    conc_aio_future_release(t);
    conc_aio_stream_release(c->s);
    free(c);
    return rc;
  }
  conc_aio_future_release(t);
  srv->refs++;
  srv->nconn++;
  return 0;
}

static int accept_task(void *arg, void **res) {
  (void)res;
  acc_t *a = arg;
  while (!a->srv->closed) {
    int c;
    int rc = conc_aio_sock_accept(a->fd, CONC_FOREVER, NULL, NULL, &c);
    if (rc == CONC_ECANCELED)
      break;
    if (rc) {
      /* Out of descriptors or memory, or the socket is in use elsewhere:
       * let the rest of the program run and try again (asyncio waits 1 s
       * after EMFILE). */
      if (conc_aio_sleep(0.1) == CONC_ECANCELED)
        break;
      continue;
    }
    if (a->family != AF_UNIX)
      tcp_nodelay(c);
    start_conn(a->srv, c);
  }
  return 0;
}

static void acc_done(conc_aio_future_t *f, void *arg) {
  (void)f;
  srv_release(((acc_t *)arg)->srv);
}

static int listen_fd(conc_aio_server_t *srv, const struct addrinfo *ai) {
  if (srv->nfd == MAX_LISTEN)
    return 0;
  int fd, one = 1;
  int rc =
      conc_aio_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol, &fd);
  if (rc)
    return rc;
  if (ai->ai_family != AF_UNIX)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (srv->opts.reuse_port)
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (ai->ai_family == AF_INET6) /* one socket per family */
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  int backlog = srv->opts.backlog > 0 ? srv->opts.backlog : 100;
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  srv->families[srv->nfd] = ai->ai_family;
  srv->fds[srv->nfd++] = fd;
  return 0;
}

static int start_accepting(conc_aio_server_t *srv) {
  for (int i = 0; i < srv->nfd; i++) {
    acc_t *a = &srv->acc[i];
    *a = (acc_t){srv, srv->fds[i], srv->families[i]};
    int rc =
        conc_aio_create_task(NULL, accept_task, a,
                             &(conc_aio_task_opts_t){.name = "server accept",
                                                     .stack_size = 64 * 1024},
                             &srv->accepters[i]);
    if (rc == 0)
      rc = conc_aio_future_add_done_callback(srv->accepters[i], acc_done, a);
    if (rc)
      return rc;
    srv->refs++;
  }
  return 0;
}

static int srv_new(conc_aio_stream_handler_t handler, void *arg,
                   const conc_aio_server_opts_t *opts,
                   conc_aio_server_t **out) {
  conc_loop_t *loop = conc_loop_get();
  if (!handler || !out || !loop)
    return CONC_EINVAL;
  conc_aio_server_t *srv = calloc(1, sizeof *srv);
  if (!srv)
    return CONC_ENOMEM;
  srv->refs = 1;
  srv->handler = handler;
  srv->arg = arg;
  if (opts)
    srv->opts = *opts;
  int rc = conc_aio_future_create(loop, &srv->closed_f);
  if (rc == 0)
    rc = conc_aio_future_create(loop, &srv->idle_f);
  if (rc) {
    conc_aio_future_release(srv->closed_f);
    free(srv);
    return rc;
  }
  *out = srv;
  return 0;
}

static int srv_finish(conc_aio_server_t *srv, int rc, conc_aio_server_t **out) {
  if (rc == 0 && srv->nfd == 0)
    rc = CONC_EADDRNOTAVAIL;
  if (rc == 0)
    rc = start_accepting(srv);
  if (rc) {
    conc_aio_server_release(srv);
    return rc;
  }
  *out = srv;
  return 0;
}

int conc_aio_start_server(conc_aio_stream_handler_t handler, void *arg,
                          const char *host, int port,
                          const conc_aio_server_opts_t *opts,
                          conc_aio_server_t **out) {
  if (port < 0 || port > 65535)
    return CONC_EINVAL;
  conc_aio_server_t *srv;
  int rc = srv_new(handler, arg, opts, &srv);
  if (rc)
    return rc;
  struct addrinfo *ai = NULL;
  if (host && conc_aio_current_task())
    rc = resolve(host, port, AI_PASSIVE, &ai);
  else {
    char serv[16];
    snprintf(serv, sizeof serv, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    rc = getaddrinfo(host, serv, &hints, &ai) == 0 ? 0 : CONC_EGAI;
  }
  for (struct addrinfo *p = ai; rc == 0 && p; p = p->ai_next)
    rc = listen_fd(srv, p);
  if (ai)
    freeaddrinfo(ai);
  return srv_finish(srv, rc, out);
}

int conc_aio_start_unix_server(conc_aio_stream_handler_t handler, void *arg,
                               const char *path,
                               const conc_aio_server_opts_t *opts,
                               conc_aio_server_t **out) {
  struct sockaddr_un sa;
  if (unix_addr(path, &sa))
    return CONC_EINVAL;
  conc_aio_server_t *srv;
  int rc = srv_new(handler, arg, opts, &srv);
  if (rc)
    return rc;
  srv->unix_path = strdup(path);
  unlink(path); /* a stale socket file from an earlier run */
  struct addrinfo ai = {.ai_family = AF_UNIX,
                        .ai_socktype = SOCK_STREAM,
                        .ai_addr = (struct sockaddr *)&sa,
                        .ai_addrlen = sizeof sa};
  rc = srv->unix_path ? listen_fd(srv, &ai) : CONC_ENOMEM;
  return srv_finish(srv, rc, out);
}

int conc_aio_server_port(const conc_aio_server_t *srv) {
  if (!srv || srv->nfd == 0 || srv->closed)
    return 0;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(srv->fds[0], (struct sockaddr *)&ss, &sl) != 0)
    return 0;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

size_t conc_aio_server_sockets(const conc_aio_server_t *srv, int *fds,
                               size_t cap) {
  if (!srv || srv->closed)
    return 0;
  for (int i = 0; i < srv->nfd && (size_t)i < cap; i++)
    fds[i] = srv->fds[i];
  return (size_t)srv->nfd;
}

bool conc_aio_server_is_serving(const conc_aio_server_t *srv) {
  return srv && !srv->closed;
}

size_t conc_aio_server_connections(const conc_aio_server_t *srv) {
  return srv ? srv->nconn : 0;
}

int conc_aio_server_close(conc_aio_server_t *srv) {
  if (!srv)
    return CONC_EINVAL;
  if (srv->closed)
    return 0;
  srv->closed = true;
  for (int i = 0; i < srv->nfd; i++) {
    if (srv->accepters[i]) {
      conc_aio_cancel(srv->accepters[i], NULL);
      conc_aio_future_release(srv->accepters[i]);
      srv->accepters[i] = NULL;
    }
    conc_aio_sock_close(srv->fds[i]);
  }
  if (srv->unix_path)
    unlink(srv->unix_path);
  conc_aio_future_set_result(srv->closed_f, NULL);
  check_idle(srv);
  return 0;
}

/* Await a future that several tasks may wait on: through a shield, so a
 * waiter that is cancelled cancels only its own wait, not the others'. */
static int await_shared(conc_aio_future_t *f) {
  conc_aio_future_t *s;
  int rc = conc_aio_shield(f, &s);
  if (rc)
    return rc;
  rc = conc_aio_await(s, NULL);
  conc_aio_future_release(s);
  return rc;
}

int conc_aio_server_wait_closed(conc_aio_server_t *srv) {
  if (!srv)
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  if (!srv->closed)
    return CONC_ESTATE; /* nothing would end the wait */
  return await_shared(srv->idle_f);
}

int conc_aio_server_serve_forever(conc_aio_server_t *srv) {
  if (!srv)
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  int rc = await_shared(srv->closed_f);
  if (rc == CONC_ECANCELED)
    conc_aio_server_close(srv);
  return rc;
}

void conc_aio_server_release(conc_aio_server_t *srv) {
  if (!srv)
    return;
  conc_aio_server_close(srv);
  srv_release(srv);
}
