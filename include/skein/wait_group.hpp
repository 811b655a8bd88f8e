#pragma once
/// WaitGroup: Go's sync.WaitGroup for threads and coroutines, with a checked
/// counter (going below zero is a UsageError, and changes nothing).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "detail/spin.hpp"
#include "detail/wait_operation.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"

namespace skein {

class WaitGroup {
public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  /// Adds `delta` (may be negative). Reaching zero releases every waiter.
  void add(std::int64_t delta = 1) {
    std::int64_t c = count_.load(std::memory_order_relaxed);
    std::int64_t next;
    do {
      next = c + delta;
      if (next < 0) throw UsageError("negative WaitGroup counter");
      // acq_rel: a waiter released at zero sees what every done() caller wrote before.
    } while (!count_.compare_exchange_weak(c, next, std::memory_order_acq_rel, std::memory_order_relaxed));
    if (next == 0 && delta != 0) {
      detail::Waiter* chain;
      {
        std::lock_guard lk(lk_);
        chain = waiters_.take_all();
      }
      detail::WaiterList::notify_chain(chain);
    }
  }
  void done() { add(-1); }

  [[nodiscard]] std::int64_t count() const noexcept { return count_.load(std::memory_order_acquire); }

  /// Blocks until the counter is zero.
  void wait() {
    if (count() == 0) return;
    detail::ThreadWaiter w;
    detail::completed(wait(w, nullptr));
  }
  /// Blocks for at most `d`; true if the counter reached zero.
  template <class Rep, class Period>
  [[nodiscard]] bool wait_for(std::chrono::duration<Rep, Period> d) {
    if (count() == 0) return true;
    auto deadline = detail::deadline_after(std::chrono::ceil<detail::Clock::duration>(d));
    detail::ThreadWaiter w;
    return detail::completed(wait(w, &deadline));
  }

  class [[nodiscard]] WaitOperation : public detail::WaitOperation<WaitOperation> {
  public:
    explicit WaitOperation(WaitGroup& g) noexcept : g_(g) {}
    bool try_now() noexcept { return g_.count() == 0; }
    bool enqueue(detail::Waiter& w) noexcept { return g_.enqueue(w); }
    bool withdraw(detail::Waiter& w) noexcept { return g_.withdraw(w); }
    void result() noexcept {}

  private:
    WaitGroup& g_;
  };
  /// `co_await wg.async_wait();`
  WaitOperation async_wait() noexcept { return WaitOperation(*this); }

private:
  bool enqueue(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    // Under the lock: an add() that reaches zero takes the waiters under it
    // after its decrement, so either we see zero here or it sees us.
    if (count_.load(std::memory_order_acquire) == 0) return false;
    waiters_.push_back(&w);
    return true;
  }
  bool withdraw(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    return waiters_.remove(&w);
  }
  detail::WaitStatus wait(detail::ThreadWaiter& w, const detail::Clock::time_point* deadline) {
    return detail::wait_blocking(
        w, [&](detail::Waiter& x) { return enqueue(x); }, [&](detail::Waiter& x) { return withdraw(x); }, deadline);
  }

  std::atomic<std::int64_t> count_{0};
  detail::SpinLock lk_;
  detail::WaiterList waiters_;
};

}  // namespace skein
