// Time as the core sees it: an explicit argument, never read from a clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace nomq {

// Microseconds since the Unix epoch (1970-01-01T00:00:00Z), supplied by the caller on every
// call that needs the current time. Tests pass a simulated clock; the Linux runtime passes
// CLOCK_REALTIME (the wire timestamps are wall-clock seconds, as in the original protocol).
using Time = std::chrono::microseconds;
using Duration = std::chrono::microseconds;

// Seconds between 1970-01-01 and 2000-01-01: the epoch of ESP32/ESP8266 MicroPython clocks.
inline constexpr std::uint32_t kEpoch2000Offset = 946684800u;

// The wire timestamp (whole seconds, truncated toward zero) for `now` under an epoch offset.
constexpr std::uint32_t wire_seconds(Time now, std::uint32_t epoch_offset) noexcept {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(now).count();
  return static_cast<std::uint32_t>(s - static_cast<std::int64_t>(epoch_offset));
}

}  // namespace nomq
