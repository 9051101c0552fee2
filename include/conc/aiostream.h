// clang-format off
/*
 * Streams on the event loop: asyncio's StreamReader/StreamWriter pair as one
 * connection object, with servers over TCP (IPv4 and IPv6) and Unix
 * sockets. Every call that waits suspends only the calling task.
 *
 *
 *   Python (asyncio)                           C
 *   r, w = await open_connection(h, port)      conc_aio_open_connection(h, port, NULL, &s)
 *   r, w = await open_unix_connection(path)    conc_aio_open_unix_connection(path, NULL, &s)
 *   srv = await start_server(cb, h, port)      conc_aio_start_server(cb, arg, h, port, NULL, &srv)
 *   async def cb(reader, writer)               int cb(conc_aio_stream_t *s, void *arg)
 *   data = await r.read(n)                     n = conc_aio_stream_read(s, buf, n)
 *   line = await r.readline()                  n = conc_aio_stream_readline(s, buf, cap)
 *   data = await r.readexactly(n)              conc_aio_stream_readexactly(s, buf, n, &got)
 *   except IncompleteReadError as e: e.partial rc == CONC_EINCOMPLETE: buf[0..got)
 *   data = await r.readuntil(b"\r\n\r\n")      conc_aio_stream_readuntil(s, sep, 4, buf, cap, &got)
 *   except LimitOverrunError                   n == CONC_ELIMIT
 *   r.at_eof()                                 conc_aio_stream_at_eof(s)
 *   w.write(data); w.writelines(lines)         conc_aio_stream_write(s, buf, n); ..._writelines(s, iov, k)
 *   await w.drain()                            conc_aio_stream_drain(s)
 *   w.write_eof()                              conc_aio_stream_write_eof(s)
 *   w.close(); await w.wait_closed()           conc_aio_stream_close(s); conc_aio_stream_wait_closed(s)
 *   w.get_extra_info("peername")               conc_aio_stream_peername(s, sa, &len)
 *   srv.close(); await srv.wait_closed()       conc_aio_server_close(srv); conc_aio_server_wait_closed(srv)
 *   await srv.serve_forever()                  conc_aio_server_serve_forever(srv)
 *   srv.sockets[0].getsockname()[1]            conc_aio_server_port(srv)
 *
 *
 * Objects: a stream and a server are heap objects of the loop's thread,
 * freed with conc_aio_stream_release / conc_aio_server_release (a stream
 * still open is closed at once, unsent data dropped). A server's handler
 * owns its stream: when the handler returns, the stream is closed
 * (flushing what was written) and released.
 *
 * Codes: a peer that resets or vanishes ends the pending read or write with
 * CONC_ECONNRESET or CONC_EPIPE; a write after close is CONC_ECLOSED;
 * reads and waits outside a task are CONC_ESTATE; a task cancelled while it
 * waits gets CONC_ECANCELED and the bytes already buffered stay buffered.
 */
// clang-format on
#ifndef CONC_AIOSTREAM_H
#define CONC_AIOSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "conc/defs.h"

CONC_BEGIN_DECLS

typedef struct conc_aio_stream conc_aio_stream_t;
typedef struct conc_aio_server conc_aio_server_t;

/* Zero means asyncio's default for every field. */
typedef struct conc_aio_stream_opts {
  size_t limit;      /* readline/readuntil buffer limit; 0: 65536 */
  size_t high_water; /* drain waits while more is buffered; 0: 65536 */
  size_t low_water;  /* ...until at most this is; 0: high_water / 4 */
} conc_aio_stream_opts_t;

/* open_connection(host, port): resolves host (numeric hosts without a
 * thread), tries each address in turn. CONC_EGAI, -ECONNREFUSED, ... */
CONC_EXTERN int conc_aio_open_connection(const char *host, int port,
                                         const conc_aio_stream_opts_t *opts,
                                         conc_aio_stream_t **out);
CONC_EXTERN int
conc_aio_open_unix_connection(const char *path,
                              const conc_aio_stream_opts_t *opts,
                              conc_aio_stream_t **out);

/* A stream over a connected socket (or pipe) the caller made; the stream
 * owns fd from now on (also on failure: it is closed). */
CONC_EXTERN int conc_aio_stream_from_fd(int fd,
                                        const conc_aio_stream_opts_t *opts,
                                        conc_aio_stream_t **out);

/* read(n): at most n bytes, at least 1; 0 at end of stream. */
CONC_EXTERN ssize_t conc_aio_stream_read(conc_aio_stream_t *s, void *buf,
                                         size_t n);

/* readexactly(n): 0 with n bytes in buf; CONC_EINCOMPLETE when the stream
 * ends first, with *got (may be NULL) bytes read into buf (e.partial). */
CONC_EXTERN int conc_aio_stream_readexactly(conc_aio_stream_t *s, void *buf,
                                            size_t n, size_t *got);

/* readuntil(sep): 0 with *got (may be NULL) bytes through the separator
 * copied into buf; CONC_ELIMIT when no separator is found within the limit
 * (which, as asyncio's, counts the data before the separator; the data
 * stays buffered); CONC_EMSGSIZE when cap is too small for what was found
 * (it stays buffered too); CONC_EINCOMPLETE at end of stream, with up to
 * cap bytes of the partial data moved into buf and *got their count
 * (e.partial; what does not fit stays buffered). CONC_EINVAL for an empty
 * sep. */
CONC_EXTERN int conc_aio_stream_readuntil(conc_aio_stream_t *s, const void *sep,
                                          size_t seplen, void *buf, size_t cap,
                                          size_t *got);

/* readline(): through "\n"; at end of stream what is left (maybe 0 bytes);
 * a line longer than the limit is CONC_ELIMIT (and is consumed, as asyncio
 * does); CONC_EMSGSIZE when cap is too small. */
CONC_EXTERN ssize_t conc_aio_stream_readline(conc_aio_stream_t *s, void *buf,
                                             size_t cap);

CONC_EXTERN bool conc_aio_stream_at_eof(const conc_aio_stream_t *s);

/* write(data): never waits; what the socket does not take at once is
 * buffered and sent as the socket allows. 0, CONC_ECLOSED (closing),
 * or the connection's error. */
CONC_EXTERN int conc_aio_stream_write(conc_aio_stream_t *s, const void *buf,
                                      size_t n);
CONC_EXTERN int conc_aio_stream_writelines(conc_aio_stream_t *s,
                                           const struct iovec *iov, int n);

/* drain(): wait until the buffer is at or below the low-water mark (at once
 * when below the high-water mark). 0, or the connection's error. */
CONC_EXTERN int conc_aio_stream_drain(conc_aio_stream_t *s);

/* Bytes written but not yet sent. */
CONC_EXTERN size_t
conc_aio_stream_write_buffer_size(const conc_aio_stream_t *s);

/* write_eof(): shut down the sending side once the buffer is sent. */
CONC_EXTERN int conc_aio_stream_write_eof(conc_aio_stream_t *s);

/* close(): no more writes; the buffer is sent, then the socket closed. A
 * task reading the stream meanwhile gets its end (0). wait_closed(): wait
 * for that: 0, or the error that ended the sending, except that a peer
 * that went away (CONC_EPIPE, CONC_ECONNRESET) counts as closed (0), as
 * asyncio's wait_closed does not raise for it. Several tasks may wait; a
 * cancelled one leaves the others waiting. */
CONC_EXTERN int conc_aio_stream_close(conc_aio_stream_t *s);
CONC_EXTERN bool conc_aio_stream_is_closing(const conc_aio_stream_t *s);
CONC_EXTERN int conc_aio_stream_wait_closed(conc_aio_stream_t *s);

/* get_extra_info("peername" / "sockname"); the descriptor (-1 once closed). */
CONC_EXTERN int conc_aio_stream_peername(const conc_aio_stream_t *s,
                                         struct sockaddr *addr, socklen_t *len);
CONC_EXTERN int conc_aio_stream_sockname(const conc_aio_stream_t *s,
                                         struct sockaddr *addr, socklen_t *len);
CONC_EXTERN int conc_aio_stream_fd(const conc_aio_stream_t *s);

CONC_EXTERN void conc_aio_stream_release(conc_aio_stream_t *s);

/* ---- servers ------------------------------------------------------------- */

/* A connection's handler, run as its own task. Its return value is the
 * task's outcome: a failure other than the peer going away
 * (CONC_ECONNRESET, CONC_EPIPE) is reported through the loop's exception
 * handler ("connection handler failed"), as asyncio logs an exception of
 * client_connected_cb. */
typedef int (*conc_aio_stream_handler_t)(conc_aio_stream_t *s, void *arg);

typedef struct conc_aio_server_opts {
  conc_aio_stream_opts_t stream; /* for each accepted connection */
  int backlog;                   /* 0: 100 (asyncio's) */
  bool reuse_port;
} conc_aio_server_opts_t;

/* start_server(handler, host, port): listening and accepting at once.
 * host NULL: every interface (one socket per family); port 0: one the
 * kernel picks (conc_aio_server_port tells). */
CONC_EXTERN int conc_aio_start_server(conc_aio_stream_handler_t handler,
                                      void *arg, const char *host, int port,
                                      const conc_aio_server_opts_t *opts,
                                      conc_aio_server_t **out);
/* start_unix_server: an existing socket file at path is replaced. */
CONC_EXTERN int conc_aio_start_unix_server(conc_aio_stream_handler_t handler,
                                           void *arg, const char *path,
                                           const conc_aio_server_opts_t *opts,
                                           conc_aio_server_t **out);

/* The port of the first listening socket (0 for a Unix server). */
CONC_EXTERN int conc_aio_server_port(const conc_aio_server_t *srv);
/* Listening descriptors into fds (cap); returns how many there are. */
CONC_EXTERN size_t conc_aio_server_sockets(const conc_aio_server_t *srv,
                                           int *fds, size_t cap);
CONC_EXTERN bool conc_aio_server_is_serving(const conc_aio_server_t *srv);
/* Connections whose handler is still running. */
CONC_EXTERN size_t conc_aio_server_connections(const conc_aio_server_t *srv);

/* close(): stop accepting (listening sockets closed, a Unix socket file
 * removed); running handlers go on. wait_closed(): wait until closed and
 * every handler has returned. serve_forever(): wait until the server is
 * closed (0) or the waiting task is cancelled (CONC_ECANCELED, and the
 * server is closed, as asyncio does). */
CONC_EXTERN int conc_aio_server_close(conc_aio_server_t *srv);
CONC_EXTERN int conc_aio_server_wait_closed(conc_aio_server_t *srv);
CONC_EXTERN int conc_aio_server_serve_forever(conc_aio_server_t *srv);

/* Close and free; handlers still running keep their streams. */
CONC_EXTERN void conc_aio_server_release(conc_aio_server_t *srv);

CONC_END_DECLS

#endif
