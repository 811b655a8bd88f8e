#pragma once
// The work-stealing scheduler behind ThreadPool (docs/design.md explains it).
//
// Slots and threads. A pool has `size()` slots (Go's P): each slot owns a
// Chase-Lev deque and a LIFO slot. An OS thread (Go's M) runs tasks only
// while it holds a slot. When a task blocks the thread in a skein wait, the
// thread hands its slot to a spare thread (waking or creating one) before it
// sleeps, so the slot's queued tasks keep running; when the wait ends the
// thread finishes its task without a slot and then becomes a spare. The total
// number of threads is bounded by max_threads(); a blocking wait that would
// need a thread beyond the bound throws UsageError instead of hanging.
//
// Finding work: LIFO slot, own deque (LIFO), injection queue (FIFO; checked
// first every 61 ticks so posts from outside are not starved), then stealing
// from the other slots in random order. Idle threads sleep on a per-thread
// futex word (OsParking).
//
// Parking without lost wake-ups: idle_workers.hpp (the protocol, on its own
// so that the model checker runs it). A producer that pushes to the injection
// queue notifies with an RMW on the idle/searching word; a worker that goes
// idle updates it with an RMW and then re-checks the queues, so either the
// producer sees the idle worker or the worker sees the work. Pushes to a
// worker's own deque notify with a plain load: a missed wake-up there only
// costs parallelism, never liveness, because the slot's owner runs its deque.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "thread_name.hpp"
#include "error_types.hpp"
#include "fault.hpp"
#include "idle_workers.hpp"
#include "runtime.hpp"
#include "spin.hpp"
#include "task_host.hpp"
#include "timer_service.hpp"
#include "ws_deque.hpp"
#include "tuning.hpp"

namespace skein::detail {

class PoolCore final : public TaskHost {
  struct Worker;

public:
  PoolCore(std::size_t slots, std::size_t max_threads) : max_threads_(max_threads), idle_(slots) {
    if (slots == 0) throw UsageError("a ThreadPool needs at least one thread");
    if (max_threads < slots) throw UsageError("a ThreadPool's max_threads must be at least its number of threads");
    // Constructed first, so they outlive any pool (static destruction order).
    (void)timer_service();
    (void)unhandled_registry();
    slots_.reserve(slots);
    for (std::size_t i = 0; i < slots; ++i) {
      slots_.push_back(std::make_unique<Slot>());
      slots_.back()->index = i;
      slots_.back()->rng = 0x9E3779B97F4A7C15ull * (i + 1);
    }
    try {
      std::lock_guard lk(threads_mu_);
      for (std::size_t i = 0; i < slots; ++i) start_thread(slots_[i].get());
    } catch (...) {
      shutdown();  // join the threads that did start
      throw;
    }
    watch_pools(this, true);
  }

  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  ~PoolCore() {
    watch_pools(this, false);  // first: the watchdog looks at no dying pool
    shutdown();
    for (auto& e : ext_) delete e.load(std::memory_order_relaxed);
  }  // then ~TaskHost unregisters

  [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
  [[nodiscard]] std::size_t max_threads() const noexcept { return max_threads_; }
  [[nodiscard]] std::size_t thread_count() const {
    std::lock_guard lk(threads_mu_);
    return threads_.size();
  }

  /// Resume `h` on this pool: the current worker's deque if we are on one, else
  /// the injection queue.
  void schedule(std::coroutine_handle<> h) noexcept override {
    if (Slot* s = own_slot()) {
      push_local(s, h.address());
    } else if (External* e = own_external()) {
      push_external(e, h.address());
    } else {
      inject(h.address());
    }
  }

  /// A coroutine woken by the running task runs next on this worker.
  void schedule_next(std::coroutine_handle<> h) noexcept override {
    Slot* s = own_slot();
    if (!s) return inject(h.address());
    void* prev = s->lifo;
    s->lifo = h.address();
    if (prev) push_local(s, prev);
  }

  /// Yield: to the back of the FIFO injection queue, behind everything else.
  void yield(std::coroutine_handle<> h) noexcept { inject(h.address()); }

  /// True if the calling thread is one of this pool's workers holding a slot.
  [[nodiscard]] bool on_worker() const noexcept { return own_slot() != nullptr; }

private:
  static constexpr unsigned kLifoBudget = tuning::kLifoBudget;
  static constexpr std::size_t kInjectBatch = tuning::kInjectBatch;

  struct alignas(64) Slot {
    // The root scope of tasks running on this slot. Every pool-scope wait
    // registers its Canceller (a blocked thread: its stop_callback) here; one
    // scope per slot keeps those registrations on a cache line the slot's own
    // thread owns, instead of every worker contending on one. All of them
    // stop with the pool.
    Scope scope;
    WsDeque deque;
    void* lifo = nullptr;  // owner only (handed over with the slot)
    unsigned lifo_streak = 0;
    std::uint32_t tick = 0;
    std::uint64_t rng = 1;
    std::size_t index = 0;
  };

  // `searching` and the wake word come from Sleeper: the parking protocol's
  // part. The same word also wakes a spare thread given a slot.
  struct Worker final : BlockingHook, IdleWorkers::Sleeper {
    PoolCore* pool = nullptr;
    Slot* slot = nullptr;                // the slot this thread runs, or null (blocked / spare)
    TaskCount::Owned* counts = nullptr;  // this thread's count of the pool's tasks
    std::thread thread;
    // The watchdog's view: (runs << 1) | 1 while a task runs on the slot,
    // runs << 1 otherwise. Written by this thread only (plain stores).
    std::atomic<std::uint64_t> stamp{0};
    std::uint64_t runs = 0;    // this thread only
    std::atomic<long> tid{0};  // the OS thread id, once running
    // A rescuer: runs its own slot (`slot` is a temporary one) until the task
    // it covers for has yielded. Set under threads_mu_ before it runs.
    Worker* covers = nullptr;
    std::uint64_t covers_stamp = 0;
    Slot* rescue_slot = nullptr;
    // The monitor's notes (under threads_mu_, monitor thread only).
    std::uint64_t seen_stamp = 0;
    Clock::time_point seen_since{};
    bool handled = false;
    bool sampled = false;  // cpu0 holds the thread's CPU time halfway through the threshold
    Clock::time_point sampled_at{};
    long long cpu0 = 0;

    void enter_blocking() override { pool->hand_off(this); }
    void leave_blocking() noexcept override {}
  };

  static inline thread_local Worker* tl_worker = nullptr;

  Slot* own_slot() const noexcept {
    Worker* w = tl_worker;
    return (w && w->pool == this) ? w->slot : nullptr;
  }

  // --- queues -------------------------------------------------------------

  void push_local(Slot* s, void* h) noexcept { push_to(s->deque, h, false); }

  // Pushes onto a worker's or an outside thread's deque, then wakes an idle
  // worker (`strict`: the pusher is not a worker that will look again).
  void push_to(WsDeque& d, void* h, bool strict) noexcept {
    try {
      d.push(h);
    } catch (...) {  // growing the deque failed: the injection queue still takes it
      return inject(h);
    }
    idle_.notify(strict);
  }

  void inject(void* h) noexcept {
    {
      std::lock_guard lk(inj_mu_);
      for (;;) {
        try {
          inj_.push_back(h);
          break;
        } catch (...) {
          std::this_thread::yield();  // out of memory: wait for some to free up; never drop a task
        }
      }
      inj_size_.store(inj_.size(), std::memory_order_relaxed);
    }
    idle_.notify(true);
  }

  // --- threads outside the pool -------------------------------------------------
  //
  // A thread that is not one of the pool's workers (main(), an event loop, the
  // timer thread) and starts tasks here gets a Chase-Lev deque of its own, the
  // first kExternalQueues such threads at least: it pushes without a lock and
  // the workers steal from it (oldest first: FIFO for each such thread), as
  // oneTBB lets a thread outside the arena fill its own task pool. A push
  // notifies strictly (the owner never runs its deque). Beyond the bound, and
  // when a deque cannot grow, tasks go to the injection queue.

  struct alignas(64) External {
    WsDeque deque;
    std::thread::id owner;
  };
  static constexpr std::size_t kExternalQueues = tuning::kPoolExternalQueues;

  struct ExternalCache {  // zero-initialized (thread_local): no pool, no queue
    std::uint64_t pool;   // the pool's id (never reused, unlike its address)
    External* queue;
  };
  static inline thread_local ExternalCache tl_external{};

  static std::uint64_t next_pool_id() noexcept {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
  }

  External* own_external() noexcept {
    if (tl_external.pool == id_) return tl_external.queue;
    return register_external();
  }

  /// Slow path, once per thread and pool (and after switching pools): finds
  /// or makes this thread's deque. A dead thread's deque is found again by a
  /// new thread that got its id: the old owner pushes no more, so it is safe.
  External* register_external() noexcept {
    External* e = nullptr;
    {
      std::lock_guard lk(ext_mu_);
      const auto me = std::this_thread::get_id();
      const std::size_t n = ext_n_.load(std::memory_order_relaxed);
      for (std::size_t i = 0; i < n && !e; ++i)
        if (ext_[i].load(std::memory_order_relaxed)->owner == me) e = ext_[i].load(std::memory_order_relaxed);
      if (!e && n < kExternalQueues && !stop_.load(std::memory_order_acquire)) {
        try {
          e = new External;
          e->owner = me;
          ext_[n].store(e, std::memory_order_release);
          ext_n_.store(n + 1, std::memory_order_release);
        } catch (...) {  // no memory: the injection queue still takes the tasks
          e = nullptr;
        }
      }
    }
    tl_external = {id_, e};  // null too: past the bound, this thread injects
    return e;
  }

  void push_external(External* e, void* h) noexcept { push_to(e->deque, h, true); }

  void* pop_injection(Slot* s) noexcept {
    if (inj_size_.load(std::memory_order_relaxed) == 0) return nullptr;
    std::lock_guard lk(inj_mu_);
    if (inj_.empty()) return nullptr;
    void* h = inj_.front();
    inj_.pop_front();
    // Take a batch into the local deque, leaving a share for the other slots.
    std::size_t take = std::min(kInjectBatch, inj_.size() / slots_.size());
    for (std::size_t i = 0; i < take; ++i) {
      try {
        s->deque.push(inj_.front());
      } catch (...) {
        break;
      }
      inj_.pop_front();
    }
    inj_size_.store(inj_.size(), std::memory_order_relaxed);
    return h;
  }

  void* steal(Slot* s) noexcept {
    SKEIN_FAULT_POINT();
    const std::size_t n = slots_.size();
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    std::size_t start = static_cast<std::size_t>(s->rng % n);
    // (A rescuer's slot is none of slots_: it steals even from a pool of one.)
    for (std::size_t i = 0; (n > 1 || s->index >= n) && i < n; ++i) {
      Slot* v = slots_[(start + i) % n].get();
      if (v == s) continue;
      if (void* h = v->deque.steal()) return h;
    }
    return steal_external(s, start);
  }

  /// From the deques of the threads outside the pool that start its tasks.
  /// Takes a batch into `s`'s own deque, as pop_injection does: the batch
  /// then runs on this worker in a row, instead of every task being fought
  /// over by the workers and the thread that keeps starting them.
  void* steal_external(Slot* s, std::size_t start) noexcept {
    const std::size_t m = ext_n_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < m; ++i) {
      WsDeque& d = ext_[(start + i) % m].load(std::memory_order_acquire)->deque;
      void* h = d.steal();
      if (!h) continue;
      const std::size_t more = std::min(kInjectBatch, d.size_approx() / slots_.size());
      for (std::size_t k = 0; k < more; ++k) {
        void* x = d.steal();
        if (!x) break;
        try {
          s->deque.push(x);
        } catch (...) {  // our deque cannot grow: the injection queue takes it
          inject(x);
          break;
        }
      }
      return h;
    }
    return nullptr;
  }

  bool work_visible() const noexcept {
    if (inj_size_.load(std::memory_order_seq_cst) != 0) return true;
    for (auto& s : slots_)
      if (!s->deque.empty()) return true;
    const std::size_t m = ext_n_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < m; ++i)
      if (!ext_[i].load(std::memory_order_acquire)->deque.empty()) return true;
    return false;
  }

  void* find_local(Slot* s) noexcept {
    if (++s->tick % tuning::kInjectionPollInterval == 0) {
      // Work from outside is not starved by a worker whose own deque never empties.
      if (void* h = pop_injection(s)) return h;
      if (void* h = steal_external(s, s->tick)) return h;
    }
    if (void* h = s->lifo) {
      s->lifo = nullptr;
      if (++s->lifo_streak <= kLifoBudget) return h;
      // Two tasks waking each other through the LIFO slot would starve the
      // rest: past the budget the woken task goes to the back of the line.
      s->lifo_streak = 0;
      inject(h);
    } else {
      s->lifo_streak = 0;
    }
    if (void* h = s->deque.pop()) return h;
    return pop_injection(s);
  }

  // --- threads ---------------------------------------------------------------

  // threads_mu_ held. A rescuer's slot handed over by a blocking wait keeps
  // its role (see rescue()): `from` passes it on.
  void start_thread(Slot* s, Worker* from = nullptr, Worker* covers = nullptr, std::uint64_t covers_stamp = 0) {
    auto w = std::make_unique<Worker>();
    w->pool = this;
    w->slot = s;
    w->counts = live_.add_owner();
    if (covers) {
      w->covers = covers;
      w->covers_stamp = covers_stamp;
      w->rescue_slot = s;
    }
    Worker* raw = w.get();
    spares_.reserve(threads_.size() + 1);  // any thread may become a spare: become_spare() never allocates
    threads_.push_back(std::move(w));
    if (from) pass_rescue(from, raw);
    try {
      raw->thread = std::thread([this, raw] { thread_main(raw); });
    } catch (...) {
      if (from) pass_rescue(raw, from);
      threads_.pop_back();
      throw;
    }
  }

  // threads_mu_ held: `to` takes `from`'s slot, and with it the rescuer role.
  static void pass_rescue(Worker* from, Worker* to) noexcept {
    if (!from->covers) return;
    to->covers = from->covers;
    to->covers_stamp = from->covers_stamp;
    to->rescue_slot = from->rescue_slot;
    from->covers = nullptr;
    from->rescue_slot = nullptr;
  }

  /// Blocking hook: give this worker's slot to another thread.
  void hand_off(Worker* w) {
    Slot* s = w->slot;
    if (!s) return;  // already handed off (a nested or repeated block)
    w->slot = nullptr;
    idle_.stop_searching(w);
    std::unique_lock lk(threads_mu_);
    if (!spares_.empty()) {
      Worker* sp = spares_.back();
      spares_.pop_back();
      sp->slot = s;
      pass_rescue(w, sp);
      w->stamp.store(w->runs << 1, std::memory_order_relaxed);  // its task no longer holds a slot
      lk.unlock();
      sp->rouse();
      return;
    }
    std::string why;
    if (stop_.load(std::memory_order_relaxed)) {
      // Shutting down: every wait is cancelled at once; nothing to hand off to.
      w->slot = s;
      return;
    }
    // Refused: this thread keeps its slot (before the message, which allocates).
    if (threads_.size() < max_threads_) {
      try {
        start_thread(s, w);
        w->stamp.store(w->runs << 1, std::memory_order_relaxed);
        return;
      } catch (const std::bad_alloc&) {
        w->slot = s;
        throw;  // out of memory is not a usage error
      } catch (const std::exception& e) {
        w->slot = s;
        why = std::string("a new thread could not be started (") + e.what() + ")";
      }
    } else {
      w->slot = s;
      why = "the pool is at its bound of " + std::to_string(max_threads_) + " threads";
    }
    throw UsageError("skein: a task would block its pool thread but " + why +
                     "; use co_await instead of a blocking wait, or raise the pool's max_threads");
  }

  void thread_main(Worker* w) noexcept {
    name_this_thread("skein-worker");
    w->record = mark_pool_thread(w->parker.word(), Parker::sleeping_value(Parker::kWaiting));
    w->tid.store(this_thread_os_id(), std::memory_order_relaxed);
    tl_worker = w;
    live_.bind_thread(w->counts);
    {
      ThreadBinding bound(this, &scope_, w);
      while (!stop_.load(std::memory_order_acquire)) {
        if (!w->slot && !become_spare(w)) break;
        run_slot(w);
      }
    }
    tl_worker = nullptr;
  }

  bool become_spare(Worker* w) noexcept {
    {
      std::lock_guard lk(threads_mu_);
      if (w->covers) {  // a rescuer whose task has yielded: its slot is free again
        w->covers = nullptr;
        free_rescue_slots_.push_back(w->rescue_slot);
        w->rescue_slot = nullptr;
      }
      if (stop_.load(std::memory_order_acquire)) return false;
      w->arm();
      spares_.push_back(w);
    }
    w->sleep();
    return w->slot != nullptr;
  }

  void run_slot(Worker* w) noexcept {
    // The slot's root scope, once: a task's resumption sets the task's own
    // scope (set_task_scope) and resume() restores this one after it.
    if (w->slot) ThreadBinding::rebind_root(&w->slot->scope);
    while (w->slot && !stop_.load(std::memory_order_acquire)) {
      Slot* s = w->slot;
      if (w->covers && rescue_over(w)) {  // see rescue()
        idle_.stop_searching(w);
        w->slot = nullptr;
        break;
      }
      void* h = find_local(s);
      if (!h) {
        idle_.start_searching(w);
        h = steal(s);
        if (!h) h = pop_injection(s);
        if (!h) {
          // Spin before parking: a park and a cross-CPU wake-up cost tens of
          // µs, so a worker keeps looking for a while — first with pauses,
          // then yielding its CPU to whoever is producing the work.
          for (int i = 0; i < tuning::kWorkerSpinRounds && !h; ++i) {
            if (i < tuning::kWorkerPauseRounds) {
              for (int k = 0; k < tuning::kPausesPerRound; ++k) cpu_relax();
            } else {
              std::this_thread::yield();
            }
            h = steal(s);
            if (!h) h = pop_injection(s);
          }
        }
        if (!h) {
          if (w->covers && rescue_over(w)) continue;  // retires at the top, instead of parking
          idle_.park(w, [this] { return work_visible() || stop_.load(std::memory_order_acquire); });
          continue;
        }
      }
      idle_.stop_searching(w);
      w->stamp.store((++w->runs << 1) | 1, std::memory_order_relaxed);
      resume(std::coroutine_handle<>::from_address(h));
      w->stamp.store(w->runs << 1, std::memory_order_relaxed);
      // After a hand-off the thread finishes without a slot, in the pool's scope.
      if (!w->slot) ThreadBinding::rebind_root(&scope_);
    }
  }

  // --- the watchdog ---------------------------------------------------------------
  //
  // The monitor thread (deadlock_monitor.hpp) looks at every worker that holds
  // a slot: a task that has run on it for longer than the threshold without a
  // scheduling point (its stamp unchanged and odd) holds the slot's other
  // work hostage — its deque can only be stolen from, its LIFO slot not at
  // all, and an idle worker may not even be awake to steal. Its slot cannot
  // be handed over as a blocking wait hands it (the task still runs and may
  // push onto its deque as the owner at any moment), so a rescuer comes
  // instead: a spare (or new) thread with a temporary slot of its own, which
  // steals the hogged slot's work and everything else, until the task it
  // covers for has yielded and its own slot is empty (then it becomes a
  // spare again). Go's sysmon retakes a P from a thread in a system call;
  // this is the same idea for a task that never yields.

  struct PoolList {
    std::mutex mu;
    std::vector<PoolCore*> pools;
  };
  static PoolList& pool_list() {
    // Never destroyed (the monitor thread outlives main()), made without allocating.
    alignas(PoolList) static unsigned char storage[sizeof(PoolList)];
    static PoolList* const l = ::new (static_cast<void*>(storage)) PoolList;
    return *l;
  }
  static void watch_pools(PoolCore* p, bool add) noexcept {
    auto& l = pool_list();
    std::lock_guard lk(l.mu);
    if (add) {
      try {
        l.pools.push_back(p);
      } catch (...) {  // out of memory: this pool goes unwatched
        return;
      }
      g_watchdog_fn.store(&PoolCore::watchdog, std::memory_order_release);
      ensure_deadlock_monitor();
    } else {
      auto it = std::find(l.pools.begin(), l.pools.end(), p);
      if (it != l.pools.end()) l.pools.erase(it);
    }
  }
  /// The monitor's look at every pool (under the list's lock: no pool dies meanwhile).
  static void watchdog(const WatchdogOptions& wd) {
    std::vector<HogReport> reports;
    {
      auto& l = pool_list();
      std::lock_guard lk(l.mu);
      const auto now = Clock::now();
      for (PoolCore* p : l.pools) p->look_for_hogs(wd, now, reports);
    }
    for (auto& r : reports) report_hog(wd, r);
  }

  void look_for_hogs(const WatchdogOptions& wd, Clock::time_point now, std::vector<HogReport>& out) {
    std::lock_guard lk(threads_mu_);
    if (stop_.load(std::memory_order_acquire)) return;
    for (std::size_t i = 0; i < threads_.size(); ++i) {
      Worker* w = threads_[i].get();
      const std::uint64_t st = w->stamp.load(std::memory_order_relaxed);
      if (st != w->seen_stamp) {
        w->seen_stamp = st;
        w->seen_since = now;
        w->handled = w->sampled = false;
        continue;
      }
      if (!(st & 1) || w->handled) continue;
      const long tid = w->tid.load(std::memory_order_relaxed);
      // Halfway: note the thread's CPU time. A thread that the system has
      // merely not scheduled (a loaded machine) is not hogging anything an
      // extra thread could fix; one that computes, or sleeps in the kernel
      // outside skein (a std::mutex, a read()), is.
      if (!w->sampled) {
        if (now - w->seen_since < wd.threshold / 2) continue;
        ThreadCpu c;
        w->sampled = true;
        w->sampled_at = now;
        w->cpu0 = read_thread_cpu(tid, c) ? c.cpu : -1;
        continue;
      }
      if (now - w->seen_since < wd.threshold) continue;
      ThreadCpu c;
      if (w->cpu0 >= 0 && read_thread_cpu(tid, c) && c.state == 'R') {
        const double ran = static_cast<double>(c.cpu - w->cpu0) / static_cast<double>(cpu_ticks_per_second());
        const double window = std::chrono::duration<double>(now - w->sampled_at).count();
        if (ran < window / 4) {  // runnable but hardly running: preempted, not a hog (yet)
          w->seen_since = now;
          w->sampled = false;
          continue;
        }
      }
      w->handled = true;  // once per task run
      HogReport r;
      r.thread_id = tid;
      r.thread_name = thread_os_name(tid);
      r.seconds = std::chrono::duration<double>(now - w->seen_since).count();
      if (wd.rescue)
        r.rescued = rescue(w, st, r.why_not);
      else
        r.why_not = "rescue is off (WatchdogOptions::rescue)";
      out.push_back(std::move(r));
    }
  }

  /// threads_mu_ held. Starts or wakes a rescuer covering for `hog`.
  bool rescue(Worker* hog, std::uint64_t stamp, std::string& why_not) {
    Slot* s = nullptr;
    try {
      idle_.reserve(threads_.size() + 1);  // one more slot holder may park: park() must not allocate
      if (free_rescue_slots_.empty()) {
        rescue_slots_.reserve(rescue_slots_.size() + 1);
        free_rescue_slots_.reserve(rescue_slots_.size() + 1);  // become_spare() gives it back without allocating
        auto slot = std::make_unique<Slot>();
        slot->index = slots_.size() + rescue_slots_.size();
        slot->rng = 0x9E3779B97F4A7C15ull * (slot->index + 1);
        if (stop_.load(std::memory_order_relaxed)) slot->scope.request_stop();
        free_rescue_slots_.push_back(slot.get());
        rescue_slots_.push_back(std::move(slot));
      }
      s = free_rescue_slots_.back();
      if (!spares_.empty()) {
        Worker* sp = spares_.back();
        spares_.pop_back();
        free_rescue_slots_.pop_back();
        sp->slot = s;
        sp->rescue_slot = s;
        sp->covers = hog;
        sp->covers_stamp = stamp;
        sp->rouse();
        return true;
      }
      if (threads_.size() >= max_threads_) {
        why_not = "the pool is at its bound of " + std::to_string(max_threads_) + " threads";
        return false;
      }
      start_thread(s, nullptr, hog, stamp);
      free_rescue_slots_.pop_back();
      return true;
    } catch (const std::exception& e) {
      why_not = std::string("a thread could not be started (") + e.what() + ")";
      return false;
    }
  }

  /// The task the rescuer covers for has yielded, and the rescuer's own slot is empty.
  static bool rescue_over(Worker* w) noexcept {
    return w->covers->stamp.load(std::memory_order_relaxed) != w->covers_stamp && !w->slot->lifo &&
           w->slot->deque.size_approx() == 0;
  }

  // --- shutdown ---------------------------------------------------------------

  void shutdown() noexcept {
    // 1. Cancel: every skein wait of a task of this pool throws Cancelled,
    //    and a queued task that has not started never starts.
    scope_.request_stop();
    for (auto& s : slots_) s->scope.request_stop();
    {
      std::lock_guard lk(threads_mu_);
      for (auto& s : rescue_slots_) s->scope.request_stop();
    }
    cancel_context_tasks();
    // 2. Let the workers finish or cancel every task.
    for (int spin = 0; live_.load() != 0; ++spin) {
      if (spin < 100) {
        std::this_thread::yield();
      } else {
        // A second cancellation pass catches contexts whose first task was
        // started on this pool after step 1.
        cancel_context_tasks();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    // 3. Stop and join every thread.
    std::vector<std::unique_ptr<Worker>> all;
    {
      // Under the idle list's lock too: a parking worker arms its word under
      // it and then reads stop_, so it either sees stop_ or is roused below.
      std::scoped_lock lk(threads_mu_, idle_.mutex());
      stop_.store(true, std::memory_order_release);
      all.swap(threads_);
    }
    for (auto& w : all) w->rouse();
    for (auto& w : all)
      if (w->thread.joinable()) w->thread.join();
    // 4. Coroutines that hopped onto the pool by hand may still be queued:
    //    resume them in draining mode, where every skein wait throws Cancelled.
    ThreadBinding draining(nullptr, &scope_, nullptr, true);
    // (Every slot, the rescuers' too: no thread is left, so no lock is needed.)
    const std::size_t n_slots = slots_.size(), n_every = n_slots + rescue_slots_.size();
    for (bool any = true; any;) {
      any = false;
      for (std::size_t i = 0; i < n_every; ++i) {
        Slot* s = i < n_slots ? slots_[i].get() : rescue_slots_[i - n_slots].get();
        if (void* h = s->lifo) {
          s->lifo = nullptr;
          any = true;
          resume(std::coroutine_handle<>::from_address(h));
        }
        while (void* h = s->deque.pop()) {
          any = true;
          resume(std::coroutine_handle<>::from_address(h));
        }
      }
      for (;;) {
        void* h = nullptr;
        {
          std::lock_guard lk(inj_mu_);
          if (inj_.empty()) break;
          h = inj_.front();
          inj_.pop_front();
          inj_size_.store(inj_.size(), std::memory_order_relaxed);
        }
        any = true;
        resume(std::coroutine_handle<>::from_address(h));
      }
      for (std::size_t i = 0; i < ext_n_.load(std::memory_order_acquire); ++i)
        while (void* h = ext_[i].load(std::memory_order_acquire)->deque.steal()) {
          any = true;
          resume(std::coroutine_handle<>::from_address(h));
        }
    }
  }

  std::vector<std::unique_ptr<Slot>> slots_;
  const std::size_t max_threads_;

  IdleWorkers idle_;
  alignas(64) std::atomic<std::size_t> inj_size_{0};
  SpinLock inj_mu_;
  std::deque<void*> inj_;

  const std::uint64_t id_ = next_pool_id();
  std::mutex ext_mu_;  // registration only
  std::atomic<std::size_t> ext_n_{0};
  std::atomic<External*> ext_[kExternalQueues] = {};

  mutable std::mutex threads_mu_;
  std::vector<std::unique_ptr<Worker>> threads_;
  std::vector<Worker*> spares_;
  std::vector<std::unique_ptr<Slot>> rescue_slots_;  // temporary slots of rescuers (under threads_mu_)
  std::vector<Slot*> free_rescue_slots_;
  std::atomic<bool> stop_{false};
};

}  // namespace skein::detail
