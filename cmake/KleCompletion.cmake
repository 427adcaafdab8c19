# Writes `kle completion <SHELL>` to OUTPUT; fails when kle fails or prints
# nothing:  cmake -DPROGRAM=<kle> -DSHELL=bash -DOUTPUT=<file> -P KleCompletion.cmake
execute_process(COMMAND "${PROGRAM}" completion "${SHELL}"
  OUTPUT_FILE "${OUTPUT}.tmp" RESULT_VARIABLE _rc ERROR_VARIABLE _err)
file(SIZE "${OUTPUT}.tmp" _size)
if(NOT _rc EQUAL 0 OR _size EQUAL 0)
  file(REMOVE "${OUTPUT}.tmp")
  message(FATAL_ERROR "kle completion ${SHELL} failed (${_rc}): ${_err}")
endif()
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
