/*
 * Threads: threading.Thread, the registry, process-exit handling and the
 * excepthook.
 *
 * Every libconc thread is created joinable; an untimed join reaps it with
 * pthread_join (the kernel wakes the joiner at the thread's exit, as for a
 * raw pthread), and a thread nobody reaps detaches itself at its end, so a
 * thread that is never joined leaks nothing (see REAP_*). Timed and
 * concurrent joins park on the record's `state` word through conc__wait. A
 * thread's end is: target returns (a negative code: the hook runs) -> its
 * thread-local values are destroyed -> the higher layers' exit functions
 * run (conc__thread_on_exit) -> it leaves the registry
 * -> `state` becomes STOPPED (joiners wake) -> the non-daemon count drops.
 * After STOPPED the ending thread never touches the record again (except
 * the wake, which only uses the word's address), so the owner may destroy
 * or free it as soon as a join returned or is_alive turned false.
 *
 * Locking: `reg_mu` (a pthread mutex with fork handlers) guards the
 * registry list, the atexit list and dummy creation. Everything else is
 * atomics on words: `state` (one-way INITIAL -> STARTED -> STOPPED, plus a
 * WAITERS bit set by joiners so an unjoined thread ends without a system
 * call), `native_id` (published by the new thread; a reader that comes too
 * early parks on it), the name pointer (release-published; replaced names
 * stay allocated until destroy so a reader's pointer never dangles),
 * `nondaemon` (live non-daemon threads; shutdown parks on it, and enders
 * wake it only while `exit_waiters` is non-zero, a seq_cst Dekker pair).
 * The excepthook and its user pointer are one pair, set and read under
 * reg_mu. User callbacks (targets, hooks, atexit functions) never run under
 * reg_mu.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/thread.h"
#include "error-int.h"
#include "annotate-int.h"
#include "init-int.h"
#include "platform-int.h"
#include "thread-int.h"

enum {
  ST_INITIAL = 0,
  ST_STARTED = 1,
  ST_WAITERS = 2, /* with ST_STARTED: someone is parked in join */
  ST_STOPPED = 4,
};

enum {
  F_DAEMON = 1,
  F_DUMMY = 2,
  F_MAIN = 4,
};

#define NID_WAITING UINT32_MAX

/* priv.reap: threads are created joinable. An untimed joiner that claims
 * the thread first (REAP_JOINER) waits in pthread_join, woken by the
 * kernel at the thread's exit exactly as a raw pthread_join is; otherwise
 * the thread detaches itself at its end (REAP_SELF), so a thread never
 * joined leaks nothing, and every other joiner parks on `state`. */
enum { REAP_NONE = 0, REAP_JOINER = 1, REAP_SELF = 2 };

/* ThreadSanitizer keeps joinable threads by pthread_t and aborts a fork
 * child whose new thread reuses the descriptor of a joinable thread of the
 * parent (glibc reclaims those stacks in the child). Under TSan every
 * thread is therefore created detached (REAP_SELF from the start) and all
 * joins park on `state`, the path timed and concurrent joins always take. */
#if defined(__SANITIZE_THREAD__)
#define CONC__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONC__TSAN 1
#endif
#endif

struct name_node {
  struct name_node *next;
  char str[];
};

struct atexit_fn {
  void (*fn)(void *);
  void *arg;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static conc_thread_t *reg_head, *reg_tail; /* alive threads, main first */
static size_t reg_count;
static conc_thread_t *orphans; /* records of threads lost in a fork */

static conc_thread_t main_rec;
static conc_thread_t *main_thr = &main_rec;

static unsigned name_counter;
static uint32_t nondaemon;
static uint32_t exit_waiters;
static uint32_t shutting_down;
static struct atexit_fn *atexits;
static size_t n_atexits, cap_atexits;

static void (*exit_fns[CONC__THREAD_EXIT_MAX])(void); /* append-only */
static uint32_t n_exit_fns;

static conc_excepthook_t user_hook; /* with user_hook_arg, under reg_mu */
static void *user_hook_arg;
static size_t default_stack; /* conc_threading_set_stack_size */

static pthread_key_t dummy_key;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static __thread conc_thread_t *tls_self;

/* ---- small helpers --------------------------------------------------------
 */

static uint32_t flags_of(const conc_thread_t *t) {
  return conc__load_relaxed(&t->priv.flags);
}

static bool is_main_thread_os(void) { return conc__gettid() == getpid(); }

static void set_os_name(const char *name) {
#ifdef __linux__
  char buf[16];
  size_t n = strlen(name);
  if (n > 15) {
    n = 15;
    while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
      n--; /* don't split a UTF-8 character */
  }
  memcpy(buf, name, n);
  buf[n] = '\0';
  pthread_setname_np(pthread_self(), buf);
#else
  (void)name;
#endif
}

/* ---- registry (reg_mu held) ------------------------------------------------
 */

static bool listed(const conc_thread_t *t) {
  return t->priv.prev || reg_head == t;
}

static void reg_append(conc_thread_t *t) {
  t->priv.next = NULL;
  t->priv.prev = reg_tail;
  if (reg_tail)
    reg_tail->priv.next = t;
  else
    reg_head = t;
  reg_tail = t;
  reg_count++;
}

static void reg_unlink(conc_thread_t *t) {
  if (!listed(t))
    return;
  if (t->priv.prev)
    t->priv.prev->priv.next = t->priv.next;
  else
    reg_head = t->priv.next;
  if (t->priv.next)
    t->priv.next->priv.prev = t->priv.prev;
  else
    reg_tail = t->priv.prev;
  t->priv.prev = t->priv.next = NULL;
  reg_count--;
}

static void registry_add(conc_thread_t *t) {
  pthread_mutex_lock(&reg_mu);
  reg_append(t);
  pthread_mutex_unlock(&reg_mu);
}

static void registry_remove(conc_thread_t *t) {
  pthread_mutex_lock(&reg_mu);
  reg_unlink(t);
  pthread_mutex_unlock(&reg_mu);
}

/* ---- fork ------------------------------------------------------------------
 */

static void fork_prepare(void) { pthread_mutex_lock(&reg_mu); }
static void fork_parent(void) { pthread_mutex_unlock(&reg_mu); }

/* The child has one thread: the forker, now the main thread. Every other
 * record describes a thread that does not exist here: mark it stopped and
 * keep it reachable (dummies are heap records) on the orphan list. */
static void fork_child(void) {
  pthread_mutex_unlock(&reg_mu); /* taken by fork_prepare in this thread */
  conc_thread_t *me = tls_self ? tls_self : &main_rec;
  conc_thread_t *t = reg_head;
  while (t) {
    conc_thread_t *next = t->priv.next;
    t->priv.prev = t->priv.next = NULL;
    if (t != me) {
      conc__store_release(&t->priv.state, ST_STOPPED);
      if (flags_of(t) & F_DUMMY) {
        t->priv.next = orphans;
        orphans = t;
      }
    }
    t = next;
  }
  if (me != &main_rec)
    conc__store_release(&main_rec.priv.state, ST_STOPPED);
  reg_head = reg_tail = NULL;
  reg_count = 0;
  conc__store_relaxed(&me->priv.flags, flags_of(me) | F_MAIN);
  conc__store_release(&me->priv.state, ST_STARTED);
  conc__store_relaxed(&me->priv.ident, (unsigned long)pthread_self());
  conc__store_relaxed(&me->priv.native_id, (uint32_t)conc__gettid());
  reg_append(me);
  main_thr = me;
  tls_self = me;
  __atomic_store_n(&nondaemon, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&exit_waiters, 0, __ATOMIC_SEQ_CST);
  conc__store_release(&shutting_down, 0);
}

/* ---- one-time initialisation ----------------------------------------------
 */

static void dummy_exit(void *p);

static void init_main_record(void) {
  conc_thread_t *m = &main_rec;
  strcpy(m->priv.name_buf, "MainThread");
  m->priv.name = m->priv.name_buf;
  m->priv.kind = "_MainThread";
  m->priv.flags = F_MAIN;
  m->priv.state = ST_STARTED;
  if (is_main_thread_os()) {
    m->priv.ident = (unsigned long)pthread_self();
    m->priv.native_id = (uint32_t)conc__gettid();
  }
  reg_append(m);
}

static void do_init(void) {
  pthread_key_create(&dummy_key, dummy_exit);
  pthread_mutex_lock(&reg_mu);
  init_main_record();
  pthread_mutex_unlock(&reg_mu);
  conc__atfork_register(fork_prepare, fork_parent, fork_child);
}

static void ensure_init(void) { pthread_once(&init_once, do_init); }

/* The main record is made at load time, in the main thread, so that
 * main_thread().ident is right even when another thread asks first. */
__attribute__((constructor)) static void thread_module_load(void) {
  ensure_init();
}

static void exit_handler(void) { conc_threading_shutdown(); }
static void register_exit_handler(void) { atexit(exit_handler); }

/* ---- names -----------------------------------------------------------------
 */

static void name_publish(conc_thread_t *t, char *name) {
  __atomic_store_n(&t->priv.name, name, __ATOMIC_RELEASE);
}

/* Keep a heap name on the record's list (lock-free push: renames may race). */
static char *name_node_new(conc_thread_t *t, const char *name) {
  size_t n = strlen(name) + 1;
  struct name_node *node = malloc(sizeof *node + n);
  if (!node)
    return NULL;
  memcpy(node->str, name, n);
  node->next = __atomic_load_n((struct name_node **)&t->priv.old_names,
                               __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n((struct name_node **)&t->priv.old_names,
                                      &node->next, node, true, __ATOMIC_RELEASE,
                                      __ATOMIC_RELAXED))
    ;
  return node->str;
}

static void names_free(conc_thread_t *t) {
  struct name_node *node = t->priv.old_names;
  while (node) {
    struct name_node *next = node->next;
    free(node);
    node = next;
  }
  t->priv.old_names = NULL;
  t->priv.name_buf[0] = '\0';
  t->priv.name = t->priv.name_buf;
}

static int initial_name(conc_thread_t *t, const conc_thread_opts_t *opts) {
  char tmp[sizeof t->priv.name_buf];
  const char *name = opts ? opts->name : NULL;
  if (!name) {
    unsigned n = __atomic_add_fetch(&name_counter, 1, __ATOMIC_RELAXED);
    const char *target = opts ? opts->target_name : NULL;
    int len = target ? snprintf(tmp, sizeof tmp, "Thread-%u (%s)", n, target)
                     : snprintf(tmp, sizeof tmp, "Thread-%u", n);
    if ((size_t)len >= sizeof tmp) {
      char *heap = malloc((size_t)len + 1);
      if (!heap)
        return CONC_ENOMEM;
      snprintf(heap, (size_t)len + 1, "Thread-%u (%s)", n, target);
      char *kept = name_node_new(t, heap);
      free(heap);
      if (!kept)
        return CONC_ENOMEM;
      t->priv.name = kept;
      return 0;
    }
    name = tmp;
  }
  if (strlen(name) < sizeof t->priv.name_buf) {
    strcpy(t->priv.name_buf, name);
    t->priv.name = t->priv.name_buf;
    return 0;
  }
  t->priv.name = name_node_new(t, name);
  return t->priv.name ? 0 : CONC_ENOMEM;
}

const char *conc_thread_name(const conc_thread_t *t) {
  return t ? __atomic_load_n(&t->priv.name, __ATOMIC_ACQUIRE) : NULL;
}

int conc_thread_set_name(conc_thread_t *t, const char *name) {
  if (!t || !name)
    return CONC_EINVAL;
  char *kept = name_node_new(t, name);
  if (!kept)
    return CONC_ENOMEM;
  name_publish(t, kept);
  if (t == tls_self)
    set_os_name(kept);
  return 0;
}

/* ---- current thread, dummies --------------------------------------------- */

static conc_thread_t *make_dummy(void) {
  conc_thread_t *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  unsigned n = __atomic_add_fetch(&name_counter, 1, __ATOMIC_RELAXED);
  snprintf(t->priv.name_buf, sizeof t->priv.name_buf, "Dummy-%u", n);
  t->priv.name = t->priv.name_buf;
  t->priv.kind = "_DummyThread";
  t->priv.flags = F_DUMMY | F_DAEMON;
  t->priv.state = ST_STARTED;
  t->priv.ident = (unsigned long)pthread_self();
  t->priv.native_id = (uint32_t)conc__gettid();
  registry_add(t);
  tls_self = t;
  pthread_setspecific(dummy_key, t);
  return t;
}

/* A foreign thread ended: its dummy leaves the registry and is freed. */
static void dummy_exit(void *p) {
  conc_thread_t *t = p;
  registry_remove(t);
  if (tls_self == t)
    tls_self = NULL;
  names_free(t);
  free(t);
}

conc_thread_t *conc_current_thread(void) {
  conc_thread_t *t = tls_self;
  if (t)
    return t;
  ensure_init();
  if (is_main_thread_os() && main_thr == &main_rec) {
    if (!conc__load_relaxed(&main_rec.priv.ident)) {
      conc__store_relaxed(&main_rec.priv.ident, (unsigned long)pthread_self());
      conc__store_relaxed(&main_rec.priv.native_id, (uint32_t)conc__gettid());
    }
    tls_self = &main_rec;
    return &main_rec;
  }
  return make_dummy();
}

conc_thread_t *conc_main_thread(void) {
  ensure_init();
  return main_thr;
}

unsigned long conc_get_ident(void) { return (unsigned long)pthread_self(); }

unsigned long conc_get_native_id(void) { return (unsigned long)conc__gettid(); }

size_t conc_enumerate(conc_thread_t **out, size_t cap) {
  ensure_init();
  size_t n = 0;
  pthread_mutex_lock(&reg_mu);
  for (conc_thread_t *t = reg_head; t; t = t->priv.next, n++)
    if (out && n < cap)
      out[n] = t;
  pthread_mutex_unlock(&reg_mu);
  return n;
}

size_t conc_active_count(void) {
  ensure_init();
  pthread_mutex_lock(&reg_mu);
  size_t n = reg_count;
  pthread_mutex_unlock(&reg_mu);
  return n;
}

/* ---- init / start ----------------------------------------------------------
 */

static size_t round_to_pages(size_t size) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return (size + page - 1) / page * page;
}

/* A stack size Python's stack_size() accepts: 0, or at least the minimum
 * and small enough to round up to whole pages without wrapping to 0. */
static bool stack_size_ok(size_t size) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return size == 0 ||
         (size >= CONC_THREAD_STACK_MIN && size <= SIZE_MAX - page);
}

size_t conc_threading_stack_size(void) {
  return __atomic_load_n(&default_stack, __ATOMIC_RELAXED);
}

int conc_threading_set_stack_size(size_t size, size_t *old) {
  if (!stack_size_ok(size))
    return CONC_EINVAL;
  size_t prev = __atomic_exchange_n(&default_stack, round_to_pages(size),
                                    __ATOMIC_RELAXED);
  if (old)
    *old = prev;
  return 0;
}

static bool inherit_daemon(void) {
  conc_thread_t *cur = conc_current_thread();
  return cur ? (flags_of(cur) & F_DAEMON) != 0 : true;
}

int conc_thread_init(conc_thread_t *t, conc_fn_t target, void *arg,
                     const conc_thread_opts_t *opts) {
  if (!t)
    return CONC_EINVAL;
  size_t stack = opts ? opts->stack_size : 0;
  conc_daemon_t daemon = opts ? opts->daemon : CONC_DAEMON_INHERIT;
  if (!stack_size_ok(stack) ||
      (daemon != CONC_DAEMON_INHERIT && daemon != CONC_DAEMON_YES &&
       daemon != CONC_DAEMON_NO))
    return CONC_EINVAL;
  stack = round_to_pages(stack);
  bool is_daemon = daemon == CONC_DAEMON_YES ||
                   (daemon == CONC_DAEMON_INHERIT && inherit_daemon());
  memset(t, 0, sizeof *t);
  int rc = initial_name(t, opts);
  if (rc)
    return rc;
  t->priv.target = target;
  t->priv.arg = arg;
  t->priv.stack_size = stack;
  t->priv.kind = "Thread";
  t->priv.flags = is_daemon ? F_DAEMON : 0;
  return 0;
}

static void nondaemon_done(void) {
  __atomic_fetch_sub(&nondaemon, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&exit_waiters, __ATOMIC_SEQ_CST))
    conc__wake(&nondaemon, CONC__WAKE_ALL, false);
}

static void publish_native_id(conc_thread_t *t) {
  uint32_t old = conc__xchg(&t->priv.native_id, (uint32_t)conc__gettid());
  if (old == NID_WAITING)
    conc__wake(&t->priv.native_id, CONC__WAKE_ALL, false);
}

int conc__thread_on_exit(void (*fn)(void)) {
  pthread_mutex_lock(&reg_mu);
  uint32_t n = n_exit_fns;
  if (n < CONC__THREAD_EXIT_MAX) {
    exit_fns[n] = fn;
    __atomic_store_n(&n_exit_fns, n + 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&reg_mu);
  return n < CONC__THREAD_EXIT_MAX ? 0 : CONC_ENOMEM;
}

static void run_exit_fns(void) {
  uint32_t n = __atomic_load_n(&n_exit_fns, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < n; i++)
    exit_fns[i]();
}

/* The thread's end; see the file comment for the order. */
static void finish(conc_thread_t *t) {
  uint32_t f = flags_of(t);
  bool counted = !(f & (F_DAEMON | F_MAIN));
  tls_self = NULL;
  /* Leaving the registry, choosing who reaps and STOPPED happen under
   * reg_mu so that a fork sees this thread either listed (and the child
   * marks it stopped) or already stopped. Nobody reaping us with
   * pthread_join means we release our own resources. After STOPPED the
   * record may be freed: only its address is used below. */
  pthread_mutex_lock(&reg_mu);
  reg_unlink(t);
  uint32_t free_reap = REAP_NONE;
  bool detach = conc__cas(&t->priv.reap, &free_reap, REAP_SELF);
  /* Race detectors (annotate-int.h): the thread's work happens before
   * a join that sees STOPPED without pthread_join. */
  conc__ann_happens_before(&t->priv.state);
  conc__ann_benign_race(&t->priv.state, sizeof t->priv.state); /* atomic */
  uint32_t old = conc__xchg(&t->priv.state, ST_STOPPED);
  pthread_mutex_unlock(&reg_mu);
  if (detach)
    pthread_detach(pthread_self());
  if (old & ST_WAITERS)
    conc__wake(&t->priv.state, CONC__WAKE_ALL, false);
  if (counted)
    nondaemon_done();
}

static void run_excepthook(conc_thread_t *t, int rc);

/* The target's outcome: 0 is a normal end whose *result is kept for
 * conc_thread_result; a negative return is the thread's exception,
 * reported with the message of its conc_raise; a positive one (not a
 * code) counts as CONC_EFAILED, as for an executor's task. */
static void run_target(conc_thread_t *t) {
  if (!t->priv.target)
    return;
  void *result = NULL;
  conc__raise_clear();
  int rc = t->priv.target(t->priv.arg, &result);
  if (rc == 0) {
    t->priv.result = result;
    return;
  }
  t->priv.fail_code = rc < 0 ? rc : CONC_EFAILED;
  run_excepthook(t, rc);
}

static void *bootstrap(void *p) {
  conc_thread_t *t = p;
  conc__store_relaxed(&t->priv.ident, (unsigned long)pthread_self());
  publish_native_id(t);
  tls_self = t;
  set_os_name(conc_thread_name(t));
  run_target(t);
  conc__local_thread_exit();
  run_exit_fns();
  finish(t);
  return NULL;
}

int conc_thread_start(conc_thread_t *t) {
  if (!t || !t->priv.kind) /* NULL, or never initialised (all zero) */
    return CONC_EINVAL;
  if (flags_of(t) & (F_DUMMY | F_MAIN))
    return CONC_ESTATE;
  ensure_init();
  /* STARTED and listed in one step, so a fork never sees a started thread
   * outside the registry (the child could not mark it stopped). */
  uint32_t expected = ST_INITIAL;
  pthread_mutex_lock(&reg_mu);
  bool won = conc__cas(&t->priv.state, &expected, ST_STARTED);
  if (won)
    reg_append(t);
  pthread_mutex_unlock(&reg_mu);
  if (!won)
    return CONC_ESTATE;
  pthread_once(&atexit_once, register_exit_handler);
  bool counted = !(flags_of(t) & F_DAEMON);
  if (counted)
    __atomic_fetch_add(&nondaemon, 1, __ATOMIC_SEQ_CST);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
#ifdef CONC__TSAN
  conc__store_relaxed(&t->priv.reap, REAP_SELF);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
#endif
  size_t stack =
      t->priv.stack_size ? t->priv.stack_size : conc_threading_stack_size();
  int err = stack ? pthread_attr_setstacksize(&attr, stack) : 0;
  pthread_t th;
  /* Race detectors: the new thread and this one both store its ident. */
  conc__ann_benign_race(&t->priv.ident, sizeof t->priv.ident);
  if (!err)
    err = pthread_create(&th, &attr, bootstrap, t);
  pthread_attr_destroy(&attr);
  if (err) {
    pthread_mutex_lock(&reg_mu);
    reg_unlink(t);
    conc__store_release(&t->priv.state, ST_INITIAL);
    pthread_mutex_unlock(&reg_mu);
    if (counted)
      nondaemon_done();
    if (conc__xchg(&t->priv.native_id, 0) == NID_WAITING)
      conc__wake(&t->priv.native_id, CONC__WAKE_ALL, false);
    return -err;
  }
  conc__store_relaxed(&t->priv.ident, (unsigned long)th);
  return 0;
}

void conc__thread_set_kind(conc_thread_t *t, const char *kind) {
  t->priv.kind = kind;
}

/* ---- join and queries -------------------------------------------------------
 */

int conc_thread_join(conc_thread_t *t, double timeout) {
  if (!t || timeout != timeout)
    return CONC_EINVAL;
  if (flags_of(t) & F_DUMMY)
    return CONC_ESTATE;
  uint32_t s = conc__load_acquire(&t->priv.state);
  if (s == ST_INITIAL)
    return CONC_ENOTSTARTED;
  if (s & ST_STOPPED) {
    conc__ann_happens_after(&t->priv.state);
    return 0;
  }
  /* A running thread's ident is set before its target runs, so this also
   * catches the main thread before it ever asked for current_thread(). */
  if (t == tls_self ||
      conc__load_relaxed(&t->priv.ident) == (unsigned long)pthread_self())
    return CONC_EDEADLK;
  if (timeout < 0 && timeout != CONC_FOREVER)
    timeout = 0;
  conc_deadline_t deadline;
  conc_deadline_after(timeout, &deadline);
  unsigned long id = conc__load_relaxed(&t->priv.ident);
  uint32_t free_reap = REAP_NONE;
  /* pthread_join cannot be interrupted: once interrupts are in use, park */
  if (deadline == CONC_DEADLINE_NEVER && id && !(flags_of(t) & F_MAIN) &&
      !conc__intr_in_use() &&
      conc__cas(&t->priv.reap, &free_reap, REAP_JOINER)) {
    pthread_join((pthread_t)id, NULL);
    return 0;
  }
  for (;;) {
    s = conc__load_acquire(&t->priv.state);
    if (s & ST_STOPPED) {
      conc__ann_happens_after(&t->priv.state);
      return 0;
    }
    if (!(s & ST_WAITERS) &&
        !conc__cas(&t->priv.state, &s, ST_STARTED | ST_WAITERS))
      continue;
    int r = conc__wait_intr(&t->priv.state, ST_STARTED | ST_WAITERS, deadline,
                            false);
    if (r == CONC_ETIMEDOUT || r == CONC_EINTR) {
      if (!(conc__load_acquire(&t->priv.state) & ST_STOPPED))
        return r;
      if (r == CONC_EINTR) /* it ended anyway: the next wait reports it */
        conc__intr_keep();
      return 0;
    }
  }
}

bool conc_thread_is_alive(const conc_thread_t *t) {
  return t && (conc__load_acquire(&t->priv.state) & ST_STARTED);
}

unsigned long conc_thread_ident(const conc_thread_t *t) {
  return t ? conc__load_relaxed(&t->priv.ident) : 0;
}

unsigned long conc_thread_native_id(conc_thread_t *t) {
  if (!t)
    return 0;
  for (;;) {
    uint32_t id = conc__load_acquire(&t->priv.native_id);
    if (id && id != NID_WAITING)
      return id;
    /* main and dummy records are filled in by their own thread; never
     * park on them */
    if (conc__load_acquire(&t->priv.state) == ST_INITIAL ||
        (flags_of(t) & (F_MAIN | F_DUMMY)))
      return id == NID_WAITING ? 0 : id;
    if (id == 0 && !conc__cas(&t->priv.native_id, &id, NID_WAITING))
      continue;
    conc__wait(&t->priv.native_id, NID_WAITING, CONC_DEADLINE_NEVER, false);
  }
}

bool conc_thread_daemon(const conc_thread_t *t) {
  return t && (flags_of(t) & F_DAEMON);
}

int conc_thread_set_daemon(conc_thread_t *t, bool daemon) {
  if (!t)
    return CONC_EINVAL;
  if ((flags_of(t) & (F_DUMMY | F_MAIN)) ||
      conc__load_acquire(&t->priv.state) != ST_INITIAL)
    return CONC_ESTATE;
  uint32_t f = flags_of(t);
  conc__store_relaxed(&t->priv.flags, daemon ? f | F_DAEMON : f & ~F_DAEMON);
  return 0;
}

int conc_thread_result(const conc_thread_t *t, void **out) {
  if (!t)
    return CONC_EINVAL;
  uint32_t s = conc__load_acquire(&t->priv.state);
  if (s == ST_INITIAL)
    return CONC_ENOTSTARTED;
  if (!(s & ST_STOPPED) || (flags_of(t) & (F_DUMMY | F_MAIN)))
    return CONC_EBUSY;
  if (t->priv.fail_code)
    return t->priv.fail_code;
  if (out)
    *out = t->priv.result;
  return 0;
}

int conc_thread_repr(const conc_thread_t *t, char *buf, size_t len) {
  if (!t || !t->priv.kind || (!buf && len))
    return CONC_EINVAL;
  uint32_t s = conc__load_acquire(&t->priv.state);
  const char *status = s == ST_INITIAL    ? "initial"
                       : (s & ST_STOPPED) ? "stopped"
                                          : "started";
  char ident[32] = "";
  unsigned long id = conc_thread_ident(t);
  if (s != ST_INITIAL && id)
    snprintf(ident, sizeof ident, " %lu", id);
  return snprintf(buf, len, "<%s(%s, %s%s%s)>", t->priv.kind,
                  conc_thread_name(t), status,
                  conc_thread_daemon(t) ? " daemon" : "", ident);
}

int conc_thread_destroy(conc_thread_t *t) {
  if (!t)
    return CONC_EINVAL;
  if (flags_of(t) & (F_DUMMY | F_MAIN))
    return CONC_EPERM;
  if (conc__load_acquire(&t->priv.state) & ST_STARTED)
    return CONC_EBUSY;
  names_free(t);
  return 0;
}

/* ---- failures and the excepthook ----------------------------------------- */

void conc_thread_default_excepthook(const conc_excepthook_args_t *args,
                                    void *arg) {
  (void)arg;
  if (!args)
    return;
  const char *name = args->thread ? conc_thread_name(args->thread) : NULL;
  const char *msg = args->message ? args->message : "";
  flockfile(stderr);
  if (name)
    fprintf(stderr, "Exception in thread %s:\n", name);
  else
    fprintf(stderr, "Exception in thread %lu:\n", conc_get_ident());
  fprintf(stderr, "%s (%s)%s%s\n", conc_err_python(args->code),
          conc_err_name(args->code), msg[0] ? ": " : "", msg);
  funlockfile(stderr);
}

void conc_thread_set_excepthook(conc_excepthook_t hook, void *arg) {
  pthread_mutex_lock(&reg_mu);
  user_hook = hook;
  user_hook_arg = hook ? arg : NULL;
  pthread_mutex_unlock(&reg_mu);
}

void conc_thread_get_excepthook(conc_excepthook_t *hook, void **arg) {
  pthread_mutex_lock(&reg_mu);
  conc_excepthook_t h = user_hook ? user_hook : conc_thread_default_excepthook;
  void *a = user_hook_arg;
  pthread_mutex_unlock(&reg_mu);
  if (hook)
    *hook = h;
  if (arg)
    *arg = a;
}

/* The hook gets the code and the message the target attached with
 * conc_raise for the code it returned ("" when it attached none). */
static void run_excepthook(conc_thread_t *t, int rc) {
  char *msg = rc < 0 ? conc__raise_take(rc) : NULL;
  conc_excepthook_t hook;
  void *arg;
  conc_thread_get_excepthook(&hook, &arg);
  conc_excepthook_args_t a = {t->priv.fail_code, msg ? msg : "", t};
  hook(&a, arg);
  free(msg);
}

/* ---- process exit
 * ------------------------------------------------------------ */

bool conc_threading_shutting_down(void) {
  return conc__load_acquire(&shutting_down) != 0;
}

int conc_threading_register_atexit(void (*fn)(void *), void *arg) {
  if (!fn)
    return CONC_EINVAL;
  ensure_init();
  int rc = 0;
  pthread_mutex_lock(&reg_mu);
  if (conc__load_relaxed(&shutting_down)) {
    rc = CONC_ESTATE;
  } else if (n_atexits == cap_atexits) {
    size_t cap = cap_atexits ? cap_atexits * 2 : 8;
    struct atexit_fn *grown = realloc(atexits, cap * sizeof *grown);
    if (grown) {
      atexits = grown;
      cap_atexits = cap;
    } else {
      rc = CONC_ENOMEM;
    }
  }
  if (!rc)
    atexits[n_atexits++] = (struct atexit_fn){fn, arg};
  pthread_mutex_unlock(&reg_mu);
  return rc;
}

static void run_atexits(void) {
  for (;;) {
    pthread_mutex_lock(&reg_mu);
    struct atexit_fn a = {NULL, NULL};
    if (n_atexits)
      a = atexits[--n_atexits];
    pthread_mutex_unlock(&reg_mu);
    if (!a.fn)
      return;
    a.fn(a.arg);
  }
}

/* The main thread's part of shutdown: it counts as stopped from now on. */
static void stop_main(void) {
  conc_thread_t *m = main_thr;
  if (tls_self != m && !(tls_self == NULL && is_main_thread_os()))
    return;
  if (!(conc__load_acquire(&m->priv.state) & ST_STARTED))
    return;
  registry_remove(m);
  if (conc__xchg(&m->priv.state, ST_STOPPED) & ST_WAITERS)
    conc__wake(&m->priv.state, CONC__WAKE_ALL, false);
}

void conc_threading_shutdown(void) {
  ensure_init();
  pthread_mutex_lock(&reg_mu);
  conc__store_release(&shutting_down, 1);
  pthread_mutex_unlock(&reg_mu);
  stop_main();
  run_atexits();
  conc_thread_t *me = tls_self;
  uint32_t mine =
      me && !(flags_of(me) & (F_DAEMON | F_MAIN)) && conc_thread_is_alive(me)
          ? 1
          : 0;
  __atomic_fetch_add(&exit_waiters, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    uint32_t n = __atomic_load_n(&nondaemon, __ATOMIC_SEQ_CST);
    if (n <= mine)
      break;
    conc__wait(&nondaemon, n, CONC_DEADLINE_NEVER, false);
  }
  __atomic_fetch_sub(&exit_waiters, 1, __ATOMIC_SEQ_CST);
}
