-- expect: sorted
-- Scriptling's `threads` library, threads.Pool(worker_func, workers=4, queue_depth=workers*2):
-- four workers process 100 items; close() waits for all of them. The lines
-- come in any order (this example's check compares sorted lines).
local threads = require("threads")

local function process_data(item)
  local result = item * item
  print(string.format("Processed %d -> %d", item, result))
  return result
end

local pool = threads.Pool(process_data, threads.kwargs{workers = 4, queue_depth = 1000})

for item = 0, 99 do pool:submit(item) end

pool:close()  -- wait for all work to complete
print("pool closed")
