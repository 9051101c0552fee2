// clang-format off
/*
 * Lesson 44: a tour of the Queue API.
 * Seed 004 ("queue 队列": Queue(maxsize), put/get with block and timeout,
 * qsize, empty, full, join/task_done, the nowait variants; LifoQueue and
 * PriorityQueue).
 *
 * Python:                                   C:
 *   q = queue.Queue(maxsize=3)                conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 3});
 *   q.put(item, block=True, timeout=None)     conc_queue_put(&q, item, true, CONC_FOREVER);
 *   q.put_nowait(item)  -> queue.Full         conc_queue_put_nowait(&q, item) == CONC_EFULL
 *   q.get(timeout=0.1)  -> queue.Empty        conc_queue_get(&q, &item, true, 0.1) == CONC_EEMPTY
 *   q.qsize(), q.empty(), q.full()            conc_queue_qsize(&q), conc_queue_empty(&q),
 *                                               conc_queue_full(&q)
 *   q.task_done(); q.join()                   conc_queue_task_done(&q); conc_queue_join(&q, CONC_FOREVER);
 *   queue.LifoQueue(), queue.PriorityQueue()  .kind = CONC_QUEUE_LIFO / CONC_QUEUE_PRIORITY (+ .compare)
 *   q.shutdown()  (3.13) -> queue.ShutDown    conc_queue_shutdown(&q, false); ... == CONC_ESHUTDOWN
 *
 * Items are pointers; here they point at string literals (or small
 * integers cast to pointers for the priority queue). Python's exceptions
 * become return codes; conc_err_python() names the exception.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>

#include <conc.h>

static conc_queue_t q;

static int consumer(void *arg, void **result) {
  (void)arg;
  for (int i = 0; i < 3; i++) {
    void *item;
    conc_queue_get(&q, &item, true, CONC_FOREVER);
    conc_sleep(0.01); /* "process" the item */
    conc_queue_task_done(&q);
  }
  return 0;
}

static int by_value(const void *a, const void *b, void *arg) {
  (void)arg; /* opts.arg: unused here */
  intptr_t x = (intptr_t)a, y = (intptr_t)b;
  return (x > y) - (x < y);
}

static void drain(conc_queue_t *qq, const char *label, bool ints) {
  void *item;
  printf("%s:", label);
  while (conc_queue_get_nowait(qq, &item) == 0)
    ints ? printf(" %ld", (long)(intptr_t)item) : printf(" %s", (char *)item);
  printf("\n");
}

int main(void) {
  conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 3});
  printf("maxsize=%ld empty=%d full=%d qsize=%ld\n", conc_queue_maxsize(&q),
         conc_queue_empty(&q), conc_queue_full(&q), conc_queue_qsize(&q));

  conc_queue_put(&q, "a", true, CONC_FOREVER);
  conc_queue_put(&q, "b", true, CONC_FOREVER);
  conc_queue_put_nowait(&q, "c");
  printf("after 3 puts: empty=%d full=%d qsize=%ld\n", conc_queue_empty(&q),
         conc_queue_full(&q), conc_queue_qsize(&q));

  int rc = conc_queue_put_nowait(&q, "d");
  printf("put_nowait on a full queue: %s\n", conc_err_python(rc));
  rc = conc_queue_put(&q, "d", true, 0.1);
  printf("put(timeout=0.1) on a full queue: %s\n", conc_err_python(rc));

  drain(&q, "get in FIFO order", false);
  void *item;
  rc = conc_queue_get(&q, &item, true, 0.1);
  printf("get(timeout=0.1) on an empty queue: %s\n", conc_err_python(rc));
  rc = conc_queue_get(&q, &item, false, 0);
  printf("get(block=False) on an empty queue: %s\n", conc_err_python(rc));

  /* The three gets above had no task_done: settle them, then join. */
  for (int i = 0; i < 3; i++)
    conc_queue_task_done(&q);
  rc = conc_queue_task_done(&q);
  printf("one task_done too many: %s\n", conc_err_python(rc));

  conc_thread_t t;
  conc_thread_init(&t, consumer, NULL, NULL);
  conc_thread_start(&t);
  for (int i = 0; i < 3; i++)
    conc_queue_put(&q, "job", true, CONC_FOREVER);
  conc_queue_join(&q, CONC_FOREVER);
  printf("join returned: unfinished tasks=%ld\n",
         conc_queue_unfinished_tasks(&q));
  conc_thread_join(&t, CONC_FOREVER);
  conc_thread_destroy(&t);

  conc_queue_put_nowait(&q, "left");
  conc_queue_shutdown(&q, false);
  rc = conc_queue_put_nowait(&q, "late");
  printf("put after shutdown: %s\n", conc_err_python(rc));
  rc = conc_queue_get_nowait(&q, &item);
  printf("get after shutdown: %s (drains what is left)\n", (char *)item);
  rc = conc_queue_get(&q, &item, true, CONC_FOREVER);
  printf("get once drained: %s\n", conc_err_python(rc));
  conc_queue_destroy(&q);

  conc_queue_t lifo, prio;
  conc_queue_init(&lifo, &(conc_queue_opts_t){.kind = CONC_QUEUE_LIFO});
  conc_queue_init(&prio, &(conc_queue_opts_t){.kind = CONC_QUEUE_PRIORITY,
                                              .compare = by_value});
  const intptr_t in[] = {111, 333, 222};
  for (int i = 0; i < 3; i++) {
    conc_queue_put_nowait(&lifo, (void *)in[i]);
    conc_queue_put_nowait(&prio, (void *)in[i]);
  }
  drain(&lifo, "LifoQueue", true);
  drain(&prio, "PriorityQueue", true);
  conc_queue_destroy(&lifo);
  conc_queue_destroy(&prio);
  return 0;
}
