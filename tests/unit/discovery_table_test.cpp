#include "core/discovery_table.hpp"

#include <gtest/gtest.h>

namespace nomq::detail {
namespace {

using namespace std::chrono_literals;
using Seen = DiscoveryTable::Seen;
using Added = DiscoveryTable::Added;

const Endpoint kA = Endpoint::v4(10, 0, 0, 1, 5000);
const Endpoint kB = Endpoint::v4(10, 0, 0, 2, 5000);
wire::ChannelId ch(std::uint8_t b) {
  wire::ChannelId c{};
  c[0] = b;
  return c;
}

TEST(DiscoveryTable, JoinSubscribeAndEnumerate) {
  DiscoveryTable t(4, 8);
  EXPECT_EQ(t.announce(1, kA, Time{0s}).kind, Seen::joined);
  EXPECT_EQ(t.announce(1, kA, Time{1s}).kind, Seen::known);
  EXPECT_EQ(t.announce(2, kB, Time{1s}).kind, Seen::joined);
  EXPECT_EQ(t.add_subscription(1, ch(1)), Added::added);
  EXPECT_EQ(t.add_subscription(1, ch(1)), Added::existing);
  EXPECT_EQ(t.add_subscription(2, ch(1)), Added::added);
  EXPECT_EQ(t.add_subscription(2, ch(2)), Added::added);
  EXPECT_EQ(t.add_subscription(9, ch(2)), Added::unknown_peer);
  EXPECT_EQ(t.subscriber_count(ch(1)), 2u);
  EXPECT_EQ(t.subscriber_count(ch(2)), 1u);
  EXPECT_TRUE(t.remove_subscription(2, ch(1)));
  EXPECT_EQ(t.subscriber_count(ch(1)), 1u);
}

TEST(DiscoveryTable, NewSessionFromTheSameEndpointIsARestart) {
  DiscoveryTable t(4, 8);
  t.announce(1, kA, Time{0s});
  t.add_subscription(1, ch(1));
  const auto r = t.announce(7, kA, Time{5s});
  EXPECT_EQ(r.kind, Seen::restarted);
  EXPECT_EQ(r.replaced_session, 1u);
  EXPECT_EQ(t.find(1), nullptr);
  EXPECT_EQ(t.subscriber_count(ch(1)), 0u);  // the old session's subscriptions are gone
  EXPECT_EQ(t.peer_count(), 1u);
}

TEST(DiscoveryTable, SilentPeerTimesOut) {
  DiscoveryTable t(4, 8);
  t.announce(1, kA, Time{0s});
  t.announce(2, kB, Time{0s});
  t.add_subscription(1, ch(1));
  t.heard(2, Time{200s});
  EXPECT_EQ(t.next_expiry(300s), Time{300s});
  EXPECT_FALSE(t.expire_one(Time{299s}, 300s));
  auto gone = t.expire_one(Time{300s}, 300s);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->session_id, 1u);
  EXPECT_EQ(t.subscriber_count(ch(1)), 0u);
  EXPECT_FALSE(t.expire_one(Time{300s}, 300s));
  EXPECT_EQ(t.next_expiry(300s), Time{500s});
}

TEST(DiscoveryTable, BoundsAreReported) {
  DiscoveryTable t(1, 1);
  EXPECT_EQ(t.announce(1, kA, Time{0s}).kind, Seen::joined);
  EXPECT_EQ(t.announce(2, kB, Time{0s}).kind, Seen::full);
  EXPECT_EQ(t.add_subscription(1, ch(1)), Added::added);
  EXPECT_EQ(t.add_subscription(1, ch(2)), Added::full);
}

}  // namespace
}  // namespace nomq::detail
