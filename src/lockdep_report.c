/*
 * The lock-order checker's reports and queries (conc/lockdep.h,
 * docs/lockdep.md): the text of each report, where it goes (stderr or the
 * user's sink), the report counters, the class and edge lists and the
 * dump (also the exit report). The classes, the order graph and the hooks
 * that find what to report are in lockdep.c; lockdep-int.h holds what the
 * two files share.
 *
 * Locking protocol:
 * - conc__lockdep_graph_mu (lockdep.c's graph lock) guards the sink and its
 *   user pointer, the once-per-report table of first_time and the walk of
 *   the edges behind a cycle. It is never held while a report is written
 *   or handed to the sink.
 * - Each report kind builds its text in one static buffer (too big for a
 *   small stack) under its own mutex (rep_mu, cyc_mu); those are taken
 *   before graph_mu, never after it.
 * - The report counters are relaxed atomics. The queries and the dump read
 *   the class and edge tables without a lock: their counts are loaded with
 *   acquire, and lockdep.c publishes each entry with a release store of
 *   its count.
 * - The caller's `busy` is set while a report takes the thread's name and
 *   runs the sink, so the checker does not follow the locks they take.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<execinfo.h>)
#include <execinfo.h>
#define LD_HAVE_BACKTRACE 1
#endif
#endif

#include "conc/thread.h"
#include "lockdep-int.h"
#include "platform-int.h"

static unsigned long nreports[CONC_LOCKDEP_KINDS]; /* atomic */
static conc_lockdep_sink_t sink;
static void *sink_user;

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

/* ------------------------------------------------------ reports */

struct rb {
  size_t len;
  char buf[8192];
};

__attribute__((format(printf, 2, 3))) static void rb_add(struct rb *b,
                                                         const char *fmt, ...) {
  if (b->len >= sizeof b->buf - 1)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->buf + b->len, sizeof b->buf - b->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    b->len += (size_t)n < sizeof b->buf - b->len ? (size_t)n
                                                 : sizeof b->buf - b->len - 1;
}

/* One line per frame: function+offset, and the address for addr2line. */
static void rb_frames(struct rb *b, void *const *bt, int n) {
  char where[160];
  for (int i = 0; i < n; i++) {
    conc__ld_site_name(bt[i], where, sizeof where);
    rb_add(b, "      #%d %s [%p]\n", i, where, bt[i]);
  }
}

/* The user's call site of the acquisition being checked, if any: a
 * backtrace starts there instead of inside the library. */
__thread const void *conc__lockdep_from;

/* Up to CONC__LOCKDEP_BT frames, from conc__lockdep_from when it is among them, else after the
 * `skip` innermost ones (the checker's own). */
int conc__lockdep_grab_frames(void **bt, int skip) {
#ifdef LD_HAVE_BACKTRACE
  void *all[CONC__LOCKDEP_BT + 8];
  int n = backtrace(all, CONC__LOCKDEP_BT + 8);
  int start = n > skip ? skip : n;
  for (int i = 0; conc__lockdep_from && i < n; i++)
    if (all[i] == conc__lockdep_from) {
      start = i;
      break;
    }
  int k = n - start < CONC__LOCKDEP_BT ? n - start : CONC__LOCKDEP_BT;
  memcpy(bt, all + start, (size_t)k * sizeof *bt);
  return k;
#else
  (void)bt;
  (void)skip;
  return 0;
#endif
}

/* The caller's thread name; the caller has set busy. */
void conc__lockdep_thread_label(char *out, size_t n) {
  conc_thread_t *t = conc_current_thread();
  const char *nm = t ? conc_thread_name(t) : NULL;
  snprintf(out, n, "%s", nm ? nm : "?");
}

const char *conc__lockdep_cname(uint16_t id) {
  return id && id <= LOAD(&conc__lockdep_nclasses)
             ? conc__lockdep_classes[id].name
             : "?";
}

const char *conc__lockdep_ctype(uint16_t id) {
  return id && id <= LOAD(&conc__lockdep_nclasses)
             ? conc__lockdep_type_name[conc__lockdep_classes[id].type]
             : "?";
}

/* Once per (kind, class, other class); under conc__lockdep_graph_mu. */
static bool first_time(int kind, uint16_t cls, uint16_t other) {
  static uint64_t seen[4096];
  uint64_t key = (uint64_t)kind << 32 | (uint64_t)cls << 16 | other;
  uint32_t h = conc__lockdep_hash_ptr((void *)(uintptr_t)key);
  for (uint32_t i = 0; i < 4096; i++) {
    uint64_t *s = &seen[(h + i) & 4095];
    if (*s == key)
      return false;
    if (*s == 0) {
      *s = key;
      return true;
    }
  }
  return false;
}

static void emit(struct conc__lockdep_thread *t, int kind, const char *title,
                 uint16_t cls, uint16_t other, const char *thread,
                 const struct rb *b) {
  ADD(&nreports[kind], 1ul);
  pthread_mutex_lock(&conc__lockdep_graph_mu);
  conc_lockdep_sink_t fn = sink;
  void *user = sink_user;
  pthread_mutex_unlock(&conc__lockdep_graph_mu);
  conc_lockdep_report_t r = {kind,
                             title,
                             conc__lockdep_cname(cls),
                             other ? conc__lockdep_cname(other) : NULL,
                             thread,
                             b->buf};
  t->busy = true;
  if (fn) {
    fn(&r, user);
  } else {
    ssize_t w = write(2, b->buf, b->len);
    (void)w;
  }
  t->busy = false;
  if (LOAD(&conc__ld_flags) & CONC_LOCKDEP_ABORT)
    abort();
}

/* The reports other than a cycle: a title, a sentence, where it happened,
 * and where the other lock was taken. */
void conc__lockdep_report(struct conc__lockdep_thread *t, int kind,
                          const char *title, uint16_t cls, uint16_t other,
                          const void *other_site, const char *what) {
  pthread_mutex_lock(&conc__lockdep_graph_mu);
  bool first = first_time(kind, cls, other);
  pthread_mutex_unlock(&conc__lockdep_graph_mu);
  if (!first)
    return;
  static struct rb b; /* under rep_mu: too big for a small stack */
  static pthread_mutex_t rep_mu = PTHREAD_MUTEX_INITIALIZER;
  char thread[48], where[160];
  void *bt[CONC__LOCKDEP_BT];
  t->busy = true;
  conc__lockdep_thread_label(thread, sizeof thread);
  int n = conc__lockdep_grab_frames(bt, 2);
  pthread_mutex_lock(&rep_mu);
  b.len = 0;
  rb_add(&b, "libconc lockdep: %s\n  thread \"%s\" (tid %d) %s, at:\n", title,
         thread, (int)conc__gettid(), what);
  rb_frames(&b, bt, n);
  if (other) {
    conc__ld_site_name(other_site, where, sizeof where);
    rb_add(&b, "  \"%s\" (%s) was taken at %s\n", conc__lockdep_cname(other),
           conc__lockdep_ctype(other), where);
  }
  t->busy = false;
  emit(t, kind, title, cls, other, thread, &b);
  pthread_mutex_unlock(&rep_mu);
}

void conc__lockdep_report_cycle(struct conc__lockdep_thread *t,
                                const struct conc__lockdep_entry *held,
                                uint16_t cls, const uint16_t *path, int len,
                                const char *thread, void *const *bt, int nbt) {
  static struct rb b;
  static pthread_mutex_t cyc_mu = PTHREAD_MUTEX_INITIALIZER;
  const char *title = "lock-order inversion (possible deadlock)";
  char where[160];
  pthread_mutex_lock(&cyc_mu);
  b.len = 0;
  conc__ld_site_name(held->site, where, sizeof where);
  rb_add(&b,
         "libconc lockdep: %s\n"
         "  thread \"%s\" (tid %d) takes \"%s\" (%s) while it holds \"%s\" "
         "(%s), taken at %s; it takes \"%s\" at:\n",
         title, thread, (int)conc__gettid(), conc__lockdep_cname(cls),
         conc__lockdep_ctype(cls), conc__lockdep_cname(held->cls),
         conc__lockdep_ctype(held->cls), where, conc__lockdep_cname(cls));
  rb_frames(&b, bt, nbt);
  rb_add(&b, "  the opposite order was recorded before:\n");
  pthread_mutex_lock(&conc__lockdep_graph_mu);
  for (int i = 0; i + 1 < len; i++) {
    int64_t k = conc__lockdep_edge_index((uint32_t)path[i] << 16 | path[i + 1]);
    if (k < 0)
      continue;
    const struct conc__lockdep_edge *e = conc__lockdep_edges[k];
    conc__ld_site_name(e->held_site, where, sizeof where);
    rb_add(&b,
           "    thread \"%s\" took \"%s\" while it held \"%s\" (taken at "
           "%s), at:\n",
           e->thread, conc__lockdep_cname(e->to), conc__lockdep_cname(e->from),
           where);
    rb_frames(&b, e->bt, e->nbt);
  }
  pthread_mutex_unlock(&conc__lockdep_graph_mu);
  rb_add(&b, "  two threads taking these locks in these orders can each wait "
             "for the other for ever.\n");
  emit(t, CONC_LOCKDEP_CYCLE, title, cls, held->cls, thread, &b);
  pthread_mutex_unlock(&cyc_mu);
}

/* ------------------------------------------------------ the sink, counters */

void conc_lockdep_set_sink(conc_lockdep_sink_t fn, void *user) {
  pthread_mutex_lock(&conc__lockdep_graph_mu);
  sink = fn;
  sink_user = user;
  pthread_mutex_unlock(&conc__lockdep_graph_mu);
}

unsigned long conc_lockdep_reports(int kind) {
  if (kind < 0 || kind >= CONC_LOCKDEP_KINDS)
    return 0;
  if (kind > 0)
    return LOAD(&nreports[kind]);
  unsigned long n = 0;
  for (int k = 1; k < CONC_LOCKDEP_KINDS; k++)
    n += LOAD(&nreports[k]);
  return n;
}

/* ------------------------------------------------------ queries */

int conc_lockdep_classes(conc_lockdep_class_t *out, size_t max, size_t *count) {
  if (!count || (!out && max))
    return CONC_EINVAL;
  uint32_t n = ACQ(&conc__lockdep_nclasses);
  for (uint32_t i = 1; i <= n && i - 1 < max; i++) {
    struct conc__lockdep_class *c = &conc__lockdep_classes[i];
    out[i - 1] = (conc_lockdep_class_t){i,
                                        c->name,
                                        conc__lockdep_type_name[c->type],
                                        LOAD(&c->acq),
                                        LOAD(&c->contended),
                                        LOAD(&c->wait_ns)};
  }
  *count = n;
  return 0;
}

int conc_lockdep_edges(conc_lockdep_edge_t *out, size_t max, size_t *count) {
  if (!count || (!out && max))
    return CONC_EINVAL;
  uint32_t n = ACQ(&conc__lockdep_nedges);
  for (uint32_t i = 0; i < n && i < max; i++)
    out[i] = (conc_lockdep_edge_t){conc__lockdep_edges[i]->from,
                                   conc__lockdep_edges[i]->to};
  *count = n;
  return 0;
}

int conc_lockdep_dump(int fd) {
  if (fd < 0)
    return CONC_EINVAL;
  FILE *f = fdopen(dup(fd), "w");
  if (!f)
    return CONC_EINVAL;
  uint32_t n = ACQ(&conc__lockdep_nclasses), ne = ACQ(&conc__lockdep_nedges);
  fprintf(f,
          "libconc lockdep: %u lock classes, %u order edges, %lu reports\n"
          "  %5s %12s %10s %10s  %-16s %s\n",
          n, ne, conc_lockdep_reports(0), "class", "acquired", "contended",
          "wait ms", "type", "name");
  for (uint32_t i = 1; i <= n; i++) {
    struct conc__lockdep_class *c = &conc__lockdep_classes[i];
    fprintf(f, "  %5u %12" PRIu64 " %10" PRIu64 " %10.3f  %-16s %s\n", i,
            LOAD(&c->acq), LOAD(&c->contended), (double)LOAD(&c->wait_ns) / 1e6,
            conc__lockdep_type_name[c->type], c->name);
  }
  if (ne)
    fprintf(f, "  order edges (held -> taken):\n");
  for (uint32_t i = 0; i < ne; i++)
    fprintf(f, "    \"%s\" -> \"%s\"\n",
            conc__lockdep_cname(conc__lockdep_edges[i]->from),
            conc__lockdep_cname(conc__lockdep_edges[i]->to));
  fclose(f);
  return 0;
}
