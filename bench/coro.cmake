# bench_coro's Boost.Context baseline (issue 5): a C++ shim around
# jump_fcontext / make_fcontext, built only when a C++ compiler and
# Boost.Context (header + library) are found.
include(CheckLanguage)
check_language(CXX)
find_path(CONC_BOOST_FCONTEXT_INCLUDE boost/context/detail/fcontext.hpp)
find_library(CONC_BOOST_CONTEXT_LIB boost_context)
if(TARGET bench_coro AND CMAKE_CXX_COMPILER AND CONC_BOOST_FCONTEXT_INCLUDE
   AND CONC_BOOST_CONTEXT_LIB)
  enable_language(CXX)
  add_library(bench_coro_boost STATIC ${CMAKE_CURRENT_SOURCE_DIR}/coro_boost.cpp)
  set_target_properties(bench_coro_boost PROPERTIES CXX_STANDARD 11)
  target_include_directories(bench_coro_boost PRIVATE ${CONC_BOOST_FCONTEXT_INCLUDE})
  target_link_libraries(bench_coro_boost PUBLIC ${CONC_BOOST_CONTEXT_LIB})
  target_link_libraries(bench_coro PRIVATE bench_coro_boost)
  target_compile_definitions(bench_coro PRIVATE BENCH_HAVE_BOOST_CONTEXT=1)
  message(STATUS "libconc bench baseline Boost.Context: ${CONC_BOOST_CONTEXT_LIB}")
else()
  message(STATUS "libconc bench baseline Boost.Context: not found, skipped")
endif()
