#pragma once
/// Context: a cancellation scope (a stop source, an optional deadline, the
/// tasks it started) and run_with_timeout.

#include "detail/config.hpp"  // first: the C++20 check

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "detail/context_state.hpp"
#include "detail/deadline.hpp"
#include "detail/run_task.hpp"
#include "errors.hpp"
#include "executor.hpp"
#include "promise.hpp"
#include "run.hpp"
#include "thread_pool.hpp"

namespace skein {

/// A cancellation scope. Tasks started with ctx.run (and every task those
/// start) are bound to it: cancel() — or its deadline passing, or its parent
/// being cancelled — makes every skein wait in them throw Cancelled, and
/// tasks that have not started yet never start. Copies share one scope.
class Context {
public:
  /// A root context with no deadline.
  Context() : st_(new detail::ContextState(nullptr)) {}
  Context(const Context& o) noexcept : st_(o.st_) { st_->retain(); }
  Context& operator=(const Context& o) noexcept {
    Context tmp(o);
    std::swap(st_, tmp.st_);
    return *this;
  }
  ~Context() { st_->release(); }

  /// A root context cancelled once `d` has passed.
  template <class Rep, class Period>
  static Context with_timeout(std::chrono::duration<Rep, Period> d) {
    Context c;
    c.st_->set_deadline(detail::deadline_after(d));
    return c;
  }

  /// A context cancelled with this one (and on its own).
  [[nodiscard]] Context child() const { return Context(new detail::ContextState(st_)); }
  /// A child that is also cancelled once `d` has passed.
  template <class Rep, class Period>
  [[nodiscard]] Context child_with_timeout(std::chrono::duration<Rep, Period> d) const {
    Context c = child();
    c.st_->set_deadline(detail::deadline_after(d));
    return c;
  }

  /// The context of the task running on this thread, if it has one.
  static std::optional<Context> current() {
    if (auto* s = detail::inherited_context()) {
      s->retain();
      return Context(static_cast<detail::ContextState*>(s));
    }
    return std::nullopt;
  }

  /// Runs `f(args...)` as a task bound to this context, on default_pool()
  /// (or on `ex`: a ThreadPool, an EventLoop, an ExecutorBase of yours).
  template <class F, class... Args>
    requires(!TaskExecutor<std::remove_cvref_t<F>>)
  auto run(F&& f, Args&&... args) const {
    return run(default_pool(), std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, class F, class... Args>
  auto run(E& ex, F&& f, Args&&... args) const {
    return detail::start_checked(detail::host_of(ex), st_, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
    requires(!TaskExecutor<std::remove_cvref_t<F>>)
  void spawn(F&& f, Args&&... args) const {
    (void)run(std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, class F, class... Args>
  void spawn(E& ex, F&& f, Args&&... args) const {
    (void)run(ex, std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// Cancels this context and its children. Idempotent.
  void cancel() const noexcept { st_->cancel(detail::CancelReason::cancelled); }
  [[nodiscard]] bool cancelled() const noexcept { return st_->stop_requested(); }
  /// True if the context was cancelled because its (or an ancestor's) deadline
  /// passed. Latched when the context is cancelled: a context cancelled by
  /// cancel() stays "not timed out" when an ancestor's deadline passes later.
  [[nodiscard]] bool timed_out() const noexcept { return st_->reason() == detail::CancelReason::deadline; }
  [[nodiscard]] std::stop_token token() const noexcept { return st_->source.get_token(); }
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> deadline() const noexcept {
    return st_->deadline();
  }
  /// Live tasks bound to this context or its children.
  [[nodiscard]] std::size_t tasks() const noexcept {
    auto n = st_->live_tasks();
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  /// Blocks until every task bound to this context (or its children) has
  /// finished. Throws UsageError if called from one of those tasks (it would
  /// wait for itself), Cancelled if the calling task is cancelled.
  void wait() const {
    check_not_inside();
    if (st_->wait_idle(nullptr) == detail::WaitStatus::cancelled) detail::throw_cancelled();
  }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) const {
    check_not_inside();
    auto deadline = detail::deadline_after(d);
    auto s = st_->wait_idle(&deadline);
    if (s == detail::WaitStatus::cancelled) detail::throw_cancelled();
    return s == detail::WaitStatus::ready;
  }

private:
  template <class Rep, class Period, class F, class... Args>
  friend auto run_with_timeout(std::chrono::duration<Rep, Period>, F&&, Args&&...);
  explicit Context(detail::ContextState* adopted) noexcept : st_(adopted) {}
  void check_not_inside() const {
    if (st_->encloses(detail::tls.scope))
      throw UsageError("Context::wait() called from a task of that context would wait for itself");
  }
  detail::ContextState* st_;
};

/// Runs `f(args...)` under a fresh context (a child of the current task's
/// context, if any) that is cancelled after `d`. Returns f's result; if the
/// task fails — typically with Cancelled because the deadline passed — the
/// context is cancelled, every task started inside it is waited for, and the
/// error is rethrown (a deadline becomes Cancelled("deadline exceeded ...")).
template <class Rep, class Period, class F, class... Args>
auto run_with_timeout(std::chrono::duration<Rep, Period> d, F&& f, Args&&... args) {
  auto parent = Context::current();
  Context ctx = parent ? parent->child_with_timeout(d) : Context::with_timeout(d);
  auto p = ctx.run(std::forward<F>(f), std::forward<Args>(args)...);
  try {
    return std::move(p).get();
  } catch (...) {
    ctx.cancel();
    // Wait for everything started inside. This wait ignores the caller's own
    // stop token: the tasks are cancelled already and stop promptly, and
    // returning earlier would let them outlive the call.
    (void)ctx.st_->wait_idle(nullptr, false);
    if (ctx.timed_out() && !(parent && parent->cancelled()))
      throw Cancelled("deadline exceeded: run_with_timeout(" + detail::format_ms(d) + " ms)");
    throw;
  }
}

}  // namespace skein
