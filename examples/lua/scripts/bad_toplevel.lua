-- expect: exit 1
-- expect: stderr bad_toplevel.lua:5: threads.Queue: maxsize must not be negative, got -1
-- An uncaught bad call ends the script with its message and a non-zero status.
local threads = require("threads")
local q = threads.Queue(-1)
print("not reached")
