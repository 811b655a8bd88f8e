#pragma once
// Concepts and type traits used across skein.

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

#include "fwd.hpp"
#include "stop_token.hpp"

namespace skein::detail {

template <class T>
struct is_promise : std::false_type {};
template <class T>
struct is_promise<Promise<T>> : std::true_type {
  using value_type = T;
};
template <class T>
inline constexpr bool is_promise_v = is_promise<std::remove_cvref_t<T>>::value;

template <class T>
concept AwaitSuspendResult =
    std::same_as<T, void> || std::same_as<T, bool> || std::convertible_to<T, std::coroutine_handle<>>;

/// An object with await_ready/await_suspend/await_resume.
template <class A>
concept Awaiter = requires(A& a, std::coroutine_handle<> h) {
  { a.await_ready() } -> std::convertible_to<bool>;
  { a.await_suspend(h) } -> AwaitSuspendResult;
  a.await_resume();
};

template <class A>
concept HasMemberCoAwait = requires(A&& a) { std::forward<A>(a).operator co_await(); };
template <class A>
concept HasFreeCoAwait = requires(A&& a) { operator co_await(std::forward<A>(a)); };

/// Anything `co_await` accepts.
template <class A>
concept Awaitable = HasMemberCoAwait<A> || HasFreeCoAwait<A> || Awaiter<std::remove_reference_t<A>>;

/// A task function: callable with the arguments, or with a skein::stop_token first.
template <class F, class... Args>
concept TaskFunction = std::is_invocable_v<F, Args...> || std::is_invocable_v<F, skein::stop_token, Args...>;

/// run()/spawn()'s check of a call, with messages a user can act on (a bare
/// constraint failure would only say that no overload of run matches). `F`
/// and `Args` are the forwarded types, as deduced by run(F&&, Args&&...).
template <class F, class... Args>
constexpr bool check_task_call() {
  constexpr bool f_ok = std::is_constructible_v<std::decay_t<F>, F>;
  static_assert(f_ok,
                "skein::run/spawn: the function object cannot be copied or moved into the task "
                "(it is decay-copied, as by std::thread)");
  constexpr bool args_ok = (std::is_constructible_v<std::decay_t<Args>, Args> && ...);
  static_assert(args_ok,
                "skein::run/spawn: an argument cannot be copied into the task (arguments are "
                "decay-copied, as by std::thread): std::move it, or pass std::ref(x) to share it");
  constexpr bool call_ok = TaskFunction<std::decay_t<F>, std::decay_t<Args>...>;
  static_assert(!f_ok || !args_ok || call_ok,
                "skein::run/spawn: f cannot be called with these arguments (after their decay-copy; "
                "f may also take a skein::stop_token before them)");
  return f_ok && args_ok && call_ok;
}

template <class F, class... Args>
inline constexpr bool takes_stop_token_v = std::is_invocable_v<F, skein::stop_token, Args...>;

template <class T>
struct unwrap_promise : std::type_identity<T> {};
template <class T>
struct unwrap_promise<Promise<T>> : std::type_identity<T> {};

template <class F, class... Args>
struct task_result {
  using invoke_type =
      std::conditional_t<takes_stop_token_v<F, Args...>, std::invoke_result<F, skein::stop_token, Args...>,
                         std::invoke_result<F, Args...>>;
  using raw = typename invoke_type::type;
  // A function returning Promise<U> gives Promise<U>, not Promise<Promise<U>>.
  using type = typename unwrap_promise<raw>::type;
};

}  // namespace skein::detail
