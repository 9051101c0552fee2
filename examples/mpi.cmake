# Lessons of the optional MPI component (CONC_WITH_MPI=ON): each runs twice,
# alone and under `mpirun -np 3`, against one expected output.
if(CONC_WITH_MPI)
  file(GLOB _mpi_lessons CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/mpi/[0-9][0-9]_*.c")
  string(REPLACE ";" "|" _mpi_launch_arg "${CONC_MPIRUN}")
  foreach(src IN LISTS _mpi_lessons)
    get_filename_component(name ${src} NAME_WE)
    add_executable(example_${name} ${src})
    set_target_properties(example_${name} PROPERTIES OUTPUT_NAME ${name})
    target_link_libraries(example_${name} PRIVATE conc_mpi conc_warnings m)
    if(CONC_BUILD_TESTS OR BUILD_TESTING)
      foreach(how local mpirun)
        set(_launch "")
        if(how STREQUAL "mpirun")
          set(_launch "-DLAUNCH=${_mpi_launch_arg}")
        endif()
        add_test(NAME example_${name}_${how}
          COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:example_${name}> ${_launch}
            -DEXPECTED=${CMAKE_CURRENT_SOURCE_DIR}/expected/${name}
            -P ${PROJECT_SOURCE_DIR}/cmake/ConcRunExample.cmake)
        set_tests_properties(example_${name}_${how} PROPERTIES
          LABELS "example;mpi" TIMEOUT 120)
      endforeach()
    endif()
  endforeach()
endif()
