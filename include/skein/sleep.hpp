#pragma once
/// sleep_for (blocking, cancellable) and async_sleep (co_await, no thread blocked).

#include "detail/config.hpp"  // first: the C++20 check

#include <chrono>
#include <coroutine>

#include "detail/deadline.hpp"
#include "detail/timer_service.hpp"
#include "detail/waiter.hpp"
#include "thread_pool.hpp"

namespace skein {

/// Blocks the calling thread until `deadline`; throws Cancelled at once if the
/// current task is cancelled. In a pool task the thread's place is handed to
/// another thread meanwhile.
inline void sleep_until(std::chrono::steady_clock::time_point deadline) {
  detail::ThreadWaiter w;  // never notified: only the deadline or the stop token end the wait
  auto s = detail::block_wait(
      w, []() noexcept { return true; }, &deadline);
  if (s == detail::WaitStatus::cancelled) detail::throw_cancelled();
}

template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  sleep_until(detail::deadline_after(d));
}

/// Awaiter of async_sleep: one timer-heap entry, no thread.
class [[nodiscard]] SleepOperation {
public:
  explicit SleepOperation(std::chrono::steady_clock::time_point deadline) noexcept : wait_(Withdraw{this}) {
    node_.deadline = deadline;
    node_.fire = &on_fire;
  }
  SleepOperation(const SleepOperation&) = delete;
  SleepOperation& operator=(const SleepOperation&) = delete;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    wait_.prepare(h);
    if (detail::current_cancelled()) {
      wait_.waiter.cancelled = true;
      return false;
    }
    if (node_.deadline <= std::chrono::steady_clock::now()) return false;
    try {
      // A coroutine with no executor is resumed on the default pool, never on
      // the timer thread (which would delay every other timer).
      if (!wait_.waiter.executor) wait_.waiter.executor = &detail::core_of(default_pool());
      detail::timer_service().add(&node_);
    } catch (...) {  // not queued (out of memory): the coroutine does not suspend
      wait_.disarm();
      throw;
    }
    return wait_.arm();
  }
  void await_resume() {
    wait_.disarm();
    if (wait_.waiter.cancelled) detail::throw_cancelled();
  }
  [[nodiscard]] detail::WaitReason trace_reason() const noexcept { return {"skein::async_sleep", nullptr}; }

private:
  struct Node : detail::TimerNode {
    SleepOperation* self = nullptr;
  };
  struct Withdraw {
    SleepOperation* self;
    bool operator()() const noexcept { return detail::timer_service().cancel(&self->node_); }
  };
  static void on_fire(detail::TimerNode* n, bool aborted) noexcept {
    auto* self = static_cast<Node*>(n)->self;
    if (aborted) self->wait_.waiter.cancelled = true;
    self->wait_.waiter.fire();
  }

  Node node_{{}, this};
  detail::CancellableCoroWait<Withdraw> wait_;
};

/// `co_await skein::async_sleep(100ms)`: suspends the coroutine, blocks no
/// thread; throws Cancelled promptly if the task is cancelled.
template <class Rep, class Period>
SleepOperation async_sleep(std::chrono::duration<Rep, Period> d) noexcept {
  return SleepOperation(detail::deadline_after(d));
}
inline SleepOperation async_sleep_until(std::chrono::steady_clock::time_point deadline) noexcept {
  return SleepOperation(deadline);
}

}  // namespace skein
