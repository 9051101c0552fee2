// clang-format off
/*
 * Lesson 57: the same CPU-bound and I/O-bound work with threads, processes
 * and the event loop, timed side by side (seed 002: "CPU-bound vs
 * I/O-bound", "Резюмируя вышесказанное" and "Так что же мне
 * использовать?").
 *
 * Python (seed 002's summary):                 C:
 *   multiprocessing: many processes,             conc_pool_map(&pool, fn, jobs, 4, ...)
 *     parallel, for CPU-bound work
 *   threading: one process, many threads,        conc_executor_submit(&ex, fn, &job, &f)
 *     the OS switches, fast I/O                  conc_future_result(f, CONC_FOREVER, NULL)
 *   asyncio: one thread, tasks give way          conc_aio_create_task(NULL, fn, &job, NULL, &t)
 *     at each await, slow I/O, many             conc_aio_gather(ts, 4, NULL, &g)
 *     connections
 *   if io_bound: asyncio (or threads)
 *   else: multiprocessing
 *
 * Each row runs four jobs: counting the primes below 250000 (CPU-bound) and
 * a 0.1 s wait standing for a network reply (I/O-bound). The columns run
 * them one after another, on four threads, in four worker processes, and
 * as four tasks of one event loop.
 *
 * What differs from CPython: there is no GIL, so the threads column is as
 * fast as the processes column for CPU-bound work (in CPython threads gain
 * nothing there; with two free cores both are about twice as fast as one
 * after another). The loop runs everything on one thread: a task that
 * computes never gives way, so CPU-bound tasks take as long as one after
 * another, while four waits overlap completely. The pool's workers are
 * started before the clock starts (Pool() itself costs a few forks).
 *
 * The times depend on the machine and its load: they are printed, and the
 * test checks only the table's shape and the prime counts.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

enum { NJOBS = 4, BELOW = 250000 };
#define WAIT 0.1 /* seconds of "network" per I/O-bound job */

static int count_primes(int below) {
  int count = 0;
  for (int n = 2; n < below; n++) {
    int prime = 1;
    for (int d = 2; d * d <= n; d++)
      if (n % d == 0) {
        prime = 0;
        break;
      }
    count += prime;
  }
  return count;
}

static int counts[4][NJOBS]; /* every column's CPU-bound answers */

/* ---- the work, in each column's calling shape ---------------------------- */

/* executor task: int fn(void *arg, void **result), the loop task's shape */
static int cpu_thread(void *arg, void **res) {
  (void)res;
  *(int *)arg = count_primes(BELOW);
  return 0;
}
static int io_thread(void *arg, void **res) {
  (void)arg, (void)res;
  return conc_sleep(WAIT); /* a blocking wait: only this thread waits */
}

/* pool task: arguments and results cross as bytes */
static int cpu_process(const void *arg, size_t alen, void *res, size_t cap,
                       size_t *rlen) {
  (void)arg, (void)alen, (void)cap, (void)rlen;
  *(int *)res = count_primes(BELOW);
  return 0;
}
static int io_process(const void *arg, size_t alen, void *res, size_t cap,
                      size_t *rlen) {
  (void)arg, (void)alen, (void)cap, (void)rlen;
  *(int *)res = conc_sleep(WAIT);
  return 0;
}

/* loop task: int fn(void *arg, void **result) */
static int cpu_task(void *arg, void **res) {
  (void)res;
  *(int *)arg = count_primes(BELOW); /* no await: nothing else runs */
  return 0;
}
static int io_task(void *arg, void **res) {
  (void)arg, (void)res;
  return conc_aio_sleep(WAIT); /* await asyncio.sleep(0.1): gives way */
}

/* ---- the columns --------------------------------------------------------- */

static double one_after_another(bool cpu) {
  double t0 = conc_monotonic();
  void *unused;
  for (int i = 0; i < NJOBS; i++)
    cpu ? cpu_thread(&counts[0][i], &unused) : io_thread(NULL, &unused);
  return conc_monotonic() - t0;
}

static double threads(conc_executor_t *ex, bool cpu) {
  conc_future_t *fs[NJOBS];
  double t0 = conc_monotonic();
  for (int i = 0; i < NJOBS; i++)
    if (conc_executor_submit(ex, cpu ? cpu_thread : io_thread, &counts[1][i],
                             &fs[i]) != 0)
      return -1;
  for (int i = 0; i < NJOBS; i++) {
    conc_future_result(fs[i], CONC_FOREVER, NULL);
    conc_future_release(fs[i]);
  }
  return conc_monotonic() - t0;
}

static double processes(conc_pool_t *pool, bool cpu) {
  int in[NJOBS] = {0}, out[NJOBS];
  double t0 = conc_monotonic();
  if (conc_pool_map(pool, cpu ? cpu_process : io_process, in, NJOBS,
                    sizeof(int), sizeof(int),
                    &(conc_pool_map_opts_t){.chunksize = 1}, out, NULL) != 0)
    return -1;
  double t = conc_monotonic() - t0;
  for (int i = 0; cpu && i < NJOBS; i++)
    counts[2][i] = out[i];
  return t;
}

static int loop_main(void *arg, void **res) {
  bool cpu = *(bool *)arg;
  conc_aio_future_t *ts[NJOBS] = {0}, *g = NULL;
  int rc = 0;
  for (int i = 0; i < NJOBS && rc == 0; i++)
    rc = conc_aio_create_task(NULL, cpu ? cpu_task : io_task, &counts[3][i],
                              NULL, &ts[i]);
  if (rc == 0)
    rc = conc_aio_gather(ts, NJOBS, NULL, &g);
  if (rc == 0)
    rc = conc_aio_await(g, res);
  conc_aio_future_release(g);
  for (int i = 0; i < NJOBS; i++)
    conc_aio_future_release(ts[i]);
  return rc;
}

static double event_loop(bool cpu) {
  void *res;
  double t0 = conc_monotonic();
  if (conc_aio_run(loop_main, &cpu, NULL, &res) != 0)
    return -1;
  return conc_monotonic() - t0;
}

int main(void) {
  conc_pool_t pool; /* forked first, while this program has one thread */
  conc_executor_t ex;
  if (conc_pool_init(&pool, &(conc_pool_opts_t){.processes = NJOBS}) != 0 ||
      conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = NJOBS}))
    return 1;

  printf("%-34s %10s %10s %10s %10s\n", "4 jobs", "in a row", "threads",
         "processes", "event loop");
  for (int row = 0; row < 2; row++) {
    bool cpu = row == 0;
    double t[4] = {one_after_another(cpu), threads(&ex, cpu),
                   processes(&pool, cpu), event_loop(cpu)};
    printf("%-34s",
           cpu ? "CPU-bound: count primes < 250000" : "I/O-bound: wait 0.1 s");
    for (int c = 0; c < 4; c++)
      printf(" %8.3f s", t[c]);
    printf("\n");
  }

  bool agree = true;
  for (int c = 0; c < 4; c++)
    for (int i = 0; i < NJOBS; i++)
      agree = agree && counts[c][i] == counts[0][0];
  printf("prime counts: %d in every job and column: %s\n", counts[0][0],
         agree ? "yes" : "no");
  puts("CPU-bound: threads or processes (no GIL here); the loop gains nothing");
  puts("I/O-bound: threads, processes and the loop all overlap the waits;");
  puts("           the loop does it on one thread, so it scales to many "
       "connections");

  conc_executor_destroy(&ex);
  conc_pool_close(&pool);
  conc_pool_join(&pool);
  conc_pool_destroy(&pool);
  return agree ? 0 : 1;
}
