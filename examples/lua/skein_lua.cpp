// skein-lua: runs a Lua 5.4 script with skein's `threads`, `thread` and
// `runtime` modules as globals.
//
//   skein-lua [--timeout SECONDS] [--isolation empty|clone] [--sandbox] [--dump-on-signal]
//             [--max-tasks N] [--max-threads N] [--max-memory BYTES]
//             [--max-queue-items N] script.lua [args...]
//
// --sandbox runs a script you do not trust: the safe library set (no io, no
// os beyond the clock, no debug, no C modules) and, unless given, the limits
// kSandbox* below. A limit that is hit is an error in the task that asked.
//
// The main chunk runs as a task of the script's runtime; when it returns,
// skein-lua waits for every task it started (as Python waits for its
// threads), then exits. A `thread.core.spawn` task whose error escapes ends
// the run at once (a Go panic in a goroutine ends the program): every task
// and wait is cancelled and the error is shown. A deadlock (every task and
// the main chunk waiting on each other) is reported by skein's detector with
// each thread's wait and script line, and ends the run the same way.
// Exit status: 0 on success; 1
// if the script raised an error or deadlocked, or a task failed with nobody to observe it (a
// spawned task, a Promise dropped unread); 2 on a usage error (0 for --help,
// which prints the usage on stdout); 124 if --timeout passed: every task,
// busy or blocked, is cancelled first.

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lua_host.hpp"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 124;

// --sandbox's limits where no --max-* option says otherwise.
constexpr std::size_t kSandboxTasks = 1000;
constexpr std::size_t kSandboxThreads = 64;
constexpr std::size_t kSandboxMemory = std::size_t{256} << 20;
constexpr std::size_t kSandboxQueueItems = 100000;

/// Prints the usage and exits: on stderr with status 2 after a usage error
/// (`msg`), on stdout with status 0 when asked for (--help).
[[noreturn]] void usage(const char* msg) {
  if (msg) std::fprintf(stderr, "skein-lua: %s\n", msg);
  std::fprintf(
      msg ? stderr : stdout,
      "usage: skein-lua [options] script.lua [args...]\n"
      "  --timeout SECONDS     cancel every task and exit with status 124 once SECONDS have passed\n"
      "  --isolation empty     threads.run tasks see only the libraries (Scriptling's explicit passing; the default)\n"
      "  --isolation clone     threads.run tasks get a copy of the caller's globals (Scriptling's cloned "
      "environment)\n"
      "  --sandbox             for scripts you do not trust: the safe libraries (no io, no os but clock/time/date/\n"
      "                        difftime, no debug, no dofile/loadfile, load of text only, require of loaded\n"
      "                        modules only) and the limits below, where not given\n"
      "  --max-tasks N         live tasks at most (default: none; %zu with --sandbox)\n"
      "  --max-threads N       OS threads the script's tasks may hold, running or blocked (default: none;\n"
      "                        %zu with --sandbox)\n"
      "  --max-memory BYTES    memory of all the script's Lua states; suffixes K, M, G (default: none;\n"
      "                        %zuM with --sandbox)\n"
      "  --max-queue-items N   items a queue may hold: an unbounded queue's bound (default: none;\n"
      "                        %zu with --sandbox)\n"
      "  A limit that is hit raises an error naming it in the task that asked.\n"
      "  --dump-on-signal      on SIGQUIT (Ctrl-\\), print every thread: what it waits on, and where in the script\n"
      "  A script whose tasks all wait on each other (a deadlock) stops with the report of every thread and\n"
      "  exit status 1 (SKEIN_DEADLOCK=off turns the detection off).\n",
      kSandboxTasks, kSandboxThreads, kSandboxMemory >> 20, kSandboxQueueItems);
  std::exit(msg ? kExitUsage : 0);
}

struct Options {
  double timeout = 0;  // 0: none
  skein::script::Isolation isolation = skein::script::Isolation::empty;
  bool sandbox = false;
  bool dump_on_signal = false;
  std::optional<std::size_t> max_tasks, max_threads, max_memory, max_queue_items;
  std::string script;
  std::vector<std::string> args;
};

/// A positive count (`what` names the option), with K/M/G suffixes (powers of 1024) if `sizes`.
std::size_t parse_count(const char* what, const char* text, bool sizes) {
  const std::string bad =
      std::string(what) + " needs a positive whole number" + (sizes ? " of bytes (suffixes K, M, G)" : "");
  if (!text || !*text || *text == '-' || *text == '+') usage(bad.c_str());
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || end == text) usage(bad.c_str());
  if (sizes && *end) {
    int shift = 0;
    switch (*end) {
      case 'k':
      case 'K': shift = 10; break;
      case 'm':
      case 'M': shift = 20; break;
      case 'g':
      case 'G': shift = 30; break;
      default: usage(bad.c_str());
    }
    ++end;
    if (v > (~0ULL >> shift)) usage((std::string(what) + ": too large").c_str());
    v <<= shift;
  }
  if (*end || v == 0) usage(bad.c_str());
  if (v > std::numeric_limits<std::size_t>::max() / 2) usage((std::string(what) + ": too large").c_str());
  return static_cast<std::size_t>(v);
}

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
    } else if (a == "--sandbox") {
      o.sandbox = true;
    } else if (a == "--dump-on-signal") {
      o.dump_on_signal = true;
    } else if (a == "--max-tasks" || a == "--max-threads" || a == "--max-memory" || a == "--max-queue-items") {
      const char* v = i + 1 < argc ? argv[++i] : nullptr;
      const std::size_t n = parse_count(a.c_str(), v, a == "--max-memory");
      (a == "--max-tasks"     ? o.max_tasks
       : a == "--max-threads" ? o.max_threads
       : a == "--max-memory"  ? o.max_memory
                              : o.max_queue_items) = n;
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
  if (opts.dump_on_signal) skein::dump_on_signal(SIGQUIT);

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
    sc::Runtime::Options ro;
    ro.run_isolation = opts.isolation;
    ro.safe_libraries = opts.sandbox;
    const auto pick = [&](const std::optional<std::size_t>& given, std::size_t sandboxed) {
      return given ? *given : opts.sandbox ? sandboxed : 0;
    };
    ro.limits.max_tasks = pick(opts.max_tasks, kSandboxTasks);
    ro.limits.max_threads = pick(opts.max_threads, kSandboxThreads);
    ro.limits.max_memory = pick(opts.max_memory, kSandboxMemory);
    ro.limits.max_queue_items = pick(opts.max_queue_items, kSandboxQueueItems);
    sc::Runtime rt(host, ro, ctx);
    auto main_task = rt.run([&] {
      skein_lua::LuaEnvironment env(rt, nullptr);
      env.run_file(opts.script, opts.args);
    });
    std::string error;
    bool deadlocked = false;
    // A deadlock fails the wait (skein::Deadlock, after the detector printed
    // its report): the run has failed, and every task is cancelled so that
    // the waits below end.
    const auto wait = [&](auto&& w) {
      try {
        try {
          w();
        } catch (const skein::Deadlock& e) {
          if (error.empty()) error = e.what();
          deadlocked = true;
          ctx.cancel();
          w();
        }
      } catch (const std::exception& e) {
        if (error.empty()) error = e.what();
      }
    };
    wait([&] { main_task.wait(); });
    // The script has returned (or failed): wait for the tasks it started.
    wait([&] { rt.wait(); });
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
    if (ctx.timed_out() && !deadlocked) {
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
