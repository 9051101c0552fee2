/* Thread-local storage tests (spec TL1-TL3, G5). */
#include "harness.h"

#include <string.h>

#include "conc.h"
#include "platform-int.h"

typedef struct {
  uint32_t word;
} gate_t;

static void gate_open(gate_t *g) {
  conc__store_release(&g->word, 1);
  conc__wake(&g->word, CONC__WAKE_ALL, false);
}

static void gate_wait(gate_t *g) {
  while (!conc__load_acquire(&g->word))
    conc__wait(&g->word, 0, CONC_DEADLINE_NEVER, false);
}

static uint32_t destroyed;
static void count_destroy(void *v, void *user) {
  (void)v;
  conc__fetch_add(&destroyed, 1);
}

static void free_value(void *v, void *user) { free(v); }

static void run_thread(conc_fn_t fn, void *arg) {
  conc_thread_t t;
  assert_int_equal(conc_thread_init(&t, fn, arg, NULL), 0);
  assert_int_equal(conc_thread_start(&t), 0);
  assert_int_equal(conc_thread_join(&t, CONC_FOREVER), 0);
  conc_thread_destroy(&t);
}

/* ---- TL1 ------------------------------------------------------------------
 */

struct tl1 {
  conc_local_t *l;
  int get_rc;
  void *own;
};

static int other_thread_view(void *arg, void **result) {
  struct tl1 *c = arg;
  void *v = NULL;
  c->get_rc = conc_local_get(c->l, &v);
  assert_int_equal(conc_local_set(c->l, (void *)0x2), 0);
  assert_int_equal(conc_local_get(c->l, &c->own), 0);
  return 0;
}

/* TL1 */
static void value_set_in_one_thread_is_unset_in_another(void **state) {
  (void)state;
  conc_local_t l;
  assert_int_equal(conc_local_init(&l, NULL), 0);
  void *v = NULL;
  assert_int_equal(conc_local_get(&l, &v), CONC_EUNSET);
  assert_int_equal(conc_local_set(&l, (void *)0x1), 0);
  struct tl1 c = {.l = &l};
  run_thread(other_thread_view, &c);
  assert_int_equal(c.get_rc, CONC_EUNSET);
  assert_ptr_equal(c.own, (void *)0x2);
  assert_int_equal(conc_local_get(&l, &v), 0);
  assert_ptr_equal(v, (void *)0x1); /* untouched by the other thread */
  conc_local_destroy(&l);
}

/* ---- TL2 ------------------------------------------------------------------
 */

static uint32_t init_calls;

static void *slow_init(void *arg) {
  conc__fetch_add(&init_calls, 1);
  conc_sleep(0.02); /* the initialiser may block */
  int *v = malloc(sizeof *v);
  *v = *(int *)arg;
  return v;
}

struct tl2 {
  conc_local_t *l;
  int value;
  bool same_again;
};

static int read_twice(void *arg, void **result) {
  struct tl2 *c = arg;
  void *a = NULL, *b = NULL;
  assert_int_equal(conc_local_get(c->l, &a), 0);
  assert_int_equal(conc_local_get(c->l, &b), 0);
  c->value = *(int *)a;
  c->same_again = a == b;
  return 0;
}

/* TL2 */
static void initialiser_runs_once_per_thread_on_first_access(void **state) {
  (void)state;
  int seed = 7;
  init_calls = 0;
  conc_local_t l;
  conc_local_init(&l, &(conc_local_opts_t){.init = slow_init,
                                           .arg = &seed,
                                           .destroy = free_value});
  enum { N = 4 };
  struct tl2 c[N];
  conc_thread_t t[N];
  for (int i = 0; i < N; i++) {
    c[i] = (struct tl2){.l = &l};
    conc_thread_init(&t[i], read_twice, &c[i], NULL);
    assert_int_equal(conc_thread_start(&t[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(conc_thread_join(&t[i], CONC_FOREVER), 0);
    conc_thread_destroy(&t[i]);
    assert_int_equal(c[i].value, 7);
    assert_true(c[i].same_again);
  }
  assert_int_equal(init_calls, N); /* not in main: main never accessed it */
  conc_local_destroy(&l);
}

/* TL2: after delete, the initialiser does not run again in that thread. */
static void delete_forgets_the_value_without_rerunning_init(void **state) {
  (void)state;
  int seed = 1;
  init_calls = 0;
  conc_local_t l;
  conc_local_init(&l, &(conc_local_opts_t){.init = slow_init,
                                           .arg = &seed,
                                           .destroy = free_value});
  void *v = NULL;
  assert_int_equal(conc_local_get(&l, &v), 0);
  assert_int_equal(conc_local_delete(&l), 0);
  assert_int_equal(conc_local_get(&l, &v), CONC_EUNSET);
  assert_int_equal(conc_local_delete(&l), CONC_EUNSET);
  assert_int_equal(init_calls, 1);
  int *fresh = malloc(sizeof *fresh);
  assert_int_equal(conc_local_set(&l, fresh), 0);
  assert_int_equal(conc_local_get(&l, &v), 0);
  assert_ptr_equal(v, fresh);
  conc_local_destroy(&l);
}

/* ---- TL3 ------------------------------------------------------------------
 */

static int set_a_value(void *arg, void **result) {
  assert_int_equal(conc_local_set(arg, (void *)0x5), 0);
  return 0;
}

/* TL3: a thread's values are destroyed when it exits (here: before join
 * returns, so all n of n). */
static void values_are_destroyed_when_their_thread_exits(void **state) {
  (void)state;
  destroyed = 0;
  conc_local_t l;
  conc_local_init(&l, &(conc_local_opts_t){.destroy = count_destroy});
  for (int i = 0; i < 10; i++)
    run_thread(set_a_value, &l);
  assert_int_equal(destroyed, 10);
  conc_local_destroy(&l);
  assert_int_equal(destroyed, 10);
}

struct holder {
  conc_local_t *l;
  gate_t set, release;
};

static int set_and_hold(void *arg, void **result) {
  struct holder *h = arg;
  assert_int_equal(conc_local_set(h->l, (void *)0x9), 0);
  gate_open(&h->set);
  gate_wait(&h->release);
  return 0;
}

/* TL3: destroying the local frees every thread's value, including those of
 * threads still running; their later exit does not destroy them again. */
static void destroying_the_local_frees_every_threads_value(void **state) {
  (void)state;
  destroyed = 0;
  conc_local_t l;
  conc_local_init(&l, &(conc_local_opts_t){.destroy = count_destroy});
  enum { N = 3 };
  struct holder h[N];
  conc_thread_t t[N];
  for (int i = 0; i < N; i++) {
    h[i] = (struct holder){.l = &l};
    /* a daemon: a failed assertion must not make exit wait for it */
    conc_thread_init(&t[i], set_and_hold, &h[i],
                     &(conc_thread_opts_t){.daemon = true});
    assert_int_equal(conc_thread_start(&t[i]), 0);
    gate_wait(&h[i].set);
  }
  assert_int_equal(conc_local_set(&l, (void *)0x1), 0);
  conc_local_destroy(&l);
  assert_int_equal(destroyed, N + 1);
  for (int i = 0; i < N; i++) {
    gate_open(&h[i].release);
    assert_int_equal(conc_thread_join(&t[i], CONC_FOREVER), 0);
    conc_thread_destroy(&t[i]);
  }
  assert_int_equal(destroyed, N + 1);
}

/* Replacing a value hands the old one to the destructor (not the same one). */
static void set_destroys_the_replaced_value(void **state) {
  (void)state;
  destroyed = 0;
  conc_local_t l;
  conc_local_init(&l, &(conc_local_opts_t){.destroy = count_destroy});
  conc_local_set(&l, (void *)0x1);
  conc_local_set(&l, (void *)0x1);
  assert_int_equal(destroyed, 0);
  conc_local_set(&l, (void *)0x2);
  assert_int_equal(destroyed, 1);
  conc_local_destroy(&l);
  assert_int_equal(destroyed, 2);
}

struct destroy_log {
  void *values[4];
  int n;
};

static void log_destroy(void *v, void *user) {
  struct destroy_log *log = user;
  log->values[log->n++] = v;
}

static int set_and_exit(void *arg, void **result) {
  assert_int_equal(conc_local_set(arg, (void *)0x7), 0);
  return 0;
}

/* The destructor gets the local's user pointer with each value: on a
 * thread's exit, on replacement, on delete and on conc_local_destroy. */
static void destroy_receives_its_user_pointer(void **state) {
  (void)state;
  struct destroy_log log = {{NULL}, 0};
  conc_local_t l;
  assert_int_equal(
      conc_local_init(
          &l, &(conc_local_opts_t){.destroy = log_destroy, .arg = &log}),
      0);
  run_thread(set_and_exit, &l);
  assert_int_equal(conc_local_set(&l, (void *)0x1), 0);
  assert_int_equal(conc_local_set(&l, (void *)0x2), 0);
  assert_int_equal(conc_local_delete(&l), 0);
  assert_int_equal(conc_local_set(&l, (void *)0x3), 0);
  conc_local_destroy(&l);
  assert_int_equal(log.n, 4);
  assert_ptr_equal(log.values[0], (void *)0x7);
  assert_ptr_equal(log.values[1], (void *)0x1);
  assert_ptr_equal(log.values[2], (void *)0x2);
  assert_ptr_equal(log.values[3], (void *)0x3);
}

/* A destroyed local's slot is reused without showing stale values. */
static void a_reused_slot_starts_empty(void **state) {
  (void)state;
  enum { N = 40 }; /* more than the initial table sizes */
  conc_local_t l[N];
  for (int i = 0; i < N; i++) {
    assert_int_equal(conc_local_init(&l[i], NULL), 0);
    assert_int_equal(conc_local_set(&l[i], (void *)(intptr_t)(i + 1)), 0);
  }
  for (int i = 0; i < N; i++) {
    void *v;
    assert_int_equal(conc_local_get(&l[i], &v), 0);
    assert_int_equal((intptr_t)v, i + 1);
  }
  conc_local_destroy(&l[3]);
  conc_local_t fresh;
  assert_int_equal(conc_local_init(&fresh, NULL), 0);
  void *v;
  assert_int_equal(conc_local_get(&fresh, &v), CONC_EUNSET);
  conc_local_destroy(&fresh);
  for (int i = 0; i < N; i++)
    if (i != 3)
      conc_local_destroy(&l[i]);
}

/* ---- G5: foreign threads ----------------------------------------------------
 */

static conc_local_t *chained_second;

static void destroy_and_touch_other(void *v, void *user) {
  (void)v;
  conc__fetch_add(&destroyed, 1);
  /* a destructor may use locals again; that value is destroyed too */
  conc_local_set(chained_second, (void *)0x3);
}

static void *foreign_sets(void *arg) {
  conc_local_t *l = arg;
  assert_int_equal(conc_local_set(l, (void *)0x4), 0);
  return NULL;
}

/* G5 TL3: a thread libconc did not create gets its values destroyed at exit,
 * including values a destructor sets while running. */
static void foreign_thread_values_are_destroyed_at_exit(void **state) {
  (void)state;
  destroyed = 0;
  conc_local_t first, second;
  conc_local_init(&first,
                  &(conc_local_opts_t){.destroy = destroy_and_touch_other});
  conc_local_init(&second, &(conc_local_opts_t){.destroy = count_destroy});
  chained_second = &second;
  conc_test_join(conc_test_spawn(foreign_sets, &first));
  assert_int_equal(destroyed, 2);
  conc_local_destroy(&first);
  conc_local_destroy(&second);
}

static void bad_arguments_are_rejected(void **state) {
  (void)state;
  void *v;
  conc_local_t l;
  memset(&l, 0, sizeof l);
  assert_int_equal(conc_local_init(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_local_get(NULL, &v), CONC_EINVAL);
  assert_int_equal(conc_local_get(&l, &v), CONC_EINVAL); /* never initialised */
  assert_int_equal(conc_local_set(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_local_delete(NULL), CONC_EINVAL);
  conc_local_destroy(NULL);
  assert_int_equal(conc_local_init(&l, NULL), 0);
  assert_int_equal(conc_local_get(&l, NULL), CONC_EINVAL);
  conc_local_destroy(&l);
  assert_int_equal(conc_local_get(&l, &v), CONC_EINVAL); /* destroyed */
  conc_local_destroy(&l);                                /* twice is harmless */
}

CONC_TEST_MAIN(
    cmocka_unit_test(value_set_in_one_thread_is_unset_in_another),
    cmocka_unit_test(initialiser_runs_once_per_thread_on_first_access),
    cmocka_unit_test(delete_forgets_the_value_without_rerunning_init),
    cmocka_unit_test(values_are_destroyed_when_their_thread_exits),
    cmocka_unit_test(destroying_the_local_frees_every_threads_value),
    cmocka_unit_test(set_destroys_the_replaced_value),
    cmocka_unit_test(destroy_receives_its_user_pointer),
    cmocka_unit_test(a_reused_slot_starts_empty),
    cmocka_unit_test(foreign_thread_values_are_destroyed_at_exit),
    cmocka_unit_test(bad_arguments_are_rejected))
