// Allocation-failure tests (the reliability harness, part 5).
//
// Tasks and waits run under an allocator that fails the N-th allocation, for
// N = 1, 2, 3, ... until a run completes without reaching the failure. Every
// run must either complete or hand std::bad_alloc to its caller — directly,
// or through the documented error path (a Promise that fails with it,
// Pool::wait, the unhandled-error handler for a task nobody observes) — and
// leave every primitive consistent: no item lost or duplicated, exact counts,
// locks free, no hang (a watchdog aborts a run that does not finish), no leak
// (run this executable under ASan/LSan; one regression also counts blocks).
//
// Two injection modes:
//   this_thread  counts only the allocations of the thread that armed it
//                (the caller under test, or a pool worker arming itself
//                inside a task);
//   any_thread   counts the allocations of every thread (pool workers, the
//                loop's thread, the timer thread).
// Allocations of exception objects do not go through operator new (the C++
// runtime mallocs them), so throwing is never an injection point.
//
// This executable replaces the global operator new/delete (every overload),
// which is why it is not part of skein_tests. The figures (injection points
// explored per scenario) are printed at the end.

#define DOCTEST_CONFIG_IMPLEMENT
#include "support/common.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#if defined(_WIN32)
#include <malloc.h>  // _aligned_malloc
#endif
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

// --- the failing allocator ----------------------------------------------------

namespace fi {

std::atomic<long> g_generation{1};  // a new run disarms every thread armed before it
std::atomic<long> g_fail_at{0};     // any_thread mode: the failing ordinal, 0 = off
std::atomic<long> g_count{0};
std::atomic<bool> g_hit{false};
std::atomic<long> g_live{0};  // blocks allocated and not freed

struct ThreadArm {
  long fail_at = 0;  // this_thread mode: the failing ordinal, 0 = off
  long count = 0;
  long generation = 0;
  int suppress = 0;  // > 0: the harness's own allocations, never failed or counted
};
thread_local ThreadArm t_arm;

inline bool should_fail() noexcept {
  ThreadArm& a = t_arm;
  if (a.suppress) return false;
  if (a.fail_at) {
    if (a.generation == g_generation.load(std::memory_order_relaxed)) {
      if (++a.count != a.fail_at) return false;
      a.fail_at = 0;  // once per arming
      g_hit.store(true);
      return true;
    }
    a.fail_at = 0;  // armed for an earlier run that never reached it
  }
  const long at = g_fail_at.load(std::memory_order_relaxed);
  if (at == 0 || g_count.fetch_add(1, std::memory_order_relaxed) + 1 != at) return false;
  g_hit.store(true);
  return true;
}

void* allocate(std::size_t n, std::size_t align, bool nothrow) {
  if (should_fail()) {
    if (nothrow) return nullptr;
    throw std::bad_alloc();
  }
  void* p;
#if defined(_WIN32)
  // No aligned_alloc there; _aligned_malloc's blocks need _aligned_free, so
  // every block is made by it (release() cannot tell them apart).
  p = _aligned_malloc(n ? n : 1, align > __STDCPP_DEFAULT_NEW_ALIGNMENT__ ? align : __STDCPP_DEFAULT_NEW_ALIGNMENT__);
#else
  if (align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
    p = std::malloc(n ? n : 1);
  } else {
    p = std::aligned_alloc(align, n ? (n + align - 1) / align * align : align);
  }
#endif
  if (!p) {
    if (nothrow) return nullptr;
    throw std::bad_alloc();
  }
  g_live.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void release(void* p) noexcept {
  if (!p) return;
  g_live.fetch_sub(1, std::memory_order_relaxed);
#if defined(_WIN32)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

/// Starts a run: clears the hit flag and forgets every earlier arming.
void new_run() noexcept {
  g_fail_at.store(0);
  g_generation.fetch_add(1);
  g_hit.store(false);
}
void arm_this_thread(long n) noexcept {
  t_arm.generation = g_generation.load();
  t_arm.count = 0;
  t_arm.fail_at = n;
}
void disarm_this_thread() noexcept { t_arm.fail_at = 0; }
void arm_any_thread(long n) noexcept {
  g_count.store(0);
  g_fail_at.store(n);
}
void disarm_any_thread() noexcept { g_fail_at.store(0); }
bool hit() noexcept { return g_hit.load(); }
long live_blocks() noexcept { return g_live.load(); }

/// The harness's own bookkeeping inside an armed window.
struct Suppress {
  Suppress() noexcept { ++t_arm.suppress; }
  ~Suppress() { --t_arm.suppress; }
  Suppress(const Suppress&) = delete;
  Suppress& operator=(const Suppress&) = delete;
};

}  // namespace fi

#if defined(ALLOC_FAILURE_WRAP) && ALLOC_FAILURE_WRAP
// clang's static TSan runtime defines operator new/delete itself (strong
// symbols), so they cannot be replaced there: the build wraps them instead
// (ld --wrap, see CMakeLists.txt). Calls made from inside libstdc++.so's own
// code are then not seen; every header-instantiated allocation is.
extern "C" {
void* __wrap__Znwm(std::size_t n) { return fi::allocate(n, 0, false); }
void* __wrap__Znam(std::size_t n) { return fi::allocate(n, 0, false); }
void* __wrap__ZnwmRKSt9nothrow_t(std::size_t n, const std::nothrow_t&) noexcept { return fi::allocate(n, 0, true); }
void* __wrap__ZnamRKSt9nothrow_t(std::size_t n, const std::nothrow_t&) noexcept { return fi::allocate(n, 0, true); }
void* __wrap__ZnwmSt11align_val_t(std::size_t n, std::align_val_t a) {
  return fi::allocate(n, static_cast<std::size_t>(a), false);
}
void* __wrap__ZnamSt11align_val_t(std::size_t n, std::align_val_t a) {
  return fi::allocate(n, static_cast<std::size_t>(a), false);
}
void* __wrap__ZnwmSt11align_val_tRKSt9nothrow_t(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return fi::allocate(n, static_cast<std::size_t>(a), true);
}
void* __wrap__ZnamSt11align_val_tRKSt9nothrow_t(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return fi::allocate(n, static_cast<std::size_t>(a), true);
}
void __wrap__ZdlPv(void* p) noexcept { fi::release(p); }
void __wrap__ZdaPv(void* p) noexcept { fi::release(p); }
void __wrap__ZdlPvm(void* p, std::size_t) noexcept { fi::release(p); }
void __wrap__ZdaPvm(void* p, std::size_t) noexcept { fi::release(p); }
void __wrap__ZdlPvSt11align_val_t(void* p, std::align_val_t) noexcept { fi::release(p); }
void __wrap__ZdaPvSt11align_val_t(void* p, std::align_val_t) noexcept { fi::release(p); }
void __wrap__ZdlPvmSt11align_val_t(void* p, std::size_t, std::align_val_t) noexcept { fi::release(p); }
void __wrap__ZdaPvmSt11align_val_t(void* p, std::size_t, std::align_val_t) noexcept { fi::release(p); }
void __wrap__ZdlPvRKSt9nothrow_t(void* p, const std::nothrow_t&) noexcept { fi::release(p); }
void __wrap__ZdaPvRKSt9nothrow_t(void* p, const std::nothrow_t&) noexcept { fi::release(p); }
void __wrap__ZdlPvSt11align_val_tRKSt9nothrow_t(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  fi::release(p);
}
void __wrap__ZdaPvSt11align_val_tRKSt9nothrow_t(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  fi::release(p);
}
}
#else
void* operator new(std::size_t n) { return fi::allocate(n, 0, false); }
void* operator new[](std::size_t n) { return fi::allocate(n, 0, false); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return fi::allocate(n, 0, true); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return fi::allocate(n, 0, true); }
void* operator new(std::size_t n, std::align_val_t a) { return fi::allocate(n, static_cast<std::size_t>(a), false); }
void* operator new[](std::size_t n, std::align_val_t a) { return fi::allocate(n, static_cast<std::size_t>(a), false); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return fi::allocate(n, static_cast<std::size_t>(a), true);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return fi::allocate(n, static_cast<std::size_t>(a), true);
}
void operator delete(void* p) noexcept { fi::release(p); }
void operator delete[](void* p) noexcept { fi::release(p); }
void operator delete(void* p, std::size_t) noexcept { fi::release(p); }
void operator delete[](void* p, std::size_t) noexcept { fi::release(p); }
void operator delete(void* p, std::align_val_t) noexcept { fi::release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { fi::release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { fi::release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { fi::release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { fi::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { fi::release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { fi::release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { fi::release(p); }
#endif

// --- the harness ------------------------------------------------------------------

namespace {

using namespace std::chrono_literals;
using test::Event;

/// Aborts the process, naming the scenario and N, if a run does not finish in
/// time: a hang must fail loudly. One thread for the whole executable; it
/// never allocates.
class RunWatchdog {
public:
  RunWatchdog() : thread_([this] { loop(); }) {}
  ~RunWatchdog() {
    quit_.store(true);
    thread_.join();
  }
  RunWatchdog(const RunWatchdog&) = delete;
  RunWatchdog& operator=(const RunWatchdog&) = delete;

  void arm(const char* what, long n, std::chrono::seconds limit = 60s) {
    what_.store(what);
    n_.store(n);
    deadline_.store(now_ms() + std::chrono::duration_cast<std::chrono::milliseconds>(limit).count());
  }
  void disarm() { deadline_.store(0); }

private:
  static long long now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void loop() {
    while (!quit_.load()) {
      std::this_thread::sleep_for(20ms);
      const long long d = deadline_.load();
      if (d != 0 && now_ms() > d) {
        std::fprintf(stderr, "alloc_failure WATCHDOG: scenario \"%s\" with N=%ld did not finish: a hang\n",
                     what_.load(), n_.load());
        std::fflush(stderr);
        std::abort();
      }
    }
  }
  std::atomic<bool> quit_{false};
  std::atomic<long long> deadline_{0};
  std::atomic<const char*> what_{""};
  std::atomic<long> n_{0};
  std::thread thread_;
};
RunWatchdog* g_watchdog = nullptr;

/// Errors delivered to the unhandled-error handler, by kind.
struct Boom {  // a user error that allocates nothing (thrown by value)
  int id;
};
/// A std::exception counted as a Boom: a Pool groups errors alike by type and
/// message (a Boom, not a std::exception, is never grouped).
struct StdBoom : std::logic_error {
  StdBoom() : std::logic_error("boom") {}
};
struct Reports {
  std::atomic<long> bad_alloc{0}, boom{0}, other{0};
};
Reports g_reports;
struct ReportCounts {
  long bad_alloc, boom, other;
};
ReportCounts reports_now() { return {g_reports.bad_alloc.load(), g_reports.boom.load(), g_reports.other.load()}; }
ReportCounts reports_since(const ReportCounts& b) {
  auto n = reports_now();
  return {n.bad_alloc - b.bad_alloc, n.boom - b.boom, n.other - b.other};
}

/// Counts `e` as `n` errors of its kind: a skein::RepeatedError (a Pool's
/// error that repeated) as count() errors like its first().
void count_report(const std::exception_ptr& e, long n) {
  try {
    std::rethrow_exception(e);
  } catch (const skein::RepeatedError& r) {
    if (r.count() < 1 || !r.first()) {
      g_reports.other.fetch_add(1);
      return;
    }
    count_report(r.first(), n * static_cast<long>(r.count()));
  } catch (const std::bad_alloc&) {
    g_reports.bad_alloc.fetch_add(n);
  } catch (const Boom&) {
    g_reports.boom.fetch_add(n);
  } catch (const StdBoom&) {
    g_reports.boom.fetch_add(n);
  } catch (...) {
    g_reports.other.fetch_add(n);
  }
}

/// The handler used throughout: it captures a shared_ptr, so the
/// std::function keeps it on the heap and copying the function allocates.
void install_counting_handler() {
  auto tag = std::make_shared<int>(0);
  skein::set_unhandled_error_handler([tag](std::exception_ptr e) { count_report(e, 1); });
}

enum class Where { this_thread, any_thread };
constexpr Where kBoth[] = {Where::this_thread, Where::any_thread};
const char* where_name(Where w) { return w == Where::this_thread ? "this_thread" : "any_thread"; }

/// What one run of a scenario saw.
struct Attempt {
  bool hit = false;        // the injected failure happened during the action
  bool bad_alloc = false;  // std::bad_alloc reached the caller of the action
  std::string unexpected;  // any other exception that reached it
};

/// Runs `action` with the N-th allocation failing (on this thread, or on any
/// thread), and classifies how it ended. Nothing else may allocate meanwhile
/// on the armed thread(s) except through fi::Suppress.
template <class F>
Attempt attempt(Where where, long n, F&& action) {
  Attempt a;
  if (where == Where::this_thread) {
    fi::arm_this_thread(n);
  } else {
    fi::arm_any_thread(n);
  }
  try {
    action();
  } catch (const std::bad_alloc&) {
    a.bad_alloc = true;
  } catch (const std::exception& e) {
    fi::Suppress s;
    a.unexpected = e.what();
  } catch (...) {
    fi::Suppress s;
    a.unexpected = "an exception that is not a std::exception";
  }
  if (where == Where::this_thread) {
    fi::disarm_this_thread();
  } else {
    fi::disarm_any_thread();
  }
  a.hit = fi::hit();
  return a;
}

struct Figure {
  std::string scenario;
  Where where;
  long points;     // distinct N that reached the failure
  long bad_alloc;  // of those, runs where std::bad_alloc reached the caller
};
std::vector<Figure> g_figures;

/// Runs `run(n)` for N = 1, 2, ... until a run does not reach the failure;
/// returns the number of injection points explored.
template <class Run>
long explore(const char* scenario, Where where, Run&& run, long limit = 20000) {
  long n = 1, bad = 0;
  for (;; ++n) {
    INFO("scenario: ", std::string(scenario), " (", std::string(where_name(where)), "), N = ", n);
    fi::new_run();
    g_watchdog->arm(scenario, n);
    Attempt a = run(n);
    g_watchdog->disarm();
    CHECK_MESSAGE(a.unexpected.empty(), "unexpected exception: ", a.unexpected);
    if (a.bad_alloc) {
      ++bad;
      CHECK_MESSAGE(a.hit, "std::bad_alloc although no allocation was failed");
    }
    if (!a.hit) break;
    REQUIRE_MESSAGE(n < limit, "the scenario keeps allocating");
  }
  g_figures.push_back({scenario, where, n - 1, bad});
  return n - 1;
}

/// Waits until no skein task is live (a run's tasks must all finish).
bool quiesce() {
  return test::eventually([] { return skein::goroutines() == 0; }, 20000ms);
}

/// Waits until the timer heap is empty (no test leaves a timer behind; a
/// context's deadline leaves it when the last task frame lets go of it).
bool timers_idle() {
  return test::eventually([] { return skein::detail::timer_service().pending() == 0; }, 20000ms);
}

/// How a promise settled.
enum class Outcome { none, value, bad_alloc, other, unsettled };  // none: never created
template <class T>
Outcome outcome_of(const skein::Promise<T>& p) {
  if (!p.valid()) return Outcome::none;
  if (!p.wait_for(20s)) return Outcome::unsettled;
  try {
    p.wait();
    return Outcome::value;
  } catch (const std::bad_alloc&) {
    return Outcome::bad_alloc;
  } catch (...) {
    return Outcome::other;
  }
}

/// Keeps an allocation from being optimized away.
std::atomic<void*> g_sink{nullptr};
void touch_heap(std::size_t n) {
  std::unique_ptr<char[]> p(new char[n]);
  g_sink.store(p.get(), std::memory_order_relaxed);
}

int plus_one(int x) { return x + 1; }
std::size_t build_strings(int k) {
  std::vector<std::string> v;
  for (int i = 0; i < k; ++i) v.emplace_back(40, 'x');
  return v.size();
}
skein::Promise<int> twice_plus_one(int x) {
  int a = co_await skein::run([x] { return 2 * x; });
  auto b = co_await skein::run(build_strings, 2);
  co_return a + static_cast<int>(b) - 1;
}

/// A queue item: 128 bytes (the queue's ring buffer moves it when it grows).
struct Item {
  explicit Item(long i) noexcept : id(i) {}
  long id;
  char pad[120] = {};
};

}  // namespace

// === tasks ===========================================================================

TEST_CASE("run() and get() of a plain function") {
  for (Where w : kBoth)
    explore("run/get: plain function", w, [&](long n) {
      int r = 0;
      auto a = attempt(w, n, [&] { r = skein::run(plus_one, 41).get(); });
      if (!a.bad_alloc && a.unexpected.empty()) CHECK(r == 42);
      CHECK(quiesce());
      return a;
    });
}

TEST_CASE("run() and get() of a function that allocates") {
  for (Where w : kBoth)
    explore("run/get: allocating function", w, [&](long n) {
      std::size_t r = 0;
      auto a = attempt(w, n, [&] { r = skein::run(build_strings, 6).get(); });
      if (!a.bad_alloc && a.unexpected.empty()) CHECK(r == 6);
      CHECK(quiesce());
      return a;
    });
}

TEST_CASE("run() of a coroutine function, and a coroutine called directly") {
  for (Where w : kBoth)
    explore("run/get: coroutine function", w, [&](long n) {
      int r1 = 0, r2 = 0;
      auto a = attempt(w, n, [&] {
        r1 = skein::run(twice_plus_one, 20).get();
        r2 = twice_plus_one(5).get();
      });
      if (!a.bad_alloc && a.unexpected.empty()) {
        CHECK(r1 == 41);
        CHECK(r2 == 11);
      }
      CHECK(quiesce());
      return a;
    });
}

TEST_CASE("spawn(): a failed fire-and-forget task is reported, once") {
  for (Where w : kBoth)
    explore("spawn", w, [&](long n) {
      std::atomic<int> finished{0};
      const auto before = reports_now();
      auto a = attempt(w, n, [&] {
        skein::spawn([&finished] {
          touch_heap(64);
          finished.fetch_add(1);
        });
      });
      CHECK(quiesce());
      const auto d = reports_since(before);
      CHECK(d.other == 0);
      if (a.bad_alloc) {
        CHECK(finished.load() == 0);  // spawn threw: nothing started
        CHECK(d.bad_alloc == 0);
      } else {
        CHECK(finished.load() + d.bad_alloc == 1);  // ran, or failed and was reported
      }
      return a;
    });
}

TEST_CASE("Context::run, tasks started inside it, and Context::wait") {
  for (Where w : kBoth)
    explore("Context::run/wait", w, [&](long n) {
      skein::Context ctx;
      int r = 0;
      auto a = attempt(w, n, [&] {
        auto child = ctx.child();
        auto p = child.run([](int x) { return skein::run(plus_one, x).get(); }, 1);  // inherits the context
        r = p.get();
        ctx.wait();
      });
      CHECK(ctx.wait_for(20s));
      CHECK(ctx.tasks() == 0);
      CHECK(!ctx.cancelled());
      if (!a.bad_alloc && a.unexpected.empty()) CHECK(r == 2);
      CHECK(quiesce());
      return a;
    });
}

TEST_CASE("Context::with_timeout, child_with_timeout and run_with_timeout") {
  for (Where w : kBoth)
    explore("Context deadlines/run_with_timeout", w, [&](long n) {
      REQUIRE(timers_idle());
      int r1 = 0, r2 = 0;
      auto a = attempt(w, n, [&] {
        auto ctx = skein::Context::with_timeout(1h);
        auto child = ctx.child_with_timeout(1h);
        r1 = child.run(plus_one, 2).get();
        child.wait();
        r2 = skein::run_with_timeout(
            20s, [](int x) { return skein::run(plus_one, x).get(); }, 5);
      });
      if (!a.bad_alloc && a.unexpected.empty()) {
        CHECK(r1 == 3);
        CHECK(r2 == 6);
      }
      CHECK(quiesce());
      // Every deadline leaves the timer heap (once the last task frame lets go of its context).
      CHECK(timers_idle());
      return a;
    });
}

TEST_CASE("when_all and when_any") {
  for (Where w : kBoth)
    explore("when_all/when_any", w, [&](long n) {
      int sum = 0;
      auto a = attempt(w, n, [&] {
        auto all = skein::when_all(skein::run(plus_one, 1), skein::run(build_strings, 2));
        auto [x, y] = all.get();
        sum += x + static_cast<int>(y);
        std::vector<skein::Promise<int>> v;
        v.push_back(skein::run(plus_one, 3));
        v.push_back(skein::run(plus_one, 4));
        for (int k : skein::when_all(std::move(v)).get()) sum += k;
        auto any = skein::when_any(skein::run(plus_one, 7), skein::run(plus_one, 7)).get();
        sum += std::visit([](int k) { return k; }, any);
      });
      if (!a.bad_alloc && a.unexpected.empty()) CHECK(sum == 4 + 4 + 5 + 8);
      CHECK(quiesce());
      return a;
    });
}

TEST_CASE("sequence()") {
  for (Where w : kBoth)
    explore("sequence", w, [&](long n) {
      std::atomic<int> steps{0};
      Outcome o = Outcome::unsettled;
      auto a = attempt(w, n, [&] {
        auto p = skein::sequence([&steps] { steps.fetch_add(1); },
                                 [&steps]() -> skein::Promise<void> {
                                   (void)co_await skein::run(build_strings, 2);
                                   steps.fetch_add(1);
                                 });
        o = outcome_of(p);
        p.wait();
      });
      if (!a.bad_alloc && a.unexpected.empty()) CHECK(steps.load() == 2);
      CHECK(o != Outcome::other);
      CHECK(quiesce());
      return a;
    });
}

TEST_CASE("ThreadPool construction, run and post on it, destruction") {
  for (Where w : kBoth)
    explore("ThreadPool ctor/run/post/dtor", w, [&](long n) {
      std::atomic<int> posted{0};
      int r = 0;
      auto a = attempt(w, n, [&] {
        skein::ThreadPool pool(2);
        r = skein::run(pool, plus_one, 1).get();
        pool.post([&posted] { posted.fetch_add(1); });
      });  // the post runs or is cancelled by the destructor
      if (!a.bad_alloc && a.unexpected.empty()) CHECK(r == 2);
      CHECK(posted.load() <= 1);
      CHECK(quiesce());
      return a;
    });
}

// === Queue ===========================================================================

TEST_CASE("Queue: put into an unbounded queue (buffer growth) with a blocked getter") {
  for (Where w : kBoth)
    explore("Queue::put unbounded, blocked getter", w, [&](long n) {
      constexpr long K = 40;
      skein::Queue<Item> q;
      std::vector<long> got, put_ok, put_failed;
      got.reserve(K);
      put_ok.reserve(K);
      put_failed.reserve(K);
      std::thread consumer([&] {
        while (auto v = q.get()) got.push_back(v->id);
      });
      auto a = attempt(w, n, [&] {
        for (long i = 0; i < K; ++i) {
          try {
            q.put(Item(i));
            put_ok.push_back(i);
          } catch (const std::bad_alloc&) {  // the item is not in the queue
            put_failed.push_back(i);
            throw;
          }
        }
      });
      q.close();
      consumer.join();
      CHECK(got == put_ok);  // each put item exactly once, in order; the failed one never
      CHECK(put_failed.size() == (a.bad_alloc ? 1u : 0u));
      CHECK(q.size() == 0);
      return a;
    });
}

TEST_CASE("Queue: get from a full bounded queue refills from a blocked putter") {
  for (Where w : kBoth)
    explore("Queue::get bounded, blocked putters", w, [&](long n) {
      constexpr long P = 2, M = 24;
      skein::Queue<Item> q(2);
      std::array<std::vector<long>, P> ok;
      std::vector<long> got;
      got.reserve(P * M);
      for (auto& v : ok) v.reserve(M);
      std::vector<std::thread> producers;
      for (long p = 0; p < P; ++p)
        producers.emplace_back([&, p] {
          for (long i = 0; i < M; ++i) {
            try {
              q.put(Item(p * 1000 + i));
              ok[p].push_back(p * 1000 + i);
            } catch (const std::bad_alloc&) {  // any_thread mode: this put failed, the item is not queued
            }
          }
        });
      std::thread closer([&] {
        for (auto& t : producers) t.join();
        q.close();
      });
      auto a = attempt(w, n, [&] {
        while (auto v = q.get()) got.push_back(v->id);
      });
      closer.join();
      // Exactly the items that were put, each once, in each producer's order.
      std::array<std::vector<long>, P> by_producer;
      for (long id : got) by_producer[id / 1000].push_back(id);
      for (long p = 0; p < P; ++p) CHECK(by_producer[p] == ok[p]);
      CHECK(q.size() == 0);
      return a;
    });
}

TEST_CASE("Queue: try_get refills from a blocked putter; try_put on the full queue") {
  for (Where w : kBoth)
    explore("Queue::try_put/try_get", w, [&](long n) {
      constexpr long M = 24;
      skein::Queue<Item> q(4);
      std::vector<long> put_ok, blocked_ok, got;
      put_ok.reserve(M * 4);
      blocked_ok.reserve(M);
      got.reserve(M * 5);
      std::atomic<bool> putter_done{false};
      std::thread putter([&] {
        for (long i = 100; i < 100 + M; ++i) {
          try {
            q.put(Item(i));
            blocked_ok.push_back(i);
          } catch (const std::bad_alloc&) {  // any_thread mode: not queued
          }
        }
        putter_done.store(true);
      });
      REQUIRE(test::eventually([&] { return q.size() == 4 || putter_done.load(); }));
      auto a = attempt(w, n, [&] {
        long i = 0;
        for (;;) {
          if (auto v = q.try_get()) {
            got.push_back(v->id);
            if (i < M) {
              try {
                if (q.try_put(Item(i))) put_ok.push_back(i);
              } catch (const std::bad_alloc&) {  // not queued
              }
              ++i;
            }
          } else if (putter_done.load()) {
            if (q.size() == 0) break;
          } else {
            std::this_thread::yield();
          }
        }
      });
      putter.join();
      std::vector<long> mine, theirs;
      for (long id : got) (id < 100 ? mine : theirs).push_back(id);
      CHECK(mine == put_ok);
      CHECK(theirs == blocked_ok);
      CHECK(q.size() == 0);
      return a;
    });
}

namespace {

skein::Promise<void> async_producer(skein::Queue<Item>& q, long base, long m, std::vector<long>& ok) {
  for (long i = 0; i < m; ++i) {
    try {
      co_await q.async_put(Item(base + i));
      ok.push_back(base + i);
    } catch (const std::bad_alloc&) {  // not queued
    } catch (const skein::Closed&) {   // the consumer could not start: the run closed the queue
      co_return;
    }
  }
}

skein::Promise<void> async_consumer(skein::Queue<Item>& q, std::vector<long>& got) {
  while (auto v = co_await q.async_get()) got.push_back(v->id);
}

}  // namespace

TEST_CASE("Queue: async_put and async_get of coroutines, with blocked peers") {
  for (Where w : kBoth)
    explore("Queue::async_put/async_get", w, [&](long n) {
      constexpr long M = 16;
      skein::Queue<Item> q(2);
      std::array<std::vector<long>, 2> ok;
      for (auto& v : ok) v.reserve(M);
      std::vector<long> got;
      got.reserve(2 * M);
      skein::Promise<void> cons, p0, p1;
      auto a = attempt(w, n, [&] {
        cons = skein::run(async_consumer, std::ref(q), std::ref(got));
        p0 = skein::run(async_producer, std::ref(q), 0L, M, std::ref(ok[0]));
        p1 = skein::run(async_producer, std::ref(q), 1000L, M, std::ref(ok[1]));
        while (!(p0.ready() && p1.ready())) {
          if (cons.ready()) q.close();  // the consumer failed to start: release the producers
          std::this_thread::sleep_for(100us);
        }
        p0.wait();
        p1.wait();
      });
      CHECK(outcome_of(p0) != Outcome::unsettled);
      CHECK(outcome_of(p1) != Outcome::unsettled);
      q.close();
      CHECK(outcome_of(cons) != Outcome::unsettled);
      CHECK(outcome_of(cons) != Outcome::other);
      while (auto v = q.try_get()) got.push_back(v->id);  // left behind by a consumer that never started
      std::array<std::vector<long>, 2> by_producer;
      for (long id : got) by_producer[id / 1000].push_back(id);
      CHECK(by_producer[0] == ok[0]);
      CHECK(by_producer[1] == ok[1]);
      CHECK(quiesce());
      return a;
    });
}

// === blocking waits: from plain threads, and inside pool tasks (hand-off) ===============

namespace {

/// One blocking wait under test: block() on the waiting thread, release() on
/// the main thread ends it, check() tests the primitive afterwards.
struct WgWait {
  skein::WaitGroup wg;
  WgWait() { wg.add(1); }
  void block() { wg.wait(); }
  void release() { wg.done(); }
  void check() { CHECK(wg.count() == 0); }
};
struct WgWaitFor : WgWait {
  void block() { (void)wg.wait_for(30s); }
};
struct SemAcquire {
  skein::Semaphore s{1};
  SemAcquire() { s.acquire(); }
  void block() {
    s.acquire();
    s.release();
  }
  void release() { s.release(); }
  void check() { CHECK(s.available() == 1); }
};
struct SemTryAcquireFor : SemAcquire {
  void block() {
    if (s.try_acquire_for(30s)) s.release();
  }
};
struct MutexLock {
  skein::Mutex m;
  MutexLock() { m.lock(); }
  void block() {
    m.lock();
    m.unlock();
  }
  void release() { m.unlock(); }
  void check() { CHECK(!m.locked()); }
};
struct MutexTryLockFor : MutexLock {
  void block() {
    if (m.try_lock_for(30s)) m.unlock();
  }
};
struct RWLockWrite {
  skein::RWLock l;
  RWLockWrite() { l.lock_shared(); }
  void block() {
    l.lock();
    l.unlock();
  }
  void release() { l.unlock_shared(); }
  void check() {
    CHECK(l.try_lock());
    l.unlock();
  }
};
struct RWLockRead {
  skein::RWLock l;
  RWLockRead() { l.lock(); }
  void block() {
    l.lock_shared();
    l.unlock_shared();
  }
  void release() { l.unlock(); }
  void check() {
    CHECK(l.try_lock());
    l.unlock();
  }
};
struct QueueGet {
  skein::Queue<int> q;
  std::optional<int> got;
  void block() { got = q.get(); }
  void release() { q.put(7); }
  void check() {
    auto left = q.try_get();
    CHECK((got == 7) != (left == 7));  // exactly one of: the getter took it, it is still queued
    CHECK(q.size() == 0);
  }
};
struct QueuePut {
  skein::Queue<int> q{1};
  bool put = false;
  std::optional<int> first;
  QueuePut() { q.put(1); }
  void block() {
    q.put(2);
    put = true;
  }
  void release() { first = q.get(); }
  void check() {
    CHECK(first == 1);
    auto left = q.try_get();
    CHECK(left == (put ? std::optional<int>(2) : std::nullopt));
  }
};
struct PromiseGet {
  skein::Resolver<int> r;
  skein::Promise<int> p = r.promise();
  int got = 0;
  void block() { got = p.get(); }
  void release() { r.resolve(5); }
  void check() { CHECK((got == 5 || got == 0)); }
};
struct SleepFor {
  void block() { skein::sleep_for(3ms); }
  void release() {}
  void check() {}
};
struct ContextWait {
  skein::Context ctx;
  std::atomic<bool> go{false};
  skein::Promise<void> task = ctx.run([this] {
    while (!go.load()) std::this_thread::sleep_for(100us);
  });
  void block() { ctx.wait(); }
  void release() { go.store(true); }
  void check() {
    CHECK(ctx.wait_for(30s));
    CHECK(ctx.tasks() == 0);
  }
};

template <class Case>
void waits_from_a_thread(const char* name) {
  for (Where w : kBoth)
    explore(name, w, [&](long n) {
      Case c;
      std::atomic<bool> entered{false};
      Attempt a;
      std::thread t([&] {
        a = attempt(w, n, [&] {
          entered.store(true);
          c.block();
        });
      });
      while (!entered.load()) std::this_thread::yield();
      std::this_thread::sleep_for(2ms);
      c.release();
      t.join();
      c.check();
      return a;
    });
}

/// The wait runs in a task of a fresh one-thread pool: blocking hands the
/// thread's slot to a new thread (allocations), armed on the worker itself.
/// With `bounded`, the pool is at its thread bound, and the wait refuses with
/// the documented UsageError. Either way the pool must still run tasks.
template <class Case>
void waits_in_a_pool_task(const char* name, bool bounded) {
  for (Where w : kBoth)
    explore(name, w, [&](long n) {
      Case c;
      skein::ThreadPool pool(1, bounded ? 1 : skein::ThreadPool::kDefaultMaxThreads);
      std::atomic<bool> entered{false};
      bool refused = false;
      auto t = skein::run(pool, [&] {
        return attempt(w, n, [&] {
          entered.store(true);
          try {
            c.block();
          } catch (const skein::UsageError&) {
            if (!bounded) throw;
            refused = true;  // at the thread bound: documented
          }
        });
      });
      while (!entered.load()) std::this_thread::yield();
      std::this_thread::sleep_for(2ms);
      c.release();
      REQUIRE(t.wait_for(30s));
      Attempt a = t.get();
      c.check();
      if (!bounded) CHECK(!refused);
      auto probe = skein::run(pool, plus_one, 1);  // the pool still runs tasks (its slot was not lost)
      REQUIRE_MESSAGE(probe.wait_for(30s), "the pool no longer runs tasks");
      CHECK(probe.get() == 2);
      return a;
    });
}

}  // namespace

TEST_CASE("blocking waits from a plain thread") {
  waits_from_a_thread<WgWait>("WaitGroup::wait from a thread");
  waits_from_a_thread<WgWaitFor>("WaitGroup::wait_for from a thread");
  waits_from_a_thread<SemAcquire>("Semaphore::acquire from a thread");
  waits_from_a_thread<SemTryAcquireFor>("Semaphore::try_acquire_for from a thread");
  waits_from_a_thread<MutexLock>("Mutex::lock from a thread");
  waits_from_a_thread<MutexTryLockFor>("Mutex::try_lock_for from a thread");
  waits_from_a_thread<RWLockWrite>("RWLock::lock from a thread");
  waits_from_a_thread<RWLockRead>("RWLock::lock_shared from a thread");
  waits_from_a_thread<QueueGet>("Queue::get (blocked) from a thread");
  waits_from_a_thread<QueuePut>("Queue::put (blocked) from a thread");
  waits_from_a_thread<PromiseGet>("Promise::get from a thread");
  waits_from_a_thread<SleepFor>("sleep_for from a thread");
  waits_from_a_thread<ContextWait>("Context::wait from a thread");
}

TEST_CASE("blocking waits inside a pool task (the slot hand-off allocates)") {
  waits_in_a_pool_task<WgWait>("WaitGroup::wait in a task", false);
  waits_in_a_pool_task<SemAcquire>("Semaphore::acquire in a task", false);
  waits_in_a_pool_task<MutexLock>("Mutex::lock in a task", false);
  waits_in_a_pool_task<MutexTryLockFor>("Mutex::try_lock_for in a task", false);
  waits_in_a_pool_task<RWLockWrite>("RWLock::lock in a task", false);
  waits_in_a_pool_task<RWLockRead>("RWLock::lock_shared in a task", false);
  waits_in_a_pool_task<QueueGet>("Queue::get in a task", false);
  waits_in_a_pool_task<QueuePut>("Queue::put in a task", false);
  waits_in_a_pool_task<PromiseGet>("Promise::get in a task", false);
  waits_in_a_pool_task<SleepFor>("sleep_for in a task", false);
  waits_in_a_pool_task<ContextWait>("Context::wait in a task", false);
}

TEST_CASE("blocking waits inside a task of a pool at its thread bound") {
  waits_in_a_pool_task<WgWait>("WaitGroup::wait in a task at the bound", true);
  waits_in_a_pool_task<MutexLock>("Mutex::lock in a task at the bound", true);
  waits_in_a_pool_task<QueueGet>("Queue::get in a task at the bound", true);
}

// === coroutine waits ===================================================================

namespace {

struct Prims {
  skein::WaitGroup wg;
  skein::Semaphore sem{1};
  skein::Mutex m;
  skein::RWLock rw;
  skein::Queue<int> q;
  int counter = 0;  // under m, then under rw
  std::atomic<int> started{0};
  std::atomic<bool> waited{false};
};

skein::Promise<void> coro_worker(Prims& p) {
  p.started.fetch_add(1);
  co_await p.sem.async_acquire();
  {
    auto g = co_await p.m.async_lock();
    ++p.counter;
  }
  {
    auto g = co_await p.rw.async_lock();
    ++p.counter;
  }
  { auto g = co_await p.rw.async_lock_shared(); }
  (void)co_await p.q.async_get();  // blocked until main puts (or closes)
  p.sem.release();
  p.wg.done();
}

skein::Promise<void> coro_waiter(Prims& p) {
  co_await p.wg.async_wait();
  p.waited.store(true);
}

}  // namespace

TEST_CASE("WaitGroup, Semaphore, Mutex, RWLock and Queue waits of coroutines") {
  for (Where w : kBoth)
    explore("coroutine waits (wg/sem/mutex/rwlock/queue)", w, [&](long n) {
      Prims p;
      p.wg.add(2);
      skein::Promise<void> w1, w2, waiter;
      bool holds_m = false, holds_rw = false;
      auto a = attempt(w, n, [&] {
        p.m.lock();  // the workers queue behind main
        holds_m = true;
        p.rw.lock_shared();
        holds_rw = true;
        waiter = skein::run(coro_waiter, std::ref(p));
        w1 = skein::run(coro_worker, std::ref(p));
        w2 = skein::run(coro_worker, std::ref(p));
        std::this_thread::sleep_for(1ms);
        holds_m = false;
        p.m.unlock();
        holds_rw = false;
        p.rw.unlock_shared();
        p.q.put(1);
        p.q.put(2);
        w1.wait();
        w2.wait();
        waiter.wait();
      });
      if (holds_m) p.m.unlock();  // the action stopped early
      if (holds_rw) p.rw.unlock_shared();
      p.q.close();  // releases a worker whose item was never put
      // A worker whose frame could not be allocated never started: count it done.
      CHECK(outcome_of(w1) != Outcome::other);
      CHECK(outcome_of(w2) != Outcome::other);
      const int started = p.started.load();
      CHECK(test::eventually([&] { return p.wg.count() == 2 - started; }));
      for (int k = started; k < 2; ++k) p.wg.done();
      CHECK(p.wg.count() == 0);
      CHECK(outcome_of(waiter) != Outcome::other);
      if (waiter.valid() && outcome_of(waiter) == Outcome::value) CHECK(p.waited.load());
      CHECK(p.sem.available() == 1);
      CHECK(!p.m.locked());
      CHECK(p.counter == 2 * started);
      CHECK(quiesce());
      return a;
    });
}

// === Pool ==============================================================================
//
// Left out of the any_thread sweeps: a worker that cannot start. Pool's
// workers are run() tasks of a coroutine (Pool::work), whose frame is
// allocated on the pool thread once the task runs; if that allocation fails,
// the worker's own promise fails with bad_alloc after the constructor has
// returned, and the Pool does not notice until close() (which rethrows it).
// With every worker gone, submit() blocks once the queue is full and wait()
// never returns. Fixing that is a design change (start the workers' frames on
// the constructing thread, then make them pool tasks), so in any_thread mode
// the pool is built, and its workers seen running, before the failure is armed.

namespace {

/// Pool<int> worker for the sweeps: items >= 100 are warm-up items (every
/// worker takes one, so all of them are known to run); the others allocate,
/// and every fifth throws Boom.
constexpr int kItems = 12;
struct PoolLog {
  std::array<std::atomic<int>, kItems> calls{}, threw{};  // threw: Boom or std::bad_alloc
  std::array<bool, kItems> submitted{};
  std::atomic<int> warm{0};
  int workers = 0;
};

auto pool_worker(PoolLog& log) {
  return [&log](int i) {
    if (i >= 100) {
      log.warm.fetch_add(1);
      while (log.warm.load() < log.workers) std::this_thread::yield();
      return;
    }
    log.calls[i].fetch_add(1);
    if (i % 5 == 4) {
      log.threw[i].fetch_add(1);
      throw Boom{i};
    }
    try {
      touch_heap(100);
    } catch (const std::bad_alloc&) {
      log.threw[i].fetch_add(1);
      throw;
    }
  };
}
using PoolOf = skein::Pool<int>;

/// Builds the pool; with `warm`, waits until each of its workers has run.
void make_pool(std::optional<PoolOf>& pool, PoolLog& log, int workers, std::size_t depth, bool warm) {
  log.workers = workers;
  pool.emplace(pool_worker(log), static_cast<std::size_t>(workers), depth);
  if (!warm) return;
  for (int k = 0; k < workers; ++k) pool->submit(100 + k);
  pool->wait();
}

/// Errors rethrown by wait()/close(), by kind.
struct Rethrown {
  long boom = 0, bad_alloc = 0;
};

/// Runs `f` (wait() or close()), counting the error it rethrows.
template <class F>
void counting_rethrows(Rethrown& r, F f) {
  try {
    f();
  } catch (const Boom&) {
    ++r.boom;
  } catch (const std::bad_alloc&) {
    ++r.bad_alloc;
  }
}

void check_pool_log(PoolLog& log, const Rethrown& r, const ReportCounts& before) {
  long booms = 0, bad_allocs = 0;
  for (int i = 0; i < kItems; ++i) {
    CHECK(log.calls[i].load() == (log.submitted[i] ? 1 : 0));  // every queued item processed exactly once
    if (log.threw[i].load()) (i % 5 == 4 ? booms : bad_allocs) += log.threw[i].load();
  }
  const auto d = reports_since(before);
  CAPTURE(r.boom);
  CAPTURE(r.bad_alloc);
  CAPTURE(d.boom);
  CAPTURE(d.bad_alloc);
  CHECK(d.other == 0);
  CHECK(r.boom + d.boom == booms);  // every error surfaced exactly once
  // Every item's bad_alloc too; a task of the Pool's own that could not start
  // (a worker's watcher) may report its bad_alloc on top.
  CHECK(r.bad_alloc + d.bad_alloc >= bad_allocs);
}

skein::Promise<void> pool_feeder(PoolOf& p, PoolLog& log) {
  for (int i = 0; i < kItems; ++i) {
    try {
      co_await p.async_submit(i);
      log.submitted[i] = true;
    } catch (const std::bad_alloc&) {  // not queued
    }
  }
}

}  // namespace

TEST_CASE("Pool: submit, wait and close; the worker function allocates, and throws for some items") {
  for (Where w : kBoth)
    explore("Pool submit/wait/close", w, [&](long n) {
      PoolLog log;
      std::optional<PoolOf> pool;
      const bool warm = w == Where::any_thread;
      if (warm) make_pool(pool, log, 2, 3, true);
      Rethrown rethrown;
      std::size_t pending = 0;
      const auto before = reports_now();
      auto a = attempt(w, n, [&] {
        if (!warm) make_pool(pool, log, 2, 3, false);
        for (int i = 0; i < kItems; ++i) {
          try {
            pool->submit(i);
            log.submitted[i] = true;
          } catch (const std::bad_alloc&) {  // not queued
          }
        }
        // wait() rethrows the first error kept; the others go to the handler.
        counting_rethrows(rethrown, [&] { pool->wait(); });
        counting_rethrows(rethrown, [&] { pool->wait(); });
        counting_rethrows(rethrown, [&] { pool->close(); });
        pending = pool->pending();
        pool.reset();
      });
      pool.reset();
      CHECK(pending == 0);
      CHECK(quiesce());
      check_pool_log(log, rethrown, before);
      return a;
    });
}

TEST_CASE("Pool: async_submit from a coroutine") {
  for (Where w : kBoth)
    explore("Pool async_submit", w, [&](long n) {
      PoolLog log;
      std::optional<PoolOf> pool;
      const bool warm = w == Where::any_thread;
      if (warm) make_pool(pool, log, 1, 2, true);
      Rethrown rethrown;
      std::size_t pending = 0;
      const auto before = reports_now();
      auto a = attempt(w, n, [&] {
        if (!warm) make_pool(pool, log, 1, 2, false);
        pool_feeder(*pool, log).wait();
        counting_rethrows(rethrown, [&] { pool->wait(); });  // a leaked submission would hang here
        counting_rethrows(rethrown, [&] { pool->close(); });
        pending = pool->pending();
        pool.reset();
      });
      pool.reset();
      CHECK(pending == 0);
      CHECK(quiesce());
      check_pool_log(log, rethrown, before);
      return a;
    });
}

// === timers ==============================================================================

namespace {

skein::Promise<int> sleeper(int i) {
  co_await skein::async_sleep(1ms);
  co_await skein::async_sleep_until(std::chrono::steady_clock::now() - 1ms);  // due already: no suspension
  co_return i;
}

}  // namespace

TEST_CASE("async_sleep and sleep_for") {
  for (Where w : kBoth)
    explore("async_sleep/sleep_for", w, [&](long n) {
      REQUIRE(timers_idle());
      int sum = 0;
      auto a = attempt(w, n, [&] {
        auto p0 = skein::run(sleeper, 1);
        auto p1 = skein::run(sleeper, 2);
        auto p2 = sleeper(3);  // no executor: resumes on the default pool
        auto p3 = skein::run([] {
          skein::sleep_for(1ms);
          return 4;
        });
        sum = p0.get() + p1.get() + p2.get() + p3.get();
      });
      if (!a.bad_alloc && a.unexpected.empty()) CHECK(sum == 10);
      CHECK(quiesce());
      CHECK(timers_idle());
      return a;
    });
}

// === EventLoop ===========================================================================

namespace {

skein::Promise<int> loop_coroutine(int x) {
  co_await skein::async_sleep(1ms);
  int y = co_await skein::run(plus_one, x);  // resumes on the loop
  co_return y;
}

}  // namespace

TEST_CASE("EventLoop: post, spawn, work, a notifier, run") {
  for (Where w : kBoth)
    explore("EventLoop post/spawn/work/notifier/run", w, [&](long n) {
      constexpr int K = 6;
      std::array<std::atomic<int>, K> ran{};
      std::array<bool, K> posted{};
      std::atomic<int> notified{0};
      bool notifier_made = false, ran_to_end = false, work_ready = false, spawn_ready = false;
      skein::Promise<int> wp, sp;
      auto a = attempt(w, n, [&] {
        skein::EventLoop loop;
        for (int i = 0; i < K; ++i) {
          try {
            loop.post([&ran, i] { ran[i].fetch_add(1); });
            posted[i] = true;
          } catch (const std::bad_alloc&) {  // not queued
          }
        }
        try {
          wp = skein::work(
              loop,
              [](int x) {
                touch_heap(32);
                return 2 * x;
              },
              21);
        } catch (const std::bad_alloc&) {
        }
        try {
          sp = loop.spawn(loop_coroutine, 4);
        } catch (const std::bad_alloc&) {
        }
        std::optional<skein::Notifier> nt;
        try {
          nt.emplace(loop.make_notifier([&notified] { notified.fetch_add(1); }));
          notifier_made = true;
          nt->trigger();
        } catch (const std::bad_alloc&) {
        }
        loop.run();  // returns once everything above is done
        ran_to_end = true;
        work_ready = !wp.valid() || wp.ready();
        spawn_ready = !sp.valid() || sp.ready();
      });
      if (ran_to_end) {
        for (int i = 0; i < K; ++i) CHECK(ran[i].load() == (posted[i] ? 1 : 0));
        CHECK(notified.load() == (notifier_made ? 1 : 0));
        CHECK(work_ready);
        CHECK(spawn_ready);
      }
      if (wp.valid()) {
        auto o = outcome_of(wp);
        CHECK((o == Outcome::value || o == Outcome::bad_alloc));
        if (o == Outcome::value) CHECK(wp.get() == 42);
      }
      if (sp.valid()) {
        auto o = outcome_of(sp);
        CAPTURE(static_cast<int>(o));
        CHECK((o == Outcome::value || o == Outcome::bad_alloc || (!ran_to_end && o == Outcome::other)));
        if (o == Outcome::value) CHECK(sp.get() == 5);
      }
      CHECK(quiesce());
      return a;
    });
}

TEST_CASE("EventLoop destroyed with queued posts, a spawn and work in flight") {
  for (Where w : kBoth)
    explore("EventLoop dropped without run", w, [&](long n) {
      std::atomic<int> ran{0};
      skein::Promise<int> sp, wp;
      auto a = attempt(w, n, [&] {
        skein::EventLoop loop;
        sp = loop.spawn(plus_one, 1);
        wp = skein::work(loop, plus_one, 2);
        loop.post([&ran] { ran.fetch_add(1); });
      });  // ~EventLoop drops the posts (their resolvers reject), waits for the work
      CHECK(ran.load() == 0);
      if (sp.valid()) {
        REQUIRE(sp.wait_for(30s));
        // Abandoned: Cancelled, or std::bad_alloc when even that could not be made.
        bool ok = false;
        try {
          sp.wait();
        } catch (const skein::Cancelled&) {
          ok = true;
        } catch (const std::bad_alloc&) {
          ok = true;
        } catch (...) {
        }
        CHECK(ok);
      }
      if (wp.valid()) {
        auto o = outcome_of(wp);
        CHECK((o == Outcome::value || o == Outcome::bad_alloc));
      }
      CHECK(quiesce());
      return a;
    });
}

// === Shared ================================================================================

TEST_CASE("Shared::update from the caller and from a task") {
  for (Where w : kBoth)
    explore("Shared::update", w, [&](long n) {
      constexpr long K = 20;
      skein::Shared<std::vector<long>> s;
      std::vector<long> ok;
      ok.reserve(K);
      skein::Promise<std::size_t> t;
      auto a = attempt(w, n, [&] {
        for (long i = 0; i < K; ++i) {
          try {
            s.update([i](std::vector<long>& v) { v.push_back(i); });
            ok.push_back(i);
          } catch (const std::bad_alloc&) {  // the value is unchanged
          }
        }
        t = skein::run([&s] {
          return s.update([](std::vector<long>& v) {
            v.push_back(1000);
            return v.size();
          });
        });
        t.wait();
      });
      CHECK(quiesce());
      auto g = s.lock();  // the lock is free (a hang here would be a leaked lock)
      std::vector<long> mine;
      long theirs = 0;
      for (long v : *g) (v < 1000 ? (void)mine.push_back(v) : (void)++theirs);
      CHECK(mine == ok);
      CHECK(theirs == (outcome_of(t) == Outcome::value ? 1 : 0));
      return a;
    });
}

// === regressions: minimal reproducers of the bugs this harness found =======================

TEST_CASE("regression: Queue::get refills from a blocked putter without allocating") {
  // Queue::take_locked (noexcept) moved a blocked putter's item into the
  // buffer with std::deque::push_back, which allocates a new block every few
  // items: out of memory, std::terminate. The buffer is now a ring: the
  // putter's item goes into the place just freed, and nothing is allocated
  // (each get runs armed to fail its first allocation; none is made).
  skein::Queue<Item> q(4);
  constexpr long M = 40;
  std::thread producer([&] {
    for (long i = 0; i < M; ++i) q.put(Item(i));
  });
  std::vector<long> got;
  got.reserve(M);
  bool hit = false;
  fi::new_run();
  while (static_cast<long>(got.size()) < M) {
    // Let the producer block on the full queue, so that this get refills.
    (void)test::eventually([&] { return q.size() == 4 || static_cast<long>(got.size() + q.size()) == M; }, 1000ms);
    std::this_thread::sleep_for(200us);
    fi::arm_this_thread(1);
    auto v = q.get();
    fi::disarm_this_thread();
    hit = hit || fi::hit();
    REQUIRE(v);
    got.push_back(v->id);
  }
  producer.join();
  CHECK_FALSE(hit);
  for (long i = 0; i < M; ++i) CHECK(got[static_cast<std::size_t>(i)] == i);  // FIFO, none lost or doubled
  CHECK(q.size() == 0);
}

namespace {

/// q.async_put that finds the queue full, then finds room just as it links
/// itself (another consumer took an item meanwhile): its enqueue places the
/// item, which may grow the buffer — the allocation failed here.
struct PutAfterRoomAppears {
  skein::Queue<Item>& q;
  skein::Queue<Item>::PutOperation& op;  // a named local: see FailInSuspend
  std::vector<long>& taken;
  bool await_ready() { return op.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) {
    if (auto v = q.try_get()) taken.push_back(v->id);
    fi::arm_this_thread(1);
    try {
      bool r = op.await_suspend(h);
      fi::disarm_this_thread();
      return r;
    } catch (...) {
      fi::disarm_this_thread();
      throw;
    }
  }
  void await_resume() { op.await_resume(); }
};

skein::Promise<void> racing_putter(skein::Queue<Item>& q, std::vector<long>& taken, std::vector<long>& ok,
                                   std::atomic<int>& failed) {
  for (long i = 0; i < 64 && failed.load() == 0; ++i) {
    try {
      auto op = q.async_put(Item(100 + i));
      co_await PutAfterRoomAppears{q, op, taken};
      ok.push_back(100 + i);
    } catch (const std::bad_alloc&) {
      failed.fetch_add(1);
    }
  }
}

}  // namespace

TEST_CASE("regression: Queue::async_put on an EventLoop when room appears as it links") {
  // Two bugs on one path: Queue::enqueue_putter was noexcept although placing
  // the item could grow the buffer (std::terminate), and WaitOperation's
  // await_suspend counted the coroutine as suspended on the loop before the
  // enqueue threw, so EventLoop::run() then waited forever. Since the buffer
  // is a ring, placing an item in a bounded queue that had been full never
  // allocates: the path is run armed to fail an allocation, and none is made;
  // the loop still returns and every item arrives once, in order.
  skein::Queue<Item> q(4);
  for (long i = 0; i < 4; ++i) q.put(Item(i));
  std::vector<long> taken, ok;
  taken.reserve(128);
  ok.reserve(128);
  std::atomic<int> failed{0};
  fi::new_run();
  g_watchdog->arm("regression: Queue::async_put on an EventLoop", 1);
  {
    skein::EventLoop loop;
    auto p = loop.spawn([&] { return racing_putter(q, taken, ok, failed); });
    loop.run();  // must return: the coroutine is done
    REQUIRE(p.ready());
    p.get();
  }
  g_watchdog->disarm();
  CHECK(failed.load() == 0);
  CHECK_FALSE(fi::hit());
  std::vector<long> out = taken, expected = {0, 1, 2, 3};
  while (auto v = q.try_get()) out.push_back(v->id);
  expected.insert(expected.end(), ok.begin(), ok.end());
  CHECK(out == expected);  // FIFO; the failed put's item never appeared
}

namespace {

/// Fails the first allocation made inside the inner awaiter's await_suspend.
/// It refers to a named awaiter: g++ 12 copies a prvalue awaiter bytewise
/// when it initializes an aggregate member inside a co_await operand (even a
/// non-copyable one), which leaves skein's self-pointers (the timer node's
/// owner, a waiter's slot) pointing at the stale copy.
template <class Inner>
struct FailInSuspend {
  Inner& inner;
  bool await_ready() { return inner.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) {
    fi::arm_this_thread(1);
    try {
      bool r = inner.await_suspend(h);  // may already be resumed elsewhere: touch nothing after
      fi::disarm_this_thread();
      return r;
    } catch (...) {
      fi::disarm_this_thread();
      throw;
    }
  }
  void await_resume() { inner.await_resume(); }
};

skein::Promise<void> failing_sleeper(std::atomic<int>& slept, std::atomic<int>& failed) {
  try {
    auto op = skein::async_sleep(300ms);
    co_await FailInSuspend<skein::SleepOperation>{op};
    slept.fetch_add(1);
  } catch (const std::bad_alloc&) {
    failed.fetch_add(1);
  }
}

}  // namespace

TEST_CASE("regression: async_sleep on an EventLoop when the timer heap cannot grow") {
  // SleepOperation::await_suspend counted the coroutine as suspended on the
  // loop before TimerService::add() threw (its heap could not grow): the
  // count was never given back and EventLoop::run() never returned.
  // Sleepers pile up until one of them needs the heap to grow.
  skein::EventLoop loop;
  std::atomic<int> slept{0}, failed{0};
  std::vector<skein::Promise<void>> ps;
  ps.reserve(1 << 16);
  fi::new_run();
  g_watchdog->arm("regression: async_sleep on an EventLoop", 1);
  int started = 0;
  while (failed.load() == 0 && started < (1 << 16)) {
    for (int k = 0; k < 64; ++k, ++started) ps.push_back(loop.spawn([&] { return failing_sleeper(slept, failed); }));
    loop.poll();
  }
  loop.run();  // must return once every sleeper is back
  g_watchdog->disarm();
  CHECK(failed.load() >= 1);  // the sleepers that needed the heap to grow
  CHECK(slept.load() + failed.load() == started);
  for (auto& p : ps) CHECK(p.ready());
}

TEST_CASE("regression: Context::with_timeout when the timer heap cannot grow leaks nothing") {
  // ContextState::set_deadline kept the Deadline before TimerService::add()
  // threw: neither the timer nor the context would ever drop it (a leak, found
  // by LSan in the deadline sweep; counted here too).
  { auto warm = skein::Context::with_timeout(1h); }  // the timer heap exists
  std::vector<skein::Context> held;
  held.reserve(1 << 17);
  bool hit = false;
  const long live = fi::live_blocks();
  for (int i = 0; i < (1 << 17) && !hit; ++i) {
    fi::new_run();
    // with_timeout allocates the context, its stop state and the Deadline; a
    // 4th allocation is the timer heap growing.
    auto a = attempt(Where::this_thread, 4, [&] { held.push_back(skein::Context::with_timeout(1h)); });
    CHECK(a.unexpected.empty());
    hit = a.hit;
    CHECK(a.bad_alloc == a.hit);
  }
  held.clear();
  CHECK(hit);
  CHECK(fi::live_blocks() == live);
}

TEST_CASE("regression: Pool keeps or reports a worker's error when keeping it runs out of memory") {
  // Pool::work stored the error (errors_.push_back) inside its catch block:
  // a bad_alloc there ended the worker's coroutine, the item was never
  // counted done and wait() hung.
  const auto before = reports_now();
  fi::new_run();
  g_watchdog->arm("regression: Pool error kept", 1);
  int rethrown = 0;
  {
    // The worker arms its own thread: the next allocation there — keeping the error — fails.
    skein::Pool<int> pool(
        [](int i) {
          fi::arm_this_thread(1);
          throw Boom{i};
        },
        1, 2);
    for (int i = 0; i < 2; ++i) {
      pool.submit(i);
      try {
        pool.wait();
      } catch (const Boom&) {
        ++rethrown;
      }
      CHECK(pool.pending() == 0);
    }
    pool.close();
  }
  g_watchdog->disarm();
  CHECK(fi::hit());
  CHECK(rethrown + reports_since(before).boom == 2);
  CHECK(reports_since(before).other == 0);
}

TEST_CASE("regression: Pool reports every repeated error when there is no memory for a RepeatedError") {
  // Errors alike are kept once with a count, and reported as one
  // RepeatedError; building it allocates (its message). Out of memory, the
  // kept error is reported once per item instead: none goes uncounted.
  const auto before = reports_now();
  int rethrown = 0;
  {
    skein::Pool<int> pool([](int) { throw StdBoom{}; }, 1, 0);
    for (int i = 0; i < 4; ++i) pool.submit(i);
    REQUIRE(test::eventually([&] { return pool.pending() == 0; }));
    fi::new_run();
    g_watchdog->arm("regression: Pool RepeatedError out of memory", 1);
    fi::arm_this_thread(1);
    try {
      pool.wait();  // rethrows the first StdBoom; its 3 repeats are reported
    } catch (const StdBoom&) {
      rethrown += 1;
    }
    fi::disarm_this_thread();
    g_watchdog->disarm();
    CHECK(fi::hit());
    pool.close();
  }
  CHECK(rethrown == 1);
  CHECK(reports_since(before).boom == 3);
  CHECK(reports_since(before).other == 0);
}

namespace {

struct Big {  // one per std::deque block: every item queued allocates
  explicit Big(int i) noexcept : id(i) {}
  int id;
  char pad[600] = {};
};

/// pool.async_submit that finds the queue full, then finds room just as it
/// links itself: its enqueue places the item and allocates, and that fails.
struct SubmitAfterRoomAppears {
  skein::Pool<Big>::SubmitOperation& op;  // a named local: see FailInSuspend
  std::function<void()> make_room;
  bool await_ready() { return op.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) {
    make_room();
    fi::arm_this_thread(1);
    try {
      bool r = op.await_suspend(h);
      fi::disarm_this_thread();
      return r;
    } catch (...) {
      fi::disarm_this_thread();
      throw;
    }
  }
  void await_resume() { op.await_resume(); }
};

skein::Promise<bool> submit_racing_a_worker(skein::Pool<Big>& pool, std::function<void()> make_room) {
  auto op = pool.async_submit(Big(2));
  try {
    co_await SubmitAfterRoomAppears{op, std::move(make_room)};
  } catch (const std::bad_alloc&) {
    co_return false;
  }
  co_return true;
}

}  // namespace

TEST_CASE("regression: Pool::async_submit when room appears as it queues the item (Pool async_submit)") {
  // SubmitOperation counted the item as pending in await_ready and undid that
  // on an error in await_ready or await_resume, not in await_suspend, whose
  // enqueue could throw std::bad_alloc: the count leaked and wait() hung.
  // Since the queue's buffer is a ring, that enqueue allocates nothing: run
  // armed to fail an allocation, it makes none, and wait() returns.
  std::atomic<bool> entered0{false}, entered1{false}, release0{false}, release1{false};
  skein::Pool<Big> pool(
      [&](Big b) {
        auto& entered = b.id == 0 ? entered0 : entered1;
        auto& release = b.id == 0 ? release0 : release1;
        entered.store(true);
        if (b.id < 2)
          while (!release.load()) std::this_thread::yield();
      },
      1, 1);
  pool.submit(Big(0));  // the worker holds it
  REQUIRE(test::eventually([&] { return entered0.load(); }));
  pool.submit(Big(1));  // the queue is full
  fi::new_run();
  g_watchdog->arm("regression: Pool::async_submit out of memory", 1);
  auto queued = submit_racing_a_worker(pool, [&] {
    release0.store(true);  // the worker takes item 1: room
    while (!entered1.load()) std::this_thread::yield();
  });
  REQUIRE(queued.ready());
  CHECK_FALSE(fi::hit());
  CHECK(queued.get() == true);  // queued: nothing to fail
  release1.store(true);
  pool.wait();  // every submission counted is processed: no hang
  CHECK(pool.pending() == 0);
  pool.close();
  g_watchdog->disarm();
}

TEST_CASE("regression: reporting an unobserved error does not copy the handler (unhandled-error handler)") {
  // report_unhandled() is noexcept and took a copy of the std::function; a
  // handler too big for its small buffer (this one captures a shared_ptr) is
  // copied on the heap, so a failed copy was std::terminate. Now the report
  // shares the handler and allocates nothing: the armed failure stays unused.
  const auto before = reports_now();
  auto p = skein::run([] { throw Boom{7}; });
  REQUIRE(p.wait_for(30s));
  fi::new_run();
  fi::arm_this_thread(1);
  p = skein::Promise<void>();  // the last handle: the error is reported here
  fi::disarm_this_thread();
  CHECK(!fi::hit());
  CHECK(reports_since(before).boom == 1);
  CHECK(quiesce());
}

TEST_CASE("regression: a Resolver destroyed unsettled out of memory (~Resolver)") {
  // ~Resolver rejects its promise with Cancelled("promise abandoned: ..."),
  // whose message is allocated: in a destructor, std::terminate.
  skein::Promise<int> p;
  fi::new_run();
  {
    skein::Resolver<int> r;
    p = r.promise();
    fi::arm_this_thread(1);
  }
  fi::disarm_this_thread();
  CHECK(fi::hit());
  REQUIRE(p.ready());
  CHECK_THROWS_AS(p.get(), std::bad_alloc);  // no memory for the Cancelled: fails with bad_alloc instead
}

TEST_CASE("regression: work() finishing while its EventLoop is destroyed (EventLoop dropped without run)") {
  // Not an allocation failure; found by that sweep. work()'s coroutine posts
  // the outcome to the loop, falling back to settling it itself if post()
  // throws Closed. A loop that stopped just after post() looked dropped the
  // posted outcome unrun: the promise failed with "promise abandoned"
  // (about 1 in 1000 such races) although work() documents "never lost".
  int lost = 0;
  for (int i = 0; i < test::scaled(5000); ++i) {
    skein::Promise<int> wp;
    {
      skein::EventLoop loop;
      wp = skein::work(loop, plus_one, 2);
    }
    try {
      if (wp.get() != 3) ++lost;
    } catch (...) {
      ++lost;
    }
  }
  CHECK(lost == 0);
  CHECK(quiesce());
}

TEST_CASE("regression: EventLoop construction out of memory (EventLoop() was noexcept)") {
  // The loop's scope owns a skein::stop_source, whose shared state is allocated.
  fi::new_run();
  auto a = attempt(Where::this_thread, 1, [] { skein::EventLoop loop; });
  CHECK(a.hit);
  CHECK(a.bad_alloc);
  CHECK(a.unexpected.empty());
}

TEST_CASE("regression: ThreadPool construction, and idle workers, when memory runs out") {
  // PoolCore's constructor registered the pool (a vector push_back) after
  // starting its threads and outside its try block: a bad_alloc there left
  // joinable threads behind, and std::thread's destructor called terminate.
  // And the workers' park() and become_spare() (noexcept) grew the idle and
  // spare lists: a bad_alloc there was a terminate on a pool thread. Both
  // are sweeps of pool creation (every allocation fails once).
  CHECK(explore("ThreadPool(1) construction", Where::this_thread,
                [](long n) { return attempt(Where::this_thread, n, [] { skein::ThreadPool pool(1); }); }) > 0);
  CHECK(explore("ThreadPool(2) with a blocking task", Where::any_thread, [](long n) {
          return attempt(Where::any_thread, n, [] {
            skein::ThreadPool pool(2);
            skein::run(pool, [] { skein::sleep_for(1ms); }).get();  // hands off: a spare thread
          });
        }) > 0);
}

namespace {

/// A task of `pool` that arms its own thread and then blocks in wg.wait():
/// the first allocation of the slot hand-off fails. Returns the task's
/// outcome; afterwards the pool must still run tasks.
Outcome block_in_task_failing_hand_off(skein::ThreadPool& pool) {
  skein::WaitGroup wg;
  wg.add(1);
  fi::new_run();
  auto t = skein::run(pool, [&wg] {
    fi::arm_this_thread(1);
    try {
      wg.wait();
    } catch (...) {
      fi::disarm_this_thread();
      throw;
    }
    fi::disarm_this_thread();
  });
  const bool early = t.wait_for(5s);  // it fails without waiting for done()
  wg.done();
  REQUIRE(t.wait_for(30s));
  CHECK(early);
  CHECK(fi::hit());
  auto probe = skein::run(pool, plus_one, 1);
  REQUIRE_MESSAGE(probe.wait_for(30s), "the pool no longer runs tasks");
  CHECK(probe.get() == 2);
  Outcome o = outcome_of(t);
  if (o == Outcome::other) {
    try {
      t.wait();
    } catch (const skein::UsageError&) {
      MESSAGE("the task failed with UsageError");
    } catch (...) {
    }
  }
  return o;
}

}  // namespace

TEST_CASE("regression: a blocking wait in a task when the spare thread cannot be allocated (hand_off)") {
  // hand_off caught the failure to start a thread as std::exception and
  // turned std::bad_alloc into UsageError("... a new thread could not be
  // started (std::bad_alloc) ..."): out of memory is no usage error.
  g_watchdog->arm("regression: hand_off out of memory", 1);
  skein::ThreadPool pool(1);
  CHECK(block_in_task_failing_hand_off(pool) == Outcome::bad_alloc);
  g_watchdog->disarm();
}

TEST_CASE("regression: a blocking wait at the pool's thread bound when the refusal's message cannot be allocated") {
  // hand_off gave up the worker's slot, then built the UsageError message:
  // a bad_alloc there left the slot with nobody (with one slot, the pool
  // never ran a task again, and its destructor waited forever).
  g_watchdog->arm("regression: hand_off at the bound", 1);
  skein::ThreadPool pool(1, 1);
  CHECK(block_in_task_failing_hand_off(pool) == Outcome::bad_alloc);
  g_watchdog->disarm();
}

TEST_CASE("known limitation: a Pool worker whose coroutine frame cannot be allocated" * doctest::skip()) {
  // Left out of the sweeps (see "=== Pool"): the worker's run() task fails
  // with bad_alloc on the pool thread after the constructor returned; the
  // Pool keeps accepting items that nobody will process, so submit() blocks
  // once the queue is full and wait() never returns. Run with --no-skip to
  // see the watchdog fire; fixing it is a design change.
  explore("Pool with a worker that cannot start", Where::any_thread, [](long n) {
    return attempt(Where::any_thread, n, [] {
      skein::Pool<int> pool([](int) {}, 1, 1);
      for (int i = 0; i < 4; ++i) pool.submit(i);
      pool.wait();
    });
  });
}

// === main: the figures ==================================================================

int main(int argc, char** argv) {
  install_counting_handler();
  // Process-wide singletons are created before any run, so that every run
  // starts from the same state (the ThreadPool scenario covers pool creation).
  (void)skein::default_pool();
  (void)skein::detail::timer_service().pending();
  RunWatchdog watchdog;
  g_watchdog = &watchdog;

  doctest::Context context(argc, argv);
  const int rc = context.run();

  if (!g_figures.empty()) {
    long total = 0;
    std::printf("\nallocation-failure injection points explored (N = 1..points each reached the failure):\n");
    std::printf("  %-52s %-12s %7s %10s\n", "scenario", "mode", "points", "bad_alloc");
    for (auto& f : g_figures) {
      std::printf("  %-52s %-12s %7ld %10ld\n", f.scenario.c_str(), where_name(f.where), f.points, f.bad_alloc);
      total += f.points;
    }
    std::printf("  total: %ld injection points in %zu sweeps\n", total, g_figures.size());
  }
  if (context.shouldExit()) return rc;
  return rc;
}
