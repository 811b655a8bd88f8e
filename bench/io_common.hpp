#pragma once
// Shared parts of the "echo over loopback" benchmarks (skein_io, asio_io and
// the Go peer's io.go): sizes, the message format, the per-round-trip
// latencies and the report.
//
// Workload (one per process): an echo server and kConnections clients in the
// same process, on 127.0.0.1 (an ephemeral port), TCP_NODELAY on both ends.
// Each client connects, then does kTrips round trips: write one kMsg-byte
// message, read kMsg bytes back, check them. The server reads kMsg bytes and
// writes them back until the client closes. ms = from starting the clients
// (connects included) until the last client is done; every round trip is
// timed with steady_clock (lat_us = the median, p99_us = the 99th
// percentile over all 100 × kTrips round trips); result = round trips whose
// echo matched, expected = kConnections × kTrips.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.hpp"

namespace bench::io {

inline constexpr long kConnections = 100;
inline constexpr long kTrips = 1000;  // per connection
inline constexpr std::size_t kMsg = 64;

using Message = std::array<unsigned char, kMsg>;

/// The message of connection `conn`'s round trip `trip`: every byte depends on both.
inline void fill(Message& m, long conn, long trip) {
  for (std::size_t i = 0; i < kMsg; ++i)
    m[i] = static_cast<unsigned char>((conn * 131 + trip * 7 + static_cast<long>(i)) & 0xff);
}

/// Per-round-trip latencies, one slot per (connection, trip); clients write
/// their own slots only.
struct Latencies {
  std::vector<double> us = std::vector<double>(static_cast<std::size_t>(kConnections * kTrips), -1.0);
  double* of(long conn) { return us.data() + conn * kTrips; }

  /// The q-quantile (0..1) of the recorded round trips (nearest rank).
  double quantile(double q) const {
    std::vector<double> v;
    v.reserve(us.size());
    for (double x : us)
      if (x >= 0) v.push_back(x);
    if (v.empty()) return -1;
    auto rank = static_cast<std::size_t>(q * static_cast<double>(v.size()));
    if (rank >= v.size()) rank = v.size() - 1;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rank), v.end());
    return v[rank];
  }
};

inline double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

/// Fills the report's sizes and latencies; `ok_trips` = round trips whose echo matched.
inline void fill_report(Report& r, long ok_trips, const Latencies& lat) {
  r.n = kConnections;
  r.tasks = r.expected = kConnections * kTrips;
  r.result = ok_trips;
  r.lat_us = lat.quantile(0.50);
  r.p99_us = lat.quantile(0.99);
}

}  // namespace bench::io
