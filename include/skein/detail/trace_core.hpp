#pragma once
// Task identity and the tracing hooks (the public side is <skein/trace.hpp>).
//
// Identity: every task records where it was started (SourceSite: a
// std::source_location) and may be given a name. Both, and the 64-bit id a
// task gets only while hooks are installed, take one word of the task's frame
// (TaskIdent): the site itself, or a small TaskTag that only named or traced
// tasks allocate. (The frame lost a word to pay for it: a context task's
// retained scope, which its ContextTaskLink already holds.)
//
// Hooks: every event site is `if (trace_hooks()) [[unlikely]] ...`: one
// relaxed load of a global pointer and a branch predicted not taken; the work
// is in cold, out-of-line functions. The thread-local id of the task whose
// run slice is open on this thread (tl_trace_task) is kept only while hooks
// are installed.

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <version>

#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

#include "frame_alloc.hpp"

namespace skein::detail {

/// Where a call is, in one word: std::source_location where the library has
/// it, else the file and line from the compiler's builtins (clang 14 with
/// libstdc++). `SourceSite where = SourceSite::current()` as a default
/// argument records the caller's call, as std::source_location does. (One
/// word matters: a 16-byte site passed by value measurably slowed a task's
/// start, and a task's frame keeps it.)
class SourceSite {
public:
  constexpr SourceSite() noexcept = default;
#if defined(__cpp_lib_source_location)
  static constexpr SourceSite current(std::source_location l = std::source_location::current()) noexcept {
    SourceSite s;
    s.l_ = l;
    return s;
  }
  /// The file's name ("" if unknown).
  [[nodiscard]] constexpr const char* file_name() const noexcept { return l_.file_name(); }
  [[nodiscard]] constexpr unsigned line() const noexcept { return static_cast<unsigned>(l_.line()); }
  /// The calling function's name ("" if unknown).
  [[nodiscard]] constexpr const char* function_name() const noexcept { return l_.function_name(); }

private:
  friend class TaskIdent;
  // libstdc++'s and libc++'s source_location are one pointer to a static
  // record (aligned, so its low bit is free for TaskIdent).
  static_assert(sizeof(std::source_location) == sizeof(std::uintptr_t) &&
                std::is_trivially_copyable_v<std::source_location>);
  [[nodiscard]] std::uintptr_t bits() const noexcept { return std::bit_cast<std::uintptr_t>(l_); }
  static SourceSite from_bits(std::uintptr_t b) noexcept {
    SourceSite s;
    s.l_ = std::bit_cast<std::source_location>(b);
    return s;
  }
  std::source_location l_{};
#else
  // The file's address above bit 17, the line (up to 65535) above bit 1: a
  // 64-bit user-space address fits in 47 bits (else the file is left
  // unknown). A 32-bit build keeps no site.
  static SourceSite current(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) noexcept {
    SourceSite s;
    const auto p = reinterpret_cast<std::uintptr_t>(file);
    if constexpr (sizeof(std::uintptr_t) >= 8) {
      const std::uintptr_t l = line > 0xFFFF ? 0xFFFF : line;
      s.bits_ = ((p >> 47) == 0 ? p << 17 : 0) | (l << 1);
    }
    return s;
  }
  [[nodiscard]] const char* file_name() const noexcept {
    const std::uintptr_t p = bits_ >> 17;
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  [[nodiscard]] unsigned line() const noexcept { return static_cast<unsigned>((bits_ >> 1) & 0xFFFF); }
  [[nodiscard]] const char* function_name() const noexcept { return ""; }

private:
  friend class TaskIdent;
  [[nodiscard]] std::uintptr_t bits() const noexcept { return bits_; }
  static SourceSite from_bits(std::uintptr_t b) noexcept {
    SourceSite s;
    s.bits_ = b;
    return s;
  }
  std::uintptr_t bits_ = 0;
#endif
};

/// Where a task was started and, optionally, its name (a string that outlives
/// every use of the trace: a literal, typically).
struct TaskSite {
  SourceSite where{};
  const char* name = nullptr;
};

/// Why a task suspended: the kind of thing it waits on (a type name such as
/// "skein::Mutex") and its address, when known.
struct WaitReason {
  const char* kind = nullptr;
  const void* object = nullptr;
};

/// A task as the hooks see it at its spawn and start.
struct TaskInfo {
  std::uint64_t id = 0;
  std::uint64_t parent = 0;  // the task that started it (0: a thread outside any task)
  const char* name = nullptr;
  SourceSite where{};
};

/// Receives the runtime's events (install with skein::trace::set_hooks). Every
/// member is called on the thread where the event happens, may be called
/// from many threads at once, must not throw, should be quick, and must not
/// wait on skein (it runs in the middle of a task's suspension or wake-up).
class TraceHooks {
public:
  /// A task was created (on the starting thread).
  virtual void on_spawn(const TaskInfo&) noexcept {}
  /// A task starts running, on this thread (its first run slice).
  virtual void on_start(const TaskInfo&) noexcept {}
  /// The task running on this thread suspends (its slice ends); `coroutine`
  /// is the frame that will be woken (see on_wake).
  virtual void on_suspend(std::uint64_t task, const WaitReason& why, const void* coroutine) noexcept {
    (void)task, (void)why, (void)coroutine;
  }
  /// A suspended task runs again, on this thread.
  virtual void on_resume(std::uint64_t task, const void* coroutine) noexcept { (void)task, (void)coroutine; }
  /// A task ends (its last slice ends).
  virtual void on_finish(std::uint64_t task) noexcept { (void)task; }
  /// Task `notifier` (0: a thread outside any task) made `coroutine` runnable;
  /// the next on_resume with that coroutine is the woken side.
  virtual void on_wake(std::uint64_t notifier, const void* coroutine) noexcept { (void)notifier, (void)coroutine; }
  /// A thread blocks in a wait (trace_block) / wakes from it (trace_unblock).
  virtual void on_block(std::uint64_t task, const WaitReason& why) noexcept { (void)task, (void)why; }
  virtual void on_unblock(std::uint64_t task) noexcept { (void)task; }

protected:
  ~TraceHooks() = default;
};

inline std::atomic<TraceHooks*> g_trace_hooks{nullptr};

/// The installed hooks, or null: the check at every event site.
inline bool trace_hooks() noexcept { return g_trace_hooks.load(std::memory_order_relaxed) != nullptr; }

/// The task whose run slice is open on this thread (only kept while tracing).
inline thread_local std::uint64_t tl_trace_task = 0;

inline std::uint64_t next_task_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

/// A task's site, name and trace id, for a task that has a name or that
/// hooks see (a small allocation only those make).
struct TaskTag : FrameCached {
  SourceSite where;
  const char* name = nullptr;
  std::uint64_t id = 0;
};

/// A task's identity, in one word of its frame: its start site, or (low bit
/// set) its TaskTag. An untraced, unnamed task allocates nothing for it.
class TaskIdent {
public:
  explicit TaskIdent(const SourceSite& where) noexcept : bits_(where.bits()) {}
  TaskIdent(const TaskIdent&) = delete;
  TaskIdent& operator=(const TaskIdent&) = delete;
  ~TaskIdent() {
    if (bits_ & 1) [[unlikely]]
      drop_tag();
  }

  /// Names the task. Throws std::bad_alloc.
  void set_name(const char* name) {
    if (!tag()) attach(new TaskTag);
    tag()->name = name;
  }
  [[nodiscard]] SourceSite where() const noexcept { return tag() ? tag()->where : SourceSite::from_bits(bits_); }
  [[nodiscard]] const char* name() const noexcept { return tag() ? tag()->name : nullptr; }
  /// The trace id (0: none given).
  [[nodiscard]] std::uint64_t id() const noexcept { return tag() ? tag()->id : 0; }
  /// The trace id, given now if the task has none (0: no memory for it).
  [[gnu::cold, gnu::noinline]] std::uint64_t trace_id() noexcept {
    if (!tag()) {
      try {
        attach(new TaskTag);
      } catch (...) {  // no memory: the task goes untraced
        return 0;
      }
    }
    if (tag()->id == 0) tag()->id = next_task_id();
    return tag()->id;
  }

private:
  [[gnu::cold, gnu::noinline]] void drop_tag() noexcept { delete tag(); }
  [[nodiscard]] TaskTag* tag() const noexcept {
    return (bits_ & 1) ? reinterpret_cast<TaskTag*>(bits_ & ~std::uintptr_t{1}) : nullptr;
  }
  void attach(TaskTag* t) noexcept {
    t->where = SourceSite::from_bits(bits_);
    bits_ = reinterpret_cast<std::uintptr_t>(t) | 1;
  }
  std::uintptr_t bits_;
};

/// Names a task (out of line: a named task is the rare one). Without memory
/// for the name, the task goes unnamed: a name is for diagnostics only.
[[gnu::cold, gnu::noinline]] inline void name_task(TaskIdent& task, const char* name) noexcept {
  try {
    task.set_name(name);
  } catch (...) {
  }
}

/// The name of type T ("skein::Mutex"), for wait reasons: a static string.
template <class T>
constexpr std::string_view raw_type_name() noexcept {
#if defined(__clang__) || defined(__GNUC__)
  std::string_view s = __PRETTY_FUNCTION__;
  const std::size_t b = s.find("T = ");
  if (b == std::string_view::npos) return "?";
  s.remove_prefix(b + 4);
  std::size_t e = s.find(';');
  if (e == std::string_view::npos) e = s.rfind(']');
  return s.substr(0, e);
#else
  return "?";
#endif
}
template <class T>
struct TypeName {
  static constexpr std::size_t n = raw_type_name<T>().size();
  struct Chars {
    char c[n + 1];
  };
  static constexpr Chars make() noexcept {
    Chars out{};
    const auto s = raw_type_name<T>();
    for (std::size_t i = 0; i < n; ++i) out.c[i] = s[i];
    out.c[n] = '\0';
    return out;
  }
  static constexpr Chars chars = make();
};
template <class T>
constexpr const char* type_name() noexcept {
  return TypeName<T>::chars.c;
}

// --- the cold side of the event sites ---------------------------------------------

[[gnu::cold]] inline TraceHooks* trace_target() noexcept { return g_trace_hooks.load(std::memory_order_acquire); }

[[gnu::cold, gnu::noinline]] inline void trace_spawn(TaskIdent& task) noexcept {
  TraceHooks* h = trace_target();
  if (!h) return;
  if (const std::uint64_t id = task.trace_id()) h->on_spawn(TaskInfo{id, tl_trace_task, task.name(), task.where()});
}

[[gnu::cold, gnu::noinline]] inline void trace_start(TaskIdent& task) noexcept {
  TraceHooks* h = trace_target();
  if (!h) return;
  const std::uint64_t id = task.trace_id();
  if (!id) return;
  tl_trace_task = id;
  h->on_start(TaskInfo{id, 0, task.name(), task.where()});
}

/// The task `id` (0: untraced) resumes on this thread unless its slice is open here already.
[[gnu::cold, gnu::noinline]] inline void trace_resume(std::uint64_t id, const void* coroutine) noexcept {
  TraceHooks* h = trace_target();
  if (!h || !id || tl_trace_task == id) return;
  tl_trace_task = id;
  h->on_resume(id, coroutine);
}

/// The task `id` suspends, if its slice is open on this thread (a coroutine
/// awaiting another of the same task that has already suspended does not
/// suspend the task a second time). A coroutine's `id` is 0 until its first
/// suspension: then it is the task running on this thread.
[[gnu::cold, gnu::noinline]] inline void trace_suspend(std::uint64_t& id, const WaitReason& why,
                                                       const void* coroutine) noexcept {
  TraceHooks* h = trace_target();
  if (!h) return;
  if (!id) id = tl_trace_task;
  if (!id || tl_trace_task != id) return;
  tl_trace_task = 0;
  h->on_suspend(id, why, coroutine);
}

[[gnu::cold, gnu::noinline]] inline void trace_finish(std::uint64_t id, const void* coroutine) noexcept {
  TraceHooks* h = trace_target();
  if (!h || !id) return;
  if (tl_trace_task != id) h->on_resume(id, coroutine);  // its end came back on another thread
  tl_trace_task = 0;
  h->on_finish(id);
}

[[gnu::cold, gnu::noinline]] inline void trace_wake(const void* coroutine) noexcept {
  if (TraceHooks* h = trace_target()) h->on_wake(tl_trace_task, coroutine);
}

/// For blocking waits of a thread (a parker): call trace_block before the
/// thread sleeps and trace_unblock after it wakes, when trace_hooks() is true.
[[gnu::cold, gnu::noinline]] inline void trace_block(const char* kind, const void* object) noexcept {
  if (TraceHooks* h = trace_target()) h->on_block(tl_trace_task, WaitReason{kind, object});
}
[[gnu::cold, gnu::noinline]] inline void trace_unblock() noexcept {
  if (TraceHooks* h = trace_target()) h->on_unblock(tl_trace_task);
}

}  // namespace skein::detail
