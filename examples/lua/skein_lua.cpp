// skein-lua: runs a Lua 5.4 script with skein's `threads`, `thread` and
// `runtime` modules as globals.
//
//   skein-lua [--timeout SECONDS] [--isolation empty|clone] script.lua [args...]
//
// The main chunk runs as a task of the script's runtime; when it returns,
// skein-lua waits for every task it started (as Python waits for its
// threads), then exits. A `thread.core.spawn` task whose error escapes ends
// the run at once (a Go panic in a goroutine ends the program): every task
// and wait is cancelled and the error is shown. Exit status: 0 on success; 1
// if the script raised an error or a task failed with nobody to observe it (a
// spawned task, a Promise dropped unread); 2 on a usage error (0 for --help,
// which prints the usage on stdout); 124 if --timeout passed: every task,
// busy or blocked, is cancelled first.

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "lua_host.hpp"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 124;

/// Prints the usage and exits: on stderr with status 2 after a usage error
/// (`msg`), on stdout with status 0 when asked for (--help).
[[noreturn]] void usage(const char* msg) {
  if (msg) std::fprintf(stderr, "skein-lua: %s\n", msg);
  std::fprintf(
      msg ? stderr : stdout,
      "usage: skein-lua [--timeout SECONDS] [--isolation empty|clone] script.lua [args...]\n"
      "  --timeout SECONDS     cancel every task and exit with status 124 once SECONDS have passed\n"
      "  --isolation empty     threads.run tasks see only the libraries (Scriptling's explicit passing; the default)\n"
      "  --isolation clone     threads.run tasks get a copy of the caller's globals (Scriptling's cloned "
      "environment)\n");
  std::exit(msg ? kExitUsage : 0);
}

struct Options {
  double timeout = 0;  // 0: none
  skein::script::Isolation isolation = skein::script::Isolation::empty;
  std::string script;
  std::vector<std::string> args;
};

Options parse(int argc, char** argv) {
  Options o;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--timeout") {
      if (i + 1 >= argc) usage("--timeout needs a number of seconds");
      char* end = nullptr;
      errno = 0;
      o.timeout = std::strtod(argv[++i], &end);
      if (errno || !end || *end || !std::isfinite(o.timeout) || o.timeout <= 0 || o.timeout > 1e8)
        usage("--timeout needs a positive number of seconds (at most 1e8)");
    } else if (a == "--isolation") {
      if (i + 1 >= argc) usage("--isolation needs 'empty' or 'clone'");
      std::string v = argv[++i];
      if (v == "empty")
        o.isolation = skein::script::Isolation::empty;
      else if (v == "clone")
        o.isolation = skein::script::Isolation::clone;
      else
        usage(("--isolation must be 'empty' or 'clone', not '" + v + "'").c_str());
    } else if (a == "-h" || a == "--help") {
      usage(nullptr);
    } else if (a.size() > 1 && a[0] == '-') {
      usage(("unknown option " + a).c_str());
    } else {
      break;
    }
  }
  if (i >= argc) usage("no script given");
  o.script = argv[i++];
  for (; i < argc; ++i) o.args.emplace_back(argv[i]);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  namespace sc = skein::script;
  Options opts = parse(argc, argv);

  skein::Context ctx =
      opts.timeout > 0 ? skein::Context::with_timeout(std::chrono::duration<double>(opts.timeout)) : skein::Context();
  // Errors nobody can observe any more: reported once each, and they fail the run.
  std::mutex report_mu;
  int unobserved = 0;
  skein::set_unhandled_error_handler([&](std::exception_ptr e) {
    std::lock_guard lk(report_mu);
    ++unobserved;
    if (ctx.timed_out()) return;  // tasks stopped by the timeout: reported once, below
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::fflush(stdout);
      std::fprintf(stderr, "skein-lua: error in a task: %s\n", x.what());
    } catch (...) {
      std::fprintf(stderr, "skein-lua: error in a task\n");
    }
  });

  int status = 0;
  {
    skein_lua::LuaHost host;
    sc::Runtime rt(host, sc::Runtime::Options{opts.isolation}, ctx);
    auto main_task = rt.run([&] {
      skein_lua::LuaEnvironment env(rt, nullptr);
      env.run_file(opts.script, opts.args);
    });
    std::string error;
    try {
      main_task.wait();
    } catch (const std::exception& e) {
      error = e.what();
    }
    // The script has returned (or failed): wait for the tasks it started.
    try {
      rt.wait();
    } catch (const std::exception& e) {
      if (error.empty()) error = e.what();
    }
    std::fflush(stdout);
    if (auto failure = rt.failure()) {  // a spawned task failed: the run failed fast (Runtime::fail)
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        error = std::string("error in a task: ") + e.what();
      } catch (...) {
        error = "error in a task";
      }
    }
    if (ctx.timed_out()) {
      std::fprintf(stderr, "skein-lua: %s: timed out after %g s; every task was cancelled\n", opts.script.c_str(),
                   opts.timeout);
      status = kExitTimeout;
    } else if (!error.empty()) {
      std::fprintf(stderr, "skein-lua: %s\n", error.c_str());
      status = kExitError;
    }
  }  // the runtime is gone: every task has finished and every handle is released
  skein::set_unhandled_error_handler(nullptr);
  if (status == 0 && unobserved > 0) status = kExitError;
  std::fflush(stdout);
  return status;
}
