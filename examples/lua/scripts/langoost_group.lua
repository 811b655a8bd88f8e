-- skein's thread.group for Langoost's `thread` module: a group of tasks with
-- a concurrency limit and values (thread.core.value), waited for as one.

local thread = require("thread")

local g = thread.group.new(2, {job = "resize"})
local results = {}
for i = 1, 4 do
  results[i] = thread.group.run(g, function(n)
    return thread.core.value("job") .. " #" .. n
  end, i)
end
thread.group.wait(g)
for i = 1, 4 do print(thread.async.await(results[i])) end

-- With a limit of 1, tryRun admits a second task only once the first is done.
local busy = thread.group.new(1)
local first = thread.group.tryRun(busy, function(ch) return thread.channel.recv(ch) end, thread.channel.new(1))
print("second admitted:", thread.group.tryRun(busy, function() end) ~= nil)
thread.group.cancel(busy)
local ok = pcall(thread.group.wait, busy)
print("cancelled busy group waits cleanly:", ok)

local failing = thread.group.new()
thread.group.run(failing, function() error("disk full") end)
local ok2, err = pcall(thread.group.wait, failing)
print("wait:", ok2, err)

-- Bad input is an error that names the call.
print(pcall(thread.group.new, "two"))
print(pcall(thread.group.new, nil, 5))
print(pcall(thread.group.run, 5, function() end))
print(pcall(thread.core.value))
