#pragma once
/// Context: a cancellation scope (a stop source, an optional deadline, the
/// tasks it started, the values it carries), ContextKey, after_cancel,
/// this_task::value, and run_with_timeout.

#include "detail/config.hpp"  // first: the C++20 check

#include <chrono>
#include <concepts>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "detail/context_state.hpp"
#include "detail/deadline.hpp"
#include "detail/run_task.hpp"
#include "detail/stop_token.hpp"
#include "errors.hpp"
#include "executor.hpp"
#include "promise.hpp"
#include "run.hpp"
#include "thread_pool.hpp"

namespace skein {

namespace detail {
/// The T stored under `key` in `st` or an ancestor (null `st`: none).
template <class T>
const T* find_value(const ContextState* st, const void* key) noexcept {
  const ContextValueNode* n = st ? st->find_value(key) : nullptr;
  return n ? &static_cast<const ContextValue<T>*>(n)->value : nullptr;
}
}  // namespace detail

class TaskGroup;
class AfterCancel;

/// A key for a value of type T that a Context carries (Go's context keys,
/// typed). Keys compare by address — two keys never collide, whatever their
/// names — so make them objects that live as long as the values are read
/// (globals, or static members).
template <class T>
class ContextKey {
public:
  constexpr explicit ContextKey(const char* name = "") noexcept : name_(name) {}
  ContextKey(const ContextKey&) = delete;
  ContextKey& operator=(const ContextKey&) = delete;
  /// The name given, for messages.
  [[nodiscard]] constexpr const char* name() const noexcept { return name_; }

private:
  const char* name_;
};

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

  /// A root context cancelled once `d` has passed (with `cause`, if given:
  /// Go's WithTimeoutCause).
  template <class Rep, class Period>
  static Context with_timeout(std::chrono::duration<Rep, Period> d, std::exception_ptr cause = nullptr) {
    Context c;
    c.st_->set_deadline(detail::deadline_after(d), std::move(cause));
    return c;
  }

  /// A context cancelled with this one (and on its own). It carries this one's values.
  [[nodiscard]] Context child() const { return Context(new detail::ContextState(st_)); }
  /// A child that is also cancelled once `d` has passed (with `cause`, if given).
  template <class Rep, class Period>
  [[nodiscard]] Context child_with_timeout(std::chrono::duration<Rep, Period> d,
                                           std::exception_ptr cause = nullptr) const {
    Context c = child();
    c.st_->set_deadline(detail::deadline_after(d), std::move(cause));
    return c;
  }
  /// A child that carries `value` under `key` (hiding an ancestor's value
  /// under the same key); tasks started in it, and its own children, see it.
  template <class T, class U>
    requires std::constructible_from<T, U&&>
  [[nodiscard]] Context with_value(const ContextKey<T>& key, U&& value) const {
    Context c = child();
    c.st_->push_value(std::make_shared<detail::ContextValue<T>>(&key, c.st_->values(), std::forward<U>(value)));
    return c;
  }
  /// A root context with this one's values and nothing else: never
  /// cancelled with this one, no deadline, its tasks not counted here (Go's
  /// WithoutCancel) — for work that must finish even if the request is cancelled.
  [[nodiscard]] Context without_cancel() const { return Context(new detail::ContextState(nullptr, st_->values())); }

  /// The value under `key` (this context's or the nearest ancestor's), or
  /// null. The pointer stays valid while this context lives.
  template <class T>
  [[nodiscard]] const T* value(const ContextKey<T>& key) const noexcept {
    return detail::find_value<T>(st_, &key);
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
  /// The task records where it was started when `f` takes no arguments (or
  /// pass skein::named("...") or skein::here() first, as to skein::run).
  template <detail::TaskFn F>
  auto run(F&& f, SourceSite where = SourceSite::current()) const {
    return run(default_pool(), here(where), std::forward<F>(f));
  }
  template <detail::TaskFn F, class... Args>
    requires(sizeof...(Args) > 0)
  auto run(F&& f, Args&&... args) const {
    return run(default_pool(), TaskName{}, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  auto run(TaskName name, F&& f, Args&&... args) const {
    return run(default_pool(), name, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, detail::TaskFn F>
  auto run(E& ex, F&& f, SourceSite where = SourceSite::current()) const {
    return run(ex, here(where), std::forward<F>(f));
  }
  template <TaskExecutor E, detail::TaskFn F, class... Args>
    requires(sizeof...(Args) > 0)
  auto run(E& ex, F&& f, Args&&... args) const {
    return run(ex, TaskName{}, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, class F, class... Args>
  auto run(E& ex, TaskName name, F&& f, Args&&... args) const {
    return detail::start_at(name, detail::host_of(ex), st_, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <detail::TaskFn F>
  void spawn(F&& f, SourceSite where = SourceSite::current()) const {
    (void)run(here(where), std::forward<F>(f));
  }
  template <detail::TaskFn F, class... Args>
    requires(sizeof...(Args) > 0)
  void spawn(F&& f, Args&&... args) const {
    (void)run(std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  void spawn(TaskName name, F&& f, Args&&... args) const {
    (void)run(name, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, detail::TaskFn F>
  void spawn(E& ex, F&& f, SourceSite where = SourceSite::current()) const {
    (void)run(ex, here(where), std::forward<F>(f));
  }
  template <TaskExecutor E, detail::TaskFn F, class... Args>
    requires(sizeof...(Args) > 0)
  void spawn(E& ex, F&& f, Args&&... args) const {
    (void)run(ex, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, class F, class... Args>
  void spawn(E& ex, TaskName name, F&& f, Args&&... args) const {
    (void)run(ex, name, std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// Cancels this context and its children. Idempotent: the first
  /// cancellation (this, the deadline, the parent's) is the one that counts.
  void cancel() const noexcept { st_->cancel(detail::CancelReason::cancelled); }
  /// Cancels with a cause (Go's CancelCauseFunc): the Cancelled errors thrown
  /// by the waits in this context's tasks carry it (Cancelled::cause()), and
  /// so does cause(). A null cause is a plain cancel().
  void cancel(std::exception_ptr cause) const noexcept {
    st_->cancel(detail::CancelReason::cancelled, std::move(cause));
  }
  [[nodiscard]] bool cancelled() const noexcept { return st_->stop_requested(); }
  /// Why it was cancelled (Go's Cause): the cause of the first cancellation
  /// that reached this context (its own cancel(cause), its timeout's cause, or
  /// its parent's cause); if that one gave none, a Cancelled saying "context
  /// cancelled" or "context deadline exceeded". Null while not cancelled.
  [[nodiscard]] std::exception_ptr cause() const {
    auto [reason, cause] = st_->cancellation();
    if (cause) return cause;
    switch (reason) {
      case detail::CancelReason::none: return nullptr;
      case detail::CancelReason::deadline: return std::make_exception_ptr(Cancelled("context deadline exceeded"));
      case detail::CancelReason::cancelled: break;
    }
    return std::make_exception_ptr(Cancelled("context cancelled"));
  }
  /// True if the context was cancelled because its (or an ancestor's) deadline
  /// passed. Latched when the context is cancelled: a context cancelled by
  /// cancel() stays "not timed out" when an ancestor's deadline passes later.
  [[nodiscard]] bool timed_out() const noexcept { return st_->reason() == detail::CancelReason::deadline; }
  [[nodiscard]] skein::stop_token token() const noexcept { return st_->source.get_token(); }
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> deadline() const noexcept {
    return st_->deadline();
  }
  /// True if `other` is this context or one of its descendants (children,
  /// their children, ...); without_cancel() makes a root, never a descendant.
  [[nodiscard]] bool encloses(const Context& other) const noexcept { return st_->encloses(other.st_); }
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

  /// What enter() returns: while it lives, the thread that made it acts as a
  /// task of the context. Neither copyable nor movable; destroy it on that thread.
  class Entered {
  public:
    explicit Entered(const Context& c) noexcept : st_(c.st_), saved_(detail::tls.scope) {
      st_->retain();  // the scope stays alive while the thread is in it
      detail::tls.scope = st_;
    }
    ~Entered() {
      detail::tls.scope = saved_;
      st_->release();
    }
    Entered(const Entered&) = delete;
    Entered& operator=(const Entered&) = delete;

  private:
    detail::ContextState* st_;
    const detail::Scope* saved_;
  };
  /// Makes the calling thread act as a task of this context until the guard
  /// is destroyed — for a thread that is not a task (an interpreter's main
  /// thread calling into skein): its waits are cancelled with the context,
  /// the tasks it starts belong to it, this_task::value sees its values, and
  /// (as inside a task) Context::wait() on it or an ancestor is a UsageError.
  [[nodiscard]] Entered enter() const noexcept { return Entered(*this); }

private:
  template <class Rep, class Period, class F, class... Args>
  friend auto run_with_timeout(std::chrono::duration<Rep, Period>, F&&, Args&&...);
  friend class TaskGroup;
  friend class AfterCancel;
  template <TaskExecutor E, class F>
  friend AfterCancel after_cancel(const Context&, E&, F&&);
  explicit Context(detail::ContextState* adopted) noexcept : st_(adopted) {}
  void check_not_inside() const {
    if (st_->encloses(detail::tls.scope))
      throw UsageError("Context::wait() called from a task of that context would wait for itself");
  }
  detail::ContextState* st_;
};

/// What after_cancel returns: stop() keeps the function from starting (Go's
/// AfterFunc's stop). Copies share one registration; dropping every copy
/// leaves it registered. Keeps the context alive.
class AfterCancel {
public:
  AfterCancel(const AfterCancel& o) noexcept : ctx_(o.ctx_), node_(o.node_) { node_->retain(); }
  AfterCancel& operator=(const AfterCancel& o) noexcept {
    AfterCancel tmp(o);
    std::swap(ctx_, tmp.ctx_);
    std::swap(node_, tmp.node_);
    return *this;
  }
  ~AfterCancel() { node_->drop(); }

  /// True if this call kept the function from starting; false if it has
  /// started already (the context was cancelled) or was stopped before.
  /// Does not wait for a started function to finish. Thread-safe.
  bool stop() noexcept { return ctx_.st_->stop_after_cancel(node_); }

private:
  template <TaskExecutor E, class F>
  friend AfterCancel after_cancel(const Context&, E&, F&&);
  AfterCancel(Context c, detail::AfterCancelNode* n) noexcept : ctx_(std::move(c)), node_(n) {}
  Context ctx_;
  detail::AfterCancelNode* node_;
};

namespace detail {
template <class F>
class AfterCancelTask final : public AfterCancelNode {
public:
  AfterCancelTask(TaskHost& host, F f) : host_(&host), fn_(std::move(f)) { act = &AfterCancelTask::run_or_free; }

private:
  static void run_or_free(AfterCancelNode* n, bool start) noexcept {
    auto* self = static_cast<AfterCancelTask*>(n);
    if (!start) {
      delete self;
      return;
    }
    try {
      // Its own task, in no context (the one it watches is cancelled); an
      // error goes to the unhandled-error handler, as for spawn.
      (void)start_checked(*self->host_, nullptr, std::move(self->fn_));
    } catch (...) {
      report_unhandled(std::current_exception());
    }
  }
  TaskHost* host_;
  F fn_;
};
}  // namespace detail

/// Runs `f()` as a task of its own on `ex` (default_pool() without it) once
/// `ctx` is cancelled — at once if it is cancelled already (Go's AfterFunc).
/// It never runs on the cancelling thread, and never if stop() comes first.
template <TaskExecutor E, class F>
AfterCancel after_cancel(const Context& ctx, E& ex, F&& f) {
  auto* n = new detail::AfterCancelTask<std::decay_t<F>>(detail::host_of(ex), std::forward<F>(f));
  AfterCancel handle(ctx, n);
  ctx.st_->add_after_cancel(n);
  return handle;
}
template <class F>
  requires(!TaskExecutor<std::remove_cvref_t<F>>)
AfterCancel after_cancel(const Context& ctx, F&& f) {
  return after_cancel(ctx, default_pool(), std::forward<F>(f));
}

namespace this_task {
/// The value under `key` in the current task's context (or an ancestor),
/// or null outside a context-bound task. Valid while the task runs.
template <class T>
[[nodiscard]] const T* value(const ContextKey<T>& key) noexcept {
  return detail::find_value<T>(static_cast<const detail::ContextState*>(detail::inherited_context()), &key);
}
}  // namespace this_task

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
