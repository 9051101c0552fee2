# bench_loop gathers its tasks with conc_aio_gather (src/aio_combine.c,
# issue 11's combinators). Where that source is absent the program awaits
# every task in order instead (the same work), so the benchmark builds at
# every stage of the loop layer.
if(TARGET bench_loop AND EXISTS "${PROJECT_SOURCE_DIR}/src/aio_combine.c")
  target_compile_definitions(bench_loop PRIVATE BENCH_HAVE_GATHER=1)
endif()
# Its CPython baselines and child runner live beside it (not a program of
# their own: only bench_*.c are).
if(TARGET bench_loop)
  target_sources(bench_loop PRIVATE ${CMAKE_CURRENT_LIST_DIR}/loop_py.c)
endif()
