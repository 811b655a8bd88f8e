#pragma once
// Included first by every public header: without C++20 and its coroutines
// the first error a user sees is this one, not a thousand lines about
// std::coroutine_handle. (g++ 12 defaults to -std=gnu++17, clang 14 to gnu++14.)

#if defined(_MSVC_LANG)
#define SKEIN_CPLUSPLUS _MSVC_LANG
#else
#define SKEIN_CPLUSPLUS __cplusplus
#endif

#if SKEIN_CPLUSPLUS < 202002L
#error "skein needs C++20 (-std=c++20)"
#elif !defined(__cpp_impl_coroutine)
#error "skein needs C++20 coroutines (-std=c++20; with g++ 10, also -fcoroutines)"
#endif

// libstdc++ before GCC 13 without a futex (MinGW-w64) can lose the wake-up of
// a std::binary_semaphore, on which ~std::stop_callback waits for its
// callback running on another thread: skein's blocked waits and child
// contexts can then hang for good. POSIX semaphores do not have the race.
// skein's CMake target defines this for every TU (it must be the same in all).
#include <version>
#if defined(__MINGW32__) && defined(__GLIBCXX__) && _GLIBCXX_RELEASE < 13 && !_GLIBCXX_USE_POSIX_SEMAPHORE
#warning "skein: define _GLIBCXX_USE_POSIX_SEMAPHORE=1 in every TU with this libstdc++ (see detail/config.hpp)"
#endif
