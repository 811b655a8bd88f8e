-- Langoost's `thread` and `runtime` modules, thread.async: run work and await its result.
local thread = require("thread")

local future = thread.async.run(function()
  thread.core.sleep(100)
  return "done"
end)

print(thread.async.await(future))  -- done

-- An error in the task is raised again by await, with its message.
local failing = thread.async.run(function() error("no luck", 0) end)
print(pcall(thread.async.await, failing))  -- false  no luck
