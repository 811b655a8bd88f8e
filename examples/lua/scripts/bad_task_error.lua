-- expect: exit 1
-- expect: stderr bad_task_error.lua:6: worker failed on 3
-- An error raised in a task is raised again, with its message, by get().
local threads = require("threads")
local function worker(x)
  if x == 3 then error("worker failed on " .. x) end
  return x
end
print(threads.run(worker, 1):get())
print(threads.run(worker, 3):get())
print("not reached")
