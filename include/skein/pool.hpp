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
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
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
/// unhandled-error handler, so none is dropped). Errors alike (the same type
/// and what()) are kept once, with a count, and reported once, as a
/// RepeatedError: a worker failing for every item of a long run keeps and
/// reports one error, not one per item.
template <class T>
class Pool {
public:
  template <class F>
    requires std::is_invocable_v<F&, T&&>
  explicit Pool(F worker_func, std::size_t workers = 4) : Pool(std::move(worker_func), workers, workers * 2) {}

  template <class F>
    requires std::is_invocable_v<F&, T&&>
  Pool(F worker_func, std::size_t workers, std::size_t queue_depth)
      : Pool(default_pool(), std::move(worker_func), workers, queue_depth) {}

  /// The workers run on `ex` (a ThreadPool, an EventLoop) instead of default_pool().
  template <TaskExecutor E, class F>
    requires std::is_invocable_v<F&, T&&>
  Pool(E& ex, F worker_func, std::size_t workers, std::size_t queue_depth) : queue_(queue_depth) {
    if (workers == 0) throw UsageError("a Pool needs at least one worker");
    workers_.reserve(workers);
    try {
      for (std::size_t i = 0; i < workers; ++i) workers_.push_back(skein::run(ex, &Pool::work<F>, this, worker_func));
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

  /// Closes and waits; errors not yet rethrown go to the unhandled-error handler
  /// (each kind once: a RepeatedError for one that repeated).
  ~Pool() {
    finish_quietly();
    // Errors nobody rethrew are reported, except cancellations (somebody asked for those).
    for (auto& g : take_errors()) report_group(g.first, g.count, false);
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

  /// Errors of worker_func alike (the same dynamic type and what()): kept once.
  struct ErrorGroup {
    std::exception_ptr first;    // the first of them, as it was thrown
    const std::type_info* type;  // null: unknown, alike no other error
    std::string what;            // empty for an error that is not a std::exception
    std::size_t count;           // items that failed this way
  };

  /// Keeps an error of worker_func for wait()/close(): a new group, or one more
  /// of an alike group (no allocation then). Out of memory, reports it to the
  /// unhandled-error handler instead (never loses it, nor the worker).
  void keep_error(std::exception_ptr e) noexcept {
    try {
      keep_in_its_group(e);
      return;
    } catch (...) {  // std::bad_alloc: nothing was kept
    }
    detail::report_unhandled(std::move(e));
  }
  void keep_in_its_group(const std::exception_ptr& e) {
    // The key is read inside the handler: a rethrown exception may be a copy
    // (MSVC), whose what() lives only as long as the handler.
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      keep_in_group(e, &typeid(ex), ex.what());
    } catch (...) {  // not a std::exception: nothing to compare it by (its payload may differ), kept as it is
      keep_in_group(e, nullptr, {});
    }
  }
  void keep_in_group(const std::exception_ptr& e, const std::type_info* type, std::string_view what) {
    const std::size_t key = type ? type->hash_code() * 31 + std::hash<std::string_view>{}(what) : 0;
    std::lock_guard lk(errors_mu_);
    if (type) {
      for (auto [it, end] = error_index_.equal_range(key); it != end; ++it) {
        auto& g = errors_[it->second];
        if (g.type && *g.type == *type && g.what == what) {
          ++g.count;
          return;
        }
      }
    }
    errors_.push_back(ErrorGroup{e, type, std::string(what), 1});
    if (!type) return;
    try {
      error_index_.emplace(key, errors_.size() - 1);
    } catch (...) {
      errors_.pop_back();
      throw;
    }
  }

  /// Reports `n` items that failed as `first` did, once: `first` itself for
  /// one, a RepeatedError for more (`more`: `first` itself was rethrown, and
  /// these are its repeats). Cancellations are never reported.
  static void report_group(const std::exception_ptr& first, std::size_t n, bool more) noexcept {
    if (n == 0 || detail::PromiseStateBase::is_cancellation(first)) return;
    if (n == 1 && !more) {
      detail::report_unhandled(first);
      return;
    }
    std::exception_ptr e;
    try {
      e = std::make_exception_ptr(RepeatedError(detail::describe_error(first) + " (the same error for " +
                                                    std::to_string(n) + (more ? " more Pool item(s))" : " Pool items)"),
                                                first, n));
    } catch (...) {
      // Out of memory for the RepeatedError: `first` once per item, which
      // allocates nothing, so that no error goes uncounted.
      for (; n > 0; --n) detail::report_unhandled(first);
      return;
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
  std::vector<ErrorGroup> take_errors() noexcept {
    std::lock_guard lk(errors_mu_);
    error_index_.clear();
    return std::exchange(errors_, {});
  }
  /// Rethrows the first error kept as it was thrown; reports its repeats and
  /// every other group once each (cancellations never, as in ~Pool).
  void rethrow_errors() {
    auto groups = take_errors();
    if (groups.empty()) return;
    report_group(groups.front().first, groups.front().count - 1, true);
    for (std::size_t i = 1; i < groups.size(); ++i) report_group(groups[i].first, groups[i].count, false);
    std::rethrow_exception(groups.front().first);
  }

  Queue<T> queue_;
  WaitGroup pending_;
  std::mutex errors_mu_;
  std::vector<ErrorGroup> errors_;                                 // in the order of their first error
  std::unordered_multimap<std::size_t, std::size_t> error_index_;  // hash of (type, what()) -> index in errors_
  std::vector<Promise<void>> workers_;
  std::vector<Promise<void>> watchers_;
};

}  // namespace skein
