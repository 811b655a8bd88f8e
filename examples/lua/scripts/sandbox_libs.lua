-- expect: args --sandbox
-- What --sandbox's safe library set offers and what it refuses, in the main
-- chunk and in a task (each task state has the same set).
local threads = require("threads")
local report = function()
  local out = {}
  local function names(t)
    local n = {}
    for k in pairs(t) do n[#n + 1] = tostring(k) end
    table.sort(n)
    return table.concat(n, " ")
  end
  local function try(what, f)
    local ok, e = pcall(f)
    out[#out + 1] = what .. ": " .. (ok and "ok" or (tostring(e):gsub("^[^:]*:%d+: ", "")))
  end
  out[#out + 1] = "libraries: " .. table.concat({
    type(coroutine), type(table), type(string), type(math), type(utf8), type(os), type(package),
    type(io), type(debug)}, " ")
  out[#out + 1] = "os: " .. names(os)
  out[#out + 1] = "package: " .. names(package) .. " (" .. #package.searchers .. " searcher)"
  try("os.execute", function() return os.execute("echo hi") end)
  try("os.exit", function() return os.exit(3) end)
  try("io.open", function() return io.open("/etc/passwd") end)
  try("dofile", function() return dofile("/etc/passwd") end)
  try("loadfile", function() return loadfile("/etc/passwd") end)
  try("string.dump", function() return string.dump(report) end)
  try("require a C module", function() return require("socket") end)
  try("require a file", function() package.path = "./?.lua" return require("sandbox_libs") end)
  try("load a binary chunk", function() return assert(load("\27Lua\84\0", "chunk", "b")) end)
  try("load text", function() return assert(load("return 6 * 7"))() == 42 or error("wrong") end)
  try("os.time", function() return os.time() > 0 or error("no time") end)
  try("require threads", function() return require("threads") == threads or error("another threads") end)
  return table.concat(out, "\n")
end
local main = report()
local task = threads.run(report):get()
print(main)
print("the same in a task: " .. tostring(task == main))
