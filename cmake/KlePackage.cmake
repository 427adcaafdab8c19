# The installable library, its pkg-config file and CMake package, the API
# reference, and the Debian packages.

include(CMakePackageConfigHelpers)

# libkle.so.MAJOR -> libkle.so.MAJOR.MINOR.PATCH, and libkle.a, from the same objects.
add_library(kle_shared SHARED ${KLE_OBJECTS})
add_library(kle_static STATIC ${KLE_OBJECTS})
foreach(_t kle_shared kle_static)
  target_include_directories(${_t} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${_t} PRIVATE ${KLE_LIBRARY_DEPS})
  # No core header exposes a json-c type; kle/rest.h does (kle::rest).
  target_link_libraries(${_t} PUBLIC Threads::Threads)
endforeach()
# The shared libraries' file names: the SONAME series, then the release
# (libkle.so.1.0.2.0 for SONAME libkle.so.1 in release 0.2.0), so that the
# file belongs to its SONAME series as Debian expects, and file names grow
# with every release within a series.
set(KLE_SHLIB_VERSION ${KLE_SOVERSION}.${PROJECT_VERSION})
# libkle-testing.so / .a: the fake clock and fake lock (kle::testing).
add_library(kle_testing_shared SHARED $<TARGET_OBJECTS:kle_testing>)
add_library(kle_testing_static STATIC $<TARGET_OBJECTS:kle_testing>)
target_link_libraries(kle_testing_shared PUBLIC kle_shared)
target_link_libraries(kle_testing_static PUBLIC kle_static)
set_target_properties(kle_testing_shared PROPERTIES
  OUTPUT_NAME kle-testing EXPORT_NAME testing
  VERSION ${KLE_SHLIB_VERSION} SOVERSION ${KLE_SOVERSION} C_VISIBILITY_PRESET hidden)
set_target_properties(kle_testing_static PROPERTIES
  OUTPUT_NAME kle-testing EXPORT_NAME testing_static)
# kle::rest: libkle plus json-c, for programs that include kle/rest.h.
add_library(kle_rest INTERFACE)
target_link_libraries(kle_rest INTERFACE kle_shared PkgConfig::JSONC)
set_target_properties(kle_rest PROPERTIES EXPORT_NAME rest)
set_target_properties(kle_shared PROPERTIES
  OUTPUT_NAME kle EXPORT_NAME kle
  VERSION ${KLE_SHLIB_VERSION} SOVERSION ${KLE_SOVERSION}
  C_VISIBILITY_PRESET hidden)
set_target_properties(kle_static PROPERTIES OUTPUT_NAME kle EXPORT_NAME kle_static)

# libkle.so.N to the runtime package, libkle-testing.so.N to a package of its
# own (test programs need it, production programs do not), the rest (the
# libkle.so links, static libraries) to -dev.
install(TARGETS kle_shared kle_static kle_rest
  EXPORT kleTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS kle_testing_shared kle_testing_static
  EXPORT kleTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT testing NAMELINK_COMPONENT dev
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/kle DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/kle/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kle COMPONENT dev)

# CMake package: find_package(kle CONFIG REQUIRED) -> kle::kle, kle::kle_static.
set(_kle_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/kle)
install(EXPORT kleTargets NAMESPACE kle:: DESTINATION ${_kle_cmakedir} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kleConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kleConfig.cmake INSTALL_DESTINATION ${_kle_cmakedir})
# Before 1.0 a minor release may change the API (docs/install.md, "ABI
# policy"): find_package(kle 0.2) accepts 0.2.x only; from 1.0, any 1.x.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_kle_compat SameMinorVersion)
else()
  set(_kle_compat SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kleConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${_kle_compat})
install(FILES ${PROJECT_BINARY_DIR}/kleConfig.cmake ${PROJECT_BINARY_DIR}/kleConfigVersion.cmake
  DESTINATION ${_kle_cmakedir} COMPONENT dev)

# pkg-config, relocatable: the prefix is found from the .pc file's own place.
file(RELATIVE_PATH KLE_PC_PREFIX_FROM_PCDIR "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" KLE_PC_PREFIX_FROM_PCDIR "${KLE_PC_PREFIX_FROM_PCDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/kle.pc.in ${PROJECT_BINARY_DIR}/kle.pc @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/cmake/kle-rest.pc.in ${PROJECT_BINARY_DIR}/kle-rest.pc @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/cmake/kle-testing.pc.in ${PROJECT_BINARY_DIR}/kle-testing.pc
  @ONLY)
# kle-static: libkle.a by its path (-lkle would pick libkle.so), its
# dependencies as shared libraries (Debian ships no static libcurl stack).
configure_file(${PROJECT_SOURCE_DIR}/cmake/kle-static.pc.in ${PROJECT_BINARY_DIR}/kle-static.pc
  @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/kle.pc ${PROJECT_BINARY_DIR}/kle-rest.pc
  ${PROJECT_BINARY_DIR}/kle-testing.pc ${PROJECT_BINARY_DIR}/kle-static.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT dev)

# Documentation, examples and deployment files for the -dev package, laid
# out as in the source tree so that the documents' relative links resolve
# (scripts/check-links; ctest docs_links_installed).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
  COMPONENT dev FILES_MATCHING PATTERN "*.md" PATTERN man EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
  COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/deploy
  COMPONENT dev)

# Manual pages and shell completion, generated from the built programs.
include(${PROJECT_SOURCE_DIR}/cmake/KleUserDocs.cmake)

# API reference: `cmake --build <dir> --target apidoc`; any undocumented
# public item is an error.
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
  add_custom_target(apidoc
    COMMAND ${DOXYGEN_EXECUTABLE} ${PROJECT_BINARY_DIR}/Doxyfile
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    COMMENT "API reference in ${PROJECT_BINARY_DIR}/apidoc/html"
    VERBATIM)
endif()


# Debian packages (`cpack` in a build directory; lintian-clean, ctest
# packaging_lintian):
#   libkle1          libkle.so.1 (the runtime library)
#   libkle-testing1  libkle-testing.so.1 (the fake clock and fake lock)
#   libkle-dev       headers, static libraries, .so links, pkg-config and
#                    CMake files, docs, examples, deploy/
#   kle-tools        kle, kle-supervise, kle-apiserver, manual pages, completion
# Each package carries /usr/share/doc/<package>/copyright and changelog.gz
# (cmake/debian/), installed only by the package build (EXCLUDE_FROM_ALL:
# a component install, as cpack does, installs them; `cmake --install` not).
set(_kle_debian_gen ${PROJECT_BINARY_DIR}/debian)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libkle${KLE_SOVERSION})
set(CPACK_DEBIAN_TESTING_PACKAGE_NAME libkle-testing${KLE_SOVERSION})
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libkle-dev)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME kle-tools)
find_program(GZIP gzip)
add_custom_command(OUTPUT ${_kle_debian_gen}/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E copy ${PROJECT_SOURCE_DIR}/cmake/debian/changelog
          ${_kle_debian_gen}/changelog
  COMMAND ${GZIP} -9 -n -f ${_kle_debian_gen}/changelog
  DEPENDS ${PROJECT_SOURCE_DIR}/cmake/debian/changelog
  COMMENT "gzip cmake/debian/changelog"
  VERBATIM)
add_custom_target(kle_debian_changelog ALL DEPENDS ${_kle_debian_gen}/changelog.gz)
foreach(_c runtime testing dev tools)
  string(TOUPPER ${_c} _C)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/debian/copyright ${_kle_debian_gen}/changelog.gz
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${CPACK_DEBIAN_${_C}_PACKAGE_NAME}
    COMPONENT ${_c} EXCLUDE_FROM_ALL)
endforeach()

# The libraries' packages: a shlibs file (dpkg-shlibdeps of the packages
# that link them finds the package and the lowest version) and a trigger
# that runs ldconfig once dpkg is done, instead of the ldconfig calls in
# postinst and postrm that CPack writes for libraries under usr/lib
# (lintian: maintscript-calls-ldconfig): cmake/KleDebLibraries.cmake
# replaces them after the build.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_POST_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/KleDebLibraries.cmake)
set(CPACK_KLE_DEB_LIBRARY_PACKAGES libkle${KLE_SOVERSION} libkle-testing${KLE_SOVERSION})
# libkle-testing.so.1 needs libkle.so.1, of the other package: dpkg-shlibdeps
# finds it in the build tree (its Depends on libkle1 is set below).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libkle)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "libkle maintainers <maintainers@libkle.invalid>")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/libkle/libkle")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime testing dev tools)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Stripped programs and libraries (cmake --install --strip).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_TESTING_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_TESTING_PACKAGE_DEPENDS
  "libkle${KLE_SOVERSION} (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libkle${KLE_SOVERSION} (= ${PROJECT_VERSION}), libkle-testing${KLE_SOVERSION} (= ${PROJECT_VERSION}), libcurl4-openssl-dev, libjson-c-dev, libyaml-dev, libssl-dev")
set(CPACK_DEBIAN_TOOLS_PACKAGE_SUGGESTS "libkle-dev (= ${PROJECT_VERSION})")
set(_kle_desc_tail
  "libkle is Kubernetes leader election for C: client-go's leader election and\n"
  "resource locks (Lease, Endpoints, ConfigMap and the migration MultiLocks),\n"
  "with fencing tokens, a watch-driven follower, coordinated election and\n"
  "planned handovers.")
string(CONCAT _kle_desc_tail ${_kle_desc_tail})
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
  "Kubernetes leader election for C - shared library\n${_kle_desc_tail}\n\nThis package contains the shared library.")
set(CPACK_DEBIAN_TESTING_DESCRIPTION
  "Kubernetes leader election for C - test doubles\n${_kle_desc_tail}\n\nThis package contains libkle-testing, the fake clock and fake lock that\nlet programs test their leader-election code without a cluster or real\ntime.")
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "Kubernetes leader election for C - development files\n${_kle_desc_tail}\n\nThis package contains the headers, the static libraries, the pkg-config\nand CMake files, the documentation and the examples.")
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
  "leader election for any program, and a local Kubernetes API server\n${_kle_desc_tail}\n\nThis package contains kle, which runs any command only while its replica\nleads (kle run), shows a lock (kle status) and hands a lease over (kle\ntransfer), and kle-apiserver, a local Kubernetes API server for tests and\ndemos.")
# Relative to the directory cpack runs in: build/*/packages.
set(CPACK_OUTPUT_FILE_PREFIX packages)
include(CPack)
