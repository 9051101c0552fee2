# libconc_mpi: the Pool over Open MPI ranks (include/conc/mpi.h). Optional:
# the default build depends on no MPI. With CONC_WITH_MPI=ON it builds the
# conc_mpi library (CMake target conc::mpi, pkg-config conc-mpi), its tests
# (tests/mpi.cmake, run under mpirun) and its benchmark (bench/mpi.cmake).
# libconc_mpi is the whole of libconc plus the MPI pieces (a program links
# it INSTEAD of libconc), because its pools plug into the Pool's internals.
option(CONC_WITH_MPI "Build libconc_mpi, the Pool over MPI ranks (Open MPI)" OFF)
if(CONC_WITH_MPI)
  include(GNUInstallDirs)
  find_package(MPI REQUIRED COMPONENTS C)
  file(GLOB _conc_mpi_sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/mpi/*.c")
  add_library(conc_mpi_objects OBJECT ${_conc_mpi_sources})
  set_target_properties(conc_mpi_objects PROPERTIES
    POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
  target_include_directories(conc_mpi_objects
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/mpi ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_definitions(conc_mpi_objects PRIVATE _GNU_SOURCE)
  target_link_libraries(conc_mpi_objects PUBLIC MPI::MPI_C PRIVATE conc_warnings)
  add_library(conc_mpi $<TARGET_OBJECTS:conc_objects> $<TARGET_OBJECTS:conc_mpi_objects>)
  add_library(conc::mpi ALIAS conc_mpi)
  target_include_directories(conc_mpi PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(conc_mpi PUBLIC Threads::Threads MPI::MPI_C ${CONC_PRIVATE_LIBS})
  set_target_properties(conc_mpi PROPERTIES
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
    EXPORT_NAME mpi)
  # The tests reach the internals through a static copy (as conc_static).
  add_library(conc_mpi_static STATIC $<TARGET_OBJECTS:conc_objects>
    $<TARGET_OBJECTS:conc_mpi_objects>)
  target_include_directories(conc_mpi_static PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(conc_mpi_static PUBLIC Threads::Threads MPI::MPI_C
    ${CONC_PRIVATE_LIBS})
  install(TARGETS conc_mpi EXPORT concMpiTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT concMpiTargets NAMESPACE conc::
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/conc)
  include(ConcPcPaths) # relocatable, like conc.pc
  configure_file(${PROJECT_SOURCE_DIR}/cmake/conc-mpi.pc.in
    ${PROJECT_BINARY_DIR}/conc-mpi.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/conc-mpi.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  # How tests and lessons start a 3-rank job (mpirun refuses root unless told).
  set(_conc_mpirun ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 3 --oversubscribe)
  execute_process(COMMAND id -u OUTPUT_VARIABLE _conc_uid
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_conc_uid STREQUAL "0")
    list(APPEND _conc_mpirun --allow-run-as-root)
  endif()
  set(CONC_MPIRUN "${_conc_mpirun}" CACHE INTERNAL "mpirun -np 3 for tests")
  message(STATUS "libconc_mpi: yes (MPI ${MPI_C_VERSION}, ${MPIEXEC_EXECUTABLE})")
endif()
