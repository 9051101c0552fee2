// clang-format off
/*
 * A tiny HTTP/1.0 GET client on the loop's streams: enough for the gevent
 * and asyncio lessons' "fetch these pages concurrently" and for the
 * benchmarks. No TLS, no redirects, no chunked encoding (HTTP/1.0 servers
 * do not send it; the request says HTTP/1.0 and Connection: close).
 *
 *
 *   Python                                     C
 *   urllib.request.urlopen(url).read()         conc_aio_http_get(url, timeout, &resp)
 *   (gevent.monkey patches it cooperative)     resp.status, resp.body, resp.body_len
 *
 */
// clang-format on
#ifndef CONC_AIOHTTP_H
#define CONC_AIOHTTP_H

#include <stddef.h>

#include "conc/defs.h"

CONC_BEGIN_DECLS

typedef struct conc_aio_http_response {
  int status;    /* 200, 404, ... */
  char *headers; /* the header block, NUL-terminated, without the status */
  char *body;    /* NUL-terminated (the body itself may hold NULs) */
  size_t body_len;
} conc_aio_http_response_t;

/*
 * GET url ("http://host[:port][/path]"), from a task; only this task waits.
 * timeout covers the whole exchange (CONC_FOREVER: none). 0 with *out filled
 * (free it with conc_aio_http_response_free) whatever the status; CONC_EINVAL
 * for a URL that is not http://, CONC_EGAI, -ECONNREFUSED, CONC_ETIMEDOUT,
 * CONC_EINCOMPLETE (the body ended before its Content-Length),
 * CONC_EIO (not an HTTP response), CONC_ESTATE outside a task.
 */
CONC_EXTERN int conc_aio_http_get(const char *url, double timeout,
                                  conc_aio_http_response_t *out);

CONC_EXTERN void conc_aio_http_response_free(conc_aio_http_response_t *r);

CONC_END_DECLS

#endif
