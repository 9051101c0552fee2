/*
 * The libconc benchmark harness (bench/bench.c, linked into every bench).
 *
 * A benchmark program compares libconc against baselines (raw pthreads,
 * GLib, libuv, CPython) doing the same work, in one process run:
 *
 *   static double run_mine(void *arg, long n) { ...n ops...; return secs; }
 *
 *   int main(int argc, char **argv) {
 *     bench_init(argc, argv);
 *     bench_variant_t v[] = {
 *       {"libconc Lock", run_mine, &ctx},          // v[0] is always libconc
 *       {"pthread mutex", run_pthread, &ctx},
 *       {"CPython threading.Lock", run_py, NULL, 20000},  // own, smaller n
 *     };
 *     bench_compare("uncontended lock", "acquire+release", 1000000, v, 3);
 *     return bench_finish();
 *   }
 *
 * A bench_fn does n operations and returns the elapsed seconds of the timed
 * part only (setup and teardown excluded), or a negative value when the
 * variant cannot run here (then it is reported as "unavailable", never as
 * zero). Variants with a different cost per operation may carry their own n
 * (the fourth field); rates are per operation, so they still compare.
 *
 * bench_compare() runs one untimed warm-up pass of every variant, then the
 * rounds: in each round every variant runs once, in an order rotated by one
 * each round, so drift in machine load spreads over all variants. It prints
 * per variant the median and quartiles (q1, q3) of the rate (ops/s), the
 * median ns per op, and the median over rounds of the per-round ratio
 *     (seconds per op of the variant) / (seconds per op of v[0]),
 * shown as "libconc speed-up": 2.0 means libconc did the work in half the
 * time of that variant in the same round; 0.5 means libconc was slower.
 * The quartiles of the per-round ratios follow it ("per-round q1-q3"): the
 * spread between quiet and busy rounds, which a median alone hides.
 *
 * Command line (bench_init):
 *   --smoke        tiny runs for ctest (label bench-smoke): n / 100 (at least
 *                  1) per variant and 3 rounds; the figures mean nothing
 *   --rounds N     rounds per comparison (default 9; at least 3)
 *   --markdown F   also append each comparison as a Markdown table to F
 *                  (the same columns plus a text bar of the median rate)
 * BENCH_ROUNDS in the environment sets the default rounds.
 *
 * Build: bench/bench_<name>.c is one program (bench/CMakeLists.txt); it may
 * include internal headers from src/ and gets _GNU_SOURCE already defined,
 * plus BENCH_HAVE_GLIB / BENCH_HAVE_UV when those baselines are available.
 *
 * Exit: bench_finish() returns 1 when any libconc variant (v[0]) failed to
 * run, else 0; baselines that are unavailable are not failures.
 */
#ifndef CONC_BENCH_H
#define CONC_BENCH_H

#include <pthread.h>
#include <stdbool.h>

typedef double (*bench_fn)(void *arg, long n);

typedef struct bench_variant {
  const char *name;
  bench_fn fn;
  void *arg;
  long n; /* 0: the comparison's n; else this variant's own op count */
} bench_variant_t;

/* Parse the command line; call first. Unknown options exit with usage. */
void bench_init(int argc, char **argv);

/* True under --smoke. */
bool bench_smoke(void);

/* Rounds each comparison runs. */
int bench_rounds(void);

/* Run, print (and append as Markdown) one comparison; see above. */
void bench_compare(const char *title, const char *unit, long n,
                   const bench_variant_t *v, int nv);

/* The median rate (ops/s) of variant i in the last bench_compare; 0 when it
 * was unavailable or the comparison did not run (--only). */
double bench_last_rate(int i);

/* Exit status for main: nonzero when a libconc variant failed. */
int bench_finish(void);

/* Monotonic time in seconds. */
double bench_now(void);

/*
 * Run a Python program as a child: `python3 -c script n`. The script reads
 * n from sys.argv[1], does its own setup, times n operations itself and
 * prints the elapsed seconds as its last line of output. Returns those
 * seconds, or a negative value when python3 is missing or the script fails
 * (the variant is then reported as unavailable).
 */
double bench_python(const char *script, long n);

/* A bench_fn for CPython variants: arg is the script text. */
double bench_python_fn(void *script, long n);

/*
 * Start nthreads threads, each calling fn(arg, index), released together
 * through a barrier once all exist; returns the seconds from that common
 * start until the last thread returned (thread creation and join of
 * finished threads excluded as far as possible). Aborts on pthread errors.
 */
typedef void (*bench_worker_fn)(void *arg, int index);
double bench_threads(int nthreads, bench_worker_fn fn, void *arg);

/* Plain thread helpers that abort on failure. */
pthread_t bench_spawn(void *(*fn)(void *), void *arg);
void bench_join(pthread_t t);

/* Keep a computed value alive so the compiler cannot drop the work. */
#define bench_keep(x) __asm__ __volatile__("" : : "r"(x) : "memory")

#endif
