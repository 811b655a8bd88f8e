// Deadlines saturate: a duration too long to add to now() means "never" (no
// overflow, never "already expired"); a zero or negative one means "now".
// Every timed wait of the API is checked with the largest durations.
#include "support/common.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <string>

using namespace test;
using skein::Promise;
using skein::detail::Clock;
using skein::detail::deadline_after;
using skein::detail::kNever;

TEST_CASE("deadline_after saturates at 'never' and clamps the past to 'now'") {
  const auto now = Clock::now();
  CHECK(deadline_after(std::chrono::nanoseconds::max(), now) == kNever);
  CHECK(deadline_after(std::chrono::hours::max(), now) == kNever);
  CHECK(deadline_after(std::chrono::duration<std::int64_t, std::ratio<86400 * 365>>::max(), now) == kNever);
  CHECK(deadline_after(std::chrono::duration<double>(1e300), now) == kNever);
  CHECK(deadline_after(std::chrono::duration<double>(std::numeric_limits<double>::infinity()), now) == kNever);
  CHECK(deadline_after(std::chrono::seconds(std::numeric_limits<std::int32_t>::max()), now) ==
        now + std::chrono::seconds(std::numeric_limits<std::int32_t>::max()));  // 68 years: representable
  CHECK(deadline_after(std::chrono::nanoseconds::zero(), now) == now);
  CHECK(deadline_after(std::chrono::seconds(-5), now) == now);
  CHECK(deadline_after(std::chrono::nanoseconds::min(), now) == now);
  CHECK(deadline_after(std::chrono::hours::min(), now) == now);
  CHECK(deadline_after(std::chrono::duration<double>(std::nan("")), now) == now);
  CHECK(deadline_after(std::chrono::duration<double>(-1e300), now) == now);
  // Rounded up to the clock's tick, as before.
  CHECK(deadline_after(std::chrono::duration<double, std::milli>(1.5), now) == now + std::chrono::microseconds(1500));
  CHECK(deadline_after(std::chrono::duration<std::int64_t, std::pico>(1500), now) == now + std::chrono::nanoseconds(2));
  CHECK(deadline_after(std::chrono::milliseconds(250), now) == now + std::chrono::milliseconds(250));
  // Close to the end of time.
  CHECK(deadline_after(std::chrono::nanoseconds(1), kNever - std::chrono::nanoseconds(1)) == kNever);
  CHECK(deadline_after(std::chrono::nanoseconds(1), kNever) == kNever);
}

TEST_CASE("contexts with huge timeouts never time out; zero and negative ones at once") {
  auto never = skein::Context::with_timeout(std::chrono::nanoseconds::max());
  CHECK(never.deadline() == kNever);
  auto never2 = never.child_with_timeout(std::chrono::hours::max());
  CHECK(never2.deadline() == kNever);
  auto now = skein::Context::with_timeout(std::chrono::seconds(-1));
  CHECK(eventually([&] { return now.cancelled(); }));
  CHECK(now.timed_out());
  CHECK(now.deadline() <= Clock::now());
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(never.cancelled());
  CHECK_FALSE(never2.cancelled());
}

namespace {

/// `wait` must block until its context is cancelled (Cancelled), not return
/// at once as an overflowed deadline made it.
template <class F>
void blocks_until_cancelled(const char* what, F wait) {
  INFO(std::string(what));
  Watchdog wd(30s, what);
  skein::Context ctx;
  auto p = ctx.run(wait);
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(p.ready());
  ctx.cancel();
  CHECK_THROWS_AS(p.get(), skein::Cancelled);
}

}  // namespace

TEST_CASE("every timed wait with the largest durations blocks until cancelled") {
  constexpr auto ns = std::chrono::nanoseconds::max();
  constexpr auto h = std::chrono::hours::max();
  const std::chrono::duration<double> huge(1e300);
  blocks_until_cancelled("sleep_for(ns::max)", [&] { skein::sleep_for(ns); });
  blocks_until_cancelled("sleep_for(hours::max)", [&] { skein::sleep_for(h); });
  blocks_until_cancelled("sleep_for(1e300 s)", [&] { skein::sleep_for(huge); });
  blocks_until_cancelled("sleep_until(time_point::max)", [&] { skein::sleep_until(kNever); });
  blocks_until_cancelled("async_sleep(ns::max)", [&]() -> Promise<void> { co_await skein::async_sleep(ns); });
  blocks_until_cancelled("async_sleep(hours::max)", [&]() -> Promise<void> { co_await skein::async_sleep(h); });
  blocks_until_cancelled("async_sleep_until(max)",
                         [&]() -> Promise<void> { co_await skein::async_sleep_until(kNever); });

  skein::Queue<int> q(1);
  blocks_until_cancelled("Queue::get_for", [&] { (void)q.get_for(ns); });
  q.put(1);
  blocks_until_cancelled("Queue::put_for", [&] { (void)q.put_for(2, h); });
  skein::Mutex m;
  m.lock();
  blocks_until_cancelled("Mutex::try_lock_for", [&] { (void)m.try_lock_for(ns); });
  m.unlock();
  skein::RWLock l;
  l.lock();
  blocks_until_cancelled("RWLock::try_lock_for", [&] { (void)l.try_lock_for(h); });
  blocks_until_cancelled("RWLock::try_lock_shared_for", [&] { (void)l.try_lock_shared_for(huge); });
  l.unlock();
  skein::Semaphore s(0);
  blocks_until_cancelled("Semaphore::try_acquire_for", [&] { (void)s.try_acquire_for(ns); });
  skein::WaitGroup wg;
  wg.add(1);
  blocks_until_cancelled("WaitGroup::wait_for", [&] { (void)wg.wait_for(h); });
  wg.done();
  skein::Resolver<int> r;
  auto pending = r.promise();
  blocks_until_cancelled("Promise::wait_for", [&] { (void)pending.wait_for(ns); });
  skein::Context other;
  Event release;
  auto busy = other.run([&] { release.wait(); });
  blocks_until_cancelled("Context::wait_for", [&] { (void)other.wait_for(h); });
  release.set();
  busy.get();
}

TEST_CASE("zero and negative durations do not wait: the try forms fail at once") {
  skein::Queue<int> q(1);
  CHECK_FALSE(q.get_for(std::chrono::seconds(-1)).has_value());
  CHECK_FALSE(q.get_for(std::chrono::nanoseconds::min()).has_value());
  skein::Semaphore s(0);
  CHECK_FALSE(s.try_acquire_for(std::chrono::hours::min()));
  skein::Mutex m;
  m.lock();
  CHECK_FALSE(m.try_lock_for(std::chrono::duration<double>(-1e300)));
  m.unlock();
  skein::sleep_for(std::chrono::nanoseconds::min());  // returns at once
  skein::run([]() -> Promise<void> { co_await skein::async_sleep(std::chrono::hours::min()); }).get();
}
