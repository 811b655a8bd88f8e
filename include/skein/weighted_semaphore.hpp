#pragma once
/// WeightedSemaphore: a semaphore whose acquirers take any number of units
/// (the x/sync `semaphore.Weighted` of Go). Strictly FIFO: a large request
/// at the front is not overtaken by smaller ones behind it, so it is never
/// starved; a waiter that is cancelled or times out takes nothing and, if it
/// was at the front, lets the ones behind it through.

#include "detail/config.hpp"  // first: the C++20 check

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "detail/deadline.hpp"
#include "detail/spin.hpp"
#include "detail/wait_operation.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"

namespace skein {

class WeightedSemaphore {
public:
  /// `size` units, all available at first.
  explicit WeightedSemaphore(std::int64_t size) : size_(size) {
    if (size < 0) throw UsageError("a WeightedSemaphore needs a non-negative size");
  }
  WeightedSemaphore(const WeightedSemaphore&) = delete;
  WeightedSemaphore& operator=(const WeightedSemaphore&) = delete;

  /// Takes `n` units, blocking until they are free and every earlier waiter
  /// has been served. Throws UsageError if `n` is negative or above size()
  /// (it could never succeed), Cancelled if the task is cancelled first.
  void acquire(std::int64_t n) {
    check(n, "acquire");
    detail::block_on(*this, nullptr, &n);
  }
  /// Takes `n` units if they are free and nobody waits; never blocks.
  [[nodiscard]] bool try_acquire(std::int64_t n) {
    check(n, "try_acquire");
    std::lock_guard lk(lk_);
    return take_locked(n);
  }
  /// As acquire, but gives up after `d` (false; nothing taken).
  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(std::int64_t n, std::chrono::duration<Rep, Period> d) {
    check(n, "try_acquire_for");
    auto deadline = detail::deadline_after(d);
    return detail::block_on(*this, &deadline, &n);
  }

  /// Returns `n` units and serves waiters in order while the front one fits.
  /// Throws UsageError (and changes nothing) if `n` is negative or more than
  /// are held.
  void release(std::int64_t n) {
    if (n < 0) throw UsageError("WeightedSemaphore::release of a negative number of units");
    detail::WaiterChain chain;
    {
      std::lock_guard lk(lk_);
      if (n > cur_)
        throw UsageError("WeightedSemaphore::release of " + std::to_string(n) + " unit(s) with " +
                         std::to_string(cur_) + " held");
      cur_ -= n;
      grant_locked(chain);
    }
    detail::WaiterList::notify_chain(chain.take());
  }

  /// `co_await s.async_acquire(n);` as acquire, suspending instead of blocking.
  class [[nodiscard]] AcquireOperation : public detail::WaitOperation<AcquireOperation> {
  public:
    AcquireOperation(WeightedSemaphore& s, std::int64_t n) noexcept : s_(s), n_(n) { this->waiter().data = &n_; }
    bool try_now() {
      s_.check(n_, "async_acquire");
      std::lock_guard lk(s_.lk_);
      return s_.take_locked(n_);
    }
    bool enqueue(detail::Waiter& w) noexcept { return s_.wait_enqueue(w); }
    bool withdraw(detail::Waiter& w) noexcept { return s_.wait_withdraw(w); }
    [[nodiscard]] detail::WaitReason trace_reason() const noexcept {
      return {detail::type_name<WeightedSemaphore>(), &s_};
    }
    void result() noexcept {}

  private:
    WeightedSemaphore& s_;
    std::int64_t n_;
  };
  AcquireOperation async_acquire(std::int64_t n) noexcept { return AcquireOperation(*this, n); }

  /// Units not held now (a snapshot).
  [[nodiscard]] std::int64_t available() const {
    std::lock_guard lk(lk_);
    return size_ - cur_;
  }
  [[nodiscard]] std::int64_t size() const noexcept { return size_; }

private:
  friend struct detail::OwnerAccess;
  static constexpr const char* kWaitKind = "WeightedSemaphore::acquire";  // for the thread dump

  void check(std::int64_t n, const char* what) const {
    if (n < 0) throw UsageError(std::string("WeightedSemaphore::") + what + " of a negative number of units");
    if (n > size_)
      throw UsageError(std::string("WeightedSemaphore::") + what + " of " + std::to_string(n) +
                       " unit(s), more than its size " + std::to_string(size_) + " (it could never succeed)");
  }
  static std::int64_t need_of(detail::Waiter* w) noexcept { return *static_cast<std::int64_t*>(w->data); }

  // lk_ held. Takes n units if free and nobody is ahead.
  bool take_locked(std::int64_t n) noexcept {
    if (!waiters_.empty() || size_ - cur_ < n) return false;
    cur_ += n;
    return true;
  }
  // lk_ held. Serves waiters from the front while the front one fits.
  void grant_locked(detail::WaiterChain& chain) noexcept {
    while (detail::Waiter* w = waiters_.front()) {
      const std::int64_t need = need_of(w);
      if (size_ - cur_ < need) break;
      cur_ += need;
      waiters_.remove(w);
      chain.add(w);
    }
  }

  bool wait_enqueue(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    if (take_locked(need_of(&w))) return false;
    waiters_.push_back(&w);
    return true;
  }
  bool wait_withdraw(detail::Waiter& w) noexcept {
    detail::WaiterChain chain;
    {
      std::lock_guard lk(lk_);
      if (!waiters_.remove(&w)) return false;  // granted: the units are on their way
      grant_locked(chain);                     // it may have been the one holding the others back
    }
    detail::WaiterList::notify_chain(chain.take());
    return true;
  }

  const std::int64_t size_;
  std::int64_t cur_ = 0;  // units held
  mutable detail::SpinLock lk_;
  detail::WaiterList waiters_;
};

}  // namespace skein
