-- A task's function takes its upvalues along: captured locals are copied
-- (tables deeply), skein objects stay the same object, library values
-- (`local insert = table.insert`, the modules) are the task's own, and
-- recursive local functions keep working. What cannot cross is named.
local thread = require("thread")
local threads = require("threads")
local insert, fmt = table.insert, string.format

-- Langoost's example, written with a local: the task sends on the same channel.
local ch = thread.channel.new(10)
thread.core.spawn(function() thread.channel.send(ch, "hello from goroutine") end)
print(thread.channel.recv(ch))

local config = {name = "cfg", sizes = {1, 2, 3}}
local function label(x) return fmt("<%s>", x) end
print(threads.run(function()
  local parts = {}
  insert(parts, config.name)
  insert(parts, #config.sizes)
  return label(table.concat(parts, ","))
end):get())

local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
print("fib(20) =", threads.run(function(n) return fib(n) end, 20):get())

local is_even, is_odd
function is_even(n) if n == 0 then return true end return is_odd(n - 1) end
function is_odd(n) if n == 0 then return false end return is_even(n - 1) end
print("is_even(7) =", threads.run(function() return is_even(7) end):get())

-- Copies: the task's changes to a captured counter stay in the task.
local count = 0
local function bump() count = count + 1 return count end
print("task counted", threads.run(function() bump() bump() return bump() end):get(), "caller still has", count)

-- A shared object is how tasks share state.
local total = threads.Atomic(0)
local wg = threads.WaitGroup()
for i = 1, 10 do
  wg:add(1)
  thread.core.spawn(function() total:add(i) wg:done() end)
end
wg:wait()
print("total", total:get())

local co = coroutine.create(function() end)
print(pcall(threads.run, function() return co end))
local file = io.tmpfile()
print(pcall(threads.run, function() return file end))
file:close()

-- A library passed as an argument is refused, in the main script and in a task
-- (where the libraries are views); captured, it is the task's own.
print(pcall(threads.run, function(t) return t end, string))
print(threads.run(function()
  local ok, err = pcall(threads.run, function(t) return t end, string)
  local s = string
  return tostring(ok) .. ", " .. err .. "; captured: " .. threads.run(function() return s.format("%d", 42) end):get()
end):get())
