-- The skein Lua C module for the stock interpreter: `luarocks make` in a
-- clone of skein (offline: it needs only CMake, a C++20 compiler and Lua's
-- headers) installs skein.so and threads.lua, thread.lua, runtime.lua.
rockspec_format = "3.0"
package = "skein"
version = "scm-1"
source = {url = "git+file:///dev/null"}  -- only `luarocks make` from a clone is supported
description = {
  summary = "Go-style tasks, channels, WaitGroups, select and task groups for Lua, on skein's C++20 runtime",
  detailed = [[
require("skein") (or require("threads"), require("thread"), require("runtime")): tasks
on a work-stealing thread pool, each in a Lua state of its own; channels, WaitGroups,
mutexes, select, task groups; Scriptling's `threads` and Langoost's `thread`/`runtime` APIs.]],
  license = "MIT",
}
dependencies = {"lua >= 5.4, < 5.5"}
build = {
  type = "command",
  build_command = [[cmake -S . -B build.luarocks -DCMAKE_BUILD_TYPE=Release -DSKEIN_LUA_MODULE_ONLY=ON ]] ..
      [[-DSKEIN_LUA_INCLUDE_DIR="$(LUA_INCDIR)" -DSKEIN_LUA_LIBRARY=none ]] ..
      [[-DSKEIN_LUA_CMOD_DIR="$(LIBDIR)" -DSKEIN_LUA_LMOD_DIR="$(LUADIR)" && cmake --build build.luarocks]],
  install_command = [[cmake --install build.luarocks --component lua_module]],
}
