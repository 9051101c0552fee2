// clang-format off
/*
 * Lesson 72: Manager().dict() and Manager().list() shared by processes.
 * Seed 001 (dic[i] = 100 + i in each child) and seed 004 (d[1] = '1',
 * d['2'] = 2, d[0.25] = None; l.reverse()).
 *
 * Python:                                      C:
 *   dic = manager.dict()                         conc_shared_dict_init(&dic, NULL);
 *   l = manager.list(range(10))                  conc_shared_list_init(&l, NULL); + conc_shared_list_append
 *   dic[i] = 100 + i                             conc_shared_dict_set(&dic, &i, sizeof i, &v, sizeof v);
 *   dic[k]                                       conc_shared_dict_get(&dic, k, klen, buf, cap, &len);
 *   l.reverse()                                  conc_shared_list_reverse(&l);
 *   d['pets'] = pets  (a proxy)                  conc_shared_dict_set_dict(&d, "pets", 4, &pets);
 *   d['pets']['ferrets'] = 3                     conc_shared_dict_get_dict(&d, "pets", 4, &p);
 *                                                conc_shared_dict_set(&p, "ferrets", 7, &three, sizeof three);
 *   d['l'] = [1, 2, 3]  (a plain list)           conc_shared_dict_set(&d, "l", 1, plain, sizeof plain);
 *   d['l'].append(4)    (lost: changes a copy)   get into a local array, change it
 *
 * There is no server process: the containers live in shared memory that
 * every child forked afterwards sees. Keys and values are bytes, copied in
 * and out, where Python pickles objects.
 */
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

static conc_shared_dict_t dic, d, pets;
static conc_shared_list_t l;

/* seed 001: def Foo(i): dic[i] = 100 + i */
static int foo(void *arg, void **result) {
  int i = (int)(intptr_t)arg, v = 100 + i;
  conc_shared_dict_set(&dic, &i, sizeof i, &v, sizeof v);
  return 0;
}

/* seed 004: def f(d, l): d[1] = '1'; d['2'] = 2; d[0.25] = None; l.reverse() */
static int f(void *arg, void **result) {
  (void)arg;
  conc_shared_dict_set(&d, "1", 1, "'1'", 3);
  conc_shared_dict_set(&d, "'2'", 3, "2", 1);
  conc_shared_dict_set(&d, "0.25", 4, "None", 4);
  conc_shared_list_reverse(&l);
  return 0;
}

/* the nested lesson: the proxy's change is seen, the plain copy's is lost */
static int nested(void *arg, void **result) {
  (void)arg;
  conc_shared_dict_t p;
  int three = 3, copy[4];
  size_t n;
  conc_shared_dict_get_dict(&d, "pets", 4, &p);
  conc_shared_dict_set(&p, "ferrets", 7, &three, sizeof three);
  conc_shared_dict_get(&d, "l", 1, copy, sizeof copy, &n);
  copy[n / sizeof(int)] = 4; /* appended to the child's copy only */
  return 0;
}

static void run(conc_fn_t target, int nproc) {
  conc_process_t p[10];
  for (int i = 0; i < nproc; i++) {
    conc_process_init(&p[i], target, (void *)(intptr_t)i, NULL);
    conc_process_start(&p[i]);
  }
  for (int i = 0; i < nproc; i++) {
    conc_process_join(&p[i], CONC_FOREVER);
    conc_process_destroy(&p[i]);
  }
}

static int cmp_int(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

int main(void) {
  /* seed 001: ten processes fill one dict; the parent prints it sorted */
  conc_shared_dict_init(&dic, NULL);
  run(foo, 10);
  int keys[10];
  size_t n = conc_shared_dict_len(&dic), len;
  for (size_t i = 0; i < n; i++)
    conc_shared_dict_key_at(&dic, i, &keys[i], sizeof keys[i], &len);
  qsort(keys, n, sizeof keys[0], cmp_int);
  printf("{");
  for (size_t i = 0; i < n; i++) {
    int v;
    conc_shared_dict_get(&dic, &keys[i], sizeof keys[i], &v, sizeof v, &len);
    printf("%s%d: %d", i ? ", " : "", keys[i], v);
  }
  printf("}\n");

  /* seed 004: one child changes a dict and reverses a list */
  conc_shared_dict_init(&d, NULL);
  conc_shared_list_init(&l, NULL);
  for (int i = 0; i < 10; i++)
    conc_shared_list_append(&l, &i, sizeof i);
  run(f, 1);
  printf("{");
  for (size_t i = 0; i < conc_shared_dict_len(&d); i++) {
    char k[8], v[8];
    size_t kl, vl;
    conc_shared_dict_key_at(&d, i, k, sizeof k, &kl);
    conc_shared_dict_get(&d, k, kl, v, sizeof v, &vl);
    printf("%s%.*s: %.*s", i ? ", " : "", (int)kl, k, (int)vl, v);
  }
  printf("}\n[");
  for (size_t i = 0; i < conc_shared_list_len(&l); i++) {
    int v;
    conc_shared_list_get(&l, (ptrdiff_t)i, &v, sizeof v, &len);
    printf("%s%d", i ? ", " : "", v);
  }
  printf("]\n");

  /* nested: a proxy inside d versus a plain list inside d */
  int two = 2, plain[3] = {1, 2, 3}, ferrets, out[4];
  conc_shared_dict_init(&pets, NULL);
  conc_shared_dict_set(&pets, "ferrets", 7, &two, sizeof two);
  conc_shared_dict_set_dict(&d, "pets", 4, &pets);
  conc_shared_dict_set(&d, "l", 1, plain, sizeof plain);
  run(nested, 1);
  conc_shared_dict_get(&pets, "ferrets", 7, &ferrets, sizeof ferrets, &len);
  printf("pets['ferrets'] = %d (changed through the proxy)\n", ferrets);
  conc_shared_dict_get(&d, "l", 1, out, sizeof out, &len);
  printf("d['l'] = [");
  for (size_t i = 0; i < len / sizeof(int); i++)
    printf("%s%d", i ? ", " : "", out[i]);
  printf("] (the child's append to its copy is lost)\n");

  conc_shared_dict_destroy(&pets);
  conc_shared_dict_destroy(&d);
  conc_shared_list_destroy(&l);
  conc_shared_dict_destroy(&dic);
  return 0;
}
