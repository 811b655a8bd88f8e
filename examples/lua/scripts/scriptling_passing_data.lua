-- Scriptling's `threads` library: all data is passed explicitly (and copied: the task gets its
-- own table).
local threads = require("threads")

local function process_data(data)
  local out = {}
  for i, x in ipairs(data) do out[i] = x * 2 end
  data[1] = 1000  -- changes the task's copy only
  return out
end

local my_data = {1, 2, 3, 4, 5}
local result = threads.run(process_data, my_data):get()
print(table.concat(result, ", "))  -- 2, 4, 6, 8, 10
print(my_data[1])                  -- 1: the caller's table is untouched

-- The task has no access to the caller's variables (Scriptling's explicit-passing isolation).
secret = "visible only here"
print(threads.run(function() return secret end):get())  -- nil
