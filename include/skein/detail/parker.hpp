#pragma once
// Parker: the state word a blocked thread sleeps on. A notifier moves it to
// `notified`; a stop callback or the waiter's own deadline may first move it to
// `interrupted`, after which the waiter decides who won (see block_wait in
// waiter.hpp). The word is parked on by address: a futex on Linux,
// WaitOnAddress on Windows, elsewhere a condition variable from a fixed table
// indexed by the address — never one inside the Parker, which the waiter may
// destroy the moment it sees the word change, before the notifier's wake-up
// call returns (a wake-up for a word that is gone is a spurious one for
// whoever shares its slot, which every waiter tolerates). A flag in the word
// says the waiter went to sleep: a notification that comes while it still
// spins costs no system call (with a full 1P/1C queue that is most of them).
// SKEIN_PORTABLE_PARKING selects the table on every system (to test it).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <type_traits>

#if defined(__linux__) && !defined(SKEIN_PORTABLE_PARKING)
#define SKEIN_PARK_FUTEX 1
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(_WIN32) && !defined(SKEIN_PORTABLE_PARKING)
#define SKEIN_PARK_WINDOWS 1
#else
#include <condition_variable>
#endif

#include "deadline.hpp"
#include "fault.hpp"
#include "park_registry.hpp"
#include "spin.hpp"
#include "stop_token.hpp"
#include "test_hooks.hpp"
#include "tuning.hpp"
#include "win32.hpp"  // WaitOnAddress, WakeByAddressSingle (Windows)

namespace skein::detail {

/// What Parker needs from the system: an atomic word, parking on it until it
/// changes (or a deadline passes), and waking the thread parked on it. The
/// model checker (tests/support/explorer.hpp) substitutes its own, in which
/// every step is a scheduling point; this is the real one.
class OsParking {
public:
  template <class T>
  using Atomic = std::atomic<T>;
  using Mutex = std::mutex;  // a lock held for a few instructions (the pool's idle list)
  /// What a blocked thread registers on its task's stop token. (The model
  /// checker's waits, in its own scheduling, for a callback running on
  /// another thread before deregistering, where skein::stop_callback blocks.)
  template <class CB>
  using StopCallback = skein::stop_callback<CB>;

  /// Parks while `word == expected`; returns false once `deadline` has passed.
  /// May return early (a change, a spurious wake-up): the caller re-checks.
  bool park(Atomic<std::uint32_t>& word, std::uint32_t expected, const Clock::time_point* deadline) noexcept {
#if defined(SKEIN_PARK_FUTEX)
    timespec ts{};
    timespec* tsp = nullptr;
    if (deadline && *deadline != kNever) {
      // Compared before subtracting: a deadline far in the past (or
      // time_point::min()) must not overflow `deadline - now`.
      const auto now = Clock::now();
      if (*deadline <= now) return false;
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - now).count();
      ts.tv_sec = static_cast<time_t>(ns / 1000000000);
      ts.tv_nsec = static_cast<long>(ns % 1000000000);
      tsp = &ts;
    }
    // FUTEX_WAIT returns at once if the word no longer equals `expected`, so
    // a change between the caller's load and the syscall is not lost.
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
    return true;
#elif defined(SKEIN_PARK_WINDOWS)
    unsigned long ms = 0xFFFFFFFFul;  // INFINITE
    if (deadline && *deadline != kNever) {
      const auto now = Clock::now();
      if (*deadline <= now) return false;
      // Rounded up (a wait never ends before its deadline), below INFINITE;
      // a longer wait simply parks again.
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - now).count();
      ms = left >= 0xFFFFFFFEll ? 0xFFFFFFFEul : static_cast<unsigned long>(left);
    }
    // As FUTEX_WAIT: returns at once if the word no longer equals `expected`.
    (void)WaitOnAddress(&word, &expected, sizeof expected, ms);
    return true;
#else
    Slot& s = slot_of(&word);
    std::unique_lock lk(s.mu);
    auto pred = [&] { return word.load(std::memory_order_acquire) != expected; };
    if (!deadline || *deadline == kNever) {  // wait_until(max) overflows converting clocks
      s.cv.wait(lk, pred);
      return true;
    }
    return s.cv.wait_until(lk, *deadline, pred);
#endif
  }

  void wake(Atomic<std::uint32_t>& word) noexcept {
#if defined(SKEIN_PARK_FUTEX)
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
#elif defined(SKEIN_PARK_WINDOWS)
    WakeByAddressSingle(&word);
#else
    Slot& s = slot_of(&word);
    // The lock orders this after a waiter's check of the word: it either saw
    // the change or waits on the condition variable already.
    { std::lock_guard lk(s.mu); }
    s.cv.notify_all();  // the slot's other waiters re-check and sleep again
#endif
  }

  /// How long a waiter spins before it parks: ~ a few microseconds, far
  /// cheaper than a park and a cross-CPU wake; useless on one CPU, where the
  /// notifier cannot run while we spin.
  static int spin_budget() noexcept { return spinning_helps() ? tuning::kParkSpins : 0; }

#if !defined(SKEIN_PARK_FUTEX) && !defined(SKEIN_PARK_WINDOWS)
private:
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
  };
  /// The table is never destroyed: threads may park until the process ends.
  static Slot& slot_of(const void* word) noexcept {
    static constexpr std::size_t kSlots = 64;
    static Slot* const table = new Slot[kSlots];
    return table[(reinterpret_cast<std::uintptr_t>(word) / alignof(std::max_align_t)) % kSlots];
  }
#endif
};

template <class Sys = OsParking>
class BasicParker {
public:
  static constexpr std::uint32_t kWaiting = 0, kNotified = 1, kInterrupted = 2;

  /// Moves to `notified` from any state; wakes the thread only if it sleeps
  /// (a waiter still spinning sees the change without a system call).
  void notify() noexcept {
    SKEIN_FAULT_POINT();
    // acq_rel: the waiter's acquire load sees what the notifier wrote before;
    // reading the old word in the same step closes the race with a waiter
    // that is just going to sleep (it set kSleeping first, or sees kNotified).
    if (word_.exchange(kNotified, std::memory_order_acq_rel) & kSleeping) sys_.wake(word_);
  }
  /// Moves `waiting` to `interrupted` and wakes the thread; false if already notified.
  bool interrupt() noexcept {
    SKEIN_FAULT_POINT();
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    for (;;) {
      if ((w & ~kSleeping) != kWaiting) return false;
      if (word_.compare_exchange_weak(w, kInterrupted, std::memory_order_acq_rel, std::memory_order_relaxed)) break;
    }
    if (w & kSleeping) sys_.wake(word_);
    return true;
  }
  /// Back to `waiting`, for a waiter that returned and waits again; only
  /// while no notify() or interrupt() can be in flight (the caller's protocol
  /// ensures it).
  void reset() noexcept { word_.store(kWaiting, std::memory_order_relaxed); }
  [[nodiscard]] std::uint32_t state() const noexcept { return word_.load(std::memory_order_acquire) & ~kSleeping; }
  /// The word, and its value while the thread sleeps in wait_while(from)
  /// unwoken (for the deadlock detector's view of idle pool threads).
  [[nodiscard]] const auto* word() const noexcept { return &word_; }
  static constexpr std::uint32_t sleeping_value(std::uint32_t from) noexcept { return from | kSleeping; }

  /// Spins up to `spins` pauses while the state is `from`; returns the state.
  std::uint32_t spin_while(std::uint32_t from, int spins) const noexcept {
    for (int i = 0; i < spins; ++i) {
      auto s = state();
      if (s != from) return s;
      cpu_relax();
    }
    return state();
  }

  /// Blocks while the state is `from`, until `deadline` if given. Returns the
  /// state. A wait without a deadline is published for the deadlock detector
  /// (park_registry.hpp) as `kind`, once the thread is about to sleep.
  std::uint32_t wait_while(std::uint32_t from, const Clock::time_point* deadline = nullptr,
                           ParkKind kind = ParkKind::other) noexcept {
    ThreadRecord* published = nullptr;
    struct Unpublish {
      ThreadRecord*& r;
      ~Unpublish() { park_end(r); }
    } unpublish{published};
    for (;;) {
      std::uint32_t w = word_.load(std::memory_order_acquire);
      if ((w & ~kSleeping) != from) return w & ~kSleeping;
      // Say we sleep before sleeping: a notifier that changes the word after
      // this sees the flag and wakes us; one that changed it before makes the
      // CAS (or the park's own check) fail.
      if (!(w & kSleeping)) {
        if constexpr (std::is_same_v<Sys, OsParking>) {
          // Quiet while the word is `from` with the flag: any notify() or
          // interrupt() changes it. Published before the flag is set.
          if (!published && kind != ParkKind::idle_worker && (!deadline || *deadline == kNever))
            published = park_begin(&word_, from | kSleeping, kind, kind == ParkKind::blocked ? tls_block : nullptr);
        }
        SKEIN_FAULT_POINT();
        if constexpr (inject_lost_wakeup<Sys>()) {
          word_.store(w | kSleeping, std::memory_order_release);  // overwrites a notification
        } else if (!word_.compare_exchange_weak(w, w | kSleeping, std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
          continue;
        }
        w |= kSleeping;
      }
      if (!sys_.park(word_, w, deadline)) return state();
    }
  }

private:
  static constexpr std::uint32_t kSleeping = 4;  // flag: the waiter is (about to be) in the kernel

  typename Sys::template Atomic<std::uint32_t> word_{kWaiting};
  [[no_unique_address]] Sys sys_;
};

using Parker = BasicParker<>;

}  // namespace skein::detail
