// <skein/asio.hpp>: Asio operations as skein promises (skein::use_promise,
// IoPromise, IoService), over real sockets on 127.0.0.1. Echo with exact
// totals; cancellation by the task's Context during connect, read, write,
// accept and timer waits (Cancelled naming the cause, the operation ended
// before the wait); back-pressure; a server shut down with connections open;
// an IoService destroyed under a pending operation; select against a pending
// read; error mapping (system_error, as_tuple). Built only where Asio is
// found (SKEIN_HAVE_ASIO). Every wait is on an event, a latch, a promise or
// the kernel's own state, never on a sleep; no test asserts a duration.
#include "support/common.hpp"

#include <skein/asio.hpp>

#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <array>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

using namespace test;
using asio::ip::tcp;

namespace {

tcp::endpoint loopback_any() { return {asio::ip::address_v4::loopback(), 0}; }

/// A connected pair of sockets on 127.0.0.1, made synchronously (the I/O
/// threads need not run). `buffers`: if non-zero, the client's send buffer
/// and the server's receive buffer, set before the connection exists.
struct Pair {
  tcp::socket client;
  tcp::socket server;
};
Pair connected_pair(asio::io_context& io, int buffers = 0) {
  tcp::acceptor acc(io, loopback_any());
  if (buffers) acc.set_option(asio::socket_base::receive_buffer_size(buffers));  // inherited by accepted sockets
  tcp::socket c(io), s(io);
  c.open(tcp::v4());
  if (buffers) c.set_option(asio::socket_base::send_buffer_size(buffers));
  c.connect(acc.local_endpoint());
  acc.accept(s);
  return {std::move(c), std::move(s)};
}

std::exception_ptr cause_of(const char* what) { return std::make_exception_ptr(std::runtime_error(what)); }

/// What a task saw when its wait ended.
struct Seen {
  bool completed = false;
  bool cancelled = false;
  std::string what;
  std::exception_ptr cause;
  void record(const skein::Cancelled& c) {
    cancelled = true;
    what = c.what();
    cause = c.cause();
  }
};

/// The wait ended with Cancelled; its what() names `cause` and its cause()
/// rethrows the runtime_error given to ctx.cancel(cause).
void check_cancelled_with(const Seen& s, const char* cause) {
  CHECK_FALSE(s.completed);
  REQUIRE(s.cancelled);
  CHECK(s.what.find("I/O operation cancelled") != std::string::npos);
  CHECK(s.what.find(cause) != std::string::npos);
  REQUIRE(s.cause);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(s.cause), cause, std::runtime_error);
}

/// Counts down a WaitGroup when the scope ends (in a coroutine: when its body ends).
struct DoneOnExit {
  skein::WaitGroup* wg;
  ~DoneOnExit() { wg->done(); }
};

}  // namespace

// --- the basics ------------------------------------------------------------------

TEST_CASE("asio: IoService runs its threads; zero threads is a UsageError") {
  CHECK_THROWS_AS(skein::IoService(0), skein::UsageError);
  skein::IoService two(2);
  CHECK(two.threads() == 2);
  // Work posted to it runs on one of its threads, and a use_promise
  // operation without a value (post's void()) is a Promise<void>.
  std::thread::id ran_on;
  Event ran;
  asio::post(two.context(), [&] {
    ran_on = std::this_thread::get_id();
    ran.set();
  });
  ran.wait();
  CHECK(ran_on != std::this_thread::get_id());
  asio::post(two.get_executor(), skein::use_promise).get();
}

TEST_CASE("asio: completion signatures become the promise's value; errors are thrown with their type") {
  Watchdog dog(60s, "asio signatures");
  skein::IoService io;
  // An initiation that completes on the I/O thread with `args...`.
  auto complete_with = [&io]<class Sig>(Sig*, auto... args) {
    return asio::async_initiate<const skein::use_promise_t, Sig>(
        [&io, args...](auto handler) {
          asio::post(io.context(), [h = std::move(handler), args...]() mutable { h(args...); });
        },
        skein::use_promise);
  };
  using ErrIntString = void(std::error_code, int, std::string);
  using ExcInt = void(std::exception_ptr, int);
  using JustInt = void(int);
  using ErrOnly = void(std::error_code);

  auto tuple = complete_with(static_cast<ErrIntString*>(nullptr), std::error_code(), 7, std::string("seven")).get();
  static_assert(std::is_same_v<decltype(tuple), std::tuple<int, std::string>>);
  CHECK(tuple == std::make_tuple(7, std::string("seven")));

  int v = complete_with(static_cast<JustInt*>(nullptr), 42).get();
  CHECK(v == 42);

  CHECK(complete_with(static_cast<ExcInt*>(nullptr), std::exception_ptr(), 5).get() == 5);
  CHECK_THROWS_WITH_AS(
      complete_with(static_cast<ExcInt*>(nullptr), std::make_exception_ptr(std::out_of_range("no such key")), 0).get(),
      "no such key", std::out_of_range);

  try {
    complete_with(static_cast<ErrOnly*>(nullptr), std::error_code(asio::error::host_unreachable)).get();
    FAIL("no error");
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::host_unreachable);
  }
  // operation_aborted that no cancellation of the task asked for (someone
  // closed the socket, cancelled the timer) is an error, not Cancelled.
  try {
    complete_with(static_cast<ErrOnly*>(nullptr), std::error_code(asio::error::operation_aborted)).get();
    FAIL("no error");
  } catch (const skein::Cancelled&) {
    FAIL("operation_aborted without a cancellation became Cancelled");
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
}

// --- 1. echo: many connections, exact totals ----------------------------------

namespace {

struct EchoTotals {
  std::atomic<long long> server_bytes{0};
  std::atomic<long long> client_bytes{0};
  std::atomic<long long> client_messages{0};
  std::atomic<int> server_eofs{0};
  std::atomic<int> server_errors{0};
  std::atomic<int> mismatches{0};
};

constexpr std::size_t kEchoMessage = 64;

/// The message `m` of connection `c`: 64 bytes that say whose they are.
std::array<char, kEchoMessage> echo_message(int c, int m) {
  std::array<char, kEchoMessage> a{};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>((c * 131 + m * 31 + static_cast<int>(i)) % 251);
  return a;
}

/// The server's task for one connection: echo until the client closes.
skein::Promise<void> echo_connection(std::unique_ptr<tcp::socket> sp, EchoTotals* t, skein::WaitGroup* wg) {
  DoneOnExit done{wg};
  std::unique_ptr<tcp::socket> s = std::move(sp);  // destroyed when the body ends, before done
  std::array<char, 1024> buf;
  for (;;) {
    std::size_t n = 0;
    try {
      n = co_await s->async_read_some(asio::buffer(buf), skein::use_promise);
    } catch (const std::system_error& e) {
      (e.code() == asio::error::eof ? t->server_eofs : t->server_errors)++;
      co_return;
    }
    co_await asio::async_write(*s, asio::buffer(buf.data(), n), skein::use_promise);
    t->server_bytes += static_cast<long long>(n);
  }
}

skein::Promise<void> echo_server(tcp::acceptor* acc, asio::io_context* io, int connections, EchoTotals* t,
                                 skein::WaitGroup* wg) {
  for (int i = 0; i < connections; ++i) {
    auto s = std::make_unique<tcp::socket>(asio::make_strand(*io));
    co_await acc->async_accept(*s, skein::use_promise);
    skein::spawn(echo_connection, std::move(s), t, wg);  // bound to the server's context
  }
}

skein::Promise<void> echo_client_coroutine(asio::io_context* io, tcp::endpoint ep, int c, int messages, EchoTotals* t) {
  tcp::socket s(asio::make_strand(*io));
  co_await s.async_connect(ep, skein::use_promise);
  std::array<char, kEchoMessage> back;
  for (int m = 0; m < messages; ++m) {
    const auto msg = echo_message(c, m);
    co_await asio::async_write(s, asio::buffer(msg), skein::use_promise);
    const std::size_t n = co_await asio::async_read(s, asio::buffer(back), skein::use_promise);
    t->client_bytes += static_cast<long long>(n);
    t->client_messages++;
    if (back != msg) t->mismatches++;
  }
}

void echo_client_blocking(asio::io_context* io, tcp::endpoint ep, int c, int messages, EchoTotals* t) {
  tcp::socket s(asio::make_strand(*io));
  s.async_connect(ep, skein::use_promise).get();
  std::array<char, kEchoMessage> back;
  for (int m = 0; m < messages; ++m) {
    const auto msg = echo_message(c, m);
    asio::async_write(s, asio::buffer(msg), skein::use_promise).get();
    const std::size_t n = asio::async_read(s, asio::buffer(back), skein::use_promise).get();
    t->client_bytes += static_cast<long long>(n);
    t->client_messages++;
    if (back != msg) t->mismatches++;
  }
}

}  // namespace

// The issue asks for 1,000 connections x 1,000 messages. The default, 100 x
// 100, runs in a few seconds under TSan on 2 cores; SKEIN_TEST_SCALE divides
// it as every count of this suite, and SKEIN_ASIO_ECHO_FULL=1 runs the issue's
// 1,000 x 1,000 (ulimit -n must allow 2,000 sockets).
TEST_CASE("asio: echo, many connections at once: coroutine and blocking clients, exact totals") {
  Watchdog dog(300s, "asio echo");
  const bool full = std::getenv("SKEIN_ASIO_ECHO_FULL") != nullptr;
  const int connections = full ? 1000 : scaled(100);
  const int messages = full ? 1000 : scaled(100);

  skein::IoService io(2);                                              // two I/O threads: every socket has its strand
  tcp::acceptor acc(asio::make_strand(io.context()), loopback_any());  // listening (backlog: the maximum)
  const auto ep = acc.local_endpoint();

  EchoTotals t;
  skein::WaitGroup connection_tasks;
  connection_tasks.add(connections);
  skein::Context server_ctx;
  auto server = server_ctx.run(echo_server, &acc, &io.context(), connections, &t, &connection_tasks);

  std::vector<skein::Promise<void>> clients;
  for (int c = 0; c < connections; ++c) {
    if (c % 2 == 0)
      clients.push_back(skein::run(echo_client_coroutine, &io.context(), ep, c, messages, &t));
    else
      clients.push_back(skein::run(echo_client_blocking, &io.context(), ep, c, messages, &t));
  }
  for (auto& c : clients) c.get();  // each client closed its socket on its way out
  server.get();                     // accepted exactly `connections`
  connection_tasks.wait();          // every connection saw its client's eof
  server_ctx.wait();

  const long long expected_messages = static_cast<long long>(connections) * messages;
  CHECK(t.client_messages == expected_messages);
  CHECK(t.client_bytes == expected_messages * static_cast<long long>(kEchoMessage));
  CHECK(t.server_bytes == expected_messages * static_cast<long long>(kEchoMessage));
  CHECK(t.server_eofs == connections);
  CHECK(t.server_errors == 0);
  CHECK(t.mismatches == 0);
}

// --- 2. cancellation during connect, read, write, accept ---------------------

#if defined(__linux__)
namespace {
/// The listener's accept queue: connections completed and not accepted yet,
/// and its bound (Linux: TCP_INFO on a listening socket).
std::pair<unsigned, unsigned> accept_queue(tcp::acceptor& acc) {
  ::tcp_info ti{};
  socklen_t len = sizeof ti;
  REQUIRE(::getsockopt(acc.native_handle(), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0);
  return {ti.tcpi_unacked, ti.tcpi_sacked};
}
}  // namespace

// A listener that never accepts, its accept queue full (backlog 1): Linux
// drops the SYNs of further connections, so their connects stay pending
// (the kernel would retry for minutes). Filled with synchronous connects, each
// made only once the queue holds all the previous ones and has room.
TEST_CASE("asio: cancelling a pending connect (accept queue full) ends the wait with Cancelled naming the cause") {
  Watchdog dog(60s, "asio connect cancel");
  skein::IoService io;
  tcp::acceptor acc(io.context());
  acc.open(tcp::v4());
  acc.bind(loopback_any());
  acc.listen(1);
  const auto ep = acc.local_endpoint();
  std::vector<tcp::socket> fillers;
  for (;;) {
    REQUIRE(eventually([&] { return accept_queue(acc).first == fillers.size(); }));
    const auto [queued, bound] = accept_queue(acc);
    if (queued > bound) break;  // full: the next SYN is dropped
    REQUIRE(fillers.size() < 64);
    fillers.emplace_back(io.context()).connect(ep);
  }

  bool coroutine = false;
  SUBCASE("coroutine") { coroutine = true; }
  SUBCASE("plain task") { coroutine = false; }

  skein::Context ctx;
  tcp::socket s(io.context());
  Event started;
  Seen seen;
  skein::Promise<void> task;
  if (coroutine) {
    task = ctx.run([&]() -> skein::Promise<void> {
      auto connect = s.async_connect(ep, skein::use_promise);
      started.set();
      try {
        co_await std::move(connect);
        seen.completed = true;
      } catch (const skein::Cancelled& c) {
        seen.record(c);
      }
    });
  } else {
    task = ctx.run([&] {
      auto connect = s.async_connect(ep, skein::use_promise);
      started.set();
      try {
        std::move(connect).get();
        seen.completed = true;
      } catch (const skein::Cancelled& c) {
        seen.record(c);
      }
    });
  }
  started.wait();
  ctx.cancel(cause_of("connect abandoned by the caller"));
  task.get();
  check_cancelled_with(seen, "connect abandoned by the caller");
  // It never connected: the queue holds the fillers only.
  CHECK(accept_queue(acc).first == fillers.size());
}
#endif

TEST_CASE("asio: an operation started by a task already cancelled is not started; the wait throws Cancelled") {
  Watchdog dog(60s, "asio not started");
  skein::IoService io;
  auto p = connected_pair(io.context());
  tcp::acceptor listener(io.context(), loopback_any());
  skein::Context ctx;
  Event running, go;
  Seen write_seen, connect_seen;
  tcp::socket unconnected(io.context());
  auto task = ctx.run([&]() -> skein::Promise<void> {
    running.set();
    go.wait();  // not a skein wait: the task goes on after the cancel
    try {
      co_await asio::async_write(p.client, asio::buffer("payload", 7), skein::use_promise);
      write_seen.completed = true;
    } catch (const skein::Cancelled& c) {
      write_seen.record(c);
    }
    try {
      co_await unconnected.async_connect(listener.local_endpoint(), skein::use_promise);
      connect_seen.completed = true;
    } catch (const skein::Cancelled& c) {
      connect_seen.record(c);
    }
  });
  running.wait();
  ctx.cancel(cause_of("too late"));
  go.set();
  task.get();
  check_cancelled_with(write_seen, "too late");
  check_cancelled_with(connect_seen, "too late");
  // Nothing was sent: the first byte the peer reads is the marker sent now.
  asio::write(p.client, asio::buffer("M", 1));
  char first = 0;
  asio::read(p.server, asio::buffer(&first, 1));
  CHECK(first == 'M');
  // No connection was made: the listener has none to accept, and the socket
  // is not connected.
  listener.non_blocking(true);
  tcp::socket none(io.context());
  asio::error_code ec;
  listener.accept(none, ec);
  CHECK(ec == asio::error::would_block);
  unconnected.remote_endpoint(ec);
  CHECK(ec);
}

TEST_CASE("asio: cancelling a pending read ends the wait with Cancelled naming the cause; the read took nothing") {
  Watchdog dog(60s, "asio read cancel");
  skein::IoService io;
  auto p = connected_pair(io.context());
  bool coroutine = false;
  SUBCASE("coroutine") { coroutine = true; }
  SUBCASE("plain task") { coroutine = false; }

  skein::Context ctx;
  Event started;
  Seen seen;
  skein::Promise<void> task;
  if (coroutine) {
    task = ctx.run([&]() -> skein::Promise<void> {
      auto buf = std::make_unique<std::array<char, 64>>();
      auto read = p.client.async_read_some(asio::buffer(*buf), skein::use_promise);
      started.set();
      try {
        (void)co_await std::move(read);
        seen.completed = true;
      } catch (const skein::Cancelled& c) {
        seen.record(c);
      }
      buf.reset();  // the read has ended: its buffer may go (ASan: no use after this)
    });
  } else {
    task = ctx.run([&] {
      auto buf = std::make_unique<std::array<char, 64>>();
      auto read = p.client.async_read_some(asio::buffer(*buf), skein::use_promise);
      started.set();
      try {
        (void)std::move(read).get();
        seen.completed = true;
      } catch (const skein::Cancelled& c) {
        seen.record(c);
      }
      buf.reset();
    });
  }
  started.wait();
  ctx.cancel(cause_of("client went away"));
  task.get();
  check_cancelled_with(seen, "client went away");
  // The cancelled read has ended and took nothing: what the peer sends now is all there.
  asio::write(p.server, asio::buffer("hello", 5));
  std::array<char, 5> got{};
  asio::read(p.client, asio::buffer(got));
  CHECK(std::string(got.data(), got.size()) == "hello");
}

TEST_CASE("asio: cancelling a write blocked by a peer that never reads (64 MB) ends it with Cancelled; the task ends") {
  Watchdog dog(120s, "asio write cancel");
  skein::IoService io;
  auto p = connected_pair(io.context());
  bool coroutine = false;
  SUBCASE("coroutine") { coroutine = true; }
  SUBCASE("plain task") { coroutine = false; }

  skein::Context ctx;
  Event started;
  Seen seen;
  skein::Promise<void> task;
  constexpr std::size_t kBig = 64u << 20;  // far beyond what the kernel buffers
  if (coroutine) {
    task = ctx.run([&]() -> skein::Promise<void> {
      auto buf = std::make_unique<std::vector<char>>(kBig, 'w');
      auto write = asio::async_write(p.client, asio::buffer(*buf), skein::use_promise);
      started.set();
      try {
        (void)co_await std::move(write);
        seen.completed = true;
      } catch (const skein::Cancelled& c) {
        seen.record(c);
      }
      buf.reset();  // the write has ended: the kernel and Asio are done with the buffer
    });
  } else {
    task = ctx.run([&] {
      auto buf = std::make_unique<std::vector<char>>(kBig, 'w');
      auto write = asio::async_write(p.client, asio::buffer(*buf), skein::use_promise);
      started.set();
      try {
        (void)std::move(write).get();
        seen.completed = true;
      } catch (const skein::Cancelled& c) {
        seen.record(c);
      }
      buf.reset();
    });
  }
  started.wait();
  // The write is under way (its first bytes reached the peer) and stuck.
  REQUIRE(eventually([&] { return p.server.available() > 0; }));
  ctx.cancel(cause_of("peer too slow"));
  task.get();
  check_cancelled_with(seen, "peer too slow");
}

TEST_CASE("asio: cancelling a pending accept ends the wait with Cancelled; the acceptor still works") {
  Watchdog dog(60s, "asio accept cancel");
  skein::IoService io;
  tcp::acceptor acc(io.context(), loopback_any());
  bool coroutine = false;
  SUBCASE("coroutine") { coroutine = true; }
  SUBCASE("plain task") { coroutine = false; }

  skein::Context ctx;
  Event started;
  Seen seen;
  tcp::socket accepted(io.context());
  skein::Promise<void> task;
  if (coroutine) {
    task = ctx.run([&]() -> skein::Promise<void> {
      auto accept = acc.async_accept(accepted, skein::use_promise);
      started.set();
      try {
        co_await std::move(accept);
        seen.completed = true;
      } catch (const skein::Cancelled& c) {
        seen.record(c);
      }
    });
  } else {
    task = ctx.run([&] {
      auto accept = acc.async_accept(accepted, skein::use_promise);
      started.set();
      try {
        std::move(accept).get();
        seen.completed = true;
      } catch (const skein::Cancelled& c) {
        seen.record(c);
      }
    });
  }
  started.wait();
  ctx.cancel(cause_of("server stopping"));
  task.get();
  check_cancelled_with(seen, "server stopping");
  CHECK_FALSE(accepted.is_open());
  // The cancelled accept has ended: the next connection goes to a new accept.
  tcp::socket c(io.context());
  c.connect(acc.local_endpoint());
  tcp::socket s(io.context());
  acc.accept(s);
  CHECK(s.remote_endpoint() == c.local_endpoint());
}

// A cancellation that comes as the operation completes: the I/O thread is
// held so that the completion (H) is queued first, then the cancellation's
// emission (L), with a handler (Y) between them; the task destroys its
// socket after its wait, before L runs. L must not touch the operation's
// cancellation handler then: it points into the destroyed socket (an ASan
// heap-use-after-free in epoll_reactor::cancel_ops_by_key otherwise).
// (Found by this test: the emission did not check that the operation had
// completed. Without ASan the freed read is benign: run it under ASan.)
TEST_CASE("asio: a cancellation that races with the completion does not touch the socket after the wait") {
  Watchdog dog(60s, "asio cancel vs completion");
  skein::IoService io(1);
  auto p = connected_pair(io.context());
  auto sock = std::make_unique<tcp::socket>(std::move(p.client));
  Event holding, release_x, release_y;
  asio::post(io.context(), [&] {  // X: holds the only I/O thread
    holding.set();
    release_x.wait();
  });
  holding.wait();
  asio::write(p.server, asio::buffer("z", 1));
  sock->wait(tcp::socket::wait_read);  // the byte is there: the read completes as it starts
  skein::Context ctx;
  char buf[1];
  skein::Promise<std::size_t> read;
  {
    auto in = ctx.enter();
    read = sock->async_read_some(asio::buffer(buf), skein::use_promise).promise();  // H queued behind X
  }
  asio::post(io.context(), [&] { release_y.wait(); });  // Y, behind H
  ctx.cancel();                                         // L, behind Y
  release_x.set();
  CHECK(read.get() == 1);                              // the read completed: the wait has ended
  sock.reset();                                        // so the socket may go
  release_y.set();                                     // L runs now
  asio::post(io.context(), skein::use_promise).get();  // after L
}

// --- 3. back-pressure -------------------------------------------------------------

TEST_CASE(
    "asio: a peer that stops reading blocks the writer; the writer completes once the reader drains, exact totals") {
  Watchdog dog(120s, "asio back-pressure");
  skein::IoService io;
  // Small kernel buffers (the kernel doubles them): 8 MB cannot fit.
  auto p = connected_pair(io.context(), 64 * 1024);
  constexpr std::size_t kChunk = 128 * 1024;
  const std::size_t chunks = 64;
  std::vector<char> data(kChunk * chunks);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7 + i / kChunk) % 253);

  bool coroutine = false;
  SUBCASE("coroutine") { coroutine = true; }
  SUBCASE("plain task") { coroutine = false; }

  std::atomic<std::size_t> chunks_written{0};
  std::atomic<long> writer_tid{0};
  skein::Promise<std::size_t> writer;
  if (coroutine) {
    writer = skein::run([&]() -> skein::Promise<std::size_t> {
      std::size_t total = 0;
      for (std::size_t c = 0; c < chunks; ++c) {
        total +=
            co_await asio::async_write(p.client, asio::buffer(data.data() + c * kChunk, kChunk), skein::use_promise);
        chunks_written++;
      }
      co_return total;
    });
  } else {
    writer = skein::run([&] {
      writer_tid = this_thread_tid();
      std::size_t total = 0;
      for (std::size_t c = 0; c < chunks; ++c) {
        total += asio::async_write(p.client, asio::buffer(data.data() + c * kChunk, kChunk), skein::use_promise).get();
        chunks_written++;
      }
      return total;
    });
  }
  // The writer is under way, then stuck: the reader has read nothing, and the
  // kernel holds a few hundred KB of the 8 MB.
  REQUIRE(eventually([&] { return p.server.available() > 0; }));
  if (!coroutine) {
    REQUIRE(eventually([&] { return writer_tid.load() != 0; }));
    CHECK(parked_or_unknowable(writer_tid.load()));  // parked in its get(), not spinning
  }
  CHECK_FALSE(writer.ready());
  CHECK(chunks_written.load() < chunks);

  // The reader drains: the writer completes, every byte in order.
  std::vector<char> got(data.size());
  const std::size_t n = asio::read(p.server, asio::buffer(got));
  CHECK(n == data.size());
  CHECK(writer.get() == data.size());
  CHECK(chunks_written.load() == chunks);
  CHECK(got == data);
}

// --- 4. a server shut down with connections open -----------------------------------

namespace {
struct ShutdownStats {
  std::atomic<int> cancelled{0};
  std::atomic<int> other{0};
  std::atomic<long long> echoed{0};
};

/// Echoes until its context is cancelled (the client never closes first).
skein::Promise<void> serve_until_cancelled(std::unique_ptr<tcp::socket> sp, ShutdownStats* st, skein::WaitGroup* wg) {
  DoneOnExit done{wg};
  std::unique_ptr<tcp::socket> s = std::move(sp);  // closed when the body ends
  std::array<char, 256> buf;
  try {
    for (;;) {
      const std::size_t n = co_await s->async_read_some(asio::buffer(buf), skein::use_promise);
      co_await asio::async_write(*s, asio::buffer(buf.data(), n), skein::use_promise);
      st->echoed += static_cast<long long>(n);
    }
  } catch (const skein::Cancelled&) {
    st->cancelled++;
  } catch (...) {
    st->other++;
  }
}
}  // namespace

TEST_CASE("asio: cancelling a server's root Context ends every connection task and closes every socket") {
  Watchdog dog(120s, "asio server shutdown");
  skein::IoService io(2);
  const int kClients = scaled(50);
  tcp::acceptor acc(asio::make_strand(io.context()), loopback_any());

  skein::Context srv;
  skein::WaitGroup connection_tasks;
  ShutdownStats st;
  std::atomic<int> accepted{0};
  auto server = srv.run([&]() -> skein::Promise<void> {
    for (;;) {
      auto s = std::make_unique<tcp::socket>(asio::make_strand(io.context()));
      co_await acc.async_accept(*s, skein::use_promise);  // Cancelled at the shutdown
      accepted++;
      connection_tasks.add(1);
      srv.spawn(serve_until_cancelled, std::move(s), &st, &connection_tasks);
    }
  });

  // Clients (plain sockets on this thread): each connection is served (one
  // echo) and left open.
  std::vector<tcp::socket> clients;
  for (int i = 0; i < kClients; ++i) {
    auto& c = clients.emplace_back(io.context());
    c.connect(acc.local_endpoint());
    asio::write(c, asio::buffer("ping", 4));
    std::array<char, 4> back{};
    asio::read(c, asio::buffer(back));
    CHECK(std::string(back.data(), 4) == "ping");
  }

  srv.cancel(cause_of("shutdown"));
  try {
    server.get();
    FAIL("the accept loop ended by itself");
  } catch (const skein::Cancelled& c) {
    CHECK(std::string(c.what()).find("shutdown") != std::string::npos);
  }
  connection_tasks.wait();  // every connection task ended ...
  srv.wait();               // ... and so did every task of the context
  CHECK(accepted == kClients);
  CHECK(st.cancelled == kClients);
  CHECK(st.other == 0);
  CHECK(st.echoed == 4LL * kClients);
  // ... and closed its socket: each client sees the end of the stream.
  int closed = 0;
  for (auto& c : clients) {
    std::array<char, 16> buf;
    asio::error_code ec;
    const std::size_t n = c.read_some(asio::buffer(buf), ec);
    CHECK(n == 0);
    if (ec == asio::error::eof || ec == asio::error::connection_reset) ++closed;
  }
  CHECK(closed == kClients);
}

// --- 5. timers ---------------------------------------------------------------------

TEST_CASE("asio: a steady_timer wait through use_promise, in a coroutine and in a plain task") {
  Watchdog dog(60s, "asio timer");
  skein::IoService io;
  bool coroutine = false;
  SUBCASE("coroutine") { coroutine = true; }
  SUBCASE("plain task") { coroutine = false; }

  asio::steady_timer timer(io.context(), 5ms);
  skein::Promise<void> task;
  if (coroutine)
    task = skein::run([&]() -> skein::Promise<void> { co_await timer.async_wait(skein::use_promise); });
  else
    task = skein::run([&] { timer.async_wait(skein::use_promise).get(); });
  task.get();
  CHECK(std::chrono::steady_clock::now() >= timer.expiry());  // it ended because the timer expired

  // The timer's own cancel (not the task's) is an error, not Cancelled.
  asio::steady_timer forever(io.context(), 1h);
  Event started;
  auto waiting = skein::run([&] {
    auto w = forever.async_wait(skein::use_promise);
    started.set();
    std::move(w).get();
  });
  started.wait();
  asio::post(io.context(), [&] { forever.cancel(); });  // on the I/O thread, where the timer is used
  try {
    waiting.get();
    FAIL("the timer expired");
  } catch (const skein::Cancelled&) {
    FAIL("the timer's own cancel became Cancelled");
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
}

TEST_CASE("asio: a context's timeout cancels a timer wait: Cancelled, timed_out(), the deadline as its cause") {
  Watchdog dog(60s, "asio timer timeout");
  skein::IoService io;
  bool with_cause = false;
  SUBCASE("without a cause") { with_cause = false; }
  SUBCASE("with a cause") { with_cause = true; }

  auto ctx = with_cause ? skein::Context::with_timeout(20ms, cause_of("request budget spent"))
                        : skein::Context::with_timeout(20ms);
  asio::steady_timer timer(io.context(), 1h);
  Seen seen;
  auto task = ctx.run([&]() -> skein::Promise<void> {
    try {
      co_await timer.async_wait(skein::use_promise);
      seen.completed = true;
    } catch (const skein::Cancelled& c) {
      seen.record(c);
    }
  });
  task.get();
  CHECK(ctx.timed_out());
  if (with_cause) {
    check_cancelled_with(seen, "request budget spent");
  } else {
    REQUIRE(seen.cancelled);
    CHECK(seen.what.find("deadline exceeded") != std::string::npos);
    REQUIRE(seen.cause);
    CHECK_THROWS_WITH_AS(std::rethrow_exception(seen.cause), doctest::Contains("deadline exceeded"), skein::Cancelled);
  }
  CHECK(timer.expiry() - std::chrono::steady_clock::now() > 30min);  // the timer did not expire
}

// --- 6. an IoService destroyed with an operation pending ------------------------

namespace {
/// Blocks the IoService's only I/O thread until its io_context is stopped
/// (by the IoService's destructor), then runs `then` on it: the operations
/// pending or queued then are never completed, only destroyed with the
/// io_context. A bounded spin: the destructor stops the context at once.
template <class F>
void hold_io_thread_until_stopped(asio::io_context& ioc, Event& holding, F then) {
  asio::post(ioc, [&ioc, &holding, then = std::move(then)]() mutable {
    holding.set();
    while (!ioc.stopped()) std::this_thread::yield();
    then();
  });
  holding.wait();
}
}  // namespace

TEST_CASE("asio: an IoService destroyed with an operation pending fails its promise with Cancelled, not a hang") {
  Watchdog dog(60s, "asio abandoned");
  auto io = std::make_unique<skein::IoService>(1);
  asio::io_context& ioc = io->context();
  Event holding, started;
  skein::Promise<void> waiter;

  SUBCASE("a queued handler (post)") {
    hold_io_thread_until_stopped(ioc, holding, [] {});
    waiter = skein::run([&] {
      auto p = asio::post(ioc, skein::use_promise);
      started.set();
      std::move(p).get();
    });
  }
  SUBCASE("a pending read (its socket closed on the stopped context)") {
    // The sockets must go before the io_context: closed (on the I/O thread)
    // once it is stopped, their aborted read is queued and never run. The
    // held handler owns them; the task only uses them.
    auto pair = std::make_shared<Pair>(connected_pair(ioc));
    Pair* sockets = pair.get();
    hold_io_thread_until_stopped(ioc, holding, [owned = std::move(pair)]() mutable { owned.reset(); });
    waiter = skein::run([&, sockets] {
      std::vector<char> buf(64);
      auto p = sockets->client.async_read_some(asio::buffer(buf), skein::use_promise);
      started.set();
      (void)std::move(p).get();
    });
  }
  started.wait();  // the operation has started (its promise exists)
  std::thread destroyer([&] { io.reset(); });
  destroyer.join();
  CHECK_THROWS_WITH_AS(waiter.get(), doctest::Contains("promise abandoned"), skein::Cancelled);
}

// --- 7. select against a pending read -------------------------------------------

TEST_CASE(
    "asio: select: a queue item wins against a pending read; the read is cancelled and settles before its buffer "
    "goes") {
  Watchdog dog(60s, "asio select");
  skein::IoService io;
  auto p = connected_pair(io.context());
  skein::Queue<int> q(1);
  skein::Context read_ctx;
  auto buf = std::make_unique<std::array<char, 64>>();
  skein::Promise<std::size_t> read;
  {
    auto in = read_ctx.enter();  // the read belongs to read_ctx: cancelling it cancels the read
    read = p.client.async_read_some(asio::buffer(*buf), skein::use_promise).promise();
  }
  bool coroutine = false;
  SUBCASE("select in a plain task") { coroutine = false; }
  SUBCASE("async_select in a coroutine") { coroutine = true; }

  skein::Promise<std::size_t> chooser;
  if (coroutine) {
    chooser = skein::run([&]() -> skein::Promise<std::size_t> {
      auto r = co_await skein::async_select(skein::case_ready(read), skein::case_get(q));
      if (r.index() == 1) CHECK(r.get<1>() == std::optional<int>(7));
      co_return r.index();
    });
  } else {
    chooser = skein::run([&] {
      auto r = skein::select(skein::case_ready(read), skein::case_get(q));
      if (r.index() == 1) CHECK(r.get<1>() == std::optional<int>(7));
      return r.index();
    });
  }
  q.put(7);
  CHECK(chooser.get() == 1);  // the item won: the read is still pending
  CHECK_FALSE(read.ready());

  read_ctx.cancel(cause_of("lost the race"));
  // The promise settles once the read has ended (this thread is not in read_ctx).
  CHECK_THROWS_WITH_AS(read.wait(), doctest::Contains("lost the race"), skein::Cancelled);
  buf.reset();  // now, and only now, the buffer may go
  asio::write(p.server, asio::buffer("x", 1));
  char got = 0;
  asio::read(p.client, asio::buffer(&got, 1));
  CHECK(got == 'x');  // the cancelled read took nothing
}

// --- 8. error mapping -------------------------------------------------------------

// (One eof per socket: Asio's epoll reactor does not report an eof twice
// — a read after the one that saw it waits for an edge that never comes.)
TEST_CASE(
    "asio: a read on a socket whose peer closed throws system_error(eof); as_tuple gives (error_code, n) without a "
    "throw") {
  Watchdog dog(60s, "asio errors");
  skein::IoService io;
  auto closed_after = [&](const char* data) {
    auto p = std::make_unique<Pair>(connected_pair(io.context()));
    asio::write(p->server, asio::buffer(data, std::char_traits<char>::length(data)));
    p->server.close();
    return p;
  };
  auto p1 = closed_after("abc"), p2 = closed_after(""), p3 = closed_after(""), p4 = closed_after("");
  using asio::experimental::as_tuple;

  auto task = skein::run([&]() -> skein::Promise<void> {
    std::array<char, 16> buf;
    // as_tuple: the data, then the eof, as values.
    auto [ec1, n1] = co_await p1->client.async_read_some(asio::buffer(buf), as_tuple(skein::use_promise));
    CHECK_FALSE(ec1);
    CHECK(n1 == 3);
    CHECK(std::string(buf.data(), n1) == "abc");
    auto [ec2, n2] = co_await p1->client.async_read_some(asio::buffer(buf), as_tuple(skein::use_promise));
    CHECK(ec2 == asio::error::eof);
    CHECK(n2 == 0);
    // use_promise alone: the eof is thrown, as a system_error.
    bool threw = false;
    try {
      (void)co_await p2->client.async_read_some(asio::buffer(buf), skein::use_promise);
    } catch (const std::system_error& e) {
      threw = true;
      CHECK(e.code() == asio::error::eof);
      CHECK_FALSE(dynamic_cast<const skein::Cancelled*>(&e));
    }
    CHECK(threw);
  });
  task.get();

  // The same from a plain task.
  auto plain = skein::run([&] {
    std::array<char, 16> buf;
    auto [ec, n] = p3->client.async_read_some(asio::buffer(buf), as_tuple(skein::use_promise)).get();
    CHECK(ec == asio::error::eof);
    CHECK(n == 0);
    try {
      (void)p4->client.async_read_some(asio::buffer(buf), skein::use_promise).get();
      FAIL("no eof");
    } catch (const std::system_error& e) {
      CHECK(e.code() == asio::error::eof);
    }
  });
  plain.get();
}

TEST_CASE("asio: a connect to a port where nothing listens throws system_error(connection_refused)") {
  Watchdog dog(60s, "asio refused");
  skein::IoService io;
  tcp::endpoint closed_port;
  {
    tcp::acceptor acc(io.context(), loopback_any());
    closed_port = acc.local_endpoint();
  }  // closed: nothing listens there now
  tcp::socket s(io.context());
  try {
    s.async_connect(closed_port, skein::use_promise).get();
    FAIL("connected");
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::connection_refused);
  }
}

TEST_CASE("asio: use_tuple returns the error code with the values; the Context's cancellation still throws Cancelled") {
  Watchdog dog(60s, "asio use_tuple");
  skein::IoService io;
  auto p = std::make_unique<Pair>(connected_pair(io.context()));
  asio::write(p->server, asio::buffer("xyz", 3));
  skein::Context ctx;
  test::Event reading;
  auto task = ctx.run([&]() -> skein::Promise<std::string> {
    std::array<char, 16> buf;
    auto [ec, n] = co_await p->client.async_read_some(asio::buffer(buf), skein::use_tuple);
    CHECK_FALSE(ec);
    CHECK(std::string(buf.data(), n) == "xyz");
    reading.set();
    try {
      (void)co_await p->client.async_read_some(asio::buffer(buf), skein::use_tuple);  // nothing comes
    } catch (const skein::Cancelled& c) {
      co_return c.what();
    }
    co_return "not cancelled";
  });
  reading.wait();
  ctx.cancel(std::make_exception_ptr(std::runtime_error("tuple stop")));
  auto what = task.get();
  CHECK(what.find("tuple stop") != std::string::npos);

  p->server.close();
  auto eof = skein::run([&] {
    std::array<char, 16> buf;
    return p->client.async_read_some(asio::buffer(buf), skein::use_tuple).get();
  });
  auto [ec, n] = eof.get();
  CHECK(ec == asio::error::eof);
  CHECK(n == 0);
}
