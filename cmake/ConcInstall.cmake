# Install rules: headers, libraries, CMake package config and pkg-config file.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_conc_targets conc)
if(BUILD_SHARED_LIBS AND CONC_BUILD_STATIC)
  list(APPEND _conc_targets conc_static)
endif()
install(TARGETS ${_conc_targets} EXPORT concTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")

set(_conc_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/conc)
install(EXPORT concTargets NAMESPACE conc:: DESTINATION ${_conc_cmakedir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/concConfig.cmake.in
  ${PROJECT_BINARY_DIR}/concConfig.cmake INSTALL_DESTINATION ${_conc_cmakedir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/concConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/concConfig.cmake
  ${PROJECT_BINARY_DIR}/concConfigVersion.cmake DESTINATION ${_conc_cmakedir})

# conc.pc names its paths relative to ${pcfiledir} unless the install dirs
# are absolute, so the prefix given to `cmake --install --prefix` is honoured.
set(_conc_pcdir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CONC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(CONC_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(CONC_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _conc_up "/root/${_conc_pcdir}" "/root")
  string(REGEX REPLACE "/$" "" _conc_up "${_conc_up}")
  set(CONC_PC_PREFIX "\${pcfiledir}/${_conc_up}")
  set(CONC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(CONC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/conc.pc.in ${PROJECT_BINARY_DIR}/conc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/conc.pc DESTINATION ${_conc_pcdir})
