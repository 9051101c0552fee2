// clang-format off
/*
 * Lesson 67: processes do not share a list; an Array is shared.
 * Seed 001 (li.append(i) in each child; temp = Array('i', [11, 22, 33, 44])).
 *
 * Python:                                        C:
 *   li = []                                        static int li[10]; static int li_len;
 *   li.append(i)  # in the child                   li[li_len++] = i;   (in the child's copy)
 *   temp = Array('i', [11, 22, 33, 44])            conc_array_init(&temp, 'i', 4, (int[]){11, 22, 33, 44}, NULL);
 *   temp[i] = 100 + i                              conc_array_set(&temp, i, &(int){100 + i});
 *   for item in temp:                              for (size_t k = 0; k < conc_array_len(&temp); k++) {
 *       print(i, '----->', item)                       conc_array_get(&temp, (ptrdiff_t)k, &item); ... }
 *
 * A child gets a copy of the parent's memory at fork: its appends change its
 * own copy, so the parent's list stays empty. The Array's data lives in
 * shared memory, so the second child sees the first one's write. The
 * children are joined one by one to make the output deterministic.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int li[10];
static int li_len;

static void print_list(const char *label) {
  printf("%s [", label);
  for (int k = 0; k < li_len; k++)
    printf(k ? ", %d" : "%d", li[k]);
  printf("]\n");
}

static int foo(void *arg, void **result) {
  li[li_len++] = *(int *)arg;
  print_list("say hi");
  return 0;
}

static conc_array_t temp;

static int foo_array(void *arg, void **result) {
  int i = *(int *)arg;
  conc_array_set(&temp, i, &(int){100 + i});
  for (size_t k = 0; k < conc_array_len(&temp); k++) {
    int item;
    conc_array_get(&temp, (ptrdiff_t)k, &item);
    printf("%d -----> %d\n", i, item);
  }
  return 0;
}

static void run(conc_fn_t fn, int i) {
  conc_process_t p;
  conc_process_init(&p, fn, &i, NULL);
  conc_process_start(&p);
  conc_process_join(&p, CONC_FOREVER);
  conc_process_destroy(&p);
}

int main(void) {
  for (int i = 0; i < 3; i++)
    run(foo, i);
  print_list("ending");

  conc_array_init(&temp, 'i', 4, (int[]){11, 22, 33, 44}, NULL);
  for (int i = 0; i < 2; i++)
    run(foo_array, i);
  conc_array_destroy(&temp);
  return 0;
}
