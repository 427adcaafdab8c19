# Manual pages and shell completion, generated at build time from the built
# programs themselves, so that they never drift from what the programs do:
# - kle(1), kle-run(1), kle-status(1), kle-transfer(1), kle-apiserver(1):
#   help2man on each --help and --version output, plus the sections --help
#   does not have (docs/man/*.h2m); installed in share/man/man1.
# - bash and zsh completion: `kle completion bash|zsh`, whose flag lists
#   come from the option table the parser uses (src/cli/completion.c).
# Both go to the tools package with the programs. Off with
# -DKLE_MAN_PAGES=OFF (then help2man is not needed).

include(CMakeDependentOption)
cmake_dependent_option(KLE_MAN_PAGES
  "Generate the programs' manual pages with help2man (Debian: help2man)" ON "KLE_BUILD_TOOLS" OFF)

set(_kle_gen ${PROJECT_BINARY_DIR}/userdocs)
set(_kle_userdocs)

if(KLE_MAN_PAGES)
  find_program(HELP2MAN help2man)
  find_program(GZIP gzip)
  if(NOT HELP2MAN OR NOT GZIP)
    message(FATAL_ERROR "the manual pages need help2man and gzip (Debian: help2man); "
      "or configure with -DKLE_MAN_PAGES=OFF")
  endif()
  # page:target:subcommand
  set(_kle_page_specs kle:kle_cli: kle-run:kle_cli:run kle-status:kle_cli:status
    kle-transfer:kle_cli:transfer kle-apiserver:kle-apiserver:)
  foreach(_spec IN LISTS _kle_page_specs)
    string(REPLACE ":" ";" _spec "${_spec}")
    list(GET _spec 0 _page)
    list(GET _spec 1 _target)
    list(GET _spec 2 _sub)
    if(NOT TARGET ${_target})
      continue()
    endif()
    set(_out ${_kle_gen}/man1/${_page}.1.gz)
    set(_inc ${PROJECT_SOURCE_DIR}/docs/man/${_page}.h2m)
    add_custom_command(OUTPUT ${_out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${_kle_gen}/man1
      COMMAND ${CMAKE_COMMAND} -DHELP2MAN=${HELP2MAN} -DGZIP=${GZIP}
              -DPROGRAM=$<TARGET_FILE:${_target}> -DSUBCOMMAND=${_sub} -DINCLUDE=${_inc}
              -DOUTPUT=${_out} -P ${PROJECT_SOURCE_DIR}/cmake/KleManPage.cmake
      DEPENDS ${_target} ${_inc} ${PROJECT_SOURCE_DIR}/cmake/KleManPage.cmake
      COMMENT "help2man ${_page}.1"
      VERBATIM)
    list(APPEND _kle_userdocs ${_out})
    install(FILES ${_out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT tools)
  endforeach()
endif()

if(TARGET kle_cli)
  set(_bash ${_kle_gen}/completion/kle)
  set(_zsh ${_kle_gen}/completion/_kle)
  add_custom_command(OUTPUT ${_bash} ${_zsh}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_kle_gen}/completion
    COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:kle_cli> -DSHELL=bash -DOUTPUT=${_bash}
            -P ${PROJECT_SOURCE_DIR}/cmake/KleCompletion.cmake
    COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:kle_cli> -DSHELL=zsh -DOUTPUT=${_zsh}
            -P ${PROJECT_SOURCE_DIR}/cmake/KleCompletion.cmake
    DEPENDS kle_cli ${PROJECT_SOURCE_DIR}/cmake/KleCompletion.cmake
    COMMENT "kle completion bash, zsh"
    VERBATIM)
  list(APPEND _kle_userdocs ${_bash} ${_zsh})
  install(FILES ${_bash} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
    COMPONENT tools)
  install(FILES ${_zsh} DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions
    COMPONENT tools)
endif()

if(_kle_userdocs)
  add_custom_target(kle_userdocs ALL DEPENDS ${_kle_userdocs})
endif()
