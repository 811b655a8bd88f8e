#pragma once
// The waiter core shared by every skein wait: an intrusive list node that is
// either a blocked thread (ThreadWaiter) or a suspended coroutine
// (CoroWaiter), and the two wait loops that make them cancellable.
//
// Protocol. A primitive keeps waiters in a WaiterList under its own lock. To
// release a waiter it unlinks it under the lock and then calls notify()
// outside the lock. A wait that ends otherwise calls the primitive's withdraw
// function, which unlinks the waiter under the same lock and reports whether
// it was still linked: if it was, nobody will notify it and it may leave; if
// not, a notification is on its way and it must wait for it, so an item handed
// to it is never lost. A cancellation withdraws at once, on the cancelling
// thread (for threads and coroutines alike): from a skein::stop_callback for a
// blocked thread, from a Canceller on the task's scope (Scope::add_canceller)
// for a suspended coroutine. A deadline withdraws from the waiting thread (or
// the timer thread).

#include <atomic>
#include <coroutine>
#include <exception>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "assert.hpp"
#include "error_types.hpp"
#include "fault.hpp"
#include "parker.hpp"
#include "runtime.hpp"
#include "stop_token.hpp"
#include "trace_core.hpp"

namespace skein::detail {

/// std::optional<skein::stop_callback<CB>> without the optional: GCC 12 reports
/// a false -Wmaybe-uninitialized through optional's destructor.
template <class CB>
class StopCallbackSlot {
public:
  StopCallbackSlot() noexcept {}
  ~StopCallbackSlot() { reset(); }
  StopCallbackSlot(const StopCallbackSlot&) = delete;
  StopCallbackSlot& operator=(const StopCallbackSlot&) = delete;
  void emplace(skein::stop_token tok, CB cb) noexcept {
    ::new (static_cast<void*>(&u_.cb)) skein::stop_callback<CB>(std::move(tok), std::move(cb));
    engaged_ = true;
  }
  /// Deregisters; waits for the callback if it is running on another thread.
  void reset() noexcept {
    if (engaged_) {
      engaged_ = false;
      u_.cb.~stop_callback();
    }
  }

private:
  union U {
    U() noexcept {}
    ~U() {}
    skein::stop_callback<CB> cb;
  } u_;
  bool engaged_ = false;
};

struct Waiter {
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  void* data = nullptr;  // the primitive's per-wait payload (an item slot, a lock mode, ...)
  void (*notify_fn)(Waiter*) noexcept = nullptr;
  bool linked = false;
  bool is_coro = false;    // a CoroWaiter or DirectCoroWaiter (a completer may transfer to it directly)
  bool direct = false;     // a DirectCoroWaiter: fully armed before it was linked
  bool cancelled = false;  // CoroWaiter: written before fire(), read after resumption
  bool claimable = false;  // a ClaimableWaiter (one case of a select)
  void notify() noexcept {
    SKEIN_FAULT_POINT();  // between the primitive's unlock and the wake-up
    notify_fn(this);
  }
};

/// A waiter that may be one of several registered for one wait (a select's
/// cases, each in its own primitive): a primitive that is about to complete
/// an operation with it (hand it an item, take its item) must first claim it,
/// under the primitive's lock. A failed claim means another case already won:
/// the primitive leaves the waiter linked (its owner withdraws it) and goes on
/// to the next one, so a losing case never consumes or produces anything.
struct ClaimableWaiter : Waiter {
  bool (*claim_fn)(ClaimableWaiter*) noexcept = nullptr;
  ClaimableWaiter() noexcept { claimable = true; }
};

/// True if a primitive may complete an operation with `w` (see ClaimableWaiter).
inline bool claim_waiter(Waiter* w) noexcept {
  if (!w->claimable) return true;
  auto* c = static_cast<ClaimableWaiter*>(w);
  return c->claim_fn(c);
}

/// Intrusive FIFO of waiters; the owner provides the locking.
class WaiterList {
public:
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] Waiter* front() const noexcept { return head_; }
  void push_back(Waiter* w) noexcept {
    SKEIN_ASSERT(!w->linked, "a waiter is in one list at a time");
    w->next = nullptr;
    w->prev = tail_;
    if (tail_)
      tail_->next = w;
    else
      head_ = w;
    tail_ = w;
    w->linked = true;
  }
  /// Unlinks `w` if linked; returns whether it was.
  bool remove(Waiter* w) noexcept {
    if (!w->linked) return false;
    SKEIN_ASSERT(w->prev ? w->prev->next == w : head_ == w, "a linked waiter is reachable from its list");
    SKEIN_ASSERT(w->next ? w->next->prev == w : tail_ == w, "a linked waiter is reachable from its list");
    if (w->prev)
      w->prev->next = w->next;
    else
      head_ = w->next;
    if (w->next)
      w->next->prev = w->prev;
    else
      tail_ = w->prev;
    w->next = w->prev = nullptr;
    w->linked = false;
    return true;
  }
  Waiter* pop_front() noexcept {
    Waiter* w = head_;
    if (w) remove(w);
    return w;
  }
  /// Unlinks and returns the first waiter that could be claimed
  /// (claim_waiter); those that could not stay linked. For primitives whose
  /// waiters may be a select's cases.
  Waiter* pop_front_claimed() noexcept {
    for (Waiter* w = head_; w; w = w->next)
      if (claim_waiter(w)) {
        remove(w);
        return w;
      }
    return nullptr;
  }
  /// Moves every waiter out, as a singly linked chain through `next`; the
  /// caller notifies them after unlocking (read `next` before notify()).
  Waiter* take_all() noexcept {
    Waiter* h = head_;
    for (Waiter* w = h; w; w = w->next) w->linked = false;
    head_ = tail_ = nullptr;
    return h;
  }
  static void notify_chain(Waiter* w) noexcept {
    while (w) {
      Waiter* n = w->next;
      w->notify();
      w = n;
    }
  }

private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

/// Waiters taken out of a list under its lock, chained through `next`, to be
/// notified (WaiterList::notify_chain) after unlocking.
class WaiterChain {
public:
  WaiterChain() noexcept = default;
  WaiterChain(const WaiterChain&) = delete;
  WaiterChain& operator=(const WaiterChain&) = delete;
  void add(Waiter* w) noexcept {
    *tail_ = w;
    tail_ = &w->next;
  }
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  /// Ends the chain and hands it over.
  Waiter* take() noexcept {
    *tail_ = nullptr;
    Waiter* h = head_;
    head_ = nullptr;
    tail_ = &head_;
    return h;
  }

private:
  Waiter* head_ = nullptr;
  Waiter** tail_ = &head_;
};

/// Hands a pool worker's place to another thread for the duration of a real
/// block, so that tasks blocked in skein waits never starve the pool.
class BlockingGuard {
public:
  BlockingGuard() : hook_(tls.hook) {
    if (hook_) hook_->enter_blocking();
  }
  ~BlockingGuard() {
    if (hook_) hook_->leave_blocking();
  }
  BlockingGuard(const BlockingGuard&) = delete;
  BlockingGuard& operator=(const BlockingGuard&) = delete;

private:
  BlockingHook* hook_;
};

/// A blocked thread. (Sys: see OsParking; the model checker substitutes its own.)
template <class Sys = OsParking>
struct BasicThreadWaiter : Waiter {
  BasicParker<Sys> parker;
  // For the thread dump and the deadlock report: which wait, on what.
  const char* kind = nullptr;
  const void* object = nullptr;
  BasicThreadWaiter() noexcept {
    notify_fn = [](Waiter* w) noexcept { static_cast<BasicThreadWaiter*>(w)->parker.notify(); };
  }
};
using ThreadWaiter = BasicThreadWaiter<>;

enum class WaitStatus { ready, timeout, cancelled };

/// Thrown by a blocking wait that the deadlock detector failed.
[[noreturn]] inline void throw_deadlock(const char* kind) {
  throw Deadlock(std::string(kind ? kind : "a blocking wait") +
                 ": all goroutines are asleep - deadlock! (no running thread, armed timer or task could ever "
                 "release this wait; the report of every thread went to stderr)");
}

/// Blocks the calling thread until `w` is notified, the deadline passes or the
/// current task's stop token fires. `w` must already be enqueued. `withdraw()`
/// unlinks `w` under the primitive's lock and returns whether it was linked.
///
/// Cancellation withdraws at once, on the cancelling thread, as the
/// coroutine form does: the stop callback calls `withdraw()` and, if `w` was
/// still linked, moves the parker to `interrupted`. So a release that comes
/// after the cancel (`ctx.cancel(); sem.release();` on one thread) finds no
/// waiter and keeps its permit or item. `interrupted` therefore means
/// "withdrawn, nobody will notify"; a failed withdrawal means a notification
/// is on its way and is taken. (A cancel that lands while the waiter is still
/// registering its callback is seen at registration, as in the coroutine form.)
template <class Sys, class Withdraw>
WaitStatus block_wait(BasicThreadWaiter<Sys>& w, Withdraw&& withdraw, const Clock::time_point* deadline = nullptr,
                      bool observe_stop = true) {
  using P = BasicParker<Sys>;  // not `Parker`: that names BasicParker<> here
  const int spins = Sys::spin_budget();
  if (spins && w.parker.spin_while(P::kWaiting, spins) == P::kNotified) return WaitStatus::ready;

  // Once a withdrawal has failed, the outcome is settled by whoever unlinked
  // `w`: a notifier (ready) or the stop callback (cancelled).
  auto outcome = [&]() {
    for (auto s = w.parker.state();; s = w.parker.state()) {
      if (s == P::kNotified) return WaitStatus::ready;
      if (s == P::kInterrupted && !inject_late_withdraw<Sys>()) return WaitStatus::cancelled;
      w.parker.wait_while(s);
    }
  };
  auto give_up = [&](WaitStatus why) {
    SKEIN_FAULT_POINT();  // a notification may land just before the withdrawal
    if (withdraw()) return why;
    return outcome();
  };

  skein::stop_token tok = observe_stop ? current_token() : skein::stop_token{};
  if (tok.stop_requested() || (observe_stop && tls.draining)) return give_up(WaitStatus::cancelled);

  struct OnStop {
    std::remove_reference_t<Withdraw>* withdraw;
    P* p;
    void operator()() const noexcept {
      if constexpr (inject_late_withdraw<Sys>()) {
        p->interrupt();  // broken on purpose: leaves the withdrawal to the waiter, after a release
      } else if ((*withdraw)()) {
        p->interrupt();
      }
    }
  };
  std::uint32_t s = P::kWaiting;
  std::exception_ptr refused;
  {
    // With a token that cannot stop, this registers nothing. Its destructor
    // waits for a callback running on another thread.
    typename Sys::template StopCallback<OnStop> cb(std::move(tok), OnStop{&withdraw, &w.parker});
    // What the deadlock detector may do to fail this wait: what the stop
    // callback does (withdraw; if it was linked, interrupt).
    OnStop fail{&withdraw, &w.parker};
    const BlockInfo info{w.kind, w.object,
                         [](void* c) noexcept {
                           auto* f = static_cast<OnStop*>(c);
                           if (!(*f->withdraw)()) return false;
                           f->p->interrupt();
                           return true;
                         },
                         &fail};
    try {
      BlockingGuard guard;
      const BlockInfo* saved = tls_block;
      tls_block = &info;
      const bool traced = trace_hooks();
      if (traced) [[unlikely]]
        trace_block(w.kind, w.object);
      s = w.parker.wait_while(P::kWaiting, deadline, ParkKind::blocked);
      if (traced) [[unlikely]]
        trace_unblock();
      tls_block = saved;
    } catch (...) {  // the pool is at its thread bound: do not block, leave cleanly
      refused = std::current_exception();
    }
  }
  if (refused) {
    if (withdraw()) std::rethrow_exception(refused);
    // Already notified (an item may have been handed over: keep it), or
    // withdrawn by the stop callback (cancelled).
    return outcome();
  }
  if (s == P::kNotified) return WaitStatus::ready;
  if (s == P::kInterrupted) {
    if constexpr (inject_late_withdraw<Sys>()) return give_up(WaitStatus::cancelled);
    // Withdrawn by the stop callback, or by the deadlock detector.
    if constexpr (std::is_same_v<Sys, OsParking>)
      if (take_deadlock_verdict()) throw_deadlock(w.kind);
    return WaitStatus::cancelled;
  }
  // The deadline passed (the stop callback may have withdrawn `w` meanwhile).
  return give_up(WaitStatus::timeout);
}

/// A suspended coroutine waiting in a primitive. `phase` closes the window in
/// which await_suspend is still arming (registering its Canceller) while a
/// notifier or the Canceller already wants to resume the coroutine: whoever
/// comes second does the resuming. (DirectCoroWaiter avoids the window by
/// arming before it links.)
template <class Sys = OsParking>
struct BasicCoroWaiter : Waiter {
  static constexpr std::uint32_t kArming = 0, kArmed = 1, kFired = 2;
  typename Sys::template Atomic<std::uint32_t> phase{kArming};  // sits in Waiter's tail padding
  std::coroutine_handle<> handle{};
  Executor* executor = nullptr;

  BasicCoroWaiter() noexcept {
    is_coro = true;
    notify_fn = [](Waiter* w) noexcept { static_cast<BasicCoroWaiter*>(w)->fire(); };
  }
  /// Resumes the coroutine on its executor, unless await_suspend is still
  /// arming (it then returns false and the coroutine continues at once).
  void fire() noexcept {
    SKEIN_FAULT_POINT();
    // acq_rel: publishes the result written before fire() to the resumer, and
    // sees the arming writes made before await_suspend's exchange.
    const auto old = phase.exchange(kFired, std::memory_order_acq_rel);
    SKEIN_ASSERT(old != kFired, "a coroutine waiter is fired once (one notifier or one canceller)");
    if (old == kArmed) wake(handle, executor);
  }
  /// await_suspend's last step, once the waiter is linked: false if it was
  /// fired meanwhile (the coroutine then continues at once), true if it stays
  /// suspended until fire() resumes it.
  bool arm() noexcept { return phase.exchange(kArmed, std::memory_order_acq_rel) != kFired; }
  /// For a completer that wants to transfer to this coroutine itself (symmetric
  /// transfer): true if it now owns the resumption.
  bool claim() noexcept { return phase.exchange(kFired, std::memory_order_acq_rel) == kArmed; }
};
using CoroWaiter = BasicCoroWaiter<>;

/// A coroutine waiter that is linked only once its wait is fully armed (its
/// cancellation registered and checked under the primitive's lock): whoever
/// unlinks it, a notifier or its canceller, owns its resumption outright — no
/// arming race, so no phase word and no claim. After linking, the awaiter
/// touches nothing of itself: the coroutine may already be running elsewhere.
struct DirectCoroWaiter : Waiter {
  std::coroutine_handle<> handle{};
  Executor* executor = nullptr;
  DirectCoroWaiter() noexcept {
    is_coro = true;
    direct = true;
    notify_fn = [](Waiter* w) noexcept {
      auto* d = static_cast<DirectCoroWaiter*>(w);
      wake(d->handle, d->executor);
    };
  }
};

/// An executor that stops when idle (an EventLoop) must wait for a coroutine
/// suspended on it to come back: counted from await_suspend to await_resume.
class SuspensionCount {
public:
  void enter(Executor* ex) noexcept {
    if (ex && ex->outstanding) {
      counted_ = ex->outstanding;
      counted_->fetch_add(1, std::memory_order_relaxed);
    }
  }
  void leave() noexcept {
    if (counted_) {
      counted_->fetch_sub(1, std::memory_order_relaxed);
      counted_ = nullptr;
    }
  }

private:
  std::atomic<long>* counted_ = nullptr;
};

/// The scope whose stop cancels a wait that observes stop: the current task's.
inline const Scope* wait_scope(bool observe_stop) noexcept { return observe_stop ? tls.scope : nullptr; }

/// Stop plumbing for a coroutine awaiter built on CoroWaiter.
/// Usage in await_suspend: prepare, enqueue the waiter (under the primitive's
/// lock), then `return arm()`; in await_resume: `disarm()` then check
/// `waiter.cancelled`. The stop is observed through a Canceller registered
/// on the task's scope.
template <class Withdraw, class Sys = OsParking>
class CancellableCoroWait : Canceller {
  using CoroWaiter = BasicCoroWaiter<Sys>;

public:
  explicit CancellableCoroWait(Withdraw withdraw, bool observe_stop = true)
      : withdraw_(std::move(withdraw)), observe_stop_(observe_stop) {
    fn = [](Canceller* c) noexcept { static_cast<CancellableCoroWait*>(c)->on_stop(); };
  }

  void prepare(std::coroutine_handle<> h) noexcept {
    waiter.handle = h;
    waiter.executor = tls.executor;
    count_.enter(waiter.executor);
  }

  /// Call after enqueueing. Returns the value for await_suspend: false means
  /// "already fired, resume now".
  bool arm() noexcept {
    const Scope* s = wait_scope(observe_stop_);
    const bool stopped = (observe_stop_ && tls.draining) || (s && !s->add_canceller(this));
    if (stopped) {
      if (withdraw_()) {
        waiter.cancelled = true;
        return false;
      }
    } else {
      scope_ = s;
    }
    SKEIN_FAULT_POINT();                        // a notification may fire while this is still arming
    if constexpr (inject_lost_wakeup<Sys>()) {  // broken on purpose (the model checker's test)
      waiter.phase.store(CoroWaiter::kArmed, std::memory_order_release);
      return true;
    }
    return waiter.arm();
  }

  /// Call first in await_resume: waits out a stop callback running elsewhere.
  void disarm() noexcept {
    if (scope_) {
      scope_->remove_canceller(this);
      scope_ = nullptr;
    }
    count_.leave();  // back on the executor (or never left it)
  }

  CoroWaiter waiter;

private:
  void on_stop() noexcept {
    if (withdraw_()) {
      waiter.cancelled = true;
      waiter.fire();
    }
  }
  Withdraw withdraw_;
  bool observe_stop_;
  const Scope* scope_ = nullptr;
  SuspensionCount count_;
};

/// Throws Cancelled for the task running on this thread, carrying its
/// context's cancellation cause (and naming it in the message) if it has one.
[[noreturn]] inline void throw_cancelled(std::string what = "operation cancelled: the task's stop token fired") {
  std::exception_ptr cause = tls.scope ? tls.scope->cancel_cause() : nullptr;
  if (cause) what += " (cause: " + describe_error(cause) + ")";
  throw Cancelled(what, std::move(cause));
}

}  // namespace skein::detail
