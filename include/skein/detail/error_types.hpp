#pragma once
// Error types and the unhandled-error handler (docs/api/errors.md), for
// <skein/errors.hpp> and the detail headers (which include no public header).

#include <cstddef>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace skein {

/// A wait or a task was aborted because its stop token fired (cancel, timeout, shutdown).
/// cause() is the error the context was cancelled with (Context::cancel(cause)), if any.
class Cancelled : public std::runtime_error {
public:
  Cancelled() : std::runtime_error("operation cancelled") {}
  explicit Cancelled(const std::string& what, std::exception_ptr cause = nullptr)
      : std::runtime_error(what), cause_(std::move(cause)) {}
  /// The cause given to Context::cancel(cause) (or with_timeout's), or null.
  [[nodiscard]] const std::exception_ptr& cause() const noexcept { return cause_; }

private:
  std::exception_ptr cause_;
};

/// An operation on a closed object: put on a closed Queue, submit on a closed Pool, post to a stopped EventLoop.
class Closed : public std::runtime_error {
public:
  explicit Closed(const std::string& what) : std::runtime_error(what) {}
};

/// A blocking wait that the deadlock detector failed: every thread of the
/// process was parked in skein and nothing could ever release it
/// (docs/api/deadlock.md). what() names the wait.
class Deadlock : public std::runtime_error {
public:
  explicit Deadlock(const std::string& what) : std::runtime_error(what) {}
};

/// Misuse of an API: negative WaitGroup counter, unlock of an unlocked Mutex, zero workers, ...
class UsageError : public std::logic_error {
public:
  explicit UsageError(const std::string& what) : std::logic_error(what) {}
};

/// An error that repeated: `count()` items failed alike (the same dynamic type
/// and what()) and `first()` is the first of them, as it was thrown. Pool
/// reports its repeated worker errors as one of these rather than one by one.
class RepeatedError : public std::runtime_error {
public:
  RepeatedError(const std::string& what, std::exception_ptr first, std::size_t count)
      : std::runtime_error(what), first_(std::move(first)), count_(count) {}
  /// The first of the errors, with its own type (std::rethrow_exception it to inspect it).
  [[nodiscard]] std::exception_ptr first() const noexcept { return first_; }
  /// How many items failed that way.
  [[nodiscard]] std::size_t count() const noexcept { return count_; }

private:
  std::exception_ptr first_;
  std::size_t count_;
};

/// Receives the error of a failed task whose result nobody can observe any more.
using UnhandledErrorHandler = std::function<void(std::exception_ptr)>;

namespace detail {

struct UnhandledRegistry {
  std::mutex mu;
  // Shared: a report takes its own reference without copying the function
  // (a copy may allocate, and reporting must not fail).
  std::shared_ptr<const UnhandledErrorHandler> handler;
};

inline UnhandledRegistry& unhandled_registry() {
  static UnhandledRegistry r;
  return r;
}

/// what() of the error in `e` (for messages).
inline std::string describe_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

inline void default_unhandled(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "skein: unhandled error in a task: %s\n", ex.what());
  } catch (...) {
    std::fprintf(stderr, "skein: unhandled error in a task (not a std::exception)\n");
  }
}

/// Reports `e` once to the installed handler. Never throws: a throwing handler
/// falls back to the default report so that the original error is not lost.
inline void report_unhandled(std::exception_ptr e) noexcept {
  std::shared_ptr<const UnhandledErrorHandler> h;
  {
    auto& r = unhandled_registry();
    std::lock_guard lk(r.mu);
    h = r.handler;
  }
  if (!h) {
    default_unhandled(std::move(e));
    return;
  }
  try {
    (*h)(e);
  } catch (...) {
    default_unhandled(std::move(e));
  }
}

}  // namespace detail

/// Installs `handler` for errors nobody can observe; `nullptr` restores the default (stderr).
inline void set_unhandled_error_handler(UnhandledErrorHandler handler) {
  auto h = handler ? std::make_shared<const UnhandledErrorHandler>(std::move(handler)) : nullptr;
  auto& r = detail::unhandled_registry();
  std::lock_guard lk(r.mu);
  r.handler = std::move(h);
}

}  // namespace skein
