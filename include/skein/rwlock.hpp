#pragma once
/// RWLock: a reader/writer lock for threads and coroutines. Writers are not
/// starved: once a writer waits, new readers queue behind it; waiters are
/// served in FIFO order (a run of readers at the front is admitted together).

#include "detail/config.hpp"  // first: the C++20 check

#include <chrono>
#include <cstdint>
#include <mutex>
#include <shared_mutex>

#include "detail/spin.hpp"
#include "detail/wait_operation.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"

namespace skein {

class RWLock {
public:
  RWLock() = default;
  RWLock(const RWLock&) = delete;
  RWLock& operator=(const RWLock&) = delete;

  // --- exclusive --------------------------------------------------------------
  [[nodiscard]] bool try_lock() noexcept {
    std::lock_guard lk(lk_);
    return try_writer();
  }
  void lock() { wait_mode(kWrite, nullptr); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    auto deadline = detail::deadline_after(d);
    return wait_mode(kWrite, &deadline);
  }
  void unlock() {
    detail::Waiter* chain;
    {
      std::lock_guard lk(lk_);
      if (!writer_) throw UsageError("unlock of an RWLock that is not locked for writing");
      writer_ = false;
      chain = admit();
    }
    detail::WaiterList::notify_chain(chain);
  }

  // --- shared -----------------------------------------------------------------
  [[nodiscard]] bool try_lock_shared() noexcept {
    std::lock_guard lk(lk_);
    return try_reader();
  }
  void lock_shared() { wait_mode(kRead, nullptr); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_shared_for(std::chrono::duration<Rep, Period> d) {
    auto deadline = detail::deadline_after(d);
    return wait_mode(kRead, &deadline);
  }
  void unlock_shared() {
    detail::Waiter* chain = nullptr;
    {
      std::lock_guard lk(lk_);
      if (readers_ == 0) throw UsageError("unlock_shared of an RWLock that is not locked for reading");
      if (--readers_ == 0) chain = admit();
    }
    detail::WaiterList::notify_chain(chain);
  }

private:
  template <bool Write>
  struct LockPolicy {
    static void* data() noexcept { return const_cast<int*>(Write ? &kWrite : &kRead); }
    static bool try_now(RWLock& l) noexcept { return Write ? l.try_lock() : l.try_lock_shared(); }
    static auto result(RWLock& l) noexcept {
      if constexpr (Write)
        return std::unique_lock<RWLock>(l, std::adopt_lock);
      else
        return std::shared_lock<RWLock>(l, std::adopt_lock);
    }
  };

public:
  template <bool Write>
  using LockOperation = detail::OwnerWait<RWLock, LockPolicy<Write>>;
  /// `auto guard = co_await rw.async_lock();` (a std::unique_lock)
  LockOperation<true> async_lock() noexcept { return LockOperation<true>(*this); }
  /// `auto guard = co_await rw.async_lock_shared();` (a std::shared_lock)
  LockOperation<false> async_lock_shared() noexcept { return LockOperation<false>(*this); }

private:
  static constexpr int kRead = 0, kWrite = 1;
  static bool is_writer(const detail::Waiter* w) noexcept { return *static_cast<const int*>(w->data) == kWrite; }

  // lk_ held.
  bool try_writer() noexcept {
    if (writer_ || readers_ != 0 || !waiters_.empty()) return false;
    writer_ = true;
    return true;
  }
  bool try_reader() noexcept {
    if (writer_ || waiting_writers_ != 0) return false;
    ++readers_;
    return true;
  }
  /// Admits waiters from the front that can run now; returns them as a chain.
  detail::Waiter* admit() noexcept {
    detail::WaiterChain chain;
    while (detail::Waiter* w = waiters_.front()) {
      if (is_writer(w)) {
        if (writer_ || readers_ != 0 || !chain.empty()) break;
        waiters_.remove(w);
        --waiting_writers_;
        writer_ = true;
        chain.add(w);
        break;
      }
      if (writer_) break;
      waiters_.remove(w);
      ++readers_;
      chain.add(w);
    }
    return chain.take();
  }
  friend struct detail::OwnerAccess;
  static constexpr const char* kWaitKind = "RWLock::lock";  // for the thread dump
  bool wait_enqueue(detail::Waiter& w) noexcept {
    std::lock_guard lk(lk_);
    if (is_writer(&w) ? try_writer() : try_reader()) return false;
    if (is_writer(&w)) ++waiting_writers_;
    waiters_.push_back(&w);
    return true;
  }
  bool wait_withdraw(detail::Waiter& w) noexcept {
    detail::Waiter* chain = nullptr;
    bool was_linked;
    {
      std::lock_guard lk(lk_);
      was_linked = waiters_.remove(&w);
      if (was_linked && is_writer(&w)) {
        --waiting_writers_;
        chain = admit();  // readers queued behind a withdrawn writer may go now
      }
    }
    detail::WaiterList::notify_chain(chain);
    return was_linked;
  }
  bool wait_mode(int mode, const detail::Clock::time_point* deadline) {
    return detail::block_on(*this, deadline, const_cast<int*>(mode == kWrite ? &kWrite : &kRead));
  }

  detail::SpinLock lk_;
  detail::WaiterList waiters_;
  std::int64_t readers_ = 0;
  std::int64_t waiting_writers_ = 0;
  bool writer_ = false;
};

}  // namespace skein
