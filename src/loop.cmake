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
