// clang-format off
/*
 * Lesson 56: sync versus async download of 10 files (seed 002, "Тестим
 * синхрон vs асинхрон": requests.get ten times in a row, then aiohttp with
 * ten tasks and gather).
 *
 * Python (seed 002):                          C:
 *   def get_file():                             static int get_file(void *arg,
 *       response = requests.get(URL)                         void **res) {
 *       return response                           conc_aio_http_get(url, 5.0, &r);
 *   for i in range(10):                         for (i = 0; i < NFILES; i++)
 *       write_file(get_file())                    get_file(&files[i], &res);
 *   print(time() - t0)                          printf("%.2f s", conc_monotonic() - t0)
 *
 *   async def get_file(session):                (the same get_file: a C task may
 *       async with session.get(URL) as resp:     wait at any depth, so one function
 *           data = await resp.read()             serves both versions)
 *   tasks.append(asyncio.create_task(           conc_aio_create_task(NULL, get_file,
 *       get_file(session)))                         &files[i], NULL, &tasks[i]);
 *   await asyncio.gather(*tasks)                conc_aio_gather(tasks, NFILES, NULL, &g);
 *                                               conc_aio_await(g, NULL);
 *
 * The lesson downloads pictures from loremflickr.com. This program starts
 * its own server on 127.0.0.1 (asyncio.start_server: a handler task per
 * connection) that answers each GET after 100 ms, standing in for the
 * network's latency; the server runs on the same loop as the client.
 *
 * The "sync" version is the main task awaiting one GET after another: the
 * loop is idle while each answer is on its way, so ten files take ten
 * latencies (about 1 s). The "async" version starts ten tasks and gathers
 * them: the ten GETs wait at the same time and the whole batch takes about
 * one latency (about 0.1 s). A truly blocking requests.get would also stop
 * this very server (it runs on the loop's thread); awaiting in turn shows
 * the same cost without that deadlock.
 *
 * The lesson writes each file to pic/; here write_file only counts the
 * bytes, so that the tour leaves no files behind (asyncio has no
 * asynchronous file I/O either: aiofiles runs it on threads).
 *
 * The times depend on the machine (they are printed); the program checks
 * that the async batch is at least 5x faster. Under ThreadSanitizer every
 * new task costs milliseconds of bookkeeping (each coroutine is a "fiber"
 * it tracks), which the loop's one thread pays one task after another, so
 * that build asks for 2x.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <conc.h>

enum { NFILES = 10, PICTURE = 7680 /* bytes "of a 320x240 picture" */ };
#define LATENCY 0.1 /* seconds before the server answers a GET */
#ifdef CONC_SANITIZER_thread
#define MIN_SPEEDUP 2
#else
#define MIN_SPEEDUP 5
#endif

/* ---- the server: loremflickr.com on 127.0.0.1 ---------------------------- */

static int serve_picture(conc_aio_stream_t *s, void *arg) {
  (void)arg;
  char req[512];
  size_t got;
  int rc = conc_aio_stream_readuntil(s, "\r\n\r\n", 4, req, sizeof req, &got);
  if (rc)
    return 0;                       /* not a request: just close */
  if (conc_aio_sleep(LATENCY) != 0) /* the network's latency */
    return 0;
  static char picture[PICTURE];
  memset(picture, 0xd8, sizeof picture);
  char head[128];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\n"
                   "Content-Length: %d\r\n\r\n",
                   PICTURE);
  rc = conc_aio_stream_write(s, head, (size_t)n);
  if (rc == 0)
    rc = conc_aio_stream_write(s, picture, sizeof picture);
  if (rc == 0)
    rc = conc_aio_stream_drain(s);
  return 0; /* returning closes the connection once the answer is sent */
}

/* ---- the lesson's get_file and write_file -------------------------------- */

typedef struct file {
  char url[64];
  size_t bytes; /* what write_file "wrote" */
} file_t;

static void write_file(file_t *f, const conc_aio_http_response_t *r) {
  f->bytes = r->body_len; /* the lesson: open('pic/' + name, 'wb').write */
}

static int get_file(void *arg, void **res) {
  file_t *f = arg;
  (void)res;
  conc_aio_http_response_t r;
  int rc = conc_aio_http_get(f->url, 5.0, &r); /* only this task waits */
  if (rc)
    return rc;
  if (r.status == 200)
    write_file(f, &r);
  conc_aio_http_response_free(&r);
  return 0;
}

static size_t total(const file_t *files) {
  size_t sum = 0;
  for (int i = 0; i < NFILES; i++)
    sum += files[i].bytes;
  return sum;
}

/* ---- main(): the two versions, timed ------------------------------------- */

static int sync_version(file_t *files, double *secs) {
  double t0 = conc_monotonic();
  for (int i = 0; i < NFILES; i++) {
    int rc = get_file(&files[i], NULL); /* one after another */
    if (rc)
      return rc;
  }
  *secs = conc_monotonic() - t0;
  return 0;
}

static int async_version(file_t *files, double *secs) {
  conc_aio_future_t *tasks[NFILES] = {0}, *g = NULL;
  double t0 = conc_monotonic();
  int rc = 0;
  for (int i = 0; i < NFILES && rc == 0; i++)
    rc = conc_aio_create_task(NULL, get_file, &files[i], NULL, &tasks[i]);
  if (rc == 0)
    rc = conc_aio_gather(tasks, NFILES, NULL, &g);
  if (rc == 0)
    rc = conc_aio_await(g, NULL); /* await asyncio.gather(*tasks) */
  *secs = conc_monotonic() - t0;
  conc_aio_future_release(g);
  for (int i = 0; i < NFILES; i++)
    conc_aio_future_release(tasks[i]);
  return rc;
}

static int lesson(void *arg, void **res) {
  (void)arg, (void)res;
  conc_aio_server_t *srv;
  int rc =
      conc_aio_start_server(serve_picture, NULL, "127.0.0.1", 0, NULL, &srv);
  if (rc)
    return rc;
  printf("server: 127.0.0.1, every GET answered after %.0f ms\n",
         LATENCY * 1000);
  file_t files[2][NFILES];
  for (int v = 0; v < 2; v++)
    for (int i = 0; i < NFILES; i++) {
      snprintf(files[v][i].url, sizeof files[v][i].url,
               "http://127.0.0.1:%d/320/240?lock=%d", conc_aio_server_port(srv),
               i);
      files[v][i].bytes = 0;
    }

  double t_sync = 0, t_async = 0;
  rc = sync_version(files[0], &t_sync);
  if (rc == 0)
    rc = async_version(files[1], &t_async);
  if (rc == 0) {
    printf("sync:  %d files, %zu bytes in %.2f s\n", NFILES, total(files[0]),
           t_sync);
    printf("async: %d files, %zu bytes in %.2f s\n", NFILES, total(files[1]),
           t_async);
    double x = t_sync / t_async;
    printf("speed-up: %.1fx (at least %dx: %s)\n", x, MIN_SPEEDUP,
           x >= MIN_SPEEDUP ? "yes" : "no");
  }
  conc_aio_server_close(srv);
  int wc = conc_aio_server_wait_closed(srv); /* every handler has returned */
  conc_aio_server_release(srv);
  return rc ? rc : wc;
}

int main(void) {
  void *res;
  int rc = conc_aio_run(lesson, NULL, NULL, &res);
  if (rc) {
    printf("failed: %s\n", conc_err_name(rc));
    return 1;
  }
  return 0;
}
