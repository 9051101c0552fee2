// clang-format off
/*
 * Lesson 68: Value and Array with typecodes.
 * Seed 004 (Value('d', 0.0) and Array('i', range(10)) changed by a child).
 *
 * Python:                                        C:
 *   num = Value('d', 0.0)                          conc_value_init(&num, 'd', &(double){0.0}, NULL);
 *   arr = Array('i', range(10))                    conc_array_init(&arr, 'i', 10, init, NULL);
 *   n.value = 3.1415927                            conc_value_set(&num, &(double){3.1415927});
 *   a[i] = -a[i]                                   conc_array_get(&arr, i, &x); x = -x;
 *                                                  conc_array_set(&arr, i, &x);
 *   print(num.value); print(arr[:])                conc_value_get(&num, &d);
 *                                                  conc_array_read(&arr, 0, 10, out);
 *
 * The typecode picks the C type of the elements, as in Python's array
 * module: the table shows each one's size on this machine.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static conc_value_t num;
static conc_array_t arr;

static int f(void *arg, void **result) {
  (void)arg;
  conc_value_set(&num, &(double){3.1415927});
  for (ptrdiff_t i = 0; i < (ptrdiff_t)conc_array_len(&arr); i++) {
    int x;
    conc_array_get(&arr, i, &x);
    x = -x;
    conc_array_set(&arr, i, &x);
  }
  return 0;
}

int main(void) {
  const char *codes = "cbBhHiIlLqQfdu";
  const char *ctype[] = {
      "char",           "signed char", "unsigned char",      "short",
      "unsigned short", "int",         "unsigned int",       "long",
      "unsigned long",  "long long",   "unsigned long long", "float",
      "double",         "wchar_t"};
  for (int k = 0; codes[k]; k++)
    printf("'%c' %-18s %d byte(s)\n", codes[k], ctype[k],
           conc_typecode_size(codes[k]));

  int init[10];
  for (int i = 0; i < 10; i++)
    init[i] = i;
  conc_value_init(&num, 'd', &(double){0.0}, NULL);
  conc_array_init(&arr, 'i', 10, init, NULL);

  conc_process_t p;
  conc_process_init(&p, f, NULL, NULL);
  conc_process_start(&p);
  conc_process_join(&p, CONC_FOREVER);
  conc_process_destroy(&p);

  double d;
  int out[10];
  conc_value_get(&num, &d);
  conc_array_read(&arr, 0, 10, out);
  printf("%.7f\n[", d);
  for (int i = 0; i < 10; i++)
    printf(i ? ", %d" : "%d", out[i]);
  printf("]\n");
  conc_value_destroy(&num);
  conc_array_destroy(&arr);
  return 0;
}
