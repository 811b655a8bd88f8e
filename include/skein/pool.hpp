#pragma once
/// Pool<T>: a fixed set of worker tasks processing submitted items (the seeds'
/// threads.Pool / thread.pool), with backpressure and kept errors.

#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/concepts.hpp"
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
    for (std::size_t i = 0; i < workers; ++i) workers_.push_back(skein::run(&Pool::work<F>, this, worker_func));
  }

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Closes and waits; errors not yet rethrown go to the unhandled-error handler.
  ~Pool() {
    try {
      finish();
    } catch (...) {
    }
    for (auto& e : take_errors()) detail::report_unhandled(e);
  }

  /// Queues `item`, blocking while the queue is full. Throws Closed after close().
  void submit(T item) {
    pending_.add(1);
    try {
      queue_.put(std::move(item));
    } catch (...) {
      pending_.done();
      throw;
    }
  }
  /// `co_await pool.async_submit(item)`: as submit(), suspending instead of blocking.
  Promise<void> async_submit(T item) {
    pending_.add(1);
    try {
      co_await queue_.async_put(std::move(item));
    } catch (...) {
      pending_.done();
      throw;
    }
  }

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
    while (auto item = co_await self->queue_.async_get()) {
      try {
        if constexpr (detail::is_promise_v<std::invoke_result_t<F&, T&&>>)
          (void)co_await std::invoke(f, std::move(*item));
        else
          (void)std::invoke(f, std::move(*item));
      } catch (...) {
        std::lock_guard lk(errors_mu_of(self));
        self->errors_.push_back(std::current_exception());
      }
      self->pending_.done();
    }
  }
  static std::mutex& errors_mu_of(Pool* self) noexcept { return self->errors_mu_; }

  void finish() {
    queue_.close();
    // Wait for every worker even if one failed (a worker only fails when its
    // task is cancelled): none may outlive this Pool.
    // The wait ignores the caller's stop token for the same reason.
    std::exception_ptr first;
    for (auto& w : workers_) {
      detail::wait_settled_ignoring_stop(w);
      try {
        w.wait();
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    if (first) std::rethrow_exception(first);
  }
  std::vector<std::exception_ptr> take_errors() {
    std::lock_guard lk(errors_mu_);
    return std::exchange(errors_, {});
  }
  void rethrow_errors() {
    auto errs = take_errors();
    if (errs.empty()) return;
    for (std::size_t i = 1; i < errs.size(); ++i) detail::report_unhandled(errs[i]);
    std::rethrow_exception(errs.front());
  }

  Queue<T> queue_;
  WaitGroup pending_;
  std::mutex errors_mu_;
  std::vector<std::exception_ptr> errors_;
  std::vector<Promise<void>> workers_;
};

}  // namespace skein
