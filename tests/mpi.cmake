# libconc_mpi's tests (CONC_WITH_MPI=ON): each program runs under
# `mpirun --oversubscribe -np 3` (rank 0 runs the cmocka tests, ranks 1-2
# serve), label "mpi"; tests/mpi/*.c, one program per module.
if(CONC_WITH_MPI)
  file(GLOB _conc_mpi_tests CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_*.c")
  foreach(src IN LISTS _conc_mpi_tests)
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE conc_mpi_static conc_warnings
      PkgConfig::CMOCKA Threads::Threads m)
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src/mpi
      ${PROJECT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
    add_test(NAME ${name} COMMAND ${CONC_MPIRUN} $<TARGET_FILE:${name}>)
    add_test(NAME ${name}_local COMMAND ${name})
    add_test(NAME ${name}_spawn COMMAND ${name})
    # MPI_THREAD_SERIALIZED: the pools' fallback that serialises MPI calls
    add_test(NAME ${name}_serialized COMMAND ${CONC_MPIRUN} $<TARGET_FILE:${name}>)
    set_tests_properties(${name} ${name}_local ${name}_spawn
      ${name}_serialized PROPERTIES LABELS mpi TIMEOUT ${CONC_TEST_TIMEOUT})
    set_tests_properties(${name} ${name}_local PROPERTIES
      ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout")
    set_tests_properties(${name}_serialized PROPERTIES
      ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;CONC_MPI_THREAD=serialized")
    # Spawn mode: the program starts two copies of itself as workers (root
    # needs Open MPI's consent in the environment, as mpirun's flag gives).
    set_tests_properties(${name}_spawn PROPERTIES ENVIRONMENT
      "CMOCKA_MESSAGE_OUTPUT=stdout;CONC_MPI_SPAWN=2;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
  endforeach()
endif()
