// clang-format off
/*
 * Lesson 83: gevent's foo/bar with sleep(0) (seeds 001 and 004).
 *
 * Python:                                  C:
 *   import gevent                            #include <conc.h>
 *   def foo():                               static int foo(void *arg, void **res) {
 *       print('Running in foo')                puts("Running in foo");
 *       gevent.sleep(0)                        conc_hub_sleep(0);
 *       print('Explicit context switch         puts("Explicit context switch
 *              to foo again')                         to foo again");
 *                                              return 0; }
 *   gevent.joinall([                         conc_greenlet_t *gs[2];
 *       gevent.spawn(foo),                   conc_hub_spawn(foo, NULL, NULL, &gs[0]);
 *       gevent.spawn(bar),                   conc_hub_spawn(bar, NULL, NULL, &gs[1]);
 *   ])                                       conc_hub_joinall(gs, 2, CONC_FOREVER, NULL, NULL);
 *
 * spawn() only schedules a greenlet on the thread's event loop; nothing
 * runs until main blocks. In gevent that is when main switches to the hub;
 * in C a blocking hub call made from main (joinall here) runs the loop
 * until it is satisfied, so main() needs no event loop code of its own.
 * sleep(0) lets every other ready greenlet run once before the caller goes
 * on, which fixes the order of the four lines on every run.
 *
 * A greenlet is a C function `int fn(void *arg, void **result)`: it returns
 * 0 with a result, or an error code (its exception). The second round
 * shows what sleep(0) buys: without it foo runs to its end before bar
 * starts. Seed 004 is the same program (with its typos, "angin" and
 * "swich").
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int foo(void *arg, void **res) {
  (void)arg;
  (void)res;
  puts("Running in foo");
  conc_hub_sleep(0); /* gevent.sleep(0): bar runs now */
  puts("Explicit context switch to foo again");
  return 0;
}

static int bar(void *arg, void **res) {
  (void)arg;
  (void)res;
  puts("Explicit context to bar");
  conc_hub_sleep(0); /* back to foo, then here again */
  puts("Implicit context switch back to bar");
  return 0;
}

/* The same two greenlets without sleep(0): nothing makes them give way. */
static int foo_greedy(void *arg, void **res) {
  (void)arg;
  (void)res;
  puts("  foo: first line");
  puts("  foo: second line (never gave way)");
  return 0;
}

static int bar_greedy(void *arg, void **res) {
  (void)arg;
  (void)res;
  puts("  bar: first line");
  puts("  bar: second line");
  return 0;
}

static int run(conc_aio_fn_t a, conc_aio_fn_t b) {
  conc_greenlet_t *gs[2];
  if (conc_hub_spawn(a, NULL, NULL, &gs[0]) != 0 ||
      conc_hub_spawn(b, NULL, NULL, &gs[1]) != 0)
    return 1;
  int rc = conc_hub_joinall(gs, 2, CONC_FOREVER, NULL, NULL);
  conc_greenlet_release(gs[0]); /* Python's garbage collector does this */
  conc_greenlet_release(gs[1]);
  return rc != 0;
}

int main(void) {
  if (run(foo, bar))
    return 1;
  puts("without sleep(0):");
  if (run(foo_greedy, bar_greedy))
    return 1;
  return conc_hub_destroy() != 0; /* free the loop the hub made */
}
