#pragma once
/// skein: header-only C++20 coroutine concurrency — goroutine-style tasks,
/// promises, cancellation contexts, timers and Go-style primitives. Include
/// this for everything.

#include "detail/config.hpp"  // first: the C++20 check
#include "atomic.hpp"
#include "context.hpp"
#include "deadlock.hpp"
#include "errors.hpp"
#include "event_loop.hpp"
#include "executor.hpp"
#include "mutex.hpp"
#include "pool.hpp"
#include "promise.hpp"
#include "queue.hpp"
#include "run.hpp"
#include "rwlock.hpp"
#include "select.hpp"
#include "semaphore.hpp"
#include "sequence.hpp"
#include "shared.hpp"
#include "sleep.hpp"
#include "task_group.hpp"
#include "thread_pool.hpp"
#include "timer.hpp"
#include "trace.hpp"
#include "version.hpp"
#include "wait_group.hpp"
#include "weighted_semaphore.hpp"
#include "when_all.hpp"
