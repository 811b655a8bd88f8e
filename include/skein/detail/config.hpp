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
