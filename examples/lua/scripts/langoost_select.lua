-- Langoost's `thread` module with Go's select: thread.channel.select waits on
-- several channel operations and timers and completes exactly one of them.
-- [readme:select]
local thread = require("thread")

ping = thread.channel.new()    -- no capacity: unbuffered, as in Go
done = thread.channel.new(1)

thread.core.spawn(function()
  for i = 1, 3 do thread.channel.send(ping, i) end
  thread.channel.send(done, "finished")
end)

while true do
  -- Each case is a list; the result is {position of the winning case, value}.
  local r = thread.channel.select({{"recv", ping}, {"recv", done}, {"after", 1000}})
  if r[1] == 1 then
    print("ping", r[2])
  elseif r[1] == 2 then
    print("done:", r[2])
    break
  else
    print("timeout")
    break
  end
end

-- A default case makes it non-blocking: nobody receives on `ping` now.
print(thread.channel.select({{"send", ping, 4}, {"default"}})[1])  -- 2
-- An unbuffered send with nobody receiving times out, and nothing is left behind.
print(thread.channel.select({{"send", ping, 5}, {"after", 20}})[1])  -- 2
print(pcall(thread.channel.select, {}))  -- false ... select needs at least one case
-- [/readme:select]
