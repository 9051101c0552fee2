/*
 * gevent's hub over the event loop (conc/hub.h): greenlets are loop tasks,
 * and every wait is a private loop future that a waiter awaits (in a task)
 * or runs the loop until (from main, gevent's implicit hub switch).
 *
 * Locking protocol: none; everything is thread-confined. A greenlet, a pool
 * and a timeout scope belong to the thread of their loop; the hub's state
 * is thread-local; the loop runs our callbacks (done callbacks, timers) on
 * that thread between task steps. So the lists below are only ever touched
 * by one thread and one step at a time. The one shared datum is the
 * greenlet name counter, an atomic.
 *
 * Wake-ups are gevent's "rawlinks": a waiter puts a node on the list of
 * what it waits for (a greenlet, a pool, the hub) and the owner completes
 * the node's future when its state changes. A node lives on the waiter's
 * stack; it is unlinked and its timer cancelled before the waiter returns,
 * so no callback can reach a dead node.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/error.h"
#include "conc/hub.h"
#include "conc/time.h"

/* ---- waiter lists -------------------------------------------------------- */

typedef struct wnode wnode_t;
typedef struct wlist {
  wnode_t *head, *tail;
} wlist_t;

struct wnode {
  wnode_t *prev, *next;
  wlist_t *list; /* NULL when not linked */
  conc_aio_future_t *wake;
  bool granted; /* a pool slot was handed to this waiter */
};

static void wl_push(wlist_t *l, wnode_t *n) {
  n->list = l;
  n->next = NULL;
  n->prev = l->tail;
  if (l->tail)
    l->tail->next = n;
  else
    l->head = n;
  l->tail = n;
}

static void wl_remove(wnode_t *n) {
  wlist_t *l = n->list;
  if (n->prev)
    n->prev->next = n->next;
  else
    l->head = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    l->tail = n->prev;
  n->list = NULL;
  n->prev = n->next = NULL;
}

/* The waiter may be woken by several sources in one iteration; the first
 * one wins and the rest find the future done. */
static void wake_future(conc_aio_future_t *f, void *why) {
  if (f && !conc_aio_future_done(f))
    (void)conc_aio_future_set_result(f, why);
}

static void wl_wake_all(wlist_t *l) {
  for (wnode_t *n = l->head; n; n = n->next)
    wake_future(n->wake, NULL);
}

/* ---- the hub's thread state ---------------------------------------------- */

struct conc_greenlet {
  conc_aio_future_t *task;
  conc_loop_t *loop;
  pthread_t owner;
  conc_aio_fn_t fn;
  void *arg;
  unsigned refs;     /* the handle's, and the done callback's */
  uint64_t done_seq; /* completion order; 0 while running */
  double delay;      /* spawn_later: seconds before fn starts */
  bool started;
  bool killed; /* killed before it started: it never runs */
  wlist_t joiners;
  struct hub_pool *pool;
  conc_greenlet_t *pool_prev, *pool_next;
  conc_greenlet_t *live_prev, *live_next;
  conc_greenlet_t *held_prev, *held_next; /* every greenlet not yet freed */
  /* Once the hub destroyed its loop, the outcome is kept here and the task
   * is gone, so a handle released later touches no freed loop. */
  bool detached;
  int code;
  void *result;
  char *name;
};

enum { TO_IDLE = 0, TO_ARMED, TO_EXPIRED, TO_DELIVERED, TO_ENDED };

typedef struct hub_timeout {
  struct hub_timeout *prev, *next;
  conc_aio_future_t *owner; /* retained; NULL: main */
  conc_loop_t *loop;
  conc_handle_t timer;
  int cancelling0; /* the owner's cancel requests at start */
  unsigned char state;
  bool expired;
} hub_timeout_t;

_Static_assert(sizeof(hub_timeout_t) <= sizeof(conc_hub_timeout_t),
               "conc_hub_timeout_t too small");

typedef struct hub {
  conc_loop_t *owned; /* the loop the hub made, if any */
  conc_greenlet_t *live, *live_tail;
  conc_greenlet_t *held;
  wlist_t idle_waiters;         /* conc_hub_wait */
  hub_timeout_t *scopes;        /* innermost first */
  conc_aio_future_t *main_wake; /* what main waits for while it runs the loop */
  uint64_t seq;
} hub_t;

static _Thread_local hub_t hub __attribute__((tls_model("initial-exec")));
static atomic_ulong greenlet_counter;

/* Marks telling why a waiter's future completed. */
static char mark_timer, mark_scope;

static conc_loop_t *hub_loop_get(void) {
  conc_loop_t *l = conc_loop_running();
  if (!l)
    l = conc_loop_get();
  if (!l) {
    if (conc_loop_create(NULL, &l) != 0)
      return NULL;
    hub.owned = l;
  }
  return l;
}

conc_loop_t *conc_hub_loop(void) { return hub_loop_get(); }

/* ---- where a blocking call runs ------------------------------------------ */

typedef struct ctx {
  conc_loop_t *loop;
  conc_aio_future_t *task; /* NULL: main, which runs the loop */
} ctx_t;

/* A task suspends; outside any loop the caller runs the loop (want, or the
 * thread's); a loop callback may not block. */
static int ctx_enter(conc_loop_t *want, ctx_t *c) {
  c->task = conc_aio_current_task();
  if (c->task) {
    c->loop = conc_aio_future_loop(c->task);
    return want && want != c->loop ? CONC_ESTATE : 0;
  }
  if (conc_loop_running())
    return CONC_ESTATE;
  c->loop = want ? want : hub_loop_get();
  return c->loop ? 0 : CONC_ENOMEM;
}

static double deadline_of(const ctx_t *c, double timeout) {
  if (timeout == CONC_FOREVER || timeout > CONC_TIMEOUT_MAX)
    return INFINITY;
  return conc_loop_time(c->loop) + (timeout > 0 ? timeout : 0);
}

static double delay_to(const ctx_t *c, double deadline) {
  if (isinf(deadline))
    return -1;
  double d = deadline - conc_loop_time(c->loop);
  return d > 0 ? d : 0;
}

/*
 * A timeout scope of the caller that expired turns the call's outcome into
 * CONC_ETIMEDOUT, once. In a task the expiry was a cancel request, so only
 * the CONC_ECANCELED it caused is turned, and the request is withdrawn
 * (asyncio's rule: unless another cancel arrived too, which then wins).
 */
static int deliver_scope(const ctx_t *c, int rc) {
  for (hub_timeout_t *s = hub.scopes; s; s = s->next) {
    if (s->owner != c->task || s->state != TO_EXPIRED)
      continue;
    if (c->task) {
      if (rc != CONC_ECANCELED)
        return rc;
      s->state = TO_DELIVERED;
      int left = conc_aio_task_uncancel(c->task);
      return left <= s->cancelling0 ? CONC_ETIMEDOUT : CONC_ECANCELED;
    }
    if (rc < 0)
      return rc;
    s->state = TO_DELIVERED;
    return CONC_ETIMEDOUT;
  }
  return rc;
}

static void on_wait_timer(void *arg) {
  wnode_t *w = arg;
  wake_future(w->wake, &mark_timer);
}

/*
 * Suspend the caller until w is woken (through list, when given), delay
 * seconds pass (negative: never; 0: after the ready callbacks) or a scope
 * expires. 0 woken, 1 the delay passed, or a negative code.
 */
static int block(const ctx_t *c, wlist_t *list, wnode_t *w, double delay) {
  memset(w, 0, sizeof *w);
  int rc = conc_aio_future_create(c->loop, &w->wake);
  if (rc)
    return rc;
  if (list)
    wl_push(list, w);
  conc_handle_t h = {0};
  if (delay == 0)
    rc = conc_loop_call_soon(c->loop, on_wait_timer, w, &h);
  else if (delay > 0)
    rc = conc_loop_call_later(c->loop, delay, on_wait_timer, w, &h);
  void *why = NULL;
  if (rc == 0 && c->task) {
    rc = conc_aio_await(w->wake, &why);
  } else if (rc == 0) {
    hub.main_wake = w->wake;
    rc = conc_loop_run_until_complete(c->loop, w->wake, &why);
    hub.main_wake = NULL;
  }
  (void)conc_loop_cancel(c->loop, h);
  if (w->list)
    wl_remove(w);
  conc_aio_future_release(w->wake);
  w->wake = NULL;
  if (rc == 0 && why == &mark_timer)
    rc = 1;
  return deliver_scope(c, rc);
}

/* ---- greenlets ----------------------------------------------------------- */

static void greenlet_unref(conc_greenlet_t *g) {
  if (--g->refs)
    return;
  if (g->held_prev)
    g->held_prev->held_next = g->held_next;
  else
    hub.held = g->held_next;
  if (g->held_next)
    g->held_next->held_prev = g->held_prev;
  conc_aio_future_release(g->task);
  free(g->name);
  free(g);
}

static bool greenlet_done(const conc_greenlet_t *g) {
  return g->detached || conc_aio_future_done(g->task);
}

/* Keep the outcome of g, finished on a loop about to be destroyed, and let
 * its task go. */
static void greenlet_detach(conc_greenlet_t *g) {
  g->name = strdup(conc_aio_task_name(g->task));
  g->code = conc_aio_future_result(g->task, &g->result);
  conc_aio_future_release(g->task);
  g->task = NULL;
  g->detached = true;
}

static int greenlet_run(void *arg, void **result) {
  conc_greenlet_t *g = arg;
  /* spawn_later: a kill during the delay lands on this sleep, before the
   * function ever runs */
  int rc = g->delay > 0 && !g->killed ? conc_aio_sleep(g->delay) : 0;
  if (rc == 0 && !g->killed) {
    g->started = true;
    rc = g->fn(g->arg, result);
  } else if (rc == 0) {
    rc = CONC_ECANCELED;
  }
  g->done_seq = ++hub.seq;
  return rc;
}

static void live_unlink(conc_greenlet_t *g) {
  if (g->live_prev)
    g->live_prev->live_next = g->live_next;
  else
    hub.live = g->live_next;
  if (g->live_next)
    g->live_next->live_prev = g->live_prev;
  else
    hub.live_tail = g->live_prev;
  g->live_prev = g->live_next = NULL;
}

static void live_push(conc_greenlet_t *g) {
  g->live_prev = hub.live_tail;
  if (hub.live_tail)
    hub.live_tail->live_next = g;
  else
    hub.live = g;
  hub.live_tail = g;
}

static void pool_member_done(struct hub_pool *p, conc_greenlet_t *g);

/* The greenlet's links: it is off the live list, its joiners, the hub's
 * waiters and its pool learn that it finished. */
static void on_greenlet_done(conc_aio_future_t *f, void *arg) {
  (void)f;
  conc_greenlet_t *g = arg;
  if (!g->done_seq)
    g->done_seq = ++hub.seq;
  live_unlink(g);
  wl_wake_all(&g->joiners);
  wl_wake_all(&hub.idle_waiters);
  if (g->pool)
    pool_member_done(g->pool, g);
  greenlet_unref(g);
}

static int spawn_on(conc_loop_t *loop, struct hub_pool *pool, conc_aio_fn_t fn,
                    void *arg, const conc_aio_task_opts_t *opts, double delay,
                    conc_greenlet_t **out);

int conc_hub_spawn(conc_aio_fn_t fn, void *arg,
                   const conc_aio_task_opts_t *opts, conc_greenlet_t **out) {
  if (!fn)
    return CONC_EINVAL;
  conc_loop_t *loop = hub_loop_get();
  if (!loop)
    return CONC_ENOMEM;
  return spawn_on(loop, NULL, fn, arg, opts, 0, out);
}

int conc_hub_spawn_later(double seconds, conc_aio_fn_t fn, void *arg,
                         const conc_aio_task_opts_t *opts,
                         conc_greenlet_t **out) {
  if (!fn || isnan(seconds))
    return CONC_EINVAL;
  conc_loop_t *loop = hub_loop_get();
  if (!loop)
    return CONC_ENOMEM;
  return spawn_on(loop, NULL, fn, arg, opts, seconds, out);
}

void conc_greenlet_release(conc_greenlet_t *g) {
  if (g)
    greenlet_unref(g);
}

static int check_greenlet(const conc_greenlet_t *g) {
  if (!g)
    return CONC_EINVAL;
  return pthread_equal(g->owner, pthread_self()) ? 0 : CONC_EWRONGTHREAD;
}

/* Wait until g finished: 0, 1 when the deadline passed first, or a code. */
static int wait_greenlet(const ctx_t *c, conc_greenlet_t *g, double deadline) {
  while (!greenlet_done(g)) {
    wnode_t w;
    int rc = block(c, &g->joiners, &w, delay_to(c, deadline));
    if (rc == 1)
      return greenlet_done(g) ? 0 : 1;
    if (rc < 0)
      return rc;
  }
  return 0;
}

int conc_greenlet_join(conc_greenlet_t *g, double timeout) {
  int rc = check_greenlet(g);
  if (rc)
    return rc;
  if (isnan(timeout))
    return CONC_EINVAL;
  if (greenlet_done(g))
    return 0;
  ctx_t c;
  if ((rc = ctx_enter(g->loop, &c)) != 0)
    return rc;
  if (c.task == g->task)
    return CONC_EDEADLK;
  rc = wait_greenlet(&c, g, deadline_of(&c, timeout));
  return rc == 1 ? CONC_ETIMEDOUT : rc;
}

int conc_greenlet_kill(conc_greenlet_t *g, bool block_, double timeout) {
  int rc = check_greenlet(g);
  if (rc)
    return rc;
  if (isnan(timeout))
    return CONC_EINVAL;
  if (greenlet_done(g))
    return 0;
  bool self = conc_aio_current_task() == g->task;
  ctx_t c;
  if (block_ && !self && (rc = ctx_enter(g->loop, &c)) != 0)
    return rc;
  if (!g->started)
    g->killed = true;
  (void)conc_aio_cancel(g->task, "GreenletExit");
  if (!block_)
    return 0;
  if (self)
    return conc_aio_sleep(0); /* the kill lands here */
  rc = wait_greenlet(&c, g, deadline_of(&c, timeout));
  return rc == 1 ? CONC_ETIMEDOUT : rc;
}

bool conc_greenlet_ready(const conc_greenlet_t *g) {
  return g && greenlet_done(g);
}

bool conc_greenlet_successful(conc_greenlet_t *g) {
  if (!g || !greenlet_done(g))
    return false;
  if (g->detached)
    return g->code == 0 || g->code == CONC_ECANCELED;
  return conc_aio_future_cancelled(g->task) ||
         conc_aio_future_exception(g->task) == 0;
}

int conc_greenlet_value(conc_greenlet_t *g, void **out) {
  if (!g)
    return CONC_EINVAL;
  if (!greenlet_done(g))
    return CONC_EINVALSTATE;
  if (g->detached) {
    if (g->code == 0 && out)
      *out = g->result;
    return g->code;
  }
  return conc_aio_future_result(g->task, out);
}

int conc_greenlet_get(conc_greenlet_t *g, double timeout, void **out) {
  int rc = conc_greenlet_join(g, timeout);
  return rc ? rc : conc_greenlet_value(g, out);
}

conc_aio_future_t *conc_greenlet_task(const conc_greenlet_t *g) {
  return g ? g->task : NULL;
}

const char *conc_greenlet_name(const conc_greenlet_t *g) {
  if (!g)
    return "";
  if (g->detached)
    return g->name ? g->name : "";
  return conc_aio_task_name(g->task);
}

/* ---- joinall, sleep, wait ------------------------------------------------ */

typedef struct fin {
  uint64_t seq;
  size_t idx;
} fin_t;

static int fin_cmp(const void *a, const void *b) {
  const fin_t *x = a, *y = b;
  if (x->seq != y->seq)
    return x->seq < y->seq ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The finished ones in completion order (a greenlet whose end is not yet
 * numbered sorts last, then by position). */
static int list_finished(conc_greenlet_t *const *gs, size_t n,
                         conc_greenlet_t **done, size_t *ndone) {
  fin_t *fs = malloc(n * sizeof *fs);
  if (!fs)
    return CONC_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (greenlet_done(gs[i]))
      fs[k++] = (fin_t){gs[i]->done_seq ? gs[i]->done_seq : UINT64_MAX, i};
  qsort(fs, k, sizeof *fs, fin_cmp);
  if (done)
    for (size_t i = 0; i < k; i++)
      done[i] = gs[fs[i].idx];
  if (ndone)
    *ndone = k;
  free(fs);
  return 0;
}

/* Every entry valid and of this thread; the unfinished ones on one loop,
 * *want (NULL when all have finished). */
static int check_all(conc_greenlet_t *const *gs, size_t n, conc_loop_t **want) {
  *want = NULL;
  for (size_t i = 0; i < n; i++) {
    int rc = check_greenlet(gs[i]);
    if (rc)
      return rc;
    if (greenlet_done(gs[i]))
      continue;
    if (*want && gs[i]->loop != *want)
      return CONC_ESTATE;
    *want = gs[i]->loop;
  }
  return 0;
}

int conc_hub_joinall(conc_greenlet_t *const *gs, size_t n, double timeout,
                     conc_greenlet_t **done, size_t *ndone) {
  if ((n && !gs) || isnan(timeout))
    return CONC_EINVAL;
  conc_loop_t *loop;
  int rc = check_all(gs, n, &loop);
  if (rc)
    return rc;
  if (n == 0) {
    if (ndone)
      *ndone = 0;
    return 0;
  }
  if (!loop) /* all finished */
    return list_finished(gs, n, done, ndone);
  ctx_t c;
  if ((rc = ctx_enter(loop, &c)) != 0)
    return rc;
  for (size_t i = 0; i < n; i++)
    if (c.task == gs[i]->task && !greenlet_done(gs[i]))
      return CONC_EDEADLK;
  /* Waiting for all of them is waiting for each in turn on one deadline. */
  double deadline = deadline_of(&c, timeout);
  for (size_t i = 0; i < n; i++) {
    rc = wait_greenlet(&c, gs[i], deadline);
    if (rc == 1)
      break;
    if (rc < 0)
      return rc;
  }
  return list_finished(gs, n, done, ndone);
}

int conc_hub_sleep(double seconds) {
  if (isnan(seconds))
    return CONC_EINVAL;
  if (seconds < 0)
    seconds = 0;
  ctx_t c;
  int rc = ctx_enter(NULL, &c);
  if (rc)
    return rc;
  if (c.task)
    return deliver_scope(&c, conc_aio_sleep(seconds));
  wnode_t w;
  rc = block(&c, NULL, &w, seconds > CONC_TIMEOUT_MAX ? -1 : seconds);
  return rc == 1 ? 0 : rc;
}

/* A greenlet of the loop other than the caller has not finished. */
static bool others_live(const ctx_t *c) {
  for (conc_greenlet_t *g = hub.live; g; g = g->live_next)
    if (g->loop == c->loop && g->task != c->task)
      return true;
  return false;
}

int conc_hub_wait(double timeout) {
  if (isnan(timeout))
    return CONC_EINVAL;
  ctx_t c;
  int rc = ctx_enter(NULL, &c);
  if (rc)
    return rc;
  double deadline = deadline_of(&c, timeout);
  while (others_live(&c)) {
    wnode_t w;
    rc = block(&c, &hub.idle_waiters, &w, delay_to(&c, deadline));
    if (rc == 1)
      return others_live(&c) ? CONC_ETIMEDOUT : 0;
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Cancel every task left on l (greenlets are killed, and their links run)
 * and run each to its end, as asyncio.run does before it closes. */
static void finish_tasks(conc_loop_t *l) {
  ctx_t c = {l, NULL};
  while (others_live(&c)) {
    for (conc_greenlet_t *g = hub.live; g; g = g->live_next)
      if (g->loop == l)
        (void)conc_greenlet_kill(g, false, 0);
    wnode_t w;
    if (block(&c, &hub.idle_waiters, &w, -1) < 0)
      return;
  }
  size_t n;
  while ((n = conc_aio_all_tasks(l, NULL, 0)) != 0) {
    conc_aio_future_t **ts = malloc(n * sizeof *ts);
    if (!ts)
      return;
    size_t all = conc_aio_all_tasks(l, ts, n);
    n = all < n ? all : n;
    for (size_t i = 0; i < n; i++) {
      conc_aio_future_retain(ts[i]);
      (void)conc_aio_cancel(ts[i], NULL);
    }
    for (size_t i = 0; i < n; i++) {
      (void)conc_loop_run_until_complete(l, ts[i], NULL);
      conc_aio_future_release(ts[i]);
    }
    free(ts);
  }
}

static void scope_unlink(hub_timeout_t *t);

/* Scopes left armed on l would keep pointers to it: they end here. */
static void end_scopes(conc_loop_t *l) {
  hub_timeout_t *next;
  for (hub_timeout_t *t = hub.scopes; t; t = next) {
    next = t->next;
    if (t->loop != l)
      continue;
    scope_unlink(t);
    conc_aio_future_release(t->owner);
    t->owner = NULL;
    t->state = TO_ENDED;
  }
}

int conc_hub_destroy(void) {
  conc_loop_t *l = hub.owned;
  if (!l)
    return 0;
  if (conc_loop_running())
    return CONC_ESTATE;
  if (!conc_loop_is_closed(l))
    finish_tasks(l);
  end_scopes(l);
  for (conc_greenlet_t *g = hub.held; g; g = g->held_next)
    if (g->loop == l && !g->detached && conc_aio_future_done(g->task))
      greenlet_detach(g);
  int rc = conc_loop_destroy(l);
  if (rc == 0)
    hub.owned = NULL;
  return rc;
}

/* ---- Pool and Group ------------------------------------------------------ */

#define POOL_MAGIC 0x68756270u /* "hubp" */

typedef struct hub_pool {
  size_t size;     /* 0: a Group */
  size_t count;    /* members running */
  size_t reserved; /* slots handed to woken spawners */
  conc_greenlet_t *members;
  wlist_t spawners; /* FIFO */
  wlist_t joiners;
  uint32_t magic;
} hub_pool_t;

_Static_assert(sizeof(hub_pool_t) <= sizeof(conc_hub_pool_t),
               "conc_hub_pool_t too small");

static hub_pool_t *pool_of(const conc_hub_pool_t *p) {
  hub_pool_t *hp = (hub_pool_t *)(void *)p;
  return hp && hp->magic == POOL_MAGIC ? hp : NULL;
}

static bool pool_has_room(const hub_pool_t *p) {
  return p->size == 0 || p->count + p->reserved < p->size;
}

/* Hand free slots to the spawners at the head of the queue. */
static void pool_grant(hub_pool_t *p) {
  while (p->spawners.head && pool_has_room(p)) {
    wnode_t *n = p->spawners.head;
    wl_remove(n);
    n->granted = true;
    p->reserved++;
    wake_future(n->wake, NULL);
  }
}

static void pool_member_done(hub_pool_t *p, conc_greenlet_t *g) {
  if (g->pool_prev)
    g->pool_prev->pool_next = g->pool_next;
  else
    p->members = g->pool_next;
  if (g->pool_next)
    g->pool_next->pool_prev = g->pool_prev;
  g->pool = NULL;
  p->count--;
  pool_grant(p);
  if (p->count == 0)
    wl_wake_all(&p->joiners);
}

static void pool_add(hub_pool_t *p, conc_greenlet_t *g) {
  g->pool = p;
  g->pool_next = p->members;
  if (p->members)
    p->members->pool_prev = g;
  p->members = g;
  p->count++;
}

static int spawn_on(conc_loop_t *loop, hub_pool_t *pool, conc_aio_fn_t fn,
                    void *arg, const conc_aio_task_opts_t *opts, double delay,
                    conc_greenlet_t **out) {
  conc_greenlet_t *g = calloc(1, sizeof *g);
  if (!g)
    return CONC_ENOMEM;
  conc_aio_task_opts_t o = opts ? *opts : (conc_aio_task_opts_t){0};
  char name[40];
  if (!o.name) {
    snprintf(name, sizeof name, "Greenlet-%lu",
             atomic_fetch_add(&greenlet_counter, 1) + 1);
    o.name = name;
  }
  g->fn = fn;
  g->arg = arg;
  g->loop = loop;
  g->owner = pthread_self();
  g->refs = 1;
  g->delay = delay;
  int rc = conc_aio_create_task(loop, greenlet_run, g, &o, &g->task);
  if (rc) {
    free(g);
    return rc;
  }
  rc = conc_aio_future_add_done_callback(g->task, on_greenlet_done, g);
  if (rc) {
    /* Untracked, it must never run; the task may still read g, so g is
     * left to it rather than freed (out of memory only). */
    g->killed = true;
    (void)conc_aio_cancel(g->task, NULL);
    return rc;
  }
  live_push(g);
  g->held_next = hub.held;
  if (hub.held)
    hub.held->held_prev = g;
  hub.held = g;
  if (pool)
    pool_add(pool, g);
  if (out) {
    g->refs++;
    *out = g;
  }
  return 0;
}

int conc_hub_pool_init(conc_hub_pool_t *p, size_t size) {
  if (!p)
    return CONC_EINVAL;
  hub_pool_t *hp = (hub_pool_t *)(void *)p;
  memset(p, 0, sizeof *p);
  hp->size = size;
  hp->magic = POOL_MAGIC;
  return 0;
}

int conc_hub_pool_destroy(conc_hub_pool_t *p) {
  hub_pool_t *hp = pool_of(p);
  if (!hp)
    return CONC_EINVAL;
  if (hp->count || hp->spawners.head || hp->joiners.head)
    return CONC_EBUSY;
  hp->magic = 0;
  return 0;
}

/* Wait for a slot, FIFO: 0 with a slot reserved for the caller. */
static int pool_wait_slot(hub_pool_t *p) {
  ctx_t c;
  int rc = ctx_enter(NULL, &c);
  if (rc)
    return rc;
  wnode_t w;
  do {
    rc = block(&c, &p->spawners, &w, -1);
  } while (rc >= 0 && !w.granted);
  if (rc < 0 && w.granted) {
    p->reserved--;
    pool_grant(p); /* the slot goes to the next in line */
  }
  return rc < 0 ? rc : 0;
}

int conc_hub_pool_spawn(conc_hub_pool_t *p, conc_aio_fn_t fn, void *arg,
                        const conc_aio_task_opts_t *opts,
                        conc_greenlet_t **out) {
  hub_pool_t *hp = pool_of(p);
  if (!hp || !fn)
    return CONC_EINVAL;
  conc_loop_t *loop = hub_loop_get();
  if (!loop)
    return CONC_ENOMEM;
  bool reserved = false;
  if (!pool_has_room(hp) || hp->spawners.head) {
    int rc = pool_wait_slot(hp);
    if (rc)
      return rc;
    reserved = true;
  }
  int rc = spawn_on(loop, hp, fn, arg, opts, 0, out);
  if (reserved) {
    hp->reserved--;
    if (rc)
      pool_grant(hp);
  }
  return rc;
}

int conc_hub_pool_join(conc_hub_pool_t *p, double timeout) {
  hub_pool_t *hp = pool_of(p);
  if (!hp || isnan(timeout))
    return CONC_EINVAL;
  if (hp->count == 0)
    return 0;
  ctx_t c;
  int rc = ctx_enter(NULL, &c);
  if (rc)
    return rc;
  double deadline = deadline_of(&c, timeout);
  while (hp->count) {
    wnode_t w;
    rc = block(&c, &hp->joiners, &w, delay_to(&c, deadline));
    if (rc == 1)
      return hp->count ? CONC_ETIMEDOUT : 0;
    if (rc < 0)
      return rc;
  }
  return 0;
}

int conc_hub_pool_kill(conc_hub_pool_t *p, bool block_, double timeout) {
  hub_pool_t *hp = pool_of(p);
  if (!hp || isnan(timeout))
    return CONC_EINVAL;
  if (block_ && hp->count) {
    ctx_t c;
    int rc = ctx_enter(NULL, &c);
    if (rc)
      return rc;
  }
  for (conc_greenlet_t *g = hp->members; g; g = g->pool_next)
    (void)conc_greenlet_kill(g, false, 0);
  return block_ ? conc_hub_pool_join(p, timeout) : 0;
}

size_t conc_hub_pool_len(const conc_hub_pool_t *p) {
  const hub_pool_t *hp = pool_of(p);
  return hp ? hp->count : 0;
}

size_t conc_hub_pool_free_count(const conc_hub_pool_t *p) {
  const hub_pool_t *hp = pool_of(p);
  if (!hp)
    return 0;
  if (hp->size == 0)
    return SIZE_MAX;
  size_t used = hp->count + hp->reserved;
  return used < hp->size ? hp->size - used : 0;
}

/* ---- Timeout ------------------------------------------------------------- */

static void scope_unlink(hub_timeout_t *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    hub.scopes = t->next;
  if (t->next)
    t->next->prev = t->prev;
  t->prev = t->next = NULL;
}

/* Expiry: gevent throws Timeout into the greenlet; here the owner task is
 * cancelled (its pending call returns, and the hub call turns the
 * CONC_ECANCELED into CONC_ETIMEDOUT), or main's loop run is ended. */
static void on_scope_expired(void *arg) {
  hub_timeout_t *t = arg;
  t->timer = (conc_handle_t){0};
  t->state = TO_EXPIRED;
  t->expired = true;
  if (t->owner)
    (void)conc_aio_cancel(t->owner, "gevent.Timeout");
  else
    wake_future(hub.main_wake, &mark_scope);
}

static bool scope_active(const hub_timeout_t *t) {
  return t->state == TO_ARMED || t->state == TO_EXPIRED ||
         t->state == TO_DELIVERED;
}

int conc_hub_timeout_start(conc_hub_timeout_t *pub, double seconds) {
  hub_timeout_t *t = (hub_timeout_t *)(void *)pub;
  if (!t || isnan(seconds))
    return CONC_EINVAL;
  if (scope_active(t))
    return CONC_ESTATE;
  conc_aio_future_t *task = conc_aio_current_task();
  if (!task && conc_loop_running())
    return CONC_ESTATE;
  conc_loop_t *loop = task ? conc_aio_future_loop(task) : hub_loop_get();
  if (!loop)
    return CONC_ENOMEM;
  memset(pub, 0, sizeof *pub);
  t->loop = loop;
  if (seconds != CONC_FOREVER && seconds <= CONC_TIMEOUT_MAX) {
    int rc = conc_loop_call_later(loop, seconds > 0 ? seconds : 0,
                                  on_scope_expired, t, &t->timer);
    if (rc)
      return rc;
  }
  t->owner = task ? conc_aio_future_retain(task) : NULL;
  t->cancelling0 = task ? conc_aio_task_cancelling(task) : 0;
  t->state = TO_ARMED;
  t->next = hub.scopes;
  if (hub.scopes)
    hub.scopes->prev = t;
  hub.scopes = t;
  return 0;
}

int conc_hub_timeout_cancel(conc_hub_timeout_t *pub) {
  hub_timeout_t *t = (hub_timeout_t *)(void *)pub;
  if (!t)
    return CONC_EINVAL;
  if (!scope_active(t))
    return 0;
  if (t->state == TO_ARMED)
    (void)conc_loop_cancel(t->loop, t->timer);
  else if (t->state == TO_EXPIRED && t->owner)
    (void)conc_aio_task_uncancel(t->owner); /* no hub call took it */
  scope_unlink(t);
  conc_aio_future_release(t->owner);
  t->owner = NULL;
  t->state = TO_ENDED;
  return 0;
}

bool conc_hub_timeout_pending(const conc_hub_timeout_t *pub) {
  const hub_timeout_t *t = (const hub_timeout_t *)(const void *)pub;
  return t && t->state == TO_ARMED;
}

bool conc_hub_timeout_expired(const conc_hub_timeout_t *pub) {
  const hub_timeout_t *t = (const hub_timeout_t *)(const void *)pub;
  return t && t->expired;
}
