// when_all / when_any.
#include "support/common.hpp"

#include <stdexcept>
#include <string>
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
