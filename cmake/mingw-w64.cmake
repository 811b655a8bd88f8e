# Cross-building for Windows with Debian's MinGW-w64 (g++-mingw-w64-x86-64-posix)
# and running the tests under Wine (wine64):
#   cmake -S . -B build-mingw -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake
#   cmake --build build-mingw && ctest --test-dir build-mingw
# (tools/test --matrix does this in its "mingw" configuration.) The executables
# are linked statically, so Wine needs no MinGW DLLs; ctest runs each one
# through CMAKE_CROSSCOMPILING_EMULATOR. doctest is header-only: its Debian
# copy is reached through a directory holding only it, so the host's other
# headers never shadow MinGW's.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# A translation unit with many coroutines (the tests' unity batches) has more
# than the 32,767 sections a plain COFF object may hold. At -O0 nearly every
# inline function is a section of its own, and binutils 2.40's PE linker
# takes time quadratic in an object's sections: tools/test builds with -O1,
# where the test suite links in seconds instead of minutes.
set(CMAKE_CXX_FLAGS_INIT "-Wa,-mbig-obj")
find_program(SKEIN_WINE NAMES wine64 wine PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
if(SKEIN_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SKEIN_WINE})
endif()
if(EXISTS /usr/include/doctest/doctest.h AND NOT SKEIN_DOCTEST_INCLUDE)
  set(_skein_doctest_dir ${CMAKE_BINARY_DIR}/mingw-doctest)
  file(MAKE_DIRECTORY ${_skein_doctest_dir})
  if(NOT EXISTS ${_skein_doctest_dir}/doctest)
    file(CREATE_LINK /usr/include/doctest ${_skein_doctest_dir}/doctest SYMBOLIC)
  endif()
  set(SKEIN_DOCTEST_INCLUDE ${_skein_doctest_dir} CACHE PATH "doctest's include directory")
endif()
