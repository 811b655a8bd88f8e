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
