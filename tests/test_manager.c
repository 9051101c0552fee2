/*
 * Manager-style shared dict and list (spec process.md M4; seeds 001, 004).
 * Children are raw forks that _exit; every test reaps them and runs under an
 * alarm() watchdog so a hang fails instead of blocking CI.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/manager.h"
#include "conc/sync.h"
#include "harness.h"
#include "manager-int.h"

#define S(str) (str), strlen(str)

static void watchdog(void) { alarm(30); }

static void reap(pid_t pid, int want_code) {
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (want_code >= 0) {
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), want_code);
  }
}

static int get_int(conc_shared_dict_t *d, const char *key, int *out) {
  size_t len = 0;
  int rc = conc_shared_dict_get(d, S(key), out, sizeof *out, &len);
  if (rc == 0 && len != sizeof *out)
    return CONC_EIO;
  return rc;
}

/* M4 */
static void dict_supports_container_api(void **state) {
  (void)state;
  conc_shared_dict_t d;
  assert_int_equal(conc_shared_dict_init(&d, NULL), 0);
  assert_int_equal(conc_shared_dict_len(&d), 0);
  assert_int_equal(conc_shared_dict_set(&d, S("a"), S("one")), 0);
  assert_int_equal(conc_shared_dict_set(&d, S("b"), S("two")), 0);
  assert_int_equal(conc_shared_dict_set(&d, S("c"), S("three")), 0);
  assert_int_equal(conc_shared_dict_len(&d), 3);
  assert_int_equal(conc_shared_dict_contains(&d, S("b")), 1);
  assert_int_equal(conc_shared_dict_contains(&d, S("zz")), 0);

  char buf[16];
  size_t len = 0;
  assert_int_equal(conc_shared_dict_get(&d, S("c"), buf, sizeof buf, &len), 0);
  assert_int_equal(len, 5);
  assert_memory_equal(buf, "three", 5);
  /* too small: the size is reported, nothing copied past cap */
  assert_int_equal(conc_shared_dict_get(&d, S("c"), buf, 2, &len),
                   CONC_ETOOSHORT);
  assert_int_equal(len, 5);
  /* KeyError */
  assert_int_equal(conc_shared_dict_get(&d, S("x"), buf, sizeof buf, &len),
                   CONC_EKEY);
  assert_int_equal(conc_shared_dict_del(&d, S("x")), CONC_EKEY);

  /* overwrite keeps the insertion position, as a Python dict does */
  assert_int_equal(conc_shared_dict_set(&d, S("a"), S("uno")), 0);
  const char *order[] = {"a", "b", "c"};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(conc_shared_dict_key_at(&d, i, buf, sizeof buf, &len), 0);
    assert_int_equal(len, 1);
    assert_memory_equal(buf, order[i], 1);
  }
  assert_int_equal(conc_shared_dict_key_at(&d, 3, buf, sizeof buf, &len),
                   CONC_EINDEX);
  assert_int_equal(conc_shared_dict_get(&d, S("a"), buf, sizeof buf, &len), 0);
  assert_memory_equal(buf, "uno", 3);

  assert_int_equal(conc_shared_dict_del(&d, S("b")), 0);
  assert_int_equal(conc_shared_dict_len(&d), 2);
  assert_int_equal(conc_shared_dict_contains(&d, S("b")), 0);
  assert_int_equal(conc_shared_dict_key_at(&d, 1, buf, sizeof buf, &len), 0);
  assert_memory_equal(buf, "c", 1);

  /* empty key and empty value are legal byte strings */
  assert_int_equal(conc_shared_dict_set(&d, "", 0, "", 0), 0);
  assert_int_equal(conc_shared_dict_get(&d, "", 0, NULL, 0, &len), 0);
  assert_int_equal(len, 0);

  assert_int_equal(conc_shared_dict_clear(&d), 0);
  assert_int_equal(conc_shared_dict_len(&d), 0);
  assert_int_equal(conc_shared_dict_set(&d, S("a"), S("again")), 0);
  assert_int_equal(conc_shared_dict_len(&d), 1);
  conc_shared_dict_destroy(&d);
}

static void bad_input_is_einval_and_changes_nothing(void **state) {
  (void)state;
  conc_shared_dict_t d;
  conc_shared_list_t l;
  size_t len;
  assert_int_equal(conc_shared_dict_init(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_shared_list_init(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_shared_dict_set(NULL, S("a"), S("b")), CONC_EINVAL);
  assert_int_equal(conc_shared_dict_len(NULL), 0);
  assert_int_equal(conc_shared_list_len(NULL), 0);
  assert_int_equal(conc_shared_list_append(NULL, S("a")), CONC_EINVAL);
  assert_int_equal(conc_shared_dict_init(&d, NULL), 0);
  assert_int_equal(conc_shared_list_init(&l, NULL), 0);
  assert_int_equal(conc_shared_dict_set(&d, NULL, 3, S("b")), CONC_EINVAL);
  assert_int_equal(conc_shared_dict_set(&d, S("a"), NULL, 2), CONC_EINVAL);
  assert_int_equal(conc_shared_dict_get(&d, S("a"), NULL, 4, &len),
                   CONC_EINVAL);
  /* a list handle is not a dict */
  assert_int_equal(
      conc_shared_dict_set((conc_shared_dict_t *)&l, S("a"), S("b")),
      CONC_EINVAL);
  assert_int_equal(conc_shared_list_append((conc_shared_list_t *)&d, S("a")),
                   CONC_EINVAL);
  assert_int_equal(conc_shared_dict_len(&d), 0);
  assert_int_equal(conc_shared_list_len(&l), 0);
  conc_shared_dict_destroy(&d);
  conc_shared_list_destroy(&l);
  conc_shared_dict_destroy(&d); /* second destroy is a no-op */
}

/* M4, seed 001: dic[i] = 100 + i in each child; the parent sees them all. */
static void dict_children_mutate_parent_sees(void **state) {
  (void)state;
  watchdog();
  conc_shared_dict_t d;
  assert_int_equal(conc_shared_dict_init(&d, NULL), 0);
  pid_t pids[8];
  for (int i = 0; i < 8; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      char key[8];
      snprintf(key, sizeof key, "%d", i);
      int v = 100 + i;
      _exit(conc_shared_dict_set(&d, S(key), &v, sizeof v) == 0 ? 0 : 1);
    }
  }
  for (int i = 0; i < 8; i++)
    reap(pids[i], 0);
  assert_int_equal(conc_shared_dict_len(&d), 8);
  for (int i = 0; i < 8; i++) {
    char key[8];
    int v = 0;
    snprintf(key, sizeof key, "%d", i);
    assert_int_equal(get_int(&d, key, &v), 0);
    assert_int_equal(v, 100 + i);
  }
  conc_shared_dict_destroy(&d);
  alarm(0);
}

/* M4 */
static void list_supports_container_api(void **state) {
  (void)state;
  conc_shared_list_t l;
  int v;
  size_t len;
  assert_int_equal(conc_shared_list_init(&l, NULL), 0);
  /* IndexError cases on an empty list */
  assert_int_equal(conc_shared_list_pop(&l, -1, &v, sizeof v, &len),
                   CONC_EINDEX);
  assert_int_equal(conc_shared_list_get(&l, 0, &v, sizeof v, &len),
                   CONC_EINDEX);
  for (int i = 0; i < 5; i++)
    assert_int_equal(conc_shared_list_append(&l, &i, sizeof i), 0);
  assert_int_equal(conc_shared_list_len(&l), 5);
  assert_int_equal(conc_shared_list_get(&l, -1, &v, sizeof v, &len), 0);
  assert_int_equal(v, 4);
  assert_int_equal(conc_shared_list_get(&l, -5, &v, sizeof v, &len), 0);
  assert_int_equal(v, 0);
  assert_int_equal(conc_shared_list_get(&l, 5, &v, sizeof v, &len),
                   CONC_EINDEX);
  assert_int_equal(conc_shared_list_get(&l, -6, &v, sizeof v, &len),
                   CONC_EINDEX);
  v = 42;
  assert_int_equal(conc_shared_list_set(&l, -2, &v, sizeof v), 0);
  assert_int_equal(conc_shared_list_set(&l, 9, &v, sizeof v), CONC_EINDEX);
  /* insert clamps like Python: [-9 ->0] ... [99 -> end] */
  int a = -1, b = 99;
  assert_int_equal(conc_shared_list_insert(&l, -9, &a, sizeof a), 0);
  assert_int_equal(conc_shared_list_insert(&l, 99, &b, sizeof b), 0);
  int want[] = {-1, 0, 1, 2, 42, 4, 99};
  for (int i = 0; i < 7; i++) {
    assert_int_equal(conc_shared_list_get(&l, i, &v, sizeof v, &len), 0);
    assert_int_equal(v, want[i]);
  }
  /* pop with a short buffer leaves the item in place */
  char c;
  assert_int_equal(conc_shared_list_pop(&l, 0, &c, 1, &len), CONC_ETOOSHORT);
  assert_int_equal(len, sizeof(int));
  assert_int_equal(conc_shared_list_len(&l), 7);
  assert_int_equal(conc_shared_list_pop(&l, 0, &v, sizeof v, &len), 0);
  assert_int_equal(v, -1);
  assert_int_equal(conc_shared_list_pop(&l, -1, &v, sizeof v, &len), 0);
  assert_int_equal(v, 99);
  assert_int_equal(conc_shared_list_reverse(&l), 0);
  int rev[] = {4, 42, 2, 1, 0};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(conc_shared_list_get(&l, i, &v, sizeof v, &len), 0);
    assert_int_equal(v, rev[i]);
  }
  assert_int_equal(conc_shared_list_clear(&l), 0);
  assert_int_equal(conc_shared_list_len(&l), 0);
  conc_shared_list_destroy(&l);
}

/* M4, seed 004: a child sets d[1], d['2'], d[0.25] and reverses l; the
 * parent prints both changed. */
static void dict_and_list_changed_by_child(void **state) {
  (void)state;
  watchdog();
  conc_shared_dict_t d;
  conc_shared_list_t l;
  assert_int_equal(conc_shared_dict_init(&d, NULL), 0);
  assert_int_equal(conc_shared_list_init(&l, NULL), 0);
  for (int i = 0; i < 10; i++)
    assert_int_equal(conc_shared_list_append(&l, &i, sizeof i), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int ok = conc_shared_dict_set(&d, S("1"), S("'1'")) == 0 &&
             conc_shared_dict_set(&d, S("'2'"), S("2")) == 0 &&
             conc_shared_dict_set(&d, S("0.25"), S("None")) == 0 &&
             conc_shared_list_reverse(&l) == 0;
    _exit(ok ? 0 : 1);
  }
  reap(pid, 0);
  assert_int_equal(conc_shared_dict_len(&d), 3);
  char buf[8];
  size_t len;
  assert_int_equal(conc_shared_dict_get(&d, S("0.25"), buf, sizeof buf, &len),
                   0);
  assert_int_equal(len, 4);
  assert_memory_equal(buf, "None", 4);
  for (int i = 0; i < 10; i++) {
    int v;
    assert_int_equal(conc_shared_list_get(&l, i, &v, sizeof v, &len), 0);
    assert_int_equal(v, 9 - i);
  }
  conc_shared_dict_destroy(&d);
  conc_shared_list_destroy(&l);
  alarm(0);
}

/* M4 (test_dict_proxy_nested): d['pets'] is a proxy of the pets dict; a
 * child's d['pets']['ferrets'] = 3 is seen through pets and through d. */
static void nested_proxy_sees_mutations(void **state) {
  (void)state;
  watchdog();
  conc_shared_dict_t pets, supplies, d, got;
  conc_shared_list_t l, gotl;
  assert_int_equal(conc_shared_dict_init(&pets, NULL), 0);
  assert_int_equal(conc_shared_dict_init(&supplies, NULL), 0);
  assert_int_equal(conc_shared_dict_init(&d, NULL), 0);
  assert_int_equal(conc_shared_list_init(&l, NULL), 0);
  int two = 2, ten = 10;
  assert_int_equal(conc_shared_dict_set(&pets, S("ferrets"), &two, 4), 0);
  assert_int_equal(conc_shared_dict_set(&supplies, S("water"), &ten, 4), 0);
  assert_int_equal(conc_shared_dict_set_dict(&d, S("pets"), &pets), 0);
  assert_int_equal(conc_shared_dict_set_dict(&d, S("supplies"), &supplies), 0);
  assert_int_equal(conc_shared_dict_set_list(&d, S("log"), &l), 0);
  /* a container value is not bytes, and not the other kind */
  char buf[8];
  size_t len;
  assert_int_equal(conc_shared_dict_get(&d, S("pets"), buf, sizeof buf, &len),
                   CONC_ESTATE);
  assert_int_equal(conc_shared_dict_get_list(&d, S("pets"), &gotl),
                   CONC_ESTATE);
  assert_int_equal(conc_shared_dict_get_dict(&pets, S("ferrets"), &got),
                   CONC_ESTATE);
  assert_int_equal(conc_shared_dict_get_dict(&d, S("cats"), &got), CONC_EKEY);

  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    conc_shared_dict_t p;
    conc_shared_list_t lg;
    int three = 3;
    int ok = conc_shared_dict_get_dict(&d, S("pets"), &p) == 0 &&
             conc_shared_dict_set(&p, S("ferrets"), &three, 4) == 0 &&
             conc_shared_dict_get_list(&d, S("log"), &lg) == 0 &&
             conc_shared_list_append(&lg, S("fed")) == 0;
    _exit(ok ? 0 : 1);
  }
  reap(pid, 0);
  int v = 0;
  assert_int_equal(get_int(&pets, "ferrets", &v), 0);
  assert_int_equal(v, 3);
  assert_int_equal(conc_shared_dict_get_dict(&d, S("pets"), &got), 0);
  assert_int_equal(get_int(&got, "ferrets", &v), 0);
  assert_int_equal(v, 3);
  conc_shared_dict_destroy(&got); /* borrowed: pets stays mapped */
  assert_int_equal(get_int(&pets, "ferrets", &v), 0);
  assert_int_equal(conc_shared_list_len(&l), 1);
  assert_int_equal(get_int(&supplies, "water", &v), 0);
  assert_int_equal(v, 10);
  conc_shared_dict_destroy(&pets);
  conc_shared_dict_destroy(&supplies);
  conc_shared_dict_destroy(&d);
  conc_shared_list_destroy(&l);
  alarm(0);
}

/* M4: d['l'] holds a plain list (bytes). A child that takes it out and
 * appends to its copy changes nothing; storing it back does. */
static void nested_plain_list_mutation_is_lost(void **state) {
  (void)state;
  watchdog();
  conc_shared_dict_t d;
  assert_int_equal(conc_shared_dict_init(&d, NULL), 0);
  int plain[4] = {1, 2, 3, 0};
  assert_int_equal(conc_shared_dict_set(&d, S("l"), plain, 3 * sizeof(int)), 0);
  for (int store_back = 0; store_back < 2; store_back++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      int copy[4];
      size_t n;
      if (conc_shared_dict_get(&d, S("l"), copy, sizeof copy, &n) != 0)
        _exit(1);
      copy[n / sizeof(int)] = 4; /* d['l'].append(4) on the copy */
      n += sizeof(int);
      if (store_back && conc_shared_dict_set(&d, S("l"), copy, n) != 0)
        _exit(1);
      _exit(0);
    }
    reap(pid, 0);
    int out[4];
    size_t n;
    assert_int_equal(conc_shared_dict_get(&d, S("l"), out, sizeof out, &n), 0);
    assert_int_equal(n, (size_t)(store_back ? 4 : 3) * sizeof(int));
    if (store_back)
      assert_int_equal(out[3], 4);
  }
  conc_shared_dict_destroy(&d);
  alarm(0);
}

/* Fixed capacity: CONC_EFULL changes nothing; churn past max_bytes works
 * because dead records are compacted away. */
static void full_container_is_efull_and_compacts(void **state) {
  (void)state;
  conc_shared_dict_t d;
  conc_shared_list_t l;
  assert_int_equal(
      conc_shared_dict_init(
          &d, &(conc_manager_opts_t){.max_items = 2, .max_bytes = 96}),
      0);
  assert_int_equal(conc_shared_dict_set(&d, S("a"), S("1")), 0);
  assert_int_equal(conc_shared_dict_set(&d, S("b"), S("2")), 0);
  assert_int_equal(conc_shared_dict_set(&d, S("c"), S("3")), CONC_EFULL);
  assert_int_equal(conc_shared_dict_len(&d), 2);
  assert_int_equal(conc_shared_dict_contains(&d, S("c")), 0);
  char big[200] = {0};
  assert_int_equal(conc_shared_dict_set(&d, S("a"), big, sizeof big),
                   CONC_EFULL);
  char buf[4];
  size_t len;
  assert_int_equal(conc_shared_dict_get(&d, S("a"), buf, sizeof buf, &len), 0);
  assert_int_equal(len, 1);
  assert_memory_equal(buf, "1", 1);
  for (int i = 0; i < 1000; i++) {
    char v[4];
    snprintf(v, sizeof v, "%d", i % 1000);
    assert_int_equal(conc_shared_dict_set(&d, S("a"), S(v)), 0);
  }
  assert_int_equal(conc_shared_dict_get(&d, S("a"), buf, sizeof buf, &len), 0);
  assert_memory_equal(buf, "999", 3);
  assert_int_equal(conc_shared_dict_get(&d, S("b"), buf, sizeof buf, &len), 0);
  assert_memory_equal(buf, "2", 1);
  conc_shared_dict_destroy(&d);

  assert_int_equal(
      conc_shared_list_init(&l, &(conc_manager_opts_t){.max_items = 3}), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(conc_shared_list_append(&l, &i, sizeof i), 0);
  assert_int_equal(conc_shared_list_append(&l, S("x")), CONC_EFULL);
  assert_int_equal(conc_shared_list_insert(&l, 0, S("x")), CONC_EFULL);
  assert_int_equal(conc_shared_list_len(&l), 3);
  conc_shared_list_destroy(&l);
}

/* A process that dies holding the container's lock (white box) leaves a
 * usable container. */
static void owner_death_is_repaired(void **state) {
  (void)state;
  watchdog();
  conc_shared_dict_t d;
  assert_int_equal(conc_shared_dict_init(&d, NULL), 0);
  assert_int_equal(conc_shared_dict_set(&d, S("k"), S("v")), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    conc__mgr_t *m = d.priv.blk;
    if (conc_lock_acquire(&m->lock) != 0)
      _exit(1);
    _exit(0); /* dies holding it */
  }
  reap(pid, 0);
  char buf[4];
  size_t len;
  assert_int_equal(conc_shared_dict_get(&d, S("k"), buf, sizeof buf, &len), 0);
  assert_memory_equal(buf, "v", 1);
  assert_int_equal(conc_shared_dict_set(&d, S("k2"), S("v2")), 0);
  assert_int_equal(conc_shared_dict_len(&d), 2);
  conc_shared_dict_destroy(&d);
  alarm(0);
}

/* A process killed while it was building an update (white box: it scribbles
 * over everything the published state does not use, then dies holding the
 * lock): the half-built update is never seen, and later updates, including
 * ones that compact into the scribbled heap, work. */
static void half_built_update_is_never_seen(void **state) {
  (void)state;
  watchdog();
  conc_shared_dict_t d;
  assert_int_equal(
      conc_shared_dict_init(
          &d, &(conc_manager_opts_t){.max_items = 8, .max_bytes = 256}),
      0);
  assert_int_equal(conc_shared_dict_set(&d, S("a"), S("a=0#$")), 0);
  assert_int_equal(conc_shared_dict_set(&d, S("b"), S("b=0#$")), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    conc__mgr_t *m = d.priv.blk;
    if (conc_lock_acquire(&m->lock) != 0)
      _exit(1);
    uint32_t c = m->cur;
    conc__mgr_state_t *s = &m->st[c];
    memset(&m->st[!c], 0xA5, sizeof m->st[0]);
    memset(conc__mgr_index(m, !s->idx), 0xA5, m->max_items * 8);
    memset(conc__mgr_heap(m, !s->heap), 0xA5, m->max_bytes);
    memset(conc__mgr_heap(m, s->heap) + s->used, 0xA5, m->max_bytes - s->used);
    _exit(0);
  }
  reap(pid, 0);
  assert_int_equal(conc_shared_dict_len(&d), 2);
  char buf[32];
  size_t len;
  assert_int_equal(conc_shared_dict_get(&d, S("b"), buf, sizeof buf, &len), 0);
  assert_int_equal(len, 5);
  assert_memory_equal(buf, "b=0#$", 5);
  for (unsigned n = 0; n < 200; n++) {
    char v[32];
    int vl = snprintf(v, sizeof v, "a=%u#$", n);
    assert_int_equal(conc_shared_dict_set(&d, S("a"), v, (size_t)vl), 0);
  }
  assert_int_equal(conc_shared_dict_get(&d, S("a"), buf, sizeof buf, &len), 0);
  assert_memory_equal(buf, "a=199#$", 7);
  assert_int_equal(conc_shared_dict_get(&d, S("b"), buf, sizeof buf, &len), 0);
  assert_memory_equal(buf, "b=0#$", 5);
  conc_shared_dict_destroy(&d);
  alarm(0);
}

/* If the published state itself were ever insane after an owner died, the
 * repair resets the container to empty rather than reading wild offsets. */
static void insane_state_after_owner_death_resets_to_empty(void **state) {
  (void)state;
  watchdog();
  conc_shared_list_t l;
  assert_int_equal(conc_shared_list_init(&l, NULL), 0);
  assert_int_equal(conc_shared_list_append(&l, S("x")), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    conc__mgr_t *m = l.priv.blk;
    if (conc_lock_acquire(&m->lock) != 0)
      _exit(1);
    m->st[m->cur].count = m->max_items + 5;
    _exit(0);
  }
  reap(pid, 0);
  assert_int_equal(conc_shared_list_len(&l), 0);
  assert_int_equal(conc_shared_list_append(&l, S("y")), 0);
  char c;
  size_t len;
  assert_int_equal(conc_shared_list_get(&l, 0, &c, 1, &len), 0);
  assert_int_equal(c, 'y');
  conc_shared_list_destroy(&l);
  alarm(0);
}

/* value for key kN: "kN=<n>#" + (n % 20) dots + "$", so a torn or mixed
 * record (wrong length for its counter, missing end mark) is detected */
static int make_val(char *val, size_t cap, const char *key, unsigned n) {
  return snprintf(val, cap, "%s=%u#%.*s$", key, n, (int)(n % 20u),
                  "....................");
}

static bool entry_ok(const char *key, size_t klen, const char *val,
                     size_t vlen) {
  char want[64];
  if (vlen <= klen + 1 || vlen >= sizeof want || memcmp(val, key, klen) != 0 ||
      val[klen] != '=')
    return false;
  unsigned n = (unsigned)strtoul(val + klen + 1, NULL, 10);
  char k[16];
  memcpy(k, key, klen);
  k[klen] = 0;
  int wl = make_val(want, sizeof want, k, n);
  return (size_t)wl == vlen && memcmp(want, val, vlen) == 0;
}

static void churn(conc_shared_dict_t *d, conc_shared_list_t *l) {
  char key[16], val[64];
  for (unsigned n = 0;; n++) {
    int k = (int)(n * 7u % 40u);
    snprintf(key, sizeof key, "k%d", k);
    int vl = make_val(val, sizeof val, key, n);
    if (n % 5 == 4)
      conc_shared_dict_del(d, S(key));
    else
      conc_shared_dict_set(d, S(key), val, (size_t)vl);
    if (n % 3 == 2)
      conc_shared_list_pop(l, 0, val, sizeof val, NULL);
    else
      conc_shared_list_append(l, val, (size_t)vl);
  }
}

static void check_consistent(conc_shared_dict_t *d, conc_shared_list_t *l) {
  size_t n = conc_shared_dict_len(d);
  assert_true(n <= 40);
  for (size_t i = 0; i < n; i++) {
    char key[16], val[64];
    size_t klen, vlen;
    assert_int_equal(conc_shared_dict_key_at(d, i, key, sizeof key, &klen), 0);
    assert_int_equal(conc_shared_dict_get(d, key, klen, val, sizeof val, &vlen),
                     0);
    assert_true(entry_ok(key, klen, val, vlen));
  }
  size_t m = conc_shared_list_len(l);
  for (size_t i = 0; i < m; i++) {
    char val[64];
    size_t vlen;
    assert_int_equal(
        conc_shared_list_get(l, (ptrdiff_t)i, val, sizeof val, &vlen), 0);
    const char *eq = memchr(val, '=', vlen);
    assert_non_null(eq);
    assert_true(entry_ok(val, (size_t)(eq - val), val, vlen));
  }
}

/* A child SIGKILLed at a random point of a loop of updates leaves both
 * containers consistent and usable (published only by the last store). */
static void child_killed_mid_update_leaves_consistent(void **state) {
  (void)state;
  watchdog();
  conc_shared_dict_t d;
  conc_shared_list_t l;
  conc_manager_opts_t o = {.max_items = 64, .max_bytes = 2048};
  assert_int_equal(conc_shared_dict_init(&d, &o), 0);
  assert_int_equal(conc_shared_list_init(&l, &o), 0);
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  for (int round = 0; round < 8; round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
      churn(&d, &l);
    struct timespec ts = {0, (long)(1 + rand() % 15) * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(kill(pid, SIGKILL), 0);
    reap(pid, -1);
    check_consistent(&d, &l);
    assert_int_equal(conc_shared_dict_set(&d, S("k0"), S("k0=0#$")), 0);
    if (conc_shared_list_len(&l) == o.max_items)
      assert_int_equal(conc_shared_list_pop(&l, 0, NULL, 0, NULL),
                       CONC_ETOOSHORT);
    assert_int_equal(conc_shared_list_clear(&l), 0);
    assert_int_equal(conc_shared_list_append(&l, S("k0=0#$")), 0);
    check_consistent(&d, &l);
  }
  conc_shared_dict_destroy(&d);
  conc_shared_list_destroy(&l);
  alarm(0);
}

CONC_TEST_MAIN(cmocka_unit_test(dict_supports_container_api),
               cmocka_unit_test(bad_input_is_einval_and_changes_nothing),
               cmocka_unit_test(dict_children_mutate_parent_sees),
               cmocka_unit_test(list_supports_container_api),
               cmocka_unit_test(dict_and_list_changed_by_child),
               cmocka_unit_test(nested_proxy_sees_mutations),
               cmocka_unit_test(nested_plain_list_mutation_is_lost),
               cmocka_unit_test(full_container_is_efull_and_compacts),
               cmocka_unit_test(owner_death_is_repaired),
               cmocka_unit_test(half_built_update_is_never_seen),
               cmocka_unit_test(insane_state_after_owner_death_resets_to_empty),
               cmocka_unit_test(child_killed_mid_update_leaves_consistent))
