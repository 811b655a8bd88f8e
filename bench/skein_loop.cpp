// skein::EventLoop peer of the event-loop benchmarks (bench/loop_common.hpp).
// Usage: skein_loop WORKLOAD   (post1 | post4 | latency)
// main() runs the loop (holding a keep_alive() guard, so that it waits for
// posts instead of returning when idle); producers call loop.post(f).

#include <skein/skein.hpp>

#include "loop_common.hpp"

#define SKEIN_STR2(x) #x
#define SKEIN_STR(x) SKEIN_STR2(x)

namespace {

struct SkeinLoop {
  skein::EventLoop loop;
  template <class F>
  void post(F f) {
    loop.post(std::move(f));
  }
  void run() {
    auto guard = loop.keep_alive();
    loop.run();
  }
  void stop() { loop.stop(); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return bench::usage(argv[0], bench::loop::kWorkloads);
  bench::Report r{argv[1], "skein"};
  r.version = SKEIN_STR(SKEIN_VERSION_MAJOR) "." SKEIN_STR(SKEIN_VERSION_MINOR) "." SKEIN_STR(SKEIN_VERSION_PATCH);
  r.base_mb = bench::current_rss_mb();
  SkeinLoop loop;
  if (!bench::loop::run_workload(argv[1], loop, r)) return bench::usage(argv[0], bench::loop::kWorkloads);
  return bench::finish(r);
}
