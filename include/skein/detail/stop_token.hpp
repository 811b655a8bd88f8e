#pragma once
// skein::stop_token, skein::stop_source and skein::stop_callback: the
// standard library's std::stop_token, std::stop_source and std::stop_callback
// where it has them (__cpp_lib_jthread: libstdc++ 10 and newer), and skein's
// own implementation of the same interface where it does not (libc++ 16 has
// no <stop_token>; later libc++ versions first offered it only under
// -fexperimental-library, and define __cpp_lib_jthread only then).
//
// The own implementation (detail::stop_impl) is always defined, so that the
// tests check it on every standard library; SKEIN_OWN_STOP_TOKEN=1 makes
// skein use it where std's exists too. Semantics are the standard's:
// request_stop() runs the registered callbacks on the requesting thread, each
// once, outside the state's lock; a callback constructed after the request
// runs at once, in its constructor; a callback's destructor deregisters it,
// waiting for it to finish if it is running on another thread, but not if it
// is running on this one (a callback that destroys itself).

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <version>

#if defined(__cpp_lib_jthread) && !(defined(SKEIN_OWN_STOP_TOKEN) && SKEIN_OWN_STOP_TOKEN)
#include <stop_token>
#define SKEIN_STD_STOP_TOKEN 1
#else
#define SKEIN_STD_STOP_TOKEN 0
#endif

namespace skein::detail::stop_impl {

class stop_token;
class stop_source;

/// A registered callback: a node of its state's list.
struct CallbackNode {
  CallbackNode* next = nullptr;
  CallbackNode* prev = nullptr;
  void (*invoke)(CallbackNode*) noexcept = nullptr;
  bool linked = false;
};

/// The shared state of a stop_source and its tokens and callbacks.
class StopState {
public:
  void add_ref() noexcept {
    std::lock_guard lk(mu_);
    ++refs_;
  }
  void release() noexcept {
    bool last;
    {
      std::lock_guard lk(mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
  }
  void add_source() noexcept {
    std::lock_guard lk(mu_);
    ++refs_;
    ++sources_;
  }
  void release_source() noexcept {
    {
      std::lock_guard lk(mu_);
      --sources_;
    }
    release();
  }

  /// Lock-free: polled by cancellation checks (this_task::cancelled()).
  bool stop_requested() const noexcept { return requested_.load(std::memory_order_acquire); }
  bool stop_possible() const noexcept {
    std::lock_guard lk(mu_);
    return requested_.load(std::memory_order_relaxed) || sources_ > 0;
  }

  /// Runs the callbacks, each outside the lock; false if stop was requested before.
  bool request_stop() noexcept {
    std::unique_lock lk(mu_);
    if (requested_.load(std::memory_order_relaxed)) return false;
    requested_.store(true, std::memory_order_release);
    stopper_ = std::this_thread::get_id();
    while (CallbackNode* n = head_) {
      unlink(n);
      running_ = n;
      lk.unlock();
      n->invoke(n);  // may destroy n (its own destructor, on this thread): n is not touched after
      lk.lock();
      running_ = nullptr;
      done_.notify_all();
    }
    return true;
  }

  /// Registers n, or returns false (without registering) if stop was requested.
  bool add(CallbackNode* n) noexcept {
    std::lock_guard lk(mu_);
    if (requested_.load(std::memory_order_relaxed)) return false;
    n->prev = nullptr;
    n->next = head_;
    if (head_) head_->prev = n;
    head_ = n;
    n->linked = true;
    return true;
  }

  /// Deregisters n; if request_stop is running it on another thread, waits for it to return.
  void remove(CallbackNode* n) noexcept {
    std::unique_lock lk(mu_);
    if (n->linked) {
      unlink(n);
      return;
    }
    if (running_ == n && stopper_ != std::this_thread::get_id()) {
      done_.wait(lk, [&] { return running_ != n; });
    }
  }

private:
  void unlink(CallbackNode* n) noexcept {
    if (n->prev) {
      n->prev->next = n->next;
    } else {
      head_ = n->next;
    }
    if (n->next) n->next->prev = n->prev;
    n->next = n->prev = nullptr;
    n->linked = false;
  }

  mutable std::mutex mu_;
  std::condition_variable done_;  // running_ went back to nullptr
  std::size_t refs_ = 1;          // the sources, tokens and callbacks that hold this state
  std::size_t sources_ = 1;
  std::atomic<bool> requested_{false};  // written under mu_
  std::thread::id stopper_;             // the thread of request_stop
  CallbackNode* head_ = nullptr;        // the registered callbacks
  CallbackNode* running_ = nullptr;     // the one request_stop is running
};

class stop_token {
public:
  stop_token() noexcept = default;
  stop_token(const stop_token& o) noexcept : st_(o.st_) {
    if (st_) st_->add_ref();
  }
  stop_token(stop_token&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  stop_token& operator=(const stop_token& o) noexcept {
    stop_token(o).swap(*this);
    return *this;
  }
  stop_token& operator=(stop_token&& o) noexcept {
    stop_token(std::move(o)).swap(*this);
    return *this;
  }
  ~stop_token() {
    if (st_) st_->release();
  }

  [[nodiscard]] bool stop_requested() const noexcept { return st_ && st_->stop_requested(); }
  [[nodiscard]] bool stop_possible() const noexcept { return st_ && st_->stop_possible(); }
  void swap(stop_token& o) noexcept { std::swap(st_, o.st_); }
  friend void swap(stop_token& a, stop_token& b) noexcept { a.swap(b); }
  [[nodiscard]] friend bool operator==(const stop_token& a, const stop_token& b) noexcept { return a.st_ == b.st_; }

private:
  friend class stop_source;
  template <class CB>
  friend class stop_callback;
  explicit stop_token(StopState* st) noexcept : st_(st) {
    if (st_) st_->add_ref();
  }
  StopState* st_ = nullptr;
};

struct nostopstate_t {
  explicit nostopstate_t() = default;
};
inline constexpr nostopstate_t nostopstate{};

class stop_source {
public:
  stop_source() : st_(new StopState) {}
  explicit stop_source(nostopstate_t) noexcept {}
  stop_source(const stop_source& o) noexcept : st_(o.st_) {
    if (st_) st_->add_source();
  }
  stop_source(stop_source&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  stop_source& operator=(const stop_source& o) noexcept {
    stop_source(o).swap(*this);
    return *this;
  }
  stop_source& operator=(stop_source&& o) noexcept {
    stop_source(std::move(o)).swap(*this);
    return *this;
  }
  ~stop_source() {
    if (st_) st_->release_source();
  }

  [[nodiscard]] stop_token get_token() const noexcept { return stop_token(st_); }
  [[nodiscard]] bool stop_possible() const noexcept { return st_ != nullptr; }
  [[nodiscard]] bool stop_requested() const noexcept { return st_ && st_->stop_requested(); }
  bool request_stop() noexcept { return st_ && st_->request_stop(); }
  void swap(stop_source& o) noexcept { std::swap(st_, o.st_); }
  friend void swap(stop_source& a, stop_source& b) noexcept { a.swap(b); }
  [[nodiscard]] friend bool operator==(const stop_source& a, const stop_source& b) noexcept { return a.st_ == b.st_; }

private:
  StopState* st_ = nullptr;
};

template <class CB>
class stop_callback : CallbackNode {
  static_assert(std::is_invocable_v<CB>, "stop_callback: the callback must be invocable without arguments");
  static_assert(std::is_destructible_v<CB>, "stop_callback: the callback must be destructible");

public:
  using callback_type = CB;

  template <class C>
    requires std::is_constructible_v<CB, C>
  explicit stop_callback(const stop_token& tok, C&& cb) noexcept(std::is_nothrow_constructible_v<CB, C>)
      : cb_(std::forward<C>(cb)) {
    attach(tok.st_);
  }
  template <class C>
    requires std::is_constructible_v<CB, C>
  explicit stop_callback(stop_token&& tok, C&& cb) noexcept(std::is_nothrow_constructible_v<CB, C>)
      : cb_(std::forward<C>(cb)) {
    attach(tok.st_);
  }
  ~stop_callback() {
    if (st_) {
      st_->remove(this);
      st_->release();
    }
  }
  stop_callback(const stop_callback&) = delete;
  stop_callback& operator=(const stop_callback&) = delete;
  stop_callback(stop_callback&&) = delete;
  stop_callback& operator=(stop_callback&&) = delete;

private:
  void attach(StopState* st) noexcept {
    if (!st) return;
    invoke = [](CallbackNode* n) noexcept { std::forward<CB>(static_cast<stop_callback*>(n)->cb_)(); };
    st->add_ref();
    if (st->add(this)) {
      st_ = st;
    } else {  // stop was requested: run now, on this thread
      st->release();
      std::forward<CB>(cb_)();
    }
  }

  CB cb_;
  StopState* st_ = nullptr;  // while registered or run by request_stop
};

template <class CB>
stop_callback(stop_token, CB) -> stop_callback<CB>;

}  // namespace skein::detail::stop_impl

namespace skein {

// The stop token types skein takes and gives (this_task::stop_token(),
// Context::token(), case_done, a task function's first parameter).
#if SKEIN_STD_STOP_TOKEN
using std::nostopstate;
using std::stop_callback;
using std::stop_source;
using std::stop_token;
#else
using detail::stop_impl::nostopstate;
using detail::stop_impl::stop_callback;
using detail::stop_impl::stop_source;
using detail::stop_impl::stop_token;
#endif

}  // namespace skein
