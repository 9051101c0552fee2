# The event loop's default readiness backend. Both backends are always
# built (tests run each); this picks the one a loop gets when neither its
# options nor CONC_LOOP_BACKEND in the environment choose.
set(CONC_LOOP_POLLER "epoll" CACHE STRING "Default loop poller: epoll or poll")
set_property(CACHE CONC_LOOP_POLLER PROPERTY STRINGS epoll poll)
if(CONC_LOOP_POLLER STREQUAL "poll")
  list(APPEND CONC_PRIVATE_DEFS CONC_LOOP_DEFAULT_POLL)
elseif(NOT CONC_LOOP_POLLER STREQUAL "epoll")
  message(FATAL_ERROR "CONC_LOOP_POLLER must be epoll or poll")
endif()
message(STATUS "libconc loop poller: ${CONC_LOOP_POLLER}")

# The optional io_uring poller (liburing). Off by default: the default build
# depends on nothing beyond the C library and the kernel.
option(CONC_WITH_IO_URING "Build the loop's io_uring backend (liburing)" OFF)
if(CONC_WITH_IO_URING)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(CONC_URING REQUIRED IMPORTED_TARGET liburing)
  list(APPEND CONC_PRIVATE_DEFS CONC_HAVE_IO_URING)
  list(APPEND CONC_PRIVATE_LIBS PkgConfig::CONC_URING)
  message(STATUS "libconc loop io_uring backend: yes (liburing ${CONC_URING_VERSION})")
else()
  list(FILTER CONC_SOURCES EXCLUDE REGEX "/loop_uring\\.c$")
endif()
