/*
 * Error codes. Every function that can fail returns 0 (or a non-negative
 * value where Python returns one) on success and a negative CONC_E* code on
 * failure. Codes backed by errno equal -E*; library codes have their own
 * values below -1000. One X-macro list generates everything.
 *
 * Each code stands for one Python exception class (conc_err_class), and the
 * classes keep Python's hierarchy (conc_err_is answers `except Cls:`). Any
 * other -errno a system call returns passes through unchanged and still
 * prints by name ("ELOOP") with the system's message; it is an OSError (or
 * the OSError subclass Python picks for that errno).
 */
#ifndef CONC_ERROR_H
#define CONC_ERROR_H

#include <errno.h>
#include <stdbool.h>

#include "conc/defs.h"

// clang-format off
/* The Python exception classes the codes stand for, with their bases:
 * X(id, "Python name", base id). The root is its own base. */
#define CONC_ERRCLASS_LIST(X)                                                  \
  X(BaseException,          "BaseException",          BaseException)          \
  X(Exception,              "Exception",              BaseException)          \
  X(CancelledError,         "CancelledError",         BaseException)          \
  X(RuntimeError,           "RuntimeError",           Exception)              \
  X(NotImplementedError,    "NotImplementedError",    RuntimeError)           \
  X(BrokenBarrierError,     "BrokenBarrierError",     RuntimeError)           \
  X(BrokenExecutor,         "BrokenExecutor",         RuntimeError)           \
  X(BrokenProcessPool,      "BrokenProcessPool",      BrokenExecutor)         \
  X(ValueError,             "ValueError",             Exception)              \
  X(MemoryError,            "MemoryError",            Exception)              \
  X(ArithmeticError,        "ArithmeticError",        Exception)              \
  X(OverflowError,          "OverflowError",          ArithmeticError)        \
  X(LookupError,            "LookupError",            Exception)              \
  X(IndexError,             "IndexError",             LookupError)            \
  X(KeyError,               "KeyError",               LookupError)            \
  X(AttributeError,         "AttributeError",         Exception)              \
  X(EOFError,               "EOFError",               Exception)              \
  X(IncompleteReadError,    "IncompleteReadError",    EOFError)               \
  X(LimitOverrunError,      "LimitOverrunError",      Exception)              \
  X(InvalidStateError,      "InvalidStateError",      Exception)              \
  X(BufferTooShort,         "BufferTooShort",         Exception)              \
  X(OwnerDied,              "OwnerDied",              Exception)              \
  X(queue_Full,             "queue.Full",             Exception)              \
  X(queue_Empty,            "queue.Empty",            Exception)              \
  X(queue_ShutDown,         "queue.ShutDown",         Exception)              \
  X(greenlet_error,         "greenlet.error",         Exception)              \
  X(OSError,                "OSError",                Exception)              \
  X(TimeoutError,           "TimeoutError",           OSError)                \
  X(BlockingIOError,        "BlockingIOError",        OSError)                \
  X(InterruptedError,       "InterruptedError",       OSError)                \
  X(ChildProcessError,      "ChildProcessError",      OSError)                \
  X(ProcessLookupError,     "ProcessLookupError",     OSError)                \
  X(FileExistsError,        "FileExistsError",        OSError)                \
  X(FileNotFoundError,      "FileNotFoundError",      OSError)                \
  X(IsADirectoryError,      "IsADirectoryError",      OSError)                \
  X(NotADirectoryError,     "NotADirectoryError",     OSError)                \
  X(PermissionError,        "PermissionError",        OSError)                \
  X(socket_gaierror,        "socket.gaierror",        OSError)                \
  X(ConnectionError,        "ConnectionError",        OSError)                \
  X(BrokenPipeError,        "BrokenPipeError",        ConnectionError)        \
  X(ConnectionResetError,   "ConnectionResetError",   ConnectionError)        \
  X(ConnectionRefusedError, "ConnectionRefusedError", ConnectionError)        \
  X(ConnectionAbortedError, "ConnectionAbortedError", ConnectionError)
// clang-format on

/* conc_errclass_t: CONC_PY_<id> for each class above (CONC_PY_RuntimeError,
 * CONC_PY_queue_Full); CONC_PY_NONE is "no exception" (codes >= 0). */
typedef enum conc_errclass {
  CONC_PY_NONE = 0,
#define CONC__ERRCLASS_ENUM(id, py, base) CONC_PY_##id,
  CONC_ERRCLASS_LIST(CONC__ERRCLASS_ENUM)
#undef CONC__ERRCLASS_ENUM
} conc_errclass_t;

/* X(name, value, Python class id from CONC_ERRCLASS_LIST, message) */
#define CONC_ERRNO_LIST(X)                                                     \
  X(ETIMEDOUT, -ETIMEDOUT, TimeoutError, "timed out")                          \
  X(EINVAL, -EINVAL, ValueError, "invalid argument")                           \
  X(ENOMEM, -ENOMEM, MemoryError, "out of memory")                             \
  X(EPERM, -EPERM, RuntimeError, "operation not permitted")                    \
  X(EDEADLK, -EDEADLK, RuntimeError, "would deadlock")                         \
  X(EOVERFLOW, -EOVERFLOW, OverflowError, "value too large")                   \
  X(EOWNERDEAD, -EOWNERDEAD, OwnerDied, "previous owner died")                 \
  X(ENOTRECOVERABLE, -ENOTRECOVERABLE, RuntimeError, "state not recoverable")  \
  X(ECANCELED, -ECANCELED, CancelledError, "cancelled")                        \
  X(EAGAIN, -EAGAIN, BlockingIOError, "resource temporarily unavailable")      \
  X(EBUSY, -EBUSY, RuntimeError, "resource busy")                              \
  X(EINTR, -EINTR, InterruptedError, "interrupted")                            \
  X(ECHILD, -ECHILD, ChildProcessError, "no such child process")               \
  X(ESRCH, -ESRCH, ProcessLookupError, "no such process")                      \
  X(EBADF, -EBADF, OSError, "bad file descriptor")                             \
  X(EPIPE, -EPIPE, BrokenPipeError, "broken pipe")                             \
  X(EEXIST, -EEXIST, FileExistsError, "already exists")                        \
  X(ENOENT, -ENOENT, FileNotFoundError, "no such file or object")              \
  X(ENOSYS, -ENOSYS, NotImplementedError, "not supported here")                \
  X(EMSGSIZE, -EMSGSIZE, ValueError, "message too long")                       \
  X(ECONNRESET, -ECONNRESET, ConnectionResetError, "connection reset")         \
  X(EIO, -EIO, OSError, "input/output error")                                  \
  X(EMFILE, -EMFILE, OSError, "too many open files")                           \
  X(EACCES, -EACCES, PermissionError, "permission denied")                     \
  X(ECONNREFUSED, -ECONNREFUSED, ConnectionRefusedError, "connection refused") \
  X(ECONNABORTED, -ECONNABORTED, ConnectionAbortedError, "connection aborted") \
  X(ENOTCONN, -ENOTCONN, OSError, "not connected")                             \
  X(EADDRINUSE, -EADDRINUSE, OSError, "address already in use")                \
  X(EADDRNOTAVAIL, -EADDRNOTAVAIL, OSError, "address not available")           \
  X(EHOSTUNREACH, -EHOSTUNREACH, OSError, "host unreachable")                  \
  X(ENETUNREACH, -ENETUNREACH, OSError, "network unreachable")                 \
  X(ENOTSOCK, -ENOTSOCK, OSError, "not a socket")                              \
  X(EAFNOSUPPORT, -EAFNOSUPPORT, OSError, "address family not supported")

#define CONC_LIBERR_LIST(X)                                                    \
  X(EFULL, -1001, queue_Full, "queue is full")                                 \
  X(EEMPTY, -1002, queue_Empty, "queue is empty")                              \
  X(ESHUTDOWN, -1003, queue_ShutDown, "shut down")                             \
  X(EBROKEN, -1004, BrokenBarrierError, "barrier is broken")                   \
  X(ESTATE, -1005, RuntimeError, "not allowed in the current state")           \
  X(EINVALSTATE, -1006, InvalidStateError, "invalid state for this call")      \
  X(EBROKENPOOL, -1007, BrokenExecutor, "executor is broken")                  \
  X(ENOTSTARTED, -1008, RuntimeError, "not started")                           \
  X(EUNSET, -1009, AttributeError, "no value set in this thread")              \
  X(EEOF, -1010, EOFError, "end of file")                                      \
  X(ETOOSHORT, -1011, BufferTooShort, "buffer too short")                      \
  X(EFAILED, -1012, Exception, "task failed")                                  \
  X(ECLOSED, -1013, ValueError, "object is closed")                            \
  X(EWORKERDIED, -1014, BrokenProcessPool, "worker process died")              \
  X(EDEAD, -1015, greenlet_error, "coroutine is dead")                         \
  X(EWRONGTHREAD, -1016, greenlet_error, "object belongs to another thread")   \
  X(EGAI, -1017, socket_gaierror, "name resolution failed")                    \
  X(EINCOMPLETE, -1018, IncompleteReadError, "stream ended too soon")          \
  X(ELIMIT, -1019, LimitOverrunError, "separator not found within limit")      \
  X(EINDEX, -1020, IndexError, "index out of range")                           \
  X(EKEY, -1021, KeyError, "no such key")                                      \
  X(ETASKDONE, -1022, ValueError, "task_done() called too many times")         \
  X(ENOTJOINABLE, -1023, AttributeError, "queue is not joinable")

#define CONC_ERROR_LIST(X) CONC_ERRNO_LIST(X) CONC_LIBERR_LIST(X)

typedef enum conc_error {
  CONC_OK = 0,
#define CONC__ERR_ENUM(name, value, py, msg) CONC_##name = (value),
  CONC_ERROR_LIST(CONC__ERR_ENUM)
#undef CONC__ERR_ENUM
} conc_error_t;

CONC_BEGIN_DECLS

/* A human-readable message for a code. Another -errno gets the system's
 * message ("Too many levels of symbolic links"); any other code a generic
 * text. Never NULL; the string is static. */
CONC_EXTERN const char *conc_strerror(int code);
/* The symbolic name: "CONC_ETIMEDOUT" for a code of the list, the errno
 * name ("ELOOP") for another -errno, "CONC_E?" for anything else. */
CONC_EXTERN const char *conc_err_name(int code);
/* The Python exception the code stands for ("TimeoutError", "queue.Full");
 * another -errno gives the OSError subclass Python maps that errno to
 * ("OSError" for most), any other negative code "Exception", and a code
 * >= 0 "None". */
CONC_EXTERN const char *conc_err_python(int code);

/* The Python exception class of a code, as conc_err_python names it:
 * conc_err_class(CONC_EBUSY) == CONC_PY_RuntimeError. CONC_PY_NONE for a
 * code >= 0. */
CONC_EXTERN conc_errclass_t conc_err_class(int code);

/* `except cls:` in Python: true when the code's class is `cls` or derives
 * from it. conc_err_is(CONC_ESTATE, CONC_PY_RuntimeError) and
 * conc_err_is(CONC_ECONNRESET, CONC_PY_OSError) are true; false for any
 * code >= 0. */
CONC_EXTERN bool conc_err_is(int code, conc_errclass_t cls);

/* The Python name of a class ("RuntimeError"); NULL for CONC_PY_NONE or a
 * value out of range. */
CONC_EXTERN const char *conc_errclass_name(conc_errclass_t cls);

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
