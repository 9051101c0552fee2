/*
 * Cooperative socket calls (spec/coro.md H3): each suspends only its task;
 * timeouts, cancellation, refused connections, UDP, name resolution, and
 * the misuse codes of include/conc/aionet.h. The echo test runs on both
 * poller backends.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/aionet.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "harness.h"

static int run_main(conc_aio_fn_t fn, void *arg, conc_loop_backend_t b) {
  return conc_aio_run(fn, arg, &(conc_loop_opts_t){.backend = b}, NULL);
}

/* A listening TCP socket on 127.0.0.1 (or ::1), ephemeral port. */
static int listen_on(int family, struct sockaddr_storage *ss, socklen_t *len) {
  int fd;
  assert_int_equal(conc_aio_socket(family, SOCK_STREAM, 0, &fd), 0);
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    *len = sizeof *a;
  }
  if (bind(fd, (struct sockaddr *)ss, *len) != 0) {
    close(fd);
    return -1;
  }
  assert_int_equal(listen(fd, 64), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)ss, len), 0);
  return fd;
}

/* ---- H3: a recv suspends only its task ------------------------------------ */

typedef struct echo {
  int fds[2];
  int ticks; /* a third task counts while the reader waits */
  bool got;  /* the reader has its reply */
  char reply[16];
} echo_t;

static int ticker(void *arg, void **res) {
  (void)res;
  echo_t *e = arg;
  while (!e->got) {
    e->ticks++;
    if (conc_aio_sleep(0) != 0)
      return CONC_EFAILED;
  }
  return 0;
}

static int echo_server(void *arg, void **res) {
  (void)res;
  echo_t *e = arg;
  char buf[16];
  ssize_t n = conc_aio_sock_recv(e->fds[1], buf, sizeof buf, CONC_FOREVER);
  if (n <= 0)
    return (int)(n ? n : CONC_EFAILED);
  return conc_aio_sock_sendall(e->fds[1], buf, (size_t)n, CONC_FOREVER, NULL);
}

static int echo_client(void *arg, void **res) {
  (void)res;
  echo_t *e = arg;
  conc_aio_future_t *srv, *tick;
  assert_int_equal(conc_aio_create_task(NULL, echo_server, e, NULL, &srv), 0);
  assert_int_equal(conc_aio_create_task(NULL, ticker, e, NULL, &tick), 0);
  /* the server waits in recv while the ticker and this task keep running */
  while (e->ticks < 5)
    assert_int_equal(conc_aio_sleep(0), 0);
  assert_false(conc_aio_future_done(srv));
  assert_int_equal(conc_aio_sock_sendall(e->fds[0], "ping", 4, 1.0, NULL), 0);
  ssize_t n = conc_aio_sock_recv(e->fds[0], e->reply, sizeof e->reply, 1.0);
  assert_int_equal(n, 4);
  e->got = true;
  assert_int_equal(conc_aio_await(srv, NULL), 0);
  assert_int_equal(conc_aio_await(tick, NULL), 0);
  conc_aio_future_release(srv);
  conc_aio_future_release(tick);
  return 0;
}

static void recv_suspends_only_its_task(conc_loop_backend_t b) {
  echo_t e = {0};
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, e.fds),
                   0);
  assert_int_equal(run_main(echo_client, &e, b), 0);
  assert_memory_equal(e.reply, "ping", 4);
  assert_true(e.ticks >= 5); /* others ran while the server waited */
  close(e.fds[0]);
  close(e.fds[1]);
}

static void recv_suspends_only_its_task_epoll(void **state) {
  (void)state;
  recv_suspends_only_its_task(CONC_LOOP_BACKEND_EPOLL);
}

static void recv_suspends_only_its_task_poll(void **state) {
  (void)state;
  recv_suspends_only_its_task(CONC_LOOP_BACKEND_POLL);
}

/* ---- timeouts, cancel, busy ------------------------------------------------ */

static int timed_recv(void *arg, void **res) {
  (void)res;
  int *fds = arg;
  char c;
  double t0 = conc_monotonic();
  ssize_t n = conc_aio_sock_recv(fds[0], &c, 1, 0.05);
  assert_int_equal(n, CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);
  t0 = conc_monotonic();
  assert_int_equal(conc_aio_sock_recv(fds[0], &c, 1, 0), CONC_ETIMEDOUT);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(conc_aio_wait_readable(fds[0], 0.01), CONC_ETIMEDOUT);
  assert_int_equal(conc_aio_wait_writable(fds[0], 1.0), 0);
  return 0;
}

static void recv_with_a_timeout_ends_with_ETIMEDOUT(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  assert_int_equal(run_main(timed_recv, fds, 0), 0);
  close(fds[0]);
  close(fds[1]);
}

static int blocked_reader(void *arg, void **res) {
  (void)res;
  int *fds = arg;
  char c;
  return (int)conc_aio_sock_recv(fds[0], &c, 1, CONC_FOREVER);
}

static int cancel_reader_main(void *arg, void **res) {
  (void)res;
  conc_aio_future_t *t, *u;
  assert_int_equal(conc_aio_create_task(NULL, blocked_reader, arg, NULL, &t),
                   0);
  assert_int_equal(conc_aio_sleep(0.01), 0);
  /* a second task on the same fd and direction: refused */
  assert_int_equal(conc_aio_create_task(NULL, blocked_reader, arg, NULL, &u),
                   0);
  assert_int_equal(conc_aio_await(u, NULL), CONC_EBUSY);
  assert_true(conc_aio_cancel(t, NULL));
  assert_int_equal(conc_aio_await(t, NULL), CONC_ECANCELED);
  /* the wait is gone: a new reader can wait and gets the byte */
  int *fds = arg;
  assert_int_equal(write(fds[1], "x", 1), 1);
  char c;
  assert_int_equal(conc_aio_sock_recv(fds[0], &c, 1, 1.0), 1);
  conc_aio_future_release(t);
  conc_aio_future_release(u);
  return 0;
}

static void
cancel_ends_a_pending_recv_and_one_waiter_per_direction(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  assert_int_equal(run_main(cancel_reader_main, fds, 0), 0);
  close(fds[0]);
  close(fds[1]);
}

/* ---- TCP: accept, connect, refused, sendall of a large buffer -------------- */

enum { BIG = 4 << 20 };

typedef struct tcp {
  int family;
  int lfd;
  struct sockaddr_storage addr;
  socklen_t alen;
  unsigned char *buf;
  size_t got;
} tcp_t;

static int tcp_server(void *arg, void **res) {
  (void)res;
  tcp_t *t = arg;
  int c;
  struct sockaddr_storage peer;
  socklen_t pl = sizeof peer;
  int rc = conc_aio_sock_accept(t->lfd, 5.0, (struct sockaddr *)&peer, &pl, &c);
  if (rc)
    return rc;
  unsigned char tmp[65536];
  for (;;) {
    ssize_t n = conc_aio_sock_recv(c, tmp, sizeof tmp, 5.0);
    if (n < 0) {
      conc_aio_sock_close(c);
      return (int)n;
    }
    if (n == 0)
      break;
    memcpy(t->buf + t->got, tmp, (size_t)n);
    t->got += (size_t)n;
    conc_aio_sleep(0); /* a slow reader: the sender must wait */
  }
  return conc_aio_sock_close(c);
}

static int tcp_main(void *arg, void **res) {
  (void)res;
  tcp_t *t = arg;
  conc_aio_future_t *srv;
  assert_int_equal(conc_aio_create_task(NULL, tcp_server, t, NULL, &srv), 0);
  int fd;
  assert_int_equal(conc_aio_socket(t->family, SOCK_STREAM, 0, &fd), 0);
  assert_int_equal(
      conc_aio_sock_connect(fd, (struct sockaddr *)&t->addr, t->alen, 5.0), 0);
  unsigned char *out = malloc(BIG);
  for (size_t i = 0; i < BIG; i++)
    out[i] = (unsigned char)(i * 31 + 7);
  size_t sent = 0;
  assert_int_equal(conc_aio_sock_sendall(fd, out, BIG, 10.0, &sent), 0);
  assert_int_equal(sent, BIG);
  assert_int_equal(conc_aio_sock_close(fd), 0);
  assert_int_equal(conc_aio_await(srv, NULL), 0);
  assert_int_equal(t->got, BIG);
  assert_memory_equal(t->buf, out, BIG);
  free(out);
  conc_aio_future_release(srv);
  return 0;
}

static void tcp_connect_accept_and_sendall_move_every_byte(int family) {
  tcp_t t = {.family = family};
  t.lfd = listen_on(family, &t.addr, &t.alen);
  if (t.lfd < 0) {
    printf("# no %s loopback here: skipped\n",
           family == AF_INET6 ? "IPv6" : "IPv4");
    return;
  }
  t.buf = malloc(BIG);
  assert_int_equal(run_main(tcp_main, &t, 0), 0);
  free(t.buf);
  close(t.lfd);
}

static void tcp_ipv4_moves_every_byte(void **state) {
  (void)state;
  tcp_connect_accept_and_sendall_move_every_byte(AF_INET);
}

static void tcp_ipv6_moves_every_byte(void **state) {
  (void)state;
  tcp_connect_accept_and_sendall_move_every_byte(AF_INET6);
}

static int refused_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  struct sockaddr_storage ss;
  socklen_t len;
  int l = listen_on(AF_INET, &ss, &len);
  close(l); /* nobody listens on that port now */
  int fd;
  assert_int_equal(conc_aio_socket(AF_INET, SOCK_STREAM, 0, &fd), 0);
  int rc = conc_aio_sock_connect(fd, (struct sockaddr *)&ss, len, 5.0);
  conc_aio_sock_close(fd);
  return rc == CONC_ECONNREFUSED ? 0 : CONC_EFAILED;
}

static void
connecting_to_a_port_nobody_listens_on_is_ECONNREFUSED(void **state) {
  (void)state;
  assert_int_equal(run_main(refused_main, NULL, 0), 0);
}

static int reset_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  struct sockaddr_storage ss;
  socklen_t len;
  int l = listen_on(AF_INET, &ss, &len);
  int fd, c;
  assert_int_equal(conc_aio_socket(AF_INET, SOCK_STREAM, 0, &fd), 0);
  assert_int_equal(conc_aio_sock_connect(fd, (struct sockaddr *)&ss, len, 5),
                   0);
  assert_int_equal(conc_aio_sock_accept(l, 5, NULL, NULL, &c), 0);
  /* the peer resets: SO_LINGER 0 then close */
  struct linger lg = {1, 0};
  setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  conc_aio_sock_close(c);
  char b[8];
  ssize_t n = conc_aio_sock_recv(fd, b, sizeof b, 5.0);
  int rc = n == CONC_ECONNRESET ? 0 : CONC_EFAILED;
  /* writing to a reset connection: an error, never SIGPIPE */
  ssize_t w = 0;
  for (int i = 0; i < 4 && w >= 0; i++)
    w = conc_aio_sock_send(fd, "x", 1, 1.0);
  if (w != CONC_EPIPE && w != CONC_ECONNRESET)
    rc = CONC_EFAILED;
  conc_aio_sock_close(fd);
  close(l);
  return rc;
}

static void a_peer_reset_ends_recv_and_send_with_a_code(void **state) {
  (void)state;
  assert_int_equal(run_main(reset_main, NULL, 0), 0);
}

/* ---- UDP ------------------------------------------------------------------------ */

static int udp_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  int a, b;
  assert_int_equal(conc_aio_socket(AF_INET, SOCK_DGRAM, 0, &a), 0);
  assert_int_equal(conc_aio_socket(AF_INET, SOCK_DGRAM, 0, &b), 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  assert_int_equal(bind(b, (struct sockaddr *)&sa, sl), 0);
  assert_int_equal(getsockname(b, (struct sockaddr *)&sa, &sl), 0);
  assert_int_equal(
      conc_aio_sock_sendto(a, "dgram", 5, (struct sockaddr *)&sa, sl, 1.0), 5);
  char buf[16];
  struct sockaddr_storage from;
  socklen_t fl = sizeof from;
  assert_int_equal(conc_aio_sock_recvfrom(b, buf, sizeof buf,
                                          (struct sockaddr *)&from, &fl, 1.0),
                   5);
  assert_memory_equal(buf, "dgram", 5);
  assert_int_equal(((struct sockaddr *)&from)->sa_family, AF_INET);
  assert_int_equal(conc_aio_sock_recvfrom(b, buf, sizeof buf, NULL, NULL, 0.02),
                   CONC_ETIMEDOUT);
  conc_aio_sock_close(a);
  conc_aio_sock_close(b);
  return 0;
}

static void udp_sendto_and_recvfrom_carry_one_datagram(void **state) {
  (void)state;
  assert_int_equal(run_main(udp_main, NULL, 0), 0);
}

/* ---- name resolution -------------------------------------------------------- */

static int ticks_during_gai;

static int gai_ticker(void *arg, void **res) {
  (void)res;
  bool *stop = arg;
  while (!*stop) {
    ticks_during_gai++;
    conc_aio_sleep(0);
  }
  return 0;
}

static int gai_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  bool stop = false;
  conc_aio_future_t *tk;
  assert_int_equal(conc_aio_create_task(NULL, gai_ticker, &stop, NULL, &tk), 0);
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai = NULL;
  int gai = -1;
  assert_int_equal(conc_aio_getaddrinfo("127.0.0.1", "80", &hints, &gai, &ai),
                   0);
  assert_int_equal(gai, 0);
  assert_non_null(ai);
  assert_int_equal(ai->ai_family, AF_INET);
  char host[64], serv[16];
  assert_int_equal(conc_aio_getnameinfo(ai->ai_addr, ai->ai_addrlen, host,
                                        sizeof host, serv, sizeof serv,
                                        NI_NUMERICHOST | NI_NUMERICSERV, NULL),
                   0);
  assert_string_equal(host, "127.0.0.1");
  assert_string_equal(serv, "80");
  freeaddrinfo(ai);
  ai = NULL;
  hints.ai_flags = AI_NUMERICHOST;
  assert_int_equal(
      conc_aio_getaddrinfo("no such host", "80", &hints, &gai, &ai), CONC_EGAI);
  assert_int_equal(gai, EAI_NONAME);
  assert_null(ai);
  stop = true;
  assert_int_equal(conc_aio_await(tk, NULL), 0);
  conc_aio_future_release(tk);
  return 0;
}

static void name_resolution_runs_off_the_loop(void **state) {
  (void)state;
  ticks_during_gai = 0;
  assert_int_equal(run_main(gai_main, NULL, 0), 0);
  assert_true(ticks_during_gai >= 1);
}

static int gai_cancel_target(void *arg, void **res) {
  (void)arg;
  (void)res;
  struct addrinfo *ai = NULL;
  return conc_aio_getaddrinfo("localhost", "80", NULL, NULL, &ai);
}

static int gai_cancel_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_future_t *t;
  assert_int_equal(
      conc_aio_create_task(NULL, gai_cancel_target, NULL, NULL, &t), 0);
  assert_int_equal(conc_aio_sleep(0), 0); /* it is waiting for its thread */
  assert_true(conc_aio_cancel(t, NULL));
  int rc = conc_aio_await(t, NULL);
  conc_aio_future_release(t);
  return rc == CONC_ECANCELED ? 0 : CONC_EFAILED;
}

static void a_cancelled_resolution_leaves_nothing_behind(void **state) {
  (void)state;
  assert_int_equal(run_main(gai_cancel_main, NULL, 0), 0);
  conc_sleep(0.2); /* the detached resolver ends and frees alone (LSan) */
}

/* ---- misuse --------------------------------------------------------------------- */

static int misuse_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  char b[4];
  assert_int_equal(conc_aio_sock_recv(-1, b, 1, 1.0), CONC_EBADF);
  assert_int_equal(conc_aio_sock_recv(0, NULL, 4, 1.0), CONC_EINVAL);
  assert_int_equal(conc_aio_sock_recv(0, b, 4, 0.0 / 0.0), CONC_EINVAL);
  assert_int_equal(conc_aio_sock_send(-1, "x", 1, 1.0), CONC_EBADF);
  assert_int_equal(conc_aio_sock_connect(0, NULL, 0, 1.0), CONC_EINVAL);
  int fd;
  assert_int_equal(conc_aio_sock_accept(0, 1.0, NULL, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_socket(AF_INET, SOCK_STREAM, 0, NULL), CONC_EINVAL);
  assert_int_equal(conc_aio_sock_accept(-1, 1.0, NULL, NULL, &fd), CONC_EBADF);
  assert_int_equal(conc_aio_sock_close(-1), CONC_EBADF);
  assert_int_equal(conc_aio_getaddrinfo(NULL, NULL, NULL, NULL, NULL),
                   CONC_EINVAL);
  return 0;
}

static void bad_arguments_get_their_codes(void **state) {
  (void)state;
  assert_int_equal(run_main(misuse_main, NULL, 0), 0);
  char b[4];
  /* outside a task */
  assert_int_equal(conc_aio_sock_recv(0, b, 1, 1.0), CONC_ESTATE);
  assert_int_equal(conc_aio_wait_readable(0, 1.0), CONC_ESTATE);
  assert_int_equal(conc_aio_sock_sendall(1, "x", 1, 1.0, NULL), CONC_ESTATE);
}

CONC_TEST_MAIN(
    cmocka_unit_test(recv_suspends_only_its_task_epoll),
    cmocka_unit_test(recv_suspends_only_its_task_poll),
    cmocka_unit_test(recv_with_a_timeout_ends_with_ETIMEDOUT),
    cmocka_unit_test(cancel_ends_a_pending_recv_and_one_waiter_per_direction),
    cmocka_unit_test(tcp_ipv4_moves_every_byte),
    cmocka_unit_test(tcp_ipv6_moves_every_byte),
    cmocka_unit_test(connecting_to_a_port_nobody_listens_on_is_ECONNREFUSED),
    cmocka_unit_test(a_peer_reset_ends_recv_and_send_with_a_code),
    cmocka_unit_test(udp_sendto_and_recvfrom_carry_one_datagram),
    cmocka_unit_test(name_resolution_runs_off_the_loop),
    cmocka_unit_test(a_cancelled_resolution_leaves_nothing_behind),
    cmocka_unit_test(bad_arguments_get_their_codes))
