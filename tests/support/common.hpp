#pragma once
// Shared test helpers: the skein include (split or single header), a latch-like
// Event, a watchdog that fails a hung test loudly, and scaled iteration counts.

#ifdef SKEIN_TEST_SINGLE_HEADER
#include <skein/skein.hpp>  // from single_include/
#else
#include <skein/skein.hpp>
#endif

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>

#if defined(__linux__)
#include <sys/syscall.h>
#endif
#if !defined(_WIN32)
#include <unistd.h>  // dup, dup2 (StderrCapture); syscall (this_thread_tid)
#endif

namespace test {

using namespace std::chrono_literals;

/// Raises `peak` to `v` if `v` is larger (a high-water mark shared by threads).
inline void update_max(std::atomic<int>& peak, int v) {
  int p = peak.load();
  while (v > p && !peak.compare_exchange_weak(p, v)) {
  }
}

/// Iteration counts shrink under sanitizers (set SKEIN_TEST_SCALE=10 to divide by 10).
inline int scaled(int n) {
  static int div = [] {
    const char* s = std::getenv("SKEIN_TEST_SCALE");
    int d = s ? std::atoi(s) : 1;
    return d > 0 ? d : 1;
  }();
  int r = n / div;
  return r > 0 ? r : 1;
}

/// A manual-reset event for plain threads (std::latch-like, but reusable in checks).
class Event {
public:
  void set() {
    // Notify under the lock: a waiter that sees set_ may destroy the Event at once.
    std::lock_guard lk(mu_);
    set_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return set_; });
  }
  bool wait_for(std::chrono::milliseconds d) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, d, [&] { return set_; });
  }
  bool is_set() {
    std::lock_guard lk(mu_);
    return set_;
  }

private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

/// `a.wait(old)`, except where libstdc++'s atomic wait can lose a wake-up
/// (before GCC 13 without a futex, as on MinGW-w64: it reads the value before
/// locking the mutex it sleeps under): there it polls.
template <class T>
void atomic_wait(const std::atomic<T>& a, T old) {
#if defined(__GLIBCXX__) && defined(_WIN32) && _GLIBCXX_RELEASE < 13
  while (a.load() == old) std::this_thread::sleep_for(std::chrono::microseconds(100));
#else
  a.wait(old);
#endif
}

/// Aborts the process with a message if the scope is not left within `limit`:
/// a hung concurrency test must fail, not stall CI.
class Watchdog {
public:
  explicit Watchdog(std::chrono::seconds limit, const char* what = "test")
      : thread_([this, limit, what] {
          if (!done_.wait_for(limit)) {
            std::fprintf(stderr, "WATCHDOG: %s did not finish within %lld s\n", what,
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~Watchdog() {
    done_.set();
    thread_.join();
  }

private:
  Event done_;
  std::thread thread_;
};

/// The calling thread's id, for blocked_in_kernel(); never 0, which tests use
/// for "not published yet" (spinning until the id is nonzero). Elsewhere than
/// Linux a per-thread number: blocked_in_kernel() cannot look it up anyway.
/// (It returned 0 there, and those tests spun forever under Wine.)
inline long this_thread_tid() {
#if defined(__linux__)
  return static_cast<long>(::syscall(SYS_gettid));
#else
  static std::atomic<long> next{1};
  thread_local const long id = next.fetch_add(1);
  return id;
#endif
}

/// Waits (up to `limit`) until thread `tid` of this process sleeps in a futex
/// wait — a blocked skein waiter parks there — and says whether it saw it.
/// For tests that must act only once a wait is registered (Linux: reads
/// /proc/self/task/TID/stat and wchan; elsewhere it sleeps 20 ms and says no).
inline bool blocked_in_kernel(long tid, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
#if defined(__linux__)
  const std::string dir = "/proc/self/task/" + std::to_string(tid) + "/";
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    std::ifstream stat(dir + "stat"), wchan(dir + "wchan");
    std::string s, w;
    std::getline(stat, s);
    std::getline(wchan, w);
    const auto paren = s.rfind(')');
    if (paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] == 'S' &&
        w.find("futex") != std::string::npos)
      return true;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return false;
#else
  (void)tid;
  (void)limit;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return false;
#endif
}

/// For a CHECK or REQUIRE that a thread is parked before the test acts: where
/// blocked_in_kernel() can tell (Linux), its answer; elsewhere it cannot see
/// the thread (it waited 20 ms for it), so the check passes vacuously rather
/// than failing on a system that gives no way to look.
inline bool parked_or_unknowable(long tid) {
  const bool seen = blocked_in_kernel(tid);
#if defined(__linux__)
  return seen;
#else
  (void)seen;
  return true;
#endif
}

/// Calls `pause()` between tests of `pred` until it holds or `limit` passes;
/// returns whether it holds.
template <class Pred, class Pause>
bool poll_until(Pred pred, std::chrono::steady_clock::duration limit, Pause pause) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    pause();
  }
  return true;
}

/// Polls `pred` until true or `limit` passes (for eventually-true statistics only).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  return poll_until(pred, limit, [] { std::this_thread::sleep_for(1ms); });
}

/// Spins on the calling thread (std::this_thread::yield, never one of skein's
/// scheduling points) until `pred` holds or `limit` passes; returns whether
/// it holds. For tests of the watchdog, whose spinning tasks must not hang
/// the suite if the report they wait for never comes.
template <class Pred>
bool spin_until(Pred pred, std::chrono::seconds limit = std::chrono::seconds(60)) {
  return poll_until(pred, limit, [] { std::this_thread::yield(); });
}

/// Sends the process's stderr (file descriptor 2) to a temporary file for the
/// scope, so a test can check what skein printed there. Not on Windows:
/// msvcrt's stderr does not follow dup2, and `available()` is false there.
class StderrCapture {
public:
  StderrCapture() {
#if !defined(_WIN32)
    fd_ = mkstemp(path_);
    if (fd_ < 0) return;
    std::fflush(stderr);
    saved_ = dup(2);
    dup2(fd_, 2);
#endif
  }
  ~StderrCapture() {
#if !defined(_WIN32)
    if (fd_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    close(fd_);
    std::remove(path_);
#endif
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  [[nodiscard]] bool available() const noexcept { return fd_ >= 0; }

  /// What reached stderr so far.
  [[nodiscard]] std::string text() const {
    std::fflush(stderr);
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  /// Waits (up to `limit`) until `needle` has reached stderr; returns the
  /// text then (or at the limit).
  [[nodiscard]] std::string wait_for(const std::string& needle,
                                     std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) const {
    std::string t;
    eventually([&] { return (t = text()).find(needle) != std::string::npos; }, limit);
    return t;
  }

private:
  char path_[32] = "/tmp/skein-stderr-XXXXXX";
  int fd_ = -1;
  int saved_ = -1;
};

}  // namespace test
