#pragma once
// Shared shapes of a primitive's waits, so each primitive states only its own
// rules: try_now (the fast path), enqueue (link a waiter, or complete at once
// under the primitive's lock), withdraw (unlink for a cancel or a timeout) and
// result. A primitive whose waits need nothing but those (Mutex, Semaphore,
// RWLock, WaitGroup) gets both forms from its owner: block_on(owner, ...) for
// threads, OwnerWait<Owner, Policy> for coroutines.

#include <coroutine>
#include <type_traits>

#include "deadline.hpp"
#include "trace_core.hpp"
#include "waiter.hpp"

namespace skein::detail {

/// Coroutine awaiter skeleton (CRTP). Derived provides:
///   bool try_now();                 // fast path: done without waiting?
///   bool enqueue(CoroWaiter& w);    // under the lock: true = linked, false = done now
///                                   // (if it throws, it linked nothing)
///   bool withdraw(CoroWaiter& w);   // under the lock: true = was linked
///   R result();                     // after a successful wait
/// and may provide, for the tracing hooks (the default names Derived):
///   WaitReason trace_reason() const noexcept;  // {the primitive's kind, its address}
template <class Derived>
class WaitOperation {
public:
  explicit WaitOperation(bool observe_stop = true) noexcept : wait_(Withdraw{this}, observe_stop) {}
  WaitOperation(const WaitOperation&) = delete;
  WaitOperation& operator=(const WaitOperation&) = delete;

  bool await_ready() { return self().try_now(); }
  bool await_suspend(std::coroutine_handle<> h) {
    wait_.prepare(h);
    bool linked = false;
    try {
      linked = self().enqueue(wait_.waiter);
    } catch (...) {  // not linked (out of memory): the coroutine does not suspend
      wait_.disarm();
      throw;
    }
    if (!linked) return false;
    return wait_.arm();
  }
  decltype(auto) await_resume() {
    wait_.disarm();
    if (wait_.waiter.cancelled) throw_cancelled();
    return self().result();
  }
  [[nodiscard]] WaitReason trace_reason() const noexcept { return {type_name<Derived>(), this}; }

protected:
  ~WaitOperation() = default;
  CoroWaiter& waiter() noexcept { return wait_.waiter; }

private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
  struct Withdraw {
    WaitOperation* op;
    bool operator()() const noexcept { return op->self().withdraw(op->wait_.waiter); }
  };
  CancellableCoroWait<Withdraw> wait_;
};

/// Blocking counterpart: links a ThreadWaiter with `enqueue` (false = done at
/// once) and waits, cancellably, until notified or the deadline (block_wait).
template <class Enqueue, class Withdraw>
WaitStatus enqueue_and_block(ThreadWaiter& w, Enqueue&& enqueue, Withdraw&& withdraw,
                             const Clock::time_point* deadline = nullptr) {
  if (!enqueue(w)) return WaitStatus::ready;
  return block_wait(
      w, [&]() noexcept { return withdraw(w); }, deadline);
}

/// Throws Cancelled for a cancelled wait; returns whether it completed.
inline bool completed(WaitStatus s) {
  if (s == WaitStatus::cancelled) throw_cancelled();
  return s == WaitStatus::ready;
}

/// What the owner-driven helpers call on a primitive that befriends this:
///   bool wait_enqueue(Waiter& w) noexcept;   // under its lock: true = linked, false = done at once
///   bool wait_withdraw(Waiter& w) noexcept;  // under its lock: true = was linked
struct OwnerAccess {
  template <class Owner>
  static bool enqueue(Owner& o, Waiter& w) noexcept {
    return o.wait_enqueue(w);
  }
  template <class Owner>
  static bool withdraw(Owner& o, Waiter& w) noexcept {
    return o.wait_withdraw(w);
  }
  template <class Owner>
  static constexpr const char* kind() noexcept {
    return Owner::kWaitKind;
  }
};

/// The blocking form of an owner's wait: links a ThreadWaiter (with payload
/// `data`) and waits, cancellably, until notified or the deadline. Returns
/// whether the wait completed; throws Cancelled for a cancelled wait.
template <class Owner>
bool block_on(Owner& owner, const Clock::time_point* deadline, void* data = nullptr) {
  ThreadWaiter w;
  w.data = data;
  w.kind = OwnerAccess::kind<Owner>();
  w.object = &owner;
  return completed(enqueue_and_block(
      w, [&](Waiter& x) noexcept { return OwnerAccess::enqueue(owner, x); },
      [&](Waiter& x) noexcept { return OwnerAccess::withdraw(owner, x); }, deadline));
}

/// The coroutine form of an owner's wait. Policy gives the fast path, the
/// result and the waiter's payload:
///   static bool try_now(Owner&);  static R result(Owner&);  static void* data() noexcept;
template <class Owner, class Policy>
class [[nodiscard]] OwnerWait : public WaitOperation<OwnerWait<Owner, Policy>> {
public:
  explicit OwnerWait(Owner& o) noexcept : o_(o) { this->waiter().data = Policy::data(); }
  bool try_now() { return Policy::try_now(o_); }
  bool enqueue(Waiter& w) noexcept { return OwnerAccess::enqueue(o_, w); }
  bool withdraw(Waiter& w) noexcept { return OwnerAccess::withdraw(o_, w); }
  decltype(auto) result() { return Policy::result(o_); }
  [[nodiscard]] WaitReason trace_reason() const noexcept { return {type_name<Owner>(), &o_}; }

private:
  Owner& o_;
};

/// The default Policy parts: no payload.
struct NoWaitPayload {
  static void* data() noexcept { return nullptr; }
};

}  // namespace skein::detail
