// clang-format off
/*
 * Lesson 22: RLock: threads appending to shared data, and a counter.
 * Seeds 002 (who_am_i appending to `data` under an RLock) and 004 (ten
 * threads doing num += 1; sleep; print(num) under an RLock).
 *
 * Python:                                  C:
 *   lock = threading.RLock()                 static conc_rlock_t lock = CONC_RLOCK_INIT;
 *   lock.acquire()                           conc_rlock_acquire(&lock);
 *   data.append(what)                        append(what);   // takes the lock again
 *   lock.release()                           conc_rlock_release(&lock);
 *   f"{threading.current_thread()}"          conc_thread_name(conc_current_thread())
 *
 * An RLock may be acquired again by the thread that holds it (append()
 * below takes it a second time, which would hang with a plain Lock: see
 * lesson 23), and only that thread may release it, once per acquire.
 *
 * The lecture prints `data` right after starting the threads, so it shows
 * whatever happened to be appended by then. Here main joins first: all four
 * items are there. Their order is the order in which the threads got the
 * lock, which varies, so main prints them sorted. In the counter lesson
 * every thread prints while it holds the lock, so the lines are always
 * 1..10 in order.
 */
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

static conc_rlock_t lock = CONC_RLOCK_INIT;
static const char *data[4];
static int ndata;
static char says[4][96];
static int num;

/* data.append(what), safe to call with or without the lock held. */
static void append(const char *what) {
  conc_rlock_acquire(&lock); /* a second level when called from who_am_i */
  data[ndata++] = what;
  conc_rlock_release(&lock);
}

static int who_am_i(void *arg, void **result) {
  const char *what = arg;
  int slot = what[13] - '0'; /* "I'm function N" */
  snprintf(says[slot], sizeof says[slot], "Thread %s says: %s",
           conc_thread_name(conc_current_thread()), what);
  conc_rlock_acquire(&lock);
  append(what);
  conc_sleep(0.02); /* time.sleep(1), shortened */
  conc_rlock_release(&lock);
  return 0;
}

static int work(void *arg, void **result) {
  (void)arg;
  conc_rlock_acquire(&lock);
  num += 1;
  conc_sleep(0.01);
  printf("%d\n", num);
  conc_rlock_release(&lock);
  return 0;
}

static int by_text(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(void) {
  static const char *what[4] = {"I'm function 0", "I'm function 1",
                                "I'm function 2", "I'm function 3"};
  conc_thread_t threads[10];
  for (int n = 0; n < 4; n++) {
    conc_thread_init(&threads[n], who_am_i, (void *)what[n],
                     &(conc_thread_opts_t){.target_name = "who_am_i"});
    conc_thread_start(&threads[n]);
  }
  for (int n = 0; n < 4; n++) {
    conc_thread_join(&threads[n], CONC_FOREVER);
    conc_thread_destroy(&threads[n]);
  }
  for (int n = 0; n < 4; n++)
    printf("%s\n", says[n]);
  qsort(data, (size_t)ndata, sizeof data[0], by_text);
  printf("data (sorted): [");
  for (int i = 0; i < ndata; i++)
    printf("%s\"%s\"", i ? ", " : "", data[i]);
  printf("]\n");

  /* for i in range(10): Thread(target=work).start() */
  for (int i = 0; i < 10; i++) {
    conc_thread_init(&threads[i], work, NULL, NULL);
    conc_thread_start(&threads[i]);
  }
  for (int i = 0; i < 10; i++) {
    conc_thread_join(&threads[i], CONC_FOREVER);
    conc_thread_destroy(&threads[i]);
  }
  return 0;
}
