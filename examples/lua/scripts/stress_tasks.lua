-- Stress: 10,000 threads.run tasks each returning a value; 1,000 tasks
-- blocked on one WaitGroup; a producer/consumer stream through a Queue
-- between Lua states. Exact totals.
local threads = require("threads")
local scale = tonumber(os.getenv("SKEIN_TEST_SCALE") or "1")
local n = math.max(100, 10000 // scale)

local ps = {}
for i = 1, n do ps[i] = threads.run(function(x) return x * 2 end, i) end
local sum = 0
for _, p in ipairs(ps) do sum = sum + p:get() end
print("run sum ok", sum == n * (n + 1))

local m = math.max(50, 1000 // scale)
local gate, wg, count = threads.WaitGroup(), threads.WaitGroup(), threads.Atomic()
gate:add(1)
wg:add(m)
for _ = 1, m do
  threads.run(function(gate, wg, count) gate:wait(); count:add(1); wg:done() end, gate, wg, count)
end
print("blocked before release", wg:wait_for(0.05) == false)
gate:done()
wg:wait()
print("waitgroup count ok", count:get() == m)

local q = threads.Queue(16)
local items = math.max(1000, 50000 // scale)
local producers = {}
for p = 1, 4 do
  producers[p] = threads.run(function(q, base, k) for i = 1, k do q:put({base + i, tag = "x"}) end end, q, p * items, items)
end
local consumers = {}
for c = 1, 3 do
  consumers[c] = threads.run(function(q)
    local s = 0
    for item in function() return q:get() end do s = s + item[1] end
    return s
  end, q)
end
for _, p in ipairs(producers) do p:wait() end
q:close()
local total = 0
for _, c in ipairs(consumers) do total = total + c:get() end
local expected = 0
for p = 1, 4 do expected = expected + p * items * items + items * (items + 1) // 2 end
print("queue total ok", total == expected)
