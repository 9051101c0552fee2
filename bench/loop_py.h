/*
 * bench/loop_py.c, the children of bench/bench_loop.c: a child runner and
 * the CPython asyncio / uvloop / gevent baselines.
 */
#ifndef CONC_BENCH_LOOP_PY_H
#define CONC_BENCH_LOOP_PY_H

/* VmHWM in KiB that the last child reported, or -1. */
extern double bench_loop_child_kib;

/* Run argv (argv[0] searched in PATH) and read its stdout, whose last line
 * is "secs [KiB]": returns secs (KiB into bench_loop_child_kib), or -1 when
 * it cannot start or fails. */
double bench_loop_child(char *const argv[]);

/* A Python baseline: the script and the module it needs beyond asyncio. */
typedef struct bench_loop_py {
  const char *script;
  const char *module; /* "uvloop", "gevent" or NULL */
} bench_loop_py_t;

/* Find out once which modules python3 can import and say what is skipped
 * (under --smoke every Python baseline is skipped). */
void bench_loop_py_probe(void);

/* A bench_fn: arg is a const bench_loop_py_t *; -1 (unavailable) when its
 * module is missing. */
double bench_loop_py(void *arg, long n);

/* [0] asyncio, [1] uvloop, [2] gevent (where the row has one). */
extern const bench_loop_py_t bench_loop_py_gather10[3]; /* 1: n x 10 sleep(0) */
extern const bench_loop_py_t
    bench_loop_py_yields[3]; /* 2a: sleep(0), 100 tasks */
extern const bench_loop_py_t bench_loop_py_creates[3]; /* 2b: create + run */
extern const bench_loop_py_t bench_loop_py_sleep10[3]; /* 3: n x sleep(10 ms) */
extern const bench_loop_py_t
    bench_loop_py_timers[2]; /* 4: call_later + cancel */
extern const bench_loop_py_t
    bench_loop_py_threadsafe[2]; /* 5: threadsafe calls */

#endif
