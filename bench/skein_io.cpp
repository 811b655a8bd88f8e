// skein peer of the "echo over loopback" benchmark (bench/io_common.hpp):
// the echo server (an accepting task, then one task per connection) and the
// 100 clients are skein coroutine tasks on skein::default_pool() (cpus()
// workers); every socket operation is co_awaited with skein::use_promise on
// a skein::IoService — its completion handler runs on an I/O thread and the
// task resumes on the pool.
// Usage: skein_io WORKLOAD
//   echo1   an IoService with 1 I/O thread
//   echon   an IoService with cpus() I/O threads (no strands: each socket
//           has one operation in flight at a time)

#include <skein/asio.hpp>
#include <skein/skein.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <memory>
#include <string_view>
#include <system_error>
#include <vector>

#include "io_common.hpp"

#define SKEIN_STR2(x) #x
#define SKEIN_STR(x) SKEIN_STR2(x)

namespace {

using asio::ip::tcp;
using namespace bench::io;

// One connection of the server: echo kMsg-byte messages until the client closes.
skein::Promise<long> session(tcp::socket* s) {
  Message buf;
  long echoed = 0;
  for (;;) {
    try {
      co_await asio::async_read(*s, asio::buffer(buf), skein::use_promise);
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::eof) break;
      throw;
    }
    co_await asio::async_write(*s, asio::buffer(buf), skein::use_promise);
    ++echoed;
  }
  co_return echoed;
}

// Accepts kConnections connections, one session task each; returns the messages echoed.
skein::Promise<long> server(tcp::acceptor* acc, std::vector<std::unique_ptr<tcp::socket>>* socks) {
  std::vector<skein::Promise<long>> sessions;
  for (long i = 0; i < kConnections; ++i) {
    tcp::socket s = co_await acc->async_accept(skein::use_promise);
    s.set_option(tcp::no_delay(true));
    socks->push_back(std::make_unique<tcp::socket>(std::move(s)));
    sessions.push_back(skein::run(session, socks->back().get()));
  }
  long echoed = 0;
  for (auto& p : sessions) echoed += co_await std::move(p);
  co_return echoed;
}

// One client: connect, kTrips timed round trips; returns those whose echo matched.
skein::Promise<long> client(asio::io_context* io, tcp::endpoint ep, long id, double* lat_us) {
  tcp::socket s(*io);
  co_await s.async_connect(ep, skein::use_promise);
  s.set_option(tcp::no_delay(true));
  Message out, in;
  long ok = 0;
  for (long t = 0; t < kTrips; ++t) {
    fill(out, id, t);
    auto t0 = bench::Clock::now();
    co_await asio::async_write(s, asio::buffer(out), skein::use_promise);
    co_await asio::async_read(s, asio::buffer(in), skein::use_promise);
    lat_us[t] = us_between(t0, bench::Clock::now());
    ok += in == out;
  }
  s.shutdown(tcp::socket::shutdown_send);
  s.close();
  co_return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const char* kWorkloads = "echo1 echon";
  if (argc != 2) return bench::usage(argv[0], kWorkloads);
  std::string_view w(argv[1]);
  if (w != "echo1" && w != "echon") return bench::usage(argv[0], kWorkloads);
  bench::Report r{argv[1], "skein"};
  r.version = SKEIN_STR(SKEIN_VERSION_MAJOR) "." SKEIN_STR(SKEIN_VERSION_MINOR) "." SKEIN_STR(SKEIN_VERSION_PATCH);
  const std::size_t io_threads = w == "echo1" ? 1 : skein::cpus();
  r.note = w == "echo1" ? "io_threads=1" : "io_threads=cpus";

  for (int i = 0; i < 8; ++i) skein::run([] {}).get();  // the pool's workers are up
  r.threads = static_cast<long>(skein::default_pool().size());
  skein::IoService io(io_threads);
  tcp::acceptor acc(io.context(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const tcp::endpoint ep = acc.local_endpoint();
  std::vector<std::unique_ptr<tcp::socket>> server_socks;
  Latencies lat;
  r.base_mb = bench::current_rss_mb();

  auto srv = skein::run(server, &acc, &server_socks);
  auto t0 = bench::Clock::now();
  std::vector<skein::Promise<long>> clients;
  for (long i = 0; i < kConnections; ++i) clients.push_back(skein::run(client, &io.context(), ep, i, lat.of(i)));
  long ok = 0;
  for (auto& c : clients) ok += c.get();
  r.ms = bench::ms_since(t0);
  const long echoed = srv.get();
  fill_report(r, echoed == kConnections * kTrips ? ok : -echoed, lat);
  return bench::finish(r);
}
