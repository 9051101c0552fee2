/*
 * Shared memory, SharedMemory, Value and Array (spec V, M, F3 for a Value's
 * lock, F6; issue 10 items 4 and 5). Every test arms a watchdog and reaps
 * its children.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

#include "conc/error.h"
#include "conc/process.h"
#include "conc/shared.h"
#include "shared-int.h"

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

static int run_child(conc_fn_t fn, void *arg) {
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

static int write_values(void *arg, void **result) {
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
  return 0;
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

static int increment(void *arg, void **result) {
  conc_value_t *v = arg;
  for (int k = 0; k < INCS; k++) {
    conc_value_acquire(v);
    ++*(int *)conc_value_ptr(v);
    conc_value_release(v);
  }
  return 0;
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
static int prefix_sum(void *arg, void **result) {
  conc_array_t *a = arg;
  conc_array_acquire(a);
  int *x = conc_array_ptr(a);
  for (size_t k = 1; k < conc_array_len(a); k++)
    x[k] += x[k - 1];
  conc_array_release(a);
  return 0;
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
  assert_int_equal(conc_array_get(&a, 10, &x), CONC_EINDEX);
  assert_int_equal(conc_array_get(&a, -11, &x), CONC_EINDEX);
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
static int rename_in_child(void *arg, void **result) {
  conc_array_set_value(arg, "child");
  return 0;
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

static int move_point(void *arg, void **result) {
  conc_value_set(arg, &(struct point){3, 4.5});
  return 0;
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
static int die_holding(void *arg, void **result) {
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

/* Entries of /dev/shm whose name starts with prefix. */
static int count_names(const char *prefix) {
  int n = 0;
  DIR *d = opendir("/dev/shm");
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)))
    n += !strncmp(e->d_name, prefix, strlen(prefix));
  closedir(d);
  return n;
}

/* Polls until count_names(prefix) == want or t seconds have passed. */
static bool count_becomes(const char *prefix, int want, double t) {
  double end = conc_monotonic() + t;
  while (count_names(prefix) != want)
    if (conc_monotonic() > end)
      return false;
    else
      conc_sleep(0.005);
  return true;
}

static void squat(const char *name) {
  char path[300];
  snprintf(path, sizeof path, "/dev/shm/%s", name);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  close(fd);
}

static void unsquat(const char *name) {
  char path[300];
  snprintf(path, sizeof path, "/dev/shm/%s", name);
  assert_int_equal(unlink(path), 0); /* still there: nobody took it away */
}

/* ---- programs of their own ----------------------------------------------
 * A tracked segment lives until its whole program ends, so the tests that
 * end a program run this binary again as one: the constructor below plays
 * the role named in CONC_SHM_ROLE ("role prefix") and never reaches main.
 * Fd 3 is the write end of a pipe back to the test: a byte from each
 * process once its segments are made. The test is a child subreaper meanwhile, so the program's orphaned
 * children and its tracker come back to it to be reaped. */

static void role_ready(char c) {
  if (write(3, &c, 1) != 1)
    _exit(9);
}

static int role_create(const char *prefix, const char *suffix, bool track) {
  char name[200];
  snprintf(name, sizeof name, "%s%s", prefix, suffix);
  conc_shm_t s;
  return conc_shm_init_ex(&s, name, true, 4096,
                          &(conc_shm_opts_t){.untracked = !track});
}

static const char *role_prefix;
static bool role_hold;

static int role_child(void *arg, void **result) {
  (void)arg;
  if (role_create(role_prefix, "b", true))
    conc_process_exit(2);
  role_ready('b');
  while (role_hold)
    pause();
  return 0;
}

/* A creator and its child (segments a, b) plus an untracked u; then either
 * wait to be killed (hold) or end normally. */
static int role_family(const char *prefix, bool hold) {
  role_prefix = prefix;
  role_hold = hold;
  if (role_create(prefix, "a", true) || role_create(prefix, "u", false))
    return 2;
  conc_process_t p;
  if (conc_process_init(&p, role_child, NULL, NULL) || conc_process_start(&p))
    return 3;
  role_ready('a');
  while (hold)
    pause();
  conc_process_join(&p, CONC_FOREVER);
  conc_process_destroy(&p);
  return 0;
}

/* Children that all make their program's first named segment at once. */
#define RACERS 4
static unsigned *race_go;

static int role_racer(void *arg, void **result) {
  while (!__atomic_load_n(race_go, __ATOMIC_ACQUIRE))
    conc_sleep(0.0005);
  if (role_create(role_prefix, arg, true))
    conc_process_exit(2);
  return 0;
}

static int role_race(const char *prefix) {
  static char *const sfx[RACERS] = {"0", "1", "2", "3"};
  role_prefix = prefix;
  race_go = conc_shared_alloc(sizeof *race_go);
  conc_process_t p[RACERS];
  for (int k = 0; k < RACERS; k++)
    if (conc_process_init(&p[k], role_racer, sfx[k], NULL) ||
        conc_process_start(&p[k]))
      return 3;
  __atomic_store_n(race_go, 1, __ATOMIC_RELEASE);
  int bad = 0, code;
  for (int k = 0; k < RACERS; k++) {
    conc_process_join(&p[k], CONC_FOREVER);
    bad |= conc_process_exitcode(&p[k], &code) || code != 0;
    conc_process_destroy(&p[k]);
  }
  if (bad || count_names(prefix) != RACERS)
    return 4;
  role_ready('r');
  return 0;
}

static void role_churn(const char *prefix) {
  char name[200];
  bool told = false;
  for (unsigned k = 0;; k++) {
    conc_shm_t s;
    snprintf(name, sizeof name, "%s%u", prefix, k % 8);
    int rc = conc_shm_init(&s, name, true, 8192);
    if (rc == 0 && !told) {
      role_ready('c');
      told = true;
    }
    if (rc == 0 && (k & 1))
      conc_shm_unlink(&s);
    conc_shm_close(&s);
  }
}

static bool has_children(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  bool any = false;
  while (d && (e = readdir(d))) {
    char path[300], buf[32];
    snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
    if (f && fgets(buf, sizeof buf, f) && buf[0] >= '0' && buf[0] <= '9')
      any = true;
    if (f)
      fclose(f);
  }
  if (d)
    closedir(d);
  return any;
}

/* After a named create, the program has no child at all: a wait() loop
 * ends at once. */
static int role_wait(void) {
  conc_shm_t s;
  if (conc_shm_init(&s, NULL, true, 64))
    return 3;
  conc_shm_unlink(&s);
  conc_shm_close(&s);
  if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
    return 1;
  if (has_children())
    return 2;
  alarm(10);
  while (wait(NULL) > 0)
    ;
  return errno == ECHILD ? 0 : 4;
}

__attribute__((constructor)) static void role_main(void) {
  const char *r = getenv("CONC_SHM_ROLE");
  char role[16], prefix[160];
  if (!r || sscanf(r, "%15s %159s", role, prefix) != 2)
    return;
  if (!strcmp(role, "churn"))
    role_churn(prefix);
  if (!strcmp(role, "one")) {
    if (role_create(prefix, "a", true))
      _exit(2);
    role_ready('a');
    for (;;)
      pause();
  }
  if (!strcmp(role, "race"))
    exit(role_race(prefix));
  if (!strcmp(role, "wait"))
    _exit(role_wait());
  exit(role_family(prefix, !strcmp(role, "hold")));
}

/* Runs this binary as the program `role`; *ready reads its bytes. */
static pid_t start_program(const char *role, const char *prefix, int *ready) {
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  char env[256];
  snprintf(env, sizeof env, "%s %s", role, prefix);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0);
    if (p[1] == 3)
      fcntl(3, F_SETFD, 0);
    else
      dup2(p[1], 3); /* without FD_CLOEXEC */
    setenv("CONC_SHM_ROLE", env, 1);
    execl("/proc/self/exe", "test_shared", (char *)NULL);
    _exit(127);
  }
  setpgid(pid, pid); /* also here: no race with the kill of the group */
  close(p[1]);
  *ready = p[0];
  return pid;
}

/* Reads n bytes from the program within 10 s: true if all came. */
static bool await_ready(int fd, int n) {
  double end = conc_monotonic() + 10;
  char buf[8];
  while (n > 0 && conc_monotonic() < end) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 100) <= 0)
      continue;
    ssize_t got =
        read(fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
    if (got <= 0)
      return false;
    n -= (int)got;
  }
  return n == 0;
}

/* Reaps what was adopted (the program's orphans and its tracker) until we
 * have no child left: the number reaped, or -1 if some still live after
 * t seconds. */
static int reap_adopted(double t) {
  int n = 0;
  double end = conc_monotonic() + t;
  for (;;) {
    pid_t r = waitpid(-1, NULL, WNOHANG);
    if (r > 0)
      n++;
    else if (r < 0 && errno == ECHILD)
      return n;
    else if (conc_monotonic() > end)
      return -1;
    else
      conc_sleep(0.002);
  }
}

static int program_status(pid_t pid) {
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
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
static int shm_child_writes(void *arg, void **result) {
  conc_shm_t s;
  if (conc_shm_init(&s, arg, false, 0) != 0)
    conc_process_exit(2);
  strcpy(conc_shm_buf(&s), "from child");
  conc_shm_close(&s);
  return 0;
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
  /* a program whose creator is killed: its segment is reclaimed */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int ready;
  pid_t pid = start_program("one", name, &ready);
  assert_true(await_ready(ready, 1));
  assert_int_equal(count_names(name), 1);
  kill(pid, SIGKILL);
  assert_int_equal(program_status(pid), -SIGKILL);
  assert_true(count_becomes(name, 0, 5.0));
  assert_true(reap_adopted(5.0) >= 1); /* its tracker, done */
  close(ready);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* Issue 10.4: a random source the test controls. The first `forced16`
 * 16-byte draws (temporary names) and `forced8` 8-byte draws (public names)
 * are 0xab bytes; every draw is recorded. */
static int forced16, forced8;
static unsigned char last_draw[16];

static int test_fill(void *buf, size_t n) {
  int *forced = n == 16 ? &forced16 : &forced8;
  if (*forced > 0) {
    --*forced;
    memset(buf, 0xab, n);
  } else if (getrandom(buf, n, 0) != (ssize_t)n) {
    return CONC_EIO;
  }
  memcpy(last_draw, buf, n < sizeof last_draw ? n : sizeof last_draw);
  return 0;
}

#define ABAB8 "abababababababab"
#define SQUAT_TMP "conc.tmp." ABAB8 ABAB8

static void shm_create_retries_squatted_temporary_name(void **state) {
  (void)state;
  char name[64], old[64];
  /* the names this used to use: conc.tmp.PID.COUNTER */
  for (int k = 0; k < 64; k++) {
    snprintf(old, sizeof old, "conc.tmp.%d.%d", (int)getpid(), k);
    squat(old);
  }
  squat(SQUAT_TMP);
  conc__shm_set_random(test_fill);
  forced16 = 3; /* the first three temporary names drawn are taken */
  snprintf(name, sizeof name, "conc-squat-%d", (int)getpid());
  conc_shm_t a, b;
  assert_int_equal(conc_shm_init(&a, name, true, 64), 0);
  assert_int_equal(forced16, 0);
  forced16 = 2;
  assert_int_equal(conc_shm_init(&b, NULL, true, 64), 0); /* a fresh name */
  assert_int_equal(forced16, 0);
  conc__shm_set_random(NULL);
  assert_true(shm_exists(name));
  assert_true(shm_exists(conc_shm_name(&b)));
  assert_int_equal(conc_shm_unlink(&a), 0);
  assert_int_equal(conc_shm_unlink(&b), 0);
  conc_shm_destroy(&a);
  conc_shm_destroy(&b);
  unsquat(SQUAT_TMP);
  for (int k = 0; k < 64; k++) {
    snprintf(old, sizeof old, "conc.tmp.%d.%d", (int)getpid(), k);
    unsquat(old);
  }
}

static void shm_fresh_name_retries_squatted_random_name(void **state) {
  (void)state;
  squat("psm_" ABAB8);
  conc__shm_set_random(test_fill);
  forced8 = 5; /* five draws of the public name give the squatted one */
  conc_shm_t a;
  assert_int_equal(conc_shm_init(&a, NULL, true, 64), 0);
  assert_int_equal(forced8, 0);
  assert_string_not_equal(conc_shm_name(&a), "psm_" ABAB8);
  assert_true(shm_exists(conc_shm_name(&a)));
  /* squatted every time: a clear code after a bounded number of tries */
  forced8 = 1000;
  conc_shm_t b;
  assert_int_equal(conc_shm_init(&b, NULL, true, 64), CONC_EEXIST);
  assert_in_range(forced8, 1000 - 100, 1000 - 2);
  forced8 = 0;
  conc__shm_set_random(NULL);
  assert_true(count_becomes("conc.tmp.", 0, 2.0)); /* nothing half-made */
  assert_int_equal(conc_shm_unlink(&a), 0);
  conc_shm_destroy(&a);
  unsquat("psm_" ABAB8);
}

/* The public name is the hex of this process's last 8-byte draw. */
static bool name_is_last_draw(const char *name) {
  char want[32] = "psm_";
  for (int i = 0; i < 8; i++)
    snprintf(want + 4 + 2 * i, 3, "%02x", last_draw[i]);
  return !strcmp(name, want);
}

struct names {
  char name[3][64];
};

static int name_in_child(void *arg, void **result) {
  struct names *n = arg;
  conc_shm_t s;
  int k = n->name[1][0] ? 2 : 1;
  if (conc_shm_init(&s, NULL, true, 64) ||
      !name_is_last_draw(conc_shm_name(&s)))
    conc_process_exit(2);
  strcpy(n->name[k], conc_shm_name(&s));
  conc_shm_unlink(&s);
  conc_shm_close(&s);
  return 0;
}

static void shm_names_come_from_random_source_not_pid(void **state) {
  (void)state;
  conc__shm_set_random(test_fill);
  struct names *n = conc_shared_alloc(sizeof *n);
  conc_shm_t s;
  assert_int_equal(conc_shm_init(&s, NULL, true, 64), 0);
  assert_true(name_is_last_draw(conc_shm_name(&s)));
  strcpy(n->name[0], conc_shm_name(&s));
  conc_shm_unlink(&s);
  conc_shm_destroy(&s);
  /* children forked one after the other, with the same memory */
  assert_int_equal(run_child(name_in_child, n), 0);
  assert_int_equal(run_child(name_in_child, n), 0);
  conc__shm_set_random(NULL);
  assert_string_not_equal(n->name[0], n->name[1]);
  assert_string_not_equal(n->name[1], n->name[2]);
  assert_string_not_equal(n->name[0], n->name[2]);
  conc_shared_free(n);
}

/* Issue 10.5 */
static void shm_wait_loop_never_sees_the_tracker(void **state) {
  (void)state;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int ready;
  pid_t pid = start_program("wait", "-", &ready);
  assert_int_equal(program_status(pid), 0);
  /* its tracker, no child of it, ends once the program has ended */
  assert_int_equal(reap_adopted(5.0), 1);
  close(ready);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* Children of a program with no tracker yet create at the same instant:
 * one tracker is spawned, and it ends with the program. */
static void shm_one_tracker_for_racing_children(void **state) {
  (void)state;
  char prefix[64];
  snprintf(prefix, sizeof prefix, "conc-race-%d-", (int)getpid());
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int ready;
  pid_t pid = start_program("race", prefix, &ready);
  assert_true(await_ready(ready, 1)); /* all four segments were made */
  assert_int_equal(program_status(pid), 0);
  assert_true(count_becomes(prefix, 0, 5.0));
  assert_int_equal(reap_adopted(5.0), 1);
  close(ready);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static int create_then(void *arg, void **result) {
  const char *name = arg;
  conc_shm_t s;
  if (conc_shm_init(&s, name, true, 64))
    conc_process_exit(2);
  strcpy(conc_shm_buf(&s), name);
  if (name[strlen(name) - 1] == 'k')
    raise(SIGKILL);
  return 0;
}

static void shm_child_segment_attachable_after_join(void **state) {
  (void)state;
  char name[2][64];
  snprintf(name[0], sizeof name[0], "conc-kid-%d-x", (int)getpid());
  snprintf(name[1], sizeof name[1], "conc-kid-%d-k", (int)getpid());
  assert_int_equal(run_child(create_then, name[0]), 0);
  assert_int_equal(run_child(create_then, name[1]), -SIGKILL);
  for (int k = 0; k < 2; k++) {
    conc_shm_t s;
    assert_int_equal(conc_shm_init(&s, name[k], false, 0), 0);
    assert_string_equal(conc_shm_buf(&s), name[k]);
    assert_int_equal(conc_shm_unlink(&s), 0);
    conc_shm_destroy(&s);
  }
}

static void shm_untracked_segment_outlives_program(void **state) {
  (void)state;
  char prefix[64], u[80];
  snprintf(prefix, sizeof prefix, "conc-end-%d-", (int)getpid());
  snprintf(u, sizeof u, "%su", prefix);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int ready;
  pid_t pid = start_program("exit", prefix, &ready);
  assert_true(await_ready(ready, 2));
  assert_int_equal(program_status(pid), 0);
  /* a (its creator's) and b (its child's) went with the program */
  assert_true(count_becomes(prefix, 1, 5.0));
  assert_true(shm_exists(u));
  assert_true(reap_adopted(5.0) >= 1);
  conc_shm_t s;
  assert_int_equal(conc_shm_init(&s, u, false, 0), 0);
  assert_int_equal(conc_shm_unlink(&s), 0);
  conc_shm_destroy(&s);
  close(ready);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void shm_killed_program_leaves_nothing(void **state) {
  (void)state;
  char prefix[64], u[80];
  snprintf(prefix, sizeof prefix, "conc-kill-%d-", (int)getpid());
  snprintf(u, sizeof u, "%su", prefix);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int ready;
  pid_t pid = start_program("hold", prefix, &ready);
  assert_true(await_ready(ready, 2));
  assert_int_equal(count_names(prefix), 3);
  kill(-pid, SIGKILL); /* the whole program at once */
  assert_int_equal(program_status(pid), -SIGKILL);
  assert_true(count_becomes(prefix, 1, 5.0));
  assert_true(shm_exists(u));          /* untracked */
  assert_true(reap_adopted(5.0) >= 2); /* its child and its tracker */
  char path[300];
  snprintf(path, sizeof path, "/dev/shm/%s", u);
  assert_int_equal(unlink(path), 0);
  close(ready);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* F6: kill a program at many points of create/unlink; nothing is left. */
static void no_shm_left_after_kill_at_any_point(void **state) {
  (void)state;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "conc-f6-%d-", (int)getpid());
  for (int round = 0; round < 12; round++) {
    int ready;
    pid_t pid = start_program("churn", prefix, &ready);
    /* rounds 0 and 1 kill it while it starts (its tracker too, maybe) */
    if (round >= 2) {
      assert_true(await_ready(ready, 1));
      conc_sleep(0.0007 * round);
    }
    kill(pid, SIGKILL);
    assert_int_equal(program_status(pid), -SIGKILL);
    assert_true(count_becomes(prefix, 0, 5.0));
    assert_true(count_becomes("conc.tmp.", 0, 5.0));
    assert_true(reap_adopted(5.0) >= 0); /* its tracker has ended */
    close(ready);
  }
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
    T(shm_create_retries_squatted_temporary_name),
    T(shm_fresh_name_retries_squatted_random_name),
    T(shm_names_come_from_random_source_not_pid),
    T(shm_wait_loop_never_sees_the_tracker),
    T(shm_one_tracker_for_racing_children),
    T(shm_child_segment_attachable_after_join),
    T(shm_untracked_segment_outlives_program),
    T(shm_killed_program_leaves_nothing),
    T(no_shm_left_after_kill_at_any_point))
