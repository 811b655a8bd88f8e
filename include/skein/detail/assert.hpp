#pragma once
// SKEIN_ASSERT(cond, "invariant"): checks an invariant that the code's comments
// state. On in Debug builds (no NDEBUG) and wherever SKEIN_ENABLE_ASSERTS is
// defined (the test suite defines it in every configuration); off otherwise,
// and always with SKEIN_DISABLE_ASSERTS. A failure prints the invariant, the
// condition and the place, and aborts: the runtime's own state is broken, so
// nothing after it could be trusted (it is never a user error: those throw,
// see docs/api/errors.md).

#include <cstdio>
#include <cstdlib>

#if defined(SKEIN_DISABLE_ASSERTS)
#define SKEIN_ASSERTS_ON 0
#elif defined(SKEIN_ENABLE_ASSERTS) || !defined(NDEBUG)
#define SKEIN_ASSERTS_ON 1
#else
#define SKEIN_ASSERTS_ON 0
#endif

namespace skein::detail {

[[noreturn]] inline void assert_failed(const char* what, const char* cond, const char* file, int line) noexcept {
  std::fprintf(stderr, "skein: internal invariant violated: %s (%s) at %s:%d\n", what, cond, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace skein::detail

#if SKEIN_ASSERTS_ON
#define SKEIN_ASSERT(cond, what) \
  ((cond) ? static_cast<void>(0) : ::skein::detail::assert_failed(what, #cond, __FILE__, __LINE__))
#else
#define SKEIN_ASSERT(cond, what) static_cast<void>(0)
#endif
