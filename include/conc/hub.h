// clang-format off
/*
 * gevent's hub: spawn, join, joinall, kill, sleep, Pool/Group and Timeout,
 * as a thin face over the event loop of conc/loop.h. A greenlet is a loop
 * task underneath, so hub code and asyncio-style code mix in one program:
 * a greenlet may await a task, a task may join a greenlet.
 *
 *
 *   Python (gevent)                       C
 *   g = gevent.spawn(fn, x)               conc_hub_spawn(fn, x, NULL, &g)
 *   gevent.spawn_later(2, fn, x)          conc_hub_spawn_later(2, fn, x, NULL, &g)
 *   g.join(timeout=1)                     conc_greenlet_join(g, 1)
 *   g.kill(block=True, timeout=None)      conc_greenlet_kill(g, true, CONC_FOREVER)
 *   except GreenletExit                   if (rc == CONC_ECANCELED)
 *   g.ready(), g.successful()             conc_greenlet_ready(g), conc_greenlet_successful(g)
 *   g.value                               rc = conc_greenlet_value(g, &v)
 *   g.get(timeout=1)                      rc = conc_greenlet_get(g, 1, &v)
 *   (garbage collection)                  conc_greenlet_release(g)
 *   done = gevent.joinall(gs, timeout=1)  conc_hub_joinall(gs, n, 1, done, &ndone)
 *   gevent.sleep(0)                       conc_hub_sleep(0)
 *   gevent.wait()                         conc_hub_wait(CONC_FOREVER)
 *   pool = gevent.pool.Pool(5)            conc_hub_pool_init(&pool, 5)
 *   group = gevent.pool.Group()           conc_hub_pool_init(&group, 0)
 *   pool.spawn(fn, x)                     conc_hub_pool_spawn(&pool, fn, x, NULL, &g)
 *   pool.join(), pool.kill()              conc_hub_pool_join(&pool, t), conc_hub_pool_kill(&pool, true, t)
 *   with gevent.Timeout(2): ...           conc_hub_timeout_start(&to, 2); ...; conc_hub_timeout_cancel(&to)
 *   except gevent.Timeout                 if (rc == CONC_ETIMEDOUT)
 *
 *
 * Running the hub: gevent runs its hub whenever the main greenlet blocks.
 * Here the blocking calls (join, joinall, kill with block, sleep, wait,
 * pool spawn and join) called from outside any task -- the program's
 * main(), say -- run the thread's loop until their condition holds, so a
 * plain main() can spawn and joinall without writing an event loop. Called
 * from a task (a greenlet or an asyncio-style task) they suspend only that
 * task. Called from a loop callback (loop running, no task) they return
 * CONC_ESTATE: a callback may not block the loop it runs on.
 *
 * The thread's loop is the running one, else conc_loop_get(), else one the
 * hub creates on first use; conc_hub_destroy() kills what is left on that
 * hub-made loop and frees it.
 *
 * Threads: everything here is confined to the thread that owns the loop
 * (CONC_EWRONGTHREAD for a greenlet of another thread).
 */
// clang-format on
#ifndef CONC_HUB_H
#define CONC_HUB_H

#include <stdbool.h>
#include <stddef.h>

#include "conc/defs.h"
#include "conc/loop.h"

CONC_BEGIN_DECLS

/* A greenlet: a handle on a loop task with gevent's methods. */
typedef struct conc_greenlet conc_greenlet_t;

/*
 * gevent.spawn(fn, arg): fn(arg, &result) starts on the loop's next
 * iteration (loop: the running one, else the thread's, made if there is
 * none). opts may be NULL (name: "Greenlet-N"). out may be NULL: the hub
 * then frees the greenlet when it ends. CONC_EINVAL (NULL fn), CONC_ECLOSED,
 * CONC_ENOMEM.
 */
CONC_EXTERN int conc_hub_spawn(conc_aio_fn_t fn, void *arg,
                               const conc_aio_task_opts_t *opts,
                               conc_greenlet_t **out);

/* gevent.spawn_later(seconds, fn, arg): as spawn, fn starting after
 * seconds (negative: 0); killed meanwhile, it never runs. NaN: CONC_EINVAL.
 */
CONC_EXTERN int conc_hub_spawn_later(double seconds, conc_aio_fn_t fn,
                                     void *arg,
                                     const conc_aio_task_opts_t *opts,
                                     conc_greenlet_t **out);

/* Give back the handle's reference; a running greenlet runs on. NULL is
 * ignored. */
CONC_EXTERN void conc_greenlet_release(conc_greenlet_t *g);

/*
 * join(timeout): 0 once g has finished (however it ended), CONC_ETIMEDOUT
 * when the timeout passes first (gevent returns silently: check ready()).
 * CONC_FOREVER waits without limit. CONC_EDEADLK joining the calling
 * greenlet itself; CONC_ECANCELED when the caller is killed while waiting;
 * CONC_ETIMEDOUT also when a hub Timeout of the caller expires.
 */
CONC_EXTERN int conc_greenlet_join(conc_greenlet_t *g, double timeout);

/*
 * kill(block, timeout): GreenletExit. The pending call of g (a hub call or
 * any loop await) returns CONC_ECANCELED; g may clean up and return.
 * A greenlet that has not started never runs. block: wait (up to timeout)
 * until g has finished; 0, or CONC_ETIMEDOUT when it is still running.
 * Killing a finished greenlet does nothing (0). Killing the calling
 * greenlet with block returns CONC_ECANCELED at once (the kill lands on
 * that call), without block at its next suspending call.
 */
CONC_EXTERN int conc_greenlet_kill(conc_greenlet_t *g, bool block,
                                   double timeout);

/* ready(): finished, however. successful(): finished with a result, or
 * killed (gevent counts GreenletExit as success). */
CONC_EXTERN bool conc_greenlet_ready(const conc_greenlet_t *g);
CONC_EXTERN bool conc_greenlet_successful(conc_greenlet_t *g);

/*
 * value: 0 and *out (may be NULL) for a result; the function's error code
 * (its exception); CONC_ECANCELED for a killed greenlet (gevent's value is
 * then the GreenletExit); CONC_EINVALSTATE while it runs (gevent: None).
 */
CONC_EXTERN int conc_greenlet_value(conc_greenlet_t *g, void **out);

/* get(timeout): join then value; CONC_ETIMEDOUT when not finished in time
 * (gevent raises Timeout). */
CONC_EXTERN int conc_greenlet_get(conc_greenlet_t *g, double timeout,
                                  void **out);

/* The task underneath (borrowed), to await or gather it from loop code. */
CONC_EXTERN conc_aio_future_t *conc_greenlet_task(const conc_greenlet_t *g);
CONC_EXTERN const char *conc_greenlet_name(const conc_greenlet_t *g);

/*
 * joinall(gs, timeout) (H1): wait until every greenlet of gs has finished
 * or the timeout passes. 0 either way (as gevent, no error on timeout):
 * done (capacity n, may be NULL) receives the finished ones in the order
 * they finished, *ndone (may be NULL) their count; ndone < n means the
 * timeout passed. CONC_EINVAL (NULL entry, NaN), CONC_ECANCELED,
 * CONC_ETIMEDOUT (a hub Timeout of the caller), CONC_EDEADLK (gs holds the
 * caller), CONC_ESTATE; nothing is written on an error.
 */
CONC_EXTERN int conc_hub_joinall(conc_greenlet_t *const *gs, size_t n,
                                 double timeout, conc_greenlet_t **done,
                                 size_t *ndone);

/*
 * gevent.sleep(seconds) (H2): suspend the caller for at least seconds;
 * sleep(0) lets every other ready greenlet run exactly once before the
 * caller resumes. From main it runs the loop meanwhile. Negative is 0;
 * CONC_EINVAL (NaN), CONC_ECANCELED (killed), CONC_ETIMEDOUT (hub Timeout).
 */
CONC_EXTERN int conc_hub_sleep(double seconds);

/* gevent.wait(): until every other greenlet of the thread's loop has
 * finished. 0, CONC_ETIMEDOUT. */
CONC_EXTERN int conc_hub_wait(double timeout);

/* The thread's loop as the hub uses it (made on first use; NULL when that
 * fails): create asyncio-style tasks on it from main. */
CONC_EXTERN conc_loop_t *conc_hub_loop(void);

/* Destroy the hub's own loop of this thread, if it made one: kill the
 * greenlets and cancel the tasks still on it, run them to their end, close
 * and free it. Greenlet handles still held keep their outcome (their task
 * is gone: conc_greenlet_task gives NULL). A loop the program made itself
 * is left alone. 0; CONC_ESTATE while a loop runs on this thread. */
CONC_EXTERN int conc_hub_destroy(void);

/* ---- Pool and Group ------------------------------------------------------ */

/* gevent.pool.Pool(size); size 0 is a Group (no cap). Caller-allocated; it
 * must not move while in use. */
typedef struct conc_hub_pool {
  void *priv[12];
} conc_hub_pool_t;

CONC_EXTERN int conc_hub_pool_init(conc_hub_pool_t *p, size_t size);
/* CONC_EBUSY while greenlets run in it or spawners wait (nothing changes). */
CONC_EXTERN int conc_hub_pool_destroy(conc_hub_pool_t *p);

/* spawn: when size greenlets run, the caller suspends (from main: runs the
 * loop) until one finishes; waiters are served in FIFO order. Then as
 * conc_hub_spawn; the pool holds the greenlet until it finishes. */
CONC_EXTERN int conc_hub_pool_spawn(conc_hub_pool_t *p, conc_aio_fn_t fn,
                                    void *arg, const conc_aio_task_opts_t *opts,
                                    conc_greenlet_t **out);
/* join(timeout): until the pool is empty. 0, CONC_ETIMEDOUT. */
CONC_EXTERN int conc_hub_pool_join(conc_hub_pool_t *p, double timeout);
/* kill(block, timeout): kill every member; with block wait until empty. */
CONC_EXTERN int conc_hub_pool_kill(conc_hub_pool_t *p, bool block,
                                   double timeout);
/* len(pool); free_count(): slots left (SIZE_MAX for a Group). */
CONC_EXTERN size_t conc_hub_pool_len(const conc_hub_pool_t *p);
CONC_EXTERN size_t conc_hub_pool_free_count(const conc_hub_pool_t *p);

/* ---- Timeout ------------------------------------------------------------- */

/*
 * gevent.Timeout(seconds) as a scope: start arms it for the caller (a task,
 * or main); when it expires, the caller's blocked hub call returns
 * CONC_ETIMEDOUT (a plain loop await in the scope returns CONC_ECANCELED:
 * check conc_hub_timeout_expired). cancel ends the scope; call it on every
 * path. Zero-initialise; scopes nest; CONC_FOREVER never fires.
 */
typedef struct conc_hub_timeout {
  void *priv[8];
} conc_hub_timeout_t;

/* CONC_ESTATE when already started (gevent: cancel it first) or called in a
 * loop callback; CONC_EINVAL (NaN). */
CONC_EXTERN int conc_hub_timeout_start(conc_hub_timeout_t *t, double seconds);
/* Disarm and end the scope; 0 (also when not started or already ended). */
CONC_EXTERN int conc_hub_timeout_cancel(conc_hub_timeout_t *t);
CONC_EXTERN bool conc_hub_timeout_pending(const conc_hub_timeout_t *t);
CONC_EXTERN bool conc_hub_timeout_expired(const conc_hub_timeout_t *t);

CONC_END_DECLS

#endif
