// libFuzzer driver for the synchronisation primitives — Queue<int>, WaitGroup,
// Semaphore, Mutex and Pool<int> — checked operation by operation against a
// sequential model written here from docs/api/*.md and CONTRACT.md.
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
// At the end every blocked actor is cancelled, the others stop, and the
// queue's remaining items, the counter and the free permits must equal the
// model's. A divergence prints the operation trace and traps
// (PRIMITIVES_FUZZ_TRACE=1 prints the trace of every input).
//
// Not modelled: real races between threads on one primitive (the thread-form
// calls here are completed by exactly one helper), RWLock, and Queue<T> for
// a T other than int.
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

// --- the world ------------------------------------------------------------------------

struct World;
struct Actor;
skein::Promise<void> actor_main(World* w, Actor* a);

enum class St : std::uint8_t { dead, idle, blocked, pending, dying };
enum class On : std::uint8_t { none, putter, getter, wg, sem, mu };
// Mutex owner in the model.
constexpr int kNoOwner = -1, kRawOwner = -2;

struct Actor {
  int id = 0;
  // real side (written by the actor's coroutine on the loop's thread = this thread)
  std::optional<skein::Context> ctx;
  std::optional<skein::Resolver<Cmd>> mbox;
  bool idle = false, dead = true, has_result = false;
  Outcome result;
  std::unique_lock<skein::Mutex> guard;
  // model side
  St st = St::dead;
  On on = On::none;
  Op blocked_op = kQuit;
  Outcome expect;
  bool cancelled = false;
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
          EXPECT(a.result == a.expect, "actor %d, %s: expected %s, got %s", i, op_name(a.blocked_op),
                 describe(a.expect).c_str(), describe(a.result).c_str());
          note("  (actor " + std::to_string(i) + " resumed from " + op_name(a.blocked_op) + ": " + describe(a.result) +
               ")");
          a.has_result = false;
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
      default: sync_op(c, a, b, in_actor); break;
    }
    if (!skip_poll) settle();
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
        default: o = w->exec_sync(c); break;
      }
    } catch (...) {
      o = current_error();
    }
    // Executor affinity: whoever woke us, we resumed on the loop's thread.
    EXPECT(w->loop.on_loop(), "actor %d resumed from %s outside the loop's thread", a->id, op_name(c.op));
    a->result = std::move(o);
    a->has_result = true;
  }
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
