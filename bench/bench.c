/*
 * The benchmark harness behind bench/bench.h: interleaved rounds, medians,
 * quartiles, per-round ratios against v[0], Markdown output, CPython
 * children and barrier-started thread teams. Locking: the harness itself is
 * single-threaded; bench_threads() hands each worker its own end-time slot.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SMOKE_DIV 100
#define SMOKE_ROUNDS 3
#define DEFAULT_ROUNDS 9
#define MAX_ROUNDS 1000

static struct {
  bool smoke;
  int rounds;
  const char *markdown;
  const char *only; /* run only comparisons whose title contains this */
  bool failed;
  bool python_missing;
} cfg = {.rounds = DEFAULT_ROUNDS};

static void usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--smoke] [--rounds N] [--markdown FILE] "
          "[--only TEXT]\n",
          prog);
  exit(2);
}

void bench_init(int argc, char **argv) {
  const char *env = getenv("BENCH_ROUNDS");
  if (env && atoi(env) > 0)
    cfg.rounds = atoi(env);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--smoke") == 0) {
      cfg.smoke = true;
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      cfg.rounds = atoi(argv[++i]);
      if (cfg.rounds <= 0)
        usage(argv[0]);
    } else if (strcmp(argv[i], "--markdown") == 0 && i + 1 < argc) {
      cfg.markdown = argv[++i];
    } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      cfg.only = argv[++i];
    } else {
      usage(argv[0]);
    }
  }
  if (cfg.smoke)
    cfg.rounds = SMOKE_ROUNDS;
  if (cfg.rounds < 3)
    cfg.rounds = 3;
  if (cfg.rounds > MAX_ROUNDS)
    cfg.rounds = MAX_ROUNDS;
  setvbuf(stdout, NULL, _IOLBF, 0);
}

bool bench_smoke(void) { return cfg.smoke; }
int bench_rounds(void) { return cfg.rounds; }
int bench_finish(void) { return cfg.failed ? 1 : 0; }

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- statistics ---------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Quantile q (0..1) of the first k values (sorted in place), linear
 * interpolation between order statistics; NAN when k == 0. */
static double quantile(double *x, int k, double q) {
  if (k == 0)
    return NAN;
  qsort(x, (size_t)k, sizeof *x, cmp_double);
  double pos = q * (k - 1);
  int lo = (int)pos;
  int hi = lo + 1 < k ? lo + 1 : lo;
  return x[lo] + (x[hi] - x[lo]) * (pos - lo);
}

/* Keep the finite, non-negative entries of x[0..k) at its front. */
static int compact(double *x, int k) {
  int m = 0;
  for (int i = 0; i < k; i++)
    if (x[i] >= 0 && isfinite(x[i]))
      x[m++] = x[i];
  return m;
}

/* "12.3 M" style rate. */
static const char *si(double v, char *buf, size_t len) {
  static const char *suffix[] = {"", " k", " M", " G"};
  int s = 0;
  while (v >= 1000 && s < 3) {
    v /= 1000;
    s++;
  }
  snprintf(buf, len, "%.3g%s", v, suffix[s]);
  return buf;
}

/* ---- the comparison ------------------------------------------------ */

struct row {
  double rate_med, rate_q1, rate_q3, ns_med, ratio_med, ratio_q1, ratio_q3;
  int ok_rounds;
};

/* The op count actually run: --smoke divides every n. */
static long scaled(long n) {
  if (!cfg.smoke)
    return n;
  return n / SMOKE_DIV > 0 ? n / SMOKE_DIV : 1;
}

static long variant_n(const bench_variant_t *v, long n) {
  return scaled(v->n > 0 ? v->n : n);
}

/* secs[r * nv + i]: seconds per op of variant i in round r (< 0: failed). */
static void run_rounds(long n, const bench_variant_t *v, int nv, double *secs) {
  for (int i = 0; i < nv; i++) /* warm-up: caches, lazy init, page faults */
    v[i].fn(v[i].arg,
            variant_n(&v[i], n) / 10 > 0 ? variant_n(&v[i], n) / 10 : 1);
  for (int r = 0; r < cfg.rounds; r++) {
    for (int k = 0; k < nv; k++) {
      int i = (r + k) % nv;
      long m = variant_n(&v[i], n);
      double t = v[i].fn(v[i].arg, m);
      if (t >= 0 && t < 1e-9) /* below the clock's resolution: not a failure */
        t = 1e-9;
      secs[r * nv + i] = t >= 0 ? t / (double)m : -1;
    }
  }
}

static struct row summarise(const double *secs, int nv, int i) {
  struct row row = {0};
  double rate[MAX_ROUNDS], ns[MAX_ROUNDS], ratio[MAX_ROUNDS];
  int k = 0, kr = 0;
  for (int r = 0; r < cfg.rounds; r++) {
    double s = secs[r * nv + i], s0 = secs[r * nv];
    if (s <= 0)
      continue;
    rate[k] = 1.0 / s;
    ns[k++] = s * 1e9;
    if (s0 > 0)
      ratio[kr++] = s / s0;
  }
  row.ok_rounds = k;
  kr = compact(ratio, kr);
  row.rate_q1 = quantile(rate, k, 0.25);
  row.rate_med = quantile(rate, k, 0.5);
  row.rate_q3 = quantile(rate, k, 0.75);
  row.ns_med = quantile(ns, k, 0.5);
  row.ratio_med = quantile(ratio, kr, 0.5);
  row.ratio_q1 = quantile(ratio, kr, 0.25);
  row.ratio_q3 = quantile(ratio, kr, 0.75);
  return row;
}

static void print_rows(const char *title, const char *unit, long n,
                       const bench_variant_t *v, int nv,
                       const struct row *rows) {
  char a[32], b[32], c[32];
  printf("\n== %s: %s per second, n = %ld, %d rounds%s ==\n", title, unit, n,
         cfg.rounds, cfg.smoke ? " (smoke: figures mean nothing)" : "");
  printf("%-34s %12s %12s %12s %12s %10s  %s\n", "variant", "median/s", "q1/s",
         "q3/s", "ns/op", "speed-up", "(per-round q1-q3)");
  for (int i = 0; i < nv; i++) {
    const struct row *w = &rows[i];
    if (w->ok_rounds == 0) {
      printf("%-34s %12s\n", v[i].name, "unavailable");
      continue;
    }
    printf("%-34s %12s %12s %12s %12.1f %9.2fx  (%.2f-%.2f)\n", v[i].name,
           si(w->rate_med, a, sizeof a), si(w->rate_q1, b, sizeof b),
           si(w->rate_q3, c, sizeof c), w->ns_med, w->ratio_med, w->ratio_q1,
           w->ratio_q3);
  }
}

/* A text bar plot cell: `fraction` of BAR_WIDTH blocks, at least one. */
#define BAR_WIDTH 24
static void bar(FILE *f, double fraction) {
  int k = (int)(fraction * BAR_WIDTH + 0.5);
  if (k < 1)
    k = 1;
  fputc('`', f);
  for (int i = 0; i < k; i++)
    fputs("\u2588", f);
  fputc('`', f);
}

static void append_markdown(const char *title, const char *unit, long n,
                            const bench_variant_t *v, int nv,
                            const struct row *rows) {
  FILE *f = fopen(cfg.markdown, "a");
  if (!f) {
    fprintf(stderr, "bench: cannot append to %s: %s\n", cfg.markdown,
            strerror(errno));
    cfg.failed = true;
    return;
  }
  char a[32], b[32], c[32];
  fprintf(f, "\n### %s\n\n", title);
  bool own_n = false;
  for (int i = 0; i < nv; i++)
    own_n |= v[i].n > 0 && v[i].n != n;
  fprintf(f,
          "%ld %s per round%s, %d rounds, interleaved; rates are %s per "
          "second.\n\n",
          scaled(n), unit,
          own_n ? " (variants marked with their own n did that many)" : "",
          cfg.rounds, unit);
  double top = 0;
  for (int i = 0; i < nv; i++)
    if (rows[i].ok_rounds > 0 && rows[i].rate_med > top)
      top = rows[i].rate_med;
  fprintf(f, "| variant | median | q1 | q3 | ns/op | libconc speed-up | "
             "per-round q1-q3 | rate |\n");
  fprintf(f, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
  for (int i = 0; i < nv; i++) {
    const struct row *w = &rows[i];
    if (w->ok_rounds == 0) {
      fprintf(f, "| %s | unavailable | | | | | | |\n", v[i].name);
      continue;
    }
    fprintf(f, "| %s", v[i].name);
    if (v[i].n > 0 && v[i].n != n)
      fprintf(f, " (n = %ld)", scaled(v[i].n));
    fprintf(f, " | %s | %s | %s | %.1f | %.2fx | %.2f-%.2f | ",
            si(w->rate_med, a, sizeof a), si(w->rate_q1, b, sizeof b),
            si(w->rate_q3, c, sizeof c), w->ns_med, w->ratio_med, w->ratio_q1,
            w->ratio_q3);
    bar(f, w->rate_med / top);
    fprintf(f, " |\n");
  }
  fclose(f);
}

/* Median rates of the last comparison, for bench_last_rate. */
#define LAST_MAX 16
static double last_rate[LAST_MAX];

double bench_last_rate(int i) {
  return i >= 0 && i < LAST_MAX ? last_rate[i] : 0;
}

void bench_compare(const char *title, const char *unit, long n,
                   const bench_variant_t *v, int nv) {
  memset(last_rate, 0, sizeof last_rate);
  if (cfg.only && !strcasestr(title, cfg.only))
    return;
  double *secs = calloc((size_t)cfg.rounds * (size_t)nv, sizeof *secs);
  struct row *rows = calloc((size_t)nv, sizeof *rows);
  if (!secs || !rows) {
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
  }
  run_rounds(n, v, nv, secs);
  for (int i = 0; i < nv; i++) {
    rows[i] = summarise(secs, nv, i);
    if (i < LAST_MAX && rows[i].ok_rounds > 0)
      last_rate[i] = rows[i].rate_med;
  }
  if (rows[0].ok_rounds < cfg.rounds) {
    fprintf(stderr, "bench: %s: the libconc variant failed\n", title);
    cfg.failed = true;
  }
  print_rows(title, unit, scaled(n), v, nv, rows);
  if (cfg.markdown)
    append_markdown(title, unit, n, v, nv, rows);
  free(secs);
  free(rows);
}

/* ---- CPython children ---------------------------------------------- */

/* Read the child's whole stdout; returns its length (buf is NUL-ended). */
static size_t read_all(int fd, char *buf, size_t cap) {
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t got = read(fd, buf + len, cap - 1 - len);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    len += (size_t)got;
  }
  char sink[256];
  while (read(fd, sink, sizeof sink) > 0) /* drain so the child never blocks */
    ;
  buf[len] = '\0';
  return len;
}

static double last_number(const char *out) {
  const char *line = out, *p;
  while ((p = strchr(line, '\n')) && p[1] != '\0')
    line = p + 1;
  char *end;
  double v = strtod(line, &end);
  return end == line ? -1 : v;
}

double bench_python(const char *script, long n) {
  if (cfg.python_missing)
    return -1;
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  char nbuf[32];
  snprintf(nbuf, sizeof nbuf, "%ld", n);
  char *argv[] = {"python3", "-c", (char *)script, nbuf, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  pid_t pid;
  int rc = posix_spawnp(&pid, "python3", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    cfg.python_missing = true;
    return -1;
  }
  char out[4096];
  read_all(fds[0], out, sizeof out);
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      cfg.python_missing = true;
    return -1;
  }
  return last_number(out);
}

double bench_python_fn(void *script, long n) {
  return bench_python((const char *)script, n);
}

/* ---- threads ------------------------------------------------------- */

pthread_t bench_spawn(void *(*fn)(void *), void *arg) {
  pthread_t t;
  int rc = pthread_create(&t, NULL, fn, arg);
  if (rc != 0) {
    fprintf(stderr, "bench: pthread_create: %s\n", strerror(rc));
    abort();
  }
  return t;
}

void bench_join(pthread_t t) {
  int rc = pthread_join(t, NULL);
  if (rc != 0) {
    fprintf(stderr, "bench: pthread_join: %s\n", strerror(rc));
    abort();
  }
}

struct team {
  pthread_barrier_t start;
  bench_worker_fn fn;
  void *arg;
};

struct member {
  struct team *team;
  int index;
  double end;
};

static void *member_main(void *p) {
  struct member *m = p;
  pthread_barrier_wait(&m->team->start);
  m->team->fn(m->team->arg, m->index);
  m->end = bench_now();
  return NULL;
}

double bench_threads(int nthreads, bench_worker_fn fn, void *arg) {
  struct team team = {.fn = fn, .arg = arg};
  struct member *m = calloc((size_t)nthreads, sizeof *m);
  pthread_t *t = calloc((size_t)nthreads, sizeof *t);
  if (!m || !t ||
      pthread_barrier_init(&team.start, NULL, (unsigned)nthreads + 1) != 0) {
    fprintf(stderr, "bench: cannot set up %d threads\n", nthreads);
    abort();
  }
  for (int i = 0; i < nthreads; i++) {
    m[i] = (struct member){.team = &team, .index = i};
    t[i] = bench_spawn(member_main, &m[i]);
  }
  pthread_barrier_wait(&team.start);
  double start = bench_now(), end = start;
  for (int i = 0; i < nthreads; i++) {
    bench_join(t[i]);
    if (m[i].end > end)
      end = m[i].end;
  }
  pthread_barrier_destroy(&team.start);
  free(m);
  free(t);
  return end - start;
}
