#pragma once
/// ThreadPool: the work-stealing executor tasks run on; default_pool(); cpus().

#include "detail/config.hpp"  // first: the C++20 check

#include <coroutine>
#include <cstddef>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <sched.h>
#endif

#include "detail/pool_core.hpp"
#include "executor.hpp"
#include "detail/run_task.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"

namespace skein {

class ThreadPool;
namespace detail {
/// The scheduler behind a ThreadPool (skein's own use; not public API).
PoolCore& core_of(ThreadPool& pool) noexcept;
}  // namespace detail

/// Number of hardware threads this process may run on (honours taskset / cpusets).
inline std::size_t cpus() { return detail::affinity_cpus(); }

/// co_await pool.schedule(): continue on the pool, behind the work already queued.
class [[nodiscard]] ScheduleOperation {
public:
  explicit ScheduleOperation(detail::PoolCore* pool) noexcept : pool_(pool) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { pool_->yield(h); }
  void await_resume() const {
    if (detail::current_cancelled()) detail::throw_cancelled();
  }

private:
  detail::PoolCore* pool_;
};

/// A work-stealing thread pool (see docs/design.md).
///
/// `threads` is the parallelism: the number of tasks running at once. A task
/// that blocks its thread in a skein wait (Promise::get, sleep_for, ...) hands
/// its place to a spare thread, so runnable tasks keep running; at most
/// `max_threads` OS threads exist, and a blocking wait that would need more
/// throws UsageError instead of hanging.
///
/// Destroying the pool cancels it: tasks not yet started fail with Cancelled,
/// every skein wait inside its tasks throws Cancelled, and the destructor
/// returns once every task has finished. (A task stuck in a non-skein wait or
/// a loop that ignores its stop token keeps the destructor waiting.)
class ThreadPool {
public:
  static constexpr std::size_t kDefaultMaxThreads = 10000;

  explicit ThreadPool(std::size_t threads = cpus())
      : ThreadPool(threads, threads > kDefaultMaxThreads ? threads : kDefaultMaxThreads) {}
  ThreadPool(std::size_t threads, std::size_t max_threads)
      : core_(std::make_unique<detail::PoolCore>(threads, max_threads)) {}
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() = default;

  /// Parallelism: how many tasks run at once.
  [[nodiscard]] std::size_t size() const noexcept { return core_->size(); }
  /// The bound on OS threads (running, blocked in skein waits, and spare).
  [[nodiscard]] std::size_t max_threads() const noexcept { return core_->max_threads(); }
  /// OS threads alive now.
  [[nodiscard]] std::size_t thread_count() const { return core_->thread_count(); }

  /// Runs `f()` on the pool, fire-and-forget. An exception from `f` goes to the
  /// unhandled-error handler. Not bound to any context.
  template <class F>
  void post(F&& f) {
    static_assert(std::is_invocable_v<std::decay_t<F>&>, "post(f): f must be callable with no arguments");
    (void)detail::run_task<void>(detail::TaskStart{core_.get(), nullptr},
                                 PostedCall<std::decay_t<F>>{std::forward<F>(f)});
  }

  /// `co_await pool.schedule()` continues the coroutine on this pool.
  [[nodiscard]] ScheduleOperation schedule() noexcept { return ScheduleOperation(core_.get()); }

private:
  friend detail::PoolCore& detail::core_of(ThreadPool&) noexcept;
  friend detail::TaskHost& detail::host_of(ThreadPool&) noexcept;
  template <class F>
  struct PostedCall {
    F f;
    void operator()() { (void)std::invoke(f); }
  };
  std::unique_ptr<detail::PoolCore> core_;
};

/// Wraps a blocking call that is not a skein wait — a read(2), a std::mutex, a
/// foreign library — inside a task: for the guard's lifetime the pool hands
/// this thread's place to a spare thread, exactly as skein's own waits do, so
/// the pool keeps running its other tasks. Outside a pool it does nothing.
/// Throws UsageError if the pool is at its thread bound.
class [[nodiscard]] BlockingRegion {
public:
  BlockingRegion() = default;
  BlockingRegion(const BlockingRegion&) = delete;
  BlockingRegion& operator=(const BlockingRegion&) = delete;

private:
  detail::BlockingGuard guard_;
};

inline detail::PoolCore& detail::core_of(ThreadPool& pool) noexcept { return *pool.core_; }
inline detail::TaskHost& detail::host_of(ThreadPool& pool) noexcept { return *pool.core_; }

/// The process-wide pool, sized to cpus(), created on first use and shut down
/// at exit.
inline ThreadPool& default_pool() {
  static ThreadPool pool;
  return pool;
}

}  // namespace skein
