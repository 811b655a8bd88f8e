-- Scriptling's `threads` library, threads.Shared: get() returns a copy, so the scripting APIs'
-- get-append-set pattern would race; update(f) is its race-free form: f gets
-- a copy under the lock and what it returns becomes the new value.
local threads = require("threads")

local shared_list = threads.Shared({})

local function append_item(shared_list, item)
  shared_list:update(function(current)
    current[#current + 1] = item
    return current
  end)
end

local promises = {}
for i = 0, 99 do promises[#promises + 1] = threads.run(append_item, shared_list, i) end
for _, p in ipairs(promises) do p:get() end

print(#shared_list:get())  -- 100

-- get() is a copy: changing it changes nothing shared.
local copy = shared_list:get()
copy[1] = "changed"
print(shared_list:get()[1] ~= "changed")  -- true
shared_list:set({"replaced"})
print(shared_list:get()[1])  -- replaced
