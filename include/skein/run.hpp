#pragma once
/// run / spawn / goroutines / this_task: goroutine-style tasks.

#include "detail/config.hpp"  // first: the C++20 check

#include <cstddef>
#include <type_traits>
#include <utility>

#include "detail/concepts.hpp"
#include "detail/run_task.hpp"
#include "detail/runtime.hpp"
#include "detail/stop_token.hpp"
#include "executor.hpp"
#include "promise.hpp"
#include "thread_pool.hpp"

namespace skein {

namespace detail {
template <class F, class... Args>
auto start_task(const TaskStart& where, F&& f, Args&&... args) {
  using R = typename task_result<std::decay_t<F>, std::decay_t<Args>...>::type;
  return run_task<R>(where, std::decay_t<F>(std::forward<F>(f)), std::decay_t<Args>(std::forward<Args>(args))...);
}
template <class F, class... Args>
auto start_task(TaskHost& host, Scope* ctx, F&& f, Args&&... args) {
  return start_task(TaskStart{&host, ctx}, std::forward<F>(f), std::forward<Args>(args)...);
}

/// start_task behind the compile-time checks of a user's call (run, spawn,
/// Context::run, TaskGroup::run, EventLoop::spawn): a call that cannot work
/// fails with a static_assert saying why, and nothing else.
template <class F, class... Args>
auto start_checked(const TaskStart& where, F&& f, Args&&... args) {
  if constexpr (check_task_call<F, Args...>())
    return start_task(where, std::forward<F>(f), std::forward<Args>(args)...);
  else
    return Promise<void>();  // never reached at run time: the static_assert has failed
}
template <class F, class... Args>
auto start_checked(TaskHost& host, Scope* ctx, F&& f, Args&&... args) {
  return start_checked(TaskStart{&host, ctx}, std::forward<F>(f), std::forward<Args>(args)...);
}
}  // namespace detail

/// Runs `f(args...)` as a task on `ex` (a ThreadPool, an EventLoop, an
/// ExecutorBase of yours) and returns its Promise. Arguments are decay-copied
/// (use std::ref for references); if `f` takes a skein::stop_token first it
/// receives the task's token. Inside a context-bound task, the new task is
/// bound to the same context. A function returning Promise<U> gives
/// Promise<U>.
///
/// A call that cannot work (f not callable with the arguments, an argument
/// that cannot be copied) fails to compile with a static_assert saying so.
template <TaskExecutor E, class F, class... Args>
auto run(E& ex, F&& f, Args&&... args) {
  return detail::start_checked(detail::host_of(ex), detail::inherited_context(), std::forward<F>(f),
                               std::forward<Args>(args)...);
}

/// run() on default_pool().
template <class F, class... Args>
  requires(!TaskExecutor<std::remove_cvref_t<F>>)
auto run(F&& f, Args&&... args) {
  return run(default_pool(), std::forward<F>(f), std::forward<Args>(args)...);
}

/// Fire-and-forget run(): an exception from the task goes to the unhandled-error handler.
template <class F, class... Args>
  requires(!TaskExecutor<std::remove_cvref_t<F>>)
void spawn(F&& f, Args&&... args) {
  (void)run(std::forward<F>(f), std::forward<Args>(args)...);
}
template <TaskExecutor E, class F, class... Args>
void spawn(E& ex, F&& f, Args&&... args) {
  (void)run(ex, std::forward<F>(f), std::forward<Args>(args)...);
}

/// Tasks started by run/spawn (and posts) that have not finished, process-wide.
inline std::size_t goroutines() noexcept {
  long n = detail::TaskHost::live_tasks_everywhere();
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

namespace this_task {
/// The stop token of the task running on this thread (a never-stopping token outside tasks).
inline skein::stop_token stop_token() noexcept { return detail::current_token(); }
/// True if the current task has been asked to stop.
inline bool cancelled() noexcept { return detail::current_cancelled(); }
/// Throws Cancelled if the current task has been asked to stop (a cancellation point for CPU-bound loops).
inline void check_cancelled() {
  if (detail::current_cancelled()) detail::throw_cancelled();
}
}  // namespace this_task

}  // namespace skein
