#pragma once
/// Tracing: hooks that see every task's spawn, start, suspension (and why),
/// resumption, end and wake-ups, and a recorder that writes them as a Chrome
/// trace-event / Perfetto JSON timeline (docs/api/trace.md).
///
///   skein::trace::start("trace.json");  // or SKEIN_TRACE=trace.json in the environment
///   ...
///   skein::trace::stop();               // writes the file (also done at exit)

#include "detail/config.hpp"  // first: the C++20 check

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#endif

#include "detail/context_state.hpp"
#include "detail/deadlock_monitor.hpp"
#include "detail/spin.hpp"
#include "detail/trace_core.hpp"
#include "errors.hpp"
#include "run.hpp"

namespace skein::trace {

/// The events' receiver: derive from it and override what you need (see
/// detail::TraceHooks for when each member is called).
using Hooks = detail::TraceHooks;
using TaskInfo = detail::TaskInfo;
using WaitReason = detail::WaitReason;

namespace detail {

/// The application's hooks (set_hooks, or the recorder); the runtime calls
/// g_trace_hooks, which is these, or — while tasks are tracked — a fan-out
/// to the task tracker and these.
inline std::atomic<Hooks*> g_user_hooks{nullptr};
inline std::atomic<bool> g_tracking_tasks{false};
inline Hooks* task_fanout() noexcept;  // below

/// Serialises changes of the two (set_hooks, the recorder, track_tasks).
inline skein::detail::SpinLock& hooks_lock() noexcept {
  static skein::detail::SpinLock l;
  return l;
}
/// hooks_lock() held: what the runtime calls from now on.
inline void publish_hooks() noexcept {
  Hooks* user = g_user_hooks.load(std::memory_order_relaxed);
  skein::detail::g_trace_hooks.store(g_tracking_tasks.load(std::memory_order_relaxed) ? task_fanout() : user,
                                     std::memory_order_release);
}

}  // namespace detail

/// Installs `h` (null: none) and returns the previous hooks. With none
/// installed, every event site costs one relaxed load and a branch. Removing
/// hooks does not wait for calls already under way on other threads: keep
/// the object alive (a static, typically) until they are surely over.
inline Hooks* set_hooks(Hooks* h) noexcept {
  std::lock_guard lk(detail::hooks_lock());
  Hooks* old = detail::g_user_hooks.exchange(h, std::memory_order_acq_rel);
  detail::publish_hooks();
  return old;
}
/// The installed hooks, or null.
inline Hooks* hooks() noexcept { return detail::g_user_hooks.load(std::memory_order_acquire); }

/// The trace id of the task running on this thread: 0 outside a task, or
/// when no hooks were installed as it started. Ids are given only while hooks
/// are installed, from 1 up, never reused.
inline std::uint64_t current_task() noexcept {
  // (A slice left open when the hooks went away leaves a stale id behind.)
  return skein::detail::trace_hooks() ? skein::detail::tl_trace_task : 0;
}

namespace detail {

using skein::detail::TaskInfo;
using skein::detail::WaitReason;

enum class Kind : std::uint8_t { spawn, start, suspend, resume, finish, wake, block, unblock };

struct Event {
  std::int64_t ns;       // since the session began
  std::uint64_t task;    // the task (for wake: the notifier)
  std::uint64_t aux;     // spawn: parent; suspend/resume/wake: the coroutine's address
  const void* object;    // suspend/block: the primitive
  const char* text;      // spawn/start: name; suspend/block: kind
  const char* file;      // spawn/start
  const char* function;  // spawn/start
  unsigned line;         // spawn/start
  Kind kind;
};

/// One thread's events: appended by that thread only, read by stop() once no
/// thread is appending (`busy`). Never freed: a thread caches its pointer.
struct ThreadLog {
  std::atomic<bool> busy{false};
  int tid = 0;
  std::string name;
  std::vector<Event> events;
  std::uint64_t dropped = 0;
};

/// The recorder behind start()/stop(): a Hooks that appends to per-thread
/// logs (no lock per event) and writes the JSON at stop().
class Recorder final : public Hooks {
public:
  static Recorder& get() {
    static Recorder* r = new Recorder;  // never destroyed: threads may still call it at exit
    return *r;
  }

  bool start(const std::string& path) {
    std::lock_guard lk(mu_);
    if (active_.load(std::memory_order_relaxed)) return false;
    // Every log is quiet: stop() waited for them, and nothing appends while inactive.
    for (ThreadLog* l : logs()) {
      l->events.clear();
      l->dropped = 0;
    }
    path_ = path;
    t0_ = std::chrono::steady_clock::now();
    active_.store(true, std::memory_order_seq_cst);
    {
      std::lock_guard hl(hooks_lock());
      Hooks* expected = nullptr;
      if (!g_user_hooks.compare_exchange_strong(expected, this, std::memory_order_acq_rel)) {
        active_.store(false, std::memory_order_seq_cst);
        throw UsageError("skein::trace::start: other tracing hooks are installed (skein::trace::set_hooks)");
      }
      publish_hooks();
    }
    return true;
  }

  /// Stops recording and writes the file; returns its path ("" if no session).
  std::string stop() {
    std::lock_guard lk(mu_);
    if (!active_.load(std::memory_order_relaxed)) return {};
    {
      std::lock_guard hl(hooks_lock());
      Hooks* self = this;
      (void)g_user_hooks.compare_exchange_strong(self, nullptr, std::memory_order_acq_rel);
      publish_hooks();
    }
    active_.store(false, std::memory_order_seq_cst);
    // A thread appending now either saw active_ false (and appends nothing)
    // or set busy first (and is waited for here): both are seq_cst.
    for (ThreadLog* l : logs())
      while (l->busy.load(std::memory_order_seq_cst)) std::this_thread::yield();
    const auto end = std::chrono::steady_clock::now();
    write(std::chrono::duration_cast<std::chrono::nanoseconds>(end - t0_).count());
    return path_;
  }

  [[nodiscard]] bool active() const noexcept { return active_.load(std::memory_order_relaxed); }

  void on_spawn(const TaskInfo& t) noexcept override {
    add({0, t.id, t.parent, nullptr, t.name, t.where.file_name(), t.where.function_name(), t.where.line(),
         Kind::spawn});
  }
  void on_start(const TaskInfo& t) noexcept override {
    add({0, t.id, 0, nullptr, t.name, t.where.file_name(), t.where.function_name(), t.where.line(), Kind::start});
  }
  void on_suspend(std::uint64_t task, const WaitReason& why, const void* co) noexcept override {
    add({0, task, addr(co), why.object, why.kind, nullptr, nullptr, 0, Kind::suspend});
  }
  void on_resume(std::uint64_t task, const void* co) noexcept override {
    add({0, task, addr(co), nullptr, nullptr, nullptr, nullptr, 0, Kind::resume});
  }
  void on_finish(std::uint64_t task) noexcept override {
    add({0, task, 0, nullptr, nullptr, nullptr, nullptr, 0, Kind::finish});
  }
  void on_wake(std::uint64_t notifier, const void* co) noexcept override {
    add({0, notifier, addr(co), nullptr, nullptr, nullptr, nullptr, 0, Kind::wake});
  }
  void on_block(std::uint64_t task, const WaitReason& why) noexcept override {
    add({0, task, 0, why.object, why.kind, nullptr, nullptr, 0, Kind::block});
  }
  void on_unblock(std::uint64_t task) noexcept override {
    add({0, task, 0, nullptr, nullptr, nullptr, nullptr, 0, Kind::unblock});
  }

private:
  Recorder() = default;
  static std::uint64_t addr(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p); }

  ThreadLog* log() noexcept {
    static thread_local ThreadLog* mine = nullptr;
    if (mine) return mine;
    try {
      auto* l = new ThreadLog;
      char name[32] = {};
#if defined(__linux__)
      (void)pthread_getname_np(pthread_self(), name, sizeof name);
#endif
      std::lock_guard lk(reg_mu_);
      l->tid = static_cast<int>(all_.size()) + 1;
      l->name = name[0] ? name : "thread";
      all_.push_back(l);
      mine = l;
    } catch (...) {
      return nullptr;
    }
    return mine;
  }

  void add(Event e) noexcept {
    ThreadLog* l = log();
    if (!l) return;
    l->busy.store(true, std::memory_order_seq_cst);
    if (active_.load(std::memory_order_seq_cst)) {
      e.ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0_).count();
      try {
        l->events.push_back(e);
      } catch (...) {
        ++l->dropped;
      }
    }
    l->busy.store(false, std::memory_order_release);
  }

  // --- the file ---------------------------------------------------------------------

  static void put_escaped(std::string& out, const char* s) {
    for (; s && *s; ++s) {
      const unsigned char c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
  }
  static void put_ts(std::string& out, std::int64_t ns) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ns / 1000), static_cast<long long>(ns % 1000));
    out += buf;
  }
  static std::string base_name(const char* file) {
    if (!file || !*file) return {};
    const char* b = file;
    for (const char* p = file; *p; ++p)
      if (*p == '/' || *p == '\\') b = p + 1;
    return b;
  }

  struct Label {
    std::string name;  // the task's name, else its start site's file:line
    std::string site;  // file:line (function)
  };

  /// The logs registered so far. A thread that registers after stop() has
  /// cleared active_ and read this list sees active_ false (reg_mu_ orders
  /// them), so it appends nothing.
  std::vector<ThreadLog*> logs() {
    std::lock_guard lk(reg_mu_);
    return all_;
  }

  void write(std::int64_t end_ns) {
    const std::vector<ThreadLog*> logs = this->logs();
    // Labels, and where each task was spawned from.
    std::unordered_map<std::uint64_t, Label> labels;
    struct Spawn {
      int tid;
      std::int64_t ns;
      std::uint64_t parent;
    };
    std::unordered_map<std::uint64_t, Spawn> spawns;
    for (ThreadLog* l : logs)
      for (const Event& e : l->events) {
        if (e.kind != Kind::spawn && e.kind != Kind::start) continue;
        if (e.kind == Kind::spawn) spawns[e.task] = Spawn{l->tid, e.ns, e.aux};
        if (labels.count(e.task)) continue;
        Label lb;
        const std::string base = base_name(e.file);
        if (!base.empty()) {
          lb.site = base + ":" + std::to_string(e.line);
          if (e.function && *e.function) lb.site += std::string(" (") + e.function + ")";
        }
        if (e.text)
          lb.name = e.text;
        else if (!base.empty())
          lb.name = base + ":" + std::to_string(e.line);
        else
          lb.name = "task " + std::to_string(e.task);
        labels.emplace(e.task, std::move(lb));
      }
    auto label_of = [&](std::uint64_t task) -> const Label& {
      auto it = labels.find(task);
      if (it == labels.end()) it = labels.emplace(task, Label{"task " + std::to_string(task), {}}).first;
      return it->second;
    };

    std::string out;
    out.reserve(1 << 16);
    out += "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
    bool first = true;
    auto begin_event = [&] {
      if (!first) out += ",\n";
      first = false;
    };
    begin_event();
    out += R"({"ph":"M","name":"process_name","pid":1,"tid":0,"ts":0,"args":{"name":"skein"}})";
    for (ThreadLog* l : logs) {
      if (l->events.empty()) continue;
      begin_event();
      out +=
          R"({"ph":"M","name":"thread_name","pid":1,"tid":)" + std::to_string(l->tid) + R"(,"ts":0,"args":{"name":")";
      put_escaped(out, (l->name + " #" + std::to_string(l->tid)).c_str());
      out += "\"}}";
    }

    // Run slices: per thread, start/resume opens one, suspend/finish closes it.
    struct Open {
      std::uint64_t task;
      std::int64_t ns;
    };
    std::uint64_t flow_id = 0;
    auto flow = [&](const char* cat, int from_tid, std::int64_t from_ns, int to_tid, std::int64_t to_ns) {
      ++flow_id;
      begin_event();
      out += R"({"ph":"s","cat":")";
      out += cat;
      out += R"(","name":")";
      out += cat;
      out += R"(","id":)" + std::to_string(flow_id) + R"(,"pid":1,"tid":)" + std::to_string(from_tid) + ",\"ts\":";
      put_ts(out, from_ns);
      out += "}";
      begin_event();
      out += R"({"ph":"f","bp":"e","cat":")";
      out += cat;
      out += R"(","name":")";
      out += cat;
      out += R"(","id":)" + std::to_string(flow_id) + R"(,"pid":1,"tid":)" + std::to_string(to_tid) + ",\"ts\":";
      put_ts(out, to_ns);
      out += "}";
    };
    auto slice = [&](int tid, const Open& o, std::int64_t end, const std::string& why) {
      const Label& lb = label_of(o.task);
      begin_event();
      out += R"({"ph":"X","cat":"task","name":")";
      put_escaped(out, lb.name.c_str());
      out += R"(","pid":1,"tid":)" + std::to_string(tid) + ",\"ts\":";
      put_ts(out, o.ns);
      out += ",\"dur\":";
      put_ts(out, std::max<std::int64_t>(0, end - o.ns));
      out += R"(,"args":{"task":)" + std::to_string(o.task);
      if (!lb.site.empty()) {
        out += R"(,"site":")";
        put_escaped(out, lb.site.c_str());
        out += "\"";
      }
      out += R"(,"then":")";
      put_escaped(out, why.c_str());
      out += "\"}}";
    };
    // Where each wake-up and resumption happened, for the notifier -> woken flows.
    struct Point {
      std::int64_t ns;
      int tid;
      Kind kind;
      std::uint64_t task;
      std::size_t order;  // ties keep the order they were gathered in (one thread's are in time order)
    };
    std::map<std::uint64_t, std::vector<Point>> by_coroutine;
    std::size_t gathered = 0;
    // A thread runs one task at a time: a start or resume ends a slice still
    // open there (its task went on elsewhere without suspending here).
    // A blocking wait of the thread (a skein wait that parks it): a slice of
    // its own, nested in the task's run slice if there is one.
    auto blocked_slice = [&](int tid, const Event& b, std::int64_t end) {
      begin_event();
      out += R"({"ph":"X","cat":"block","name":"blocked: )";
      put_escaped(out, b.text ? b.text : "a wait");
      out += R"(","pid":1,"tid":)" + std::to_string(tid) + ",\"ts\":";
      put_ts(out, b.ns);
      out += ",\"dur\":";
      put_ts(out, std::max<std::int64_t>(0, end - b.ns));
      char buf[64];
      std::snprintf(buf, sizeof buf, "%p", b.object);
      out += R"(,"args":{"task":)" + std::to_string(b.task) + R"(,"object":")" + buf + "\"}}";
    };
    for (ThreadLog* l : logs) {
      std::optional<Open> open;
      std::optional<Event> blocked;
      for (const Event& e : l->events) {
        switch (e.kind) {
          case Kind::block: blocked = e; break;
          case Kind::unblock:
            if (blocked) blocked_slice(l->tid, *blocked, e.ns);
            blocked.reset();
            break;
          case Kind::start:
          case Kind::resume:
            if (open) slice(l->tid, *open, e.ns, "(went on elsewhere)");
            open = Open{e.task, e.ns};
            if (e.kind == Kind::start) {
              auto s = spawns.find(e.task);
              if (s != spawns.end() && s->second.parent != 0) flow("spawn", s->second.tid, s->second.ns, l->tid, e.ns);
            } else if (e.aux) {
              by_coroutine[e.aux].push_back({e.ns, l->tid, e.kind, e.task, gathered++});
            }
            break;
          case Kind::suspend:
          case Kind::finish: {
            if (e.kind == Kind::suspend && e.aux)
              by_coroutine[e.aux].push_back({e.ns, l->tid, e.kind, e.task, gathered++});
            if (!open || open->task != e.task) break;
            std::string why = "finished";
            if (e.kind == Kind::suspend) {
              char buf[64];
              std::snprintf(buf, sizeof buf, " %p", e.object);
              why = std::string("waits: ") + (e.text ? e.text : "?") + (e.object ? buf : "");
            }
            slice(l->tid, *open, e.ns, why);
            open.reset();
            break;
          }
          case Kind::wake:
            if (e.aux && e.task) by_coroutine[e.aux].push_back({e.ns, l->tid, e.kind, e.task, gathered++});
            break;
          default: break;
        }
      }
      if (blocked) blocked_slice(l->tid, *blocked, end_ns);
      if (open) slice(l->tid, *open, end_ns, "(running when the trace stopped)");
    }
    // A resumption's waker is the last wake of its coroutine since that
    // coroutine last suspended; a task waking its own coroutine draws no arrow.
    for (auto& [co, points] : by_coroutine) {
      std::sort(points.begin(), points.end(),
                [](const Point& a, const Point& b) { return a.ns != b.ns ? a.ns < b.ns : a.order < b.order; });
      const Point* waker = nullptr;
      for (const Point& p : points) {
        if (p.kind == Kind::suspend) {
          waker = nullptr;
        } else if (p.kind == Kind::wake) {
          waker = &p;
        } else if (p.kind == Kind::resume) {
          if (waker && waker->task != p.task) flow("wake", waker->tid, waker->ns, p.tid, p.ns);
          waker = nullptr;
        }
      }
    }
    out += "\n]}\n";
    if (std::FILE* f = std::fopen(path_.c_str(), "wb")) {
      std::fwrite(out.data(), 1, out.size(), f);
      std::fclose(f);
    } else {
      std::fprintf(stderr, "skein::trace: cannot write %s\n", path_.c_str());
    }
  }

  std::mutex mu_;                // sessions
  std::mutex reg_mu_;            // the list of logs
  std::vector<ThreadLog*> all_;  // under reg_mu_
  std::atomic<bool> active_{false};
  std::string path_;
  std::chrono::steady_clock::time_point t0_{};
};

}  // namespace detail

/// Starts recording every task's run slices, spawns and wake-ups, to be
/// written to `path` as Chrome trace-event JSON (open it in
/// https://ui.perfetto.dev or chrome://tracing) by stop(), or at exit.
/// Returns false if a recording is already under way. Throws UsageError if
/// other hooks are installed (set_hooks).
inline bool start(const std::string& path) {
  if (!detail::Recorder::get().start(path)) return false;
  static const bool at_exit = [] {
    std::atexit([] { (void)detail::Recorder::get().stop(); });
    return true;
  }();
  (void)at_exit;
  return true;
}

/// Stops the recording and writes its file; returns the file's path ("" if
/// nothing was recording). Events of tasks still running are dropped from here on.
inline std::string stop() { return detail::Recorder::get().stop(); }

/// True while start() (or SKEIN_TRACE) is recording.
inline bool recording() noexcept { return detail::Recorder::get().active(); }

/// start() in its constructor, stop() in its destructor.
class TraceSession {
public:
  explicit TraceSession(const std::string& path) : started_(start(path)) {}
  ~TraceSession() {
    if (started_) (void)stop();
  }
  TraceSession(const TraceSession&) = delete;
  TraceSession& operator=(const TraceSession&) = delete;

private:
  bool started_;
};

// --- the task tracker: every live task and its state, for skein::dump_tasks ------

namespace detail {

/// A live task as the tracker knows it.
struct TrackedTask {
  std::uint64_t parent = 0;
  const char* name = nullptr;
  skein::detail::SourceSite where{};
  enum State : std::uint8_t { ready, running, waiting, blocked } state = ready;
  long tid = 0;
  const char* kind = nullptr;
  const void* object = nullptr;
  std::chrono::steady_clock::time_point since{};
  const void* contexts[4] = {};  // its Context and ancestors, innermost first (addresses, for display)
};

/// Hooks that keep every live task's state: spawned (ready), running on a
/// thread, suspended on a wait (waiting), woken (ready), its thread blocked
/// in a skein wait (blocked); gone at its end. Sharded maps, one lock each.
class TaskTracker final : public Hooks {
public:
  static TaskTracker& get() noexcept {
    alignas(TaskTracker) static unsigned char storage[sizeof(TaskTracker)];
    static TaskTracker* const t = ::new (static_cast<void*>(storage)) TaskTracker;  // never destroyed
    return *t;
  }

  void on_spawn(const TaskInfo& t) noexcept override {
    update(t.id, [&](TrackedTask& r) {
      r.parent = t.parent;
      r.name = t.name;
      r.where = t.where;
      r.state = TrackedTask::ready;
    });
  }
  void on_start(const TaskInfo& t) noexcept override {
    const void* chain[4] = {};
    const auto* s = skein::detail::tls.scope;
    if (s && s->is_context) {
      const auto* c = static_cast<const skein::detail::ContextState*>(s);
      for (int i = 0; c && i < 4; ++i, c = c->parent()) chain[i] = c;
    }
    update(t.id, [&](TrackedTask& r) {
      if (!r.name) r.name = t.name;
      if (!r.where.line()) r.where = t.where;
      running(r);
      std::copy(std::begin(chain), std::end(chain), r.contexts);
    });
  }
  void on_suspend(std::uint64_t task, const WaitReason& why, const void* co) noexcept override {
    update(
        task,
        [&](TrackedTask& r) {
          r.state = TrackedTask::waiting;
          r.kind = why.kind;
          r.object = why.object;
          r.tid = 0;
        },
        false);
    if (co) remember(co, task);
  }
  void on_resume(std::uint64_t task, const void* co) noexcept override {
    update(
        task, [&](TrackedTask& r) { running(r); }, false);
    if (co) forget(co);
  }
  void on_wake(std::uint64_t, const void* co) noexcept override {
    if (!co) return;
    const std::uint64_t task = owner_of(co);
    if (!task) return;
    update(
        task,
        [&](TrackedTask& r) {
          if (r.state == TrackedTask::waiting) r.state = TrackedTask::ready;
        },
        false);
  }
  void on_finish(std::uint64_t task) noexcept override {
    Shard& s = shard(task);
    std::lock_guard lk(s.lock);
    s.tasks.erase(task);
  }
  void on_block(std::uint64_t task, const WaitReason& why) noexcept override {
    if (!task) return;
    update(
        task,
        [&](TrackedTask& r) {
          r.state = TrackedTask::blocked;
          r.kind = why.kind;
          r.object = why.object;
        },
        false);
  }
  void on_unblock(std::uint64_t task) noexcept override {
    if (task)
      update(
          task, [&](TrackedTask& r) { running(r); }, false);
  }

  /// Every tracked task, oldest id first.
  std::vector<TaskDump> dump() {
    std::vector<std::pair<std::uint64_t, TrackedTask>> all;
    for (Shard& s : shards_) {
      std::lock_guard lk(s.lock);
      for (auto& [id, r] : s.tasks) all.emplace_back(id, r);
    }
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    const auto now = std::chrono::steady_clock::now();
    std::vector<TaskDump> out;
    out.reserve(all.size());
    static const char* const kStates[] = {"ready", "running", "waiting", "blocked"};
    for (auto& [id, r] : all) {
      TaskDump d;
      d.id = id;
      d.parent = r.parent;
      if (r.name) d.name = r.name;
      if (r.where.line()) {
        std::string f = r.where.file_name();
        const auto slash = f.find_last_of("/\\");
        if (slash != std::string::npos) f.erase(0, slash + 1);
        d.where = f + ":" + std::to_string(r.where.line());
      }
      d.state = kStates[r.state];
      d.thread_id = (r.state == TrackedTask::running || r.state == TrackedTask::blocked) ? r.tid : 0;
      if (r.state == TrackedTask::waiting || r.state == TrackedTask::blocked) {
        if (r.kind) d.waits_on = r.kind;
        d.object = r.object;
      }
      d.seconds = std::chrono::duration<double>(now - r.since).count();
      for (const void* c : r.contexts)
        if (c) d.contexts.push_back(c);
      out.push_back(std::move(d));
    }
    return out;
  }

  /// Forgets every task (tracking was turned off).
  void clear() noexcept {
    for (Shard& s : shards_) {
      std::lock_guard lk(s.lock);
      s.tasks.clear();
      s.coroutines.clear();
    }
  }

private:
  TaskTracker() = default;
  struct Shard {
    skein::detail::SpinLock lock;
    std::unordered_map<std::uint64_t, TrackedTask> tasks;
    std::unordered_map<const void*, std::uint64_t> coroutines;  // suspended coroutine -> its task
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard(std::uint64_t id) noexcept { return shards_[id % kShards]; }
  Shard& shard(const void* co) noexcept { return shards_[(reinterpret_cast<std::uintptr_t>(co) >> 4) % kShards]; }

  static void running(TrackedTask& r) noexcept {
    r.state = TrackedTask::running;
    r.tid = skein::detail::this_thread_os_id();
    r.kind = nullptr;
    r.object = nullptr;
  }
  /// Applies `f` to task `id`'s record (made if `create` and missing: only a
  /// spawn or a start makes one, so a stale id never makes a ghost); a state
  /// change restarts its clock. Out of memory: the event is lost.
  template <class F>
  void update(std::uint64_t id, F&& f, bool create = true) noexcept {
    if (!id) return;
    const auto now = std::chrono::steady_clock::now();
    Shard& s = shard(id);
    std::lock_guard lk(s.lock);
    try {
      TrackedTask* r;
      if (create) {
        r = &s.tasks[id];
      } else {
        auto it = s.tasks.find(id);
        if (it == s.tasks.end()) return;
        r = &it->second;
      }
      const auto before = r->state;
      f(*r);
      if (r->state != before || r->since == std::chrono::steady_clock::time_point{}) r->since = now;
    } catch (...) {
    }
  }
  void remember(const void* co, std::uint64_t task) noexcept {
    Shard& s = shard(co);
    std::lock_guard lk(s.lock);
    try {
      s.coroutines[co] = task;
    } catch (...) {
    }
  }
  void forget(const void* co) noexcept {
    Shard& s = shard(co);
    std::lock_guard lk(s.lock);
    s.coroutines.erase(co);
  }
  std::uint64_t owner_of(const void* co) noexcept {
    Shard& s = shard(co);
    std::lock_guard lk(s.lock);
    auto it = s.coroutines.find(co);
    return it == s.coroutines.end() ? 0 : it->second;
  }

  Shard shards_[kShards];
};

/// The runtime's hooks while tasks are tracked: the tracker, then the application's.
class TaskFanout final : public Hooks {
public:
  void on_spawn(const TaskInfo& t) noexcept override {
    TaskTracker::get().on_spawn(t);
    if (Hooks* u = user()) u->on_spawn(t);
  }
  void on_start(const TaskInfo& t) noexcept override {
    TaskTracker::get().on_start(t);
    if (Hooks* u = user()) u->on_start(t);
  }
  void on_suspend(std::uint64_t task, const WaitReason& why, const void* co) noexcept override {
    TaskTracker::get().on_suspend(task, why, co);
    if (Hooks* u = user()) u->on_suspend(task, why, co);
  }
  void on_resume(std::uint64_t task, const void* co) noexcept override {
    TaskTracker::get().on_resume(task, co);
    if (Hooks* u = user()) u->on_resume(task, co);
  }
  void on_finish(std::uint64_t task) noexcept override {
    TaskTracker::get().on_finish(task);
    if (Hooks* u = user()) u->on_finish(task);
  }
  void on_wake(std::uint64_t notifier, const void* co) noexcept override {
    TaskTracker::get().on_wake(notifier, co);
    if (Hooks* u = user()) u->on_wake(notifier, co);
  }
  void on_block(std::uint64_t task, const WaitReason& why) noexcept override {
    TaskTracker::get().on_block(task, why);
    if (Hooks* u = user()) u->on_block(task, why);
  }
  void on_unblock(std::uint64_t task) noexcept override {
    TaskTracker::get().on_unblock(task);
    if (Hooks* u = user()) u->on_unblock(task);
  }

private:
  static Hooks* user() noexcept { return g_user_hooks.load(std::memory_order_acquire); }
};

inline Hooks* task_fanout() noexcept {
  static TaskFanout f;  // trivially destructible in effect: no state
  return &f;
}

inline std::vector<TaskDump> dump_tracked_tasks() { return TaskTracker::get().dump(); }

}  // namespace detail

/// Tracks every task started from now on (through the tracing hooks, next
/// to any hooks of yours or the recorder), so that skein::dump_tasks(),
/// dump_text(), the dump on a signal and the deadlock report list each live
/// task: its name or start site, its state (running on which thread, ready,
/// suspended on which wait, its thread blocked in which wait) and for how
/// long, and its Context chain. SKEIN_TRACK_TASKS=1 turns it on at start.
/// Costs a lock round trip and a map update per event while on.
inline void track_tasks(bool on) noexcept {
  {
    std::lock_guard lk(detail::hooks_lock());
    detail::g_tracking_tasks.store(on, std::memory_order_relaxed);
    detail::publish_hooks();
  }
  skein::detail::g_task_dump_fn.store(on ? &detail::dump_tracked_tasks : nullptr, std::memory_order_release);
  if (!on) detail::TaskTracker::get().clear();
}
/// Whether tasks are tracked.
inline bool tracking_tasks() noexcept { return detail::g_tracking_tasks.load(std::memory_order_relaxed); }

namespace detail {
/// SKEIN_TRACK_TASKS=1: tracking from the start of the program.
inline const bool tracking_from_environment = [] {
  const char* v = std::getenv("SKEIN_TRACK_TASKS");
  if (!v || !*v || std::string_view(v) == "0") return false;
  track_tasks(true);
  return true;
}();

/// SKEIN_TRACE=file.json: recording from the start of the program (of any
/// program that includes this header), written at exit.
inline const bool started_from_environment = [] {
  const char* path = std::getenv("SKEIN_TRACE");
  if (!path || !*path) return false;
  try {
    return start(path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "skein: SKEIN_TRACE=%s: tracing not started: %s\n", path, e.what());
  } catch (...) {
    std::fprintf(stderr, "skein: SKEIN_TRACE=%s: tracing not started\n", path);
  }
  return false;
}();
}  // namespace detail

}  // namespace skein::trace
