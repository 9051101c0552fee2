/*
 * Signals on the loop (loop.add_signal_handler): a sigaction handler writes
 * the signal number to a self-pipe the loop watches; the loop's reader
 * callback runs the registered callbacks on the loop's thread.
 *
 * Locking protocol: which loop owns which signal is a process-wide table
 * (g_owner, g_wfd) changed under g_mu, by loops registering or removing
 * handlers (rare). The signal handler only reads g_wfd[sig] with a relaxed
 * atomic load and writes one byte (async-signal-safe, errno preserved).
 * Each loop's own registrations are confined to the loop's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/loop.h"
#include "loop-int.h"

#ifndef NSIG
#define NSIG 65
#endif

typedef struct sigs {
  int rfd, wfd;
  conc_loop_cb_t cb[NSIG];
  void *arg[NSIG];
  struct sigaction old[NSIG];
  int count;
} sigs_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static conc_loop_t *g_owner[NSIG];
static int g_wfd[NSIG];

static void on_signal(int sig) {
  int saved = errno;
  int fd = __atomic_load_n(&g_wfd[sig], __ATOMIC_RELAXED);
  if (fd > 0) {
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(fd, &b, 1); /* a full pipe: the signal is pending */
    (void)w;
  }
  errno = saved;
}

static void on_readable(void *arg) {
  conc_loop_t *loop = arg;
  sigs_t *st = *conc__loop_slot(loop, CONC__LOOP_SLOT_SIGNALS);
  unsigned char buf[64];
  ssize_t n;
  while ((n = read(st->rfd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] < NSIG && st->cb[buf[i]])
        st->cb[buf[i]](st->arg[buf[i]]);
}

static void remove_all(conc_loop_t *loop);

static sigs_t *state(conc_loop_t *loop) {
  sigs_t **slot = (sigs_t **)conc__loop_slot(loop, CONC__LOOP_SLOT_SIGNALS);
  if (*slot)
    return *slot;
  sigs_t *st = calloc(1, sizeof *st);
  int p[2];
  if (!st)
    return NULL;
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    free(st);
    return NULL;
  }
  st->rfd = p[0];
  st->wfd = p[1];
  if (conc_loop_add_reader(loop, st->rfd, on_readable, loop) != 0) {
    close(p[0]);
    close(p[1]);
    free(st);
    return NULL;
  }
  *slot = st;
  conc__loop_set_closer(loop, CONC__LOOP_SLOT_SIGNALS, remove_all);
  return st;
}

static bool valid(int sig) {
  return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP &&
         !(sig >= 32 && sig < SIGRTMIN); /* reserved by the libc */
}

int conc_loop_add_signal_handler(conc_loop_t *loop, int sig, conc_loop_cb_t cb,
                                 void *arg) {
  int rc = conc__loop_check(loop);
  if (rc)
    return rc;
  if (!cb || !valid(sig))
    return CONC_EINVAL;
  sigs_t *st = state(loop);
  if (!st)
    return CONC_ENOMEM;
  pthread_mutex_lock(&g_mu);
  if (g_owner[sig] && g_owner[sig] != loop) {
    pthread_mutex_unlock(&g_mu);
    return CONC_EBUSY;
  }
  st->arg[sig] = arg;
  if (!st->cb[sig]) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    __atomic_store_n(&g_wfd[sig], st->wfd, __ATOMIC_RELAXED);
    g_owner[sig] = loop;
    if (sigaction(sig, &sa, &st->old[sig]) != 0) {
      rc = -errno;
      g_owner[sig] = NULL;
      __atomic_store_n(&g_wfd[sig], 0, __ATOMIC_RELAXED);
    } else {
      st->count++;
    }
  }
  if (rc == 0)
    st->cb[sig] = cb;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static void uninstall(sigs_t *st, int sig) {
  pthread_mutex_lock(&g_mu);
  sigaction(sig, &st->old[sig], NULL);
  __atomic_store_n(&g_wfd[sig], 0, __ATOMIC_RELAXED);
  g_owner[sig] = NULL;
  pthread_mutex_unlock(&g_mu);
  st->cb[sig] = NULL;
  st->count--;
}

bool conc_loop_remove_signal_handler(conc_loop_t *loop, int sig) {
  if (conc__loop_check(loop) != 0 || sig <= 0 || sig >= NSIG)
    return false;
  sigs_t *st = *conc__loop_slot(loop, CONC__LOOP_SLOT_SIGNALS);
  if (!st || !st->cb[sig])
    return false;
  uninstall(st, sig);
  return true;
}

static void remove_all(conc_loop_t *loop) {
  sigs_t **slot = (sigs_t **)conc__loop_slot(loop, CONC__LOOP_SLOT_SIGNALS);
  sigs_t *st = *slot;
  if (!st)
    return;
  for (int s = 1; s < NSIG; s++)
    if (st->cb[s])
      uninstall(st, s);
  conc_loop_remove_reader(loop, st->rfd);
  close(st->rfd);
  close(st->wfd);
  free(st);
  *slot = NULL;
}
