// Atomic<T>: every member, cas success and failure, exchange, and exact totals
// under concurrent adds from threads, pool tasks and coroutines.
#include "support/common.hpp"

#include <cstdint>
#include <type_traits>
#include <vector>

using namespace test;
using skein::Promise;

TEST_CASE("an Atomic starts at its initial value, 0 by default, as a 64-bit integer") {
  skein::Atomic<> zero;
  CHECK(zero.get() == 0);
  CHECK(zero.load() == 0);
  static_assert(std::is_same_v<decltype(zero.get()), std::int64_t>);
  skein::Atomic<> five(5);
  CHECK(five.get() == 5);
  skein::Atomic<int> negative(-3);
  CHECK(negative.load() == -3);
  static_assert(!std::is_copy_constructible_v<skein::Atomic<>>);
  static_assert(!std::is_copy_assignable_v<skein::Atomic<>>);
}

TEST_CASE("add returns the new value; the default delta is 1; negative deltas subtract") {
  skein::Atomic<> a(10);
  CHECK(a.add() == 11);
  CHECK(a.add(5) == 16);
  CHECK(a.add(-20) == -4);
  CHECK(a.add(0) == -4);
  CHECK(a.get() == -4);
}

TEST_CASE("set and store write; get and load read the same value") {
  skein::Atomic<> a;
  a.set(7);
  CHECK(a.get() == 7);
  CHECK(a.load() == 7);
  a.store(-9);
  CHECK(a.get() == -9);
  CHECK(a.load() == -9);
}

TEST_CASE("cas sets the desired value only when the current value is the expected one") {
  skein::Atomic<> a(1);
  CHECK(a.cas(1, 2));
  CHECK(a.get() == 2);
  CHECK_FALSE(a.cas(1, 3));  // the value is 2, not 1: nothing changes
  CHECK(a.get() == 2);
  CHECK(a.cas(2, 2));  // same value: still a success
  CHECK(a.get() == 2);
}

TEST_CASE("exchange sets the new value and returns the previous one") {
  skein::Atomic<> a(4);
  CHECK(a.exchange(8) == 4);
  CHECK(a.get() == 8);
  CHECK(a.exchange(8) == 8);
  CHECK(a.exchange(-1) == 8);
  CHECK(a.get() == -1);
}

TEST_CASE("other integer types work, with their own wrap-around") {
  skein::Atomic<std::uint8_t> b(250);
  CHECK(b.add(10) == 4);  // unsigned wrap-around, as std::atomic
  skein::Atomic<std::int32_t> i(1);
  CHECK(i.add(-2) == -1);
  CHECK(i.cas(-1, 100));
  CHECK(i.exchange(3) == 100);
  skein::Atomic<unsigned long long> u(1);
  CHECK(u.add(~0ull) == 0);
}

TEST_CASE("four threads adding 100k times each give the exact total") {
  Watchdog wd(60s);
  const int n = scaled(100000);
  skein::Atomic<> a;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < n; ++i) a.add(1);
    });
  for (auto& t : ts) t.join();
  CHECK(a.get() == 4 * std::int64_t(n));
}

TEST_CASE("four pool tasks adding 100k times each give the exact total; a cas loop doubles exactly") {
  Watchdog wd(60s);
  const int n = scaled(100000);
  skein::ThreadPool pool(2);
  skein::Atomic<> a;
  std::vector<Promise<void>> ps;
  for (int t = 0; t < 4; ++t)
    ps.push_back(skein::run(
        pool,
        [n](skein::Atomic<>& x) {
          for (int i = 0; i < n; ++i) x.add();
        },
        std::ref(a)));
  for (auto& p : ps) p.get();
  CHECK(a.get() == 4 * std::int64_t(n));

  // A read-modify-write built on cas: no update is lost.
  skein::Atomic<> c;
  ps.clear();
  for (int t = 0; t < 4; ++t)
    ps.push_back(skein::run(pool, [&c, n] {
      for (int i = 0; i < n; ++i) {
        auto v = c.get();
        while (!c.cas(v, v + 2)) v = c.get();
      }
    }));
  for (auto& p : ps) p.get();
  CHECK(c.get() == 8 * std::int64_t(n));
}

TEST_CASE("exchange hands every value to exactly one taker") {
  Watchdog wd(60s);
  // Each thread puts its own distinct values in and takes whatever was there:
  // the sum of what was taken plus what is left equals the sum of what was put.
  const int n = scaled(50000);
  skein::Atomic<> a(0);
  std::atomic<std::int64_t> taken{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::int64_t mine = 0;
      for (int i = 1; i <= n; ++i) mine += a.exchange(std::int64_t(t) * n + i);
      taken += mine;
    });
  for (auto& t : ts) t.join();
  std::int64_t put = 0;
  for (int t = 0; t < 4; ++t)
    for (int i = 1; i <= n; ++i) put += std::int64_t(t) * n + i;
  CHECK(taken.load() + a.get() == put);
}

TEST_CASE("coroutines and threads adding to one Atomic give the exact total") {
  Watchdog wd(60s);
  const int n = scaled(10000);
  skein::Atomic<> a;
  std::vector<Promise<void>> ps;
  for (int t = 0; t < 8; ++t)
    ps.push_back(skein::run([&a, n]() -> Promise<void> {
      for (int i = 0; i < n; ++i) {
        a.add(1);
        if (i % 1000 == 0) co_await skein::async_sleep(std::chrono::microseconds(10));
      }
    }));
  std::thread th([&] {
    for (int i = 0; i < n; ++i) a.add(-1);
  });
  for (auto& p : ps) p.get();
  th.join();
  CHECK(a.get() == 7 * std::int64_t(n));
}
