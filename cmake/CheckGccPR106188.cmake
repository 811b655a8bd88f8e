# skein_check_gcc_pr106188(): on g++ before 13, compiles and runs a small
# reproducer of GCC bug 106188 (a coroutine with a co_await in an if/while/
# for/switch condition and no variable at its outermost scope gets a wrong
# frame layout and crashes) and, if it crashes, warns at configure time with
# the workaround. Once per build tree (cached); never an error. Used by
# skein's CMakeLists.txt and by the installed skeinConfig.cmake.
set(_SKEIN_PR106188_SOURCE ${CMAKE_CURRENT_LIST_DIR}/gcc_pr106188.cpp)

function(skein_check_gcc_pr106188)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU" OR CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 13)
    return()
  endif()
  if(DEFINED SKEIN_GCC_PR106188_CHECKED)
    return()
  endif()
  if(CMAKE_CROSSCOMPILING AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
    set(affected "assumed (cross-compiling: the reproducer cannot run)")
  else()
    try_run(run_result compile_result ${CMAKE_BINARY_DIR}/skein_pr106188 ${_SKEIN_PR106188_SOURCE}
            CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON COMPILE_OUTPUT_VARIABLE compile_output)
    if(NOT compile_result)
      set(SKEIN_GCC_PR106188_CHECKED "not compiled" CACHE INTERNAL "")
      return()  # no C++20 coroutines here: skein's own check reports that
    endif()
    if(run_result EQUAL 0)
      set(SKEIN_GCC_PR106188_CHECKED "not affected" CACHE INTERNAL "")
      return()
    endif()
    set(affected "the reproducer crashed")
  endif()
  set(SKEIN_GCC_PR106188_CHECKED "affected" CACHE INTERNAL "")
  message(WARNING
    "skein: g++ ${CMAKE_CXX_COMPILER_VERSION} has GCC bug 106188 (${affected}). A coroutine that puts "
    "co_await in the condition of an if/while/for/switch, as in `if (co_await f())`, and declares no "
    "variable at its outermost scope is laid out wrongly and crashes with no diagnostic. Workaround: "
    "await into a variable first (`bool ok = co_await f(); if (ok)`), or declare any variable at the "
    "coroutine's outermost scope; g++ 13 and clang are not affected.")
endfunction()
