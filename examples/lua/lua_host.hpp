#pragma once
// skein's script binding for Lua 5.4: the glue between <skein/script.hpp> and
// the Lua C API. Everything Lua-specific is here; the modules themselves are
// in script.hpp.
//
//  - every task runs in its own lua_State (a LuaEnvironment);
//  - Lua values become skein::script::Value by copy: tables deeply (a table
//    that contains itself is an error), functions as bytecode without their
//    upvalues (a LuaFunction, which knows its parameter names for keyword
//    arguments), skein handles as shared handles;
//  - handles are full userdata with a metatable per type: `q:put(v)`;
//  - `threads.kwargs{...}` as the last argument passes keyword arguments;
//  - an instruction-count hook raises "cancelled" (or "timed out") in
//    script code once the task's stop token fires;
//  - `print` writes each line with one write, so lines from tasks never mix.
//
// Errors: C++ never unwinds through Lua and Lua never longjmps through C++
// objects: each C function does its C++ work inside `protect`, which turns an
// exception into a Lua error only after every C++ object of the call is gone.
// Script code is always entered with lua_pcall.

#include <lua.hpp>

#include <skein/script.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace skein_lua {

namespace sc = skein::script;
using sc::Value;

/// A Lua function in portable form: its bytecode (with debug information, so
/// that parameter and upvalue names are known).
class LuaFunction final : public sc::Function {
public:
  LuaFunction(std::string bytecode, std::string where, std::vector<std::string> params, bool vararg)
      : bytecode_(std::move(bytecode)),
        where_(std::move(where)),
        params_(std::move(params)),
        vararg_(vararg),
        id_(next_id()) {}
  std::string describe() const override { return "function <" + where_ + ">"; }
  const std::vector<std::string>* parameters() const noexcept override { return &params_; }
  bool variadic() const noexcept override { return vararg_; }
  const std::string& bytecode() const noexcept { return bytecode_; }
  const std::string& where() const noexcept { return where_; }
  std::uint64_t id() const noexcept { return id_; }

private:
  static std::uint64_t next_id() {
    static std::atomic<std::uint64_t> n{0};
    return n.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  std::string bytecode_, where_;
  std::vector<std::string> params_;
  bool vararg_;
  std::uint64_t id_;
};

class LuaEnvironment;

namespace detail {
inline void cancel_hook(lua_State* L, lua_Debug*);

inline constexpr const char* kKwargsMeta = "skein.kwargs";
inline constexpr int kMaxDepth = 100;
inline constexpr int kHookCount = 1000;  // instructions between cancellation checks

/// The LuaEnvironment owning `L` (kept in the state's extra space; coroutines inherit it).
inline LuaEnvironment& env_of(lua_State* L) { return **static_cast<LuaEnvironment**>(lua_getextraspace(L)); }

/// Runs `f` (which returns the number of results it pushed); a C++ exception
/// becomes a Lua error "<where>: <message>" raised after `f`'s objects are gone.
template <class F>
int protect(lua_State* L, F&& f) {
  bool failed = false;
  try {
    return f();
  } catch (const sc::TaskError& e) {  // script code's own error: its message already says where
    lua_pushliteral(L, "");
    lua_pushstring(L, e.what());
    failed = true;
  } catch (const std::exception& e) {
    luaL_where(L, 1);
    lua_pushstring(L, e.what());
    failed = true;
  } catch (...) {
    luaL_where(L, 1);
    lua_pushstring(L, "unknown C++ error");
    failed = true;
  }
  if (failed) {
    lua_concat(L, 2);
    return lua_error(L);  // no C++ object of this call is alive any more
  }
  return 0;
}

inline std::string error_message(lua_State* L, int idx) {
  if (auto* s = lua_tostring(L, idx)) return s;
  return std::string("(error object is a ") + luaL_typename(L, idx) + " value)";
}

inline int dump_writer(lua_State*, const void* p, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(static_cast<const char*>(p), n);
  return 0;
}

inline bool is_kwargs(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return false;
  luaL_getmetatable(L, kKwargsMeta);
  bool yes = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return yes;
}

/// The skein handle in userdata `idx`, or nullptr.
inline sc::Handle* handle_at(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return nullptr;
  lua_pushliteral(L, "__skein");
  lua_rawget(L, -2);
  bool ours = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return ours ? static_cast<sc::Handle*>(lua_touserdata(L, idx)) : nullptr;
}

/// Lua value at `idx` → Value (a copy). Throws ScriptError for what cannot cross.
class ToValue {
public:
  explicit ToValue(lua_State* L) : L_(L) {}
  Value operator()(int idx) { return convert(lua_absindex(L_, idx), 0); }

private:
  Value convert(int idx, int depth) {
    switch (lua_type(L_, idx)) {
      case LUA_TNIL: return {};
      case LUA_TBOOLEAN: return static_cast<bool>(lua_toboolean(L_, idx));
      case LUA_TNUMBER:
        if (lua_isinteger(L_, idx)) return static_cast<std::int64_t>(lua_tointeger(L_, idx));
        return static_cast<double>(lua_tonumber(L_, idx));
      case LUA_TSTRING: {
        size_t n = 0;
        const char* s = lua_tolstring(L_, idx, &n);
        return std::string(s, n);
      }
      case LUA_TTABLE: return table(idx, depth);
      case LUA_TFUNCTION: return function(idx);
      case LUA_TUSERDATA:
        if (auto* h = handle_at(L_, idx)) return *h;
        throw sc::ScriptError("cannot copy a userdata (only skein objects cross between tasks)");
      default: throw sc::ScriptError(std::string("cannot copy a ") + luaL_typename(L_, idx));
    }
  }

  Value table(int idx, int depth) {
    if (is_kwargs(L_, idx)) throw sc::ScriptError("threads.kwargs{...} must be the last argument of a call");
    if (depth >= kMaxDepth) throw sc::ScriptError("cannot copy a table nested more than 100 levels deep");
    const void* id = lua_topointer(L_, idx);
    if (std::find(path_.begin(), path_.end(), id) != path_.end())
      throw sc::ScriptError("cannot copy a table that contains itself");
    if (!lua_checkstack(L_, 4)) throw sc::ScriptError("cannot copy a table: Lua stack exhausted");
    path_.push_back(id);
    struct Pop {
      std::vector<const void*>& p;
      ~Pop() { p.pop_back(); }
    } pop{path_};
    // A sequence (keys exactly 1..n) becomes a list, anything else a dict.
    auto n = static_cast<lua_Integer>(lua_rawlen(L_, idx));
    lua_Integer keys = 0;
    bool sequence = true;
    lua_pushnil(L_);
    while (lua_next(L_, idx)) {
      ++keys;
      if (!lua_isinteger(L_, -2) || lua_tointeger(L_, -2) < 1 || lua_tointeger(L_, -2) > n) sequence = false;
      lua_pop(L_, 1);
    }
    if (sequence && keys == n) {
      sc::List list;
      list.reserve(static_cast<std::size_t>(n));
      for (lua_Integer i = 1; i <= n; ++i) {
        lua_rawgeti(L_, idx, i);
        list.push_back(convert(lua_gettop(L_), depth + 1));
        lua_pop(L_, 1);
      }
      return list;
    }
    sc::Dict dict;
    lua_pushnil(L_);
    while (lua_next(L_, idx)) {
      int t = lua_type(L_, -2);
      if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN) {
        lua_pop(L_, 2);
        throw sc::ScriptError(std::string("cannot copy a table with a ") + lua_typename(L_, t) +
                              " key (keys must be strings, numbers or booleans)");
      }
      // Convert the key from a copy: lua_tolstring on the key itself would confuse lua_next.
      lua_pushvalue(L_, -2);
      Value key = convert(lua_gettop(L_), depth + 1);
      lua_pop(L_, 1);
      Value v = convert(lua_gettop(L_), depth + 1);
      dict.push_back(sc::DictEntry{std::move(key), std::move(v)});
      lua_pop(L_, 1);
    }
    return dict;
  }

  Value function(int idx) {
    if (lua_iscfunction(L_, idx))
      throw sc::ScriptError("cannot move a C function into a task (wrap it in a Lua function)");
    std::string code;
    lua_pushvalue(L_, idx);
    lua_Debug ar;
    lua_pushvalue(L_, -1);
    lua_getinfo(L_, ">Su", &ar);  // pops the copy
    std::vector<std::string> params;
    for (int i = 1; i <= ar.nparams; ++i)
      if (const char* name = lua_getlocal(L_, nullptr, i)) params.emplace_back(name);  // function on top
    std::string where = std::string(ar.short_src) + ":" + std::to_string(ar.linedefined);
    bool vararg = ar.isvararg != 0;
    int rc = lua_dump(L_, dump_writer, &code, 0);
    lua_pop(L_, 1);
    if (rc != 0) throw sc::ScriptError("cannot move function <" + where + "> into a task");
    return sc::FunctionRef(std::make_shared<LuaFunction>(std::move(code), std::move(where), std::move(params), vararg));
  }

  lua_State* L_;
  std::vector<const void*> path_;
};

/// Names that every environment has already (libraries, modules): not copied by snapshots.
inline bool builtin_global(const char* k) {
  static const char* const names[] = {"_G",      "_VERSION", "arg",   "coroutine", "debug",   "io",     "math",   "os",
                                      "package", "string",   "table", "utf8",      "threads", "thread", "runtime"};
  for (auto* n : names)
    if (std::strcmp(n, k) == 0) return true;
  return false;
}

void push_handle(lua_State* L, const sc::Handle& h);

/// Loads `f` into L. Functions cross without their upvalues: _ENV becomes
/// this state's globals; an upvalue named after a library or module (the
/// `local threads = require("threads")` idiom) becomes this state's one;
/// every other upvalue is nil.
inline void push_function(lua_State* L, const LuaFunction& f) {
  if (luaL_loadbufferx(L, f.bytecode().data(), f.bytecode().size(), f.where().c_str(), "b") != LUA_OK) {
    std::string msg = error_message(L, -1);
    lua_pop(L, 1);
    throw sc::ScriptError("cannot load " + f.describe() + ": " + msg);
  }
  for (int i = 1;; ++i) {  // lua_load put the globals in the first upvalue, whatever it is
    const char* name = lua_getupvalue(L, -1, i);
    if (!name) break;
    std::string upname = name;
    lua_pop(L, 1);
    if (upname == "_ENV")
      lua_pushglobaltable(L);
    else if (upname != "_G" && upname != "arg" && builtin_global(upname.c_str()))
      lua_getglobal(L, upname.c_str());
    else
      lua_pushnil(L);
    lua_setupvalue(L, -2, i);
  }
}

/// Pushes a Lua copy of `v`. Throws ScriptError if a function fails to load.
inline void push_value(lua_State* L, const Value& v, int depth = 0) {
  if (!lua_checkstack(L, 4)) throw sc::ScriptError("cannot build a value: Lua stack exhausted");
  if (depth > kMaxDepth) throw sc::ScriptError("cannot build a value nested more than 100 levels deep");
  switch (v.kind()) {
    case Value::Kind::none: lua_pushnil(L); return;
    case Value::Kind::boolean: lua_pushboolean(L, *v.get_if<bool>()); return;
    case Value::Kind::integer: lua_pushinteger(L, static_cast<lua_Integer>(*v.get_if<std::int64_t>())); return;
    case Value::Kind::number: lua_pushnumber(L, static_cast<lua_Number>(*v.get_if<double>())); return;
    case Value::Kind::string: {
      auto& s = *v.get_if<std::string>();
      lua_pushlstring(L, s.data(), s.size());
      return;
    }
    case Value::Kind::list: {
      auto& l = *v.get_if<sc::List>();
      lua_createtable(L, static_cast<int>(std::min<std::size_t>(l.size(), 1 << 24)), 0);
      lua_Integer i = 0;
      for (auto& e : l) {
        push_value(L, e, depth + 1);
        lua_rawseti(L, -2, ++i);
      }
      return;
    }
    case Value::Kind::dict: {
      auto& d = *v.get_if<sc::Dict>();
      lua_createtable(L, 0, static_cast<int>(std::min<std::size_t>(d.size(), 1 << 24)));
      for (auto& e : d) {
        push_value(L, e.key, depth + 1);
        push_value(L, e.value, depth + 1);
        if (lua_isnil(L, -2)) {
          lua_pop(L, 2);  // a none key cannot exist in Lua (conversions never make one)
          continue;
        }
        lua_rawset(L, -3);
      }
      return;
    }
    case Value::Kind::function: {
      auto& f = *v.get_if<sc::FunctionRef>();
      auto* lf = dynamic_cast<const LuaFunction*>(f.get());
      if (!lf) throw sc::ScriptError("cannot load " + f->describe() + " into Lua");
      push_function(L, *lf);
      return;
    }
    case Value::Kind::handle: push_handle(L, *v.get_if<sc::Handle>()); return;
  }
}

/// Arguments `first`..top as Values; a threads.kwargs table in last place becomes keyword arguments.
inline std::pair<std::vector<Value>, sc::Kwargs> collect_args(lua_State* L, int first, const char* fname) {
  int top = lua_gettop(L);
  std::pair<std::vector<Value>, sc::Kwargs> out;
  int last = top;
  ToValue conv(L);
  try {
    if (top >= first && is_kwargs(L, top)) {
      --last;
      lua_pushnil(L);
      while (lua_next(L, top)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
          lua_pop(L, 2);
          throw sc::ScriptError("threads.kwargs{...}: keyword names must be strings");
        }
        std::string k = lua_tostring(L, -2);
        out.second.emplace_back(std::move(k), conv(-1));
        lua_pop(L, 1);
      }
      std::sort(out.second.begin(), out.second.end(), [](auto& a, auto& b) { return a.first < b.first; });
    }
    for (int i = first; i <= last; ++i) {
      try {
        out.first.push_back(conv(i));
      } catch (const sc::ScriptError& e) {
        throw sc::ScriptError("argument " + std::to_string(i - first + 1) + ": " + e.what());
      }
    }
  } catch (const sc::ScriptError& e) {
    throw sc::ScriptError(std::string(fname) + ": " + e.what());
  }
  return out;
}

/// The calling Lua code's hooks for one C function call; argument i (0-based) is at stack index base + i.
class LuaCaller final : public sc::Caller {
public:
  LuaCaller(lua_State* L, int base) : L_(L), base_(base) {}
  sc::Dict snapshot_globals() override;
  std::vector<Value> invoke_argument(std::size_t index, std::vector<Value> args) override {
    int top = lua_gettop(L_);
    if (!lua_checkstack(L_, static_cast<int>(args.size()) + 4)) throw sc::ScriptError("Lua stack exhausted");
    lua_pushvalue(L_, base_ + static_cast<int>(index));
    for (auto& a : args) push_value(L_, a);
    if (lua_pcall(L_, static_cast<int>(args.size()), LUA_MULTRET, 0) != LUA_OK) {
      std::string msg = error_message(L_, -1);
      lua_settop(L_, top);
      throw sc::TaskError(msg);
    }
    std::vector<Value> out;
    ToValue conv(L_);
    try {
      for (int i = top + 1; i <= lua_gettop(L_); ++i) out.push_back(conv(i));
    } catch (...) {
      lua_settop(L_, top);
      throw;
    }
    lua_settop(L_, top);
    return out;
  }

private:
  lua_State* L_;
  int base_;
};

}  // namespace detail

/// One lua_State with the standard libraries and the skein modules, bound to a Runtime.
class LuaEnvironment final : public sc::Environment {
public:
  LuaEnvironment(sc::Runtime& rt, const sc::Dict* globals);
  ~LuaEnvironment() override {
    if (L_) lua_close(L_);
  }
  LuaEnvironment(const LuaEnvironment&) = delete;
  LuaEnvironment& operator=(const LuaEnvironment&) = delete;

  Value call(const sc::Function& f, std::vector<Value> args) override {
    lua_settop(L_, 0);
    // A reused environment (a Pool worker's) may still have the every-instruction
    // hook of an earlier cancelled call.
    lua_sethook(L_, detail::cancel_hook, LUA_MASKCOUNT, detail::kHookCount);
    push_function(f);
    for (auto& a : args) push_value(a);
    if (lua_pcall(L_, static_cast<int>(args.size()), 1, 0) != LUA_OK) {
      std::string msg = detail::error_message(L_, -1);
      lua_settop(L_, 0);
      throw sc::TaskError(msg);
    }
    Value r;
    try {
      r = detail::ToValue(L_)(-1);
    } catch (const sc::ScriptError& e) {
      lua_settop(L_, 0);
      throw sc::ScriptError(f.describe() + " returned a value that cannot be copied: " + e.what());
    }
    lua_settop(L_, 0);
    return r;
  }

  /// Runs a script file as the main chunk (with `arg` set as lua.c does).
  void run_file(const std::string& path, const std::vector<std::string>& args) {
    lua_createtable(L_, static_cast<int>(args.size()), 1);
    lua_pushstring(L_, path.c_str());
    lua_rawseti(L_, -2, 0);
    for (std::size_t i = 0; i < args.size(); ++i) {
      lua_pushstring(L_, args[i].c_str());
      lua_rawseti(L_, -2, static_cast<lua_Integer>(i + 1));
    }
    lua_setglobal(L_, "arg");
    if (luaL_loadfilex(L_, path.c_str(), "t") != LUA_OK) {
      std::string msg = detail::error_message(L_, -1);
      lua_settop(L_, 0);
      throw sc::ScriptError(msg);
    }
    if (lua_pcall(L_, 0, 0, 0) != LUA_OK) {
      std::string msg = detail::error_message(L_, -1);
      lua_settop(L_, 0);
      throw sc::ScriptError(msg);
    }
  }

  /// Runs a chunk of Lua source (for tests and embedding).
  void run_string(const std::string& code, const char* name = "=chunk") {
    if (luaL_loadbufferx(L_, code.data(), code.size(), name, "t") != LUA_OK || lua_pcall(L_, 0, 0, 0) != LUA_OK) {
      std::string msg = detail::error_message(L_, -1);
      lua_settop(L_, 0);
      throw sc::ScriptError(msg);
    }
  }

  [[nodiscard]] lua_State* state() const noexcept { return L_; }
  [[nodiscard]] sc::Runtime& runtime() const noexcept { return rt_; }

  void push_value(const Value& v) { detail::push_value(L_, v); }

private:
  void push_function(const sc::Function& f) {
    auto* lf = dynamic_cast<const LuaFunction*>(&f);
    if (!lf) throw sc::ScriptError("cannot run " + f.describe() + " in Lua");
    // Pool workers call the same function for every item: load it once.
    auto it = loaded_.find(lf->id());
    if (it != loaded_.end()) {
      lua_rawgeti(L_, LUA_REGISTRYINDEX, it->second);
      return;
    }
    detail::push_function(L_, *lf);
    if (loaded_.size() >= 64) {
      for (auto& [id, ref] : loaded_) luaL_unref(L_, LUA_REGISTRYINDEX, ref);
      loaded_.clear();
    }
    lua_pushvalue(L_, -1);
    loaded_.emplace(lf->id(), luaL_ref(L_, LUA_REGISTRYINDEX));
  }

  void install();

  sc::Runtime& rt_;
  lua_State* L_ = nullptr;
  std::unordered_map<std::uint64_t, int> loaded_;
};

class LuaHost final : public sc::Host {
public:
  std::unique_ptr<sc::Environment> create_environment(sc::Runtime& rt, const sc::Dict* globals) override {
    return std::make_unique<LuaEnvironment>(rt, globals);
  }
};

// --- the C side -----------------------------------------------------------------------

namespace detail {

inline sc::Dict LuaCaller::snapshot_globals() {
  sc::Dict out;
  lua_pushglobaltable(L_);
  int g = lua_gettop(L_);
  ToValue conv(L_);
  lua_pushnil(L_);
  while (lua_next(L_, g)) {
    // Library functions (C functions) exist in every environment already;
    // so do the libraries. Other userdata (open files) cannot be copied.
    bool skip = lua_type(L_, -2) != LUA_TSTRING || builtin_global(lua_tostring(L_, -2)) || lua_iscfunction(L_, -1) ||
                (lua_type(L_, -1) == LUA_TUSERDATA && !handle_at(L_, -1)) || lua_type(L_, -1) == LUA_TTHREAD;
    if (!skip) {
      std::string name = lua_tostring(L_, -2);
      try {
        Value v = conv(-1);
        out.push_back(sc::DictEntry{Value(name), std::move(v)});
      } catch (const sc::ScriptError& e) {
        lua_settop(L_, g - 1);
        throw sc::ScriptError("cannot copy global '" + name + "' into the task: " + e.what());
      }
    }
    lua_pop(L_, 1);
  }
  lua_settop(L_, g - 1);
  return out;
}

inline int native_function(lua_State* L) {
  auto* nf = static_cast<const sc::NativeFunction*>(lua_touserdata(L, lua_upvalueindex(1)));
  const char* name = lua_tostring(L, lua_upvalueindex(2));
  return protect(L, [&] {
    auto args = collect_args(L, 1, name);
    LuaCaller caller(L, 1);
    sc::Call c(env_of(L).runtime(), name, std::move(args.first), std::move(args.second), &caller);
    Value r = sc::invoke(nf->fn, c);
    push_value(L, r);
    return 1;
  });
}

inline int method_function(lua_State* L) {
  auto* m = static_cast<const sc::Method*>(lua_touserdata(L, lua_upvalueindex(1)));
  const char* type = lua_tostring(L, lua_upvalueindex(2));
  return protect(L, [&] {
    std::string name = std::string(type) + "." + std::string(m->name);
    auto* h = handle_at(L, 1);
    if (!h || (*h)->type_name() != type)
      throw sc::ScriptError(name + ": call it as a method, with a colon: obj:" + std::string(m->name) + "(...)");
    sc::Handle self = *h;  // the userdata may be collected while we block
    auto args = collect_args(L, 2, name.c_str());
    LuaCaller caller(L, 2);
    sc::Call c(env_of(L).runtime(), name, std::move(args.first), std::move(args.second), &caller);
    Value r = sc::invoke(*self, *m, c);
    push_value(L, r);
    return 1;
  });
}

inline int handle_gc(lua_State* L) {
  std::destroy_at(static_cast<sc::Handle*>(lua_touserdata(L, 1)));
  return 0;
}
inline int handle_tostring(lua_State* L) {
  auto* h = static_cast<sc::Handle*>(lua_touserdata(L, 1));
  lua_pushfstring(L, "%s: %p", std::string((*h)->type_name()).c_str(), static_cast<void*>(h->get()));
  return 1;
}
inline int handle_eq(lua_State* L) {
  auto* a = handle_at(L, 1);
  auto* b = handle_at(L, 2);
  lua_pushboolean(L, a && b && a->get() == b->get());
  return 1;
}

inline void push_handle(lua_State* L, const sc::Handle& h) {
  auto* ud = lua_newuserdatauv(L, sizeof(sc::Handle), 0);
  new (ud) sc::Handle(h);
  std::string meta = "skein." + std::string(h->type_name());
  if (luaL_newmetatable(L, meta.c_str())) {  // first handle of this type in this state
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "__skein");
    lua_pushliteral(L, "skein object");  // getmetatable() shows this; setmetatable() refuses
    lua_setfield(L, -2, "__metatable");
    lua_pushstring(L, std::string(h->type_name()).c_str());
    lua_setfield(L, -2, "__name");
    lua_pushcfunction(L, handle_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, handle_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, handle_eq);
    lua_setfield(L, -2, "__eq");
    lua_newtable(L);  // __index: the methods
    for (auto& m : h->methods()) {
      lua_pushlightuserdata(L, const_cast<sc::Method*>(&m));
      lua_pushstring(L, std::string(h->type_name()).c_str());
      lua_pushcclosure(L, method_function, 2);
      lua_setfield(L, -2, std::string(m.name).c_str());
    }
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
}

inline int kwargs_function(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setmetatable(L, kKwargsMeta);
  return 1;
}

/// print: the whole line in one write, so that lines from tasks never interleave.
inline int print_function(lua_State* L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; ++i) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, nullptr);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  size_t len = 0;
  const char* s = lua_tolstring(L, -1, &len);
  std::fwrite(s, 1, len, stdout);
  return 0;
}

/// The instruction-count hook: stops script code once its task is cancelled.
inline void cancel_hook(lua_State* L, lua_Debug*) {
  auto& env = env_of(L);
  if (skein::this_task::cancelled() || env.runtime().context().cancelled()) {
    lua_sethook(L, cancel_hook, LUA_MASKCOUNT, 1);  // keep raising, even past a pcall
    luaL_error(L, env.runtime().context().timed_out() ? "timed out" : "cancelled");
  }
}

inline void install_module(lua_State* L, const sc::Module& m, const std::string& prefix) {
  lua_createtable(L, 0, static_cast<int>(m.functions.size() + m.submodules.size()));
  for (auto& f : m.functions) {
    lua_pushlightuserdata(L, const_cast<sc::NativeFunction*>(&f));
    lua_pushstring(L, (prefix + std::string(f.name)).c_str());
    lua_pushcclosure(L, native_function, 2);
    lua_setfield(L, -2, std::string(f.name).c_str());
  }
  for (auto& s : m.submodules) {
    install_module(L, s, prefix + std::string(s.name) + ".");
    lua_setfield(L, -2, std::string(s.name).c_str());
  }
}

}  // namespace detail

inline LuaEnvironment::LuaEnvironment(sc::Runtime& rt, const sc::Dict* globals) : rt_(rt) {
  L_ = luaL_newstate();
  if (!L_) throw std::bad_alloc();
  *static_cast<LuaEnvironment**>(lua_getextraspace(L_)) = this;
  try {
    install();
    if (globals) {
      lua_pushglobaltable(L_);
      for (auto& e : *globals) {
        detail::push_value(L_, e.key);
        detail::push_value(L_, e.value);
        lua_rawset(L_, -3);
      }
      lua_pop(L_, 1);
    }
  } catch (...) {
    lua_close(L_);
    L_ = nullptr;
    throw;
  }
}

inline void LuaEnvironment::install() {
  luaL_openlibs(L_);
  luaL_newmetatable(L_, detail::kKwargsMeta);
  lua_pop(L_, 1);
  lua_getglobal(L_, "package");
  lua_getfield(L_, -1, "loaded");
  for (auto* m : sc::modules()) {
    detail::install_module(L_, *m, std::string(m->name) + ".");
    if (m == &sc::threads_module()) {
      lua_pushcfunction(L_, detail::kwargs_function);
      lua_setfield(L_, -2, "kwargs");
    }
    lua_pushvalue(L_, -1);
    lua_setfield(L_, -3, std::string(m->name).c_str());  // package.loaded[name]: require works
    lua_setglobal(L_, std::string(m->name).c_str());
  }
  lua_pop(L_, 2);
  lua_pushcfunction(L_, detail::print_function);
  lua_setglobal(L_, "print");
  lua_sethook(L_, detail::cancel_hook, LUA_MASKCOUNT, detail::kHookCount);
}

}  // namespace skein_lua
