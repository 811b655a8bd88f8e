#pragma once
/// Runtime: the state one script program shares (host, context, store, the objects the modules made).

#include "../detail/config.hpp"  // first: the C++20 check

#include <algorithm>
#include <atomic>
#include <cstdio>
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
#include "../detail/assert.hpp"
#include "../errors.hpp"
#include "../promise.hpp"
#include "../thread_pool.hpp"
#include "host.hpp"
#include "value.hpp"

namespace skein::script {

/// What a script program may take. Each 0 means "no bound". A bound that is
/// hit is a script-level error in the task that asked (its message names the
/// limit); nothing the program holds is leaked, and the host stays usable.
struct Limits {
  /// Live script tasks: threads.run / spawn / a group's tasks, scheduler
  /// runs, and a Pool's workers (counted while the Pool lives).
  std::size_t max_tasks = 0;
  /// OS threads the program's tasks may hold, blocked or running: the
  /// program gets a pool of its own with this thread bound (its parallelism
  /// is min(cpus(), max_threads)). A wait that would block past it fails.
  std::size_t max_threads = 0;
  /// Bytes across all of the program's interpreter states (the host charges
  /// its allocator to Runtime::memory(); see MemoryBudget).
  std::size_t max_memory = 0;
  /// Items a queue may be asked to hold: an unbounded queue holds at most
  /// this many (a put past it fails), and a larger capacity is refused.
  std::size_t max_queue_items = 0;
};

/// Bytes in use across a program's interpreter states, against a limit (0:
/// none). Hosts charge in chunks (one atomic per many allocations) and never
/// refuse an allocation their own glue makes, only the script's.
class MemoryBudget {
public:
  explicit MemoryBudget(std::size_t limit) noexcept : limit_(limit) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  [[nodiscard]] std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  /// True once the bytes in use reached the limit (never without one).
  [[nodiscard]] bool exhausted() const noexcept { return limit_ > 0 && used() >= limit_; }
  /// Charges `n` bytes if they fit under the limit (always without one, or
  /// when `force`); false, charging nothing, if they do not.
  bool charge(std::size_t n, bool force = false) noexcept {
    std::size_t cur = used_.load(std::memory_order_relaxed);
    do {
      if (!force && limit_ > 0 && (n > limit_ || cur > limit_ - n)) return false;
    } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
    return true;
  }
  void release(std::size_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }

  /// "64 MiB", "1.5 KiB", "100 bytes": for messages.
  static std::string describe(std::size_t bytes) {
    static const char* const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
      v /= 1024;
      ++u;
    }
    char buf[32];
    if (u == 0)
      std::snprintf(buf, sizeof buf, "%zu bytes", bytes);
    else
      std::snprintf(buf, sizeof buf, "%.4g %s", v, units[u]);
    return buf;
  }

private:
  const std::size_t limit_;
  std::atomic<std::size_t> used_{0};
};

/// The values one of a program's objects keeps (a queue's items, a shared
/// variable, the store), charged to the program's MemoryBudget while kept.
/// Free without a memory limit. Releases at most what it holds (a value
/// that went in by another way is never released twice).
class KeptValues {
public:
  KeptValues() = default;
  KeptValues(const KeptValues&) = delete;
  KeptValues& operator=(const KeptValues&) = delete;
  ~KeptValues() { detach(); }

  /// From now on, charges `b` (if it has a limit).
  void bind(MemoryBudget& b) noexcept {
    if (b.limit() > 0) budget_ = &b;
  }
  /// Charges `v`; false, charging nothing, if it does not fit under the limit.
  bool take(const Value& v, std::size_t& bytes) noexcept {
    bytes = 0;
    if (!budget_) return true;
    bytes = footprint(v);
    if (!budget_->charge(bytes)) return false;
    held_.fetch_add(bytes, std::memory_order_relaxed);
    return true;
  }
  /// Releases `bytes` (at most what is held).
  void give(std::size_t bytes) noexcept {
    if (!budget_ || bytes == 0) return;
    std::size_t cur = held_.load(std::memory_order_relaxed), n;
    do {
      n = bytes < cur ? bytes : cur;
    } while (!held_.compare_exchange_weak(cur, cur - n, std::memory_order_relaxed));
    budget_->release(n);
  }
  /// Releases what `v` was charged (a value leaving the object).
  void give(const Value& v) noexcept {
    if (budget_) give(footprint(v));
  }
  /// Releases everything and stops charging (the program ends; see Object::clear).
  void detach() noexcept {
    if (!budget_) return;
    budget_->release(held_.exchange(0, std::memory_order_relaxed));
    budget_ = nullptr;
  }

private:
  MemoryBudget* budget_ = nullptr;
  std::atomic<std::size_t> held_{0};
};

/// The state one script program shares: its host, its cancellation context
/// (every task the modules start is bound to it), the `runtime.core` store,
/// and the objects the modules made. Destroying it cancels its tasks, waits
/// for them, then clears those objects' contents — handles are shared
/// pointers, and a script can make cycles (`q:put(q)`) that would leak.
class Runtime {
public:
  struct Options {
    Isolation run_isolation = Isolation::empty;  ///< for threads.run and threads.Pool
    /// Bounds on what the program may take; each 0 is "no bound" (see Limits).
    Limits limits{};
    /// The host opens only its safe library set in every environment (for
    /// Lua: no io, no os beyond clock/time/date, no debug, no C modules or
    /// files for require, load of text only; see docs/script.md).
    bool safe_libraries = false;
  };

  explicit Runtime(Host& host) : Runtime(host, Options{}, Context()) {}
  Runtime(Host& host, Options opts, Context ctx = Context())
      : host_(host), opts_(opts), ctx_(std::move(ctx)), memory_(opts.limits.max_memory) {
    if (opts_.limits.max_threads > 0) {
      const std::size_t n = std::min(skein::cpus(), opts_.limits.max_threads);
      pool_ = std::make_unique<ThreadPool>(n, opts_.limits.max_threads);
    }
    idle_envs_.reserve(std::max<std::size_t>(4, 2 * skein::cpus()));  // recycled environments kept at most
    store_kept_.bind(memory_);
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
      store_kept_.detach();
    }
    // Every state is closed and every object's values released: nothing stays charged.
    SKEIN_ASSERT(memory_.used() == 0, "a program's memory budget is back to 0 when it ends");
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
    return ctx_.run(executor(), std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// The pool the program's tasks run on: its own, bounded by
  /// Limits::max_threads, or else default_pool().
  [[nodiscard]] ThreadPool& executor() const noexcept { return pool_ ? *pool_ : default_pool(); }

  /// Live tasks counted against Limits::max_tasks, held by the task (or the
  /// Pool) they were admitted for; released when destroyed. Move-only.
  class TaskSlots {
  public:
    TaskSlots() noexcept : rt_(nullptr), n_(0) {}
    TaskSlots(TaskSlots&& o) noexcept : rt_(std::exchange(o.rt_, nullptr)), n_(o.n_) {}
    TaskSlots& operator=(TaskSlots&& o) noexcept {
      if (this != &o) {
        release();
        rt_ = std::exchange(o.rt_, nullptr);
        n_ = o.n_;
      }
      return *this;
    }
    ~TaskSlots() { release(); }

  private:
    friend class Runtime;
    TaskSlots(Runtime* rt, std::size_t n) noexcept : rt_(rt), n_(n) {}
    void release() noexcept {
      if (rt_) rt_->admitted_.fetch_sub(n_, std::memory_order_relaxed);
      rt_ = nullptr;
    }
    Runtime* rt_;
    std::size_t n_;
  };
  /// Admits `n` more live tasks under Limits::max_tasks, or throws
  /// ScriptError("<who>: ...") naming the limit. Free without a limit.
  [[nodiscard]] TaskSlots admit_tasks(std::size_t n, const std::string& who) {
    // A task's first need is a state: none while the memory budget is spent.
    if (memory_.exhausted()) throw memory_error(who);
    const std::size_t max = opts_.limits.max_tasks;
    if (max == 0) return {};
    const std::size_t before = admitted_.fetch_add(n, std::memory_order_relaxed);
    if (before + n > max) {
      admitted_.fetch_sub(n, std::memory_order_relaxed);
      throw ScriptError(
          who + ": the script's limit of " + std::to_string(max) + " live tasks (max_tasks) is reached" +
          (n > 1 ? " (" + std::to_string(n) + " more asked for, " + std::to_string(before) + " live)" : std::string()));
    }
    return TaskSlots(this, n);
  }
  /// The error of a call that would pass Limits::max_memory.
  [[nodiscard]] ScriptError memory_error(const std::string& who) const {
    return ScriptError(who + ": not enough memory: the script's memory limit of " +
                       MemoryBudget::describe(memory_.limit()) + " (max_memory) is reached");
  }

  /// Live tasks admitted under Limits::max_tasks (0 without that limit).
  [[nodiscard]] std::size_t admitted_tasks() const noexcept { return admitted_.load(std::memory_order_relaxed); }

  /// The memory budget shared by every environment of this program (see
  /// MemoryBudget); the host charges its interpreter's allocations to it.
  [[nodiscard]] MemoryBudget& memory() noexcept { return memory_; }

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
    if (!env) {
      // A new environment is the largest allocation a task makes: not past the budget.
      if (memory_.exhausted())
        throw ScriptError("not enough memory: the script's memory limit of " + MemoryBudget::describe(memory_.limit()) +
                          " (max_memory) is reached");
      return host_.create_environment(*this, globals);
    }
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
  /// The task holds `slots` (admit_tasks) until it ends.
  Promise<Value> start(FunctionRef fn, std::vector<Value> args, std::optional<Dict> globals, TaskSlots slots = {}) {
    return current_context().run(
        executor(),
        [body = task_body()](TaskSlots, FunctionRef f, std::vector<Value> a, std::optional<Dict> g) -> Value {
          return body(std::move(f), std::move(a), std::move(g));
        },
        std::move(slots), std::move(fn), std::move(args), std::move(globals));
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
  /// Under Limits::max_queue_items the store holds at most that many keys:
  /// a new key past it is a ScriptError (an existing key may be replaced).
  void share(std::string key, Value v) {
    std::unique_lock lk(store_mu_);
    auto it = store_.find(key);
    const std::size_t max = opts_.limits.max_queue_items;
    if (max > 0 && store_.size() >= max && it == store_.end())
      throw ScriptError("runtime.core.share: the store holds the script's limit of " + std::to_string(max) +
                        " keys (max_queue_items)");
    std::size_t bytes = 0;
    if (!store_kept_.take(v, bytes)) throw memory_error("runtime.core.share");
    Value old;
    if (it == store_.end()) {
      try {
        store_.emplace(std::move(key), std::move(v));
      } catch (...) {
        store_kept_.give(bytes);
        throw;
      }
    } else {
      old = std::exchange(it->second, std::move(v));
      store_kept_.give(old);
    }
    lk.unlock();  // `old` is destroyed outside the lock
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
  std::unique_ptr<ThreadPool> pool_;  // Limits::max_threads: the program's own; destroyed after its tasks ended
  Context ctx_;
  MemoryBudget memory_;
  std::atomic<std::size_t> admitted_{0};  // live tasks under Limits::max_tasks
  mutable std::mutex store_mu_;
  std::map<std::string, Value, std::less<>> store_;
  KeptValues store_kept_;       // the store's values, charged to memory_ (declared after it)
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
