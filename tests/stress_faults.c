/*
 * Fault campaign (issue 10): randomized runs that SIGKILL a pool worker, a
 * process-Queue consumer or producer (at the queue's crash points and at
 * random instants), a pshared Lock holder, blocked pshared waiters and a
 * Barrier party. Every run checks: no hang (a watchdog fails the program),
 * no wrong result, no item lost or delivered twice (ids and checksums),
 * only the victim's task fails, every child reaped (no child of ours left
 * in /proc), and no named segment left in /dev/shm once a killed program
 * is gone.
 *
 * CONC_STRESS_RUNS sets the runs per scenario (default 20, 8 under a
 * sanitizer); the long mode of docs/reliability.md is 1000. Seeds are
 * fixed (CONC_STRESS_SEED overrides), so a failure replays.
 *
 * Locking: the processes of a run share one anonymous MAP_SHARED board
 * through atomics; the objects under test do their own locking.
 */
#include "proc_harness.h"

#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/pool.h"
#include "conc/pqueue.h"
#include "conc/process.h"
#include "conc/shared.h"
#include "conc/sync.h"
#include "pqueue-int.h"

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

static int runs(void) {
  const char *e = getenv("CONC_STRESS_RUNS");
  int n = e ? atoi(e) : 0;
  return n > 0 ? n : SANITIZED ? 8 : 20;
}

static uint32_t seed0(void) {
  const char *e = getenv("CONC_STRESS_SEED");
  return e ? (uint32_t)strtoul(e, NULL, 0) : 20261206u;
}

static uint32_t rnd(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

static uint64_t sum_of(uint64_t id) {
  return (id + 1) * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995ull;
}

struct rec {
  uint64_t id, sum;
};

/* What the processes of a run share. */
#define GOT_MAX 512
#define ROUNDS_MAX 100000
#define NAMES 4
struct board {
  pid_t pid;
  int stop;
  uint32_t n; /* records in got[] */
  struct rec got[GOT_MAX];
  /* producer rounds: puts committed, items received */
  uint64_t committed[ROUNDS_MAX], received[ROUNDS_MAX];
  uint32_t round;
  /* pshared objects and the state a Lock protects */
  conc_lock_t lock;
  uint64_t a, b;
  conc_semaphore_t sem;
  conc_event_t ev;
  conc_barrier_t bar;
  char names[NAMES][CONC_SHM_NAME_MAX + 1];
};
static struct board *bd;
static conc_pqueue_t q;
static const char *current_test = "?";
static long faults; /* victims killed, over the whole program */

static void watchdog(int sig) {
  (void)sig;
  static const char m[] = "stress_faults: WATCHDOG: a run hangs in ";
  if (write(2, m, sizeof m - 1) < 0 ||
      write(2, current_test, strlen(current_test)) < 0 || write(2, "\n", 1))
    _exit(98);
  _exit(99);
}

/* Generous: 10 s plus 1 s per run, for a loaded 2-core machine with a
 * sanitizer; a healthy run takes milliseconds. */
static void arm_watchdog(const char *name) {
  current_test = name;
  signal(SIGALRM, watchdog);
  alarm(10 + (unsigned)runs());
}

/* A memfd, so that a program exec()ed by a test shares the board too. */
static int board_fd = -1;

static struct board *map_board(int fd) {
  void *m = mmap(NULL, sizeof *bd, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return m == MAP_FAILED ? NULL : m;
}

static int setup(void **state) {
  (void)state;
  board_fd = memfd_create("stress_faults", 0);
  if (board_fd < 0 || ftruncate(board_fd, sizeof *bd))
    return -1;
  bd = map_board(board_fd);
  return bd ? 0 : -1;
}

/* No child of ours may be left, running or zombie. */
static int children_left(void) {
  DIR *d = opendir("/proc");
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d))) {
    char path[300], buf[512];
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *p = strrchr(buf, ')');
    int ppid = 0;
    if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == getpid()) {
      print_error("child %s of ours is left: %s\n", de->d_name, buf);
      n++;
    }
  }
  if (d)
    closedir(d);
  return n;
}

static int teardown(void **state) {
  (void)state;
  alarm(0);
  int left = children_left();
  munmap(bd, sizeof *bd);
  close(board_fd);
  return left ? -1 : 0;
}

static int join_code(conc_process_t *p) { return finish(p); }

static void kill_and_reap(conc_process_t *p) {
  conc_process_kill(p);
  assert_int_equal(join_code(p), -SIGKILL);
  faults++;
}

/* ---- pool workers ------------------------------------------------------ */

static int square(const void *a, size_t al, void *r, size_t rc, size_t *rl) {
  (void)al, (void)rc;
  int x = *(const int *)a;
  *(int *)r = x * x;
  *rl = sizeof(int);
  return 0;
}

/* Spins until killed: from outside, or by itself after `arg` loops. */
static int victim_task(const void *a, size_t al, void *r, size_t rc,
                       size_t *rl) {
  (void)al, (void)r, (void)rc, (void)rl;
  unsigned self_kill = *(const unsigned *)a;
  __atomic_store_n(&bd->pid, getpid(), __ATOMIC_RELEASE);
  for (unsigned i = 0;; i++) {
    if (self_kill && i == self_kill)
      raise(SIGKILL);
    conc_sleep(0.0001);
  }
  return 0;
}

/* A worker running the victim's task dies (killed from outside after a
 * random delay, or by itself at a random point): that task fails with
 * CONC_EWORKERDIED and SIGKILL, every other task of the pool completes
 * with the right result, and the pool stays whole. */
static void pool_worker_killed_fails_only_its_task(void **state) {
  (void)state;
  arm_watchdog(__func__);
  conc_pool_t pool;
  assert_int_equal(conc_pool_init(&pool, &(conc_pool_opts_t){.processes = 2}),
                   0);
  uint32_t s = seed0();
  enum { N = 16 };
  int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i + 1;
  for (int run = 0; run < runs(); run++) {
    __atomic_store_n(&bd->pid, 0, __ATOMIC_RELEASE);
    unsigned self_kill = run % 2 ? 1 + rnd(&s) % 20 : 0;
    conc_async_result_t *victim, *others;
    assert_int_equal(conc_pool_apply_async(&pool, victim_task, &self_kill,
                                           sizeof self_kill, 0, NULL, &victim),
                     0);
    assert_int_equal(conc_pool_map_async(&pool, square, in, N, sizeof *in,
                                         sizeof *out, NULL, &others),
                     0);
    if (!self_kill) {
      pid_t pid;
      while ((pid = __atomic_load_n(&bd->pid, __ATOMIC_ACQUIRE)) == 0)
        conc_sleep(0.0005);
      conc_sleep((rnd(&s) % 2000) * 1e-6);
      assert_int_equal(kill(pid, SIGKILL), 0);
    }
    faults++;
    assert_int_equal(conc_async_result_get(victim, CONC_FOREVER, NULL, 0),
                     CONC_EWORKERDIED);
    conc_pool_error_t e;
    assert_int_equal(conc_async_result_error(victim, 0, &e), 0);
    assert_int_equal(e.signal, SIGKILL);
    memset(out, 0, sizeof out);
    assert_int_equal(
        conc_async_result_get(others, CONC_FOREVER, out, sizeof out), 0);
    for (int i = 0; i < N; i++)
      assert_int_equal(out[i], in[i] * in[i]);
    conc_async_result_release(victim);
    conc_async_result_release(others);
  }
  assert_int_equal(conc_pool_map(&pool, square, in, N, sizeof *in, sizeof *out,
                                 NULL, out, NULL),
                   0);
  for (int i = 0; i < N; i++)
    assert_int_equal(out[i], in[i] * in[i]);
  assert_int_equal(conc_pool_close(&pool), 0);
  assert_int_equal(conc_pool_join(&pool), 0);
  conc_pool_destroy(&pool);
}

/* ---- process Queue ----------------------------------------------------- */

struct kill_plan {
  enum conc__pq_point at;
  unsigned after; /* points of that kind passed first */
};
static struct kill_plan plan;

static void killer(enum conc__pq_point point) {
  if (point == plan.at && plan.after-- == 0)
    raise(SIGKILL);
}

static void arm(const struct kill_plan *kp) {
  if (kp && kp->at) {
    plan = *kp;
    conc__pqueue_hook = killer;
  }
}

static int consume_onto_board(void *arg, void **result) {
  arm(arg);
  for (uint32_t i = 0; i < GOT_MAX; i++) {
    size_t n;
    if (conc_pqueue_get_into(&q, &bd->got[i], sizeof bd->got[i], &n, true,
                             CONC_FOREVER) ||
        n != sizeof(struct rec))
      conc_process_exit(2);
    __atomic_store_n(&bd->n, i + 1, __ATOMIC_RELEASE);
  }
  return 0;
}

/* A consumer killed inside get (at a crash point) or at a random instant:
 * get_into copies the item out before the get commits, so every item gone
 * from the queue is on the board, plus at most the one whose get committed
 * just before the kill; the rest are still queued, in order. */
static uint64_t check_taken(uint64_t next, uint64_t queued, bool at_point,
                            enum conc__pq_point at) {
  uint64_t left = (uint64_t)conc_pqueue_qsize(&q), taken = queued - left;
  uint32_t stored = __atomic_load_n(&bd->n, __ATOMIC_ACQUIRE);
  assert_true(left <= queued);
  if (at_point && at != CONC__PQ_GET_RETURNING)
    assert_int_equal(taken, stored); /* died before its get committed */
  else
    assert_true(taken == stored || taken == stored + 1);
  for (uint64_t i = 0; i < stored; i++) {
    assert_int_equal(bd->got[i].id, next + i);
    assert_int_equal(bd->got[i].sum, sum_of(next + i));
  }
  return taken;
}

static void pqueue_consumer_killed_loses_and_duplicates_nothing(void **state) {
  (void)state;
  arm_watchdog(__func__);
  static const enum conc__pq_point points[] = {
      CONC__PQ_GET_READ, CONC__PQ_GET_WOKE, CONC__PQ_GET_RETURNING};
  assert_int_equal(
      conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.capacity = 4096}), 0);
  uint32_t s = seed0() ^ 0x51u;
  uint64_t next = 0, total = 0;
  for (int run = 0; run < runs(); run++) {
    for (; total - next < 128; total++) {
      struct rec r = {total, sum_of(total)};
      assert_int_equal(conc_pqueue_put(&q, &r, sizeof r, true, 5.0), 0);
    }
    __atomic_store_n(&bd->n, 0, __ATOMIC_RELEASE);
    bool at_point = run % 2;
    struct kill_plan kp = {.at = at_point ? points[rnd(&s) % 3] : 0,
                           .after = rnd(&s) % 16};
    conc_process_t p;
    start(&p, consume_onto_board, &kp);
    if (!at_point)
      conc_sleep((rnd(&s) % 1500) * 1e-6);
    kill_and_reap(&p);
    next += check_taken(next, total - next, at_point, kp.at);
  }
  for (struct rec r; next < total; next++) {
    size_t n;
    assert_int_equal(conc_pqueue_get_into(&q, &r, sizeof r, &n, false, 0), 0);
    assert_int_equal(r.id, next);
    assert_int_equal(r.sum, sum_of(next));
  }
  assert_true(conc_pqueue_empty(&q));
  conc_pqueue_destroy(&q);
}

/* Ids are round * ROUND_IDS + k: the getter checks each round's items
 * arrive in order with no gap or repeat, and counts them. */
#define ROUND_IDS 1000000000ull

static int get_rounds(void *arg, void **result) {
  (void)arg;
  uint64_t round = 0, last = 0;
  bool any = false;
  for (;;) {
    struct rec r;
    size_t n;
    if (conc_pqueue_get_into(&q, &r, sizeof r, &n, true, CONC_FOREVER) ||
        n != sizeof r || r.sum != sum_of(r.id))
      conc_process_exit(2);
    if (r.id == UINT64_MAX)
      return 0;
    uint64_t rd = r.id / ROUND_IDS;
    bool same = any && rd == round;
    if (rd >= ROUNDS_MAX ||
        (same ? r.id != last + 1 : r.id % ROUND_IDS != 0 || rd < round))
      conc_process_exit(3);
    round = rd;
    last = r.id;
    any = true;
    __atomic_fetch_add(&bd->received[rd], 1, __ATOMIC_RELEASE);
  }
}

static int produce_round(void *arg, void **result) {
  arm(arg);
  uint32_t rd = bd->round;
  for (uint64_t k = 0;; k++) {
    struct rec r = {rd * ROUND_IDS + k, sum_of(rd * ROUND_IDS + k)};
    if (conc_pqueue_put(&q, &r, sizeof r, true, CONC_FOREVER))
      conc_process_exit(2);
    __atomic_store_n(&bd->committed[rd], k + 1, __ATOMIC_RELEASE);
  }
  return 0;
}

/* The getter, asleep or not, gets every committed item of the dead
 * producer (received >= committed) and at most the one put that was past
 * its commit when the producer died. */
static void await_round(conc_process_t *getter, uint32_t rd) {
  double end = conc_monotonic() + 5.0;
  while (conc_pqueue_qsize(&q) > 0 ||
         __atomic_load_n(&bd->received[rd], __ATOMIC_ACQUIRE) <
             __atomic_load_n(&bd->committed[rd], __ATOMIC_ACQUIRE)) {
    if (conc_monotonic() > end) {
      conc_process_kill(getter);
      finish(getter);
      fail_msg("round %u: %d queued, %llu committed, %llu received", rd,
               conc_pqueue_qsize(&q), (unsigned long long)bd->committed[rd],
               (unsigned long long)bd->received[rd]);
    }
    conc_sleep(0.0002);
  }
}

static void pqueue_producer_killed_strands_and_loses_nothing(void **state) {
  (void)state;
  arm_watchdog(__func__);
  static const enum conc__pq_point points[] = {
      CONC__PQ_PUT_WRITTEN, CONC__PQ_PUT_WOKE, CONC__PQ_PUT_RETURNING,
      CONC__PQ_WAKING};
  assert_true(runs() < ROUNDS_MAX);
  assert_int_equal(conc_pqueue_init(&q, 4, NULL), 0);
  conc_process_t getter;
  start(&getter, get_rounds, NULL);
  uint32_t s = seed0() ^ 0x77u;
  uint32_t n = (uint32_t)runs();
  for (uint32_t rd = 0; rd < n; rd++) {
    bd->round = rd;
    bool at_point = rd % 2;
    struct kill_plan kp = {.at = at_point ? points[rnd(&s) % 4] : 0,
                           .after = rnd(&s) % 16};
    conc_process_t p;
    start(&p, produce_round, &kp);
    if (at_point)
      conc_process_join(&p, 5.0); /* it kills itself at its point */
    else
      conc_sleep((rnd(&s) % 1500) * 1e-6);
    kill_and_reap(&p);
    await_round(&getter, rd);
  }
  struct rec end = {UINT64_MAX, sum_of(UINT64_MAX)};
  assert_int_equal(conc_pqueue_put(&q, &end, sizeof end, true, 5.0), 0);
  assert_int_equal(finish(&getter), 0);
  for (uint32_t rd = 0; rd < n; rd++)
    assert_true(bd->received[rd] == bd->committed[rd] ||
                bd->received[rd] == bd->committed[rd] + 1);
  conc_pqueue_destroy(&q);
}

/* ---- pshared Lock ------------------------------------------------------ */

/* The lock guards a == b; a holder that dies between the two increments
 * leaves a == b + 1, which the next owner repairs. */
static int take_and_repair(void) {
  int rc = conc_lock_acquire(&bd->lock);
  if (rc == CONC_EOWNERDEAD) {
    if (bd->a != bd->b && bd->a != bd->b + 1)
      return 3;
    bd->b = bd->a;
    if (conc_lock_mark_consistent(&bd->lock))
      return 4;
  } else if (rc != 0 || bd->a != bd->b) {
    return 5;
  }
  return 0;
}

static int hold_and_work(void *arg, void **result) {
  unsigned self_kill = *(unsigned *)arg;
  for (unsigned i = 1;; i++) {
    int rc = take_and_repair();
    if (rc)
      conc_process_exit(rc);
    bd->a++;
    if (i == self_kill)
      raise(SIGKILL); /* holding, mid-update */
    bd->b++;
    conc_lock_release(&bd->lock);
  }
  return 0;
}

static int wait_repair_once(void *arg, void **result) {
  (void)arg;
  int rc = take_and_repair();
  if (rc)
    conc_process_exit(rc);
  bd->a++, bd->b++;
  conc_lock_release(&bd->lock);
  return 0;
}

/* A holder killed (by itself mid-update, or from outside at random) with
 * another process blocked on the lock: the waiter gets the lock with
 * CONC_EOWNERDEAD exactly when the state may be torn, repairs it, and the
 * parent then finds a consistent lock and state. */
static void pshared_lock_holder_killed_hands_the_lock_on(void **state) {
  (void)state;
  arm_watchdog(__func__);
  uint32_t s = seed0() ^ 0x3u;
  for (int run = 0; run < runs(); run++) {
    assert_int_equal(
        conc_lock_init(&bd->lock, &(conc_lock_opts_t){.pshared = true}), 0);
    bd->a = bd->b = 0;
    unsigned self_kill = run % 2 ? 1 + rnd(&s) % 50 : 0;
    conc_process_t holder, waiter;
    start(&holder, hold_and_work, &self_kill);
    start(&waiter, wait_repair_once, NULL);
    if (self_kill)
      conc_process_join(&holder, 5.0);
    else
      conc_sleep((rnd(&s) % 3000) * 1e-6);
    kill_and_reap(&holder);
    assert_int_equal(join_code(&waiter), 0);
    assert_int_equal(take_and_repair(), 0);
    assert_int_equal(bd->a, bd->b);
    assert_int_equal(conc_lock_release(&bd->lock), 0);
    assert_int_equal(conc_lock_destroy(&bd->lock), 0);
  }
}

/* ---- blocked pshared waiters -------------------------------------------- */

static int block_on_lock(void *arg, void **result) {
  (void)arg;
  if (conc_lock_acquire(&bd->lock))
    conc_process_exit(2);
  return 0;
}

static int block_on_sem(void *arg, void **result) {
  (void)arg;
  if (conc_semaphore_acquire(&bd->sem))
    conc_process_exit(2);
  return 0;
}

static int block_on_event(void *arg, void **result) {
  (void)arg;
  if (conc_event_wait(&bd->ev, CONC_FOREVER))
    conc_process_exit(2);
  return 0;
}

/* Waiters on a Lock, a Semaphore and an Event killed at a random instant
 * (before, while or after they fall asleep) leave nothing behind: a live
 * waiter started afterwards is woken, and destroy finds nobody waiting. */
static void pshared_waiters_killed_leave_no_trace(void **state) {
  (void)state;
  arm_watchdog(__func__);
  conc_fn_t fns[3] = {block_on_lock, block_on_sem, block_on_event};
  uint32_t s = seed0() ^ 0x9u;
  for (int run = 0; run < runs(); run++) {
    assert_int_equal(
        conc_lock_init(&bd->lock, &(conc_lock_opts_t){.pshared = true}), 0);
    assert_int_equal(
        conc_semaphore_init(&bd->sem, 0,
                            &(conc_semaphore_opts_t){.pshared = true}),
        0);
    assert_int_equal(
        conc_event_init(&bd->ev, &(conc_event_opts_t){.pshared = true}), 0);
    assert_int_equal(conc_lock_acquire(&bd->lock), 0);
    conc_process_t dead[3], live[3];
    for (int i = 0; i < 3; i++)
      start(&dead[i], fns[i], NULL);
    conc_sleep((rnd(&s) % 4000) * 1e-6);
    for (int i = 0; i < 3; i++)
      kill_and_reap(&dead[i]);
    for (int i = 0; i < 3; i++)
      start(&live[i], fns[i], NULL);
    assert_int_equal(conc_lock_release(&bd->lock), 0);
    assert_int_equal(conc_semaphore_release(&bd->sem, 1), 0);
    assert_int_equal(conc_event_set(&bd->ev), 0);
    for (int i = 0; i < 3; i++)
      assert_int_equal(join_code(&live[i]), 0);
    /* the live lock waiter exited holding the lock: its death is seen */
    assert_int_equal(conc_lock_acquire(&bd->lock), CONC_EOWNERDEAD);
    assert_int_equal(conc_lock_mark_consistent(&bd->lock), 0);
    assert_int_equal(conc_lock_release(&bd->lock), 0);
    assert_int_equal(conc_lock_destroy(&bd->lock), 0);
    assert_int_equal(conc_semaphore_get_value(&bd->sem), 0);
    assert_int_equal(conc_semaphore_destroy(&bd->sem), 0);
    assert_int_equal(conc_event_destroy(&bd->ev), 0);
  }
}

/* ---- Barrier ------------------------------------------------------------- */

static int barrier_party(void *arg, void **result) {
  (void)arg;
  if (conc_barrier_wait(&bd->bar, CONC_FOREVER) != CONC_EBROKEN)
    conc_process_exit(2);
  return 0;
}

static int barrier_pass(void *arg, void **result) {
  (void)arg;
  if (conc_barrier_wait(&bd->bar, CONC_FOREVER) < 0)
    conc_process_exit(2);
  return 0;
}

/* A party killed while it waits at a pshared Barrier (4 parties, 3 come):
 * the two live parties get CONC_EBROKEN, and after reset the barrier
 * serves a full cycle again. */
static void barrier_party_killed_breaks_the_barrier(void **state) {
  (void)state;
  arm_watchdog(__func__);
  uint32_t s = seed0() ^ 0x5u;
  for (int run = 0; run < runs(); run++) {
    assert_int_equal(
        conc_barrier_init(&bd->bar, 4, &(conc_barrier_opts_t){.pshared = true}),
        0);
    conc_process_t p[3];
    for (int i = 0; i < 3; i++)
      start(&p[i], barrier_party, NULL);
    while (conc_barrier_n_waiting(&bd->bar) < 3)
      conc_sleep(0.0002);
    conc_sleep((rnd(&s) % 2000) * 1e-6);
    int v = (int)(rnd(&s) % 3);
    kill_and_reap(&p[v]);
    for (int i = 0; i < 3; i++)
      if (i != v)
        assert_int_equal(join_code(&p[i]), 0);
    assert_int_equal(conc_barrier_reset(&bd->bar), 0);
    for (int i = 0; i < 3; i++)
      start(&p[i], barrier_pass, NULL);
    assert_true(conc_barrier_wait(&bd->bar, 10.0) >= 0);
    for (int i = 0; i < 3; i++)
      assert_int_equal(join_code(&p[i]), 0);
    assert_int_equal(conc_barrier_destroy(&bd->bar), 0);
  }
}

/* ---- named segments of a killed program --------------------------------- */

static bool shm_exists(const char *name) {
  char path[CONC_SHM_NAME_MAX + 16];
  struct stat st;
  snprintf(path, sizeof path, "/dev/shm/%s", name[0] == '/' ? name + 1 : name);
  return stat(path, &st) == 0;
}

static void note_segment(int slot) {
  static conc_shm_t shm[NAMES];
  if (conc_shm_init(&shm[slot], NULL, true, 4096))
    _exit(2);
  strncpy(bd->names[slot], conc_shm_name(&shm[slot]), CONC_SHM_NAME_MAX);
}

static int child_makes_segments(void *arg, void **result) {
  (void)arg;
  note_segment(2);
  note_segment(3);
  __atomic_store_n(&bd->stop, 1, __ATOMIC_RELEASE);
  for (;;)
    pause();
  return 0;
}

/* The "program" run by main for --segments: makes two named segments,
 * starts a child that makes two more, and waits to be killed. */
static int segments_program(void) {
  note_segment(0);
  note_segment(1);
  conc_process_t p;
  if (conc_process_init(&p, child_makes_segments, NULL,
                        &(conc_process_opts_t){.die_with_parent = true}) ||
      conc_process_start(&p))
    return 2;
  for (;;)
    pause();
  return 0;
}

static char self_exe[4096];

/* A whole program (a fresh exec, so it has its own tracker) and its child
 * are killed with SIGKILL at a random instant after they made named
 * segments: once both are gone, none of the four names is left in
 * /dev/shm. */
static void killed_program_leaves_nothing_in_dev_shm(void **state) {
  (void)state;
  arm_watchdog(__func__);
  uint32_t s = seed0() ^ 0x11u;
  int n = runs() < 10 ? runs() : 10 + (runs() - 10) / 10;
  for (int run = 0; run < n; run++) {
    memset(bd->names, 0, sizeof bd->names);
    __atomic_store_n(&bd->stop, 0, __ATOMIC_RELEASE);
    char fd[32];
    snprintf(fd, sizeof fd, "%d", board_fd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      execl(self_exe, self_exe, "--segments", fd, (char *)NULL);
      _exit(127);
    }
    double end = conc_monotonic() + 10.0;
    while (!__atomic_load_n(&bd->stop, __ATOMIC_ACQUIRE) &&
           conc_monotonic() < end)
      conc_sleep(0.0005);
    conc_sleep((rnd(&s) % 2000) * 1e-6);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    faults++;
    assert_true(__atomic_load_n(&bd->stop, __ATOMIC_ACQUIRE));
    for (int i = 0; i < NAMES; i++) {
      assert_true(bd->names[i][0] != 0);
      while (shm_exists(bd->names[i])) {
        if (conc_monotonic() > end)
          fail_msg("%s is left in /dev/shm", bd->names[i]);
        conc_sleep(0.001);
      }
    }
  }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--segments") == 0) {
    bd = map_board(atoi(argv[2]));
    return bd ? segments_program() : 2;
  }
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0)
    return 2;
  self_exe[n] = 0;
  const struct CMUnitTest tests[] = {
      T(pool_worker_killed_fails_only_its_task),
      T(pqueue_consumer_killed_loses_and_duplicates_nothing),
      T(pqueue_producer_killed_strands_and_loses_nothing),
      T(pshared_lock_holder_killed_hands_the_lock_on),
      T(pshared_waiters_killed_leave_no_trace),
      T(barrier_party_killed_breaks_the_barrier),
      T(killed_program_leaves_nothing_in_dev_shm),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  printf("stress_faults: %ld processes killed, %d runs per scenario\n", faults,
         runs());
  fflush(NULL);
  if (failed)
    _exit(1);
  return 0;
}
