#pragma once
// The deadlock detector and the thread dump (docs/api/deadlock.md).
//
// A monitor thread, started by the first thread that parks without a
// deadline, looks every `period` at the ThreadRecords (park_registry.hpp). It
// declares a deadlock only when, at one instant, every thread of the process
// is parked in skein without a deadline and nobody has woken it: then nothing
// can ever run again, because every skein wake-up comes from a running thread
// (a task, the timer thread firing a timer, an EventLoop's thread, a plain
// thread calling release or put, an I/O thread). It proves that instant:
//   1. a pass over the records finds every one quiet (parked on its word,
//      which still holds its quiet value);
//   2. the process has exactly that many threads, plus the monitor (and the
//      threads the application declared foreign): no thread skein does not
//      know about exists, which could release something;
//   3. a second pass finds every record quiet with the same sequence number,
//      so each was parked and unwoken from its first look to its second,
//      which brackets an instant when all were;
//   4. the next check, a period later, finds the same sequence numbers (a
//      thread created and gone between the passes would have woken somebody).
// A timed wait, a timer armed, a thread in a system call, an I/O thread, a
// task running or queued, a ThreadPool's thread inside a BlockingRegion:
// each is a running or unknown thread, so none is ever reported. Linux only
// (step 2 reads /proc/self/stat); elsewhere it never reports.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "error_types.hpp"
#include "park_registry.hpp"
#include "thread_name.hpp"

#if defined(__linux__)
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>
#define SKEIN_DETAIL_POSIX_SIGNALS 1
#endif
#include "win32.hpp"  // the process's threads, from a Toolhelp snapshot (Windows)

// ThreadSanitizer runs a background thread of its own, which never touches
// skein: the count of threads allows for it.
#if defined(__SANITIZE_THREAD__)
#define SKEIN_DETAIL_TSAN_THREADS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SKEIN_DETAIL_TSAN_THREADS 1
#endif
#endif
#ifndef SKEIN_DETAIL_TSAN_THREADS
#define SKEIN_DETAIL_TSAN_THREADS 0
#endif

namespace skein {

/// One thread in a dump.
struct ThreadDump {
  long id = 0;                   ///< the OS thread id (Linux), else 0
  std::string name;              ///< the thread's name (skein-worker, skein-timer, or the application's)
  std::string state;             ///< "blocked", "idle" or "running" (see docs/api/deadlock.md)
  std::string waits_on;          ///< a blocked thread's wait ("Queue::get"), an idle one's role
  const void* object = nullptr;  ///< the primitive a blocked thread waits on
  double seconds = 0;            ///< how long it has been parked
  bool pool_thread = false;      ///< a ThreadPool's thread
  std::string where;             ///< a blocked thread's script location, from its host (WaitSiteScope)
};

/// One live task in a dump (skein::trace::track_tasks must be on).
struct TaskDump {
  std::uint64_t id = 0;          ///< its trace id
  std::uint64_t parent = 0;      ///< the task that started it (0: a thread outside any task)
  std::string name;              ///< its name (skein::named), or empty
  std::string where;             ///< where it was started: "file.cpp:42", or empty
  std::string state;             ///< "running", "blocked" (its thread, in a skein wait), "waiting" (suspended), "ready"
  long thread_id = 0;            ///< running or blocked: the OS thread id
  std::string waits_on;          ///< blocked or waiting: the wait's kind ("skein::Queue<int>", "Queue::get")
  const void* object = nullptr;  ///< blocked or waiting: the primitive
  double seconds = 0;            ///< how long in this state
  std::vector<const void*> contexts;  ///< its Context and the Context's ancestors, innermost first
  [[nodiscard]] std::string text() const;
};

/// What the detector saw: every thread skein knows about, and the live tasks.
/// (skein::dump() returns the same for any moment.)
struct DeadlockReport {
  std::vector<ThreadDump> threads;
  std::vector<TaskDump> tasks;  ///< every live task, if trace::track_tasks is on
  std::size_t live_tasks = 0;   ///< goroutines() when the deadlock was found
  /// The report as Go prints it: the message, then one line per thread.
  [[nodiscard]] std::string text() const;
};

/// What happens once a deadlock is reported (after the report is printed).
enum class DeadlockAction {
  fail_waits,    ///< every blocked wait of a thread outside the pools throws Deadlock
  exit_process,  ///< std::_Exit(2), as Go's runtime does
  ignore,        ///< nothing more (the same deadlock is not reported again)
};

using DeadlockHandler = std::function<DeadlockAction(const DeadlockReport&)>;

/// The detector's settings (set_deadlock_options).
struct DeadlockOptions {
  bool enabled = true;                    ///< look for deadlocks at all
  std::chrono::milliseconds period{100};  ///< how often; a deadlock is reported after 2-3 periods
  bool print = true;                      ///< write the report to stderr
  unsigned foreign_threads = 0;           ///< threads skein may ignore (they never release anything)
  DeadlockHandler handler;                ///< null: DeadlockAction::fail_waits
};

/// A task that held a pool thread too long without a scheduling point (the watchdog).
struct HogReport {
  long thread_id = 0;       ///< the OS thread id (Linux), else 0
  std::string thread_name;  ///< the thread's name
  double seconds = 0;       ///< how long the task has run without a scheduling point
  bool rescued = false;     ///< another thread took over the pool's other work meanwhile
  std::string why_not;      ///< if not rescued: why (the pool's thread bound, shutdown)
  std::string task;         ///< the task running there (its TaskDump::text()), if tasks are tracked
  [[nodiscard]] std::string text() const;
};

/// The watchdog's settings (set_watchdog_options).
struct WatchdogOptions {
  bool enabled = true;                            ///< look for hogging tasks at all
  std::chrono::milliseconds threshold{100};       ///< how long a task may run without a scheduling point
  bool rescue = true;                             ///< start (or wake) a thread for the pool's other work
  bool print = false;                             ///< one line to stderr per event (SKEIN_WATCHDOG=print)
  std::function<void(const HogReport&)> handler;  ///< called on the monitor thread for each event
};

namespace detail {

/// The pools' part of the watchdog, set by pool_core.hpp: looks at every
/// pool's threads, reports a task holding one longer than the threshold and
/// rescues its pool's other work. Called on the monitor thread.
inline std::atomic<void (*)(const WatchdogOptions&)> g_watchdog_fn{nullptr};

inline std::string describe_ptr(const void* p) {
  char b[32];
  std::snprintf(b, sizeof b, "%p", p);
  return b;
}

inline std::string thread_os_name(long tid) {
#if defined(__linux__)
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
  std::string s;
  if (FILE* f = std::fopen(path, "r")) {
    char b[64];
    if (std::fgets(b, sizeof b, f)) s = b;
    std::fclose(f);
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
#else
  (void)tid;
  return {};
#endif
}

/// A thread's scheduling state and CPU time, from /proc (Linux): `state` is
/// 'R' (running or runnable), 'S' or 'D' (asleep in the kernel), ...;
/// `cpu` its user and system time in clock ticks. False where unknown.
struct ThreadCpu {
  char state = '?';
  long long cpu = 0;
};
/// Reads a /proc stat file and puts the start of each field in `at` (index
/// = the field's number, 3 up to `last`: numbered as proc(5) does, after the
/// command name's closing parenthesis, which may itself hold spaces).
/// False if the file or a field is missing.
inline bool read_proc_stat(const char* path, char (&buf)[1024], const char* (&at)[21], int last) noexcept {
#if defined(__linux__)
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* p = nullptr;
  for (ssize_t i = n - 1; i >= 0 && !p; --i)
    if (buf[i] == ')') p = buf + i + 1;
  if (!p) return false;
  for (int field = 3; field <= last; ++field) {
    while (*p == ' ') ++p;
    if (!*p) return false;
    at[field] = p;
    while (*p && *p != ' ') ++p;
  }
  return true;
#else
  (void)path, (void)buf, (void)at, (void)last;
  return false;
#endif
}

inline bool read_thread_cpu(long tid, ThreadCpu& out) noexcept {
  if (tid <= 0) return false;
  char path[64], buf[1024];
  const char* at[21] = {};
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
  if (!read_proc_stat(path, buf, at, 15)) return false;  // 3 state, 14 utime, 15 stime
  out.state = *at[3];
  out.cpu = std::strtoll(at[14], nullptr, 10) + std::strtoll(at[15], nullptr, 10);
  return true;
}

/// Clock ticks per second of read_thread_cpu's `cpu`.
inline long cpu_ticks_per_second() noexcept {
#if defined(__linux__)
  static const long t = ::sysconf(_SC_CLK_TCK);
  return t > 0 ? t : 100;
#else
  return 100;
#endif
}

/// Threads in the process, or -1 where unknown.
inline long process_thread_count() noexcept {
#if defined(_WIN32)
  struct ThreadEntry {  // THREADENTRY32
    unsigned long size, usage, thread_id, owner_process_id;
    long base_priority, delta_priority;
    unsigned long flags;
  };
  void* snap = CreateToolhelp32Snapshot(0x4 /* TH32CS_SNAPTHREAD */, 0);
  if (snap == reinterpret_cast<void*>(static_cast<std::intptr_t>(-1))) return -1;  // INVALID_HANDLE_VALUE
  const unsigned long self = GetCurrentProcessId();
  ThreadEntry e{};
  e.size = sizeof e;
  auto* entry = reinterpret_cast<tagTHREADENTRY32*>(&e);
  long n = 0;
  for (int more = Thread32First(snap, entry); more; more = Thread32Next(snap, entry))
    if (e.owner_process_id == self) ++n;
  CloseHandle(snap);
  return n > 0 ? n : -1;
#else
  char buf[1024];
  const char* at[21] = {};
  if (!read_proc_stat("/proc/self/stat", buf, at, 20)) return -1;  // 20 num_threads
  return std::strtol(at[20], nullptr, 10);
#endif
}

/// goroutines(), set by task_host.hpp (which this header cannot include).
inline std::atomic<long (*)()> g_live_tasks_fn{nullptr};
/// Every live task, set by <skein/trace.hpp> while it tracks tasks.
inline std::atomic<std::vector<TaskDump> (*)()> g_task_dump_fn{nullptr};
inline std::vector<TaskDump> dump_all_tasks() {
  auto fn = g_task_dump_fn.load(std::memory_order_acquire);
  return fn ? fn() : std::vector<TaskDump>{};
}

inline const char* park_kind_role(ParkKind k) noexcept {
  switch (k) {
    case ParkKind::idle_worker: return "no task to run";
    case ParkKind::idle_timer: return "timer thread, no timer armed";
    case ParkKind::idle_loop: return "EventLoop::run, waiting for posts";
    case ParkKind::other: return "a hand-over in progress";
    default: return "";
  }
}

/// A consistent look at one record.
struct RecordLook {
  ThreadRecord* rec;
  std::uint64_t seq;
  bool quiet;
  ParkKind kind;
  BlockInfo block;
  Clock::time_point since;
  bool pool_thread;
  long tid;
  std::uint64_t uid;
  char site[sizeof(ThreadRecord::site)];
};

inline RecordLook look_at(ThreadRecord* r) noexcept {
  std::lock_guard lk(r->lock);
  bool quiet = r->word && r->word->load(std::memory_order_acquire) == r->quiet;
  ParkKind kind = r->kind;
  std::uint64_t seq = r->seq;
  if (!r->word && r->idle_word) {  // an idle pool thread (its parks are not published)
    const std::uint64_t before = r->idle_parks.load(std::memory_order_acquire);
    quiet = r->idle_word->load(std::memory_order_acquire) == r->idle_quiet &&
            r->idle_parks.load(std::memory_order_acquire) == before;
    kind = ParkKind::idle_worker;
    seq += before << 32;  // changes with either count
  }
  RecordLook l{r, seq, quiet, kind, r->block, r->since, r->pool_thread, r->tid, r->uid, {}};
  std::memcpy(l.site, r->site, sizeof l.site);
  return l;
}

/// Looks at every record; call with the registry's lock held.
inline void look_at_all(std::vector<RecordLook>& out) {
  out.clear();
  for (ThreadRecord* r = ThreadRegistry::get().head; r; r = r->next) out.push_back(look_at(r));
}

inline ThreadDump dump_of(const RecordLook& l, Clock::time_point now) {
  ThreadDump d;
  d.id = l.tid;
  d.name = thread_os_name(l.tid);
  d.pool_thread = l.pool_thread;
  if (!l.quiet) {
    d.state = "running";
    return d;
  }
  if (l.kind != ParkKind::idle_worker) d.seconds = std::chrono::duration<double>(now - l.since).count();
  if (l.kind == ParkKind::blocked) {
    d.state = "blocked";
    d.waits_on = l.block.kind ? l.block.kind : "a wait";
    d.object = l.block.object;
    d.where = l.site;
  } else {
    d.state = "idle";
    d.waits_on = park_kind_role(l.kind);
  }
  return d;
}

/// SKEIN_WATCHDOG: "off" (or "0") disables the watchdog, "print" prints each event.
inline WatchdogOptions watchdog_from_env() noexcept {
  WatchdogOptions o;
  if (const char* v = std::getenv("SKEIN_WATCHDOG")) {
    const std::string_view s = v;
    if (s == "off" || s == "0" || s == "false" || s == "no") o.enabled = false;
    if (s == "print") o.print = true;
  }
  return o;
}

struct DeadlockMonitor {
  DeadlockMonitor() noexcept : watchdog(watchdog_from_env()) {}
  std::mutex mu;
  std::condition_variable cv;
  DeadlockOptions options;
  WatchdogOptions watchdog;
  bool options_from_env = false;
  bool started = false;
  std::uint64_t generation = 0;  // bumped by set_deadlock_options: a waiting monitor re-reads
  std::atomic<bool> dump_requested{false};
#if defined(SKEIN_DETAIL_POSIX_SIGNALS)
  sem_t signal_sem{};  // posted by the dump signal handler (sem_post is async-signal-safe)
  std::atomic<bool> sem_ready{false};
#endif

  static DeadlockMonitor& get() noexcept {
    // Never destroyed (its thread outlives main()), and made without
    // allocating: the first park may come from a noexcept path.
    alignas(DeadlockMonitor) static unsigned char storage[sizeof(DeadlockMonitor)];
    static DeadlockMonitor* const m = ::new (static_cast<void*>(storage)) DeadlockMonitor;
    return *m;
  }
};

/// SKEIN_DEADLOCK: "off" or "0" disables detection; "exit" and "report" pick
/// the default action (exit_process, ignore); anything else keeps fail_waits.
inline DeadlockAction env_deadlock_action() noexcept {
  const char* v = std::getenv("SKEIN_DEADLOCK");
  if (!v) return DeadlockAction::fail_waits;
  const std::string s = v;
  if (s == "exit") return DeadlockAction::exit_process;
  if (s == "report" || s == "ignore") return DeadlockAction::ignore;
  return DeadlockAction::fail_waits;
}

inline bool deadlock_detection_from_env() noexcept {
  const char* v = std::getenv("SKEIN_DEADLOCK");
  if (!v) return true;
  const std::string s = v;
  return !(s == "off" || s == "0" || s == "false" || s == "no");
}

inline std::string thread_line(const ThreadDump& t) {
  std::string s = "thread " + std::to_string(t.id);
  if (!t.name.empty()) s += " \"" + t.name + "\"";
  if (t.pool_thread) s += " (pool)";
  s += ": " + t.state;
  if (!t.waits_on.empty()) s += (t.state == "blocked" ? " in " : " (") + t.waits_on + (t.state == "blocked" ? "" : ")");
  if (t.object) s += " on " + describe_ptr(t.object);
  if (t.state != "running" && t.seconds > 0) {
    char b[48];
    std::snprintf(b, sizeof b, " for %.3f s", t.seconds);
    s += b;
  }
  if (!t.where.empty()) s += ", at " + t.where;
  return s;
}

inline std::vector<ThreadDump> dump_all_threads() {
  std::vector<RecordLook> looks;
  {
    auto& reg = ThreadRegistry::get();
    std::lock_guard lk(reg.mu);
    look_at_all(looks);
  }
  const auto now = Clock::now();
  std::vector<ThreadDump> out;
  out.reserve(looks.size());
  for (auto& l : looks) out.push_back(dump_of(l, now));
  std::sort(out.begin(), out.end(), [](const ThreadDump& a, const ThreadDump& b) { return a.id < b.id; });
  return out;
}

inline std::size_t live_tasks_now() noexcept {
  auto fn = g_live_tasks_fn.load(std::memory_order_acquire);
  long n = fn ? fn() : 0;
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

inline void write_stderr(const char* s, std::size_t n) noexcept {
  std::fwrite(s, 1, n, stderr);
  std::fflush(stderr);
}
inline void write_stderr(const std::string& s) noexcept { write_stderr(s.data(), s.size()); }
inline void write_stderr(const char* s) noexcept { write_stderr(s, std::strlen(s)); }

/// One detector check. `candidate` carries the sequence numbers of the last
/// quiet look, `reported` those of the last deadlock reported.
class DeadlockCheck {
public:
  /// Returns true if a deadlock was found (and handled).
  bool run(const DeadlockOptions& opt) {
    auto& reg = ThreadRegistry::get();
    std::unique_lock lk(reg.mu);
    look_at_all(first_);
    if (!all_quiet(first_)) return forget();
    const long threads = process_thread_count();
    const std::size_t known = first_.size() + 1 /* this thread */ + opt.foreign_threads + SKEIN_DETAIL_TSAN_THREADS;
    if (threads < 0 || static_cast<std::size_t>(threads) != known) return forget();
    look_at_all(second_);
    if (!same(first_, second_)) return forget();
    std::vector<std::pair<std::uint64_t, std::uint64_t>> seqs;
    for (auto& l : second_) seqs.emplace_back(l.uid, l.seq);
    std::sort(seqs.begin(), seqs.end());
    if (seqs != candidate_) {
      candidate_ = std::move(seqs);
      return false;
    }
    if (seqs == reported_) return false;  // this deadlock was reported already
    reported_ = seqs;

    DeadlockReport report;
    const auto now = Clock::now();
    for (auto& l : second_) report.threads.push_back(dump_of(l, now));
    // The handler may look again (dump_threads) or release a wait itself:
    // the registry is not held while it runs.
    lk.unlock();
    std::sort(report.threads.begin(), report.threads.end(),
              [](const ThreadDump& a, const ThreadDump& b) { return a.id < b.id; });
    report.live_tasks = live_tasks_now();
    report.tasks = dump_all_tasks();
    if (opt.print) write_stderr(report.text());
    DeadlockAction action = env_deadlock_action();
    if (opt.handler) {
      try {
        action = opt.handler(report);
      } catch (...) {
        write_stderr("skein: the deadlock handler threw; failing the blocked waits\n");
        action = DeadlockAction::fail_waits;
      }
    }
    if (action == DeadlockAction::exit_process) std::_Exit(2);
    if (action == DeadlockAction::fail_waits) fail_waits();
    return true;
  }

private:
  static bool all_quiet(const std::vector<RecordLook>& v) noexcept {
    bool someone_waits = false;
    for (auto& l : v) {
      if (!l.quiet) return false;
      if (l.kind == ParkKind::blocked || l.kind == ParkKind::idle_loop) someone_waits = true;
    }
    return someone_waits;
  }
  static bool same(const std::vector<RecordLook>& a, const std::vector<RecordLook>& b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i].rec != b[i].rec || a[i].seq != b[i].seq || !b[i].quiet) return false;
    return true;
  }
  bool forget() noexcept {
    candidate_.clear();
    return false;
  }
  /// Withdraws every blocked wait of a thread outside the pools that is
  /// still in the park found deadlocked; each throws Deadlock. Under the
  /// registry's lock, and only for records still in it (alive).
  void fail_waits() noexcept {
    auto& reg = ThreadRegistry::get();
    std::lock_guard rl(reg.mu);
    for (auto& l : second_) {
      if (l.kind != ParkKind::blocked || l.pool_thread) continue;
      ThreadRecord* r = reg.head;
      while (r && !(r == l.rec && r->uid == l.uid)) r = r->next;
      if (!r) continue;  // the thread has gone
      std::lock_guard lk(r->lock);
      if (r->seq != l.seq || !r->word || !r->block.interrupt) continue;
      // Set first: the thread reads it under this lock once it wakes.
      r->deadlocked = true;
      if (!r->block.interrupt(r->block.ctx)) r->deadlocked = false;  // released meanwhile
    }
  }

  std::vector<RecordLook> first_, second_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> candidate_, reported_;
};

inline void deadlock_monitor_main() noexcept {
  name_this_thread("skein-monitor");
  auto& m = DeadlockMonitor::get();
  DeadlockCheck check;
  auto next_check = Clock::now();
  for (;;) {
    DeadlockOptions opt;
    WatchdogOptions wd;
    {
      std::unique_lock lk(m.mu);
      opt = m.options;
      wd = m.watchdog;
    }
    // The deadlock check every `period`; the watchdog looks four times per
    // threshold, so a hog is seen within 1.25 thresholds.
    auto period = std::max(opt.period, std::chrono::milliseconds(1));
    if (wd.enabled) period = std::min(period, std::max(wd.threshold / 4, std::chrono::milliseconds(1)));
#if defined(SKEIN_DETAIL_POSIX_SIGNALS)
    if (m.sem_ready.load(std::memory_order_acquire)) {
      // Woken early by a dump request (the signal handler posts).
      timespec ts{};
      clock_gettime(CLOCK_REALTIME, &ts);
      auto ns = static_cast<long long>(ts.tv_nsec) + std::chrono::nanoseconds(period).count();
      ts.tv_sec += static_cast<time_t>(ns / 1000000000);
      ts.tv_nsec = static_cast<long>(ns % 1000000000);
      while (sem_timedwait(&m.signal_sem, &ts) != 0 && errno == EINTR) {
      }
    } else
#endif
    {
      std::unique_lock lk(m.mu);
      const auto gen = m.generation;
      m.cv.wait_for(lk, period, [&] { return m.generation != gen; });
    }
    if (m.dump_requested.exchange(false, std::memory_order_acq_rel)) {
      try {
        std::string s = "skein: dump of every thread (live tasks: " + std::to_string(live_tasks_now()) + ")\n";
        for (auto& t : dump_all_threads()) s += "  " + thread_line(t) + "\n";
        for (auto& t : dump_all_tasks()) s += "  " + t.text() + "\n";
        write_stderr(s);
      } catch (...) {
      }
    }
    if (wd.enabled)
      if (auto fn = g_watchdog_fn.load(std::memory_order_acquire)) {
        try {
          fn(wd);
        } catch (...) {  // out of memory while looking: look again next period
        }
      }
    if (!opt.enabled || Clock::now() < next_check) continue;
    next_check = deadline_after(std::max(opt.period, std::chrono::milliseconds(1)) - std::chrono::microseconds(500));
    try {
      check.run(opt);
    } catch (...) {  // out of memory while looking: look again next period
    }
  }
}

/// Reports a hog as the options say (on the monitor thread), naming the
/// task running on its thread when tasks are tracked.
inline void report_hog(const WatchdogOptions& wd, HogReport& r) noexcept {
  try {
    for (auto& t : dump_all_tasks())
      if (t.state == "running" && t.thread_id == r.thread_id) r.task = t.text();
    if (wd.print) write_stderr(r.text());
  } catch (...) {  // out of memory naming the task or formatting: the handler still hears of it
  }
  if (!wd.handler) return;
  try {
    wd.handler(r);
  } catch (...) {  // not lost: said where the deadlock handler's error is said
    try {
      write_stderr("skein: the watchdog handler threw: " + describe_error(std::current_exception()) + "\n");
    } catch (...) {
      write_stderr("skein: the watchdog handler threw\n");
    }
  }
}

inline void ensure_deadlock_monitor() noexcept {
  auto& m = DeadlockMonitor::get();
  static std::atomic<bool> started{false};
  if (started.load(std::memory_order_acquire)) return;
  std::lock_guard lk(m.mu);
  if (m.started) return;
  m.started = true;
  try {
    std::thread(deadlock_monitor_main).detach();
  } catch (...) {  // no thread: no detection (and no dump on signal)
  }
  started.store(true, std::memory_order_release);
}

}  // namespace detail

inline std::string HogReport::text() const {
  char b[64];
  std::snprintf(b, sizeof b, "%.3f s", seconds);
  std::string s = "skein: a task has held pool thread " + std::to_string(thread_id);
  if (!thread_name.empty()) s += " \"" + thread_name + "\"";
  s += std::string(" for ") + b +
       " without a scheduling point (a co_await, or a blocking wait that hands its place over); ";
  s += rescued ? std::string("another thread runs the pool's other tasks meanwhile")
               : "no other thread can take over: " + why_not;
  if (!task.empty()) s += "; the task: " + task;
  return s + "\n";
}

inline std::string TaskDump::text() const {
  std::string s = "task " + std::to_string(id);
  if (!name.empty()) s += " \"" + name + "\"";
  if (!where.empty()) s += " (started at " + where + ")";
  s += ": " + state;
  if (!waits_on.empty()) s += (state == "blocked" ? " in " : " on ") + waits_on;
  if (object) s += " " + detail::describe_ptr(object);
  if (thread_id) s += (state == "running" ? " on thread " : ", thread ") + std::to_string(thread_id);
  char b[48];
  std::snprintf(b, sizeof b, " for %.3f s", seconds);
  s += b;
  for (std::size_t i = 0; i < contexts.size(); ++i)
    s += (i == 0 ? ", context " : " < ") + detail::describe_ptr(contexts[i]);
  return s;
}

inline std::string DeadlockReport::text() const {
  std::string s = "skein: all goroutines are asleep - deadlock!\n";
  s += "live tasks: " + std::to_string(live_tasks) + "\n";
  for (auto& t : threads) s += "  " + detail::thread_line(t) + "\n";
  if (!tasks.empty()) s += "tasks:\n";
  for (auto& t : tasks) s += "  " + t.text() + "\n";
  return s;
}

}  // namespace skein
