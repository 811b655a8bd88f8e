-- expect: exit 1
-- expect: stderr skein-lua: bad_pool_error.lua:18: cannot process 13
-- A worker's error is kept; the other items are still processed; wait() or
-- close() raises it.
local threads = require("threads")
local done = threads.Atomic(0)
local pool = threads.Pool(function(item)
  if item.x == 13 then error("cannot process " .. item.x) end
  item.done:add(1)
end, 4)
for i = 1, 20 do pool:submit({x = i, done = done}) end
local ok, err = pcall(pool.wait, pool)
print("wait raised", ok == false, err)
print("other items processed", done:get())  -- 19
pool:close()  -- that error was raised once already: close() succeeds

local pool2 = threads.Pool(function(x)
  error("cannot process " .. x)
end, 2)
pool2:submit(13)
pool2:close()  -- uncaught: the script fails with the worker's message
print("not reached")
