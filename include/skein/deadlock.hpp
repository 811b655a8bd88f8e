#pragma once
/// Deadlock detection, the hogging-task watchdog and thread dumps
/// (docs/api/deadlock.md): set_deadlock_options, set_watchdog_options,
/// dump_threads, dump_text, dump_on_signal, and the Deadlock error a failed
/// wait throws.

#include "detail/config.hpp"  // first: the C++20 check

#include <csignal>
#include <cstddef>
#include <string>
#include <vector>

#include "detail/deadlock_monitor.hpp"
#include "detail/park_registry.hpp"
#include "errors.hpp"

namespace skein {

/// Replaces the detector's settings. Enabling it (the default, unless the
/// environment variable SKEIN_DEADLOCK is "off") makes every thread publish
/// its parks and starts the monitor thread with the first park.
inline void set_deadlock_options(DeadlockOptions o) {
  auto& m = detail::DeadlockMonitor::get();
  const bool on = o.enabled;
  {
    std::lock_guard lk(m.mu);
    m.options = std::move(o);
    ++m.generation;
  }
  m.cv.notify_all();
  if (on) detail::g_park_tracking.store(1, std::memory_order_relaxed);
}

/// The detector's current settings.
inline DeadlockOptions deadlock_options() {
  auto& m = detail::DeadlockMonitor::get();
  std::lock_guard lk(m.mu);
  return m.options;
}

/// Replaces the watchdog's settings: a task that runs on a pool thread for
/// longer than `threshold` without reaching a scheduling point is reported,
/// and (with `rescue`) another thread takes over its pool's other work until
/// it yields.
inline void set_watchdog_options(WatchdogOptions o) {
  auto& m = detail::DeadlockMonitor::get();
  {
    std::lock_guard lk(m.mu);
    m.watchdog = std::move(o);
    ++m.generation;
  }
  m.cv.notify_all();
  detail::ensure_deadlock_monitor();
}

/// The watchdog's current settings.
inline WatchdogOptions watchdog_options() {
  auto& m = detail::DeadlockMonitor::get();
  std::lock_guard lk(m.mu);
  return m.watchdog;
}

/// Every thread skein knows about (those that have parked at least once), as
/// the deadlock report lists them. A thread that parks from now on is listed
/// from its first park.
inline std::vector<ThreadDump> dump_threads() {
  detail::g_park_tracking.store(1, std::memory_order_relaxed);
  return detail::dump_all_threads();
}

/// Every live task, with its state (empty unless skein::trace::track_tasks
/// is on: tasks are tracked through the tracing hooks).
inline std::vector<TaskDump> dump_tasks() { return detail::dump_all_tasks(); }

/// Every thread and (with tasks tracked) every task now, as one value; its
/// text() reads like the deadlock report, without Go's message.
struct Dump {
  std::vector<ThreadDump> threads;
  std::vector<TaskDump> tasks;
  std::size_t live_tasks = 0;  ///< goroutines()
  [[nodiscard]] std::string text() const {
    std::string s = "live tasks: " + std::to_string(live_tasks) + "\n";
    for (auto& t : threads) s += "  " + detail::thread_line(t) + "\n";
    for (auto& t : tasks) s += "  " + t.text() + "\n";
    return s;
  }
};
inline Dump dump() {
  Dump d;
  d.threads = dump_threads();
  d.tasks = dump_tasks();
  d.live_tasks = detail::live_tasks_now();
  return d;
}

/// dump_threads() and dump_tasks() as text, one line each, with the number
/// of live tasks.
inline std::string dump_text() { return dump().text(); }

/// For a script host (docs/script.md): while alive, a blocking wait of this
/// thread that parks asks `describe(ctx, buf, size)` where the script is (its
/// function and line), and the dump and the deadlock report show it. Called on
/// the blocking thread, before it parks; it must not block or throw.
class WaitSiteScope {
public:
  WaitSiteScope(void (*describe)(void* ctx, char* buf, std::size_t size) noexcept, void* ctx) noexcept
      : saved_(detail::tls_wait_site) {
    detail::tls_wait_site = detail::WaitSite{describe, ctx};
  }
  ~WaitSiteScope() { detail::tls_wait_site = saved_; }
  WaitSiteScope(const WaitSiteScope&) = delete;
  WaitSiteScope& operator=(const WaitSiteScope&) = delete;

private:
  detail::WaitSite saved_;
};

/// Writes dump_text() to stderr whenever the process receives `sig` (e.g.
/// SIGQUIT, as Go does), from the monitor thread. Linux only; elsewhere it
/// throws UsageError. The handler itself only posts a semaphore.
inline void dump_on_signal(int sig) {
#if defined(SKEIN_DETAIL_POSIX_SIGNALS)
  auto& m = detail::DeadlockMonitor::get();
  {
    std::lock_guard lk(m.mu);
    if (!m.sem_ready.load(std::memory_order_relaxed)) {
      if (sem_init(&m.signal_sem, 0, 0) != 0) throw UsageError("dump_on_signal: sem_init failed");
      m.sem_ready.store(true, std::memory_order_release);
    }
  }
  detail::g_park_tracking.store(1, std::memory_order_relaxed);
  struct sigaction sa {};
  sa.sa_handler = [](int) {
    auto& mon = detail::DeadlockMonitor::get();
    mon.dump_requested.store(true, std::memory_order_release);
    sem_post(&mon.signal_sem);
  };
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(sig, &sa, nullptr) != 0)
    throw UsageError("dump_on_signal: cannot handle signal " + std::to_string(sig));
  detail::ensure_deadlock_monitor();
  m.cv.notify_all();
#else
  (void)sig;
  throw UsageError("dump_on_signal: not supported on this system (Linux only)");
#endif
}

}  // namespace skein
