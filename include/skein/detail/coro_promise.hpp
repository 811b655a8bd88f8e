#pragma once
// The coroutine machinery of Promise<T>: the promise_type with its
// symmetric-transfer final awaiter, the await_transform that restores the
// task's scope (stop token) after every resumption, and the awaiter that
// suspends on another Promise.

#include <coroutine>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "concepts.hpp"
#include "frame_alloc.hpp"
#include "promise_state.hpp"
#include "runtime.hpp"
#include "trace_core.hpp"
#include "wait_operation.hpp"
#include "waiter.hpp"

namespace skein::detail {

template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (HasMemberCoAwait<A>)
    return std::forward<A>(a).operator co_await();
  else if constexpr (HasFreeCoAwait<A>)
    return operator co_await(std::forward<A>(a));
  else
    return std::forward<A>(a);
}

/// What a wait tells the tracing hooks about itself: its own trace_reason()
/// (a skein primitive's kind and address), else the awaiter's type.
template <class Inner>
WaitReason wait_reason_of(Inner& a) noexcept {
  if constexpr (requires { a.trace_reason(); })
    return a.trace_reason();
  else
    return WaitReason{type_name<std::remove_cvref_t<Inner>>(), nullptr};
}

/// Wraps an awaiter so that, when the coroutine resumes, the thread's current
/// scope is the coroutine's own (or, for coroutines not bound to a context,
/// the scope of the executor it now runs on). Also the suspend and resume
/// events of the tracing hooks.
template <class Inner, class P>
class ScopedAwaiter {
public:
  template <class A>
  ScopedAwaiter(A&& a, P* p) : inner_(get_awaiter(std::forward<A>(a))), p_(p) {}

  bool await_ready() noexcept(noexcept(std::declval<Inner&>().await_ready())) { return inner_.await_ready(); }
  // The traced forms are functions of their own, entered with one test of
  // the hooks: the untraced path stays what it was.
  template <class H>
  decltype(auto) await_suspend(H h) noexcept(noexcept(std::declval<Inner&>().await_suspend(h))) {
    h.promise().note_suspended();  // first: once suspended, it may be resumed (and end) elsewhere
    if (trace_hooks()) [[unlikely]]
      return suspend_traced(h);
    return inner_.await_suspend(h);
  }
  decltype(auto) await_resume() {
    if (trace_hooks()) [[unlikely]]
      return resume_traced();
    set_task_scope(p_->scope_);
    return inner_.await_resume();
  }

private:
  template <class H>
  [[gnu::cold, gnu::noinline]] decltype(auto) suspend_traced(H h) noexcept(
      noexcept(std::declval<Inner&>().await_suspend(h))) {
    // Before the wait is linked: once it is, it may be resumed (traced) elsewhere.
    trace_suspend(p_->trace_task_, wait_reason_of(inner_), h.address());
    return inner_.await_suspend(h);
  }
  [[gnu::cold, gnu::noinline]] decltype(auto) resume_traced() {
    set_task_scope(p_->scope_);
    trace_resume(p_->trace_task_, std::coroutine_handle<P>::from_promise(*p_).address());
    return inner_.await_resume();
  }

  Inner inner_;  // a value for operator co_await results, else a reference to the awaiter
  P* p_;         // the coroutine's promise: its scope and its task
};

struct FinalAwaiterBase {
  /// Wakes the waiters taken from a settled state. One coroutine waiter that
  /// may run on this thread is returned for symmetric transfer; the rest are
  /// woken on their executors.
  static std::coroutine_handle<> wake_all(Waiter* w) noexcept {
    std::coroutine_handle<> next{};
    while (w) {
      Waiter* n = w->next;
      if (!next && w->direct) {
        auto* dw = static_cast<DirectCoroWaiter*>(w);
        if (dw->executor == nullptr || dw->executor == tls.executor) {
          next = dw->handle;  // unlinked by us, so ours to resume
          w = n;
          continue;
        }
      } else if (!next && w->is_coro) {
        auto* cw = static_cast<CoroWaiter*>(w);
        if (cw->executor == nullptr || cw->executor == tls.executor) {
          // A failed claim means the waiter was still arming: claim() fired
          // it and its await_suspend resumes it. It must not be touched again.
          if (cw->claim()) next = cw->handle;
          w = n;
          continue;
        }
      }
      w->notify();
      w = n;
    }
    if (next && trace_hooks()) [[unlikely]]
      trace_wake(next.address());  // the one woken by transfer (the others' events come from wake())
    return next;
  }
};

template <class T>
class ReturnOps : public PromiseState<T> {
public:
  template <class U = T>
  void return_value(U&& v) {
    this->set_value(std::forward<U>(v));
  }

protected:
  ~ReturnOps() = default;
};
template <>
class ReturnOps<void> : public PromiseState<void> {
public:
  void return_void() noexcept {}

protected:
  ~ReturnOps() = default;
};

template <class T, class Derived>
class CoroPromiseBase : public ReturnOps<T>, public FrameCached {  // frames from the frame cache
public:
  CoroPromiseBase() noexcept {
    this->count_first_handle();  // get_return_object's
    this->destroy_ = [](PromiseStateBase* s) noexcept {
      std::coroutine_handle<Derived>::from_promise(*static_cast<Derived*>(s)).destroy();
    };
  }

  Promise<T> get_return_object() noexcept;
  std::suspend_never initial_suspend() const noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Derived> h) noexcept {
      Derived& p = h.promise();
      if (!p.suspended_) {
        // Never suspended (a leaf called directly): nobody can be waiting, nor
        // hold a handle but the caller, who has not received it yet.
        p.finish_unshared();
        return std::noop_coroutine();
      }
      // Nobody waits (yet): one CAS; the frame may be gone right after it.
      if (p.try_settle_alone()) return std::noop_coroutine();
      // Settle first (an observer that sees it finished sees its result),
      // report an error nobody can observe, then wake the waiters.
      Waiter* waiters = p.settle();
      SKEIN_FAULT_POINT();  // settled, not yet accounted: observers may look now
      p.report_if_orphaned();
      std::coroutine_handle<> next = FinalAwaiterBase::wake_all(waiters);
      p.release_producer();  // may destroy the frame: nothing touches `p` after this
      return next ? continue_with(next) : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }

  void unhandled_exception() noexcept { this->set_error(std::current_exception()); }

  template <class A>
  auto await_transform(A&& a) {
    static_assert(Awaitable<A>,
                  "co_await on something that is not awaitable. A blocking skein call returns its result, not an "
                  "awaitable: in a coroutine use its async form - co_await q.async_get() / q.async_put(v), "
                  "m.async_lock(), s.async_acquire(), wg.async_wait(), skein::async_sleep(d), or co_await the "
                  "Promise itself (not p.get())");
    using Inner = std::conditional_t<HasMemberCoAwait<A> || HasFreeCoAwait<A>,
                                     std::remove_cvref_t<decltype(get_awaiter(std::declval<A>()))>, A&&>;
    return ScopedAwaiter<Inner, Derived>(std::forward<A>(a), static_cast<Derived*>(this));
  }

  void note_suspended() noexcept { suspended_ = true; }

protected:
  template <class, class>
  friend class ScopedAwaiter;
  ~CoroPromiseBase() {
    if (scope_) scope_->release();
  }
  Scope* scope_ = nullptr;  // retained context, or null
  // The trace id of the task that runs the coroutine: taken from the thread
  // at its first suspension while tracing (until then it runs where it was
  // called, in that task's slice); 0 if none.
  std::uint64_t trace_task_ = 0;
  // Whether the coroutine has suspended (or was started elsewhere, as a task
  // is): until then its state is private to the calling thread.
  bool suspended_ = false;
};

/// promise_type of a skein coroutine: starts eagerly on the calling thread.
template <class T>
class CoroPromise final : public CoroPromiseBase<T, CoroPromise<T>> {
public:
  CoroPromise() noexcept {
    // A coroutine called inside a context-bound task belongs to that context.
    if (tls.scope && tls.scope->is_context) {
      this->scope_ = const_cast<Scope*>(tls.scope);
      this->scope_->retain();
      this->set_child_of(this->scope_);
    }
  }
};

/// `co_await promise`: suspends without blocking a thread; cancellable unless
/// the promise is a child of the awaiting task's context (see
/// PromiseStateBase::set_child_of: it must not be left behind).
///
/// The hot wait of every fork-join program, so it is armed before it is
/// linked (DirectCoroWaiter): its Canceller is registered first, and the
/// scope's stop is checked under the state's lock as the waiter is linked.
/// The settler then resumes it (often by symmetric transfer) with no claim.
/// Locked instructions: the registration, the link, the removal.
template <class T, bool Move>
class PromiseAwaiter : Canceller {
public:
  PromiseAwaiter(PromiseState<T>* st, bool cancellable) noexcept : st_(st), cancellable_(cancellable) {
    fn = [](Canceller* c) noexcept { static_cast<PromiseAwaiter*>(c)->on_stop(); };
  }
  PromiseAwaiter(const PromiseAwaiter&) = delete;
  PromiseAwaiter& operator=(const PromiseAwaiter&) = delete;

  bool await_ready() const noexcept { return st_->ready(); }
  [[nodiscard]] WaitReason trace_reason() const noexcept { return {"skein::Promise", st_}; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    waiter_.handle = h;
    waiter_.executor = tls.executor;
    if (cancellable_ && tls.draining) {
      waiter_.cancelled = true;
      return false;
    }
    const Scope* s = wait_scope(cancellable_);
    if (s && !s->add_canceller(this)) {
      waiter_.cancelled = true;  // stopped already
      return false;
    }
    scope_ = s;
    count_.enter(waiter_.executor);
    switch (st_->enqueue_unless_stopped(&waiter_, s)) {
      case PromiseStateBase::Link::linked:
        return true;  // from here on the coroutine may be running elsewhere: touch nothing
      case PromiseStateBase::Link::stopped: waiter_.cancelled = true; break;
      case PromiseStateBase::Link::ready: break;
    }
    disarm();
    return false;
  }
  decltype(auto) await_resume() {
    disarm();
    if (waiter_.cancelled) throw_cancelled();
    if constexpr (std::is_void_v<T>)
      st_->value();
    else if constexpr (Move)
      return st_->take_value();
    else
      return T(st_->value());
  }

private:
  void disarm() noexcept {
    if (scope_) {
      scope_->remove_canceller(this);  // waits out on_stop running elsewhere
      scope_ = nullptr;
    }
    count_.leave();
  }
  void on_stop() noexcept {
    if (st_->withdraw(&waiter_)) {  // unlinked by us: ours to resume
      waiter_.cancelled = true;
      wake(waiter_.handle, waiter_.executor);
    }
  }

  PromiseState<T>* st_;
  const Scope* scope_ = nullptr;
  DirectCoroWaiter waiter_;
  SuspensionCount count_;
  bool cancellable_;
};

/// run_task awaiting its own coroutine function: not cancellable (the
/// coroutine observes the same stop token itself, and its captures live in
/// run_task's frame), so no Canceller — a smaller frame per task.
template <class T>
class ForwardAwaiter {
public:
  explicit ForwardAwaiter(PromiseState<T>* st) noexcept : st_(st) {}
  ForwardAwaiter(const ForwardAwaiter&) = delete;
  ForwardAwaiter& operator=(const ForwardAwaiter&) = delete;

  bool await_ready() const noexcept { return st_->ready(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    waiter_.handle = h;
    waiter_.executor = tls.executor;
    return st_->enqueue(&waiter_);  // linked fully armed: not cancellable, nothing else to arm
  }
  decltype(auto) await_resume() {
    if constexpr (std::is_void_v<T>)
      st_->value();
    else
      return st_->take_value();
  }

private:
  PromiseState<T>* st_;
  DirectCoroWaiter waiter_;
};

}  // namespace skein::detail
