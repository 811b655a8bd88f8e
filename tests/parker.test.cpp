// detail::Parker: the futex word with its sleeping flag. A lost wake-up shows
// as a hang, which the watchdog turns into a failure.
#include "support/common.hpp"

using namespace test;
using skein::detail::Parker;

TEST_CASE("Parker: notify before, during and after the waiter sleeps; none is lost") {
  Watchdog wd(std::chrono::seconds(120), "parker ping-pong");
  const int rounds = scaled(20000);
  std::vector<Parker> a(static_cast<std::size_t>(rounds)), b(static_cast<std::size_t>(rounds));
  std::thread other([&] {
    for (int i = 0; i < rounds; ++i) {
      auto& p = a[static_cast<std::size_t>(i)];
      // Alternate spinning and sleeping so that notifications land in both.
      if (i % 2 == 0 && p.spin_while(Parker::kWaiting, 64) == Parker::kNotified) {
      } else {
        while (p.wait_while(Parker::kWaiting) != Parker::kNotified) {
        }
      }
      b[static_cast<std::size_t>(i)].notify();
    }
  });
  for (int i = 0; i < rounds; ++i) {
    a[static_cast<std::size_t>(i)].notify();
    auto& p = b[static_cast<std::size_t>(i)];
    while (p.wait_while(Parker::kWaiting) != Parker::kNotified) {
    }
  }
  other.join();
  CHECK(a.back().state() == Parker::kNotified);
}

TEST_CASE("Parker: interrupt wakes a sleeper; a later notify still arrives") {
  Watchdog wd(std::chrono::seconds(60), "parker interrupt");
  for (int i = 0; i < scaled(200); ++i) {
    Parker p;
    std::atomic<std::uint32_t> seen{99};
    std::thread t([&] { seen = p.wait_while(Parker::kWaiting); });
    if (i % 2) std::this_thread::sleep_for(std::chrono::microseconds(200));  // let it reach the futex
    CHECK(p.interrupt());
    t.join();
    CHECK(seen.load() == Parker::kInterrupted);
    CHECK_FALSE(p.interrupt());  // only from waiting
    std::thread u([&] { seen = p.wait_while(Parker::kInterrupted); });
    if (i % 2) std::this_thread::sleep_for(std::chrono::microseconds(200));
    p.notify();
    u.join();
    CHECK(seen.load() == Parker::kNotified);
  }
}

TEST_CASE("Parker: a deadline passes; the state is unchanged and a late notify is kept") {
  Parker p;
  auto deadline = skein::detail::Clock::now() + std::chrono::milliseconds(5);
  CHECK(p.wait_while(Parker::kWaiting, &deadline) == Parker::kWaiting);
  p.notify();
  CHECK(p.state() == Parker::kNotified);
  CHECK(p.wait_while(Parker::kWaiting) == Parker::kNotified);
}
