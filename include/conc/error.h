/*
 * Error codes. Every function that can fail returns 0 (or a non-negative
 * value where Python returns one) on success and a negative CONC_E* code on
 * failure. Codes backed by errno equal -E*; library codes have their own
 * values below -1000. One X-macro list generates everything.
 */
#ifndef CONC_ERROR_H
#define CONC_ERROR_H

#include <errno.h>

#include "conc/defs.h"

/* X(name, value, python_exception, message) */
#define CONC_ERRNO_LIST(X)                                                     \
  X(ETIMEDOUT, -ETIMEDOUT, "TimeoutError", "timed out")                        \
  X(EINVAL, -EINVAL, "ValueError", "invalid argument")                         \
  X(ENOMEM, -ENOMEM, "MemoryError", "out of memory")                           \
  X(EPERM, -EPERM, "RuntimeError", "operation not permitted")                  \
  X(EDEADLK, -EDEADLK, "RuntimeError", "would deadlock")                       \
  X(EOVERFLOW, -EOVERFLOW, "OverflowError", "value too large")                 \
  X(EOWNERDEAD, -EOWNERDEAD, "OwnerDied", "previous owner died")               \
  X(ENOTRECOVERABLE, -ENOTRECOVERABLE, "RuntimeError",                         \
    "state not recoverable")                                                   \
  X(ECANCELED, -ECANCELED, "CancelledError", "cancelled")                      \
  X(EAGAIN, -EAGAIN, "BlockingIOError", "resource temporarily unavailable")    \
  X(EBUSY, -EBUSY, "RuntimeError", "resource busy")                            \
  X(EINTR, -EINTR, "InterruptedError", "interrupted")                          \
  X(ECHILD, -ECHILD, "ChildProcessError", "no such child process")             \
  X(ESRCH, -ESRCH, "ProcessLookupError", "no such process")                    \
  X(EBADF, -EBADF, "OSError", "bad file descriptor")                           \
  X(EPIPE, -EPIPE, "BrokenPipeError", "broken pipe")                           \
  X(EEXIST, -EEXIST, "FileExistsError", "already exists")                      \
  X(ENOENT, -ENOENT, "FileNotFoundError", "no such file or object")            \
  X(ENOSYS, -ENOSYS, "NotImplementedError", "not supported here")              \
  X(EMSGSIZE, -EMSGSIZE, "ValueError", "message too long")                     \
  X(ECONNRESET, -ECONNRESET, "ConnectionResetError", "connection reset")       \
  X(EIO, -EIO, "OSError", "input/output error")                                \
  X(EMFILE, -EMFILE, "OSError", "too many open files")                         \
  X(EACCES, -EACCES, "PermissionError", "permission denied")                   \
  X(ECONNREFUSED, -ECONNREFUSED, "ConnectionRefusedError",                     \
    "connection refused")                                                      \
  X(ECONNABORTED, -ECONNABORTED, "ConnectionAbortedError",                     \
    "connection aborted")                                                      \
  X(ENOTCONN, -ENOTCONN, "OSError", "not connected")                           \
  X(EADDRINUSE, -EADDRINUSE, "OSError", "address already in use")              \
  X(EADDRNOTAVAIL, -EADDRNOTAVAIL, "OSError", "address not available")         \
  X(EHOSTUNREACH, -EHOSTUNREACH, "OSError", "host unreachable")                \
  X(ENETUNREACH, -ENETUNREACH, "OSError", "network unreachable")               \
  X(ENOTSOCK, -ENOTSOCK, "OSError", "not a socket")                            \
  X(EAFNOSUPPORT, -EAFNOSUPPORT, "OSError", "address family not supported")

#define CONC_LIBERR_LIST(X)                                                    \
  X(EFULL, -1001, "queue.Full", "queue is full")                               \
  X(EEMPTY, -1002, "queue.Empty", "queue is empty")                            \
  X(ESHUTDOWN, -1003, "queue.ShutDown", "shut down")                           \
  X(EBROKEN, -1004, "BrokenBarrierError", "barrier is broken")                 \
  X(ESTATE, -1005, "RuntimeError", "not allowed in the current state")         \
  X(EINVALSTATE, -1006, "InvalidStateError", "invalid state for this call")    \
  X(EBROKENPOOL, -1007, "BrokenExecutor", "executor is broken")                \
  X(ENOTSTARTED, -1008, "RuntimeError", "not started")                         \
  X(EUNSET, -1009, "AttributeError", "no value set in this thread")            \
  X(EEOF, -1010, "EOFError", "end of file")                                    \
  X(ETOOSHORT, -1011, "BufferTooShort", "buffer too short")                    \
  X(EFAILED, -1012, "Exception", "task failed")                                \
  X(ECLOSED, -1013, "ValueError", "object is closed")                          \
  X(EWORKERDIED, -1014, "BrokenProcessPool", "worker process died")            \
  X(EDEAD, -1015, "greenlet.error", "coroutine is dead")                       \
  X(EWRONGTHREAD, -1016, "greenlet.error", "object belongs to another thread") \
  X(EGAI, -1017, "socket.gaierror", "name resolution failed")                  \
  X(EINCOMPLETE, -1018, "IncompleteReadError", "stream ended too soon")        \
  X(ELIMIT, -1019, "LimitOverrunError", "separator not found within limit")

#define CONC_ERROR_LIST(X) CONC_ERRNO_LIST(X) CONC_LIBERR_LIST(X)

typedef enum conc_error {
  CONC_OK = 0,
#define CONC__ERR_ENUM(name, value, py, msg) CONC_##name = (value),
  CONC_ERROR_LIST(CONC__ERR_ENUM)
#undef CONC__ERR_ENUM
} conc_error_t;

CONC_BEGIN_DECLS

/* A human-readable message for a code; unknown codes get a generic text. */
CONC_EXTERN const char *conc_strerror(int code);
/* The symbolic name ("CONC_ETIMEDOUT"); unknown codes give "CONC_E?". */
CONC_EXTERN const char *conc_err_name(int code);
/* The Python exception the code stands for ("TimeoutError"). */
CONC_EXTERN const char *conc_err_python(int code);

/*
 * raise SomeError("message") from a callable the library runs (conc_fn_t):
 *
 *   return conc_raise(CONC_EINVAL, "bad value %d", v);
 *
 * Records the formatted message for the calling thread and returns `code`
 * (a negative CONC_E* code; anything else is returned unchanged and records
 * nothing). Whoever runs the callable takes the message when the callable
 * returns that same code, and reports it with the code (the excepthook, the
 * future's exception message, a process's exit report). A message not taken
 * is replaced by the next conc_raise on the thread.
 */
CONC_EXTERN int conc_raise(int code, const char *fmt, ...) CONC__PRINTF(2, 3);
/* The message of the last conc_raise on this thread when it raised `code`
 * and was not taken yet; NULL otherwise. Valid until the thread's next
 * conc_raise. */
CONC_EXTERN const char *conc_raised_message(int code);

CONC_END_DECLS

#endif
