// clang-format off
/*
 * Lesson 47: the first hand-written thread pool of seed 004 (a Queue of
 * "thread tokens"), compared with the library's executor.
 * Seed 004 ("自定义线程池(一)": TreadPool(10) fills a Queue(10) with the
 * Thread class; each of 99 jobs takes a token with get_thread(), starts a
 * thread, and the job puts the token back with add_thread() when done).
 *
 *   Python:                                  C:
 *   self.queue = queue.Queue(max_num)        conc_queue_init(&tokens, &(conc_queue_opts_t){.maxsize = MAX});
 *   self.queue.put(threading.Thread)         conc_queue_put(&tokens, TOKEN, true, CONC_FOREVER);
 *   thread = p.get_thread()                  conc_queue_get(&tokens, &token, true, CONC_FOREVER);
 *   t = thread(target=func, args=(p, i))     conc_thread_init(&threads[i], token_job, (void *)i, NULL);
 *   t.start()                                conc_thread_start(&threads[i]);
 *   pool.add_thread()  (at the end of func)  conc_queue_put(&tokens, TOKEN, true, CONC_FOREVER);
 *
 *   with ThreadPoolExecutor(10) as ex:       CONC_WITH_EXECUTOR(&ex) {
 *       for i in ...: ex.submit(func, i)         conc_executor_submit(&ex, gated_job, (void *)i, NULL); }
 *
 * A thread's target and an executor task have the same shape,
 * int fn(void *arg, void **result). The token queue bounds how many jobs
 * run at once, but every job still gets a brand-new thread: 30 jobs, 30
 * thread starts. The executor reuses its 10 workers. (Jobs sleep 20 ms
 * instead of the lesson's 1 s; the executor's jobs also wait until all 30
 * are submitted, as the lesson's 1 s jobs would, so that no worker is idle
 * early on a busy machine and the executor grows to all 10.)
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

#define MAX 10
#define JOBS 30
#define TOKEN ((void *)1)

static conc_queue_t tokens;
static int running, peak;
static long total;
static conc_lock_t mu = CONC_LOCK_INIT;

static int func(void *arg, void **result) {
  intptr_t n = (intptr_t)arg;
  CONC_WITH_LOCK(&mu) {
    if (++running > peak)
      peak = running;
  }
  conc_sleep(0.02);
  CONC_WITH_LOCK(&mu) {
    running--;
    total += n;
  }
  return 0;
}

static conc_event_t all_submitted = CONC_EVENT_INIT;

static int gated_job(void *arg, void **result) {
  conc_event_wait(&all_submitted, CONC_FOREVER);
  return func(arg, result);
}

static int token_job(void *arg, void **result) {
  func(arg, result);
  conc_queue_put(&tokens, TOKEN, true, CONC_FOREVER); /* pool.add_thread() */
  return 0;
}

static void report(const char *who, int threads) {
  printf("%-18s %d jobs (sum %ld) on %d threads, never more than %d at once: "
         "%s\n",
         who, JOBS, total, threads, MAX, peak <= MAX ? "yes" : "no");
  total = 0;
  peak = 0;
}

int main(void) {
  /* Pool (1): tokens in a bounded queue. */
  conc_queue_init(&tokens, &(conc_queue_opts_t){.maxsize = MAX});
  for (int i = 0; i < MAX; i++)
    conc_queue_put(&tokens, TOKEN, true, CONC_FOREVER);
  static conc_thread_t threads[JOBS];
  for (intptr_t i = 1; i <= JOBS; i++) {
    void *token;
    conc_queue_get(&tokens, &token, true, CONC_FOREVER); /* get_thread() */
    conc_thread_init(&threads[i - 1], token_job, (void *)i, NULL);
    conc_thread_start(&threads[i - 1]);
  }
  for (int i = 0; i < JOBS; i++) {
    conc_thread_join(&threads[i], CONC_FOREVER);
    conc_thread_destroy(&threads[i]);
  }
  conc_queue_destroy(&tokens);
  report("token pool:", JOBS);

  /* The library's pool: ten workers, reused. */
  conc_executor_t ex;
  conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = MAX});
  CONC_WITH_EXECUTOR(&ex) {
    for (intptr_t i = 1; i <= JOBS; i++)
      conc_executor_submit(&ex, gated_job, (void *)i, NULL);
    conc_event_set(&all_submitted);
  }
  report("executor:", conc_executor_num_threads(&ex));
  conc_executor_destroy(&ex);
  return 0;
}
