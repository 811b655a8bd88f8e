-- expect: sorted
-- Scriptling's `threads` library, threads.WaitGroup: synchronise goroutines (Go style). The
-- workers run concurrently, so their lines come in any order (this example's
-- check compares sorted lines).
local threads = require("threads")

local wg = threads.WaitGroup()

local function worker(wg, id)
  print(string.format("Worker %d starting", id))
  -- ... do work ...
  print(string.format("Worker %d done", id))
  wg:done()
end

for i = 0, 9 do
  wg:add(1)
  threads.run(worker, wg, i)
end

wg:wait()
print("All workers complete")
