#pragma once
// Shared parts of the event-loop benchmarks (skein_loop, std_loop,
// asio_loop): sizes and the workloads, written once over a small adapter so
// that every peer runs exactly the same producers and callbacks.
//
// Adapter:
//   template <class F> void post(F f);   // any thread: queue f() on the loop
//   void run();                          // the calling thread runs callbacks until stop()
//   void stop();                         // called from a callback, on the loop's thread
//
// Workloads (one per process):
//   post1    1 producer thread posts 1M callbacks; time until the loop has run them all
//   post4    4 producer threads post 250k each (1M in all)
//   latency  1 producer posts one callback at a time, 2000 times, pausing 200 µs
//            before each so the loop is asleep: lat_us = the median time from
//            just before post() to the start of the callback (the wake-up latency)
// Every callback is verified: per producer, callbacks must run in posting order
// and every one exactly once (result = callbacks run in order, expected = posts).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string_view>
#include <thread>
#include <vector>

#include "common.hpp"

namespace bench::loop {

inline constexpr const char* kWorkloads = "post1 post4 latency";
inline constexpr long kPosts = 1'000'000;
inline constexpr long kLatencySamples = 2000;
inline constexpr auto kLatencyGap = std::chrono::microseconds(200);

inline double median(std::vector<double> v) {
  if (v.empty()) return -1;
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

template <class L>
struct ThroughputState {
  ThroughputState(L* l, long n, int producers) : loop(l), total(n), next(static_cast<std::size_t>(producers), 0) {}
  L* loop;
  long total;
  long count = 0;          // loop thread only
  long in_order = 0;       // loop thread only
  std::vector<long> next;  // per producer: the sequence number expected next
};

/// `producers` threads post n/producers callbacks each, started together;
/// the calling thread runs the loop until the last callback stops it.
/// Returns the callbacks that ran in order; `ms` gets the time from the
/// producers' start to the loop's return.
template <class L>
long throughput(L& loop, int producers, long n, double& ms) {
  using S = ThroughputState<L>;
  S st(&loop, n, producers);
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  const long per = n / producers;
  for (int p = 0; p < producers; ++p)
    ts.emplace_back([&loop, &go, &st, p, per] {
      go.wait(false);
      S* s = &st;
      for (long i = 0; i < per; ++i) {
        // Two words (16 bytes): fits std::function's small buffer.
        long tag = i * 8 + p;
        loop.post([s, tag] {
          auto& nx = s->next[static_cast<std::size_t>(tag % 8)];
          if (nx == tag / 8) {
            ++nx;
            ++s->in_order;
          }
          if (++s->count == s->total) s->loop->stop();
        });
      }
    });
  auto t0 = Clock::now();
  go.store(true);
  go.notify_all();
  loop.run();
  ms = ms_since(t0);
  for (auto& t : ts) t.join();
  return st.count == n ? st.in_order : -st.count;
}

template <class L>
struct LatencyState {
  LatencyState(L* l, long n) : loop(l), samples(n), lat_us(static_cast<std::size_t>(n), -1.0) {}
  L* loop;
  long samples;
  Clock::time_point posted{};  // written by the producer before each post
  std::vector<double> lat_us;  // written by the callbacks
  std::atomic<long> done{-1};  // the last sample whose callback ran
};

/// One producer, one post at a time (see the file comment). Returns the
/// samples whose callback ran in order; `lat_us` gets their median latency.
template <class L>
long latency(L& loop, long samples, double& lat_us) {
  using S = LatencyState<L>;
  S st(&loop, samples);
  std::thread producer([&st] {
    S* s = &st;
    for (long i = 0; i < s->samples; ++i) {
      std::this_thread::sleep_for(kLatencyGap);
      s->posted = Clock::now();
      s->loop->post([s, i] {
        auto now = Clock::now();
        s->lat_us[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::micro>(now - s->posted).count();
        s->done.store(i);
        s->done.notify_one();
        if (i == s->samples - 1) s->loop->stop();
      });
      for (long d = s->done.load(); d != i; d = s->done.load()) s->done.wait(d);
    }
  });
  loop.run();
  producer.join();
  long good = 0;
  for (double v : st.lat_us) good += v >= 0;
  lat_us = median(st.lat_us);
  return good;
}

/// The whole workload: fills r (n, tasks, result, expected, ms, lat_us, threads).
template <class L>
bool run_workload(const char* w, L& loop, Report& r) {
  std::string_view name(w);
  if (name == "post1" || name == "post4") {
    int k = name == "post1" ? 1 : 4;
    r.n = r.tasks = r.expected = kPosts;
    r.result = throughput(loop, k, r.n, r.ms);
    r.threads = k + 1;
  } else if (name == "latency") {
    r.n = r.tasks = r.expected = kLatencySamples;
    auto t0 = Clock::now();
    r.result = latency(loop, r.n, r.lat_us);
    r.ms = ms_since(t0);
    r.threads = 2;
  } else {
    return false;
  }
  return true;
}

}  // namespace bench::loop
