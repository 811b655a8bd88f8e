// skein primitives benchmarks (bench/README.md, "Primitives"). Usage: skein_prim WORKLOAD
//   queue_thr      1 producer / 1 consumer thread, 10M ints through Queue<long>(100): put() / get()
//   queue_coro     the same with a producer and a consumer coroutine on default_pool(): async_put / async_get
//   queue4_thr     4 producer / 4 consumer threads, 10M ints in all, Queue<long>(100)
//   queue4_coro    the same with 4 + 4 coroutines
//   pingpong_thr   two threads bounce an int over two Queue<long>(1), 50k round trips (lat_us = median)
//   pingpong_coro  the same with two coroutines
//   mutex          10M lock / ++counter / unlock on one thread (Mutex)
//   mutex2         the same 10M split over 2 threads
//   atomic         20M Atomic<long>::add(1) on one thread
//   atomic2        the same 20M split over 2 threads
//   waitgroup      a pool task spawns 1M tasks that each call wg.done(), then co_awaits wg.async_wait()
//   pool           Pool<long>(f, 4 workers, depth 8): a pool task submits 1M items
//                  (co_await async_submit), then close()
//   pool_main      the same, but main() submits (blocking submit(); a thread outside the pool)
//   pingpong_unbuf pingpong_coro over two unbuffered queues (Go's unbuffered channels)
//   select2        2 producer coroutines, each into its own Queue<long>(100); one consumer
//                  coroutine receives all 2M items through co_await async_select over both
//   timers         main() starts and stops 1M Timers (1 hour each: none fires)
// Coroutines run on skein::default_pool() (sized to the CPUs this process may use).

#include <skein/skein.hpp>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "prim_common.hpp"

#define SKEIN_STR2(x) #x
#define SKEIN_STR(x) SKEIN_STR2(x)

namespace {

using namespace bench::prim;

struct BlockingQueue {
  skein::Queue<long> q;
  explicit BlockingQueue(long cap) : q(static_cast<std::size_t>(cap)) {}
  void put(long v) { q.put(v); }
  long get() { return *q.get(); }
};

skein::Promise<long> producer(skein::Queue<long>* q, long first, long count) {
  for (long i = 0; i < count; ++i) co_await q->async_put(first + i);
  co_return 0;
}

skein::Promise<long> consumer(skein::Queue<long>* q, long count) {
  long s = 0;
  for (long i = 0; i < count; ++i) s += *co_await q->async_get();
  co_return s;
}

long mpmc_coro(int producers, int consumers, long n) {
  skein::Queue<long> q(static_cast<std::size_t>(kQueueCap));
  std::vector<skein::Promise<long>> cs, ps;
  for (int c = 0; c < consumers; ++c) cs.push_back(skein::run(consumer, &q, n / consumers));
  for (int p = 0; p < producers; ++p) ps.push_back(skein::run(producer, &q, p * (n / producers), n / producers));
  for (auto& p : ps) p.get();
  long sum = 0;
  for (auto& c : cs) sum += c.get();
  return sum;
}

skein::Promise<long> echo(skein::Queue<long>* ping, skein::Queue<long>* pong, long trips) {
  for (long i = 0; i < trips; ++i) co_await pong->async_put(*co_await ping->async_get() + 1);
  co_return 0;
}

skein::Promise<long> pinger(skein::Queue<long>* ping, skein::Queue<long>* pong, long trips, double* lat_us) {
  std::vector<double> rtt;
  rtt.reserve(static_cast<std::size_t>(trips));
  long good = 0;
  auto t = bench::Clock::now();
  for (long i = 0; i < trips; ++i) {
    co_await ping->async_put(i);
    good += *co_await pong->async_get() == i + 1;
    auto now = bench::Clock::now();
    rtt.push_back(std::chrono::duration<double, std::micro>(now - t).count());
    t = now;
  }
  *lat_us = median(std::move(rtt));
  co_return good;
}

void wg_task(skein::WaitGroup* wg, std::atomic<long>* ran) {
  ran->fetch_add(1, std::memory_order_relaxed);
  wg->done();
}

template <class P>
skein::Promise<long> submitter(P* pool, long n) {
  for (long i = 0; i < n; ++i) co_await pool->async_submit(i);
  co_return n;
}

skein::Promise<long> select_consumer(skein::Queue<long>* a, skein::Queue<long>* b, long n) {
  long s = 0;
  for (long i = 0; i < n; ++i) {
    auto r = co_await skein::async_select(skein::case_get(*a), skein::case_get(*b));
    s += *(r.index() == 0 ? r.get<0>() : r.get<1>());
  }
  co_return s;
}

skein::Promise<long> fan_in(long n) {
  skein::WaitGroup wg;
  std::atomic<long> ran{0};
  wg.add(n);
  for (long i = 0; i < n; ++i) skein::spawn(wg_task, &wg, &ran);
  co_await wg.async_wait();
  co_return ran.load();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return bench::usage(argv[0], kWorkloads);
  const char* w = argv[1];
  auto is = [w](const char* name) { return std::strcmp(w, name) == 0; };

  // Start the pool's threads before timing (the coroutine workloads use it).
  for (int i = 0; i < 8; ++i) skein::run([] {}).get();

  bench::Report r{w, "skein"};
  r.threads = static_cast<long>(skein::default_pool().size());
  r.version = SKEIN_STR(SKEIN_VERSION_MAJOR) "." SKEIN_STR(SKEIN_VERSION_MINOR) "." SKEIN_STR(SKEIN_VERSION_PATCH);
  r.base_mb = bench::current_rss_mb();
  auto t0 = bench::Clock::now();

  if (is("queue_thr") || is("queue4_thr")) {
    int k = is("queue_thr") ? 1 : 4;
    r.n = r.tasks = kQueueItems;
    BlockingQueue q(kQueueCap);
    r.result = mpmc_threads(q, k, k, r.n);
    r.expected = sum_below(r.n);
    r.threads = 2 * k;
  } else if (is("queue_coro") || is("queue4_coro")) {
    int k = is("queue_coro") ? 1 : 4;
    r.n = r.tasks = kQueueItems;
    r.result = mpmc_coro(k, k, r.n);
    r.expected = sum_below(r.n);
  } else if (is("pingpong_thr")) {
    r.n = r.tasks = r.expected = kPingPongTrips;
    BlockingQueue ping(1), pong(1);
    r.result = pingpong_threads(ping, pong, r.n, r.lat_us);
    r.threads = 2;
  } else if (is("pingpong_coro")) {
    r.n = r.tasks = r.expected = kPingPongTrips;
    skein::Queue<long> ping(1), pong(1);
    auto e = skein::run(echo, &ping, &pong, r.n);
    r.result = skein::run(pinger, &ping, &pong, r.n, &r.lat_us).get();
    e.get();
  } else if (is("pingpong_unbuf")) {
    r.n = r.tasks = r.expected = kPingPongTrips;
    skein::Queue<long> ping(skein::unbuffered), pong(skein::unbuffered);
    auto e = skein::run(echo, &ping, &pong, r.n);
    r.result = skein::run(pinger, &ping, &pong, r.n, &r.lat_us).get();
    e.get();
  } else if (is("select2")) {
    r.n = r.tasks = kSelectItems;
    skein::Queue<long> a(static_cast<std::size_t>(kQueueCap)), b(static_cast<std::size_t>(kQueueCap));
    auto c = skein::run(select_consumer, &a, &b, r.n);
    auto pa = skein::run(producer, &a, 0, r.n / 2);
    auto pb = skein::run(producer, &b, r.n / 2, r.n / 2);
    pa.get();
    pb.get();
    r.result = c.get();
    r.expected = sum_below(r.n);
  } else if (is("timers")) {
    r.n = r.tasks = r.expected = kTimers;
    long stopped = 0;
    for (long i = 0; i < r.n; ++i) {
      skein::Timer t(std::chrono::hours(1));
      stopped += t.stop() ? 1 : 0;
    }
    r.result = stopped;
    r.threads = 1;
  } else if (is("mutex") || is("mutex2")) {
    int k = is("mutex") ? 1 : 2;
    r.n = r.tasks = r.expected = kLockOps;
    skein::Mutex m;
    r.result = lock_threads(m, k, r.n);
    r.threads = k;
  } else if (is("atomic") || is("atomic2")) {
    int k = is("atomic") ? 1 : 2;
    r.n = r.tasks = r.expected = kAtomicOps;
    skein::Atomic<long> a(0);
    add_threads([&a] { a.add(1); }, k, r.n);
    r.result = a.get();
    r.threads = k;
  } else if (is("waitgroup")) {
    r.n = r.tasks = r.expected = kWaitGroupTasks;
    r.result = skein::run(fan_in, r.n).get();
  } else if (is("pool") || is("pool_main")) {
    r.n = r.tasks = kPoolItems;
    std::atomic<long> sum{0};
    {
      skein::Pool<long> pool([&sum](long x) { sum.fetch_add(x, std::memory_order_relaxed); },
                             static_cast<std::size_t>(kPoolWorkers), static_cast<std::size_t>(kPoolDepth));
      if (is("pool")) {
        skein::run(submitter<skein::Pool<long>>, &pool, r.n).get();
      } else {
        for (long i = 0; i < r.n; ++i) pool.submit(i);
      }
      pool.close();
    }
    r.result = sum.load();
    r.expected = sum_below(r.n);
  } else {
    return bench::usage(argv[0], kWorkloads);
  }
  r.ms = bench::ms_since(t0);
  return bench::finish(r);
}
