# bench_echo's server children (libconc, raw epoll, libuv, the Python
# script) live beside it in echo_srv.c (not a program of their own: only
# bench_*.c are).
if(TARGET bench_echo)
  target_sources(bench_echo PRIVATE ${CMAKE_CURRENT_LIST_DIR}/echo_srv.c)
endif()
