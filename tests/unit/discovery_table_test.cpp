#include "core/discovery_table.hpp"
#include "unit/arena_support.hpp"

#include <gtest/gtest.h>

#include <random>

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
  DiscoveryTable t(test::test_arena(), 4, 8);
  EXPECT_EQ(t.announce(1, kA, Instant{0s}, Instant{75s}).kind, Seen::joined);
  EXPECT_EQ(t.announce(1, kA, Instant{1s}, Instant{76s}).kind, Seen::known);
  EXPECT_EQ(t.announce(2, kB, Instant{1s}, Instant{76s}).kind, Seen::joined);
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
  DiscoveryTable t(test::test_arena(), 4, 8);
  t.announce(1, kA, Instant{0s}, Instant{75s});
  t.add_subscription(1, ch(1));
  const auto r = t.announce(7, kA, Instant{5s}, Instant{80s});
  EXPECT_EQ(r.kind, Seen::restarted);
  EXPECT_EQ(r.replaced_session, 1u);
  EXPECT_EQ(t.find(1), nullptr);
  EXPECT_EQ(t.peer_count(), 1u);
  // The new session inherits the subscription, tentatively.
  EXPECT_EQ(t.subscriber_count(ch(1)), 1u);
  EXPECT_FALSE(t.is_subscribed(1, ch(1)));
  EXPECT_TRUE(t.is_tentative(7, ch(1)));
}

TEST(DiscoveryTable, InheritedSubscriptionsAreConfirmedOrExpire) {
  DiscoveryTable t(test::test_arena(), 4, 8);
  t.announce(1, kA, Instant{0s}, Instant{75s});
  t.add_subscription(1, ch(1));
  t.add_subscription(1, ch(2));
  t.add_subscription(1, ch(3));
  t.announce(2, kB, Instant{0s}, Instant{75s});
  t.add_subscription(2, ch(1));
  EXPECT_FALSE(t.next_tentative_expiry());
  EXPECT_EQ(t.announce(7, kA, Instant{10s}, Instant{85s}).kind, Seen::restarted);
  EXPECT_EQ(t.subscription_count(), 4u);
  EXPECT_EQ(t.next_tentative_expiry(), Instant{85s});
  // Its own SUBSCRIBE confirms one; an UNSUBSCRIBE removes another.
  EXPECT_EQ(t.add_subscription(7, ch(1)), Added::confirmed);
  EXPECT_EQ(t.add_subscription(7, ch(1)), Added::existing);
  EXPECT_FALSE(t.is_tentative(7, ch(1)));
  EXPECT_TRUE(t.remove_subscription(7, ch(3)));
  EXPECT_FALSE(t.expire_tentative(Instant{84s}));
  const auto gone = t.expire_tentative(Instant{85s});
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->session_id, 7u);
  EXPECT_EQ(gone->channel, ch(2));
  EXPECT_FALSE(t.expire_tentative(Instant{85s}));
  EXPECT_FALSE(t.next_tentative_expiry());
  EXPECT_TRUE(t.is_subscribed(7, ch(1)));
  EXPECT_TRUE(t.is_subscribed(2, ch(1)));  // another node's subscriptions are untouched
  EXPECT_EQ(t.subscription_count(), 2u);
}

TEST(DiscoveryTable, SilentPeerTimesOut) {
  DiscoveryTable t(test::test_arena(), 4, 8);
  t.announce(1, kA, Instant{0s}, Instant{75s});
  t.announce(2, kB, Instant{0s}, Instant{75s});
  t.add_subscription(1, ch(1));
  t.heard(2, Instant{200s});
  EXPECT_EQ(t.next_expiry(300s), Instant{300s});
  EXPECT_FALSE(t.expire_one(Instant{299s}, 300s));
  auto gone = t.expire_one(Instant{300s}, 300s);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->session_id, 1u);
  EXPECT_EQ(t.subscriber_count(ch(1)), 0u);
  EXPECT_FALSE(t.expire_one(Instant{300s}, 300s));
  EXPECT_EQ(t.next_expiry(300s), Instant{500s});
}

TEST(DiscoveryTable, BoundsAreReported) {
  DiscoveryTable t(test::test_arena(), 1, 1);
  EXPECT_EQ(t.announce(1, kA, Instant{0s}, Instant{75s}).kind, Seen::joined);
  EXPECT_EQ(t.announce(2, kB, Instant{0s}, Instant{75s}).kind, Seen::full);
  EXPECT_EQ(t.add_subscription(1, ch(1)), Added::added);
  EXPECT_EQ(t.add_subscription(1, ch(2)), Added::full);
}

// next_expiry() reads the head of a recency list and next_tentative_expiry() a count, where they
// scanned the table; both must agree with a scan over every peer under any sequence of
// announcements, restarts, removals, expiries and steps of time (forward and, as a wall clock
// can, backward).
TEST(DiscoveryTable, DeadlinesAgreeWithABruteForceScan) {
  const std::uint32_t seed = 0x6e6f6d71u;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng{seed};
  auto pick = [&rng](std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); };
  constexpr std::uint32_t kSessions = 24;  // ids 1..24 over 6 endpoints, a table of 8 peers
  DiscoveryTable t(test::test_arena(), 8, 32);
  const Duration timeout = 10s;
  Instant now{1000s};
  for (int step = 0; step < 20000; ++step) {
    const std::uint32_t session = 1 + pick(kSessions);
    const Endpoint ep = Endpoint::v4(10, 0, 0, static_cast<std::uint8_t>(1 + pick(6)), 5000);
    switch (pick(9)) {
      case 0: case 1: case 2:
        t.announce(session, ep, now, now + Duration{std::int64_t{pick(5)} * 1'000'000});
        break;
      case 3: t.heard(session, now); break;
      case 4: (void)t.add_subscription(session, ch(static_cast<std::uint8_t>(pick(4)))); break;
      case 5: if (pick(4) == 0) t.remove_peer(session); break;
      case 6: while (t.expire_one(now, timeout)) {} break;
      case 7: while (t.expire_tentative(now)) {} break;
      case 8:
        // Mostly forward; now and then a step back.
        now += Duration{pick(8) == 0 ? -std::int64_t{pick(3'000'000)} : std::int64_t{pick(2'000'000)}};
        break;
    }
    std::optional<Instant> expiry, tentative;
    for (std::uint32_t s = 1; s <= kSessions; ++s) {
      const Peer* p = t.find(s);
      if (p == nullptr) continue;
      if (!expiry || p->last_heard + timeout < *expiry) expiry = p->last_heard + timeout;
      if (p->has_tentative && (!tentative || p->tentative_until < *tentative)) {
        tentative = p->tentative_until;
      }
    }
    ASSERT_EQ(t.next_expiry(timeout), expiry) << "step " << step;
    ASSERT_EQ(t.next_tentative_expiry(), tentative) << "step " << step;
  }
}

}  // namespace
}  // namespace nomq::detail
