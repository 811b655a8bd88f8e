#pragma once
// Shared helpers for the C++ benchmark programs: workload constants, timing,
// memory readings and the one-line machine-readable report that bench/run.py
// parses:
//
//   workload=skynet peer=skein ms=41.234 rss_mb=12.3 base_mb=3.4 n=1000000 tasks=1111111
//     result=499999500000 expected=499999500000 ok=1 threads=2 version=0.1.0 [lat_us=...] [note=...]
//
// Latency workloads (bench/prim_common.hpp) add lat_us=, the median latency of
// one operation in microseconds; "tasks" is then the number of operations.
// The echo benchmarks (bench/io_common.hpp) also add p99_us=, the 99th
// percentile of the same latencies.
//
// A program exits 0 only if the result was verified; a wrong result prints
// ok=0 and exits 1.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace bench {

// --- workload sizes (the same in every peer; std::async uses smaller ones) ---
inline constexpr long kSkynetLeaves = 1'000'000;  // fan-out 10: 1,111,111 tasks
inline constexpr long kSkynetDiv = 10;
inline constexpr long kSpawnTasks = 1'000'000;
inline constexpr long kFibN = 30;  // 2,692,537 calls, each a task
inline constexpr long kParkedTasks = 1'000'000;

/// Sum of 0..leaves-1: skynet's answer.
constexpr long skynet_expected(long leaves) { return leaves * (leaves - 1) / 2; }
/// Number of tasks in a skynet tree (every node, leaves included).
constexpr long skynet_tasks(long leaves, long div) {
  long t = 0;
  for (long level = leaves; level >= 1; level /= div) t += level;
  return t;
}
constexpr long fib_value(long n) {
  long a = 0, b = 1;
  for (long i = 0; i < n; ++i) {
    long t = a + b;
    a = b;
    b = t;
  }
  return a;
}
/// Calls in the naive fib(n) tree: 2*fib(n+1) - 1.
constexpr long fib_calls(long n) { return 2 * fib_value(n + 1) - 1; }

static_assert(skynet_expected(1'000'000) == 499'999'500'000);
static_assert(fib_value(30) == 832'040);

// --- measuring -----------------------------------------------------------------

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// A "Key:   N kB" line of /proc/self/status, in MB; -1 if unavailable.
inline double proc_status_mb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::size_t len = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, len, key) == 0 && line.size() > len && line[len] == ':')
      return std::strtod(line.c_str() + len + 1, nullptr) / 1024.0;
  return -1.0;
}

/// Current resident set size (VmRSS), in MB.
inline double current_rss_mb() { return std::max(0.0, proc_status_mb("VmRSS")); }

/// Peak resident set size of this process so far, in MB: VmHWM, as the Go peer
/// reads it. Not getrusage's ru_maxrss: Linux carries ru_maxrss across
/// execve(), so a program started by a big parent (python's fork + exec)
/// would report the parent's RSS when its own is smaller.
inline double peak_rss_mb() {
  double hwm = proc_status_mb("VmHWM");
  if (hwm >= 0) return std::max(hwm, current_rss_mb());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // KB on Linux
}

struct Report {
  const char* workload;
  const char* peer;
  double ms = 0;
  double base_mb = 0;  // VmRSS before the workload started (runtime already up)
  long n = 0;          // the workload's size parameter
  long tasks = 0;      // tasks the workload creates
  long result = 0;
  long expected = 0;
  long threads = 0;          // parallelism of the runtime (pool size, arena concurrency, GOMAXPROCS)
  const char* version = "";  // the peer's version, no spaces
  const char* note = "";     // no spaces
  double lat_us = -1;        // latency workloads: median per-operation latency (µs); < 0: not printed
  double p99_us = -1;        // the 99th percentile of the same latencies (µs); < 0: not printed
};

/// Prints the report line; returns the process exit code.
inline int finish(const Report& r) {
  bool ok = r.result == r.expected;
  double peak = peak_rss_mb();
  std::printf(
      "workload=%s peer=%s ms=%.3f rss_mb=%.1f base_mb=%.1f n=%ld tasks=%ld result=%ld expected=%ld ok=%d threads=%ld "
      "version=%s",
      r.workload, r.peer, r.ms, peak, r.base_mb, r.n, r.tasks, r.result, r.expected, ok ? 1 : 0, r.threads,
      r.version[0] ? r.version : "-");
  if (r.lat_us >= 0) std::printf(" lat_us=%.3f", r.lat_us);
  if (r.p99_us >= 0) std::printf(" p99_us=%.3f", r.p99_us);
  std::printf("%s%s\n", r.note[0] ? " note=" : "", r.note);
  std::fflush(stdout);
  if (!ok) std::fprintf(stderr, "%s/%s: WRONG RESULT %ld (expected %ld)\n", r.peer, r.workload, r.result, r.expected);
  return ok ? 0 : 1;
}

inline int usage(const char* argv0, const char* workloads) {
  std::fprintf(stderr, "usage: %s WORKLOAD   (one of: %s)\n", argv0, workloads);
  return 2;
}

}  // namespace bench
