/*
 * The waiter queue the async primitives (aio_sync.c) and queues
 * (aio_queue.c) share: a doubly linked list of waiters, each parked on a
 * loop future of its own. Confined to the loop's thread like its users.
 */
#ifndef CONC_AIO_WQ_INT_H
#define CONC_AIO_WQ_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/aiosync.h"
#include "conc/loop.h"

typedef struct conc__aio_waiter {
  struct conc__aio_waiter *prev, *next;
  conc_aio_future_t *fut;
  uint64_t ticket; /* queues: arrival order, kept across re-waits */
  int outcome;     /* barrier: index or CONC_EBROKEN, set by the waker */
  bool queued;
} conc__aio_waiter_t;

static inline void conc__aio_wq_push(conc__aio_wq_t *q, conc__aio_waiter_t *w) {
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail)
    ((conc__aio_waiter_t *)q->tail)->next = w;
  else
    q->head = w;
  q->tail = w;
  q->n++;
  w->queued = true;
}

static inline void conc__aio_wq_unlink(conc__aio_wq_t *q,
                                       conc__aio_waiter_t *w) {
  if (!w->queued)
    return;
  if (w->prev)
    w->prev->next = w->next;
  else
    q->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->tail = w->prev;
  q->n--;
  w->queued = false;
}

#endif
