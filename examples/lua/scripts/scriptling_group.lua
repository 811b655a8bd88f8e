-- skein's threads.Group (Go's errgroup): start tasks in a group, wait for all of
-- them; the first error cancels the others and wait() raises it. A group can
-- carry values that its tasks (and the tasks they start) read with threads.value.
local threads = require("threads")

-- [readme:group]
function fetch(n)
  if n == 3 then error("page 3 is missing") end
  return n * 10
end

-- Everything succeeds: wait() returns, each promise has its value.
local g = threads.Group(threads.kwargs{limit = 2})
local pages = {}
for i, n in ipairs({1, 2, 4, 5}) do pages[i] = g:run(fetch, n) end
g:wait()
print("pages", pages[1]:get(), pages[2]:get(), pages[3]:get(), pages[4]:get())

-- One task fails: wait() raises its error; the task blocked on the queue is cancelled.
local bad = threads.Group()
bad:run(function(q) q:get() end, threads.Queue())
bad:run(fetch, 3)
local ok, err = pcall(function() bad:wait() end)
print("failed:", ok, err)
print("errors:", #bad:errors())

-- Values: the group's tasks, and the tasks they start, see them.
local traced = threads.Group(threads.kwargs{values = {request = "r-42"}})
local p = traced:run(function()
  local inner = threads.run(function() return threads.value("request") end)
  return threads.value("request") .. " / " .. inner:get() .. " / " .. threads.value("user", "nobody")
end)
traced:wait()
print("value:", p:get())
print("outside:", threads.value("request"))
-- [/readme:group]
