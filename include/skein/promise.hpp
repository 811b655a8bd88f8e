#pragma once
/// Promise<T>: an eager, shareable handle to a task's result — and the return
/// type of skein coroutines (`skein::Promise<int> f() { co_return 42; }`) —
/// and Resolver<T>, a promise settled by hand.

#include "detail/config.hpp"  // first: the C++20 check

#include "detail/promise_handle.hpp"
