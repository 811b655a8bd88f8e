#pragma once
/// One call of a native function: Call and its argument checks, keyword binding, and invoke's error mapping.

#include "../detail/config.hpp"  // first: the C++20 check

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "host.hpp"
#include "runtime.hpp"
#include "value.hpp"

namespace skein::script {

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
  } catch (const UsageError& e) {
    // A wait refused by the program's own pool at Limits::max_threads: say so in the script's terms.
    const std::size_t max = c.runtime().options().limits.max_threads;
    if (max > 0 && c.runtime().executor().thread_count() >= max)
      throw ScriptError(c.name() + ": would block a thread, but the script's tasks hold its limit of " +
                        std::to_string(max) + " threads (max_threads)");
    throw ScriptError(c.name() + ": " + e.what());
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

}  // namespace skein::script
