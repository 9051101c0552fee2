/*
 * Coroutine stacks: slots carved from large lazily committed mappings
 * (slabs), each slot a guard zone below its usable stack.
 *
 * Guard zones: MADV_GUARD_INSTALL (Linux 6.13+) marks the zone in the page
 * tables without splitting the mapping, so every stack can be guarded. Where
 * the kernel lacks it, mprotect(PROT_NONE) splits the mapping (two maps per
 * stack), so only `limit` slots get such a guard and later ones are canary
 * stacks: the top of the unguarded zone must stay zero, checked whenever the
 * coroutine switches away. A slot keeps its kind for life.
 *
 * Locking protocol: each thread caches free slots in its own lists (no lock:
 * the fast path of alloc/free makes no system call and takes no lock). The
 * global pool (size classes, slabs, free slots returned by caches that grew
 * too big or by exiting threads) is guarded by g_mu, which has fork handlers.
 * Slots handed to the global pool are decommitted (MADV_DONTNEED) first,
 * outside the lock, one madvise per run of adjacent slots.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conc/coro.h"
#include "coro-int.h"
#include "init-int.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CONC__HAVE_VALGRIND 1
#endif
#endif

#if defined(CONC_SANITIZER_address) || defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define CONC__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define CONC__ASAN 1
#endif
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

enum { CACHE_CLASSES = 4, CACHE_MAX = 64, CACHE_SPILL = 32, REFILL = 16 };
#define SLAB_BYTES ((size_t)64 << 20)
#define SLAB_MAX_SLOTS 256

typedef struct conc__slab {
  struct conc__slab *next;
  char *map;
  size_t len;
  unsigned nslots;
  unsigned carved;
  conc__stack_t desc[];
} slab_t;

typedef struct size_class {
  struct size_class *next;
  size_t slot;
  conc__stack_t *free;
  slab_t *slabs; /* newest first; only the first may have uncarved slots */
} size_class_t;

typedef struct tcache {
  size_t slot;
  conc__stack_t *head;
  unsigned n;
} tcache_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static size_class_t *g_classes;
static size_t g_nslabs;
static size_t g_guarded_mprot;
static size_t g_limit;
static int g_method = CONC__STACK_GUARD_MADV;
static size_t g_page;

#ifdef CONC__HAVE_VALGRIND
static bool g_valgrind; /* asked once: the question is a few instructions,
                           the answer never changes */
#endif

/* initial-exec: one %fs-relative access instead of a __tls_get_addr call
 * in the shared library (the fast path is a handful of instructions). */
static __thread tcache_t t_cache[CACHE_CLASSES]
    __attribute__((tls_model("initial-exec")));

static void fork_prepare(void) { pthread_mutex_lock(&g_mu); }
static void fork_parent(void) { pthread_mutex_unlock(&g_mu); }
/* The child's one thread is the one that took the lock in fork_prepare:
 * unlock it rather than re-initialise it held (TSan saw a re-initialised,
 * still-held mutex and reported a lock-order inversion in every child that
 * exits through the process registry after a coroutine had existed). */
static void fork_child(void) { pthread_mutex_unlock(&g_mu); }

static size_t default_limit(void) {
  const char *env = getenv("CONC_CORO_GUARD_LIMIT");
  if (env && *env)
    return (size_t)strtoull(env, NULL, 10);
  long maps = 65530;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  if (f) {
    if (fscanf(f, "%ld", &maps) != 1)
      maps = 65530;
    fclose(f);
  }
  return (size_t)(maps > 8 ? maps / 4 : 2);
}

/* Does MADV_GUARD_INSTALL work here? A kernel older than 6.13 refuses it;
 * an emulator (qemu-user) may accept and ignore it. Ask the kernel to read
 * a guarded page: it must fail with EFAULT. */
static int guard_method_probe(size_t page) {
  int method = CONC__STACK_GUARD_MPROT;
  char *m = mmap(NULL, page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int fds[2];
  if (m == MAP_FAILED)
    return method;
  if (madvise(m, page, MADV_GUARD_INSTALL) == 0 && pipe(fds) == 0) {
    if (write(fds[1], m, 1) < 0 && errno == EFAULT)
      method = CONC__STACK_GUARD_MADV;
    close(fds[0]);
    close(fds[1]);
  }
  munmap(m, page);
  return method;
}

static void global_init(void) {
#ifdef CONC__HAVE_VALGRIND
  g_valgrind = RUNNING_ON_VALGRIND != 0;
#endif
  g_method = guard_method_probe((size_t)sysconf(_SC_PAGESIZE));
  g_limit = default_limit();
  conc__atfork_register(fork_prepare, fork_parent, fork_child);
  /* last: a thread that sees g_page set sees everything above */
  __atomic_store_n(&g_page, (size_t)sysconf(_SC_PAGESIZE), __ATOMIC_RELEASE);
}

size_t conc_coro_set_guard_limit(size_t limit) {
  pthread_once(&g_once, global_init);
  pthread_mutex_lock(&g_mu);
  size_t old = g_limit;
  g_limit = limit;
  pthread_mutex_unlock(&g_mu);
  return old;
}

void conc__stack_force_method(int method) {
  pthread_once(&g_once, global_init);
  pthread_mutex_lock(&g_mu);
  g_method = method;
  pthread_mutex_unlock(&g_mu);
}

static size_class_t *class_get(size_t slot) {
  for (size_class_t *c = g_classes; c; c = c->next)
    if (c->slot == slot)
      return c;
  size_class_t *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->slot = slot;
  c->next = g_classes;
  g_classes = c;
  return c;
}

static slab_t *slab_new(size_t slot) {
  size_t n = SLAB_BYTES / slot;
  n = n < 1 ? 1 : n > SLAB_MAX_SLOTS ? SLAB_MAX_SLOTS : n;
  slab_t *sl = calloc(1, sizeof *sl + n * sizeof(conc__stack_t));
  if (!sl)
    return NULL;
  sl->len = n * slot;
  void *m =
      mmap(NULL, sl->len, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (m == MAP_FAILED) {
    free(sl);
    return NULL;
  }
#ifdef MADV_NOHUGEPAGE
  /* A huge page would commit 2 MiB for a coroutine that touches 4 KiB. */
  (void)madvise(m, sl->len, MADV_NOHUGEPAGE);
#endif
  sl->map = m;
  sl->nslots = (unsigned)n;
  g_nslabs++;
  return sl;
}

/* Give the slot its guard (or make it a canary slot). Called with g_mu. */
static void slot_guard(conc__stack_t *s) {
  if (g_method == CONC__STACK_GUARD_MADV) {
    if (madvise(s->base, CONC__STACK_GUARD, MADV_GUARD_INSTALL) == 0) {
      s->kind = CONC__STACK_GUARD_MADV;
      return;
    }
    g_method = CONC__STACK_GUARD_MPROT;
  }
  if (g_guarded_mprot < g_limit &&
      mprotect(s->base, CONC__STACK_GUARD, PROT_NONE) == 0) {
    g_guarded_mprot++;
    s->kind = CONC__STACK_GUARD_MPROT;
    return;
  }
  s->kind = CONC__STACK_CANARY;
}

/* Carve one new slot of class c. Called with g_mu. */
static conc__stack_t *slot_carve(size_class_t *c) {
  slab_t *sl = c->slabs;
  if (!sl || sl->carved == sl->nslots) {
    sl = slab_new(c->slot);
    if (!sl)
      return NULL;
    sl->next = c->slabs;
    c->slabs = sl;
  }
  conc__stack_t *s = &sl->desc[sl->carved];
  s->base = sl->map + (size_t)sl->carved * c->slot;
  sl->carved++;
  s->lo = s->base + CONC__STACK_GUARD;
  s->hi = s->base + c->slot;
  s->slab = sl;
  s->slot = c->slot;
  slot_guard(s);
  return s;
}

static tcache_t *cache_find_slow(size_t slot, bool create) {
  tcache_t *empty = NULL;
  for (int i = 0; i < CACHE_CLASSES; i++) {
    if (t_cache[i].slot == slot)
      return &t_cache[i];
    if (!empty && t_cache[i].n == 0)
      empty = &t_cache[i];
  }
  if (create && empty)
    empty->slot = slot;
  return create ? empty : NULL;
}

/* The thread's cache for this slot size (creating it when `create` and a
 * cache entry is free); most programs use one size, found first. */
static inline tcache_t *cache_find(size_t slot, bool create) {
  if (__builtin_expect(t_cache[0].slot == slot, 1))
    return &t_cache[0];
  return cache_find_slow(slot, create);
}

/* Take up to REFILL slots from the global pool into tc; returns one. */
static conc__stack_t *refill(size_t slot, tcache_t *tc) {
  pthread_once(&g_once, global_init);
  pthread_mutex_lock(&g_mu);
  size_class_t *c = class_get(slot);
  conc__stack_t *got = NULL;
  for (int i = 0; c && i < (tc ? REFILL : 1); i++) {
    conc__stack_t *s = c->free;
    if (s)
      c->free = s->next;
    else if (!(s = slot_carve(c)))
      break;
    if (!got) {
      got = s;
    } else {
      s->next = tc->head;
      tc->head = s;
      tc->n++;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return got;
}

static void tool_register(conc__stack_t *s) {
#ifdef CONC__HAVE_VALGRIND
  if (g_valgrind) {
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, s->hi);
    s->vg_registered = 1;
  }
#else
  (void)s;
#endif
}

static void tool_unregister(conc__stack_t *s) {
#ifdef CONC__HAVE_VALGRIND
  if (s->vg_registered) {
    VALGRIND_STACK_DEREGISTER(s->vg_id);
    s->vg_registered = 0;
  }
#endif
#ifdef CONC__ASAN
  /* A coroutine that finished never returned from its entry frame, whose
   * redzones would otherwise poison the next user of the slot. */
  __asan_unpoison_memory_region(s->lo, (size_t)(s->hi - s->lo));
#endif
  (void)s;
}

int conc__stack_alloc(size_t usable, conc__stack_t **out) {
  size_t page = __atomic_load_n(&g_page, __ATOMIC_ACQUIRE);
  if (!page) {
    pthread_once(&g_once, global_init);
    page = g_page;
  }
  size_t slot = ((usable + page - 1) & ~(page - 1)) + CONC__STACK_GUARD;
  tcache_t *tc = cache_find(slot, true);
  conc__stack_t *s = NULL;
  if (tc && tc->head) {
    s = tc->head;
    tc->head = s->next;
    tc->n--;
  } else {
    s = refill(slot, tc);
    if (!s)
      return -ENOMEM;
  }
  s->next = NULL;
  tool_register(s);
  *out = s;
  return 0;
}

static int by_address(const void *a, const void *b) {
  const conc__stack_t *x = *(conc__stack_t *const *)a;
  const conc__stack_t *y = *(conc__stack_t *const *)b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Decommit up to 64 slots of a chain with one madvise per run of adjacent
 * slots: a run spans the guard zones between its stacks, which keeps them
 * (a MADV_GUARD_INSTALL guard survives MADV_DONTNEED, an mprotect one is
 * PROT_NONE either way, and a canary zone must read zero anyway). Tasks
 * free stacks mostly in address order, so a spill of 32 is a few calls
 * instead of 32 (each a TLB shootdown). Returns the rest of the chain. */
static conc__stack_t *decommit_some(conc__stack_t *chain) {
  conc__stack_t *v[64];
  size_t n = 0;
  for (; chain && n < 64; chain = chain->next)
    v[n++] = chain;
  qsort(v, n, sizeof *v, by_address);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    /* mprotect guards are separate mappings; some emulators (qemu-user)
     * skip a DONTNEED that spans them: those slots go one at a time. */
    while (j + 1 < n && v[j + 1]->slab == v[j]->slab &&
           v[j + 1]->base == v[j]->hi &&
           v[j]->kind != CONC__STACK_GUARD_MPROT &&
           v[j + 1]->kind != CONC__STACK_GUARD_MPROT)
      j++;
    (void)madvise(v[i]->lo, (size_t)(v[j]->hi - v[i]->lo), MADV_DONTNEED);
    i = j + 1;
  }
  return chain;
}

/* Decommit, then hand a chain of slots to the global pool. */
static void give_global(conc__stack_t *chain) {
  conc__stack_t *last = NULL;
  size_t slot = chain ? chain->slot : 0;
  for (conc__stack_t *rest = chain; rest;)
    rest = decommit_some(rest);
  for (conc__stack_t *s = chain; s; s = s->next)
    last = s;
  if (!chain)
    return;
  pthread_mutex_lock(&g_mu);
  size_class_t *c = class_get(slot); /* exists: the slots came from it */
  last->next = c->free;
  c->free = chain;
  pthread_mutex_unlock(&g_mu);
}

void conc__stack_free(conc__stack_t *s, bool mine) {
  tool_unregister(s);
  tcache_t *tc = mine ? cache_find(s->slot, true) : NULL;
  if (!tc) {
    s->next = NULL;
    give_global(s);
    return;
  }
  s->next = tc->head;
  tc->head = s;
  if (++tc->n <= CACHE_MAX)
    return;
  /* Spill the older half: a thread that freed many keeps only a few warm. */
  conc__stack_t *keep = tc->head;
  for (int i = 1; i < CACHE_MAX - CACHE_SPILL; i++)
    keep = keep->next;
  conc__stack_t *spill = keep->next;
  keep->next = NULL;
  tc->n = CACHE_MAX - CACHE_SPILL;
  give_global(spill);
}

bool conc__stack_guard_hit(const conc__stack_t *s, const void *addr) {
  const char *a = addr;
  return s->kind != CONC__STACK_CANARY && a >= s->base && a < s->lo;
}

void conc__stack_thread_exit(void) {
  for (int i = 0; i < CACHE_CLASSES; i++) {
    conc__stack_t *chain = t_cache[i].head;
    t_cache[i].head = NULL;
    t_cache[i].n = 0;
    t_cache[i].slot = 0;
    give_global(chain);
  }
}

void conc__stack_stats(conc__stack_stats_t *st) {
  pthread_once(&g_once, global_init);
  pthread_mutex_lock(&g_mu);
  st->guarded_mprot = g_guarded_mprot;
  st->slabs = g_nslabs;
  st->guard_method = g_method;
  pthread_mutex_unlock(&g_mu);
  st->cached = 0;
  for (int i = 0; i < CACHE_CLASSES; i++)
    st->cached += t_cache[i].n;
}
