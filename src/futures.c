/*
 * futures: Future, wait, as_completed, and the pool of future records.
 *
 * Locking protocol. A future's state word is written only under its stripe
 * lock (one of NSTRIPES conc__mu_t, chosen by address), which also guards
 * its callback list and its watcher list; result()/done() read the state
 * without a lock (the value and code are published before the state with
 * release order). result() waiters park on the state word itself after
 * setting FS_WAITERS; the completer swaps the state and wakes them only if
 * that bit was set. wait()/as_completed() hang a watcher node on every
 * future they watch; a completer notifies the watchers under the stripe
 * lock, and a watcher unlinks itself under the same lock before its memory
 * goes away. Callbacks run outside every lock. No two locks are ever held
 * together here.
 *
 * Records are recycled through a per-thread cache that spills into (and
 * refills from) a global pool, so a steady stream of submit/release makes
 * no allocation.
 *
 * Fork: the stripes and the pool lock are taken by the prepare handler and
 * reset in the child.
 */
#include "futures-int.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/time.h"
#include "annotate-int.h"
#include "init-int.h"
#include "thread-int.h"

#define NSTRIPES 64
#define CACHE_MAX 256
#define CACHE_SPILL 128
#define POOL_MAX 65536

/* ---- stripes and fork ----------------------------------------------- */

static struct {
  conc__mu_t mu;
  char pad[64 - sizeof(conc__mu_t)];
} stripes[NSTRIPES];

static conc__mu_t *stripe_of(const conc_future_t *f) {
  uintptr_t h = (uintptr_t)f >> 6;
  h ^= h >> 6;
  return &stripes[h % NSTRIPES].mu;
}

static conc__mu_t pool_mu;
static conc_future_t *pool_head;
static size_t pool_n;
static size_t n_records; /* records from malloc not yet freed, atomic */

static void fork_prepare(void) {
  conc__mu_lock(&pool_mu);
  for (int i = 0; i < NSTRIPES; i++)
    conc__mu_lock(&stripes[i].mu);
}

static void fork_parent(void) {
  for (int i = NSTRIPES; i-- > 0;)
    conc__mu_unlock(&stripes[i].mu);
  conc__mu_unlock(&pool_mu);
}

static void fork_child(void) {
  for (int i = 0; i < NSTRIPES; i++)
    conc__mu_reinit(&stripes[i].mu);
  conc__mu_reinit(&pool_mu);
}

/* ---- record pool -------------------------------------------------------- */

static __thread struct {
  conc_future_t *head;
  unsigned n;
  bool keyed;
} cache;
static pthread_key_t cache_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Give a list of records to the global pool (or back to malloc). */
static void pool_give(conc_future_t *head) {
  conc__mu_lock(&pool_mu);
  while (head && pool_n < POOL_MAX) {
    conc_future_t *next = head->next;
    head->next = pool_head;
    pool_head = head;
    pool_n++;
    head = next;
  }
  conc__mu_unlock(&pool_mu);
  while (head) {
    conc_future_t *next = head->next;
    free(head);
    conc__fetch_sub(&n_records, 1);
    head = next;
  }
}

void conc__future_stats(size_t *records, size_t *pooled) {
  conc__mu_lock(&pool_mu);
  *pooled = pool_n;
  conc__mu_unlock(&pool_mu);
  *records = conc__load_relaxed(&n_records);
}

void conc__future_cache_flush(void) {
  conc_future_t *head = cache.head;
  cache.head = NULL;
  cache.n = 0;
  if (head)
    pool_give(head);
}

static void cache_exit(void *unused) {
  (void)unused;
  conc__future_cache_flush();
  /* pthread has cleared the key: a later destructor of this thread that
   * releases a future re-arms it (pthread runs destructors again). */
  cache.keyed = false;
}

static void init_once(void) {
  pthread_key_create(&cache_key, cache_exit);
  /* a libconc thread empties its cache before a join can return */
  conc__thread_on_exit(conc__future_cache_flush);
  conc__atfork_register(fork_prepare, fork_parent, fork_child);
}

/* Arm the thread-exit flush before the cache first holds a record, on
 * either way in: a push, or a refill from the pool (a thread that only
 * creates futures and hands them away must give the rest of its refill
 * back when it ends). */
static void cache_arm(void) {
  if (cache.keyed)
    return;
  pthread_once(&once, init_once);
  pthread_setspecific(cache_key, &cache);
  cache.keyed = true;
}

static conc_future_t *cache_pop(void) {
  conc_future_t *f = cache.head;
  if (f) {
    cache.head = f->next;
    cache.n--;
    return f;
  }
  cache_arm();
  conc__mu_lock(&pool_mu);
  for (int i = 0; i < CACHE_SPILL && pool_head; i++) {
    conc_future_t *g = pool_head;
    pool_head = g->next;
    pool_n--;
    g->next = cache.head;
    cache.head = g;
    cache.n++;
  }
  conc__mu_unlock(&pool_mu);
  f = cache.head;
  if (f) {
    cache.head = f->next;
    cache.n--;
  }
  return f;
}

static void cache_push(conc_future_t *f) {
  cache_arm();
  f->next = cache.head;
  cache.head = f;
  if (++cache.n <= CACHE_MAX)
    return;
  conc_future_t *spill = cache.head, *last = spill;
  for (int i = 1; i < CACHE_SPILL; i++)
    last = last->next;
  cache.head = last->next;
  last->next = NULL;
  cache.n -= CACHE_SPILL;
  pool_give(spill);
}

conc_future_t *conc__future_alloc(uint32_t refs) {
  pthread_once(&once, init_once);
  conc_future_t *f = cache_pop();
  if (!f) {
    f = malloc(sizeof(*f));
    if (!f)
      return NULL;
    conc__fetch_add(&n_records, 1);
  }
  memset(f, 0, sizeof(*f));
  f->refs = refs;
  return f;
}

static void future_recycle(conc_future_t *f) {
  for (struct conc__cb_node *c = f->cb_head, *next; c; c = next) {
    next = c->next;
    if (c != &f->cb0)
      free(c);
  }
  free(f->message);
  if (f->ext_free)
    f->ext_free(f->ext);
  cache_push(f);
}

void conc__future_set_ext(conc_future_t *f, void *ext,
                          void (*ext_free)(void *ext)) {
  f->ext = ext;
  f->ext_free = ext_free;
}

void *conc__future_ext(const conc_future_t *f) { return f->ext; }

/* A failure always reads as one: a code that is not negative becomes
 * CONC_EFAILED. */
static int failure_code(int code) { return code < 0 ? code : CONC_EFAILED; }

/* ---- Future ------------------------------------------------------------- */

static uint32_t st_of(const conc_future_t *f) {
  return conc__load_acquire(&f->state) & FS_MASK;
}

int conc_future_new(conc_future_t **out) {
  if (!out)
    return CONC_EINVAL;
  conc_future_t *f = conc__future_alloc(1);
  if (!f)
    return CONC_ENOMEM;
  *out = f;
  return 0;
}

conc_future_t *conc_future_retain(conc_future_t *f) {
  if (f)
    conc__fetch_add(&f->refs, 1);
  return f;
}

void conc_future_release(conc_future_t *f) {
  if (!f)
    return;
  /* Race detectors: every holder's use happens before the recycling. */
  conc__ann_happens_before(&f->refs);
  conc__ann_benign_race(&f->refs, sizeof f->refs); /* the count: atomic */
  if (conc__fetch_sub(&f->refs, 1) == 1) {
    conc__ann_happens_after(&f->refs);
    future_recycle(f);
  }
}

bool conc_future_cancelled(const conc_future_t *f) {
  uint32_t s = f ? st_of(f) : FS_PENDING;
  return s == FS_CANCELLED || s == FS_CANCELLED_AND_NOTIFIED;
}

bool conc_future_running(const conc_future_t *f) {
  return f && st_of(f) == FS_RUNNING;
}

bool conc_future_done(const conc_future_t *f) {
  return f && st_of(f) >= FS_CANCELLED;
}

/* Move the state from one of the states in `from` (a mask of 1 << state)
 * to `to`, keeping FS_WAITERS only if asked. The one lock-free transition,
 * pending -> running, races with the locked ones, hence the CAS. Returns
 * the old word, or UINT32_MAX when the state was not one of `from`. */
static uint32_t transition(conc_future_t *f, unsigned from, uint32_t to,
                           bool keep_waiters) {
  /* Race detectors (annotate-int.h): what the completer wrote happens
   * before what a result() that sees the new state reads (wait_done). */
  conc__ann_happens_before(&f->state);
  uint32_t old = conc__load_relaxed(&f->state);
  for (;;) {
    if (!(from & (1u << (old & FS_MASK))))
      return UINT32_MAX;
    uint32_t nw = to | (keep_waiters ? old & FS_WAITERS : 0);
    if (conc__cas(&f->state, &old, nw))
      return old;
  }
}

/* A transition that ends the wait of result() callers: should they be
 * woken? */
static bool had_waiters(uint32_t old) {
  return old != UINT32_MAX && (old & FS_WAITERS);
}

/* With the stripe held: tell every watcher that f is done. */
static void notify_watchers(conc_future_t *f, bool failed);

/* With the stripe held: detach the callback list for running. */
static struct conc__cb_node *take_callbacks(conc_future_t *f) {
  struct conc__cb_node *c = f->cb_head;
  f->cb_head = f->cb_tail = NULL;
  return c;
}

static void run_callback(conc_future_t *f, struct conc__cb_node *c) {
  c->fn(f, c->arg);
}

static void run_callbacks(conc_future_t *f, struct conc__cb_node *c) {
  while (c) {
    struct conc__cb_node *next = c->next;
    run_callback(f, c);
    if (c != &f->cb0)
      free(c);
    c = next;
  }
}

static void after_transition(conc_future_t *f, bool wake,
                             struct conc__cb_node *cbs) {
  if (wake)
    conc__wake(&f->state, CONC__WAKE_ALL, false);
  run_callbacks(f, cbs);
}

bool conc_future_cancel(conc_future_t *f) {
  if (!f)
    return false;
  conc__mu_t *mu = stripe_of(f);
  conc__mu_lock(mu);
  uint32_t s = st_of(f);
  if (s != FS_PENDING) {
    conc__mu_unlock(mu);
    return s == FS_CANCELLED || s == FS_CANCELLED_AND_NOTIFIED;
  }
  uint32_t old = transition(f, 1u << FS_PENDING, FS_CANCELLED, false);
  if (old == UINT32_MAX) { /* started meanwhile */
    conc__mu_unlock(mu);
    return false;
  }
  bool wake = had_waiters(old);
  struct conc__cb_node *cbs = take_callbacks(f);
  conc__mu_unlock(mu);
  after_transition(f, wake, cbs);
  return true;
}

int conc_future_set_running_or_notify_cancel(conc_future_t *f) {
  if (!f)
    return CONC_EINVAL;
  /* keep FS_WAITERS: result() callers stay parked until the end */
  if (transition(f, 1u << FS_PENDING, FS_RUNNING, true) != UINT32_MAX)
    return 1;
  conc__mu_t *mu = stripe_of(f);
  conc__mu_lock(mu);
  uint32_t old =
      transition(f, 1u << FS_CANCELLED, FS_CANCELLED_AND_NOTIFIED, false);
  if (old != UINT32_MAX)
    notify_watchers(f, false);
  conc__mu_unlock(mu);
  if (had_waiters(old))
    conc__wake(&f->state, CONC__WAKE_ALL, false);
  return old != UINT32_MAX ? 0 : CONC_ESTATE;
}

void conc__future_cancel_notify(conc_future_t *f) {
  conc_future_cancel(f);
  if (st_of(f) == FS_CANCELLED)
    conc_future_set_running_or_notify_cancel(f);
}

int conc__future_finish(conc_future_t *f, void *value, int code,
                        char *message) {
  conc__mu_t *mu = stripe_of(f);
  conc__mu_lock(mu);
  uint32_t s = st_of(f);
  if (s != FS_PENDING && s != FS_RUNNING) {
    conc__mu_unlock(mu);
    free(message);
    return CONC_EINVALSTATE;
  }
  f->value = code ? NULL : value;
  f->code = code;
  f->message = code ? message : NULL;
  if (!code)
    free(message);
  uint32_t old =
      transition(f, 1u << FS_PENDING | 1u << FS_RUNNING, FS_FINISHED, false);
  bool wake = had_waiters(old);
  notify_watchers(f, code != 0);
  struct conc__cb_node *cbs = take_callbacks(f);
  conc__mu_unlock(mu);
  after_transition(f, wake, cbs);
  return 0;
}

int conc_future_set_result(conc_future_t *f, void *value) {
  if (!f)
    return CONC_EINVAL;
  return conc__future_finish(f, value, 0, NULL);
}

int conc_future_set_exception(conc_future_t *f, int code, const char *message) {
  if (!f)
    return CONC_EINVAL;
  char *copy = message ? strdup(message) : NULL;
  return conc__future_finish(f, NULL, failure_code(code), copy);
}

int64_t conc__yield_banned_until;

/* Spin a little before parking: a thread-pool task usually finishes
 * within a few microseconds, much sooner than a sleep and a wake would
 * take. In yield mode (futures-int.h) the spin yields between looks, which
 * lets a worker that shares our core run; in pause mode it pauses, and
 * only while the pool shows progress (struct conc__progress), so that it
 * costs at most a few microseconds when the workers are not on a core. */
static bool spin_until_done_1(const conc_future_t *f);

/* Spins of this thread's result() calls that ended with the task unfinished,
 * in a row (conc__spin_allowed). */
static __thread uint32_t result_misses;

static void spin_until_done(const conc_future_t *f) {
  /* in yield mode a spin that misses costs nobody a core: no limit */
  if (conc__yield_mode(conc__now_ns()) || conc__spin_allowed(&result_misses))
    conc__spin_result(&result_misses, spin_until_done_1(f));
}

/* In pause mode: has the pool moved since *head / *moved (updated)? False
 * once it has not for CONC__STALL_NS. */
static bool pool_moving(const struct conc__progress *p, conc_future_t **head,
                        int64_t *moved, int64_t now) {
  conc_future_t *h = p ? __atomic_load_n(p->head, __ATOMIC_RELAXED) : NULL;
  if (h != *head || (p && __atomic_load_n(p->waking, __ATOMIC_RELAXED))) {
    *head = h;
    *moved = now;
    return true;
  }
  return now - *moved < CONC__STALL_NS;
}

/* True when f finished during the spin. */
static bool spin_until_done_1(const conc_future_t *f) {
  const struct conc__progress *p = f->progress;
  int64_t start = conc__now_ns(), moved = start;
  bool ym = conc__yield_mode(start);
  if (!ym && conc__cpu_count() < 2)
    return false; /* the task can only finish once we leave the core */
  conc_future_t *head = p ? __atomic_load_n(p->head, __ATOMIC_RELAXED) : NULL;
  for (unsigned i = 1; st_of(f) < FS_CANCELLED; i++) {
    if (!conc__spin_step(ym)) {
      if (st_of(f) >= FS_CANCELLED)
        break; /* the yield went to the thread that finished f */
      conc__yield_ban();
      return false;
    }
    if (!ym && (i & 63))
      continue;
    int64_t now = conc__now_ns();
    if (now - start >= CONC__RESULT_SPIN_NS ||
        (!ym && !pool_moving(p, &head, &moved, now)))
      return false;
  }
  return true;
}

/* Future.result's timeout: Condition.wait rules (negative polls). */
static int future_deadline(double timeout, conc_deadline_t *dl) {
  if (isnan(timeout))
    return CONC_EINVAL;
  if (timeout < 0 && timeout != CONC_FOREVER)
    timeout = 0;
  return conc_deadline_after(timeout, dl);
}

/* wait_done's answer when conc_interrupt ended the wait (not a state). */
#define WAIT_INTR UINT32_MAX

/* Wait until done or the timeout (already checked for NaN); returns the
 * state seen. The deadline is taken once, when waiting starts. */
static uint32_t wait_done_raw(conc_future_t *f, double timeout) {
  uint32_t s = conc__load_acquire(&f->state);
  if ((s & FS_MASK) >= FS_CANCELLED)
    return s & FS_MASK;
  bool poll = timeout <= 0 && timeout != CONC_FOREVER;
  /* Spin only for a task that runs or that a thread pool will start soon
   * (a process pool's queued task may take a while). */
  if (!poll && ((s & FS_MASK) == FS_RUNNING || f->progress)) {
    spin_until_done(f);
    s = conc__load_acquire(&f->state);
  }
  conc_deadline_t dl;
  future_deadline(timeout, &dl);
  bool timed_out = false;
  while ((s & FS_MASK) < FS_CANCELLED && !timed_out) {
    if (!(s & FS_WAITERS)) {
      if (!conc__cas(&f->state, &s, s | FS_WAITERS))
        continue;
      s |= FS_WAITERS;
    }
    int r = conc__wait_intr(&f->state, s, dl, false);
    timed_out = r == CONC_ETIMEDOUT;
    s = conc__load_acquire(&f->state);
    if (r == CONC_EINTR && (s & FS_MASK) < FS_CANCELLED)
      return WAIT_INTR;
    if (r == CONC_EINTR) /* done anyway: the next wait reports it */
      conc__intr_keep();
  }
  return s & FS_MASK;
}

/* The state seen, after the acquire half of transition's edge. */
static uint32_t wait_done(conc_future_t *f, double timeout) {
  uint32_t s = wait_done_raw(f, timeout);
  conc__ann_happens_after(&f->state);
  return s;
}

int conc_future_result(conc_future_t *f, double timeout, void **out) {
  if (!f || isnan(timeout))
    return CONC_EINVAL;
  uint32_t s = wait_done(f, timeout);
  if (s == WAIT_INTR)
    return CONC_EINTR;
  if (s == FS_CANCELLED || s == FS_CANCELLED_AND_NOTIFIED)
    return CONC_ECANCELED;
  if (s != FS_FINISHED)
    return CONC_ETIMEDOUT;
  if (f->code)
    return f->code;
  if (out)
    *out = f->value;
  return 0;
}

int conc_future_exception(conc_future_t *f, double timeout,
                          conc_future_error_t *err) {
  if (!f || !err || isnan(timeout))
    return CONC_EINVAL;
  uint32_t s = wait_done(f, timeout);
  if (s == WAIT_INTR)
    return CONC_EINTR;
  if (s == FS_CANCELLED || s == FS_CANCELLED_AND_NOTIFIED)
    return CONC_ECANCELED;
  if (s != FS_FINISHED)
    return CONC_ETIMEDOUT;
  err->code = f->code;
  err->message = f->message ? f->message : "";
  return 0;
}

int conc_future_add_done_callback(conc_future_t *f, conc_future_callback_t fn,
                                  void *arg) {
  if (!f || !fn)
    return CONC_EINVAL;
  conc__mu_t *mu = stripe_of(f);
  conc__mu_lock(mu);
  if (st_of(f) >= FS_CANCELLED) {
    conc__mu_unlock(mu);
    struct conc__cb_node now = {fn, arg, NULL};
    run_callback(f, &now);
    return 0;
  }
  struct conc__cb_node *c = &f->cb0;
  if (f->cb_head) {
    c = malloc(sizeof(*c));
    if (!c) {
      conc__mu_unlock(mu);
      return CONC_ENOMEM;
    }
  }
  *c = (struct conc__cb_node){fn, arg, NULL};
  if (f->cb_tail)
    f->cb_tail->next = c;
  else
    f->cb_head = c;
  f->cb_tail = c;
  conc__mu_unlock(mu);
  return 0;
}

int conc_future_repr(const conc_future_t *f, char *buf, size_t len) {
  if (!f || (!buf && len))
    return CONC_EINVAL;
  static const char *names[] = {"pending", "running", "cancelled", "cancelled",
                                "finished"};
  uint32_t s = st_of(f);
  if (s != FS_FINISHED)
    return snprintf(buf, len, "<Future at %p state=%s>", (const void *)f,
                    names[s]);
  if (f->code)
    return snprintf(buf, len, "<Future at %p state=finished raised %s>",
                    (const void *)f, conc_err_python(f->code));
  return snprintf(buf, len, "<Future at %p state=finished returned %p>",
                  (const void *)f, f->value);
}

/* ---- watchers (wait / as_completed) ------------------------------------ */

struct conc__watcher {
  uint32_t seq;   /* bumped on every notification; the waiter parks on it */
  uint32_t ndone; /* watched futures finished or cancelled-and-notified */
  uint32_t nfail; /* of those, failed */
  uint32_t nslot; /* next free slot */
  conc_future_t **slots; /* completion order (as_completed), or NULL */
};

static void watcher_record(struct conc__watcher *w, conc_future_t *f,
                           bool failed) {
  /* Race detectors: the counters and slots are atomics the waiter reads
   * without the stripe lock; a future's own hand-off is its result(). */
  conc__ann_benign_race(w, offsetof(struct conc__watcher, slots));
  if (w->slots) {
    uint32_t i = conc__fetch_add(&w->nslot, 1);
    conc__ann_benign_race(&w->slots[i], sizeof w->slots[i]);
    __atomic_store_n(&w->slots[i], f, __ATOMIC_RELEASE);
  }
  if (failed)
    conc__fetch_add(&w->nfail, 1);
  conc__fetch_add(&w->ndone, 1);
  conc__fetch_add(&w->seq, 1);
}

static void notify_watchers(conc_future_t *f, bool failed) {
  for (struct conc__wnode *n = f->watchers; n; n = n->next) {
    watcher_record(n->w, f, failed);
    conc__wake(&n->w->seq, 1, false);
  }
}

static bool is_notified_done(const conc_future_t *f) {
  uint32_t s = st_of(f);
  return s == FS_FINISHED || s == FS_CANCELLED_AND_NOTIFIED;
}

/* Hang node on f, or record f at once if it is already (notified) done. */
static void watch(conc_future_t *f, struct conc__wnode *node,
                  struct conc__watcher *w) {
  conc__mu_t *mu = stripe_of(f);
  conc__mu_lock(mu);
  node->w = w;
  node->linked = !is_notified_done(f);
  if (node->linked) {
    node->prev = NULL;
    node->next = f->watchers;
    if (f->watchers)
      f->watchers->prev = node;
    f->watchers = node;
  } else {
    watcher_record(w, f, st_of(f) == FS_FINISHED && f->code != 0);
  }
  conc__mu_unlock(mu);
}

static void unwatch(conc_future_t *f, struct conc__wnode *node) {
  if (!node->linked)
    return;
  conc__mu_t *mu = stripe_of(f);
  conc__mu_lock(mu);
  if (node->prev)
    node->prev->next = node->next;
  else
    f->watchers = node->next;
  if (node->next)
    node->next->prev = node->prev;
  node->linked = false;
  conc__mu_unlock(mu);
}

struct pidx {
  uintptr_t p;
  size_t i;
};

static int pidx_cmp(const void *a, const void *b) {
  const struct pidx *x = a, *y = b;
  if (x->p != y->p)
    return x->p < y->p ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* The distinct futures of fs in first-seen order, into uniq (capacity n).
 * Returns how many, or CONC_ENOMEM / CONC_EINVAL (a NULL entry). */
static long dedup(conc_future_t *const *fs, size_t n, conc_future_t **uniq) {
  struct pidx *v = malloc((n ? n : 1) * sizeof(*v));
  bool *keep = calloc(n ? n : 1, sizeof(bool));
  if (!v || !keep) {
    free(v);
    free(keep);
    return CONC_ENOMEM;
  }
  long rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (!fs[i])
      rc = CONC_EINVAL;
    v[i] = (struct pidx){(uintptr_t)fs[i], i};
  }
  if (rc == 0) {
    qsort(v, n, sizeof(*v), pidx_cmp);
    for (size_t i = 0; i < n; i++)
      if (i == 0 || v[i].p != v[i - 1].p)
        keep[v[i].i] = true;
    for (size_t i = 0; i < n; i++)
      if (keep[i])
        uniq[rc++] = fs[i];
  }
  free(v);
  free(keep);
  return rc;
}

static bool wait_satisfied(const struct conc__watcher *w, size_t m,
                           conc_return_when_t how) {
  uint32_t done = conc__load_acquire(&w->ndone);
  switch (how) {
  case CONC_FIRST_COMPLETED:
    return done >= 1 || m == 0;
  case CONC_FIRST_EXCEPTION:
    return conc__load_acquire(&w->nfail) >= 1 || done == m;
  default:
    return done == m;
  }
}

static void split(conc_future_t **uniq, size_t m, conc_wait_result_t *res) {
  size_t nd = 0, nn = 0;
  for (size_t i = 0; i < m; i++) {
    if (is_notified_done(uniq[i])) {
      if (res->done)
        res->done[nd] = uniq[i];
      nd++;
    } else {
      if (res->not_done)
        res->not_done[nn] = uniq[i];
      nn++;
    }
  }
  res->ndone = nd;
  res->nnot_done = nn;
}

int conc_futures_wait(conc_future_t *const *fs, size_t n, double timeout,
                      conc_return_when_t return_when, conc_wait_result_t *res) {
  conc_deadline_t dl;
  if ((!fs && n) || !res || return_when < CONC_FIRST_COMPLETED ||
      return_when > CONC_ALL_COMPLETED || future_deadline(timeout, &dl))
    return CONC_EINVAL;
  conc_future_t **uniq = malloc((n ? n : 1) * sizeof(*uniq));
  struct conc__wnode *nodes = malloc((n ? n : 1) * sizeof(*nodes));
  long m = uniq && nodes ? dedup(fs, n, uniq) : CONC_ENOMEM;
  if (m < 0) {
    free(uniq);
    free(nodes);
    return (int)m;
  }
  struct conc__watcher w = {0, 0, 0, 0, NULL};
  for (long i = 0; i < m; i++)
    watch(uniq[i], &nodes[i], &w);
  int r = 0;
  for (;;) {
    uint32_t seq = conc__load_acquire(&w.seq);
    if (wait_satisfied(&w, (size_t)m, return_when) || r == CONC_ETIMEDOUT) {
      if (r == CONC_EINTR) /* satisfied anyway: the next wait reports it */
        conc__intr_keep();
      r = 0;
      break;
    }
    if (r == CONC_EINTR)
      break;
    r = conc__wait_intr(&w.seq, seq, dl, false);
  }
  for (long i = 0; i < m; i++)
    unwatch(uniq[i], &nodes[i]);
  if (r == 0)
    split(uniq, (size_t)m, res);
  free(uniq);
  free(nodes);
  return r;
}

/* ---- as_completed -------------------------------------------------------- */

struct ac_state {
  size_t m, given;
  bool over;
  conc_deadline_t deadline;
  conc_future_t **uniq;
  struct conc__wnode *nodes;
  struct conc__watcher w;
};

static void ac_free(struct ac_state *a) {
  free(a->uniq);
  free(a->nodes);
  free(a->w.slots);
  free(a);
}

int conc_as_completed_init(conc_as_completed_t *it, conc_future_t *const *fs,
                           size_t n, double timeout) {
  conc_deadline_t dl;
  if (!it || (!fs && n) || future_deadline(timeout, &dl))
    return CONC_EINVAL;
  size_t cap = n ? n : 1;
  struct ac_state *a = calloc(1, sizeof(*a));
  if (a) {
    a->uniq = malloc(cap * sizeof(*a->uniq));
    a->nodes = malloc(cap * sizeof(*a->nodes));
    a->w.slots = calloc(cap, sizeof(*a->w.slots));
  }
  long m = a && a->uniq && a->nodes && a->w.slots ? dedup(fs, n, a->uniq)
                                                  : CONC_ENOMEM;
  if (m < 0) {
    if (a)
      ac_free(a);
    return (int)m;
  }
  a->m = (size_t)m;
  a->deadline = dl;
  for (size_t i = 0; i < a->m; i++) {
    conc_future_retain(a->uniq[i]);
    watch(a->uniq[i], &a->nodes[i], &a->w);
  }
  it->priv.state = a;
  it->priv.message[0] = '\0';
  return 0;
}

int conc_as_completed_next(conc_as_completed_t *it, conc_future_t **out) {
  struct ac_state *a = it ? it->priv.state : NULL;
  if (!a || !out)
    return CONC_EINVAL;
  bool timed_out = false;
  while (!a->over && a->given < a->m) {
    uint32_t seq = conc__load_acquire(&a->w.seq);
    conc_future_t *f = __atomic_load_n(&a->w.slots[a->given], __ATOMIC_ACQUIRE);
    if (f) {
      a->given++;
      *out = f;
      return 0;
    }
    if (timed_out) {
      a->over = true;
      snprintf(it->priv.message, sizeof it->priv.message,
               "%zu (of %zu) futures unfinished", a->m - a->given, a->m);
      return CONC_ETIMEDOUT;
    }
    int r = conc__wait_intr(&a->w.seq, seq, a->deadline, false);
    if (r == CONC_EINTR) {
      /* a future that finished meanwhile wins; the iterator stays usable */
      if (!__atomic_load_n(&a->w.slots[a->given], __ATOMIC_ACQUIRE))
        return CONC_EINTR;
      conc__intr_keep();
    }
    timed_out = r == CONC_ETIMEDOUT;
  }
  return CONC_EEOF;
}

size_t conc_as_completed_unfinished(const conc_as_completed_t *it) {
  const struct ac_state *a = it ? it->priv.state : NULL;
  return a ? a->m - a->given : 0;
}

const char *conc_as_completed_message(const conc_as_completed_t *it) {
  return it ? it->priv.message : "";
}

void conc_as_completed_destroy(conc_as_completed_t *it) {
  struct ac_state *a = it ? it->priv.state : NULL;
  if (!a)
    return;
  for (size_t i = 0; i < a->m; i++) {
    unwatch(a->uniq[i], &a->nodes[i]);
    conc_future_release(a->uniq[i]);
  }
  ac_free(a);
  it->priv.state = NULL;
}
