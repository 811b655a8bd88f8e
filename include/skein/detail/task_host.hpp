#pragma once
// TaskHost: an executor that runs skein tasks (run_task). Whatever the
// executor — a ThreadPool's PoolCore, an EventLoop, a user's ExecutorBase — a
// task started on it is one coroutine frame that hops onto it, is counted by
// goroutines(), is bound to the context it was started in, and is cancelled
// when the host shuts down. The host keeps what that needs: its root scope
// (the stop source its shutdown fires), its count of live tasks, and the list
// of its live context-bound tasks (whose contexts a dying host cancels).

#include <algorithm>
#include <mutex>
#include <vector>  // the registry

#include "runtime.hpp"

namespace skein::detail {

/// Intrusive link of a live context-bound task, so a dying host can cancel the
/// contexts of the tasks it still runs.
struct ContextTaskLink {
  ContextTaskLink* prev = nullptr;
  ContextTaskLink* next = nullptr;
  Scope* ctx = nullptr;
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
  StripedCounter& live_tasks() noexcept { return live_; }

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
      c->source.request_stop();
      c->release();
    }
  }

  Scope scope_;
  StripedCounter live_;

private:
  std::mutex ctx_mu_;
  ContextTaskLink* ctx_tasks_ = nullptr;
};

}  // namespace skein::detail
