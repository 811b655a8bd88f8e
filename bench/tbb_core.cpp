// oneTBB peer of skein_core. Usage: tbb_core WORKLOAD
//   skynet   1M leaves, fan-out 10, every node a task (tbb::task_group per node)
//   spawn    1M empty tasks run by main() into one task_group, then wait()
//   fib      fib(30), every call a task (both children run in a task_group)
//   parked   tasks parked on one event with tbb::task::suspend (a resumable
//            task keeps its own stack while suspended, so N is 10,000, not 1M)
// Uses TBB's default arena (one thread per CPU this process may use).

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/version.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <vector>

#include "common.hpp"

namespace {

long skynet(long num, long size, long div) {
  if (size == 1) return num;
  std::array<long, 16> sums{};
  tbb::task_group g;
  for (long i = 0; i < div; ++i)
    g.run([&sums, i, num, size, div] {
      sums[static_cast<std::size_t>(i)] = skynet(num + i * (size / div), size / div, div);
    });
  g.wait();
  long sum = 0;
  for (long i = 0; i < div; ++i) sum += sums[static_cast<std::size_t>(i)];
  return sum;
}

long fib(long n) {
  if (n < 2) return n;
  long a = 0, b = 0;
  tbb::task_group g;
  g.run([&a, n] { a = fib(n - 1); });
  g.run([&b, n] { b = fib(n - 2); });
  g.wait();
  return a + b;
}

long count_done(const std::vector<char>& done) {
  long c = 0;
  for (char d : done) c += d;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const char* names = "skynet spawn fib parked";
  if (argc != 2) return bench::usage(argv[0], names);
  const char* w = argv[1];

  // Start the arena's workers before timing.
  tbb::parallel_for(0, 10000, [](int) {});

  bench::Report r{w, "tbb"};
  r.threads = tbb::this_task_arena::max_concurrency();
  r.version = TBB_runtime_version();
  r.base_mb = bench::current_rss_mb();
  auto t0 = bench::Clock::now();

  if (std::strcmp(w, "skynet") == 0) {
    r.n = bench::kSkynetLeaves;
    r.tasks = bench::skynet_tasks(r.n, bench::kSkynetDiv);
    r.result = skynet(0, r.n, bench::kSkynetDiv);
    r.ms = bench::ms_since(t0);
    r.expected = bench::skynet_expected(r.n);
  } else if (std::strcmp(w, "spawn") == 0) {
    r.n = r.tasks = bench::kSpawnTasks;
    std::vector<char> done(static_cast<std::size_t>(r.n), 0);
    {
      char* d = done.data();
      tbb::task_group g;
      for (long i = 0; i < r.n; ++i) g.run([d, i] { d[i] = 1; });
      g.wait();
    }
    r.ms = bench::ms_since(t0);
    r.result = count_done(done);
    r.expected = r.n;
  } else if (std::strcmp(w, "fib") == 0) {
    r.n = bench::kFibN;
    r.tasks = bench::fib_calls(r.n);
    r.result = fib(r.n);
    r.ms = bench::ms_since(t0);
    r.expected = bench::fib_value(r.n);
  } else if (std::strcmp(w, "parked") == 0) {
#if __TBB_RESUMABLE_TASKS
    r.n = r.tasks = 10'000;
    r.note = "task::suspend,N=10k";
    std::atomic<long> parked{0}, resumed{0};
    std::mutex mu;
    std::vector<tbb::task::suspend_point> points;
    points.reserve(static_cast<std::size_t>(r.n));
    {
      // The last task to park releases them all (the event fires once every
      // task waits on it). The external thread cannot poll for that: with one
      // CPU the arena has no worker besides it.
      tbb::task_group g;
      for (long i = 0; i < r.n; ++i)
        g.run([&] {
          tbb::task::suspend([&](tbb::task::suspend_point sp) {
            std::lock_guard lk(mu);
            points.push_back(sp);
            parked.fetch_add(1, std::memory_order_relaxed);
            if (static_cast<long>(points.size()) == r.n)
              for (auto p : points) tbb::task::resume(p);
          });
          resumed.fetch_add(1, std::memory_order_relaxed);
        });
      g.wait();
    }
    r.ms = bench::ms_since(t0);
    r.result = resumed.load();
    r.expected = r.n;
#else
    std::fprintf(stderr, "tbb_core: this oneTBB has no resumable tasks\n");
    return 3;
#endif
  } else {
    return bench::usage(argv[0], names);
  }
  return bench::finish(r);
}
