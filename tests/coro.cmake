# test_coro checks the backend it was built with (src/coro.cmake).
if(TARGET test_coro)
  target_compile_definitions(test_coro PRIVATE
    CONC_TEST_BACKEND_${CONC_CORO_BACKEND_USED}=1
    $<$<AND:$<BOOL:${CONC_CORO_SAVE_FPU}>,$<STREQUAL:${CONC_CORO_BACKEND_USED},asm>>:CONC_CORO_SAVE_FPU=1>)
endif()
