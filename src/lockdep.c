/*
 * The lock-order checker (conc/lockdep.h, docs/lockdep.md): lock classes,
 * per-thread held stacks, the order graph and the hooks the sync family
 * calls. The reports, the report sink and the queries are in
 * lockdep_report.c; lockdep-int.h holds what the two files share.
 *
 * Locking protocol:
 * - conc__lockdep_graph_mu (a pthread mutex, never a lock the checker
 *   follows) guards class creation, the class-key table, adjacency lists,
 *   edge inserts and address-table writes. The hot path (an edge that
 *   exists, a class already known) reads the edge and address tables
 *   without it: slots are published with a release store of their key
 *   after their value, and classes and edges with a release store of
 *   their count (which the queries load with acquire).
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
#define LD_BAD 0x80000000u /* edge slot: a reported inversion, not an edge */
#define LD_TOMB ((uintptr_t)1)
/* The bit of conc__sync_divert (conc/sync.h) that is the checker's. */
#define LD_DIVERT 0x80u

enum { E_PENDING = 1, E_HELD = 2 };

const char *const conc__lockdep_type_name[CONC__LD_TYPES] = {
    "Lock", "RLock", "Semaphore", "BoundedSemaphore", "aio.Lock"};

uint32_t conc__ld_flags; /* atomic: CONC_LOCKDEP_*; 0 off */
pthread_mutex_t conc__lockdep_graph_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
struct conc__lockdep_class conc__lockdep_classes[LD_MAX_CLASSES];
uint32_t conc__lockdep_nclasses; /* atomic; ids 1..n */
static uint16_t class_keys[LD_KEY_SLOTS];
static struct {
  uintptr_t key; /* atomic */
  uint32_t cls;  /* atomic */
} addr_tab[LD_ADDR_SLOTS];
static uint32_t edge_key[LD_EDGE_SLOTS]; /* atomic: from << 16 | to */
static uint32_t edge_val[LD_EDGE_SLOTS]; /* edge index | LD_BAD */
struct conc__lockdep_edge *conc__lockdep_edges[LD_MAX_EDGES];
uint32_t conc__lockdep_nedges; /* atomic */
static struct conc__lockdep_thread *threads;
static pthread_key_t thread_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static __thread struct conc__lockdep_thread *tls_self
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
static void remove_at(struct conc__lockdep_thread *t, int i);

static void ld_child(void) {
  pthread_mutex_init(&conc__lockdep_graph_mu, NULL);
  pthread_mutex_init(&reg_mu, NULL);
  for (struct conc__lockdep_thread *t = threads; t; t = t->next) {
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
  struct conc__lockdep_thread *t = p;
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

/* ------------------------------------------------------ per thread */

static struct conc__lockdep_thread *claim_thread(void) {
  pthread_once(&once, ld_once);
  pthread_mutex_lock(&reg_mu);
  struct conc__lockdep_thread *t = threads;
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
static struct conc__lockdep_thread *self(void) {
  struct conc__lockdep_thread *t = tls_self;
  if (__builtin_expect(t == NULL, 0))
    t = claim_thread();
  return t && !t->busy ? t : NULL;
}

static void remove_at(struct conc__lockdep_thread *t, int i) {
  int d = LOAD(&t->depth);
  for (int k = i; k + 1 < d; k++) {
    struct conc__lockdep_entry *a = &t->e[k], *b = &t->e[k + 1];
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
static int find_entry(struct conc__lockdep_thread *t, const void *obj,
                      uint32_t state, bool oldest) {
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
static int pending_entry(struct conc__lockdep_thread *t, const void *obj,
                         const void *ctx) {
  for (int i = LOAD(&t->depth) - 1; i >= 0; i--)
    if (t->e[i].obj == obj && t->e[i].state == E_PENDING && t->e[i].ctx == ctx)
      return i;
  return -1;
}

/* Another thread released locks this one held: forget them. */
static void take_mail(struct conc__lockdep_thread *t) {
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
static void post_foreign_release(struct conc__lockdep_thread *me,
                                 const void *obj) {
  pthread_mutex_lock(&reg_mu);
  for (struct conc__lockdep_thread *t = threads; t; t = t->next) {
    if (t == me || !t->used)
      continue;
    int d = LOAD(&t->depth);
    for (int i = 0; i < d && i < CONC__LOCKDEP_DEPTH; i++) {
      if (LOAD(&t->e[i].obj) != obj || LOAD(&t->e[i].state) != E_HELD)
        continue;
      pthread_mutex_lock(&t->mbox_mu);
      if (t->nmbox < CONC__LOCKDEP_MBOX)
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

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* Under conc__lockdep_graph_mu. 0 when the table is full. */
static uint16_t new_class(char *name, const void *site, uint8_t type) {
  uint32_t id = LOAD(&conc__lockdep_nclasses) + 1u;
  if (!name || id >= LD_MAX_CLASSES) {
    free(name);
    return 0;
  }
  struct conc__lockdep_class *c = &conc__lockdep_classes[id];
  c->name = name;
  c->site = site;
  c->type = type;
  c->by_site = site != NULL;
  REL(&conc__lockdep_nclasses, id);
  return (uint16_t)id;
}

/* The class of a name, or of an init site; made on first use. Under
 * conc__lockdep_graph_mu. */
static uint16_t keyed_class(const char *name, const void *site, uint8_t type) {
  uint32_t h = name ? hash_str(name) : conc__lockdep_hash_ptr(site) ^ type;
  for (uint32_t i = 0; i < LD_KEY_SLOTS; i++) {
    uint16_t *slot = &class_keys[(h + i) & (LD_KEY_SLOTS - 1)];
    if (*slot == 0) {
      char where[160];
      if (!name)
        conc__ld_site_name(site, where, sizeof where);
      uint16_t id = new_class(
          name ? strdup(name)
               : dup_printf("%s@%s", conc__lockdep_type_name[type], where),
          name ? NULL : site, type);
      *slot = id;
      return id;
    }
    struct conc__lockdep_class *c = &conc__lockdep_classes[*slot];
    if (name ? !c->by_site && strcmp(c->name, name) == 0
             : c->by_site && c->site == site && c->type == type)
      return *slot;
  }
  return 0;
}

static uint32_t addr_lookup(const void *obj) {
  uint32_t h = conc__lockdep_hash_ptr(obj);
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

/* Under conc__lockdep_graph_mu. */
static void addr_put(const void *obj, uint16_t cls) {
  uint32_t h = conc__lockdep_hash_ptr(obj);
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
  uint32_t h = conc__lockdep_hash_ptr(obj);
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
                   : dup_printf("%s@%p", conc__lockdep_type_name[type], obj);
  pthread_mutex_lock(&conc__lockdep_graph_mu);
  uint16_t id = (uint16_t)addr_lookup(obj);
  if (id == 0) {
    id = new_class(name, NULL, type);
    name = NULL;
    if (id)
      addr_put(obj, id);
  }
  pthread_mutex_unlock(&conc__lockdep_graph_mu);
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
  struct conc__lockdep_thread *t = self();
  if (t)
    for (int k; (k = find_entry(t, obj, E_HELD, false)) >= 0;)
      remove_at(t, k);
  pthread_mutex_lock(&conc__lockdep_graph_mu);
  uint16_t id = keyed_class(name, site, (uint8_t)type);
  /* The address table too, for conc_lockdep_class_of and destroy. */
  if (id)
    addr_put(obj, id);
  if (flags && !(*flags & CONC__SYNC_PSHARED) && id)
    *flags = (*flags & 0xffffu) | ((uint32_t)id << CONC__LD_CLASS_SHIFT);
  pthread_mutex_unlock(&conc__lockdep_graph_mu);
}

unsigned conc_lockdep_class_of(const void *lock) {
  return lock ? addr_lookup(lock) : 0;
}

/* ------------------------------------------------------ the graph */

static uint32_t edge_hash(uint32_t key) {
  return conc__lockdep_hash_ptr((void *)(uintptr_t)key);
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

/* Under conc__lockdep_graph_mu: the edge index of key, or -1. */
int64_t conc__lockdep_edge_index(uint32_t key) {
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
 * the classes from..to and returns its length, or 0. Under conc__lockdep_graph_mu. */
static int find_path(uint16_t from, uint16_t to, uint16_t *path, int max) {
  uint32_t n = LOAD(&conc__lockdep_nclasses) + 1u;
  uint16_t *parent = calloc(n, sizeof *parent);
  uint16_t *queue = malloc(n * sizeof *queue);
  int len = 0;
  if (!parent || !queue)
    goto out;
  uint32_t head = 0, tail = 0;
  queue[tail++] = from;
  parent[from] = from;
  while (head < tail && !parent[to]) {
    struct conc__lockdep_class *c = &conc__lockdep_classes[queue[head++]];
    for (uint32_t i = 0; i < c->nout; i++)
      if (!parent[c->out[i]]) {
        parent[c->out[i]] = (uint16_t)(c - conc__lockdep_classes);
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

static bool add_out(struct conc__lockdep_class *c, uint16_t to) {
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

/* Under conc__lockdep_graph_mu: a new edge from -> to, with where it was seen. */
static void edge_add(const struct conc__lockdep_entry *held, uint16_t to,
                     const char *thread, void *const *bt, int nbt) {
  uint32_t n = LOAD(&conc__lockdep_nedges);
  struct conc__lockdep_edge *e = n < LD_MAX_EDGES ? calloc(1, sizeof *e) : NULL;
  if (!e || !add_out(&conc__lockdep_classes[held->cls], to)) {
    free(e);
    return;
  }
  e->from = held->cls;
  e->to = to;
  e->held_site = held->site;
  snprintf(e->thread, sizeof e->thread, "%s", thread);
  e->nbt = nbt;
  memcpy(e->bt, bt, (size_t)nbt * sizeof *bt);
  conc__lockdep_edges[n] = e;
  REL(&conc__lockdep_nedges, n + 1u);
  edge_insert((uint32_t)held->cls << 16 | to, n);
}

/* A blocking acquisition of cls while `held` is held, the edge unknown. */
static void new_order(struct conc__lockdep_thread *t,
                      const struct conc__lockdep_entry *held, uint16_t cls) {
  char thread[48];
  void *bt[CONC__LOCKDEP_BT];
  uint16_t path[64];
  t->busy = true;
  conc__lockdep_thread_label(thread, sizeof thread);
  int nbt = conc__lockdep_grab_frames(bt, 3);
  t->busy = false;
  uint32_t key = (uint32_t)held->cls << 16 | cls;
  pthread_mutex_lock(&conc__lockdep_graph_mu);
  if (edge_known(key)) {
    pthread_mutex_unlock(&conc__lockdep_graph_mu);
    return;
  }
  int len = find_path(cls, held->cls, path, 64);
  if (len)
    edge_insert(key, LD_BAD); /* reported once, and kept out of the graph */
  else
    edge_add(held, cls, thread, bt, nbt);
  pthread_mutex_unlock(&conc__lockdep_graph_mu);
  if (len)
    conc__lockdep_report_cycle(t, held, cls, path, len, thread, bt, nbt);
}

/* ------------------------------------------------------ the hooks */

static bool lock_like(uint8_t type) {
  return type == CONC__LD_LOCK || type == CONC__LD_AIO_LOCK;
}

static void check_order(struct conc__lockdep_thread *t, const void *obj,
                        uint16_t cls, uint8_t type, const void *ctx) {
  int d = LOAD(&t->depth);
  for (int i = 0; i < d; i++) {
    const struct conc__lockdep_entry *e = &t->e[i];
    if (e->state != E_HELD || e->ctx != ctx)
      continue;
    if (e->obj == obj && lock_like(type)) {
      char what[400];
      snprintf(what, sizeof what,
               "takes \"%s\" (%s), which it already holds: it waits for "
               "itself for ever unless another thread releases it",
               conc__lockdep_cname(cls), conc__lockdep_ctype(cls));
      conc__lockdep_report(t, CONC_LOCKDEP_SELF_DEADLOCK,
                           "re-acquiring a held lock", cls, cls, e->site, what);
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
  struct conc__lockdep_thread *t = self();
  if (!t)
    return;
  take_mail(t);
  uint16_t cls = class_of(obj, flags, (uint8_t)type);
  if (!cls)
    return;
  const void *ctx =
      type == CONC__LD_AIO_LOCK ? (const void *)conc_aio_current_task() : NULL;
  if (how == CONC__LD_BLOCK) {
    conc__lockdep_from = site;
    check_order(t, obj, cls, (uint8_t)type, ctx);
    conc__lockdep_from = NULL;
  }
  int d = LOAD(&t->depth);
  if (d >= CONC__LOCKDEP_DEPTH)
    return; /* too deep to follow */
  struct conc__lockdep_entry *e = &t->e[d];
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
  struct conc__lockdep_thread *t = a->thr;
  if (!t)
    return;
  a->t0 = conc__now_ns();
  if (a->type != CONC__LD_AIO_LOCK && conc_loop_running()) {
    char what[400];
    snprintf(what, sizeof what,
             "runs an event loop and blocks on \"%s\" (%s), which another "
             "thread holds: every task of the loop waits too",
             conc__lockdep_cname(a->cls), conc__lockdep_ctype(a->cls));
    conc__lockdep_report(t, CONC_LOCKDEP_LOOP_BLOCK,
                         "a loop thread blocks on a lock", a->cls, 0, NULL,
                         what);
  }
}

void conc__ld_acquire_end(conc__ld_acq_t *a, bool ok) {
  struct conc__lockdep_thread *t = a->thr;
  if (!t)
    return;
  struct conc__lockdep_class *c = &conc__lockdep_classes[a->cls];
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

static void forget_held(struct conc__lockdep_thread *t, const void *obj,
                        uint8_t type) {
  int k = find_entry(t, obj, E_HELD, false);
  if (k >= 0)
    remove_at(t, k);
  else if (type != CONC__LD_RLOCK)
    post_foreign_release(t, obj);
}

void conc__ld_release(const void *obj, enum conc__ld_type type) {
  if (type == CONC__LD_SEM)
    return;
  struct conc__lockdep_thread *t = self();
  if (!t)
    return;
  take_mail(t);
  forget_held(t, obj, (uint8_t)type);
}

void conc__ld_bad_release(const void *obj, uint32_t flags,
                          enum conc__ld_type type) {
  struct conc__lockdep_thread *t = self();
  if (!t)
    return;
  uint16_t cls = class_of(obj, flags, (uint8_t)type);
  char what[400];
  snprintf(what, sizeof what,
           "releases \"%s\" (%s), which another thread holds (CONC_EPERM)",
           conc__lockdep_cname(cls), conc__lockdep_ctype(cls));
  conc__lockdep_report(t, CONC_LOCKDEP_BAD_RELEASE,
                       "release of a lock held by another thread", cls, 0, NULL,
                       what);
}

void conc__ld_destroy(const void *obj, uint32_t flags, enum conc__ld_type type,
                      bool held) {
  struct conc__lockdep_thread *t = self();
  if (!t)
    return;
  take_mail(t);
  uint16_t cls = class_of(obj, flags, (uint8_t)type);
  if (held) {
    char what[400];
    snprintf(what, sizeof what,
             "destroys \"%s\" (%s) while it is held: its holder will release "
             "freed memory",
             conc__lockdep_cname(cls), conc__lockdep_ctype(cls));
    conc__lockdep_report(t, CONC_LOCKDEP_DESTROY_HELD, "destroying a held lock",
                         cls, 0, NULL, what);
    forget_held(t, obj, (uint8_t)type);
  }
  pthread_mutex_lock(&conc__lockdep_graph_mu);
  addr_remove(obj);
  pthread_mutex_unlock(&conc__lockdep_graph_mu);
}

void conc__ld_cond_wait(const void *lock_obj, uint32_t flags,
                        enum conc__ld_type type) {
  struct conc__lockdep_thread *t = self();
  if (!t)
    return;
  take_mail(t);
  uint16_t cls = class_of(lock_obj, flags, (uint8_t)type);
  int d = LOAD(&t->depth);
  char what[400];
  for (int i = 0; i < d; i++) {
    const struct conc__lockdep_entry *e = &t->e[i];
    if (e->state != E_HELD || e->ctx || e->obj == lock_obj)
      continue;
    snprintf(what, sizeof what,
             "waits on a Condition over \"%s\" while it holds \"%s\" (%s): "
             "a notifier that needs \"%s\" never comes",
             conc__lockdep_cname(cls), conc__lockdep_cname(e->cls),
             conc__lockdep_ctype(e->cls), conc__lockdep_cname(e->cls));
    conc__lockdep_report(t, CONC_LOCKDEP_WAIT_HOLDING,
                         "waiting on a Condition while holding another lock",
                         cls, e->cls, e->site, what);
    break;
  }
  if (conc_loop_running()) {
    snprintf(what, sizeof what,
             "runs an event loop and waits on a Condition over \"%s\": every "
             "task of the loop waits too",
             conc__lockdep_cname(cls));
    conc__lockdep_report(t, CONC_LOCKDEP_LOOP_BLOCK,
                         "a loop thread blocks on a lock", cls, 0, NULL, what);
  }
}
