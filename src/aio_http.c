/*
 * The tiny HTTP/1.0 GET client (include/conc/aiohttp.h) on streams.
 *
 * Locking protocol: none; it runs in the calling task on the loop's thread.
 */
#include "conc/aiohttp.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conc/aiostream.h"
#include "conc/error.h"
#include "conc/loop.h"

typedef struct url {
  char host[256];
  int port;
  const char *path;
} url_t;

static int parse_url(const char *u, url_t *out) {
  if (!u || strncmp(u, "http://", 7) != 0)
    return CONC_EINVAL;
  const char *h = u + 7, *end = h + strcspn(h, "/");
  const char *hstart = h, *hend;
  if (*h == '[') { /* an IPv6 literal: http://[::1]:8080/ */
    const char *close = memchr(h, ']', (size_t)(end - h));
    if (!close)
      return CONC_EINVAL;
    hstart = h + 1;
    hend = close;
    h = close + 1;
  } else {
    const char *colon = memchr(h, ':', (size_t)(end - h));
    hend = colon ? colon : end;
    h = hend;
  }
  if (hend == hstart || (size_t)(hend - hstart) >= sizeof out->host)
    return CONC_EINVAL;
  memcpy(out->host, hstart, (size_t)(hend - hstart));
  out->host[hend - hstart] = '\0';
  out->port = 80;
  if (*h == ':') {
    char *e;
    long p = strtol(h + 1, &e, 10);
    if (e != end || p <= 0 || p > 65535)
      return CONC_EINVAL;
    out->port = (int)p;
  } else if (h != end) {
    return CONC_EINVAL;
  }
  out->path = *end ? end : "/";
  return 0;
}

/* "HTTP/1.x NNN reason\r\n" then headers up to the blank line. */
static int read_head(conc_aio_stream_t *s, conc_aio_http_response_t *r) {
  char *head = malloc(65536);
  size_t got = 0;
  if (!head)
    return CONC_ENOMEM;
  int rc = conc_aio_stream_readuntil(s, "\r\n\r\n", 4, head, 65535, &got);
  if (rc) {
    free(head);
    return rc == CONC_EINCOMPLETE || rc == CONC_ELIMIT || rc == CONC_EMSGSIZE
               ? CONC_EIO
               : rc;
  }
  head[got] = '\0';
  int status;
  if (sscanf(head, "HTTP/%*d.%*d %d", &status) != 1) {
    free(head);
    return CONC_EIO;
  }
  r->status = status;
  char *eol = strstr(head, "\r\n");
  r->headers = strdup(eol + 2);
  free(head);
  return r->headers ? 0 : CONC_ENOMEM;
}

static long content_length(const char *headers) {
  for (const char *p = headers; p && *p; p = strstr(p, "\r\n")) {
    if (*p == '\r')
      p += 2;
    if (strncasecmp(p, "Content-Length:", 15) == 0)
      return strtol(p + 15, NULL, 10);
  }
  return -1;
}

static int read_body(conc_aio_stream_t *s, conc_aio_http_response_t *r) {
  long want = content_length(r->headers);
  size_t cap = want >= 0 ? (size_t)want + 1 : 16384, len = 0;
  char *b = malloc(cap);
  if (!b)
    return CONC_ENOMEM;
  for (;;) {
    if (cap - len < 4096 && want < 0) {
      char *n = realloc(b, cap * 2);
      if (!n) {
        free(b);
        return CONC_ENOMEM;
      }
      b = n;
      cap *= 2;
    }
    if (want >= 0 && len == (size_t)want)
      break;
    ssize_t n = conc_aio_stream_read(s, b + len, cap - len - 1);
    if (n < 0) {
      free(b);
      return (int)n;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  b[len] = '\0';
  r->body = b;
  r->body_len = len;
  return want >= 0 && len < (size_t)want ? CONC_EINCOMPLETE : 0;
}

static int exchange(const url_t *u, conc_aio_http_response_t *r) {
  conc_aio_stream_t *s;
  int rc = conc_aio_open_connection(u->host, u->port, NULL, &s);
  if (rc)
    return rc;
  char req[1024], host[300];
  bool v6 = strchr(u->host, ':') != NULL;
  if (u->port == 80)
    snprintf(host, sizeof host, v6 ? "[%s]" : "%s", u->host);
  else
    snprintf(host, sizeof host, v6 ? "[%s]:%d" : "%s:%d", u->host, u->port);
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: libconc\r\n"
                   "Connection: close\r\n\r\n",
                   u->path, host);
  rc = n < 0 || (size_t)n >= sizeof req
           ? CONC_EINVAL
           : conc_aio_stream_write(s, req, (size_t)n);
  if (rc == 0)
    rc = read_head(s, r);
  if (rc == 0)
    rc = read_body(s, r);
  conc_aio_stream_release(s);
  return rc;
}

int conc_aio_http_get(const char *url, double timeout,
                      conc_aio_http_response_t *out) {
  url_t u;
  if (!out || parse_url(url, &u))
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  conc_aio_http_response_t r = {0};
  conc_aio_timeout_t to;
  int rc = conc_aio_timeout_enter(&to, timeout);
  if (rc)
    return rc;
  rc = conc_aio_timeout_exit(&to, exchange(&u, &r));
  if (rc) {
    conc_aio_http_response_free(&r);
    return rc;
  }
  *out = r;
  return 0;
}

void conc_aio_http_response_free(conc_aio_http_response_t *r) {
  if (!r)
    return;
  free(r->headers);
  free(r->body);
  r->headers = r->body = NULL;
  r->body_len = 0;
}
