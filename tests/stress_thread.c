/*
 * Stress: several threads start and join threads at once (untimed joins
 * that reap, timed joins that park, never-joined threads that detach
 * themselves) while another thread enumerates the registry, renames a
 * running thread and reads its name, and thread-local values come and go.
 */
#include "harness.h"

#include <string.h>

#include "conc.h"
#include "platform-int.h"

enum { STARTERS = 4, PER_STARTER = 150 };

static uint32_t stop;
static conc_local_t local;
static uint32_t destroyed, created;

static void count_destroy(void *v, void *user) {
  (void)v;
  conc__fetch_add(&destroyed, 1);
}

static int short_target(void *arg, void **result) {
  conc__fetch_add(&created, 1);
  conc_local_set(&local, arg);
  *result = arg;
  return 0;
}

static void *starter(void *arg) {
  intptr_t id = (intptr_t)arg;
  static conc_thread_t unjoined[STARTERS][PER_STARTER];
  for (int i = 0; i < PER_STARTER; i++) {
    conc_thread_t t;
    assert_int_equal(
        conc_thread_init(&t, short_target, (void *)(intptr_t)i, NULL), 0);
    assert_int_equal(conc_thread_start(&t), 0);
    int rc;
    if (i % 3 == 0) {
      rc = conc_thread_join(&t, CONC_FOREVER);
    } else {
      while ((rc = conc_thread_join(&t, 0.001)) == CONC_ETIMEDOUT)
        ;
    }
    assert_int_equal(rc, 0);
    void *res = NULL;
    assert_int_equal(conc_thread_result(&t, &res), 0);
    assert_int_equal((intptr_t)res, i);
    assert_int_equal(conc_thread_destroy(&t), 0);
    /* and one never joined */
    conc_thread_t *u = &unjoined[id][i];
    conc_thread_init(u, short_target, NULL,
                     &(conc_thread_opts_t){.daemon = true});
    assert_int_equal(conc_thread_start(u), 0);
  }
  for (int i = 0; i < PER_STARTER; i++)
    while (conc_thread_is_alive(&unjoined[id][i]))
      conc_sleep(0.0005);
  return NULL;
}

static int watcher(void *arg, void **result) {
  conc_thread_t *victim = arg;
  conc_thread_t *buf[64];
  char name[32];
  unsigned i = 0;
  while (!conc__load_acquire(&stop)) {
    /* only the first entry (main) is read: any other listed thread may
     * end and be destroyed by its owner meanwhile */
    size_t n = conc_enumerate(buf, 64);
    assert_true(n >= 3);
    assert_string_equal(conc_thread_name(buf[0]), "MainThread");
    snprintf(name, sizeof name, "victim-%u", i++);
    assert_int_equal(conc_thread_set_name(victim, name), 0);
    assert_int_equal(strncmp(conc_thread_name(victim), "victim-", 7), 0);
  }
  return 0;
}

static int victim_run(void *arg, void **result) {
  while (!conc__load_acquire((uint32_t *)arg))
    conc_sleep(0.001);
  return 0;
}

static void concurrent_starts_joins_and_registry_reads(void **state) {
  (void)state;
  conc_local_init(&local, &(conc_local_opts_t){.destroy = count_destroy});
  uint32_t victim_stop = 0;
  conc_thread_t victim, watch;
  conc_thread_init(&victim, victim_run, &victim_stop, NULL);
  assert_int_equal(conc_thread_start(&victim), 0);
  conc_thread_init(&watch, watcher, &victim, NULL);
  assert_int_equal(conc_thread_start(&watch), 0);
  pthread_t raw[STARTERS];
  for (intptr_t i = 0; i < STARTERS; i++)
    raw[i] = conc_test_spawn(starter, (void *)i);
  for (int i = 0; i < STARTERS; i++)
    conc_test_join(raw[i]);
  conc__store_release(&stop, 1);
  assert_int_equal(conc_thread_join(&watch, CONC_FOREVER), 0);
  conc__store_release(&victim_stop, 1);
  assert_int_equal(conc_thread_join(&victim, CONC_FOREVER), 0);
  conc_thread_destroy(&watch);
  conc_thread_destroy(&victim);
  assert_int_equal(created, 2 * STARTERS * PER_STARTER);
  /* every thread's local value (NULL included) died with its thread */
  assert_int_equal(destroyed, 2 * STARTERS * PER_STARTER);
  conc_local_destroy(&local);
}

CONC_TEST_MAIN(cmocka_unit_test(concurrent_starts_joins_and_registry_reads))
