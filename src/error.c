/* Error names and messages, generated from the X-macro list in error.h.
 * Locking: none; everything here is constant data. */
#include "conc/error.h"

#include <stddef.h>

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
