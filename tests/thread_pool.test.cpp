// ThreadPool: scheduling, blocking tasks (goroutine semantics), the thread
// bound, idle behaviour and shutdown.
#include "support/common.hpp"

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <sys/resource.h>
#endif

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace test;
using skein::Promise;

namespace {
long blocking_fib(int n) {
  if (n < 2) return n;
  auto a = skein::run(blocking_fib, n - 1);
  auto b = skein::run(blocking_fib, n - 2);
  return a.get() + b.get();
}

/// The process's CPU time (user + system), in seconds.
double cpu_seconds() {
#if defined(_WIN32)
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user)) return 0;
  auto ticks = [](const FILETIME& f) {
    return (static_cast<unsigned long long>(f.dwHighDateTime) << 32) | f.dwLowDateTime;
  };
  return static_cast<double>(ticks(kernel) + ticks(user)) / 1e7;  // 100 ns units
#else
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
#endif
}
}  // namespace

TEST_CASE("a pool needs at least one thread") {
  CHECK_THROWS_WITH_AS(skein::ThreadPool(0), "a ThreadPool needs at least one thread", skein::UsageError);
  CHECK_THROWS_AS(skein::ThreadPool(4, 2), skein::UsageError);
  skein::ThreadPool p(3);
  CHECK(p.size() == 3);
  CHECK(p.max_threads() >= 3);
}

TEST_CASE("default_pool is sized to cpus()") {
  CHECK(skein::cpus() >= 1);
  CHECK(skein::default_pool().size() == skein::cpus());
  CHECK(&skein::default_pool() == &skein::default_pool());
}

TEST_CASE("co_await pool.schedule() hops onto the pool's threads") {
  skein::ThreadPool pool(2);
  auto main_id = std::this_thread::get_id();
  auto p = [](skein::ThreadPool& pool) -> Promise<std::thread::id> {
    co_await pool.schedule();
    co_return std::this_thread::get_id();
  }(pool);
  auto id = p.get();
  CHECK(id != main_id);
  std::set<std::thread::id> ids;
  std::mutex mu;
  std::vector<Promise<void>> ps;
  for (int i = 0; i < 200; ++i)
    ps.push_back(skein::run(pool, [&] {
      std::lock_guard lk(mu);
      ids.insert(std::this_thread::get_id());
    }));
  for (auto& q : ps) q.get();
  CHECK(ids.count(main_id) == 0);
  CHECK(ids.size() <= pool.thread_count());
}

TEST_CASE("post runs a callable on the pool") {
  skein::ThreadPool pool(2);
  Event done;
  pool.post([&] { done.set(); });
  CHECK(done.wait_for(10s));
}

TEST_CASE("1,000 tasks blocked on one event on a 2-thread pool do not starve the task that releases them") {
  Watchdog wd(120s);
  const int n = scaled(1000);
  skein::ThreadPool pool(2);
  skein::Resolver<int> gate;
  auto ev = gate.promise();
  std::vector<Promise<int>> blocked;
  for (int i = 0; i < n; ++i) blocked.push_back(skein::run(pool, [ev] { return ev.get(); }));
  auto releaser = skein::run(pool, [&gate] { gate.resolve(1); });
  releaser.get();
  long sum = 0;
  for (auto& p : blocked) sum += p.get();
  CHECK(sum == n);
  CHECK(pool.thread_count() <= pool.max_threads());
}

TEST_CASE("a recursive fib that blocks in get() on its children completes on a 1-thread pool") {
  Watchdog wd(120s);
  skein::ThreadPool pool(1);
  CHECK(skein::run(pool, blocking_fib, 15).get() == 610);
}

TEST_CASE("past the thread bound a blocking wait fails with UsageError instead of hanging") {
  Watchdog wd(60s);
  skein::ThreadPool pool(1, 3);
  skein::Resolver<void> gate;
  auto ev = gate.promise();
  std::vector<Promise<void>> ps;
  for (int i = 0; i < 3; ++i) ps.push_back(skein::run(pool, [ev] { ev.get(); }));
  // Two tasks block (the first thread hands its slot to a second, the second
  // to a third); the third task's wait would need a fourth thread.
  auto failed = [&] {
    int n = 0;
    for (auto& p : ps) n += p.ready();
    return n;
  };
  REQUIRE(eventually([&] { return failed() == 1; }));
  int usage_errors = 0;
  for (auto& p : ps)
    if (p.ready()) {
      CHECK_THROWS_WITH_AS(p.get(), doctest::Contains("bound of 3 threads"), skein::UsageError);
      ++usage_errors;
    }
  CHECK(usage_errors == 1);
  gate.resolve();
  for (auto& p : ps) (void)p.wait_for(10s);
  CHECK(pool.thread_count() == 3);
}

TEST_CASE("an idle pool burns no CPU") {
  skein::ThreadPool pool(2);
  skein::run(pool, [] {}).get();
  std::this_thread::sleep_for(50ms);  // let the workers park
  double before = cpu_seconds();
  std::this_thread::sleep_for(300ms);
  double used = cpu_seconds() - before;
  CHECK(used < 0.1);  // parked workers: essentially zero (generous margin for a noisy VM)
}

TEST_CASE("destroying a pool with 100,000 queued tasks runs or cancels each, promptly") {
  Watchdog wd(60s);
  const int n = scaled(100000);
  std::atomic<int> ran{0};
  std::vector<Promise<void>> holders, ps;
  ps.reserve(n);
  {
    skein::ThreadPool pool(2);
    // Two busy tasks occupy both slots (spinning, not blocking, so no spare
    // thread takes over) until the pool's destruction cancels them.
    for (int i = 0; i < 2; ++i)
      holders.push_back(skein::run(pool, [] {
        while (!skein::this_task::cancelled()) std::this_thread::yield();
      }));
    for (int i = 0; i < n; ++i) ps.push_back(skein::run(pool, [&ran] { ++ran; }));
  }
  int cancelled = 0, ok = 0;
  for (auto& p : ps) {
    REQUIRE(p.ready());
    try {
      p.get();
      ++ok;
    } catch (const skein::Cancelled&) {
      ++cancelled;
    }
  }
  CHECK(ok + cancelled == n);
  CHECK(ok == ran.load());
  CHECK(cancelled > 0);
  for (auto& h : holders) {  // a holder ran until cancelled, or never started
    REQUIRE(h.ready());
    try {
      h.get();
    } catch (const skein::Cancelled&) {
    }
  }
}

TEST_CASE("destroying a pool cancels tasks blocked in get, sleep_for and async_sleep") {
  Watchdog wd(30s);
  std::vector<Promise<void>> ps;
  skein::Resolver<void> never;
  {
    skein::ThreadPool pool(2);
    auto ev = never.promise();
    ps.push_back(skein::run(pool, [ev] { ev.get(); }));
    ps.push_back(skein::run(pool, [] { skein::sleep_for(60s); }));
    ps.push_back(skein::run(pool, []() -> Promise<void> { co_await skein::async_sleep(60s); }));
    ps.push_back(skein::run(pool, [ev]() -> Promise<void> { co_await ev; }));
    std::this_thread::sleep_for(50ms);
  }
  for (auto& p : ps) CHECK_THROWS_AS(p.get(), skein::Cancelled);
}

TEST_CASE("stress: many pools created and destroyed under load") {
  Watchdog wd(120s);
  for (int round = 0; round < scaled(50); ++round) {
    std::atomic<long> sum{0};
    {
      skein::ThreadPool pool(2);
      for (int i = 0; i < 1000; ++i) pool.post([&sum, i] { sum += i; });
      while (sum.load() != 999L * 1000 / 2) std::this_thread::yield();
    }
    CHECK(sum.load() == 999L * 1000 / 2);
  }
}

TEST_CASE("stress: fork-join, blocking hand-offs, cancellation and timers across pool lifetimes") {
  // Found a use-after-free in the final awaiter (a waiter still arming was
  // notified twice) and in the timer thread (a cancelled entry's deadline
  // read after its frame was freed).
  Watchdog wd(300s);
  struct Fib {
    static Promise<int> go(skein::ThreadPool& pool, int n) {
      if (n < 2) co_return n;
      auto a = skein::run(pool, [&pool, n] { return go(pool, n - 1); });
      int b = co_await go(pool, n - 2);
      co_return (co_await a) + b;
    }
  };
  skein::set_unhandled_error_handler([](std::exception_ptr) {});
  std::atomic<long> sum{0};
  long expected = 0;
  for (int it = 0; it < scaled(40); ++it) {
    auto pool = std::make_unique<skein::ThreadPool>(3, 64);
    CHECK(skein::run(*pool, [&] { return Fib::go(*pool, 14); }).get() == 377);
    skein::Context ctx;
    std::vector<Promise<void>> ps;
    for (int i = 0; i < 20; ++i)
      ps.push_back(ctx.run(*pool, [p = pool.get(), i, &sum]() -> Promise<void> {
        auto inner = skein::run(*p, [i] {
          skein::sleep_for(std::chrono::microseconds(100 * (i % 5)));
          return i;
        });
        if (i % 2)
          (void)inner.get();
        else
          (void)co_await inner;
        co_await skein::async_sleep(std::chrono::milliseconds(i % 3));
        sum += i;
      }));
    if (it % 3 == 0) {
      ctx.cancel();
    } else {
      expected += 190;
    }
    for (auto& p : ps) try {
        p.get();
      } catch (const skein::Cancelled&) {
      }
    for (int i = 0; i < 10; ++i) skein::spawn(*pool, [] { skein::sleep_for(50ms); });
    for (int i = 0; i < 10; ++i) skein::spawn(*pool, []() -> Promise<void> { co_await skein::async_sleep(1s); });
    pool.reset();
  }
  skein::set_unhandled_error_handler(nullptr);
  // Cancelled rounds may still have completed some tasks before the cancel.
  CHECK(sum.load() >= expected);
}

TEST_CASE("a BlockingRegion around a foreign blocking call keeps a 1-thread pool running") {
  Watchdog wd(30s);
  skein::ThreadPool pool(1);
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  // The first task blocks in a std::condition_variable, which skein cannot see;
  // the region hands the only slot to a spare thread, so the second task runs
  // and releases it.
  auto waiter = skein::run(pool, [&] {
    skein::BlockingRegion region;
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return go; });
  });
  auto releaser = skein::run(pool, [&] {
    std::lock_guard lk(mu);
    go = true;
    cv.notify_all();
  });
  releaser.get();
  waiter.get();
  CHECK(pool.thread_count() == 2);
}

TEST_CASE("tasks started from threads outside the pool, more threads than it keeps deques for: each runs once") {
  // The first threads get deques of their own in the pool, the rest use the
  // injection queue.
  Watchdog wd(60s, "external starts");
  skein::ThreadPool pool(1);
  constexpr int kThreads = 12, kEach = 2000;
  std::vector<std::vector<int>> seen(kThreads);  // written by the one worker only
  std::vector<std::thread> starters;
  std::vector<std::vector<Promise<void>>> promises(kThreads);
  for (int t = 0; t < kThreads; ++t)
    starters.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) promises[t].push_back(skein::run(pool, [&seen, t, i] { seen[t].push_back(i); }));
    });
  for (auto& s : starters) s.join();
  for (auto& ps : promises)
    for (auto& p : ps) p.get();
  for (int t = 0; t < kThreads; ++t) {
    REQUIRE(seen[t].size() == kEach);
    std::sort(seen[t].begin(), seen[t].end());
    for (int i = 0; i < kEach; ++i) REQUIRE(seen[t][i] == i);
  }
}

TEST_CASE("a task started from outside is not starved by a worker whose own deque never empties") {
  Watchdog wd(60s, "external starvation");
  skein::ThreadPool pool(1);
  std::atomic<bool> outside_ran{false};
  std::atomic<long> rounds{0};
  auto busy = skein::run(pool, [&]() -> Promise<void> {
    // Every round puts a child on this worker's own deque and waits for it.
    while (!outside_ran.load()) {
      co_await skein::run(pool, [] {});
      rounds.fetch_add(1);
    }
  });
  while (rounds.load() < 100) std::this_thread::yield();  // the worker is busy with its own deque
  skein::run(pool, [&] { outside_ran = true; }).get();
  busy.get();
  CHECK(outside_ran.load());
}

#if defined(__linux__)
TEST_CASE("pool threads are named skein-worker, the timer thread skein-timer") {
  auto comm_of = [](long tid) {
    std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/comm");
    std::string name;
    std::getline(f, name);
    return name;
  };
  skein::ThreadPool pool(1);
  CHECK(skein::run(pool, [&] { return comm_of(this_thread_tid()); }).get() == "skein-worker");
  // The timer thread runs a sleep's wake-up: find it among the process's threads.
  skein::run(pool, []() -> skein::Promise<void> { co_await skein::async_sleep(1ms); }).get();
  bool timer_named = false;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task"))
    if (comm_of(std::stol(e.path().filename().string())) == "skein-timer") timer_named = true;
  CHECK(timer_named);
}
#endif
