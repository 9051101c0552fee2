/*
 * One-time initialisation and the fork-handler registry.
 * Locking: registration is serialised by reg_mu; the handlers themselves run
 * from pthread_atfork, which holds no lock of ours. The table only grows and
 * entries are published with a release store of `count`, so the fork-time
 * walkers read it without taking reg_mu (which could itself be held at fork).
 */
#include "init-int.h"

#include <pthread.h>

#include "conc/error.h"
#include "platform-int.h"

#define MAX_HANDLERS 32

struct handlers {
  void (*prepare)(void);
  void (*parent)(void);
  void (*child)(void);
};

static struct handlers table[MAX_HANDLERS];
static unsigned count;
static unsigned generation;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void run_prepare(void) {
  for (unsigned i = conc__load_acquire(&count); i-- > 0;)
    if (table[i].prepare)
      table[i].prepare();
}

static void run_parent(void) {
  unsigned n = conc__load_acquire(&count);
  for (unsigned i = 0; i < n; i++)
    if (table[i].parent)
      table[i].parent();
}

static void run_child(void) {
  generation++;
  pthread_mutex_init(&reg_mu, NULL);
  unsigned n = conc__load_acquire(&count);
  for (unsigned i = 0; i < n; i++)
    if (table[i].child)
      table[i].child();
}

static void init_once(void) {
  pthread_atfork(run_prepare, run_parent, run_child);
}

void conc__init(void) { pthread_once(&once, init_once); }

int conc__atfork_register(void (*prepare)(void), void (*parent)(void),
                          void (*child)(void)) {
  conc__init();
  pthread_mutex_lock(&reg_mu);
  unsigned n = count;
  if (n == MAX_HANDLERS) {
    pthread_mutex_unlock(&reg_mu);
    return CONC_ENOMEM;
  }
  table[n] = (struct handlers){prepare, parent, child};
  conc__store_release(&count, n + 1);
  pthread_mutex_unlock(&reg_mu);
  return 0;
}

unsigned conc__fork_generation(void) { return conc__load_relaxed(&generation); }
