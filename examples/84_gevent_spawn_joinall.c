/*
 * Lesson 84: gevent.spawn and gevent.joinall, three downloads at once
 * (seeds 001 and 004).
 *
 * Python (seed 001):                       C:
 *   from gevent import monkey                (no monkey patching: the waits
 *   monkey.patch_all()                        that give way are explicit)
 *   def f(url):                              static int f(void *arg, void **res) {
 *       print('GET: %s' % url)                 printf("GET: %s\n", p->url);
 *       resp = urllib.request.urlopen(url)     (each chunk: a wait that suspends
 *       data = resp.read()                      only this greenlet)
 *       print('%d bytes received from %s.'     printf("%d bytes received from %s.\n",
 *             % (len(data), url))                     got, p->url);
 *   gevent.joinall([                         conc_hub_spawn(f, &pages[i], NULL, &gs[i]);
 *       gevent.spawn(f, 'https://www.python.org/'),
 *       gevent.spawn(f, 'https://www.baidu.com/'),
 *       gevent.spawn(f, 'https://www.so.com/'),
 *   ])                                       conc_hub_joinall(gs, 3, CONC_FOREVER, done, &n);
 *
 * The lesson reaches the internet; this program fakes the three servers:
 * each page arrives in 1000-byte chunks, one every 10 ms, and waiting for
 * a chunk is conc_hub_sleep(0.01), standing in for a cooperative recv
 * (libconc's cooperative sockets come with the streams module). While one
 * greenlet waits, the others run: all three GETs go out at once, and the
 * short pages arrive first. joinall returns the greenlets in the order they
 * finished; a greenlet's value is what its function returned.
 *
 * Beyond the lesson: joinall(timeout=...) returns with the ones that
 * finished in time, and kill() ends the one that hangs: its pending wait
 * returns CONC_ECANCELED (gevent raises GreenletExit there).
 */
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

typedef struct page {
  const char *url;
  int chunks; /* the page's size in 1000-byte chunks; -1: never answers */
} page_t;

static int f(void *arg, void **res) {
  page_t *p = arg;
  printf("GET: %s\n", p->url);
  int got = 0;
  for (int i = 0; p->chunks < 0 || i < p->chunks; i++) {
    int rc = conc_hub_sleep(0.01); /* the network: only we wait */
    if (rc == CONC_ECANCELED) {
      printf("GET %s given up: %s (GreenletExit)\n", p->url,
             conc_err_name(rc));
      return rc;
    }
    got += 1000;
  }
  printf("%d bytes received from %s.\n", got, p->url);
  *res = (void *)(intptr_t)got;
  return 0;
}

static page_t pages[] = {
    {"https://www.python.org/", 3},
    {"https://www.baidu.com/", 1},
    {"https://www.so.com/", 2},
    {"https://hangs.example/", -1},
};

static void print_done(conc_greenlet_t **done, size_t n) {
  printf("joinall: %zu finished, in this order:", n);
  for (size_t i = 0; i < n; i++) {
    void *v = NULL;
    conc_greenlet_value(done[i], &v);
    printf(" %s (%d bytes)", conc_greenlet_name(done[i]), (int)(intptr_t)v);
  }
  printf("\n");
}

int main(void) {
  conc_greenlet_t *gs[4], *done[4];
  size_t n = 0;
  const conc_aio_task_opts_t names[] = {
      {.name = "python"}, {.name = "baidu"}, {.name = "so"}, {.name = "hang"}};

  /* the lesson: three greenlets, joinall without a timeout */
  for (int i = 0; i < 3; i++)
    if (conc_hub_spawn(f, &pages[i], &names[i], &gs[i]) != 0)
      return 1;
  if (conc_hub_joinall(gs, 3, CONC_FOREVER, done, &n) != 0)
    return 1;
  print_done(done, n);
  for (int i = 0; i < 3; i++)
    conc_greenlet_release(gs[i]);

  /* beyond it: a fourth server never answers */
  puts("with a server that never answers, joinall(timeout=0.5):");
  for (int i = 0; i < 4; i++)
    if (conc_hub_spawn(f, &pages[i], &names[i], &gs[i]) != 0)
      return 1;
  if (conc_hub_joinall(gs, 4, 0.5, done, &n) != 0)
    return 1;
  print_done(done, n);
  printf("hang ready: %s\n", conc_greenlet_ready(gs[3]) ? "yes" : "no");
  conc_greenlet_kill(gs[3], true, CONC_FOREVER); /* g.kill() */
  printf("hang ready after kill: %s, successful: %s\n",
         conc_greenlet_ready(gs[3]) ? "yes" : "no",
         conc_greenlet_successful(gs[3]) ? "yes" : "no");
  for (int i = 0; i < 4; i++)
    conc_greenlet_release(gs[i]);
  return conc_hub_destroy() != 0;
}
