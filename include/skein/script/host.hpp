#pragma once
/// What an interpreter provides: Environment, Host, Caller, and the Isolation of script tasks.

#include "../detail/config.hpp"  // first: the C++20 check

#include <cstddef>
#include <memory>
#include <vector>

#include "value.hpp"

namespace skein::script {

/// One interpreter instance (a lua_State, a VM). Used by one thread at a time.
class Environment {
public:
  virtual ~Environment() = default;
  /// Calls `f(args...)` here; returns its (first) result. Throws TaskError
  /// with the script's message if the script raises an error (or is
  /// cancelled), ScriptError if an argument or the result cannot be converted.
  virtual Value call(const Function& f, std::vector<Value> args) = 0;
  /// After a task: makes this environment pristine again (what
  /// Host::create_environment makes) so that the runtime can give it to
  /// another task; false if it cannot be reused (the default: it is destroyed).
  virtual bool recycle() noexcept { return false; }
  /// Adds `globals` (name → value) to a recycled environment's globals
  /// (Scriptling's clone isolation). Called only after recycle() returned true.
  virtual void add_globals(const Dict& globals) { (void)globals; }
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

}  // namespace skein::script
