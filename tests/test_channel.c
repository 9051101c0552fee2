/*
 * Pipe / Connection / wait (spec C1-C10) and F5 for pipes: a writer or a
 * reader killed in the middle of a message never corrupts the stream.
 * Every test arms a watchdog and reaps its children.
 */
#include "proc_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conc/channel.h"
#include "conc/error.h"
#include "conc/process.h"
#include "channel-int.h"

static int setup(void **state) {
  (void)state;
  alarm(30);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  alarm(0);
  return 0;
}

static conc_conn_t a, b;

/* A message whose bytes tell its own sequence number and length. */
static unsigned char *make_msg(uint64_t seq, size_t len) {
  unsigned char *m = malloc(len < 8 ? 8 : len);
  memcpy(m, &seq, 8);
  for (size_t k = 8; k < len; k++)
    m[k] = (unsigned char)(seq + k);
  return m;
}

static bool msg_ok(const unsigned char *m, size_t len, uint64_t *seq) {
  if (len < 8)
    return false;
  memcpy(seq, m, 8);
  for (size_t k = 8; k < len; k++)
    if (m[k] != (unsigned char)(*seq + k))
      return false;
  return true;
}

/* C1 */
static void duplex_messages_and_recv_into(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  assert_true(conc_conn_readable(&a) && conc_conn_writable(&a));
  assert_int_equal(conc_conn_send_bytes(&a, "hello", 5), 0);
  assert_int_equal(conc_conn_send_bytes(&b, "back", 4), 0);
  void *m;
  size_t n;
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), 0);
  assert_int_equal(n, 5);
  assert_memory_equal(m, "hello", 5);
  free(m);
  assert_int_equal(conc_conn_recv_bytes(&a, &m, &n), 0);
  assert_memory_equal(m, "back", 4);
  free(m);
  char buf[10] = "..........";
  assert_int_equal(conc_conn_send_bytes(&a, "abcdef", 6), 0);
  assert_int_equal(conc_conn_recv_bytes_into(&b, buf, sizeof buf, 2, &n), 0);
  assert_int_equal(n, 6);
  assert_memory_equal(buf, "..abcdef..", 10);
  assert_int_equal(conc_conn_send_bytes(&a, "0123456789ab", 12), 0);
  assert_int_equal(conc_conn_recv_bytes_into(&b, buf, 8, 0, &n),
                   CONC_ETOOSHORT);
  assert_int_equal(n, 12); /* the size needed; the message is kept */
  assert_int_equal(conc_conn_poll(&b, 0), 1);
  assert_int_equal(conc_conn_recv_bytes_into(&b, buf, sizeof buf, 11, &n),
                   CONC_EINVAL);
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), 0);
  assert_int_equal(n, 12);
  assert_memory_equal(m, "0123456789ab", 12);
  free(m);
  conc_conn_close(&a);
  conc_conn_close(&b);
}

/* C2 */
static int send_later(void *arg, void **result) {
  conc_sleep(*(double *)arg);
  conc_conn_send_bytes(&a, "late", 4);
  return 0;
}

static void poll_timeouts_and_arrival(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_conn_poll(&b, 0), 0);
  assert_int_equal(conc_conn_poll(&b, -0.5), 0);
  assert_quick(conc_monotonic() - t0);
  t0 = conc_monotonic();
  assert_int_equal(conc_conn_poll(&b, 0.2), 0);
  assert_elapsed(conc_monotonic() - t0, 0.2);
  double delay = 0.1;
  conc_process_t p;
  start(&p, send_later, &delay);
  t0 = conc_monotonic();
  assert_int_equal(conc_conn_poll(&b, CONC_FOREVER), 1);
  assert_elapsed(conc_monotonic() - t0, 0.1 - 0.02);
  assert_int_equal(conc_conn_poll(&b, 0), 1); /* poll does not consume */
  assert_int_equal(finish(&p), 0);
  conc_conn_close(&a);
  conc_conn_close(&b);
}

/* C3 */
#define BIG (16u << 20)

static int echo_once(void *arg, void **result) {
  (void)arg;
  conc_conn_close(&b);
  void *m;
  size_t n;
  if (conc_conn_recv_bytes(&a, &m, &n) != 0)
    conc_process_exit(2);
  if (conc_conn_send_bytes(&a, m, n) != 0)
    conc_process_exit(3);
  free(m);
  return 0;
}

static void sixteen_mib_round_trip_then_eof(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  conc_process_t p;
  start(&p, echo_once, NULL);
  conc_conn_close(&a);
  unsigned char *big = make_msg(77, BIG);
  assert_int_equal(conc_conn_send_bytes(&b, big, BIG), 0);
  void *m;
  size_t n;
  uint64_t seq;
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), 0);
  assert_int_equal(n, BIG);
  assert_true(msg_ok(m, n, &seq));
  assert_int_equal(seq, 77);
  free(m);
  free(big);
  assert_int_equal(finish(&p), 0);
  assert_int_equal(conc_conn_poll(&b, 1), 1); /* EOF is readable */
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), CONC_EEOF);
  assert_int_equal(conc_conn_send_bytes(&b, "x", 1), CONC_EPIPE);
  conc_conn_close(&b);
}

/* C4 */
static void one_way_pipe_rejects_wrong_direction(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, false), 0);
  assert_true(conc_conn_readable(&a));
  assert_false(conc_conn_writable(&a));
  assert_false(conc_conn_readable(&b));
  assert_true(conc_conn_writable(&b));
  void *m;
  size_t n;
  assert_int_equal(conc_conn_send_bytes(&a, "x", 1), CONC_EBADF);
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), CONC_EBADF);
  assert_int_equal(conc_conn_poll(&b, 0), CONC_EBADF);
  assert_int_equal(conc_conn_send_bytes(&b, "ok", 2), 0);
  assert_int_equal(conc_conn_recv_bytes(&a, &m, &n), 0);
  assert_memory_equal(m, "ok", 2);
  free(m);
  conc_conn_close(&a);
  conc_conn_close(&b);
}

/* C5 */
static void send_bytes_slices_and_range_checks(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  const char *s = "abcdefghij";
  assert_int_equal(conc_conn_send_bytes_ex(&a, s, 10, 2, 3), 0);
  assert_int_equal(conc_conn_send_bytes_ex(&a, s, 10, 7, CONC_CONN_REST), 0);
  assert_int_equal(conc_conn_send_bytes_ex(&a, s, 10, 11, 0), CONC_EINVAL);
  assert_int_equal(conc_conn_send_bytes_ex(&a, s, 10, 5, 6), CONC_EINVAL);
  assert_int_equal(conc_conn_send_bytes_ex(&a, s, 10, 0, (size_t)-2),
                   CONC_EINVAL);
  void *m;
  size_t n;
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(m, "cde", 3);
  free(m);
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(m, "hij", 3);
  free(m);
  assert_int_equal(conc_conn_poll(&b, 0), 0); /* the bad sends sent nothing */
  conc_conn_close(&a);
  conc_conn_close(&b);
}

/* C6 */
static void empty_message_is_a_message(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  assert_int_equal(conc_conn_send_bytes(&a, "", 0), 0);
  assert_int_equal(conc_conn_poll(&b, 0), 1);
  void *m;
  size_t n = 99;
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), 0);
  assert_non_null(m);
  assert_int_equal(n, 0);
  free(m);
  char buf[1];
  assert_int_equal(conc_conn_send_bytes(&a, NULL, 0), 0);
  assert_int_equal(conc_conn_recv_bytes_into(&b, buf, 0, 0, &n), 0);
  assert_int_equal(n, 0);
  conc_conn_close(&a);
  conc_conn_close(&b);
}

/* C8 */
static int write_through_passed_fd(void *arg, void **result) {
  (void)arg;
  int fd;
  if (conc_conn_recv_fd(&b, &fd) != 0)
    conc_process_exit(2);
  if (write(fd, "via fd", 6) != 6)
    conc_process_exit(3);
  return 0;
}

static void descriptors_pass_including_high_numbers(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  int pp[2];
  assert_int_equal(pipe(pp), 0);
  assert_int_equal(dup2(pp[1], 300), 300); /* fd >= 256 */
  close(pp[1]);
  conc_process_t p;
  start(&p, write_through_passed_fd, NULL);
  assert_int_equal(conc_conn_send_fd(&a, 300), 0);
  close(300);
  assert_int_equal(finish(&p), 0);
  char buf[8] = {0};
  assert_int_equal(read(pp[0], buf, sizeof buf), 6);
  assert_string_equal(buf, "via fd");
  close(pp[0]);
  int fd;
  assert_int_equal(conc_conn_send_bytes(&a, "no fd", 5), 0);
  assert_int_equal(conc_conn_recv_fd(&b, &fd), CONC_EBADF);
  assert_int_equal(conc_conn_send_fd(&a, -1), CONC_EBADF);
  assert_int_equal(conc_conn_poll(&b, 0), 0);
  conc_conn_close(&a);
  conc_conn_close(&b);
}

/* F5 C8: a sender killed after its descriptor went on the socket but
 * before the pipe record naming it leaves no descriptor that a later
 * message could deliver. */
static int send_fd_and_die(void *arg, void **result) {
  conc__conn_crash_point = 1;
  conc_conn_send_fd(&a, *(int *)arg);
  conc_process_exit(5); /* not reached: killed inside */
  return 0;
}

static ino_t inode_of(int fd) {
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  return st.st_ino;
}

static void killed_fd_sender_leaves_no_stray_descriptor(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  int p1[2], p2[2];
  assert_int_equal(pipe(p1), 0);
  assert_int_equal(pipe(p2), 0);
  conc_process_t w;
  start(&w, send_fd_and_die, &p1[1]);
  assert_int_equal(finish(&w), -SIGKILL);
  /* the dead sender held a's write lock: this send cancels its message */
  assert_int_equal(conc_conn_send_fd(&a, p2[1]), 0);
  int got = -1;
  assert_int_equal(conc_conn_recv_fd(&b, &got), 0);
  assert_true(inode_of(got) == inode_of(p2[1]));
  assert_true(inode_of(got) != inode_of(p1[1]));
  assert_int_equal(conc_conn_poll(&b, 0), 0);
  close(got);
  for (int i = 0; i < 2; i++) {
    close(p1[i]);
    close(p2[i]);
  }
  conc_conn_close(&a);
  conc_conn_close(&b);
}

/* C9 */
static int exit_after(void *arg, void **result) {
  conc_sleep(*(double *)arg);
  return 0;
}

static void wait_over_connections_sentinels_and_fds(void **state) {
  (void)state;
  conc_conn_t c, d;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  assert_int_equal(conc_pipe(&c, &d, false), 0);
  int pp[2];
  assert_int_equal(pipe(pp), 0);
  double t = 0.3;
  conc_process_t p;
  start(&p, exit_after, &t);
  conc_waitable_t w[4] = {{.conn = &b},
                          {.conn = &c},
                          {.fd = conc_process_sentinel(&p)},
                          {.fd = pp[0]}};
  double t0 = conc_monotonic();
  assert_int_equal(conc_wait(w, 4, -1.5), 0);
  assert_quick(conc_monotonic() - t0);
  t0 = conc_monotonic();
  assert_int_equal(conc_wait(w, 4, 0.1), 0);
  assert_elapsed(conc_monotonic() - t0, 0.1);
  assert_int_equal(conc_conn_send_bytes(&d, "x", 1), 0);
  assert_int_equal(write(pp[1], "y", 1), 1);
  assert_int_equal(conc_wait(w, 4, CONC_FOREVER), 2);
  assert_false(w[0].ready);
  assert_true(w[1].ready);
  assert_false(w[2].ready);
  assert_true(w[3].ready);
  conc_waitable_t s = {.fd = conc_process_sentinel(&p)};
  assert_int_equal(conc_wait(&s, 1, CONC_FOREVER), 1); /* the child ended */
  assert_true(s.ready);
  assert_int_equal(finish(&p), 0);
  conc_conn_close(&d);
  assert_int_equal(conc_wait(&w[1], 1, 0), 1);
  conc_conn_close(&c);
  assert_int_equal(conc_wait(&w[1], 1, 0), CONC_ECLOSED);
  close(pp[0]);
  close(pp[1]);
  conc_conn_close(&a);
  conc_conn_close(&b);
}

/* C10 */
static void closed_connection_operations_fail(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  assert_int_equal(conc_conn_close(&a), 0);
  assert_int_equal(conc_conn_close(&a), 0);
  assert_true(conc_conn_closed(&a));
  void *m;
  size_t n;
  int fd;
  assert_int_equal(conc_conn_send_bytes(&a, "x", 1), CONC_ECLOSED);
  assert_int_equal(conc_conn_recv_bytes(&a, &m, &n), CONC_ECLOSED);
  assert_int_equal(conc_conn_poll(&a, 0), CONC_ECLOSED);
  assert_int_equal(conc_conn_fileno(&a), CONC_ECLOSED);
  assert_int_equal(conc_conn_recv_fd(&a, &fd), CONC_ECLOSED);
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), CONC_EEOF);
  conc_conn_close(&b);
  assert_int_equal(conc_pipe(&a, &a, true), CONC_EINVAL);
  assert_int_equal(conc_conn_send_bytes(NULL, "x", 1), CONC_EINVAL);
}

/* F5: a writer killed in the middle of a long message */
static int send_forever_big(void *arg, void **result) {
  (void)arg;
  unsigned char *m = make_msg(1, 4u << 20);
  conc_conn_send_bytes(&a, m, 4u << 20); /* blocks: nobody reads yet */
  return 0;
}

static int send_small(void *arg, void **result) {
  unsigned char *m = make_msg(2, 100);
  int rc = conc_conn_send_bytes(&a, m, 100);
  free(m);
  conc_process_exit(rc == 0 ? 0 : 9);
  return 0;
}

static void killed_writer(bool duplex) {
  /* the writer end is `a`: on a one-way pipe, swap the roles */
  if (duplex) {
    assert_int_equal(conc_pipe(&a, &b, true), 0);
  } else {
    assert_int_equal(conc_pipe(&b, &a, false), 0);
  }
  conc_process_t w, s;
  start(&w, send_forever_big, NULL);
  conc_sleep(0.2); /* w holds the write lock, blocked mid-message */
  assert_int_equal(conc_process_kill(&w), 0);
  assert_int_equal(finish(&w), -SIGKILL);
  start(&s, send_small, NULL);
  void *m;
  size_t n;
  uint64_t seq;
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), 0);
  assert_int_equal(n, 100);
  assert_true(msg_ok(m, n, &seq));
  assert_int_equal(seq, 2);
  free(m);
  assert_int_equal(finish(&s), 0);
  assert_int_equal(conc_conn_poll(&b, 0), 0);
  assert_int_equal(conc_conn_send_bytes(&a, "still fine", 10), 0);
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), 0);
  assert_int_equal(n, 10);
  free(m);
  conc_conn_close(&a);
  conc_conn_close(&b);
}

static void killed_writer_leaves_no_torn_message(void **state) {
  (void)state;
  killed_writer(true);
}

static void killed_writer_on_one_way_pipe(void **state) {
  (void)state;
  killed_writer(false);
}

/* C3 C6 on a one-way (packet pipe) Pipe; a closed reader is CONC_EPIPE, not
 * a SIGPIPE death. */
static int send_big_one_way(void *arg, void **result) {
  (void)arg;
  conc_conn_close(&a);
  unsigned char *m = make_msg(5, BIG);
  if (conc_conn_send_bytes(&b, m, BIG) || conc_conn_send_bytes(&b, "", 0))
    conc_process_exit(2);
  free(m);
  return 0;
}

static void one_way_pipe_big_messages_and_epipe(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, false), 0);
  conc_process_t p;
  start(&p, send_big_one_way, NULL);
  conc_conn_close(&b);
  void *m;
  size_t n;
  uint64_t seq;
  assert_int_equal(conc_conn_recv_bytes(&a, &m, &n), 0);
  assert_int_equal(n, BIG);
  assert_true(msg_ok(m, n, &seq));
  assert_int_equal(seq, 5);
  free(m);
  assert_int_equal(conc_conn_recv_bytes(&a, &m, &n), 0);
  assert_int_equal(n, 0);
  free(m);
  assert_int_equal(finish(&p), 0);
  assert_int_equal(conc_conn_recv_bytes(&a, &m, &n), CONC_EEOF);
  conc_conn_close(&a);
  assert_int_equal(conc_pipe(&a, &b, false), 0);
  assert_int_equal(conc_conn_send_fd(&b, 0), CONC_EBADF);
  conc_conn_close(&a);
  assert_int_equal(conc_conn_send_bytes(&b, "x", 1), CONC_EPIPE);
  conc_conn_close(&b);
}

/* F5: readers killed at random points of a stream of 1 MiB messages */
#define MID (1u << 20)

static int write_stream(void *arg, void **result) {
  (void)arg;
  for (uint64_t seq = 0;; seq++) {
    unsigned char *m = make_msg(seq, MID);
    int rc = conc_conn_send_bytes(&a, m, MID);
    free(m);
    if (rc)
      conc_process_exit(0);
  }
  return 0;
}

static int read_stream(void *arg, void **result) {
  (void)arg;
  for (;;) {
    void *m;
    size_t n;
    if (conc_conn_recv_bytes(&b, &m, &n) != 0)
      conc_process_exit(1);
    free(m);
  }
  return 0;
}

static void killed_readers_leave_whole_messages(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  conc_process_t w;
  start(&w, write_stream, NULL);
  for (int round = 0; round < 6; round++) {
    conc_process_t r;
    start(&r, read_stream, NULL);
    conc_sleep(0.01 + 0.007 * round);
    conc_process_kill(&r);
    finish(&r);
    void *m;
    size_t n;
    uint64_t seq;
    assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), 0);
    assert_int_equal(n, MID);
    assert_true(msg_ok(m, n, &seq));
    free(m);
  }
  conc_conn_close(&b);
  conc_process_kill(&w);
  finish(&w);
  conc_conn_close(&a);
}

/* A reader spins on a count of arrived records before it sleeps; the
 * count is a hint. A writer killed between its record and the count must
 * not cost the message, nor leave a reader spinning or sleeping on data
 * that is there. */
static int send_uncounted_and_die(void *arg, void **result) {
  (void)arg;
  conc__conn_crash_point = 2;
  conc_conn_send_bytes(&a, "uncounted", 9);
  conc_process_exit(5); /* not reached: killed inside */
  return 0;
}

static int echo_until_eof(void *arg, void **result) {
  (void)arg;
  conc_conn_close(&a);
  char buf[64];
  size_t n;
  while (conc_conn_recv_bytes_into(&b, buf, sizeof buf, 0, &n) == 0)
    if (conc_conn_send_bytes(&b, buf, n))
      conc_process_exit(1);
  conc_process_exit(0);
  return 0;
}

static void round_trips(int count) {
  for (int k = 0; k < count; k++) {
    char out[16], in[64];
    size_t n;
    int len = snprintf(out, sizeof out, "ping %d", k);
    assert_int_equal(conc_conn_send_bytes(&a, out, (size_t)len), 0);
    assert_int_equal(conc_conn_recv_bytes_into(&a, in, sizeof in, 0, &n), 0);
    assert_int_equal(n, (size_t)len);
    assert_memory_equal(in, out, n);
  }
}

static void writer_killed_before_counting_loses_nothing(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  conc_process_t w;
  start(&w, send_uncounted_and_die, NULL);
  assert_int_equal(finish(&w), -SIGKILL);
  char in[64];
  size_t n;
  assert_int_equal(conc_conn_poll(&b, 5.0), 1);
  assert_int_equal(conc_conn_recv_bytes_into(&b, in, sizeof in, 0, &n), 0);
  assert_int_equal(n, 9);
  assert_memory_equal(in, "uncounted", 9);
  assert_int_equal(conc_conn_poll(&b, 0), 0);
  /* the next writer finds the dead one's lock and the pipe still works,
   * now without the hint, in both directions */
  conc_process_t e;
  start(&e, echo_until_eof, NULL);
  round_trips(2000);
  conc_conn_close(&a);
  assert_int_equal(finish(&e), 0);
  conc_conn_close(&b);
}

/* Thousands of round trips against a peer that spins before it sleeps:
 * every reply is the right one, in order. */
static void spinning_round_trips_stay_in_order(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  conc_process_t e;
  start(&e, echo_until_eof, NULL);
  round_trips(20000);
  conc_conn_close(&a);
  assert_int_equal(finish(&e), 0);
  conc_conn_close(&b);
}

/* recv_bytes(maxlength): a longer message is not read and the handle stops
 * receiving (Python's "bad message length"); the rest of that message is
 * dropped by the next reader, who gets the following message whole. */
static int go[2]; /* the reader starts on a byte here */

static int recv_next_message(void *arg, void **result) {
  (void)arg;
  char c;
  if (read(go[0], &c, 1) != 1)
    conc_process_exit(4);
  void *m;
  size_t n;
  if (conc_conn_recv_bytes(&b, &m, &n) != 0)
    conc_process_exit(2);
  int ok = n == 5 && memcmp(m, "after", 5) == 0;
  free(m);
  conc_process_exit(ok ? 0 : 3);
  return 0;
}

#define HUGE_MSG                                                               \
  (1u                                                                          \
   << 20) /* many records: the writer blocks until they go                  \
              */

static int send_big_then_after(void *arg, void **result) {
  (void)arg;
  unsigned char *msg = make_msg(7, HUGE_MSG);
  int rc = conc_conn_send_bytes(&a, msg, HUGE_MSG);
  free(msg);
  conc_process_exit(rc || conc_conn_send_bytes(&a, "after", 5) ? 2 : 0);
  return 0;
}

static void recv_bytes_maxlength_rejects_longer_messages(void **state) {
  (void)state;
  assert_int_equal(conc_pipe(&a, &b, true), 0);
  void *m;
  size_t n;
  assert_int_equal(conc_conn_send_bytes(&a, "0123456789", 10), 0);
  assert_int_equal(conc_conn_recv_bytes_max(&b, 10, &m, &n), 0);
  assert_int_equal(n, 10);
  free(m);
  conc_process_t writer, reader;
  assert_int_equal(pipe(go), 0);
  start(&reader, recv_next_message, NULL); /* a handle still readable */
  start(&writer, send_big_then_after, NULL);
  n = 0;
  assert_int_equal(conc_conn_recv_bytes_max(&b, 1000, &m, &n), CONC_EMSGSIZE);
  assert_int_equal(n, HUGE_MSG);
  assert_int_equal(write(go[1], "g", 1), 1);
  assert_int_equal(finish(&reader), 0);
  close(go[0]);
  close(go[1]);
  assert_int_equal(finish(&writer), 0);
  assert_false(conc_conn_readable(&b));
  assert_int_equal(conc_conn_recv_bytes(&b, &m, &n), CONC_EBADF);
  assert_int_equal(conc_conn_send_bytes(&b, "still", 5), 0); /* writes work */
  assert_int_equal(conc_conn_recv_bytes(&a, &m, &n), 0);
  assert_int_equal(n, 5);
  free(m);
  conc_conn_close(&a);
  conc_conn_close(&b);
  /* a read-only end is closed */
  assert_int_equal(conc_pipe(&a, &b, false), 0);
  assert_int_equal(conc_conn_send_bytes(&b, "0123456789", 10), 0);
  assert_int_equal(conc_conn_recv_bytes_max(&a, 9, &m, &n), CONC_EMSGSIZE);
  assert_int_equal(n, 10);
  assert_true(conc_conn_closed(&a));
  assert_int_equal(conc_conn_recv_bytes(&a, &m, &n), CONC_ECLOSED);
  conc_conn_close(&b);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
CONC_TEST_MAIN(T(duplex_messages_and_recv_into), T(poll_timeouts_and_arrival),
               T(sixteen_mib_round_trip_then_eof),
               T(one_way_pipe_rejects_wrong_direction),
               T(send_bytes_slices_and_range_checks),
               T(empty_message_is_a_message),
               T(descriptors_pass_including_high_numbers),
               T(killed_fd_sender_leaves_no_stray_descriptor),
               T(wait_over_connections_sentinels_and_fds),
               T(closed_connection_operations_fail),
               T(killed_writer_leaves_no_torn_message),
               T(killed_writer_on_one_way_pipe),
               T(one_way_pipe_big_messages_and_epipe),
               T(killed_readers_leave_whole_messages),
               T(writer_killed_before_counting_loses_nothing),
               T(spinning_round_trips_stay_in_order),
               T(recv_bytes_maxlength_rejects_longer_messages))
