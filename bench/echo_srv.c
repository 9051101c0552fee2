/*
 * The server children of bench/bench_echo.c (see echo_srv.h): each runs as
 * its own process, prints its port, echoes every connection and exits when
 * its stdin closes.
 *
 * Locking: none; every server is single-threaded.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/aionet.h"
#include "conc/aiostream.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "conc/time.h"
#include "echo_srv.h"
#ifdef BENCH_HAVE_UV
#include <uv.h>
#endif

enum { RD = ECHO_RD, BACKLOG = ECHO_BACKLOG };

static char g_sbuf[RD]; /* raw epoll / libuv / libconc streams: shared */

static int listen_socket(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
      one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(fd, BACKLOG) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    return -1;
  *port = ntohs(a.sin_port);
  return fd;
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void say_port(int port) {
  printf("%d\n", port);
  fflush(stdout);
}

/* A libconc server says which poller its loop runs on (the loop may have
 * fallen back from io_uring). */
static void say_port_backend(int port) {
  printf("%d %s\n", port, conc_loop_backend_name(conc_loop_get()));
  fflush(stdout);
}

/* ---- libconc: stack probes for the idle row ------------------------------ */

/* Each live handler's slot holds an address on its stack (0 when free). */
static uintptr_t *g_probe;
static size_t g_nprobe, g_probe_cap = 32768;

static size_t probe_take(void *addr) {
  for (size_t i = 0; i < g_nprobe; i++)
    if (!g_probe[i]) {
      g_probe[i] = (uintptr_t)addr;
      return i;
    }
  if (g_nprobe == g_probe_cap)
    return (size_t)-1;
  g_probe[g_nprobe] = (uintptr_t)addr;
  return g_nprobe++;
}

static void probe_drop(size_t i) {
  if (i != (size_t)-1)
    g_probe[i] = 0;
}

static bool resident(uintptr_t page, long psz) {
  unsigned char v = 0;
  return mincore((void *)page, (size_t)psz, &v) == 0 && (v & 1);
}

/* Resident pages of the stack around addr: upward until the first page not
 * resident (the guard zone of the slot above), and every resident page in
 * the 128 KiB below (a slot's usable stack is 256 KiB; a handler's frame is
 * near its top, so this stays inside the slot). */
static long stack_pages(uintptr_t addr, long psz) {
  uintptr_t p = addr & ~(uintptr_t)(psz - 1);
  long k = 0;
  for (uintptr_t q = p; resident(q, psz); q += (uintptr_t)psz)
    k++;
  for (uintptr_t q = p - (uintptr_t)psz; q >= p - 128 * 1024;
       q -= (uintptr_t)psz)
    k += resident(q, psz);
  return k;
}

/* "mem" on stdin: live handlers and the KiB of their resident stacks. */
static void report_stacks(void) {
  long psz = sysconf(_SC_PAGESIZE), pages = 0, live = 0;
  for (size_t i = 0; i < g_nprobe; i++)
    if (g_probe[i]) {
      live++;
      pages += stack_pages(g_probe[i], psz);
    }
  printf("%ld %ld\n", live, pages * psz / 1024);
  fflush(stdout);
}

/* Reads commands from stdin until it closes, then ends the process. */
static int control_task(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_stream_t *in;
  char line[64];
  if (conc_aio_stream_from_fd(0, NULL, &in) != 0)
    _exit(1);
  while (conc_aio_stream_readline(in, line, sizeof line) > 0)
    if (strncmp(line, "mem", 3) == 0)
      report_stacks();
  _exit(0);
}

/* ---- libconc: streams ------------------------------------------------------ */

/* read() of RD >= 4096 bytes goes straight into g_sbuf, and write() copies
 * what it cannot send at once, so one buffer serves every handler. */
static int echo_stream(conc_aio_stream_t *s, void *arg) {
  (void)arg;
  volatile char here = 0;
  size_t slot = probe_take((void *)&here);
  for (;;) {
    ssize_t n = conc_aio_stream_read(s, g_sbuf, RD);
    if (n <= 0 || conc_aio_stream_write(s, g_sbuf, (size_t)n) != 0 ||
        conc_aio_stream_drain(s) != 0)
      break;
  }
  probe_drop(slot);
  return 0;
}

static int conc_streams_main(void *arg, void **res) {
  (void)arg;
  conc_aio_server_t *srv;
  conc_aio_server_opts_t o = {.backlog = BACKLOG};
  int rc = conc_aio_start_server(echo_stream, NULL, "127.0.0.1", 0, &o, &srv);
  if (rc)
    return rc;
  say_port_backend(conc_aio_server_port(srv));
  return control_task(NULL, res);
}

/* ---- libconc: cooperative sockets ---------------------------------------- */

static int sock_conn(void *arg, void **res) {
  (void)res;
  int fd = (int)(intptr_t)arg;
  char buf[RD]; /* sendall may wait: each connection its own buffer */
  for (;;) {
    ssize_t n = conc_aio_sock_recv(fd, buf, sizeof buf, CONC_FOREVER);
    if (n <= 0 ||
        conc_aio_sock_sendall(fd, buf, (size_t)n, CONC_FOREVER, NULL) != 0)
      break;
  }
  conc_aio_sock_close(fd);
  return 0;
}

static int sock_accepter(void *arg, void **res) {
  (void)res;
  int lfd = (int)(intptr_t)arg;
  for (;;) {
    int c;
    int rc = conc_aio_sock_accept(lfd, CONC_FOREVER, NULL, NULL, &c);
    if (rc == CONC_ECANCELED)
      return rc;
    if (rc)
      continue;
    nodelay(c);
    if (conc_aio_create_task(NULL, sock_conn, (void *)(intptr_t)c, NULL,
                             NULL) != 0)
      conc_aio_sock_close(c);
  }
}

static int conc_sock_main(void *arg, void **res) {
  (void)arg;
  int port, lfd = listen_socket(&port);
  if (lfd < 0 || conc_aio_create_task(NULL, sock_accepter,
                                      (void *)(intptr_t)lfd, NULL, NULL) != 0)
    return -1;
  say_port_backend(port);
  return control_task(NULL, res);
}

/* ---- raw epoll ---------------------------------------------------------------- */

/* Bytes a slow peer has not taken yet, by descriptor (rare: loopback). */
typedef struct pend {
  size_t off, len;
  char data[];
} pend_t;

static pend_t **g_pend;

static void raw_close(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  free(g_pend[fd]);
  g_pend[fd] = NULL;
  close(fd);
}

static void raw_accept(int ep, int lfd) {
  int c;
  while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
    nodelay(c);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) != 0)
      close(c);
  }
}

/* Send what is pending; when all is out, read again. */
static void raw_flush(int ep, int fd) {
  pend_t *p = g_pend[fd];
  ssize_t w = send(fd, p->data + p->off, p->len - p->off, MSG_NOSIGNAL);
  if (w < 0 && errno != EAGAIN) {
    raw_close(ep, fd);
    return;
  }
  if (w > 0 && (p->off += (size_t)w) == p->len) {
    free(p);
    g_pend[fd] = NULL;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
  }
}

static void raw_echo(int ep, int fd) {
  ssize_t n = recv(fd, g_sbuf, RD, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    raw_close(ep, fd);
    return;
  }
  ssize_t w = send(fd, g_sbuf, (size_t)n, MSG_NOSIGNAL);
  if (w == n)
    return;
  if (w < 0 && errno != EAGAIN) {
    raw_close(ep, fd);
    return;
  }
  size_t done = w > 0 ? (size_t)w : 0, left = (size_t)n - done;
  pend_t *p = malloc(sizeof *p + left);
  if (!p) {
    raw_close(ep, fd);
    return;
  }
  *p = (pend_t){0, left};
  memcpy(p->data, g_sbuf + done, left);
  g_pend[fd] = p;
  struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static int raw_server(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  g_pend = calloc((size_t)rl.rlim_cur, sizeof *g_pend);
  int port, lfd = listen_socket(&port), ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  if (!g_pend || lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
    return 1;
  ev.data.fd = 0;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0)
    return 1;
  say_port(port);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      char cmd[64];
      if (fd == lfd)
        raw_accept(ep, lfd);
      else if (fd == 0 && read(0, cmd, sizeof cmd) <= 0)
        _exit(0);
      else if (fd != 0 && g_pend[fd])
        raw_flush(ep, fd);
      else if (fd != 0)
        raw_echo(ep, fd);
    }
  }
}

/* ---- libuv ------------------------------------------------------------------ */

#ifdef BENCH_HAVE_UV
static uv_loop_t *g_uvl;

typedef struct uvw {
  uv_write_t req;
  char data[];
} uvw_t;

static void uv_alloc(uv_handle_t *h, size_t size, uv_buf_t *b) {
  (void)h;
  (void)size;
  *b = uv_buf_init(g_sbuf, RD);
}

static void uv_freed(uv_handle_t *h) { free(h); }
static void uv_written(uv_write_t *r, int status) {
  (void)status;
  free(r);
}

/* What a libuv programmer writes: try the write at once, queue a copy of
 * what the socket did not take. */
static void uv_echo(uv_stream_t *c, ssize_t n, const uv_buf_t *b) {
  if (n < 0) {
    uv_close((uv_handle_t *)c, uv_freed);
    return;
  }
  if (n == 0)
    return;
  uv_buf_t wb = uv_buf_init(b->base, (unsigned)n);
  int w = uv_try_write(c, &wb, 1);
  if (w == n)
    return;
  if (w < 0 && w != UV_EAGAIN) {
    uv_close((uv_handle_t *)c, uv_freed);
    return;
  }
  size_t done = w > 0 ? (size_t)w : 0, left = (size_t)n - done;
  uvw_t *r = malloc(sizeof *r + left);
  if (!r)
    abort();
  memcpy(r->data, b->base + done, left);
  wb = uv_buf_init(r->data, (unsigned)left);
  uv_write(&r->req, c, &wb, 1, uv_written);
}

static void uv_conn(uv_stream_t *srv, int status) {
  if (status < 0)
    return;
  uv_tcp_t *c = malloc(sizeof *c);
  if (!c)
    abort();
  uv_tcp_init(g_uvl, c);
  if (uv_accept(srv, (uv_stream_t *)c) != 0) {
    uv_close((uv_handle_t *)c, uv_freed);
    return;
  }
  uv_tcp_nodelay(c, 1);
  uv_read_start((uv_stream_t *)c, uv_alloc, uv_echo);
}

static void uv_stdin(uv_poll_t *p, int status, int events) {
  (void)p;
  (void)status;
  (void)events;
  char cmd[64];
  if (read(0, cmd, sizeof cmd) <= 0)
    _exit(0);
}

static int uv_server(void) {
  static uv_tcp_t srv;
  static uv_poll_t in;
  struct sockaddr_in a;
  struct sockaddr_storage got;
  int len = sizeof got;
  g_uvl = uv_default_loop();
  uv_ip4_addr("127.0.0.1", 0, &a);
  if (uv_tcp_init(g_uvl, &srv) || uv_tcp_bind(&srv, (struct sockaddr *)&a, 0) ||
      uv_listen((uv_stream_t *)&srv, BACKLOG, uv_conn) ||
      uv_tcp_getsockname(&srv, (struct sockaddr *)&got, &len) ||
      uv_poll_init(g_uvl, &in, 0) || uv_poll_start(&in, UV_READABLE, uv_stdin))
    return 1;
  say_port(ntohs(((struct sockaddr_in *)&got)->sin_port));
  return uv_run(g_uvl, UV_RUN_DEFAULT);
}
#endif

int echo_server_child(const char *kind) {
  g_probe = calloc(g_probe_cap, sizeof *g_probe); /* touched before any RSS
                                                     reading: not growth */
  if (!g_probe)
    return 1;
  memset(g_probe, 0, g_probe_cap * sizeof *g_probe);
  if (strcmp(kind, "conc") == 0)
    return conc_aio_run(conc_streams_main, NULL, NULL, NULL) ? 1 : 0;
  if (strcmp(kind, "conc-sock") == 0)
    return conc_aio_run(conc_sock_main, NULL, NULL, NULL) ? 1 : 0;
  if (strcmp(kind, "epoll") == 0)
    return raw_server();
#ifdef BENCH_HAVE_UV
  if (strcmp(kind, "uv") == 0)
    return uv_server();
#endif
  printf("skipped\n");
  return 0;
}

// clang-format off
/* The Python servers: argv[1] is asyncio, uvloop or gevent. */
const char echo_py_server[] =
  "import sys, os, socket\n"
  "sys.path.append('/usr/lib/python3/dist-packages')\n"
  "kind = sys.argv[1]\n"
  "try:\n"
  "    if kind == 'gevent': import gevent, gevent.server, gevent.socket\n"
  "    if kind == 'uvloop': import uvloop\n"
  "except ImportError:\n"
  "    print('skipped', flush=True); sys.exit(0)\n"
  "RD = 16384\n"
  "if kind == 'gevent':\n"
  "    def handle(sock, addr):\n"
  "        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
  "        recv, sendall = sock.recv, sock.sendall\n"
  "        while True:\n"
  "            d = recv(RD)\n"
  "            if not d: break\n"
  "            sendall(d)\n"
  "    def watch():\n"
  "        while True:\n"
  "            gevent.socket.wait_read(0)\n"
  "            if not os.read(0, 64): os._exit(0)\n"
  "    srv = gevent.server.StreamServer(('127.0.0.1', 0), handle, backlog=4096)\n"
  "    srv.start()\n"
  "    print(srv.server_port, flush=True)\n"
  "    gevent.spawn(watch)\n"
  "    srv.serve_forever()\n"
  "import asyncio\n"
  "if kind == 'uvloop': asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())\n"
  "async def handle(r, w):\n"
  "    read, write, drain = r.read, w.write, w.drain\n"
  "    try:\n"
  "        while True:\n"
  "            d = await read(RD)\n"
  "            if not d: break\n"
  "            write(d)\n"
  "            await drain()\n"
  "    except ConnectionError: pass\n"
  "    w.close()\n"
  "async def main():\n"
  "    srv = await asyncio.start_server(handle, '127.0.0.1', 0, backlog=4096)\n"
  "    print(srv.sockets[0].getsockname()[1], flush=True)\n"
  "    loop = asyncio.get_running_loop()\n"
  "    def stdin():\n"
  "        if not os.read(0, 64): os._exit(0)\n"
  "    loop.add_reader(0, stdin)\n"
  "    await srv.serve_forever()\n"
  "asyncio.run(main())\n";
// clang-format on
