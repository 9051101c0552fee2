/* libconc version: the single source of the version number (CMake parses it).
 */
#ifndef CONC_VERSION_H
#define CONC_VERSION_H

#include "conc/defs.h"

#define CONC_VERSION_MAJOR 0
#define CONC_VERSION_MINOR 1
#define CONC_VERSION_PATCH 0

#define CONC__STR2(x) #x
#define CONC__STR(x) CONC__STR2(x)
#define CONC_VERSION_STRING                                                    \
  CONC__STR(CONC_VERSION_MAJOR)                                                \
  "." CONC__STR(CONC_VERSION_MINOR) "." CONC__STR(CONC_VERSION_PATCH)

CONC_BEGIN_DECLS

/* The version of the library actually loaded, e.g. "0.1.0". */
CONC_EXTERN const char *conc_version_string(void);
/* MAJOR * 10000 + MINOR * 100 + PATCH of the loaded library. */
CONC_EXTERN int conc_version_number(void);

CONC_END_DECLS

#endif
