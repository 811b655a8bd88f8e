// libFuzzer driver for the synchronisation primitives — Queue<int>, WaitGroup,
// Semaphore, Mutex, Pool<int> and TaskGroup — checked operation by operation
// against a sequential model written here from docs/api/*.md and CONTRACT.md.
//
// Input: 3 header bytes (queue capacity, semaphore permits, number of
// actors), then operations of 3 bytes each [op, a, b], at most kMaxOps.
//
// Actors. Several simulated actors issue the operations. Each actor is a
// coroutine bound to its own skein::Context: started with ctx.run() on the
// pool, it hops onto an EventLoop that only the fuzzer thread drives with
// poll(), then waits for commands (a Resolver<Cmd> per command). A blocking
// operation is issued by an actor as `co_await q.async_get()` etc., so it
// really suspends. After every operation the loop is drained with poll() and
// each actor is compared with the model: an actor the model says was woken
// must have finished its operation with exactly the predicted outcome (item,
// empty optional, exception type and message); one the model says is still
// blocked must not have finished. Cancelling an actor's context is an
// operation of its own; an operation may skip the poll that follows it, so a
// cancellation can land between a waiter's wake-up and its resumption (the
// "cancelled waiter neither loses nor duplicates an item" rule).
//
// The fuzzer thread itself issues the thread forms: try_ forms, timed forms
// with 0..100 us timeouts, blocking forms when the model says they return at
// once, and "cross-thread" blocking calls (put/get/wait/acquire/lock/range-for
// that really park the thread) that a helper std::thread completes after
// ~100 us — only when no actor waits ahead, so the outcome is still
// deterministic. Non-blocking operations may also run inside an actor (on the
// loop's thread), which exercises the wake-up path that stays on the loop.
// A thread form blocked inside a pool task is cancelled through the task's
// Context (Cancelled, nothing taken or left behind).
//
// Pool<int> uses real threads: exact totals (each item processed once, the
// sum of values) at wait()/close(), and worker exceptions — std::runtime_error
// or a non-std type — come back with their type, one from wait()/close() and
// the rest through the unhandled-error handler, none lost or duplicated (the
// first one exactly, with one worker); async_submit may suspend until a
// worker thread makes room and must then resume on the loop.
//
// TaskGroup: one group at a time (made by the first g.* operation, remade by
// g.reset), with or without a parent context (TaskGroup(parent), or
// TaskGroup() inside a task of the parent), and a limit. Its tasks — blocking
// functions on the pool, coroutines on the pool, coroutines on the loop —
// are started with run / spawn / try_run from the fuzzer thread (the model
// says whether try_run admits: limit minus the tasks running), or with
// async_run by an actor (which waits in FIFO order for a slot). Each task
// waits for a command of its own (a Resolver) — return a value, throw a
// distinct error (std::runtime_error, a non-std type, Cancelled itself), or
// call the group's wait/async_wait/set_limit from inside (UsageError) — and
// says beforehand what it does once cancelled: let the Cancelled out, return
// a value, or throw. The model predicts every task's end, its Promise's value
// or error (the very exception object), the Cancelled its wait threw (message
// and cause: the first error, the cancel cause, the parent's), tasks(),
// cancelled(), errors() (in order; errors thrown concurrently by tasks
// reacting to one cancellation, in any order among themselves), and what
// wait() / async_wait() report: the first error, else after an outside
// cancellation one of the Cancelled the tasks ended with, else nothing. A
// blocking wait() runs when the model says it returns at once, or while a
// helper thread ends the last task or cancels the group or its parent; a
// blocking run() waits while a helper ends a task; wait() inside a task that
// is then cancelled cancels the group and throws Cancelled. After each
// operation the fuzzer waits (polling the loop) until the tasks started have
// begun to run and tasks() equals the model's count: the tasks' threads are
// real, so this is what makes each outcome deterministic. Nothing reaches the
// unhandled-error handler from a task of the group; ~TaskGroup (g.reset, end
// of input) reports exactly the errors neither wait() nor errors() returned.
// Not driven: set_limit while async_run waits for a slot, and the group's
// end while async_run or async_wait waits on it (these suspended coroutines
// refer to the group's semaphore and to the group itself).
//
// At the end every blocked actor is cancelled, the others stop, and the
// queue's remaining items, the counter and the free permits must equal the
// model's. A divergence prints the operation trace and traps
// (PRIMITIVES_FUZZ_TRACE=1 prints the trace of every input).
//
// Not modelled: real races between threads on one primitive (the thread-form
// calls here are completed by exactly one helper), RWLock, Queue<T> for a T
// other than int, and tasks that a group's task starts in its context.
//
//   clang++ -fsanitize=fuzzer,address,undefined (CMake: -DSKEIN_BUILD_FUZZ=ON)
//   ./primitives_fuzz fuzz/corpus/primitives -runs=3000

#include <skein/skein.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr int kMaxOps = 200;
constexpr int kMaxCross = 12;      // cross-thread blocking calls per input (each ~100 us)
constexpr int kMaxPoolItems = 64;  // Pool submissions per input
constexpr int kMaxActors = 5;

// --- failure reporting --------------------------------------------------------------

std::vector<std::string>* g_trace = nullptr;

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* fmt, ...) {
  std::fprintf(stderr, "\n==== primitives_fuzz: MODEL DIVERGENCE ====\n");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  if (g_trace) {
    std::size_t from = g_trace->size() > 60 ? g_trace->size() - 60 : 0;
    std::fprintf(stderr, "---- last operations (%zu in all) ----\n", g_trace->size());
    for (std::size_t i = from; i < g_trace->size(); ++i) std::fprintf(stderr, "  %s\n", (*g_trace)[i].c_str());
  }
  std::fflush(stderr);
  __builtin_trap();
}

#define EXPECT(cond, ...)           \
  do {                              \
    if (!(cond)) fail(__VA_ARGS__); \
  } while (0)

// --- outcomes -------------------------------------------------------------------------

enum class Kind : std::uint8_t { unit, boolean, value, empty, number, error };
enum class Err : std::uint8_t { none, closed, cancelled, usage, other };

struct Outcome {
  Kind kind = Kind::unit;
  std::int64_t v = 0;
  Err err = Err::none;
  std::string msg;

  static Outcome unit() { return {}; }
  static Outcome boolean(bool b) { return {Kind::boolean, b ? 1 : 0, Err::none, {}}; }
  static Outcome value(int x) { return {Kind::value, x, Err::none, {}}; }
  static Outcome empty() { return {Kind::empty, 0, Err::none, {}}; }
  static Outcome opt(const std::optional<int>& o) { return o ? value(*o) : empty(); }
  static Outcome number(std::int64_t n) { return {Kind::number, n, Err::none, {}}; }
  static Outcome error(Err e, std::string m) { return {Kind::error, 0, e, std::move(m)}; }
  bool operator==(const Outcome&) const = default;
};

std::string describe(const Outcome& o) {
  switch (o.kind) {
    case Kind::unit: return "ok";
    case Kind::boolean: return o.v ? "true" : "false";
    case Kind::value: return "item " + std::to_string(o.v);
    case Kind::empty: return "empty optional";
    case Kind::number: return "number " + std::to_string(o.v);
    case Kind::error: break;
  }
  const char* t = o.err == Err::closed      ? "Closed"
                  : o.err == Err::cancelled ? "Cancelled"
                  : o.err == Err::usage     ? "UsageError"
                                            : "other exception";
  return std::string(t) + "(\"" + o.msg + "\")";
}

Outcome current_error() {
  try {
    throw;
  } catch (const skein::Closed& e) {
    return Outcome::error(Err::closed, e.what());
  } catch (const skein::Cancelled& e) {
    return Outcome::error(Err::cancelled, e.what());
  } catch (const skein::UsageError& e) {
    return Outcome::error(Err::usage, e.what());
  } catch (const std::exception& e) {
    return Outcome::error(Err::other, e.what());
  } catch (...) {
    return Outcome::error(Err::other, "non-std exception");
  }
}

template <class F>
Outcome capture(F&& f) {
  try {
    return f();
  } catch (...) {
    return current_error();
  }
}

// Messages fixed by docs/api/*.md.
const char* const kQueueClosed = "put on a closed Queue";
const char* const kCancelled = "operation cancelled: the task's stop token fired";
const char* const kWgNegative = "negative WaitGroup counter";
const char* const kWgOverflow = "WaitGroup counter overflow";
const char* const kMutexUnlock = "unlock of an unlocked Mutex";
const char* const kSemNegative = "Semaphore::release of a negative number of permits";
const char* const kSemCtorNegative = "a Semaphore needs a non-negative number of permits";
const char* const kSemCtorBig = "a Semaphore's permits must fit in 31 bits";
const char* const kPoolClosed = "submit on a closed Pool";
const char* const kPoolZero = "a Pool needs at least one worker";
const char* const kNotStarted = "task cancelled before it started";
const char* const kGroupSetLimit = "TaskGroup::set_limit while tasks of the group are running";
const char* const kGroupWaitInside = "TaskGroup::wait() called from a task of the group would wait for itself";
const char* const kGroupAsyncWaitInside =
    "TaskGroup::async_wait() called from a task of the group would wait for itself";

std::string sem_bound_msg(std::int64_t n, std::int64_t held, std::int64_t bound) {
  return "Semaphore::release above its bound: releasing " + std::to_string(n) + " permit(s) with " +
         std::to_string(held) + " held (bound " + std::to_string(bound) + ")";
}

// --- operations -------------------------------------------------------------------------

enum Op : std::uint8_t {
  kQAsyncPut,
  kQAsyncGet,
  kQPut,
  kQTryPut,
  kQPutFor,
  kQGet,
  kQTryGet,
  kQGetFor,
  kQClose,
  kQState,
  kQIter,
  kWAdd,
  kWDone,
  kWWait,
  kWWaitFor,
  kWAsyncWait,
  kWCount,
  kSAcquire,
  kSTryAcquire,
  kSTryAcquireFor,
  kSRelease,
  kSAsyncAcquire,
  kSState,
  kSCtor,
  kMLock,
  kMTryLock,
  kMTryLockFor,
  kMUnlock,
  kMAsyncLock,
  kMGuardUnlock,
  kMScoped,
  kMState,
  kCancel,
  kPSubmit,
  kPAsyncSubmit,
  kPWait,
  kPClose,
  kPState,
  kPReset,
  kCancelThread,
  kGRun,
  kGAsyncRun,
  kGFinish,
  kGCancel,
  kGParentCancel,
  kGWait,
  kGAsyncWait,
  kGErrors,
  kGState,
  kGSetLimit,
  kGReset,
  kGWaitInTask,
  kOpCount,
  kQuit = 0xff,
};

const char* const kOpNamesTable[kOpCount] = {
    "q.async_put",
    "q.async_get",
    "q.put",
    "q.try_put",
    "q.put_for",
    "q.get",
    "q.try_get",
    "q.get_for",
    "q.close",
    "q.state",
    "q.range_for",
    "wg.add",
    "wg.done",
    "wg.wait",
    "wg.wait_for",
    "wg.async_wait",
    "wg.count",
    "sem.acquire",
    "sem.try_acquire",
    "sem.try_acquire_for",
    "sem.release",
    "sem.async_acquire",
    "sem.state",
    "Semaphore(bad)",
    "mu.lock",
    "mu.try_lock",
    "mu.try_lock_for",
    "mu.unlock",
    "mu.async_lock",
    "guard.unlock",
    "mu.scoped",
    "mu.locked",
    "cancel",
    "pool.submit",
    "pool.async_submit",
    "pool.wait",
    "pool.close",
    "pool.state",
    "pool.reset",
    "cancel blocked task",
    "g.run",
    "g.async_run",
    "g: a task finishes",
    "g.cancel",
    "g: parent.cancel",
    "g.wait",
    "g.async_wait",
    "g.errors",
    "g.state",
    "g.set_limit",
    "g.reset",
    "g.wait in a cancelled task",
};
const char* op_name(int op) { return op >= 0 && op < kOpCount ? kOpNamesTable[op] : "quit"; }

struct Cmd {
  Op op = kQuit;
  int item = 0;          // queue item / pool item id
  std::int64_t arg = 0;  // wg delta, release count, ctor permits
  int dur_us = 0;        // timed forms
  bool lvalue = false;   // const T& overloads
};

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (!n) return 0;
    --n;
    return *p++;
  }
};

// --- Pool probe -------------------------------------------------------------------------

struct WorkerFault {
  int id;
};

struct PoolProbe {
  std::mutex mu;
  int processed[kMaxPoolItems] = {};
  int value[kMaxPoolItems] = {};
  std::uint8_t behaviour[kMaxPoolItems] = {};  // 0 ok, 1 std::runtime_error, 2 WorkerFault
  std::int64_t sum = 0;

  void process(int id) {
    {
      std::lock_guard lk(mu);
      ++processed[id];
      sum += value[id];
    }
    if (behaviour[id] == 1) throw std::runtime_error("worker fault " + std::to_string(id));
    if (behaviour[id] == 2) throw WorkerFault{id};
  }
};

// The id of a worker error, checking it kept its original type.
int fault_id(std::exception_ptr e, const PoolProbe& probe, const char* where) {
  try {
    std::rethrow_exception(e);
  } catch (const WorkerFault& f) {
    EXPECT(f.id >= 0 && f.id < kMaxPoolItems && probe.behaviour[f.id] == 2,
           "%s: WorkerFault{%d} from an item that did not throw one", where, f.id);
    return f.id;
  } catch (const skein::Closed& x) {
    fail("%s: a worker error came back as Closed(\"%s\")", where, x.what());
  } catch (const skein::Cancelled& x) {
    fail("%s: a worker error came back as Cancelled(\"%s\")", where, x.what());
  } catch (const skein::UsageError& x) {
    fail("%s: a worker error came back as UsageError(\"%s\")", where, x.what());
  } catch (const std::runtime_error& x) {
    int id = -1;
    EXPECT(
        std::sscanf(x.what(), "worker fault %d", &id) == 1 && id >= 0 && id < kMaxPoolItems && probe.behaviour[id] == 1,
        "%s: unexpected std::runtime_error(\"%s\")", where, x.what());
    return id;
  } catch (const std::exception& x) {
    fail("%s: unexpected exception \"%s\"", where, x.what());
  } catch (...) {
    fail("%s: unexpected non-std exception", where);
  }
}

std::mutex g_reports_mu;
std::vector<std::exception_ptr> g_reports;

std::vector<std::exception_ptr> take_reports() {
  std::lock_guard lk(g_reports_mu);
  return std::exchange(g_reports, {});
}

// --- TaskGroup probe ----------------------------------------------------------------------

constexpr int kMaxChildren = 6;      // a group's tasks live at once
constexpr int kMaxChildStarts = 40;  // a group's tasks started per input
constexpr int kFuzzerWaiter = -100;  // the fuzzer thread blocked in g.run(), among the slot waiters

// A non-std error type for the group's tasks to throw.
struct ChildFault {
  int id;
};

// What a task of the group is told to do once it is running.
struct ChildCmd {
  int mode = 0;  // 0 return `value`; 1 throw `err`; 2 check the group's calls refuse it, then return `value`
  int value = 0;
  std::exception_ptr err;
  std::size_t tasks = 0;  // mode 2: g.tasks() the model expects then
};

// How the model says a task of the group ended.
enum class End : std::uint8_t { value, error, cancelled, doomed };

// One task of the group: the fuzzer's side (its command, its kept Promise),
// what the task writes (started, the Cancelled it caught), and the model's.
struct Child {
  int serial = 0;
  int kind = 0;    // 0 a blocking function on the pool, 1 a coroutine on the pool, 2 a coroutine on the loop
  int policy = 0;  // once cancelled: 0 let the Cancelled out, 1 return cancel_value, 2 throw cancel_err
  int cancel_value = 0;
  std::exception_ptr cancel_err;
  std::optional<skein::Resolver<ChildCmd>> mbox;
  std::optional<skein::Promise<int>> prom;  // the handle kept (run/try_run/async_run), if any
  // written by the task
  std::atomic<bool> started{false};
  std::exception_ptr caught;  // the Cancelled its wait threw
  // model
  enum class M : std::uint8_t { free, reserved, running, ended } m = M::free;
  bool expect_start = false;
  End end = End::value;
  int end_value = 0;
  std::exception_ptr end_err;
  bool by_cancel = false;           // its wait threw Cancelled ...
  std::string cancel_msg;           // ... with this message
  std::exception_ptr cancel_cause;  // ... and this cause (also a doomed task's)
};

// One exception that wait() may rethrow: a known one (p), or a task's
// Cancelled not seen yet (child, resolved once that task has been checked),
// or a Cancelled nobody kept a handle to (p null: matched by its message).
struct Cand {
  std::exception_ptr p;
  int child = -1;
  std::string msg;
};
// The model's outcome of wait()/async_wait(): a normal return, or one of `cands`.
struct GOut {
  bool unit = true;
  bool cancelled = false;  // the outside cancellation's Cancelled (carrying `cause`)
  std::vector<Cand> cands;
  std::exception_ptr cause;
};

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}
// A Cancelled's message, with the cause of the cancellation appended (docs/api/context.md).
std::string cancel_text(const char* base, const std::exception_ptr& cause) {
  std::string s = base;
  if (cause) s += " (cause: " + what_of(cause) + ")";
  return s;
}
std::string describe_ep(const std::exception_ptr& e) {
  if (!e) return "nothing";
  try {
    std::rethrow_exception(e);
  } catch (const ChildFault& f) {
    return "ChildFault{" + std::to_string(f.id) + "}";
  } catch (...) {
    return describe(current_error());
  }
}
// Checks that `e` is a skein::Cancelled saying `msg`, with cause `cause`.
void expect_cancelled(const std::exception_ptr& e, const std::string& msg, const std::exception_ptr& cause,
                      const char* what) {
  EXPECT(e, "%s: expected Cancelled(\"%s\"), got nothing", what, msg.c_str());
  bool ok = false;
  std::string got_msg;
  std::exception_ptr got_cause;
  try {
    std::rethrow_exception(e);
  } catch (const skein::Cancelled& c) {
    ok = true;
    got_msg = c.what();
    got_cause = c.cause();
  } catch (...) {
  }
  EXPECT(ok, "%s: expected Cancelled(\"%s\"), got %s", what, msg.c_str(), describe_ep(e).c_str());
  EXPECT(got_msg == msg, "%s: expected Cancelled(\"%s\"), got Cancelled(\"%s\")", what, msg.c_str(), got_msg.c_str());
  EXPECT(got_cause == cause, "%s: Cancelled(\"%s\") carries cause %s, expected %s", what, msg.c_str(),
         describe_ep(got_cause).c_str(), describe_ep(cause).c_str());
}

void expect_no_reports(const char* where) {
  std::lock_guard lk(g_reports_mu);
  EXPECT(g_reports.empty(), "%s: %zu error(s) reached the unhandled-error handler, the first %s", where,
         g_reports.size(), describe_ep(g_reports.front()).c_str());
}

// --- the world ------------------------------------------------------------------------

struct World;
struct Actor;
skein::Promise<void> actor_main(World* w, Actor* a);
int child_sync(World* w, int ci, skein::Promise<ChildCmd> cmd);
skein::Promise<int> child_coro(World* w, int ci, skein::Promise<ChildCmd> cmd);

enum class St : std::uint8_t { dead, idle, blocked, pending, dying };
enum class On : std::uint8_t { none, putter, getter, wg, sem, mu, gslot, gidle };
// Mutex owner in the model.
constexpr int kNoOwner = -1, kRawOwner = -2;

struct Actor {
  int id = 0;
  // real side (written by the actor's coroutine on the loop's thread = this thread)
  std::optional<skein::Context> ctx;
  std::optional<skein::Resolver<Cmd>> mbox;
  bool idle = false, dead = true, has_result = false;
  Outcome result;
  std::exception_ptr err;  // the exception behind `result`, if any
  std::unique_lock<skein::Mutex> guard;
  // model side
  St st = St::dead;
  On on = On::none;
  Op blocked_op = kQuit;
  Outcome expect;
  bool cancelled = false;
  // TaskGroup: the outcome of async_wait (checked instead of `expect`), the
  // task async_run starts, and whether the fuzzer must wait for its wake-up
  // (it may come from another thread).
  std::optional<GOut> gexpect;
  int gchild = -1;
  bool gwait = false;
};

struct QueueModel {
  std::size_t cap = 0;
  bool closed = false;
  std::deque<int> buf;
  std::deque<std::pair<int, int>> putters;  // (actor, item)
  std::deque<int> getters;
};

struct World {
  // Primitives first: destroyed after the loop and the actors.
  skein::Queue<int> q;
  skein::WaitGroup wg;
  skein::Semaphore sem;
  skein::Mutex mu;
  std::unique_ptr<PoolProbe> probe;
  std::unique_ptr<skein::Pool<int>> pool;
  Actor actors[kMaxActors];
  std::vector<skein::Promise<void>> tasks;
  skein::EventLoop loop;
  // The TaskGroup, after the loop (destroyed first), after its parent
  // context and the children's records (which outlive it).
  Child children[kMaxChildren];
  std::optional<skein::Context> gparent;
  std::unique_ptr<skein::TaskGroup> group;

  int nactors;
  std::vector<std::string> trace;
  int next_item = 1;
  int cross_left = kMaxCross;

  // models
  QueueModel qm;
  std::int64_t wg_count = 0;
  std::deque<int> wg_waiters;
  std::int64_t sem_avail, sem_max;
  std::deque<int> sem_waiters;
  bool mu_locked = false;
  int mu_owner = kNoOwner;
  std::deque<int> mu_waiters;
  struct PoolModel {
    bool closed = false;
    std::size_t workers = 0, depth = 0;
    bool unbounded = false, coro = false;
    std::vector<int> since;     // submitted since the last wait()/close()
    std::vector<int> thrown;    // of those, the ones that throw, in order
    std::vector<int> all;       // submitted to this pool
    std::vector<int> rejected;  // submit threw Closed: never processed
    std::int64_t sum = 0;
  } pm;
  int pool_ids = 0;
  struct GroupModel {
    bool has_parent = false;
    std::ptrdiff_t limit = -1;
    bool cancelled = false, by_group = false;  // by_group: cancelled by the group itself (not its parent)
    std::exception_ptr cause;                  // the cause of that cancellation
    // errors(): batches in order; within a batch (errors thrown concurrently
    // by tasks reacting to one cancellation) in any order.
    std::vector<std::vector<std::exception_ptr>> batches;
    std::size_t observed = 0;  // batches returned by wait()/async_wait()/errors()
    bool outside_set = false;  // the Cancelled wait() reports after an outside cancellation: one of these
    std::vector<Cand> outside;
    std::vector<Cand> event_cands;  // tasks that ended with Cancelled in the current event
    std::deque<int> slot_waiters;   // actors in async_run waiting for a slot (or kFuzzerWaiter)
    std::vector<int> idle_waiters;  // actors in async_wait
    std::size_t live = 0;           // tasks of the group not finished
  } gm;
  int child_starts = 0;
  int child_serial = 0;
  int cross_run_child = -1;          // the task a blocked g.run() on the fuzzer thread starts
  std::optional<GOut> gout_pending;  // a fuzzer-thread wait()'s expected outcome, resolved by settle()
  bool group_dirty = false;          // an actor's cancellation changed the group: settle even if told not to

  World(std::size_t cap, std::ptrdiff_t permits, int n)
      : q(cap), sem(permits), nactors(n), sem_avail(permits), sem_max(permits) {
    qm.cap = cap;
    for (int i = 0; i < kMaxActors; ++i) actors[i].id = i;
    g_trace = &trace;
  }
  ~World() { g_trace = nullptr; }

  void note(const std::string& s) { trace.push_back(std::to_string(trace.size()) + ": " + s); }

  // --- actors ---------------------------------------------------------------------------

  void spawn(Actor& a) {
    a.ctx.emplace();
    a.dead = false;
    a.idle = false;
    a.has_result = false;
    tasks.push_back(a.ctx->run(&actor_main, this, &a));
    auto until = std::chrono::steady_clock::now() + 20s;
    while (!a.idle) {
      loop.poll();
      EXPECT(!a.dead, "actor %d died while starting", a.id);
      if (a.idle) break;
      EXPECT(std::chrono::steady_clock::now() < until, "actor %d never reached the loop", a.id);
      std::this_thread::yield();
    }
    a.st = St::idle;
    a.on = On::none;
    a.cancelled = false;
    a.gexpect.reset();
    a.gwait = false;
    a.gchild = -1;
    note("  (actor " + std::to_string(a.id) + " started)");
  }

  // An idle actor for an operation (a dead one is restarted), or -1 if all are blocked.
  int pick(std::uint8_t b) {
    for (int i = 0; i < nactors; ++i) {
      Actor& a = actors[(b + i) % nactors];
      if (a.st == St::dead) spawn(a);
      if (a.st == St::idle) return a.id;
    }
    return -1;
  }

  void send(Actor& a, const Cmd& c) {
    EXPECT(a.idle && a.mbox, "actor %d is not waiting for a command", a.id);
    skein::Resolver<Cmd> r = std::move(*a.mbox);
    a.mbox.reset();
    r.resolve(c);
  }

  // The model wakes actor k with outcome o.
  void wake(int k, Outcome o) {
    Actor& a = actors[k];
    EXPECT(a.st == St::blocked, "model: waking actor %d that is not blocked", k);
    a.st = St::pending;
    a.on = On::none;
    a.expect = std::move(o);
    if (a.blocked_op == kMAsyncLock && a.expect.kind != Kind::error) mu_owner = k;
  }

  void settle() {
    loop.poll();
    if (group) g_quiesce();
    check_actors();
  }

  void check_actors() {
    for (int i = 0; i < nactors; ++i) {
      Actor& a = actors[i];
      switch (a.st) {
        case St::idle:
          EXPECT(a.idle && !a.has_result && !a.dead, "actor %d should be idle (idle=%d result=%d dead=%d)%s%s", i,
                 a.idle, a.has_result, a.dead, a.has_result ? ": it finished with " : "",
                 a.has_result ? describe(a.result).c_str() : "");
          break;
        case St::blocked:
          EXPECT(!a.has_result, "actor %d should still be blocked in %s, but it finished with %s", i,
                 op_name(a.blocked_op), describe(a.result).c_str());
          EXPECT(!a.idle && !a.dead, "actor %d should be blocked in %s (idle=%d dead=%d)", i, op_name(a.blocked_op),
                 a.idle, a.dead);
          break;
        case St::pending:
          EXPECT(a.has_result, "actor %d should have been woken in %s with %s, but was not", i, op_name(a.blocked_op),
                 describe(a.expect).c_str());
          if (a.gexpect) {
            check_gout(*a.gexpect, a.err, ("actor " + std::to_string(i) + ", " + op_name(a.blocked_op)).c_str());
            a.gexpect.reset();
          } else {
            EXPECT(a.result == a.expect, "actor %d, %s: expected %s, got %s", i, op_name(a.blocked_op),
                   describe(a.expect).c_str(), describe(a.result).c_str());
          }
          note("  (actor " + std::to_string(i) + " resumed from " + op_name(a.blocked_op) + ": " + describe(a.result) +
               ")");
          a.has_result = false;
          a.gwait = false;
          if (a.cancelled) {
            EXPECT(a.dead && !a.idle, "actor %d: its context is cancelled, it should have stopped", i);
            a.st = St::dead;
          } else {
            EXPECT(a.idle && !a.dead, "actor %d should be idle after its %s", i, op_name(a.blocked_op));
            a.st = St::idle;
          }
          break;
        case St::dying:
          EXPECT(a.dead && !a.idle && !a.has_result, "actor %d should have stopped (cancelled while idle)", i);
          a.st = St::dead;
          break;
        case St::dead: EXPECT(a.dead && !a.idle && !a.has_result, "actor %d should be stopped", i); break;
      }
    }
  }

  // Issues `c` on an idle actor; `expect` is the model's outcome, or nullopt
  // if the actor blocks (in `on`).
  void issue(Actor& a, const Cmd& c, std::optional<Outcome> expect, On on, bool settle_now = true) {
    a.blocked_op = c.op;
    if (expect) {
      a.st = St::pending;
      a.expect = std::move(*expect);
      a.on = On::none;
      if (c.op == kMAsyncLock) mu_owner = a.id;
    } else {
      a.st = St::blocked;
      a.on = on;
    }
    send(a, c);
    if (settle_now) settle();
  }

  void cancel(Actor& a) {
    note("  cancel actor " + std::to_string(a.id));
    switch (a.st) {
      case St::dead:
      case St::dying: break;
      case St::idle: a.st = St::dying; break;
      case St::pending: a.cancelled = true; break;
      case St::blocked: {
        auto drop = [&](std::deque<int>& l) {
          auto it = std::find(l.begin(), l.end(), a.id);
          EXPECT(it != l.end(), "model: actor %d not in its wait list", a.id);
          l.erase(it);
        };
        switch (a.on) {
          case On::putter: {
            auto it = std::find_if(qm.putters.begin(), qm.putters.end(), [&](auto& p) { return p.first == a.id; });
            EXPECT(it != qm.putters.end(), "model: actor %d not among the putters", a.id);
            qm.putters.erase(it);
            break;
          }
          case On::getter: drop(qm.getters); break;
          case On::wg: drop(wg_waiters); break;
          case On::sem: drop(sem_waiters); break;
          case On::mu: drop(mu_waiters); break;
          case On::gslot: {
            // async_run gives up its place in the slot queue; nothing is started.
            auto it = std::find(gm.slot_waiters.begin(), gm.slot_waiters.end(), a.id);
            EXPECT(it != gm.slot_waiters.end(), "model: actor %d not among the slot waiters", a.id);
            gm.slot_waiters.erase(it);
            g_unreserve(a.gchild);
            a.gchild = -1;
            a.gwait = true;
            group_dirty = true;
            break;
          }
          case On::gidle: {
            // async_wait cancels the group, waits for every task, then throws Cancelled.
            auto it = std::find(gm.idle_waiters.begin(), gm.idle_waiters.end(), a.id);
            EXPECT(it != gm.idle_waiters.end(), "model: actor %d not among the async_wait waiters", a.id);
            gm.idle_waiters.erase(it);
            g_cancel_event(nullptr, true);
            g_after();
            EXPECT(gm.live == 0, "model: the group's tasks did not all end on its cancellation");
            a.gwait = true;
            group_dirty = true;
            break;
          }
          case On::none: fail("model: blocked actor %d waits on nothing", a.id);
        }
        wake(a.id, Outcome::error(Err::cancelled, kCancelled));
        a.cancelled = true;
        break;
      }
    }
    if (a.ctx) a.ctx->cancel();
  }

  // --- queue model ---------------------------------------------------------------------

  enum class Put { placed, full, closed };
  Put q_place(int x) {
    if (qm.closed) return Put::closed;
    if (!qm.getters.empty()) {
      int g = qm.getters.front();
      qm.getters.pop_front();
      wake(g, Outcome::value(x));
      return Put::placed;
    }
    if (qm.cap == 0 || qm.buf.size() < qm.cap) {
      qm.buf.push_back(x);
      return Put::placed;
    }
    return Put::full;
  }
  std::optional<int> q_take() {
    if (qm.buf.empty()) return std::nullopt;
    int x = qm.buf.front();
    qm.buf.pop_front();
    if (!qm.putters.empty()) {
      auto [p, item] = qm.putters.front();
      qm.putters.pop_front();
      qm.buf.push_back(item);
      wake(p, Outcome::unit());
    }
    return x;
  }
  void q_close() {
    if (qm.closed) return;
    qm.closed = true;
    auto putters = std::move(qm.putters);
    auto getters = std::move(qm.getters);
    qm.putters.clear();
    qm.getters.clear();
    for (auto& [p, item] : putters) wake(p, Outcome::error(Err::closed, kQueueClosed));
    for (int g : getters) wake(g, Outcome::empty());
  }
  bool q_would_block_put() const { return !qm.closed && qm.getters.empty() && qm.cap != 0 && qm.buf.size() >= qm.cap; }
  bool q_would_block_get() const { return !qm.closed && qm.buf.empty(); }
  std::int64_t q_state_model() const {
    return static_cast<std::int64_t>(qm.buf.size()) | (std::int64_t{qm.closed} << 20) |
           (static_cast<std::int64_t>(qm.cap) << 24);
  }

  // --- wait group / semaphore / mutex models ------------------------------------------------

  Outcome wg_add(std::int64_t d) {
    std::int64_t c;
    if (__builtin_add_overflow(wg_count, d, &c) || c > 0x7fffffff) return Outcome::error(Err::usage, kWgOverflow);
    if (c < 0) return Outcome::error(Err::usage, kWgNegative);
    wg_count = c;
    if (c == 0) {
      auto ws = std::move(wg_waiters);
      wg_waiters.clear();
      for (int k : ws) wake(k, Outcome::unit());
    }
    return Outcome::unit();
  }
  Outcome sem_release(std::int64_t n) {
    if (n < 0) return Outcome::error(Err::usage, kSemNegative);
    std::int64_t held = sem_max - sem_avail;
    if (n > held) return Outcome::error(Err::usage, sem_bound_msg(n, held, sem_max));
    while (n > 0 && !sem_waiters.empty()) {
      int k = sem_waiters.front();
      sem_waiters.pop_front();
      wake(k, Outcome::unit());
      --n;
    }
    sem_avail += n;
    return Outcome::unit();
  }
  bool sem_try() {
    if (sem_avail == 0) return false;
    --sem_avail;
    return true;
  }
  bool mu_try() {
    if (mu_locked) return false;
    mu_locked = true;
    mu_owner = kRawOwner;
    return true;
  }
  // The lock leaves its owner's guard (if any) and is released or handed on.
  // A guard handed to an actor that has not resumed yet is put in place first.
  void mu_detach_owner_guard() {
    if (mu_owner >= 0) {
      Actor& o = actors[mu_owner];
      if (o.st == St::pending) settle();
      EXPECT(o.guard.owns_lock(), "actor %d should hold a lock guard", o.id);
      o.guard.release();  // the lock is no longer tied to the guard
      mu_owner = kRawOwner;
    }
  }
  Outcome mu_unlock_model() {
    if (!mu_locked) return Outcome::error(Err::usage, kMutexUnlock);
    if (!mu_waiters.empty()) {
      int k = mu_waiters.front();
      mu_waiters.pop_front();
      wake(k, Outcome::unit());  // sets mu_owner = k
    } else {
      mu_locked = false;
      mu_owner = kNoOwner;
    }
    return Outcome::unit();
  }

  // --- synchronous operations: model and execution -------------------------------------------

  // Predicts `c` (already normalised so that it never blocks) and updates the model.
  Outcome model_sync(const Cmd& c) {
    switch (c.op) {
      case kQPut:
      case kQTryPut:
      case kQPutFor: {
        Put r = q_place(c.item);
        if (r == Put::closed) return Outcome::error(Err::closed, kQueueClosed);
        if (c.op == kQPut) {
          EXPECT(r == Put::placed, "model: put would block");
          return Outcome::unit();
        }
        return Outcome::boolean(r == Put::placed);
      }
      case kQGet:
      case kQTryGet:
      case kQGetFor: return Outcome::opt(q_take());
      case kQClose: q_close(); return Outcome::unit();
      case kQState: return Outcome::number(q_state_model());
      case kWAdd: return wg_add(c.arg);
      case kWDone: return wg_add(-1);
      case kWWait: return Outcome::unit();
      case kWWaitFor: return Outcome::boolean(wg_count == 0);
      case kWCount: return Outcome::number(wg_count);
      case kSAcquire: EXPECT(sem_try(), "model: acquire would block"); return Outcome::unit();
      case kSTryAcquire:
      case kSTryAcquireFor: return Outcome::boolean(sem_try());
      case kSRelease: return sem_release(c.arg);
      case kSState: return Outcome::number(sem_avail | (sem_max << 32));
      case kSCtor:
        if (c.arg < 0) return Outcome::error(Err::usage, kSemCtorNegative);
        if (c.arg > 0x7fffffff) return Outcome::error(Err::usage, kSemCtorBig);
        return Outcome::unit();
      case kMLock: EXPECT(mu_try(), "model: lock would block"); return Outcome::unit();
      case kMTryLock:
      case kMTryLockFor: return Outcome::boolean(mu_try());
      case kMUnlock: mu_detach_owner_guard(); return mu_unlock_model();
      case kMScoped: return Outcome::boolean(!mu_locked);  // lock_guard round trip, or try_to_lock fails
      case kMState: return Outcome::number(mu_locked);
      default: fail("model_sync: unexpected op %d", c.op);
    }
  }

  // Runs `c` for real, on whichever thread calls it (the fuzzer's or the loop's).
  Outcome exec_sync(const Cmd& c) {
    return capture([&]() -> Outcome {
      auto d = std::chrono::microseconds(c.dur_us);
      switch (c.op) {
        case kQPut:
          if (c.lvalue) {
            const int v = c.item;
            q.put(v);
          } else {
            q.put(int{c.item});
          }
          return Outcome::unit();
        case kQTryPut:
          if (c.lvalue) {
            const int v = c.item;
            return Outcome::boolean(q.try_put(v));
          }
          return Outcome::boolean(q.try_put(int{c.item}));
        case kQPutFor:
          if (c.lvalue) {
            const int v = c.item;
            return Outcome::boolean(q.put_for(v, d));
          }
          return Outcome::boolean(q.put_for(int{c.item}, d));
        case kQGet: return Outcome::opt(q.get());
        case kQTryGet: return Outcome::opt(q.try_get());
        case kQGetFor: return Outcome::opt(q.get_for(d));
        case kQClose: q.close(); return Outcome::unit();
        case kQState: {
          EXPECT(noexcept(q.capacity()), "capacity() must be noexcept");
          return Outcome::number(static_cast<std::int64_t>(q.size()) | (std::int64_t{q.closed()} << 20) |
                                 (static_cast<std::int64_t>(q.capacity()) << 24));
        }
        case kWAdd: wg.add(c.arg); return Outcome::unit();
        case kWDone: wg.done(); return Outcome::unit();
        case kWWait: wg.wait(); return Outcome::unit();
        case kWWaitFor: return Outcome::boolean(wg.wait_for(d));
        case kWCount: return Outcome::number(wg.count());
        case kSAcquire: sem.acquire(); return Outcome::unit();
        case kSTryAcquire: return Outcome::boolean(sem.try_acquire());
        case kSTryAcquireFor: return Outcome::boolean(sem.try_acquire_for(d));
        case kSRelease: sem.release(static_cast<std::ptrdiff_t>(c.arg)); return Outcome::unit();
        case kSState: return Outcome::number(sem.available() | (static_cast<std::int64_t>(sem.max()) << 32));
        case kSCtor: {
          skein::Semaphore s(static_cast<std::ptrdiff_t>(c.arg));
          EXPECT(s.available() == c.arg && s.max() == c.arg, "Semaphore(%lld): available %lld, max %lld",
                 static_cast<long long>(c.arg), static_cast<long long>(s.available()), static_cast<long long>(s.max()));
          return Outcome::unit();
        }
        case kMLock: mu.lock(); return Outcome::unit();
        case kMTryLock: return Outcome::boolean(mu.try_lock());
        case kMTryLockFor: return Outcome::boolean(mu.try_lock_for(d));
        case kMUnlock: mu.unlock(); return Outcome::unit();
        case kMScoped:
          if (!mu.locked()) {
            {
              std::lock_guard g(mu);
              EXPECT(mu.locked(), "locked() false inside a std::lock_guard");
            }
            return Outcome::boolean(true);
          } else {
            std::unique_lock g(mu, std::try_to_lock);
            return Outcome::boolean(g.owns_lock());
          }
        case kMState: return Outcome::number(mu.locked());
        default: fail("exec_sync: unexpected op %d", c.op);
      }
    });
  }

  // --- cross-thread blocking calls ----------------------------------------------------------

  // Runs `blocking` on this thread while a helper thread runs `helper` after
  // ~100 us; returns blocking's outcome once both are done.
  template <class B, class H>
  Outcome cross(B&& blocking, H&& helper) {
    --cross_left;
    std::thread t([&] {
      std::this_thread::sleep_for(100us);
      helper();
    });
    Outcome o = capture(blocking);
    t.join();
    return o;
  }

  void expect_eq(const Outcome& want, const Outcome& got, const char* what) {
    note(std::string("  -> ") + describe(got));
    EXPECT(want == got, "%s: expected %s, got %s", what, describe(want).c_str(), describe(got).c_str());
  }

  // --- Pool -------------------------------------------------------------------------------

  void pool_create(std::uint8_t a, std::uint8_t b) {
    if (a % 5 == 0) {
      Outcome o = capture([&] {
        skein::Pool<int> p([](int) {}, 0);
        return Outcome::unit();
      });
      expect_eq(Outcome::error(Err::usage, kPoolZero), o, "Pool(f, 0)");
    }
    pm = PoolModel{};
    pm.workers = 1 + a % 3;
    pm.coro = (b & 0x10) != 0;
    bool default_depth = (b & 0x20) != 0;
    pm.depth = default_depth ? pm.workers * 2 : std::size_t{b % 4u};
    pm.unbounded = pm.depth == 0;
    probe = std::make_unique<PoolProbe>();
    pool_ids = 0;
    PoolProbe* pr = probe.get();
    if (pm.coro) {
      auto f = [pr](int id) -> skein::Promise<void> {
        if (id & 1) co_await skein::default_pool().schedule();
        pr->process(id);
      };
      pool = default_depth ? std::make_unique<skein::Pool<int>>(f, pm.workers)
                           : std::make_unique<skein::Pool<int>>(f, pm.workers, pm.depth);
    } else {
      auto f = [pr](int id) { pr->process(id); };
      pool = default_depth ? std::make_unique<skein::Pool<int>>(f, pm.workers)
                           : std::make_unique<skein::Pool<int>>(f, pm.workers, pm.depth);
    }
    note("  (pool: " + std::to_string(pm.workers) + " workers, depth " + std::to_string(pm.depth) +
         (pm.coro ? ", coroutine worker)" : ")"));
    EXPECT(pool->workers() == pm.workers, "pool.workers() = %zu, expected %zu", pool->workers(), pm.workers);
  }

  // Prepares the next item; -1 if the per-input budget is spent.
  int pool_item(std::uint8_t a, std::uint8_t b) {
    if (pool_ids >= kMaxPoolItems) return -1;
    int id = pool_ids++;
    probe->value[id] = b;
    probe->behaviour[id] = static_cast<std::uint8_t>(a % 4 >= 2 ? a % 4 - 1 : 0);
    return id;
  }
  void pool_submitted(int id) {
    pm.since.push_back(id);
    pm.all.push_back(id);
    pm.sum += probe->value[id];
    if (probe->behaviour[id] != 0) pm.thrown.push_back(id);
  }

  // After wait()/close()/~Pool: every item processed exactly once, and the
  // errors = one rethrown (`thrown`, may be null) + the reported ones.
  void pool_check(std::exception_ptr thrown, bool rethrows, const char* where) {
    auto reports = take_reports();
    {
      std::lock_guard lk(probe->mu);
      for (int id : pm.all)
        EXPECT(probe->processed[id] == 1, "%s: item %d processed %d times", where, id, probe->processed[id]);
      for (int id : pm.rejected)
        EXPECT(probe->processed[id] == 0, "%s: item %d was rejected by submit but processed", where, id);
      for (int id = 0; id < kMaxPoolItems; ++id)
        EXPECT(probe->processed[id] <= 1, "%s: item %d processed %d times", where, id, probe->processed[id]);
      EXPECT(probe->sum == pm.sum, "%s: worker sum %lld, expected %lld", where, static_cast<long long>(probe->sum),
             static_cast<long long>(pm.sum));
    }
    std::vector<int> got;
    if (rethrows) {
      if (pm.thrown.empty()) {
        EXPECT(!thrown, "%s threw although no worker failed", where);
      } else {
        EXPECT(thrown, "%s did not rethrow a worker's error (%zu failed)", where, pm.thrown.size());
        int first = fault_id(thrown, *probe, where);
        if (pm.workers == 1)
          EXPECT(first == pm.thrown.front(), "%s rethrew item %d's error, expected the first one, item %d", where,
                 first, pm.thrown.front());
        got.push_back(first);
      }
    }
    for (auto& e : reports) got.push_back(fault_id(e, *probe, where));
    std::vector<int> want = pm.thrown;
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    if (got != want) {
      std::string g, w;
      for (int x : got) g += " " + std::to_string(x);
      for (int x : want) w += " " + std::to_string(x);
      fail("%s: worker errors seen (rethrown + reported):%s; expected:%s", where, g.c_str(), w.c_str());
    }
    pm.thrown.clear();
    pm.since.clear();
  }

  void pool_destroy(const char* where) {
    if (!pool) return;
    pool.reset();
    pool_check(nullptr, false, where);
    probe.reset();
  }

  // --- TaskGroup ----------------------------------------------------------------------------

  std::string child_name(int ci) const { return "task " + std::to_string(children[ci].serial); }

  void group_create(std::uint8_t x) {
    static const std::ptrdiff_t kLimits[] = {-1, 1, 2, 3, 0, 2, -1, 1};
    gm = GroupModel{};
    gm.limit = kLimits[x & 7];
    gm.has_parent = (x & 0x18) != 0x18;
    if (gm.has_parent) {
      gparent.emplace();
      if (x & 0x40) {
        // TaskGroup() inside a task of `parent`: a child of the task's context.
        gparent->run([this] { group = std::make_unique<skein::TaskGroup>(); }).get();
      } else {
        group = std::make_unique<skein::TaskGroup>(*gparent);
      }
      EXPECT(gparent->encloses(group->context()), "a group's context is not a child of its parent");
    } else {
      group = std::make_unique<skein::TaskGroup>();  // outside a task: a root
    }
    EXPECT(!group->cancelled() && group->tasks() == 0, "a new group: cancelled() %d, tasks() %zu", group->cancelled(),
           group->tasks());
    if (gm.limit >= 0 || (x & 0x20)) group->set_limit(gm.limit);
    note("  (TaskGroup" +
         std::string(!gm.has_parent ? "()"
                     : (x & 0x40)   ? "() in a task of parent"
                                    : "(parent)") +
         ", limit " + std::to_string(gm.limit) + ")");
  }

  int g_free_child() const {
    for (int i = 0; i < kMaxChildren; ++i)
      if (children[i].m == Child::M::free) return i;
    return -1;
  }

  // Prepares child slot `ci` for a task of `kind`; `b` picks what it does once cancelled.
  void g_reserve(int ci, int kind, std::uint8_t b) {
    Child& ch = children[ci];
    ch.serial = ++child_serial;
    ch.kind = kind;
    ch.policy = b % 3;
    ch.cancel_value = 1000 + ch.serial;
    ch.cancel_err = (b & 0x10) ? std::make_exception_ptr(ChildFault{1000 + ch.serial})
                               : std::make_exception_ptr(std::runtime_error(child_name(ci) + ": error once cancelled"));
    ch.mbox.emplace();
    ch.prom.reset();
    ch.started.store(false);
    ch.caught = nullptr;
    ch.m = Child::M::reserved;
    ch.expect_start = false;
    ch.end = End::value;
    ch.end_value = 0;
    ch.end_err = nullptr;
    ch.by_cancel = false;
    ch.cancel_msg.clear();
    ch.cancel_cause = nullptr;
    ++child_starts;
    static const char* const kKinds[] = {"blocking function on the pool", "coroutine on the pool",
                                         "coroutine on the loop"};
    static const char* const kPolicies[] = {"lets Cancelled out", "returns a value", "throws"};
    note("  (" + child_name(ci) + ": " + kKinds[kind] + ", once cancelled " + kPolicies[ch.policy] + ")");
  }
  void g_unreserve(int ci) {
    Child& ch = children[ci];
    EXPECT(ch.m == Child::M::reserved, "model: unreserving %s", child_name(ci).c_str());
    ch.mbox.reset();
    ch.m = Child::M::free;
  }

  // The model: task `ci` was started (counted in tasks()). In a cancelled
  // group it fails at once with Cancelled and never runs.
  void g_started(int ci) {
    Child& ch = children[ci];
    ch.m = Child::M::running;
    ++gm.live;
    if (gm.cancelled) {
      ch.cancel_cause = gm.cause;
      g_end(ci, End::doomed);
    } else {
      ch.expect_start = true;
    }
  }

  void g_end(int ci, End e, int v = 0, std::exception_ptr err = nullptr) {
    Child& ch = children[ci];
    EXPECT(ch.m == Child::M::running && gm.live > 0, "model: ending %s, not running", child_name(ci).c_str());
    ch.m = Child::M::ended;
    ch.end = e;
    ch.end_value = v;
    ch.end_err = std::move(err);
    --gm.live;
    if (e == End::cancelled) gm.event_cands.push_back(Cand{nullptr, ci, ch.cancel_msg});
    if (e == End::doomed) gm.event_cands.push_back(Cand{nullptr, ci, cancel_text(kNotStarted, ch.cancel_cause)});
  }

  // The group's context is cancelled (by the group itself, or from outside):
  // every running task's wait throws Cancelled and it does what it was told.
  void g_cancel_event(std::exception_ptr cause, bool by_group) {
    if (gm.cancelled) return;  // the first cancellation counts
    gm.cancelled = true;
    gm.by_group = by_group;
    gm.cause = cause;
    std::vector<std::exception_ptr> batch;
    for (int i = 0; i < kMaxChildren; ++i) {
      Child& ch = children[i];
      if (ch.m != Child::M::running) continue;
      ch.by_cancel = true;
      ch.cancel_msg = cancel_text(kCancelled, cause);
      ch.cancel_cause = cause;
      switch (ch.policy) {
        case 0: g_end(i, End::cancelled); break;
        case 1: g_end(i, End::value, ch.cancel_value); break;
        default:
          batch.push_back(ch.cancel_err);
          g_end(i, End::error, 0, ch.cancel_err);
          break;
      }
    }
    if (!batch.empty()) gm.batches.push_back(std::move(batch));
  }

  // Task `ci` does `c` (the model's side).
  void g_command_model(int ci, const ChildCmd& c) {
    if (c.mode == 1) {
      // Its error is the group's; the first one cancels the group with itself as the cause.
      g_end(ci, End::error, 0, c.err);
      const bool first = gm.batches.empty();
      gm.batches.push_back({c.err});
      if (first) g_cancel_event(c.err, true);
    } else {
      g_end(ci, End::value, c.value);
    }
    g_after();
  }

  // After an event: freed slots go to the waiters in order (a task started in
  // a cancelled group ends at once, freeing its slot again); the outside
  // cancellation's Cancelled is fixed; an idle group wakes async_wait.
  void g_after() {
    while (!gm.slot_waiters.empty() && gm.limit >= 0 && gm.live < static_cast<std::size_t>(gm.limit)) {
      int k = gm.slot_waiters.front();
      gm.slot_waiters.pop_front();
      int ci;
      if (k == kFuzzerWaiter) {
        ci = cross_run_child;
      } else {
        Actor& a = actors[k];
        ci = a.gchild;
        a.gchild = -1;
        wake(k, Outcome::unit());
        a.gwait = true;
      }
      g_started(ci);
    }
    if (gm.cancelled && !gm.by_group && !gm.outside_set && !gm.event_cands.empty()) {
      gm.outside_set = true;
      gm.outside = gm.event_cands;
    }
    gm.event_cands.clear();
    if (gm.live == 0 && !gm.idle_waiters.empty()) {
      GOut o = g_outcome();
      for (int k : gm.idle_waiters) {
        wake(k, Outcome::unit());
        actors[k].gexpect = o;
        actors[k].gwait = true;
      }
      gm.idle_waiters.clear();
    }
  }

  // What wait()/async_wait() report now (and the errors it marks observed).
  GOut g_outcome() {
    GOut o;
    if (!gm.batches.empty()) {
      o.unit = false;
      for (auto& e : gm.batches.front()) o.cands.push_back(Cand{e, -1, {}});
    } else if (gm.outside_set) {
      o.unit = false;
      o.cancelled = true;
      o.cands = gm.outside;
      o.cause = gm.cause;
    }
    gm.observed = gm.batches.size();
    return o;
  }

  std::string describe_gout(const GOut& o) const {
    if (o.unit) return "a normal return";
    std::string s = "one of:";
    for (auto& c : o.cands) s += " [" + (c.p ? describe_ep(c.p) : "Cancelled(\"" + c.msg + "\")") + "]";
    return s;
  }

  void check_gout(const GOut& o, const std::exception_ptr& e, const char* what) {
    note(std::string("  -> ") + (e ? describe_ep(e) : "ok") + " (" + what + ")");
    if (o.unit) {
      EXPECT(!e, "%s: expected a normal return, got %s", what, describe_ep(e).c_str());
      return;
    }
    EXPECT(e, "%s: expected %s, got a normal return", what, describe_gout(o).c_str());
    bool ok = false;
    for (auto& c : o.cands) {
      EXPECT(c.child < 0, "model: unresolved candidate (task slot %d)", c.child);
      if (c.p) {
        ok = ok || c.p == e;
      } else {
        try {
          std::rethrow_exception(e);
        } catch (const skein::Cancelled& x) {
          ok = ok || c.msg == x.what();
        } catch (...) {
        }
      }
    }
    EXPECT(ok, "%s: got %s, expected %s", what, describe_ep(e).c_str(), describe_gout(o).c_str());
    if (o.cancelled) {
      std::exception_ptr cause;
      try {
        std::rethrow_exception(e);
      } catch (const skein::Cancelled& x) {
        cause = x.cause();
      } catch (...) {
      }
      EXPECT(cause == o.cause, "%s: the Cancelled carries cause %s, expected %s", what, describe_ep(cause).c_str(),
             describe_ep(o.cause).c_str());
    }
  }

  void resolve_cands(std::vector<Cand>& v, int ci, const std::exception_ptr& real) {
    for (auto& c : v)
      if (c.child == ci) {
        c.child = -1;
        c.p = real;
      }
  }

  // A task the model says has ended, checked once it really has: whether it
  // ran, the Cancelled its wait threw, its Promise's value or error.
  void g_check_child(int ci) {
    Child& ch = children[ci];
    const std::string who = child_name(ci);
    EXPECT(ch.started.load() == ch.expect_start, "%s: %s", who.c_str(),
           ch.expect_start ? "never ran" : "ran although the group was cancelled before it started");
    if (ch.by_cancel)
      expect_cancelled(ch.caught, ch.cancel_msg, ch.cancel_cause, (who + ", its wait once cancelled").c_str());
    else
      EXPECT(!ch.caught, "%s: its wait threw %s unexpectedly", who.c_str(), describe_ep(ch.caught).c_str());
    std::exception_ptr real = ch.end == End::cancelled ? ch.caught : nullptr;
    if (ch.prom) {
      EXPECT(ch.prom->ready(), "%s: ended, but its Promise is not settled", who.c_str());
      int v = 0;
      std::exception_ptr pe;
      try {
        v = ch.prom->get();
      } catch (...) {
        pe = std::current_exception();
      }
      const std::string what = who + "'s Promise";
      note("  (" + what + ": " + (pe ? describe_ep(pe) : "value " + std::to_string(v)) + ")");
      switch (ch.end) {
        case End::value:
          EXPECT(!pe && v == ch.end_value, "%s: expected value %d, got %s", what.c_str(), ch.end_value,
                 pe ? describe_ep(pe).c_str() : std::to_string(v).c_str());
          break;
        case End::error:
          EXPECT(pe == ch.end_err, "%s: expected %s (that very exception), got %s", what.c_str(),
                 describe_ep(ch.end_err).c_str(), pe ? describe_ep(pe).c_str() : std::to_string(v).c_str());
          break;
        case End::cancelled:
          EXPECT(pe && pe == ch.caught, "%s: expected the Cancelled its wait threw (%s), got %s", what.c_str(),
                 describe_ep(ch.caught).c_str(), pe ? describe_ep(pe).c_str() : std::to_string(v).c_str());
          break;
        case End::doomed:
          expect_cancelled(pe, cancel_text(kNotStarted, ch.cancel_cause), ch.cancel_cause, what.c_str());
          real = pe;
          break;
      }
    }
    resolve_cands(gm.outside, ci, real);
    for (auto& a : actors)
      if (a.gexpect) resolve_cands(a.gexpect->cands, ci, real);
    if (gout_pending) resolve_cands(gout_pending->cands, ci, real);
    ch.prom.reset();
    ch.mbox.reset();  // if never resolved, its promise is abandoned: nobody holds it any more
    ch.m = Child::M::free;
  }

  // Waits until the group is in the state the model says (tasks started have
  // begun to run, the model's tasks() count, the woken actors have their
  // results), polling the loop (some tasks are coroutines on it), then checks
  // the tasks that ended.
  void g_quiesce() {
    auto until = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      bool ok = true;
      for (auto& ch : children)
        if (ch.m == Child::M::running && ch.expect_start && !ch.started.load()) ok = false;
      for (int i = 0; i < nactors; ++i)
        if (actors[i].st == St::pending && actors[i].gwait && !actors[i].has_result) ok = false;
      // Every start is counted by now (above): tasks() only goes down.
      if (ok && group->tasks() == gm.live) break;
      if (std::chrono::steady_clock::now() > until) {
        std::string s;
        for (int i = 0; i < kMaxChildren; ++i)
          if (children[i].m == Child::M::running)
            s += " " + child_name(i) + (children[i].started.load() ? "(running)" : "(not started)");
        fail("TaskGroup never reached the model's state: tasks() = %zu, expected %zu; running:%s", group->tasks(),
             gm.live, s.c_str());
      }
      std::this_thread::yield();
      loop.poll();
    }
    for (int i = 0; i < kMaxChildren; ++i)
      if (children[i].m == Child::M::ended) g_check_child(i);
  }

  // Starts task `ci` for real with run (api 0), spawn (1) or try_run (2);
  // false if try_run declined.
  bool g_start_real(int api, int ci, bool keep, bool explicit_ex) {
    Child& ch = children[ci];
    skein::Promise<ChildCmd> cmd = ch.mbox->promise();
    auto go = [&](auto&& start_run, auto&& start_try) -> bool {
      if (api == 2) {
        auto o = start_try();
        if (!o) return false;
        if (keep) ch.prom = std::move(*o);
        return true;
      }
      auto p = start_run();
      if (keep && api == 0) ch.prom = std::move(p);
      return true;
    };
    skein::TaskGroup& g = *group;
    if (ch.kind == 2)
      return go([&] { return g.run(loop, &child_coro, this, ci, cmd); },
                [&] { return g.try_run(loop, &child_coro, this, ci, cmd); });
    if (explicit_ex) {
      auto& pool = skein::default_pool();
      if (ch.kind == 0)
        return go([&] { return g.run(pool, &child_sync, this, ci, cmd); },
                  [&] { return g.try_run(pool, &child_sync, this, ci, cmd); });
      return go([&] { return g.run(pool, &child_coro, this, ci, cmd); },
                [&] { return g.try_run(pool, &child_coro, this, ci, cmd); });
    }
    if (ch.kind == 0) {
      if (api == 1) {
        g.spawn(&child_sync, this, ci, cmd);
        return true;
      }
      return go([&] { return g.run(&child_sync, this, ci, cmd); },
                [&] { return g.try_run(&child_sync, this, ci, cmd); });
    }
    if (api == 1) {
      g.spawn(&child_coro, this, ci, cmd);
      return true;
    }
    return go([&] { return g.run(&child_coro, this, ci, cmd); }, [&] { return g.try_run(&child_coro, this, ci, cmd); });
  }

  std::vector<int> g_running(bool pool_only) const {
    std::vector<int> v;
    for (int i = 0; i < kMaxChildren; ++i)
      if (children[i].m == Child::M::running && (!pool_only || children[i].kind != 2)) v.push_back(i);
    return v;
  }
  bool g_loop_child_running() const { return g_running(false).size() != g_running(true).size(); }
  bool g_free_slot() const { return gm.limit < 0 || gm.live < static_cast<std::size_t>(gm.limit); }

  // What a running task is told to do.
  ChildCmd g_make_cmd(int ci, std::uint8_t a, std::uint8_t b) {
    ChildCmd c;
    c.value = a * 7 + b;
    c.tasks = gm.live;
    const std::string who = child_name(ci);
    switch (b % 6) {
      case 0:
      case 1: c.mode = 0; break;
      case 2: c.mode = 1, c.err = std::make_exception_ptr(std::runtime_error(who + " fails")); break;
      case 3: c.mode = 1, c.err = std::make_exception_ptr(ChildFault{children[ci].serial}); break;
      case 4: c.mode = 1, c.err = std::make_exception_ptr(skein::Cancelled(who + " throws Cancelled itself")); break;
      default: c.mode = 2; break;
    }
    note("  (" + who + (c.mode == 1 ? " throws " + describe_ep(c.err) : " returns " + std::to_string(c.value)) +
         (c.mode == 2 ? ", after calling the group's wait/async_wait/set_limit from inside" : "") + ")");
    return c;
  }

  void group_op(Op op, std::uint8_t a, std::uint8_t b) {
    if (!group) group_create(a ^ b);
    switch (op) {
      case kGRun: g_run(a, b); break;
      case kGAsyncRun: g_async_run(a, b); break;
      case kGFinish: {
        auto running = g_running(false);
        if (running.empty()) break;
        int ci = running[a % running.size()];
        ChildCmd c = g_make_cmd(ci, a, b);
        g_command_model(ci, c);
        children[ci].mbox->resolve(c);
        break;
      }
      case kGCancel: {
        std::exception_ptr cause;
        if (a & 1) cause = std::make_exception_ptr(std::runtime_error("group cause " + std::to_string(a)));
        note("  (g.cancel(" + std::string(cause ? describe_ep(cause) : "") + "))");
        g_cancel_event(cause, true);
        g_after();
        group->cancel(cause);
        if (a & 2) group->cancel(std::make_exception_ptr(std::runtime_error("ignored cause")));  // idempotent
        break;
      }
      case kGParentCancel: {
        if (!gm.has_parent) break;
        std::exception_ptr cause;
        if (a & 1) cause = std::make_exception_ptr(std::runtime_error("parent cause " + std::to_string(a)));
        note("  (parent.cancel(" + std::string(cause ? describe_ep(cause) : "") + "))");
        g_cancel_event(cause, false);
        g_after();
        gparent->cancel(cause);
        break;
      }
      case kGWait: g_wait(a, b); break;
      case kGAsyncWait: {
        if (!gm.slot_waiters.empty()) break;  // (its outcome would race the tasks those start)
        int k = pick(a);
        if (k < 0) {
          cancel(actors[a % nactors]);
          break;
        }
        Actor& act = actors[k];
        note("  by actor " + std::to_string(k));
        Cmd c;
        c.op = kGAsyncWait;
        if (gm.live == 0) {
          act.gexpect = g_outcome();
          act.gwait = true;
          issue(act, c, Outcome::unit(), On::none);
        } else {
          gm.idle_waiters.push_back(k);
          issue(act, c, std::nullopt, On::gidle);
        }
        break;
      }
      case kGErrors: {
        auto got = group->errors();
        std::size_t total = 0;
        for (auto& bt : gm.batches) total += bt.size();
        note("  -> " + std::to_string(got.size()) + " error(s)");
        EXPECT(got.size() == total, "g.errors(): %zu errors, expected %zu", got.size(), total);
        std::size_t pos = 0;
        for (auto& bt : gm.batches) {
          std::vector<std::exception_ptr> part(got.begin() + static_cast<std::ptrdiff_t>(pos),
                                               got.begin() + static_cast<std::ptrdiff_t>(pos + bt.size()));
          for (auto& e : bt) {
            auto it = std::find(part.begin(), part.end(), e);
            EXPECT(it != part.end(), "g.errors(): %s missing at positions %zu..%zu (or out of order)",
                   describe_ep(e).c_str(), pos, pos + bt.size() - 1);
            part.erase(it);
          }
          pos += bt.size();
        }
        gm.observed = gm.batches.size();
        break;
      }
      case kGState: {
        EXPECT(group->tasks() == gm.live, "g.tasks() = %zu, expected %zu", group->tasks(), gm.live);
        EXPECT(group->cancelled() == gm.cancelled, "g.cancelled() = %d, expected %d", group->cancelled(), gm.cancelled);
        EXPECT(group->context().cancelled() == gm.cancelled, "g.context().cancelled() = %d, expected %d",
               group->context().cancelled(), gm.cancelled);
        std::exception_ptr cause = group->context().cause();
        if (!gm.cancelled)
          EXPECT(!cause, "g.context().cause() is %s before any cancellation", describe_ep(cause).c_str());
        else if (gm.cause)
          EXPECT(cause == gm.cause, "g.context().cause() is %s, expected %s", describe_ep(cause).c_str(),
                 describe_ep(gm.cause).c_str());
        else
          expect_cancelled(cause, "context cancelled", nullptr, "g.context().cause()");
        break;
      }
      case kGSetLimit: {
        static const std::ptrdiff_t kSet[] = {-1, 0, 1, 2, 3, 1, 2, -7};
        const std::ptrdiff_t n = kSet[a & 7];
        // Not while async_run waits for a slot: that one waits on the limit's semaphore.
        if (!gm.slot_waiters.empty()) break;
        Outcome want = gm.live > 0 ? Outcome::error(Err::usage, kGroupSetLimit) : Outcome::unit();
        Outcome got = capture([&] {
          group->set_limit(n);
          return Outcome::unit();
        });
        expect_eq(want, got, ("g.set_limit(" + std::to_string(n) + ")").c_str());
        if (gm.live == 0) gm.limit = n;
        break;
      }
      case kGReset:
        group_teardown("~TaskGroup");
        group_create(a);
        break;
      case kGWaitInTask: g_wait_in_task(); break;
      default: fail("group_op: unexpected op %d", op);
    }
    settle();
    group_dirty = false;
    expect_no_reports(op_name(op));
  }

  void g_run(std::uint8_t a, std::uint8_t b) {
    int api = a % 3;  // run, spawn, try_run
    const int kind = (a / 3) % 3;
    const bool keep = (b & 4) != 0, explicit_ex = (b & 8) != 0;
    if (child_starts >= kMaxChildStarts) return;
    int ci = g_free_child();
    if (ci < 0) return;
    const bool free_slot = g_free_slot();
    if (!free_slot && api != 2) {
      // run() would block: while a helper thread ends a task on the pool
      // (nobody else waiting for a slot, and no async_wait, which may see the
      // group idle for a moment before our task starts), or else try_run.
      auto pool_running = g_running(true);
      if (api == 0 && (b & 0x80) && cross_left > 0 && gm.slot_waiters.empty() && gm.idle_waiters.empty() &&
          !pool_running.empty()) {
        cross_run(ci, kind, keep, explicit_ex, pool_running[a % pool_running.size()], a, b);
        return;
      }
      api = 2;
    }
    g_reserve(ci, kind, b);
    static const char* const kApi[] = {"g.run", "g.spawn", "g.try_run"};
    note(std::string("  (") + kApi[api] + (keep ? ", Promise kept" : "") + ")");
    bool admitted = g_start_real(api, ci, keep, explicit_ex);
    EXPECT(admitted == free_slot, "g.try_run: %s, but %zu task(s) run with limit %td",
           admitted ? "started a task" : "declined", gm.live, gm.limit);
    if (!admitted) {
      note("  -> declined");
      g_unreserve(ci);
      return;
    }
    g_started(ci);
    g_after();
  }

  void cross_run(int ci, int kind, bool keep, bool explicit_ex, int ending, std::uint8_t a, std::uint8_t b) {
    g_reserve(ci, kind, b);
    note("  (cross-thread: g.run blocked for a slot, helper ends " + child_name(ending) + ")");
    ChildCmd c = g_make_cmd(ending, a, static_cast<std::uint8_t>(b % 4 == 3 ? 2 : b % 3));  // a value, or an error
    cross_run_child = ci;
    gm.slot_waiters.push_back(kFuzzerWaiter);
    g_command_model(ending, c);  // its slot comes to us
    EXPECT(gm.slot_waiters.empty(), "model: the blocked g.run did not get the slot");
    Outcome got = cross(
        [&] {
          (void)g_start_real(0, ci, keep, explicit_ex);
          return Outcome::unit();
        },
        [&] { children[ending].mbox->resolve(c); });
    expect_eq(Outcome::unit(), got, "blocked g.run");
    cross_run_child = -1;
  }

  void g_async_run(std::uint8_t a, std::uint8_t b) {
    if (child_starts >= kMaxChildStarts) return;
    int ci = g_free_child();
    if (ci < 0) return;
    const bool free_slot = g_free_slot();
    if (!free_slot && !gm.idle_waiters.empty()) return;  // (async_wait's outcome would race the starts)
    int k = pick(a);
    if (k < 0) {
      cancel(actors[a % nactors]);
      return;
    }
    Actor& act = actors[k];
    const bool keep = (b & 4) != 0;
    g_reserve(ci, (a / 3) % 2, b);
    note("  by actor " + std::to_string(k) + (keep ? ", Promise kept" : ""));
    Cmd c;
    c.op = kGAsyncRun;
    c.item = ci;
    c.lvalue = keep;
    if (free_slot) {
      g_started(ci);
      g_after();
      act.gwait = true;
      issue(act, c, Outcome::unit(), On::none);
    } else {
      act.gchild = ci;
      gm.slot_waiters.push_back(k);
      issue(act, c, std::nullopt, On::gslot);
    }
  }

  void g_wait(std::uint8_t a, std::uint8_t b) {
    std::exception_ptr e;
    auto do_wait = [&] {
      try {
        group->wait();
      } catch (...) {
        e = std::current_exception();
      }
      return Outcome::unit();
    };
    if (gm.live == 0) {
      GOut o = g_outcome();
      (void)do_wait();
      check_gout(o, e, "g.wait");
      return;
    }
    // Tasks are running: the wait blocks while a helper thread ends them, if
    // none needs the loop (this thread drives it) and no async_run waits.
    auto running = g_running(true);
    if (cross_left <= 0 || g_loop_child_running() || !gm.slot_waiters.empty()) return;
    std::function<void()> helper;
    if (running.size() == 1 && !(b & 1)) {
      int ci = running[0];
      ChildCmd c = g_make_cmd(ci, a, static_cast<std::uint8_t>(b >> 1));
      note("  (cross-thread: g.wait blocked, helper ends " + child_name(ci) + ")");
      g_command_model(ci, c);
      helper = [this, ci, c] { children[ci].mbox->resolve(c); };
    } else {
      std::exception_ptr cause;
      if (b & 4) cause = std::make_exception_ptr(std::runtime_error("cause " + std::to_string(a)));
      const bool parent = (b & 2) && gm.has_parent;
      note(std::string("  (cross-thread: g.wait blocked, helper cancels ") + (parent ? "the parent" : "the group") +
           ")");
      g_cancel_event(cause, !parent);
      g_after();
      if (parent)
        helper = [this, cause] { gparent->cancel(cause); };
      else
        helper = [this, cause] { group->cancel(cause); };
    }
    gout_pending = g_outcome();
    (void)cross(do_wait, helper);
    settle();  // the tasks are checked (and the candidates resolved)
    check_gout(*gout_pending, e, "blocked g.wait");
    gout_pending.reset();
  }

  // wait() inside a task that gets cancelled: the group is cancelled, every
  // task waited for, then Cancelled (the errors stay unobserved).
  void g_wait_in_task() {
    if (gm.live == 0 || cross_left <= 0) return;
    --cross_left;
    note("  (g.wait() in a task of another context, which is then cancelled)");
    g_cancel_event(nullptr, true);
    g_after();
    skein::Context tctx;
    std::atomic<bool> started{false};
    auto task = tctx.run([this, &started] {
      started.store(true);
      group->wait();
    });
    auto until = std::chrono::steady_clock::now() + 20s;
    while (!started.load()) {
      EXPECT(std::chrono::steady_clock::now() < until, "the waiting task never started");
      std::this_thread::yield();
    }
    std::this_thread::sleep_for(100us);  // time to block
    tctx.cancel();
    while (!task.ready()) {  // the loop's tasks need this thread to end
      loop.poll();
      EXPECT(std::chrono::steady_clock::now() < until, "g.wait() in a cancelled task never returned");
      std::this_thread::yield();
    }
    Outcome got = capture([&] {
      task.get();
      return Outcome::unit();
    });
    expect_eq(Outcome::error(Err::cancelled, kCancelled), got, "g.wait() in a cancelled task");
  }

  // ~TaskGroup: nothing may wait on it (async_run, async_wait), no task may
  // need the loop (the destructor blocks this thread); the tasks left are
  // cancelled and waited for, and the errors nobody observed are reported.
  void group_teardown(const char* where) {
    if (!group) return;
    for (int i = 0; i < nactors; ++i)
      if (actors[i].st == St::blocked && (actors[i].on == On::gslot || actors[i].on == On::gidle)) cancel(actors[i]);
    settle();
    if (g_loop_child_running()) {
      note("  (g.cancel() first: tasks on the loop need this thread)");
      g_cancel_event(nullptr, true);
      g_after();
      group->cancel();
      settle();
    }
    EXPECT(gm.slot_waiters.empty() && gm.idle_waiters.empty(), "model: waiters left on the group");
    if (gm.live > 0) g_cancel_event(nullptr, true);
    g_after();
    EXPECT(gm.live == 0, "model: tasks left after the group's cancellation");
    std::vector<std::exception_ptr> want;
    for (std::size_t i = gm.observed; i < gm.batches.size(); ++i)
      want.insert(want.end(), gm.batches[i].begin(), gm.batches[i].end());
    note(std::string("  (") + where + ": " + std::to_string(want.size()) + " unobserved error(s) to report)");
    group.reset();
    for (int i = 0; i < kMaxChildren; ++i) {
      EXPECT(children[i].m == Child::M::free || children[i].m == Child::M::ended, "model: %s left %s",
             child_name(i).c_str(), children[i].m == Child::M::running ? "running" : "reserved");
      if (children[i].m == Child::M::ended) g_check_child(i);
    }
    auto got = take_reports();
    std::string g, w;
    for (auto& x : got) g += " [" + describe_ep(x) + "]";
    for (auto& x : want) w += " [" + describe_ep(x) + "]";
    bool same = got.size() == want.size();
    for (auto& x : want) {
      auto it = std::find(got.begin(), got.end(), x);
      if (it == got.end()) {
        same = false;
        break;
      }
      got.erase(it);
    }
    EXPECT(same, "%s: reported%s; expected (the errors neither wait() nor errors() returned)%s", where, g.c_str(),
           w.c_str());
    gparent.reset();
    gm = GroupModel{};
  }

  // --- one operation --------------------------------------------------------------------------

  void step(std::uint8_t opb, std::uint8_t a, std::uint8_t b) {
    Op op = static_cast<Op>((opb & 0x3f) % kOpCount);
    const bool skip_poll = (opb & 0x80) != 0;
    const bool in_actor = (opb & 0x40) != 0;
    Cmd c;
    c.op = op;
    static const int kDurations[] = {0, 0, 1, 100};
    c.dur_us = kDurations[b % 4];
    c.lvalue = (b & 0x08) != 0;
    note(std::string(op_name(op)) + " a=" + std::to_string(a) + " b=" + std::to_string(b) +
         (in_actor ? " [in actor]" : "") + (skip_poll ? " [no poll]" : ""));

    switch (op) {
      // ---- coroutine forms, issued by actors ----
      case kQAsyncPut:
      case kQAsyncGet:
      case kWAsyncWait:
      case kSAsyncAcquire:
      case kMAsyncLock:
      case kMGuardUnlock:
      case kPAsyncSubmit: {
        settle();
        async_op(c, a, b);
        return;
      }
      case kCancel: cancel(actors[a % nactors]); break;
      case kQIter: range_for(a, b); break;
      case kCancelThread: cancel_blocked_task(a, b); break;
      case kPSubmit:
      case kPWait:
      case kPClose:
      case kPState:
      case kPReset: pool_op(op, a, b); break;
      case kGRun:
      case kGAsyncRun:
      case kGFinish:
      case kGCancel:
      case kGParentCancel:
      case kGWait:
      case kGAsyncWait:
      case kGErrors:
      case kGState:
      case kGSetLimit:
      case kGReset:
      case kGWaitInTask:
        settle();
        group_op(op, a, b);  // settles: the group reaches the model's state before the next operation
        return;
      default: sync_op(c, a, b, in_actor); break;
    }
    // An actor's cancellation that reached the group (async_run, async_wait) is always settled.
    if (!skip_poll || group_dirty) settle();
    group_dirty = false;
  }

  void async_op(Cmd& c, std::uint8_t a, std::uint8_t b) {
    if (c.op == kMGuardUnlock) {
      // The actor holding a guard drops it (on the loop's thread), or the
      // fuzzer thread does if that actor is blocked elsewhere.
      if (mu_owner < 0) {
        Cmd u;
        u.op = kMUnlock;  // no guard around: a plain (maybe misused) unlock
        Outcome want = model_sync(u);
        expect_eq(want, exec_sync(u), "mu.unlock");
        settle();
        return;
      }
      Actor& o = actors[mu_owner];
      if (o.st == St::dead) spawn(o);
      Outcome want = mu_unlock_model_guard();
      if (o.st == St::idle) {
        note("  (actor " + std::to_string(o.id) + " unlocks its guard)");
        issue(o, c, want, On::none);
      } else {
        Outcome got = capture([&] {
          o.guard.unlock();
          return Outcome::unit();
        });
        expect_eq(want, got, "guard.unlock() from the fuzzer thread");
        settle();
      }
      return;
    }
    int k = pick(a);
    if (k < 0) {
      cancel(actors[a % nactors]);
      settle();
      return;
    }
    Actor& act = actors[k];
    note("  by actor " + std::to_string(k));
    switch (c.op) {
      case kQAsyncPut: {
        c.item = next_item++;
        Put r = q_place(c.item);
        if (r == Put::full) {
          qm.putters.emplace_back(k, c.item);
          issue(act, c, std::nullopt, On::putter);
        } else {
          issue(act, c, r == Put::closed ? Outcome::error(Err::closed, kQueueClosed) : Outcome::unit(), On::none);
        }
        break;
      }
      case kQAsyncGet: {
        auto v = q_take();
        if (!v && !qm.closed) {
          qm.getters.push_back(k);
          issue(act, c, std::nullopt, On::getter);
        } else {
          issue(act, c, Outcome::opt(v), On::none);
        }
        break;
      }
      case kWAsyncWait:
        if (wg_count != 0) {
          wg_waiters.push_back(k);
          issue(act, c, std::nullopt, On::wg);
        } else {
          issue(act, c, Outcome::unit(), On::none);
        }
        break;
      case kSAsyncAcquire:
        if (!sem_try()) {
          sem_waiters.push_back(k);
          issue(act, c, std::nullopt, On::sem);
        } else {
          issue(act, c, Outcome::unit(), On::none);
        }
        break;
      case kMAsyncLock:
        if (act.guard.owns_lock()) {  // never re-lock while holding a guard (it would overwrite it)
          cancel(act);
          settle();
          break;
        }
        if (mu_locked) {
          mu_waiters.push_back(k);
          issue(act, c, std::nullopt, On::mu);
        } else {
          mu_locked = true;
          issue(act, c, Outcome::unit(), On::none);  // issue() sets mu_owner
        }
        break;
      case kPAsyncSubmit: {
        if (!pool) pool_create(1, 0);
        int id = pool_item(a, b);
        if (id < 0) break;
        c.item = id;
        if (!pm.unbounded && !pm.closed) {
          // It may suspend until a worker (a real thread) makes room, and is
          // then resumed on the loop from that thread: poll until it is back.
          pool_submitted(id);
          issue(act, c, Outcome::unit(), On::none, false);
          auto until = std::chrono::steady_clock::now() + 20s;
          while (!act.has_result) {
            loop.poll();
            if (act.has_result) break;
            EXPECT(std::chrono::steady_clock::now() < until, "actor %d: pool.async_submit never completed", k);
            std::this_thread::yield();
          }
          settle();
          break;
        }
        if (pm.closed) {
          pm.rejected.push_back(id);
          issue(act, c, Outcome::error(Err::closed, kPoolClosed), On::none);
        } else {
          pool_submitted(id);
          issue(act, c, Outcome::unit(), On::none);
        }
        break;
      }
      default: fail("async_op: unexpected op %d", c.op);
    }
  }

  Outcome mu_unlock_model_guard() {
    // The guard's owner unlocks: hand the lock on, or free it.
    EXPECT(mu_locked, "model: a guard without the lock");
    if (!mu_waiters.empty()) {
      int k = mu_waiters.front();
      mu_waiters.pop_front();
      wake(k, Outcome::unit());
    } else {
      mu_locked = false;
      mu_owner = kNoOwner;
    }
    return Outcome::unit();
  }

  void sync_op(Cmd& c, std::uint8_t a, std::uint8_t b, bool in_actor) {
    // Items for puts; arguments.
    if (c.op == kQPut || c.op == kQTryPut || c.op == kQPutFor) c.item = next_item++;
    if (c.op == kWAdd) {
      static const std::int64_t kDeltas[] = {1,
                                             2,
                                             3,
                                             -1,
                                             -2,
                                             -3,
                                             0,
                                             5,
                                             0x7fffffff,
                                             -0x7fffffff,
                                             0x80000000LL,
                                             std::numeric_limits<std::int64_t>::min(),
                                             std::int64_t{1} << 40,
                                             std::numeric_limits<std::int64_t>::max()};
      std::size_t n = sizeof kDeltas / sizeof kDeltas[0];
      c.arg = kDeltas[a % n];
    }
    if (c.op == kSRelease) {
      static const std::int64_t kCounts[] = {
          1, 1, 2, 3, 0, -1, 4, 0x7fffffff, std::numeric_limits<std::int64_t>::max()};
      c.arg = kCounts[a % (sizeof kCounts / sizeof kCounts[0])];
    }
    if (c.op == kSCtor) {
      static const std::int64_t kPermits[] = {-1,
                                              0x80000000LL,
                                              0x7fffffff,
                                              0,
                                              3,
                                              std::numeric_limits<std::int64_t>::min(),
                                              std::numeric_limits<std::int64_t>::max()};
      c.arg = kPermits[a % (sizeof kPermits / sizeof kPermits[0])];
    }

    // Blocking forms that would block: a cross-thread call when nobody waits
    // ahead of us (and we are on the fuzzer thread), else a zero timeout.
    const bool can_cross = !in_actor && cross_left > 0;
    const bool timed_cross = (b & 0x80) != 0;  // timed forms: wait for a helper instead of timing out
    switch (c.op) {
      case kQPut:
      case kQPutFor:
        if (q_would_block_put()) {
          if (can_cross && qm.putters.empty() && (c.op == kQPut || timed_cross)) return cross_put(c, b);
          if (c.op == kQPut) c.op = kQPutFor;
        }
        break;
      case kQGet:
      case kQGetFor:
        if (q_would_block_get()) {
          if (can_cross && qm.getters.empty() && (c.op == kQGet || timed_cross)) return cross_get(c, b);
          if (c.op == kQGet) c.op = kQGetFor;
        }
        break;
      case kWWait:
      case kWWaitFor:
        if (wg_count != 0) {
          if (can_cross && (c.op == kWWait || timed_cross)) return cross_wait(c);
          if (c.op == kWWait) c.op = kWWaitFor;
        }
        break;
      case kSAcquire:
      case kSTryAcquireFor:
        if (sem_avail == 0) {
          if (can_cross && sem_waiters.empty() && sem_max > 0 && (c.op == kSAcquire || timed_cross))
            return cross_acquire(c);
          if (c.op == kSAcquire) c.op = kSTryAcquireFor;
        }
        break;
      case kMLock:
      case kMTryLockFor:
        if (mu_locked) {
          if (can_cross && mu_waiters.empty() && (c.op == kMLock || timed_cross)) return cross_lock(c);
          if (c.op == kMLock) c.op = kMTryLockFor;
        }
        break;
      default: break;
    }

    if (in_actor) {
      if (c.op == kMUnlock && mu_owner >= 0) settle();  // a guard handed over must be in place first
      int k = pick(a);
      if (k >= 0) {
        note(std::string("  ") + op_name(c.op) + " by actor " + std::to_string(k));
        Outcome want = model_sync(c);
        issue(actors[k], c, want, On::none);
        return;
      }
      settle();
    }
    Outcome want = model_sync(c);
    Outcome got = exec_sync(c);
    expect_eq(want, got, op_name(c.op));
  }

  void cross_put(Cmd& c, std::uint8_t b) {
    const bool close = (b & 0x40) != 0;
    int front = qm.buf.front();
    std::optional<int> helper_got;
    note(close ? "  (cross-thread: blocked put, helper closes)" : "  (cross-thread: blocked put, helper gets)");
    Outcome got = cross(
        [&] {
          if (c.op == kQPut) {
            q.put(int{c.item});
            return Outcome::unit();
          }
          return Outcome::boolean(q.put_for(int{c.item}, 20s));
        },
        [&] {
          if (close)
            q.close();
          else
            helper_got = q.get();
        });
    Outcome want;
    if (close) {
      q_close();
      want = Outcome::error(Err::closed, kQueueClosed);
    } else {
      auto h = q_take();
      EXPECT(helper_got == h, "helper's get: expected item %d, got %s", front,
             helper_got ? std::to_string(*helper_got).c_str() : "empty");
      EXPECT(q_place(c.item) == Put::placed, "model: cross put");
      want = c.op == kQPut ? Outcome::unit() : Outcome::boolean(true);
    }
    expect_eq(want, got, "blocked put");
  }

  void cross_get(Cmd& c, std::uint8_t b) {
    const bool close = (b & 0x40) != 0;
    int x = next_item++;
    note(close ? "  (cross-thread: blocked get, helper closes)" : "  (cross-thread: blocked get, helper puts)");
    Outcome got = cross([&] { return Outcome::opt(c.op == kQGet ? q.get() : q.get_for(20s)); },
                        [&] {
                          if (close)
                            q.close();
                          else
                            q.put(x);
                        });
    Outcome want;
    if (close) {
      q_close();
      want = Outcome::empty();
    } else {
      EXPECT(q_place(x) == Put::placed, "model: cross get");
      want = Outcome::opt(q_take());
    }
    expect_eq(want, got, "blocked get");
  }

  void cross_wait(Cmd& c) {
    std::int64_t n = wg_count;
    note("  (cross-thread: blocked wait, helper counts down " + std::to_string(n) + ")");
    Outcome got = cross(
        [&] {
          if (c.op == kWWait) {
            wg.wait();
            return Outcome::unit();
          }
          return Outcome::boolean(wg.wait_for(20s));
        },
        [&] {
          if (n <= 4)
            for (std::int64_t i = 0; i < n; ++i) wg.done();
          else
            wg.add(-n);
        });
    expect_eq(Outcome::unit(), wg_add(-n), "model");
    expect_eq(c.op == kWWait ? Outcome::unit() : Outcome::boolean(true), got, "blocked wait");
  }

  void cross_acquire(Cmd& c) {
    note("  (cross-thread: blocked acquire, helper releases)");
    Outcome helper;
    Outcome got = cross(
        [&] {
          if (c.op == kSAcquire) {
            sem.acquire();
            return Outcome::unit();
          }
          return Outcome::boolean(sem.try_acquire_for(20s));
        },
        [&] {
          helper = capture([&] {
            sem.release(1);
            return Outcome::unit();
          });
        });
    expect_eq(sem_release(1), helper, "helper's release(1)");
    EXPECT(sem_try(), "model: cross acquire");
    expect_eq(c.op == kSAcquire ? Outcome::unit() : Outcome::boolean(true), got, "blocked acquire");
  }

  void cross_lock(Cmd& c) {
    note("  (cross-thread: blocked lock, helper unlocks)");
    mu_detach_owner_guard();
    Outcome helper;
    Outcome got = cross(
        [&] {
          if (c.op == kMLock) {
            mu.lock();
            return Outcome::unit();
          }
          return Outcome::boolean(mu.try_lock_for(20s));
        },
        [&] {
          helper = capture([&] {
            mu.unlock();
            return Outcome::unit();
          });
        });
    expect_eq(mu_unlock_model(), helper, "helper's unlock()");
    EXPECT(mu_try(), "model: cross lock");
    expect_eq(c.op == kMLock ? Outcome::unit() : Outcome::boolean(true), got, "blocked lock");
  }

  // A thread-form call that blocks inside a task on the pool (get, put,
  // wait, acquire, lock; timed or not) is cancelled through the task's
  // Context: it throws Cancelled, and — nothing else running meanwhile —
  // leaves the primitive exactly as it was (checked by the following ops).
  void cancel_blocked_task(std::uint8_t a, std::uint8_t b) {
    const int which = a % 5;
    const bool blocks = which == 0   ? q_would_block_get()
                        : which == 1 ? q_would_block_put()
                        : which == 2 ? wg_count != 0
                        : which == 3 ? sem_avail == 0
                                     : mu_locked;
    if (!blocks || cross_left <= 0) return;
    --cross_left;
    const bool timed = (b & 1) != 0;
    const int item = next_item++;
    static const char* const kWhat[] = {"q.get", "q.put", "wg.wait", "sem.acquire", "mu.lock"};
    note(std::string("  (task blocked in ") + kWhat[which] + (timed ? " (timed)" : "") + ", then cancelled)");
    skein::Context ctx;
    std::atomic<bool> started{false};
    auto task = ctx.run([this, which, timed, item, &started] {
      started.store(true);
      switch (which) {
        case 0: (void)(timed ? q.get_for(20s) : q.get()); break;
        case 1:
          if (timed)
            (void)q.put_for(item, 20s);
          else
            q.put(item);
          break;
        case 2:
          if (timed)
            (void)wg.wait_for(20s);
          else
            wg.wait();
          break;
        case 3:
          if (timed)
            (void)sem.try_acquire_for(20s);
          else
            sem.acquire();
          break;
        default:
          if (timed)
            (void)mu.try_lock_for(20s);
          else
            mu.lock();
          break;
      }
      fail("a blocking %s returned although nothing could complete it", kWhat[which]);
    });
    auto until = std::chrono::steady_clock::now() + 20s;
    while (!started.load() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    std::this_thread::sleep_for(100us);  // time to block
    ctx.cancel();
    Outcome got = capture([&] {
      task.get();
      return Outcome::unit();
    });
    note("  -> " + describe(got));
    EXPECT(got.kind == Kind::error && got.err == Err::cancelled &&
               (got.msg == kCancelled || got.msg == "task cancelled before it started"),
           "%s blocked in a task, then cancelled: expected Cancelled, got %s", kWhat[which], describe(got).c_str());
  }

  void range_for(std::uint8_t a, std::uint8_t b) {
    std::vector<int> want, got;
    std::size_t available = qm.buf.size() + qm.putters.size();
    if (qm.closed) {
      while (auto v = q_take()) want.push_back(*v);
      for (auto& v : q) got.push_back(v);
    } else if (available > 0) {
      std::size_t k = 1 + a % available;
      for (std::size_t i = 0; i < k; ++i) want.push_back(*q_take());
      for (auto& v : q) {
        got.push_back(v);
        if (got.size() == k) break;
      }
    } else if (qm.getters.empty() && cross_left > 0) {
      int m = b % 4;
      std::vector<int> items;
      for (int i = 0; i < m; ++i) items.push_back(next_item++);
      note("  (cross-thread: range-for on an empty queue, helper puts " + std::to_string(m) + " and closes)");
      (void)cross(
          [&] {
            for (int v : q) got.push_back(v);
            return Outcome::unit();
          },
          [&] {
            for (int x : items) q.put(x);
            q.close();
          });
      for (int x : items) {
        EXPECT(q_place(x) == Put::placed, "model: range-for");
        want.push_back(*q_take());
      }
      q_close();
    } else {
      return;
    }
    if (got != want) {
      std::string g, w;
      for (int x : got) g += " " + std::to_string(x);
      for (int x : want) w += " " + std::to_string(x);
      fail("range-for over the queue: got [%s ], expected [%s ]", g.c_str(), w.c_str());
    }
  }

  void pool_op(Op op, std::uint8_t a, std::uint8_t b) {
    if (op == kPReset) {
      pool_destroy("~Pool");
      pool_create(a, b);
      return;
    }
    if (!pool) pool_create(1, 0);
    switch (op) {
      case kPSubmit: {
        int id = pool_item(a, b);
        if (id < 0) return;
        Outcome got = capture([&] {
          pool->submit(id);
          return Outcome::unit();
        });
        if (pm.closed) {
          expect_eq(Outcome::error(Err::closed, kPoolClosed), got, "pool.submit after close");
          pm.rejected.push_back(id);
        } else {
          expect_eq(Outcome::unit(), got, "pool.submit");
          pool_submitted(id);
        }
        break;
      }
      case kPWait:
      case kPClose: {
        std::exception_ptr thrown;
        try {
          if (op == kPWait)
            pool->wait();
          else
            pool->close();
        } catch (...) {
          thrown = std::current_exception();
        }
        pool_check(thrown, true, op == kPWait ? "pool.wait" : "pool.close");
        if (op == kPClose) pm.closed = true;
        EXPECT(pool->pending() == 0, "pending() = %zu after %s", pool->pending(), op_name(op));
        break;
      }
      case kPState:
        EXPECT(pool->workers() == pm.workers, "pool.workers() = %zu, expected %zu", pool->workers(), pm.workers);
        EXPECT(pool->pending() <= pm.since.size(), "pool.pending() = %zu, but only %zu submitted since wait()",
               pool->pending(), pm.since.size());
        break;
      default: break;
    }
  }

  // --- end of input -------------------------------------------------------------------------

  void finish() {
    note("(end of input)");
    settle();
    for (int i = 0; i < nactors; ++i)
      if (actors[i].st == St::blocked) cancel(actors[i]);
    settle();
    group_teardown("~TaskGroup at the end");
    // Release the mutex: through its guard, else plainly.
    if (mu_locked) {
      Outcome got = capture([&] {
        if (mu_owner >= 0)
          actors[mu_owner].guard.unlock();
        else
          mu.unlock();
        return Outcome::unit();
      });
      expect_eq(Outcome::unit(), got, "final unlock");
      EXPECT(mu_waiters.empty(), "model: mutex waiters left");
      mu_locked = false;
      mu_owner = kNoOwner;
    }
    EXPECT(!mu.locked(), "the mutex is still locked after the final unlock");
    for (auto& a : actors) EXPECT(!a.guard.owns_lock(), "actor %d still holds a guard", a.id);
    for (int i = 0; i < nactors; ++i) {
      Actor& a = actors[i];
      if (a.st == St::idle) {
        Cmd quit;
        send(a, quit);
        a.st = St::dying;
      }
    }
    settle();
    for (auto& t : tasks) {
      Outcome o = capture([&] {
        t.get();
        return Outcome::unit();
      });
      expect_eq(Outcome::unit(), o, "an actor's task");
    }
    // What is left: the queue holds exactly the model's items, in order.
    std::vector<int> left;
    while (auto v = q.try_get()) left.push_back(*v);
    std::vector<int> want(qm.buf.begin(), qm.buf.end());
    EXPECT(qm.putters.empty() && qm.getters.empty(), "model: queue waiters left");
    if (left != want) {
      std::string g, w;
      for (int x : left) g += " " + std::to_string(x);
      for (int x : want) w += " " + std::to_string(x);
      fail("items left in the queue: [%s ], expected [%s ]", g.c_str(), w.c_str());
    }
    EXPECT(wg.count() == wg_count, "final wg.count() %lld, expected %lld", static_cast<long long>(wg.count()),
           static_cast<long long>(wg_count));
    EXPECT(sem.available() == sem_avail, "final sem.available() %lld, expected %lld",
           static_cast<long long>(sem.available()), static_cast<long long>(sem_avail));
    pool_destroy("~Pool at the end");
    auto stray = take_reports();
    EXPECT(stray.empty(), "%zu error(s) reached the unhandled-error handler unexpectedly", stray.size());
  }
};

skein::Promise<void> actor_main(World* w, Actor* a) {
  co_await w->loop.schedule();  // from here on, on the loop's thread
  for (;;) {
    a->mbox.emplace();
    skein::Promise<Cmd> next = a->mbox->promise();
    a->idle = true;
    Cmd c;
    try {
      c = co_await next;
    } catch (const skein::Cancelled&) {
      a->idle = false;
      a->dead = true;
      co_return;
    }
    a->idle = false;
    if (c.op == kQuit) {
      a->dead = true;
      co_return;
    }
    Outcome o;
    a->err = nullptr;
    try {
      switch (c.op) {
        case kQAsyncPut: co_await w->q.async_put(c.item); break;
        case kQAsyncGet: o = Outcome::opt(co_await w->q.async_get()); break;
        case kWAsyncWait: co_await w->wg.async_wait(); break;
        case kSAsyncAcquire: co_await w->sem.async_acquire(); break;
        case kMAsyncLock: {
          std::unique_lock<skein::Mutex> g = co_await w->mu.async_lock();
          EXPECT(g.owns_lock() && w->mu.locked(), "async_lock's guard does not own a locked mutex");
          a->guard = std::move(g);
          break;
        }
        case kMGuardUnlock: a->guard.unlock(); break;
        case kPAsyncSubmit: co_await w->pool->async_submit(c.item); break;
        case kGAsyncRun: {
          Child& ch = w->children[c.item];
          skein::Promise<ChildCmd> cmd = ch.mbox->promise();
          auto started = ch.kind == 0 ? w->group->async_run(&child_sync, w, c.item, cmd)
                                      : w->group->async_run(&child_coro, w, c.item, cmd);
          skein::Promise<int> p = co_await std::move(started);
          EXPECT(p.valid(), "async_run gave an empty Promise");
          if (c.lvalue) ch.prom = std::move(p);
          break;
        }
        case kGAsyncWait: co_await w->group->async_wait(); break;
        default: o = w->exec_sync(c); break;
      }
    } catch (...) {
      o = current_error();
      a->err = std::current_exception();
    }
    // Executor affinity: whoever woke us, we resumed on the loop's thread.
    EXPECT(w->loop.on_loop(), "actor %d resumed from %s outside the loop's thread", a->id, op_name(c.op));
    a->result = std::move(o);
    a->has_result = true;
  }
}

// --- the group's tasks ------------------------------------------------------------------------

// Command mode 2: from inside, the group's waits and set_limit refuse.
int child_poke(World* w, int ci, const ChildCmd& c) {
  skein::TaskGroup& g = *w->group;
  const int s = w->children[ci].serial;
  Outcome o = capture([&] {
    g.wait();
    return Outcome::unit();
  });
  EXPECT(o == Outcome::error(Err::usage, kGroupWaitInside), "task %d: g.wait() inside the group gave %s", s,
         describe(o).c_str());
  o = capture([&] {
    (void)g.async_wait();
    return Outcome::unit();
  });
  EXPECT(o == Outcome::error(Err::usage, kGroupAsyncWaitInside), "task %d: g.async_wait() inside the group gave %s", s,
         describe(o).c_str());
  o = capture([&] {
    g.set_limit(2);
    return Outcome::unit();
  });
  EXPECT(o == Outcome::error(Err::usage, kGroupSetLimit), "task %d: g.set_limit() inside the group gave %s", s,
         describe(o).c_str());
  EXPECT(g.tasks() == c.tasks, "task %d: g.tasks() = %zu from inside, expected %zu", s, g.tasks(), c.tasks);
  EXPECT(!g.cancelled(), "task %d: the group is cancelled while it runs", s);
  auto cur = skein::Context::current();
  EXPECT(cur && g.context().encloses(*cur), "task %d: does not run in the group's context", s);
  return c.value;
}

int child_act(World* w, int ci, const ChildCmd& c) {
  if (c.mode == 1) std::rethrow_exception(c.err);
  if (c.mode == 2) return child_poke(w, ci, c);
  return c.value;
}

int child_sync(World* w, int ci, skein::Promise<ChildCmd> cmd) {
  Child& ch = w->children[ci];
  ch.started.store(true);
  ChildCmd c;
  try {
    c = cmd.get();
  } catch (const skein::Cancelled&) {
    ch.caught = std::current_exception();
    if (ch.policy == 0) throw;
    if (ch.policy == 1) return ch.cancel_value;
    std::rethrow_exception(ch.cancel_err);
  }
  return child_act(w, ci, c);
}

skein::Promise<int> child_coro(World* w, int ci, skein::Promise<ChildCmd> cmd) {
  Child& ch = w->children[ci];
  ch.started.store(true);
  const bool on_loop = ch.kind == 2;
  EXPECT(w->loop.on_loop() == on_loop, "task %d started %s the loop's thread", ch.serial, on_loop ? "outside" : "on");
  ChildCmd c;
  bool cancelled = false;
  try {
    c = co_await cmd;
  } catch (const skein::Cancelled&) {
    ch.caught = std::current_exception();
    if (ch.policy == 0) throw;
    cancelled = true;
  }
  // Executor affinity: it resumed where it was running.
  EXPECT(w->loop.on_loop() == on_loop, "task %d resumed %s the loop's thread", ch.serial, on_loop ? "outside" : "on");
  if (cancelled) {
    if (ch.policy == 1) co_return ch.cancel_value;
    std::rethrow_exception(ch.cancel_err);
  }
  co_return child_act(w, ci, c);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  skein::set_unhandled_error_handler([](std::exception_ptr e) {
    std::lock_guard lk(g_reports_mu);
    g_reports.push_back(e);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  std::size_t cap = in.byte() % 4;
  std::ptrdiff_t permits = in.byte() % 4;
  int nactors = 2 + in.byte() % (kMaxActors - 1);
  World w(cap, permits, nactors);
  w.note("Queue(" + std::to_string(cap) + "), Semaphore(" + std::to_string(permits) + "), " + std::to_string(nactors) +
         " actors");
  for (int i = 0; i < nactors; ++i) w.spawn(w.actors[i]);
  for (int ops = 0; ops < kMaxOps && in.n >= 3; ++ops) {
    std::uint8_t op = in.byte(), a = in.byte(), b = in.byte();
    w.step(op, a, b);
  }
  w.finish();
  static const bool print_trace = std::getenv("PRIMITIVES_FUZZ_TRACE") != nullptr;
  if (print_trace)
    for (auto& line : w.trace) std::fprintf(stderr, "%s\n", line.c_str());
  return 0;
}
