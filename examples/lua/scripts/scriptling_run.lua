-- Scriptling's `threads` library, threads.run(func, *args, **kwargs): positional and keyword
-- arguments (Lua has no keyword syntax: threads.kwargs{...} goes last).
-- [readme:run]
local threads = require("threads")

function worker(x, y)
  y = y or 10  -- Lua has no default values: nil means "not given"
  return x + y
end

-- With positional and keyword args
local promise = threads.run(worker, 5, threads.kwargs{y = 3})
print(promise:get())  -- 8

-- With only keyword args
local promise2 = threads.run(worker, threads.kwargs{x = 7, y = 3})
print(promise2:get())  -- 10

-- Multiple async operations
local promises = {}
for i = 0, 9 do promises[#promises + 1] = threads.run(worker, i, threads.kwargs{y = i + 1}) end
local results = {}
for _, p in ipairs(promises) do results[#results + 1] = p:get() end
print(table.concat(results, ", "))
-- [/readme:run]
