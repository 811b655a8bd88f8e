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
// run_with_timeout, TaskGroups (run/spawn/try_run/async_run, limits,
// wait/async_wait or none, errors(), their own cancel(), cancelled parents,
// context values, after_cancel, when_all_settled, Permits; their tasks use
// the enclosing function's locals), and deliberately orphaned task errors.
// Jobs run under nested Contexts that are cancelled at random moments or
// carry short deadlines, so waits of every kind are cancelled or time out
// mid-flight.
//
// When the time is up no new work starts, the queues are closed, everything
// drains, and the totals must be exact: every item put successfully was
// received exactly once or is still in its queue at the final drain (and no
// item whose put failed ever appears), every guarded counter equals the
// operations recorded, every permit is back, the locks are free, every
// WaitGroup is at zero, no task is left, and the unhandled-error handler got
// exactly the errors the workload orphaned on purpose (a TaskGroup's errors
// only when nobody observed them: no wait(), or a wait() that was cancelled
// itself, and no errors()). Timing only drives the mix: no assertion depends
// on the clock.
//
//   SKEIN_SOAK_SEED=N      replay the mix of a seed (printed by every case)
//   SKEIN_SOAK_SECONDS=S   run each case for S seconds (default 2; 1 when
//                          SKEIN_TEST_SCALE > 1, as the sanitizer builds set it)
#include "support/common.hpp"

#include <algorithm>
#include <array>
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
  kTaskGroup,
  kOpCount
};
constexpr const char* kOpNames[kOpCount] = {"put",    "get",     "sem",    "mutex",     "read",    "write",
                                            "shared", "atomic",  "submit", "pool.wait", "post",    "loop-task",
                                            "sleep",  "wg.wait", "await",  "ctx.wait",  "combine", "task-group"};

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
/// Thrown by a task of a TaskGroup: `group` tags the group, `child` the task.
struct GroupBoom : std::runtime_error {
  GroupBoom(std::uint64_t g, int c)
      : std::runtime_error("soak: a deliberate error of a TaskGroup's task"), group(g), child(c) {}
  std::uint64_t group;
  int child;
};
/// The cause a group's owner cancels it with (TaskGroup::cancel(cause)).
struct GroupStop : std::runtime_error {
  explicit GroupStop(std::uint64_t g) : std::runtime_error("soak: a TaskGroup cancelled by its owner"), group(g) {}
  std::uint64_t group;
};
/// The cause a group's explicit parent context is cancelled with (Context::cancel(cause)).
struct ParentStop : std::runtime_error {
  explicit ParentStop(std::uint64_t g) : std::runtime_error("soak: a TaskGroup's parent context cancelled"), group(g) {}
  std::uint64_t group;
};
/// Thrown by a task outside any group whose Promise goes to when_all_settled (which observes it).
struct SettledBoom : std::runtime_error {
  SettledBoom() : std::runtime_error("soak: a deliberate error of a when_all_settled input") {}
};

/// The value a TaskGroup's parent context carries for its tasks (this_task::value): the group's tag.
const skein::ContextKey<std::uint64_t> kGroupKey{"soak.task_group"};

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
        put_state(id_capacity),
        recv(id_capacity),
        pool_state(id_capacity),
        pool_seen(id_capacity),
        gpool([this](int id) { global_worker(id); }, 2, 3) {}

  skein::ThreadPool& jobs_pool;  // where jobs and their sub-tasks run
  skein::Context root;           // every job's context descends from it (bar a few independent roots)
  std::atomic<bool> stopping{false};
  bool time_up() const noexcept { return stopping.load(std::memory_order_relaxed); }

  // Items: per id, the outcome of its put (1 ok, 2 failed) and how often it was received.
  const std::size_t capacity;
  // Atomic bytes (std::atomic_ref would do on plain ones, but libc++ has it only from 19).
  std::vector<std::atomic<std::uint8_t>> put_state, recv;  // zero-initialised
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
    if (!put_state[id].compare_exchange_strong(none, ok ? 1 : 2))
      fail("item #" + std::to_string(id) + ": its put ended twice");
  }
  void got(const Item& it, bool at_drain = false) {
    if (it.id >= ids()) return fail("received item #" + std::to_string(it.id) + ", which was never made");
    if (it.tag != tag_for(it.id)) fail("item #" + std::to_string(it.id) + " arrived corrupted: \"" + it.tag + "\"");
    if (recv[it.id].fetch_add(1) != 0) fail("item #" + std::to_string(it.id) + " received more than once");
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
  std::vector<std::atomic<std::uint8_t>> pool_state, pool_seen;
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
    const auto before = pool_state[static_cast<std::size_t>(id)].fetch_or(ok ? 1 : 2);
    if (before & 3) fail("Pool item #" + std::to_string(id) + ": its submit ended twice");
  }
  void may_drop(int id) { pool_state[static_cast<std::size_t>(id)].fetch_or(kDroppable); }
  /// A worker got Pool item `id`.
  void entered(int id) {
    if (id < 0 || static_cast<std::size_t>(id) >= pool_ids())
      return fail("a Pool worker got item #" + std::to_string(id) + ", which was never made");
    if (pool_seen[static_cast<std::size_t>(id)].fetch_add(1) != 0)
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
  // Counted in errors, not in reports: a skein::RepeatedError (a Pool's error
  // that repeated) counts as count() of its first(); h_repeated counts those reports.
  std::atomic<long> h_orphan{0}, h_loop{0}, h_pool{0}, h_cancelled{0}, h_other{0}, h_group{0}, h_settled{0},
      h_repeated{0};

  // TaskGroups: how their wait() ended (returned; rethrew the first GroupBoom;
  // threw Cancelled because the parent context was cancelled, or because the
  // waiting task was; skipped, the destructor cancelling and waiting; left by
  // an exception before it), what their tasks did, and the GroupBooms that
  // neither wait() nor errors() observed: the destructor reports exactly those.
  std::atomic<std::uint64_t> tg_next_tag{0};
  std::atomic<long> tg_made{0}, tg_coro{0}, tg_ok{0}, tg_boom{0}, tg_cancelled{0}, tg_caller_cancelled{0},
      tg_skipped{0}, tg_escaped{0}, tg_user_cancels{0}, tg_parent_cancels{0}, tg_limited{0};
  std::atomic<long> tg_started{0}, tg_declined{0}, tg_completed{0}, tg_booms{0}, tg_child_cancelled{0},
      tg_never_started{0}, tg_unobserved{0}, tg_unobserved_wait{0}, tg_settled{0}, tg_values{0}, tg_usage{0},
      tg_on_loop{0}, tg_reused{0};
  std::atomic<long> tg_after_fired{0}, tg_after_ran{0};

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

  void on_unhandled(std::exception_ptr e) { count_unhandled(e, 1); }
  /// Counts `e` as `n` errors of its kind.
  void count_unhandled(const std::exception_ptr& e, long n) {
    try {
      std::rethrow_exception(e);
    } catch (const skein::RepeatedError& r) {  // n errors like r.first(), in one report
      bump(h_repeated);
      if (r.count() < 1 || !r.first())
        fail(std::string("a RepeatedError with no count or no first error: ") + r.what());
      count_unhandled(r.first(), n * static_cast<long>(r.count()));
    } catch (const OrphanBoom&) {
      bump(h_orphan, n);
    } catch (const LoopBoom&) {
      bump(h_loop, n);
    } catch (const PoolBoom&) {
      bump(h_pool, n);
    } catch (const GroupBoom&) {
      bump(h_group, n);
    } catch (const SettledBoom&) {
      bump(h_settled, n);
      fail("a when_all_settled input's error reached the unhandled-error handler (when_all_settled observes it)");
    } catch (const skein::Cancelled& c) {
      bump(h_cancelled, n);
      if (long d = pool_dropped(c.what()); d >= 0) bump(ep_dropped_reported, d * n);
      fail(std::string("a cancellation reached the unhandled-error handler (never reported, says the contract): ") +
           c.what());
    } catch (const std::exception& x) {
      bump(h_other, n);
      fail(std::string("unexpected error reported to the unhandled-error handler: ") + x.what());
    } catch (...) {
      bump(h_other, n);
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

// --- TaskGroup ----------------------------------------------------------------------------------
// A group's tasks use the enclosing function's locals (GroupLocals): the
// group's end — wait(), or its destructor after an exception, a cancellation
// or a skipped wait() — must leave none of them running.

/// Counts a held permit of w.sem that a Permit gives back (SemHold releases by hand).
class PermitCount {
public:
  explicit PermitCount(World& w) : w_(w) {
    const int n = w_.holders.fetch_add(1) + 1;
    if (n > World::kPermits)
      w_.fail("Semaphore (Permit): " + std::to_string(n) + " holders of " + std::to_string(World::kPermits) +
              " permits");
    int m = w_.max_holders.load();
    while (n > m && !w_.max_holders.compare_exchange_weak(m, n)) {
    }
  }
  ~PermitCount() { w_.holders.fetch_sub(1); }
  PermitCount(const PermitCount&) = delete;
  PermitCount& operator=(const PermitCount&) = delete;

private:
  World& w_;
};

/// A Permit of w.sem, blocking, tried or timed; now and then given back early.
void permit_one(World& w, Rng& r) {
  skein::Permit p;
  try {
    switch (r.below(3)) {
      case 0: p = skein::Permit(w.sem); break;
      case 1: p = skein::Permit(w.sem, std::try_to_lock); break;
      default: p = skein::Permit(w.sem, r.timeout(0, 1500)); break;
    }
  } catch (const skein::Cancelled&) {
    bump(w.op(kSem).cancelled);
    throw;
  }
  if (!p) return bump(w.op(kSem).timeout);
  if (p.semaphore() != &w.sem) w.fail("Permit::semaphore() is not the semaphore it holds a permit of");
  {
    PermitCount held(w);
    bump(w.op(kSem).ok);
    if (r.chance(40)) skein::sleep_for(r.micros(0, 300));  // a Cancelled here gives the permit back
  }
  if (r.chance(30)) {
    skein::Permit moved = std::move(p);
    if (p.held() || !moved.held()) w.fail("a moved Permit did not move its permit");
    if (r.chance(50)) moved.release();
  }
}

constexpr int kMaxGroupChildren = 6;
constexpr int kGroupRounds = 2;  // a group may be used again after a wait()
constexpr int kLocalPermits = 2;

/// Task indices: round r's tasks are r * kRoundSpan + i (i < kMaxGroupChildren,
/// started by the owner) and r * kRoundSpan + kMaxGroupChildren + i (started by task i).
constexpr int kRoundSpan = 2 * kMaxGroupChildren;
constexpr bool owners_task(int k) noexcept { return k % kRoundSpan < kMaxGroupChildren; }

/// A TaskGroup's function-local state, shared with its tasks by reference.
struct GroupLocals {
  GroupLocals(World& world, std::uint64_t t) : w(world), tag(t) {}
  World& w;
  const std::uint64_t tag;
  std::atomic<std::ptrdiff_t> limit{-1};  // set_limit, or -1 (changed only between rounds)
  int base = 0;                           // the first task index of this round
  bool valued = false;                    // the group's context carries kGroupKey = tag
  std::optional<skein::Context> gctx;     // the group's context (set before any task starts)
  skein::TaskGroup* group = nullptr;      // its tasks start more tasks in it
  std::size_t seen = 0;                   // errors the group counts as observed (wait()/errors())
  bool wait_cancelled = false;            // wait() threw Cancelled because the waiting task was cancelled
  std::atomic<int> in_flight{0}, max_in_flight{0}, local_holders{0};
  std::atomic<long> started{0};  // by the owner, and by tasks of the group
  std::atomic<long> entered{0}, completed{0}, booms{0}, cancelled{0};
  std::array<std::atomic<int>, kGroupRounds * kRoundSpan> hits{};  // per task index: ran to its end
  skein::Semaphore local_sem{kLocalPermits};
};

/// A Cancelled in a group's task (or from its wait()) carries no cause, or one of this group's.
void check_group_cause(GroupLocals& L, const std::exception_ptr& cause, const char* where) {
  if (!cause) return;
  try {
    std::rethrow_exception(cause);
  } catch (const GroupBoom& b) {
    if (b.group != L.tag) L.w.fail(std::string(where) + ": cancelled with another group's GroupBoom as the cause");
  } catch (const GroupStop& s) {
    if (s.group != L.tag) L.w.fail(std::string(where) + ": cancelled with another group's GroupStop as the cause");
  } catch (const ParentStop& s) {
    if (s.group != L.tag) L.w.fail(std::string(where) + ": cancelled with another group's ParentStop as the cause");
  } catch (const std::exception& x) {
    L.w.fail(std::string(where) + ": a Cancelled with an unexpected cause: " + x.what());
  }
}

/// A task of the group, for as long as its body runs: counted, within the
/// limit, in the group's context, seeing the group's value.
class ChildIn {
public:
  explicit ChildIn(GroupLocals& l) : L_(l) {
    bump(L_.entered);
    const int n = L_.in_flight.fetch_add(1) + 1;
    int m = L_.max_in_flight.load();
    while (n > m && !L_.max_in_flight.compare_exchange_weak(m, n)) {
    }
    if (const auto lim = L_.limit.load(); lim >= 0 && n > lim)
      L_.w.fail("TaskGroup: " + std::to_string(n) + " tasks ran at once with a limit of " + std::to_string(lim));
    const auto cur = skein::Context::current();
    if (!cur || !L_.gctx->encloses(*cur)) L_.w.fail("a TaskGroup's task does not run in the group's context");
    const std::uint64_t* v = skein::this_task::value(kGroupKey);
    if (L_.valued ? (!v || *v != L_.tag) : v != nullptr)
      L_.w.fail("this_task::value in a TaskGroup's task is not the value of the group's context");
    bump(L_.w.tg_values);
  }
  ~ChildIn() { L_.in_flight.fetch_sub(1); }
  ChildIn(const ChildIn&) = delete;
  ChildIn& operator=(const ChildIn&) = delete;

private:
  GroupLocals& L_;
};

/// One holder of the group's local semaphore (at most kLocalPermits at once).
class LocalHold {
public:
  explicit LocalHold(GroupLocals& l) : L_(l) {
    if (L_.local_holders.fetch_add(1) + 1 > kLocalPermits) L_.w.fail("Permit: a local semaphore over its permits");
  }
  ~LocalHold() { L_.local_holders.fetch_sub(1); }
  LocalHold(const LocalHold&) = delete;
  LocalHold& operator=(const LocalHold&) = delete;

private:
  GroupLocals& L_;
};

[[noreturn]] void group_boom(GroupLocals& L, int i) {
  bump(L.booms);
  throw GroupBoom(L.tag, i);
}

void tg_child_done(GroupLocals& L, int i) {
  if (L.hits[static_cast<std::size_t>(i)].fetch_add(1) != 0)
    L.w.fail("a TaskGroup's task #" + std::to_string(i) + " ran twice");
  bump(L.completed);
}

void tg_start_from_task(GroupLocals& L, Rng& r, int i);
void tg_wait_inside(GroupLocals& L);

/// A task of a group (a plain function): small cancellable steps, a Permit,
/// now and then one more task of the group, now and then a GroupBoom.
int tg_child(GroupLocals& L, std::uint64_t seed, int i, bool boom) {
  ChildIn in(L);
  World& w = L.w;
  Rng r(seed);
  try {
    if (boom && r.chance(30)) group_boom(L, i);
    for (int k = 0, n = 1 + static_cast<int>(r.below(3)); k < n; ++k) {
      switch (r.below(3)) {
        case 0: small_step(w, r); break;
        case 1: permit_one(w, r); break;
        default: {
          skein::Permit p(L.local_sem);
          LocalHold h(L);
          if (r.chance(50)) skein::sleep_for(r.micros(0, 200));
          break;
        }
      }
    }
    if (owners_task(i) && r.chance(15)) tg_start_from_task(L, r, i);
    if (r.chance(3)) tg_wait_inside(L);
    if (boom) group_boom(L, i);
  } catch (const skein::Cancelled& c) {
    check_group_cause(L, c.cause(), "a TaskGroup's task");
    bump(L.cancelled);
    throw;
  }
  tg_child_done(L, i);
  return i * 7;
}

Promise<int> tg_child_coro(GroupLocals* L, std::uint64_t seed, int i, bool boom);

/// From task `i` of the group: one more task of the group (as errgroup's Go
/// from a goroutine), with try_run (spawn only without a limit: a task
/// waiting for a slot it holds itself would wait for ever).
void tg_start_from_task(GroupLocals& L, Rng& r, int i) {
  const int k = kMaxGroupChildren + i;
  const std::uint64_t seed = r.next();
  const bool boom = r.chance(12);
  const bool coro = r.chance(40);
  bool started = true;
  if (L.limit.load() < 0 && r.chance(50)) {
    if (coro)
      L.group->spawn(tg_child_coro, &L, seed, k, boom);
    else
      L.group->spawn([&L, seed, k, boom] { return tg_child(L, seed, k, boom); });
  } else {
    std::optional<Promise<int>> pr;
    if (coro)
      pr = L.group->try_run(L.w.jobs_pool, tg_child_coro, &L, seed, k, boom);
    else
      pr = L.group->try_run([&L, seed, k, boom] { return tg_child(L, seed, k, boom); });
    started = pr.has_value();  // its Promise is dropped: its error is the group's, not unhandled
  }
  if (started)
    bump(L.started);
  else
    bump(L.w.tg_declined);
}

/// wait() from a task of the group would wait for itself: UsageError.
void tg_wait_inside(GroupLocals& L) {
  try {
    L.group->wait();
    L.w.fail("TaskGroup::wait from a task of the group returned");
  } catch (const skein::UsageError&) {
    bump(L.w.tg_usage);
  } catch (const std::exception& x) {
    L.w.fail(std::string("TaskGroup::wait from a task of the group: not a UsageError but ") + x.what());
  }
}

/// A task outside the group whose Promise joins the group's in a when_all_settled.
int settled_child(World* w, std::uint64_t seed) {
  Rng r(seed);
  small_step(*w, r);
  if (r.chance(40)) throw SettledBoom();
  return 4242;
}

/// Checks when_all_settled's outcomes; `child[k]` is the group task of input k, or -1.
void check_settled(GroupLocals& L, std::vector<skein::Settled<int>>& res, const std::vector<int>& child) {
  World& w = L.w;
  bump(w.tg_settled);
  if (res.size() != child.size()) return w.fail("when_all_settled: wrong number of outcomes");
  for (std::size_t k = 0; k < res.size(); ++k) {
    auto& s = res[k];
    if (s.fulfilled() == s.rejected()) w.fail("when_all_settled: an outcome neither (or both) fulfilled and rejected");
    if (s.fulfilled()) {
      if (s.error()) w.fail("when_all_settled: a fulfilled outcome with an error");
      const int want = child[k] < 0 ? 4242 : child[k] * 7;
      if (s.value() != want) w.fail("when_all_settled: a value out of place");
      continue;
    }
    if (!s.error()) {
      w.fail("when_all_settled: a rejected outcome without an error");
      continue;
    }
    try {
      std::rethrow_exception(s.error());
    } catch (const GroupBoom& b) {
      if (child[k] < 0 || b.group != L.tag || b.child != child[k])
        w.fail("when_all_settled: a GroupBoom at the wrong input");
    } catch (const SettledBoom&) {
      if (child[k] >= 0) w.fail("when_all_settled: a SettledBoom at a group task's input");
    } catch (const skein::Cancelled&) {
    } catch (const std::exception& x) {
      w.fail(std::string("when_all_settled: an unexpected error: ") + x.what());
    }
    try {  // value() rethrows the input's error
      (void)s.value();
      w.fail("when_all_settled: value() of a rejected outcome did not throw");
    } catch (...) {
    }
  }
}

/// What a group op decides up front.
struct GroupPlan {
  std::optional<skein::Context> enclosing;  // the current task's context (the default parent), if any
  std::optional<skein::Context> parent;     // an explicit parent, or none: TaskGroup()
  bool valued = false, detached = false;    // parent carries kGroupKey; parent is a without_cancel() root
  bool pre_cancel = false, mid_cancel = false, user_cancel = false, skip_wait = false;
  bool settle = false, permit = false, after = false, errors_early = false;
  std::exception_ptr parent_cause, user_cause;
  std::ptrdiff_t limit = -1;
  int n = 1;       // tasks the owner starts per round
  int rounds = 1;  // another round after a wait() that returned, the group not cancelled
};

GroupPlan plan_group(World& w, Rng& r, std::uint64_t tag) {
  GroupPlan p;
  p.enclosing = skein::Context::current();
  const skein::Context& base = p.enclosing ? *p.enclosing : w.root;
  switch (r.below(6)) {
    case 0:
    case 1: break;  // TaskGroup(): under the current task's context (a root one on a plain thread)
    case 2: p.parent = sub_context(w, r); break;
    case 3:
      p.parent = sub_context(w, r).with_value(kGroupKey, tag);
      p.valued = true;
      break;
    case 4:
      p.parent = base.with_value(kGroupKey, tag);
      p.valued = true;
      break;
    default:  // never cancelled from outside: only the caller's cancellation reaches it (through wait())
      p.parent = base.with_value(kGroupKey, tag).without_cancel();
      p.valued = p.detached = true;
      break;
  }
  const bool cancellable_parent = p.parent && !p.detached;
  p.pre_cancel = cancellable_parent && r.chance(8);
  p.mid_cancel = cancellable_parent && !p.pre_cancel && r.chance(30);
  if (r.chance(50)) p.parent_cause = std::make_exception_ptr(ParentStop(tag));
  p.user_cancel = r.chance(15);
  if (r.chance(50)) p.user_cause = std::make_exception_ptr(GroupStop(tag));
  p.skip_wait = r.chance(10);
  p.settle = r.chance(30);
  p.permit = r.chance(20);
  p.after = r.chance(25);
  p.errors_early = r.chance(15);
  if (r.chance(35)) p.limit = r.chance(5) ? 0 : 1 + static_cast<std::ptrdiff_t>(r.below(3));
  p.n = 1 + static_cast<int>(r.below(kMaxGroupChildren));
  p.rounds = r.chance(20) ? kGroupRounds : 1;
  return p;
}

/// errors() now: every error so far is one of this group's GroupBooms; they count as observed.
void group_errors(GroupLocals& L, const skein::TaskGroup& g) {
  const auto errs = g.errors();
  if (errs.size() < L.seen) L.w.fail("TaskGroup::errors() shrank");
  L.seen = errs.size();
  for (const auto& e : errs) {
    if (!e) {
      L.w.fail("TaskGroup::errors() holds a null error");
      continue;
    }
    try {
      std::rethrow_exception(e);
    } catch (const GroupBoom& b) {
      if (b.group != L.tag) L.w.fail("TaskGroup::errors() holds another group's error");
    } catch (const std::exception& x) {
      L.w.fail(std::string("TaskGroup::errors() holds an error that is not a GroupBoom: ") + x.what());
    }
  }
}

/// Checks what wait() or async_wait() gave: null (it returned) or its error.
/// True if it threw Cancelled because the waiting task was cancelled (the caller rethrows it).
bool judge_group_wait(GroupLocals& L, const GroupPlan& p, skein::TaskGroup& g, const std::exception_ptr& e, Rng& r) {
  World& w = L.w;
  const bool caller_cancelled = skein::this_task::cancelled();
  const bool parent_cancelled = p.parent ? p.parent->cancelled() : (p.enclosing && p.enclosing->cancelled());
  const long booms = val(L.booms);
  const auto all = static_cast<std::size_t>(booms);
  if (g.tasks() != 0) w.fail("TaskGroup::wait ended with tasks of the group still live");
  if (L.in_flight.load() != 0) w.fail("TaskGroup::wait ended with a task of the group still running");
  if (!e) {
    L.seen = all;
    if (booms != 0) w.fail("TaskGroup::wait returned normally though a task of the group threw GroupBoom");
    if (!p.user_cancel && val(L.completed) != val(L.started))
      w.fail("TaskGroup::wait returned normally, the group not cancelled, but " + std::to_string(val(L.completed)) +
             " of its " + std::to_string(val(L.started)) + " tasks completed");
    if (p.pre_cancel && val(L.started) > 0)
      w.fail("TaskGroup::wait returned normally though its parent was cancelled before any task started");
    if (p.user_cancel && !parent_cancelled && !caller_cancelled) {  // only g.cancel() cancelled it: its cause
      try {
        const auto cause = g.context().cause();
        if (!cause) throw std::logic_error("no cause");  // not cancelled: reported below
        std::rethrow_exception(cause);
      } catch (const GroupStop& s) {
        if (!p.user_cause || s.group != L.tag) w.fail("TaskGroup::cancel(cause): a wrong cause()");
      } catch (const skein::Cancelled&) {
        if (p.user_cause) w.fail("TaskGroup::cancel(cause): cause() is not the cause given");
      } catch (...) {
        w.fail("TaskGroup::cancel(): an unexpected cause()");
      }
    }
    bump(w.tg_ok);
    bump(w.op(kTaskGroup).ok);
    return false;
  }
  try {
    std::rethrow_exception(e);
  } catch (const GroupBoom& b) {
    L.seen = all;
    if (b.group != L.tag) w.fail("TaskGroup::wait rethrew another group's GroupBoom");
    if (booms == 0) w.fail("TaskGroup::wait threw a GroupBoom no task of the group threw");
    if (!g.cancelled()) w.fail("a TaskGroup's first error did not cancel the group");
    if (r.chance(50)) {  // else the group's end must not report them: wait() observed them
      const auto errs = g.errors();
      if (errs.size() != all)
        w.fail("TaskGroup::errors() has " + std::to_string(errs.size()) + " errors, the tasks threw " +
               std::to_string(booms));
      group_errors(L, g);
      if (!errs.empty() && errs.front()) {
        try {
          std::rethrow_exception(errs.front());
        } catch (const GroupBoom& first) {
          if (first.child != b.child) w.fail("TaskGroup::wait did not rethrow the first error (errors().front())");
        } catch (...) {
        }
      }
    }
    try {  // cancelled by its first error, unless someone else was first
      const auto cause = g.context().cause();
      if (!cause) throw std::logic_error("no cause");  // not cancelled: reported above
      std::rethrow_exception(cause);
    } catch (const GroupBoom& c) {
      if (c.group != L.tag || c.child != b.child) w.fail("TaskGroup: the context's cause() is not the first error");
    } catch (...) {
      if (!parent_cancelled && !caller_cancelled && !p.user_cancel)
        w.fail("TaskGroup: cancelled by its first error only, but the context's cause() is not that error");
    }
    bump(w.tg_boom);
    bump(w.op(kTaskGroup).ok);
    return false;
  } catch (const skein::Cancelled& c) {
    check_group_cause(L, c.cause(), "TaskGroup::wait's Cancelled");
    if (!caller_cancelled && !parent_cancelled)
      w.fail("TaskGroup::wait threw Cancelled though neither its parent nor the waiting task was cancelled");
    if (booms > 0) {
      // Only the waiting task's own cancellation hides the first error: then
      // wait() observed none of the errors (the destructor reports them).
      if (!caller_cancelled) w.fail("TaskGroup::wait threw Cancelled instead of the first GroupBoom");
      L.wait_cancelled = true;
      if (r.chance(50)) {
        group_errors(L, g);
        if (L.seen != all) w.fail("TaskGroup::errors() after the end misses errors");
      }
    } else {
      L.seen = 0;
    }
    if (!caller_cancelled && val(L.cancelled) + (val(L.started) - val(L.entered)) == 0)
      w.fail("TaskGroup::wait threw Cancelled (from outside) though no task of the group ended with it");
    bump(caller_cancelled ? w.tg_caller_cancelled : w.tg_cancelled);
    bump(caller_cancelled ? w.op(kTaskGroup).cancelled : w.op(kTaskGroup).ok);
    return caller_cancelled;
  } catch (const std::exception& x) {
    w.fail(std::string("TaskGroup::wait threw an unexpected error: ") + x.what());
  }
  return false;
}

/// After the group's end (wait() and the destructor, or the destructor alone).
/// `escaped`: what left the group's scope before wait() ended (a Cancelled of the waiting task).
void group_after(GroupLocals& L, const GroupPlan& p, std::optional<skein::AfterCancel>& ac,
                 const std::exception_ptr& escaped) {
  World& w = L.w;
  const long entered = val(L.entered), completed = val(L.completed), booms = val(L.booms), cancelled = val(L.cancelled),
             started = val(L.started);
  if (L.in_flight.load() != 0) w.fail("a TaskGroup's task was still running after the group's end");
  if (L.gctx->tasks() != 0) w.fail("a TaskGroup's context still has tasks after the group's end");
  if (entered != completed + booms + cancelled)
    w.fail("TaskGroup: a task ended neither completed, nor with GroupBoom, nor with Cancelled");
  if (entered > started) w.fail("TaskGroup: more tasks ran than were started");
  if (p.pre_cancel && entered != 0) w.fail("a task of a TaskGroup whose parent was cancelled first started");
  long hits = 0;
  for (auto& h : L.hits) hits += h.load();
  if (hits != completed) w.fail("TaskGroup: the tasks' local counters do not add up to those completed");
  if (L.limit.load() >= 0 && L.max_in_flight.load() > L.limit.load()) w.fail("TaskGroup: the limit was exceeded");
  if (L.local_sem.available() != kLocalPermits || L.local_holders.load() != 0)
    w.fail("Permit: a local semaphore's permit was not given back");
  if (L.seen > static_cast<std::size_t>(booms)) w.fail("TaskGroup: more errors observed than thrown");
  bump(w.tg_unobserved, booms - static_cast<long>(L.seen));
  if (L.wait_cancelled) bump(w.tg_unobserved_wait, booms - static_cast<long>(L.seen));
  bump(w.tg_started, started);
  bump(w.tg_completed, completed);
  bump(w.tg_booms, booms);
  bump(w.tg_child_cancelled, cancelled);
  bump(w.tg_never_started, started - entered);
  if (ac && !ac->stop()) {  // it started (or will): only once the group's context was cancelled
    bump(w.tg_after_fired);
    if (!L.gctx->cancelled()) w.fail("after_cancel's function started though the context was not cancelled");
  }
  if (escaped) {
    bump(w.tg_escaped);
    try {
      std::rethrow_exception(escaped);
    } catch (const skein::Cancelled&) {
      bump(w.op(kTaskGroup).cancelled);
      if (!skein::this_task::cancelled())
        w.fail("a Cancelled left a TaskGroup's scope though the waiting task was not cancelled");
    } catch (const std::exception& x) {
      w.fail(std::string("an unexpected error left a TaskGroup's scope: ") + x.what());
    }
  }
}

/// Starts `p.n` tasks with run, spawn or try_run (a plain function or a
/// coroutine, on the jobs' pool or default_pool()); the Promises, for when_all_settled.
void start_group_children(GroupLocals& L, const GroupPlan& p, skein::TaskGroup& g, Rng& r,
                          std::vector<Promise<int>>& ps, std::vector<int>& child) {
  World& w = L.w;
  const bool closed = L.limit.load() == 0;  // limit 0: try_run declines, run would wait for ever
  for (int i = L.base; i < L.base + p.n; ++i) {
    const std::uint64_t seed = r.next();
    const bool boom = r.chance(12);
    const bool on_jobs = r.chance(50);
    const int form = closed ? 2 : static_cast<int>(r.below(3));
    bool started = false;
    auto launch = [&](auto&&... fa) -> std::optional<Promise<int>> {
      switch (form) {
        case 0: {
          auto pr = on_jobs ? g.run(w.jobs_pool, fa...) : g.run(fa...);
          started = true;
          return pr;
        }
        case 1:
          on_jobs ? g.spawn(w.jobs_pool, fa...) : g.spawn(fa...);
          started = true;
          return std::nullopt;
        default: {
          auto pr = on_jobs ? g.try_run(w.jobs_pool, fa...) : g.try_run(fa...);
          started = pr.has_value();
          return pr;
        }
      }
    };
    const bool idle = g.tasks() == 0;  // then every slot is free
    std::optional<Promise<int>> pr;
    if (r.chance(5) && form != 1) {  // on the EventLoop (a coroutine task: it never blocks the loop)
      if (form == 0)
        pr = g.run(w.loop, tg_child_coro, &L, seed, i, boom);
      else
        pr = g.try_run(w.loop, tg_child_coro, &L, seed, i, boom);
      started = pr.has_value();
      bump(w.tg_on_loop, started ? 1 : 0);
    } else if (r.chance(35))
      pr = launch(tg_child_coro, &L, seed, i, boom);
    else
      pr = launch([&L, seed, i, boom] { return tg_child(L, seed, i, boom); });
    if (!started) {
      bump(w.tg_declined);
      if (!closed && idle) w.fail("TaskGroup::try_run declined though no task of the group was live");
      continue;
    }
    bump(L.started);
    if (pr) {
      ps.push_back(std::move(*pr));
      child.push_back(i);
    }
  }
}

/// After a wait() that returned: the group is used again (with a new limit, or
/// none: no task is live and nobody waits for a slot, so set_limit must work).
bool next_round(GroupLocals& L, const GroupPlan& p, skein::TaskGroup& g, Rng& r, int round) {
  if (round + 1 >= p.rounds || p.user_cancel || g.cancelled()) return false;
  if (r.chance(50)) {
    const std::ptrdiff_t n = r.chance(30) ? -1 : 1 + static_cast<std::ptrdiff_t>(r.below(3));
    try {
      g.set_limit(n);
      L.limit = n;
    } catch (const std::exception& x) {
      L.w.fail(std::string("TaskGroup::set_limit between rounds (no task live) threw: ") + x.what());
    }
  }
  L.max_in_flight = 0;
  L.base += kRoundSpan;
  bump(L.w.tg_reused);
  return true;
}

/// A TaskGroup from blocking code: run/spawn/try_run, a limit, wait() (or not), cancellation from every side.
void task_group_one(World& w, Rng& r) {
  bump(w.tg_made);
  const std::uint64_t tag = w.tg_next_tag.fetch_add(1) + 1;
  GroupPlan p = plan_group(w, r, tag);
  GroupLocals L(w, tag);  // before the group: its tasks use it until the group ends
  L.valued = p.valued;
  std::optional<skein::AfterCancel> ac;
  std::exception_ptr escaped, rethrow;
  {
    std::optional<skein::TaskGroup> g;
    if (p.parent)
      g.emplace(*p.parent);
    else
      g.emplace();
    L.gctx = g->context();
    L.group = &*g;
    try {
      if (p.limit >= 0) {
        if (r.chance(30)) g->set_limit(-1);
        g->set_limit(p.limit);
        L.limit = p.limit;
        bump(w.tg_limited);
      }
      if (p.after) ac = skein::after_cancel(g->context(), w.jobs_pool, [pw = &w] { bump(pw->tg_after_ran); });
      if (p.pre_cancel) {
        p.parent->cancel(p.parent_cause);
        bump(w.tg_parent_cancels);
      }
      for (int round = 0;; ++round) {
        std::vector<Promise<int>> ps;
        std::vector<int> child;
        start_group_children(L, p, *g, r, ps, child);
        if (p.settle) {
          if (r.chance(50)) {
            ps.push_back(skein::run(w.jobs_pool, settled_child, &w, r.next()));
            child.push_back(-1);
          }
          auto res = skein::when_all_settled(std::move(ps)).get();
          check_settled(L, res, child);
        }
        if (p.permit) permit_one(w, r);
        if (p.errors_early) group_errors(L, *g);
        if (round == 0 && p.mid_cancel) {
          skein::sleep_for(r.micros(0, 1500));
          p.parent->cancel(p.parent_cause);
          bump(w.tg_parent_cancels);
        }
        if (round == 0 && p.user_cancel) {
          if (r.chance(50)) skein::sleep_for(r.micros(0, 800));
          g->cancel(p.user_cause);
          bump(w.tg_user_cancels);
          if (!g->cancelled()) w.fail("TaskGroup::cancel() did not cancel the group");
        }
        if (p.skip_wait && round + 1 >= p.rounds) {
          bump(w.tg_skipped);
          bump(w.op(kTaskGroup).timeout);
          break;
        }
        std::exception_ptr e;
        try {
          g->wait();
        } catch (...) {
          e = std::current_exception();
        }
        if (judge_group_wait(L, p, *g, e, r)) {
          rethrow = e;
          break;
        }
        if (e || !next_round(L, p, *g, r, round)) break;
      }
    } catch (...) {
      escaped = std::current_exception();
    }
  }  // the group ends: it cancels what is left and waits for it
  group_after(L, p, ac, escaped);
  if (escaped && skein::this_task::cancelled()) std::rethrow_exception(escaped);
  if (rethrow) std::rethrow_exception(rethrow);  // wait() was cancelled: so is the job
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
      3,   // 16 TaskGroup
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
    case 15:
      if (!deep) pool_episode(w, r);
      break;
    default: task_group_one(w, r); break;
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

/// A task of a group (a coroutine): async sleeps and async Permits, now and then a GroupBoom.
Promise<int> tg_child_coro(GroupLocals* L, std::uint64_t seed, int i, bool boom) {
  CoroLive live(&L->w);
  ChildIn in(*L);
  World* w = &L->w;
  Rng r(seed);
  try {
    if (boom && r.chance(30)) group_boom(*L, i);
    for (int k = 0, n = 1 + static_cast<int>(r.below(3)); k < n; ++k) {
      switch (r.below(3)) {
        case 0: co_await skein::async_sleep(r.micros(0, 300)); break;
        case 1: {
          skein::Permit p;
          try {
            p = co_await w->sem.async_permit();
          } catch (const skein::Cancelled&) {
            bump(w->op(kSem).cancelled);
            throw;
          }
          if (!p.held()) w->fail("Semaphore::async_permit gave an empty Permit");
          PermitCount held(*w);
          bump(w->op(kSem).ok);
          if (r.chance(40)) co_await skein::async_sleep(r.micros(0, 300));  // a Cancelled here gives it back
          break;
        }
        default: {
          skein::Permit p = co_await L->local_sem.async_permit();
          LocalHold h(*L);
          if (r.chance(50)) co_await skein::async_sleep(r.micros(0, 200));
          break;
        }
      }
    }
    if (owners_task(i) && r.chance(15)) tg_start_from_task(*L, r, i);
    if (r.chance(3)) tg_wait_inside(*L);
    if (boom) group_boom(*L, i);
  } catch (const skein::Cancelled& c) {
    check_group_cause(*L, c.cause(), "a TaskGroup's coroutine task");
    bump(L->cancelled);
    throw;
  }
  tg_child_done(*L, i);
  co_return i * 7;
}

/// A TaskGroup from a coroutine: async_run (which waits for a slot without
/// blocking), try_run, spawn, co_await when_all_settled, async_permit, and
/// co_await async_wait() (now and then a blocking wait(), or none).
Promise<void> task_group_coro(World* w, std::uint64_t seed) {
  CoroLive live(w);
  Rng r(seed);
  bump(w->tg_made);
  bump(w->tg_coro);
  const std::uint64_t tag = w->tg_next_tag.fetch_add(1) + 1;
  GroupPlan p = plan_group(*w, r, tag);
  GroupLocals L(*w, tag);  // in the frame, before the group: its tasks use it until the group ends
  L.valued = p.valued;
  std::optional<skein::AfterCancel> ac;
  std::exception_ptr escaped, rethrow;
  {
    std::optional<skein::TaskGroup> g;
    if (p.parent)
      g.emplace(*p.parent);
    else
      g.emplace();
    L.gctx = g->context();
    L.group = &*g;
    try {
      if (p.limit >= 0) {
        g->set_limit(p.limit);
        L.limit = p.limit;
        bump(w->tg_limited);
      }
      if (p.after) ac = skein::after_cancel(g->context(), [w] { bump(w->tg_after_ran); });
      if (p.pre_cancel) {
        p.parent->cancel(p.parent_cause);
        bump(w->tg_parent_cancels);
      }
      for (int round = 0;; ++round) {
        std::vector<Promise<int>> ps;
        std::vector<int> child;
        const bool closed = L.limit.load() == 0;  // limit 0: try_run declines, run would wait for ever
        for (int i = L.base; i < L.base + p.n; ++i) {
          const std::uint64_t s = r.next();
          const bool boom = r.chance(12);
          const bool coro = r.chance(50);
          const int form = closed ? 1 : static_cast<int>(r.below(4));
          std::optional<Promise<int>> pr;
          bool started = true;
          const bool idle = g->tasks() == 0;
          switch (form) {
            case 0:
            case 3: {  // async_run: waits for a slot without blocking the thread
              Promise<int> x;
              if (coro) {
                x = co_await g->async_run(tg_child_coro, &L, s, i, boom);
              } else {
                x = co_await g->async_run([&L, s, i, boom] { return tg_child(L, s, i, boom); });
              }
              pr = std::move(x);
              break;
            }
            case 1:
              if (coro)
                pr = g->try_run(w->jobs_pool, tg_child_coro, &L, s, i, boom);
              else
                pr = g->try_run([&L, s, i, boom] { return tg_child(L, s, i, boom); });
              started = pr.has_value();
              break;
            default:
              if (coro)
                g->spawn(tg_child_coro, &L, s, i, boom);
              else
                g->spawn(w->jobs_pool, [&L, s, i, boom] { return tg_child(L, s, i, boom); });
              break;
          }
          if (!started) {
            bump(w->tg_declined);
            if (!closed && idle) w->fail("TaskGroup::try_run declined though no task of the group was live");
            continue;
          }
          bump(L.started);
          if (pr) {
            if (!pr->valid()) w->fail("TaskGroup::async_run gave an empty Promise");
            ps.push_back(std::move(*pr));
            child.push_back(i);
          }
        }
        if (p.settle) {
          if (r.chance(50)) {
            ps.push_back(skein::run(w->jobs_pool, settled_child, w, r.next()));
            child.push_back(-1);
          }
          auto res = co_await skein::when_all_settled(std::move(ps));
          check_settled(L, res, child);
        }
        if (p.permit) {
          skein::Permit held;
          try {
            held = co_await w->sem.async_permit();
          } catch (const skein::Cancelled&) {
            bump(w->op(kSem).cancelled);
            throw;
          }
          PermitCount count(*w);
          bump(w->op(kSem).ok);
        }
        if (p.errors_early) group_errors(L, *g);
        if (round == 0 && p.mid_cancel) {
          co_await skein::async_sleep(r.micros(0, 1500));
          p.parent->cancel(p.parent_cause);
          bump(w->tg_parent_cancels);
        }
        if (round == 0 && p.user_cancel) {
          if (r.chance(50)) co_await skein::async_sleep(r.micros(0, 800));
          g->cancel(p.user_cause);
          bump(w->tg_user_cancels);
        }
        if (p.skip_wait && round + 1 >= p.rounds) {
          bump(w->tg_skipped);
          bump(w->op(kTaskGroup).timeout);
          break;
        }
        std::exception_ptr e;
        try {
          if (r.chance(80))
            co_await g->async_wait();
          else
            g->wait();
        } catch (...) {
          e = std::current_exception();
        }
        if (judge_group_wait(L, p, *g, e, r)) {
          rethrow = e;
          break;
        }
        if (e || !next_round(L, p, *g, r, round)) break;
      }
    } catch (...) {
      escaped = std::current_exception();
    }
  }  // the group ends: it cancels what is left and waits for it (blocking the thread)
  group_after(L, p, ac, escaped);
  if (escaped && skein::this_task::cancelled()) std::rethrow_exception(escaped);
  if (rethrow) std::rethrow_exception(rethrow);
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
      3,   // 13 a TaskGroup (async_run, async_wait)
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
    case 13: {
      co_await task_group_coro(w, r.next());
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
    const auto st = w.put_state[id].load();
    const auto rc = w.recv[id].load();
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
    const auto st = w.pool_state[id].load();
    const auto seen = w.pool_seen[id].load();
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
      << w.notifier_runs << "/" << val(w.triggers) << "; wait groups " << val(w.groups_made) << "; task groups "
      << val(w.tg_made) << " (" << val(w.tg_coro) << " coroutines, " << val(w.tg_limited) << " limited; wait "
      << val(w.tg_ok) << " returned, " << val(w.tg_boom) << " rethrew GroupBoom, " << val(w.tg_cancelled)
      << " Cancelled from the parent, " << val(w.tg_caller_cancelled) << " Cancelled with the waiter, "
      << val(w.tg_skipped) << " skipped, " << val(w.tg_escaped) << " left early; " << val(w.tg_user_cancels)
      << " cancel(), " << val(w.tg_parent_cancels) << " parents cancelled; tasks " << val(w.tg_started) << " started, "
      << val(w.tg_declined) << " declined, " << val(w.tg_completed) << " completed, " << val(w.tg_booms) << " threw, "
      << val(w.tg_child_cancelled) << " cancelled, " << val(w.tg_never_started) << " never started; "
      << val(w.tg_unobserved) << " errors unobserved (" << val(w.tg_unobserved_wait) << " after a cancelled wait), "
      << val(w.h_group) << " reported; " << val(w.tg_usage) << " wait() inside: UsageError; " << val(w.tg_on_loop)
      << " on the loop; " << val(w.tg_reused) << " used again after wait(); " << val(w.tg_settled)
      << " when_all_settled; after_cancel " << val(w.tg_after_ran) << "/" << val(w.tg_after_fired) << "); orphans "
      << val(w.orphans_thrown) << " |" << kinds.str() << " [ok/timeout/cancelled/closed]";
  sum << "; Pool errors reported as a RepeatedError: " << val(w.h_repeated) << " report(s)";
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
  // TaskGroups: the destructor reported exactly the GroupBooms that neither
  // wait() nor errors() observed; when_all_settled observed its inputs'
  // errors; every after_cancel function that was not stopped ran once.
  CHECK(val(w.h_group) == val(w.tg_unobserved));
  CHECK(val(w.h_settled) == 0);
  CHECK(val(w.tg_after_ran) == val(w.tg_after_fired));
  CHECK(val(w.tg_started) ==
        val(w.tg_completed) + val(w.tg_booms) + val(w.tg_child_cancelled) + val(w.tg_never_started));

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
