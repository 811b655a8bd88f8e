#pragma once
/// <skein/script.hpp>: the scripting APIs — Scriptling's `threads` library,
/// Langoost's `thread` and `runtime` modules — written once
/// over a dynamic `Value`, so that an interpreter offers them with little glue.
///
/// What a host (the glue for one interpreter) provides:
///  - `Function`: a script function in a portable form (e.g. Lua bytecode)
///    that can be loaded into another environment; the host converts its
///    own function values to it (and says their parameter names, for
///    keyword arguments);
///  - `Environment`: one interpreter instance (a lua_State, a VM) that can
///    call a `Function` with `Value` arguments; used by one thread at a time;
///  - `Host::create_environment(globals)`: a fresh environment with only the
///    libraries and these modules, optionally with a copy of a caller's
///    globals (Scriptling's "clone" isolation);
///  - `Caller` (per call, optional): what only the calling environment can do
///    — snapshot its globals, call one of its own arguments in place;
///  - a check for cancellation inside long-running script code: the host
///    polls `skein::this_task::cancelled()` (e.g. from an instruction-count
///    hook) and raises a script error when it is true.
/// The host turns each `Module`'s `NativeFunction`s and each handle's
/// `Method`s into callables of its language, converting arguments to `Value`
/// and calling `invoke`, which maps every error to a `ScriptError` whose
/// message is ready to show to the script.

#include "detail/config.hpp"  // first: the C++20 check

#include <algorithm>
#include <iterator>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "atomic.hpp"
#include "context.hpp"
#include "errors.hpp"
#include "mutex.hpp"
#include "pool.hpp"
#include "promise.hpp"
#include "queue.hpp"
#include "run.hpp"
#include "rwlock.hpp"
#include "select.hpp"
#include "semaphore.hpp"
#include "shared.hpp"
#include "sleep.hpp"
#include "task_group.hpp"
#include "thread_pool.hpp"
#include "wait_group.hpp"

namespace skein::script {

/// A script-level error: bad input to a module function, or an error raised
/// by script code in a task. `what()` is the message to show the script.
class ScriptError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// An error raised by script code (in a task, or in a function called back),
/// carried unchanged to whoever observes it (Promise.get, Pool.close, ...).
/// Hosts throw it from Environment::call; they show its message as it is.
class TaskError : public ScriptError {
public:
  using ScriptError::ScriptError;
};

class Value;
class Object;
class Call;

/// The none value (nil, None, null).
struct None {
  friend bool operator==(None, None) noexcept { return true; }
};
using List = std::vector<Value>;
struct DictEntry;
/// A dictionary in insertion order. Keys are none-free scalars (bool, integer, float, string).
using Dict = std::vector<DictEntry>;

/// A script function in a form that can cross into another environment.
/// Hosts derive from it (e.g. holding Lua bytecode). Immutable once made.
class Function {
public:
  virtual ~Function() = default;
  /// For messages: e.g. "function <script.lua:12>".
  [[nodiscard]] virtual std::string describe() const = 0;
  /// Its parameter names in order, if the host knows them (needed for keyword arguments).
  [[nodiscard]] virtual const std::vector<std::string>* parameters() const noexcept { return nullptr; }
  /// Whether it accepts any number of extra positional arguments.
  [[nodiscard]] virtual bool variadic() const noexcept { return true; }
};
using FunctionRef = std::shared_ptr<const Function>;
using Handle = std::shared_ptr<Object>;

/// A dynamic script value. Copies are deep for lists and dicts; functions are
/// immutable and shared; handles refer to the same skein object.
class Value {
public:
  enum class Kind { none, boolean, integer, number, string, list, dict, function, handle };
  using Storage = std::variant<None, bool, std::int64_t, double, std::string, List, Dict, FunctionRef, Handle>;

  // (Constructors that are not templates are defined after DictEntry: the
  // variant needs Dict's element type complete wherever it is built.)
  Value() noexcept = default;
  Value(None) noexcept;
  Value(bool b) noexcept;
  template <class I>
    requires(std::is_integral_v<I> && !std::is_same_v<I, bool>)
  Value(I i) noexcept;
  Value(double d) noexcept;
  Value(const char* s);
  Value(std::string s) noexcept;
  Value(std::string_view s);
  Value(List l) noexcept;
  Value(Dict d) noexcept;
  Value(FunctionRef f) noexcept;
  template <class O>
    requires std::is_base_of_v<Object, O>
  Value(std::shared_ptr<O> h) noexcept;

  [[nodiscard]] Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
  [[nodiscard]] bool is_none() const noexcept { return kind() == Kind::none; }
  template <class T>
  [[nodiscard]] const T* get_if() const noexcept {
    return std::get_if<T>(&v_);
  }
  template <class T>
  [[nodiscard]] T* get_if() noexcept {
    return std::get_if<T>(&v_);
  }
  [[nodiscard]] const Storage& storage() const noexcept { return v_; }

  /// "none", "boolean", "integer", "float", "string", "list", "dict",
  /// "function", or the handle's type ("Queue", "Mutex", ...).
  [[nodiscard]] std::string type_name() const;
  /// A short printable form for messages and tests: 3, 2.5, "text", [1, 2], {a: 1}, <Queue>.
  [[nodiscard]] std::string repr() const;

  /// Structural equality; functions and handles compare by identity.
  friend bool operator==(const Value& a, const Value& b);

private:
  Storage v_;
};

struct DictEntry {
  Value key;
  Value value;
};

template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>)
Value::Value(I i) noexcept : v_(static_cast<std::int64_t>(i)) {}
template <class O>
  requires std::is_base_of_v<Object, O>
Value::Value(std::shared_ptr<O> h) noexcept : v_(Handle(std::move(h))) {
  if (!std::get<Handle>(v_)) v_ = None{};
}
inline Value::Value(None) noexcept {}
inline Value::Value(bool b) noexcept : v_(b) {}
inline Value::Value(double d) noexcept : v_(d) {}
inline Value::Value(const char* s) : v_(std::string(s)) {}
inline Value::Value(std::string s) noexcept : v_(std::move(s)) {}
inline Value::Value(std::string_view s) : v_(std::string(s)) {}
inline Value::Value(List l) noexcept : v_(std::move(l)) {}
inline Value::Value(Dict d) noexcept : v_(std::move(d)) {}
inline Value::Value(FunctionRef f) noexcept : v_(std::move(f)) {
  if (!std::get<FunctionRef>(v_)) v_ = None{};
}

/// The entry for `key` in `d`, or nullptr.
inline const Value* find(const Dict& d, const Value& key) {
  for (auto& e : d)
    if (e.key == key) return &e.value;
  return nullptr;
}
/// Sets `d[key] = v` (replacing, or appending in insertion order).
inline void set(Dict& d, Value key, Value v) {
  for (auto& e : d)
    if (e.key == key) {
      e.value = std::move(v);
      return;
    }
  d.push_back(DictEntry{std::move(key), std::move(v)});
}

using Kwargs = std::vector<std::pair<std::string, Value>>;

/// A method of a handle type: `Queue.put`, `Promise.get`, ...
struct Method {
  std::string_view name;
  Value (*fn)(Object& self, Call& call);
};

/// A skein object a script holds a handle to. Handles are shared between
/// environments and threads; every method is thread-safe.
class Object {
public:
  virtual ~Object() = default;
  [[nodiscard]] virtual std::string_view type_name() const noexcept = 0;
  [[nodiscard]] virtual std::span<const Method> methods() const noexcept = 0;
  /// Drops the values it holds (Runtime's destructor calls it, once every
  /// task has finished, to break cycles: a queue holding its own handle).
  virtual void clear() noexcept {}
  /// The method called `name`, or nullptr.
  [[nodiscard]] const Method* method(std::string_view name) const noexcept {
    for (auto& m : methods())
      if (m.name == name) return &m;
    return nullptr;
  }
};

/// One interpreter instance (a lua_State, a VM). Used by one thread at a time.
class Environment {
public:
  virtual ~Environment() = default;
  /// Calls `f(args...)` here; returns its (first) result. Throws TaskError
  /// with the script's message if the script raises an error (or is
  /// cancelled), ScriptError if an argument or the result cannot be converted.
  virtual Value call(const Function& f, std::vector<Value> args) = 0;
};

/// What an interpreter provides to the modules.
class Host {
public:
  virtual ~Host() = default;
  /// A fresh environment with the interpreter's libraries and the skein
  /// modules, bound to `rt`; with `globals` (name → value) as its global
  /// variables when not null. Called on the thread that will use it.
  virtual std::unique_ptr<Environment> create_environment(class Runtime& rt, const Dict* globals) = 0;
};

/// What only the calling environment can do; implemented by the host's glue
/// for the duration of one call (optional: null where the host has none).
class Caller {
public:
  virtual ~Caller() = default;
  /// A deep copy of the caller's global variables (Scriptling's clone isolation).
  virtual Dict snapshot_globals() = 0;
  /// Calls the call's argument `index` (0-based, a function) in the caller's
  /// own environment, closures intact; returns every result.
  virtual std::vector<Value> invoke_argument(std::size_t index, std::vector<Value> args) = 0;
};

/// How `threads.run` tasks see the caller's globals.
enum class Isolation {
  empty,  ///< Scriptling's explicit passing: only the libraries; data passes as arguments
  clone,  ///< Scriptling's cloned environment: a deep copy of the caller's globals
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
  };

  explicit Runtime(Host& host) : Runtime(host, Options{}, Context()) {}
  Runtime(Host& host, Options opts, Context ctx = Context()) : host_(host), opts_(opts), ctx_(std::move(ctx)) {}
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime() {
    ctx_.cancel();
    try {
      ctx_.wait();
    } catch (...) {  // called from one of its own tasks: nothing better to do than not wait
    }
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
        auto it = std::stable_partition(kept_.begin(), kept_.end(),
                                        [](const Kept& k) { return k.obj.use_count() > 1 || k.busy(*k.obj); });
        std::move(it, kept_.end(), std::back_inserter(done));
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
      auto env = host_.create_environment(*this, g ? &*g : nullptr);
      return env->call(*f, std::move(a));
    };
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
  struct Kept {
    std::shared_ptr<Object> obj;
    bool (*busy)(const Object&) noexcept;
  };
  std::mutex objects_mu_;
  std::vector<std::weak_ptr<Object>> objects_;
  std::size_t prune_at_ = 64;
  std::vector<Kept> kept_;
  std::size_t kept_prune_at_ = 64;
};

/// A parameter of a native function: a name, and a default when optional.
struct Param {
  std::string_view name;
  std::optional<Value> def = std::nullopt;
};

/// One call of a native function or method: its name (for messages), its
/// arguments, and the runtime. Helpers check arguments with clear messages.
class Call {
public:
  Call(Runtime& rt, std::string name, std::vector<Value> args, Kwargs kwargs = {}, Caller* caller = nullptr)
      : rt_(rt), name_(std::move(name)), args_(std::move(args)), kwargs_(std::move(kwargs)), caller_(caller) {}

  [[nodiscard]] Runtime& runtime() const noexcept { return rt_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::vector<Value>& args() noexcept { return args_; }
  [[nodiscard]] Kwargs& kwargs() noexcept { return kwargs_; }
  [[nodiscard]] Caller* caller() const noexcept { return caller_; }
  /// Drops argument 1 (the handle of a thread.* function form); messages
  /// still count arguments as the script wrote them.
  void shift() {
    args_.erase(args_.begin());
    ++shift_;
  }

  /// Throws ScriptError("<name>: <msg>").
  [[noreturn]] void fail(const std::string& msg) const { throw ScriptError(name_ + ": " + msg); }

  /// Matches the positional and keyword arguments to `params` (Python's
  /// rules): too many arguments, an unknown or repeated keyword, or a missing
  /// required argument is an error. Returns one value per parameter.
  std::vector<Value> bind(std::initializer_list<Param> params) {
    std::vector<Value> out;
    std::vector<bool> given(params.size(), false);
    if (args_.size() > params.size())
      fail("takes at most " + count(params.size() + shift_, "argument") + " (" + std::to_string(args_.size() + shift_) +
           " given)");
    out.reserve(params.size());
    for (std::size_t i = 0; i < args_.size(); ++i) {
      out.push_back(std::move(args_[i]));
      given[i] = true;
    }
    out.resize(params.size());
    for (auto& [k, v] : kwargs_) {
      std::size_t i = 0;
      for (auto& p : params) {
        if (p.name == k) break;
        ++i;
      }
      if (i == params.size()) fail("unexpected keyword argument '" + k + "'" + names_of(params));
      if (given[i]) fail("got multiple values for argument '" + k + "'");
      out[i] = std::move(v);
      given[i] = true;
    }
    std::size_t i = 0;
    for (auto& p : params) {
      if (!given[i]) {
        if (!p.def) fail("missing required argument '" + std::string(p.name) + "'");
        out[i] = *p.def;
      }
      ++i;
    }
    args_.clear();
    kwargs_.clear();
    return out;
  }

  /// Exactly `n` positional arguments and no keywords (the thread.* functions).
  std::vector<Value>& exactly(std::size_t n, std::size_t optional = 0) {
    no_kwargs();
    if (args_.size() < n || args_.size() > n + optional) {
      std::string want = optional ? std::to_string(n + shift_) + " to " + count(n + optional + shift_, "argument")
                                  : count(n + shift_, "argument");
      fail("takes " + want + " (" + std::to_string(args_.size() + shift_) + " given)");
    }
    args_.resize(n + optional);
    return args_;
  }
  void no_kwargs() const {
    if (!kwargs_.empty()) fail("takes no keyword arguments (got '" + kwargs_.front().first + "')");
  }

  // --- argument conversions: `what` names the argument in the message -------
  [[nodiscard]] std::int64_t integer(const Value& v, std::string_view what) const {
    if (auto* i = v.get_if<std::int64_t>()) return *i;
    if (auto* d = v.get_if<double>()) {
      if (std::isfinite(*d) && std::floor(*d) == *d && *d >= -9.2e18 && *d <= 9.2e18)
        return static_cast<std::int64_t>(*d);
      fail(std::string(what) + " must be an integer, got " + v.repr());
    }
    fail(std::string(what) + " must be an integer, got " + v.type_name());
  }
  [[nodiscard]] std::size_t size(const Value& v, std::string_view what) const {
    auto i = integer(v, what);
    if (i < 0) fail(std::string(what) + " must not be negative, got " + std::to_string(i));
    return static_cast<std::size_t>(i);
  }
  /// A count that skein's semaphores hold in 31 bits (permits, a group's limit).
  [[nodiscard]] std::ptrdiff_t count31(const Value& v, std::string_view what) const {
    auto n = size(v, what);
    if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
      fail(std::string(what) + " must be below 2^31, got " + std::to_string(n));
    return static_cast<std::ptrdiff_t>(n);
  }
  [[nodiscard]] double number(const Value& v, std::string_view what) const {
    if (auto* i = v.get_if<std::int64_t>()) return static_cast<double>(*i);
    if (auto* d = v.get_if<double>()) {
      if (std::isnan(*d)) fail(std::string(what) + " must be a number, got nan");
      return *d;
    }
    fail(std::string(what) + " must be a number, got " + v.type_name());
  }
  /// A duration in `unit` (seconds or milliseconds) that must not be negative.
  template <class Unit>
  [[nodiscard]] std::chrono::nanoseconds duration(const Value& v, std::string_view what) const {
    double d = number(v, what);
    if (d < 0) fail(std::string(what) + " must not be negative, got " + v.repr());
    double ns = d * (static_cast<double>(Unit::period::num) * 1e9 / static_cast<double>(Unit::period::den));
    if (ns > 1e17) ns = 1e17;  // about three years: "forever" for a script
    return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
  }
  [[nodiscard]] const std::string& string(const Value& v, std::string_view what) const {
    if (auto* s = v.get_if<std::string>()) return *s;
    fail(std::string(what) + " must be a string, got " + v.type_name());
  }
  [[nodiscard]] FunctionRef function(const Value& v, std::string_view what) const {
    if (auto* f = v.get_if<FunctionRef>()) return *f;
    fail(std::string(what) + " must be a function, got " + v.type_name());
  }
  /// The handle in `v`, which must be a `T` (an Object type).
  template <class T>
  [[nodiscard]] std::shared_ptr<T> handle(const Value& v, std::string_view what) const {
    if (auto* h = v.get_if<Handle>())
      if (auto t = std::dynamic_pointer_cast<T>(*h)) return t;
    fail(std::string(what) + " must be a " + std::string(T::kTypeName) + ", got " + v.type_name());
  }

  /// The caller's hooks; an error if the host gave none.
  [[nodiscard]] Caller& need_caller(std::string_view what) const {
    if (!caller_) fail(std::string(what) + " is not supported by this host");
    return *caller_;
  }

  static std::string count(std::size_t n, std::string_view noun) {
    return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
  }

private:
  static std::string names_of(std::initializer_list<Param> params) {
    if (params.size() == 0) return " (it takes none)";
    std::string s = " (parameters: ";
    bool first = true;
    for (auto& p : params) {
      s += (first ? "" : ", ") + std::string(p.name);
      first = false;
    }
    return s + ")";
  }

  Runtime& rt_;
  std::string name_;
  std::vector<Value> args_;
  Kwargs kwargs_;
  Caller* caller_;
  std::size_t shift_ = 0;
};

// --- Value members ----------------------------------------------------------------

inline std::string Value::type_name() const {
  switch (kind()) {
    case Kind::none: return "none";
    case Kind::boolean: return "boolean";
    case Kind::integer: return "integer";
    case Kind::number: return "float";
    case Kind::string: return "string";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::function: return "function";
    case Kind::handle: return std::string(std::get<Handle>(v_)->type_name());
  }
  return "?";
}

inline std::string Value::repr() const {
  switch (kind()) {
    case Kind::none: return "none";
    case Kind::boolean: return std::get<bool>(v_) ? "true" : "false";
    case Kind::integer: return std::to_string(std::get<std::int64_t>(v_));
    case Kind::number: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.14g", std::get<double>(v_));
      return buf;
    }
    case Kind::string: return "\"" + std::get<std::string>(v_) + "\"";
    case Kind::list: {
      std::string s = "[";
      for (auto& e : std::get<List>(v_)) s += (s.size() > 1 ? ", " : "") + e.repr();
      return s + "]";
    }
    case Kind::dict: {
      std::string s = "{";
      for (auto& e : std::get<Dict>(v_)) s += (s.size() > 1 ? ", " : "") + e.key.repr() + ": " + e.value.repr();
      return s + "}";
    }
    case Kind::function: return "<" + std::get<FunctionRef>(v_)->describe() + ">";
    case Kind::handle: return "<" + std::string(std::get<Handle>(v_)->type_name()) + ">";
  }
  return "?";
}

inline bool operator==(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::none: return true;
    case Value::Kind::boolean: return *a.get_if<bool>() == *b.get_if<bool>();
    case Value::Kind::integer: return *a.get_if<std::int64_t>() == *b.get_if<std::int64_t>();
    case Value::Kind::number: return *a.get_if<double>() == *b.get_if<double>();
    case Value::Kind::string: return *a.get_if<std::string>() == *b.get_if<std::string>();
    case Value::Kind::list: return *a.get_if<List>() == *b.get_if<List>();
    case Value::Kind::dict: {
      auto& x = *a.get_if<Dict>();
      auto& y = *b.get_if<Dict>();
      if (x.size() != y.size()) return false;
      for (auto& e : x) {
        auto* o = find(y, e.key);
        if (!o || !(*o == e.value)) return false;
      }
      return true;
    }
    case Value::Kind::function: return *a.get_if<FunctionRef>() == *b.get_if<FunctionRef>();
    case Value::Kind::handle: return *a.get_if<Handle>() == *b.get_if<Handle>();
  }
  return false;
}

/// Arguments for calling script function `f`: the positional ones, then each
/// keyword placed at its parameter's position (missing ones are none). An
/// unknown or repeated keyword, or more positional arguments than a
/// non-variadic function takes, is an error.
inline std::vector<Value> bind_script_arguments(const Call& c, const Function& f, std::vector<Value> args,
                                                Kwargs kwargs) {
  auto* params = f.parameters();
  if (params && !f.variadic() && args.size() > params->size())
    c.fail(f.describe() + " takes " + Call::count(params->size(), "argument") + " (" + std::to_string(args.size()) +
           " given)");
  if (kwargs.empty()) return args;
  if (!params) c.fail("keyword arguments need a function whose parameter names are known");
  auto names = [&] {
    std::string s;
    for (auto& p : *params) s += (s.empty() ? "" : ", ") + p;
    return s.empty() ? std::string(" (it takes no parameters)") : " (parameters: " + s + ")";
  };
  const std::size_t positional = args.size();
  std::vector<bool> by_keyword(params->size(), false);
  for (auto& [k, v] : kwargs) {
    auto it = std::find(params->begin(), params->end(), k);
    if (it == params->end()) c.fail("unexpected keyword argument '" + k + "' for " + f.describe() + names());
    auto i = static_cast<std::size_t>(it - params->begin());
    if (i < positional || by_keyword[i]) c.fail("got multiple values for argument '" + k + "'");
    if (args.size() <= i) args.resize(i + 1);
    args[i] = std::move(v);
    by_keyword[i] = true;
  }
  return args;
}

// --- errors ----------------------------------------------------------------------

/// Calls a native function or method, mapping every error to a ScriptError
/// ready for the script: a skein error or a C++ exception gets the call's
/// name in front ("Queue.put: put on a closed Queue"); a ScriptError (bad
/// arguments, or a task's script error rethrown by get/wait) passes as it is.
template <class F>
Value invoke(Call& c, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const ScriptError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw ScriptError(c.name() + ": out of memory");
  } catch (const std::exception& e) {
    throw ScriptError(c.name() + ": " + e.what());
  } catch (...) {
    throw ScriptError(c.name() + ": unknown error");
  }
}
inline Value invoke(Value (*fn)(Call&), Call& c) {
  return invoke(c, [&] { return fn(c); });
}
inline Value invoke(Object& self, const Method& m, Call& c) {
  return invoke(c, [&] { return m.fn(self, c); });
}

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
           self(o).value.set(std::move(a[0]));
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
           return self(o).value.update([&](Value& v) {
             auto r = caller.invoke_argument(0, {v});
             if (r.empty()) c.fail("the function must return the new value");
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
  }
  skein::Shared<Value> value;

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
           self(o).queue.put(std::move(a[0]));
           return {};
         }},
        {"get", [](Object& o, Call& c) -> Value { return c.bind({}), opt(self(o).queue.get()); }},
        {"try_put",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"item"}});
           return self(o).queue.try_put(std::move(a[0]));
         }},
        {"try_get", [](Object& o, Call& c) -> Value { return c.bind({}), opt(self(o).queue.try_get()); }},
        {"put_for",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"item"}, {"timeout"}});
           auto d = impl::seconds(c, a[1], "timeout (seconds)");
           return self(o).queue.put_for(std::move(a[0]), d);
         }},
        {"get_for",
         [](Object& o, Call& c) -> Value {
           auto a = c.bind({{"timeout"}});
           return opt(self(o).queue.get_for(impl::seconds(c, a[0], "timeout (seconds)")));
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
  }
  skein::Queue<Value> queue;

private:
  static QueueObject& self(Object& o) { return static_cast<QueueObject&>(o); }
  static Value opt(std::optional<Value> v) { return v ? std::move(*v) : Value(); }
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
class PromiseObject final : public Object {
public:
  explicit PromiseObject(Promise<Value> p) : promise(std::move(p)) {}
  SKEIN_SCRIPT_OBJECT(Promise) {
    static const Method m[] = {
        {"get", [](Object& o, Call& c) -> Value { return c.bind({}), self(o).promise.get(); }},
        {"wait",
         [](Object& o, Call& c) -> Value {
           c.bind({});
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
/// submitted items. Each worker reuses one environment across items (the
/// seed's "Pool reuses goroutines"). A worker's error is kept and raised by
/// wait()/close(); it never loses the other items.
class PoolObject final : public Object {
public:
  PoolObject(Runtime& rt, FunctionRef fn, std::size_t workers, std::size_t depth, std::optional<Dict> globals)
      : envs_(std::make_shared<Envs>(rt, std::move(globals))),
        pool_(Worker{envs_, std::move(fn)}, check_workers(workers), depth) {}
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

/// A new handle object; those that hold values are registered with the runtime (see ~Runtime).
template <class O, class... A>
std::shared_ptr<O> make(Call& c, A&&... a) {
  auto obj = std::make_shared<O>(std::forward<A>(a)...);
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
  return c.runtime().start(std::move(fn), std::move(rest), snapshot_if(c, clone));
}

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
    auto body = [inner = c.runtime().task_body()](FunctionRef f, std::vector<Value> a, std::optional<Dict> g) -> Value {
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
    if (!only_if_free)
      return make<PromiseObject>(c, group.run(std::move(body), std::move(fn), std::move(rest), std::move(globals)));
    auto p = group.try_run(std::move(body), std::move(fn), std::move(rest), std::move(globals));
    if (!p) return {};
    return make<PromiseObject>(c, std::move(*p));
  }
};

#undef SKEIN_SCRIPT_OBJECT

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

/// A script asking for more workers than this has a bug (each is a task with its own environment).
inline constexpr std::size_t kMaxPoolWorkers = 10000;

inline Value make_pool(Call& c, Isolation iso, std::string_view depth_name) {
  auto a = c.bind({{"worker_func"}, {"workers", Value(4)}, {depth_name, Value()}});
  auto fn = c.function(a[0], "worker_func");
  auto workers = c.size(a[1], "workers");
  if (workers == 0) c.fail("workers must be at least 1");
  if (workers > kMaxPoolWorkers)
    c.fail("workers must be at most " + std::to_string(kMaxPoolWorkers) + ", got " + std::to_string(workers));
  auto depth = a[2].is_none() ? workers * 2 : c.size(a[2], depth_name);
  auto globals = snapshot_if(c, iso == Isolation::clone);
  auto& rt = c.runtime();
  return in_runtime(c, [&] { return make<PoolObject>(c, rt, fn, workers, depth, std::move(globals)); });
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
      owned.push_back(std::move(g));
      keep.push_back(std::move(q));
    } else if (*kind == "put" || *kind == "send") {
      arity(3);
      auto q = c.handle<QueueObject>((*cl)[1], where + ": the queue");
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
  if (gets[w] && gets[w]->result()) v = std::move(*gets[w]->result());
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
             return make<QueueObject>(c, c.size(a[0], "maxsize"));
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
                        (void)start_script_task(c, 0, true);  // a failure goes to the unhandled-error handler
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
                        return c.handle<PromiseObject>(a[0], "argument 1")->promise.get();
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
                        return make<QueueObject>(c, cap);
                      }},
                     {"select", [](Call& c) -> Value { return script_select(c, false); }},
                     {"send", [](Call& c) -> Value { return call_on<QueueObject>(c, "put"); }},
                     {"recv", [](Call& c) -> Value { return call_on<QueueObject>(c, "get"); }},
                     {"recvTimeout",
                      [](Call& c) -> Value {
                        auto& a = c.exactly(2);
                        auto q = c.handle<QueueObject>(a[0], "argument 1");
                        auto v = q->queue.get_for(c.duration<std::chrono::milliseconds>(a[1], "milliseconds"));
                        return v ? std::move(*v) : Value();
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
                        return make<PromiseObject>(
                            c, rt.run(
                                   [&rt](std::vector<FunctionRef> f, std::optional<Dict> g) -> Value {
                                     auto env = rt.host().create_environment(rt, g ? &*g : nullptr);
                                     List results;
                                     for (auto& fn : f) results.push_back(env->call(*fn, {}));
                                     return results;
                                   },
                                   std::move(fns), std::move(globals)));
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
