/*
 * aio_taskgroup: asyncio.TaskGroup on the public loop API. The first child
 * that fails cancels its siblings and the task inside the group; exit
 * waits for every child and reports every error (ExceptionGroup).
 *
 * Locking protocol: none. The group, its children and their done
 * callbacks all live on the loop's thread.
 *
 * Lifetimes: the group retains each child task until the child's done
 * callback has run, and exit does not return (nor free the group) before
 * every child has been seen done, so no callback outlives the group.
 */
#include <stdlib.h>

#include "conc/error.h"
#include "conc/loop.h"

struct tg_child {
  conc_aio_taskgroup_t *g;
  conc_aio_future_t *task;
  struct tg_child *prev, *next;
};

struct conc_aio_taskgroup {
  conc_loop_t *loop;
  conc_aio_future_t *parent;
  struct tg_child head; /* children not yet done: a ring */
  size_t ntasks;
  bool exiting, aborting, parent_cancel_requested;
  int *errors; /* child codes in failure order */
  size_t nerrors, caperrors;
  int first_error;
  conc_aio_future_t *on_completed; /* exit waits on it */
};

int conc_aio_taskgroup_enter(conc_aio_taskgroup_t **out) {
  if (!out)
    return CONC_EINVAL;
  conc_aio_future_t *parent = conc_aio_current_task();
  if (!parent)
    return CONC_ESTATE;
  conc_aio_taskgroup_t *g = calloc(1, sizeof *g);
  if (!g)
    return CONC_ENOMEM;
  g->loop = conc_aio_future_loop(parent);
  g->parent = parent;
  g->head.next = g->head.prev = &g->head;
  *out = g;
  return 0;
}

/* An error is counted even when there is no memory to keep it. */
static void tg_add_error(conc_aio_taskgroup_t *g, int code) {
  if (g->nerrors == 0)
    g->first_error = code;
  if (g->nerrors == g->caperrors) {
    size_t cap = g->caperrors ? 2 * g->caperrors : 4;
    int *e = realloc(g->errors, cap * sizeof *e);
    if (e) {
      g->errors = e;
      g->caperrors = cap;
    }
  }
  if (g->nerrors < g->caperrors)
    g->errors[g->nerrors] = code;
  g->nerrors++;
}

static void tg_abort(conc_aio_taskgroup_t *g) {
  g->aborting = true;
  for (struct tg_child *c = g->head.next; c != &g->head; c = c->next)
    if (!conc_aio_future_done(c->task))
      conc_aio_cancel(c->task, NULL);
}

/* TaskGroup._on_task_done: the first failure aborts the group and cancels
 * the parent (once), which exit later uncancels. */
static void tg_on_task_done(conc_aio_future_t *t, void *arg) {
  struct tg_child *c = arg;
  conc_aio_taskgroup_t *g = c->g;
  c->prev->next = c->next;
  c->next->prev = c->prev;
  free(c);
  g->ntasks--;
  if (g->on_completed && g->ntasks == 0 &&
      !conc_aio_future_done(g->on_completed))
    conc_aio_future_set_result(g->on_completed, NULL);
  int code = conc_aio_future_cancelled(t) ? 0 : conc_aio_future_exception(t);
  conc_aio_future_release(t);
  if (code == 0)
    return;
  tg_add_error(g, code);
  if (!g->aborting && !g->parent_cancel_requested &&
      !conc_aio_future_done(g->parent)) {
    tg_abort(g);
    g->parent_cancel_requested = true;
    conc_aio_cancel(g->parent, NULL);
  }
}

int conc_aio_taskgroup_create_task(conc_aio_taskgroup_t *g, conc_aio_fn_t fn,
                                   void *arg, const conc_aio_task_opts_t *opts,
                                   conc_aio_future_t **out) {
  if (!g || !fn)
    return CONC_EINVAL;
  if ((g->exiting && g->ntasks == 0) || g->aborting)
    return CONC_ESTATE; /* "is finished" / "is shutting down" */
  struct tg_child *c = calloc(1, sizeof *c);
  if (!c)
    return CONC_ENOMEM;
  int rc = conc_aio_create_task(g->loop, fn, arg, opts, &c->task);
  if (rc == 0 &&
      (rc = conc_aio_future_add_done_callback(c->task, tg_on_task_done, c))) {
    conc_aio_cancel(c->task, NULL);
    conc_aio_future_release(c->task);
  }
  if (rc) {
    free(c);
    return rc;
  }
  c->g = g;
  c->prev = g->head.prev;
  c->next = &g->head;
  c->prev->next = c;
  g->head.prev = c;
  g->ntasks++;
  if (out)
    *out = conc_aio_future_retain(c->task);
  return 0;
}

/* The while loop of __aexit__: a cancel of the parent that the group did
 * not cause aborts the group and is propagated. */
static bool tg_wait_children(conc_aio_taskgroup_t *g) {
  bool cancelled = false;
  while (g->ntasks > 0) {
    int rc =
        g->on_completed ? 0 : conc_aio_future_create(g->loop, &g->on_completed);
    if (rc == 0)
      rc = conc_aio_await(g->on_completed, NULL);
    else
      rc = conc_aio_sleep(0.001); /* no memory for a future: poll */
    if (rc == CONC_ECANCELED && !g->aborting) {
      cancelled = true;
      tg_abort(g);
    }
    conc_aio_future_release(g->on_completed);
    g->on_completed = NULL;
  }
  return cancelled;
}

/* TaskGroup.__aexit__ with the uncancel after the wait (Python 3.13's
 * order, so a child failing during exit is uncancelled too). */
int conc_aio_taskgroup_exit(conc_aio_taskgroup_t *g, int rc, int *errors,
                            size_t cap, size_t *nerrors) {
  if (!g)
    return CONC_EINVAL;
  if (conc_aio_current_task() != g->parent || g->exiting)
    return CONC_ESTATE;
  g->exiting = true;
  bool propagate = rc == CONC_ECANCELED;
  if (rc != 0 && !g->aborting)
    tg_abort(g);
  if (tg_wait_children(g))
    propagate = true;
  if (g->parent_cancel_requested && conc_aio_task_uncancel(g->parent) == 0)
    propagate = false;
  int ret;
  if (propagate && g->nerrors == 0) {
    ret = CONC_ECANCELED;
  } else {
    if (rc != 0 && rc != CONC_ECANCELED)
      tg_add_error(g, rc);
    ret = g->nerrors ? g->first_error : 0;
  }
  size_t kept = g->nerrors < g->caperrors ? g->nerrors : g->caperrors;
  for (size_t i = 0; errors && i < cap && i < kept; i++)
    errors[i] = g->errors[i];
  if (nerrors)
    *nerrors = g->nerrors;
  free(g->errors);
  free(g);
  return ret;
}
