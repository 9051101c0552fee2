// clang-format off
/*
 * Lesson 50: Ctrl-C ends a blocking wait (KeyboardInterrupt in a threaded
 * program). Not in the seed lessons; the C side of PEP 475.
 *
 *   Python:                                  C:
 *   (SIGINT raises KeyboardInterrupt         conc_signal_interrupts(SIGINT);
 *    in the main thread by default)
 *   try:                                     rc = conc_future_result(f, CONC_FOREVER, &v);
 *       v = f.result()                       if (rc == CONC_EINTR) ...
 *   except KeyboardInterrupt: ...
 *   try:                                     rc = conc_queue_get(&q, &item, true, CONC_FOREVER);
 *       item = q.get()                       if (rc == CONC_EINTR) ...
 *   except KeyboardInterrupt: ...
 *   try:                                     rc = conc_event_wait(&e, CONC_FOREVER);
 *       e.wait()                             if (rc == CONC_EINTR) ...
 *   except KeyboardInterrupt: ...
 *   stop.set(); jobs.put(None)               conc_event_set(&stop); conc_queue_put(&jobs, NULL, ...);
 *
 * In Python the handler runs in the main thread, and KeyboardInterrupt
 * ends whatever main is blocked in; the other threads go on until main
 * tells them to stop. conc_signal_interrupts(SIGINT), called from main,
 * installs a handler that does the same in C: wherever the kernel delivers
 * the signal, main's blocking libconc call returns CONC_EINTR (its own
 * handler may call conc_interrupt() instead). The worker thread, the
 * consumer thread and the executor's task are blocked too, but a handled
 * signal never ends their waits: main stops them with an Event and a
 * sentinel, as a Python program would, and prints what each wait returned.
 *
 * A real program gets SIGINT when the user presses Ctrl-C. So that the
 * lesson runs unattended (and as a test), a "presser" thread sends it to
 * the process with kill(getpid(), SIGINT) once main is about to block, three
 * times, one for each of main's waits. A request that comes before main is
 * asleep is not lost: the wait returns CONC_EINTR as soon as it starts.
 */
// clang-format on
#define _POSIX_C_SOURCE 200809L /* kill */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <conc.h>

static conc_event_t stop;        /* main -> worker and task: finish */
static conc_queue_t jobs;        /* main -> consumer: NULL ends it */
static conc_semaphore_t blocked; /* main -> presser: about to wait */
static int worker_rc, consumer_rc;
static void *consumer_item = &consumer_item;

static const char *said(int rc) { return rc == 0 ? "0" : conc_err_name(rc); }

/* Presses Ctrl-C three times, each time once main is about to block. */
static int presser(void *arg, void **result) {
  (void)arg;
  (void)result;
  for (int i = 0; i < 3; i++) {
    conc_semaphore_acquire(&blocked);
    conc_sleep(0.1);
    kill(getpid(), SIGINT);
  }
  return 0;
}

static int worker(void *arg, void **result) {
  (void)arg;
  (void)result;
  worker_rc = conc_event_wait(&stop, CONC_FOREVER);
  return 0;
}

static int consumer(void *arg, void **result) {
  (void)arg;
  (void)result;
  consumer_rc = conc_queue_get(&jobs, &consumer_item, true, CONC_FOREVER);
  return 0;
}

static int task(void *arg, void **result) {
  (void)arg;
  conc_event_wait(&stop, CONC_FOREVER);
  *result = (void *)"finished";
  return 0;
}

static void start(conc_thread_t *t, conc_fn_t fn) {
  conc_thread_init(t, fn, NULL, NULL);
  conc_thread_start(t);
}

int main(void) {
  conc_signal_interrupts(SIGINT); /* Ctrl-C now interrupts this thread */
  conc_event_init(&stop, NULL);
  conc_queue_init(&jobs, NULL);
  conc_semaphore_init(&blocked, 0, NULL);
  conc_executor_t ex;
  conc_executor_init(&ex, NULL);
  conc_future_t *f = NULL;
  conc_executor_submit(&ex, task, NULL, &f);
  conc_thread_t threads[3];
  start(&threads[0], presser);
  start(&threads[1], worker);
  start(&threads[2], consumer);

  void *v = NULL, *item = NULL;
  conc_event_t never;
  conc_event_init(&never, NULL);
  conc_semaphore_release(&blocked, 1);
  int rc = conc_future_result(f, CONC_FOREVER, &v);
  printf("main: future.result() -> %s\n", said(rc));
  conc_semaphore_release(&blocked, 1);
  rc = conc_queue_get(&jobs, &item, true, CONC_FOREVER);
  printf("main: queue.get() -> %s\n", said(rc));
  conc_semaphore_release(&blocked, 1);
  rc = conc_event_wait(&never, CONC_FOREVER);
  printf("main: event.wait() -> %s\n", said(rc));

  printf("main: stopping the others\n");
  conc_event_set(&stop);
  conc_queue_put(&jobs, NULL, true, CONC_FOREVER);
  for (int i = 0; i < 3; i++)
    conc_thread_join(&threads[i], CONC_FOREVER);
  printf("worker: event.wait() -> %s (stop was set)\n", said(worker_rc));
  printf("consumer: queue.get() -> %s, item %s\n", said(consumer_rc),
         consumer_item ? "?" : "None");
  rc = conc_future_result(f, CONC_FOREVER, &v);
  printf("task: future.result() -> %s, %s\n", said(rc), (const char *)v);

  conc_future_release(f);
  conc_executor_destroy(&ex);
  for (int i = 0; i < 3; i++)
    conc_thread_destroy(&threads[i]);
  conc_queue_destroy(&jobs);
  return 0;
}
