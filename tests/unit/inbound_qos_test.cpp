#include "core/inbound_qos.hpp"

#include <gtest/gtest.h>

namespace nomq::detail {
namespace {

using namespace std::chrono_literals;

TEST(InboundQos, Qos2ReceiverStateMachine) {
  InboundQosTable t(4);
  // PUBLISH: deliver once, await PUBREL.
  ASSERT_EQ(t.find(1, 100, Time{0s}), nullptr);
  ASSERT_NE(t.insert(1, 100, InboundState::awaiting_pubrel, Time{0s}, Time{600s}), nullptr);
  // Retransmitted PUBLISH: found, so PUBREC again, not delivered.
  ASSERT_NE(t.find(1, 100, Time{1s}), nullptr);
  EXPECT_EQ(t.find(1, 100, Time{1s})->state, InboundState::awaiting_pubrel);
  // PUBREL: released; a late retransmission is still a duplicate.
  t.find(1, 100, Time{2s})->state = InboundState::released;
  ASSERT_NE(t.find(1, 100, Time{3s}), nullptr);
  // Same message id from another session is another message.
  EXPECT_EQ(t.find(2, 100, Time{3s}), nullptr);
}

TEST(InboundQos, EntriesExpire) {
  InboundQosTable t(4);
  t.insert(1, 1, InboundState::delivered, Time{0s}, Time{10s});
  t.insert(1, 2, InboundState::awaiting_pubrel, Time{0s}, Time{10s});
  EXPECT_EQ(t.find(1, 1, Time{10s}), nullptr);
  int expired_awaiting = 0;
  t.expire(Time{10s}, [&](std::uint32_t session) {
    EXPECT_EQ(session, 1u);
    ++expired_awaiting;
  });
  EXPECT_EQ(expired_awaiting, 1);
  EXPECT_EQ(t.size(), 0u);
}

TEST(InboundQos, FullTableEvictsOldestDedupRecordButNeverAwaitingState) {
  InboundQosTable t(2);
  t.insert(1, 1, InboundState::delivered, Time{0s}, Time{100s});
  t.insert(1, 2, InboundState::awaiting_pubrel, Time{1s}, Time{100s});
  ASSERT_NE(t.insert(1, 3, InboundState::awaiting_pubrel, Time{2s}, Time{100s}), nullptr);
  EXPECT_EQ(t.find(1, 1, Time{2s}), nullptr);  // the dedup record went
  // Now both entries await PUBREL: the next message is refused (and not acknowledged).
  EXPECT_EQ(t.insert(1, 4, InboundState::delivered, Time{3s}, Time{100s}), nullptr);
}

}  // namespace
}  // namespace nomq::detail
