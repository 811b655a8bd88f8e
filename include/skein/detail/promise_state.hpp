#pragma once
// The shared state behind a Promise<T>: the result (stored once), the list of
// waiters, and a reference count of handles plus one for the producer (the
// running coroutine, or a resolver). It lives inside the coroutine frame of a
// coroutine task (one allocation per task) or on the heap for promises settled
// by hand (when_all, work, the script binding).

#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "assert.hpp"
#include "error_types.hpp"
#include "fault.hpp"
#include "runtime.hpp"
#include "spin.hpp"
#include "waiter.hpp"

namespace skein::detail {

class PromiseStateBase {
public:
  PromiseStateBase() = default;
  PromiseStateBase(const PromiseStateBase&) = delete;
  PromiseStateBase& operator=(const PromiseStateBase&) = delete;

  void retain() noexcept { handles_.fetch_add(1, std::memory_order_relaxed); }

  /// Drops a handle. The last one reports an error nobody observed and
  /// destroys the state, if the producer is gone; otherwise it leaves that to
  /// the producer (kHandlesGone). The last handle of a task that has finished
  /// but not yet let go (kFinished) reports before this returns.
  void release() noexcept {
    SKEIN_FAULT_POINT();
    const auto h = handles_.load(std::memory_order_acquire);
    SKEIN_ASSERT(h > 0, "a promise state is released only while referenced");
    if (h == 1) {
      const auto s = state_.load(std::memory_order_acquire);
      // Ours is the only handle (nobody can make another) and the producer is
      // gone: no locked instruction is needed to drop it.
      if (!(s & kProducer)) return destroy_last();
      // The finished producer and this handle are all that is left: report
      // while ours keeps the state alive (the producer may be letting go now).
      if (s & kFinished) report_unobserved();
    }
    SKEIN_FAULT_POINT();  // the producer may finish (kFinished) right here
    if (handles_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    // The last handle: destroy if the producer is gone, else leave it the state.
    auto s = state_.load(std::memory_order_acquire);
    for (unsigned i = 0;;) {
      if (!(s & kProducer)) return destroy_last();
      if (s & kLocked) {  // not expected (a waiter holds a handle), but never clobber a lock holder
        spin_wait_step(i);
        s = state_.load(std::memory_order_acquire);
        continue;
      }
      // A finished producer that saw no kHandlesGone left the report to us:
      // deliver it before we let go (the producer may destroy right after).
      if (s & kFinished) report_unobserved();
      if (state_.compare_exchange_weak(s, s | kHandlesGone, std::memory_order_acq_rel, std::memory_order_acquire))
        return;
    }
  }

  /// The producer lets go (after settle and report_if_orphaned): destroys the
  /// state if no handle is left, else leaves that to the last handle.
  void release_producer() noexcept {
    auto s = state_.load(std::memory_order_acquire);
    for (;;) {
      // No handle left (a spawn): none can appear, so no locked instruction.
      if (s & kHandlesGone) return destroy_last();
      if (state_.compare_exchange_weak(s, s & ~kProducer, std::memory_order_acq_rel, std::memory_order_acquire)) return;
    }
  }

  /// A producer's settle and release in one CAS, when no waiter is linked and
  /// the task did not fail (most tasks of a fork-join program: their parent
  /// is not waiting yet). False (nothing done) otherwise: then settle(),
  /// report_if_orphaned() and release_producer() as usual. After true the
  /// state may be gone: the caller touches it no more.
  bool try_settle_alone() noexcept {
    if (error_) return false;
    auto s = state_.load(std::memory_order_relaxed);
    for (unsigned i = 0;;) {
      SKEIN_ASSERT(!(s & kReady), "a promise state is settled once");
      if (s & kWaiters) return false;
      if (s & kLocked) {  // a waiter is being linked (kWaiters comes next) or withdrawn
        spin_wait_step(i);
        s = state_.load(std::memory_order_relaxed);
        continue;
      }
      // acq_rel: publishes the result; sees the last handle's kHandlesGone.
      if (state_.compare_exchange_weak(s, (s | kReady) & ~kProducer, std::memory_order_acq_rel,
                                       std::memory_order_relaxed))
        break;
    }
    if (s & kHandlesGone) destroy_last();  // no handle was left
    return true;
  }

  /// A coroutine that ends before it ever suspended: the handle that
  /// get_return_object made is still on its way to the caller, so no other
  /// thread can see this state. Settles it and lets go with a plain store.
  void finish_unshared() noexcept {
    SKEIN_ASSERT(waiters_.empty() && handles_.load(std::memory_order_relaxed) == 1 &&
                     state_.load(std::memory_order_relaxed) == kProducer,
                 "a coroutine that never suspended has only its return object's handle");
    state_.store(kReady, std::memory_order_relaxed);
  }

private:
  void report_unobserved() noexcept {
    if (error_ && !observed_.exchange(true, std::memory_order_relaxed) && !is_cancellation(error_))
      report_unhandled(error_);
  }

  void destroy_last() noexcept {
    report_unobserved();
    // Destroying a frame destroys the Promises it holds, which may destroy
    // their frames in turn: a chain of a million tasks, each holding the
    // previous one, would recurse a million deep. Nested destructions are
    // queued and run by the outermost one, in constant stack.
    struct Graveyard {
      PromiseStateBase* head = nullptr;
      bool active = false;
    };
    static thread_local Graveyard g;
    if (g.active) {
      next_dead_ = g.head;
      g.head = this;
      return;
    }
    g.active = true;
    destroy_(this);
    while (PromiseStateBase* d = g.head) {
      g.head = d->next_dead_;
      d->destroy_(d);
    }
    g.active = false;
  }

public:
  /// Called by a finishing task after it settled, before its accounting:
  /// if its own frame holds the only reference (no handle exists, so none
  /// can ever appear) and it failed, the error is reported now — so that
  /// whoever waits for the task's context (Context::wait) sees the report
  /// delivered. Otherwise the last handle to go reports it (release()), on
  /// its own thread: a handle dropped before Context::wait (spawn's) has
  /// reported by the time the wait returns, however the two threads race.
  ///
  /// Only a failed task has anything to report: a task that succeeded skips
  /// this (and kFinished) entirely, which saves a locked instruction per task.
  void report_if_orphaned() noexcept {
    if (!error_) return;
    const auto old = state_.fetch_or(kFinished, std::memory_order_acq_rel);
    if (old & kHandlesGone) report_unobserved();
  }

  [[nodiscard]] bool ready() const noexcept {
    // acquire: pairs with settle()'s release, so the result is visible.
    return (state_.load(std::memory_order_acquire) & kReady) != 0;
  }

  /// Links `w` unless already settled; returns false if settled.
  bool enqueue(Waiter* w) noexcept { return enqueue_unless_stopped(w, nullptr) == Link::linked; }

  enum class Link { linked, ready, stopped };
  /// Links `w` unless the state is settled or `scope` (if any) is stopped,
  /// checked under the lock: a canceller that stops the scope and then
  /// withdraws `w` (under the same lock) either finds it linked or was seen
  /// here. So a DirectCoroWaiter linked here is fully armed.
  Link enqueue_unless_stopped(Waiter* w, const Scope* scope) noexcept {
    if (!lock_unless_ready()) return Link::ready;
    if (scope && scope->stop_requested()) {
      unlock();
      return Link::stopped;
    }
    waiters_.push_back(w);
    unlock();
    return Link::linked;
  }

  /// Unlinks `w`; false if it was not linked (settled: its notification is
  /// on its way, and the settler owns the list).
  bool withdraw(Waiter* w) noexcept {
    if (!lock_unless_ready()) return false;
    const bool was = waiters_.remove(w);
    unlock();
    return was;
  }

  /// Marks the state settled and returns the waiters to notify. One locked
  /// instruction: the settler locks the word, takes the list, and publishes
  /// kReady with a plain store that also unlocks it. The list is taken before
  /// kReady is seen: a handle that sees kReady may destroy the state at once
  /// (a Resolver's owner may destroy it as soon as its promise is ready, while
  /// resolve() is still returning on another thread: TSan found the settler
  /// emptying the list of a state already freed).
  Waiter* settle() noexcept {
    auto s = state_.load(std::memory_order_relaxed);
    for (unsigned i = 0;;) {
      SKEIN_ASSERT(!(s & kReady), "a promise state is settled once");
      if (s & kLocked) {
        spin_wait_step(i);
        s = state_.load(std::memory_order_relaxed);
        continue;
      }
      // acquire: sees the last unlock's list.
      if (state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) break;
    }
    Waiter* w = waiters_.take_all();
    SKEIN_FAULT_POINT();  // locked, list taken, kReady not yet published
    // release: publishes the result. Nobody else changes the word while it is
    // locked (see unlock()).
    state_.store((s | kReady) & ~kWaiters, std::memory_order_release);
    return w;
  }

  /// Settles and notifies every waiter (for states settled by hand).
  void settle_and_notify() noexcept { WaiterList::notify_chain(settle()); }

  [[nodiscard]] bool failed() const noexcept { return error_ != nullptr; }
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }
  void set_error(std::exception_ptr e) noexcept { error_ = std::move(e); }

  /// Rethrows the stored error, marking it observed.
  void rethrow_if_failed() const {
    if (error_) {
      observed_.store(true, std::memory_order_relaxed);
      std::rethrow_exception(error_);
    }
  }
  void mark_observed() const noexcept { observed_.store(true, std::memory_order_relaxed); }

  /// A coroutine called directly (`co_await child(args)`) inside a task bound
  /// to a context records that context. Awaiting it from the same context is
  /// not cancellable: the child sees the same stop token and ends promptly on
  /// its own, and its parent must not leave first — the child may refer to
  /// the parent's locals, and Context::wait counts the parent, not the child.
  void set_child_of(const void* scope) noexcept {
    link_ = scope;
    link_kind_ = kChildOf;
  }
  [[nodiscard]] bool is_child_of(const void* scope) const noexcept {
    return scope && link_kind_ == kChildOf && link_ == scope;
  }

  /// A state that only a single-threaded executor settles, on its own thread
  /// (EventLoop::spawn's and work()'s promises): a blocking wait for it from
  /// that thread could never end (Promise::get throws UsageError instead).
  void set_settled_on(const void* executor) noexcept {
    link_ = executor;
    link_kind_ = kSettledOn;
  }
  [[nodiscard]] const void* settled_on() const noexcept { return link_kind_ == kSettledOn ? link_ : nullptr; }

  static bool is_cancellation(const std::exception_ptr& e) noexcept {
    try {
      std::rethrow_exception(e);
    } catch (const Cancelled&) {
      return true;
    } catch (...) {
      return false;
    }
  }

protected:
  ~PromiseStateBase() = default;
  /// For a coroutine's promise, before anyone else can see it: counts the
  /// handle that get_return_object makes (which adopts it rather than adding
  /// one with a locked instruction).
  void count_first_handle() noexcept { handles_.store(1, std::memory_order_relaxed); }
  void (*destroy_)(PromiseStateBase*) noexcept = nullptr;

private:
  /// The waiter list's lock, taken only while the state is unsettled; false
  /// (and not taken) once it is settled.
  bool lock_unless_ready() noexcept {
    auto s = state_.load(std::memory_order_acquire);
    for (unsigned i = 0;;) {
      if (s & kReady) return false;
      if (!(s & kLocked)) {
        if (state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire, std::memory_order_acquire))
          return true;
        continue;
      }
      spin_wait_step(i);
      s = state_.load(std::memory_order_acquire);
    }
  }
  /// A plain store, saying whether a waiter is linked: while the lock is held
  /// nobody else changes the word (settling waits for the lock, and whoever
  /// links or withdraws a waiter holds a handle, so kHandlesGone cannot come).
  void unlock() noexcept {
    const auto s = state_.load(std::memory_order_relaxed);
    state_.store((s & ~(kLocked | kWaiters)) | (waiters_.empty() ? 0 : kWaiters), std::memory_order_release);
  }

  // The state word: the waiter list's lock, whether a waiter is linked,
  // settled, kFinished (a failed task has settled and checked for an
  // orphaned error, report_if_orphaned), whether the producer (the running
  // coroutine, or a Resolver) still holds the state, and whether every handle
  // is gone. Whichever of the producer and the last handle goes second
  // destroys the state; a producer nobody waits for settles and lets go in
  // one CAS (try_settle_alone).
  static constexpr std::uint32_t kLocked = 1, kReady = 2, kWaiters = 4, kFinished = 8, kProducer = 16,
                                 kHandlesGone = 32;
  std::atomic<std::uint32_t> state_{kProducer};
  std::atomic<std::uint32_t> handles_{0};  // the Promise handles
  mutable std::atomic<bool> observed_{false};
  static constexpr std::uint8_t kNoLink = 0, kChildOf = 1, kSettledOn = 2;
  std::uint8_t link_kind_ = kNoLink;  // what link_ is, while alive
  WaiterList waiters_;
  std::exception_ptr error_;
  union {
    const void* link_ = nullptr;   // while alive: see set_child_of, set_settled_on
    PromiseStateBase* next_dead_;  // once dead: destroy_last's queue
  };
};

template <class T>
class PromiseState : public PromiseStateBase {
public:
  template <class... A>
  void set_value(A&&... a) {
    value_.emplace(std::forward<A>(a)...);
  }
  /// Settled state only.
  const T& value() const& {
    rethrow_if_failed();
    return *value_;
  }
  T take_value() {
    rethrow_if_failed();
    return std::move(*value_);
  }

protected:
  ~PromiseState() = default;

private:
  std::optional<T> value_;
};

template <>
class PromiseState<void> : public PromiseStateBase {
public:
  void set_value() noexcept {}
  void value() const { rethrow_if_failed(); }
  void take_value() { rethrow_if_failed(); }

protected:
  ~PromiseState() = default;
};

/// A heap state settled by hand.
template <class T>
class ManualState final : public PromiseState<T> {
public:
  ManualState() noexcept {
    this->count_first_handle();  // the Resolver's own: no handle count reaches zero while it can make more
    this->destroy_ = [](PromiseStateBase* s) noexcept { delete static_cast<ManualState*>(s); };
  }
};

}  // namespace skein::detail
