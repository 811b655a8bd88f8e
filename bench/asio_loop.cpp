// Boost.Asio peer of the event-loop benchmarks (bench/loop_common.hpp):
// io_context::run() on main(), kept running by a work guard, producers call
// boost::asio::post(io, f) (the non-deprecated spelling of io_context::post).
// Usage: asio_loop WORKLOAD   (post1 | post4 | latency)

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/version.hpp>

#include "loop_common.hpp"

namespace {

struct AsioLoop {
  boost::asio::io_context io;
  template <class F>
  void post(F f) {
    boost::asio::post(io, std::move(f));
  }
  void run() {
    auto guard = boost::asio::make_work_guard(io);
    io.run();
  }
  void stop() { io.stop(); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return bench::usage(argv[0], bench::loop::kWorkloads);
  bench::Report r{argv[1], "asio"};
  r.version = "boost-" BOOST_LIB_VERSION;
  r.base_mb = bench::current_rss_mb();
  AsioLoop loop;
  if (!bench::loop::run_workload(argv[1], loop, r)) return bench::usage(argv[0], bench::loop::kWorkloads);
  return bench::finish(r);
}
