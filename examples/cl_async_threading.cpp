// cl-async's threading in C++: a background job triggers a notifier
// whose callback runs on the loop's thread; work() runs a job on the pool and
// settles its promise — value or error — back on the loop's thread. Each
// section prints a [heading]; the README shows each section next to its output.
#include <skein/skein.hpp>

#include <cstdio>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;

int main() {
  std::printf("[queuing a background job]\n");
  {
    // [readme:queuing a background job]
    skein::EventLoop loop;
    const auto loop_thread = std::this_thread::get_id();
    // `result` needs no lock: the callback runs after trigger(), and
    // trigger() publishes what was written before it.
    int result = 0;
    auto notifier = loop.make_notifier([&] {
      std::printf("Job finished! %d (on the loop's thread: %s)\n", result,
                  std::this_thread::get_id() == loop_thread ? "yes" : "no");
    });
    std::thread job([&result, notifier] {
      skein::sleep_for(30ms);  // such work
      result = 42;
      notifier.trigger();
    });
    loop.run();  // returns once the notifier fired and nothing else is pending
    job.join();
    // [/readme:queuing a background job]
  }

  std::printf("[using promises seamlessly]\n");
  {
    // [readme:using promises seamlessly]
    skein::EventLoop loop;
    const auto loop_thread = std::this_thread::get_id();
    auto delay = loop.spawn([]() -> skein::Promise<void> {  // as:with-delay
      co_await skein::async_sleep(5ms);
      std::printf("event loop still running...\n");
    });
    auto task = loop.spawn([&]() -> skein::Promise<void> {
      int val = co_await skein::work(loop, [] {  // runs on the pool ...
        skein::sleep_for(100ms);
        return 4 + 5;
      });
      // ... and this coroutine resumes on the loop's thread
      std::printf("got val: %d (on the loop's thread: %s)\n", val,
                  std::this_thread::get_id() == loop_thread ? "yes" : "no");
      try {
        co_await skein::work(loop, []() -> int { throw std::runtime_error("the job failed"); });
      } catch (const std::exception& e) {  // errors are forwarded
        std::printf("err: %s\n", e.what());
      }
    });
    loop.run();
    delay.get();
    task.get();
    // [/readme:using promises seamlessly]
  }
}
