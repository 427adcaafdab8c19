# One manual page from a program's --help and --version output, by help2man:
#   cmake -DHELP2MAN=... -DGZIP=... -DPROGRAM=<path> [-DSUBCOMMAND=run]
#         -DINCLUDE=<docs/man/x.h2m> -DOUTPUT=<x.1.gz> -P KleManPage.cmake
# The page is compressed with gzip -9n (no name, no time stamp), as Debian
# wants manual pages. SOURCE_DATE_EPOCH, when set, dates the page.
foreach(v HELP2MAN GZIP PROGRAM INCLUDE OUTPUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "KleManPage.cmake: ${v} is not set")
  endif()
endforeach()
# help2man runs "<program> <option>" through the shell: run it as
# ./<name> from its directory, so that a build path with spaces works.
get_filename_component(_dir "${PROGRAM}" DIRECTORY)
get_filename_component(_name "${PROGRAM}" NAME)
set(_help "--help")
if(SUBCOMMAND)
  set(_help "${SUBCOMMAND} --help")
endif()
set(_page "${OUTPUT}.tmp")
execute_process(
  COMMAND "${HELP2MAN}" --no-info --include "${INCLUDE}"
          "--help-option=${_help}" --version-option=--version --section 1
          --output "${_page}" "./${_name}"
  WORKING_DIRECTORY "${_dir}"
  RESULT_VARIABLE _rc ERROR_VARIABLE _err)
if(NOT _rc EQUAL 0 OR _err)
  file(REMOVE "${_page}")
  message(FATAL_ERROR "help2man failed on ${_name} ${_help}: ${_err}")
endif()
execute_process(COMMAND "${GZIP}" -9 -n -c "${_page}" OUTPUT_FILE "${OUTPUT}"
  RESULT_VARIABLE _rc)
file(REMOVE "${_page}")
if(NOT _rc EQUAL 0)
  file(REMOVE "${OUTPUT}")
  message(FATAL_ERROR "gzip failed on ${OUTPUT}")
endif()
