#pragma once
// The state behind a Context: a stop source linked to the parent's, a count of
// live tasks (its own and its descendants') that Context::wait waits on, an
// optional deadline in the timer service, the values it carries, the cause it
// was cancelled with, and the functions registered to run once it is
// cancelled (after_cancel).

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "assert.hpp"
#include "runtime.hpp"
#include "spin.hpp"
#include "stop_token.hpp"
#include "timer_service.hpp"
#include "trace_core.hpp"
#include "wait_operation.hpp"
#include "waiter.hpp"

namespace skein::detail {

/// Why a context was cancelled, latched when it was: cancel() on it, its own
/// deadline, or its parent's cancellation, which passes on the parent's own
/// (latched) reason. Never changes once set (Go's Err()).
enum class CancelReason : int { none = 0, cancelled = 1, deadline = 2 };

/// One value a context carries: an immutable list, newest first, shared by a
/// context and its children (a child that adds a value adds a node in front).
/// `key` is the address of the ContextKey: keys never collide.
struct ContextValueNode {
  ContextValueNode(const void* k, std::shared_ptr<const ContextValueNode> n) noexcept : key(k), next(std::move(n)) {}
  virtual ~ContextValueNode() = default;
  const void* key;
  std::shared_ptr<const ContextValueNode> next;
};
using ContextValues = std::shared_ptr<const ContextValueNode>;

template <class T>
struct ContextValue final : ContextValueNode {
  template <class U>
  ContextValue(const void* k, ContextValues n, U&& v) : ContextValueNode(k, std::move(n)), value(std::forward<U>(v)) {}
  T value;
};

/// A function registered with after_cancel: started (as a task) once the
/// context is cancelled, unless stop() won first. Owned by the context
/// (until it dies, or until stop() removes it) and by the handles.
struct AfterCancelNode : Canceller {
  static constexpr int kArmed = 0, kFired = 1, kStopped = 2;
  std::atomic<int> state{kArmed};
  std::atomic<long> refs{2};  // the context's list, the first handle
  AfterCancelNode* owned_prev = nullptr;
  AfterCancelNode* owned_next = nullptr;
  /// Starts the task (once), or with `start` false frees what it holds.
  /// Never throws: a failure goes to the unhandled-error handler.
  void (*act)(AfterCancelNode*, bool start) noexcept = nullptr;
  void start() noexcept { act(this, true); }
  void retain() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void drop() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) act(this, false);
  }
};

class ContextState final : public Scope {
public:
  explicit ContextState(ContextState* parent) : parent_(parent) {
    is_context = true;
    if (parent_) {
      values_ = parent_->values_;
      parent_->retain();
      parent_link_.emplace(parent_->source.get_token(), FromParent{this});
    }
  }
  /// A root that carries `values` (without_cancel, with_value on a root).
  ContextState(std::nullptr_t, ContextValues values) : ContextState(nullptr) { values_ = std::move(values); }

  ~ContextState() override {
    if (deadline_) deadline_->detach();
    parent_link_.reset();
    // Nobody can cancel a dying context: what is still armed never runs.
    while (AfterCancelNode* n = after_cancel_) {
      after_cancel_ = n->owned_next;
      n->drop();
    }
    if (parent_) parent_->release();
  }

  /// The first cancellation wins: its reason and cause are latched, and in
  /// place before any waiter sees the stop (a child's stop callback, run by
  /// request_stop, reads them; a second canceller's request_stop comes after
  /// the first one's write, through the lock).
  void cancel(CancelReason why, std::exception_ptr cause = nullptr) noexcept {
    {
      std::lock_guard lk(lock_);
      if (reason_.load(std::memory_order_relaxed) == 0) {
        cause_ = std::move(cause);
        reason_.store(static_cast<int>(why), std::memory_order_release);
      }
    }
    request_stop();
  }
  [[nodiscard]] CancelReason reason() const noexcept {
    return static_cast<CancelReason>(reason_.load(std::memory_order_acquire));
  }
  [[nodiscard]] std::exception_ptr cancel_cause() const noexcept override {
    std::lock_guard lk(lock_);
    return cause_;
  }
  /// The reason and the cause together (one lock: never a reason without its cause).
  [[nodiscard]] std::pair<CancelReason, std::exception_ptr> cancellation() const noexcept {
    std::lock_guard lk(lock_);
    return {static_cast<CancelReason>(reason_.load(std::memory_order_relaxed)), cause_};
  }
  [[nodiscard]] ContextState* parent() const noexcept { return parent_; }

  /// The value stored under `key` here or by an ancestor (the nearest), or null.
  [[nodiscard]] const ContextValueNode* find_value(const void* key) const noexcept {
    for (const ContextValueNode* n = values_.get(); n; n = n->next.get())
      if (n->key == key) return n;
    return nullptr;
  }
  [[nodiscard]] const ContextValues& values() const noexcept { return values_; }
  /// Adds a value in front (only on a context no other thread sees yet).
  void push_value(ContextValues node) noexcept { values_ = std::move(node); }

  /// Registers `n` (refs 2: this list and the caller's handle); starts it at
  /// once if the context is cancelled already.
  void add_after_cancel(AfterCancelNode* n) noexcept {
    n->fn = &on_after_cancel;
    {
      std::lock_guard lk(lock_);
      n->owned_next = after_cancel_;
      if (after_cancel_) after_cancel_->owned_prev = n;
      after_cancel_ = n;
    }
    if (!add_canceller(n)) on_after_cancel(n);
  }
  /// after_cancel's stop(): true if it kept `n` from starting.
  bool stop_after_cancel(AfterCancelNode* n) noexcept {
    int armed = AfterCancelNode::kArmed;
    if (!n->state.compare_exchange_strong(armed, AfterCancelNode::kStopped, std::memory_order_acq_rel)) return false;
    remove_canceller(n);  // waits if a cancelling thread popped it (it then does nothing)
    {
      std::lock_guard lk(lock_);
      if (n->owned_prev)
        n->owned_prev->owned_next = n->owned_next;
      else
        after_cancel_ = n->owned_next;
      if (n->owned_next) n->owned_next->owned_prev = n->owned_prev;
    }
    n->drop();  // the list's reference
    return true;
  }

  /// A deadline already past cancels at once (as Go's WithDeadline does):
  /// the context is cancelled before anybody sees it.
  void set_deadline(Clock::time_point when, std::exception_ptr cause = nullptr) {
    if (when <= Clock::now()) {
      deadline_at_ = when;
      cancel(CancelReason::deadline, std::move(cause));
      return;
    }
    auto* d = new Deadline(this);
    d->deadline = when;
    d->cause = std::move(cause);
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
    if (deadline_) return deadline_->deadline;
    return deadline_at_;
  }

  void task_started() noexcept override {
    for (ContextState* c = this; c; c = c->parent_) c->live_.fetch_add(1, std::memory_order_relaxed);
  }
  /// Root first: once a context (a TaskGroup's) counts zero, so have its
  /// ancestors for those tasks — `tasks()` of an enclosing context read right
  /// after a group's wait does not count them.
  void task_finished() noexcept override {
    if (parent_) parent_->task_finished();
    // acq_rel: a waiter that sees zero also sees the finished tasks' writes.
    if (const long old = live_.fetch_sub(1, std::memory_order_acq_rel); old == 1) {
      notify_idle();
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
      w.kind = "Context::wait";
      w.object = this;
      if (!idle_enqueue(w)) return WaitStatus::ready;
      auto s = block_wait(
          w, [&]() noexcept { return idle_withdraw(w); }, deadline, observe_stop);
      if (s != WaitStatus::ready) return s;
    }
  }
  /// Under the lock: links `w` to be woken when no task is live (false: none is now).
  bool idle_enqueue(Waiter& w) noexcept {
    std::lock_guard lk(lock_);
    if (live_.load(std::memory_order_acquire) == 0) return false;
    idle_waiters_.push_back(&w);
    return true;
  }
  bool idle_withdraw(Waiter& w) noexcept {
    std::lock_guard lk(lock_);
    return idle_waiters_.remove(&w);
  }

private:
  struct FromParent {
    ContextState* self;
    // The parent's reason and cause are set before its request_stop runs this callback.
    void operator()() const noexcept { self->cancel(self->parent_->reason(), self->parent_->cancel_cause()); }
  };

  static void on_after_cancel(Canceller* c) noexcept {
    auto* n = static_cast<AfterCancelNode*>(c);
    int armed = AfterCancelNode::kArmed;
    // The node stays in the list (request_stop touches it after this returns).
    if (n->state.compare_exchange_strong(armed, AfterCancelNode::kFired, std::memory_order_acq_rel)) n->start();
  }

  // Owned jointly by the timer service and the context (two references): the
  // timer may fire while the context is being destroyed, so the firing path
  // reaches the context only through `ctx`, under `lock`, with try_retain.
  struct Deadline : TimerNode {
    explicit Deadline(ContextState* c) : ctx(c) {}
    SpinLock lock;
    ContextState* ctx;
    std::exception_ptr cause;
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
        if (!aborted) c->cancel(CancelReason::deadline, d->cause);
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
  mutable SpinLock lock_;  // the idle waiters, the cause, the after_cancel list
  WaiterList idle_waiters_;
  std::exception_ptr cause_;
  ContextValues values_;
  AfterCancelNode* after_cancel_ = nullptr;
  Deadline* deadline_ = nullptr;
  std::optional<Clock::time_point> deadline_at_;  // a deadline that had passed when it was set
};

/// `co_await` until no task bound to the context (or a descendant) is live;
/// with observe_stop false, the awaiting task's cancellation does not end it.
class [[nodiscard]] IdleWait final : public WaitOperation<IdleWait> {
public:
  IdleWait(ContextState& c, bool observe_stop) noexcept : WaitOperation<IdleWait>(observe_stop), c_(c) {}
  bool try_now() const noexcept { return c_.live_tasks() == 0; }
  bool enqueue(Waiter& w) noexcept { return c_.idle_enqueue(w); }
  bool withdraw(Waiter& w) noexcept { return c_.idle_withdraw(w); }
  void result() const noexcept {}
  [[nodiscard]] WaitReason trace_reason() const noexcept { return {"skein::Context (idle)", &c_}; }

private:
  ContextState& c_;
};

}  // namespace skein::detail
