# Paths for the installed pkg-config files (conc.pc, conc-mpi.pc): relative
# to ${pcfiledir} unless the install dirs are absolute, so the prefix given
# to `cmake --install --prefix` is honoured. Sets CONC_PC_PREFIX,
# CONC_PC_LIBDIR and CONC_PC_INCLUDEDIR.
include(GNUInstallDirs)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CONC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(CONC_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(CONC_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _conc_up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
  string(REGEX REPLACE "/$" "" _conc_up "${_conc_up}")
  set(CONC_PC_PREFIX "\${pcfiledir}/${_conc_up}")
  set(CONC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(CONC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
