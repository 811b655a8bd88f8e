// The scripting APIs' examples of Atomic, Shared, WaitGroup, Queue and Pool
// (Scriptling's `threads` library) and of channels, locks, atomics, pools, the
// scheduler and the runtime store (Langoost's `thread` and `runtime` modules),
// in C++. Output that those examples print from several
// goroutines in any order is collected and printed in a fixed order, so this
// program's output is deterministic (ctest checks it). Each section prints a
// [heading]; the README shows each section's code next to its output.
#include <skein/skein.hpp>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

using namespace std::chrono_literals;

int main() {
  std::printf("[threads.Atomic]\n");
  {
    // [readme:threads.Atomic]
    skein::Atomic<> counter(0);
    auto increment = [](skein::Atomic<>& c) { c.add(1); };  // thread-safe
    std::vector<skein::Promise<void>> promises;
    for (int i = 0; i < 1000; ++i) promises.push_back(skein::run(increment, std::ref(counter)));
    for (auto& p : promises) p.get();
    std::printf("%" PRId64 "\n", counter.get());  // 1000
    // [/readme:threads.Atomic]
  }

  std::printf("[threads.Shared]\n");
  {
    // [readme:threads.Shared]
    skein::Shared<std::vector<int>> shared_list;
    // Scriptling's get()/append/set() loses items when two tasks interleave;
    // update() runs the read-modify-write under the lock.
    auto append_item = [](skein::Shared<std::vector<int>>& list, int item) {
      list.update([&](std::vector<int>& v) { v.push_back(item); });
    };
    std::vector<skein::Promise<void>> promises;
    for (int i = 0; i < 100; ++i) promises.push_back(skein::run(append_item, std::ref(shared_list), i));
    for (auto& p : promises) p.get();
    std::printf("%zu\n", shared_list.get().size());  // 100
    // [/readme:threads.Shared]
  }

  std::printf("[threads.WaitGroup]\n");
  {
    // [readme:threads.WaitGroup]
    skein::WaitGroup wg;
    skein::Shared<std::vector<std::string>> log;  // the workers' lines, printed in order below
    auto worker = [&](int id) {
      log.update([&](auto& v) { v.push_back("Worker " + std::to_string(id) + " done"); });
      wg.done();
    };
    for (int i = 0; i < 10; ++i) {
      wg.add(1);
      skein::spawn(worker, i);
    }
    wg.wait();
    auto lines = log.get();
    std::sort(lines.begin(), lines.end());
    std::printf("%s ... %s\n", lines.front().c_str(), lines.back().c_str());
    std::printf("All workers complete\n");
    // [/readme:threads.WaitGroup]
  }

  std::printf("[threads.Queue]\n");
  {
    // [readme:threads.Queue]
    skein::Queue<int> queue(100);  // maxsize 100 (0 = unbounded)
    auto producer = [&queue] {
      for (int i = 0; i < 10; ++i) queue.put(i);
      queue.close();  // instead of Scriptling's None sentinel
    };
    auto consumer = [&queue] {
      while (auto item = queue.get())  // empty once closed and drained
        std::printf("Processing %d\n", *item);
    };
    auto p = skein::run(producer);
    auto c = skein::run(consumer);
    p.get();
    c.get();
    // [/readme:threads.Queue]
  }

  std::printf("[threads.Pool]\n");
  {
    // [readme:threads.Pool]
    skein::Shared<std::map<int, int>> results;
    auto process_data = [&results](int item) { results.update([&](auto& m) { m[item] = item * item; }); };
    skein::Pool<int> pool(process_data, 4, 1000);  // workers=4, queue_depth=1000
    for (int item = 0; item < 100; ++item) pool.submit(item);
    pool.close();  // waits for all work to complete
    auto r = results.get();
    std::printf("Processed %zu items: 3 -> %d, 99 -> %d\n", r.size(), r[3], r[99]);
    // [/readme:threads.Pool]
  }

  std::printf("[thread.channel]\n");
  {
    // [readme:thread.channel]
    skein::Queue<std::string> ch(10);  // buffered channel, capacity 10
    skein::spawn([&ch] { ch.put("hello from goroutine"); });
    auto msg = ch.get();  // recv
    std::printf("%s\n", msg->c_str());

    ch.put("one");
    std::printf("len %zu, cap %zu\n", ch.size(), ch.capacity());
    std::printf("recvTimeout: %s\n", ch.get_for(10ms).value_or("timeout").c_str());
    std::printf("recvTimeout: %s\n", ch.get_for(10ms).value_or("timeout").c_str());
    ch.close();
    try {
      ch.put("late");
    } catch (const skein::Closed& e) {
      std::printf("send after close: %s\n", e.what());
    }
    // [/readme:thread.channel]
  }

  std::printf("[thread.mutex]\n");
  {
    // [readme:thread.mutex]
    skein::Mutex mu;
    int value = 0;
    auto safe_increment = [&] {
      mu.lock();
      ++value;  // ... modify shared state ...
      mu.unlock();
    };
    std::vector<skein::Promise<void>> promises;
    for (int i = 0; i < 100; ++i) promises.push_back(skein::run(safe_increment));
    for (auto& p : promises) p.get();
    std::printf("safeIncrement x100 = %d\n", value);
    std::printf("tryLock on a free mutex: %s\n", mu.try_lock() ? "locked" : "busy");
    std::printf("tryLock again: %s\n", mu.try_lock() ? "locked" : "busy");
    mu.unlock();
    // [/readme:thread.mutex]
  }

  std::printf("[thread.rwlock]\n");
  {
    // [readme:thread.rwlock]
    skein::RWLock rw;
    std::map<std::string, int> config{{"workers", 4}};
    auto reader = [&] {
      std::shared_lock lock(rw);  // many readers at once
      return config.at("workers");
    };
    auto writer = [&] {
      std::unique_lock lock(rw);  // one writer, no readers
      config["workers"] = 8;
    };
    std::printf("before: %d\n", skein::run(reader).get());
    skein::run(writer).get();
    std::printf("after: %d\n", skein::run(reader).get());
    // [/readme:thread.rwlock]
  }

  std::printf("[thread.semaphore]\n");
  {
    // [readme:thread.semaphore]
    skein::Semaphore slots(2);  // at most 2 jobs at once
    skein::Atomic<> running(0), peak(0);
    auto job = [&] {
      slots.acquire();
      auto now = running.add(1);
      for (auto p = peak.get(); now > p && !peak.cas(p, now); p = peak.get()) {
      }
      skein::sleep_for(5ms);
      running.add(-1);
      slots.release();
    };
    std::vector<skein::Promise<void>> promises;
    for (int i = 0; i < 8; ++i) promises.push_back(skein::run(job));
    for (auto& p : promises) p.get();
    std::printf("8 jobs, at most %" PRId64 " at once\n", peak.get());
    // [/readme:thread.semaphore]
  }

  std::printf("[thread.atomic]\n");
  {
    // [readme:thread.atomic]
    skein::Atomic<> a(5);
    a.store(10);
    std::printf("load %" PRId64 "\n", a.load());
    std::printf("add(5) -> %" PRId64 "\n", a.add(5));
    bool swapped = a.cas(15, 20);  // 15 -> 20
    std::printf("cas(15, 20) -> %s, now %" PRId64 "\n", swapped ? "true" : "false", a.load());
    swapped = a.cas(15, 30);  // not 15 any more: unchanged
    std::printf("cas(15, 30) -> %s, now %" PRId64 "\n", swapped ? "true" : "false", a.load());
    // [/readme:thread.atomic]
  }

  std::printf("[thread.pool]\n");
  {
    // [readme:thread.pool]
    skein::Atomic<> total(0);
    skein::Pool<int> pool([&total](int n) { total.add(n); }, 4);
    for (int i = 1; i <= 100; ++i) pool.submit(i);
    pool.wait();  // every submitted item processed; the pool stays open
    std::printf("sum 1..100 = %" PRId64 "\n", total.get());
    pool.submit(1000);
    pool.close();
    std::printf("after close: %" PRId64 "\n", total.get());
    // [/readme:thread.pool]
  }

  std::printf("[thread.scheduler]\n");
  {
    // [readme:thread.scheduler]
    std::string order;
    skein::sequence([&] { order += "a"; }, [&] { order += "b"; }, [&] { order += "c"; }).get();
    std::printf("sequence: %s\n", order.c_str());
    // [/readme:thread.scheduler]
  }

  std::printf("[runtime.core]\n");
  {
    // [readme:runtime.core]
    // runtime.core.share/fetch: a store that every task can reach. Shared<T>
    // makes the read-modify-write one step, which Langoost's fetch-then-share
    // is not (it needs a mutex around both).
    skein::Shared<std::map<std::string, std::string>> store;
    store.update([](auto& m) { m["counter"] = "0"; });
    auto worker = [&store] {
      store.update([](auto& m) { m["counter"] = std::to_string(std::stoi(m["counter"]) + 1); });
    };
    auto a = skein::run(worker);
    auto b = skein::run(worker);
    a.wait();
    b.wait();
    std::printf("counter = %s\n", store.get().at("counter").c_str());
    // [/readme:runtime.core]
  }
}
