// A blocked waiter whose task is cancelled before the release: on one thread,
// `ctx.cancel(); release();`. The blocking form must withdraw at once, as the
// coroutine form does, so the wait throws Cancelled and the release keeps its
// permit, item or lock for someone else — for every primitive. (Before the
// fix the blocking form took it in every run.)
#include "support/common.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <string>

using namespace test;
using skein::Promise;

namespace {

/// Runs `wait` as a task of a fresh context, lets it block, then on this
/// thread cancels the context and calls `release`. The wait must throw
/// Cancelled; `check` then says whether the released thing is still there.
void cancel_then_release(const char* what, const std::function<void()>& wait, const std::function<void()>& release,
                         const std::function<bool()>& check, int rounds = 20) {
  INFO(std::string(what));
  Watchdog wd(60s, what);
  for (int i = 0; i < rounds; ++i) {
    skein::Context ctx;
    Event started;
    std::atomic<long> tid{0};
    auto p = ctx.run([&] {
      tid = this_thread_tid();
      started.set();
      wait();
    });
    started.wait();
    // Only once the wait is registered: before it, a release that comes
    // first is simply taken by the fast path (no wait, nothing to cancel).
    if (!blocked_in_kernel(tid.load())) {
      MESSAGE("round " << i << ": the waiter was not seen asleep; the round proves nothing");
      ctx.cancel();
      release();
      (void)p.wait_for(10s);
      (void)check();
      continue;
    }
    ctx.cancel();
    release();
    CHECK_THROWS_AS(p.get(), skein::Cancelled);
    CHECK_MESSAGE(check(), "round " << i << ": the release went to the cancelled waiter");
  }
}

}  // namespace

TEST_CASE("cancel, then release: a blocked Semaphore::acquire gives up and the permit stays") {
  skein::Semaphore s(1);
  s.acquire();
  cancel_then_release(
      "acquire", [&] { s.acquire(); }, [&] { s.release(); },
      [&] {
        bool ok = s.available() == 1;
        if (ok) s.acquire();  // else the waiter holds it: that hold is ours now
        return ok;
      });
  cancel_then_release(
      "try_acquire_for", [&] { (void)s.try_acquire_for(60s); }, [&] { s.release(); },
      [&] {
        bool ok = s.available() == 1;
        if (ok) s.acquire();  // else the waiter holds it: that hold is ours now
        return ok;
      });
  s.release();
  CHECK(s.available() == 1);
}

TEST_CASE("cancel, then release: a blocked Mutex::lock gives up and the mutex stays free") {
  skein::Mutex m;
  m.lock();
  // Free: the cancelled waiter does not hold it. (Else the waiter's hold is ours now.)
  auto check = [&] { return m.try_lock(); };
  cancel_then_release(
      "lock", [&] { m.lock(); }, [&] { m.unlock(); }, check);
  cancel_then_release(
      "try_lock_for", [&] { (void)m.try_lock_for(60s); }, [&] { m.unlock(); }, check);
  m.unlock();
}

TEST_CASE("cancel, then release: blocked RWLock waiters give up and take nothing") {
  skein::RWLock l;
  l.lock();
  // A reader queued behind the writer; the writer's unlock must not admit it.
  cancel_then_release(
      "lock_shared", [&] { l.lock_shared(); }, [&] { l.unlock(); },
      [&] {
        bool ok = l.try_lock();  // no reader holds it
        if (!ok) {
          l.unlock_shared();
          l.lock();
        }
        return ok;
      });
  l.unlock();
  l.lock_shared();
  // A writer queued behind a reader; the reader's unlock must not admit it.
  cancel_then_release(
      "lock", [&] { l.lock(); }, [&] { l.unlock_shared(); },
      [&] {
        bool ok = l.try_lock_shared();  // no writer holds it
        if (!ok) {
          l.unlock();
          l.lock_shared();
        }
        return ok;
      });
  l.unlock_shared();
  CHECK(l.try_lock());
  l.unlock();
}

TEST_CASE("cancel, then release: a blocked Queue::get gives up and the item stays queued") {
  skein::Queue<int> q(1);
  int next = 0, expect = 0;
  auto check = [&] {
    auto v = q.try_get();
    return v && *v == expect;
  };
  cancel_then_release(
      "get", [&] { (void)q.get(); }, [&] { q.put(expect = ++next); }, check);
  cancel_then_release(
      "get_for", [&] { (void)q.get_for(60s); }, [&] { q.put(expect = ++next); }, check);
}

TEST_CASE("cancel, then release: a blocked Queue::put gives up and its item never lands") {
  skein::Queue<int> q(1);
  q.put(1);
  auto release = [&] { CHECK(q.get() == 1); };  // makes room: the cancelled put must not take it
  auto check = [&] {
    bool ok = q.size() == 0;
    if (!ok) (void)q.try_get();
    q.put(1);
    return ok;
  };
  cancel_then_release(
      "put", [&] { q.put(99); }, release, check);
  cancel_then_release(
      "put_for", [&] { (void)q.put_for(99, 60s); }, release, check);
}

TEST_CASE("cancel, then release: a blocked WaitGroup::wait and Promise::get throw Cancelled") {
  skein::WaitGroup wg;
  wg.add(1);
  cancel_then_release(
      "WaitGroup::wait", [&] { wg.wait(); }, [&] { wg.done(); },
      [&] {
        wg.add(1);
        return true;
      });
  wg.done();
  std::unique_ptr<skein::Resolver<int>> r;
  Promise<int> p;
  auto fresh = [&] {
    r = std::make_unique<skein::Resolver<int>>();
    p = r->promise();
  };
  fresh();
  cancel_then_release(
      "Promise::get", [&] { (void)p.get(); }, [&] { r->resolve(7); },
      [&] {
        bool ok = p.ready() && p.get() == 7;
        fresh();
        return ok;
      });
}
