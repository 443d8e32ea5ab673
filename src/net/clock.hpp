// The runtime's clock readings. Timers run on CLOCK_MONOTONIC (NTP steps cannot stall them);
// CLOCK_REALTIME is read only for the wire timestamps (engine.hpp: handle_datagram and
// poll_transmit).
#pragma once

#include <time.h>

#include "nomq/time.hpp"

namespace nomq::detail {

inline Duration clock_reading(clockid_t clock) noexcept {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return Duration{static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000};
}

inline Instant monotonic_now() noexcept { return Instant{clock_reading(CLOCK_MONOTONIC)}; }
inline WallTime wall_now() noexcept { return WallTime{clock_reading(CLOCK_REALTIME)}; }

}  // namespace nomq::detail
