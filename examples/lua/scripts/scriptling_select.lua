-- Scriptling's `threads` library with select: whichever queue delivers first
-- wins; an "after" case (seconds) bounds the wait.
local threads = require("threads")

local fast, slow = threads.Queue(1), threads.Queue(1)
threads.run(function(q) q:put("fast") end, fast)  -- nothing ever comes on `slow`

local r = threads.select({{"get", fast}, {"get", slow}, {"after", 5}})
print(r[1], r[2])  -- 1 fast
-- Nothing else arrives within 50 ms: the "after" case (the 3rd) wins.
print(threads.select({{"get", fast}, {"get", slow}, {"after", 0.05}})[1])  -- 3

-- A promise as a case: it fires once the task has finished.
local p = threads.run(function() return 42 end)
r = threads.select({{"ready", p}, {"after", 5}})
print(r[1], p:get())  -- 1 42
-- A put case places its item (here at once: there is room).
print(threads.select({{"put", slow, "x"}, {"default"}})[1], slow:get())  -- 1 x
print(pcall(threads.select, {{"bogus", fast}}))
