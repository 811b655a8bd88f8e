// A trace of a small program: a fork-join, a ping-pong over two unbuffered
// queues and a few tasks taking turns on a mutex, recorded with
// skein::trace::TraceSession and written as Chrome trace-event JSON (open it
// in https://ui.perfetto.dev, or draw it: tools/trace_svg.py trace.json).
//
//   trace_timeline [file.json]      (default: trace.json)
//
// docs/trace-example.svg is this program's trace.
#include <skein/skein.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

long busy(long n) {  // a little CPU work (tens of microseconds), so that the slices have a width
  volatile long x = 0;
  for (long i = 0; i < n * 20000; ++i) x = x + i % 7;
  return x % 2;
}

skein::Promise<long> fork_join(int width) {
  std::vector<skein::Promise<long>> parts;
  for (int i = 0; i < width; ++i) parts.push_back(skein::run([i] { return busy(i + 1) + i; }));
  long sum = 0;
  for (auto& p : parts) sum += co_await std::move(p);
  co_return sum;
}

skein::Promise<int> ping(skein::Queue<int>& out, skein::Queue<int>& in, int rounds) {
  int last = 0;
  for (int i = 0; i < rounds; ++i) {
    co_await out.async_put(i);
    last = *co_await in.async_get();
  }
  co_return last;
}

skein::Promise<void> pong(skein::Queue<int>& in, skein::Queue<int>& out, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    const int v = *co_await in.async_get();
    busy(1);
    co_await out.async_put(v);
  }
}

skein::Promise<void> turn(skein::Mutex& m, int& shared) {
  for (int i = 0; i < 3; ++i) {
    auto guard = co_await m.async_lock();
    busy(1);
    co_await skein::default_pool().schedule();  // to the back of the queue, holding the lock: the others queue on it
    busy(1);
    ++shared;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "trace.json";
  long sum = 0;
  int last = 0, shared = 0;
  {
    skein::trace::TraceSession session(path);
    sum = skein::run(skein::named("fork_join"), fork_join, 8).get();

    skein::Queue<int> a(skein::unbuffered), b(skein::unbuffered);  // every put meets a get
    auto p = skein::run(skein::named("ping"), ping, std::ref(a), std::ref(b), 6);
    auto q = skein::run(skein::named("pong"), pong, std::ref(a), std::ref(b), 6);
    last = p.get();
    q.get();

    skein::Mutex m;
    skein::TaskGroup g;
    for (int i = 0; i < 3; ++i) g.spawn(skein::named("turn"), turn, std::ref(m), std::ref(shared));
    g.wait();
  }
  std::printf("fork_join: %ld\nping-pong: last %d\nmutex turns: %d\ntrace written to %s\n", sum, last, shared,
              path.c_str());
}
