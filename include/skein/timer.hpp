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
///
/// The one timer node is "busy" from the moment arm() hands it to the timer
/// heap until the heap gives it back: a cancel that removes it, or the end of
/// its fire callback (unless that re-queued it: a ticker). Nothing re-arms a
/// busy node: stop() and arm() first take it back (cancel it, or wait for its
/// fire to end), so a fire already in flight when reset() runs can neither
/// deliver its stale value after reset() returns nor race a second copy of
/// the node into the heap. A reset() made by a coroutine that the fire itself
/// resumed (on the timer thread, inside the fire) is left to the fire's end.
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

  /// Stops, then arms for `deadline` and every `period` after it if that is
  /// not zero. Returns whether it was pending.
  bool start(TimePoint deadline, Clock::duration period = Clock::duration::zero()) {
    const bool was = stop();
    arm(deadline, period);
    return was;
  }

  /// Arms for `deadline` (then every `period`, if not zero), taking the node
  /// back from the heap first if another thread armed it meanwhile.
  void arm(TimePoint deadline, Clock::duration period = Clock::duration::zero()) {
    std::unique_lock lk(mu_);
    const int let_go = take_back(lk);
    node_.deadline = deadline;
    period_ = period;
    armed_ = true;
    if (busy_) {  // inside this timer's own fire: its end queues the node again
      rearm_ = true;
      lk.unlock();
      drop_refs(let_go);
      return;
    }
    busy_ = true;
    lk.unlock();
    drop_refs(let_go);
    retain();  // the heap's reference
    try {
      timer_service().add(&node_);
    } catch (...) {
      {
        std::lock_guard g(mu_);
        armed_ = false;
        busy_ = false;
      }
      release();
      throw;
    }
  }

  /// Disarms; takes the node back (waiting for a fire in progress, unless
  /// called from inside it); empties the channel. Returns whether the timer
  /// was pending.
  bool stop() noexcept {
    bool was, drain;
    int let_go;
    {
      std::unique_lock lk(mu_);
      was = armed_;
      armed_ = false;
      rearm_ = false;
      let_go = take_back(lk);
      drain = delivered_;  // a fire that is over: its value, if any, is in the channel
      delivered_ = false;
    }
    drop_refs(let_go);
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

  // mu_ held (released meanwhile). Until the node is not busy and no value
  // is being delivered: cancels the node if it is queued, else waits for its
  // fire to end — unless that fire is up this thread's stack. Returns the
  // heap references to drop (after unlocking).
  int take_back(std::unique_lock<SpinLock>& lk) noexcept {
    const bool inside = firing_thread_ == std::this_thread::get_id();
    int let_go = 0;
    for (unsigned i = 0; busy_ || (delivering_ && !inside);) {
      if (busy_) {
        lk.unlock();
        const bool cancelled = timer_service().cancel(&node_);
        lk.lock();
        if (cancelled) {  // out of the heap, and no fire has it: ours again
          busy_ = false;
          ++let_go;
          continue;  // a ticker's delivery may still be running
        }
        if (inside) break;
      }
      lk.unlock();
      spin_wait_step(i);  // a fire is running on the timer thread: brief
      lk.lock();
    }
    return let_go;
  }
  void drop_refs(int n) noexcept {
    for (; n > 0; --n) release();  // never the last: the caller's handle holds one
  }

  // On the timer thread, without the heap's lock. The node is out of the heap.
  static void on_fire(TimerNode* n, bool aborted) noexcept {
    TimerCore* c = static_cast<Node*>(n)->core;
    bool deliver = false, requeued = false;
    {
      std::lock_guard lk(c->mu_);
      if (c->armed_ && !aborted) {
        deliver = true;
        c->delivered_ = true;
        c->delivering_ = true;
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
    if (requeued && !c->requeue()) requeued = false;  // keeps the heap's reference, stays busy
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
    }
    bool again = false, let_go = false;
    {
      std::lock_guard lk(c->mu_);
      c->firing_thread_ = {};
      c->delivering_ = false;
      if (!requeued) {
        if (c->rearm_) {  // reset from inside this fire: queue the node again
          c->rearm_ = false;
          again = true;
        } else {
          c->busy_ = false;  // given back: stop() and arm() may have it
          let_go = true;
        }
      }
    }
    if (again && !c->requeue()) {
      std::lock_guard lk(c->mu_);
      c->busy_ = false;
      let_go = true;
    }
    if (let_go) c->release();  // the heap's reference
  }

  // Hands the busy node back to the heap; false (disarmed; the caller gives
  // the node back) if out of memory, which is reported: the ticker (or the
  // timer reset from inside its fire) stops, and nobody else would know.
  bool requeue() noexcept {
    try {
      timer_service().add(&node_);
      return true;
    } catch (...) {
      report_unhandled(std::current_exception());
      std::lock_guard lk(mu_);
      armed_ = false;
      return false;
    }
  }

  std::atomic<long> refs_{1};
  SpinLock mu_;
  bool armed_ = false;       // will deliver when its deadline comes
  bool busy_ = false;        // the node is in the heap or in its fire callback
  bool rearm_ = false;       // armed from inside the fire: the fire re-queues it
  bool delivering_ = false;  // a fire is delivering its value (outside the lock)
  bool delivered_ = false;   // a value may sit in the channel
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
    (void)c_->stop();
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
