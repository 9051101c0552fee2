/*
 * Process: fork-based multiprocessing.Process.
 *
 * Locking protocol: one registry mutex (reg_mu) guards the creator's list of
 * children and every reap (waitpid), so a pid is never signalled after some
 * other thread has reaped it and cannot be reused under us. Nothing blocks
 * while holding reg_mu: a join first waits on the child's descriptor (a pidfd,
 * or the read end of a sentinel pipe whose write end only the child holds)
 * and on a non-reaping waitid(WNOWAIT) (without a time limit, only the
 * latter, on the pidfd), and then reaps with WNOHANG under the lock. Fork
 * handlers take reg_mu around every fork, so the child starts with a consistent
 * (and emptied: they are not its children) registry.
 */
#include "conc/process.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/error.h"
#include "conc/time.h"
#include "error-int.h"
#include "init-int.h"
#include "platform-int.h"
#include "process-int.h"
#include "shared-int.h"

#ifndef P_PIDFD /* an enumerator in libcs that have it */
#define P_PIDFD 3
#endif

enum { ST_INIT, ST_STARTED, ST_ENDED, ST_CLOSED };

/* The state is read without reg_mu by the checks of every call and changed
 * by whichever thread reaps: atomic, with acquire/release ordering so the
 * exit code written before an ST_ENDED store is seen after reading it. */
#define ST(p) __atomic_load_n(&(p)->priv.state, __ATOMIC_ACQUIRE)
#define SET_ST(p, v)                                                           \
  __atomic_store_n(&(p)->priv.state, (unsigned char)(v), __ATOMIC_RELEASE)
enum { K_CHILD, K_MAIN, K_PARENT, K_ORPHAN };

/* Present when the thread module is linked in: waits for non-daemon threads
 * (Python's threading._shutdown), which a child does before it exits. */
extern void conc_threading_shutdown(void) __attribute__((weak));

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static conc_process_t *head, *tail;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned counter;
static int pidfd_mode = -1; /* -1 unknown, 0 sentinel pipe, 1 pidfd */
static int self_sentinel_wfd = -1;
/* Without pidfd, a child joins its parent through a "life pipe": the parent
 * holds the write end, each child keeps the read end, which reports EOF once
 * the parent has died (Python's parent sentinel). life[] is this process's
 * own pipe, made at the first start without pidfd; parent_life_rfd is the
 * read end of our parent's. */
static int life[2] = {-1, -1};
static int parent_life_rfd = -1;

static conc_process_t main_obj = {.priv = {.fd = -1,
                                           .exitcode = CONC_EXITCODE_NONE,
                                           .state = ST_STARTED,
                                           .kind = K_MAIN,
                                           .name = "MainProcess"}};
static conc_process_t parent_obj;
static conc_process_t *current = &main_obj;

/* ---- registry ---------------------------------------------------------- */

static void list_add(conc_process_t *p) {
  p->priv.next = NULL;
  p->priv.prev = tail;
  if (tail)
    tail->priv.next = p;
  else
    head = p;
  tail = p;
  p->priv.listed = true;
}

static void list_del(conc_process_t *p) {
  if (!p->priv.listed)
    return;
  if (p->priv.prev)
    p->priv.prev->priv.next = p->priv.next;
  else
    head = p->priv.next;
  if (p->priv.next)
    p->priv.next->priv.prev = p->priv.prev;
  else
    tail = p->priv.prev;
  p->priv.next = p->priv.prev = NULL;
  p->priv.listed = false;
}

/* getpid() of this process, kept by the fork handler so that the checks
 * of every call need no system call. */
static pid_t self_pid;

static void ensure_init(void);

static pid_t my_pid(void) {
  pid_t pid = __atomic_load_n(&self_pid, __ATOMIC_RELAXED);
  if (pid == 0) {
    ensure_init(); /* the fork handler must exist before a pid is cached */
    pid = getpid();
    __atomic_store_n(&self_pid, pid, __ATOMIC_RELAXED);
  }
  return pid;
}

static void fork_prepare(void) { pthread_mutex_lock(&reg_mu); }
static void fork_parent(void) { pthread_mutex_unlock(&reg_mu); }
static void fork_child(void) {
  pthread_mutex_unlock(&reg_mu);
  head = tail = NULL;
  self_pid = getpid();
}

static void exit_function(void);

/* With lazy binding, a libc function that only children call is looked up
 * by the dynamic linker again in every child (symbol search plus page
 * faults on the GOT and the linker's data, a sizeable part of a start).
 * Calling each once here, harmlessly, binds it for every later child. */
static void bind_child_calls(void) {
  FILE *f = fopen("/dev/null", "r");
  if (f) {
    __fpurge(f);
    clearerr(f);
    (void)__fpending(f);
    (void)(ferror_unlocked(f) || feof_unlocked(f));
    fclose(f);
  }
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    dup2(fd, fd); /* same descriptor: does nothing */
    fcntl(fd, F_GETFD);
    close(fd);
  }
  int sig;
  prctl(PR_GET_PDEATHSIG, &sig);
  (void)getppid();
  pthread_mutex_t m; /* the library's fork handler re-initialises mutexes */
  pthread_mutex_init(&m, NULL);
  pthread_mutex_destroy(&m);
}

static void init_once(void) {
  bind_child_calls();
  conc__atfork_register(fork_prepare, fork_parent, fork_child);
  atexit(exit_function);
}

static void ensure_init(void) { pthread_once(&once, init_once); }

/* Reap `p` if it has ended (flags = WNOHANG) or wait for it (0). Caller holds
 * reg_mu. Returns true once the child is reaped. */
static bool reap_locked(conc_process_t *p, int flags) {
  if (ST(p) != ST_STARTED)
    return true;
  int st = 0;
  pid_t r;
  do
    r = waitpid(p->priv.pid, &st, flags);
  while (r < 0 && errno == EINTR);
  if (r == 0)
    return false;
  if (r < 0) /* reaped behind our back (SIGCHLD ignored): status lost */
    p->priv.exitcode = CONC_EXITCODE_NONE;
  else if (WIFSIGNALED(st))
    p->priv.exitcode = -WTERMSIG(st);
  else
    p->priv.exitcode = WEXITSTATUS(st);
  __atomic_store_n(&p->priv.state, (unsigned char)ST_ENDED, __ATOMIC_RELEASE);
  list_del(p);
  return true;
}

static bool poll_reap(conc_process_t *p) {
  pthread_mutex_lock(&reg_mu);
  bool done = reap_locked(p, WNOHANG);
  pthread_mutex_unlock(&reg_mu);
  return done;
}

/* ---- checks ------------------------------------------------------------ */

/* The checks Python makes before join/is_alive/terminate on a child. */
static int check_child(const conc_process_t *p) {
  if (!p)
    return CONC_EINVAL;
  if (ST(p) == ST_CLOSED)
    return CONC_ECLOSED;
  if (p->priv.kind == K_MAIN || p->priv.kind == K_PARENT || p == current)
    return CONC_ECHILD;
  if (ST(p) == ST_INIT)
    return CONC_ENOTSTARTED;
  if (p->priv.creator != my_pid())
    return CONC_ECHILD;
  return 0;
}

/* ---- construction ------------------------------------------------------ */

static int copy_name(conc_process_t *p, const char *name) {
  size_t n = strlen(name);
  if (n >= sizeof p->priv.name)
    return CONC_EINVAL;
  memcpy(p->priv.name, name, n + 1);
  return 0;
}

int conc_process_init(conc_process_t *p, conc_fn_t target, void *arg,
                      const conc_process_opts_t *opts) {
  static const conc_process_opts_t defaults;
  if (!p)
    return CONC_EINVAL;
  if (!opts)
    opts = &defaults;
  if (opts->daemon != CONC_DAEMON_INHERIT && opts->daemon != CONC_DAEMON_YES &&
      opts->daemon != CONC_DAEMON_NO)
    return CONC_EINVAL;
  if (opts->name && strlen(opts->name) >= CONC_PROCESS_NAME_MAX)
    return CONC_EINVAL;
  ensure_init();
  conc_process_t *cur = conc_current_process();
  unsigned n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
  char ident[sizeof p->priv.ident];
  int len = cur->priv.ident[0]
                ? snprintf(ident, sizeof ident, "%s:%u", cur->priv.ident, n)
                : snprintf(ident, sizeof ident, "%u", n);
  if (len < 0 || (size_t)len >= sizeof ident)
    return CONC_EOVERFLOW; /* nesting deeper than the identity buffer */
  memset(p, 0, sizeof *p);
  memcpy(p->priv.ident, ident, (size_t)len + 1);
  if (opts->name)
    copy_name(p, opts->name);
  else
    snprintf(p->priv.name, sizeof p->priv.name, "Process-%s", ident);
  p->priv.target = target;
  p->priv.arg = arg;
  p->priv.fd = -1;
  p->priv.exitcode = CONC_EXITCODE_NONE;
  SET_ST(p, ST_INIT);
  p->priv.kind = K_CHILD;
  p->priv.creator = my_pid();
  p->priv.daemon = opts->daemon == CONC_DAEMON_INHERIT
                       ? cur->priv.daemon
                       : opts->daemon == CONC_DAEMON_YES;
  p->priv.die_with_parent = opts->die_with_parent;
  return 0;
}

/* ---- start ------------------------------------------------------------- */

static bool have_pidfd(void) {
  int mode = __atomic_load_n(&pidfd_mode, __ATOMIC_RELAXED);
  if (mode < 0) {
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, my_pid(), 0);
    mode = fd >= 0;
    if (fd >= 0)
      close(fd);
#else
    mode = 0;
#endif
    __atomic_store_n(&pidfd_mode, mode, __ATOMIC_RELAXED);
  }
  return mode == 1;
}

void conc__process_use_pidfd(bool use) {
  __atomic_store_n(&pidfd_mode, use ? -1 : 0, __ATOMIC_RELAXED);
}

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  return fd >= 0 ? fd : -errno;
#else
  (void)pid;
  return CONC_ENOSYS;
#endif
}

/* 0, or -1 with errno set. */
static int make_life_pipe(void) {
  pthread_mutex_lock(&reg_mu);
  int rc = life[1] >= 0 ? 0 : pipe2(life, O_CLOEXEC);
  pthread_mutex_unlock(&reg_mu);
  return rc;
}

static void redirect_stdin(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  if (fd != 0) {
    dup2(fd, 0); /* dup2 clears FD_CLOEXEC on fd 0 */
    close(fd);
  } else {
    fcntl(0, F_SETFD, 0);
  }
  __fpurge(stdin);
  if (ferror_unlocked(stdin) || feof_unlocked(stdin)) /* the only thread */
    clearerr(stdin);
}

/* An exception escaping a process's run(): Python prints "Process NAME:"
 * and the traceback to stderr and the exit code is 1. Here the traceback's
 * last line is the code's class, its name and the conc_raise message; a
 * positive return (not a code) counts as CONC_EFAILED. */
static void report_failure(const conc_process_t *p, int rc) {
  char *msg = rc < 0 ? conc__raise_take(rc) : NULL;
  int code = rc < 0 ? rc : CONC_EFAILED;
  fflush(stdout);
  fprintf(stderr, "Process %s:\n%s (%s)%s%s\n", p->priv.name,
          conc_err_python(code), conc_err_name(code), msg && *msg ? ": " : "",
          msg ? msg : "");
  fflush(stderr);
  free(msg);
}

/* The child's side of start(): become `p`, then run the target. */
static _Noreturn void child_main(conc_process_t *p, pid_t parent, int wfd,
                                 bool on_main_thread) {
  bool deathsig = p->priv.die_with_parent || (p->priv.daemon && on_main_thread);
  if (deathsig) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before prctl took effect */
      raise(SIGKILL);
  }
  if (self_sentinel_wfd >= 0) /* our parent's own sentinel: not ours to hold */
    close(self_sentinel_wfd);
  self_sentinel_wfd = wfd;
  if (parent_life_rfd >= 0) /* the grandparent's */
    close(parent_life_rfd);
  if (life[1] >= 0) /* only the parent may hold its write end */
    close(life[1]);
  parent_life_rfd = life[0];
  life[0] = life[1] = -1;
  parent_obj = *current;
  parent_obj.priv.kind = K_PARENT;
  parent_obj.priv.pid = parent;
  parent_obj.priv.fd = -1;
  parent_obj.priv.state = ST_STARTED;
  parent_obj.priv.listed = false;
  p->priv.pid = my_pid();
  SET_ST(p, ST_STARTED);
  p->priv.listed = false;
  current = p;
  __atomic_store_n(&counter, 0, __ATOMIC_RELAXED);
  redirect_stdin();
  int rc = 0;
  if (p->priv.target) {
    void *result = NULL; /* a process's return value goes nowhere (Python) */
    conc__raise_clear();
    rc = p->priv.target(p->priv.arg, &result);
    if (rc != 0)
      report_failure(p, rc);
  }
  conc_process_exit(rc != 0 ? 1 : 0);
}

int conc_process_start(conc_process_t *p) {
  if (!p)
    return CONC_EINVAL;
  if (ST(p) == ST_CLOSED)
    return CONC_ECLOSED;
  if (p->priv.kind != K_CHILD || p == current || ST(p) != ST_INIT)
    return CONC_ESTATE;
  if (p->priv.creator != my_pid())
    return CONC_EPERM;
  if (conc_current_process()->priv.daemon)
    return CONC_ESTATE; /* daemonic processes are not allowed to have children
                         */
  ensure_init();
  bool use_pidfd = have_pidfd();
  int sp[2] = {-1, -1};
  if (!use_pidfd && (make_life_pipe() || pipe2(sp, O_CLOEXEC) < 0))
    return -errno;
  conc__shm_share_with_children(); /* one segment tracker for the program */
  fflush(stdout);
  fflush(stderr);
  pid_t parent = my_pid();
  bool on_main = conc__gettid() == (int32_t)parent;
  pid_t pid = fork();
  if (pid == 0) {
    if (sp[0] >= 0)
      close(sp[0]);
    child_main(p, parent, sp[1], on_main);
  }
  int err = pid < 0 ? -errno : 0;
  if (sp[1] >= 0)
    close(sp[1]);
  if (err) {
    if (sp[0] >= 0)
      close(sp[0]);
    return err;
  }
  int fd = use_pidfd ? open_pidfd(pid) : sp[0];
  if (fd < 0) { /* out of descriptors: we cannot watch it, so undo it */
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    return fd;
  }
  pthread_mutex_lock(&reg_mu);
  p->priv.pid = pid;
  p->priv.fd = fd;
  p->priv.pidfd = use_pidfd;
  SET_ST(p, ST_STARTED);
  p->priv.target = NULL; /* Python drops the target reference after start */
  p->priv.arg = NULL;
  list_add(p);
  pthread_mutex_unlock(&reg_mu);
  return 0;
}

/* ---- join / is_alive / signals ---------------------------------------- */

static int wait_fd_masked(int fd, conc_deadline_t deadline,
                          const sigset_t *mask);

/* Wait until fd is readable (1), the deadline passes (0) or conc_interrupt
 * asks (CONC_EINTR). Signals are let in only inside ppoll, so a request a
 * handler raises just before the sleep is seen, not slept through. */
static int wait_fd(int fd, conc_deadline_t deadline) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = wait_fd_masked(fd, deadline, &old);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static int wait_fd_masked(int fd, conc_deadline_t deadline,
                          const sigset_t *mask) {
  for (;;) {
    if (conc__intr_take())
      return CONC_EINTR;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    struct timespec ts, *tsp = NULL;
    if (deadline != CONC_DEADLINE_NEVER) {
      int64_t left = deadline - conc__now_ns();
      if (left < 0)
        left = 0;
      ts.tv_sec = (time_t)(left / 1000000000);
      ts.tv_nsec = (long)(left % 1000000000);
      tsp = &ts;
    }
    int r = ppoll(&pf, 1, tsp, mask);
    if (r > 0)
      return 1;
    if (r == 0 || errno != EINTR)
      return 0;
  }
}

static int wait_ended(conc_process_t *p, conc_deadline_t deadline) {
  while (__atomic_load_n(&p->priv.state, __ATOMIC_ACQUIRE) == ST_STARTED) {
    siginfo_t si;
    /* (waitid cannot be interrupted: once interrupts are in use, poll) */
    if (deadline == CONC_DEADLINE_NEVER && p->priv.pidfd &&
        !conc__intr_in_use()) {
      /* no limit: one blocking non-reaping wait on the pidfd itself (it
       * names this child only, even after a reap by another thread) */
      int r;
      while ((r = waitid(P_PIDFD, (id_t)p->priv.fd, &si, WEXITED | WNOWAIT)) <
                 0 &&
             errno == EINTR)
        ;
      if (r == 0 || errno == ECHILD) { /* else EINVAL: a kernel before 5.4 */
        poll_reap(p);
        continue;
      }
    }
    int w = wait_fd(p->priv.fd, deadline);
    if (w <= 0) {
      if (poll_reap(p)) {
        if (w == CONC_EINTR) /* it ended anyway: the next wait reports it */
          conc__intr_keep();
        return 0;
      }
      return w == CONC_EINTR ? w : CONC_ETIMEDOUT;
    }
    /* The pidfd is readable only once the child is a zombie; the sentinel
     * pipe may report EOF a moment before, so wait without reaping first. */
    while (waitid(P_PID, (id_t)p->priv.pid, &si, WEXITED | WNOWAIT) < 0 &&
           errno == EINTR)
      ;
    poll_reap(p);
  }
  if (__atomic_load_n(&p->priv.state, __ATOMIC_ACQUIRE) == ST_ENDED &&
      p->priv.exitcode == CONC_EXITCODE_NONE)
    return CONC_ECHILD;
  return 0;
}

static int parent_join(conc_deadline_t deadline) {
  if (getppid() != parent_obj.priv.pid)
    return 0;
  if (parent_life_rfd >= 0) { /* started without pidfd: the life pipe */
    int w = wait_fd(parent_life_rfd, deadline);
    return w == 1 ? 0 : w == CONC_EINTR ? w : CONC_ETIMEDOUT;
  }
  if (!have_pidfd())
    return CONC_ENOSYS; /* a parent that did not start us with libconc */
  int fd = open_pidfd(parent_obj.priv.pid);
  if (fd < 0)
    return fd == CONC_ESRCH ? 0 : fd;
  int ended = getppid() != parent_obj.priv.pid ? 1 : wait_fd(fd, deadline);
  close(fd);
  return ended == 1 ? 0 : ended == CONC_EINTR ? ended : CONC_ETIMEDOUT;
}

int conc_process_join(conc_process_t *p, double timeout) {
  if (p && p->priv.kind == K_PARENT && ST(p) == ST_STARTED) {
    conc_deadline_t dl;
    int rc = conc_deadline_after(timeout, &dl);
    return rc ? rc : parent_join(dl);
  }
  int rc = check_child(p);
  if (rc)
    return rc;
  conc_deadline_t deadline;
  if ((rc = conc_deadline_after(timeout, &deadline)))
    return rc;
  return wait_ended(p, deadline);
}

int conc_process_is_alive(conc_process_t *p) {
  if (p && (p == current || p->priv.kind == K_MAIN))
    return 1;
  if (p && p->priv.kind == K_PARENT)
    return getppid() == p->priv.pid;
  if (p && ST(p) == ST_INIT)
    return 0;
  int rc = check_child(p);
  if (rc)
    return rc;
  return !poll_reap(p);
}

static int send_signal(conc_process_t *p, int sig) {
  int rc = check_child(p);
  if (rc)
    return rc;
  pthread_mutex_lock(&reg_mu);
  if (ST(p) == ST_STARTED && kill(p->priv.pid, sig) < 0 && errno != ESRCH)
    rc = -errno;
  pthread_mutex_unlock(&reg_mu);
  return rc;
}

int conc_process_terminate(conc_process_t *p) {
  return send_signal(p, SIGTERM);
}
int conc_process_kill(conc_process_t *p) { return send_signal(p, SIGKILL); }

int conc_process_exitcode(conc_process_t *p, int *code) {
  if (!p || !code)
    return CONC_EINVAL;
  if (ST(p) == ST_CLOSED)
    return CONC_ECLOSED;
  if (p->priv.kind == K_CHILD && p != current && ST(p) == ST_STARTED &&
      p->priv.creator == my_pid())
    poll_reap(p);
  *code = ST(p) == ST_ENDED ? p->priv.exitcode : CONC_EXITCODE_NONE;
  return 0;
}

int conc_process_close(conc_process_t *p) {
  if (!p)
    return CONC_EINVAL;
  if (ST(p) == ST_CLOSED)
    return 0;
  if (p->priv.kind != K_CHILD || p == current)
    return CONC_ESTATE;
  if (ST(p) == ST_STARTED && (p->priv.creator != my_pid() || !poll_reap(p)))
    return CONC_ESTATE; /* cannot close a process while it is still running */
  if (p->priv.fd >= 0)
    close(p->priv.fd);
  p->priv.fd = -1;
  SET_ST(p, ST_CLOSED);
  return 0;
}

void conc_process_destroy(conc_process_t *p) {
  if (!p || p->priv.kind != K_CHILD || p == current)
    return;
  if (conc_process_close(p) == 0)
    return;
  /* Still running: hand the record to the registry so exit-time reaping and
   * active_children() still see the child. */
  pthread_mutex_lock(&reg_mu);
  if (p->priv.listed) {
    conc_process_t *o = malloc(sizeof *o);
    if (o) {
      *o = *p;
      o->priv.kind = K_ORPHAN;
      o->priv.listed = false;
      list_del(p);
      list_add(o);
      p->priv.fd = -1;
    }
  }
  pthread_mutex_unlock(&reg_mu);
  SET_ST(p, ST_CLOSED);
}

int conc_process_sentinel(conc_process_t *p) {
  if (!p)
    return CONC_EINVAL;
  if (ST(p) == ST_CLOSED)
    return CONC_ECLOSED;
  if (ST(p) == ST_INIT || p->priv.fd < 0)
    return CONC_ENOTSTARTED;
  return p->priv.fd;
}

/* ---- attributes -------------------------------------------------------- */

static const char *signal_name(int sig) {
  static const struct {
    int sig;
    const char *name;
  } names[] = {
      {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
      {SIGILL, "SIGILL"},   {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
      {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
      {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
      {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].sig == sig)
      return names[i].name;
  return NULL;
}

int conc_process_repr(conc_process_t *p, char *buf, size_t n) {
  if (!p || (!buf && n))
    return CONC_EINVAL;
  int code = CONC_EXITCODE_NONE;
  const char *status;
  if (p == current || p->priv.kind == K_MAIN || p->priv.kind == K_PARENT)
    status = "started";
  else if (ST(p) == ST_CLOSED)
    status = "closed";
  else if (p->priv.creator != my_pid())
    status = "unknown";
  else if (ST(p) == ST_INIT)
    status = "initial";
  else {
    conc_process_exitcode(p, &code);
    status = code == CONC_EXITCODE_NONE ? "started" : "stopped";
  }
  char pid[32] = "", exit[48] = "";
  if (ST(p) != ST_INIT || p->priv.kind != K_CHILD)
    snprintf(pid, sizeof pid, " pid=%d", (int)conc_process_pid(p));
  const char *sig =
      code < 0 && code != CONC_EXITCODE_NONE ? signal_name(-code) : NULL;
  if (sig)
    snprintf(exit, sizeof exit, " exitcode=-%s", sig);
  else if (code != CONC_EXITCODE_NONE)
    snprintf(exit, sizeof exit, " exitcode=%d", code);
  pid_t parent = p->priv.kind == K_MAIN     ? getppid()
                 : p->priv.kind == K_PARENT ? 0
                                            : p->priv.creator;
  return snprintf(buf, n, "<Process name='%s'%s parent=%d %s%s%s>",
                  p->priv.name, pid, (int)parent, status, exit,
                  p->priv.daemon ? " daemon" : "");
}

pid_t conc_process_pid(const conc_process_t *p) {
  if (!p)
    return 0;
  if (p->priv.kind == K_MAIN)
    return my_pid();
  return p->priv.pid;
}

const char *conc_process_name(const conc_process_t *p) {
  return p ? p->priv.name : NULL;
}

int conc_process_set_name(conc_process_t *p, const char *name) {
  if (!p || !name)
    return CONC_EINVAL;
  return copy_name(p, name);
}

bool conc_process_daemon(const conc_process_t *p) {
  return p && p->priv.daemon;
}

int conc_process_set_daemon(conc_process_t *p, bool daemon) {
  if (!p)
    return CONC_EINVAL;
  if (ST(p) != ST_INIT)
    return CONC_ESTATE; /* process has already started */
  p->priv.daemon = daemon;
  return 0;
}

conc_process_t *conc_current_process(void) {
  /* The main object learns its pid late (a raw fork's child has another):
   * written only when it differs, so threads that ask at once do not race
   * on a word every one of them would write. */
  if (current == &main_obj) {
    pid_t me = my_pid();
    if (__atomic_load_n(&main_obj.priv.pid, __ATOMIC_RELAXED) != me)
      __atomic_store_n(&main_obj.priv.pid, me, __ATOMIC_RELAXED);
  }
  return current;
}

conc_process_t *conc_parent_process(void) {
  return current == &main_obj ? NULL : &parent_obj;
}

int conc_active_children(conc_process_t **out, int cap) {
  ensure_init();
  int n = 0;
  pthread_mutex_lock(&reg_mu);
  for (conc_process_t *p = head, *next; p; p = next) {
    next = p->priv.next;
    if (reap_locked(p, WNOHANG)) {
      if (p->priv.kind == K_ORPHAN)
        free(p);
      continue;
    }
    if (p->priv.kind == K_ORPHAN)
      continue;
    if (out && n < cap)
      out[n] = p;
    n++;
  }
  pthread_mutex_unlock(&reg_mu);
  return n;
}

int conc_cpu_count(void) { return conc__cpu_count(); }

int conc_process_cpu_count(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  return conc__cpu_count();
}

/* ---- exit -------------------------------------------------------------- */

/* Python's util._exit_function: terminate daemonic children, join the rest. */
static void exit_function(void) {
  pthread_mutex_lock(&reg_mu);
  for (conc_process_t *p = head; p; p = p->priv.next)
    if (p->priv.daemon && ST(p) == ST_STARTED)
      kill(p->priv.pid, SIGTERM);
  pthread_mutex_unlock(&reg_mu);
  for (;;) {
    pthread_mutex_lock(&reg_mu);
    conc_process_t *p = head;
    pthread_mutex_unlock(&reg_mu);
    if (!p)
      break;
    wait_ended(p, CONC_DEADLINE_NEVER);
    pthread_mutex_lock(&reg_mu);
    if (ST(p) == ST_STARTED) /* lost track of it: stop waiting */
      SET_ST(p, ST_ENDED);
    list_del(p);
    pthread_mutex_unlock(&reg_mu);
    if (p->priv.kind == K_ORPHAN)
      free(p);
  }
}

/* Flush what stdout and stderr hold. An fflush of an empty stream still
 * writes the stream's lock, which in a fresh child copies a page of libc's
 * data; reading the pending count writes nothing. */
static void flush_stdio(void) {
  if (__fpending(stdout))
    fflush(stdout);
  if (__fpending(stderr))
    fflush(stderr);
}

void conc_process_exit(int code) {
  flush_stdio();
  if (current == &main_obj)
    exit(code);
  if (conc_threading_shutdown)
    conc_threading_shutdown();
  exit_function();
  flush_stdio();
  /* _exit(code), through syscall(), which the parent has already bound (see
   * bind_child_calls): _exit itself would be looked up anew in every child */
  syscall(SYS_exit_group, code);
  _exit(code);
}
