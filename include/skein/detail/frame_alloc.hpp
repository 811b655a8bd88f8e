#pragma once
// A per-thread cache of coroutine frames by size class. Fork-join workloads
// allocate and free a frame per task at a high rate, often freeing on another
// thread than the one that allocated; glibc's tcache keeps only 7 blocks per
// size, so bursts fall through to the slower arena paths. Here each thread
// keeps up to kMaxPerClass frames per 32-byte class; frames freed by a thread
// go to that thread's cache (they migrate, as in tcache), and beyond the cap or
// the largest class they go back to operator delete.

#include <cstddef>
#include <new>

#include "tuning.hpp"

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
  static constexpr std::size_t kGranule = tuning::kFrameGranule;
  static constexpr std::size_t kClasses = tuning::kFrameClasses;  // frames up to 1 KiB
  static constexpr unsigned kMaxPerClass = tuning::kFramesPerClass;

  static void* allocate(std::size_t n) {
    if constexpr (!SKEIN_FRAME_CACHE) return ::operator new(n);
    std::size_t c = class_of(n);
    if (c < kClasses) {
      State& s = state();
      if (Node* b = s.heads[c]) {
        s.heads[c] = b->next;
        --s.counts[c];
        return b;
      }
      return ::operator new((c + 1) * kGranule);  // rounded, so it can be cached later
    }
    return ::operator new(n);
  }

  static void deallocate(void* p, std::size_t n) noexcept {
    if constexpr (!SKEIN_FRAME_CACHE) return ::operator delete(p);
    std::size_t c = class_of(n);
    if (c < kClasses) {
      State& s = state();
      if (s.alive && s.counts[c] < kMaxPerClass) {
        auto* b = static_cast<Node*>(p);
        b->next = s.heads[c];
        s.heads[c] = b;
        ++s.counts[c];
        return;
      }
      ::operator delete(p);
      return;
    }
    ::operator delete(p);
  }

private:
  struct Node {
    Node* next;
  };
  // Trivially destructible, so it stays usable after the thread's cleanup ran
  // (frames may still be freed by later thread_local or static destructors):
  // `alive` then routes them straight to operator delete.
  struct State {
    Node* heads[kClasses];
    unsigned counts[kClasses];
    bool alive;
  };
  struct Cleanup {
    ~Cleanup() {
      State& s = raw();
      s.alive = false;
      for (std::size_t c = 0; c < kClasses; ++c) {
        while (Node* b = s.heads[c]) {
          s.heads[c] = b->next;
          ::operator delete(b);
        }
        s.counts[c] = 0;
      }
    }
  };
  static std::size_t class_of(std::size_t n) noexcept { return (n + kGranule - 1) / kGranule - 1; }
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
};

}  // namespace skein::detail
