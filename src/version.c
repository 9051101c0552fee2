/* Run-time version query. Locking: none. */
#include "conc/version.h"

const char *conc_version_string(void) { return CONC_VERSION_STRING; }

int conc_version_number(void) {
  return CONC_VERSION_MAJOR * 10000 + CONC_VERSION_MINOR * 100 +
         CONC_VERSION_PATCH;
}
