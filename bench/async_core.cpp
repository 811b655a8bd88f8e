// std::async(std::launch::async) baseline: one OS thread per task. Usage: async_core WORKLOAD
//
// A million threads is not feasible (each needs a stack mapping; the kernel's
// vm.max_map_count and thread limits stop far below 1M live threads), so every
// workload runs at a reduced size, printed as n= and tasks=:
//   skynet   10,000 leaves, fan-out 10 (11,111 threads)
//   spawn    10,000 empty tasks started by main(), then joined
//   fib      fib(18), every call a thread (8,361 threads)
//   parked   10,000 threads blocked on one std::shared_future<void>, released, joined

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "common.hpp"

#define STR2(x) #x
#define STR(x) STR2(x)

namespace {

constexpr long kSkynetLeaves = 10'000;
constexpr long kSpawnTasks = 10'000;
constexpr long kFibN = 18;
constexpr long kParkedTasks = 10'000;

long skynet(long num, long size, long div) {
  if (size == 1) return num;
  std::vector<std::future<long>> kids;
  kids.reserve(static_cast<std::size_t>(div));
  for (long i = 0; i < div; ++i)
    kids.push_back(std::async(std::launch::async, skynet, num + i * (size / div), size / div, div));
  long sum = 0;
  for (auto& k : kids) sum += k.get();
  return sum;
}

long fib(long n) {
  if (n < 2) return n;
  auto a = std::async(std::launch::async, fib, n - 1);
  auto b = std::async(std::launch::async, fib, n - 2);
  return a.get() + b.get();
}

}  // namespace

int main(int argc, char** argv) {
  const char* names = "skynet spawn fib parked";
  if (argc != 2) return bench::usage(argv[0], names);
  const char* w = argv[1];

  bench::Report r{w, "async"};
  r.threads = static_cast<long>(std::thread::hardware_concurrency());
#if defined(_GLIBCXX_RELEASE)
  r.version = "libstdc++-" STR(_GLIBCXX_RELEASE);
#endif
  r.base_mb = bench::current_rss_mb();
  auto t0 = bench::Clock::now();

  if (std::strcmp(w, "skynet") == 0) {
    r.n = kSkynetLeaves;
    r.tasks = bench::skynet_tasks(r.n, bench::kSkynetDiv);
    r.result = std::async(std::launch::async, skynet, 0L, r.n, bench::kSkynetDiv).get();
    r.ms = bench::ms_since(t0);
    r.expected = bench::skynet_expected(r.n);
  } else if (std::strcmp(w, "spawn") == 0) {
    r.n = r.tasks = kSpawnTasks;
    std::vector<char> done(static_cast<std::size_t>(r.n), 0);
    {
      char* d = done.data();
      std::vector<std::future<void>> fs;
      fs.reserve(static_cast<std::size_t>(r.n));
      for (long i = 0; i < r.n; ++i) fs.push_back(std::async(std::launch::async, [d, i] { d[i] = 1; }));
      for (auto& f : fs) f.get();
    }
    r.ms = bench::ms_since(t0);
    long c = 0;
    for (char x : done) c += x;
    r.result = c;
    r.expected = r.n;
  } else if (std::strcmp(w, "fib") == 0) {
    r.n = kFibN;
    r.tasks = bench::fib_calls(r.n);
    r.result = std::async(std::launch::async, fib, r.n).get();
    r.ms = bench::ms_since(t0);
    r.expected = bench::fib_value(r.n);
  } else if (std::strcmp(w, "parked") == 0) {
    r.n = r.tasks = kParkedTasks;
    std::atomic<long> parked{0}, resumed{0};
    {
      std::promise<void> gate;
      std::shared_future<void> ev = gate.get_future().share();
      std::vector<std::future<void>> fs;
      fs.reserve(static_cast<std::size_t>(r.n));
      for (long i = 0; i < r.n; ++i)
        fs.push_back(std::async(std::launch::async, [ev, &parked, &resumed] {
          parked.fetch_add(1, std::memory_order_relaxed);
          ev.wait();
          resumed.fetch_add(1, std::memory_order_relaxed);
        }));
      while (parked.load(std::memory_order_relaxed) < r.n) std::this_thread::sleep_for(std::chrono::microseconds(200));
      gate.set_value();
      for (auto& f : fs) f.get();
    }
    r.ms = bench::ms_since(t0);
    r.result = resumed.load();
    r.expected = r.n;
  } else {
    return bench::usage(argv[0], names);
  }
  return bench::finish(r);
}
