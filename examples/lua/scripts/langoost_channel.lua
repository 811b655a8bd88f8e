-- Langoost's `thread` and `runtime` modules, thread.channel: typed message passing between tasks.
-- [readme:channel]
local thread = require("thread")

-- A channel crosses into a task as the same channel, whether the task
-- captures it (a `local`, as here) or gets it as a global or an argument.
local ch = thread.channel.new(10)  -- buffered channel, capacity 10

thread.core.spawn(function()
  thread.channel.send(ch, "hello from goroutine")
end)

local msg = thread.channel.recv(ch)
print(msg)

print(thread.channel.cap(ch), thread.channel.len(ch))  -- 10 0
print(thread.channel.recvTimeout(ch, 20))              -- nil: nothing came within 20 ms
thread.channel.send(ch, 1)
thread.channel.send(ch, 2)
thread.channel.close(ch)
print(thread.channel.recv(ch), thread.channel.recv(ch), thread.channel.recv(ch))  -- 1 2 nil (closed, drained)
print(pcall(thread.channel.send, ch, 3))  -- false ... put on a closed Queue
-- [/readme:channel]
