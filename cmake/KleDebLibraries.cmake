# CPACK_POST_BUILD_SCRIPTS for the Debian packages of the shared libraries
# (CPACK_KLE_DEB_LIBRARY_PACKAGES): replaces the postinst and postrm that
# CPack writes for libraries under usr/lib, which only call ldconfig, by an
# "activate-noawait ldconfig" trigger, as Debian wants (lintian:
# lacks-ldconfig-trigger, maintscript-calls-ldconfig). Any other script is
# an error: this must not drop something a script does.
find_program(_dpkg_deb dpkg-deb REQUIRED)
foreach(_deb IN LISTS CPACK_PACKAGE_FILES)
  get_filename_component(_name "${_deb}" NAME)
  string(REGEX REPLACE "_.*" "" _pkg "${_name}")
  if(NOT _pkg IN_LIST CPACK_KLE_DEB_LIBRARY_PACKAGES)
    continue()
  endif()
  set(_dir "${CPACK_TOPLEVEL_DIRECTORY}/ldconfig-trigger/${_pkg}")
  file(REMOVE_RECURSE "${_dir}")
  file(MAKE_DIRECTORY "${CPACK_TOPLEVEL_DIRECTORY}/ldconfig-trigger")
  execute_process(COMMAND ${_dpkg_deb} --raw-extract "${_deb}" "${_dir}"
    RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "dpkg-deb --raw-extract ${_name} failed")
  endif()
  foreach(_script postinst postrm)
    set(_f "${_dir}/DEBIAN/${_script}")
    if(NOT EXISTS "${_f}")
      continue()
    endif()
    file(READ "${_f}" _text)
    if(NOT _text MATCHES "^#!/bin/sh\n+set -e\n+if \\[ \"\\$1\" = \"[a-z]+\" \\]; then\n\tldconfig\nfi\n*$")
      message(FATAL_ERROR "${_name}: ${_script} does more than call ldconfig:\n${_text}")
    endif()
    file(REMOVE "${_f}")
  endforeach()
  file(WRITE "${_dir}/DEBIAN/triggers" "activate-noawait ldconfig\n")
  execute_process(COMMAND ${_dpkg_deb} --root-owner-group -Zgzip --build "${_dir}" "${_deb}"
    RESULT_VARIABLE _rc OUTPUT_QUIET)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "dpkg-deb --build ${_name} failed")
  endif()
  file(REMOVE_RECURSE "${_dir}")
endforeach()
