// Mutex: lock/unlock/try_lock/try_lock_for for threads, async_lock for
// coroutines, FIFO hand-off and fairness, misuse, cancellation, and mutual
// exclusion under stress with threads and coroutines mixed.
#include "support/common.hpp"

#include <memory>
#include <mutex>
#include <vector>

using namespace test;
using skein::Promise;

namespace {

/// An eager coroutine that queues on `m` before returning to its caller (if
/// the mutex is held), then records `id` while holding the lock.
Promise<void> take_and_record(skein::Mutex& m, std::vector<int>& order, int id) {
  auto g = co_await m.async_lock();
  CHECK(g.owns_lock());
  order.push_back(id);
}

/// Increments a plain counter under the lock and checks nobody else is inside.
struct Guarded {
  skein::Mutex m;
  long value = 0;  // only touched under m
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  void enter() {
    if (inside.fetch_add(1) != 0) ++overlaps;
  }
  void leave() { inside.fetch_sub(1); }
};

}  // namespace

TEST_CASE("try_lock takes a free Mutex and fails on a held one") {
  skein::Mutex m;
  CHECK_FALSE(m.locked());
  CHECK(m.try_lock());
  CHECK(m.locked());
  CHECK_FALSE(m.try_lock());
  std::thread([&] { CHECK_FALSE(m.try_lock()); }).join();
  m.unlock();
  CHECK_FALSE(m.locked());
  CHECK(m.try_lock());
  m.unlock();
}

TEST_CASE("unlock of an unlocked Mutex is a UsageError and changes nothing") {
  skein::Mutex m;
  CHECK_THROWS_WITH_AS(m.unlock(), "unlock of an unlocked Mutex", skein::UsageError);
  CHECK_FALSE(m.locked());
  m.lock();
  m.unlock();
  CHECK_THROWS_WITH_AS(m.unlock(), "unlock of an unlocked Mutex", skein::UsageError);
  CHECK(m.try_lock());
  m.unlock();
}

TEST_CASE("Mutex works with std::lock_guard, std::unique_lock and std::scoped_lock") {
  skein::Mutex m;
  {
    std::lock_guard lk(m);
    CHECK(m.locked());
  }
  CHECK_FALSE(m.locked());
  {
    std::unique_lock lk(m, std::try_to_lock);
    CHECK(lk.owns_lock());
    std::unique_lock other(m, std::try_to_lock);
    CHECK_FALSE(other.owns_lock());
  }
  CHECK_FALSE(m.locked());
  skein::Mutex m2;
  {
    std::scoped_lock both(m, m2);
    CHECK(m.locked());
    CHECK(m2.locked());
  }
  CHECK_FALSE(m.locked());
  CHECK_FALSE(m2.locked());
}

TEST_CASE("ownership is not tracked: another thread may unlock") {
  skein::Mutex m;
  m.lock();
  std::thread([&] { m.unlock(); }).join();
  CHECK_FALSE(m.locked());
}

TEST_CASE("lock blocks a thread until the holder unlocks") {
  Watchdog wd(30s);
  skein::Mutex m;
  m.lock();
  Event got;
  std::thread t([&] {
    m.lock();
    got.set();
    m.unlock();
  });
  CHECK_FALSE(got.wait_for(30ms));
  CHECK(m.locked());
  m.unlock();
  CHECK(got.wait_for(10s));
  t.join();
  CHECK_FALSE(m.locked());
}

TEST_CASE("try_lock_for times out on a held Mutex and locks one released in time") {
  Watchdog wd(30s);
  skein::Mutex m;
  CHECK(m.try_lock_for(0ms));  // free: takes it at once
  std::thread([&] {
    CHECK_FALSE(m.try_lock_for(10ms));
    CHECK_FALSE(m.try_lock_for(std::chrono::microseconds(1)));
  }).join();
  CHECK(m.locked());
  Event trying;
  std::thread t([&] {
    trying.set();
    CHECK(m.try_lock_for(30s));
    m.unlock();
  });
  trying.wait();
  std::this_thread::sleep_for(5ms);
  m.unlock();
  t.join();
  CHECK_FALSE(m.locked());
  CHECK(m.try_lock());  // nothing was leaked by the timed-out attempts
  m.unlock();
}

TEST_CASE("async_lock gives a guard that owns the lock and unlocks at scope exit") {
  skein::Mutex m;
  auto p = [](skein::Mutex& m) -> Promise<void> {
    {
      auto g = co_await m.async_lock();
      static_assert(std::is_same_v<decltype(g), std::unique_lock<skein::Mutex>>);
      CHECK(g.owns_lock());
      CHECK(g.mutex() == &m);
      CHECK(m.locked());
    }
    CHECK_FALSE(m.locked());
    auto g2 = co_await m.async_lock();
    g2.unlock();  // an early unlock through the guard
    CHECK_FALSE(m.locked());
  }(m);
  CHECK(p.ready());  // uncontended: no suspension
  p.get();
  CHECK_FALSE(m.locked());
}

TEST_CASE("a coroutine waits for a lock held by a thread, without blocking a thread") {
  Watchdog wd(30s);
  skein::ThreadPool pool(1);
  skein::Mutex m;
  m.lock();
  std::atomic<int> step{0};
  auto co = skein::run(pool, [&]() -> Promise<void> {
    auto g = co_await m.async_lock();
    step = 1;
  });
  // The only pool thread is free while the coroutine waits: other tasks run.
  CHECK(skein::run(pool, [] { return 5; }).get() == 5);
  CHECK(step.load() == 0);
  CHECK_FALSE(co.ready());
  m.unlock();
  co.get();
  CHECK(step.load() == 1);
  CHECK_FALSE(m.locked());
}

TEST_CASE("waiters get the lock in FIFO order") {
  Watchdog wd(30s);
  skein::Mutex m;
  std::vector<int> order;
  m.lock();
  std::vector<Promise<void>> ps;
  // Each eager coroutine has queued on the mutex when its call returns.
  for (int i = 0; i < 10; ++i) ps.push_back(take_and_record(m, order, i));
  for (auto& p : ps) CHECK_FALSE(p.ready());
  m.unlock();
  for (auto& p : ps) p.get();
  std::vector<int> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(i);
  CHECK(order == expected);
  CHECK_FALSE(m.locked());
}

TEST_CASE("a waiter gets the lock while another thread keeps re-taking it in a loop") {
  Watchdog wd(30s, "mutex fairness");
  skein::Mutex m;
  std::atomic<bool> stop{false};
  std::atomic<long> retakes{0};
  Event looping;
  std::thread hog([&] {
    while (!stop.load()) {
      m.lock();
      looping.set();
      ++retakes;
      m.unlock();
    }
  });
  looping.wait();
  // A blocking thread waiter...
  std::thread waiter([&] {
    m.lock();
    m.unlock();
  });
  waiter.join();
  // ...and a coroutine waiter on the pool.
  skein::run([&]() -> Promise<void> { auto g = co_await m.async_lock(); }).get();
  // ...and a pool task blocked in lock().
  skein::run([&] { std::lock_guard lk(m); }).get();
  stop = true;
  hog.join();
  CHECK(retakes.load() > 0);
  CHECK_FALSE(m.locked());
}

TEST_CASE("mutual exclusion with threads, pool tasks and coroutines mixed: exact total") {
  Watchdog wd(120s);
  const int n = scaled(20000);
  skein::ThreadPool pool(2);
  Guarded g;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&g, n] {
      for (int i = 0; i < n; ++i) {
        std::lock_guard lk(g.m);
        g.enter();
        ++g.value;
        g.leave();
      }
    });
  std::vector<Promise<void>> ps;
  for (int t = 0; t < 2; ++t)
    ps.push_back(skein::run(pool, [&g, n] {
      for (int i = 0; i < n; ++i) {
        // (No busy try_lock loop here: the lock may have been handed to a
        // coroutine that needs one of these two pool threads to run.)
        if (i % 3 == 0) {
          if (!g.m.try_lock()) g.m.lock();
        } else if (i % 3 == 1) {
          while (!g.m.try_lock_for(1ms)) {
          }
        } else {
          g.m.lock();
        }
        g.enter();
        ++g.value;
        g.leave();
        g.m.unlock();
      }
    }));
  for (int t = 0; t < 4; ++t)
    ps.push_back(skein::run(pool, [&g, n]() -> Promise<void> {
      for (int i = 0; i < n; ++i) {
        auto lk = co_await g.m.async_lock();
        g.enter();
        ++g.value;
        g.leave();
        if (i % 1000 == 0) co_await skein::async_sleep(std::chrono::microseconds(5));  // suspend while holding
      }
    }));
  for (auto& t : threads) t.join();
  for (auto& p : ps) p.get();
  CHECK(g.overlaps.load() == 0);
  std::lock_guard lk(g.m);
  CHECK(g.value == 8L * n);
}

TEST_CASE("a blocked lock in a cancelled context throws Cancelled and leaves the Mutex consistent") {
  Watchdog wd(30s);
  skein::Mutex m;
  m.lock();
  skein::Context ctx;
  Event started;
  auto blocking = ctx.run([&] {
    started.set();
    m.lock();
    m.unlock();
  });
  auto coro = ctx.run([&]() -> Promise<void> { auto g = co_await m.async_lock(); });
  auto timed = ctx.run([&] { return m.try_lock_for(60s); });
  // A waiter outside the context queues behind the cancelled ones.
  std::atomic<bool> outsider_got{false};
  auto outsider = skein::run([&]() -> Promise<void> {
    auto g = co_await m.async_lock();
    outsider_got = true;
  });
  started.wait();
  std::this_thread::sleep_for(10ms);
  CHECK_FALSE(blocking.ready());
  ctx.cancel();
  CHECK_THROWS_AS(blocking.get(), skein::Cancelled);
  CHECK_THROWS_AS(coro.get(), skein::Cancelled);
  CHECK_THROWS_AS(timed.get(), skein::Cancelled);
  CHECK(m.locked());  // still held by the main thread
  CHECK_FALSE(outsider_got.load());
  m.unlock();  // hands the lock to the outsider
  outsider.get();
  CHECK(outsider_got.load());
  CHECK_FALSE(m.locked());
  CHECK(m.try_lock());
  m.unlock();
}

TEST_CASE("cancel racing unlock: the lock is either taken and released or not taken; the Mutex ends unlocked") {
  Watchdog wd(120s);
  const int n = scaled(5000);
  int got = 0, cancels = 0;
  skein::Mutex m;
  for (int i = 0; i < n; ++i) {
    m.lock();
    skein::Context ctx;
    auto p = (i % 2) ? ctx.run([&m] {
      m.lock();
      m.unlock();
    })
                     : ctx.run([&m]() -> Promise<void> { auto g = co_await m.async_lock(); });
    std::thread t([&] { m.unlock(); });
    ctx.cancel();
    t.join();
    try {
      p.get();
      ++got;
    } catch (const skein::Cancelled&) {
      ++cancels;
    }
    REQUIRE_FALSE(m.locked());
  }
  CHECK(got + cancels == n);
  CHECK(m.try_lock());
  m.unlock();
}

TEST_CASE("try_lock_for timing out racing unlock never leaves the Mutex locked") {
  Watchdog wd(120s);
  const int n = scaled(3000);
  skein::Mutex m;
  int got = 0;
  for (int i = 0; i < n; ++i) {
    m.lock();
    Event go;
    std::thread t([&] {
      go.wait();
      m.unlock();
    });
    go.set();
    if (m.try_lock_for(std::chrono::microseconds(i % 50))) {
      ++got;
      m.unlock();
    } else {
      t.join();
      REQUIRE_FALSE(m.locked());
      continue;
    }
    t.join();
    REQUIRE_FALSE(m.locked());
  }
  CHECK(got <= n);
}

TEST_CASE("a Mutex may be destroyed by its last user as soon as that user unlocks it") {
  Watchdog wd(120s);
  // Reference counting under the mutex (POSIX's classic example): whoever
  // drops the last reference destroys the mutex, possibly while the other
  // thread is still returning from unlock() (ASan reports a late touch).
  const int n = scaled(5000);
  for (int i = 0; i < n; ++i) {
    struct Obj {
      skein::Mutex m;
      int refs = 2;  // under m
    };
    auto* o = new Obj;
    auto drop = [](Obj* p) {
      p->m.lock();
      bool last = --p->refs == 0;
      p->m.unlock();
      if (last) delete p;
    };
    std::thread t(drop, o);
    if (i % 2) {
      drop(o);
    } else {
      skein::run([o]() -> Promise<void> {
        bool last;
        {
          auto g = co_await o->m.async_lock();
          last = --o->refs == 0;
        }
        if (last) delete o;
      }).get();
    }
    t.join();
  }
}
