# Every header of include/skein (public, script/ and detail) compiles on its
# own, as the first and only include of a translation unit, and no detail
# header includes a public one (detail/ is below the public layer). (cmake -P)
#   -DCXX=<compiler> -DINCLUDE=<skein include dir> -DWORK=<scratch dir> [-DSTDLIB=-stdlib=libc++]
file(MAKE_DIRECTORY ${WORK})
file(GLOB public RELATIVE ${INCLUDE} ${INCLUDE}/skein/*.hpp)
file(GLOB script RELATIVE ${INCLUDE} ${INCLUDE}/skein/script/*.hpp)  # the parts of <skein/script.hpp>
file(GLOB detail RELATIVE ${INCLUDE} ${INCLUDE}/skein/detail/*.hpp)
set(failed "")
# <skein/asio.hpp> needs Asio (optional): checked where Asio is installed.
file(WRITE ${WORK}/has_asio.cpp "#include <asio.hpp>\n")
execute_process(COMMAND ${CXX} ${STDLIB} -std=c++20 -fsyntax-only ${WORK}/has_asio.cpp RESULT_VARIABLE no_asio OUTPUT_QUIET ERROR_QUIET)
if(NOT no_asio EQUAL 0)
  list(REMOVE_ITEM public skein/asio.hpp)
  message(STATUS "Asio not found: skein/asio.hpp not checked")
endif()
foreach(h ${public} ${script} ${detail})
  string(MAKE_C_IDENTIFIER "${h}" id)
  file(WRITE ${WORK}/${id}.cpp "#include <${h}>\n")
  execute_process(COMMAND ${CXX} ${STDLIB} -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror
                          -I ${INCLUDE} ${WORK}/${id}.cpp
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(APPEND failed "${h} does not compile on its own:\n${out}${err}\n")
  endif()
endforeach()
foreach(h ${detail})
  file(STRINGS ${INCLUDE}/${h} up REGEX "^#[ \t]*include[ \t]+\"\\.\\./")
  if(up)
    string(APPEND failed "${h} includes a public header: ${up}\n")
  endif()
endforeach()
list(LENGTH public np)
list(LENGTH script ns)
list(LENGTH detail nd)
if(failed)
  message(FATAL_ERROR "${failed}")
endif()
message(STATUS "${np} public, ${ns} script/ and ${nd} detail headers compile on their own; detail/ includes no public header")
