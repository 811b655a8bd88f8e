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

namespace skein {
namespace detail {
/// void -> std::monostate, so results fit in tuples and variants.
template <class T>
using value_or_monostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
template <class T>
class AllSettledAccess;
}  // namespace detail

/// How one input of when_all_settled ended: its value (std::monostate for
/// void) or its error (JavaScript's {status, value | reason}).
template <class T>
class Settled {
public:
  using value_type = detail::value_or_monostate<T>;
  [[nodiscard]] bool fulfilled() const noexcept { return v_.index() == 0; }
  [[nodiscard]] bool rejected() const noexcept { return v_.index() == 1; }
  /// The value; rethrows the error if the input failed.
  value_type& value() & { return check(), std::get<0>(v_); }
  const value_type& value() const& { return check(), std::get<0>(v_); }
  value_type&& value() && { return check(), std::get<0>(std::move(v_)); }
  /// The error, or null if the input has a value.
  [[nodiscard]] std::exception_ptr error() const noexcept { return rejected() ? std::get<1>(v_) : nullptr; }

private:
  friend class detail::AllSettledAccess<T>;
  explicit Settled(std::variant<value_type, std::exception_ptr> v) : v_(std::move(v)) {}
  void check() const {
    if (rejected()) std::rethrow_exception(std::get<1>(v_));
  }
  std::variant<value_type, std::exception_ptr> v_;
};

namespace detail {

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

template <class T>
class AllSettledAccess {
public:
  /// The outcome of a settled input; its error counts as observed.
  static Settled<T> of(PromiseState<T>* st) {
    if (st->failed()) {
      st->mark_observed();
      return Settled<T>(std::variant<value_or_monostate<T>, std::exception_ptr>(std::in_place_index<1>, st->error()));
    }
    return Settled<T>(std::variant<value_or_monostate<T>, std::exception_ptr>(std::in_place_index<0>, copy_result(st)));
  }
};

template <class... Ts>
class AllSettledOf final : public Combiner<AllSettledOf<Ts...>> {
public:
  using Result = std::tuple<Settled<Ts>...>;
  explicit AllSettledOf(std::tuple<Promise<Ts>...> in)
      : Combiner<AllSettledOf>(sizeof...(Ts)), in_(std::move(in)), remaining_(sizeof...(Ts)) {}

  Promise<Result> start() {
    auto out = out_.promise();
    if constexpr (sizeof...(Ts) == 0) out_.resolve();
    std::apply(
        [&](auto&... p) {
          std::size_t i = 0;
          (this->watch(i++, state_of(p)), ...);
        },
        in_);
    this->finish_start();  // may delete this
    return out;
  }

  void on_ready(std::size_t) noexcept {
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    try {
      out_.resolve(std::apply(
          [](auto&... p) {
            return Result(AllSettledAccess<typename std::remove_cvref_t<decltype(p)>::value_type>::of(state_of(p))...);
          },
          in_));
    } catch (...) {  // a value's copy failed
      out_.reject(std::current_exception());
    }
  }

private:
  std::tuple<Promise<Ts>...> in_;
  skein::Resolver<Result> out_;
  std::atomic<std::size_t> remaining_;
};

template <class T>
class AllSettledRange final : public Combiner<AllSettledRange<T>> {
public:
  using Result = std::vector<Settled<T>>;
  explicit AllSettledRange(std::vector<Promise<T>> in)
      : Combiner<AllSettledRange>(in.size()), in_(std::move(in)), remaining_(in_.size()) {}

  Promise<Result> start() {
    auto out = out_.promise();
    if (in_.empty()) out_.resolve(Result{});
    for (std::size_t i = 0; i < in_.size(); ++i) this->watch(i, state_of(in_[i]));
    this->finish_start();
    return out;
  }

  void on_ready(std::size_t) noexcept {
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    try {
      Result r;
      r.reserve(in_.size());
      for (auto& p : in_) r.push_back(AllSettledAccess<T>::of(state_of(p)));
      out_.resolve(std::move(r));
    } catch (...) {
      out_.reject(std::current_exception());
    }
  }

private:
  std::vector<Promise<T>> in_;
  skein::Resolver<Result> out_;
  std::atomic<std::size_t> remaining_;
};

}  // namespace detail
}  // namespace skein
