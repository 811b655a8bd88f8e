#pragma once
// Parker: the state word a blocked thread sleeps on. A notifier moves it to
// `notified`; a stop callback or the waiter's own deadline may first move it to
// `interrupted`, after which the waiter decides who won (see block_wait in
// waiter.hpp). On Linux the word is a futex: one syscall to park, one to wake,
// no mutex; elsewhere a mutex and a condition variable.

#include <atomic>
#include <chrono>
#include <cstdint>

#if defined(__linux__)
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <condition_variable>
#include <mutex>
#endif

#include "spin.hpp"

namespace skein::detail {

using Clock = std::chrono::steady_clock;

class Parker {
public:
  static constexpr std::uint32_t kWaiting = 0, kNotified = 1, kInterrupted = 2;

  /// Moves to `notified` from any state and wakes the thread.
  void notify() noexcept {
    // release: the waiter's acquire load sees what the notifier wrote before.
    word_.store(kNotified, std::memory_order_release);
    wake();
  }
  /// Moves `waiting` to `interrupted` and wakes the thread; false if already notified.
  bool interrupt() noexcept {
    std::uint32_t w = kWaiting;
    if (!word_.compare_exchange_strong(w, kInterrupted, std::memory_order_acq_rel)) return false;
    wake();
    return true;
  }
  [[nodiscard]] std::uint32_t state() const noexcept { return word_.load(std::memory_order_acquire); }

  /// Spins up to `spins` pauses while the state is `from`; returns the state.
  std::uint32_t spin_while(std::uint32_t from, int spins) const noexcept {
    for (int i = 0; i < spins; ++i) {
      auto s = state();
      if (s != from) return s;
      cpu_relax();
    }
    return state();
  }

  /// Blocks while the state is `from`, until `deadline` if given. Returns the state.
  std::uint32_t wait_while(std::uint32_t from, const Clock::time_point* deadline = nullptr) noexcept {
#if defined(__linux__)
    for (;;) {
      auto s = state();
      if (s != from) return s;
      timespec ts{};
      timespec* tsp = nullptr;
      if (deadline) {
        auto left = *deadline - Clock::now();
        if (left <= Clock::duration::zero()) return state();
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        ts.tv_sec = static_cast<time_t>(ns / 1000000000);
        ts.tv_nsec = static_cast<long>(ns % 1000000000);
        tsp = &ts;
      }
      // FUTEX_WAIT returns at once if the word no longer equals `from`, so a
      // change between the load above and the syscall is not lost.
      syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word_), FUTEX_WAIT_PRIVATE, from, tsp, nullptr, 0);
    }
#else
    std::unique_lock lk(mu_);
    auto pred = [&] { return state() != from; };
    if (!deadline)
      cv_.wait(lk, pred);
    else
      cv_.wait_until(lk, *deadline, pred);
    return state();
#endif
  }

private:
  void wake() noexcept {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
#else
    { std::lock_guard lk(mu_); }
    cv_.notify_one();
#endif
  }

  std::atomic<std::uint32_t> word_{kWaiting};
#if !defined(__linux__)
  std::mutex mu_;
  std::condition_variable cv_;
#endif
};

}  // namespace skein::detail
