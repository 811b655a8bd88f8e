// The seeds' examples that need only the runtime core, in C++.
// (Atomic, Shared, Queue, WaitGroup and Pool arrive with the primitives.)
#include <skein/skein.hpp>

#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

int worker(int x, int y = 10) { return x + y; }

int main() {
  // threads.run(worker, 5, y=3).get()  -> 8            (seed 000/001)
  auto promise = skein::run(worker, 5, 3);
  std::printf("%d\n", promise.get());
  // threads.run(worker, x=7, y=3).get() -> 10
  std::printf("%d\n", skein::run(worker, 7, 3).get());
  // [threads.run(worker, i, y=i+1) for i in range(10)] -> [p.get() for p in promises]
  std::vector<skein::Promise<int>> promises;
  for (int i = 0; i < 10; ++i) promises.push_back(skein::run(worker, i, i + 1));
  std::string results;
  for (auto& p : promises) results += std::to_string(p.get()) + " ";
  std::printf("%s\n", results.c_str());

  // Promise.wait(): run for its effect, wait, discard the result
  auto p = skein::run([](int x, int y) { std::printf("Processing %d + %d = %d\n", x, y, x + y); }, 5, 3);
  p.wait();

  // Passing data: all data passed explicitly (decay-copied into the task)
  std::vector<int> my_data{1, 2, 3, 4, 5};
  auto doubled = skein::run([](std::vector<int> d) {
    for (auto& x : d) x *= 2;
    return d;
  }, my_data).get();
  for (int x : doubled) std::printf("%d ", x);
  std::printf("\n");

  // thread.async.run(fn() { time.timer.sleep(100); return "done" }) + await (seed 002/003)
  auto future = skein::run([]() -> skein::Promise<std::string> {
    co_await skein::async_sleep(100ms);
    co_return "done";
  });
  std::printf("%s\n", future.get().c_str());

  // thread.core.spawn(fn() { println("running in the background") })
  skein::Resolver<void> printed;
  skein::spawn([&printed] {
    std::printf("running in the background\n");
    printed.resolve();
  });
  printed.promise().wait();

  // EvalWithTimeout(30s, script): every task under it is cancelled at the deadline
  try {
    skein::run_with_timeout(50ms, [] {
      for (int i = 0; i < 4; ++i) skein::spawn([] { skein::sleep_for(30s); });
      skein::sleep_for(30s);
    });
  } catch (const skein::Cancelled& e) {
    std::printf("%s\n", e.what());
  }
}
