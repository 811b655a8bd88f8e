#pragma once
// One process-wide timer thread with an indexed binary min-heap of deadlines.
// Sleeping coroutines cost a heap entry each, not a thread. Cancelling removes
// the entry in O(log n) under the same lock the timer thread pops under, so
// exactly one of "fired" and "cancelled" wins for every entry.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "thread_name.hpp"
#include "assert.hpp"
#include "fault.hpp"
#include "parker.hpp"

namespace skein::detail {

struct TimerNode {
  static constexpr std::size_t kNotQueued = ~std::size_t{0};
  Clock::time_point deadline{};
  std::uint64_t seq = 0;
  std::size_t index = kNotQueued;  // position in the heap, guarded by the service lock
  /// Called on the timer thread once the entry fired, without the lock held.
  /// `aborted` is true when the service shuts down before the deadline.
  void (*fire)(TimerNode*, bool aborted) noexcept = nullptr;
};

class TimerService {
public:
  TimerService() = default;
  TimerService(const TimerService&) = delete;
  TimerService& operator=(const TimerService&) = delete;

  ~TimerService() {
    std::vector<TimerNode*> rest;
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      idle_word_.store(0, std::memory_order_release);
      rest.swap(heap_);
      for (auto* n : rest) n->index = TimerNode::kNotQueued;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    for (auto* n : rest) n->fire(n, true);
  }

  void add(TimerNode* n) {
    bool earliest = false, rejected = false;
    {
      std::lock_guard lk(mu_);
      if (stop_) {
        n->index = TimerNode::kNotQueued;
        rejected = true;
      } else {
        if (!thread_.joinable())
          thread_ = std::thread([this] {
            name_this_thread("skein-timer");
            (void)this_thread_record();  // registered now, not under mu_ (the detector's lock order)
            loop();
          });
        heap_.push_back(n);  // may throw: before n is marked queued
        n->seq = seq_++;
        n->index = heap_.size() - 1;
        sift_up(n->index);
        // Wake the thread only if it sleeps past this deadline: an awake
        // thread looks at the heap before it sleeps again, and one that sleeps
        // until an earlier (or a cancelled) deadline wakes in time anyway.
        // (A timer started and stopped over and over must not cost a futex
        // wake each time.)
        earliest = sleeping_ && n->deadline < sleep_until_;
        // Not idle any more, before the thread even wakes (the detector's view).
        idle_word_.store(0, std::memory_order_release);
      }
    }
    if (rejected)
      n->fire(n, true);
    else if (earliest)
      cv_.notify_one();
  }

  /// Removes `n` if it has not fired; returns true if it was removed (then it
  /// will never fire), false if it fired or is firing.
  bool cancel(TimerNode* n) noexcept {
    std::lock_guard lk(mu_);
    if (n->index == TimerNode::kNotQueued) return false;
    remove_at(n->index);
    return true;
  }

  [[nodiscard]] std::size_t pending() const {
    std::lock_guard lk(mu_);
    return heap_.size();
  }

private:
  void loop() {
    std::unique_lock lk(mu_);
    while (!stop_) {
      if (heap_.empty()) {
        sleep(lk, kNever);
        continue;
      }
      auto now = Clock::now();
      TimerNode* top = heap_.front();
      if (top->deadline > now) {
        // A copy: while we wait, `top` may be cancelled and its frame freed.
        sleep(lk, top->deadline);
        continue;
      }
      remove_at(0);
      lk.unlock();
      SKEIN_FAULT_POINT();  // out of the heap, not yet fired: a cancel fails, a reset races the fire
      top->fire(top, false);
      lk.lock();
    }
  }

  void sleep(std::unique_lock<std::mutex>& lk, Clock::time_point when) {
    sleeping_ = true;
    sleep_until_ = when;
    if (when == kNever) {  // never fires: wait_until(max) may overflow converting clocks
      // No timer armed: the deadlock detector may count this thread as
      // parked until add() or the shutdown clears the word.
      idle_word_.store(1, std::memory_order_release);
      ThreadRecord* published = park_begin(&idle_word_, 1, ParkKind::idle_timer);
      cv_.wait(lk);
      park_end(published);
      idle_word_.store(0, std::memory_order_release);
    } else {
      cv_.wait_until(lk, when);
    }
    sleeping_ = false;
  }

  static bool less(const TimerNode* a, const TimerNode* b) noexcept {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
  }
  void place(std::size_t i, TimerNode* n) noexcept {
    heap_[i] = n;
    n->index = i;
  }
  void sift_up(std::size_t i) noexcept {
    TimerNode* n = heap_[i];
    while (i > 0) {
      std::size_t p = (i - 1) / 2;
      if (!less(n, heap_[p])) break;
      place(i, heap_[p]);
      i = p;
    }
    place(i, n);
  }
  void sift_down(std::size_t i) noexcept {
    TimerNode* n = heap_[i];
    const std::size_t size = heap_.size();
    for (;;) {
      std::size_t c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && less(heap_[c + 1], heap_[c])) ++c;
      if (!less(heap_[c], n)) break;
      place(i, heap_[c]);
      i = c;
    }
    place(i, n);
  }
  void remove_at(std::size_t i) noexcept {
    SKEIN_ASSERT(i < heap_.size() && heap_[i]->index == i, "a queued timer knows its place in the heap");
    TimerNode* n = heap_[i];
    TimerNode* last = heap_.back();
    heap_.pop_back();
    n->index = TimerNode::kNotQueued;
    if (i < heap_.size()) {
      place(i, last);
      sift_down(i);
      sift_up(last->index);
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<std::uint32_t> idle_word_{0};  // 1 while the thread sleeps with no timer armed
  std::vector<TimerNode*> heap_;
  std::uint64_t seq_ = 0;
  bool stop_ = false;
  bool sleeping_ = false;                   // the thread waits on cv_ ...
  Clock::time_point sleep_until_ = kNever;  // ... until then (kNever: until notified)
  std::thread thread_;
};

/// The process-wide timer service. It is never destroyed: a sleeping
/// coroutine may outlive every static (as in Go, timers belong to the
/// runtime), and destroying it at exit would wake coroutines onto executors
/// that are already gone. Its thread is blocked in a wait when the process
/// exits; pending entries stay reachable, so nothing is reported as leaked.
inline TimerService& timer_service() {
  static TimerService* s = new TimerService;
  return *s;
}

}  // namespace skein::detail
