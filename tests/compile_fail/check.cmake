# Compiles one file of tests/compile_fail (cmake -P). The file must compile
# with -DSKEIN_CONTROL (so the failure below is the one we mean) and be
# rejected without it, with an error line matching its first line, `// expect: REGEX`.
#   -DCXX=<compiler> -DSOURCE=<file> -DINCLUDE=<skein include dir>
file(STRINGS ${SOURCE} first LIMIT_COUNT 1)
if(NOT first MATCHES "^// expect: (.+)$")
  message(FATAL_ERROR "${SOURCE}: the first line must be `// expect: REGEX`")
endif()
set(expect "${CMAKE_MATCH_1}")
set(cmd ${CXX} -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -I ${INCLUDE} ${SOURCE})

execute_process(COMMAND ${cmd} -DSKEIN_CONTROL RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the control version of ${SOURCE} (-DSKEIN_CONTROL) must compile, but:\n${out}${err}")
endif()

execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
string(REGEX MATCHALL "[^\n]*error:[^\n]*" errors "${out}${err}")
set(found "")
foreach(line IN LISTS errors)
  if(line MATCHES "${expect}")
    set(found "${line}")
    break()
  endif()
endforeach()
if(NOT found)
  message(FATAL_ERROR "${SOURCE} was rejected, but no error line matches /${expect}/:\n${out}${err}")
endif()
message(STATUS "rejected as expected: ${found}")
