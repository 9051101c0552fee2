# Warning flags for every target of the project (not for consumers). The
# prototype warnings exist for C only; C++ sources (a benchmark baseline, say)
# get the rest.
add_library(conc_warnings INTERFACE)
target_compile_options(conc_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wno-unused-parameter
  $<$<COMPILE_LANGUAGE:C>:-Wstrict-prototypes -Wmissing-prototypes>
  $<$<BOOL:${CONC_WERROR}>:-Werror>)
