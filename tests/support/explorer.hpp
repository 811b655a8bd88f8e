#pragma once
// A small-scope model checker for skein's waiter core: it runs a scenario (a
// few threads calling the real Parker / block_wait code, instantiated with the
// model's parking policy) under every interleaving of their shared-memory
// steps, up to a bound on preemptions, and reports the first execution that
// deadlocks (a lost wake-up), runs away, or fails the scenario's final check.
//
// How. Each model thread is an OS thread, but only one runs at a time: it
// holds the baton and passes it on at every step (each operation on a
// model::Atomic, each park and wake, each model mutex operation). At each step
// the explorer picks the next thread from the enabled ones; the choices of one
// execution form a path, and a depth-first search over paths (stateless, as
// CHESS does: every execution replays its prefix from the start) visits every
// schedule with at most `preemption_bound` switches away from a thread that
// could have continued. Parking is modelled as a futex: `park(word, v)` blocks
// only if the word still equals v, atomically with the check, and `wake`
// releases one parked thread. A park with a deadline may also time out: the
// timeout is one more choice. The memory model is sequential consistency: this
// finds protocol races (who wakes whom, what a withdrawal means), not missing
// fences; TSan and the stress tests cover orderings.
//
// An execution with no enabled thread while some are unfinished is a deadlock:
// the stuck threads are detached (they hold nothing but their scenario's
// state), the trace is kept, and the search stops. So does a scenario that is
// not deterministic (a replayed prefix finds other threads able to run than
// it recorded): its search would never end.

#include <skein/skein.hpp>  // BasicParker and the waiter core (also from the single header)

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace test::model {

class Explorer;
inline Explorer*& active_explorer() {
  static Explorer* e = nullptr;
  return e;
}
inline thread_local int self_id = -1;

/// One scenario run: the threads' bodies and a check of the final state
/// (an empty string means the state is right; anything else is the failure).
struct Scenario {
  std::vector<std::function<void()>> threads;
  std::function<std::string()> check = [] { return std::string(); };
};

struct Result {
  long executions = 0;
  long steps = 0;             // steps over all executions
  std::size_t max_depth = 0;  // longest execution, in steps
  bool failed = false;
  std::string failure;  // what went wrong, then the failing schedule
};

class Explorer {
public:
  struct Options {
    int preemption_bound = 2;
    long max_executions = 2'000'000;
    std::size_t max_steps = 4000;  // per execution: beyond it, the execution runs away (livelock)
  };

  explicit Explorer(Options o) : opt_(o) {}
  Explorer(const Explorer&) = delete;
  Explorer& operator=(const Explorer&) = delete;
  ~Explorer() {
    {
      std::lock_guard lk(mu_);
      shutdown_ = true;
      for (auto& t : threads_) t.cv->notify_all();
    }
    for (auto& t : threads_) {
      if (t.done)
        t.os.join();
      else
        t.os.detach();  // in limbo (an abandoned execution)
    }
  }

  /// Explores `make()`'s scenario (called afresh for every execution).
  Result explore(const std::function<Scenario()>& make) {
    active_explorer() = this;
    [[maybe_unused]] PinGuard pin;  // empty where threads cannot be pinned
    Result r;
    std::vector<Choice> path;  // the choices of the previous execution; replayed up to its last entry
    for (;;) {
      run_one(make, path, r);
      ++r.executions;
      if (r.failed || r.executions >= opt_.max_executions) break;
      path = std::move(choices_);
      if (!advance(path)) break;
    }
    active_explorer() = nullptr;
    return r;
  }

  // --- called by model threads ----------------------------------------------

  /// A scheduling point before a shared-memory step labelled `what`.
  void point(const char* what) {
    std::unique_lock lk(mu_);
    schedule(lk, self_id, true);
    log(self_id, what);
  }

  /// Parks the calling thread on `addr` if `still()` (the futex compare,
  /// made atomically with parking: nothing runs in between). Returns false if
  /// it timed out (only with a deadline).
  template <class Still>
  bool park(const void* addr, Still still, bool has_deadline) {
    std::unique_lock lk(mu_);
    schedule(lk, self_id, true);
    log(self_id, "park");
    if (!still()) return true;
    Thread& t = threads_[static_cast<std::size_t>(self_id)];
    t.blocked_on = addr;
    t.has_deadline = has_deadline;
    t.timed_out = false;
    schedule(lk, self_id, false);
    if (t.timed_out) {
      log(self_id, "park timed out");
      return false;
    }
    log(self_id, "woken");
    return true;
  }

  /// Wakes one thread parked on `addr` (the lowest-numbered).
  void wake(const void* addr, bool all = false) {
    std::unique_lock lk(mu_);
    schedule(lk, self_id, true);
    log(self_id, all ? "wake all" : "wake");
    for (auto& t : threads_) {
      if (t.blocked_on == addr) {
        t.blocked_on = nullptr;
        if (!all) break;
      }
    }
  }

private:
  struct Choice {
    int index;        // which of the enabled threads ran
    int options;      // how many were enabled
    bool preemptive;  // the running thread could have continued, and index > 0 means a switch
  };
  struct Thread {
    const void* blocked_on = nullptr;
    bool has_deadline = false;
    bool timed_out = false;
    bool done = false;
    std::thread os;
    std::unique_ptr<std::condition_variable> cv = std::make_unique<std::condition_variable>();
  };

  void log(int id, const char* what) {
    if (trace_.size() < 400) trace_.emplace_back(id, what);
  }

  // Picks the next thread to run and hands it the baton; returns when the
  // baton comes back to `self` (or at once if self goes on). `self_runs`:
  // whether self could continue (false when it parks or finishes).
  void schedule(std::unique_lock<std::mutex>& lk, int self, bool self_runs) {
    std::vector<int> enabled;
    if (self >= 0 && self_runs) enabled.push_back(self);
    for (int i = 0; i < static_cast<int>(threads_.size()); ++i) {
      const Thread& t = threads_[static_cast<std::size_t>(i)];
      if (i == self && self_runs) continue;
      if (t.done) continue;
      if (t.blocked_on && !t.has_deadline) continue;
      enabled.push_back(i);
    }
    ++steps_;
    const std::size_t depth = choices_.size();
    if (enabled.empty()) {
      finish_execution(lk, self);
    } else if (steps_ > opt_.max_steps) {
      fail("the execution ran away: more than " + std::to_string(opt_.max_steps) + " steps (a livelock?)");
      finish_execution(lk, self);
    } else if (depth < replay_.size() && replay_[depth].options != static_cast<int>(enabled.size())) {
      // The replayed prefix took other steps than last time: something the
      // model does not control (an address, the clock, a thread outside it)
      // steers the scenario. The search would never end: say so instead.
      fail("the scenario is not deterministic: replaying step " + std::to_string(depth) + ", " +
           std::to_string(enabled.size()) + " threads could run where the last execution had " +
           std::to_string(replay_[depth].options));
      finish_execution(lk, self);
    } else {
      const int idx = depth < replay_.size() ? replay_[depth].index : 0;
      choices_.push_back(Choice{idx, static_cast<int>(enabled.size()), self >= 0 && self_runs});
      const int next = enabled[static_cast<std::size_t>(idx)];
      Thread& n = threads_[static_cast<std::size_t>(next)];
      if (n.blocked_on) {  // a parked thread with a deadline, picked: its deadline passed
        n.blocked_on = nullptr;
        n.timed_out = true;
      }
      running_ = next;
      if (next != self) threads_[static_cast<std::size_t>(next)].cv->notify_one();
    }
    if (self < 0 || (!self_runs && threads_[static_cast<std::size_t>(self)].done)) return;
    threads_[static_cast<std::size_t>(self)].cv->wait(lk, [&] { return running_ == self || aborted_; });
    if (aborted_) to_limbo(lk);
  }

  // The execution was abandoned (deadlock, runaway): this thread can never
  // run again. It says so, then blocks for good on a condition that outlives
  // the explorer; its thread is detached and its scenario state leaks.
  [[noreturn]] void to_limbo(std::unique_lock<std::mutex>& lk) {
    static auto* limbo = new std::pair<std::mutex, std::condition_variable>();
    ++in_limbo_;
    cv_.notify_all();
    lk.unlock();
    std::unique_lock l2(limbo->first);
    for (;;) limbo->second.wait(l2);
  }

  void finish_execution(std::unique_lock<std::mutex>&, int) {
    bool all_done = true;
    for (auto& t : threads_) all_done = all_done && t.done;
    if (!all_done && !failed_) {
      std::string stuck;
      for (std::size_t i = 0; i < threads_.size(); ++i)
        if (!threads_[i].done) stuck += " T" + std::to_string(i);
      fail("deadlock: no thread can run, and" + stuck + " never finished (a lost wake-up)");
    }
    if (!all_done) aborted_ = true;
    running_ = -2;
    execution_over_ = true;
    cv_.notify_all();
    for (auto& t : threads_) t.cv->notify_all();
  }

  void fail(std::string what) {
    if (failed_) return;
    failed_ = true;
    failure_ = std::move(what);
  }

  void run_one(const std::function<Scenario()>& make, const std::vector<Choice>& replay, Result& r) {
    Scenario sc = make();
    std::unique_lock lk(mu_);
    if (threads_.empty()) {
      threads_ = std::vector<Thread>(sc.threads.size());
      for (std::size_t i = 0; i < threads_.size(); ++i) threads_[i].os = std::thread([this, i] { worker(i); });
    }
    replay_ = replay;
    choices_.clear();
    trace_.clear();
    steps_ = 0;
    failed_ = false;
    aborted_ = false;
    execution_over_ = false;
    in_limbo_ = 0;
    failure_.clear();
    for (auto& t : threads_) {
      t.blocked_on = nullptr;
      t.has_deadline = t.timed_out = t.done = false;
    }
    bodies_ = std::move(sc.threads);
    ++execution_;
    running_ = -1;
    schedule(lk, -1, false);  // the first choice: which thread starts
    cv_.wait(lk, [&] { return execution_over_; });
    // Abandoned threads must be off their condition variables before the
    // explorer can go away.
    std::size_t unfinished = 0;
    for (auto& t : threads_) unfinished += t.done ? 0 : 1;
    cv_.wait(lk, [&] { return in_limbo_ == unfinished; });
    bodies_.clear();
    lk.unlock();

    r.steps += static_cast<long>(steps_);
    if (choices_.size() > r.max_depth) r.max_depth = choices_.size();
    std::string bad = failed_ ? failure_ : sc.check();
    if (!bad.empty()) {
      r.failed = true;
      std::ostringstream os;
      os << bad << "\nschedule (" << trace_.size() << " steps):";
      for (auto& [id, what] : trace_) os << "\n  T" << id << ' ' << what;
      r.failure = os.str();
    }
  }

  // A model thread: runs its body of each execution when first scheduled.
  // Threads are reused across executions (creating them costs more than a
  // small execution).
  void worker(std::size_t i) {
    pin_to_one_cpu();
    self_id = static_cast<int>(i);
    long seen = 0;
    std::unique_lock lk(mu_);
    for (;;) {
      threads_[i].cv->wait(
          lk, [&] { return shutdown_ || (execution_ != seen && (running_ == static_cast<int>(i) || aborted_)); });
      if (shutdown_) return;
      seen = execution_;
      if (aborted_) to_limbo(lk);
      {
        std::function<void()> body = bodies_[i];
        lk.unlock();
        body();
      }
      lk.lock();
      threads_[i].done = true;
      log(static_cast<int>(i), "done");
      schedule(lk, static_cast<int>(i), false);
    }
  }

  // The next path in depth-first order within the preemption bound: the
  // deepest choice with an untried alternative is advanced, the rest dropped.
  bool advance(std::vector<Choice>& path) const {
    while (!path.empty()) {
      Choice& c = path.back();
      if (c.index + 1 < c.options) {
        int preemptions = 0;
        for (std::size_t i = 0; i + 1 < path.size(); ++i)
          if (path[i].preemptive && path[i].index > 0) ++preemptions;
        const bool adds = c.preemptive && c.index == 0;  // 0 -> 1 switches away from the runner
        if (!adds || preemptions < opt_.preemption_bound) {
          ++c.index;
          return true;
        }
      }
      path.pop_back();
    }
    return false;
  }

  // Pins the controlling thread next to the model threads for a search.
  struct PinGuard {
#if defined(__linux__)
    cpu_set_t saved;
    bool ok = pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
    PinGuard() { pin_to_one_cpu(); }
    ~PinGuard() {
      if (ok) pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    }
#endif
  };

  static void pin_to_one_cpu() {
#if defined(__linux__)
    // Baton passing between threads on one CPU costs ~2 us; across CPUs ten
    // times that. Pin every model thread to the CPU the first one started on.
    static const int cpu = sched_getcpu();
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
#endif
  }

  Options opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Thread> threads_;
  std::vector<std::function<void()>> bodies_;
  long execution_ = 0;
  bool shutdown_ = false;
  std::vector<Choice> replay_, choices_;
  std::vector<std::pair<int, const char*>> trace_;
  std::size_t steps_ = 0, in_limbo_ = 0;
  int running_ = -1;
  bool failed_ = false, aborted_ = false, execution_over_ = false;
  std::string failure_;
};

inline void point(const char* what) { active_explorer()->point(what); }

/// std::atomic's interface; every operation is a scheduling point. Orders are
/// accepted and ignored (sequential consistency).
template <class T>
class Atomic {
public:
  constexpr Atomic(T v = T{}) noexcept : v_(v) {}
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  T load(std::memory_order = std::memory_order_seq_cst) const noexcept {
    point("load");
    return v_;
  }
  void store(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    point("store");
    v_ = v;
  }
  T exchange(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    point("exchange");
    return std::exchange(v_, v);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order = std::memory_order_seq_cst,
                             std::memory_order = std::memory_order_seq_cst) noexcept {
    return compare_exchange_strong(expected, desired);
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order = std::memory_order_seq_cst,
                               std::memory_order = std::memory_order_seq_cst) noexcept {
    point("compare_exchange");
    if (v_ == expected) {
      v_ = desired;
      return true;
    }
    expected = v_;
    return false;
  }
  T fetch_add(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    point("fetch_add");
    return std::exchange(v_, static_cast<T>(v_ + d));
  }
  T fetch_sub(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    point("fetch_sub");
    return std::exchange(v_, static_cast<T>(v_ - d));
  }
  T fetch_or(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    point("fetch_or");
    return std::exchange(v_, static_cast<T>(v_ | d));
  }
  /// The value without a scheduling point (for the futex compare, made inside park).
  T peek() const noexcept { return v_; }

private:
  T v_;
};

/// A mutex whose lock and unlock are scheduling points; a thread waiting for
/// it is parked (not spinning), so the search stays finite.
class Mutex {
public:
  void lock() {
    for (;;) {
      active_explorer()->park(
          this, [&] { return locked_; }, false);
      if (!locked_) break;
    }
    locked_ = true;
  }
  void unlock() {
    locked_ = false;
    active_explorer()->wake(this, true);
  }

private:
  bool locked_ = false;
};

/// skein::stop_callback under the explorer. The real one's destructor blocks
/// (for real, invisibly to the explorer) while its callback runs on another
/// thread; this one first waits in the model's own scheduling until the
/// callback is done. The callback's start and end are plain writes: between
/// skein::stop_source starting it and the first write, and between the last
/// write and skein::stop_source finishing with it, there is no scheduling point.
template <class CB>
class StopCallback {
  struct State {
    bool running = false;
  };
  struct Guarded {
    CB cb;
    State* st;
    void operator()() noexcept {
      st->running = true;
      cb();
      active_explorer()->wake(st, true);  // a scheduling point: the waiter below is parked, not enabled
      st->running = false;
    }
  };

public:
  StopCallback(skein::stop_token tok, CB cb)
      : st_(std::make_unique<State>()), cb_(std::move(tok), Guarded{std::move(cb), st_.get()}) {}
  StopCallback(const StopCallback&) = delete;
  StopCallback& operator=(const StopCallback&) = delete;
  ~StopCallback() {
    while (st_->running)
      active_explorer()->park(
          st_.get(), [&] { return st_->running; }, false);
  }

private:
  std::unique_ptr<State> st_;  // declared first: outlives cb_
  skein::stop_callback<Guarded> cb_;
};

/// The parking policy (see skein::detail::OsParking) under the explorer: for
/// BasicParker, the waiter core and the pool's BasicIdleWorkers.
struct Parking {
  template <class T>
  using Atomic = model::Atomic<T>;
  using Mutex = model::Mutex;
  template <class CB>
  using StopCallback = model::StopCallback<CB>;
  bool park(Atomic<std::uint32_t>& word, std::uint32_t expected,
            const skein::detail::Clock::time_point* deadline) noexcept {
    return active_explorer()->park(
        &word, [&] { return word.peek() == expected; }, deadline != nullptr);
  }
  void wake(Atomic<std::uint32_t>& word) noexcept { active_explorer()->wake(&word); }
  static int spin_budget() noexcept { return 1; }  // one look before parking is as good as many here
  static constexpr bool kInjectLostWakeup = false;
  static constexpr bool kInjectSkipIdleRecheck = false;
  static constexpr bool kInjectLateWithdraw = false;
};

/// The same, with the waiter core's deliberately broken variants switched on
/// (Parker's sleep announcement, the coroutine waiter's arming).
struct LostWakeupParking : Parking {
  static constexpr bool kInjectLostWakeup = true;
};

/// The pool's broken variant: a worker going idle does not re-check the queues.
struct SkipIdleRecheckParking : Parking {
  static constexpr bool kInjectSkipIdleRecheck = true;
};

/// block_wait's broken variant: the stop callback only wakes the blocked
/// thread, which withdraws later — after a release that came after the cancel.
struct LateWithdrawParking : Parking {
  static constexpr bool kInjectLateWithdraw = true;
};

}  // namespace test::model
