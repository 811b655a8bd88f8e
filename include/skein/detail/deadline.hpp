#pragma once
// Deadlines made from durations, saturating. `now() + d` overflows for a
// large `d` (nanoseconds::max(), hours::max(), a huge double): signed
// overflow, and a deadline in the past, so a wait that should last forever
// returns at once. Every skein deadline is made here instead: a duration too
// long to add to now() means "never" (kNever), a zero, negative or NaN one
// means "already passed". tools/check_sources.py keeps `now() +` out of the
// rest of include/.

#include <chrono>
#include <string>

namespace skein::detail {

using Clock = std::chrono::steady_clock;

/// The deadline that never passes. Waits treat it as "no deadline".
inline constexpr Clock::time_point kNever = Clock::time_point::max();

/// `now + d`, saturating at kNever; `now` if d is zero, negative or NaN.
template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> d, Clock::time_point now = Clock::now()) noexcept {
  // Compared in floating-point seconds: converting any count to double cannot
  // overflow. The margin of a second covers double's rounding near 2^63 ns.
  const double secs = std::chrono::duration<double>(d).count();
  if (!(secs > 0)) return now;
  if (now >= kNever || secs >= std::chrono::duration<double>(kNever - now).count() - 1.0) return kNever;
  // Now d fits in Clock::duration with room to spare: ceil cannot overflow.
  return now + std::chrono::ceil<Clock::duration>(d);
}

/// `d` in whole milliseconds, for messages (no overflow for any duration).
template <class Rep, class Period>
std::string format_ms(std::chrono::duration<Rep, Period> d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  if (ms > -1e15 && ms < 1e15) return std::to_string(static_cast<long long>(ms));
  return std::to_string(ms);
}

}  // namespace skein::detail
