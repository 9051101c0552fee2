/*
 * Manager-style shared containers: multiprocessing.Manager().dict() and
 * .list() for C, without a server process.
 *
 * The container lives in anonymous MAP_SHARED memory (conc_shared_alloc),
 * so every child forked after init reaches the same data through its copy
 * of the handle, as a Python proxy reaches the manager's object. Every
 * operation takes a process-shared lock, like one proxy round-trip.
 *
 * What differs from Python:
 *   - no server process: nothing to start or shut down;
 *   - keys and values are byte strings copied in and out (Python pickles);
 *   - fixed capacity chosen at init: max_items entries and max_bytes of
 *     key+value storage (each entry costs 16 + klen + vlen bytes rounded up
 *     to 8). A full container returns CONC_EFULL and changes nothing;
 *   - a value can be a reference to another shared dict or list (the
 *     "nested proxy"): mutations through it are seen by everyone. A value
 *     stored as bytes (a "plain" nested list) is a copy: changing the copy
 *     you got out changes nothing in the container, as in Python;
 *   - a process killed mid-update never leaves a torn container: each update
 *     is built off to the side and published by one atomic store, and the
 *     next operation after such a death repairs the lock by itself;
 *   - lookups are linear scans (a Manager is a small, shared dictionary, not
 *     a hash table) and each update copies the index: O(n) per operation.
 *
 * Errors: CONC_EINVAL for NULL objects or bad arguments, CONC_EKEY for a
 * missing key (KeyError), CONC_EINDEX for an index out of range (IndexError,
 * as conc_array_get), CONC_ETOOSHORT when the caller's buffer is too small
 * (the needed size is still stored in *len and nothing changes), CONC_EFULL,
 * CONC_ESTATE when a value is a container where bytes were asked for, or the
 * other way round.
 */
#ifndef CONC_MANAGER_H
#define CONC_MANAGER_H

#include <stdbool.h>
#include <stddef.h>

#include "conc/defs.h"

CONC_BEGIN_DECLS

/* Zero fields: 64 items, 16 KiB of key+value bytes. */
typedef struct conc_manager_opts {
  size_t max_items;
  size_t max_bytes;
} conc_manager_opts_t;

typedef struct conc_shared_dict {
  struct {
    void *blk;
    bool owner; /* false for a handle filled by get_dict: destroy is a no-op */
  } priv;
} conc_shared_dict_t;

typedef struct conc_shared_list {
  struct {
    void *blk;
    bool owner;
  } priv;
} conc_shared_list_t;

/* ---- dict ------------------------------------------------------------- */

/* manager.dict(). CONC_EINVAL, CONC_ENOMEM. */
CONC_EXTERN int conc_shared_dict_init(conc_shared_dict_t *d,
                                      const conc_manager_opts_t *opts);
/* Unmap in this process (the data lives on in processes still mapping it). */
CONC_EXTERN void conc_shared_dict_destroy(conc_shared_dict_t *d);
/* d[key] = val: a new key goes last; an existing key keeps its place. */
CONC_EXTERN int conc_shared_dict_set(conc_shared_dict_t *d, const void *key,
                                     size_t klen, const void *val, size_t vlen);
/* d[key]: copies the value into buf (cap bytes), its size into *len. */
CONC_EXTERN int conc_shared_dict_get(conc_shared_dict_t *d, const void *key,
                                     size_t klen, void *buf, size_t cap,
                                     size_t *len);
/* del d[key]. */
CONC_EXTERN int conc_shared_dict_del(conc_shared_dict_t *d, const void *key,
                                     size_t klen);
/* key in d: 1 or 0, or a negative error code. */
CONC_EXTERN int conc_shared_dict_contains(conc_shared_dict_t *d,
                                          const void *key, size_t klen);
/* len(d); 0 for NULL (or for a lock given up: CONC_ENOTRECOVERABLE). */
CONC_EXTERN size_t conc_shared_dict_len(conc_shared_dict_t *d);
/* list(d.keys())[i] in insertion order (CONC_EINDEX when i >= len). Loop i
 * from 0 while it returns 0; another process may change d meanwhile, as a
 * Python proxy's keys() is a snapshot only per call. */
CONC_EXTERN int conc_shared_dict_key_at(conc_shared_dict_t *d, size_t i,
                                        void *buf, size_t cap, size_t *len);
/* d.clear(). */
CONC_EXTERN int conc_shared_dict_clear(conc_shared_dict_t *d);
/* d[key] = other shared container (a nested proxy). The child must have been
 * created before the processes that use it were forked. */
CONC_EXTERN int conc_shared_dict_set_dict(conc_shared_dict_t *d,
                                          const void *key, size_t klen,
                                          const conc_shared_dict_t *child);
CONC_EXTERN int conc_shared_dict_set_list(conc_shared_dict_t *d,
                                          const void *key, size_t klen,
                                          const conc_shared_list_t *child);
/* d[key] as a proxy: fills *out with a borrowed handle to the same shared
 * container (destroying it is a no-op). CONC_ESTATE if d[key] is bytes or
 * the other kind of container. */
CONC_EXTERN int conc_shared_dict_get_dict(conc_shared_dict_t *d,
                                          const void *key, size_t klen,
                                          conc_shared_dict_t *out);
CONC_EXTERN int conc_shared_dict_get_list(conc_shared_dict_t *d,
                                          const void *key, size_t klen,
                                          conc_shared_list_t *out);

/* ---- list ------------------------------------------------------------- */

/* manager.list(). CONC_EINVAL, CONC_ENOMEM. */
CONC_EXTERN int conc_shared_list_init(conc_shared_list_t *l,
                                      const conc_manager_opts_t *opts);
CONC_EXTERN void conc_shared_list_destroy(conc_shared_list_t *l);
/* l.append(val). */
CONC_EXTERN int conc_shared_list_append(conc_shared_list_t *l, const void *val,
                                        size_t vlen);
/* l.insert(i, val): i is clamped to [0, len] after adding len to a negative
 * i, as Python does (never an IndexError). */
CONC_EXTERN int conc_shared_list_insert(conc_shared_list_t *l, ptrdiff_t i,
                                        const void *val, size_t vlen);
/* l[i] (negative i counts from the end). */
CONC_EXTERN int conc_shared_list_get(conc_shared_list_t *l, ptrdiff_t i,
                                     void *buf, size_t cap, size_t *len);
/* l[i] = val. */
CONC_EXTERN int conc_shared_list_set(conc_shared_list_t *l, ptrdiff_t i,
                                     const void *val, size_t vlen);
/* l.pop(i) (pop() is i = -1): CONC_EINDEX on an empty list or a bad index;
 * on CONC_ETOOSHORT the item stays in the list. buf may be NULL with cap 0
 * only to learn the size. */
CONC_EXTERN int conc_shared_list_pop(conc_shared_list_t *l, ptrdiff_t i,
                                     void *buf, size_t cap, size_t *len);
/* len(l); 0 for NULL (or for a lock given up: CONC_ENOTRECOVERABLE). */
CONC_EXTERN size_t conc_shared_list_len(conc_shared_list_t *l);
/* l.reverse(), l.clear(). */
CONC_EXTERN int conc_shared_list_reverse(conc_shared_list_t *l);
CONC_EXTERN int conc_shared_list_clear(conc_shared_list_t *l);

CONC_END_DECLS

#endif
