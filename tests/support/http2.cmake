# kle_add_http2_run(<test> [ENVIRONMENT <k=v...>])
# Registers <test> (a test program added with kle_add_test)
# a second time as <test>_http2, with KLE_TEST_HTTP=2: the harness then puts
# an HTTP/2 TLS front (nghttpx, tests/support/h2front.h) before every
# kle-apiserver it starts, so the same test runs once over HTTP/1.1 and
# once over HTTP/2.
function(kle_add_http2_run test)
  cmake_parse_arguments(H "" "" "ENVIRONMENT" ${ARGN})
  get_test_property(${test} LABELS labels)
  get_test_property(${test} TIMEOUT timeout)
  get_test_property(${test} ENVIRONMENT env)
  add_test(NAME ${test}_http2 COMMAND ${test})
  if(NOT env)
    set(env "")
  endif()
  set_tests_properties(${test}_http2 PROPERTIES LABELS "${labels};http2" TIMEOUT ${timeout}
    ENVIRONMENT "${env};KLE_TEST_HTTP=2;${H_ENVIRONMENT}")
  kle_test_cost(${test}_http2)
endfunction()
