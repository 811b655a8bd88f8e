local threads = require("threads")
-- Task states are reused: a task that changes everything it can reach leaves
-- nothing behind for the next task that runs in the same lua_State (the
-- address of its main coroutine tells which state a task ran in).
local polluter = function()
  leaked_global = "leak"
  string.upper = nil
  assert(string.upper == nil, "a removed library function is gone for the task")
  assert(not pcall(function() return ("x"):upper() end), "also as a string method")
  os.execute = nil
  assert(os.execute == nil)
  string.extra = "x"
  table.insert = print
  math.pi = 3
  getmetatable("").__index = {len = function() return -1 end}
  getmetatable("").__add = function() return "added" end
  package.loaded.fake = {"fake"}
  package.path = "/nowhere/?.lua"
  debug.getregistry().leaked = true
  setmetatable(_G, {__index = function(_, k) return "from-meta:" .. k end})
  debug.setmetatable(0, {__index = {double = function(x) return 2 * x end}})
  debug.setmetatable(nil, {__index = function() return "nilmeta" end})
  collectgarbage("stop")
  _G.threads = nil
  return tostring(coroutine.running())
end
local checker = function()
  local bad = {}
  local function check(ok, what) if not ok then bad[#bad + 1] = what end end
  check(leaked_global == nil, "global")
  check(string.upper ~= nil and string.extra == nil and ("x"):upper() == "X", "string library")
  check(os.execute ~= nil, "os library")
  local n = 0
  for _, f in pairs(string) do if type(f) == "function" then n = n + 1 end end
  check(n >= 17, "pairs over the string library")
  check(table.insert ~= print, "table library")
  check(math.pi > 3.14, "math.pi")
  check(("abc"):len() == 3, "string metatable __index")
  check(("1" + 1) == 2, "string metatable __add")
  check(package.loaded.fake == nil, "package.loaded")
  check(package.path ~= "/nowhere/?.lua", "package.path")
  check(debug.getregistry().leaked == nil, "registry")
  check(getmetatable(_G) == nil and undefined_name == nil, "metatable of _G")
  check(debug.getmetatable(0) == nil, "metatable of numbers")
  check(debug.getmetatable(nil) == nil, "metatable of nil")
  check(collectgarbage("isrunning"), "collector stopped")
  check(rawget(_G, "threads") ~= nil, "threads global")
  return {tostring(coroutine.running()), table.concat(bad, ", ")}
end
local first = threads.run(polluter):get()
local same, leaks = 0, {}
for i = 1, 20 do
  local r = threads.run(checker):get()
  local id, bad = r[1], r[2]
  if id == first then same = same + 1 end
  if bad ~= "" then leaks[#leaks + 1] = bad end
end
print("reused the polluted state:", same > 0)
print("leaks:", #leaks == 0 and "none" or table.concat(leaks, " | "))
