/*
 * Coroutines (greenlet's model): objects, switching, the parent chain, kill,
 * the per-thread main coroutine, generators, and the stack-overflow report.
 *
 * Locking protocol: none here. A coroutine belongs to the thread that
 * created it (its `thread` serial) and is only ever switched, killed or run
 * by that thread, so all coroutine state is thread-confined; cross-thread
 * calls are refused with CONC_EWRONGTHREAD before touching anything. Each
 * thread's state (current coroutine, the value in flight, its main
 * coroutine) lives in a block reached from one thread-local pointer. The
 * only shared state is the stack pool (coro_stack.c, which has its own lock)
 * and the process-wide SIGSEGV handler, installed once.
 *
 * A switch stores the value straight into the target's pending switch (its
 * `out` pointer) and passes the code (0, or CONC_ECANCELED from kill) as the
 * backend's return value; conc_coro_switch tail-calls the backend, so the
 * resumed side returns directly to its caller. A coroutine that finishes
 * cannot free the stack it is running on: it leaves the stack as the
 * thread's zombie, which the next call into the module releases.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conc/coro.h"
#include "conc/error.h"
#include "coro-int.h"
#include "error-int.h"

#if defined(CONC_SANITIZER_address) || defined(__SANITIZE_ADDRESS__)
#define CONC__ASAN 1
#endif
#if defined(CONC_SANITIZER_thread) || defined(__SANITIZE_THREAD__)
#define CONC__TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(CONC__ASAN)
#define CONC__ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(CONC__TSAN)
#define CONC__TSAN 1
#endif
#endif
#ifdef CONC__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CONC__TSAN
#include <sanitizer/tsan_interface.h>
#endif

enum { ST_NEW, ST_ACTIVE, ST_DEAD };
enum { F_HEAP = 1, F_MAIN = 2, F_CANARY = 4 };

typedef struct coro {
  void *ctx;
  void **out; /* where the pending switch of a suspended coroutine wants
                 its value (NULL: nowhere) */
  struct coro *parent;
  uint64_t thread; /* the owner's serial; 0 once destroyed */
  conc_fn_t fn;
  void *arg;
  conc__stack_t *stack;
#ifdef CONC__ASAN
  void *asan_fake;
  const void *asan_bottom;
  size_t asan_size;
#endif
#ifdef CONC__TSAN
  void *tsan_fiber;
#endif
  uint8_t state;
  uint8_t flags;
  /* A copy: the caller's string may be a stack buffer gone by the time the
   * overflow report prints it. */
  char name[CONC_CORO_NAME_MAX];
} coro_t;

_Static_assert(sizeof(coro_t) <= sizeof(conc_coro_t), "conc_coro_t too small");
_Static_assert(_Alignof(coro_t) <= _Alignof(conc_coro_t), "alignment");

#define C(p) ((coro_t *)(void *)(p))

typedef struct tls {
  coro_t *current;
  void *value;           /* the argument for a coroutine's first run */
  conc__stack_t *zombie; /* stack of a finished coroutine, to free */
#ifdef CONC__TSAN
  void *zombie_fiber;
#endif
  coro_t *prev; /* the coroutine we switched away from (sanitizers) */
  uint64_t serial;
  conc_coro_t main;
  void *altstack;
  _Alignas(16) unsigned char main_ctx[]; /* ucontext backend */
} tls_t;

static __thread tls_t *t_tls __attribute__((tls_model("initial-exec")));
static uint64_t g_serial;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static struct sigaction g_prev_segv;

#define ALTSTACK_SIZE ((size_t)64 * 1024)

/* ---- diagnostics (async-signal-safe) ----------------------------------- */

static size_t put_str(char *buf, size_t at, size_t cap, const char *s) {
  while (*s && at + 1 < cap)
    buf[at++] = *s++;
  return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, uintptr_t v,
                      unsigned base) {
  char tmp[32];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v && n < 32);
  if (base == 16)
    at = put_str(buf, at, cap, "0x");
  while (n && at + 1 < cap)
    buf[at++] = tmp[--n];
  return at;
}

__attribute__((noreturn)) static void
overflow_abort(const coro_t *c, const void *addr, const char *how) {
  char buf[512];
  size_t at = put_str(buf, 0, sizeof buf, "libconc: coroutine \"");
  at = put_str(buf, at, sizeof buf, c->name[0] ? c->name : "coroutine");
  at = put_str(buf, at, sizeof buf, "\" (");
  at = put_num(buf, at, sizeof buf, (uintptr_t)c, 16);
  at = put_str(buf, at, sizeof buf, ") overflowed its stack of ");
  at = put_num(buf, at, sizeof buf, (uintptr_t)(c->stack->hi - c->stack->lo),
               10);
  at = put_str(buf, at, sizeof buf, " bytes (");
  at = put_str(buf, at, sizeof buf, how);
  if (addr) {
    at = put_str(buf, at, sizeof buf, " at ");
    at = put_num(buf, at, sizeof buf, (uintptr_t)addr, 16);
  }
  at = put_str(buf, at, sizeof buf, "); raise conc_coro_opts_t.stack_size\n");
  ssize_t w = write(STDERR_FILENO, buf, at);
  (void)w;
  abort();
}

static void segv_handler(int sig, siginfo_t *si, void *uctx) {
  tls_t *t = t_tls;
  coro_t *c = t ? t->current : NULL;
  if (c && c->stack && conc__stack_guard_hit(c->stack, si->si_addr))
    overflow_abort(c, si->si_addr, "guard page hit");
  /* Not ours: behave as if we had never been installed. */
  if (g_prev_segv.sa_flags & SA_SIGINFO) {
    g_prev_segv.sa_sigaction(sig, si, uctx);
    return;
  }
  if (g_prev_segv.sa_handler == SIG_DFL || g_prev_segv.sa_handler == SIG_IGN) {
    signal(sig, SIG_DFL);
    if (si->si_code <= 0) /* sent, not a fault: it will not recur */
      raise(sig);
    return; /* the faulting instruction runs again and kills the process */
  }
  g_prev_segv.sa_handler(sig);
}

/* ---- per-thread state -------------------------------------------------- */

static void reap(tls_t *t);

static void thread_exit(void *p) {
  tls_t *t = p;
  if (t->zombie)
    reap(t);
  conc__stack_thread_exit();
  if (t->altstack) {
    stack_t ss = {.ss_flags = SS_DISABLE};
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && old.ss_sp == t->altstack &&
        !(old.ss_flags & SS_ONSTACK) && sigaltstack(&ss, NULL) == 0)
      munmap(t->altstack, ALTSTACK_SIZE);
  }
  t_tls = NULL;
  free(t);
}

void conc__coro_segv_install(void) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, NULL, &old) != 0 ||
      ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == segv_handler))
    return;
  g_prev_segv = old;
  sigaction(SIGSEGV, &sa, NULL);
}

static void global_init(void) {
  pthread_key_create(&g_key, thread_exit);
  conc__coro_segv_install();
}

/* The guard-page report runs on the faulting thread, whose coroutine stack
 * is exhausted: it needs an alternate signal stack (unless one is set). */
static void altstack_install(tls_t *t) {
  stack_t old;
  if (sigaltstack(NULL, &old) != 0 || !(old.ss_flags & SS_DISABLE))
    return;
  void *m = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return;
  stack_t ss = {.ss_sp = m, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) == 0)
    t->altstack = m;
  else
    munmap(m, ALTSTACK_SIZE);
}

__attribute__((noinline)) static tls_t *tls_create(void) {
  pthread_once(&g_once, global_init);
  size_t extra = conc__ctx_main_size();
  tls_t *t = calloc(1, sizeof *t + extra);
  if (!t)
    return NULL;
  t->serial = __atomic_add_fetch(&g_serial, 1, __ATOMIC_RELAXED);
  coro_t *m = C(&t->main);
  m->state = ST_ACTIVE;
  m->flags = F_MAIN;
  memcpy(m->name, "main", sizeof "main");
  m->thread = t->serial;
  m->ctx = conc__ctx_main(t->main_ctx);
#ifdef CONC__TSAN
  m->tsan_fiber = __tsan_get_current_fiber();
#endif
  t->current = m;
  altstack_install(t);
  pthread_setspecific(g_key, t);
  t_tls = t;
  return t;
}

static inline tls_t *tls_get(void) {
  tls_t *t = t_tls;
  return __builtin_expect(t != NULL, 1) ? t : tls_create();
}

/* ---- switching --------------------------------------------------------- */

static void release_stack(coro_t *c, bool mine) {
  if (c->stack) {
    conc__stack_free(c->stack, mine);
    c->stack = NULL;
  }
#ifdef CONC__TSAN
  if (c->tsan_fiber && !(c->flags & F_MAIN)) {
    __tsan_destroy_fiber(c->tsan_fiber);
    c->tsan_fiber = NULL;
  }
#endif
}

/* Release the stack of the coroutine that finished last (we are on
 * another stack now). */
static void reap(tls_t *t) {
  conc__stack_free(t->zombie, true);
  t->zombie = NULL;
#ifdef CONC__TSAN
  __tsan_destroy_fiber(t->zombie_fiber);
  t->zombie_fiber = NULL;
#endif
}

#define REAP(t)                                                                \
  do {                                                                         \
    if (__builtin_expect((t)->zombie != NULL, 0))                              \
      reap(t);                                                                 \
  } while (0)

#if defined(CONC__ASAN) || defined(CONC__TSAN)
#define CONC__SAN 1

static void san_start(tls_t *t, coro_t *from, coro_t *to, bool dying) {
  t->prev = from;
#ifdef CONC__ASAN
  __sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake,
                                 to->asan_bottom, to->asan_size);
#else
  (void)dying;
#endif
#ifdef CONC__TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
}

/* Runs first thing on the stack we arrive on, as `self`. */
static void san_finish(tls_t *t, coro_t *self) {
#ifdef CONC__ASAN
  const void *bottom;
  size_t size;
  __sanitizer_finish_switch_fiber(self->asan_fake, &bottom, &size);
  coro_t *prev = t->prev;
  /* A main coroutine's stack bounds are learnt on the first switch away. */
  if (prev && (prev->flags & F_MAIN) && !prev->asan_bottom) {
    prev->asan_bottom = bottom;
    prev->asan_size = size;
  }
#else
  (void)t;
  (void)self;
#endif
}
#endif

/*
 * Suspend `from` (its pending switch will want its value in *out) and run
 * `to`, handing it value and code. Returns the code of whoever resumes us.
 * Without sanitizers this compiles to a tail call of the backend.
 */
static inline int jump(tls_t *t, coro_t *from, void **out, coro_t *to,
                       void *value, int code, bool dying) {
  if (__builtin_expect(from->flags & F_CANARY, 0) &&
      !conc__stack_canary_ok(from->stack))
    overflow_abort(from, NULL, "canary zone overwritten");
  from->out = out;
  if (to->out)
    *to->out = code ? NULL : value;
  t->value = value;
  to->state = ST_ACTIVE;
  t->current = to;
#ifdef CONC__SAN
  san_start(t, from, to, dying);
  int rc = conc__ctx_switch(&from->ctx, to->ctx, code);
  san_finish(t, from);
  REAP(t);
  return rc;
#else
  (void)dying;
  return conc__ctx_switch(&from->ctx, to->ctx, code);
#endif
}

/* The function returned `code` (0, or its "exception") and `ret`. */
__attribute__((noreturn)) static void coro_finish(tls_t *t, coro_t *self,
                                                  void *ret, int code) {
  REAP(t);
  self->state = ST_DEAD;
  /* K3: control and the result (or the exception) go to the nearest live
   * ancestor, whose pending switch returns the code. */
  coro_t *to = self->parent;
  while (to->state == ST_DEAD)
    to = to->parent;
  if (self->flags & F_CANARY && !conc__stack_canary_ok(self->stack))
    overflow_abort(self, NULL, "canary zone overwritten");
  /* The stack goes to whoever runs next; the object may be freed as soon
   * as we are gone, so nothing may point back at it. */
  t->zombie = self->stack;
  self->stack = NULL;
  self->flags &= (uint8_t)~F_CANARY;
#ifdef CONC__TSAN
  t->zombie_fiber = self->tsan_fiber;
  self->tsan_fiber = NULL;
#endif
  jump(t, self, NULL, to, ret, code, true);
  abort(); /* a dead coroutine is never resumed */
}

static void coro_entry(void) {
  tls_t *t = t_tls;
  coro_t *self = t->current;
#ifdef CONC__SAN
  san_finish(t, self);
#endif
  REAP(t);
  void *v = t->value, *ret = NULL;
  conc__raise_clear(); /* a stale message is never this function's */
  int rc = self->fn(v ? v : self->arg, &ret);
  if (rc > 0) /* not a code: conc_fn_t returns 0 or a negative one */
    rc = CONC_EFAILED;
  coro_finish(t, self, rc ? NULL : ret, rc);
}

int conc_coro_switch(conc_coro_t *target, void *value, void **out) {
  tls_t *t = tls_get();
  coro_t *to = C(target);
  if (__builtin_expect(!t, 0))
    return CONC_ENOMEM;
  if (!to)
    return CONC_EINVAL;
  if (to->thread != t->serial) /* 0: destroyed, which is dead too */
    return to->thread == 0 ? CONC_EDEAD : CONC_EWRONGTHREAD;
  if (to->state == ST_DEAD)
    return CONC_EDEAD;
  REAP(t);
  coro_t *from = t->current;
  if (to == from) {
    if (out)
      *out = value;
    return 0;
  }
  return jump(t, from, out, to, value, 0, false);
}

/* ---- objects ----------------------------------------------------------- */

static bool is_ancestor(const coro_t *a, const coro_t *c) {
  for (; c; c = c->parent)
    if (c == a)
      return true;
  return false;
}

int conc_coro_init(conc_coro_t *co, conc_fn_t fn, void *arg,
                   const conc_coro_opts_t *opts) {
  if (!co || !fn)
    return CONC_EINVAL;
  tls_t *t = tls_get();
  if (!t)
    return CONC_ENOMEM;
  coro_t *parent = opts && opts->parent ? C(opts->parent) : t->current;
  if (parent->thread != t->serial)
    return CONC_EWRONGTHREAD;
  size_t size =
      opts && opts->stack_size ? opts->stack_size : CONC_CORO_STACK_DEFAULT;
  if (size > ((size_t)1 << 34))
    return CONC_EINVAL;
  if (size < CONC_CORO_STACK_MIN)
    size = CONC_CORO_STACK_MIN;
  REAP(t);
  conc__stack_t *s;
  int rc = conc__stack_alloc(size, &s);
  if (rc)
    return rc;
  coro_t *c = C(co);
  memset(c, 0, sizeof *c);
  c->parent = parent;
  c->thread = t->serial;
  c->fn = fn;
  c->arg = arg;
  if (opts && opts->name) {
    size_t n = strnlen(opts->name, sizeof c->name - 1);
    memcpy(c->name, opts->name, n);
    c->name[n] = '\0';
  }
  c->stack = s;
  c->state = ST_NEW;
  c->flags = s->kind == CONC__STACK_CANARY ? F_CANARY : 0;
  c->ctx = conc__ctx_make(s->lo, s->hi, coro_entry);
#ifdef CONC__ASAN
  c->asan_bottom = s->lo;
  c->asan_size = (size_t)(s->hi - s->lo);
#endif
#ifdef CONC__TSAN
  c->tsan_fiber = __tsan_create_fiber(0);
#endif
  return 0;
}

int conc_coro_create(conc_coro_t **out, conc_fn_t fn, void *arg,
                     const conc_coro_opts_t *opts) {
  if (!out)
    return CONC_EINVAL;
  conc_coro_t *co = malloc(sizeof *co);
  if (!co)
    return CONC_ENOMEM;
  int rc = conc_coro_init(co, fn, arg, opts);
  if (rc) {
    free(co);
    return rc;
  }
  C(co)->flags |= F_HEAP;
  *out = co;
  return 0;
}

conc_coro_t *conc_coro_current(void) {
  tls_t *t = tls_get();
  return t ? (conc_coro_t *)(void *)t->current : NULL;
}

conc_coro_t *conc_coro_main(void) {
  tls_t *t = tls_get();
  return t ? &t->main : NULL;
}

conc_coro_t *conc_coro_parent(const conc_coro_t *co) {
  return co ? (conc_coro_t *)(void *)C(co)->parent : NULL;
}

int conc_coro_set_parent(conc_coro_t *co, conc_coro_t *parent) {
  coro_t *c = C(co), *p = C(parent);
  if (!c || !p || (c->flags & F_MAIN))
    return CONC_EINVAL;
  if (c->thread != p->thread)
    return CONC_EWRONGTHREAD;
  if (is_ancestor(c, p))
    return CONC_EINVAL; /* greenlet: "cyclic parent chain" */
  c->parent = p;
  return 0;
}

bool conc_coro_is_dead(const conc_coro_t *co) {
  return co && C(co)->state == ST_DEAD;
}

bool conc_coro_is_active(const conc_coro_t *co) {
  return co && C(co)->state == ST_ACTIVE;
}

const char *conc_coro_name(const conc_coro_t *co) {
  if (!co)
    return NULL;
  const coro_t *c = C(co);
  return c->name[0] ? c->name : "coroutine";
}

const char *conc_coro_backend(void) { return conc__ctx_backend(); }

int conc_coro_kill(conc_coro_t *co) {
  coro_t *c = C(co);
  if (!c)
    return CONC_EINVAL;
  tls_t *t = tls_get();
  if (!t)
    return CONC_ENOMEM;
  if (c->thread != t->serial) /* 0: destroyed, which is dead too */
    return c->thread == 0 ? 0 : CONC_EWRONGTHREAD;
  REAP(t);
  if (c->state == ST_DEAD)
    return 0;
  if ((c->flags & F_MAIN) || c == t->current)
    return CONC_ESTATE;
  if (c->state == ST_NEW) { /* K6: never runs */
    c->state = ST_DEAD;
    release_stack(c, true);
    return 0;
  }
  /* Its death brings control back here, whoever its parent is. */
  coro_t *self = t->current, *saved = c->parent;
  c->parent = self;
  int rc = jump(t, self, NULL, c, NULL, CONC_ECANCELED, false);
  if (c->state == ST_DEAD) /* GreenletExit is swallowed; others propagate */
    return rc == CONC_ECANCELED ? 0 : rc;
  c->parent = saved;
  return CONC_EBUSY;
}

int conc_coro_destroy(conc_coro_t *co) {
  coro_t *c = C(co);
  if (!c)
    return 0;
  if (c->flags & F_MAIN)
    return CONC_ESTATE;
  tls_t *t = t_tls;
  bool mine = t && c->thread == t->serial;
  if (t)
    REAP(t);
  if (c->state == ST_ACTIVE) {
    if (!mine)
      return CONC_EWRONGTHREAD;
    /* An exception other than GreenletExit is dropped, as a collected
     * greenlet's is; one that declines to die (or runs) stays. */
    int rc = conc_coro_kill(co);
    if (c->state != ST_DEAD)
      return rc;
  }
  release_stack(c, mine);
  c->state = ST_DEAD;
  c->thread = 0;
  if (c->flags & F_HEAP)
    free(co);
  return 0;
}

/* ---- generators -------------------------------------------------------- */

#define GEN_CONSUMER(g) ((g)->priv[0])

int conc_gen_init(conc_gen_t *g, conc_fn_t fn, void *arg,
                  const conc_coro_opts_t *opts) {
  if (!g)
    return CONC_EINVAL;
  GEN_CONSUMER(g) = NULL;
  g->priv[1] = NULL;
  return conc_coro_init(&g->coro, fn, arg ? arg : g, opts);
}

int conc_gen_send(conc_gen_t *g, void *value, void **out) {
  if (out)
    *out = NULL;
  if (!g)
    return CONC_EINVAL;
  coro_t *c = C(&g->coro);
  tls_t *t = tls_get();
  if (!t)
    return CONC_ENOMEM;
  if (c->thread != t->serial)
    return c->state == ST_DEAD ? CONC_EEOF : CONC_EWRONGTHREAD;
  if (c->state == ST_DEAD)
    return CONC_EEOF;
  /* Python: "generator already executing"; a consumer that descends from the
   * generator would make the parent chain a cycle. */
  if (is_ancestor(c, t->current))
    return CONC_ESTATE;
  if (c->state == ST_NEW && value) /* "can't send non-None value to a
                                      just-started generator" */
    return CONC_EINVAL;
  GEN_CONSUMER(g) = t->current;
  c->parent = t->current;
  void *v = NULL;
  int rc = conc_coro_switch(&g->coro, value, &v);
  if (rc)
    return rc;
  if (out)
    *out = v;
  return c->state == ST_DEAD ? CONC_EEOF : 0;
}

int conc_gen_next(conc_gen_t *g, void **out) {
  return conc_gen_send(g, NULL, out);
}

int conc_gen_yield(conc_gen_t *g, void *value, void **sent) {
  if (sent)
    *sent = NULL;
  tls_t *t = t_tls;
  if (!g || !t || t->current != C(&g->coro))
    return g ? CONC_ESTATE : CONC_EINVAL;
  return conc_coro_switch(GEN_CONSUMER(g), value, sent);
}

int conc_gen_close(conc_gen_t *g) {
  return g ? conc_coro_kill(&g->coro) : CONC_EINVAL;
}

int conc_gen_destroy(conc_gen_t *g) {
  return g ? conc_coro_destroy(&g->coro) : 0;
}
