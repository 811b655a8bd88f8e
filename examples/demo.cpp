// skein in one page: goroutine-style tasks, promises, coroutines, blocking
// waits that do not starve the pool, cancellation and timeouts.
#include <skein/skein.hpp>

#include <cstdio>
#include <vector>

using namespace std::chrono_literals;

// [readme:fib]
// A coroutine: starts eagerly, like a JavaScript async function.
skein::Promise<long> fib(int n) {
  if (n < 2) co_return n;
  auto a = skein::run(fib, n - 1);  // a task on the pool
  auto b = skein::run(fib, n - 2);
  co_return co_await a + co_await b;  // suspends, blocks no thread
}
// [/readme:fib]

int main() {
  // run(f, args...) -> Promise<T>; get() from plain code.
  auto sum = skein::run([](int x, int y) { return x + y; }, 5, 3);
  std::printf("run(worker, 5, 3).get() = %d\n", sum.get());

  std::printf("fib(25) with a task per call = %ld\n", skein::run(fib, 25).get());

  // [readme:blocking]
  // A thousand tasks blocked on one event do not starve the task that releases them.
  skein::Resolver<int> gate;
  std::vector<skein::Promise<int>> waiting;
  for (int i = 0; i < 1000; ++i) waiting.push_back(skein::run([ev = gate.promise()] { return ev.get(); }));
  skein::run([&gate] { gate.resolve(1); }).get();
  long released = 0;
  for (auto& p : waiting) released += p.get();
  std::printf("released %ld blocked tasks\n", released);
  // [/readme:blocking]

  // [readme:when_all]
  // when_all gathers results, like Promise.all.
  auto [a, b] = skein::when_all(skein::run([] { return 20; }), skein::run([] { return 22; })).get();
  std::printf("when_all: %d + %d = %d\n", a, b, a + b);
  // [/readme:when_all]

  // [readme:errors]
  // Errors reach whoever observes the task, with their type.
  try {
    skein::run([] { throw std::invalid_argument("bad input"); }).get();
  } catch (const std::invalid_argument& e) {
    std::printf("caught: %s\n", e.what());
  }
  // [/readme:errors]

  // [readme:timeout]
  // Cancellation: a context's timeout stops every task under it, blocked or sleeping.
  try {
    skein::run_with_timeout(100ms, [] {
      skein::spawn([]() -> skein::Promise<void> { co_await skein::async_sleep(1h); });
      skein::sleep_for(1h);
    });
  } catch (const skein::Cancelled& e) {
    std::printf("%s\n", e.what());
  }
  // [/readme:timeout]
}
