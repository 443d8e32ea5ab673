#include "core/inbound_qos.hpp"
#include "unit/arena_support.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <utility>

namespace nomq::detail {
namespace {

using namespace std::chrono_literals;

TEST(InboundQos, Qos2ReceiverStateMachine) {
  InboundQosTable t(test::test_arena(), 4);
  // PUBLISH: deliver once, await PUBREL.
  ASSERT_EQ(t.find(1, 100, Instant{0s}), nullptr);
  ASSERT_NE(t.insert(1, 100, InboundState::awaiting_pubrel, Instant{0s}, Instant{600s}), nullptr);
  // Retransmitted PUBLISH: found, so PUBREC again, not delivered.
  ASSERT_NE(t.find(1, 100, Instant{1s}), nullptr);
  EXPECT_EQ(t.find(1, 100, Instant{1s})->state, InboundState::awaiting_pubrel);
  // PUBREL: released; a late retransmission is still a duplicate.
  t.find(1, 100, Instant{2s})->state = InboundState::released;
  ASSERT_NE(t.find(1, 100, Instant{3s}), nullptr);
  // Same message id from another session is another message.
  EXPECT_EQ(t.find(2, 100, Instant{3s}), nullptr);
}

TEST(InboundQos, EntriesExpire) {
  InboundQosTable t(test::test_arena(), 4);
  t.insert(1, 1, InboundState::delivered, Instant{0s}, Instant{10s});
  t.insert(1, 2, InboundState::awaiting_pubrel, Instant{0s}, Instant{10s});
  EXPECT_EQ(t.find(1, 1, Instant{10s}), nullptr);
  int expired_awaiting = 0;
  t.expire(Instant{10s}, [&](std::uint32_t session) {
    EXPECT_EQ(session, 1u);
    ++expired_awaiting;
  });
  EXPECT_EQ(expired_awaiting, 1);
  EXPECT_EQ(t.size(), 0u);
}

// Fair share (issue 13 M3): a table full of awaiting states gives a newcomer the oldest state of
// the session holding the most, and refuses it only among equals.
TEST(InboundQos, FullOfAwaitingStatesEvictsTheBiggestHolder) {
  InboundQosTable t(test::test_arena(), 4);
  std::map<std::uint32_t, std::uint32_t> held;  // session -> awaiting states
  const auto add = [&](std::uint32_t session, std::uint32_t id, InboundState st) {
    std::optional<std::uint32_t> evicted;
    const auto* e = t.insert(session, id, st, Instant{0s}, Instant{600s}, held[session],
                             [&](std::uint32_t s) { return held[s]; }, evicted);
    if (evicted) --held[*evicted];
    if (e != nullptr && st == InboundState::awaiting_pubrel) ++held[session];
    return std::make_pair(e != nullptr, evicted);
  };
  for (std::uint32_t id = 1; id <= 3; ++id) ASSERT_TRUE(add(7, id, InboundState::awaiting_pubrel).first);
  ASSERT_TRUE(add(8, 1, InboundState::awaiting_pubrel).first);  // full: 7 holds 3, 8 holds 1
  // A QoS 1 record of session 9 (holding none) takes session 7's oldest state.
  const auto r = add(9, 1, InboundState::delivered);
  ASSERT_TRUE(r.first);
  ASSERT_TRUE(r.second.has_value());
  EXPECT_EQ(*r.second, 7u);
  EXPECT_EQ(t.find(7, 1, Instant{1s}), nullptr);
  EXPECT_NE(t.find(7, 2, Instant{1s}), nullptr);
  // Now the dedup record is the oldest settled entry: it goes first, as before.
  const auto r2 = add(10, 1, InboundState::delivered);
  ASSERT_TRUE(r2.first);
  EXPECT_FALSE(r2.second.has_value());
  EXPECT_EQ(t.find(9, 1, Instant{1s}), nullptr);
  // Among equals the newcomer is refused: 7 holds 2, the inserting session 7 holds 2 too.
  ASSERT_TRUE(add(8, 2, InboundState::awaiting_pubrel).first);  // evicts the settled record
  EXPECT_FALSE(add(7, 9, InboundState::awaiting_pubrel).first);
}

TEST(InboundQos, FullTableEvictsOldestDedupRecordButNeverAwaitingState) {
  InboundQosTable t(test::test_arena(), 2);
  t.insert(1, 1, InboundState::delivered, Instant{0s}, Instant{100s});
  t.insert(1, 2, InboundState::awaiting_pubrel, Instant{1s}, Instant{100s});
  ASSERT_NE(t.insert(1, 3, InboundState::awaiting_pubrel, Instant{2s}, Instant{100s}), nullptr);
  EXPECT_EQ(t.find(1, 1, Instant{2s}), nullptr);  // the dedup record went
  // Now both entries await PUBREL: the next message is refused (and not acknowledged).
  EXPECT_EQ(t.insert(1, 4, InboundState::delivered, Instant{3s}, Instant{100s}), nullptr);
}

// The age list must stay consistent through erase, expiry and reuse of slots: eviction always
// takes the oldest remaining non-awaiting entry, here over many rounds of a full table.
TEST(InboundQos, EvictionOrderSurvivesEraseExpireAndSlotReuse) {
  InboundQosTable t(test::test_arena(), 4);
  t.insert(1, 1, InboundState::delivered, Instant{0s}, Instant{100s});
  t.insert(1, 2, InboundState::awaiting_pubrel, Instant{1s}, Instant{100s});
  t.insert(1, 3, InboundState::delivered, Instant{2s}, Instant{5s});
  t.insert(1, 4, InboundState::delivered, Instant{3s}, Instant{100s});
  t.erase(1, 1);                                   // oldest gone by hand
  t.expire(Instant{5s}, [](std::uint32_t) {});        // 3 expires
  EXPECT_EQ(t.size(), 2u);                         // 2 (awaiting) and 4 remain
  t.insert(1, 5, InboundState::delivered, Instant{6s}, Instant{100s});
  t.insert(1, 6, InboundState::delivered, Instant{7s}, Instant{100s});
  // Full: 2 awaits PUBREL, so 4 (the oldest other) goes, then 5, then 6.
  ASSERT_NE(t.insert(1, 7, InboundState::delivered, Instant{8s}, Instant{100s}), nullptr);
  EXPECT_EQ(t.find(1, 4, Instant{8s}), nullptr);
  ASSERT_NE(t.insert(1, 8, InboundState::delivered, Instant{9s}, Instant{100s}), nullptr);
  EXPECT_EQ(t.find(1, 5, Instant{9s}), nullptr);
  // PUBREL turns 2 into a dedup record: now it is the oldest and evicted next.
  t.find(1, 2, Instant{9s})->state = InboundState::released;
  ASSERT_NE(t.insert(1, 9, InboundState::delivered, Instant{10s}, Instant{100s}), nullptr);
  EXPECT_EQ(t.find(1, 2, Instant{10s}), nullptr);
  EXPECT_NE(t.find(1, 6, Instant{10s}), nullptr);
  for (std::uint32_t id = 10; id < 1000; ++id) {
    ASSERT_NE(t.insert(1, id, InboundState::delivered, Instant{10s}, Instant{100s}), nullptr);
    ASSERT_EQ(t.find(1, id - 4, Instant{10s}), nullptr) << id;
    ASSERT_NE(t.find(1, id - 3, Instant{10s}), nullptr) << id;
  }
  EXPECT_EQ(t.size(), 4u);
}

}  // namespace
}  // namespace nomq::detail
