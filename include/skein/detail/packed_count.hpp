#pragma once
// A count and a number of waiters in one 64-bit word (count << 32 | waiters):
// the operation that changes the count learns from its own CAS whether
// anybody waits, and touches nothing else when nobody does — so the object
// may be destroyed right after (Semaphore's permits, WaitGroup's counter).

#include <cstdint>

namespace skein::detail {

struct PackedCount {
  static constexpr std::int64_t kMaxCount = 0x7fffffff;          // 31 bits: the count never reaches the sign bit
  static constexpr std::uint64_t kOne = std::uint64_t{1} << 32;  // one unit of the count
  static std::int64_t count_of(std::uint64_t s) noexcept { return static_cast<std::int64_t>(s >> 32); }
  static std::uint64_t waiters_of(std::uint64_t s) noexcept { return s & 0xffffffffu; }
  static std::uint64_t pack(std::int64_t count, std::uint64_t waiters) noexcept {
    return (static_cast<std::uint64_t>(count) << 32) | waiters;
  }
};

}  // namespace skein::detail
