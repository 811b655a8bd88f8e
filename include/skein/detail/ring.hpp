#pragma once
// A FIFO ring buffer for Queue's items: one contiguous block, indices wrapped
// with a mask. Unlike std::deque it does not allocate and free a block every
// few dozen items (a producer's malloc freed by a consumer on another CPU),
// and a push and a pop touch one slot and two indices.

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace skein::detail {

template <class T>
class Ring {
  static_assert(std::is_nothrow_move_constructible_v<T>);

public:
  Ring() noexcept = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    clear();
    ::operator delete(data_, std::align_val_t{alignof(T)});
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  T& front() noexcept { return data_[head_]; }

  /// Throws std::bad_alloc (nothing changed) if it must grow and cannot.
  void push_back(T&& v) {
    if (size_ == cap_) grow();
    ::new (static_cast<void*>(data_ + ((head_ + size_) & (cap_ - 1)))) T(std::move(v));
    ++size_;
  }
  void pop_front() noexcept {
    std::destroy_at(data_ + head_);
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
    // Give back what a burst left: halve when a quarter full (best effort).
    if (cap_ > kShrinkAbove && size_ <= cap_ / 4) resize_nothrow(cap_ / 2);
  }
  void clear() noexcept {
    while (size_ > 0) {
      std::destroy_at(data_ + head_);
      head_ = (head_ + 1) & (cap_ - 1);
      --size_;
    }
  }

private:
  static constexpr std::size_t kFirst = 8;          // slots of the first block
  static constexpr std::size_t kShrinkAbove = 256;  // a ring this small is kept

  void grow() {
    if (!resize(cap_ ? cap_ * 2 : kFirst)) throw std::bad_alloc();
  }
  void resize_nothrow(std::size_t n) noexcept { (void)resize(n); }
  // Moves the items into a block of n slots (a power of two, >= size_).
  bool resize(std::size_t n) noexcept {
    T* d = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{alignof(T)}, std::nothrow));
    if (!d) return false;
    for (std::size_t i = 0; i < size_; ++i) {
      T* from = data_ + ((head_ + i) & (cap_ - 1));
      ::new (static_cast<void*>(d + i)) T(std::move(*from));
      std::destroy_at(from);
    }
    ::operator delete(data_, std::align_val_t{alignof(T)});
    data_ = d;
    cap_ = n;
    head_ = 0;
    return true;
  }

  T* data_ = nullptr;
  std::size_t cap_ = 0;  // 0 or a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace skein::detail
