/* Error names and messages, generated from the X-macro list in error.h, and
 * the message conc_raise attaches to a callable's code.
 * Locking: none; the tables are constant and the raised message is
 * thread-local. */
#include "conc/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "error-int.h"

struct conc__errinfo {
  int code;
  const char *name;
  const char *python;
  const char *message;
};

static const struct conc__errinfo conc__errors[] = {
    {0, "CONC_OK", "None", "success"},
#define CONC__ERR_ROW(n, v, py, msg) {(v), "CONC_" #n, py, msg},
    CONC_ERROR_LIST(CONC__ERR_ROW)
#undef CONC__ERR_ROW
};

static const struct conc__errinfo *find(int code) {
  for (size_t i = 0; i < sizeof conc__errors / sizeof conc__errors[0]; i++)
    if (conc__errors[i].code == code)
      return &conc__errors[i];
  return NULL;
}

const char *conc_strerror(int code) {
  const struct conc__errinfo *e = find(code);
  return e ? e->message : "unknown error";
}

const char *conc_err_name(int code) {
  const struct conc__errinfo *e = find(code);
  return e ? e->name : "CONC_E?";
}

const char *conc_err_python(int code) {
  const struct conc__errinfo *e = find(code);
  return e ? e->python : "Exception";
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
