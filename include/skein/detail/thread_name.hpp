#pragma once
// Names skein's own threads (pool workers, the timer thread, I/O threads) so
// that debuggers, top -H, perf and crash dumps show what they are. Best
// effort: a system without a way to do it keeps the default name.

#if defined(__linux__) || defined(__APPLE__)
#include <pthread.h>
#endif
#include "win32.hpp"  // GetCurrentThread, SetThreadDescription (Windows)

namespace skein::detail {

/// Names the calling thread `name` (ASCII, at most 15 characters: Linux's limit).
inline void name_this_thread(const char* name) noexcept {
#if defined(__linux__)
  (void)pthread_setname_np(pthread_self(), name);
#elif defined(__APPLE__)
  (void)pthread_setname_np(name);
#elif defined(_WIN32)
  wchar_t wide[16];
  int i = 0;
  for (; name[i] && i < 15; ++i) wide[i] = static_cast<wchar_t>(name[i]);
  wide[i] = L'\0';
  (void)SetThreadDescription(GetCurrentThread(), wide);
#else
  (void)name;
#endif
}

}  // namespace skein::detail
