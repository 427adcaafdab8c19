# The installable library, its pkg-config file and CMake package, the API
# reference, and the Debian packages.

include(CMakePackageConfigHelpers)

# libkle.so.MAJOR -> libkle.so.MAJOR.MINOR.PATCH, and libkle.a, from the same objects.
get_target_property(_kle_link_libraries kle LINK_LIBRARIES)
add_library(kle_shared SHARED $<TARGET_OBJECTS:kle>)
add_library(kle_static STATIC $<TARGET_OBJECTS:kle>)
foreach(_t kle_shared kle_static)
  target_include_directories(${_t} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${_t} PRIVATE ${_kle_link_libraries})
  # No core header exposes a json-c type; kle/rest.h does (kle::rest).
  target_link_libraries(${_t} PUBLIC Threads::Threads)
endforeach()
# libkle-testing.so / .a: the fake clock and fake lock (kle::testing).
add_library(kle_testing_shared SHARED $<TARGET_OBJECTS:kle_testing>)
add_library(kle_testing_static STATIC $<TARGET_OBJECTS:kle_testing>)
target_link_libraries(kle_testing_shared PUBLIC kle_shared)
target_link_libraries(kle_testing_static PUBLIC kle_static)
set_target_properties(kle_testing_shared PROPERTIES
  OUTPUT_NAME kle-testing EXPORT_NAME testing
  VERSION ${PROJECT_VERSION} SOVERSION ${KLE_SOVERSION} C_VISIBILITY_PRESET hidden)
set_target_properties(kle_testing_static PROPERTIES
  OUTPUT_NAME kle-testing EXPORT_NAME testing_static)
# kle::rest: libkle plus json-c, for programs that include kle/rest.h.
add_library(kle_rest INTERFACE)
target_link_libraries(kle_rest INTERFACE kle_shared PkgConfig::JSONC)
set_target_properties(kle_rest PROPERTIES EXPORT_NAME rest)
set_target_properties(kle_shared PROPERTIES
  OUTPUT_NAME kle EXPORT_NAME kle
  VERSION ${PROJECT_VERSION} SOVERSION ${KLE_SOVERSION}
  C_VISIBILITY_PRESET hidden)
set_target_properties(kle_static PROPERTIES OUTPUT_NAME kle EXPORT_NAME kle_static)

install(TARGETS kle_shared kle_static kle_rest kle_testing_shared kle_testing_static
  EXPORT kleTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
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
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kleConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
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
  COMPONENT dev FILES_MATCHING PATTERN "*.md")
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
  COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/deploy
  COMPONENT dev)
if(EXISTS ${PROJECT_SOURCE_DIR}/docs/man)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/man/ DESTINATION ${CMAKE_INSTALL_MANDIR}
    COMPONENT tools)
endif()

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

# Debian packages: libkle1 (the shared libraries), libkle-dev (headers, static
# library, pkg-config and CMake files, docs), kle-tools (kle, kle-apiserver).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libkle)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "libkle maintainers <maintainers@libkle.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Kubernetes leader election for C")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev tools)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libkle${KLE_SOVERSION})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libkle-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libkle${KLE_SOVERSION} (= ${PROJECT_VERSION}), libcurl4-openssl-dev, libjson-c-dev, libyaml-dev, libssl-dev")
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME kle-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION admin)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "Kubernetes leader election for C: shared library")
set(CPACK_COMPONENT_DEV_DESCRIPTION "Kubernetes leader election for C: development files")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "kle (leader election for any program) and kle-apiserver")
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_BINARY_DIR}/packages)
include(CPack)
