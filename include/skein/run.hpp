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

/// A callable for run(), not an executor or a TaskName (those are the other overloads).
template <class F>
concept TaskFn = !TaskExecutor<std::remove_cvref_t<F>> && !std::is_same_v<std::remove_cvref_t<F>, TaskSite>;

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
/// start_checked for a task with a start site (and maybe a name).
template <class F, class... Args>
auto start_at(const TaskSite& site, TaskHost& host, Scope* ctx, F&& f, Args&&... args) {
  return start_checked(TaskStart{&host, ctx, nullptr, site}, std::forward<F>(f), std::forward<Args>(args)...);
}
}  // namespace detail

/// Where a call is (std::source_location's file, line and function, where the
/// standard library has it).
using SourceSite = detail::SourceSite;
/// A task's name and start site: `skein::run(skein::named("fetch"), f, args...)`.
using TaskName = detail::TaskSite;

/// Names the task started by the call it is passed to (run, spawn,
/// TaskGroup::run, Context::run, EventLoop::spawn) and records where that
/// call is. `name` is not copied: it must outlive the task and any trace
/// that shows it (a string literal, typically).
inline TaskName named(const char* name, SourceSite where = SourceSite::current()) noexcept {
  return TaskName{where, name};
}
/// Records where the call it is passed to is, without a name: for the calls
/// that cannot record it by themselves (those with more than three arguments
/// for the task's function).
inline TaskName here(SourceSite where = SourceSite::current()) noexcept { return TaskName{where, nullptr}; }

/// Runs `f(args...)` as a task on `ex` (a ThreadPool, an EventLoop, an
/// ExecutorBase of yours) and returns its Promise. Arguments are decay-copied
/// (use std::ref for references); if `f` takes a skein::stop_token first it
/// receives the task's token. Inside a context-bound task, the new task is
/// bound to the same context. A function returning Promise<U> gives
/// Promise<U>.
///
/// A call that cannot work (f not callable with the arguments, an argument
/// that cannot be copied) fails to compile with a static_assert saying so.
///
/// The task records where it was started (for traces: docs/api/trace.md):
/// the calls with up to three arguments for `f` do by themselves (a
/// defaulted std::source_location after them); with more, pass
/// skein::here() or skein::named("...") first.
template <TaskExecutor E, detail::TaskFn F>
auto run(E& ex, F&& f, SourceSite where = SourceSite::current()) {
  return detail::start_at({where}, detail::host_of(ex), detail::inherited_context(), std::forward<F>(f));
}
template <TaskExecutor E, detail::TaskFn F, class A>
auto run(E& ex, F&& f, A&& a, SourceSite where = SourceSite::current()) {
  return detail::start_at({where}, detail::host_of(ex), detail::inherited_context(), std::forward<F>(f),
                          std::forward<A>(a));
}
template <TaskExecutor E, detail::TaskFn F, class A, class B>
auto run(E& ex, F&& f, A&& a, B&& b, SourceSite where = SourceSite::current()) {
  return detail::start_at({where}, detail::host_of(ex), detail::inherited_context(), std::forward<F>(f),
                          std::forward<A>(a), std::forward<B>(b));
}
template <TaskExecutor E, detail::TaskFn F, class A, class B, class C>
auto run(E& ex, F&& f, A&& a, B&& b, C&& c, SourceSite where = SourceSite::current()) {
  return detail::start_at({where}, detail::host_of(ex), detail::inherited_context(), std::forward<F>(f),
                          std::forward<A>(a), std::forward<B>(b), std::forward<C>(c));
}
template <TaskExecutor E, detail::TaskFn F, class A, class B, class C, class D, class... Rest>
auto run(E& ex, F&& f, A&& a, B&& b, C&& c, D&& d, Rest&&... rest) {
  return detail::start_checked(detail::host_of(ex), detail::inherited_context(), std::forward<F>(f), std::forward<A>(a),
                               std::forward<B>(b), std::forward<C>(c), std::forward<D>(d), std::forward<Rest>(rest)...);
}
/// run() of a named task (or one whose start site is given: skein::here()).
template <TaskExecutor E, class F, class... Args>
auto run(E& ex, TaskName name, F&& f, Args&&... args) {
  return detail::start_at(name, detail::host_of(ex), detail::inherited_context(), std::forward<F>(f),
                          std::forward<Args>(args)...);
}

/// run() on default_pool().
template <detail::TaskFn F>
auto run(F&& f, SourceSite where = SourceSite::current()) {
  return detail::start_at({where}, detail::host_of(default_pool()), detail::inherited_context(), std::forward<F>(f));
}
template <detail::TaskFn F, class A>
auto run(F&& f, A&& a, SourceSite where = SourceSite::current()) {
  return detail::start_at({where}, detail::host_of(default_pool()), detail::inherited_context(), std::forward<F>(f),
                          std::forward<A>(a));
}
template <detail::TaskFn F, class A, class B>
auto run(F&& f, A&& a, B&& b, SourceSite where = SourceSite::current()) {
  return detail::start_at({where}, detail::host_of(default_pool()), detail::inherited_context(), std::forward<F>(f),
                          std::forward<A>(a), std::forward<B>(b));
}
template <detail::TaskFn F, class A, class B, class C>
auto run(F&& f, A&& a, B&& b, C&& c, SourceSite where = SourceSite::current()) {
  return detail::start_at({where}, detail::host_of(default_pool()), detail::inherited_context(), std::forward<F>(f),
                          std::forward<A>(a), std::forward<B>(b), std::forward<C>(c));
}
template <detail::TaskFn F, class A, class B, class C, class D, class... Rest>
auto run(F&& f, A&& a, B&& b, C&& c, D&& d, Rest&&... rest) {
  return run(default_pool(), std::forward<F>(f), std::forward<A>(a), std::forward<B>(b), std::forward<C>(c),
             std::forward<D>(d), std::forward<Rest>(rest)...);
}
template <class F, class... Args>
auto run(TaskName name, F&& f, Args&&... args) {
  return run(default_pool(), name, std::forward<F>(f), std::forward<Args>(args)...);
}

/// Fire-and-forget run(): an exception from the task goes to the
/// unhandled-error handler. Records its start site as run() does.
template <detail::TaskFn F>
void spawn(F&& f, SourceSite where = SourceSite::current()) {
  (void)run(here(where), std::forward<F>(f));
}
template <detail::TaskFn F, class A>
void spawn(F&& f, A&& a, SourceSite where = SourceSite::current()) {
  (void)run(here(where), std::forward<F>(f), std::forward<A>(a));
}
template <detail::TaskFn F, class A, class B>
void spawn(F&& f, A&& a, B&& b, SourceSite where = SourceSite::current()) {
  (void)run(here(where), std::forward<F>(f), std::forward<A>(a), std::forward<B>(b));
}
template <detail::TaskFn F, class A, class B, class C>
void spawn(F&& f, A&& a, B&& b, C&& c, SourceSite where = SourceSite::current()) {
  (void)run(here(where), std::forward<F>(f), std::forward<A>(a), std::forward<B>(b), std::forward<C>(c));
}
template <detail::TaskFn F, class A, class B, class C, class D, class... Rest>
void spawn(F&& f, A&& a, B&& b, C&& c, D&& d, Rest&&... rest) {
  (void)run(std::forward<F>(f), std::forward<A>(a), std::forward<B>(b), std::forward<C>(c), std::forward<D>(d),
            std::forward<Rest>(rest)...);
}
template <class F, class... Args>
void spawn(TaskName name, F&& f, Args&&... args) {
  (void)run(name, std::forward<F>(f), std::forward<Args>(args)...);
}
template <TaskExecutor E, detail::TaskFn F>
void spawn(E& ex, F&& f, SourceSite where = SourceSite::current()) {
  (void)run(ex, here(where), std::forward<F>(f));
}
template <TaskExecutor E, detail::TaskFn F, class A>
void spawn(E& ex, F&& f, A&& a, SourceSite where = SourceSite::current()) {
  (void)run(ex, here(where), std::forward<F>(f), std::forward<A>(a));
}
template <TaskExecutor E, detail::TaskFn F, class A, class B>
void spawn(E& ex, F&& f, A&& a, B&& b, SourceSite where = SourceSite::current()) {
  (void)run(ex, here(where), std::forward<F>(f), std::forward<A>(a), std::forward<B>(b));
}
template <TaskExecutor E, detail::TaskFn F, class A, class B, class C>
void spawn(E& ex, F&& f, A&& a, B&& b, C&& c, SourceSite where = SourceSite::current()) {
  (void)run(ex, here(where), std::forward<F>(f), std::forward<A>(a), std::forward<B>(b), std::forward<C>(c));
}
template <TaskExecutor E, detail::TaskFn F, class A, class B, class C, class D, class... Rest>
void spawn(E& ex, F&& f, A&& a, B&& b, C&& c, D&& d, Rest&&... rest) {
  (void)run(ex, std::forward<F>(f), std::forward<A>(a), std::forward<B>(b), std::forward<C>(c), std::forward<D>(d),
            std::forward<Rest>(rest)...);
}
template <TaskExecutor E, class F, class... Args>
void spawn(E& ex, TaskName name, F&& f, Args&&... args) {
  (void)run(ex, name, std::forward<F>(f), std::forward<Args>(args)...);
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
