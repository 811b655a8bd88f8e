-- expect: exit 124
-- expect: args --timeout 1
-- expect: stderr timed out after 1 s
-- --timeout cancels every task, busy or blocked, and exits with status 124.
local threads = require("threads")
local spin = function() local n = 0; while true do n = n + 1 end end
for _ = 1, 8 do threads.run(spin) end
local q = threads.Queue()
threads.run(function(q) return q:get() end, q)   -- blocked on a queue forever
threads.run(function() while true do pcall(function() while true do end end) end end)  -- pcall cannot hide it
print("started")
q:get()  -- the main chunk blocks too
