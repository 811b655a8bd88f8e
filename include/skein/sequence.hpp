#pragma once
/// sequence(f1, f2, ...): run functions one after another on the pool (the
/// thread.scheduler of Langoost's `thread` module).

#include "detail/config.hpp"  // first: the C++20 check

#include <type_traits>
#include <utility>

#include "detail/concepts.hpp"
#include "promise.hpp"
#include "run.hpp"

namespace skein {

namespace detail {
template <class F>
Promise<void> sequence_step(F& f) {
  if constexpr (is_promise_v<std::invoke_result_t<F&>>)
    (void)co_await std::invoke(f);
  else
    (void)std::invoke(f);
}
template <class... Fs>
Promise<void> sequence_body(Fs... fs) {
  // Each step starts only after the previous one finished; the first error
  // stops the sequence and settles the promise with it.
  ((co_await sequence_step(fs)), ...);
}
}  // namespace detail

/// Runs `fs...` in order as one task on default_pool(); each may be a
/// coroutine function (awaited). The promise settles when the last finishes,
/// or with the first error (later functions then do not run).
template <class... Fs>
  requires(std::is_invocable_v<std::decay_t<Fs>&> && ...)
Promise<void> sequence(Fs&&... fs) {
  return run([](std::decay_t<Fs>... f) { return detail::sequence_body(std::move(f)...); }, std::forward<Fs>(fs)...);
}

}  // namespace skein
