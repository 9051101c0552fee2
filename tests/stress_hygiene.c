/*
 * Hygiene campaign (issue 10): cycles of thread start/join, process
 * start/join and coroutine create/run/destroy leave the descriptor count
 * (/proc/self/fd) exactly flat and the resident set flat within a small
 * slack. A warm-up of a tenth of the cycles fills the caches (recycled
 * records, stacks, the allocator's arenas) before the baseline.
 *
 * Counts: CONC_STRESS_THREADS, CONC_STRESS_PROCS, CONC_STRESS_COROS
 * (defaults 20,000 / 1,000 / 100,000; 2,000 / 100 / 500 under a
 * sanitizer, which also keeps its own memory, so RSS is printed there but
 * not checked). The long mode of docs/reliability.md is 10^6 / 10^5 /
 * 10^6.
 *
 * Locking: none; every cycle is started and finished by the main thread.
 */
#include "proc_harness.h"

#include <dirent.h>
#include <signal.h>

#include "conc/coro.h"
#include "conc/error.h"
#include "conc/process.h"
#include "conc/thread.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Resident growth allowed over a whole run, in KiB. */
enum { RSS_SLACK_KB = 4096 };

static long count(const char *var, long dflt, long sanitized) {
  const char *e = getenv(var);
  long n = e ? atol(e) : 0;
  return n > 0 ? n : SANITIZED ? sanitized : dflt;
}

static int fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  assert_non_null(f);
  assert_int_equal(fscanf(f, "%ld %ld", &size, &res), 2);
  fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void watchdog(int sig) {
  (void)sig;
  static const char m[] = "stress_hygiene: WATCHDOG: a cycle hangs\n";
  if (write(2, m, sizeof m - 1) < 0)
    _exit(98);
  _exit(99);
}

/* Runs cycle() n/10 times, takes the baseline, runs it n times, and
 * checks descriptors and resident memory. */
static void flat(const char *what, long n, void (*cycle)(long)) {
  signal(SIGALRM, watchdog);
  alarm(120 + (unsigned)(n / 50));
  for (long i = 0; i < n / 10 + 1; i++)
    cycle(i);
  int fd0 = fd_count();
  long rss0 = rss_kb();
  for (long i = 0; i < n; i++)
    cycle(i);
  int fd1 = fd_count();
  long rss1 = rss_kb();
  alarm(0);
  print_message("%s: %ld cycles, descriptors %d -> %d, RSS %ld -> %ld KiB\n",
                what, n, fd0, fd1, rss0, rss1);
  assert_int_equal(fd1, fd0);
  if (!SANITIZED && rss1 - rss0 > RSS_SLACK_KB)
    fail_msg("%s: RSS grew by %ld KiB over %ld cycles", what, rss1 - rss0, n);
}

static int echo(void *arg, void **result) {
  *result = arg;
  return 0;
}

static void thread_cycle(long i) {
  conc_thread_t t;
  void *out = NULL;
  assert_int_equal(conc_thread_init(&t, echo, (void *)i, NULL), 0);
  assert_int_equal(conc_thread_start(&t), 0);
  assert_int_equal(conc_thread_join(&t, CONC_FOREVER), 0);
  assert_int_equal(conc_thread_result(&t, &out), 0);
  assert_true(out == (void *)i);
  assert_int_equal(conc_thread_destroy(&t), 0);
}

static void thread_start_join_is_flat(void **state) {
  (void)state;
  flat("threads", count("CONC_STRESS_THREADS", 20000, 2000), thread_cycle);
}

static int exit_with(void *arg, void **result) {
  conc_process_exit((int)(intptr_t)arg);
}

static void process_cycle(long i) {
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, exit_with, (void *)(i % 7), NULL), 0);
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(finish(&p), (int)(i % 7));
}

static void process_start_join_is_flat(void **state) {
  (void)state;
  flat("processes", count("CONC_STRESS_PROCS", 1000, 100), process_cycle);
}

static int yield_once(void *arg, void **result) {
  return conc_coro_switch(conc_coro_parent(conc_coro_current()), arg, result);
}

/* Even cycles run the coroutine to its end; odd ones destroy it while it
 * is suspended (destroy kills it first). */
static void coro_cycle(long i) {
  conc_coro_t *co;
  void *out = NULL;
  assert_int_equal(conc_coro_create(&co, yield_once, (void *)i, NULL), 0);
  assert_int_equal(conc_coro_switch(co, NULL, &out), 0);
  assert_true(out == (void *)i);
  if (i % 2 == 0) {
    assert_int_equal(conc_coro_switch(co, (void *)(i + 1), &out), 0);
    assert_true(out == (void *)(i + 1));
    assert_true(conc_coro_is_dead(co));
  }
  assert_int_equal(conc_coro_destroy(co), 0);
}

static void coro_create_destroy_is_flat(void **state) {
  (void)state;
  flat("coroutines", count("CONC_STRESS_COROS", 100000, 500), coro_cycle);
}

CONC_TEST_MAIN(cmocka_unit_test(thread_start_join_is_flat),
               cmocka_unit_test(process_start_join_is_flat),
               cmocka_unit_test(coro_create_destroy_is_flat))
