// Semaphore: permits, blocking/timed/async acquire, FIFO hand-off, the checked
// bound, cancellation without leaked permits, and the holder bound under stress.
#include "support/common.hpp"

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace test;
using skein::Promise;

namespace {

Promise<void> acquire_and_record(skein::Semaphore& s, std::vector<int>& order, int id) {
  co_await s.async_acquire();
  order.push_back(id);
}

}  // namespace

TEST_CASE("a Semaphore starts with its permits, which are also its bound") {
  skein::Semaphore s(3);
  CHECK(s.available() == 3);
  CHECK(s.max() == 3);
  skein::Semaphore none(0);
  CHECK(none.available() == 0);
  CHECK_FALSE(none.try_acquire());
  auto negative = [] { skein::Semaphore bad(-1); };
  CHECK_THROWS_WITH_AS(negative(), "a Semaphore needs a non-negative number of permits", skein::UsageError);
}

TEST_CASE("try_acquire takes a permit while one is available; release returns it") {
  skein::Semaphore s(2);
  CHECK(s.try_acquire());
  CHECK(s.available() == 1);
  CHECK(s.try_acquire());
  CHECK(s.available() == 0);
  CHECK_FALSE(s.try_acquire());
  CHECK(s.available() == 0);
  s.release();
  CHECK(s.available() == 1);
  s.release();
  CHECK(s.available() == 2);
  s.acquire();
  s.acquire();
  s.release(2);  // several at once
  CHECK(s.available() == 2);
  s.release(0);  // nothing
  CHECK(s.available() == 2);
}

TEST_CASE("releasing above the bound is a UsageError and changes nothing") {
  skein::Semaphore s(3);
  CHECK_THROWS_WITH_AS(s.release(), "Semaphore::release above its bound: releasing 1 permit(s) with 0 held (bound 3)",
                       skein::UsageError);
  CHECK(s.available() == 3);
  s.acquire();
  s.acquire();
  CHECK_THROWS_WITH_AS(s.release(3), "Semaphore::release above its bound: releasing 3 permit(s) with 2 held (bound 3)",
                       skein::UsageError);
  CHECK(s.available() == 1);  // not even a partial release
  s.release(2);
  CHECK(s.available() == 3);
  CHECK_THROWS_WITH_AS(s.release(), doctest::Contains("Semaphore::release above its bound"), skein::UsageError);
  CHECK_THROWS_WITH_AS(s.release(-1), "Semaphore::release of a negative number of permits", skein::UsageError);
  CHECK(s.available() == 3);
  skein::Semaphore zero(0);
  CHECK_THROWS_WITH_AS(zero.release(), doctest::Contains("above its bound"), skein::UsageError);
}

TEST_CASE("a permit handed to a waiter still counts as held for the bound") {
  Watchdog wd(30s);
  skein::Semaphore s(1);
  s.acquire();
  std::vector<int> order;
  auto p = acquire_and_record(s, order, 1);  // queued
  CHECK_FALSE(p.ready());
  s.release();  // passes straight to the waiter
  p.get();
  CHECK(s.available() == 0);
  CHECK_THROWS_WITH_AS(s.release(2), doctest::Contains("with 1 held (bound 1)"), skein::UsageError);
  s.release();  // the waiter's permit
  CHECK(s.available() == 1);
  CHECK_THROWS_AS(s.release(), skein::UsageError);
}

TEST_CASE("acquire blocks a thread until a permit is released") {
  Watchdog wd(30s);
  skein::Semaphore s(1);
  s.acquire();
  Event got;
  std::thread t([&] {
    s.acquire();
    got.set();
  });
  CHECK_FALSE(got.wait_for(30ms));
  s.release();
  CHECK(got.wait_for(10s));
  t.join();
  CHECK(s.available() == 0);  // the thread holds it
  s.release();
  CHECK(s.available() == 1);
}

TEST_CASE("async_acquire suspends a coroutine until a permit is released") {
  Watchdog wd(30s);
  skein::Semaphore s(1);
  auto fast = [](skein::Semaphore& s) -> Promise<void> { co_await s.async_acquire(); }(s);
  CHECK(fast.ready());  // a free permit: no suspension
  fast.get();
  CHECK(s.available() == 0);
  std::atomic<bool> got{false};
  auto p = skein::run([&]() -> Promise<void> {
    co_await s.async_acquire();
    got = true;
    s.release();
  });
  CHECK_FALSE(p.wait_for(20ms));
  CHECK_FALSE(got.load());
  s.release();
  p.get();
  CHECK(got.load());
  CHECK(s.available() == 1);
}

TEST_CASE("try_acquire_for times out without taking a permit, and succeeds when one comes in time") {
  Watchdog wd(30s);
  skein::Semaphore s(1);
  CHECK(s.try_acquire_for(0ms));
  CHECK_FALSE(s.try_acquire_for(10ms));
  CHECK_FALSE(s.try_acquire_for(std::chrono::microseconds(1)));
  CHECK(s.available() == 0);
  Event trying;
  std::thread t([&] {
    trying.set();
    CHECK(s.try_acquire_for(30s));
  });
  trying.wait();
  std::this_thread::sleep_for(5ms);
  s.release();
  t.join();
  CHECK(s.available() == 0);
  s.release();
  CHECK(s.available() == 1);
}

TEST_CASE("released permits go to waiters in FIFO order, several at once with release(n)") {
  Watchdog wd(30s);
  skein::Semaphore s(2);
  s.acquire();
  s.acquire();
  std::vector<int> order;
  std::vector<Promise<void>> ps;
  for (int i = 0; i < 6; ++i) ps.push_back(acquire_and_record(s, order, i));  // each queued on return
  for (auto& p : ps) CHECK_FALSE(p.ready());
  s.release();
  CHECK(order == std::vector<int>{0});
  s.release(1);
  CHECK(order == std::vector<int>{0, 1});
  // Waiters 0 and 1 now hold the two permits; releasing them lets 2 and 3 in, in order.
  s.release(2);
  CHECK(order == std::vector<int>{0, 1, 2, 3});
  CHECK_FALSE(ps[4].ready());
  s.release(2);
  for (auto& p : ps) p.get();
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5});
  CHECK(s.available() == 0);
  s.release(2);
  CHECK(s.available() == 2);
}

TEST_CASE("never more than N holders under stress, threads, pool tasks and coroutines mixed") {
  Watchdog wd(120s);
  const int n = scaled(20000);
  constexpr int kPermits = 3;
  skein::ThreadPool pool(2);
  skein::Semaphore s(kPermits);
  std::atomic<int> holders{0}, peak{0}, over{0};
  std::atomic<long> total{0};
  auto section = [&] {
    int h = ++holders;
    update_max(peak, h);
    if (h > kPermits) ++over;
    ++total;
    --holders;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < n; ++i) {
        if (i % 2) {
          s.acquire();
        } else {
          while (!s.try_acquire()) std::this_thread::yield();
        }
        section();
        if (i % 100 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
        s.release();
      }
    });
  std::vector<Promise<void>> ps;
  for (int t = 0; t < 2; ++t)
    ps.push_back(skein::run(pool, [&] {
      for (int i = 0; i < n; ++i) {
        if (i % 2) {
          s.acquire();
        } else {
          while (!s.try_acquire_for(1ms)) {
          }
        }
        section();
        s.release();
      }
    }));
  for (int t = 0; t < 3; ++t)
    ps.push_back(skein::run(pool, [&]() -> Promise<void> {
      for (int i = 0; i < n; ++i) {
        co_await s.async_acquire();
        section();
        if (i % 200 == 0) co_await skein::async_sleep(std::chrono::microseconds(20));  // suspend holding it
        s.release();
      }
    }));
  for (auto& t : threads) t.join();
  for (auto& p : ps) p.get();
  CHECK(over.load() == 0);
  CHECK(peak.load() <= kPermits);
  CHECK(peak.load() >= 1);
  CHECK(total.load() == 8L * n);
  CHECK(s.available() == kPermits);
}

TEST_CASE("blocked acquires in a cancelled context throw Cancelled and leak no permit") {
  Watchdog wd(30s);
  constexpr int kPermits = 2;
  skein::Semaphore s(kPermits);
  s.acquire();
  s.acquire();
  skein::Context ctx;
  Event started;
  auto blocking = ctx.run([&] {
    started.set();
    s.acquire();
  });
  auto coro = ctx.run([&]() -> Promise<void> { co_await s.async_acquire(); });
  auto timed = ctx.run([&] { return s.try_acquire_for(60s); });
  std::vector<int> order;
  auto outsider = acquire_and_record(s, order, 7);  // a waiter outside the context
  started.wait();
  std::this_thread::sleep_for(10ms);
  CHECK_FALSE(blocking.ready());
  ctx.cancel();
  CHECK_THROWS_AS(blocking.get(), skein::Cancelled);
  CHECK_THROWS_AS(coro.get(), skein::Cancelled);
  CHECK_THROWS_AS(timed.get(), skein::Cancelled);
  CHECK(s.available() == 0);
  CHECK_FALSE(outsider.ready());
  s.release();  // goes to the outsider, not to a cancelled waiter
  outsider.get();
  CHECK(order == std::vector<int>{7});
  s.release(2);  // ours and the outsider's
  CHECK(s.available() == kPermits);
  CHECK_THROWS_AS(s.release(), skein::UsageError);
}

TEST_CASE("cancel racing release: every permit is accounted for afterwards") {
  Watchdog wd(120s);
  const int n = scaled(5000);
  skein::Semaphore s(1);
  int got = 0, cancels = 0;
  for (int i = 0; i < n; ++i) {
    s.acquire();
    skein::Context ctx;
    auto p = (i % 2) ? ctx.run([&s] {
      s.acquire();
      s.release();
    })
                     : ctx.run([&s]() -> Promise<void> {
                         co_await s.async_acquire();
                         s.release();
                       });
    std::thread t([&] { s.release(); });
    ctx.cancel();
    t.join();
    try {
      p.get();
      ++got;
    } catch (const skein::Cancelled&) {
      ++cancels;
    }
    REQUIRE(s.available() == 1);
  }
  CHECK(got + cancels == n);
}

TEST_CASE("timed-out acquires racing release leak no permit") {
  Watchdog wd(120s);
  const int n = scaled(3000);
  skein::Semaphore s(1);
  for (int i = 0; i < n; ++i) {
    s.acquire();
    std::thread t([&] { s.release(); });
    if (s.try_acquire_for(std::chrono::microseconds(i % 40))) s.release();
    t.join();
    REQUIRE(s.available() == 1);
  }
  CHECK(s.available() == 1);
}

TEST_CASE("a Semaphore may be destroyed by whoever acquires the permit released last") {
  Watchdog wd(120s);
  // release() must not touch the Semaphore after publishing the permit (ASan
  // reports it if it does).
  const int n = scaled(5000);
  for (int i = 0; i < n; ++i) {
    auto s = std::make_unique<skein::Semaphore>(1);
    s->acquire();
    std::thread t([p = s.get()] { p->release(); });
    if (i % 2) {
      while (!s->try_acquire()) {
      }
    } else {
      s->acquire();
    }
    s.reset();
    t.join();
  }
}

// --- Permit ----------------------------------------------------------------------

namespace {

/// Counts the unhandled-error reports whose message contains `part` (restored on destruction).
class UnhandledCount {
public:
  explicit UnhandledCount(std::string part) : seen_(std::make_shared<Seen>()) {
    seen_->part = std::move(part);
    skein::set_unhandled_error_handler([s = seen_](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        if (std::string(ex.what()).find(s->part) != std::string::npos) ++s->n;
      } catch (...) {
      }
    });
  }
  ~UnhandledCount() { skein::set_unhandled_error_handler(nullptr); }
  UnhandledCount(const UnhandledCount&) = delete;
  UnhandledCount& operator=(const UnhandledCount&) = delete;
  int count() const { return seen_->n.load(); }

private:
  struct Seen {
    std::string part;
    std::atomic<int> n{0};
  };
  std::shared_ptr<Seen> seen_;
};

}  // namespace

TEST_CASE("Permit: the type's rules") {
  static_assert(!std::is_copy_constructible_v<skein::Permit>);
  static_assert(!std::is_copy_assignable_v<skein::Permit>);
  static_assert(std::is_nothrow_move_constructible_v<skein::Permit>);
  static_assert(std::is_nothrow_move_assignable_v<skein::Permit>);
  static_assert(!std::is_convertible_v<skein::Permit, bool>);  // explicit operator bool
  static_assert(std::is_constructible_v<bool, skein::Permit>);
  skein::Permit empty;
  CHECK_FALSE(empty.held());
  CHECK_FALSE(empty);
  CHECK(empty.semaphore() == nullptr);
  empty.release();  // nothing to release
  CHECK(empty.detach() == nullptr);
}

TEST_CASE("Permit holds one permit for its scope, and returns it however the scope is left") {
  skein::Semaphore s(2);
  {
    skein::Permit p(s);
    CHECK(p.held());
    CHECK(static_cast<bool>(p));
    CHECK(p.semaphore() == &s);
    CHECK(s.available() == 1);
    {
      skein::Permit q(s);
      CHECK(s.available() == 0);
    }
    CHECK(s.available() == 1);
  }
  CHECK(s.available() == 2);
  auto leave_by_throw = [&s] {
    skein::Permit p(s);
    throw std::runtime_error("early exit");
  };
  CHECK_THROWS_AS(leave_by_throw(), std::runtime_error);
  CHECK(s.available() == 2);
  auto leave_early = [&s](bool early) {
    skein::Permit p(s);
    if (early) return s.available();
    return std::ptrdiff_t{-1};
  };
  CHECK(leave_early(true) == 1);
  CHECK(s.available() == 2);
}

TEST_CASE("Permit moves: the permit goes along, is released once, and a move-assignment releases the old one") {
  skein::Semaphore s(2), t(1);
  skein::Permit a(s);
  skein::Permit b(std::move(a));
  CHECK_FALSE(a.held());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  CHECK(a.semaphore() == nullptr);
  CHECK(b.held());
  CHECK(b.semaphore() == &s);
  CHECK(s.available() == 1);
  skein::Permit c(t);
  CHECK(t.available() == 0);
  c = std::move(b);  // c gives t's permit back, takes s's
  CHECK(t.available() == 1);
  CHECK(s.available() == 1);
  CHECK(c.semaphore() == &s);
  CHECK_FALSE(b.held());  // NOLINT(bugprone-use-after-move)
  c = skein::Permit();
  CHECK(s.available() == 2);
  CHECK_FALSE(c.held());
  std::vector<skein::Permit> held;
  for (int i = 0; i < 2; ++i) held.emplace_back(s);
  CHECK(s.available() == 0);
  held.erase(held.begin());
  CHECK(s.available() == 1);
  held.clear();
  CHECK(s.available() == 2);
}

TEST_CASE("Permit with try_to_lock holds nothing when no permit is free") {
  skein::Semaphore s(1);
  skein::Permit a(s, std::try_to_lock);
  CHECK(a.held());
  CHECK(s.available() == 0);
  skein::Permit b(s, std::try_to_lock);
  CHECK_FALSE(b.held());
  CHECK_FALSE(b);
  CHECK(b.semaphore() == nullptr);
  CHECK(s.available() == 0);
  a.release();
  skein::Permit c(s, std::try_to_lock);
  CHECK(c.held());
  skein::Semaphore none(0);
  CHECK_FALSE(skein::Permit(none, std::try_to_lock).held());
}

TEST_CASE("Permit with a duration waits at most that long") {
  Watchdog wd(30s);
  skein::Semaphore s(1);
  skein::Permit a(s, 0ms);  // free: taken at once
  CHECK(a.held());
  skein::Permit b(s, 10ms);
  CHECK_FALSE(b.held());
  CHECK(s.available() == 0);
  // A permit released while it waits.
  Event trying;
  std::thread t([&] {
    trying.set();
    skein::Permit c(s, 30s);
    CHECK(c.held());
  });
  trying.wait();
  a.release();
  t.join();
  CHECK(s.available() == 1);
}

TEST_CASE("Permit with adopt_lock takes over a permit acquired by hand; release() and detach()") {
  skein::Semaphore s(2);
  s.acquire();
  {
    skein::Permit p(s, std::adopt_lock);
    CHECK(p.held());
    CHECK(s.available() == 1);
  }
  CHECK(s.available() == 2);

  skein::Permit early(s);
  early.release();  // returned now
  CHECK_FALSE(early.held());
  CHECK(s.available() == 2);
  early.release();  // nothing more
  CHECK(s.available() == 2);

  skein::Permit kept(s);
  skein::Semaphore* from = kept.detach();  // ownership given up, permit kept
  CHECK(from == &s);
  CHECK_FALSE(kept.held());
  CHECK(s.available() == 1);
  { skein::Permit back(*from, std::adopt_lock); }
  CHECK(s.available() == 2);
}

TEST_CASE("a Permit whose permit was also released by hand reports the UsageError instead of throwing") {
  UnhandledCount h("above its bound");
  skein::Semaphore s(1);
  {
    skein::Permit p(s);
    s.release();  // wrong: the Permit still holds it
    // The destructor's release is above the bound: reported, not thrown.
  }
  CHECK(h.count() == 1);
  CHECK(s.available() == 1);
}

TEST_CASE("co_await sem.async_permit() gives a Permit, suspending until a permit is free") {
  Watchdog wd(30s);
  skein::Semaphore s(1);
  auto fast = [](skein::Semaphore& sem) -> Promise<std::ptrdiff_t> {
    skein::Permit p = co_await sem.async_permit();
    co_return p.held() ? sem.available() : -1;
  }(s);
  CHECK(fast.ready());  // a free permit: no suspension
  CHECK(fast.get() == 0);
  CHECK(s.available() == 1);  // released when the coroutine ended

  skein::Permit mine(s);
  std::vector<int> order;
  auto waiter = [](skein::Semaphore& sem, std::vector<int>& ord, int id) -> Promise<void> {
    skein::Permit p = co_await sem.async_permit();
    ord.push_back(id);
    co_await skein::async_sleep(1ms);  // holding it across a suspension
  };
  auto w1 = waiter(s, order, 1);
  auto w2 = waiter(s, order, 2);
  CHECK_FALSE(w1.ready());
  CHECK(order.empty());
  mine.release();
  w1.get();
  w2.get();
  CHECK(order == std::vector<int>{1, 2});  // FIFO
  CHECK(s.available() == 1);

  // In a pool task, the Permit moved out of the coroutine.
  auto task = skein::run([&s]() -> Promise<int> {
    skein::Permit p = co_await s.async_permit();
    skein::Permit q = std::move(p);
    co_return q.held() && !p.held() ? 1 : 0;  // NOLINT(bugprone-use-after-move)
  });
  CHECK(task.get() == 1);
  CHECK(s.available() == 1);
}

TEST_CASE("cancelled while waiting for a Permit: Cancelled, and nothing held") {
  Watchdog wd(30s);
  skein::Semaphore s(1);
  skein::Permit mine(s);
  skein::Context ctx;
  Event started;
  std::atomic<int> constructed{0};
  auto blocking = ctx.run([&] {
    started.set();
    skein::Permit p(s);
    ++constructed;
  });
  auto coro = ctx.run([&]() -> Promise<void> {
    skein::Permit p = co_await s.async_permit();
    ++constructed;
  });
  auto timed = ctx.run([&] {
    skein::Permit p(s, 60s);
    ++constructed;
  });
  started.wait();
  std::this_thread::sleep_for(10ms);  // let them block (cancelled before that, they throw too)
  const auto cause = std::make_exception_ptr(std::runtime_error("no longer needed"));
  ctx.cancel(cause);
  for (auto* p : {&blocking, &coro, &timed}) {
    try {
      p->get();
      FAIL("a cancelled Permit wait returned");
    } catch (const skein::Cancelled& e) {
      // (a task the cancel beat never started: its Cancelled names the cause too)
      CHECK(e.cause() == cause);
    }
  }
  CHECK(constructed.load() == 0);
  CHECK(s.available() == 0);  // still ours only
  mine.release();
  CHECK(s.available() == 1);  // nobody else took it
  skein::Permit again(s, std::try_to_lock);
  CHECK(again.held());
}

TEST_CASE("stress: never more than N Permit holders, threads and coroutines, with early releases") {
  Watchdog wd(120s);
  const int n = scaled(5000);
  constexpr int kPermits = 2;
  skein::Semaphore s(kPermits);
  std::atomic<int> holders{0}, over{0};
  std::atomic<long> total{0};
  auto section = [&] {
    if (++holders > kPermits) ++over;
    ++total;
    --holders;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < n; ++i) {
        if ((i + t) % 3 == 0) {
          skein::Permit p(s, std::try_to_lock);
          if (!p) {
            p = skein::Permit(s);
          }
          section();
        } else {
          skein::Permit p(s);
          section();
          if (i % 2) p.release();  // early
        }
      }
    });
  std::vector<Promise<void>> ps;
  for (int t = 0; t < 2; ++t)
    ps.push_back(skein::run([&]() -> Promise<void> {
      for (int i = 0; i < n; ++i) {
        skein::Permit p = co_await s.async_permit();
        section();
        if (i % 100 == 0) co_await skein::async_sleep(std::chrono::microseconds(20));
      }
    }));
  for (auto& t : threads) t.join();
  for (auto& p : ps) p.get();
  CHECK(over.load() == 0);
  CHECK(total.load() == 4L * n);
  CHECK(s.available() == kPermits);
}
