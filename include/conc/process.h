// clang-format off
/*
 * Processes: Python's multiprocessing.Process for C (the "fork" start method).
 *
 *   Python                                   C
 *   def f(x): ...                            static int f(void *x, void **result) { ...; return 0; }
 *   p = Process(target=f, args=(x,),         conc_process_t p;
 *               name="w", daemon=True)       conc_process_init(&p, f, &x,
 *                                              &(conc_process_opts_t){.name = "w",
 *                                                                     .daemon = true});
 *   p.start()                                conc_process_start(&p);
 *   p.join()                                 conc_process_join(&p, CONC_FOREVER);
 *   raise ValueError("bad") (in f)           return conc_raise(CONC_EINVAL, "bad");
 *   sys.exit(3) (in the child)               conc_process_exit(3);
 *   p.exitcode                               conc_process_exitcode(&p, &code);
 *
 * The child is a fork of the caller: the target is a conc_fn_t (conc/defs.h)
 * and `arg` points into the child's copy of the parent's memory, so arguments
 * cross by value. Results come back through shared memory (conc/shared.h),
 * pipes (conc/channel.h) or the exit code: a target that returns 0 ends
 * the child with exit code 0; a negative return (a positive one counts as
 * CONC_EFAILED) is an uncaught exception: the child prints
 *   Process NAME:
 *   PythonName (CONC_ECODE): message of conc_raise
 * to stderr and its exit code is 1. *result is not sent anywhere.
 *
 * "Subclassing" is embedding: put conc_process_t first in your struct, pass
 * your run function as the target and the struct as arg.
 */
// clang-format on
#ifndef CONC_PROCESS_H
#define CONC_PROCESS_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "conc/defs.h"

/* Longest name accepted, including the terminating NUL. */
#define CONC_PROCESS_NAME_MAX 128

/* The exit code of a process that has not ended (Python's None). */
#define CONC_EXITCODE_NONE INT_MIN

typedef struct conc_process_opts {
  const char *name; /* NULL: "Process-N" (":"-joined when nested) */
  /* conc_daemon_t (conc/defs.h), as for threads: CONC_DAEMON_INHERIT (0,
   * daemon=None) takes the creating process's flag, CONC_DAEMON_YES (1, so
   * `true` works) a daemon, CONC_DAEMON_NO not a daemon. */
  conc_daemon_t daemon;
  /* Kill a non-daemonic child when its parent dies (daemonic children always
   * get this; Python gives it to neither). */
  bool die_with_parent;
} conc_process_opts_t;

/* Contents are private. */
typedef struct conc_process {
  struct {
    conc_fn_t target;
    void *arg;
    struct conc_process *next, *prev; /* the creator's list of children */
    pid_t pid;
    pid_t creator;
    int fd; /* pidfd, or the read end of the sentinel pipe; -1 */
    int exitcode;
    unsigned char state, kind;
    bool daemon, die_with_parent, pidfd, listed;
    char ident[64];
    char name[CONC_PROCESS_NAME_MAX];
  } priv;
} conc_process_t;

CONC_BEGIN_DECLS

/* Process(target, args, name, daemon). target may be NULL (run does
 * nothing). A name that does not fit CONC_PROCESS_NAME_MAX, or a daemon
 * value that is not a CONC_DAEMON_*, is CONC_EINVAL. */
CONC_EXTERN int conc_process_init(conc_process_t *p, conc_fn_t target,
                                  void *arg, const conc_process_opts_t *opts);

/* close() if possible; a child still running is detached (it stays listed for
 * the exit-time reaping but is no longer reachable through `p`). */
CONC_EXTERN void conc_process_destroy(conc_process_t *p);

/* Fork and run target(arg, &result) in the child, then conc_process_exit
 * with 0, or 1 after the report of a negative return (see the top).
 * CONC_ESTATE: started before, or the caller is a daemonic process;
 * CONC_EPERM: `p` was created by another process; CONC_ECLOSED. */
CONC_EXTERN int conc_process_start(conc_process_t *p);

/* Wait until the child ends or the timeout passes (CONC_FOREVER: no limit;
 * 0 or negative: check once). Returns 0 once it has ended (again and again),
 * CONC_ETIMEDOUT if it is still alive at the timeout (Python returns None in
 * both cases; conc_thread_join reports the same way). CONC_ENOTSTARTED,
 * CONC_ECHILD (not the creating process, or the status was reaped by someone
 * else), CONC_ECLOSED, CONC_EINVAL (NaN). Wakes on the child's pidfd (or its
 * sentinel pipe): no polling. */
CONC_EXTERN int conc_process_join(conc_process_t *p, double timeout);

/* 1 alive, 0 not (never started or ended), or a negative code as for join. */
CONC_EXTERN int conc_process_is_alive(conc_process_t *p);

/* SIGTERM / SIGKILL. No-op once the child has been reaped. */
CONC_EXTERN int conc_process_terminate(conc_process_t *p);
CONC_EXTERN int conc_process_kill(conc_process_t *p);

/* *code = exit status as Python reports it: n after exit(n), -N after
 * signal N, 1 after the target returned a negative code; CONC_EXITCODE_NONE while unstarted or
 * running. Returns 0, CONC_ECLOSED or CONC_EINVAL. */
CONC_EXTERN int conc_process_exitcode(conc_process_t *p, int *code);

/* Release the descriptors of an ended child. CONC_ESTATE while it runs;
 * afterwards every call but close/name/pid returns CONC_ECLOSED. */
CONC_EXTERN int conc_process_close(conc_process_t *p);

/* A descriptor that becomes readable when the child ends (a pidfd where the
 * kernel has one). CONC_ENOTSTARTED before start, CONC_ECLOSED after close. */
CONC_EXTERN int conc_process_sentinel(conc_process_t *p);

CONC_EXTERN pid_t conc_process_pid(const conc_process_t *p); /* 0 unstarted */
CONC_EXTERN const char *conc_process_name(const conc_process_t *p);
CONC_EXTERN int conc_process_set_name(conc_process_t *p, const char *name);
CONC_EXTERN bool conc_process_daemon(const conc_process_t *p);
/* CONC_ESTATE once started. */
CONC_EXTERN int conc_process_set_daemon(conc_process_t *p, bool daemon);

/* repr(p): "<Process name='w' pid=12 parent=11 stopped exitcode=-SIGTERM
 * daemon>". Returns the length snprintf would write, or CONC_EINVAL. */
CONC_EXTERN int conc_process_repr(conc_process_t *p, char *buf, size_t n);

/* multiprocessing.current_process(): the main process ("MainProcess") or,
 * in a child, the child's own copy of its conc_process_t. */
CONC_EXTERN conc_process_t *conc_current_process(void);
/* multiprocessing.parent_process(): NULL in the main process. Its is_alive
 * and join work from the child. */
CONC_EXTERN conc_process_t *conc_parent_process(void);

/* multiprocessing.active_children(): reaps ended children, then stores up
 * to `cap` live ones in out[]. Returns how many are live (may exceed cap). */
CONC_EXTERN int conc_active_children(conc_process_t **out, int cap);

/* os.cpu_count() (online CPUs) and os.process_cpu_count() (affinity). */
CONC_EXTERN int conc_cpu_count(void);
CONC_EXTERN int conc_process_cpu_count(void);

/* sys.exit(n) for a process: in a child, wait for its non-daemon threads,
 * terminate its daemonic children and join the others, flush stdio, _exit(n).
 * In the main process it is exit(n). Never returns. */
CONC_EXTERN CONC_NORETURN void conc_process_exit(int code);

CONC_END_DECLS

#endif
