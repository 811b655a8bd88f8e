#pragma once
// A per-thread cache of coroutine frames by size class. Fork-join workloads
// allocate and free a frame per task at a high rate, often freeing on another
// thread than the one that allocated; glibc's tcache keeps only 7 blocks per
// size, so bursts fall through to the slower arena paths. Here each thread
// keeps up to kMaxPerClass frames per 32-byte class; frames freed by a thread
// go to that thread's cache (they migrate, as in tcache). Classes are spaced
// as malloc's chunks are, so a frame's block is no larger than malloc's own. Beyond the cap they
// move in batches through a process-wide depot to the threads that allocate
// (tcmalloc's transfer cache); beyond the largest class, and beyond the
// depot's cap, they go back to operator delete.

#include <cstddef>
#include <mutex>
#include <new>

#include "tuning.hpp"
#include "win32.hpp"  // FlsAlloc, FlsSetValue (Windows)

// SKEIN_FRAME_CACHE=0 sends every frame to new/delete. That is the default
// under AddressSanitizer, so that ASan sees every frame's lifetime.
#ifndef SKEIN_FRAME_CACHE
#if defined(__SANITIZE_ADDRESS__)
#define SKEIN_FRAME_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SKEIN_FRAME_CACHE 0
#endif
#endif
#endif
#ifndef SKEIN_FRAME_CACHE
#define SKEIN_FRAME_CACHE 1
#endif

namespace skein::detail {

class FrameCache {
public:
  static constexpr std::size_t kSmallest = tuning::kFrameSmallest;
  static constexpr std::size_t kGranule = tuning::kFrameGranule;
  static constexpr std::size_t kClasses = tuning::kFrameClasses;  // frames up to 1 KiB
  static_assert(tuning::kFrameSmallest + (kClasses - 1) * tuning::kFrameGranule >= 1024);
  static constexpr unsigned kMaxPerClass = tuning::kFramesPerClass;
  static constexpr unsigned kBatch = tuning::kFrameBatch;
  static constexpr unsigned kDepotBatches = tuning::kFrameDepotBatches;

  static void* allocate(std::size_t n) {
    if constexpr (!SKEIN_FRAME_CACHE) return ::operator new(n);
    std::size_t c = class_of(n);
    if (c < kClasses) {
      State& s = state();
      if (!s.heads[c]) refill(s, c);
      if (Node* b = s.heads[c]) {
        s.heads[c] = b->next;
        --s.counts[c];
        return b;
      }
      return ::operator new(size_of(c));  // the class's size, so it can be cached later
    }
    return ::operator new(n);
  }

  static void deallocate(void* p, std::size_t n) noexcept {
    if constexpr (!SKEIN_FRAME_CACHE) return ::operator delete(p);
    std::size_t c = class_of(n);
    if (c < kClasses) {
      State& s = state();
      if (s.alive) {
        auto* b = static_cast<Node*>(p);
        if (s.counts[c] < kMaxPerClass) {
          b->next = s.heads[c];
          s.heads[c] = b;
          ++s.counts[c];
          return;
        }
        // Full: gather a batch for the depot, where a thread that allocates
        // more than it frees (a producer of tasks) finds it.
        b->next = s.spill[c];
        s.spill[c] = b;
        if (++s.spill_counts[c] == kBatch) {
          depot().put(c, s.spill[c]);
          s.spill[c] = nullptr;
          s.spill_counts[c] = 0;
        }
        return;
      }
      ::operator delete(p);
      return;
    }
    ::operator delete(p);
  }

  /// The class of an n-byte frame, and the size of that class's blocks.
  static constexpr std::size_t class_of(std::size_t n) noexcept {
    return n <= kSmallest ? 0 : (n - kSmallest + kGranule - 1) / kGranule;
  }
  static constexpr std::size_t size_of(std::size_t c) noexcept { return kSmallest + c * kGranule; }

private:
  struct Node {
    Node* next;
    Node* next_batch;  // a batch's first block, in the depot
  };
  static_assert(kSmallest >= sizeof(Node));

  // Frames freed on one thread and allocated on another (a task started by
  // one worker and ended by another) would otherwise go through operator
  // delete and new, and contend on malloc's arena lock: full batches of
  // kBatch frames move between threads here, one lock round trip per batch.
  // Beyond kDepotBatches batches per class they go back to operator delete.
  class Depot {
  public:
    void put(std::size_t c, Node* batch) noexcept {
      {
        std::lock_guard lk(mu_);
        if (counts_[c] < kDepotBatches) {
          batch->next_batch = batches_[c];
          batches_[c] = batch;
          ++counts_[c];
          return;
        }
      }
      while (batch) {
        Node* n = batch->next;
        ::operator delete(batch);
        batch = n;
      }
    }
    Node* take(std::size_t c) noexcept {
      std::lock_guard lk(mu_);
      Node* b = batches_[c];
      if (b) {
        batches_[c] = b->next_batch;
        --counts_[c];
      }
      return b;
    }

  private:
    std::mutex mu_;
    Node* batches_[kClasses] = {};
    unsigned counts_[kClasses] = {};
  };
  static Depot& depot() noexcept {
    // Never destroyed: frames may be freed by static destructors that run
    // after it would have been.
    static Depot* d = new Depot;
    return *d;
  }

  // Trivially destructible, so it stays usable after the thread's cleanup ran
  // (frames may still be freed by later thread_local or static destructors):
  // `alive` then routes them straight to operator delete.
  struct State {
    Node* heads[kClasses];
    unsigned counts[kClasses];
    Node* spill[kClasses];
    unsigned spill_counts[kClasses];
    bool alive;
  };
  static void refill(State& s, std::size_t c) noexcept {
    if (s.spill[c]) {  // our own spill first
      s.heads[c] = s.spill[c];
      s.counts[c] = s.spill_counts[c];
      s.spill[c] = nullptr;
      s.spill_counts[c] = 0;
    } else if (Node* b = depot().take(c)) {
      s.heads[c] = b;
      s.counts[c] = kBatch;
    }
  }

  static void drain(State& s) noexcept {
    s.alive = false;
    for (std::size_t c = 0; c < kClasses; ++c) {
      for (Node** list : {&s.heads[c], &s.spill[c]}) {
        while (Node* b = *list) {
          *list = b->next;
          ::operator delete(b);
        }
      }
      s.counts[c] = s.spill_counts[c] = 0;
    }
  }

#if defined(_WIN32)
  // Windows: each thread's State is on the heap, drained and freed by a
  // fiber-local storage callback that the system calls with its address as
  // the thread exits. Not by a thread_local's destructor: MinGW-w64's g++
  // frees its emulated thread_local storage before it runs thread_local
  // destructors (see park_registry.hpp), so the cached frames would leak.
  static void __stdcall release_state(void* p) {
    auto* s = static_cast<State*>(p);
    drain(*s);
    delete s;
  }
  static State* make_state() noexcept {
    static thread_local State unusable{};  // zero: alive false, frames go to operator new/delete
    static const unsigned long index = FlsAlloc(&release_state);
    if (index == kFlsOutOfIndexes) return &unusable;
    // The thread_local pointer is null again if its emulated storage was
    // freed while the thread exits: the thread's State is still in its slot.
    if (void* had = FlsGetValue(index)) return static_cast<State*>(had);
    auto* s = new (std::nothrow) State{};
    if (!s) return &unusable;
    if (!FlsSetValue(index, s)) {
      delete s;
      return &unusable;
    }
    s->alive = true;
    return s;
  }
  static State& raw() noexcept {
    static thread_local State* p = nullptr;
    if (!p) [[unlikely]]
      p = make_state();
    return *p;
  }
  static State& state() noexcept { return raw(); }
#else
  struct Cleanup {
    ~Cleanup() { drain(raw()); }
  };
  static State& raw() noexcept {
    static thread_local State s{};
    return s;
  }
  static State& state() noexcept {
    State& s = raw();
    if (!s.alive) [[unlikely]] {
      // First use on this thread (or after cleanup): register the cleanup once.
      static thread_local bool registered = false;
      if (!registered) {
        registered = true;
        static thread_local Cleanup cleanup;
        (void)cleanup;
        s.alive = true;
      }
    }
    return s;
  }
#endif
};

/// Base of what is made and freed at task rate (coroutine frames, task
/// states, context links): allocated from the FrameCache.
struct FrameCached {
  static void* operator new(std::size_t n) { return FrameCache::allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { FrameCache::deallocate(p, n); }
};

}  // namespace skein::detail
