/*
 * A correct program, as a user writes it, that hands data from thread to
 * thread through every libconc primitive. Built against the installed
 * library once with -fsanitize=thread and once normally for valgrind's
 * Helgrind and DRD (scripts/ci.d/70-usertools.sh); every tool must report
 * nothing. Each section writes plain (non-atomic) data on one side of a
 * hand-off and reads it on the other, so a hand-off a tool cannot see
 * shows up as a race.
 *
 * Locking: every shared variable is protected by the primitive its
 * section is about; nothing else is shared.
 */
#include <conc/futures.h>
#include <conc/queue.h>
#include <conc/sync.h>
#include <conc/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4
#define ITERS 500
#define ITEMS 400

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static void run_threads(void *(*fn)(void *), void *arg, int n) {
  pthread_t t[NTHREADS];
  for (int i = 0; i < n; i++)
    CHECK(pthread_create(&t[i], NULL, fn, arg) == 0);
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
}

/* ---- counters under CONC_WITH_LOCK and CONC_WITH_RLOCK ---------------- */

static conc_lock_t counter_lock = CONC_LOCK_INIT;
static conc_rlock_t counter_rlock = CONC_RLOCK_INIT;
static long counter, rcounter;

static void *count_body(void *arg) {
  (void)arg;
  for (int i = 0; i < ITERS; i++) {
    CONC_WITH_LOCK(&counter_lock) { counter++; }
    CONC_WITH_RLOCK(&counter_rlock) {
      CONC_WITH_RLOCK(&counter_rlock) { rcounter++; }
    }
  }
  return NULL;
}

static void counters(void) {
  run_threads(count_body, NULL, NTHREADS);
  CHECK(counter == (long)NTHREADS * ITERS);
  CHECK(rcounter == (long)NTHREADS * ITERS);
}

/* ---- a bounded queue: producers hand heap items to consumers ---------- */

struct item {
  int seq;
  char text[24];
};

static conc_queue_t queue;
static long consumed_sum;
static conc_lock_t sum_lock = CONC_LOCK_INIT;

static void *produce(void *arg) {
  (void)arg;
  for (int i = 0; i < ITEMS / 2; i++) {
    struct item *it = malloc(sizeof *it);
    it->seq = i;
    snprintf(it->text, sizeof it->text, "item %d", i);
    CHECK(conc_queue_put(&queue, it, true, CONC_FOREVER) == 0);
  }
  return NULL;
}

static void *consume(void *arg) {
  (void)arg;
  long sum = 0;
  for (int i = 0; i < ITEMS / 2; i++) {
    void *p;
    CHECK(conc_queue_get(&queue, &p, true, CONC_FOREVER) == 0);
    struct item *it = p;
    char want[24];
    snprintf(want, sizeof want, "item %d", it->seq);
    CHECK(strcmp(it->text, want) == 0);
    sum += it->seq;
    free(it);
    conc_queue_task_done(&queue);
  }
  CONC_WITH_LOCK(&sum_lock) { consumed_sum += sum; }
  return NULL;
}

static void queue_handoff(void) {
  CHECK(conc_queue_init(&queue, &(conc_queue_opts_t){.maxsize = 8}) == 0);
  pthread_t p[2], c[2];
  for (int i = 0; i < 2; i++) {
    pthread_create(&p[i], NULL, produce, NULL);
    pthread_create(&c[i], NULL, consume, NULL);
  }
  for (int i = 0; i < 2; i++) {
    pthread_join(p[i], NULL);
    pthread_join(c[i], NULL);
  }
  CHECK(conc_queue_join(&queue, CONC_FOREVER) == 0);
  CHECK(consumed_sum == 2L * (ITEMS / 2) * (ITEMS / 2 - 1) / 2);
  conc_queue_destroy(&queue);
}

/* ---- an executor: tasks fill heap results read after result() -------- */

static int square_task(void *arg, void **result) {
  long *r = malloc(sizeof *r);
  if (!r)
    return CONC_ENOMEM;
  *r = (long)(size_t)arg * (long)(size_t)arg;
  *result = r;
  return 0;
}

static void executor(void) {
  conc_executor_t ex;
  CHECK(conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 3}) ==
        0);
  conc_future_t *fs[32];
  for (size_t i = 0; i < 32; i++)
    CHECK(conc_executor_submit(&ex, square_task, (void *)i, &fs[i]) == 0);
  for (size_t i = 0; i < 32; i++) {
    void *v = NULL;
    CHECK(conc_future_result(fs[i], CONC_FOREVER, &v) == 0);
    CHECK(v && *(long *)v == (long)(i * i));
    free(v);
    conc_future_release(fs[i]);
  }
  conc_executor_shutdown(&ex, true, false);
  conc_executor_destroy(&ex);
}

/* ---- a future completed by a plain thread ----------------------------- */

static conc_future_t *fut;
static char fut_data[32];

static void *complete_future(void *arg) {
  (void)arg;
  strcpy(fut_data, "from the setter");
  CHECK(conc_future_set_result(fut, fut_data) == 0);
  return NULL;
}

static void future_handoff(void) {
  CHECK(conc_future_new(&fut) == 0);
  CHECK(conc_future_set_running_or_notify_cancel(fut) == 1);
  pthread_t t;
  pthread_create(&t, NULL, complete_future, NULL);
  void *v = NULL;
  CHECK(conc_future_result(fut, CONC_FOREVER, &v) == 0);
  CHECK(v == fut_data && strcmp(fut_data, "from the setter") == 0);
  pthread_join(t, NULL);
  conc_future_release(fut);
}

/* ---- an Event: data written before set() is read after wait() -------- */

static conc_event_t event;
static int event_data[16];

static void *event_setter(void *arg) {
  (void)arg;
  for (int i = 0; i < 16; i++)
    event_data[i] = i * 3;
  conc_event_set(&event);
  return NULL;
}

static void *event_waiter(void *arg) {
  (void)arg;
  CHECK(conc_event_wait(&event, CONC_FOREVER) == 0);
  long s = 0;
  for (int i = 0; i < 16; i++)
    s += event_data[i];
  CHECK(s == 3 * 120);
  return NULL;
}

static void event_handoff(void) {
  CHECK(conc_event_init(&event, NULL) == 0);
  pthread_t w[2], s;
  pthread_create(&w[0], NULL, event_waiter, NULL);
  pthread_create(&w[1], NULL, event_waiter, NULL);
  pthread_create(&s, NULL, event_setter, NULL);
  for (int i = 0; i < 2; i++)
    pthread_join(w[i], NULL);
  pthread_join(s, NULL);
  /* is_set() is a hand-off too: a thread that sees it set may read. */
  CHECK(conc_event_is_set(&event));
  conc_event_destroy(&event);
}

/* ---- a Condition: a waiter sleeps until a producer fills a slot ------- */

static conc_condition_t cond;
static int slot_full;
static char slot[32];

static void *cond_producer(void *arg) {
  (void)arg;
  for (int i = 0; i < ITERS / 10; i++) {
    CONC_WITH_CONDITION(&cond) {
      while (slot_full)
        conc_condition_wait(&cond, CONC_FOREVER);
      snprintf(slot, sizeof slot, "message %d", i);
      slot_full = 1;
      conc_condition_notify_all(&cond);
    }
  }
  return NULL;
}

static void *cond_consumer(void *arg) {
  (void)arg;
  for (int i = 0; i < ITERS / 10; i++) {
    char want[32];
    snprintf(want, sizeof want, "message %d", i);
    CONC_WITH_CONDITION(&cond) {
      while (!slot_full)
        conc_condition_wait(&cond, CONC_FOREVER);
      CHECK(strcmp(slot, want) == 0);
      slot_full = 0;
      conc_condition_notify_all(&cond);
    }
  }
  return NULL;
}

static void condition_handoff(void) {
  CHECK(conc_condition_init(&cond, NULL) == 0);
  pthread_t p, c;
  pthread_create(&c, NULL, cond_consumer, NULL);
  pthread_create(&p, NULL, cond_producer, NULL);
  pthread_join(p, NULL);
  pthread_join(c, NULL);
  conc_condition_destroy(&cond);
}

/* ---- Semaphores: a ping-pong of a buffer outside any lock ------------- */

static conc_semaphore_t to_reader, to_writer;
static int sem_buf[8];

static void *sem_writer(void *arg) {
  (void)arg;
  for (int i = 0; i < ITERS / 5; i++) {
    CHECK(conc_semaphore_acquire(&to_writer) == 0);
    for (int k = 0; k < 8; k++)
      sem_buf[k] = i + k;
    conc_semaphore_release(&to_reader, 1);
  }
  return NULL;
}

static void *sem_reader(void *arg) {
  (void)arg;
  for (int i = 0; i < ITERS / 5; i++) {
    CHECK(conc_semaphore_acquire(&to_reader) == 0);
    for (int k = 0; k < 8; k++)
      CHECK(sem_buf[k] == i + k);
    conc_semaphore_release(&to_writer, 1);
  }
  return NULL;
}

static void semaphore_handoff(void) {
  CHECK(conc_semaphore_init(&to_reader, 0, NULL) == 0);
  CHECK(conc_semaphore_init(&to_writer, 1, NULL) == 0);
  pthread_t w, r;
  pthread_create(&r, NULL, sem_reader, NULL);
  pthread_create(&w, NULL, sem_writer, NULL);
  pthread_join(w, NULL);
  pthread_join(r, NULL);
  conc_semaphore_destroy(&to_reader);
  conc_semaphore_destroy(&to_writer);
}

/* ---- a Barrier: each party writes its cell, then reads the others ----- */

static conc_barrier_t barrier;
static int cells[NTHREADS];
static int next_party;
static conc_lock_t party_lock = CONC_LOCK_INIT;

static void *barrier_party(void *arg) {
  (void)arg;
  int me = 0;
  CONC_WITH_LOCK(&party_lock) { me = next_party++; }
  for (int round = 1; round <= 20; round++) {
    cells[me] = round * 10 + me;
    CHECK(conc_barrier_wait(&barrier, CONC_FOREVER) >= 0);
    for (int k = 0; k < NTHREADS; k++)
      CHECK(cells[k] == round * 10 + k);
    CHECK(conc_barrier_wait(&barrier, CONC_FOREVER) >= 0);
  }
  return NULL;
}

static void barrier_handoff(void) {
  CHECK(conc_barrier_init(&barrier, NTHREADS, NULL) == 0);
  run_threads(barrier_party, NULL, NTHREADS);
  conc_barrier_destroy(&barrier);
}

/* ---- libconc threads: start publishes, join collects ------------------ */

struct job {
  conc_thread_t thread;
  int input[4];
  int output;
};

static int job_body(void *arg, void **result) {
  struct job *j = arg;
  j->output = j->input[0] + j->input[1] + j->input[2] + j->input[3];
  *result = &j->output;
  return 0;
}

static void thread_handoff(void) {
  struct job *jobs = calloc(NTHREADS, sizeof *jobs);
  for (int i = 0; i < NTHREADS; i++) {
    for (int k = 0; k < 4; k++)
      jobs[i].input[k] = i + k;
    CHECK(conc_thread_init(&jobs[i].thread, job_body, &jobs[i], NULL) == 0);
    CHECK(conc_thread_start(&jobs[i].thread) == 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    CHECK(conc_thread_join(&jobs[i].thread, CONC_FOREVER) == 0);
    CHECK(jobs[i].output == 4 * i + 6);
    void *r = NULL;
    CHECK(conc_thread_result(&jobs[i].thread, &r) == 0 && r == &jobs[i].output);
    conc_thread_destroy(&jobs[i].thread);
  }
  free(jobs);
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*fn)(void);
  } sections[] = {
      {"counters", counters},           {"queue", queue_handoff},
      {"executor", executor},           {"future", future_handoff},
      {"event", event_handoff},         {"condition", condition_handoff},
      {"semaphore", semaphore_handoff}, {"barrier", barrier_handoff},
      {"thread", thread_handoff},
  };
  for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
    if (argc > 1 && strcmp(argv[1], sections[i].name) != 0)
      continue;
    sections[i].fn();
    printf("%s: done\n", sections[i].name);
  }
  if (failures) {
    fprintf(stderr, "usertools: %d checks failed\n", failures);
    return 1;
  }
  return 0;
}
