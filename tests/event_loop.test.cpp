// EventLoop, Notifier, work() and executor affinity (cl-async's threading).
#include "support/common.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace test;
using skein::Promise;

TEST_CASE("cl-async: a background job triggers a notifier; the callback runs on the loop's thread") {
  Watchdog wd(30s);
  skein::EventLoop loop;
  const auto loop_thread = std::this_thread::get_id();
  int result = 0;
  std::thread::id callback_thread;
  auto notifier = loop.make_notifier([&] {
    callback_thread = std::this_thread::get_id();
    CHECK(result == 42);  // written before trigger(): visible without a lock
  });
  std::thread job([&, notifier] {
    skein::sleep_for(10ms);  // such work
    result = 42;
    notifier.trigger();
  });
  loop.run();  // returns once the single-shot notifier has fired
  job.join();
  CHECK(callback_thread == loop_thread);
  CHECK_FALSE(notifier.open());
}

TEST_CASE("cl-async: work() settles on the loop's thread, with the value or the error") {
  Watchdog wd(30s);
  skein::EventLoop loop;
  const auto loop_thread = std::this_thread::get_id();
  std::vector<std::string> log;
  auto task = loop.spawn([&]() -> Promise<void> {
    int val = co_await skein::work(loop, [] {
      skein::sleep_for(5ms);
      return 4 + 5;
    });
    CHECK(std::this_thread::get_id() == loop_thread);
    log.push_back("got val: " + std::to_string(val));
    try {
      co_await skein::work(loop, [] { throw std::runtime_error("bad job"); });
    } catch (const std::runtime_error& e) {
      CHECK(std::this_thread::get_id() == loop_thread);
      log.push_back(std::string("err: ") + e.what());
    }
  });
  loop.run();
  task.get();
  CHECK(log == std::vector<std::string>{"got val: 9", "err: bad job"});
}

TEST_CASE("4 threads x 100k posts: exactly 400k callbacks, each thread's in order") {
  Watchdog wd(120s);
  const int per = scaled(100000);
  skein::EventLoop loop;
  auto alive = loop.keep_alive();
  std::vector<int> last(4, -1);
  int out_of_order = 0, total = 0;
  std::vector<std::thread> producers;
  std::atomic<int> finished{0};
  for (int t = 0; t < 4; ++t)
    producers.emplace_back([&, t] {
      for (int i = 0; i < per; ++i)
        loop.post([&, t, i] {
          if (i != last[t] + 1) ++out_of_order;
          last[t] = i;
          ++total;
        });
      if (++finished == 4) loop.post([&] { loop.stop(); });
    });
  loop.run();
  for (auto& p : producers) p.join();
  CHECK(total == 4 * per);
  CHECK(out_of_order == 0);
}

TEST_CASE("a post made while the loop is going to sleep runs promptly (10k ping-pongs)") {
  // The loop sleeps between every round trip: a lost wake-up would hang here.
  Watchdog wd(120s);
  const int rounds = scaled(10000);
  skein::EventLoop loop;
  auto alive = loop.keep_alive();
  std::atomic<int> turn{0};
  int seen = 0;
  std::thread other([&] {
    for (int i = 0; i < rounds; ++i) {
      while (turn.load() != i) std::this_thread::yield();
      loop.post([&, i] {
        seen = i + 1;
        turn.store(i + 1);
      });
    }
  });
  while (seen < rounds) loop.run_one();
  other.join();
  CHECK(seen == rounds);
}

TEST_CASE("run() returns when nothing is left; poll() and run_one() for embedding") {
  skein::EventLoop loop;
  loop.run();  // nothing to do: returns at once
  int n = 0;
  for (int i = 0; i < 5; ++i) loop.post([&] { ++n; });
  CHECK(loop.poll() == 5);
  CHECK(n == 5);
  CHECK(loop.poll() == 0);
  loop.post([&] { ++n; });
  CHECK(loop.run_one());
  CHECK_FALSE(loop.run_one());  // nothing pending, nothing keeps it alive
  CHECK(n == 6);
}

TEST_CASE("post after stop throws Closed; a failing callback goes to the unhandled-error handler") {
  skein::EventLoop loop;
  std::atomic<int> reports{0};
  skein::set_unhandled_error_handler([&](std::exception_ptr) { ++reports; });
  loop.post([] { throw std::runtime_error("callback failed"); });
  loop.run();
  skein::set_unhandled_error_handler(nullptr);
  CHECK(reports.load() == 1);
  loop.stop();
  CHECK(loop.stopped());
  CHECK_THROWS_WITH_AS(loop.post([] {}), "post to a stopped EventLoop", skein::Closed);
}

TEST_CASE("a repeating notifier coalesces triggers and keeps the loop alive until closed") {
  Watchdog wd(30s);
  skein::EventLoop loop;
  std::atomic<int> runs{0};
  std::optional<skein::Notifier> n;
  n.emplace(loop.make_notifier([&] { ++runs; }, skein::NotifierMode::repeating));
  for (int i = 0; i < 100; ++i) n->trigger();  // all before the loop runs: one callback
  CHECK(loop.poll() == 1);
  CHECK(runs.load() == 1);
  std::thread t([&, notifier = *n] {
    notifier.trigger();
    while (runs.load() < 2) std::this_thread::yield();
    notifier.close();
  });
  loop.run();  // returns once the notifier is closed and nothing is left
  t.join();
  CHECK(runs.load() == 2);
  n->trigger();  // closed: no-op
  CHECK(loop.poll() == 0);
}

TEST_CASE(
    "executor affinity: a coroutine on the loop resumes on the loop after Promise, Queue, Mutex and async_sleep") {
  Watchdog wd(30s);
  skein::EventLoop loop;
  const auto loop_thread = std::this_thread::get_id();
  skein::Queue<int> q(1);
  skein::Mutex m;
  std::vector<bool> on_loop;
  auto guard_holder = skein::run([&m]() -> Promise<void> {  // holds the mutex for a while, on the pool
    auto g = co_await m.async_lock();
    co_await skein::async_sleep(20ms);
  });
  auto task = loop.spawn([&]() -> Promise<void> {
    auto here = [&] { on_loop.push_back(std::this_thread::get_id() == loop_thread); };
    co_await skein::async_sleep(5ms);
    here();
    int v = co_await skein::run([] {
      skein::sleep_for(5ms);
      return 3;
    });
    here();
    skein::spawn([&q] {
      skein::sleep_for(5ms);
      q.put(1);
    });
    v += *co_await q.async_get();
    here();
    {
      auto g = co_await m.async_lock();
      here();
    }
    {
      // While the coroutine is away on the pool nothing ties it to the loop:
      // a keep-alive guard stops run() from returning meanwhile.
      auto alive = loop.keep_alive();
      co_await skein::default_pool().schedule();  // hop away ...
      co_await loop.schedule();                   // ... and back
    }
    here();
    CHECK(v == 4);
  });
  loop.run();
  task.get();
  guard_holder.get();
  CHECK(on_loop == std::vector<bool>{true, true, true, true, true});
}

TEST_CASE("destroying a loop with pending posts and suspended coroutines neither hangs nor leaks") {
  Watchdog wd(30s);
  skein::Resolver<int> never;
  std::atomic<int> ran{0};
  Promise<void> suspended;
  {
    skein::EventLoop loop;
    for (int i = 0; i < 100; ++i) loop.post([&] { ++ran; });
    suspended = loop.spawn([ev = never.promise()]() -> Promise<void> { (void)co_await ev; });
    loop.poll();                                              // starts the coroutine (and runs the posts)
    for (int i = 0; i < 100; ++i) loop.post([&] { ++ran; });  // never run
    auto n = loop.make_notifier([] {});
    n.trigger();
  }
  CHECK(ran.load() == 100);
  CHECK_THROWS_AS(suspended.get(), skein::Cancelled);
}

TEST_CASE("co_await loop.schedule() from a pool task hops onto the loop's thread") {
  Watchdog wd(30s);
  skein::EventLoop loop;
  auto alive = std::make_optional(loop.keep_alive());
  const auto loop_thread = std::this_thread::get_id();
  auto p = skein::run([&]() -> Promise<bool> {
    co_await loop.schedule();
    bool ok = std::this_thread::get_id() == loop_thread;
    alive.reset();
    co_return ok;
  });
  loop.run();
  CHECK(p.get());
}

TEST_CASE("set_wakeup_hook: called once per poll() cycle when work arrives, from any source") {
  Watchdog wd(60s);
  skein::EventLoop loop;
  std::atomic<int> hooks{0};
  loop.set_wakeup_hook([&] { hooks.fetch_add(1); });
  int ran = 0;
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) loop.post([&] { ++ran; });
  });
  producer.join();
  CHECK(hooks.load() == 1);  // coalesced until the host polls
  CHECK(loop.poll() == 100);
  CHECK(ran == 100);
  CHECK(hooks.load() == 1);
  // After a poll, the next piece of work calls it again: a notifier, a resumed coroutine.
  auto n = loop.make_notifier([&] { ++ran; }, skein::NotifierMode::repeating);
  std::thread([n] { n.trigger(); }).join();
  CHECK(hooks.load() == 2);
  loop.poll();
  CHECK(ran == 101);
  auto job = skein::work(loop, [] { return 7; });
  // The host's loop: sleep until the hook says there is work, then poll.
  int got = 0;
  auto task = loop.spawn([&]() -> Promise<void> { got = co_await job; });
  while (got == 0) {
    int seen = hooks.load();
    loop.poll();
    if (got) break;
    CHECK(eventually([&] { return hooks.load() > seen; }));  // nothing is lost: the hook comes
  }
  CHECK(got == 7);
  n.close();
  loop.poll();
}

TEST_CASE("set_wakeup_hook: a post racing a poll() always gets a hook or is seen by that poll (10k rounds)") {
  Watchdog wd(120s);
  skein::EventLoop loop;
  std::atomic<int> hooks{0};
  loop.set_wakeup_hook([&] { hooks.fetch_add(1, std::memory_order_seq_cst); });
  const int rounds = scaled(10000);
  std::atomic<int> ran{0};
  std::thread producer([&] {
    for (int i = 0; i < rounds; ++i) {
      loop.post([&] { ran.fetch_add(1, std::memory_order_relaxed); });
      while (i - ran.load(std::memory_order_relaxed) > 4)
        std::this_thread::yield();  // keep posts and polls interleaved
    }
  });
  // The host sleeps (here: yields) until the hook has fired since its last poll.
  int seen = 0;
  while (ran.load() < rounds) {
    while (hooks.load(std::memory_order_seq_cst) == seen) std::this_thread::yield();
    seen = hooks.load(std::memory_order_seq_cst);
    loop.poll();
  }
  producer.join();
  CHECK(ran.load() == rounds);
}

TEST_CASE("EventLoop::spawn passes std::ref arguments by reference, as run() does") {
  skein::EventLoop loop;
  int x = 1;
  std::vector<int> v{1, 2, 3};
  auto plain = loop.spawn(
      [](int& r, std::vector<int>& w) {
        r = 7;
        w.push_back(4);
      },
      std::ref(x), std::ref(v));
  auto coro = loop.spawn(
      [](std::vector<int>& w, const int& r) -> Promise<int> {
        w.push_back(r);
        co_return static_cast<int>(w.size());
      },
      std::ref(v), std::cref(x));
  loop.run();
  plain.get();
  CHECK(coro.get() == 5);
  CHECK(x == 7);
  CHECK(v == std::vector<int>{1, 2, 3, 4, 7});
  // And a plain argument is still a copy: the caller's object is untouched.
  std::vector<int> mine{9};
  auto copy = loop.spawn([](std::vector<int> w) { return w.size(); }, mine);
  loop.run();
  CHECK(copy.get() == 1);
  CHECK(mine == std::vector<int>{9});
}

TEST_CASE("blocking on the loop's own thread for a result only the loop delivers throws UsageError") {
  Watchdog wd(20s);
  skein::EventLoop loop;
  std::string work_error, spawn_error, wait_error;
  int through_coawait = 0, other_thread = 0;
  loop.post([&] {
    try {
      (void)skein::work(loop, [] { return 1; }).get();
    } catch (const skein::UsageError& e) {
      work_error = e.what();
    }
    try {
      loop.spawn([] { return 2; }).wait();
    } catch (const skein::UsageError& e) {
      spawn_error = e.what();
    }
    try {
      (void)loop.spawn([] { return 3; }).wait_for(10s);
    } catch (const skein::UsageError& e) {
      wait_error = e.what();
    }
    // The right way, from a coroutine on the loop.
    (void)loop.spawn([&]() -> Promise<void> { through_coawait = co_await skein::work(loop, [] { return 4; }); });
  });
  // From another thread, blocking on the loop's promise is fine.
  std::thread t([&] { other_thread = loop.spawn([] { return 5; }).get(); });
  auto keep = std::make_unique<skein::EventLoop::KeepAlive>(loop.keep_alive());
  std::thread stopper([&] {
    t.join();
    loop.post([&] { keep.reset(); });
  });
  loop.run();
  stopper.join();
  CHECK(work_error.find("co_await") != std::string::npos);
  CHECK(work_error.find("EventLoop") != std::string::npos);
  CHECK(spawn_error == work_error);
  CHECK(wait_error == work_error);
  CHECK(through_coawait == 4);
  CHECK(other_thread == 5);
  // A result already there is returned, on the loop's thread too.
  int ready = 0;
  skein::EventLoop loop2;
  loop2.post([&] {
    auto p = loop2.spawn([] { return 6; });
    loop2.post([&, p] { ready = p.get(); });
  });
  loop2.run();
  CHECK(ready == 6);
}
