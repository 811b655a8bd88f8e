-- expect: exit 1
-- expect: args --sandbox --max-memory 8M
-- expect: stderr skein-lua: not enough memory: the script's memory limit of 8 MiB (max_memory) is reached
-- A memory bomb under --sandbox: caught with pcall, the script frees and goes
-- on; in a task, the task's promise fails; uncaught, the script fails.
local threads = require("threads")
local ok, e = pcall(function() local s = "x" while true do s = s .. s end end)
print("caught:", ok, e)
collectgarbage()
print("after freeing:", #string.rep("y", 1000000))
local p = threads.run(function() local t = {} while true do t[#t + 1] = {} end end)
print("task:", pcall(p.get, p))
local t = {}
while true do t[#t + 1] = ("z"):rep(1000) .. #t end
