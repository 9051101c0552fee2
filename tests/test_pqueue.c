/*
 * Process Queue / JoinableQueue / SimpleQueue (spec Q1-Q6, Q8 done better,
 * F5 for queues). Every test arms a watchdog and reaps its children.
 */
#include "proc_harness.h"

#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/pqueue.h"
#include "conc/process.h"
#include "pqueue-int.h"

static conc_pqueue_t q;

/* What the processes of a crash test share: a kill-once flag and the
 * items a consumer stored, each with its id and a checksum. */
struct rec {
  uint64_t id, sum;
};
#define BOARD_RECS 512
struct board {
  int fired;
  uint32_t n; /* records stored in got[] */
  struct rec got[BOARD_RECS];
};
static struct board *bd;

static int setup(void **state) {
  (void)state;
  alarm(30);
  bd = mmap(NULL, sizeof *bd, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return bd == MAP_FAILED ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  alarm(0);
  munmap(bd, sizeof *bd);
  return 0;
}

static void put_int(int v) {
  assert_int_equal(conc_pqueue_put(&q, &v, sizeof v, true, CONC_FOREVER), 0);
}

static int get_int(void) {
  int v = -1;
  size_t n;
  assert_int_equal(conc_pqueue_get_into(&q, &v, sizeof v, &n, true, 5.0), 0);
  assert_int_equal(n, sizeof v);
  return v;
}

/* Q1 */
static void full_queue_put_fails_at_once_or_after_timeout(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 2, NULL), 0);
  put_int(1);
  put_int(2);
  assert_true(conc_pqueue_full(&q));
  double t0 = conc_monotonic();
  assert_int_equal(conc_pqueue_put_nowait(&q, "x", 1), CONC_EFULL);
  assert_int_equal(conc_pqueue_put(&q, "x", 1, false, 5.0), CONC_EFULL);
  assert_int_equal(conc_pqueue_put(&q, "x", 1, true, -1.5), CONC_EFULL);
  assert_quick(conc_monotonic() - t0);
  t0 = conc_monotonic();
  assert_int_equal(conc_pqueue_put(&q, "x", 1, true, 0.2), CONC_EFULL);
  assert_elapsed(conc_monotonic() - t0, 0.2);
  assert_int_equal(conc_pqueue_put(&q, "x", 1, true, NAN), CONC_EINVAL);
  assert_int_equal(conc_pqueue_qsize(&q), 2);
  conc_pqueue_destroy(&q);
}

/* Q2 */
static void empty_queue_get_fails_at_once_or_after_timeout(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  void *m;
  size_t n;
  double t0 = conc_monotonic();
  assert_int_equal(conc_pqueue_get_nowait(&q, &m, &n), CONC_EEMPTY);
  assert_int_equal(conc_pqueue_get(&q, &m, &n, false, 0.5), CONC_EEMPTY);
  assert_quick(conc_monotonic() - t0);
  t0 = conc_monotonic();
  assert_int_equal(conc_pqueue_get(&q, &m, &n, true, 0.2), CONC_EEMPTY);
  assert_elapsed(conc_monotonic() - t0, 0.2);
  assert_true(conc_pqueue_empty(&q));
  conc_pqueue_destroy(&q);
}

/* Q3 */
static int put_three(void *arg, void **result) {
  (void)arg;
  for (int k = 0; k < 3; k++)
    put_int(k);
  return 0;
}

static void sizes_are_right_across_processes(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 3, NULL), 0);
  assert_true(conc_pqueue_empty(&q));
  assert_false(conc_pqueue_full(&q));
  conc_process_t p;
  start(&p, put_three, NULL);
  assert_int_equal(finish(&p), 0);
  assert_int_equal(conc_pqueue_qsize(&q), 3);
  assert_false(conc_pqueue_empty(&q));
  assert_true(conc_pqueue_full(&q));
  get_int();
  assert_int_equal(conc_pqueue_qsize(&q), 2);
  assert_false(conc_pqueue_full(&q));
  conc_pqueue_destroy(&q);
}

/* Q4 */
static int echo_in_order(void *arg, void **result) {
  (void)arg;
  for (int k = 0; k < 5; k++)
    if (get_int() != k)
      conc_process_exit(2);
  for (int k = 5; k < 10; k++)
    put_int(k);
  return 0;
}

static void fifo_across_processes_and_fork(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  for (int k = 0; k < 5; k++)
    put_int(k); /* already in the queue when the child forks */
  conc_process_t p;
  start(&p, echo_in_order, NULL);
  assert_int_equal(finish(&p), 0);
  for (int k = 5; k < 10; k++)
    assert_int_equal(get_int(), k);
  conc_pqueue_destroy(&q);
}

static int produce_tagged(void *arg, void **result) {
  int id = *(int *)arg;
  for (int k = 0; k < 2000; k++) {
    int v = id * 100000 + k;
    if (conc_pqueue_put(&q, &v, sizeof v, true, CONC_FOREVER))
      conc_process_exit(2);
  }
  return 0;
}

static void producers_keep_their_order_through_a_small_queue(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 8, NULL), 0);
  int ids[2] = {1, 2};
  conc_process_t p[2];
  for (int k = 0; k < 2; k++)
    start(&p[k], produce_tagged, &ids[k]);
  int last[3] = {-1, -1, -1};
  for (int k = 0; k < 4000; k++) {
    int v = get_int(), id = v / 100000, seq = v % 100000;
    assert_true(id == 1 || id == 2);
    assert_int_equal(seq, last[id] + 1);
    last[id] = seq;
  }
  for (int k = 0; k < 2; k++)
    assert_int_equal(finish(&p[k]), 0);
  assert_true(conc_pqueue_empty(&q));
  conc_pqueue_destroy(&q);
}

/* Q5 */
static int work_off(void *arg, void **result) {
  (void)arg;
  for (int k = 0; k < 3; k++) {
    get_int();
    conc_sleep(0.02);
    conc_pqueue_task_done(&q);
  }
  return 0;
}

static void joinable_queue_join_waits_for_task_done(void **state) {
  (void)state;
  assert_int_equal(
      conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.joinable = true}), 0);
  assert_int_equal(conc_pqueue_join(&q, 0), 0);
  for (int k = 0; k < 3; k++)
    put_int(k);
  double t0 = conc_monotonic();
  assert_int_equal(conc_pqueue_join(&q, 0.1), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.1);
  conc_process_t p;
  start(&p, work_off, NULL);
  assert_int_equal(conc_pqueue_join(&q, CONC_FOREVER), 0);
  assert_true(conc_pqueue_empty(&q));
  assert_int_equal(finish(&p), 0);
  assert_int_equal(conc_pqueue_task_done(&q),
                   CONC_ETASKDONE); /* one too many */
  conc_pqueue_destroy(&q);
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  assert_int_equal(conc_pqueue_task_done(&q), CONC_ENOTJOINABLE);
  conc_pqueue_destroy(&q);
}

/* Q6 */
static int get_from_own_handle(void *arg, void **result) {
  (void)arg;
  if (get_int() != 42)
    conc_process_exit(2);
  return 0;
}

static void closed_handles_refuse_put_and_get(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  put_int(42);
  conc_pqueue_t mine = q;
  assert_int_equal(conc_pqueue_close(&mine), 0);
  void *m;
  size_t n;
  assert_int_equal(conc_pqueue_put(&mine, "x", 1, true, 0), CONC_ECLOSED);
  assert_int_equal(conc_pqueue_get(&mine, &m, &n, true, 0), CONC_ECLOSED);
  assert_int_equal(conc_pqueue_close(&mine), 0);
  conc_process_t p; /* the child's handle (q) is still open */
  start(&p, get_from_own_handle, NULL);
  assert_int_equal(finish(&p), 0);
  conc_pqueue_destroy(&q);
  conc_psimple_queue_t s;
  assert_int_equal(conc_psimple_queue_init(&s), 0);
  assert_true(conc_psimple_queue_empty(&s));
  assert_int_equal(conc_psimple_queue_put(&s, "abc", 3), 0);
  assert_int_equal(conc_psimple_queue_get(&s, &m, &n), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(m, "abc", 3);
  free(m);
  assert_int_equal(conc_psimple_queue_close(&s), 0);
  assert_int_equal(conc_psimple_queue_close(&s), 0);
  assert_int_equal(conc_psimple_queue_put(&s, "x", 1), CONC_ECLOSED);
  conc_psimple_queue_destroy(&s);
}

/* Q8, done better: a producer that exits before anyone reads is joined at
 * once, whatever the item sizes. */
static int put_a_lot_and_leave(void *arg, void **result) {
  (void)arg;
  static char chunk[64 * 1024];
  for (int k = 0; k < 32; k++) {
    memset(chunk, k, sizeof chunk);
    if (conc_pqueue_put(&q, chunk, sizeof chunk, false, 0))
      conc_process_exit(2);
  }
  return 0;
}

static void exiting_producer_never_deadlocks_its_join(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  conc_process_t p;
  start(&p, put_a_lot_and_leave, NULL);
  assert_int_equal(conc_process_join(&p, 5.0), 0);
  int code;
  conc_process_exitcode(&p, &code);
  assert_int_equal(code, 0);
  conc_process_destroy(&p);
  assert_int_equal(conc_pqueue_qsize(&q), 32);
  for (int k = 0; k < 32; k++) {
    void *m;
    size_t n;
    assert_int_equal(conc_pqueue_get(&q, &m, &n, false, 0), 0);
    assert_int_equal(n, 64 * 1024);
    assert_int_equal(((unsigned char *)m)[n - 1], k);
    free(m);
  }
  conc_pqueue_destroy(&q);
}

static int put_after(void *arg, void **result) {
  conc_sleep(*(double *)arg);
  put_int(5);
  return 0;
}

static void blocked_get_wakes_on_put_elsewhere(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  double delay = 0.1;
  conc_process_t p;
  start(&p, put_after, &delay);
  double t0 = conc_monotonic();
  assert_int_equal(get_int(), 5);
  assert_elapsed(conc_monotonic() - t0, 0.1 - 0.02);
  assert_int_equal(finish(&p), 0);
  conc_pqueue_destroy(&q);
}

/* Sizes: wrap-around, too-short buffers, oversized items. */
static void ring_wraps_and_sizes_are_checked(void **state) {
  (void)state;
  assert_int_equal(
      conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.capacity = 512}), 0);
  unsigned char buf[200], out[200], big[600] = {0};
  size_t need;
  for (int k = 0; k < 500; k++) {
    size_t n = (size_t)(k * 37) % 120;
    memset(buf, k, n);
    assert_int_equal(conc_pqueue_put(&q, buf, n, false, 0), 0);
    if (k % 2) {
      size_t got;
      assert_int_equal(
          conc_pqueue_get_into(&q, out, sizeof out, &got, false, 0), 0);
      assert_int_equal(
          conc_pqueue_get_into(&q, out, sizeof out, &got, false, 0), 0);
      for (size_t i = 0; i < got; i++)
        assert_int_equal(out[i], (unsigned char)k);
    }
  }
  assert_int_equal(conc_pqueue_put(&q, buf, 0, false, 0), 0);
  assert_int_equal(conc_pqueue_get_into(&q, out, 0, &need, false, 0), 0);
  assert_int_equal(conc_pqueue_put(&q, big, 505, false, 0), CONC_EMSGSIZE);
  assert_int_equal(conc_pqueue_put(&q, "0123456789", 10, false, 0), 0);
  assert_int_equal(conc_pqueue_get_into(&q, out, 4, &need, false, 0),
                   CONC_ETOOSHORT);
  assert_int_equal(need, 10);
  assert_int_equal(conc_pqueue_qsize(&q), 1); /* the item stayed */
  assert_int_equal(conc_pqueue_get_into(&q, out, sizeof out, &need, false, 0),
                   0);
  assert_memory_equal(out, "0123456789", 10);
  assert_int_equal(conc_pqueue_put(NULL, "x", 1, false, 0), CONC_EINVAL);
  assert_int_equal(
      conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.capacity = 8}),
      CONC_EINVAL);
  conc_pqueue_destroy(&q);
}

/* Issue 10 fuzzing: a header in the shared ring that no put wrote (a peer
 * wrote over it) is refused with CONC_ENOTRECOVERABLE, nothing taken; it
 * was followed, copying a megabyte from past the ring's end. */
static void hostile_header_in_the_ring_is_refused(void **state) {
  (void)state;
  assert_int_equal(
      conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.capacity = 512}), 0);
  assert_int_equal(conc_pqueue_put(&q, "abc", 3, false, 0), 0);
  uint64_t cap, head, tail;
  unsigned char *ring = conc__pqueue_ring(&q, &cap, &head, &tail);
  uint64_t hostile[] = {(uint64_t)1 << 20, 504, 0xffffffffu, UINT64_MAX};
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    memcpy(ring + head % cap, &hostile[i], 8);
    void *m = NULL;
    size_t n = 0;
    assert_int_equal(conc_pqueue_get(&q, &m, &n, false, 0),
                     CONC_ENOTRECOVERABLE);
    assert_null(m);
    assert_int_equal(conc_pqueue_qsize(&q), 1);
  }
  uint64_t three = 3;
  memcpy(ring + head % cap, &three, 8);
  char out[8];
  size_t n;
  assert_int_equal(conc_pqueue_get_into(&q, out, sizeof out, &n, false, 0), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(out, "abc", 3);
  conc_pqueue_destroy(&q);
}

/* F5: processes killed inside put / get / task_done / a wait. A child arms
 * the queue's hook to SIGKILL itself at a named point; with `once` only the
 * first process of the test to get there dies. */
struct kill_plan {
  enum conc__pq_point at;
  unsigned after; /* points of that kind passed first */
  bool once;
};
static struct kill_plan plan;

static void killer(enum conc__pq_point point) {
  if (point != plan.at || plan.after-- > 0)
    return;
  if (plan.once && __atomic_exchange_n(&bd->fired, 1, __ATOMIC_SEQ_CST))
    return;
  raise(SIGKILL);
}

static void arm(const void *arg) {
  plan = *(const struct kill_plan *)arg;
  conc__pqueue_hook = killer;
}

static int put_99_armed(void *arg, void **result) {
  arm(arg);
  put_int(99);
  return 0;
}

static int get_armed(void *arg, void **result) {
  arm(arg);
  int v = -1;
  size_t n;
  if (conc_pqueue_get_into(&q, &v, sizeof v, &n, true, CONC_FOREVER))
    conc_process_exit(2);
  return 0;
}

static int put_armed(void *arg, void **result) {
  arm(arg);
  put_int(8);
  return 0;
}

static int get_and_done_armed(void *arg, void **result) {
  arm(arg);
  get_int();
  conc_pqueue_task_done(&q);
  return 0;
}

static int join_queue(void *arg, void **result) {
  (void)arg;
  if (conc_pqueue_join(&q, CONC_FOREVER))
    conc_process_exit(2);
  return 0;
}

static int get_5(void *arg, void **result) {
  (void)arg;
  if (get_int() != 5)
    conc_process_exit(2);
  return 0;
}

static void await_sleepers(enum conc__pq_sleep in, unsigned n) {
  while (conc__pqueue_sleepers(&q, in) < n)
    conc_sleep(0.001);
}

/* The child's exit code; a child still blocked after t seconds is killed
 * and reaped, and the test fails. */
static int finish_within(conc_process_t *p, double t) {
  if (conc_process_join(p, t) == CONC_ETIMEDOUT) {
    conc_process_kill(p);
    finish(p);
    fail_msg("a sleeper is still blocked %.1f s after its peer died", t);
  }
  return finish(p);
}

static void killed_mid_put_or_get_is_rolled_back(void **state) {
  (void)state;
  assert_int_equal(
      conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.joinable = true}), 0);
  put_int(1);
  put_int(2);
  conc_process_t p;
  start(&p, put_99_armed, &(struct kill_plan){.at = CONC__PQ_PUT_WRITTEN});
  assert_int_equal(finish(&p), -SIGKILL);
  assert_int_equal(conc_pqueue_qsize(&q), 2);
  assert_int_equal(get_int(), 1); /* the lock recovers; 99 never appeared */
  start(&p, get_armed, &(struct kill_plan){.at = CONC__PQ_GET_READ});
  assert_int_equal(finish(&p), -SIGKILL);
  assert_int_equal(conc_pqueue_qsize(&q), 1); /* the dead get took nothing */
  assert_int_equal(get_int(), 2);
  assert_true(conc_pqueue_empty(&q));
  put_int(3);
  assert_int_equal(get_int(), 3);
  for (int k = 0; k < 3; k++)
    assert_int_equal(conc_pqueue_task_done(&q), 0);
  assert_int_equal(conc_pqueue_join(&q, 0), 0);
  conc_pqueue_destroy(&q);
}

static void
producer_killed_after_its_put_committed_still_wakes_the_getter(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  conc_process_t getter, producer;
  start(&getter, get_armed, &(struct kill_plan){0});
  await_sleepers(CONC__PQ_IN_GET, 1);
  start(&producer, put_99_armed,
        &(struct kill_plan){.at = CONC__PQ_PUT_RETURNING});
  assert_int_equal(finish(&producer), -SIGKILL);
  assert_int_equal(finish_within(&getter, 2.0), 0);
  assert_true(conc_pqueue_empty(&q));
  conc_pqueue_destroy(&q);
}

static void
consumer_killed_before_its_get_committed_leaves_the_item(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 1, NULL), 0);
  put_int(7);
  conc_process_t putter, consumer;
  start(&putter, put_armed, &(struct kill_plan){0});
  await_sleepers(CONC__PQ_IN_PUT, 1);
  /* dies with the item removed and the putter woken, but uncommitted */
  start(&consumer, get_armed, &(struct kill_plan){.at = CONC__PQ_GET_WOKE});
  assert_int_equal(finish(&consumer), -SIGKILL);
  assert_int_equal(conc_pqueue_qsize(&q), 1);
  assert_int_equal(get_int(), 7); /* still first, and now it makes room */
  assert_int_equal(finish_within(&putter, 2.0), 0);
  assert_int_equal(get_int(), 8);
  assert_true(conc_pqueue_empty(&q));
  conc_pqueue_destroy(&q);
}

static void putter_on_a_full_queue_wakes_when_its_getter_dies(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 1, NULL), 0);
  put_int(7);
  conc_process_t putter, consumer;
  start(&putter, put_armed, &(struct kill_plan){0});
  await_sleepers(CONC__PQ_IN_PUT, 1);
  /* dies holding the item it got: the queue has room */
  start(&consumer, get_armed,
        &(struct kill_plan){.at = CONC__PQ_GET_RETURNING});
  assert_int_equal(finish(&consumer), -SIGKILL);
  assert_int_equal(finish_within(&putter, 2.0), 0);
  assert_int_equal(get_int(), 8);
  conc_pqueue_destroy(&q);
}

/* Two sleepers, one wake-up: whichever is woken dies before it takes the
 * lock; the other must still get there. */
static void two_sleepers_one_dies_woken(conc_fn_t fn, enum conc__pq_sleep in,
                                        void (*wake_one)(void)) {
  static struct kill_plan woken_once = {.at = CONC__PQ_WOKEN, .once = true};
  conc_process_t p[2];
  for (int k = 0; k < 2; k++)
    start(&p[k], fn, &woken_once);
  await_sleepers(in, 2);
  wake_one();
  int codes[2];
  for (int k = 0; k < 2; k++)
    codes[k] = finish_within(&p[k], 3.0);
  assert_int_equal(codes[0] + codes[1], -SIGKILL); /* one killed, one 0 */
  assert_true(codes[0] == 0 || codes[1] == 0);
  assert_int_equal(bd->fired, 1);
}

static int get_5_woken_once(void *arg, void **result) {
  arm(arg);
  return get_5(NULL, result);
}

static void put_5(void) { put_int(5); }

static void
woken_getter_killed_before_the_lock_passes_its_wakeup_on(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  two_sleepers_one_dies_woken(get_5_woken_once, CONC__PQ_IN_GET, put_5);
  assert_true(conc_pqueue_empty(&q));
  conc_pqueue_destroy(&q);
}

static void get_one(void) { get_int(); }

static void
woken_putter_killed_before_the_lock_passes_its_wakeup_on(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 1, NULL), 0);
  put_int(7);
  two_sleepers_one_dies_woken(put_armed, CONC__PQ_IN_PUT, get_one);
  assert_int_equal(get_int(), 8);
  assert_true(conc_pqueue_empty(&q));
  conc_pqueue_destroy(&q);
}

static void
join_wakes_when_the_last_task_done_dies_after_committing(void **state) {
  (void)state;
  assert_int_equal(
      conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.joinable = true}), 0);
  put_int(1);
  conc_process_t joiner, worker;
  start(&joiner, join_queue, NULL);
  await_sleepers(CONC__PQ_IN_JOIN, 1);
  start(&worker, get_and_done_armed,
        &(struct kill_plan){.at = CONC__PQ_DONE_RETURNING});
  assert_int_equal(finish(&worker), -SIGKILL);
  assert_int_equal(finish_within(&joiner, 2.0), 0);
  assert_int_equal(conc_pqueue_join(&q, 0), 0);
  conc_pqueue_destroy(&q);
}

/* A getter killed asleep stays counted as a sleeper, but once its sleep
 * would have ended (one 20 ms slice) a put no longer pays a wake-up for
 * it. */
static int wake_calls;

static void count_wakes(enum conc__pq_point point) {
  wake_calls += point == CONC__PQ_WAKING;
}

static void getter_killed_asleep_costs_later_puts_no_wakeup(void **state) {
  (void)state;
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  conc_process_t getter;
  start(&getter, get_armed, &(struct kill_plan){0});
  await_sleepers(CONC__PQ_IN_GET, 1);
  conc_process_kill(&getter);
  assert_int_equal(finish(&getter), -SIGKILL);
  conc_sleep(0.025); /* past the end of the dead getter's sleep */
  wake_calls = 0;
  conc__pqueue_hook = count_wakes;
  for (int k = 0; k < 100; k++) {
    put_int(k);
    assert_int_equal(get_int(), k);
  }
  conc__pqueue_hook = NULL;
  assert_int_equal(wake_calls, 0);
  conc_pqueue_destroy(&q);
}

/* Randomized: consumers killed at random instants, or by the hook at a
 * random point of a random get, while they store what they get in shared
 * memory. get_into copies the item out before the get commits, so after
 * each kill every item taken from the queue is in bd->got: no item may be
 * lost or delivered twice, and each keeps its checksum. */
static uint64_t sum_of(uint64_t id) {
  return (id + 1) * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995ull;
}

static int consume_onto_board(void *arg, void **result) {
  if (arg)
    arm(arg);
  for (uint32_t i = 0; i < BOARD_RECS; i++) {
    size_t n;
    if (conc_pqueue_get_into(&q, &bd->got[i], sizeof bd->got[i], &n, true,
                             CONC_FOREVER))
      conc_process_exit(2);
    __atomic_store_n(&bd->n, i + 1, __ATOMIC_RELEASE);
  }
  return 0;
}

static uint32_t rnd_next(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

/* Checks what one killed consumer took; returns how many items. */
static uint64_t check_taken(uint64_t next, uint64_t queued) {
  uint64_t left = (uint64_t)conc_pqueue_qsize(&q), taken = queued - left;
  uint32_t stored = __atomic_load_n(&bd->n, __ATOMIC_ACQUIRE);
  assert_true(left <= queued);
  /* one more than stored: killed after its get committed */
  assert_true(taken == stored || taken == stored + 1);
  for (uint64_t i = 0; i < taken; i++) {
    assert_int_equal(bd->got[i].id, next + i);
    assert_int_equal(bd->got[i].sum, sum_of(next + i));
  }
  return taken;
}

static void
consumers_killed_at_random_lose_and_duplicate_no_item(void **state) {
  (void)state;
  static const enum conc__pq_point points[] = {
      CONC__PQ_GET_READ, CONC__PQ_GET_WOKE, CONC__PQ_GET_RETURNING};
  /* a small ring: it wraps every few rounds */
  assert_int_equal(
      conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.capacity = 4096}), 0);
  uint32_t seed = 12345;
  uint64_t next = 0, total = 0;
  for (int round = 0; round < 200; round++) {
    for (; total - next < 128; total++) {
      struct rec r = {total, sum_of(total)};
      assert_int_equal(conc_pqueue_put(&q, &r, sizeof r, true, 1.0), 0);
    }
    __atomic_store_n(&bd->n, 0, __ATOMIC_RELEASE);
    memset(bd->got, 0xff, sizeof bd->got);
    struct kill_plan kp = {.at = points[rnd_next(&seed) % 3],
                           .after = rnd_next(&seed) % 16};
    bool hooked = round % 2;
    conc_process_t p;
    start(&p, consume_onto_board, hooked ? &kp : NULL);
    if (!hooked) {
      conc_sleep((rnd_next(&seed) % 1500) * 1e-6);
      conc_process_kill(&p);
    }
    assert_int_equal(finish(&p), -SIGKILL);
    next += check_taken(next, total - next);
  }
  struct rec r;
  size_t n;
  for (; next < total; next++) {
    assert_int_equal(conc_pqueue_get_into(&q, &r, sizeof r, &n, false, 0), 0);
    assert_int_equal(r.id, next);
    assert_int_equal(r.sum, sum_of(next));
  }
  assert_true(conc_pqueue_empty(&q));
  conc_pqueue_destroy(&q);
}

/* Randomized: producers killed at random instants, or by the hook at a
 * random point of a random put, while one getter takes everything. The getter must never sleep while a committed
 * item waits, and must see each producer's items in order with no gap or
 * repeat: a put is there whole or not at all. */
#define ROUND_IDS 1000000u

static int check_rounds(void *arg, void **result) {
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
    bool same = any && r.id / ROUND_IDS == round;
    if (same ? r.id != last + 1
             : r.id % ROUND_IDS != 0 || r.id / ROUND_IDS < round)
      conc_process_exit(3);
    round = r.id / ROUND_IDS;
    last = r.id;
    any = true;
  }
}

static int produce_round(void *arg, void **result) {
  const struct kill_plan *kp = arg;
  arm(kp);
  for (uint64_t id = bd->n * (uint64_t)ROUND_IDS;; id++) {
    struct rec r = {id, sum_of(id)};
    conc_pqueue_put(&q, &r, sizeof r, true, CONC_FOREVER);
  }
  return 0;
}

static void await_drained(conc_process_t *getter) {
  double end = conc_monotonic() + 2.0;
  while (conc_pqueue_qsize(&q) > 0) {
    if (conc_monotonic() > end) {
      conc_process_kill(getter);
      finish(getter);
      fail_msg("the getter sleeps while the queue holds %d item(s)",
               conc_pqueue_qsize(&q));
    }
    conc_sleep(0.0002);
  }
}

static void producers_killed_at_random_strand_no_getter(void **state) {
  (void)state;
  static const enum conc__pq_point points[] = {
      CONC__PQ_PUT_WRITTEN, CONC__PQ_PUT_WOKE, CONC__PQ_PUT_RETURNING};
  assert_int_equal(conc_pqueue_init(&q, 4, NULL), 0);
  conc_process_t getter;
  start(&getter, check_rounds, NULL);
  uint32_t seed = 54321;
  for (uint32_t round = 0; round < 200; round++) {
    bd->n = round; /* the producer's ids start at round * ROUND_IDS */
    bool hooked = round % 2;
    struct kill_plan kp = {.at = hooked ? points[rnd_next(&seed) % 3] : 0,
                           .after = rnd_next(&seed) % 16};
    conc_process_t p;
    start(&p, produce_round, &kp);
    if (hooked)
      conc_process_join(&p, 2.0); /* it kills itself at its point */
    else
      conc_sleep((rnd_next(&seed) % 1500) * 1e-6);
    conc_process_kill(&p);
    assert_int_equal(finish(&p), -SIGKILL);
    await_drained(&getter);
  }
  struct rec end = {UINT64_MAX, sum_of(UINT64_MAX)};
  assert_int_equal(conc_pqueue_put(&q, &end, sizeof end, true, 1.0), 0);
  assert_int_equal(finish_within(&getter, 2.0), 0);
  conc_pqueue_destroy(&q);
}

static int produce_varied(void *arg, void **result) {
  (void)arg;
  unsigned char buf[3000];
  for (uint32_t k = 0;; k++) {
    size_t n = 8 + (k * 131) % 2900;
    memcpy(buf, &k, 4);
    memcpy(buf + 4, &n, 4);
    memset(buf + 8, (int)(k & 0xff), n - 8);
    conc_pqueue_put(&q, buf, n, true, CONC_FOREVER);
  }
  return 0;
}

static void producers_killed_at_random_leave_whole_items(void **state) {
  (void)state;
  assert_int_equal(
      conc_pqueue_init(&q, 0, &(conc_pqueue_opts_t){.capacity = 64 * 1024}), 0);
  for (int round = 0; round < 8; round++) {
    conc_process_t p;
    start(&p, produce_varied, NULL);
    conc_sleep(0.003 + 0.002 * round);
    conc_process_kill(&p);
    finish(&p);
    void *m;
    size_t n;
    while (conc_pqueue_get(&q, &m, &n, false, 0) == 0) {
      uint32_t k, len;
      memcpy(&k, m, 4);
      memcpy(&len, (char *)m + 4, 4);
      assert_int_equal(len, n);
      for (size_t i = 8; i < n; i++)
        assert_int_equal(((unsigned char *)m)[i], k & 0xff);
      free(m);
    }
  }
  put_int(7);
  assert_int_equal(get_int(), 7);
  conc_pqueue_destroy(&q);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
CONC_TEST_MAIN(
    T(full_queue_put_fails_at_once_or_after_timeout),
    T(empty_queue_get_fails_at_once_or_after_timeout),
    T(sizes_are_right_across_processes), T(fifo_across_processes_and_fork),
    T(producers_keep_their_order_through_a_small_queue),
    T(joinable_queue_join_waits_for_task_done),
    T(closed_handles_refuse_put_and_get),
    T(exiting_producer_never_deadlocks_its_join),
    T(blocked_get_wakes_on_put_elsewhere), T(ring_wraps_and_sizes_are_checked),
    T(hostile_header_in_the_ring_is_refused),
    T(killed_mid_put_or_get_is_rolled_back),
    T(producer_killed_after_its_put_committed_still_wakes_the_getter),
    T(consumer_killed_before_its_get_committed_leaves_the_item),
    T(putter_on_a_full_queue_wakes_when_its_getter_dies),
    T(woken_getter_killed_before_the_lock_passes_its_wakeup_on),
    T(woken_putter_killed_before_the_lock_passes_its_wakeup_on),
    T(join_wakes_when_the_last_task_done_dies_after_committing),
    T(getter_killed_asleep_costs_later_puts_no_wakeup),
    T(consumers_killed_at_random_lose_and_duplicate_no_item),
    T(producers_killed_at_random_strand_no_getter),
    T(producers_killed_at_random_leave_whole_items))
