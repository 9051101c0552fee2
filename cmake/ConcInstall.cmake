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

set(_conc_pcdir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
include(ConcPcPaths)
configure_file(${PROJECT_SOURCE_DIR}/cmake/conc.pc.in ${PROJECT_BINARY_DIR}/conc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/conc.pc DESTINATION ${_conc_pcdir})
