#pragma once
// An intrusive multi-producer single-consumer queue (Vyukov's): a push is one
// atomic exchange, so producers on many threads never wait for each other or
// for the consumer. A pop can see the queue "in between" (a producer has
// swapped the tail but not linked its node yet); pop() then returns nullptr
// and busy() tells the consumer to try again rather than sleep.

#include <atomic>

namespace skein::detail {

struct MpscNode {
  std::atomic<MpscNode*> next{nullptr};
};

class MpscQueue {
public:
  MpscQueue() noexcept : head_(&stub_), tail_(&stub_) {}
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  /// Any thread. seq_cst: the consumer's "going to sleep" protocol reads the
  /// tail after publishing that it sleeps (see EventLoop).
  void push(MpscNode* n) noexcept {
    n->next.store(nullptr, std::memory_order_relaxed);
    MpscNode* prev = tail_.exchange(n, std::memory_order_seq_cst);
    // release: the consumer that reads this link sees the node's contents.
    prev->next.store(n, std::memory_order_release);
  }

  /// Consumer only. nullptr if empty or if a push is half-done (see busy()).
  MpscNode* pop() noexcept {
    MpscNode* head = head_;
    MpscNode* next = head->next.load(std::memory_order_acquire);
    if (head == &stub_) {
      if (!next) return nullptr;
      head_ = next;
      head = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next) {
      head_ = next;
      return head;
    }
    if (tail_.load(std::memory_order_acquire) != head) return nullptr;  // a push is half-done
    push(&stub_);
    next = head->next.load(std::memory_order_acquire);
    if (next) {
      head_ = next;
      return head;
    }
    return nullptr;
  }

  /// Consumer only: true if something was pushed that pop() has not returned.
  [[nodiscard]] bool busy() const noexcept {
    // Empty means: nothing after the stub, the stub is the head and the tail.
    return head_ != &stub_ || stub_.next.load(std::memory_order_acquire) != nullptr ||
           tail_.load(std::memory_order_seq_cst) != &stub_;
  }

private:
  MpscNode* head_;  // consumer only
  MpscNode stub_;
  alignas(64) std::atomic<MpscNode*> tail_;
};

}  // namespace skein::detail
