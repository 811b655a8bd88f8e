#pragma once
// Concepts and type traits used across skein.

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

namespace skein {
template <class T>
class Promise;
}

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

/// A task function: callable with the arguments, or with a std::stop_token first.
template <class F, class... Args>
concept TaskFunction = std::is_invocable_v<F, Args...> || std::is_invocable_v<F, std::stop_token, Args...>;

template <class F, class... Args>
inline constexpr bool takes_stop_token_v = std::is_invocable_v<F, std::stop_token, Args...>;

template <class T>
struct unwrap_promise : std::type_identity<T> {};
template <class T>
struct unwrap_promise<Promise<T>> : std::type_identity<T> {};

template <class F, class... Args>
struct task_result {
  using invoke_type = std::conditional_t<takes_stop_token_v<F, Args...>, std::invoke_result<F, std::stop_token, Args...>,
                                         std::invoke_result<F, Args...>>;
  using raw = typename invoke_type::type;
  // A function returning Promise<U> gives Promise<U>, not Promise<Promise<U>>.
  using type = typename unwrap_promise<raw>::type;
};

}  // namespace skein::detail
