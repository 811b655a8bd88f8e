-- expect: exit 1
-- expect: stderr skein-lua: error in a task: bad_spawn_busy.lua:6: boom
-- A busy main script (no wait to cancel) is stopped as well: the failure
-- is raised in its code, and its own pcall does not keep it alive.
local thread = require("thread")
thread.core.spawn(function() error("boom") end)
while true do pcall(function() for _ = 1, 1000 do end end) end
