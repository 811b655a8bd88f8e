#pragma once
// The state behind a Context: a stop source linked to the parent's, a count of
// live tasks (its own and its descendants') that Context::wait waits on, and
// an optional deadline in the timer service.

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stop_token>

#include "assert.hpp"
#include "runtime.hpp"
#include "spin.hpp"
#include "timer_service.hpp"
#include "waiter.hpp"

namespace skein::detail {

/// Why a context was cancelled, latched when it was: cancel() on it, its own
/// deadline, or its parent's cancellation, which passes on the parent's own
/// (latched) reason. Never changes once set (Go's Err()).
enum class CancelReason : int { none = 0, cancelled = 1, deadline = 2 };

class ContextState final : public Scope {
public:
  explicit ContextState(ContextState* parent) : parent_(parent) {
    is_context = true;
    if (parent_) {
      parent_->retain();
      parent_link_.emplace(parent_->source.get_token(), FromParent{this});
    }
  }

  ~ContextState() override {
    if (deadline_) deadline_->detach();
    parent_link_.reset();
    if (parent_) parent_->release();
  }

  /// The first reason wins, and is in place before any waiter sees the stop
  /// (release: a child's stop callback, run by request_stop, reads it).
  void cancel(CancelReason why) noexcept {
    int none = 0;
    reason_.compare_exchange_strong(none, static_cast<int>(why), std::memory_order_acq_rel);
    request_stop();
  }
  [[nodiscard]] CancelReason reason() const noexcept {
    return static_cast<CancelReason>(reason_.load(std::memory_order_acquire));
  }
  [[nodiscard]] ContextState* parent() const noexcept { return parent_; }

  void set_deadline(Clock::time_point when) {
    auto* d = new Deadline(this);
    d->deadline = when;
    d->fire = &Deadline::on_fire;
    try {
      timer_service().add(d);
    } catch (...) {  // not queued (out of memory): neither owner has it yet
      delete d;
      throw;
    }
    deadline_ = d;
  }
  [[nodiscard]] std::optional<Clock::time_point> deadline() const noexcept {
    if (!deadline_) return std::nullopt;
    return deadline_->deadline;
  }

  void task_started() noexcept override {
    for (ContextState* c = this; c; c = c->parent_) c->live_.fetch_add(1, std::memory_order_relaxed);
  }
  void task_finished() noexcept override {
    for (ContextState* c = this; c; c = c->parent_)
      // acq_rel: a waiter that sees zero also sees the finished tasks' writes.
      if (const long old = c->live_.fetch_sub(1, std::memory_order_acq_rel); old == 1) {
        c->notify_idle();
      } else {
        SKEIN_ASSERT(old > 1, "a context finishes only the tasks it started");
      }
  }
  [[nodiscard]] long live_tasks() const noexcept { return live_.load(std::memory_order_acquire); }

  /// True if `s` is this context or one of its descendants.
  bool encloses(const Scope* s) const noexcept {
    if (!s || !s->is_context) return false;
    for (auto* c = static_cast<const ContextState*>(s); c; c = c->parent_)
      if (c == this) return true;
    return false;
  }

  /// Waits until no task bound to this context (or a descendant) is live.
  WaitStatus wait_idle(const Clock::time_point* deadline, bool observe_stop = true) {
    for (;;) {
      ThreadWaiter w;
      {
        std::lock_guard lk(lock_);
        if (live_.load(std::memory_order_acquire) == 0) return WaitStatus::ready;
        idle_waiters_.push_back(&w);
      }
      auto s = block_wait(
          w,
          [&]() noexcept {
            std::lock_guard lk(lock_);
            return idle_waiters_.remove(&w);
          },
          deadline, observe_stop);
      if (s != WaitStatus::ready) return s;
    }
  }

private:
  struct FromParent {
    ContextState* self;
    // The parent's reason is set before its request_stop runs this callback.
    void operator()() const noexcept { self->cancel(self->parent_->reason()); }
  };

  // Owned jointly by the timer service and the context (two references): the
  // timer may fire while the context is being destroyed, so the firing path
  // reaches the context only through `ctx`, under `lock`, with try_retain.
  struct Deadline : TimerNode {
    explicit Deadline(ContextState* c) : ctx(c) {}
    SpinLock lock;
    ContextState* ctx;
    std::atomic<int> refs{2};
    void drop() noexcept {
      if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }
    void detach() noexcept {                     // from the context's destructor
      if (timer_service().cancel(this)) drop();  // the timer's reference: it will never fire
      {
        std::lock_guard lk(lock);
        ctx = nullptr;
      }
      drop();
    }
    static void on_fire(TimerNode* n, bool aborted) noexcept {
      auto* d = static_cast<Deadline*>(n);
      ContextState* c = nullptr;
      {
        std::lock_guard lk(d->lock);
        if (d->ctx && d->ctx->try_retain()) c = d->ctx;
      }
      if (c) {
        if (!aborted) c->cancel(CancelReason::deadline);
        c->release();
      }
      d->drop();
    }
  };

  void notify_idle() noexcept {
    Waiter* chain;
    {
      std::lock_guard lk(lock_);
      chain = idle_waiters_.take_all();
    }
    WaiterList::notify_chain(chain);
  }

  ContextState* parent_;
  StopCallbackSlot<FromParent> parent_link_;
  std::atomic<int> reason_{0};
  std::atomic<long> live_{0};
  SpinLock lock_;
  WaiterList idle_waiters_;
  Deadline* deadline_ = nullptr;
};

}  // namespace skein::detail
