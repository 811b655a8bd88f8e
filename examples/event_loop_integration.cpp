// Embedding skein's EventLoop where another loop is in charge — what users of
// libuv/asio-style loops expect:
//  1. a frame loop (a game, a GUI) that calls loop.poll() once per frame;
//  2. a poll(2) loop that sleeps on its own file descriptors and is woken
//     through an eventfd when skein has work for it (set_wakeup_hook);
//  3. skein's own run() woken from a file descriptor (a reader thread posts)
//     and from a condition (a watcher thread triggers a notifier).
// Each section prints a [heading]; the README shows them next to their output.
#include <skein/skein.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

using namespace std::chrono_literals;

int main() {
  std::printf("[a poll() per frame]\n");
  {
    // [readme:a poll() per frame]
    skein::EventLoop loop;
    const auto host_thread = std::this_thread::get_id();
    int answer = 0;
    bool done = false, on_host = false;
    // Pool work whose result comes back on the loop — here, inside a frame.
    auto job = skein::work(loop, [] {
      skein::sleep_for(20ms);
      return 42;
    });
    auto task = loop.spawn([&]() -> skein::Promise<void> {
      answer = co_await job;
      on_host = std::this_thread::get_id() == host_thread;
      done = true;
    });
    while (!done) {                      // the host's frame loop
      loop.poll();                       // run what skein has for this frame, never block
      std::this_thread::sleep_for(1ms);  // ... render, handle input ...
    }
    task.get();
    std::printf("answer %d arrived during a frame, on the host's thread: %s\n", answer, on_host ? "yes" : "no");
    // [/readme:a poll() per frame]
  }

  std::printf("[waking a poll(2) loop through an eventfd]\n");
  {
    // [readme:waking a poll(2) loop through an eventfd]
    skein::EventLoop loop;
    int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int pipe_fds[2];
    if (wake_fd < 0 || pipe(pipe_fds) != 0) return 1;
    // Work for `loop` (a post, a notifier, a resumed coroutine) writes to the
    // eventfd, at most once per poll(): the host sleeps in poll(2) until then.
    loop.set_wakeup_hook([wake_fd] {
      std::uint64_t one = 1;
      (void)!write(wake_fd, &one, sizeof one);
    });
    int callbacks = 0;
    std::string input;
    std::thread producer([&] {
      for (int i = 0; i < 3; ++i) loop.post([&] { ++callbacks; });  // skein work
      (void)!write(pipe_fds[1], "hello", 5);                        // the host's own input
    });
    while (callbacks < 3 || input.size() < 5) {
      pollfd fds[2] = {{wake_fd, POLLIN, 0}, {pipe_fds[0], POLLIN, 0}};
      ::poll(fds, 2, -1);  // the host loop sleeps here, on its own terms
      if (fds[0].revents & POLLIN) {
        std::uint64_t n;
        (void)!read(wake_fd, &n, sizeof n);
        loop.poll();  // runs the callbacks, on this thread
      }
      if (fds[1].revents & POLLIN) {
        char buf[16];
        auto got = read(pipe_fds[0], buf, sizeof buf);
        if (got > 0) input.append(buf, static_cast<std::size_t>(got));
      }
    }
    producer.join();
    std::printf("skein callbacks run by the host loop: %d; read from the pipe: %s\n", callbacks, input.c_str());
    close(wake_fd);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    // [/readme:waking a poll(2) loop through an eventfd]
  }

  std::printf("[waking run() from a file descriptor or a condition]\n");
  {
    // [readme:waking run() from a file descriptor or a condition]
    skein::EventLoop loop;
    int fds[2];
    if (pipe(fds) != 0) return 1;
    std::mutex mu;
    std::condition_variable cv;
    bool ready = false;
    // A watcher thread waits for a condition, then triggers a notifier; an
    // open notifier keeps run() going until it fires.
    auto notifier = loop.make_notifier([] { std::printf("the condition became true\n"); });
    std::thread watcher([&, notifier] {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return ready; });
      notifier.trigger();
    });
    // A reader thread blocks on the descriptor and posts what it reads.
    std::thread reader([&loop, &mu, &cv, &ready, fd = fds[0]] {
      char buf[64];
      auto n = read(fd, buf, sizeof buf);
      std::string got(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
      loop.post([&mu, &cv, &ready, got] {
        std::printf("read on the loop's thread: %s\n", got.c_str());
        std::lock_guard lk(mu);
        ready = true;
        cv.notify_one();
      });
    });
    (void)!write(fds[1], "data from the fd", 16);  // somebody writes to the descriptor
    loop.run();                                    // returns once the notifier fired and nothing is left
    reader.join();
    watcher.join();
    close(fds[0]);
    close(fds[1]);
    // [/readme:waking run() from a file descriptor or a condition]
  }
  return 0;
}
