#pragma once
// A minimal script host with no interpreter: its "script functions" are C++
// lambdas over Value, its environments a Dict of globals. It proves that
// <skein/script.hpp> does not depend on Lua, and lets doctest (and the fuzz
// driver) call the modules directly.

#include <atomic>
#include <functional>
#include <optional>
#include <stdexcept>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <skein/script.hpp>
#include <skein/skein.hpp>

namespace test::script {

namespace sc = skein::script;
using sc::Value;

struct TestEnv;

/// A "script function": a C++ body that runs in a TestEnv.
struct Fn final : sc::Function {
  std::string name;
  std::optional<std::vector<std::string>> params;  // nullopt: unknown names (and variadic)
  std::function<Value(TestEnv&, std::vector<Value>&)> body;

  std::string describe() const override { return "function " + name; }
  const std::vector<std::string>* parameters() const noexcept override { return params ? &*params : nullptr; }
  bool variadic() const noexcept override { return !params; }
};

inline Value fn(std::string name, std::vector<std::string> params,
                std::function<Value(TestEnv&, std::vector<Value>&)> body) {
  auto f = std::make_shared<Fn>();
  f->name = std::move(name);
  f->params = std::move(params);
  f->body = std::move(body);
  return sc::FunctionRef(std::move(f));
}
/// A function with unknown parameter names (like a host that cannot tell).
inline Value opaque_fn(std::function<Value(TestEnv&, std::vector<Value>&)> body) {
  auto f = std::make_shared<Fn>();
  f->name = "opaque";
  f->body = std::move(body);
  return sc::FunctionRef(std::move(f));
}

/// Finds `path` ("thread.channel.send") in the modules.
inline const sc::NativeFunction& native(std::string_view path) {
  for (auto* m : sc::modules()) {
    std::string_view rest = path;
    if (rest.substr(0, m->name.size()) != m->name || rest.size() <= m->name.size() || rest[m->name.size()] != '.')
      continue;
    rest.remove_prefix(m->name.size() + 1);
    const sc::Module* mod = m;
    for (;;) {
      auto dot = rest.find('.');
      if (dot == std::string_view::npos) {
        for (auto& f : mod->functions)
          if (f.name == rest) return f;
        break;
      }
      const sc::Module* sub = nullptr;
      for (auto& s : mod->submodules)
        if (s.name == rest.substr(0, dot)) sub = &s;
      if (!sub) break;
      mod = sub;
      rest.remove_prefix(dot + 1);
    }
  }
  throw std::logic_error("no such module function: " + std::string(path));
}

/// The calling environment's hooks: globals to snapshot, arguments to call in place.
struct TestCaller final : sc::Caller {
  TestEnv* env = nullptr;
  std::vector<Value>* args = nullptr;
  sc::Dict snapshot_globals() override;
  std::vector<Value> invoke_argument(std::size_t i, std::vector<Value> a) override;
};

struct TestEnv final : sc::Environment {
  TestEnv(sc::Runtime& r, sc::Dict g) : rt(r), globals(std::move(g)) {}
  sc::Runtime& rt;
  sc::Dict globals;

  Value call(const sc::Function& f, std::vector<Value> args) override {
    auto& body = dynamic_cast<const Fn&>(f).body;
    try {
      return body(*this, args);
    } catch (const sc::ScriptError&) {
      throw;
    } catch (const std::exception& e) {  // what a script's own error would be
      throw sc::TaskError(e.what());
    }
  }
  /// A module function called from "script code" in this environment.
  Value call(std::string_view path, std::vector<Value> args, sc::Kwargs kw = {}) {
    std::vector<Value> copy = args;
    TestCaller caller;
    caller.env = this;
    caller.args = &copy;
    auto& nf = native(path);
    sc::Call c(rt, std::string(path), std::move(args), std::move(kw), &caller);
    return sc::invoke(nf.fn, c);
  }
  /// A method called on a handle: `h:name(args)`.
  Value method(const Value& h, std::string_view name, std::vector<Value> args = {}, sc::Kwargs kw = {}) {
    auto obj = *h.get_if<sc::Handle>();
    auto* m = obj->method(name);
    if (!m) throw sc::ScriptError(std::string(obj->type_name()) + " has no method " + std::string(name));
    std::vector<Value> copy = args;
    TestCaller caller;
    caller.env = this;
    caller.args = &copy;
    sc::Call c(rt, std::string(obj->type_name()) + "." + std::string(name), std::move(args), std::move(kw), &caller);
    return sc::invoke(*obj, *m, c);
  }
  Value global(const std::string& name) const {
    auto* v = sc::find(globals, Value(name));
    return v ? *v : Value();
  }
};

inline sc::Dict TestCaller::snapshot_globals() { return env->globals; }
inline std::vector<Value> TestCaller::invoke_argument(std::size_t i, std::vector<Value> a) {
  auto f = *(*args)[i].get_if<sc::FunctionRef>();
  return {env->call(*f, std::move(a))};
}

struct TestHost final : sc::Host {
  std::atomic<int> environments{0};
  std::unique_ptr<sc::Environment> create_environment(sc::Runtime& rt, const sc::Dict* globals) override {
    environments.fetch_add(1, std::memory_order_relaxed);
    return std::make_unique<TestEnv>(rt, globals ? *globals : sc::Dict{});
  }
};

/// The pieces a test needs: a host, a runtime, and a "main script" environment.
struct Session {
  explicit Session(sc::Isolation iso = sc::Isolation::empty) : Session(sc::Runtime::Options{iso}) {}
  explicit Session(const sc::Runtime::Options& opts) : rt(host, opts), main(rt, {}) {}
  TestHost host;
  sc::Runtime rt;
  TestEnv main;
  Value call(std::string_view path, std::vector<Value> args = {}, sc::Kwargs kw = {}) {
    return main.call(path, std::move(args), std::move(kw));
  }
  Value method(const Value& h, std::string_view name, std::vector<Value> args = {}, sc::Kwargs kw = {}) {
    return main.method(h, name, std::move(args), std::move(kw));
  }
};

}  // namespace test::script
