// clang-format off
/*
 * Lesson 69: an Array guarded by an RLock, changed by 20 processes.
 * Seed 004 (with lock: for i in range(len(arr)): arr[i] += 1, 20 times).
 *
 * Python:                                        C:
 *   lock = RLock()                                 conc_rlock_t *lock = conc_shared_alloc(sizeof *lock);
 *                                                  conc_rlock_init(lock, &(conc_rlock_opts_t){.pshared = true});
 *   arr = Array('i', 5, lock=lock)                 conc_array_init(&arr, 'i', 5, NULL,
 *                                                    &(conc_array_opts_t){.rlock = lock});
 *   with lock:                                     conc_rlock_acquire(lock);
 *       for i in range(len(arr)):                  for (ptrdiff_t i = 0; i < (ptrdiff_t)conc_array_len(&arr); i++)
 *           arr[i] += 1                                ... conc_array_get / conc_array_set ...
 *                                                  conc_rlock_release(lock);
 *
 * Each element access takes the array's lock again; because it is the same
 * RLock the process already holds, that is a cheap recursive acquire. Holding
 * it across the whole loop makes each process's five increments one step,
 * so every element ends at exactly 20.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_rlock_t *lock;
static conc_array_t arr;

static int add_one(void *arg, void **result) {
  (void)arg;
  conc_rlock_acquire(lock);
  for (ptrdiff_t i = 0; i < (ptrdiff_t)conc_array_len(&arr); i++) {
    int x;
    conc_array_get(&arr, i, &x);
    x += 1;
    conc_array_set(&arr, i, &x);
  }
  conc_rlock_release(lock);
  return 0;
}

int main(void) {
  lock = conc_shared_alloc(sizeof *lock);
  conc_rlock_init(lock, &(conc_rlock_opts_t){.pshared = true});
  conc_array_init(&arr, 'i', 5, NULL, &(conc_array_opts_t){.rlock = lock});
  conc_process_t p[20];
  for (int k = 0; k < 20; k++) {
    conc_process_init(&p[k], add_one, NULL, NULL);
    conc_process_start(&p[k]);
  }
  for (int k = 0; k < 20; k++) {
    conc_process_join(&p[k], CONC_FOREVER);
    conc_process_destroy(&p[k]);
  }
  int out[5];
  conc_array_read(&arr, 0, 5, out);
  printf("[%d, %d, %d, %d, %d]\n", out[0], out[1], out[2], out[3], out[4]);
  conc_array_destroy(&arr);
  conc_shared_free(lock);
  return 0;
}
