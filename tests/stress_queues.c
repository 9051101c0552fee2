/*
 * Queue campaign (issue 10): N producers x M consumers move items through
 * Queue (bounded, so puts block), SimpleQueue and the process Queue. Each
 * item carries an id; consumers mark a seen-table, so an item lost or
 * delivered twice is found, check each producer's ids arrive in order,
 * and add up a checksum that must match the producers'.
 *
 * CONC_STRESS_ITEMS sets the items per queue kind (default 300,000, 40,000
 * under a sanitizer); the long mode of docs/reliability.md is 10,000,000.
 *
 * Locking: the seen-table and the sums are updated with atomics only; for
 * the process Queue they live in anonymous MAP_SHARED memory.
 */
#include "proc_harness.h"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "conc/error.h"
#include "conc/pqueue.h"
#include "conc/process.h"
#include "conc/queue.h"

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

enum { PRODUCERS = 4, CONSUMERS = 4, MAX_PROD = 8 };

static uint64_t items(void) {
  const char *e = getenv("CONC_STRESS_ITEMS");
  long long n = e ? atoll(e) : 0;
  return n > 0 ? (uint64_t)n : SANITIZED ? 40000 : 300000;
}

static uint64_t sum_of(uint64_t id) {
  return (id + 1) * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995ull;
}

/* An item's id says its producer (id % PRODUCERS) and its rank. */
struct tally {
  uint64_t n;       /* items in the run */
  uint8_t *seen;    /* one byte per id */
  uint64_t sum;     /* checksum of what consumers got */
  uint64_t got;     /* items consumers got */
  uint64_t dups;    /* ids delivered more than once */
  uint64_t unorder; /* a producer's ids out of order at one consumer */
};

static struct tally *tally_new(uint64_t n) {
  struct tally *t = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(t != MAP_FAILED);
  memset(t, 0, sizeof *t);
  t->n = n;
  t->seen =
      mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(t->seen != MAP_FAILED);
  return t;
}

/* Every id seen once, the checksum right. */
static void tally_check(struct tally *t, const char *what) {
  uint64_t want = 0, missing = 0;
  for (uint64_t id = 0; id < t->n; id++) {
    want += sum_of(id);
    missing += t->seen[id] == 0;
  }
  print_message("%s: %llu items moved, %llu missing, %llu duplicated\n", what,
                (unsigned long long)t->got, (unsigned long long)missing,
                (unsigned long long)t->dups);
  assert_int_equal(missing, 0);
  assert_int_equal(t->dups, 0);
  assert_int_equal(t->unorder, 0);
  assert_int_equal(t->got, t->n);
  assert_int_equal(t->sum, want);
  munmap(t->seen, t->n);
  munmap(t, sizeof *t);
}

/* A consumer's view: the last rank of each producer it saw. */
struct view {
  struct tally *t;
  int64_t last[MAX_PROD];
  uint64_t sum, got;
};

static void view_init(struct view *v, struct tally *t) {
  memset(v, 0, sizeof *v);
  v->t = t;
  for (int i = 0; i < MAX_PROD; i++)
    v->last[i] = -1;
}

static void view_take(struct view *v, uint64_t id, uint64_t sum, int nprod) {
  struct tally *t = v->t;
  if (id >= t->n || sum != sum_of(id) ||
      __atomic_exchange_n(&t->seen[id], 1, __ATOMIC_RELAXED)) {
    __atomic_fetch_add(&t->dups, 1, __ATOMIC_RELAXED);
    return;
  }
  int p = (int)(id % (uint64_t)nprod);
  int64_t rank = (int64_t)(id / (uint64_t)nprod);
  if (rank <= v->last[p])
    __atomic_fetch_add(&t->unorder, 1, __ATOMIC_RELAXED);
  v->last[p] = rank;
  v->sum += sum;
  v->got++;
}

static void view_done(struct view *v) {
  __atomic_fetch_add(&v->t->sum, v->sum, __ATOMIC_RELAXED);
  __atomic_fetch_add(&v->t->got, v->got, __ATOMIC_RELAXED);
}

static void watchdog(int sig) {
  (void)sig;
  static const char m[] = "stress_queues: WATCHDOG: a queue run hangs\n";
  if (write(2, m, sizeof m - 1) < 0)
    _exit(98);
  _exit(99);
}

static int setup(void **state) {
  (void)state;
  signal(SIGALRM, watchdog);
  alarm(60 + (unsigned)(items() / 20000));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  alarm(0);
  return 0;
}

/* ---- Queue and SimpleQueue (threads) ------------------------------------ */

/* Pointers carry id + 1 (NULL is the end marker). */
#define I(id) ((void *)(uintptr_t)((id) + 1))
#define ID(p) ((uint64_t)(uintptr_t)(p)-1)

struct tq {
  conc_queue_t q;
  conc_simple_queue_t sq;
  bool simple;
  struct tally *t;
  int idx;
};

static void tq_put(struct tq *c, void *p) {
  if (c->simple)
    assert_int_equal(conc_simple_queue_put(&c->sq, p), 0);
  else
    assert_int_equal(conc_queue_put(&c->q, p, true, CONC_FOREVER), 0);
}

static void *tq_get(struct tq *c) {
  void *p = NULL;
  if (c->simple)
    assert_int_equal(conc_simple_queue_get(&c->sq, &p, true, CONC_FOREVER), 0);
  else
    assert_int_equal(conc_queue_get(&c->q, &p, true, CONC_FOREVER), 0);
  return p;
}

struct targ {
  struct tq *c;
  int idx;
};

static void *t_producer(void *arg) {
  struct targ *a = arg;
  for (uint64_t id = (uint64_t)a->idx; id < a->c->t->n; id += PRODUCERS)
    tq_put(a->c, I(id));
  return NULL;
}

static void *t_consumer(void *arg) {
  struct targ *a = arg;
  struct view v;
  view_init(&v, a->c->t);
  for (void *p; (p = tq_get(a->c)) != NULL;)
    view_take(&v, ID(p), sum_of(ID(p)), PRODUCERS);
  view_done(&v);
  return NULL;
}

static void run_threads(struct tq *c) {
  pthread_t prod[PRODUCERS], cons[CONSUMERS];
  struct targ pa[PRODUCERS], ca[CONSUMERS];
  for (int i = 0; i < CONSUMERS; i++) {
    ca[i] = (struct targ){c, i};
    cons[i] = conc_test_spawn(t_consumer, &ca[i]);
  }
  for (int i = 0; i < PRODUCERS; i++) {
    pa[i] = (struct targ){c, i};
    prod[i] = conc_test_spawn(t_producer, &pa[i]);
  }
  for (int i = 0; i < PRODUCERS; i++)
    conc_test_join(prod[i]);
  for (int i = 0; i < CONSUMERS; i++)
    tq_put(c, NULL);
  for (int i = 0; i < CONSUMERS; i++)
    conc_test_join(cons[i]);
}

static void queue_moves_every_item_once(void **state) {
  (void)state;
  struct tq c = {.t = tally_new(items())};
  assert_int_equal(conc_queue_init(&c.q, &(conc_queue_opts_t){.maxsize = 64}),
                   0);
  run_threads(&c);
  assert_true(conc_queue_empty(&c.q));
  conc_queue_destroy(&c.q);
  tally_check(c.t, "Queue(maxsize=64), 4x4 threads");
}

static void simple_queue_moves_every_item_once(void **state) {
  (void)state;
  struct tq c = {.t = tally_new(items()), .simple = true};
  assert_int_equal(conc_simple_queue_init(&c.sq, NULL), 0);
  run_threads(&c);
  assert_true(conc_simple_queue_empty(&c.sq));
  conc_simple_queue_destroy(&c.sq);
  tally_check(c.t, "SimpleQueue, 4x4 threads");
}

/* ---- process Queue -------------------------------------------------------- */

enum { PPROD = 3, PCONS = 3 };
static conc_pqueue_t pq;
static struct tally *pt;

struct rec {
  uint64_t id, sum;
};

static int p_producer(void *arg, void **result) {
  uint64_t first = (uint64_t)(uintptr_t)arg;
  for (uint64_t id = first; id < pt->n; id += PPROD) {
    struct rec r = {id, sum_of(id)};
    if (conc_pqueue_put(&pq, &r, sizeof r, true, CONC_FOREVER))
      conc_process_exit(2);
  }
  return 0;
}

static int p_consumer(void *arg, void **result) {
  (void)arg;
  struct view v;
  view_init(&v, pt);
  for (;;) {
    struct rec r;
    size_t n;
    if (conc_pqueue_get_into(&pq, &r, sizeof r, &n, true, CONC_FOREVER) ||
        n != sizeof r)
      conc_process_exit(2);
    if (r.id == UINT64_MAX)
      break;
    view_take(&v, r.id, r.sum, PPROD);
  }
  view_done(&v);
  return 0;
}

static void process_queue_moves_every_item_once(void **state) {
  (void)state;
  pt = tally_new(items());
  assert_int_equal(conc_pqueue_init(&pq, 1024, NULL), 0);
  conc_process_t prod[PPROD], cons[PCONS];
  for (int i = 0; i < PCONS; i++)
    start(&cons[i], p_consumer, NULL);
  for (int i = 0; i < PPROD; i++)
    start(&prod[i], p_producer, (void *)(uintptr_t)i);
  for (int i = 0; i < PPROD; i++)
    assert_int_equal(finish(&prod[i]), 0);
  struct rec end = {UINT64_MAX, 0};
  for (int i = 0; i < PCONS; i++)
    assert_int_equal(conc_pqueue_put(&pq, &end, sizeof end, true, 10.0), 0);
  for (int i = 0; i < PCONS; i++)
    assert_int_equal(finish(&cons[i]), 0);
  assert_true(conc_pqueue_empty(&pq));
  conc_pqueue_destroy(&pq);
  tally_check(pt, "process Queue(maxsize=1024), 3x3 processes");
}

/* The process Queue runs first: once a thread Queue exists, queue.c's fork
 * handlers re-create their registry mutex in the child instead of
 * unlocking it, and ThreadSanitizer then reports a lock-order inversion
 * when a conc_process child exits (reported with issue 10's campaign). */
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
CONC_TEST_MAIN(T(process_queue_moves_every_item_once),
               T(queue_moves_every_item_once),
               T(simple_queue_moves_every_item_once))
