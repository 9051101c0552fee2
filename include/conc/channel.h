/*
 * Pipes and connections (multiprocessing.Pipe / Connection / wait) and the
 * process queues (multiprocessing.Queue, JoinableQueue, SimpleQueue).
 *
 *   a, b = Pipe()                 conc_conn_t a, b; conc_pipe(&a, &b, true);
 *   a.send_bytes(b"hi")           conc_conn_send_bytes(&a, "hi", 2);
 *   msg = b.recv_bytes()          conc_conn_recv_bytes(&b, &msg, &len);
 * free(msg);
 *
 * Messages are byte strings of any size. A one-way Pipe is a packet-mode
 * pipe (pipe2(O_DIRECT)), a duplex Pipe two of them plus a SOCK_SEQPACKET
 * socket pair that carries only passed descriptors (where the kernel lacks
 * packet-mode pipes, a socket pair carries everything): each message
 * travels as records (at most CONC_CONN_RECORD bytes on a socket, PIPE_BUF
 * on a pipe), every record atomic. Writers at one end take a process-shared
 * lock per message, so messages never interleave; a writer killed in the middle
 * of a long message leaves a torn message that the next writer (who acquires
 * the lock with CONC_EOWNERDEAD) cancels with an abort record, and readers drop
 * it: readers see whole messages or nothing (spec F5).
 */
#ifndef CONC_CHANNEL_H
#define CONC_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/defs.h"
#include "conc/sync.h"

/* Largest payload carried by one record. */
#define CONC_CONN_RECORD (60 * 1024)

/* send_bytes(buf, offset, size=None): size CONC_CONN_REST. */
#define CONC_CONN_REST ((size_t)-1)

typedef struct conc_conn {
  struct {
    int fd;     /* read side (fileno) */
    int wfd;    /* write side: fd itself on a socket */
    int sockfd; /* a pipe-built duplex end: the socket for descriptors */
    bool readable, writable, closed;
    bool packet_pipe;             /* a packet-mode pipe rather than a socket */
    struct conc__conn_shared *sh; /* this end's shared state */
    struct conc__conn_shared *peer; /* the other end's, in the same map */
    void *map;                      /* this end's own mapping of both */
    uint32_t spin_skip, spin_fails; /* adaptive spin hints (this process) */
    unsigned char *scratch;         /* one record, this process's buffer */
    unsigned char *pending;         /* a message kept after CONC_ETOOSHORT */
    size_t pending_len;
    bool has_pending;
  } priv;
} conc_conn_t;

CONC_BEGIN_DECLS

/* Pipe(duplex): duplex: both ends send and receive; otherwise a receives
 * only and b sends only. CONC_EMFILE, CONC_ENOMEM. */
CONC_EXTERN int conc_pipe(conc_conn_t *a, conc_conn_t *b, bool duplex);

/* send_bytes(buf[offset:offset+size]): C5 range rules: offset > len or
 * offset + size > len is CONC_EINVAL. Blocks while the pipe is full.
 * CONC_EBADF (read-only end), CONC_ECLOSED, CONC_EPIPE (peer closed). */
CONC_EXTERN int conc_conn_send_bytes(conc_conn_t *c, const void *buf,
                                     size_t len);
CONC_EXTERN int conc_conn_send_bytes_ex(conc_conn_t *c, const void *buf,
                                        size_t len, size_t offset, size_t size);

/* recv_bytes(): the next whole message in a malloc'd buffer (free() it;
 * never NULL on success, even for an empty message). CONC_EEOF when the
 * peer has closed and nothing is left, CONC_EBADF (write-only end),
 * CONC_ECLOSED. */
CONC_EXTERN int conc_conn_recv_bytes(conc_conn_t *c, void **out, size_t *len);
/* recv_bytes(maxlength): as recv_bytes, but a message longer than maxlength
 * is not read: CONC_EMSGSIZE with *len its size, and, as in Python, this
 * handle can no longer receive (a duplex end: CONC_EBADF from then on for
 * receives; a read-only end is closed). The rest of that message is
 * dropped by whichever reader comes next. */
CONC_EXTERN int conc_conn_recv_bytes_max(conc_conn_t *c, size_t maxlength,
                                         void **out, size_t *len);

/* recv_bytes_into(buf, offset): copies the next message to buf + offset.
 * CONC_ETOOSHORT when it does not fit: *len is the size needed and the
 * message stays queued for the next receive (Python's BufferTooShort carries
 * it). CONC_EINVAL when offset > cap. */
CONC_EXTERN int conc_conn_recv_bytes_into(conc_conn_t *c, void *buf, size_t cap,
                                          size_t offset, size_t *len);

/* poll(timeout): 1 when a message (or EOF) is ready, 0 when not within the
 * timeout (0 or negative other than CONC_FOREVER: at once). */
CONC_EXTERN int conc_conn_poll(conc_conn_t *c, double timeout);

/* Pass a descriptor (SCM_RIGHTS, any fd number) over a duplex Pipe.
 * recv_fd: *fd is a new descriptor (close-on-exec); CONC_EBADF when the
 * message carried none. A one-way Pipe is a pipe: CONC_EBADF. */
CONC_EXTERN int conc_conn_send_fd(conc_conn_t *c, int fd);
CONC_EXTERN int conc_conn_recv_fd(conc_conn_t *c, int *fd);

/* close(): CONC_ECLOSED afterwards for every operation; closing again is a
 * no-op. Only this process's handle is closed. */
CONC_EXTERN int conc_conn_close(conc_conn_t *c);
/* fileno(): the descriptor to poll for reading (a duplex end built on pipes
 * also holds a write pipe and a socket for passed descriptors). */
CONC_EXTERN int conc_conn_fileno(const conc_conn_t *c);
CONC_EXTERN bool conc_conn_readable(const conc_conn_t *c);
CONC_EXTERN bool conc_conn_writable(const conc_conn_t *c);
CONC_EXTERN bool conc_conn_closed(const conc_conn_t *c);

/* multiprocessing.connection.wait(objects, timeout): set .conn for a
 * connection or .fd for a descriptor (a process sentinel, a socket...).
 * Marks .ready and returns how many are ready; 0 after the timeout
 * (negative other than CONC_FOREVER: at once). CONC_ECLOSED for a closed
 * connection. */
typedef struct conc_waitable {
  conc_conn_t *conn;
  int fd;
  bool ready;
} conc_waitable_t;

CONC_EXTERN int conc_wait(conc_waitable_t *objs, int n, double timeout);

CONC_END_DECLS

#endif
