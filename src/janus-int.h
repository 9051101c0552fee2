/*
 * The waiter interface between the thread objects (Queue, SimpleQueue,
 * Event) and waiters that are not threads: loop tasks (aio_janus.c).
 *
 * A thread object keeps its task waiters in a FIFO list under its own lock.
 * Whoever serves a waiter (a put that brings an item, a get that makes
 * room, a set, a shutdown) unlinks it and fills `item` and `rc` under that
 * lock, collects it on a private chain, and calls wake(w) for each after
 * the lock is released, so no loop code runs under a queue's lock. From
 * then on the object never touches w again. A waiter that leaves (timeout,
 * cancel) takes the same lock: if it is still linked it unlinks itself and
 * nobody serves it; otherwise it was served and `item`/`rc` are its
 * outcome. The thread layer knows nothing of loops: wake is a function
 * pointer.
 */
#ifndef CONC_JANUS_INT_H
#define CONC_JANUS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "conc/queue.h"
#include "conc/sync.h"

typedef struct conc__awaiter conc__awaiter_t;
struct conc__awaiter {
  conc__awaiter_t *next, *prev; /* the object's list; `next` also chains
                                   served waiters until they are woken */
  void (*wake)(conc__awaiter_t *w);
  const void *key; /* Event: the event waited on */
  void *item;      /* get: the item handed over; put: the item to put */
  int rc;          /* the outcome: 0, CONC_ESHUTDOWN, CONC_ENOMEM */
  bool linked;
};

/* A circular doubly linked list; *head is the oldest waiter or NULL. */
static inline void conc__awl_push(conc__awaiter_t **head, conc__awaiter_t *w) {
  conc__awaiter_t *h = *head;
  if (!h) {
    w->next = w->prev = w;
    *head = w;
  } else {
    w->prev = h->prev;
    w->next = h;
    h->prev->next = w;
    h->prev = w;
  }
  w->linked = true;
}

static inline void conc__awl_unlink(conc__awaiter_t **head,
                                    conc__awaiter_t *w) {
  if (w->next == w) {
    *head = NULL;
  } else {
    w->prev->next = w->next;
    w->next->prev = w->prev;
    if (*head == w)
      *head = w->next;
  }
  w->linked = false;
  w->next = w->prev = NULL;
}

/* Unlink the oldest waiter, fill its outcome and put it on the chain of
 * waiters to wake. */
static inline conc__awaiter_t *
conc__awl_serve(conc__awaiter_t **head, conc__awaiter_t **chain, int rc) {
  conc__awaiter_t *w = *head;
  conc__awl_unlink(head, w);
  w->rc = rc;
  w->next = *chain;
  *chain = w;
  return w;
}

/* After the lock is released: wake a chain, in the order the waiters were
 * served (the chain holds them newest first), so their tasks resume in
 * that order. Each wake only posts to its loop; w may be gone after it. */
static inline void conc__awl_wake_chain(conc__awaiter_t *chain) {
  conc__awaiter_t *fifo = NULL;
  while (chain) {
    conc__awaiter_t *next = chain->next;
    chain->next = fifo;
    fifo = chain;
    chain = next;
  }
  while (fifo) {
    conc__awaiter_t *next = fifo->next;
    fifo->next = NULL;
    fifo->wake(fifo);
    fifo = next;
  }
}

/* The answer of the *_or_wait calls when w was linked to wait. */
#define CONC__AW_QUEUED 1

/*
 * Queue (queue.c). get_or_wait: 0 and *out when an item is there now, the
 * code conc_queue_get_nowait would give for a shut-down queue, or
 * CONC__AW_QUEUED with w linked. put_or_wait: 0 when put now, CONC_ESHUTDOWN,
 * CONC_ENOMEM, or CONC__AW_QUEUED (full) with w linked. leave: true when w
 * was still linked (now unlinked, nothing happened); false when served, and
 * then, if give_back and w is a getter served with an item, the item goes
 * back to the front of the queue (or to the next waiter). CONC_EINVAL for a
 * dead queue, as the blocking calls.
 */
int conc__queue_get_or_wait(conc_queue_t *q, conc__awaiter_t *w, void **out);
int conc__queue_put_or_wait(conc_queue_t *q, conc__awaiter_t *w, void *item);
bool conc__queue_leave(conc_queue_t *q, conc__awaiter_t *w, bool is_put,
                       bool give_back);

/* SimpleQueue (squeue.c): as the Queue's, without shutdown. */
int conc__simple_queue_get_or_wait(conc_simple_queue_t *q, conc__awaiter_t *w,
                                   void **out);
bool conc__simple_queue_leave(conc_simple_queue_t *q, conc__awaiter_t *w,
                              bool give_back);

/* Event (aio_janus.c): called by conc_event_set, after the flag went up,
 * when nwait has CONC__EVENT_TASKS: serve every task waiting on e. */
void conc__event_serve_tasks(conc_event_t *e);

#endif
