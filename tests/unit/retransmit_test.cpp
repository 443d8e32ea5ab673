#include "core/retransmit.hpp"

#include <gtest/gtest.h>

namespace nomq::detail {
namespace {

using namespace std::chrono_literals;

TEST(Retransmit, DoublesFromInitialToTheCap) {
  EXPECT_EQ(retransmit_timeout(200ms, 60s, 1), 200ms);
  EXPECT_EQ(retransmit_timeout(200ms, 60s, 2), 400ms);
  EXPECT_EQ(retransmit_timeout(200ms, 60s, 3), 800ms);
  EXPECT_EQ(retransmit_timeout(200ms, 60s, 9), 51200ms);
  EXPECT_EQ(retransmit_timeout(200ms, 60s, 10), 60s);
  EXPECT_EQ(retransmit_timeout(200ms, 60s, 1000), 60s);
}

TEST(Retransmit, WireTtlIsRemainingSecondsRoundedUp) {
  const Instant now{1000s};
  EXPECT_EQ(remaining_ttl(now + 10s, now), 10);
  EXPECT_EQ(remaining_ttl(now + 9500ms, now), 10);
  EXPECT_EQ(remaining_ttl(now + 1us, now), 1);
  EXPECT_EQ(remaining_ttl(now, now), 0);
  EXPECT_EQ(remaining_ttl(now + 100000s, now), 65535);
}

}  // namespace
}  // namespace nomq::detail
