/*
 * Thread-local storage: threading.local.
 *
 * Each conc_local_t owns a slot number; each thread owns a table (struct
 * tblock) of entry pointers indexed by slot, reached through a __thread
 * pointer, so a read is a TLS load, a bounds check and one load, no lock.
 * Every entry is also linked into its local's list so that destroying the
 * local can free every thread's value.
 *
 * Locking: one process-wide mutex `mu` guards every structural change:
 * slot allocation, entry insert/unlink, a table's growth and the clearing
 * of another thread's table cell by conc_local_destroy. The owning thread
 * reads its own table without the lock; the only other writer is
 * conc_local_destroy, which the API forbids concurrently with use of that
 * same local. User callbacks (init, destroy) always run without `mu`, so
 * they may use locals themselves. `mu` has fork handlers.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/thread.h"
#include "init-int.h"
#include "thread-int.h"

#define LOCAL_LIVE 0x4c4f434bu /* "LOCK"-ish marker of an initialised local */
#define EXIT_ROUNDS 4          /* destructors may create values again */

struct tblock;

struct entry {
  conc_local_t *local;
  struct tblock *owner;
  struct entry *next, *prev; /* in the local's list */
  void *value;
  void (*destroy)(void *, void *); /* captured when the owner thread exits */
  void *destroy_arg;
  bool has_value;
};

struct tblock {
  struct entry **slots;
  uint32_t cap;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool *slot_used;
static uint32_t nslots;
static pthread_key_t exit_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static __thread struct tblock *self;

static void lock_prepare(void) { pthread_mutex_lock(&mu); }
static void lock_parent(void) { pthread_mutex_unlock(&mu); }
static void lock_child(void) { pthread_mutex_unlock(&mu); }

static void key_destructor(void *p) {
  (void)p;
  conc__local_thread_exit();
}

static void init_once(void) {
  pthread_key_create(&exit_key, key_destructor);
  conc__atfork_register(lock_prepare, lock_parent, lock_child);
}

static bool is_live(const conc_local_t *l) {
  return l && l->priv.live == LOCAL_LIVE;
}

/* The calling thread's entry for l, or NULL. */
static struct entry *lookup(const conc_local_t *l) {
  struct tblock *b = self;
  uint32_t s = l->priv.slot;
  return b && s < b->cap ? b->slots[s] : NULL;
}

static int alloc_slot(uint32_t *out) {
  for (uint32_t i = 0; i < nslots; i++)
    if (!slot_used[i]) {
      slot_used[i] = true;
      *out = i;
      return 0;
    }
  uint32_t n = nslots ? nslots * 2 : 16;
  bool *grown = realloc(slot_used, n * sizeof *grown);
  if (!grown)
    return CONC_ENOMEM;
  memset(grown + nslots, 0, (n - nslots) * sizeof *grown);
  slot_used = grown;
  *out = nslots;
  grown[nslots] = true;
  nslots = n;
  return 0;
}

int conc_local_init(conc_local_t *l, const conc_local_opts_t *opts) {
  if (!l)
    return CONC_EINVAL;
  pthread_once(&once, init_once);
  uint32_t slot;
  pthread_mutex_lock(&mu);
  int rc = alloc_slot(&slot);
  pthread_mutex_unlock(&mu);
  if (rc)
    return rc;
  memset(l, 0, sizeof *l);
  l->priv.slot = slot;
  if (opts)
    l->priv.opts = *opts;
  l->priv.live = LOCAL_LIVE;
  return 0;
}

/* Make room for slot s in the caller's table; called with mu held. */
static int reserve(uint32_t s) {
  struct tblock *b = self;
  if (!b) {
    b = calloc(1, sizeof *b);
    if (!b)
      return CONC_ENOMEM;
    self = b;
    pthread_setspecific(exit_key, b);
  }
  if (s < b->cap)
    return 0;
  uint32_t n = b->cap ? b->cap : 8;
  while (n <= s)
    n *= 2;
  struct entry **grown = realloc(b->slots, n * sizeof *grown);
  if (!grown)
    return CONC_ENOMEM;
  memset(grown + b->cap, 0, (n - b->cap) * sizeof *grown);
  b->slots = grown;
  b->cap = n;
  return 0;
}

static int insert(conc_local_t *l, void *value) {
  struct entry *e = malloc(sizeof *e);
  if (!e)
    return CONC_ENOMEM;
  pthread_mutex_lock(&mu);
  int rc = reserve(l->priv.slot);
  if (rc) {
    pthread_mutex_unlock(&mu);
    free(e);
    return rc;
  }
  *e = (struct entry){.local = l,
                      .owner = self,
                      .value = value,
                      .has_value = true,
                      .next = l->priv.entries};
  if (e->next)
    e->next->prev = e;
  l->priv.entries = e;
  self->slots[l->priv.slot] = e;
  pthread_mutex_unlock(&mu);
  return 0;
}

/* Unlink e from its local's list; mu held. */
static void unlink_entry(struct entry *e) {
  if (e->prev)
    e->prev->next = e->next;
  else
    e->local->priv.entries = e->next;
  if (e->next)
    e->next->prev = e->prev;
}

int conc_local_get(conc_local_t *l, void **out) {
  if (!is_live(l) || !out)
    return CONC_EINVAL;
  struct entry *e = lookup(l);
  if (e) {
    if (!e->has_value)
      return CONC_EUNSET;
    *out = e->value;
    return 0;
  }
  if (!l->priv.opts.init)
    return CONC_EUNSET;
  void *v = l->priv.opts.init(l->priv.opts.arg);
  int rc = insert(l, v);
  if (rc) {
    if (l->priv.opts.destroy)
      l->priv.opts.destroy(v, l->priv.opts.arg);
    return rc;
  }
  *out = v;
  return 0;
}

int conc_local_set(conc_local_t *l, void *value) {
  if (!is_live(l))
    return CONC_EINVAL;
  struct entry *e = lookup(l);
  if (!e)
    return insert(l, value);
  void *old = e->value;
  bool had = e->has_value;
  e->value = value;
  e->has_value = true;
  if (had && old != value && l->priv.opts.destroy)
    l->priv.opts.destroy(old, l->priv.opts.arg);
  return 0;
}

int conc_local_delete(conc_local_t *l) {
  if (!is_live(l))
    return CONC_EINVAL;
  struct entry *e = lookup(l);
  if (!e || !e->has_value)
    return CONC_EUNSET;
  void *old = e->value;
  e->has_value = false;
  e->value = NULL;
  if (l->priv.opts.destroy)
    l->priv.opts.destroy(old, l->priv.opts.arg);
  return 0;
}

void conc_local_destroy(conc_local_t *l) {
  if (!is_live(l))
    return;
  pthread_mutex_lock(&mu);
  struct entry *list = l->priv.entries;
  for (struct entry *e = list; e; e = e->next)
    e->owner->slots[l->priv.slot] = NULL;
  l->priv.entries = NULL;
  slot_used[l->priv.slot] = false;
  l->priv.live = 0;
  pthread_mutex_unlock(&mu);
  while (list) {
    struct entry *e = list;
    list = e->next;
    if (e->has_value && l->priv.opts.destroy)
      l->priv.opts.destroy(e->value, l->priv.opts.arg);
    free(e);
  }
}

/* Detach the caller's table and its entries; returns the entries chained
 * through `next`. */
static struct entry *take_own_entries(void) {
  struct tblock *b = self;
  struct entry *chain = NULL;
  pthread_mutex_lock(&mu);
  for (uint32_t i = 0; i < b->cap; i++) {
    struct entry *e = b->slots[i];
    if (!e)
      continue;
    unlink_entry(e);
    e->destroy = e->local->priv.opts.destroy;
    e->destroy_arg = e->local->priv.opts.arg;
    e->next = chain;
    chain = e;
  }
  self = NULL;
  pthread_mutex_unlock(&mu);
  pthread_setspecific(exit_key, NULL);
  free(b->slots);
  free(b);
  return chain;
}

void conc__local_thread_exit(void) {
  for (int round = 0; round < EXIT_ROUNDS && self; round++) {
    struct entry *chain = take_own_entries();
    while (chain) {
      struct entry *e = chain;
      chain = e->next;
      if (e->has_value && e->destroy)
        e->destroy(e->value, e->destroy_arg);
      free(e);
    }
  }
}
