-- Scriptling's `threads` library, threads.Queue: producer/consumer through a bounded queue,
-- with Scriptling's sentinel (nil).
local threads = require("threads")

local queue = threads.Queue(threads.kwargs{maxsize = 100})

local function producer(queue)
  for i = 0, 9 do queue:put(i) end
  queue:put(nil)  -- sentinel
end

local function consumer(queue)
  while true do
    local item = queue:get()
    if item == nil then break end
    print(string.format("Processing %d", item))
  end
end

threads.run(producer, queue)
threads.run(consumer, queue)
-- skein-lua waits for both tasks before it exits.
