/*
 * Thread, registry, excepthook and process-exit tests (spec T1-T20, G5).
 * Threads wait on "gates" (a word parked on with conc__wait) so that every
 * ordering is forced, never slept for.
 */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc.h"
#include "platform-int.h"

/* ---- helpers ------------------------------------------------------------- */

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

static int wait_gate(void *arg, void **result) {
  gate_wait(arg);
  *result = arg;
  return 0;
}

static int nothing(void *arg, void **result) {
  *result = arg;
  return 0;
}

/* Threads parked on a gate are daemons: if an assertion fails before the
 * gate opens, process exit must not wait for them (spec T13). */
static const conc_thread_opts_t GATED = {.daemon = true};

static void start_ok(conc_thread_t *t) {
  assert_int_equal(conc_thread_start(t), 0);
}

static void join_ok(conc_thread_t *t) {
  assert_int_equal(conc_thread_join(t, CONC_FOREVER), 0);
}

static void run_and_destroy(conc_thread_t *t) {
  start_ok(t);
  join_ok(t);
  assert_int_equal(conc_thread_destroy(t), 0);
}

static bool listed(const conc_thread_t *t) {
  conc_thread_t *all[256];
  size_t n = conc_enumerate(all, 256);
  for (size_t i = 0; i < n && i < 256; i++)
    if (all[i] == t)
      return true;
  return false;
}

static unsigned name_number(const char *name) {
  unsigned n = 0;
  assert_int_equal(sscanf(name, "Thread-%u", &n), 1);
  return n;
}

/* ---- T1 / T2 names ---------------------------------------------------------
 */

/* T1 */
static void default_names_come_from_one_counter(void **state) {
  (void)state;
  conc_thread_t a, b, named, c;
  assert_int_equal(conc_thread_init(&a, nothing, NULL, NULL), 0);
  assert_int_equal(
      conc_thread_init(&b, nothing, NULL,
                       &(conc_thread_opts_t){.target_name = "work"}),
      0);
  assert_int_equal(conc_thread_init(&named, nothing, NULL,
                                    &(conc_thread_opts_t){.name = "worker"}),
                   0);
  assert_int_equal(conc_thread_init(&c, NULL, NULL, NULL), 0);
  unsigned n = name_number(conc_thread_name(&a));
  char want[64];
  snprintf(want, sizeof want, "Thread-%u (work)", n + 1);
  assert_string_equal(conc_thread_name(&b), want);
  assert_string_equal(conc_thread_name(&named), "worker");
  /* an explicit name does not consume a number */
  assert_int_equal(name_number(conc_thread_name(&c)), n + 2);
  conc_thread_destroy(&a);
  conc_thread_destroy(&b);
  conc_thread_destroy(&named);
  conc_thread_destroy(&c);
}

/* T1: a name longer than the inline buffer survives intact. */
static void long_names_are_kept_whole(void **state) {
  (void)state;
  char longname[200];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  conc_thread_t t, u;
  assert_int_equal(conc_thread_init(&t, nothing, NULL,
                                    &(conc_thread_opts_t){.name = longname}),
                   0);
  assert_string_equal(conc_thread_name(&t), longname);
  assert_int_equal(
      conc_thread_init(&u, nothing, NULL,
                       &(conc_thread_opts_t){.target_name = longname}),
      0);
  assert_non_null(strstr(conc_thread_name(&u), longname));
  run_and_destroy(&t);
  run_and_destroy(&u);
}

struct rename_ctx {
  char os_at_start[16];
  char os_after[16];
  const char *new_name;
};

static int rename_self(void *arg, void **result) {
  struct rename_ctx *c = arg;
  pthread_getname_np(pthread_self(), c->os_at_start, sizeof c->os_at_start);
  assert_int_equal(conc_thread_set_name(conc_current_thread(), c->new_name), 0);
  pthread_getname_np(pthread_self(), c->os_after, sizeof c->os_after);
  return 0;
}

/* T2 */
static void renaming_itself_changes_the_os_name(void **state) {
  (void)state;
  struct rename_ctx c = {.new_name = "a-very-long-thread-name"};
  conc_thread_t t;
  assert_int_equal(conc_thread_init(&t, rename_self, &c,
                                    &(conc_thread_opts_t){.name = "short"}),
                   0);
  run_and_destroy(&t);
  assert_string_equal(c.os_at_start, "short");
  assert_string_equal(c.os_after, "a-very-long-thr"); /* 15 bytes */
}

/* T2: truncation never splits a UTF-8 character. */
static void os_name_truncation_keeps_utf8_whole(void **state) {
  (void)state;
  struct rename_ctx c = {.new_name = "abcdefghijklmn\xc3\xa9xyz"};
  conc_thread_t t;
  assert_int_equal(conc_thread_init(&t, rename_self, &c, NULL), 0);
  run_and_destroy(&t);
  assert_string_equal(c.os_after, "abcdefghijklmn");
}

/* T2: another thread may rename a running thread at any time. */
static void name_can_change_at_any_time(void **state) {
  (void)state;
  gate_t g = {0};
  conc_thread_t t;
  assert_int_equal(conc_thread_init(&t, wait_gate, &g, &GATED), 0);
  assert_int_equal(conc_thread_set_name(&t, "before"), 0);
  start_ok(&t);
  const char *old = conc_thread_name(&t);
  assert_int_equal(conc_thread_set_name(&t, "during"), 0);
  assert_string_equal(conc_thread_name(&t), "during");
  assert_string_equal(old, "before"); /* the old pointer stays valid */
  gate_open(&g);
  join_ok(&t);
  assert_int_equal(conc_thread_set_name(&t, "after"), 0);
  assert_string_equal(conc_thread_name(&t), "after");
  assert_int_equal(conc_thread_destroy(&t), 0);
}

/* ---- T3 / T4 target and subclassing ---------------------------------------
 */

static int count_calls(void *arg, void **result) {
  conc__fetch_add((uint32_t *)arg, 1);
  *result = (void *)0x1234;
  return 0;
}

/* T3 */
static void target_runs_once_with_its_argument(void **state) {
  (void)state;
  uint32_t calls = 0;
  conc_thread_t t;
  assert_int_equal(conc_thread_init(&t, count_calls, &calls, NULL), 0);
  start_ok(&t);
  join_ok(&t);
  assert_int_equal(calls, 1);
  void *res = NULL;
  assert_int_equal(conc_thread_result(&t, &res), 0);
  assert_ptr_equal(res, (void *)0x1234);
  conc_thread_destroy(&t);
}

/* T3: no target (Python's target=None) runs nothing and ends normally. */
static void null_target_runs_nothing(void **state) {
  (void)state;
  conc_thread_t t;
  assert_int_equal(conc_thread_init(&t, NULL, NULL, NULL), 0);
  start_ok(&t);
  join_ok(&t);
  void *res = (void *)1;
  assert_int_equal(conc_thread_result(&t, &res), 0);
  assert_null(res);
  conc_thread_destroy(&t);
}

typedef struct {
  conc_thread_t thread;
  int runs;
  bool self_found;
} counter_thread_t;

static int counter_run(void *arg, void **result) {
  counter_thread_t *self = arg;
  self->runs++;
  self->self_found = CONC_CONTAINER_OF(conc_current_thread(), counter_thread_t,
                                       thread) == self;
  return 0;
}

/* T4 */
static void embedded_thread_runs_its_own_run(void **state) {
  (void)state;
  counter_thread_t c = {.runs = 0};
  assert_int_equal(conc_thread_init(&c.thread, counter_run, &c, NULL), 0);
  run_and_destroy(&c.thread);
  assert_int_equal(c.runs, 1);
  assert_true(c.self_found);
}

/* ---- T5 / T6 idents
 * ----------------------------------------------------------- */

struct ids {
  gate_t go;
  unsigned long ident, native;
};

static int record_ids(void *arg, void **result) {
  struct ids *ids = arg;
  ids->ident = conc_get_ident();
  ids->native = conc_get_native_id();
  gate_wait(&ids->go);
  return 0;
}

/* T5 T6 */
static void ident_and_native_id_from_start_and_after_exit(void **state) {
  (void)state;
  struct ids a = {0}, b = {0};
  conc_thread_t ta, tb;
  conc_thread_init(&ta, record_ids, &a, &GATED);
  conc_thread_init(&tb, record_ids, &b, &GATED);
  assert_int_equal(conc_thread_ident(&ta), 0);
  assert_int_equal(conc_thread_native_id(&ta), 0);
  start_ok(&ta);
  start_ok(&tb);
  assert_int_not_equal(conc_thread_ident(&ta), 0);
  unsigned long na = conc_thread_native_id(&ta),
                nb = conc_thread_native_id(&tb);
  assert_int_not_equal(na, 0);
  assert_int_not_equal(na, nb); /* distinct among live threads */
  assert_int_not_equal(na, conc_get_native_id());
  gate_open(&a.go);
  gate_open(&b.go);
  join_ok(&ta);
  join_ok(&tb);
  assert_int_equal(a.ident, conc_thread_ident(&ta));
  assert_int_equal(a.native, na);
  assert_int_equal(b.native, nb);
  assert_int_equal(conc_thread_ident(&ta), a.ident); /* kept after exit */
  assert_int_equal(conc_thread_native_id(&ta), na);
  conc_thread_destroy(&ta);
  conc_thread_destroy(&tb);
}

/* ---- T7 / T8 / T9 start and join
 * --------------------------------------------- */

/* T7 */
static void starting_twice_is_a_state_error(void **state) {
  (void)state;
  conc_thread_t t;
  conc_thread_init(&t, nothing, NULL, NULL);
  start_ok(&t);
  assert_int_equal(conc_thread_start(&t), CONC_ESTATE);
  join_ok(&t);
  assert_int_equal(conc_thread_start(&t), CONC_ESTATE);
  assert_int_equal(conc_thread_start(conc_main_thread()), CONC_ESTATE);
  conc_thread_destroy(&t);
}

static int join_self(void *arg, void **result) {
  (void)arg;
  *result = (void *)(intptr_t)conc_thread_join(conc_current_thread(), 1.0);
  return 0;
}

/* T8 */
static void join_before_start_and_join_self_have_distinct_codes(void **state) {
  (void)state;
  conc_thread_t t;
  conc_thread_init(&t, join_self, NULL, NULL);
  assert_int_equal(conc_thread_join(&t, CONC_FOREVER), CONC_ENOTSTARTED);
  start_ok(&t);
  join_ok(&t);
  void *res;
  assert_int_equal(conc_thread_result(&t, &res), 0);
  assert_int_equal((intptr_t)res, CONC_EDEADLK);
  assert_int_equal(conc_thread_join(conc_current_thread(), 0), CONC_EDEADLK);
  conc_thread_destroy(&t);
}

/* T9 */
static void join_timeout_returns_while_alive_then_join_works(void **state) {
  (void)state;
  gate_t g = {0};
  conc_thread_t t;
  conc_thread_init(&t, wait_gate, &g, &GATED);
  start_ok(&t);
  double t0 = conc_monotonic();
  assert_int_equal(conc_thread_join(&t, 0.2), CONC_ETIMEDOUT);
  assert_elapsed(conc_monotonic() - t0, 0.2);
  assert_true(conc_thread_is_alive(&t));
  t0 = conc_monotonic();
  assert_int_equal(conc_thread_join(&t, -5.0),
                   CONC_ETIMEDOUT); /* counts as 0 */
  assert_int_equal(conc_thread_join(&t, 0), CONC_ETIMEDOUT);
  assert_quick(conc_monotonic() - t0);
  assert_int_equal(conc_thread_join(&t, 0.0 / 0.0), CONC_EINVAL);
  gate_open(&g);
  assert_int_equal(conc_thread_join(&t, 10.0), 0);
  assert_int_equal(conc_thread_join(&t, 0), 0); /* again */
  assert_false(conc_thread_is_alive(&t));
  conc_thread_destroy(&t);
}

struct joiner {
  conc_thread_t *target;
  int rc;
};

static void *joiner_run(void *arg) {
  struct joiner *j = arg;
  j->rc = conc_thread_join(j->target, 10.0);
  return NULL;
}

/* T9: several threads join one thread at once (no polling: they park). */
static void several_threads_join_at_once(void **state) {
  (void)state;
  gate_t g = {0};
  conc_thread_t t;
  conc_thread_init(&t, wait_gate, &g, &GATED);
  start_ok(&t);
  struct joiner j[4];
  pthread_t raw[4];
  for (int i = 0; i < 4; i++) {
    j[i] = (struct joiner){&t, 99};
    raw[i] = conc_test_spawn(joiner_run, &j[i]);
  }
  conc_sleep(0.05);
  gate_open(&g);
  for (int i = 0; i < 4; i++) {
    conc_test_join(raw[i]);
    assert_int_equal(j[i].rc, 0);
  }
  conc_thread_destroy(&t);
}

/* ---- T11 / T12
 * ------------------------------------------------------------------ */

/* T11 */
static void is_alive_follows_the_lifecycle(void **state) {
  (void)state;
  gate_t g = {0};
  conc_thread_t t;
  conc_thread_init(&t, wait_gate, &g, &GATED);
  assert_false(conc_thread_is_alive(&t));
  start_ok(&t);
  assert_true(conc_thread_is_alive(&t));
  gate_open(&g);
  join_ok(&t);
  assert_false(conc_thread_is_alive(&t));
  conc_thread_destroy(&t);
}

struct daemon_probe {
  bool inherited, explicit_no;
};

static int make_children(void *arg, void **result) {
  struct daemon_probe *p = arg;
  conc_thread_t a, b;
  conc_thread_init(&a, nothing, NULL, NULL);
  conc_thread_init(&b, nothing, NULL,
                   &(conc_thread_opts_t){.daemon = CONC_DAEMON_NO});
  p->inherited = conc_thread_daemon(&a);
  p->explicit_no = conc_thread_daemon(&b);
  conc_thread_destroy(&a);
  conc_thread_destroy(&b);
  return 0;
}

/* T12 */
static void daemon_defaults_to_the_creators_flag(void **state) {
  (void)state;
  conc_thread_t plain, d;
  conc_thread_init(&plain, nothing, NULL, NULL);
  assert_false(conc_thread_daemon(&plain)); /* main is not a daemon */
  struct daemon_probe p = {false, true};
  conc_thread_init(&d, make_children, &p,
                   &(conc_thread_opts_t){.daemon = true});
  assert_true(conc_thread_daemon(&d));
  run_and_destroy(&d);
  assert_true(p.inherited);
  assert_false(p.explicit_no);
  assert_int_equal(conc_thread_set_daemon(&plain, true), 0);
  assert_true(conc_thread_daemon(&plain));
  assert_int_equal(conc_thread_set_daemon(&plain, false), 0);
  conc_thread_destroy(&plain);
}

/* T12 */
static void setting_daemon_after_start_is_a_state_error(void **state) {
  (void)state;
  gate_t g = {0};
  conc_thread_t t;
  conc_thread_init(&t, wait_gate, &g, NULL);
  start_ok(&t);
  int rc = conc_thread_set_daemon(&t, true);
  bool daemon = conc_thread_daemon(&t);
  gate_open(&g); /* before asserting: exit would wait for this thread */
  assert_int_equal(rc, CONC_ESTATE);
  assert_false(daemon);
  join_ok(&t);
  assert_int_equal(conc_thread_set_daemon(&t, true), CONC_ESTATE);
  assert_int_equal(conc_thread_set_daemon(conc_main_thread(), true),
                   CONC_ESTATE);
  conc_thread_destroy(&t);
}

/* ---- T13 process exit (in a child process)
 * ----------------------------------- */

static int exit_pipe = -1;

static int write_after(void *arg, void **result) {
  const char *what = arg;
  conc_sleep(what[0] == 'D' ? 30.0 : 0.2);
  assert_int_equal(write(exit_pipe, what, 1), 1);
  return 0;
}

static int start_grandchild(void *arg, void **result) {
  (void)arg;
  static conc_thread_t b;
  conc_thread_init(&b, write_after, "B", NULL);
  conc_thread_start(&b);
  return 0; /* ends at once; B still runs */
}

static void atexit_mark(void *arg) {
  assert_int_equal(write(exit_pipe, arg, 1), 1);
}

static void child_main(void) {
  static conc_thread_t n, d, a;
  conc_thread_init(&n, write_after, "N", NULL);
  conc_thread_init(&d, write_after, "D", &(conc_thread_opts_t){.daemon = true});
  conc_thread_init(&a, start_grandchild, NULL, NULL);
  conc_threading_register_atexit(atexit_mark, "1");
  conc_threading_register_atexit(atexit_mark, "2");
  if (conc_thread_start(&n) || conc_thread_start(&d) || conc_thread_start(&a))
    _exit(3);
  exit(0); /* a normal exit: waits for N and B, abandons D */
}

/* T13 */
static void exit_waits_for_non_daemon_threads_only(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  double t0 = conc_monotonic();
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    exit_pipe = fds[1];
    child_main();
  }
  close(fds[1]);
  char buf[16] = {0};
  size_t got = 0;
  ssize_t r;
  while (got < sizeof buf - 1 &&
         (r = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
    got += (size_t)r;
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* atexit functions first, last registered first; then both non-daemon
   * threads (N, B in either order); the daemon never wrote. */
  assert_int_equal(got, 4);
  assert_memory_equal(buf, "21", 2);
  assert_true(memchr(buf + 2, 'N', 2) && memchr(buf + 2, 'B', 2));
  assert_null(memchr(buf, 'D', got));
  assert_true(conc_monotonic() - t0 < 10.0);
}

/* T13: shutdown from a non-daemon thread does not wait for itself. */
static int shutdown_inside(void *arg, void **result) {
  (void)arg;
  conc_threading_shutdown();
  *result = (void *)1;
  return 0;
}

static void
shutdown_called_from_a_thread_does_not_wait_for_itself(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    conc_thread_t t;
    conc_thread_init(&t, shutdown_inside, NULL, NULL);
    conc_thread_start(&t);
    void *res = NULL;
    int rc = conc_thread_join(&t, 10.0);
    conc_thread_result(&t, &res);
    _exit(rc == 0 && res == (void *)1 ? 0 : 1);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- T14 / T15 / T16 registry
 * ---------------------------------------------------- */

static int report_ident(void *arg, void **result) {
  *(unsigned long *)arg = conc_get_ident();
  return 0;
}

/* T14 */
static void main_thread_is_named_MainThread(void **state) {
  (void)state;
  conc_thread_t *m = conc_main_thread();
  assert_string_equal(conc_thread_name(m), "MainThread");
  assert_ptr_equal(conc_current_thread(), m);
  assert_int_equal(conc_thread_ident(m), conc_get_ident());
  assert_int_equal(conc_thread_ident(m), (unsigned long)pthread_self());
  assert_int_equal(conc_thread_native_id(m), conc_get_native_id());
  unsigned long other = 0;
  conc_thread_t t;
  conc_thread_init(&t, report_ident, &other, NULL);
  run_and_destroy(&t);
  assert_int_not_equal(other, 0);
  assert_int_not_equal(other, conc_thread_ident(m));
  assert_true(conc_thread_is_alive(m));
  assert_int_equal(conc_thread_destroy(m), CONC_EPERM);
}

struct foreign {
  gate_t done_probe, release;
  conc_thread_t *self;
  unsigned long ident;
  bool daemon, listed_inside, same_twice;
  int join_rc;
  char name[64];
  int start_rc, join_child_rc;
};

static void *foreign_body(void *arg) {
  struct foreign *f = arg;
  conc_thread_t *me = conc_current_thread();
  f->self = me;
  f->same_twice = conc_current_thread() == me;
  f->ident = conc_thread_ident(me);
  f->daemon = conc_thread_daemon(me);
  f->listed_inside = listed(me);
  f->join_rc = conc_thread_join(me, 0);
  snprintf(f->name, sizeof f->name, "%s", conc_thread_name(me));
  /* G5: libconc threads can be started and joined from here */
  conc_thread_t child;
  conc_thread_init(&child, nothing, NULL, NULL);
  f->start_rc = conc_thread_start(&child);
  f->join_child_rc = conc_thread_join(&child, 10.0);
  conc_thread_destroy(&child);
  gate_open(&f->done_probe);
  gate_wait(&f->release);
  return NULL;
}

/* T15 G5 */
static void foreign_thread_gets_a_daemon_dummy(void **state) {
  (void)state;
  struct foreign f;
  memset(&f, 0, sizeof f);
  pthread_t raw = conc_test_spawn(foreign_body, &f);
  gate_wait(&f.done_probe);
  assert_true(f.same_twice);
  assert_int_equal(f.ident, (unsigned long)raw);
  assert_true(f.daemon);
  assert_true(f.listed_inside);
  assert_int_equal(f.join_rc, CONC_ESTATE);
  assert_int_equal(strncmp(f.name, "Dummy-", 6), 0);
  assert_int_equal(f.start_rc, 0);
  assert_int_equal(f.join_child_rc, 0);
  assert_int_equal(conc_thread_join(f.self, 1.0), CONC_ESTATE);
  char repr[128];
  conc_thread_repr(f.self, repr, sizeof repr);
  assert_int_equal(strncmp(repr, "<_DummyThread(Dummy-", 20), 0);
  assert_non_null(strstr(repr, "started daemon"));
  size_t before = conc_active_count();
  gate_open(&f.release);
  conc_test_join(raw);
  /* the dummy leaves the registry when its thread exits */
  assert_int_equal(conc_active_count(), before - 1);
}

/* T16 */
static void enumerate_lists_only_started_alive_threads(void **state) {
  (void)state;
  gate_t g = {0};
  conc_thread_t t, unstarted;
  conc_thread_init(&t, wait_gate, &g, &GATED);
  conc_thread_init(&unstarted, nothing, NULL, NULL);
  size_t base = conc_active_count();
  assert_true(listed(conc_main_thread()));
  conc_thread_t *first;
  assert_true(conc_enumerate(&first, 1) >= 1);
  assert_ptr_equal(first, conc_main_thread());
  assert_false(listed(&t));
  start_ok(&t);
  assert_true(listed(&t));
  assert_false(listed(&unstarted));
  assert_int_equal(conc_active_count(), base + 1);
  assert_int_equal(conc_enumerate(NULL, 0), base + 1);
  gate_open(&g);
  join_ok(&t);
  assert_false(listed(&t));
  assert_int_equal(conc_active_count(), base);
  conc_thread_destroy(&t);
  conc_thread_destroy(&unstarted);
}

/* ---- T18 excepthook
 * ---------------------------------------------------------------- */

static int fail_with_value_error(void *arg, void **result) {
  (void)arg;
  return conc_raise(CONC_EINVAL, "bad value %d", 42);
}

/* Run fn while fd 2 goes to a temporary file; returns what was written. */
static void capture_stderr(void (*fn)(void), char *out, size_t cap) {
  char path[] = "/tmp/conc_test_thread_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, out, cap - 1, 0);
  close(fd);
  out[n > 0 ? n : 0] = '\0';
}

static void run_failing_thread(void) {
  conc_thread_t t;
  conc_thread_init(&t, fail_with_value_error, NULL,
                   &(conc_thread_opts_t){.name = "failer"});
  run_and_destroy(&t);
}

/* T18: a target returning conc_raise(code, ...) reaches the default hook
 * with its code and message. */
static void default_excepthook_prints_thread_name_and_error(void **state) {
  (void)state;
  char out[512];
  capture_stderr(run_failing_thread, out, sizeof out);
  assert_string_equal(out, "Exception in thread failer:\n"
                           "ValueError (CONC_EINVAL): bad value 42\n");
}

static conc_excepthook_args_t seen;
static char seen_msg[64];
static char seen_name[64];
static int hook_calls;
static void *seen_user;

static void recording_hook(const conc_excepthook_args_t *a, void *user) {
  hook_calls++;
  seen = *a;
  seen_user = user;
  snprintf(seen_msg, sizeof seen_msg, "%s", a->message);
  snprintf(seen_name, sizeof seen_name, "%s", conc_thread_name(a->thread));
}

/* Start and join a thread running fn with recording_hook installed. */
static void run_hooked(conc_thread_t *t, conc_fn_t fn, void *arg) {
  hook_calls = 0;
  seen_user = NULL;
  conc_thread_set_excepthook(recording_hook, &hook_calls);
  conc_thread_init(t, fn, arg, NULL);
  start_ok(t);
  join_ok(t);
  conc_thread_set_excepthook(NULL, NULL);
}

/* T18: a target's negative return reaches a custom hook with the code, the
 * conc_raise message, the thread and the hook's user pointer; the thread's
 * result reports the code. */
static void target_returning_a_code_reaches_the_excepthook(void **state) {
  (void)state;
  int user;
  hook_calls = 0;
  conc_thread_set_excepthook(recording_hook, &user);
  conc_excepthook_t hook;
  void *hook_arg;
  conc_thread_get_excepthook(&hook, &hook_arg);
  assert_ptr_equal(hook, recording_hook);
  assert_ptr_equal(hook_arg, &user);
  conc_thread_t t;
  conc_thread_init(&t, fail_with_value_error, NULL,
                   &(conc_thread_opts_t){.name = "hooked"});
  start_ok(&t);
  join_ok(&t);
  assert_int_equal(hook_calls, 1);
  assert_int_equal(seen.code, CONC_EINVAL);
  assert_string_equal(seen_msg, "bad value 42");
  assert_ptr_equal(seen.thread, &t);
  assert_ptr_equal(seen_user, &user);
  assert_string_equal(seen_name, "hooked");
  void *res = (void *)0x9;
  assert_int_equal(conc_thread_result(&t, &res), CONC_EINVAL);
  assert_ptr_equal(res, (void *)0x9); /* untouched on failure */
  conc_thread_set_excepthook(NULL, &user);
  conc_thread_get_excepthook(&hook, &hook_arg);
  assert_ptr_equal(hook, conc_thread_default_excepthook);
  assert_null(hook_arg);
  conc_thread_destroy(&t);
}

static int return_code_without_message(void *arg, void **result) {
  (void)arg;
  conc_raise(CONC_EIO, "raised for another code");
  *result = (void *)0x5;
  return CONC_EINVAL;
}

/* T18: the hook's message is the one raised with the returned code only;
 * a bare code gives "". */
static void excepthook_message_belongs_to_the_returned_code(void **state) {
  (void)state;
  conc_thread_t t;
  run_hooked(&t, return_code_without_message, NULL);
  assert_int_equal(hook_calls, 1);
  assert_int_equal(seen.code, CONC_EINVAL);
  assert_string_equal(seen_msg, "");
  assert_int_equal(conc_thread_result(&t, NULL), CONC_EINVAL);
  conc_thread_destroy(&t);
}

static int return_the_argument(void *arg, void **result) {
  *result = arg;
  return 0;
}

/* T18: a 0 return is a normal end: no hook, and the result (join's value
 * in C) is the target's *result. */
static void join_returns_the_targets_result(void **state) {
  (void)state;
  conc_thread_t t;
  run_hooked(&t, return_the_argument, (void *)0x77);
  assert_int_equal(hook_calls, 0);
  void *res = NULL;
  assert_int_equal(conc_thread_result(&t, &res), 0);
  assert_ptr_equal(res, (void *)0x77);
  conc_thread_destroy(&t);
}

/* T18: a positive return (not a code) counts as CONC_EFAILED. */
static int return_positive(void *arg, void **result) {
  (void)arg;
  return 5;
}

static void non_error_codes_become_efailed(void **state) {
  (void)state;
  conc_thread_t t;
  run_hooked(&t, return_positive, NULL);
  assert_int_equal(hook_calls, 1);
  assert_int_equal(seen.code, CONC_EFAILED);
  assert_int_equal(conc_thread_result(&t, NULL), CONC_EFAILED);
  assert_string_equal(seen_msg, "");
  conc_thread_destroy(&t);
}

/* ---- T19 resources and stacks
 * --------------------------------------------------------- */

static long vm_size_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %ld", &kib) == 1)
      break;
  if (f)
    fclose(f);
  return kib;
}

/* T19: 64 threads never joined: once they ended, their stacks are gone
 * (an unjoined joinable pthread would keep 8 MiB each mapped). */
static void threads_never_joined_do_not_leak(void **state) {
  (void)state;
  enum { N = 64 };
  static conc_thread_t t[N];
  long before = vm_size_kib();
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      conc_thread_init(&t[i], nothing, NULL, NULL);
      start_ok(&t[i]);
    }
    for (int i = 0; i < N; i++) {
      while (conc_thread_is_alive(&t[i]))
        conc_sleep(0.001);
      conc_thread_destroy(&t[i]);
    }
  }
  /* A stopped thread still has its pthread exit to finish (slow on a
   * loaded machine): give them up to 3 s; leaked stacks never go away. */
  long after = vm_size_kib();
  for (int k = 0; k < 300 && after - before >= 64 * 1024; k++) {
    conc_sleep(0.01);
    after = vm_size_kib();
  }
  assert_true(before > 0);
  assert_true(after - before < 64 * 1024); /* far below 3 * 64 * 8 MiB */
}

static int stack_size_of_self(void *arg, void **result) {
  pthread_attr_t attr;
  size_t size = 0;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstacksize(&attr, &size);
  pthread_attr_destroy(&attr);
  *(size_t *)arg = size;
  return 0;
}

/* ThreadSanitizer raises small stack sizes (its AdjustStackSize). */
#if defined(__SANITIZE_THREAD__)
#define TSAN_ENLARGES_STACKS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_ENLARGES_STACKS 1
#endif
#endif

/* T19 */
static void stack_sizes_are_honoured(void **state) {
  (void)state;
  size_t sizes[] = {256 * 1024, 1024 * 1024};
  for (int i = 0; i < 2; i++) {
    size_t got = 0;
    conc_thread_t t;
    assert_int_equal(
        conc_thread_init(&t, stack_size_of_self, &got,
                         &(conc_thread_opts_t){.stack_size = sizes[i]}),
        0);
    run_and_destroy(&t);
    assert_true(got >= sizes[i]);
#ifndef TSAN_ENLARGES_STACKS
    /* glibc reuses a cached stack of up to 4x the size asked for; the
     * 8 MiB default would exceed that */
    assert_true(got < 4 * sizes[i]);
#endif
  }
  conc_thread_t t;
  assert_int_equal(conc_thread_init(&t, nothing, NULL,
                                    &(conc_thread_opts_t){.stack_size = 4096}),
                   CONC_EINVAL);
}

/* T19: threading.stack_size() sets the size of later threads. */
static void process_wide_stack_size_applies_to_later_threads(void **state) {
  (void)state;
  size_t old = 1;
  assert_int_equal(conc_threading_stack_size(), 0);
  assert_int_equal(conc_threading_set_stack_size(4096, &old), CONC_EINVAL);
  assert_int_equal(old, 1); /* nothing changed */
  assert_int_equal(conc_threading_set_stack_size(512 * 1024, &old), 0);
  assert_int_equal(old, 0);
  assert_int_equal(conc_threading_stack_size(), 512 * 1024);
  size_t got = 0;
  conc_thread_t t;
  conc_thread_init(&t, stack_size_of_self, &got, NULL);
  run_and_destroy(&t);
  assert_int_equal(conc_threading_set_stack_size(0, &old), 0);
  assert_int_equal(old, 512 * 1024);
  assert_true(got >= 512 * 1024);
#ifndef TSAN_ENLARGES_STACKS
  assert_true(got < 4 * 512 * 1024); /* glibc may hand out a cached stack */
#endif
}

/* T7: when the OS cannot create the thread (here: a 64 TiB stack), start
 * reports it and the object is left as it was: unstarted and unlisted. */
static void failed_start_leaves_the_thread_unstarted(void **state) {
  (void)state;
  conc_thread_t t;
  assert_int_equal(
      conc_thread_init(&t, nothing, NULL,
                       &(conc_thread_opts_t){.stack_size = (size_t)1 << 46}),
      0);
  size_t before = conc_active_count();
  int rc = conc_thread_start(&t);
  assert_true(rc == CONC_EAGAIN || rc == CONC_ENOMEM || rc == CONC_EINVAL);
  assert_false(conc_thread_is_alive(&t));
  assert_false(listed(&t));
  assert_int_equal(conc_active_count(), before);
  assert_int_equal(conc_thread_ident(&t), 0);
  assert_int_equal(conc_thread_native_id(&t), 0);
  assert_int_equal(conc_thread_join(&t, 0), CONC_ENOTSTARTED);
  assert_int_equal(conc_thread_start(&t), rc); /* still startable */
  assert_int_equal(conc_thread_destroy(&t), 0);
}

/* ---- T20 repr
 * -------------------------------------------------------------------------- */

/* T20 */
static void repr_shows_initial_started_stopped_and_daemon(void **state) {
  (void)state;
  gate_t g = {0};
  conc_thread_t t;
  conc_thread_init(&t, wait_gate, &g,
                   &(conc_thread_opts_t){.name = "r", .daemon = true});
  char buf[128], want[128];
  conc_thread_repr(&t, buf, sizeof buf);
  assert_string_equal(buf, "<Thread(r, initial daemon)>");
  start_ok(&t);
  conc_thread_repr(&t, buf, sizeof buf);
  snprintf(want, sizeof want, "<Thread(r, started daemon %lu)>",
           conc_thread_ident(&t));
  assert_string_equal(buf, want);
  gate_open(&g);
  while (conc_thread_is_alive(&t)) /* stopped shows without any join */
    conc_sleep(0.001);
  conc_thread_repr(&t, buf, sizeof buf);
  snprintf(want, sizeof want, "<Thread(r, stopped daemon %lu)>",
           conc_thread_ident(&t));
  assert_string_equal(buf, want);
  int need = conc_thread_repr(&t, buf, 4);
  assert_int_equal(need, (int)strlen(want));
  assert_string_equal(buf, "<Th");
  conc_thread_repr(conc_main_thread(), buf, sizeof buf);
  snprintf(want, sizeof want, "<_MainThread(MainThread, started %lu)>",
           conc_get_ident());
  assert_string_equal(buf, want);
  conc_thread_destroy(&t);
}

/* ---- results, destroy, bad input
 * ------------------------------------------------------ */

static void result_and_destroy_refuse_a_running_thread(void **state) {
  (void)state;
  gate_t g = {0};
  conc_thread_t t;
  conc_thread_init(&t, wait_gate, &g, &GATED);
  assert_int_equal(conc_thread_result(&t, NULL), CONC_ENOTSTARTED);
  start_ok(&t);
  assert_int_equal(conc_thread_result(&t, NULL), CONC_EBUSY);
  assert_int_equal(conc_thread_destroy(&t), CONC_EBUSY);
  gate_open(&g);
  join_ok(&t);
  void *res = NULL;
  assert_int_equal(conc_thread_result(&t, &res), 0);
  assert_ptr_equal(res, &g);
  assert_int_equal(conc_thread_destroy(&t), 0);
}

static void null_and_bad_arguments_are_rejected(void **state) {
  (void)state;
  assert_int_equal(conc_thread_init(NULL, nothing, NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_thread_start(NULL), CONC_EINVAL);
  assert_int_equal(conc_thread_join(NULL, 1), CONC_EINVAL);
  assert_false(conc_thread_is_alive(NULL));
  assert_null(conc_thread_name(NULL));
  assert_int_equal(conc_thread_ident(NULL), 0);
  assert_int_equal(conc_thread_native_id(NULL), 0);
  assert_false(conc_thread_daemon(NULL));
  assert_int_equal(conc_thread_set_daemon(NULL, true), CONC_EINVAL);
  assert_int_equal(conc_thread_set_name(NULL, "x"), CONC_EINVAL);
  assert_int_equal(conc_thread_result(NULL, NULL), CONC_EINVAL);
  assert_int_equal(conc_thread_repr(NULL, NULL, 0), CONC_EINVAL);
  assert_int_equal(conc_thread_destroy(NULL), CONC_EINVAL);
  assert_int_equal(conc_threading_register_atexit(NULL, NULL), CONC_EINVAL);
  conc_thread_t t;
  conc_thread_init(&t, nothing, NULL, &(conc_thread_opts_t){.name = "keep"});
  assert_int_equal(conc_thread_set_name(&t, NULL), CONC_EINVAL);
  assert_string_equal(conc_thread_name(&t), "keep");
  conc_thread_destroy(&t);
}

/* ---- fork
 * --------------------------------------------------------------------------------
 */

struct fork_probe {
  gate_t forked, release;
  int child_status;
};

/* In the child: only the forker is left; it is the main thread now; the
 * thread that was blocked in the parent is stopped here; new threads work. */
static int child_checks(conc_thread_t *me, conc_thread_t *other) {
  if (conc_active_count() != 1 || conc_main_thread() != me ||
      conc_current_thread() != me)
    return 10;
  if (conc_thread_is_alive(other) || conc_thread_join(other, 1.0) != 0)
    return 11;
  if (conc_thread_ident(me) != conc_get_ident() ||
      conc_thread_native_id(me) != (unsigned long)getpid())
    return 12;
  conc_thread_t t;
  conc_thread_init(&t, nothing, NULL, NULL);
  if (conc_thread_start(&t) || conc_thread_join(&t, 10.0) ||
      conc_active_count() != 1)
    return 13;
  return 0;
}

static conc_thread_t fork_blocked;

static int fork_from_thread(void *arg, void **result) {
  struct fork_probe *p = arg;
  pid_t pid = fork();
  if (pid == 0)
    _exit(child_checks(conc_current_thread(), &fork_blocked));
  int status = -1;
  waitpid(pid, &status, 0);
  p->child_status = status;
  return 0;
}

static void after_fork_child_registry_holds_only_the_forker(void **state) {
  (void)state;
  struct fork_probe p = {.child_status = -1};
  gate_t g = {0};
  conc_thread_init(&fork_blocked, wait_gate, &g, &GATED);
  start_ok(&fork_blocked);
  /* fork from the main thread */
  pid_t pid = fork();
  if (pid == 0)
    _exit(child_checks(conc_main_thread(), &fork_blocked));
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* fork from another libconc thread */
  conc_thread_t forker;
  conc_thread_init(&forker, fork_from_thread, &p, NULL);
  run_and_destroy(&forker);
  assert_true(WIFEXITED(p.child_status));
  assert_int_equal(WEXITSTATUS(p.child_status), 0);
  assert_true(conc_thread_is_alive(&fork_blocked)); /* parent unaffected */
  gate_open(&g);
  join_ok(&fork_blocked);
  conc_thread_destroy(&fork_blocked);
}

/* G3: a negative timeout (other than CONC_FOREVER) follows each
 * primitive's own Python rule: Lock raises, Semaphore, Event and Condition
 * poll, a blocking Queue get raises, join clamps to 0. */
static int park_until_set(void *arg, void **result) {
  conc_event_wait(arg, CONC_FOREVER);
  return 0;
}

static void negative_timeouts_follow_each_primitives_rule(void **state) {
  (void)state;
  conc_lock_t l = CONC_LOCK_INIT;
  assert_int_equal(conc_lock_acquire_timeout(&l, -2.0), CONC_EINVAL);
  conc_semaphore_t s;
  assert_int_equal(conc_semaphore_init(&s, 1, NULL), 0);
  assert_int_equal(conc_semaphore_acquire_timeout(&s, -2.0), 0); /* polls */
  assert_int_equal(conc_semaphore_acquire_timeout(&s, -2.0), CONC_ETIMEDOUT);
  conc_event_t e;
  assert_int_equal(conc_event_init(&e, NULL), 0);
  double t0 = conc_monotonic();
  assert_int_equal(conc_event_wait(&e, -2.0), CONC_ETIMEDOUT);
  conc_condition_t c;
  assert_int_equal(conc_condition_init(&c, NULL), 0);
  assert_int_equal(conc_condition_acquire(&c), 0);
  assert_int_equal(conc_condition_wait(&c, -2.0), CONC_ETIMEDOUT);
  assert_int_equal(conc_condition_release(&c), 0);
  conc_queue_t q;
  assert_int_equal(conc_queue_init(&q, NULL), 0);
  void *item;
  assert_int_equal(conc_queue_get(&q, &item, true, -2.0), CONC_EINVAL);
  conc_thread_t t;
  assert_int_equal(conc_thread_init(&t, park_until_set, &e, NULL), 0);
  assert_int_equal(conc_thread_start(&t), 0);
  assert_int_equal(conc_thread_join(&t, -2.0), CONC_ETIMEDOUT); /* clamped */
  assert_true(conc_monotonic() - t0 < 1.0); /* nothing waited */
  assert_int_equal(conc_event_set(&e), 0);
  assert_int_equal(conc_thread_join(&t, CONC_FOREVER), 0);
  conc_thread_destroy(&t);
  conc_queue_destroy(&q);
  conc_condition_destroy(&c);
  conc_event_destroy(&e);
  conc_semaphore_destroy(&s);
}

CONC_TEST_MAIN(
    cmocka_unit_test(default_names_come_from_one_counter),
    cmocka_unit_test(long_names_are_kept_whole),
    cmocka_unit_test(renaming_itself_changes_the_os_name),
    cmocka_unit_test(os_name_truncation_keeps_utf8_whole),
    cmocka_unit_test(name_can_change_at_any_time),
    cmocka_unit_test(target_runs_once_with_its_argument),
    cmocka_unit_test(null_target_runs_nothing),
    cmocka_unit_test(embedded_thread_runs_its_own_run),
    cmocka_unit_test(ident_and_native_id_from_start_and_after_exit),
    cmocka_unit_test(starting_twice_is_a_state_error),
    cmocka_unit_test(join_before_start_and_join_self_have_distinct_codes),
    cmocka_unit_test(join_timeout_returns_while_alive_then_join_works),
    cmocka_unit_test(several_threads_join_at_once),
    cmocka_unit_test(is_alive_follows_the_lifecycle),
    cmocka_unit_test(daemon_defaults_to_the_creators_flag),
    cmocka_unit_test(setting_daemon_after_start_is_a_state_error),
    cmocka_unit_test(exit_waits_for_non_daemon_threads_only),
    cmocka_unit_test(shutdown_called_from_a_thread_does_not_wait_for_itself),
    cmocka_unit_test(main_thread_is_named_MainThread),
    cmocka_unit_test(foreign_thread_gets_a_daemon_dummy),
    cmocka_unit_test(enumerate_lists_only_started_alive_threads),
    cmocka_unit_test(default_excepthook_prints_thread_name_and_error),
    cmocka_unit_test(target_returning_a_code_reaches_the_excepthook),
    cmocka_unit_test(excepthook_message_belongs_to_the_returned_code),
    cmocka_unit_test(join_returns_the_targets_result),
    cmocka_unit_test(non_error_codes_become_efailed),
    cmocka_unit_test(threads_never_joined_do_not_leak),
    cmocka_unit_test(stack_sizes_are_honoured),
    cmocka_unit_test(process_wide_stack_size_applies_to_later_threads),
    cmocka_unit_test(failed_start_leaves_the_thread_unstarted),
    cmocka_unit_test(repr_shows_initial_started_stopped_and_daemon),
    cmocka_unit_test(result_and_destroy_refuse_a_running_thread),
    cmocka_unit_test(null_and_bad_arguments_are_rejected),
    cmocka_unit_test(after_fork_child_registry_holds_only_the_forker),
    cmocka_unit_test(negative_timeouts_follow_each_primitives_rule))
