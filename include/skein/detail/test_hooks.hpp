#pragma once
// The model checker's deliberately broken variants of the waiter core and the
// pool's parking: tests/model_check.test.cpp switches each on in a parking
// policy of its own and shows that the search finds the bug. The switches
// exist only where SKEIN_TEST_HOOKS is defined (the test suite defines it);
// everywhere else each is constant false, and the broken branch, a discarded
// `if constexpr` statement, is never instantiated.

namespace skein::detail {

#if defined(SKEIN_TEST_HOOKS)
#define SKEIN_DETAIL_TEST_SWITCH(name, member) \
  template <class Sys>                         \
  constexpr bool name() noexcept {             \
    if constexpr (requires { Sys::member; })   \
      return Sys::member;                      \
    else                                       \
      return false;                            \
  }
#else
#define SKEIN_DETAIL_TEST_SWITCH(name, member) \
  template <class Sys>                         \
  constexpr bool name() noexcept {             \
    return false;                              \
  }
#endif

/// Parker announces its sleep with a plain store (can overwrite a notification);
/// a coroutine waiter stores `armed` over a fire.
SKEIN_DETAIL_TEST_SWITCH(inject_lost_wakeup, kInjectLostWakeup)
/// The pool's park() sleeps without re-checking the queues.
SKEIN_DETAIL_TEST_SWITCH(inject_skip_idle_recheck, kInjectSkipIdleRecheck)
/// block_wait's stop callback only wakes the waiter, which withdraws later.
SKEIN_DETAIL_TEST_SWITCH(inject_late_withdraw, kInjectLateWithdraw)
/// A select's case lets a primitive complete with it without winning the select.
SKEIN_DETAIL_TEST_SWITCH(inject_select_unclaimed, kInjectSelectUnclaimed)

#undef SKEIN_DETAIL_TEST_SWITCH

}  // namespace skein::detail
