#pragma once
/// WaitGroup: Go's sync.WaitGroup for threads and coroutines, with a checked
/// counter (going below zero is a UsageError, and changes nothing).

#include "detail/config.hpp"  // first: the C++20 check

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "detail/packed_count.hpp"
#include "detail/spin.hpp"
#include "detail/wait_operation.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"

namespace skein {

class WaitGroup : detail::PackedCount {  // the word: counter << 32 | waiters
public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  /// Adds `delta` (may be negative). Reaching zero releases every waiter.
  /// Below zero is a UsageError and changes nothing.
  ///
  /// The counter and the number of waiters share one atomic word (as in Go):
  /// the add that reaches zero learns from its own CAS whether anybody waits.
  /// If nobody does it touches nothing afterwards, so `wg.wait(); ~wg` right
  /// after the last done() is safe; if somebody does, they cannot leave (a
  /// waiter does not withdraw once the counter is zero) until it wakes them.
  void add(std::int64_t delta = 1) {
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    std::int64_t c;
    std::uint64_t next;
    do {
      const std::int64_t cur = count_of(s);  // 0 <= cur <= kMaxCount: neither test below overflows
      if (delta < 0 && delta < -cur) throw UsageError("negative WaitGroup counter");
      if (delta > 0 && delta > kMaxCount - cur) throw UsageError("WaitGroup counter overflow");
      c = cur + delta;
      next = c == 0 ? 0 : pack(c, waiters_of(s));
      // acq_rel: a waiter released at zero sees what every done() caller wrote before.
    } while (!state_.compare_exchange_weak(s, next, std::memory_order_acq_rel, std::memory_order_relaxed));
    if (c != 0 || waiters_of(s) == 0) return;
    // Wake exactly the waiters our CAS counted: they are the oldest in the
    // list. Waiters of a later round (after a reuse) queue behind them and
    // must stay.
    detail::WaiterChain chain;
    {
      std::lock_guard lk(lk_);
      for (std::uint64_t n = waiters_of(s); n > 0; --n) {
        detail::Waiter* w = waiters_.pop_front();
        if (!w) break;  // only if add() raced a timed-out wait (misuse): never crash
        chain.add(w);
      }
    }
    detail::WaiterList::notify_chain(chain.take());
  }
  void done() { add(-1); }

  [[nodiscard]] std::int64_t count() const noexcept { return count_of(state_.load(std::memory_order_acquire)); }

  /// Blocks until the counter is zero.
  void wait() {
    if (count() == 0) return;
    detail::block_on(*this, nullptr);
  }
  /// Blocks for at most `d`; true if the counter reached zero.
  template <class Rep, class Period>
  [[nodiscard]] bool wait_for(std::chrono::duration<Rep, Period> d) {
    if (count() == 0) return true;
    auto deadline = detail::deadline_after(d);
    return detail::block_on(*this, &deadline);
  }

private:
  struct WaitPolicy : detail::NoWaitPayload {
    static bool try_now(WaitGroup& g) noexcept { return g.count() == 0; }
    static void result(WaitGroup&) noexcept {}
  };

public:
  using WaitOperation = detail::OwnerWait<WaitGroup, WaitPolicy>;
  /// `co_await wg.async_wait();`
  WaitOperation async_wait() noexcept { return WaitOperation(*this); }

private:
  friend struct detail::OwnerAccess;
  static constexpr const char* kWaitKind = "WaitGroup::wait";  // for the thread dump
  bool wait_enqueue(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    std::uint64_t s = state_.load(std::memory_order_acquire);
    do {
      if (count_of(s) == 0) return false;
    } while (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire));
    waiters_.push_back(&w);
    return true;
  }
  bool wait_withdraw(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    if (!w.linked) return false;
    std::uint64_t s = state_.load(std::memory_order_acquire);
    do {
      // Zero already: the add that got there counted us and will wake us.
      if (count_of(s) == 0) return false;
    } while (!state_.compare_exchange_weak(s, s - 1, std::memory_order_acq_rel, std::memory_order_acquire));
    waiters_.remove(&w);
    return true;
  }

  std::atomic<std::uint64_t> state_{0};  // counter << 32 | waiters
  detail::SpinLock lk_;
  detail::WaiterList waiters_;
};

}  // namespace skein
