// Compile-time checks of the documented API (docs/api/): the noexcepts,
// copy/move rules, concept constraints and result types that users rely on.
// Nothing here runs: if this file compiles, the checks hold.
#include <skein/skein.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

// Functions the checks call in unevaluated contexts (external linkage: an
// unused internal function would be a warning).
namespace skein_static_checks {
int add(int x, int y) { return x + y; }
skein::Promise<long> coro(int n) { co_return n; }
}  // namespace skein_static_checks

namespace {

using namespace std::chrono_literals;
using skein_static_checks::add;
using skein_static_checks::coro;
template <class T>
T& lv() noexcept;  // an lvalue of T, for unevaluated expressions

// --- version.hpp ---------------------------------------------------------------
static_assert(SKEIN_VERSION_MAJOR >= 0 && SKEIN_VERSION_MINOR >= 0 && SKEIN_VERSION_PATCH >= 0);

// --- errors.hpp (docs/api/errors.md) -------------------------------------------------
static_assert(std::derived_from<skein::Cancelled, std::runtime_error>);
static_assert(std::derived_from<skein::Closed, std::runtime_error>);
static_assert(std::derived_from<skein::UsageError, std::logic_error>);
static_assert(std::is_default_constructible_v<skein::Cancelled>);
static_assert(std::is_constructible_v<skein::Cancelled, std::string>);
static_assert(std::is_constructible_v<skein::Closed, std::string>);
static_assert(std::is_constructible_v<skein::UsageError, std::string>);
static_assert(std::is_same_v<skein::UnhandledErrorHandler, std::function<void(std::exception_ptr)>>);
static_assert(std::is_invocable_v<decltype(skein::set_unhandled_error_handler), std::nullptr_t>);

// --- promise.hpp ------------------------------------------------------------------
using PI = skein::Promise<int>;
static_assert(std::is_same_v<skein::Promise<>, skein::Promise<void>>);
static_assert(std::is_same_v<PI::value_type, int>);
static_assert(std::is_nothrow_default_constructible_v<PI>);
static_assert(std::is_nothrow_copy_constructible_v<PI> && std::is_nothrow_copy_assignable_v<PI>);
static_assert(std::is_nothrow_move_constructible_v<PI> && std::is_nothrow_move_assignable_v<PI>);
static_assert(std::is_nothrow_destructible_v<PI>);
static_assert(noexcept(lv<const PI>().valid()) && noexcept(lv<const PI>().ready()));
static_assert(noexcept(static_cast<bool>(lv<const PI>())));
static_assert(!std::is_convertible_v<PI, bool>);  // explicit operator bool
static_assert(std::is_same_v<decltype(lv<const PI>().get()), int>);
static_assert(std::is_same_v<decltype(lv<const skein::Promise<void>>().get()), void>);
static_assert(std::is_same_v<decltype(lv<const PI>().wait()), void>);
static_assert(std::is_same_v<decltype(lv<const PI>().wait_for(1ms)), bool>);
using PU = skein::Promise<std::unique_ptr<int>>;
static_assert(std::is_same_v<decltype(std::move(lv<PU>()).get()), std::unique_ptr<int>>);
static_assert(skein::detail::Awaitable<PI> && skein::detail::Awaitable<PI&> && skein::detail::Awaitable<const PI&>);
static_assert(std::is_same_v<PI::promise_type, skein::detail::CoroPromise<int>>);  // Promise<T> is a coroutine type
static_assert(!std::is_copy_constructible_v<skein::Resolver<int>> && !std::is_copy_assignable_v<skein::Resolver<int>>);
static_assert(std::is_nothrow_move_constructible_v<skein::Resolver<int>>);
static_assert(std::is_same_v<decltype(lv<const skein::Resolver<int>>().promise()), PI>);
static_assert(
    noexcept(lv<const skein::Resolver<int>>().promise()) && noexcept(lv<const skein::Resolver<int>>().settled()));

// --- run.hpp: run / spawn and the types they return ----------------------------------
static_assert(std::is_same_v<decltype(skein::run(add, 5, 3)), PI>);
static_assert(std::is_same_v<decltype(skein::run(lv<skein::ThreadPool>(), add, 5, 3)), PI>);
static_assert(std::is_same_v<decltype(skein::run([] {})), skein::Promise<void>>);
// A coroutine function gives Promise<U>, not Promise<Promise<U>>.
static_assert(std::is_same_v<decltype(skein::run(coro, 1)), skein::Promise<long>>);
// A function taking a skein::stop_token first receives the task's token.
static_assert(std::is_same_v<decltype(skein::run([](skein::stop_token, int x) { return x; }, 1)), PI>);
// References need std::ref (arguments are decay-copied).
static_assert(std::is_same_v<decltype(skein::run([](int& x) { return x; }, std::ref(lv<int>()))), PI>);
// Move-only arguments are moved in.
static_assert(
    std::is_same_v<decltype(skein::run([](std::unique_ptr<int> p) { return *p; }, std::unique_ptr<int>())), PI>);
static_assert(std::is_same_v<decltype(skein::spawn(add, 1, 2)), void>);
static_assert(noexcept(skein::goroutines()) && std::is_same_v<decltype(skein::goroutines()), std::size_t>);
static_assert(noexcept(skein::this_task::stop_token()) && noexcept(skein::this_task::cancelled()));
static_assert(std::is_same_v<decltype(skein::this_task::stop_token()), skein::stop_token>);

// --- thread_pool.hpp ------------------------------------------------------------------
static_assert(!std::is_copy_constructible_v<skein::ThreadPool> && !std::is_move_constructible_v<skein::ThreadPool>);
static_assert(std::is_constructible_v<skein::ThreadPool> && std::is_constructible_v<skein::ThreadPool, std::size_t>);
static_assert(!std::is_convertible_v<std::size_t, skein::ThreadPool>);  // explicit
static_assert(std::is_constructible_v<skein::ThreadPool, std::size_t, std::size_t>);
static_assert(noexcept(lv<const skein::ThreadPool>().size()) && noexcept(lv<const skein::ThreadPool>().max_threads()));
static_assert(skein::ThreadPool::kDefaultMaxThreads == 10000);
static_assert(std::is_same_v<decltype(skein::default_pool()), skein::ThreadPool&>);
static_assert(std::is_same_v<decltype(skein::cpus()), std::size_t>);
static_assert(skein::detail::Awaiter<skein::ScheduleOperation>);
static_assert(!std::is_copy_constructible_v<skein::BlockingRegion>);

// --- context.hpp ----------------------------------------------------------------------
using skein::Context;
static_assert(std::is_copy_constructible_v<Context> && std::is_copy_assignable_v<Context>);  // copies share one scope
static_assert(std::is_nothrow_copy_constructible_v<Context>);
static_assert(noexcept(lv<const Context>().cancel()) && noexcept(lv<const Context>().cancelled()));
static_assert(noexcept(lv<const Context>().token()) && noexcept(lv<const Context>().timed_out()));
static_assert(noexcept(lv<const Context>().tasks()) && noexcept(lv<const Context>().deadline()));
static_assert(std::is_same_v<decltype(Context::with_timeout(1s)), Context>);
static_assert(std::is_same_v<decltype(lv<const Context>().child()), Context>);
static_assert(std::is_same_v<decltype(Context::current()), std::optional<Context>>);
static_assert(std::is_same_v<decltype(lv<const Context>().run(add, 1, 2)), PI>);
static_assert(std::is_same_v<decltype(lv<const Context>().wait_for(1ms)), bool>);
static_assert(std::is_same_v<decltype(skein::run_with_timeout(1s, add, 1, 2)), int>);
static_assert(std::is_same_v<decltype(lv<const Context>().without_cancel()), Context>);
static_assert(noexcept(lv<const Context>().cancel(std::exception_ptr())));
static_assert(std::is_same_v<decltype(lv<const Context>().cause()), std::exception_ptr>);
static_assert(noexcept(lv<const Context>().encloses(lv<const Context>())));
using Key = const skein::ContextKey<std::string>;
static_assert(!std::is_copy_constructible_v<skein::ContextKey<int>>);  // keys compare by address
static_assert(std::is_same_v<decltype(lv<const Context>().with_value(lv<Key>(), "v")), Context>);
static_assert(std::is_same_v<decltype(lv<const Context>().value(lv<Key>())), const std::string*>);
static_assert(noexcept(lv<const Context>().value(lv<Key>())) && noexcept(skein::this_task::value(lv<Key>())));
static_assert(std::is_same_v<decltype(skein::after_cancel(lv<const Context>(), [] {})), skein::AfterCancel>);
static_assert(std::is_nothrow_copy_constructible_v<skein::AfterCancel>&& noexcept(lv<skein::AfterCancel>().stop()));
static_assert(std::is_same_v<decltype(lv<const skein::Cancelled>().cause()), const std::exception_ptr&>);

// --- task_group.hpp -------------------------------------------------------------------
using TG = skein::TaskGroup;
static_assert(!std::is_copy_constructible_v<TG> && !std::is_move_constructible_v<TG>);  // its tasks refer to it
static_assert(std::is_constructible_v<TG, const Context&> && !std::is_convertible_v<const Context&, TG>);
static_assert(std::is_same_v<decltype(lv<TG>().run(add, 1, 2)), PI>);
static_assert(std::is_same_v<decltype(lv<TG>().try_run(add, 1, 2)), std::optional<PI>>);
static_assert(std::is_same_v<decltype(lv<TG>().async_run(add, 1, 2)), skein::Promise<PI>>);
static_assert(std::is_same_v<decltype(lv<TG>().async_wait()), skein::Promise<void>>);
static_assert(std::is_same_v<decltype(lv<const TG>().errors()), std::vector<std::exception_ptr>>);
static_assert(noexcept(lv<TG>().cancel()) && noexcept(lv<const TG>().tasks()) && noexcept(lv<const TG>().context()));

// --- sleep.hpp ------------------------------------------------------------------------
static_assert(noexcept(skein::async_sleep(lv<std::chrono::milliseconds>())));
static_assert(noexcept(skein::async_sleep_until(lv<std::chrono::steady_clock::time_point>())));
static_assert(std::is_same_v<decltype(skein::async_sleep(1ms)), skein::SleepOperation>);
static_assert(skein::detail::Awaiter<skein::SleepOperation>);
static_assert(!std::is_copy_constructible_v<skein::SleepOperation>);
static_assert(noexcept(lv<skein::SleepOperation>().await_ready()));

// --- when_all.hpp ---------------------------------------------------------------------
using PV = skein::Promise<void>;
static_assert(std::is_same_v<decltype(skein::when_all(PI(), PV())), skein::Promise<std::tuple<int, std::monostate>>>);
static_assert(std::is_same_v<decltype(skein::when_any(PI(), PV())), skein::Promise<std::variant<int, std::monostate>>>);
static_assert(std::is_same_v<decltype(skein::when_all(std::vector<PI>())), skein::Promise<std::vector<int>>>);
static_assert(std::is_same_v<decltype(skein::when_all(std::vector<PV>())), PV>);
static_assert(std::is_same_v<decltype(skein::when_all_settled(PI(), PV())),
                             skein::Promise<std::tuple<skein::Settled<int>, skein::Settled<void>>>>);
static_assert(std::is_same_v<decltype(skein::when_all_settled(std::vector<PI>())),
                             skein::Promise<std::vector<skein::Settled<int>>>>);
static_assert(std::is_same_v<skein::Settled<void>::value_type, std::monostate>);
static_assert(
    noexcept(lv<const skein::Settled<int>>().fulfilled()) && noexcept(lv<const skein::Settled<int>>().error()));
static_assert(
    std::is_same_v<decltype(skein::when_any(std::vector<PI>())), skein::Promise<std::pair<std::size_t, int>>>);
static_assert(std::is_same_v<decltype(skein::when_any(std::vector<PV>())), skein::Promise<std::size_t>>);

// --- sequence.hpp ---------------------------------------------------------------------
static_assert(std::is_same_v<decltype(skein::sequence([] {}, [] { return 1; }, [] { return coro(1); })), PV>);
template <class... F>
concept SequenceAccepts = requires(F... f) { skein::sequence(f...); };
static_assert(!SequenceAccepts<void (*)(int)>);  // each step is called with no arguments

// --- atomic.hpp -----------------------------------------------------------------------
using A = skein::Atomic<>;
static_assert(std::is_same_v<A, skein::Atomic<std::int64_t>>);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);  // "lock-free" (docs/api/atomic.md)
static_assert(!std::is_copy_constructible_v<A> && !std::is_copy_assignable_v<A>);
static_assert(std::is_nothrow_constructible_v<A> && std::is_nothrow_constructible_v<A, std::int64_t>);
static_assert(std::is_convertible_v<int, A>);  // `skein::Atomic<> counter = 0;`
static_assert(noexcept(lv<A>().add()) && noexcept(lv<A>().add(2)) && noexcept(lv<const A>().get()));
static_assert(noexcept(lv<A>().set(1)) && noexcept(lv<const A>().load()) && noexcept(lv<A>().store(1)));
static_assert(noexcept(lv<A>().cas(1, 2)) && noexcept(lv<A>().exchange(1)));
static_assert(std::is_same_v<decltype(lv<A>().add()), std::int64_t> &&
              std::is_same_v<decltype(lv<A>().cas(1, 2)), bool>);
template <class T>
concept AtomicOf = requires { typename skein::Atomic<T>; };
static_assert(AtomicOf<int> && AtomicOf<std::uint8_t> && !AtomicOf<double> && !AtomicOf<std::string>);

// --- shared.hpp -----------------------------------------------------------------------
using SV = skein::Shared<std::vector<int>>;
static_assert(!std::is_copy_constructible_v<SV> && !std::is_copy_assignable_v<SV>);
static_assert(std::is_default_constructible_v<SV>);
static_assert(std::is_same_v<decltype(lv<const SV>().get()), std::vector<int>>);  // a copy, never a reference
static_assert(std::is_same_v<decltype(lv<SV>().update([](std::vector<int>& v) { return v.size(); })), std::size_t>);
static_assert(std::is_same_v<decltype(*lv<SV>().lock()), std::vector<int>&>);

// --- queue.hpp ------------------------------------------------------------------------
using Q = skein::Queue<int>;
static_assert(!std::is_copy_constructible_v<Q> && !std::is_move_constructible_v<Q>);
static_assert(std::is_default_constructible_v<Q> && !std::is_convertible_v<std::size_t, Q>);
static_assert(std::is_same_v<decltype(lv<Q>().get()), std::optional<int>>);
static_assert(std::is_same_v<decltype(lv<Q>().try_get()), std::optional<int>>);
static_assert(std::is_same_v<decltype(lv<Q>().get_for(1ms)), std::optional<int>>);
static_assert(std::is_same_v<decltype(lv<Q>().try_put(1)), bool> &&
              std::is_same_v<decltype(lv<Q>().put_for(1, 1ms)), bool>);
static_assert(noexcept(lv<const Q>().capacity()));
static_assert(noexcept(lv<Q>().async_put(1)) && noexcept(lv<Q>().async_get()));
static_assert(skein::detail::Awaiter<Q::PutOperation> && skein::detail::Awaiter<Q::GetOperation>);
static_assert(std::is_same_v<decltype(lv<Q::GetOperation>().await_resume()), std::optional<int>>);
static_assert(std::is_same_v<decltype(lv<Q>().begin()), Q::iterator>&& noexcept(lv<Q>().end()));
static_assert(std::input_or_output_iterator<Q::iterator> && std::sentinel_for<Q::iterator, Q::iterator>);
static_assert(std::is_same_v<Q::iterator::iterator_category, std::input_iterator_tag>);
// Only for range-for: a single-pass iterator whose operator* is not const, so
// it is not a std::input_iterator (nor the Queue a std::ranges::range).
static_assert(!std::input_iterator<Q::iterator>);
static_assert(std::is_same_v<decltype(*lv<Q::iterator>()), int&>);
static_assert(std::is_nothrow_move_constructible_v<std::unique_ptr<int>> &&
              requires { typename skein::Queue<std::unique_ptr<int>>; });

// --- wait_group.hpp -------------------------------------------------------------------
using WG = skein::WaitGroup;
static_assert(!std::is_copy_constructible_v<WG> && !std::is_move_constructible_v<WG>);
static_assert(noexcept(lv<const WG>().count()) && noexcept(lv<WG>().async_wait()));
static_assert(std::is_same_v<decltype(lv<const WG>().count()), std::int64_t>);
static_assert(std::is_same_v<decltype(lv<WG>().wait_for(1ms)), bool>);
static_assert(skein::detail::Awaiter<WG::WaitOperation>);

// --- mutex.hpp: BasicLockable, Lockable, and std's guards -------------------------------
using M = skein::Mutex;
template <class L>
concept BasicLockable = requires(L& m) {
  m.lock();
  m.unlock();
};
template <class L>
concept Lockable = BasicLockable<L> && requires(L& m) {
  { m.try_lock() } -> std::same_as<bool>;
};
template <class L>
concept SharedLockable = requires(L& m) {
  m.lock_shared();
  m.unlock_shared();
  { m.try_lock_shared() } -> std::same_as<bool>;
};
static_assert(Lockable<M>);
static_assert(!std::is_copy_constructible_v<M> && !std::is_move_constructible_v<M>);
static_assert(std::is_nothrow_default_constructible_v<M>);
static_assert(noexcept(lv<M>().try_lock()) && noexcept(lv<M>().async_lock()) && noexcept(lv<const M>().locked()));
static_assert(std::is_constructible_v<std::lock_guard<M>, M&> && std::is_constructible_v<std::unique_lock<M>, M&>);
static_assert(std::is_constructible_v<std::scoped_lock<M, M>, M&, M&>);
static_assert(std::is_same_v<decltype(lv<M>().try_lock_for(1ms)), bool>);
static_assert(skein::detail::Awaiter<M::LockOperation>);
static_assert(std::is_same_v<decltype(lv<M::LockOperation>().await_resume()), std::unique_lock<M>>);

// --- rwlock.hpp -----------------------------------------------------------------------
using RW = skein::RWLock;
static_assert(Lockable<RW> && SharedLockable<RW>);
static_assert(!std::is_copy_constructible_v<RW>);
static_assert(noexcept(lv<RW>().try_lock()) && noexcept(lv<RW>().try_lock_shared()));
static_assert(std::is_constructible_v<std::shared_lock<RW>, RW&> && std::is_constructible_v<std::unique_lock<RW>, RW&>);
static_assert(std::is_same_v<decltype(lv<RW>().async_lock().await_resume()), std::unique_lock<RW>>);
static_assert(std::is_same_v<decltype(lv<RW>().async_lock_shared().await_resume()), std::shared_lock<RW>>);
static_assert(noexcept(lv<RW>().async_lock()) && noexcept(lv<RW>().async_lock_shared()));

// --- semaphore.hpp --------------------------------------------------------------------
using S = skein::Semaphore;
static_assert(std::is_constructible_v<S, std::ptrdiff_t> && !std::is_convertible_v<std::ptrdiff_t, S>);
static_assert(!std::is_default_constructible_v<S> && !std::is_copy_constructible_v<S>);
static_assert(noexcept(lv<S>().try_acquire()) && noexcept(lv<S>().async_acquire()));
static_assert(noexcept(lv<const S>().available()) && noexcept(lv<const S>().max()));
static_assert(std::is_same_v<decltype(lv<S>().try_acquire_for(1ms)), bool>);
static_assert(skein::detail::Awaiter<S::AcquireOperation>);
static_assert(skein::detail::Awaiter<S::PermitOperation>&& noexcept(lv<S>().async_permit()));
static_assert(std::is_same_v<decltype(lv<S>().async_permit().await_resume()), skein::Permit>);
using skein::Permit;
static_assert(std::is_nothrow_move_constructible_v<Permit> && std::is_nothrow_move_assignable_v<Permit>);
static_assert(!std::is_copy_constructible_v<Permit> && std::is_nothrow_default_constructible_v<Permit>);
static_assert(!std::is_convertible_v<S&, Permit>);  // explicit: acquiring blocks
static_assert(std::is_nothrow_constructible_v<Permit, S&, std::try_to_lock_t>);
static_assert(std::is_nothrow_constructible_v<Permit, S&, std::adopt_lock_t>);
static_assert(noexcept(lv<Permit>().release()) && noexcept(lv<const Permit>().held()));

// --- weighted_semaphore.hpp -----------------------------------------------------------
using WS = skein::WeightedSemaphore;
static_assert(std::is_constructible_v<WS, std::int64_t> && !std::is_convertible_v<std::int64_t, WS>);
static_assert(!std::is_copy_constructible_v<WS> && !std::is_move_constructible_v<WS>);
static_assert(noexcept(lv<WS>().async_acquire(1)) && noexcept(lv<const WS>().size()));
static_assert(std::is_same_v<decltype(lv<WS>().try_acquire(1)), bool>);
static_assert(std::is_same_v<decltype(lv<WS>().try_acquire_for(1, 1ms)), bool>);
static_assert(skein::detail::Awaiter<WS::AcquireOperation>);

// --- select.hpp -----------------------------------------------------------------------
using QI = skein::Queue<int>;
static_assert(std::is_constructible_v<QI, skein::unbuffered_t> && !std::is_convertible_v<skein::unbuffered_t, QI>);
static_assert(noexcept(lv<const QI>().is_unbuffered()));
static_assert(noexcept(skein::case_get(lv<QI>())) && noexcept(skein::case_default()));
static_assert(std::is_same_v<decltype(skein::case_put(lv<QI>(), 1)), skein::PutCase<int>>);
using Sel = decltype(skein::select(skein::case_get(lv<QI>()), skein::case_after(1ms), skein::case_default()));
static_assert(std::is_same_v<Sel, skein::Selected<skein::GetCase<int>, skein::AfterCase, skein::DefaultCase>>);
static_assert(std::is_same_v<decltype(lv<Sel>().get<0>()), std::optional<int>&>);
static_assert(noexcept(lv<const Sel>().index()) && noexcept(lv<const Sel>().timed_out()));
static_assert(skein::detail::Awaiter<decltype(skein::async_select(skein::case_get(lv<QI>())))>);
static_assert(!std::is_copy_constructible_v<decltype(skein::async_select(skein::case_get(lv<QI>())))>);

// --- timer.hpp ------------------------------------------------------------------------
static_assert(std::is_constructible_v<skein::Timer, std::chrono::milliseconds> &&
              !std::is_convertible_v<std::chrono::milliseconds, skein::Timer>);
static_assert(!std::is_copy_constructible_v<skein::Timer> && std::is_nothrow_move_constructible_v<skein::Timer>);
static_assert(!std::is_copy_constructible_v<skein::Ticker> && std::is_nothrow_move_constructible_v<skein::Ticker>);
static_assert(std::is_same_v<decltype(lv<skein::Timer>().stop()), bool>);
static_assert(
    std::is_same_v<decltype(lv<const skein::Timer>().channel()), skein::Queue<std::chrono::steady_clock::time_point>&>);
static_assert(std::is_same_v<decltype(skein::after_func(1ms, [] {})), skein::Timer>);

// --- pool.hpp -------------------------------------------------------------------------
using P = skein::Pool<int>;
using Work = void (*)(int);
static_assert(std::is_constructible_v<P, Work> && std::is_constructible_v<P, Work, std::size_t> &&
              std::is_constructible_v<P, Work, std::size_t, std::size_t>);
static_assert(std::is_constructible_v<P, skein::Promise<void> (*)(int)>);  // a coroutine worker
static_assert(!std::is_constructible_v<P, void (*)(std::string)>);         // worker_func(item) must be callable
static_assert(!std::is_convertible_v<Work, P>);                            // explicit
static_assert(!std::is_copy_constructible_v<P> && !std::is_move_constructible_v<P>);
static_assert(noexcept(lv<const P>().workers()) && noexcept(lv<const P>().pending()));
static_assert(noexcept(lv<P>().async_submit(1)));

// --- event_loop.hpp -------------------------------------------------------------------
using skein::EventLoop;
using skein::Notifier;
static_assert(!std::is_copy_constructible_v<EventLoop> && !std::is_move_constructible_v<EventLoop>);
static_assert(std::is_default_constructible_v<EventLoop> &&
              !std::is_nothrow_default_constructible_v<EventLoop>);  // allocates its stop state
static_assert(noexcept(lv<EventLoop>().stop()) && noexcept(lv<const EventLoop>().stopped()));
static_assert(noexcept(lv<const EventLoop>().on_loop()) && noexcept(lv<EventLoop>().keep_alive()));
static_assert(std::is_same_v<decltype(lv<EventLoop>().run_one()), bool>);
static_assert(std::is_same_v<decltype(lv<EventLoop>().poll()), std::size_t>);
static_assert(std::is_same_v<decltype(lv<EventLoop>().make_notifier([] {})), Notifier>);
static_assert(std::is_same_v<decltype(lv<EventLoop>().spawn(add, 1, 2)), PI>);
static_assert(std::is_same_v<decltype(skein::work(lv<EventLoop>(), add, 1, 2)), PI>);
static_assert(std::is_nothrow_copy_constructible_v<Notifier> && std::is_nothrow_copy_assignable_v<Notifier>);
static_assert(noexcept(lv<const Notifier>().trigger()) && noexcept(lv<const Notifier>().close()) && noexcept(
    lv<const Notifier>().open()));
static_assert(!std::is_default_constructible_v<Notifier>);
static_assert(!std::is_copy_constructible_v<EventLoop::KeepAlive> &&
              std::is_nothrow_move_constructible_v<EventLoop::KeepAlive>);
static_assert(skein::detail::Awaiter<EventLoop::ScheduleOperation>);

// --- trace.hpp, and the task identity in run.hpp ---------------------------------------
// Every arity and form still gives the task's Promise: the start site is a
// defaulted parameter after the arguments (up to three), or passed first.
static_assert(std::is_same_v<decltype(skein::run(add, 1, 2)), PI>);
static_assert(std::is_same_v<decltype(skein::run([](int a, int b, int c) { return a + b + c; }, 1, 2, 3)), PI>);
static_assert(
    std::is_same_v<decltype(skein::run([](int a, int b, int c, int d) { return a + b + c + d; }, 1, 2, 3, 4)), PI>);
static_assert(std::is_same_v<decltype(skein::run(skein::named("x"), add, 1, 2)), PI>);
static_assert(std::is_same_v<decltype(skein::run(lv<skein::ThreadPool>(), skein::here(), add, 1, 2)), PI>);
static_assert(std::is_same_v<decltype(skein::spawn(skein::named("x"), add, 1, 2)), void>);
static_assert(std::is_same_v<decltype(lv<TG>().run(skein::named("x"), add, 1, 2)), PI>);
static_assert(std::is_same_v<decltype(lv<const skein::Context>().run(skein::named("x"), add, 1, 2)), PI>);
static_assert(std::is_same_v<decltype(lv<EventLoop>().spawn(skein::named("x"), add, 1, 2)), PI>);
static_assert(noexcept(skein::named("x")) && noexcept(skein::here()) && noexcept(skein::SourceSite::current()));
static_assert(std::is_same_v<decltype(skein::named("x")), skein::TaskName>);
static_assert(sizeof(skein::SourceSite) == sizeof(void*));  // one word, like std::source_location
static_assert(std::is_same_v<decltype(skein::SourceSite::current().file_name()), const char*> &&
              std::is_same_v<decltype(skein::SourceSite::current().line()), unsigned>);
static_assert(noexcept(skein::trace::set_hooks(nullptr)) && noexcept(skein::trace::hooks()) && noexcept(
    skein::trace::current_task()) && noexcept(skein::trace::recording()));
static_assert(std::is_same_v<decltype(skein::trace::current_task()), std::uint64_t>);
static_assert(std::is_same_v<decltype(skein::trace::start("")), bool> &&
              std::is_same_v<decltype(skein::trace::stop()), std::string>);
static_assert(!std::is_copy_constructible_v<skein::trace::TraceSession> &&
              !std::is_default_constructible_v<skein::trace::TraceSession>);
static_assert(std::is_abstract_v<skein::trace::Hooks> == false && !std::is_destructible_v<skein::trace::Hooks>);

}  // namespace
