// Soak (the reliability harness, part 4): a seeded random workload that mixes
// every primitive at once, for a bounded time, under random cancellation and
// short deadlines, and then checks exact totals.
//
// What runs at once: producers and consumers on a bounded and an unbounded
// Queue and on short-lived per-episode queues (pool tasks, coroutines and
// plain threads; blocking, try_, timed, async and range-for forms),
// WaitGroup fan-outs (wait, wait_for, async_wait), a Semaphore (never more
// than its permits held), a Mutex and an RWLock guarding plain counters,
// Shared::update and Shared::lock, Atomic add/cas, a long-lived Pool and
// short-lived Pools bound to cancellable contexts (worker errors, plain and
// coroutine workers, submit and async_submit), an EventLoop (posts, failing
// posts, a notifier, loop coroutines, work(), hops onto the loop and back),
// sleep_for/sleep_until/async_sleep, when_all/when_any/sequence/
// run_with_timeout, and deliberately orphaned task errors. Jobs run under
// nested Contexts that are cancelled at random moments or carry short
// deadlines, so waits of every kind are cancelled or time out mid-flight.
//
// When the time is up no new work starts, the queues are closed, everything
// drains, and the totals must be exact: every item put successfully was
// received exactly once or is still in its queue at the final drain (and no
// item whose put failed ever appears), every guarded counter equals the
// operations recorded, every permit is back, the locks are free, every
// WaitGroup is at zero, no task is left, and the unhandled-error handler got
// exactly the errors the workload orphaned on purpose. Timing only drives
// the mix: no assertion depends on the clock.
//
//   SKEIN_SOAK_SEED=N      replay the mix of a seed (printed by every case)
//   SKEIN_SOAK_SECONDS=S   run each case for S seconds (default 2; 1 when
//                          SKEIN_TEST_SCALE > 1, as the sanitizer builds set it)
#include "support/common.hpp"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace test;
using skein::Promise;

namespace {

using Clock = std::chrono::steady_clock;
using us = std::chrono::microseconds;

// --- configuration -------------------------------------------------------------

std::uint64_t soak_seed() {
  static const std::uint64_t seed = [] {
    if (const char* s = std::getenv("SKEIN_SOAK_SEED"); s && *s)
      return static_cast<std::uint64_t>(std::strtoull(s, nullptr, 0));
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  return seed;
}

std::chrono::milliseconds soak_duration() {
  if (const char* s = std::getenv("SKEIN_SOAK_SECONDS"); s && *s) {
    const double secs = std::strtod(s, nullptr);
    if (secs > 0) return std::chrono::milliseconds(static_cast<long long>(secs * 1000));
  }
  return std::chrono::milliseconds(std::max(scaled(2000), 1000));
}

/// splitmix64: small, seedable, good enough to pick a mix.
class Rng {
public:
  explicit Rng(std::uint64_t seed) noexcept : s_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint32_t below(std::uint32_t n) noexcept { return static_cast<std::uint32_t>(next() % n); }
  bool chance(int percent) noexcept { return below(100) < static_cast<std::uint32_t>(percent); }
  us micros(int lo, int hi) noexcept {
    return us(lo + static_cast<int>(below(static_cast<std::uint32_t>(hi - lo + 1))));
  }
  /// A timed wait's duration: mostly micros(lo, hi), sometimes the extremes a
  /// deadline must survive (issue: `now() + d` overflowed): the largest
  /// duration (a wait without a deadline), zero and negative ones (a try).
  /// Only where the untimed form of the same wait is also in the mix.
  std::chrono::nanoseconds timeout(int lo, int hi) noexcept {
    switch (below(25)) {
      case 0: return std::chrono::nanoseconds::max();
      case 1: return std::chrono::nanoseconds::zero();
      case 2: return chance(50) ? std::chrono::nanoseconds(-1) : std::chrono::nanoseconds::min();
      default: return micros(lo, hi);
    }
  }
  /// An index picked with the given weights.
  template <std::size_t N>
  std::size_t weighted(const int (&w)[N]) noexcept {
    int total = 0;
    for (int x : w) total += x;
    int pick = static_cast<int>(below(static_cast<std::uint32_t>(total)));
    for (std::size_t i = 0; i < N; ++i) {
      if (pick < w[i]) return i;
      pick -= w[i];
    }
    return N - 1;
  }

private:
  std::uint64_t s_;
};

void bump(std::atomic<long>& a, long n = 1) noexcept { a.fetch_add(n, std::memory_order_relaxed); }
long val(const std::atomic<long>& a) noexcept { return a.load(std::memory_order_relaxed); }

// --- what is counted -------------------------------------------------------------

enum Op : int {
  kPut,
  kGet,
  kSem,
  kMutex,
  kRead,
  kWrite,
  kShared,
  kAtomic,
  kSubmit,
  kPoolWait,
  kPost,
  kLoopTask,
  kSleep,
  kWgWait,
  kAwait,
  kCtxWait,
  kCombine,
  kOpCount
};
constexpr const char* kOpNames[kOpCount] = {"put",    "get",     "sem",    "mutex",     "read",   "write",
                                            "shared", "atomic",  "submit", "pool.wait", "post",   "loop-task",
                                            "sleep",  "wg.wait", "await",  "ctx.wait",  "combine"};

/// Outcomes of one kind of operation.
struct Outcomes {
  std::atomic<long> ok{0}, timeout{0}, cancelled{0}, closed{0};
  long total() const noexcept { return val(ok) + val(timeout) + val(cancelled) + val(closed); }
};

struct PoolBoom : std::runtime_error {
  PoolBoom() : std::runtime_error("soak: a deliberate Pool worker error") {}
};
struct LoopBoom : std::runtime_error {
  LoopBoom() : std::runtime_error("soak: a deliberate EventLoop post error") {}
};
struct OrphanBoom : std::runtime_error {
  OrphanBoom() : std::runtime_error("soak: a deliberate error of a task nobody observes") {}
};

constexpr const char* kPoolCancelledPrefix = "Pool workers cancelled; ";

/// N of "Pool workers cancelled; N queued item(s) not processed", or -1.
long pool_dropped(const char* what) {
  const std::string s = what;
  if (s.rfind(kPoolCancelledPrefix, 0) != 0) return -1;
  return std::strtol(s.c_str() + std::char_traits<char>::length(kPoolCancelledPrefix), nullptr, 10);
}

// --- queue items -------------------------------------------------------------------

/// A payload long enough to live on the heap: a lost, doubled or torn move shows.
std::string tag_for(std::uint32_t id) { return "soak item #" + std::to_string(id) + " (heap payload)"; }

struct Item {
  std::uint32_t id = 0;
  std::string tag;
};
static_assert(std::is_nothrow_move_constructible_v<Item>);

using ItemQueue = skein::Queue<Item>;

// --- the world ------------------------------------------------------------------------

struct World {
  static constexpr int kPermits = 3;

  World(skein::ThreadPool& jobs, std::size_t id_capacity)
      : jobs_pool(jobs),
        capacity(id_capacity),
        put_state(id_capacity, 0),
        recv(id_capacity, 0),
        pool_state(id_capacity, 0),
        pool_seen(id_capacity, 0),
        gpool([this](int id) { global_worker(id); }, 2, 3) {}

  skein::ThreadPool& jobs_pool;  // where jobs and their sub-tasks run
  skein::Context root;           // every job's context descends from it (bar a few independent roots)
  std::atomic<bool> stopping{false};
  bool time_up() const noexcept { return stopping.load(std::memory_order_relaxed); }

  // Items: per id, the outcome of its put (1 ok, 2 failed) and how often it was received.
  const std::size_t capacity;
  std::vector<std::uint8_t> put_state, recv;  // accessed through std::atomic_ref
  std::atomic<std::uint32_t> next_id{0};
  std::atomic<long> received{0}, drained{0};
  std::optional<Item> new_item() {
    const std::uint32_t id = next_id.fetch_add(1, std::memory_order_relaxed);
    if (id >= capacity) {
      next_id.store(static_cast<std::uint32_t>(capacity), std::memory_order_relaxed);  // no wrap-around
      return std::nullopt;
    }
    return Item{id, tag_for(id)};
  }
  std::size_t ids() const noexcept { return std::min<std::size_t>(next_id.load(std::memory_order_acquire), capacity); }
  void put_result(std::uint32_t id, bool ok) {
    std::uint8_t none = 0;
    if (!std::atomic_ref<std::uint8_t>(put_state[id]).compare_exchange_strong(none, ok ? 1 : 2))
      fail("item #" + std::to_string(id) + ": its put ended twice");
  }
  void got(const Item& it, bool at_drain = false) {
    if (it.id >= ids()) return fail("received item #" + std::to_string(it.id) + ", which was never made");
    if (it.tag != tag_for(it.id)) fail("item #" + std::to_string(it.id) + " arrived corrupted: \"" + it.tag + "\"");
    if (std::atomic_ref<std::uint8_t>(recv[it.id]).fetch_add(1) != 0)
      fail("item #" + std::to_string(it.id) + " received more than once");
    bump(at_drain ? drained : received);
  }
  /// A failed put must leave the caller's item as it was (docs/api/queue.md).
  void check_untouched(const Item& it, std::uint32_t id, const char* form) {
    if (it.tag != tag_for(id))
      fail(std::string("a failed ") + form + " did not leave the caller's item untouched (it now holds \"" + it.tag +
           "\")");
  }

  ItemQueue qb{3};  // bounded
  ItemQueue qu;     // unbounded
  /// Non-owning handles to qb/qu, for the coroutines that take their queue by shared_ptr.
  std::shared_ptr<ItemQueue> bounded() { return std::shared_ptr<ItemQueue>(std::shared_ptr<void>(), &qb); }
  std::shared_ptr<ItemQueue> unbounded() { return std::shared_ptr<ItemQueue>(std::shared_ptr<void>(), &qu); }

  // Coroutines running now. `co_await child()` is cancellable: when the
  // awaiting task is cancelled it goes on while the child coroutine, which
  // is no task (goroutines() and Context::wait() do not count it), finishes
  // on its own a moment later. So every coroutine here owns what it uses
  // and counts itself, and the final checks wait for this to reach zero.
  std::atomic<long> coros_live{0};
  std::mutex reg_mu;
  std::vector<std::shared_ptr<ItemQueue>> episode_queues;
  std::vector<std::shared_ptr<skein::WaitGroup>> groups;
  void keep(std::shared_ptr<ItemQueue> q) {
    std::lock_guard lk(reg_mu);
    episode_queues.push_back(std::move(q));
  }
  void keep(std::shared_ptr<skein::Pool<int>> p) {
    std::lock_guard lk(reg_mu);
    late_pools.push_back(std::move(p));
  }
  void keep(std::shared_ptr<skein::WaitGroup> g) {
    std::lock_guard lk(reg_mu);
    groups.push_back(std::move(g));
  }

  // Semaphore: never more than kPermits holders.
  skein::Semaphore sem{kPermits};
  std::atomic<int> holders{0}, max_holders{0};

  // Mutex and RWLock guarding plain (non-atomic) values: TSan sees any overlap.
  skein::Mutex mu;
  long mu_counter = 0;
  std::atomic<bool> mu_inside{false};
  skein::RWLock rw;
  long rw_value = 0;
  std::atomic<int> readers{0};
  std::atomic<bool> writer{false};

  struct Totals {
    long n = 0;
    long sum = 0;
  };
  skein::Shared<Totals> shared;
  std::atomic<long> shared_sum{0};

  skein::Atomic<> atom{0};
  std::atomic<long> atom_sum{0};

  // Pool items are ids too: per id, the outcome of its submit (1 ok, 2 failed;
  // kDroppable: submitted to a Pool whose workers' context was cancelled, so
  // it may have been dropped unprocessed) and how often a worker got it.
  static constexpr std::uint8_t kDroppable = 4;
  std::vector<std::uint8_t> pool_state, pool_seen;
  std::atomic<std::uint32_t> pool_next_id{0};
  std::optional<int> new_pool_item() {
    const std::uint32_t id = pool_next_id.fetch_add(1, std::memory_order_relaxed);
    if (id >= capacity) {
      pool_next_id.store(static_cast<std::uint32_t>(capacity), std::memory_order_relaxed);
      return std::nullopt;
    }
    return static_cast<int>(id);
  }
  std::size_t pool_ids() const noexcept {
    return std::min<std::size_t>(pool_next_id.load(std::memory_order_acquire), capacity);
  }
  void submit_result(int id, bool ok) {
    // fetch_or: the owner may have marked the item droppable (kDroppable) already.
    const auto before = std::atomic_ref<std::uint8_t>(pool_state[static_cast<std::size_t>(id)]).fetch_or(ok ? 1 : 2);
    if (before & 3) fail("Pool item #" + std::to_string(id) + ": its submit ended twice");
  }
  void may_drop(int id) {
    std::atomic_ref<std::uint8_t>(pool_state[static_cast<std::size_t>(id)]).fetch_or(kDroppable);
  }
  /// A worker got Pool item `id`.
  void entered(int id) {
    if (id < 0 || static_cast<std::size_t>(id) >= pool_ids())
      return fail("a Pool worker got item #" + std::to_string(id) + ", which was never made");
    if (std::atomic_ref<std::uint8_t>(pool_seen[static_cast<std::size_t>(id)]).fetch_add(1) != 0)
      fail("Pool item #" + std::to_string(id) + " given to a worker more than once");
  }

  // The long-lived Pool (workers on default_pool(), bound to no context).
  std::atomic<long> pool_submitted{0}, pool_processed{0}, pool_thrown{0};
  // Every PoolBoom thrown by any Pool worker, and those rethrown by wait()/close().
  std::atomic<long> boom_thrown{0}, boom_rethrown{0};
  // Short-lived Pools bound to cancellable contexts.
  struct PoolEpisode {
    std::mutex mu;
    std::vector<int> ids;  // every id a submit was attempted for
    void add(int id) {
      std::lock_guard lk(mu);
      ids.push_back(id);
    }
  };
  std::vector<std::shared_ptr<skein::Pool<int>>> late_pools;  // closed while submitters may still run (under reg_mu)
  std::atomic<long> ep_pools{0}, ep_submitted{0}, ep_processed{0}, ep_thrown{0}, ep_item_cancelled{0},
      ep_dropped_reported{0}, ep_never_started{0}, ep_cancelled{0};
  std::size_t pools_pending = 0;  // under reg_mu
  void check_pending(const skein::Pool<int>& p) {
    // After close() every item was processed, or dropped and counted done: nothing may stay pending.
    if (p.pending() == 0) return;
    std::lock_guard lk(reg_mu);
    ++pools_pending;
  }

  // EventLoop: plain counters touched on the loop's thread only.
  skein::EventLoop loop;
  long loop_counter = 0, loop_coros_done = 0, notifier_runs = 0;
  std::atomic<long> loop_posted{0}, loop_thrown{0}, loop_spawned{0}, triggers{0};
  std::optional<skein::Notifier> notifier;
  // Every task spawned on the loop. A loop task is bound to the context of
  // the job that spawned it, so it may be cancelled (before it starts, or in
  // a wait): at the end each must have settled, and exactly those that
  // succeeded ran to their end.
  std::mutex loop_tasks_mu;
  std::vector<skein::Promise<void>> loop_tasks;
  void keep_loop_task(const skein::Promise<void>& t) {
    std::lock_guard lk(loop_tasks_mu);
    loop_tasks.push_back(t);
  }

  // Errors orphaned on purpose, and what the unhandled-error handler got.
  std::atomic<long> orphans_thrown{0};
  std::atomic<long> h_orphan{0}, h_loop{0}, h_pool{0}, h_cancelled{0}, h_other{0};

  // Jobs and contexts.
  std::atomic<long> jobs{0}, jobs_ok{0}, jobs_cancelled{0}, jobs_deadline{0}, ctx_cancels{0}, episodes{0},
      groups_made{0}, nested{0};
  Outcomes ops[kOpCount];
  Outcomes& op(Op o) noexcept { return ops[o]; }

  std::mutex fail_mu;
  std::vector<std::string> failures;
  std::atomic<long> failure_count{0};
  void fail(const std::string& what) {
    bump(failure_count);
    std::lock_guard lk(fail_mu);
    if (failures.size() < 20) failures.push_back(what);
  }

  void on_unhandled(std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const OrphanBoom&) {
      bump(h_orphan);
    } catch (const LoopBoom&) {
      bump(h_loop);
    } catch (const PoolBoom&) {
      bump(h_pool);
    } catch (const skein::Cancelled& c) {
      bump(h_cancelled);
      if (long n = pool_dropped(c.what()); n >= 0) bump(ep_dropped_reported, n);
      fail(std::string("a cancellation reached the unhandled-error handler (never reported, says the contract): ") +
           c.what());
    } catch (const std::exception& x) {
      bump(h_other);
      fail(std::string("unexpected error reported to the unhandled-error handler: ") + x.what());
    } catch (...) {
      bump(h_other);
      fail("a non-std::exception reported to the unhandled-error handler");
    }
  }

  void global_worker(int id) {
    entered(id);
    if (id % 13 == 0) {
      bump(boom_thrown);
      bump(pool_thrown);
      throw PoolBoom();
    }
    if (id % 3 == 0) skein::sleep_for(us(id % 300));  // backpressure on the submitters
    bump(pool_processed);
  }

  skein::Pool<int> gpool;  // last: destroyed first, its workers use the members above
};

/// Counts a running coroutine of the workload (declared first in its body).
class CoroLive {
public:
  explicit CoroLive(World* w) noexcept : w_(w) { w_->coros_live.fetch_add(1); }
  ~CoroLive() { w_->coros_live.fetch_sub(1); }
  CoroLive(const CoroLive&) = delete;
  CoroLive& operator=(const CoroLive&) = delete;

private:
  World* w_;
};

// --- RAII holds: the invariants are checked for the whole time a lock is held --------

class SemHold {
public:
  explicit SemHold(World& w) : w_(w) {
    const int n = w_.holders.fetch_add(1) + 1;
    if (n > World::kPermits)
      w_.fail("Semaphore: " + std::to_string(n) + " holders of " + std::to_string(World::kPermits) + " permits");
    int m = w_.max_holders.load();
    while (n > m && !w_.max_holders.compare_exchange_weak(m, n)) {
    }
  }
  ~SemHold() {
    w_.holders.fetch_sub(1);
    try {
      w_.sem.release();
    } catch (const std::exception& e) {
      w_.fail(std::string("Semaphore::release of a held permit threw: ") + e.what());
    }
  }
  SemHold(const SemHold&) = delete;
  SemHold& operator=(const SemHold&) = delete;

private:
  World& w_;
};

/// Inside the Mutex: ++counter, counted as one successful lock.
class MuHold {
public:
  explicit MuHold(World& w) : w_(w) {
    if (w_.mu_inside.exchange(true)) w_.fail("Mutex: two holders at once");
    ++w_.mu_counter;
    bump(w_.op(kMutex).ok);
  }
  ~MuHold() { w_.mu_inside.store(false); }
  MuHold(const MuHold&) = delete;
  MuHold& operator=(const MuHold&) = delete;

private:
  World& w_;
};

class WriteHold {
public:
  explicit WriteHold(World& w) : w_(w) {
    if (w_.writer.exchange(true)) w_.fail("RWLock: two writers at once");
    if (w_.readers.load() != 0) w_.fail("RWLock: a writer got in while readers held the lock");
    ++w_.rw_value;
    bump(w_.op(kWrite).ok);
  }
  ~WriteHold() { w_.writer.store(false); }
  WriteHold(const WriteHold&) = delete;
  WriteHold& operator=(const WriteHold&) = delete;

private:
  World& w_;
};

class ReadHold {
public:
  explicit ReadHold(World& w) : w_(w) {
    w_.readers.fetch_add(1);
    if (w_.writer.load()) w_.fail("RWLock: a reader got in while a writer held the lock");
    seen_ = w_.rw_value;  // a plain read: TSan flags a concurrent writer
    bump(w_.op(kRead).ok);
  }
  ~ReadHold() {
    if (w_.rw_value != seen_) w_.fail("RWLock: the value changed under a reader");
    w_.readers.fetch_sub(1);
  }
  ReadHold(const ReadHold&) = delete;
  ReadHold& operator=(const ReadHold&) = delete;

private:
  World& w_;
  long seen_;
};

/// A WaitGroup slot owned by a task's arguments: done() when the task's copy
/// goes — when its function returns, or with its frame if it never started.
class WgTicket {
public:
  WgTicket(World& w, std::shared_ptr<skein::WaitGroup> g) noexcept : w_(&w), g_(std::move(g)) {}
  WgTicket(WgTicket&& o) noexcept : w_(o.w_), g_(std::move(o.g_)) {}
  WgTicket& operator=(WgTicket&&) = delete;
  ~WgTicket() {
    if (!g_) return;
    try {
      g_->done();
    } catch (const std::exception& e) {
      w_->fail(std::string("WaitGroup::done threw: ") + e.what());
    }
  }

private:
  World* w_;
  std::shared_ptr<skein::WaitGroup> g_;
};

/// Closes an episode's queue however its owner leaves, so that its consumers end.
/// If the owner leaves early (cancelled), the queue is kept for the final drain.
struct CloseOnExit {
  World& w;
  std::shared_ptr<ItemQueue> q;
  bool drained = false;
  ~CloseOnExit() {
    q->close();
    if (!drained) w.keep(q);
  }
};

// --- blocking operations (pool tasks and plain threads) --------------------------------
// Each returns false when the job should end (its queue was closed); a
// Cancelled propagates (the job's context was cancelled or timed out).

bool put_one(World& w, ItemQueue& q, Rng& r) {
  auto item = w.new_item();
  if (!item) return true;  // id budget spent: produce nothing more
  const std::uint32_t id = item->id;
  static constexpr const char* kForms[] = {"put(T&&)", "put(const T&)", "try_put", "put_for"};
  const auto form = r.below(4);
  bool ok = false;
  try {
    switch (form) {
      case 0:
        q.put(std::move(*item));
        ok = true;
        break;
      case 1:
        q.put(std::as_const(*item));
        ok = true;
        break;
      case 2: ok = q.try_put(std::move(*item)); break;
      default: ok = q.put_for(std::move(*item), r.timeout(0, 2000)); break;
    }
  } catch (const skein::Cancelled&) {
    w.put_result(id, false);
    w.check_untouched(*item, id, kForms[form]);
    bump(w.op(kPut).cancelled);
    throw;
  } catch (const skein::Closed&) {
    w.put_result(id, false);
    w.check_untouched(*item, id, kForms[form]);
    bump(w.op(kPut).closed);
    return false;
  }
  w.put_result(id, ok);
  if (ok) {
    bump(w.op(kPut).ok);
  } else {
    w.check_untouched(*item, id, kForms[form]);
    bump(w.op(kPut).timeout);
  }
  return true;
}

bool get_one(World& w, ItemQueue& q, Rng& r) {
  std::optional<Item> v;
  const auto form = r.below(4);
  try {
    switch (form) {
      case 0: v = q.get(); break;
      case 1: v = q.try_get(); break;
      case 2: v = q.get_for(r.timeout(0, 2000)); break;
      default: {  // a small batch
        for (int i = 0, n = 1 + static_cast<int>(r.below(4)); i < n; ++i) {
          auto x = q.get_for(r.micros(0, 300));
          if (!x) break;
          w.got(*x);
          bump(w.op(kGet).ok);
        }
        return !q.closed();
      }
    }
  } catch (const skein::Cancelled&) {
    bump(w.op(kGet).cancelled);
    throw;
  }
  if (v) {
    w.got(*v);
    bump(w.op(kGet).ok);
    return true;
  }
  if (form == 0) {  // a blocking get returns empty only once the queue is closed and drained
    if (!q.closed()) w.fail("Queue::get returned empty on an open queue");
    bump(w.op(kGet).closed);
    return false;
  }
  bump(w.op(kGet).timeout);
  return !q.closed();
}

void sem_one(World& w, Rng& r) {
  bool got = false;
  try {
    switch (r.below(3)) {
      case 0:
        w.sem.acquire();
        got = true;
        break;
      case 1: got = w.sem.try_acquire(); break;
      default: got = w.sem.try_acquire_for(r.timeout(0, 1500)); break;
    }
  } catch (const skein::Cancelled&) {
    bump(w.op(kSem).cancelled);
    throw;
  }
  if (!got) return bump(w.op(kSem).timeout);
  SemHold hold(w);
  bump(w.op(kSem).ok);
  if (r.chance(40)) skein::sleep_for(r.micros(0, 400));  // a Cancelled here releases the permit
}

void mutex_one(World& w, Rng& r) {
  bool got = false;
  try {
    switch (r.below(4)) {
      case 0:
        w.mu.lock();
        got = true;
        break;
      case 1: got = w.mu.try_lock(); break;
      case 2: got = w.mu.try_lock_for(r.timeout(0, 1500)); break;
      default: {
        std::lock_guard g(w.mu);
        MuHold h(w);
        return;
      }
    }
  } catch (const skein::Cancelled&) {
    bump(w.op(kMutex).cancelled);
    throw;
  }
  if (!got) return bump(w.op(kMutex).timeout);
  std::unique_lock g(w.mu, std::adopt_lock);
  MuHold h(w);
  if (r.chance(25)) skein::sleep_for(r.micros(0, 300));  // held across a cancellable wait
}

void rw_one(World& w, Rng& r) {
  const bool write = r.chance(40);
  const Op kind = write ? kWrite : kRead;
  bool got = false;
  try {
    switch (r.below(4)) {
      case 0:
        write ? w.rw.lock() : w.rw.lock_shared();
        got = true;
        break;
      case 1: got = write ? w.rw.try_lock() : w.rw.try_lock_shared(); break;
      case 2: got = write ? w.rw.try_lock_for(r.timeout(0, 1500)) : w.rw.try_lock_shared_for(r.timeout(0, 1500)); break;
      default:
        if (write) {
          std::unique_lock g(w.rw);
          WriteHold h(w);
        } else {
          std::shared_lock g(w.rw);
          ReadHold h(w);
        }
        return;
    }
  } catch (const skein::Cancelled&) {
    bump(w.op(kind).cancelled);
    throw;
  }
  if (!got) return bump(w.op(kind).timeout);
  if (write) {
    std::unique_lock g(w.rw, std::adopt_lock);
    WriteHold h(w);
    if (r.chance(20)) skein::sleep_for(r.micros(0, 300));
  } else {
    std::shared_lock g(w.rw, std::adopt_lock);
    ReadHold h(w);
    if (r.chance(20)) skein::sleep_for(r.micros(0, 300));
  }
}

void shared_one(World& w, Rng& r) {
  const long d = 1 + r.below(9);
  // Now and then the value is held across a (cancellable) sleep, so that
  // others queue for it; the sleep comes first: a Cancelled changes nothing.
  const us hold = r.chance(20) ? r.micros(0, 300) : us(0);
  try {
    if (r.chance(70)) {
      w.shared.update([d, hold](World::Totals& t) {
        if (hold.count()) skein::sleep_for(hold);
        ++t.n;
        t.sum += d;
      });
    } else {
      auto g = w.shared.lock();
      if (hold.count()) skein::sleep_for(hold);
      ++g->n;
      g->sum += d;
    }
  } catch (const skein::Cancelled&) {
    bump(w.op(kShared).cancelled);
    throw;
  }
  bump(w.op(kShared).ok);
  bump(w.shared_sum, d);
}

void atomic_one(World& w, Rng& r) {
  const long d = 1 + r.below(100);
  if (r.chance(70)) {
    const auto before_at_least = w.atom.get();
    if (w.atom.add(d) < before_at_least + d) w.fail("Atomic::add returned less than the value before plus delta");
  } else {
    auto cur = w.atom.get();
    while (!w.atom.cas(cur, cur + d)) cur = w.atom.get();
  }
  bump(w.atom_sum, d);
  bump(w.op(kAtomic).ok);
}

void pool_wait_one(World& w) {
  try {
    w.gpool.wait();
    bump(w.op(kPoolWait).ok);
  } catch (const PoolBoom&) {
    bump(w.boom_rethrown);
    bump(w.op(kPoolWait).ok);
  } catch (const skein::Cancelled&) {
    bump(w.op(kPoolWait).cancelled);
    throw;
  }
}

/// A burst of submissions: the Pool's queue fills up and submitters block.
void submit_one(World& w, Rng& r) {
  for (int i = 0, n = 1 + static_cast<int>(r.below(6)); i < n; ++i) {
    const auto id = w.new_pool_item();
    if (!id) return;
    try {
      w.gpool.submit(*id);
    } catch (...) {  // Cancelled; the item was not queued
      w.submit_result(*id, false);
      bump(w.op(kSubmit).cancelled);
      throw;
    }
    w.submit_result(*id, true);
    bump(w.pool_submitted);
    bump(w.op(kSubmit).ok);
  }
  if (r.chance(3)) pool_wait_one(w);
}

void sleep_one(World& w, Rng& r) {
  try {
    if (r.chance(50))
      skein::sleep_for(r.micros(0, 800));
    else
      skein::sleep_until(Clock::now() + r.micros(0, 800));
  } catch (const skein::Cancelled&) {
    bump(w.op(kSleep).cancelled);
    throw;
  }
  bump(w.op(kSleep).ok);
}

Promise<void> loop_coro(World* w, std::uint64_t seed);

/// post (counted, or failing on purpose), a notifier trigger, work(), a loop coroutine.
void loop_one(World& w, Rng& r) {
  switch (r.below(6)) {
    case 0:
    case 1:
      w.loop.post([pw = &w] { ++pw->loop_counter; });
      bump(w.loop_posted);
      bump(w.op(kPost).ok);
      break;
    case 2:
      w.loop.post([pw = &w] {
        bump(pw->loop_thrown);
        throw LoopBoom();
      });
      bump(w.op(kPost).ok);
      break;
    case 3:
      w.notifier->trigger();
      bump(w.triggers);
      break;
    case 4: {
      const int x = static_cast<int>(r.below(1000));
      try {
        const int y = skein::work(
                          w.loop, [](int a) { return a * 2; }, x)
                          .get();
        if (y != 2 * x) w.fail("work() gave a wrong value");
        bump(w.op(kLoopTask).ok);
      } catch (const skein::Cancelled&) {
        bump(w.op(kLoopTask).cancelled);
        throw;
      }
      break;
    }
    default: {
      auto p = w.loop.spawn(loop_coro, &w, r.next());
      bump(w.loop_spawned);
      w.keep_loop_task(p);
      try {
        p.get();
        bump(w.op(kLoopTask).ok);
      } catch (const skein::Cancelled&) {
        bump(w.op(kLoopTask).cancelled);  // our wait was cancelled: the coroutine goes on, on the loop
        throw;
      }
      break;
    }
  }
}

/// Waits for a sub-task. Its own cancellation is expected; ours ends the job.
void await_sub(World& w, const Promise<void>& p) {
  try {
    p.get();
    bump(w.op(kAwait).ok);
  } catch (const skein::Cancelled&) {
    bump(w.op(kAwait).cancelled);
    if (skein::this_task::cancelled()) throw;
  } catch (const std::exception& e) {
    w.fail(std::string("a sub-task failed: ") + e.what());
  }
}

/// A context for a group of sub-tasks: a child of the current task's context
/// (or of the root, on a plain thread), perhaps with a short deadline, or now
/// and then an independent root with a deadline.
skein::Context sub_context(World& w, Rng& r) {
  const auto cur = skein::Context::current();
  const skein::Context& base = cur ? *cur : w.root;
  switch (r.below(5)) {
    case 0:
    case 1: return base.child();
    case 2:
    case 3: return base.child_with_timeout(r.timeout(100, 6000));
    default: return skein::Context::with_timeout(r.micros(100, 6000));  // a root: it must end
  }
}

/// Cancels `c` now and then, after a random moment: waits are mid-flight.
void maybe_cancel(World& w, Rng& r, const skein::Context& c) {
  if (!r.chance(35)) return;
  skein::sleep_for(r.micros(0, 1500));
  c.cancel();
  bump(w.ctx_cancels);
}

void blocking_job(World* w, std::uint64_t seed, int depth);
Promise<void> coro_job(World* w, std::uint64_t seed, int depth);

/// Sub-jobs in a fresh sub-context, cancelled or timing out at random.
void nested_one(World& w, Rng& r, int depth) {
  bump(w.nested);
  skein::Context c = sub_context(w, r);
  std::vector<Promise<void>> subs;
  for (int i = 0, n = 1 + static_cast<int>(r.below(3)); i < n; ++i) {
    if (r.chance(50))
      subs.push_back(c.run(w.jobs_pool, blocking_job, &w, r.next(), depth + 1));
    else
      subs.push_back(c.run(w.jobs_pool, coro_job, &w, r.next(), depth + 1));
  }
  maybe_cancel(w, r, c);
  for (auto& p : subs) await_sub(w, p);
  if (r.chance(30)) {
    try {
      const bool idle = r.chance(50) ? (c.wait(), true) : c.wait_for(r.timeout(0, 2000));
      bump(idle ? w.op(kCtxWait).ok : w.op(kCtxWait).timeout);
    } catch (const skein::Cancelled&) {
      bump(w.op(kCtxWait).cancelled);
      throw;
    }
  }
}

/// A small cancellable step for sub-tasks: a sleep, a permit, the mutex or an add.
void small_step(World& w, Rng& r) {
  switch (r.below(4)) {
    case 0: sleep_one(w, r); break;
    case 1: sem_one(w, r); break;
    case 2: mutex_one(w, r); break;
    default: atomic_one(w, r); break;
  }
}

void group_child(World* w, std::uint64_t seed, WgTicket) {
  Rng r(seed);
  for (int i = 0, n = 1 + static_cast<int>(r.below(2)); i < n; ++i) small_step(*w, r);
}

/// Fan-out: add(k), k children that each hold a ticket, then wait in some form.
void group_one(World& w, Rng& r) {
  bump(w.groups_made);
  auto g = std::make_shared<skein::WaitGroup>();
  w.keep(g);
  const int k = 1 + static_cast<int>(r.below(4));
  g->add(k);
  const auto cur = skein::Context::current();
  for (int i = 0; i < k; ++i) {
    // Children belong to the current task's context (or to the root, on a plain thread).
    if (cur)
      skein::spawn(w.jobs_pool, group_child, &w, r.next(), WgTicket(w, g));
    else
      w.root.spawn(group_child, &w, r.next(), WgTicket(w, g));
  }
  try {
    if (r.chance(50)) {
      g->wait();
      bump(w.op(kWgWait).ok);
    } else {
      bump(g->wait_for(r.timeout(0, 1500)) ? w.op(kWgWait).ok : w.op(kWgWait).timeout);
    }
  } catch (const skein::Cancelled&) {
    bump(w.op(kWgWait).cancelled);
    throw;
  }
}

int valued_child(World* w, std::uint64_t seed, int i) {
  Rng r(seed);
  small_step(*w, r);
  return i * 7;
}

/// when_all, when_any, sequence, run_with_timeout.
void combine_one(World& w, Rng& r) {
  auto& o = w.op(kCombine);
  try {
    switch (r.below(4)) {
      case 0: {
        std::vector<Promise<int>> ps;
        const int n = 1 + static_cast<int>(r.below(3));
        for (int i = 0; i < n; ++i) ps.push_back(skein::run(w.jobs_pool, valued_child, &w, r.next(), i));
        const auto all = skein::when_all(std::move(ps)).get();
        for (int i = 0; i < n; ++i)
          if (all.at(static_cast<std::size_t>(i)) != i * 7) w.fail("when_all: a value out of place");
        break;
      }
      case 1: {
        std::vector<Promise<int>> ps;
        for (int i = 0, n = 1 + static_cast<int>(r.below(3)); i < n; ++i)
          ps.push_back(skein::run(w.jobs_pool, valued_child, &w, r.next(), i));
        const auto [idx, v] = skein::when_any(std::move(ps)).get();
        if (v != static_cast<int>(idx) * 7) w.fail("when_any: the value does not match its index");
        break;
      }
      case 2: {
        auto order = std::make_shared<std::vector<int>>();  // steps run one after another: no lock
        auto step = [order](int i, us d) {
          return [order, i, d] {
            skein::sleep_for(d);
            order->push_back(i);
          };
        };
        auto p = skein::sequence(step(1, r.micros(0, 200)), step(2, r.micros(0, 200)), step(3, r.micros(0, 200)));
        try {
          p.get();
        } catch (const skein::Cancelled&) {
          if (p.ready()) {  // the sequence itself was cancelled: what ran is a prefix
            for (std::size_t i = 0; i < order->size(); ++i)
              if ((*order)[i] != static_cast<int>(i) + 1) w.fail("sequence: steps out of order");
          }
          throw;
        }
        if (*order != std::vector<int>{1, 2, 3}) w.fail("sequence: steps missing or out of order");
        break;
      }
      default: {
        const auto limit = r.micros(0, 3000);
        const auto nap = r.micros(0, 3000);
        try {
          const int v = skein::run_with_timeout(limit, [nap] {
            skein::sleep_for(nap);
            return 42;
          });
          if (v != 42) w.fail("run_with_timeout: wrong value");
        } catch (const skein::Cancelled& e) {
          if (std::string(e.what()).rfind("deadline exceeded: run_with_timeout(", 0) == 0) {
            bump(o.timeout);
            return;
          }
          throw;
        }
        break;
      }
    }
  } catch (const skein::Cancelled&) {
    bump(o.cancelled);
    throw;
  }
  bump(o.ok);
}

void orphan_task(World* w) {
  bump(w->orphans_thrown);
  throw OrphanBoom();
}

/// An error nobody will observe: a spawned task, or a promise dropped unread.
void orphan_one(World& w, Rng& r) {
  if (r.chance(50)) {
    skein::spawn(w.jobs_pool, orphan_task, &w);
  } else {
    auto p = skein::run(w.jobs_pool, orphan_task, &w);
    if (r.chance(50)) (void)p.wait_for(r.micros(0, 300));  // wait_for does not observe the error
  }
}

// Episode queues: producers and consumers in a sub-context, the owner closes the queue.

void ep_producer(World* w, std::shared_ptr<ItemQueue> q, std::uint64_t seed) {
  Rng r(seed);
  for (int i = 0, n = 1 + static_cast<int>(r.below(20)); i < n; ++i)
    if (!put_one(*w, *q, r)) return;
}

void ep_consumer(World* w, std::shared_ptr<ItemQueue> q, std::uint64_t seed) {
  Rng r(seed);
  if (r.chance(30)) {
    try {
      for (auto& v : *q) {  // until closed and drained
        w->got(v);
        bump(w->op(kGet).ok);
      }
    } catch (const skein::Cancelled&) {
      bump(w->op(kGet).cancelled);
      throw;
    }
    return;
  }
  while (get_one(*w, *q, r)) {
  }
}

Promise<void> ep_producer_coro(World* w, std::shared_ptr<ItemQueue> q, std::uint64_t seed);
Promise<void> ep_consumer_coro(World* w, std::shared_ptr<ItemQueue> q, std::uint64_t seed);

void queue_episode(World& w, Rng& r) {
  bump(w.episodes);
  auto q = std::make_shared<ItemQueue>(r.below(4));  // 0: unbounded
  CloseOnExit closer{w, q};
  skein::Context c = sub_context(w, r);
  std::vector<Promise<void>> producers, consumers;
  for (int i = 0, n = 1 + static_cast<int>(r.below(3)); i < n; ++i) {
    if (r.chance(50))
      producers.push_back(c.run(w.jobs_pool, ep_producer, &w, q, r.next()));
    else
      producers.push_back(c.run(w.jobs_pool, ep_producer_coro, &w, q, r.next()));
  }
  for (int i = 0, n = 1 + static_cast<int>(r.below(3)); i < n; ++i) {
    if (r.chance(50))
      consumers.push_back(c.run(w.jobs_pool, ep_consumer, &w, q, r.next()));
    else
      consumers.push_back(c.run(w.jobs_pool, ep_consumer_coro, &w, q, r.next()));
  }
  maybe_cancel(w, r, c);
  for (auto& p : producers) await_sub(w, p);
  q->close();
  for (auto& p : consumers) await_sub(w, p);
  // Every producer and consumer has finished: what nobody took is drained now.
  while (auto v = q->try_get()) w.got(*v, true);
  closer.drained = true;
}

// Episode pools: a Pool whose workers belong to a cancellable sub-context.

void ep_worker(World* w, int v) {
  w->entered(v);
  if (v % 11 == 0) {
    bump(w->ep_thrown);
    bump(w->boom_thrown);
    throw PoolBoom();
  }
  if (v % 3 == 0) {
    try {
      skein::sleep_for(us(v % 200));  // the workers' context may be cancelled meanwhile
    } catch (const skein::Cancelled&) {
      bump(w->ep_item_cancelled);  // the Pool keeps the error; wait()/close() rethrows it
      throw;
    }
  }
  bump(w->ep_processed);
}

Promise<void> ep_worker_coro(World* w, int v);

/// Accounts what a wait()/close() of an episode pool threw.
void ep_outcome(World& w, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const PoolBoom&) {
    bump(w.boom_rethrown);
  } catch (const skein::Cancelled& c) {
    if (long n = pool_dropped(c.what()); n >= 0) bump(w.ep_dropped_reported, n);
    if (std::string(c.what()) == "task cancelled before it started") bump(w.ep_never_started);
  } catch (const std::exception& x) {
    w.fail(std::string("a Pool's wait()/close() threw an unexpected error: ") + x.what());
  }
}

void ep_submitter(World* w, std::shared_ptr<skein::Pool<int>> pool, std::shared_ptr<World::PoolEpisode> ep,
                  std::uint64_t seed) {
  Rng r(seed);
  for (int i = 0, n = static_cast<int>(r.below(10)); i < n; ++i) {
    const auto id = w->new_pool_item();
    if (!id) return;
    ep->add(*id);  // before the submit: the owner may close the Pool the moment it returns
    try {
      pool->submit(*id);
    } catch (const skein::Closed&) {
      w->submit_result(*id, false);
      return;
    } catch (...) {  // Cancelled: not queued
      w->submit_result(*id, false);
      throw;
    }
    w->submit_result(*id, true);
    bump(w->ep_submitted);
  }
}

Promise<void> ep_submitter_coro(World* w, std::shared_ptr<skein::Pool<int>> pool,
                                std::shared_ptr<World::PoolEpisode> ep, std::uint64_t seed);

/// Runs in the episode's context: builds the Pool (its workers join the
/// context), submits from here and from sub-tasks, and closes it.
void pool_episode_body(World* w, std::uint64_t seed) {
  Rng r(seed);
  bump(w->ep_pools);
  auto ep = std::make_shared<World::PoolEpisode>();
  const std::size_t workers = 1 + r.below(3), depth = r.below(4);
  std::shared_ptr<skein::Pool<int>> pool;
  if (r.chance(50))
    pool = std::make_shared<skein::Pool<int>>([w](int v) { ep_worker(w, v); }, workers, depth);
  else
    pool = std::make_shared<skein::Pool<int>>([w](int v) { return ep_worker_coro(w, v); }, workers, depth);
  std::vector<Promise<void>> subs;
  for (int i = 0, n = static_cast<int>(r.below(3)); i < n; ++i) {
    if (r.chance(50))
      subs.push_back(skein::run(w->jobs_pool, ep_submitter, w, pool, ep, r.next()));
    else
      subs.push_back(skein::run(w->jobs_pool, ep_submitter_coro, w, pool, ep, r.next()));
  }
  std::exception_ptr mine;
  try {
    ep_submitter(w, pool, ep, r.next());
    for (auto& p : subs) await_sub(*w, p);
    if (r.chance(50)) {
      try {
        pool->wait();
        bump(w->op(kPoolWait).ok);
      } catch (const skein::Cancelled& c) {
        if (pool_dropped(c.what()) < 0 && skein::this_task::cancelled()) {
          bump(w->op(kPoolWait).cancelled);  // our own wait was cancelled: nothing was taken
        } else {
          ep_outcome(*w, std::current_exception());
        }
      } catch (...) {
        ep_outcome(*w, std::current_exception());
      }
    }
  } catch (const skein::Cancelled&) {
    mine = std::current_exception();  // close() all the same: it ignores our cancellation
  }
  try {
    pool->close();
  } catch (...) {
    ep_outcome(*w, std::current_exception());
  }
  // Items can have been dropped only if the workers' context was cancelled
  // before close() returned (it waits for the workers).
  if (skein::this_task::cancelled()) {
    bump(w->ep_cancelled);
    std::lock_guard lk(ep->mu);
    for (int id : ep->ids) w->may_drop(id);
  }
  if (mine) {
    w->keep(std::move(pool));  // a submitter may still be in submit(): pending() is checked at the end
    std::rethrow_exception(mine);
  }
  w->check_pending(*pool);  // every submitter has finished
}

void pool_episode(World& w, Rng& r) {
  skein::Context c = sub_context(w, r);
  auto p = c.run(w.jobs_pool, pool_episode_body, &w, r.next());
  maybe_cancel(w, r, c);
  await_sub(w, p);
}

/// One random blocking operation. False: the job should end (a queue closed).
bool blocking_op(World& w, Rng& r, int depth) {
  static constexpr int kWeights[] = {
      14,  // 0 put on qb/qu
      14,  // 1 get from qb/qu
      8,   // 2 semaphore
      8,   // 3 mutex
      8,   // 4 rwlock
      5,   // 5 shared
      4,   // 6 atomic
      6,   // 7 pool submit
      5,   // 8 event loop
      4,   // 9 sleep
      4,   // 10 wait group fan-out
      3,   // 11 nested contexts
      4,   // 12 when_all/when_any/sequence/run_with_timeout
      1,   // 13 orphaned error
      2,   // 14 queue episode
      2,   // 15 pool episode
  };
  const bool deep = depth >= 2;
  switch (r.weighted(kWeights)) {
    case 0: return put_one(w, r.chance(50) ? w.qb : w.qu, r);
    case 1: return get_one(w, r.chance(50) ? w.qb : w.qu, r);
    case 2: sem_one(w, r); break;
    case 3: mutex_one(w, r); break;
    case 4: rw_one(w, r); break;
    case 5: shared_one(w, r); break;
    case 6: atomic_one(w, r); break;
    case 7: submit_one(w, r); break;
    case 8: loop_one(w, r); break;
    case 9: sleep_one(w, r); break;
    case 10: group_one(w, r); break;
    case 11:
      if (!deep) nested_one(w, r, depth);
      break;
    case 12: combine_one(w, r); break;
    case 13: orphan_one(w, r); break;
    case 14:
      if (!deep) queue_episode(w, r);
      break;
    default:
      if (!deep) pool_episode(w, r);
      break;
  }
  return true;
}

void blocking_job(World* w, std::uint64_t seed, int depth) {
  Rng r(seed);
  for (int i = 0, n = 1 + static_cast<int>(r.below(12)); i < n && !w->time_up(); ++i)
    if (!blocking_op(*w, r, depth)) return;
}

// --- coroutine operations ------------------------------------------------------------------
// The result of `co_await f()` is bound to a variable before it is tested:
// g++ 12 miscompiles a co_await of a prvalue Promise inside an if/while
// condition (the awaiting coroutine's promise is corrupted; clang is fine).

/// co_await q.async_put(item). False: the queue is closed.
Promise<bool> async_put_one(World* w, std::shared_ptr<ItemQueue> q) {
  CoroLive live(w);
  auto item = w->new_item();
  if (!item) co_return true;
  const std::uint32_t id = item->id;
  try {
    co_await q->async_put(std::move(*item));
  } catch (const skein::Cancelled&) {
    w->put_result(id, false);
    bump(w->op(kPut).cancelled);
    throw;
  } catch (const skein::Closed&) {
    w->put_result(id, false);
    bump(w->op(kPut).closed);
    co_return false;
  }
  w->put_result(id, true);
  bump(w->op(kPut).ok);
  co_return true;
}

/// co_await q.async_get(). False: the queue is closed and drained.
Promise<bool> async_get_one(World* w, std::shared_ptr<ItemQueue> q) {
  CoroLive live(w);
  std::optional<Item> v;
  try {
    v = co_await q->async_get();
  } catch (const skein::Cancelled&) {
    bump(w->op(kGet).cancelled);
    throw;
  }
  if (!v) {
    if (!q->closed()) w->fail("Queue::async_get returned empty on an open queue");
    bump(w->op(kGet).closed);
    co_return false;
  }
  w->got(*v);
  bump(w->op(kGet).ok);
  co_return true;
}

Promise<void> ep_producer_coro(World* w, std::shared_ptr<ItemQueue> q, std::uint64_t seed) {
  CoroLive live(w);
  Rng r(seed);
  for (int i = 0, n = 1 + static_cast<int>(r.below(20)); i < n; ++i) {
    const bool open = co_await async_put_one(w, q);
    if (!open) co_return;
  }
}

Promise<void> ep_consumer_coro(World* w, std::shared_ptr<ItemQueue> q, std::uint64_t) {
  CoroLive live(w);
  for (;;) {
    const bool open = co_await async_get_one(w, q);
    if (!open) co_return;
  }
}

Promise<void> ep_worker_coro(World* w, int v) {
  CoroLive live(w);
  w->entered(v);
  if (v % 11 == 0) {
    bump(w->ep_thrown);
    bump(w->boom_thrown);
    throw PoolBoom();
  }
  try {
    co_await skein::async_sleep(us(v % 300));
  } catch (const skein::Cancelled&) {
    bump(w->ep_item_cancelled);  // the worker keeps the error; wait()/close() rethrows it
    throw;
  }
  bump(w->ep_processed);
}

Promise<void> ep_submitter_coro(World* w, std::shared_ptr<skein::Pool<int>> pool,
                                std::shared_ptr<World::PoolEpisode> ep, std::uint64_t seed) {
  CoroLive live(w);
  Rng r(seed);
  for (int i = 0, n = static_cast<int>(r.below(10)); i < n; ++i) {
    const auto id = w->new_pool_item();
    if (!id) co_return;
    ep->add(*id);
    try {
      co_await pool->async_submit(*id);
    } catch (const skein::Closed&) {
      w->submit_result(*id, false);
      co_return;
    } catch (...) {  // Cancelled: not queued
      w->submit_result(*id, false);
      throw;
    }
    w->submit_result(*id, true);
    bump(w->ep_submitted);
  }
}

/// A coroutine on the loop's thread: it must resume there after every co_await.
Promise<void> loop_coro(World* w, std::uint64_t seed) {
  CoroLive live(w);
  Rng r(seed);
  auto on_loop = [w](const char* after) {
    if (!w->loop.on_loop()) w->fail(std::string("a loop coroutine resumed off the loop after ") + after);
  };
  on_loop("start");
  switch (r.below(5)) {
    case 0:
      co_await skein::async_sleep(r.micros(0, 500));
      on_loop("async_sleep");
      break;
    case 1: {
      const int v = co_await skein::work(
          w->loop, [](int x) { return x + 1; }, 41);
      on_loop("work()");
      if (v != 42) w->fail("work() on the loop gave a wrong value");
      break;
    }
    case 2: {
      auto g = co_await w->mu.async_lock();
      on_loop("Mutex::async_lock");
      MuHold h(*w);
      break;
    }
    case 3: {
      co_await w->sem.async_acquire();
      on_loop("Semaphore::async_acquire");
      SemHold h(*w);
      bump(w->op(kSem).ok);
      break;
    }
    default: {
      if (r.chance(50)) {
        (void)co_await async_put_one(w, w->unbounded());
        on_loop("Queue::async_put");
      } else if (auto v = w->qb.try_get()) {  // never a blocking get on the loop
        w->got(*v);
        bump(w->op(kGet).ok);
      }
      break;
    }
  }
  ++w->loop_coros_done;  // the loop's thread only
}

/// One random coroutine operation. False: the job should end.
Promise<bool> coro_op(World* w, std::uint64_t seed, int depth) {
  CoroLive live(w);
  Rng r(seed);
  static constexpr int kWeights[] = {
      14,  // 0 async_put
      14,  // 1 async_get
      7,   // 2 async_acquire
      7,   // 3 async_lock
      7,   // 4 async rwlock
      4,   // 5 async_sleep / async_sleep_until
      4,   // 6 async_submit
      4,   // 7 wait group fan-out, async_wait
      4,   // 8 a loop coroutine / work() awaited
      3,   // 9 a hop onto the loop and back
      4,   // 10 sub-jobs awaited, when_all/when_any awaited
      6,   // 11 try forms
      12,  // 12 a blocking operation (a pool task may block)
  };
  switch (r.weighted(kWeights)) {
    case 0: {
      const bool open = co_await async_put_one(w, r.chance(50) ? w->bounded() : w->unbounded());
      co_return open;
    }
    case 1: {
      const bool open = co_await async_get_one(w, r.chance(50) ? w->bounded() : w->unbounded());
      co_return open;
    }
    case 2: {
      try {
        co_await w->sem.async_acquire();
      } catch (const skein::Cancelled&) {
        bump(w->op(kSem).cancelled);
        throw;
      }
      SemHold h(*w);
      bump(w->op(kSem).ok);
      if (r.chance(40)) co_await skein::async_sleep(r.micros(0, 400));  // a Cancelled here releases the permit
      break;
    }
    case 3: {
      std::unique_lock<skein::Mutex> g;
      try {
        g = co_await w->mu.async_lock();
      } catch (const skein::Cancelled&) {
        bump(w->op(kMutex).cancelled);
        throw;
      }
      MuHold h(*w);
      if (r.chance(25)) co_await skein::async_sleep(r.micros(0, 300));
      break;
    }
    case 4: {
      const bool write = r.chance(40);
      try {
        if (write) {
          auto g = co_await w->rw.async_lock();
          WriteHold h(*w);
          if (r.chance(20)) co_await skein::async_sleep(r.micros(0, 300));
        } else {
          auto g = co_await w->rw.async_lock_shared();
          ReadHold h(*w);
          if (r.chance(20)) co_await skein::async_sleep(r.micros(0, 300));
        }
      } catch (const skein::Cancelled&) {
        bump(w->op(write ? kWrite : kRead).cancelled);
        throw;
      }
      break;
    }
    case 5: {
      try {
        if (r.chance(50))
          co_await skein::async_sleep(r.micros(0, 800));
        else
          co_await skein::async_sleep_until(skein::detail::deadline_after(r.micros(0, 800)));
      } catch (const skein::Cancelled&) {
        bump(w->op(kSleep).cancelled);
        throw;
      }
      bump(w->op(kSleep).ok);
      break;
    }
    case 6: {
      const auto id = w->new_pool_item();
      if (!id) break;
      try {
        co_await w->gpool.async_submit(*id);
      } catch (...) {  // Cancelled; the item was not queued
        w->submit_result(*id, false);
        bump(w->op(kSubmit).cancelled);
        throw;
      }
      w->submit_result(*id, true);
      bump(w->pool_submitted);
      bump(w->op(kSubmit).ok);
      break;
    }
    case 7: {
      bump(w->groups_made);
      auto g = std::make_shared<skein::WaitGroup>();
      w->keep(g);
      const int k = 1 + static_cast<int>(r.below(4));
      g->add(k);
      for (int i = 0; i < k; ++i) skein::spawn(w->jobs_pool, group_child, w, r.next(), WgTicket(*w, g));
      try {
        co_await g->async_wait();
      } catch (const skein::Cancelled&) {
        bump(w->op(kWgWait).cancelled);
        throw;
      }
      bump(w->op(kWgWait).ok);
      break;
    }
    case 8: {
      try {
        if (r.chance(50)) {
          auto p = w->loop.spawn(loop_coro, w, r.next());
          bump(w->loop_spawned);
          w->keep_loop_task(p);
          co_await p;
        } else {
          const int x = static_cast<int>(r.below(1000));
          const int y = co_await skein::work(
              w->loop, [](int a) { return a * 2; }, x);
          if (y != 2 * x) w->fail("work() gave a wrong value");
        }
      } catch (const skein::Cancelled&) {
        bump(w->op(kLoopTask).cancelled);
        throw;
      }
      bump(w->op(kLoopTask).ok);
      break;
    }
    case 9: {
      co_await w->loop.schedule();
      if (!w->loop.on_loop()) w->fail("co_await loop.schedule() did not continue on the loop");
      co_await skein::async_sleep(r.micros(0, 200));  // on the loop; a Cancelled is thrown there
      if (!w->loop.on_loop()) w->fail("a coroutine moved onto the loop resumed elsewhere after async_sleep");
      co_await w->jobs_pool.schedule();
      if (w->loop.on_loop()) w->fail("co_await pool.schedule() stayed on the loop");
      break;
    }
    case 10: {
      if (depth >= 2) break;
      if (r.chance(50)) {
        bump(w->nested);
        skein::Context c = sub_context(*w, r);
        std::vector<Promise<void>> subs;
        subs.push_back(c.run(w->jobs_pool, blocking_job, w, r.next(), depth + 1));
        subs.push_back(c.run(w->jobs_pool, coro_job, w, r.next(), depth + 1));
        if (r.chance(35)) {
          co_await skein::async_sleep(r.micros(0, 1500));
          c.cancel();
          bump(w->ctx_cancels);
        }
        for (auto& x : subs) {
          try {
            co_await x;
            bump(w->op(kAwait).ok);
          } catch (const skein::Cancelled&) {
            bump(w->op(kAwait).cancelled);
            if (skein::this_task::cancelled()) throw;
          }
        }
      } else {
        std::vector<Promise<int>> ps;
        const int n = 1 + static_cast<int>(r.below(3));
        for (int i = 0; i < n; ++i) ps.push_back(skein::run(w->jobs_pool, valued_child, w, r.next(), i));
        try {
          if (r.chance(50)) {
            const auto all = co_await skein::when_all(std::move(ps));
            for (int i = 0; i < n; ++i)
              if (all.at(static_cast<std::size_t>(i)) != i * 7) w->fail("when_all: a value out of place");
          } else {
            const auto [idx, v] = co_await skein::when_any(std::move(ps));
            if (v != static_cast<int>(idx) * 7) w->fail("when_any: the value does not match its index");
          }
        } catch (const skein::Cancelled&) {
          bump(w->op(kCombine).cancelled);
          throw;
        }
        bump(w->op(kCombine).ok);
      }
      break;
    }
    case 11: {
      switch (r.below(4)) {
        case 0: {
          auto item = w->new_item();
          if (!item) break;
          const auto id = item->id;
          bool ok = false;
          try {
            ok = w->qb.try_put(std::move(*item));
          } catch (const skein::Closed&) {
            w->put_result(id, false);
            w->check_untouched(*item, id, "try_put");
            bump(w->op(kPut).closed);
            co_return false;
          }
          w->put_result(id, ok);
          if (!ok) w->check_untouched(*item, id, "try_put");
          bump(ok ? w->op(kPut).ok : w->op(kPut).timeout);
          break;
        }
        case 1:
          if (auto v = w->qb.try_get()) {
            w->got(*v);
            bump(w->op(kGet).ok);
          } else {
            bump(w->op(kGet).timeout);
          }
          break;
        case 2:
          if (w->sem.try_acquire()) {
            SemHold h(*w);
            bump(w->op(kSem).ok);
          } else {
            bump(w->op(kSem).timeout);
          }
          break;
        default:
          if (w->mu.try_lock()) {
            std::unique_lock g(w->mu, std::adopt_lock);
            MuHold h(*w);
          } else {
            bump(w->op(kMutex).timeout);
          }
          break;
      }
      break;
    }
    default: co_return blocking_op(*w, r, depth);
  }
  co_return true;
}

Promise<void> coro_job(World* w, std::uint64_t seed, int depth) {
  CoroLive live(w);
  Rng r(seed);
  for (int i = 0, n = 1 + static_cast<int>(r.below(12)); i < n && !w->time_up(); ++i) {
    const bool go_on = co_await coro_op(w, r.next(), depth);
    if (!go_on) co_return;
  }
}

// --- plain threads ---------------------------------------------------------------------------

void thread_loop(World* w, std::uint64_t seed) {
  Rng r(seed);
  while (!w->time_up()) {
    try {
      (void)blocking_op(*w, r, 0);
    } catch (const std::exception& e) {
      w->fail(std::string("a plain thread (no task, no context) got an error: ") + e.what());
    }
  }
}

// --- the driver ---------------------------------------------------------------------------------

struct Flight {
  Promise<void> p;
  skein::Context ctx;
  const char* kind;
  std::uint64_t seed;
};

void observe(World& w, Flight& f) {
  try {
    f.p.get();
    bump(w.jobs_ok);
  } catch (const skein::Cancelled&) {
    bump(f.ctx.timed_out() ? w.jobs_deadline : w.jobs_cancelled);
  } catch (const std::exception& e) {
    w.fail(std::string("a ") + f.kind + " job failed: " + e.what());
  }
}

[[noreturn]] void stuck(World& w, const std::string& what, const std::vector<Flight>& flights) {
  std::fprintf(stderr, "SOAK STUCK (SKEIN_SOAK_SEED=%" PRIu64 " replays its mix): %s\n", soak_seed(), what.c_str());
  for (const auto& f : flights)
    if (!f.p.ready()) std::fprintf(stderr, "  unfinished %s job, seed 0x%016" PRIx64 "\n", f.kind, f.seed);
  std::fprintf(stderr, "  goroutines()=%zu, root.tasks()=%zu, qb=%zu qu=%zu, sem=%td, mutex %s, wg-groups=%zu\n",
               skein::goroutines(), w.root.tasks(), w.qb.size(), w.qu.size(), w.sem.available(),
               w.mu.locked() ? "locked" : "free", w.groups.size());
  std::fflush(stderr);
  std::abort();
}

struct SoakCase {
  const char* name;
  std::uint64_t salt;
  int threads;           // plain threads next to the jobs
  std::size_t inflight;  // jobs running at once
};

void run_soak(const SoakCase& sc, skein::ThreadPool& jobs_pool) {
  const std::uint64_t seed = soak_seed() ^ sc.salt;
  const auto duration = soak_duration();
  const double secs = static_cast<double>(duration.count()) / 1000.0;
  const std::string name = sc.name;
  INFO("soak[" << name << "] SKEIN_SOAK_SEED=" << soak_seed() << " replays the mix");
  MESSAGE("soak[" << name << "]: SKEIN_SOAK_SEED=" << soak_seed() << ", " << secs << " s");
  std::cout << std::flush;  // the seed is out even if the watchdog aborts the run
  Watchdog wd(std::chrono::seconds(240) + std::chrono::duration_cast<std::chrono::seconds>(duration), "soak");

  const std::size_t id_capacity =
      std::clamp<std::size_t>(static_cast<std::size_t>(secs * 3e5), std::size_t{1} << 20, std::size_t{1} << 28);
  auto world = std::make_unique<World>(jobs_pool, id_capacity);
  World& w = *world;
  skein::set_unhandled_error_handler([&w](std::exception_ptr e) { w.on_unhandled(std::move(e)); });
  struct RestoreHandler {
    ~RestoreHandler() { skein::set_unhandled_error_handler(nullptr); }
  } restore_handler;

  // The loop's thread: alive until the keep-alive goes and nothing is left to do.
  w.notifier.emplace(w.loop.make_notifier([pw = &w] { ++pw->notifier_runs; }, skein::NotifierMode::repeating));
  std::optional<skein::EventLoop::KeepAlive> keep(w.loop.keep_alive());
  Event loop_done;
  std::thread loop_thread([&] {
    w.loop.run();
    loop_done.set();
  });

  Rng r(seed);
  std::vector<std::thread> threads;
  for (int i = 0; i < sc.threads; ++i) threads.emplace_back(thread_loop, &w, r.next());

  // Launch jobs until the time is up, cancelling contexts at random moments.
  const auto start = Clock::now();
  const auto end = start + duration;
  std::vector<skein::Context> branches;
  for (int i = 0; i < 4; ++i) branches.push_back(w.root.child());
  std::vector<std::pair<Clock::time_point, skein::Context>> cancel_at;
  std::vector<Flight> flights;
  auto reap = [&] {
    for (std::size_t i = 0; i < flights.size();) {
      if (flights[i].p.ready()) {
        observe(w, flights[i]);
        flights[i] = std::move(flights.back());
        flights.pop_back();
      } else {
        ++i;
      }
    }
  };
  while (Clock::now() < end) {
    reap();
    const auto now = Clock::now();
    for (std::size_t i = 0; i < cancel_at.size();) {
      if (cancel_at[i].first <= now) {
        cancel_at[i].second.cancel();
        bump(w.ctx_cancels);
        cancel_at[i] = std::move(cancel_at.back());
        cancel_at.pop_back();
      } else {
        ++i;
      }
    }
    if (r.chance(3)) {  // a whole branch goes, with every job in it
      auto& b = branches[r.below(static_cast<std::uint32_t>(branches.size()))];
      b.cancel();
      bump(w.ctx_cancels);
      b = r.chance(50) ? w.root.child() : w.root.child_with_timeout(r.micros(1000, 30000));
    }
    if (flights.size() >= sc.inflight) {
      (void)flights[r.below(static_cast<std::uint32_t>(flights.size()))].p.wait_for(us(200));
      continue;
    }
    skein::Context c = w.root;
    auto& branch = branches[r.below(static_cast<std::uint32_t>(branches.size()))];
    switch (r.below(10)) {
      case 0: break;  // the root: never cancelled
      case 1:
      case 2:
      case 3: c = branch; break;
      case 4:
      case 5: c = branch.child_with_timeout(r.micros(100, 20000)); break;
      case 6: c = w.root.child_with_timeout(r.micros(0, 3000)); break;
      default:
        c = branch.child();
        cancel_at.emplace_back(now + r.micros(0, 5000), c);
        break;
    }
    const std::uint64_t job_seed = r.next();
    bump(w.jobs);
    if (r.chance(50))
      flights.push_back({c.run(jobs_pool, blocking_job, &w, job_seed, 0), c, "blocking", job_seed});
    else
      flights.push_back({c.run(jobs_pool, coro_job, &w, job_seed, 0), c, "coroutine", job_seed});
    if (r.chance(10)) std::this_thread::sleep_for(r.micros(0, 300));
  }

  // Time is up: start nothing new, close the long-lived queues, and drain.
  w.stopping.store(true);
  const auto drain_start = Clock::now();
  w.qb.close();
  w.qu.close();
  for (auto& t : threads) t.join();
  for (auto& f : flights)
    if (!f.p.wait_for(120s)) stuck(w, "a job did not finish within 120 s of the end", flights);
  reap();
  if (!w.root.wait_for(120s)) stuck(w, "the root context still has tasks 120 s after the end", flights);
  // Jobs are done; stragglers (coroutines left by cancelled awaits, independent
  // roots, when_any losers, work()) end by themselves, and then the Pool closes.
  if (!eventually([&w] { return w.coros_live.load() == 0; }, 60000ms))
    stuck(w, "coroutines left running by cancelled awaits did not finish within 60 s of the end", flights);
  try {
    w.gpool.close();
  } catch (const PoolBoom&) {
    bump(w.boom_rethrown);
  } catch (const std::exception& e) {
    w.fail(std::string("Pool::close threw: ") + e.what());
  }
  // Quiet: no task and no coroutine of the workload, twice in a row (a task may start a coroutine and back).
  auto quiet = [&w] { return w.coros_live.load() == 0 && skein::goroutines() == 0 && w.coros_live.load() == 0; };
  auto settled = [&] {
    if (!eventually(quiet, 60000ms)) return false;
    std::this_thread::sleep_for(20ms);
    return quiet();
  };
  if (!settled() && !settled())
    stuck(w, "tasks or coroutines still running 120 s after the end (skein::goroutines() must reach 0)", flights);
  // What is still in a queue is accounted for now.
  auto drain = [&w](ItemQueue& q) {
    q.close();
    while (auto v = q.try_get()) w.got(*v, true);
  };
  drain(w.qb);
  drain(w.qu);
  {
    std::lock_guard lk(w.reg_mu);
    for (auto& q : w.episode_queues) drain(*q);
  }
  // The loop: everything posted before this barrier (and the notifier's runs) has run once it runs.
  Event barrier;
  w.loop.post([&barrier] { barrier.set(); });
  if (!barrier.wait_for(60000ms)) stuck(w, "the EventLoop did not run a post within 60 s", flights);
  w.notifier->close();
  keep.reset();
  if (!loop_done.wait_for(60000ms)) stuck(w, "EventLoop::run() did not return within 60 s of the end", flights);
  loop_thread.join();
  const double drain_secs = std::chrono::duration<double>(Clock::now() - drain_start).count();

  // --- exact totals -----------------------------------------------------------------------------
  std::size_t lost = 0, doubled = 0, ghost = 0, unsettled = 0;
  long put_ok = 0;
  const std::size_t n_ids = w.ids();
  for (std::size_t id = 0; id < n_ids; ++id) {
    const auto st = std::atomic_ref<std::uint8_t>(w.put_state[id]).load();
    const auto rc = std::atomic_ref<std::uint8_t>(w.recv[id]).load();
    if (st == 1) {
      ++put_ok;
      if (rc == 0) ++lost;
      if (rc > 1) ++doubled;
    } else if (st == 2) {
      if (rc != 0) ++ghost;
    } else {
      ++unsettled;
    }
  }

  // Pool items: a submitted item reaches a worker exactly once, unless its
  // Pool's workers were cancelled (then at most once); a failed submit's never.
  std::size_t pools_pending = 0;
  {
    std::lock_guard lk(w.reg_mu);
    for (auto& p : w.late_pools) pools_pending += p->pending() != 0;
    pools_pending += w.pools_pending;
  }
  w.late_pools.clear();  // errors close() did not rethrow are reported now, while the handler counts them
  std::size_t pool_lost = 0, pool_doubled = 0, pool_ghost = 0, pool_unsettled = 0;
  long pool_dropped_items = 0;
  for (std::size_t id = 0, n = w.pool_ids(); id < n; ++id) {
    const auto st = std::atomic_ref<std::uint8_t>(w.pool_state[id]).load();
    const auto seen = std::atomic_ref<std::uint8_t>(w.pool_seen[id]).load();
    if (seen > 1) ++pool_doubled;
    if ((st & 3) == 1) {
      if (seen == 0) (st & World::kDroppable) ? void(++pool_dropped_items) : void(++pool_lost);
    } else if ((st & 3) == 2) {
      if (seen != 0) ++pool_ghost;
    } else {
      ++pool_unsettled;
    }
  }

  long total_ops = 0, cancellations = 0, timeouts = 0, closes = 0;
  std::ostringstream kinds;
  for (int i = 0; i < kOpCount; ++i) {
    const auto& o = w.ops[i];
    total_ops += o.total();
    cancellations += val(o.cancelled);
    timeouts += val(o.timeout);
    closes += val(o.closed);
    kinds << ' ' << kOpNames[i] << ' ' << val(o.ok) << '/' << val(o.timeout) << '/' << val(o.cancelled) << '/'
          << val(o.closed);
  }
  const double run_secs = std::chrono::duration<double>(drain_start - start).count();
  std::ostringstream sum;
  sum.setf(std::ios::fixed);
  sum.precision(2);
  sum << "soak[" << sc.name << "] SKEIN_SOAK_SEED=" << soak_seed() << ": " << run_secs << " s + " << drain_secs
      << " s drain, " << total_ops << " ops (" << static_cast<long>(static_cast<double>(total_ops) / run_secs)
      << "/s); jobs " << val(w.jobs) << " (ok " << val(w.jobs_ok) << ", cancelled " << val(w.jobs_cancelled)
      << ", deadline " << val(w.jobs_deadline) << "); waits cancelled " << cancellations << ", timed out " << timeouts
      << ", closed " << closes << "; contexts cancelled " << val(w.ctx_cancels) << ", nested " << val(w.nested)
      << "; items " << put_ok << " put of " << n_ids << (n_ids == w.capacity ? " (id budget spent)" : "") << ", "
      << val(w.received) << " received + " << val(w.drained) << " drained; episodes: " << val(w.episodes) << " queues, "
      << val(w.ep_pools) << " pools (" << val(w.ep_submitted) << " items, " << val(w.ep_cancelled) << " cancelled, "
      << pool_dropped_items << " items dropped, " << val(w.ep_never_started)
      << " with workers cancelled before they started); pool " << val(w.pool_submitted) << " items, "
      << val(w.boom_thrown) << " worker errors (" << val(w.boom_rethrown) << " rethrown, " << val(w.h_pool)
      << " reported); loop posts " << val(w.loop_posted) << ", loop tasks " << val(w.loop_spawned) << ", notifier "
      << w.notifier_runs << "/" << val(w.triggers) << "; wait groups " << val(w.groups_made) << "; orphans "
      << val(w.orphans_thrown) << " |" << kinds.str() << " [ok/timeout/cancelled/closed]";
  MESSAGE(sum.str());

  {
    std::lock_guard lk(w.fail_mu);
    for (const auto& f : w.failures) FAIL_CHECK(f);
  }
  CHECK(val(w.failure_count) == 0);
  CHECK(skein::goroutines() == 0);
  CHECK(w.root.tasks() == 0);
  // Queues: every successful put received exactly once (in flight or at the drain), no failed put's item seen.
  CHECK(unsettled == 0);
  CHECK(lost == 0);
  CHECK(doubled == 0);
  CHECK(ghost == 0);
  CHECK(val(w.received) + val(w.drained) == put_ok);
  // Semaphore: every permit back.
  CHECK(w.sem.available() == World::kPermits);
  CHECK(w.holders.load() == 0);
  CHECK(w.max_holders.load() <= World::kPermits);
  // Mutex and RWLock: free, and the guarded values equal the successful operations.
  CHECK(w.mu.try_lock());
  w.mu.unlock();
  CHECK(w.mu_counter == val(w.op(kMutex).ok));
  CHECK(w.rw.try_lock());
  w.rw.unlock();
  CHECK(w.rw.try_lock_shared());
  w.rw.unlock_shared();
  CHECK(w.rw_value == val(w.op(kWrite).ok));
  CHECK(w.readers.load() == 0);
  // Shared and Atomic.
  const auto totals = w.shared.get();
  CHECK(totals.n == val(w.op(kShared).ok));
  CHECK(totals.sum == val(w.shared_sum));
  CHECK(w.atom.get() == val(w.atom_sum));
  // Pools: every item processed or failed on purpose; each error rethrown or reported once.
  CHECK(pools_pending == 0);  // else their wait() would hang
  CHECK(pool_unsettled == 0);
  CHECK(pool_lost == 0);
  CHECK(pool_doubled == 0);
  CHECK(pool_ghost == 0);
  CHECK(val(w.pool_processed) + val(w.pool_thrown) == val(w.pool_submitted));
  CHECK(val(w.boom_thrown) == val(w.boom_rethrown) + val(w.h_pool));
  CHECK(val(w.ep_submitted) == val(w.ep_processed) + val(w.ep_thrown) + val(w.ep_item_cancelled) + pool_dropped_items);
  CHECK(val(w.ep_dropped_reported) <= pool_dropped_items);
  // WaitGroups at zero. (A child that never started gives its ticket back
  // when its frame goes, a moment after it counts as finished: a bounded wait.)
  auto busy_groups = [&w] {
    std::lock_guard lk(w.reg_mu);
    std::size_t n = 0;
    for (auto& g : w.groups) n += g->count() != 0;
    return n;
  };
  (void)eventually([&] { return busy_groups() == 0; }, 10000ms);
  CHECK(busy_groups() == 0);
  // EventLoop: every post ran; the notifier ran at least once if triggered, at most once per trigger.
  CHECK(w.loop_counter == val(w.loop_posted));
  {
    long settled = 0, succeeded = 0, other = 0;
    for (auto& t : w.loop_tasks) {
      if (!t.ready()) continue;
      ++settled;
      try {
        t.get();
        ++succeeded;
      } catch (const skein::Cancelled&) {
      } catch (...) {
        ++other;
      }
    }
    CHECK(static_cast<long>(w.loop_tasks.size()) == val(w.loop_spawned));
    CHECK(settled == val(w.loop_spawned));
    CHECK(other == 0);
    CHECK(w.loop_coros_done == succeeded);
  }
  if (val(w.triggers) > 0) CHECK(w.notifier_runs >= 1);
  CHECK(w.notifier_runs <= val(w.triggers));
  // The unhandled-error handler: exactly the orphans, the failing posts and the unrethrown Pool errors.
  CHECK(val(w.h_orphan) == val(w.orphans_thrown));
  CHECK(val(w.h_loop) == val(w.loop_thrown));
  CHECK(val(w.h_cancelled) == 0);
  CHECK(val(w.h_other) == 0);

  // Nothing runs any more: the world can go (reports, if any, go to stderr now).
  skein::set_unhandled_error_handler(nullptr);
  world.reset();
}

}  // namespace

TEST_CASE("soak: every primitive at once under random cancellation and timeouts, exact totals (default pool)") {
  run_soak({"default pool", 0, 2, 24}, skein::default_pool());
}

TEST_CASE("soak: every primitive at once under random cancellation and timeouts, exact totals (one-thread pool)") {
  skein::ThreadPool one(1);
  run_soak({"one-thread pool", 0x5eed0f0e5eed0f0eull, 1, 12}, one);
}
