#pragma once
// The coroutine behind run()/spawn(): one frame holds the decay-copied
// function and its arguments and is freed when the task ends; a TaskState
// (its own small allocation) holds the result and the waiters for the
// handles. A function that is itself a coroutine adds its own frame. The
// promise type is picked through std::coroutine_traits by the leading
// TaskStart parameter.

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "error_types.hpp"
#include "promise_handle.hpp"
#include "concepts.hpp"
#include "coro_promise.hpp"
#include "frame_alloc.hpp"
#include "task_host.hpp"
#include "runtime.hpp"
#include "stop_token.hpp"
#include "trace_core.hpp"

namespace skein::detail {

/// Where a task runs and which context (if any) it belongs to.
struct TaskStart {
  TaskHost* host;
  Scope* ctx;                  // not retained here; the task's promise retains it
  GroupHook* group = nullptr;  // a TaskGroup's task (then ctx is the group's context)
  TaskSite site{};             // where it was started, and its name
};

/// The context a task started now inherits: the current task's, if any.
inline Scope* inherited_context() noexcept {
  return (tls.scope && tls.scope->is_context) ? const_cast<Scope*>(tls.scope) : nullptr;
}

/// The shared state of a run() task, on its own small allocation: the task's
/// frame (its function, arguments and locals) is freed as soon as the task
/// ends, and only this (the result and the waiters) stays for the handles.
template <class T>
class TaskState final : public PromiseState<T>, public FrameCached {
public:
  TaskState() noexcept {
    this->count_first_handle();  // get_return_object's
    this->destroy_ = [](PromiseStateBase* s) noexcept { delete static_cast<TaskState*>(s); };
  }
};

template <class T>
class RunPromise;

/// What run_task awaits when its function returned a Promise: that promise's
/// state (see ForwardAwaiter).
template <class T>
struct ForwardTo {
  PromiseState<T>* st;
};

template <class T>
class RunReturn {
public:
  template <class U = T>
  void return_value(U&& v) {
    static_cast<RunPromise<T>*>(this)->state()->set_value(std::forward<U>(v));
  }
};
template <>
class RunReturn<void> {
public:
  void return_void() noexcept {}
};

/// promise_type of run_task (chosen by its leading TaskStart parameter).
template <class T>
class RunPromise final : public RunReturn<T>, public FrameCached {
public:
  template <class... Rest>
  explicit RunPromise(const TaskStart& s, Rest&...) : host_(s.host), ident_(s.site.where) {
    // The allocations first: if one throws, run() throws and nothing was
    // counted or retained.
    if (s.site.name) [[unlikely]]
      name_task(ident_, s.site.name);
    std::unique_ptr<ContextTaskLink> link(s.ctx ? new ContextTaskLink : nullptr);
    st_ = new TaskState<T>;
    if (host_->single_threaded) st_->set_settled_on(static_cast<Executor*>(host_));
    if (s.ctx) {
      // Only context tasks pay for the link (a separate allocation keeps
      // every other task's frame smaller).
      link_ = link.release();
      link_->ctx = s.ctx;
      link_->group = s.group;
      if (s.group) s.group->retain();
      s.ctx->retain();
      s.ctx->task_started();
      host_->link_context_task(link_);
    }
    host_->live_tasks().started();
  }
  RunPromise(const RunPromise&) = delete;
  RunPromise& operator=(const RunPromise&) = delete;
  ~RunPromise() {
    if (link_) link_->ctx->release();
  }

  Promise<T> get_return_object() noexcept { return adopt_promise<T>(st_); }
  std::suspend_never initial_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept {
    std::exception_ptr e = std::current_exception();
    if (link_ && link_->group) {
      // The group reports it (TaskGroup::wait): a dropped Promise does not.
      link_->group->task_failed(e);
      st_->mark_observed();
    }
    st_->set_error(std::move(e));
  }
  [[nodiscard]] PromiseState<T>* state() const noexcept { return st_; }

  /// Settles the state, reports an error nobody can observe, does the task's
  /// accounting and frees the frame; then wakes the waiters (one coroutine
  /// that may run on this thread by symmetric transfer) and drops the
  /// producer's reference to the state.
  struct FinalAwaiter {
    using Handle = std::coroutine_handle<RunPromise<T>>;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(Handle h) noexcept {
      if (trace_hooks()) [[unlikely]]
        return finish_traced(h);
      return finish<false>(h);
    }
    void await_resume() const noexcept {}

  private:
    // Traced, the end of the task's last slice comes after it has woken its
    // waiters (the wake events are the task's), before it transfers to one.
    template <bool Traced>
    [[gnu::always_inline]] static std::coroutine_handle<> finish(Handle h) noexcept {
      PromiseState<T>* st = h.promise().st_;
      [[maybe_unused]] const std::uint64_t id = Traced ? h.promise().trace_id() : 0;
      if (st->try_settle_alone()) {  // nobody waits (yet): one CAS, and the state is no longer ours
        Finish fin = h.promise().take_finish();
        if constexpr (Traced) trace_finish(id, h.address());
        h.destroy();
        fin.run();
        return std::noop_coroutine();
      }
      Waiter* waiters = st->settle();
      SKEIN_FAULT_POINT();  // settled, not yet accounted: observers may look now
      st->report_if_orphaned();
      Finish fin = h.promise().take_finish();
      h.destroy();  // the function and its arguments (what it captured) go now ...
      fin.run();    // ... before the task stops counting: a wait for its context or group sees them gone
      if constexpr (Traced) trace_resume(id, h.address());  // if it ends on another thread than its last slice
      std::coroutine_handle<> next = FinalAwaiterBase::wake_all(waiters);
      if constexpr (Traced) trace_finish(id, nullptr);
      st->release_producer();  // may destroy the state: nothing touches it after this
      return next ? continue_with(next) : std::noop_coroutine();
    }
    [[gnu::cold, gnu::noinline]] static std::coroutine_handle<> finish_traced(Handle h) noexcept {
      return finish<true>(h);
    }
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }

  /// The task's trace id (0 if it has none: it started before the hooks).
  [[nodiscard]] std::uint64_t trace_id() const noexcept { return ident_.id(); }

  // run_task awaits only these two. The inner coroutine's completion resumes
  // it for its last steps, which need no scope of their own.
  template <class U>
  ForwardAwaiter<U> await_transform(ForwardTo<U> t) noexcept {
    return ForwardAwaiter<U>(t.st);  // made in place (it cannot be copied)
  }

  /// The first suspension: hop onto the host. A task whose context (or host)
  /// was cancelled before it started never runs and fails with Cancelled.
  /// (Not wrapped by await_transform: it sets the task's scope itself.)
  struct Start {
    RunPromise* p;
    bool await_ready() const noexcept { return false; }
    // Each traced path is a function of its own, entered with one test of
    // the hooks: the untraced path stays what it was, with nothing to save
    // around a call.
    void await_suspend(std::coroutine_handle<> h) const noexcept {
      if (trace_hooks()) [[unlikely]]
        return spawn_traced(h);
      p->host_->schedule(h);
    }
    void await_resume() const {
      if (trace_hooks()) [[unlikely]]
        return start_traced();
      start();
    }

  private:
    void start() const {
      set_task_scope(p->link_ ? p->link_->ctx : nullptr);
      if (current_cancelled() || p->host_->scope().stop_requested())
        throw_cancelled("task cancelled before it started");
    }
    // The spawn event, on the starting thread before the task can run.
    [[gnu::cold, gnu::noinline]] void spawn_traced(std::coroutine_handle<> h) const noexcept {
      trace_spawn(p->ident_);
      p->host_->schedule(h);
    }
    [[gnu::cold, gnu::noinline]] void start_traced() const {
      set_task_scope(p->link_ ? p->link_->ctx : nullptr);  // first: the hooks see the task's context
      trace_start(p->ident_);
      start();
    }
  };
  Start await_transform(Start) noexcept { return Start{this}; }

private:
  /// The task's accounting, done once its frame is gone.
  struct Finish {
    TaskHost* host;
    Scope* scope;  // the retained context, or null
    ContextTaskLink* link;
    void run() const noexcept {
      if (scope) {
        if (GroupHook* group = link->group) {
          // Returning the slot may resume a waiting coroutine right here,
          // which may even destroy the group (see ~TaskGroup).
          const void* outer = tls.finishing_group;
          tls.finishing_group = group;
          group->task_done();
          tls.finishing_group = outer;
        }
        GroupHook* group = link->group;
        host->unlink_context_task(link);
        delete link;
        scope->task_finished();
        if (group) group->release();  // after the count: the group's memory outlives every use
        scope->release();
      }
      // Last touch of the host: a pool's destructor waits for this. goroutines() sums
      // these counts, so Context::wait() may return a moment before it drops.
      host->live_tasks().finished();
    }
  };
  Finish take_finish() noexcept {
    Finish f{host_, link_ ? link_->ctx : nullptr, link_};
    link_ = nullptr;  // the frame's destruction no longer releases the context
    return f;
  }

  TaskHost* host_;
  TaskState<T>* st_ = nullptr;
  ContextTaskLink* link_ = nullptr;  // a context task's: its retained context is link_->ctx
  TaskIdent ident_;                  // where it was started; its name and trace id, if it has either
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
    co_return co_await ForwardTo<R>{state_of(inner)};
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
