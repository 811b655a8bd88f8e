-- Scriptling's `threads` library: thread safety with shared data — an Atomic counter passed
-- explicitly to every task.
local threads = require("threads")

local counter = threads.Atomic(0)

local function increment(counter)
  counter:add(1)  -- thread-safe
end

local promises = {}
for _ = 1, 10 do promises[#promises + 1] = threads.run(increment, counter) end
for _, p in ipairs(promises) do p:get() end
print(counter:get())  -- 10

-- threads.Atomic(initial=0): the same with 1000 tasks
counter = threads.Atomic(threads.kwargs{initial = 0})
promises = {}
for _ = 1, 1000 do promises[#promises + 1] = threads.run(increment, counter) end
for _, p in ipairs(promises) do p:get() end
print(counter:get())  -- 1000
print(counter:add(5), counter:get())  -- add returns the new value: 1005 1005
