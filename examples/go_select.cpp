// Go's select, unbuffered channels, timers and weighted semaphores in C++.
// Each section prints a [heading]; the README shows each section's code next
// to its output (ctest checks the output, which is deterministic).
#include <skein/skein.hpp>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

int main() {
  std::printf("[select]\n");
  {
    // [readme:select]
    skein::Queue<std::string> results(skein::unbuffered);  // Go's make(chan string)
    skein::Queue<int> quit(1);
    skein::spawn([&] {
      for (auto word : {"one", "two", "three"}) results.put(word);
      quit.put(0);
    });
    for (bool done = false; !done;) {
      // Exactly one case completes; were several ready, one is chosen at random.
      auto r = skein::select(skein::case_get(results), skein::case_get(quit), skein::case_after(1s));
      switch (r.index()) {
        case 0: std::printf("got %s\n", r.get<0>()->c_str()); break;
        case 1: std::printf("quit\n"), done = true; break;
        case 2: std::printf("timed out\n"), done = true; break;
      }
    }
    // Non-blocking: nobody receives on `results`, so the default case wins
    // and the item goes nowhere.
    auto r = skein::select(skein::case_put(results, "four"), skein::case_default());
    std::printf("default: %s\n", r.index() == 1 ? "yes" : "no");
    // [/readme:select]
  }

  std::printf("[async_select]\n");
  {
    // [readme:async_select]
    skein::Queue<int> a(10), b(10);
    auto consumer = skein::run([&]() -> skein::Promise<int> {
      int sum = 0;
      for (int i = 0; i < 6; ++i) {
        auto r = co_await skein::async_select(skein::case_get(a), skein::case_get(b));
        sum += *(r.index() == 0 ? r.get<0>() : r.get<1>());  // suspends; no thread blocked
      }
      co_return sum;
    });
    for (int i = 1; i <= 3; ++i) {
      a.put(i);
      b.put(10 * i);
    }
    std::printf("sum %d\n", consumer.get());  // 66
    // [/readme:async_select]
  }

  std::printf("[timers]\n");
  {
    // [readme:timers]
    skein::Ticker ticker(5ms);
    skein::Timer timer(1h);
    for (int ticks = 0; ticks < 3;) {
      auto r = skein::select(skein::case_get(ticker.channel()), skein::case_get(timer.channel()));
      if (r.index() == 0) std::printf("tick %d\n", ++ticks);
    }
    ticker.stop();  // no tick is delivered after stop() returns
    std::printf("timer stopped before it fired: %s\n", timer.stop() ? "yes" : "no");

    std::atomic<int> runs{0};
    auto later = skein::after_func(1h, [&] { runs.fetch_add(1); });
    std::printf("stopped before it ran: %s\n", later.stop() ? "yes" : "no");
    // [/readme:timers]
  }

  std::printf("[WeightedSemaphore]\n");
  {
    // [readme:WeightedSemaphore]
    // At most 4 units of work in flight; a job of weight 3 waits its turn in
    // FIFO order and is not overtaken by lighter ones.
    skein::WeightedSemaphore budget(4);
    skein::Atomic<> in_flight(0), too_many(0);
    std::vector<skein::Promise<void>> jobs;
    for (int i = 0; i < 12; ++i)
      jobs.push_back(skein::run([&, weight = 1 + i % 3]() -> skein::Promise<void> {
        co_await budget.async_acquire(weight);
        if (in_flight.add(weight) > 4) too_many.add(1);
        co_await skein::async_sleep(1ms);
        in_flight.add(-weight);
        budget.release(weight);
      }));
    for (auto& j : jobs) j.get();
    std::printf("jobs done: %zu, more than 4 units ever in flight: %s\n", jobs.size(), too_many.get() ? "yes" : "no");
    // [/readme:WeightedSemaphore]
  }
}
