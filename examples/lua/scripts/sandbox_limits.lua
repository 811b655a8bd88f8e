-- expect: args --sandbox --max-tasks 4 --max-queue-items 5
-- Limits hit under --sandbox are errors the script can catch with pcall.
local threads = require("threads")

-- A queue flood: an unbounded queue holds at most --max-queue-items.
local q = threads.Queue()
local n = 0
local ok, e = pcall(function() while true do q:put(n) n = n + 1 end end)
print("flood:", ok, e, "after " .. n .. " items")
print("bigger queue:", pcall(threads.Queue, 6))

-- A fork bomb: a task starting tasks that block stops at --max-tasks live
-- tasks (itself and 3 children); none ends before the gate closes.
local gate = threads.Queue()
local block = function(gate) gate:get() end
local bomb = function(gate, block)
  local started = 0
  while true do
    local ok, e = pcall(threads.run, block, gate)
    if not ok then return started .. " started, then: " .. e end
    started = started + 1
  end
end
print("fork bomb:", threads.run(bomb, gate, block):get())
-- The bomb itself has ended: its slot is free for one more.
print("main:", (pcall(threads.run, block, gate)))
print("main again:", pcall(threads.run, block, gate))
gate:close()
