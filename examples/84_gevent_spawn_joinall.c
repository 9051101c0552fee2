// clang-format off
/*
 * Lesson 84: gevent.spawn and gevent.joinall, three downloads at once
 * (seeds 001 and 004).
 *
 * Python (seed 001):                       C:
 *   from gevent import monkey                (no monkey patching: the socket
 *   monkey.patch_all()                        calls that give way are explicit)
 *   def f(url):                              static int f(void *arg, void **res) {
 *       print('GET: %s' % url)                 printf("GET: %s\n", p->url);
 *       resp = urllib.request.urlopen(url)     conc_aio_sock_connect(fd, ...);
 *       data = resp.read()                     while ((n = conc_aio_sock_recv(fd, ...)) > 0)
 *       print('%d bytes received from %s.'     printf("%d bytes received from %s.\n",
 *             % (len(data), url))                     got, p->url);
 *   gevent.joinall([                         conc_hub_spawn(f, &pages[i], &opts, &gs[i]);
 *       gevent.spawn(f, 'https://www.python.org/'),
 *       gevent.spawn(f, 'https://www.baidu.com/'),
 *       gevent.spawn(f, 'https://www.so.com/'),
 *   ])                                       conc_hub_joinall(gs, 3, CONC_FOREVER, done, &n);
 *
 * The lesson reaches the internet; this program serves the three sites
 * itself, on 127.0.0.1, from greenlets of the same hub: a server greenlet
 * accepts, and a handler greenlet per connection sends the page in
 * 1000-byte chunks, one every 30 ms (python.org has 3, baidu 1, so.com 2).
 * Each socket call that would block (connect, recv, accept) suspends only
 * its greenlet: all three GETs go out at once, the short pages arrive
 * first, and the whole run takes about as long as the longest page, not
 * the sum. joinall returns the greenlets in the order they finished; a
 * greenlet's value is what its function returned.
 *
 * Beyond the lesson: a fourth site never answers. joinall over all four
 * with timeout=0.2 returns after the timeout with the three that finished
 * (they are done before it starts, so the output does not depend on how
 * loaded the machine is); kill() then ends the fourth download: its
 * pending recv returns CONC_ECANCELED (gevent raises GreenletExit there).
 * The handlers run in a Group, killed at the end.
 */
// clang-format on
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <conc.h>

typedef struct page {
  const char *url;
  int chunks; /* the page's size in 1000-byte chunks; -1: never answers */
} page_t;

static page_t pages[] = {
    {"https://www.python.org/", 3},
    {"https://www.baidu.com/", 1},
    {"https://www.so.com/", 2},
    {"https://hangs.example/", -1},
};
enum { NPAGES = sizeof pages / sizeof pages[0] };

static struct sockaddr_in server_addr; /* 127.0.0.1, the port the OS gave */
static conc_hub_pool_t handlers;       /* gevent.pool.Group() */

/* ---- the sites: one handler greenlet per connection ---------------------- */

static int handle(void *arg, void **res) {
  int fd = (int)(intptr_t)arg;
  (void)res;
  char req[256] = {0};
  size_t have = 0;
  while (!strstr(req, "\r\n\r\n") && have < sizeof req - 1) {
    ssize_t n =
        conc_aio_sock_recv(fd, req + have, sizeof req - 1 - have, CONC_FOREVER);
    if (n <= 0)
      break;
    have += (size_t)n;
  }
  int chunks = 0; /* "GET /<index> ..." */
  for (int i = 0; i < NPAGES; i++)
    if (req[5] - '0' == i)
      chunks = pages[i].chunks;
  static const char chunk[1000];
  for (int i = 0; chunks < 0 || i < chunks; i++) {
    if (conc_hub_sleep(0.03) != 0) /* the site is slow; killed at the end */
      break;
    if (conc_aio_sock_sendall(fd, chunk, sizeof chunk, CONC_FOREVER, NULL))
      break;
  }
  conc_aio_sock_close(fd);
  return 0;
}

static int serve(void *arg, void **res) {
  int listener = (int)(intptr_t)arg;
  (void)res;
  for (;;) {
    int conn;
    int rc = conc_aio_sock_accept(listener, CONC_FOREVER, NULL, NULL, &conn);
    if (rc == CONC_ECANCELED) /* killed: the server stops */
      break;
    if (rc == 0 && conc_hub_pool_spawn(&handlers, handle,
                                       (void *)(intptr_t)conn, NULL, NULL))
      conc_aio_sock_close(conn);
  }
  conc_aio_sock_close(listener);
  return 0;
}

/* ---- the lesson's f(url) -------------------------------------------------- */

static int f(void *arg, void **res) {
  page_t *p = arg;
  printf("GET: %s\n", p->url);
  int fd, rc = conc_aio_socket(AF_INET, SOCK_STREAM, 0, &fd);
  if (rc)
    return rc;
  rc = conc_aio_sock_connect(fd, (struct sockaddr *)&server_addr,
                             sizeof server_addr, CONC_FOREVER);
  char req[32];
  snprintf(req, sizeof req, "GET /%d HTTP/1.0\r\n\r\n", (int)(p - pages));
  if (rc == 0)
    rc = conc_aio_sock_sendall(fd, req, strlen(req), CONC_FOREVER, NULL);
  int got = 0;
  char buf[4096];
  ssize_t n;
  while (rc == 0 &&
         (n = conc_aio_sock_recv(fd, buf, sizeof buf, CONC_FOREVER)) != 0) {
    if (n < 0)
      rc = (int)n;
    else
      got += (int)n;
  }
  conc_aio_sock_close(fd);
  if (rc == CONC_ECANCELED)
    printf("GET %s given up: %s (GreenletExit)\n", p->url, conc_err_name(rc));
  else if (rc == 0)
    printf("%d bytes received from %s.\n", got, p->url);
  *res = (void *)(intptr_t)got;
  return rc;
}

static void print_done(conc_greenlet_t **done, size_t n) {
  printf("joinall: %zu finished, in this order:", n);
  for (size_t i = 0; i < n; i++) {
    void *v = NULL;
    conc_greenlet_value(done[i], &v);
    printf(" %s (%d bytes)", conc_greenlet_name(done[i]), (int)(intptr_t)v);
  }
  printf("\n");
}

static int start_server(conc_greenlet_t **server) {
  int fd;
  socklen_t len = sizeof server_addr;
  server_addr.sin_family = AF_INET;
  server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (conc_aio_socket(AF_INET, SOCK_STREAM, 0, &fd) != 0)
    return 1;
  if (bind(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0 ||
      listen(fd, 16) != 0 ||
      getsockname(fd, (struct sockaddr *)&server_addr, &len) != 0)
    return 1;
  conc_hub_pool_init(&handlers, 0);
  return conc_hub_spawn(serve, (void *)(intptr_t)fd, NULL, server) != 0;
}

int main(void) {
  conc_greenlet_t *server, *gs[NPAGES], *done[NPAGES];
  size_t n = 0;
  const conc_aio_task_opts_t names[NPAGES] = {
      {.name = "python"}, {.name = "baidu"}, {.name = "so"}, {.name = "hang"}};
  if (start_server(&server))
    return 1;

  /* the lesson: three greenlets, joinall without a timeout */
  for (int i = 0; i < 3; i++)
    if (conc_hub_spawn(f, &pages[i], &names[i], &gs[i]) != 0)
      return 1;
  if (conc_hub_joinall(gs, 3, CONC_FOREVER, done, &n) != 0)
    return 1;
  print_done(done, n);

  /* beyond it: a fourth site never answers */
  puts("a fourth site never answers; joinall(all four, timeout=0.2):");
  if (conc_hub_spawn(f, &pages[3], &names[3], &gs[3]) != 0)
    return 1;
  if (conc_hub_joinall(gs, NPAGES, 0.2, done, &n) != 0)
    return 1;
  print_done(done, n);
  printf("hang ready: %s\n", conc_greenlet_ready(gs[3]) ? "yes" : "no");
  conc_greenlet_kill(gs[3], true, CONC_FOREVER); /* g.kill() */
  printf("hang ready after kill: %s, successful: %s\n",
         conc_greenlet_ready(gs[3]) ? "yes" : "no",
         conc_greenlet_successful(gs[3]) ? "yes" : "no");
  for (int i = 0; i < NPAGES; i++)
    conc_greenlet_release(gs[i]);

  conc_hub_pool_kill(&handlers, true, CONC_FOREVER); /* group.kill() */
  conc_greenlet_kill(server, true, CONC_FOREVER);
  conc_greenlet_release(server);
  conc_hub_pool_destroy(&handlers);
  return conc_hub_destroy() != 0;
}
