#pragma once
/// The dynamic script value: the errors, Value (list, dict, function, handle), and the handle's Object.

#include "../detail/config.hpp"  // first: the C++20 check

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

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
  /// Bytes it holds, roughly (code, captured values): what a program's
  /// memory limit charges for it while an object keeps it.
  [[nodiscard]] virtual std::size_t footprint() const noexcept { return 256; }
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

/// Bytes `v` holds, roughly: what a program's memory limit
/// (Limits::max_memory) charges while one of its objects keeps the value.
/// The same for a value and its copies; a handle counts as a reference.
inline std::size_t footprint(const Value& v) noexcept {
  std::size_t n = sizeof(Value);
  if (auto* s = v.get_if<std::string>()) {
    n += s->size();
  } else if (auto* l = v.get_if<List>()) {
    for (auto& e : *l) n += footprint(e);
  } else if (auto* d = v.get_if<Dict>()) {
    for (auto& e : *d) n += footprint(e.key) + footprint(e.value);
  } else if (auto* f = v.get_if<FunctionRef>()) {
    n += (*f)->footprint();
  }
  return n;
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

}  // namespace skein::script
