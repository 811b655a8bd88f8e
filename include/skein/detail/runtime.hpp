#pragma once
// Per-thread runtime state shared by every skein primitive: the scope (stop
// token) of the task running on this thread, the executor driving the thread,
// the blocking hook of pool workers, and the resume trampoline.

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>

#include "assert.hpp"
#include "spin.hpp"
#include "stop_token.hpp"
#include "trace_core.hpp"

namespace skein::detail {

/// A registration with a scope's cancellation (Scope::add_canceller): `fn`
/// runs once, on the thread that stops the scope, unless it was removed
/// first. The coroutine waits' own, cheaper than a skein::stop_callback (one
/// locked instruction to add, one to remove, no stop_token reference counts):
/// every cancellable co_await registers one.
struct Canceller {
  void (*fn)(Canceller*) noexcept = nullptr;
  Canceller* prev = nullptr;
  Canceller* next = nullptr;
  // Under the scope's lock: linked, or popped by a stopping thread (`gone`
  // then points to that thread's flag, `done` is set once fn has returned).
  bool linked = false;
  bool* gone = nullptr;
  const void* runner = nullptr;  // the thread running fn (its tls address)
  std::atomic<bool> done{false};
};

/// A cancellation scope: a pool's root scope (owned by the pool, never
/// released) or a Context's state (intrusively reference-counted: held by the
/// Context handles and by every task and coroutine bound to it).
///
/// Stopping a scope (request_stop, the only way skein stops one) stops its
/// skein::stop_source, which runs the std::stop_callbacks registered on its
/// tokens (a blocked thread's wait, a child context's link, a user's own), and
/// then runs its Cancellers (the suspended coroutines' waits).
struct Scope {
  Scope() = default;
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  virtual ~Scope() = default;

  skein::stop_source source;
  bool is_context = false;
  std::atomic<long> refs{1};

  [[nodiscard]] bool stop_requested() const noexcept { return source.stop_requested(); }

  /// Stops the scope: the stop source first, then every registered Canceller,
  /// one at a time, outside the lock (a canceller may resume its coroutine
  /// inline, which removes its own registration or registers others).
  void request_stop() noexcept {
    source.request_stop();
    for (;;) {
      Canceller* c;
      bool gone = false;
      {
        std::lock_guard lk(cancel_lock_);
        c = cancel_head_;
        if (!c) return;
        unlink(c);
        c->gone = &gone;
        c->runner = &tls_marker();
      }
      c->fn(c);
      // Its owner may be gone already if fn resumed it on this thread (it
      // then set `gone`), or be waiting for `done` on another.
      if (!gone) c->done.store(true, std::memory_order_release);
    }
  }

  /// Registers `c` unless the scope is stopped already (then returns false and
  /// registers nothing: the caller acts as cancelled).
  bool add_canceller(Canceller* c) const noexcept {
    std::lock_guard lk(cancel_lock_);
    // Under the lock: request_stop stops the source before it takes the lock,
    // so a registration either sees the stop or is seen by request_stop.
    if (source.stop_requested()) return false;
    c->linked = true;
    c->runner = nullptr;
    c->done.store(false, std::memory_order_relaxed);
    c->prev = nullptr;
    c->next = cancel_head_;
    if (cancel_head_) cancel_head_->prev = c;
    cancel_head_ = c;
    return true;
  }

  /// Removes `c`. If a stopping thread has popped it, waits until its fn has
  /// returned (at once if fn is running on this very thread, up the stack).
  void remove_canceller(Canceller* c) const noexcept {
    {
      std::lock_guard lk(cancel_lock_);
      if (c->linked) {
        unlink(c);
        return;
      }
      if (c->done.load(std::memory_order_acquire)) return;
      // Not done, yet popped by this thread: fn is running up this stack
      // (it resumed our coroutine inline). It must not touch `c` afterwards.
      if (c->runner == &tls_marker()) {
        *c->gone = true;
        return;
      }
    }
    for (unsigned i = 0; !c->done.load(std::memory_order_acquire);) spin_wait_step(i);
  }

  void retain() noexcept {
    [[maybe_unused]] const long old = refs.fetch_add(1, std::memory_order_relaxed);
    SKEIN_ASSERT(old > 0, "a scope is retained only while referenced (try_retain otherwise)");
  }
  void release() noexcept {
    // acq_rel: the last owner sees every other owner's writes before deleting.
    const long old = refs.fetch_sub(1, std::memory_order_acq_rel);
    SKEIN_ASSERT(old > 0, "a scope is released only while referenced");
    if (old == 1) delete this;
  }
  /// Retains unless the scope is already dying (refs reached zero).
  bool try_retain() noexcept {
    long r = refs.load(std::memory_order_relaxed);
    while (r > 0)
      if (refs.compare_exchange_weak(r, r + 1, std::memory_order_relaxed)) return true;
    return false;
  }
  /// Task accounting for Context::wait (no-ops for a pool's scope).
  virtual void task_started() noexcept {}
  virtual void task_finished() noexcept {}
  /// The error the scope was cancelled with (a Context's cancel(cause)), or null.
  [[nodiscard]] virtual std::exception_ptr cancel_cause() const noexcept { return nullptr; }

private:
  static const char& tls_marker() noexcept {
    static thread_local const char marker = 0;
    return marker;
  }
  void unlink(Canceller* c) const noexcept {
    if (c->prev)
      c->prev->next = c->next;
    else
      cancel_head_ = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = nullptr;
    c->linked = false;
  }

  mutable SpinLock cancel_lock_;
  mutable Canceller* cancel_head_ = nullptr;
};

/// Something that can run a coroutine later (a ThreadPool, an EventLoop).
class Executor {
public:
  /// Queues `h` to be resumed on this executor. Never throws.
  virtual void schedule(std::coroutine_handle<> h) noexcept = 0;
  /// Queues `h` to run next on this thread if it belongs to the executor (the
  /// LIFO slot: a task woken by the running one runs next), else like schedule.
  virtual void schedule_next(std::coroutine_handle<> h) noexcept { schedule(h); }

  /// Executors that stop when they run out of work (an EventLoop) count the
  /// coroutines suspended on them, which will come back; pools leave it null.
  std::atomic<long>* outstanding = nullptr;

protected:
  ~Executor() = default;
};

/// Called around a wait that really blocks the OS thread, so that a pool can
/// hand the worker's place to another thread (Go's handoff on a syscall).
class BlockingHook {
public:
  /// Throws UsageError if the pool is at its thread bound.
  virtual void enter_blocking() = 0;
  virtual void leave_blocking() noexcept = 0;

protected:
  ~BlockingHook() = default;
};

struct ThreadState {
  const Scope* scope = nullptr;           // scope of the task running now
  const Scope* base_scope = nullptr;      // the executor's root scope (pool workers)
  Executor* executor = nullptr;           // executor that drives this thread
  BlockingHook* hook = nullptr;           // set on pool workers holding a slot
  bool draining = false;                  // resumed by an executor that is shutting down
  bool trampolining = false;              // inside resume(): continuations are queued, not nested
  const void* finishing_group = nullptr;  // inside the end of a task of this TaskGroup (its GroupHook)
  std::coroutine_handle<> next{};         // the trampoline's pending continuation
};

inline thread_local ThreadState tls{};

/// The scope of the task now running on this thread: its context's, or (null)
/// the root scope of the executor the thread is bound to.
inline void set_task_scope(const Scope* s) noexcept { tls.scope = s ? s : tls.base_scope; }

/// Binds the calling thread to an executor for a scope and restores what was
/// there afterwards: a pool worker for its life, an EventLoop inside run() or
/// poll(), an ExecutorBase inside resume(), a dying executor's drain. The one
/// writer of the thread's executor, root scope, blocking hook and draining
/// flag (resume()'s trampoline keeps its own two fields).
class ThreadBinding {
public:
  ThreadBinding(Executor* ex, const Scope* root, BlockingHook* hook = nullptr, bool draining = false) noexcept
      : saved_(tls) {
    tls.executor = ex;
    tls.hook = hook;
    tls.draining = draining;
    rebind_root(root);
  }
  ~ThreadBinding() { tls = saved_; }
  ThreadBinding(const ThreadBinding&) = delete;
  ThreadBinding& operator=(const ThreadBinding&) = delete;

  /// A new root scope for the bound thread (a pool worker taking another slot).
  static void rebind_root(const Scope* root) noexcept { tls.base_scope = tls.scope = root; }

private:
  ThreadState saved_;
};

/// Resumes `h` and every continuation it hands on, iteratively: a final
/// awaiter inside this loop stores its continuation in tls.next instead of
/// transferring to it, so long chains of completions run in constant stack
/// even where the compiler does not make symmetric transfer a tail call
/// (GCC at -O0/-O1).
///
/// Every call is a level of its own: a coroutine resumed inline from inside a
/// running task (a waiter with no executor, woken by resolve()) runs with its
/// continuations to completion or suspension right here, and the caller's
/// pending continuation and scope are restored afterwards.
inline void resume(std::coroutine_handle<> h) noexcept {
  const auto saved_next = tls.next;
  const bool saved_trampolining = tls.trampolining;
  const Scope* const saved_scope = tls.scope;
  tls.next = {};
  tls.trampolining = true;
  for (;;) {
    h.resume();
    h = tls.next;
    if (!h) break;
    tls.next = {};
  }
  tls.next = saved_next;
  tls.trampolining = saved_trampolining;
  tls.scope = saved_scope;  // the caller's task, if this ran inside one
}

/// For a final or completion awaiter: continue with `h` on this thread without
/// growing the stack. Returns the handle to return from await_suspend.
inline std::coroutine_handle<> continue_with(std::coroutine_handle<> h) noexcept {
  if (tls.trampolining && !tls.next) {
    tls.next = h;
    return std::noop_coroutine();
  }
  return h;
}

/// True if the current task's scope was cancelled or its executor is draining.
inline bool current_cancelled() noexcept { return tls.draining || (tls.scope && tls.scope->stop_requested()); }

inline skein::stop_token current_token() noexcept {
  return tls.scope ? tls.scope->source.get_token() : skein::stop_token{};
}

/// Wakes a coroutine that was suspended on executor `ex`: inline when we are
/// already on that executor (or it had none), otherwise by scheduling it there.
inline void wake_untraced(std::coroutine_handle<> h, Executor* ex) noexcept {
  if (ex == nullptr) {
    resume(h);
  } else if (ex == tls.executor) {
    ex->schedule_next(h);
  } else {
    ex->schedule(h);
  }
}
[[gnu::cold, gnu::noinline]] inline void wake_traced(std::coroutine_handle<> h, Executor* ex) noexcept {
  trace_wake(h.address());
  wake_untraced(h, ex);
}
inline void wake(std::coroutine_handle<> h, Executor* ex) noexcept {
  if (trace_hooks()) [[unlikely]]
    return wake_traced(h, ex);
  wake_untraced(h, ex);
}

/// Striped counter: increments and decrements from many threads without
/// sharing a cache line; reads sum the stripes (used for goroutines()).
class StripedCounter {
public:
  void add(long d) noexcept { stripes_[index()].v.fetch_add(d, std::memory_order_release); }
  [[nodiscard]] long load() const noexcept {
    long s = 0;
    for (auto& x : stripes_) s += x.v.load(std::memory_order_acquire);
    return s;
  }

private:
  static std::size_t index() noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local std::size_t i = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
    return i;
  }
  static constexpr std::size_t kStripes = 32;
  struct alignas(64) Stripe {
    std::atomic<long> v{0};
  };
  Stripe stripes_[kStripes];
};

}  // namespace skein::detail
