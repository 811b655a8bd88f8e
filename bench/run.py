#!/usr/bin/env python3
"""Runs skein's benchmarks and their peers in the same run.

Four suites (--suite, default all): "core", the runtime core (tasks against
oneTBB, Go and std::async); "prim", the primitives (Queue, Mutex, Atomic,
WaitGroup, Pool against a mutex+condvar queue / std::mutex / std::atomic,
moodycamel::BlockingConcurrentQueue, Boost.Fiber and Go); "loop", the event
loop (EventLoop::post against a mutex+condvar+deque loop and Boost.Asio);
"io", echo over loopback (<skein/asio.hpp>'s use_promise against Asio's own
C++20 coroutines and Go's net package).

Builds a Release tree in bench/out/build and the Go peer in bench/out/bin,
then runs every workload for every peer --repeat times, interleaving the peers
within each repetition (in a rotating order) so that machine noise hits all of
them alike. Prints, per suite, a table of medians and ratios (core: times and
peak RSS; prim and loop: ns per operation, or the median latency in µs; io:
round trips per second and the p99 round trip), the
targets met or missed and the machine it ran on; --markdown FILE writes the
same as Markdown.

Each run also checks, from /proc/stat and its own CPU time, whether other
processes used the CPUs meanwhile; such a run is measured again (--max-noise,
--retries). Every program verifies its result; a wrong result, a crash or a
run past --timeout shows in the table (WRONG / FAIL / TIMEOUT) and makes the
exit status 1.

Standard library only. Besides --markdown FILE, everything it writes goes
under bench/out/ (the build trees, the Go binary and caches, results*.json).
"""

import argparse
import datetime
import json
import mmap
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
BUILD = os.path.join(OUT, "build")
GO_SRC = os.path.join(BENCH, "go")
GO_BIN = os.path.join(OUT, "bin", "go_core")

def _bin(name):
    return os.path.join(BUILD, "bench", name)


# suite -> [(peer, column title, program)]. A peer's name means the same
# library in every suite; its program depends on the suite.
SUITE_PEERS = {
    "core": [
        ("skein", "skein", _bin("skein_core")),
        ("tbb", "TBB", _bin("tbb_core")),
        ("go", "Go", GO_BIN),
        ("async", "std::async", _bin("async_core")),
    ],
    "prim": [
        ("skein", "skein", _bin("skein_prim")),
        ("std", "std", _bin("std_prim")),
        ("moodycamel", "moodycamel", _bin("moodycamel_prim")),
        ("fiber", "Boost.Fiber", _bin("fiber_prim")),
        ("go", "Go", GO_BIN),
    ],
    "loop": [
        ("skein", "skein", _bin("skein_loop")),
        ("std", "std", _bin("std_loop")),
        ("asio", "Asio", _bin("asio_loop")),
    ],
    "io": [
        ("skein", "skein", _bin("skein_io")),
        ("asio", "Asio", _bin("asio_io")),
        ("go", "Go", GO_BIN),
    ],
}
SUITES = list(SUITE_PEERS)
SUITE_TITLE = {"core": "Runtime core", "prim": "Primitives", "loop": "Event loop", "io": "Echo over loopback"}
PEER_TITLE = {}
for _suite_peers in SUITE_PEERS.values():
    for _name, _title, _prog in _suite_peers:
        PEER_TITLE.setdefault(_name, _title)
ALL_PEER_NAMES = list(PEER_TITLE)
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = mmap.PAGESIZE

# Table row -> (description, {peer: argument}). A peer missing from the map
# does not run that row.
WORKLOADS = {
    "skynet": ("1M leaves, fan-out 10, every node a task",
               {"skein": "skynet", "tbb": "skynet", "go": "skynet", "async": "skynet"}),
    "spawn": ("1M empty tasks from one spawner task, join all",
              {"skein": "spawn", "tbb": "spawn", "go": "spawn", "async": "spawn"}),
    "spawn-main": ("as spawn, but skein's spawner is main(), a non-pool thread",
                   {"skein": "spawn_ext", "tbb": "spawn", "go": "spawn"}),
    "spawn-ctx": ("as spawn-main, but skein keeps no Promise per task: Context::spawn, then ctx.wait()",
                  {"skein": "spawn_ctx", "tbb": "spawn", "go": "spawn"}),
    "fib": ("fib(30), every call a task",
            {"skein": "fib", "tbb": "fib", "go": "fib", "async": "fib"}),
    "parked": ("1M tasks parked on one event, released, joined",
               {"skein": "parked", "tbb": "parked", "go": "parked", "async": "parked"}),
}


def _same(arg, *peers):
    return {p: arg for p in peers}


# Primitives and event loop: row -> (description, {peer: argument}, metric).
# metric "ns": the table shows ns per operation (ms / tasks); "lat": the
# median per-operation latency the program measured (lat_us), in µs.
PRIM_WORKLOADS = {
    "queue-1p1c-thr": ("1 producer / 1 consumer thread, 10M ints through capacity 100 (blocking put/get)",
                       _same("queue_thr", "skein", "std", "moodycamel", "fiber", "go"), "ns"),
    "queue-1p1c-coro": ("1 producer / 1 consumer coroutine (goroutine, fiber), 10M ints through capacity 100",
                        _same("queue_coro", "skein", "fiber", "go"), "ns"),
    "queue-4p4c-thr": ("4 producer / 4 consumer threads, 10M ints in all through capacity 100",
                       _same("queue4_thr", "skein", "std", "moodycamel", "fiber", "go"), "ns"),
    "queue-4p4c-coro": ("4 producer / 4 consumer coroutines, 10M ints in all through capacity 100",
                        _same("queue4_coro", "skein", "fiber", "go"), "ns"),
    "pingpong-thr": ("two threads bounce an int over two capacity-1 queues (unbuffered channels), 50k round trips",
                     _same("pingpong_thr", "skein", "std", "moodycamel", "fiber", "go"), "lat"),
    "pingpong-coro": ("the same between two coroutines (goroutines, fibers)",
                      _same("pingpong_coro", "skein", "fiber", "go"), "lat"),
    "mutex": ("10M lock / ++counter / unlock on one thread",
              _same("mutex", "skein", "std", "fiber", "go"), "ns"),
    "mutex-2way": ("the same 10M split over 2 threads (goroutines), contended",
                   _same("mutex2", "skein", "std", "fiber", "go"), "ns"),
    "atomic": ("20M atomic add(1) on one thread",
               _same("atomic", "skein", "std", "go"), "ns"),
    "atomic-2way": ("the same 20M split over 2 threads (goroutines), contended",
                    _same("atomic2", "skein", "std", "go"), "ns"),
    "waitgroup": ("1M tasks (goroutines) each call done(); one wait() for all (spawning included)",
                  _same("waitgroup", "skein", "go"), "ns"),
    "pool": ("worker pool, 4 workers, queue depth 8: submit 1M small items, then close; skein submits from a task",
             _same("pool", "skein", "std", "moodycamel", "go"), "ns"),
    "pool-main": ("as pool, but skein's submitter is main(), a thread outside the pool (std, moodycamel and Go "
                  "run their pool program again)",
                  dict(_same("pool", "std", "moodycamel", "go"), skein="pool_main"), "ns"),
    "pingpong-unbuf": ("two coroutines (goroutines) bounce an int over two unbuffered queues (channels), 50k round "
                       "trips", _same("pingpong_unbuf", "skein", "go"), "lat"),
    "select-2ch": ("one consumer receives 2M items through a select over two capacity-100 queues (channels), "
                   "one producer coroutine (goroutine) per queue", _same("select2", "skein", "go"), "ns"),
    "timer-churn": ("1M timers started and stopped by main() (an hour each, none fires)",
                    _same("timers", "skein", "go"), "ns"),
}
LOOP_WORKLOADS = {
    "post-1p": ("1 producer thread posts 1M callbacks; until the loop has run them all",
                _same("post1", "skein", "std", "asio"), "ns"),
    "post-4p": ("4 producer threads post 250k callbacks each",
                _same("post4", "skein", "std", "asio"), "ns"),
    "post-latency": ("one post at a time to a sleeping loop (200 µs apart), 2000 times: post() to callback",
                     _same("latency", "skein", "std", "asio"), "lat"),
}
# Echo over loopback: row -> (description, {peer: argument}). The table shows
# round trips per second (tasks / ms) and the p99 round trip (p99_us).
IO_WORKLOADS = {
    "echo": ("100 connections x 1000 round trips of 64 bytes against an echo server in the same process, "
             "127.0.0.1; skein: 1 I/O thread (IoService(1)) + the pool",
             {"skein": "echo1", "asio": "echo", "go": "echo"}),
    "echo-ion": ("as echo, but skein's IoService has cpus() I/O threads (Asio and Go run their echo program again)",
                 {"skein": "echon", "asio": "echo", "go": "echo"}),
}
SUITE_WORKLOADS = {"core": list(WORKLOADS), "prim": list(PRIM_WORKLOADS), "loop": list(LOOP_WORKLOADS),
                   "io": list(IO_WORKLOADS)}
ALL_WORKLOADS = {}
ALL_WORKLOADS.update(WORKLOADS)
ALL_WORKLOADS.update({k: v[:2] for k, v in PRIM_WORKLOADS.items()})
ALL_WORKLOADS.update({k: v[:2] for k, v in LOOP_WORKLOADS.items()})
ALL_WORKLOADS.update(IO_WORKLOADS)
METRIC = {k: v[2] for d in (PRIM_WORKLOADS, LOOP_WORKLOADS) for k, v in d.items()}
SUITE_OF = {wl: suite for suite, wls in SUITE_WORKLOADS.items() for wl in wls}

TARGETS = [
    # (description, workload, kind, peer, limit[, ">="]): skein's median of `kind` ÷ the peer's <= limit
    # (with ">=": at least limit — for throughputs, where higher is better)
    ("skynet time: skein <= 1.0x TBB", "skynet", "ms", "tbb", 1.0),
    ("spawn-and-join time: skein <= 1.0x TBB", "spawn", "ms", "tbb", 1.0),
    ("1M parked peak RSS: skein <= 0.25x Go", "parked", "rss_mb", "go", 0.25),
    # issue 3 (primitives)
    ("coroutine queue 1P/1C time: skein <= 0.5x Go's channel", "queue-1p1c-coro", "ms", "go", 0.5),
    ("blocking queue 1P/1C time: skein <= 1.0x mutex+condvar queue", "queue-1p1c-thr", "ms", "std", 1.0),
    ("blocking queue 1P/1C time: skein <= 2.0x moodycamel", "queue-1p1c-thr", "ms", "moodycamel", 2.0),
    ("blocking queue 4P/4C time: skein <= 1.0x mutex+condvar queue", "queue-4p4c-thr", "ms", "std", 1.0),
    ("blocking queue 4P/4C time: skein <= 2.0x moodycamel", "queue-4p4c-thr", "ms", "moodycamel", 2.0),
    ("Atomic uncontended time: skein <= 1.05x std::atomic", "atomic", "ms", "std", 1.05),
    ("Atomic 2-way contended time: skein <= 1.05x std::atomic", "atomic-2way", "ms", "std", 1.05),
    ("Mutex uncontended time: skein <= 1.5x std::mutex", "mutex", "ms", "std", 1.5),
    # issue 4 (event loop)
    ("post throughput, 4 producers (time for 1M): skein <= 1.0x Asio", "post-4p", "ms", "asio", 1.0),
    ("median wake-up latency: skein <= 1.0x Asio", "post-latency", "lat_us", "asio", 1.0),
    # echo over loopback (<skein/asio.hpp>)
    ("echo throughput (1 I/O thread): skein >= 0.9x Asio's coroutines", "echo", "rtps", "asio", 0.9, ">="),
    ("echo throughput (1 I/O thread): skein >= 1.0x Go", "echo", "rtps", "go", 1.0, ">="),
    ("echo throughput (cpus() I/O threads): skein >= 0.9x Asio's coroutines", "echo-ion", "rtps", "asio", 0.9, ">="),
    ("echo throughput (cpus() I/O threads): skein >= 1.0x Go", "echo-ion", "rtps", "go", 1.0, ">="),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_checked(cmd, cwd=None, env=None):
    log("+ " + " ".join(cmd))
    r = subprocess.run(cmd, cwd=cwd, env=env)
    if r.returncode != 0:
        sys.exit("build step failed (exit %d): %s" % (r.returncode, " ".join(cmd)))


def go_env():
    env = dict(os.environ)
    env.update({
        "GOPATH": os.path.join(OUT, "go", "path"),
        "GOCACHE": os.path.join(OUT, "go", "cache"),
        "GOMODCACHE": os.path.join(OUT, "go", "path", "pkg", "mod"),
        "GOPROXY": "off",        # no network: the module has no dependencies
        "GOFLAGS": "-mod=mod",
        "GO111MODULE": "on",
        "GOENV": "off",          # ignore (and never write) the user's go env file
        "GOTOOLCHAIN": "local",  # newer go commands must not try to download one
        "CGO_ENABLED": "0",
    })
    env.pop("GOMAXPROCS", None)  # the default: the CPUs this process may use
    return env


def build(jobs, targets=None):
    """Configures and builds bench/out/build (only `targets`, if given) and the Go peer (unless
    `targets` leaves it out)."""
    run_checked(["cmake", "-S", REPO, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release",
                 "-DSKEIN_BUILD_TESTS=OFF", "-DSKEIN_BUILD_EXAMPLES=OFF", "-DSKEIN_BUILD_BENCH=ON"])
    cmd = ["cmake", "--build", BUILD, "--parallel", str(jobs)]
    if targets:
        cmd += ["--target"] + [t for t in targets if t != "go"]
    run_checked(cmd)
    if targets and "go" not in targets:
        return
    if shutil.which("go"):
        os.makedirs(os.path.dirname(GO_BIN), exist_ok=True)
        run_checked(["go", "build", "-o", GO_BIN, "."], cwd=GO_SRC, env=go_env())
    else:
        log("warning: `go` not found, the Go peer is skipped")


def parse_report(stdout):
    for line in reversed(stdout.splitlines()):
        if line.startswith("workload="):
            rep = {}
            for tok in line.split():
                k, _, v = tok.partition("=")
                rep[k] = v
            return rep
    return None


def parse_cpu_list(spec):
    """'0-2,5' -> {0, 1, 2, 5}"""
    cpus = set()
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            cpus.update(range(int(a), int(b) + 1))
        elif part:
            cpus.add(int(part))
    return cpus


def stat_ticks(cpus):
    """(busy, total) clock ticks since boot, summed over `cpus` (None: all), from /proc/stat."""
    busy = total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu") or line.startswith("cpu "):
                    continue
                name, *vals = line.split()
                if cpus is not None and int(name[3:]) not in cpus:
                    continue
                vals = [int(v) for v in vals[:8]]
                idle = vals[3] + vals[4]  # idle + iowait
                total += sum(vals)
                busy += sum(vals) - idle
    except (OSError, ValueError, IndexError):
        return None
    return busy, total


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def warm_memory(mb):
    """Touches `mb` MiB of fresh memory, one write per page, and gives it back.

    On a VM with free page reporting (these CI machines: Firecracker guests
    booted with page_reporting), memory the guest has freed for a while is
    handed back to the host, and the first write to each of its pages then
    costs a host-side fault: measured here, 10.8 µs per 4 KiB page against
    1.5 µs for a page the guest touched recently. A workload whose footprint
    is 75 MB (1M live Promises) then paid ~200 ms more in one run than in the
    next, at random. The guest hands recently freed (unreported) pages out
    first, so touching and freeing a block just before a run gives the
    program warm pages: every peer's run starts from the same state.
    """
    if mb <= 0:
        return
    n = mb << 20
    buf = mmap.mmap(-1, n)
    buf[::PAGE] = b"\1" * (n // PAGE)
    buf.close()


def run_one(program, arg, taskset, timeout, warm_mb=0):
    """Runs one measurement; returns a dict with either the report or an error.

    Before it, warms `warm_mb` MiB of memory (warm_memory). Also estimates
    how much CPU other processes used meanwhile (on the CPUs the program may
    use): "other_cpus" is that, in CPUs, averaged over the run.
    """
    cmd = [program, arg]
    if taskset:
        cmd = ["taskset", "-c", taskset] + cmd
    env = go_env() if program == GO_BIN else None
    cpus = parse_cpu_list(taskset) if taskset else None
    warm_memory(warm_mb)
    st0, ch0 = stat_ticks(cpus), children_cpu_s()
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": "TIMEOUT", "detail": "no result after %ds: %s" % (timeout, " ".join(cmd))}
    wall = time.monotonic() - t0
    st1, ch1 = stat_ticks(cpus), children_cpu_s()
    rep = parse_report(r.stdout)
    if r.returncode != 0 or rep is None or rep.get("ok") != "1":
        what = "WRONG" if rep is not None and rep.get("ok") == "0" else "FAIL"
        tail = (r.stderr.strip().splitlines() or [""])[-3:]
        return {"error": what, "detail": "exit %d: %s | %s" % (r.returncode, " ".join(cmd), " / ".join(tail))}
    rep["wall_s"] = wall
    for k in ("ms", "rss_mb", "base_mb", "lat_us", "p99_us"):
        if k in rep:
            rep[k] = float(rep[k])
    for k in ("n", "tasks", "threads"):
        rep[k] = int(rep[k])
    if "p99_us" in rep and rep["ms"] > 0:  # echo over loopback: round trips per second
        rep["rtps"] = rep["tasks"] * 1000.0 / rep["ms"]
    rep["cpu_s"] = ch1 - ch0
    if st0 and st1:
        busy_s = (st1[0] - st0[0]) / CLK_TCK
        # /proc/stat counts in ticks: allow two ticks per CPU of rounding.
        slack = 2.0 * (len(cpus) if cpus else (os.cpu_count() or 1)) / CLK_TCK
        rep["other_cpus"] = max(0.0, busy_s - rep["cpu_s"] - slack) / wall
    return rep


def cpu_busy(interval=1.0):
    """Fraction of all CPUs busy (any process) over `interval` seconds, from /proc/stat."""
    def snap():
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
        return sum(vals), idle
    try:
        t0, i0 = snap()
        time.sleep(interval)
        t1, i1 = snap()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (i1 - i0) / (t1 - t0) if t1 > t0 else None


def wait_idle(max_wait, threshold=0.10):
    """Waits (at most max_wait s) until the machine is idle; returns the last busy fraction seen."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy is not None and busy > threshold and time.monotonic() < deadline:
        log("  machine busy (%.0f%% CPU): waiting for it to go idle" % (busy * 100))
        time.sleep(2)
        busy = cpu_busy()
    return busy


# --- results --------------------------------------------------------------------

class Cell:
    """Every run of one (workload, peer)."""

    def __init__(self):
        self.runs = []
        self.errors = []

    def ok(self):
        return bool(self.runs) and not self.errors

    def used_runs(self):
        """The runs the medians use: the clean ones if at least half the runs
        are clean, else all of them (then noisy() is true)."""
        clean = [r for r in self.runs if not r.get("noisy")]
        return clean if clean and 2 * len(clean) >= len(self.runs) else self.runs

    def noisy(self):
        return any(r.get("noisy") for r in self.used_runs())

    def median(self, key):
        return statistics.median(r[key] for r in self.used_runs()) if self.ok() else None

    def first(self, key):
        return self.runs[0].get(key) if self.runs else None


def fmt_num(x):
    if x is None:
        return "—"
    return "%.0f" % x if x >= 100 else "%.1f" % x


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2f×" % (a / b)


def short_n(n):
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return "%dM" % (n // 1_000_000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def reduced_note(wl, peer, cell, ref_cell):
    """'(N=10k)' when a peer ran a smaller instance than skein did."""
    if not cell.runs or ref_cell is None or not ref_cell.runs:
        return ""
    n, ref = cell.first("n"), ref_cell.first("n")
    if n == ref:
        return ""
    label = "fib(%d)" % n if wl == "fib" else "N=%s" % short_n(n)
    return " (%s)" % label


def cell_text(results, wl, peer, key):
    if peer not in ALL_WORKLOADS[wl][1]:
        return "n/a"
    cell = results.get((wl, peer))
    if cell is None:
        return "not built"
    if cell.errors:
        return cell.errors[0]["error"]
    mark = "*" if cell.noisy() else ""
    return fmt_num(cell.median(key)) + mark + reduced_note(wl, peer, cell, results.get((wl, "skein")))


def comparable(results, wl, peer):
    """Median of a peer only if it ran the same instance as skein (else None)."""
    cell, ref = results.get((wl, peer)), results.get((wl, "skein"))
    if cell is None or ref is None or not cell.ok() or not ref.ok():
        return None
    return cell if cell.first("n") == ref.first("n") else None


def build_tables(results, workloads, peers):
    ratio_peers = [p for p in ("tbb", "go") if p in peers and "skein" in peers]
    ratio_hdr = ["skein/%s" % PEER_TITLE[p] for p in ratio_peers]
    time_hdr = ["workload", "tasks"] + ["%s ms" % PEER_TITLE[p] for p in peers] + ratio_hdr
    time_rows = []
    rss_hdr = ["workload"] + ["%s MB" % PEER_TITLE[p] for p in peers] + ratio_hdr
    rss_rows = []
    for wl in workloads:
        ref = results.get((wl, "skein"))
        tasks = "{:,}".format(ref.first("tasks")) if ref and ref.runs else "—"
        row = [wl, tasks] + [cell_text(results, wl, p, "ms") for p in peers]
        rrow = [wl] + [cell_text(results, wl, p, "rss_mb") for p in peers]
        for other in ratio_peers:
            c = comparable(results, wl, other)
            mark = "*" if c and ref and (c.noisy() or ref.noisy()) else ""
            row.append(fmt_ratio(ref.median("ms"), c.median("ms")) + mark if c and ref else "—")
            rrow.append(fmt_ratio(ref.median("rss_mb"), c.median("rss_mb")) + mark if c and ref else "—")
        time_rows.append(row)
        rss_rows.append(rrow)
    return (time_hdr, time_rows), (rss_hdr, rss_rows)


def spread_table(results, workloads, peers):
    """min–max of the times, to show how noisy each median is."""
    hdr = ["workload"] + ["%s min–max ms" % PEER_TITLE[p] for p in peers]
    rows = []
    for wl in workloads:
        row = [wl]
        for p in peers:
            c = results.get((wl, p))
            if p not in ALL_WORKLOADS[wl][1] or c is None or not c.ok():
                row.append("—")
            else:
                ms = [r["ms"] for r in c.used_runs()]
                row.append("%s–%s" % (fmt_num(min(ms)), fmt_num(max(ms))))
        rows.append(row)
    return hdr, rows


def op_value(wl, run_or_cell):
    """The prim/loop table's value of one run (dict) or of a cell (median): ns per operation, or µs latency."""
    if isinstance(run_or_cell, Cell):
        c = run_or_cell
        if METRIC[wl] == "lat":
            return c.median("lat_us")
        return c.median("ms") * 1e6 / c.first("tasks")
    r = run_or_cell
    return r.get("lat_us") if METRIC[wl] == "lat" else r["ms"] * 1e6 / r["tasks"]


def fmt_val(x):
    if x is None:
        return "—"
    if x < 10:
        return "%.2f" % x
    return "%.1f" % x if x < 100 else "{:,.0f}".format(x)


def op_unit(wl):
    return "µs" if METRIC[wl] == "lat" else "ns/op"


def op_tables(results, workloads, peers):
    """prim / loop: (value table, spread table). Values are ns per operation or µs."""
    ratio_peers = [p for p in peers if p != "skein"] if "skein" in peers else []
    hdr = ["workload", "ops", "unit"] + [PEER_TITLE[p] for p in peers] + ["skein/%s" % PEER_TITLE[p]
                                                                          for p in ratio_peers]
    sp_hdr = ["workload", "unit"] + ["%s min–max" % PEER_TITLE[p] for p in peers]
    rows, sp_rows = [], []
    for wl in workloads:
        ref = results.get((wl, "skein"))
        any_cell = next((c for (w, _), c in results.items() if w == wl and c.runs), None)
        ops = "{:,}".format(any_cell.first("tasks")) if any_cell else "—"
        row = [wl, ops, op_unit(wl)]
        sp = [wl, op_unit(wl)]
        for p in peers:
            cell = results.get((wl, p))
            if p not in ALL_WORKLOADS[wl][1]:
                row.append("n/a")
                sp.append("—")
            elif cell is None:
                row.append("not built")
                sp.append("—")
            elif cell.errors:
                row.append(cell.errors[0]["error"])
                sp.append("—")
            else:
                row.append(fmt_val(op_value(wl, cell)) + ("*" if cell.noisy() else ""))
                vals = [op_value(wl, r) for r in cell.used_runs()]
                sp.append("%s–%s" % (fmt_val(min(vals)), fmt_val(max(vals))))
        for p in ratio_peers:
            c = comparable(results, wl, p)
            if c is None or ref is None:
                row.append("—")
                continue
            mark = "*" if c.noisy() or ref.noisy() else ""
            row.append(fmt_ratio(op_value(wl, ref), op_value(wl, c)) + mark)
        rows.append(row)
        sp_rows.append(sp)
    return (hdr, rows), (sp_hdr, sp_rows)


def fmt_krtps(x):
    return "—" if x is None else "%.1f" % (x / 1000.0)


def io_tables(results, workloads, peers):
    """io: (throughput table, p99 table, spread table). Throughput in thousands of round trips per second."""
    ratio_peers = [p for p in peers if p != "skein"] if "skein" in peers else []
    thr_hdr = (["workload", "round trips"] + ["%s k/s" % PEER_TITLE[p] for p in peers]
               + ["skein/%s" % PEER_TITLE[p] for p in ratio_peers])
    lat_hdr = (["workload"] + ["%s p99 µs" % PEER_TITLE[p] for p in peers]
               + ["%s p50 µs" % PEER_TITLE[p] for p in peers] + ["skein/%s p99" % PEER_TITLE[p] for p in ratio_peers])
    sp_hdr = ["workload"] + ["%s min–max k/s" % PEER_TITLE[p] for p in peers]
    thr_rows, lat_rows, sp_rows = [], [], []
    for wl in workloads:
        ref = results.get((wl, "skein"))
        any_cell = next((c for (w, _), c in results.items() if w == wl and c.runs), None)
        trips = "{:,}".format(any_cell.first("tasks")) if any_cell else "—"
        thr, p99, p50, sp = [wl, trips], [wl], [], [wl]
        for p in peers:
            cell = results.get((wl, p))
            if p not in ALL_WORKLOADS[wl][1]:
                thr.append("n/a"), p99.append("n/a"), p50.append("n/a"), sp.append("—")
            elif cell is None:
                thr.append("not built"), p99.append("not built"), p50.append("not built"), sp.append("—")
            elif cell.errors:
                e = cell.errors[0]["error"]
                thr.append(e), p99.append(e), p50.append(e), sp.append("—")
            else:
                mark = "*" if cell.noisy() else ""
                thr.append(fmt_krtps(cell.median("rtps")) + mark)
                p99.append(fmt_val(cell.median("p99_us")) + mark)
                p50.append(fmt_val(cell.median("lat_us")) + mark)
                vals = [r["rtps"] for r in cell.used_runs()]
                sp.append("%s–%s" % (fmt_krtps(min(vals)), fmt_krtps(max(vals))))
        lrow = p99 + p50
        for p in ratio_peers:
            c = comparable(results, wl, p)
            if c is None or ref is None:
                thr.append("—")
                lrow.append("—")
                continue
            mark = "*" if c.noisy() or ref.noisy() else ""
            thr.append(fmt_ratio(ref.median("rtps"), c.median("rtps")) + mark)
            lrow.append(fmt_ratio(ref.median("p99_us"), c.median("p99_us")) + mark)
        thr_rows.append(thr)
        lat_rows.append(lrow)
        sp_rows.append(sp)
    return (thr_hdr, thr_rows), (lat_hdr, lat_rows), (sp_hdr, sp_rows)


def per_task_line(results, peers):
    """Bytes per parked task: (peak RSS - RSS before the workload) / tasks."""
    parts = []
    for p in peers:
        c = results.get(("parked", p))
        if c is None or not c.ok():
            continue
        b = (c.median("rss_mb") - c.median("base_mb")) * 1024 * 1024 / c.first("tasks")
        unit = "%.0f B" % b if b < 10240 else "%.1f KB" % (b / 1024)
        parts.append("%s %s%s" % (PEER_TITLE[p], unit, reduced_note("parked", p, c, results.get(("parked", "skein")))))
    return "Memory per parked task ((peak RSS − RSS before) / tasks): " + ", ".join(parts) if parts else ""


def target_lines(results, workloads):
    out = []
    for desc, wl, key, peer, limit, *how in TARGETS:
        if wl not in workloads:
            continue
        ref, c = results.get((wl, "skein")), comparable(results, wl, peer)
        if ref is None or c is None or not ref.ok():
            out.append("%s: not measured" % desc)
            continue
        ratio = ref.median(key) / c.median(key)
        met = ratio >= limit if how == [">="] else ratio <= limit
        noisy = " (* noisy runs)" if ref.noisy() or c.noisy() else ""
        out.append("%s: %.2f× — %s%s" % (desc, ratio, "met" if met else "MISSED", noisy))
    return out


def skein_revision():
    """The commit measured, and whether include/ had uncommitted changes."""
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "include"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "skein (no git)"
    if not rev:
        return "skein (no git)"
    return "skein %s%s" % (rev, " + uncommitted include/ changes" if dirty else "")


def machine_line(taskset, repeat, revision, date=None):
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    online = os.cpu_count()
    avail = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else online
    cxx = "c++"
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_CXX_COMPILER:"):
                    comp = line.split("=", 1)[1].strip()
                    v = subprocess.run([comp, "--version"], capture_output=True, text=True).stdout.splitlines()
                    cxx = v[0] if v else comp
                    break
    except OSError:
        pass
    date = date or datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    cpus = "nproc %d" % avail if avail == online else "nproc %d (of %d online)" % (avail, online)
    pin = "taskset -c %s" % taskset if taskset else "no pinning"
    return "Machine: %s, %s, Linux %s; %s; %s; %s; median of %d runs; %s" % (
        cpus, model, platform.release(), revision, cxx, pin, repeat, date)


def versions_line(results, peers, suite="core"):
    parts = []
    for p in peers:
        for (wl, peer), c in sorted(results.items()):
            if peer == p and c.runs and SUITE_OF.get(wl) == suite:
                if suite != "core":
                    parts.append("%s %s" % (PEER_TITLE[p], c.first("version")))
                    break
                what = "a thread per task" if p == "async" else "threads=%s" % c.first("threads")
                parts.append("%s %s (%s)" % (PEER_TITLE[p], c.first("version"), what))
                break
    return "Peers: " + ", ".join(parts) if parts else ""


def render_text(tables):
    out = []
    for hdr, rows in tables:
        widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
        line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        out.append(line(hdr))
        out.append("  ".join("-" * w for w in widths))
        out.extend(line(r) for r in rows)
        out.append("")
    return "\n".join(out)


def md_escape(text):
    return str(text).replace("*", "\\*")


def render_md(hdr, rows):
    out = ["| " + " | ".join(hdr) + " |", "|" + "|".join([":--"] + ["--:"] * (len(hdr) - 1)) + "|"]
    out.extend("| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows)
    return "\n".join(out)


def footnotes(workloads, peers):
    out = [FOOTNOTES[0]]
    if "async" in peers or "tbb" in peers and "parked" in workloads:
        out.append(FOOTNOTES[1])
    if any(w.startswith("spawn") for w in workloads):
        out.append(FOOTNOTES[2])
    out.append(FOOTNOTES[3])
    return out


FOOTNOTES = [
    "Times are the workload alone, measured inside each program (runtime already started); "
    "ratios are skein ÷ peer (below 1 means skein is faster), only against the same instance.",
    "std::async starts one OS thread per task, so it runs a smaller instance, shown in parentheses "
    "(10k tasks; fib(18)); TBB parks with tbb::task::suspend, which keeps a stack per suspended task, "
    "so it parks 10k tasks.",
    "spawn: skein's spawner is a pool task that keeps the 1M Promises and co_awaits each; "
    "spawn-main: the same from main() (a thread outside the pool: its starts go to its own deque in the pool, from which the workers steal), "
    "joined with wait(); spawn-ctx: main() starts the tasks in a skein::Context and calls ctx.wait(), "
    "keeping no per-task handle. TBB (main() runs a task_group, then wait()) and Go (main goroutine, "
    "sync.WaitGroup) run the same program in all three rows.",
    "Peak RSS: VmHWM from /proc/self/status at the end of the run, for the whole process (every peer).",
]


PRIM_FOOTNOTES = [
    "ns/op = the workload's time (measured inside each program) ÷ its operations: items through the queue, "
    "lock/unlock pairs, adds, tasks, pool items; µs = the median round trip the program measured. Medians over "
    "the runs; ratios are skein ÷ peer (below 1 means skein is faster).",
    "-thr rows: OS threads with blocking put/get (Boost.Fiber: each thread's main fiber, round_robin); "
    "-coro rows: skein coroutines (async_put/async_get) on default_pool(), Boost.Fiber fibers on a shared_work "
    "scheduler over one thread per CPU. Go has only goroutines: it runs the same program in both rows.",
    "Queues: skein Queue<long>(100); std = std::mutex + 2 std::condition_variable + std::deque, bounded at 100; "
    "moodycamel = BlockingConcurrentQueue<long> (enqueue / wait_dequeue, no tokens) with a LightweightSemaphore "
    "of 100 free slots; Boost.Fiber buffered_channel<long>(128) (a power of two; holds 127); Go make(chan int, "
    "100). Ping-pong: skein and std capacity 1, moodycamel unbounded (one item in flight), Boost.Fiber "
    "unbuffered_channel, Go unbuffered channels.",
    "mutex: skein::Mutex, std::mutex, boost::fibers::mutex, sync.Mutex; atomic: skein::Atomic<long>::add(1), "
    "std::atomic<long>::fetch_add(1), atomic.AddInt64. waitgroup: skein's spawner is a pool task "
    "(skein::spawn x1M, co_await wg.async_wait()), Go's is main; the time includes starting the 1M tasks. "
    "pool: skein::Pool<long>(f, 4, 8) fed by a pool task with co_await async_submit (pool-main: by main() with "
    "submit()); std / moodycamel: main() feeds 4 threads over their bounded queue (depth 8); Go: main feeds 4 "
    "goroutines over make(chan int, 8).",
]
LOOP_FOOTNOTES = [
    "post-1p / post-4p: ns per callback = the time from starting the producers until the loop has run the "
    "last of the 1M callbacks, ÷ 1M; every callback checks that its producer's callbacks run in order. "
    "post-latency: µs = the median, over 2000 posts, of the time from just before post() to the start of the "
    "callback, each post 200 µs after the previous callback (the loop is asleep): the wake-up latency.",
    "skein = EventLoop::post, run() on main() with a keep_alive() guard; std = std::mutex + "
    "std::condition_variable + std::deque<std::function<void()>>, one callback per lock; Asio = "
    "io_context::run() with a work guard, boost::asio::post(io, f).",
]

IO_FOOTNOTES = [
    "One process per run: an echo server and 100 clients on 127.0.0.1 (TCP_NODELAY), each client 1000 round "
    "trips of a 64-byte message (write it, read 64 bytes back, check them). k/s = 100,000 round trips ÷ the time "
    "from starting the clients (connects included) until the last is done; p99 / p50 = percentiles of every "
    "round trip, timed by its client (steady_clock, Go time.Now). Medians over the runs.",
    "skein = server and clients are skein coroutine tasks on default_pool() (cpus() workers), every socket "
    "operation co_awaited with skein::use_promise on a skein::IoService (echo: 1 I/O thread; echo-ion: cpus() I/O "
    "threads, no strands); the completion handler runs on an I/O thread, the task resumes on the pool. Asio = "
    "asio::awaitable coroutines (co_spawn, use_awaitable) on one io_context run by cpus() threads; Go = net "
    "package, a goroutine per connection and per client, default GOMAXPROCS.",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs per workload and peer (default 5)")
    ap.add_argument("--suite", default="all", metavar="SUITE",
                    help="core (runtime core), prim (primitives), loop (event loop), io (echo over loopback), "
                         "a comma-separated list of them, or all (default)")
    ap.add_argument("--only", action="append", metavar="WORKLOAD",
                    help="run only this workload (repeatable or comma-separated): %s" % ", ".join(ALL_WORKLOADS))
    ap.add_argument("--peers", help="comma-separated subset of: %s" % ", ".join(ALL_PEER_NAMES))
    ap.add_argument("--taskset", metavar="CPUS", help="run every program under `taskset -c CPUS`")
    ap.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown to FILE")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per run before it counts as a hang (default 120)")
    ap.add_argument("--no-build", action="store_true", help="use the programs already built in bench/out")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="build parallelism")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="SEC",
                    help="before each repetition wait up to SEC seconds for other processes to leave the CPUs idle")
    ap.add_argument("--max-noise", type=float, default=0.2, metavar="CPUS",
                    help="a run during which other processes used more than CPUS CPUs on average is measured "
                         "again (default 0.2)")
    ap.add_argument("--retries", type=int, default=3, help="re-measurements of a noisy run (default 3)")
    ap.add_argument("--noise-budget", type=float, default=180, metavar="SEC",
                    help="at most SEC seconds in all go to waiting for idle CPUs and to re-measurements "
                         "(default 180); past it, noisy runs are kept and marked *")
    ap.add_argument("--warm-mb", type=int, default=256, metavar="MB",
                    help="before each run, touch and free MB MiB of memory, so that no peer pays the VM's "
                         "first-touch faults (default 256; 0: off)")
    ap.add_argument("--verbose", action="store_true", help="print every run as it finishes")
    ap.add_argument("--check", metavar="BASELINE",
                    help="regression check (CI): measure skein and its baseline's peer on the baseline's workloads "
                         "and exit 1 if a skein/peer ratio exceeds the recorded one by more than its tolerance")
    ap.add_argument("--write-baseline", metavar="FILE",
                    help="after the runs, record the skein/TBB ratios of the core workloads measured as a baseline")
    ap.add_argument("--from-json", metavar="FILE",
                    help="run nothing: print (and with --markdown write) the tables of a saved results*.json")
    args = ap.parse_args()

    baseline = None
    if args.check:
        with open(args.check) as f:
            baseline = json.load(f)
        # The check measures exactly what the baseline recorded.
        args.suite = "core"
        args.only = [",".join(baseline["ratios"])]
        args.peers = "skein," + baseline["peer"]

    if args.from_json:
        results, workloads, peers, meta = load_json(args.from_json)
        return report(results, workloads, peers, meta, args.markdown)

    wanted_suites = [x.strip() for x in args.suite.split(",") if x.strip()]
    bad = [x for x in wanted_suites if x not in SUITES + ["all"]]
    if bad or not wanted_suites:
        ap.error("unknown --suite %s; choose from %s, all" % (", ".join(bad) or "''", ", ".join(SUITES)))
    suites = SUITES if "all" in wanted_suites else [x for x in SUITES if x in wanted_suites]
    workloads = [w for suite in suites for w in SUITE_WORKLOADS[suite]]
    if args.only:
        wanted = [w.strip() for item in args.only for w in item.split(",") if w.strip()]
        bad = [w for w in wanted if w not in ALL_WORKLOADS]
        if bad:
            ap.error("unknown workload(s) %s; choose from %s" % (", ".join(bad), ", ".join(ALL_WORKLOADS)))
        outside = [w for w in wanted if w not in workloads]
        if outside:
            ap.error("workload(s) %s not in --suite %s" % (", ".join(outside), args.suite))
        workloads = [w for w in workloads if w in wanted]
    suites = [s_ for s_ in suites if any(SUITE_OF[w] == s_ for w in workloads)]
    peers = list(ALL_PEER_NAMES)
    if args.peers:
        wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
        bad = [p for p in wanted if p not in PEER_TITLE]
        if bad:
            ap.error("unknown peer(s) %s" % ", ".join(bad))
        peers = [p for p in peers if p in wanted]
    if args.taskset and not shutil.which("taskset"):
        sys.exit("--taskset: the taskset program is not installed")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    # The skein revision the programs were built from (the tree may change
    # while the runs go on), kept next to the build for --no-build.
    rev_file = os.path.join(BUILD, "skein-revision.txt")
    if not args.no_build:
        build(args.jobs, ["skein_core", "tbb_core"] if baseline else None)
        revision = skein_revision()
        with open(rev_file, "w") as f:
            f.write(revision + "\n")
    else:
        try:
            with open(rev_file) as f:
                revision = f.read().strip()
        except OSError:
            revision = skein_revision() + " (at run time; --no-build)"

    # (suite, peer) -> program, for the peers that were built
    available = {}
    for suite in suites:
        for name, title, prog in SUITE_PEERS[suite]:
            if name not in peers:
                continue
            if os.access(prog, os.X_OK):
                available[(suite, name)] = prog
            else:
                log("note: %s is not built (%s), its column shows 'not built'" % (title, prog))

    results = {}
    for wl in workloads:
        for (suite, p) in available:
            if suite == SUITE_OF[wl] and p in ALL_WORKLOADS[wl][1]:
                results[(wl, p)] = Cell()

    t_start = time.monotonic()
    busy_seen = []
    reruns = noisy_kept = 0
    noise_spent = 0.0  # seconds spent waiting for idle CPUs and on discarded runs
    order = {suite: [p for (s_, p) in available if s_ == suite] for suite in suites}
    for rep in range(args.repeat):
        if args.wait_idle > 0 and noise_spent < args.noise_budget:
            t0 = time.monotonic()
            busy = wait_idle(min(args.wait_idle, args.noise_budget - noise_spent))
            noise_spent += time.monotonic() - t0
        else:
            busy = cpu_busy(0.5)
        if busy is not None:
            busy_seen.append(busy)
        rotated = {}
        for suite, o in order.items():
            k = rep % len(o) if o else 0
            rotated[suite] = o[k:] + o[:k]
        log("repetition %d/%d (order: %s)" % (rep + 1, args.repeat,
                                              "; ".join("%s: %s" % (s_, ", ".join(o)) for s_, o in rotated.items())))
        for wl in workloads:
            suite = SUITE_OF[wl]
            for p in rotated[suite]:
                cell = results.get((wl, p))
                if cell is None or cell.errors:  # a failed cell is not re-run
                    continue
                for attempt in range(args.retries + 1):
                    rep_ = run_one(available[(suite, p)], ALL_WORKLOADS[wl][1][p], args.taskset, args.timeout,
                                   args.warm_mb)
                    other = rep_.get("other_cpus", 0.0)
                    if "error" in rep_ or other <= args.max_noise:
                        break
                    if attempt == args.retries or noise_spent >= args.noise_budget:
                        noisy_kept += 1
                        rep_["noisy"] = True
                        log("  %-10s %-6s other processes used %.2f CPUs during the run; kept, marked noisy (%s)"
                            % (wl, p, other, "retries exhausted" if attempt == args.retries else "noise budget spent"))
                        break
                    reruns += 1
                    log("  %-10s %-6s other processes used %.2f CPUs during the run: measuring again" % (wl, p, other))
                    t0 = time.monotonic()
                    wait_idle(min(5.0, max(0.0, args.noise_budget - noise_spent)))
                    noise_spent += time.monotonic() - t0 + rep_.get("wall_s", 0.0)
                if "error" in rep_:
                    cell.errors.append(rep_)
                    log("  %-10s %-6s %s: %s" % (wl, p, rep_["error"], rep_["detail"]))
                else:
                    cell.runs.append(rep_)
                    if args.verbose:
                        lat = " %8.2f µs" % rep_["lat_us"] if "lat_us" in rep_ else ""
                        if "p99_us" in rep_:
                            lat += " (p99 %.0f µs, %.0f round trips/s)" % (rep_["p99_us"], rep_["rtps"])
                        log("  %-10s %-6s %9.1f ms%s %8.1f MB  (others: %.2f CPUs)"
                            % (wl, p, rep_["ms"], lat, rep_["rss_mb"], rep_.get("other_cpus", 0.0)))
    elapsed = time.monotonic() - t_start

    meta = {"taskset": args.taskset, "repeat": args.repeat, "revision": revision, "busy_seen": busy_seen,
            "suites": suites,
            "reruns": reruns, "noisy_kept": noisy_kept, "elapsed": elapsed,
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}
    raw = dict(meta, workloads=workloads, peers=peers,
               runs=[{"workload": wl, "peer": p, "runs": c.runs, "errors": c.errors} for (wl, p), c in results.items()])
    os.makedirs(OUT, exist_ok=True)
    name = "results%s%s.json" % ("" if suites == SUITES else "-" + "-".join(suites),
                                 "-taskset" + args.taskset.replace(",", "_") if args.taskset else "")
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(raw, f, indent=1)
    status = report(results, workloads, peers, meta, args.markdown)
    if args.write_baseline:
        write_baseline(args.write_baseline, results, workloads, meta)
    if baseline is not None:
        status = max(status, check_baseline(baseline, results))
    return status


def skein_ratio(results, wl, peer):
    """skein's median time / the peer's, or None if either is missing."""
    a, b = results.get((wl, "skein")), results.get((wl, peer))
    if not a or not b or not a.ok() or not b.ok():
        return None
    return a.median("ms") / b.median("ms")


def write_baseline(path, results, workloads, meta, peer="tbb", tolerance=0.5):
    ratios = {wl: round(r, 3) for wl in workloads
              if SUITE_OF[wl] == "core" and (r := skein_ratio(results, wl, peer)) is not None}
    if not ratios:
        sys.exit("--write-baseline: no core workload has both skein and %s measured" % peer)
    data = {"peer": peer, "tolerance": tolerance, "ratios": ratios,
            "recorded": "%s, %s" % (meta["revision"], meta["date"]),
            "machine": machine_line(meta["taskset"], meta["repeat"], meta["revision"], meta.get("date"))}
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    log("wrote %s" % path)


def check_baseline(baseline, results):
    """Prints each ratio against its limit; 1 if one exceeds it (or could not be measured)."""
    peer, tol = baseline["peer"], float(baseline.get("tolerance", 0.5))
    title = PEER_TITLE.get(peer, peer)
    print("\nRegression check against %s (recorded %s): fails above the recorded ratio x %.2f"
          % (title, baseline.get("recorded", "?"), 1 + tol))
    print("%-10s  %8s  %8s  %8s  %s" % ("workload", "recorded", "limit", "now", "verdict"))
    bad = 0
    for wl, rec in baseline["ratios"].items():
        limit = rec * (1 + tol)
        now = skein_ratio(results, wl, peer)
        if now is None:
            verdict, bad = "NOT MEASURED", bad + 1
            now_txt = "-"
        else:
            now_txt = "%.2f×" % now
            verdict = "ok" if now <= limit else "REGRESSION"
            bad += now > limit
        print("%-10s  %7.2f×  %7.2f×  %8s  %s" % (wl, rec, limit, now_txt, verdict))
    print("regression check: %s" % ("passed" if not bad else "FAILED (%d workload(s))" % bad))
    return 1 if bad else 0


def load_json(path):
    """Results saved by an earlier run, for --from-json."""
    with open(path) as f:
        raw = json.load(f)
    results = {}
    for item in raw["runs"]:
        c = Cell()
        c.runs, c.errors = item["runs"], item["errors"]
        results[(item["workload"], item["peer"])] = c
    workloads = raw.get("workloads") or [w for w in ALL_WORKLOADS if any(k[0] == w for k in results)]
    peers = raw.get("peers") or [p for p in ALL_PEER_NAMES if any(k[1] == p for k in results)]
    meta = {k: raw.get(k) for k in ("taskset", "repeat", "revision", "busy_seen", "reruns", "noisy_kept",
                                    "elapsed", "date", "suites")}
    meta["suites"] = meta["suites"] or [s_ for s_ in SUITES if any(SUITE_OF.get(w) == s_ for w in workloads)]
    meta["busy_seen"] = meta["busy_seen"] or []
    meta["reruns"] = meta["reruns"] or 0
    meta["noisy_kept"] = meta["noisy_kept"] if meta["noisy_kept"] is not None else sum(
        1 for c in results.values() for r in c.runs if r.get("noisy"))
    meta["repeat"] = meta["repeat"] or max((len(c.runs) for c in results.values()), default=0)
    meta["revision"] = meta["revision"] or "skein (revision not recorded)"
    return results, workloads, peers, meta


def suite_section(results, suite, workloads, peers, repeat, heading):
    """One suite's tables, targets and notes: (text, markdown lines)."""
    wls = [w for w in workloads if SUITE_OF.get(w) == suite]
    sp = [name for name, _, _ in SUITE_PEERS[suite] if name in peers]
    text, md = [], []
    if heading:
        text += ["", "== %s ==" % SUITE_TITLE[suite]]
        md += ["#### %s" % SUITE_TITLE[suite], ""]
    targets = target_lines(results, wls)
    versions = versions_line(results, sp, suite)
    if suite == "core":
        time_table, rss_table = build_tables(results, wls, sp)
        spread = spread_table(results, wls, sp)
        per_task = per_task_line(results, sp) if "parked" in wls else ""
        notes = footnotes(wls, sp)
        text += ["", "Time (median ms)", render_text([time_table])]
        if repeat > 1:
            text += ["Time spread over the %d runs" % repeat, render_text([spread])]
        text += ["Peak RSS (median MB)", render_text([rss_table])]
        if per_task:
            text.append(per_task)
        md += ["**Time** (median ms of %d runs; ratio = skein ÷ peer, below 1 means skein is faster)" % repeat, "",
               render_md(*time_table), "",
               "**Peak RSS** (median MB; ratio = skein ÷ peer)", "", render_md(*rss_table), ""]
        if repeat > 1:
            md += ["<details><summary>Time spread (min–max ms over the %d runs)</summary>" % repeat, "",
                   render_md(*spread), "", "</details>", ""]
        if per_task:
            md += [per_task, ""]
    elif suite == "io":
        thr, lat, spread = io_tables(results, wls, sp)
        notes = IO_FOOTNOTES
        text += ["", "Throughput (median, thousands of round trips per second; ratio = skein ÷ peer, above 1 means "
                 "skein is faster)", render_text([thr])]
        if repeat > 1:
            text += ["Throughput spread over the %d runs" % repeat, render_text([spread])]
        text += ["Round-trip latency (median of the runs' p99 and p50, µs; ratio = skein ÷ peer, below 1 means "
                 "skein is faster)", render_text([lat])]
        md += ["**Throughput** (median of %d runs, thousands of round trips per second; ratio = skein ÷ peer, "
               "above 1 means skein is faster)" % repeat, "", render_md(*thr), "",
               "**Round-trip latency** (median of the runs' p99 and p50, µs; ratio = skein ÷ peer, below 1 means "
               "skein is faster)", "", render_md(*lat), ""]
        if repeat > 1:
            md += ["<details><summary>Throughput spread (min–max k/s over the %d runs)</summary>" % repeat, "",
                   render_md(*spread), "", "</details>", ""]
    else:
        table, spread = op_tables(results, wls, sp)
        notes = PRIM_FOOTNOTES if suite == "prim" else LOOP_FOOTNOTES
        text += ["", "%s: ns per operation or median latency in µs (median of runs)" % SUITE_TITLE[suite],
                 render_text([table])]
        if repeat > 1:
            text += ["Spread over the %d runs (same units)" % repeat, render_text([spread])]
        md += ["**%s** (median of %d runs: ns per operation, or the median latency in µs; ratio = skein ÷ peer, "
               "below 1 means skein is faster)" % (SUITE_TITLE[suite], repeat), "", render_md(*table), ""]
        if repeat > 1:
            md += ["<details><summary>Spread (min–max over the %d runs, same units)</summary>" % repeat, "",
                   render_md(*spread), "", "</details>", ""]
    text += ["Target " + t for t in targets]
    if versions:
        text.append(versions)
    text.append("Workloads: " + "; ".join("%s = %s" % (w, ALL_WORKLOADS[w][0]) for w in wls))
    text += ["Note: " + f for f in notes]
    md += ["Targets:", ""] + ["- " + md_escape(t) for t in targets] + [""] if targets else []
    if versions:
        md += ["_%s_" % versions, ""]
    md += ["- " + f for f in notes] + [""]
    return text, md


def report(results, workloads, peers, meta, markdown):
    """Prints the tables (and writes them as Markdown); returns the exit status."""
    repeat = meta["repeat"]
    suites = [s_ for s_ in SUITES if any(SUITE_OF.get(w) == s_ for w in workloads)]
    machine = machine_line(meta["taskset"], repeat, meta["revision"], meta.get("date"))
    if meta["busy_seen"]:
        machine += "; background CPU load before each repetition %s" % "/".join(
            "%.0f%%" % (b * 100) for b in meta["busy_seen"])
    machine += "; %d run(s) repeated because other processes were busy, %d noisy run(s) kept" % (
        meta["reruns"], meta["noisy_kept"])
    if meta["noisy_kept"]:
        machine += (" (medians use the clean runs when at least half are clean; cells whose median includes"
                    " noisy runs are marked *)")
    failures = [(wl, p, e) for (wl, p), c in results.items() for e in c.errors]

    md = []
    for suite in suites:
        text, md_part = suite_section(results, suite, workloads, peers, repeat, heading=len(suites) > 1)
        print("\n".join(text))
        md += md_part
    print(machine)
    if meta.get("elapsed") is not None:
        print("(runs took %.0f s)" % meta["elapsed"])
    for wl, p, e in failures:
        print("FAILED %s/%s: %s %s" % (wl, p, e["error"], e["detail"]))

    if markdown:
        md += ["_%s_" % md_escape(machine), ""]
        with open(markdown, "w") as f:
            f.write("\n".join(md).rstrip("\n") + "\n")
        log("wrote %s" % markdown)

    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
