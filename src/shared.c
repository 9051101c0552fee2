/*
 * Shared memory: anonymous allocations, named segments with a death-proof
 * tracker, and sharedctypes Value/Array.
 *
 * Locking protocol: trk_mu (a process-private mutex with fork handlers)
 * serialises this process's use of its tracker table. The table is a
 * MAP_SHARED page set up before the tracker is cloned; the tracker only
 * reads it after the creating process has died, so creator and tracker
 * never touch it at the same time. Value/Array data is guarded by the
 * value's own (pshared) lock, or by nothing for raw objects.
 *
 * Why named segments cannot leak: a segment is first created under a
 * private temporary name (O_EXCL, 0600) that is recorded in the table
 * *before* it exists, its inode is recorded next, and only then is it
 * link()ed to the public name (atomic, fails with EEXIST like O_EXCL). The
 * tracker, woken by PR_SET_PDEATHSIG when the creator dies, unlinks the
 * temporary name and the public name if (and only if) the public name still
 * refers to the recorded inode. Whatever instant the creator is killed at,
 * the tracker can tell exactly what is ours.
 */
#include "conc/shared.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <wchar.h>

#include "conc/error.h"
#include "init-int.h"
#include "platform-int.h"

/* ---- anonymous shared memory ------------------------------------------ */

#define HDR 64
#define MAGIC 0x636f6e63u

struct hdr {
  size_t total;
  uint32_t magic;
};

void *conc_shared_alloc(size_t size) {
  if (size == 0) {
    errno = EINVAL;
    return NULL;
  }
  if (size > PTRDIFF_MAX - HDR) {
    errno = ENOMEM;
    return NULL;
  }
  size_t total = size + HDR;
  void *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  struct hdr *h = m;
  h->total = total;
  h->magic = MAGIC;
  return (char *)m + HDR;
}

void conc_shared_free(void *ptr) {
  if (!ptr)
    return;
  struct hdr *h = (struct hdr *)((char *)ptr - HDR);
  if (h->magic == MAGIC)
    munmap(h, h->total);
}

/* ---- the tracker ------------------------------------------------------ */

#define SLOTS 128
#define SHM_DIR "/dev/shm/"

enum { SLOT_FREE, SLOT_RESERVED, SLOT_CREATED };

struct slot {
  uint32_t state;
  uint64_t dev, ino; /* of the object; 0 until known */
  char tmp[40];
  char name[CONC_SHM_NAME_MAX + 2];
};

static pthread_mutex_t trk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t trk_once = PTHREAD_ONCE_INIT;
static struct slot *table; /* SLOTS entries, MAP_SHARED with the tracker */
static pid_t table_owner;
static unsigned tmp_counter;

static void trk_prepare(void) { pthread_mutex_lock(&trk_mu); }
static void trk_parent(void) { pthread_mutex_unlock(&trk_mu); }
static void trk_child(void) { pthread_mutex_init(&trk_mu, NULL); }
static void trk_init(void) {
  conc__atfork_register(trk_prepare, trk_parent, trk_child);
}

static void path_of(char *out, size_t cap, const char *name) {
  snprintf(out, cap, SHM_DIR "%s", name + 1); /* names keep a leading '/' */
}

static void tracker_cleanup(void) {
  char path[sizeof SHM_DIR + CONC_SHM_NAME_MAX + 2];
  for (int i = 0; i < SLOTS; i++) {
    struct slot *s = &table[i];
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == SLOT_FREE)
      continue;
    if (s->tmp[0]) {
      path_of(path, sizeof path, s->tmp);
      unlink(path);
    }
    struct stat st;
    path_of(path, sizeof path, s->name);
    if (s->ino && stat(path, &st) == 0 && (uint64_t)st.st_ino == s->ino &&
        (uint64_t)st.st_dev == s->dev)
      unlink(path);
  }
}

/* The tracker: cloned without fork handlers (it only makes system calls),
 * holds no descriptor of ours, ignores terminal and termination signals
 * and waits for the death signal of its creator. */
static _Noreturn void tracker_main(pid_t creator) {
#ifdef SYS_close_range
  syscall(SYS_close_range, 0, ~0u, 0);
#else
  for (int fd = 0; fd < 1024; fd++)
    close(fd);
#endif
  setpgid(0, 0);
  sigset_t all, wake;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  sigemptyset(&wake);
  sigaddset(&wake, SIGUSR1);
  for (;;) {
    /* Re-armed after each signal: it also fires when the creating *thread*
     * exits while the process lives on. */
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    if (getppid() != creator)
      break;
    siginfo_t si;
    sigwaitinfo(&wake, &si);
  }
  tracker_cleanup();
  _exit(0);
}

/* Caller holds trk_mu. */
static int ensure_tracker(void) {
  pid_t me = getpid();
  if (table && table_owner == me)
    return 0;
  if (table) /* inherited from our parent: its tracker keeps its copy */
    munmap(table, SLOTS * sizeof *table);
  table = mmap(NULL, SLOTS * sizeof *table, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (table == MAP_FAILED) {
    table = NULL;
    return CONC_ENOMEM;
  }
  long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) {
    int err = -errno;
    munmap(table, SLOTS * sizeof *table);
    table = NULL;
    return err;
  }
  if (pid == 0)
    tracker_main(me);
  table_owner = me;
  return 0;
}

static struct slot *slot_reserve(void) {
  for (int i = 0; i < SLOTS; i++)
    if (table[i].state == SLOT_FREE)
      return &table[i];
  return NULL;
}

static void slot_release(struct slot *s) {
  __atomic_store_n(&s->state, SLOT_FREE, __ATOMIC_RELEASE);
  s->ino = s->dev = 0;
  s->tmp[0] = s->name[0] = 0;
}

/* ---- named shared memory ---------------------------------------------- */

static int check_name(const char *name, char *out) {
  if (name[0] == '/')
    name++;
  size_t n = strlen(name);
  if (n == 0 || n > CONC_SHM_NAME_MAX || strchr(name, '/') ||
      !strcmp(name, ".") || !strcmp(name, ".."))
    return CONC_EINVAL;
  out[0] = '/';
  memcpy(out + 1, name, n + 1);
  return 0;
}

static int map_fd(conc_shm_t *shm, int fd, size_t size) {
  void *m =
      mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED)
    return -errno;
  shm->priv.buf = m;
  shm->priv.size = size;
  shm->priv.fd = fd;
  return 0;
}

static int shm_attach(conc_shm_t *shm) {
  char path[sizeof SHM_DIR + CONC_SHM_NAME_MAX + 2];
  path_of(path, sizeof path, shm->priv.name);
  int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return -errno;
  struct stat st;
  int rc = fstat(fd, &st) < 0 ? -errno : map_fd(shm, fd, (size_t)st.st_size);
  if (rc)
    close(fd);
  return rc;
}

/* Caller holds trk_mu; the slot protocol is described at the top. */
static int shm_create_locked(conc_shm_t *shm, size_t size, bool pick) {
  int rc = ensure_tracker();
  if (rc)
    return rc;
  struct slot *s = slot_reserve();
  if (!s)
    return CONC_EMFILE;
  snprintf(s->tmp, sizeof s->tmp, "/conc.tmp.%ld.%u", (long)getpid(),
           tmp_counter++);
  memcpy(s->name, shm->priv.name, sizeof s->name);
  __atomic_store_n(&s->state, SLOT_RESERVED, __ATOMIC_RELEASE);
  char tmp[sizeof SHM_DIR + 40], path[sizeof SHM_DIR + CONC_SHM_NAME_MAX + 2];
  path_of(tmp, sizeof tmp, s->tmp);
  int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    rc = -errno;
    slot_release(s);
    return rc;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || ftruncate(fd, (off_t)size) < 0) {
    rc = errno == EFBIG || errno == EINVAL ? CONC_EOVERFLOW : -errno;
    goto fail;
  }
  s->dev = (uint64_t)st.st_dev;
  __atomic_store_n(&s->ino, (uint64_t)st.st_ino, __ATOMIC_RELEASE);
  for (int tries = 0;; tries++) {
    path_of(path, sizeof path, s->name);
    if (link(tmp, path) == 0)
      break;
    rc = -errno;
    if (rc != CONC_EEXIST || !pick || tries > 16)
      goto fail;
    snprintf(s->name, sizeof s->name, "/psm_%08lx%04x",
             (unsigned long)random() ^ (unsigned long)conc__now_ns(),
             (unsigned)tries);
    memcpy(shm->priv.name, s->name, sizeof s->name);
  }
  unlink(tmp);
  s->tmp[0] = 0;
  __atomic_store_n(&s->state, SLOT_CREATED, __ATOMIC_RELEASE);
  if ((rc = map_fd(shm, fd, size))) {
    unlink(path);
    close(fd);
    slot_release(s);
    return rc;
  }
  return 0;
fail:
  close(fd);
  unlink(tmp);
  slot_release(s);
  return rc;
}

int conc_shm_init(conc_shm_t *shm, const char *name, bool create, size_t size) {
  if (!shm)
    return CONC_EINVAL;
  conc_shm_t tmp = {.priv = {.fd = -1}};
  if (!create && !name)
    return CONC_EINVAL;
  if (create && size == 0)
    return CONC_EINVAL;
  if (size > (size_t)PTRDIFF_MAX)
    return CONC_EOVERFLOW;
  if (name) {
    int rc = check_name(name, tmp.priv.name);
    if (rc)
      return rc;
  } else {
    snprintf(tmp.priv.name, sizeof tmp.priv.name, "/psm_%08lx%04x",
             (unsigned long)conc__now_ns(), (unsigned)getpid() & 0xffff);
  }
  int rc;
  if (create) {
    pthread_once(&trk_once, trk_init);
    pthread_mutex_lock(&trk_mu);
    rc = shm_create_locked(&tmp, size, name == NULL);
    pthread_mutex_unlock(&trk_mu);
    tmp.priv.creator = true;
  } else {
    rc = shm_attach(&tmp);
  }
  if (rc == 0)
    *shm = tmp;
  return rc;
}

void *conc_shm_buf(const conc_shm_t *shm) { return shm ? shm->priv.buf : NULL; }
size_t conc_shm_size(const conc_shm_t *shm) { return shm ? shm->priv.size : 0; }
const char *conc_shm_name(const conc_shm_t *shm) {
  return shm ? shm->priv.name + 1 : NULL;
}

int conc_shm_close(conc_shm_t *shm) {
  if (!shm)
    return CONC_EINVAL;
  if (shm->priv.buf)
    munmap(shm->priv.buf, shm->priv.size ? shm->priv.size : 1);
  if (shm->priv.fd >= 0)
    close(shm->priv.fd);
  shm->priv.buf = NULL;
  shm->priv.fd = -1;
  return 0;
}

int conc_shm_unlink(conc_shm_t *shm) {
  if (!shm || !shm->priv.name[0])
    return CONC_EINVAL;
  char path[sizeof SHM_DIR + CONC_SHM_NAME_MAX + 2];
  path_of(path, sizeof path, shm->priv.name);
  struct stat st;
  bool known = stat(path, &st) == 0;
  if (unlink(path) < 0)
    return -errno;
  pthread_once(&trk_once, trk_init);
  pthread_mutex_lock(&trk_mu);
  for (int i = 0; table && known && i < SLOTS; i++)
    if (table[i].state == SLOT_CREATED && table[i].ino == (uint64_t)st.st_ino &&
        table[i].dev == (uint64_t)st.st_dev &&
        !strcmp(table[i].name, shm->priv.name))
      slot_release(&table[i]);
  pthread_mutex_unlock(&trk_mu);
  return 0;
}

void conc_shm_destroy(conc_shm_t *shm) { conc_shm_close(shm); }

/* ---- Value / Array ---------------------------------------------------- */

int conc_typecode_size(char typecode) {
  switch (typecode) {
  case 'c':
    return sizeof(char);
  case 'u':
    return sizeof(wchar_t);
  case 'b':
    return sizeof(signed char);
  case 'B':
    return sizeof(unsigned char);
  case 'h':
    return sizeof(short);
  case 'H':
    return sizeof(unsigned short);
  case 'i':
    return sizeof(int);
  case 'I':
    return sizeof(unsigned int);
  case 'l':
    return sizeof(long);
  case 'L':
    return sizeof(unsigned long);
  case 'q':
    return sizeof(long long);
  case 'Q':
    return sizeof(unsigned long long);
  case 'f':
    return sizeof(float);
  case 'd':
    return sizeof(double);
  default:
    return CONC_EINVAL;
  }
}

/* Block layout (64-byte aligned): [own RLock][data at 32]. A Value's data
 * shares the lock's cache line: a process that takes the lock then finds
 * the data already in its cache, and each hand-off between processes moves
 * one line, not two (Value += 1 from 2 processes: 45 -> 33 ns). */
#define DATA_OFF 32
_Static_assert(sizeof(conc_rlock_t) <= DATA_OFF, "rlock fits before the data");
_Static_assert(DATA_OFF % _Alignof(max_align_t) == 0, "data aligned");

static int obj_init(conc_value_t *v, char typecode, size_t len,
                    const void *init, const conc_value_opts_t *opts) {
  static const conc_value_opts_t defaults;
  if (!v)
    return CONC_EINVAL;
  if (!opts)
    opts = &defaults;
  int elem = typecode
                 ? conc_typecode_size(typecode)
                 : (opts->size ? (int)(opts->size <= INT_MAX ? opts->size : 0)
                               : CONC_EINVAL);
  if (elem <= 0)
    return CONC_EINVAL;
  if ((opts->lock && opts->rlock) || (opts->raw && (opts->lock || opts->rlock)))
    return CONC_EINVAL;
  if ((opts->lock && !(opts->lock->priv.flags & CONC__SYNC_PSHARED)) ||
      (opts->rlock &&
       !(opts->rlock->priv.base.priv.flags & CONC__SYNC_PSHARED)))
    return CONC_EINVAL; /* a private lock would not lock other processes */
  if (len > (PTRDIFF_MAX - DATA_OFF) / (size_t)elem)
    return CONC_EOVERFLOW;
  unsigned char *block = conc_shared_alloc(DATA_OFF + len * (size_t)elem);
  if (!block)
    return CONC_ENOMEM;
  conc_value_t tmp = {.priv = {.block = block,
                               .data = block + DATA_OFF,
                               .elem = (size_t)elem,
                               .len = len,
                               .lock = opts->lock,
                               .rlock = opts->rlock,
                               .typecode = typecode}};
  if (!opts->raw && !opts->lock && !opts->rlock) {
    tmp.priv.rlock = (conc_rlock_t *)(void *)block;
    conc_rlock_init(tmp.priv.rlock, &(conc_rlock_opts_t){.pshared = true});
  }
  if (init)
    memcpy(tmp.priv.data, init, len * (size_t)elem);
  *v = tmp;
  return 0;
}

static int obj_lock(conc_value_t *v) {
  if (v->priv.rlock)
    return conc_rlock_acquire(v->priv.rlock);
  if (v->priv.lock)
    return conc_lock_acquire(v->priv.lock);
  return 0;
}

/* Release after a locked copy; `rc` is the acquire's result. */
static int obj_unlock(conc_value_t *v, int rc) {
  if (v->priv.rlock) {
    if (rc == CONC_EOWNERDEAD)
      conc_rlock_mark_consistent(v->priv.rlock);
    conc_rlock_release(v->priv.rlock);
  } else if (v->priv.lock) {
    if (rc == CONC_EOWNERDEAD)
      conc_lock_mark_consistent(v->priv.lock);
    conc_lock_release(v->priv.lock);
  }
  return rc;
}

/* Copy n elements at index i out (to_obj false) or in (true), locked. */
static int obj_copy(conc_value_t *v, size_t i, size_t n, void *buf, bool in) {
  if (!v || !v->priv.block || !buf)
    return CONC_EINVAL;
  if (i > v->priv.len || n > v->priv.len - i)
    return CONC_EINVAL;
  int rc = obj_lock(v);
  if (rc && rc != CONC_EOWNERDEAD)
    return rc;
  unsigned char *at = v->priv.data + i * v->priv.elem;
  if (in)
    memcpy(at, buf, n * v->priv.elem);
  else
    memcpy(buf, at, n * v->priv.elem);
  return obj_unlock(v, rc);
}

static int obj_get_lock(const conc_value_t *v, conc_rlock_t **rlock,
                        conc_lock_t **lock) {
  if (!v || !v->priv.block)
    return CONC_EINVAL;
  if (!v->priv.rlock && !v->priv.lock)
    return CONC_ESTATE; /* a raw object has no get_lock */
  if (rlock)
    *rlock = v->priv.rlock;
  if (lock)
    *lock = v->priv.lock;
  return 0;
}

static int obj_acquire(conc_value_t *v) {
  if (!v || !v->priv.block)
    return CONC_EINVAL;
  if (!v->priv.rlock && !v->priv.lock)
    return CONC_ESTATE;
  return obj_lock(v);
}

static int obj_release(conc_value_t *v) {
  if (!v || !v->priv.block)
    return CONC_EINVAL;
  if (v->priv.rlock)
    return conc_rlock_release(v->priv.rlock);
  if (v->priv.lock)
    return conc_lock_release(v->priv.lock);
  return CONC_ESTATE;
}

static void obj_destroy(conc_value_t *v) {
  if (!v || !v->priv.block)
    return;
  conc_shared_free(v->priv.block);
  v->priv.block = NULL;
  v->priv.data = NULL;
}

int conc_value_init(conc_value_t *v, char typecode, const void *init,
                    const conc_value_opts_t *opts) {
  return obj_init(v, typecode, 1, init, opts);
}
void conc_value_destroy(conc_value_t *v) { obj_destroy(v); }
int conc_value_get(conc_value_t *v, void *out) {
  return obj_copy(v, 0, 1, out, false);
}
int conc_value_set(conc_value_t *v, const void *in) {
  return obj_copy(v, 0, 1, (void *)(uintptr_t)in, true);
}
void *conc_value_ptr(const conc_value_t *v) { return v ? v->priv.data : NULL; }
char conc_value_typecode(const conc_value_t *v) {
  return v ? v->priv.typecode : 0;
}
int conc_value_get_lock(const conc_value_t *v, conc_rlock_t **rlock,
                        conc_lock_t **lock) {
  return obj_get_lock(v, rlock, lock);
}
int conc_value_acquire(conc_value_t *v) { return obj_acquire(v); }
int conc_value_release(conc_value_t *v) { return obj_release(v); }

int conc_value_copy(conc_value_t *dst, conc_value_t *src) {
  if (!dst || !src || !src->priv.block)
    return CONC_EINVAL;
  conc_value_opts_t o = {.raw = true, .size = src->priv.elem};
  int rc = obj_init(dst, src->priv.typecode, src->priv.len, NULL, &o);
  if (rc)
    return rc;
  rc = obj_copy(src, 0, src->priv.len, dst->priv.data, false);
  return rc == CONC_EOWNERDEAD ? 0 : rc;
}

int conc_array_init(conc_array_t *a, char typecode, size_t len,
                    const void *init, const conc_array_opts_t *opts) {
  return a ? obj_init(&a->v, typecode, len, init, opts) : CONC_EINVAL;
}
void conc_array_destroy(conc_array_t *a) {
  if (a)
    obj_destroy(&a->v);
}
size_t conc_array_len(const conc_array_t *a) { return a ? a->v.priv.len : 0; }

static int index_of(const conc_array_t *a, ptrdiff_t i, size_t *out) {
  if (!a)
    return CONC_EINVAL;
  ptrdiff_t len = (ptrdiff_t)a->v.priv.len;
  if (i < 0)
    i += len;
  if (i < 0 || i >= len)
    return CONC_EINVAL; /* IndexError */
  *out = (size_t)i;
  return 0;
}

int conc_array_get(conc_array_t *a, ptrdiff_t i, void *out) {
  size_t at;
  int rc = index_of(a, i, &at);
  return rc ? rc : obj_copy(&a->v, at, 1, out, false);
}

int conc_array_set(conc_array_t *a, ptrdiff_t i, const void *in) {
  size_t at;
  int rc = index_of(a, i, &at);
  return rc ? rc : obj_copy(&a->v, at, 1, (void *)(uintptr_t)in, true);
}

int conc_array_read(conc_array_t *a, size_t start, size_t n, void *out) {
  return a ? obj_copy(&a->v, start, n, out, false) : CONC_EINVAL;
}

int conc_array_write(conc_array_t *a, size_t start, size_t n, const void *in) {
  return a ? obj_copy(&a->v, start, n, (void *)(uintptr_t)in, true)
           : CONC_EINVAL;
}

int conc_array_value(conc_array_t *a, char *out, size_t cap) {
  if (!a || !out || a->v.priv.typecode != 'c' || !a->v.priv.block)
    return CONC_EINVAL;
  int rc = obj_lock(&a->v);
  if (rc && rc != CONC_EOWNERDEAD)
    return rc;
  const char *s = (const char *)a->v.priv.data;
  size_t n = strnlen(s, a->v.priv.len);
  int res = 0;
  if (n + 1 > cap) {
    res = CONC_EOVERFLOW;
  } else {
    memcpy(out, s, n);
    out[n] = 0;
  }
  rc = obj_unlock(&a->v, rc);
  return res ? res : rc;
}

int conc_array_set_value(conc_array_t *a, const char *s) {
  if (!a || !s || a->v.priv.typecode != 'c' || !a->v.priv.block)
    return CONC_EINVAL;
  size_t n = strlen(s);
  if (n > a->v.priv.len)
    return CONC_EINVAL; /* byte string too long */
  int rc = obj_lock(&a->v);
  if (rc && rc != CONC_EOWNERDEAD)
    return rc;
  memcpy(a->v.priv.data, s, n);
  if (n < a->v.priv.len)
    a->v.priv.data[n] = 0;
  return obj_unlock(&a->v, rc);
}

void *conc_array_ptr(const conc_array_t *a) {
  return a ? a->v.priv.data : NULL;
}
int conc_array_get_lock(const conc_array_t *a, conc_rlock_t **rlock,
                        conc_lock_t **lock) {
  return a ? obj_get_lock(&a->v, rlock, lock) : CONC_EINVAL;
}
int conc_array_acquire(conc_array_t *a) {
  return a ? obj_acquire(&a->v) : CONC_EINVAL;
}
int conc_array_release(conc_array_t *a) {
  return a ? obj_release(&a->v) : CONC_EINVAL;
}
