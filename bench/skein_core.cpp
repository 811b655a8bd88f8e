// skein runtime-core benchmarks. Usage: skein_core WORKLOAD
//   skynet     1M leaves, fan-out 10, every node a task (run + co_await)
//   spawn      1M empty tasks started by one spawner task on the pool, then joined
//   spawn_ext  the same, but the spawner is main() (a thread outside the pool:
//              its starts go to a deque of its own in the pool)
//   spawn_ctx  the same tasks bound to a skein::Context started by main() and
//              joined with ctx.wait(): no per-task handle is kept (the shape of
//              TBB's task_group run/wait)
//   fib        fib(30), every call a task
//   parked     1M tasks parked on one Resolver<void> event, released, joined
// Runs on skein::default_pool() (sized to the CPUs this process may use).

#include <skein/skein.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "common.hpp"

#define SKEIN_STR2(x) #x
#define SKEIN_STR(x) SKEIN_STR2(x)

namespace {

skein::Promise<long> skynet(long num, long size, long div) {
  if (size == 1) co_return num;
  std::vector<skein::Promise<long>> kids;
  kids.reserve(static_cast<std::size_t>(div));
  for (long i = 0; i < div; ++i) kids.push_back(skein::run(skynet, num + i * (size / div), size / div, div));
  long sum = 0;
  for (auto& k : kids) sum += co_await std::move(k);
  co_return sum;
}

skein::Promise<long> fib(long n) {
  if (n < 2) co_return n;
  auto a = skein::run(fib, n - 1);
  auto b = skein::run(fib, n - 2);
  long x = co_await std::move(a);
  long y = co_await std::move(b);
  co_return x + y;
}

// One spawner starts n empty tasks (each marks its slot, so the bodies are
// verifiably run), keeps their promises, then joins them all.
skein::Promise<long> spawner(long n, char* done) {
  std::vector<skein::Promise<void>> ps;
  ps.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) ps.push_back(skein::run([done, i] { done[i] = 1; }));
  for (auto& p : ps) co_await p;
  co_return n;
}

long count_done(const std::vector<char>& done) {
  long c = 0;
  for (char d : done) c += d;
  return c;
}

struct ParkCounters {
  std::atomic<long> parked{0};
  std::atomic<long> resumed{0};
};

skein::Promise<void> parked_task(skein::Promise<void> ev, ParkCounters* c) {
  c->parked.fetch_add(1, std::memory_order_relaxed);
  co_await ev;
  c->resumed.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

int main(int argc, char** argv) {
  const char* names = "skynet spawn spawn_ext spawn_ctx fib parked";
  if (argc != 2) return bench::usage(argv[0], names);
  const char* w = argv[1];

  // Start the pool's threads before timing.
  for (int i = 0; i < 8; ++i) skein::run([] {}).get();

  bench::Report r{w, "skein"};
  r.threads = static_cast<long>(skein::default_pool().size());
  r.version = SKEIN_STR(SKEIN_VERSION_MAJOR) "." SKEIN_STR(SKEIN_VERSION_MINOR) "." SKEIN_STR(SKEIN_VERSION_PATCH);
  r.base_mb = bench::current_rss_mb();
  auto t0 = bench::Clock::now();

  if (std::strcmp(w, "skynet") == 0) {
    r.n = bench::kSkynetLeaves;
    r.tasks = bench::skynet_tasks(r.n, bench::kSkynetDiv);
    r.result = skein::run(skynet, 0L, r.n, bench::kSkynetDiv).get();
    r.ms = bench::ms_since(t0);
    r.expected = bench::skynet_expected(r.n);
  } else if (std::strcmp(w, "spawn") == 0) {
    r.n = r.tasks = bench::kSpawnTasks;
    std::vector<char> done(static_cast<std::size_t>(r.n), 0);
    long joined = skein::run(spawner, r.n, done.data()).get();
    r.ms = bench::ms_since(t0);
    r.result = joined == r.n ? count_done(done) : -joined;
    r.expected = r.n;
  } else if (std::strcmp(w, "spawn_ext") == 0) {
    r.n = r.tasks = bench::kSpawnTasks;
    std::vector<char> done(static_cast<std::size_t>(r.n), 0);
    {
      char* d = done.data();
      std::vector<skein::Promise<void>> ps;
      ps.reserve(static_cast<std::size_t>(r.n));
      for (long i = 0; i < r.n; ++i) ps.push_back(skein::run([d, i] { d[i] = 1; }));
      for (auto& p : ps) p.wait();
    }
    r.ms = bench::ms_since(t0);
    r.result = count_done(done);
    r.expected = r.n;
  } else if (std::strcmp(w, "spawn_ctx") == 0) {
    r.n = r.tasks = bench::kSpawnTasks;
    std::vector<char> done(static_cast<std::size_t>(r.n), 0);
    {
      char* d = done.data();
      skein::Context ctx;
      for (long i = 0; i < r.n; ++i) ctx.spawn([d, i] { d[i] = 1; });
      ctx.wait();
    }
    r.ms = bench::ms_since(t0);
    r.result = count_done(done);
    r.expected = r.n;
  } else if (std::strcmp(w, "fib") == 0) {
    r.n = bench::kFibN;
    r.tasks = bench::fib_calls(r.n);
    r.result = skein::run(fib, r.n).get();
    r.ms = bench::ms_since(t0);
    r.expected = bench::fib_value(r.n);
  } else if (std::strcmp(w, "parked") == 0) {
    r.n = r.tasks = bench::kParkedTasks;
    ParkCounters c;
    {
      skein::Resolver<void> gate;
      skein::Promise<void> ev = gate.promise();
      std::vector<skein::Promise<void>> ps;
      ps.reserve(static_cast<std::size_t>(r.n));
      for (long i = 0; i < r.n; ++i) ps.push_back(skein::run(parked_task, ev, &c));
      // Wait until every task has started and reached its co_await.
      while (c.parked.load(std::memory_order_relaxed) < r.n)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      gate.resolve();
      for (auto& p : ps) p.wait();
    }
    r.ms = bench::ms_since(t0);
    r.result = c.resumed.load();
    r.expected = r.n;
  } else {
    return bench::usage(argv[0], names);
  }
  return bench::finish(r);
}
