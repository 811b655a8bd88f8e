// The script binding's overhead: the same round trips from Lua (through
// <skein/script.hpp> and the Lua host) and from C++ (skein::run), measured in
// the same run; prints medians and the Lua/C++ ratios.
//
//   binding_bench [--quick] [--rounds N] [--sandbox]
//
// --sandbox: the runtime has skein-lua --sandbox's limits and safe libraries
// (what the memory budget and the task admission cost).
//
//  run-get    N x threads.run(f, i):get()        vs  skein::run(f, i).get()
//  table-1k   N x threads.run(f, t):get(), t a 1,000-integer table
//             vs  skein::run(f, std::vector<std::int64_t>(1000)).get()
// Each Lua task gets a lua_State of its own, reset after the previous task
// (docs/script.md, "Task states are reused"); the table row adds copying the
// table in and out of Value.
//  alloc      1,000 small tables and strings made and dropped in the main
//             state (no C++ counterpart: the memory budget's allocator cost)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "lua_host.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class F>
double time_us(F&& f) {
  auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  namespace sc = skein::script;
  int n = 2000, rounds = 7;
  bool sandbox = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      n = 50;
      rounds = 1;
    } else if (!std::strcmp(argv[i], "--sandbox")) {
      sandbox = true;
    } else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: binding_bench [--quick] [--rounds N] [--sandbox]\n");
      return 2;
    }
  }

  skein_lua::LuaHost host;
  sc::Runtime::Options opts;
  if (sandbox) {  // skein-lua --sandbox's defaults
    opts.safe_libraries = true;
    opts.limits = sc::Limits{.max_tasks = 1000, .max_threads = 64, .max_memory = 256 << 20, .max_queue_items = 100000};
  }
  sc::Runtime rt(host, opts);
  skein_lua::LuaEnvironment lua(rt, nullptr);
  const std::string N = std::to_string(n);
  lua.run_string(
      "f = function(x) return x end\n"
      "g = function(t) return #t end\n"
      "t = {} for i = 1, 1000 do t[i] = i end\n"
      "function run_get() local s = 0 for i = 1, " +
          N +
          " do s = s + threads.run(f, i):get() end return s end\n"
          "function table_1k() local s = 0 for i = 1, " +
          N +
          " do s = s + threads.run(g, t):get() end return s end\n"
          "assert(run_get() == " +
          std::to_string(std::int64_t(n) * (n + 1) / 2) +
          ")\n"
          "function alloc() local keep = 0 for i = 1, " +
          N +
          " do for j = 1, 1000 do local t = {j, tostring(j)} keep = keep + #t end end return keep end\n"
          "assert(table_1k() == " +
          std::to_string(std::int64_t(n) * 1000) + ")\n",
      "=bench");

  std::vector<double> lua_run, cpp_run, lua_tab, cpp_tab, lua_alloc;
  const std::vector<std::int64_t> vec(1000, 7);
  for (int r = 0; r < rounds; ++r) {
    lua_run.push_back(time_us([&] { lua.run_string("run_get()", "=bench"); }) / n);
    cpp_run.push_back(time_us([&] {
                        std::int64_t s = 0;
                        for (int i = 1; i <= n; ++i) s += skein::run([](std::int64_t x) { return x; }, i).get();
                        if (s != std::int64_t(n) * (n + 1) / 2) std::abort();
                      }) /
                      n);
    lua_tab.push_back(time_us([&] { lua.run_string("table_1k()", "=bench"); }) / n);
    cpp_tab.push_back(time_us([&] {
                        std::size_t s = 0;
                        for (int i = 1; i <= n; ++i)
                          s += skein::run([](std::vector<std::int64_t> v) { return v.size(); }, vec).get();
                        if (s != std::size_t(n) * 1000) std::abort();
                      }) /
                      n);
    lua_alloc.push_back(time_us([&] { lua.run_string("alloc()", "=bench"); }) / n);
  }
  std::printf("%-10s %12s %12s %10s\n", "workload", "Lua us/op", "C++ us/op", "Lua/C++");
  std::printf("%-10s %12.2f %12.2f %9.1fx\n", "run-get", median(lua_run), median(cpp_run),
              median(lua_run) / median(cpp_run));
  std::printf("%-10s %12.2f %12.2f %9.1fx\n", "table-1k", median(lua_tab), median(cpp_tab),
              median(lua_tab) / median(cpp_tab));
  std::printf("%-10s %12.2f %12s\n", "alloc", median(lua_alloc), "-");
  std::printf("(N=%d per round, median of %d rounds, %zu threads%s)\n", n, rounds,
              static_cast<std::size_t>(skein::cpus()), sandbox ? ", sandbox" : "");
  return 0;
}
