#pragma once
/// Semaphore: bounded concurrency for threads and coroutines, FIFO, with a
/// checked bound (releasing more permits than were acquired is a UsageError).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>

#include "detail/spin.hpp"
#include "detail/wait_operation.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"

namespace skein {

class Semaphore {
public:
  /// `permits` available at first; also the bound that release() may not exceed.
  explicit Semaphore(std::ptrdiff_t permits) : max_(permits), count_(permits) {
    if (permits < 0) throw UsageError("a Semaphore needs a non-negative number of permits");
  }
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  [[nodiscard]] bool try_acquire() noexcept {
    std::ptrdiff_t c = count_.load(std::memory_order_relaxed);
    while (c > 0)
      // acquire: what the releaser wrote before release() is visible.
      if (count_.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    return false;
  }

  void acquire() {
    if (try_acquire()) return;
    detail::ThreadWaiter w;
    detail::completed(wait(w, nullptr));
  }

  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(std::chrono::duration<Rep, Period> d) {
    if (try_acquire()) return true;
    auto deadline = detail::deadline_after(std::chrono::ceil<detail::Clock::duration>(d));
    detail::ThreadWaiter w;
    return detail::completed(wait(w, &deadline));
  }

  /// Returns `n` permits, handing them to waiters first (FIFO).
  void release(std::ptrdiff_t n = 1) {
    if (n < 0) throw UsageError("Semaphore::release of a negative number of permits");
    detail::Waiter* chain = nullptr;
    detail::Waiter** tail = &chain;
    {
      std::lock_guard lk(lk_);
      std::ptrdiff_t held = max_ - count_.load(std::memory_order_relaxed);
      if (n > held)
        throw UsageError("Semaphore::release above its bound: releasing " + std::to_string(n) + " permit(s) with " +
                         std::to_string(held) + " held (bound " + std::to_string(max_) + ")");
      for (; n > 0; --n) {
        if (detail::Waiter* w = waiters_.pop_front()) {
          *tail = w;  // the permit passes to w directly
          tail = &w->next;
        } else {
          count_.fetch_add(1, std::memory_order_release);
        }
      }
      *tail = nullptr;
    }
    detail::WaiterList::notify_chain(chain);
  }

  class [[nodiscard]] AcquireOperation : public detail::WaitOperation<AcquireOperation> {
  public:
    explicit AcquireOperation(Semaphore& s) noexcept : s_(s) {}
    bool try_now() noexcept { return s_.try_acquire(); }
    bool enqueue(detail::Waiter& w) noexcept { return s_.enqueue(w); }
    bool withdraw(detail::Waiter& w) noexcept { return s_.withdraw(w); }
    void result() noexcept {}

  private:
    Semaphore& s_;
  };

  /// `co_await s.async_acquire();` Throws Cancelled if the task is cancelled first.
  AcquireOperation async_acquire() noexcept { return AcquireOperation(*this); }

  /// Permits available now (a snapshot).
  [[nodiscard]] std::ptrdiff_t available() const noexcept { return count_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::ptrdiff_t max() const noexcept { return max_; }

private:
  bool enqueue(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    // Permits go to queued waiters first, so a free permit here means nobody waits.
    if (try_acquire()) return false;
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

  const std::ptrdiff_t max_;
  std::atomic<std::ptrdiff_t> count_;
  detail::SpinLock lk_;
  detail::WaiterList waiters_;
};

}  // namespace skein
