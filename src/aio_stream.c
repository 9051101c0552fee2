/*
 * Streams: one connection's read buffer and write buffer over a
 * non-blocking socket, asyncio's StreamReader and StreamWriter together.
 *
 * Locking protocol: none. A stream belongs to its loop's thread; readers
 * suspend in conc__aio_wait_io, the sender is a writer callback of the loop.
 *
 * Reading: after a recv that returned less than it asked for, the socket
 * is most likely drained, so the next fill waits for readiness first
 * instead of paying a recv that fails with EAGAIN (the poller reports at
 * once if data came meanwhile: it is level-triggered). An empty read buffer
 * is freed before the task waits, so an idle connection holds no buffer.
 *
 * Pipes (a subprocess's stdin/stdout) use read/write instead of recv/send;
 * a pipe write blocks SIGPIPE around itself (see pipe_write).
 *
 * Writing: write() sends at once when nothing is queued; the rest is copied
 * to the write buffer and a writer callback sends it as the socket allows,
 * completing drain's future at the low-water mark and finishing a close
 * once the buffer is empty.
 */
#include "conc/aiostream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/aionet.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "conc/time.h"
#include "loop-int.h"

enum { MIN_RBUF = 4096, DIRECT_READ = 4096 };

struct conc_aio_stream {
  conc_loop_t *loop;
  int fd;
  size_t limit, high, low;
  char *rbuf;
  size_t rcap, rstart, rend;
  char *wbuf;
  size_t wcap, wstart, wend;
  int rerr, werr;
  bool sock; /* a socket: recv/send; else a pipe or tty: read/write */
  bool eof, drained, writer_armed;
  bool closing, closed, eof_pending;
  conc_aio_future_t *drain_f, *closed_f;
};

static void apply_opts(conc_aio_stream_t *s, const conc_aio_stream_opts_t *o) {
  s->limit = o && o->limit ? o->limit : 65536;
  s->high = o && o->high_water ? o->high_water : 65536;
  s->low = o && o->low_water ? o->low_water : s->high / 4;
  if (s->low > s->high)
    s->low = s->high;
}

int conc_aio_stream_from_fd(int fd, const conc_aio_stream_opts_t *opts,
                            conc_aio_stream_t **out) {
  conc_loop_t *loop = conc_loop_get();
  int rc = fd < 0 ? CONC_EBADF : !out ? CONC_EINVAL : conc__loop_check(loop);
  if (rc == 0)
    rc = conc_aio_set_nonblocking(fd);
  conc_aio_stream_t *s = rc ? NULL : calloc(1, sizeof *s);
  if (rc == 0 && !s)
    rc = CONC_ENOMEM;
  if (rc) {
    if (fd >= 0)
      close(fd);
    return rc;
  }
  s->loop = loop;
  s->fd = fd;
  struct stat st;
  s->sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
  s->drained = true; /* look before reading: waiting holds no buffer */
  apply_opts(s, opts);
  *out = s;
  return 0;
}

int conc_aio_stream_fd(const conc_aio_stream_t *s) {
  return s && !s->closed ? s->fd : -1;
}

bool conc_aio_stream_at_eof(const conc_aio_stream_t *s) {
  return s && s->eof && s->rstart == s->rend;
}

/* ---- reading -------------------------------------------------------------- */

static size_t buffered(const conc_aio_stream_t *s) {
  return s->rend - s->rstart;
}

/* Room for at least `want` more bytes at the end of the read buffer. */
/* Read buffers of MIN_RBUF bytes that idle connections gave back wait in a
 * small per-loop cache, so a connection that goes idle after every message
 * does not pay a malloc and a free for each one. */
static void rbuf_drop(conc_aio_stream_t *s) {
  conc_loop_t *loop = s->loop;
  if (s->rcap == MIN_RBUF && !loop->closed && loop->nrbuf < CONC__RBUF_CACHE)
    loop->rbuf_cache[loop->nrbuf++] = s->rbuf;
  else
    free(s->rbuf);
  s->rbuf = NULL;
  s->rcap = s->rstart = s->rend = 0;
}

static int room(conc_aio_stream_t *s, size_t want) {
  if (s->rstart == s->rend)
    s->rstart = s->rend = 0;
  if (s->rcap - s->rend >= want)
    return 0;
  if (!s->rbuf && want <= MIN_RBUF && s->loop->nrbuf > 0) {
    s->rbuf = s->loop->rbuf_cache[--s->loop->nrbuf];
    s->rcap = MIN_RBUF;
    return 0;
  }
  if (s->rstart > 0) {
    memmove(s->rbuf, s->rbuf + s->rstart, buffered(s));
    s->rend -= s->rstart;
    s->rstart = 0;
    if (s->rcap - s->rend >= want)
      return 0;
  }
  size_t cap = s->rcap ? s->rcap : MIN_RBUF;
  while (cap - s->rend < want)
    cap *= 2;
  char *n = realloc(s->rbuf, cap);
  if (!n)
    return CONC_ENOMEM;
  s->rbuf = n;
  s->rcap = cap;
  return 0;
}

/* Wait until the socket is readable. A stream closed meanwhile (by another
 * task) reads as its end: its descriptor number may already be another's. */
static int wait_readable(conc_aio_stream_t *s) {
  int rc = conc__aio_wait_io(s->fd, CONC__EV_READ, CONC_FOREVER);
  if (s->closed) {
    s->eof = true;
    return 1;
  }
  if (rc == 0)
    s->drained = false;
  return rc;
}

/* One recv (read on a pipe) without waiting: >0, 0 at the end, CONC_EAGAIN
 * (and drained set) when nothing is there, or the stream's error. */
static ssize_t recv_once(conc_aio_stream_t *s, char *dst, size_t n) {
  for (;;) {
    ssize_t r = s->sock ? recv(s->fd, dst, n, 0) : read(s->fd, dst, n);
    if (r > 0) {
      s->drained = (size_t)r < n;
      return r;
    }
    if (r == 0) {
      s->eof = true;
      return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s->drained = true;
      return CONC_EAGAIN;
    }
    if (errno != EINTR)
      return s->rerr = -errno;
  }
}

/* recv into dst (n bytes), waiting as needed: >0, 0 at end, or a code. */
static ssize_t recv_some(conc_aio_stream_t *s, char *dst, size_t n) {
  for (;;) {
    if (s->drained) {
      int rc = wait_readable(s);
      if (rc)
        return rc > 0 ? 0 : rc;
    }
    ssize_t r = recv_once(s, dst, n);
    if (r != CONC_EAGAIN)
      return r;
  }
}

/* Read more into the buffer: >0 bytes, 0 at end of stream, or a code. An
 * idle connection holds no buffer while it waits: an empty one is freed
 * before the wait and taken again once there is something to read. */
static ssize_t fill(conc_aio_stream_t *s) {
  if (s->closed)
    return CONC_ECLOSED;
  if (s->rerr)
    return s->rerr;
  for (;;) {
    if (s->eof)
      return 0;
    if (buffered(s) == 0 && s->drained) {
      rbuf_drop(s);
      int rc = wait_readable(s);
      if (rc)
        return rc > 0 ? 0 : rc;
    }
    size_t want = s->rcap > MIN_RBUF ? s->rcap / 2 : MIN_RBUF;
    int rc = room(s, want);
    if (rc)
      return rc;
    ssize_t r = recv_once(s, s->rbuf + s->rend, s->rcap - s->rend);
    if (r > 0)
      s->rend += (size_t)r;
    if (r != CONC_EAGAIN)
      return r;
  }
}

static int check_reader(const conc_aio_stream_t *s) {
  if (!s)
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  return 0;
}

static size_t take(conc_aio_stream_t *s, void *buf, size_t n) {
  size_t k = buffered(s) < n ? buffered(s) : n;
  memcpy(buf, s->rbuf + s->rstart, k);
  s->rstart += k;
  return k;
}

ssize_t conc_aio_stream_read(conc_aio_stream_t *s, void *buf, size_t n) {
  int rc = check_reader(s);
  if (rc)
    return rc;
  if (!buf && n)
    return CONC_EINVAL;
  if (n == 0)
    return 0;
  if (buffered(s))
    return (ssize_t)take(s, buf, n);
  if (s->closed)
    return CONC_ECLOSED;
  if (s->rerr || s->eof)
    return s->rerr;
  if (n >= DIRECT_READ) /* large reads skip the copy */
    return recv_some(s, buf, n);
  ssize_t r = fill(s);
  return r <= 0 ? r : (ssize_t)take(s, buf, n);
}

int conc_aio_stream_readexactly(conc_aio_stream_t *s, void *buf, size_t n,
                                size_t *got) {
  int rc = check_reader(s);
  if (rc == 0 && !buf && n)
    rc = CONC_EINVAL;
  size_t done = 0;
  while (rc == 0 && done < n) {
    if (buffered(s)) {
      done += take(s, (char *)buf + done, n - done);
      continue;
    }
    ssize_t r = fill(s);
    if (r == 0)
      rc = CONC_EINCOMPLETE;
    else if (r < 0)
      rc = (int)r;
  }
  if (got)
    *got = done;
  return rc;
}

static char *find(const conc_aio_stream_t *s, size_t from, const void *sep,
                  size_t seplen) {
  if (buffered(s) < from + seplen)
    return NULL;
  return memmem(s->rbuf + s->rstart + from, buffered(s) - from, sep, seplen);
}

int conc_aio_stream_readuntil(conc_aio_stream_t *s, const void *sep,
                              size_t seplen, void *buf, size_t cap,
                              size_t *got) {
  int rc = check_reader(s);
  if (rc)
    return rc;
  if (!sep || seplen == 0 || (!buf && cap))
    return CONC_EINVAL;
  size_t from = 0;
  for (;;) {
    char *at = find(s, from, sep, seplen);
    if (at) {
      size_t len = (size_t)(at - (s->rbuf + s->rstart)) + seplen;
      if (len - seplen > s->limit) /* asyncio: the separator is not counted */
        return CONC_ELIMIT;
      if (len > cap)
        return CONC_EMSGSIZE;
      take(s, buf, len);
      if (got)
        *got = len;
      return 0;
    }
    if (buffered(s) + 1 > s->limit + seplen)
      return CONC_ELIMIT;
    from = buffered(s) >= seplen ? buffered(s) - seplen + 1 : 0;
    ssize_t r = fill(s);
    if (r < 0)
      return (int)r;
    if (r == 0) { /* e.partial: what fits in buf leaves the buffer */
      size_t k = take(s, buf, cap);
      if (got)
        *got = k;
      return CONC_EINCOMPLETE;
    }
  }
}

ssize_t conc_aio_stream_readline(conc_aio_stream_t *s, void *buf, size_t cap) {
  size_t got = 0;
  int rc = conc_aio_stream_readuntil(s, "\n", 1, buf, cap, &got);
  if (rc == 0 || rc == CONC_EINCOMPLETE)
    return (ssize_t)got;
  if (rc == CONC_ELIMIT) { /* asyncio drops the over-long line */
    char *nl = find(s, 0, "\n", 1);
    s->rstart = nl ? (size_t)(nl - s->rbuf) + 1 : s->rend;
  }
  return rc;
}

/* ---- writing --------------------------------------------------------------- */

static size_t wbuffered(const conc_aio_stream_t *s) {
  return s->wend - s->wstart;
}

size_t conc_aio_stream_write_buffer_size(const conc_aio_stream_t *s) {
  return s ? wbuffered(s) : 0;
}

bool conc_aio_stream_is_closing(const conc_aio_stream_t *s) {
  return s && (s->closing || s->closed);
}

static void finish_close(conc_aio_stream_t *s) {
  if (s->closed)
    return;
  if (s->writer_armed)
    conc_loop_remove_writer(s->loop, s->fd);
  s->writer_armed = false;
  conc_aio_sock_forget(s->fd);
  close(s->fd);
  s->closed = true;
  if (s->closed_f)
    conc_aio_future_set_result(s->closed_f, NULL);
}

static void wake_drain(conc_aio_stream_t *s) {
  if (!s->drain_f)
    return;
  if (s->werr)
    conc_aio_future_set_error(s->drain_f, s->werr);
  else
    conc_aio_future_set_result(s->drain_f, NULL);
}

static void on_writable(void *arg);

static int arm_writer(conc_aio_stream_t *s) {
  if (s->writer_armed)
    return 0;
  int rc = conc_loop_add_writer(s->loop, s->fd, on_writable, s);
  if (rc == 0)
    s->writer_armed = true;
  return rc;
}

static void writer_done(conc_aio_stream_t *s) {
  if (s->writer_armed)
    conc_loop_remove_writer(s->loop, s->fd);
  s->writer_armed = false;
  if (s->eof_pending && !s->werr)
    shutdown(s->fd, SHUT_WR);
  s->eof_pending = false;
  if (s->closing)
    finish_close(s);
}

/* write() to a pipe whose reader is gone raises SIGPIPE, which would kill
 * the program (Python ignores SIGPIPE process-wide; a library may not):
 * block it around the write and take a SIGPIPE this write caused. */
static ssize_t pipe_write(int fd, const void *buf, size_t n) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t w = write(fd, buf, n);
  int e = errno;
  if (w < 0 && e == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return w;
}

static ssize_t out(conc_aio_stream_t *s, const void *buf, size_t n) {
  return s->sock ? send(s->fd, buf, n, MSG_NOSIGNAL)
                 : pipe_write(s->fd, buf, n);
}

/* Send what is buffered; false on an error (recorded in werr). */
static bool flush_some(conc_aio_stream_t *s) {
  while (wbuffered(s)) {
    ssize_t w = out(s, s->wbuf + s->wstart, wbuffered(s));
    if (w > 0) {
      s->wstart += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return true;
    s->werr = w < 0 ? -errno : CONC_EPIPE;
    s->wstart = s->wend = 0; /* what cannot be sent is dropped */
    return false;
  }
  s->wstart = s->wend = 0;
  return true;
}

static void on_writable(void *arg) {
  conc_aio_stream_t *s = arg;
  bool ok = flush_some(s);
  if (!ok || wbuffered(s) == 0)
    writer_done(s);
  if (!ok || wbuffered(s) <= s->low)
    wake_drain(s);
}

static int wspace(conc_aio_stream_t *s, size_t n) {
  if (s->wstart > 0 && s->wcap - s->wend < n) {
    memmove(s->wbuf, s->wbuf + s->wstart, wbuffered(s));
    s->wend -= s->wstart;
    s->wstart = 0;
  }
  if (s->wcap - s->wend >= n)
    return 0;
  size_t cap = s->wcap ? s->wcap : 4096;
  while (cap - s->wend < n)
    cap *= 2;
  char *b = realloc(s->wbuf, cap);
  if (!b)
    return CONC_ENOMEM;
  s->wbuf = b;
  s->wcap = cap;
  return 0;
}

static int check_writer(const conc_aio_stream_t *s) {
  if (!s)
    return CONC_EINVAL;
  if (s->closing || s->closed || s->eof_pending)
    return CONC_ECLOSED;
  return s->werr;
}

int conc_aio_stream_write(conc_aio_stream_t *s, const void *buf, size_t n) {
  int rc = check_writer(s);
  if (rc || n == 0)
    return rc;
  if (!buf)
    return CONC_EINVAL;
  size_t sent = 0;
  if (wbuffered(s) == 0) { /* try the socket first: usually it takes all */
    ssize_t w = out(s, buf, n);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return s->werr = -errno;
    sent = w > 0 ? (size_t)w : 0;
    if (sent == n)
      return 0;
  }
  rc = wspace(s, n - sent);
  if (rc)
    return rc;
  memcpy(s->wbuf + s->wend, (const char *)buf + sent, n - sent);
  s->wend += n - sent;
  return arm_writer(s);
}

int conc_aio_stream_writelines(conc_aio_stream_t *s, const struct iovec *iov,
                               int n) {
  if (!s || (!iov && n) || n < 0)
    return CONC_EINVAL;
  for (int i = 0; i < n; i++) {
    int rc = conc_aio_stream_write(s, iov[i].iov_base, iov[i].iov_len);
    if (rc)
      return rc;
  }
  return 0;
}

/* Await a future of the stream's (drain or closed), made on demand and
 * shared by every task that waits for the same thing: each waits through
 * a shield of its own, so a cancelled waiter leaves the others waiting. */
static int await_slot(conc_aio_stream_t *s, conc_aio_future_t **slot) {
  if (!*slot) {
    int rc = conc_aio_future_create(s->loop, slot);
    if (rc)
      return rc;
  }
  conc_aio_future_t *f = conc_aio_future_retain(*slot), *mine;
  int rc = conc_aio_shield(f, &mine);
  if (rc == 0) {
    rc = conc_aio_await(mine, NULL);
    conc_aio_future_release(mine);
  }
  if (conc_aio_future_done(f) && *slot == f) {
    *slot = NULL; /* a later drain needs a fresh future */
    conc_aio_future_release(f);
  }
  conc_aio_future_release(f);
  return rc;
}

int conc_aio_stream_drain(conc_aio_stream_t *s) {
  if (!s)
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  if (s->werr)
    return s->werr;
  if (wbuffered(s) <= s->high)
    return 0;
  int rc = await_slot(s, &s->drain_f);
  return rc ? rc : s->werr;
}

int conc_aio_stream_write_eof(conc_aio_stream_t *s) {
  int rc = check_writer(s);
  if (rc)
    return rc;
  if (!s->sock) /* a pipe has one direction: its end is its close */
    return conc_aio_stream_close(s);
  if (wbuffered(s) == 0)
    return shutdown(s->fd, SHUT_WR) == 0 ? 0 : -errno;
  s->eof_pending = true;
  return 0;
}

int conc_aio_stream_close(conc_aio_stream_t *s) {
  if (!s)
    return CONC_EINVAL;
  if (s->closing || s->closed)
    return 0;
  s->closing = true;
  if (wbuffered(s) == 0 || s->werr)
    finish_close(s);
  return 0;
}

int conc_aio_stream_wait_closed(conc_aio_stream_t *s) {
  if (!s)
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  if (!s->closing && !s->closed)
    return CONC_ESTATE; /* nothing will close it */
  if (!s->closed) {
    int rc = await_slot(s, &s->closed_f);
    if (rc)
      return rc;
  }
  return s->werr == CONC_EPIPE || s->werr == CONC_ECONNRESET ? 0 : s->werr;
}

int conc_aio_stream_peername(const conc_aio_stream_t *s, struct sockaddr *addr,
                             socklen_t *len) {
  if (!s || !addr || !len)
    return CONC_EINVAL;
  if (s->closed)
    return CONC_ECLOSED;
  return getpeername(s->fd, addr, len) == 0 ? 0 : -errno;
}

int conc_aio_stream_sockname(const conc_aio_stream_t *s, struct sockaddr *addr,
                             socklen_t *len) {
  if (!s || !addr || !len)
    return CONC_EINVAL;
  if (s->closed)
    return CONC_ECLOSED;
  return getsockname(s->fd, addr, len) == 0 ? 0 : -errno;
}

void conc_aio_stream_release(conc_aio_stream_t *s) {
  if (!s)
    return;
  s->wstart = s->wend = 0; /* unsent data is dropped */
  finish_close(s);
  if (s->drain_f) {
    conc_aio_cancel(s->drain_f, NULL);
    conc_aio_future_release(s->drain_f);
  }
  if (s->closed_f)
    conc_aio_future_release(s->closed_f);
  rbuf_drop(s);
  free(s->wbuf);
  free(s);
}
