// Asio peer of the "echo over loopback" benchmark (bench/io_common.hpp):
// Asio's own C++20 coroutines (asio::awaitable, co_spawn, use_awaitable) on
// one io_context run by cpus() threads (main() and cpus() - 1 more). The
// server is an accepting coroutine that co_spawns one coroutine per
// connection; the 100 clients are coroutines too. Handlers and coroutines run
// on the I/O threads themselves: there is no hop to another pool.
// Usage: asio_io echo

#include <sched.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/version.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "io_common.hpp"

#define ASIO_STR2(x) #x
#define ASIO_STR(x) ASIO_STR2(x)

namespace {

using asio::ip::tcp;
using namespace bench::io;

std::atomic<long> echoed{0};

asio::awaitable<void> session(tcp::socket s) {
  Message buf;
  for (;;) {
    try {
      co_await asio::async_read(s, asio::buffer(buf), asio::use_awaitable);
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::eof) break;
      throw;
    }
    co_await asio::async_write(s, asio::buffer(buf), asio::use_awaitable);
    echoed.fetch_add(1, std::memory_order_relaxed);
  }
}

asio::awaitable<void> server(tcp::acceptor* acc) {
  for (long i = 0; i < kConnections; ++i) {
    tcp::socket s = co_await acc->async_accept(asio::use_awaitable);
    s.set_option(tcp::no_delay(true));
    asio::co_spawn(acc->get_executor(), session(std::move(s)), asio::detached);
  }
}

asio::awaitable<long> client(tcp::endpoint ep, long id, double* lat_us) {
  tcp::socket s(co_await asio::this_coro::executor);
  co_await s.async_connect(ep, asio::use_awaitable);
  s.set_option(tcp::no_delay(true));
  Message out, in;
  long ok = 0;
  for (long t = 0; t < kTrips; ++t) {
    fill(out, id, t);
    auto t0 = bench::Clock::now();
    co_await asio::async_write(s, asio::buffer(out), asio::use_awaitable);
    co_await asio::async_read(s, asio::buffer(in), asio::use_awaitable);
    lat_us[t] = us_between(t0, bench::Clock::now());
    ok += in == out;
  }
  s.shutdown(tcp::socket::shutdown_send);
  s.close();
  co_return ok;
}

int affinity_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::string_view(argv[1]) != "echo") return bench::usage(argv[0], "echo");
  bench::Report r{argv[1], "asio"};
  r.version = "asio-" ASIO_STR(ASIO_VERSION);
  const int threads = affinity_cpus();
  r.threads = threads;

  asio::io_context io(threads);
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const tcp::endpoint ep = acc.local_endpoint();
  Latencies lat;
  r.base_mb = bench::current_rss_mb();

  std::atomic<long> ok{0}, remaining{kConnections};
  std::atomic<bool> failed{false};
  bench::Clock::time_point t_end{};
  asio::co_spawn(io, server(&acc), asio::detached);
  auto t0 = bench::Clock::now();
  for (long i = 0; i < kConnections; ++i)
    asio::co_spawn(io, client(ep, i, lat.of(i)), [&](std::exception_ptr e, long n) {
      if (e) failed = true;
      ok += n;
      if (remaining.fetch_sub(1) == 1) t_end = bench::Clock::now();
    });
  std::vector<std::thread> ts;
  for (int i = 1; i < threads; ++i) ts.emplace_back([&io] { io.run(); });
  io.run();  // returns once every coroutine has ended (the sessions at their clients' EOF)
  for (auto& t : ts) t.join();
  r.ms = std::chrono::duration<double, std::milli>(t_end - t0).count();
  const long e = echoed.load();
  fill_report(r, !failed && e == kConnections * kTrips ? ok.load() : -e, lat);
  return bench::finish(r);
}
