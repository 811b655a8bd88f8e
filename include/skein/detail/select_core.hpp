#pragma once
// The engine behind skein::select: one wait over several primitives, of which
// exactly one completes.
//
// Protocol (Go's select, on skein's waiter core):
//  1. Poll. Every case that consumes or produces (a Queue's get or put) names
//     its primitive's lock; the engine takes all those locks in address order
//     and polls every case once, in a random order. The first case that can
//     complete does so and wins; with several ready, each is equally likely.
//  2. Register (no case was ready and there is no default). Still under those
//     locks, each such case links one ClaimableWaiter of its own, then the
//     locks are released; the other cases (a promise, a stop token, a timer)
//     register after, and may find themselves ready at once.
//  3. Win. A group word says which case won. A primitive that wants to
//     complete an operation with a linked case claims it under its own lock
//     (claim_waiter: a CAS of the group word); a case that only reports
//     readiness (a promise settling, a close, a timer) tries the same CAS from
//     its notification. The winner notifies the owner (a blocked thread or a
//     suspended coroutine); a loser has consumed nothing and produced nothing.
//     A cancel or a deadline "wins" for the owner itself (kAbandoned), so it
//     and a case can never both take effect.
//  4. Withdraw. The owner unlinks every case. One that was no longer linked
//     has a notification in flight: the owner waits for the case's `settled`
//     parker, which the notification sets once it no longer touches the
//     select (and before it wakes the owner, so a coroutine resumed inline
//     never waits for itself).

#include <cstdint>
#include <coroutine>
#include <exception>
#include <utility>

#include "deadline.hpp"
#include "parker.hpp"
#include "runtime.hpp"
#include "spin.hpp"
#include "test_hooks.hpp"
#include "trace_core.hpp"
#include "waiter.hpp"

namespace skein::detail {

/// One case of a select, as the engine sees it.
class SelectCase {
public:
  /// A case that consumes or produces (a Queue's get or put) names its
  /// primitive's lock: the engine holds every such lock while it polls and
  /// links, so nothing completes between "not ready" and "linked".
  [[nodiscard]] virtual const void* lock_key() const noexcept { return nullptr; }
  virtual void lock() noexcept {}
  virtual void unlock() noexcept {}
  /// Completes the case now if it can; true = it fired. A waiter it completed
  /// with (a blocked putter whose item it took) goes to `woken`, notified
  /// once the locks are released.
  virtual bool poll(Waiter*& woken) = 0;
  /// Links `w`, whose notification says the case fired. A case with a lock
  /// is called under it, right after poll said "not ready", and links. One
  /// without may find itself ready: false = not linked, ready now.
  virtual bool link(ClaimableWaiter& w) = 0;
  /// Unlinks `w` if still linked; true if it was (nobody will notify it).
  virtual bool unlink(ClaimableWaiter& w) noexcept = 0;
  /// After this case won: throws what its operation throws (Closed for a put
  /// whose queue was closed while it waited).
  virtual void finish() {}
  /// The `default` case: never polled or linked; chosen when nothing is ready.
  [[nodiscard]] virtual bool is_default() const noexcept { return false; }

  virtual ~SelectCase() = default;

protected:
  SelectCase() = default;
  SelectCase(const SelectCase&) = default;
  SelectCase& operator=(const SelectCase&) = default;
};

inline constexpr std::uint32_t kSelectPending = ~std::uint32_t{0};

/// Which case won (or that the owner gave up).
template <class Sys = OsParking>
class BasicSelectGroup {
public:
  static constexpr std::uint32_t kUndecided = ~std::uint32_t{0}, kAbandoned = kUndecided - 1;

  bool try_win(std::uint32_t i) noexcept {
    std::uint32_t e = kUndecided;
    // acq_rel: the winner's writes (an item handed over) reach the owner,
    // which reads the word with acquire after it wakes.
    return winner_.compare_exchange_strong(e, i, std::memory_order_acq_rel, std::memory_order_acquire);
  }
  [[nodiscard]] std::uint32_t winner() const noexcept { return winner_.load(std::memory_order_acquire); }
  [[nodiscard]] bool decided() const noexcept { return winner() != kUndecided; }
  /// Records the winner while nothing is registered (nobody else can see the word).
  void set_unshared(std::uint32_t i) noexcept { winner_.store(i, std::memory_order_relaxed); }

  Waiter* owner = nullptr;  // notified once, by the winning case

private:
  typename Sys::template Atomic<std::uint32_t> winner_{kUndecided};
};

/// The waiter one case links into its primitive.
template <class Sys = OsParking>
struct BasicSelectCaseWaiter : ClaimableWaiter {
  using Group = BasicSelectGroup<Sys>;
  Group* group = nullptr;
  std::uint32_t index = 0;
  bool registered = false;   // linked by the engine (whether or not still linked)
  BasicParker<Sys> settled;  // notified when this case's notification is done with the select

  BasicSelectCaseWaiter() noexcept {
    claim_fn = [](ClaimableWaiter* w) noexcept {
      auto* c = static_cast<BasicSelectCaseWaiter*>(w);
      if constexpr (inject_select_unclaimed<Sys>()) return true;  // broken on purpose (the model checker's test)
      return c->group->try_win(c->index);
    };
    notify_fn = [](Waiter* w) noexcept {
      auto* c = static_cast<BasicSelectCaseWaiter*>(w);
      Group* g = c->group;
      const std::uint32_t i = c->index;
      // Claimed under the primitive's lock (the word already says i), or a
      // notification that completes nothing (a settle, a close, a timer):
      // then the first to get here wins.
      const std::uint32_t cur = g->winner();
      const bool mine = cur == i || (cur == Group::kUndecided && g->try_win(i));
      Waiter* owner = g->owner;
      // From here the owner may withdraw this case and leave, unless this case
      // won: then it waits for the notification below.
      c->settled.notify();
      if (mine) owner->notify();
    };
  }

  /// After a failed unlink: waits until the notification in flight is done.
  void wait_settled() noexcept {
    using P = BasicParker<Sys>;
    if (settled.spin_while(P::kWaiting, Sys::spin_budget()) == P::kWaiting) settled.wait_while(P::kWaiting);
  }
};

/// A small per-thread generator for the poll order (xorshift); a Sys may
/// give its own (the model checker's must be the same in every execution).
template <class Sys>
std::uint32_t select_random() noexcept {
  if constexpr (requires { Sys::select_random(); }) return Sys::select_random();
  static thread_local std::uint64_t x = 0;
  if (x == 0) x = (reinterpret_cast<std::uintptr_t>(&x) * 0x9E3779B97F4A7C15ull) | 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return static_cast<std::uint32_t>(x >> 32);
}

/// One select: the cases, their waiters and the group. Lives on the selecting
/// thread's stack or in the awaiting coroutine's frame. `scratch` holds 2n
/// entries (the poll order and the lock order).
template <class Sys = OsParking>
class BasicSelector {
public:
  using Sub = BasicSelectCaseWaiter<Sys>;
  using Group = BasicSelectGroup<Sys>;

  BasicSelector(SelectCase* const* cases, Sub* subs, std::uint32_t* scratch, std::uint32_t n) noexcept
      : cases_(cases), subs_(subs), order_(scratch), locks_(scratch + n), n_(n) {}
  BasicSelector(const BasicSelector&) = delete;
  BasicSelector& operator=(const BasicSelector&) = delete;

  /// The fast path: draws the poll order, then polls each case under its own
  /// lock alone. A case found ready this way was ready at that moment, which
  /// is all select promises; only "none is ready" needs every lock at once
  /// (start). Returns the case that completed, or kSelectPending.
  std::uint32_t poll_each() {
    def_ = kSelectPending;
    for (std::uint32_t i = 0; i < n_; ++i) {
      order_[i] = i;
      if (cases_[i]->is_default()) def_ = i;
    }
    for (std::uint32_t i = n_; i > 1; --i) std::swap(order_[i - 1], order_[select_random<Sys>() % i]);
    Waiter* woken = nullptr;
    for (std::uint32_t k = 0; k < n_; ++k) {
      const std::uint32_t i = order_[k];
      if (i == def_) continue;
      SelectCase* c = cases_[i];
      bool fired;
      if (c->lock_key()) {
        c->lock();
        try {
          fired = c->poll(woken);
        } catch (...) {
          c->unlock();
          throw;
        }
        c->unlock();
      } else {
        fired = c->poll(woken);
      }
      if (fired) {
        if (woken) woken->notify();
        group_.set_unshared(i);  // nothing is registered: no locked instruction needed
        return i;
      }
    }
    return kSelectPending;
  }

  /// After poll_each found nothing: polls every case again under all their
  /// locks and, if none is ready and there is no default, registers them all
  /// with `owner` as the waiter to notify. Returns the index of a case that
  /// completed at once (or of the default case), else kSelectPending: then
  /// `owner` is notified once, by the winner, unless abandon() succeeds first.
  std::uint32_t start(Waiter& owner) {
    const std::uint32_t def = def_;
    Waiter* woken = nullptr;
    sort_locks();
    {
      LockAll held(*this);
      for (std::uint32_t k = 0; k < n_; ++k) {
        const std::uint32_t i = order_[k];
        if (i == def) continue;
        if (cases_[i]->poll(woken)) {
          held.release();
          if (woken) woken->notify();
          group_.set_unshared(i);
          return i;
        }
      }
      if (def != kSelectPending) return def;
      group_.owner = &owner;
      for (std::uint32_t k = 0; k < locked_; ++k) {
        const std::uint32_t i = locks_[k];
        prepare(i);
        (void)cases_[i]->link(subs_[i]);  // under its lock, just after "not ready": links
        subs_[i].registered = true;
      }
    }
    for (std::uint32_t k = 0; k < n_; ++k) {
      const std::uint32_t i = order_[k];
      if (cases_[i]->lock_key() || i == def) continue;
      if (group_.decided()) break;  // no need to register the rest
      prepare(i);
      bool linked;
      try {
        linked = cases_[i]->link(subs_[i]);
      } catch (...) {
        // Out of memory registering a case. If no case won yet, the select
        // fails with the error; if one did, it stands (and this case lost).
        if (!abandon()) break;
        withdraw_all();
        throw;
      }
      if (linked) {
        subs_[i].registered = true;
      } else if (group_.try_win(i)) {
        owner.notify();  // ready as it registered: the owner does not wait
      }
    }
    return kSelectPending;
  }

  /// The owner gives up (a cancel, a deadline): true if no case had won, and
  /// then none will.
  bool abandon() noexcept { return group_.try_win(Group::kAbandoned); }

  /// Unlinks every registered case, waiting out notifications in flight.
  void withdraw_all() noexcept {
    for (std::uint32_t i = 0; i < n_; ++i) {
      Sub& s = subs_[i];
      if (!s.registered) continue;
      if (!cases_[i]->unlink(s)) s.wait_settled();
      s.registered = false;
    }
  }

  /// The winning case after the owner was notified.
  [[nodiscard]] std::uint32_t winner() const noexcept { return group_.winner(); }

private:
  void prepare(std::uint32_t i) noexcept {
    subs_[i].group = &group_;
    subs_[i].index = i;
  }
  // The cases with a lock, sorted by lock address (insertion sort: n is small).
  void sort_locks() noexcept {
    locked_ = 0;
    for (std::uint32_t i = 0; i < n_; ++i) {
      if (!cases_[i]->lock_key()) continue;
      std::uint32_t k = locked_++;
      while (k > 0 && key(locks_[k - 1]) > key(i)) {
        locks_[k] = locks_[k - 1];
        --k;
      }
      locks_[k] = i;
    }
  }
  [[nodiscard]] std::uintptr_t key(std::uint32_t i) const noexcept {
    return reinterpret_cast<std::uintptr_t>(cases_[i]->lock_key());
  }
  // Holds every case's lock (each distinct lock once), in address order.
  class LockAll {
  public:
    explicit LockAll(BasicSelector& s) noexcept : s_(s) {
      for (std::uint32_t k = 0; k < s_.locked_; ++k)
        if (k == 0 || s_.key(s_.locks_[k]) != s_.key(s_.locks_[k - 1])) s_.cases_[s_.locks_[k]]->lock();
    }
    ~LockAll() { release(); }
    LockAll(const LockAll&) = delete;
    LockAll& operator=(const LockAll&) = delete;
    void release() noexcept {
      if (released_) return;
      released_ = true;
      for (std::uint32_t k = s_.locked_; k-- > 0;)
        if (k == 0 || s_.key(s_.locks_[k]) != s_.key(s_.locks_[k - 1])) s_.cases_[s_.locks_[k]]->unlock();
    }

  private:
    BasicSelector& s_;
    bool released_ = false;
  };

  SelectCase* const* cases_;
  Sub* subs_;
  std::uint32_t* order_;
  std::uint32_t* locks_;
  std::uint32_t n_;
  std::uint32_t locked_ = 0;
  std::uint32_t def_ = kSelectPending;  // the default case, if any (poll_each)
  Group group_;
};

/// The blocking form: returns the winning case's index (finish() already
/// called), kSelectPending if the deadline passed first; throws Cancelled if
/// the current task is cancelled first (then no case took effect).
template <class Sys = OsParking>
std::uint32_t select_blocking(BasicSelector<Sys>& sel, SelectCase* const* cases,
                              const Clock::time_point* deadline = nullptr) {
  BasicThreadWaiter<Sys> owner;
  owner.kind = "select";
  owner.object = &sel;
  std::uint32_t w = sel.poll_each();
  if (w == kSelectPending) w = sel.start(owner);
  if (w == kSelectPending) {
    WaitStatus s;
    try {
      s = block_wait(
          owner, [&]() noexcept { return sel.abandon(); }, deadline);
    } catch (...) {
      // The pool refused the blocking wait (at its thread bound, or out of
      // memory): block_wait rethrows only once abandon() won, so no case
      // took effect; the cases must still leave their primitives before this
      // frame goes.
      sel.withdraw_all();
      throw;
    }
    sel.withdraw_all();
    if (s == WaitStatus::cancelled) throw_cancelled();
    if (s == WaitStatus::timeout) return kSelectPending;
    w = sel.winner();
  }
  cases[w]->finish();
  return w;
}

/// The coroutine form's core: `co_await` suspends until one case wins;
/// await_resume returns its index (finish() already called) or throws
/// Cancelled if the task was cancelled first.
template <class Sys = OsParking>
class BasicSelectAwait {
  struct Withdraw {
    BasicSelector<Sys>* sel;
    bool operator()() const noexcept { return sel->abandon(); }
  };

public:
  /// `fallback` gives the executor to resume a coroutine that has none on
  /// (else a timer case would resume it on the timer thread).
  BasicSelectAwait(BasicSelector<Sys>& sel, SelectCase* const* cases, Executor* (*fallback)() = nullptr) noexcept
      : sel_(sel), cases_(cases), fallback_(fallback), wait_(Withdraw{&sel}) {}
  BasicSelectAwait(const BasicSelectAwait&) = delete;
  BasicSelectAwait& operator=(const BasicSelectAwait&) = delete;
  [[nodiscard]] WaitReason trace_reason() const noexcept { return {"skein::select", &sel_}; }

  /// The fast path, without suspending: a case ready now completes here.
  bool await_ready() {
    result_ = sel_.poll_each();
    return result_ != kSelectPending;
  }
  bool await_suspend(std::coroutine_handle<> h) {
    wait_.prepare(h);
    if (!wait_.waiter.executor && fallback_) wait_.waiter.executor = fallback_();
    std::uint32_t w;
    try {
      w = sel_.start(wait_.waiter);
    } catch (...) {
      wait_.disarm();
      throw;
    }
    if (w != kSelectPending) {  // decided without registering: do not suspend
      wait_.disarm();
      result_ = w;
      return false;
    }
    waited_ = true;
    return wait_.arm();
  }
  std::uint32_t await_resume() {
    if (waited_) {
      waited_ = false;
      wait_.disarm();
      sel_.withdraw_all();
      if (wait_.waiter.cancelled) throw_cancelled();
      result_ = sel_.winner();
    }
    cases_[result_]->finish();
    return result_;
  }

private:
  BasicSelector<Sys>& sel_;
  SelectCase* const* cases_;
  Executor* (*fallback_)();
  CancellableCoroWait<Withdraw, Sys> wait_;
  std::uint32_t result_ = kSelectPending;
  bool waited_ = false;
};

}  // namespace skein::detail
