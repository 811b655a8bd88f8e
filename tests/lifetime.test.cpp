// Destroying a primitive right after a wait on it returns, while the thread
// that released the wait is still inside the releasing call (the pattern
// `{ WaitGroup wg; ...; wg.wait(); }`). Regression tests: WaitGroup::add and
// Semaphore::release used to touch their lock after the update that let the
// waiter go. Run under ASan to see a use-after-free if it comes back.
#include "support/common.hpp"

#include <memory>

using namespace test;

TEST_CASE("a WaitGroup destroyed as soon as wait() returns is not touched by the last done()") {
  Watchdog wd(120s);
  const int n = scaled(10000);
  for (int i = 0; i < n; ++i) {
    auto wg = std::make_unique<skein::WaitGroup>();
    wg->add(1);
    std::thread t([g = wg.get()] { g->done(); });
    if (i % 2) {
      wg->wait();
    } else {
      while (wg->count() != 0) {
      }
    }
    wg.reset();
    t.join();
  }
  CHECK(true);  // the check is the absence of a use-after-free (ASan) or a crash
}

TEST_CASE("a Semaphore destroyed as soon as acquire() returns is not touched by the release") {
  Watchdog wd(120s);
  const int n = scaled(10000);
  for (int i = 0; i < n; ++i) {
    auto s = std::make_unique<skein::Semaphore>(1);
    s->acquire();
    std::thread t([p = s.get()] { p->release(); });
    if (i % 2)
      s->acquire();
    else
      while (!s->try_acquire()) {
      }
    s.reset();
    t.join();
  }
  CHECK(true);
}

TEST_CASE("a Queue destroyed as soon as get() returns is not touched by the put that handed the item over") {
  Watchdog wd(120s);
  const int n = scaled(10000);
  for (int i = 0; i < n; ++i) {
    auto q = std::make_unique<skein::Queue<int>>(1);
    std::thread t([p = q.get(), i] { p->put(i); });
    CHECK(q->get() == i);
    q.reset();
    t.join();
  }
}

TEST_CASE("a Mutex destroyed as soon as it is taken is not touched by an unlock whose waiter timed out") {
  // unlock() found a contended state, but the only waiter had withdrawn: it
  // used to free the lock under its internal spin lock and touch that lock after.
  Watchdog wd(120s);
  const int n = scaled(20000);
  for (int i = 0; i < n; ++i) {
    auto m = std::make_unique<skein::Mutex>();
    m->lock();
    std::thread waiter([p = m.get(), i] {
      if (p->try_lock_for(std::chrono::microseconds(i % 20))) p->unlock();
    });
    std::thread unlocker([p = m.get()] { p->unlock(); });
    unlocker.join();
    waiter.join();
    while (!m->try_lock()) {
    }
    m->unlock();
    m.reset();
  }
  CHECK(true);  // the check is the absence of a use-after-free (ASan)
}

TEST_CASE("a reused WaitGroup: a waiter of the next round is not released by the previous round's last done()") {
  Watchdog wd(120s);
  skein::WaitGroup wg;
  std::atomic<int> go_fast{0}, go_slow{0};
  std::atomic<bool> stop{false};
  auto worker = [&](std::atomic<int>& go, bool slow) {
    int seen = 0;
    while (!stop.load()) {
      int g = go.load();
      if (g == seen) {
        std::this_thread::yield();
        continue;
      }
      seen = g;
      if (slow) std::this_thread::sleep_for(std::chrono::microseconds(50));
      wg.done();
    }
  };
  std::thread f(worker, std::ref(go_fast), false), s(worker, std::ref(go_slow), true);
  int early = 0;
  for (int r = 1; r <= scaled(3000); ++r) {
    wg.add(1);
    go_fast.store(r);
    wg.wait();
    if (wg.count() != 0) ++early;
    wg.add(1);
    go_slow.store(r);
    wg.wait();
    if (wg.count() != 0) ++early;
  }
  stop = true;
  f.join();
  s.join();
  CHECK(early == 0);
}
