#pragma once
/// Mutex: for threads (lock/unlock/try_lock, BasicLockable) and for
/// coroutines (`auto guard = co_await m.async_lock();`), with FIFO hand-off.

#include "detail/config.hpp"  // first: the C++20 check

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "detail/spin.hpp"
#include "detail/wait_operation.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"
#include "detail/tuning.hpp"

namespace skein {

/// A mutual-exclusion lock that blocking threads and coroutines share.
/// Uncontended lock/unlock is one CAS each. Under contention waiters queue in
/// FIFO order and unlock hands the lock straight to the first of them, so a
/// thread that keeps re-taking the lock cannot starve a waiter. Blocking waits
/// hand their pool thread off and throw Cancelled when the task is cancelled.
/// Ownership is not tracked (as in Go): any thread may unlock; unlocking an
/// unlocked Mutex is a UsageError. Because unlock hands the lock to the first
/// waiter, a task that polls `while (!m.try_lock()) yield();` on a small pool
/// can keep the waiter it was handed to from running: wait with lock() or
/// async_lock() instead.
class Mutex {
public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  [[nodiscard]] bool try_lock() noexcept {
    std::uint32_t e = kUnlocked;
    // acquire: the previous holder's writes are visible to us.
    return state_.compare_exchange_strong(e, kLocked, std::memory_order_acquire, std::memory_order_relaxed);
  }

  void lock() {
    if (spin_lock()) return;
    detail::block_on(*this, nullptr);
  }

  /// Locks unless `d` passes first; returns whether it locked.
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    if (spin_lock()) return true;
    auto deadline = detail::deadline_after(d);
    return detail::block_on(*this, &deadline);
  }

  void unlock() {
    for (;;) {
      std::uint32_t e = kLocked;
      // release: our critical section is visible to the next holder. When
      // this CAS frees the lock it is our last touch of *this, so whoever
      // takes the lock next may destroy the Mutex at once.
      if (state_.compare_exchange_strong(e, kUnlocked, std::memory_order_release, std::memory_order_relaxed)) return;
      if (e == kUnlocked) throw UsageError("unlock of an unlocked Mutex");
      detail::Waiter* next;
      {
        std::lock_guard lk(lk_);
        next = waiters_.pop_front();
        if (next && waiters_.empty()) state_.store(kLocked, std::memory_order_relaxed);
      }
      // The lock passes to `next` without ever being free; nobody else can
      // take (or destroy) it before `next` runs.
      if (next) return next->notify();
      // The waiters withdrew meanwhile (the last one set the state back to
      // kLocked): free the lock with the CAS above.
    }
  }

private:
  struct LockPolicy : detail::NoWaitPayload {
    static bool try_now(Mutex& m) noexcept { return m.try_lock(); }
    static std::unique_lock<Mutex> result(Mutex& m) noexcept { return std::unique_lock<Mutex>(m, std::adopt_lock); }
  };

public:
  using LockOperation = detail::OwnerWait<Mutex, LockPolicy>;

  /// `auto guard = co_await m.async_lock();` — a std::unique_lock that unlocks
  /// when it goes out of scope. Throws Cancelled if the task is cancelled first.
  LockOperation async_lock() noexcept { return LockOperation(*this); }

  /// True if locked now (a snapshot, for tests and diagnostics).
  [[nodiscard]] bool locked() const noexcept { return state_.load(std::memory_order_relaxed) != kUnlocked; }

private:
  friend struct detail::OwnerAccess;
  static constexpr const char* kWaitKind = "Mutex::lock";  // for the thread dump
  static constexpr std::uint32_t kUnlocked = 0, kLocked = 1, kContended = 2;

  bool spin_lock() noexcept {
    // Critical sections are usually short: a brief spin beats a park + wake.
    for (int i = 0; i < detail::tuning::kMutexSpins; ++i) {
      if (state_.load(std::memory_order_relaxed) == kUnlocked && try_lock()) return true;
      detail::cpu_relax();
    }
    return false;
  }

  /// Links `w`, or takes the lock at once; false if taken.
  bool wait_enqueue(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (s == kUnlocked) {
        if (state_.compare_exchange_weak(s, kLocked, std::memory_order_acquire, std::memory_order_relaxed))
          return false;
      } else if (s == kLocked) {
        if (state_.compare_exchange_weak(s, kContended, std::memory_order_relaxed)) break;
      } else {
        break;
      }
    }
    waiters_.push_back(&w);
    return true;
  }
  bool wait_withdraw(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    if (!waiters_.remove(&w)) return false;
    if (waiters_.empty()) {
      std::uint32_t c = kContended;
      state_.compare_exchange_strong(c, kLocked, std::memory_order_relaxed);
    }
    return true;
  }
  std::atomic<std::uint32_t> state_{kUnlocked};
  detail::SpinLock lk_;
  detail::WaiterList waiters_;
};

}  // namespace skein
