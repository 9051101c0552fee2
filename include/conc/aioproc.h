// clang-format off
/*
 * Subprocesses on the event loop (asyncio.create_subprocess_exec): the
 * child's stdin, stdout and stderr as streams, and wait / communicate that
 * suspend only the calling task.
 *
 *
 *   Python (asyncio)                                C
 *   p = await create_subprocess_exec("ls", "-l",    conc_aio_create_subprocess_exec("ls", argv,
 *         stdout=PIPE)                                &(conc_aio_process_opts_t){.stdout_mode = CONC_AIO_PIPE}, &p)
 *   p.pid / p.returncode                            conc_aio_process_pid(p) / conc_aio_process_returncode(p, &rc)
 *   line = await p.stdout.readline()                conc_aio_stream_readline(conc_aio_process_stdout(p), buf, cap)
 *   rc = await p.wait()                             conc_aio_process_wait(p, &rc)
 *   out, err = await p.communicate(data)            conc_aio_process_communicate(p, data, n, &out, &err, &rc)
 *   p.send_signal(s) / terminate() / kill()         conc_aio_process_send_signal(p, s) / ..._terminate(p) / ..._kill(p)
 *
 *
 * The child is started with posix_spawnp (a PATH search as exec does).
 * Its exit is noticed through a pidfd where the kernel has one (Linux 5.3
 * and later): no signal handler, no polling; elsewhere the waiting task
 * polls waitpid(WNOHANG) with a back-off from 1 ms to 50 ms. A return code
 * is Python's: the exit status, or -N when signal N killed the child.
 */
// clang-format on
#ifndef CONC_AIOPROC_H
#define CONC_AIOPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conc/aiostream.h"
#include "conc/defs.h"

CONC_BEGIN_DECLS

typedef struct conc_aio_process conc_aio_process_t;

/* What a standard descriptor of the child is connected to. */
enum {
  CONC_AIO_INHERIT = 0, /* the parent's (Python's None) */
  CONC_AIO_PIPE = 1,    /* a pipe, exposed as a stream */
  CONC_AIO_DEVNULL = 2, /* /dev/null */
  CONC_AIO_STDOUT = 3,  /* stderr only: the same pipe as stdout */
};

typedef struct conc_aio_process_opts {
  int stdin_mode, stdout_mode, stderr_mode; /* CONC_AIO_*; 0: inherit */
  const char *cwd;                          /* NULL: the parent's */
  char *const *envp;                        /* NULL: the parent's environ */
  conc_aio_stream_opts_t stream;            /* for the pipes' streams */
} conc_aio_process_opts_t;

/* create_subprocess_exec(file, *argv[1:]): argv is NULL-terminated with
 * argv[0] the program's name as it sees it. From a task or outside one
 * (the loop's thread). CONC_ENOENT when file is not found, CONC_EACCES,
 * CONC_EINVAL (NULL file or argv, a bad mode). */
CONC_EXTERN int
conc_aio_create_subprocess_exec(const char *file, char *const argv[],
                                const conc_aio_process_opts_t *opts,
                                conc_aio_process_t **out);

CONC_EXTERN pid_t conc_aio_process_pid(const conc_aio_process_t *p);

/* The streams of the pipes asked for (NULL otherwise); they belong to the
 * process object: do not release them. */
CONC_EXTERN conc_aio_stream_t *conc_aio_process_stdin(conc_aio_process_t *p);
CONC_EXTERN conc_aio_stream_t *conc_aio_process_stdout(conc_aio_process_t *p);
CONC_EXTERN conc_aio_stream_t *conc_aio_process_stderr(conc_aio_process_t *p);

/* returncode: true with *rc once the child has been reaped by wait or
 * communicate (Python's returncode is None until then). */
CONC_EXTERN bool conc_aio_process_returncode(const conc_aio_process_t *p,
                                             int *rc);

/* wait(): suspend until the child exits; 0 and *rc (may be NULL).
 * CONC_ECANCELED leaves the child running (and waitable again). One task
 * at a time may wait: a second gets CONC_EBUSY (asyncio lets several wait;
 * have one task wait and the others await that task). */
CONC_EXTERN int conc_aio_process_wait(conc_aio_process_t *p, int *rc);

/*
 * communicate(input): write input (n bytes; may be NULL/0) to stdin and close
 * it, read stdout and stderr to their ends at the same time, then wait.
 * *out and *err (each may be NULL; NULL for a stream not piped) receive
 * malloc'd buffers (NUL-terminated, free them), *outlen / *errlen their
 * sizes. 0, or the first error; a child that exits without reading its
 * input is no error (BrokenPipe is ignored, as asyncio does).
 */
CONC_EXTERN int conc_aio_process_communicate(conc_aio_process_t *p,
                                             const void *input, size_t n,
                                             char **out, size_t *outlen,
                                             char **err, size_t *errlen,
                                             int *rc);

/* send_signal / terminate (SIGTERM) / kill (SIGKILL): CONC_ESRCH once the
 * child has been reaped. */
CONC_EXTERN int conc_aio_process_send_signal(conc_aio_process_t *p, int sig);
CONC_EXTERN int conc_aio_process_terminate(conc_aio_process_t *p);
CONC_EXTERN int conc_aio_process_kill(conc_aio_process_t *p);

/* Release the object and its streams. A child that has exited is reaped;
 * one still running is neither killed nor reaped later: it stays a zombie
 * once it exits, until the program reaps it or ends (Python warns about
 * such a child). Wait for it first. */
CONC_EXTERN void conc_aio_process_release(conc_aio_process_t *p);

CONC_END_DECLS

#endif
