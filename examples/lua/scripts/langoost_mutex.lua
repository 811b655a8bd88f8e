-- Langoost's `thread` and `runtime` modules: sharing state across VMs through runtime.core, with the
-- read-modify-write guarded by a thread.mutex (as Langoost's documentation advises).
local runtime = require("runtime")
local thread = require("thread")

mu = thread.mutex.new()  -- a global: spawned tasks get a copy of the globals,
                         -- and a skein object crosses as the same object
runtime.core.share("counter", "0")

function worker()
  thread.mutex.lock(mu)
  local val = math.tointeger(tonumber(runtime.core.fetch("counter")))
  runtime.core.share("counter", tostring(val + 1))
  thread.mutex.unlock(mu)
end

local futures = {}
for i = 1, 50 do futures[i] = thread.async.run(worker) end
for _, f in ipairs(futures) do thread.async.await(f) end
print(runtime.core.fetch("counter"))  -- 50

print(thread.mutex.tryLock(mu))  -- true
print(thread.mutex.tryLock(mu))  -- false
thread.mutex.unlock(mu)
