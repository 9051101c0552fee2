/*
 * Internal layout of a Manager-style container's shared block (see
 * manager.c for the commit protocol). Tests use it to play a process that
 * dies in the middle of an update.
 */
#ifndef CONC_MANAGER_INT_H
#define CONC_MANAGER_INT_H

#include <stdint.h>

#include "conc/sync.h"

enum { CONC__MGR_DICT = 1, CONC__MGR_LIST = 2 };
enum { CONC__MGR_BYTES = 0 }; /* record tag; containers use their kind */

typedef struct conc__mgr_state {
  uint32_t idx;  /* which index array */
  uint32_t heap; /* which heap */
  uint64_t count;
  uint64_t used; /* bytes used in the current heap */
} conc__mgr_state_t;

typedef struct conc__mgr {
  conc_lock_t lock; /* first: tests reach it as the block's start */
  uint32_t kind;
  uint32_t cur;
  uint64_t max_items, max_bytes;
  conc__mgr_state_t st[2];
  /* then uint64_t index[2][max_items], unsigned char heap[2][max_bytes] */
} conc__mgr_t;

typedef struct conc__mgr_rec {
  uint32_t tag;
  uint32_t klen;
  uint64_t vlen;
} conc__mgr_rec_t;

static inline uint64_t *conc__mgr_index(conc__mgr_t *m, uint32_t which) {
  return (uint64_t *)(m + 1) + (uint64_t)which * m->max_items;
}

static inline unsigned char *conc__mgr_heap(conc__mgr_t *m, uint32_t which) {
  return (unsigned char *)conc__mgr_index(m, 2) +
         (uint64_t)which * m->max_bytes;
}

#endif
