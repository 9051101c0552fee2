// clang-format off
/*
 * Lesson 58: a TCP echo server with a hundred clients, all on one thread
 * (issue 12's lesson; asyncio's "TCP echo server using streams" example,
 * with many clients in place of one).
 *
 * Python (asyncio streams):                     C:
 *   async def handle_echo(reader, writer):        static int handle_echo(conc_aio_stream_t *s,
 *       while line := await reader.readline():                          void *arg) {
 *           writer.write(line)                      while ((n = conc_aio_stream_readline(s, buf, cap)) > 0) {
 *           await writer.drain()                      conc_aio_stream_write(s, buf, n);
 *       writer.close()                                conc_aio_stream_drain(s); }
 *                                                   return 0;  (the server closes the stream)
 *   server = await asyncio.start_server(          conc_aio_start_server(handle_echo, &stats,
 *       handle_echo, '127.0.0.1', 0)                  "127.0.0.1", 0, NULL, &srv);
 *   reader, writer = await asyncio.open_connection( conc_aio_open_connection("127.0.0.1",
 *       '127.0.0.1', port)                            port, NULL, &s);
 *   writer.write_eof()                            conc_aio_stream_write_eof(s);
 *   await asyncio.gather(*clients)                conc_aio_gather(clients, NCLIENTS, NULL, &g);
 *   server.close(); await server.wait_closed()    conc_aio_server_close(srv);
 *                                                 conc_aio_server_wait_closed(srv);
 *
 * The server runs a handler task per connection; the hundred clients are
 * tasks of the same loop. Every readline that finds no line yet suspends
 * only its own task, so one thread serves all the connections at once
 * (threads would need one each; the loop needs one stack per task, and no
 * locks: the counters below are plain ints, since everything runs on the
 * loop's thread).
 *
 * Each client sends its lines one at a time and reads each echo before the
 * next, then shuts down its sending side (write_eof); the server's readline
 * then returns 0, the handler returns, and the server closes the
 * connection, which the client sees as the end of the stream. The totals
 * do not depend on the order in which the tasks ran.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <conc.h>

enum { NCLIENTS = 100, NLINES = 5 };

typedef struct stats {
  int connections, lines;
  size_t bytes;
} stats_t;

/* ---- the server ---------------------------------------------------------- */

static int handle_echo(conc_aio_stream_t *s, void *arg) {
  stats_t *st = arg;
  char line[256];
  ssize_t n;
  st->connections++;
  while ((n = conc_aio_stream_readline(s, line, sizeof line)) > 0) {
    if (conc_aio_stream_write(s, line, (size_t)n) != 0 ||
        conc_aio_stream_drain(s) != 0)
      break;
    st->lines++;
    st->bytes += (size_t)n;
  }
  return n < 0 ? (int)n : 0; /* 0 at the client's end of stream */
}

/* ---- a client ------------------------------------------------------------ */

static int port;
static stats_t sent, echoed;

static int client(void *arg, void **res) {
  int id = (int)(intptr_t)arg;
  (void)res;
  conc_aio_stream_t *s;
  int rc = conc_aio_open_connection("127.0.0.1", port, NULL, &s);
  if (rc)
    return rc;
  sent.connections++;
  for (int i = 0; i < NLINES && rc == 0; i++) {
    char out[64], in[64];
    int n = snprintf(out, sizeof out, "client %d line %d\n", id, i);
    rc = conc_aio_stream_write(s, out, (size_t)n);
    if (rc == 0)
      rc = conc_aio_stream_drain(s);
    if (rc)
      break;
    sent.lines++;
    sent.bytes += (size_t)n;
    ssize_t got = conc_aio_stream_readline(s, in, sizeof in);
    if (got < 0)
      rc = (int)got;
    else if (got == n && memcmp(in, out, (size_t)n) == 0) {
      echoed.lines++;
      echoed.bytes += (size_t)got;
    }
  }
  char rest[16];
  if (rc == 0)
    rc = conc_aio_stream_write_eof(s); /* "no more lines" */
  if (rc == 0 && conc_aio_stream_read(s, rest, sizeof rest) == 0)
    echoed.connections++; /* the server closed after our end of stream */
  conc_aio_stream_release(s);
  return rc;
}

/* ---- main ---------------------------------------------------------------- */

static int lesson(void *arg, void **res) {
  (void)arg, (void)res;
  stats_t served = {0};
  conc_aio_server_t *srv;
  int rc =
      conc_aio_start_server(handle_echo, &served, "127.0.0.1", 0, NULL, &srv);
  if (rc)
    return rc;
  port = conc_aio_server_port(srv);
  printf("echo server on 127.0.0.1 (the port varies)\n");
  printf("%d clients, %d lines each, all at once\n", NCLIENTS, NLINES);

  conc_aio_future_t *clients[NCLIENTS] = {0}, *g = NULL;
  for (int i = 0; i < NCLIENTS && rc == 0; i++)
    rc = conc_aio_create_task(NULL, client, (void *)(intptr_t)i, NULL,
                              &clients[i]);
  if (rc == 0)
    rc = conc_aio_gather(clients, NCLIENTS, NULL, &g);
  if (rc == 0)
    rc = conc_aio_await(g, NULL);
  conc_aio_future_release(g);
  for (int i = 0; i < NCLIENTS; i++)
    conc_aio_future_release(clients[i]);

  printf("clients: %d connections, %d lines sent (%zu bytes)\n",
         sent.connections, sent.lines, sent.bytes);
  printf("         %d lines echoed back unchanged (%zu bytes), %d ends of "
         "stream\n",
         echoed.lines, echoed.bytes, echoed.connections);
  conc_aio_server_close(srv); /* stop accepting */
  int wc = conc_aio_server_wait_closed(srv);
  printf("server:  %d connections, %d lines (%zu bytes); handlers running "
         "after wait_closed: %zu\n",
         served.connections, served.lines, served.bytes,
         conc_aio_server_connections(srv));
  conc_aio_server_release(srv);
  return rc ? rc : wc;
}

int main(void) {
  void *res;
  int rc = conc_aio_run(lesson, NULL, NULL, &res);
  if (rc)
    printf("failed: %s\n", conc_err_name(rc));
  return rc != 0;
}
