// The plain-C++ peer of bench/skein_prim.cpp: what a user writes with the
// standard library alone. Usage: std_prim WORKLOAD
//   queue_thr / queue4_thr / pingpong_thr / pool   over CvQueue below (std::mutex +
//                                  two std::condition_variable + std::deque, bounded)
//   mutex / mutex2                 std::mutex
//   atomic / atomic2               std::atomic<long>::fetch_add(1)
// No coroutine or task workloads (the standard library has no scheduler).

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include "prim_common.hpp"

namespace {

using namespace bench::prim;

/// The bounded blocking queue everybody writes: one mutex, "not empty" and
/// "not full" condition variables, notified after unlocking.
class CvQueue {
public:
  explicit CvQueue(long cap) : cap_(static_cast<std::size_t>(cap)) {}
  void put(long v) {
    std::unique_lock lk(m_);
    not_full_.wait(lk, [this] { return q_.size() < cap_; });
    q_.push_back(v);
    lk.unlock();
    not_empty_.notify_one();
  }
  long get() {
    std::unique_lock lk(m_);
    not_empty_.wait(lk, [this] { return !q_.empty(); });
    long v = q_.front();
    q_.pop_front();
    lk.unlock();
    not_full_.notify_one();
    return v;
  }

private:
  std::mutex m_;
  std::condition_variable not_empty_, not_full_;
  std::deque<long> q_;
  const std::size_t cap_;
};

}  // namespace

int main(int argc, char** argv) {
  const char* names = "queue_thr queue4_thr pingpong_thr mutex mutex2 atomic atomic2 pool";
  if (argc != 2) return bench::usage(argv[0], names);
  const char* w = argv[1];
  auto is = [w](const char* name) { return std::strcmp(w, name) == 0; };

  bench::Report r{w, "std"};
  r.version = "libstdc++";
#if defined(_GLIBCXX_RELEASE)
#define STD_STR2(x) #x
#define STD_STR(x) STD_STR2(x)
  r.version = "libstdc++-" STD_STR(_GLIBCXX_RELEASE);
#endif
  r.base_mb = bench::current_rss_mb();
  auto t0 = bench::Clock::now();

  if (is("queue_thr") || is("queue4_thr")) {
    int k = is("queue_thr") ? 1 : 4;
    r.n = r.tasks = kQueueItems;
    CvQueue q(kQueueCap);
    r.result = mpmc_threads(q, k, k, r.n);
    r.expected = sum_below(r.n);
    r.threads = 2 * k;
  } else if (is("pingpong_thr")) {
    r.n = r.tasks = r.expected = kPingPongTrips;
    CvQueue ping(1), pong(1);
    r.result = pingpong_threads(ping, pong, r.n, r.lat_us);
    r.threads = 2;
  } else if (is("mutex") || is("mutex2")) {
    int k = is("mutex") ? 1 : 2;
    r.n = r.tasks = r.expected = kLockOps;
    std::mutex m;
    r.result = lock_threads(m, k, r.n);
    r.threads = k;
  } else if (is("atomic") || is("atomic2")) {
    int k = is("atomic") ? 1 : 2;
    r.n = r.tasks = r.expected = kAtomicOps;
    std::atomic<long> a{0};
    add_threads([&a] { a.fetch_add(1); }, k, r.n);
    r.result = a.load();
    r.threads = k;
  } else if (is("pool")) {
    r.n = r.tasks = kPoolItems;
    CvQueue q(kPoolDepth);
    r.result = pool_threads(q, static_cast<int>(kPoolWorkers), r.n);
    r.expected = sum_below(r.n);
    r.threads = kPoolWorkers + 1;
  } else {
    return bench::usage(argv[0], names);
  }
  r.ms = bench::ms_since(t0);
  return bench::finish(r);
}
