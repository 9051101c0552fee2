# Man pages and installed documentation.
#
# The man pages are generated at build time from the comments in
# include/conc/*.h by scripts/genman.sh (POSIX sh + awk, nothing else), and
# regenerated whenever a header changes, so an installed page always
# matches the installed header. Installed:
#   share/man/man3/conc_<function>.3  one page per function (functions that
#                                     one comment documents share a page;
#                                     the others are .so links to it)
#   share/man/man3/conc_<module>.3    each header's overview, table and
#                                     public types
#   share/man/man7/libconc.7          the index (man3/conc.3 links to it)
#   share/doc/conc/                   docs/*.md, README.md, LICENSE and
#                                     examples/*.c
include(GNUInstallDirs)

option(CONC_INSTALL_DOCS "Generate and install the man pages and docs" ON)
if(NOT CONC_INSTALL_DOCS)
  return()
endif()

set(CONC_DOCDIR "${CMAKE_INSTALL_DATAROOTDIR}/doc/conc" CACHE STRING
  "Where the guide and the lessons are installed (relative to the prefix)")

find_program(CONC_SH sh)
find_program(CONC_AWK NAMES awk mawk gawk nawk)
if(CONC_SH AND CONC_AWK)
  file(GLOB _conc_man_headers CONFIGURE_DEPENDS
    "${PROJECT_SOURCE_DIR}/include/conc/*.h")
  set(_conc_man_dir "${PROJECT_BINARY_DIR}/man")
  set(_conc_man_stamp "${PROJECT_BINARY_DIR}/man.stamp")
  # A header removed changes no remaining dependency's time: the list of
  # headers, rewritten only when it changes, is a dependency too.
  string(REPLACE ";" "\n" _conc_man_list "${_conc_man_headers}")
  file(CONFIGURE OUTPUT "${PROJECT_BINARY_DIR}/man-headers.txt"
    CONTENT "${_conc_man_list}\n" @ONLY)
  add_custom_command(
    OUTPUT "${_conc_man_stamp}"
    COMMAND ${CMAKE_COMMAND} -E env "AWK=${CONC_AWK}"
      "${CONC_SH}" "${PROJECT_SOURCE_DIR}/scripts/genman.sh"
      "${_conc_man_dir}" "${PROJECT_VERSION}" "${PROJECT_SOURCE_DIR}"
    COMMAND ${CMAKE_COMMAND} -E touch "${_conc_man_stamp}"
    DEPENDS ${_conc_man_headers} "${PROJECT_BINARY_DIR}/man-headers.txt"
      "${PROJECT_SOURCE_DIR}/scripts/genman.sh"
      "${PROJECT_SOURCE_DIR}/scripts/genman.awk"
      "${PROJECT_SOURCE_DIR}/docs/index.md"
    COMMENT "Generating the man pages from include/conc/*.h"
    VERBATIM)
  add_custom_target(conc_man ALL DEPENDS "${_conc_man_stamp}")
  install(DIRECTORY "${_conc_man_dir}/" DESTINATION "${CMAKE_INSTALL_MANDIR}"
    COMPONENT doc)
else()
  message(STATUS "libconc: no sh or awk found; the man pages are not built")
endif()

install(DIRECTORY "${PROJECT_SOURCE_DIR}/docs/" DESTINATION "${CONC_DOCDIR}"
  COMPONENT doc FILES_MATCHING PATTERN "*.md")
install(FILES "${PROJECT_SOURCE_DIR}/README.md" "${PROJECT_SOURCE_DIR}/LICENSE"
  DESTINATION "${CONC_DOCDIR}" COMPONENT doc)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/examples/"
  DESTINATION "${CONC_DOCDIR}/examples" COMPONENT doc
  FILES_MATCHING PATTERN "*.c" PATTERN "expected" EXCLUDE)
