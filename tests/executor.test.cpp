// One task runtime on every executor: run(ex, f) on a ThreadPool, an
// EventLoop or a user's ExecutorBase starts the same kind of task — bound to
// the context it was started in, counted by goroutines(), cancelled with its
// context or its executor, resumed on its executor after every co_await.
#include "support/common.hpp"

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <mutex>
#include <thread>
#include <vector>

using namespace test;
using skein::Promise;

namespace {

/// A user's executor: a queue of handles, drained by whoever calls drain().
class ManualExecutor final : public skein::ExecutorBase {
public:
  ~ManualExecutor() {
    shutdown();
    drain();  // cancelled tasks still need their executor to end
  }
  void schedule(std::coroutine_handle<> h) noexcept override {
    std::lock_guard lk(mu_);
    q_.push_back(h);
  }
  /// Runs what is queued (and what that queues) on the calling thread.
  int drain() {
    int n = 0;
    for (;;) {
      std::coroutine_handle<> h;
      {
        std::lock_guard lk(mu_);
        if (q_.empty()) return n;
        h = q_.front();
        q_.pop_front();
      }
      ++n;
      resume(h);
    }
  }
  std::size_t queued() {
    std::lock_guard lk(mu_);
    return q_.size();
  }

private:
  std::mutex mu_;
  std::deque<std::coroutine_handle<>> q_;
};

static_assert(skein::TaskExecutor<skein::ThreadPool>);
static_assert(skein::TaskExecutor<skein::EventLoop>);
static_assert(skein::TaskExecutor<ManualExecutor>);
static_assert(!skein::TaskExecutor<int>);

}  // namespace

TEST_CASE("a user's executor runs skein tasks: on its own thread, counted, with affinity after co_await") {
  Watchdog wd(30s);
  ManualExecutor ex;
  (void)eventually([] { return skein::goroutines() == 0; });  // earlier tests' tasks may still be ending
  const auto before = skein::goroutines();
  const auto here = std::this_thread::get_id();
  auto plain = skein::run(
      ex, [](int a, int b) { return a + b; }, 20, 22);
  CHECK_FALSE(plain.ready());  // nothing runs until the executor's thread resumes it
  CHECK(skein::goroutines() == before + 1);
  std::vector<std::thread::id> seen;
  auto coro = skein::run(ex, [&]() -> Promise<int> {
    seen.push_back(std::this_thread::get_id());
    int v = co_await skein::run([] { return 7; });  // on the default pool
    seen.push_back(std::this_thread::get_id());     // back on `ex`
    co_await skein::async_sleep(1ms);
    seen.push_back(std::this_thread::get_id());
    co_return v * 6;
  });
  CHECK(ex.drain() >= 2);
  CHECK(plain.get() == 42);
  while (!coro.ready()) {
    ex.drain();
    std::this_thread::sleep_for(1ms);
  }
  CHECK(coro.get() == 42);
  REQUIRE(seen.size() == 3);
  for (auto id : seen) CHECK(id == here);
  CHECK(eventually([&] { return skein::goroutines() == before; }));
}

TEST_CASE("tasks on a user's executor are bound to their context: cancel, wait, and shutdown") {
  Watchdog wd(30s);
  ManualExecutor ex;
  skein::Context ctx;
  auto sleeper = ctx.run(ex, []() -> Promise<void> { co_await skein::async_sleep(60s); });
  ex.drain();  // started: now asleep
  CHECK(ctx.tasks() == 1);
  CHECK_FALSE(sleeper.ready());
  ctx.cancel();
  while (!sleeper.ready()) {  // the cancelled sleep comes back through the executor
    ex.drain();
    std::this_thread::sleep_for(1ms);
  }
  CHECK_THROWS_AS(sleeper.get(), skein::Cancelled);
  ctx.wait();
  // Never started: the executor's shutdown fails it with Cancelled.
  std::optional<Promise<int>> late;
  {
    ManualExecutor doomed;
    late = skein::run(doomed, [] { return 1; });
  }  // ~ManualExecutor: shutdown(), then drain()
  CHECK_THROWS_WITH_AS(late->get(), "task cancelled before it started", skein::Cancelled);
}

TEST_CASE("EventLoop::spawn starts the same tasks: counted by goroutines(), bound to the current context") {
  Watchdog wd(30s);
  skein::EventLoop loop;
  (void)eventually([] { return skein::goroutines() == 0; });  // earlier tests' tasks may still be ending
  const auto before = skein::goroutines();
  auto p = loop.spawn([] { return 1; });
  CHECK(skein::goroutines() == before + 1);  // counted from the start, as run()'s are
  loop.run();
  CHECK(p.get() == 1);
  CHECK(eventually([&] { return skein::goroutines() == before; }));

  // Started from a context-bound task: bound to the same context.
  skein::Context ctx;
  Event spawned;
  std::optional<Promise<void>> on_loop;
  auto outer = ctx.run([&] {
    on_loop = loop.spawn([]() -> Promise<void> { co_await skein::async_sleep(60s); });
    spawned.set();
  });
  spawned.wait();
  outer.get();
  // The outer task's end is counted just after its promise settles: wait for
  // the count to drop to the loop task alone.
  CHECK(eventually([&] { return ctx.tasks() == 1; }));
  std::thread canceller([&] {
    std::this_thread::sleep_for(20ms);
    ctx.cancel();
  });
  loop.run();  // returns once the cancelled sleep has come back and ended
  canceller.join();
  CHECK_THROWS_AS(on_loop->get(), skein::Cancelled);
  ctx.wait();
  CHECK(ctx.tasks() == 0);

  // ctx.run(loop, f) binds a loop task to a context explicitly.
  skein::Context c2;
  auto q = c2.run(loop, [] { return skein::this_task::cancelled(); });
  loop.run();
  CHECK_FALSE(q.get());
}

TEST_CASE("destroying an EventLoop cancels the contexts of the tasks it still runs, promptly") {
  Watchdog wd(30s);
  skein::Context ctx;
  std::optional<Promise<void>> p;
  {
    skein::EventLoop loop;
    p = ctx.run(loop, []() -> Promise<void> { co_await skein::async_sleep(60s); });
    loop.poll();  // started: asleep for a minute
  }               // ~EventLoop: cancels ctx, resumes the task in draining mode, returns
  CHECK(p->ready());
  CHECK_THROWS_AS(p->get(), skein::Cancelled);
  CHECK(ctx.cancelled());
}

TEST_CASE("~EventLoop waits for a task it spawned that hopped onto a pool (its end is counted by the loop)") {
  Watchdog wd(30s);
  Event hopped, release;
  std::atomic<bool> destroyed{false}, finished_first{false};
  std::optional<Promise<void>> p;
  auto loop = std::make_unique<skein::EventLoop>();
  p = loop->spawn([&]() -> Promise<void> {
    co_await skein::default_pool().schedule();  // off the loop, for good
    hopped.set();
    release.wait();  // a plain blocking wait on the pool thread
    finished_first = !destroyed.load();
  });
  loop->poll();
  hopped.wait();
  std::thread destroyer([&] {
    loop.reset();
    destroyed = true;
  });
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(destroyed.load());  // still waiting for the task
  release.set();
  destroyer.join();
  CHECK(finished_first.load());
  p->get();
}
