// Hostile scripts against the script sandbox (Runtime::Options: Limits and
// safe_libraries) and an audit of the isolation between a program's Lua
// states. One process runs the scripts one after another, each in a fresh
// Runtime with a LuaHost, as skein-lua does; each scenario checks the
// documented error, that the limit held while the script ran, that nothing
// stays alive afterwards (tasks, task slots, Lua states, the memory budget,
// the objects the script made), and that the host still runs a normal script.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lua_host.hpp"

namespace {

namespace sc = skein::script;
using namespace std::chrono_literals;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// skein-lua's --sandbox: the safe libraries and its default limits.
sc::Runtime::Options sandboxed(sc::Limits limits = {}) {
  sc::Runtime::Options o;
  o.safe_libraries = true;
  o.limits.max_tasks = limits.max_tasks ? limits.max_tasks : 1000;
  o.limits.max_threads = limits.max_threads ? limits.max_threads : 64;
  o.limits.max_memory = limits.max_memory ? limits.max_memory : std::size_t{256} << 20;
  o.limits.max_queue_items = limits.max_queue_items ? limits.max_queue_items : 100000;
  return o;
}
/// The full library set and no limits.
sc::Runtime::Options full() { return sc::Runtime::Options{}; }

/// Environments the host made (task states) that are still alive, process-wide.
std::atomic<long> live_environments{0};

/// A LuaHost whose environments are counted: after ~Runtime, none may be left.
class CountingHost final : public sc::Host {
public:
  std::unique_ptr<sc::Environment> create_environment(sc::Runtime& rt, const sc::Dict* globals) override {
    return std::make_unique<Counted>(lua_.create_environment(rt, globals));
  }

private:
  class Counted final : public sc::Environment {
  public:
    explicit Counted(std::unique_ptr<sc::Environment> e) : inner_(std::move(e)) { ++live_environments; }
    ~Counted() override { --live_environments; }
    sc::Value call(const sc::Function& f, std::vector<sc::Value> args) override {
      return inner_->call(f, std::move(args));
    }
    bool recycle() noexcept override { return inner_->recycle(); }
    void add_globals(const sc::Dict& globals) override { inner_->add_globals(globals); }

  private:
    std::unique_ptr<sc::Environment> inner_;
  };
  skein_lua::LuaHost lua_;
};

/// What a script run did.
struct Outcome {
  std::string error;       // the main chunk's error, "" if none
  std::string wait_error;  // Runtime::wait's
  std::string failure;     // Runtime::failure (a spawned task failed)
  std::chrono::duration<double> took{};
};

/// One hostile program: a fresh Runtime (CountingHost, `opts`, a context
/// with `timeout` if given), the main chunk run as skein-lua runs it, peaks
/// sampled while it runs, and the checks that nothing stays alive in
/// finish() (called by the destructor if the test did not).
class Program {
public:
  explicit Program(sc::Runtime::Options opts, std::optional<std::chrono::duration<double>> timeout = std::nullopt)
      : opts_(opts) {
    skein::set_unhandled_error_handler([this](std::exception_ptr e) {
      std::lock_guard lk(mu_);
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        unhandled_.emplace_back(x.what());
      } catch (...) {
        unhandled_.emplace_back("?");
      }
    });
    rt_.emplace(host_, opts, timeout ? skein::Context::with_timeout(*timeout) : skein::Context());
    sampler_ = std::thread([this] {  // (no std::jthread: libc++ 16 lacks it)
      while (!stop_sampling_.load()) {
        sample();
        std::this_thread::sleep_for(300us);
      }
    });
  }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  ~Program() {
    if (rt_) finish();
    skein::set_unhandled_error_handler(nullptr);
  }

  sc::Runtime& rt() { return *rt_; }

  /// Runs `code` as the main chunk; `after_main` (if given) runs once it
  /// returned or failed, before waiting for the program's other tasks.
  Outcome run(const std::string& code, const std::function<void(sc::Runtime&)>& after_main = {}) {
    Outcome o;
    const auto t0 = std::chrono::steady_clock::now();
    auto main = rt_->run([this, &code] {
      skein_lua::LuaEnvironment env(*rt_, nullptr);
      env.run_string(code, "=hostile");
    });
    try {
      main.wait();
    } catch (const std::exception& e) {
      o.error = e.what();
    }
    if (after_main) after_main(*rt_);
    try {
      rt_->wait();
    } catch (const std::exception& e) {
      o.wait_error = e.what();
    }
    if (auto f = rt_->failure()) {
      try {
        std::rethrow_exception(f);
      } catch (const std::exception& e) {
        o.failure = e.what();
      }
    }
    o.took = std::chrono::steady_clock::now() - t0;
    sample();
    // The limits held: checked now and at every sample.
    const auto& l = opts_.limits;
    if (l.max_tasks) CHECK(peak_tasks_.load() <= l.max_tasks);
    if (l.max_threads) CHECK(peak_threads_.load() <= l.max_threads);
    if (l.max_memory) CHECK(peak_memory_.load() <= l.max_memory + kMemorySlack);
    CHECK(rt_->admitted_tasks() == 0);  // every task ended and gave its slot back
    CHECK(rt_->tasks() == 0);
    return o;
  }

  /// A value the script shared with runtime.core.share (none if it did not).
  sc::Value fetched(const std::string& key) {
    auto v = rt_->fetch(key);
    return v ? *v : sc::Value();
  }
  std::string text(const std::string& key) {
    auto v = fetched(key);
    if (auto* s = v.get_if<std::string>()) return *s;
    return "<not a string: " + v.repr() + ">";
  }
  std::int64_t integer(const std::string& key) {
    auto v = fetched(key);
    if (auto* i = v.get_if<std::int64_t>()) return *i;
    FAIL("runtime.core.fetch('" << key << "') is not an integer: " << v.repr());
    return -1;
  }
  /// Watches the object the script shared under `key`: it must be gone after ~Runtime.
  void watch(const std::string& key) {
    auto v = fetched(key);
    auto* h = v.get_if<sc::Handle>();
    REQUIRE_MESSAGE(h, "runtime.core.fetch('" << key << "') is not a skein object: " << v.repr());
    watched_.push_back(*h);
  }

  std::vector<std::string> unhandled() {
    std::lock_guard lk(mu_);
    return unhandled_;
  }
  std::size_t peak_memory() const { return peak_memory_.load(); }
  std::size_t peak_tasks() const { return peak_tasks_.load(); }
  std::size_t peak_threads() const { return peak_threads_.load(); }

  /// Ends the program and checks that nothing of it stays alive:
  ///  - the recycled task states are taken out of the runtime and destroyed
  ///    (every state of the program is then gone, the main one too), and
  ///    what stays charged is what the objects keep; ~Runtime asserts the
  ///    budget is back to exactly 0 (only with a memory limit: without one,
  ///    nothing counts);
  ///  - after ~Runtime, no environment the host made is alive, and every
  ///    object the test watched (shared by the script) is destroyed.
  void finish() {
    stop_sampling_ = true;
    sampler_.join();
    if (opts_.limits.max_memory) {
      // acquire_environment takes the idle (recycled) states first; holding
      // more than the runtime keeps (max(4, 2 * cpus())) empties its pool.
      std::vector<std::unique_ptr<sc::Environment>> held;
      const std::size_t n = 2 * std::max<std::size_t>(4, 2 * skein::cpus()) + 2;
      try {
        for (std::size_t i = 0; i < n; ++i) held.push_back(rt_->acquire_environment(nullptr));
      } catch (const std::exception& e) {
        FAIL("a fresh state after the script: " << e.what());
      }
      CHECK(rt_->memory().used() > 0);
      held.clear();
      // What is charged now is what the program's objects keep (the store
      // holds the test's results); ~Runtime releases it and asserts
      // (SKEIN_ASSERT, on in this test) that the budget is back to 0.
      CHECK(rt_->memory().used() < std::size_t{1} << 20);
    }
    std::vector<std::weak_ptr<sc::Object>> weak(watched_.begin(), watched_.end());
    watched_.clear();
    rt_.reset();
    CHECK(live_environments.load() == 0);
    for (auto& w : weak) CHECK_MESSAGE(w.expired(), "an object the script made outlived its Runtime");
  }

  /// Slack over max_memory: allocations the glue makes are never refused
  /// (a new state, a value pushed by a C function), and each state keeps a
  /// reserve of up to two chunks charged.
  static constexpr std::size_t kMemorySlack = std::size_t{2} << 20;

private:
  void sample() {
    auto raise = [](std::atomic<std::size_t>& peak, std::size_t v) {
      std::size_t cur = peak.load();
      while (v > cur && !peak.compare_exchange_weak(cur, v)) {
      }
    };
    raise(peak_memory_, rt_->memory().used());
    raise(peak_tasks_, rt_->admitted_tasks());
    if (opts_.limits.max_threads) raise(peak_threads_, rt_->executor().thread_count());
  }

  sc::Runtime::Options opts_;
  CountingHost host_;
  std::optional<sc::Runtime> rt_;
  std::atomic<std::size_t> peak_memory_{0}, peak_tasks_{0}, peak_threads_{0};
  std::atomic<bool> stop_sampling_{false};
  std::thread sampler_;
  std::mutex mu_;
  std::vector<std::string> unhandled_;
  std::vector<sc::Handle> watched_;
};

/// A normal script in a fresh runtime: the host stays usable after a hostile one.
void check_host_usable(sc::Runtime::Options opts = sandboxed()) {
  Program p(opts);
  auto o = p.run(R"lua(
    local q = threads.Queue()
    local ps = {}
    for i = 1, 8 do ps[i] = threads.run(function(q, i) q:put(i * i) return i end, q, i) end
    local sum = 0
    for i = 1, 8 do sum = sum + ps[i]:get() + q:get() end
    runtime.core.share("sum", sum)
    runtime.core.share("upper", ("ok"):upper())
  )lua");
  CHECK(o.error == "");
  CHECK(p.integer("sum") == 36 + 204);
  CHECK(p.text("upper") == "OK");
  CHECK(p.unhandled().empty());
}

struct Mode {
  std::string name;
  sc::Runtime::Options opts;
};
std::vector<Mode> both_modes() { return {{"sandbox", sandboxed()}, {"full libraries, no limits", full()}}; }

}  // namespace

// --- max_tasks ---------------------------------------------------------------------

TEST_CASE("fork bomb: tasks that start tasks that block stop at max_tasks") {
  Program p(sandboxed({.max_tasks = 16}));
  auto o = p.run(R"lua(
    local started, stop = threads.Atomic(0), threads.Atomic(0)
    local refused, settled, gate = threads.Queue(), threads.Queue(), threads.Queue()
    local bomb
    bomb = function()
      started:add(1)
      for _ = 1, 4 do
        if stop:get() == 1 then break end
        local ok, e = pcall(threads.run, bomb)
        if not ok then refused:put(e) break end
      end
      settled:put(true)
      gate:get()   -- blocks until the gate closes
    end
    local first
    for _ = 1, 1000 do
      local ok, e = pcall(threads.run, bomb)
      if not ok then first = e break end
    end
    local inner = refused:get()   -- a task was refused too
    stop:set(1)
    local n = 0
    while n < started:get() do settled:get() n = n + 1 end
    runtime.core.share("first", first)
    runtime.core.share("inner", inner)
    runtime.core.share("started", started)   -- read once every task ended
    gate:close()
  )lua");
  CHECK(o.error == "");
  const std::string msg = "threads.run: the script's limit of 16 live tasks (max_tasks) is reached";
  CHECK(p.text("first") == msg);
  CHECK(p.text("inner") == msg);
  // No task ended before the gate closed, and none started after: 16 live at once, no more.
  auto started = std::dynamic_pointer_cast<sc::AtomicObject>(*p.fetched("started").get_if<sc::Handle>());
  REQUIRE(started);
  CHECK(started->value.load() == 16);
  started.reset();
  CHECK(p.peak_tasks() <= 16);
  CHECK(p.unhandled().empty());
  p.finish();
  check_host_usable();
}

TEST_CASE("fork bomb: the main chunk dies of max_tasks, the host cancels the blocked tasks") {
  Program p(sandboxed({.max_tasks = 8}));
  auto o = p.run(
      R"lua(
    local gate = threads.Queue()
    local function bomb(gate)
      pcall(threads.run, bomb, gate)
      gate:get()
    end
    while true do threads.run(bomb, gate) end
  )lua",
      [](sc::Runtime& rt) { rt.cancel(); });
  CHECK(o.error == "hostile:7: threads.run: the script's limit of 8 live tasks (max_tasks) is reached");
  CHECK(p.peak_tasks() <= 8);
  CHECK(o.took < 10s);
  p.finish();
  check_host_usable();
}

TEST_CASE("max_tasks counts every way to start a task") {
  Program p(sandboxed({.max_tasks = 2}));
  auto o = p.run(R"lua(
    local gate = threads.Queue()
    local f = function(g) if g then g:get() end return 1 end
    local a, b = threads.run(f, gate), threads.run(f, gate)
    local errors = {}
    local function try(name, fn, ...)
      local ok, e = pcall(fn, ...)
      errors[#errors + 1] = name .. "=" .. (ok and "started" or e)
    end
    local g = threads.Group()
    try("run", threads.run, f)
    try("spawn", thread.core.spawn, f)
    try("async", thread.async.run, f)
    try("group", g.run, g, f)
    try("group_try", g.try_run, g, f)
    try("scheduler", thread.scheduler.run, f)
    try("pool", threads.Pool, f, threads.kwargs{workers = 1})
    try("thread_pool", thread.pool.new, f, threads.kwargs{workers = 1})
    gate:close()
    a:get() b:get()
    -- A Pool's workers count while the Pool lives.
    local pool = threads.Pool(f, threads.kwargs{workers = 2})
    try("run_beside_pool", threads.run, f)
    pool:close()
    pool = nil
    collectgarbage() collectgarbage()
    try("run_after_pool", function() return threads.run(f):get() end)
    runtime.core.share("errors", table.concat(errors, "\n"))
  )lua");
  CHECK(o.error == "");
  const std::string limit = ": the script's limit of 2 live tasks (max_tasks) is reached";
  CHECK(p.text("errors") == "run=threads.run" + limit + "\nspawn=thread.core.spawn" + limit +
                                "\nasync=thread.async.run" + limit + "\ngroup=TaskGroup.run" + limit +
                                "\ngroup_try=TaskGroup.try_run" + limit + "\nscheduler=thread.scheduler.run" + limit +
                                "\npool=threads.Pool" + limit + "\nthread_pool=thread.pool.new" + limit +
                                "\nrun_beside_pool=threads.run" + limit + "\nrun_after_pool=started");
  CHECK(p.peak_tasks() <= 2);
  p.finish();
}

// --- max_threads ---------------------------------------------------------------------

TEST_CASE("max_threads: tasks that all block stay within the thread bound") {
  constexpr int kTasks = 12;
  constexpr std::size_t kThreads = 3;
  Program p(sandboxed({.max_threads = kThreads}));
  std::atomic<bool> timed_out{false};
  auto o = p.run(
      R"lua(
    local gate, entered, refused = threads.Queue(), threads.Atomic(0), threads.Atomic(0)
    local msgs = threads.Queue()
    runtime.core.share("entered", entered)
    runtime.core.share("refused", refused)
    runtime.core.share("msgs", msgs)
    for _ = 1, 12 do
      threads.run(function(gate, entered, refused, msgs)
        entered:add(1)
        local ok, e = pcall(gate.get, gate)
        if not ok then refused:add(1) msgs:put(e) end
      end, gate, entered, refused, msgs)
    end
  )lua",
      [&](sc::Runtime& rt) {
        // The main chunk returned; its tasks block or were refused. Once all
        // have tried, cancel the program (as a host does at its deadline).
        auto entered = std::dynamic_pointer_cast<sc::AtomicObject>(*p.fetched("entered").get_if<sc::Handle>());
        auto refused = std::dynamic_pointer_cast<sc::AtomicObject>(*p.fetched("refused").get_if<sc::Handle>());
        REQUIRE(entered);
        REQUIRE(refused);
        const auto until = std::chrono::steady_clock::now() + 10s;
        // At most max_threads - 1 tasks can block (one thread runs), so at least kTasks - 2 are refused.
        while ((entered->value.load() < kTasks || refused->value.load() < kTasks - int{kThreads} + 1) &&
               std::chrono::steady_clock::now() < until)
          std::this_thread::sleep_for(1ms);
        timed_out = std::chrono::steady_clock::now() >= until;
        std::this_thread::sleep_for(20ms);  // the blocked ones stay blocked
        rt.cancel();
      });
  CHECK(o.error == "");
  CHECK_FALSE(timed_out.load());
  CHECK(p.peak_threads() <= kThreads);
  CHECK(p.peak_threads() >= 2);
  auto msgs = std::dynamic_pointer_cast<sc::QueueObject>(*p.fetched("msgs").get_if<sc::Handle>());
  REQUIRE(msgs);
  int would_block = 0, cancelled = 0, other = 0;
  while (auto m = msgs->queue.try_get()) {
    const std::string s = *m->get_if<std::string>();
    if (s == "Queue.get: would block a thread, but the script's tasks hold its limit of 3 threads (max_threads)")
      ++would_block;
    else if (contains(s, "cancelled"))
      ++cancelled;
    else {
      ++other;
      MESSAGE(s);
    }
  }
  CHECK(would_block >= kTasks - int{kThreads} + 1);
  CHECK(would_block + cancelled == kTasks);
  CHECK(other == 0);
  msgs.reset();
  p.finish();
  check_host_usable();
}

// --- max_memory ----------------------------------------------------------------------

TEST_CASE("memory bomb in the main chunk: caught with pcall, freed, then uncaught") {
  constexpr std::size_t kLimit = std::size_t{16} << 20;
  Program p(sandboxed({.max_memory = kLimit}));
  auto o = p.run(R"lua(
    local ok, e = pcall(function() local s = "x" while true do s = s .. s end end)
    runtime.core.share("string_bomb", tostring(ok) .. " " .. tostring(e))
    collectgarbage() collectgarbage()
    local ok2, e2 = pcall(function()
      local t = {}
      for i = 1, math.huge do t[i] = ("y"):rep(100) .. i end
    end)
    runtime.core.share("table_bomb", tostring(ok2) .. " " .. tostring(e2))
    collectgarbage() collectgarbage()
    -- freed: the script goes on and can allocate again (a megabyte and a task)
    local t = {}
    for i = 1, 1000 do t[i] = ("z"):rep(1000) end
    runtime.core.share("after", #table.concat(t) .. " " .. threads.run(function() return "task ok" end):get())
    t = nil
    -- now uncaught
    local keep = {}
    while true do keep[#keep + 1] = {1, 2, 3, 4, 5, 6, 7, 8} end
  )lua");
  CHECK(p.text("string_bomb") == "false not enough memory");
  CHECK(p.text("table_bomb") == "false not enough memory");
  CHECK(p.text("after") == "1000000 task ok");
  CHECK(o.error == "not enough memory: the script's memory limit of 16 MiB (max_memory) is reached");
  CHECK(p.rt().memory().used() <= kLimit + Program::kMemorySlack);
  CHECK(p.unhandled().empty());
  p.finish();
  check_host_usable();
}

TEST_CASE("memory bomb in tasks: the task dies with the message, or catches it and goes on") {
  constexpr std::size_t kLimit = std::size_t{24} << 20;
  Program p(sandboxed({.max_memory = kLimit}));
  auto o = p.run(R"lua(
    local bomb = function() local t = {} for i = 1, math.huge do t[i] = {i, i} end end
    local ps = {}
    for i = 1, 4 do ps[i] = threads.run(bomb) end
    local msgs = {}
    for i = 1, 4 do local ok, e = pcall(ps[i].get, ps[i]) msgs[i] = tostring(ok) .. " " .. e end
    runtime.core.share("died", table.concat(msgs, "|"))
    local caught = threads.run(function()
      local ok, e = pcall(function() local s = "x" while true do s = s .. s end end)
      collectgarbage() collectgarbage()
      local t = {} for i = 1, 10000 do t[i] = i end   -- goes on after freeing
      return tostring(ok) .. " " .. e .. " " .. #t
    end):get()
    runtime.core.share("caught", caught)
    -- a spawned task that dies of it makes the program fail
    thread.core.spawn(bomb)
  )lua");
  const std::string died = "false not enough memory: the script's memory limit of 24 MiB (max_memory) is reached";
  CHECK(p.text("died") == died + "|" + died + "|" + died + "|" + died);
  CHECK(p.text("caught") == "false not enough memory 10000");
  CHECK(o.error == "");
  CHECK(o.failure == "not enough memory: the script's memory limit of 24 MiB (max_memory) is reached");
  p.finish();
  check_host_usable();
}

TEST_CASE("memory: no new task state while the budget is exhausted") {
  constexpr std::size_t kLimit = std::size_t{8} << 20;
  Program p(sandboxed({.max_memory = kLimit}));
  auto o = p.run(R"lua(
    -- Keep everything the budget allows, in the main state, to the last bytes.
    local keep = {}
    pcall(function() while true do keep[#keep + 1] = ("k"):rep(4000) .. #keep end end)
    for i = 1, 200 do pcall(function() local t = {} keep[#keep + 1] = t while true do t[#t + 1] = i end end) end
    -- Tasks that block, so that each needs a state of its own. The call that
    -- starts one refuses once the budget is exhausted. (The first state may
    -- still be made, past the limit, by the glue, which is never refused: the
    -- budget may be just under its limit, not exhausted, before it.)
    local gate, ps, msgs = threads.Queue(), {}, {}
    for i = 1, 8 do
      local ok, p = pcall(threads.run, function(g) g:get() return 1 end, gate)
      ps[i] = ok and p or nil
      msgs[i] = ok and "started" or p
    end
    gate:close()
    for i = 1, 8 do
      if ps[i] then
        local ok2, e = pcall(function() return ps[i]:get() end)
        msgs[i] = msgs[i] .. "/" .. tostring(ok2) .. " " .. tostring(e)
      end
    end
    keep = nil
    collectgarbage() collectgarbage()
    runtime.core.share("msgs", table.concat(msgs, "|"))
    runtime.core.share("after", threads.run(function() return "ran" end):get())
  )lua");
  CHECK(o.error == "");
  const std::string refused =
      "threads.run: not enough memory: the script's memory limit of 8 MiB (max_memory) is reached";
  std::string msgs = p.text("msgs") + "|";
  int n_refused = 0;
  for (std::size_t at = 0, bar; (bar = msgs.find('|', at)) != std::string::npos; at = bar + 1) {
    const std::string m = msgs.substr(at, bar - at);
    CAPTURE(m);
    if (m == refused)
      ++n_refused;
    else
      CHECK((m == "started/true 1" ||
             m == "started/false not enough memory: the script's memory limit of 8 MiB (max_memory) is reached"));
  }
  CHECK(n_refused >= 7);
  CHECK(p.text("after") == "ran");
  p.finish();
}

// --- deep recursion ---------------------------------------------------------------------

TEST_CASE("deep recursion is a clean error, in the main chunk and in tasks") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    Program p(mode.opts);
    auto o = p.run(R"lua(
      local function r(n) return 1 + r(n + 1) end
      local ok, e = pcall(r, 1)
      runtime.core.share("lua", tostring(ok) .. " " .. e)
      local function rp() return select(2, pcall(rp)) end   -- through pcall: the C stack
      local ok2, e2 = pcall(rp)
      runtime.core.share("cstack", tostring(ok2) .. " " .. tostring(e2))
      local function rc() return coroutine.wrap(rc)() end   -- through coroutines
      local ok3, e3 = pcall(rc)
      runtime.core.share("coroutines", tostring(ok3) .. " " .. tostring(e3))
      local mt = {} mt.__index = function(t, k) return setmetatable({}, mt)[k] end
      local ok4, e4 = pcall(function() return setmetatable({}, mt).x end)
      runtime.core.share("metamethods", tostring(ok4) .. " " .. tostring(e4))
      local t = threads.run(function()
        local function r(n) return 1 + r(n + 1) end
        local ok, e = pcall(r, 1)
        return tostring(ok) .. " " .. e
      end):get()
      runtime.core.share("task_caught", t)
      local ok5, e5 = pcall(function()
        return threads.run(function() local function r(n) return 1 + r(n + 1) end return r(1) end):get()
      end)
      runtime.core.share("task_died", tostring(ok5) .. " " .. e5)
      r(1)
    )lua");
    CHECK(contains(p.text("lua"), "false hostile:2: stack overflow"));
    CHECK(contains(p.text("cstack"), "stack overflow"));
    CHECK(contains(p.text("coroutines"), "stack overflow"));
    CHECK(contains(p.text("metamethods"), "stack overflow"));
    CHECK(contains(p.text("task_caught"), "false hostile:15: stack overflow"));
    CHECK(contains(p.text("task_died"), "false hostile:21: stack overflow"));
    CHECK(contains(o.error, "hostile:2: stack overflow"));
    p.finish();
  }
  check_host_usable();
}

TEST_CASE("values too deep or cyclic to cross between tasks are refused") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    Program p(mode.opts);
    auto o = p.run(R"lua(
      local deep = {} local t = deep for i = 1, 1000 do t[1] = {} t = t[1] end
      local cyc = {} cyc.self = cyc
      local q = threads.Queue()
      local r = {}
      r[1] = select(2, pcall(threads.run, function(x) return 1 end, deep))
      r[2] = select(2, pcall(q.put, q, cyc))
      r[3] = select(2, pcall(function() return threads.run(function() local d = {} local t = d for i = 1, 1000 do t[1] = {} t = t[1] end return d end):get() end))
      local f f = function() return f end   -- a function that returns itself: recursion, not a cycle to copy
      r[4] = tostring(threads.run(function(g) return type(g()) end, f):get())
      q:put(q)   -- a queue that holds itself: freed with the runtime
      runtime.core.share("q", q)
      runtime.core.share("r", table.concat(r, "|"))
    )lua");
    CHECK(o.error == "");
    CHECK(p.text("r") ==
          "threads.run: argument 2: cannot copy a table nested more than 100 levels deep"
          "|Queue.put: argument 1: cannot copy a table that contains itself"
          "|hostile:8: function <hostile:8> returned a value that cannot be copied: cannot copy a table nested more "
          "than 100 levels deep"
          "|function");
    p.watch("q");
    p.finish();
  }
}

// --- a task that never yields ---------------------------------------------------------------

TEST_CASE("busy loops that never yield are ended by the context's timeout") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    Program p(mode.opts, 300ms);
    auto o = p.run(R"lua(
      local spin = function() while true do end end
      local hide = function() while true do pcall(function() while true do end end) end end
      local ps = {threads.run(spin), threads.run(hide)}
      thread.core.spawn(spin)
      runtime.core.share("ps", #ps)
      while true do end
    )lua");
    CHECK(o.error == "timed out");
    CHECK(o.failure == "");
    CHECK(o.took < 5s);
    CHECK(p.rt().context().timed_out());
    p.finish();
  }
  check_host_usable();
}

// --- max_queue_items ---------------------------------------------------------------------------

TEST_CASE("queue flood: unbounded queues, channels and pools hold at most max_queue_items") {
  Program p(sandboxed({.max_queue_items = 100}));
  auto o = p.run(R"lua(
    local r = {}
    local q = threads.Queue()
    local n = 0
    local ok, e = pcall(function() while true do q:put(n) n = n + 1 end end)
    r[#r + 1] = e .. " after " .. n .. ", size " .. q:size()
    r[#r + 1] = select(2, pcall(thread.channel.send, q, "x"))
    r[#r + 1] = select(2, pcall(threads.Queue, 101))
    r[#r + 1] = select(2, pcall(thread.channel.new, 101))
    r[#r + 1] = select(2, pcall(threads.Pool, function() end, threads.kwargs{workers = 1, queue_depth = 101}))
    -- a flood from a task
    r[#r + 1] = threads.run(function()
      local q = threads.Queue()
      local ok, e = pcall(function() for i = 1, 1000 do q:put({i, tostring(i)}) end end)
      return e .. ", size " .. q:size()
    end):get()
    -- a full channel blocks its sender (a bounded queue), it never grows
    local ch = thread.channel.new(100)
    local sent = threads.Atomic(0)
    local producer = threads.run(function(ch, sent)
      local ok, e = pcall(function() for i = 1, 1000 do thread.channel.send(ch, i) sent:add(1) end end)
      return e
    end, ch, sent)
    while sent:get() < 100 do thread.core.sleep(1) end
    thread.core.sleep(20)
    r[#r + 1] = "sent " .. sent:get() .. ", len " .. thread.channel.len(ch) .. ", cap " .. thread.channel.cap(ch)
    thread.channel.close(ch)
    r[#r + 1] = producer:get()
    runtime.core.share("q", q)
    runtime.core.share("r", table.concat(r, "\n"))
  )lua");
  CHECK(o.error == "");
  CHECK(p.text("r") ==
        "hostile:5: Queue.put: the queue holds the script's limit of 100 items (max_queue_items) after 100, size 100\n"
        "thread.channel.send: the queue holds the script's limit of 100 items (max_queue_items)\n"
        "threads.Queue: maxsize 101 is above the script's limit of 100 queued items (max_queue_items)\n"
        "thread.channel.new: capacity 101 is above the script's limit of 100 queued items (max_queue_items)\n"
        "threads.Pool: queue_depth 101 is above the script's limit of 100 queued items (max_queue_items)\n"
        "hostile:14: Queue.put: the queue holds the script's limit of 100 items (max_queue_items), size 100\n"
        "sent 100, len 100, cap 100\n"
        "hostile:21: thread.channel.send: put on a closed Queue");
  p.watch("q");
  p.finish();
  check_host_usable();
}

// --- the safe library set ---------------------------------------------------------------------

namespace {
/// A Lua module file beside the test, for `require` to (not) find.
struct ModuleFile {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "skein_sandbox_test";
  ModuleFile() {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "evilmod.lua") << "runtime.core.share('evil_loaded', true) return {evil = true}\n";
  }
  ~ModuleFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

/// Each attempt on a line, "name: ok" or "name: <error>" (without its
/// location): the body of a function of `dir` (where ModuleFile is).
constexpr const char* kEscapes = R"lua(
  local r = {}
  local function try(name, f)
    local ok, e = pcall(f)
    r[#r + 1] = name .. ": " .. (ok and "ok" or (tostring(e):gsub("^hostile:%d+: ", "")))
  end
  try("os.execute", function() return os.execute("true") end)
  try("os.exit", function() return os.exit(3) end)
  try("os.getenv", function() return os.getenv("HOME") end)
  try("os.remove", function() return os.remove(dir .. "/evilmod.lua") end)
  try("io.open", function() return io.open(dir .. "/evilmod.lua") end)
  try("io via require", function() return require("io") end)
  try("debug via require", function() return require("debug") end)
  try("debug.getregistry", function() return debug.getregistry() end)
  try("require C module", function() return require("socket") end)
  try("require file module", function()
    package.path = dir .. "/?.lua"
    package.cpath = dir .. "/?.so"
    return require("evilmod")
  end)
  try("searchers restored", function()
    package.searchers[2] = function(name) return load("return 'from a searcher'") end
    return require("evilmod2") == "from a searcher" or error("no")
  end)
  try("package.loadlib", function() return package.loadlib(dir .. "/x.so", "luaopen_x") end)
  try("package.searchpath", function() return package.searchpath("evilmod", dir .. "/?.lua") end)
  try("dofile", function() return dofile(dir .. "/evilmod.lua") end)
  try("loadfile", function() return loadfile(dir .. "/evilmod.lua") end)
  try("string.dump", function() return string.dump(function() end) end)
  try("(''):dump", function() return (""):dump() end)
  try("load binary", function() return assert(load("\27Lua\84\0")) end)
  try("load binary, mode b", function() return assert(load("\27Lua\84\0", "x", "b")) end)
  try("load binary from a reader", function()
    local parts = {"\27Lua", "\84\0"}
    return assert(load(function() return table.remove(parts, 1) end))
  end)
  try("load text", function()
    return assert(load("return 1 + 1"))() == 2 and assert(load("return x", "n", "t", {x = 1}))() == 1 or error("wrong")
  end)
  try("collectgarbage", function() return collectgarbage("count") > 0 or error("no count") end)
  local os_names = {} for k in pairs(os) do os_names[#os_names + 1] = k end table.sort(os_names)
  r[#r + 1] = "os: " .. table.concat(os_names, ",")
  local pk = {} for k in pairs(package) do pk[#pk + 1] = k end table.sort(pk)
  r[#r + 1] = "package: " .. table.concat(pk, ",")
  return table.concat(r, "\n")
)lua";

/// kEscapes in the main chunk and in two tasks (the second may get the first's recycled state).
std::string escapes_program(const std::filesystem::path& dir) {
  return "local f = function(dir)\n" + std::string(kEscapes) + "\nend\n" + "local dir = '" + dir.string() +
         "'\n"
         "runtime.core.share('main', f(dir))\n"
         "runtime.core.share('task1', threads.run(f, dir):get())\n"
         "runtime.core.share('task2', threads.run(f, dir):get())\n";
}
}  // namespace

TEST_CASE("the safe set refuses files, processes, C modules, binary chunks and debug") {
  ModuleFile mod;
  const std::string expected =
      "os.execute: attempt to call a nil value (field 'execute')\n"
      "os.exit: attempt to call a nil value (field 'exit')\n"
      "os.getenv: attempt to call a nil value (field 'getenv')\n"
      "os.remove: attempt to call a nil value (field 'remove')\n"
      "io.open: attempt to index a nil value (global 'io')\n"
      "io via require: module 'io' not found:\n\tno field package.preload['io']\n"
      "debug via require: module 'debug' not found:\n\tno field package.preload['debug']\n"
      "debug.getregistry: attempt to index a nil value (global 'debug')\n"
      "require C module: module 'socket' not found:\n\tno field package.preload['socket']\n"
      "require file module: module 'evilmod' not found:\n\tno field package.preload['evilmod']\n"
      "searchers restored: ok\n"
      "package.loadlib: attempt to call a nil value (field 'loadlib')\n"
      "package.searchpath: attempt to call a nil value (field 'searchpath')\n"
      "dofile: attempt to call a nil value (global 'dofile')\n"
      "loadfile: attempt to call a nil value (global 'loadfile')\n"
      "string.dump: attempt to call a nil value (field 'dump')\n"
      "(''):dump: attempt to call a nil value (method 'dump')\n"
      "load binary: attempt to load a binary chunk (mode is 't')\n"
      "load binary, mode b: attempt to load a binary chunk (mode is 't')\n"
      "load binary from a reader: attempt to load a binary chunk (mode is 't')\n"
      "load text: ok\n"
      "collectgarbage: ok\n"
      "os: clock,date,difftime,time\n"
      "package: config,cpath,loaded,path,preload,searchers";
  Program p(sandboxed());
  auto o = p.run(escapes_program(mod.dir));
  CHECK(o.error == "");
  CHECK(p.text("main") == expected);
  CHECK(p.text("task1") == expected);
  CHECK(p.text("task2") == expected);
  CHECK(p.fetched("evil_loaded").is_none());  // the module file never ran
  CHECK(std::filesystem::exists(mod.dir / "evilmod.lua"));
  p.finish();
  check_host_usable();
}

TEST_CASE("without the safe set, the same attempts reach files and debug (the test above can fail)") {
  ModuleFile mod;
  Program p(full());
  auto o = p.run("local dir = '" + mod.dir.string() + R"lua('
    local r = {}
    r[1] = tostring(io.open(dir .. "/evilmod.lua") ~= nil)
    package.path = dir .. "/?.lua"
    r[2] = tostring(require("evilmod").evil)
    r[3] = type(string.dump(function() end))
    r[4] = type(debug.getregistry())
    runtime.core.share("r", table.concat(r, ","))
  )lua");
  CHECK(o.error == "");
  CHECK(p.text("r") == "true,true,string,table");
  CHECK(p.fetched("evil_loaded").get_if<bool>() != nullptr);
  p.finish();
}

// --- isolation audit: one route per test, with and without the sandbox -------------------------------

TEST_CASE("isolation: a metatable set on a passed table stays in the task") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    Program p(mode.opts);
    auto o = p.run(R"lua(
      local t = {1, 2, 3, inner = {x = 1}}
      local seen = threads.run(function(x)
        setmetatable(x, {__index = function() return "evil" end, __newindex = function() error("trapped") end})
        setmetatable(x.inner, {__index = function() return "evil" end})
        x[1] = 99
        rawset(x.inner, "x", 42)
        return tostring(getmetatable(x) ~= nil) .. " " .. tostring(x.missing) .. " " .. x.inner.x
      end, t):get()
      runtime.core.share("r", seen .. " | " .. tostring(getmetatable(t)) .. " " .. tostring(getmetatable(t.inner)) ..
        " " .. tostring(t.missing) .. " " .. t[1] .. " " .. t.inner.x .. " " .. tostring(t.inner.y))
    )lua");
    CHECK(o.error == "");
    CHECK(p.text("r") == "true evil 42 | nil nil nil 1 1 nil");
    p.finish();
  }
}

namespace {
/// Runs `polluter` in a task, then `checker` in 16 more tasks one after another
/// (most get the polluter's recycled state: its tostring(coroutine.running()) says which),
/// and `checker` in the main chunk; shares "main", "leaks" and "reused".
std::string pollution_program(const std::string& polluter, const std::string& checker) {
  return "local polluter = function() " + polluter +
         " return tostring(coroutine.running()) end\n"
         "local checker = function() local bad = {} local function check(ok, what) if not ok then bad[#bad + 1] = "
         "what end end " +
         checker +
         " return {tostring(coroutine.running()), table.concat(bad, ',')} end\n"
         "local first = threads.run(polluter):get()\n"
         "local reused, leaks = 0, {}\n"
         "for i = 1, 16 do\n"
         "  local r = threads.run(checker):get()\n"
         "  if r[1] == first then reused = reused + 1 end\n"
         "  if r[2] ~= '' then leaks[#leaks + 1] = r[2] end\n"
         "end\n"
         "runtime.core.share('reused', reused)\n"
         "runtime.core.share('leaks', table.concat(leaks, ' | '))\n"
         "runtime.core.share('main', checker()[2])\n";
}
void check_no_pollution(sc::Runtime::Options opts, const std::string& polluter, const std::string& checker) {
  Program p(opts);
  auto o = p.run(pollution_program(polluter, checker));
  CHECK(o.error == "");
  CHECK(p.integer("reused") > 0);  // the route through a recycled state was taken
  CHECK(p.text("leaks") == "");
  CHECK(p.text("main") == "");
  CHECK(p.unhandled().empty());
  p.finish();
}
}  // namespace

TEST_CASE("isolation: the string metatable") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    // What the binding does: a task state's string metatable is its own and
    // changeable (getmetatable("") is not protected); its __index is a view of
    // the string library whose own metatable is protected; the reset puts
    // both back for the next task.
    Program p(mode.opts);
    auto o = p.run(R"lua(
      local r = threads.run(function()
        local mt = getmetatable("")
        local protected = getmetatable(mt.__index)
        local ok, e = pcall(setmetatable, mt.__index, {})
        mt.__index = {upper = function() return "evil" end}
        mt.__add = function() return "added" end
        return type(mt) .. " " .. tostring(protected) .. " " .. tostring(ok) .. " " .. e .. " " .. ("x"):upper() ..
          " " .. ("a" + "b")
      end):get()
      runtime.core.share("task", r)
      runtime.core.share("main", type(getmetatable(string)) .. " " .. ("x"):upper() .. " " .. tostring(pcall(function() return "a" + "b" end)))
    )lua");
    CHECK(o.error == "");
    CHECK(p.text("task") == "table false false cannot change a protected metatable evil added");
    CHECK(p.text("main") == "nil X false");
    p.finish();
    check_no_pollution(mode.opts,
                       R"lua(
        getmetatable("").__index = {upper = function() return "evil" end}
        getmetatable("").__add = function() return "added" end
        getmetatable("").__len = function() return -1 end
        getmetatable("").__metatable = "locked")lua",
                       R"lua(
        check(("x"):upper() == "X", "__index")
        check(not pcall(function() return "a" + "b" end), "__add")
        check(getmetatable("") ~= "locked", "__metatable")
        check(#"abc" == 3, "__len"))lua");
  }
}

TEST_CASE("isolation: rawset on a library table") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    check_no_pollution(mode.opts,
                       R"lua(
        rawset(string, "upper", function() return "evil" end)
        rawset(string, "extra", true)
        rawset(table, "insert", print)
        rawset(math, "pi", 3)
        string.lower = nil
        rawset(threads, "run", function() return "evil" end))lua",
                       R"lua(
        check(string.upper("x") == "X" and ("x"):upper() == "X", "string.upper")
        check(rawget(string, "extra") == nil and string.extra == nil, "string.extra")
        check(table.insert ~= print, "table.insert")
        check(math.pi > 3.14, "math.pi")
        check(string.lower("X") == "x", "string.lower")
        check(threads.run ~= nil and type(threads.run) == "function", "threads.run"))lua");
  }
}

TEST_CASE("isolation: package.loaded") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    check_no_pollution(mode.opts,
                       R"lua(
        local evil = {run = function() return "evil" end}
        package.loaded.threads = evil
        package.loaded.string = evil
        package.loaded.evil = evil
        package.preload.evil2 = function() return "evil" end
        threads = nil
        assert(require("threads") == evil))lua",
                       R"lua(
        check(require("threads").run ~= nil and require("threads") == threads, "threads")
        check(package.loaded.string == string and string.upper ~= nil, "string")
        check(package.loaded.evil == nil, "new entry")
        check(package.preload.evil2 == nil and not pcall(require, "evil2"), "preload")
        local ok, p = pcall(function() return threads.run(function() return 7 end):get() end)
        check(ok and p == 7, "threads.run works"))lua");
  }
}

TEST_CASE("isolation: globals, _G and _ENV") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    check_no_pollution(mode.opts,
                       R"lua(
        evil_global = 1
        _G.evil2 = 2
        _ENV.evil3 = 3
        rawset(_G, "evil4", 4)
        _G._G = {evil = true}
        setmetatable(_G, {__index = function(_, k) return "from-meta:" .. k end, __newindex = function() end})
        local env = _ENV
        local function swap() _ENV = setmetatable({}, {__index = env}) end
        swap()   -- the task's own _ENV upvalue (the main chunk's, in the caller)
        assert(rawget(_ENV, "print") == nil and print ~= nil)
        env.print = nil)lua",
                       R"lua(
        check(rawget(_G, "evil_global") == nil and evil_global == nil, "global")
        check(rawget(_G, "evil2") == nil and rawget(_G, "evil3") == nil and rawget(_G, "evil4") == nil, "_G fields")
        check(_G._G == _G and _G.evil == nil, "_G._G")
        check(getmetatable(_G) == nil and undefined_name == nil, "metatable of _G")
        check(print ~= nil, "print"))lua");
    // A function with an _ENV of its own, passed to a task: the task gets a copy.
    Program p(mode.opts);
    auto o = p.run(R"lua(
      local myenv = {secret = "mine"}
      local f
      do
        local _ENV = myenv
        f = function() secret = "changed" new_field = 1 return secret end
      end
      local r = threads.run(f):get()
      runtime.core.share("r", r .. " " .. myenv.secret .. " " .. tostring(myenv.new_field))
      runtime.core.share("g", select(2, pcall(threads.run, function(x) return 1 end, _G)))
    )lua");
    CHECK(o.error == "");
    CHECK(p.text("r") == "changed mine nil");
    // _G never crosses: its C functions, io's userdata or _G._G stop the
    // copy (which one first depends on the table's order).
    CHECK(p.text("g").starts_with("threads.run: argument 2: cannot "));
    p.finish();
  }
}

TEST_CASE("isolation: globals of a clone-isolation task") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    auto opts = mode.opts;
    opts.run_isolation = sc::Isolation::clone;
    Program p(opts);
    auto o = p.run(R"lua(
      shared_table = {n = 1}
      counter = 1
      local r = threads.run(function()
        shared_table.n = 99 counter = 99 new_global = true
        return shared_table.n + counter
      end):get()
      local r2 = threads.run(function() return tostring(new_global) .. " " .. shared_table.n end):get()
      runtime.core.share("r", r .. " " .. shared_table.n .. " " .. counter .. " " .. tostring(new_global) .. " " .. r2)
    )lua");
    CHECK(o.error == "");
    CHECK(p.text("r") == "198 1 1 nil nil 1");
    p.finish();
  }
}

TEST_CASE("isolation: upvalues of a passed function are copies") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    Program p(mode.opts);
    auto o = p.run(R"lua(
      local captured = {n = 1, list = {1, 2}}
      local count = 0
      local f = function()
        captured.n = captured.n + 100
        captured.list[1] = "changed"
        captured.extra = true
        count = count + 1
        return captured.n .. " " .. count
      end
      local a = threads.run(f):get()
      local b = threads.run(f):get()   -- a fresh copy again, not the first task's
      runtime.core.share("r", a .. " | " .. b .. " | " .. captured.n .. " " .. captured.list[1] .. " " ..
        tostring(captured.extra) .. " " .. count)
    )lua");
    CHECK(o.error == "");
    CHECK(p.text("r") == "101 1 | 101 1 | 1 1 nil 0");
    p.finish();
  }
}

TEST_CASE("isolation: coroutines never cross") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    Program p(mode.opts);
    auto o = p.run(R"lua(
      local co = coroutine.create(function() coroutine.yield(1) end)
      local q, s = threads.Queue(), threads.Shared()
      local r = {}
      local function try(f) local ok, e = pcall(f) r[#r + 1] = ok and "crossed" or (tostring(e):gsub("^hostile:%d+: ", "")) end
      try(function() return threads.run(function(c) return 1 end, co) end)
      try(function() return threads.run(function() return coroutine.resume(co) end) end)
      try(function() return threads.run(function(t) return 1 end, {co}) end)
      try(function() return threads.run(function() return coroutine.create(print) end):get() end)
      try(function() return q:put(co) end)
      try(function() return s:set({inner = co}) end)
      try(function() return runtime.core.share("co", co) end)
      try(function() return thread.core.spawn(function(c) end, co) end)
      runtime.core.share("r", table.concat(r, "\n"))
    )lua");
    CHECK(o.error == "");
    CHECK(p.text("r") ==
          "threads.run: argument 2: cannot copy a coroutine\n"
          "threads.run: argument 1: function <hostile:7>: upvalue 'co': cannot copy a coroutine into a task\n"
          "threads.run: argument 2: cannot copy a coroutine\n"
          "function <hostile:9> returned a value that cannot be copied: cannot copy a coroutine\n"
          "Queue.put: argument 1: cannot copy a coroutine\n"
          "Shared.set: argument 1: cannot copy a coroutine\n"
          "runtime.core.share: argument 2: cannot copy a coroutine\n"
          "thread.core.spawn: argument 2: cannot copy a coroutine");
    p.finish();
  }
}

TEST_CASE("isolation: a task cannot see a concurrently running task's changes") {
  for (auto& mode : both_modes()) {
    CAPTURE(mode.name);
    Program p(mode.opts);
    auto o = p.run(R"lua(
      local ready, go = threads.Queue(), threads.Queue()
      local a = threads.run(function(ready, go)
        evil = true
        string.upper = function() return "evil" end
        getmetatable("").__index = {upper = function() return "evil" end}
        package.loaded.threads = nil
        ready:put(1)
        go:get()
        return ("x"):upper()
      end, ready, go)
      ready:get()
      local b = threads.run(function()
        return tostring(evil) .. " " .. ("x"):upper() .. " " .. string.upper("y") .. " " .. type(package.loaded.threads)
      end):get()
      go:put(1)
      runtime.core.share("r", a:get() .. " | " .. b .. " | " .. tostring(evil) .. " " .. ("x"):upper())
    )lua");
    CHECK(o.error == "");
    CHECK(p.text("r") == "evil | nil X Y table | nil X");
    p.finish();
  }
}

// --- what the program's objects keep -------------------------------------------------------

TEST_CASE("max_memory also bounds what the program's objects keep (queues, shared variables, the store)") {
  // A value put in a Queue, set in a Shared or shared in the store is a
  // C++ copy outside every Lua state: it is charged to the same budget
  // while kept, so the script cannot free its strings and hoard copies.
  constexpr std::size_t kLimit = std::size_t{16} << 20;
  Program p(sandboxed({.max_memory = kLimit}));
  auto o = p.run(R"lua(
    local r = {}
    local function hoard(put)
      local held = 0
      local ok, e = pcall(function()
        for i = 1, 48 do put(i, ("x"):rep(1 << 20) .. i) held = held + 1 collectgarbage() end
      end)
      return held, e
    end
    local q = threads.Queue()
    local held, e = hoard(function(i, v) q:put(v) end)
    r[#r + 1] = "queue " .. tostring(held < 16) .. " " .. e
    -- what a get takes out is no longer charged: the queue refills
    while q:try_get() do end
    collectgarbage()
    held, e = hoard(function(i, v) q:put(v) end)
    r[#r + 1] = "queue again " .. tostring(held > 4 and held < 16)
    while q:try_get() do end
    collectgarbage()
    local shared = {}
    held, e = hoard(function(i, v) shared[i] = threads.Shared(v) end)
    r[#r + 1] = "Shared " .. tostring(held < 16) .. " " .. e
    shared = nil
    collectgarbage() collectgarbage()
    held, e = hoard(function(i, v) runtime.core.share("k" .. i, v) end)
    r[#r + 1] = "share " .. tostring(held < 16) .. " " .. e
    -- replacing a key releases what the old value was charged
    for i = 1, 48 do runtime.core.share("k" .. i, i) end
    collectgarbage()
    held, e = hoard(function(i, v) runtime.core.share("only", v) end)
    r[#r + 1] = "share one key " .. held .. " " .. tostring(e)
    runtime.core.share("only", 0)
    -- select's put case is charged too
    local q2 = threads.Queue()
    held, e = hoard(function(i, v) threads.select({{"put", q2, v}}) end)
    r[#r + 1] = "select " .. tostring(held < 16) .. " " .. e
    while q2:try_get() do end
    collectgarbage()
    -- a function counts what it captured
    local q3 = threads.Queue()
    held, e = hoard(function(i, v) q3:put(function() return v end) end)
    r[#r + 1] = "function " .. tostring(held < 16) .. " " .. e
    runtime.core.share("r", table.concat(r, "\n"))
  )lua");
  CHECK(o.error == "");
  CHECK(p.text("r") ==
        "queue true hostile:11: Queue.put: not enough memory: the script's memory limit of 16 MiB (max_memory) is "
        "reached\n"
        "queue again true\n"
        "Shared true hostile:21: threads.Shared: not enough memory: the script's memory limit of 16 MiB (max_memory) "
        "is reached\n"
        "share true hostile:25: runtime.core.share: not enough memory: the script's memory limit of 16 MiB "
        "(max_memory) is reached\n"
        "share one key 48 nil\n"
        "select true hostile:35: threads.select: case 1: not enough memory: the script's memory limit of 16 MiB "
        "(max_memory) is reached\n"
        "function true hostile:41: Queue.put: not enough memory: the script's memory limit of 16 MiB (max_memory) "
        "is reached");
  p.finish();
}

TEST_CASE("the store holds at most max_queue_items keys; a Pool's default depth stays within it") {
  Program p(sandboxed({.max_queue_items = 10}));
  auto o = p.run(R"lua(
    local r = {}
    local ok, e = pcall(function() for i = 1, 20 do runtime.core.share("k" .. i, i) end end)
    r[#r + 1] = e
    runtime.core.share("k1", "replaced")  -- an existing key may be replaced
    r[#r + 1] = runtime.core.fetch("k1")
    local pool = threads.Pool(function(x) end, 6)  -- default depth 12, above the limit: 10
    for i = 1, 30 do pool:submit(i) end
    pool:close()
    r[#r + 1] = "pool ok"
    runtime.core.share("k2", table.concat(r, "\n"))
  )lua");
  CHECK(o.error == "");
  CHECK(p.text("k2") ==
        "hostile:3: runtime.core.share: the store holds the script's limit of 10 keys (max_queue_items)\n"
        "replaced\n"
        "pool ok");
  p.finish();
}

TEST_CASE("after the hostile scripts, the host still runs normal scripts") {
  check_host_usable(sandboxed());
  check_host_usable(full());
  CHECK(live_environments.load() == 0);
}
