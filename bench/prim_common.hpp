#pragma once
// Shared parts of the primitives benchmarks (skein_prim, std_prim,
// moodycamel_prim, fiber_prim; the Go peer mirrors the sizes): workload sizes
// and the thread-based workload shapes, written once over a small adapter so
// that every peer runs exactly the same loop.
//
// Adapters:
//   queue: void put(long); long get();      (blocking; FIFO not required for mpmc)
//   lock:  void lock(); void unlock();      (any BasicLockable)
//
// Reports (bench/common.hpp): ms = the whole workload; tasks = operations
// (items, round trips, lock/unlock pairs, adds); ping-pong adds lat_us = the
// median round trip in microseconds.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "common.hpp"

namespace bench::prim {

inline constexpr const char* kWorkloads =
    "queue_thr queue_coro queue4_thr queue4_coro pingpong_thr pingpong_coro mutex mutex2 atomic atomic2 waitgroup pool "
    "pool_main pingpong_unbuf select2 timers";

inline constexpr long kQueueItems = 10'000'000;  // ints through the queue, in all
inline constexpr long kQueueCap = 100;
inline constexpr long kPingPongTrips = 50'000;  // round trips
inline constexpr long kLockOps = 10'000'000;    // lock + increment + unlock, in all
inline constexpr long kAtomicOps = 20'000'000;  // fetch-adds, in all
inline constexpr long kWaitGroupTasks = 1'000'000;
inline constexpr long kPoolItems = 1'000'000;
inline constexpr long kPoolWorkers = 4;          // skein::Pool's default
inline constexpr long kPoolDepth = 8;            // skein::Pool's default: workers * 2
inline constexpr long kSelectItems = 2'000'000;  // items received through select, in all
inline constexpr long kTimers = 1'000'000;       // timers started and stopped

/// Sum of 0..n-1.
constexpr long sum_below(long n) { return n * (n - 1) / 2; }

inline double median(std::vector<double> v) {
  if (v.empty()) return -1;
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

/// `producers` threads put n/producers values each (together: 0..n-1),
/// `consumers` threads get n/consumers each; returns the sum of what the
/// consumers got (sum_below(n) when nothing was lost or duplicated).
template <class Q>
long mpmc_threads(Q& q, int producers, int consumers, long n) {
  std::atomic<long> sum{0};
  std::vector<std::thread> ts;
  const long per_p = n / producers, per_c = n / consumers;
  for (int c = 0; c < consumers; ++c)
    ts.emplace_back([&q, &sum, per_c] {
      long s = 0;
      for (long i = 0; i < per_c; ++i) s += q.get();
      sum.fetch_add(s);
    });
  for (int p = 0; p < producers; ++p)
    ts.emplace_back([&q, p, per_p] {
      for (long i = 0; i < per_p; ++i) q.put(p * per_p + i);
    });
  for (auto& t : ts) t.join();
  return sum.load();
}

/// Two threads: the main one puts i into `ping` and waits for i + 1 on
/// `pong`; the other echoes. Returns the number of correct echoes; `lat_us`
/// gets the median round trip.
template <class Q>
long pingpong_threads(Q& ping, Q& pong, long trips, double& lat_us) {
  std::thread echo([&] {
    for (long i = 0; i < trips; ++i) pong.put(ping.get() + 1);
  });
  std::vector<double> rtt;
  rtt.reserve(static_cast<std::size_t>(trips));
  long good = 0;
  auto t = Clock::now();
  for (long i = 0; i < trips; ++i) {
    ping.put(i);
    good += pong.get() == i + 1;
    auto now = Clock::now();
    rtt.push_back(std::chrono::duration<double, std::micro>(now - t).count());
    t = now;
  }
  echo.join();
  lat_us = median(std::move(rtt));
  return good;
}

/// `threads` threads (1: the calling one) each do n/threads lock; ++counter;
/// unlock. Returns the counter (n when the lock excluded).
template <class M>
long lock_threads(M& m, int threads, long n) {
  long counter = 0;
  const long per = n / threads;
  auto body = [&m, &counter, per] {
    for (long i = 0; i < per; ++i) {
      m.lock();
      ++counter;
      m.unlock();
    }
  };
  if (threads == 1) {
    body();
  } else {
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i) ts.emplace_back(body);
    for (auto& t : ts) t.join();
  }
  return counter;
}

/// `threads` threads (1: the calling one) each call add() n/threads times;
/// `add` is a callable doing one atomic increment. Returns nothing: the
/// caller reads its atomic.
template <class Add>
void add_threads(Add add, int threads, long n) {
  const long per = n / threads;
  auto body = [&add, per] {
    for (long i = 0; i < per; ++i) add();
  };
  if (threads == 1) {
    body();
  } else {
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i) ts.emplace_back(body);
    for (auto& t : ts) t.join();
  }
}

/// The naive worker pool over a blocking queue: `workers` threads get items
/// until they see -1; the calling thread submits 0..n-1, then one -1 per
/// worker. Returns the sum the workers saw.
template <class Q>
long pool_threads(Q& q, int workers, long n) {
  std::atomic<long> sum{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < workers; ++w)
    ts.emplace_back([&q, &sum] {
      for (long v; (v = q.get()) >= 0;) sum.fetch_add(v, std::memory_order_relaxed);
    });
  for (long i = 0; i < n; ++i) q.put(i);
  for (int w = 0; w < workers; ++w) q.put(-1);
  for (auto& t : ts) t.join();
  return sum.load();
}

}  // namespace bench::prim
