#pragma once
/// Semaphore: bounded concurrency for threads and coroutines, FIFO, with a
/// checked bound (releasing more permits than were acquired is a UsageError);
/// Permit, a held permit released when it goes out of scope.

#include "detail/config.hpp"  // first: the C++20 check

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "detail/packed_count.hpp"
#include "detail/spin.hpp"
#include "detail/wait_operation.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"

namespace skein {

class Permit;

class Semaphore : detail::PackedCount {  // the word: available permits << 32 | waiters
public:
  /// `permits` available at first; also the bound that release() may not exceed.
  explicit Semaphore(std::ptrdiff_t permits) : max_(permits), state_(pack(permits, 0)) {
    if (permits < 0) throw UsageError("a Semaphore needs a non-negative number of permits");
    if (permits > kMaxCount) throw UsageError("a Semaphore's permits must fit in 31 bits");
  }
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  [[nodiscard]] bool try_acquire() noexcept {
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    while (count_of(s) > 0)
      // acquire: what the releaser wrote before release() is visible.
      if (state_.compare_exchange_weak(s, s - kOne, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    return false;
  }

  void acquire() {
    if (try_acquire()) return;
    detail::block_on(*this, nullptr);
  }

  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(std::chrono::duration<Rep, Period> d) {
    if (try_acquire()) return true;
    auto deadline = detail::deadline_after(d);
    return detail::block_on(*this, &deadline);
  }

  /// Returns `n` permits, handing them to waiters first (FIFO).
  ///
  /// The count and the number of waiters share one atomic word: with nobody
  /// waiting, a release is one CAS and touches nothing after it, so the
  /// Semaphore may be destroyed by whoever acquires that permit.
  void release(std::ptrdiff_t n = 1) {
    if (n < 0) throw UsageError("Semaphore::release of a negative number of permits");
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      check_bound(n, s);  // all checks before any change: a rejected release changes nothing
      if (waiters_of(s) != 0) break;
      // release: our writes are visible to whoever acquires the permits.
      if (state_.compare_exchange_weak(s, s + static_cast<std::uint64_t>(n) * kOne, std::memory_order_release,
                                       std::memory_order_relaxed))
        return;
    }
    detail::WaiterChain chain;
    for (;;) {
      {
        std::lock_guard lk(lk_);
        for (; n > 0; --n) {
          detail::Waiter* w = waiters_.pop_front();
          if (!w) break;
          state_.fetch_sub(1, std::memory_order_relaxed);  // one waiter fewer; the permit passes to it
          chain.add(w);
        }
      }
      if (n == 0) break;
      // Permits left over: publish them with a CAS outside the lock, as the
      // last touch of *this (unless waiters queued meanwhile: serve them).
      s = state_.load(std::memory_order_relaxed);
      bool published = false;
      while (waiters_of(s) == 0)
        if (state_.compare_exchange_weak(s, s + static_cast<std::uint64_t>(n) * kOne, std::memory_order_release,
                                         std::memory_order_relaxed)) {
          published = true;
          break;
        }
      if (published) break;
    }
    detail::WaiterList::notify_chain(chain.take());  // touches the waiters only
  }

private:
  struct AcquirePolicy : detail::NoWaitPayload {
    static bool try_now(Semaphore& s) noexcept { return s.try_acquire(); }
    static void result(Semaphore&) noexcept {}
  };

public:
  using AcquireOperation = detail::OwnerWait<Semaphore, AcquirePolicy>;

  /// `co_await s.async_acquire();` Throws Cancelled if the task is cancelled first.
  AcquireOperation async_acquire() noexcept { return AcquireOperation(*this); }

private:
  struct PermitPolicy : detail::NoWaitPayload {
    static bool try_now(Semaphore& s) noexcept { return s.try_acquire(); }
    static Permit result(Semaphore& s) noexcept;
  };

public:
  using PermitOperation = detail::OwnerWait<Semaphore, PermitPolicy>;
  /// `skein::Permit p = co_await s.async_permit();` — async_acquire, held by a Permit.
  PermitOperation async_permit() noexcept;

  /// Permits available now (a snapshot).
  [[nodiscard]] std::ptrdiff_t available() const noexcept { return count_of(state_.load(std::memory_order_relaxed)); }
  [[nodiscard]] std::ptrdiff_t max() const noexcept { return max_; }

private:
  void check_bound(std::ptrdiff_t n, std::uint64_t s) const {
    std::ptrdiff_t held = max_ - count_of(s);
    if (n > held)
      throw UsageError("Semaphore::release above its bound: releasing " + std::to_string(n) + " permit(s) with " +
                       std::to_string(held) + " held (bound " + std::to_string(max_) + ")");
  }

  friend struct detail::OwnerAccess;
  static constexpr const char* kWaitKind = "Semaphore::acquire";  // for the thread dump
  bool wait_enqueue(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (count_of(s) > 0) {  // a permit is free: take it instead of waiting
        if (state_.compare_exchange_weak(s, s - kOne, std::memory_order_acquire, std::memory_order_relaxed))
          return false;
      } else if (state_.compare_exchange_weak(s, s + 1, std::memory_order_relaxed, std::memory_order_relaxed)) {
        break;
      }
    }
    waiters_.push_back(&w);
    return true;
  }
  bool wait_withdraw(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    if (!waiters_.remove(&w)) return false;
    state_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }
  const std::ptrdiff_t max_;
  std::atomic<std::uint64_t> state_;  // available permits << 32 | waiters
  detail::SpinLock lk_;
  detail::WaiterList waiters_;
};

/// One permit of a Semaphore, held until the Permit is destroyed or
/// release() is called (the permit guard: no release forgotten on an early
/// return or an exception). Movable, not copyable; an empty Permit holds nothing.
class Permit {
public:
  Permit() noexcept = default;
  /// Acquires a permit (blocking, cancellably: Cancelled, as acquire()).
  explicit Permit(Semaphore& s) : s_(&s) { s.acquire(); }
  /// Tries once; holds nothing if no permit was free (test with held()).
  Permit(Semaphore& s, std::try_to_lock_t) noexcept : s_(s.try_acquire() ? &s : nullptr) {}
  /// Waits at most `d` for a permit; holds nothing if none came.
  template <class Rep, class Period>
  Permit(Semaphore& s, std::chrono::duration<Rep, Period> d) : s_(s.try_acquire_for(d) ? &s : nullptr) {}
  /// Takes over a permit the caller acquired.
  Permit(Semaphore& s, std::adopt_lock_t) noexcept : s_(&s) {}
  Permit(Permit&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Permit& operator=(Permit&& o) noexcept {
    if (this != &o) {
      release();
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;
  ~Permit() { release(); }

  [[nodiscard]] bool held() const noexcept { return s_ != nullptr; }
  explicit operator bool() const noexcept { return held(); }
  /// The semaphore the permit belongs to, or null.
  [[nodiscard]] Semaphore* semaphore() const noexcept { return s_; }
  /// Returns the permit now (nothing if none is held).
  void release() noexcept {
    Semaphore* s = std::exchange(s_, nullptr);
    if (!s) return;
    try {
      s->release();
    } catch (...) {  // only if the permit was also released by hand (above the bound): reported, not lost
      detail::report_unhandled(std::current_exception());
    }
  }
  /// Gives up ownership without returning the permit; returns the semaphore.
  Semaphore* detach() noexcept { return std::exchange(s_, nullptr); }

private:
  Semaphore* s_ = nullptr;
};

inline Permit Semaphore::PermitPolicy::result(Semaphore& s) noexcept { return Permit(s, std::adopt_lock); }
inline Semaphore::PermitOperation Semaphore::async_permit() noexcept { return PermitOperation(*this); }

}  // namespace skein
