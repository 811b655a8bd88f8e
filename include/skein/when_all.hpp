#pragma once
/// when_all / when_all_settled / when_any: combine promises (JavaScript's
/// Promise.all, Promise.allSettled and Promise.race).

#include "detail/config.hpp"  // first: the C++20 check

#include <cstddef>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "detail/combine.hpp"
#include "errors.hpp"
#include "promise.hpp"

namespace skein {

/// Settles once every input has a value, with all the values in order (void
/// as std::monostate); or, as soon as any input fails, with that error.
template <class... Ts>
Promise<std::tuple<detail::value_or_monostate<Ts>...>> when_all(Promise<Ts>... ps) {
  ((ps.valid() ? void() : throw UsageError("when_all: an empty Promise was passed")), ...);
  return (new detail::AllOf<Ts...>(std::tuple<Promise<Ts>...>(std::move(ps)...)))->start();
}

/// when_all over a vector: Promise<std::vector<T>> (Promise<void> for void).
template <class T>
auto when_all(std::vector<Promise<T>> ps) {
  for (auto& p : ps)
    if (!p.valid()) throw UsageError("when_all: an empty Promise was passed");
  return (new detail::AllOfRange<T>(std::move(ps)))->start();
}

/// Settles once every input has settled, with how each ended (a Settled:
/// its value or its error), in order. Never fails because an input did, and
/// the inputs' errors count as observed (JavaScript's Promise.allSettled).
template <class... Ts>
Promise<std::tuple<Settled<Ts>...>> when_all_settled(Promise<Ts>... ps) {
  ((ps.valid() ? void() : throw UsageError("when_all_settled: an empty Promise was passed")), ...);
  return (new detail::AllSettledOf<Ts...>(std::tuple<Promise<Ts>...>(std::move(ps)...)))->start();
}

/// when_all_settled over a vector: Promise<std::vector<Settled<T>>>.
template <class T>
Promise<std::vector<Settled<T>>> when_all_settled(std::vector<Promise<T>> ps) {
  for (auto& p : ps)
    if (!p.valid()) throw UsageError("when_all_settled: an empty Promise was passed");
  return (new detail::AllSettledRange<T>(std::move(ps)))->start();
}

/// Settles like the first input to settle (its value, at its index in the
/// variant; or its error). The others keep running.
template <class... Ts>
Promise<std::variant<detail::value_or_monostate<Ts>...>> when_any(Promise<Ts>... ps) {
  static_assert(sizeof...(Ts) > 0, "when_any needs at least one promise");
  ((ps.valid() ? void() : throw UsageError("when_any: an empty Promise was passed")), ...);
  return (new detail::AnyOf<Ts...>(std::tuple<Promise<Ts>...>(std::move(ps)...)))->start();
}

/// when_any over a vector: Promise<std::pair<index, T>> (Promise<std::size_t> for void).
template <class T>
auto when_any(std::vector<Promise<T>> ps) {
  if (ps.empty()) throw UsageError("when_any: no promises were passed");
  for (auto& p : ps)
    if (!p.valid()) throw UsageError("when_any: an empty Promise was passed");
  return (new detail::AnyOfRange<T>(std::move(ps)))->start();
}

}  // namespace skein
