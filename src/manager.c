/*
 * Manager-style shared dict and list (see conc/manager.h).
 *
 * Locking protocol: one pshared conc_lock_t at the start of the shared block
 * guards everything; every public operation holds it for its whole length.
 *
 * Crash consistency: the published state is st[cur]. An update never writes
 * anything the published state refers to: it copies the index into the
 * other index array, puts new records past `used` in the current heap (or
 * compacts the live records into the other heap), writes st[!cur], and
 * commits with one release store of cur. A process killed before that store
 * leaves the old state intact; so after CONC_EOWNERDEAD the only repair is a
 * check of the published state (reset to empty if it is ever not sane) and
 * conc_lock_mark_consistent.
 */
#include "conc/manager.h"

#include <stdint.h>
#include <string.h>

#include "conc/error.h"
#include "conc/shared.h"
#include "conc/sync.h"
#include "manager-int.h"
#include "platform-int.h"

typedef struct txn {
  conc__mgr_t *m;
  conc__mgr_state_t nw;
  uint64_t *nidx;
} txn_t;

static uint64_t rec_size(size_t klen, size_t vlen) {
  return (sizeof(conc__mgr_rec_t) + klen + vlen + 7u) & ~(uint64_t)7u;
}

static uint64_t *index_of(conc__mgr_t *m, uint32_t which) {
  return conc__mgr_index(m, which);
}

static unsigned char *heap_of(conc__mgr_t *m, uint32_t which) {
  return conc__mgr_heap(m, which);
}

static const conc__mgr_state_t *published(conc__mgr_t *m) {
  return &m->st[conc__load_acquire(&m->cur)];
}

static conc__mgr_rec_t *rec_in(conc__mgr_t *m, const conc__mgr_state_t *s,
                               uint64_t i) {
  return (conc__mgr_rec_t *)(heap_of(m, s->heap) + index_of(m, s->idx)[i]);
}

static unsigned char *rec_key(conc__mgr_rec_t *r) {
  return (unsigned char *)(r + 1);
}
static unsigned char *rec_val(conc__mgr_rec_t *r) {
  return rec_key(r) + r->klen;
}

/* ---- block, lock and repair ------------------------------------------- */

static bool state_sane(conc__mgr_t *m, const conc__mgr_state_t *s) {
  if (s->idx > 1 || s->heap > 1 || s->count > m->max_items ||
      s->used > m->max_bytes)
    return false;
  for (uint64_t i = 0; i < s->count; i++) {
    uint64_t off = index_of(m, s->idx)[i];
    if (off + sizeof(conc__mgr_rec_t) > s->used)
      return false;
    conc__mgr_rec_t *r = rec_in(m, s, i);
    if (off + rec_size(r->klen, r->vlen) > s->used || r->tag > CONC__MGR_LIST)
      return false;
  }
  return true;
}

static void repair(conc__mgr_t *m) {
  uint32_t c = conc__load_relaxed(&m->cur);
  if (c <= 1 && state_sane(m, &m->st[c]))
    return;
  m->st[0] = (conc__mgr_state_t){0, 0, 0, 0};
  conc__store_release(&m->cur, 0u);
}

static int mgr_lock(conc__mgr_t *m) {
  int rc = conc_lock_acquire(&m->lock);
  if (rc == CONC_EOWNERDEAD) {
    repair(m);
    rc = conc_lock_mark_consistent(&m->lock);
  }
  return rc;
}

static void mgr_unlock(conc__mgr_t *m) { conc_lock_release(&m->lock); }

static int mgr_new(void **blk, uint32_t kind, const conc_manager_opts_t *o) {
  uint64_t items = o && o->max_items ? o->max_items : 64;
  uint64_t bytes = o && o->max_bytes ? o->max_bytes : 16384;
  bytes = (bytes + 7u) & ~(uint64_t)7u;
  if (items > (SIZE_MAX / 4) / 16 || bytes > (SIZE_MAX / 4) / 2)
    return CONC_ENOMEM;
  conc__mgr_t *m = conc_shared_alloc(sizeof *m + 2 * items * 8 + 2 * bytes);
  if (!m)
    return CONC_ENOMEM;
  int rc = conc_lock_init(&m->lock, &(conc_lock_opts_t){.pshared = true});
  if (rc != 0) {
    conc_shared_free(m);
    return rc;
  }
  m->kind = kind;
  m->max_items = items;
  m->max_bytes = bytes;
  *blk = m;
  return 0;
}

/* ---- transactions ----------------------------------------------------- */

static void txn_begin(txn_t *t, conc__mgr_t *m) {
  const conc__mgr_state_t *old = published(m);
  t->m = m;
  t->nw = *old;
  t->nw.idx = !old->idx;
  t->nidx = index_of(m, t->nw.idx);
  memcpy(t->nidx, index_of(m, old->idx), old->count * sizeof(uint64_t));
}

/* Copy the live records (all but entry `skip`) into the unused heap. */
static void txn_compact(txn_t *t, uint64_t skip) {
  conc__mgr_t *m = t->m;
  unsigned char *from = heap_of(m, t->nw.heap);
  uint32_t to_heap = !t->nw.heap;
  unsigned char *to = heap_of(m, to_heap);
  uint64_t pos = 0;
  for (uint64_t i = 0; i < t->nw.count; i++) {
    if (i == skip)
      continue;
    conc__mgr_rec_t *r = (conc__mgr_rec_t *)(from + t->nidx[i]);
    uint64_t n = rec_size(r->klen, r->vlen);
    memcpy(to + pos, r, n);
    t->nidx[i] = pos;
    pos += n;
  }
  t->nw.heap = to_heap;
  t->nw.used = pos;
}

/* Write a new record where nothing published points; its offset in *off. */
static int txn_put(txn_t *t, uint64_t skip, uint32_t tag, const void *key,
                   size_t klen, const void *val, size_t vlen, uint64_t *off) {
  conc__mgr_t *m = t->m;
  if (klen > UINT32_MAX || vlen > m->max_bytes)
    return CONC_EFULL;
  uint64_t need = rec_size(klen, vlen);
  if (need > m->max_bytes - t->nw.used) {
    txn_compact(t, skip);
    if (need > m->max_bytes - t->nw.used)
      return CONC_EFULL;
  }
  conc__mgr_rec_t *r = (conc__mgr_rec_t *)(heap_of(m, t->nw.heap) + t->nw.used);
  *r = (conc__mgr_rec_t){tag, (uint32_t)klen, vlen};
  if (klen)
    memcpy(rec_key(r), key, klen);
  if (vlen)
    memcpy(rec_val(r), val, vlen);
  *off = t->nw.used;
  t->nw.used += need;
  return 0;
}

static void txn_commit(txn_t *t) {
  conc__mgr_t *m = t->m;
  uint32_t next = !conc__load_relaxed(&m->cur);
  m->st[next] = t->nw;
  conc__store_release(&m->cur, next);
}

/* Insert a new record at position pos (0..count). */
static int insert_at(conc__mgr_t *m, uint64_t pos, uint32_t tag,
                     const void *key, size_t klen, const void *val,
                     size_t vlen) {
  txn_t t;
  txn_begin(&t, m);
  if (t.nw.count >= m->max_items)
    return CONC_EFULL;
  uint64_t off;
  int rc = txn_put(&t, UINT64_MAX, tag, key, klen, val, vlen, &off);
  if (rc != 0)
    return rc;
  memmove(t.nidx + pos + 1, t.nidx + pos,
          (t.nw.count - pos) * sizeof(uint64_t));
  t.nidx[pos] = off;
  t.nw.count++;
  txn_commit(&t);
  return 0;
}

static int replace_at(conc__mgr_t *m, uint64_t pos, uint32_t tag,
                      const void *key, size_t klen, const void *val,
                      size_t vlen) {
  txn_t t;
  txn_begin(&t, m);
  uint64_t off;
  int rc = txn_put(&t, pos, tag, key, klen, val, vlen, &off);
  if (rc != 0)
    return rc;
  t.nidx[pos] = off;
  txn_commit(&t);
  return 0;
}

static void remove_at(conc__mgr_t *m, uint64_t pos) {
  txn_t t;
  txn_begin(&t, m);
  memmove(t.nidx + pos, t.nidx + pos + 1,
          (t.nw.count - pos - 1) * sizeof(uint64_t));
  t.nw.count--;
  txn_commit(&t);
}

static void clear_all(conc__mgr_t *m) {
  txn_t t;
  txn_begin(&t, m);
  t.nw.count = 0;
  t.nw.used = 0;
  txn_commit(&t);
}

static int copy_out(const void *src, size_t n, void *buf, size_t cap,
                    size_t *len) {
  if (len)
    *len = n;
  if (n > cap)
    return CONC_ETOOSHORT;
  if (n)
    memcpy(buf, src, n);
  return 0;
}

/* ---- dict ------------------------------------------------------------- */

static conc__mgr_t *dict_blk(const conc_shared_dict_t *d) {
  conc__mgr_t *m = d ? d->priv.blk : NULL;
  return m && m->kind == CONC__MGR_DICT ? m : NULL;
}

static bool bytes_ok(const void *p, size_t n) { return p || n == 0; }

static int64_t dict_find(conc__mgr_t *m, const void *key, size_t klen) {
  const conc__mgr_state_t *s = published(m);
  for (uint64_t i = 0; i < s->count; i++) {
    conc__mgr_rec_t *r = rec_in(m, s, i);
    if (r->klen == klen && (klen == 0 || memcmp(rec_key(r), key, klen) == 0))
      return (int64_t)i;
  }
  return -1;
}

/* A dict or list handle: the block it names and whether it owns it (a
 * handle filled by get_dict/get_list borrows and never frees). */
static int handle_init(void **blk, bool *owner, uint32_t kind,
                       const conc_manager_opts_t *opts) {
  int rc = mgr_new(blk, kind, opts);
  *owner = rc == 0;
  return rc;
}

static void handle_destroy(void **blk, bool owner) {
  if (!*blk)
    return;
  if (owner)
    conc_shared_free(*blk);
  *blk = NULL;
}

int conc_shared_dict_init(conc_shared_dict_t *d,
                          const conc_manager_opts_t *opts) {
  if (!d)
    return CONC_EINVAL;
  return handle_init(&d->priv.blk, &d->priv.owner, CONC__MGR_DICT, opts);
}

void conc_shared_dict_destroy(conc_shared_dict_t *d) {
  if (d)
    handle_destroy(&d->priv.blk, d->priv.owner);
}

static int dict_store(conc_shared_dict_t *d, uint32_t tag, const void *key,
                      size_t klen, const void *val, size_t vlen) {
  conc__mgr_t *m = dict_blk(d);
  if (!m || !bytes_ok(key, klen) || !bytes_ok(val, vlen))
    return CONC_EINVAL;
  int rc = mgr_lock(m);
  if (rc != 0)
    return rc;
  int64_t i = dict_find(m, key, klen);
  if (i >= 0)
    rc = replace_at(m, (uint64_t)i, tag, key, klen, val, vlen);
  else
    rc = insert_at(m, published(m)->count, tag, key, klen, val, vlen);
  mgr_unlock(m);
  return rc;
}

int conc_shared_dict_set(conc_shared_dict_t *d, const void *key, size_t klen,
                         const void *val, size_t vlen) {
  return dict_store(d, CONC__MGR_BYTES, key, klen, val, vlen);
}

int conc_shared_dict_set_dict(conc_shared_dict_t *d, const void *key,
                              size_t klen, const conc_shared_dict_t *child) {
  if (!dict_blk(child))
    return CONC_EINVAL;
  return dict_store(d, CONC__MGR_DICT, key, klen, &child->priv.blk,
                    sizeof child->priv.blk);
}

int conc_shared_dict_set_list(conc_shared_dict_t *d, const void *key,
                              size_t klen, const conc_shared_list_t *child) {
  conc__mgr_t *c = child ? child->priv.blk : NULL;
  if (!c || c->kind != CONC__MGR_LIST)
    return CONC_EINVAL;
  return dict_store(d, CONC__MGR_LIST, key, klen, &child->priv.blk,
                    sizeof child->priv.blk);
}

/* Under the lock: the record for key, or NULL. */
static int dict_lookup(conc_shared_dict_t *d, const void *key, size_t klen,
                       conc__mgr_t **mp, conc__mgr_rec_t **rp) {
  conc__mgr_t *m = dict_blk(d);
  if (!m || !bytes_ok(key, klen))
    return CONC_EINVAL;
  int rc = mgr_lock(m);
  if (rc != 0)
    return rc;
  int64_t i = dict_find(m, key, klen);
  *mp = m;
  *rp = i >= 0 ? rec_in(m, published(m), (uint64_t)i) : NULL;
  return 0;
}

int conc_shared_dict_get(conc_shared_dict_t *d, const void *key, size_t klen,
                         void *buf, size_t cap, size_t *len) {
  if (!bytes_ok(buf, cap))
    return CONC_EINVAL;
  conc__mgr_t *m;
  conc__mgr_rec_t *r;
  int rc = dict_lookup(d, key, klen, &m, &r);
  if (rc != 0)
    return rc;
  if (!r)
    rc = CONC_EKEY;
  else if (r->tag != CONC__MGR_BYTES)
    rc = CONC_ESTATE;
  else
    rc = copy_out(rec_val(r), r->vlen, buf, cap, len);
  mgr_unlock(m);
  return rc;
}

static int dict_get_ref(conc_shared_dict_t *d, const void *key, size_t klen,
                        uint32_t tag, void **blk) {
  conc__mgr_t *m;
  conc__mgr_rec_t *r;
  int rc = dict_lookup(d, key, klen, &m, &r);
  if (rc != 0)
    return rc;
  if (!r)
    rc = CONC_EKEY;
  else if (r->tag != tag)
    rc = CONC_ESTATE;
  else
    memcpy(blk, rec_val(r), sizeof *blk);
  mgr_unlock(m);
  return rc;
}

int conc_shared_dict_get_dict(conc_shared_dict_t *d, const void *key,
                              size_t klen, conc_shared_dict_t *out) {
  if (!out)
    return CONC_EINVAL;
  void *blk;
  int rc = dict_get_ref(d, key, klen, CONC__MGR_DICT, &blk);
  if (rc == 0)
    *out = (conc_shared_dict_t){{blk, false}};
  return rc;
}

int conc_shared_dict_get_list(conc_shared_dict_t *d, const void *key,
                              size_t klen, conc_shared_list_t *out) {
  if (!out)
    return CONC_EINVAL;
  void *blk;
  int rc = dict_get_ref(d, key, klen, CONC__MGR_LIST, &blk);
  if (rc == 0)
    *out = (conc_shared_list_t){{blk, false}};
  return rc;
}

int conc_shared_dict_del(conc_shared_dict_t *d, const void *key, size_t klen) {
  conc__mgr_t *m;
  conc__mgr_rec_t *r;
  int rc = dict_lookup(d, key, klen, &m, &r);
  if (rc != 0)
    return rc;
  if (r)
    remove_at(m, (uint64_t)dict_find(m, key, klen));
  else
    rc = CONC_EKEY;
  mgr_unlock(m);
  return rc;
}

int conc_shared_dict_contains(conc_shared_dict_t *d, const void *key,
                              size_t klen) {
  conc__mgr_t *m;
  conc__mgr_rec_t *r;
  int rc = dict_lookup(d, key, klen, &m, &r);
  if (rc != 0)
    return rc;
  mgr_unlock(m);
  return r != NULL;
}

static size_t mgr_len(conc__mgr_t *m) {
  if (!m || mgr_lock(m) != 0)
    return 0;
  size_t n = (size_t)published(m)->count;
  mgr_unlock(m);
  return n;
}

size_t conc_shared_dict_len(conc_shared_dict_t *d) {
  return mgr_len(dict_blk(d));
}

int conc_shared_dict_key_at(conc_shared_dict_t *d, size_t i, void *buf,
                            size_t cap, size_t *len) {
  conc__mgr_t *m = dict_blk(d);
  if (!m || !bytes_ok(buf, cap))
    return CONC_EINVAL;
  int rc = mgr_lock(m);
  if (rc != 0)
    return rc;
  const conc__mgr_state_t *s = published(m);
  if (i >= s->count) {
    rc = CONC_EINDEX;
  } else {
    conc__mgr_rec_t *r = rec_in(m, s, i);
    rc = copy_out(rec_key(r), r->klen, buf, cap, len);
  }
  mgr_unlock(m);
  return rc;
}

static int mgr_clear(conc__mgr_t *m) {
  if (!m)
    return CONC_EINVAL;
  int rc = mgr_lock(m);
  if (rc != 0)
    return rc;
  clear_all(m);
  mgr_unlock(m);
  return 0;
}

int conc_shared_dict_clear(conc_shared_dict_t *d) {
  return mgr_clear(dict_blk(d));
}

/* ---- list ------------------------------------------------------------- */

static conc__mgr_t *list_blk(const conc_shared_list_t *l) {
  conc__mgr_t *m = l ? l->priv.blk : NULL;
  return m && m->kind == CONC__MGR_LIST ? m : NULL;
}

/* Python's index rule: negative counts from the end; false if out of range. */
static bool norm_index(conc__mgr_t *m, ptrdiff_t i, uint64_t *pos) {
  int64_t n = (int64_t)published(m)->count;
  int64_t k = i < 0 ? (int64_t)i + n : (int64_t)i;
  if (k < 0 || k >= n)
    return false;
  *pos = (uint64_t)k;
  return true;
}

int conc_shared_list_init(conc_shared_list_t *l,
                          const conc_manager_opts_t *opts) {
  if (!l)
    return CONC_EINVAL;
  return handle_init(&l->priv.blk, &l->priv.owner, CONC__MGR_LIST, opts);
}

void conc_shared_list_destroy(conc_shared_list_t *l) {
  if (l)
    handle_destroy(&l->priv.blk, l->priv.owner);
}

int conc_shared_list_insert(conc_shared_list_t *l, ptrdiff_t i, const void *val,
                            size_t vlen) {
  conc__mgr_t *m = list_blk(l);
  if (!m || !bytes_ok(val, vlen))
    return CONC_EINVAL;
  int rc = mgr_lock(m);
  if (rc != 0)
    return rc;
  int64_t n = (int64_t)published(m)->count;
  int64_t k = i < 0 ? (int64_t)i + n : (int64_t)i;
  k = k < 0 ? 0 : k > n ? n : k;
  rc = insert_at(m, (uint64_t)k, CONC__MGR_BYTES, NULL, 0, val, vlen);
  mgr_unlock(m);
  return rc;
}

int conc_shared_list_append(conc_shared_list_t *l, const void *val,
                            size_t vlen) {
  return conc_shared_list_insert(l, PTRDIFF_MAX, val, vlen);
}

/* l[i] copied out (get), and removed when `pop`. */
static int list_take(conc_shared_list_t *l, ptrdiff_t i, void *buf, size_t cap,
                     size_t *len, bool pop) {
  conc__mgr_t *m = list_blk(l);
  if (!m || !bytes_ok(buf, cap))
    return CONC_EINVAL;
  int rc = mgr_lock(m);
  if (rc != 0)
    return rc;
  uint64_t pos;
  if (!norm_index(m, i, &pos)) {
    rc = CONC_EINDEX;
  } else {
    conc__mgr_rec_t *r = rec_in(m, published(m), pos);
    rc = copy_out(rec_val(r), r->vlen, buf, cap, len);
    if (rc == 0 && pop)
      remove_at(m, pos);
  }
  mgr_unlock(m);
  return rc;
}

int conc_shared_list_get(conc_shared_list_t *l, ptrdiff_t i, void *buf,
                         size_t cap, size_t *len) {
  return list_take(l, i, buf, cap, len, false);
}

int conc_shared_list_set(conc_shared_list_t *l, ptrdiff_t i, const void *val,
                         size_t vlen) {
  conc__mgr_t *m = list_blk(l);
  if (!m || !bytes_ok(val, vlen))
    return CONC_EINVAL;
  int rc = mgr_lock(m);
  if (rc != 0)
    return rc;
  uint64_t pos;
  if (!norm_index(m, i, &pos))
    rc = CONC_EINDEX;
  else
    rc = replace_at(m, pos, CONC__MGR_BYTES, NULL, 0, val, vlen);
  mgr_unlock(m);
  return rc;
}

int conc_shared_list_pop(conc_shared_list_t *l, ptrdiff_t i, void *buf,
                         size_t cap, size_t *len) {
  return list_take(l, i, buf, cap, len, true);
}

size_t conc_shared_list_len(conc_shared_list_t *l) {
  return mgr_len(list_blk(l));
}

int conc_shared_list_reverse(conc_shared_list_t *l) {
  conc__mgr_t *m = list_blk(l);
  if (!m)
    return CONC_EINVAL;
  int rc = mgr_lock(m);
  if (rc != 0)
    return rc;
  txn_t t;
  txn_begin(&t, m);
  for (uint64_t a = 0, b = t.nw.count; a + 1 < b; a++, b--) {
    uint64_t x = t.nidx[a];
    t.nidx[a] = t.nidx[b - 1];
    t.nidx[b - 1] = x;
  }
  txn_commit(&t);
  mgr_unlock(m);
  return 0;
}

int conc_shared_list_clear(conc_shared_list_t *l) {
  return mgr_clear(list_blk(l));
}
