#include "core/sender_table.hpp"
#include "unit/arena_support.hpp"

#include <gtest/gtest.h>

namespace nomq::detail {
namespace {

using namespace std::chrono_literals;

TEST(SenderTable, OneWindowPerSession) {
  SenderTable t(test::test_arena(), 4, 1024, 30);
  SenderInfo* a = t.find_or_insert(1, 1000);
  SenderInfo* b = t.find_or_insert(2, 1000);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(t.accept(*a, 7, 1000, Instant{1s}), Errc::ok);
  EXPECT_EQ(t.accept(*b, 7, 1000, Instant{1s}), Errc::ok);  // independent windows
  EXPECT_EQ(t.accept(*a, 7, 1000, Instant{1s}), Errc::replayed);
}

TEST(SenderTable, FullTableEvictsOnlyASessionWhoseTrafficIsAlreadyStale) {
  SenderTable t(test::test_arena(), 2, 1024, 30);
  SenderInfo* a = t.find_or_insert(1, 1000);
  SenderInfo* b = t.find_or_insert(2, 1000);
  ASSERT_EQ(t.accept(*a, 1, 1000, Instant{1000s}), Errc::ok);
  ASSERT_EQ(t.accept(*b, 1, 1010, Instant{1010s}), Errc::ok);
  // Both heard within the timestamp window: a replay could still pass, so nothing is evicted.
  EXPECT_EQ(t.find_or_insert(3, 1020), nullptr);
  // At 1031, session 1's newest timestamp (1000) is stale: it goes, LRU first.
  SenderInfo* c = t.find_or_insert(3, 1031);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(t.find(1), nullptr);
  EXPECT_NE(t.find(2), nullptr);
  EXPECT_EQ(t.evictions(), 1u);
}

TEST(SenderTable, SessionWithQos2StateIsNeverEvicted) {
  SenderTable t(test::test_arena(), 1, 1024, 30);
  SenderInfo* a = t.find_or_insert(1, 1000);
  ASSERT_EQ(t.accept(*a, 1, 1000, Instant{1000s}), Errc::ok);
  a->qos2_states = 1;
  EXPECT_EQ(t.find_or_insert(2, 5000), nullptr);
  a->qos2_states = 0;
  EXPECT_NE(t.find_or_insert(2, 5000), nullptr);
}

TEST(SenderTable, EvictedSessionStartsWithAFreshWindow) {
  SenderTable t(test::test_arena(), 1, 1024, 30);
  SenderInfo* a = t.find_or_insert(1, 1000);
  ASSERT_EQ(t.accept(*a, 50, 1000, Instant{1000s}), Errc::ok);
  ASSERT_NE(t.find_or_insert(2, 2000), nullptr);
  SenderInfo* again = t.find_or_insert(1, 3000);
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(again->window.empty());
}

// Per-endpoint quota (issue 13 M3): a source at its share makes room among its own evictable
// sessions or is refused as sender_quota; other sources keep their slots.
TEST(SenderTable, OneSourceHoldsAtMostItsShare) {
  SenderTable t(test::test_arena(), 8, 1024, 30);
  const Endpoint a = Endpoint::v4(192, 0, 2, 1, 4700);
  const Endpoint b = Endpoint::v4(192, 0, 2, 2, 4700);
  Errc why = Errc::ok;
  for (std::uint32_t s = 1; s <= 3; ++s) {
    SenderInfo* e = t.find_or_insert(s, 1000, a, 3, &why);
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(t.accept(*e, 1, 1000, Instant{std::chrono::seconds(s)}), Errc::ok);
  }
  EXPECT_EQ(t.find_or_insert(4, 1000, a, 3, &why), nullptr);
  EXPECT_EQ(why, Errc::sender_quota);
  EXPECT_NE(t.find_or_insert(5, 1000, b, 3, &why), nullptr);  // another source: room
  // Once a's sessions are stale, its own least recently heard one makes room.
  ASSERT_NE(t.find_or_insert(4, 1031, a, 3, &why), nullptr);
  EXPECT_EQ(t.find(1), nullptr);
  EXPECT_NE(t.find(2), nullptr);
  EXPECT_NE(t.find(5), nullptr);
}

// Issue 13 M3 (spoofed sources): sessions from unverified endpoints hold at most half the
// table; an unverified newcomer makes room only among unverified, stale sessions, and a
// verified one still finds the other half free.
TEST(SenderTable, UnverifiedSessionsHoldAtMostHalf) {
  SenderTable t(test::test_arena(), 8, 1024, 30);
  ASSERT_EQ(t.unverified_share(), 4u);
  Errc why = Errc::ok;
  for (std::uint32_t s = 1; s <= 4; ++s) {
    const Endpoint spoofed = Endpoint::v4(192, 0, 2, static_cast<std::uint8_t>(s), 4700);
    SenderInfo* e = t.find_or_insert(s, 1000, spoofed, 16, &why, false);
    ASSERT_NE(e, nullptr);
    EXPECT_FALSE(e->verified_source);
    ASSERT_EQ(t.accept(*e, 1, 1000, Instant{std::chrono::seconds(s)}), Errc::ok);
  }
  const Endpoint newcomer = Endpoint::v4(192, 0, 2, 50, 4700);
  EXPECT_EQ(t.find_or_insert(10, 1000, newcomer, 16, &why, false), nullptr);
  EXPECT_EQ(why, Errc::sender_unverified);
  // Verified senders fill the other half.
  for (std::uint32_t s = 20; s < 24; ++s) {
    const Endpoint honest = Endpoint::v4(198, 51, 100, static_cast<std::uint8_t>(s), 4700);
    SenderInfo* e = t.find_or_insert(s, 1000, honest, 16, &why, true);
    ASSERT_NE(e, nullptr);
    EXPECT_TRUE(e->verified_source);
    ASSERT_EQ(t.accept(*e, 1, 1000, Instant{std::chrono::seconds(s)}), Errc::ok);
  }
  EXPECT_EQ(t.size(), 8u);
  // The newcomer answers its challenge: admitted once an unverified session may be evicted
  // (every timestamp of session 1 is stale at 1031), never by taking a fresh window.
  EXPECT_EQ(t.find_or_insert(10, 1030, newcomer, 16, &why, true), nullptr);
  EXPECT_EQ(why, Errc::sender_table_full);
  SenderInfo* e = t.find_or_insert(10, 1031, newcomer, 16, &why, true);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(t.find(1), nullptr);
  // A verified endpoint's earlier unverified sessions join the verified share.
  SenderInfo* two = t.find(2);
  ASSERT_NE(two, nullptr);
  t.endpoint_verified(Endpoint::v4(192, 0, 2, 2, 4700));
  EXPECT_TRUE(two->verified_source);
  EXPECT_FALSE(t.find(3)->verified_source);
}

// An unverified newcomer whose share is full takes the least recently heard unverified
// session once it is stale, not a verified one.
TEST(SenderTable, UnverifiedNewcomerEvictsOnlyAStaleUnverifiedSession) {
  SenderTable t(test::test_arena(), 4, 1024, 30);
  Errc why = Errc::ok;
  const Endpoint v = Endpoint::v4(198, 51, 100, 1, 4700);
  SenderInfo* old_verified = t.find_or_insert(1, 1000, v, 16, &why, true);
  ASSERT_NE(old_verified, nullptr);
  ASSERT_EQ(t.accept(*old_verified, 1, 1000, Instant{std::chrono::seconds(1)}), Errc::ok);
  for (std::uint32_t s = 2; s <= 3; ++s) {
    SenderInfo* e = t.find_or_insert(s, 1000, Endpoint::v4(192, 0, 2, 1, 4700), 16, &why, false);
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(t.accept(*e, 1, 1000 + s, Instant{std::chrono::seconds(s)}), Errc::ok);
  }
  // At 1032 session 1 (verified, stamped 1000) and session 2 (stamped 1002) are stale; the
  // unverified newcomer may take only session 2's slot.
  ASSERT_NE(t.find_or_insert(4, 1033, Endpoint::v4(192, 0, 2, 9, 4700), 16, &why, false), nullptr);
  EXPECT_NE(t.find(1), nullptr);
  EXPECT_EQ(t.find(2), nullptr);
  EXPECT_NE(t.find(3), nullptr);
}

}  // namespace
}  // namespace nomq::detail
