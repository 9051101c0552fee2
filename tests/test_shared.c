/*
 * Shared memory, SharedMemory, Value and Array (spec V, M, F3 for a Value's
 * lock, F6). Every test arms a watchdog and reaps its children.
 */
#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

#include "conc/error.h"
#include "conc/process.h"
#include "conc/shared.h"

static int setup(void **state) {
  (void)state;
  alarm(30);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  alarm(0);
  return 0;
}

static int run_child(void *(*fn)(void *), void *arg) {
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, fn, arg, NULL), 0);
  assert_int_equal(conc_process_start(&p), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  int code;
  conc_process_exitcode(&p, &code);
  conc_process_destroy(&p);
  return code;
}

/* V1 */
static void typecodes_map_to_c_types(void **state) {
  (void)state;
  assert_int_equal(conc_typecode_size('c'), sizeof(char));
  assert_int_equal(conc_typecode_size('u'), sizeof(wchar_t));
  assert_int_equal(conc_typecode_size('b'), sizeof(signed char));
  assert_int_equal(conc_typecode_size('B'), sizeof(unsigned char));
  assert_int_equal(conc_typecode_size('h'), sizeof(short));
  assert_int_equal(conc_typecode_size('H'), sizeof(unsigned short));
  assert_int_equal(conc_typecode_size('i'), sizeof(int));
  assert_int_equal(conc_typecode_size('I'), sizeof(unsigned));
  assert_int_equal(conc_typecode_size('l'), sizeof(long));
  assert_int_equal(conc_typecode_size('L'), sizeof(unsigned long));
  assert_int_equal(conc_typecode_size('q'), sizeof(long long));
  assert_int_equal(conc_typecode_size('Q'), sizeof(unsigned long long));
  assert_int_equal(conc_typecode_size('f'), sizeof(float));
  assert_int_equal(conc_typecode_size('d'), sizeof(double));
  assert_int_equal(conc_typecode_size('x'), CONC_EINVAL);
  conc_value_t v;
  assert_int_equal(conc_value_init(&v, 'x', NULL, NULL), CONC_EINVAL);
}

/* V2 */
struct values {
  conc_value_t i, d, h, q, c, raw;
};

static void *write_values(void *arg) {
  struct values *v = arg;
  int i = 7;
  double d = 2.5;
  short h = -3;
  long long q = 1LL << 40;
  char c = 'z';
  conc_value_set(&v->i, &i);
  conc_value_set(&v->d, &d);
  conc_value_set(&v->h, &h);
  conc_value_set(&v->q, &q);
  conc_value_set(&v->c, &c);
  conc_value_set(&v->raw, &i);
  return NULL;
}

static void values_keep_initial_and_see_child_writes(void **state) {
  (void)state;
  struct values v;
  assert_int_equal(conc_value_init(&v.i, 'i', &(int){10}, NULL), 0);
  assert_int_equal(conc_value_init(&v.d, 'd', &(double){1.25}, NULL), 0);
  assert_int_equal(conc_value_init(&v.h, 'h', &(short){-5}, NULL), 0);
  assert_int_equal(conc_value_init(&v.q, 'q', &(long long){-1}, NULL), 0);
  assert_int_equal(conc_value_init(&v.c, 'c', &(char){'x'}, NULL), 0);
  assert_int_equal(
      conc_value_init(&v.raw, 'i', NULL, &(conc_value_opts_t){.raw = true}), 0);
  int i;
  double d;
  short h;
  long long q;
  char c;
  conc_value_get(&v.i, &i);
  conc_value_get(&v.d, &d);
  conc_value_get(&v.h, &h);
  conc_value_get(&v.q, &q);
  conc_value_get(&v.c, &c);
  assert_int_equal(i, 10);
  assert_true(d == 1.25);
  assert_int_equal(h, -5);
  assert_true(q == -1);
  assert_int_equal(c, 'x');
  assert_int_equal(*(int *)conc_value_ptr(&v.raw), 0);
  assert_int_equal(run_child(write_values, &v), 0);
  conc_value_get(&v.i, &i);
  conc_value_get(&v.d, &d);
  conc_value_get(&v.h, &h);
  conc_value_get(&v.q, &q);
  conc_value_get(&v.c, &c);
  assert_int_equal(i, 7);
  assert_true(d == 2.5);
  assert_int_equal(h, -3);
  assert_true(q == 1LL << 40);
  assert_int_equal(c, 'z');
  assert_int_equal(*(int *)conc_value_ptr(&v.raw), 7);
  conc_value_t *all[] = {&v.i, &v.d, &v.h, &v.q, &v.c, &v.raw};
  for (int k = 0; k < 6; k++)
    conc_value_destroy(all[k]);
}

/* V3 V7 */
static void get_lock_follows_python_rules(void **state) {
  (void)state;
  conc_value_t v;
  conc_array_t a;
  conc_rlock_t *r = NULL;
  conc_lock_t *l = NULL;
  assert_int_equal(conc_value_init(&v, 'i', NULL, NULL), 0);
  assert_int_equal(conc_value_get_lock(&v, &r, &l), 0);
  assert_non_null(r);
  assert_null(l);
  conc_rlock_t *first = r;
  conc_value_t w;
  assert_int_equal(conc_value_init(&w, 'i', NULL, NULL), 0);
  conc_value_get_lock(&w, &r, &l);
  assert_ptr_not_equal(r, first); /* a fresh RLock per object */
  conc_value_destroy(&w);
  conc_value_destroy(&v);

  conc_lock_t *mine = conc_shared_alloc(sizeof *mine);
  assert_int_equal(conc_lock_init(mine, &(conc_lock_opts_t){.pshared = true}),
                   0);
  assert_int_equal(
      conc_array_init(&a, 'd', 4, NULL, &(conc_array_opts_t){.lock = mine}), 0);
  assert_int_equal(conc_array_get_lock(&a, &r, &l), 0);
  assert_ptr_equal(l, mine);
  assert_null(r);
  assert_int_equal(conc_array_acquire(&a), 0);
  assert_true(conc_lock_locked(mine));
  assert_int_equal(conc_array_release(&a), 0);
  conc_array_destroy(&a);

  assert_int_equal(
      conc_array_init(&a, 'd', 4, NULL, &(conc_array_opts_t){.raw = true}), 0);
  assert_int_equal(conc_array_get_lock(&a, &r, &l), CONC_ESTATE);
  assert_int_equal(conc_array_acquire(&a), CONC_ESTATE);
  conc_array_destroy(&a);

  conc_lock_t private_lock;
  conc_lock_init(&private_lock, NULL);
  assert_int_equal(conc_value_init(&v, 'i', NULL,
                                   &(conc_value_opts_t){.lock = &private_lock}),
                   CONC_EINVAL);
  assert_int_equal(
      conc_value_init(&v, 'i', NULL,
                      &(conc_value_opts_t){.raw = true, .lock = mine}),
      CONC_EINVAL);
  conc_shared_free(mine);
}

/* V4 */
#define INCS 20000

static void *increment(void *arg) {
  conc_value_t *v = arg;
  for (int k = 0; k < INCS; k++) {
    conc_value_acquire(v);
    ++*(int *)conc_value_ptr(v);
    conc_value_release(v);
  }
  return NULL;
}

static void increments_under_get_lock_are_exact(void **state) {
  (void)state;
  conc_value_t v;
  assert_int_equal(conc_value_init(&v, 'i', NULL, NULL), 0);
  conc_process_t p[2];
  for (int k = 0; k < 2; k++) {
    assert_int_equal(conc_process_init(&p[k], increment, &v, NULL), 0);
    assert_int_equal(conc_process_start(&p[k]), 0);
  }
  for (int k = 0; k < 2; k++) {
    assert_int_equal(conc_process_join(&p[k], CONC_FOREVER), 0);
    conc_process_destroy(&p[k]);
  }
  int got;
  conc_value_get(&v, &got);
  assert_int_equal(got, 2 * INCS);
  conc_value_destroy(&v);
}

/* V5 */
static void *prefix_sum(void *arg) {
  conc_array_t *a = arg;
  conc_array_acquire(a);
  int *x = conc_array_ptr(a);
  for (size_t k = 1; k < conc_array_len(a); k++)
    x[k] += x[k - 1];
  conc_array_release(a);
  return NULL;
}

static void array_index_slice_and_child_prefix_sum(void **state) {
  (void)state;
  conc_array_t a;
  assert_int_equal(conc_array_init(&a, 'i', 10, NULL, NULL), 0);
  assert_int_equal(conc_array_len(&a), 10);
  int x, all[10];
  for (int k = 0; k < 10; k++) {
    assert_int_equal(conc_array_get(&a, k, &x), 0);
    assert_int_equal(x, 0); /* zero-filled */
    assert_int_equal(conc_array_set(&a, k, &k), 0);
  }
  assert_int_equal(conc_array_get(&a, -1, &x), 0);
  assert_int_equal(x, 9);
  assert_int_equal(conc_array_get(&a, 10, &x), CONC_EINVAL);
  assert_int_equal(conc_array_get(&a, -11, &x), CONC_EINVAL);
  int three[3];
  assert_int_equal(conc_array_read(&a, 2, 3, three), 0);
  assert_int_equal(three[0], 2);
  assert_int_equal(three[2], 4);
  assert_int_equal(conc_array_read(&a, 8, 3, three), CONC_EINVAL);
  assert_int_equal(conc_array_write(&a, 0, 3, (int[]){0, 1, 2}), 0);
  assert_int_equal(run_child(prefix_sum, &a), 0);
  assert_int_equal(conc_array_read(&a, 0, 10, all), 0);
  for (int k = 0, s = 0; k < 10; k++) {
    s += k;
    assert_int_equal(all[k], s);
  }
  conc_array_destroy(&a);
  int init[3] = {5, 6, 7};
  assert_int_equal(conc_array_init(&a, 'i', 3, init, NULL), 0);
  assert_int_equal(conc_array_get(&a, 1, &x), 0);
  assert_int_equal(x, 6);
  conc_array_destroy(&a);
}

/* V8 */
static void *rename_in_child(void *arg) {
  conc_array_set_value(arg, "child");
  return NULL;
}

static void char_array_has_string_value(void **state) {
  (void)state;
  conc_array_t a;
  char buf[16];
  assert_int_equal(conc_array_init(&a, 'c', 10, NULL, NULL), 0);
  assert_int_equal(conc_array_set_value(&a, "hello"), 0);
  assert_int_equal(conc_array_value(&a, buf, sizeof buf), 0);
  assert_string_equal(buf, "hello");
  assert_int_equal(conc_array_set_value(&a, "hi"), 0);
  assert_int_equal(conc_array_value(&a, buf, sizeof buf), 0);
  assert_string_equal(buf, "hi"); /* NUL-terminated: "llo" hidden */
  assert_int_equal(conc_array_set_value(&a, "0123456789"), 0);
  assert_int_equal(conc_array_value(&a, buf, sizeof buf), 0);
  assert_string_equal(buf, "0123456789"); /* exactly full: no NUL */
  assert_int_equal(conc_array_set_value(&a, "0123456789x"), CONC_EINVAL);
  assert_int_equal(conc_array_value(&a, buf, 4), CONC_EOVERFLOW);
  assert_int_equal(run_child(rename_in_child, &a), 0);
  assert_int_equal(conc_array_value(&a, buf, sizeof buf), 0);
  assert_string_equal(buf, "child");
  conc_array_destroy(&a);
  conc_array_t ints;
  assert_int_equal(conc_array_init(&ints, 'i', 2, NULL, NULL), 0);
  assert_int_equal(conc_array_set_value(&ints, "x"), CONC_EINVAL);
  conc_array_destroy(&ints);
}

/* V8 */
struct point {
  int x;
  double y;
};

static void *move_point(void *arg) {
  conc_value_set(arg, &(struct point){3, 4.5});
  return NULL;
}

static void structure_value_and_independent_copy(void **state) {
  (void)state;
  conc_value_t v, c;
  struct point p = {1, 2.0};
  assert_int_equal(
      conc_value_init(&v, 0, &p, &(conc_value_opts_t){.size = sizeof p}), 0);
  assert_int_equal(conc_value_copy(&c, &v), 0);
  assert_int_equal(run_child(move_point, &v), 0);
  conc_value_get(&v, &p);
  assert_int_equal(p.x, 3);
  assert_true(p.y == 4.5);
  conc_value_get(&c, &p);
  assert_int_equal(p.x, 1); /* the copy did not follow */
  assert_int_equal(conc_value_get_lock(&c, NULL, NULL), CONC_ESTATE);
  conc_value_destroy(&v);
  conc_value_destroy(&c);
}

/* F3: the holder of a Value's lock dies */
static void *die_holding(void *arg) {
  conc_value_acquire(arg);
  *(int *)conc_value_ptr(arg) = 99;
  _exit(0);
}

static void dead_holder_gives_owner_died_to_next(void **state) {
  (void)state;
  conc_value_t v;
  assert_int_equal(conc_value_init(&v, 'i', NULL, NULL), 0);
  assert_int_equal(run_child(die_holding, &v), 0);
  assert_int_equal(conc_value_acquire(&v), CONC_EOWNERDEAD);
  conc_rlock_t *r;
  assert_int_equal(conc_value_get_lock(&v, &r, NULL), 0);
  assert_int_equal(*(int *)conc_value_ptr(&v), 99);
  assert_int_equal(conc_rlock_mark_consistent(r), 0);
  assert_int_equal(conc_value_release(&v), 0);
  assert_int_equal(conc_value_acquire(&v), 0);
  assert_int_equal(conc_value_release(&v), 0);
  /* The property form repairs and warns once. */
  assert_int_equal(run_child(die_holding, &v), 0);
  int got;
  assert_int_equal(conc_value_get(&v, &got), CONC_EOWNERDEAD);
  assert_int_equal(got, 99);
  assert_int_equal(conc_value_get(&v, &got), 0);
  conc_value_destroy(&v);
}

static void bad_sizes_and_arguments(void **state) {
  (void)state;
  conc_array_t a;
  assert_int_equal(conc_array_init(&a, 'q', SIZE_MAX / 4, NULL, NULL),
                   CONC_EOVERFLOW);
  assert_int_equal(conc_array_init(NULL, 'q', 1, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_value_init(NULL, 'i', NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_value_init(&a.v, 0, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_value_get(NULL, &a), CONC_EINVAL);
  assert_null(conc_shared_alloc(0));
  conc_shared_free(NULL);
}

/* ---- SharedMemory ------------------------------------------------------ */

static bool shm_exists(const char *name) {
  char path[300];
  snprintf(path, sizeof path, "/dev/shm/%s", name);
  struct stat st;
  return stat(path, &st) == 0;
}

/* M1 */
static void shm_create_attach_basics(void **state) {
  (void)state;
  char name[64];
  snprintf(name, sizeof name, "conc-test-%d", (int)getpid());
  conc_shm_t a, b;
  assert_int_equal(conc_shm_init(&a, name, true, 512), 0);
  assert_string_equal(conc_shm_name(&a), name);
  assert_true(conc_shm_size(&a) >= 512);
  char path[300];
  snprintf(path, sizeof path, "/dev/shm/%s", name);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  memcpy(conc_shm_buf(&a), "howdy", 6);
  assert_int_equal(conc_shm_init(&b, name, false, 99999), 0); /* size ignored */
  assert_int_equal(conc_shm_size(&b), conc_shm_size(&a));
  assert_string_equal(conc_shm_buf(&b), "howdy");
  conc_shm_close(&b);
  assert_true(shm_exists(name)); /* attach/close never unlinks */
  assert_int_equal(conc_shm_unlink(&a), 0);
  assert_false(shm_exists(name));
  conc_shm_close(&a);
  conc_shm_close(&a);
  /* a generated name */
  assert_int_equal(conc_shm_init(&a, NULL, true, 100), 0);
  assert_true(shm_exists(conc_shm_name(&a)));
  assert_int_equal(conc_shm_unlink(&a), 0);
  conc_shm_destroy(&a);
}

/* M2 */
static void shm_invalid_creation_and_unlink(void **state) {
  (void)state;
  char name[64];
  snprintf(name, sizeof name, "/conc-test2-%d", (int)getpid());
  conc_shm_t a, b;
  assert_int_equal(conc_shm_init(&a, name, true, 0), CONC_EINVAL);
  assert_int_equal(conc_shm_init(&a, NULL, false, 10), CONC_EINVAL);
  assert_int_equal(conc_shm_init(&a, "a/b", true, 10), CONC_EINVAL);
  assert_int_equal(conc_shm_init(&a, name, false, 0), CONC_ENOENT);
  assert_int_equal(conc_shm_init(&a, name, true, 64), 0);
  assert_string_equal(conc_shm_name(&a), name + 1);
  assert_int_equal(conc_shm_init(&b, name, true, 64), CONC_EEXIST);
  assert_int_equal(conc_shm_unlink(&a), 0);
  assert_int_equal(conc_shm_unlink(&a), CONC_ENOENT);
  conc_shm_destroy(&a);
}

/* M3 */
static void *shm_child_writes(void *arg) {
  conc_shm_t s;
  if (conc_shm_init(&s, arg, false, 0) != 0)
    conc_process_exit(2);
  strcpy(conc_shm_buf(&s), "from child");
  conc_shm_close(&s);
  return NULL;
}

static void *shm_child_creates_and_dies(void *arg) {
  conc_shm_t s;
  if (conc_shm_init(&s, arg, true, 4096) != 0)
    conc_process_exit(2);
  raise(SIGKILL);
  return NULL;
}

static bool gone_within(const char *name, double t) {
  double end = conc_monotonic() + t;
  while (shm_exists(name))
    if (conc_monotonic() > end)
      return false;
    else
      conc_sleep(0.005);
  return true;
}

static void shm_shared_across_processes_and_reclaimed(void **state) {
  (void)state;
  char name[64];
  snprintf(name, sizeof name, "conc-test3-%d", (int)getpid());
  conc_shm_t a;
  assert_int_equal(conc_shm_init(&a, name, true, 64), 0);
  assert_int_equal(run_child(shm_child_writes, name), 0);
  assert_string_equal(conc_shm_buf(&a), "from child");
  assert_int_equal(conc_shm_unlink(&a), 0);
  conc_shm_close(&a);
  /* a creator that is killed: its segment is reclaimed */
  assert_int_equal(run_child(shm_child_creates_and_dies, name), -SIGKILL);
  assert_true(gone_within(name, 2.0));
}

/* F6: kill the creator at many points of create/unlink; nothing is left. */
static void count_leftovers(const char *prefix, pid_t pid, int *n) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, "conc.tmp.%d.", (int)pid);
  DIR *d = opendir("/dev/shm");
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, prefix, strlen(prefix)) ||
        !strncmp(e->d_name, tmp, strlen(tmp)))
      ++*n;
  closedir(d);
}

static unsigned *created;

static void churn(const char *prefix) {
  char name[64];
  for (unsigned k = 0;; k++) {
    conc_shm_t s;
    snprintf(name, sizeof name, "%s%u", prefix, k % 8);
    int rc = conc_shm_init(&s, name, true, 8192);
    if (rc == 0)
      __atomic_fetch_add(created, 1, __ATOMIC_RELAXED);
    if (rc == 0 && (k & 1))
      conc_shm_unlink(&s);
    conc_shm_close(&s);
  }
}

static void no_shm_left_after_kill_at_any_point(void **state) {
  (void)state;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "conc-f6-%d-", (int)getpid());
  created = conc_shared_alloc(sizeof *created);
  for (int round = 0; round < 12; round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      signal(SIGSEGV, SIG_DFL);
      churn(prefix);
    }
    conc_sleep(0.001 + 0.0007 * round);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    /* Its tracker (reparented to us) cleans up, then exits: reap it too. */
    int n = 1;
    for (double end = conc_monotonic() + 2.0; n && conc_monotonic() < end;) {
      while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
      n = 0;
      count_leftovers(prefix, pid, &n);
      if (n)
        conc_sleep(0.002);
    }
    assert_int_equal(n, 0);
  }
  assert_true(*created > 12); /* the kills did land amid the churn */
  conc_shared_free(created);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
CONC_TEST_MAIN(
    T(typecodes_map_to_c_types), T(values_keep_initial_and_see_child_writes),
    T(get_lock_follows_python_rules), T(increments_under_get_lock_are_exact),
    T(array_index_slice_and_child_prefix_sum), T(char_array_has_string_value),
    T(structure_value_and_independent_copy),
    T(dead_holder_gives_owner_died_to_next), T(bad_sizes_and_arguments),
    T(shm_create_attach_basics), T(shm_invalid_creation_and_unlink),
    T(shm_shared_across_processes_and_reclaimed),
    T(no_shm_left_after_kill_at_any_point))
