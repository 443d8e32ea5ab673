// Time as the core sees it: explicit arguments, never read from a clock.
//
// Two clocks, two types, so they cannot be mixed up:
// - Instant: a monotonic reading (CLOCK_MONOTONIC on Linux, a tick counter on a device). Every
//   timer of the engine runs on it: retransmissions, heartbeats, expiry, rate limits. It never
//   jumps, so a wall clock stepped by NTP (every ESP32 at boot) cannot stall or hurry a timer.
// - WallTime: microseconds since the Unix epoch (CLOCK_REALTIME). Used only where the protocol
//   puts time on the wire: the timestamp a packet carries and the receiver's window check.
// Subtracting one from the other does not compile; Duration is what both have in common.
#pragma once

#include <chrono>
#include <cstdint>

namespace nomq {

using Duration = std::chrono::microseconds;

// Clock tags for the two time-point types. They have no now(): the core reads no clock; the
// runtime (src/net) or the platform layer of a device reads the real clocks and passes values.
struct MonotonicClock {
  using duration = Duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<MonotonicClock, Duration>;
  static constexpr bool is_steady = true;
};
struct WallClock {
  using duration = Duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<WallClock, Duration>;
  static constexpr bool is_steady = false;
};

// A monotonic instant: microseconds since an arbitrary origin (boot, process start, a test's 0).
using Instant = MonotonicClock::time_point;
// A wall-clock time: microseconds since 1970-01-01T00:00:00Z.
using WallTime = WallClock::time_point;

// Seconds between 1970-01-01 and 2000-01-01: the epoch of ESP32/ESP8266 MicroPython clocks.
inline constexpr std::uint32_t kEpoch2000Offset = 946684800u;

// The wire timestamp (whole seconds, truncated toward zero) for `wall` under an epoch offset.
constexpr std::uint32_t wire_seconds(WallTime wall, std::uint32_t epoch_offset) noexcept {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(wall.time_since_epoch()).count();
  return static_cast<std::uint32_t>(s - static_cast<std::int64_t>(epoch_offset));
}

}  // namespace nomq
