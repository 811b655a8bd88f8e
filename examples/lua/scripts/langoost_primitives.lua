-- Langoost's `thread` and `runtime` modules: rwlock, semaphore, atomic, pool and scheduler. Tasks get a
-- copy of the caller's globals; skein objects in them are shared.
local thread = require("thread")

-- thread.atomic
hits = thread.atomic.new(0)
local futures = {}
for i = 1, 20 do futures[i] = thread.async.run(function() thread.atomic.add(hits, 1) end) end
for _, f in ipairs(futures) do thread.async.await(f) end
print("atomic", thread.atomic.load(hits))           -- 20
print("cas", thread.atomic.cas(hits, 20, 0), thread.atomic.load(hits))  -- true 0

-- thread.semaphore: at most 2 holders at a time
sem = thread.semaphore.new(2)
inside, most = thread.atomic.new(0), thread.atomic.new(0)
futures = {}
for i = 1, 10 do
  futures[i] = thread.async.run(function()
    thread.semaphore.acquire(sem)
    local n = thread.atomic.add(inside, 1)
    local m = thread.atomic.load(most)
    while n > m and not thread.atomic.cas(most, m, n) do m = thread.atomic.load(most) end
    thread.core.sleep(2)
    thread.atomic.add(inside, -1)
    thread.semaphore.release(sem)
  end)
end
for _, f in ipairs(futures) do thread.async.await(f) end
print("semaphore holders at most", thread.atomic.load(most) <= 2)  -- true

-- thread.rwlock: readers share, a writer excludes
local rw = thread.rwlock.new()
thread.rwlock.rlock(rw)
print("second reader", thread.rwlock.tryRLock(rw))  -- true
print("writer", thread.rwlock.tryLock(rw))          -- false
thread.rwlock.runlock(rw)
thread.rwlock.runlock(rw)
print("writer", thread.rwlock.tryLock(rw))          -- true
thread.rwlock.unlock(rw)

-- thread.pool: submit, wait
total = thread.atomic.new(0)
local pool = thread.pool.new(function(x) thread.atomic.add(total, x) end, 3, 8)
for i = 1, 100 do thread.pool.submit(pool, i) end
thread.pool.wait(pool)
print("pool total", thread.atomic.load(total))  -- 5050
thread.pool.close(pool)

-- thread.scheduler: functions in sequence, in one task
steps = {}
local seq = thread.scheduler.run(
  function() steps[#steps + 1] = "fetch"; return 1 end,
  function() steps[#steps + 1] = "parse"; return 2 end,
  function() steps[#steps + 1] = "store"; return table.concat(steps, " > ") end)
local results = thread.async.await(seq)
print("scheduler", results[1], results[2], results[3])  -- 1 2 fetch > parse > store
