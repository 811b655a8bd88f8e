#pragma once
/// The handle types scripts hold (Atomic, Shared, Queue, WaitGroup, Promise, Pool, Mutex, RWLock, Semaphore, Group).

#include "../detail/config.hpp"  // first: the C++20 check

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../atomic.hpp"
#include "../detail/deadline.hpp"
#include "../detail/spin.hpp"
#include "../context.hpp"
#include "../errors.hpp"
#include "../mutex.hpp"
#include "../pool.hpp"
#include "../promise.hpp"
#include "../queue.hpp"
#include "../run.hpp"
#include "../rwlock.hpp"
#include "../semaphore.hpp"
#include "../shared.hpp"
#include "../task_group.hpp"
#include "../wait_group.hpp"
#include "call.hpp"
#include "host.hpp"
#include "runtime.hpp"
#include "value.hpp"

namespace skein::script {

/// How long a script waiting for a task's promise polls it before blocking (see settle_briefly).
inline constexpr std::chrono::microseconds kScriptTaskSpin{25};

// --- handle types ------------------------------------------------------------------

namespace impl {
inline std::chrono::nanoseconds seconds(const Call& c, const Value& v, std::string_view what) {
  return c.duration<std::chrono::duration<double>>(v, what);
}
inline std::optional<Dict> snapshot_if(Call& c, bool clone) {
  if (clone && c.caller()) return c.caller()->snapshot_globals();
  return std::nullopt;
}
}  // namespace impl

#define SKEIN_SCRIPT_OBJECT(Name)                                                      \
  static constexpr std::string_view kTypeName = #Name;                                 \
  std::string_view type_name() const noexcept override { return kTypeName; }           \
  std::span<const Method> methods() const noexcept override { return method_table(); } \
  static std::span<const Method> method_table() noexcept

/// threads.Atomic / thread.atomic: a lock-free 64-bit integer.
class AtomicObject final : public Object {
public:
  explicit AtomicObject(std::int64_t v) : value(v) {}
  SKEIN_SCRIPT_OBJECT(Atomic) {
    static const Method m[] = {
        {"add",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"delta", Value(1)}});
           return self(o).value.add(c.integer(a[0], "delta"));
         }},
        {"get", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).value.get(); }},
        {"load", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).value.load(); }},
        {"set",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"value"}});
           self(o).value.set(c.integer(a[0], "value"));
           return {};
         }},
        {"store",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"value"}});
           self(o).value.store(c.integer(a[0], "value"));
           return {};
         }},
        {"cas",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"expected"}, {"desired"}});
           return self(o).value.cas(c.integer(a[0], "expected"), c.integer(a[1], "desired"));
         }},
        {"exchange",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"value"}});
           return self(o).value.exchange(c.integer(a[0], "value"));
         }},
    };
    return m;
  }
  skein::Atomic<std::int64_t> value;

private:
  static AtomicObject& self(Object& o) { return static_cast<AtomicObject&>(o); }
};

/// threads.Shared: a value behind a lock; get() returns a copy.
class SharedObject final : public Object {
public:
  explicit SharedObject(Value v) : value(std::move(v)) {}
  SKEIN_SCRIPT_OBJECT(Shared) {
    static const Method m[] = {
        {"get", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).value.get(); }},
        {"set",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"value"}});
           auto& me = self(o);
           std::size_t bytes = 0;
           if (!me.kept.take(a[0], bytes)) throw c.runtime().memory_error(c.name());
           Value old;
           try {
             old = me.value.update([&](Value& v) { return std::exchange(v, std::move(a[0])); });
           } catch (...) {
             me.kept.give(bytes);
             throw;
           }
           me.kept.give(old);
           return {};
         }},
        // update(func): func receives a copy of the value under the lock; what
        // it returns becomes the new value (and is returned). If func raises,
        // the value is unchanged.
        {"update",
         [](Object& o, Call& c) -> Value {
           c.no_kwargs();
           if (c.args().size() != 1)
             c.fail("takes 1 argument, a function (" + std::to_string(c.args().size()) + " given)");
           (void)c.function(c.args()[0], "argument 1");
           auto& caller = c.need_caller("update");
           auto& me = self(o);
           return me.value.update([&](Value& v) {
             auto r = caller.invoke_argument(0, {v});
             if (r.empty()) c.fail("the function must return the new value");
             std::size_t bytes = 0;
             if (!me.kept.take(r.front(), bytes)) throw c.runtime().memory_error(c.name());
             me.kept.give(v);
             v = std::move(r.front());
             return v;
           });
         }},
    };
    return m;
  }
  void clear() noexcept override {
    try {
      Value old = value.update([](Value& v) { return std::exchange(v, Value()); });
    } catch (...) {  // the lock is a skein::Mutex: a cancelled caller may not take it; the cycle stays
    }
    kept.detach();
  }
  /// Charges the value to the program's memory limit, if any (once, when made).
  void keep_in(Call& c) {
    kept.bind(c.runtime().memory());
    std::size_t bytes = 0;
    if (!kept.take(value.get(), bytes)) throw c.runtime().memory_error(c.name());
  }
  skein::Shared<Value> value;
  KeptValues kept;  // the value, charged to Limits::max_memory

private:
  static SharedObject& self(Object& o) { return static_cast<SharedObject&>(o); }
};

/// threads.Queue / thread.channel: FIFO, bounded (or unbounded: 0), closable.
/// An empty result (closed and drained, or timed out) is none.
class QueueObject final : public Object {
public:
  explicit QueueObject(std::size_t maxsize) : queue(maxsize) {}
  explicit QueueObject(skein::unbuffered_t u) : queue(u) {}
  SKEIN_SCRIPT_OBJECT(Queue) {
    static const Method m[] = {
        {"put",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"item"}});
           self(o).charged_put(c, a[0], [&](Value& v) {
             if (self(o).capped)
               self(o).put_capped(c, std::move(v));
             else
               self(o).queue.put(std::move(v));
             return true;
           });
           return {};
         }},
        {"get", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).taken(self(o).queue.get()); }},
        {"try_put",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"item"}});
           return self(o).charged_put(c, a[0], [&](Value& v) {
             if (self(o).capped) return self(o).put_capped(c, std::move(v)), true;
             return self(o).queue.try_put(std::move(v));
           });
         }},
        {"try_get", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).taken(self(o).queue.try_get()); }},
        {"put_for",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"item"}, {"timeout"}});
           auto d = impl::seconds(c, a[1], "timeout (seconds)");
           return self(o).charged_put(c, a[0], [&](Value& v) {
             if (self(o).capped) return self(o).put_capped(c, std::move(v)), true;
             return self(o).queue.put_for(std::move(v), d);
           });
         }},
        {"get_for",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"timeout"}});
           return self(o).taken(self(o).queue.get_for(impl::seconds(c, a[0], "timeout (seconds)")));
         }},
        {"size", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).queue.size(); }},
        {"capacity", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).queue.capacity(); }},
        {"close", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).queue.close(), Value(); }},
        {"closed", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).queue.closed(); }},
    };
    return m;
  }
  void clear() noexcept override {
    try {
      while (queue.try_get()) {
      }
    } catch (...) {  // a throwing Value move cannot happen (nothrow); never escape a noexcept
    }
    kept.detach();
  }
  /// Puts `v` by `put(v)` (false: not queued), charged to the program's
  /// memory limit while queued: refused past it.
  template <class Put>
  bool charged_put(Call& c, Value& v, Put put) {
    std::size_t bytes = 0;
    if (!kept.take(v, bytes)) throw c.runtime().memory_error(c.name());
    bool queued = false;
    try {
      queued = put(v);
    } catch (...) {
      kept.give(bytes);
      throw;
    }
    if (!queued) kept.give(bytes);
    return queued;
  }
  /// An item taken out (by a get, a select): no longer charged. None for none.
  Value taken(std::optional<Value> v) noexcept {
    if (!v) return {};
    kept.give(*v);
    return std::move(*v);
  }
  skein::Queue<Value> queue;
  /// Unbounded to the script, bounded by Limits::max_queue_items: a put
  /// past the limit fails (an unbounded put never waits).
  bool capped = false;
  KeptValues kept;  // the queued items, charged to Limits::max_memory

private:
  void put_capped(Call& c, Value item) {
    if (queue.try_put(std::move(item))) return;
    if (queue.closed()) throw Closed("put on a closed Queue");
    c.fail("the queue holds the script's limit of " + std::to_string(queue.capacity()) + " items (max_queue_items)");
  }
  static QueueObject& self(Object& o) { return static_cast<QueueObject&>(o); }
};

/// threads.WaitGroup.
class WaitGroupObject final : public Object {
public:
  SKEIN_SCRIPT_OBJECT(WaitGroup) {
    static const Method m[] = {
        {"add",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"delta", Value(1)}});
           self(o).wg.add(c.integer(a[0], "delta"));
           return {};
         }},
        {"done", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).wg.done(), Value(); }},
        {"wait", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).wg.wait(), Value(); }},
        {"wait_for",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"timeout"}});
           return self(o).wg.wait_for(impl::seconds(c, a[0], "timeout (seconds)"));
         }},
        {"count", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).wg.count(); }},
    };
    return m;
  }
  skein::WaitGroup wg;

private:
  static WaitGroupObject& self(Object& o) { return static_cast<WaitGroupObject&>(o); }
};

/// threads.run's and thread.async.run's result.
/// Polls `p` for up to kScriptTaskSpin before a blocking wait parks the
/// thread: a script task takes a few microseconds more than the executor's
/// own spin covers, and waking a parked thread costs 10–70 µs on a VM.
inline void settle_briefly(const Promise<Value>& p) noexcept {
  if (p.ready()) return;
  const auto until = detail::deadline_after(kScriptTaskSpin);
  for (int i = 0; !p.ready(); ++i) {
    detail::cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) return;
  }
}

class PromiseObject final : public Object {
public:
  explicit PromiseObject(Promise<Value> p) : promise(std::move(p)) {}
  SKEIN_SCRIPT_OBJECT(Promise) {
    static const Method m[] = {
        {"get",
         [](Object& o, Call& c) -> Value {
           c.bind({});
           settle_briefly(self(o).promise);
           return self(o).promise.get();
         }},
        {"wait",
         [](Object& o, Call& c) -> Value {
           c.bind({});
           settle_briefly(self(o).promise);
           self(o).promise.wait();  // rethrows the task's error
           return {};
         }},
        {"wait_for",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"timeout"}});
           return self(o).promise.wait_for(impl::seconds(c, a[0], "timeout (seconds)"));
         }},
        {"ready", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).promise.ready(); }},
    };
    return m;
  }
  Promise<Value> promise;

private:
  static PromiseObject& self(Object& o) { return static_cast<PromiseObject&>(o); }
};

/// threads.Pool / thread.pool: `workers` tasks apply a script function to
/// submitted items. Each worker reuses one environment across items (as
/// Scriptling's Pool reuses its goroutines). A worker's error is kept and raised by
/// wait()/close(); it never loses the other items.
class PoolObject final : public Object {
public:
  /// The workers hold `slots` (Runtime::admit_tasks) while the Pool lives.
  PoolObject(Runtime& rt, FunctionRef fn, std::size_t workers, std::size_t depth, std::optional<Dict> globals,
             Runtime::TaskSlots slots = {})
      : slots_(std::move(slots)),
        envs_(std::make_shared<Envs>(rt, std::move(globals))),
        pool_(rt.executor(), Worker{envs_, std::move(fn)}, check_workers(workers), depth) {}
  SKEIN_SCRIPT_OBJECT(Pool) {
    static const Method m[] = {
        {"submit",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"item"}});
           self(o).pool_.submit(std::move(a[0]));
           return {};
         }},
        {"wait", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).pool_.wait(), Value(); }},
        {"close", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).pool_.close(), Value(); }},
        {"workers", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).pool_.workers(); }},
        {"pending", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).pool_.pending(); }},
    };
    return m;
  }

  /// Drops the idle environments and the globals copy (both may hold handles).
  void clear() noexcept override {
    std::vector<std::unique_ptr<Environment>> idle;
    std::optional<Dict> globals;
    {
      std::lock_guard lk(envs_->mu);
      idle.swap(envs_->idle);
      globals.swap(envs_->globals);
    }
  }

private:
  struct Envs {
    Envs(Runtime& r, std::optional<Dict> g) : rt(r), globals(std::move(g)) {}
    Runtime& rt;
    std::optional<Dict> globals;
    std::mutex mu;
    std::vector<std::unique_ptr<Environment>> idle;
  };
  struct Worker {
    std::shared_ptr<Envs> envs;
    FunctionRef fn;
    void operator()(Value item) const {
      std::unique_ptr<Environment> env;
      {
        std::lock_guard lk(envs->mu);
        if (!envs->idle.empty()) {
          env = std::move(envs->idle.back());
          envs->idle.pop_back();
        }
      }
      if (!env) env = envs->rt.host().create_environment(envs->rt, envs->globals ? &*envs->globals : nullptr);
      struct GiveBack {
        Envs& e;
        std::unique_ptr<Environment>& env;
        ~GiveBack() {
          std::lock_guard lk(e.mu);
          e.idle.push_back(std::move(env));
        }
      } back{*envs, env};
      std::vector<Value> args;
      args.push_back(std::move(item));
      (void)env->call(*fn, std::move(args));
    }
  };
  static std::size_t check_workers(std::size_t n) {
    if (n == 0) throw UsageError("a Pool needs at least one worker");
    return n;
  }
  static PoolObject& self(Object& o) { return static_cast<PoolObject&>(o); }

  Runtime::TaskSlots slots_;  // released after the workers ended (members go in reverse order)
  std::shared_ptr<Envs> envs_;
  skein::Pool<Value> pool_;
};

/// thread.mutex.
class MutexObject final : public Object {
public:
  SKEIN_SCRIPT_OBJECT(Mutex) {
    static const Method m[] = {
        {"lock", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).mutex.lock(), Value(); }},
        {"unlock", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).mutex.unlock(), Value(); }},
        {"try_lock", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).mutex.try_lock(); }},
    };
    return m;
  }
  skein::Mutex mutex;

private:
  static MutexObject& self(Object& o) { return static_cast<MutexObject&>(o); }
};

/// thread.rwlock: writers are not starved.
class RWLockObject final : public Object {
public:
  SKEIN_SCRIPT_OBJECT(RWLock) {
    static const Method m[] = {
        {"lock", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).lock.lock(), Value(); }},
        {"unlock", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).lock.unlock(), Value(); }},
        {"try_lock", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).lock.try_lock(); }},
        {"rlock", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).lock.lock_shared(), Value(); }},
        {"runlock", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).lock.unlock_shared(), Value(); }},
        {"try_rlock", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).lock.try_lock_shared(); }},
    };
    return m;
  }
  skein::RWLock lock;

private:
  static RWLockObject& self(Object& o) { return static_cast<RWLockObject&>(o); }
};

/// thread.semaphore: at most `permits` holders; releasing past that is an error.
class SemaphoreObject final : public Object {
public:
  explicit SemaphoreObject(std::ptrdiff_t permits) : sem(permits) {}
  SKEIN_SCRIPT_OBJECT(Semaphore) {
    static const Method m[] = {
        {"acquire", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).sem.acquire(), Value(); }},
        {"try_acquire", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).sem.try_acquire(); }},
        {"release",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"n", Value(1)}});
           self(o).sem.release(static_cast<std::ptrdiff_t>(c.size(a[0], "n")));
           return {};
         }},
        {"available", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).sem.available(); }},
    };
    return m;
  }
  skein::Semaphore sem;

private:
  static SemaphoreObject& self(Object& o) { return static_cast<SemaphoreObject&>(o); }
};

namespace impl {

/// A new handle object; those that hold values are registered with the runtime (see ~Runtime).
template <class O, class... A>
std::shared_ptr<O> make(Call& c, A&&... a) {
  auto obj = std::make_shared<O>(std::forward<A>(a)...);
  if constexpr (std::is_same_v<O, QueueObject>) obj->kept.bind(c.runtime().memory());
  if constexpr (std::is_same_v<O, SharedObject>) obj->keep_in(c);
  if constexpr (std::is_same_v<O, SharedObject> || std::is_same_v<O, QueueObject> || std::is_same_v<O, PoolObject> ||
                std::is_same_v<O, PromiseObject>)
    c.runtime().adopt(obj);
  return obj;
}

/// Starts a script task: fn(args..., kwargs by parameter name) in a fresh environment.
/// The function and arguments of a call that starts a script task:
/// fn(args..., kwargs by parameter name), fn at position `first`.
inline std::pair<FunctionRef, std::vector<Value>> script_task_call(Call& c, std::size_t first) {
  auto& args = c.args();
  if (args.size() <= first) c.fail("missing the function to run");
  auto fn = c.function(args[first], first == 0 ? "argument 1" : "argument " + std::to_string(first + 1));
  std::vector<Value> rest(std::make_move_iterator(args.begin() + static_cast<std::ptrdiff_t>(first) + 1),
                          std::make_move_iterator(args.end()));
  rest = bind_script_arguments(c, *fn, std::move(rest), std::move(c.kwargs()));
  return {std::move(fn), std::move(rest)};
}

/// Starts a script task: fn(args..., kwargs by parameter name) in a fresh environment.
inline Promise<Value> start_script_task(Call& c, std::size_t first, bool clone) {
  auto [fn, rest] = script_task_call(c, first);
  auto slots = c.runtime().admit_tasks(1, c.name());
  return c.runtime().start(std::move(fn), std::move(rest), snapshot_if(c, clone), std::move(slots));
}

/// thread.core.spawn: a fire-and-forget script task. Its error, unless the
/// task was cancelled, makes the whole program fail fast (Runtime::fail);
/// handle errors inside the task (pcall) to keep it running.
inline void spawn_script_task(Call& c) {
  auto [fn, rest] = script_task_call(c, 0);
  Runtime& rt = c.runtime();
  auto slots = rt.admit_tasks(1, c.name());
  rt.current_context().spawn(
      rt.executor(),
      [&rt, body = rt.task_body()](Runtime::TaskSlots, FunctionRef f, std::vector<Value> a, std::optional<Dict> g) {
        try {
          (void)body(std::move(f), std::move(a), std::move(g));
        } catch (...) {
          // Stopped by a cancellation (the runtime's, a group's, a timeout): not a failure of its own.
          if (this_task::cancelled()) return;
          rt.fail(std::current_exception());
        }
      },
      std::move(slots), std::move(fn), std::move(rest), snapshot_if(c, true));
}

/// threads.Group / thread.group: a TaskGroup whose tasks run script
/// functions. The runtime keeps it while it has tasks (Runtime::keep_while),
/// so dropping the script's handle neither cancels nor waits: the tasks end
/// by themselves, by the group's first error, by cancel(), or with the runtime.
class GroupObject final : public Object {
public:
  explicit GroupObject(const Context& parent) : group(parent) {}
  SKEIN_SCRIPT_OBJECT(TaskGroup) {
    static const Method m[] = {
        {"run", [](Object& o, Call& c) -> Value { return self(o).start(c, false); }},
        {"try_run", [](Object& o, Call& c) -> Value { return self(o).start(c, true); }},
        {"wait",
         [](Object& o, Call& c) -> Value {
           c.bind({});
           self(o).group.wait();  // rethrows the first error
           return {};
         }},
        {"cancel", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).group.cancel(), Value(); }},
        {"cancelled", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).group.cancelled(); }},
        {"tasks", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).group.tasks(); }},
        {"errors",
         [](Object& o, Call& c) -> Value {
           c.bind({});
           List out;
           for (auto& e : self(o).group.errors()) out.emplace_back(detail::describe_error(e));
           return out;
         }},
        {"set_limit",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"limit"}});
           self(o).group.set_limit(a[0].is_none() ? -1 : c.count31(a[0], "limit"));
           return {};
         }},
    };
    return m;
  }
  TaskGroup group;

  bool clone = false;  // the tasks get a copy of the caller's globals

private:
  static GroupObject& self(Object& o) { return static_cast<GroupObject&>(o); }
  Value start(Call& c, bool only_if_free) {
    auto [fn, rest] = script_task_call(c, 0);
    auto globals = snapshot_if(c, clone);
    auto body = [inner = c.runtime().task_body()](Runtime::TaskSlots, FunctionRef f, std::vector<Value> a,
                                                  std::optional<Dict> g) -> Value {
      try {
        return inner(std::move(f), std::move(a), std::move(g));
      } catch (const TaskError& e) {
        // The script stopped because the group was cancelled (its waits
        // raised a script error): a cancellation, which the group absorbs
        // when it cancelled itself.
        if (this_task::cancelled()) throw Cancelled(e.what());
        throw;
      }
    };
    auto& ex = c.runtime().executor();
    auto slots = c.runtime().admit_tasks(1, c.name());
    if (!only_if_free)
      return make<PromiseObject>(
          c, group.run(ex, std::move(body), std::move(slots), std::move(fn), std::move(rest), std::move(globals)));
    auto p = group.try_run(ex, std::move(body), std::move(slots), std::move(fn), std::move(rest), std::move(globals));
    if (!p) return {};
    return make<PromiseObject>(c, std::move(*p));
  }
};

#undef SKEIN_SCRIPT_OBJECT

}  // namespace impl

}  // namespace skein::script
