// RWLock: shared and exclusive modes, blocking, timed and async forms, FIFO
// admission, writers not starved by a stream of readers, misuse, cancellation,
// and exclusion under stress with threads and coroutines mixed.
#include "support/common.hpp"

#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

using namespace test;
using skein::Promise;

namespace {

std::mutex order_mu;

Promise<void> write_and_record(skein::RWLock& rw, std::vector<std::string>& order, std::string id) {
  auto g = co_await rw.async_lock();
  {
    std::lock_guard lk(order_mu);
    order.push_back(id);
  }
}

/// Takes the lock shared and keeps it until `hold` settles.
Promise<void> read_and_record(skein::RWLock& rw, std::vector<std::string>& order, std::string id, Promise<void> hold) {
  auto g = co_await rw.async_lock_shared();
  {
    std::lock_guard lk(order_mu);
    order.push_back(id);
  }
  co_await hold;
}

}  // namespace

TEST_CASE("try_lock_shared admits many readers; try_lock needs the lock free") {
  skein::RWLock rw;
  CHECK(rw.try_lock_shared());
  CHECK(rw.try_lock_shared());
  CHECK(rw.try_lock_shared());
  CHECK_FALSE(rw.try_lock());
  rw.unlock_shared();
  rw.unlock_shared();
  CHECK_FALSE(rw.try_lock());
  rw.unlock_shared();
  CHECK(rw.try_lock());
  CHECK_FALSE(rw.try_lock());
  CHECK_FALSE(rw.try_lock_shared());
  rw.unlock();
  CHECK(rw.try_lock_shared());
  rw.unlock_shared();
}

TEST_CASE("unlocking an RWLock in a mode it is not held in is a UsageError and changes nothing") {
  skein::RWLock rw;
  CHECK_THROWS_WITH_AS(rw.unlock(), "unlock of an RWLock that is not locked for writing", skein::UsageError);
  CHECK_THROWS_WITH_AS(rw.unlock_shared(), "unlock_shared of an RWLock that is not locked for reading",
                       skein::UsageError);
  // Held shared: unlock (exclusive) is misuse.
  rw.lock_shared();
  CHECK_THROWS_WITH_AS(rw.unlock(), "unlock of an RWLock that is not locked for writing", skein::UsageError);
  CHECK_FALSE(rw.try_lock());  // the reader still holds it
  rw.unlock_shared();
  // Held exclusive: unlock_shared is misuse.
  rw.lock();
  CHECK_THROWS_WITH_AS(rw.unlock_shared(), "unlock_shared of an RWLock that is not locked for reading",
                       skein::UsageError);
  CHECK_FALSE(rw.try_lock_shared());  // the writer still holds it
  rw.unlock();
  CHECK_THROWS_WITH_AS(rw.unlock(), "unlock of an RWLock that is not locked for writing", skein::UsageError);
  CHECK(rw.try_lock());
  rw.unlock();
}

TEST_CASE("RWLock works with std::unique_lock, std::shared_lock and std::lock_guard") {
  skein::RWLock rw;
  {
    std::shared_lock a(rw);
    std::shared_lock b(rw);
    CHECK(a.owns_lock());
    CHECK(b.owns_lock());
    std::unique_lock w(rw, std::try_to_lock);
    CHECK_FALSE(w.owns_lock());
  }
  {
    std::lock_guard w(rw);
    std::shared_lock r(rw, std::try_to_lock);
    CHECK_FALSE(r.owns_lock());
  }
  std::unique_lock w(rw, std::try_to_lock);
  CHECK(w.owns_lock());
}

TEST_CASE("many readers hold the lock at the same time, threads and coroutines together") {
  Watchdog wd(30s);
  skein::RWLock rw;
  constexpr int kThreads = 4, kCoros = 20;
  std::atomic<int> inside{0};
  skein::Resolver<void> all_in_r;
  auto all_in = all_in_r.promise();
  std::once_flag once;
  auto arrived = [&] {
    if (++inside == kThreads + kCoros) std::call_once(once, [&] { all_in_r.resolve(); });
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&] {
      rw.lock_shared();
      arrived();
      all_in.wait();  // every reader is inside before any leaves
      rw.unlock_shared();
    });
  std::vector<Promise<void>> ps;
  for (int i = 0; i < kCoros; ++i)
    ps.push_back(skein::run([&]() -> Promise<void> {
      auto g = co_await rw.async_lock_shared();
      static_assert(std::is_same_v<decltype(g), std::shared_lock<skein::RWLock>>);
      CHECK(g.owns_lock());
      arrived();
      co_await all_in;
    }));
  for (auto& t : threads) t.join();
  for (auto& p : ps) p.get();
  CHECK(inside.load() == kThreads + kCoros);
  CHECK(rw.try_lock());
  rw.unlock();
}

TEST_CASE("a writer waits for the readers; readers wait for the writer") {
  Watchdog wd(30s);
  skein::RWLock rw;
  rw.lock_shared();
  Event writing;
  std::thread writer([&] {
    rw.lock();
    writing.set();
    rw.unlock();
  });
  CHECK_FALSE(writing.wait_for(30ms));
  rw.unlock_shared();
  CHECK(writing.wait_for(10s));
  writer.join();

  rw.lock();
  Event reading, reading_co;
  std::thread reader([&] {
    rw.lock_shared();
    reading.set();
    rw.unlock_shared();
  });
  auto co = skein::run([&]() -> Promise<void> {
    auto g = co_await rw.async_lock_shared();
    reading_co.set();
  });
  CHECK_FALSE(reading.wait_for(30ms));
  CHECK_FALSE(reading_co.is_set());
  rw.unlock();
  CHECK(reading.wait_for(10s));
  co.get();
  CHECK(reading_co.is_set());
  reader.join();
}

TEST_CASE("async_lock gives an exclusive guard; a coroutine writer waits for a reader thread") {
  Watchdog wd(30s);
  skein::RWLock rw;
  auto uncontended = [](skein::RWLock& rw) -> Promise<void> {
    auto g = co_await rw.async_lock();
    static_assert(std::is_same_v<decltype(g), std::unique_lock<skein::RWLock>>);
    CHECK(g.owns_lock());
    CHECK_FALSE(rw.try_lock_shared());
  }(rw);
  CHECK(uncontended.ready());
  uncontended.get();

  rw.lock_shared();
  std::atomic<bool> wrote{false};
  auto co = skein::run([&]() -> Promise<void> {
    auto g = co_await rw.async_lock();
    wrote = true;
  });
  CHECK_FALSE(co.wait_for(20ms));
  CHECK_FALSE(wrote.load());
  rw.unlock_shared();
  co.get();
  CHECK(wrote.load());
  CHECK(rw.try_lock());
  rw.unlock();
}

TEST_CASE("once a writer waits, new readers queue behind it") {
  Watchdog wd(30s);
  skein::RWLock rw;
  rw.lock_shared();  // the first reader
  Event wrote;
  std::thread writer([&] {
    rw.lock();
    wrote.set();
    rw.unlock();
  });
  // As soon as the writer is queued, a new reader cannot get in.
  REQUIRE(eventually([&] {
    if (rw.try_lock_shared()) {
      rw.unlock_shared();
      return false;
    }
    return true;
  }));
  std::atomic<bool> late_reader_in{false};
  std::thread late_reader([&] {
    rw.lock_shared();
    late_reader_in = true;
    CHECK(wrote.is_set());  // the writer went first
    rw.unlock_shared();
  });
  CHECK_FALSE(wrote.wait_for(20ms));
  CHECK_FALSE(late_reader_in.load());
  rw.unlock_shared();  // the last reader leaves: the writer goes, then the late reader
  CHECK(wrote.wait_for(10s));
  writer.join();
  late_reader.join();
  CHECK(late_reader_in.load());
}

TEST_CASE("waiters are admitted in FIFO order, a run of readers together") {
  Watchdog wd(30s);
  skein::RWLock rw;
  std::vector<std::string> order;
  skein::Resolver<void> hold_r;
  auto hold = hold_r.promise();
  rw.lock();
  // Eager coroutines: each has queued when its call returns.
  std::vector<Promise<void>> ps;
  ps.push_back(write_and_record(rw, order, "W1"));
  ps.push_back(read_and_record(rw, order, "R1", hold));
  ps.push_back(read_and_record(rw, order, "R2", hold));
  ps.push_back(write_and_record(rw, order, "W2"));
  ps.push_back(read_and_record(rw, order, "R3", hold));
  for (auto& p : ps) CHECK_FALSE(p.ready());
  rw.unlock();  // W1 runs and unlocks; R1 and R2 enter together and hold
  {
    std::lock_guard lk(order_mu);
    CHECK(order == std::vector<std::string>{"W1", "R1", "R2"});
  }
  CHECK_FALSE(ps[3].ready());  // W2 waits for R1 and R2
  CHECK_FALSE(ps[4].ready());  // R3 waits behind W2
  hold_r.resolve();
  for (auto& p : ps) p.get();
  std::lock_guard lk(order_mu);
  CHECK(order == std::vector<std::string>{"W1", "R1", "R2", "W2", "R3"});
}

TEST_CASE("a writer is not starved by a stream of readers that keeps the lock busy") {
  Watchdog wd(60s, "writer starvation");
  skein::RWLock rw;
  std::atomic<bool> stop{false};
  std::atomic<int> readers_in{0};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i)
    readers.emplace_back([&] {
      while (!stop.load()) {
        rw.lock_shared();
        ++readers_in;
        ++reads;
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // overlap with the other readers
        --readers_in;
        rw.unlock_shared();
      }
    });
  // Coroutine readers join the stream too.
  std::vector<Promise<void>> co_readers;
  for (int i = 0; i < 2; ++i)
    co_readers.push_back(skein::run([&]() -> Promise<void> {
      while (!stop.load()) {
        auto g = co_await rw.async_lock_shared();
        ++reads;
        co_await skein::async_sleep(std::chrono::microseconds(200));
      }
    }));
  REQUIRE(eventually([&] { return reads.load() > 20; }));
  for (int round = 0; round < 5; ++round) {
    // A blocking writer thread, a coroutine writer and a writer pool task each get in.
    {
      std::lock_guard w(rw);
      CHECK(readers_in.load() == 0);
    }
    skein::run([&]() -> Promise<void> {
      auto g = co_await rw.async_lock();
      CHECK(readers_in.load() == 0);
    }).get();
    skein::run([&] {
      rw.lock();
      CHECK(readers_in.load() == 0);
      rw.unlock();
    }).get();
  }
  stop = true;
  for (auto& t : readers) t.join();
  for (auto& p : co_readers) p.get();
}

TEST_CASE("try_lock_for and try_lock_shared_for time out, and a timed-out writer lets the readers behind it in") {
  Watchdog wd(30s);
  skein::RWLock rw;
  rw.lock();
  std::thread([&] {
    CHECK_FALSE(rw.try_lock_for(10ms));
    CHECK_FALSE(rw.try_lock_shared_for(10ms));
  }).join();
  rw.unlock();
  CHECK(rw.try_lock_shared_for(0ms));
  CHECK(rw.try_lock_shared_for(1s));  // two readers

  // The readers hold; a writer waits (timed); a reader queues behind it.
  Event writer_gave_up;
  std::thread writer([&] {
    CHECK_FALSE(rw.try_lock_for(100ms));
    writer_gave_up.set();
  });
  REQUIRE(eventually([&] {
    if (rw.try_lock_shared()) {
      rw.unlock_shared();
      return false;
    }
    return true;  // the writer is queued
  }));
  Event late_in;
  std::thread late([&] {
    rw.lock_shared();
    late_in.set();
    rw.unlock_shared();
  });
  // The late reader gets in when the writer gives up, while the first readers still hold.
  CHECK(late_in.wait_for(10s));
  CHECK(writer_gave_up.wait_for(10s));
  writer.join();
  late.join();
  rw.unlock_shared();
  rw.unlock_shared();
  CHECK(rw.try_lock_for(1s));
  rw.unlock();
}

TEST_CASE("blocked writers in a cancelled context throw Cancelled and leave no phantom waiting writer") {
  Watchdog wd(30s);
  skein::RWLock rw;
  rw.lock_shared();  // a reader holds
  skein::Context ctx;
  Event started;
  auto w_block = ctx.run([&] {
    started.set();
    rw.lock();
  });
  auto w_co = ctx.run([&]() -> Promise<void> { auto g = co_await rw.async_lock(); });
  auto w_timed = ctx.run([&] { return rw.try_lock_for(60s); });
  started.wait();
  // With a writer queued, new readers cannot get in.
  REQUIRE(eventually([&] {
    if (rw.try_lock_shared()) {
      rw.unlock_shared();
      return false;
    }
    return true;
  }));
  std::this_thread::sleep_for(10ms);
  CHECK_FALSE(w_block.ready());
  ctx.cancel();
  CHECK_THROWS_AS(w_block.get(), skein::Cancelled);
  CHECK_THROWS_AS(w_co.get(), skein::Cancelled);
  CHECK_THROWS_AS(w_timed.get(), skein::Cancelled);
  // New readers get in at once, and the lock is free once the original reader leaves.
  CHECK(rw.try_lock_shared());
  rw.unlock_shared();
  CHECK_FALSE(rw.try_lock());
  rw.unlock_shared();
  CHECK(rw.try_lock());
  rw.unlock();
}

TEST_CASE("blocked readers in a cancelled context throw Cancelled; the RWLock stays consistent") {
  Watchdog wd(30s);
  skein::RWLock rw;
  rw.lock();  // a writer holds
  skein::Context ctx;
  Event started;
  auto r_block = ctx.run([&] {
    started.set();
    rw.lock_shared();
  });
  auto r_co = ctx.run([&]() -> Promise<void> { auto g = co_await rw.async_lock_shared(); });
  auto r_timed = ctx.run([&] { return rw.try_lock_shared_for(60s); });
  auto w_co = ctx.run([&]() -> Promise<void> { auto g = co_await rw.async_lock(); });
  // A reader outside the context, queued too, is admitted later as usual.
  std::atomic<bool> outsider_in{false};
  auto outsider = skein::run([&]() -> Promise<void> {
    auto g = co_await rw.async_lock_shared();
    outsider_in = true;
  });
  started.wait();
  std::this_thread::sleep_for(10ms);
  CHECK_FALSE(r_block.ready());
  ctx.cancel();
  CHECK_THROWS_AS(r_block.get(), skein::Cancelled);
  CHECK_THROWS_AS(r_co.get(), skein::Cancelled);
  CHECK_THROWS_AS(r_timed.get(), skein::Cancelled);
  CHECK_THROWS_AS(w_co.get(), skein::Cancelled);
  CHECK_FALSE(outsider_in.load());
  CHECK_FALSE(rw.try_lock_shared());  // the writer still holds
  rw.unlock();
  outsider.get();
  CHECK(outsider_in.load());
  CHECK(rw.try_lock());
  rw.unlock();
  CHECK(rw.try_lock_shared());
  rw.unlock_shared();
}

TEST_CASE("cancelling a waiting writer admits the readers queued behind it") {
  Watchdog wd(30s);
  skein::RWLock rw;
  rw.lock_shared();
  skein::Context ctx;
  auto writer = ctx.run([&]() -> Promise<void> { auto g = co_await rw.async_lock(); });
  REQUIRE(eventually([&] {
    if (rw.try_lock_shared()) {
      rw.unlock_shared();
      return false;
    }
    return true;
  }));
  Event in;
  std::thread reader([&] {
    rw.lock_shared();
    in.set();
    rw.unlock_shared();
  });
  CHECK_FALSE(in.wait_for(20ms));
  ctx.cancel();
  CHECK_THROWS_AS(writer.get(), skein::Cancelled);
  CHECK(in.wait_for(10s));  // admitted although the first reader still holds
  reader.join();
  rw.unlock_shared();
}

TEST_CASE("readers and writers mixed under stress: writers exclusive, readers see consistent data, exact total") {
  Watchdog wd(120s);
  const int n = scaled(20000);
  skein::ThreadPool pool(2);
  skein::RWLock rw;
  long a = 0, b = 0;  // a writer keeps a == b; only touched under rw
  std::atomic<int> writers_in{0}, readers_in{0}, violations{0}, peak_readers{0};
  auto write_section = [&] {
    if (++writers_in != 1 || readers_in.load() != 0) ++violations;
    ++a;
    ++b;
    --writers_in;
  };
  auto read_section = [&] {
    int r = ++readers_in;
    update_max(peak_readers, r);
    if (writers_in.load() != 0 || a != b) ++violations;
    --readers_in;
  };
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (int i = 0; i < n; ++i) {
      std::lock_guard w(rw);
      write_section();
    }
  });
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < n; ++i) {
        std::shared_lock r(rw);
        read_section();
      }
    });
  std::vector<Promise<void>> ps;
  ps.push_back(skein::run(pool, [&]() -> Promise<void> {
    for (int i = 0; i < n; ++i) {
      auto g = co_await rw.async_lock();
      write_section();
    }
  }));
  for (int t = 0; t < 3; ++t)
    ps.push_back(skein::run(pool, [&]() -> Promise<void> {
      for (int i = 0; i < n; ++i) {
        auto g = co_await rw.async_lock_shared();
        read_section();
        if (i % 500 == 0) co_await skein::async_sleep(std::chrono::microseconds(20));
      }
    }));
  ps.push_back(skein::run(pool, [&] {
    for (int i = 0; i < n; ++i) {
      if (i % 2) {
        while (!rw.try_lock_for(1ms)) {
        }
        write_section();
        rw.unlock();
      } else {
        rw.lock_shared();
        read_section();
        rw.unlock_shared();
      }
    }
  }));
  for (auto& t : threads) t.join();
  for (auto& p : ps) p.get();
  CHECK(violations.load() == 0);
  CHECK(peak_readers.load() >= 1);
  std::lock_guard w(rw);
  CHECK(a == 2L * n + n / 2);
  CHECK(a == b);
}

TEST_CASE("cancel racing unlock: the RWLock always ends free") {
  Watchdog wd(120s);
  const int n = scaled(3000);
  skein::RWLock rw;
  int got = 0, cancels = 0;
  for (int i = 0; i < n; ++i) {
    const bool held_exclusive = i % 2;
    if (held_exclusive)
      rw.lock();
    else
      rw.lock_shared();
    skein::Context ctx;
    Promise<void> p;
    switch (i % 4) {
      case 0: p = ctx.run([&rw] { std::lock_guard w(rw); }); break;
      case 1: p = ctx.run([&rw] { std::shared_lock r(rw); }); break;
      case 2: p = ctx.run([&rw]() -> Promise<void> { auto g = co_await rw.async_lock(); }); break;
      default: p = ctx.run([&rw]() -> Promise<void> { auto g = co_await rw.async_lock_shared(); }); break;
    }
    std::thread t([&] {
      if (held_exclusive)
        rw.unlock();
      else
        rw.unlock_shared();
    });
    ctx.cancel();
    t.join();
    try {
      p.get();
      ++got;
    } catch (const skein::Cancelled&) {
      ++cancels;
    }
    REQUIRE(rw.try_lock());
    rw.unlock();
  }
  CHECK(got + cancels == n);
}
