// clang-format off
/*
 * Lesson 37: without a GIL, threads run CPU-bound work in parallel.
 * Seeds 002 (the lecture: "remember the GIL: all threads run on one CPU";
 * CPU-bound vs I/O-bound) and 003 ("threads in CPython are inefficient for
 * computational work because of the GIL").
 *
 * Python:                                        C:
 *   def count_primes(n): ...                       static int count_primes(void *arg, void **result) { ...; return 0; }
 *   t1 = Thread(target=count_primes, args=(N,))    conc_thread_init(&t1, count_primes, &a, NULL);
 *   t2 = Thread(target=count_primes, args=(N,))    conc_thread_init(&t2, count_primes, &b, NULL);
 *   t1.start(); t2.start()                         conc_thread_start(&t1); conc_thread_start(&t2);
 *   t1.join(); t2.join()                           conc_thread_join(&t1, CONC_FOREVER); ...
 *   time.sleep(0.1)  # I/O-like wait               conc_sleep(0.1);
 *
 * CPython's GIL lets one thread run Python code at a time, so two threads
 * counting primes take as long as doing it twice in a row; only waiting
 * (I/O, sleep) overlaps. C threads have no such lock: on a machine with two
 * free cores the two counts finish in about the time of one. The numbers
 * depend on the machine and its load (they are printed, not checked); what
 * is checked is that both threads got the right count.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

#define N 200000 /* count the primes below N */

typedef struct {
  int below;
  int count;
} job_t;

static int count_primes(void *arg, void **result) {
  job_t *job = arg;
  int count = 0;
  for (int n = 2; n < job->below; n++) {
    int prime = 1;
    for (int d = 2; d * d <= n; d++)
      if (n % d == 0) {
        prime = 0;
        break;
      }
    count += prime;
  }
  job->count = count;
  return 0;
}

static int io_wait(void *arg, void **result) {
  (void)arg;
  conc_sleep(0.1); /* stands for a network or disk wait */
  return 0;
}

/* Run fn on args[0..n) one after another, or in n threads; return seconds. */
static double timed(conc_fn_t fn, job_t *args, int n, bool threads) {
  conc_thread_t t[4];
  double t0 = conc_monotonic();
  for (int i = 0; i < n; i++) {
    if (!threads) {
      void *unused;
      fn(&args[i], &unused);
      continue;
    }
    conc_thread_init(&t[i], fn, &args[i], NULL);
    conc_thread_start(&t[i]);
  }
  for (int i = 0; threads && i < n; i++) {
    conc_thread_join(&t[i], CONC_FOREVER);
    conc_thread_destroy(&t[i]);
  }
  return conc_monotonic() - t0;
}

int main(void) {
  job_t jobs[4] = {{N, 0}, {N, 0}, {N, 0}, {N, 0}};
  printf("CPU-bound: count the primes below %d, twice\n", N);
  double seq = timed(count_primes, jobs, 2, false);
  double par = timed(count_primes, jobs + 2, 2, true);
  printf("  one after another: %.3f s\n", seq);
  printf(
      "  two threads:       %.3f s (%.1fx faster; CPython's GIL: about 1x)\n",
      par, seq / par);
  printf("  counts: %d %d %d %d\n", jobs[0].count, jobs[1].count, jobs[2].count,
         jobs[3].count);

  printf("I/O-bound: four waits of 0.1 s\n");
  seq = timed(io_wait, jobs, 4, false);
  par = timed(io_wait, jobs, 4, true);
  printf("  one after another: %.3f s\n", seq);
  printf("  four threads:      %.3f s (Python threads overlap waits too)\n",
         par);
  return 0;
}
