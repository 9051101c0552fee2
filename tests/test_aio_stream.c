/*
 * Streams and servers (spec/coro.md N1-N3): echo over TCP (IPv4, IPv6) and
 * Unix sockets, readexactly/readuntil/readline rules, back-pressure, server
 * close while handlers run, thousands of connections on one thread, and
 * 10,000 abandoned connections leaving nothing behind.
 */
#include <dirent.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/aionet.h"
#include "conc/aiostream.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "harness.h"

#if defined(CONC_SANITIZER_address) || defined(CONC_SANITIZER_thread) ||       \
    defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

/* Yield until srv has n running handlers (the accept may take a while on
 * a loaded machine); false after 10 s. */
static bool await_connections(conc_aio_server_t *srv, size_t n) {
  for (int i = 0; i < 2000; i++) {
    if (conc_aio_server_connections(srv) == n)
      return true;
    conc_aio_sleep(0.005);
  }
  return false;
}

static int run_main(conc_aio_fn_t fn, void *arg) {
  return conc_aio_run(fn, arg, NULL, NULL);
}

/* ---- N1: an echo server ------------------------------------------------------ */

static int echo_handler(conc_aio_stream_t *s, void *arg) {
  (void)arg;
  char line[256];
  for (;;) {
    ssize_t n = conc_aio_stream_readline(s, line, sizeof line);
    if (n <= 0)
      return n == 0 ? 0 : (int)n;
    int rc = conc_aio_stream_write(s, line, (size_t)n);
    if (rc == 0)
      rc = conc_aio_stream_drain(s);
    if (rc)
      return rc;
  }
}

typedef struct echo_cfg {
  const char *host; /* NULL: Unix socket at path */
  const char *path;
} echo_cfg_t;

static int echo_main(void *arg, void **res) {
  (void)res;
  echo_cfg_t *cfg = arg;
  conc_aio_server_t *srv;
  int rc = cfg->host ? conc_aio_start_server(echo_handler, NULL, cfg->host, 0,
                                             NULL, &srv)
                     : conc_aio_start_unix_server(echo_handler, NULL, cfg->path,
                                                  NULL, &srv);
  if (rc == -EAFNOSUPPORT || rc == CONC_EADDRNOTAVAIL || rc == CONC_EGAI) {
    printf("# %s not available here: skipped\n", cfg->host);
    return 0;
  }
  assert_int_equal(rc, 0);
  assert_true(conc_aio_server_is_serving(srv));
  conc_aio_stream_t *s;
  if (cfg->host)
    assert_int_equal(conc_aio_open_connection(
                         cfg->host, conc_aio_server_port(srv), NULL, &s),
                     0);
  else
    assert_int_equal(conc_aio_open_unix_connection(cfg->path, NULL, &s), 0);
  struct iovec iov[2] = {{"hello ", 6}, {"world\n", 6}};
  assert_int_equal(conc_aio_stream_writelines(s, iov, 2), 0);
  assert_int_equal(conc_aio_stream_write(s, "second\n", 7), 0);
  assert_int_equal(conc_aio_stream_drain(s), 0);
  char buf[64];
  assert_int_equal(conc_aio_stream_readline(s, buf, sizeof buf), 12);
  assert_memory_equal(buf, "hello world\n", 12);
  size_t got;
  assert_int_equal(conc_aio_stream_readexactly(s, buf, 7, &got), 0);
  assert_memory_equal(buf, "second\n", 7);
  if (cfg->host) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    assert_int_equal(conc_aio_stream_peername(s, (struct sockaddr *)&ss, &sl),
                     0);
    int port = ss.ss_family == AF_INET
                   ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    assert_int_equal(port, conc_aio_server_port(srv));
    sl = sizeof ss;
    assert_int_equal(conc_aio_stream_sockname(s, (struct sockaddr *)&ss, &sl),
                     0);
  }
  assert_int_equal(conc_aio_stream_close(s), 0);
  assert_true(conc_aio_stream_is_closing(s));
  assert_int_equal(conc_aio_stream_write(s, "x", 1), CONC_ECLOSED);
  assert_int_equal(conc_aio_stream_wait_closed(s), 0);
  conc_aio_stream_release(s);
  assert_int_equal(conc_aio_server_close(srv), 0);
  assert_int_equal(conc_aio_server_wait_closed(srv), 0);
  assert_int_equal(conc_aio_server_connections(srv), 0);
  conc_aio_server_release(srv);
  return 0;
}

static void echo_over_tcp_ipv4(void **state) {
  (void)state;
  echo_cfg_t c = {.host = "127.0.0.1"};
  assert_int_equal(run_main(echo_main, &c), 0);
}

static void echo_over_tcp_ipv6(void **state) {
  (void)state;
  echo_cfg_t c = {.host = "::1"};
  assert_int_equal(run_main(echo_main, &c), 0);
}

static void echo_over_a_unix_socket(void **state) {
  (void)state;
  char path[64];
  snprintf(path, sizeof path, "/tmp/conc-test-%d.sock", (int)getpid());
  echo_cfg_t c = {.path = path};
  assert_int_equal(run_main(echo_main, &c), 0);
  assert_int_equal(access(path, F_OK), -1); /* close removed the file */
}

/* ---- reader rules ------------------------------------------------------------- */

typedef struct pairs {
  int fds[2];
} pairs_t;

static int reader_rules_main(void *arg, void **res) {
  (void)res;
  pairs_t *p = arg;
  conc_aio_stream_t *s;
  assert_int_equal(conc_aio_stream_from_fd(
                       p->fds[0], &(conc_aio_stream_opts_t){.limit = 16}, &s),
                   0);
  const char data[] = "abc\r\nthis line is far too long\nend";
  assert_int_equal(write(p->fds[1], data, sizeof data - 1),
                   (ssize_t)(sizeof data - 1));
  shutdown(p->fds[1], SHUT_WR);
  char buf[64];
  size_t got = 0;
  assert_int_equal(
      conc_aio_stream_readuntil(s, "\r\n", 2, buf, sizeof buf, &got), 0);
  assert_int_equal(got, 5);
  assert_memory_equal(buf, "abc\r\n", 5);
  assert_int_equal(conc_aio_stream_readuntil(s, "", 0, buf, sizeof buf, &got),
                   CONC_EINVAL);
  /* a line over the limit: LimitOverrunError; readline drops it */
  assert_int_equal(conc_aio_stream_readuntil(s, "\n", 1, buf, sizeof buf, &got),
                   CONC_ELIMIT);
  assert_int_equal(conc_aio_stream_readline(s, buf, sizeof buf), CONC_ELIMIT);
  /* what is left ends without a separator: e.partial */
  assert_int_equal(conc_aio_stream_readexactly(s, buf, 10, &got),
                   CONC_EINCOMPLETE);
  assert_int_equal(got, 3);
  assert_memory_equal(buf, "end", 3);
  assert_true(conc_aio_stream_at_eof(s));
  assert_int_equal(conc_aio_stream_read(s, buf, sizeof buf), 0);
  assert_int_equal(conc_aio_stream_readline(s, buf, sizeof buf), 0);
  conc_aio_stream_release(s);
  return 0;
}

static void reader_follows_asyncio_limit_and_incomplete_rules(void **state) {
  (void)state;
  pairs_t p;
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p.fds), 0);
  assert_int_equal(run_main(reader_rules_main, &p), 0);
  close(p.fds[1]);
}

/* ---- back-pressure -------------------------------------------------------------- */

enum { PRESSURE = 8 << 20 };

static int slow_peer(void *arg, void **res) {
  (void)res;
  int fd = *(int *)arg;
  static char buf[65536];
  size_t total = 0;
  conc_aio_sleep(0.05); /* let the writer fill every buffer first */
  while (total < PRESSURE) {
    ssize_t n = conc_aio_sock_recv(fd, buf, sizeof buf, 5.0);
    if (n <= 0)
      return CONC_EFAILED;
    total += (size_t)n;
  }
  *res = (void *)(uintptr_t)total;
  return 0;
}

static int pressure_main(void *arg, void **res) {
  (void)res;
  pairs_t *p = arg;
  conc_aio_set_nonblocking(p->fds[1]);
  conc_aio_stream_t *s;
  assert_int_equal(
      conc_aio_stream_from_fd(
          p->fds[0],
          &(conc_aio_stream_opts_t){.high_water = 65536, .low_water = 16384},
          &s),
      0);
  conc_aio_future_t *peer;
  assert_int_equal(
      conc_aio_create_task(NULL, slow_peer, &p->fds[1], NULL, &peer), 0);
  char *chunk = calloc(1, 1 << 20);
  size_t most = 0;
  for (int i = 0; i < PRESSURE / (1 << 20); i++) {
    assert_int_equal(conc_aio_stream_write(s, chunk, 1 << 20), 0);
    size_t b = conc_aio_stream_write_buffer_size(s);
    if (b > most)
      most = b;
    assert_int_equal(conc_aio_stream_drain(s), 0);
    assert_true(conc_aio_stream_write_buffer_size(s) <= 65536);
  }
  free(chunk);
  assert_true(most > 65536); /* drain had to wait */
  void *total;
  assert_int_equal(conc_aio_await(peer, &total), 0);
  assert_int_equal((uintptr_t)total, PRESSURE);
  conc_aio_future_release(peer);
  conc_aio_stream_close(s);
  assert_int_equal(conc_aio_stream_wait_closed(s), 0);
  conc_aio_stream_release(s);
  return 0;
}

static void drain_waits_for_the_low_water_mark(void **state) {
  (void)state;
  pairs_t p;
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p.fds), 0);
  assert_int_equal(run_main(pressure_main, &p), 0);
  close(p.fds[1]);
}

/* ---- N3: a peer that resets or vanishes ------------------------------------------ */

static int reset_handler(conc_aio_stream_t *s, void *arg) {
  int *seen = arg;
  char buf[16];
  *seen = (int)conc_aio_stream_read(s, buf, sizeof buf);
  return 0;
}

static int reset_main(void *arg, void **res) {
  (void)res;
  int *seen = arg;
  conc_aio_server_t *srv;
  assert_int_equal(
      conc_aio_start_server(reset_handler, seen, "127.0.0.1", 0, NULL, &srv),
      0);
  int fd;
  assert_int_equal(conc_aio_socket(AF_INET, SOCK_STREAM, 0, &fd), 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons(conc_aio_server_port(srv)),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(
      conc_aio_sock_connect(fd, (struct sockaddr *)&sa, sizeof sa, 5), 0);
  assert_true(await_connections(srv, 1)); /* the handler waits in read */
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  conc_aio_sock_close(fd); /* RST */
  conc_aio_server_close(srv);
  assert_int_equal(conc_aio_server_wait_closed(srv), 0);
  conc_aio_server_release(srv);
  return 0;
}

static void a_reset_peer_ends_the_pending_read_with_ECONNRESET(void **state) {
  (void)state;
  int seen = 1;
  assert_int_equal(run_main(reset_main, &seen), 0);
  assert_int_equal(seen, CONC_ECONNRESET);
}

static int vanish_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  conc_aio_stream_t *s;
  assert_int_equal(conc_aio_stream_from_fd(fds[0], NULL, &s), 0);
  close(fds[1]); /* the peer is gone */
  char big[4096] = {0};
  int rc = 0;
  for (int i = 0; i < 64 && rc == 0; i++) {
    rc = conc_aio_stream_write(s, big, sizeof big);
    if (rc == 0)
      rc = conc_aio_stream_drain(s);
  }
  conc_aio_stream_release(s);
  return rc == CONC_EPIPE || rc == CONC_ECONNRESET ? 0 : CONC_EFAILED;
}

static void writing_to_a_vanished_peer_is_EPIPE_not_a_signal(void **state) {
  (void)state;
  assert_int_equal(run_main(vanish_main, NULL), 0);
}

/* ---- N2: server close lets running handlers finish ------------------------------- */

static int slow_handler(conc_aio_stream_t *s, void *arg) {
  (void)arg;
  conc_aio_sleep(0.1);
  return conc_aio_stream_write(s, "done\n", 5);
}

static int close_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_server_t *srv;
  assert_int_equal(
      conc_aio_start_server(slow_handler, NULL, "127.0.0.1", 0, NULL, &srv), 0);
  int port = conc_aio_server_port(srv);
  conc_aio_stream_t *s;
  assert_int_equal(conc_aio_open_connection("127.0.0.1", port, NULL, &s), 0);
  assert_true(await_connections(srv, 1)); /* accepted; its handler sleeps */
  double t0 = conc_monotonic();
  assert_int_equal(conc_aio_server_close(srv), 0);
  assert_false(conc_aio_server_is_serving(srv));
  conc_aio_stream_t *late;
  assert_int_equal(conc_aio_open_connection("127.0.0.1", port, NULL, &late),
                   CONC_ECONNREFUSED);
  assert_int_equal(conc_aio_server_wait_closed(srv), 0);
  assert_true(conc_monotonic() - t0 >= 0.05); /* the handler finished */
  char buf[8];
  assert_int_equal(conc_aio_stream_readline(s, buf, sizeof buf), 5);
  assert_memory_equal(buf, "done\n", 5);
  conc_aio_stream_release(s);
  conc_aio_server_release(srv);
  return 0;
}

static void
server_close_stops_accepting_and_lets_handlers_finish(void **state) {
  (void)state;
  assert_int_equal(run_main(close_main, NULL), 0);
}

static void cancel_cb(void *task) { conc_aio_cancel(task, NULL); }

static int forever_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_server_t *srv;
  assert_int_equal(
      conc_aio_start_server(echo_handler, NULL, "127.0.0.1", 0, NULL, &srv), 0);
  conc_aio_future_t *me = conc_aio_current_task();
  conc_loop_call_later(conc_loop_running(), 0.03, cancel_cb, me, NULL);
  int rc = conc_aio_server_serve_forever(srv);
  conc_aio_task_uncancel(me);
  bool serving = conc_aio_server_is_serving(srv);
  conc_aio_server_release(srv);
  return rc == CONC_ECANCELED && !serving ? 0 : CONC_EFAILED;
}

static void cancelled_serve_forever_closes_the_server(void **state) {
  (void)state;
  assert_int_equal(run_main(forever_main, NULL), 0);
}

/* ---- N2, N3: many connections, nothing leaks -------------------------------------- */

static size_t count_fds(void) {
  size_t n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return 0;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

typedef struct many {
  int conns; /* at once */
  int rounds;
  int replies;
  int errors;
  bool abandon; /* reset or half-close instead of a clean exchange */
  int port;
  const char *path;
} many_t;

static int many_client(void *arg, void **res) {
  (void)res;
  many_t *m = arg;
  conc_aio_stream_t *s;
  int rc = m->path ? conc_aio_open_unix_connection(m->path, NULL, &s)
                   : conc_aio_open_connection("127.0.0.1", m->port, NULL, &s);
  if (rc) {
    m->errors++;
    return rc;
  }
  if (m->abandon) {
    if (m->path) { /* half-closed: the server sees EOF, we never read */
      shutdown(conc_aio_stream_fd(s), SHUT_WR);
    } else { /* reset */
      struct linger lg = {1, 0};
      setsockopt(conc_aio_stream_fd(s), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    conc_aio_stream_release(s);
    return 0;
  }
  char buf[16];
  rc = conc_aio_stream_write(s, "ping\n", 5);
  if (rc == 0 && conc_aio_stream_readline(s, buf, sizeof buf) == 5)
    m->replies++;
  else
    m->errors++;
  conc_aio_stream_release(s);
  return 0;
}

static int many_main(void *arg, void **res) {
  (void)res;
  many_t *m = arg;
  conc_aio_server_t *srv;
  int rc = m->path ? conc_aio_start_unix_server(
                         echo_handler, NULL, m->path,
                         &(conc_aio_server_opts_t){.backlog = 4096}, &srv)
                   : conc_aio_start_server(
                         echo_handler, NULL, "127.0.0.1", 0,
                         &(conc_aio_server_opts_t){.backlog = 4096}, &srv);
  assert_int_equal(rc, 0);
  m->port = conc_aio_server_port(srv);
  conc_aio_future_t **t = calloc((size_t)m->conns, sizeof *t);
  conc_aio_task_opts_t small = {.stack_size = 32 * 1024};
  for (int r = 0; r < m->rounds; r++) {
    for (int i = 0; i < m->conns; i++)
      assert_int_equal(
          conc_aio_create_task(NULL, many_client, m, &small, &t[i]), 0);
    for (int i = 0; i < m->conns; i++) {
      conc_aio_await(t[i], NULL);
      conc_aio_future_release(t[i]);
    }
  }
  free(t);
  conc_aio_server_close(srv);
  assert_int_equal(conc_aio_server_wait_closed(srv), 0);
  assert_int_equal(conc_aio_server_connections(srv), 0);
  conc_aio_server_release(srv);
  return 0;
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

static void thousands_of_connections_on_one_thread(void **state) {
  (void)state;
  raise_fd_limit();
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  int conns = UNDER_SANITIZER ? 1000 : 2000;
  if (rl.rlim_cur < (rlim_t)(2 * conns + 64))
    conns = (int)(rl.rlim_cur - 64) / 2;
  many_t m = {.conns = conns, .rounds = 1};
  assert_int_equal(run_main(many_main, &m), 0);
  assert_int_equal(m.errors, 0);
  assert_int_equal(m.replies, conns);
}

static void abandoned_connections_leave_nothing_behind(void **state) {
  (void)state;
  raise_fd_limit();
  char path[64];
  snprintf(path, sizeof path, "/tmp/conc-test-ab-%d.sock", (int)getpid());
  int rounds = UNDER_SANITIZER ? 4 : 10;
  /* warm up (first-use allocations), then measure */
  many_t warm = {.conns = 50, .rounds = 1, .abandon = true};
  assert_int_equal(run_main(many_main, &warm), 0);
  size_t fds0 = count_fds();
  struct mallinfo2 mi0 = mallinfo2();
  /* half reset (TCP: an RST leaves no TIME_WAIT), half half-closed (Unix) */
  many_t reset = {.conns = 500, .rounds = rounds, .abandon = true};
  many_t half = {.conns = 500, .rounds = rounds, .abandon = true, .path = path};
  assert_int_equal(run_main(many_main, &reset), 0);
  assert_int_equal(run_main(many_main, &half), 0);
  assert_int_equal(reset.errors + half.errors, 0);
  assert_int_equal(count_fds(), fds0);
  assert_null(conc_loop_get()); /* every loop and task is gone */
  struct mallinfo2 mi1 = mallinfo2();
  if (!UNDER_SANITIZER) /* sanitizers keep their own heap (LSan checks) */
    assert_true(mi1.uordblks <= mi0.uordblks + 256 * 1024);
  printf("# %d abandoned connections: fds %zu -> %zu, heap in use %zu -> %zu\n",
         2 * 500 * rounds, fds0, count_fds(), (size_t)mi0.uordblks,
         (size_t)mi1.uordblks);
}

/* ---- misuse ------------------------------------------------------------------------ */

static int misuse_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_stream_t *s;
  assert_int_equal(conc_aio_open_connection(NULL, 80, NULL, &s), CONC_EINVAL);
  assert_int_equal(conc_aio_open_connection("127.0.0.1", 70000, NULL, &s),
                   CONC_EINVAL);
  assert_int_equal(conc_aio_open_connection("no such host", 80, NULL, &s),
                   CONC_EGAI);
  assert_int_equal(conc_aio_stream_from_fd(-1, NULL, &s), CONC_EBADF);
  assert_int_equal(conc_aio_stream_read(NULL, NULL, 0), CONC_EINVAL);
  conc_aio_server_t *srv;
  assert_int_equal(
      conc_aio_start_server(NULL, NULL, "127.0.0.1", 0, NULL, &srv),
      CONC_EINVAL);
  assert_int_equal(
      conc_aio_start_server(echo_handler, NULL, "127.0.0.1", -1, NULL, &srv),
      CONC_EINVAL);
  return 0;
}

static void bad_arguments_get_their_codes(void **state) {
  (void)state;
  assert_int_equal(run_main(misuse_main, NULL), 0);
  conc_aio_stream_t *s;
  assert_int_equal(conc_aio_open_connection("127.0.0.1", 80, NULL, &s),
                   CONC_ESTATE);
}

/* ---- defects found by review (each failed before its fix) ---------------------- */

typedef struct closer {
  conc_aio_stream_t *s;
  ssize_t got;
  char buf[16];
} closer_t;

static int blocked_read(void *arg, void **res) {
  (void)res;
  closer_t *c = arg;
  c->got = conc_aio_stream_read(c->s, c->buf, sizeof c->buf);
  return 0;
}

static int close_while_reading_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  int a[2], b[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
  closer_t c = {.got = 99};
  assert_int_equal(conc_aio_stream_from_fd(a[0], NULL, &c.s), 0);
  conc_aio_future_t *t;
  assert_int_equal(conc_aio_create_task(NULL, blocked_read, &c, NULL, &t), 0);
  conc_aio_sleep(0.01); /* the reader waits */
  int old = conc_aio_stream_fd(c.s);
  conc_aio_stream_close(c.s);
  /* a new socket takes the closed number and has data */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
  int reused = b[0] == old ? b[0] : b[1] == old ? b[1] : -1;
  int peer = reused == b[0] ? b[1] : b[0];
  assert_int_equal(write(peer, "secret", 6), 6);
  assert_int_equal(conc_aio_await(t, NULL), 0);
  assert_int_equal(c.got, 0); /* the end of its own stream, nothing else */
  (void)reused;
  conc_aio_future_release(t);
  conc_aio_stream_release(c.s);
  close(a[1]);
  close(b[0]);
  close(b[1]);
  return 0;
}

static void a_stream_closed_under_a_reader_reads_as_its_end(void **state) {
  (void)state;
  assert_int_equal(run_main(close_while_reading_main, NULL), 0);
}

typedef struct waiters {
  conc_aio_server_t *srv;
  int rc;
  double at;
} waiters_t;

static int wait_closed_task(void *arg, void **res) {
  (void)res;
  waiters_t *w = arg;
  w->rc = conc_aio_server_wait_closed(w->srv);
  w->at = conc_monotonic();
  return 0;
}

static int two_waiters_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_server_t *srv;
  assert_int_equal(
      conc_aio_start_server(slow_handler, NULL, "127.0.0.1", 0, NULL, &srv), 0);
  conc_aio_stream_t *s;
  assert_int_equal(conc_aio_open_connection(
                       "127.0.0.1", conc_aio_server_port(srv), NULL, &s),
                   0);
  assert_true(await_connections(srv, 1)); /* its handler sleeps 0.1 s */
  double t0 = conc_monotonic();
  conc_aio_server_close(srv);
  waiters_t w1 = {srv, 1, 0}, w2 = {srv, 1, 0};
  conc_aio_future_t *a, *b;
  conc_aio_create_task(NULL, wait_closed_task, &w1, NULL, &a);
  conc_aio_create_task(NULL, wait_closed_task, &w2, NULL, &b);
  conc_aio_sleep(0.01);
  assert_true(conc_aio_cancel(a, NULL)); /* one waiter gives up */
  conc_aio_await(a, NULL);
  conc_aio_await(b, NULL);
  assert_int_equal(w1.rc, CONC_ECANCELED);
  assert_int_equal(w2.rc, 0); /* the other waited for the handler */
  assert_true(w2.at - t0 >= 0.05);
  conc_aio_future_release(a);
  conc_aio_future_release(b);
  conc_aio_stream_release(s);
  conc_aio_server_release(srv);
  return 0;
}

static void a_cancelled_wait_closed_leaves_the_other_waiters(void **state) {
  (void)state;
  assert_int_equal(run_main(two_waiters_main, NULL), 0);
}

static int release_early_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  for (int i = 0; i < 50; i++) {
    conc_aio_server_t *srv;
    assert_int_equal(
        conc_aio_start_server(echo_handler, NULL, "127.0.0.1", 0, NULL, &srv),
        0);
    conc_aio_server_release(srv); /* before its accepting task ever ran */
  }
  conc_aio_sleep(0);
  return 0;
}

static void a_server_released_before_it_accepted_leaks_nothing(void **state) {
  (void)state;
  size_t fds0 = count_fds();
  struct mallinfo2 mi0 = mallinfo2();
  assert_int_equal(run_main(release_early_main, NULL), 0);
  assert_int_equal(count_fds(), fds0);
  if (!UNDER_SANITIZER) /* LSan checks it there */
    assert_true(mallinfo2().uordblks <= mi0.uordblks + 16 * 1024);
}

static int busy_ticks;

static int busy_ticker(void *arg, void **res) {
  (void)res;
  bool *stop = arg;
  while (!*stop) {
    busy_ticks++;
    conc_aio_sleep(0.01);
  }
  return 0;
}

static int hog_listener(void *arg, void **res) {
  (void)res;
  return conc_aio_wait_readable(*(int *)arg, CONC_FOREVER);
}

static int busy_accept_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_server_t *srv;
  assert_int_equal(
      conc_aio_start_server(echo_handler, NULL, "127.0.0.1", 0, NULL, &srv), 0);
  int lfd;
  assert_int_equal(conc_aio_server_sockets(srv, &lfd, 1), 1);
  conc_aio_future_t *hog, *tick;
  bool stop = false;
  /* a task waits on the listening socket before the accepting task does:
   * the accepting task gets CONC_EBUSY and must not spin */
  conc_aio_create_task(NULL, hog_listener, &lfd, NULL, &hog);
  conc_aio_create_task(NULL, busy_ticker, &stop, NULL, &tick);
  /* the loop goes on (a spinning accept would stop it, this task too) */
  for (int i = 0; i < 1000 && busy_ticks < 5; i++)
    conc_aio_sleep(0.01);
  assert_true(busy_ticks >= 5);
  conc_aio_cancel(hog, NULL);
  conc_aio_await(hog, NULL);
  conc_aio_stream_t *s; /* the accepting task takes over within 0.1 s */
  assert_int_equal(conc_aio_open_connection(
                       "127.0.0.1", conc_aio_server_port(srv), NULL, &s),
                   0);
  char line[8];
  assert_int_equal(conc_aio_stream_write(s, "hi\n", 3), 0);
  assert_int_equal(conc_aio_stream_readline(s, line, sizeof line), 3);
  stop = true;
  conc_aio_await(tick, NULL);
  conc_aio_future_release(hog);
  conc_aio_future_release(tick);
  conc_aio_stream_release(s);
  conc_aio_server_release(srv);
  return 0;
}

static void an_accept_that_cannot_wait_does_not_spin(void **state) {
  (void)state;
  assert_int_equal(run_main(busy_accept_main, NULL), 0);
}

enum { IDLE = 200 };

static int idle_handler(conc_aio_stream_t *s, void *arg) {
  (void)arg;
  char line[64];
  return (int)conc_aio_stream_readline(s, line, sizeof line) < 0 ? -1 : 0;
}

static int idle_main(void *arg, void **res) {
  (void)res;
  size_t *per_conn = arg;
  conc_aio_server_t *srv;
  assert_int_equal(
      conc_aio_start_server(idle_handler, NULL, "127.0.0.1", 0, NULL, &srv), 0);
  static conc_aio_stream_t *c[IDLE];
  for (int i = 0; i < 4; i++) /* warm-up: first-use allocations */
    assert_int_equal(conc_aio_open_connection(
                         "127.0.0.1", conc_aio_server_port(srv), NULL, &c[i]),
                     0);
  conc_aio_sleep(0.02);
  size_t h0 = mallinfo2().uordblks;
  for (int i = 4; i < IDLE; i++)
    assert_int_equal(conc_aio_open_connection(
                         "127.0.0.1", conc_aio_server_port(srv), NULL, &c[i]),
                     0);
  assert_true(await_connections(srv, IDLE)); /* all wait in readline */
  conc_aio_sleep(0.02);
  size_t h1 = mallinfo2().uordblks;
  /* both ends' streams and the handler tasks' records, no read buffers */
  *per_conn = (h1 - h0) / (IDLE - 4);
  for (int i = 0; i < IDLE; i++)
    conc_aio_stream_release(c[i]);
  conc_aio_server_close(srv);
  assert_int_equal(conc_aio_server_wait_closed(srv), 0);
  conc_aio_server_release(srv);
  return 0;
}

static void an_idle_connection_holds_no_read_buffer(void **state) {
  (void)state;
  size_t per_conn = 0;
  assert_int_equal(run_main(idle_main, &per_conn), 0);
  printf("# heap per idle connection (both ends): %zu bytes\n", per_conn);
  if (!UNDER_SANITIZER)
    assert_true(per_conn < 2048);
}

static int eof_keep_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  int p[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
  conc_aio_stream_t *s;
  assert_int_equal(
      conc_aio_stream_from_fd(p[0], &(conc_aio_stream_opts_t){.limit = 4}, &s),
      0);
  assert_int_equal(write(p[1], "abcd\n0123456789", 15), 15);
  shutdown(p[1], SHUT_WR);
  char buf[16];
  size_t got = 0;
  /* the limit counts the data before the separator, as asyncio's does */
  assert_int_equal(conc_aio_stream_readuntil(s, "\n", 1, buf, sizeof buf, &got),
                   0);
  assert_int_equal(got, 5);
  /* no separator within the limit: LimitOverrunError, even at the end */
  assert_int_equal(conc_aio_stream_readuntil(s, "\n", 1, buf, sizeof buf, &got),
                   CONC_ELIMIT);
  conc_aio_stream_release(s);
  close(p[1]);
  /* at the end, what does not fit in buf stays buffered */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
  assert_int_equal(conc_aio_stream_from_fd(p[0], NULL, &s), 0);
  assert_int_equal(write(p[1], "0123456789", 10), 10);
  shutdown(p[1], SHUT_WR);
  assert_int_equal(conc_aio_stream_readuntil(s, "\n", 1, buf, 4, &got),
                   CONC_EINCOMPLETE);
  assert_int_equal(got, 4);
  assert_memory_equal(buf, "0123", 4);
  assert_int_equal(conc_aio_stream_read(s, buf, sizeof buf), 6);
  assert_memory_equal(buf, "456789", 6);
  conc_aio_stream_release(s);
  close(p[1]);
  return 0;
}

static void readuntil_at_the_end_keeps_what_does_not_fit(void **state) {
  (void)state;
  assert_int_equal(run_main(eof_keep_main, NULL), 0);
}

CONC_TEST_MAIN(
    cmocka_unit_test(echo_over_tcp_ipv4), cmocka_unit_test(echo_over_tcp_ipv6),
    cmocka_unit_test(echo_over_a_unix_socket),
    cmocka_unit_test(reader_follows_asyncio_limit_and_incomplete_rules),
    cmocka_unit_test(drain_waits_for_the_low_water_mark),
    cmocka_unit_test(a_reset_peer_ends_the_pending_read_with_ECONNRESET),
    cmocka_unit_test(writing_to_a_vanished_peer_is_EPIPE_not_a_signal),
    cmocka_unit_test(server_close_stops_accepting_and_lets_handlers_finish),
    cmocka_unit_test(cancelled_serve_forever_closes_the_server),
    cmocka_unit_test(thousands_of_connections_on_one_thread),
    cmocka_unit_test(abandoned_connections_leave_nothing_behind),
    cmocka_unit_test(bad_arguments_get_their_codes),
    cmocka_unit_test(a_stream_closed_under_a_reader_reads_as_its_end),
    cmocka_unit_test(a_cancelled_wait_closed_leaves_the_other_waiters),
    cmocka_unit_test(a_server_released_before_it_accepted_leaks_nothing),
    cmocka_unit_test(an_accept_that_cannot_wait_does_not_spin),
    cmocka_unit_test(an_idle_connection_holds_no_read_buffer),
    cmocka_unit_test(readuntil_at_the_end_keeps_what_does_not_fit))
