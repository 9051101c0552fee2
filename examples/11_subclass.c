// clang-format off
/*
 * Lesson 11: "subclassing" Thread: the countdown again, and MyThread(num).
 * Seeds 000 (CountdownThread), 001 and 004 (MyThread with run()).
 *
 * Python:                                   C:
 *   class CountdownThread(threading.Thread):  typedef struct {
 *       def __init__(self, n):                    conc_thread_t thread; // the base, first
 *           super().__init__()                    int n;                // our field
 *           self.n = n                        } countdown_thread_t;
 *       def run(self):                        static int countdown_run(void *arg, void **result) {
 *           ... self.n ...                        countdown_thread_t *self = arg; ...
 *                                                 return 0; }
 *   t = CountdownThread(3)                    countdown_thread_init(&t, 3);
 *   t.start()                                 conc_thread_start(&t.thread);
 *
 * C has no classes: "subclassing" is embedding. The struct starts with a
 * conc_thread_t, run() is the target, and the target gets the struct as its
 * argument. Inside run, CONC_CONTAINER_OF(conc_current_thread(), type,
 * thread) reaches the same struct from the current thread object, as
 * Python's `self` does.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

/* ---- class CountdownThread(threading.Thread) ---- */
typedef struct {
  conc_thread_t thread; /* threading.Thread.__init__(self) */
  int n;                /* self.n */
} countdown_thread_t;

static int countdown_run(void *arg, void **result) {
  countdown_thread_t *self = arg;
  for (int i = 0; i < self->n; i++) {
    printf("%d left\n", self->n - i - 1);
    conc_sleep(0.1); /* time.sleep(1), shortened */
  }
  return 0;
}

static int countdown_thread_init(countdown_thread_t *self, int n) {
  self->n = n;
  return conc_thread_init(&self->thread, countdown_run, self, NULL);
}

/* ---- class MyThread(threading.Thread) with run() printing self.num ---- */
typedef struct {
  conc_thread_t thread;
  int num;
  char line[64]; /* what run() printed, kept for main (see below) */
} my_thread_t;

static int my_thread_run(void *arg, void **result) {
  (void)arg;
  /* Reach `self` through the current thread, like Python's self. */
  my_thread_t *self =
      CONC_CONTAINER_OF(conc_current_thread(), my_thread_t, thread);
  snprintf(self->line, sizeof self->line, "running on number:%d in %s",
           self->num, conc_thread_name(&self->thread));
  conc_sleep(0.05); /* time.sleep(2), shortened */
  return 0;
}

int main(void) {
  countdown_thread_t t;
  countdown_thread_init(&t, 3);
  conc_thread_start(&t.thread);
  conc_thread_join(&t.thread, CONC_FOREVER);
  conc_thread_destroy(&t.thread);

  /* t1 = MyThread(1); t2 = MyThread(2); t1.start(); t2.start() */
  my_thread_t t1 = {.num = 1}, t2 = {.num = 2};
  conc_thread_init(&t1.thread, my_thread_run, NULL, NULL);
  conc_thread_init(&t2.thread, my_thread_run, NULL, NULL);
  conc_thread_start(&t1.thread);
  conc_thread_start(&t2.thread);
  conc_thread_join(&t1.thread, CONC_FOREVER);
  conc_thread_join(&t2.thread, CONC_FOREVER);
  /* The two threads run at the same time, so the order in which they
   * would print is not fixed; main prints their lines after the joins. */
  printf("%s\n%s\n", t1.line, t2.line);
  conc_thread_destroy(&t1.thread);
  conc_thread_destroy(&t2.thread);
  return 0;
}
