#pragma once
// A Chase-Lev work-stealing deque of pointers (Chase & Lev 2005; the C11
// formulation of Le, Pop, Cohen & Zappa Nardelli 2013). The owner pushes and
// pops at the bottom (LIFO: depth-first, cache-warm); thieves take from the
// top (FIFO: the oldest, usually largest, piece of work).
//
// Instead of the paper's standalone seq_cst fences (which ThreadSanitizer does
// not model) the two store->load orderings that matter are seq_cst operations
// on `bottom_` and `top_` themselves.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "assert.hpp"

namespace skein::detail {

class WsDeque {
public:
  explicit WsDeque(std::size_t log2_capacity = 8) : buffer_(new Ring(log2_capacity)) {}
  ~WsDeque() { delete buffer_.load(std::memory_order_relaxed); }
  WsDeque(const WsDeque&) = delete;
  WsDeque& operator=(const WsDeque&) = delete;

  /// Owner only.
  void push(void* item) {
    std::int64_t b = bottom_.load(std::memory_order_relaxed);
    Ring* r = buffer_.load(std::memory_order_relaxed);
    // top_ only grows, so a stale copy can only overstate how full we are:
    // re-read it (a cache line the thieves write) only when the copy says full.
    if (b - top_cache_ > static_cast<std::int64_t>(r->mask)) {
      top_cache_ = top_.load(std::memory_order_acquire);
      if (b - top_cache_ > static_cast<std::int64_t>(r->mask)) r = grow(r, top_cache_, b);
    }
    SKEIN_ASSERT(b - top_cache_ <= static_cast<std::int64_t>(r->mask), "the ring has room for the push");
    r->put(b, item);
    // release: a thief that reads this bottom sees the item and what it points to.
    bottom_.store(b + 1, std::memory_order_release);
  }

  /// Owner only. Returns nullptr if empty.
  void* pop() noexcept {
    std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Ring* r = buffer_.load(std::memory_order_relaxed);
    // seq_cst store then seq_cst load: a thief must see the reservation of slot
    // b before we read top, or both could take the last item.
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    void* item = r->get(b);
    if (t == b) {  // last item: race the thieves for it
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) item = nullptr;
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return item;
  }

  /// Any thread. Returns nullptr if empty or if it lost a race (try again elsewhere).
  void* steal() noexcept {
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    // acquire on buffer_: pairs with grow's release so the copied items are visible.
    Ring* r = buffer_.load(std::memory_order_acquire);
    void* item = r->get(t);
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) return nullptr;
    return item;
  }

  [[nodiscard]] bool empty() const noexcept {
    return bottom_.load(std::memory_order_relaxed) <= top_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t size_approx() const noexcept {
    auto d = bottom_.load(std::memory_order_relaxed) - top_.load(std::memory_order_relaxed);
    return d > 0 ? static_cast<std::size_t>(d) : 0;
  }

private:
  struct Ring {
    explicit Ring(std::size_t log2) : mask((std::size_t{1} << log2) - 1), slots(new std::atomic<void*>[mask + 1]) {}
    // Slots are atomics (relaxed) because a thief may read a slot the owner is
    // overwriting; the thief's CAS on top_ then fails and the value is dropped.
    void put(std::int64_t i, void* v) noexcept {
      slots[static_cast<std::size_t>(i) & mask].store(v, std::memory_order_relaxed);
    }
    void* get(std::int64_t i) const noexcept {
      return slots[static_cast<std::size_t>(i) & mask].load(std::memory_order_relaxed);
    }
    std::size_t mask;
    std::unique_ptr<std::atomic<void*>[]> slots;
  };

  Ring* grow(Ring* old, std::int64_t t, std::int64_t b) {
    std::size_t log2 = 1;
    while ((std::size_t{1} << log2) <= old->mask) ++log2;
    auto* r = new Ring(log2 + 1);
    for (std::int64_t i = t; i < b; ++i) r->put(i, old->get(i));
    // Thieves may still be reading the old ring: keep it until the deque dies.
    retired_.emplace_back(old);
    buffer_.store(r, std::memory_order_release);
    return r;
  }

  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  alignas(64) std::atomic<Ring*> buffer_;
  std::vector<std::unique_ptr<Ring>> retired_;  // owner only
  std::int64_t top_cache_ = 0;                  // owner only: a past value of top_
};

}  // namespace skein::detail
