// clang-format off
/*
 * Lesson 0: hello, libconc.
 *
 * Python:                         C:
 *   import threading, time          #include <conc.h>
 *   time.sleep(0.1)                 conc_sleep(0.1);
 *   except queue.Full as e:         if (rc == CONC_EFULL) ... conc_strerror(rc)
 *
 * Every call that can fail returns 0 or a negative CONC_E* code; each code
 * names the Python exception it stands for.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

int main(void) {
  printf("libconc %s\n", conc_version_string());

  /* Errors are codes, each one a Python exception. */
  int rc = CONC_EFULL;
  printf("%s is Python's %s: %s\n", conc_err_name(rc), conc_err_python(rc),
         conc_strerror(rc));

  /* A timed sleep on the monotonic clock, like time.sleep(0.1). */
  double start = conc_monotonic();
  conc_sleep(0.1);
  double slept = conc_monotonic() - start;
  printf("slept at least 0.1 s: %s\n", slept >= 0.1 ? "yes" : "no");
  return 0;
}
