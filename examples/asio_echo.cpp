// A TCP echo server and its clients in one program, on <skein/asio.hpp>: a
// coroutine task per connection, at most kMaxConnections at once (a
// Semaphore's Permit), a deadline per connection (a child Context with a
// timeout), and a graceful shutdown that cancels the server's root Context —
// every connection task ends. The clients are plain tasks that block in
// .get(). Each part prints a [heading]; ctest checks the output, which is
// deterministic. Built when Asio is found (standalone Asio, libasio-dev).
#include <skein/asio.hpp>  // not in <skein/skein.hpp>: it needs Asio
#include <skein/skein.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using asio::ip::tcp;

namespace {

constexpr int kMaxConnections = 2;
constexpr auto kConnectionDeadline = 250ms;

struct Stats {
  std::atomic<int> accepted{0}, open{0}, most{0}, closed_by_client{0}, timed_out{0}, shut_down{0};
  std::atomic<long> bytes{0};
};

// [readme:server]
// One connection: echoes until the client closes, the connection's deadline
// passes or the server shuts down. The permit is returned when it ends.
skein::Promise<void> serve(tcp::socket socket, [[maybe_unused]] skein::Permit permit, Stats& stats) {
  const int now = ++stats.open;
  for (int seen = stats.most; now > seen && !stats.most.compare_exchange_weak(seen, now);) {
  }
  char buf[1024];
  try {
    for (;;) {
      std::size_t n = co_await socket.async_read_some(asio::buffer(buf), skein::use_promise);
      co_await asio::async_write(socket, asio::buffer(buf, n), skein::use_promise);
      stats.bytes += static_cast<long>(n);
    }
  } catch (const std::system_error& e) {  // asio::error::eof: the client is done
    if (e.code() == asio::error::eof) ++stats.closed_by_client;
  } catch (const skein::Cancelled& e) {  // the deadline, or the shutdown: e.cause() says which
    std::printf("server: %s\n", e.what());
    ++(skein::Context::current()->timed_out() ? stats.timed_out : stats.shut_down);
  }
  --stats.open;
}

// The server: a connection task for each client, at most kMaxConnections at once.
skein::Promise<void> accept_loop(tcp::acceptor& acceptor, skein::Semaphore& slots, Stats& stats) {
  const skein::Context server = *skein::Context::current();
  for (;;) {
    skein::Permit permit = co_await slots.async_permit();  // wait for a free slot first
    tcp::socket socket = co_await acceptor.async_accept(skein::use_promise);
    ++stats.accepted;
    // The connection's own context: cancelled by its deadline, or with the server.
    auto connection = server.child_with_timeout(kConnectionDeadline,
                                                std::make_exception_ptr(std::runtime_error("connection deadline")));
    connection.spawn(serve, std::move(socket), std::move(permit), std::ref(stats));
  }
}
// [/readme:server]

// A client is a plain task: each .get() blocks it until the operation has
// ended (the pool lends its thread to a spare one meanwhile).
std::string client(asio::io_context& io, tcp::endpoint server, int id, int messages) {
  tcp::socket socket(io);
  socket.async_connect(server, skein::use_promise).get();
  std::string echo;
  for (int i = 0; i < messages; ++i) {
    const std::string msg = "client " + std::to_string(id) + " says " + std::to_string(i);
    asio::async_write(socket, asio::buffer(msg), skein::use_promise).get();
    echo.assign(msg.size(), '\0');
    asio::async_read(socket, asio::buffer(echo), skein::use_promise).get();  // exactly msg.size() bytes
    if (echo != msg) throw std::runtime_error("bad echo: " + echo);
  }
  return echo;
}

// Reads until the server closes the connection; returns how it ended.
std::string until_closed(tcp::socket& socket) {
  char buf[64];
  try {
    for (;;) (void)socket.async_read_some(asio::buffer(buf), skein::use_promise).get();
  } catch (const std::system_error& e) {
    return e.code() == asio::error::eof ? "the server closed the connection" : e.what();
  }
}

std::string what(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

}  // namespace

int main() {
  // [readme:main]
  skein::IoService io;  // an io_context and its thread; declared first, destroyed last
  tcp::acceptor acceptor(io.context(), {asio::ip::address_v4::loopback(), 0});
  const tcp::endpoint at = acceptor.local_endpoint();  // 127.0.0.1, an ephemeral port

  skein::Context server;  // the server's root context: cancelling it shuts everything down
  skein::Semaphore slots(kMaxConnections);
  Stats stats;
  auto accepting = server.run(accept_loop, std::ref(acceptor), std::ref(slots), std::ref(stats));
  // [/readme:main]

  std::printf("[echo]\n");
  {
    std::vector<skein::Promise<std::string>> clients;
    for (int id = 0; id < 6; ++id) clients.push_back(skein::run(client, std::ref(io.context()), at, id, 3));
    for (std::size_t id = 0; id < clients.size(); ++id)
      std::printf("client %zu: 3 echoes, the last \"%s\"\n", id, clients[id].get().c_str());
  }

  std::printf("[deadline]\n");
  {
    // A client that connects and says nothing: its connection's deadline ends it.
    auto idle = skein::run([&io, at] {
      tcp::socket socket(io.context());
      socket.async_connect(at, skein::use_promise).get();
      return until_closed(socket);
    });
    std::printf("idle client: %s\n", idle.get().c_str());
  }

  std::printf("[shutdown]\n");
  {
    // A client in the middle of a conversation when the server shuts down.
    skein::Queue<int> talked(1);
    auto talking = skein::run([&io, at, &talked] {
      tcp::socket socket(io.context());
      socket.async_connect(at, skein::use_promise).get();
      std::string msg = "are you there?", echo(msg.size(), '\0');
      asio::async_write(socket, asio::buffer(msg), skein::use_promise).get();
      asio::async_read(socket, asio::buffer(echo), skein::use_promise).get();
      talked.put(1);
      return until_closed(socket);
    });
    talked.get();
    // [readme:shutdown]
    // Graceful shutdown: every wait under `server` — the accept, each
    // connection's read — ends with Cancelled carrying this cause.
    server.cancel(std::make_exception_ptr(std::runtime_error("server shutting down")));
    server.wait();  // every connection task has ended
    // [/readme:shutdown]
    std::printf("talking client: %s\n", talking.get().c_str());
    try {
      accepting.get();
    } catch (const skein::Cancelled& e) {
      std::printf("accept loop stopped (cause: %s)\n", what(e.cause()).c_str());
    }
  }

  std::printf("[totals]\n");
  std::printf("%d connections: %d closed by their client, %d past their deadline, %d ended by the shutdown\n",
              stats.accepted.load(), stats.closed_by_client.load(), stats.timed_out.load(), stats.shut_down.load());
  std::printf("at most %d at once: %s; %ld bytes echoed; %td slots free\n", kMaxConnections,
              stats.most.load() <= kMaxConnections ? "yes" : "NO", stats.bytes.load(), slots.available());
}
