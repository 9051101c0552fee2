/* Error names, messages and Python classes, generated from the X-macro lists
 * in error.h (other -errno values get the C library's name and message), and
 * the message conc_raise attaches to a callable's code.
 * Locking: none; the tables are constant, and the raised message (and, on C
 * libraries without strerrorname_np, the errno texts) are thread-local. */
#include "conc/error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "error-int.h"

struct conc__errinfo {
  int code;
  conc_errclass_t cls;
  const char *name;
  const char *message;
};

static const struct conc__errinfo conc__errors[] = {
    {0, CONC_PY_NONE, "CONC_OK", "success"},
#define CONC__ERR_ROW(n, v, py, msg) {(v), CONC_PY_##py, "CONC_" #n, msg},
    CONC_ERROR_LIST(CONC__ERR_ROW)
#undef CONC__ERR_ROW
};

static const struct {
  const char *name;
  conc_errclass_t base;
} conc__classes[] = {{NULL, CONC_PY_NONE},
#define CONC__CLASS_ROW(id, py, base) {py, CONC_PY_##base},
                     CONC_ERRCLASS_LIST(CONC__CLASS_ROW)
#undef CONC__CLASS_ROW
};

#define NCLASSES (sizeof conc__classes / sizeof conc__classes[0])

static const struct conc__errinfo *find(int code) {
  for (size_t i = 0; i < sizeof conc__errors / sizeof conc__errors[0]; i++)
    if (conc__errors[i].code == code)
      return &conc__errors[i];
  return NULL;
}

/* A -errno the list does not name: the system knows its name. */
static bool is_errno(int code) { return code < 0 && code > -4096; }

#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define HAVE_ERRORNAME_NP 1
#endif

#ifndef HAVE_ERRORNAME_NP
/* Without glibc's table: POSIX's names (every POSIX system defines them;
 * aliases such as EWOULDBLOCK == EAGAIN resolve to the first), and the
 * message built per thread. */
// clang-format off
#define POSIX_ERRNO_LIST(X)                                                    \
  X(E2BIG) X(EACCES) X(EADDRINUSE) X(EADDRNOTAVAIL) X(EAFNOSUPPORT) X(EAGAIN)  \
  X(EALREADY) X(EBADF) X(EBADMSG) X(EBUSY) X(ECANCELED) X(ECHILD)             \
  X(ECONNABORTED) X(ECONNREFUSED) X(ECONNRESET) X(EDEADLK) X(EDESTADDRREQ)    \
  X(EDOM) X(EDQUOT) X(EEXIST) X(EFAULT) X(EFBIG) X(EHOSTUNREACH) X(EIDRM)     \
  X(EILSEQ) X(EINPROGRESS) X(EINTR) X(EINVAL) X(EIO) X(EISCONN) X(EISDIR)     \
  X(ELOOP) X(EMFILE) X(EMLINK) X(EMSGSIZE) X(EMULTIHOP) X(ENAMETOOLONG)       \
  X(ENETDOWN) X(ENETRESET) X(ENETUNREACH) X(ENFILE) X(ENOBUFS) X(ENODEV)      \
  X(ENOENT) X(ENOEXEC) X(ENOLCK) X(ENOLINK) X(ENOMEM) X(ENOMSG)               \
  X(ENOPROTOOPT) X(ENOSPC) X(ENOSYS) X(ENOTCONN) X(ENOTDIR) X(ENOTEMPTY)      \
  X(ENOTRECOVERABLE) X(ENOTSOCK) X(ENOTSUP) X(ENOTTY) X(ENXIO) X(EOPNOTSUPP)  \
  X(EOVERFLOW) X(EOWNERDEAD) X(EPERM) X(EPIPE) X(EPROTO) X(EPROTONOSUPPORT)   \
  X(EPROTOTYPE) X(ERANGE) X(EROFS) X(ESPIPE) X(ESRCH) X(ESTALE) X(ETIMEDOUT)  \
  X(ETXTBSY) X(EWOULDBLOCK) X(EXDEV)
// clang-format on

static const struct {
  int e;
  const char *name;
} posix_errnos[] = {
#define ERRNO_ROW(e) {e, #e},
    POSIX_ERRNO_LIST(ERRNO_ROW)
#undef ERRNO_ROW
};

static __thread char errno_msg_buf[128];
#endif

static const char *errno_name(int e) {
#ifdef HAVE_ERRORNAME_NP
  return strerrorname_np(e);
#else
  for (size_t i = 0; i < sizeof posix_errnos / sizeof posix_errnos[0]; i++)
    if (posix_errnos[i].e == e)
      return posix_errnos[i].name;
  return NULL;
#endif
}

static const char *errno_message(int e) {
#ifdef HAVE_ERRORNAME_NP
  return strerrordesc_np(e);
#else
#if defined(__GLIBC__) /* older glibc: the GNU strerror_r (_GNU_SOURCE) */
  return strerror_r(e, errno_msg_buf, sizeof errno_msg_buf);
#else
  if (strerror_r(e, errno_msg_buf, sizeof errno_msg_buf) != 0)
    return NULL;
  return errno_msg_buf;
#endif
#endif
}

/* PEP 3151: the OSError subclass Python raises for an errno. */
static conc_errclass_t errno_class(int e) {
  switch (e) {
  case EAGAIN:
#if EWOULDBLOCK != EAGAIN
  case EWOULDBLOCK:
#endif
  case EALREADY:
  case EINPROGRESS:
    return CONC_PY_BlockingIOError;
  case ECHILD:
    return CONC_PY_ChildProcessError;
  case EPIPE:
  case ESHUTDOWN:
    return CONC_PY_BrokenPipeError;
  case ECONNABORTED:
    return CONC_PY_ConnectionAbortedError;
  case ECONNREFUSED:
    return CONC_PY_ConnectionRefusedError;
  case ECONNRESET:
    return CONC_PY_ConnectionResetError;
  case EEXIST:
    return CONC_PY_FileExistsError;
  case ENOENT:
    return CONC_PY_FileNotFoundError;
  case EISDIR:
    return CONC_PY_IsADirectoryError;
  case ENOTDIR:
    return CONC_PY_NotADirectoryError;
  case EINTR:
    return CONC_PY_InterruptedError;
  case EACCES:
  case EPERM:
    return CONC_PY_PermissionError;
  case ESRCH:
    return CONC_PY_ProcessLookupError;
  case ETIMEDOUT:
    return CONC_PY_TimeoutError;
  default:
    return CONC_PY_OSError;
  }
}

const char *conc_strerror(int code) {
  const struct conc__errinfo *e = find(code);
  if (e)
    return e->message;
  const char *m = is_errno(code) ? errno_message(-code) : NULL;
  return m ? m : "unknown error";
}

const char *conc_err_name(int code) {
  const struct conc__errinfo *e = find(code);
  if (e)
    return e->name;
  const char *n = is_errno(code) ? errno_name(-code) : NULL;
  return n ? n : "CONC_E?";
}

conc_errclass_t conc_err_class(int code) {
  if (code >= 0)
    return CONC_PY_NONE;
  const struct conc__errinfo *e = find(code);
  if (e)
    return e->cls;
  return is_errno(code) ? errno_class(-code) : CONC_PY_Exception;
}

const char *conc_errclass_name(conc_errclass_t cls) {
  return (size_t)cls < NCLASSES ? conc__classes[cls].name : NULL;
}

const char *conc_err_python(int code) {
  const char *n = conc_errclass_name(conc_err_class(code));
  return n ? n : "None";
}

bool conc_err_is(int code, conc_errclass_t cls) {
  conc_errclass_t c = conc_err_class(code);
  if (c == CONC_PY_NONE || (size_t)cls >= NCLASSES)
    return false;
  for (;;) {
    if (c == cls)
      return true;
    conc_errclass_t base = conc__classes[c].base;
    if (base == c)
      return false;
    c = base;
  }
}

/* The last conc_raise of this thread: its code and message. A fixed buffer
 * (longer messages are cut) so that a thread that ends with a message no one
 * took leaks nothing, whoever created the thread. */
#define RAISE_MSG_MAX 512
static __thread int raised_code;
static __thread char raised_msg[RAISE_MSG_MAX];

void conc__raise_clear(void) {
  raised_code = 0;
  raised_msg[0] = '\0';
}

int conc_raise(int code, const char *fmt, ...) {
  if (code >= 0)
    return code;
  raised_msg[0] = '\0';
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raised_msg, sizeof raised_msg, fmt, ap);
    va_end(ap);
  }
  raised_code = code;
  return code;
}

const char *conc_raised_message(int code) {
  return code < 0 && code == raised_code ? raised_msg : NULL;
}

char *conc__raise_take(int code) {
  char *m = NULL;
  if (code < 0 && code == raised_code)
    m = strdup(raised_msg);
  conc__raise_clear();
  return m;
}
