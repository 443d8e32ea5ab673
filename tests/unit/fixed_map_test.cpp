#include "core/fixed_map.hpp"
#include "unit/arena_support.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace nomq::detail {
namespace {

using Map = FixedMap<std::uint32_t, int, U32Hash, U32Eq>;

TEST(FixedMap, InsertFindEraseAndCapacity) {
  Map m(test::test_arena(), 3);
  const auto a = m.insert(10);
  const auto b = m.insert(20);
  const auto c = m.insert(30);
  EXPECT_NE(a, kNoSlot);
  EXPECT_TRUE(m.full());
  EXPECT_EQ(m.insert(40), kNoSlot);
  m.value(b) = 7;
  EXPECT_EQ(m.find(20), b);
  EXPECT_EQ(m.value(m.find(20)), 7);
  m.erase(20);
  EXPECT_EQ(m.find(20), kNoSlot);
  EXPECT_EQ(m.find(10), a);
  EXPECT_EQ(m.find(30), c);
  EXPECT_NE(m.insert(40), kNoSlot);
}

TEST(FixedMap, MatchesStdMapUnderRandomChurn) {
  const std::uint32_t seed = 99;
  std::mt19937 rng(seed);
  Map m(test::test_arena(), 64);
  std::map<std::uint32_t, int> ref;
  for (int i = 0; i < 50000; ++i) {
    const auto k = static_cast<std::uint32_t>(rng() % 200);
    if (rng() % 2 == 0 && !m.full() && ref.count(k) == 0) {
      m.value(m.insert(k)) = i;
      ref[k] = i;
    } else if (ref.count(k) != 0) {
      m.erase(k);
      ref.erase(k);
    }
    ASSERT_EQ(m.size(), ref.size()) << "seed " << seed;
  }
  for (std::uint32_t k = 0; k < 200; ++k) {
    const auto s = m.find(k);
    ASSERT_EQ(s != kNoSlot, ref.count(k) != 0) << k;
    if (s != kNoSlot) {
      EXPECT_EQ(m.value(s), ref[k]);
    }
  }
}

// scan() stops once it has seen size() used slots: it must still visit exactly the slots
// for_each visits, in the same order, after any mix of inserts and erases.
TEST(FixedMap, ScanVisitsExactlyTheUsedSlots) {
  const std::uint32_t seed = 77;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng{seed};
  Map m(test::test_arena(), 40);
  for (int step = 0; step < 20000; ++step) {
    const auto key = static_cast<std::uint32_t>(rng() % 100);
    if (rng() % 2 == 0) {
      if (m.find(key) == kNoSlot) (void)m.insert(key);
    } else {
      m.erase(key);
    }
    std::vector<std::uint32_t> all, scanned;
    m.for_each([&](std::uint32_t s) { all.push_back(s); });
    m.scan([&](std::uint32_t s) { scanned.push_back(s); });
    ASSERT_EQ(scanned, all) << "step " << step;
  }
}

}  // namespace
}  // namespace nomq::detail
