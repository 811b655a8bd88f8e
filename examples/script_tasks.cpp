// The scripting APIs' examples of tasks and promises, in C++: threads.run, Promise.get,
// Promise.wait and passing data (Scriptling's `threads` library); thread.core.spawn,
// thread.async.run/await and the thread.core helpers (Langoost's `thread`
// module); and
// EvalWithTimeout. Each section prints a [heading]; the README shows each
// section's code (between the readme markers) next to its output.
#include <skein/skein.hpp>

#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

// [readme:worker]
int worker(int x, int y = 10) { return x + y; }
// [/readme:worker]

int main() {
  std::printf("[threads.run]\n");
  {
    // [readme:threads.run]
    // With positional arguments (C++ has no keyword arguments: y is passed in order)
    auto promise = skein::run(worker, 5, 3);
    std::printf("%d\n", promise.get());  // 8

    auto promise2 = skein::run(worker, 7, 3);
    std::printf("%d\n", promise2.get());  // 10

    // Multiple async operations
    std::vector<skein::Promise<int>> promises;
    for (int i = 0; i < 10; ++i) promises.push_back(skein::run(worker, i, i + 1));
    for (auto& p : promises) std::printf("%d ", p.get());
    std::printf("\n");
    // [/readme:threads.run]
  }

  std::printf("[Promise.wait]\n");
  {
    // [readme:Promise.wait]
    auto print_sum = [](int x, int y) { std::printf("Processing %d + %d = %d\n", x, y, x + y); };
    auto promise = skein::run(print_sum, 5, 3);
    promise.wait();  // waits for completion, discards the result (and rethrows an error)
    // [/readme:Promise.wait]
  }

  std::printf("[passing data]\n");
  {
    // [readme:passing data]
    auto process_data = [](std::vector<int> data) {  // the task's own copy
      for (auto& x : data) x *= 2;
      return data;
    };
    std::vector<int> my_data{1, 2, 3, 4, 5};
    auto result = skein::run(process_data, my_data).get();  // my_data is copied into the task
    for (int x : result) std::printf("%d ", x);
    std::printf("\n");
    // [/readme:passing data]
  }

  std::printf("[thread.core.spawn]\n");
  {
    // [readme:thread.core.spawn]
    skein::Resolver<void> printed;  // only so that this program waits for the output
    skein::spawn([&printed] {
      std::printf("running in the background\n");
      printed.resolve();
    });
    printed.promise().wait();
    // [/readme:thread.core.spawn]
  }

  std::printf("[thread.async]\n");
  {
    // [readme:thread.async]
    auto future = skein::run([]() -> skein::Promise<std::string> {
      co_await skein::async_sleep(100ms);  // suspends; no thread sleeps
      co_return "done";
    });
    std::printf("%s\n", future.get().c_str());  // thread.async.await(future)
    // [/readme:thread.async]
  }

  std::printf("[thread.core helpers]\n");
  {
    // [readme:thread.core helpers]
    skein::sleep_for(10ms);  // thread.core.sleep(10): blocking, cancellable
    std::printf("cpus() >= 1: %s\n", skein::cpus() >= 1 ? "yes" : "no");
    skein::Resolver<void> gate;
    std::vector<skein::Promise<void>> waiting;
    for (int i = 0; i < 3; ++i) waiting.push_back(skein::run([p = gate.promise()] { p.wait(); }));
    std::printf("goroutines() >= 3: %s\n", skein::goroutines() >= 3 ? "yes" : "no");
    gate.resolve();
    for (auto& p : waiting) p.wait();
    // [/readme:thread.core helpers]
  }

  std::printf("[EvalWithTimeout]\n");
  {
    // [readme:EvalWithTimeout]
    auto script = [] {
      for (int i = 0; i < 4; ++i) skein::spawn([] { skein::sleep_for(30s); });  // inherit the context
      skein::sleep_for(30s);
    };
    try {
      skein::run_with_timeout(50ms, script);
    } catch (const skein::Cancelled& e) {  // after every task inside has stopped
      std::printf("%s\n", e.what());
    }
    // [/readme:EvalWithTimeout]
  }
}
