/*
 * The tiny HTTP/1.0 GET client: bodies with and without Content-Length,
 * statuses, a truncated body, timeouts, refused connections and bad URLs,
 * against small servers on 127.0.0.1 made with start_server.
 */
#include <stdio.h>
#include <string.h>

#include "conc/aiohttp.h"
#include "conc/aiostream.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "harness.h"

/* Serves "/len" with Content-Length, "/eof" ended by close, "/short" with a
 * body shorter than announced, "/slow" after 5 s, anything else 404. */
static int http_handler(conc_aio_stream_t *s, void *arg) {
  (void)arg;
  char req[1024];
  size_t got;
  int rc =
      conc_aio_stream_readuntil(s, "\r\n\r\n", 4, req, sizeof req - 1, &got);
  if (rc)
    return rc;
  req[got] = '\0';
  const char *resp;
  if (strncmp(req, "GET /len ", 9) == 0)
    resp = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  else if (strncmp(req, "GET /eof ", 9) == 0)
    resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end";
  else if (strncmp(req, "GET /short ", 11) == 0)
    resp = "HTTP/1.0 200 OK\r\nContent-Length: 50\r\n\r\ncut";
  else if (strncmp(req, "GET /host ", 10) == 0) {
    static char buf[128];
    const char *h = strstr(req, "Host: ");
    int n = (int)strcspn(h + 6, "\r");
    snprintf(buf, sizeof buf, "HTTP/1.0 200 OK\r\n\r\n%.*s", n, h + 6);
    resp = buf;
  } else if (strncmp(req, "GET /slow ", 10) == 0) {
    conc_aio_sleep(5);
    resp = "HTTP/1.0 200 OK\r\n\r\nlate";
  } else
    resp = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  return conc_aio_stream_write(s, resp, strlen(resp));
}

static int get_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_server_t *srv;
  assert_int_equal(
      conc_aio_start_server(http_handler, NULL, "127.0.0.1", 0, NULL, &srv), 0);
  char url[128];
  int port = conc_aio_server_port(srv);
  conc_aio_http_response_t r;

  snprintf(url, sizeof url, "http://127.0.0.1:%d/len", port);
  assert_int_equal(conc_aio_http_get(url, 5.0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 5);
  assert_string_equal(r.body, "hello");
  assert_non_null(strstr(r.headers, "Content-Length: 5"));
  conc_aio_http_response_free(&r);

  /* the Host header names the port, as HTTP/1.1 servers want */
  snprintf(url, sizeof url, "http://127.0.0.1:%d/host", port);
  assert_int_equal(conc_aio_http_get(url, 5.0, &r), 0);
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%d", port);
  assert_string_equal(r.body, want);
  conc_aio_http_response_free(&r);

  snprintf(url, sizeof url, "http://127.0.0.1:%d/eof", port);
  assert_int_equal(conc_aio_http_get(url, 5.0, &r), 0);
  assert_string_equal(r.body, "to the end");
  conc_aio_http_response_free(&r);

  snprintf(url, sizeof url, "http://127.0.0.1:%d/missing", port);
  assert_int_equal(conc_aio_http_get(url, 5.0, &r), 0);
  assert_int_equal(r.status, 404);
  assert_int_equal(r.body_len, 0);
  conc_aio_http_response_free(&r);

  snprintf(url, sizeof url, "http://127.0.0.1:%d/short", port);
  assert_int_equal(conc_aio_http_get(url, 5.0, &r), CONC_EINCOMPLETE);

  snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", port);
  double t0 = conc_monotonic();
  assert_int_equal(conc_aio_http_get(url, 0.05, &r), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.05);

  conc_aio_server_close(srv);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/len", port);
  assert_int_equal(conc_aio_http_get(url, 5.0, &r), CONC_ECONNREFUSED);
  assert_int_equal(conc_aio_http_get("https://example.com/", 5.0, &r),
                   CONC_EINVAL);
  assert_int_equal(conc_aio_http_get("http://:80/", 5.0, &r), CONC_EINVAL);
  assert_int_equal(conc_aio_http_get("http://h:99999/", 5.0, &r), CONC_EINVAL);
  /* the slow handler is still asleep: cancel it with the server's tasks */
  conc_aio_server_release(srv);
  return 0;
}

static void get_reads_status_headers_and_body(void **state) {
  (void)state;
  assert_int_equal(conc_aio_run(get_main, NULL, NULL, NULL), 0);
  conc_aio_http_response_t r;
  assert_int_equal(conc_aio_http_get("http://127.0.0.1/", 1.0, &r),
                   CONC_ESTATE);
}

static int v6_main(void *arg, void **res) {
  (void)arg;
  (void)res;
  conc_aio_server_t *srv;
  if (conc_aio_start_server(http_handler, NULL, "::1", 0, NULL, &srv) != 0) {
    printf("# no IPv6 loopback here: skipped\n");
    return 0;
  }
  char url[128];
  snprintf(url, sizeof url, "http://[::1]:%d/host", conc_aio_server_port(srv));
  conc_aio_http_response_t r;
  assert_int_equal(conc_aio_http_get(url, 5.0, &r), 0);
  char want[64];
  snprintf(want, sizeof want, "[::1]:%d", conc_aio_server_port(srv));
  assert_string_equal(r.body, want);
  conc_aio_http_response_free(&r);
  conc_aio_server_release(srv);
  return 0;
}

static void get_takes_an_ipv6_literal(void **state) {
  (void)state;
  assert_int_equal(conc_aio_run(v6_main, NULL, NULL, NULL), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(get_reads_status_headers_and_body),
               cmocka_unit_test(get_takes_an_ipv6_literal))
