#pragma once
// The thread pool's parking protocol: how a worker that found no work goes to
// sleep, and how a producer decides whether to wake one, without losing a
// wake-up and without waking a crowd. PoolCore runs it; it lives here on its
// own, templated over the parking policy (see OsParking), so that the model
// checker (tests/model_check.test.cpp) can run this very code under every
// interleaving.
//
// `state_` packs the number of searching workers (high half) and idle ones
// (low half). A producer that pushed work calls notify(): it wakes an idle
// worker only if none is searching (a searcher will find the work, and wakes
// the next one when it stops searching: stop_searching()). A worker that goes
// idle (park()) counts itself idle with an RMW on `state_` and then re-checks
// for work; a producer that must not be missed reads `state_` with an RMW
// (notify(true)). RMWs on one atomic are totally ordered, so either the
// producer sees the idle worker and wakes it, or the worker's re-check sees
// the work. A producer pushing onto its own worker's deque uses a plain load
// (notify(false)): missing a sleeper there only costs parallelism, since the
// deque's owner runs it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "fault.hpp"
#include "parker.hpp"
#include "test_hooks.hpp"

namespace skein::detail {

template <class Sys = OsParking>
class BasicIdleWorkers {
public:
  /// A worker's part of the protocol: whether it is counted as searching, and
  /// the Parker it sleeps on (a rouse that finds it still spinning costs no
  /// system call).
  struct Sleeper {
    using Parker = BasicParker<Sys>;
    bool searching = false;  // touched by its own thread only
    Parker parker;
    ThreadRecord* record = nullptr;  // its thread's (the deadlock detector's view), if registered

    /// Re-arms the parker; the caller then publishes the sleeper under a
    /// lock, and nobody rouses a sleeper it did not find published.
    void arm() noexcept { parker.reset(); }
    /// Sleeps until rouse()d (returns at once if it already was).
    void sleep() noexcept {
      if (parker.spin_while(Parker::kWaiting, Sys::spin_budget()) == Parker::kWaiting) {
        note_idle_park(record);  // before the word turns quiet in wait_while
        parker.wait_while(Parker::kWaiting, nullptr, ParkKind::idle_worker);
      }
    }
    void rouse() noexcept { parker.notify(); }
  };

  explicit BasicIdleWorkers(std::size_t workers) {
    idle_.reserve(workers);  // one entry per slot-holder at most: park() never allocates
  }
  BasicIdleWorkers(const BasicIdleWorkers&) = delete;
  BasicIdleWorkers& operator=(const BasicIdleWorkers&) = delete;

  /// Room for `n` sleepers, so that park() never allocates (a pool that adds
  /// a slot holder calls it first). May throw std::bad_alloc.
  void reserve(std::size_t n) {
    std::lock_guard lk(mu_);
    idle_.reserve(n);
  }

  /// Work was published: wake an idle worker if nobody is searching. `strict`:
  /// the wake-up must not be missed (see the top of this file).
  void notify(bool strict) noexcept {
    SKEIN_FAULT_POINT();
    std::uint64_t s = strict ? state_.fetch_add(0, std::memory_order_acq_rel) : state_.load(std::memory_order_relaxed);
    if (searching_of(s) == 0 && idle_of(s) > 0) wake_one();
  }

  /// The worker looks beyond its own queues (stealing): counted as searching.
  void start_searching(Sleeper* w) noexcept {
    if (w->searching) return;
    w->searching = true;
    state_.fetch_add(kSearchingOne, std::memory_order_acq_rel);
  }

  /// The worker found work (or is leaving its slot).
  void stop_searching(Sleeper* w) noexcept {
    if (!w->searching) return;
    w->searching = false;
    auto prev = state_.fetch_sub(kSearchingOne, std::memory_order_acq_rel);
    // The last searcher found work: there may be more, keep the chain going.
    if (searching_of(prev) == 1) notify(false);
  }

  /// Parks a worker that found nothing. `ready()` says whether work is
  /// visible (or the pool stops); it is checked after the worker counts
  /// itself idle. Returns when woken or when ready() held; the worker then
  /// counts as searching (except after a shutdown's rouse, which no longer
  /// cares).
  template <class Ready>
  void park(Sleeper* w, Ready&& ready) noexcept {
    SKEIN_FAULT_POINT();
    {
      std::lock_guard lk(mu_);
      idle_.push_back(w);
      w->arm();
    }
    std::uint64_t delta = kIdleOne - (w->searching ? kSearchingOne : 0);
    w->searching = false;
    state_.fetch_add(delta, std::memory_order_acq_rel);
    SKEIN_FAULT_POINT();  // idle and counted: a producer may now miss us or wake us
    // (The model checker's broken variant skips this re-check.)
    if (!inject_skip_idle_recheck<Sys>() && ready()) {
      bool removed = false;
      {
        std::lock_guard lk(mu_);
        auto it = std::find(idle_.begin(), idle_.end(), w);
        if (it != idle_.end()) {
          idle_.erase(it);
          removed = true;
          state_.fetch_add(kSearchingOne - kIdleOne, std::memory_order_acq_rel);
        }
      }
      if (!removed) w->sleep();  // a waker took us off the list: take its wake-up
      w->searching = true;
      return;
    }
    w->sleep();
    w->searching = true;  // counted by wake_one
  }

  /// The lock under which park() publishes a sleeper: a shutdown sets its
  /// stop flag under it, so a parking worker either sees the flag in ready()
  /// or is parked by the time the shutdown rouses every worker.
  typename Sys::Mutex& mutex() noexcept { return mu_; }

  /// Snapshots, for tests.
  [[nodiscard]] std::uint32_t idle_count() const noexcept { return idle_of(state_.load()); }
  [[nodiscard]] std::uint32_t searching_count() const noexcept { return searching_of(state_.load()); }
  /// Workers on the idle list; call with mutex() held, or when nothing runs.
  [[nodiscard]] std::size_t listed() const noexcept { return idle_.size(); }

private:
  static constexpr std::uint64_t kIdleOne = 1;
  static constexpr std::uint64_t kSearchingOne = std::uint64_t{1} << 32;
  static std::uint32_t idle_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s); }
  static std::uint32_t searching_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s >> 32); }

  void wake_one() noexcept {
    Sleeper* w = nullptr;
    {
      std::lock_guard lk(mu_);
      if (idle_.empty()) return;
      w = idle_.back();
      idle_.pop_back();
      // The woken worker starts out searching: counted here, under the lock,
      // so that a burst of notifies wakes one worker, not all of them.
      state_.fetch_add(kSearchingOne - kIdleOne, std::memory_order_acq_rel);
    }
    w->rouse();
  }

  alignas(64) typename Sys::template Atomic<std::uint64_t> state_{0};  // alone on its cache line
  alignas(64) typename Sys::Mutex mu_;
  std::vector<Sleeper*> idle_;
};

using IdleWorkers = BasicIdleWorkers<>;

}  // namespace skein::detail
