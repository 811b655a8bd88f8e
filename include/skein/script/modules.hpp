#pragma once
/// The modules: threads, thread and runtime, as NativeFunctions over the handle types.

#include "../detail/config.hpp"  // first: the C++20 check

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../context.hpp"
#include "../promise.hpp"
#include "../queue.hpp"
#include "../select.hpp"
#include "../sleep.hpp"
#include "../thread_pool.hpp"
#include "call.hpp"
#include "host.hpp"
#include "objects.hpp"
#include "runtime.hpp"
#include "value.hpp"

namespace skein::script {

// --- modules -------------------------------------------------------------------------

/// A module function: `threads.run`, `thread.channel.send`, ...
struct NativeFunction {
  std::string_view name;
  Value (*fn)(Call&);
};
/// A module: functions and submodules (`thread.channel` is a submodule of `thread`).
struct Module {
  std::string_view name;
  std::vector<NativeFunction> functions;
  std::vector<Module> submodules;
};

namespace impl {

/// The values scripts attach to a group (threads.Group(values=...)): one
/// dictionary per context, merged with the enclosing one's when made.
inline const ContextKey<Dict>& script_values_key() {
  static const ContextKey<Dict> key{"script values"};
  return key;
}

/// threads.value / thread.core.value: the value under `key` in the calling task's group, or `fallback`.
inline Value script_value(const Value& key, Value fallback) {
  if (const Dict* d = this_task::value(script_values_key()))
    if (const Value* v = find(*d, key)) return *v;
  return fallback;
}

/// threads.Group(limit, values) / thread.group.new(limit, values): a group
/// under the calling task's context (the runtime's outside a task), whose
/// tasks see `values` (a dict, merged over the enclosing group's) through
/// threads.value / thread.core.value.
inline Value make_group(Call& c, const Value& limit, const Value& values, bool clone) {
  Context parent = c.runtime().current_context();
  if (!values.is_none()) {
    const Dict* add = values.get_if<Dict>();
    const List* empty = values.get_if<List>();  // an empty table may come as a list
    if (!add && !(empty && empty->empty())) c.fail("values must be a dict, got " + values.type_name());
    Dict merged;
    if (const Dict* outer = parent.value(script_values_key())) merged = *outer;
    if (add)
      for (const auto& e : *add) set(merged, e.key, e.value);
    parent = parent.with_value(script_values_key(), std::move(merged));
  }
  auto g = make<GroupObject>(c, parent);
  g->clone = clone;
  c.runtime().keep_while(g,
                         [](const Object& o) noexcept { return static_cast<const GroupObject&>(o).group.tasks() > 0; });
  if (!limit.is_none()) g->group.set_limit(c.count31(limit, "limit"));
  return g;
}

/// The thread.* function form of a method: `thread.channel.send(ch, v)` is `ch:put(v)`.
template <class O>
Value call_on(Call& c, std::string_view method) {
  auto& args = c.args();
  if (args.empty()) c.fail("missing argument 1 (a " + std::string(O::kTypeName) + ")");
  auto h = c.handle<O>(args[0], "argument 1");
  c.shift();
  return h->method(method)->fn(*h, c);
}

/// Runs `make()` inside a task of the runtime when called from outside one,
/// so that the tasks it starts (a Pool's workers) are bound to the runtime.
template <class F>
auto in_runtime(Call& c, F make) {
  if (Context::current()) return make();
  return c.runtime().run(std::move(make)).get();
}

/// The capacity a queue of `requested` items (0: unbounded) gets under
/// Limits::max_queue_items: a larger one is refused; an unbounded one gets
/// the limit.
inline std::size_t queue_capacity(Call& c, std::size_t requested, std::string_view what) {
  const std::size_t max = c.runtime().options().limits.max_queue_items;
  if (max == 0) return requested;
  if (requested > max)
    c.fail(std::string(what) + " " + std::to_string(requested) + " is above the script's limit of " +
           std::to_string(max) + " queued items (max_queue_items)");
  return requested == 0 ? max : requested;
}

/// A Queue of `requested` items (0: unbounded) under Limits::max_queue_items.
inline Value make_queue(Call& c, std::size_t requested, std::string_view what) {
  const std::size_t cap = queue_capacity(c, requested, what);
  auto q = make<QueueObject>(c, cap);
  q->capped = requested == 0 && cap != 0;  // unbounded to the script: a put past the limit fails, never blocks
  return q;
}

/// A script asking for more workers than this has a bug (each is a task with its own environment).
inline constexpr std::size_t kMaxPoolWorkers = 10000;

inline Value make_pool(Call& c, Isolation iso, std::string_view depth_name) {
  auto a = c.bind({{"worker_func"}, {"workers", Value(4)}, {depth_name, Value()}});
  auto fn = c.function(a[0], "worker_func");
  auto workers = c.size(a[1], "workers");
  if (workers == 0) c.fail("workers must be at least 1");
  if (workers > kMaxPoolWorkers)
    c.fail("workers must be at most " + std::to_string(kMaxPoolWorkers) + ", got " + std::to_string(workers));
  auto& rt = c.runtime();
  const std::size_t max_items = rt.options().limits.max_queue_items;
  // The default depth (workers * 2) stays within max_queue_items; a depth
  // asked for above it is refused; an unbounded one (0) gets it (submit waits).
  auto depth = a[2].is_none() ? (max_items ? std::min(workers * 2, max_items) : workers * 2)
                              : queue_capacity(c, c.size(a[2], depth_name), depth_name);
  auto globals = snapshot_if(c, iso == Isolation::clone);
  auto slots = rt.admit_tasks(workers, c.name());
  return in_runtime(c,
                    [&] { return make<PoolObject>(c, rt, fn, workers, depth, std::move(globals), std::move(slots)); });
}

/// `threads.select(cases)` / `thread.channel.select(cases)`: Go's select over
/// a list of cases, each a list: {"get"|"recv", queue}, {"put"|"send", queue,
/// item}, {"ready"|"await", promise}, {"after", duration} (seconds for
/// `threads`, milliseconds for `thread`), {"default"}. Returns the list
/// {n, value}: n is the winning case's position, counted from 1; value is the
/// item a get case received (none once its queue is closed and drained),
/// none for the others.
inline Value script_select(Call& c, bool seconds) {
  auto a = c.bind({{"cases"}});
  const List* cases = a[0].get_if<List>();
  if (!cases) c.fail("argument 1 must be a list of cases, got " + a[0].type_name());
  if (cases->empty()) c.fail("select needs at least one case");
  std::vector<Handle> keep;  // the objects the cases refer to, alive until the select ends
  std::vector<std::unique_ptr<detail::SelectCase>> owned;
  std::vector<GetCase<Value>*> gets(cases->size(), nullptr);
  std::vector<QueueObject*> queues(cases->size(), nullptr);  // of the get and put cases
  std::vector<std::size_t> charged(cases->size(), 0);        // what each put case's item was charged
  // The put cases' items are charged to the memory limit up front; all but the winner's are released.
  struct Release {
    std::vector<QueueObject*>& q;
    std::vector<std::size_t>& bytes;
    std::size_t won = static_cast<std::size_t>(-1);
    ~Release() {
      for (std::size_t i = 0; i < q.size(); ++i)
        if (q[i] && i != won) q[i]->kept.give(bytes[i]);
    }
  } release{queues, charged};
  std::size_t defaults = 0;
  for (std::size_t i = 0; i < cases->size(); ++i) {
    const std::string where = "case " + std::to_string(i + 1);
    const List* cl = (*cases)[i].get_if<List>();
    const std::string* kind = cl && !cl->empty() ? (*cl)[0].get_if<std::string>() : nullptr;
    if (!kind)
      c.fail(where +
             " must be a list starting with its kind (\"get\", \"put\", \"ready\", \"after\", \"default\"), got " +
             (*cases)[i].repr());
    auto arity = [&](std::size_t n) {
      if (cl->size() != n)
        c.fail(where + " (" + *kind + ") takes " + Call::count(n - 1, "argument") + ", got " +
               std::to_string(cl->size() - 1));
    };
    if (*kind == "get" || *kind == "recv") {
      arity(2);
      auto q = c.handle<QueueObject>((*cl)[1], where + ": the queue");
      auto g = std::make_unique<GetCase<Value>>(q->queue);
      gets[i] = g.get();
      queues[i] = q.get();
      owned.push_back(std::move(g));
      keep.push_back(std::move(q));
    } else if (*kind == "put" || *kind == "send") {
      arity(3);
      auto q = c.handle<QueueObject>((*cl)[1], where + ": the queue");
      if (!q->kept.take((*cl)[2], charged[i])) throw c.runtime().memory_error(c.name() + ": " + where);
      queues[i] = q.get();
      owned.push_back(std::make_unique<PutCase<Value>>(q->queue, (*cl)[2]));
      keep.push_back(std::move(q));
    } else if (*kind == "ready" || *kind == "await") {
      arity(2);
      auto p = c.handle<PromiseObject>((*cl)[1], where + ": the promise");
      owned.push_back(std::make_unique<ReadyCase>(detail::state_of(p->promise)));
      keep.push_back(std::move(p));
    } else if (*kind == "after") {
      arity(2);
      const auto d = seconds ? impl::seconds(c, (*cl)[1], where + ": the duration (seconds)")
                             : std::chrono::nanoseconds(c.duration<std::chrono::milliseconds>(
                                   (*cl)[1], where + ": the duration (milliseconds)"));
      owned.push_back(std::make_unique<AfterCase>(detail::deadline_after(d)));
    } else if (*kind == "default") {
      arity(1);
      if (++defaults > 1) c.fail("select takes at most one default case");
      owned.push_back(std::make_unique<DefaultCase>());
    } else {
      c.fail(where + " has an unknown kind \"" + *kind + "\" (get, put, ready, after or default)");
    }
  }
  std::vector<detail::SelectCase*> ptrs;
  ptrs.reserve(owned.size());
  for (auto& o : owned) ptrs.push_back(o.get());
  const auto w = static_cast<std::size_t>(skein::select_any(ptrs));
  Value v;
  if (gets[w]) {
    release.won = w;  // a get gives back what its item was charged, not what was charged for it
    if (gets[w]->result()) v = queues[w]->taken(std::move(*gets[w]->result()));
  } else if (queues[w]) {
    release.won = w;  // the item is queued now: it stays charged
  }
  return List{Value(w + 1), std::move(v)};
}

inline Module make_threads_module() {
  return Module{
      "threads",
      {
          {"run",
           [](Call& c) -> Value {
             bool clone = c.runtime().options().run_isolation == Isolation::clone;
             return make<PromiseObject>(c, start_script_task(c, 0, clone));
           }},
          {"Atomic",
           [](Call& c) -> Value {
             auto a = c.bind({{"initial", Value(0)}});
             return make<AtomicObject>(c, c.integer(a[0], "initial"));
           }},
          {"Shared",
           [](Call& c) -> Value {
             auto a = c.bind({{"initial_value", Value()}});
             return make<SharedObject>(c, std::move(a[0]));
           }},
          {"Queue",
           [](Call& c) -> Value {
             auto a = c.bind({{"maxsize", Value(0)}});
             return make_queue(c, c.size(a[0], "maxsize"), "maxsize");
           }},
          {"WaitGroup", [](Call& c) -> Value { return c.bind({}), make<WaitGroupObject>(c); }},
          {"Group",
           [](Call& c) -> Value {
             auto a = c.bind({{"limit", Value()}, {"values", Value()}});
             return make_group(c, a[0], a[1], c.runtime().options().run_isolation == Isolation::clone);
           }},
          {"value",
           [](Call& c) -> Value {
             auto a = c.bind({{"key"}, {"default", Value()}});
             return script_value(a[0], std::move(a[1]));
           }},
          {"select", [](Call& c) -> Value { return script_select(c, true); }},
          {"Pool", [](Call& c) -> Value { return make_pool(c, c.runtime().options().run_isolation, "queue_depth"); }},
      },
      {}};
}

inline Module make_thread_module() {
  using M = Module;
  return M{"thread",
           {},
           {
               M{"core",
                 {
                     {"spawn",
                      [](Call& c) -> Value {
                        spawn_script_task(c);
                        return {};
                      }},
                     {"sleep",
                      [](Call& c) -> Value {
                        auto& a = c.exactly(1);
                        skein::sleep_for(c.duration<std::chrono::milliseconds>(a[0], "milliseconds"));
                        return {};
                      }},
                     {"cpus", [](Call& c) -> Value { return c.exactly(0), static_cast<std::int64_t>(skein::cpus()); }},
                     {"goroutines", [](Call& c) -> Value { return c.exactly(0), c.runtime().tasks(); }},
                     {"value",
                      [](Call& c) -> Value {
                        auto& a = c.exactly(1, 1);
                        return script_value(a[0], a[1]);
                      }},
                 },
                 {}},
               M{"group",
                 {
                     {"new",
                      [](Call& c) -> Value {
                        auto& a = c.exactly(0, 2);
                        return make_group(c, a[0], a[1], true);
                      }},
                     {"run", [](Call& c) -> Value { return call_on<GroupObject>(c, "run"); }},
                     {"tryRun", [](Call& c) -> Value { return call_on<GroupObject>(c, "try_run"); }},
                     {"wait", [](Call& c) -> Value { return call_on<GroupObject>(c, "wait"); }},
                     {"cancel", [](Call& c) -> Value { return call_on<GroupObject>(c, "cancel"); }},
                     {"errors", [](Call& c) -> Value { return call_on<GroupObject>(c, "errors"); }},
                     {"setLimit", [](Call& c) -> Value { return call_on<GroupObject>(c, "set_limit"); }},
                 },
                 {}},
               M{"async",
                 {
                     {"run", [](Call& c) -> Value { return make<PromiseObject>(c, start_script_task(c, 0, true)); }},
                     {"await",
                      [](Call& c) -> Value {
                        auto& a = c.exactly(1);
                        auto& p = c.handle<PromiseObject>(a[0], "argument 1")->promise;
                        settle_briefly(p);
                        return p.get();
                      }},
                 },
                 {}},
               M{"channel",
                 {
                     {"new",
                      [](Call& c) -> Value {
                        // As in Go: no capacity, or 0, is an unbuffered channel.
                        auto& a = c.exactly(0, 1);
                        const std::size_t cap = a[0].is_none() ? 0 : c.size(a[0], "capacity");
                        if (cap == 0) return make<QueueObject>(c, skein::unbuffered);
                        return make_queue(c, cap, "capacity");
                      }},
                     {"select", [](Call& c) -> Value { return script_select(c, false); }},
                     {"send", [](Call& c) -> Value { return call_on<QueueObject>(c, "put"); }},
                     {"recv", [](Call& c) -> Value { return call_on<QueueObject>(c, "get"); }},
                     {"recvTimeout",
                      [](Call& c) -> Value {
                        auto& a = c.exactly(2);
                        auto q = c.handle<QueueObject>(a[0], "argument 1");
                        return q->taken(q->queue.get_for(c.duration<std::chrono::milliseconds>(a[1], "milliseconds")));
                      }},
                     {"close", [](Call& c) -> Value { return call_on<QueueObject>(c, "close"); }},
                     {"closed", [](Call& c) -> Value { return call_on<QueueObject>(c, "closed"); }},
                     {"len", [](Call& c) -> Value { return call_on<QueueObject>(c, "size"); }},
                     {"cap", [](Call& c) -> Value { return call_on<QueueObject>(c, "capacity"); }},
                 },
                 {}},
               M{"mutex",
                 {
                     {"new", [](Call& c) -> Value { return c.exactly(0), make<MutexObject>(c); }},
                     {"lock", [](Call& c) -> Value { return call_on<MutexObject>(c, "lock"); }},
                     {"unlock", [](Call& c) -> Value { return call_on<MutexObject>(c, "unlock"); }},
                     {"tryLock", [](Call& c) -> Value { return call_on<MutexObject>(c, "try_lock"); }},
                 },
                 {}},
               M{"rwlock",
                 {
                     {"new", [](Call& c) -> Value { return c.exactly(0), make<RWLockObject>(c); }},
                     {"lock", [](Call& c) -> Value { return call_on<RWLockObject>(c, "lock"); }},
                     {"unlock", [](Call& c) -> Value { return call_on<RWLockObject>(c, "unlock"); }},
                     {"tryLock", [](Call& c) -> Value { return call_on<RWLockObject>(c, "try_lock"); }},
                     {"rlock", [](Call& c) -> Value { return call_on<RWLockObject>(c, "rlock"); }},
                     {"runlock", [](Call& c) -> Value { return call_on<RWLockObject>(c, "runlock"); }},
                     {"tryRLock", [](Call& c) -> Value { return call_on<RWLockObject>(c, "try_rlock"); }},
                 },
                 {}},
               M{"semaphore",
                 {
                     {"new",
                      [](Call& c) -> Value {
                        auto& a = c.exactly(1);
                        return make<SemaphoreObject>(c, c.count31(a[0], "permits"));
                      }},
                     {"acquire", [](Call& c) -> Value { return call_on<SemaphoreObject>(c, "acquire"); }},
                     {"release", [](Call& c) -> Value { return call_on<SemaphoreObject>(c, "release"); }},
                     {"tryAcquire", [](Call& c) -> Value { return call_on<SemaphoreObject>(c, "try_acquire"); }},
                 },
                 {}},
               M{"atomic",
                 {
                     {"new",
                      [](Call& c) -> Value {
                        auto& a = c.exactly(0, 1);
                        return make<AtomicObject>(c, a[0].is_none() ? 0 : c.integer(a[0], "initial value"));
                      }},
                     {"load", [](Call& c) -> Value { return call_on<AtomicObject>(c, "load"); }},
                     {"store", [](Call& c) -> Value { return call_on<AtomicObject>(c, "store"); }},
                     {"add", [](Call& c) -> Value { return call_on<AtomicObject>(c, "add"); }},
                     {"cas", [](Call& c) -> Value { return call_on<AtomicObject>(c, "cas"); }},
                 },
                 {}},
               M{"pool",
                 {
                     {"new", [](Call& c) -> Value { return make_pool(c, Isolation::clone, "queueDepth"); }},
                     {"submit", [](Call& c) -> Value { return call_on<PoolObject>(c, "submit"); }},
                     {"wait", [](Call& c) -> Value { return call_on<PoolObject>(c, "wait"); }},
                     {"close", [](Call& c) -> Value { return call_on<PoolObject>(c, "close"); }},
                 },
                 {}},
               M{"scheduler",
                 {
                     // run(f1, f2, ...): one task runs the functions in order, in one
                     // environment with a copy of the caller's globals; the
                     // future's value is the list of their results. The first
                     // error stops the sequence and settles the future with it.
                     {"run",
                      [](Call& c) -> Value {
                        c.no_kwargs();
                        std::vector<FunctionRef> fns;
                        for (std::size_t i = 0; i < c.args().size(); ++i)
                          fns.push_back(c.function(c.args()[i], "argument " + std::to_string(i + 1)));
                        auto globals = snapshot_if(c, true);
                        auto& rt = c.runtime();
                        auto slots = rt.admit_tasks(1, c.name());
                        return make<PromiseObject>(c, rt.run(
                                                          [&rt](Runtime::TaskSlots, std::vector<FunctionRef> f,
                                                                std::optional<Dict> g) -> Value {
                                                            auto env = rt.acquire_environment(g ? &*g : nullptr);
                                                            struct GiveBack {
                                                              Runtime& rt;
                                                              std::unique_ptr<Environment>& env;
                                                              ~GiveBack() { rt.release_environment(std::move(env)); }
                                                            } back{rt, env};
                                                            List results;
                                                            for (auto& fn : f) results.push_back(env->call(*fn, {}));
                                                            return results;
                                                          },
                                                          std::move(slots), std::move(fns), std::move(globals)));
                      }},
                 },
                 {}},
           }};
}

inline Module make_runtime_module() {
  return Module{"runtime",
                {},
                {Module{"core",
                        {
                            {"share",
                             [](Call& c) -> Value {
                               auto& a = c.exactly(2);
                               c.runtime().share(c.string(a[0], "key"), std::move(a[1]));
                               return {};
                             }},
                            {"fetch",
                             [](Call& c) -> Value {
                               auto& a = c.exactly(1);
                               auto v = c.runtime().fetch(c.string(a[0], "key"));
                               return v ? std::move(*v) : Value();
                             }},
                        },
                        {}}}};
}

}  // namespace impl

/// `threads` (Scriptling's `threads` library): run, Atomic, Shared, Queue, WaitGroup, Pool; and skein's
/// additions select, Group, value.
inline const Module& threads_module() {
  static const Module m = impl::make_threads_module();
  return m;
}
/// `thread` (Langoost's `thread` and `runtime` modules): core, async, channel, mutex, rwlock, semaphore, atomic, pool,
/// scheduler.
inline const Module& thread_module() {
  static const Module m = impl::make_thread_module();
  return m;
}
/// `runtime` (Langoost's `thread` and `runtime` modules): core.share / core.fetch.
inline const Module& runtime_module() {
  static const Module m = impl::make_runtime_module();
  return m;
}
/// All three, for a host to install as globals.
inline std::vector<const Module*> modules() { return {&threads_module(), &thread_module(), &runtime_module()}; }

}  // namespace skein::script
