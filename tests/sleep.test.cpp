// sleep_for / async_sleep: timing, cancellation, and cost.
#include "support/common.hpp"

#include <vector>

using namespace test;
using skein::Promise;

TEST_CASE("sleep_for and async_sleep wait at least the duration") {
  auto t0 = std::chrono::steady_clock::now();
  skein::sleep_for(20ms);
  CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
  auto t1 = std::chrono::steady_clock::now();
  [&]() -> Promise<void> { co_await skein::async_sleep(20ms); }().get();
  CHECK(std::chrono::steady_clock::now() - t1 >= 20ms);
  [&]() -> Promise<void> {
    co_await skein::async_sleep(0ms);
    co_await skein::async_sleep(-5ms);
  }()
               .get();
}

TEST_CASE("async_sleep in a pool task resumes on the pool") {
  skein::ThreadPool pool(2);
  auto p = skein::run(pool, [&pool]() -> Promise<bool> {
    co_await skein::async_sleep(5ms);
    co_return skein::detail::core_of(pool).on_worker();
  });
  CHECK(p.get());
}

TEST_CASE("a context timeout cancels sleep_for(60s) and async_sleep(60s) promptly") {
  Watchdog wd(20s);  // 60 s sleeps that were not cancelled would trip this
  auto ctx = skein::Context::with_timeout(50ms);
  auto a = ctx.run([] { skein::sleep_for(60s); });
  auto b = ctx.run([]() -> Promise<void> { co_await skein::async_sleep(60s); });
  CHECK_THROWS_AS(a.get(), skein::Cancelled);
  CHECK_THROWS_AS(b.get(), skein::Cancelled);
  CHECK(ctx.timed_out());
}

TEST_CASE("100,000 sleeping coroutines cost no threads") {
  Watchdog wd(60s);
  const int n = scaled(100000);
  skein::ThreadPool pool(2);
  std::atomic<int> woke{0};
  std::vector<Promise<void>> ps;
  ps.reserve(n);
  for (int i = 0; i < n; ++i)
    ps.push_back(skein::run(pool, [&woke, i]() -> Promise<void> {
      co_await skein::async_sleep(std::chrono::milliseconds(100 + i % 50));
      ++woke;
    }));
  CHECK(pool.thread_count() == 2);
  for (auto& p : ps) p.get();
  CHECK(woke.load() == n);
  CHECK(pool.thread_count() == 2);
}

TEST_CASE("timers fire in deadline order") {
  // Absolute deadlines from one base (tasks that start late must not shift
  // them), and a one-thread pool so that the wake-ups run in firing order.
  skein::ThreadPool pool(1);
  std::mutex mu;
  std::vector<int> order;
  std::vector<Promise<void>> ps;
  const auto base = std::chrono::steady_clock::now() + 200ms;
  for (int i : {5, 1, 4, 2, 3})
    ps.push_back(skein::run(pool, [i, base, &mu, &order]() -> Promise<void> {
      co_await skein::async_sleep_until(base + std::chrono::milliseconds(i * 15));
      std::lock_guard lk(mu);
      order.push_back(i);
    }));
  for (auto& p : ps) p.get();
  CHECK(order == std::vector<int>{1, 2, 3, 4, 5});
}
