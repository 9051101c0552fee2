# man_pages: installs to a temporary prefix and checks the man pages
# generated from the headers (tests/man_check.sh; skipped, exit 77, where
# man or groff is missing).
if(TARGET conc_man)
  find_program(CONC_TEST_SH sh)
  add_test(NAME man_pages COMMAND "${CONC_TEST_SH}"
    "${CMAKE_CURRENT_SOURCE_DIR}/man_check.sh" "${CMAKE_COMMAND}"
    "${PROJECT_BINARY_DIR}" "${PROJECT_SOURCE_DIR}")
  set_tests_properties(man_pages PROPERTIES LABELS unit
    SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
