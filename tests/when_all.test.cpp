// when_all / when_all_settled / when_any.
#include "support/common.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

using namespace test;
using skein::Promise;

TEST_CASE("when_all gathers values in order, void as monostate") {
  auto a = skein::run([] { return 1; });
  auto b = skein::run([] { return std::string("two"); });
  auto c = skein::run([] {});
  auto [x, y, z] = skein::when_all(a, b, c).get();
  CHECK(x == 1);
  CHECK(y == "two");
  (void)z;
  std::vector<Promise<int>> v;
  for (int i = 0; i < 50; ++i) v.push_back(skein::run([i] { return i; }));
  auto all = skein::when_all(v).get();
  REQUIRE(all.size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(all[i] == i);
  std::vector<Promise<void>> vv{skein::run([] {}), skein::run([] {})};
  skein::when_all(vv).get();
  CHECK(skein::when_all(std::vector<Promise<int>>{}).get().empty());
}

TEST_CASE("when_all fails fast with the first error") {
  Watchdog wd(30s);
  skein::Resolver<int> never;
  auto bad = skein::run([] {
    throw std::runtime_error("first");
    return 0;
  });
  auto all = skein::when_all(never.promise(), bad);
  CHECK_THROWS_WITH(all.get(), "first");
  never.resolve(1);
}

TEST_CASE("when_any settles with the first input, value or error") {
  skein::Resolver<int> slow;
  auto fast = skein::run([] { return 2.5; });
  auto any = skein::when_any(slow.promise(), fast).get();
  CHECK(any.index() == 1);
  CHECK(std::get<1>(any) == 2.5);
  slow.resolve(0);

  skein::Resolver<int> s2;
  std::vector<Promise<int>> v{s2.promise(), skein::run([] { return 7; })};
  auto [i, val] = skein::when_any(v).get();
  CHECK(i == 1);
  CHECK(val == 7);
  s2.resolve(0);

  skein::Resolver<void> s3;
  auto err = skein::when_any(s3.promise(), skein::run([] { throw std::logic_error("race lost"); }));
  CHECK_THROWS_WITH_AS(err.get(), "race lost", std::logic_error);
  s3.resolve();
  CHECK_THROWS_AS((void)skein::when_any(std::vector<Promise<int>>{}), skein::UsageError);
}

TEST_CASE("when_all can be awaited from a coroutine") {
  auto p = []() -> Promise<int> {
    auto [a, b] = co_await skein::when_all(skein::run([] { return 1; }), skein::run([] { return 2; }));
    co_return a + b;
  }();
  CHECK(p.get() == 3);
}

// --- when_all_settled --------------------------------------------------------

namespace {

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

/// Records the messages of the unhandled-error handler (restored on destruction).
class Unhandled {
public:
  Unhandled() : seen_(std::make_shared<Seen>()) {
    skein::set_unhandled_error_handler([s = seen_](std::exception_ptr e) {
      std::string w = what_of(e);
      std::lock_guard lk(s->mu);
      s->msgs.push_back(std::move(w));
    });
  }
  ~Unhandled() { skein::set_unhandled_error_handler(nullptr); }
  Unhandled(const Unhandled&) = delete;
  Unhandled& operator=(const Unhandled&) = delete;
  std::size_t count(const std::string& msg) const {
    std::lock_guard lk(seen_->mu);
    std::size_t n = 0;
    for (const auto& m : seen_->msgs) n += (m == msg);
    return n;
  }

private:
  struct Seen {
    std::mutex mu;
    std::vector<std::string> msgs;
  };
  std::shared_ptr<Seen> seen_;
};

}  // namespace

TEST_CASE("when_all_settled: each input's value or error in its place; void as monostate") {
  Watchdog wd(30s);
  auto a = skein::run([] { return 1; });
  auto b = skein::run([]() -> int { throw std::runtime_error("b failed"); });
  auto c = skein::run([] {});
  auto d = skein::run([] { return std::string("four"); });
  auto e = skein::run([] { throw std::logic_error("e failed"); });
  auto all = skein::when_all_settled(a, b, c, d, e);
  static_assert(
      std::is_same_v<decltype(all), Promise<std::tuple<skein::Settled<int>, skein::Settled<int>, skein::Settled<void>,
                                                       skein::Settled<std::string>, skein::Settled<void>>>>);
  static_assert(std::is_same_v<skein::Settled<void>::value_type, std::monostate>);
  auto [sa, sb, sc, sd, se] = all.get();

  CHECK(sa.fulfilled());
  CHECK_FALSE(sa.rejected());
  CHECK(sa.value() == 1);
  CHECK(sa.error() == nullptr);
  const auto& csa = sa;
  CHECK(csa.value() == 1);

  CHECK(sb.rejected());
  CHECK_FALSE(sb.fulfilled());
  REQUIRE(sb.error() != nullptr);
  CHECK(what_of(sb.error()) == "b failed");
  CHECK_THROWS_WITH_AS(sb.value(), "b failed", std::runtime_error);  // value() rethrows it...
  CHECK_THROWS_WITH_AS(b.get(), "b failed", std::runtime_error);     // ...and the input still has it

  CHECK(sc.fulfilled());
  CHECK(sc.value() == std::monostate{});
  CHECK(sc.error() == nullptr);

  CHECK(sd.fulfilled());
  CHECK(sd.value() == "four");
  const std::string moved = std::move(sd).value();
  CHECK(moved == "four");

  CHECK(se.rejected());
  CHECK_THROWS_WITH_AS(se.value(), "e failed", std::logic_error);
}

TEST_CASE("when_all_settled waits for every input, even after one failed (it never fails fast)") {
  Watchdog wd(30s);
  skein::Resolver<int> slow;
  skein::Resolver<void> slower;
  auto failing = skein::run([]() -> int { throw std::runtime_error("fast failure"); });
  auto all = skein::when_all_settled(slow.promise(), failing, slower.promise());
  CHECK_THROWS_AS(failing.get(), std::runtime_error);
  CHECK_FALSE(all.wait_for(20ms));
  slow.resolve(9);
  CHECK_FALSE(all.ready());
  slower.reject(std::make_exception_ptr(std::runtime_error("slower failed")));
  auto [s1, s2, s3] = all.get();  // the combined promise itself never fails because an input did
  CHECK(s1.value() == 9);
  CHECK(s2.rejected());
  CHECK(what_of(s2.error()) == "fast failure");
  CHECK(s3.rejected());
  CHECK(what_of(s3.error()) == "slower failed");
}

TEST_CASE("when_all_settled over a vector: in order, values and errors mixed; empty; void") {
  Watchdog wd(30s);
  std::vector<Promise<int>> v;
  for (int i = 0; i < 30; ++i)
    v.push_back(skein::run([i]() -> int {
      if (i % 3 == 0) throw std::runtime_error("failure " + std::to_string(i));
      return i;
    }));
  auto r = skein::when_all_settled(v).get();
  static_assert(std::is_same_v<decltype(r), std::vector<skein::Settled<int>>>);
  REQUIRE(r.size() == 30);
  for (int i = 0; i < 30; ++i) {
    CAPTURE(i);
    const auto& s = r[static_cast<std::size_t>(i)];
    if (i % 3 == 0) {
      CHECK(s.rejected());
      CHECK(what_of(s.error()) == "failure " + std::to_string(i));
    } else {
      CHECK(s.fulfilled());
      CHECK(s.value() == i);
    }
  }

  auto none = skein::when_all_settled(std::vector<Promise<int>>{});
  CHECK(none.ready());
  CHECK(none.get().empty());

  std::vector<Promise<void>> vv{skein::run([] {}), skein::run([] { throw std::runtime_error("void failed"); }),
                                skein::run([]() -> Promise<void> { co_await skein::async_sleep(1ms); })};
  auto rv = skein::when_all_settled(std::move(vv)).get();
  REQUIRE(rv.size() == 3);
  CHECK(rv[0].fulfilled());
  CHECK(rv[1].rejected());
  CHECK(what_of(rv[1].error()) == "void failed");
  CHECK(rv[2].fulfilled());
}

TEST_CASE("when_all_settled: the inputs' errors count as observed (no unhandled report)") {
  Watchdog wd(30s);
  Unhandled h;
  {
    auto all = skein::when_all_settled(skein::run([]() -> int { throw std::runtime_error("ws input 1"); }),
                                       skein::run([] { throw std::runtime_error("ws input 2"); }));
    auto [x, y] = all.get();
    CHECK(x.rejected());
    CHECK(y.rejected());
  }
  {
    // Inputs held only by when_all_settled, whose own result is dropped before they settle.
    skein::Context ctx;
    skein::Resolver<void> gate;
    std::vector<Promise<int>> v;
    for (int i = 0; i < 3; ++i)
      v.push_back(ctx.run([ev = gate.promise()]() -> int {
        ev.wait();
        throw std::runtime_error("ws input 3");
      }));
    (void)skein::when_all_settled(std::move(v));
    (void)skein::when_all_settled(ctx.run([ev = gate.promise()] {
      ev.wait();
      throw std::runtime_error("ws input 4");
    }));
    gate.resolve();
    ctx.wait();
  }
  std::this_thread::sleep_for(20ms);  // a wrong implementation's late report
  CHECK(h.count("ws input 1") == 0);
  CHECK(h.count("ws input 2") == 0);
  CHECK(h.count("ws input 3") == 0);
  CHECK(h.count("ws input 4") == 0);
}

TEST_CASE("when_all_settled: an empty Promise is a UsageError; settled and repeated inputs; co_await") {
  Watchdog wd(30s);
  CHECK_THROWS_AS((void)skein::when_all_settled(skein::run([] { return 1; }), Promise<int>()), skein::UsageError);
  CHECK_THROWS_AS((void)skein::when_all_settled(Promise<void>()), skein::UsageError);
  std::vector<Promise<int>> bad{skein::run([] { return 1; }), Promise<int>()};
  CHECK_THROWS_AS((void)skein::when_all_settled(bad), skein::UsageError);

  // Inputs settled before the call, and one input passed twice.
  skein::Resolver<int> ok;
  ok.resolve(3);
  skein::Resolver<int> ko;
  ko.reject(std::make_exception_ptr(std::runtime_error("settled failure")));
  auto [x, y, z, w] = skein::when_all_settled(ok.promise(), ok.promise(), ko.promise(), ko.promise()).get();
  CHECK(x.value() == 3);
  CHECK(y.value() == 3);
  CHECK(z.rejected());
  CHECK(w.rejected());
  CHECK(z.error() == w.error());
  CHECK(what_of(z.error()) == "settled failure");

  auto p = []() -> Promise<int> {
    auto [a, b] = co_await skein::when_all_settled(skein::run([] { return 2; }),
                                                   skein::run([]() -> int { throw std::runtime_error("x"); }));
    co_return a.value() + (b.rejected() ? 10 : 0);
  }();
  CHECK(p.get() == 12);
  auto q = [](std::vector<Promise<int>> in) -> Promise<std::size_t> {
    auto r = co_await skein::when_all_settled(std::move(in));
    co_return r.size();
  }({skein::run([] { return 1; }), skein::run([] { return 2; })});
  CHECK(q.get() == 2);
}

TEST_CASE("stress: when_all_settled with inputs settling on other threads as it starts") {
  Watchdog wd(120s);
  const int n = scaled(3000);
  for (int i = 0; i < n; ++i) {
    skein::Resolver<int> a;
    skein::Resolver<void> b;
    auto pa = a.promise();
    auto pb = b.promise();
    std::thread ta([&] { a.resolve(i); });
    std::thread tb([&] { b.reject(std::make_exception_ptr(std::runtime_error("b"))); });
    auto all = skein::when_all_settled(std::move(pa), std::move(pb));
    auto [sa, sb] = all.get();
    REQUIRE(sa.value() == i);
    REQUIRE(sb.rejected());
    ta.join();
    tb.join();
  }
}
