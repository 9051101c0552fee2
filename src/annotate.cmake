# Race-detector annotations (annotate.c): valgrind's client requests are
# compiled in when the build machine has the headers; they cost a few
# instructions natively and run only under valgrind.
include(CheckIncludeFile)
check_include_file(valgrind/helgrind.h CONC_HAVE_HELGRIND_H)
check_include_file(valgrind/drd.h CONC_HAVE_DRD_H)
if(CONC_HAVE_HELGRIND_H AND CONC_HAVE_DRD_H)
  list(APPEND CONC_PRIVATE_DEFS CONC_HAVE_VALGRIND)
endif()
