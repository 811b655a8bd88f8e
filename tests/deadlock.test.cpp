// Deadlock detection (docs/api/deadlock.md): the deadlock programs of Go's
// runtime tests (runtime/testdata/testprog/deadlock.go, crash_test.go), ported
// to skein — each is reported and its blocked main-side wait throws Deadlock —
// and the non-deadlocks next to them (a task blocked on a timer, on a plain
// thread, in a blocking region, a wait with a deadline, a context's timeout),
// which must never be reported. Every test binary also runs with detection
// on (the default): a false report anywhere in the suite fails the test it
// lands in.
#include "support/common.hpp"

#include <cstdio>
#include <csignal>
#include <string>
#include <vector>

using namespace test;
using skein::Promise;

namespace {

/// Fast detection with a recording handler for the test's duration; the
/// defaults come back afterwards.
struct Detector {
  explicit Detector(skein::DeadlockAction action = skein::DeadlockAction::fail_waits,
                    std::function<void()> on_report = nullptr)
      : on_report_(std::move(on_report)) {
    skein::DeadlockOptions o;
    o.period = 5ms;
    o.print = false;
    o.handler = [this, action](const skein::DeadlockReport& r) {
      {
        std::lock_guard lk(mu);
        reports.push_back(r);
      }
      count.fetch_add(1);
      if (on_report_) on_report_();
      return action;
    };
    skein::set_deadlock_options(std::move(o));
  }
  ~Detector() { skein::set_deadlock_options({}); }
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  skein::DeadlockReport last() {
    std::lock_guard lk(mu);
    REQUIRE_FALSE(reports.empty());
    return reports.back();
  }
  /// The report's line for the thread blocked on `object`, or empty.
  skein::ThreadDump blocked_on(const void* object) {
    for (auto& t : last().threads)
      if (t.state == "blocked" && t.object == object) return t;
    return {};
  }

  std::mutex mu;
  std::vector<skein::DeadlockReport> reports;
  std::atomic<int> count{0};
  std::function<void()> on_report_;
};

/// Where deadlock detection runs: it counts the process's threads from
/// /proc (Linux) or a Toolhelp snapshot (Windows); elsewhere it never reports.
bool detection_runs() {
#if defined(__linux__) || defined(_WIN32)
  return true;
#else
  return false;
#endif
}

}  // namespace

TEST_SUITE("deadlock") {
  TEST_CASE("SimpleDeadlock: main blocks on a channel nobody else can reach") {
    if (!detection_runs()) return;  // docs/api/deadlock.md
    Detector d;
    skein::Queue<int> q(1);
    CHECK_THROWS_AS(q.get(), skein::Deadlock);
    CHECK(d.count.load() == 1);
    auto t = d.blocked_on(&q);
    CHECK(t.waits_on == "Queue::get");
    CHECK_FALSE(t.pool_thread);
    CHECK(d.last().text().find("all goroutines are asleep - deadlock!") != std::string::npos);
    // The queue is intact: the failed wait took nothing and left nothing behind.
    q.put(7);
    CHECK(*q.get() == 7);
  }

  TEST_CASE("the message of Deadlock names the wait") {
    if (!detection_runs()) return;
    Detector d;
    skein::Queue<int> q(skein::unbuffered);  // a send waits for a receiver
    try {
      q.put(1);
      FAIL("put returned");
    } catch (const skein::Deadlock& e) {
      CHECK(std::string(e.what()).find("Queue::put: all goroutines are asleep - deadlock!") == 0);
    }
    CHECK(q.size() == 0);  // the failed send put nothing in
  }

  TEST_CASE("a task that failed before feeding the channel main waits on") {
    if (!detection_runs()) return;
    Detector d;
    skein::Queue<int> q(1);
    auto p = skein::run([&] {
      throw std::runtime_error("the feeder failed");
      q.put(1);
    });
    CHECK_THROWS_AS(q.get(), skein::Deadlock);
    CHECK_THROWS_WITH_AS(p.get(), "the feeder failed", std::runtime_error);
  }

  TEST_CASE("LockedDeadlock2: a task blocked forever, main blocked after it") {
    if (!detection_runs()) return;
    Detector d;
    skein::Context ctx;
    skein::Queue<int> never(1), also_never(1);
    auto task = ctx.run([&]() -> Promise<void> { (void)co_await never.async_get(); });
    skein::sleep_for(1ms);
    CHECK_THROWS_AS(also_never.get(), skein::Deadlock);
    CHECK(d.last().live_tasks >= 1);
    ctx.cancel();
    CHECK_THROWS_AS(task.get(), skein::Cancelled);
  }

  TEST_CASE("two tasks take two Mutexes in opposite orders") {
    if (!detection_runs()) return;
    Detector d;
    skein::Context ctx;
    skein::Mutex a, b;
    skein::WaitGroup both;
    both.add(2);
    auto lock_both = [&](skein::Mutex& first, skein::Mutex& second) -> Promise<void> {
      auto g1 = co_await first.async_lock();
      both.done();
      co_await both.async_wait();  // each holds its first lock before taking its second
      auto g2 = co_await second.async_lock();
    };
    auto t1 = ctx.run(lock_both, std::ref(a), std::ref(b));
    auto t2 = ctx.run(lock_both, std::ref(b), std::ref(a));
    CHECK_THROWS_AS(t1.get(), skein::Deadlock);
    CHECK(d.last().live_tasks >= 2);
    ctx.cancel();
    CHECK_THROWS_AS(t1.get(), skein::Cancelled);
    CHECK_THROWS_AS(t2.get(), skein::Cancelled);
    CHECK_FALSE(a.locked());
    CHECK_FALSE(b.locked());
  }

  TEST_CASE("a Mutex locked twice by the same thread") {
    if (!detection_runs()) return;
    Detector d;
    skein::Mutex m;
    m.lock();
    CHECK_THROWS_AS(m.lock(), skein::Deadlock);
    CHECK(d.blocked_on(&m).waits_on == "Mutex::lock");
    m.unlock();
    CHECK_FALSE(m.locked());
  }

  TEST_CASE("a WaitGroup that misses a done()") {
    if (!detection_runs()) return;
    Detector d;
    skein::WaitGroup wg;
    wg.add(2);
    auto t = skein::run([&] { wg.done(); });
    t.get();
    CHECK_THROWS_AS(wg.wait(), skein::Deadlock);
    CHECK(d.blocked_on(&wg).waits_on == "WaitGroup::wait");
    CHECK(wg.count() == 1);
  }

  TEST_CASE("a select with no case that can fire") {
    if (!detection_runs()) return;
    Detector d;
    skein::Queue<int> a(1), b(1);
    CHECK_THROWS_AS(skein::select(skein::case_get(a), skein::case_get(b)), skein::Deadlock);
    // Neither case took anything: both queues still work.
    a.put(1);
    b.put(2);
    CHECK(*a.get() == 1);
    CHECK(*b.get() == 2);
  }

  TEST_CASE("a pool task blocked in a blocking wait, and main waiting for it") {
    if (!detection_runs()) return;
    Detector d;
    skein::Queue<int> q(1);
    auto p = skein::run([&] { return *q.get(); });  // a thread wait inside the pool
    CHECK_THROWS_AS(p.get(), skein::Deadlock);
    // The pool's thread is listed as blocked, and its wait is left alone.
    auto t = d.blocked_on(&q);
    CHECK(t.waits_on == "Queue::get");
    CHECK(t.pool_thread);
    q.put(5);
    CHECK(p.get() == 5);
  }

  TEST_CASE("Context::wait for a task that waits forever") {
    if (!detection_runs()) return;
    Detector d;
    skein::Context ctx;
    skein::Queue<int> q(1);
    auto t = ctx.run([&]() -> Promise<void> { (void)co_await q.async_get(); });
    CHECK_THROWS_AS(ctx.wait(), skein::Deadlock);
    ctx.cancel();
    CHECK_THROWS_AS(t.get(), skein::Cancelled);
  }

  TEST_CASE("two plain threads each waiting for the other") {
    if (!detection_runs()) return;
    Detector d;
    skein::Queue<int> to_a(skein::unbuffered), to_b(skein::unbuffered);
    std::atomic<int> failed{0};
    std::thread a([&] {
      try {
        (void)to_a.get();
      } catch (const skein::Deadlock&) {
        failed.fetch_add(1);
      }
    });
    std::thread b([&] {
      try {
        (void)to_b.get();
      } catch (const skein::Deadlock&) {
        failed.fetch_add(1);
      }
    });
    // main joins them: a thread in join() is not parked in skein, so nothing
    // is reported until main, too, waits in skein.
    skein::WaitGroup never;
    never.add(1);
    CHECK_THROWS_AS(never.wait(), skein::Deadlock);
    a.join();
    b.join();
    CHECK(failed.load() == 2);  // every blocked wait outside the pools fails, not only main's
  }

  TEST_CASE("with tasks tracked, the report lists each task and what it waits on") {
    if (!detection_runs()) return;
    Detector d;
    skein::trace::track_tasks(true);
    skein::Context ctx;
    skein::Queue<int> q(1);
    auto t = ctx.run(skein::named("stuck consumer"), [&]() -> Promise<void> { (void)co_await q.async_get(); });
    CHECK_THROWS_AS(ctx.wait(), skein::Deadlock);
    auto r = d.last();
    bool listed = false;
    for (auto& task : r.tasks)
      if (task.name == "stuck consumer" && task.state == "waiting" && task.object == &q) listed = true;
    CHECK(listed);
    CHECK(r.text().find("task ") != std::string::npos);
    CHECK(r.text().find("\"stuck consumer\"") != std::string::npos);
    ctx.cancel();
    CHECK_THROWS_AS(t.get(), skein::Cancelled);
    skein::trace::track_tasks(false);
  }

  TEST_CASE("the handler may ignore a deadlock, and release it itself") {
    if (!detection_runs()) return;
    skein::Queue<int> q(1);
    Detector d(skein::DeadlockAction::ignore, [&] { (void)q.try_put(42); });
    CHECK(*q.get() == 42);  // not failed: the handler's put released it
    CHECK(d.count.load() == 1);
  }

  // ---- Not deadlocks: never reported --------------------------------------

  TEST_CASE("a task sleeping on a timer before it releases main is not a deadlock") {
    Detector d;
    skein::Queue<int> q(1);
    auto t = skein::run([&]() -> Promise<void> {
      co_await skein::async_sleep(100ms);
      co_await q.async_put(1);
    });
    CHECK(*q.get() == 1);
    t.get();
    CHECK(d.count.load() == 0);
  }

  TEST_CASE("a plain thread that releases main later is not a deadlock") {
    Detector d;
    skein::Queue<int> q(1);
    std::thread t([&] {
      std::this_thread::sleep_for(100ms);  // not in skein: it may do anything next
      q.put(1);
    });
    CHECK(*q.get() == 1);
    t.join();
    CHECK(d.count.load() == 0);
  }

  TEST_CASE("a plain thread blocked outside skein is not a deadlock") {
    Detector d;
    skein::Queue<int> q(1);
    std::mutex m;
    std::condition_variable cv;
    bool go = false;
    std::thread t([&] {
      std::unique_lock lk(m);
      cv.wait(lk, [&] { return go; });  // parked, but not in skein
      q.put(1);
    });
    std::thread releaser([&] {
      std::this_thread::sleep_for(100ms);
      {
        std::lock_guard lk(m);
        go = true;
      }
      cv.notify_one();
    });
    CHECK(*q.get() == 1);
    t.join();
    releaser.join();
    CHECK(d.count.load() == 0);
  }

  TEST_CASE("a task inside a blocking region is not a deadlock") {
    Detector d;
    skein::Queue<int> q(1);
    auto t = skein::run([&] {
      std::this_thread::sleep_for(100ms);  // a pool thread, busy outside skein
      q.put(1);
    });
    CHECK(*q.get() == 1);
    t.get();
    CHECK(d.count.load() == 0);
  }

  TEST_CASE("a wait with a deadline is not a deadlock") {
    Detector d;
    skein::Queue<int> q(1);
    CHECK_FALSE(q.get_for(100ms).has_value());
    CHECK(d.count.load() == 0);
  }

  TEST_CASE("a context's timeout that will cancel the wait is not a deadlock") {
    Detector d;
    auto ctx = skein::Context::with_timeout(100ms);
    skein::Queue<int> q(1);
    auto t = ctx.run([&]() -> Promise<void> { (void)co_await q.async_get(); });
    CHECK_THROWS_AS(t.get(), skein::Cancelled);
    CHECK(d.count.load() == 0);
  }

  TEST_CASE("an EventLoop's coroutine on a timer is not a deadlock") {
    Detector d;
    skein::Queue<int> q(1);
    std::thread loop_thread([&] {
      skein::EventLoop loop;
      (void)loop.spawn([&]() -> Promise<void> {
        co_await skein::async_sleep(100ms);
        co_await q.async_put(1);
      });
      loop.run();
    });
    CHECK(*q.get() == 1);
    loop_thread.join();
    CHECK(d.count.load() == 0);
  }

  TEST_CASE("soak: threads and tasks handing items over through unbuffered channels, no false deadlock") {
    // Every thread is parked most of the time and a wake-up is often in
    // flight: the detector must see the woken thread's word, not its stale
    // record. Exact totals.
    Detector d;
    skein::DeadlockOptions o = skein::deadlock_options();
    o.period = 1ms;
    skein::set_deadlock_options(o);
    const int n = scaled(20000);
    skein::Queue<int> a(skein::unbuffered), b(skein::unbuffered);
    std::thread relay([&] {
      for (int i = 0; i < n; ++i) b.put(*a.get() + 1);
    });
    auto task_relay = skein::run([&]() -> Promise<long> {
      long sum = 0;
      for (int i = 0; i < n; ++i) sum += *co_await b.async_get();
      co_return sum;
    });
    for (int i = 0; i < n; ++i) a.put(i);
    relay.join();
    CHECK(task_relay.get() == static_cast<long>(n) * (n + 1) / 2);
    CHECK(d.count.load() == 0);
  }

  TEST_CASE("dump_threads lists a blocked thread with its wait and object") {
    skein::Queue<int> q(1);
    std::thread t([&] { (void)q.get(); });
    bool seen = false;
    for (int i = 0; i < 10000 && !seen; ++i) {
      for (auto& th : skein::dump_threads())
        if (th.state == "blocked" && th.object == &q && th.waits_on == "Queue::get") seen = true;
      if (!seen) std::this_thread::sleep_for(1ms);
    }
    CHECK(seen);
    CHECK(skein::dump_text().find("Queue::get on ") != std::string::npos);
    q.put(1);
    t.join();
  }

  TEST_CASE("dump_on_signal writes the dump to stderr") {
#if !defined(__linux__)
    // POSIX signals only: elsewhere it says so (SIGTERM is all MinGW has to name).
    CHECK_THROWS_AS(skein::dump_on_signal(SIGTERM), skein::UsageError);
#else
    test::StderrCapture err;
    REQUIRE(err.available());
    skein::dump_on_signal(SIGUSR2);
    std::raise(SIGUSR2);
    const std::string text = err.wait_for("dump of every thread");
    std::signal(SIGUSR2, SIG_DFL);
    CHECK(text.find("skein: dump of every thread") != std::string::npos);
#endif
  }
}

// ---- The watchdog: a task that never reaches a scheduling point ----------

namespace {

/// The watchdog with a short threshold and a recording handler; the defaults
/// come back afterwards.
struct HogWatch {
  explicit HogWatch(bool rescue = true) {
    skein::WatchdogOptions o;
    o.threshold = 20ms;
    o.rescue = rescue;
    o.print = false;
    o.handler = [this](const skein::HogReport& r) {
      {
        std::lock_guard lk(mu);
        reports.push_back(r);
      }
      count.fetch_add(1);
    };
    skein::set_watchdog_options(std::move(o));
  }
  ~HogWatch() { skein::set_watchdog_options({}); }
  HogWatch(const HogWatch&) = delete;
  HogWatch& operator=(const HogWatch&) = delete;
  skein::HogReport first() {
    std::lock_guard lk(mu);
    REQUIRE_FALSE(reports.empty());
    return reports.front();
  }
  std::mutex mu;
  std::vector<skein::HogReport> reports;
  std::atomic<int> count{0};
};

}  // namespace

TEST_SUITE("watchdog") {
  TEST_CASE("a task that spins on its pool's only slot is reported, and the task it waits for still runs") {
    HogWatch wd;
    skein::ThreadPool pool(1);
    std::atomic<bool> started{false}, go{false};
    // The spinner holds the only slot and waits, without a scheduling point,
    // for a task queued behind it: without the watchdog's rescuer this never ends.
    auto spinner = skein::run(pool, [&] {
      started.store(true);
      return spin_until([&] { return go.load(); });
    });
    REQUIRE(spin_until([&] { return started.load(); }));  // queued only once the spinner holds the slot
    auto releaser = skein::run(pool, [&] { go.store(true); });
    releaser.get();
    CHECK(spinner.get());
    REQUIRE(eventually([&] { return wd.count.load() >= 1; }));  // the report comes after the rescue
    auto r = wd.first();
    CHECK(r.rescued);
    CHECK(r.seconds >= 0.02);
    CHECK(r.text().find("without a scheduling point") != std::string::npos);
    // The rescuer retires once the spinner has yielded: the pool works as before.
    std::atomic<int> n{0};
    std::vector<Promise<void>> ps;
    for (int i = 0; i < 100; ++i) ps.push_back(skein::run(pool, [&] { n.fetch_add(1); }));
    for (auto& p : ps) p.get();
    CHECK(n.load() == 100);
    CHECK(pool.thread_count() <= 2);
  }

  TEST_CASE("a task blocked outside skein on its pool's only slot gets a rescuer for the task it waits for") {
    HogWatch wd;
    skein::ThreadPool pool(1);
    std::mutex m;
    std::condition_variable cv;
    bool go = false, started = false;
    auto waiter = skein::run(pool, [&] {
      std::unique_lock lk(m);
      started = true;
      cv.notify_all();
      cv.wait(lk, [&] { return go; });  // asleep in the kernel, holding the slot
    });
    {
      std::unique_lock lk(m);
      cv.wait(lk, [&] { return started; });
    }
    auto releaser = skein::run(pool, [&] {
      {
        std::lock_guard lk(m);
        go = true;
      }
      cv.notify_all();
    });
    releaser.get();
    waiter.get();
    REQUIRE(eventually([&] { return wd.count.load() >= 1; }));  // the report comes after the rescue
    CHECK(wd.first().rescued);
  }

  TEST_CASE("with tasks tracked, a hog's report names the task") {
    HogWatch wd(false);
    skein::trace::track_tasks(true);
    skein::ThreadPool pool(1);
    auto spinner =
        skein::run(pool, skein::named("spinner"), [&] { return spin_until([&] { return wd.count.load() > 0; }); });
    REQUIRE(spinner.get());
    CHECK(wd.first().task.find("\"spinner\"") != std::string::npos);
    CHECK(wd.first().text().find("the task: task ") != std::string::npos);
    skein::trace::track_tasks(false);
  }

  TEST_CASE("with rescue off, a hog is reported and nothing else happens") {
    HogWatch wd(false);
    skein::ThreadPool pool(1);
    auto spinner = skein::run(pool, [&] { return spin_until([&] { return wd.count.load() > 0; }); });
    REQUIRE(spinner.get());
    auto r = wd.first();
    CHECK_FALSE(r.rescued);
    CHECK(r.why_not.find("rescue is off") != std::string::npos);
    CHECK(pool.thread_count() == 1);
  }

  TEST_CASE("a pool at its thread bound cannot rescue, and says so") {
    HogWatch wd;
    skein::ThreadPool pool(1, 1);
    auto spinner = skein::run(pool, [&] { return spin_until([&] { return wd.count.load() > 0; }); });
    REQUIRE(spinner.get());
    auto r = wd.first();
    CHECK_FALSE(r.rescued);
    CHECK(r.why_not.find("bound of 1 threads") != std::string::npos);
  }

  TEST_CASE("tasks that yield are never reported") {
    HogWatch wd;
    skein::ThreadPool pool(2);
    std::atomic<long> sum{0};
    std::vector<Promise<void>> ps;
    for (int i = 0; i < 200; ++i)
      ps.push_back(skein::run(pool, [&, i]() -> Promise<void> {
        for (int k = 0; k < 20; ++k) {
          sum.fetch_add(i);
          co_await skein::async_sleep(1ms);  // a scheduling point every millisecond
        }
      }));
    for (auto& p : ps) p.get();
    CHECK(sum.load() == 20L * 199 * 200 / 2);
    CHECK(wd.count.load() == 0);
  }
}

TEST_CASE("a watchdog handler that throws is reported on stderr, not lost") {
  // On Windows stderr cannot be captured (StderrCapture): there the test
  // checks only that the handler ran and the process went on.
  test::StderrCapture err;
  std::atomic<int> calls{0};
  skein::WatchdogOptions o;
  o.threshold = 20ms;
  o.rescue = false;
  o.handler = [&](const skein::HogReport&) {
    calls.fetch_add(1);
    throw std::runtime_error("handler failed");
  };
  skein::set_watchdog_options(o);
  {
    skein::ThreadPool pool(1);
    auto spinner = skein::run(pool, [&] { return spin_until([&] { return calls.load() > 0; }); });
    CHECK(spinner.get());
  }
  CHECK(calls.load() >= 1);
  if (err.available()) {
    const std::string text = err.wait_for("handler failed");
    CHECK(text.find("skein: the watchdog handler threw: handler failed") != std::string::npos);
  }
  skein::set_watchdog_options({});
}
