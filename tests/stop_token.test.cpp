// skein's own stop_token, stop_source and stop_callback
// (detail::stop_impl): what skein::stop_token is where the standard library
// has no <stop_token> (libc++ 16). Tested on every standard library, against
// the standard's semantics.
#include "support/common.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

using namespace test;
namespace own = skein::detail::stop_impl;

TEST_CASE("own stop_token: a default token and a source without state can never stop") {
  own::stop_token t;
  CHECK_FALSE(t.stop_possible());
  CHECK_FALSE(t.stop_requested());
  own::stop_source none(own::nostopstate);
  CHECK_FALSE(none.stop_possible());
  CHECK_FALSE(none.request_stop());
  CHECK_FALSE(none.get_token().stop_possible());
  CHECK(none.get_token() == t);
}

TEST_CASE("own stop_token: request_stop is seen by every token, once") {
  own::stop_source src;
  own::stop_token a = src.get_token();
  own::stop_token b = a;
  CHECK(a == b);
  CHECK(a.stop_possible());
  CHECK_FALSE(a.stop_requested());
  CHECK(src.request_stop());
  CHECK_FALSE(src.request_stop());
  CHECK(a.stop_requested());
  CHECK(b.stop_requested());
  CHECK(src.stop_requested());
  own::stop_source copy = src;
  CHECK(copy == src);
  CHECK(copy.stop_requested());
}

TEST_CASE("own stop_token: a token outlives its sources; stop is no longer possible unless requested") {
  own::stop_token t;
  own::stop_token stopped;
  {
    own::stop_source s1;
    own::stop_source s2 = s1;
    t = s1.get_token();
    own::stop_source s3;
    stopped = s3.get_token();
    s3.request_stop();
    CHECK(t.stop_possible());
  }
  CHECK_FALSE(t.stop_possible());
  CHECK_FALSE(t.stop_requested());
  CHECK(stopped.stop_possible());
  CHECK(stopped.stop_requested());
  own::stop_token moved = std::move(t);
  CHECK_FALSE(moved.stop_possible());
}

TEST_CASE("own stop_callback: runs on request, once; a deregistered one never runs") {
  own::stop_source src;
  int ran = 0, never = 0;
  own::stop_callback cb(src.get_token(), [&] { ++ran; });  // deduction guide
  {
    own::stop_callback gone(src.get_token(), [&] { ++never; });
  }
  CHECK(ran == 0);
  src.request_stop();
  src.request_stop();
  CHECK(ran == 1);
  CHECK(never == 0);
}

TEST_CASE("own stop_callback: constructed after the request it runs at once, in its constructor") {
  own::stop_source src;
  src.request_stop();
  std::thread::id where;
  own::stop_callback cb(src.get_token(), [&] { where = std::this_thread::get_id(); });
  CHECK(where == std::this_thread::get_id());
}

TEST_CASE("own stop_callback: on a token that cannot stop, it never runs") {
  int ran = 0;
  own::stop_callback cb(own::stop_token{}, [&] { ++ran; });
  CHECK(ran == 0);
}

TEST_CASE(
    "own stop_callback: several run, on the requesting thread; one may destroy itself or another's registration") {
  own::stop_source src;
  std::vector<std::thread::id> where;
  int late = 0;
  auto self = std::make_unique<std::unique_ptr<own::stop_callback<std::function<void()>>>>();
  own::stop_callback a(src.get_token(), [&] { where.push_back(std::this_thread::get_id()); });
  *self = std::make_unique<own::stop_callback<std::function<void()>>>(src.get_token(), [&] {
    where.push_back(std::this_thread::get_id());
    self->reset();  // destroys the running callback on its own thread: no wait
  });
  own::stop_callback b(src.get_token(), [&] {
    where.push_back(std::this_thread::get_id());
    // A callback registered from a callback, after the request: runs at once.
    own::stop_callback inner(src.get_token(), [&] { ++late; });
  });
  std::thread::id stopper;
  bool requested = false;
  std::thread t([&] {
    stopper = std::this_thread::get_id();
    requested = src.request_stop();
  });
  t.join();
  CHECK(requested);
  REQUIRE(where.size() == 3);
  for (auto id : where) CHECK(id == stopper);
  CHECK(late == 1);
  CHECK(*self == nullptr);
}

TEST_CASE("own stop_callback: its destructor waits for it while it runs on another thread") {
  own::stop_source src;
  std::atomic<bool> started{false}, finished{false};
  auto cb = std::make_unique<own::stop_callback<std::function<void()>>>(src.get_token(), [&] {
    started = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finished = true;
  });
  std::thread t([&] { src.request_stop(); });
  while (!started) std::this_thread::yield();
  cb.reset();
  CHECK(finished);
  t.join();
}

TEST_CASE("own stop_callback: registrations racing with request_stop each run exactly once or never") {
  Watchdog wd(std::chrono::seconds(120), "own stop_token race");
  const int rounds = scaled(2000);
  for (int r = 0; r < rounds; ++r) {
    own::stop_source src;
    std::atomic<int> ran{0};
    std::atomic<int> kept{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 2; ++i) {
      ts.emplace_back([&, i] {
        own::stop_callback keep(src.get_token(), [&] { ++ran; });
        {
          own::stop_callback drop(src.get_token(), [&] { ++ran; });
        }
        if (i == 0) src.request_stop();
        ++kept;
        while (kept.load() < 2) std::this_thread::yield();  // `keep` alive until both are registered
      });
    }
    for (auto& t : ts) t.join();
    // Both `keep`s ran (registered before the request, or at once after it);
    // each `drop` ran at most once.
    CHECK(ran.load() >= 2);
    CHECK(ran.load() <= 4);
  }
}
