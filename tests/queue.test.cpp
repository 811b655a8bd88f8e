// Queue<T>: FIFO, bounds, close, timeouts, cancellation, coroutines, and
// ports of scenarios from Go's test/chan and runtime/chan_test.go.
#include "support/common.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace test;
using skein::Promise;
using skein::Queue;

TEST_CASE("a queue reports its capacity and size, and is FIFO for capacities 1..200") {
  Watchdog wd(120s);
  Queue<int> unbounded;
  CHECK(unbounded.capacity() == 0);
  for (int i = 0; i < 1000; ++i) unbounded.put(i);  // never blocks
  CHECK(unbounded.size() == 1000);
  for (int i = 0; i < 1000; ++i) CHECK(*unbounded.try_get() == i);

  skein::ThreadPool pool(2);
  for (std::size_t cap = 1; cap <= 200; cap += (cap < 20 ? 1 : 17)) {
    Queue<int> q(cap);
    CHECK(q.capacity() == cap);
    const int n = 300;
    auto producer = skein::run(pool, [&q] {
      for (int i = 0; i < n; ++i) q.put(i);
    });
    int bad = 0;
    for (int i = 0; i < n; ++i)
      if (*q.get() != i) ++bad;
    producer.get();
    CHECK(bad == 0);
    CHECK(q.size() == 0);
  }
}

TEST_CASE("try_put and try_get never block; a failed try_put leaves the item untouched") {
  Queue<std::string> q(1);
  std::string a = "first", b = "second";
  CHECK(q.try_put(std::move(a)));
  CHECK(a.empty());  // moved in
  CHECK_FALSE(q.try_put(std::move(b)));
  CHECK(b == "second");  // not consumed
  CHECK(q.try_get() == "first");
  CHECK_FALSE(q.try_get().has_value());
}

TEST_CASE("items put before close are delivered; later puts throw Closed; close is idempotent") {
  Queue<int> q(10);
  q.put(1);
  q.put(2);
  q.close();
  q.close();
  CHECK(q.closed());
  CHECK_THROWS_WITH_AS(q.put(3), "put on a closed Queue", skein::Closed);
  CHECK_THROWS_AS(q.try_put(3), skein::Closed);
  CHECK(q.get() == 1);
  CHECK(q.get_for(1ms) == 2);
  CHECK_FALSE(q.get().has_value());
  CHECK_FALSE(q.try_get().has_value());
  std::vector<int> rest;
  for (int v : q) rest.push_back(v);
  CHECK(rest.empty());
}

TEST_CASE("range-for takes items until the queue is closed and drained") {
  Queue<int> q(4);
  auto producer = skein::run([&q] {
    for (int i = 1; i <= 100; ++i) q.put(i);
    q.close();
  });
  long sum = 0;
  for (int v : q) sum += v;
  producer.get();
  CHECK(sum == 5050);
}

TEST_CASE("put_for and get_for time out without losing or adding items") {
  Queue<int> q(1);
  CHECK(q.put_for(1, 1ms));
  CHECK_FALSE(q.put_for(2, 5ms));
  CHECK(q.size() == 1);
  CHECK(q.get_for(1ms) == 1);
  CHECK_FALSE(q.get_for(5ms).has_value());
  CHECK(q.size() == 0);
}

TEST_CASE("close wakes 64 blocked getters and 64 blocked putters; the putters' items never appear") {
  Watchdog wd(60s);
  Queue<int> empty;    // getters block
  Queue<int> full(1);  // putters block
  full.put(-1);
  std::atomic<int> closed_puts{0}, empty_gets{0};
  std::vector<Promise<void>> ps;
  skein::ThreadPool pool(2);
  for (int i = 0; i < 32; ++i) {
    // Half blocking threads (pool tasks), half coroutines.
    ps.push_back(skein::run(pool, [&] {
      if (!empty.get()) ++empty_gets;
    }));
    ps.push_back(skein::run(pool, [&]() -> Promise<void> {
      if (!co_await empty.async_get()) ++empty_gets;
    }));
    ps.push_back(skein::run(pool, [&, i] {
      try {
        full.put(i);
      } catch (const skein::Closed&) {
        ++closed_puts;
      }
    }));
    ps.push_back(skein::run(pool, [&, i]() -> Promise<void> {
      try {
        co_await full.async_put(100 + i);
      } catch (const skein::Closed&) {
        ++closed_puts;
      }
    }));
  }
  std::this_thread::sleep_for(100ms);  // let them all block (not needed for correctness)
  empty.close();
  full.close();
  for (auto& p : ps) p.get();
  CHECK(empty_gets.load() == 64);
  CHECK(closed_puts.load() == 64);
  CHECK(full.get() == -1);  // only the item queued before close
  CHECK_FALSE(full.get().has_value());
}

TEST_CASE("try_get racing close on a full capacity-1 queue always succeeds (Go: TestNonblockRecvRace)") {
  Watchdog wd(120s);
  const int n = scaled(10000);
  int failures = 0;
  for (int i = 0; i < n; ++i) {
    Queue<int> q(1);
    q.put(i);
    std::thread closer([&q] { q.close(); });
    auto v = q.try_get();
    closer.join();
    if (v != i) ++failures;
  }
  CHECK(failures == 0);
}

TEST_CASE("a get timing out while a put races it loses and duplicates nothing (10k rounds)") {
  Watchdog wd(120s);
  const int n = scaled(10000);
  Queue<int> q(1);
  long received = 0, sent = 0;
  for (int i = 0; i < n; ++i) {
    std::thread putter([&q, i] { q.put(i); });
    auto v = q.get_for(std::chrono::microseconds(i % 50));
    putter.join();
    sent += i;
    if (v) received += *v;
    if (auto rest = q.try_get()) received += *rest;  // not taken by the timed-out get: still here
    REQUIRE(q.size() == 0);
  }
  CHECK(received == sent);
}

TEST_CASE("a put timing out while a get races it loses and duplicates nothing (10k rounds)") {
  Watchdog wd(120s);
  const int n = scaled(10000);
  Queue<int> q(1);
  int delivered = 0, timed_out = 0;
  for (int i = 0; i < n; ++i) {
    q.put(-1);  // full
    std::optional<int> got1, got2;
    std::thread getter([&] { got1 = q.get(); });
    bool ok = q.put_for(i, std::chrono::microseconds(i % 50));
    getter.join();
    got2 = q.try_get();
    REQUIRE(got1 == -1);
    if (ok) {
      REQUIRE(got2 == i);
      ++delivered;
    } else {
      REQUIRE_FALSE(got2.has_value());
      ++timed_out;
    }
  }
  CHECK(delivered + timed_out == n);
}

TEST_CASE("cancelling blocked puts and gets: Cancelled, and the put's item never appears") {
  Watchdog wd(30s);
  Queue<int> full(1), empty;
  full.put(0);
  skein::Context ctx;
  auto p1 = ctx.run([&] { full.put(1); });
  auto p2 = ctx.run([&]() -> Promise<void> { co_await full.async_put(2); });
  auto g1 = ctx.run([&] { return empty.get(); });
  auto g2 = ctx.run([&]() -> Promise<std::optional<int>> { co_return co_await empty.async_get(); });
  std::this_thread::sleep_for(20ms);
  ctx.cancel();
  CHECK_THROWS_AS(p1.get(), skein::Cancelled);
  CHECK_THROWS_AS(p2.get(), skein::Cancelled);
  CHECK_THROWS_AS(g1.get(), skein::Cancelled);
  CHECK_THROWS_AS(g2.get(), skein::Cancelled);
  CHECK(full.size() == 1);
  CHECK(full.get() == 0);
  empty.put(5);  // nobody took a phantom slot
  CHECK(empty.get() == 5);
}

namespace {
void producers_consumers(std::size_t cap, bool coroutines) {
  // Go: TestMultiConsumer / runtime chan_test: 4 producers x 1000 values,
  // 4 consumers; every value must arrive exactly 4 times.
  const int per = scaled(1000);
  Queue<int> q(cap);
  skein::ThreadPool pool(2);
  std::mutex mu;
  std::map<int, int> seen;
  std::vector<Promise<void>> producers, consumers;
  for (int p = 0; p < 4; ++p) {
    if (coroutines && p % 2)
      producers.push_back(skein::run(pool, [&q, per]() -> Promise<void> {
        for (int i = 0; i < per; ++i) co_await q.async_put(i);
      }));
    else
      producers.push_back(skein::run(pool, [&q, per] {
        for (int i = 0; i < per; ++i) q.put(i);
      }));
  }
  for (int c = 0; c < 4; ++c) {
    if (coroutines && c % 2 == 0)
      consumers.push_back(skein::run(pool, [&]() -> Promise<void> {
        std::map<int, int> local;
        while (auto v = co_await q.async_get()) ++local[*v];
        std::lock_guard lk(mu);
        for (auto [k, n] : local) seen[k] += n;
      }));
    else
      consumers.push_back(skein::run(pool, [&] {
        std::map<int, int> local;
        for (int v : q) ++local[v];
        std::lock_guard lk(mu);
        for (auto [k, n] : local) seen[k] += n;
      }));
  }
  for (auto& p : producers) p.get();
  q.close();
  for (auto& c : consumers) c.get();
  int wrong = 0;
  for (int i = 0; i < per; ++i)
    if (seen[i] != 4) ++wrong;
  CHECK(seen.size() == static_cast<std::size_t>(per));
  CHECK(wrong == 0);
}
}  // namespace

TEST_CASE("4 producers x 1000 and 4 consumers: every value received exactly 4 times") {
  Watchdog wd(300s);
  for (std::size_t cap : {1, 2, 16, 1024}) {
    CAPTURE(cap);
    producers_consumers(cap, false);
    producers_consumers(cap, true);
  }
}

TEST_CASE("a 10,000-stage coroutine relay chain delivers in order") {
  Watchdog wd(120s);
  const int stages = scaled(10000);
  std::vector<std::unique_ptr<Queue<int>>> qs;
  for (int i = 0; i <= stages; ++i) qs.push_back(std::make_unique<Queue<int>>(1));
  std::vector<Promise<void>> relays;
  for (int i = 0; i < stages; ++i)
    relays.push_back(skein::run([in = qs[i].get(), out = qs[i + 1].get()]() -> Promise<void> {
      while (auto v = co_await in->async_get()) co_await out->async_put(*v + 1);
      out->close();
    }));
  for (int k = 0; k < 5; ++k) qs.front()->put(k * 1000);
  qs.front()->close();
  std::vector<int> out;
  for (int v : *qs.back()) out.push_back(v);
  for (auto& r : relays) r.get();
  REQUIRE(out.size() == 5);
  for (int k = 0; k < 5; ++k) CHECK(out[k] == k * 1000 + stages);
}

namespace {
// Go: test/chan/sieve1.go — a concurrent prime sieve: a generator and a chain
// of filters, one task each, linked by queues.
Promise<void> generate(Queue<int>* out) {
  for (int i = 2;; ++i) {
    try {
      co_await out->async_put(i);
    } catch (const skein::Closed&) {
      co_return;
    }
  }
}
Promise<void> filter(Queue<int>* in, Queue<int>* out, int prime) {
  while (auto v = co_await in->async_get()) {
    if (*v % prime == 0) continue;
    try {
      co_await out->async_put(*v);
    } catch (const skein::Closed&) {
      break;
    }
  }
  in->close();  // stop upstream
}
}  // namespace

TEST_CASE("a prime sieve built from tasks and queues finds the first 200 primes") {
  Watchdog wd(60s);
  std::vector<std::unique_ptr<Queue<int>>> qs;
  qs.push_back(std::make_unique<Queue<int>>(1));
  std::vector<Promise<void>> tasks;
  tasks.push_back(skein::run(generate, qs.back().get()));
  std::vector<int> primes;
  for (int i = 0; i < 200; ++i) {
    int p = *qs.back()->get();
    primes.push_back(p);
    qs.push_back(std::make_unique<Queue<int>>(1));
    tasks.push_back(skein::run(filter, qs[qs.size() - 2].get(), qs.back().get(), p));
  }
  qs.back()->close();  // the close travels upstream and stops every task
  for (auto& t : tasks) t.get();
  CHECK(primes.front() == 2);
  CHECK(primes[9] == 29);
  CHECK(primes.back() == 1223);
}

TEST_CASE("blocking threads and coroutines mix on one queue, in both directions") {
  Watchdog wd(60s);
  Queue<int> q(3);
  const int n = scaled(20000);
  auto coro_producer = skein::run([&q, n]() -> Promise<void> {
    for (int i = 0; i < n; ++i) co_await q.async_put(i);
  });
  std::thread thread_producer([&q, n] {
    for (int i = 0; i < n; ++i) q.put(i);
  });
  long sum = 0;
  auto coro_consumer = skein::run([&q, n]() -> Promise<long> {
    long s = 0;
    for (int i = 0; i < n; ++i) s += *co_await q.async_get();
    co_return s;
  });
  for (int i = 0; i < n; ++i) sum += *q.get();
  coro_producer.get();
  thread_producer.join();
  sum += coro_consumer.get();
  CHECK(sum == 2L * n * (n - 1) / 2);
}

TEST_CASE("a move-only item travels through the queue") {
  Queue<std::unique_ptr<int>> q(1);
  q.put(std::make_unique<int>(4));
  auto v = q.get();
  REQUIRE(v);
  CHECK(**v == 4);
}

TEST_CASE("Go test/chan/fifo: a chain of goroutines sending in turn keeps the order") {
  Watchdog wd(30s);
  Queue<int> ch;
  const int n = 100;
  std::vector<std::unique_ptr<Queue<int>>> turns;
  for (int i = 0; i <= n; ++i) turns.push_back(std::make_unique<Queue<int>>(1));
  std::vector<Promise<void>> ps;
  for (int i = 0; i < n; ++i)
    ps.push_back(skein::run([&, i]() -> Promise<void> {
      co_await turns[i]->async_get();
      co_await ch.async_put(i);
      co_await turns[i + 1]->async_put(0);
    }));
  turns[0]->put(0);
  int bad = 0;
  for (int i = 0; i < n; ++i)
    if (*ch.get() != i) ++bad;
  for (auto& p : ps) p.get();
  CHECK(bad == 0);
}

TEST_CASE("try_put and put_for copy an lvalue item; the caller's copy is untouched") {
  Queue<std::string> q(1);
  const std::string a = "kept";
  CHECK(q.try_put(a));
  CHECK_FALSE(q.try_put(a));
  CHECK_FALSE(q.put_for(a, 1ms));
  CHECK(a == "kept");
  CHECK(q.get() == "kept");
}

TEST_CASE("a put(T&&) that fails (closed, cancelled) leaves the caller's item untouched") {
  // Found by the soak test: put(T&&) moved the item into a by-value
  // parameter before waiting, so a failed put emptied the caller's string.
  skein::Queue<std::string> closed(1);
  closed.close();
  std::string s = "keep me";
  CHECK_THROWS_AS(closed.put(std::move(s)), skein::Closed);
  CHECK(s == "keep me");

  skein::Queue<std::string> full(1);
  full.put(std::string("first"));
  skein::Context ctx;
  std::string t = "mine";
  ctx.run([&] {
       ctx.cancel();
       CHECK_THROWS_AS(full.put(std::move(t)), skein::Cancelled);
     })
      .get();
  CHECK(t == "mine");
  CHECK(full.size() == 1);
}
