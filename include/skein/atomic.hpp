#pragma once
/// Atomic<T>: a lock-free integer with the scripting APIs' names (threads.Atomic, thread.atomic).

#include "detail/config.hpp"  // first: the C++20 check

#include <atomic>
#include <concepts>
#include <cstdint>
#include <type_traits>

namespace skein {

template <std::integral T = std::int64_t>
class Atomic {
  static_assert(std::atomic<T>::is_always_lock_free, "skein::Atomic<T> must be lock-free for T");

public:
  Atomic(T initial = 0) noexcept : v_(initial) {}
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  /// Adds `delta` and returns the new value.
  T add(T delta = 1) noexcept {
    // Wraps around like the atomic itself (no signed-overflow UB in the sum).
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(v_.fetch_add(delta, std::memory_order_acq_rel)) + static_cast<U>(delta));
  }
  T get() const noexcept { return v_.load(std::memory_order_acquire); }
  void set(T v) noexcept { v_.store(v, std::memory_order_release); }
  T load() const noexcept { return get(); }
  void store(T v) noexcept { set(v); }
  /// Sets `desired` if the value is `expected`; returns whether it did.
  bool cas(T expected, T desired) noexcept {
    return v_.compare_exchange_strong(expected, desired, std::memory_order_acq_rel, std::memory_order_acquire);
  }
  /// Sets `v` and returns the previous value.
  T exchange(T v) noexcept { return v_.exchange(v, std::memory_order_acq_rel); }

private:
  std::atomic<T> v_;
};

}  // namespace skein
