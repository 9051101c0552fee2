/*
 * Lesson 33: a Barrier for two workers and the main thread.
 * Seed 002 ("Барьеры": br = Barrier(3); f1 stores x**2, f2 stores x*2,
 * both wait at the barrier, and so does main, which then prints the sum).
 *
 * Python:                               C:
 *   br = Barrier(3)                       conc_barrier_init(&br, 3, NULL);
 *   store = []                            a small array guarded by a Lock
 *   def f1(x):                            static void *f1(void *arg) {
 *       print("Calc part1")                 printf("Calc part1\n");
 *       store.append(x ** 2)                append(x * x);
 *       sleep(0.5)                          conc_sleep(0.05);
 *       br.wait()                           conc_barrier_wait(&br,
 * CONC_FOREVER); } Thread(target=f1, args=(3,)).start() conc_thread_start(&t1);
 *   br.wait()                             conc_barrier_wait(&br, CONC_FOREVER);
 *   print("Result: ", sum(store))         printf("Result:  %d\n", store[0] +
 * store[1]);
 *
 * No party passes wait() until all three have arrived, so main sees both
 * parts of the result (the barrier also makes their stores visible to
 * main). list.append is atomic under the GIL; a C array needs the Lock.
 * The two "Calc" lines may come in either order. wait() returns each party
 * a different index 0..2 (the last to arrive gets 2); parties and
 * n_waiting are the Barrier's properties.
 */
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
  return 0;
}
