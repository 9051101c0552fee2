/*
 * Shared memory: anonymous shared allocations, named SharedMemory, and
 * Python's sharedctypes Value and Array.
 *
 * Anonymous memory (conc_shared_alloc) is MAP_SHARED|MAP_ANONYMOUS: it is
 * shared with every child forked after the allocation and disappears with
 * the last process that maps it, so nothing can leak. Put process-shared
 * objects there: conc_lock_t *l = conc_shared_alloc(sizeof *l);
 *
 * Named segments (conc_shm_t, multiprocessing.shared_memory.SharedMemory)
 * live in /dev/shm, are created 0600 with O_EXCL under names drawn from
 * getrandom(2), and live until some process unlinks them or, as with
 * Python's resource tracker, the whole program ends (the creating process
 * and every process forked from it), however it ends, SIGKILL included:
 * then the program's one tracker unlinks them. The tracker is no process's
 * child in the program, so wait() never sees it. Python 3.13's track=False
 * (.untracked) makes a segment that outlives the program.
 *
 * Value and Array handles are caller-allocated; the data (and the default
 * lock) live in anonymous shared memory, so a handle copied into a child by
 * fork reaches the same data.
 */
#ifndef CONC_SHARED_H
#define CONC_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/defs.h"
#include "conc/sync.h"

CONC_BEGIN_DECLS

/* ---- anonymous shared memory ------------------------------------------ */

/* Zero-filled MAP_SHARED memory of `size` bytes, 64-byte aligned; NULL with
 * errno ENOMEM (or EINVAL for size 0) on failure. */
CONC_EXTERN void *conc_shared_alloc(size_t size);
/* Unmap memory from conc_shared_alloc (in this process). NULL is a no-op. */
CONC_EXTERN void conc_shared_free(void *ptr);

/* ---- named shared memory ---------------------------------------------- */

#define CONC_SHM_NAME_MAX 248

typedef struct conc_shm {
  struct {
    void *buf;
    size_t size;
    int fd;
    bool creator;
    char name[CONC_SHM_NAME_MAX + 2];
  } priv;
} conc_shm_t;

/*
 * SharedMemory(name, create, size). create: a new segment of `size` bytes
 * (0 is CONC_EINVAL), zero-filled; name NULL picks a fresh random one
 * ("psm_" and 16 hex digits; a name taken meanwhile is drawn again).
 * Attach (create false): name is required (CONC_EINVAL), size is ignored,
 * and attaching never unlinks. A leading '/' is optional; any other '/' is
 * CONC_EINVAL. CONC_EEXIST (the name exists; with name NULL, 64 random
 * names in a row were taken), CONC_ENOENT, CONC_EOVERFLOW (size too large),
 * CONC_EMFILE (more than 1024 tracked segments live in the program).
 */
CONC_EXTERN int conc_shm_init(conc_shm_t *shm, const char *name, bool create,
                              size_t size);

/* SharedMemory(..., track=...). Zero is Python's default (track=True). */
typedef struct conc_shm_opts {
  bool untracked; /* track=False: the program's end never unlinks it */
} conc_shm_opts_t;

/* conc_shm_init with options (NULL: defaults); .untracked only matters for
 * create (attaching never tracks). */
CONC_EXTERN int conc_shm_init_ex(conc_shm_t *shm, const char *name, bool create,
                                 size_t size, const conc_shm_opts_t *opts);
CONC_EXTERN void *conc_shm_buf(const conc_shm_t *shm);
CONC_EXTERN size_t conc_shm_size(const conc_shm_t *shm);
/* The name without the leading '/', as Python reports it. */
CONC_EXTERN const char *conc_shm_name(const conc_shm_t *shm);
/* close(): unmap in this process; never unlinks. A second close is a no-op. */
CONC_EXTERN int conc_shm_close(conc_shm_t *shm);
/* unlink(): remove the name (any process may) and stop tracking it.
 * CONC_ENOENT when gone. */
CONC_EXTERN int conc_shm_unlink(conc_shm_t *shm);
/* close(). */
CONC_EXTERN void conc_shm_destroy(conc_shm_t *shm);

/* ---- Value / Array (multiprocessing.sharedctypes) ---------------------- */

/*
 * Typecodes: c char, u wchar_t, b signed char, B unsigned char, h short,
 * H unsigned short, i int, I unsigned int, l long, L unsigned long,
 * q long long, Q unsigned long long, f float, d double. Returns the element
 * size, or CONC_EINVAL for an unknown code.
 */
CONC_EXTERN int conc_typecode_size(char typecode);

/*
 * Value(typecode, init, lock=...):
 *   zero opts        a fresh process-shared RLock (Python's lock=True/None)
 *   .raw = true      RawValue: no lock, no get_lock
 *   .lock / .rlock   the caller's own pshared Lock or RLock
 * .size: with typecode 0, a "Structure" of that many bytes.
 */
typedef struct conc_value_opts {
  bool raw;
  conc_lock_t *lock;
  conc_rlock_t *rlock;
  size_t size;
} conc_value_opts_t;
typedef conc_value_opts_t conc_array_opts_t;

typedef struct conc_value {
  struct {
    void *block;
    unsigned char *data;
    size_t elem, len;
    conc_lock_t *lock;
    conc_rlock_t *rlock;
    char typecode;
  } priv;
} conc_value_t;

typedef struct conc_array {
  conc_value_t v; /* private: an array is a value of `len` elements */
} conc_array_t;

/* init: the initial value (elem-size bytes), NULL for zero. CONC_EINVAL for
 * an unknown typecode, a private lock, both lock and rlock, or raw with a
 * lock; CONC_ENOMEM. */
CONC_EXTERN int conc_value_init(conc_value_t *v, char typecode,
                                const void *init,
                                const conc_value_opts_t *opts);
/* Unmap in this process (the data lives on in processes still mapping it). */
CONC_EXTERN void conc_value_destroy(conc_value_t *v);
/* .value getter/setter: each takes the lock around the copy, as Python's
 * property does; so v.value += 1 is two locked steps, not one. When the
 * lock's previous holder died, the copy is done, the lock is marked
 * consistent and CONC_EOWNERDEAD is returned as a warning. */
CONC_EXTERN int conc_value_get(conc_value_t *v, void *out);
CONC_EXTERN int conc_value_set(conc_value_t *v, const void *in);
/* get_obj(): the data itself (use under the lock). */
CONC_EXTERN void *conc_value_ptr(const conc_value_t *v);
CONC_EXTERN char conc_value_typecode(const conc_value_t *v);
/* get_lock(): sets exactly one of *rlock / *lock (the other NULL).
 * CONC_ESTATE for a raw value. */
CONC_EXTERN int conc_value_get_lock(const conc_value_t *v, conc_rlock_t **rlock,
                                    conc_lock_t **lock);
/* with v.get_lock(): results of the lock's acquire (CONC_EOWNERDEAD ...). */
CONC_EXTERN int conc_value_acquire(conc_value_t *v);
CONC_EXTERN int conc_value_release(conc_value_t *v);
/* copy(): a new raw value with the same bytes, independent of `src`. */
CONC_EXTERN int conc_value_copy(conc_value_t *dst, conc_value_t *src);

/* Array(typecode, size_or_initializer): len elements, copied from init or
 * zero-filled when init is NULL. */
CONC_EXTERN int conc_array_init(conc_array_t *a, char typecode, size_t len,
                                const void *init,
                                const conc_array_opts_t *opts);
CONC_EXTERN void conc_array_destroy(conc_array_t *a);
CONC_EXTERN size_t conc_array_len(const conc_array_t *a);
/* a[i] (negative i counts from the end). CONC_EINDEX out of range. Each
 * takes the lock, as Python's synchronized wrapper does. */
CONC_EXTERN int conc_array_get(conc_array_t *a, ptrdiff_t i, void *out);
CONC_EXTERN int conc_array_set(conc_array_t *a, ptrdiff_t i, const void *in);
/* a[start:start+n] read / assigned (same length), under the lock.
 * CONC_EINVAL when the range does not fit. */
CONC_EXTERN int conc_array_read(conc_array_t *a, size_t start, size_t n,
                                void *out);
CONC_EXTERN int conc_array_write(conc_array_t *a, size_t start, size_t n,
                                 const void *in);
/* Array('c').value: the bytes up to the first NUL, copied NUL-terminated
 * into out (cap bytes; CONC_EOVERFLOW if it does not fit). Set: CONC_EINVAL
 * ("byte string too long") when strlen(s) > len; NUL-terminated if room. */
CONC_EXTERN int conc_array_value(conc_array_t *a, char *out, size_t cap);
CONC_EXTERN int conc_array_set_value(conc_array_t *a, const char *s);
CONC_EXTERN void *conc_array_ptr(const conc_array_t *a);
CONC_EXTERN int conc_array_get_lock(const conc_array_t *a, conc_rlock_t **rlock,
                                    conc_lock_t **lock);
CONC_EXTERN int conc_array_acquire(conc_array_t *a);
CONC_EXTERN int conc_array_release(conc_array_t *a);

CONC_END_DECLS

#endif
