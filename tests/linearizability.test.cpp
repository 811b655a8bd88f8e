// Linearizability of Queue<T>: the checker of support/lincheck.hpp, shown
// able to fail on hand-written histories and checked against brute force;
// then thousands of short histories recorded from real threads and coroutines
// racing on a Queue<int>, every one of which must be linearizable; and a
// deliberately broken queue, recorded the same way, that it must catch.
#include "support/common.hpp"
#include "support/lincheck.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace test;
using lincheck::History;
using lincheck::Kind;
using lincheck::Op;
using lincheck::Res;

namespace {

// --- hand-written histories -----------------------------------------------------------

Op op(int actor, Kind k, int x, Res r, std::uint64_t invoke, std::uint64_t response) {
  Op o;
  o.actor = actor;
  o.kind = k;
  o.res = r;
  (lincheck::is_put(k) ? o.arg : o.value) = x;
  o.invoke = invoke;
  o.response = response;
  return o;
}
Op put(int actor, int x, std::uint64_t a, std::uint64_t b) { return op(actor, Kind::put, x, Res::ok, a, b); }
Op get(int actor, int v, std::uint64_t a, std::uint64_t b) { return op(actor, Kind::get, v, Res::value, a, b); }
Op empty(int actor, Kind k, std::uint64_t a, std::uint64_t b) { return op(actor, k, 0, Res::empty, a, b); }
Op close(int actor, std::uint64_t a, std::uint64_t b) { return op(actor, Kind::close, 0, Res::ok, a, b); }

/// Is `order` a linearization of `h`: a permutation that respects real time
/// and that the sequential model accepts step by step?
bool valid_witness(const History& h, std::size_t cap, const std::vector<std::size_t>& order) {
  if (order.size() != h.size()) return false;
  std::vector<bool> seen(h.size(), false);
  lincheck::QueueModel model(cap);
  lincheck::QueueState s;
  for (std::size_t k = 0; k < order.size(); ++k) {
    std::size_t i = order[k];
    if (i >= h.size() || seen[i]) return false;
    seen[i] = true;
    for (std::size_t j = k + 1; j < order.size(); ++j)
      if (h[order[j]].response < h[i].invoke) return false;  // j finished before i started
    if (model.step(s, h[i])) return false;
  }
  return true;
}

bool linearizable(const History& h, std::size_t cap) {
  auto v = lincheck::check(h, cap);
  REQUIRE_FALSE(v.exhausted);
  if (v.linearizable) {
    CHECK(valid_witness(h, cap, v.order));
  } else {
    CHECK(v.explanation.find("not linearizable") != std::string::npos);
  }
  return v.linearizable;
}

/// The reference: tries every order of the operations (histories of <= 6 ops).
bool brute_force(const History& h, std::size_t cap) {
  std::vector<std::size_t> order(h.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  do {
    if (valid_witness(h, cap, order)) return true;
  } while (std::next_permutation(order.begin(), order.end()));
  return false;
}

}  // namespace

TEST_CASE("lincheck: linearizable hand-written histories are accepted") {
  // Sequential FIFO.
  CHECK(linearizable({put(0, 1, 0, 1), put(0, 2, 2, 3), get(1, 1, 4, 5), get(1, 2, 6, 7)}, 0));
  // Overlapping puts may take effect in either order; so the search must backtrack
  // when it tries put(1) first.
  CHECK(linearizable({put(0, 1, 0, 10), put(1, 2, 0, 10), get(2, 2, 11, 12), get(2, 1, 13, 14)}, 0));
  // A blocking get overlapping the put that feeds it.
  CHECK(linearizable({get(0, 1, 0, 5), put(1, 1, 1, 2)}, 1));
  // Capacity 1: try_put fails while full, succeeds once the item is taken.
  CHECK(linearizable({put(0, 1, 0, 1), op(0, Kind::try_put, 2, Res::full, 2, 3), get(1, 1, 4, 5),
                      op(0, Kind::try_put, 3, Res::ok, 6, 7), get(1, 3, 8, 9)},
                     1));
  // A timed-out put_for fails at a moment the queue was full: before the get.
  CHECK(linearizable({put(0, 1, 0, 1), op(0, Kind::put_for, 2, Res::timeout, 2, 9), get(1, 1, 3, 4)}, 1));
  // A put blocked on a full queue completes once a get makes room.
  CHECK(linearizable({put(0, 1, 0, 1), put(0, 2, 2, 9), get(1, 1, 3, 4), get(1, 2, 10, 11)}, 1));
  // After close: queued items are still delivered, then gets return empty; puts throw.
  CHECK(linearizable(
      {put(0, 1, 0, 1), close(0, 2, 3), get(1, 1, 4, 5), empty(1, Kind::get, 6, 7), empty(1, Kind::try_get, 8, 9),
       empty(1, Kind::get_for, 10, 11), op(0, Kind::try_put, 2, Res::closed, 12, 13),
       op(0, Kind::put_for, 3, Res::closed, 14, 15), op(0, Kind::put, 4, Res::closed, 16, 17), close(1, 18, 19)},
      2));
  // A put overlapping close may succeed or throw.
  CHECK(linearizable({put(0, 1, 0, 5), close(1, 1, 2), get(1, 1, 6, 7)}, 0));
  CHECK(linearizable({op(0, Kind::put, 1, Res::closed, 0, 5), close(1, 1, 2), empty(1, Kind::get, 6, 7)}, 0));
  // A get blocked on an empty queue is woken by close with nothing.
  CHECK(linearizable({empty(0, Kind::get, 0, 5), close(1, 1, 2)}, 0));
  CHECK(linearizable({empty(0, Kind::async_get, 0, 5), close(1, 1, 2)}, 3));
  // Closed beats full: a put on a closed full queue throws.
  CHECK(linearizable({put(0, 1, 0, 1), close(0, 2, 3), op(0, Kind::try_put, 2, Res::closed, 4, 5)}, 1));
  // The timed and non-blocking gets report empty on an open queue.
  CHECK(linearizable({empty(0, Kind::get_for, 0, 1), empty(0, Kind::try_get, 2, 3)}, 0));
  // An empty history, and a single close.
  CHECK(linearizable({}, 0));
  CHECK(linearizable({close(0, 0, 1)}, 0));
}

TEST_CASE("lincheck: histories that are not linearizable are rejected, with an explanation") {
  // A get returning a value never put.
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), get(1, 2, 2, 3)}, 0));
  // Two gets of one value (even overlapping ones).
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), get(1, 1, 2, 5), get(2, 1, 3, 4)}, 0));
  CHECK_FALSE(linearizable({put(0, 1, 0, 10), put(1, 2, 0, 10), get(2, 1, 11, 12), get(2, 1, 13, 14)}, 0));
  // FIFO violated between puts that do not overlap.
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), put(0, 2, 2, 3), get(1, 2, 4, 5), get(1, 1, 6, 7)}, 0));
  // ... while the same order is fine if the puts overlap (see above) or the gets do.
  CHECK(linearizable({put(0, 1, 0, 1), put(0, 2, 2, 3), get(1, 2, 4, 7), get(2, 1, 5, 6)}, 0));
  // A put succeeding after a close it does not overlap; one throwing Closed before any close.
  CHECK_FALSE(linearizable({close(0, 0, 1), put(1, 1, 2, 3)}, 0));
  CHECK_FALSE(linearizable({op(0, Kind::put, 1, Res::closed, 0, 1), close(1, 2, 3)}, 0));
  CHECK_FALSE(linearizable({op(0, Kind::try_put, 1, Res::closed, 0, 1)}, 4));
  // try_put reporting full on an unbounded queue, or on a queue with room.
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), op(0, Kind::try_put, 2, Res::full, 2, 3)}, 0));
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), op(0, Kind::try_put, 2, Res::full, 2, 3)}, 2));
  // A full queue holding more than its capacity.
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), put(0, 2, 2, 3), get(1, 1, 4, 5)}, 1));
  // A put_for timing out though the queue had room for its whole wait.
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), get(1, 1, 2, 3), op(0, Kind::put_for, 2, Res::timeout, 4, 9)}, 1));
  // A timeout on a closed queue (it must throw Closed).
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), close(1, 2, 3), op(0, Kind::put_for, 2, Res::timeout, 4, 9)}, 1));
  // A blocking get returning empty on an open queue; or before draining a closed one.
  CHECK_FALSE(linearizable({empty(0, Kind::get, 0, 1)}, 0));
  CHECK_FALSE(linearizable({empty(0, Kind::async_get, 0, 1), close(1, 2, 3)}, 0));
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), close(0, 2, 3), empty(1, Kind::get, 4, 5)}, 0));
  // try_get / get_for returning empty while an item is queued.
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), empty(1, Kind::try_get, 2, 3)}, 0));
  CHECK_FALSE(linearizable({put(0, 1, 0, 1), close(0, 2, 3), empty(1, Kind::get_for, 4, 5)}, 0));
  // An item lost: the later one is delivered, the earlier never.
  CHECK_FALSE(
      linearizable({put(0, 1, 0, 1), put(0, 2, 2, 3), close(0, 4, 5), get(1, 2, 6, 7), empty(1, Kind::get, 8, 9)}, 0));
  // Impossible results: a blocking put reporting full, a get throwing Closed, a close failing.
  CHECK_FALSE(linearizable({op(0, Kind::put, 1, Res::full, 0, 1)}, 1));
  CHECK_FALSE(linearizable({op(0, Kind::put_for, 1, Res::full, 0, 1)}, 1));
  CHECK_FALSE(linearizable({op(0, Kind::get, 0, Res::closed, 0, 1)}, 1));
  CHECK_FALSE(linearizable({op(0, Kind::close, 0, Res::closed, 0, 1)}, 1));

  // The explanation: the history, the furthest the search got, why nothing fits next.
  History fifo = {put(0, 1, 0, 1), put(0, 2, 2, 3), get(1, 2, 4, 5), get(1, 1, 6, 7)};
  auto v = lincheck::check(fifo, 0);
  REQUIRE_FALSE(v.linearizable);
  CHECK(v.order == std::vector<std::size_t>{0, 1});
  CHECK(v.explanation.find("put(2) -> ok") != std::string::npos);
  CHECK(v.explanation.find("queue after it: [1 2] open") != std::string::npos);
  CHECK(v.explanation.find("#2 get() -> 2: that is not the front item") != std::string::npos);
  MESSAGE("what a failure looks like:\n" << v.explanation);
}

TEST_CASE("lincheck agrees with brute force on random small histories") {
  // Histories built around a real sequential run (linearizable by construction),
  // half of them with one result corrupted (maybe linearizable, maybe not).
  std::mt19937 rng(20240601);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const Kind kinds[] = {Kind::put, Kind::try_put, Kind::put_for, Kind::get, Kind::try_get, Kind::get_for, Kind::close};
  int agree = 0, yes = 0, no = 0, intact = 0, intact_ok = 0;
  const int rounds = scaled(3000);
  for (int round = 0; round < rounds; ++round) {
    const std::size_t cap = static_cast<std::size_t>(pick(3));
    const int n = 1 + pick(6);
    lincheck::QueueModel model(cap);
    lincheck::QueueState s;
    History h;
    int item = 0;
    for (int i = 0; i < n; ++i) {
      Op o;
      o.actor = i;
      o.kind = kinds[pick(7)];
      if (o.kind == Kind::close && pick(3) != 0) o.kind = Kind::try_get;  // keep closes rare
      o.arg = ++item;
      // The result the sequential queue gives (a blocking form that would block
      // gets the timed form's result).
      const bool full = cap != 0 && s.items.size() >= cap;
      if (lincheck::is_put(o.kind)) {
        if (s.closed)
          o.res = Res::closed;
        else if (!full)
          o.res = Res::ok;
        else {
          o.kind = o.kind == Kind::try_put ? Kind::try_put : Kind::put_for;
          o.res = o.kind == Kind::try_put ? Res::full : Res::timeout;
        }
      } else if (lincheck::is_get(o.kind)) {
        if (!s.items.empty()) {
          o.res = Res::value;
          o.value = s.items.front();
        } else {
          o.res = Res::empty;
          if (!s.closed && o.kind == Kind::get) o.kind = Kind::get_for;
        }
      }
      REQUIRE(model.step(s, o) == nullptr);
      // Its linearization point is 30 + 10 * i; the interval stretches around it.
      o.invoke = static_cast<std::uint64_t>(30 + 10 * i - pick(3) * pick(12));
      o.response = static_cast<std::uint64_t>(30 + 10 * i + pick(3) * pick(12));
      h.push_back(o);
    }
    const bool corrupt = pick(2) == 0;
    if (corrupt) {
      Op& o = h[static_cast<std::size_t>(pick(n))];
      switch (pick(3)) {
        case 0:  // a get of some item
          o.value = 1 + pick(item);
          o.res = Res::value;
          if (!lincheck::is_get(o.kind)) o.kind = Kind::get;
          break;
        case 1:  // a put that succeeded, a get that found nothing
          o.res = lincheck::is_put(o.kind) ? Res::ok : Res::empty;
          break;
        default:  // another interval
          std::swap(o.invoke, h[0].invoke);
          if (o.invoke > o.response) std::swap(o.invoke, o.response);
          break;
      }
      if (h[0].invoke > h[0].response) std::swap(h[0].invoke, h[0].response);
    }
    auto v = lincheck::check(h, cap);
    const bool ref = brute_force(h, cap);
    if (v.linearizable == ref)
      ++agree;
    else
      FAIL_CHECK("checker says " << v.linearizable << ", brute force " << ref << "\n" << lincheck::format(h));
    if (v.linearizable) CHECK(valid_witness(h, cap, v.order));
    if (!corrupt) {
      ++intact;
      intact_ok += v.linearizable ? 1 : 0;
    }
    (ref ? yes : no) += 1;
  }
  CHECK(agree == rounds);
  CHECK(intact_ok == intact);  // linearizable by construction
  CHECK(yes > rounds / 4);     // both answers are exercised
  CHECK(no > rounds / 10);
  MESSAGE("brute-force cross-check: " << rounds << " histories, " << yes << " linearizable, " << no << " not");
}

// --- recording histories from real runs ---------------------------------------------------

namespace {

struct Step {
  Kind kind;
  int item = 0;
  std::chrono::microseconds timeout{0};
  int gap = 0;  // spins before the call: staggers the actors so their calls overlap in varied ways
};
using Plan = std::vector<Step>;

struct ActorLog {
  History ops;
  std::string error;  // an unexpected exception
};

/// Shared by the actors of one recording. `idle` counts the actors that have
/// finished or are inside a call that may block indefinitely (put, get and the
/// async forms): once it reaches the number of actors, the main thread may
/// have to close the queue for anything to move again.
struct Recording {
  explicit Recording(int n) : actors(n) {}
  const int actors;
  lincheck::Clock clock;
  std::atomic<int> done{0}, idle{0};
  std::atomic<bool> go{false};

  // The actors wait here until all are started, so they start together rather
  // than one after another as the threads are created.
  void start() { test::atomic_wait(go, false); }
  void enter_idle() {
    if (idle.fetch_add(1) + 1 == actors) idle.notify_one();
  }
  void leave_idle() { idle.fetch_sub(1); }
  void finish() {
    done.fetch_add(1);
    enter_idle();
  }
};

void spin(int n) {
  std::atomic<int> i{0};  // a local atomic: a loop the compiler keeps
  for (int k = 0; k < n; k = i.load(std::memory_order_relaxed)) i.store(k + 1, std::memory_order_relaxed);
}

void set_result(Op& o, const std::optional<int>& r) {
  o.res = r ? Res::value : Res::empty;
  o.value = r ? *r : 0;
}

bool may_block(Kind k) { return k == Kind::put || k == Kind::get || k == Kind::async_put || k == Kind::async_get; }

/// One synchronous operation, timestamped just before the call and just after it returns.
template <class Q>
void perform(Q& q, const Step& s, int actor, Recording& rec, History& out) {
  spin(s.gap);
  Op o;
  o.actor = actor;
  o.kind = s.kind;
  o.arg = s.item;
  const bool blocks = may_block(s.kind);
  if (blocks) rec.enter_idle();
  o.invoke = rec.clock.stamp();
  try {
    switch (s.kind) {
      case Kind::put:
        q.put(s.item);
        o.res = Res::ok;
        break;
      case Kind::try_put: o.res = q.try_put(s.item) ? Res::ok : Res::full; break;
      case Kind::put_for: o.res = q.put_for(s.item, s.timeout) ? Res::ok : Res::timeout; break;
      case Kind::get: set_result(o, q.get()); break;
      case Kind::try_get: set_result(o, q.try_get()); break;
      case Kind::get_for: set_result(o, q.get_for(s.timeout)); break;
      case Kind::close:
        q.close();
        o.res = Res::ok;
        break;
      case Kind::async_put:
      case Kind::async_get: break;  // coroutine actors only
    }
  } catch (const skein::Closed&) {
    o.res = Res::closed;
  }
  o.response = rec.clock.stamp();
  if (blocks) rec.leave_idle();
  out.push_back(o);
}

template <class Q>
void thread_actor(Q& q, const Plan& plan, int actor, Recording& rec, ActorLog& log) {
  rec.start();
  try {
    for (const Step& s : plan) perform(q, s, actor, rec, log.ops);
  } catch (const std::exception& e) {
    log.error = e.what();
  }
  rec.finish();
}

skein::Promise<void> coro_actor(skein::Queue<int>* q, const Plan* plan, int actor, Recording* rec, ActorLog* log) {
  rec->start();
  try {
    for (const Step& s : *plan) {
      if (s.kind != Kind::async_put && s.kind != Kind::async_get) {
        perform(*q, s, actor, *rec, log->ops);
        continue;
      }
      spin(s.gap);
      Op o;
      o.actor = actor;
      o.kind = s.kind;
      o.arg = s.item;
      rec->enter_idle();
      o.invoke = rec->clock.stamp();
      try {
        if (s.kind == Kind::async_put) {
          co_await q->async_put(s.item);
          o.res = Res::ok;
        } else {
          set_result(o, co_await q->async_get());
        }
      } catch (const skein::Closed&) {
        o.res = Res::closed;
      }
      o.response = rec->clock.stamp();
      rec->leave_idle();
      log->ops.push_back(o);
    }
  } catch (const std::exception& e) {
    log->error = e.what();
  }
  rec->finish();
}

/// Long-lived threads that run one job each per round: creating fresh threads
/// for every short history would cost more than the history (and, on a busy
/// machine, a new thread waits longer for a CPU than a woken one).
class Crew {
public:
  explicit Crew(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this, i] { loop(i); });
  }
  ~Crew() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  Crew(const Crew&) = delete;
  Crew& operator=(const Crew&) = delete;

  /// Runs job(k) on member k, for every k < count (count <= size).
  void start(int count, std::function<void(int)> job) {
    {
      std::lock_guard lk(mu_);
      job_ = std::move(job);
      count_ = count;
      busy_ = count;
      ++round_;
    }
    cv_.notify_all();
  }
  /// Until every job of the round has returned.
  void wait() {
    std::unique_lock lk(mu_);
    idle_cv_.wait(lk, [&] { return busy_ == 0; });
  }

private:
  void loop(int i) {
    std::uint64_t seen = 0;
    for (;;) {
      std::function<void(int)>* job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || (round_ != seen && i < count_); });
        if (stop_) return;
        seen = round_;
        job = &job_;  // not replaced before this round's jobs have all returned
      }
      (*job)(i);
      std::lock_guard lk(mu_);
      if (--busy_ == 0) idle_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::function<void(int)> job_;
  std::uint64_t round_ = 0;
  int count_ = 0, busy_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

/// Runs `plans` against `q`, one actor each (a thread, or a coroutine task on
/// the default pool where `coro` says so), and returns the history. Once every
/// actor still running is inside a blocking call and nothing has happened for
/// a moment, the main thread closes the queue (recorded as actor -1), so
/// nothing stays blocked; closing early is harmless, only another history.
template <class Q>
History record(Crew& crew, Q& q, const std::vector<Plan>& plans, const std::vector<bool>& coro, std::string& error,
               bool& closer_closed) {
  const int actors = static_cast<int>(plans.size());
  Recording rec(actors);
  std::vector<ActorLog> logs(plans.size());
  for (std::size_t a = 0; a < plans.size(); ++a) logs[a].ops.reserve(plans[a].size());
  std::vector<int> threads;  // the actors run by the crew
  std::vector<skein::Promise<void>> ps;
  for (int a = 0; a < actors; ++a) {
    const auto i = static_cast<std::size_t>(a);
    if constexpr (std::is_same_v<Q, skein::Queue<int>>) {
      if (coro[i]) {
        ps.push_back(skein::run(coro_actor, &q, &plans[i], a, &rec, &logs[i]));
        continue;
      }
    }
    threads.push_back(a);
  }
  crew.start(static_cast<int>(threads.size()), [&](int k) {
    const int a = threads[static_cast<std::size_t>(k)];
    const auto i = static_cast<std::size_t>(a);
    thread_actor(q, plans[i], a, rec, logs[i]);
  });
  rec.go.store(true);
  rec.go.notify_all();

  History h;
  closer_closed = false;
  while (rec.done.load() < actors) {
    const int idle = rec.idle.load();
    if (idle < actors) {
      test::atomic_wait(rec.idle, idle);
      continue;
    }
    // Everyone still running is in a blocking call: if nothing happens for a
    // moment (a woken call would stamp its response), close.
    const std::uint64_t before = rec.clock.peek();
    std::this_thread::sleep_for(std::chrono::microseconds(30));
    if (rec.done.load() < actors && rec.idle.load() == actors && rec.clock.peek() == before) {
      Op c;
      c.actor = -1;
      c.kind = Kind::close;
      c.invoke = rec.clock.stamp();
      q.close();
      c.response = rec.clock.stamp();
      h.push_back(c);
      closer_closed = true;
      break;
    }
  }
  crew.wait();
  for (auto& p : ps) p.get();
  for (auto& l : logs) {
    h.insert(h.end(), l.ops.begin(), l.ops.end());
    if (!l.error.empty()) error = l.error;
  }
  return h;
}

std::string describe(const std::vector<Plan>& plans, const std::vector<bool>& coro) {
  std::string r;
  for (std::size_t a = 0; a < plans.size(); ++a) {
    r += "  actor " + std::to_string(a) + (coro[a] ? " (coroutine):" : " (thread):");
    for (const Step& s : plans[a]) {
      r += std::string(" ") + lincheck::name(s.kind);
      if (lincheck::is_put(s.kind)) r += "(" + std::to_string(s.item) + ")";
      if (s.kind == Kind::put_for || s.kind == Kind::get_for) r += "[" + std::to_string(s.timeout.count()) + "us]";
    }
    r += "\n";
  }
  return r;
}

/// Random plans: 2-4 actors, 12-24 operations in all, unique items, timeouts
/// of 0, 20 or 200 us, and in half of the histories one close somewhere.
void random_plans(std::mt19937& rng, bool with_coroutines, std::vector<Plan>& plans, std::vector<bool>& coro) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const int actors = 2 + pick(3);
  plans.assign(static_cast<std::size_t>(actors), {});
  coro.assign(static_cast<std::size_t>(actors), false);
  if (with_coroutines) {
    // At least one thread and one coroutine.
    for (int a = 0; a < actors; ++a) coro[static_cast<std::size_t>(a)] = pick(2) == 0;
    coro[0] = false;
    coro[1] = true;
  }
  const int lo = (12 + actors - 1) / actors, hi = 24 / actors;
  const std::chrono::microseconds timeouts[] = {std::chrono::microseconds(0), std::chrono::microseconds(20),
                                                std::chrono::microseconds(200)};
  static const Kind thread_kinds[] = {Kind::put, Kind::try_put, Kind::put_for, Kind::get, Kind::try_get, Kind::get_for};
  static const Kind coro_kinds[] = {Kind::async_put, Kind::async_put, Kind::try_put, Kind::put_for,
                                    Kind::async_get, Kind::async_get, Kind::try_get, Kind::get_for};
  int item = 0;
  for (int a = 0; a < actors; ++a) {
    const auto i = static_cast<std::size_t>(a);
    const int n = lo + pick(hi - lo + 1);
    for (int k = 0; k < n; ++k) {
      Step s;
      s.kind = coro[i] ? coro_kinds[pick(8)] : thread_kinds[pick(6)];
      s.item = ++item;
      s.timeout = timeouts[pick(3)];
      s.gap = pick(2) == 0 ? pick(1000) : 0;
      plans[i].push_back(s);
    }
  }
  if (pick(2) == 0) {
    Plan& p = plans[static_cast<std::size_t>(pick(actors))];
    p[static_cast<std::size_t>(pick(static_cast<int>(p.size())))].kind = Kind::close;
  }
}

struct Figures {
  int histories = 0, not_linearizable = 0, closer_closes = 0;
  std::size_t ops = 0, max_ops = 0, states = 0, max_states = 0;
  std::size_t overlapping = 0;          // operations overlapping another actor's operation
  std::size_t overlapping_quick = 0;    // ... where neither call may block
  std::map<std::string, int> outcomes;  // "put_for -> timeout": how often
  double seconds = 0;

  std::string summary() const {
    std::string r =
        std::to_string(histories) + " histories, " + std::to_string(ops) + " operations (at most " +
        std::to_string(max_ops) + " per history; " + std::to_string(overlapping) + " overlap another actor's, " +
        std::to_string(overlapping_quick) + " of them with neither call a blocking one), " + std::to_string(states) +
        " search states (at most " + std::to_string(max_states) + " per history), " + std::to_string(closer_closes) +
        " closed by the main thread to unblock the rest, " + std::to_string(static_cast<int>(seconds * 1000)) + " ms";
    return r;
  }
  std::string outcome_table() const {
    std::string r;
    for (const auto& [k, n] : outcomes) r += "  " + k + ": " + std::to_string(n) + "\n";
    return r;
  }
};

std::string outcome_of(const Op& o) {
  std::string s = std::string(lincheck::name(o.kind)) + " -> ";
  switch (o.res) {
    case Res::ok: return s + "ok";
    case Res::full: return s + "full";
    case Res::timeout: return s + "timeout";
    case Res::closed: return s + "Closed";
    case Res::value: return s + "item";
    case Res::empty: return s + "empty";
  }
  return s;
}

/// Records `histories` random histories against queues made by `make(cap)`
/// (capacities 1, 2, 0 in turn) and checks each; returns the figures and the
/// explanations of the first few histories that are not linearizable.
template <class MakeQueue>
Figures stress(int histories, bool with_coroutines, std::uint32_t seed, MakeQueue make,
               std::vector<std::string>* failures, int stop_after = 0) {
  Figures f;
  std::mt19937 rng(seed);
  const std::size_t caps[] = {1, 2, 0};
  std::vector<Plan> plans;
  std::vector<bool> coro;
  Crew crew(4);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < histories; ++i) {
    const std::size_t cap = caps[i % 3];
    random_plans(rng, with_coroutines, plans, coro);
    auto q = make(cap);
    std::string error;
    bool closer = false;
    History h = record(crew, *q, plans, coro, error, closer);
    REQUIRE_MESSAGE(error.empty(), "an actor failed: " << error);
    auto v = lincheck::check(h, cap);
    REQUIRE_FALSE(v.exhausted);
    ++f.histories;
    f.closer_closes += closer ? 1 : 0;
    f.ops += h.size();
    f.max_ops = std::max(f.max_ops, h.size());
    f.states += v.states;
    f.max_states = std::max(f.max_states, v.states);
    for (const Op& o : h) {
      ++f.outcomes[outcome_of(o)];
      bool any = false, quick = false;  // overlaps another actor's call; one that cannot block
      for (const Op& p : h)
        if (p.actor != o.actor && p.invoke < o.response && o.invoke < p.response) {
          any = true;
          quick = quick || (!may_block(o.kind) && !may_block(p.kind));
        }
      f.overlapping += any ? 1 : 0;
      f.overlapping_quick += quick ? 1 : 0;
    }
    if (!v.linearizable) {
      ++f.not_linearizable;
      if (failures && failures->size() < 3)
        failures->push_back("history " + std::to_string(i) + " (seed " + std::to_string(seed) + "), plans:\n" +
                            describe(plans, coro) + v.explanation);
      if (stop_after && f.not_linearizable >= stop_after) break;
    } else if (!valid_witness(h, cap, v.order)) {
      FAIL_CHECK("the checker's witness is not a linearization:\n" << lincheck::format(h));
    }
  }
  f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return f;
}

/// Deliberately broken queues, with Queue<int>'s synchronous interface.
/// Every fourth call of the misbehaving kind goes wrong.
class BrokenQueue {
public:
  enum Flaw { drops, swaps };
  BrokenQueue(std::size_t cap, Flaw flaw) : q_(cap), flaw_(flaw) {}

  void put(int v) {
    if (!drop()) q_.put(v);
  }
  bool try_put(int v) { return drop() || q_.try_put(v); }
  template <class D>
  bool put_for(int v, D d) {
    return drop() || q_.put_for(v, d);
  }
  std::optional<int> get() {
    if (auto v = swapped()) return v;
    return q_.get();
  }
  std::optional<int> try_get() {
    if (auto v = swapped()) return v;
    return q_.try_get();
  }
  template <class D>
  std::optional<int> get_for(D d) {
    if (auto v = swapped()) return v;
    return q_.get_for(d);
  }
  void close() { q_.close(); }

private:
  bool misbehave() { return calls_.fetch_add(1) % 4 == 3; }
  // "Succeeds" without placing the item (only while the queue is open: a put
  // on a closed queue still throws).
  bool drop() { return flaw_ == drops && !q_.closed() && misbehave(); }
  // Takes the two front items, returns the second and puts the first back at the end.
  std::optional<int> swapped() {
    if (flaw_ != swaps || !misbehave()) return std::nullopt;
    auto a = q_.try_get();
    if (!a) return std::nullopt;
    auto b = q_.try_get();
    if (!b) return a;
    try {
      (void)q_.try_put(*a);  // full or closed: a is lost, which is a bug too
    } catch (const skein::Closed&) {
    }
    return b;
  }

  skein::Queue<int> q_;
  Flaw flaw_;
  std::atomic<unsigned> calls_{0};
};

/// A second, live queue for select histories: a feeder thread keeps it
/// supplied; every item it feeds must be taken exactly once (by a select that
/// picked it, or by the final drain).
class Decoy {
public:
  Decoy()
      : feeder_([this] {
          try {
            for (long i = 1;; ++i) {
              q.put(static_cast<int>(i % 1000));
              fed_ += i % 1000;
            }
          } catch (const skein::Closed&) {
          }
        }) {}
  ~Decoy() {
    if (feeder_.joinable()) finish();
  }
  void took(const std::optional<int>& v) {
    if (v) taken_ += *v;
  }
  /// Stops the feeder; true if everything it fed was taken exactly once.
  bool finish() {
    q.close();
    feeder_.join();
    while (auto v = q.try_get()) taken_ += *v;
    return fed_.load() == taken_.load();
  }
  skein::Queue<int> q{2};

private:
  std::atomic<long> fed_{0}, taken_{0};
  std::thread feeder_;
};

/// Queue<int>'s synchronous interface with every call made through
/// skein::select, the Decoy's queue being another case of each: a call the
/// decoy wins is repeated (its item counted), so the history is the real
/// queue's. Non-blocking calls use a case_default; timed ones try that way
/// first and then wait with a case_until (a deadline already passed is as
/// ready as the queue, and select picks either at random, where a queue's
/// put_for(v, 0) must succeed if there is room).
class SelectQueue {
public:
  SelectQueue(std::size_t cap, Decoy& d) : q_(cap), d_(d) {}

  void put(int v) {
    for (;;) {
      auto r = skein::select(skein::case_put(q_, v), skein::case_get(d_.q));
      if (r.index() == 0) return;
      d_.took(r.get<1>());
    }
  }
  bool try_put(int v) {
    for (;;) {
      auto r = skein::select(skein::case_put(q_, v), skein::case_get(d_.q), skein::case_default());
      if (r.index() != 1) return r.index() == 0;
      d_.took(r.get<1>());
    }
  }
  template <class D>
  bool put_for(int v, D d) {
    const std::chrono::steady_clock::time_point deadline =
        std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
    if (try_put(v)) return true;
    for (;;) {
      auto r = skein::select(skein::case_put(q_, v), skein::case_get(d_.q), skein::case_until(deadline));
      if (r.index() != 1) return r.index() == 0;
      d_.took(r.get<1>());
    }
  }
  std::optional<int> get() {
    for (;;) {
      auto r = skein::select(skein::case_get(q_), skein::case_get(d_.q));
      if (r.index() == 0) return r.get<0>();
      d_.took(r.get<1>());
    }
  }
  std::optional<int> try_get() {
    for (;;) {
      auto r = skein::select(skein::case_get(q_), skein::case_get(d_.q), skein::case_default());
      if (r.index() == 0) return r.get<0>();
      if (r.index() == 2) return std::nullopt;
      d_.took(r.get<1>());
    }
  }
  template <class D>
  std::optional<int> get_for(D d) {
    const std::chrono::steady_clock::time_point deadline =
        std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
    if (auto v = try_get(); v || q_.closed()) return v;
    for (;;) {
      auto r = skein::select(skein::case_get(q_), skein::case_get(d_.q), skein::case_until(deadline));
      if (r.index() == 0) return r.get<0>();
      if (r.index() == 2) return std::nullopt;
      d_.took(r.get<1>());
    }
  }
  void close() { q_.close(); }

private:
  skein::Queue<int> q_;
  Decoy& d_;
};
}  // namespace

// For a longer soak: -DSKEIN_LIN_ROUNDS=10 (times as many histories), -DSKEIN_LIN_SEED=n (other plans).
#ifndef SKEIN_LIN_ROUNDS
#define SKEIN_LIN_ROUNDS 1
#endif
#ifndef SKEIN_LIN_SEED
#define SKEIN_LIN_SEED 0
#endif

static std::unique_ptr<skein::Queue<int>> make_queue(std::size_t cap) {
  return std::make_unique<skein::Queue<int>>(cap);
}

TEST_CASE("Queue<int>: thousands of short histories from racing threads are all linearizable") {
  Watchdog wd(300s);
  std::vector<std::string> failures;
  auto f = stress(scaled(3000) * SKEIN_LIN_ROUNDS, false, 1 + SKEIN_LIN_SEED, make_queue, &failures);
  for (const auto& s : failures) FAIL_CHECK(s);
  CHECK(f.not_linearizable == 0);
  MESSAGE("threads: " << f.summary() << "\noutcomes:\n" << f.outcome_table());
  // The runs reached the interesting results, not only the easy ones.
  CHECK(f.outcomes["put -> Closed"] > 0);
  CHECK(f.outcomes["try_put -> full"] > 0);
  CHECK(f.outcomes["put_for -> timeout"] > 0);
  CHECK(f.outcomes["get -> empty"] > 0);
  CHECK(f.outcomes["get_for -> empty"] > 0);
}

TEST_CASE("Queue<int>: histories from threads and coroutines (async_put/async_get) are all linearizable") {
  Watchdog wd(300s);
  std::vector<std::string> failures;
  auto f = stress(scaled(2000) * SKEIN_LIN_ROUNDS, true, 2 + SKEIN_LIN_SEED, make_queue, &failures);
  for (const auto& s : failures) FAIL_CHECK(s);
  CHECK(f.not_linearizable == 0);
  MESSAGE("threads and coroutines: " << f.summary() << "\noutcomes:\n" << f.outcome_table());
  CHECK(f.outcomes["async_put -> ok"] > 0);
  CHECK(f.outcomes["async_get -> item"] > 0);
  CHECK(f.outcomes["async_put -> Closed"] + f.outcomes["async_get -> empty"] > 0);
}

TEST_CASE("a queue that drops or reorders items, recorded the same way, is caught") {
  Watchdog wd(300s);
  for (auto flaw : {BrokenQueue::drops, BrokenQueue::swaps}) {
    CAPTURE(flaw);
    std::vector<std::string> failures;
    auto f = stress(
        std::max(scaled(2000), 200), false, 3,
        [flaw](std::size_t cap) { return std::make_unique<BrokenQueue>(cap, flaw); }, &failures, 20);
    CHECK(f.not_linearizable > 0);
    MESSAGE((flaw == BrokenQueue::drops ? "dropping" : "swapping")
            << " queue: " << f.not_linearizable << " of " << f.histories << " histories caught; the first:\n"
            << (failures.empty() ? "" : failures.front()));
  }
}

TEST_CASE("select: histories of a queue used only through select, with a second live queue racing, are linearizable") {
  Watchdog wd(300s);
  Decoy decoy;
  std::vector<std::string> failures;
  auto f = stress(
      scaled(1500) * SKEIN_LIN_ROUNDS, false, 4 + SKEIN_LIN_SEED,
      [&decoy](std::size_t cap) { return std::make_unique<SelectQueue>(cap, decoy); }, &failures);
  for (const auto& s : failures) FAIL_CHECK(s);
  CHECK(f.not_linearizable == 0);
  CHECK(decoy.finish());  // and the other queue's items were each taken exactly once
  MESSAGE("select: " << f.summary() << "\noutcomes:\n" << f.outcome_table());
  CHECK(f.outcomes["put -> Closed"] > 0);
  CHECK(f.outcomes["try_put -> full"] > 0);
  CHECK(f.outcomes["put_for -> timeout"] > 0);
  CHECK(f.outcomes["get_for -> empty"] > 0);
}
