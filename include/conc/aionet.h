// clang-format off
/*
 * Cooperative sockets on the event loop: gevent's monkey-patched socket
 * calls made explicit, and asyncio's loop.sock_* functions. Each call tries
 * the system call first and, when it would block, suspends only the calling
 * task until the descriptor is ready (the loop keeps running every other
 * task), then tries again.
 *
 *
 *   Python                                   C
 *   gevent.socket.wait_read(fd, timeout)     conc_aio_wait_readable(fd, timeout)
 *   sock = socket.socket(); setblocking(0)   conc_aio_socket(AF_INET, SOCK_STREAM, 0, &fd)
 *   await loop.sock_connect(sock, addr)      conc_aio_sock_connect(fd, sa, len, timeout)
 *   conn, addr = await loop.sock_accept(s)   conc_aio_sock_accept(fd, timeout, sa, &len, &conn)
 *   data = await loop.sock_recv(sock, n)     n = conc_aio_sock_recv(fd, buf, n, timeout)
 *   n = await loop.sock_recv_into(sock, b)   n = conc_aio_sock_recv_into(fd, buf, n, timeout)
 *   await loop.sock_sendall(sock, data)      conc_aio_sock_sendall(fd, buf, n, timeout)
 *   sock.send(data) (gevent)                 n = conc_aio_sock_send(fd, buf, n, timeout)
 *   await loop.sock_recvfrom(sock, n)        n = conc_aio_sock_recvfrom(fd, buf, n, sa, &len, timeout)
 *   await loop.sock_sendto(sock, d, addr)    n = conc_aio_sock_sendto(fd, buf, n, sa, len, timeout)
 *   sock.close()                             conc_aio_sock_close(fd)
 *   await loop.getaddrinfo(host, port)       conc_aio_getaddrinfo(host, port, &hints, &res)
 *   await loop.getnameinfo(sa, flags)        conc_aio_getnameinfo(sa, len, host, hl, serv, sl, flags)
 *
 *
 * Rules common to every call here:
 * - Called from a task (CONC_ESTATE otherwise). The descriptor must be
 *   non-blocking (conc_aio_socket and conc_aio_sock_accept make them so);
 *   a blocking one blocks the whole loop.
 * - timeout is seconds for the whole call (one deadline at entry);
 *   CONC_FOREVER waits without limit; 0 tries once. CONC_ETIMEDOUT when it
 *   passes; CONC_ECANCELED when the task is cancelled while it waits; NaN
 *   is CONC_EINVAL.
 * - Byte counts are returned as ssize_t (0 from recv means the peer closed);
 *   failures are negative CONC_E* codes: the errno of the system call as
 *   -errno (CONC_ECONNRESET, CONC_EPIPE, -ECONNREFUSED, ...).
 * - One task at a time may wait on a descriptor in each direction; a
 *   second gets CONC_EBUSY (asyncio raises RuntimeError), as does a wait on
 *   a descriptor that has an add_reader/add_writer callback.
 * - The loop keeps a descriptor registered with its poller between waits:
 *   close a socket used here with conc_aio_sock_close (or call
 *   conc_aio_sock_forget before close), so that a later descriptor with
 *   the same number starts clean.
 */
// clang-format on
#ifndef CONC_AIONET_H
#define CONC_AIONET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "conc/defs.h"

struct addrinfo;

CONC_BEGIN_DECLS

/* Suspend the task until fd is readable / writable. 0, CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_EBUSY, CONC_EBADF, CONC_EPERM (a regular file). */
CONC_EXTERN int conc_aio_wait_readable(int fd, double timeout);
CONC_EXTERN int conc_aio_wait_writable(int fd, double timeout);

/* socket(domain, type, protocol), non-blocking and close-on-exec. Any
 * thread may call it. */
CONC_EXTERN int conc_aio_socket(int domain, int type, int protocol, int *out);

/* Make an existing descriptor non-blocking (gevent's sockets are). */
CONC_EXTERN int conc_aio_set_nonblocking(int fd);

/* Drop fd from the running loop's poller (tasks waiting on it resume and
 * see the closed descriptor), then close it. Outside a loop: close. */
CONC_EXTERN int conc_aio_sock_close(int fd);
CONC_EXTERN void conc_aio_sock_forget(int fd);

/* connect(): 0, or the connection's error (-ECONNREFUSED,
 * CONC_ETIMEDOUT, ...). */
CONC_EXTERN int conc_aio_sock_connect(int fd, const struct sockaddr *addr,
                                      socklen_t len, double timeout);

/* accept(): *out is the new connection, non-blocking and close-on-exec;
 * addr/len (may be NULL) receive the peer's address. */
CONC_EXTERN int conc_aio_sock_accept(int fd, double timeout,
                                     struct sockaddr *addr, socklen_t *len,
                                     int *out);

/* recv(): the bytes read (at least 1), 0 at the peer's end of stream. n 0
 * returns 0 at once. */
CONC_EXTERN ssize_t conc_aio_sock_recv(int fd, void *buf, size_t n,
                                       double timeout);
/* recv_into(): in C the same call (the caller always provides the
 * buffer). */
CONC_EXTERN ssize_t conc_aio_sock_recv_into(int fd, void *buf, size_t n,
                                            double timeout);

/* send(): the bytes sent (at least 1 unless n is 0). Never raises SIGPIPE:
 * a closed peer is CONC_EPIPE. */
CONC_EXTERN ssize_t conc_aio_sock_send(int fd, const void *buf, size_t n,
                                       double timeout);

/* sendall(): 0 once every byte is sent. On an error or timeout part of the
 * data may have been sent: *sent (may be NULL) says how much, always. */
CONC_EXTERN int conc_aio_sock_sendall(int fd, const void *buf, size_t n,
                                      double timeout, size_t *sent);

/* UDP: recvfrom / sendto, one datagram each. */
CONC_EXTERN ssize_t conc_aio_sock_recvfrom(int fd, void *buf, size_t n,
                                           struct sockaddr *from,
                                           socklen_t *fromlen, double timeout);
CONC_EXTERN ssize_t conc_aio_sock_sendto(int fd, const void *buf, size_t n,
                                         const struct sockaddr *to,
                                         socklen_t tolen, double timeout);

/*
 * getaddrinfo / getnameinfo on a thread of their own, so that name
 * resolution never blocks the loop; the task resumes with the answer (and
 * may be cancelled meanwhile: the thread finishes and cleans up alone). A
 * name that does not resolve is CONC_EGAI (socket.gaierror) with the
 * EAI_* code in *gai_code (may be NULL; gai_strerror gives its text).
 * Free *out with freeaddrinfo.
 */
CONC_EXTERN int conc_aio_getaddrinfo(const char *host, const char *port,
                                     const struct addrinfo *hints,
                                     int *gai_code, struct addrinfo **out);
CONC_EXTERN int conc_aio_getnameinfo(const struct sockaddr *addr, socklen_t len,
                                     char *host, size_t hostlen, char *serv,
                                     size_t servlen, int flags, int *gai_code);

CONC_END_DECLS

#endif
