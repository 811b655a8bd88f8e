-- expect: exit 1
-- expect: stderr skein-lua: error in a task: bad_spawn_error.lua:6: nobody waits for me
-- A spawned task's error has nobody to observe it: it is reported, and the
-- run fails — it is never dropped silently.
local thread = require("thread")
thread.core.spawn(function() error("nobody waits for me") end)
print("main done")
