// Boost.Fiber peer of bench/skein_prim.cpp (Debian: libboost-fiber-dev).
// Usage: fiber_prim WORKLOAD
//   queue_thr / queue4_thr   threads (each one's main fiber, default round_robin
//                    scheduler) over boost::fibers::buffered_channel<long>(128)
//   queue_coro / queue4_coro fibers on a shared_work scheduler spanning one
//                    thread per CPU this process may use (idle threads sleep)
//   pingpong_thr / pingpong_coro   the same two shapes over two unbuffered_channel<long>
//   mutex / mutex2   boost::fibers::mutex from one / two threads' main fibers
// buffered_channel's capacity must be a power of two and holds one item less
// than it: 128 holds 127 (the other peers: 100).

#include <boost/fiber/all.hpp>
#include <boost/version.hpp>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "prim_common.hpp"

namespace {

using namespace bench::prim;
namespace bf = boost::fibers;

constexpr std::size_t kChannelCap = 128;  // the power of two nearest kQueueCap (holds 127)

struct Buffered {
  bf::buffered_channel<long> ch{kChannelCap};
  void put(long v) { ch.push(v); }
  long get() { return ch.value_pop(); }
};

struct Unbuffered {
  bf::unbuffered_channel<long> ch;
  void put(long v) { ch.push(v); }
  long get() { return ch.value_pop(); }
};

long cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return static_cast<long>(std::max(1u, std::thread::hardware_concurrency()));
}

/// Runs `body` (which launches fibers and joins them) on this thread's main
/// fiber, with `threads` - 1 helper threads sharing the fibers (shared_work,
/// sleeping when idle).
template <class F>
void with_shared_work(long threads, F body) {
  bf::use_scheduling_algorithm<bf::algo::shared_work>(true);
  bf::mutex mu;
  bf::condition_variable cv;
  bool done = false;
  std::vector<std::thread> helpers;
  for (long i = 1; i < threads; ++i)
    helpers.emplace_back([&] {
      bf::use_scheduling_algorithm<bf::algo::shared_work>(true);
      std::unique_lock<bf::mutex> lk(mu);
      cv.wait(lk, [&] { return done; });
    });
  body();
  {
    std::unique_lock<bf::mutex> lk(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : helpers) t.join();
}

long mpmc_fibers(int producers, int consumers, long n) {
  Buffered q;
  std::atomic<long> sum{0};
  std::vector<bf::fiber> fs;
  const long per_p = n / producers, per_c = n / consumers;
  for (int c = 0; c < consumers; ++c)
    fs.emplace_back(bf::launch::post, [&q, &sum, per_c] {
      long s = 0;
      for (long i = 0; i < per_c; ++i) s += q.get();
      sum.fetch_add(s);
    });
  for (int p = 0; p < producers; ++p)
    fs.emplace_back(bf::launch::post, [&q, p, per_p] {
      for (long i = 0; i < per_p; ++i) q.put(p * per_p + i);
    });
  for (auto& f : fs) f.join();
  return sum.load();
}

long pingpong_fibers(long trips, double& lat_us) {
  Unbuffered ping, pong;
  long good = 0;
  bf::fiber echo(bf::launch::post, [&] {
    for (long i = 0; i < trips; ++i) pong.put(ping.get() + 1);
  });
  bf::fiber pinger(bf::launch::post, [&] {
    std::vector<double> rtt;
    rtt.reserve(static_cast<std::size_t>(trips));
    auto t = bench::Clock::now();
    for (long i = 0; i < trips; ++i) {
      ping.put(i);
      good += pong.get() == i + 1;
      auto now = bench::Clock::now();
      rtt.push_back(std::chrono::duration<double, std::micro>(now - t).count());
      t = now;
    }
    lat_us = median(std::move(rtt));
  });
  pinger.join();
  echo.join();
  return good;
}

}  // namespace

#define FIBER_STR2(x) #x
#define FIBER_STR(x) FIBER_STR2(x)

int main(int argc, char** argv) {
  const char* names = "queue_thr queue_coro queue4_thr queue4_coro pingpong_thr pingpong_coro mutex mutex2";
  if (argc != 2) return bench::usage(argv[0], names);
  const char* w = argv[1];
  auto is = [w](const char* name) { return std::strcmp(w, name) == 0; };

  bench::Report r{w, "fiber"};
  r.version = "boost-" BOOST_LIB_VERSION;
  r.base_mb = bench::current_rss_mb();
  const long cpus = cpu_count();
  auto t0 = bench::Clock::now();

  if (is("queue_thr") || is("queue4_thr")) {
    int k = is("queue_thr") ? 1 : 4;
    r.n = r.tasks = kQueueItems;
    Buffered q;
    r.result = mpmc_threads(q, k, k, r.n);
    r.expected = sum_below(r.n);
    r.threads = 2 * k;
  } else if (is("queue_coro") || is("queue4_coro")) {
    int k = is("queue_coro") ? 1 : 4;
    r.n = r.tasks = kQueueItems;
    with_shared_work(cpus, [&] { r.result = mpmc_fibers(k, k, r.n); });
    r.expected = sum_below(r.n);
    r.threads = cpus;
  } else if (is("pingpong_thr")) {
    r.n = r.tasks = r.expected = kPingPongTrips;
    Unbuffered ping, pong;
    r.result = pingpong_threads(ping, pong, r.n, r.lat_us);
    r.threads = 2;
  } else if (is("pingpong_coro")) {
    r.n = r.tasks = r.expected = kPingPongTrips;
    with_shared_work(cpus, [&] { r.result = pingpong_fibers(r.n, r.lat_us); });
    r.threads = cpus;
  } else if (is("mutex") || is("mutex2")) {
    int k = is("mutex") ? 1 : 2;
    r.n = r.tasks = r.expected = kLockOps;
    bf::mutex m;
    r.result = lock_threads(m, k, r.n);
    r.threads = k;
  } else {
    return bench::usage(argv[0], names);
  }
  r.ms = bench::ms_since(t0);
  return bench::finish(r);
}
