#pragma once
// The coroutine behind run()/spawn(): one frame holds the decay-copied
// function, its arguments and the result (one allocation per task; a function
// that is itself a coroutine adds its own frame). Its promise type is picked
// through std::coroutine_traits by the leading TaskStart parameter.

#include <coroutine>
#include <functional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "error_types.hpp"
#include "promise_handle.hpp"
#include "concepts.hpp"
#include "coro_promise.hpp"
#include "task_host.hpp"
#include "runtime.hpp"

namespace skein::detail {

/// Where a task runs and which context (if any) it belongs to.
struct TaskStart {
  TaskHost* host;
  Scope* ctx;  // not retained here; the task's promise retains it
};

/// The context a task started now inherits: the current task's, if any.
inline Scope* inherited_context() noexcept {
  return (tls.scope && tls.scope->is_context) ? const_cast<Scope*>(tls.scope) : nullptr;
}

template <class T>
class RunPromise final : public CoroPromiseBase<T, RunPromise<T>> {
public:
  template <class... Rest>
  explicit RunPromise(const TaskStart& s, Rest&...) : host_(s.host) {
    this->suspended_ = true;  // run() hands the handle out while the task runs elsewhere
    if (host_->single_threaded) this->set_settled_on(static_cast<Executor*>(host_));
    if (s.ctx) {
      // Only context tasks pay for the link (a separate allocation keeps
      // every other task's frame smaller). Allocated first: if it throws,
      // run() throws and nothing was counted.
      link_ = new ContextTaskLink;
      link_->ctx = s.ctx;
      this->scope_ = s.ctx;
      s.ctx->retain();
      s.ctx->task_started();
      host_->link_context_task(link_);
    }
    host_->live_tasks().started();
  }

  void on_finish() noexcept {
    if (this->scope_) {
      host_->unlink_context_task(link_);
      delete link_;
      link_ = nullptr;
      this->scope_->task_finished();
    }
    // Last touch of the host: a pool's destructor waits for this. goroutines() sums
    // these counts, so Context::wait() may return a moment before it drops.
    host_->live_tasks().finished();
  }

  /// The first suspension: hop onto the host. A task whose context (or host)
  /// was cancelled before it started never runs and fails with Cancelled.
  /// (Not wrapped by await_transform: it sets the task's scope itself, and
  /// the frame stays smaller.)
  struct Start {
    RunPromise* p;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { p->host_->schedule(h); }
    void await_resume() const {
      set_task_scope(p->scope_);
      if (current_cancelled() || p->host_->scope().stop_requested())
        throw Cancelled("task cancelled before it started");
    }
  };
  [[nodiscard]] Start start() noexcept { return Start{this}; }
  using CoroPromiseBase<T, RunPromise<T>>::await_transform;
  Start await_transform(Start) noexcept { return Start{this}; }

private:
  TaskHost* host_;
  ContextTaskLink* link_ = nullptr;
};

template <class F, class... Args>
decltype(auto) invoke_task(F& f, Args&... args) {
  if constexpr (takes_stop_token_v<F, Args...>)
    return std::invoke(std::move(f), current_token(), std::move(args)...);
  else
    return std::invoke(std::move(f), std::move(args)...);
}

// Parameters are taken by value: this is where run()'s decay-copy lands.
// TaskStart is taken by reference: it is read only before the first
// suspension (by the promise's constructor), so it need not be in the frame.
template <class R, class F, class... Args>
Promise<R> run_task(const TaskStart&, F f, Args... args) {
  co_await typename RunPromise<R>::Start{};
  using Raw = typename task_result<F, Args...>::raw;
  if constexpr (is_promise_v<Raw>) {
    // Not cancellable: the coroutine observes the same stop token itself, and
    // its lambda captures and arguments live in this frame, so this frame must
    // not finish before it does.
    Raw inner = invoke_task(f, args...);
    co_return co_await ForwardAwaiter<R>(state_of(inner));
  } else if constexpr (std::is_void_v<Raw>) {
    invoke_task(f, args...);
  } else {
    co_return invoke_task(f, args...);
  }
}

}  // namespace skein::detail

template <class R, class... Rest>
struct std::coroutine_traits<skein::Promise<R>, const skein::detail::TaskStart&, Rest...> {
  using promise_type = skein::detail::RunPromise<R>;
};
