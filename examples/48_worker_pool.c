// clang-format off
/*
 * Lesson 48: the second hand-written thread pool of seed 004 (a task queue,
 * lists of created and idle threads, a stop marker, callbacks), compared
 * with the library's executor.
 * Seed 004 ("线程池(二)": Threadpool(max_num=10) with run(func, args,
 * callback) that starts a thread when none is idle and fewer than max_num
 * exist, call() looping on q.get() until StopEvent and reporting
 * callback(status, result), close() sending one StopEvent per thread).
 *
 *   Python:                                  C:
 *   self.q = queue.Queue()                   conc_queue_init(&pool->q, NULL);
 *   StopEvent = object()                     static char stop_event;  (&stop_event)
 *   if len(self.free_list) == 0 and          if (pool->free == 0 && pool->created < pool->max_num)
 *      len(self.generate_list) < max_num:        generate_thread(pool);
 *   self.q.put((func, args, callback))       conc_queue_put(&pool->q, task, true, CONC_FOREVER);
 *   result = func(*arguments)                rc = task->func(task->arg, &task->result);
 *   callback(status, result)                 task->callback(rc == 0, task->result);
 *   with self.worker_state(free_list, t):    pool->free++ ... conc_queue_get(...) ... pool->free--
 *       event = self.q.get()
 *   close(): q.put(StopEvent) per thread     conc_queue_put(&pool->q, &stop_event, ...) per thread
 *
 *   ex.submit(work, i)                       conc_executor_submit(&ex, work, (void *)i, &f);
 *   f.add_done_callback(cb)                  conc_future_add_done_callback(f, cb, NULL);
 *
 * Both run 50 jobs of 10 ms with at most 10 threads and report each one
 * through a callback. The hand-written pool needs its own bookkeeping
 * (a lock for the thread lists, a stop marker per thread); the executor
 * does the same with submit, a done-callback and shutdown. Jobs sleep
 * 10 ms instead of the lesson's 1 s, and first wait until all 50 are handed
 * in: the lesson's 1 s jobs never finish while it submits, so both pools
 * grow to 10 threads; a short job could end early on a busy machine and
 * let an idle thread take the next one.
 */
// clang-format on
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

#define JOBS 50
#define MAX 10

/* ---- the hand-written pool ------------------------------------------- */

struct task {
  conc_fn_t func;
  void *arg, *result;
  void (*callback)(bool status, void *result);
};

struct threadpool {
  conc_queue_t q;
  int max_num;
  int created, free; /* generate_list / free_list lengths, under lock */
  conc_lock_t lock;
  conc_thread_t threads[MAX];
  struct task tasks[JOBS];
  int ntasks;
};

static char stop_event; /* StopEvent = object() */

static int call(void *arg, void **result) {
  struct threadpool *pool = arg;
  void *event;
  conc_queue_get(&pool->q, &event, true, CONC_FOREVER);
  while (event != &stop_event) {
    struct task *t = event;
    int rc = t->func(t->arg, &t->result);
    if (t->callback)
      t->callback(rc == 0, t->result);
    CONC_WITH_LOCK(&pool->lock) { pool->free++; } /* worker_state */
    conc_queue_get(&pool->q, &event, true, CONC_FOREVER);
    CONC_WITH_LOCK(&pool->lock) { pool->free--; }
  }
  return 0;
}

static void pool_run(struct threadpool *pool, conc_fn_t func, void *arg,
                     void (*callback)(bool, void *)) {
  CONC_WITH_LOCK(&pool->lock) {
    if (pool->free == 0 && pool->created < pool->max_num) {
      conc_thread_t *t = &pool->threads[pool->created++];
      conc_thread_init(t, call, pool, NULL);
      conc_thread_start(t);
    }
  }
  struct task *t = &pool->tasks[pool->ntasks++];
  *t = (struct task){func, arg, NULL, callback};
  conc_queue_put(&pool->q, t, true, CONC_FOREVER);
}

static void pool_close(struct threadpool *pool) {
  for (int i = 0; i < pool->created; i++)
    conc_queue_put(&pool->q, &stop_event, true, CONC_FOREVER);
  for (int i = 0; i < pool->created; i++) {
    conc_thread_join(&pool->threads[i], CONC_FOREVER);
    conc_thread_destroy(&pool->threads[i]);
  }
}

/* ---- the jobs ------------------------------------------------------------ */

static conc_lock_t tally_lock = CONC_LOCK_INIT;
static int callbacks, succeeded;
static long sum;
static conc_event_t all_submitted = CONC_EVENT_INIT;

static int work(void *arg, void **result) {
  conc_event_wait(&all_submitted, CONC_FOREVER);
  conc_sleep(0.01);
  *result = arg;
  return 0;
}

static void tally(bool status, void *result) {
  CONC_WITH_LOCK(&tally_lock) {
    callbacks++;
    succeeded += status;
    sum += (long)(intptr_t)result;
  }
}

static void report(const char *who, int threads) {
  printf("%-18s %d jobs on %d threads, %d callbacks, %d succeeded, sum %ld\n",
         who, JOBS, threads, callbacks, succeeded, sum);
  callbacks = succeeded = 0;
  sum = 0;
}

/* add_done_callback's form: the future, and our argument. */
static void future_done(conc_future_t *f, void *unused) {
  (void)unused;
  void *v = NULL;
  int rc = conc_future_result(f, 0, &v);
  tally(rc == 0, v);
}

int main(void) {
  static struct threadpool pool = {.max_num = MAX, .lock = CONC_LOCK_INIT};
  conc_queue_init(&pool.q, NULL);
  for (intptr_t i = 0; i < JOBS; i++)
    pool_run(&pool, work, (void *)i, tally);
  conc_event_set(&all_submitted);
  pool_close(&pool);
  report("hand-written pool:", pool.created);
  conc_queue_destroy(&pool.q);
  conc_event_clear(&all_submitted);

  conc_executor_t ex;
  conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = MAX});
  for (intptr_t i = 0; i < JOBS; i++) {
    conc_future_t *f;
    conc_executor_submit(&ex, work, (void *)i, &f);
    conc_future_add_done_callback(f, future_done, NULL);
    conc_future_release(f); /* the callback still runs */
  }
  conc_event_set(&all_submitted);
  conc_executor_shutdown(&ex, true, false);
  report("executor:", conc_executor_num_threads(&ex));
  conc_executor_destroy(&ex);
  return 0;
}
