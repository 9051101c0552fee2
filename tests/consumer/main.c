/* A program outside the libconc tree, built against an installed libconc
 * once through find_package(conc) and once through pkg-config. */
#include <stdio.h>
#include <string.h>

#include <conc.h>

int main(void) {
  if (strcmp(conc_version_string(), CONC_VERSION_STRING) != 0) {
    fprintf(stderr, "header %s but library %s\n", CONC_VERSION_STRING,
            conc_version_string());
    return 1;
  }
  if (conc_sleep(0.001) != 0 || conc_sleep(-1.0) != CONC_EINVAL)
    return 1;
  printf("consumer: libconc %s, %s -> %s\n", conc_version_string(),
         conc_err_name(CONC_ETIMEDOUT), conc_err_python(CONC_ETIMEDOUT));
  return 0;
}
