// Pool<T>: every item processed exactly once, backpressure, kept errors,
// close/wait, misuse, coroutine workers and submitters, cancellation.
//
// Workers run on default_pool(): a worker that must be held up waits on a
// skein Promise (a skein wait hands its pool thread off), never on a plain
// std::condition_variable.
#include "support/common.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

using namespace test;
using skein::Promise;

namespace {

/// Captures what reaches the unhandled-error handler for the scope; restores the default after.
class CapturedErrors {
public:
  CapturedErrors() {
    skein::set_unhandled_error_handler([this](std::exception_ptr e) {
      std::lock_guard lk(mu_);
      errors_.push_back(e);
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        messages_.push_back(ex.what());
      } catch (...) {
        messages_.push_back("?");
      }
    });
  }
  ~CapturedErrors() { skein::set_unhandled_error_handler(nullptr); }
  std::vector<std::string> messages() {
    std::lock_guard lk(mu_);
    return messages_;
  }
  std::vector<std::exception_ptr> errors() {
    std::lock_guard lk(mu_);
    return errors_;
  }

private:
  std::mutex mu_;
  std::vector<std::string> messages_;
  std::vector<std::exception_ptr> errors_;
};

/// The RepeatedError in `e` (REQUIREd to be one): its what(), count() and first().
struct Repeated {
  std::string what;
  std::size_t count = 0;
  std::exception_ptr first;
};
Repeated repeated_in(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const skein::RepeatedError& r) {
    return {r.what(), r.count(), r.first()};
  } catch (...) {
  }
  FAIL("not a RepeatedError");
  return {};
}

/// Rethrows `e` and returns typeid of what it holds (a std::exception).
const std::type_info& type_in(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return typeid(x);
  } catch (...) {
  }
  FAIL("not a std::exception");
  return typeid(void);
}

}  // namespace

TEST_CASE("a Pool needs at least one worker") {
  auto zero = [] { skein::Pool<int> p([](int) {}, 0); };
  CHECK_THROWS_WITH_AS(zero(), "a Pool needs at least one worker", skein::UsageError);
  auto zero_depth = [] { skein::Pool<int> p([](int) {}, 0, 10); };
  CHECK_THROWS_WITH_AS(zero_depth(), "a Pool needs at least one worker", skein::UsageError);
  skein::Pool<int> defaults([](int) {});
  CHECK(defaults.workers() == 4);
  skein::Pool<int> one([](int) {}, 1);
  CHECK(one.workers() == 1);
  CHECK(one.pending() == 0);
}

TEST_CASE("every submitted item is processed exactly once") {
  Watchdog wd(60s);
  const int n = scaled(20000);
  skein::Atomic<> sum;
  std::vector<std::atomic<int>> seen(std::size_t(n) + 1);
  {
    skein::Pool<int> pool(
        [&](int x) {
          sum.add(x);
          seen[std::size_t(x)].fetch_add(1);
        },
        4, 100);
    for (int i = 1; i <= n; ++i) pool.submit(i);
    pool.wait();
    CHECK(pool.pending() == 0);
    CHECK(sum.get() == std::int64_t(n) * (n + 1) / 2);
    pool.close();
  }
  int wrong = 0;
  for (int i = 1; i <= n; ++i) wrong += seen[std::size_t(i)].load() != 1;
  CHECK(wrong == 0);
}

TEST_CASE("submitters on threads, pool tasks and coroutines: each item is processed exactly once") {
  Watchdog wd(60s);
  const int per = scaled(3000);
  skein::Atomic<> sum, count;
  skein::Pool<int> pool(
      [&](int x) {
        sum.add(x);
        count.add();
      },
      3, 4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&pool, per] {
      for (int i = 1; i <= per; ++i) pool.submit(i);
    });
  std::vector<Promise<void>> ps;
  ps.push_back(skein::run([&pool, per] {
    for (int i = 1; i <= per; ++i) pool.submit(i);
  }));
  for (int c = 0; c < 2; ++c)
    ps.push_back(skein::run([&pool, per]() -> Promise<void> {
      for (int i = 1; i <= per; ++i) co_await pool.async_submit(i);
    }));
  for (auto& t : threads) t.join();
  for (auto& p : ps) p.get();
  pool.wait();
  CHECK(count.get() == 5 * per);
  CHECK(sum.get() == 5 * std::int64_t(per) * (per + 1) / 2);
  pool.close();
}

TEST_CASE("pending counts items submitted and not yet processed; wait waits for all of them") {
  Watchdog wd(30s);
  skein::Resolver<void> gate;
  auto open = gate.promise();
  std::atomic<int> processed{0};
  skein::Pool<int> pool(
      [&, open](int) {
        open.wait();
        ++processed;
      },
      2, 0);  // unbounded queue
  for (int i = 0; i < 10; ++i) pool.submit(i);
  CHECK(pool.pending() == 10);
  auto waiter = skein::run([&] { pool.wait(); });
  CHECK_FALSE(waiter.wait_for(20ms));
  CHECK(processed.load() == 0);
  gate.resolve();
  waiter.get();
  CHECK(processed.load() == 10);
  CHECK(pool.pending() == 0);
}

TEST_CASE("submit blocks while queue_depth items wait (backpressure), for threads and coroutines") {
  Watchdog wd(30s);
  skein::Resolver<void> gate;
  auto open = gate.promise();
  Event holding;
  std::mutex mu;
  std::vector<int> order;
  skein::Pool<int> pool(
      [&, open](int x) {
        if (x == 1) {
          holding.set();
          open.wait();
        }
        std::lock_guard lk(mu);
        order.push_back(x);
      },
      1, 2);
  pool.submit(1);
  holding.wait();  // the only worker holds item 1: the queue is empty
  pool.submit(2);  // these two fill the queue without blocking
  pool.submit(3);
  CHECK(pool.pending() == 3);
  Event submitted4;
  std::thread t([&] {
    pool.submit(4);
    submitted4.set();
  });
  CHECK_FALSE(submitted4.wait_for(30ms));  // full: the submit blocks
  auto co = skein::run([&]() -> Promise<void> { co_await pool.async_submit(5); });
  CHECK_FALSE(co.wait_for(30ms));
  CHECK(pool.pending() == 5);  // counted while blocked
  gate.resolve();
  CHECK(submitted4.wait_for(10s));
  t.join();
  co.get();
  pool.wait();
  std::lock_guard lk(mu);
  REQUIRE(order.size() == 5);
  // One worker: items are processed in queue order (4 and 5 may enter in either order).
  CHECK(order[0] == 1);
  CHECK(order[1] == 2);
  CHECK(order[2] == 3);
  CHECK(std::set<int>(order.begin() + 3, order.end()) == std::set<int>{4, 5});
}

TEST_CASE("no more than `workers` items are processed at once") {
  Watchdog wd(60s);
  const int n = scaled(300);
  std::atomic<int> now{0}, peak{0}, done{0};
  skein::Pool<int> pool(
      [&](int) {
        int c = ++now;
        int p = peak.load();
        while (c > p && !peak.compare_exchange_weak(p, c)) {
        }
        skein::sleep_for(std::chrono::microseconds(200));
        --now;
        ++done;
      },
      3);
  for (int i = 0; i < n; ++i) pool.submit(i);
  pool.close();
  CHECK(done.load() == n);
  CHECK(peak.load() >= 1);
  CHECK(peak.load() <= 3);
}

TEST_CASE("a worker exception is rethrown by wait with its type and message; the other items are still processed") {
  Watchdog wd(30s);
  CapturedErrors captured;
  std::atomic<int> ok{0};
  skein::Pool<int> pool(
      [&](int x) {
        if (x == 7) throw std::out_of_range("item 7 is bad");
        ++ok;
      },
      2);
  for (int i = 0; i < 20; ++i) pool.submit(i);
  CHECK_THROWS_WITH_AS(pool.wait(), "item 7 is bad", std::out_of_range);
  CHECK(ok.load() == 19);
  CHECK(pool.pending() == 0);
  // The error was rethrown once: the pool keeps working and the next wait is clean.
  for (int i = 100; i < 110; ++i) pool.submit(i);
  pool.wait();
  CHECK(ok.load() == 29);
  pool.close();
  CHECK(captured.messages().empty());
}

TEST_CASE("close rethrows a kept error after finishing every queued item") {
  Watchdog wd(30s);
  std::atomic<int> ok{0};
  skein::Pool<int> pool(
      [&](int x) {
        if (x == 0) throw std::runtime_error("first item failed");
        skein::sleep_for(std::chrono::microseconds(100));
        ++ok;
      },
      1, 0);
  for (int i = 0; i < 50; ++i) pool.submit(i);
  CHECK_THROWS_WITH_AS(pool.close(), "first item failed", std::runtime_error);
  CHECK(ok.load() == 49);
  CHECK(pool.pending() == 0);
  pool.close();  // idempotent, and the error is not rethrown twice
  pool.wait();
}

TEST_CASE("many failing items: one error is rethrown, the others reach the unhandled-error handler, none is lost") {
  Watchdog wd(30s);
  CapturedErrors captured;
  std::atomic<int> ok{0};
  {
    skein::Pool<int> pool(
        [&](int x) {
          if (x % 3 == 0) throw std::runtime_error("bad " + std::to_string(x));
          ++ok;
        },
        1);  // one worker: it survives every exception
    for (int i = 0; i < 30; ++i) pool.submit(i);
    try {
      pool.wait();
      FAIL("wait did not rethrow");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()).rfind("bad ", 0) == 0);
    }
    CHECK(ok.load() == 20);
    CHECK(captured.messages().size() == 9);
    // An error kept after the last wait and never rethrown goes to the handler when the pool is destroyed.
    pool.submit(300);
    while (pool.pending() != 0) std::this_thread::sleep_for(1ms);
  }
  auto msgs = captured.messages();
  CHECK(msgs.size() == 10);
  CHECK(std::count(msgs.begin(), msgs.end(), std::string("bad 300")) == 1);
}

TEST_CASE(
    "an error repeated by many items is kept and reported once, with its count; the rethrown one keeps its type") {
  Watchdog wd(30s);
  CapturedErrors captured;
  {
    // One worker: the items fail in the order submitted.
    skein::Pool<int> pool(
        [](int x) {
          if (x < 1000) {
            if (x % 2 == 0) throw std::out_of_range("even item");
            throw std::invalid_argument("odd item");
          }
          if (x == 1000) throw std::logic_error("even item");  // the message of out_of_range's, another type
          if (x < 2000) throw std::out_of_range("even item");
          throw std::invalid_argument("odd item");
        },
        1, 0);
    for (int i = 0; i < 1000; ++i) pool.submit(i);
    CHECK_THROWS_WITH_AS(pool.wait(), "even item", std::out_of_range);  // the first item's error, as thrown
    auto errs = captured.errors();
    REQUIRE(errs.size() == 2);  // not 999: one report per kind of error
    auto rethrown_repeats = repeated_in(errs[0]);
    CHECK(rethrown_repeats.what == "even item (the same error for 499 more Pool item(s))");
    CHECK(rethrown_repeats.count == 499);  // the repeats only: the first was rethrown
    CHECK(type_in(rethrown_repeats.first) == typeid(std::out_of_range));
    auto other = repeated_in(errs[1]);
    CHECK(other.what == "odd item (the same error for 500 Pool items)");
    CHECK(other.count == 500);
    CHECK_THROWS_WITH_AS(std::rethrow_exception(other.first), "odd item", std::invalid_argument);

    // Alike means the same type and the same what(): a logic_error("even item")
    // is a group of its own, rethrown as it is; the out_of_ranges after it are another.
    for (int i = 1000; i < 1003; ++i) pool.submit(i);
    try {
      pool.wait();
      FAIL("wait did not rethrow");
    } catch (const std::logic_error& e) {
      CHECK(typeid(e) == typeid(std::logic_error));
      CHECK(std::string(e.what()) == "even item");
    }
    errs = captured.errors();
    REQUIRE(errs.size() == 3);  // the logic_error did not repeat: nothing more for it
    auto later = repeated_in(errs[2]);
    CHECK(later.what == "even item (the same error for 2 Pool items)");
    CHECK(later.count == 2);
    CHECK(type_in(later.first) == typeid(std::out_of_range));

    // ~Pool reports what nobody rethrew the same way: once per kind, with its count.
    for (int i = 2000; i < 2003; ++i) pool.submit(i);
    while (pool.pending() != 0) std::this_thread::sleep_for(1ms);
  }
  auto errs = captured.errors();
  REQUIRE(errs.size() == 4);
  auto at_end = repeated_in(errs[3]);
  CHECK(at_end.what == "odd item (the same error for 3 Pool items)");
  CHECK(at_end.count == 3);
  CHECK(type_in(at_end.first) == typeid(std::invalid_argument));
}

TEST_CASE("an error that is not a std::exception is kept as it is: each one is reported") {
  Watchdog wd(30s);
  CapturedErrors captured;
  skein::Pool<int> pool([](int x) { throw x; }, 1, 0);
  for (int i = 0; i < 5; ++i) pool.submit(i);
  try {
    pool.wait();
    FAIL("wait did not rethrow");
  } catch (int x) {
    CHECK(x == 0);  // the first
  }
  auto errs = captured.errors();
  REQUIRE(errs.size() == 4);  // ints carry no message to compare: never grouped
  for (int i = 0; i < 4; ++i) {
    try {
      std::rethrow_exception(errs[static_cast<std::size_t>(i)]);
    } catch (int x) {
      CHECK(x == i + 1);
    }
  }
  pool.close();
}

TEST_CASE("submit after close throws Closed; the item is not processed") {
  Watchdog wd(30s);
  std::atomic<int> processed{0};
  skein::Pool<int> pool([&](int) { ++processed; }, 2);
  pool.submit(1);
  pool.close();
  CHECK(processed.load() == 1);
  CHECK_THROWS_WITH_AS(pool.submit(2), "submit on a closed Pool", skein::Closed);
  // The coroutine form says the same (it said "put on a closed Queue": found by fuzz/primitives_fuzz).
  auto co = skein::run([&]() -> Promise<void> { co_await pool.async_submit(3); });
  CHECK_THROWS_WITH_AS(co.get(), "submit on a closed Pool", skein::Closed);
  CHECK(pool.pending() == 0);
  pool.wait();
  pool.close();
  CHECK(processed.load() == 1);
}

TEST_CASE("a submit blocked when the pool is closed throws Closed; queued items are still processed") {
  Watchdog wd(30s);
  skein::Resolver<void> gate;
  auto open = gate.promise();
  Event holding;
  std::mutex mu;
  std::vector<int> processed;
  skein::Pool<int> pool(
      [&, open](int x) {
        if (x == 1) {
          holding.set();
          open.wait();
        }
        std::lock_guard lk(mu);
        processed.push_back(x);
      },
      1, 1);
  pool.submit(1);
  holding.wait();
  pool.submit(2);  // fills the queue
  auto blocked = skein::run([&] { pool.submit(3); });
  auto blocked_co = skein::run([&]() -> Promise<void> { co_await pool.async_submit(4); });
  CHECK_FALSE(blocked.wait_for(20ms));
  CHECK_FALSE(blocked_co.wait_for(1ms));
  auto closer = skein::run([&] { pool.close(); });
  CHECK_THROWS_AS(blocked.get(), skein::Closed);
  CHECK_THROWS_AS(blocked_co.get(), skein::Closed);
  CHECK_FALSE(closer.wait_for(10ms));  // close waits for the queued items
  gate.resolve();
  closer.get();
  CHECK(pool.pending() == 0);
  std::lock_guard lk(mu);
  CHECK(processed == std::vector<int>{1, 2});
}

TEST_CASE("a blocked submit in a cancelled context throws Cancelled and is not counted") {
  Watchdog wd(30s);
  skein::Resolver<void> gate;
  auto open = gate.promise();
  Event holding;
  std::mutex mu;
  std::vector<int> processed;
  skein::Pool<int> pool(
      [&, open](int x) {
        if (x == 1) {
          holding.set();
          open.wait();
        }
        std::lock_guard lk(mu);
        processed.push_back(x);
      },
      1, 1);
  pool.submit(1);
  holding.wait();
  pool.submit(2);
  skein::Context ctx;
  Event started;
  auto a = ctx.run([&] {
    started.set();
    pool.submit(3);
  });
  auto b = ctx.run([&]() -> Promise<void> { co_await pool.async_submit(4); });
  started.wait();
  CHECK_FALSE(a.wait_for(20ms));
  ctx.cancel();
  CHECK_THROWS_AS(a.get(), skein::Cancelled);
  CHECK_THROWS_AS(b.get(), skein::Cancelled);
  CHECK(pool.pending() == 2);
  gate.resolve();
  pool.wait();
  pool.submit(5);
  pool.close();
  std::lock_guard lk(mu);
  CHECK(processed == std::vector<int>{1, 2, 5});
}

TEST_CASE("a coroutine worker_func is awaited: items finish before wait returns") {
  Watchdog wd(30s);
  const int n = scaled(2000);
  skein::Atomic<> sum;
  std::atomic<int> now{0}, peak{0};
  skein::Pool<int> pool(
      [&](int x) -> Promise<void> {
        int c = ++now;
        int p = peak.load();
        while (c > p && !peak.compare_exchange_weak(p, c)) {
        }
        if (x % 10 == 0) co_await skein::async_sleep(std::chrono::microseconds(50));
        --now;
        sum.add(x);
      },
      2, 8);
  for (int i = 1; i <= n; ++i) pool.submit(i);
  pool.wait();
  CHECK(sum.get() == std::int64_t(n) * (n + 1) / 2);
  CHECK(peak.load() <= 2);
  pool.close();
}

TEST_CASE("a failing coroutine worker_func is rethrown like a plain one") {
  Watchdog wd(30s);
  std::atomic<int> ok{0};
  skein::Pool<int> pool(
      [&](int x) -> Promise<void> {
        co_await skein::async_sleep(std::chrono::microseconds(10));
        if (x == 3) throw std::invalid_argument("coroutine item 3");
        ++ok;
      },
      2);
  for (int i = 0; i < 10; ++i) pool.submit(i);
  CHECK_THROWS_WITH_AS(pool.close(), "coroutine item 3", std::invalid_argument);
  CHECK(ok.load() == 9);
}

TEST_CASE("a worker_func returning a value and move-only or class items work") {
  Watchdog wd(30s);
  skein::Atomic<> sum;
  skein::Pool<std::unique_ptr<int>> boxes([&](std::unique_ptr<int> p) { sum.add(*p); }, 2);
  for (int i = 1; i <= 100; ++i) boxes.submit(std::make_unique<int>(i));
  boxes.close();
  CHECK(sum.get() == 5050);

  std::mutex mu;
  std::set<std::string> words;
  skein::Pool<std::string> strings(
      [&](const std::string& s) {
        std::lock_guard lk(mu);
        words.insert(s);
        return s.size();  // ignored
      },
      2);
  strings.submit("alpha");
  strings.submit(std::string("beta"));
  strings.close();
  CHECK(words == std::set<std::string>{"alpha", "beta"});
}

TEST_CASE("destroying a Pool finishes every queued item") {
  Watchdog wd(30s);
  std::atomic<int> processed{0};
  {
    skein::Pool<int> pool(
        [&](int) {
          skein::sleep_for(std::chrono::microseconds(50));
          ++processed;
        },
        2, 0);
    for (int i = 0; i < 200; ++i) pool.submit(i);
  }
  CHECK(processed.load() == 200);
}

TEST_CASE("a Pool whose workers' context is cancelled refuses new items and wait() does not hang") {
  Watchdog wd(30s);
  std::unique_ptr<skein::Pool<int>> pool;
  std::atomic<int> processed{0};
  skein::Context ctx;
  ctx.run([&] { pool = std::make_unique<skein::Pool<int>>([&](int) { ++processed; }, 2, 4); }).wait();
  pool->submit(1);
  pool->wait();
  CHECK(processed.load() == 1);
  ctx.cancel();
  CHECK(eventually([&] {
    try {
      pool->submit(2);
      return false;
    } catch (const skein::Closed&) {
      return true;
    }
  }));
  CHECK_THROWS_AS(pool->wait(), skein::Cancelled);
  pool.reset();
}

TEST_CASE("a coroutine worker_func cancelled mid-item finishes before its Pool closes (its captures stay alive)") {
  // Regression: the worker awaited the item's coroutine cancellably, left it
  // running when the context was cancelled, and the Pool (holding the
  // function object the coroutine used) was destroyed under it.
  Watchdog wd(60s);
  for (int round = 0; round < 3; ++round) {
    std::unique_ptr<skein::Pool<int>> pool;
    std::atomic<bool> started{false};
    std::atomic<int> finished{0};
    skein::Context ctx;
    std::string big(100, 'x');
    ctx.run([&] {
         pool = std::make_unique<skein::Pool<int>>(
             [&started, &finished, big](int) -> Promise<void> {
               started = true;
               try {
                 co_await skein::async_sleep(10s);
               } catch (const skein::Cancelled&) {
               }
               std::this_thread::sleep_for(20ms);
               if (big[50] == 'x') ++finished;  // touches the captures after the cancellation
             },
             1, 4);
       })
        .wait();
    pool->submit(1);
    REQUIRE(eventually([&] { return started.load(); }));
    ctx.cancel();
    try {
      pool->close();
    } catch (const skein::Cancelled&) {
    }
    CHECK(finished.load() == 1);  // close() returned only after the item's coroutine ended
    pool.reset();
  }
}

TEST_CASE("workers cancelled before they start: wait() returns and rethrows Cancelled, no item is kept pending") {
  // Found by the soak test: a worker whose context was cancelled before it
  // started never ran, so nothing drained the queue — wait() hung, close()
  // threw "task cancelled before it started" and left the items pending.
  Watchdog wd(30s);
  CapturedErrors captured;
  std::atomic<int> processed{0};
  for (int round = 0; round < scaled(50); ++round) {
    skein::Context ctx;
    std::unique_ptr<skein::Pool<int>> pool;
    ctx.run([&] {
         ctx.cancel();  // the workers are bound to this (now cancelled) context
         pool = std::make_unique<skein::Pool<int>>([&](int) { ++processed; }, 2, 0);
       })
        .get();
    int submitted = 0;
    for (int i = 0; i < 5; ++i) {
      try {
        pool->submit(i);
        ++submitted;
      } catch (const skein::Closed&) {  // the pool may already have shut its queue
      }
    }
    if (round % 2 == 0) {
      // close() waits for the workers' watchers: both recorded a
      // cancellation; one is rethrown, the other is not reported.
      CHECK_THROWS_WITH_AS(pool->close(), doctest::Contains("Pool workers cancelled"), skein::Cancelled);
    } else {
      // wait() returns (it hung); with items queued, the watcher that
      // abandoned them recorded why before counting them done.
      if (submitted > 0) {
        CHECK_THROWS_WITH_AS(pool->wait(), doctest::Contains("Pool workers cancelled"), skein::Cancelled);
      } else {
        try {
          pool->wait();
        } catch (const skein::Cancelled&) {
        }
      }
      try {
        pool->close();
      } catch (const skein::Cancelled&) {  // the other worker's, if wait() did not take it
      }
    }
    CHECK(pool->pending() == 0);
    CHECK_THROWS_AS(pool->submit(9), skein::Closed);
    pool.reset();
  }
  CHECK(processed.load() == 0);
  // Cancellations are never handed to the unhandled-error handler (two workers, two kept).
  CHECK(captured.messages().empty());
}
