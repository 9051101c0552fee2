/*
 * Processes: start+join of a no-op process, join wake-up latency, a shared
 * Value incremented under its lock by two processes, a process Queue of
 * small items, and a Pipe round trip; libconc against raw fork/waitpid,
 * raw pipes and CPython's multiprocessing (fork context), in one run.
 *
 * Locking: single-threaded parent; children are forked per variant.
 */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "conc/channel.h"
#include "conc/pqueue.h"
#include "conc/process.h"
#include "conc/shared.h"

static int noop(void *arg, void **result) {
  *result = arg;
  return 0;
}

/* ---- start + join ------------------------------------------------------ */

static double run_conc_spawn(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    conc_process_t p;
    if (conc_process_init(&p, noop, NULL, NULL) || conc_process_start(&p) ||
        conc_process_join(&p, CONC_FOREVER))
      return -1;
    conc_process_destroy(&p);
  }
  return bench_now() - t0;
}

static double run_raw_spawn(void *arg, long n) {
  (void)arg;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0)
      _exit(0);
    if (pid < 0 || waitpid(pid, NULL, 0) != pid)
      return -1;
  }
  return bench_now() - t0;
}

static const char *py_spawn =
    "import sys, time, multiprocessing as mp\n"
    "def f(): pass\n"
    "ctx = mp.get_context('fork')\n"
    "n = int(sys.argv[1])\n"
    "t0 = time.perf_counter()\n"
    "for _ in range(n):\n"
    "    p = ctx.Process(target=f); p.start(); p.join()\n"
    "print(time.perf_counter() - t0)\n";

/* ---- join wake-up latency --------------------------------------------- */

static int64_t *death_ns;

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int die_now(void *arg, void **result) {
  (void)arg;
  *death_ns = mono_ns();
  _exit(0);
}

/* Sums, over n children, the time from the child's last instruction to the
 * parent's return from join. */
static double run_conc_wake(void *arg, long n) {
  (void)arg;
  double total = 0;
  for (long i = 0; i < n; i++) {
    conc_process_t p;
    if (conc_process_init(&p, die_now, NULL, NULL) || conc_process_start(&p) ||
        conc_process_join(&p, CONC_FOREVER))
      return -1;
    total += (double)(mono_ns() - *death_ns) * 1e-9;
    conc_process_destroy(&p);
  }
  return total;
}

static double run_raw_wake(void *arg, long n) {
  (void)arg;
  double total = 0;
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0)
      die_now(NULL, NULL);
    if (pid < 0 || waitpid(pid, NULL, 0) != pid)
      return -1;
    total += (double)(mono_ns() - *death_ns) * 1e-9;
  }
  return total;
}

/* ---- Value increments under the lock ---------------------------------- */

static conc_value_t counter;
static long per_child;

static int increment(void *arg, void **result) {
  (void)arg;
  for (long k = 0; k < per_child; k++) {
    conc_value_acquire(&counter);
    ++*(long *)conc_value_ptr(&counter);
    conc_value_release(&counter);
  }
  return 0;
}

static double run_conc_value(void *arg, long n) {
  (void)arg;
  if (conc_value_init(&counter, 'l', NULL, NULL))
    return -1;
  per_child = n / 2;
  conc_process_t p[2];
  double t0 = bench_now();
  for (int i = 0; i < 2; i++)
    if (conc_process_init(&p[i], increment, NULL, NULL) ||
        conc_process_start(&p[i]))
      return -1;
  for (int i = 0; i < 2; i++) {
    conc_process_join(&p[i], CONC_FOREVER);
    conc_process_destroy(&p[i]);
  }
  double t = bench_now() - t0;
  long got = *(long *)conc_value_ptr(&counter);
  conc_value_destroy(&counter);
  return got == 2 * (n / 2) ? t : -1;
}

static const char *py_value =
    "import sys, time, multiprocessing as mp\n"
    "def f(v, n):\n"
    "    for _ in range(n):\n"
    "        with v.get_lock(): v.value += 1\n"
    "ctx = mp.get_context('fork')\n"
    "n = int(sys.argv[1]); v = ctx.Value('l', 0)\n"
    "ps = [ctx.Process(target=f, args=(v, n // 2)) for _ in range(2)]\n"
    "t0 = time.perf_counter()\n"
    "for p in ps: p.start()\n"
    "for p in ps: p.join()\n"
    "assert v.value == 2 * (n // 2)\n"
    "print(time.perf_counter() - t0)\n";

/* ---- process Queue ----------------------------------------------------- */

static conc_pqueue_t pq;
static long q_items;

static int produce(void *arg, void **result) {
  (void)arg;
  for (long k = 0; k < q_items; k++)
    conc_pqueue_put(&pq, &k, sizeof k, true, CONC_FOREVER);
  return 0;
}

static double run_conc_queue(void *arg, long n) {
  (void)arg;
  if (conc_pqueue_init(&pq, 0, NULL))
    return -1;
  q_items = n;
  conc_process_t p;
  double t0 = bench_now();
  if (conc_process_init(&p, produce, NULL, NULL) || conc_process_start(&p))
    return -1;
  long sum = 0;
  for (long k = 0; k < n; k++) {
    long v;
    size_t len;
    if (conc_pqueue_get_into(&pq, &v, sizeof v, &len, true, CONC_FOREVER))
      return -1;
    sum += v;
  }
  double t = bench_now() - t0;
  conc_process_join(&p, CONC_FOREVER);
  conc_process_destroy(&p);
  conc_pqueue_destroy(&pq);
  return sum == n * (n - 1) / 2 ? t : -1;
}

static const char *py_queue =
    "import sys, time, multiprocessing as mp\n"
    "def f(q, n):\n"
    "    for k in range(n): q.put(k)\n"
    "ctx = mp.get_context('fork')\n"
    "n = int(sys.argv[1]); q = ctx.Queue()\n"
    "t0 = time.perf_counter()\n"
    "p = ctx.Process(target=f, args=(q, n)); p.start()\n"
    "s = 0\n"
    "for _ in range(n): s += q.get()\n"
    "t = time.perf_counter() - t0\n"
    "p.join(); assert s == n * (n - 1) // 2\n"
    "print(t)\n";

/* ---- Pipe round trip --------------------------------------------------- */

static conc_conn_t ca, cb;

static int echo(void *arg, void **result) {
  (void)arg;
  conc_conn_close(&ca);
  char buf[64];
  size_t len;
  while (conc_conn_recv_bytes_into(&cb, buf, sizeof buf, 0, &len) == 0)
    if (conc_conn_send_bytes(&cb, buf, len))
      break;
  return 0;
}

static double run_conc_pipe(void *arg, long n) {
  (void)arg;
  if (conc_pipe(&ca, &cb, true))
    return -1;
  conc_process_t p;
  if (conc_process_init(&p, echo, NULL, NULL) || conc_process_start(&p))
    return -1;
  conc_conn_close(&cb);
  char buf[64];
  size_t len;
  double t0 = bench_now();
  for (long k = 0; k < n; k++)
    if (conc_conn_send_bytes(&ca, "ping1234", 8) ||
        conc_conn_recv_bytes_into(&ca, buf, sizeof buf, 0, &len))
      return -1;
  double t = bench_now() - t0;
  conc_conn_close(&ca);
  conc_process_join(&p, CONC_FOREVER);
  conc_process_destroy(&p);
  return t;
}

static double run_raw_pipe(void *arg, long n) {
  (void)arg;
  int up[2], down[2];
  if (pipe(up) || pipe(down))
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(down[1]);
    close(up[0]);
    char buf[64];
    ssize_t r;
    while ((r = read(down[0], buf, sizeof buf)) > 0)
      if (write(up[1], buf, (size_t)r) != r)
        break;
    _exit(0);
  }
  close(down[0]);
  close(up[1]);
  char buf[64];
  double t0 = bench_now();
  for (long k = 0; k < n; k++)
    if (write(down[1], "ping1234", 8) != 8 || read(up[0], buf, sizeof buf) != 8)
      return -1;
  double t = bench_now() - t0;
  close(down[1]);
  close(up[0]);
  waitpid(pid, NULL, 0);
  return t;
}

/* The same round trip over two one-way Pipes (packet-mode pipes). */
static conc_conn_t up_r, up_w, down_r, down_w;

static int echo_one_way(void *arg, void **result) {
  (void)arg;
  conc_conn_close(&up_r);
  conc_conn_close(&down_w);
  char buf[64];
  size_t len;
  while (conc_conn_recv_bytes_into(&down_r, buf, sizeof buf, 0, &len) == 0)
    if (conc_conn_send_bytes(&up_w, buf, len))
      break;
  return 0;
}

static double run_conc_one_way(void *arg, long n) {
  (void)arg;
  if (conc_pipe(&up_r, &up_w, false) || conc_pipe(&down_r, &down_w, false))
    return -1;
  conc_process_t p;
  if (conc_process_init(&p, echo_one_way, NULL, NULL) || conc_process_start(&p))
    return -1;
  conc_conn_close(&up_w);
  conc_conn_close(&down_r);
  char buf[64];
  size_t len;
  double t0 = bench_now();
  for (long k = 0; k < n; k++)
    if (conc_conn_send_bytes(&down_w, "ping1234", 8) ||
        conc_conn_recv_bytes_into(&up_r, buf, sizeof buf, 0, &len))
      return -1;
  double t = bench_now() - t0;
  conc_conn_close(&down_w);
  conc_conn_close(&up_r);
  conc_process_join(&p, CONC_FOREVER);
  conc_process_destroy(&p);
  return t;
}

static const char *py_one_way =
    "import sys, time, multiprocessing as mp\n"
    "def f(ur, uw, dr, dw):\n"
    "    ur.close(); dw.close()\n"
    "    try:\n"
    "        while True: uw.send_bytes(dr.recv_bytes())\n"
    "    except EOFError: pass\n"
    "ctx = mp.get_context('fork')\n"
    "n = int(sys.argv[1])\n"
    "ur, uw = ctx.Pipe(duplex=False); dr, dw = ctx.Pipe(duplex=False)\n"
    "p = ctx.Process(target=f, args=(ur, uw, dr, dw)); p.start()\n"
    "uw.close(); dr.close()\n"
    "t0 = time.perf_counter()\n"
    "for _ in range(n):\n"
    "    dw.send_bytes(b'ping1234'); ur.recv_bytes()\n"
    "t = time.perf_counter() - t0\n"
    "dw.close(); p.join()\n"
    "print(t)\n";

/* The kernel transport under CPython's duplex Pipe (socket.socketpair(), a
 * stream socket pair), without its framing or interpreter. */
static double run_raw_stream_socket(void *arg, long n) {
  (void)arg;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    char buf[64];
    ssize_t r;
    while ((r = read(sv[1], buf, sizeof buf)) > 0)
      if (write(sv[1], buf, (size_t)r) != r)
        break;
    _exit(0);
  }
  close(sv[1]);
  char buf[64];
  double t0 = bench_now();
  for (long k = 0; k < n; k++)
    if (write(sv[0], "ping1234", 8) != 8 || read(sv[0], buf, sizeof buf) != 8)
      return -1;
  double t = bench_now() - t0;
  close(sv[0]);
  waitpid(pid, NULL, 0);
  return t;
}

static const char *py_pipe =
    "import sys, time, multiprocessing as mp\n"
    "def f(a, c):\n"
    "    a.close()\n"
    "    try:\n"
    "        while True: c.send_bytes(c.recv_bytes())\n"
    "    except EOFError: pass\n"
    "ctx = mp.get_context('fork')\n"
    "n = int(sys.argv[1]); a, b = ctx.Pipe()\n"
    "p = ctx.Process(target=f, args=(a, b)); p.start(); b.close()\n"
    "t0 = time.perf_counter()\n"
    "for _ in range(n):\n"
    "    a.send_bytes(b'ping1234'); a.recv_bytes()\n"
    "t = time.perf_counter() - t0\n"
    "a.close(); p.join()\n"
    "print(t)\n";

int main(int argc, char **argv) {
  bench_init(argc, argv);
  death_ns = mmap(NULL, sizeof *death_ns, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  bench_variant_t v[4];

  v[0] = (bench_variant_t){"libconc Process", run_conc_spawn, NULL, 0};
  v[1] = (bench_variant_t){"raw fork+_exit+waitpid", run_raw_spawn, NULL, 0};
  v[2] = (bench_variant_t){"CPython mp.Process (fork)", bench_python_fn,
                           (void *)py_spawn, 200};
  bench_compare("Process start+join (no-op target)", "process", 2000, v, 3);

  v[0] = (bench_variant_t){"libconc join (pidfd)", run_conc_wake, NULL, 0};
  v[1] = (bench_variant_t){"raw blocking waitpid", run_raw_wake, NULL, 0};
  bench_compare("join wake-up after the child's death", "wake-up", 1000, v, 2);

  v[0] = (bench_variant_t){"libconc Value + get_lock", run_conc_value, NULL, 0};
  /* n large enough that CPython's two forks are a small part of its time */
  v[1] = (bench_variant_t){"CPython mp.Value + get_lock", bench_python_fn,
                           (void *)py_value, 100000};
  bench_compare("Value += 1 under its lock, 2 processes", "increment", 2000000,
                v, 2);

  v[0] = (bench_variant_t){"libconc process Queue", run_conc_queue, NULL, 0};
  v[1] = (bench_variant_t){"CPython mp.Queue", bench_python_fn,
                           (void *)py_queue, 20000};
  bench_compare("process Queue, 1 producer -> 1 consumer, 8-byte items", "item",
                500000, v, 2);

  v[0] = (bench_variant_t){"libconc Pipe", run_conc_pipe, NULL, 0};
  v[1] = (bench_variant_t){"raw pipe pair", run_raw_pipe, NULL, 0};
  v[2] = (bench_variant_t){"raw AF_UNIX stream socket pair",
                           run_raw_stream_socket, NULL, 0};
  v[3] = (bench_variant_t){"CPython mp.Pipe", bench_python_fn, (void *)py_pipe,
                           20000};
  bench_compare("Pipe round trip, 8-byte message", "round trip", 50000, v, 4);

  v[0] =
      (bench_variant_t){"libconc 2 one-way Pipes", run_conc_one_way, NULL, 0};
  v[1] = (bench_variant_t){"raw pipe pair", run_raw_pipe, NULL, 0};
  v[2] = (bench_variant_t){"CPython 2 mp.Pipe(duplex=False)", bench_python_fn,
                           (void *)py_one_way, 20000};
  bench_compare("one-way Pipes round trip, 8-byte message", "round trip", 50000,
                v, 3);
  return bench_finish();
}
