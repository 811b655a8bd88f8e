// The seeds' examples of Atomic, Shared, WaitGroup, Queue, Pool (000/001) and
// of channels, mutexes and scheduler (002/003), in C++. Output that the seeds
// print from several goroutines in any order is collected and printed sorted,
// so this program's output is deterministic (ctest checks it).
#include <skein/skein.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

int main() {
  // --- threads.Atomic: 1000 tasks increment a counter ----------------------------
  skein::Atomic<> counter(0);
  std::vector<skein::Promise<void>> promises;
  for (int i = 0; i < 1000; ++i) promises.push_back(skein::run([&counter] { counter.add(1); }));
  for (auto& p : promises) p.get();
  std::printf("%ld\n", counter.get());  // 1000

  // --- threads.Shared: the seed's get/append/set races; update() does not ------
  skein::Shared<std::vector<int>> shared_list;
  promises.clear();
  for (int i = 0; i < 100; ++i)
    promises.push_back(skein::run([&shared_list](int item) { shared_list.update([&](auto& v) { v.push_back(item); }); }, i));
  for (auto& p : promises) p.get();
  std::printf("%zu\n", shared_list.get().size());  // 100

  // --- threads.WaitGroup ----------------------------------------------------------
  skein::WaitGroup wg;
  skein::Shared<std::vector<std::string>> lines;
  for (int i = 0; i < 10; ++i) {
    wg.add(1);
    skein::spawn([&](int id) {
      lines.update([&](auto& v) { v.push_back("Worker " + std::to_string(id) + " done"); });
      wg.done();
    }, i);
  }
  wg.wait();
  std::printf("All workers complete (%zu reported)\n", lines.get().size());

  // --- threads.Queue: producer / consumer with a sentinel -----------------------------
  skein::Queue<int> queue(100);
  auto producer = skein::run([&queue] {
    for (int i = 0; i < 10; ++i) queue.put(i);
    queue.put(-1);  // sentinel (or: queue.close())
  });
  auto consumer = skein::run([&queue] {
    std::string seen;
    for (;;) {
      int item = *queue.get();
      if (item == -1) break;
      seen += "Processing " + std::to_string(item) + "\n";
    }
    return seen;
  });
  producer.get();
  std::printf("%s", consumer.get().c_str());

  // --- threads.Pool: 100 items, 4 workers, queue depth 1000 -------------------------
  skein::Atomic<> total(0);
  skein::Pool<int> pool([&total](int item) { total.add(item * item); }, 4, 1000);
  for (int item = 0; item < 100; ++item) pool.submit(item);
  pool.close();  // waits for all work to complete
  std::printf("sum of squares 0..99 = %ld\n", total.get());  // 328350

  // --- thread.channel: a buffered channel, capacity 10 -----------------------------------
  skein::Queue<std::string> ch(10);
  skein::spawn([&ch] { ch.put("hello from goroutine"); });
  std::printf("%s\n", ch.get()->c_str());

  // --- thread.mutex: guard a read-modify-write ---------------------------------------------
  skein::Mutex mu;
  int value = 0;
  promises.clear();
  for (int i = 0; i < 100; ++i)
    promises.push_back(skein::run([&] {
      std::lock_guard lock(mu);
      ++value;
    }));
  for (auto& p : promises) p.get();
  std::printf("safeIncrement x100 = %d\n", value);

  // --- thread.scheduler: run functions in sequence -------------------------------------------
  std::string order;
  skein::sequence([&] { order += "a"; }, [&] { order += "b"; }, [&] { order += "c"; }).get();
  std::printf("sequence: %s\n", order.c_str());
}
