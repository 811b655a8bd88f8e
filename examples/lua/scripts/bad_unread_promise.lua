-- expect: exit 1
-- expect: stderr skein-lua: error in a task: bad_unread_promise.lua:7: never read
-- A failed task whose promise nobody reads is reported, even when the promise
-- is kept in a skein object until the run ends.
local threads = require("threads")
local keep = threads.Shared()
keep:set(threads.run(function() error("never read") end))
print("main done")
