-- expect: exit 1
-- expect: stderr skein-lua: error in a task: bad_spawn_error.lua:16: nobody waits for me
-- A spawned task's error has nobody to observe it: like a panic in a Go
-- goroutine it ends the program at once — here the main script is waiting
-- for a value that task would have sent, and does not hang. A task that
-- handles its error (pcall) goes on.
local thread = require("thread")
local ch = thread.channel.new(1)
thread.core.spawn(function()
  local ok = pcall(error, "handled inside the task")
  thread.channel.send(ch, ok and "?" or "a task that handled its error went on")
end)
print(thread.channel.recv(ch))

print("main waits")
thread.core.spawn(function() error("nobody waits for me") end)
print(thread.channel.recv(ch))  -- never gets a value: the failure ends the wait
print("not reached")
