// sequence(f1, f2, ...): functions run one after another on the pool; the
// first error stops the sequence; coroutine steps are awaited.
#include "support/common.hpp"

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace test;
using skein::Promise;

namespace {

struct Log {
  std::mutex mu;
  std::vector<std::string> entries;
  void add(std::string s) {
    std::lock_guard lk(mu);
    entries.push_back(std::move(s));
  }
  std::vector<std::string> get() {
    std::lock_guard lk(mu);
    return entries;
  }
};

struct Counter {
  int calls = 0;
  void operator()() { ++calls; }
};

Log* free_log = nullptr;
void free_a() { free_log->add("a"); }
void free_b() { free_log->add("b"); }

}  // namespace

TEST_CASE("sequence runs its functions in order and returns Promise<void>") {
  Watchdog wd(30s);
  Log log;
  auto p = skein::sequence([&] { log.add("1"); }, [&] { log.add("2"); }, [&] { log.add("3"); });
  static_assert(std::is_same_v<decltype(p), Promise<void>>);
  p.get();
  CHECK(log.get() == std::vector<std::string>{"1", "2", "3"});
}

TEST_CASE("each step starts only after the previous one finished") {
  Watchdog wd(30s);
  std::atomic<int> finished{0};
  std::atomic<int> bad{0};
  auto step = [&](int i) {
    return [&finished, &bad, i] {
      if (finished.load() != i) ++bad;  // every earlier step is done
      skein::sleep_for(std::chrono::milliseconds(2));
      if (finished.load() != i) ++bad;  // and no later step started meanwhile
      finished.store(i + 1);
    };
  };
  skein::sequence(step(0), step(1), step(2), step(3), step(4), step(5), step(6), step(7)).get();
  CHECK(finished.load() == 8);
  CHECK(bad.load() == 0);
}

TEST_CASE("sequence runs on the pool, not on the calling thread") {
  auto caller = std::this_thread::get_id();
  std::thread::id a, b;
  skein::sequence([&] { a = std::this_thread::get_id(); }, [&] { b = std::this_thread::get_id(); }).get();
  CHECK(a != caller);
  CHECK(b != caller);
}

TEST_CASE("sequence stops at the first error: later functions do not run, the error keeps its type and message") {
  Watchdog wd(30s);
  Log log;
  auto p = skein::sequence([&] { log.add("1"); },
                           [&] {
                             log.add("2");
                             throw std::out_of_range("step 2 failed");
                           },
                           [&] { log.add("3"); });
  CHECK_THROWS_WITH_AS(p.get(), "step 2 failed", std::out_of_range);
  CHECK_THROWS_WITH_AS(p.wait(), "step 2 failed", std::out_of_range);
  CHECK(log.get() == std::vector<std::string>{"1", "2"});

  Log first;
  auto q = skein::sequence([] { throw std::invalid_argument("first"); }, [&] { first.add("never"); });
  CHECK_THROWS_WITH_AS(q.get(), "first", std::invalid_argument);
  CHECK(first.get().empty());
}

TEST_CASE("coroutine steps are awaited in order, and their errors stop the sequence") {
  Watchdog wd(30s);
  Log log;
  auto p = skein::sequence(
      [&]() -> Promise<void> {
        co_await skein::async_sleep(5ms);
        log.add("co1");
      },
      [&] { log.add("plain"); },
      [&]() -> Promise<int> {
        co_await skein::async_sleep(1ms);
        log.add("co2");
        co_return 2;  // the value is ignored
      },
      [&] { return 7; });  // so is a plain function's
  p.get();
  CHECK(log.get() == std::vector<std::string>{"co1", "plain", "co2"});

  Log failing;
  auto q = skein::sequence(
      [&]() -> Promise<void> {
        co_await skein::async_sleep(1ms);
        failing.add("a");
        throw std::runtime_error("coroutine step failed");
      },
      [&]() -> Promise<void> {
        failing.add("b");
        co_return;
      });
  CHECK_THROWS_WITH_AS(q.get(), "coroutine step failed", std::runtime_error);
  CHECK(failing.get() == std::vector<std::string>{"a"});
}

TEST_CASE("co_await a sequence from a coroutine") {
  Watchdog wd(30s);
  Log log;
  auto outer = skein::run([&]() -> Promise<std::string> {
    co_await skein::sequence([&] { log.add("x"); }, [&] { log.add("y"); });
    try {
      co_await skein::sequence([] { throw std::logic_error("inner"); });
    } catch (const std::logic_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not caught";
  });
  CHECK(outer.get() == "caught inner");
  CHECK(log.get() == std::vector<std::string>{"x", "y"});
}

TEST_CASE("functions are copied into the sequence; plain function pointers work") {
  Watchdog wd(30s);
  Counter counting;
  skein::sequence(counting, counting).get();
  CHECK(counting.calls == 0);  // each step ran on its own copy; the caller's object is untouched
  Log log;
  free_log = &log;
  skein::sequence(&free_a, free_b, &free_a).get();
  CHECK(log.get() == std::vector<std::string>{"a", "b", "a"});
  free_log = nullptr;
}

TEST_CASE("a sequence of no functions, or of one, completes") {
  skein::sequence().get();
  std::atomic<int> n{0};
  skein::sequence([&] { ++n; }).get();
  CHECK(n.load() == 1);
}

TEST_CASE(
    "a sequence started in a cancelled context stops: the blocked step throws Cancelled, later steps do not run") {
  Watchdog wd(30s);
  Log log;
  skein::Context ctx;
  Event started;
  auto p = ctx.run([&] {
    skein::sequence(
        [&] {
          log.add("1");
          started.set();
          skein::sleep_for(60s);
          log.add("woke");
        },
        [&] { log.add("2"); })
        .get();
  });
  started.wait();
  ctx.cancel();
  CHECK_THROWS_AS(p.get(), skein::Cancelled);
  ctx.wait();
  CHECK(log.get() == std::vector<std::string>{"1"});
}

TEST_CASE("many sequences at once each keep their own order") {
  Watchdog wd(60s);
  const int n = scaled(500);
  std::vector<std::vector<int>> seen(std::size_t(n), std::vector<int>{});
  std::vector<Promise<void>> ps;
  for (int i = 0; i < n; ++i) {
    auto& v = seen[std::size_t(i)];
    ps.push_back(skein::sequence([&v] { v.push_back(1); },
                                 [&v]() -> Promise<void> {
                                   co_await skein::async_sleep(std::chrono::microseconds(100));
                                   v.push_back(2);
                                 },
                                 [&v] { v.push_back(3); }));
  }
  for (auto& p : ps) p.get();
  int wrong = 0;
  for (auto& v : seen) wrong += v != std::vector<int>{1, 2, 3};
  CHECK(wrong == 0);
}
