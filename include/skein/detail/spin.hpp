#pragma once
// Short-wait helpers: a CPU pause and a tiny test-and-test-and-set lock for
// critical sections of a few instructions (waiter lists).

#include <atomic>
#include <cstddef>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

#include "assert.hpp"
#include "tuning.hpp"

namespace skein::detail {

/// Number of hardware threads this process may run on (honours taskset / cpusets).
inline std::size_t affinity_cpus() noexcept {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<std::size_t>(n);
  }
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

/// Spinning for a notifier only helps when the notifier can run meanwhile:
/// not on a single CPU (read once, at the first wait).
inline bool spinning_helps() noexcept {
  static const bool multi = affinity_cpus() > 1;
  return multi;
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  // PAUSE, without <immintrin.h>: that header is 47,000 lines, most of a
  // second of every translation unit that includes skein.
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// One step of a short wait for another thread: a pause at first, then (on a
/// 2-core VM the other thread may be descheduled) yielding the CPU to it.
inline void spin_wait_step(unsigned& i) noexcept {
  if (i < static_cast<unsigned>(tuning::kSpinLockPauses)) {
    ++i;
    cpu_relax();
  } else {
    std::this_thread::yield();
  }
}

/// Guards waiter lists. Holders never block or call user code, so contention is
/// brief; after a short spin the waiter yields its CPU (on a 2-core VM the
/// holder may be descheduled, and spinning against it only burns its slice).
class SpinLock {
public:
  void lock() noexcept {
    // acquire: pairs with unlock's release, publishing the protected state.
    if (!flag_.exchange(true, std::memory_order_acquire)) return;
    lock_contended();
  }
  bool try_lock() noexcept {
    return !flag_.load(std::memory_order_relaxed) && !flag_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept {
    SKEIN_ASSERT(flag_.load(std::memory_order_relaxed), "a SpinLock is unlocked only while locked");
    flag_.store(false, std::memory_order_release);
  }

private:
  // Exponential backoff between looks: each look (and each failed exchange)
  // pulls the lock's cache line away from the holder, which on these VMs
  // costs more than the critical section itself. Backing off lets the holder
  // finish, and often take the lock again for its next item, instead of two
  // CPUs trading the line for every item (a producer and a consumer of one
  // Queue: 4P/4C coroutines went from ~100 to ~35 ns per item, a Pool item
  // from ~150 to ~80). Past the last doubling it yields its CPU: on a 2-core
  // VM the holder may be descheduled.
  [[gnu::noinline]] void lock_contended() noexcept {
    // On one CPU the holder cannot run while we pause: yield at once.
    unsigned pauses = spinning_helps() ? tuning::kSpinLockBackoffFirst : tuning::kSpinLockBackoffMax;
    for (;;) {
      if (pauses < tuning::kSpinLockBackoffMax) {
        for (unsigned k = 0; k < pauses; ++k) cpu_relax();
        pauses *= 2;
      } else {
        std::this_thread::yield();
      }
      if (!flag_.load(std::memory_order_relaxed) && !flag_.exchange(true, std::memory_order_acquire)) return;
    }
  }

  std::atomic<bool> flag_{false};
};

}  // namespace skein::detail
