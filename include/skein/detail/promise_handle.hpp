#pragma once
// Promise<T> (an eager, shareable handle to a task's result and the return
// type of skein coroutines) and Resolver<T>, for <skein/promise.hpp> and the
// detail headers that need the complete type (which include no public header).

#include <chrono>
#include <coroutine>
#include <thread>
#include <type_traits>
#include <utility>

#include "coro_promise.hpp"
#include "deadline.hpp"
#include "error_types.hpp"
#include "fwd.hpp"
#include "promise_state.hpp"
#include "waiter.hpp"

namespace skein {

namespace detail {
template <class T>
Promise<T> make_promise(PromiseState<T>* st) noexcept;
template <class T>
Promise<T> adopt_promise(PromiseState<T>* st) noexcept;
template <class T>
PromiseState<T>* state_of(const Promise<T>& p) noexcept;
template <class T>
void wait_settled_ignoring_stop(const Promise<T>& p) noexcept;
}  // namespace detail

template <class T>
class [[nodiscard]] Promise {
  static_assert(!std::is_reference_v<T>, "Promise<T&> is not supported: use std::reference_wrapper<T>");

public:
  using value_type = T;
  using promise_type = detail::CoroPromise<T>;

  /// An empty handle (get/wait on it throw UsageError).
  Promise() noexcept = default;
  Promise(const Promise& o) noexcept : st_(o.st_) {
    if (st_) st_->retain();
  }
  Promise(Promise&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  Promise& operator=(Promise o) noexcept {
    std::swap(st_, o.st_);
    return *this;
  }
  ~Promise() {
    if (st_) st_->release();
  }

  /// True if this handle refers to a task.
  [[nodiscard]] bool valid() const noexcept { return st_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  /// True once the task has settled (value or error). Never blocks.
  [[nodiscard]] bool ready() const noexcept { return st_ && st_->ready(); }

  /// Blocks until settled; returns the value (a copy) or rethrows the task's
  /// exception. Any number of calls, from any thread. Throws Cancelled if the
  /// calling task is cancelled first.
  T get() const& {
    static_assert(std::is_void_v<T> || std::is_copy_constructible_v<T>,
                  "Promise<T>::get() on an lvalue copies the value, and this T cannot be copied: "
                  "call std::move(promise).get() to move it out");
    block(nullptr);
    if constexpr (std::is_void_v<T>)
      st_->value();
    else
      return st_->value();
  }
  /// As get(), but moves the value out of the shared state (for move-only T;
  /// other handles to the same task then see a moved-from value).
  T get() && {
    block(nullptr);
    return st_->take_value();
  }

  /// Blocks until settled; discards the value; rethrows the task's exception.
  void wait() const {
    block(nullptr);
    st_->rethrow_if_failed();
  }

  /// Blocks for at most `d`; true if settled. Does not rethrow.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) const {
    auto deadline = detail::deadline_after(d);
    return block(&deadline);
  }

  /// `co_await p` copies the value; `co_await std::move(p)` (or a temporary) moves it.
  auto operator co_await() const& {
    check();
    return detail::PromiseAwaiter<T, false>(st_, cancellable_wait());
  }
  auto operator co_await() && {
    check();
    return detail::PromiseAwaiter<T, true>(st_, cancellable_wait());
  }

private:
  template <class, class>
  friend class detail::CoroPromiseBase;
  template <class U>
  friend Promise<U> detail::make_promise(detail::PromiseState<U>*) noexcept;
  template <class U>
  friend Promise<U> detail::adopt_promise(detail::PromiseState<U>*) noexcept;
  template <class U>
  friend detail::PromiseState<U>* detail::state_of(const Promise<U>&) noexcept;
  template <class U>
  friend void detail::wait_settled_ignoring_stop(const Promise<U>&) noexcept;

  explicit Promise(detail::PromiseState<T>* st) noexcept : st_(st) { st_->retain(); }
  struct Adopt {};
  static constexpr Adopt adopt{};
  Promise(detail::PromiseState<T>* st, Adopt) noexcept : st_(st) {}

  void check() const {
    if (!st_) throw UsageError("use of an empty Promise");
  }

  /// A child coroutine of the calling task's context is waited for even if
  /// the task is cancelled: it observes the same token and ends by itself,
  /// and it may use the caller's locals. Not while an executor that is
  /// shutting down drains its last coroutines: every wait gives up then.
  bool cancellable_wait() const noexcept { return detail::tls.draining || !st_->is_child_of(detail::tls.scope); }

  bool block(const detail::Clock::time_point* deadline, bool observe_stop = true) const {
    check();
    if (st_->ready()) return true;
    if (const void* ex = st_->settled_on(); ex && ex == detail::tls.executor)
      throw UsageError(
          "Promise::get()/wait() on an EventLoop's own thread, for a result that only this loop delivers "
          "(EventLoop::spawn, work()), would wait forever: co_await it from a coroutine on the loop instead");
    detail::ThreadWaiter w;
    w.kind = "Promise::get";
    w.object = st_;
    if (!st_->enqueue(&w)) return true;
    observe_stop = observe_stop && cancellable_wait();
    auto s = detail::block_wait(
        w, [&]() noexcept { return st_->withdraw(&w); }, deadline, observe_stop);
    if (s == detail::WaitStatus::cancelled) detail::throw_cancelled();
    return s == detail::WaitStatus::ready;
  }

  detail::PromiseState<T>* st_ = nullptr;
};

namespace detail {

template <class T>
Promise<T> make_promise(PromiseState<T>* st) noexcept {
  return Promise<T>(st);
}
/// A handle that takes over a reference already counted for it.
template <class T>
Promise<T> adopt_promise(PromiseState<T>* st) noexcept {
  return Promise<T>(st, Promise<T>::adopt);
}
template <class T>
PromiseState<T>* state_of(const Promise<T>& p) noexcept {
  return p.st_;
}
/// Waits until `p` settles, whatever the calling task's stop token says: for
/// owners that must not return while a task they started still runs.
template <class T>
void wait_settled_ignoring_stop(const Promise<T>& p) noexcept {
  if (!p.st_) return;
  try {
    (void)p.block(nullptr, false);
  } catch (...) {  // the pool's thread bound: wait without handing off
    while (!p.st_->ready()) std::this_thread::yield();
  }
}

template <class T, class Derived>
Promise<T> CoroPromiseBase<T, Derived>::get_return_object() noexcept {
  // Adopts the reference the constructor counted (count_first_handle).
  return adopt_promise<T>(static_cast<PromiseState<T>*>(this));
}

}  // namespace detail

/// The producer side of a promise settled by hand (JavaScript's
/// Promise.withResolvers): hand out promise(), later resolve() or reject().
/// A Resolver destroyed unsettled rejects its promise with Cancelled, so no
/// waiter hangs.
template <class T>
class Resolver {
public:
  Resolver() : st_(new detail::ManualState<T>()) {}
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;
  Resolver(Resolver&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  ~Resolver() {
    if (st_) {  // never settled: the promise fails rather than hanging its waiters
      if (!st_->ready()) {
        std::exception_ptr e;
        try {
          e = std::make_exception_ptr(Cancelled("promise abandoned: its producer went away"));
        } catch (...) {  // no memory for the message: the promise fails with std::bad_alloc
          e = std::current_exception();
        }
        st_->set_error(std::move(e));
        st_->settle_and_notify();
      }
      st_->release_producer();  // the producer goes ...
      st_->release();           // ... and so does the Resolver's own handle
    }
  }
  Promise<T> promise() const noexcept { return detail::make_promise<T>(st_); }
  /// Settles with a value. Settling twice is a UsageError.
  template <class... A>
  void resolve(A&&... a) {
    check_unsettled();
    st_->set_value(std::forward<A>(a)...);
    st_->settle_and_notify();
  }
  /// Settles with an error. Settling twice is a UsageError.
  void reject(std::exception_ptr e) {
    check_unsettled();
    st_->set_error(std::move(e));
    st_->settle_and_notify();
  }
  [[nodiscard]] bool settled() const noexcept { return st_->ready(); }

private:
  void check_unsettled() const {
    if (!st_) throw UsageError("use of a moved-from Resolver");
    if (st_->ready()) throw UsageError("the promise of this Resolver is already settled");
  }
  detail::ManualState<T>* st_;
};

}  // namespace skein
