#pragma once
// lincheck: a small linearizability checker for skein::Queue histories.
//
// A history is a set of completed operations, each with the time it was
// invoked, the time it returned and what it returned. It is linearizable if
// every operation can be given a point between its invocation and its
// response such that, run one after another in that order, a sequential
// queue (QueueModel) gives exactly the observed results.
//
// The search is Wing & Gong's (1993): repeatedly pick an operation that may
// come next (one invoked before the earliest response among the operations
// not yet placed), apply it to the model, recurse, backtrack on a mismatch.
// As in Lowe (2017) and Horn & Kroening (2015), a configuration — the set of
// operations placed so far plus the model's state — is visited at most once:
// two paths that reach the same configuration have the same future.
//
// Timestamps come from one shared counter (Clock below): an operation's
// invocation stamp is taken just before the call and its response stamp just
// after it returns, so A.response < B.invoke means A really finished before
// B started (the counter's read-modify-writes order them).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace lincheck {

/// What was called. The async forms behave as the blocking ones.
enum class Kind : std::uint8_t { put, try_put, put_for, async_put, get, try_get, get_for, async_get, close };
/// What it returned: ok (a put that placed its item, a close), full (try_put
/// false), timeout (put_for false), closed (threw Closed), value (a get that
/// returned an item), empty (a get that returned an empty optional).
enum class Res : std::uint8_t { ok, full, timeout, closed, value, empty };

struct Op {
  int actor = 0;  // thread or coroutine: for printing only
  Kind kind = Kind::close;
  int arg = 0;  // the item of a put
  Res res = Res::ok;
  int value = 0;  // the item a get returned (res == value)
  std::uint64_t invoke = 0, response = 0;
};
using History = std::vector<Op>;

inline bool is_put(Kind k) noexcept {
  return k == Kind::put || k == Kind::try_put || k == Kind::put_for || k == Kind::async_put;
}
inline bool is_get(Kind k) noexcept {
  return k == Kind::get || k == Kind::try_get || k == Kind::get_for || k == Kind::async_get;
}

inline const char* name(Kind k) noexcept {
  switch (k) {
    case Kind::put: return "put";
    case Kind::try_put: return "try_put";
    case Kind::put_for: return "put_for";
    case Kind::async_put: return "async_put";
    case Kind::get: return "get";
    case Kind::try_get: return "try_get";
    case Kind::get_for: return "get_for";
    case Kind::async_get: return "async_get";
    case Kind::close: return "close";
  }
  return "?";
}

/// "put(3) -> ok", "get() -> 7", "try_get() -> empty", "put(4) -> Closed".
inline std::string describe(const Op& op) {
  std::string s = name(op.kind);
  s += is_put(op.kind) ? "(" + std::to_string(op.arg) + ")" : std::string("()");
  s += " -> ";
  switch (op.res) {
    case Res::ok: s += "ok"; break;
    case Res::full: s += "full"; break;
    case Res::timeout: s += "timeout"; break;
    case Res::closed: s += "Closed"; break;
    case Res::value: s += std::to_string(op.value); break;
    case Res::empty: s += "empty"; break;
  }
  return s;
}

/// The shared timestamp source of a recording.
class Clock {
public:
  std::uint64_t stamp() noexcept { return next_.fetch_add(1, std::memory_order_seq_cst); }
  std::uint64_t peek() const noexcept { return next_.load(std::memory_order_seq_cst); }

private:
  std::atomic<std::uint64_t> next_{1};
};

// --- the sequential specification -----------------------------------------------

struct QueueState {
  std::vector<int> items;  // front first (histories are small: erasing the front is cheap)
  bool closed = false;
};

inline std::string describe(const QueueState& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.items.size(); ++i) r += (i ? " " : "") + std::to_string(s.items[i]);
  return r + (s.closed ? "] closed" : "] open");
}

/// skein::Queue as a sequential object (docs/api/queue.md):
/// - a put (any form) places its item iff the queue is open and not full; it
///   throws Closed iff the queue is closed (closed wins over full);
/// - try_put returns false (full) iff open and full; a timed-out put_for is a
///   try_put that found the queue open and full at some point while it waited
///   (its waiting putter was in the queue's list, which only happens while full);
///   a blocking put never reports full;
/// - a get (any form) returns the front item if there is one (also after close:
///   items queued before close are delivered);
/// - try_get and get_for return empty iff the queue is empty (get_for: a
///   timeout, or closed and drained — the same observable result);
///   a blocking get (and async_get) returns empty iff empty *and* closed;
/// - close always succeeds and is idempotent.
/// A blocked put/get is not a separate state: it takes effect at a single
/// point (when its item is placed / taken, or when close wakes it).
class QueueModel {
public:
  explicit QueueModel(std::size_t capacity) noexcept : cap_(capacity) {}
  std::size_t capacity() const noexcept { return cap_; }

  /// Applies `op` with its observed result to `s`. Returns nullptr if that is
  /// what the sequential queue does (s is updated), else why not (s unchanged).
  const char* step(QueueState& s, const Op& op) const {
    const bool full = cap_ != 0 && s.items.size() >= cap_;
    if (is_put(op.kind)) {
      switch (op.res) {
        case Res::ok:
          if (s.closed) return "the queue is closed: a put throws Closed";
          if (full) return "the queue is full: no room for the item";
          s.items.push_back(op.arg);
          return nullptr;
        case Res::closed: return s.closed ? nullptr : "the queue is open: a put throws Closed only once it is closed";
        case Res::full:
        case Res::timeout:
          if ((op.kind == Kind::try_put) != (op.res == Res::full)) return "this form of put cannot return that";
          if (s.closed) return "the queue is closed: it would throw Closed, not fail";
          if (!full) return "there is room: the put would succeed";
          return nullptr;
        default: return "a put returns ok, false or throws Closed";
      }
    }
    if (is_get(op.kind)) {
      switch (op.res) {
        case Res::value:
          if (s.items.empty()) return "the queue is empty";
          if (s.items.front() != op.value) return "that is not the front item";
          s.items.erase(s.items.begin());
          return nullptr;
        case Res::empty:
          if (!s.items.empty()) return "the queue is not empty";
          if ((op.kind == Kind::get || op.kind == Kind::async_get) && !s.closed)
            return "a blocking get returns empty only once the queue is closed";
          return nullptr;
        default: return "a get returns an item or empty";
      }
    }
    if (op.res != Res::ok) return "close returns nothing and never throws";
    s.closed = true;
    return nullptr;
  }

private:
  std::size_t cap_;
};

// --- the checker ---------------------------------------------------------------------

struct Verdict {
  bool linearizable = false;
  bool exhausted = false;          // gave up after `budget` configurations: no answer
  std::size_t states = 0;          // distinct configurations (placed set, model state) visited
  std::vector<std::size_t> order;  // linearizable: a witness order (indices into the
                                   // history); else the longest linearizable prefix found
  std::string explanation;         // for a history that is not linearizable
};

namespace detail {

struct KeyHash {
  std::size_t operator()(const std::vector<std::uint64_t>& k) const noexcept {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the words
    for (std::uint64_t w : k) {
      h ^= w;
      h *= 1099511628211ull;
      h ^= h >> 29;
    }
    return static_cast<std::size_t>(h);
  }
};

}  // namespace detail

/// The history, one line per operation in order of invocation, with the
/// real-time interval of each: "  #3  t1  [ 4, 9]  put(2) -> ok".
inline std::string format(const History& h) {
  std::vector<std::size_t> idx(h.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  // Ties in index order. (Not std::stable_sort: with libstdc++ 12, clang 18
  // and newer report the deprecated std::get_temporary_buffer it calls.)
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    return h[a].invoke != h[b].invoke ? h[a].invoke < h[b].invoke : a < b;
  });
  std::uint64_t base = h.empty() ? 0 : h[idx.front()].invoke;
  std::string r;
  for (std::size_t i : idx) {
    char line[96];
    std::snprintf(line, sizeof line, "  #%-3zu actor %d  [%4llu, %4llu]  ", i, h[i].actor,
                  static_cast<unsigned long long>(h[i].invoke - base),
                  static_cast<unsigned long long>(h[i].response - base));
    r += line + describe(h[i]) + "\n";
  }
  return r;
}

/// Is `h` linearizable with respect to a queue of `capacity` (0 = unbounded)?
/// Every operation must have completed (response >= invoke).
inline Verdict check(const History& h, std::size_t capacity, std::size_t budget = 2'000'000) {
  Verdict v;
  const QueueModel model(capacity);
  const std::size_t n = h.size();
  for (const Op& op : h)
    if (op.response < op.invoke) {
      v.explanation = "malformed history: a response precedes its invocation";
      return v;
    }

  // Events: a call and a return per operation, in time order (at equal times,
  // calls first: operations that touch at an instant overlap). Node 0 is the
  // list head; node 1 + 2i is op i's call, node 2 + 2i its return.
  struct Node {
    std::size_t op;
    bool call;
    std::uint64_t t;
  };
  std::vector<Node> nodes(1 + 2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    nodes[1 + 2 * i] = {i, true, h[i].invoke};
    nodes[2 + 2 * i] = {i, false, h[i].response};
  }
  std::vector<std::size_t> order(2 * n);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i + 1;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {  // not stable_sort: see format()
    if (nodes[a].t != nodes[b].t) return nodes[a].t < nodes[b].t;
    if (nodes[a].call != nodes[b].call) return nodes[a].call;
    return a < b;
  });
  constexpr std::size_t nil = static_cast<std::size_t>(-1);
  std::vector<std::size_t> next(nodes.size(), nil), prev(nodes.size(), nil);
  std::size_t last = 0;
  for (std::size_t x : order) {
    next[last] = x;
    prev[x] = last;
    last = x;
  }
  auto unlink = [&](std::size_t x) {
    next[prev[x]] = next[x];
    if (next[x] != nil) prev[next[x]] = prev[x];
  };
  auto relink = [&](std::size_t x) {  // exact reverse of unlink
    next[prev[x]] = x;
    if (next[x] != nil) prev[next[x]] = x;
  };

  const std::size_t words = (n + 63) / 64;
  std::vector<std::uint64_t> placed(words, 0);
  auto key_of = [&](const QueueState& s) {
    std::vector<std::uint64_t> k(placed);
    k.push_back((static_cast<std::uint64_t>(s.items.size()) << 1) | (s.closed ? 1u : 0u));
    for (int x : s.items) k.push_back(static_cast<std::uint32_t>(x));
    return k;
  };
  std::unordered_set<std::vector<std::uint64_t>, detail::KeyHash> seen;

  struct Frame {
    std::size_t call;  // the call node placed
    QueueState before;
  };
  std::vector<Frame> stack;
  QueueState state;
  std::vector<std::size_t> best;  // the longest prefix placed so far

  std::size_t cur = next[0];
  while (next[0] != nil) {
    if (cur == nil) break;  // cannot happen: every remaining call has its return after it
    const Node& e = nodes[cur];
    if (e.call) {
      QueueState after = state;
      if (!model.step(after, h[e.op])) {
        placed[e.op / 64] |= std::uint64_t{1} << (e.op % 64);
        if (seen.insert(key_of(after)).second) {
          if (seen.size() > budget) {
            v.exhausted = true;
            v.states = seen.size();
            v.explanation = "gave up after " + std::to_string(budget) + " configurations";
            return v;
          }
          stack.push_back({cur, std::move(state)});
          state = std::move(after);
          unlink(cur);
          unlink(cur + 1);  // its return
          if (stack.size() > best.size()) {
            best.clear();
            for (const Frame& f : stack) best.push_back(nodes[f.call].op);
          }
          cur = next[0];
          continue;
        }
        placed[e.op / 64] &= ~(std::uint64_t{1} << (e.op % 64));
      }
      cur = next[cur];
    } else {
      // A return: the operation it ends should have been placed before here.
      if (stack.empty()) break;
      Frame f = std::move(stack.back());
      stack.pop_back();
      const std::size_t op = nodes[f.call].op;
      placed[op / 64] &= ~(std::uint64_t{1} << (op % 64));
      relink(f.call + 1);
      relink(f.call);
      state = std::move(f.before);
      cur = next[f.call];
    }
  }
  v.states = seen.size();
  if (next[0] == nil) {
    v.linearizable = true;
    for (const Frame& f : stack) v.order.push_back(nodes[f.call].op);
    return v;
  }

  // Not linearizable: the history, the furthest the search got, and why none
  // of the operations that could come next fits there.
  v.order = best;
  QueueState s;
  std::vector<bool> in(n, false);
  for (std::size_t i : best) {
    (void)model.step(s, h[i]);
    in[i] = true;
  }
  std::uint64_t first_response = ~std::uint64_t{0};
  for (std::size_t i = 0; i < n; ++i)
    if (!in[i]) first_response = std::min(first_response, h[i].response);
  std::string r = "not linearizable (queue capacity " + std::to_string(capacity) + (capacity ? "" : " = unbounded") +
                  "), " + std::to_string(n) + " operations:\n" + format(h);
  r += "longest linearizable prefix (" + std::to_string(best.size()) + " of " + std::to_string(n) + "):";
  for (std::size_t i : best) r += " #" + std::to_string(i);
  r += "\nqueue after it: " + describe(s) + "\nno operation that may come next fits:\n";
  for (std::size_t i = 0; i < n; ++i) {
    if (in[i] || h[i].invoke > first_response) continue;
    QueueState t = s;
    const char* why = model.step(t, h[i]);
    r += "  #" + std::to_string(i) + " " + describe(h[i]) + ": " +
         (why ? why : "fits here, but the search found no way on from there") + "\n";
  }
  v.explanation = std::move(r);
  return v;
}

}  // namespace lincheck
