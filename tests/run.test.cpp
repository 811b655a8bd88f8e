// run / spawn / goroutines / this_task.
#include "support/common.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace test;
using skein::Promise;

namespace {
int add(int a, int b) { return a + b; }
Promise<int> twice(int v) { co_return 2 * v; }

struct CopyCounter {
  static inline std::atomic<int> copies{0};
  CopyCounter() = default;
  CopyCounter(const CopyCounter&) { ++copies; }
  CopyCounter(CopyCounter&&) noexcept = default;
};
}  // namespace

TEST_CASE("run returns the function's result; a coroutine function gives Promise<U>, not a nested promise") {
  auto p = skein::run(add, 2, 3);
  static_assert(std::is_same_v<decltype(p), Promise<int>>);
  CHECK(p.get() == 5);
  auto q = skein::run(twice, 21);
  static_assert(std::is_same_v<decltype(q), Promise<int>>);
  CHECK(q.get() == 42);
  auto v = skein::run([] {});
  static_assert(std::is_same_v<decltype(v), Promise<void>>);
  v.get();
}

TEST_CASE("arguments are decay-copied; std::ref passes a reference") {
  std::string s = "before";
  auto p = skein::run([](std::string x) { return x + "!"; }, s);
  s = "changed";
  CHECK(p.get() == "before!");
  int counter = 0;
  skein::run([](int& c) { c = 7; }, std::ref(counter)).get();
  CHECK(counter == 7);
  CopyCounter::copies = 0;
  CopyCounter c;
  skein::run([](const CopyCounter&) {}, c).get();
  CHECK(CopyCounter::copies.load() == 1);  // one decay-copy, then moves
}

TEST_CASE("move-only arguments and results") {
  auto p = skein::run([](std::unique_ptr<int> v) { return std::make_unique<int>(*v + 1); }, std::make_unique<int>(1));
  CHECK(*std::move(p).get() == 2);
}

TEST_CASE("a function taking a skein::stop_token first receives the task's token") {
  skein::Context ctx;
  skein::Resolver<void> started;
  auto p = ctx.run(
      [&started](skein::stop_token tok, int x) {
        started.resolve();
        while (!tok.stop_requested()) std::this_thread::yield();
        return x;
      },
      9);
  started.promise().get();
  ctx.cancel();
  CHECK(p.get() == 9);
}

TEST_CASE("100k tasks summed exactly") {
  Watchdog wd(60s);
  const int n = scaled(100000);
  std::vector<Promise<long>> ps;
  ps.reserve(n);
  for (int i = 0; i < n; ++i) ps.push_back(skein::run([](long v) { return v; }, long(i)));
  long sum = 0;
  for (auto& p : ps) sum += p.get();
  CHECK(sum == long(n) * (n - 1) / 2);
}

TEST_CASE("tasks spawned inside tasks, summed exactly") {
  Watchdog wd(60s);
  std::atomic<long> sum{0};
  {
    std::vector<Promise<void>> outer;
    for (int i = 0; i < 100; ++i)
      outer.push_back(skein::run([&sum, i]() -> Promise<void> {
        std::vector<Promise<void>> inner;
        for (int j = 0; j < 100; ++j) inner.push_back(skein::run([&sum, i, j] { sum += i * 100 + j; }));
        for (auto& p : inner) co_await p;
      }));
    for (auto& p : outer) p.get();
  }
  CHECK(sum.load() == 9999L * 10000 / 2);
}

TEST_CASE("an exception leaves the pool healthy") {
  skein::ThreadPool pool(2);
  for (int i = 0; i < 100; ++i) {
    auto p = skein::run(pool, [] { throw std::invalid_argument("bad"); });
    CHECK_THROWS_WITH_AS(p.get(), "bad", std::invalid_argument);
  }
  CHECK(skein::run(pool, [] { return 1; }).get() == 1);
}

TEST_CASE("goroutines counts live tasks") {
  Watchdog wd(30s);
  CHECK(eventually([] { return skein::goroutines() == 0; }));
  skein::Resolver<void> gate;
  std::vector<Promise<void>> ps;
  for (int i = 0; i < 10; ++i) ps.push_back(skein::run([g = gate.promise()]() -> Promise<void> { co_await g; }));
  CHECK(skein::goroutines() == 10);
  gate.resolve();
  for (auto& p : ps) p.get();
  CHECK(eventually([] { return skein::goroutines() == 0; }));
}

TEST_CASE("this_task outside a task: a token that never stops") {
  CHECK_FALSE(skein::this_task::stop_token().stop_possible());
  CHECK_FALSE(skein::this_task::cancelled());
}

TEST_CASE("spawn runs fire-and-forget") {
  std::atomic<int> n{0};
  for (int i = 0; i < 100; ++i) skein::spawn([&n] { ++n; });
  CHECK(eventually([&] { return n.load() == 100; }));
}
