#pragma once
// The machinery behind when_all and when_any: a heap-allocated combiner holds
// one waiter per input promise and settles a hand-made output promise. An
// input that is already settled is processed at once; the combiner lives
// until every input has reported (reference-counted).

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "promise_handle.hpp"
#include "promise_state.hpp"
#include "waiter.hpp"

namespace skein::detail {

/// void -> std::monostate, so results fit in tuples and variants.
template <class T>
using value_or_monostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
value_or_monostate<T> copy_result(PromiseState<T>* st) {
  if constexpr (std::is_void_v<T>) {
    st->value();
    return {};
  } else if constexpr (std::is_copy_constructible_v<T>) {
    return st->value();
  } else {
    return st->take_value();
  }
}

/// Calls `on_ready(i)` once for each input as it settles.
template <class Derived>
class Combiner {
public:
  struct InputWaiter : Waiter {
    Combiner* owner = nullptr;
    std::size_t index = 0;
    InputWaiter() noexcept {
      notify_fn = [](Waiter* w) noexcept {
        auto* iw = static_cast<InputWaiter*>(w);
        iw->owner->report(iw->index);
      };
    }
  };

  explicit Combiner(std::size_t n) : waiters_(n), refs_(static_cast<long>(n) + 1) {
    for (std::size_t i = 0; i < n; ++i) {
      waiters_[i].owner = this;
      waiters_[i].index = i;
    }
  }

  /// Links waiter i into `st` (or reports at once if settled). Call for each
  /// input, then finish_start().
  void watch(std::size_t i, PromiseStateBase* st) noexcept {
    if (!st->enqueue(&waiters_[i])) report(i);
  }
  void finish_start() noexcept { drop(); }

private:
  void report(std::size_t i) noexcept {
    static_cast<Derived*>(this)->on_ready(i);
    drop();
  }
  void drop() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete static_cast<Derived*>(this);
  }
  std::vector<InputWaiter> waiters_;
  std::atomic<long> refs_;
};

template <class... Ts>
class AllOf final : public Combiner<AllOf<Ts...>> {
public:
  using Result = std::tuple<value_or_monostate<Ts>...>;
  explicit AllOf(std::tuple<Promise<Ts>...> in)
      : Combiner<AllOf>(sizeof...(Ts)), in_(std::move(in)), remaining_(sizeof...(Ts)) {}

  Promise<Result> start() {
    auto out = out_.promise();
    if constexpr (sizeof...(Ts) == 0) {
      out_.resolve();
    }
    std::apply(
        [&](auto&... p) {
          std::size_t i = 0;
          (this->watch(i++, state_of(p)), ...);
        },
        in_);
    this->finish_start();  // may delete this
    return out;
  }

  void on_ready(std::size_t i) noexcept {
    PromiseStateBase* st = nullptr;
    std::size_t k = 0;
    std::apply([&](auto&... p) { ((k++ == i ? (st = state_of(p)) : nullptr), ...); }, in_);
    if (st->failed()) {
      if (!done_.exchange(true, std::memory_order_acq_rel)) {
        st->mark_observed();
        out_.reject(st->error());
      }
    } else if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1 && !done_.exchange(true)) {
      try {
        out_.resolve(std::apply([](auto&... p) { return Result(copy_result(state_of(p))...); }, in_));
      } catch (...) {
        out_.reject(std::current_exception());
      }
    }
  }

private:
  std::tuple<Promise<Ts>...> in_;
  skein::Resolver<Result> out_;
  std::atomic<std::size_t> remaining_;
  std::atomic<bool> done_{false};
};

template <class T>
class AllOfRange final : public Combiner<AllOfRange<T>> {
public:
  using Result = std::conditional_t<std::is_void_v<T>, void, std::vector<value_or_monostate<T>>>;
  explicit AllOfRange(std::vector<Promise<T>> in)
      : Combiner<AllOfRange>(in.size()), in_(std::move(in)), remaining_(in_.size()) {}

  Promise<Result> start() {
    auto out = out_.promise();
    if (in_.empty()) settle_values();
    for (std::size_t i = 0; i < in_.size(); ++i) this->watch(i, state_of(in_[i]));
    this->finish_start();
    return out;
  }

  void on_ready(std::size_t i) noexcept {
    auto* st = state_of(in_[i]);
    if (st->failed()) {
      if (!done_.exchange(true, std::memory_order_acq_rel)) {
        st->mark_observed();
        out_.reject(st->error());
      }
    } else if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1 && !done_.exchange(true)) {
      settle_values();
    }
  }

private:
  void settle_values() noexcept {
    try {
      if constexpr (std::is_void_v<T>) {
        out_.resolve();
      } else {
        Result r;
        r.reserve(in_.size());
        for (auto& p : in_) r.push_back(copy_result(state_of(p)));
        out_.resolve(std::move(r));
      }
    } catch (...) {
      out_.reject(std::current_exception());
    }
  }
  std::vector<Promise<T>> in_;
  skein::Resolver<Result> out_;
  std::atomic<std::size_t> remaining_;
  std::atomic<bool> done_{false};
};

template <class... Ts>
class AnyOf final : public Combiner<AnyOf<Ts...>> {
public:
  using Result = std::variant<value_or_monostate<Ts>...>;
  explicit AnyOf(std::tuple<Promise<Ts>...> in) : Combiner<AnyOf>(sizeof...(Ts)), in_(std::move(in)) {}

  Promise<Result> start() {
    auto out = out_.promise();
    std::apply(
        [&](auto&... p) {
          std::size_t i = 0;
          (this->watch(i++, state_of(p)), ...);
        },
        in_);
    this->finish_start();
    return out;
  }

  void on_ready(std::size_t i) noexcept {
    if (done_.exchange(true, std::memory_order_acq_rel)) return;
    settle<0>(i);
  }

private:
  template <std::size_t I>
  void settle(std::size_t i) noexcept {
    if constexpr (I < sizeof...(Ts)) {
      if (i != I) return settle<I + 1>(i);
      auto* st = state_of(std::get<I>(in_));
      if (st->failed()) {
        st->mark_observed();
        out_.reject(st->error());
        return;
      }
      try {
        out_.resolve(Result(std::in_place_index<I>, copy_result(st)));
      } catch (...) {
        out_.reject(std::current_exception());
      }
    }
  }
  std::tuple<Promise<Ts>...> in_;
  skein::Resolver<Result> out_;
  std::atomic<bool> done_{false};
};

template <class T>
class AnyOfRange final : public Combiner<AnyOfRange<T>> {
public:
  using Result = std::conditional_t<std::is_void_v<T>, std::size_t, std::pair<std::size_t, value_or_monostate<T>>>;
  explicit AnyOfRange(std::vector<Promise<T>> in) : Combiner<AnyOfRange>(in.size()), in_(std::move(in)) {}

  Promise<Result> start() {
    auto out = out_.promise();
    for (std::size_t i = 0; i < in_.size(); ++i) this->watch(i, state_of(in_[i]));
    this->finish_start();
    return out;
  }

  void on_ready(std::size_t i) noexcept {
    if (done_.exchange(true, std::memory_order_acq_rel)) return;
    auto* st = state_of(in_[i]);
    if (st->failed()) {
      st->mark_observed();
      out_.reject(st->error());
      return;
    }
    try {
      if constexpr (std::is_void_v<T>)
        out_.resolve(i);
      else
        out_.resolve(Result(i, copy_result(st)));
    } catch (...) {
      out_.reject(std::current_exception());
    }
  }

private:
  std::vector<Promise<T>> in_;
  skein::Resolver<Result> out_;
  std::atomic<bool> done_{false};
};

}  // namespace skein::detail
