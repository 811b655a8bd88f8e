// WaitGroup: the counter (add/done/count), wait/wait_for/async_wait for
// threads and coroutines, misuse (below zero), cancellation and reuse as a
// barrier over many rounds.
#include "support/common.hpp"

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

using namespace test;
using skein::Promise;

TEST_CASE("a new WaitGroup is at zero and every wait returns at once") {
  skein::WaitGroup wg;
  CHECK(wg.count() == 0);
  wg.wait();
  CHECK(wg.wait_for(0ms));
  CHECK(wg.wait_for(1h));
  auto p = [](skein::WaitGroup& g) -> Promise<int> {
    co_await g.async_wait();
    co_return 1;
  }(wg);
  CHECK(p.ready());  // nothing to wait for: no suspension
  CHECK(p.get() == 1);
}

TEST_CASE("add, done and count track the counter; add defaults to 1 and accepts negative deltas") {
  skein::WaitGroup wg;
  wg.add();
  CHECK(wg.count() == 1);
  wg.add(4);
  CHECK(wg.count() == 5);
  wg.done();
  CHECK(wg.count() == 4);
  wg.add(-3);
  CHECK(wg.count() == 1);
  wg.add(0);
  CHECK(wg.count() == 1);
  CHECK_FALSE(wg.wait_for(1ms));
  wg.done();
  CHECK(wg.count() == 0);
  CHECK(wg.wait_for(0ms));
  wg.add(0);  // adding zero at zero is harmless
  CHECK(wg.count() == 0);
}

TEST_CASE("a huge add is a counter overflow, not a signed overflow, and leaves the counter unchanged") {
  // Found by fuzz/primitives_fuzz: add(INT64_MAX) on a non-zero counter
  // overflowed the int64 sum (UBSan) and then reported a negative counter.
  skein::WaitGroup wg;
  wg.add(1);
  CHECK_THROWS_WITH_AS(wg.add(std::numeric_limits<std::int64_t>::max()), "WaitGroup counter overflow",
                       skein::UsageError);
  CHECK_THROWS_WITH_AS(wg.add(std::numeric_limits<std::int64_t>::min()), "negative WaitGroup counter",
                       skein::UsageError);
  CHECK(wg.count() == 1);
  wg.add(0x7ffffffe);  // up to the documented maximum is fine
  CHECK_THROWS_WITH_AS(wg.add(1), "WaitGroup counter overflow", skein::UsageError);
  wg.add(-0x7fffffff);
  CHECK(wg.count() == 0);
}

TEST_CASE("going below zero is a UsageError and leaves the counter unchanged") {
  skein::WaitGroup wg;
  CHECK_THROWS_WITH_AS(wg.done(), "negative WaitGroup counter", skein::UsageError);
  CHECK(wg.count() == 0);
  CHECK_THROWS_WITH_AS(wg.add(-1), "negative WaitGroup counter", skein::UsageError);
  CHECK(wg.count() == 0);
  wg.add(2);
  CHECK_THROWS_WITH_AS(wg.add(-3), "negative WaitGroup counter", skein::UsageError);
  CHECK(wg.count() == 2);
  // A waiter is not released by the failed add, and the group still works after it.
  Event returned;
  std::thread waiter([&] {
    wg.wait();
    returned.set();
  });
  CHECK_FALSE(returned.wait_for(20ms));
  wg.add(-2);
  CHECK(returned.wait_for(10s));
  waiter.join();
  CHECK(wg.count() == 0);
  CHECK_THROWS_WITH_AS(wg.done(), "negative WaitGroup counter", skein::UsageError);
  CHECK(wg.count() == 0);
}

TEST_CASE("wait blocks a thread until the last done") {
  Watchdog wd(30s);
  skein::WaitGroup wg;
  wg.add(2);
  Event returned;
  std::thread waiter([&] {
    wg.wait();
    CHECK(wg.count() == 0);
    returned.set();
  });
  CHECK_FALSE(returned.wait_for(20ms));
  wg.done();
  CHECK_FALSE(returned.wait_for(20ms));
  wg.done();
  CHECK(returned.wait_for(10s));
  waiter.join();
}

TEST_CASE("wait_for returns false on timeout, changes nothing, and true once the counter reaches zero") {
  Watchdog wd(30s);
  skein::WaitGroup wg;
  wg.add();
  CHECK_FALSE(wg.wait_for(10ms));
  CHECK_FALSE(wg.wait_for(std::chrono::microseconds(1)));
  CHECK(wg.count() == 1);
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    wg.done();
  });
  CHECK(wg.wait_for(30s));
  t.join();
  CHECK(wg.count() == 0);
}

TEST_CASE("async_wait suspends a coroutine until the counter reaches zero") {
  Watchdog wd(30s);
  skein::WaitGroup wg;
  wg.add(3);
  std::atomic<int> stage{0};
  auto p = skein::run([&]() -> Promise<void> {
    stage = 1;
    co_await wg.async_wait();
    CHECK(wg.count() == 0);
    stage = 2;
  });
  REQUIRE(eventually([&] { return stage.load() == 1; }));
  wg.done();
  wg.done();
  CHECK_FALSE(p.wait_for(20ms));
  CHECK(stage.load() == 1);
  wg.done();
  p.get();
  CHECK(stage.load() == 2);
}

TEST_CASE("one done releases every waiting thread, pool task and coroutine") {
  Watchdog wd(30s);
  skein::ThreadPool pool(2);
  skein::WaitGroup wg;
  wg.add();
  std::atomic<int> released{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      wg.wait();
      ++released;
    });
  std::vector<Promise<void>> ps;
  for (int i = 0; i < 20; ++i)
    ps.push_back(skein::run(pool, [&] {
      wg.wait();
      ++released;
    }));
  for (int i = 0; i < 50; ++i)
    ps.push_back(skein::run(pool, [&]() -> Promise<void> {
      co_await wg.async_wait();
      ++released;
    }));
  CHECK_FALSE(eventually([&] { return released.load() > 0; }, 20ms));
  wg.done();
  for (auto& p : ps) p.get();
  for (auto& t : threads) t.join();
  CHECK(released.load() == 74);
}

TEST_CASE("the Go pattern: add before starting each task, done in it, wait for all") {
  Watchdog wd(60s);
  const int n = scaled(2000);
  skein::WaitGroup wg;
  skein::Atomic<> sum;
  for (int i = 1; i <= n; ++i) {
    wg.add();
    if (i % 2)
      skein::spawn(
          [&](int x) {
            sum.add(x);
            wg.done();
          },
          i);
    else
      skein::spawn(
          [&](int x) -> Promise<void> {
            co_await skein::async_sleep(std::chrono::microseconds(x % 50));
            sum.add(x);
            wg.done();
          },
          i);
  }
  wg.wait();
  CHECK(wg.count() == 0);
  CHECK(sum.get() == std::int64_t(n) * (n + 1) / 2);
}

TEST_CASE("a WaitGroup reused as a barrier over several rounds releases each round only when it is complete") {
  Watchdog wd(120s);
  const int rounds = scaled(3000);
  const int per_round = 3;
  skein::ThreadPool pool(2);
  skein::WaitGroup wg;
  std::atomic<int> work{0};
  for (int r = 1; r <= rounds; ++r) {
    wg.add(per_round);
    for (int i = 0; i < per_round; ++i)
      (void)skein::run(pool, [&] {
        work.fetch_add(1);
        wg.done();
      });
    if (r % 2)
      wg.wait();
    else
      skein::run([&]() -> Promise<void> { co_await wg.async_wait(); }).get();
    // Every done() of this round happened before the wait returned.
    REQUIRE(work.load() == r * per_round);
    CHECK(wg.count() == 0);
  }
}

TEST_CASE("a WaitGroup reused by threads: a straggling done of one round never releases the next round's wait") {
  Watchdog wd(120s);
  // Two worker threads finish each round; the main thread starts the next
  // round as soon as its wait returns, racing the last done() of the round.
  const int rounds = scaled(20000);
  skein::WaitGroup wg;
  std::atomic<int> round{0};
  std::atomic<int> work{0};
  std::atomic<bool> stop{false};
  auto worker = [&] {
    int seen = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      int r = round.load();
      if (r == seen) {
        std::this_thread::yield();
        continue;
      }
      seen = r;
      work.fetch_add(1);
      wg.done();
    }
  };
  std::thread a(worker), b(worker);
  for (int r = 1; r <= rounds; ++r) {
    wg.add(2);
    round.store(r);
    wg.wait();
    if (work.load() != 2 * r) {
      FAIL_CHECK("round " << r << ": wait returned with " << work.load() << " of " << 2 * r
                          << " done() calls made (count " << wg.count() << ")");
      // Let the round finish so that the workers stay in step.
      while (work.load() != 2 * r) std::this_thread::yield();
      while (wg.count() != 0) std::this_thread::yield();
    }
  }
  stop = true;
  a.join();
  b.join();
  CHECK(work.load() == 2 * rounds);
  CHECK(wg.count() == 0);
}

TEST_CASE("a blocked wait in a cancelled context throws Cancelled, for threads and coroutines") {
  Watchdog wd(30s);
  skein::WaitGroup wg;
  wg.add();
  skein::Context ctx;
  Event started_a, started_b;
  auto a = ctx.run([&] {
    started_a.set();
    wg.wait();
  });
  auto b = ctx.run([&]() -> Promise<void> {
    started_b.set();
    co_await wg.async_wait();
  });
  auto c = ctx.run([&] { return wg.wait_for(60s); });
  started_a.wait();
  started_b.wait();
  std::this_thread::sleep_for(10ms);
  CHECK_FALSE(a.ready());
  CHECK_FALSE(b.ready());
  ctx.cancel();
  CHECK_THROWS_AS(a.get(), skein::Cancelled);
  CHECK_THROWS_AS(b.get(), skein::Cancelled);
  CHECK_THROWS_AS(c.get(), skein::Cancelled);
  // The counter is untouched and the group still works.
  CHECK(wg.count() == 1);
  auto later = skein::run([&]() -> Promise<void> { co_await wg.async_wait(); });
  wg.done();
  later.get();
  CHECK(wg.count() == 0);
}

TEST_CASE("waiters cancelled while others keep waiting: the others are still released") {
  Watchdog wd(30s);
  skein::WaitGroup wg;
  wg.add();
  skein::Context ctx;
  std::vector<Promise<void>> cancelled, kept;
  for (int i = 0; i < 10; ++i) {
    cancelled.push_back(ctx.run([&]() -> Promise<void> { co_await wg.async_wait(); }));
    kept.push_back(skein::run([&]() -> Promise<void> { co_await wg.async_wait(); }));
  }
  std::thread blocked([&] { wg.wait(); });
  ctx.cancel();
  for (auto& p : cancelled) CHECK_THROWS_AS(p.get(), skein::Cancelled);
  for (auto& p : kept) CHECK_FALSE(p.ready());
  wg.done();
  for (auto& p : kept) p.get();
  blocked.join();
}

TEST_CASE("cancel racing the last done: the wait either completes or throws Cancelled, never hangs") {
  Watchdog wd(120s);
  const int n = scaled(5000);
  int completed = 0, cancels = 0;
  for (int i = 0; i < n; ++i) {
    skein::WaitGroup wg;
    wg.add();
    skein::Context ctx;
    auto p = (i % 2) ? ctx.run([&wg] { wg.wait(); }) : ctx.run([&wg]() -> Promise<void> { co_await wg.async_wait(); });
    std::thread t([&] { wg.done(); });
    ctx.cancel();
    t.join();
    try {
      p.get();
      ++completed;
    } catch (const skein::Cancelled&) {
      ++cancels;
    }
    CHECK(wg.count() == 0);
  }
  CHECK(completed + cancels == n);
}

TEST_CASE("a WaitGroup may be destroyed as soon as wait returns (the Go pattern)") {
  Watchdog wd(120s);
  // The last done() may still be inside add() when wait() returns; it must
  // not touch the WaitGroup any more (ASan reports it if it does).
  const int n = scaled(5000);
  for (int i = 0; i < n; ++i) {
    auto wg = std::make_unique<skein::WaitGroup>();
    wg->add(2);
    std::thread t([g = wg.get()] { g->done(); });
    (void)skein::run([g = wg.get()] { g->done(); });
    if (i % 3 == 0) {
      while (wg->count() != 0) std::this_thread::yield();  // take the fast path of wait()
      wg->wait();
    } else if (i % 3 == 1) {
      wg->wait();
    } else {
      skein::run([g = wg.get()]() -> Promise<void> { co_await g->async_wait(); }).get();
    }
    wg.reset();
    t.join();
  }
}
