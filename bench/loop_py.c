/*
 * The children of bench/bench_loop.c: a runner that reads a child's last
 * line ("secs [KiB]"), and the CPython baselines (asyncio, uvloop, gevent)
 * as scripts run by `python3 -c script n`. Each script does its own setup,
 * times the same work as the C variant and prints the seconds (and, where
 * the row reports memory, its VmHWM in KiB). Debian's uvloop and gevent
 * live in /usr/lib/python3/dist-packages, which a python3 from elsewhere
 * (pyenv) does not search: the scripts append it.
 *
 * Locking: called from the harness's single thread only.
 */
#include <errno.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "loop_py.h"

extern char **environ;

double bench_loop_child_kib = -1;

/* Run argv (argv[0] searched in PATH), read its stdout; the last line is
 * "secs [kib]". Returns secs (kib into bench_loop_child_kib) or -1 on failure. */
double bench_loop_child(char *const argv[]) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return -1;
  }
  char out[8192], *line = out;
  size_t len = 0;
  ssize_t got;
  while ((got = read(fds[0], out + len, sizeof out - 1 - len)) > 0 ||
         (got < 0 && errno == EINTR))
    if (got > 0 && (len += (size_t)got) == sizeof out - 1)
      len = 0; /* keep only the tail: the figures are on the last line */
  out[len] = '\0';
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return -1;
  for (char *p = out; (p = strchr(p, '\n')) && p[1]; p++)
    line = p + 1;
  double secs = -1, kib = -1;
  if (sscanf(line, "%lf %lf", &secs, &kib) < 1)
    return -1;
  bench_loop_child_kib = kib;
  return secs;
}

/* ---- Python baselines ---------------------------------------------------- */

// clang-format off
#define PY_PRE                                                                 \
  "import sys, time\n"                                                         \
  "sys.path.append('/usr/lib/python3/dist-packages')\n"                        \
  "n = int(sys.argv[1])\n"                                                     \
  "pc = time.perf_counter\n"                                                   \
  "def hwm():\n"                                                               \
  "    for l in open('/proc/self/status'):\n"                                  \
  "        if l.startswith('VmHWM:'): return int(l.split()[1])\n"              \
  "    return -1\n"
#define PY_ASYNCIO PY_PRE "import asyncio\n"
#define PY_UVLOOP PY_PRE "import asyncio, uvloop\n"                            \
  "asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())\n"
#define PY_GEVENT PY_PRE "import gevent\n"

/* Row 1: n tasks x 10 sleep(0), gathered. */
#define AIO_GATHER10                                                           \
  "async def w():\n"                                                           \
  "    for _ in range(10):\n"                                                  \
  "        await asyncio.sleep(0)\n"                                           \
  "async def main():\n"                                                        \
  "    t = pc()\n"                                                             \
  "    await asyncio.gather(*[asyncio.create_task(w()) for _ in range(n)])\n"  \
  "    return pc() - t\n"                                                      \
  "el = asyncio.run(main())\n"                                                 \
  "print(el, hwm())\n"
static const char py_gather10_aio[] = PY_ASYNCIO AIO_GATHER10;
static const char py_gather10_uv[] = PY_UVLOOP AIO_GATHER10;
static const char py_gather10_gev[] = PY_GEVENT
  "def w():\n"
  "    for _ in range(10):\n"
  "        gevent.sleep(0)\n"
  "t = pc()\n"
  "gevent.joinall([gevent.spawn(w) for _ in range(n)])\n"
  "el = pc() - t\n"
  "print(el, hwm())\n";

/* Row 2a: n sleep(0) round trips by min(100, n) tasks. */
#define YIELDS_PRE "k = min(100, n)\nm = n // k\n"
#define AIO_YIELDS YIELDS_PRE                                                  \
  "async def w():\n"                                                           \
  "    s = asyncio.sleep\n"                                                    \
  "    for _ in range(m):\n"                                                   \
  "        await s(0)\n"                                                       \
  "async def main():\n"                                                        \
  "    t = pc()\n"                                                             \
  "    await asyncio.gather(*[asyncio.create_task(w()) for _ in range(k)])\n"  \
  "    return (pc() - t) * n / (k * m)\n"                                      \
  "print(asyncio.run(main()))\n"
static const char py_yields_aio[] = PY_ASYNCIO AIO_YIELDS;
static const char py_yields_uv[] = PY_UVLOOP AIO_YIELDS;
static const char py_yields_gev[] = PY_GEVENT YIELDS_PRE
  "def w():\n"
  "    s = gevent.sleep\n"
  "    for _ in range(m):\n"
  "        s(0)\n"
  "t = pc()\n"
  "gevent.joinall([gevent.spawn(w) for _ in range(k)])\n"
  "print((pc() - t) * n / (k * m))\n";

/* Row 2b: create + run + finish, batches of 256 run by one sleep(0). */
#define AIO_CREATES                                                            \
  "async def noop():\n"                                                        \
  "    pass\n"                                                                 \
  "async def main():\n"                                                        \
  "    ct, s = asyncio.create_task, asyncio.sleep\n"                           \
  "    t = pc()\n"                                                             \
  "    for _ in range(n // 256):\n"                                            \
  "        for _ in range(256):\n"                                             \
  "            ct(noop())\n"                                                   \
  "        await s(0)\n"                                                       \
  "    return (pc() - t) * n / (n // 256 * 256)\n"                             \
  "print(asyncio.run(main()))\n"
static const char py_creates_aio[] = PY_ASYNCIO AIO_CREATES;
static const char py_creates_uv[] = PY_UVLOOP AIO_CREATES;
static const char py_creates_gev[] = PY_GEVENT
  "def noop():\n"
  "    pass\n"
  "sp, s = gevent.spawn, gevent.sleep\n"
  "t = pc()\n"
  "for _ in range(n // 256):\n"
  "    for _ in range(256):\n"
  "        sp(noop)\n"
  "    s(0)\n"
  "print((pc() - t) * n / (n // 256 * 256))\n";

/* Row 3: n tasks each sleeping 10 ms; first arm to last wake. */
#define AIO_SLEEP10                                                            \
  "first = None\nlast = 0.0\n"                                                 \
  "async def w():\n"                                                           \
  "    global first, last\n"                                                   \
  "    if first is None: first = pc()\n"                                       \
  "    await asyncio.sleep(0.01)\n"                                            \
  "    last = pc()\n"                                                          \
  "async def main():\n"                                                        \
  "    await asyncio.gather(*[asyncio.create_task(w()) for _ in range(n)])\n"  \
  "asyncio.run(main())\n"                                                      \
  "print(last - first, hwm())\n"
static const char py_sleep10_aio[] = PY_ASYNCIO AIO_SLEEP10;
static const char py_sleep10_uv[] = PY_UVLOOP AIO_SLEEP10;
static const char py_sleep10_gev[] = PY_GEVENT
  "first = None\nlast = 0.0\n"
  "def w():\n"
  "    global first, last\n"
  "    if first is None: first = pc()\n"
  "    gevent.sleep(0.01)\n"
  "    last = pc()\n"
  "gevent.joinall([gevent.spawn(w) for _ in range(n)])\n"
  "print(last - first, hwm())\n";

/* Row 4: n call_later timers armed, then all cancelled. */
#define AIO_TIMERS                                                             \
  "loop = asyncio.new_event_loop()\n"                                          \
  "ds = [1 + (i * 7919 % 60000) / 1000 for i in range(n)]\n"                   \
  "f = lambda: None\n"                                                         \
  "cl = loop.call_later\n"                                                     \
  "t = pc()\n"                                                                 \
  "hs = [cl(d, f) for d in ds]\n"                                              \
  "for h in hs:\n"                                                             \
  "    h.cancel()\n"                                                           \
  "print(pc() - t)\n"
static const char py_timers_aio[] = PY_ASYNCIO AIO_TIMERS;
static const char py_timers_uv[] = PY_UVLOOP AIO_TIMERS;

/* Row 5: n call_soon_threadsafe from a thread into a busy loop. */
#define AIO_THREADSAFE                                                         \
  "import threading\n"                                                         \
  "loop = asyncio.new_event_loop()\n"                                          \
  "cnt = 0\n"                                                                  \
  "def cb():\n"                                                                \
  "    global cnt\n"                                                           \
  "    cnt += 1\n"                                                             \
  "    if cnt == n: loop.stop()\n"                                             \
  "def busy():\n"                                                              \
  "    loop.call_soon(busy)\n"                                                 \
  "def prod():\n"                                                              \
  "    cs = loop.call_soon_threadsafe\n"                                       \
  "    for _ in range(n):\n"                                                   \
  "        cs(cb)\n"                                                           \
  "loop.call_soon(busy)\n"                                                     \
  "th = threading.Thread(target=prod)\n"                                       \
  "t = pc()\n"                                                                 \
  "th.start()\n"                                                               \
  "loop.run_forever()\n"                                                       \
  "el = pc() - t\n"                                                            \
  "th.join()\n"                                                                \
  "print(el)\n"
static const char py_threadsafe_aio[] = PY_ASYNCIO AIO_THREADSAFE;
static const char py_threadsafe_uv[] = PY_UVLOOP AIO_THREADSAFE;
// clang-format on

static bool have_uvloop, have_gevent, python_ok;

static bool py_imports(const char *module) {
  char script[256];
  snprintf(script, sizeof script,
           "import sys\nsys.path.append('/usr/lib/python3/dist-packages')\n"
           "import %s\nprint(0)\n",
           module);
  char *argv[] = {"python3", "-c", script, NULL};
  return bench_loop_child(argv) >= 0;
}

void bench_loop_py_probe(void) {
  if (bench_smoke()) {
    printf("smoke: Python baselines skipped (each child costs a start-up)\n");
    return;
  }
  python_ok = py_imports("asyncio");
  have_uvloop = python_ok && py_imports("uvloop");
  have_gevent = python_ok && py_imports("gevent");
  if (!python_ok)
    printf("python3 not found: asyncio, uvloop and gevent baselines "
           "skipped\n");
  if (python_ok && !have_uvloop)
    printf("python3 cannot import uvloop: baseline skipped "
           "(apt install python3-uvloop)\n");
  if (python_ok && !have_gevent)
    printf("python3 cannot import gevent: baseline skipped "
           "(apt install python3-gevent)\n");
}

double bench_loop_py(void *p, long n) {
  const bench_loop_py_t *v = p;
  bench_loop_child_kib = -1;
  if (!python_ok ||
      (v->module && strcmp(v->module, "uvloop") == 0 && !have_uvloop) ||
      (v->module && strcmp(v->module, "gevent") == 0 && !have_gevent))
    return -1;
  char nbuf[32];
  snprintf(nbuf, sizeof nbuf, "%ld", n);
  char *argv[] = {"python3", "-c", (char *)v->script, nbuf, NULL};
  return bench_loop_child(argv);
}

const bench_loop_py_t bench_loop_py_gather10[] = {{py_gather10_aio, NULL},
                                                  {py_gather10_uv, "uvloop"},
                                                  {py_gather10_gev, "gevent"}};
const bench_loop_py_t bench_loop_py_yields[] = {
    {py_yields_aio, NULL}, {py_yields_uv, "uvloop"}, {py_yields_gev, "gevent"}};
const bench_loop_py_t bench_loop_py_creates[] = {{py_creates_aio, NULL},
                                                 {py_creates_uv, "uvloop"},
                                                 {py_creates_gev, "gevent"}};
const bench_loop_py_t bench_loop_py_sleep10[] = {{py_sleep10_aio, NULL},
                                                 {py_sleep10_uv, "uvloop"},
                                                 {py_sleep10_gev, "gevent"}};
const bench_loop_py_t bench_loop_py_timers[] = {{py_timers_aio, NULL},
                                                {py_timers_uv, "uvloop"}};
const bench_loop_py_t bench_loop_py_threadsafe[] = {
    {py_threadsafe_aio, NULL}, {py_threadsafe_uv, "uvloop"}};
