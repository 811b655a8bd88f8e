// moodycamel::BlockingConcurrentQueue peer of bench/skein_prim.cpp (Debian:
// libconcurrentqueue-dev). Usage: moodycamel_prim WORKLOAD
//   queue_thr / queue4_thr / pool   bounded as the other peers are: the queue
//                  itself is unbounded, so a moodycamel::LightweightSemaphore
//                  holding the free slots makes put() block while full
//   pingpong_thr   two plain BlockingConcurrentQueue<long> (at most one item is
//                  ever in flight, so a bound would never block)
// The plain API (enqueue / wait_dequeue, no producer or consumer tokens), as
// a user replacing a mutex + condvar queue would write it.

#include <concurrentqueue/blockingconcurrentqueue.h>

#include <cstring>

#include "prim_common.hpp"

namespace {

using namespace bench::prim;

class BoundedQueue {
public:
  explicit BoundedQueue(long cap) : free_(cap) {}
  void put(long v) {
    while (!free_.wait()) {
    }
    q_.enqueue(v);
  }
  long get() {
    long v;
    q_.wait_dequeue(v);
    free_.signal();
    return v;
  }

private:
  moodycamel::BlockingConcurrentQueue<long> q_;
  moodycamel::LightweightSemaphore free_;
};

class PlainQueue {
public:
  void put(long v) { q_.enqueue(v); }
  long get() {
    long v;
    q_.wait_dequeue(v);
    return v;
  }

private:
  moodycamel::BlockingConcurrentQueue<long> q_;
};

}  // namespace

int main(int argc, char** argv) {
  const char* names = "queue_thr queue4_thr pingpong_thr pool";
  if (argc != 2) return bench::usage(argv[0], names);
  const char* w = argv[1];
  auto is = [w](const char* name) { return std::strcmp(w, name) == 0; };

  bench::Report r{w, "moodycamel"};
  r.version = "deb";
  r.base_mb = bench::current_rss_mb();
  auto t0 = bench::Clock::now();

  if (is("queue_thr") || is("queue4_thr")) {
    int k = is("queue_thr") ? 1 : 4;
    r.n = r.tasks = kQueueItems;
    BoundedQueue q(kQueueCap);
    r.result = mpmc_threads(q, k, k, r.n);
    r.expected = sum_below(r.n);
    r.threads = 2 * k;
  } else if (is("pingpong_thr")) {
    r.n = r.tasks = r.expected = kPingPongTrips;
    PlainQueue ping, pong;
    r.result = pingpong_threads(ping, pong, r.n, r.lat_us);
    r.threads = 2;
  } else if (is("pool")) {
    r.n = r.tasks = kPoolItems;
    BoundedQueue q(kPoolDepth);
    r.result = pool_threads(q, static_cast<int>(kPoolWorkers), r.n);
    r.expected = sum_below(r.n);
    r.threads = kPoolWorkers + 1;
  } else {
    return bench::usage(argv[0], names);
  }
  r.ms = bench::ms_since(t0);
  return bench::finish(r);
}
