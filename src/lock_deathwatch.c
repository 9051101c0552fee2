/*
 * The pshared holder machinery of the lock word: the pshared waiter
 * accounting (kernel futex wakes and sleeper counts) and the death watch,
 * which marks a pshared word CONC__LW_DIED and wakes its sleepers when a
 * watched holder thread ends (the lock-word protocol is in lock.c).
 *
 * Locking protocol: dw.mu guards the death watch's table; the helper
 * thread (one per process, started by the first watch) polls without it,
 * on descriptors that only it closes (a waiter only drops its count).
 * The waiter accounting takes no lock: the kernel counts the sleepers.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#include <sys/syscall.h>
#if defined(__has_include)
#if __has_include(<linux/futex.h>)
#include <linux/futex.h>
#endif
#endif
/* The kernel's ABI; musl-gcc ships no linux/ headers. */
#ifndef FUTEX_WAKE
#define FUTEX_WAKE 1
#endif
#ifndef FUTEX_CMP_REQUEUE
#define FUTEX_CMP_REQUEUE 4
#endif
#endif

#include "sync-int.h"

/* ------------------------------------------ pshared waiter accounting */

static unsigned long shared_wakes;

unsigned long conc__sync_wakes(void) {
  return __atomic_load_n(&shared_wakes, __ATOMIC_RELAXED);
}

#if defined(__linux__)
/* The futex calls the platform wait has no use for: a wake that says how
 * many woke, and a count of sleepers (FUTEX_CMP_REQUEUE of a word onto
 * itself moves nobody and returns how many wait there). Harmless under
 * the condvar backend, whose pshared waits poll the word: nobody sleeps
 * in the kernel there, so counts are 0. */
int conc__sync_wake(const uint32_t *word, int n) {
  __atomic_fetch_add(&shared_wakes, 1ul, __ATOMIC_RELAXED);
  long r = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
  return r < 0 ? n : (int)r;
}

int conc__sync_sleepers(const uint32_t *word) {
  for (;;) {
    uint32_t v = conc__load_acquire(word);
    long r =
        syscall(SYS_futex, word, FUTEX_CMP_REQUEUE, 0, (long)INT_MAX, word, v);
    if (r >= 0)
      return (int)r;
    if (errno != EAGAIN)
      return -1;
  }
}
#else
int conc__sync_wake(const uint32_t *word, int n) {
  __atomic_fetch_add(&shared_wakes, 1ul, __ATOMIC_RELAXED);
  conc__wake(word, n, true);
  return n;
}

int conc__sync_sleepers(const uint32_t *word) {
  (void)word;
  return -1;
}
#endif

/* ------------------------------------------------------ the death watch */

/*
 * The kernel's robust-futex list cannot serve these words: it wants each
 * word 32 bytes before a list link of glibc's layout, which a 16-byte
 * Lock (a Value's data follows it at byte 32) has no room for, and only
 * the holder could unlink it, whereas any thread or process may release
 * a Lock (docs/sync.md). The death watch does its job instead: a pshared
 * waiter that has slept CONC__SHARED_FIRST_SLICE_NS registers (word,
 * holder tid) here, and one helper thread per process polls a pidfd per
 * holder (PIDFD_THREAD: readable once that thread has ended, by exit or
 * with its process). Then the helper swaps the word's stamp for
 * CONC__LW_DIED, if the word still names that holder, and wakes every
 * sleeper; a waiter about to sleep finds the word changed.
 */
#if defined(__linux__)
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#define DW_MAX 64

struct dw_entry {
  uint32_t *word;
  int32_t tid;
  int fd;     /* the holder's pidfd */
  int users;  /* waiters relying on the entry */
  bool used;  /* the slot holds an open fd */
  bool fired; /* the holder ended: not polled again */
};

static struct {
  pthread_mutex_t mu;
  int efd; /* eventfd: the table changed */
  bool running;
  bool no_thread; /* see conc__dw_before_fork */
  struct dw_entry e[DW_MAX];
} dw = {.mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1};

/*
 * ThreadSanitizer kills a child forked from a multi-threaded process when
 * it starts a thread (its die_after_fork). There, and only when its
 * runtime is present, the child does without the helper and polls the
 * holder every CONC__SHARED_FIRST_SLICE_NS instead.
 */
extern void __tsan_init(void) __attribute__((weak));
static bool fork_threaded;

void conc__dw_before_fork(void) { fork_threaded = !CONC__SINGLE_THREADED(); }

static void dw_signal(void) {
  uint64_t one = 1;
  ssize_t r = write(dw.efd, &one, sizeof one);
  (void)r; /* a full counter already signals */
}

static void dw_fire(struct dw_entry *e) {
  e->fired = true;
  if (e->users == 0)
    return;
  uint32_t w = conc__load_relaxed(e->word);
  while ((w & CONC__LW_OWNER) == (uint32_t)e->tid &&
         !conc__cas(e->word, &w, CONC__LW_DIED | (w & CONC__LW_WAITERS)))
    ;
  conc__wake(e->word, CONC__WAKE_ALL, true);
}

/* Rebuild the poll set under the lock, closing the fds nobody needs. */
static int dw_poll_set(struct pollfd *p, int *at) {
  int n = 0;
  p[n++] = (struct pollfd){.fd = dw.efd, .events = POLLIN};
  for (int i = 0; i < DW_MAX; i++) {
    struct dw_entry *e = &dw.e[i];
    if (e->used && e->users == 0) {
      close(e->fd);
      e->used = false;
    } else if (e->used && !e->fired) {
      at[n] = i;
      p[n++] = (struct pollfd){.fd = e->fd, .events = POLLIN};
    }
  }
  return n;
}

static void *dw_main(void *arg) {
  (void)arg;
  struct pollfd p[DW_MAX + 1];
  int at[DW_MAX + 1];
  for (;;) {
    pthread_mutex_lock(&dw.mu);
    int n = dw_poll_set(p, at);
    pthread_mutex_unlock(&dw.mu);
    if (poll(p, (nfds_t)n, -1) <= 0)
      continue;
    if (p[0].revents) {
      uint64_t v;
      ssize_t r = read(dw.efd, &v, sizeof v);
      (void)r;
    }
    pthread_mutex_lock(&dw.mu);
    for (int k = 1; k < n; k++)
      if (p[k].revents)
        dw_fire(&dw.e[at[k]]);
    pthread_mutex_unlock(&dw.mu);
  }
  return NULL;
}

/* The helper blocks every signal: they are meant for the user's threads. */
static bool dw_start_locked(void) {
  if (dw.no_thread)
    return false;
  if (dw.efd < 0)
    dw.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (dw.efd < 0 || dw.running)
    return dw.efd >= 0;
  sigset_t all, old;
  sigfillset(&all);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  pthread_sigmask(SIG_SETMASK, &all, &old);
  dw.running = pthread_create(&t, &a, dw_main, NULL) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&a);
  return dw.running;
}

/* Kernels before 6.9 know no PIDFD_THREAD: a process's first thread can
 * still be watched as the process. */
static int pidfd_of(int32_t tid) {
  int fd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
  if (fd < 0 && errno == EINVAL)
    fd = (int)syscall(SYS_pidfd_open, tid, 0);
  return fd;
}

static int dw_find_locked(uint32_t *word, int32_t tid) {
  int free_slot = -1;
  for (int i = 0; i < DW_MAX; i++) {
    struct dw_entry *e = &dw.e[i];
    if (e->used && e->word == word && e->tid == tid && !e->fired)
      return i;
    if (!e->used && free_slot < 0)
      free_slot = i;
  }
  if (free_slot < 0)
    return -1;
  int fd = pidfd_of(tid);
  if (fd < 0)
    return -1;
  dw.e[free_slot] =
      (struct dw_entry){.word = word, .tid = tid, .fd = fd, .used = true};
  dw_signal();
  return free_slot;
}

/* A handle for conc__dw_unwatch, or -1: this holder cannot be watched. */
int conc__dw_watch(uint32_t *word, int32_t tid) {
  int h = -1;
  pthread_mutex_lock(&dw.mu);
  if (dw_start_locked())
    h = dw_find_locked(word, tid);
  if (h >= 0)
    dw.e[h].users++;
  pthread_mutex_unlock(&dw.mu);
  return h;
}

void conc__dw_unwatch(int h) {
  pthread_mutex_lock(&dw.mu);
  if (--dw.e[h].users == 0)
    dw_signal();
  pthread_mutex_unlock(&dw.mu);
}

/* The helper does not exist in a child: start afresh there. */
void conc__dw_after_fork(void) {
  pthread_mutex_init(&dw.mu, NULL);
  for (int i = 0; i < DW_MAX; i++)
    if (dw.e[i].used)
      close(dw.e[i].fd);
  memset(dw.e, 0, sizeof dw.e);
  if (dw.efd >= 0)
    close(dw.efd);
  dw.efd = -1;
  dw.running = false;
  dw.no_thread = fork_threaded && &__tsan_init != NULL;
}

/* The slice of a sleeper that the watch cannot serve. */
int64_t conc__dw_fallback_slice(void) {
  return dw.no_thread ? CONC__SHARED_FIRST_SLICE_NS : CONC__SHARED_SLICE_NS;
}
#else
int conc__dw_watch(uint32_t *word, int32_t tid) {
  (void)word;
  (void)tid;
  return -1;
}
void conc__dw_unwatch(int h) { (void)h; }
void conc__dw_before_fork(void) {}
void conc__dw_after_fork(void) {}
int64_t conc__dw_fallback_slice(void) { return CONC__SHARED_SLICE_NS; }
#endif
