/*
 * libFuzzer target: the record framing of Pipe / Connection (src/channel.c)
 * fed torn and hostile records by a peer that writes raw packets on the
 * pipe (and, on a duplex pipe, raw messages with or without a descriptor on
 * its descriptor socket). After the hostile records the peer sends one
 * well-formed message and closes its end. The oracle:
 *   - receiving never crashes, never reads or writes out of bounds (ASan)
 *     and never blocks (the peer's end is closed: EOF comes);
 *   - unless a hostile first record announced more than maxlength (the
 *     read-only end is then closed, Python's rule), the last message
 *     received is the well-formed one, byte for byte;
 *   - no descriptor leaks: the process has as many open as before.
 *
 * Input: byte 0 picks duplex and maxlength; then records, each a kind
 * byte, a length byte and the bytes they use (see next_packet).
 *
 * Locking: single-threaded; the pipe's own locks are taken by the receive.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/channel.h"
#include "conc/error.h"

/* A packet-mode pipe holds 16 packets before a write blocks. */
enum { MAX_HOSTILE = 13 };

struct rec { /* the wire header of src/channel.c */
  uint32_t flags;
  uint32_t len;
  uint64_t total;
  uint64_t seq;
};

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  while (d && readdir(d))
    n++;
  if (d)
    closedir(d);
  return n;
}

struct in {
  const uint8_t *p;
  size_t n;
};

static uint8_t take8(struct in *in) {
  if (!in->n)
    return 0;
  in->n--;
  return *in->p++;
}

static uint64_t take64(struct in *in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | take8(in);
  return v;
}

/* Builds one hostile packet into buf; returns its size, or 0 for "send a
 * raw message on the descriptor socket instead" (kind 3). */
static size_t next_packet(struct in *in, unsigned char *buf, size_t cap,
                          int *kind) {
  *kind = take8(in) % 4;
  size_t plen = take8(in) * 8u;
  if (*kind == 2) { /* raw bytes: torn or garbage records */
    size_t n = plen < in->n ? plen : in->n;
    if (n > cap)
      n = cap;
    memcpy(buf, in->p, n);
    in->p += n, in->n -= n;
    return n ? n : 1;
  }
  struct rec h = {.flags = take8(in) & 15u};
  uint8_t mode = take8(in);
  h.total = mode & 1 ? take64(in) : (take8(in) * 8u);
  h.seq = mode & 2 ? take64(in) : take8(in);
  if (plen > cap - sizeof h)
    plen = cap - sizeof h;
  h.len = mode & 4 ? (uint32_t)take64(in) : (uint32_t)plen; /* lie? */
  memcpy(buf, &h, sizeof h);
  memset(buf + sizeof h, take8(in), plen);
  return *kind == 3 ? 0 : sizeof h + plen;
}

static void send_on_socket(int sock, struct in *in, int devnull) {
  uint64_t seq = take8(in);
  struct iovec iov = {&seq, take8(in) % 2 ? sizeof seq : 3};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } cm;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (take8(in) % 2) {
    memset(&cm, 0, sizeof cm);
    m.msg_control = cm.buf;
    m.msg_controllen = sizeof cm.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &devnull, sizeof devnull);
  }
  (void)sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static const char trailer[] = "the well-formed message after the hostile ones";

static void receive_all(conc_conn_t *a, size_t maxlength) {
  void *last = NULL;
  size_t last_len = 0;
  bool too_long = false;
  for (;;) {
    void *m;
    size_t len;
    int rc = conc_conn_recv_bytes_max(a, maxlength, &m, &len);
    if (rc == 0) {
      free(last);
      last = m, last_len = len;
      continue;
    }
    too_long = rc == CONC_EMSGSIZE;
    if (rc != CONC_EEOF && rc != CONC_EMSGSIZE)
      abort(); /* no other outcome is allowed */
    break;
  }
  if (!too_long && (last_len != sizeof trailer ||
                    memcmp(last, trailer, sizeof trailer) != 0))
    abort(); /* the well-formed message was lost or changed */
  free(last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int devnull = -1;
  if (devnull < 0)
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  struct in in = {data, size};
  uint8_t opt = take8(&in);
  bool duplex = opt & 1;
  size_t maxlength = (size_t)64 << (opt >> 1 & 15); /* 64 B .. 2 MiB */
  int before = open_fds();
  conc_conn_t a, b;
  if (conc_pipe(&a, &b, duplex))
    return 0;
  int wfd = b.priv.wfd;
  fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK);
  static unsigned char buf[4096];
  for (int i = 0; i < MAX_HOSTILE && in.n; i++) {
    int kind;
    size_t n = next_packet(&in, buf, sizeof buf, &kind);
    if (n == 0) {
      if (b.priv.sockfd >= 0)
        send_on_socket(b.priv.sockfd, &in, devnull);
      continue;
    }
    if (write(wfd, buf, n) < 0)
      break;
  }
  fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) & ~O_NONBLOCK);
  if (conc_conn_send_bytes(&b, trailer, sizeof trailer))
    abort();
  conc_conn_close(&b);
  receive_all(&a, maxlength);
  conc_conn_close(&a);
  if (open_fds() != before)
    abort(); /* a passed descriptor leaked */
  return 0;
}
