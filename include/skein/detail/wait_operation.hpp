#pragma once
// Shared shapes of a primitive's waits, so each primitive states only its own
// rules: try_now (the fast path), enqueue (link a waiter, or complete at once
// under the primitive's lock), withdraw (unlink for a cancel or a timeout) and
// result.

#include <coroutine>
#include <type_traits>

#include "deadline.hpp"
#include "waiter.hpp"

namespace skein::detail {

/// Coroutine awaiter skeleton (CRTP). Derived provides:
///   bool try_now();                 // fast path: done without waiting?
///   bool enqueue(CoroWaiter& w);    // under the lock: true = linked, false = done now
///                                   // (if it throws, it linked nothing)
///   bool withdraw(CoroWaiter& w);   // under the lock: true = was linked
///   R result();                     // after a successful wait
template <class Derived>
class WaitOperation {
public:
  WaitOperation() noexcept : wait_(Withdraw{this}) {}
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
/// once) and waits, cancellably, until notified or the deadline.
template <class Enqueue, class Withdraw>
WaitStatus wait_blocking(ThreadWaiter& w, Enqueue&& enqueue, Withdraw&& withdraw,
                         const Clock::time_point* deadline = nullptr) {
  if (!enqueue(w)) return WaitStatus::ready;
  return block_wait(w, [&]() noexcept { return withdraw(w); }, deadline);
}

/// Throws Cancelled for a cancelled wait; returns whether it completed.
inline bool completed(WaitStatus s) {
  if (s == WaitStatus::cancelled) throw_cancelled();
  return s == WaitStatus::ready;
}

}  // namespace skein::detail
