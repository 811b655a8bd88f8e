#pragma once
/// Pool<T>: a fixed set of worker tasks processing submitted items (the scripting APIs'
/// threads.Pool / thread.pool), with backpressure and kept errors.

#include "detail/config.hpp"  // first: the C++20 check

#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/concepts.hpp"
#include "detail/coro_promise.hpp"
#include "errors.hpp"
#include "promise.hpp"
#include "queue.hpp"
#include "run.hpp"
#include "wait_group.hpp"

namespace skein {

/// `Pool<int> pool(process, 4, 1000); pool.submit(x); pool.wait(); pool.close();`
///
/// `worker_func(item)` runs on `workers` tasks of default_pool() (it may be a
/// coroutine returning a Promise, which is awaited). submit() blocks while
/// `queue_depth` items are waiting (0 = unbounded). An exception from
/// worker_func never kills a worker or loses other items: it is kept, and the
/// next wait() or close() rethrows the first one kept (further ones go to the
/// unhandled-error handler, so none is dropped).
template <class T>
class Pool {
public:
  template <class F>
    requires std::is_invocable_v<F&, T&&>
  explicit Pool(F worker_func, std::size_t workers = 4) : Pool(std::move(worker_func), workers, workers * 2) {}

  template <class F>
    requires std::is_invocable_v<F&, T&&>
  Pool(F worker_func, std::size_t workers, std::size_t queue_depth) : queue_(queue_depth) {
    if (workers == 0) throw UsageError("a Pool needs at least one worker");
    workers_.reserve(workers);
    try {
      for (std::size_t i = 0; i < workers; ++i) workers_.push_back(skein::run(&Pool::work<F>, this, worker_func));
      watchers_.reserve(workers);
      // Watchers are tasks of no context (cancelling the workers' context must
      // not stop them) on the pool (not on the caller's executor, which may
      // be an EventLoop blocked in close()).
      for (auto& w : workers_)
        watchers_.push_back(detail::start_task(detail::core_of(default_pool()), nullptr, &Pool::watch, this, w));
    } catch (...) {
      finish_quietly();  // the workers that did start must not outlive this constructor
      throw;
    }
  }

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Closes and waits; errors not yet rethrown go to the unhandled-error handler.
  ~Pool() {
    finish_quietly();
    // Errors nobody rethrew are reported, except cancellations (somebody asked for those).
    for (auto& e : take_errors())
      if (!detail::PromiseStateBase::is_cancellation(e)) detail::report_unhandled(e);
  }

  /// Queues `item`, blocking while the queue is full. Throws Closed after close().
  void submit(T item) {
    pending_.add(1);
    try {
      queue_.put(std::move(item));
    } catch (const Closed&) {
      pending_.done();
      throw Closed("submit on a closed Pool");
    } catch (...) {
      pending_.done();
      throw;
    }
  }
  /// `co_await pool.async_submit(item)`: as submit(), suspending instead of
  /// blocking. If it throws (Closed, Cancelled) the item was not queued.
  class [[nodiscard]] SubmitOperation {
  public:
    SubmitOperation(Pool& p, T item) noexcept : p_(p), op_(p.queue_.async_put(std::move(item))) {}
    bool await_ready() {
      p_.pending_.add(1);
      return guarded([&] { return op_.await_ready(); });
    }
    bool await_suspend(std::coroutine_handle<> h) {  // may throw std::bad_alloc (the item is not queued)
      return guarded([&] { return op_.await_suspend(h); });
    }
    void await_resume() {
      guarded([&] {
        op_.await_resume();
        return true;
      });
    }

  private:
    template <class G>
    bool guarded(G g) {
      try {
        return g();
      } catch (const Closed&) {
        p_.pending_.done();
        throw Closed("submit on a closed Pool");  // as submit(): not the inner Queue's message
      } catch (...) {
        p_.pending_.done();
        throw;
      }
    }
    Pool& p_;
    typename Queue<T>::PutOperation op_;
  };
  SubmitOperation async_submit(T item) noexcept { return SubmitOperation(*this, std::move(item)); }

  /// Waits until every submitted item has been processed; rethrows the first
  /// error kept since the last wait().
  void wait() {
    pending_.wait();
    rethrow_errors();
  }

  /// Stops accepting items, finishes every queued item, waits for the workers;
  /// rethrows as wait() does. Idempotent.
  void close() {
    finish();
    rethrow_errors();
  }

  [[nodiscard]] std::size_t workers() const noexcept { return workers_.size(); }
  /// Items submitted and not yet processed.
  [[nodiscard]] std::size_t pending() const noexcept { return static_cast<std::size_t>(pending_.count()); }

private:
  template <class F>
  static Promise<void> work(Pool* self, F f) {
    for (;;) {
      std::optional<T> item;
      try {
        item = co_await self->queue_.async_get();
      } catch (const Cancelled&) {
        self->abandon_items();
        co_return;
      }
      if (!item) co_return;  // closed and drained
      try {
        if constexpr (detail::is_promise_v<std::invoke_result_t<F&, T&&>>) {
          // Not cancellable: the item's coroutine observes the same stop
          // token itself and uses `f`, which lives in this frame.
          auto p = std::invoke(f, std::move(*item));
          (void)co_await detail::ForwardAwaiter<typename std::invoke_result_t<F&, T&&>::value_type>(
              detail::state_of(p));
        } else {
          (void)std::invoke(f, std::move(*item));
        }
      } catch (...) {
        self->keep_error(std::current_exception());
      }
      self->pending_.done();
    }
  }

  /// Keeps an error of worker_func for wait()/close(); out of memory, reports
  /// it to the unhandled-error handler instead (never loses it, nor the worker).
  void keep_error(std::exception_ptr e) noexcept {
    {
      std::lock_guard lk(errors_mu_);
      try {
        errors_.push_back(e);
        return;
      } catch (...) {
      }
    }
    detail::report_unhandled(std::move(e));
  }

  /// The workers' context was cancelled: the Pool can no longer process
  /// anything. Refuses new items, counts the queued ones as done (so wait()
  /// returns) and reports the cancellation through wait()/close().
  void abandon_items() {
    queue_.close();
    std::size_t dropped = 0;
    while (queue_.try_get()) ++dropped;
    keep_error(std::make_exception_ptr(
        Cancelled("Pool workers cancelled; " + std::to_string(dropped) + " queued item(s) not processed")));
    for (; dropped > 0; --dropped) pending_.done();  // last: wait() may return, and the Pool go, after this
  }

  /// A worker cancelled before it started never runs work(), so it cannot
  /// abandon the items itself (found by the soak test: wait() hung, close()
  /// lost them). Its watcher does; finish() waits for the watchers.
  static Promise<void> watch(Pool* self, Promise<void> worker) {
    bool never_started = false;
    try {
      // Not cancellable: the worker observes the same token and settles promptly.
      co_await detail::ForwardAwaiter<void>(detail::state_of(worker));
    } catch (const Cancelled&) {  // work() itself returns normally when cancelled
      never_started = true;
    } catch (...) {
    }
    if (never_started) self->abandon_items();
  }

  void finish() {
    queue_.close();
    for (auto& w : watchers_) detail::wait_settled_ignoring_stop(w);
    // Wait for every worker even if one failed (a worker only fails when its
    // task is cancelled): none may outlive this Pool.
    // The wait ignores the caller's stop token for the same reason.
    std::exception_ptr first;
    for (auto& w : workers_) {
      detail::wait_settled_ignoring_stop(w);
      try {
        w.wait();
      } catch (const Cancelled&) {  // recorded in errors_ by its watcher
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    if (first) std::rethrow_exception(first);
  }
  void finish_quietly() noexcept {
    try {
      finish();
    } catch (...) {  // a worker's Cancelled: already recorded in errors_
    }
  }
  std::vector<std::exception_ptr> take_errors() {
    std::lock_guard lk(errors_mu_);
    return std::exchange(errors_, {});
  }
  void rethrow_errors() {
    auto errs = take_errors();
    if (errs.empty()) return;
    // Cancellations are never reported (somebody asked for them), as in ~Pool.
    for (std::size_t i = 1; i < errs.size(); ++i)
      if (!detail::PromiseStateBase::is_cancellation(errs[i])) detail::report_unhandled(errs[i]);
    std::rethrow_exception(errs.front());
  }

  Queue<T> queue_;
  WaitGroup pending_;
  std::mutex errors_mu_;
  std::vector<std::exception_ptr> errors_;
  std::vector<Promise<void>> workers_;
  std::vector<Promise<void>> watchers_;
};

}  // namespace skein
