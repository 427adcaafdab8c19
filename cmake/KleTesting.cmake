# kle_test_cost(<name>): the scheduling hints of tests/CMakeLists.txt
# (KLE_TEST_COSTS name:seconds, KLE_TEST_TWO_SLOTS) on one test.
function(kle_test_cost name)
  foreach(entry IN LISTS KLE_TEST_COSTS)
    if(entry MATCHES "^${name}:([0-9]+)$")
      set_tests_properties(${name} PROPERTIES COST ${CMAKE_MATCH_1})
    endif()
  endforeach()
  if(name IN_LIST KLE_TEST_TWO_SLOTS AND NOT KLE_VALGRIND)
    set_tests_properties(${name} PROPERTIES PROCESSORS 2)
  endif()
endfunction()

# kle_add_test(NAME <name> SOURCES <files...> LABELS <unit|integration|e2e>
#              [LIBS <libs...>] [TIMEOUT <seconds>] [ENVIRONMENT <k=v...>])
# Builds a CMocka test program and registers it with CTest.
function(kle_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LABELS;LIBS;ENVIRONMENT" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src
                                                ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${T_NAME} PRIVATE kle_test_support kle kle_testing PkgConfig::CMOCKA
                                           ${T_LIBS})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(KLE_VALGRIND)
    # Every test program runs under valgrind; any error or definite leak fails it.
    set_property(TARGET ${T_NAME} PROPERTY CROSSCOMPILING_EMULATOR
      valgrind --quiet --error-exitcode=99 --leak-check=full
               --errors-for-leak-kinds=definite,indirect)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(KLE_VALGRIND)
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 10")
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  kle_test_cost(${T_NAME})
  if(KLE_VALGRIND)
    # Tests may shorten what valgrind's slowdown makes too long for CI.
    list(APPEND T_ENVIRONMENT "KLE_UNDER_VALGRIND=1")
  endif()
  if(T_ENVIRONMENT)
    set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${T_ENVIRONMENT}")
  endif()
endfunction()

# kle_add_script_test(NAME <name> COMMAND <cmd...> LABELS <...> [TIMEOUT <s>])
# Registers a shell-driven test; it gets KLE_BUILD_DIR and KLE_SOURCE_DIR.
function(kle_add_script_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;LABELS;ENVIRONMENT" ${ARGN})
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "KLE_BUILD_DIR=${PROJECT_BINARY_DIR};KLE_SOURCE_DIR=${PROJECT_SOURCE_DIR};${T_ENVIRONMENT}")
  kle_test_cost(${T_NAME})
endfunction()
