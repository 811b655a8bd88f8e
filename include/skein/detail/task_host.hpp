#pragma once
// TaskHost: an executor that runs skein tasks (run_task). Whatever the
// executor — a ThreadPool's PoolCore, an EventLoop, a user's ExecutorBase — a
// task started on it is one coroutine frame that hops onto it, is counted by
// goroutines(), is bound to the context it was started in, and is cancelled
// when the host shuts down. The host keeps what that needs: its root scope
// (the stop source its shutdown fires), its count of live tasks, and the list
// of its live context-bound tasks (whose contexts a dying host cancels).

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>  // the registry

#include "deadlock_monitor.hpp"
#include "frame_alloc.hpp"
#include "runtime.hpp"

namespace skein::detail {

/// Intrusive link of a live context-bound task, so a dying host can cancel the
/// contexts of the tasks it still runs.
/// What a TaskGroup learns from each of its own tasks, on the task's thread:
/// its error (before the task settles) and its end (before the task stops
/// counting in its context, so that a wait for the context sees both).
class GroupHook {
public:
  virtual void task_failed(const std::exception_ptr& e) noexcept = 0;
  virtual void task_done() noexcept = 0;
  /// Each task of the group holds a reference from its start to its end.
  virtual void retain() noexcept = 0;
  virtual void release() noexcept = 0;

protected:
  ~GroupHook() = default;
};

struct ContextTaskLink : FrameCached {  // made by the task's starter, freed by its ender
  ContextTaskLink* prev = nullptr;
  ContextTaskLink* next = nullptr;
  Scope* ctx = nullptr;
  GroupHook* group = nullptr;  // a TaskGroup's own task
};

/// Counts a host's live tasks as two monotonic counts, started and finished.
/// A thread that owns a pair (a pool's worker, for its pool) bumps it with a
/// plain load and store on its own cache line — no locked instruction on a
/// task's start or end; other threads share striped atomic counters. A read
/// sums every finished count first and every started count after it, so
/// `started - finished` never undercounts, and reading zero means that every
/// task started by the first read had ended by then.
class TaskCount {
public:
  struct alignas(64) Owned {
    std::atomic<long> started{0};
    std::atomic<long> finished{0};
  };

  void started() noexcept {
    if (Owned* o = owned()) {
      o->started.store(o->started.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    } else {
      started_.add(1);
    }
  }
  void finished() noexcept {
    // release: a reader that sees this end also sees the task's start.
    if (Owned* o = owned()) {
      o->finished.store(o->finished.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    } else {
      finished_.add(1);
    }
  }
  [[nodiscard]] long load() const {
    std::lock_guard lk(mu_);
    long f = finished_.load();
    for (const auto& o : owned_) f += o->finished.load(std::memory_order_acquire);
    long s = started_.load();
    for (const auto& o : owned_) s += o->started.load(std::memory_order_acquire);
    return s - f;
  }

  /// A new pair for one thread (bind it on that thread with bind_thread); it
  /// lives as long as this count. Throws std::bad_alloc.
  Owned* add_owner() {
    auto o = std::make_unique<Owned>();
    std::lock_guard lk(mu_);
    owned_.push_back(std::move(o));
    return owned_.back().get();
  }
  /// From now on the calling thread counts this host's tasks in `o`.
  void bind_thread(Owned* o) noexcept {
    tl_owner = this;
    tl_owned = o;
  }

private:
  Owned* owned() const noexcept { return tl_owner == this ? tl_owned : nullptr; }
  static inline thread_local const TaskCount* tl_owner = nullptr;
  static inline thread_local Owned* tl_owned = nullptr;

  StripedCounter started_;
  StripedCounter finished_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Owned>> owned_;
};

class TaskHost;

inline TaskHost& host_of(TaskHost& h) noexcept { return h; }

/// Every live host, so that goroutines() can sum their task counts (cheaper
/// than a second process-wide counter updated by every task).
struct HostRegistry {
  std::mutex mu;
  std::vector<TaskHost*> hosts;
};
inline HostRegistry& host_registry() {
  static HostRegistry r;
  return r;
}

class TaskHost : public Executor {
public:
  TaskHost(const TaskHost&) = delete;
  TaskHost& operator=(const TaskHost&) = delete;

  /// Tasks started on every host that have not finished.
  static long live_tasks_everywhere() {
    std::lock_guard lk(host_registry().mu);
    long n = 0;
    for (auto* h : host_registry().hosts) n += h->live_.load();
    return n;
  }

  /// The root scope: tasks outside any context observe it; shutdown stops it.
  [[nodiscard]] Scope& scope() noexcept { return scope_; }
  TaskCount& live_tasks() noexcept { return live_; }

  /// True for a host that runs everything on one thread (an EventLoop): the
  /// promises of its tasks are settled only there, so blocking on one from
  /// that thread could never end (Promise::get throws UsageError instead).
  bool single_threaded = false;

  void link_context_task(ContextTaskLink* l) {
    std::lock_guard lk(ctx_mu_);
    l->prev = nullptr;
    l->next = ctx_tasks_;
    if (ctx_tasks_) ctx_tasks_->prev = l;
    ctx_tasks_ = l;
  }
  void unlink_context_task(ContextTaskLink* l) noexcept {
    std::lock_guard lk(ctx_mu_);
    if (l->prev)
      l->prev->next = l->next;
    else
      ctx_tasks_ = l->next;
    if (l->next) l->next->prev = l->prev;
    l->prev = l->next = nullptr;
  }

protected:
  /// Throws std::bad_alloc (registering).
  TaskHost() {
    std::lock_guard lk(host_registry().mu);
    host_registry().hosts.push_back(this);
    g_live_tasks_fn.store(&TaskHost::live_tasks_everywhere, std::memory_order_release);  // for the deadlock report
  }
  ~TaskHost() {
    std::lock_guard lk(host_registry().mu);
    auto& v = host_registry().hosts;
    v.erase(std::find(v.begin(), v.end(), this));
  }

  /// Cancels the contexts of the context-bound tasks this host still runs
  /// (their waits observe the context's token, not the host's root scope).
  /// Allocates nothing, so it cannot fail: one context at a time is picked
  /// under the lock and cancelled outside it (a stop callback may start a
  /// task, which links itself under the same lock). Each pass cancels one
  /// context that was not cancelled yet, so the passes end.
  void cancel_context_tasks() noexcept {
    for (;;) {
      Scope* c = nullptr;
      {
        std::lock_guard lk(ctx_mu_);
        for (auto* l = ctx_tasks_; l && !c; l = l->next)
          if (!l->ctx->stop_requested()) {
            c = l->ctx;
            c->retain();  // the task holds a reference, and cannot unlink while we hold ctx_mu_
          }
      }
      if (!c) return;
      c->request_stop();
      c->release();
    }
  }

  Scope scope_;
  TaskCount live_;

private:
  SpinLock ctx_mu_;  // held for a few instructions, by task starts and ends
  ContextTaskLink* ctx_tasks_ = nullptr;
};

}  // namespace skein::detail
