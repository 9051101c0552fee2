/*
 * A Pool whose items run on another engine that serves whole synchronous
 * calls. conc__pool_init_remote makes the pool; the public calls that the
 * engine serves (apply, map, map_typed, starmap, close, terminate, join,
 * enter, processes, pids, destroy) forward here, and the others answer
 * CONC_ENOSYS through conc__pool_core_of. libconc_mpi used it first and
 * now plugs in as a transport (src/mpi/mpi_transport.c) instead, so no
 * component makes such a pool today.
 * Locking: `mu` guards the state; the engine serialises its own calls.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "pool-int.h"

struct remote {
  pthread_mutex_t mu;
  int state; /* CONC__P_RUN, CONC__P_CLOSE, CONC__P_TERMINATE */
  conc__pool_engine_t eng;
};

static struct remote *remote_of(conc_pool_t *pool) {
  return pool && pool->priv.magic == CONC__POOL_REMOTE_MAGIC ? pool->priv.core
                                                             : NULL;
}

bool conc__pool_is_remote(conc_pool_t *pool) { return remote_of(pool); }

int conc__pool_init_remote(conc_pool_t *pool, const conc__pool_engine_t *eng) {
  if (!pool || !eng || !eng->run)
    return CONC_EINVAL;
  struct remote *r = calloc(1, sizeof *r);
  if (!r)
    return CONC_ENOMEM;
  pthread_mutex_init(&r->mu, NULL);
  r->state = CONC__P_RUN;
  r->eng = *eng;
  pool->priv.core = r;
  pool->priv.magic = CONC__POOL_REMOTE_MAGIC;
  return 0;
}

static int running(struct remote *r) {
  pthread_mutex_lock(&r->mu);
  int st = r->state;
  pthread_mutex_unlock(&r->mu);
  return st == CONC__P_RUN ? 0 : conc_raise(CONC_ESTATE, "Pool not running");
}

int conc__pool_remote_map(conc_pool_t *pool, conc_pool_func_t fn,
                          const void *in, size_t n, size_t arg_size,
                          size_t result_size, const conc_pool_map_opts_t *opts,
                          void *out, conc_pool_error_t *error) {
  struct remote *r = remote_of(pool);
  if (!fn || (n && (!in || !out || !arg_size)))
    return CONC_EINVAL;
  int rc = running(r);
  if (rc != 0)
    return rc;
  conc_pool_map_opts_t o = opts ? *opts : (conc_pool_map_opts_t){0};
  size_t chunk = o.chunksize;
  if (!chunk) { /* Python's default: ceil(n / (4 * workers)) */
    size_t w = (size_t)r->eng.workers(r->eng.ctx);
    chunk = (n + 4 * w - 1) / (4 * w);
  }
  return r->eng.run(r->eng.ctx, fn, in, n, arg_size, result_size, chunk, out,
                    o.errors, o.result_lens, o.item_errors, error);
}

int conc__pool_remote_apply(conc_pool_t *pool, conc_pool_func_t fn,
                            const void *arg, size_t arg_len, void *result,
                            size_t result_cap, size_t *result_len,
                            conc_pool_error_t *error) {
  unsigned char dummy = 0;
  if (!arg_len)
    arg = &dummy;
  size_t len = 0;
  int rc = conc__pool_remote_map(
      pool, fn, arg, 1, arg_len ? arg_len : 1, result_cap,
      &(conc_pool_map_opts_t){.chunksize = 1, .result_lens = &len}, result,
      error);
  if (rc == 0 && result_len)
    *result_len = len;
  return rc;
}

int conc__pool_remote_state(conc_pool_t *pool, int to) {
  struct remote *r = remote_of(pool);
  pthread_mutex_lock(&r->mu);
  if (to == CONC__P_RUN) { /* enter: 0 while running */
    int st = r->state;
    pthread_mutex_unlock(&r->mu);
    return st == CONC__P_RUN ? 0 : CONC_ESTATE;
  }
  if (r->state != CONC__P_TERMINATE)
    r->state = to;
  pthread_mutex_unlock(&r->mu);
  return 0;
}

int conc__pool_remote_join(conc_pool_t *pool) {
  struct remote *r = remote_of(pool);
  pthread_mutex_lock(&r->mu);
  int st = r->state;
  pthread_mutex_unlock(&r->mu);
  return st == CONC__P_RUN ? CONC_ESTATE : 0; /* calls were synchronous */
}

int conc__pool_remote_processes(conc_pool_t *pool) {
  struct remote *r = remote_of(pool);
  return r->eng.workers(r->eng.ctx);
}

int conc__pool_remote_pids(conc_pool_t *pool, pid_t *pids, size_t cap) {
  struct remote *r = remote_of(pool);
  return r->eng.pids ? r->eng.pids(r->eng.ctx, pids, cap) : 0;
}

void conc__pool_remote_destroy(conc_pool_t *pool) {
  struct remote *r = remote_of(pool);
  pthread_mutex_destroy(&r->mu);
  free(r);
  pool->priv.core = NULL;
  pool->priv.magic = 0;
}
