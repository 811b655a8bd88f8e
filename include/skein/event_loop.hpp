#pragma once
/// EventLoop, Notifier and work(): a single-threaded executor driven by run(),
/// fed from any thread; coroutines started on it resume on it (cl-async's threading).

#include "detail/config.hpp"  // first: the C++20 check

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/assert.hpp"
#include "detail/combine.hpp"
#include "detail/concepts.hpp"
#include "detail/coro_promise.hpp"
#include "detail/mpsc_queue.hpp"
#include "detail/parker.hpp"
#include "detail/runtime.hpp"
#include "detail/spin.hpp"
#include "detail/task_host.hpp"
#include "detail/waiter.hpp"
#include "errors.hpp"
#include "promise.hpp"
#include "run.hpp"
#include "detail/tuning.hpp"

namespace skein {

class EventLoop;

namespace detail {

/// A unit of work in the loop's queue. `fn(item, run)`: run it (true) or only
/// dispose of it (false, when the loop is destroyed with it still queued).
struct LoopItem : MpscNode {
  void (*fn)(LoopItem*, bool run) noexcept = nullptr;
};

struct NotifierState : LoopItem {
  SpinLock lock;
  EventLoop* loop = nullptr;  // null once closed or the loop is gone (guarded by lock)
  std::function<void()> callback;
  bool single_shot = false;
  std::atomic<bool> pending{false};
  std::atomic<long> handles{1};
  std::shared_ptr<NotifierState> self;  // keeps the state alive while queued
};

}  // namespace detail

/// How a Notifier behaves after its callback runs.
enum class NotifierMode {
  single_shot,  ///< fires once, then closes (cl-async's default)
  repeating,    ///< fires once per burst of triggers, until close()
};

/// Made by EventLoop::make_notifier. trigger() from any thread queues the
/// callback on the loop's thread; triggers that arrive while it is already
/// queued coalesce into one run (the first trigger wins a flag with one atomic
/// exchange; later ones return at once, lock-free). An open Notifier keeps
/// EventLoop::run() alive: a single-shot one until it has fired, a repeating
/// one until close() or until its last handle is destroyed.
class Notifier {
public:
  Notifier(const Notifier& o) noexcept : st_(o.st_) { st_->handles.fetch_add(1, std::memory_order_relaxed); }
  Notifier& operator=(const Notifier& o) noexcept {
    Notifier tmp(o);
    std::swap(st_, tmp.st_);
    return *this;
  }
  ~Notifier() {
    if (st_ && st_->handles.fetch_sub(1, std::memory_order_acq_rel) == 1) close();
  }

  /// Thread-safe. No-op once closed, or once the loop is gone.
  void trigger() const noexcept;
  /// Stops keeping the loop alive; later triggers do nothing. Idempotent, any thread.
  void close() const noexcept;
  /// True until closed (or fired, for a single-shot notifier).
  [[nodiscard]] bool open() const noexcept {
    std::lock_guard lk(st_->lock);
    return st_->loop != nullptr;
  }

private:
  friend class EventLoop;
  explicit Notifier(std::shared_ptr<detail::NotifierState> st) noexcept : st_(std::move(st)) {}
  static void close_state(detail::NotifierState* st) noexcept;
  std::shared_ptr<detail::NotifierState> st_;
};

/// A single-threaded executor. post() and Notifier::trigger() from any
/// thread; run() (or run_one()/poll(), to embed it in another loop) executes
/// the work on the calling thread, in order per producer. A coroutine running
/// on the loop resumes on the loop after every co_await (executor affinity).
///
/// run() returns after stop(), or when nothing is queued and nothing will come
/// back: no coroutine suspended on the loop (awaiting a Promise, a Queue, a
/// timer, ...), no open Notifier, no work() in flight, no keep_alive() guard.
class EventLoop final : public detail::TaskHost {
public:
  /// Throws std::bad_alloc (its scope's stop state is allocated).
  EventLoop() {
    outstanding = &outstanding_;
    single_threaded = true;
  }
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  /// Stops, cancels the coroutines suspended on the loop (their waits throw
  /// Cancelled), resumes them until none is left, and drops posts that never
  /// ran. Notifiers become no-ops.
  ~EventLoop() { shutdown(); }

  /// Queues `f()` to run on the loop's thread. Throws Closed after stop().
  /// An exception from `f` goes to the unhandled-error handler.
  template <class F>
  void post(F&& f) {
    static_assert(std::is_invocable_v<std::decay_t<F>&>, "post(f): f must be callable with no arguments");
    if (stopped()) throw Closed("post to a stopped EventLoop");
    enqueue(new PostItem<std::decay_t<F>>(std::forward<F>(f)));
  }

  /// Starts `f(args...)` as a task on the loop's thread, exactly as run()
  /// starts one on a pool: one coroutine frame holding the decay-copied
  /// function and arguments, bound to the calling task's context (if any),
  /// counted by goroutines(). A coroutine function runs there and, by
  /// affinity, resumes there. Throws Closed after stop(). Records its start
  /// site, or takes a name, as skein::run does.
  template <detail::TaskFn F>
  auto spawn(F&& f, SourceSite where = SourceSite::current()) {
    return spawn(here(where), std::forward<F>(f));
  }
  template <detail::TaskFn F, class... Args>
    requires(sizeof...(Args) > 0)
  auto spawn(F&& f, Args&&... args) {
    return spawn(TaskName{}, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  auto spawn(TaskName name, F&& f, Args&&... args) {
    if (stopped()) throw Closed("spawn on a stopped EventLoop");
    return detail::start_at(name, *this, detail::inherited_context(), std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// Runs until stop(), or until there is nothing left to do (see the class comment).
  void run() {
    Bind bind(this);
    rearm_wakeup();
    while (step(true)) {
    }
  }
  /// Runs one item, waiting for one if needed; false if the loop stopped or ran out of work.
  bool run_one() {
    Bind bind(this);
    rearm_wakeup();
    return step(true);
  }
  /// Runs what is queued now without waiting; returns how many items ran.
  std::size_t poll() {
    Bind bind(this);
    rearm_wakeup();
    std::size_t n = 0;
    while (step(false)) ++n;
    return n;
  }

  /// For a loop driven by someone else's loop with poll(): `hook()` is called
  /// when work arrives for this loop — from the thread that posts, triggers
  /// or completes it — so that the host loop can wake up (write to an
  /// eventfd, uv_async_send, PostMessage, ...) and call poll(). Calls are
  /// coalesced: after one, the next comes only once poll() (or run(),
  /// run_one()) has started again, which then sees the work. `hook` must be
  /// cheap, must not throw, and must not touch the loop itself. Set it before
  /// other threads use the loop; nullptr removes it.
  void set_wakeup_hook(std::function<void()> hook) {
    wakeup_hook_ = std::move(hook);
    wakeup_signalled_.store(false, std::memory_order_seq_cst);
  }

  /// Makes run() return; later posts throw Closed. Any thread, idempotent.
  void stop() noexcept {
    stopped_.store(true, std::memory_order_seq_cst);
    wake();
  }
  [[nodiscard]] bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }

  /// A notifier whose callback runs on this loop's thread.
  Notifier make_notifier(std::function<void()> callback, NotifierMode mode = NotifierMode::single_shot) {
    if (stopped()) throw Closed("make_notifier on a stopped EventLoop");
    auto st = std::make_shared<detail::NotifierState>();
    st->fn = &run_notifier;
    st->callback = std::move(callback);
    st->single_shot = mode == NotifierMode::single_shot;
    st->loop = this;
    {
      std::lock_guard lk(notifiers_mu_);
      notifiers_.push_back(st);
    }
    hold();
    return Notifier(std::move(st));
  }

  /// Keeps run() from returning for lack of work while the guard lives.
  class [[nodiscard]] KeepAlive {
  public:
    explicit KeepAlive(EventLoop& l) noexcept : l_(&l) { l_->hold(); }
    KeepAlive(KeepAlive&& o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
    KeepAlive(const KeepAlive&) = delete;
    KeepAlive& operator=(const KeepAlive&) = delete;
    ~KeepAlive() {
      if (l_) l_->unhold();
    }

  private:
    EventLoop* l_;
  };
  KeepAlive keep_alive() noexcept { return KeepAlive(*this); }

  /// `co_await loop.schedule()` continues the coroutine on the loop's thread.
  class [[nodiscard]] ScheduleOperation {
  public:
    explicit ScheduleOperation(EventLoop* l) noexcept : l_(l) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const {
      if (l_->stopped()) throw Closed("schedule on a stopped EventLoop");
      l_->schedule(h);
    }
    void await_resume() const {
      if (detail::current_cancelled()) detail::throw_cancelled();
    }

  private:
    EventLoop* l_;
  };
  ScheduleOperation schedule() noexcept { return ScheduleOperation(this); }

  /// True on the thread currently running this loop.
  [[nodiscard]] bool on_loop() const noexcept { return detail::tls.executor == this; }

private:
  friend class Notifier;
  template <class F, class... Args>
  friend auto work(EventLoop& loop, F&& f, Args&&... args);

  // Executor (reached through the base class, and by ScheduleOperation)
  void schedule(std::coroutine_handle<> h) noexcept override {
    ResumeItem* item;
    for (;;) {  // never drop a coroutine: wait for memory if there is none
      item = new (std::nothrow) ResumeItem;
      if (item) break;
      std::this_thread::yield();
    }
    item->h = h;
    enqueue(item);
  }

  // What keeps run() from returning: work() in flight, open notifiers,
  // keep-alive guards.
  void begin_work() noexcept {
    works_.fetch_add(1, std::memory_order_relaxed);
    hold();
  }
  void end_work() noexcept {
    unhold();
    works_.fetch_sub(1, std::memory_order_seq_cst);  // last: the destructor waits for it
  }
  void hold() noexcept { holds_.fetch_add(1, std::memory_order_relaxed); }
  void unhold() noexcept {
    enqueuing_.fetch_add(1, std::memory_order_relaxed);  // see enqueue(): the loop may end right after
    // seq_cst: pairs with the sleeping loop's re-check of the count.
    const long old = holds_.fetch_sub(1, std::memory_order_seq_cst);
    SKEIN_ASSERT(old > 0, "every unhold() matches a hold()");
    if (old == 1) wake();
    enqueuing_.fetch_sub(1, std::memory_order_release);
  }

  template <class F>
  struct PostItem final : detail::LoopItem {
    template <class G>
    explicit PostItem(G&& g) : f(std::forward<G>(g)) {
      fn = [](detail::LoopItem* i, bool run) noexcept {
        auto* self = static_cast<PostItem*>(i);
        if (run) {
          try {
            std::invoke(self->f);
          } catch (...) {
            detail::report_unhandled(std::current_exception());
          }
        }
        delete self;
      };
    }
    F f;
  };
  struct ResumeItem final : detail::LoopItem {
    ResumeItem() noexcept { fn = &run_fn; }
    static void run_fn(detail::LoopItem* i, bool) noexcept {
      auto h = static_cast<ResumeItem*>(i)->h;
      delete static_cast<ResumeItem*>(i);
      detail::resume(h);  // when draining, tls.draining makes its waits throw Cancelled
    }
    std::coroutine_handle<> h;
  };

  /// Marks the calling thread as running this loop (executor, scope) for a scope.
  class Bind : detail::ThreadBinding {
  public:
    explicit Bind(EventLoop* l, bool draining = false) noexcept : ThreadBinding(l, &l->scope_, nullptr, draining) {}
  };

  void enqueue(detail::LoopItem* item) noexcept {
    // Once the item is in the queue the loop may run it, return from run()
    // and be destroyed while we are still in wake(): the destructor waits for
    // `enqueuing_` to drop, which is therefore our last touch of *this.
    enqueuing_.fetch_add(1, std::memory_order_relaxed);
    q_.push(item);
    wake();
    enqueuing_.fetch_sub(1, std::memory_order_release);
  }
  void wake() noexcept {
    // seq_cst load after the seq_cst push: either we see the loop asleep, or
    // the loop's re-check after announcing sleep sees our item.
    if (state_.load(std::memory_order_seq_cst) == kSleeping) {
      state_.store(kAwake, std::memory_order_seq_cst);
      parking_.wake(state_);
    }
    // The host's hook, once per poll(): either the exchange finds the flag
    // set (the host was told and has not polled yet — it will see our item,
    // pushed before), or it finds it cleared by a poll() that may have missed
    // the item, and the host is told again.
    if (wakeup_hook_ && !wakeup_signalled_.exchange(true, std::memory_order_seq_cst)) {
      try {
        wakeup_hook_();
      } catch (...) {
        detail::report_unhandled(std::current_exception());
      }
    }
  }
  void rearm_wakeup() noexcept {
    if (wakeup_hook_) wakeup_signalled_.store(false, std::memory_order_seq_cst);
  }

  /// Runs one item; false when the loop should return.
  bool step(bool block) {
    for (;;) {
      if (stopped()) return false;
      if (auto* n = static_cast<detail::LoopItem*>(q_.pop())) {
        n->fn(n, true);
        return true;
      }
      if (q_.busy()) {  // a push is half-done: it will be there in a moment
        std::this_thread::yield();
        continue;
      }
      if (!block || idle()) return false;
      // Spin a little: a cross-thread post usually arrives within microseconds.
      for (int i = 0; i < detail::tuning::kLoopSpins && !q_.busy() && !stopped(); ++i) detail::cpu_relax();
      if (q_.busy()) continue;
      state_.store(kSleeping, std::memory_order_seq_cst);
      if (q_.busy() || stopped() || idle()) {
        state_.store(kAwake, std::memory_order_relaxed);
        continue;
      }
      // Parked by address (a futex on Linux, WaitOnAddress on Windows), not
      // with std::atomic::wait: libstdc++ before GCC 13 without a futex
      // (MinGW-w64) loads the value before it locks the mutex its wait
      // sleeps under, so a wake() in between is lost and the loop sleeps
      // with an item queued. A spurious return only re-runs this loop.
      // Quiet while the word stays kSleeping: wake() stores kAwake first.
      detail::ThreadRecord* published = detail::park_begin(&state_, kSleeping, detail::ParkKind::idle_loop);
      parking_.park(state_, kSleeping, nullptr);
      detail::park_end(published);
      state_.store(kAwake, std::memory_order_relaxed);
    }
  }

  static void run_notifier(detail::LoopItem* i, bool run) noexcept {
    auto* st = static_cast<detail::NotifierState*>(i);
    std::shared_ptr<detail::NotifierState> keep = std::move(st->self);
    // Cleared before the callback: a trigger during the callback queues another run.
    st->pending.store(false, std::memory_order_release);
    EventLoop* loop;
    {
      std::lock_guard lk(st->lock);
      loop = st->loop;
    }
    if (!run || !loop) return;
    try {
      st->callback();
    } catch (...) {
      detail::report_unhandled(std::current_exception());
    }
    if (st->single_shot) Notifier::close_state(st);
  }

  void shutdown() noexcept {
    stopped_.store(true, std::memory_order_seq_cst);
    std::vector<std::shared_ptr<detail::NotifierState>> ns;
    {
      std::lock_guard lk(notifiers_mu_);
      ns.swap(notifiers_);
    }
    for (auto& st : ns) {
      std::lock_guard lk(st->lock);
      if (st->loop) holds_.fetch_sub(1, std::memory_order_relaxed);
      st->loop = nullptr;
    }
    // Cancel every coroutine suspended on the loop; they come back through
    // the queue and are resumed in draining mode (their waits throw
    // Cancelled) until none is left. work() in flight is waited for: it
    // posts its result here. Posts that never ran are dropped.
    scope_.request_stop();
    cancel_context_tasks();  // tasks started here in a context observe its token
    Bind bind(this, true);
    for (long idle_rounds = 0;;) {
      while (auto* n = static_cast<detail::LoopItem*>(q_.pop())) n->fn(n, n->fn == &ResumeItem::run_fn);
      if (q_.busy()) {
        std::this_thread::yield();
        continue;
      }
      // Tasks spawned here that now run elsewhere (they hopped onto a pool)
      // still hold this loop: their end is counted here. Wait for them as a
      // ThreadPool's destructor waits for its tasks.
      if (outstanding_.load(std::memory_order_seq_cst) == 0 && works_.load(std::memory_order_seq_cst) == 0 &&
          enqueuing_.load(std::memory_order_acquire) == 0 && !q_.busy() && live_.load() == 0)
        break;
      if (++idle_rounds < 1000)
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  bool idle() const noexcept {
    return outstanding_.load(std::memory_order_seq_cst) == 0 && holds_.load(std::memory_order_seq_cst) == 0;
  }

  static constexpr std::uint32_t kAwake = 0, kSleeping = 1;
  detail::MpscQueue q_;
  alignas(64) std::atomic<std::uint32_t> state_{kAwake};
  [[no_unique_address]] detail::OsParking parking_;
  std::function<void()> wakeup_hook_;
  std::atomic<bool> wakeup_signalled_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<long> outstanding_{0};  // coroutines suspended on the loop (Executor::outstanding)
  std::atomic<long> holds_{0};        // open notifiers, keep-alive guards, work() in flight
  std::atomic<long> works_{0};        // work() in flight
  std::atomic<long> enqueuing_{0};    // producers inside enqueue()
  std::mutex notifiers_mu_;
  std::vector<std::shared_ptr<detail::NotifierState>> notifiers_;
};

inline void Notifier::trigger() const noexcept {
  if (st_->pending.exchange(true, std::memory_order_acq_rel)) return;  // already queued: coalesce
  std::lock_guard lk(st_->lock);
  if (!st_->loop) {
    st_->pending.store(false, std::memory_order_relaxed);
    return;
  }
  st_->self = st_;
  st_->loop->enqueue(st_.get());
}

namespace detail {
/// Settles work()'s promise, once: when the loop runs it, or where it is
/// dropped unrun (by a loop that stopped just after post() looked).
template <class R>
struct WorkSettle {
  WorkSettle(std::shared_ptr<Resolver<R>> r, std::exception_ptr e, std::optional<value_or_monostate<R>> v)
      : res(std::move(r)), err(std::move(e)), value(std::move(v)) {}
  WorkSettle(WorkSettle&&) = default;  // the moved-from one has no `res`: it does nothing
  ~WorkSettle() { (*this)(); }
  void operator()() noexcept {
    auto r = std::move(res);
    if (!r) return;
    try {
      if (err)
        r->reject(err);
      else if constexpr (std::is_void_v<R>)
        r->resolve();
      else
        r->resolve(std::move(*value));
    } catch (...) {  // the value could not be moved in
      r->reject(std::current_exception());
    }
  }
  std::shared_ptr<Resolver<R>> res;
  std::exception_ptr err;
  std::optional<value_or_monostate<R>> value;
};
}  // namespace detail

/// Runs `f(args...)` on default_pool() and settles the returned promise on
/// `loop`'s thread, with f's value or its exception (cl-async's `work`). The
/// loop stays alive until then. If the loop has stopped by the time f ends,
/// the promise is settled on the pool thread instead: never lost.
template <class F, class... Args>
auto work(EventLoop& loop, F&& f, Args&&... args) {
  using R = typename detail::task_result<std::decay_t<F>, std::decay_t<Args>...>::type;
  if (loop.stopped()) throw Closed("work() on a stopped EventLoop");
  auto r = std::make_shared<Resolver<R>>();
  auto promise = r->promise();
  detail::state_of(promise)->set_settled_on(static_cast<detail::Executor*>(&loop));
  loop.begin_work();
  // Out of memory below, the work never began: end it. (If only the tiny
  // coroutine could not start, f runs on, unobserved.)
  struct EndUnlessStarted {
    EventLoop* l;
    ~EndUnlessStarted() {
      if (l) l->end_work();
    }
  } guard{&loop};
  auto task = run(std::forward<F>(f), std::forward<Args>(args)...);
  // A tiny coroutine on the pool waits for the task, then hands the outcome to the loop.
  (void)[](EventLoop & l, std::shared_ptr<Resolver<R>> res, Promise<R> t)->Promise<void> {
    std::exception_ptr err;
    std::optional<detail::value_or_monostate<R>> value;
    try {
      if constexpr (std::is_void_v<R>) {
        co_await detail::ForwardAwaiter<R>(detail::state_of(t));
        value.emplace();
      } else {
        value.emplace(co_await detail::ForwardAwaiter<R>(detail::state_of(t)));
      }
    } catch (...) {
      err = std::current_exception();
    }
    detail::WorkSettle<R> settle(std::move(res), std::move(err), std::move(value));
    try {
      l.post(std::move(settle));
    } catch (...) {  // the loop stopped: settle here rather than lose the outcome
      settle();
    }
    l.end_work();
  }
  (loop, std::move(r), std::move(task));
  guard.l = nullptr;  // the coroutine ends the work
  return promise;
}

inline void Notifier::close_state(detail::NotifierState* st) noexcept {
  EventLoop* loop;
  {
    std::lock_guard lk(st->lock);
    loop = std::exchange(st->loop, nullptr);
  }
  if (loop) loop->unhold();
}

inline void Notifier::close() const noexcept { close_state(st_.get()); }

}  // namespace skein
