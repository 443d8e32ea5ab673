// A transport address without OS types, so the core can name peers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace nomq {

struct Endpoint {
  enum class Family : std::uint8_t { none = 0, ipv4 = 4, ipv6 = 6 };

  Family family = Family::none;
  std::array<std::uint8_t, 16> address{};  // IPv4: bytes 0..3; IPv6: all 16, network order
  std::uint16_t port = 0;                  // host order
  std::uint32_t scope_id = 0;              // IPv6 link-local scope

  static constexpr Endpoint v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                               std::uint16_t port) noexcept {
    Endpoint e;
    e.family = Family::ipv4;
    e.address[0] = a;
    e.address[1] = b;
    e.address[2] = c;
    e.address[3] = d;
    e.port = port;
    return e;
  }
  constexpr bool valid() const noexcept { return family != Family::none; }
  friend constexpr bool operator==(const Endpoint&, const Endpoint&) = default;
};

// FNV-1a over the meaningful bytes; for open-addressing tables in the core.
constexpr std::uint64_t hash(const Endpoint& e) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  mix(static_cast<std::uint8_t>(e.family));
  for (auto b : e.address) mix(b);
  mix(static_cast<std::uint8_t>(e.port >> 8));
  mix(static_cast<std::uint8_t>(e.port));
  return h;
}

}  // namespace nomq
