#pragma once
/// skein::select: Go's select statement. Waits on several cases — a Queue get
/// or put, a Promise becoming ready, a stop token (a Context) being cancelled,
/// a deadline — and completes exactly one of them: if several are ready, one
/// chosen uniformly at random; a losing case consumes and produces nothing.
/// With a case_default(), it never waits.
///
///     auto r = skein::select(skein::case_get(jobs), skein::case_after(1s));
///     switch (r.index()) {
///       case 0: if (auto& job = r.get<0>()) handle(*job); break;
///       case 1: timed_out(); break;
///     }
///
/// In a coroutine: `auto r = co_await skein::async_select(...)`.

#include "detail/config.hpp"  // first: the C++20 check

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "context.hpp"
#include "detail/deadline.hpp"
#include "detail/promise_handle.hpp"
#include "detail/select_core.hpp"
#include "detail/stop_token.hpp"
#include "detail/timer_service.hpp"
#include "errors.hpp"
#include "promise.hpp"
#include "queue.hpp"
#include "thread_pool.hpp"

namespace skein {

/// `case_get(q)`: fires with the next item of `q` (Selected::get gives
/// std::optional<T>: empty once `q` is closed and drained).
template <class T>
GetCase<T> case_get(Queue<T>& q) noexcept {
  return GetCase<T>(q);
}

/// `case_put(q, v)`: fires once `v` is queued (or taken, unbuffered). If `q`
/// is closed first, select throws Closed.
template <class T, class U>
  requires std::is_constructible_v<T, U&&>
PutCase<T> case_put(Queue<T>& q, U&& v) {
  return PutCase<T>(q, T(std::forward<U>(v)));
}

/// A select case that fires once a Promise is settled (with a value or an
/// error: read it from the promise afterwards).
class ReadyCase final : public detail::SelectCase {
public:
  explicit ReadyCase(detail::PromiseStateBase* st) noexcept : st_(st) {}
  ReadyCase(ReadyCase&& o) noexcept : st_(o.st_) {}
  ReadyCase& operator=(ReadyCase&&) = delete;
  ~ReadyCase() = default;

  bool poll(detail::Waiter*&) override { return st_->ready(); }
  bool link(detail::ClaimableWaiter& w) override { return st_->enqueue(&w); }
  bool unlink(detail::ClaimableWaiter& w) noexcept override { return st_->withdraw(&w); }

private:
  detail::PromiseStateBase* st_;  // kept alive by the caller's Promise
};

/// `case_ready(p)`: fires once `p` is settled. `p` must outlive the select.
template <class T>
ReadyCase case_ready(const Promise<T>& p) {
  if (!p.valid()) throw UsageError("case_ready on an empty Promise");
  return ReadyCase(detail::state_of(p));
}

/// A select case that fires once a stop token is stopped (a Context cancelled).
class DoneCase final : public detail::SelectCase {
public:
  explicit DoneCase(skein::stop_token tok) noexcept : tok_(std::move(tok)) {}
  DoneCase(DoneCase&& o) noexcept : tok_(std::move(o.tok_)) {}
  DoneCase& operator=(DoneCase&&) = delete;
  ~DoneCase() = default;

  bool poll(detail::Waiter*&) override { return tok_.stop_requested(); }
  bool link(detail::ClaimableWaiter& w) override {
    if (!tok_.stop_possible()) return true;  // never fires; nothing to register
    fired_.store(false, std::memory_order_relaxed);
    cb_.emplace(tok_, OnStop{this, &w});  // runs at once (and notifies) if already stopped
    return true;
  }
  bool unlink(detail::ClaimableWaiter&) noexcept override {
    cb_.reset();  // waits for the callback if it runs on another thread
    return !fired_.load(std::memory_order_acquire);
  }

private:
  struct OnStop {
    DoneCase* self;
    detail::Waiter* w;
    void operator()() const noexcept {
      self->fired_.store(true, std::memory_order_release);
      w->notify();
    }
  };
  skein::stop_token tok_;
  std::atomic<bool> fired_{false};
  detail::StopCallbackSlot<OnStop> cb_;
};

/// `case_done(ctx)`: fires once `ctx` is cancelled (or its deadline passes).
inline DoneCase case_done(const Context& ctx) noexcept { return DoneCase(ctx.token()); }
/// `case_done(token)`: fires once `token`'s source is stopped.
inline DoneCase case_done(skein::stop_token tok) noexcept { return DoneCase(std::move(tok)); }

/// A select case that fires at a deadline (Go's `<-time.After(d)`).
class AfterCase final : public detail::SelectCase {
public:
  explicit AfterCase(detail::Clock::time_point deadline) noexcept { node_.deadline = deadline; }
  AfterCase(AfterCase&& o) noexcept { node_.deadline = o.node_.deadline; }
  AfterCase& operator=(AfterCase&&) = delete;
  ~AfterCase() = default;

  bool poll(detail::Waiter*&) override { return detail::Clock::now() >= node_.deadline; }
  bool link(detail::ClaimableWaiter& w) override {
    if (node_.deadline == detail::kNever) return true;  // never fires
    node_.waiter = &w;
    node_.fire = [](detail::TimerNode* n, bool) noexcept { static_cast<Node*>(n)->waiter->notify(); };
    detail::timer_service().add(&node_);  // may throw std::bad_alloc (then not linked)
    return true;
  }
  bool unlink(detail::ClaimableWaiter&) noexcept override {
    if (node_.deadline == detail::kNever) return true;
    return detail::timer_service().cancel(&node_);
  }

private:
  struct Node : detail::TimerNode {
    detail::Waiter* waiter = nullptr;
  };
  Node node_;
};

/// `case_after(d)`: fires once `d` has passed (counted from this call, as
/// Go's `time.After`). A negative `d` is a UsageError; zero is ready at once.
template <class Rep, class Period>
AfterCase case_after(std::chrono::duration<Rep, Period> d) {
  if (d < d.zero()) throw UsageError("case_after of a negative duration");
  return AfterCase(detail::deadline_after(d));
}
/// `case_until(t)`: fires once the steady clock reaches `t`.
template <class Duration>
AfterCase case_until(std::chrono::time_point<std::chrono::steady_clock, Duration> t) noexcept {
  return AfterCase(std::chrono::time_point_cast<detail::Clock::duration>(t));
}

/// The default case: chosen (at once) when no other case is ready.
class DefaultCase final : public detail::SelectCase {
public:
  DefaultCase() noexcept = default;
  DefaultCase(DefaultCase&&) noexcept {}
  DefaultCase& operator=(DefaultCase&&) = delete;
  ~DefaultCase() = default;
  bool is_default() const noexcept override { return true; }
  bool poll(detail::Waiter*&) override { return false; }
  bool link(detail::ClaimableWaiter&) override { return true; }
  bool unlink(detail::ClaimableWaiter&) noexcept override { return true; }
};
inline DefaultCase case_default() noexcept { return {}; }

namespace detail {
template <class C>
struct case_result {
  using type = void;
};
template <class T>
struct case_result<GetCase<T>> {
  using type = std::optional<T>;
};
template <class C>
inline constexpr bool is_default_case_v = std::is_same_v<C, DefaultCase>;
}  // namespace detail

/// What select returns: which case won, and that case's result.
template <class... Cases>
class Selected {
  static_assert(sizeof...(Cases) > 0, "select needs at least one case");
  static_assert((std::is_base_of_v<detail::SelectCase, Cases> && ...), "select's arguments are select cases");
  static_assert((static_cast<int>(detail::is_default_case_v<Cases>) + ... + 0) <= 1,
                "select takes at most one case_default()");

public:
  explicit Selected(Cases&&... cs) noexcept : cases_(std::move(cs)...) {}
  Selected(Selected&&) noexcept = default;
  Selected& operator=(Selected&&) = delete;

  /// The position of the winning case among select's arguments.
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  /// True if the deadline of select_until/select_for passed first (no case won).
  [[nodiscard]] bool timed_out() const noexcept { return index_ == kNone; }

  /// The winning case's result: for case_get, the std::optional<T> it got
  /// (empty once the queue is closed and drained). Only for the winner.
  template <std::size_t I>
    requires(!std::is_void_v<typename detail::case_result<std::tuple_element_t<I, std::tuple<Cases...>>>::type>)
  auto& get() {
    if (index_ != I) throw UsageError("Selected::get<" + std::to_string(I) + "> of a case that did not win");
    return std::get<I>(cases_).result();
  }

  /// For skein's select functions.
  std::array<detail::SelectCase*, sizeof...(Cases)> pointers() noexcept {
    return std::apply([](auto&... c) { return std::array<detail::SelectCase*, sizeof...(Cases)>{&c...}; }, cases_);
  }
  void set_index(std::uint32_t i) noexcept { index_ = i == detail::kSelectPending ? kNone : i; }

private:
  static constexpr std::size_t kNone = ~std::size_t{0};
  std::tuple<Cases...> cases_;
  std::size_t index_ = kNone;
};

namespace detail {
template <std::size_t N>
struct SelectStorage {
  std::array<BasicSelectCaseWaiter<>, N> subs;
  std::array<std::uint32_t, 2 * N> scratch;
};

template <class... Cases>
Selected<Cases...> run_select(const Clock::time_point* deadline, Cases&&... cases) {
  constexpr std::size_t n = sizeof...(Cases);
  Selected<Cases...> r(std::move(cases)...);
  auto ptrs = r.pointers();
  SelectStorage<n> st;
  BasicSelector<> sel(ptrs.data(), st.subs.data(), st.scratch.data(), n);
  r.set_index(select_blocking(sel, ptrs.data(), deadline));
  return r;
}
}  // namespace detail

/// Blocks until one case fires and returns which (and its result). Throws
/// Cancelled if the current task is cancelled first (then no case took
/// effect), Closed if a case_put's queue is closed, and whatever a case throws.
template <class... Cases>
Selected<std::decay_t<Cases>...> select(Cases&&... cases) {
  return detail::run_select<std::decay_t<Cases>...>(nullptr, std::forward<Cases>(cases)...);
}

/// As select, but gives up at `d` (then `timed_out()` is true and no case took effect).
template <class Rep, class Period, class... Cases>
Selected<std::decay_t<Cases>...> select_for(std::chrono::duration<Rep, Period> d, Cases&&... cases) {
  if (d < d.zero()) throw UsageError("select_for of a negative duration");
  auto deadline = detail::deadline_after(d);
  return detail::run_select<std::decay_t<Cases>...>(&deadline, std::forward<Cases>(cases)...);
}

/// `co_await skein::async_select(cases...)`: suspends (without blocking a
/// thread) until one case fires; resumes on the coroutine's executor.
template <class... Cases>
class [[nodiscard]] SelectOperation {
  static constexpr std::size_t n = sizeof...(Cases);

public:
  explicit SelectOperation(Cases&&... cs) noexcept
      : r_(std::move(cs)...),
        ptrs_(r_.pointers()),
        sel_(ptrs_.data(), st_.subs.data(), st_.scratch.data(), n),
        await_(sel_, ptrs_.data(), [] { return static_cast<detail::Executor*>(&detail::core_of(default_pool())); }) {}
  SelectOperation(const SelectOperation&) = delete;
  SelectOperation& operator=(const SelectOperation&) = delete;

  bool await_ready() { return await_.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) { return await_.await_suspend(h); }
  Selected<Cases...> await_resume() {
    r_.set_index(await_.await_resume());
    return std::move(r_);
  }

private:
  Selected<Cases...> r_;
  std::array<detail::SelectCase*, n> ptrs_;
  detail::SelectStorage<n> st_;
  detail::BasicSelector<> sel_;
  detail::BasicSelectAwait<> await_;
};

template <class... Cases>
SelectOperation<std::decay_t<Cases>...> async_select(Cases&&... cases) {
  return SelectOperation<std::decay_t<Cases>...>(std::forward<Cases>(cases)...);
}

/// The runtime-sized form (a script binding's select over a list of cases):
/// returns the index of the winner, or -1 if the deadline passed first.
/// Throws UsageError for an empty list or more than one default.
inline std::ptrdiff_t select_any(const std::vector<detail::SelectCase*>& cases,
                                 const detail::Clock::time_point* deadline = nullptr) {
  if (cases.empty()) throw UsageError("select needs at least one case");
  std::size_t defaults = 0;
  for (auto* c : cases) defaults += c->is_default() ? 1 : 0;
  if (defaults > 1) throw UsageError("select takes at most one default case");
  const auto n = static_cast<std::uint32_t>(cases.size());
  std::unique_ptr<detail::BasicSelectCaseWaiter<>[]> subs(new detail::BasicSelectCaseWaiter<>[n]);
  std::unique_ptr<std::uint32_t[]> scratch(new std::uint32_t[2 * n]);
  detail::BasicSelector<> sel(cases.data(), subs.get(), scratch.get(), n);
  const std::uint32_t w = detail::select_blocking(sel, cases.data(), deadline);
  return w == detail::kSelectPending ? -1 : static_cast<std::ptrdiff_t>(w);
}

}  // namespace skein
