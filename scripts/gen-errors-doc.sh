#!/usr/bin/env bash
# Writes docs/errors.md from the X-macro list in include/conc/error.h, so the
# table always names every code with its real value.
# Usage: bash scripts/gen-errors-doc.sh [output]   (default docs/errors.md)
# CI runs it into a temporary file and fails when docs/errors.md is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/errors.md}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/gen.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "conc/error.h"
/* Per class: its C id, its Python name, its base's C id. */
static const char *const cls_id[] = {
    "NONE",
#define CLS(id, py, base) #id,
    CONC_ERRCLASS_LIST(CLS)
#undef CLS
};
static const char *const py_name[] = {
    "None",
#define CLS(id, py, base) py,
    CONC_ERRCLASS_LIST(CLS)
#undef CLS
};
static const char *const base_id[] = {
    "",
#define CLS(id, py, base) #base,
    CONC_ERRCLASS_LIST(CLS)
#undef CLS
};
#define ROW(name, value, py, msg)                                              \
  printf("| `%s` | `CONC_%s` | %d | %s |\n", py_name[CONC_PY_##py], #name,    \
         (int)(value), msg);
int main(int argc, char **argv) {
  (void)argv;
  if (argc > 1) { /* the class table */
    printf("| class (`conc_errclass_t`) | Python | base |\n");
    printf("| --- | --- | --- |\n");
    for (int i = 1; i < (int)(sizeof py_name / sizeof py_name[0]); i++)
      printf("| `CONC_PY_%s` | `%s` | %s |\n", cls_id[i], py_name[i],
             strcmp(base_id[i], cls_id[i]) ? base_id[i] : "(root)");
    return 0;
  }
  printf("| Python exception | code | value | meaning (`conc_strerror`) |\n");
  printf("| --- | --- | ---: | --- |\n");
  CONC_ERROR_LIST(ROW)
  return 0;
}
C
cc -std=c11 -Iinclude "$tmp/gen.c" -o "$tmp/gen"
{
  cat <<'MD'
# Errors

Every libconc function that can fail returns an `int`: `0` on success (or a
non-negative value where Python returns one, such as a barrier's index) and a
negative `CONC_E*` code on failure. Each code stands for one Python
exception, so a C port of a Python program handles errors where the Python
program has its `except` clauses:

```c
int rc = conc_queue_put(&q, item, true, 0.5);    /* q.put(item, timeout=0.5) */
if (rc == CONC_EFULL)                             /* except queue.Full: */
  fprintf(stderr, "%s: %s\n", conc_err_name(rc), conc_strerror(rc));
```

- `conc_strerror(code)` gives the message below, `conc_err_name(code)` the
  symbolic name (`"CONC_EFULL"`), `conc_err_python(code)` the Python
  exception (`"queue.Full"`). Any other `-errno` a system call returns
  prints by its own name and message (`conc_err_name(-ELOOP)` is `"ELOOP"`,
  `conc_strerror(-ELOOP)` "Too many levels of symbolic links") and is an
  `OSError`, or the subclass Python maps that errno to (`-EISDIR` is
  `IsADirectoryError`). Unknown codes give generic texts, never NULL.
- Python's `except` clause is one call: `conc_err_class(code)` is the
  exception's class (`CONC_PY_RuntimeError`), and `conc_err_is(code, cls)`
  is true when that class is `cls` or derives from it, with Python's
  hierarchy (the class table below):

  ```c
  if (conc_err_is(rc, CONC_PY_RuntimeError))   /* except RuntimeError: */
    ...;  /* CONC_ESTATE, EPERM, EDEADLK, ENOTSTARTED, EBUSY, and the
             subclasses: NotImplementedError, BrokenBarrierError, ... */
  if (conc_err_is(rc, CONC_PY_OSError))        /* except OSError: */
    ...;  /* every -errno code but the few Python maps elsewhere */
  ```
- Codes backed by errno equal `-E*` (values below are Linux's), so a system
  call's failure passes through unchanged: `return -errno;`. Library codes
  are below -1000.
- Where Python *returns* a result instead of raising, libconc returns a code
  all the same, and the API page says so: `Lock.acquire(timeout=1)` returning
  `False` is `CONC_ETIMEDOUT`, `Event.wait(1)` and `Condition.wait(1)`
  returning `False` are `CONC_ETIMEDOUT`, a non-blocking `acquire(False)`
  that fails is `CONC_ETIMEDOUT` too (a zero-length wait that timed out).
- RuntimeError covers two kinds of misuse: `CONC_EPERM` for acting on
  something the caller does not own (releasing an RLock another thread holds) and
  `CONC_ESTATE` for a call the object's state forbids (starting a thread
  twice); joining a thread that was never started is `CONC_ENOTSTARTED`.
- Bad input (NULL objects, NaN or negative timeouts where Python raises
  ValueError) is `CONC_EINVAL` and changes nothing. Each other Python error
  a call can raise has its own code: an index out of range is `CONC_EINDEX`
  (IndexError), a missing key `CONC_EKEY` (KeyError), `task_done()` called
  more times than items were put `CONC_ETASKDONE` (ValueError), `task_done`
  or `join` on a process queue made without `.joinable` `CONC_ENOTJOINABLE`
  (Python's queue has no such method: AttributeError).
- A task run by an executor or pool may fail with any code; its future
  carries that code to `conc_future_result`, as Python re-raises the task's
  exception.

## Every code

This table is generated from the X-macro list in `include/conc/error.h` by
`scripts/gen-errors-doc.sh`; CI fails when it is stale.

MD
  "$tmp/gen"
  cat <<'MD'

## Every class

`conc_errclass_t`, generated from `CONC_ERRCLASS_LIST` in the same header:
each class with its base, as in Python (`OwnerDied` is libconc's own: a
lock whose owner died, which Python's threads never see).

MD
  "$tmp/gen" classes
} >"$tmp/errors.md"
mv "$tmp/errors.md" "$out"
echo "wrote $out"
