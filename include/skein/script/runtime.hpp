#pragma once
/// Runtime: the state one script program shares (host, context, store, the objects the modules made).

#include "../detail/config.hpp"  // first: the C++20 check

#include <algorithm>
#include <cstddef>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../context.hpp"
#include "../errors.hpp"
#include "../promise.hpp"
#include "../thread_pool.hpp"
#include "host.hpp"
#include "value.hpp"

namespace skein::script {

/// The state one script program shares: its host, its cancellation context
/// (every task the modules start is bound to it), the `runtime.core` store,
/// and the objects the modules made. Destroying it cancels its tasks, waits
/// for them, then clears those objects' contents — handles are shared
/// pointers, and a script can make cycles (`q:put(q)`) that would leak.
class Runtime {
public:
  struct Options {
    Isolation run_isolation = Isolation::empty;  ///< for threads.run and threads.Pool
  };

  explicit Runtime(Host& host) : Runtime(host, Options{}, Context()) {}
  Runtime(Host& host, Options opts, Context ctx = Context()) : host_(host), opts_(opts), ctx_(std::move(ctx)) {
    idle_envs_.reserve(std::max<std::size_t>(4, 2 * skein::cpus()));  // recycled environments kept at most
  }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime() {
    ctx_.cancel();
    try {
      ctx_.wait();
    } catch (...) {  // called from one of its own tasks: nothing better to do than not wait
    }
    std::vector<std::unique_ptr<Environment>> idle;
    {
      std::lock_guard lk(envs_mu_);
      ending_ = true;
      idle.swap(idle_envs_);
    }
    idle.clear();  // first: the recycled environments may still hold handles in their garbage
    std::vector<std::shared_ptr<Object>> live;
    std::vector<Kept> kept;
    {
      std::lock_guard lk(objects_mu_);
      kept.swap(kept_);
    }
    kept.clear();  // the groups are idle now: their destructors only report errors nobody saw
    {
      std::lock_guard lk(objects_mu_);
      for (auto& w : objects_)
        if (auto o = w.lock()) live.push_back(std::move(o));
      objects_.clear();
    }
    for (auto& o : live) o->clear();
    {
      std::lock_guard lk(store_mu_);
      store_.clear();
    }
  }

  /// Registers an object the modules made (see the destructor); returns it.
  template <class O>
  std::shared_ptr<O> adopt(std::shared_ptr<O> obj) {
    std::lock_guard lk(objects_mu_);
    if (objects_.size() >= prune_at_) {
      std::erase_if(objects_, [](const std::weak_ptr<Object>& w) { return w.expired(); });
      prune_at_ = std::max<std::size_t>(64, 2 * objects_.size());
    }
    objects_.push_back(obj);
    return obj;
  }

  /// Keeps `obj` alive while `busy(obj)` or somebody else holds it, at
  /// most until the runtime ends (a group whose tasks run after the script
  /// dropped its handle). Pruned as `adopt` prunes.
  void keep_while(std::shared_ptr<Object> obj, bool (*busy)(const Object&) noexcept) {
    std::vector<Kept> done;
    {
      std::lock_guard lk(objects_mu_);
      if (kept_.size() >= kept_prune_at_) {
        // A stable partition by hand: std::stable_partition calls
        // std::get_temporary_buffer, deprecated, which clang 18 and newer
        // report from libstdc++ 12 (an error under -Werror). The reserve
        // makes the loop unable to throw half-way.
        done.reserve(kept_.size());
        auto it = kept_.begin();
        for (Kept& k : kept_) {
          if (k.obj.use_count() > 1 || k.busy(*k.obj)) {
            if (&*it != &k) *it = std::move(k);
            ++it;
          } else {
            done.push_back(std::move(k));
          }
        }
        kept_.erase(it, kept_.end());
        kept_prune_at_ = std::max<std::size_t>(64, 2 * kept_.size());
      }
      kept_.push_back(Kept{std::move(obj), busy});
    }
    // `done` is destroyed here, outside the lock.
  }

  [[nodiscard]] Host& host() const noexcept { return host_; }
  [[nodiscard]] const Options& options() const noexcept { return opts_; }
  [[nodiscard]] const Context& context() const noexcept { return ctx_; }

  /// Runs `f()` as a task of this runtime (e.g. the main script): module
  /// calls made from it are cancelled with the runtime.
  template <class F, class... Args>
  auto run(F&& f, Args&&... args) {
    return ctx_.run(std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// What a script task runs: fn(args...) in a fresh environment (with
  /// `globals` as its globals, if given).
  auto task_body() {
    return [this](FunctionRef f, std::vector<Value> a, std::optional<Dict> g) -> Value {
      auto env = acquire_environment(g ? &*g : nullptr);
      struct GiveBack {
        Runtime& rt;
        std::unique_ptr<Environment>& env;
        ~GiveBack() { rt.release_environment(std::move(env)); }
      } back{*this, env};
      return env->call(*f, std::move(a));
    };
  }

  /// An environment for a task: a recycled one if there is one (see
  /// Environment::recycle), else the host's new one; with `globals` added.
  std::unique_ptr<Environment> acquire_environment(const Dict* globals) {
    std::unique_ptr<Environment> env;
    {
      std::lock_guard lk(envs_mu_);
      if (!idle_envs_.empty()) {
        env = std::move(idle_envs_.back());
        idle_envs_.pop_back();
      }
    }
    if (!env) return host_.create_environment(*this, globals);
    if (globals) env->add_globals(*globals);
    return env;
  }
  /// Recycles `env` for the next task, or destroys it (it cannot be
  /// recycled, the runtime keeps enough, or the runtime is ending).
  void release_environment(std::unique_ptr<Environment> env) noexcept {
    if (!env || !env->recycle()) return;
    std::unique_lock lk(envs_mu_);
    if (idle_envs_.size() < idle_envs_.capacity() && !ending_) idle_envs_.push_back(std::move(env));  // no allocation
    lk.unlock();  // a surplus `env` is destroyed outside the lock
  }
  /// Starts task_body() as a task of the calling task's context if that is
  /// the runtime's or inside it (a group's), else of the runtime's context.
  Promise<Value> start(FunctionRef fn, std::vector<Value> args, std::optional<Dict> globals) {
    return current_context().run(task_body(), std::move(fn), std::move(args), std::move(globals));
  }
  /// The context new tasks of a module call belong to (see start).
  [[nodiscard]] Context current_context() const {
    auto cur = Context::current();
    return cur && ctx_.encloses(*cur) ? *cur : ctx_;
  }

  /// A fire-and-forget task (thread.core.spawn) failed and nothing handled
  /// its error: the program fails fast, as a Go program does on a panic in a
  /// goroutine. The first such error is kept (failure()) and the runtime is
  /// cancelled with it as the cause, so every task and every wait stops
  /// promptly; a later one goes to the unhandled-error handler (none is dropped).
  void fail(std::exception_ptr e) noexcept {
    bool first = false;
    {
      std::lock_guard lk(store_mu_);
      if (!failure_) {
        failure_ = e;
        first = true;
      }
    }
    if (first)
      ctx_.cancel(std::move(e));
    else
      detail::report_unhandled(std::move(e));
  }
  /// The error that made the program fail fast (see fail()), or null.
  [[nodiscard]] std::exception_ptr failure() const {
    std::lock_guard lk(store_mu_);
    return failure_;
  }

  /// Live tasks started by this runtime (thread.core.goroutines()).
  [[nodiscard]] std::size_t tasks() const noexcept { return ctx_.tasks(); }
  /// Waits until every task of this runtime has finished.
  void wait() const { ctx_.wait(); }
  /// Cancels every task: their waits throw, their script code is stopped by the host's check.
  void cancel() const noexcept { ctx_.cancel(); }

  /// runtime.core.share / fetch: a process-wide store of copied values.
  void share(std::string key, Value v) {
    std::lock_guard lk(store_mu_);
    store_[std::move(key)] = std::move(v);
  }
  [[nodiscard]] std::optional<Value> fetch(const std::string& key) const {
    std::lock_guard lk(store_mu_);
    auto it = store_.find(key);
    if (it == store_.end()) return std::nullopt;
    return it->second;
  }

private:
  Host& host_;
  Options opts_;
  Context ctx_;
  mutable std::mutex store_mu_;
  std::map<std::string, Value, std::less<>> store_;
  std::exception_ptr failure_;  // under store_mu_
  struct Kept {
    std::shared_ptr<Object> obj;
    bool (*busy)(const Object&) noexcept;
  };
  std::mutex objects_mu_;
  std::vector<std::weak_ptr<Object>> objects_;
  std::size_t prune_at_ = 64;
  std::vector<Kept> kept_;
  std::size_t kept_prune_at_ = 64;
  std::mutex envs_mu_;
  std::vector<std::unique_ptr<Environment>> idle_envs_;  // recycled, for the next tasks
  bool ending_ = false;                                  // under envs_mu_
};

}  // namespace skein::script
