#pragma once
// skein's script binding for Lua 5.4: the glue between <skein/script.hpp> and
// the Lua C API. Everything Lua-specific is here; the modules themselves are
// in include/skein/script/.
//
//  - every task runs in a lua_State of its own (a LuaEnvironment), reset to
//    pristine and reused after the task (see "reuse" below);
//  - Lua values become skein::script::Value by copy: tables deeply (a table
//    that contains itself is an error), functions as bytecode with their
//    upvalues (a LuaFunction, which knows its parameter names for keyword
//    arguments), skein handles as shared handles;
//  - handles are full userdata with a metatable per type: `q:put(v)`;
//  - `threads.kwargs{...}` as the last argument passes keyword arguments;
//  - an instruction-count hook raises "cancelled" (or "timed out") in
//    script code once the task's stop token fires, and the runtime's
//    failure ("error in a task: ...") once a spawned task failed;
//  - `print` writes each line with one write, so lines from tasks never mix;
//  - a state made elsewhere (the stock interpreter's, for the C module in
//    module/) can be bound too (LuaEnvironment::Borrow).
//
// Errors: C++ never unwinds through Lua and Lua never longjmps through C++
// objects: each C function does its C++ work inside `protect`, which turns an
// exception into a Lua error only after every C++ object of the call is gone.
// Script code is always entered with lua_pcall.

#include <lua.hpp>

#include <skein/deadlock.hpp>
#include <skein/script.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace skein_lua {

namespace sc = skein::script;
using sc::Value;

/// How one upvalue of a function crosses into another lua_State.
struct LuaUpvalue {
  enum class Kind : std::uint8_t {
    nil,        ///< nil (or not yet assigned)
    globals,    ///< _ENV holding the globals table: the receiving state's globals
    value,      ///< a copy (tables deeply, skein objects as handles, functions recursively)
    enclosing,  ///< a function being copied around this one (recursion): `level` steps out
    library,    ///< a library value (`string`, `table.insert`, `threads`): the receiver's own, by `path`
  };
  std::string name;
  Kind kind = Kind::nil;
  Value value;            // Kind::value
  std::size_t level = 0;  // Kind::enclosing: 0 is the function itself
  std::string path;       // Kind::library: "string", "table.insert", "print"
};

/// A Lua function in portable form: its bytecode (with debug information, so
/// that parameter and upvalue names are known) and its upvalues.
class LuaFunction final : public sc::Function {
public:
  LuaFunction(std::string bytecode, std::string where, std::vector<std::string> params, bool vararg,
              std::vector<LuaUpvalue> upvalues)
      : bytecode_(std::move(bytecode)),
        where_(std::move(where)),
        params_(std::move(params)),
        upvalues_(std::move(upvalues)),
        vararg_(vararg),
        id_(next_id()) {}
  std::string describe() const override { return "function <" + where_ + ">"; }
  const std::vector<std::string>* parameters() const noexcept override { return &params_; }
  bool variadic() const noexcept override { return vararg_; }
  const std::string& bytecode() const noexcept { return bytecode_; }
  const std::string& where() const noexcept { return where_; }
  const std::vector<LuaUpvalue>& upvalues() const noexcept { return upvalues_; }
  std::uint64_t id() const noexcept { return id_; }
  /// Its bytecode, names and the copies of its upvalues (for memory limits).
  std::size_t footprint() const noexcept override {
    std::size_t n = sizeof(*this) + bytecode_.size() + where_.size();
    for (auto& p : params_) n += sizeof(p) + p.size();
    for (auto& u : upvalues_) n += sizeof(u) + u.name.size() + u.path.size() + sc::footprint(u.value);
    return n;
  }

private:
  static std::uint64_t next_id() {
    static std::atomic<std::uint64_t> n{0};
    return n.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  std::string bytecode_, where_;
  std::vector<std::string> params_;
  std::vector<LuaUpvalue> upvalues_;
  bool vararg_;
  std::uint64_t id_;
};

class LuaEnvironment;

namespace detail {
inline void cancel_hook(lua_State* L, lua_Debug*);

inline constexpr const char* kKwargsMeta = "skein.kwargs";
inline constexpr int kMaxDepth = 100;
inline constexpr int kHookCount = 1000;  // instructions between cancellation checks

/// The registry key of the LuaEnvironment bound to a state (a light userdata).
inline const char kEnvKey = 0;
/// The LuaEnvironment bound to `L` (or to the state whose coroutine `L` is).
inline LuaEnvironment& env_of(lua_State* L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kEnvKey);
  auto* env = static_cast<LuaEnvironment*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *env;
}
/// "error in a task: ..." if the runtime of `L` failed fast (Runtime::fail)
/// and is cancelled because of it, else empty: what every error raised in
/// that state says from then on.
inline std::string failure_of(lua_State* L);

/// The allocator of a state whose program has a memory limit
/// (Limits::max_memory): charges the Runtime's MemoryBudget in chunks (one
/// atomic per many allocations) and refuses an allocation past the limit only
/// while script code runs (`glue` is 0) — never inside the binding's own C++
/// code, which a Lua memory error would longjmp through — so the script gets
/// Lua's "not enough memory" error and the glue always completes.
struct LuaBudget {
  explicit LuaBudget(sc::MemoryBudget& b) noexcept : budget(b) {}
  sc::MemoryBudget& budget;
  std::size_t reserve = 0;  // charged to the budget, not in use
  int glue = 1;             // > 0: never refuse (the state is made, reset, or in a C function)
  bool refused = false;     // an allocation was refused since the last call
  static constexpr std::size_t kChunk = 16 * 1024;

  bool take(std::size_t n) noexcept {
    if (n <= reserve) {
      reserve -= n;
      return true;
    }
    const std::size_t need = n - reserve;
    const bool force = glue > 0;
    if (budget.charge(std::max(need, kChunk), force)) {
      reserve += std::max(need, kChunk) - n;
      return true;
    }
    if (need < kChunk && budget.charge(need, false)) {  // the last bytes under the limit
      reserve = 0;
      return true;
    }
    refused = true;
    return false;
  }
  void give(std::size_t n) noexcept {
    reserve += n;
    if (reserve > 2 * kChunk) {
      budget.release(reserve - kChunk);
      reserve = kChunk;
    }
  }
};
inline void* budget_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) noexcept {
  auto* b = static_cast<LuaBudget*>(ud);
  const std::size_t old = ptr ? osize : 0;  // without ptr, osize is the kind of object
  if (nsize == 0) {
    std::free(ptr);
    b->give(old);
    return nullptr;
  }
  if (nsize > old && !b->take(nsize - old)) return nullptr;
  void* p = std::realloc(ptr, nsize);
  if (!p) {
    if (nsize > old) b->give(nsize - old);
    return nullptr;
  }
  if (nsize < old) b->give(old - nsize);
  return p;
}
/// The budget of `L`'s allocator, or null (no memory limit).
inline LuaBudget* budget_of(lua_State* L) noexcept {
  void* ud = nullptr;
  return lua_getallocf(L, &ud) == budget_alloc ? static_cast<LuaBudget*>(ud) : nullptr;
}
/// Marks the binding's own C++ code: allocations are charged, never refused.
/// (Left by a longjmp, the mark stays until the state's next call: the limit
/// is then checked less, never more.)
class Glue {
public:
  explicit Glue(lua_State* L) noexcept : b_(budget_of(L)) {
    if (b_) ++b_->glue;
  }
  ~Glue() {
    if (b_) --b_->glue;
  }
  Glue(const Glue&) = delete;
  Glue& operator=(const Glue&) = delete;

private:
  LuaBudget* b_;
};
/// Runs script code: lua_pcall with allocations refusable past the memory
/// limit; a refused allocation's error names the limit.
inline int script_pcall(lua_State* L, int nargs, int nresults) {
  LuaBudget* b = budget_of(L);
  if (!b) return lua_pcall(L, nargs, nresults, 0);
  const int outer = std::exchange(b->glue, 0);
  b->refused = false;
  const int status = lua_pcall(L, nargs, nresults, 0);
  b->glue = outer;
  if (status == LUA_ERRMEM && b->refused) {
    lua_pop(L, 1);
    const std::string msg = "not enough memory: the script's memory limit of " +
                            sc::MemoryBudget::describe(b->budget.limit()) + " (max_memory) is reached";
    lua_pushstring(L, msg.c_str());
    return LUA_ERRMEM;
  }
  return status;
}

/// Where the script calling into the binding is, for the thread dump and
/// the deadlock report: "script.lua:12 in function 'worker'". Runs on the
/// blocking thread while its state is inside a C function, so reading the
/// state's stack is safe; lua_getinfo allocates nothing for "Sln".
inline void describe_lua_site(void* ctx, char* buf, std::size_t size) noexcept {
  auto* L = static_cast<lua_State*>(ctx);
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); ++level) {
    if (!lua_getinfo(L, "Sln", &ar) || ar.currentline < 0) continue;  // a C function: look further up
    if (ar.name)
      std::snprintf(buf, size, "%s:%d in function '%s'", ar.short_src, ar.currentline, ar.name);
    else if (*ar.what == 'm')
      std::snprintf(buf, size, "%s:%d in the main chunk", ar.short_src, ar.currentline);
    else
      std::snprintf(buf, size, "%s:%d in a function defined at line %d", ar.short_src, ar.currentline, ar.linedefined);
    return;
  }
}

/// Runs `f` (which returns the number of results it pushed); a C++ exception
/// becomes a Lua error "<where>: <message>" raised after `f`'s objects are gone.
template <class F>
int protect(lua_State* L, F&& f) {
  bool failed = false;
  try {
    Glue glue(L);
    skein::WaitSiteScope site(&describe_lua_site, L);
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
    bool replaced = false;
    {
      std::string failure = failure_of(L);
      if (!failure.empty()) {
        lua_pop(L, 2);
        lua_pushstring(L, failure.c_str());
        replaced = true;
      }
    }
    if (!replaced) lua_concat(L, 2);
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

int view_newindex(lua_State* L);

/// True if the table at `idx` is a task state's view of a library (see "reuse" below).
inline bool is_library_view(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  lua_pushliteral(L, "__newindex");
  lua_rawget(L, -2);
  const bool view = lua_tocfunction(L, -1) == view_newindex;
  lua_pop(L, 2);
  return view;
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
      case LUA_TFUNCTION: return function(idx, depth);
      case LUA_TUSERDATA:
        if (auto* h = handle_at(L_, idx)) return *h;
        throw sc::ScriptError("cannot copy a userdata (only skein objects cross between tasks)");
      case LUA_TTHREAD: throw sc::ScriptError("cannot copy a coroutine");
      default: throw sc::ScriptError(std::string("cannot copy a ") + luaL_typename(L_, idx));
    }
  }

  Value table(int idx, int depth) {
    if (is_kwargs(L_, idx)) throw sc::ScriptError("threads.kwargs{...} must be the last argument of a call");
    if (is_library_view(L_, idx))  // as a library itself would: its functions are C functions
      throw sc::ScriptError("cannot copy a library table (a task has its own; capture it as an upvalue)");
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

  Value function(int idx, int depth) {
    if (lua_iscfunction(L_, idx))
      throw sc::ScriptError("cannot move a C function into a task (wrap it in a Lua function)");
    if (depth >= kMaxDepth) throw sc::ScriptError("cannot copy functions nested more than 100 levels deep");
    if (!lua_checkstack(L_, 6)) throw sc::ScriptError("cannot copy a function: Lua stack exhausted");
    lua_Debug ar;
    lua_pushvalue(L_, idx);
    lua_getinfo(L_, ">Su", &ar);  // pops the copy
    std::string where = std::string(ar.short_src) + ":" + std::to_string(ar.linedefined);
    std::vector<std::string> params;
    lua_pushvalue(L_, idx);
    for (int i = 1; i <= ar.nparams; ++i)
      if (const char* name = lua_getlocal(L_, nullptr, i)) params.emplace_back(name);  // function on top
    std::string code;
    int rc = lua_dump(L_, dump_writer, &code, 0);
    lua_pop(L_, 1);
    if (rc != 0) throw sc::ScriptError("cannot move function <" + where + "> into a task");

    functions_.push_back(lua_topointer(L_, idx));
    struct Pop {
      std::vector<const void*>& p;
      ~Pop() { p.pop_back(); }
    } pop{functions_};
    std::vector<LuaUpvalue> ups;
    ups.reserve(ar.nups);
    for (int i = 1; i <= ar.nups; ++i) {
      const char* name = lua_getupvalue(L_, idx, i);
      LuaUpvalue u;
      u.name = name && *name ? name : "?";
      try {
        upvalue(u, lua_gettop(L_), depth);
      } catch (const sc::ScriptError& e) {
        lua_pop(L_, 1);
        throw sc::ScriptError("function <" + where + ">: upvalue '" + u.name + "': " + e.what());
      }
      lua_pop(L_, 1);
      ups.push_back(std::move(u));
    }
    return sc::FunctionRef(std::make_shared<LuaFunction>(std::move(code), std::move(where), std::move(params),
                                                         ar.isvararg != 0, std::move(ups)));
  }

  /// How the upvalue at `idx` crosses (see LuaUpvalue).
  void upvalue(LuaUpvalue& u, int idx, int depth) {
    using K = LuaUpvalue::Kind;
    int t = lua_type(L_, idx);
    if (t == LUA_TNIL) return;
    if (t == LUA_TTABLE && u.name == "_ENV") {
      lua_pushglobaltable(L_);
      bool g = lua_rawequal(L_, -1, idx);
      lua_pop(L_, 1);
      if (g) {
        u.kind = K::globals;
        return;
      }
    }
    if (t == LUA_TFUNCTION && !lua_iscfunction(L_, idx)) {
      auto it = std::find(functions_.begin(), functions_.end(), lua_topointer(L_, idx));
      if (it != functions_.end()) {  // recursion: a function being copied around this one
        u.kind = K::enclosing;
        u.level = static_cast<std::size_t>(functions_.end() - it - 1);
        return;
      }
    }
    if (t == LUA_TTABLE || t == LUA_TUSERDATA || lua_iscfunction(L_, idx)) {
      if (auto path = library_path(idx)) {
        u.kind = K::library;
        u.path = std::move(*path);
        return;
      }
    }
    if (t == LUA_TTHREAD) throw sc::ScriptError("cannot copy a coroutine into a task");
    u.kind = K::value;
    u.value = convert(idx, depth + 1);
  }

  /// "string", "table.insert", "print", "threads": where the value at `idx`
  /// is found among the globals and the loaded modules, if it is a library's.
  std::optional<std::string> library_path(int idx) {
    if (lua_type(L_, idx) == LUA_TUSERDATA && handle_at(L_, idx)) return std::nullopt;  // a skein object: a handle
    std::optional<std::string> found;
    auto scan = [&](int tbl, const std::string& prefix) {
      lua_pushnil(L_);
      while (lua_next(L_, tbl)) {
        if (lua_type(L_, -2) == LUA_TSTRING && lua_rawequal(L_, -1, idx)) {
          found = prefix + lua_tostring(L_, -2);
          lua_pop(L_, 2);
          return;
        }
        lua_pop(L_, 1);
      }
    };
    lua_getfield(L_, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    int loaded = lua_gettop(L_);
    scan(loaded, "");  // a module: "string", "threads"
    if (!found && lua_type(L_, idx) != LUA_TTABLE) {
      lua_pushglobaltable(L_);
      scan(lua_gettop(L_), "");  // a global function: "print", "pairs"
      lua_pop(L_, 1);
      lua_pushnil(L_);
      while (!found && lua_next(L_, loaded)) {  // a module's function or object: "table.insert", "io.stdout"
        if (lua_type(L_, -2) == LUA_TSTRING && lua_type(L_, -1) == LUA_TTABLE) {
          std::string prefix = std::string(lua_tostring(L_, -2)) + ".";
          const int mod = lua_gettop(L_);
          scan(mod, prefix);
          // A task state's library is a view: its functions are in the table it reads through to.
          if (!found && lua_getmetatable(L_, mod)) {
            lua_pushliteral(L_, "__index");
            if (lua_rawget(L_, -2) == LUA_TTABLE) scan(lua_gettop(L_), prefix);
            lua_settop(L_, mod);
          }
          if (found) {
            lua_pop(L_, 2);
            break;
          }
        }
        lua_pop(L_, 1);
      }
    }
    lua_settop(L_, loaded - 1);
    return found;
  }

  lua_State* L_;
  std::vector<const void*> path_;       // the tables being copied (a cycle is an error)
  std::vector<const void*> functions_;  // the functions being copied (a cycle is recursion)
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

/// The functions being built by push_value, outermost first (stack indices):
/// an upvalue of Kind::enclosing refers to one of them.
using Building = std::vector<int>;

void push_value(lua_State* L, const Value& v, int depth, Building& building);

/// Pushes the library value at `path` ("string", "table.insert"): a loaded
/// module (required if it is not loaded yet), a global, or a field of either.
inline void push_library(lua_State* L, const std::string& path) {
  auto dot = path.find('.');
  std::string head = path.substr(0, dot);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, head.c_str());
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_getfield(L, -1, head.c_str());
    lua_remove(L, -2);
  }
  if (lua_isnil(L, -1)) {  // a module this state has not loaded yet: require it, as the caller did
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushstring(L, head.c_str());
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      std::string msg = error_message(L, -1);
      lua_pop(L, 1);
      throw sc::ScriptError("cannot find '" + head + "' here: " + msg);
    }
  }
  if (dot != std::string::npos) {
    std::string field = path.substr(dot + 1);
    if (lua_type(L, -1) == LUA_TTABLE)
      lua_getfield(L, -1, field.c_str());
    else
      lua_pushnil(L);
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      throw sc::ScriptError("'" + path + "' does not exist here");
    }
  }
}

/// Loads `f` into L with its upvalues: _ENV as this state's globals, library
/// values as this state's own, copies of everything else.
inline void push_function(lua_State* L, const LuaFunction& f, int depth, Building& building) {
  if (luaL_loadbufferx(L, f.bytecode().data(), f.bytecode().size(), f.where().c_str(), "b") != LUA_OK) {
    std::string msg = error_message(L, -1);
    lua_pop(L, 1);
    throw sc::ScriptError("cannot load " + f.describe() + ": " + msg);
  }
  const int fn = lua_gettop(L);
  building.push_back(fn);
  struct Pop {
    Building& b;
    ~Pop() { b.pop_back(); }
  } pop{building};
  int i = 0;
  for (auto& u : f.upvalues()) {
    ++i;
    using K = LuaUpvalue::Kind;
    try {
      switch (u.kind) {
        case K::nil: lua_pushnil(L); break;
        case K::globals: lua_pushglobaltable(L); break;
        case K::value: push_value(L, u.value, depth + 1, building); break;
        case K::enclosing:
          if (u.level >= building.size()) throw sc::ScriptError("refers to a function that is not being copied");
          lua_pushvalue(L, building[building.size() - 1 - u.level]);
          break;
        case K::library: push_library(L, u.path); break;
      }
    } catch (const sc::ScriptError& e) {
      lua_settop(L, fn - 1);
      throw sc::ScriptError(f.describe() + ": upvalue '" + u.name + "': " + e.what());
    }
    if (!lua_setupvalue(L, fn, i)) lua_pop(L, 1);
  }
}

/// Pushes a Lua copy of `v`. Throws ScriptError if a function fails to load.
inline void push_value(lua_State* L, const Value& v, int depth, Building& building) {
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
        push_value(L, e, depth + 1, building);
        lua_rawseti(L, -2, ++i);
      }
      return;
    }
    case Value::Kind::dict: {
      auto& d = *v.get_if<sc::Dict>();
      lua_createtable(L, 0, static_cast<int>(std::min<std::size_t>(d.size(), 1 << 24)));
      for (auto& e : d) {
        push_value(L, e.key, depth + 1, building);
        push_value(L, e.value, depth + 1, building);
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
      push_function(L, *lf, depth, building);
      return;
    }
    case Value::Kind::handle: push_handle(L, *v.get_if<sc::Handle>()); return;
  }
}
inline void push_value(lua_State* L, const Value& v) {
  Building building;
  push_value(L, v, 0, building);
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
  /// A fresh state; `for_tasks`: one the runtime may recycle between tasks
  /// (its libraries are seen through views, see "reuse" below).
  LuaEnvironment(sc::Runtime& rt, const sc::Dict* globals, bool for_tasks = false);
  /// Binds a state made elsewhere (the stock interpreter's, for the C module):
  /// adds the modules to package.loaded (not as globals) and, if the state has
  /// no hook, the cancellation check. Never recycled; not closed.
  struct Borrow {};
  LuaEnvironment(sc::Runtime& rt, Borrow, lua_State* borrowed);
  ~LuaEnvironment() override {
    if (!L_) return;
    if (owned_) {
      lua_close(L_);
      if (budget_) budget_->budget.release(budget_->reserve);  // every block is free now
      return;
    }
    forget_loaded();
    lua_pushnil(L_);
    lua_rawsetp(L_, LUA_REGISTRYINDEX, &detail::kEnvKey);
    if (lua_gethook(L_) == detail::cancel_hook) lua_sethook(L_, nullptr, 0, 0);
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
    if (detail::script_pcall(L_, static_cast<int>(args.size()), 1) != LUA_OK) {
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
    if (detail::script_pcall(L_, 0, 0) != LUA_OK) {
      std::string msg = detail::error_message(L_, -1);
      lua_settop(L_, 0);
      throw sc::ScriptError(msg);
    }
  }

  /// Runs a chunk of Lua source (for tests and embedding).
  void run_string(const std::string& code, const char* name = "=chunk") {
    if (luaL_loadbufferx(L_, code.data(), code.size(), name, "t") != LUA_OK ||
        detail::script_pcall(L_, 0, 0) != LUA_OK) {
      std::string msg = detail::error_message(L_, -1);
      lua_settop(L_, 0);
      throw sc::ScriptError(msg);
    }
  }

  /// Makes this state pristine again for another task (see the header
  /// comment); false if it should not be reused (it kept too much memory).
  bool recycle() noexcept override;
  /// Adds `globals` to this state's globals (a reused state given a clone of the caller's).
  void add_globals(const sc::Dict& globals) override { set_globals(globals); }

  [[nodiscard]] lua_State* state() const noexcept { return L_; }
  /// True once the runtime's failure (Runtime::fail) was raised as an error in this state.
  bool failure_raised = false;
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
    detail::Building building;
    detail::push_function(L_, *lf, 0, building);
    // Kept only once a function comes back: a task's state runs one function
    // and is reset after it (the cache would be filled and dropped each time).
    if (lf->id() != last_loaded_) {
      last_loaded_ = lf->id();
      return;
    }
    if (loaded_.size() >= 64) forget_loaded();
    lua_pushvalue(L_, -1);
    loaded_.emplace(lf->id(), luaL_ref(L_, LUA_REGISTRYINDEX));
  }

  void install();
  void install_modules(bool as_globals);
  void snapshot();
  void set_globals(const sc::Dict& globals) {
    lua_pushglobaltable(L_);
    for (auto& e : globals) {
      detail::push_value(L_, e.key);
      detail::push_value(L_, e.value);
      lua_rawset(L_, -3);
    }
    lua_pop(L_, 1);
  }
  void forget_loaded() noexcept {
    for (auto& [id, ref] : loaded_) luaL_unref(L_, LUA_REGISTRYINDEX, ref);
    loaded_.clear();
    last_loaded_ = 0;
  }

  sc::Runtime& rt_;
  std::unique_ptr<detail::LuaBudget> budget_;  // the allocator's, with a memory limit; outlives L_
  lua_State* L_ = nullptr;
  bool owned_ = true;  // false: a borrowed state (never recycled, not closed)
  std::unordered_map<std::uint64_t, int> loaded_;
  std::uint64_t last_loaded_ = 0;  // the function loaded last and not cached (ids start at 1)
  int pristine_ = LUA_NOREF;       // registry: {table, shallow copy, metatable or false, ...}
  int string_meta_ = LUA_NOREF;
  int reseed_ = LUA_NOREF;  // the pristine math.randomseed
  int base_kb_ = 0;         // memory in use when pristine
};

class LuaHost final : public sc::Host {
public:
  std::unique_ptr<sc::Environment> create_environment(sc::Runtime& rt, const sc::Dict* globals) override {
    return std::make_unique<LuaEnvironment>(rt, globals, true);
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
    std::string failure = failure_of(L);
    if (!failure.empty()) {
      lua_pushstring(L, failure.c_str());
      lua_error(L);
    }
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

namespace detail {
inline std::string failure_of(lua_State* L) {
  auto& env = env_of(L);
  auto& rt = env.runtime();
  if (!rt.context().cancelled()) return {};
  auto f = rt.failure();
  if (!f) return {};
  env.failure_raised = true;
  try {
    std::rethrow_exception(f);
  } catch (const std::exception& e) {
    return std::string("error in a task: ") + e.what();
  } catch (...) {
    return "error in a task";
  }
}
}  // namespace detail

namespace detail {

/// An error outside any protected call (a bug of the glue): as lauxlib's panic.
inline int panic(lua_State* L) {
  const char* msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
  std::fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n", msg);
  std::fflush(stderr);
  return 0;  // Lua aborts
}

/// load() of the safe set: text chunks only (a binary chunk can break the VM).
inline int load_text_only(lua_State* L) {
  const int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));  // the real load
  lua_pushvalue(L, 1);
  if (n >= 2)
    lua_pushvalue(L, 2);
  else
    lua_pushnil(L);
  lua_pushliteral(L, "t");
  if (n >= 4) lua_pushvalue(L, 4);  // env, only if given (absent and nil differ)
  lua_call(L, n >= 4 ? 4 : 3, LUA_MULTRET);
  return lua_gettop(L) - n;
}

/// The safe library set (Runtime::Options::safe_libraries): base without
/// dofile/loadfile and with a text-only load; coroutine, table, string
/// (without dump), math, utf8; os with clock, time, date and difftime only;
/// package with require for what is loaded or preloaded only (no searchers of
/// files or C libraries, no loadlib). No io, no debug.
inline void open_safe_libraries(lua_State* L) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},          {LUA_LOADLIBNAME, luaopen_package},
                                  {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8}};
  for (const auto& lib : libs) {
    luaL_requiref(L, lib.name, lib.func, 1);
    lua_pop(L, 1);
  }
  lua_pushglobaltable(L);
  for (const char* name : {"dofile", "loadfile"}) {
    lua_pushnil(L);
    lua_setfield(L, -2, name);
  }
  lua_getfield(L, -1, "load");
  lua_pushcclosure(L, load_text_only, 1);
  lua_setfield(L, -2, "load");
  lua_pop(L, 1);
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  // os: the clock and the calendar only. The full library is opened into a
  // table nobody keeps, and the four functions are copied out.
  luaopen_os(L);
  lua_createtable(L, 0, 4);
  for (const char* name : {"clock", "time", "date", "difftime"}) {
    lua_getfield(L, -2, name);
    lua_setfield(L, -2, name);
  }
  lua_remove(L, -2);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, LUA_OSLIBNAME);
  lua_pop(L, 1);
  lua_setglobal(L, LUA_OSLIBNAME);
  // package: require finds only package.loaded and package.preload.
  lua_getglobal(L, LUA_LOADLIBNAME);
  lua_getfield(L, -1, "searchers");
  lua_createtable(L, 1, 0);
  lua_rawgeti(L, -2, 1);  // the preload searcher
  lua_rawseti(L, -2, 1);
  lua_setfield(L, -3, "searchers");
  lua_pop(L, 1);
  for (const char* name : {"loadlib", "searchpath", "path", "cpath"}) {
    lua_pushnil(L);
    lua_setfield(L, -2, name);
  }
  lua_pop(L, 1);
}

}  // namespace detail

inline LuaEnvironment::LuaEnvironment(sc::Runtime& rt, const sc::Dict* globals, bool for_tasks) : rt_(rt) {
  if (rt.options().limits.max_memory > 0) {
    budget_ = std::make_unique<detail::LuaBudget>(rt.memory());
    L_ = lua_newstate(detail::budget_alloc, budget_.get());
    if (L_) lua_atpanic(L_, detail::panic);  // as luaL_newstate does
  } else {
    L_ = luaL_newstate();
  }
  if (!L_) throw std::bad_alloc();
  lua_pushlightuserdata(L_, this);
  lua_rawsetp(L_, LUA_REGISTRYINDEX, &detail::kEnvKey);
  try {
    install();
    if (for_tasks) snapshot();
    if (globals) set_globals(*globals);
  } catch (...) {
    lua_close(L_);
    L_ = nullptr;
    throw;
  }
}

inline LuaEnvironment::LuaEnvironment(sc::Runtime& rt, Borrow, lua_State* borrowed)
    : rt_(rt), L_(borrowed), owned_(false) {
  lua_pushlightuserdata(L_, this);
  lua_rawsetp(L_, LUA_REGISTRYINDEX, &detail::kEnvKey);
  install_modules(false);
  if (!lua_gethook(L_)) lua_sethook(L_, detail::cancel_hook, LUA_MASKCOUNT, detail::kHookCount);
}

inline void LuaEnvironment::install() {
  if (rt_.options().safe_libraries)
    detail::open_safe_libraries(L_);
  else
    luaL_openlibs(L_);
  install_modules(true);
  lua_pushcfunction(L_, detail::print_function);
  lua_setglobal(L_, "print");
  lua_sethook(L_, detail::cancel_hook, LUA_MASKCOUNT, detail::kHookCount);
}

inline void LuaEnvironment::install_modules(bool as_globals) {
  luaL_newmetatable(L_, detail::kKwargsMeta);
  lua_pop(L_, 1);
  luaL_getsubtable(L_, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  for (auto* m : sc::modules()) {
    detail::install_module(L_, *m, std::string(m->name) + ".");
    if (m == &sc::threads_module()) {
      lua_pushcfunction(L_, detail::kwargs_function);
      lua_setfield(L_, -2, "kwargs");
    }
    lua_pushvalue(L_, -1);
    lua_setfield(L_, -3, std::string(m->name).c_str());  // package.loaded[name]: require works
    if (as_globals)
      lua_setglobal(L_, std::string(m->name).c_str());
    else
      lua_pop(L_, 1);
  }
  lua_pop(L_, 1);
}

// --- reuse ---------------------------------------------------------------------------
//
// A task's state goes back to a pool when the task ends and the next task
// gets it reset to what a fresh state has: every table reachable from the
// globals and package.loaded (two levels down: _G, string, thread.channel,
// ...), the string metatable and the registry's named entries get back
// exactly their original fields and metatables; the other types lose any
// metatable set with debug.setmetatable; the collector is restarted in its
// default mode; math.random is reseeded; functions loaded for the task are
// forgotten. What a task leaves elsewhere (tables it made) is unreachable and
// collected. Not undone: changes made through the debug library to the
// internals of library functions (debug.setupvalue on a C function).

namespace detail {

/// Registry-kept record of one table as it was when pristine: {t, copy, order, metatable or false}.
/// `copy` maps its keys to their values; `order` lists k1, v1, k2, v2, ... in lua_next's
/// order, so that checking an untouched table is one traversal. `named` (the registry)
/// considers only string keys, except skein's own metatables (made on first use).
enum Slot : int { kTable = 1, kCopy, kOrder, kMeta, kNamed };

inline bool tracked_key(lua_State* L, int k, bool named) {
  return !named || (lua_type(L, k) == LUA_TSTRING && std::strncmp(lua_tostring(L, k), "skein.", 6) != 0);
}

/// Rebuilds entry `e`'s order list from its table as it is now.
inline void record_order(lua_State* L, int e) {
  lua_rawgeti(L, e, kTable);
  const int t = lua_gettop(L);
  const bool named = lua_rawgeti(L, e, kNamed) != LUA_TNIL;
  lua_pop(L, 1);
  lua_newtable(L);
  const int order = lua_gettop(L);
  lua_Integer j = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (tracked_key(L, -2, named)) {
      lua_pushvalue(L, -2);
      lua_rawseti(L, order, ++j);
      lua_rawseti(L, order, ++j);  // pops the value
    } else {
      lua_pop(L, 1);
    }
  }
  lua_rawseti(L, e, kOrder);
  lua_settop(L, t - 1);
}

/// True if entry `e`'s table has exactly its recorded fields, in the recorded order.
inline bool untouched(lua_State* L, int e) {
  lua_rawgeti(L, e, kTable);
  const int t = lua_gettop(L);
  const bool named = lua_rawgeti(L, e, kNamed) != LUA_TNIL;
  lua_rawgeti(L, e, kOrder);
  const int order = t + 2;
  const auto n = static_cast<lua_Integer>(lua_rawlen(L, order));
  lua_Integer j = 0;
  bool same = true;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (!tracked_key(L, -2, named)) {
      lua_pop(L, 1);
      continue;
    }
    if (j + 2 > n) {
      same = false;
      break;
    }
    lua_rawgeti(L, order, ++j);
    lua_rawgeti(L, order, ++j);
    if (!lua_rawequal(L, -1, -3) || !lua_rawequal(L, -2, -4)) {
      same = false;
      break;
    }
    lua_pop(L, 3);  // the recorded pair and the value: the key stays for lua_next
  }
  same = same && j == n;
  if (same) {  // and the same metatable
    lua_rawgeti(L, e, kMeta);
    if (!lua_getmetatable(L, t)) lua_pushboolean(L, 0);
    same = lua_rawequal(L, -1, -2);
  }
  lua_settop(L, t - 1);
  return same;
}

/// Gives entry `e`'s table exactly its recorded fields and metatable again.
inline void restore(lua_State* L, int e) {
  lua_rawgeti(L, e, kTable);
  const int t = lua_gettop(L);
  const bool named = lua_rawgeti(L, e, kNamed) != LUA_TNIL;
  lua_rawgeti(L, e, kCopy);
  const int copy = t + 2;
  lua_pushnil(L);
  while (lua_next(L, t)) {  // remove what is new
    lua_pop(L, 1);
    if (!tracked_key(L, -1, named)) continue;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, copy) == LUA_TNIL) {
      lua_pushvalue(L, -2);
      lua_pushnil(L);
      lua_rawset(L, t);  // assigning nil to an existing field is allowed during lua_next
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, copy)) {  // put back every original field
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, t);
  }
  if (!named) {
    lua_rawgeti(L, e, kMeta);
    if (!lua_toboolean(L, -1)) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
    lua_setmetatable(L, t);
  }
  lua_settop(L, t - 1);
  record_order(L, e);
}

/// Appends to `rec` an entry for the table at `t` as it is now.
inline void track(lua_State* L, int rec, int t, bool named) {
  t = lua_absindex(L, t);
  lua_createtable(L, 5, 0);
  const int e = lua_gettop(L);
  lua_pushvalue(L, t);
  lua_rawseti(L, e, kTable);
  lua_newtable(L);
  const int copy = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (tracked_key(L, -2, named)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, copy);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_rawseti(L, e, kCopy);
  if (named || !lua_getmetatable(L, t)) lua_pushboolean(L, 0);
  lua_rawseti(L, e, kMeta);
  if (named) {
    lua_pushboolean(L, 1);
    lua_rawseti(L, e, kNamed);
  }
  record_order(L, e);
  lua_rawseti(L, rec, static_cast<lua_Integer>(lua_rawlen(L, rec)) + 1);
}

}  // namespace detail

namespace detail {

/// What a view's __pairs returns for it: the view's own fields, then the
/// library's that the view does not shadow.
inline constexpr const char* kViewPairs = R"lua(
local next, rawget = next, rawget
return function(real)
  return function(view)
    local in_view, k = true, nil
    return function()
      if in_view then
        local nk, nv = next(view, k)
        if nk ~= nil then k = nk return nk, nv end
        in_view, k = false, nil
      end
      while true do
        local nk, nv = next(real, k)
        k = nk
        if nk == nil then return nil end
        if rawget(view, nk) == nil then return nk, nv end
      end
    end, view, nil
  end
end
)lua";

/// A view's __newindex (upvalue 1: the library): a new field goes into the
/// view; removing a library field (`os.execute = nil`) first turns the view
/// into a plain copy of the library, so that the field is gone for the task.
inline int view_newindex(lua_State* L) {
  if (lua_isnil(L, 3)) {
    lua_pushvalue(L, 2);
    const bool in_library = lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL;
    lua_pop(L, 1);
    if (in_library) {
      lua_pushnil(L);
      while (lua_next(L, lua_upvalueindex(1))) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, 1) == LUA_TNIL) {
          lua_pop(L, 1);
          lua_pushvalue(L, -2);
          lua_insert(L, -2);
          lua_rawset(L, 1);
        } else {
          lua_pop(L, 2);
        }
      }
      lua_pushnil(L);
      lua_setmetatable(L, 1);  // the reset puts the view's own metatable back
    }
  }
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 0;
}

/// Pushes a view of the library table at `real`: an empty table that reads
/// through to it (with views of its tables `level` < 2 deep as fields).
inline void push_view(lua_State* L, int real, int pairs_factory, int level) {
  real = lua_absindex(L, real);
  lua_newtable(L);
  const int view = lua_gettop(L);
  if (level < 2) {
    lua_pushnil(L);
    while (lua_next(L, real)) {
      if (lua_type(L, -1) == LUA_TTABLE && lua_type(L, -2) == LUA_TSTRING) {
        push_view(L, lua_gettop(L), pairs_factory, level + 1);
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_rawset(L, view);
      }
      lua_pop(L, 1);
    }
  }
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, real);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, real);
  lua_pushcclosure(L, view_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, pairs_factory);
  lua_pushvalue(L, real);
  lua_call(L, 1, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");  // the metatable stays out of reach (but for the debug library)
  lua_setmetatable(L, view);
}

/// Replaces every library in package.loaded (but _G and package) by a view,
/// there, in the globals and as the strings' __index.
inline void install_views(lua_State* L) {
  const int top = lua_gettop(L);
  if (luaL_loadbufferx(L, kViewPairs, std::strlen(kViewPairs), "=skein.view", "t") != LUA_OK)
    throw sc::ScriptError("cannot compile the library views: " + error_message(L, -1));
  lua_call(L, 0, 1);
  const int factory = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  const int loaded = lua_gettop(L);
  std::vector<std::string> names;
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
      std::string name = lua_tostring(L, -2);
      if (name != LUA_GNAME && name != LUA_LOADLIBNAME) names.push_back(std::move(name));
    }
    lua_pop(L, 1);
  }
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  const int strmeta = lua_gettop(L);
  for (auto& name : names) {
    lua_getfield(L, loaded, name.c_str());
    const int real = lua_gettop(L);
    push_view(L, real, factory, 1);
    const int view = lua_gettop(L);
    lua_pushvalue(L, view);
    lua_setfield(L, loaded, name.c_str());
    lua_pushglobaltable(L);
    lua_getfield(L, -1, name.c_str());
    if (lua_rawequal(L, -1, real)) {
      lua_pushvalue(L, view);
      lua_setfield(L, -3, name.c_str());
    }
    lua_pop(L, 2);
    lua_getfield(L, strmeta, "__index");
    if (lua_rawequal(L, -1, real)) {
      lua_pushvalue(L, view);
      lua_setfield(L, strmeta, "__index");
    }
    lua_settop(L, real - 1);
  }
  lua_settop(L, top);
}

}  // namespace detail

inline void LuaEnvironment::snapshot() {
  lua_State* L = L_;
  detail::install_views(L);
  lua_newtable(L);  // the record: one entry per table
  const int rec = lua_gettop(L);
  lua_newtable(L);  // the tables found so far (a set)
  const int seen = lua_gettop(L);
  lua_newtable(L);  // breadth-first queue: table, level, table, level, ...
  const int queue = lua_gettop(L);
  lua_Integer qn = 0;
  auto enqueue = [&](int idx, lua_Integer level) {
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE) return;
    lua_pushvalue(L, idx);
    const bool known = lua_rawget(L, seen) != LUA_TNIL;
    lua_pop(L, 1);
    if (known) return;
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
    lua_pushvalue(L, idx);
    lua_rawseti(L, queue, ++qn);
    lua_pushinteger(L, level);
    lua_rawseti(L, queue, ++qn);
  };
  lua_pushglobaltable(L);
  enqueue(-1, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  enqueue(-1, 0);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushvalue(L, -1);
  string_meta_ = luaL_ref(L, LUA_REGISTRYINDEX);
  enqueue(-1, 1);
  lua_settop(L, queue);
  for (lua_Integer qi = 1; qi <= qn; qi += 2) {  // two levels below the roots: _G.thread.channel
    lua_rawgeti(L, queue, qi);
    const int t = lua_gettop(L);
    lua_rawgeti(L, queue, qi + 1);
    const auto level = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (level < 2) {
      lua_pushnil(L);
      while (lua_next(L, t)) {
        enqueue(-1, level + 1);
        lua_pop(L, 1);
      }
    }
    detail::track(L, rec, t, false);
    lua_settop(L, queue);
  }
  lua_pushvalue(L, LUA_REGISTRYINDEX);
  detail::track(L, rec, -1, true);
  lua_settop(L, rec);
  pristine_ = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getglobal(L, "math");
  lua_getfield(L, -1, "randomseed");
  reseed_ = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  // The registry entry was recorded before these refs: record it again.
  lua_rawgeti(L, LUA_REGISTRYINDEX, pristine_);
  lua_rawgeti(L, -1, static_cast<lua_Integer>(lua_rawlen(L, -1)));
  detail::record_order(L, lua_gettop(L));
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  base_kb_ = lua_gc(L, LUA_GCCOUNT);
  // Generational: the libraries, the modules and this record are old and
  // stay unvisited by the young collections that clean up after each task
  // (incremental mode re-marks them every cycle: about 4 µs a task).
  lua_gc(L, LUA_GCGEN, 0, 0);
}

inline bool LuaEnvironment::recycle() noexcept {
  lua_State* L = L_;
  if (!L || !owned_ || pristine_ == LUA_NOREF) return false;
  lua_settop(L, 0);
  if (!lua_checkstack(L, 24)) return false;
  forget_loaded();
  lua_rawgeti(L, LUA_REGISTRYINDEX, pristine_);
  const int rec = lua_gettop(L);
  const auto n = static_cast<lua_Integer>(lua_rawlen(L, rec));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, rec, i);
    if (!detail::untouched(L, rec + 1)) detail::restore(L, rec + 1);
    lua_settop(L, rec);
  }
  lua_settop(L, 0);
  // Metatables of the other types: none; the strings' own.
  auto no_meta = [L] {
    if (lua_getmetatable(L, -1)) {
      lua_pop(L, 1);
      lua_pushnil(L);
      lua_setmetatable(L, -2);
    }
    lua_pop(L, 1);
  };
  lua_pushnil(L);
  no_meta();
  lua_pushboolean(L, 0);
  no_meta();
  lua_pushinteger(L, 0);
  no_meta();
  lua_pushcfunction(L, detail::print_function);
  no_meta();
  lua_pushlightuserdata(L, this);
  no_meta();
  lua_pushthread(L);
  no_meta();
  lua_pushliteral(L, "");
  lua_rawgeti(L, LUA_REGISTRYINDEX, string_meta_);
  if (!lua_getmetatable(L, -2) || !lua_rawequal(L, -1, -2)) {
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
  }
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, reseed_);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) return false;
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);  // (a task may have switched modes)
  if (lua_gc(L, LUA_GCCOUNT) > base_kb_ + 256) {
    lua_gc(L, LUA_GCCOLLECT);
    if (lua_gc(L, LUA_GCCOUNT) > base_kb_ + 2048) return false;  // keeps too much: start afresh
  }
  lua_sethook(L, detail::cancel_hook, LUA_MASKCOUNT, detail::kHookCount);
  return true;
}

}  // namespace skein_lua
