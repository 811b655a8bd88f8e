#pragma once
/// Timer, Ticker, after and after_func: Go's time.Timer, time.Ticker,
/// time.After and time.AfterFunc. A timer fires into a Queue of capacity 1
/// (Go's `t.C`), so it can be read with get()/async_get() or used in
/// skein::select with case_get(t.channel()). As in Go 1.23, stop() and reset()
/// leave no stale value behind: after either returns, the channel holds
/// nothing from before.

#include "detail/config.hpp"  // first: the C++20 check

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "detail/deadline.hpp"
#include "detail/spin.hpp"
#include "detail/timer_service.hpp"
#include "errors.hpp"
#include "queue.hpp"
#include "run.hpp"

namespace skein {

namespace detail {

/// What a Timer, a Ticker or an after_func shares with the timer thread.
/// Reference-counted: the handle holds one reference, the timer heap another
/// while the entry is queued or firing.
class TimerCore {
public:
  using TimePoint = Clock::time_point;

  explicit TimerCore(std::function<void()> func) : func_(std::move(func)) {
    node_.core = this;
    node_.fire = &on_fire;
  }
  TimerCore(const TimerCore&) = delete;
  TimerCore& operator=(const TimerCore&) = delete;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  Queue<TimePoint>& channel() noexcept { return ch_; }

  /// Arms for `deadline`, then every `period` if that is not zero (after
  /// stopping). Returns whether it was pending.
  bool start(TimePoint deadline, Clock::duration period = Clock::duration::zero()) {
    const bool was = stop();
    arm(deadline, period);
    return was;
  }
  /// start() for a timer never started before: nothing to stop.
  void arm(TimePoint deadline, Clock::duration period = Clock::duration::zero()) {
    {
      std::lock_guard lk(mu_);
      node_.deadline = deadline;
      period_ = period;
      armed_ = true;
    }
    retain();  // the heap's reference
    try {
      timer_service().add(&node_);
    } catch (...) {
      {
        std::lock_guard lk(mu_);
        armed_ = false;
      }
      release();
      throw;
    }
  }

  /// Disarms; waits for a fire in progress (unless called from inside it);
  /// empties the channel. Returns whether the timer was pending.
  bool stop() {
    bool was, drain;
    {
      std::unique_lock lk(mu_);
      was = armed_;
      armed_ = false;
      // A fire delivering now (outside the lock): wait until it is done, so
      // that the drain below catches its value. Not from inside that fire.
      if (firing_ && firing_thread_ != std::this_thread::get_id()) {
        for (unsigned i = 0; firing_; ++i) {
          lk.unlock();
          spin_wait_step(i);
          lk.lock();
        }
      }
      drain = delivered_;
      delivered_ = false;
    }
    // Not cancelled: it fired meanwhile, found itself disarmed and let go.
    if (was && timer_service().cancel(&node_)) release();  // the heap's reference
    if (drain) {
      while (ch_.try_get()) {
      }
    }
    return was;
  }

private:
  struct Node : TimerNode {
    TimerCore* core = nullptr;
  };

  // On the timer thread, without the heap's lock.
  static void on_fire(TimerNode* n, bool aborted) noexcept {
    TimerCore* c = static_cast<Node*>(n)->core;
    bool deliver = false, requeued = false;
    {
      std::lock_guard lk(c->mu_);
      if (c->armed_ && !aborted) {
        deliver = true;
        c->delivered_ = true;
        c->firing_ = true;
        c->firing_thread_ = std::this_thread::get_id();
        if (c->period_ > Clock::duration::zero()) {
          // A ticker re-arms; a slow receiver loses ticks instead of
          // getting a burst (Go's ticker drops them too).
          const TimePoint now = Clock::now();
          c->node_.deadline = deadline_after(c->period_, c->node_.deadline);
          if (c->node_.deadline <= now) c->node_.deadline = deadline_after(c->period_, now);
          requeued = true;
        } else {
          c->armed_ = false;
        }
      }
    }
    if (requeued) {
      try {
        timer_service().add(&c->node_);  // keeps the heap's reference
      } catch (...) {                    // out of memory: the ticker stops
        std::lock_guard lk(c->mu_);
        c->armed_ = false;
        requeued = false;
      }
    }
    if (deliver) {
      if (c->func_) {
        try {
          skein::spawn(c->func_);
        } catch (...) {  // could not start the task: nobody else can hear of it
          report_unhandled(std::current_exception());
        }
      } else {
        (void)c->ch_.try_put(Clock::now());  // full (an unread tick): dropped, as in Go
      }
      std::lock_guard lk(c->mu_);
      c->firing_ = false;
      c->firing_thread_ = {};
    }
    if (!requeued) c->release();  // the heap's reference
  }

  std::atomic<long> refs_{1};
  SpinLock mu_;
  bool armed_ = false;      // queued (or re-queued) and not stopped
  bool firing_ = false;     // delivering a value outside the lock
  bool delivered_ = false;  // a value may sit in the channel
  std::thread::id firing_thread_{};
  Node node_;
  Clock::duration period_{};  // under mu_; zero: fires once
  const std::function<void()> func_;
  Queue<TimePoint> ch_{1};
};

template <class Rep, class Period>
Clock::duration checked_duration(std::chrono::duration<Rep, Period> d, const char* what) {
  if (d < d.zero()) throw UsageError(std::string(what) + " of a negative duration");
  return std::chrono::duration_cast<Clock::duration>(d);
}

/// The handle part shared by Timer and Ticker.
class TimerHandle {
public:
  TimerHandle(TimerHandle&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  TimerHandle& operator=(TimerHandle&& o) noexcept {
    if (this != &o) {
      drop();
      c_ = std::exchange(o.c_, nullptr);
    }
    return *this;
  }
  TimerHandle(const TimerHandle&) = delete;
  TimerHandle& operator=(const TimerHandle&) = delete;

  /// The channel the timer fires into (Go's `t.C`): capacity 1.
  Queue<Clock::time_point>& channel() const {
    check();
    return c_->channel();
  }

protected:
  explicit TimerHandle(std::function<void()> f) : c_(new TimerCore(std::move(f))) {}
  ~TimerHandle() { drop(); }
  TimerCore& core() const {
    check();
    return *c_;
  }

private:
  void check() const {
    if (!c_) throw UsageError("use of a moved-from Timer or Ticker");
  }
  void drop() noexcept {
    if (!c_) return;
    try {
      c_->stop();
    } catch (...) {  // stop() throws only on a broken mutex: nothing sensible is left to do
    }
    c_->release();
    c_ = nullptr;
  }
  TimerCore* c_;
};

}  // namespace detail

/// Fires once, `d` after it is made (or reset), into channel(); or, made by
/// after_func, starts a task on default_pool() instead. Destroying it stops it.
class Timer : public detail::TimerHandle {
public:
  template <class Rep, class Period>
  explicit Timer(std::chrono::duration<Rep, Period> d) : Timer(detail::checked_duration(d, "Timer"), nullptr) {}

  /// Stops the timer; true if it was pending (it will not fire), false if it
  /// had fired or was stopped. Afterwards channel() holds no value.
  bool stop() { return core().stop(); }
  /// Stops, empties channel() and re-arms for `d` from now. Returns as stop() would have.
  template <class Rep, class Period>
  bool reset(std::chrono::duration<Rep, Period> d) {
    return core().start(detail::deadline_after(detail::checked_duration(d, "Timer::reset")));
  }

  /// Blocks until the timer fires; returns when it fired. (channel().get().)
  detail::Clock::time_point wait() { return *channel().get(); }

private:
  Timer(detail::Clock::duration d, std::function<void()> f) : TimerHandle(std::move(f)) {
    core().arm(detail::deadline_after(d));
  }
  template <class Rep, class Period, class F>
  friend Timer after_func(std::chrono::duration<Rep, Period> d, F f);
};

/// Go's time.After: a Timer firing once after `d`. (In a select, case_after(d)
/// does the same without a channel.)
template <class Rep, class Period>
Timer after(std::chrono::duration<Rep, Period> d) {
  return Timer(d);
}

/// Go's time.AfterFunc: after `d`, runs `f()` as a task on default_pool()
/// (never on the timer thread); stop() before then prevents it. An exception
/// from `f` is reported like any spawned task's.
template <class Rep, class Period, class F>
Timer after_func(std::chrono::duration<Rep, Period> d, F f) {
  return Timer(detail::checked_duration(d, "after_func"), std::function<void()>(std::move(f)));
}

/// Fires every `period` into channel() (a tick not yet read makes later
/// ones drop, as in Go) until stopped or destroyed.
class Ticker : public detail::TimerHandle {
public:
  template <class Rep, class Period>
  explicit Ticker(std::chrono::duration<Rep, Period> period) : TimerHandle(nullptr) {
    const auto p = positive(period);
    core().arm(detail::deadline_after(p), p);
  }
  /// Stops ticking; channel() holds no tick afterwards.
  void stop() { (void)core().stop(); }
  /// Stops and ticks every `period` from now on.
  template <class Rep, class Period>
  void reset(std::chrono::duration<Rep, Period> period) {
    const auto p = positive(period);
    (void)core().start(detail::deadline_after(p), p);
  }

private:
  template <class Rep, class Period>
  static detail::Clock::duration positive(std::chrono::duration<Rep, Period> d) {
    if (d <= d.zero()) throw UsageError("a Ticker needs a positive period");
    return std::chrono::duration_cast<detail::Clock::duration>(d);
  }
};

}  // namespace skein
