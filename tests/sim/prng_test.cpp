// The simulator's PRNG against the published reference outputs, so a seed means the same run
// on every compiler and standard library.
#include "sim/prng.hpp"

#include <gtest/gtest.h>

#include <array>
#include <set>

#include "nomq/crypto_backend.hpp"
#include "sim/seeded_rng.hpp"

namespace nomq::sim {
namespace {

TEST(SplitMix64, MatchesReferenceOutputForSeedZero) {
  SplitMix64 m{0};
  EXPECT_EQ(m.next(), 0xe220a8397b1dcdafull);
  EXPECT_EQ(m.next(), 0x6e789e6aa1b965f4ull);
  EXPECT_EQ(m.next(), 0x06c45d188009454full);
}

TEST(Xoshiro256StarStar, MatchesReferenceOutputFromState1234) {
  Prng p{1, 2, 3, 4};
  const std::array<std::uint64_t, 6> expected{11520ull, 0ull, 1509978240ull,
                                              1215971899390074240ull, 1216172134540287360ull,
                                              607988272756665600ull};
  for (auto e : expected) EXPECT_EQ(p.next(), e);
}

TEST(Prng, SameSeedSameStreamDifferentSeedDifferentStream) {
  Prng a{42}, b{42}, c{43};
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next();
    EXPECT_EQ(x, b.next());
    differs |= x != c.next();
  }
  EXPECT_TRUE(differs);
}

TEST(Prng, BelowStaysInRangeAndCoversIt) {
  Prng p{7};
  std::array<int, 6> seen{};
  for (int i = 0; i < 6000; ++i) {
    const auto v = p.below(6);
    ASSERT_LT(v, 6u);
    ++seen[v];
  }
  for (int n : seen) EXPECT_NEAR(n, 1000, 150);
  EXPECT_EQ(p.below(0), 0u);
  EXPECT_EQ(p.below(1), 0u);
}

TEST(Prng, BetweenIsInclusive) {
  Prng p{9};
  std::set<std::int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto v = p.between(-2, 2);
    ASSERT_GE(v, -2);
    ASSERT_LE(v, 2);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(p.between(5, 5), 5);
  EXPECT_EQ(p.between(5, 1), 5);
}

TEST(Prng, Uniform01AndChance) {
  Prng p{11};
  int hits = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = p.uniform01();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    hits += p.chance(0.3) ? 1 : 0;
    ASSERT_FALSE(p.chance(0.0));
    ASSERT_TRUE(p.chance(1.0));
  }
  EXPECT_NEAR(hits, 3000, 200);
}

TEST(Prng, DerivedSeedsAreDistinct) {
  std::set<std::uint64_t> seeds;
  for (std::uint64_t node = 0; node < 50; ++node)
    for (std::uint64_t gen = 0; gen < 4; ++gen) seeds.insert(derive_seed(1, node, gen));
  EXPECT_EQ(seeds.size(), 200u);
  EXPECT_NE(derive_seed(1, 0), derive_seed(2, 0));
}

TEST(SeededRng, RandomBytesRepeatPerSeedAndReseedRestarts) {
  SeededRng a(5), b(5), c(6);
  std::array<std::uint8_t, 37> x{}, y{}, z{};
  a.random_bytes(x);
  b.random_bytes(y);
  c.random_bytes(z);
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
  // The bytes are xoshiro256** draws, little-endian, each call starting on a fresh draw.
  Prng p(5);
  std::uint64_t first = p.next();
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(x[i], static_cast<std::uint8_t>(first >> (8 * i)));
  a.reseed(6);
  a.random_bytes(x);
  EXPECT_EQ(x, z);
}

TEST(SeededRng, RepeatingStreamRestartsWhereItWasSet) {
  SeededRng a(9);
  std::array<std::uint8_t, 8> first{}, again{}, other{};
  a.repeat_randomness_every(2);
  a.random_bytes(first);
  a.random_bytes(other);
  a.random_bytes(again);
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
}

}  // namespace
}  // namespace nomq::sim
