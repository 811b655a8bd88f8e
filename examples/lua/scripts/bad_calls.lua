-- Bad input from a script is a clear, catchable error — never a crash, never
-- an ignored argument — and a failed call changes nothing.
local threads = require("threads")
local thread = require("thread")

local function try(what, f, ...)
  local ok, err = pcall(f, ...)
  print(what, ok, err)
end

local function worker(x, y) return x + (y or 10) end

-- wrong type, non-integer, negative sizes
try("Atomic(str)", threads.Atomic, "1")
try("Atomic(2.5)", threads.Atomic, 2.5)
try("Queue(-1)", threads.Queue, -1)
try("Queue(1.5)", threads.Queue, 1.5)
try("Pool(f, 0)", threads.Pool, worker, 0)
try("channel.new(-3)", thread.channel.new, -3)
try("semaphore.new()", thread.semaphore.new)
try("sleep(-1)", thread.core.sleep, -1)

-- wrong arity, unknown keyword, repeated argument
try("Queue(1, 2)", threads.Queue, 1, 2)
try("send(ch)", thread.channel.send, thread.channel.new(1))
try("run kwarg z", threads.run, worker, 1, threads.kwargs{z = 2})
try("run x twice", threads.run, worker, 1, threads.kwargs{x = 2})
try("run 3 args", threads.run, worker, 1, 2, 3)
try("Pool kwarg", threads.Pool, worker, threads.kwargs{queue_size = 3})
try("kwargs not last", threads.run, worker, threads.kwargs{y = 1}, 2)

-- values that cannot cross into a task
try("C function", threads.run, print)
local cyclic = {}
cyclic.self = cyclic
try("cyclic table", threads.run, worker, cyclic)
try("file handle", threads.run, worker, io.stdout)
try("wrong handle", thread.channel.send, thread.mutex.new(), 1)
local q = threads.Queue()
try("dot call", q.put, 1)

-- use after close: the queued items are still delivered, nothing is lost
q:put("a")
q:put("b")
q:close()
try("put after close", q.put, q, "c")
print("drained", q:get(), q:get(), q:get())

-- misuse of the primitives
local wg = threads.WaitGroup()
try("WaitGroup done", wg.done, wg)
print("WaitGroup count", wg:count())
try("unlock unlocked", thread.mutex.unlock, thread.mutex.new())
local sem = thread.semaphore.new(1)
try("release past bound", thread.semaphore.release, sem)
print("semaphore still usable", thread.semaphore.tryAcquire(sem))
local pool = threads.Pool(worker)
pool:close()
try("submit after close", pool.submit, pool, 1)
