// skein::select, unbuffered queues, Timer/Ticker and WeightedSemaphore: the
// behaviour, deterministic races (events and blocked_in_kernel), stress with
// exact totals, and ports of Go's own select tests (runtime/chan_test.go,
// test/chan/*.go) and of "Go by Example"'s select, timer and ticker chapters.
#include "support/common.hpp"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <thread>
#include <vector>

using namespace test;
using skein::case_after;
using skein::case_default;
using skein::case_done;
using skein::case_get;
using skein::case_put;
using skein::case_ready;
using skein::Queue;

// --- select: which case, and what it did -----------------------------------------

TEST_CASE("select: a ready get wins and returns its item; the other queue keeps its own") {
  Queue<int> a(4), b(4);
  a.put(1);
  auto r = skein::select(case_get(a), case_get(b));
  REQUIRE(r.index() == 0);
  CHECK(r.get<0>() == std::optional<int>(1));
  CHECK_THROWS_AS(r.get<1>(), skein::UsageError);  // not the winner
  CHECK(a.size() == 0);
  CHECK(b.size() == 0);
}

TEST_CASE("select: with nothing ready, the default case wins at once and nothing is consumed") {
  Queue<int> a(1), full(1);
  full.put(7);
  auto r = skein::select(case_get(a), case_put(full, 8), case_default());
  CHECK(r.index() == 2);
  CHECK(full.size() == 1);
  CHECK(full.try_get() == std::optional<int>(7));
  CHECK(a.size() == 0);
}

TEST_CASE("select: a put case places its item; a blocked select is completed by a getter on another thread") {
  Queue<int> a(skein::unbuffered), b(skein::unbuffered);
  std::optional<int> got;
  std::thread getter([&] { got = b.get(); });
  auto r = skein::select(case_put(a, 1), case_put(b, 2));
  getter.join();
  CHECK(r.index() == 1);
  CHECK(got == std::optional<int>(2));
  CHECK(a.try_get() == std::nullopt);  // the losing put produced nothing
}

TEST_CASE("select: a blocked select takes exactly one of two items that arrive together; the other stays") {
  for (int round = 0; round < scaled(200); ++round) {
    Queue<int> a(1), b(1);
    std::thread t([&] {
      a.put(1);
      b.put(2);
    });
    auto r = skein::select(case_get(a), case_get(b));
    t.join();
    const int got = r.index() == 0 ? *r.get<0>() : *r.get<1>();
    const std::size_t left = a.size() + b.size();
    CHECK(left == 1);
    CHECK((got == 1 ? b.size() : a.size()) == 1);
  }
}

TEST_CASE("select: a get on a closed and drained queue fires empty-handed; a put on a closed queue throws Closed") {
  Queue<int> a(1), b(1);
  a.close();
  auto r = skein::select(case_get(a), case_get(b));
  CHECK(r.index() == 0);
  CHECK(r.get<0>() == std::nullopt);
  CHECK_THROWS_AS(skein::select(case_put(a, 1)), skein::Closed);
}

TEST_CASE("select: a queue closed while a put case waits makes select throw Closed; its item is never delivered") {
  Queue<int> q(skein::unbuffered), other(skein::unbuffered);
  std::atomic<long> tid{0};
  std::thread closer([&] {
    while (tid.load() == 0) std::this_thread::yield();
    blocked_in_kernel(tid.load());
    q.close();
  });
  tid.store(this_thread_tid());
  CHECK_THROWS_AS(skein::select(case_put(q, 5), case_get(other)), skein::Closed);
  closer.join();
  CHECK(q.try_get() == std::nullopt);
}

TEST_CASE("select: case_ready fires when a promise settles; case_done when a context is cancelled") {
  Queue<int> never(1);
  skein::Resolver<int> res;
  auto p = res.promise();
  std::thread t([&] {
    std::this_thread::sleep_for(5ms);
    res.resolve(9);
  });
  auto r = skein::select(case_get(never), case_ready(p));
  t.join();
  CHECK(r.index() == 1);
  CHECK(p.get() == 9);

  skein::Context ctx;
  std::thread c([&] {
    std::this_thread::sleep_for(5ms);
    ctx.cancel();
  });
  auto r2 = skein::select(case_get(never), case_done(ctx));
  c.join();
  CHECK(r2.index() == 1);
  // Already cancelled: ready at once.
  CHECK(skein::select(case_get(never), case_done(ctx)).index() == 1);
}

TEST_CASE("select: case_after fires after its duration; select_for gives up and consumes nothing") {
  Queue<int> never(1);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = skein::select(case_get(never), case_after(20ms));
  CHECK(r.index() == 1);
  CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
  auto r2 = skein::select_for(10ms, case_get(never));
  CHECK(r2.timed_out());
  CHECK_THROWS_AS(r2.get<0>(), skein::UsageError);
  // An item that arrives later stays in the queue.
  never.put(3);
  CHECK(never.try_get() == std::optional<int>(3));
}

TEST_CASE("select: bad input is refused with a clear error") {
  Queue<int> q(1);
  CHECK_THROWS_WITH_AS(case_after(-1ms), "case_after of a negative duration", skein::UsageError);
  CHECK_THROWS_AS(skein::select_for(-1ms, case_get(q)), skein::UsageError);
  skein::Promise<int> empty;
  CHECK_THROWS_WITH_AS(case_ready(empty), "case_ready on an empty Promise", skein::UsageError);
  std::vector<skein::detail::SelectCase*> none;
  CHECK_THROWS_WITH_AS(skein::select_any(none), "select needs at least one case", skein::UsageError);
  auto d1 = case_default(), d2 = case_default();
  std::vector<skein::detail::SelectCase*> two{&d1, &d2};
  CHECK_THROWS_AS(skein::select_any(two), skein::UsageError);
}

TEST_CASE("select: cancelling the selecting task ends it with Cancelled, and a later item stays in the queue") {
  Queue<int> a(1), b(1);
  skein::Context ctx;
  std::atomic<long> tid{0};
  auto p = ctx.run([&] {
    tid.store(this_thread_tid());
    return skein::select(case_get(a), case_get(b)).index();
  });
  while (tid.load() == 0) std::this_thread::yield();
  blocked_in_kernel(tid.load());
  ctx.cancel();
  CHECK_THROWS_AS(p.get(), skein::Cancelled);
  a.put(1);
  CHECK(a.size() == 1);
}

TEST_CASE("select: a pool that cannot hand off the blocked thread refuses the select; its cases leave the queues") {
  // block_wait rethrows the pool's refusal (no spare thread under its bound):
  // the select's waiters must be unlinked before its frame goes (ASan: a
  // later put would claim a freed waiter; the timer thread would fire a
  // freed node).
  skein::ThreadPool pool(1, 1);
  Queue<int> q(1);
  auto p = skein::run(pool, [&] { return skein::select(case_get(q), case_after(1h)).index(); });
  CHECK_THROWS_WITH_AS(p.get(), doctest::Contains("bound of 1 thread"), skein::UsageError);
  q.put(5);  // no case of that select may take it
  CHECK(q.try_get() == std::optional<int>(5));
}

TEST_CASE("select: co_await async_select in coroutines, cancelled by their context") {
  Queue<int> a(1), b(1);
  auto sum = skein::run([&]() -> skein::Promise<int> {
    int s = 0;
    for (int i = 0; i < 100; ++i) {
      auto r = co_await skein::async_select(case_get(a), case_get(b));
      s += *(r.index() == 0 ? r.get<0>() : r.get<1>());
    }
    co_return s;
  });
  std::thread pa([&] {
    for (int i = 0; i < 50; ++i) a.put(1);
  });
  std::thread pb([&] {
    for (int i = 0; i < 50; ++i) b.put(2);
  });
  CHECK(sum.get() == 150);
  pa.join();
  pb.join();

  skein::Context ctx;
  Event entered;
  auto p = ctx.run([&]() -> skein::Promise<void> {
    entered.set();
    (void)co_await skein::async_select(case_get(a), case_get(b));
  });
  entered.wait();
  std::this_thread::sleep_for(2ms);
  ctx.cancel();
  CHECK_THROWS_AS(p.get(), skein::Cancelled);
  a.put(1);
  CHECK(a.size() == 1);
}

TEST_CASE("select: the runtime-sized form (select_any) over a list of cases") {
  Queue<int> a(2), b(2);
  b.put(4);
  auto ga = case_get(a);
  auto gb = case_get(b);
  std::vector<skein::detail::SelectCase*> cs{&ga, &gb};
  CHECK(skein::select_any(cs) == 1);
  CHECK(gb.result() == std::optional<int>(4));
  auto t = case_after(1ms);
  std::vector<skein::detail::SelectCase*> cs2{&ga, &t};
  CHECK(skein::select_any(cs2) == 1);
  CHECK(ga.result() == std::nullopt);
}

// --- fairness and exact totals ------------------------------------------------------

TEST_CASE("select: with two cases always ready, each wins 50% +- 2% of 100k selects") {
  Queue<int> a(2), b(2);
  a.put(1);
  b.put(2);
  const int n = 100000;
  int first = 0;
  for (int i = 0; i < n; ++i) {
    auto r = skein::select(case_get(a), case_get(b));
    if (r.index() == 0) {
      ++first;
      a.put(1);
    } else {
      b.put(2);
    }
  }
  const double share = static_cast<double>(first) / n;
  MESSAGE("the first case won " << share * 100 << "% of " << n << " selects");
  CHECK(share > 0.48);
  CHECK(share < 0.52);
}

TEST_CASE("select: stress — producers into two queues, consumers selecting from threads and coroutines, exact totals") {
  Watchdog wd(120s);
  const int per = scaled(20000);
  Queue<long> a(8), b(skein::unbuffered);
  std::atomic<long> sum{0}, count{0};
  std::vector<std::thread> ts;
  for (int p = 0; p < 2; ++p)
    ts.emplace_back([&, p] {
      for (int i = 1; i <= per; ++i) (p == 0 ? a : b).put(i);
    });
  // A third producer offers to either queue with a select of two puts.
  ts.emplace_back([&] {
    for (int i = 1; i <= per; ++i) (void)skein::select(case_put(a, 1000000 + i), case_put(b, 1000000 + i));
  });
  auto consume_thread = [&] {
    for (;;) {
      auto r = skein::select(case_get(a), case_get(b));
      auto& v = r.index() == 0 ? r.get<0>() : r.get<1>();
      if (!v) return;  // one queue closed and drained: stop
      sum += *v;
      ++count;
    }
  };
  std::vector<std::thread> cs;
  for (int c = 0; c < 2; ++c) cs.emplace_back(consume_thread);
  std::vector<skein::Promise<void>> coros;
  for (int c = 0; c < 2; ++c)
    coros.push_back(skein::run([&]() -> skein::Promise<void> {
      for (;;) {
        auto r = co_await skein::async_select(case_get(a), case_get(b));
        auto& v = r.index() == 0 ? r.get<0>() : r.get<1>();
        if (!v) co_return;
        sum += *v;
        ++count;
      }
    }));
  for (auto& t : ts) t.join();
  // Everything was put; the consumers drain a (buffered) then stop on close.
  while (count.load() < 3L * per) std::this_thread::yield();
  a.close();
  b.close();
  for (auto& t : cs) t.join();
  for (auto& p : coros) p.get();
  const long tri = static_cast<long>(per) * (per + 1) / 2;
  CHECK(count.load() == 3L * per);
  CHECK(sum.load() == 2 * tri + 1000000L * per + tri);
}

// --- unbuffered queues ----------------------------------------------------------------

TEST_CASE("unbuffered Queue: a put completes only when a getter takes the item") {
  Queue<int> q(skein::unbuffered);
  CHECK(q.is_unbuffered());
  CHECK(q.capacity() == 0);
  CHECK_FALSE(q.try_put(1));  // nobody waits
  CHECK(q.try_get() == std::nullopt);
  std::atomic<bool> put_done{false};
  std::atomic<long> tid{0};
  std::thread putter([&] {
    tid.store(this_thread_tid());
    q.put(5);
    put_done.store(true);
  });
  while (tid.load() == 0) std::this_thread::yield();
  CHECK(parked_or_unknowable(tid.load()));
  CHECK_FALSE(put_done.load());
  CHECK(q.size() == 0);
  CHECK(q.try_get() == std::optional<int>(5));  // takes the blocked putter's item
  putter.join();
  CHECK(put_done.load());
}

TEST_CASE("unbuffered Queue: timed and cancelled puts leave nothing behind; close wakes both sides") {
  Queue<int> q(skein::unbuffered);
  CHECK_FALSE(q.put_for(1, 5ms));
  CHECK(q.try_get() == std::nullopt);
  CHECK(q.get_for(5ms) == std::nullopt);

  std::thread getter([&] { CHECK(q.get() == std::nullopt); });
  std::this_thread::sleep_for(5ms);
  q.close();
  getter.join();
  CHECK_THROWS_AS(q.put(1), skein::Closed);
}

TEST_CASE("unbuffered Queue: a cancelled put (thread or coroutine) leaves nothing; a later getter waits") {
  Queue<int> q(skein::unbuffered);
  skein::Context ctx;
  std::atomic<long> tid{0};
  auto blocked = ctx.run([&] {
    tid.store(this_thread_tid());
    q.put(1);
  });
  auto suspended = ctx.run([&]() -> skein::Promise<void> { co_await q.async_put(2); });
  while (tid.load() == 0) std::this_thread::yield();
  REQUIRE(parked_or_unknowable(tid.load()));
  ctx.cancel();
  CHECK_THROWS_AS(blocked.get(), skein::Cancelled);
  CHECK_THROWS_AS(suspended.get(), skein::Cancelled);
  CHECK(q.try_get() == std::nullopt);  // neither item is there to take
  CHECK(q.get_for(5ms) == std::nullopt);
}

TEST_CASE("unbuffered Queue: ping-pong between two coroutines") {
  Queue<int> ping(skein::unbuffered), pong(skein::unbuffered);
  const int n = scaled(20000);
  auto a = skein::run([&]() -> skein::Promise<int> {
    int last = 0;
    for (int i = 0; i < n; ++i) {
      co_await ping.async_put(i);
      last = *co_await pong.async_get();
    }
    co_return last;
  });
  auto b = skein::run([&]() -> skein::Promise<void> {
    for (int i = 0; i < n; ++i) co_await pong.async_put(*co_await ping.async_get() + 1);
  });
  CHECK(a.get() == n);
  b.get();
}

// --- ports of Go's select tests ---------------------------------------------------------

// runtime/chan_test.go TestSelectFairness: four cases, two always ready; the
// two ready ones must win about equally often (6-nines margin of Go's test).
TEST_CASE("Go port: TestSelectFairness") {
  const int trials = 10000;
  Queue<int> c1(trials + 1), c2(trials + 1), c3(skein::unbuffered), c4(skein::unbuffered);
  for (int i = 0; i < trials + 1; ++i) {
    c1.put(1);
    c2.put(2);
  }
  int cnt1 = 0, cnt2 = 0;
  for (int i = 0; i < trials; ++i) {
    auto r = skein::select(case_get(c3), case_get(c4), case_get(c1), case_get(c2));
    const int b = r.index() == 2 ? *r.get<2>() : r.index() == 3 ? *r.get<3>() : 0;
    cnt1 += b == 1;
    cnt2 += b == 2;
  }
  CHECK(cnt1 + cnt2 == trials);
  const double e = std::abs(static_cast<double>(cnt1) / trials - 0.5);
  CHECK(e <= 4.891676 / (2 * std::sqrt(static_cast<double>(trials))));
}

// test/chan/select.go: a select of two sends (whose values are computed for
// every case, a nil channel's included, every time) and a default, with a channel "set to nil" (left
// out of the case list) once it has taken its one value.
TEST_CASE("Go port: test/chan/select.go") {
  unsigned counter = 0, shift = 0;
  auto get_value = [&] {
    ++counter;
    return 1u << shift;
  };
  auto send = [&](Queue<unsigned>* a, Queue<unsigned>* b) {
    int i = 0;
    for (;;) {
      std::vector<std::unique_ptr<skein::detail::SelectCase>> owned;
      std::vector<Queue<unsigned>**> which;
      for (Queue<unsigned>** q : {&a, &b}) {
        const unsigned v = get_value();  // Go evaluates a nil channel's case too
        if (*q) {
          owned.push_back(std::make_unique<skein::PutCase<unsigned>>(case_put(**q, v)));
          which.push_back(q);
        }
      }
      owned.push_back(std::make_unique<skein::DefaultCase>());
      std::vector<skein::detail::SelectCase*> ptrs;
      for (auto& o : owned) ptrs.push_back(o.get());
      const auto w = static_cast<std::size_t>(skein::select_any(ptrs));
      if (w == which.size()) break;  // default
      ++i;
      *which[w] = nullptr;
      ++shift;
    }
    return i;
  };
  Queue<unsigned> a(1), b(1);
  CHECK(send(&a, &b) == 2);
  const unsigned av = *a.get(), bv = *b.get();
  CHECK((av | bv) == 3u);
  CHECK(send(&a, nullptr) == 1);
  CHECK(counter == 10u);
}

// runtime/chan_test.go TestSelectStress: four channels (two unbuffered,
// capacities 2 and 3); per channel a plain sender and a plain receiver, plus
// one goroutine sending N on each through one select and one receiving N
// from each through one select. A channel whose N are done leaves the
// select (Go sets it to nil; here the case list shrinks). Must not deadlock.
TEST_CASE("Go port: TestSelectStress") {
  Watchdog wd(120s);
  const int N = scaled(10000);
  std::vector<std::unique_ptr<Queue<int>>> c;
  c.push_back(std::make_unique<Queue<int>>(skein::unbuffered));
  c.push_back(std::make_unique<Queue<int>>(skein::unbuffered));
  c.push_back(std::make_unique<Queue<int>>(2));
  c.push_back(std::make_unique<Queue<int>>(3));
  std::vector<std::thread> ts;
  std::atomic<long> received{0};
  for (int k = 0; k < 4; ++k) {
    ts.emplace_back([&, k] {
      for (int i = 0; i < N; ++i) c[k]->put(0);
    });
    ts.emplace_back([&, k] {
      for (int i = 0; i < N; ++i) {
        (void)c[k]->get();
        ++received;
      }
    });
  }
  ts.emplace_back([&] {  // the select sender
    int n[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4 * N; ++i) {
      std::vector<skein::PutCase<int>> cases;
      std::vector<int> which;
      cases.reserve(4);
      for (int k = 0; k < 4; ++k)
        if (n[k] < N) {
          cases.push_back(case_put(*c[k], 0));
          which.push_back(k);
        }
      std::vector<skein::detail::SelectCase*> ptrs;
      for (auto& x : cases) ptrs.push_back(&x);
      ++n[which[static_cast<std::size_t>(skein::select_any(ptrs))]];
    }
  });
  ts.emplace_back([&] {  // the select receiver
    int n[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4 * N; ++i) {
      std::vector<skein::GetCase<int>> cases;
      std::vector<int> which;
      cases.reserve(4);
      for (int k = 0; k < 4; ++k)
        if (n[k] < N) {
          cases.push_back(case_get(*c[k]));
          which.push_back(k);
        }
      std::vector<skein::detail::SelectCase*> ptrs;
      for (auto& x : cases) ptrs.push_back(&x);
      ++n[which[static_cast<std::size_t>(skein::select_any(ptrs))]];
      ++received;
    }
  });
  for (auto& t : ts) t.join();
  CHECK(received.load() == 8L * N);
  for (auto& q : c) CHECK(q->size() == 0);
}

// runtime/chan_test.go TestSelectDuplicateChannel: a select with the same
// channel twice is woken through a third; a plain receiver queued behind it
// on the duplicated channel must still get the next item.
TEST_CASE("Go port: TestSelectDuplicateChannel") {
  Queue<int> c(skein::unbuffered), d(skein::unbuffered), e(skein::unbuffered);
  std::thread a([&] {
    (void)skein::select(case_get(c), case_get(c), case_get(d));
    e.put(9);
  });
  std::this_thread::sleep_for(1ms);  // A queues on c first (not required for the check)
  std::optional<int> got_b;
  std::thread b([&] { got_b = c.get(); });
  std::this_thread::sleep_for(1ms);
  d.put(7);  // wakes A, which withdraws from c
  CHECK(e.get() == std::optional<int>(9));
  c.put(8);  // must reach B
  b.join();
  a.join();
  CHECK(got_b == std::optional<int>(8));
}

// test/chan/sieve1.go: the concurrent prime sieve, one filter task per prime,
// unbuffered channels between them.
TEST_CASE("Go port: the concurrent prime sieve (test/chan/sieve1.go)") {
  std::vector<std::unique_ptr<Queue<int>>> chans;
  std::vector<skein::Promise<void>> tasks;
  skein::Context ctx;
  auto generate = [](Queue<int>* ch) -> skein::Promise<void> {
    for (int i = 2;; ++i) co_await ch->async_put(i);
  };
  auto filter = [](Queue<int>* in, Queue<int>* out, int prime) -> skein::Promise<void> {
    for (;;) {
      int i = *co_await in->async_get();
      if (i % prime != 0) co_await out->async_put(i);
    }
  };
  chans.push_back(std::make_unique<Queue<int>>(skein::unbuffered));
  tasks.push_back(ctx.run(generate, chans.back().get()));
  std::vector<int> primes;
  for (int i = 0; i < 25; ++i) {
    Queue<int>* ch = chans.back().get();
    const int prime = *ch->get();
    primes.push_back(prime);
    chans.push_back(std::make_unique<Queue<int>>(skein::unbuffered));
    tasks.push_back(ctx.run(filter, ch, chans.back().get(), prime));
  }
  ctx.cancel();
  for (auto& t : tasks) CHECK_THROWS_AS(t.get(), skein::Cancelled);
  const std::vector<int> want{2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37, 41,
                              43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97};
  CHECK(primes == want);
}

// --- ports of "Go by Example" ---------------------------------------------------------

// "Select": two tasks each send after a delay; select receives both, in order of arrival.
TEST_CASE("Go by Example: select") {
  Queue<std::string> c1(skein::unbuffered), c2(skein::unbuffered);
  skein::spawn([&] {
    skein::sleep_for(10ms);
    c1.put("one");
  });
  skein::spawn([&] {
    skein::sleep_for(20ms);
    c2.put("two");
  });
  std::vector<std::string> got;
  for (int i = 0; i < 2; ++i) {
    auto r = skein::select(case_get(c1), case_get(c2));
    got.push_back(r.index() == 0 ? *r.get<0>() : *r.get<1>());
  }
  CHECK(got == std::vector<std::string>{"one", "two"});
}

// "Timeouts": a result that takes too long loses to case_after; one in time wins.
TEST_CASE("Go by Example: timeouts") {
  Queue<std::string> c1(1), c2(1);
  skein::spawn([&] {
    skein::sleep_for(40ms);
    c1.put("result 1");
  });
  auto r1 = skein::select(case_get(c1), case_after(10ms));
  CHECK(r1.index() == 1);  // "timeout 1"
  skein::spawn([&] {
    skein::sleep_for(5ms);
    c2.put("result 2");
  });
  auto r2 = skein::select(case_get(c2), case_after(2s));
  REQUIRE(r2.index() == 0);
  CHECK(*r2.get<0>() == "result 2");
  CHECK(c1.get() == std::optional<std::string>("result 1"));  // the late result was not lost
}

// "Non-Blocking Channel Operations": select with a default.
TEST_CASE("Go by Example: non-blocking channel operations") {
  Queue<std::string> messages(skein::unbuffered), signals(skein::unbuffered);
  CHECK(skein::select(case_get(messages), case_default()).index() == 1);                     // "no message received"
  CHECK(skein::select(case_put(messages, "hi"), case_default()).index() == 1);               // "no message sent"
  CHECK(skein::select(case_get(messages), case_get(signals), case_default()).index() == 2);  // "no activity"
}

// "Timers": a timer fires; a stopped one never does.
TEST_CASE("Go by Example: timers") {
  const auto t0 = std::chrono::steady_clock::now();  // before the timer starts counting
  skein::Timer t1(10ms);
  t1.wait();  // "Timer 1 fired"
  CHECK(std::chrono::steady_clock::now() - t0 >= 10ms);
  skein::Timer t2(50ms);
  auto fired = skein::run([&] { return t2.channel().get_for(150ms).has_value(); });
  CHECK(t2.stop());  // "Timer 2 stopped"
  CHECK_FALSE(fired.get());
}

// "Tickers": ticks arrive every period until stopped.
TEST_CASE("Go by Example: tickers") {
  // t0 before the ticker starts: its ticks are due at start + k * period, so the third is due at
  // least 15 ms after t0 (taken after the constructor, t0 may be later than the start).
  const auto t0 = std::chrono::steady_clock::now();
  skein::Ticker ticker(5ms);
  int ticks = 0;
  while (ticks < 3) {
    auto r = skein::select(case_get(ticker.channel()), case_after(10s));
    REQUIRE(r.index() == 0);
    ++ticks;
  }
  CHECK(std::chrono::steady_clock::now() - t0 >= 15ms);  // three periods
  ticker.stop();
  CHECK(ticker.channel().get_for(20ms) == std::nullopt);  // stopped: no tick after
  ticker.reset(1ms);                                      // ticks again, on the same channel
  CHECK(ticker.channel().get_for(10s).has_value());
}

// "Rate Limiting": requests served one per tick; a bursty limiter lets 3 through at once.
TEST_CASE("Go by Example: rate limiting") {
  Queue<int> requests(5);
  for (int i = 1; i <= 5; ++i) requests.put(i);
  requests.close();
  skein::Ticker limiter(5ms);
  std::vector<std::chrono::steady_clock::time_point> served;
  for (auto& req : requests) {
    (void)req;
    (void)limiter.channel().get();
    served.push_back(std::chrono::steady_clock::now());
  }
  REQUIRE(served.size() == 5);
  CHECK(served.back() - served.front() >= 15ms);  // four gaps of (at least most of) a period

  Queue<std::chrono::steady_clock::time_point> bursty(3);
  for (int i = 0; i < 3; ++i) bursty.put(std::chrono::steady_clock::now());
  const auto t0 = std::chrono::steady_clock::now();  // before the ticker starts counting
  skein::Ticker refill(20ms);
  auto feeder = skein::run([&]() -> skein::Promise<void> {
    for (int i = 0; i < 2; ++i) {
      auto t = co_await refill.channel().async_get();
      co_await bursty.async_put(*t);
    }
  });
  for (int i = 0; i < 3; ++i) CHECK(bursty.try_get().has_value());  // the burst of 3 waits for no tick
  for (int i = 0; i < 2; ++i) (void)bursty.get();
  CHECK(std::chrono::steady_clock::now() - t0 >= 40ms);  // the next two did (ticks at 20 and 40 ms)
  feeder.get();
}

// --- Timer and Ticker -------------------------------------------------------------------

TEST_CASE("Timer: stop and reset leave no stale value; reset re-arms; after_func runs as a task") {
  skein::Timer t(1ms);
  REQUIRE(eventually([&] { return t.channel().size() == 1; }));  // it fired: its value waits
  CHECK_FALSE(t.stop());                                         // already fired
  CHECK(t.channel().try_get() == std::nullopt);                  // ... and stop emptied the channel (Go 1.23)

  skein::Timer t2(1ms);
  REQUIRE(eventually([&] { return t2.channel().size() == 1; }));
  CHECK_FALSE(t2.reset(10ms));
  CHECK(t2.channel().try_get() == std::nullopt);  // no stale value from the first firing
  CHECK(t2.channel().get_for(2s).has_value());    // the re-armed one fires

  std::atomic<int> ran{0};
  auto f = skein::after_func(5ms, [&] { ran.fetch_add(1); });
  CHECK(eventually([&] { return ran.load() == 1; }));
  auto g = skein::after_func(1h, [&] { ran.fetch_add(10); });
  CHECK(g.stop());
  CHECK(ran.load() == 1);

  CHECK_THROWS_WITH_AS(skein::Timer(-1ms), "Timer of a negative duration", skein::UsageError);
  CHECK_THROWS_WITH_AS(skein::Ticker(0ms), "a Ticker needs a positive period", skein::UsageError);
}

TEST_CASE("Timer: churn — many timers started and stopped concurrently, none fires late into a stopped one") {
  Watchdog wd(120s);
  const int n = scaled(20000);
  std::atomic<int> stopped{0};
  std::vector<std::thread> ts;
  for (int k = 0; k < 2; ++k)
    ts.emplace_back([&] {
      for (int i = 0; i < n; ++i) {
        skein::Timer t(std::chrono::microseconds(i % 50));
        if (t.stop()) ++stopped;
        CHECK(t.channel().try_get() == std::nullopt);
      }
    });
  for (auto& t : ts) t.join();
  MESSAGE(stopped.load() << " of " << 2 * n << " timers stopped before they fired");
  CHECK(eventually([] { return skein::detail::timer_service().pending() == 0; }));
}

TEST_CASE("Timer and Ticker: reset racing a fire in flight leaves no stale value and no second heap entry") {
  // A fire that had already left the heap when reset() ran used to deliver
  // its stale value after reset() returned (and a ticker's node could be
  // queued twice). Each reset to an hour must leave the channel empty.
  Watchdog wd(120s);
  skein::Timer t(1h);
  skein::Ticker tk(1h);
  for (int i = 0; i < scaled(3000); ++i) {
    t.reset(std::chrono::microseconds(i % 7));  // fires at once, or almost
    tk.reset(std::chrono::microseconds(1 + i % 5));
    for (int k = 0; k < i % 50; ++k) std::this_thread::yield();
    t.reset(1h);
    tk.reset(1h);
    CHECK(t.channel().try_get() == std::nullopt);
    CHECK(tk.channel().try_get() == std::nullopt);
  }
  CHECK(t.stop());
  tk.stop();
  CHECK(eventually([] { return skein::detail::timer_service().pending() == 0; }));
}

// --- WeightedSemaphore ----------------------------------------------------------------

TEST_CASE("WeightedSemaphore: FIFO — a large request at the front is not overtaken by small ones") {
  skein::WeightedSemaphore s(10);
  s.acquire(8);
  CHECK(s.available() == 2);
  std::vector<int> order;
  std::mutex mu;
  std::atomic<long> big_tid{0};
  std::thread big([&] {
    big_tid.store(this_thread_tid());
    s.acquire(5);  // waits: only 2 free
    std::lock_guard lk(mu);
    order.push_back(5);
  });
  while (big_tid.load() == 0) std::this_thread::yield();
  REQUIRE(parked_or_unknowable(big_tid.load()));
  CHECK_FALSE(s.try_acquire(1));  // 2 free, but the big one is ahead
  std::atomic<long> small_tid{0};
  std::thread small([&] {
    small_tid.store(this_thread_tid());
    s.acquire(1);  // 2 units are free, but it queues behind the big request
    std::lock_guard lk(mu);
    order.push_back(1);
  });
  while (small_tid.load() == 0) std::this_thread::yield();
  REQUIRE(parked_or_unknowable(small_tid.load()));
  {
    std::lock_guard lk(mu);
    CHECK(order.empty());  // neither got through: the small one did not overtake
  }
  s.release(8);  // serves 5, then 1
  big.join();
  small.join();
  CHECK(order.size() == 2);
  CHECK(s.available() == 4);
  s.release(6);
  CHECK(s.available() == 10);
}

TEST_CASE("WeightedSemaphore: a cancelled waiter at the front takes nothing and lets the others through") {
  skein::WeightedSemaphore s(4);
  s.acquire(3);
  skein::Context ctx;
  std::atomic<long> tid{0};
  auto big = ctx.run([&] {
    tid.store(this_thread_tid());
    s.acquire(4);
  });
  while (tid.load() == 0) std::this_thread::yield();
  REQUIRE(parked_or_unknowable(tid.load()));
  std::atomic<bool> small_done{false};
  std::thread small([&] {
    s.acquire(1);
    small_done.store(true);
  });
  std::this_thread::sleep_for(5ms);
  CHECK_FALSE(small_done.load());  // behind the big one
  ctx.cancel();
  CHECK_THROWS_AS(big.get(), skein::Cancelled);
  small.join();  // the cancel let it through
  CHECK(s.available() == 0);
  s.release(4);
  CHECK(s.available() == 4);
}

TEST_CASE("WeightedSemaphore: timeouts, coroutines, bad input and an exact stress total") {
  skein::WeightedSemaphore s(3);
  CHECK(s.try_acquire_for(3, 1ms));
  CHECK_FALSE(s.try_acquire_for(1, 5ms));
  s.release(3);
  CHECK_THROWS_WITH_AS(s.acquire(4),
                       "WeightedSemaphore::acquire of 4 unit(s), more than its size 3 (it could never succeed)",
                       skein::UsageError);
  CHECK_THROWS_AS(s.acquire(-1), skein::UsageError);
  CHECK_THROWS_WITH_AS(s.release(1), "WeightedSemaphore::release of 1 unit(s) with 0 held", skein::UsageError);
  CHECK_THROWS_AS(skein::WeightedSemaphore(-1), skein::UsageError);

  std::atomic<int> inside{0}, worst{0};
  std::atomic<long> done{0};
  std::vector<skein::Promise<void>> ps;
  for (int i = 0; i < 200; ++i)
    ps.push_back(skein::run([&, w = 1 + i % 3]() -> skein::Promise<void> {
      co_await s.async_acquire(w);
      const int now = inside.fetch_add(w) + w;
      int prev = worst.load();
      while (now > prev && !worst.compare_exchange_weak(prev, now)) {
      }
      inside.fetch_sub(w);
      s.release(w);
      ++done;
    }));
  for (auto& p : ps) p.get();
  CHECK(done.load() == 200);
  CHECK(worst.load() <= 3);
  CHECK(s.available() == 3);
}
