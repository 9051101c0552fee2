// clang-format off
/*
 * Lesson 27: an Event released by the user's answer ("Event with input").
 * Seeds 001 ("2.4 Events") and 004 ("threading.Event"): ten threads print
 * 'start' and wait; if the user types "true", event_obj.set() lets them
 * print 'execute'.
 *
 * Python:                                 C:
 *   def do(event):                          static int do_work(void *arg, void **result) {
 *       print('start')                          printf("start\n");
 *       event.wait()                            conc_event_wait(&event_obj, CONC_FOREVER);
 *       print('execute')                        printf("execute\n"); ...
 *                                               return 0; }
 *   event_obj = threading.Event()           static conc_event_t event_obj = CONC_EVENT_INIT;
 *   event_obj.clear()                       conc_event_clear(&event_obj);
 *   inp = input('input:')                   const char *inp = argc > 1 ? argv[1] : "true";
 *   if inp == 'true':                       if (strcmp(inp, "true") == 0)
 *       event_obj.set()                         conc_event_set(&event_obj);
 *
 * The tour never reads the keyboard: the answer is the first argument,
 * "true" by default (try `27_event_input no`). In Python any other answer
 * leaves the ten threads waiting forever, and the program never exits. A
 * C program should end, so for another answer main sets the event anyway
 * after saying that the work is cancelled, and the workers skip it.
 *
 * Main waits until all ten have printed 'start' before it "asks" (a
 * Semaphore counts them in): in the lesson that pause is the time the user
 * takes to type; it also makes the output fixed.
 */
// clang-format on
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <conc.h>

static conc_event_t event_obj = CONC_EVENT_INIT;
static conc_semaphore_t started = CONC_SEMAPHORE_INIT(0);
static bool execute; /* written by main before set(), read after wait() */

static int do_work(void *arg, void **result) {
  (void)arg;
  printf("start\n");
  conc_semaphore_release(&started, 1);
  conc_event_wait(&event_obj, CONC_FOREVER);
  fputs(execute ? "execute\n" : "skip\n", stdout);
  return 0;
}

int main(int argc, char **argv) {
  const char *inp = argc > 1 ? argv[1] : "true";
  conc_thread_t threads[10];
  for (int i = 0; i < 10; i++) {
    conc_thread_init(&threads[i], do_work, NULL, NULL);
    conc_thread_start(&threads[i]);
  }
  conc_event_clear(&event_obj);
  for (int i = 0; i < 10; i++)
    conc_semaphore_acquire(&started); /* all ten said 'start' */

  printf("input:%s\n", inp); /* the answer, as if typed */
  execute = strcmp(inp, "true") == 0;
  if (!execute)
    printf("not 'true': in Python the threads would wait forever; "
           "here they are released to skip the work\n");
  conc_event_set(&event_obj);

  for (int i = 0; i < 10; i++) {
    conc_thread_join(&threads[i], CONC_FOREVER);
    conc_thread_destroy(&threads[i]);
  }
  return 0;
}
