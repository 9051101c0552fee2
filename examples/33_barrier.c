// clang-format off
/*
 * Lesson 33: a Barrier for two workers and the main thread.
 * Seed 002 ("Барьеры": br = Barrier(3); f1 stores x**2, f2 stores x*2,
 * both wait at the barrier, and so does main, which then prints the sum).
 *
 * Python:                               C:
 *   br = Barrier(3)                       conc_barrier_init(&br, 3, NULL);
 *   store = []                            a small array guarded by a Lock
 *   def f1(x):                            static int f1(void *arg, void **result) {
 *       print("Calc part1")                   printf("Calc part1\n");
 *       store.append(x ** 2)                  append(x * x);
 *       sleep(0.5)                            conc_sleep(0.05);
 *       br.wait()                             conc_barrier_wait(&br, CONC_FOREVER);
 *                                             return 0; }
 *   Thread(target=f1, args=(3,)).start()  conc_thread_init(&t1, f1, &three, NULL);
 *                                         conc_thread_start(&t1);
 *   br.wait()                             conc_barrier_wait(&br, CONC_FOREVER);
 *   print("Result: ", sum(store))         printf("Result:  %d\n", store[0] + store[1]);
 *   def action(): raise ValueError(...)   static int action(void *arg, void **result) {
 *                                             return conc_raise(CONC_EINVAL, "..."); }
 *   Barrier(2, action=action)             conc_barrier_init(&b, 2, &(conc_barrier_opts_t){.action = action});
 *
 * No party passes wait() until all three have arrived, so main sees both
 * parts of the result (the barrier also makes their stores visible to
 * main). list.append is atomic under the GIL; a C array needs the Lock.
 * The two "Calc" lines may come in either order. wait() returns each party
 * a different index 0..2 (the last to arrive gets 2); parties and
 * n_waiting are the Barrier's properties.
 *
 * An action that raises breaks the barrier: the party that ran it (the
 * last to arrive) gets the action's error, every other party
 * BrokenBarrierError (CONC_EBROKEN). The epilogue shows it with two
 * parties.
 */
// clang-format on
#include <stdatomic.h>
#include <stdio.h>

#include <conc.h>

static conc_barrier_t br;
static conc_lock_t store_lock = CONC_LOCK_INIT;
static int store[2], nstore;
static atomic_int index_sum;

static void append(int v) {
  CONC_WITH_LOCK(&store_lock) { store[nstore++] = v; }
}

static int f1(void *arg, void **result) {
  int x = *(const int *)arg;
  printf("Calc part1\n");
  append(x * x);
  conc_sleep(0.05);
  atomic_fetch_add(&index_sum, conc_barrier_wait(&br, CONC_FOREVER));
  return 0;
}

static int f2(void *arg, void **result) {
  int x = *(const int *)arg;
  printf("Calc part2\n");
  append(x * 2);
  conc_sleep(0.1);
  atomic_fetch_add(&index_sum, conc_barrier_wait(&br, CONC_FOREVER));
  return 0;
}

static conc_barrier_t failing;

static int failing_action(void *arg, void **result) {
  return conc_raise(CONC_EINVAL, "the action failed");
}

static int party(void *arg, void **result) {
  *(int *)arg = conc_barrier_wait(&failing, CONC_FOREVER);
  return 0;
}

/* Two parties at a barrier whose action raises; prints what each got, in
 * a fixed order (which party arrives last varies). */
static void action_that_raises(void) {
  conc_barrier_init(&failing, 2,
                    &(conc_barrier_opts_t){.action = failing_action});
  int rc_thread = 0;
  conc_thread_t t;
  conc_thread_init(&t, party, &rc_thread, NULL);
  conc_thread_start(&t);
  int rc_main = conc_barrier_wait(&failing, CONC_FOREVER);
  conc_thread_join(&t, CONC_FOREVER);
  conc_thread_destroy(&t);
  int ran = rc_main == CONC_EINVAL ? rc_main : rc_thread;
  int other = rc_main == CONC_EINVAL ? rc_thread : rc_main;
  printf("action raised: the party that ran it got %s, the other %s; "
         "broken = %s\n",
         conc_err_name(ran), conc_err_name(other),
         conc_barrier_broken(&failing) ? "True" : "False");
  conc_barrier_destroy(&failing);
}

int main(void) {
  conc_barrier_init(&br, 3, NULL);
  int three = 3, seven = 7;
  conc_thread_t t1, t2;
  conc_thread_init(&t1, f1, &three, NULL);
  conc_thread_init(&t2, f2, &seven, NULL);
  conc_thread_start(&t1);
  conc_thread_start(&t2);

  atomic_fetch_add(&index_sum, conc_barrier_wait(&br, CONC_FOREVER));
  printf("Result:  %d\n", store[0] + store[1]);

  conc_thread_join(&t1, CONC_FOREVER);
  conc_thread_join(&t2, CONC_FOREVER);
  printf("indices 0+1+2 = %d, parties = %d, n_waiting = %d, broken = %s\n",
         atomic_load(&index_sum), conc_barrier_parties(&br),
         conc_barrier_n_waiting(&br),
         conc_barrier_broken(&br) ? "True" : "False");
  conc_thread_destroy(&t1);
  conc_thread_destroy(&t2);
  conc_barrier_destroy(&br);

  action_that_raises();
  return 0;
}
