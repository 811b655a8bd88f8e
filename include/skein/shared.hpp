#pragma once
/// Shared<T>: a value behind a lock, with the race-free read-modify-write the
/// scripting APIs' get/append/set pattern needs (`update`).

#include "detail/config.hpp"  // first: the C++20 check

#include <functional>
#include <mutex>
#include <type_traits>
#include <utility>

#include "mutex.hpp"

namespace skein {

template <class T>
class Shared {
public:
  Shared(T initial = T{}) : v_(std::move(initial)) {}
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

  /// A copy of the value (never a live reference).
  [[nodiscard]] T get() const {
    std::lock_guard lk(mu_);
    return v_;
  }
  void set(T v) {
    std::lock_guard lk(mu_);
    v_ = std::move(v);
  }
  /// Runs `f(T&)` under the lock and returns its result: read-modify-write
  /// without a race. `f` must not touch this Shared again (it would deadlock).
  template <class F>
  std::invoke_result_t<F, T&> update(F&& f) {
    std::lock_guard lk(mu_);
    return std::invoke(std::forward<F>(f), v_);
  }

  /// Exclusive access for a scope: `auto g = s.lock(); g->push_back(1);`
  class [[nodiscard]] Guard {
  public:
    T& operator*() const noexcept { return *v_; }
    T* operator->() const noexcept { return v_; }

  private:
    friend class Shared;
    Guard(Mutex& m, T& v) : lk_(m), v_(&v) {}
    std::unique_lock<Mutex> lk_;
    T* v_;
  };
  Guard lock() { return Guard(mu_, v_); }

private:
  mutable Mutex mu_;
  T v_;
};

}  // namespace skein
