# Warning flags for every target of the project (not for consumers).
add_library(conc_warnings INTERFACE)
target_compile_options(conc_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wno-unused-parameter $<$<BOOL:${CONC_WERROR}>:-Werror>)
