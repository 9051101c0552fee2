/*
 * Subprocesses on the loop: posix_spawnp with pipes wrapped as streams, an
 * exit noticed through a pidfd the loop watches (waitpid polling with a
 * back-off where there is no pidfd), and communicate running the writer
 * and the two readers as tasks of their own.
 *
 * Locking protocol: none; a process object belongs to its loop's thread.
 * The child is reaped only by waitid/waitpid on its own pid, so other
 * children of the program are never touched.
 */
#include "conc/aioproc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/aionet.h"
#include "conc/error.h"
#include "conc/loop.h"
#include "conc/time.h"

extern char **environ;

struct conc_aio_process {
  pid_t pid;
  int pidfd; /* -1 without one */
  bool reaped;
  int rc;
  conc_aio_stream_t *io[3];
};

/* ---- spawning --------------------------------------------------------------- */

typedef struct fds {
  int child[3];  /* what the child gets as 0, 1, 2 (-1: inherit) */
  int parent[3]; /* our ends of the pipes (-1: none) */
} fds_t;

static void fds_close(fds_t *f) {
  for (int i = 0; i < 3; i++) {
    if (f->child[i] >= 0)
      close(f->child[i]);
    if (f->parent[i] >= 0)
      close(f->parent[i]);
    f->child[i] = f->parent[i] = -1;
  }
}

static int make_fds(const int mode[3], fds_t *f) {
  for (int i = 0; i < 3; i++)
    f->child[i] = f->parent[i] = -1;
  for (int i = 0; i < 3; i++) {
    if (mode[i] == CONC_AIO_PIPE) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
      f->child[i] = i == 0 ? p[0] : p[1];
      f->parent[i] = i == 0 ? p[1] : p[0];
    } else if (mode[i] == CONC_AIO_DEVNULL) {
      f->child[i] =
          open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
      if (f->child[i] < 0)
        return -errno;
    } else if (mode[i] == CONC_AIO_STDOUT) {
      if (i != 2 || f->child[1] < 0)
        return CONC_EINVAL;
      /* close-on-exec: the child gets only the dup2 of it as fd 2 */
      f->child[2] = fcntl(f->child[1], F_DUPFD_CLOEXEC, 0);
      if (f->child[2] < 0)
        return -errno;
    } else if (mode[i] != CONC_AIO_INHERIT) {
      return CONC_EINVAL;
    }
  }
  return 0;
}

static int spawn(const char *file, char *const argv[],
                 const conc_aio_process_opts_t *o, fds_t *f, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int i = 0; i < 3; i++)
    if (f->child[i] >= 0)
      posix_spawn_file_actions_adddup2(&fa, f->child[i], i);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 29)
  if (o->cwd)
    posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
#endif
  int e = posix_spawnp(pid, file, &fa, NULL, argv, o->envp ? o->envp : environ);
  posix_spawn_file_actions_destroy(&fa);
  return e ? -e : 0;
}

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0)
    fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
#else
  (void)pid;
  return -1;
#endif
}

int conc_aio_create_subprocess_exec(const char *file, char *const argv[],
                                    const conc_aio_process_opts_t *opts,
                                    conc_aio_process_t **out) {
  conc_aio_process_opts_t o = opts ? *opts : (conc_aio_process_opts_t){0};
  if (!file || !argv || !out)
    return CONC_EINVAL;
#if !(defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 29))
  if (o.cwd)
    return CONC_ENOSYS;
#endif
  conc_aio_process_t *p = calloc(1, sizeof *p);
  if (!p)
    return CONC_ENOMEM;
  fds_t f;
  int mode[3] = {o.stdin_mode, o.stdout_mode, o.stderr_mode};
  int rc = make_fds(mode, &f);
  if (rc == 0)
    rc = spawn(file, argv, &o, &f, &p->pid);
  for (int i = 0; i < 3 && rc == 0; i++) { /* the child has its copies */
    if (f.child[i] >= 0)
      close(f.child[i]);
    f.child[i] = -1;
  }
  for (int i = 0; i < 3 && rc == 0; i++) {
    if (f.parent[i] < 0)
      continue;
    rc = conc_aio_stream_from_fd(f.parent[i], &o.stream, &p->io[i]);
    f.parent[i] = -1; /* the stream owns it, even on failure */
  }
  if (rc) {
    fds_close(&f);
    if (p->pid > 0) { /* started, but we cannot talk to it */
      kill(p->pid, SIGKILL);
      waitpid(p->pid, NULL, 0);
    }
    for (int i = 0; i < 3; i++)
      conc_aio_stream_release(p->io[i]);
    free(p);
    return rc;
  }
  p->pidfd = open_pidfd(p->pid);
  *out = p;
  return 0;
}

/* ---- accessors -------------------------------------------------------------- */

pid_t conc_aio_process_pid(const conc_aio_process_t *p) {
  return p ? p->pid : -1;
}

conc_aio_stream_t *conc_aio_process_stdin(conc_aio_process_t *p) {
  return p ? p->io[0] : NULL;
}

conc_aio_stream_t *conc_aio_process_stdout(conc_aio_process_t *p) {
  return p ? p->io[1] : NULL;
}

conc_aio_stream_t *conc_aio_process_stderr(conc_aio_process_t *p) {
  return p ? p->io[2] : NULL;
}

bool conc_aio_process_returncode(const conc_aio_process_t *p, int *rc) {
  if (!p || !p->reaped)
    return false;
  if (rc)
    *rc = p->rc;
  return true;
}

/* ---- waiting ------------------------------------------------------------------ */

static int status_code(int st) {
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  if (WIFSIGNALED(st))
    return -WTERMSIG(st);
  return 0;
}

/* Reap if it has exited: 1 reaped, 0 still running, or a code. */
static int try_reap(conc_aio_process_t *p) {
  int st;
  pid_t r = waitpid(p->pid, &st, WNOHANG);
  if (r == p->pid) {
    p->reaped = true;
    p->rc = status_code(st);
    if (p->pidfd >= 0) {
      conc_aio_sock_close(p->pidfd);
      p->pidfd = -1;
    }
    return 1;
  }
  if (r == 0)
    return 0;
  return errno == EINTR ? 0 : -errno;
}

int conc_aio_process_wait(conc_aio_process_t *p, int *rc) {
  if (!p)
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  double pause = 0.001;
  while (!p->reaped) {
    int r = try_reap(p);
    if (r < 0)
      return r;
    if (r)
      break;
    int w = p->pidfd >= 0 ? conc_aio_wait_readable(p->pidfd, CONC_FOREVER)
                          : conc_aio_sleep(pause);
    if (w)
      return w;
    if (pause < 0.05)
      pause *= 2;
  }
  if (rc)
    *rc = p->rc;
  return 0;
}

int conc_aio_process_send_signal(conc_aio_process_t *p, int sig) {
  if (!p)
    return CONC_EINVAL;
  if (p->reaped)
    return CONC_ESRCH;
  return kill(p->pid, sig) == 0 ? 0 : -errno;
}

int conc_aio_process_terminate(conc_aio_process_t *p) {
  return conc_aio_process_send_signal(p, SIGTERM);
}

int conc_aio_process_kill(conc_aio_process_t *p) {
  return conc_aio_process_send_signal(p, SIGKILL);
}

/* ---- communicate ----------------------------------------------------------------- */

typedef struct sink {
  conc_aio_stream_t *s;
  char *buf;
  size_t len, cap;
} sink_t;

static int read_all(void *arg, void **res) {
  (void)res;
  sink_t *k = arg;
  for (;;) {
    if (k->cap - k->len < 4096) {
      size_t cap = k->cap ? k->cap * 2 : 8192;
      char *b = realloc(k->buf, cap);
      if (!b)
        return CONC_ENOMEM;
      k->buf = b;
      k->cap = cap;
    }
    ssize_t n =
        conc_aio_stream_read(k->s, k->buf + k->len, k->cap - k->len - 1);
    if (n < 0)
      return (int)n;
    if (n == 0)
      break;
    k->len += (size_t)n;
  }
  if (!k->buf && !(k->buf = malloc(1)))
    return CONC_ENOMEM;
  k->buf[k->len] = '\0';
  return 0;
}

static int feed(conc_aio_stream_t *in, const void *data, size_t n) {
  int rc = n ? conc_aio_stream_write(in, data, n) : 0;
  if (rc == 0)
    rc = conc_aio_stream_drain(in);
  conc_aio_stream_close(in);
  int c = conc_aio_stream_wait_closed(in);
  if (rc == 0)
    rc = c;
  return rc == CONC_EPIPE || rc == CONC_ECONNRESET ? 0 : rc;
}

static void hand_over(sink_t *k, char **out, size_t *len) {
  if (out) {
    *out = k->buf;
    k->buf = NULL;
  }
  if (len)
    *len = k->len;
  free(k->buf);
}

int conc_aio_process_communicate(conc_aio_process_t *p, const void *input,
                                 size_t n, char **out, size_t *outlen,
                                 char **err, size_t *errlen, int *rc) {
  if (!p || (!input && n))
    return CONC_EINVAL;
  if (!conc_aio_current_task())
    return CONC_ESTATE;
  sink_t k[2] = {{.s = p->io[1]}, {.s = p->io[2]}};
  conc_aio_future_t *t[2] = {NULL, NULL};
  int res = 0;
  for (int i = 0; i < 2 && res == 0; i++)
    if (k[i].s)
      res = conc_aio_create_task(NULL, read_all, &k[i], NULL, &t[i]);
  if (res == 0 && p->io[0])
    res = feed(p->io[0], input, n);
  for (int i = 0; i < 2; i++) { /* the readers use k: always await them */
    if (!t[i])
      continue;
    if (res)
      conc_aio_cancel(t[i], NULL);
    int r;
    while ((r = conc_aio_await(t[i], NULL)) == CONC_ECANCELED &&
           !conc_aio_future_done(t[i]) &&
           !conc_loop_is_closed(conc_aio_future_loop(t[i])))
      res = res ? res : r; /* we were cancelled: the reader still must end */
    if (res == 0)
      res = r;
    conc_aio_future_release(t[i]);
  }
  if (res == 0)
    res = conc_aio_process_wait(p, rc);
  if (res == 0) {
    hand_over(&k[0], out, outlen);
    hand_over(&k[1], err, errlen);
  } else {
    free(k[0].buf);
    free(k[1].buf);
  }
  return res;
}

void conc_aio_process_release(conc_aio_process_t *p) {
  if (!p)
    return;
  for (int i = 0; i < 3; i++)
    conc_aio_stream_release(p->io[i]);
  if (!p->reaped)
    try_reap(p);
  if (p->pidfd >= 0)
    conc_aio_sock_close(p->pidfd);
  free(p);
}
