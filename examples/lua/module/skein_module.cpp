// The skein Lua C module: skein's `threads`, `thread` and `runtime` modules
// for the stock Lua 5.4 interpreter (and any program embedding Lua 5.4):
//
//   local skein = require("skein")      -- skein.threads, skein.thread, skein.runtime
//   local threads = require("threads")  -- threads.lua, thread.lua and runtime.lua
//                                       -- return the same tables
//
// One runtime per interpreter (per main lua_State), made by the first
// require: tasks run in states of their own (as in skein-lua), the
// interpreter's own state is bound to it and acts as a task of the runtime
// (its waits are cancelled with it). When the interpreter closes its state
// (at exit), skein waits for the tasks the script started, as skein-lua
// does; if one failed with nobody to observe it (a spawned task's error, a
// Promise dropped unread), it is shown on stderr and the process exits with
// status 1.

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <skein/version.hpp>

#include "lua_host.hpp"

namespace {

namespace sc = skein::script;

const char kStateKey = 0;  // registry key of the ModuleState's userdata

// Errors nobody could observe (reported by skein's unhandled-error handler).
std::mutex report_mu;
int unobserved_errors = 0;

void report(const char* what) {
  std::fflush(stdout);
  std::fprintf(stderr, "lua: error in a task: %s\n", what);
  std::fflush(stderr);
}

/// The runtime of one interpreter.
struct ModuleState {
  explicit ModuleState(lua_State* main) {
    skein::set_unhandled_error_handler([](std::exception_ptr e) {
      std::lock_guard lk(report_mu);
      ++unobserved_errors;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        report(x.what());
      } catch (...) {
        report("(not a std::exception)");
      }
    });
    env.emplace(rt, skein_lua::LuaEnvironment::Borrow{}, main);
    entered.emplace(rt.context());
  }

  /// At lua_close: leave the runtime's context, wait for its tasks, report
  /// what failed, and end the process with status 1 if anything did.
  void close() noexcept {
    entered.reset();
    try {
      rt.wait();
    } catch (...) {
    }
    if (auto f = rt.failure(); f && !env->failure_raised) {  // (raised in the script: the interpreter showed it)
      try {
        std::rethrow_exception(f);
      } catch (const std::exception& e) {
        report(e.what());
      } catch (...) {
        report("(not a std::exception)");
      }
    }
    env.reset();
  }

  skein_lua::LuaHost host;
  sc::Runtime rt{host};
  std::optional<skein_lua::LuaEnvironment> env;
  std::optional<skein::Context::Entered> entered;
};

int close_state(lua_State* L) {
  auto** slot = static_cast<ModuleState**>(lua_touserdata(L, 1));
  ModuleState* st = *slot;
  *slot = nullptr;
  if (!st) return 0;
  st->close();
  const bool failed = st->rt.failure() != nullptr;
  delete st;  // the runtime ends: every handle is released (and unread promises report)
  skein::set_unhandled_error_handler(nullptr);
  // A failure the script could not see (it had returned, or nobody read the
  // error) is shown above; the process says so with its status, since the
  // interpreter would exit 0.
  if (failed || unobserved_errors > 0) {
    std::fflush(nullptr);
    std::_Exit(1);
  }
  return 0;
}

/// This interpreter's ModuleState, made on first use.
ModuleState& module_state(lua_State* L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &kStateKey) == LUA_TUSERDATA) {
    auto* st = *static_cast<ModuleState**>(lua_touserdata(L, -1));
    lua_pop(L, 1);
    if (st) return *st;
    throw skein::UsageError("skein: the interpreter is closing");
  }
  lua_pop(L, 1);
  auto** slot = static_cast<ModuleState**>(lua_newuserdatauv(L, sizeof(ModuleState*), 0));
  *slot = nullptr;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, close_state);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kStateKey);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lua_State* main = lua_tothread(L, -1);
  lua_pop(L, 1);
  *slot = new ModuleState(main);
  return **slot;
}

int open_module(lua_State* L, const char* name) {
  return skein_lua::detail::protect(L, [&] {
    (void)module_state(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (name) {
      lua_getfield(L, -1, name);
    } else {
      lua_createtable(L, 0, 4);
      for (const char* m : {"threads", "thread", "runtime"}) {
        lua_getfield(L, -2, m);
        lua_setfield(L, -2, m);
      }
      lua_pushfstring(L, "%d.%d.%d", SKEIN_VERSION_MAJOR, SKEIN_VERSION_MINOR, SKEIN_VERSION_PATCH);
      lua_setfield(L, -2, "version");
    }
    lua_remove(L, -2);
    return 1;
  });
}

}  // namespace

extern "C" {
#if defined(_WIN32)
#define SKEIN_LUA_EXPORT __declspec(dllexport)
#else
#define SKEIN_LUA_EXPORT __attribute__((visibility("default")))
#endif
SKEIN_LUA_EXPORT int luaopen_skein(lua_State* L) { return open_module(L, nullptr); }
SKEIN_LUA_EXPORT int luaopen_skein_threads(lua_State* L) { return open_module(L, "threads"); }
SKEIN_LUA_EXPORT int luaopen_skein_thread(lua_State* L) { return open_module(L, "thread"); }
SKEIN_LUA_EXPORT int luaopen_skein_runtime(lua_State* L) { return open_module(L, "runtime"); }
}
