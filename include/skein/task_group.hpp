#pragma once
/// TaskGroup: structured concurrency (Go's errgroup, Trio's nursery, Tokio's
/// JoinSet). The group's tasks run in its own child Context; the first
/// failure cancels the rest; wait() waits for all of them and rethrows that
/// failure; and the tasks never outlive the group — leaving its scope, by any
/// path, cancels what is left and waits for it.

#include "detail/config.hpp"  // first: the C++20 check

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "context.hpp"
#include "detail/context_state.hpp"
#include "detail/run_task.hpp"
#include "detail/spin.hpp"
#include "errors.hpp"
#include "executor.hpp"
#include "promise.hpp"
#include "run.hpp"
#include "semaphore.hpp"
#include "thread_pool.hpp"

namespace skein {

namespace detail {
/// What a TaskGroup's tasks touch: reference-counted (the group and each
/// live task of it), so a group destroyed while tasks still end — by one of
/// them, or from a coroutine resumed inside a task's end — frees nothing
/// they use.
class GroupCore final : public GroupHook {
public:  // the TaskGroup's state: TaskGroup reads and writes it directly
  explicit GroupCore(Context ctx) : ctx_(std::move(ctx)) {}
  void retain() noexcept override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept override {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void cancel_as_group(std::exception_ptr cause) noexcept {
    {
      std::lock_guard lk(lock_);
      if (!ctx_.cancelled()) by_group_ = true;
    }
    ctx_.cancel(std::move(cause));
  }

  // GroupHook: on the failing task's thread, before it settles.
  void task_failed(const std::exception_ptr& e) noexcept override {
    bool first = false;
    bool unrecorded = false;
    {
      std::lock_guard lk(lock_);
      if (ctx_.cancelled() && detail::PromiseStateBase::is_cancellation(e)) {
        // A consequence of the cancellation, not an error of its own; from
        // outside (not the group's doing), wait() reports the first one.
        if (!by_group_ && !outside_cancel_) outside_cancel_ = e;
        return;
      }
      first = !first_;
      if (first) {
        first_ = e;
        if (!ctx_.cancelled()) by_group_ = true;
      }
      try {
        errors_.push_back(e);
      } catch (...) {  // out of memory: not in errors(), so reported below (never lost)
        unrecorded = true;
      }
    }
    if (unrecorded) detail::report_unhandled(e);
    // The first failure cancels the rest, with itself as the cause (as errgroup).
    if (first) ctx_.cancel(e);
  }
  void task_done() noexcept override {
    if (slots_) slots_->release();
  }

  std::atomic<long> refs_{1};
  Context ctx_;
  std::optional<Semaphore> slots_;
  std::atomic<long> waiting_{0};  // callers in run/async_run waiting for a slot
  mutable detail::SpinLock lock_;
  std::vector<std::exception_ptr> errors_;
  mutable std::size_t observed_ = 0;  // errors_[0, observed_) were rethrown or returned
  std::exception_ptr first_;
  std::exception_ptr outside_cancel_;
  bool by_group_ = false;  // the group cancelled itself (first error, cancel(), its end)
};
}  // namespace detail

/// A scope for tasks. Not copyable or movable (its tasks refer to it).
class TaskGroup final {
public:
  /// A group under the current task's context (cancelled with it), or a
  /// root one outside a context-bound task.
  TaskGroup() : c_(new detail::GroupCore(initial_context())) {}
  /// A group under `parent`: cancelled when it is, carrying its values.
  explicit TaskGroup(const Context& parent) : c_(new detail::GroupCore(parent.child())) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  /// Cancels the tasks that are left and waits for them (and for every task
  /// they started in the group's context), whatever the way out of the
  /// scope: the tasks may use the enclosing function's locals. Errors that
  /// neither wait() nor errors() observed go to the unhandled-error handler.
  ~TaskGroup() {
    if (st()->live_tasks() > 0) {
      c_->cancel_as_group(nullptr);
      if (detail::tls.finishing_group == c_) {
        // Destroyed by a coroutine resumed inside the end of one of the
        // group's tasks (the slot it returned): wait for all but that one.
        while (st()->live_tasks() > 1) std::this_thread::sleep_for(std::chrono::microseconds(50));
      } else if (st()->encloses(detail::tls.scope)) {
        // Destroyed by one of its own tasks (its last owner, say): waiting
        // for the others could wait for this one. The core outlives them all.
        if (st()->live_tasks() > 1)
          detail::report_unhandled(std::make_exception_ptr(UsageError(
              "TaskGroup destroyed by one of its own tasks while others ran; they were cancelled, not waited for")));
      } else {
        wait_quietly();
      }
    }
    std::vector<std::exception_ptr> unseen;
    {
      std::lock_guard lk(c_->lock_);
      unseen.assign(c_->errors_.begin() + static_cast<std::ptrdiff_t>(c_->observed_), c_->errors_.end());
    }
    for (auto& e : unseen) detail::report_unhandled(std::move(e));
    c_->release();
  }

  /// The group's context: its tasks run in it; its values are theirs.
  [[nodiscard]] const Context& context() const noexcept { return c_->ctx_; }

  /// Starts `f(args...)` as a task of the group (on default_pool(), or on
  /// `ex`), as skein::run does; returns its Promise. With a limit set, waits
  /// (cancellably) for a free slot first. The task's error, if any, is the
  /// group's as well: wait() rethrows the first one, and a dropped Promise
  /// does not report it as unhandled.
  ///
  /// The task records where it was started when `f` takes no arguments; name
  /// it, or record the site of a call with arguments, with
  /// `g.run(skein::named("..."), f, args...)` (or skein::here()).
  template <detail::TaskFn F>
  auto run(F&& f, SourceSite where = SourceSite::current()) {
    return run(default_pool(), here(where), std::forward<F>(f));
  }
  template <detail::TaskFn F, class... Args>
    requires(sizeof...(Args) > 0)
  auto run(F&& f, Args&&... args) {
    return run(default_pool(), TaskName{}, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  auto run(TaskName name, F&& f, Args&&... args) {
    return run(default_pool(), name, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, detail::TaskFn F>
  auto run(E& ex, F&& f, SourceSite where = SourceSite::current()) {
    return run(ex, here(where), std::forward<F>(f));
  }
  template <TaskExecutor E, detail::TaskFn F, class... Args>
    requires(sizeof...(Args) > 0)
  auto run(E& ex, F&& f, Args&&... args) {
    return run(ex, TaskName{}, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, class F, class... Args>
  auto run(E& ex, TaskName name, F&& f, Args&&... args) {
    if (c_->slots_) {
      SlotWait w(c_->waiting_);
      c_->slots_->acquire();
    }
    return start_holding_slot(ex, name, std::forward<F>(f), std::forward<Args>(args)...);
  }
  /// run() without the Promise.
  template <detail::TaskFn F>
  void spawn(F&& f, SourceSite where = SourceSite::current()) {
    (void)run(here(where), std::forward<F>(f));
  }
  template <detail::TaskFn F, class... Args>
    requires(sizeof...(Args) > 0)
  void spawn(F&& f, Args&&... args) {
    (void)run(std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  void spawn(TaskName name, F&& f, Args&&... args) {
    (void)run(name, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, detail::TaskFn F>
  void spawn(E& ex, F&& f, SourceSite where = SourceSite::current()) {
    (void)run(ex, here(where), std::forward<F>(f));
  }
  template <TaskExecutor E, detail::TaskFn F, class... Args>
    requires(sizeof...(Args) > 0)
  void spawn(E& ex, F&& f, Args&&... args) {
    (void)run(ex, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, class F, class... Args>
  void spawn(E& ex, TaskName name, F&& f, Args&&... args) {
    (void)run(ex, name, std::forward<F>(f), std::forward<Args>(args)...);
  }
  /// run() only if a slot is free now (Go's TryGo); std::nullopt otherwise.
  template <class F, class... Args>
    requires(!TaskExecutor<std::remove_cvref_t<F>>)
  auto try_run(F&& f, Args&&... args) {
    return try_run(default_pool(), std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <TaskExecutor E, class F, class... Args>
  auto try_run(E& ex, F&& f, Args&&... args) {
    using P = decltype(start_holding_slot(ex, TaskName{}, std::forward<F>(f), std::forward<Args>(args)...));
    if (c_->slots_ && !c_->slots_->try_acquire()) return std::optional<P>();
    return std::optional<P>(start_holding_slot(ex, TaskName{}, std::forward<F>(f), std::forward<Args>(args)...));
  }
  /// `co_await g.async_run(f, args...)`: run() for a coroutine, which waits
  /// for a slot without blocking its thread; gives the task's Promise.
  template <class F, class... Args>
    requires(!TaskExecutor<std::remove_cvref_t<F>>)
  auto async_run(F&& f, Args&&... args) {
    using P = decltype(start_holding_slot(default_pool(), TaskName{}, std::forward<F>(f), std::forward<Args>(args)...));
    return [](TaskGroup* g, std::decay_t<F> fn, std::decay_t<Args>... a) -> Promise<P> {
      if (g->c_->slots_) {
        SlotWait w(g->c_->waiting_);
        co_await g->c_->slots_->async_acquire();
      }
      co_return g->start_holding_slot(default_pool(), TaskName{}, std::move(fn), std::move(a)...);
    }(this, std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// At most `n` of the group's tasks run at once (run waits for a slot,
  /// try_run declines); a negative `n` removes the limit (Go's SetLimit).
  /// 0 admits no task. UsageError while any task of the group is live.
  void set_limit(std::ptrdiff_t n) {
    if (st()->live_tasks() > 0) throw UsageError("TaskGroup::set_limit while tasks of the group are running");
    if (c_->waiting_.load(std::memory_order_acquire) > 0)
      throw UsageError("TaskGroup::set_limit while a run or async_run waits for a slot");
    c_->slots_.reset();
    if (n >= 0) c_->slots_.emplace(n);
  }

  /// Cancels the group's tasks (with `cause`, if given). wait() does not
  /// report the Cancelled errors this causes: the group asked for them.
  void cancel(std::exception_ptr cause = nullptr) noexcept { c_->cancel_as_group(std::move(cause)); }
  [[nodiscard]] bool cancelled() const noexcept { return c_->ctx_.cancelled(); }
  /// Live tasks in the group's context (the group's and those they started).
  [[nodiscard]] std::size_t tasks() const noexcept { return c_->ctx_.tasks(); }

  /// Blocks until every task of the group (and every task they started in
  /// its context) has finished; then rethrows the first error of a task of
  /// the group, if any, or else Cancelled if the group was cancelled from
  /// outside (its parent, its deadline) and a task ended with it. If the
  /// calling task is cancelled meanwhile, cancels the group, still waits for
  /// every task, and throws Cancelled. UsageError from a task of the group.
  void wait() {
    check_not_inside("wait", true);
    if (st()->wait_idle(nullptr) == detail::WaitStatus::cancelled) {
      c_->cancel_as_group(nullptr);
      wait_quietly();
      detail::throw_cancelled();
    }
    rethrow_outcome();
  }
  /// wait() for a coroutine: `co_await g.async_wait();` before the group's
  /// scope ends. (Left by an exception instead, the destructor still cancels
  /// and waits, blocking the thread.)
  Promise<void> async_wait() {
    // Not the finishing check: a coroutine resumed inside the end of one of
    // the group's tasks (by the slot that task returned) suspends here, and
    // that task stops counting right after.
    check_not_inside("async_wait", false);
    return [](TaskGroup* g) -> Promise<void> {
      bool cancelled = false;
      try {
        co_await detail::IdleWait(*g->st(), true);
      } catch (const Cancelled&) {
        cancelled = true;
      }
      if (cancelled) {
        g->c_->cancel_as_group(nullptr);
        co_await detail::IdleWait(*g->st(), false);
        detail::throw_cancelled();
      }
      g->rethrow_outcome();
    }(this);
  }

  /// Every error of the group's tasks so far, in the order they happened
  /// (not the Cancelled errors the group's own cancellation caused).
  [[nodiscard]] std::vector<std::exception_ptr> errors() const {
    std::lock_guard lk(c_->lock_);
    c_->observed_ = c_->errors_.size();
    return c_->errors_;
  }

private:
  // Counts the callers waiting for a slot (set_limit must not swap the semaphore under them).
  struct SlotWait {
    explicit SlotWait(std::atomic<long>& n) noexcept : n_(n) { n_.fetch_add(1, std::memory_order_relaxed); }
    ~SlotWait() { n_.fetch_sub(1, std::memory_order_release); }
    SlotWait(const SlotWait&) = delete;
    SlotWait& operator=(const SlotWait&) = delete;
    std::atomic<long>& n_;
  };

  static Context initial_context() {
    auto cur = Context::current();
    return cur ? cur->child() : Context();
  }
  [[nodiscard]] detail::ContextState* st() const noexcept { return c_->ctx_.st_; }

  template <TaskExecutor E, class F, class... Args>
  auto start_holding_slot(E& ex, const TaskName& name, F&& f, Args&&... args) {
    try {
      return detail::start_checked(detail::TaskStart{&detail::host_of(ex), st(), c_, name}, std::forward<F>(f),
                                   std::forward<Args>(args)...);
    } catch (...) {  // not started (out of memory): the slot goes back
      if (c_->slots_) c_->slots_->release();
      throw;
    }
  }

  void check_not_inside(const char* what, bool blocking) const {
    if (st()->encloses(detail::tls.scope) || (blocking && detail::tls.finishing_group == c_))
      throw UsageError(std::string("TaskGroup::") + what + "() called from a task of the group would wait for itself");
  }

  /// Waits for every task, ignoring the caller's cancellation (they are
  /// cancelled and stop promptly). If the thread may not block (its pool is
  /// at its thread bound), sleeps in short steps instead: never returns early.
  void wait_quietly() noexcept {
    try {
      (void)st()->wait_idle(nullptr, false);
    } catch (...) {
      while (st()->live_tasks() > 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  void rethrow_outcome() {
    std::exception_ptr e;
    {
      std::lock_guard lk(c_->lock_);
      c_->observed_ = c_->errors_.size();
      e = c_->first_ ? c_->first_ : c_->outside_cancel_;
    }
    if (e) std::rethrow_exception(e);
  }

  detail::GroupCore* c_;  // shared with the live tasks
};

}  // namespace skein
