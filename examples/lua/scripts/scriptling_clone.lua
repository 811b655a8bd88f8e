-- expect: args --isolation clone
-- Scriptling's cloned-environment variant: each goroutine gets a cloned environment — a deep copy of the
-- caller's globals (run with --isolation clone).
local threads = require("threads")

config = {scale = 3, label = "scaled"}

function scale(x)
  return x * config.scale
end

local p = threads.run(function(x)
  config.scale = 100  -- the task's own copy
  return config.label .. " " .. scale(x)
end, 7)
print(p:get())        -- scaled 2100 (the task's copy of config says 100 now)
print(config.scale)   -- 3: the caller's globals are untouched
