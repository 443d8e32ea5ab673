// The retransmission schedule: after the n-th transmission of a packet to one recipient (n >= 1)
// the next one is due retransmit_initial * 2^(n-1) later, capped at retransmit_max.
#pragma once

#include <cstdint>

#include "nomq/time.hpp"

namespace nomq::detail {

constexpr Duration retransmit_timeout(Duration initial, Duration max,
                                      std::uint32_t transmissions) noexcept {
  if (initial <= Duration::zero()) return max;
  Duration t = initial;
  for (std::uint32_t i = 1; i < transmissions && t < max; ++i) t *= 2;
  return t < max ? t : max;
}

// Wire ttl for a message expiring at `expires`: whole seconds remaining, rounded up so that a
// message with time left never travels as ttl 0; clamped to the 16-bit field. 0: expired.
constexpr std::uint16_t remaining_ttl(Instant expires, Instant now) noexcept {
  if (expires <= now) return 0;
  const auto us = (expires - now).count();
  const auto s = (us + 999'999) / 1'000'000;
  return static_cast<std::uint16_t>(s > 65535 ? 65535 : s);
}

}  // namespace nomq::detail
