// The simulator's random numbers: xoshiro256** seeded through splitmix64, both written from
// their published reference algorithms (Blackman and Vigna, https://prng.di.unimi.it/). Every
// draw the simulator makes comes from here, never from <random>'s distributions, whose outputs
// differ between standard libraries: a seed must give the same run under libstdc++ and libc++.
#pragma once

#include <cstdint>

namespace nomq::sim {

// splitmix64: used to expand one 64-bit seed into generator states and to derive sub-seeds.
class SplitMix64 {
 public:
  explicit constexpr SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  constexpr std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

// A seed for an independent stream, derived from a base seed and up to two labels (node index,
// session generation...), so that adding a node does not shift every other node's draws.
constexpr std::uint64_t derive_seed(std::uint64_t base, std::uint64_t a, std::uint64_t b = 0) noexcept {
  SplitMix64 m{base ^ (a * 0xd1342543de82ef95ull) ^ (b * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull)};
  m.next();
  return m.next();
}

class Prng {
 public:
  // State from four splitmix64 outputs, as the authors recommend (never all zero).
  explicit constexpr Prng(std::uint64_t seed) noexcept : s_{} {
    SplitMix64 m{seed};
    for (auto& w : s_) w = m.next();
  }
  // Direct state, for reference vectors. Must not be all zero.
  constexpr Prng(std::uint64_t s0, std::uint64_t s1, std::uint64_t s2, std::uint64_t s3) noexcept
      : s_{s0, s1, s2, s3} {}

  // xoshiro256** 1.0.
  constexpr std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1): the top 53 bits scaled, exact in binary64 on every platform.
  constexpr double uniform01() noexcept {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
  }

  // Uniform in [0, bound), bound > 0; rejection sampling removes the modulo bias. 0 if bound == 0.
  constexpr std::uint64_t below(std::uint64_t bound) noexcept {
    if (bound == 0) return 0;
    const std::uint64_t threshold = (0 - bound) % bound;
    for (;;) {
      const std::uint64_t r = next();
      if (r >= threshold) return r % bound;
    }
  }

  // Uniform in [lo, hi] (inclusive); lo if hi <= lo.
  constexpr std::int64_t between(std::int64_t lo, std::int64_t hi) noexcept {
    if (hi <= lo) return lo;
    const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
    return lo + static_cast<std::int64_t>(span == 0 ? next() : below(span));
  }

  // True with probability p. Always consumes exactly one draw (also for p <= 0 or p >= 1).
  constexpr bool chance(double p) noexcept { return uniform01() < p; }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::uint64_t s_[4];
};

}  // namespace nomq::sim
