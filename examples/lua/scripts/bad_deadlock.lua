-- expect: exit 1
-- expect: stderr skein: all goroutines are asleep - deadlock!
-- expect: stderr Queue::get on
-- expect: stderr bad_deadlock.lua:22 in function 'consume'
-- expect: stderr deadlock! (no running thread, armed timer or task could ever release this wait
-- The task that would feed the queue fails before its first put, and its
-- error waits in a promise nobody reads; the consumers wait on the queue
-- forever. skein's deadlock detector sees every thread parked with nothing
-- left to wake it: it prints Go's message and every thread's wait with its
-- script line, and the run ends with status 1 instead of hanging.
local threads = require("threads")

local jobs = threads.Queue(threads.kwargs{maxsize = 10})

threads.run(function(jobs)
  error("the producer failed before its first put")
  jobs:put(1)
end, jobs)

local function consume(jobs)
  print("waiting for a job")
  local job = jobs:get()
  print("got", job)
end

consume(jobs)
