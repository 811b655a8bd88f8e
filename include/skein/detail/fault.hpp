#pragma once
// Fault injection (the stress mode of the reliability harness): with
// SKEIN_FAULT_INJECTION defined to 1, every SKEIN_FAULT_POINT() — placed at
// the scheduler's and the primitives' interleaving points, where another
// thread's step in between is legal but rare — may yield the thread or stall
// it for tens of microseconds, drawn from a seeded per-thread generator
// (SKEIN_FAULT_SEED, default 1; SKEIN_FAULT_RATE, points per 1024 that yield,
// default 24; one in 16 of those sleeps). This widens the race windows that
// stress tests otherwise hit once in millions of runs. Without the macro the
// points compile to nothing.

#if defined(SKEIN_FAULT_INJECTION) && SKEIN_FAULT_INJECTION

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <thread>

namespace skein::detail::fault {

struct Settings {
  std::uint64_t seed = 1;
  std::uint32_t rate = 24;  // per 1024 points
};

inline const Settings& settings() noexcept {
  static const Settings s = [] {
    Settings r;
    if (const char* e = std::getenv("SKEIN_FAULT_SEED")) r.seed = std::strtoull(e, nullptr, 0);
    if (const char* e = std::getenv("SKEIN_FAULT_RATE"))
      r.rate = static_cast<std::uint32_t>(std::strtoul(e, nullptr, 0));
    return r;
  }();
  return s;
}

/// Points passed, yields and sleeps injected, process-wide (for the figures).
struct Counters {
  std::atomic<std::uint64_t> points{0}, yields{0}, sleeps{0};
};
inline Counters& counters() noexcept {
  static Counters c;
  return c;
}

inline void point() noexcept {
  static std::atomic<std::uint64_t> threads{0};
  thread_local std::uint64_t x = [] {
    // splitmix64 of (seed, thread number): distinct, reproducible streams.
    std::uint64_t z = settings().seed + 0x9e3779b97f4a7c15ull * (threads.fetch_add(1, std::memory_order_relaxed) + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (z ^ (z >> 31)) | 1;
  }();
  x ^= x << 13;  // xorshift64
  x ^= x >> 7;
  x ^= x << 17;
  auto& c = counters();
  c.points.fetch_add(1, std::memory_order_relaxed);
  if ((x & 1023) >= settings().rate) return;
  if (((x >> 10) & 15) == 0) {
    c.sleeps.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::microseconds(10 + ((x >> 14) & 63)));
  } else {
    c.yields.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::yield();
  }
}

}  // namespace skein::detail::fault

#define SKEIN_FAULT_POINT() ::skein::detail::fault::point()
#else
#define SKEIN_FAULT_POINT() ((void)0)
#endif
