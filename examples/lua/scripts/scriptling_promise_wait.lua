-- Scriptling's `threads` library, Promise.wait(): wait for completion and discard the result.
local threads = require("threads")

local function worker(x, y)
  y = y or 10
  print(string.format("Processing %d + %d = %d", x, y, x + y))
end

-- Run async and wait for completion (fire-and-forget style)
local promise = threads.run(worker, 5, threads.kwargs{y = 3})
promise:wait()  -- waits for completion, discards the result
print("the worker has finished")
