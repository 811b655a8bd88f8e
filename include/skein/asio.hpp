#pragma once
/// <skein/asio.hpp>: Asio's asynchronous operations as skein promises
/// (optional; not in <skein/skein.hpp>; needs standalone Asio ≥ 1.22, Debian
/// libasio-dev). docs/api/asio.md.
///
///   skein::IoService io;                                  // io_context + thread(s)
///   asio::ip::tcp::socket s(io.context());
///   co_await s.async_connect(ep, skein::use_promise);    // in a skein coroutine
///   auto n = s.async_read_some(buf, skein::use_promise).get();  // in a plain task
///
/// - `skein::use_promise` is a completion token: the operation returns a
///   `skein::IoPromise<R>` (co_await it, or get() it) — R is void for
///   `void(error_code)`, T for `void(error_code, T)`, a tuple for more
///   values. An error code becomes a `std::system_error`; an exception_ptr is
///   rethrown. A wait ends when the operation has ended, never earlier.
/// - Cancellation: the calling task's Context (its stop token) reaches the
///   operation through Asio's per-operation cancellation slot (terminal
///   cancellation, emitted on the I/O object's executor); the operation ends
///   with operation_aborted and the promise fails with skein::Cancelled
///   (carrying the context's cause). An operation started in a task already
///   cancelled is not started.
/// - The completion handler runs on the I/O thread and only settles the
///   promise; the waiting task resumes on its own executor. A handler never
///   touches the task: the promise's state outlives both. An operation
///   abandoned by its io_context (destroyed with it) fails its promise with
///   Cancelled("promise abandoned ...").

#include "detail/config.hpp"  // first: the C++20 check

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/version.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "context.hpp"
#include "errors.hpp"
#include "detail/coro_promise.hpp"
#include "detail/stop_token.hpp"
#include "promise.hpp"

#if ASIO_VERSION < 102200
#error "<skein/asio.hpp> needs standalone Asio 1.22 or newer"
#endif

namespace skein {

/// The completion token: `op(args..., skein::use_promise)` returns a Promise.
struct use_promise_t {
  constexpr use_promise_t() noexcept = default;
};
inline constexpr use_promise_t use_promise{};

/// As use_promise, but an operation's error code is part of its value
/// instead of thrown: `auto [ec, n] = co_await s.async_read_some(buf,
/// skein::use_tuple);` (std::tuple<std::error_code, T...>). A cancellation
/// by the task's Context still throws Cancelled. (asio::experimental::as_tuple
/// around use_promise works too, but hides the I/O object's executor from the
/// adapter: such an operation is not cancelled by the Context.)
struct use_tuple_t {
  constexpr use_tuple_t() noexcept = default;
};
inline constexpr use_tuple_t use_tuple{};

/// An io_context run by threads of its own: where skein tasks' I/O waits.
/// Its destructor stops the context and joins the threads: operations still
/// pending, and completions not yet delivered, are abandoned — their
/// promises fail with Cancelled ("promise abandoned ..."), none hangs.
/// Destroy it after the tasks that use it have ended.
class IoService {
public:
  /// `threads` I/O threads (at least 1). With more than one, give each I/O
  /// object a strand (`asio::make_strand(io.context())`) so that its
  /// operations and their cancellation are serialized.
  explicit IoService(std::size_t threads = 1) : work_(asio::make_work_guard(io_)) {
    if (threads == 0) throw UsageError("an IoService needs at least one thread");
    threads_.reserve(threads);
    try {
      for (std::size_t i = 0; i < threads; ++i)
        threads_.emplace_back([this] {
          detail::name_this_thread("skein-io");
          io_.run();
        });
    } catch (...) {
      shutdown();
      throw;
    }
  }
  IoService(const IoService&) = delete;
  IoService& operator=(const IoService&) = delete;
  ~IoService() { shutdown(); }

  [[nodiscard]] asio::io_context& context() noexcept { return io_; }
  [[nodiscard]] asio::io_context::executor_type get_executor() noexcept { return io_.get_executor(); }
  [[nodiscard]] std::size_t threads() const noexcept { return threads_.size(); }

private:
  void shutdown() noexcept {
    work_.reset();
    io_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

/// What an Asio operation started with `skein::use_promise` returns: the
/// operation's promise, waited for until the operation has ended. The
/// task's cancellation does not end the wait early — it cancels the
/// operation, which then ends promptly — so that the operation never uses a
/// buffer or a socket after the waiting code moved on.
template <class T>
class [[nodiscard]] IoPromise {
public:
  explicit IoPromise(Promise<T> p) noexcept : p_(std::move(p)) {}

  /// `co_await` in a skein coroutine: the value, or the error
  /// (std::system_error; skein::Cancelled if the task's context cancelled it).
  auto operator co_await() && {
    check();
    return detail::ForwardAwaiter<T>(detail::state_of(p_));
  }
  /// Blocks (a plain task or thread) until the operation has ended; as co_await.
  T get() && {
    check();
    detail::wait_settled_ignoring_stop(p_);
    if constexpr (std::is_void_v<T>)
      detail::state_of(p_)->value();
    else
      return detail::state_of(p_)->take_value();
  }
  [[nodiscard]] bool ready() const noexcept { return p_.ready(); }
  /// The promise itself — for select (case_ready), when_all, ...: waits on it
  /// are cancellable as any, so keep the operation's buffers alive until it
  /// is ready (or cancel the operation through its context first).
  [[nodiscard]] Promise<T> promise() && noexcept { return std::move(p_); }

private:
  void check() const {
    if (!p_.valid()) throw UsageError("use of an IoPromise after promise() took its promise");
  }
  Promise<T> p_;
};

namespace detail::asio_adapter {

template <class... Ts>
struct ValueOf {
  using type = std::tuple<Ts...>;
};
template <>
struct ValueOf<> {
  using type = void;
};
template <class T>
struct ValueOf<T> {
  using type = T;
};

/// What an Asio completion signature becomes: the promise's value type, and
/// whether its first argument is an error (error_code or exception_ptr).
template <class Sig>
struct Signature;
template <class R, class... Args>
struct Signature<R(Args...)> {
  using value_type = typename ValueOf<std::decay_t<Args>...>::type;
  static constexpr bool has_error = false;
  static constexpr bool keeps_code = false;
};
template <class R, class... Args>
struct Signature<R(std::error_code, Args...)> {
  using value_type = typename ValueOf<std::decay_t<Args>...>::type;
  static constexpr bool has_error = true;
  static constexpr bool keeps_code = false;
};
template <class R, class... Args>
struct Signature<R(const std::error_code&, Args...)> : Signature<R(std::error_code, Args...)> {};
template <class R, class... Args>
struct Signature<R(std::exception_ptr, Args...)> {
  using value_type = typename ValueOf<std::decay_t<Args>...>::type;
  static constexpr bool has_error = true;
  static constexpr bool keeps_code = false;
};

/// use_tuple: an error code is part of the value.
template <class Sig>
struct TupleSignature : Signature<Sig> {};
template <class R, class... Args>
struct TupleSignature<R(std::error_code, Args...)> {
  using value_type = std::tuple<std::error_code, std::decay_t<Args>...>;
  static constexpr bool has_error = true;
  static constexpr bool keeps_code = true;
};
template <class R, class... Args>
struct TupleSignature<R(const std::error_code&, Args...)> : TupleSignature<R(std::error_code, Args...)> {};

/// One operation's shared state: the promise's resolver, the cancellation
/// signal whose slot the operation uses, and the stop callback that emits it.
template <class T>
class Operation : public std::enable_shared_from_this<Operation<T>> {
public:
  Operation() : ctx_(Context::current()) {}

  Promise<T> promise() const noexcept { return resolver_.promise(); }
  asio::cancellation_slot slot() noexcept { return signal_.slot(); }

  /// After the initiation: the task's stop token now cancels the operation
  /// (emitting on `ex`, where the operation runs).
  void arm(skein::stop_token tok, asio::any_io_executor ex) {
    if (!tok.stop_possible()) return;
    std::lock_guard lk(mu_);
    if (done_) return;
    stop_.emplace(std::move(tok), Emit{this->weak_from_this(), std::move(ex)});
  }

  template <class... A>
  void complete(std::error_code ec, A&&... a) noexcept {
    if (ec) {
      if (ec == asio::error::operation_aborted && cancel_requested_.load(std::memory_order_acquire))
        finish_error(cancelled());
      else
        finish_error(std::make_exception_ptr(std::system_error(ec)));
      return;
    }
    finish_value(std::forward<A>(a)...);
  }
  /// use_tuple: the error code goes into the value, but for the Context's cancellation.
  template <class... A>
  void complete_keeping_code(std::error_code ec, A&&... a) noexcept {
    if (ec == asio::error::operation_aborted && cancel_requested_.load(std::memory_order_acquire))
      finish_error(cancelled());
    else
      finish_value(ec, std::forward<A>(a)...);
  }
  template <class... A>
  void complete(std::exception_ptr e, A&&... a) noexcept {
    if (e)
      finish_error(std::move(e));
    else
      finish_value(std::forward<A>(a)...);
  }
  template <class... A>
  void complete_value(A&&... a) noexcept {
    finish_value(std::forward<A>(a)...);
  }

  /// Fails before the operation started (the task was cancelled already).
  void reject_cancelled() noexcept {
    disarm();
    try {
      resolver_.reject(cancelled());
    } catch (...) {
    }
  }

private:
  // Weak: an operation its io_context abandons (the handler destroyed
  // uninvoked) must still be freed, which fails its promise.
  struct Emit {
    std::weak_ptr<Operation> weak;
    asio::any_io_executor ex;
    void operator()() noexcept {
      auto op = weak.lock();
      if (!op) return;
      op->cancel_requested_.store(true, std::memory_order_release);
      try {
        asio::post(ex, [op = std::move(op)] {
          // Not once the operation has completed: its cancellation handler
          // may point into an I/O object the task has destroyed since.
          std::lock_guard lk(op->mu_);
          if (!op->done_) op->signal_.emit(asio::cancellation_type::terminal);
        });
      } catch (...) {  // no memory to post: the operation completes by itself
      }
    }
  };

  std::exception_ptr cancelled() const noexcept {
    try {
      std::string what = "I/O operation cancelled: the task's stop token fired";
      std::exception_ptr cause = ctx_ ? ctx_->cause() : nullptr;
      if (cause) what += " (cause: " + detail::describe_error(cause) + ")";
      return std::make_exception_ptr(Cancelled(what, std::move(cause)));
    } catch (...) {
      return std::current_exception();
    }
  }
  void disarm() noexcept {
    std::lock_guard lk(mu_);
    done_ = true;
    stop_.reset();  // waits for a callback running now on another thread (it only posts)
  }
  template <class... A>
  void finish_value(A&&... a) noexcept {
    disarm();
    try {
      if constexpr (std::is_void_v<T>)
        resolver_.resolve();
      else if constexpr (sizeof...(A) == 1)
        resolver_.resolve(std::forward<A>(a)...);
      else
        resolver_.resolve(T(std::forward<A>(a)...));
    } catch (...) {
      finish_error(std::current_exception());
    }
  }
  void finish_error(std::exception_ptr e) noexcept {
    disarm();
    try {
      resolver_.reject(std::move(e));
    } catch (...) {  // settled already (cannot happen: one completion per operation)
    }
  }

  Resolver<T> resolver_;
  asio::cancellation_signal signal_;
  std::optional<Context> ctx_;  // for the cancellation's cause
  std::atomic<bool> cancel_requested_{false};
  std::mutex mu_;
  bool done_ = false;                               // under mu_
  std::optional<skein::stop_callback<Emit>> stop_;  // under mu_
};

/// The completion handler given to Asio: it settles the operation's promise.
template <class T, class Traits, class Sig>
class Handler;
template <class T, class Traits, class R, class... Args>
class Handler<T, Traits, R(Args...)> {
public:
  explicit Handler(std::shared_ptr<Operation<T>> op) noexcept : op_(std::move(op)) {}
  using cancellation_slot_type = asio::cancellation_slot;
  cancellation_slot_type get_cancellation_slot() const noexcept { return op_->slot(); }

  void operator()(Args... args) {
    auto op = std::move(op_);
    if constexpr (Traits::keeps_code)
      op->complete_keeping_code(std::forward<Args>(args)...);
    else if constexpr (Traits::has_error)
      op->complete(std::forward<Args>(args)...);
    else
      op->complete_value(std::forward<Args>(args)...);
  }

private:
  std::shared_ptr<Operation<T>> op_;
};

}  // namespace detail::asio_adapter
}  // namespace skein

namespace skein::detail::asio_adapter {

/// Starts `init` with a handler settling a new operation's promise, armed for
/// the calling task's cancellation.
template <class Traits, class Sig, class Initiation, class... InitArgs>
IoPromise<typename Traits::value_type> start(Initiation&& init, InitArgs&&... args) {
  using T = typename Traits::value_type;
  auto op = std::make_shared<Operation<T>>();
  IoPromise<T> p(op->promise());
  skein::stop_token tok = this_task::stop_token();
  if (tok.stop_requested()) {  // cancelled already: the operation is not started
    op->reject_cancelled();
    return p;
  }
  // Where the operation runs, for the cancellation's emission (an initiation
  // without an executor cannot be cancelled by the context).
  std::optional<asio::any_io_executor> ex;
  if constexpr (requires { init.get_executor(); }) ex.emplace(init.get_executor());
  std::forward<Initiation>(init)(Handler<T, Traits, Sig>(op), std::forward<InitArgs>(args)...);
  if (ex) op->arm(std::move(tok), std::move(*ex));
  return p;
}

}  // namespace skein::detail::asio_adapter

namespace asio {

/// skein::use_promise: the operation returns skein::IoPromise<value>.
template <class R, class... Args>
class async_result<skein::use_promise_t, R(Args...)> {
  using Traits = skein::detail::asio_adapter::Signature<R(Args...)>;

public:
  using return_type = skein::IoPromise<typename Traits::value_type>;
  template <class Initiation, class RawToken, class... InitArgs>
  static return_type initiate(Initiation&& init, RawToken&&, InitArgs&&... args) {
    return skein::detail::asio_adapter::start<Traits, R(Args...)>(std::forward<Initiation>(init),
                                                                  std::forward<InitArgs>(args)...);
  }
};

/// skein::use_tuple: as use_promise, the error code in the value.
template <class R, class... Args>
class async_result<skein::use_tuple_t, R(Args...)> {
  using Traits = skein::detail::asio_adapter::TupleSignature<R(Args...)>;

public:
  using return_type = skein::IoPromise<typename Traits::value_type>;
  template <class Initiation, class RawToken, class... InitArgs>
  static return_type initiate(Initiation&& init, RawToken&&, InitArgs&&... args) {
    return skein::detail::asio_adapter::start<Traits, R(Args...)>(std::forward<Initiation>(init),
                                                                  std::forward<InitArgs>(args)...);
  }
};

}  // namespace asio
