// The chat server of Go's tutorials (The Go Programming Language, 8.10) on
// <skein/asio.hpp>: each connection has a channel of its own
// (skein::Queue<std::string>) for the lines to send it; a broadcaster task
// selects over the entering, leaving and messages channels and fans every
// message out to each client's channel; a writer task per connection drains
// that channel into the socket. The clients join one after another, say their
// lines together, and leave one after another; each then prints what it
// received (the chat lines grouped by sender: their interleaving varies from
// run to run, each sender's order does not), so ctest can check the output.
// Built when Asio is found (standalone Asio, libasio-dev).
#include <skein/asio.hpp>  // not in <skein/skein.hpp>: it needs Asio
#include <skein/skein.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <system_error>
#include <vector>

using asio::ip::tcp;

namespace {

// --- the server ---------------------------------------------------------------

struct Client {
  std::string name;
  skein::Queue<std::string>* channel;  // the lines to send this client
};

struct Hub {
  skein::Queue<Client> entering{skein::unbuffered};
  skein::Queue<Client> leaving{skein::unbuffered};
  skein::Queue<std::string> messages{skein::unbuffered};
};

// Reads one line (without its '\n') from `socket`; `pending` keeps what was
// read past it. Throws std::system_error (asio::error::eof) at the end.
skein::Promise<std::string> read_line(tcp::socket& socket, std::string& pending) {
  std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(pending), '\n', skein::use_promise);
  std::string line = pending.substr(0, n - 1);
  pending.erase(0, n);
  co_return line;
}

using Clients = std::map<std::string, skein::Queue<std::string>*>;  // name -> channel

skein::Promise<void> broadcast(Clients& clients, std::string line) {
  for (auto& client : clients) co_await client.second->async_put(line);
}

std::string welcome(const std::string& name, const Clients& clients) {
  std::string here;
  for (auto& client : clients) here += (here.empty() ? "" : ", ") + client.first;
  return "welcome " + name + " (" + here + " here)";
}

// Go's broadcaster: the only task that knows the clients.
skein::Promise<void> broadcaster(Hub& hub) {
  Clients clients;
  for (;;) {
    auto r = co_await skein::async_select(skein::case_get(hub.messages), skein::case_get(hub.entering),
                                          skein::case_get(hub.leaving));
    if (r.index() == 0) {  // a message: to every client
      co_await broadcast(clients, std::move(*r.get<0>()));
    } else if (r.index() == 1) {  // a client entering
      const Client& c = *r.get<1>();
      co_await broadcast(clients, c.name + " has arrived");
      clients[c.name] = c.channel;
      co_await c.channel->async_put(welcome(c.name, clients));
    } else {  // a client leaving
      const Client& c = *r.get<2>();
      clients.erase(c.name);
      c.channel->close();  // its writer sends what is queued, then ends
      co_await broadcast(clients, c.name + " has left");
    }
  }
}

// Go's clientWriter: drains the client's channel into the socket.
skein::Promise<void> writer(tcp::socket& socket, skein::Queue<std::string>& channel) {
  for (;;) {
    std::optional<std::string> line = co_await channel.async_get();
    if (!line) break;  // closed: the client has left
    *line += '\n';
    co_await asio::async_write(socket, asio::buffer(*line), skein::use_promise);
  }
}

// Go's handleConn: the first line is the client's name, every other line a message.
skein::Promise<void> handle(tcp::socket socket, Hub& hub) {
  skein::Queue<std::string> channel(16);
  std::string pending;
  std::string who = co_await read_line(socket, pending);
  auto writing = skein::run(writer, std::ref(socket), std::ref(channel));  // a task of its own
  const Client me{who, &channel};  // (g++ 12 miscompiles a braced temporary in a co_await: name it)
  co_await hub.entering.async_put(me);
  try {
    for (;;) {
      std::string line = co_await read_line(socket, pending);
      co_await hub.messages.async_put(who + ": " + line);
    }
  } catch (const std::system_error&) {  // asio::error::eof: the client has left
  }
  co_await hub.leaving.async_put(me);
  co_await writing;  // the broadcaster closed `channel`: the writer is done with it and the socket
  socket.shutdown(tcp::socket::shutdown_send);
}

skein::Promise<void> accept_loop(tcp::acceptor& acceptor, Hub& hub) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(skein::use_promise);
    skein::spawn(handle, std::move(socket), std::ref(hub));
  }
}

// --- the clients --------------------------------------------------------------

struct Turns {
  skein::Queue<std::string> joined{3};  // a client's name, once it was welcomed
  skein::Resolver<void> all_joined;     // everybody may speak
  skein::WaitGroup heard;               // a client heard every line said
};

// A client: joins, says its lines, waits until it heard everyone's, leaves
// when `leave` is settled, and returns every line it received.
skein::Promise<std::vector<std::string>> chat_client(asio::io_context& io, tcp::endpoint at, std::string name,
                                                     std::vector<std::string> says, int lines_said, Turns& turns,
                                                     skein::Promise<void> leave) {
  tcp::socket socket(io);
  co_await socket.async_connect(at, skein::use_promise);
  std::string hello = name + "\n";
  co_await asio::async_write(socket, asio::buffer(hello), skein::use_promise);
  std::string pending;
  std::vector<std::string> received;
  received.push_back(co_await read_line(socket, pending));  // "welcome <name> (... here)"
  co_await turns.joined.async_put(name);

  co_await turns.all_joined.promise();
  for (auto& s : says) {
    std::string line = s + "\n";
    co_await asio::async_write(socket, asio::buffer(line), skein::use_promise);
  }
  for (int said = 0; said < lines_said;) {
    received.push_back(co_await read_line(socket, pending));
    if (received.back().find(": ") != std::string::npos) ++said;
  }
  turns.heard.done();

  co_await leave;
  socket.shutdown(tcp::socket::shutdown_send);  // the server sees the end of our input
  try {
    for (;;) received.push_back(co_await read_line(socket, pending));
  } catch (const std::system_error&) {  // asio::error::eof: the server let us go
  }
  co_return received;
}

}  // namespace

int main() {
  skein::IoService io;
  tcp::acceptor acceptor(io.context(), {asio::ip::address_v4::loopback(), 0});
  skein::Context server;
  Hub hub;
  auto accepting = server.run(accept_loop, std::ref(acceptor), std::ref(hub));
  auto broadcasting = server.run(broadcaster, std::ref(hub));

  const std::vector<std::string> names{"alice", "bob", "carol"};
  const std::map<std::string, std::vector<std::string>> says{{"alice", {"hi all", "anyone up for lunch?"}},
                                                             {"bob", {"hello", "yes, at noon"}},
                                                             {"carol", {"hey", "count me in"}}};
  Turns turns;
  turns.heard.add(3);
  std::vector<skein::Resolver<void>> leave(names.size());
  std::vector<skein::Promise<std::vector<std::string>>> clients;
  for (std::size_t i = 0; i < names.size(); ++i) {  // one after another
    clients.push_back(skein::run(chat_client, std::ref(io.context()), acceptor.local_endpoint(), names[i],
                                 says.at(names[i]), 6, std::ref(turns), leave[i].promise()));
    turns.joined.get();
  }
  turns.all_joined.resolve();
  turns.heard.wait();
  for (std::size_t i = 0; i < names.size(); ++i) {  // one after another
    leave[i].resolve();
    clients[i].wait();
  }

  for (std::size_t i = 0; i < names.size(); ++i) {
    std::vector<std::string> lines = clients[i].get();
    // The chat lines in the order each sender said them (senders in name order).
    auto sender = [](const std::string& l) { return l.substr(0, l.find(": ")); };
    auto said = [](const std::string& l) { return l.find(": ") != std::string::npos; };
    auto first = std::find_if(lines.begin(), lines.end(), said);
    auto last = std::find_if_not(first, lines.end(), said);
    std::map<std::string, std::vector<std::string>> by_sender;
    for (auto it = first; it != last; ++it) by_sender[sender(*it)].push_back(std::move(*it));
    for (auto& entry : by_sender)
      for (auto& l : entry.second) *first++ = std::move(l);
    std::printf("[%s]\n", names[i].c_str());
    for (auto& l : lines) std::printf("%s\n", l.c_str());
  }

  server.cancel();
  server.wait();
}
