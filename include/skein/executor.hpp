#pragma once
/// Executors that run skein tasks: the TaskExecutor concept (a ThreadPool, an
/// EventLoop, or your own ExecutorBase) and ExecutorBase, the base of your own.

#include "detail/config.hpp"  // first: the C++20 check

#include <concepts>
#include <coroutine>

#include "detail/assert.hpp"
#include "detail/runtime.hpp"
#include "detail/task_host.hpp"

namespace skein {

class ThreadPool;
namespace detail {
TaskHost& host_of(ThreadPool& pool) noexcept;  // thread_pool.hpp
}  // namespace detail

/// Something skein tasks run on: `run(ex, f, args...)`, `spawn(ex, ...)` and
/// `Context::run(ex, ...)` accept it. A task started on any of them is the
/// same thing: one coroutine frame, bound to the context it was started in,
/// counted by goroutines(), resumed on its executor after every co_await.
template <class E>
concept TaskExecutor = requires(E& e) {
  { detail::host_of(e) } -> std::same_as<detail::TaskHost&>;
};

/// The base of an executor of your own (a GUI thread's queue, a game loop, a
/// strand) on which skein tasks can run: implement schedule(h) to queue `h`,
/// and call resume(h) later on the executor's thread. Tasks started with
/// `skein::run(ex, f)` then run there, and every coroutine running there
/// comes back there after each co_await (executor affinity).
///
/// Destroy it only once its tasks are done (Context::wait, or their
/// promises): shutdown() — which the destructor calls — cancels them, but
/// only the executor's own thread can resume them.
class ExecutorBase : public detail::TaskHost {
public:
  /// Called by skein, from any thread, to queue `h`. Must not throw, and must
  /// not resume `h` inline: queue it, and resume(h) from your loop.
  void schedule(std::coroutine_handle<> h) noexcept override = 0;

protected:
  ExecutorBase() = default;
  ~ExecutorBase() {
    shutdown();
    SKEIN_ASSERT(live_.load() == 0, "an ExecutorBase is destroyed only after its tasks have ended");
  }

  /// Runs `h` (a handle given to schedule) on the calling thread as work of
  /// this executor, until it suspends or ends.
  void resume(std::coroutine_handle<> h) noexcept {
    detail::ThreadBinding bound(this, &scope_);
    detail::resume(h);
  }

  /// Cancels the executor's tasks: those not started yet fail with
  /// Cancelled when resumed, and every skein wait inside the others throws
  /// Cancelled (their contexts are cancelled too). Idempotent.
  void shutdown() noexcept {
    scope_.request_stop();
    cancel_context_tasks();
  }
};

}  // namespace skein
