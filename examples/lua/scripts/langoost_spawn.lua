-- expect: sorted
-- Langoost's `thread` and `runtime` modules, thread.core: spawn a goroutine; sleep, cpus, goroutines.
local thread = require("thread")

thread.core.spawn(function()
  print("running in the background")
end)

print(thread.core.cpus() >= 1)        -- true
thread.core.sleep(10)                 -- milliseconds
print(thread.core.goroutines() >= 0)  -- live tasks of this script: true
-- skein-lua waits for the spawned task before it exits.
