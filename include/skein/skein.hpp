#pragma once
/// skein: header-only C++20 coroutine concurrency — goroutine-style tasks,
/// promises, cancellation contexts and timers. Include this for everything.

#include "context.hpp"
#include "errors.hpp"
#include "promise.hpp"
#include "run.hpp"
#include "sleep.hpp"
#include "thread_pool.hpp"
#include "version.hpp"
#include "when_all.hpp"
