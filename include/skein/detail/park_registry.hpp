#pragma once
// What every thread that parks without a deadline is parked on, for the
// deadlock detector (deadlock_monitor.hpp) and the thread dump.
//
// Each thread that ever parks gets a ThreadRecord, registered process-wide
// until the thread exits. Before a thread parks without a deadline it
// publishes, under its record's lock, the word it parks on and the value that
// word keeps while nobody has woken it (its "quiet" value), and a sequence
// number; afterwards it withdraws them under the same lock. Every skein
// wake-up changes the word before it wakes the thread (Parker::notify,
// EventLoop's wake, the timer service's add), so a reader that finds the word
// still quiet, twice, with the same sequence number, knows the thread was
// parked and not woken the whole time in between. Nothing of this runs on a
// fast path: only a thread that is about to sleep in the kernel pays (two
// uncontended lock round trips and a clock read), and only while detection is
// on.

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "deadline.hpp"
#include "spin.hpp"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include "win32.hpp"  // GetCurrentThreadId, FlsAlloc, FlsSetValue (Windows)

namespace skein::detail {

/// Why a thread is parked.
enum class ParkKind : std::uint8_t {
  none,         // not parked (or parked with a deadline: it wakes by itself)
  blocked,      // a blocking wait of a skein primitive (Queue::get, Promise::get, ...)
  idle_worker,  // a pool thread with nothing to run
  idle_timer,   // the timer thread with no timer armed
  idle_loop,    // an EventLoop waiting for posts
  other,        // an internal hand-over that a running thread completes
};

/// A blocking wait's description and, for the detector's "fail the wait"
/// action, how to withdraw it: `interrupt(ctx)` unlinks the waiter and wakes
/// its thread, returning false if a release got there first.
struct BlockInfo {
  const char* kind = nullptr;  // "Queue::get", "Mutex::lock", ...
  const void* object = nullptr;
  bool (*interrupt)(void*) noexcept = nullptr;
  void* ctx = nullptr;
};

struct ThreadRecord {
  SpinLock lock;
  // Under `lock`:
  const std::atomic<std::uint32_t>* word = nullptr;  // parked on, or null
  std::uint32_t quiet = 0;                           // its value until someone wakes the thread
  ParkKind kind = ParkKind::none;
  std::uint64_t seq = 0;  // one more per park
  BlockInfo block{};
  Clock::time_point since{};
  char site[160] = {};       // a blocked wait's script location (WaitSite), or empty
  bool pool_thread = false;  // a ThreadPool's worker or spare
  bool deadlocked = false;   // its wait was failed by the detector: throw Deadlock
  // A pool thread's idle parks are not published under the lock (they are
  // frequent: on one CPU a worker parks whenever the other runs): its idle
  // word is registered once, and the thread bumps `idle_parks` (a plain
  // store) before each idle park makes the word quiet, so two looks that
  // see the same count and a quiet word bracket one park.
  const std::atomic<std::uint32_t>* idle_word = nullptr;  // set once (under `lock`)
  std::uint32_t idle_quiet = 0;
  std::atomic<std::uint64_t> idle_parks{0};
  // Set once at registration:
  long tid = 0;
  std::uint64_t uid = 0;  // unique for the process's life (a new record may reuse a freed one's address)
  // Under the registry's lock:
  ThreadRecord* prev = nullptr;
  ThreadRecord* next = nullptr;
};

/// Every live ThreadRecord. Never destroyed: threads park until the process ends.
struct ThreadRegistry {
  std::mutex mu;
  ThreadRecord* head = nullptr;
  std::size_t count = 0;
  std::uint64_t next_uid = 1;

  static ThreadRegistry& get() noexcept {
    // Never destroyed, and made without allocating (a noexcept path may be first).
    alignas(ThreadRegistry) static unsigned char storage[sizeof(ThreadRegistry)];
    static ThreadRegistry* const r = ::new (static_cast<void*>(storage)) ThreadRegistry;
    return *r;
  }
};

inline long this_thread_os_id() noexcept {
#if defined(__linux__)
  return static_cast<long>(::syscall(SYS_gettid));
#elif defined(_WIN32)
  return static_cast<long>(GetCurrentThreadId());
#else
  return 0;
#endif
}

/// Whether threads publish their parks: -1 until the first park reads
/// SKEIN_DEADLOCK, then 0 (off) or 1.
inline std::atomic<int> g_park_tracking{-1};

/// Starts the detector's thread once, and reads SKEIN_DEADLOCK
/// (deadlock_monitor.hpp, included at the end of this file, defines them).
inline void ensure_deadlock_monitor() noexcept;
inline bool deadlock_detection_from_env() noexcept;

inline bool park_tracking() noexcept {
  int v = g_park_tracking.load(std::memory_order_relaxed);
  if (v < 0) {
    int want = deadlock_detection_from_env() ? 1 : 0;
    if (g_park_tracking.compare_exchange_strong(v, want, std::memory_order_relaxed)) v = want;
  }
  return v > 0;
}

/// Makes and registers the calling thread's record; null if out of memory.
inline ThreadRecord* register_this_thread() noexcept {
  auto* rec = new (std::nothrow) ThreadRecord;
  if (!rec) return nullptr;
  rec->tid = this_thread_os_id();
  auto& r = ThreadRegistry::get();
  std::lock_guard lk(r.mu);
  rec->uid = r.next_uid++;
  rec->next = r.head;
  if (r.head) r.head->prev = rec;
  r.head = rec;
  ++r.count;
  return rec;
}

/// Unregisters and frees a record (its thread is exiting).
inline void unregister_thread(ThreadRecord* rec) noexcept {
  {
    auto& r = ThreadRegistry::get();
    std::lock_guard lk(r.mu);
    if (rec->prev)
      rec->prev->next = rec->next;
    else
      r.head = rec->next;
    if (rec->next) rec->next->prev = rec->prev;
    --r.count;
  }
  delete rec;
}

#if defined(_WIN32)
/// Windows: the record is released by a fiber-local storage callback, which
/// the system calls with the record's address as the thread exits. Not by a
/// thread_local's destructor: MinGW-w64's g++ emulates thread_local storage
/// on a pthread key that winpthreads destroys before the key that runs
/// thread_local destructors, so such a destructor reads its own members from
/// freed memory (seen under Wine: a pool thread's exit unlinked a garbage
/// record from the registry and crashed).
inline void __stdcall release_thread_record(void* rec) {
  if (rec) unregister_thread(static_cast<ThreadRecord*>(rec));
}
inline ThreadRecord* this_thread_record() noexcept {
  thread_local ThreadRecord* rec = nullptr;  // trivially destructible
  thread_local bool made = false;
  if (!made) {
    made = true;
    static const unsigned long index = FlsAlloc(&release_thread_record);
    if (index == kFlsOutOfIndexes) return nullptr;  // no records, no detection
    // Null again if the thread_local's emulated storage was freed while the
    // thread exits: the record is still in its slot.
    if (void* had = FlsGetValue(index)) return rec = static_cast<ThreadRecord*>(had);
    rec = register_this_thread();
    if (rec && !FlsSetValue(index, rec)) {
      unregister_thread(rec);
      rec = nullptr;
    }
  }
  return rec;
}
#else
class ThreadRecordHolder {
public:
  ThreadRecordHolder() noexcept : rec_(register_this_thread()) {}
  ~ThreadRecordHolder() {
    if (rec_) unregister_thread(rec_);
    rec_ = nullptr;
  }
  ThreadRecordHolder(const ThreadRecordHolder&) = delete;
  ThreadRecordHolder& operator=(const ThreadRecordHolder&) = delete;
  [[nodiscard]] ThreadRecord* get() const noexcept { return rec_; }

private:
  ThreadRecord* rec_;
};

/// The calling thread's record (registered on first use); null if it could
/// not be allocated or the thread is exiting.
inline ThreadRecord* this_thread_record() noexcept {
  thread_local ThreadRecordHolder holder;
  return holder.get();
}
#endif

/// A ThreadPool's threads say so once, with the word their idle parks sleep
/// on: the detector never fails their waits (their tasks' callers see the
/// outcome instead). Returns the record, for note_idle_park.
inline ThreadRecord* mark_pool_thread(const std::atomic<std::uint32_t>* idle_word, std::uint32_t quiet) noexcept {
  ThreadRecord* r = this_thread_record();
  if (r) {
    std::lock_guard lk(r->lock);
    r->pool_thread = true;
    r->idle_word = idle_word;
    r->idle_quiet = quiet;
  }
  return r;
}

/// Before a pool thread's idle park makes its word quiet (see idle_parks).
inline void note_idle_park(ThreadRecord* r) noexcept {
  if (r) r->idle_parks.store(r->idle_parks.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

/// A script host's description of where its script is on this thread (its
/// function and line), asked for by a blocking wait that is about to park.
struct WaitSite {
  void (*describe)(void* ctx, char* buf, std::size_t size) noexcept = nullptr;
  void* ctx = nullptr;
};
inline thread_local WaitSite tls_wait_site{};

/// Publishes a park on `word` (quiet while it equals `quiet`); returns the
/// record to pass to park_end, or null when nothing was published.
inline ThreadRecord* park_begin(const std::atomic<std::uint32_t>* word, std::uint32_t quiet, ParkKind kind,
                                const BlockInfo* block = nullptr) noexcept {
  if (!park_tracking()) return nullptr;
  ThreadRecord* r = this_thread_record();
  if (!r) return nullptr;
  ensure_deadlock_monitor();
  const auto now = Clock::now();
  char site[sizeof r->site] = {};
  if (kind == ParkKind::blocked && tls_wait_site.describe) {
    tls_wait_site.describe(tls_wait_site.ctx, site, sizeof site);
    site[sizeof site - 1] = '\0';
  }
  std::lock_guard lk(r->lock);
  std::memcpy(r->site, site, sizeof site);
  r->word = word;
  r->quiet = quiet;
  r->kind = kind;
  ++r->seq;
  r->block = block ? *block : BlockInfo{};
  r->since = now;
  return r;
}

inline void park_end(ThreadRecord* r) noexcept {
  if (!r) return;
  std::lock_guard lk(r->lock);
  r->word = nullptr;
  r->kind = ParkKind::none;
  r->block = BlockInfo{};
}

/// True (once) if the detector failed this thread's last wait.
inline bool take_deadlock_verdict() noexcept {
  if (g_park_tracking.load(std::memory_order_relaxed) <= 0) return false;
  ThreadRecord* r = this_thread_record();
  if (!r) return false;
  std::lock_guard lk(r->lock);
  const bool d = r->deadlocked;
  r->deadlocked = false;
  return d;
}

/// The description of the blocking wait the calling thread is about to make,
/// read by the Parker when it publishes its park (set around the wait).
inline thread_local const BlockInfo* tls_block = nullptr;

}  // namespace skein::detail

#include "deadlock_monitor.hpp"  // defines what the functions above call
