/*
 * The lock-order checker (conc/lockdep.h, docs/lockdep.md): lock classes,
 * per-thread held stacks, the order graph and its reports.
 *
 * Locking protocol:
 * - graph_mu (a pthread mutex, never a lock the checker follows) guards
 *   class creation, the class-key table, adjacency lists, edge inserts and
 *   address-table writes. The hot path (an edge that exists, a class
 *   already known) reads the edge and address tables without it: slots
 *   are published with a release store of their key after their value.
 * - reg_mu guards the list of per-thread records (claim, recycle) and is
 *   held by a thread that scans the others' stacks for a lock it releases
 *   but does not hold. A stack is written only by its thread; its depth
 *   and each entry's object and state are atomics, which is all a scanner
 *   reads. What a scanner finds goes to the holder's mailbox (its own
 *   mutex); the holder empties it at its next hook.
 * - Class counters are relaxed atomics.
 * - `busy` (per thread) keeps the checker from following the locks taken
 *   while it reports (thread names, a user's sink).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<execinfo.h>)
#include <execinfo.h>
#define LD_HAVE_BACKTRACE 1
#endif
#endif

#include "conc/loop.h"
#include "conc/thread.h"
#include "init-int.h"
#include "lockdep-int.h"
#include "platform-int.h"

#define LD_MAX_CLASSES 8192 /* ids fit the 16 flag bits */
#define LD_KEY_SLOTS 16384
#define LD_ADDR_SLOTS 65536
#define LD_MAX_EDGES 32768
#define LD_EDGE_SLOTS 65536
#define LD_DEPTH 64
#define LD_MBOX 16
#define LD_BT 16
#define LD_BAD 0x80000000u /* edge slot: a reported inversion, not an edge */
#define LD_TOMB ((uintptr_t)1)
/* The bit of conc__sync_divert (conc/sync.h) that is the checker's. */
#define LD_DIVERT 0x80u

enum { E_PENDING = 1, E_HELD = 2 };

struct ld_entry {
  const void *obj; /* atomic: read by scanners */
  uint32_t state;  /* atomic: E_* */
  uint16_t cls;
  uint8_t type;
  bool pshared;    /* held by this process's thread, not a forked child's */
  const void *ctx; /* the task that holds an async Lock, else NULL */
  const void *site;
};

struct ld_thread {
  struct ld_entry e[LD_DEPTH];
  int depth; /* atomic */
  bool busy, used;
  uint32_t mail; /* atomic: the mailbox is not empty */
  pthread_mutex_t mbox_mu;
  int nmbox;
  const void *mbox[LD_MBOX];
  struct ld_thread *next;
};

struct ld_class {
  char *name;
  const void *site; /* the key of a site class */
  uint8_t type, by_site;
  uint64_t acq, contended; /* atomic */
  int64_t wait_ns;         /* atomic */
  uint16_t *out;           /* order edges, under graph_mu */
  uint32_t nout, capout;
};

struct ld_edge {
  uint16_t from, to;
  const void *held_site;
  char thread[48];
  int nbt;
  void *bt[LD_BT];
};

static const char *const type_name[CONC__LD_TYPES] = {
    "Lock", "RLock", "Semaphore", "BoundedSemaphore", "aio.Lock"};

uint32_t conc__ld_flags; /* atomic: CONC_LOCKDEP_*; 0 off */
static pthread_mutex_t graph_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ld_class classes[LD_MAX_CLASSES];
static uint32_t nclasses; /* atomic; ids 1..nclasses */
static uint16_t class_keys[LD_KEY_SLOTS];
static struct {
  uintptr_t key; /* atomic */
  uint32_t cls;  /* atomic */
} addr_tab[LD_ADDR_SLOTS];
static uint32_t edge_key[LD_EDGE_SLOTS]; /* atomic: from << 16 | to */
static uint32_t edge_val[LD_EDGE_SLOTS]; /* edge index | LD_BAD */
static struct ld_edge *edges[LD_MAX_EDGES];
static uint32_t nedges;                            /* atomic */
static unsigned long nreports[CONC_LOCKDEP_KINDS]; /* atomic */
static struct ld_thread *threads;
static pthread_key_t thread_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static conc_lockdep_sink_t sink;
static void *sink_user;
static __thread struct ld_thread *tls_self
    __attribute__((tls_model("initial-exec")));

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

/* ------------------------------------------------------ switching on */

static uint32_t env_flags(void) {
  const char *v = getenv("CONC_LOCKDEP");
  if (!v || !*v || strcmp(v, "0") == 0)
    return 0;
  uint32_t f = CONC_LOCKDEP_ON | CONC_LOCKDEP_EXIT_REPORT;
  return strcmp(v, "abort") == 0 ? f | CONC_LOCKDEP_ABORT : f;
}

static void exit_report(void) {
  if (LOAD(&conc__ld_flags) & CONC_LOCKDEP_EXIT_REPORT)
    conc_lockdep_dump(2);
}

/* Only the forking thread exists in the child: the others' stacks go. The
 * mutexes are made afresh rather than held across fork(): other modules'
 * prepare handlers take libconc locks, whose hooks need them. */
static void remove_at(struct ld_thread *t, int i);

static void ld_child(void) {
  pthread_mutex_init(&graph_mu, NULL);
  pthread_mutex_init(&reg_mu, NULL);
  for (struct ld_thread *t = threads; t; t = t->next) {
    pthread_mutex_init(&t->mbox_mu, NULL);
    if (t != tls_self) {
      STORE(&t->depth, 0);
      t->used = false;
      continue;
    }
    /* A process-shared lock the forking thread held stays the parent's;
     * a private one is the child's copy, held by this thread. */
    for (int i = LOAD(&t->depth) - 1; i >= 0; i--)
      if (t->e[i].pshared)
        remove_at(t, i);
  }
}

static void thread_gone(void *p) {
  struct ld_thread *t = p;
  pthread_mutex_lock(&reg_mu);
  STORE(&t->depth, 0);
  t->used = false;
  t->nmbox = 0;
  STORE(&t->mail, 0u);
  pthread_mutex_unlock(&reg_mu);
  tls_self = NULL;
}

static void ld_once(void) {
  pthread_key_create(&thread_key, thread_gone);
  conc__atfork_register(NULL, NULL, ld_child);
  atexit(exit_report);
}

/* At load time, before any other thread exists. */
__attribute__((constructor)) static void ld_load(void) {
  uint32_t f = env_flags();
  if (f) {
    STORE(&conc__ld_flags, f);
    conc__sync_divert |= LD_DIVERT;
  }
}

int conc_lockdep_enable(unsigned flags) {
  if (flags & ~(unsigned)(CONC_LOCKDEP_ON | CONC_LOCKDEP_ABORT |
                          CONC_LOCKDEP_EXIT_REPORT))
    return CONC_EINVAL;
  if (flags) {
    flags |= CONC_LOCKDEP_ON;
    pthread_once(&once, ld_once);
  }
  STORE(&conc__ld_flags, (uint32_t)flags);
  unsigned char d = __atomic_load_n(&conc__sync_divert, __ATOMIC_RELAXED);
  d = flags ? (unsigned char)(d | LD_DIVERT) : (unsigned char)(d & ~LD_DIVERT);
  __atomic_store_n(&conc__sync_divert, d, __ATOMIC_RELAXED);
  return 0;
}

unsigned conc_lockdep_flags(void) { return LOAD(&conc__ld_flags); }

void conc_lockdep_set_sink(conc_lockdep_sink_t fn, void *user) {
  pthread_mutex_lock(&graph_mu);
  sink = fn;
  sink_user = user;
  pthread_mutex_unlock(&graph_mu);
}

unsigned long conc_lockdep_reports(int kind) {
  if (kind < 0 || kind >= CONC_LOCKDEP_KINDS)
    return 0;
  if (kind > 0)
    return LOAD(&nreports[kind]);
  unsigned long n = 0;
  for (int k = 1; k < CONC_LOCKDEP_KINDS; k++)
    n += LOAD(&nreports[k]);
  return n;
}

/* ------------------------------------------------------ per thread */

static struct ld_thread *claim_thread(void) {
  pthread_once(&once, ld_once);
  pthread_mutex_lock(&reg_mu);
  struct ld_thread *t = threads;
  while (t && t->used)
    t = t->next;
  if (!t) {
    t = calloc(1, sizeof *t);
    if (t) {
      pthread_mutex_init(&t->mbox_mu, NULL);
      t->next = threads;
      threads = t;
    }
  }
  if (t)
    t->used = true;
  pthread_mutex_unlock(&reg_mu);
  if (t) {
    tls_self = t;
    pthread_setspecific(thread_key, t);
  }
  return t;
}

/* The caller's record, or NULL while the checker itself is at work. */
static struct ld_thread *self(void) {
  struct ld_thread *t = tls_self;
  if (__builtin_expect(t == NULL, 0))
    t = claim_thread();
  return t && !t->busy ? t : NULL;
}

static void remove_at(struct ld_thread *t, int i) {
  int d = LOAD(&t->depth);
  for (int k = i; k + 1 < d; k++) {
    struct ld_entry *a = &t->e[k], *b = &t->e[k + 1];
    STORE(&a->obj, LOAD(&b->obj));
    STORE(&a->state, LOAD(&b->state));
    a->cls = b->cls;
    a->type = b->type;
    a->pshared = b->pshared;
    a->ctx = b->ctx;
    a->site = b->site;
  }
  STORE(&t->depth, d - 1);
}

/* The topmost entry of obj in `state` (0: any), or -1. */
static int find_entry(struct ld_thread *t, const void *obj, uint32_t state,
                      bool oldest) {
  int d = LOAD(&t->depth), found = -1;
  for (int i = d - 1; i >= 0; i--)
    if (t->e[i].obj == obj && (!state || t->e[i].state == state)) {
      found = i;
      if (!oldest)
        break;
    }
  return found;
}

/* The entry of an acquisition in progress: several tasks of a loop may
 * wait for one async Lock, each with its own entry. */
static int pending_entry(struct ld_thread *t, const void *obj,
                         const void *ctx) {
  for (int i = LOAD(&t->depth) - 1; i >= 0; i--)
    if (t->e[i].obj == obj && t->e[i].state == E_PENDING && t->e[i].ctx == ctx)
      return i;
  return -1;
}

/* Another thread released locks this one held: forget them. */
static void take_mail(struct ld_thread *t) {
  if (__builtin_expect(!LOAD(&t->mail), 1))
    return;
  pthread_mutex_lock(&t->mbox_mu);
  for (int i = 0; i < t->nmbox; i++) {
    int k = find_entry(t, t->mbox[i], E_HELD, true);
    if (k >= 0)
      remove_at(t, k);
  }
  t->nmbox = 0;
  STORE(&t->mail, 0u);
  pthread_mutex_unlock(&t->mbox_mu);
}

/* Find the thread that holds obj and post the release to it. A mailbox
 * that is full drops the news: that entry then stays (a false edge at
 * worst, documented). */
static void post_foreign_release(struct ld_thread *me, const void *obj) {
  pthread_mutex_lock(&reg_mu);
  for (struct ld_thread *t = threads; t; t = t->next) {
    if (t == me || !t->used)
      continue;
    int d = LOAD(&t->depth);
    for (int i = 0; i < d && i < LD_DEPTH; i++) {
      if (LOAD(&t->e[i].obj) != obj || LOAD(&t->e[i].state) != E_HELD)
        continue;
      pthread_mutex_lock(&t->mbox_mu);
      if (t->nmbox < LD_MBOX)
        t->mbox[t->nmbox++] = obj;
      STORE(&t->mail, 1u);
      pthread_mutex_unlock(&t->mbox_mu);
      pthread_mutex_unlock(&reg_mu);
      return;
    }
  }
  pthread_mutex_unlock(&reg_mu);
}

static char *dup_printf(const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return strdup(buf);
}

/* ------------------------------------------------------ classes */

static uint32_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return (uint32_t)x;
}

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* Under graph_mu. 0 when the table is full. */
static uint16_t new_class(char *name, const void *site, uint8_t type) {
  uint32_t id = LOAD(&nclasses) + 1u;
  if (!name || id >= LD_MAX_CLASSES) {
    free(name);
    return 0;
  }
  struct ld_class *c = &classes[id];
  c->name = name;
  c->site = site;
  c->type = type;
  c->by_site = site != NULL;
  REL(&nclasses, id);
  return (uint16_t)id;
}

/* The class of a name, or of an init site; made on first use. Under
 * graph_mu. */
static uint16_t keyed_class(const char *name, const void *site, uint8_t type) {
  uint32_t h = name ? hash_str(name) : hash_ptr(site) ^ type;
  for (uint32_t i = 0; i < LD_KEY_SLOTS; i++) {
    uint16_t *slot = &class_keys[(h + i) & (LD_KEY_SLOTS - 1)];
    if (*slot == 0) {
      char where[160];
      if (!name)
        conc__ld_site_name(site, where, sizeof where);
      uint16_t id = new_class(
          name ? strdup(name) : dup_printf("%s@%s", type_name[type], where),
          name ? NULL : site, type);
      *slot = id;
      return id;
    }
    struct ld_class *c = &classes[*slot];
    if (name ? !c->by_site && strcmp(c->name, name) == 0
             : c->by_site && c->site == site && c->type == type)
      return *slot;
  }
  return 0;
}

static uint32_t addr_lookup(const void *obj) {
  uint32_t h = hash_ptr(obj);
  for (uint32_t i = 0; i < LD_ADDR_SLOTS; i++) {
    uint32_t s = (h + i) & (LD_ADDR_SLOTS - 1);
    uintptr_t k = ACQ(&addr_tab[s].key);
    if (k == (uintptr_t)obj)
      return LOAD(&addr_tab[s].cls);
    if (k == 0)
      return 0;
  }
  return 0;
}

/* Under graph_mu. */
static void addr_put(const void *obj, uint16_t cls) {
  uint32_t h = hash_ptr(obj);
  int64_t tomb = -1;
  for (uint32_t i = 0; i < LD_ADDR_SLOTS; i++) {
    uint32_t s = (h + i) & (LD_ADDR_SLOTS - 1);
    uintptr_t k = LOAD(&addr_tab[s].key);
    if (k == (uintptr_t)obj) {
      STORE(&addr_tab[s].cls, cls);
      return;
    }
    if (k == LD_TOMB && tomb < 0)
      tomb = s;
    if (k == 0) {
      s = tomb >= 0 ? (uint32_t)tomb : s;
      STORE(&addr_tab[s].cls, cls);
      REL(&addr_tab[s].key, (uintptr_t)obj);
      return;
    }
  }
}

static void addr_remove(const void *obj) {
  uint32_t h = hash_ptr(obj);
  for (uint32_t i = 0; i < LD_ADDR_SLOTS; i++) {
    uint32_t s = (h + i) & (LD_ADDR_SLOTS - 1);
    uintptr_t k = LOAD(&addr_tab[s].key);
    if (k == 0)
      return;
    if (k == (uintptr_t)obj) {
      REL(&addr_tab[s].key, LD_TOMB);
      return;
    }
  }
}

/* A lock the checker first meets when it is taken: a class of its own,
 * named by its symbol, else by its address. */
static uint16_t lazy_class(const void *obj, uint8_t type) {
  char sym[160];
  char *name = conc__ld_object_symbol(obj, sym, sizeof sym)
                   ? strdup(sym)
                   : dup_printf("%s@%p", type_name[type], obj);
  pthread_mutex_lock(&graph_mu);
  uint16_t id = (uint16_t)addr_lookup(obj);
  if (id == 0) {
    id = new_class(name, NULL, type);
    name = NULL;
    if (id)
      addr_put(obj, id);
  }
  pthread_mutex_unlock(&graph_mu);
  free(name);
  return id;
}

static uint16_t class_of(const void *obj, uint32_t flags, uint8_t type) {
  uint32_t id = flags >> CONC__LD_CLASS_SHIFT;
  if (id)
    return (uint16_t)id;
  id = addr_lookup(obj);
  return id ? (uint16_t)id : lazy_class(obj, type);
}

void conc__ld_init(const void *obj, uint32_t *flags, enum conc__ld_type type,
                   const char *name, const void *site) {
  pthread_once(&once, ld_once);
  /* Initialising a lock this thread held (a re-init as the way back from
   * CONC_ENOTRECOVERABLE, or memory reused) ends that hold. */
  struct ld_thread *t = self();
  if (t)
    for (int k; (k = find_entry(t, obj, E_HELD, false)) >= 0;)
      remove_at(t, k);
  pthread_mutex_lock(&graph_mu);
  uint16_t id = keyed_class(name, site, (uint8_t)type);
  /* The address table too, for conc_lockdep_class_of and destroy. */
  if (id)
    addr_put(obj, id);
  if (flags && !(*flags & CONC__SYNC_PSHARED) && id)
    *flags = (*flags & 0xffffu) | ((uint32_t)id << CONC__LD_CLASS_SHIFT);
  pthread_mutex_unlock(&graph_mu);
}

unsigned conc_lockdep_class_of(const void *lock) {
  return lock ? addr_lookup(lock) : 0;
}

/* ------------------------------------------------------ reports */

struct rb {
  size_t len;
  char buf[8192];
};

__attribute__((format(printf, 2, 3))) static void rb_add(struct rb *b,
                                                         const char *fmt, ...) {
  if (b->len >= sizeof b->buf - 1)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->buf + b->len, sizeof b->buf - b->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    b->len += (size_t)n < sizeof b->buf - b->len ? (size_t)n
                                                 : sizeof b->buf - b->len - 1;
}

/* One line per frame: function+offset, and the address for addr2line. */
static void rb_frames(struct rb *b, void *const *bt, int n) {
  char where[160];
  for (int i = 0; i < n; i++) {
    conc__ld_site_name(bt[i], where, sizeof where);
    rb_add(b, "      #%d %s [%p]\n", i, where, bt[i]);
  }
}

/* The user's call site of the acquisition being checked, if any: a
 * backtrace starts there instead of inside the library. */
static __thread const void *tls_from;

/* Up to LD_BT frames, from tls_from when it is among them, else after the
 * `skip` innermost ones (the checker's own). */
static int grab_frames(void **bt, int skip) {
#ifdef LD_HAVE_BACKTRACE
  void *all[LD_BT + 8];
  int n = backtrace(all, LD_BT + 8);
  int start = n > skip ? skip : n;
  for (int i = 0; tls_from && i < n; i++)
    if (all[i] == tls_from) {
      start = i;
      break;
    }
  int k = n - start < LD_BT ? n - start : LD_BT;
  memcpy(bt, all + start, (size_t)k * sizeof *bt);
  return k;
#else
  (void)bt;
  (void)skip;
  return 0;
#endif
}

/* The caller's thread name; the caller has set busy. */
static void thread_label(char *out, size_t n) {
  conc_thread_t *t = conc_current_thread();
  const char *nm = t ? conc_thread_name(t) : NULL;
  snprintf(out, n, "%s", nm ? nm : "?");
}

static const char *cname(uint16_t id) {
  return id && id <= LOAD(&nclasses) ? classes[id].name : "?";
}

static const char *ctype(uint16_t id) {
  return id && id <= LOAD(&nclasses) ? type_name[classes[id].type] : "?";
}

/* Once per (kind, class, other class); under graph_mu. */
static bool first_time(int kind, uint16_t cls, uint16_t other) {
  static uint64_t seen[4096];
  uint64_t key = (uint64_t)kind << 32 | (uint64_t)cls << 16 | other;
  uint32_t h = hash_ptr((void *)(uintptr_t)key);
  for (uint32_t i = 0; i < 4096; i++) {
    uint64_t *s = &seen[(h + i) & 4095];
    if (*s == key)
      return false;
    if (*s == 0) {
      *s = key;
      return true;
    }
  }
  return false;
}

static void emit(struct ld_thread *t, int kind, const char *title, uint16_t cls,
                 uint16_t other, const char *thread, const struct rb *b) {
  ADD(&nreports[kind], 1ul);
  pthread_mutex_lock(&graph_mu);
  conc_lockdep_sink_t fn = sink;
  void *user = sink_user;
  pthread_mutex_unlock(&graph_mu);
  conc_lockdep_report_t r = {
      kind, title, cname(cls), other ? cname(other) : NULL, thread, b->buf};
  t->busy = true;
  if (fn) {
    fn(&r, user);
  } else {
    ssize_t w = write(2, b->buf, b->len);
    (void)w;
  }
  t->busy = false;
  if (LOAD(&conc__ld_flags) & CONC_LOCKDEP_ABORT)
    abort();
}

/* The reports other than a cycle: a title, a sentence, where it happened,
 * and where the other lock was taken. */
static void report(struct ld_thread *t, int kind, const char *title,
                   uint16_t cls, uint16_t other, const void *other_site,
                   const char *what) {
  pthread_mutex_lock(&graph_mu);
  bool first = first_time(kind, cls, other);
  pthread_mutex_unlock(&graph_mu);
  if (!first)
    return;
  static struct rb b; /* under rep_mu: too big for a small stack */
  static pthread_mutex_t rep_mu = PTHREAD_MUTEX_INITIALIZER;
  char thread[48], where[160];
  void *bt[LD_BT];
  t->busy = true;
  thread_label(thread, sizeof thread);
  int n = grab_frames(bt, 2);
  pthread_mutex_lock(&rep_mu);
  b.len = 0;
  rb_add(&b, "libconc lockdep: %s\n  thread \"%s\" (tid %d) %s, at:\n", title,
         thread, (int)conc__gettid(), what);
  rb_frames(&b, bt, n);
  if (other) {
    conc__ld_site_name(other_site, where, sizeof where);
    rb_add(&b, "  \"%s\" (%s) was taken at %s\n", cname(other), ctype(other),
           where);
  }
  t->busy = false;
  emit(t, kind, title, cls, other, thread, &b);
  pthread_mutex_unlock(&rep_mu);
}

/* ------------------------------------------------------ the graph */

static uint32_t edge_hash(uint32_t key) {
  return hash_ptr((void *)(uintptr_t)key);
}

static bool edge_known(uint32_t key) {
  uint32_t h = edge_hash(key);
  for (uint32_t i = 0; i < LD_EDGE_SLOTS; i++) {
    uint32_t k = ACQ(&edge_key[(h + i) & (LD_EDGE_SLOTS - 1)]);
    if (k == key)
      return true;
    if (k == 0)
      return false;
  }
  return true; /* full: nothing more is learnt */
}

/* Under graph_mu: the edge index of key, or -1. */
static int64_t edge_index(uint32_t key) {
  uint32_t h = edge_hash(key);
  for (uint32_t i = 0; i < LD_EDGE_SLOTS; i++) {
    uint32_t s = (h + i) & (LD_EDGE_SLOTS - 1);
    if (edge_key[s] == key)
      return edge_val[s] & LD_BAD ? -1 : (int64_t)edge_val[s];
    if (edge_key[s] == 0)
      return -1;
  }
  return -1;
}

static void edge_insert(uint32_t key, uint32_t val) {
  uint32_t h = edge_hash(key);
  for (uint32_t i = 0; i < LD_EDGE_SLOTS; i++) {
    uint32_t s = (h + i) & (LD_EDGE_SLOTS - 1);
    if (edge_key[s] == 0) {
      edge_val[s] = val;
      REL(&edge_key[s], key);
      return;
    }
  }
}

/* Breadth-first from `from` to `to` over the edges; fills path[0..] with
 * the classes from..to and returns its length, or 0. Under graph_mu. */
static int find_path(uint16_t from, uint16_t to, uint16_t *path, int max) {
  uint32_t n = LOAD(&nclasses) + 1u;
  uint16_t *parent = calloc(n, sizeof *parent);
  uint16_t *queue = malloc(n * sizeof *queue);
  int len = 0;
  if (!parent || !queue)
    goto out;
  uint32_t head = 0, tail = 0;
  queue[tail++] = from;
  parent[from] = from;
  while (head < tail && !parent[to]) {
    struct ld_class *c = &classes[queue[head++]];
    for (uint32_t i = 0; i < c->nout; i++)
      if (!parent[c->out[i]]) {
        parent[c->out[i]] = (uint16_t)(c - classes);
        queue[tail++] = c->out[i];
      }
  }
  if (!parent[to])
    goto out;
  for (uint16_t c = to;; c = parent[c]) {
    len++;
    if (c == from)
      break;
  }
  if (len > max)
    len = max;
  int i = len;
  for (uint16_t c = to; i > 0; c = parent[c])
    path[--i] = c;
out:
  free(parent);
  free(queue);
  return len;
}

static bool add_out(struct ld_class *c, uint16_t to) {
  if (c->nout == c->capout) {
    uint32_t cap = c->capout ? c->capout * 2 : 4;
    uint16_t *p = realloc(c->out, cap * sizeof *p);
    if (!p)
      return false;
    c->out = p;
    c->capout = cap;
  }
  c->out[c->nout++] = to;
  return true;
}

/* Under graph_mu: a new edge from -> to, with where it was seen. */
static void edge_add(const struct ld_entry *held, uint16_t to,
                     const char *thread, void *const *bt, int nbt) {
  uint32_t n = LOAD(&nedges);
  struct ld_edge *e = n < LD_MAX_EDGES ? calloc(1, sizeof *e) : NULL;
  if (!e || !add_out(&classes[held->cls], to)) {
    free(e);
    return;
  }
  e->from = held->cls;
  e->to = to;
  e->held_site = held->site;
  snprintf(e->thread, sizeof e->thread, "%s", thread);
  e->nbt = nbt;
  memcpy(e->bt, bt, (size_t)nbt * sizeof *bt);
  edges[n] = e;
  REL(&nedges, n + 1u);
  edge_insert((uint32_t)held->cls << 16 | to, n);
}

static void report_cycle(struct ld_thread *t, const struct ld_entry *held,
                         uint16_t cls, const uint16_t *path, int len,
                         const char *thread, void *const *bt, int nbt) {
  static struct rb b;
  static pthread_mutex_t cyc_mu = PTHREAD_MUTEX_INITIALIZER;
  const char *title = "lock-order inversion (possible deadlock)";
  char where[160];
  pthread_mutex_lock(&cyc_mu);
  b.len = 0;
  conc__ld_site_name(held->site, where, sizeof where);
  rb_add(&b,
         "libconc lockdep: %s\n"
         "  thread \"%s\" (tid %d) takes \"%s\" (%s) while it holds \"%s\" "
         "(%s), taken at %s; it takes \"%s\" at:\n",
         title, thread, (int)conc__gettid(), cname(cls), ctype(cls),
         cname(held->cls), ctype(held->cls), where, cname(cls));
  rb_frames(&b, bt, nbt);
  rb_add(&b, "  the opposite order was recorded before:\n");
  pthread_mutex_lock(&graph_mu);
  for (int i = 0; i + 1 < len; i++) {
    int64_t k = edge_index((uint32_t)path[i] << 16 | path[i + 1]);
    if (k < 0)
      continue;
    const struct ld_edge *e = edges[k];
    conc__ld_site_name(e->held_site, where, sizeof where);
    rb_add(&b,
           "    thread \"%s\" took \"%s\" while it held \"%s\" (taken at "
           "%s), at:\n",
           e->thread, cname(e->to), cname(e->from), where);
    rb_frames(&b, e->bt, e->nbt);
  }
  pthread_mutex_unlock(&graph_mu);
  rb_add(&b, "  two threads taking these locks in these orders can each wait "
             "for the other for ever.\n");
  emit(t, CONC_LOCKDEP_CYCLE, title, cls, held->cls, thread, &b);
  pthread_mutex_unlock(&cyc_mu);
}

/* A blocking acquisition of cls while `held` is held, the edge unknown. */
static void new_order(struct ld_thread *t, const struct ld_entry *held,
                      uint16_t cls) {
  char thread[48];
  void *bt[LD_BT];
  uint16_t path[64];
  t->busy = true;
  thread_label(thread, sizeof thread);
  int nbt = grab_frames(bt, 3);
  t->busy = false;
  uint32_t key = (uint32_t)held->cls << 16 | cls;
  pthread_mutex_lock(&graph_mu);
  if (edge_known(key)) {
    pthread_mutex_unlock(&graph_mu);
    return;
  }
  int len = find_path(cls, held->cls, path, 64);
  if (len)
    edge_insert(key, LD_BAD); /* reported once, and kept out of the graph */
  else
    edge_add(held, cls, thread, bt, nbt);
  pthread_mutex_unlock(&graph_mu);
  if (len)
    report_cycle(t, held, cls, path, len, thread, bt, nbt);
}

/* ------------------------------------------------------ the hooks */

static bool lock_like(uint8_t type) {
  return type == CONC__LD_LOCK || type == CONC__LD_AIO_LOCK;
}

static void check_order(struct ld_thread *t, const void *obj, uint16_t cls,
                        uint8_t type, const void *ctx) {
  int d = LOAD(&t->depth);
  for (int i = 0; i < d; i++) {
    const struct ld_entry *e = &t->e[i];
    if (e->state != E_HELD || e->ctx != ctx)
      continue;
    if (e->obj == obj && lock_like(type)) {
      char what[400];
      snprintf(what, sizeof what,
               "takes \"%s\" (%s), which it already holds: it waits for "
               "itself for ever unless another thread releases it",
               cname(cls), ctype(cls));
      report(t, CONC_LOCKDEP_SELF_DEADLOCK, "re-acquiring a held lock", cls,
             cls, e->site, what);
      continue;
    }
    if (e->cls != cls && !edge_known((uint32_t)e->cls << 16 | cls))
      new_order(t, e, cls);
  }
}

void conc__ld_acquire_begin(conc__ld_acq_t *a, const void *obj, uint32_t flags,
                            enum conc__ld_type type, enum conc__ld_how how,
                            const void *site) {
  a->thr = NULL;
  struct ld_thread *t = self();
  if (!t)
    return;
  take_mail(t);
  uint16_t cls = class_of(obj, flags, (uint8_t)type);
  if (!cls)
    return;
  const void *ctx =
      type == CONC__LD_AIO_LOCK ? (const void *)conc_aio_current_task() : NULL;
  if (how == CONC__LD_BLOCK) {
    tls_from = site;
    check_order(t, obj, cls, (uint8_t)type, ctx);
    tls_from = NULL;
  }
  int d = LOAD(&t->depth);
  if (d >= LD_DEPTH)
    return; /* too deep to follow */
  struct ld_entry *e = &t->e[d];
  e->cls = cls;
  e->type = (uint8_t)type;
  e->pshared = (flags & CONC__SYNC_PSHARED) != 0;
  e->ctx = ctx;
  e->site = site;
  STORE(&e->state, (uint32_t)E_PENDING);
  STORE(&e->obj, obj);
  STORE(&t->depth, d + 1);
  *a = (conc__ld_acq_t){
      .thr = t, .obj = obj, .ctx = ctx, .cls = cls, .type = (uint8_t)type};
}

void conc__ld_acquire_wait(conc__ld_acq_t *a) {
  struct ld_thread *t = a->thr;
  if (!t)
    return;
  a->t0 = conc__now_ns();
  if (a->type != CONC__LD_AIO_LOCK && conc_loop_running()) {
    char what[400];
    snprintf(what, sizeof what,
             "runs an event loop and blocks on \"%s\" (%s), which another "
             "thread holds: every task of the loop waits too",
             cname(a->cls), ctype(a->cls));
    report(t, CONC_LOCKDEP_LOOP_BLOCK, "a loop thread blocks on a lock", a->cls,
           0, NULL, what);
  }
}

void conc__ld_acquire_end(conc__ld_acq_t *a, bool ok) {
  struct ld_thread *t = a->thr;
  if (!t)
    return;
  struct ld_class *c = &classes[a->cls];
  if (ok)
    ADD(&c->acq, (uint64_t)1);
  if (a->t0) {
    ADD(&c->contended, (uint64_t)1);
    ADD(&c->wait_ns, conc__now_ns() - a->t0);
  }
  int k = pending_entry(t, a->obj, a->ctx);
  if (k < 0)
    return;
  if (ok && a->type != CONC__LD_SEM)
    STORE(&t->e[k].state, (uint32_t)E_HELD);
  else
    remove_at(t, k);
}

static void forget_held(struct ld_thread *t, const void *obj, uint8_t type) {
  int k = find_entry(t, obj, E_HELD, false);
  if (k >= 0)
    remove_at(t, k);
  else if (type != CONC__LD_RLOCK)
    post_foreign_release(t, obj);
}

void conc__ld_release(const void *obj, enum conc__ld_type type) {
  if (type == CONC__LD_SEM)
    return;
  struct ld_thread *t = self();
  if (!t)
    return;
  take_mail(t);
  forget_held(t, obj, (uint8_t)type);
}

void conc__ld_bad_release(const void *obj, uint32_t flags,
                          enum conc__ld_type type) {
  struct ld_thread *t = self();
  if (!t)
    return;
  uint16_t cls = class_of(obj, flags, (uint8_t)type);
  char what[400];
  snprintf(what, sizeof what,
           "releases \"%s\" (%s), which another thread holds (CONC_EPERM)",
           cname(cls), ctype(cls));
  report(t, CONC_LOCKDEP_BAD_RELEASE,
         "release of a lock held by another thread", cls, 0, NULL, what);
}

void conc__ld_destroy(const void *obj, uint32_t flags, enum conc__ld_type type,
                      bool held) {
  struct ld_thread *t = self();
  if (!t)
    return;
  take_mail(t);
  uint16_t cls = class_of(obj, flags, (uint8_t)type);
  if (held) {
    char what[400];
    snprintf(what, sizeof what,
             "destroys \"%s\" (%s) while it is held: its holder will release "
             "freed memory",
             cname(cls), ctype(cls));
    report(t, CONC_LOCKDEP_DESTROY_HELD, "destroying a held lock", cls, 0, NULL,
           what);
    forget_held(t, obj, (uint8_t)type);
  }
  pthread_mutex_lock(&graph_mu);
  addr_remove(obj);
  pthread_mutex_unlock(&graph_mu);
}

void conc__ld_cond_wait(const void *lock_obj, uint32_t flags,
                        enum conc__ld_type type) {
  struct ld_thread *t = self();
  if (!t)
    return;
  take_mail(t);
  uint16_t cls = class_of(lock_obj, flags, (uint8_t)type);
  int d = LOAD(&t->depth);
  char what[400];
  for (int i = 0; i < d; i++) {
    const struct ld_entry *e = &t->e[i];
    if (e->state != E_HELD || e->ctx || e->obj == lock_obj)
      continue;
    snprintf(what, sizeof what,
             "waits on a Condition over \"%s\" while it holds \"%s\" (%s): "
             "a notifier that needs \"%s\" never comes",
             cname(cls), cname(e->cls), ctype(e->cls), cname(e->cls));
    report(t, CONC_LOCKDEP_WAIT_HOLDING,
           "waiting on a Condition while holding another lock", cls, e->cls,
           e->site, what);
    break;
  }
  if (conc_loop_running()) {
    snprintf(what, sizeof what,
             "runs an event loop and waits on a Condition over \"%s\": every "
             "task of the loop waits too",
             cname(cls));
    report(t, CONC_LOCKDEP_LOOP_BLOCK, "a loop thread blocks on a lock", cls, 0,
           NULL, what);
  }
}

/* ------------------------------------------------------ queries */

int conc_lockdep_classes(conc_lockdep_class_t *out, size_t max, size_t *count) {
  if (!count || (!out && max))
    return CONC_EINVAL;
  uint32_t n = ACQ(&nclasses);
  for (uint32_t i = 1; i <= n && i - 1 < max; i++) {
    struct ld_class *c = &classes[i];
    out[i - 1] = (conc_lockdep_class_t){i,
                                        c->name,
                                        type_name[c->type],
                                        LOAD(&c->acq),
                                        LOAD(&c->contended),
                                        LOAD(&c->wait_ns)};
  }
  *count = n;
  return 0;
}

int conc_lockdep_edges(conc_lockdep_edge_t *out, size_t max, size_t *count) {
  if (!count || (!out && max))
    return CONC_EINVAL;
  uint32_t n = ACQ(&nedges);
  for (uint32_t i = 0; i < n && i < max; i++)
    out[i] = (conc_lockdep_edge_t){edges[i]->from, edges[i]->to};
  *count = n;
  return 0;
}

int conc_lockdep_dump(int fd) {
  if (fd < 0)
    return CONC_EINVAL;
  FILE *f = fdopen(dup(fd), "w");
  if (!f)
    return CONC_EINVAL;
  uint32_t n = ACQ(&nclasses), ne = ACQ(&nedges);
  fprintf(f,
          "libconc lockdep: %u lock classes, %u order edges, %lu reports\n"
          "  %5s %12s %10s %10s  %-16s %s\n",
          n, ne, conc_lockdep_reports(0), "class", "acquired", "contended",
          "wait ms", "type", "name");
  for (uint32_t i = 1; i <= n; i++) {
    struct ld_class *c = &classes[i];
    fprintf(f, "  %5u %12" PRIu64 " %10" PRIu64 " %10.3f  %-16s %s\n", i,
            LOAD(&c->acq), LOAD(&c->contended), (double)LOAD(&c->wait_ns) / 1e6,
            type_name[c->type], c->name);
  }
  if (ne)
    fprintf(f, "  order edges (held -> taken):\n");
  for (uint32_t i = 0; i < ne; i++)
    fprintf(f, "    \"%s\" -> \"%s\"\n", cname(edges[i]->from),
            cname(edges[i]->to));
  fclose(f);
  return 0;
}
